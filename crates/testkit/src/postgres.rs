//! A throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.
//!
//! ```no_run
//! use postdesk_testkit::postgres::PostgresServer;
//!
//! // One server per test binary, started by the first test that asks for it;
//! // every test then gets a database of its own on it.
//! let server = PostgresServer::shared().expect("a PostgreSQL for the tests");
//! let url = server.fresh_database();
//! // url is "postgres://postgres@127.0.0.1:<port>/t_<pid>_<n>": connect without TLS,
//! // no password (trust), user `postgres`, an empty database in UTF-8 with the C locale.
//! ```
//!
//! # What runs
//!
//! Debian's `postgresql` package (`apt-get install postgresql`, which `.ci/run` does):
//! `initdb` and `postgres` from the newest `/usr/lib/postgresql/<version>/bin` (or from
//! `$POSTDESK_PG_BIN`). Both refuse to run as root, so as root they run as the
//! `postgres` user the package creates; as anyone else, as that user.
//!
//! Each server is a cluster of its own in a temporary directory under `/tmp` (data
//! directory, log, and the Unix socket), listening on 127.0.0.1 only, on a port picked
//! per run (another process taking it first makes the start retry with a fresh one),
//! so test threads and test binaries running at once never share a server. It never
//! touches the system's cluster (`/var/lib/postgresql`, port 5432). The settings are
//! PostgreSQL's defaults (`fsync`, `synchronous_commit` and `full_page_writes` on: what
//! a test or benchmark measures is what production pays), plus the listening address,
//! port and socket directory. Authentication is `trust` for loopback and the socket.
//!
//! The cluster is made with `initdb --locale=C --encoding=UTF8`: `C` collation orders
//! text by bytes, as SQLite's default `BINARY` collation does, so `ORDER BY` on text
//! agrees between the two engines. `initdb` runs once per machine and PostgreSQL
//! version into a template directory (`/tmp/postdesk-postgres-template-…`, about 40 MB,
//! a few seconds); each server starts from a copy of it (well under a second).
//!
//! # Stopping
//!
//! Dropping a [`PostgresServer`] stops it at once (immediate shutdown: the data is
//! thrown away, so nothing needs to be written) and removes its directory. The server
//! from [`PostgresServer::shared`] is never dropped (statics are not); a watchdog
//! process stops it and removes its directory when the test process exits, however it
//! exits (also when it is killed).

use std::fmt;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The database superuser `initdb` creates, and the user every URL connects as.
pub const SUPERUSER: &str = "postgres";

/// How long a server may take to become ready before the start is given up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a start when another process took the picked port.
const PORT_ATTEMPTS: usize = 5;
/// Part of the template directory's name: a change to how the template is made gets a
/// new template rather than reusing an old one.
const TEMPLATE_FORMAT: &str = "v1";

/// Stops the server and removes its directory when stdin reaches EOF, which is when
/// the test process exits without having done so itself (a leaked static, a killed
/// test binary, Ctrl-C). `$1` is the postmaster's pid, `$2` the directory.
const WATCHDOG: &str = r#"read -r _
kill -QUIT "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$1" 2>/dev/null
# Backends still exiting may write a last file: try again a few times.
for _ in 1 2 3 4 5; do rm -rf -- "$2" 2>/dev/null && break; sleep 0.2; done
"#;

/// Why a server could not be started or used.
#[derive(Clone)]
pub struct PostgresError {
    message: String,
}

impl PostgresError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// Debug prints the message as is, so a test's `.expect(…)` shows it readably.
impl fmt::Debug for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PostgresError {}

/// The harness's result.
pub type Result<T, E = PostgresError> = std::result::Result<T, E>;

/// What a server started with [`PostgresServer::start_with`] has beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `ssl = on`, with a certificate for `localhost` and 127.0.0.1 signed by a CA made
    /// for this server ([`PostgresServer::ca_cert_path`]); plain connections still work.
    pub tls: bool,
    /// A superuser role (name, password) whose connections over TCP must give the
    /// password (scram-sha-256); every other role stays `trust`.
    pub password_role: Option<(String, String)>,
}

