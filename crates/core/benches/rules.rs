//! Cost of the mail rules: 100 rules evaluated against one realistic mail.
//!
//! `cargo bench -p postdesk-core --bench rules` (target: under 20 µs per mail).
//! No rule but the last matches, so every rule and condition is evaluated, as for
//! the mail that falls through to a catch-all rule: the worst case.

use std::hint::black_box;
use std::time::{Duration, Instant};

use postdesk_core::HelpdeskSettings;
use postdesk_core::rules::{
    ActionSettings, ConditionSettings, MatchMode, RuleSettings, ScalarValue, WrittenFields,
};
use postdesk_core::settings::Helpdesk;
use postdesk_mail::{Classification, parse};

fn condition(field: &str, op: &str, value: &str) -> ConditionSettings {
    ConditionSettings {
        field: field.into(),
        op: op.into(),
        value: Some(ScalarValue::Text(value.into())),
        case_sensitive: false,
    }
}

/// A hundred rules of the kinds support teams write, over every field.
fn rules() -> Vec<RuleSettings> {
    let mut rules: Vec<RuleSettings> = (0..99)
        .map(|i| {
            let (match_mode, conditions) = match i % 10 {
                0 => (
                    MatchMode::All,
                    vec![condition(
                        "sender-domain",
                        "equals",
                        &format!("customer{i}.example"),
                    )],
                ),
                1 => (
                    MatchMode::All,
                    vec![condition("subject", "contains", &format!("order {i}"))],
                ),
                2 => (
                    MatchMode::All,
                    vec![condition(
                        "from",
                        "ends-with",
                        &format!("@partner{i}.example"),
                    )],
                ),
                3 => (
                    MatchMode::All,
                    vec![condition(&format!("header:X-Tool-{i}"), "contains", "yes")],
                ),
                4 => (
                    MatchMode::All,
                    vec![condition(
                        "body",
                        "contains",
                        &format!("contract number {i}"),
                    )],
                ),
                5 => (
                    MatchMode::All,
                    vec![condition("subject", "regex", &format!(r"^\[ext-{i}\]"))],
                ),
                6 => (
                    MatchMode::Any,
                    vec![
                        condition("to", "equals", &format!("team{i}@example.com")),
                        condition("cc", "contains", &format!("lead{i}")),
                    ],
                ),
                7 => (
                    MatchMode::All,
                    vec![condition("attachment-name", "ends-with", &format!(".x{i}"))],
                ),
                8 => (
                    MatchMode::All,
                    vec![
                        condition("classification", "equals", "normal"),
                        condition("subject", "starts-with", &format!("urgent {i}:")),
                    ],
                ),
                _ => (
                    MatchMode::All,
                    vec![condition("body", "regex", &format!(r"invoice\s+#{i}\b"))],
                ),
            };
            RuleSettings {
                name: format!("rule {i}"),
                match_mode,
                stop: true,
                conditions,
                actions: vec![ActionSettings {
                    set: WrittenFields {
                        priority: Some("high".into()),
                        tags: Some(vec![format!("t{i}")]),
                        ..WrittenFields::default()
                    },
                    ..ActionSettings::named("set")
                }],
            }
        })
        .collect();
    rules.push(RuleSettings {
        name: "everything else".into(),
        match_mode: MatchMode::All,
        stop: true,
        conditions: vec![condition("subject", "not-equals", "")],
        actions: vec![ActionSettings::named("create-ticket")],
    });
    rules
}

fn helpdesk() -> Helpdesk {
    let settings: HelpdeskSettings =
        serde_json::from_str(r#"{"name": "Support", "addresses": ["support@example.com"]}"#)
            .expect("valid settings");
    HelpdeskSettings {
        rules: rules(),
        ..settings
    }
    .compile()
    .expect("the benchmark's rules compile")
}

/// A customer mail of about 4 KB: the usual relay headers, a plain-text body with a
/// quoted history, and a PDF.
fn mail() -> Vec<u8> {
    let mut body = String::from(
        "Hello support team,\n\nour invoice for October lists the licence twice. Could you check it?\n\nBest regards\nJane Doe\nACME Corp., Purchasing\n\n",
    );
    body.push_str("On Mon, 16 Nov 2026 at 09:12, Support <support@example.com> wrote:\n");
    for i in 0..30 {
        body.push_str(&format!(
            "> Line {i} of the earlier conversation about the licence and its renewal.\n"
        ));
    }
    let mut raw = String::new();
    for hop in 0..5 {
        raw.push_str(&format!(
            "Received: from mx{hop}.relay.example (mx{hop}.relay.example [192.0.2.{hop}])\n\tby mx.example.com with ESMTPS id abc{hop}; Mon, 16 Nov 2026 10:0{hop}:00 +0000\n"
        ));
    }
    raw.push_str("DKIM-Signature: v=1; a=rsa-sha256; d=acme.example; s=s1; h=from:to:subject:date; bh=abc; b=def\n");
    raw.push_str("From: Jane Doe <jane@acme.example>\nTo: Support <support@example.com>\nCc: Carl Controller <carl@acme.example>\n");
    raw.push_str("Subject: Re: Invoice October: licence billed twice\nDate: Mon, 16 Nov 2026 10:05:00 +0000\n");
    raw.push_str(
        "Message-ID: <bench@acme.example>\nIn-Reply-To: <prev@example.com>\nX-Mailer: Mailer 1.0\n",
    );
    raw.push_str("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n");
    raw.push_str(&body);
    raw.push_str("\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"Invoice-October.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n--b--\n");
    raw.replace('\n', "\r\n").into_bytes()
}

fn main() {
    let hd = helpdesk();
    let raw = mail();
    let parsed = parse(&raw);
    let class = Classification::Normal;
    let matched = hd.rules.evaluate(&parsed, class);
    let names: Vec<&str> = matched.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["everything else"], "only the catch-all matches");
    println!(
        "{} rules, mail of {} bytes ({} bytes of body text, {} attachment)",
        hd.rules.rules().len(),
        raw.len(),
        parsed.text.len(),
        parsed.attachments.len()
    );

    let iterations = 20_000;
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    // Five rounds; the best shows the cost without scheduler noise, the mean with it.
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..iterations {
            let matched = hd.rules.evaluate(black_box(&parsed), black_box(class));
            black_box(matched.resolve(black_box(false)));
        }
        let elapsed = started.elapsed();
        best = best.min(elapsed);
        total += elapsed;
    }
    let per = |d: Duration, n: u32| d.as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "evaluate + resolve, 100 rules: {:.2} µs per mail (best round), {:.2} µs mean over {} evaluations",
        per(best, iterations),
        per(total, iterations * 5),
        iterations * 5
    );
}
