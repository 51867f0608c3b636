//! The classification rules one by one, and their precedence:
//! Loop > Bounce > AutoReply > Bulk > Normal.

use postdesk_mail::Classification::{self, AutoReply, Bounce, Bulk, Loop, Normal};
use postdesk_mail::{classify, parse};

fn class_of(headers: &str) -> Classification {
    class_with_body(headers, "Hello,\r\nmy printer is broken.\r\n")
}

fn class_with_body(headers: &str, body: &str) -> Classification {
    let mut raw = String::new();
    if !headers.to_ascii_lowercase().contains("from:") {
        raw.push_str("From: Customer <customer@example.org>\r\n");
    }
    raw.push_str("To: support@example.com\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n");
    for line in headers.lines() {
        raw.push_str(line);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    classify(
        &parse(raw.as_bytes()),
        &[
            "support@example.com".to_string(),
            "help@example.com".to_string(),
        ],
    )
}

#[test]
fn ordinary_mail_is_normal() {
    assert_eq!(class_of("Subject: printer broken"), Normal);
    assert_eq!(class_of("Subject: Out of office printer broken"), Normal);
    assert_eq!(
        class_of("Subject: Re: Automatic reply: your ticket"),
        Normal
    );
    assert_eq!(class_of("Subject: Autonomous driving question"), Normal);
    assert_eq!(
        class_of("Subject: undeliverable parcel, please help"),
        Normal
    );
    assert_eq!(class_of("Subject: question\nAuto-Submitted: no"), Normal);
    assert_eq!(class_of("Subject: question\nReturn-Path: <>"), Normal);
}

#[test]
fn own_address_is_a_loop() {
    assert_eq!(
        class_of("From: Support <SUPPORT@Example.COM>\nSubject: Re: [#1] x"),
        Loop
    );
    assert_eq!(
        class_of("From: help@example.com\nSubject: x\nAuto-Submitted: auto-replied"),
        Loop
    );
    // Loop wins over bounce.
    assert_eq!(
        class_of("From: support@example.com\nSubject: Undeliverable: x\nReturn-Path: <>"),
        Loop
    );
    assert_eq!(
        class_of("From: support@example.com.evil.org\nSubject: x"),
        Normal
    );
}

#[test]
fn bounces() {
    assert_eq!(
        class_of("From: MAILER-DAEMON@mx.example.org\nSubject: whatever"),
        Bounce
    );
    assert_eq!(
        class_of("From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nSubject: x"),
        Bounce
    );
    assert_eq!(
        class_of("From: postmaster@example.org\nSubject: Delivery Status Notification (Failure)"),
        Bounce
    );
    assert_eq!(class_of("From: MAILER-DAEMON <>\nSubject: x"), Bounce);
    assert_eq!(
        class_of("Return-Path: <>\nSubject: Undeliverable: printer broken"),
        Bounce
    );
    assert_eq!(
        class_of("Return-Path: <>\nSubject: Mail delivery failed: returning message to sender"),
        Bounce
    );
    assert_eq!(
        class_of("Subject: x\nX-Failed-Recipients: someone@example.org"),
        Bounce
    );
    assert_eq!(
        class_of(
            "Subject: report\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b"
        ),
        Bounce
    );
    // Bounce wins over auto-reply and bulk signals.
    assert_eq!(
        class_of(
            "From: mailer-daemon@example.org\nAuto-Submitted: auto-replied\nPrecedence: bulk\nSubject: x"
        ),
        Bounce
    );
}

#[test]
fn feedback_reports_are_bounces_and_read_receipts_auto_replies() {
    assert_eq!(
        class_of(
            "From: abuse@isp.example\nSubject: FW: spam\nMIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=b"
        ),
        Bounce
    );
    assert_eq!(
        class_of(
            "Subject: Read: your ticket\nMIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=disposition-notification; boundary=b"
        ),
        AutoReply
    );
}

#[test]
fn auto_replies() {
    assert_eq!(
        class_of("Subject: Re: x\nAuto-Submitted: auto-replied"),
        AutoReply
    );
    assert_eq!(
        class_of("Subject: x\nAuto-Submitted: auto-generated; owner-email=a@b"),
        AutoReply
    );
    assert_eq!(class_of("Subject: x\nX-Autoreply: yes"), AutoReply);
    assert_eq!(class_of("Subject: x\nX-Autorespond: x"), AutoReply);
    assert_eq!(class_of("Subject: x\nPrecedence: auto_reply"), AutoReply);
    for subject in [
        "Out of Office: printer broken",
        "Out of Office AutoReply: printer",
        "Automatic reply: [#12] printer",
        "Abwesenheitsnotiz: Drucker",
        "Autoreply: your mail",
        "Auto-Reply: x",
        "Réponse automatique : imprimante",
        "Auto: printer broken",
        "[Auto-Reply] x",
        "Automatische Antwort: Drucker",
        "Out of office",
    ] {
        assert_eq!(
            class_of(&format!("Subject: {subject}")),
            AutoReply,
            "{subject}"
        );
    }
}

#[test]
fn auto_response_suppress_needs_a_second_signal() {
    // Outlook puts it on ordinary mail: alone it is Bulk (a ticket, no acknowledgement).
    assert_eq!(
        class_of("Subject: question\nX-Auto-Response-Suppress: All"),
        Bulk
    );
    assert_eq!(
        class_of("Subject: question\nX-Auto-Response-Suppress: DR, RN"),
        Normal
    );
    assert_eq!(
        class_of("Subject: question\nX-Auto-Response-Suppress: All\nReturn-Path: <>"),
        AutoReply
    );
    assert_eq!(
        class_of(
            "Subject: question\nX-Auto-Response-Suppress: OOF\nX-MS-Exchange-Inbox-Rules-Loop: a@b"
        ),
        AutoReply
    );
    assert_eq!(
        class_of("Subject: news\nX-Auto-Response-Suppress: All\nPrecedence: bulk"),
        AutoReply
    );
}

#[test]
fn bulk() {
    assert_eq!(class_of("Subject: news\nPrecedence: bulk"), Bulk);
    assert_eq!(class_of("Subject: news\nPrecedence: junk"), Bulk);
    assert_eq!(class_of("Subject: news\nPrecedence: list"), Bulk);
    assert_eq!(class_of("Subject: news\nList-Id: <news.example.org>"), Bulk);
    assert_eq!(
        class_of("Subject: news\nList-Unsubscribe: <mailto:u@example.org>"),
        Bulk
    );
    // An auto-reply signal wins over bulk.
    assert_eq!(
        class_of("Subject: Out of Office: news\nList-Id: <news.example.org>"),
        AutoReply
    );
    assert_eq!(
        class_of("Subject: x\nPrecedence: list\nAuto-Submitted: auto-replied"),
        AutoReply
    );
}

#[test]
fn bounced_message_id_comes_from_the_embedded_original() {
    let raw = "From: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
        --b\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@example.com\r\nMessage-ID: <out-1@example.com>\r\nSubject: [#3] hi\r\n\r\nbody\r\n--b--\r\n";
    let mail = parse(raw.as_bytes());
    assert_eq!(classify(&mail, &[]), Bounce);
    assert_eq!(
        postdesk_mail::classify::bounced_message_id(&mail),
        Some("out-1@example.com")
    );
    let normal = parse(b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n");
    assert_eq!(postdesk_mail::classify::bounced_message_id(&normal), None);
}

#[test]
fn labels_have_stable_names() {
    let names: Vec<&str> = [Normal, AutoReply, Bounce, Bulk, Loop]
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(names, ["normal", "auto-reply", "bounce", "bulk", "loop"]);
}

#[test]
fn a_daemon_body_alone_does_not_make_a_bounce() {
    assert_eq!(
        class_with_body(
            "Subject: hi",
            "Your message could not be delivered to anyone.\r\n"
        ),
        Normal
    );
}
