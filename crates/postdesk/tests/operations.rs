//! `postdesk serve` as operators run it: under systemd's notify protocol (a real unix
//! datagram socket as `NOTIFY_SOCKET`), scraped by Prometheus (its `/metrics` parsed by
//! a Prometheus text-format parser while a real Dovecot feeds it mail), and logging
//! JSON for a log shipper.

mod common;

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
use postdesk_testkit::free_port;

/// `postdesk serve` with extra arguments and environment; killed when dropped (its
/// log shown if the test failed).
struct Served {
    child: Option<Child>,
    log: PathBuf,
}

impl Served {
    fn start(desk: &Desk, args: &[&str], env: &[(&str, &str)]) -> (Served, u16) {
        let port = free_port();
        let log = desk.path("serve.log");
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_postdesk"));
        command
            .arg("--config")
            .arg(desk.config())
            .args(args)
            .args(["serve", "--listen", &listen])
            .env("POSTDESK_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let served = Served {
            child: Some(command.spawn().unwrap()),
            log,
        };
        (served, port)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, then the exit code (within 30 s).
    fn terminate(&mut self) -> i32 {
        // SAFETY: a signal to the child this test started.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("postdesk serve's log:\n{}", self.log());
        }
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listened on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET on loopback: (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    common::http_exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// A socket where systemd would listen, and its path for `NOTIFY_SOCKET`.
fn notify_socket(desk: &Desk) -> (UnixDatagram, PathBuf) {
    let path = desk.path("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (socket, path)
}

/// The next datagram systemd would have been sent (within 20 s).
fn next_notification(socket: &UnixDatagram) -> String {
    let mut buffer = [0; 4096];
    let n = socket
        .recv(&mut buffer)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[test]
fn serve_tells_systemd_it_is_ready_pings_the_watchdog_and_drains_on_sigterm() {
    let desk = Desk::new("");
    let (socket, socket_path) = notify_socket(&desk);
    let (mut served, port) = Served::start(
        &desk,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );

    let ready = next_notification(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS=serving 0 mailbox(es)"), "{ready:?}");
    // Ready means ready: the web listener answers at once, the schema is current.
    let (status, body) = http_get(port, "/readyz");
    assert!(status.contains(" 200 "), "{status} {body}");

    // Pings at half of the 200 ms systemd asked for: several within a second.
    let started = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let message = next_notification(&socket);
        assert_eq!(message, "WATCHDOG=1\n");
        pings += 1;
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let code = served.terminate();
    let mut rest = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0; 4096];
    while let Ok(n) = socket.recv(&mut buffer) {
        rest.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert!(
        rest.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "{rest:?}"
    );
    assert_eq!(code, 0, "SIGTERM drains and exits 0:\n{}", served.log());
}

#[test]
fn serve_without_a_watchdog_sends_no_pings() {
    let desk = Desk::new("");
    let (socket, socket_path) = notify_socket(&desk);
    let (mut served, _) = Served::start(
        &desk,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    assert!(next_notification(&socket).contains("READY=1"));
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buffer = [0; 4096];
    assert!(socket.recv(&mut buffer).is_err(), "no WATCHDOG=1 unasked");
    assert_eq!(served.terminate(), 0);
}

/// One scrape, parsed by a Prometheus text-format parser.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, body) = http_get(port, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the sample `metric` with every label of `labels`, if there is one.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric} is {other:?}"),
        })
}

const IMAP_PASSWORD: &str = "s3cret-imap-Passw0rd";

#[test]
fn metrics_count_the_mails_serve_takes_in_and_logs_are_json_without_secrets() {
    let server = Dovecot::start(DovecotOptions::default().user("support", IMAP_PASSWORD));
    let metrics_port = free_port();
    let desk = Desk::new(&format!(
        "[[helpdesk.mailbox]]\nname = \"inbox\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         user = \"support\"\npassword = \"{IMAP_PASSWORD}\"\ncreate_folders = true\ninterval_secs = 1\n\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
        server.imap_port()
    ));
    let (mut served, web_port) = Served::start(&desk, &["--log-format", "json"], &[]);
    wait_for_port(metrics_port);
    wait_for_port(web_port);
    let mails = |s: &prometheus_parse::Scrape, outcome: &str, class: &str| {
        value(
            s,
            "postdesk_mails_total",
            &[
                ("helpdesk", "Support"),
                ("mailbox", "inbox"),
                ("outcome", outcome),
                ("classification", class),
            ],
        )
        .unwrap_or(0.0)
    };
    let before = scrape(metrics_port);
    assert_eq!(mails(&before, "created", "normal"), 0.0);

    for n in 0..4 {
        let text = mail(
            &[
                ("From", &format!("Customer {n} <c{n}@example.org>")),
                ("Subject", &format!("Question {n}")),
                ("Message-ID", &format!("<q{n}@example.org>")),
            ],
            "Hello, a question.",
        );
        server.append("support", "INBOX", text.replace('\n', "\r\n").as_bytes());
    }
    let auto_reply = mail(
        &[
            ("From", "Away <away@example.org>"),
            ("Subject", "Out of office"),
            ("Auto-Submitted", "auto-replied"),
            ("Message-ID", "<away@example.org>"),
        ],
        "I am away.",
    );
    server.append(
        "support",
        "INBOX",
        auto_reply.replace('\n', "\r\n").as_bytes(),
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let s = scrape(metrics_port);
        let total: f64 = s
            .samples
            .iter()
            .filter(|x| x.metric == "postdesk_mails_total")
            .filter_map(|x| match x.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => {
                    Some(v)
                }
                _ => None,
            })
            .sum();
        // The scan's success is recorded after its last batch is counted: wait for both.
        let scanned = value(
            &s,
            "postdesk_mailbox_last_success_age_seconds",
            &[("helpdesk", "Support"), ("mailbox", "inbox")],
        )
        .is_some();
        if total >= 5.0 && scanned {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of 5 mails counted, scan recorded: {scanned}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The counters moved by exactly the mails imported, by outcome and classification.
    assert_eq!(mails(&after, "created", "normal"), 4.0);
    assert_eq!(mails(&after, "ignored", "auto-reply"), 1.0);
    assert_eq!(value(&after, "postdesk_failed_queue_mails", &[]), Some(0.0));
    assert_eq!(value(&after, "postdesk_database_up", &[]), Some(1.0));
    assert!(
        value(&after, "postdesk_outbox_mails", &[("status", "queued")]).is_some(),
        "outbox depth is shown"
    );
    let success_age = value(
        &after,
        "postdesk_mailbox_last_success_age_seconds",
        &[("helpdesk", "Support"), ("mailbox", "inbox")],
    );
    assert!(success_age.is_some_and(|age| age < 60.0), "{success_age:?}");
    assert_eq!(
        value(
            &after,
            "postdesk_mailbox_lag_seconds",
            &[("helpdesk", "Support"), ("mailbox", "inbox")]
        ),
        Some(0.0),
        "nothing waits once the mails are in"
    );

    // Requests are timed by route template, on the web listener.
    for id in [7, 8] {
        http_get(web_port, &format!("/tickets/{id}"));
    }
    assert!(http_get(web_port, "/healthz").0.contains(" 200 "));
    // prometheus-parse cuts label values at a `}`, which route templates have: the
    // `{id}` route is read from the text itself.
    let (_, text) = http_get(metrics_port, "/metrics");
    assert!(
        text.lines().any(|l| l
            == r#"postdesk_http_request_duration_seconds_count{method="GET",route="/tickets/{id}",status="303"} 2"#),
        "{text}"
    );
    let timed = scrape(metrics_port);
    let requests = |route: &str| {
        timed
            .samples
            .iter()
            .filter(|s| s.metric == "postdesk_http_request_duration_seconds")
            .filter(|s| s.labels.get("route") == Some(route))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                other => panic!("{other:?}"),
            })
            .sum::<f64>()
    };
    assert_eq!(requests("/healthz"), 1.0);
    assert!(
        !timed.samples.iter().any(|s| s
            .labels
            .get("route")
            .is_some_and(|r| r.contains('7') || r.contains('8'))),
        "no raw paths as labels"
    );

    assert_eq!(served.terminate(), 0);
    let log = served.log();
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
        assert!(event["timestamp"].is_string(), "{line}");
        messages.push(
            event["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("serving 1 mailbox(es)")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("metrics on http://")),
        "{messages:?}"
    );
    assert!(
        !log.contains(IMAP_PASSWORD),
        "the password is in the log:\n{log}"
    );
}
