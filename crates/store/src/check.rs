//! `postdesk check` for the database: connects to it step by step (the URL, DNS, TCP,
//! TLS, sign-in, the database, its permissions and schema) and says which step failed
//! and what to fix. This module owns the few catalog queries the check runs.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use postgres::config::Host;

use crate::db::{MIGRATIONS, POSTGRES_MIGRATIONS};
use crate::engine::postgres::{PgConn, redacted_url};
use crate::engine::postgres_tls::{SslMode, parse_url};
use crate::engine::{Db, OptionalExtension};

/// The steps of a database check, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbStep {
    Url,
    Dns,
    Tcp,
    Tls,
    Auth,
    Database,
    Permissions,
    Schema,
    /// A SQLite file.
    File,
}

impl DbStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Url => "database URL",
            Self::Dns => "database DNS",
            Self::Tcp => "database TCP",
            Self::Tls => "database TLS",
            Self::Auth => "database sign-in",
            Self::Database => "database",
            Self::Permissions => "database permissions",
            Self::Schema => "database schema",
            Self::File => "database file",
        }
    }
}

/// One step's outcome: what it found, or what failed and what to fix.
#[derive(Debug, Clone)]
pub struct DbCheckStep {
    pub step: DbStep,
    pub result: Result<String, String>,
}

impl DbCheckStep {
    fn ok(step: DbStep, detail: impl Into<String>) -> Self {
        Self {
            step,
            result: Ok(detail.into()),
        }
    }

    fn fail(step: DbStep, problem: impl Into<String>) -> Self {
        Self {
            step,
            result: Err(problem.into()),
        }
    }
}

/// How long each network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the database `url` names, stopping at the first step that makes the next
/// impossible. Blocking. No message holds the URL's password.
pub fn check_database(url: &str) -> Vec<DbCheckStep> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        check_postgres(url)
    } else {
        check_sqlite(url)
    }
}

fn check_sqlite(url: &str) -> Vec<DbCheckStep> {
    let path = match crate::db::sqlite_path(url) {
        Ok(Some(path)) => path,
        Ok(None) => {
            return vec![DbCheckStep::fail(
                DbStep::Url,
                "an in-memory database keeps nothing; name a file",
            )];
        }
        Err(e) => return vec![DbCheckStep::fail(DbStep::Url, e.to_string())],
    };
    if !path.exists() {
        // Made (with its folder, when that is in the data folder) at the first start.
        return vec![DbCheckStep::ok(
            DbStep::File,
            format!("{} will be created at the first start", path.display()),
        )];
    }
    let mut steps = vec![];
    let conn =
        match crate::engine::connect_sqlite(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE) {
            Ok(conn) => conn,
            Err(e) => {
                steps.push(DbCheckStep::fail(
                    DbStep::File,
                    format!(
                        "cannot open {} for writing: {e}. Check its owner and mode",
                        path.display()
                    ),
                ));
                return steps;
            }
        };
    steps.push(DbCheckStep::ok(DbStep::File, path.display().to_string()));
    steps.push(schema_step(
        &Db::sqlite(&conn),
        MIGRATIONS.last().map_or(0, |m| m.version()),
    ));
    steps
}

fn check_postgres(url: &str) -> Vec<DbCheckStep> {
    let shown = redacted_url(url);
    let mut steps = Vec::new();
    let (config, tls) = match parse_url(url) {
        Ok(parsed) => parsed,
        Err(e) => return vec![DbCheckStep::fail(DbStep::Url, e.to_string())],
    };
    steps.push(DbCheckStep::ok(
        DbStep::Url,
        format!("{shown} (sslmode={})", tls.mode.as_str()),
    ));
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => {
            steps.push(DbCheckStep::ok(
                DbStep::Tcp,
                format!("Unix socket in {}", path.display()),
            ));
            return connect_steps(url, steps, tls.mode);
        }
        None => "localhost".to_string(),
    };
    let addresses: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(e) => {
            steps.push(DbCheckStep::fail(
                DbStep::Dns,
                format!("cannot resolve {host}: {e}. Check the host name in database_url"),
            ));
            return steps;
        }
    };
    let listed: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    steps.push(DbCheckStep::ok(
        DbStep::Dns,
        format!("{host} is {}", listed.join(", ")),
    ));
    let mut last_error = None;
    let reached = addresses.iter().find(|address| {
        TcpStream::connect_timeout(address, STEP_TIMEOUT)
            .map_err(|e| last_error = Some(e))
            .is_ok()
    });
    match reached {
        Some(address) => steps.push(DbCheckStep::ok(
            DbStep::Tcp,
            format!("{address} accepts connections"),
        )),
        None => {
            let error = last_error.map(|e| e.to_string()).unwrap_or_default();
            steps.push(DbCheckStep::fail(
                DbStep::Tcp,
                format!(
                    "nothing answers on {host} port {port} ({error}). Check the port in database_url, \
                     that PostgreSQL runs and listens there (listen_addresses), and firewalls"
                ),
            ));
            return steps;
        }
    }
    connect_steps(url, steps, tls.mode)
}

