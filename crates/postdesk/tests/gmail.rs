//! Gmail mailboxes through the Gmail API, against testkit's fake Gmail and its OAuth2
//! token server on loopback, through the real `postdesk` binary: labels as folders,
//! changed only after the commit; the history id followed; the provider's faults.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Desk, mail, wait_until};
use postdesk_testkit::gmail::FakeGmail;
use postdesk_testkit::oauth::TokenServer;

const ADDRESS: &str = "support@gmail.example";

struct Setup {
    tokens: Arc<TokenServer>,
    gmail: FakeGmail,
    refresh: String,
}

fn setup() -> Setup {
    let tokens = Arc::new(TokenServer::start());
    tokens.client("postdesk", "client-secret");
    tokens.set_rotation(true);
    let refresh = tokens.issue_refresh_token(ADDRESS);
    let gmail = FakeGmail::start(ADDRESS, Arc::clone(&tokens));
    Setup {
        tokens,
        gmail,
        refresh,
    }
}

fn mailbox_toml(s: &Setup, extra: &str) -> String {
    format!(
        "[[helpdesk.mailbox]]\nkind = \"gmail\"\nuser = \"{ADDRESS}\"\napi_url = \"{}\"\ncreate_folders = true\n{extra}\n[helpdesk.mailbox.oauth2]\ntoken_url = \"{}\"\nclient_id = \"postdesk\"\nclient_secret = \"client-secret\"\nscopes = [\"https://www.googleapis.com/auth/gmail.modify\"]\nrefresh_token = \"{}\"\n",
        s.gmail.api_url(),
        s.tokens.token_url(),
        s.refresh
    )
}

fn request(n: usize) -> Vec<u8> {
    mail(
        &[
            ("From", &format!("customer{n}@example.org")),
            ("To", "support@example.com"),
            ("Subject", &format!("Request {n}")),
            ("Message-ID", &format!("<request{n}@example.org>")),
        ],
        &format!("Please help with {n}.\n"),
    )
    .into_bytes()
}

fn titles(desk: &Desk) -> Vec<String> {
    let list = desk.run(&["tickets", "list", "--limit", "0"]).ok();
    let mut titles: Vec<String> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split("Request ").nth(1))
        .map(|t| t.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    titles.sort();
    titles
}

fn expected(n: usize) -> Vec<String> {
    let mut all: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    all.sort();
    all
}

fn raw_fetches(gmail: &FakeGmail, since: usize) -> usize {
    gmail.requests()[since..]
        .iter()
        .filter(|r| r.starts_with("GET /gmail/v1/users/") && r.contains("/messages/"))
        .count()
}

#[test]
fn new_mail_becomes_a_ticket_and_is_relabelled_after_the_commit() {
    let s = setup();
    let desk = Desk::new(&mailbox_toml(&s, ""));
    s.gmail.deliver(&request(1), &["INBOX", "UNREAD"]);
    s.gmail.deliver(&request(2), &["INBOX", "UNREAD"]);
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("2 created"), "{out}");
    assert_eq!(s.gmail.count("INBOX"), 0);
    assert_eq!(s.gmail.count("Processed"), 2, "the label was created");
    assert_eq!(
        s.gmail.labels_of_all(),
        vec![vec!["Processed", "UNREAD"]; 2],
        "exactly one of our labels each"
    );

    // The answer threads back; the history id is followed, nothing else is read.
    let reply = mail(
        &[
            ("From", "customer1@example.org"),
            ("Subject", "Re: [HD#1] Request 1"),
            ("In-Reply-To", "<request1@example.org>"),
        ],
        "Thanks!\n",
    );
    let before = s.gmail.requests().len();
    s.gmail.deliver(reply.as_bytes(), &["INBOX"]);
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 appended"), "{out}");
    assert!(desk.show(1).contains("Thanks!"));
    assert_eq!(
        raw_fetches(&s.gmail, before),
        1,
        "{:?}",
        &s.gmail.requests()[before..]
    );
    assert!(
        s.gmail.requests()[before..]
            .iter()
            .any(|r| r.ends_with("/history")),
        "the history was followed"
    );
    // The refresh token rotated with each refresh; the kept one still works.
    assert!(s.tokens.refresh_count() >= 1);
    let status = desk.run(&["status"]).ok();
    assert!(status.contains("mails processed: 3, failed: 0"), "{status}");
}

#[test]
fn refused_mail_gets_the_unprocessed_label() {
    let s = setup();
    let desk = Desk::new(&format!(
        "unknown_sender = \"reject\"\n{}",
        mailbox_toml(&s, "")
    ));
    s.gmail.deliver(&request(1), &["INBOX"]);
    assert!(desk.run(&["scan"]).ok().contains("1 failed"));
    assert_eq!(s.gmail.labels_of_all(), vec![vec!["Unprocessed"]]);
}

