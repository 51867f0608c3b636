//! The mail → ticket pipeline through the `postdesk` command line, against real SQLite files.

mod common;

use common::{Desk, mail};

fn new_request(desk: &Desk) {
    let out = desk.import_mail(
        "1.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@acme.example>"),
                ("Subject", "Printer jams"),
                ("Message-ID", "<req-1@acme.example>"),
                ("Cc", "Carl <carl@partner.example>"),
            ],
            "The printer jams.\n",
        ),
    );
    assert!(out.contains("created #1"), "{out}");
}

#[test]
fn subject_reference_after_reply_prefixes_threads() {
    let desk = Desk::new("");
    new_request(&desk);
    for (i, prefix) in [
        "Re:", "AW: Re:", "Fwd:", "WG:", "VS:", "SV:", "Antw:", "RE: RE:",
    ]
    .iter()
    .enumerate()
    {
        let out = desk.import_mail(
            &format!("r{i}.eml"),
            &mail(
                &[
                    ("From", "jane@ACME.example"),
                    ("Subject", &format!("{prefix} [HD#1] Printer jams")),
                ],
                &format!("reply {i}\n"),
            ),
        );
        assert!(out.contains("appended #1"), "{prefix}: {out}");
    }
    let ticket = desk.show(1);
    assert!(ticket.contains("status customer-replied"), "{ticket}");
    assert!(ticket.contains("reply 7"), "{ticket}");
}

#[test]
fn in_reply_to_threads_even_with_an_edited_subject() {
    let desk = Desk::new("");
    new_request(&desk);
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "something else"),
                ("In-Reply-To", "<req-1@acme.example>"),
            ],
            "more\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
    let out = desk.import_mail(
        "3.eml",
        &mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "again"),
                ("References", "<unknown@x> <req-1@acme.example>"),
            ],
            "more\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
}

#[test]
fn unknown_number_or_reference_in_body_opens_a_new_ticket() {
    let desk = Desk::new("");
    new_request(&desk);
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "Re: [HD#999] old"),
            ],
            "x\n",
        ),
    );
    assert!(out.contains("created #2"), "{out}");
    let out = desk.import_mail(
        "3.eml",
        &mail(
            &[("From", "jane@acme.example"), ("Subject", "new thing")],
            "see [HD#1]\n",
        ),
    );
    assert!(out.contains("created #3"), "{out}");
}

#[test]
fn sender_policy_keeps_strangers_out_of_tickets() {
    let desk = Desk::new("");
    new_request(&desk);
    // Carl was CC'd on the request: he may add to it.
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "carl@partner.example"),
                ("Subject", "Re: [HD#1] x"),
            ],
            "from carl\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
    // Mallory only guessed the number.
    let out = desk.import_mail(
        "3.eml",
        &mail(
            &[
                ("From", "mallory@evil.example"),
                ("Subject", "Re: [HD#1] x"),
            ],
            "let me in\n",
        ),
    );
    assert!(out.contains("created #2"), "{out}");
    assert!(!desk.show(1).contains("let me in"));
    let stranger = desk.show(2);
    assert!(
        stranger.contains("references ticket #1") && stranger.contains("not a participant"),
        "{stranger}"
    );
}

