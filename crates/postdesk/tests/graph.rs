//! Microsoft 365 mailboxes through Microsoft Graph, against testkit's fake Graph on
//! loopback, through the real `postdesk` binary: tickets made once, mail moved only
//! after its commit, and the provider's faults (throttling, expired and revoked
//! tokens, an expired delta token, a connection cut mid-page, a kill before the move).

mod common;

use std::time::{Duration, Instant};

use common::{Desk, mail, wait_until};
use postdesk_testkit::graph::{CLIENT_ID, CLIENT_SECRET, FakeGraph, TENANT};

const SUPPORT: &str = "support@contoso.example";

fn mailbox_toml(graph: &FakeGraph, user: &str, extra: &str) -> String {
    format!(
        "[[helpdesk.mailbox]]\nkind = \"graph\"\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nuser = \"{user}\"\napi_url = \"{}\"\nlogin_url = \"{}\"\ncreate_folders = true\n{extra}\n",
        graph.api_url(),
        graph.login_url()
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

/// The tickets' titles, each as often as it is listed.
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

#[test]
fn new_mail_becomes_a_ticket_is_moved_after_the_commit_and_replies_thread_back() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, ""));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    graph.deliver(SUPPORT, "Inbox", &request(2));
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("2 created"), "{out}");
    assert_eq!(graph.count(SUPPORT, "Inbox"), 0);
    assert_eq!(graph.count(SUPPORT, "Processed"), 2, "created on the way");

    // The customer answers through the mailbox: a follow-up of ticket 1.
    let reply = mail(
        &[
            ("From", "customer1@example.org"),
            ("Subject", "Re: [HD#1] Request 1"),
            ("In-Reply-To", "<request1@example.org>"),
        ],
        "Thanks!\n",
    );
    graph.deliver(SUPPORT, "Inbox", reply.as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 appended"), "{out}");
    assert!(desk.show(1).contains("Thanks!"));
    assert_eq!(graph.count(SUPPORT, "Processed"), 3);

    // The delta link was kept: a scan with nothing new fetches no content.
    let before = graph.requests().len();
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("0 mails"), "{out}");
    let fetched = graph.requests()[before..]
        .iter()
        .filter(|r| r.ends_with("/$value"))
        .count();
    assert_eq!(fetched, 0, "{:?}", &graph.requests()[before..]);

    let status = desk.run(&["status"]).ok();
    assert!(
        status.contains(&format!("graph:{SUPPORT} (Support)")),
        "{status}"
    );
    assert!(status.contains("mails processed: 3, failed: 0"), "{status}");
}

#[test]
fn refused_mail_goes_to_unprocessed() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&format!(
        "unknown_sender = \"reject\"\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 failed"), "{out}");
    assert_eq!(graph.count(SUPPORT, "Unprocessed"), 1);
    assert_eq!(graph.count(SUPPORT, "Inbox"), 0);
    assert_eq!(graph.count(SUPPORT, "Processed"), 0);
}

#[test]
fn paged_delta_with_throttling_and_a_cut_connection_makes_each_ticket_once() {
    let graph = FakeGraph::start(&[SUPPORT]);
    graph.set_page_size(3);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, ""));
    for n in 1..=10 {
        graph.deliver(SUPPORT, "Inbox", &request(n));
    }
    // Sign-in first (the token endpoint is not throttled), then two 429s and a 503.
    graph.throttle(2, 429, 1);
    graph.cut_next_delta_page();
    let started = Instant::now();
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("10 created"), "{out}");
    assert!(graph.cuts() == 1, "the cut happened");
    let (throttled, after) = graph.throttle_log();
    assert_eq!(throttled.len(), 2);
    assert!(
        after[0].duration_since(throttled[1]) >= Duration::from_millis(950),
        "Retry-After: 1 was obeyed"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    graph.throttle(1, 503, 1);
    graph.deliver(SUPPORT, "Inbox", &request(11));
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(titles(&desk), expected(11));
    assert_eq!(graph.count(SUPPORT, "Inbox"), 0);
    assert_eq!(graph.count(SUPPORT, "Processed"), 11);
}

