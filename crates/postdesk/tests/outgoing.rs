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
    let (first, rest) = common::split_top(&text);
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

#[test]
fn agent_reply_reaches_requester_and_cc_and_the_answer_threads_back() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(FAST, &smtp_plain(&sink));
    desk.import_mail(
        "a.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Cc", "Bob <bob@customer.example>"),
                ("Subject", "VPN down"),
                ("Message-ID", "<vpn1@customer.example>"),
            ],
            "The VPN is down.",
        ),
    );
    send(&desk);
    let ack = sink.wait_for(1, Duration::from_secs(10));
    let ack_id = parsed(&ack[0]).message_id.unwrap();

    let out = desk
        .run_with_stdin(
            &["reply", "1", "--agent", "Max Agent"],
            Some(b"Please restart the router.\n"),
        )
        .ok();
    assert!(out.contains("Sent"), "{out}");
    let got = sink.wait_for(2, Duration::from_secs(10));
    let reply = &got[1];
    let mut to = reply.envelope_to.clone();
    to.sort();
    assert_eq!(to, vec!["bob@customer.example", "jane@customer.example"]);
    let m = parsed(reply);
    assert_eq!(m.subject, "Re: [HD#1] VPN down");
    assert_eq!(m.to[0].email, "jane@customer.example");
    assert_eq!(m.cc[0].email, "bob@customer.example");
    assert_eq!(m.in_reply_to, vec!["vpn1@customer.example"]);
    assert_eq!(m.references, vec!["vpn1@customer.example"]);
    assert_eq!(m.header("Auto-Submitted"), None, "a person's reply");
    assert!(m.text.contains("Please restart the router."), "{}", m.text);
    let reply_id = m.message_id.clone().unwrap();
    let show = desk.show(1);
    assert!(show.contains("Please restart the router."), "{show}");

    // The customer answers the reply: In-Reply-To only, subject edited, no tag.
    desk.import_mail(
        "answer.eml",
        &mail(
            &[
                ("From", "jane@customer.example"),
                ("Subject", "router restarted, still broken"),
                ("In-Reply-To", &format!("<{reply_id}>")),
            ],
            "Still broken after the restart.",
        ),
    );
    // And the acknowledgement, the same way.
    desk.import_mail(
        "answer2.eml",
        &mail(
            &[
                ("From", "jane@customer.example"),
                ("Subject", "one more thing"),
                ("In-Reply-To", &format!("<{ack_id}>")),
            ],
            "It is the blue cable.",
        ),
    );
    let list = desk.list();
    assert_eq!(list.matches("VPN down").count(), 1, "{list}");
    assert!(!list.contains("one more thing"), "a new ticket: {list}");
    let show = desk.show(1);
    assert!(show.contains("Still broken after the restart."), "{show}");
    assert!(show.contains("It is the blue cable."), "{show}");
}

