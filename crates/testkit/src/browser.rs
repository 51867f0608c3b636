//! A real headless Chromium driven over WebDriver, for end-to-end tests of the web UI.
//!
//! ```no_run
//! use postdesk_testkit::browser::Browser;
//!
//! # async fn example() {
//! let browser = Browser::start().await;
//! browser.goto("http://127.0.0.1:8080/login").await;
//! browser.fill("input[name=user]", "alice").await;
//! browser.submit("form#login").await;
//! assert_eq!(browser.text("h1").await, "Tickets");
//! browser.assert_not_pwned().await; // no dialog open, no `window.__pwned` in any frame
//! let png = browser.screenshot("tickets-list").await;
//! # }
//! ```
//!
//! # What runs
//!
//! `chromedriver --port=<free port>` (Debian's `chromium-driver`) in a process group of
//! its own, led by a small watchdog shell that kills the group should this process die
//! without dropping the [`Browser`] (as the Dovecot harness does). Its session starts
//! `/usr/bin/chromium --headless --no-sandbox …` (see [`CHROMIUM_ARGS`]) with a fresh
//! profile (`--user-data-dir`) in a temporary directory owned by the [`Browser`], so
//! tests never share cookies or storage. Chromium only ever talks to what a test points
//! it at; the background services that would go to the network are switched off.
//!
//! Dropping the [`Browser`] (also while a test panics) ends the session, SIGKILLs the
//! process group and then any process still using the profile directory (Chromium's
//! zygote and renderers), and removes the profile. [`Browser::close`] does the same
//! after a graceful end of the session.
//!
//! # Helpers panic
//!
//! The helpers ([`Browser::goto`], [`Browser::click`], …) panic with a message naming
//! what was asked (the selector, the URL) when WebDriver fails, as the other harnesses
//! here do; [`Browser::client`] gives the [`fantoccini::Client`] for anything fallible or
//! not covered. Elements are found by CSS selector.
//!
//! # JavaScript dialogs
//!
//! The session is opened with `unhandledPromptBehavior: "ignore"`: an `alert()`,
//! `confirm()` or `prompt()` stays open (Chromium would otherwise dismiss it silently
//! and carry on). [`Browser::dialog`] tells its text; while one is open every other
//! command fails, and the helpers then panic with `a JavaScript dialog is open
//! ("…")`, so a hostile mail whose script runs cannot go unnoticed. A page that opens
//! a dialog again each time one is dismissed (`<input autofocus onfocus=alert(1)>`)
//! leaves the session unusable: use a fresh [`Browser`] for the next page.
//!
//! # Network
//!
//! Chromium resolves no host names but `localhost` (`--host-resolver-rules`): pages are
//! served on 127.0.0.1, `localhost` or `[::1]`, and anything else (a hostile mail's
//! `http://attacker.invalid/…`) fails at once with `net::ERR_NAME_NOT_RESOLVED`, which
//! the browser log records. Chromium opens speculative connections that send nothing
//! for a while, so a test server must answer connections concurrently.
//!
//! The viewport is 1366×757 (`--window-size=1366,900` less the headless window frame).
//!
//! # Browser log
//!
//! [`Browser::console_log`] reads Chromium's log (console messages, failed loads,
//! Content-Security-Policy violations) through chromedriver's `se/log` endpoint; each
//! entry is returned once.
//!
//! # Screenshots
//!
//! [`Browser::screenshot`] writes `<name>.png` into `$POSTDESK_SCREENSHOTS` when that is
//! set, else `<workspace>/target/screenshots/`, and returns the path.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The Chromium binary (Debian's `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The arguments Chromium is started with (besides `--user-data-dir`, and those
/// chromedriver adds itself).
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1366,900",
    // A container's /dev/shm may be small; Chromium then crashes tabs. /tmp is used instead.
    "--disable-dev-shm-usage",
    // No name is ever looked up: a page (a hostile mail whose remote content got through)
    // fails at once with net::ERR_NAME_NOT_RESOLVED instead of sending a DNS query.
    // Only localhost, 127.0.0.1 and [::1] are reachable (IP literals count as names here).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
];

