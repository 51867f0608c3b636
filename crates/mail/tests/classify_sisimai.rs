//! Classification against sisimai's labelled set of bounces, vacation replies,
//! feedback reports and non-bounces (`labels.jsonl`).

use std::path::{Path, PathBuf};

use postdesk_mail::classify::bounced_message_id;
use postdesk_mail::{Classification, classify, parse};

/// Labels we do not follow, with the reason. Anything else that disagrees fails.
const LABEL_EXCEPTIONS: &[(&str, Classification, &str)] = &[
    (
        "bounce/lhost-fml-02.eml",
        Classification::Normal,
        "fml mailing-list 'you are not a member' notice: no DSN part, no daemon sender, no null \
         Return-Path; only the list manager's wording says it is a rejection",
    ),
    (
        "not-bounce/rb-issue-368-bug.eml",
        Classification::Bounce,
        "a real 'mailbox full' bounce notification (From postmaster@, Return-Path <>, \
         Auto-Submitted, original quoted); sisimai files it under not-bounce, for a helpdesk it is a bounce",
    ),
];

/// Bounces whose file holds the original's Message-ID but where we do not find it.
const EMBEDDED_ID_EXCEPTIONS: &[(&str, &str)] = &[];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sisimai")
}

struct Label {
    file: String,
    is_bounce: bool,
    is_auto_reply: bool,
    is_feedback_report: bool,
}

fn labels() -> Vec<Label> {
    let text = std::fs::read_to_string(corpus().join("labels.jsonl")).expect("labels.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            Label {
                file: v["file"].as_str().expect("file").to_string(),
                is_bounce: v["is_bounce"].as_bool().expect("is_bounce"),
                is_auto_reply: v["is_auto_reply"].as_bool().expect("is_auto_reply"),
                is_feedback_report: v["is_feedback_report"]
                    .as_bool()
                    .expect("is_feedback_report"),
            }
        })
        .collect()
}

fn expected_class(l: &Label) -> Option<Classification> {
    if l.is_bounce || l.is_feedback_report {
        Some(Classification::Bounce)
    } else if l.is_auto_reply {
        Some(Classification::AutoReply)
    } else {
        None // not a bounce: anything but Bounce
    }
}

#[test]
fn labels_are_followed() {
    let labels = labels();
    assert_eq!(labels.len(), 113);
    let own = vec!["support@example.com".to_string()];
    let mut wrong = Vec::new();
    for l in &labels {
        let mail = parse(&std::fs::read(corpus().join(&l.file)).expect("fixture"));
        let got = classify(&mail, &own);
        let ok = match expected_class(l) {
            Some(want) => got == want,
            None => got != Classification::Bounce,
        };
        let excepted = LABEL_EXCEPTIONS.iter().find(|(f, _, _)| *f == l.file);
        match excepted {
            Some((_, exception, _)) => {
                assert!(
                    !ok,
                    "{} now follows its label: drop it from LABEL_EXCEPTIONS",
                    l.file
                );
                assert_eq!(
                    got, *exception,
                    "{}: exception no longer describes what happens",
                    l.file
                );
            }
            None if !ok => wrong.push(format!(
                "{}: {:?} (subject {:?})",
                l.file, got, mail.subject
            )),
            None => {}
        }
    }
    eprintln!(
        "sisimai: {} of {} labels followed ({} exceptions)",
        labels.len() - wrong.len() - LABEL_EXCEPTIONS.len(),
        labels.len(),
        LABEL_EXCEPTIONS.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Message-ID header lines anywhere in the file, other than the bounce's own.
fn embedded_ids_in_file(raw: &[u8], own: Option<&str>) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut ids = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start_matches([' ', '\t', '>']);
        let Some(rest) = t
            .get(..11)
            .filter(|h| h.eq_ignore_ascii_case("message-id:"))
            .map(|_| &t[11..])
        else {
            continue;
        };
        let mut v = rest.trim().to_string();
        if v.is_empty() {
            v = lines
                .peek()
                .map(|l| l.trim().to_string())
                .unwrap_or_default();
        }
        let id = v.trim_matches(['<', '>']).to_string();
        if id.contains('@') && Some(id.as_str()) != own {
            ids.push(id);
        }
    }
    ids
}

#[test]
fn original_message_id_is_found_in_bounces() {
    let mut with_original = 0;
    let mut found = 0;
    let mut missing = Vec::new();
    for l in labels()
        .iter()
        .filter(|l| l.is_bounce || l.is_feedback_report)
    {
        let raw = std::fs::read(corpus().join(&l.file)).expect("fixture");
        let mail = parse(&raw);
        let candidates = embedded_ids_in_file(&raw, mail.message_id.as_deref());
        if candidates.is_empty() {
            continue; // the original (or its Message-ID) is not in the bounce
        }
        with_original += 1;
        match bounced_message_id(&mail) {
            Some(id) if candidates.iter().any(|c| c == id) => found += 1,
            got => {
                if !EMBEDDED_ID_EXCEPTIONS.iter().any(|(f, _)| *f == l.file) {
                    missing.push(format!("{}: got {got:?}, file has {candidates:?}", l.file));
                }
            }
        }
    }
    eprintln!(
        "sisimai: embedded Message-ID found in {found} of {with_original} bounces that contain the original"
    );
    assert!(
        with_original >= 80,
        "only {with_original} bounces with an original?"
    );
    assert!(missing.is_empty(), "{missing:#?}");
}
