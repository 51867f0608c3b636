//! The harness against the real server, spoken to in raw IMAP over TcpStream (and
//! rustls for the TLS ports, verified as the IMAP source verifies: webpki, ring).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk_testkit::dovecot::{Dovecot, DovecotOptions, Layout, TLS_SERVER_NAME};

/// A minimal IMAP client: sends tagged commands, collects lines up to the tagged reply.
struct Imap<S: Read + Write> {
    stream: BufReader<S>,
    tag: u32,
    greeting: String,
}

impl Imap<TcpStream> {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Imap::over(stream)
    }
}

impl<S: Read + Write> Imap<S> {
    fn over(stream: S) -> Self {
        let mut imap = Imap {
            stream: BufReader::new(stream),
            tag: 0,
            greeting: String::new(),
        };
        imap.greeting = imap.line();
        assert!(
            imap.greeting.starts_with("* OK"),
            "greeting {:?}",
            imap.greeting
        );
        imap
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("read a line");
        line
    }

    /// Sends a command; returns (untagged lines, tagged completion line).
    fn command(&mut self, command: &str) -> (Vec<String>, String) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .expect("send");
        stream.flush().expect("flush");
        let mut untagged = Vec::new();
        loop {
            let line = self.line();
            assert!(
                !line.is_empty(),
                "connection closed during {command:?}: {untagged:?}"
            );
            if let Some(done) = line.strip_prefix(&format!("{tag} ")) {
                return (untagged, done.trim_end().to_string());
            }
            untagged.push(line.trim_end().to_string());
        }
    }

    fn ok(&mut self, command: &str) -> Vec<String> {
        let (untagged, done) = self.command(command);
        assert!(
            done.starts_with("OK"),
            "{command:?} -> {done:?} after {untagged:?}"
        );
        untagged
    }

    fn login(&mut self, user: &str, password: &str) -> String {
        let (_, done) = self.command(&format!("LOGIN {user} {password}"));
        done
    }
}

fn exists(untagged: &[String]) -> Option<usize> {
    untagged.iter().rev().find_map(|line| {
        line.strip_prefix("* ")?
            .strip_suffix(" EXISTS")?
            .parse()
            .ok()
    })
}