#[test]
fn an_expired_delta_token_resyncs_fully_and_doubles_nothing() {
    let graph = FakeGraph::start(&[SUPPORT]);
    // Mail stays in the inbox: a full resync reads all of it again.
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, "after_success = \"keep\""));
    for n in 1..=4 {
        graph.deliver(SUPPORT, "Inbox", &request(n));
    }
    assert!(desk.run(&["scan"]).ok().contains("4 created"));
    graph.reset_delta_tokens();
    graph.deliver(SUPPORT, "Inbox", &request(5));
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("1 created") && out.contains("4 already processed"),
        "{out}"
    );
    assert_eq!(titles(&desk), expected(5));
    assert_eq!(graph.count(SUPPORT, "Inbox"), 5);
    assert_eq!(graph.count(SUPPORT, "Processed"), 0);
    // The new delta link works: nothing again.
    assert!(desk.run(&["scan"]).ok().contains("0 mails"));
}

#[test]
fn an_expired_access_token_is_replaced_and_a_revoked_secret_is_an_alerted_mailbox_error() {
    let sink = postdesk_testkit::smtp::SmtpSink::start(Default::default());
    let desk = Desk::new("");
    let graph = FakeGraph::start(&[SUPPORT]);
    let text = format!(
        "[helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\n[helpdesk.notifications]\nacknowledge = false\nalert_contacts = [\"ops@example.com\"]\n\n{}",
        sink.port(),
        mailbox_toml(&graph, SUPPORT, "")
    );
    desk.write_config(&text);
    graph.deliver(SUPPORT, "Inbox", &request(1));
    desk.run(&["scan"]).ok();
    let issued = graph.token_requests();

    // A token that stops working before its time: signed in again, nothing lost.
    graph.expire_tokens();
    graph.deliver(SUPPORT, "Inbox", &request(2));
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    assert!(graph.token_requests() > issued);

    // Revoked: the mailbox error says what to do, the alert contacts hear of it once.
    graph.revoke();
    graph.deliver(SUPPORT, "Inbox", &request(3));
    for _ in 0..2 {
        let run = desk.run(&["scan"]);
        assert_ne!(run.code, 0);
        assert!(
            run.stderr.contains("sign-in refused") && run.stderr.contains("client_secret"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        graph.count(SUPPORT, "Inbox"),
        1,
        "nothing taken, nothing moved"
    );
    let status = desk.run(&["status"]).ok();
    assert!(status.contains("last error: sign-in refused"), "{status}");
    assert!(!status.contains(CLIENT_SECRET), "the secret is never shown");
    desk.run(&["outbox", "send"]).ok();
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one alert for two failed scans");
    assert_eq!(got[0].envelope_to, vec!["ops@example.com"]);
    let alert = postdesk_mail::parse(&got[0].raw);
    assert!(
        alert.subject.contains("stopped reading mail"),
        "{}",
        alert.subject
    );
    assert!(alert.text.contains("AADSTS7000215"), "{}", alert.text);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn killed_between_the_commit_and_the_move_then_run_again_each_mail_once() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, ""));
    for n in 1..=5 {
        graph.deliver(SUPPORT, "Inbox", &request(n));
    }
    graph.hold_moves(true);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("scan")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while graph.moves_waiting() == 0 {
        assert!(Instant::now() < deadline, "no move was asked for");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first move waits: the first page's three mails are committed, none moved.
    assert_eq!(titles(&desk), expected(3), "committed before any move");
    assert_eq!(graph.count(SUPPORT, "Inbox"), 5);
    assert_eq!(graph.moves(), 0);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    graph.hold_moves(false);
    // The move that was waiting when postdesk died is dropped or, as a real server may
    // finish a request whose client is gone, carried out: its mail is then in Processed
    // already, and the second run does not see it.
    wait_until("the held move settled", Duration::from_secs(30), || {
        graph.moves_waiting() == 0
    });
    let committed_in_inbox = graph.count(SUPPORT, "Inbox") - 2;
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("2 created")
            && out.contains(&format!("{committed_in_inbox} already processed")),
        "{out}"
    );
    assert_eq!(titles(&desk), expected(5), "none twice");
    assert_eq!(graph.count(SUPPORT, "Inbox"), 0);
    assert_eq!(
        graph.count(SUPPORT, "Processed"),
        5,
        "each in one folder once"
    );
}

