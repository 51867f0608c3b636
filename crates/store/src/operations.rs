//! What operators watch, read through typed functions: whether the database answers
//! with a current schema ([`Store::readiness`], for `/readyz`), the gauges `/metrics`
//! shows (outbox, failed queue, mailboxes: [`Store::operations_gauges`]), and how long
//! work waits for a database connection ([`Store::observe_connection_waits`]).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::OpenFlags;

use crate::db::{Backend, MIGRATIONS, Migration, POSTGRES_MIGRATIONS};
use crate::engine::{Db, connect_sqlite};
use crate::mailboxes::MailboxStatus;
use crate::{Result, Store, StoreError};

/// Whether the store can serve requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The database answered and its schema is the binary's.
    Ready { schema: i64 },
    /// The database answered with an older schema: `postdesk db migrate` is due.
    SchemaBehind { database: i64, binary: i64 },
    /// The database answered with a newer schema than this binary knows.
    SchemaTooNew { database: i64, binary: i64 },
    /// The database did not answer. The detail is for the log, not for the probe's
    /// answer (a PostgreSQL error may name hosts and users).
    Unavailable(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready { .. })
    }
}

/// The gauges of `/metrics` that the database holds.
#[derive(Debug, Clone, Default)]
pub struct OperationsGauges {
    /// Outgoing mails waiting to be sent (first try or retry).
    pub outbox_queued: i64,
    /// Of those, the ones already tried and deferred (a transient failure).
    pub outbox_retrying: i64,
    /// Outgoing mails that failed for good.
    pub outbox_failed: i64,
    /// When the oldest waiting outgoing mail was queued (Unix seconds).
    pub outbox_oldest_queued_at: Option<i64>,
    /// Mails in the failed queue (not dismissed).
    pub failed_queue: i64,
    pub mailboxes: Vec<MailboxStatus>,
}

/// What a connection was wanted for, in [`Store::observe_connection_waits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionUse {
    /// A read ([`Store::read`]): an idle pooled connection, or a new one.
    Read,
    /// A write transaction ([`Store::write`]): the connection and the write lock.
    Write,
}

impl ConnectionUse {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionUse::Read => "read",
            ConnectionUse::Write => "write",
        }
    }
}

/// Hears how long each read and write waited for its connection.
pub type WaitObserver = Arc<dyn Fn(ConnectionUse, Duration) + Send + Sync>;

/// The observer a store's clones share; set once.
#[derive(Default, Clone)]
pub(crate) struct ConnectionWaits(Arc<OnceLock<WaitObserver>>);

impl std::fmt::Debug for ConnectionWaits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionWaits")
            .field("observed", &self.0.get().is_some())
            .finish()
    }
}

impl ConnectionWaits {
    pub(crate) fn note(&self, what: ConnectionUse, since: Instant) {
        if let Some(observer) = self.0.get() {
            observer(what, since.elapsed());
        }
    }
}

impl Store {
    /// Has `observer` hear how long every read and write waits for its connection
    /// (the pool, SQLite's write lock). Only the first observer set is kept; returns
    /// whether this one was.
    pub fn observe_connection_waits(&self, observer: WaitObserver) -> bool {
        self.waits.0.set(observer).is_ok()
    }

    /// Asks the database for its schema version on a connection of its own (on SQLite a
    /// file opened anew, so a file gone or unreadable shows even while pooled
    /// connections still hold it open).
    pub async fn readiness(&self) -> Readiness {
        let store = self.clone();
        let answer = tokio::task::spawn_blocking(move || -> Result<(i64, i64)> {
            match store.backend() {
                Backend::Sqlite { file, .. } => {
                    if !file.exists() {
                        return Err(StoreError::Invalid(format!(
                            "the database file {} is not there",
                            file.display()
                        )));
                    }
                    let conn = connect_sqlite(file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                    Ok((schema_version(&Db::sqlite(&conn))?, newest(MIGRATIONS)))
                }
                Backend::Postgres { pool } => {
                    let conn = pool.take()?;
                    let version = schema_version(&Db::postgres(&conn));
                    pool.give_back(conn);
                    Ok((version?, newest(POSTGRES_MIGRATIONS)))
                }
            }
        })
        .await;
        match answer {
            Ok(Ok((database, binary))) if database == binary => {
                Readiness::Ready { schema: database }
            }
            Ok(Ok((database, binary))) if database < binary => {
                Readiness::SchemaBehind { database, binary }
            }
            Ok(Ok((database, binary))) => Readiness::SchemaTooNew { database, binary },
            Ok(Err(e)) => Readiness::Unavailable(e.to_string()),
            Err(e) => Readiness::Unavailable(format!("the readiness check stopped: {e}")),
        }
    }

    /// The outbox's, the failed queue's and the mailboxes' numbers, each from an index
    /// (the outbox's rows by status, the ledger's by outcome), never a table scan.
    pub async fn operations_gauges(&self) -> Result<OperationsGauges> {
        let mut gauges = self
            .read(|conn| {
                let (outbox_queued, outbox_oldest_queued_at, outbox_retrying) = conn
                    .prepare_cached(
                        "SELECT COUNT(*), MIN(created_at),
                                COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0)
                         FROM outbox WHERE status = 'queued'",
                    )?
                    .query_row((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                let outbox_failed = conn
                    .prepare_cached("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")?
                    .query_row((), |r| r.get(0))?;
                let failed_queue = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM intake WHERE outcome = 'failed' AND dismissed_at IS NULL",
                    )?
                    .query_row((), |r| r.get(0))?;
                Ok(OperationsGauges {
                    outbox_queued,
                    outbox_retrying,
                    outbox_failed,
                    outbox_oldest_queued_at,
                    failed_queue,
                    mailboxes: Vec::new(),
                })
            })
            .await?;
        gauges.mailboxes = self.mailbox_statuses().await?;
        Ok(gauges)
    }
}

fn newest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, Migration::version)
}

/// The newest migration applied, read only (no table is created: a probe writes nothing).
fn schema_version(db: &Db) -> Result<i64> {
    let version: Option<i64> = db
        .prepare_cached("SELECT MAX(version) FROM _sqlx_migrations")?
        .query_row((), |r| r.get(0))?;
    Ok(version.unwrap_or(0))
}
