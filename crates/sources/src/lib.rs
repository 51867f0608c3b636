//! Where mail comes from: `.eml` files, directories, mbox files, Maildir folders,
//! standard input (MTA pipe). Each source yields [`RawMail`]s in order.

pub mod files;
pub mod imap;
pub mod mbox;
pub mod stdin;

// Microsoft Graph and Gmail API mailboxes (issue 20), and one face for every kind.
pub mod any;
pub mod api;
pub mod gmail;
pub mod graph;

use std::path::PathBuf;

pub use postdesk_core::{MailSource, RawMail};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} does not exist; give an .eml file, an mbox file, a Maildir or a directory of mails"
    )]
    Missing { path: PathBuf },
    #[error("the mail on standard input is larger than {limit} bytes")]
    TooLarge { limit: usize },
}
