//! IMAP mailboxes against a real Dovecot started by the test on loopback.

mod common;

use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};

fn dovecot(users: &[(&str, &str)]) -> Dovecot {
    Dovecot::start(DovecotOptions {
        users: users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect(),
        ..Default::default()
    })
}

fn mailbox_toml(server: &Dovecot, user: &str, password: &str, extra: &str) -> String {
    format!(
        "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nuser = \"{user}\"\npassword = \"{password}\"\ncreate_folders = true\n{extra}\n",
        server.imap_port()
    )
}

fn request(n: usize) -> String {
    mail(
        &[
            ("From", &format!("customer{n}@example.org")),
            ("Subject", &format!("Request {n}")),
            ("Message-ID", &format!("<req-{n}@example.org>")),
        ],
        &format!("Please help with {n}.\n"),
    )
    .replace('\n', "\r\n")
}

#[test]
fn new_mail_becomes_a_ticket_and_moves_to_processed() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(&server, "support", "secret", ""));
    server.append("support", "INBOX", request(1).as_bytes());
    server.append("support", "INBOX", request(2).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("2 created"), "{out}");
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    assert_eq!(server.folder_count("support", "Processed"), 2);

    // The customer answers: a follow-up, moved too.
    let reply = mail(
        &[
            ("From", "customer1@example.org"),
            ("Subject", "Re: [HD#1] Request 1"),
        ],
        "Thanks!\n",
    );
    server.append("support", "INBOX", reply.replace('\n', "\r\n").as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 appended"), "{out}");
    assert!(desk.show(1).contains("Thanks!"));
    assert_eq!(server.folder_count("support", "Processed"), 3);

    let status = desk.run(&["status"]).ok();
    assert!(status.contains("mails processed: 3, failed: 0"), "{status}");
}

#[test]
fn refused_mail_goes_to_unprocessed_and_is_kept() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&format!(
        "unknown_sender = \"reject\"\n{}",
        mailbox_toml(&server, "support", "secret", "")
    ));
    server.append("support", "INBOX", request(1).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 failed"), "{out}");
    assert_eq!(server.folder_count("support", "Unprocessed"), 1);
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    let failed = desk.run(&["failed", "list"]).ok();
    assert!(
        failed.contains("unknown sender customer1@example.org"),
        "{failed}"
    );
}

#[test]
fn the_same_mail_again_is_not_a_second_ticket() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(&server, "support", "secret", ""));
    server.append("support", "INBOX", request(1).as_bytes());
    desk.run(&["scan"]).ok();
    // Someone moves it back (or postdesk died after the commit, before the move).
    server.append("support", "INBOX", request(1).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 already processed"), "{out}");
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    assert_eq!(
        desk.list().lines().count(),
        2,
        "one ticket: {}",
        desk.list()
    );
}

#[test]
fn a_wrong_password_breaks_only_its_own_mailbox() {
    let server = dovecot(&[("support", "secret"), ("sales", "secret")]);
    let desk = Desk::new(&format!(
        "{}{}",
        mailbox_toml(&server, "support", "secret", ""),
        mailbox_toml(&server, "sales", "wrong", "")
    ));
    server.append("support", "INBOX", request(1).as_bytes());
    let started = Instant::now();
    let run = desk.run(&["scan"]);
    assert_ne!(
        run.code, 0,
        "a failing mailbox makes scan fail: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 created"),
        "the good mailbox worked: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("login as sales was refused"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let status = desk.run(&["status"]).ok();
    assert!(
        status.contains("last error: login as sales was refused"),
        "{status}"
    );
    assert!(
        !status.contains("wrong"),
        "the password is never shown: {status}"
    );
    let check = desk.run(&["check"]);
    assert!(check.stdout.contains("FAIL  login"), "{}", check.stdout);
    assert!(
        check.stdout.contains("ok    login: as support"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("wrong") && !check.stderr.contains("wrong"));
}

#[test]
fn a_server_without_move_still_gets_its_mail_moved() {
    let server = Dovecot::start(DovecotOptions {
        users: vec![("support".into(), "secret".into())],
        disable_move: true,
        ..Default::default()
    });
    let desk = Desk::new(&mailbox_toml(&server, "support", "secret", ""));
    for n in 1..=3 {
        server.append("support", "INBOX", request(n).as_bytes());
    }
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("3 created"), "{out}");
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    assert_eq!(server.folder_count("support", "Processed"), 3);
}

#[test]
fn keep_mode_remembers_uids_and_survives_a_uidvalidity_reset() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(
        &server,
        "support",
        "secret",
        "after_success = \"keep\"",
    ));
    server.append("support", "INBOX", request(1).as_bytes());
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    server.append("support", "INBOX", request(2).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(
        out.contains("1 mails: 1 created"),
        "only the new UID is fetched: {out}"
    );
    assert_eq!(
        server.folder_count("support", "INBOX"),
        2,
        "keep leaves mail in place"
    );
    server.reset_uidvalidity("support", "INBOX");
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("2 already processed"), "{out}");
    assert_eq!(desk.list().lines().count(), 3, "{}", desk.list());
}

