//! The connection that writes: rusqlite, synchronous, on the thread that owns it. The
//! pipeline's batches (`ingest`) run on one for a whole import; every other change
//! (agents' actions, the outbox, sessions…) runs in one transaction on one through
//! [`Store::write`].

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::engine::Db;
use crate::{Result, Store, StoreError};

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
    conn: Connection,
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
    fn open(path: &std::path::Path) -> Result<Self> {
        let conn = crate::engine::connect_sqlite(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0;",
        )?;
        conn.wal_hook(Some(note_wal_pages));
        Ok(Self { conn })
    }

    /// Copies the write-ahead log into the database once it is past its limit (see
    /// [`Writer`]), waiting for a checkpoint running elsewhere to finish first.
    /// Readers are never waited for: what they still need stays in the log.
    fn restart_long_wal(&self) -> Result<()> {
        if WAL_PAGES.get() < WAL_PAGES_LIMIT {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(0))?;
            if busy == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        WAL_PAGES.set(0);
        Ok(())
    }

    /// A transaction that holds the write lock from its start (`BEGIN IMMEDIATE`), so
    /// what it reads stays true until it commits; it waits its turn behind other
    /// writers (busy timeout) instead of failing with "database is locked".
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.restart_long_wal()?;
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

impl Store {
    /// A writer on the database file (see [`Writer`]).
    pub fn writer(&self) -> Result<Writer> {
        Writer::open(&self.file)
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
            let mut writer = store.writer()?;
            let tx = writer.transaction()?;
            let value = work(&Db::sqlite(&tx))?;
            tx.commit().map_err(StoreError::from)?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the database writer stopped: {e}")))?;
        if result.is_ok() {
            self.checkpoint().await?;
        }
        result
    }

    /// Copies what the write-ahead log holds into the database, without waiting for
    /// or blocking readers and the writer (SQLite's PASSIVE checkpoint); run it on
    /// the side while a [`Writer`] imports.
    pub async fn checkpoint(&self) -> Result<()> {
        self.read(|conn| conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(())))
            .await
    }
}
