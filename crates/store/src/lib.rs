//! The ticket store: SQLite through sqlx, and rusqlite for the writer (`writer`),
//! migrations, the intake ledger and the transaction that applies a mail.

pub mod access;
pub mod blobs;
pub mod contacts;
pub mod desk;
pub mod entries;
pub mod ingest;
mod ledger;
pub mod mailboxes;
pub mod outbox;
pub mod read;
mod rules;
mod simulate;
mod sql;
pub mod tickets;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postdesk_core::settings::Helpdesk;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use ingest::{Batch, IncomingMail, IngestReport, Outcome, StoredAttachment};
pub use simulate::{DryRun, Simulator, TicketBrief};
pub use writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {url}: {source}. Check `database_url` and that its folder exists and is writable"
    )]
    Open { url: String, source: sqlx::Error },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotFound(String),
    /// A value a user gave that cannot be stored; the message says what is allowed.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A helpdesk as registered in the database.
#[derive(Debug, Clone)]
pub struct RegisteredHelpdesk {
    pub id: i64,
    pub config: Helpdesk,
    pub default_agent_id: i64,
    pub manager_id: Option<i64>,
    pub assignee_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    data_dir: PathBuf,
    /// The database file, for [`writer::Writer`]s; `None` in memory.
    file: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    /// `data_dir` holds attachments.
    pub async fn open(url: &str, data_dir: &Path) -> Result<Self> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let filename = options.get_filename();
        let file = (filename.as_os_str() != ":memory:").then(|| filename.to_path_buf());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool,
            data_dir: data_dir.to_path_buf(),
            file,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A transaction that writes. SQLite's default (deferred) transaction that reads
    /// first fails with "database is locked" when another connection writes meanwhile,
    /// without waiting; taking the write lock up front waits its turn (busy_timeout).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Makes sure each helpdesk, its default agent, manager and assignee exist.
    pub async fn register_helpdesks(
        &self,
        helpdesks: &[Helpdesk],
    ) -> Result<Vec<RegisteredHelpdesk>> {
        let helpdesks = helpdesks.to_vec();
        self.write(move |tx| {
            let mut registered = Vec::new();
            for hd in helpdesks {
                let s = &hd.settings;
                tx.prepare_cached(
                    "INSERT INTO helpdesks (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
                )?
                .execute([&s.name])?;
                let id: i64 = tx
                    .prepare_cached("SELECT id FROM helpdesks WHERE name = ?1")?
                    .query_row([&s.name], |r| r.get(0))?;
                let default_agent_id = ensure_agent(tx, &s.default_agent)?;
                let manager_id = match &s.defaults.manager {
                    Some(m) => Some(ensure_agent(tx, m)?),
                    None => None,
                };
                let assignee_id = match &s.defaults.assignee {
                    Some(a) => Some(ensure_agent(tx, a)?),
                    None => None,
                };
                registered.push(RegisteredHelpdesk {
                    id,
                    config: hd,
                    default_agent_id,
                    manager_id,
                    assignee_id,
                });
            }
            Ok(registered)
        })
        .await
    }
}

/// The agent named `name_or_email`, created when missing (an `@` makes it the email too).
pub(crate) fn ensure_agent(conn: &rusqlite::Connection, name_or_email: &str) -> Result<i64> {
    use rusqlite::OptionalExtension;
    let email = name_or_email
        .contains('@')
        .then(|| name_or_email.to_ascii_lowercase());
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM agents WHERE name = ?1 OR email = ?2")?
        .query_row(rusqlite::params![name_or_email, email], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO agents (name, email, created_at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![name_or_email, email, now()])?;
    Ok(conn.last_insert_rowid())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