/// A running PostgreSQL cluster; see the [module documentation](self).
pub struct PostgresServer {
    /// Removed on drop, after the server has stopped.
    dir: TempDir,
    bin: PathBuf,
    /// Who the server runs as: `Some` when this process is root.
    run_as: Option<(u32, u32)>,
    port: u16,
    /// Started with `ssl = on` (see [`ServerOptions::tls`]).
    tls: bool,
    postmaster: Option<Child>,
    /// Its stdin: closing it (this process exiting) sets the watchdog off.
    watchdog: Option<(Child, ChildStdin)>,
    databases: AtomicU64,
}

impl PostgresServer {
    /// Starts a server of its own (see the module documentation) and waits until it
    /// accepts connections. Fails with a message naming what to install when the
    /// PostgreSQL binaries are missing, and with the end of the server's log when it
    /// does not come up.
    pub fn start() -> Result<PostgresServer> {
        Self::start_with(ServerOptions::default())
    }

    /// [`PostgresServer::start`] with TLS or a password-checked role (see
    /// [`ServerOptions`]).
    pub fn start_with(options: ServerOptions) -> Result<PostgresServer> {
        let bin = find_bin_dir()?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(lookup_user(SUPERUSER).ok_or_else(|| {
                PostgresError::new(
                    "there is no user `postgres` to run PostgreSQL as (PostgreSQL refuses to \
                     run as root; Debian's `postgresql` package creates the user: \
                     apt-get install postgresql)",
                )
            })?)
        } else {
            None
        };
        let template = ensure_template(&bin, run_as)?;

