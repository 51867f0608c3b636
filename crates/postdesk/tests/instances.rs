//! Several `postdesk serve` instances on one PostgreSQL (issue 15): real processes,
//! a real Dovecot and a real PostgreSQL, killed, paused and restarted.
//!
//! These run only with `POSTDESK_TEST_DATABASE=postgres` (SQLite is one process's
//! database); otherwise each test says it is skipped and passes.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{mail, on_postgres};
use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
use postdesk_testkit::postgres::PostgresServer;

/// Skips the test (with a word on stderr) unless the suite runs on PostgreSQL.
macro_rules! postgres_only {
    () => {
        if !on_postgres() {
            eprintln!("skipped: set POSTDESK_TEST_DATABASE=postgres to run several instances");
            return;
        }
    };
}

fn request(n: usize) -> Vec<u8> {
    mail(
        &[
            ("From", &format!("customer{n}@example.org")),
            ("Subject", &format!("Request {n}")),
            ("Message-ID", &format!("<req-{n}@example.org>")),
        ],
        &format!("Please help with {n}.\n"),
    )
    .replace('\n', "\r\n")
    .into_bytes()
}

/// The Message-ID of a raw mail, as `req-N@example.org`.
fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .map(|v| v.trim().trim_matches(['<', '>']).to_string())
        .unwrap_or_default()
}

/// One config and one database that every instance of a test shares.
struct Cluster {
    dir: tempfile::TempDir,
    server: Server,
    database: String,
}

