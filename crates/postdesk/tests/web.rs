//! The web UI end to end, in a real headless Chromium, against `postdesk serve` with a
//! real Dovecot and a real SMTP server on loopback. Screenshots of the main pages are
//! saved as test artifacts (`target/screenshots/`, or `$POSTDESK_SCREENSHOTS`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::browser::Browser;
use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
use postdesk_testkit::free_port;
use postdesk_testkit::smtp::{SinkOptions, SmtpSink};

const PASSWORD: &str = "correct horse battery";

/// `postdesk serve` on a free port; killed when dropped (its log shown if the test failed).
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
            .env("POSTDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postdesk serve did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("postdesk serve's log:\n{log}");
        }
    }
}

fn add_agent(desk: &Desk, name: &str, helpdesk: &str) {
    let run = desk.run_with_stdin(
        &["agents", "add", name, "--helpdesk", helpdesk],
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    run.ok();
}

async fn sign_in(browser: &Browser, served: &Served, name: &str) {
    browser.goto(&served.url("/tickets")).await;
    assert!(
        browser.current_url().await.ends_with("/login"),
        "a page without a session leads to the sign-in"
    );
    browser.fill("input[name=login]", name).await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.submit("form[action='/login']").await;
    browser.wait_for("table.tickets, p.empty").await;
    assert!(browser.current_url().await.ends_with("/tickets"));
}

/// Reloads `url` until `text` shows in the page.
async fn wait_for_text(browser: &Browser, url: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        browser.goto(url).await;
        if browser.page_source().await.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "{text:?} never showed at {url}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_mail_in_the_browser_and_fixes_a_failed_mail() {
    let server = Dovecot::start(DovecotOptions::default().user("support", "secret"));
    let sink = SmtpSink::start(SinkOptions::default());
    let mailbox = |name: &str, password: &str| {
        format!(
            "[[helpdesk.mailbox]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             user = \"support\"\npassword = \"{password}\"\ncreate_folders = true\ninterval_secs = 2\n",
            server.imap_port()
        )
    };
    let smtp = format!(
        "[helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        sink.port()
    );
    // Jane is known from an earlier import; afterwards unknown senders are refused,
    // so a mail from her private address lands in the failed queue.
    let desk = Desk::new(&format!(
        "{}\n{}\n{smtp}",
        mailbox("inbox", "secret"),
        mailbox("broken", "wrong-password")
    ));
    desk.import_mail(
        "seed.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", "Earlier question"),
                ("Message-ID", "<seed@customer.example>"),
            ],
            "An old question.",
        ),
    );
    desk.write_config(&format!(
        "unknown_sender = \"reject\"\n{}\n{}\n{smtp}",
        mailbox("inbox", "secret"),
        mailbox("broken", "wrong-password")
    ));
    // `[outgoing]` after the top-level keys (the first line), before `[[helpdesk]]`.
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&text);
    std::fs::write(
        desk.config(),
        format!("{first}\n[outgoing]\nretry_base_secs = 1\npoll_secs = 1\n{rest}"),
    )
    .unwrap();
    add_agent(&desk, "alice", "Support");
    let served = Served::start(&desk);
    let browser = Browser::start().await;

    browser.goto(&served.url("/login")).await;
    browser.screenshot("login").await;
    sign_in(&browser, &served, "alice").await;

    // A customer's mail arrives in the IMAP mailbox and becomes a ticket.
    server.append(
        "support",
        "INBOX",
        &crlf(&mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", "Printer on fire"),
                ("Message-ID", "<fire@customer.example>"),
            ],
            "The printer in room 4 is on fire.\n",
        )),
    );
    wait_for_text(&browser, &served.url("/tickets"), "Printer on fire").await;
    browser.screenshot("tickets").await;
    browser.click("td.title a").await;
    browser.wait_for("article.entry.incoming").await;
    assert!(browser.text("h1").await.contains("[HD#2] Printer on fire"));
    assert!(
        browser
            .text("article.entry.incoming .text")
            .await
            .contains("room 4 is on fire")
    );
    let ticket_url = browser.current_url().await;

    // The agent answers; the reply reaches the customer with the ticket tag, threaded.
    browser
        .fill(
            "form[action$='/reply'] textarea",
            "We are sending someone with an extinguisher.",
        )
        .await;
    browser.submit("form[action$='/reply']").await;
    browser.wait_for("p.flash").await;
    let flash = browser.text("p.flash").await;
    assert!(flash.contains("reply is queued"), "{flash}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let found = sink
            .received()
            .into_iter()
            .find(|r| String::from_utf8_lossy(&r.raw).contains("extinguisher"));
        if let Some(r) = found {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the reply never reached the SMTP server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reply.envelope_to, vec!["jane@customer.example"]);
    let parsed = postdesk_mail::parse(&reply.raw);
    assert!(parsed.subject.contains("[HD#2]"), "{}", parsed.subject);
    assert_eq!(parsed.in_reply_to, vec!["fire@customer.example"]);
    let reply_id = parsed.message_id.clone().unwrap();

    // The customer answers the reply: it joins the same thread.
    server.append(
        "support",
        "INBOX",
        &crlf(&mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", &format!("Re: {}", parsed.subject)),
                ("Message-ID", "<thanks@customer.example>"),
                ("In-Reply-To", &format!("<{reply_id}>")),
            ],
            "Thanks, the fire is out.\n\n> We are sending someone with an extinguisher.\n",
        )),
    );
    wait_for_text(&browser, &ticket_url, "the fire is out").await;
    let kinds: Vec<String> = browser
        .execute("return [...document.querySelectorAll('article.entry')].map(e => e.className)")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["entry incoming", "entry outgoing", "entry incoming"],
        "one thread, in order"
    );
    browser.screenshot("ticket").await;

    // The broken mailbox shows its wrong password as an error; the test button says so too.
    wait_for_text(&browser, &served.url("/mailboxes"), "health error").await;
    let row = browser.text("#mailbox-1").await;
    assert!(
        row.contains("broken") && row.contains("login as support was refused"),
        "{row}"
    );
    assert!(
        !browser.page_source().await.contains("wrong-password"),
        "the password is never shown"
    );
    assert!(browser.text("#mailbox-0").await.contains("ok"));
    browser
        .click("#mailbox-1 form[action$='/check'] button")
        .await;
    browser.wait_for("section.check-result").await;
    browser.wait_for("p.flash").await;
    assert!(
        browser
            .text("p.flash")
            .await
            .contains("connection test failed")
    );
    assert!(
        browser.text("ol.steps li.fail").await.starts_with("login"),
        "the failing step is the login"
    );
    browser.screenshot("mailboxes").await;

    // A mail from Jane's private address is refused (unknown sender) and kept; once the
    // address is added to her contact, "process again" files it.
    server.append(
        "support",
        "INBOX",
        &crlf(&mail(
            &[
                ("From", "Jane Doe <jane@home.example>"),
                ("Subject", "Sent from home"),
                ("Message-ID", "<home@home.example>"),
            ],
            "Writing from my home address.\n",
        )),
    );
    wait_for_text(&browser, &served.url("/failed"), "Sent from home").await;
    assert!(
        browser
            .text("table.failed")
            .await
            .contains("jane@home.example")
    );
    browser.screenshot("failed").await;
    browser.goto(&served.url("/contacts?q=jane")).await;
    browser.click("table a[href^='/contacts/']").await;
    browser.wait_for("form[action$='/addresses']").await;
    browser
        .fill(
            "form[action$='/addresses'] input[name=address]",
            "jane@home.example",
        )
        .await;
    browser.submit("form[action$='/addresses']").await;
    assert!(
        browser
            .text("ul.addresses-list")
            .await
            .contains("jane@home.example")
    );
    browser.screenshot("contact").await;
    browser.goto(&served.url("/failed")).await;
    browser.submit("table.failed form[action$='/retry']").await;
    browser.wait_for("p.flash").await;
    let flash = browser.text("p.flash").await;
    assert!(flash.contains("is now ticket [HD#3]"), "{flash}");
    assert!(browser.exists("p.empty").await, "the failed queue is empty");
    browser.goto(&served.url("/tickets")).await;
    assert!(
        browser
            .text("table.tickets")
            .await
            .contains("Sent from home")
    );
    browser.assert_not_pwned().await;
    browser.close().await;
}

