//! The attacks of issue 21 against a real `postdesk serve` and its command line: API
//! tokens that end, sign-in limits an admin sees and clears, secrets kept out of config
//! errors, private file modes, and in headless Chromium a mail's `<meta refresh>` and
//! another site's sign-in form. (The router-level attacks are in
//! crates/web/tests/security.rs.)

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::browser::Browser;
use postdesk_testkit::free_port;

const PASSWORD: &str = "correct horse battery";

/// `postdesk serve` on a free port, killed when dropped.
struct Served {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Served {
    fn start(desk: &Desk) -> Served {
        let port = free_port();
        let log = desk.path("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(desk.config())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("POSTDESK_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "postdesk serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Served {
            child,
            base: format!("127.0.0.1:{port}"),
            log,
        }
    }

    /// A request; the status and the body.
    fn request(&self, head: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.base).unwrap();
        write!(
            stream,
            "{head}\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.base,
            body.len()
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, body.to_string())
    }

    fn api_me(&self, token: &str) -> u16 {
        self.request(
            &format!("GET /api/me HTTP/1.1\r\nAuthorization: Bearer {token}"),
            "",
        )
        .0
    }

    fn sign_in(&self, login: &str, password: &str) -> u16 {
        self.request(
            "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            &format!("login={login}&password={}", password.replace(' ', "+")),
        )
        .0
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("postdesk serve's log:\n{}", self.log());
        }
    }
}

fn add_agent(desk: &Desk, name: &str) {
    desk.run_with_stdin(
        &["agents", "add", name, "--helpdesk", "Support"],
        Some(format!("{PASSWORD}\n").as_bytes()),
    )
    .ok();
}

/// Fault 5 through the command line: `agents token --expires`, `tokens`, `revoke`,
/// `disable`, `enable`, `passwd`; a revoked, expired or disabled token gets 401, and no
/// token shows anywhere after it was created.
#[test]
fn tokens_expire_are_revoked_and_stop_with_their_agent() {
    let desk = Desk::new("");
    add_agent(&desk, "bob");
    let short = desk.run(&["agents", "token", "bob", "--expires", "3s"]);
    assert!(short.stderr.contains("expires"), "{}", short.stderr);
    let short = short.ok().trim().to_string();
    let long = desk
        .run(&[
            "agents",
            "token",
            "bob",
            "--label",
            "ci",
            "--expires",
            "never",
        ])
        .ok()
        .trim()
        .to_string();
    let bad = desk.run(&["agents", "token", "bob", "--expires", "soon"]);
    assert!(bad.stderr.contains("not a lifetime"), "{}", bad.stderr);
    let served = Served::start(&desk);
    assert_eq!(served.api_me(&short), 200);
    assert_eq!(served.api_me(&long), 200);

    let list = desk.run(&["agents", "tokens", "bob"]).ok();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains("ci") && lines[0].contains("live"),
        "{list}"
    );
    assert!(lines[0].contains("expires never"), "{list}");
    assert!(
        !lines[0].contains("last used never"),
        "last use is shown: {list}"
    );
    assert!(!list.contains(&short) && !list.contains(&long), "{list}");
    let long_id = lines[0].split_whitespace().next().unwrap().to_string();

    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(served.api_me(&short), 401, "expired");
    assert!(
        desk.run(&["agents", "tokens", "bob"])
            .ok()
            .contains("expired")
    );

    desk.run(&["agents", "revoke", "bob", &long_id]).ok();
    assert_eq!(served.api_me(&long), 401, "revoked");
    let unknown = desk.run(&["agents", "revoke", "bob", "999"]);
    assert!(
        unknown.stderr.contains("bob has no token 999"),
        "{}",
        unknown.stderr
    );

    let third = desk
        .run(&["agents", "token", "bob"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(served.api_me(&third), 200);
    desk.run(&["agents", "disable", "bob"]).ok();
    assert_eq!(served.api_me(&third), 401, "disabled");
    assert!(desk.run(&["agents", "list"]).ok().contains("disabled"));
    desk.run(&["agents", "enable", "bob"]).ok();
    assert_eq!(served.api_me(&third), 200);
    // A new password revokes the tokens, unless the admin keeps them.
    desk.run_with_stdin(
        &["agents", "passwd", "bob", "--keep-tokens"],
        Some(b"a brand new password\n"),
    )
    .ok();
    assert_eq!(served.api_me(&third), 200);
    desk.run_with_stdin(&["agents", "passwd", "bob"], Some(b"a newer password\n"))
        .ok();
    assert_eq!(served.api_me(&third), 401);
    // Never printed or logged after creation.
    let log = served.log();
    for token in [&short, &long, &third] {
        assert!(!log.contains(token.as_str()), "a token is in the log");
    }
}

/// Fault 4: an admin sees the sign-in limits and clears an agent's (`agents locks`,
/// `agents unlock`), from another process than the server's.
#[test]
fn an_admin_sees_and_clears_sign_in_limits() {
    let desk = Desk::new("");
    add_agent(&desk, "bob");
    let served = Served::start(&desk);
    for _ in 0..5 {
        assert_eq!(served.sign_in("bob", "wrong password"), 401);
    }
    assert_eq!(served.sign_in("bob", PASSWORD), 429);
    let locks = desk.run(&["agents", "locks"]).ok();
    assert!(
        locks
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("127.0.0.1") && l.contains("5 attempts")),
        "{locks}"
    );
    let out = desk.run(&["agents", "unlock", "bob"]).ok();
    assert!(out.contains("cleared"), "{out}");
    assert_eq!(served.sign_in("bob", PASSWORD), 303);
    assert!(
        desk.run(&["agents", "locks"])
            .ok()
            .contains("No sign-in is limited")
    );
}