/// Issue 16 §8: with `trust_authentication_results`, a follow-up whose From the trusted
/// MTA reports as failing DMARC does not write into the ticket, by subject or by
/// In-Reply-To; one that passes does. Without the setting the header is not read.
#[test]
fn a_forged_sender_cannot_write_into_a_ticket() {
    let results = |dmarc: &str, id: &str| {
        format!("{id}; spf=fail smtp.mailfrom=acme.example; dmarc={dmarc} header.from=acme.example")
    };
    let forged = |name: &str, id: &str, subject: &str| {
        mail(
            &[
                ("Authentication-Results", results("fail", id).as_str()),
                ("From", "Jane Doe <jane@acme.example>"),
                ("Subject", subject),
                ("In-Reply-To", "<req-1@acme.example>"),
                ("Message-ID", &format!("<{name}@evil.example>")),
            ],
            &format!("forged {name}\n"),
        )
    };

    let desk = Desk::new("trust_authentication_results = \"mx.example.com\"");
    new_request(&desk);
    let out = desk.import_mail(
        "2.eml",
        &forged("by-subject", "mx.example.com", "Re: [HD#1] x"),
    );
    assert!(out.contains("created #2"), "{out}");
    let out = desk.import_mail("3.eml", &forged("by-reference", "mx.example.com", "Re: x"));
    assert!(out.contains("created #3"), "{out}");
    assert!(!desk.show(1).contains("forged"), "{}", desk.show(1));
    let held = desk.show(2);
    assert!(
        held.contains("answers ticket #1") && held.contains("dmarc=fail"),
        "{held}"
    );
    // Another MTA's verdict is not trusted: it does not stop the follow-up.
    let out = desk.import_mail(
        "4.eml",
        &forged("other-mta", "relay.example.net", "Re: [HD#1] x"),
    );
    assert!(out.contains("appended #1"), "{out}");
    let genuine = mail(
        &[
            (
                "Authentication-Results",
                results("pass", "mx.example.com").as_str(),
            ),
            ("From", "Jane Doe <jane@acme.example>"),
            ("Subject", "Re: [HD#1] x"),
        ],
        "genuine\n",
    );
    let out = desk.import_mail("5.eml", &genuine);
    assert!(out.contains("appended #1"), "{out}");

    // Off by default.
    let desk = Desk::new("");
    new_request(&desk);
    let out = desk.import_mail(
        "2.eml",
        &forged("by-subject", "mx.example.com", "Re: [HD#1] x"),
    );
    assert!(out.contains("appended #1"), "{out}");
}

#[test]
fn organization_colleagues_may_follow_up() {
    let desk = Desk::new("[helpdesk.organizations]\n\"acme.example\" = \"ACME\"\n");
    new_request(&desk);
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[("From", "bob@acme.example"), ("Subject", "Re: [HD#1] x")],
            "me too\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
    assert!(desk.show(1).contains("(ACME)"));
}

#[test]
fn unknown_sender_policies() {
    let desk =
        Desk::new("unknown_sender = \"default-contact\"\ndefault_contact = \"anon@example.com\"\n");
    desk.import_mail(
        "1.eml",
        &mail(&[("From", "new@example.org"), ("Subject", "hi")], "x\n"),
    );
    assert!(desk.list().contains("anon@example.com"), "{}", desk.list());

    let desk = Desk::new("unknown_sender = \"reject\"\n");
    let out = desk.import_mail(
        "1.eml",
        &mail(&[("From", "new@example.org"), ("Subject", "hi")], "x\n"),
    );
    assert!(
        out.contains("failed") && out.contains("unknown sender new@example.org"),
        "{out}"
    );
    assert!(desk.list().contains("No tickets"));
    let failed = desk.run(&["failed", "list"]).ok();
    assert!(
        failed.contains("unknown sender new@example.org"),
        "{failed}"
    );

    // Fix the cause, process again: the ledger row becomes a ticket, not a second row.
    desk.write_config("unknown_sender = \"create-contact\"\n");
    let retried = desk.run(&["failed", "retry", "--all"]).ok();
    assert!(retried.contains("created ticket #1"), "{retried}");
    assert!(
        desk.run(&["failed", "list"])
            .ok()
            .contains("No failed mails")
    );
}