/// GET with a session cookie, for the headers the browser does not show.
fn http_get(base: &str, path: &str, cookie: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mails_run_nothing_load_nothing_and_escape_nothing() {
    let desk = Desk::new(
        "[helpdesk.attachments]\nallowed_types = [\"image/*\", \"text/plain\", \"application/*\"]\n",
    );
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests/hostile");
    // The folder also holds its README and generator: only the mails.
    let mut args = vec!["import".to_string()];
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            args.push(path.to_str().unwrap().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = desk.run(&args).ok();
    assert!(out.contains("7 created"), "{out}");
    add_agent(&desk, "alice", "Support");
    let served = Served::start(&desk);
    let browser = Browser::start().await;
    sign_in(&browser, &served, "alice").await;
    let cookie = browser
        .client()
        .get_named_cookie("postdesk_session")
        .await
        .unwrap();
    let cookie = format!("postdesk_session={}", cookie.value());

    let links: Vec<String> = browser
        .execute(
            "return [...document.querySelectorAll('td.title a')].map(a => a.getAttribute('href'))",
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(links.len(), 7);
    browser.assert_not_pwned().await;
    for link in &links {
        browser.goto(&served.url(link)).await;
        browser.wait_for("article.entry").await;
        // Open every collapsed part so that everything a mail holds is rendered.
        browser
            .execute("document.querySelectorAll('details').forEach(d => d.open = true); return 1")
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.assert_not_pwned().await;
        let title = browser.title().await;
        let report = browser
            .execute(
                r#"
                const own = location.origin;
                const thread = document.querySelector('section.thread');
                const bad = [];
                // The whole page: our own markup has no handlers, scripts or frames, so any
                // there came from a mail (a subject or a name as much as a body).
                for (const e of document.body.querySelectorAll('*')) {
                    for (const a of e.attributes) {
                        if (a.name.startsWith('on')) bad.push('handler ' + e.tagName + ' ' + a.name);
                        if (['href', 'src', 'action', 'formaction', 'srcset', 'background'].includes(a.name)) {
                            const v = a.value.trim().toLowerCase();
                            if (!(v.startsWith('/') || v.startsWith('#') || v.startsWith('http:') || v.startsWith('https:') || v.startsWith('mailto:')) || (a.name !== 'href' && !v.startsWith('/')))
                                bad.push('url ' + e.tagName + ' ' + a.name + '=' + a.value);
                        }
                    }
                    if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'BASE', 'META', 'LINK', 'STYLE', 'FRAME'].includes(e.tagName.toUpperCase()))
                        bad.push('element ' + e.tagName);
                    if (e.closest('.mail-html') && ['fixed', 'absolute', 'sticky'].includes(getComputedStyle(e).position))
                        bad.push('positioned ' + e.tagName);
                }
                for (const f of thread.querySelectorAll('form')) {
                    if (!f.closest('section.compose')) bad.push('form from the mail');
                }
                for (const r of performance.getEntriesByType('resource')) {
                    if (!r.name.startsWith(own)) bad.push('loaded ' + r.name);
                }
                const top = document.querySelector('header.top').getBoundingClientRect();
                const reply = document.querySelector('section.compose');
                return {
                    bad,
                    header_visible: top.height > 0 && getComputedStyle(document.body).display !== 'none',
                    compose_visible: reply.getBoundingClientRect().height > 0,
                    heading: document.querySelector('h1').textContent,
                };
                "#,
            )
            .await;
        assert_eq!(report["bad"], serde_json::json!([]), "{title}: {report}");
        assert_eq!(
            report["header_visible"], true,
            "{title}: the page header was hidden"
        );
        assert_eq!(
            report["compose_visible"], true,
            "{title}: the reply form was hidden"
        );

        // Attachments are downloads with safe names, never rendered by the browser.
        let attachments: Vec<(String, String)> = browser
            .execute("return [...document.querySelectorAll('ul.attachments a')].map(a => [a.getAttribute('href'), a.textContent])")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
            .collect();
        for (href, name) in attachments {
            assert!(
                !name.contains('/') && !name.contains('\\') && !name.contains(".."),
                "unsafe name {name:?}"
            );
            assert!(
                !name
                    .chars()
                    .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
                "{name:?}"
            );
            let headers = http_get(&served.base, &href, &cookie).to_ascii_lowercase();
            assert!(headers.starts_with("http/1.1 200"), "{href}: {headers}");
            assert!(
                headers.contains("content-disposition: attachment;"),
                "{href}: {headers}"
            );
            assert!(
                headers.contains("content-type: application/octet-stream"),
                "{href}: {headers}"
            );
            assert!(
                headers.contains("x-content-type-options: nosniff"),
                "{href}: {headers}"
            );
        }
        let shot = link.trim_start_matches("/tickets/").to_string();
        browser.screenshot(&format!("hostile-{shot}")).await;
    }
    // Header tricks show as text: the subject's markup is visible, not interpreted.
    browser.goto(&served.url("/tickets?q=%3Cscript")).await;
    browser.assert_not_pwned().await;
    browser.close().await;
}

/// POSTs a form; returns the status line and headers.
fn http_post_form(base: &str, path: &str, body: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[test]
fn the_demo_ends_with_the_ui_running_and_says_how_to_sign_in() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("demo")
        .arg(dir.path().join("demo"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("POSTDESK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut password = None;
    for line in stdout.by_ref().lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("The web UI is running: open ") {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.trim().strip_prefix("password: ") {
            password = Some(rest.trim().to_string());
            break;
        }
    }
    // Keep reading: a closed pipe would end the demo at its next line of output.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let (url, password) = (
        url.expect("the demo says where"),
        password.expect("and the password"),
    );
    assert_eq!(url, format!("http://127.0.0.1:{port}/"));
    let base = url.trim_end_matches('/');
    let wrong = http_post_form(base, "/login", "login=admin&password=not-it");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let right = http_post_form(base, "/login", &format!("login=admin&password={password}"));
    assert!(
        right.starts_with("HTTP/1.1 303") && right.contains("set-cookie: postdesk_session="),
        "{right}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn agents_are_added_listed_given_passwords_and_tokens() {
    let desk = Desk::new("");
    let refused = desk.run_with_stdin(&["agents", "add", "bob"], Some(b"a long password\n"));
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--helpdesk"), "{}", refused.stderr);
    let short = desk.run_with_stdin(
        &["agents", "add", "bob", "--helpdesk", "Support"],
        Some(b"short\n"),
    );
    assert!(
        short.stderr.contains("at least 10 characters"),
        "{}",
        short.stderr
    );
    let unknown = desk.run_with_stdin(
        &["agents", "add", "bob", "--helpdesk", "Nope"],
        Some(b"a long password\n"),
    );
    assert!(
        unknown.stderr.contains("no helpdesk named `Nope`"),
        "{}",
        unknown.stderr
    );
    desk.run_with_stdin(
        &[
            "agents",
            "add",
            "bob",
            "--helpdesk",
            "Support",
            "--email",
            "Bob@Example.com",
        ],
        Some(b"a long password\n"),
    )
    .ok();
    desk.run_with_stdin(
        &["agents", "add", "root", "--role", "admin"],
        Some(b"another long password\n"),
    )
    .ok();
    let list = desk.run(&["agents", "list"]).ok();
    let bob = list
        .lines()
        .find(|l| l.starts_with("bob "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        bob.contains("agent") && bob.contains("bob@example.com") && bob.contains("Support"),
        "{bob}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("root ") && l.contains("admin")),
        "{list}"
    );
    assert!(!list.contains("argon2"), "hashes are never shown");
    desk.run_with_stdin(
        &["agents", "passwd", "bob"],
        Some(b"a brand new password\n"),
    )
    .ok();
    let token = desk.run(&["agents", "token", "bob"]).ok();
    let token = token.trim();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let missing = desk.run_with_stdin(&["agents", "passwd", "nobody"], Some(b"a long password\n"));
    assert!(
        missing.stderr.contains("there is no agent named `nobody`"),
        "{}",
        missing.stderr
    );
}
