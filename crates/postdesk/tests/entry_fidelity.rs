//! What the parser knew about a mail is kept with its entry (issue 16): real mails
//! imported by the binary show the charset postdesk chose, the header the sender came
//! from and the signal that classified them, on the ticket page, in the API and in
//! `tickets show`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Desk;
use postdesk_testkit::free_port;
use serde_json::Value;

/// `postdesk serve` on a free port, killed when dropped.
struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(desk: &Desk) -> Served {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(desk.config())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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
        }
    }

    /// GET with an API token; the body of a 200 answer.
    fn get(&self, path: &str, token: &str) -> String {
        let mut stream = TcpStream::connect(&self.base).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            self.base
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "GET {path}: chunked answers are not read here"
        );
        body.to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail/tests/fidelity")
        .join(rel);
    path.to_str().unwrap().to_string()
}

/// The one incoming entry of the ticket whose mail had this subject, as the API shows it,
/// and the ticket's page.
fn entry_and_page(served: &Served, token: &str, subject: &str) -> (Value, String) {
    let list: Value = serde_json::from_str(&served.get("/api/tickets", token)).unwrap();
    let id = list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == subject)
        .unwrap_or_else(|| panic!("no ticket {subject:?} in {list}"))["id"]
        .clone();
    let ticket: Value =
        serde_json::from_str(&served.get(&format!("/api/tickets/{id}"), token)).unwrap();
    let thread = ticket["thread"].as_array().unwrap();
    assert_eq!(thread.len(), 1, "{ticket}");
    let page = served.get(&format!("/tickets/{id}"), token);
    (thread[0].clone(), page)
}

/// The muted line under an entry's header, if the page has one.
fn mail_facts(page: &str) -> Option<&str> {
    let start = page.find("<p class=\"mail-facts\">")? + "<p class=\"mail-facts\">".len();
    Some(&page[start..start + page[start..].find("</p>")?])
}

#[test]
fn the_ticket_page_and_api_say_how_a_mail_was_read() {
    let desk = Desk::new("");
    let mails = [
        // Cyrillic bytes with no Content-Type: decoded as windows-1251.
        "charset/cp1251-no-content-type.eml",
        // No From: the sender comes from Reply-To.
        "sender/no-from-uses-reply-to.eml",
        // A List-Id makes it bulk mail: still a ticket, with the signal named.
        "loop/list-id.eml",
    ];
    let mut args = vec!["import".to_string()];
    args.extend(mails.iter().map(|m| fixture(m)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    desk.run(&args).ok();
    // A plain UTF-8 mail from its From: nothing worth a line.
    desk.import_mail(
        "plain.eml",
        &common::mail(
            &[
                ("From", "Ann <ann@example.org>"),
                ("Subject", "plain printer"),
            ],
            "My printer is broken.",
        ),
    );
    desk.run_with_stdin(
        &["agents", "add", "bob", "--helpdesk", "Support"],
        Some(b"correct horse battery\n"),
    )
    .ok();
    let token = desk.run(&["agents", "token", "bob"]).ok();
    let token = token.trim();
    let served = Served::start(&desk);

    let (entry, page) = entry_and_page(&served, token, "hello");
    assert_eq!(entry["detected_charset"], "windows-1251", "{entry}");
    assert_eq!(entry["sender_source"], "From", "{entry}");
    assert_eq!(entry["class_signal"], "no automatic-mail signal", "{entry}");
    assert_eq!(mail_facts(&page), Some("decoded as windows-1251"), "{page}");

    let (entry, page) = entry_and_page(&served, token, "who");
    assert_eq!(entry["from"], "bob@example.org", "{entry}");
    assert_eq!(entry["sender_source"], "Reply-To", "{entry}");
    assert_eq!(entry["detected_charset"], Value::Null, "{entry}");
    assert_eq!(mail_facts(&page), Some("sender from Reply-To"), "{page}");

    let (entry, page) = entry_and_page(&served, token, "about my order");
    assert_eq!(entry["classification"], "bulk", "{entry}");
    let signal = entry["class_signal"].as_str().unwrap();
    assert!(signal.contains("List-Id"), "{entry}");
    let facts = mail_facts(&page).expect("a facts line");
    assert!(facts.starts_with("bulk: List-Id"), "{facts}");
    assert!(
        !facts.contains("decoded as") && !facts.contains("sender from"),
        "{facts}"
    );

    // The command line says the same.
    let shown = desk.show(1);
    assert!(shown.contains("(decoded as windows-1251)"), "{shown}");
    let shown = desk.show(3);
    assert!(shown.contains("(bulk: List-Id"), "{shown}");

    let (entry, page) = entry_and_page(&served, token, "plain printer");
    assert_eq!(entry["sender_source"], "From", "{entry}");
    assert_eq!(entry["detected_charset"], Value::Null, "{entry}");
    assert_eq!(mail_facts(&page), None, "{page}");
}

/// The mail crate does not know the web's routes: the binary tells the pipeline where
/// attachments are served, so an inline `cid:` image in an imported mail points at a
/// URL that serves it.
#[test]
fn inline_images_point_at_the_served_attachment() {
    let desk = Desk::new("");
    let demo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/05-html-with-attachments.eml");
    desk.run(&["import", demo.to_str().unwrap()]).ok();
    desk.run_with_stdin(
        &["agents", "add", "bob", "--helpdesk", "Support"],
        Some(b"correct horse battery\n"),
    )
    .ok();
    let token = desk.run(&["agents", "token", "bob"]).ok();
    let token = token.trim();
    let served = Served::start(&desk);
    let list: Value = serde_json::from_str(&served.get("/api/tickets", token)).unwrap();
    let id = &list["tickets"][0]["id"];
    let ticket: Value =
        serde_json::from_str(&served.get(&format!("/api/tickets/{id}"), token)).unwrap();
    let entry = &ticket["thread"][0];
    let html = entry["html"].as_str().expect("an HTML body");
    let inline = entry["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["inline"] == true)
        .unwrap_or_else(|| panic!("no inline attachment in {entry}"));
    let url = inline["url"].as_str().unwrap();
    assert!(url.starts_with("/attachments/"), "{inline}");
    assert!(html.contains(&format!("src=\"{url}\"")), "{html}");
    assert!(!html.contains("cid:"), "{html}");
    assert!(!served.get(url, token).is_empty());
}