#[test]
fn a_mailbox_the_app_may_not_open_breaks_only_itself_and_check_says_why() {
    let sales = "sales@contoso.example";
    let graph = FakeGraph::start(&[SUPPORT, sales]);
    graph.limit_app_to(&[SUPPORT]);
    let desk = Desk::new(&format!(
        "{}{}",
        mailbox_toml(&graph, SUPPORT, ""),
        mailbox_toml(&graph, sales, "")
    ));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    graph.deliver(sales, "Inbox", &request(2));
    let run = desk.run(&["scan"]);
    assert_ne!(run.code, 0);
    assert!(run.stdout.contains("1 created"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("graph:{sales}")) && run.stderr.contains("access denied"),
        "{}",
        run.stderr
    );
    assert_eq!(graph.count(SUPPORT, "Processed"), 1);
    assert_eq!(graph.count(sales, "Inbox"), 1);

    let run = desk.run(&["check"]);
    assert_ne!(run.code, 0);
    let out = run.stdout;
    let (good, bad) = out.split_at(out.find(&format!("graph:{sales}")).unwrap());
    assert!(good.contains("ok    token: client credentials"), "{out}");
    assert!(good.contains("ok    mailbox access"), "{out}");
    assert!(
        good.contains("ok    folder INBOX: Inbox (0 mails waiting)"),
        "{out}"
    );
    assert!(good.contains("ok    folder Processed: Processed"), "{out}");
    assert!(bad.contains("ok    token"), "{out}");
    assert!(
        bad.contains("FAIL  mailbox access") && bad.contains("Mail.ReadWrite"),
        "{out}"
    );
}

#[test]
fn check_names_a_wrong_secret_and_missing_folders() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, "").replace(
        "create_folders = true",
        "create_folders = false\nprocessed_folder = \"Inbox/Done\"",
    ));
    graph.create_folder(SUPPORT, "Unprocessed");
    let out = desk.run(&["check"]).stdout;
    assert!(
        out.contains("FAIL  folder Inbox/Done: Inbox/Done is missing"),
        "{out}"
    );
    assert!(
        out.contains("ok    folder Unprocessed: Unprocessed"),
        "{out}"
    );
    graph.deliver(SUPPORT, "Inbox", &request(1));
    let run = desk.run(&["scan"]);
    assert!(
        run.stderr.contains("folder `Inbox/Done` does not exist"),
        "{}",
        run.stderr
    );
    assert_eq!(graph.count(SUPPORT, "Inbox"), 1);
    graph.create_folder(SUPPORT, "Inbox/Done");
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    assert_eq!(graph.count(SUPPORT, "Inbox/Done"), 1);

    let wrong = mailbox_toml(&graph, SUPPORT, "").replace(CLIENT_SECRET, "not-the-secret");
    desk.write_config(&wrong);
    let out = desk.run(&["check"]).stdout;
    assert!(
        out.contains("FAIL  token: sign-in refused: invalid_client")
            && out.contains("check tenant, client_id and client_secret"),
        "{out}"
    );
    assert!(!out.contains("not-the-secret"));
}

