//! The ticket store: SQLite through sqlx (SQL kept portable for PostgreSQL),
//! migrations, the intake ledger and the transaction that applies a mail.

pub mod access;
pub mod blobs;
pub mod desk;
pub mod ingest;
pub mod mailboxes;
pub mod outbox;
pub mod read;
mod rules;
mod simulate;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postdesk_core::settings::Helpdesk;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use ingest::{Batch, IncomingMail, IngestReport, Outcome, StoredAttachment};
pub use simulate::{DryRun, TicketBrief};

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
        let mut tx = self.begin_write().await?;
        let mut registered = Vec::new();
        for hd in helpdesks {
            let s = &hd.settings;
            sqlx::query("INSERT INTO helpdesks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(&s.name)
                .execute(&mut *tx)
                .await?;
            let id: i64 = sqlx::query_scalar("SELECT id FROM helpdesks WHERE name = $1")
                .bind(&s.name)
                .fetch_one(&mut *tx)
                .await?;
            let default_agent_id = ensure_agent(&mut tx, &s.default_agent).await?;
            let manager_id = match &s.defaults.manager {
                Some(m) => Some(ensure_agent(&mut tx, m).await?),
                None => None,
            };
            let assignee_id = match &s.defaults.assignee {
                Some(a) => Some(ensure_agent(&mut tx, a).await?),
                None => None,
            };
            registered.push(RegisteredHelpdesk {
                id,
                config: hd.clone(),
                default_agent_id,
                manager_id,
                assignee_id,
            });
        }
        tx.commit().await?;
        Ok(registered)
    }
}

/// The agent named `name_or_email`, created when missing (an `@` makes it the email too).
pub(crate) async fn ensure_agent(
    tx: &mut sqlx::SqliteConnection,
    name_or_email: &str,
) -> Result<i64> {
    let email = name_or_email
        .contains('@')
        .then(|| name_or_email.to_ascii_lowercase());
    if let Some(row) = sqlx::query("SELECT id FROM agents WHERE name = $1 OR email = $2")
        .bind(name_or_email)
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?
    {
        return Ok(row.get(0));
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO agents (name, email, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name_or_email)
    .bind(email)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