/// The PostgreSQL of a test: the test binary's, or one of its own that it may stop.
#[derive(Clone, Copy)]
enum Server {
    Shared(&'static PostgresServer),
    Own(&'static std::sync::Mutex<PostgresServer>),
}

impl Server {
    fn read<T>(self, work: impl FnOnce(&PostgresServer) -> T) -> T {
        match self {
            Server::Shared(server) => work(server),
            Server::Own(server) => work(&server.lock().unwrap()),
        }
    }

    /// Stops (`false`) or starts again (`true`) a server of the test's own.
    fn set_running(self, running: bool) {
        let Server::Own(server) = self else {
            panic!("the shared PostgreSQL is never stopped");
        };
        let mut server = server.lock().unwrap();
        if running {
            server.start_again().unwrap();
        } else {
            server.stop();
        }
    }
}

/// The lease settings of a test: `(lease_secs, renew_secs)`.
type Leases = (u64, u64);

impl Cluster {
    /// A config for `server`'s database: the one helpdesk reading `dovecot`'s
    /// `support` mailbox, acknowledging new tickets (suppressed: queued, never sent),
    /// the web UI off unless an instance is given `--listen`.
    fn new(server: Server, dovecot: &Dovecot, leases: Option<Leases>) -> Self {
        Self::with_extra(server, dovecot, leases, "")
    }

    /// [`Cluster::new`] with `extra` at the end of the config (a second mailbox).
    fn with_extra(server: Server, dovecot: &Dovecot, leases: Option<Leases>, extra: &str) -> Self {
        let url = server.read(PostgresServer::fresh_database);
        let database = url.rsplit('/').next().unwrap().to_string();
        let dir = tempfile::tempdir().unwrap();
        let instances = leases
            .map(|(lease, renew)| {
                format!("[instances]\nlease_secs = {lease}\nrenew_secs = {renew}\n")
            })
            .unwrap_or_default();
        let config = format!(
            "data_dir = \"data\"\ndatabase_url = \"{url}\"\n\
             [web]\nenabled = false\n[outgoing]\nenabled = false\n{instances}\
             [[helpdesk]]\nname = \"Support\"\naddresses = [\"support@example.com\"]\n\
             [helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\n\
             [[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             user = \"support\"\npassword = \"secret\"\ncreate_folders = true\ninterval_secs = 5\n{extra}",
            dovecot.imap_port()
        );
        std::fs::write(dir.path().join("postdesk.toml"), config).unwrap();
        let cluster = Self {
            dir,
            server,
            database,
        };
        cluster.run(&["db", "migrate"]);
        cluster
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postdesk.toml")
    }

    /// Runs a command to its end; its stdout (it must succeed).
    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "postdesk {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `postdesk status`, or `None` while it fails (the database away).
    fn status(&self) -> Option<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(self.config())
            .arg("status")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The instance `postdesk status` says reads the (first) mailbox now.
    fn holder(&self) -> Option<String> {
        self.holders()?.into_iter().next().flatten()
    }

    /// Who reads each mailbox, in `status`'s order (`None`: nobody).
    fn holders(&self) -> Option<Vec<Option<String>>> {
        let status = self.status()?;
        Some(
            status
                .lines()
                .filter_map(|l| {
                    let rest = l.trim().strip_prefix("read by ")?;
                    let holder = rest.split(' ').next()?;
                    Some((holder != "no").then(|| holder.to_string()))
                })
                .collect(),
        )
    }

    /// Waits up to `within` for `postdesk status` to name `holder`; how long it took.
    #[track_caller]
    fn wait_for_holder(&self, holder: &str, within: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.holder().as_deref() == Some(holder) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{holder} did not appear as the mailbox's holder within {within:?}; status:\n{}",
            self.status().unwrap_or_default()
        );
    }

    /// One line per row of `sql` on the cluster's database.
    fn psql(&self, sql: &str) -> String {
        self.server
            .read(|server| server.psql(&self.database, sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .trim()
            .to_string()
    }

    /// `postdesk serve` as instance `name` (its log in `<name>-<n>.log`).
    fn spawn(&self, name: &str, args: &[&str]) -> Instance {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("{name}-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(self.config())
            .arg("serve")
            .args(args)
            .current_dir(self.dir.path())
            .env("POSTDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Instance {
            child: Some(child),
            log,
        }
    }
}

/// A running `postdesk serve`.
struct Instance {
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    fn pid(&self) -> libc::pid_t {
        self.child.as_ref().expect("running").id() as libc::pid_t
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            f.read_to_string(&mut text).ok();
        }
        text
    }

    /// Its holder name, as it printed it when it started.
    #[track_caller]
    fn id(&self) -> String {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let log = self.log();
            if let Some(id) = log
                .split(" as instance ")
                .nth(1)
                .and_then(|rest| rest.split(';').next())
            {
                return id.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the instance did not start:\n{}", self.log());
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// SIGKILL, and reaped.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// SIGTERM once it has started (a just-respawned instance may not have reached its
    /// signal handler yet); it must stop on its own, cleanly.
    #[track_caller]
    fn terminate(&mut self) {
        self.id();
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}:\n{}", self.log());
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "SIGTERM did not stop it:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn dovecot() -> Dovecot {
    Dovecot::start(DovecotOptions::default().user("support", "secret"))
}

fn shared_postgres() -> Server {
    Server::Shared(PostgresServer::shared().expect("a PostgreSQL for the tests"))
}

/// A small seeded generator (xorshift64*): the kills of a run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Waits up to `within` for every one of `n` mails to be in Processed.
#[track_caller]
fn wait_until_processed(dovecot: &Dovecot, n: usize, within: Duration, logs: &[&Instance]) {
    let started = Instant::now();
    while started.elapsed() < within {
        if dovecot.folder_count("support", "INBOX") == 0
            && dovecot.folder_count("support", "Processed") >= n
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = logs.iter().map(|i| i.log()).collect();
    panic!(
        "{} of {n} mails processed after {within:?}; logs:\n{}",
        dovecot.folder_count("support", "Processed"),
        logs.join("\n---\n")
    );
}

/// Every mail `1..=n` once in Processed, nowhere else, once in the database, and its
/// acknowledgement queued once.
#[track_caller]
fn assert_each_mail_once(cluster: &Cluster, dovecot: &Dovecot, n: usize) {
    assert_eq!(dovecot.folder_count("support", "INBOX"), 0);
    assert_eq!(dovecot.folder_count("support", "Unprocessed"), 0);
    let processed: Vec<String> = dovecot
        .folder_messages("support", "Processed")
        .iter()
        .map(|raw| message_id(raw))
        .collect();
    let distinct: HashSet<&String> = processed.iter().collect();
    assert_eq!(processed.len(), n, "mails in Processed");
    assert_eq!(distinct.len(), n, "distinct mails in Processed");
    let expected: HashSet<String> = (1..=n).map(|i| format!("req-{i}@example.org")).collect();
    assert!(distinct.iter().all(|id| expected.contains(*id)));
    let counts = format!("{n}|{n}");
    assert_eq!(
        cluster.psql("SELECT count(*), count(DISTINCT message_id) FROM intake"),
        counts,
        "ledger rows, distinct Message-IDs"
    );
    assert_eq!(
        cluster.psql("SELECT count(*), count(DISTINCT title) FROM tickets"),
        counts,
        "tickets, distinct titles"
    );
    assert_eq!(
        cluster.psql(
            "SELECT count(*), count(DISTINCT ticket_id) FROM outbox WHERE kind = 'acknowledgement'"
        ),
        counts,
        "acknowledgements, tickets acknowledged"
    );
}

#[test]
fn two_instances_killed_at_random_take_every_mail_exactly_once() {
    postgres_only!();
    const MAILS: usize = 2000;
    const KILLS: usize = 20;
    let seed = std::env::var("POSTDESK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("seed {seed} (POSTDESK_TEST_SEED={seed} replays these kills)");
    let mut rng = Rng(seed);
    let dovecot = dovecot();
    // Half the mailbox is there from the start, the rest arrives between the kills, so
    // that there is mail in hand at each of them.
    const WAVE: usize = MAILS / 2 / KILLS;
    for n in 1..=MAILS / 2 {
        dovecot.append("support", "INBOX", &request(n));
    }
    let cluster = Cluster::new(shared_postgres(), &dovecot, Some((4, 1)));
    let mut instances = [cluster.spawn("a", &[]), cluster.spawn("b", &[])];
    let mut mid_import = 0;
    for kill in 1..=KILLS {
        let delivered = MAILS / 2 + (kill - 1) * WAVE;
        for n in delivered + 1..=delivered + WAVE {
            dovecot.append("support", "INBOX", &request(n));
        }
        std::thread::sleep(Duration::from_millis(150 + rng.below(700)));
        let victim = rng.below(2) as usize;
        let done = dovecot.folder_count("support", "Processed");
        if dovecot.folder_count("support", "INBOX") > 0 {
            mid_import += 1;
        }
        eprintln!("kill {kill}: instance {victim}, {done} mails processed");
        instances[victim].kill();
        instances[victim] = cluster.spawn(if victim == 0 { "a" } else { "b" }, &[]);
    }
    let [a, b] = &instances;
    wait_until_processed(&dovecot, MAILS, Duration::from_secs(180), &[a, b]);
    for instance in &mut instances {
        instance.terminate();
    }
    assert!(
        mid_import >= KILLS / 4,
        "only {mid_import} kills fell in the import; the test proves little"
    );
    assert_each_mail_once(&cluster, &dovecot, MAILS);
    let token: i64 = cluster
        .psql("SELECT max(token) FROM mailbox_leases")
        .parse()
        .unwrap();
    eprintln!(
        "the mailbox changed hands {} times; {mid_import} kills with mail in hand",
        token - 1
    );
    assert!(token > 1, "the lease never changed hands");
}

#[test]
fn a_killed_holders_mailbox_is_taken_over_within_a_minute() {
    postgres_only!();
    let dovecot = dovecot();
    // The default lease (30 s, renewed every 10 s).
    let cluster = Cluster::new(shared_postgres(), &dovecot, None);
    let mut a = cluster.spawn("a", &[]);
    let a_id = a.id();
    cluster.wait_for_holder(&a_id, Duration::from_secs(30));
    let mut b = cluster.spawn("b", &[]);
    let b_id = b.id();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(cluster.holder().as_deref(), Some(a_id.as_str()));
    a.kill();
    let took = cluster.wait_for_holder(&b_id, Duration::from_secs(60));
    eprintln!("takeover after SIGKILL: {took:?}");
    // The new holder reads the mailbox.
    dovecot.append("support", "INBOX", &request(1));
    wait_until_processed(&dovecot, 1, Duration::from_secs(30), &[&b]);
    // SIGTERM gives the lease back.
    b.terminate();
    let status = cluster.status().unwrap();
    assert!(
        status.contains(&format!("read by no instance: {b_id} gave it back at")),
        "{status}"
    );
    assert_each_mail_once(&cluster, &dovecot, 1);
}

#[test]
fn a_paused_holder_loses_its_mailbox_and_commits_nothing_after_the_takeover() {
    postgres_only!();
    let dovecot = dovecot();
    let cluster = Cluster::new(shared_postgres(), &dovecot, Some((4, 1)));
    let a = cluster.spawn("a", &[]);
    let a_id = a.id();
    cluster.wait_for_holder(&a_id, Duration::from_secs(30));
    let mut b = cluster.spawn("b", &[]);
    let b_id = b.id();
    // A stalls (a frozen VM): its lease runs out and B takes the mailbox over.
    a.signal(libc::SIGSTOP);
    for n in 1..=30 {
        dovecot.append("support", "INBOX", &request(n));
    }
    let took = cluster.wait_for_holder(&b_id, Duration::from_secs(20));
    eprintln!("takeover of a paused holder's lease: {took:?}");
    wait_until_processed(&dovecot, 30, Duration::from_secs(30), &[&a, &b]);
    // A wakes up: it finds its lease gone and stops reading, committing nothing.
    a.signal(libc::SIGCONT);
    for n in 31..=40 {
        dovecot.append("support", "INBOX", &request(n));
    }
    wait_until_processed(&dovecot, 40, Duration::from_secs(30), &[&a, &b]);
    let started = Instant::now();
    while !a.log().contains("lost the mailbox's lease") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the paused instance did not notice:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cluster.holder().as_deref(), Some(b_id.as_str()));
    assert_each_mail_once(&cluster, &dovecot, 40);
    // B stops: it gives the lease back, and A (waiting again) takes over at its next
    // try rather than after an expiry.
    b.terminate();
    let took = cluster.wait_for_holder(&a_id, Duration::from_secs(5));
    eprintln!("takeover after SIGTERM: {took:?}");
}

/// A plain HTTP/1.1 exchange: the status code, the head and the body.
fn http(port: u16, request: &str) -> (u16, String, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn post_form(port: u16, path: &str, cookie: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body = form_encode(fields);
    let (code, _, text) = http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    (code, text)
}

/// Signs `name` in on the instance at `port`; the session cookie.
fn sign_in(port: u16, name: &str) -> String {
    let body = form_encode(&[("login", name), ("password", "correct horse battery")]);
    let (code, head, _) = http(
        port,
        &format!(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(code, 303, "{head}");
    head.lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// The ticket page's fields form as the instance at `port` shows it to `cookie`:
/// each input's name and value.
fn ticket_form(port: u16, id: &str, cookie: &str) -> Vec<(String, String)> {
    let (code, _, page) = http(
        port,
        &format!(
            "GET /tickets/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 200, "{page}");
    let form = page
        .split(&format!("action=\"/tickets/{id}/update\""))
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .expect("the fields form");
    let attr = |tag: &str, name: &str| {
        tag.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .map(str::to_string)
    };
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        if let Some(name) = attr(input, "name") {
            fields.push((name, attr(input, "value").unwrap_or_default()));
        }
    }
    for select in form.split("<select").skip(1) {
        let name = attr(select, "name").unwrap();
        let chosen = select
            .split("<option")
            .find(|o| o.contains("selected"))
            .and_then(|o| o.split('>').nth(1))
            .and_then(|o| o.split('<').next())
            .unwrap_or_default();
        let chosen = if chosen == "none" || chosen == "nobody" {
            ""
        } else {
            chosen
        };
        fields.push((name, chosen.to_string()));
    }
    fields
}

/// `form` with `field` set to `value`, posted to the instance at `port`.
fn save(
    port: u16,
    id: &str,
    cookie: &str,
    form: &[(String, String)],
    field: &str,
    value: &str,
) -> (u16, String) {
    let fields: Vec<(&str, &str)> = form
        .iter()
        .map(|(k, v)| (k.as_str(), if k == field { value } else { v.as_str() }))
        .collect();
    post_form(port, &format!("/tickets/{id}/update"), cookie, &fields)
}

#[test]
fn changes_to_one_ticket_from_two_instances_lose_nothing() {
    postgres_only!();
    let dovecot = dovecot();
    let cluster = Cluster::new(shared_postgres(), &dovecot, None);
    let eml = cluster.dir.path().join("a.eml");
    std::fs::write(&eml, request(1)).unwrap();
    cluster.run(&["import", eml.to_str().unwrap()]);
    for name in ["alice", "bob"] {
        let output = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(cluster.config())
            .args(["agents", "add", name, "--helpdesk", "Support"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(b"correct horse battery\n")?;
                child.wait()
            })
            .unwrap();
        assert!(output.success());
    }
    let id = cluster.psql("SELECT id FROM tickets");
    let number = cluster.psql("SELECT number FROM tickets");
    let (port_a, port_b) = (postdesk_testkit::free_port(), postdesk_testkit::free_port());
    let listen = |port: u16| format!("127.0.0.1:{port}");
    let (la, lb) = (listen(port_a), listen(port_b));
    let a = cluster.spawn("a", &["--listen", &la]);
    let b = cluster.spawn("b", &["--listen", &lb]);
    for port in [port_a, port_b] {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}\n{}",
                a.log(),
                b.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Alice signs in through A, Bob through B; each session works on the other
    // instance too (sessions and CSRF tokens are rows).
    let alice = sign_in(port_a, "alice");
    let bob = sign_in(port_b, "bob");
    // Both open the ticket; Alice raises the priority (on A), then Bob, whose page
    // still shows the old one, sets the status (on B).
    let alice_page = ticket_form(port_b, &id, &alice);
    let bob_page = ticket_form(port_a, &id, &bob);
    let (code, text) = save(port_a, &id, &alice, &alice_page, "priority", "high");
    assert_eq!(code, 303, "{text}");
    let (code, text) = save(port_b, &id, &bob, &bob_page, "status", "pending");
    assert_eq!(code, 303, "{text}");
    let shown = cluster.run(&["tickets", "show", &number]);
    assert!(shown.contains("pending"), "Bob's status was lost:\n{shown}");
    assert!(
        shown.contains("high"),
        "Alice's priority was lost:\n{shown}"
    );
    // Both change the same field from pages showing `high`: the first save wins, the
    // second is refused with what happened, and changes nothing.
    let alice_page = ticket_form(port_a, &id, &alice);
    let bob_page = ticket_form(port_b, &id, &bob);
    let (code, text) = save(port_b, &id, &alice, &alice_page, "priority", "low");
    assert_eq!(code, 303, "{text}");
    let (code, text) = save(port_a, &id, &bob, &bob_page, "priority", "urgent");
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("changed to low by someone else"), "{text}");
    let priority = cluster.psql("SELECT priority FROM tickets");
    assert_eq!(priority, "low");
    let events = cluster.psql(
        "SELECT body_text FROM entries WHERE kind = 'event' AND body_text LIKE '%changed%' ORDER BY id",
    );
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        [
            "Priority changed from normal to high by alice.",
            "Status changed from email-imported to pending by bob.",
            "Priority changed from high to low by alice.",
        ],
        "each change recorded once, from the value it really changed"
    );
}

#[test]
fn postgresql_restarted_mid_import_loses_and_doubles_nothing() {
    postgres_only!();
    const MAILS: usize = 1000;
    // A server of its own: this test stops it.
    let server = PostgresServer::start().expect("a PostgreSQL for the test");
    let server = Server::Own(Box::leak(Box::new(std::sync::Mutex::new(server))));
    let dovecot = dovecot();
    for n in 1..=MAILS {
        dovecot.append("support", "INBOX", &request(n));
    }
    let cluster = Cluster::new(server, &dovecot, None);
    let mut serving = cluster.spawn("a", &[]);
    let started = Instant::now();
    while dovecot.folder_count("support", "Processed") < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            serving.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.set_running(false);
    let at_stop = dovecot.folder_count("support", "Processed");
    std::thread::sleep(Duration::from_secs(4));
    // Nothing is acknowledged without its commit: at most the batch committed just
    // before the stop is moved after it.
    let while_down = dovecot.folder_count("support", "Processed");
    assert!(
        while_down <= at_stop + 200,
        "{while_down} moved while the database was away ({at_stop} at the stop)"
    );
    assert!(while_down < MAILS, "the import was over before the stop");
    server.set_running(true);
    wait_until_processed(&dovecot, MAILS, Duration::from_secs(120), &[&serving]);
    let status = cluster.status().unwrap();
    assert!(
        status.contains("last error:") && status.contains("database"),
        "status does not show the database error:\n{status}\n{}",
        serving.log()
    );
    serving.terminate();
    assert_each_mail_once(&cluster, &dovecot, MAILS);
}

#[test]
fn two_instances_share_two_mailboxes_one_each() {
    postgres_only!();
    let dovecot = Dovecot::start(
        DovecotOptions::default()
            .user("support", "secret")
            .user("sales", "secret"),
    );
    let second = format!(
        "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         user = \"sales\"\npassword = \"secret\"\ncreate_folders = true\ninterval_secs = 5\n",
        dovecot.imap_port()
    );
    let cluster = Cluster::with_extra(shared_postgres(), &dovecot, Some((4, 1)), &second);
    // A starts alone and takes both; B joins, and A gives one up.
    let a = cluster.spawn("a", &[]);
    let a_id = a.id();
    let started = Instant::now();
    while cluster.holders() != Some(vec![Some(a_id.clone()), Some(a_id.clone())]) {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", a.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let b = cluster.spawn("b", &[]);
    let b_id = b.id();
    let started = Instant::now();
    loop {
        let holders = cluster.holders().unwrap_or_default();
        if holders.contains(&Some(a_id.clone())) && holders.contains(&Some(b_id.clone())) {
            eprintln!("shared out after {:?}", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not shared out: {holders:?}\n{}\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