#[test]
fn reply_to_a_closed_ticket() {
    for (policy, expect) in [
        ("reopen", "appended #1"),
        ("new-ticket", "created #2"),
        ("reject", "failed"),
    ] {
        let desk = Desk::new(&format!("reply_to_closed = \"{policy}\"\n"));
        new_request(&desk);
        desk.run(&["tickets", "set-status", "1", "closed"]).ok();
        // An out-of-office reply never reopens.
        let ooo = desk.import_mail(
            "ooo.eml",
            &mail(
                &[
                    ("From", "jane@acme.example"),
                    ("Subject", "Auto: [HD#1] x"),
                    ("Auto-Submitted", "auto-replied"),
                ],
                "away\n",
            ),
        );
        assert!(ooo.contains("appended #1"), "{ooo}");
        assert!(desk.show(1).contains("status closed"));
        let out = desk.import_mail(
            "2.eml",
            &mail(
                &[("From", "jane@acme.example"), ("Subject", "Re: [HD#1] x")],
                "still broken\n",
            ),
        );
        assert!(out.contains(expect), "{policy}: {out}");
        let status = if policy == "reopen" {
            "status customer-replied"
        } else {
            "status closed"
        };
        assert!(desk.show(1).contains(status), "{policy}: {}", desk.show(1));
    }
}

#[test]
fn the_same_mail_twice_is_one_ticket_and_one_entry() {
    let desk = Desk::new("");
    new_request(&desk);
    let again = desk
        .run(&["import", "--verbose", desk.path("1.eml").to_str().unwrap()])
        .ok();
    assert!(again.contains("duplicate"), "{again}");
    assert!(again.contains("1 already processed"), "{again}");
    let list = desk.list();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("      1  "), "one entry: {list}");
    // Same Message-ID, different bytes (delivered twice via another route): ignored.
    let out = desk.import_mail(
        "1b.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@acme.example>"),
                ("Subject", "Printer jams"),
                ("Message-ID", "<req-1@acme.example>"),
                ("X-Route", "2"),
            ],
            "The printer jams.\n",
        ),
    );
    assert!(
        out.contains("ignored") && out.contains("already taken"),
        "{out}"
    );
}

#[test]
fn reply_marker_and_quote_headers_are_stripped_on_follow_ups() {
    let desk = Desk::new("reply_marker = \"===== reply above this line =====\"\n");
    new_request(&desk);
    desk.import_mail(
        "2.eml",
        &mail(
            &[("From", "jane@acme.example"), ("Subject", "Re: [HD#1] x")],
            "Fixed after a restart.\n\n===== reply above this line =====\nOld ticket text\n",
        ),
    );
    desk.import_mail(
        "3.eml",
        &mail(
            &[("From", "jane@acme.example"), ("Subject", "AW: [HD#1] x")],
            "Danke!\n\nAm 16.11.2026 um 08:00 schrieb Support <support@example.com>:\n> Bitte neu starten.\n",
        ),
    );
    let ticket = desk.show(1);
    assert!(
        ticket.contains("Fixed after a restart.") && ticket.contains("Danke!"),
        "{ticket}"
    );
    assert!(
        !ticket.contains("Old ticket text") && !ticket.contains("Bitte neu starten"),
        "{ticket}"
    );
    let full = desk.run(&["tickets", "show", "1", "--full"]).ok();
    assert!(
        full.contains("Old ticket text") && full.contains("Bitte neu starten"),
        "the full text stays: {full}"
    );
}

