//! One mail on standard input, as an MTA pipe (Postfix/Exim alias) delivers it.

use std::io::Read;

use crate::{MailSource, RawMail, SourceError};

/// Reads the whole of `input`, refusing more than `limit` bytes.
pub fn read_one(input: impl Read, limit: usize) -> Result<RawMail, SourceError> {
    let mut bytes = Vec::new();
    input
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SourceError::Read {
            path: "standard input".into(),
            source,
        })?;
    if bytes.len() > limit {
        return Err(SourceError::TooLarge { limit });
    }
    Ok(RawMail {
        source: MailSource::Stdin,
        location: "stdin".into(),
        bytes,
    })
}