#[test]
fn retry_after_the_server_was_down_and_permanent_failure_on_the_ticket() {
    let mut sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(FAST, &smtp_plain(&sink));
    sink.stop();
    desk.import_mail(
        "a.eml",
        &mail(
            &[("From", "jane@customer.example"), ("Subject", "Down")],
            "x",
        ),
    );
    let out = send(&desk);
    assert!(out.contains("0 sent, 1 to be retried"), "{out}");
    let list = desk.run(&["outbox", "list"]).ok();
    assert!(
        list.contains("queued") && list.contains("last error"),
        "{list}"
    );
    sink.start_again();
    // Not due yet right away; due after the backoff (1 s here).
    std::thread::sleep(Duration::from_millis(1100));
    let out = send(&desk);
    assert!(out.contains("1 sent"), "{out}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].envelope_to, vec!["jane@customer.example"]);
    let show = desk.run(&["outbox", "show", "1"]).ok();
    assert!(show.contains("attempts:    2"), "{show}");

    // 5xx: failed at once, recorded on the ticket; 4xx: waits.
    desk.import_mail(
        "b.eml",
        &mail(
            &[
                ("From", "reject-me@customer.example"),
                ("Subject", "Bounce"),
            ],
            "x",
        ),
    );
    desk.import_mail(
        "c.eml",
        &mail(
            &[("From", "tempfail@customer.example"), ("Subject", "Later")],
            "x",
        ),
    );
    let out = send(&desk);
    assert!(out.contains("1 to be retried, 1 failed"), "{out}");
    let show = desk.show(2);
    assert!(show.contains("could not be delivered"), "{show}");
    assert!(show.contains("550"), "{show}");
    let failed = desk.run(&["outbox", "list", "--status", "failed"]).ok();
    assert!(failed.contains("reject-me@customer.example"), "{failed}");
    // Retry puts it back (and fails again here: the address still does not exist).
    let out = desk.run(&["outbox", "retry", "2"]).ok();
    assert!(out.contains("1 mail(s) queued again"), "{out}");
}

#[test]
fn failure_alert_carries_the_original() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(
        FAST,
        &format!(
            "{}\n[helpdesk.notifications]\nalert_contacts = [\"ops@example.com\"]\n\n[[helpdesk.rule]]\nname = \"no spam\"\nconditions = [{{ field = \"subject\", op = \"contains\", value = \"SPAM\" }}]\nactions = [{{ action = \"reject\", reason = \"spam is refused\" }}]\n",
            smtp_plain(&sink)
        ),
    );
    let original = mail(
        &[
            ("From", "x@spam.example"),
            ("Subject", "SPAM offer"),
            ("Message-ID", "<spam1@spam.example>"),
        ],
        "Buy now.",
    );
    desk.import_mail("spam.eml", &original);
    send(&desk);
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "an alert, no acknowledgement");
    assert_eq!(got[0].envelope_to, vec!["ops@example.com"]);
    let m = parsed(&got[0]);
    assert!(
        m.subject.contains("could not be processed"),
        "{}",
        m.subject
    );
    assert!(m.text.contains("spam is refused"), "{}", m.text);
    assert!(m.text.contains("x@spam.example"), "{}", m.text);
    let raw = String::from_utf8_lossy(&got[0].raw);
    assert!(raw.contains("Content-Type: message/rfc822"), "{raw}");
    assert!(
        raw.contains("Message-ID: <spam1@spam.example>"),
        "original attached: {raw}"
    );
    assert!(raw.contains("Buy now."), "{raw}");
}

#[test]
fn starttls_login_check_and_agent_notification() {
    let sink = SmtpSink::start(SinkOptions::default().starttls().login("desk", "s3cret"));
    let desk = desk(FAST, "");
    std::fs::write(desk.path("smtp-password"), "s3cret\n").unwrap();
    let smtp = format!(
        "\n[helpdesk.defaults]\nmanager = \"manager@example.com\"\n\n[helpdesk.smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\nuser = \"desk\"\npassword_file = \"smtp-password\"\nfrom = \"help@example.com\"\nfrom_name = \"ACME Help\"\n",
        sink.port(),
        sink.ca_cert_pem_path().unwrap().display()
    );
    desk.write_config(&smtp);
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&text);
    std::fs::write(desk.config(), format!("{first}\n{FAST}\n{rest}")).unwrap();

    let check = desk.run(&["check"]).ok();
    assert!(
        check.contains("ok    SMTP: greeting, TLS and login OK"),
        "{check}"
    );
    assert!(!check.contains("s3cret"), "{check}");

    desk.import_mail(
        "a.eml",
        &mail(
            &[("From", "jane@customer.example"), ("Subject", "Hello TLS")],
            "Body text here.",
        ),
    );
    let out = send(&desk);
    assert!(out.contains("2 sent"), "{out}");
    let got = sink.wait_for(2, Duration::from_secs(10));
    let notification = got
        .iter()
        .find(|r| r.envelope_to == ["manager@example.com"])
        .expect("the manager hears of the new ticket");
    let m = parsed(notification);
    assert_eq!(m.subject, "[HD#1] Hello TLS — new ticket");
    assert_eq!(m.header("Auto-Submitted"), Some("auto-generated"));
    assert!(m.text.contains("Body text here."), "{}", m.text);
    assert_eq!(m.from.as_ref().unwrap().email, "help@example.com");
    assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("ACME Help"));

    // A wrong password: check fails, and mail waits instead of failing.
    std::fs::write(desk.path("smtp-password"), "wrong").unwrap();
    let run = desk.run(&["check"]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.contains("FAIL  SMTP"), "{}", run.stdout);
    desk.import_mail(
        "b.eml",
        &mail(
            &[("From", "joe@customer.example"), ("Subject", "Again")],
            "x",
        ),
    );
    let out = send(&desk);
    assert!(out.contains("0 sent, 2 to be retried, 0 failed"), "{out}");
}