#[test]
fn device_code_sign_in_then_scans_with_a_rotated_refresh_token() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let toml = mailbox_toml(&graph, SUPPORT, "flow = \"device-code\"")
        .replace(&format!("client_secret = \"{CLIENT_SECRET}\"\n"), "");
    let desk = Desk::new(&toml);
    let run = desk.run(&["scan"]);
    assert!(
        run.stderr
            .contains(&format!("postdesk mailboxes authorize graph:{SUPPORT}")),
        "{}",
        run.stderr
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .args(["mailboxes", "authorize", &format!("graph:{SUPPORT}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while graph.device_codes() == 0 {
        assert!(Instant::now() < deadline, "no device code was asked for");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500)); // one "authorization_pending"
    graph.approve_device_code(SUPPORT);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("enter the code FAKE-CODE"), "{stdout}");
    assert!(stdout.contains("signed in"), "{stdout}");

    graph.deliver(SUPPORT, "Inbox", &request(1));
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    // The access token expires: the stored refresh token is used (and rotated) twice.
    for n in 2..=3 {
        graph.expire_tokens();
        graph.deliver(SUPPORT, "Inbox", &request(n));
        assert!(desk.run(&["scan"]).ok().contains("1 created"));
    }
    assert_eq!(titles(&desk), expected(3));
    // Signed out at Microsoft: the error says to authorize again.
    graph.revoke();
    let run = desk.run(&["scan"]);
    assert!(
        run.stderr.contains("invalid_grant") && run.stderr.contains("mailboxes authorize"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_polls_the_delta_and_takes_new_mail() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, "interval_secs = 1"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while graph.count(SUPPORT, "Processed") < 1 {
        assert!(Instant::now() < deadline, "not taken while serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A throttled poll is waited out, not fatal.
    graph.throttle(1, 429, 1);
    graph.deliver(SUPPORT, "Inbox", &request(2));
    while graph.count(SUPPORT, "Processed") < 2 {
        assert!(Instant::now() < deadline, "not taken after throttling");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve stops cleanly on SIGTERM");
    assert_eq!(titles(&desk), expected(2));
}

// ---- Sending through Graph ([helpdesk.send] kind = "graph") ----

fn header(mime: &str, name: &str) -> Option<String> {
    let head = mime.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim().to_string())
}

#[test]
fn replies_go_out_through_graph_with_our_threading_headers_and_answers_thread_back() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&format!(
        "[helpdesk.send]\nkind = \"graph\"\nfrom = \"{SUPPORT}\"\n\n[helpdesk.notifications]\nacknowledge = false\n\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    let out = desk.run(&["reply", "1", "--message", "We are on it."]).ok();
    assert!(out.contains("Sent (outbox 1)"), "{out}");
    let sent = graph.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].user, SUPPORT);
    let mime = String::from_utf8(sent[0].mime.clone().expect("sent as MIME")).unwrap();
    let message_id = header(&mime, "Message-ID").expect("our Message-ID");
    assert_eq!(
        header(&mime, "In-Reply-To").as_deref(),
        Some("<request1@example.org>"),
        "{mime}"
    );
    assert!(
        header(&mime, "References").is_some_and(|r| r.contains("<request1@example.org>")),
        "{mime}"
    );
    assert!(header(&mime, "Subject").is_some_and(|s| s.contains("[HD#1]")));
    assert!(mime.contains("We are on it."));

    // The customer answers that mail, quoting its Message-ID only (no number in the
    // subject): it threads back to ticket 1 through the mailbox.
    let answer = mail(
        &[
            ("From", "customer1@example.org"),
            ("Subject", "Re: your answer"),
            ("In-Reply-To", &message_id),
            ("References", &message_id),
        ],
        "That fixed it.\n",
    );
    graph.deliver(SUPPORT, "Inbox", answer.as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 appended"), "{out}");
    assert!(desk.show(1).contains("That fixed it."));
}

#[test]
fn a_revoked_graph_sender_keeps_the_mail_queued_and_suppressed_mode_sends_nothing() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&format!(
        "[helpdesk.send]\nkind = \"graph\"\n\n[helpdesk.notifications]\nacknowledge = false\n\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    graph.deliver(SUPPORT, "Inbox", &request(1));
    desk.run(&["scan"]).ok();
    graph.revoke();
    let out = desk.run(&["reply", "1", "--message", "Hello."]).ok();
    assert!(
        out.contains("not sent yet") && out.contains("sign-in refused"),
        "{out}"
    );
    let list = desk.run(&["outbox", "list"]).ok();
    assert!(list.contains("queued"), "{list}");
    assert!(graph.sent().is_empty());

    // Suppressed mode: kept, never sent, whatever the transport.
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&text);
    std::fs::write(
        desk.config(),
        format!(
            "{first}
[outgoing]
enabled = false
{rest}"
        ),
    )
    .unwrap();
    let out = desk.run(&["reply", "1", "--message", "Again."]).ok();
    assert!(out.contains("suppressed"), "{out}");
    assert!(graph.sent().is_empty());
}

#[test]
fn send_needs_a_mailbox_of_its_kind_and_not_smtp_too() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new("[helpdesk.send]\nkind = \"graph\"\n");
    let run = desk.run(&["check-config"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("send.mailbox") && run.stderr.contains("add one"),
        "{}",
        run.stderr
    );
    desk.write_config(&format!(
        "[helpdesk.send]\nkind = \"graph\"\nmailbox = \"other\"\n\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    let run = desk.run(&["check-config"]);
    assert!(run.stderr.contains("is named `other`"), "{}", run.stderr);
    desk.write_config(&format!(
        "[helpdesk.smtp]\nhost = \"127.0.0.1\"\n\n[helpdesk.send]\nkind = \"graph\"\n\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    let run = desk.run(&["check-config"]);
    assert!(run.stderr.contains("not both"), "{}", run.stderr);
    desk.write_config(&format!(
        "[helpdesk.send]\nkind = \"graph\"\nmailbox = \"graph:{SUPPORT}\"\n\n{}",
        mailbox_toml(&graph, SUPPORT, "")
    ));
    desk.run(&["check-config"]).ok();
}

#[test]
fn a_mail_over_the_size_limit_is_listed_as_failed_with_the_reason_and_moved_aside() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, ""));
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&text);
    std::fs::write(desk.config(), format!("{first}\nmax_mail_mb = 1\n{rest}")).unwrap();
    let big = mail(
        &[
            ("From", "customer9@example.org"),
            ("Subject", "Request 9"),
            ("Message-ID", "<big@example.org>"),
        ],
        // 1.1 MB of 76-character lines.
        &vec!["x".repeat(76); 15_000].join("\n"),
    );
    graph.deliver(SUPPORT, "Inbox", big.as_bytes());
    graph.deliver(SUPPORT, "Inbox", &request(1));
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("1 created") && out.contains("1 failed"),
        "{out}"
    );
    assert_eq!(graph.count(SUPPORT, "Unprocessed"), 1);
    assert_eq!(graph.count(SUPPORT, "Processed"), 1);
    let failed = desk.run(&["failed", "list"]).ok();
    assert!(failed.contains("more than the limit"), "{failed}");
}

// ---- Change notifications (notification_url) ----

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `postdesk serve` with its web UI on `port`, its output dropped.
fn serve(desk: &Desk, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: std::process::Child) {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "serve stops cleanly");
}