/// TLS, sign-in and database, told apart by what the server or the handshake said;
/// then permissions and schema.
fn connect_steps(url: &str, mut steps: Vec<DbCheckStep>, mode: SslMode) -> Vec<DbCheckStep> {
    let conn = match PgConn::connect(url) {
        Ok(conn) => conn,
        Err(e) => {
            steps.push(classify_connect_error(&e, mode));
            return steps;
        }
    };
    let db = Db::postgres(&conn);
    // What the server says of this very connection.
    let observed: crate::Result<Option<String>> = db
        .prepare("SELECT version::text FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl")
        .and_then(|mut s| s.query_row((), |r| r.get(0)).optional());
    let checked = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => "certificate not checked",
        SslMode::VerifyCa => "certificate signed by a trusted CA",
        SslMode::VerifyFull => "certificate signed by a trusted CA and naming the host",
    };
    steps.push(DbCheckStep::ok(
        DbStep::Tls,
        match observed {
            Ok(Some(version)) => format!("encrypted ({version}), {checked} (sslmode={})", mode.as_str()),
            Ok(None) => format!(
                "not encrypted (sslmode={}): keep the server on a private network, or set ssl = on there and sslmode=verify-full here",
                mode.as_str()
            ),
            Err(e) => format!("unknown ({e})"),
        },
    ));
    let who: crate::Result<(String, String)> = db
        .prepare("SELECT current_user::text, current_database()::text")
        .and_then(|mut s| s.query_row((), |r| Ok((r.get(0)?, r.get(1)?))));
    match who {
        Ok((user, database)) => {
            steps.push(DbCheckStep::ok(
                DbStep::Auth,
                format!("signed in as {user}"),
            ));
            steps.push(DbCheckStep::ok(
                DbStep::Database,
                format!("{database} exists"),
            ));
        }
        Err(e) => {
            steps.push(DbCheckStep::fail(DbStep::Auth, e.to_string()));
            return steps;
        }
    }
    let lacking: crate::Result<Vec<String>> = db
        .prepare(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND NOT has_table_privilege(format('%I.%I', table_schema, table_name), 'SELECT, INSERT, UPDATE, DELETE')
             ORDER BY 1",
        )
        .and_then(|mut s| s.query_map((), |r| r.get(0))?.collect());
    let can_create: crate::Result<bool> = db
        .prepare("SELECT has_schema_privilege(current_schema(), 'CREATE')")
        .and_then(|mut s| s.query_row((), |r| r.get(0)));
    match (lacking, can_create) {
        (Ok(lacking), _) if !lacking.is_empty() => {
            steps.push(DbCheckStep::fail(
                DbStep::Permissions,
                format!(
                    "the user may not read and write the tables {}: GRANT SELECT, INSERT, UPDATE, DELETE \
                     ON ALL TABLES IN SCHEMA public TO it (or make it their owner)",
                    lacking.join(", ")
                ),
            ));
            return steps;
        }
        (Ok(_), Ok(true)) => steps.push(DbCheckStep::ok(
            DbStep::Permissions,
            "reads and writes every table, may create tables (db migrate)",
        )),
        (Ok(_), Ok(false)) => steps.push(DbCheckStep::ok(
            DbStep::Permissions,
            "reads and writes every table; may not create tables, so `db migrate` must run as the owner",
        )),
        (Err(e), _) | (_, Err(e)) => {
            steps.push(DbCheckStep::fail(DbStep::Permissions, e.to_string()));
            return steps;
        }
    }
    steps.push(schema_step(
        &db,
        POSTGRES_MIGRATIONS.last().map_or(0, |m| m.version()),
    ));
    steps
}

/// What a failed connection says about the step it failed at.
fn classify_connect_error(error: &crate::StoreError, mode: SslMode) -> DbCheckStep {
    let text = error.to_string();
    let code = match error {
        crate::StoreError::Postgres(e) => e.code().map(|c| c.code().to_string()),
        _ => None,
    };
    match code.as_deref() {
        Some("28P01") | Some("28000") => DbCheckStep::fail(
            DbStep::Auth,
            format!(
                "{text}. Check the user and password in database_url (and pg_hba.conf on the server)"
            ),
        ),
        Some("3D000") => DbCheckStep::fail(
            DbStep::Database,
            format!("{text}. Create it (`createdb -O USER NAME`) or fix its name in database_url"),
        ),
        Some("42501") => DbCheckStep::fail(
            DbStep::Permissions,
            format!("{text}. GRANT CONNECT ON DATABASE … TO the user"),
        ),
        _ if matches!(error, crate::StoreError::Tls(_))
            || text.contains("TLS")
            || text.contains("certificate") =>
        {
            DbCheckStep::fail(
                DbStep::Tls,
                format!(
                    "{text} (sslmode={}). Check sslrootcert (the CA that signed the server's certificate), \
                     that the host in database_url is a name the certificate holds (verify-full), and \
                     that the server has ssl = on",
                    mode.as_str()
                ),
            )
        }
        _ if text.contains("password") => DbCheckStep::fail(
            DbStep::Auth,
            format!(
                "{text}. Put the password in database_url (postgres://USER:PASSWORD@HOST/DATABASE)"
            ),
        ),
        _ => DbCheckStep::fail(DbStep::Auth, text),
    }
}

/// Whether the schema is this binary's.
fn schema_step(db: &Db, binary: i64) -> DbCheckStep {
    let version: crate::Result<Option<i64>> = db
        .prepare("SELECT MAX(version) FROM _sqlx_migrations")
        .and_then(|mut s| s.query_row((), |r| r.get(0)));
    match version {
        Ok(Some(v)) if v == binary => {
            DbCheckStep::ok(DbStep::Schema, format!("version {v}, this postdesk's"))
        }
        Ok(Some(v)) if v > binary => DbCheckStep::fail(
            DbStep::Schema,
            format!("version {v}, newer than this postdesk's {binary}: run the newer postdesk"),
        ),
        Ok(v) => DbCheckStep::fail(
            DbStep::Schema,
            format!(
                "version {}, this postdesk needs {binary}: run `postdesk db migrate`",
                v.unwrap_or(0)
            ),
        ),
        Err(_) => DbCheckStep::fail(
            DbStep::Schema,
            format!(
                "no schema yet: run `postdesk db migrate` (this postdesk's is version {binary})"
            ),
        ),
    }
}
