//! A postdesk installation in a temporary folder, driven through its command line.
//!
//! Its database is a SQLite file in the folder, or, with `POSTDESK_TEST_DATABASE=postgres`
//! in the environment, a fresh database on the test binary's own PostgreSQL server
//! (testkit's): the same tests then run on the other engine.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Desk {
    pub dir: tempfile::TempDir,
    /// `database_url = …` for the config, when the tests run on PostgreSQL.
    database: String,
}

/// The config line naming the database: none (the SQLite default in the data folder),
/// or a fresh PostgreSQL database when `POSTDESK_TEST_DATABASE=postgres`.
fn database_line() -> String {
    match std::env::var("POSTDESK_TEST_DATABASE").as_deref() {
        Ok("postgres") => {
            let server = postdesk_testkit::postgres::PostgresServer::shared()
                .expect("POSTDESK_TEST_DATABASE=postgres needs a PostgreSQL for the tests");
            format!("database_url = \"{}\"\n", server.fresh_database())
        }
        _ => String::new(),
    }
}

/// A config's text split where its tables begin: the top-level keys (`data_dir`,
/// `database_url`…), and the rest from the first `[table]` on. A test that adds a table
/// of its own (`[outgoing]`, `[web]`) puts it between the two.
pub fn split_top(config: &str) -> (&str, &str) {
    let tables = config.find("\n[").map_or(config.len(), |i| i + 1);
    (config[..tables].trim_end(), &config[tables..])
}

/// Whether the tests run on PostgreSQL (some look at the SQLite file itself).
pub fn on_postgres() -> bool {
    std::env::var("POSTDESK_TEST_DATABASE").as_deref() == Ok("postgres")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

pub const HELPDESK: &str = r#"
[[helpdesk]]
name = "Support"
addresses = ["support@example.com"]
"#;

impl Desk {
    /// A desk whose `[[helpdesk]]` table gets `extra` appended (TOML keys).
    pub fn new(extra: &str) -> Self {
        Self::with_database(extra, database_line())
    }

    /// A desk on SQLite whatever the engine of the run: for tests of the SQLite file
    /// itself (its modes, its rows read directly) or of the config's exact lines.
    pub fn on_sqlite(extra: &str) -> Self {
        Self::with_database(extra, String::new())
    }

    fn with_database(extra: &str, database: String) -> Self {
        let desk = Self {
            dir: tempfile::tempdir().unwrap(),
            database,
        };
        if !desk.database.is_empty() {
            // PostgreSQL does not migrate on its own (`auto_migrate` is off there): the
            // operator runs this once, as the README says. With a config of its own, so
            // that tests of a broken config still have a migrated database.
            let migrate = desk.path("migrate.toml");
            // A data folder of its own: the test's config decides how `data` is made.
            let config = format!("data_dir = \"migrate-data\"\n{}{HELPDESK}", desk.database);
            std::fs::write(&migrate, config).unwrap();
            let args = ["--config", migrate.to_str().unwrap(), "db", "migrate"];
            desk.run_without_config(&args, None).ok();
        }
        desk.write_config(extra);
        desk
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.config(),
            format!("data_dir = \"data\"\n{}{HELPDESK}{extra}\n", self.database),
        )
        .unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("postdesk.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let config = self.config();
        let mut full_args = vec!["--config", config.to_str().unwrap()];
        full_args.extend_from_slice(args);
        self.run_without_config(&full_args, stdin)
    }

    /// Runs with exactly `args` (no `--config` added).
    pub fn run_without_config(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("POSTDESK_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        Run::from(child.wait_with_output().unwrap())
    }

    /// Writes `mail` to a file and imports it; returns the import's output.
    pub fn import_mail(&self, name: &str, mail: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, mail.replace('\n', "\r\n")).unwrap();
        self.run(&["import", "--verbose", path.to_str().unwrap()])
            .ok()
    }

    pub fn show(&self, number: i64) -> String {
        self.run(&["tickets", "show", &number.to_string()]).ok()
    }

    pub fn list(&self) -> String {
        self.run(&["tickets", "list"]).ok()
    }
}

/// A plain mail with the given headers (`From`, `Subject`, …) and body.
pub fn mail(headers: &[(&str, &str)], body: &str) -> String {
    let mut text = String::new();
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("To") {
        text.push_str("To: support@example.com\n");
    }
    if !has("Date") {
        text.push_str("Date: Mon, 16 Nov 2026 08:00:00 +0000\n");
    }
    if !has("Content-Type") {
        text.push_str("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    text.push_str(body);
    text.push('\n');
    text
}

pub fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail/tests/corpus")
        .join(rel)
}

/// Sends one raw HTTP/1.1 request (it must say `Connection: close`) to a server on
/// loopback and returns the status line and the body.
pub fn http_exchange(port: u16, request: &str) -> (String, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Waits until `done`, polling; fails the test naming `what` after `within`.
pub fn wait_until(what: &str, within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