        let dir = tempfile::Builder::new()
            .prefix("postdesk-postgres-")
            // /tmp rather than $TMPDIR: the server's user must reach it, and the socket
            // path must stay short.
            .tempdir_in("/tmp")
            .map_err(|e| PostgresError::new(format!("create a directory under /tmp: {e}")))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .map_err(|e| PostgresError::new(format!("chmod {}: {e}", dir.path().display())))?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| PostgresError::new(format!("chown {}: {e}", dir.path().display())))?;
        }
        let mut server = PostgresServer {
            dir,
            bin,
            run_as,
            port: 0,
            tls: options.tls,
            postmaster: None,
            watchdog: None,
            databases: AtomicU64::new(0),
        };
        let copy = server
            .command(Path::new("cp"))
            .arg("-a")
            .arg(&template)
            .arg(server.data_dir())
            .output()
            .map_err(|e| PostgresError::new(format!("run cp: {e}")))?;
        if !copy.status.success() {
            return Err(PostgresError::new(format!(
                "copy the template cluster {} to {}: {}",
                template.display(),
                server.data_dir().display(),
                String::from_utf8_lossy(&copy.stderr).trim()
            )));
        }
        if options.tls {
            server.write_tls_files()?;
        }
        if let Some((role, _)) = &options.password_role {
            // Checked before the `trust` lines initdb wrote: the first match decides.
            let hba = server.data_dir().join("pg_hba.conf");
            let rest = fs::read_to_string(&hba)
                .map_err(|e| PostgresError::new(format!("read {}: {e}", hba.display())))?;
            fs::write(
                &hba,
                format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rest}"),
            )
            .map_err(|e| PostgresError::new(format!("write {}: {e}", hba.display())))?;
        }
        for attempt in 1..=PORT_ATTEMPTS {
            server.port = crate::free_port();
            match server.spawn_and_wait() {
                Ok(()) => {
                    server.spawn_watchdog()?;
                    if let Some((role, password)) = &options.password_role {
                        server.psql(
                            "postgres",
                            &format!("CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"),
                        )?;
                    }
                    return Ok(server);
                }
                Err(failure) => {
                    let log = server.log_tail(40);
                    if log.contains("Address already in use") && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    return Err(PostgresError::new(format!(
                        "PostgreSQL did not start ({failure}); data directory {}\n--- log tail ---\n{log}",
                        server.data_dir().display()
                    )));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The server of this process, started by the first call (and so shared by the
    /// tests of one test binary, each with its own [`PostgresServer::fresh_database`]).
    /// When that start failed, every call returns its error.
    pub fn shared() -> Result<&'static PostgresServer> {
        static SHARED: OnceLock<Result<PostgresServer>> = OnceLock::new();
        SHARED
            .get_or_init(PostgresServer::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Creates an empty database with a name not used before on this server
    /// (`t_<pid>_<n>`) and returns its URL. Safe to call from many threads at once.
    /// Panics, with PostgreSQL's message, when the server refuses (it is running, so
    /// that is a bug).
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        self.database_url(&name)
    }

    /// The URL of the `postgres` database (which always exists).
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of a database on this server, by name.
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@{}:{}/{database}",
            crate::dovecot::HOST,
            self.port
        )
    }

    /// The PEM file of the CA that signed the server's certificate (for `localhost`
    /// and 127.0.0.1), when started with [`ServerOptions::tls`].
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("tls/ca.pem"))
    }

    /// Makes the CA and the server's certificate and key (readable by the server's
    /// user only, as PostgreSQL requires of the key).
    fn write_tls_files(&self) -> Result<()> {
        let dir = self.dir.path().join("tls");
        fs::create_dir(&dir)
            .map_err(|e| PostgresError::new(format!("mkdir {}: {e}", dir.display())))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| PostgresError::new(format!("chmod {}: {e}", dir.display())))?;
        crate::write_certificates(&dir, "postdesk testkit PostgreSQL CA");
        let key = dir.join("server.key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .map_err(|e| PostgresError::new(format!("chmod {}: {e}", key.display())))?;
        if let Some((uid, gid)) = self.run_as {
            for file in ["server.key", "server.pem"] {
                chown(dir.join(file), Some(uid), Some(gid))
                    .map_err(|e| PostgresError::new(format!("chown {file}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the Unix socket (`.s.PGSQL.<port>`), for a `host=` of a
    /// libpq-style connection string.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// CPU seconds (user and system) the server has used so far: the postmaster's own,
    /// its reaped children's (backends that have ended) and its live children's. For
    /// benchmarks that report the database's cost beside postdesk's.
    pub fn cpu_seconds(&self) -> f64 {
        let Some(postmaster) = self.postmaster.as_ref().map(Child::id) else {
            return 0.0;
        };
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut total = 0u64;
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields by their number in proc(5), counted after the command's closing
            // parenthesis (field 3, the state): 4 ppid, 14 utime, 15 stime, 16 cutime
            // (reaped children's), 17 cstime.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            let ppid = field(4).unwrap_or(0) as u32;
            if pid == postmaster {
                total += [14, 15, 16, 17].into_iter().filter_map(field).sum::<u64>();
            } else if ppid == postmaster {
                total += [14, 15].into_iter().filter_map(field).sum::<u64>();
            }
        }
        total as f64 / ticks
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder of the PostgreSQL binaries in use (`initdb`, `postgres`, `psql`, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The server's log (its stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Runs SQL with `psql` on a database of this server and returns what it printed
    /// (unaligned, tuples only: one line per row, columns separated by `|`). Stops at
    /// the first error, which it returns.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "-d", database, "-c", sql])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| PostgresError::new(format!("run psql: {e}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(PostgresError::new(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ))
        }
    }

    /// Whether the server is running (false between [`PostgresServer::stop`] and
    /// [`PostgresServer::start_again`]).
    pub fn is_running(&self) -> bool {
        self.postmaster.is_some()
    }

    /// Stops the server as an administrator does (fast shutdown: open sessions are
    /// ended, the data is checkpointed), for "the database went away" tests. The data
    /// stays; connecting is refused until [`PostgresServer::start_again`]. Does nothing
    /// when it is not running.
    pub fn stop(&mut self) {
        self.stop_with(libc::SIGINT);
    }

    /// Starts a stopped server again, on the same port with the same data.
    pub fn start_again(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn_and_wait().map_err(|failure| {
            PostgresError::new(format!(
                "PostgreSQL did not start again ({failure})\n--- log tail ---\n{}",
                self.log_tail(40)
            ))
        })?;
        self.spawn_watchdog()
    }

    /// A command run as the server's user, in the server's directory, with none of
    /// the caller's `PG*` settings.
    fn command(&self, program: &Path) -> Command {
        let mut command = server_command(program, self.run_as);
        command.current_dir(self.dir.path());
        command
    }

    /// Starts the postmaster and waits until it says it is ready.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = fs::File::create(self.log_path())
            .map_err(|e| format!("create {}: {e}", self.log_path().display()))?;
        if let Some((uid, gid)) = self.run_as {
            chown(self.log_path(), Some(uid), Some(gid)).map_err(|e| format!("chown log: {e}"))?;
        }
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = self.command(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(format!("listen_addresses={}", crate::dovecot::HOST))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ));
        if self.tls {
            let tls = self.dir.path().join("tls");
            command.args(["-c", "ssl=on", "-c"]);
            command.arg(format!(
                "ssl_cert_file={}",
                tls.join("server.pem").display()
            ));
            command.arg("-c");
            command.arg(format!("ssl_key_file={}", tls.join("server.key").display()));
        }
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // A group of its own: Ctrl-C in the terminal reaches the test process, whose
            // watchdog then stops the server, instead of killing it half-way.
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("run {}: {e}", self.bin.join("postgres").display()))?;
        let pid_file = self.data_dir().join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("postgres exited with {status}"));
            }
            // The eighth line of postmaster.pid is the postmaster's state; "ready" once
            // it accepts connections.
            let ready = fs::read_to_string(&pid_file)
                .map(|text| text.lines().nth(7).is_some_and(|s| s.trim() == "ready"))
                .unwrap_or(false);
            if ready {
                self.postmaster = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not ready after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the watchdog for the running postmaster (see [`WATCHDOG`]).
    fn spawn_watchdog(&mut self) -> Result<()> {
        let pid = self.postmaster.as_ref().map_or(0, Child::id);
        let mut watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("postdesk-postgres-watchdog")
            .arg(pid.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's process group, so Ctrl-C does not end it before it
            // has cleaned up.
            .process_group(0)
            .spawn()
            .map_err(|e| PostgresError::new(format!("run /bin/sh for the watchdog: {e}")))?;
        let stdin = watchdog.stdin.take().expect("piped stdin");
        self.watchdog = Some((watchdog, stdin));
        Ok(())
    }

    /// Ends the watchdog, sends the postmaster `signal` and waits for it to exit
    /// (killing it when it takes too long).
    fn stop_with(&mut self, signal: libc::c_int) {
        if let Some((mut watchdog, stdin)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(stdin);
        }
        let Some(mut postmaster) = self.postmaster.take() else {
            return;
        };
        unsafe { libc::kill(postmaster.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = postmaster.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = postmaster.kill();
        let _ = postmaster.wait();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Immediate shutdown: the data is about to be removed, nothing to save.
        self.stop_with(libc::SIGQUIT);
    }
}

/// A command for a PostgreSQL program, run as `run_as` when given, with none of the
/// caller's `PG*` environment (which would redirect `psql` and friends elsewhere).
fn server_command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            command.env_remove(key);
        }
    }
    command.env("LC_ALL", "C").stdin(Stdio::null());
    if let Some((uid, gid)) = run_as {
        // Sets the group, drops supplementary groups, then the user (std does it in
        // this order in the child).
        command.uid(uid).gid(gid);
    }
    command
}

/// The folder with `initdb` and `postgres`: `$POSTDESK_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn find_bin_dir() -> Result<PathBuf> {
    find_bin_dir_in(
        std::env::var_os("POSTDESK_PG_BIN").map(PathBuf::from),
        Path::new("/usr/lib/postgresql"),
    )
}

