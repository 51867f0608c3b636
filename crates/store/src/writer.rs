//! The connection that writes, on the thread that owns it: a SQLite connection of its
//! own, or a PostgreSQL connection from the pool. The pipeline's batches (`ingest`) run
//! on one for a whole import; every other change (agents' actions, the outbox,
//! sessions…) runs in one transaction on one through [`Store::write`].
//!
//! Transactions are begun, committed and rolled back with SQL on either engine
//! ([`WriteTx`]), and a mail's savepoint likewise, so that intake's code is one.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use crate::db::Backend;
use crate::engine::Db;
use crate::engine::postgres::{PgConn, Pool};
use crate::operations::ConnectionUse;
use crate::pending::Pending;
use crate::{Result, Store, StoreError};
use postdesk_core::id::HelpdeskId;

/// A connection of its own to the database file, for one thread at a time.
///
/// Its page cache is 8 MiB instead of SQLite's 2: the ledger's and entries'
/// Message-ID and hash indexes stay cached while the bodies of a batch stream past
/// them, which saved a tenth of an import's time.
///
/// SQLite's automatic checkpoint is off on it: copying the write-ahead log into
/// the database would otherwise run on this connection after every commit, while
/// the writer is the one stage of the pipeline that cannot be spread over cores.
/// [`Store::checkpoint`] does it from another connection instead, which only ever
/// catches up with the commit before the one in progress. While the writer is
/// never idle, SQLite then never finds the whole log copied when a transaction
/// starts, and appends to it for good: at 100,000 mails it grew to 1 GB, and every
/// page written to a new part of the file costs the kernel a block and a zeroed
/// page (a tenth of the import's CPU). So past [`WAL_PAGES_LIMIT`] the writer waits
/// for that checkpoint and copies the rest itself, and its next transaction starts
/// the log again from the beginning, over pages the kernel already has.
pub struct Writer {
    conn: WriterConn,
    /// Rows intake's batches write behind on PostgreSQL (see [`crate::pending`]).
    pending: Pending,
}

enum WriterConn {
    Sqlite(Connection),
    /// Given back to its pool when the writer is dropped.
    Postgres(Option<PgConn>, std::sync::Arc<Pool>),
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let WriterConn::Postgres(conn, pool) = &mut self.conn
            && let Some(conn) = conn.take()
        {
            pool.give_back(conn);
        }
    }
}

/// Intake's batches on PostgreSQL first take a transaction-scoped advisory lock per
/// helpdesk they write to: one batch at a time per helpdesk across every instance, as
/// SQLite's write lock gives, so what a batch reads of its helpdesks (the next ticket
/// number, the ledger, the tickets its mails thread to: all kept per helpdesk) stays
/// true until it commits. Instances reading mailboxes of different helpdesks commit
/// side by side. What helpdesks share is contacts: two batches that create the same
/// new contact collide on its address's unique index, the second waits for the first
/// and fails, and is redone mail by mail, finding the contact then.
const INTAKE_LOCK: i64 = 0x7064_696e; // the letters p d i n

/// The advisory lock key of intake into `helpdesk`.
fn intake_lock(helpdesk: HelpdeskId) -> i64 {
    (INTAKE_LOCK << 32) | (helpdesk.get() & 0xffff_ffff)
}

/// 32 MiB of write-ahead log: several of the pipeline's batches.
const WAL_PAGES_LIMIT: i32 = 8192;

