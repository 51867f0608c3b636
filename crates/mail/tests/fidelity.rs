//! Golden fixtures for real-world mail fidelity (issue 16): every `tests/fidelity/<class>/*.eml`
//! is parsed in LF and in CRLF form and must show what its `.json` says a user sees —
//! subject, sender, body text, attachment names, classification and its signal, the
//! detected charset. No fixture may show U+FFFD. See `tests/fidelity/README.md`.

use std::path::{Path, PathBuf};

use postdesk_mail::{ParsedMail, classify_with_signal, parse};
use serde_json::Value;

const OWN: &str = "support@example.com";

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity");
    let mut out = Vec::new();
    for class in std::fs::read_dir(&root).expect("fixture folder") {
        let class = class.expect("entry").path();
        if !class.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&class).expect("class folder") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "eml") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

fn lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in &lf(raw) {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn check(mail: &ParsedMail, expect: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    fn eq(errors: &mut Vec<String>, what: &str, got: Value, want: &Value) {
        if &got != want {
            errors.push(format!("{what}: got {got}, want {want}"));
        }
    }
    let obj = expect.as_object().expect("expectation object");
    for (key, want) in obj {
        match key.as_str() {
            "subject" => eq(&mut errors, key, mail.subject.clone().into(), want),
            "text" => eq(&mut errors, key, mail.text.clone().into(), want),
            "from" => eq(
                &mut errors,
                key,
                mail.from.as_ref().map(|a| a.email.clone()).into(),
                want,
            ),
            "from_name" => eq(
                &mut errors,
                key,
                mail.from.as_ref().and_then(|a| a.name.clone()).into(),
                want,
            ),
            "from_key" => eq(
                &mut errors,
                key,
                mail.from.as_ref().map(|a| a.email_key()).into(),
                want,
            ),
            "from_unicode" => eq(
                &mut errors,
                key,
                mail.from.as_ref().map(|a| a.email_unicode()).into(),
                want,
            ),
            "to_names" | "cc_names" => {
                let list = if key == "to_names" {
                    &mail.to
                } else {
                    &mail.cc
                };
                let names: Vec<Value> = list.iter().map(|a| a.name.clone().into()).collect();
                eq(&mut errors, key, names.into(), want);
            }
            "sender_source" => eq(
                &mut errors,
                key,
                mail.sender_source.map(|s| s.as_str()).into(),
                want,
            ),
            "detected_charset" => eq(&mut errors, key, mail.detected_charset.clone().into(), want),
            "classification" | "signal_contains" => {
                let v = classify_with_signal(mail, &[OWN.to_string()]);
                if key == "classification" {
                    eq(&mut errors, key, v.class.as_str().into(), want);
                } else if !v.signal.contains(want.as_str().unwrap_or("")) {
                    errors.push(format!("signal {:?} does not contain {want}", v.signal));
                }
            }
            "warning_starts" => {
                let w = want.as_str().unwrap_or("");
                if !mail.warnings.iter().any(|x| x.starts_with(w)) {
                    errors.push(format!("no warning starting {w:?} in {:?}", mail.warnings));
                }
            }
            "text_contains" | "text_not_contains" => {
                for s in want
                    .as_array()
                    .expect("list")
                    .iter()
                    .filter_map(Value::as_str)
                {
                    if mail.text.contains(s) != (key == "text_contains") {
                        errors.push(format!("{key} {s:?} fails on text {:?}", mail.text));
                    }
                }
            }
            "text_in_order" => {
                let mut at = 0;
                for s in want
                    .as_array()
                    .expect("list")
                    .iter()
                    .filter_map(Value::as_str)
                {
                    match mail.text[at..].find(s) {
                        Some(p) => at += p + s.len(),
                        None => errors.push(format!("{s:?} not in order in {:?}", mail.text)),
                    }
                }
            }
            "attachments" => {
                let want = want.as_array().expect("list");
                if want.len() != mail.attachments.len() {
                    errors.push(format!(
                        "{} attachments, want {}: {:?}",
                        mail.attachments.len(),
                        want.len(),
                        mail.attachments
                            .iter()
                            .map(|a| (&a.original_name, &a.safe_name))
                            .collect::<Vec<_>>()
                    ));
                    continue;
                }
                for (a, w) in mail.attachments.iter().zip(want) {
                    if let Some(o) = w.get("original") {
                        eq(
                            &mut errors,
                            "attachment original name",
                            a.original_name.clone().into(),
                            o,
                        );
                    }
                    if let Some(s) = w.get("safe") {
                        eq(
                            &mut errors,
                            "attachment safe name",
                            a.safe_name.clone().into(),
                            s,
                        );
                    }
                }
            }
            other => errors.push(format!("unknown expectation key {other}")),
        }
    }
    let names = mail
        .attachments
        .iter()
        .filter_map(|a| a.original_name.as_deref())
        .chain(
            mail.from
                .iter()
                .chain(&mail.to)
                .chain(&mail.cc)
                .chain(&mail.reply_to)
                .filter_map(|a| a.name.as_deref()),
        );
    if std::iter::once(mail.subject.as_str())
        .chain(std::iter::once(mail.text.as_str()))
        .chain(names)
        .any(|s| s.contains('\u{FFFD}'))
    {
        errors.push("U+FFFD in subject, text, a display name or a file name".into());
    }
    errors
}

#[test]
fn golden_fixtures_in_lf_and_crlf() {
    let files = fixtures();
    assert!(files.len() >= 60, "fixtures missing: {}", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).expect("fixture");
        let expect: Value = serde_json::from_slice(
            &std::fs::read(f.with_extension("json")).expect("expectation next to fixture"),
        )
        .expect("valid json");
        for (form, bytes) in [("lf", lf(&raw)), ("crlf", crlf(&raw))] {
            for e in check(&parse(&bytes), &expect) {
                let name = f
                    .strip_prefix(f.parent().and_then(Path::parent).expect("root"))
                    .unwrap_or(f);
                failures.push(format!("{} ({form}): {e}", name.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
