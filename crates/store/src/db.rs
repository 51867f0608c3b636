//! The one way to the database, on either engine: where the connections are (a
//! SQLite file with a small pool of readers, or a PostgreSQL server with a pool),
//! how work runs on them (reads on a pooled connection, [`Store::read`]; writes in
//! one transaction on a writer, [`Store::write`], see `writer`), and the migrations
//! that bring a schema up to date. The table modules write their SQL against the
//! `engine` handle and give the other crates typed functions, never a connection.
//!
//! Why synchronous drivers (rusqlite, and the sync `postgres` client): intake's writer
//! is synchronous by measure (through an async driver's worker thread each statement
//! cost two thread hand-offs, more than SQLite's own work), and both engines then share
//! one shape of handle, one error and one placeholder dialect. The PostgreSQL driver
//! was chosen by measurement (bench/pg-drivers/README.md).
//!
//! Migrations are SQL files per engine (`migrations/sqlite`, `migrations/postgres`,
//! compared by tests/schema_parity.rs), embedded at build time and recorded in the
//! table `_sqlx_migrations` (the name and layout of the runner used before, so existing
//! databases carry on). A database migrated by a newer postdesk is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha384};

use crate::engine::postgres::Pool;
use crate::engine::{Db, Dialect, OptionalExtension, connect_sqlite as connect, params};
use crate::operations::ConnectionUse;
use crate::{Result, Store, StoreError};

/// One migration: its name (the file's, which starts with its version) and SQL.
pub(crate) struct Migration {
    pub description: &'static str,
    pub sql: &'static str,
}

/// `migrations!(["0001_core", …])`: each engine's migrations, numbered from 1, from
/// the files `migrations/<engine>/0001_core.sql`…: one list, so the engines cannot
/// differ in which migrations they have.
macro_rules! migrations {
    ($($file:literal),* $(,)?) => {
        /// SQLite's migrations, in order.
        pub(crate) const MIGRATIONS: &[Migration] = &migrations!(@list "sqlite" $($file)*);
        /// PostgreSQL's, the same.
        pub(crate) const POSTGRES_MIGRATIONS: &[Migration] = &migrations!(@list "postgres" $($file)*);
    };
    (@list $engine:literal $($file:literal)*) => {
        [$(Migration {
            description: $file,
            sql: include_str!(concat!("../migrations/", $engine, "/", $file, ".sql")),
        }),*]
    };
}

// A new migration is added here and as a file in both folders.
migrations![
    "0001_core",
    "0002_rules",
    "0003_mailboxes",
    "0004_outbox",
    "0005_oauth",
    "0006_web",
    "0007_intake_mail_key",
    "0008_contact_events",
    "0009_sign_in_limits_and_tokens",
    "0010_entry_fidelity",
    "0011_api_mailboxes",
    "0012_deadlines",
    "0013_portal",
    "0014_toast_storage",
    "0015_leases",
    "0016_search",
    "0017_lists",
    "0018_mailbox_subscriptions",
    "0019_list_filters",
    "0020_intake_cost",
    "0021_page_jumps",
];

/// What a migration does in Rust after its SQL, in the same transaction: 0016 writes
/// every ticket's search document (the tokenizer is Rust, see `search`).
fn rust_step(description: &str) -> Option<fn(&Db) -> Result<()>> {
    match description {
        "0016_search" => Some(crate::search::build_all),
        _ => None,
    }
}

impl Migration {
    /// The version is the file's leading number.
    pub(crate) fn version(&self) -> i64 {
        self.description
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

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

/// What opening a store does with a schema older than the binary's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Applies the missing migrations (`auto_migrate = true`, and `postdesk db migrate`).
    Migrate,
    /// Refuses the database until `postdesk db migrate` has run.
    MustBeCurrent,
}

/// The schema versions before and after opening a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersions {
    /// None for a database postdesk has never migrated.
    pub before: Option<i64>,
    pub after: i64,
}

