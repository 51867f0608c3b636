//! The one way to the database: rusqlite connections to the database file, used on
//! threads where blocking is allowed. Reads take a connection from a small pool
//! ([`Store::read`]); writes run in one transaction on a writer ([`Store::write`],
//! see `writer`). The table modules write their SQL against these and give the other
//! crates typed functions, never a connection.
//!
//! Why rusqlite and not an async driver: intake's writer is synchronous by measure
//! (through sqlx's worker thread each statement cost two thread hand-offs, more than
//! SQLite's own work), and one driver for every query keeps one set of types, one
//! error and one placeholder dialect. SQL is written with numbered placeholders
//! (`?1`), which a PostgreSQL engine maps to `$1` one-for-one; that engine is to come
//! under these same two entry points.
//!
//! Migrations are SQL files embedded at build time and recorded in the table
//! `_sqlx_migrations` (the name and layout of the runner used before, so existing
//! databases carry on). A database migrated by a newer postdesk is refused.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha384};

use crate::{Result, Store, StoreError};

/// One migration: its version, name and SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// `migration!(1, "0001_core")`: version 1, the file `migrations/sqlite/0001_core.sql`.
macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            description: $file,
            sql: include_str!(concat!("../migrations/sqlite/", $file, ".sql")),
        }
    };
}

/// Every migration, in order. A new one is added here and as a file beside the others.
pub(crate) const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_core"),
    migration!(2, "0002_rules"),
    migration!(3, "0003_mailboxes"),
    migration!(4, "0004_outbox"),
    migration!(5, "0005_oauth"),
    migration!(6, "0006_web"),
    migration!(7, "0007_intake_mail_key"),
    migration!(8, "0008_contact_events"),
    migration!(9, "0009_sign_in_limits_and_tokens"),
    migration!(10, "0010_entry_fidelity"),
];

/// The database file a `sqlite://…` URL names; `None` for an in-memory database.
pub(crate) fn sqlite_path(url: &str) -> Result<Option<PathBuf>> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Url {
            url: url.to_string(),
            reason: "it does not start with `sqlite://`".into(),
        })?;
    // Options after `?` (`mode=rwc`…) were the old driver's; the file is what counts.
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(StoreError::Url {
            url: url.to_string(),
            reason: "it names no file".into(),
        });
    }
    Ok((path != ":memory:").then(|| PathBuf::from(path)))
}

/// Opens a connection to the file with what every connection of postdesk sets.
pub(crate) fn connect(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates the file when missing, switches it to write-ahead logging and brings its
/// schema up to date.
pub(crate) fn create_and_migrate(path: &Path) -> Result<()> {
    let mut conn = connect(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    migrate(&mut conn, MIGRATIONS)
}

/// Applies the migrations the database does not have yet, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )?;
    let newest_known = migrations.last().map_or(0, |m| m.version);
    let newest_applied: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM _sqlx_migrations", [], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    if let Some(applied) = newest_applied
        && applied > newest_known
    {
        return Err(StoreError::SchemaTooNew {
            database: applied,
            binary: newest_known,
        });
    }
    for m in migrations {
        let checksum = Sha384::digest(m.sql.as_bytes()).to_vec();
        let applied: Option<(bool, Vec<u8>)> = conn
            .query_row(
                "SELECT success, checksum FROM _sqlx_migrations WHERE version = ?1",
                [m.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match applied {
            Some((true, stored)) if stored == checksum => continue,
            Some((true, _)) => {
                return Err(StoreError::Migrate(format!(
                    "migration {} ({}) was changed after it was applied to this database",
                    m.version, m.description
                )));
            }
            Some((false, _)) => {
                return Err(StoreError::Migrate(format!(
                    "migration {} ({}) failed earlier and left the database half-migrated; restore a backup",
                    m.version, m.description
                )));
            }
            None => {}
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Migrate(format!("migration {} ({}): {e}", m.version, m.description))
        })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                m.version,
                m.description,
                checksum,
                started.elapsed().as_nanos() as i64
            ],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// A write transaction in progress, as the other crates hold it: they hand it to the
/// store's functions to add to the same commit, and cannot run SQL on it themselves.
#[derive(Clone, Copy)]
pub struct Tx<'c> {
    conn: &'c Connection,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }

    pub(crate) fn conn(self) -> &'c Connection {
        self.conn
    }
}

/// Idle read connections, kept for the next read.
#[derive(Debug, Default)]
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
}

/// Read connections kept idle at most; more may be open while reads run at once.
const IDLE_READERS: usize = 4;

impl Readers {
    fn take(&self, path: &Path) -> Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => Ok(connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
    }

    pub(crate) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl Store {
    /// Runs `work` in one write transaction, committed unless it fails: for the other
    /// crates, which add to it through the store's functions taking a [`Tx`].
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.write(move |tx| work(Tx::new(tx))).await
    }

    /// Runs `work` on a read connection, on a thread where blocking is allowed. What
    /// it reads is one consistent snapshot only inside a transaction it opens itself.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.readers.take(&store.file)?;
            let result = work(&conn);
            store.readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("a database reader stopped: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.description))
            .collect();
        assert_eq!(files, listed);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.description.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn a_database_migrated_by_a_newer_postdesk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        create_and_migrate(&path).unwrap();
        // Opening again changes nothing.
        create_and_migrate(&path).unwrap();
        let mut conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (999, 'from the future', TRUE, x'00', 0)",
            [],
        )
        .unwrap();
        let error = migrate(&mut conn, MIGRATIONS).unwrap_err().to_string();
        assert!(
            error.contains("newer postdesk (schema version 999; this one knows up to"),
            "{error}"
        );
    }

    #[test]
    fn a_migration_changed_after_it_was_applied_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &MIGRATIONS[..1]).unwrap();
        let changed = [Migration {
            sql: "CREATE TABLE x (y INTEGER);",
            ..MIGRATIONS[0]
        }];
        let error = migrate(&mut conn, &changed).unwrap_err().to_string();
        assert!(
            error.contains("was changed after it was applied"),
            "{error}"
        );
    }

    #[test]
    fn urls_name_a_file() {
        assert_eq!(
            sqlite_path("sqlite://data/p.db?mode=rwc").unwrap(),
            Some(PathBuf::from("data/p.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/p.db").unwrap(),
            Some(PathBuf::from("/var/lib/p.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:").unwrap(), None);
        assert!(sqlite_path("postgres://db/p").is_err());
        assert!(sqlite_path("sqlite://").is_err());
    }
}
