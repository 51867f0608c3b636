//! The browser harness against pages served from a plain TcpListener on loopback.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk_testkit::browser::Browser;

/// Serves `pages` (path → HTML; the query string is ignored, except on `/hello`, which
/// greets `?name=`) on 127.0.0.1 from a thread, until the test process ends.
fn serve(pages: HashMap<&'static str, &'static str>) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let pages = Arc::new(pages);
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A thread per connection: Chromium opens speculative connections that send
            // nothing for a while.
            let pages = Arc::clone(&pages);
            std::thread::spawn(move || answer(stream, &pages));
        }
    });
    base
}

fn answer(mut stream: std::net::TcpStream, pages: &HashMap<&'static str, &'static str>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = if path == "/hello" {
        let name = query.strip_prefix("name=").unwrap_or("").replace('+', " ");
        let name = name.replace('&', "&amp;").replace('<', "&lt;");
        let body =
            format!("<!doctype html><title>hello</title><h1 id=greeting>Hello, {name}!</h1>");
        ("200 OK", body)
    } else if let Some(page) = pages.get(path) {
        ("200 OK", page.to_string())
    } else {
        (
            "404 Not Found",
            "<!doctype html><h1>not found</h1>".to_string(),
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

const FORM: &str = r#"<!doctype html>
<html><head><title>form</title></head>
<body>
<p id=out>nothing yet</p>
<button id=count onclick="document.getElementById('out').textContent = 'clicked ' + (++window.n)">count</button>
<script>window.n = 0; console.error('boom-from-the-page');</script>
<form id=greet action="/hello" method=get>
  <input name=name value="old">
  <button>Greet</button>
</form>
</body></html>"#;

#[tokio::test]
async fn fill_click_read_and_screenshot() {
    let base = serve(HashMap::from([
        ("/", FORM),
        (
            "/remote",
            "<!doctype html><p>remote image</p><img src='http://attacker.invalid/t.gif'>",
        ),
    ]));
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.title().await, "form");
    assert_eq!(browser.text("#out").await, "nothing yet");
    browser.click("#count").await;
    browser.click("#count").await;
    assert_eq!(browser.text("#out").await, "clicked 2");
    assert_eq!(
        browser.execute("return window.n").await,
        serde_json::json!(2)
    );
    assert!(browser.page_source().await.contains("clicked 2"));
    assert!(browser.exists("form#greet").await);
    assert!(!browser.exists("#missing").await);

    let errors = browser.console_errors().await;
    assert!(
        errors.iter().any(|e| e.contains("boom-from-the-page")),
        "console errors: {errors:?}"
    );

    let png = browser.screenshot("testkit-browser form/page").await;
    assert!(png.ends_with("testkit-browser_form_page.png"), "{png:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {png:?}"
    );

    browser.fill("input[name=name]", "Ada Lovelace").await;
    browser.submit("form#greet").await;
    assert_eq!(
        browser.wait_for("#greeting").await.text().await.unwrap(),
        "Hello, Ada Lovelace!"
    );
    assert!(
        browser
            .current_url()
            .await
            .starts_with(&format!("{base}/hello?name=Ada")),
        "{}",
        browser.current_url().await
    );
    browser.assert_not_pwned().await;

    // localhost is looked up; every other name fails at once, without a DNS query.
    let local = base.replace("127.0.0.1", "localhost");
    browser.goto(&format!("{local}/remote")).await;
    assert_eq!(browser.text("p").await, "remote image");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut errors = Vec::new();
    while Instant::now() < deadline {
        errors.extend(browser.console_errors().await);
        if errors.iter().any(|e| e.contains("attacker.invalid")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("attacker.invalid") && e.contains("ERR_NAME_NOT_RESOLVED")),
        "console errors: {errors:?}"
    );
    browser.close().await;
}

const ALERT: &str = r#"<!doctype html><title>alert</title>
<p id=text>before</p><script>alert('pwned-by-alert')</script><p>after</p>"#;

const FRAME: &str = r#"<!doctype html><title>frame</title>
<p>a mail</p>
<iframe sandbox="allow-scripts" srcdoc="<script>window.__pwned = 1</script>"></iframe>"#;

const TOP: &str = r#"<!doctype html><title>top</title><script>window.__pwned = 'top'</script>"#;

/// Processes whose command line names `dir` (the Browser's profile lives there).
fn processes_mentioning(dir: &std::path::Path) -> Vec<String> {
    let marker = dir.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && cmdline.windows(marker.len()).any(|w| w == marker)
        {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if !stat
                .rsplit_once(") ")
                .is_some_and(|(_, s)| s.starts_with('Z'))
            {
                found.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
            }
        }
    }
    found
}

#[tokio::test]
async fn script_that_runs_is_detected_and_everything_stops_on_drop() {
    let base = serve(HashMap::from([
        ("/alert", ALERT),
        ("/frame", FRAME),
        ("/top", TOP),
        ("/clean", "<!doctype html><title>clean</title><p>plain</p>"),
    ]));
    let browser = Arc::new(Browser::start().await);
    let profile = browser.profile_dir();
    assert!(
        !processes_mentioning(&profile).is_empty(),
        "Chromium should run with the profile {profile:?}"
    );

    browser.goto(&format!("{base}/clean")).await;
    assert_eq!(browser.pwned().await, None);
    assert_eq!(browser.dialog().await, None);

    // An alert during the page load: the navigation ends, the dialog stays open.
    let _ = browser.client().goto(&format!("{base}/alert")).await;
    assert_eq!(browser.dialog().await.as_deref(), Some("pwned-by-alert"));
    let what = browser.pwned().await.expect("the alert is found");
    assert!(what.contains("JavaScript dialog is open"), "{what}");
    assert!(what.contains("pwned-by-alert"), "{what}");
    // Any helper fails with the dialog named.
    let shared = Arc::clone(&browser);
    let failed = tokio::spawn(async move { shared.text("#text").await })
        .await
        .expect_err("text() with a dialog open must panic");
    let message = failed.into_panic();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("JavaScript dialog is open (\"pwned-by-alert\")"),
        "{message}"
    );
    assert_eq!(
        browser.dismiss_dialog().await.as_deref(),
        Some("pwned-by-alert")
    );
    assert_eq!(browser.dialog().await, None);

    // window.__pwned in the page, and in a sandboxed (cross-origin) frame.
    browser.goto(&format!("{base}/top")).await;
    let what = browser.pwned().await.expect("window.__pwned in the page");
    assert!(
        what.contains("window.__pwned is \"top\" in the page"),
        "{what}"
    );
    browser.goto(&format!("{base}/frame")).await;
    let what = browser.pwned().await.expect("window.__pwned in the frame");
    assert!(what.contains("in frame 0 of the page"), "{what}");
    // Still usable at the top level afterwards.
    assert_eq!(browser.text("p").await, "a mail");

    // Dropping the browser ends chromedriver and every Chromium process.
    let browser = Arc::into_inner(browser).expect("the only reference");
    drop(browser);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_mentioning(&profile).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_mentioning(&profile), Vec::<String>::new());
    assert!(!profile.exists(), "the profile directory is removed");
}
