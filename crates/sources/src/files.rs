//! Paths given to `postdesk import`: `.eml` files, mbox files, Maildir folders
//! (`new/` then `cur/`) and plain directories (every file in them, recursively),
//! read lazily one mail at a time; a Maildir folder's names are held a window at a
//! time (`SortedNames`), so memory does not grow with the folder.

use std::collections::{BinaryHeap, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::mbox::MboxReader;
use crate::{MailSource, RawMail, SourceError};

/// Everything under `paths`, read lazily one mail at a time, in a stable order.
pub fn read_paths(
    paths: &[PathBuf],
) -> impl Iterator<Item = Result<RawMail, SourceError>> + Send + 'static {
    PathWalker {
        pending: paths.iter().cloned().map(Pending::Path).collect(),
        mbox: None,
    }
}

enum Pending {
    /// Not looked at yet: file, mbox, Maildir or directory.
    Path(PathBuf),
    /// A single mail file.
    Mail(PathBuf, MailSource),
    /// The mail files of one Maildir folder (`new/` or `cur/`), by name.
    Folder {
        names: SortedNames,
        source: MailSource,
    },
}

struct PathWalker {
    pending: VecDeque<Pending>,
    mbox: Option<(PathBuf, MboxReader<fs::File>)>,
}

impl Iterator for PathWalker {
    type Item = Result<RawMail, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((path, reader)) = &mut self.mbox {
                match reader.next() {
                    Some(Ok((index, bytes))) => {
                        let location = format!("{}#{index}", path.display());
                        return Some(Ok(RawMail {
                            source: MailSource::Mbox,
                            location,
                            bytes,
                        }));
                    }
                    Some(Err(source)) => {
                        let path = path.clone();
                        self.mbox = None;
                        return Some(Err(SourceError::Read { path, source }));
                    }
                    None => self.mbox = None,
                }
            }
            match self.pending.pop_front()? {
                Pending::Mail(path, source) => return Some(read_mail(path, source)),
                Pending::Folder { mut names, source } => match names.next_name() {
                    Ok(Some(name)) => {
                        let path = names.dir.join(&*name);
                        self.pending.push_front(Pending::Folder { names, source });
                        return Some(read_mail(path, source));
                    }
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
                Pending::Path(path) => {
                    if let Err(e) = self.expand(path) {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

impl PathWalker {
    /// Replaces a path by the mails it holds, at the front of the queue.
    fn expand(&mut self, path: PathBuf) -> Result<(), SourceError> {
        let read_err = |source| SourceError::Read {
            path: path.clone(),
            source,
        };
        let meta = fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::Missing { path: path.clone() },
            _ => read_err(e),
        })?;
        if meta.is_file() {
            if is_mbox(&path).map_err(read_err)? {
                let file = fs::File::open(&path).map_err(read_err)?;
                self.mbox = Some((path, MboxReader::new(file)));
            } else {
                self.pending
                    .push_front(Pending::Mail(path, MailSource::File));
            }
            return Ok(());
        }
        let found = if is_maildir(&path) {
            let mut folders = Vec::new();
            for sub in ["new", "cur"] {
                let dir = path.join(sub);
                if dir.is_dir() {
                    folders.push(Pending::Folder {
                        names: SortedNames::new(dir, NAMES_PER_PASS),
                        source: MailSource::Maildir,
                    });
                }
            }
            folders
        } else {
            sorted_entries(&path)?
                .into_iter()
                .map(Pending::Path)
                .collect()
        };
        for item in found.into_iter().rev() {
            self.pending.push_front(item);
        }
        Ok(())
    }
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// An mbox starts with a `From ` separator line; a mail starts with a header.
fn is_mbox(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 5];
    let mut file = fs::File::open(path)?;
    let n = file.read(&mut head)?;
    Ok(&head[..n] == b"From ")
}

/// How many names of a Maildir folder are held at once (a few MB).
const NAMES_PER_PASS: usize = 65_536;

/// The regular files of a Maildir folder by name, in sorted order (Maildir names start
/// with their delivery time, so this is the order mail came in), hidden ones (`.`) left
/// out. Memory stays bounded however large the folder: each pass over the directory
/// keeps only the `window` smallest names after the last one handed out, so a million
/// mails cost 16 passes of `readdir`, not a list of a million names.
struct SortedNames {
    dir: PathBuf,
    window: usize,
    /// The names of the current pass, in order.
    current: std::vec::IntoIter<Box<OsStr>>,
    /// The last name of the last pass.
    after: Option<Box<OsStr>>,
    /// The last pass found fewer names than its window: there are no more.
    done: bool,
}

impl SortedNames {
    fn new(dir: PathBuf, window: usize) -> SortedNames {
        SortedNames {
            dir,
            window: window.max(1),
            current: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }

    fn next_name(&mut self) -> Result<Option<Box<OsStr>>, SourceError> {
        loop {
            if let Some(name) = self.current.next() {
                return Ok(Some(name));
            }
            if self.done {
                return Ok(None);
            }
            let names = self.smallest_after()?;
            self.done = names.len() < self.window;
            self.after = names.last().cloned();
            self.current = names.into_iter();
            if self.after.is_none() {
                return Ok(None);
            }
        }
    }

    /// One pass over the directory: the `window` smallest names after `after`, sorted.
    fn smallest_after(&mut self) -> Result<Vec<Box<OsStr>>, SourceError> {
        let read_err = |source| SourceError::Read {
            path: self.dir.clone(),
            source,
        };
        // A max-heap: its top is the largest name kept, the first to give way.
        let mut kept: BinaryHeap<Box<OsStr>> = BinaryHeap::with_capacity(self.window + 1);
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name();
            if self.after.as_deref().is_some_and(|after| *name <= *after)
                || kept.len() == self.window && kept.peek().is_some_and(|top| *name >= **top)
                || name.as_encoded_bytes().starts_with(b".")
            {
                continue;
            }
            // d_type from the directory itself: no stat per mail.
            if !entry.file_type().map_err(read_err)?.is_file() {
                continue;
            }
            kept.push(name.into_boxed_os_str());
            if kept.len() > self.window {
                kept.pop();
            }
        }
        Ok(kept.into_sorted_vec())
    }
}

/// Directory entries sorted by name, hidden files (`.`) and Maildir's `tmp/` left out.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let read_err = |source| SourceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort();
    Ok(entries)
}

fn read_mail(path: PathBuf, source: MailSource) -> Result<RawMail, SourceError> {
    match fs::read(&path) {
        Ok(bytes) => Ok(RawMail {
            source,
            location: path.display().to_string(),
            bytes,
        }),
        Err(e) => Err(SourceError::Read { path, source: e }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(paths: &[PathBuf]) -> Vec<String> {
        read_paths(paths).map(|m| m.unwrap().location).collect()
    }

    #[test]
    fn files_maildirs_mboxes_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.eml"), "Subject: a\n\nA\n").unwrap();
        fs::create_dir_all(root.join("md/new")).unwrap();
        fs::create_dir_all(root.join("md/cur")).unwrap();
        fs::create_dir_all(root.join("md/tmp")).unwrap();
        fs::write(root.join("md/new/2"), "Subject: n2\n\n").unwrap();
        fs::write(root.join("md/new/1"), "Subject: n1\n\n").unwrap();
        fs::write(root.join("md/cur/3:2,S"), "Subject: c\n\n").unwrap();
        fs::write(root.join("md/tmp/x"), "Subject: half-written\n\n").unwrap();
        fs::write(root.join("box.mbox"), "From a@b Mon Jan 1 00:00:00 2024\nSubject: m1\n\nx\n\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: m2\n\ny\n").unwrap();
        fs::write(root.join(".hidden"), "x").unwrap();

        let all = locations(&[root.to_path_buf()]);
        let short: Vec<String> = all
            .iter()
            .map(|l| {
                l.trim_start_matches(&root.display().to_string())
                    .to_string()
            })
            .collect();
        assert_eq!(
            short,
            [
                "/a.eml",
                "/box.mbox#1",
                "/box.mbox#2",
                "/md/new/1",
                "/md/new/2",
                "/md/cur/3:2,S"
            ]
        );
    }

    #[test]
    fn a_maildir_folder_is_read_in_order_a_window_of_names_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for i in (0..23).rev() {
            let name = format!("17000{i:02}.M{i}P1.host");
            fs::write(dir.path().join(&name), "Subject: x\n\n").unwrap();
            expected.push(name);
        }
        fs::write(dir.path().join(".hidden"), "x").unwrap();
        fs::create_dir(dir.path().join("a-folder")).unwrap();
        expected.sort();
        for window in [1, 4, 22, 23, 24, 1000] {
            let mut names = SortedNames::new(dir.path().to_path_buf(), window);
            let mut seen = Vec::new();
            while let Some(name) = names.next_name().unwrap() {
                seen.push(name.to_string_lossy().into_owned());
            }
            assert_eq!(seen, expected, "window {window}");
        }
    }

    #[test]
    fn a_missing_path_is_a_clear_error() {
        let err = read_paths(&["/nonexistent/x.eml".into()])
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