/// Returns once postdesk sent the fake no request for a second.
fn settle(graph: &FakeGraph) {
    let mut seen = graph.requests().len();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = graph.requests().len();
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// One POST to the web listener: the whole head and the body of the answer.
fn post(port: u16, path_and_query: &str, body: &[u8]) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A refused body may be cut off before it is all sent.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn a_change_notification_wakes_serve_at_once_and_a_forged_one_does_nothing() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/graph");
    // Polling once an hour: only a notification can make a ticket within the test.
    let desk = Desk::new(&mailbox_toml(
        &graph,
        SUPPORT,
        &format!("interval_secs = 3600\nnotification_url = \"{url}\""),
    ));
    let child = serve(&desk, port);
    // serve subscribes the folder; the fake validated the URL before it answered.
    wait_until("subscribed", Duration::from_secs(20), || {
        graph.subscriptions().len() == 1
    });
    let sub = graph.subscriptions().remove(0);
    assert_eq!(sub.notification_url, url);
    assert_eq!(sub.client_state.len(), 64, "a random secret");
    // The first scans (at start, and after subscribing) are done before mail comes.
    settle(&graph);

    let sent = Instant::now();
    graph.deliver(SUPPORT, "Inbox", &request(1));
    wait_until("woken by the notification", Duration::from_secs(10), || {
        graph.count(SUPPORT, "Processed") == 1
    });
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(graph.notified(), [202]);

    // Mail arrives without a notification; forgeries do not wake the mailbox.
    graph.set_notifications(false);
    graph.deliver(SUPPORT, "Inbox", &request(2));
    let (status, _) = graph.forge_notification(None, &"0".repeat(64));
    assert_eq!(status, 403, "a wrong clientState is refused");
    let (status, _) = graph.forge_notification(None, "");
    assert_eq!(status, 403, "a missing clientState is refused");
    let (status, _) = graph.forge_notification(Some("not-a-subscription"), &sub.client_state);
    assert_eq!(status, 202, "an unknown subscription is ignored");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(graph.count(SUPPORT, "Inbox"), 1, "nothing woke the mailbox");
    assert_eq!(graph.count(SUPPORT, "Processed"), 1);

    // The real notification (the delta is what is read, so this takes mail 2).
    assert_eq!(graph.notify(SUPPORT, "Inbox"), [202]);
    wait_until(
        "woken by the real notification",
        Duration::from_secs(5),
        || graph.count(SUPPORT, "Processed") == 2,
    );
    // A repeated notification doubles nothing: the delta has nothing new.
    assert_eq!(graph.notify(SUPPORT, "Inbox"), [202]);
    std::thread::sleep(Duration::from_millis(500));

    stop(child);
    assert!(
        graph.subscriptions().is_empty(),
        "the subscription is deleted on SIGTERM"
    );
    assert_eq!(titles(&desk), expected(2));
}