/// [`find_bin_dir`] with the override and Debian's root given.
fn find_bin_dir_in(chosen: Option<PathBuf>, root: &Path) -> Result<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "psql"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    if let Some(dir) = chosen {
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(PostgresError::new(format!(
                "POSTDESK_PG_BIN={} does not hold initdb, postgres and psql",
                dir.display()
            )))
        };
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        PostgresError::new(
            "PostgreSQL is not installed: no /usr/lib/postgresql/<version>/bin with initdb, \
             postgres and psql (apt-get install postgresql; elsewhere set POSTDESK_PG_BIN to \
             the folder holding them)",
        )
    })
}

/// The template cluster for this PostgreSQL and user, made by `initdb` when missing.
/// Several processes may get here at once: each makes its own under a temporary name
/// and renames it into place; a loser of that race uses the winner's.
fn ensure_template(bin: &Path, run_as: Option<(u32, u32)>) -> Result<PathBuf> {
    let version = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map_err(|e| PostgresError::new(format!("run {}: {e}", bin.join("postgres").display())))?;
    let version = String::from_utf8_lossy(&version.stdout);
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the first number.
    let version: String = version
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let owner = run_as.map_or_else(|| unsafe { libc::geteuid() }, |(uid, _)| uid);
    let template = PathBuf::from(format!(
        "/tmp/postdesk-postgres-template-{TEMPLATE_FORMAT}-{version}-{owner}"
    ));
    if template_is_usable(&template, owner) {
        return Ok(template);
    }
    let scratch = tempfile::Builder::new()
        .prefix("postdesk-postgres-initdb-")
        .tempdir_in("/tmp")
        .map_err(|e| PostgresError::new(format!("create a directory under /tmp: {e}")))?;
    if let Some((uid, gid)) = run_as {
        chown(scratch.path(), Some(uid), Some(gid))
            .map_err(|e| PostgresError::new(format!("chown {}: {e}", scratch.path().display())))?;
    }
    let data = scratch.path().join("data");
    let output = server_command(&bin.join("initdb"), run_as)
        .current_dir(scratch.path())
        .arg("-D")
        .arg(&data)
        .args(["--username", SUPERUSER, "--auth", "trust"])
        .args(["--locale", "C", "--encoding", "UTF8"])
        .output()
        .map_err(|e| PostgresError::new(format!("run {}: {e}", bin.join("initdb").display())))?;
    if !output.status.success() {
        return Err(PostgresError::new(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    match fs::rename(&data, &template) {
        Ok(()) => Ok(template),
        // Another process put its template in place first: use that one.
        Err(_) if template_is_usable(&template, owner) => Ok(template),
        Err(e) => Err(PostgresError::new(format!(
            "move the new template cluster to {}: {e}",
            template.display()
        ))),
    }
}

/// A finished template owned by the server's user and by no one else: `/tmp` is
/// shared, and a cluster someone else put there is not to be started.
fn template_is_usable(template: &Path, owner: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(template)
        .is_ok_and(|meta| meta.is_dir() && meta.uid() == owner && meta.mode() & 0o077 == 0)
        && template.join("PG_VERSION").is_file()
}

/// The uid and gid of a user, from the password database.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_their_message_for_expect() {
        let error = PostgresError::new("PostgreSQL is not installed");
        assert_eq!(format!("{error:?}"), "PostgreSQL is not installed");
    }

    fn fake_bin(root: &Path, version: &str, programs: &[&str]) -> PathBuf {
        let bin = root.join(version).join("bin");
        fs::create_dir_all(&bin).unwrap();
        for program in programs {
            fs::write(bin.join(program), "").unwrap();
        }
        bin
    }

    #[test]
    fn missing_binaries_are_an_error_that_says_what_to_install() {
        let root = tempfile::tempdir().unwrap();
        let error = find_bin_dir_in(None, &root.path().join("absent")).unwrap_err();
        assert!(
            error.to_string().contains("apt-get install postgresql"),
            "{error}"
        );
        // A version folder without the server (only the client package) is no help.
        fake_bin(root.path(), "15", &["psql"]);
        assert!(find_bin_dir_in(None, root.path()).is_err());
        let chosen = find_bin_dir_in(Some(root.path().join("15/bin")), root.path());
        assert!(chosen.unwrap_err().to_string().contains("POSTDESK_PG_BIN="));
    }

    #[test]
    fn the_newest_complete_version_is_taken() {
        let root = tempfile::tempdir().unwrap();
        let all = ["initdb", "postgres", "psql"];
        fake_bin(root.path(), "9.6", &all);
        let ten = fake_bin(root.path(), "10", &all);
        fake_bin(root.path(), "16", &["psql"]);
        assert_eq!(find_bin_dir_in(None, root.path()).unwrap(), ten);
    }
}