/// How long chromedriver has to answer `/status` after it started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at a start when another process took the picked port.
const PORT_ATTEMPTS: usize = 3;
/// How long [`Browser::wait_for`] waits for an element.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The frame path (`0/1`) and the value of the first `window.__pwned` found.
type FrameSearch<'a> =
    std::pin::Pin<Box<dyn Future<Output = Option<(String, String)>> + Send + 'a>>;

/// One entry of the browser's log ([`Browser::console_log`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// Where it came from and what it says, e.g.
    /// `http://127.0.0.1:5000/ 3:9 Uncaught ReferenceError: x is not defined`.
    pub message: String,
}

/// A headless Chromium with one WebDriver session; see the [module docs](self).
pub struct Browser {
    client: Client,
    session_id: String,
    driver: Driver,
}

/// The chromedriver process group and the profile directory.
struct Driver {
    /// The watchdog shell leading chromedriver's process group.
    leader: Option<Child>,
    port: u16,
    /// `chromedriver.log` (chromedriver's own output) and `profile/`.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and Chromium and opens a session.
    ///
    /// Panics, naming the Debian packages, when `chromium` or `chromedriver` is missing,
    /// and with chromedriver's log when the session cannot be opened.
    pub async fn start() -> Browser {
        let chromium = Path::new(CHROMIUM);
        assert!(
            chromium.is_file(),
            "{CHROMIUM} not found: the browser tests need Debian's chromium \
             (apt-get install -y chromium chromium-driver)"
        );
        let chromedriver = find_chromedriver();
        let dir = tempfile::Builder::new()
            .prefix("postdesk-browser-")
            .tempdir()
            .expect("create a temporary directory for the browser");
        let profile = dir.path().join("profile");
        fs::create_dir(&profile).expect("create the browser profile directory");

        let mut driver = Driver {
            leader: None,
            port: 0,
            dir,
        };
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            match driver.spawn(&chromedriver).await {
                Ok(()) => break,
                Err(failure) => failures.push(failure),
            }
        }
        assert!(
            driver.leader.is_some(),
            "chromedriver did not start: {}",
            failures.join("; ")
        );

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "unhandledPromptBehavior": "ignore",
            "timeouts": {"pageLoad": 30_000, "script": 10_000, "implicit": 0},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
        {
            Ok(client) => client,
            Err(e) => panic!(
                "open a chromedriver session with {CHROMIUM}: {e}\nchromedriver log:\n{}",
                driver.log_tail()
            ),
        };
        let session_id = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("chromedriver gave no session id");
        Browser {
            client,
            session_id,
            driver,
        }
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The profile directory Chromium was started with (`--user-data-dir`).
    pub fn profile_dir(&self) -> PathBuf {
        self.driver.dir.path().join("profile")
    }

    /// Opens `url` and waits until the page has loaded (the `load` event).
    pub async fn goto(&self, url: &str) {
        let result = self.client.goto(url).await;
        self.check(&format!("goto {url}"), result).await
    }