/// Creates the file when missing, switches it to write-ahead logging and brings its
/// schema up to date (or checks that it is, see [`Schema`]).
///
/// Two processes doing this to a new file at once can meet where SQLite answers
/// "database is locked" at once instead of waiting (one switching the file to
/// write-ahead logging while the other reads its header: waiting could deadlock).
/// Each step is safe to run again, so that answer is retried for up to 10 s.
pub(crate) fn create_and_migrate(path: &Path, schema: Schema) -> Result<SchemaVersions> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let attempt = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(StoreError::from)
        .and_then(|conn| {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            bring_up_to_date(&Db::sqlite(&conn), MIGRATIONS, schema)
        });
        match attempt {
            Err(StoreError::Sqlite(e)) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether SQLite refused for another connection's lock.
fn is_locked(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// [`migrate`], or with [`Schema::MustBeCurrent`] only the check that nothing is missing.
pub(crate) fn bring_up_to_date(
    db: &Db,
    migrations: &[Migration],
    schema: Schema,
) -> Result<SchemaVersions> {
    let before = applied_version(db)?;
    let binary = migrations.last().map_or(0, Migration::version);
    if schema == Schema::MustBeCurrent && before.unwrap_or(0) < binary {
        return Err(StoreError::SchemaBehind {
            database: before.unwrap_or(0),
            binary,
        });
    }
    migrate(db, migrations)?;
    Ok(SchemaVersions {
        before,
        after: applied_version(db)?.unwrap_or(0),
    })
}

/// The ledger of applied migrations. Its checksum column is a BLOB on SQLite and a
/// BYTEA on PostgreSQL; everything else is written alike.
fn migrations_table(db: &Db) -> &'static str {
    match db.dialect() {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                success BOOLEAN NOT NULL,
                checksum BLOB NOT NULL,
                execution_time BIGINT NOT NULL
            );"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
                success BOOLEAN NOT NULL,
                checksum BYTEA NOT NULL,
                execution_time BIGINT NOT NULL
            );"
        }
    }
}

/// The newest migration applied to the database, if any.
pub(crate) fn applied_version(db: &Db) -> Result<Option<i64>> {
    let newest = || {
        db.prepare_cached("SELECT MAX(version) FROM _sqlx_migrations")?
            .query_row((), |r| r.get(0))
    };
    // Read without a lock where the ledger exists (every start after the first), so
    // opening never waits for a writer (a running import) it does not need.
    if let Ok(version) = newest() {
        return Ok(version);
    }
    migrating(db, || {
        db.execute_batch(migrations_table(db))?;
        newest()
    })
}

/// The PostgreSQL advisory lock that migrations run under.
const MIGRATION_LOCK: i64 = 0x7064_6d67; // the letters p d m g