#[test]
fn the_notification_endpoint_is_safe_against_anyone() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let port = free_port();
    let desk = Desk::new(&mailbox_toml(&graph, SUPPORT, "interval_secs = 3600"));
    let child = serve(&desk, port);
    wait_until("serving", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let path = "/hooks/graph";
    // The validation handshake: the token back, as plain text.
    let (head, body) = post(
        port,
        &format!("{path}?validationToken=Validation%3A%20Testing%20%3Cb%3Ex%3C%2Fb%3E"),
        b"",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(body, "Validation: Testing <b>x</b>");
    let (head, _) = post(port, &format!("{path}?validationToken=a%0Db"), b"");
    assert!(
        head.starts_with("HTTP/1.1 400"),
        "control characters: {head}"
    );
    let (head, _) = post(
        port,
        &format!("{path}?validationToken={}", "a".repeat(2000)),
        b"",
    );
    assert!(head.starts_with("HTTP/1.1 400"), "too long: {head}");
    // Hostile bodies: each refused, none breaks the server.
    let deep = "[".repeat(100_000);
    let cases: [(&[u8], &str); 6] = [
        (b"not json", "400"),
        (deep.as_bytes(), "413"),
        (
            br#"{"value": [{"subscriptionId": 5, "clientState": []}]}"#,
            "400",
        ),
        (&[b'['; 20_000], "400"),
        (
            br#"{"value": [{"subscriptionId": "x", "clientState": "y"}]}"#,
            "202",
        ),
        (br#"{"value": []}"#, "202"),
    ];
    for (body, status) in cases {
        let (head, _) = post(port, path, body);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{status} for {:?}: {head}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
    }
    let big = format!(r#"{{"value": [], "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let (head, _) = post(port, path, big.as_bytes());
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Still serving.
    let (head, _) = post(port, path, br#"{"value": []}"#);
    assert!(head.starts_with("HTTP/1.1 202"), "{head}");
    stop(child);
}

#[test]
fn a_subscription_is_renewed_before_it_runs_out_and_made_again_when_graph_dropped_it() {
    let graph = FakeGraph::start(&[SUPPORT]);
    // Graph grants 6 s whatever is asked: renewed halfway, every 3 s.
    graph.set_subscription_lifetime(6);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/graph");
    let desk = Desk::new(&mailbox_toml(
        &graph,
        SUPPORT,
        &format!("interval_secs = 3600\nnotification_url = \"{url}\""),
    ));
    let child = serve(&desk, port);
    wait_until("subscribed", Duration::from_secs(20), || {
        graph.subscriptions().len() == 1
    });
    let first = graph.subscriptions().remove(0);
    let renewals = |graph: &FakeGraph| {
        graph
            .requests()
            .iter()
            .filter(|r| r.starts_with("PATCH /v1.0/subscriptions"))
            .count()
    };
    wait_until("renewed", Duration::from_secs(10), || renewals(&graph) >= 1);
    let renewed = graph.subscriptions().remove(0);
    assert_eq!(renewed.id, first.id, "renewed, not replaced");
    assert_ne!(renewed.expiration, first.expiration, "a later expiry");

    // Graph removed it: the renewal's 404 makes a new one, which wakes the mailbox.
    graph.drop_subscriptions();
    wait_until("subscribed again", Duration::from_secs(10), || {
        graph.subscriptions().len() == 1
    });
    let again = graph.subscriptions().remove(0);
    assert_ne!(again.id, first.id);
    assert_ne!(again.client_state, first.client_state, "a new secret");
    settle(&graph);
    graph.deliver(SUPPORT, "Inbox", &request(1));
    wait_until(
        "woken through the new subscription",
        Duration::from_secs(5),
        || graph.count(SUPPORT, "Processed") == 1,
    );
    stop(child);
    assert!(graph.subscriptions().is_empty());
    assert_eq!(titles(&desk), expected(1));
}

/// `postdesk_mailbox_lag_seconds` of the Graph mailbox, from `/metrics`.
fn lag(metrics_port: u16) -> Option<f64> {
    let (_, text) = common::http_exchange(
        metrics_port,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    text.lines()
        .filter(|l| l.starts_with("postdesk_mailbox_lag_seconds{"))
        .find(|l| l.contains(&format!("mailbox=\"graph:{SUPPORT}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn serve_reports_the_lag_of_graph_mail_waiting_from_its_received_time() {
    let graph = FakeGraph::start(&[SUPPORT]);
    let metrics_port = free_port();
    let desk = Desk::new(&format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
        mailbox_toml(&graph, SUPPORT, "interval_secs = 1")
    ));
    let id = graph.deliver(SUPPORT, "Inbox", &request(1));
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3600;
    graph.set_received(&id, hour_ago);
    // Committed but not yet moved: the mail still waits.
    graph.hold_moves(true);
    let child = serve(&desk, free_port());
    wait_until("the move is held", Duration::from_secs(20), || {
        graph.moves_waiting() == 1
    });
    let waiting = lag(metrics_port);
    assert!(
        waiting.is_some_and(|s| (3600.0..3700.0).contains(&s)),
        "{waiting:?}"
    );
    graph.hold_moves(false);
    wait_until("nothing waits", Duration::from_secs(10), || {
        lag(metrics_port) == Some(0.0)
    });
    assert_eq!(graph.count(SUPPORT, "Processed"), 1);
    stop(child);
}