thread_local! {
    /// Pages in the write-ahead log after the last commit on this thread.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// SQLite's WAL hook: it cannot carry state, and a connection stays on its thread.
fn note_wal_pages(_: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

impl Writer {
    fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        let conn = crate::engine::connect_sqlite(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0;",
        )?;
        conn.wal_hook(Some(note_wal_pages));
        Ok(Self {
            conn: WriterConn::Sqlite(conn),
            pending: Pending::default(),
        })
    }

    fn db(&self) -> Db<'_> {
        match &self.conn {
            WriterConn::Sqlite(conn) => Db::sqlite(conn),
            WriterConn::Postgres(conn, _) => Db::postgres(
                conn.as_ref()
                    .expect("a writer keeps its connection until dropped"),
            )
            .with_pending(&self.pending),
        }
    }

    /// Copies the write-ahead log into the database once it is past its limit (see
    /// [`Writer`]), waiting for a checkpoint running elsewhere to finish first.
    /// Readers are never waited for: what they still need stays in the log.
    fn restart_long_wal(conn: &Connection) -> Result<()> {
        if WAL_PAGES.get() < WAL_PAGES_LIMIT {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let busy: i64 =
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(0))?;
            if busy == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        WAL_PAGES.set(0);
        Ok(())
    }

    /// A transaction. On SQLite it holds the write lock from its start (`BEGIN
    /// IMMEDIATE`), so what it reads stays true until it commits; it waits its turn
    /// behind other writers (busy timeout) instead of failing with "database is
    /// locked". On PostgreSQL rows are locked as they are written.
    pub(crate) fn transaction(&mut self) -> Result<WriteTx<'_>> {
        let begin = match &self.conn {
            WriterConn::Sqlite(conn) => {
                Self::restart_long_wal(conn)?;
                "BEGIN IMMEDIATE"
            }
            WriterConn::Postgres(..) => "BEGIN",
        };
        let db = self.db();
        // A buffer left by a transaction that ended without its WriteTx is no
        // concern of this one.
        self.pending.finish();
        db.execute_batch(begin)?;
        Ok(WriteTx { db, open: true })
    }

    /// A transaction for one of intake's batches, writing to `helpdesks`: as
    /// [`Writer::transaction`], and on PostgreSQL one batch at a time per helpdesk
    /// across instances ([`INTAKE_LOCK`]), the locks taken in one order.
    pub(crate) fn intake_transaction(
        &mut self,
        helpdesks: &BTreeSet<HelpdeskId>,
    ) -> Result<WriteTx<'_>> {
        let postgres = matches!(self.conn, WriterConn::Postgres(..));
        let tx = self.transaction()?;
        if postgres {
            // Without JIT: a batch's queries read few rows, but on tables filled since
            // their statistics PostgreSQL's estimates ran past `jit_above_cost`, and it
            // compiled each query for 50–100 ms (more CPU than the whole batch's work).
            // Without sequential scans where an index serves, for the same reason: every
            // read of a batch goes by key (ids, Message-IDs, numbers), but on a database
            // filled faster than autovacuum analyzes it (a first import: its first
            // ANALYZE comes a minute after the tables start to fill) PostgreSQL guessed
            // that a list of 128 ids matches most of a table, and read all of `entries`
            // and `tickets` for each batch's search documents, notifications and
            // follow-ups (about a twentieth of the server's CPU in the import bench).
            tx.db
                .prepare_cached(
                    "SELECT set_config('jit', 'off', TRUE), set_config('enable_seqscan', 'off', TRUE)",
                )?
                .query_row((), |_| Ok(()))?;
            for &helpdesk in helpdesks {
                tx.db
                    .prepare_cached("SELECT pg_advisory_xact_lock(?1)")?
                    .query_row([intake_lock(helpdesk)], |_| Ok(()))?;
            }
        }
        Ok(tx)
    }
}

