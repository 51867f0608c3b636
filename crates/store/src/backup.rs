//! The consistent copy of a SQLite store that `postdesk backup` takes while postdesk
//! runs ([`Store::snapshot_into`]), and what `postdesk restore` reads of a copy to check
//! it: its row counts and the attachment files it points at ([`inventory`]), and
//! SQLite's own integrity and foreign-key checks ([`check_integrity`]).
//!
//! The copy is SQLite's `VACUUM INTO`: one read transaction, so it is the database at
//! one moment, taken while intake and the web go on writing (readers never block
//! writers in WAL mode). Attachment files are written, flushed and renamed into place
//! before any row points at them and are never changed or removed, so every file the
//! copy names is on disk when the copy is made: the files are copied after it.
//! PostgreSQL stores are not copied here: `pg_dump` or a base backup does that better.

use std::path::Path;

use rusqlite::OpenFlags;
use serde::{Deserialize, Serialize};

use crate::db::Backend;
use crate::engine::{Db, connect_sqlite};
use crate::{Result, Store, StoreError};

/// The message for a PostgreSQL store, which `postdesk backup` does not copy.
pub const POSTGRES_BACKUP_HINT: &str = "this store is on PostgreSQL: back it up with the server's tools \
     (`pg_dump --format=custom`, or a base backup with WAL archiving for point-in-time recovery), \
     and copy the data folder's `attachments/` beside it";

/// Rows of the tables that matter to users, as a backup's manifest records them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub tickets: i64,
    pub entries: i64,
    /// Ledger rows: every mail received.
    pub mails: i64,
    pub attachments: i64,
    pub contacts: i64,
    pub agents: i64,
    pub outbox: i64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tickets, {} entries, {} mails, {} attachments, {} contacts, {} agents, {} outgoing mails",
            self.tickets,
            self.entries,
            self.mails,
            self.attachments,
            self.contacts,
            self.agents,
            self.outbox
        )
    }
}

/// What a copy of the database holds.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The newest migration applied to it.
    pub schema: i64,
    pub counts: Counts,
    /// The SHA-256 (hex) of every attachment file its rows point at, each once, sorted.
    pub attachment_files: Vec<String>,
}

impl Store {
    /// Writes a consistent copy of the database to `dest` (which must not exist),
    /// while other work goes on. Refused on PostgreSQL ([`POSTGRES_BACKUP_HINT`]).
    pub async fn snapshot_into(&self, dest: &Path) -> Result<()> {
        if let Backend::Postgres { .. } = self.backend() {
            return Err(StoreError::Invalid(POSTGRES_BACKUP_HINT.into()));
        }
        let dest = dest.to_str().map(str::to_owned).ok_or_else(|| {
            StoreError::Invalid(format!(
                "the backup's path {} is not valid UTF-8",
                dest.display()
            ))
        })?;
        self.read(move |conn| conn.prepare("VACUUM INTO ?1")?.execute([dest]).map(drop))
            .await
    }
}

/// The SQLite file a `database_url` names; an error for PostgreSQL (with
/// [`POSTGRES_BACKUP_HINT`]) and for an in-memory database.
pub fn sqlite_file(url: &str) -> Result<std::path::PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::Invalid(POSTGRES_BACKUP_HINT.into()));
    }
    crate::db::sqlite_path(url)?.ok_or_else(|| StoreError::Url {
        url: url.to_string(),
        reason: "an in-memory database has nothing to restore into; name a file".into(),
    })
}

/// Reads a copy's counts and attachment files, opening it read-only.
pub fn inventory(file: &Path) -> Result<Inventory> {
    let conn = connect_sqlite(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let db = Db::sqlite(&conn);
    let count = |table: &str| -> Result<i64> {
        db.prepare(&format!("SELECT COUNT(*) FROM {table}"))?
            .query_row((), |r| r.get(0))
    };
    let counts = Counts {
        tickets: count("tickets")?,
        entries: count("entries")?,
        mails: count("intake")?,
        attachments: count("attachments")?,
        contacts: count("contacts")?,
        agents: count("agents")?,
        outbox: count("outbox")?,
    };
    let schema: Option<i64> = db
        .prepare("SELECT MAX(version) FROM _sqlx_migrations")?
        .query_row((), |r| r.get(0))?;
    let attachment_files = db
        .prepare(
            "SELECT DISTINCT sha256 FROM attachments WHERE sha256 IS NOT NULL ORDER BY sha256",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()?;
    Ok(Inventory {
        schema: schema.unwrap_or(0),
        counts,
        attachment_files,
    })
}

/// SQLite's integrity check and foreign-key check of a copy: `Err` with what they found.
pub fn check_integrity(file: &Path) -> Result<()> {
    let conn = connect_sqlite(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let db = Db::sqlite(&conn);
    let problems: Vec<String> = db
        .prepare("PRAGMA integrity_check")?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()?;
    if problems != ["ok"] {
        return Err(StoreError::Invalid(format!(
            "the database copy is damaged: {}",
            problems.join("; ")
        )));
    }
    let orphans: Vec<String> = db
        .prepare("PRAGMA foreign_key_check")?
        .query_map((), |r| {
            Ok(format!(
                "{} row {} points at a missing {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                r.get::<_, String>(2)?
            ))
        })?
        .take(5)
        .collect::<Result<_>>()?;
    if !orphans.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the database copy is inconsistent: {}",
            orphans.join("; ")
        )));
    }
    Ok(())
}