#[test]
fn attachment_policy_lists_refused_attachments() {
    let desk =
        Desk::new("[helpdesk.attachments]\nallowed_types = [\"image/*\"]\nmax_size_mb = 1\n");
    let big = "QUFB".repeat(400_000); // 1.2 MB decoded
    let body = format!(
        "--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=\"shot.png\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b\nContent-Type: application/x-msdownload\nContent-Disposition: attachment; filename=\"..\\\\..\\\\evil.exe\"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--b\nContent-Type: image/jpeg\nContent-Disposition: attachment; filename=\"huge.jpg\"\nContent-Transfer-Encoding: base64\n\n{big}\n--b--\n"
    );
    desk.import_mail(
        "1.eml",
        &mail(
            &[
                ("From", "a@example.org"),
                ("Subject", "files"),
                ("Content-Type", "multipart/mixed; boundary=\"b\""),
            ],
            &body,
        ),
    );
    let ticket = desk.show(1);
    assert!(
        ticket.contains("shot.png (image/png, 8 bytes, kept)"),
        "{ticket}"
    );
    assert!(ticket.contains("evil.exe (application/x-msdownload, 12 bytes, refused: type application/x-msdownload is not allowed)"), "{ticket}");
    assert!(
        !ticket.contains("..\\"),
        "file names are made safe: {ticket}"
    );
    assert!(
        ticket.contains("huge.jpg (image/jpeg, 1200000 bytes, refused: larger than 1 MB)"),
        "{ticket}"
    );
    let kept = walk(&desk.path("data/attachments"));
    assert_eq!(
        kept.len(),
        1,
        "only the allowed attachment is stored: {kept:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn charsets_in_subjects_names_and_bodies() {
    let desk = Desk::new("");
    let cases: &[(&str, &[u8], &str)] = &[
        ("iso-8859-1", b"Subject: =?iso-8859-1?Q?Caf=E9_cr=E8me?=\nFrom: =?iso-8859-1?Q?Ren=E9?= <rene@example.org>\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nCaf\xe9 cr\xe8me\n", "Café crème"),
        ("windows-1252", b"Subject: =?windows-1252?Q?=93quoted=94_=80?=\nFrom: w@example.org\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\n\x93quoted\x94 \x80\n", "“quoted” €"),
        ("koi8-r", b"Subject: =?koi8-r?B?8NLJ18XU?=\nFrom: k@example.org\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n", "Привет"),
        ("rfc2231", b"Subject: plain\nFrom: r@example.org\nContent-Type: text/plain; charset=utf-8\n\nGr\xc3\xbc\xc3\x9fe\n", "Grüße"),
    ];
    for (i, (name, raw, expect)) in cases.iter().enumerate() {
        let path = desk.path(&format!("{name}.eml"));
        std::fs::write(&path, raw).unwrap();
        desk.run(&["import", path.to_str().unwrap()]).ok();
        let ticket = desk.show(i as i64 + 1);
        assert!(ticket.contains(expect), "{name}: {ticket}");
    }
    assert!(desk.show(1).contains("René"));
}

#[test]
fn other_reference_formats_are_recognised() {
    let desk = Desk::new(
        "reference_format = \"[Ticket ID : {number}]\"\nalso_recognise = [\"[example.com #{number}]\", \"[Ticket#{number}]\"]\nfirst_ticket_number = 102\nfollowup_senders = [\"anyone\"]\n",
    );
    let out = desk.import_mail(
        "1.eml",
        &mail(
            &[("From", "c@example.org"), ("Subject", "Problem xyz")],
            "x\n",
        ),
    );
    assert!(out.contains("created #102"), "{out}");
    for (i, subject) in [
        "Re: TT19 [Ticket ID : 102] Problem xyz",
        "Re: [example.com #102] x",
        "[Ticket#102]",
    ]
    .iter()
    .enumerate()
    {
        let out = desk.import_mail(
            &format!("r{i}.eml"),
            &mail(&[("From", "c@example.org"), ("Subject", subject)], "y\n"),
        );
        assert!(out.contains("appended #102"), "{subject}: {out}");
    }
}

#[test]
fn loops_bounces_and_auto_replies_open_no_tickets() {
    let desk = Desk::new("");
    let out = desk.import_mail(
        "1.eml",
        &mail(
            &[("From", "Support <SUPPORT@example.com>"), ("Subject", "x")],
            "x\n",
        ),
    );
    assert!(
        out.contains("ignored") && out.contains("own address"),
        "{out}"
    );
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "x@example.org"),
                ("Subject", "Out of office"),
                ("Auto-Submitted", "auto-replied"),
            ],
            "away\n",
        ),
    );
    assert!(
        out.contains("ignored") && out.contains("auto-reply"),
        "{out}"
    );
    assert!(desk.list().contains("No tickets"));
}

