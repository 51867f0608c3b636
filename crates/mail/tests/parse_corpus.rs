//! Every corpus mail goes through `parse` + `classify` without a panic, and the
//! sources that come with expectations (stalwart mail-parser, django-helpdesk) match them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use postdesk_mail::{classify, parse};
use std::path::{Path, PathBuf};

/// Every file of these sources is a mail (or a winmail.dat that must not crash the parser either).
const SOURCES: &[&str] = &[
    "stalwart-mail-parser",
    "enmime",
    "mimekit",
    "sisimai",
    "django-helpdesk",
];

fn is_fixture(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    // Expectations, lists and licences are not mails.
    !matches!(ext, "json" | "jsonl" | "list" | "md")
        && !name.starts_with("LICENSE")
        && name != "COPYING"
        && !name.starts_with('.')
}

#[test]
fn every_corpus_file_parses_and_classifies_without_panic() {
    let own = vec!["support@example.com".to_string()];
    let mut count = 0;
    let mut failed = Vec::new();
    for source in SOURCES {
        for path in files_under(&corpus_dir().join(source)) {
            if !is_fixture(&path) {
                continue;
            }
            let raw = std::fs::read(&path).expect("readable fixture");
            count += 1;
            let result = catch_unwind(AssertUnwindSafe(|| {
                let mail = parse(&raw);
                let _ = classify(&mail, &own);
                // Every attachment is well-formed whatever the input.
                for a in &mail.attachments {
                    assert!(!a.safe_name.is_empty());
                    assert!(!a.safe_name.contains(['/', '\\']) && !a.safe_name.starts_with('.'));
                    assert_eq!(a.sha256.len(), 64);
                }
            }));
            if result.is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    eprintln!("{count} corpus files parsed and classified");
    assert!(count > 300, "corpus not found or incomplete: {count} files");
    assert!(failed.is_empty(), "panicked on: {failed:#?}");
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// All files below `dir`, sorted, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = corpus_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