fn uidvalidity(untagged: &[String]) -> u32 {
    untagged
        .iter()
        .find_map(|line| {
            let rest = line.split("[UIDVALIDITY ").nth(1)?;
            rest.split(']').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {untagged:?}"))
}

fn mail(subject: &str) -> Vec<u8> {
    format!("From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n\r\nbody of {subject}\r\n").into_bytes()
}

fn alice() -> DovecotOptions {
    DovecotOptions::default().user("alice", "secret")
}

#[test]
fn starts_fast_and_logs_in() {
    let started = Instant::now();
    let server = Dovecot::start(alice().user("bob", "p:w d\"x\\"));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "start took {took:?}");
    assert!(server.imaps_port().is_none() && server.ca_cert_pem_path().is_none());

    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.greeting.contains("AUTH=PLAIN"), "{}", imap.greeting);
    let done = imap.login("alice", "secret");
    assert!(done.starts_with("OK"), "{done}");
    let namespace = imap.ok("NAMESPACE");
    assert_eq!(namespace[0], r#"* NAMESPACE (("" ".")) NIL NIL"#);
    imap.ok("LOGOUT");

    // A password with ':', a space, a quote and a backslash, as a quoted string.
    let mut imap = Imap::connect(server.imap_addr());
    let done = imap.login("bob", r#""p:w d\"x\\""#);
    assert!(done.starts_with("OK"), "{done}");
}

#[test]
fn wrong_password_is_refused_fast_every_time() {
    let server = Dovecot::start(alice());
    let mut imap = Imap::connect(server.imap_addr());
    // Anvil's auth penalty would delay the second and later attempts by 2 s, 4 s, ...
    for attempt in 0..3 {
        let started = Instant::now();
        let done = imap.login("alice", "wrong");
        let took = started.elapsed();
        assert!(done.starts_with("NO"), "attempt {attempt}: {done}");
        assert!(
            took < Duration::from_secs(1),
            "attempt {attempt} took {took:?}"
        );
    }
    let mut imap = Imap::connect(server.imap_addr());
    let started = Instant::now();
    let done = imap.login("mallory", "secret");
    assert!(done.starts_with("NO"), "{done}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let done = imap.login("alice", "secret");
    assert!(done.starts_with("OK"), "{done}");
}

#[test]
fn appended_mail_is_selected_in_order_and_counted() {
    let server = Dovecot::start(alice());
    server.append("alice", "INBOX", &mail("first"));
    assert_eq!(server.folder_count("alice", "INBOX"), 1);

    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let select = imap.ok("SELECT INBOX");
    assert_eq!(exists(&select), Some(1), "{select:?}");

    // Mails appended while selected show up at the next NOOP, numbered in order.
    for subject in ["second", "third", "fourth"] {
        server.append("alice", "INBOX", &mail(subject));
    }
    let noop = imap.ok("NOOP");
    assert_eq!(exists(&noop), Some(4), "{noop:?}");
    let fetch = imap.ok("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let subjects: Vec<&String> = fetch.iter().filter(|l| l.starts_with("Subject:")).collect();
    assert_eq!(
        subjects,
        [
            "Subject: first",
            "Subject: second",
            "Subject: third",
            "Subject: fourth"
        ]
    );

    // The store as the harness sees it: UIDs once Dovecot synced, bytes unchanged.
    let mails = server.folder_mails("alice", "INBOX");
    assert_eq!(mails.len(), 4);
    assert_eq!(
        mails.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3), Some(4)]
    );
    assert_eq!(mails[0].raw, mail("first"));
    assert!(!mails[0].seen());
    assert_eq!(server.folder_messages("alice", "INBOX")[3], mail("fourth"));

    // Flags and expunges done over IMAP are visible in the store.
    imap.ok("UID STORE 1 +FLAGS (\\Seen)");
    imap.ok("UID STORE 2 +FLAGS (\\Deleted)");
    let mails = server.folder_mails("alice", "INBOX");
    assert!(mails[0].seen() && !mails[1].seen() && mails[1].deleted());
    imap.ok("EXPUNGE");
    assert_eq!(server.folder_count("alice", "INBOX"), 3);
}

#[test]
fn folders_map_to_maildir_plus_plus() {
    let server = Dovecot::start(alice());
    server.create_folder("alice", "Processed");
    server.append("alice", "Processed.2024", &mail("old"));
    server.append("alice", "Grüße & Co", &mail("umlaut"));
    let maildir = server.maildir("alice");
    assert!(maildir.join(".Processed/cur").is_dir());
    assert!(maildir.join(".Processed.2024/new").is_dir());
    assert!(maildir.join(".Gr&APwA3w-e &- Co/new").is_dir());
    assert_eq!(server.folder_count("alice", "Processed"), 0);
    assert_eq!(server.folder_count("alice", "Nonexistent"), 0);

    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let list = imap.ok("LIST \"\" *");
    for name in [
        "INBOX",
        "Processed",
        "Processed.2024",
        "\"Gr&APwA3w-e &- Co\"",
    ] {
        assert!(
            list.iter().any(|l| l.ends_with(&format!("\".\" {name}"))),
            "{name} not in {list:?}"
        );
    }
    let status = imap.ok("STATUS Processed.2024 (MESSAGES UIDNEXT)");
    assert_eq!(status, ["* STATUS Processed.2024 (MESSAGES 1 UIDNEXT 2)"]);
    server.append("alice", "Processed.2024", &mail("newer"));
    let status = imap.ok("STATUS Processed.2024 (MESSAGES)");
    assert_eq!(status, ["* STATUS Processed.2024 (MESSAGES 2)"]);
    let select = imap.ok("SELECT Processed.2024");
    assert_eq!(exists(&select), Some(2));
    server.create_folder("alice", "Later");
    let list = imap.ok("LIST \"\" Later");
    assert_eq!(list, [r#"* LIST (\HasNoChildren) "." Later"#]);
    // A folder created over IMAP is where the harness looks for it.
    imap.ok("CREATE Done");
    imap.ok("UID MOVE 1 Done");
    assert_eq!(server.folder_count("alice", "Done"), 1);
    assert_eq!(server.folder_count("alice", "Processed.2024"), 1);
    assert_eq!(server.folder_messages("alice", "Done"), [mail("old")]);
}

#[test]
fn fs_layout_uses_slash() {
    let server = Dovecot::start(alice().layout(Layout::Fs));
    server.append("alice", "Processed/2024", &mail("old"));
    assert!(server.maildir("alice").join("Processed/2024/new").is_dir());
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    assert_eq!(imap.ok("NAMESPACE")[0], r#"* NAMESPACE (("" "/")) NIL NIL"#);
    let select = imap.ok("SELECT Processed/2024");
    assert_eq!(exists(&select), Some(1));
    imap.ok("CREATE Archive/x.y");
    imap.ok("UID COPY 1 Archive/x.y");
    assert_eq!(server.folder_count("alice", "Archive/x.y"), 1);
    // Folders the harness creates during a session are listed at once.
    server.create_folder("alice", "Later/Sub");
    server.append("alice", "Other", &mail("other"));
    let list = imap.ok("LIST \"\" *");
    for name in ["Later", "Later/Sub", "Other"] {
        assert!(
            list.iter().any(|l| l.ends_with(&format!("\"/\" {name}"))),
            "{name} not in {list:?}"
        );
    }
    assert_eq!(exists(&imap.ok("SELECT Other")), Some(1));
}

#[test]
fn move_capability_can_be_withheld() {
    let with = Dovecot::start(alice());
    let mut imap = Imap::connect(with.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let caps = imap.ok("CAPABILITY");
    assert!(caps[0].split(' ').any(|c| c == "MOVE"), "{caps:?}");

    let without = Dovecot::start(alice().without_move());
    let mut imap = Imap::connect(without.imap_addr());
    assert!(!imap.greeting.contains(" MOVE"), "{}", imap.greeting);
    let done = imap.login("alice", "secret");
    assert!(done.starts_with("OK") && !done.contains(" MOVE"), "{done}");
    let caps = imap.ok("CAPABILITY");
    let caps: Vec<&str> = caps[0].split(' ').collect();
    assert!(!caps.contains(&"MOVE"), "{caps:?}");
    for needed in ["IMAP4rev1", "IDLE", "UIDPLUS", "LITERAL+"] {
        assert!(caps.contains(&needed), "{needed} missing: {caps:?}");
    }
    // Not advertised, but still done when asked.
    without.append("alice", "INBOX", &mail("moved anyway"));
    imap.ok("SELECT INBOX");
    imap.ok("CREATE Done");
    imap.ok("UID MOVE 1 Done");
    assert_eq!(without.folder_count("alice", "Done"), 1);
}

#[test]
fn uidvalidity_reset_renumbers() {
    let server = Dovecot::start(alice());
    server.append("alice", "Processed", &mail("one"));
    server.append("alice", "Processed", &mail("two"));
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let select = imap.ok("SELECT Processed");
    let before = uidvalidity(&select);
    assert_eq!(server.uidvalidity("alice", "Processed"), Some(before));
    imap.ok("UID STORE 1 +FLAGS (\\Deleted)");
    imap.ok("EXPUNGE");
    server.append("alice", "Processed", &mail("three"));
    imap.ok("NOOP");
    let uids = server.folder_mails("alice", "Processed");
    assert_eq!(
        uids.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [Some(2), Some(3)]
    );

    server.reset_uidvalidity("alice", "Processed");
    assert_eq!(server.uidvalidity("alice", "Processed"), None);
    // The session that has it selected notices at its next command and is sent away.
    let stream = imap.stream.get_mut();
    stream.write_all(b"n NOOP\r\n").expect("send");
    let bye = imap.line();
    assert!(bye.starts_with("* BYE"), "{bye:?}");

    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let status = imap.ok("STATUS Processed (UIDVALIDITY MESSAGES)");
    let after = server.uidvalidity("alice", "Processed").expect("rebuilt");
    assert!(after > before, "{before} -> {after}");
    assert!(
        status[0].contains(&format!("UIDVALIDITY {after}")),
        "{status:?}"
    );
    let select = imap.ok("SELECT Processed");
    assert_eq!(uidvalidity(&select), after);
    let fetch = imap.ok("UID FETCH 1:* (UID)");
    assert_eq!(fetch, ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"]);
}

#[test]
fn idle_sees_appended_mail() {
    let server = Dovecot::start(alice());
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    imap.ok("SELECT INBOX");
    let stream = imap.stream.get_mut();
    stream.write_all(b"i IDLE\r\n").expect("send");
    assert!(imap.line().starts_with("+ "));
    let started = Instant::now();
    server.append("alice", "INBOX", &mail("pushed"));
    let line = imap.line();
    assert_eq!(line.trim_end(), "* 1 EXISTS");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "IDLE saw the mail after {took:?}"
    );
    imap.stream.get_mut().write_all(b"DONE\r\n").expect("send");
    loop {
        let line = imap.line();
        if line.starts_with("i ") {
            assert!(line.starts_with("i OK"), "{line}");
            break;
        }
    }
}

#[test]
fn restart_keeps_ports_and_mail_and_says_bye() {
    let mut server = Dovecot::start(alice());
    let port = server.imap_port();
    server.append("alice", "INBOX", &mail("kept"));
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    imap.ok("SELECT INBOX");

    let started = Instant::now();
    server.stop();
    let stop_took = started.elapsed();
    assert!(!server.is_running());
    assert!(
        stop_took < Duration::from_millis(1500),
        "stop took {stop_took:?}"
    );
    // Dovecot's master alone would take over a second and leave the session to be
    // killed without a word: the BYE shows the harness ended it properly.
    let bye = imap.line();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert!(TcpStream::connect(server.imap_addr()).is_err());
    server.append("alice", "INBOX", &mail("while down"));
    server.stop(); // a no-op when stopped

    let started = Instant::now();
    server.restart();
    let restart_took = started.elapsed();
    assert!(
        restart_took < Duration::from_secs(3),
        "restart took {restart_took:?}"
    );
    assert_eq!(server.imap_port(), port);
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
    assert_eq!(exists(&imap.ok("SELECT INBOX")), Some(2));

    // Restart while running works too.
    server.restart();
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.login("alice", "secret").starts_with("OK"));
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let server = Dovecot::start(alice());
    let addr = server.imap_addr();
    let dir = server.dir().to_path_buf();
    let _client = Imap::connect(addr);
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
    assert!(!dir.exists());
}

/// The server half of `a_killed_test_process_leaves_no_server_behind`, run in a child
/// process; does nothing in a normal run.
#[test]
fn watchdog_child() {
    if std::env::var_os("TESTKIT_WATCHDOG_CHILD").is_none() {
        return;
    }
    let server = Dovecot::start(alice());
    println!("PORT {} {}", server.imap_port(), server.dir().display());
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(Duration::from_secs(60));
    drop(server);
}

#[test]
fn a_killed_test_process_leaves_no_server_behind() {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "watchdog_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TESTKIT_WATCHDOG_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (port, dir) = loop {
        let line = lines.next().expect("a PORT line").expect("read");
        // libtest prints "test watchdog_child ... " before it on the same line.
        if let Some((_, rest)) = line.split_once("PORT ") {
            let (port, dir) = rest.trim().split_once(' ').expect("port and dir");
            break (
                port.parse::<u16>().expect("a port"),
                std::path::PathBuf::from(dir),
            );
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(TcpStream::connect(addr).is_ok());
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let killed = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "the server outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its directory is left behind (nothing ran Drop); clean up after the child.
    assert!(dir.starts_with("/tmp") && dir.join("dovecot.conf").is_file());
    std::fs::remove_dir_all(&dir).expect("remove the child's directory");
}

#[test]
fn servers_run_side_by_side() {
    let servers: Vec<Dovecot> = (0..3).map(|_| Dovecot::start(alice())).collect();
    servers[1].append("alice", "INBOX", &mail("only on one"));
    for (i, server) in servers.iter().enumerate() {
        let mut imap = Imap::connect(server.imap_addr());
        assert!(imap.login("alice", "secret").starts_with("OK"));
        assert_eq!(exists(&imap.ok("SELECT INBOX")), Some(usize::from(i == 1)));
    }
}

#[test]
fn start_failures_panic_with_the_log() {
    let bad_user = std::panic::catch_unwind(|| {
        Dovecot::start(DovecotOptions::default().user("bad name", "x"));
    });
    assert!(bad_user.is_err());

    // A restart whose port was taken meanwhile fails, and says why.
    let mut server = Dovecot::start(alice());
    server.stop();
    let _squatter = std::net::TcpListener::bind(server.imap_addr()).expect("take the port");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.restart()));
    let message = failed.expect_err("restart must fail");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("Address already in use"), "{message}");
    assert!(!server.is_running());
}

// --- TLS ---

fn tls_config(server: &Dovecot) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ca = server.ca_cert_pem_path().expect("a CA when tls");
    assert!(ca.is_file());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).expect("read the CA") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn tls_over(
    config: Arc<rustls::ClientConfig>,
    name: &str,
    tcp: TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("a server name");
    let connection = rustls::ClientConnection::new(config, name).expect("a TLS client");
    rustls::StreamOwned::new(connection, tcp)
}

#[test]
fn tls_implicit_and_starttls_verify_against_the_run_ca() {
    let server = Dovecot::start(alice().tls());
    let config = tls_config(&server);
    let imaps = server.imaps_addr().expect("an imaps port");
    assert_ne!(imaps.port(), server.imap_port());

    // Implicit TLS, by host name and by IP.
    for name in [TLS_SERVER_NAME, "127.0.0.1"] {
        let tcp = TcpStream::connect(imaps).expect("connect imaps");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut imap = Imap::over(tls_over(config.clone(), name, tcp));
        assert!(imap.login("alice", "secret").starts_with("OK"));
        imap.ok("SELECT INBOX");
    }

    // STARTTLS on the plaintext port.
    let mut plain = Imap::connect(server.imap_addr());
    let caps = plain.ok("CAPABILITY");
    assert!(caps[0].contains("STARTTLS"), "{caps:?}");
    plain.ok("STARTTLS");
    let tcp = plain.stream.into_inner();
    let stream = tls_over(config.clone(), TLS_SERVER_NAME, tcp);
    let mut imap = Imap {
        stream: BufReader::new(stream),
        tag: 10,
        greeting: String::new(),
    };
    assert!(imap.login("alice", "secret").starts_with("OK"));

    // A name the certificate is not for is refused.
    let tcp = TcpStream::connect(imaps).expect("connect imaps");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = tls_over(config, "example.com", tcp);
    let mut buf = [0; 64];
    let err = stream.read(&mut buf).expect_err("the handshake must fail");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Another run's CA is another CA.
    let mut other = Dovecot::start(alice().tls());
    let tcp = TcpStream::connect(imaps).expect("connect imaps");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = tls_over(tls_config(&other), TLS_SERVER_NAME, tcp);
    assert!(stream.read(&mut buf).is_err());

    // Stopping with a TLS session open is as quick, and the session is told.
    let tcp = TcpStream::connect(other.imaps_addr().expect("imaps")).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut imap = Imap::over(tls_over(tls_config(&other), TLS_SERVER_NAME, tcp));
    assert!(imap.login("alice", "secret").starts_with("OK"));
    let started = Instant::now();
    other.stop();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(imap.line().starts_with("* BYE"));
    other.restart();
    assert!(TcpStream::connect(other.imaps_addr().expect("imaps")).is_ok());
}
