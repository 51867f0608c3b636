//! Hostile sizes (issue 16 §7): deep multipart nesting, a 10 MB header line, a 10 MB
//! run of encoded words, a million tiny parts, and every minimised fuzz finding in
//! `tests/fuzz-regressions` through each fuzzed function. Each must finish quickly
//! (the bound is generous for unoptimised test builds) and what users see stays sane.

use std::time::{Duration, Instant};

use postdesk_mail::{parse, sanitize, strip_reply};

/// The limit is a second per mail in a release build. Measured with
/// `cargo test --release -p postdesk-mail --test hostile_sizes -- --nocapture` on a
/// loaded 2-core machine: 10 MB of unterminated `=?` 376 ms, 10 MB of encoded words
/// 235 ms, a million tiny parts 261 ms, 10 MB Subject 159 ms, 20 000 nested multiparts
/// 42 ms, the fuzz regressions 11 ms. Debug test builds are ~10× slower and share the
/// machine, so the bound here only catches runaway (quadratic) work, not a slow second.
const BOUND: Duration = Duration::from_secs(20);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(took < BOUND, "{what} took {took:?}");
    out
}

#[test]
fn deep_multipart_nesting() {
    let depth = 20_000;
    let mut raw =
        b"From: a@example.com\nSubject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n"
            .to_vec();
    for i in 1..depth {
        raw.extend(
            format!(
                "--b{}\nContent-Type: multipart/mixed; boundary=b{i}\n\n",
                i - 1
            )
            .bytes(),
        );
    }
    raw.extend(b"--bend\n\ninnermost\n");
    let m = timed("20 000 nested multiparts", || parse(&raw));
    assert_eq!(m.subject, "deep");
    let m = timed("20 000 nested messages", || {
        let mut raw = Vec::new();
        for _ in 0..depth {
            raw.extend(b"From: a@example.com\nContent-Type: message/rfc822\n\n");
        }
        raw.extend(b"Subject: inner\n\nbody\n");
        parse(&raw)
    });
    assert!(m.from.is_some());
}

#[test]
fn ten_megabyte_header_line() {
    let mut raw = b"From: a@example.com\nSubject: ".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 10 << 20));
    raw.extend(b"\n\nbody\n");
    let m = timed("10 MB Subject", || parse(&raw));
    assert_eq!(m.subject.len(), 10 << 20);
    assert_eq!(m.text, "body");

    let mut raw = b"From: a@example.com\nSubject: ".to_vec();
    while raw.len() < 10 << 20 {
        raw.extend(b"=?utf-8?B?w6k=?= ");
    }
    raw.extend(b"\n\nbody\n");
    let m = timed("10 MB of encoded words", || parse(&raw));
    assert!(m.subject.starts_with("ééé"));

    let mut raw = b"From: a@example.com\nSubject: ".to_vec();
    raw.extend(std::iter::repeat_n(&b"=?"[..], 5 << 20).flatten());
    raw.extend(b"\n\nbody\n");
    timed("10 MB of unterminated encoded-word starts", || parse(&raw));

    let mut raw = b"From: a@example.com\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; ".to_vec();
    for i in 0..20_000 {
        raw.extend(format!("filename*{i}*=%41;").bytes());
    }
    raw.extend(b"\n\ndata\n--b--\n");
    let m = timed("20 000 RFC 2231 continuations", || parse(&raw));
    assert_eq!(m.attachments.len(), 1);
    assert!(m.attachments[0].safe_name.len() <= postdesk_mail::parse::MAX_NAME_BYTES);
}

#[test]
fn a_million_tiny_parts() {
    let mut raw =
        b"From: a@example.com\nSubject: many\nContent-Type: multipart/mixed; boundary=b\n\n"
            .to_vec();
    for _ in 0..1_000_000 {
        raw.extend(b"--b\n\nx\n");
    }
    raw.extend(b"--b--\n");
    let m = timed("a million tiny parts", || parse(&raw));
    assert_eq!(m.subject, "many");
}

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for f in std::fs::read_dir(&dir)
        .expect("regressions folder")
        .flatten()
    {
        let path = f.path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).expect("regression input");
        let text = String::from_utf8_lossy(&data);
        timed(&path.display().to_string(), || {
            let m = parse(&data);
            let _ = postdesk_mail::classify(&m, &["support@example.com".to_string()]);
            let _ = postdesk_mail::parse::decode_header_value(&data);
            let _ = sanitize::html_to_text(&text);
            let _ = sanitize::sanitize_html(&text, &|_| None);
            let _ = strip_reply(&text, Some("===== reply above this line ====="));
        });
        n += 1;
    }
    eprintln!("{n} fuzz regressions replayed");
}