/// Runs `f` in a transaction that has the schema to itself (SQLite's write lock,
/// waiting its turn; PostgreSQL's advisory lock for migrations), committed when `f`
/// succeeds. Two processes opening a new database at once take turns: the second
/// finds the first one's migrations applied instead of applying them again.
fn migrating<T>(db: &Db, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match db.dialect() {
        Dialect::Sqlite => db.execute_batch("BEGIN IMMEDIATE")?,
        Dialect::Postgres => {
            db.execute_batch("BEGIN")?;
            let locked = db
                .prepare_cached("SELECT pg_advisory_xact_lock(?1)")
                .and_then(|mut lock| lock.query_row([MIGRATION_LOCK], |_| Ok(())));
            if let Err(e) = locked {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    match f() {
        Ok(value) => {
            db.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(e) => {
            let _ = db.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Applies the migrations the database does not have yet, each in its own transaction.
pub(crate) fn migrate(db: &Db, migrations: &[Migration]) -> Result<()> {
    let newest_known = migrations.last().map_or(0, Migration::version);
    if let Some(applied) = applied_version(db)?
        && applied > newest_known
    {
        return Err(StoreError::SchemaTooNew {
            database: applied,
            binary: newest_known,
        });
    }
    for m in migrations {
        // Checked without a lock first: opening an up-to-date database takes none.
        if !is_applied(db, m)? {
            migrating(db, || apply_unless_applied(db, m))?;
        }
    }
    Ok(())
}

/// Whether the database has `m` applied, as it is; an error when it was changed since
/// or failed.
fn is_applied(db: &Db, m: &Migration) -> Result<bool> {
    let version = m.version();
    let checksum = Sha384::digest(m.sql.as_bytes()).to_vec();
    let applied: Option<(bool, Vec<u8>)> = db
        .prepare_cached("SELECT success, checksum FROM _sqlx_migrations WHERE version = ?1")?
        .query_row([version], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match applied {
        Some((true, stored)) if stored == checksum => Ok(true),
        Some((true, _)) => Err(StoreError::Migrate(format!(
            "migration {version} ({}) was changed after it was applied to this database",
            m.description
        ))),
        Some((false, _)) => Err(StoreError::Migrate(format!(
            "migration {version} ({}) failed earlier and left the database half-migrated; restore a backup",
            m.description
        ))),
        None => Ok(false),
    }
}

/// Applies `m` unless the database has it already (checked inside the caller's
/// transaction, so another process cannot apply it in between).
fn apply_unless_applied(db: &Db, m: &Migration) -> Result<()> {
    if is_applied(db, m)? {
        return Ok(());
    }
    let version = m.version();
    let checksum = Sha384::digest(m.sql.as_bytes()).to_vec();
    let started = std::time::Instant::now();
    db.execute_batch(m.sql)
        .and_then(|()| rust_step(m.description).map_or(Ok(()), |step| step(db)))
        .and_then(|()| {
            db.prepare_cached(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (?1, ?2, TRUE, ?3, ?4)",
            )?
            .execute(params![
                version,
                m.description,
                checksum,
                started.elapsed().as_nanos() as i64
            ])
        })
        .map(|_| ())
        .map_err(|e| StoreError::Migrate(format!("migration {version} ({}): {e}", m.description)))
}

/// A write transaction in progress, as the other crates hold it: they hand it to the
/// store's functions to add to the same commit, and cannot run SQL on it themselves.
#[derive(Clone, Copy)]
pub struct Tx<'c> {
    db: Db<'c>,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(db: Db<'c>) -> Self {
        Self { db }
    }

    pub(crate) fn conn(self) -> Db<'c> {
        self.db
    }
}

/// The read connections of a SQLite store: at most [`Readers::size`] at once, each
/// opened on first need and then kept for good (its page cache and prepared
/// statements stay warm). A read first waits for a permit, asynchronously and in
/// turn, at most [`Readers::WAIT`] (then [`StoreError::Busy`], a 503 on the web), and
/// only then takes a thread of its own.
///
/// Before, any number of reads ran at once, each on its own blocking thread, and only
/// four connections were kept idle: under 32 agents on two cores, 32 threads shared
/// the cores and most reads opened a cold connection (issue 19). More connections
/// than cores buy nothing for reads that only use the CPU; twice the cores lets one
/// read wait for the disk while another computes.
#[derive(Debug)]
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<tokio::sync::Semaphore>,
    size: usize,
}

/// How much of the database file a reader maps (bytes): all of it, as far as it goes.
/// SQLite maps the file's size only, and at most `SQLITE_MAX_MMAP_SIZE`, which is 2 GB
/// unless raised where SQLite is compiled (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`).
/// What is not mapped is read with a system call and copied per page: with the first
/// GiB mapped, the load bench at 1,000,000 tickets (a 3.8 GB file) served 498–629
/// requests/s, with all of it 728–888 (issue 19).
pub(crate) const READER_MMAP: i64 = 1 << 40;

impl Default for Readers {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let size = (cores * 2).clamp(4, 16);
        Self {
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(tokio::sync::Semaphore::new(size)),
            size,
        }
    }
}

impl Readers {
    /// How long a read waits for a connection before it is refused as busy.
    const WAIT: Duration = Duration::from_secs(10);

    /// A permit to read: one of the `size` connections is then free for the holder.
    /// It moves with the read onto its thread, so a request given up while its read
    /// runs still holds the connection until the read ends.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let permits = Arc::clone(&self.permits);
        match tokio::time::timeout(Self::WAIT, permits.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::Busy("the store is closed".into())),
            Err(_) => Err(StoreError::Busy(format!(
                "all {} database readers stayed in use for {:.1} s",
                self.size,
                Self::WAIT.as_secs_f64()
            ))),
        }
    }

    /// An idle connection, or a new one (the caller holds a permit, so at most `size`
    /// are open).
    fn take(&self, path: &Path) -> Result<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                // Reads the file through a memory map instead of copying each page
                // out of the kernel's cache: under 32 agents the copies (`pread`)
                // were almost half of serve's CPU time (issue 19). The mapped pages
                // are the kernel's cache, shared by every reader (they count in the
                // process's RSS as file pages, not as its own memory).
                conn.execute_batch(&format!("PRAGMA mmap_size = {READER_MMAP};"))?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    pub(crate) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// Where the store's data is, and the connections kept to it.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite { file: PathBuf, readers: Readers },
    Postgres { pool: Arc<Pool> },
}

/// Connections a PostgreSQL store keeps open at most: enough for the web's requests
/// and intake at once on a small machine; more wait ([`Pool`]).
const POSTGRES_CONNECTIONS: usize = 16;

impl Backend {
    /// Connects to the database `url` names (`sqlite://FILE` or `postgres://…`),
    /// creating a SQLite file when missing, and brings its schema up to date (or
    /// checks that it is, see [`Schema`]).
    pub(crate) fn open(url: &str, schema: Schema) -> Result<(Self, SchemaVersions)> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = Pool::new(url, POSTGRES_CONNECTIONS);
            let conn = pool.take()?;
            let versions = bring_up_to_date(&Db::postgres(&conn), POSTGRES_MIGRATIONS, schema)?;
            pool.give_back(conn);
            let pool = Arc::new(pool);
            return Ok((Self::Postgres { pool }, versions));
        }
        let file = sqlite_path(url)?.ok_or_else(|| StoreError::Url {
            url: url.to_string(),
            reason: "an in-memory database would lose every ticket; name a file".into(),
        })?;
        let versions = create_and_migrate(&file, schema)?;
        let readers = Readers::default();
        Ok((Self::Sqlite { file, readers }, versions))
    }

    pub(crate) fn close(&self) {
        match self {
            Self::Sqlite { readers, .. } => readers.close(),
            Self::Postgres { pool } => pool.close(),
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
        self.write(move |tx| work(Tx::new(*tx))).await
    }

    /// Runs `work` on a read connection, on a thread where blocking is allowed. What
    /// it reads is one consistent snapshot only inside a transaction it opens itself.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        if let Backend::Sqlite { readers, .. } = self.backend() {
            let asked = Instant::now();
            let permit = readers.permit().await?;
            return tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let Backend::Sqlite { file, readers } = store.backend() else {
                    unreachable!("a store keeps its engine")
                };
                let conn = readers.take(file)?;
                store.waits.note(ConnectionUse::Read, asked);
                let result = work(&Db::sqlite(&conn));
                readers.give_back(conn);
                result
            })
            .await
            .map_err(|e| StoreError::Invalid(format!("a database reader stopped: {e}")))?;
        }
        tokio::task::spawn_blocking(move || match store.backend() {
            Backend::Sqlite { .. } => unreachable!("read above"),
            Backend::Postgres { pool } => {
                let asked = Instant::now();
                let conn = pool.take()?;
                store.waits.note(ConnectionUse::Read, asked);
                let result = work(&Db::postgres(&conn));
                pool.give_back(conn);
                result
            }
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
        for (engine, migrations) in [("sqlite", MIGRATIONS), ("postgres", POSTGRES_MIGRATIONS)] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(engine);
            let mut files: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            let listed: Vec<String> = migrations
                .iter()
                .map(|m| format!("{}.sql", m.description))
                .collect();
            assert_eq!(files, listed, "{engine}");
            for (i, m) in migrations.iter().enumerate() {
                assert_eq!(m.version(), i as i64 + 1, "{engine}");
            }
        }
    }

    /// A reader maps the whole file: SQLite, compiled without `.cargo/config.toml`'s
    /// `LIBSQLITE3_FLAGS`, would quietly map 2 GB at most.
    #[test]
    fn a_reader_maps_the_whole_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        create_and_migrate(&path, Schema::Migrate).unwrap();
        let reader = Readers::default().take(&path).unwrap();
        let mapped: i64 = reader
            .query_row("PRAGMA mmap_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mapped, READER_MMAP);
    }

    #[test]
    fn a_database_migrated_by_a_newer_postdesk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        create_and_migrate(&path, Schema::Migrate).unwrap();
        // Opening again changes nothing.
        create_and_migrate(&path, Schema::Migrate).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (999, 'from the future', TRUE, x'00', 0)",
            [],
        )
        .unwrap();
        let error = migrate(&Db::sqlite(&conn), MIGRATIONS)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("newer postdesk (schema version 999; this one knows up to"),
            "{error}"
        );
    }

    #[test]
    fn a_migration_changed_after_it_was_applied_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let db = Db::sqlite(&conn);
        migrate(&db, &MIGRATIONS[..1]).unwrap();
        let changed = [Migration {
            sql: "CREATE TABLE x (y INTEGER);",
            ..MIGRATIONS[0]
        }];
        let error = migrate(&db, &changed).unwrap_err().to_string();
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
