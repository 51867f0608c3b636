//! The ticket store on SQLite (rusqlite) or PostgreSQL (the sync `postgres` client)
//! behind one handle (`engine`; see `db` for why these drivers), its migrations, and one
//! module per table that owns that table's SQL: `ledger` (intake), `tickets`,
//! `entries`, `contacts`, `access` (agents, sessions, tokens), `outbox`, `mailboxes`,
//! `deadlines`, `interventions`, `portal`, `notifications`, `leases`, `mailbox_sync`,
//! `search` (the full-text index, rewritten by the others' writes); `ingest` applies a
//! prepared mail through them, `desk` and `read` are the agents' and the CLI's reads and
//! changes, `reports` the weekly reports.

pub mod access;
mod attachments;
// Issue 15: `postdesk db copy`, SQLite to PostgreSQL.
pub mod blobs;
pub mod copy;
// Issue 15: `postdesk check` for the database, step by step.
pub mod check;
pub mod contacts;
mod db;
// Deadlines and their escalation timers (issue 18).
pub mod deadlines;
pub mod desk;
mod engine;
pub mod entries;
mod incoming;
pub mod ingest;
// Interventions linked to tickets (issue 18).
pub mod interventions;
// Issue 15: one reader per mailbox across instances, fenced commits.
pub mod leases;
mod ledger;
pub mod mailboxes;
// Issue 20: the change feeds of Graph and Gmail mailboxes.
pub mod mailbox_sync;
// Change-notification subscriptions of Graph mailboxes (issue 20).
pub mod mailbox_subscriptions;
pub mod outbox;
mod pending;
// Issue 17: the customer portal.
pub mod portal;
// Issue 17: agents' notifications inside the app.
pub mod notifications;
// Issue 19: readiness, the gauges of /metrics, connection waits, backups.
pub mod backup;
pub mod operations;
pub mod read;
// The weekly reports (issue 18).
pub mod reports;
mod rules;
// Issue 19: full-text search on both engines.
pub mod search;
// Issue 19: generated data for benches (`postdesk dev seed`).
pub mod seed;
mod simulate;
mod sql;
// The fuzz targets' entry points, built with the `fuzzing` feature only.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod tickets;
// One "accept any certificate" verifier for the PostgreSQL and IMAP clients.
pub mod tls;
pub mod writer;

use postdesk_core::id::{AgentId, HelpdeskId};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postdesk_core::settings::Helpdesk;

pub use db::{Schema, SchemaVersions, Tx};
pub use engine::postgres::redacted_url;
pub use ingest::{Batch, IncomingMail, IngestReport, Outcome, StoredAttachment};
pub use simulate::{DryRun, Simulator, TicketBrief};
pub use writer::Writer;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {url}: {source}. Check `database_url` and that its folder exists and is writable"
    )]
    Open {
        url: String,
        source: rusqlite::Error,
    },
    #[error("`database_url = \"{url}\"` cannot be used: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(String),
    #[error(
        "the database was migrated by a newer postdesk (schema version {database}; this one knows up to {binary}): run that version, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error(
        "the database schema is at version {database} and this postdesk needs {binary}: run `postdesk db migrate` (or set `auto_migrate = true`)"
    )]
    SchemaBehind { database: i64, binary: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A statement the database refused to prepare: a defect of postdesk's SQL.
    #[error("{source} in: {sql}")]
    Statement {
        sql: String,
        source: Box<StoreError>,
    },
    /// Every database connection stayed in use: the request may be tried again.
    #[error("the database is busy: {0}")]
    Busy(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotFound(String),
    /// A query that was to find one row found none (`.optional()` turns it into `None`).
    #[error("the database has no row where one was expected")]
    NoRow,
    /// A value a user gave that cannot be stored; the message says what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// A change made on a view that is no longer current (someone else changed the
    /// same thing meanwhile); the message says what to do.
    #[error("{0}")]
    Conflict(String),
    /// TLS to the database could not be set up as the URL asks (`sslrootcert`…).
    #[error("TLS to the database: {0}")]
    Tls(String),
    /// `postdesk db copy` refused, or found a difference; the message says what to do.
    #[error("db copy: {0}")]
    Copy(String),
    /// A batch of a leased mailbox whose lease another instance took over since it was
    /// read: nothing of it was written (see `leases`).
    #[error(
        "the lease of mailbox {mailbox} was taken over by another instance (fencing token {token} is no longer valid); the batch was not committed"
    )]
    LeaseLost { mailbox: String, token: i64 },
}