/// Fault 8: a secret of the wrong type is refused without being shown.
#[test]
fn config_errors_never_show_a_secret() {
    for (extra, key) in [
        (
            "[helpdesk.smtp]\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword = 47114711\n",
            ":9:",
        ),
        (
            "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword = true\n",
            ":9:",
        ),
        (
            "[[helpdesk.mailbox]]\nhost = \"h\"\nuser = \"u\"\nauth = \"oauth2\"\n\
             oauth2 = { token_url = \"https://t.example\", client_id = \"c\", refresh_token = 47114711 }\n",
            ":10:",
        ),
    ] {
        let desk = Desk::on_sqlite(extra);
        let run = desk.run(&["check-config"]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(run.stderr.contains(key), "names the line: {}", run.stderr);
        assert!(!run.stderr.contains("47114711"), "{}", run.stderr);
        assert!(!run.stderr.contains("true"), "{}", run.stderr);
        assert!(
            run.stderr.contains("must be written as a string"),
            "{}",
            run.stderr
        );
    }
}

/// Runs postdesk under umask 022, the usual default that made every file world-readable.
fn run_with_umask_022(desk: &Desk, args: &[&str]) -> common::Run {
    let output = unsafe {
        Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(desk.config())
            .args(args)
            .current_dir(desk.dir.path())
            .stdin(Stdio::null())
            .pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            })
            .output()
            .unwrap()
    };
    common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every file and folder under `dir`, with its permission bits.
fn modes(dir: &std::path::Path) -> Vec<(String, bool, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::metadata(&path).unwrap();
        out.push((
            path.display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o777,
        ));
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

const WITH_ATTACHMENT: &str = "From: Jane <jane@customer.example>\nTo: support@example.com\n\
Subject: Invoice\nMessage-ID: <inv@customer.example>\nDate: Mon, 16 Nov 2026 08:00:00 +0000\n\
MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
See the attachment.\n--b\nContent-Type: image/png; name=scan.png\nContent-Disposition: attachment; filename=scan.png\n\
Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n";

/// Fault 9: the data folder is 0700 and its files 0600 even under umask 022; an
/// explicit `umask` is honoured; `check-config` warns about files others can read.
#[test]
fn data_files_are_private() {
    let desk = Desk::on_sqlite("");
    std::fs::write(desk.path("in.eml"), WITH_ATTACHMENT.replace('\n', "\r\n")).unwrap();
    let run = run_with_umask_022(&desk, &["import", "in.eml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = modes(&desk.path("data"));
    assert!(
        all.iter().filter(|(_, dir, _)| !dir).count() >= 2,
        "{all:?}"
    );
    assert!(
        all.iter().any(|(p, _, _)| p.ends_with("postdesk.db")),
        "{all:?}"
    );
    for (path, dir, mode) in &all {
        assert_eq!(*mode, if *dir { 0o700 } else { 0o600 }, "{path}");
    }
    let checked = run_with_umask_022(&desk, &["check-config"]);
    assert!(!checked.stderr.contains("warning"), "{}", checked.stderr);

    // An admin who wants the group to read (backups) says so.
    let shared = Desk::new("");
    let text = std::fs::read_to_string(shared.config()).unwrap();
    std::fs::write(shared.config(), format!("umask = \"027\"\n{text}")).unwrap();
    std::fs::write(shared.path("in.eml"), WITH_ATTACHMENT.replace('\n', "\r\n")).unwrap();
    assert_eq!(run_with_umask_022(&shared, &["import", "in.eml"]).code, 0);
    for (path, dir, mode) in modes(&shared.path("data")) {
        assert_eq!(mode, if dir { 0o750 } else { 0o640 }, "{path}");
    }

    // Files made readable by everyone (an old install, a careless copy) are reported.
    let db = desk.path("data/postdesk.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let checked = run_with_umask_022(&desk, &["check-config"]);
    assert_eq!(checked.code, 0);
    assert!(
        checked.stderr.contains(&format!(
            "warning: {} is readable by every user of this machine (mode 644)",
            db.display()
        )),
        "{}",
        checked.stderr
    );
}

/// A page on another origin that posts a sign-in form to `target` as soon as it loads.
fn serve_attacker_page(target: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><form id=f method=post action=\"http://{target}/login\">\
         <input name=login value=alice><input name=password value=guess></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let page = page.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
            });
        }
    });
    port
}