/// SIGKILL `postdesk outbox send` at random points until the outbox is empty: every
/// queued mail arrives, and a mail that arrives twice carries the same Message-ID.
#[test]
fn sigkill_during_delivery_loses_nothing() {
    use std::collections::HashMap;
    use std::process::{Command, Stdio};

    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(
        "[outgoing]\nretry_base_secs = 1\nlease_secs = 1\n",
        &format!(
            "{}\n[helpdesk.notifications]\nmax_acknowledgements_per_hour = 100\n",
            smtp_plain(&sink)
        ),
    );
    let dir = desk.path("mails");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..15 {
        let m = mail(
            &[
                ("From", &format!("c{i}@customer.example")),
                ("Subject", &format!("Issue {i}")),
            ],
            "x",
        );
        std::fs::write(dir.join(format!("{i}.eml")), m.replace('\n', "\r\n")).unwrap();
    }
    desk.run(&["import", dir.to_str().unwrap()]).ok();
    let queued = desk
        .run(&["outbox", "list", "--status", "queued", "--limit", "100"])
        .ok();
    assert_eq!(queued.lines().count(), 15, "{queued}");

    // Twenty senders are killed at random moments; after them (on a loaded machine a
    // sender may not get past its start within the moment given) one runs to its end.
    const KILLED_ROUNDS: usize = 20;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut kills = 0;
    for round in 0.. {
        assert!(round <= KILLED_ROUNDS + 3, "the outbox never emptied");
        let list = desk.run(&["outbox", "list", "--status", "queued"]).ok();
        if list.contains("The outbox is empty") {
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .args([
                "--config",
                desk.config().to_str().unwrap(),
                "outbox",
                "send",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round >= KILLED_ROUNDS {
            let started = std::time::Instant::now();
            while child.try_wait().unwrap().is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "outbox send did not finish"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            std::thread::sleep(Duration::from_millis(20 + seed % 200));
            if child.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Mails a killed sender held come back when its lease (1 s) ends.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let got = sink.received();
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for r in &got {
        let m = parsed(r);
        by_id
            .entry(m.message_id.clone().unwrap())
            .or_default()
            .push(r.envelope_to.join(","));
    }
    assert_eq!(
        by_id.len(),
        15,
        "every queued mail arrived, each with one Message-ID"
    );
    for (id, recipients) in &by_id {
        assert!(
            recipients.iter().all(|r| r == &recipients[0]),
            "{id} went to different recipients: {recipients:?}"
        );
    }
    let sent = desk
        .run(&["outbox", "list", "--status", "sent", "--limit", "100"])
        .ok();
    assert_eq!(sent.lines().count(), 15, "{sent}");
    eprintln!("{} mails received for 15 queued, {kills} kills", got.len());
    // At most one repeat per crash: the mail accepted just before it.
    assert!(
        got.len() <= 15 + kills,
        "{} received after {kills} kills",
        got.len()
    );
}