impl StoreError {
    /// The database could not be reached or every connection stayed busy: worth trying
    /// again later (a web request answers 503), not a defect.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Busy(_) => true,
            Self::Postgres(e) => {
                let code = e.as_db_error().map(|d| d.code().code().to_string());
                e.is_closed()
                    || code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
                    || std::error::Error::source(e)
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
            }
            _ => false,
        }
    }

    /// This instance no longer holds the mailbox it was reading (see `leases`).
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What the server said, with its detail and hint: the driver's own text for a server
/// error is only "db error".
fn postgres_message(e: &postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        // The driver's own text is only the kind ("error performing TLS handshake"):
        // the causes say which (an unknown issuer, a server without TLS…).
        return postdesk_core::error::chain(e);
    };
    let mut message = format!("{} ({})", db.message(), db.code().code());
    for extra in [db.detail(), db.hint()].into_iter().flatten() {
        message.push_str("; ");
        message.push_str(extra);
    }
    message
}

pub(crate) use db::MIGRATIONS;

/// A helpdesk as registered in the database.
#[derive(Debug, Clone)]
pub struct RegisteredHelpdesk {
    pub id: HelpdeskId,
    pub config: Helpdesk,
    pub default_agent_id: AgentId,
    pub manager_id: Option<AgentId>,
    pub assignee_id: Option<AgentId>,
}

#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<db::Backend>,
    data_dir: PathBuf,
    waits: operations::ConnectionWaits,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://FILE` or
    /// `postgres://USER@HOST/DATABASE`) and applies migrations. `data_dir` holds
    /// attachments.
    pub async fn open(url: &str, data_dir: &Path) -> Result<Self> {
        Ok(Self::open_with(url, data_dir, Schema::Migrate).await?.0)
    }

    /// [`Self::open`], with what to do about a schema older than the binary's; also
    /// says which schema versions the database had before and has now.
    pub async fn open_with(
        url: &str,
        data_dir: &Path,
        schema: Schema,
    ) -> Result<(Self, SchemaVersions)> {
        let opening = url.to_string();
        let opened = tokio::task::spawn_blocking(move || db::Backend::open(&opening, schema))
            .await
            .map_err(|e| StoreError::Invalid(format!("opening the database stopped: {e}")))?;
        let (backend, versions) = opened.map_err(|e| match e {
            StoreError::Sqlite(source) => StoreError::Open {
                url: url.to_string(),
                source,
            },
            other => other,
        })?;
        let store = Self {
            backend: Arc::new(backend),
            data_dir: data_dir.to_path_buf(),
            waits: operations::ConnectionWaits::default(),
        };
        Ok((store, versions))
    }

    pub(crate) fn backend(&self) -> &db::Backend {
        &self.backend
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Lets the idle connections go.
    pub async fn close(&self) {
        self.backend.close();
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
                let id: HelpdeskId = tx
                    .prepare_cached("SELECT id FROM helpdesks WHERE name = ?1")?
                    .query_row([&s.name], |r| r.get(0))?;
                let default_agent_id = access::ensure_agent(tx, &s.default_agent)?;
                let manager_id = match &s.defaults.manager {
                    Some(m) => Some(access::ensure_agent(tx, m)?),
                    None => None,
                };
                let assignee_id = match &s.defaults.assignee {
                    Some(a) => Some(access::ensure_agent(tx, a)?),
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

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