async fn sign_in(browser: &Browser, served: &Served) {
    browser.goto(&format!("http://{}/login", served.base)).await;
    browser.fill("input[name=login]", "alice").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.submit("form[action='/login']").await;
    browser.wait_for("table.tickets, p.empty").await;
}

const META_REFRESH: &str = "From: Mallory <mallory@customer.example>\nTo: support@example.com\n\
Subject: Refresh attack\nMessage-ID: <refresh@customer.example>\nDate: Mon, 16 Nov 2026 08:00:00 +0000\n\
MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n\
<html><head><meta http-equiv=\"refresh\" content=\"1;url=http://localhost:9/phish-head\"></head>\
<body><p>Your invoice.</p>\
<META HTTP-EQUIV=REFRESH CONTENT=\"1; URL=http://localhost:9/phish-upper\">\
<table><tr><td><meta http-equiv=\"refresh\" content=\"1;url=http://localhost:9/phish-table\"></td></tr></table>\
<noscript><meta http-equiv=\"refresh\" content=\"1;url=http://localhost:9/phish-noscript\"></noscript>\
<svg><meta http-equiv=\"refresh\" content=\"1;url=http://localhost:9/phish-svg\"></svg>\
<p>Regards</p></body></html>\n";

/// Fault 10: a mail's `<meta http-equiv=refresh>`, wherever it hides, is removed from
/// every place mail HTML is shown (the ticket page, the API): the page stays where it
/// is. Fault 4: another site's page cannot make the browser post a sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mails_meta_refresh_goes_nowhere_and_other_sites_cannot_sign_in() {
    let desk = Desk::new("");
    desk.import_mail("refresh.eml", META_REFRESH);
    desk.import_mail(
        "plain.eml",
        &mail(
            &[
                ("From", "Jane <jane@customer.example>"),
                ("Subject", "Plain"),
                ("Message-ID", "<plain@customer.example>"),
            ],
            "Hello.",
        ),
    );
    add_agent(&desk, "alice");
    let served = Served::start(&desk);
    let browser = Browser::start().await;

    // Another site's page posts a sign-in as soon as it is opened: refused, uncounted.
    let attacker = serve_attacker_page(&served.base);
    for _ in 0..6 {
        browser.goto(&format!("http://localhost:{attacker}/")).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !browser.current_url().await.contains(&served.base) {
            assert!(
                Instant::now() < deadline,
                "the attacker's form was not sent"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.wait_for("p.flash.error").await;
        let text = browser.text("p.flash.error").await;
        assert!(text.contains("did not come from postdesk"), "{text}");
        assert!(browser.text("h1").await.starts_with("403"));
    }
    // Six of them would have locked Alice out; she signs in.
    sign_in(&browser, &served).await;

    browser
        .goto(&format!("http://{}/tickets?q=Refresh", served.base))
        .await;
    browser.click("td.title a").await;
    browser.wait_for("article.entry").await;
    let ticket_url = browser.current_url().await;
    assert!(
        browser
            .text("section.thread")
            .await
            .contains("Your invoice.")
    );
    // Each refresh was due after a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        browser.current_url().await,
        ticket_url,
        "the page was redirected"
    );
    let metas = browser
        .execute("return document.querySelectorAll('body meta, .mail-html meta').length")
        .await;
    assert_eq!(metas, 0);
    let failed_loads: Vec<String> = browser
        .console_log()
        .await
        .into_iter()
        .map(|e| e.message)
        .filter(|m| m.contains("phish"))
        .collect();
    assert!(failed_loads.is_empty(), "{failed_loads:?}");
    browser.assert_not_pwned().await;

    // The API serves the same sanitized HTML.
    let cookie = browser
        .client()
        .get_named_cookie("postdesk_session")
        .await
        .unwrap();
    let id = ticket_url.rsplit('/').next().unwrap();
    let (status, body) = served.request(
        &format!(
            "GET /api/tickets/{id} HTTP/1.1\r\nCookie: postdesk_session={}",
            cookie.value()
        ),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let lower = body.to_ascii_lowercase();
    assert!(lower.contains("your invoice."), "{body}");
    assert!(
        !lower.contains("<meta") && !lower.contains("http-equiv") && !lower.contains("phish"),
        "{body}"
    );
    browser.close().await;
}
