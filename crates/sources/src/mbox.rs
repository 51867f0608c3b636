//! mbox files (mboxrd and mboxo): mails separated by `From ` lines at the start
//! of a line after a blank line; `>From ` quoting is undone (mboxrd).

use std::io::{BufRead, BufReader, Read};

/// Yields (1-based index, raw mail) one at a time, never the whole file in memory.
pub struct MboxReader<R: Read> {
    reader: BufReader<R>,
    index: usize,
    /// The separator line of the next mail was already read.
    started: bool,
    done: bool,
}

impl<R: Read> MboxReader<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader: BufReader::new(reader),
            index: 0,
            started: false,
            done: false,
        }
    }
}

impl<R: Read> Iterator for MboxReader<R> {
    type Item = std::io::Result<(usize, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut mail = Vec::new();
        let mut line = Vec::new();
        let mut previous_blank = true;
        loop {
            line.clear();
            match self.reader.read_until(b'\n', &mut line) {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => {}
            }
            if line.starts_with(b"From ") && previous_blank {
                if self.started {
                    if mail.last() == Some(&b'\n') {
                        // The blank line before the separator belongs to the mbox, not the mail.
                        mail.pop();
                        if mail.last() == Some(&b'\r') {
                            mail.pop();
                        }
                    }
                    self.index += 1;
                    return Some(Ok((self.index, mail)));
                }
                self.started = true;
                continue;
            }
            previous_blank = line == b"\n" || line == b"\r\n";
            let unquoted = match line.iter().position(|&b| b != b'>') {
                Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
                _ => &line[..],
            };
            mail.extend_from_slice(unquoted);
        }
        if mail.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.index += 1;
        Some(Ok((self.index, mail)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\n>From here\nbody\n\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nsee:\nFrom inside a paragraph is not a separator\n";
        let mails: Vec<_> = MboxReader::new(&mbox[..]).map(|m| m.unwrap()).collect();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].1, b"Subject: one\n\nFrom here\nbody\n");
        assert_eq!(mails[1].0, 2);
        assert!(String::from_utf8_lossy(&mails[1].1).contains("From inside"));
    }

    #[test]
    fn empty_file_has_no_mail() {
        assert_eq!(MboxReader::new(&b""[..]).count(), 0);
    }
}
