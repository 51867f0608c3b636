//! Outgoing mail end to end, against a real SMTP server on loopback (aiosmtpd):
//! acknowledgements, notifications, alerts, replies, suppressed mode, retries.

mod common;

use std::time::Duration;

use common::{Desk, mail};
use postdesk_testkit::smtp::{Received, SinkOptions, SmtpSink};

fn smtp_plain(sink: &SmtpSink) -> String {
    format!(
        "\n[helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        sink.port()
    )
}

/// A desk with the `[outgoing]` table `outgoing` (after the top-level keys).
fn desk(outgoing: &str, helpdesk_extra: &str) -> Desk {
    let desk = Desk::new(helpdesk_extra);
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    std::fs::write(desk.config(), format!("{first}\n{outgoing}\n{rest}")).unwrap();
    desk
}

const FAST: &str = "[outgoing]\nretry_base_secs = 1\nlease_secs = 2\npoll_secs = 1\n";

fn parsed(r: &Received) -> postdesk_mail::ParsedMail {
    postdesk_mail::parse(&r.raw)
}

fn header<'a>(m: &'a postdesk_mail::ParsedMail, name: &str) -> Option<&'a str> {
    m.header(name)
}

fn send(desk: &Desk) -> String {
    desk.run(&["outbox", "send"]).ok()
}

#[test]
fn acknowledgement_reaches_the_requester() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(
        FAST,
        &format!(
            "[helpdesk.notifications]\nacknowledgement_text = \"We answer Monday to Friday, 8–17.\"\n{}",
            smtp_plain(&sink)
        ),
    );
    desk.import_mail(
        "a.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", "Printer on fire"),
                ("Message-ID", "<first@customer.example>"),
            ],
            "It is burning.",
        ),
    );
    let list = desk.run(&["outbox", "list"]).ok();
    assert!(
        list.contains("queued") && list.contains("acknowledgement"),
        "{list}"
    );
    let out = send(&desk);
    assert!(out.contains("1 sent"), "{out}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope_to, vec!["jane@customer.example"]);
    assert_eq!(got[0].envelope_from, "support@example.com");
    let m = parsed(&got[0]);
    assert_eq!(m.subject, "[HD#1] Printer on fire — registered");
    assert_eq!(header(&m, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(&m, "X-Auto-Response-Suppress"), Some("All"));
    assert_eq!(m.in_reply_to, vec!["first@customer.example"]);
    assert_eq!(m.references, vec!["first@customer.example"]);
    assert!(m.text.contains("Hello Jane Doe,"), "{}", m.text);
    assert!(m.text.contains("[HD#1]"), "{}", m.text);
    assert!(m.text.contains("We answer Monday to Friday"), "{}", m.text);
    let id = m.message_id.clone().unwrap();
    assert!(id.ends_with("@example.com"), "{id}");
    // The outbox shows it sent, with the same Message-ID.
    let show = desk.run(&["outbox", "show", "1"]).ok();
    assert!(show.contains("sent") && show.contains(&id), "{show}");
    // Sending again sends nothing.
    assert!(send(&desk).contains("0 sent"));
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn no_acknowledgement_for_automatic_mail_our_own_or_over_the_rate_limit() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(FAST, &smtp_plain(&sink));
    let mails = [
        mail(
            &[
                ("From", "bob@customer.example"),
                ("Subject", "Out of office"),
                ("Auto-Submitted", "auto-replied"),
            ],
            "I am away.",
        ),
        mail(
            &[
                ("From", "news@list.example"),
                ("Subject", "Newsletter"),
                ("Precedence", "bulk"),
                ("List-Id", "<news.list.example>"),
            ],
            "News.",
        ),
        mail(
            &[("From", "support@example.com"), ("Subject", "Loop")],
            "Ourselves.",
        ),
    ];
    for (i, m) in mails.iter().enumerate() {
        desk.import_mail(&format!("auto{i}.eml"), m);
    }
    // Five new tickets from one sender within the hour: three acknowledgements.
    for i in 0..5 {
        desk.import_mail(
            &format!("flood{i}.eml"),
            &mail(
                &[
                    ("From", "flood@customer.example"),
                    ("Subject", &format!("Problem {i}")),
                ],
                "Help.",
            ),
        );
    }
    send(&desk);
    std::thread::sleep(Duration::from_millis(300));
    let got = sink.received();
    let to: Vec<String> = got.iter().flat_map(|r| r.envelope_to.clone()).collect();
    assert_eq!(to, vec!["flood@customer.example"; 3], "{to:?}");
}

#[test]
fn suppressed_mode_sends_nothing() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk("[outgoing]\nenabled = false\n", &smtp_plain(&sink));
    desk.import_mail(
        "a.eml",
        &mail(
            &[("From", "jane@customer.example"), ("Subject", "Hello")],
            "Hi.",
        ),
    );
    let out = desk.run(&["reply", "1", "--message", "We are on it."]).ok();
    assert!(out.contains("suppressed"), "{out}");
    send(&desk);
    let list = desk.run(&["outbox", "list"]).ok();
    assert_eq!(list.matches("suppressed").count(), 2, "{list}");
    assert!(
        !list.contains("queued") && !list.contains(" sent "),
        "{list}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.received().is_empty());
}
