//! Files kept outside the database: attachments, content-addressed by SHA-256,
//! and the compression of raw mail kept in the ledger.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// Where the attachment with this SHA-256 lives under `data_dir`.
pub fn attachment_path(data_dir: &Path, sha256: &str) -> PathBuf {
    let shard = sha256.get(..2).unwrap_or("xx");
    data_dir.join("attachments").join(shard).join(sha256)
}

/// An attachment written under a temporary name, not yet durable nor in place.
#[derive(Debug)]
pub struct StagedAttachment {
    file: std::fs::File,
    tmp: PathBuf,
    path: PathBuf,
}

/// Writes an attachment's bytes to a temporary file beside its final place, or
/// nothing (`None`) when it is stored already: the same bytes are never written
/// twice. [`StagedAttachment::finish`] flushes it and renames it into place, so a
/// crash never leaves half a file under its final name and a committed row never
/// points at a file a crash could lose; that slow half may run on another thread.
pub fn stage_attachment(
    data_dir: &Path,
    sha256: &str,
    data: &[u8],
) -> Result<Option<StagedAttachment>> {
    let path = attachment_path(data_dir, sha256);
    if path.exists() {
        return Ok(None);
    }
    let io_err = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let dir = path.parent().expect("attachment path has a parent");
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let (tmp, mut file) = tempfile_in(dir).map_err(io_err)?;
    file.write_all(data).map_err(io_err)?;
    Ok(Some(StagedAttachment { file, tmp, path }))
}

impl StagedAttachment {
    /// Flushes the file to disk, then renames it into place.
    pub fn finish(self) -> Result<()> {
        let io_err = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.sync_data().map_err(io_err)?;
        std::fs::rename(&self.tmp, &self.path).map_err(io_err)?;
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

/// zstd at its fastest level: raw mail is mostly text and still compresses about 3×.
pub fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        // One context per thread: a new one per mail costs as much as compressing it.
        static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    }
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = match compressor {
            Some(c) => c,
            None => compressor.insert(zstd::bulk::Compressor::new(1)?),
        };
        // The output is allocated for the worst case (larger than the input):
        // give back the rest, or a batch of mails in flight holds it all.
        let mut compressed = compressor.compress(raw)?;
        compressed.shrink_to_fit();
        Ok(compressed)
    })
}

pub fn decompress(data: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    zstd::bulk::decompress(data, size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_attachment_is_in_place_only_once_finished() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        let staged = stage_attachment(dir.path(), &sha, b"bytes")
            .unwrap()
            .expect("not stored yet");
        let path = attachment_path(dir.path(), &sha);
        assert!(
            !path.exists(),
            "a crash before finish must not leave it in place"
        );
        staged.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
        // Stored once: the same bytes again stage nothing.
        assert!(
            stage_attachment(dir.path(), &sha, b"bytes")
                .unwrap()
                .is_none()
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(&sha)]);
    }
}