#[test]
fn paging_throttling_an_expired_token_and_lost_history_double_nothing() {
    let s = setup();
    s.gmail.set_page_size(2);
    let desk = Desk::new(&mailbox_toml(&s, "after_success = \"keep\""));
    for n in 1..=5 {
        s.gmail.deliver(&request(n), &["INBOX"]);
    }
    s.gmail.throttle(2, 1);
    let started = std::time::Instant::now();
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("5 created"), "{out}");
    assert_eq!(s.gmail.throttled(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After obeyed"
    );

    // An access token refused early is refreshed.
    s.gmail.expire_tokens();
    s.gmail.deliver(&request(6), &["INBOX"]);
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("1 created, 0 appended, 0 ignored, 0 failed, 0 already"),
        "{out}"
    );

    // History too old: the label is read in full again, the ledger knows every mail.
    s.gmail.expire_history();
    s.gmail.deliver(&request(7), &["INBOX"]);
    let before = s.gmail.requests().len();
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("1 created") && out.contains("6 already processed"),
        "{out} {:?}",
        &s.gmail.requests()[before..]
    );
    assert_eq!(titles(&desk), expected(7));
    assert_eq!(s.gmail.count("INBOX"), 7, "keep leaves the labels alone");
}

#[test]
fn a_revoked_refresh_token_is_a_mailbox_error_and_check_says_so() {
    let s = setup();
    let desk = Desk::new(&mailbox_toml(&s, ""));
    s.gmail.deliver(&request(1), &["INBOX"]);
    let out = desk.run(&["check"]).ok();
    assert!(out.contains("ok    OAuth2 token"), "{out}");
    assert!(
        out.contains(&format!("ok    mailbox access: {ADDRESS}, 1 mails")),
        "{out}"
    );
    assert!(
        out.contains("ok    folder INBOX: label INBOX (1 mails)"),
        "{out}"
    );
    assert!(
        out.contains("ok    folder Processed: Processed is missing; it will be created"),
        "{out}"
    );

    s.tokens.revoke_all();
    let run = desk.run(&["scan"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("sign-in refused") && run.stderr.contains("invalid_grant"),
        "{}",
        run.stderr
    );
    assert_eq!(
        s.gmail.count("INBOX"),
        1,
        "nothing taken, nothing relabelled"
    );
    let status = desk.run(&["status"]).ok();
    assert!(status.contains("last error: sign-in refused"), "{status}");
    assert!(!status.contains(&s.refresh));
    let out = desk.run(&["check"]).stdout;
    assert!(out.contains("FAIL  OAuth2 token"), "{out}");
}

#[test]
fn replies_go_out_through_gmail_with_our_threading_headers() {
    let s = setup();
    let desk = Desk::new(&format!(
        "[helpdesk.send]\nkind = \"gmail\"\nfrom = \"{ADDRESS}\"\n\n[helpdesk.notifications]\nacknowledge = false\n\n{}",
        mailbox_toml(&s, "")
    ));
    s.gmail.deliver(&request(1), &["INBOX"]);
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    let out = desk.run(&["reply", "1", "--message", "We are on it."]).ok();
    assert!(out.contains("Sent (outbox 1)"), "{out}");
    let sent = s.gmail.sent();
    assert_eq!(sent.len(), 1);
    let parsed = postdesk_mail::parse(&sent[0]);
    assert!(parsed.subject.contains("[HD#1]"), "{}", parsed.subject);
    let raw = String::from_utf8_lossy(&sent[0]);
    assert!(raw.contains("In-Reply-To: <request1@example.org>"), "{raw}");
    assert!(raw.contains("References: <request1@example.org>"), "{raw}");
    assert!(raw.contains(&format!("From: Support <{ADDRESS}>")), "{raw}");
    assert!(parsed.text.contains("We are on it."));
}

#[test]
fn killed_between_the_commit_and_the_label_change_then_run_again_each_mail_once() {
    let s = setup();
    let desk = Desk::new(&mailbox_toml(&s, ""));
    for n in 1..=4 {
        s.gmail.deliver(&request(n), &["INBOX"]);
    }
    s.gmail.hold_modifies(true);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("scan")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.gmail.modifies_waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no label change was asked for"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        titles(&desk),
        expected(4),
        "all committed before any label change"
    );
    assert_eq!(s.gmail.count("INBOX"), 4);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    s.gmail.hold_modifies(false);
    // The label change that was waiting when postdesk died is dropped or, as a real
    // server may finish a request whose client is gone, carried out: then no mail is
    // left in the inbox for the second run.
    wait_until(
        "the held label change settled",
        Duration::from_secs(30),
        || s.gmail.modifies_waiting() == 0,
    );
    let left = s.gmail.count("INBOX");
    let out = desk.run(&["scan"]).ok();
    if left > 0 {
        assert!(out.contains(&format!("{left} already processed")), "{out}");
    }
    assert_eq!(titles(&desk), expected(4), "none twice");
    assert_eq!(s.gmail.labels_of_all(), vec![vec!["Processed"]; 4]);
}

