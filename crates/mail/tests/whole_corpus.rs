//! The whole corpus (every file under `tests/corpus`, a copy of `../shared/corpus`, plus
//! the golden fixtures in `tests/fidelity` and the fuzz regressions in `tests/fuzz-regressions`):
//! no panic, no U+FFFD in subject, body text or attachment names unless the bytes there
//! cannot be decoded in any charset (the parser then says so in a warning), and every
//! mail has a sender or a warning saying why not. Prints the figures.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use postdesk_mail::{classify, parse};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "json" | "jsonl" | "list" | "md")
                && !name.starts_with("LICENSE")
                && name != "COPYING"
                && !name.starts_with('.')
            {
                out.push(p);
            }
        }
    }
}

/// Whether the parser stated that some bytes could not be decoded.
fn undecodable_stated(warnings: &[String]) -> bool {
    warnings
        .iter()
        .any(|w| w.contains("invalid byte sequences") || w.contains("encoding problem"))
}

#[test]
fn whole_corpus_no_panic_no_replacement_character_every_sender_or_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    for dir in ["corpus", "fidelity", "fuzz-regressions"] {
        files_under(&root.join(dir), &mut files);
    }
    files.sort();
    let own = vec!["support@example.com".to_string()];
    let (mut panics, mut fffd, mut no_sender_no_reason) = (Vec::new(), Vec::new(), Vec::new());
    let (mut with_sender, mut with_reason, mut fffd_stated) = (0, 0, 0);
    for f in &files {
        let raw = std::fs::read(f).expect("readable");
        let Ok(mail) = catch_unwind(AssertUnwindSafe(|| {
            let m = parse(&raw);
            let _ = classify(&m, &own);
            m
        })) else {
            panics.push(f.display().to_string());
            continue;
        };
        match &mail.from {
            Some(a) => {
                assert!(
                    !a.email.trim().is_empty(),
                    "{}: empty sender address",
                    f.display()
                );
                with_sender += 1;
            }
            None if mail.warnings.iter().any(|w| w.starts_with("no sender")) => with_reason += 1,
            None => no_sender_no_reason.push(f.display().to_string()),
        }
        let shown = std::iter::once(mail.subject.as_str())
            .chain(std::iter::once(mail.text.as_str()))
            .chain(
                mail.attachments
                    .iter()
                    .filter_map(|a| a.original_name.as_deref()),
            );
        if shown.clone().any(|s| s.contains('\u{FFFD}')) {
            if undecodable_stated(&mail.warnings) {
                fffd_stated += 1;
            } else {
                fffd.push(f.display().to_string());
            }
        }
    }
    eprintln!(
        "whole corpus: {} files, {} panics, {with_sender} with a sender, {with_reason} without one and a stated reason, \
         {} without either; U+FFFD: {} unexplained, {fffd_stated} where the bytes are undecodable (stated)",
        files.len(),
        panics.len(),
        no_sender_no_reason.len(),
        fffd.len()
    );
    assert!(files.len() > 500, "corpus incomplete: {}", files.len());
    assert!(panics.is_empty(), "panicked: {panics:#?}");
    assert!(
        no_sender_no_reason.is_empty(),
        "no sender and no reason: {no_sender_no_reason:#?}"
    );
    assert!(fffd.is_empty(), "U+FFFD where decodable: {fffd:#?}");
}

/// The shortcut that skips rendering a mail's HTML when its plain alternative is full
/// decides as the full rule does, on every corpus mail with both alternatives.
#[test]
fn stub_shortcut_agrees_with_the_full_rule_on_the_corpus() {
    use postdesk_mail::sanitize::{html_to_text, is_stub_alternative, stub_alternative_text};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    for dir in ["corpus", "fidelity"] {
        files_under(&root.join(dir), &mut files);
    }
    let (mut compared, mut stubs, mut disagree) = (0, 0, Vec::new());
    for f in &files {
        let raw = std::fs::read(f).expect("readable");
        let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
            continue;
        };
        let (Some(plain), Some(html)) = (message.body_text(0), message.body_html(0)) else {
            continue;
        };
        if message.text_body.first() == message.html_body.first() {
            continue; // one part shown both ways: no alternative
        }
        compared += 1;
        let full = is_stub_alternative(&plain, &html_to_text(&html));
        stubs += usize::from(full);
        if stub_alternative_text(&plain, &html).is_some() != full {
            disagree.push(f.display().to_string());
        }
    }
    println!("{compared} mails with both alternatives, {stubs} stubs");
    assert!(
        compared >= 40,
        "the corpus has mails with both alternatives: {compared}"
    );
    assert!(
        disagree.is_empty(),
        "the shortcut decides otherwise on {disagree:?}"
    );
}