/// A transaction in progress on a writer: committed by [`WriteTx::commit`], rolled back
/// when dropped without.
pub(crate) struct WriteTx<'c> {
    db: Db<'c>,
    open: bool,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn db(&self) -> Db<'c> {
        self.db
    }

    /// Writes rows behind from here on, on PostgreSQL (see [`crate::pending`]), for a
    /// batch of `mails`; SQLite's writer has no buffer.
    pub(crate) fn write_behind(&self, mails: usize) {
        if let Some(pending) = self.db.buffer() {
            pending.activate(mails);
        }
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        // The rows written behind first, on their own: when they fail, the transaction
        // is still rolled back (dropped open).
        self.db.flush()?;
        self.open = false;
        let result = self.db.execute_batch("COMMIT");
        if let Some(pending) = self.db.buffer() {
            pending.finish();
        }
        result
    }

    /// Runs `work` in a savepoint: what it did stays when it succeeds, and only that is
    /// undone when it fails (the transaction goes on). Rows `work` wrote behind are
    /// sent inside the savepoint, so that their errors are the mail's too.
    pub(crate) fn savepoint<T>(&self, work: impl FnOnce(&Db<'c>) -> Result<T>) -> Result<T> {
        self.db.execute_batch("SAVEPOINT one_mail")?;
        match work(&self.db).and_then(|value| self.db.flush().map(|()| value)) {
            Ok(value) => {
                self.db.execute_batch("RELEASE SAVEPOINT one_mail")?;
                Ok(value)
            }
            Err(e) => {
                if let Some(pending) = self.db.buffer() {
                    pending.discard();
                }
                self.db
                    .execute_batch("ROLLBACK TO SAVEPOINT one_mail; RELEASE SAVEPOINT one_mail")?;
                Err(e)
            }
        }
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.db.buffer() {
            // Rolled back: nothing waiting may reach the database.
            pending.finish();
        }
        if self.open {
            // Nothing to do if it fails: the connection is then closed, and with it
            // the transaction.
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

impl Store {
    /// A writer on the database file (see [`Writer`]).
    pub fn writer(&self) -> Result<Writer> {
        match self.backend() {
            Backend::Sqlite { file, .. } => Writer::open_sqlite(file),
            Backend::Postgres { pool } => Ok(Writer {
                conn: WriterConn::Postgres(Some(pool.take()?), pool.clone()),
                pending: Pending::default(),
            }),
        }
    }

    /// Runs `work` in one write transaction on a writer, on a thread where blocking
    /// is allowed, and commits what it did unless it fails. A checkpoint follows.
    pub(crate) async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let asked = Instant::now();
            let mut writer = store.writer()?;
            let tx = writer.transaction()?;
            store.waits.note(ConnectionUse::Write, asked);
            let value = work(&tx.db())?;
            tx.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the database writer stopped: {e}")))?;
        if result.is_ok() {
            self.checkpoint().await?;
        }
        result
    }

    /// What follows a bulk load (a seed): SQLite's log is checkpointed, PostgreSQL's
    /// tables are vacuumed and analysed (see [`vacuum_analyze`]).
    pub async fn settle_after_bulk_load(&self) -> Result<()> {
        match self.backend() {
            Backend::Sqlite { .. } => self.checkpoint().await,
            Backend::Postgres { .. } => self.read(vacuum_analyze).await,
        }
    }

    /// Copies what the write-ahead log holds into the database, without waiting for
    /// or blocking readers and the writer (SQLite's PASSIVE checkpoint); run it on
    /// the side while a [`Writer`] imports.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Backend::Postgres { .. } = self.backend() {
            return Ok(()); // the server checkpoints on its own
        }
        self.read(|conn| {
            conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
                .query_row((), |_| Ok(()))
        })
        .await
    }
}

/// `VACUUM (ANALYZE)` after a bulk load into PostgreSQL (a seed, `db copy`), as after a
/// restore. Until autovacuum comes by, the planner has no statistics, the GIN index's
/// pending list holds the newest documents (every search reads it whole) and every
/// index scan visits the table to learn what is visible. The load bench at 20,000
/// tickets served 252–314 requests/s straight after seeding and 384 once vacuumed, a
/// search alone 14–26 ms and 9.9 ms (issue 19). Not on SQLite: its planner is steered
/// by the SQL (`desk`'s plan tests hold it), which statistics could overrule.
pub(crate) fn vacuum_analyze(db: &Db) -> Result<()> {
    db.execute_batch("VACUUM (ANALYZE)")
}