    /// The element matching `css`, at once (no waiting); panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let result = self.client.find(Locator::Css(css)).await;
        self.check(&format!("find {css:?}"), result).await
    }

    /// Every element matching `css` (none is fine).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let result = self.client.find_all(Locator::Css(css)).await;
        self.check(&format!("find_all {css:?}"), result).await
    }

    /// Whether an element matches `css`.
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The element matching `css`, waiting up to [`WAIT_TIMEOUT`] for it to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        let result = self
            .client
            .wait()
            .at_most(WAIT_TIMEOUT)
            .for_element(Locator::Css(css))
            .await;
        self.check(&format!("wait_for {css:?} ({WAIT_TIMEOUT:?})"), result)
            .await
    }

    /// Clicks the element matching `css` (as a user would: it must be visible and not
    /// covered). A click that navigates is waited for by the next command.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        let result = element.click().await;
        self.check(&format!("click {css:?}"), result).await
    }

    /// Replaces the value of the input or textarea matching `css` with `text`, typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        let result = element.clear().await;
        self.check(&format!("clear {css:?}"), result).await;
        let result = element.send_keys(text).await;
        self.check(&format!("fill {css:?}"), result).await
    }

    /// Submits the form matching `form_css` by clicking its first submit button (a
    /// `<button>` without a type counts), or, when it has none, with `requestSubmit()`,
    /// and waits (up to [`WAIT_TIMEOUT`]) for the page it leaves to be gone, so the
    /// next command reads the page the submission led to, not the old one.
    pub async fn submit(&self, form_css: &str) {
        let old_page = self.find("html").await;
        self.submit_form(form_css).await;
        let deadline = Instant::now() + WAIT_TIMEOUT;
        // An element of a page that was navigated away from is "stale": its commands fail.
        while old_page.tag_name().await.is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn submit_form(&self, form_css: &str) {
        let form = self.find(form_css).await;
        let buttons = form
            .find_all(Locator::Css(
                "button:not([type]), button[type=submit], input[type=submit], input[type=image]",
            ))
            .await;
        let buttons = self
            .check(&format!("submit buttons of {form_css:?}"), buttons)
            .await;
        if let Some(button) = buttons.into_iter().next() {
            let result = button.click().await;
            self.check(&format!("submit {form_css:?}"), result).await
        } else {
            let result = self
                .client
                .execute(
                    "arguments[0].requestSubmit()",
                    vec![serde_json::to_value(&form).expect("element as JSON")],
                )
                .await;
            self.check(&format!("submit {form_css:?}"), result).await;
        }
    }

    /// The rendered text of the element matching `css` (as a user sees it: hidden text
    /// is left out, whitespace collapsed).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let result = element.text().await;
        self.check(&format!("text of {css:?}"), result).await
    }

    /// The attribute `name` of the element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        let result = element.attr(name).await;
        self.check(&format!("attribute {name} of {css:?}"), result)
            .await
    }

    /// The URL of the page shown.
    pub async fn current_url(&self) -> String {
        let result = self.client.current_url().await;
        self.check("current_url", result).await.to_string()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        let result = self.client.title().await;
        self.check("title", result).await
    }

    /// The page's DOM serialised as HTML (as it is now, after scripts, not as served).
    pub async fn page_source(&self) -> String {
        let result = self.client.source().await;
        self.check("page_source", result).await
    }

    /// Runs `js` as the body of a function in the page and returns what it `return`s
    /// (`null` without a return).
    pub async fn execute(&self, js: &str) -> Value {
        let result = self.client.execute(js, Vec::new()).await;
        self.check(&format!("execute {js:?}"), result).await
    }

    /// Saves a PNG of the viewport as `<name>.png` in the screenshots directory
    /// (`$POSTDESK_SCREENSHOTS`, else `<workspace>/target/screenshots/`) and returns its
    /// path. Characters other than ASCII letters, digits, `-`, `_` and `.` in `name`
    /// become `_`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let result = self.client.screenshot().await;
        let png = self.check(&format!("screenshot {name:?}"), result).await;
        let dir = screenshots_dir();
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create the screenshots directory {dir:?}: {e}"));
        let mut file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if file.is_empty() || file.starts_with('.') {
            file.insert_str(0, "screenshot");
        }
        if !file.ends_with(".png") {
            file.push_str(".png");
        }
        let path = dir.join(file);
        fs::write(&path, png).unwrap_or_else(|e| panic!("write the screenshot {path:?}: {e}"));
        path
    }

    /// The text of the JavaScript dialog (`alert`, `confirm`, `prompt`, `beforeunload`)
    /// open in the page, if one is.
    pub async fn dialog(&self) -> Option<String> {
        match self.client.get_alert_text().await {
            Ok(text) => Some(text),
            Err(e) if e.is_no_such_alert() => None,
            Err(e) => panic!("ask chromedriver for an open dialog: {e}"),
        }
    }

    /// Dismisses the open JavaScript dialog (Cancel), if one is, and returns its text.
    pub async fn dismiss_dialog(&self) -> Option<String> {
        let text = self.dialog().await?;
        if let Err(e) = self.client.dismiss_alert().await {
            panic!("dismiss the dialog {text:?}: {e}");
        }
        Some(text)
    }

    /// Panics when a JavaScript dialog is open.
    pub async fn assert_no_dialog(&self) {
        if let Some(text) = self.dialog().await {
            panic!("{}", dialog_message(&text));
        }
    }

    /// What shows that script from the content ran, if anything does: a JavaScript
    /// dialog is open, `window.__pwned` is defined in the page or in any frame in it
    /// (frames are entered through WebDriver, so sandboxed, cross-origin ones are checked
    /// too), or the page opened another window.
    pub async fn pwned(&self) -> Option<String> {
        if let Some(text) = self.dialog().await {
            return Some(dialog_message(&text));
        }
        let windows = self.client.windows().await;
        let windows = self.check("list windows", windows).await;
        if windows.len() > 1 {
            return Some(format!(
                "the page opened {} more window(s) (window.open ran)",
                windows.len() - 1
            ));
        }
        let mut path = Vec::new();
        let found = self.pwned_in_frames(&mut path, 0).await;
        // Back at the top whatever happened.
        let _ = driver_request(
            self.driver.port,
            "POST",
            &format!("/session/{}/frame", self.session_id),
            Some(&json!({"id": null})),
        );
        let (frames, value) = found?;
        let place = if frames.is_empty() {
            "the page".to_string()
        } else {
            format!("frame {frames} of the page")
        };
        Some(format!(
            "window.__pwned is {value} in {place} {}: script from the content ran",
            self.current_url().await
        ))
    }

    /// The check for hostile content: panics with what [`Browser::pwned`] found.
    pub async fn assert_not_pwned(&self) {
        if let Some(what) = self.pwned().await {
            panic!("{what}");
        }
    }

    /// Depth-first through the frames below the current one: the first frame (as an
    /// index path, `0/1`) whose `window.__pwned` is defined, and its value.
    fn pwned_in_frames<'a>(&'a self, path: &'a mut Vec<usize>, depth: usize) -> FrameSearch<'a> {
        Box::pin(async move {
            let script = "return typeof window.__pwned === 'undefined' \
                          ? null : String(window.__pwned)";
            let value = self.client.execute(script, Vec::new()).await;
            let value = self.check("read window.__pwned", value).await;
            if !value.is_null() {
                let frames = path
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                return Some((frames, value.to_string()));
            }
            if depth >= 4 {
                return None;
            }
            let frames = self
                .client
                .find_all(Locator::Css("iframe, frame"))
                .await
                .unwrap_or_default();
            for index in 0..frames.len() {
                let Ok(index16) = u16::try_from(index) else {
                    break;
                };
                if self.client.enter_frame(index16).await.is_err() {
                    continue;
                }
                path.push(index);
                let found = self.pwned_in_frames(path, depth + 1).await;
                path.pop();
                let back = self.client.enter_parent_frame().await;
                self.check("leave a frame", back).await;
                if found.is_some() {
                    return found;
                }
            }
            None
        })
    }

    /// The browser log entries since the last call: console messages, uncaught errors,
    /// failed loads, Content-Security-Policy violations.
    pub async fn console_log(&self) -> Vec<LogEntry> {
        let path = format!("/session/{}/se/log", self.session_id);
        let answer = driver_request(
            self.driver.port,
            "POST",
            &path,
            Some(&json!({"type": "browser"})),
        )
        .unwrap_or_else(|e| panic!("read the browser log: {e}"));
        answer["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| LogEntry {
                        level: entry["level"].as_str().unwrap_or_default().to_string(),
                        message: entry["message"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The messages of the `SEVERE` browser log entries since the last call to this or
    /// [`Browser::console_log`].
    pub async fn console_errors(&self) -> Vec<String> {
        self.console_log()
            .await
            .into_iter()
            .filter(|entry| entry.level == "SEVERE")
            .map(|entry| entry.message)
            .collect()
    }

    /// Ends the session (Chromium quits) and stops chromedriver. Dropping the [`Browser`]
    /// does the same, less gracefully.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// The value of `result`, or a panic naming `what`; a panic caused by an open
    /// JavaScript dialog says so.
    async fn check<T>(&self, what: &str, result: Result<T, CmdError>) -> T {
        match result {
            Ok(value) => value,
            Err(e) => {
                let text = self.client.get_alert_text().await.ok();
                match text {
                    Some(text) => panic!("{what}: {}", dialog_message(&text)),
                    None => panic!("{what}: {e}"),
                }
            }
        }
    }
}

fn dialog_message(text: &str) -> String {
    format!(
        "a JavaScript dialog is open ({text:?}): script in the page called \
         alert/confirm/prompt"
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium. fantoccini would send the
        // same request from its own task, which may never run again once the runtime is
        // going away (a panicking test), so it is sent here directly.
        if self.driver.leader.is_some() {
            let _ = driver_request(
                self.driver.port,
                "DELETE",
                &format!("/session/{}", self.session_id),
                None,
            );
        }
        self.driver.stop();
    }
}

/// Runs the watchdog shell with `"$0" "$@"`: the command, until stdin reaches EOF (this
/// process ended), then kills its process group.
const WATCHDOG: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill -KILL 0; } &
reader=$!
exec 3<&-
wait "$pid"
status=$?
kill -KILL "$reader" 2>/dev/null
exit "$status"
"#;

impl Driver {
    async fn spawn(&mut self, chromedriver: &Path) -> Result<(), String> {
        let port = crate::free_port();
        let log_path = self.dir.path().join("chromedriver.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("open {log_path:?}: {e}"))?;
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .env("HOME", self.dir.path())
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("spawn {chromedriver:?}: {e}"))?;
        self.leader = Some(child);
        self.port = port;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(answer) = driver_request(port, "GET", "/status", None)
                && answer["value"]["ready"] == Value::Bool(true)
            {
                return Ok(());
            }
            let exited = self
                .leader
                .as_mut()
                .and_then(|leader| leader.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.leader = None;
                return Err(format!(
                    "chromedriver on port {port} exited ({status}): {}",
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "chromedriver on port {port} did not answer within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILLs chromedriver's process group, then whatever still runs with the profile
    /// directory on its command line (Chromium's processes), until none is left.
    fn stop(&mut self) {
        if let Some(mut leader) = self.leader.take() {
            let pgid = leader.id() as libc::pid_t;
            // The group id stays reserved while any member lives, even after the leader
            // is reaped, so this cannot hit an unrelated process.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
            let _ = leader.wait();
        }
        let marker = self.dir.path().as_os_str().as_encoded_bytes().to_vec();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_mentioning(&marker);
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Live (non-zombie) processes whose command line contains `marker` (our temporary
/// directory's path, unique to this [`Browser`]).
fn processes_mentioning(marker: &[u8]) -> Vec<libc::pid_t> {
    let mut pids = Vec::new();
    for (pid, dir) in crate::processes() {
        let Ok(cmdline) = fs::read(dir.join("cmdline")) else {
            continue;
        };
        if !cmdline.windows(marker.len()).any(|w| w == marker) {
            continue;
        }
        let zombie = fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|stat| {
                let after = stat.rsplit_once(')')?.1;
                after.split_whitespace().next().map(|state| state == "Z")
            })
            .unwrap_or(true);
        if !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// One HTTP/1.1 request to chromedriver on loopback, blocking, with short timeouts:
/// for what fantoccini does not offer (the browser log) and for ending the session from
/// `Drop`, where nothing async can run.
fn driver_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))
        .map_err(|e| format!("connect to chromedriver: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to chromedriver: {e}"))?;
    // chromedriver keeps the connection open whatever the request says: read the head,
    // then exactly Content-Length bytes.
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream
            .read(&mut buffer)
            .map_err(|e| format!("read from chromedriver: {e}"))?;
        if n == 0 {
            return Err(format!(
                "chromedriver closed the connection: {:?}",
                String::from_utf8_lossy(&response)
            ));
        }
        response.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .ok_or_else(|| format!("no Content-Length from chromedriver: {head:?}"))?;
    while response.len() < head_end + length {
        let n = stream
            .read(&mut buffer)
            .map_err(|e| format!("read from chromedriver: {e}"))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..n]);
    }
    let body = &response[head_end..response.len().min(head_end + length)];
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{status}: not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{status}: {value}"));
    }
    Ok(value)
}

fn find_chromedriver() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver not found on PATH or in /usr/bin: the browser tests need \
                 Debian's chromium-driver (apt-get install -y chromium chromium-driver)"
            )
        })
}

/// Where [`Browser::screenshot`] writes: `$POSTDESK_SCREENSHOTS`, else
/// `<workspace>/target/screenshots`.
pub fn screenshots_dir() -> PathBuf {
    match std::env::var_os("POSTDESK_SCREENSHOTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("target")
            .join("screenshots"),
    }
}