#[test]
fn serve_reports_the_lag_of_gmail_mail_waiting_from_its_internal_date() {
    let s = setup();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let desk = Desk::new(&format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
        mailbox_toml(&s, "interval_secs = 1")
    ));
    let id = s.gmail.deliver(&request(1), &["INBOX"]);
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3600;
    s.gmail.set_internal_date(&id, hour_ago);
    // Committed but not yet relabelled: the mail still waits.
    s.gmail.hold_modifies(true);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lag = || {
        let (_, text) = common::http_exchange(
            metrics_port,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        );
        text.lines()
            .filter(|l| l.starts_with("postdesk_mailbox_lag_seconds{"))
            .find(|l| l.contains(&format!("mailbox=\"gmail:{ADDRESS}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.gmail.modifies_waiting() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the label change is held"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let waiting = lag();
    assert!(
        waiting.is_some_and(|l| (3600.0..3700.0).contains(&l)),
        "{waiting:?}"
    );
    s.gmail.hold_modifies(false);
    while lag() != Some(0.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing waits at last"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

const PUSH_TOKEN: &str = "push-token-0123456789abcdef";

#[test]
fn a_pubsub_push_wakes_serve_at_once_and_a_wrong_token_does_nothing() {
    let s = setup();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/hooks/gmail?token={PUSH_TOKEN}");
    // Polling once an hour: only a push can make a ticket within the test.
    let desk = Desk::new(&mailbox_toml(
        &s,
        &format!(
            "interval_secs = 3600\ntopic = \"projects/postdesk-test/topics/gmail\"\npush_token = \"{PUSH_TOKEN}\""
        ),
    ));
    s.gmail.set_push_endpoint(&endpoint);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait = |what: &str, secs: u64, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("watched", 20, &|| s.gmail.watch().is_some());
    let (topic, labels) = s.gmail.watch().unwrap();
    assert_eq!(topic, "projects/postdesk-test/topics/gmail");
    assert_eq!(labels, ["INBOX"]);
    // Let the first scans (at start, after the watch) finish.
    let mut seen = s.gmail.requests().len();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = s.gmail.requests().len();
        if now == seen {
            break;
        }
        seen = now;
    }

    let sent = std::time::Instant::now();
    s.gmail.deliver(&request(1), &["INBOX"]);
    wait("woken by the push", 10, &|| s.gmail.count("Processed") == 1);
    assert!(sent.elapsed() < Duration::from_secs(5));
    wait("the push answered", 5, &|| s.gmail.pushed() == [204]);

    // Pushes with a wrong or no token are refused; one for another address wakes nothing.
    s.gmail.set_push_endpoint("http://127.0.0.1:1/nowhere");
    s.gmail.deliver(&request(2), &["INBOX"]);
    let base = format!("http://127.0.0.1:{port}/hooks/gmail");
    let forged = format!("{base}?token={}", "x".repeat(PUSH_TOKEN.len()));
    assert_eq!(s.gmail.push_to(&forged, ADDRESS), 403);
    assert_eq!(s.gmail.push_to(&base, ADDRESS), 403);
    assert_eq!(s.gmail.push_to(&endpoint, "someone@else.example"), 204);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.gmail.count("Processed"), 1, "nothing woke the mailbox");
    // Hostile bodies: refused without a wake or a crash.
    let raw = |query: &str, body: &str| {
        common::http_exchange(
            port,
            &format!(
                "POST /hooks/gmail?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .0
    };
    let token = format!("token={PUSH_TOKEN}");
    assert!(raw(&token, "not json").contains(" 400 "));
    assert!(raw(&token, r#"{"message": {"data": "%%%"}}"#).contains(" 400 "));
    assert!(raw("token=x", "not json").contains(" 403 "));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.gmail.count("Processed"), 1);
    // The right one does.
    assert_eq!(s.gmail.push_to(&endpoint, ADDRESS), 204);
    wait("woken by the real push", 5, &|| {
        s.gmail.count("Processed") == 2
    });

    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(s.gmail.watch().is_none(), "the watch is stopped on SIGTERM");
    assert_eq!(titles(&desk), expected(2));
}