#[test]
fn missing_folders_are_reported_unless_created() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(
        &mailbox_toml(&server, "support", "secret", "")
            .replace("create_folders = true", "create_folders = false"),
    );
    let check = desk.run(&["check"]);
    assert!(
        check
            .stdout
            .contains("FAIL  folder Processed: Processed is missing"),
        "{}",
        check.stdout
    );
    let run = desk.run(&["scan"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("folder `Processed` does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_turns_a_new_mail_into_a_ticket_within_a_second_with_idle() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(
        &server,
        "support",
        "secret",
        "interval_secs = 600",
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it connect and enter IDLE.
    std::thread::sleep(Duration::from_millis(1500));
    // One after another: a mail that lands while the last one is being processed, before
    // IDLE starts again, must not wait for the next interval.
    let mut delay = Duration::ZERO;
    let mut seen = false;
    for n in 1..=5 {
        server.append("support", "INBOX", request(n).as_bytes());
        let appended = Instant::now();
        seen = false;
        while appended.elapsed() < Duration::from_secs(5) {
            if server.folder_count("support", "Processed") == n {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        delay = delay.max(appended.elapsed());
        if !seen {
            break;
        }
    }
    // SIGTERM: it stops cleanly.
    terminate(child.id());
    let status = child.wait().unwrap();
    assert!(seen, "a mail was not processed within 5 s");
    assert!(delay < Duration::from_secs(2), "took {delay:?}");
    assert!(status.success(), "{status:?}");
    assert!(desk.list().contains("Request 1"));
}

fn terminate(pid: u32) {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

fn tls_server() -> Dovecot {
    Dovecot::start(DovecotOptions::default().user("support", "secret").tls())
}

fn tls_mailbox(security: &str, port: u16, ca: Option<&std::path::Path>) -> String {
    let ca = ca
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        "[[helpdesk.mailbox]]\nhost = \"{}\"\nport = {port}\nsecurity = \"{security}\"\n{ca}user = \"support\"\npassword = \"secret\"\ncreate_folders = true\n",
        postdesk_testkit::dovecot::TLS_SERVER_NAME
    )
}

#[test]
fn implicit_tls_and_starttls_with_a_private_ca() {
    let server = tls_server();
    let ca = server.ca_cert_pem_path().unwrap();
    for (security, port) in [
        ("tls", server.imaps_port().unwrap()),
        ("starttls", server.imap_port()),
    ] {
        let desk = Desk::new(&tls_mailbox(security, port, Some(&ca)));
        server.append("support", "INBOX", request(port as usize).as_bytes());
        let out = desk.run(&["scan"]).ok();
        assert!(out.contains("1 created"), "{security}: {out}");
        let check = desk.run(&["check"]).ok();
        assert!(check.contains("ok    connect and TLS"), "{check}");
    }
}

#[test]
fn an_untrusted_certificate_is_refused_with_advice() {
    let server = tls_server();
    let desk = Desk::new(&tls_mailbox("tls", server.imaps_port().unwrap(), None));
    server.append("support", "INBOX", request(1).as_bytes());
    let run = desk.run(&["scan"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("TLS handshake") && run.stderr.contains("ca_file"),
        "{}",
        run.stderr
    );
    assert_eq!(
        server.folder_count("support", "INBOX"),
        1,
        "nothing was touched"
    );
}

#[test]
fn dovecot_restarted_mid_serve_loses_nothing() {
    let mut server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(
        &server,
        "support",
        "secret",
        "interval_secs = 1",
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .env("POSTDESK_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for n in 1..=20 {
        server.append("support", "INBOX", request(n).as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    for n in 21..=40 {
        server.append("support", "INBOX", request(n).as_bytes());
    }
    let started = Instant::now();
    while server.folder_count("support", "Processed") < 40
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    terminate(child.id());
    child.wait().unwrap();
    assert_eq!(
        server.folder_count("support", "Processed"),
        40,
        "every mail in exactly one folder"
    );
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    let list = desk.run(&["tickets", "list", "--limit", "0"]).ok();
    assert_eq!(list.lines().count(), 41, "40 tickets, each once: {list}");
}

#[test]
fn postdesk_killed_mid_batch_then_restarted_makes_each_mail_exactly_once() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(&server, "support", "secret", ""));
    for n in 1..=600 {
        server.append("support", "INBOX", request(n).as_bytes());
    }
    // Kill at a few points of the scan; each restart continues where the last left off.
    for delay_ms in [150, 300, 450] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(desk.config())
            .arg("scan")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    desk.run(&["scan"]).ok();
    assert_eq!(server.folder_count("support", "INBOX"), 0);
    assert_eq!(server.folder_count("support", "Processed"), 600);
    let list = desk.run(&["tickets", "list", "--limit", "0"]).ok();
    assert_eq!(list.lines().count(), 601, "600 tickets, none twice");
    let titles: std::collections::HashSet<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split("Request ").nth(1))
        .collect();
    assert_eq!(titles.len(), 600, "each request exactly once");
}

fn oauth_mailbox(
    server: &Dovecot,
    tokens: &postdesk_testkit::oauth::TokenServer,
    refresh_token: &str,
    mechanism: &str,
) -> String {
    format!(
        "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nuser = \"support\"\nauth = \"oauth2\"\ncreate_folders = true\n\
         [helpdesk.mailbox.oauth2]\ntoken_url = \"{}\"\nclient_id = \"postdesk\"\nclient_secret = \"client-secret\"\nscopes = [\"mail\"]\nrefresh_token = \"{refresh_token}\"\nmechanism = \"{mechanism}\"\n",
        server.imap_port(),
        tokens.token_url()
    )
}

fn oauth_server() -> (postdesk_testkit::oauth::TokenServer, Dovecot) {
    let tokens = postdesk_testkit::oauth::TokenServer::start();
    tokens.client("postdesk", "client-secret");
    let server = Dovecot::start(
        DovecotOptions::default()
            .user("support", "unused-password")
            .oauth2(tokens.introspection_url()),
    );
    (tokens, server)
}

#[test]
fn oauth2_login_refreshes_and_keeps_a_rotated_refresh_token() {
    let (tokens, server) = oauth_server();
    tokens.set_rotation(true);
    // Shorter than the refresh margin: every scan refreshes.
    tokens.set_access_token_lifetime(60);
    let first = tokens.issue_refresh_token("support");
    let desk = Desk::new(&oauth_mailbox(&server, &tokens, &first, "xoauth2"));
    server.append("support", "INBOX", request(1).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(tokens.refresh_count(), 1);
    // The config still holds the first refresh token, which rotation has killed:
    // only the one kept in the database can work now.
    server.append("support", "INBOX", request(2).as_bytes());
    let out = desk.run(&["scan"]).ok();
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(tokens.refresh_count(), 2);
    let check = desk.run(&["check"]).ok();
    assert!(
        check.contains("ok    OAuth2 token: refreshed")
            && check.contains("ok    login: as support"),
        "{check}"
    );
    assert!(!check.contains(&first));
}

#[test]
fn oauthbearer_and_a_long_lived_access_token_are_reused() {
    let (tokens, server) = oauth_server();
    let refresh = tokens.issue_refresh_token("support");
    let desk = Desk::new(&oauth_mailbox(&server, &tokens, &refresh, "oauthbearer"));
    server.append("support", "INBOX", request(1).as_bytes());
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    server.append("support", "INBOX", request(2).as_bytes());
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    assert_eq!(
        tokens.refresh_count(),
        1,
        "the access token is still valid for an hour"
    );
}

#[test]
fn a_revoked_refresh_token_is_a_mailbox_error_that_says_what_to_do() {
    let (tokens, server) = oauth_server();
    let refresh = tokens.issue_refresh_token("support");
    let desk = Desk::new(&oauth_mailbox(&server, &tokens, &refresh, "xoauth2"));
    tokens.revoke_all();
    server.append("support", "INBOX", request(1).as_bytes());
    let run = desk.run(&["scan"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("invalid_grant") && run.stderr.contains("oauth2.refresh_token"),
        "{}",
        run.stderr
    );
    assert_eq!(server.folder_count("support", "INBOX"), 1);
    let status = desk.run(&["status"]).ok();
    assert!(
        status.contains("last error: OAuth2: token refresh"),
        "{status}"
    );
    assert!(!status.contains(&refresh), "the token is never shown");
}

#[test]
fn nested_folder_names_follow_the_server_delimiter() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(
        &server,
        "support",
        "secret",
        "processed_folder = \"INBOX/Processed\"\nunprocessed_folder = \"INBOX/Unprocessed\"",
    ));
    server.append("support", "INBOX", request(1).as_bytes());
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    // This server's delimiter is `.`.
    assert_eq!(server.folder_count("support", "INBOX.Processed"), 1);
}

#[test]
fn mark_read_leaves_mail_in_place_and_does_not_import_it_twice() {
    let server = dovecot(&[("support", "secret")]);
    let desk = Desk::new(&mailbox_toml(
        &server,
        "support",
        "secret",
        "after_success = \"mark-read\"\nscan = \"unseen\"",
    ));
    server.append("support", "INBOX", request(1).as_bytes());
    assert!(desk.run(&["scan"]).ok().contains("1 created"));
    let mails = server.folder_mails("support", "INBOX");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].seen(), "flagged as read");
    let again = desk.run(&["scan"]).ok();
    assert!(again.contains("0 mails"), "{again}");
}