#[test]
fn bounces_attach_to_the_ticket_of_the_bounced_mail() {
    let desk = Desk::new("");
    new_request(&desk);
    let bounce = "From: MAILER-DAEMON@mx.example.org\nTo: support@example.com\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n--r\nContent-Type: text/plain\n\nThe mail could not be delivered.\n--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; jane@acme.example\nAction: failed\nStatus: 5.1.1\n--r\nContent-Type: message/rfc822\n\nFrom: support@example.com\nTo: jane@acme.example\nSubject: [HD#1] Printer jams\nMessage-ID: <req-1@acme.example>\n\nWe got it.\n--r--\n";
    let out = desk.import_mail("b.eml", bounce);
    assert!(out.contains("appended #1"), "{out}");
    let ticket = desk.show(1);
    assert!(ticket.contains("bounce · internal"), "{ticket}");
    assert!(
        ticket.contains("status email-imported"),
        "a bounce changes no status: {ticket}"
    );
}

#[test]
fn deliver_stores_one_mail_from_stdin_or_asks_the_mta_to_retry() {
    let desk = Desk::new("");
    let raw = mail(
        &[("From", "a@example.org"), ("Subject", "via pipe")],
        "hello\n",
    );
    let run = desk.run_with_stdin(&["deliver", "--helpdesk", "Support"], Some(raw.as_bytes()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("created ticket #1"), "{}", run.stdout);
    assert!(desk.list().contains("via pipe"));

    // The database cannot be opened: exit 75 so the MTA keeps the mail.
    std::fs::write(
        desk.config(),
        format!(
            "database_url = \"sqlite:///nonexistent/dir/x.db\"\n{}",
            common::HELPDESK
        ),
    )
    .unwrap();
    let run = desk.run_with_stdin(&["deliver"], Some(raw.as_bytes()));
    assert_eq!(run.code, 75, "{} {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("should retry"), "{}", run.stderr);
}

#[test]
fn an_mbox_and_a_maildir_import_in_order() {
    let desk = Desk::new("");
    let mbox = format!(
        "From jane@acme.example Mon Nov 16 08:00:00 2026\n{}\nFrom jane@acme.example Mon Nov 16 09:00:00 2026\n{}",
        mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "first"),
                ("Message-ID", "<m1@x>")
            ],
            "one\n"
        ),
        mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "Re: [HD#1] first")
            ],
            ">From the mbox\n"
        )
    );
    std::fs::write(desk.path("in.mbox"), mbox).unwrap();
    let out = desk
        .run(&["import", desk.path("in.mbox").to_str().unwrap()])
        .ok();
    assert!(out.contains("2 mails: 1 created, 1 appended"), "{out}");
    assert!(desk.show(1).contains("From the mbox"));
}

#[test]
fn hostile_text_cannot_drive_the_terminal() {
    let desk = Desk::new("");
    desk.import_mail(
        "1.eml",
        &mail(
            &[
                ("From", "x@example.org"),
                ("Subject", "=?utf-8?Q?evil=1B[2J=07?="),
            ],
            "body \x1b]0;pwned\x07\n",
        ),
    );
    let shown = desk.show(1);
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown:?}"
    );
}

#[test]
fn the_demo_shows_mails_becoming_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("demo")
        .arg(&demo)
        .arg("--no-serve")
        .env_remove("POSTDESK_CONFIG")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("7 mails: 3 created, 3 appended, 1 ignored, 0 failed"),
        "{out}"
    );
    assert!(
        out.contains("facture.pdf (application/pdf, 54 bytes, refused"),
        "{out}"
    );
    assert!(out.contains("not a participant"), "{out}");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("demo")
        .arg(&demo)
        .arg("--no-serve")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("7 already processed"));
}
