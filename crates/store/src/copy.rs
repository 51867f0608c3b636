//! `postdesk db copy`: moving a SQLite store to PostgreSQL, every table of the schema,
//! resumable, verified. This module owns the copy's SQL on both sides and the marker
//! table `_postdesk_copy` on the target.
//!
//! **Which tables.** The list is read from the source's schema (`sqlite_master`), and
//! each table's columns, primary key and foreign keys from SQLite's pragmas; the
//! order follows the foreign keys (a table after those it references). Every table
//! found must be one of [`KNOWN_TABLES`]: a table a later migration adds stops the
//! copy with a message until it is named there (a unit test compares that list with
//! the migrated schema, so the omission shows in CI first). The source and the target
//! must both be at this binary's schema version (the target is migrated first), and
//! each table must have the same columns on both sides.
//!
//! **How.** The source is read in one read transaction (one moment of it; postdesk
//! should be stopped during the copy anyway, or changes made meanwhile are left
//! behind). Each table is read by keyset on its primary key, in batches of at most
//! [`CopyOptions::batch_rows`] rows and about [`BATCH_BYTES`], and written with one
//! multi-row `INSERT … ON CONFLICT DO NOTHING` per batch, explicit ids included, each
//! batch committed on its own. A column that references its own table (a ticket's
//! parent) is written NULL first and set once the whole table is there, so the order
//! of ids never breaks a foreign key. Then every identity sequence is moved past the
//! largest id copied (`setval`), so new rows get new ids.
//!
//! **Resuming.** Run again after an interruption, the copy starts each table with an
//! integer key after the largest key the target already has, and the other tables from
//! their start; rows already there are skipped by the `ON CONFLICT`, so nothing is
//! doubled, and a finished copy run again copies nothing and verifies again.
//!
//! **Whose target.** The target is recognised by a row of `_postdesk_copy` (made by
//! the copy, like `_sqlx_migrations` by the migrations, outside the schema that the
//! migrations describe) holding the source's fingerprint: the SHA-256 of when the
//! source's first migration ran and how many nanoseconds it took, which the source
//! keeps in `_sqlx_migrations` and which no other database shares. A target with rows
//! in any table and no marker, or the marker of another source, is refused before
//! anything is written to it.
//!
//! **Checks.** At the end each table's rows are counted and hashed on both sides: a
//! SHA-256 of each row's values in a form both engines give alike (booleans as 0/1,
//! text as UTF-8, blobs as bytes), summed over the rows, so the order in which each
//! engine returns them (its collation) does not matter. A difference names the table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use postgres::types::{FromSql, IsNull, ToSql, Type, private::BytesMut, to_sql_checked};
use rusqlite::OpenFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use sha2::{Digest, Sha256};

use crate::db::{MIGRATIONS, POSTGRES_MIGRATIONS, Schema, bring_up_to_date, sqlite_path};
use crate::engine::postgres::{PgConn, redacted_url};
use crate::engine::{Db, OptionalExtension, Param, connect_sqlite, params_from_iter};
use crate::{Result, StoreError};

/// Every table of the schema that the copy knows, by name. A table of the source not
/// named here stops the copy (see the module documentation).
pub const KNOWN_TABLES: &[&str] = &[
    "agent_helpdesks",
    "agents",
    "api_tokens",
    "attachments",
    "contact_addresses",
    "contact_events",
    "contacts",
    "deadline_timers",
    "entries",
    "helpdesks",
    "intake",
    "interventions",
    "login_attempts",
    "login_known",
    "mailbox_folders",
    "mailbox_leases",
    "mailbox_status",
    "mailbox_subscriptions",
    "mailbox_sync",
    "notifications",
    "oauth_tokens",
    "organizations",
    "outbox",
    "portal_link_requests",
    "portal_links",
    "portal_sessions",
    "serve_instances",
    "sessions",
    "ticket_deadlines",
    "ticket_participants",
    "ticket_tags",
    "ticket_watchers",
    "tickets",
];

/// Tables the target makes for itself from the copied rows, so never copied: the
/// search index (SQLite's FTS5 table `ticket_search` with its `ticket_search_*` shadow
/// tables; PostgreSQL keeps a tsvector table of the same name) is rebuilt from the
/// copied tickets once they are all there, and `ticket_counts` is kept by the target's
/// triggers as the tickets go in (verified against the source's at the end).
fn is_derived(table: &str) -> bool {
    table == "ticket_counts" || table == "ticket_search" || table.starts_with("ticket_search_")
}

/// The marker table on the target.
const MARKER_TABLE: &str = "_postdesk_copy";

/// About how many bytes of values one batch holds (raw mails make rows large).
pub const BATCH_BYTES: usize = 8 << 20;

/// PostgreSQL's limit of parameters in one statement.
const MAX_PARAMETERS: usize = 65_535;

/// How a copy runs.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Rows per INSERT at most (fewer when the table has many columns or large rows).
    pub batch_rows: usize,
    /// Stop after this many rows were written in this run, leaving the copy unfinished
    /// (tests of resuming; a run stopped any other way resumes the same).
    pub stop_after_rows: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            batch_rows: 500,
            stop_after_rows: None,
        }
    }
}

/// What the copy tells its caller as it goes.
#[derive(Debug, Clone)]
pub enum CopyProgress<'a> {
    /// The target was checked: a new copy, or one resumed (a marker of this source).
    Started { resumed: bool, tables: usize },
    /// Rows of `table` written so far in this run, of `total` in the source.
    Rows {
        table: &'a str,
        written: u64,
        total: u64,
    },
    /// Every table copied; the counts and hashes are being compared.
    Verifying,
}

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    /// Rows in the source (and, once verified, in the target).
    pub rows: u64,
    /// Rows written by this run (the rest were there already).
    pub written: u64,
    /// The content hash both sides agree on (hex), once verified.
    pub hash: Option<String>,
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// A copy of this source was already under way in the target.
    pub resumed: bool,
    /// Every row is there and every count and hash matched; false when stopped early
    /// ([`CopyOptions::stop_after_rows`]).
    pub verified: bool,
    pub tables: Vec<TableCopy>,
}

/// Copies the SQLite store `from` (`sqlite://FILE`) into the PostgreSQL database `to`
/// (`postgres://…`), as the module documentation describes. Blocking: run it on a
/// thread where that is allowed.
pub fn copy_database(
    from: &str,
    to: &str,
    options: CopyOptions,
    progress: &mut dyn FnMut(CopyProgress<'_>),
) -> Result<CopyReport> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(refused(format!(
            "the target {} is not a PostgreSQL URL (postgres://…)",
            redacted_url(to)
        )));
    }
    let path = sqlite_path(from)?.ok_or_else(|| refused("the source names no SQLite file"))?;
    if !path.is_file() {
        return Err(refused(format!(
            "the source {} does not exist",
            path.display()
        )));
    }
    let source_conn = connect_sqlite(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let source = Db::sqlite(&source_conn);
    source.execute_batch("BEGIN")?;
    let result = copy_from(&source, &path, to, options, progress);
    let _ = source.execute_batch("COMMIT");
    result
}

fn copy_from(
    source: &Db,
    path: &Path,
    to: &str,
    options: CopyOptions,
    progress: &mut dyn FnMut(CopyProgress<'_>),
) -> Result<CopyReport> {
    let binary = MIGRATIONS.last().map_or(0, |m| m.version());
    let source_version: Option<i64> = source
        .prepare("SELECT MAX(version) FROM _sqlx_migrations")
        .and_then(|mut s| s.query_row((), |r| r.get(0)))
        .map_err(|e| {
            refused(format!(
                "{} is not a postdesk database ({e})",
                path.display()
            ))
        })?;
    if source_version != Some(binary) {
        return Err(refused(format!(
            "the source is at schema version {} and this postdesk copies version {binary}: run \
             this version's `postdesk db migrate` on the source first (with its database_url)",
            source_version.unwrap_or(0)
        )));
    }
    let fingerprint = fingerprint(source)?;
    let tables = source_tables(source)?;

    let target_conn = PgConn::connect(to).map_err(|e| {
        refused(format!(
            "cannot connect to the target {}: {e}",
            redacted_url(to)
        ))
    })?;
    let target = Db::postgres(&target_conn);
    let resumed = claim_target(&target, &fingerprint)?;
    bring_up_to_date(&target, POSTGRES_MIGRATIONS, Schema::Migrate)?;
    check_target_columns(&target, &tables)?;
    progress(CopyProgress::Started {
        resumed,
        tables: tables.len(),
    });

    let mut budget = options.stop_after_rows;
    let mut reports = Vec::new();
    for table in &tables {
        let total = count(source, &table.name)?;
        let written = copy_table(
            source,
            &target,
            table,
            options,
            &mut budget,
            total,
            progress,
        )?;
        reports.push(TableCopy {
            table: table.name.clone(),
            rows: total,
            written,
            hash: None,
        });
        if budget == Some(0) {
            return Ok(CopyReport {
                resumed,
                verified: false,
                tables: reports,
            });
        }
    }
    for table in &tables {
        set_self_references(source, &target, table, options)?;
        fix_sequence(&target, table)?;
    }
    target.execute_batch("BEGIN")?;
    crate::search::build_all(&target)?;
    target.execute_batch("COMMIT")?;
    crate::writer::vacuum_analyze(&target)?;
    progress(CopyProgress::Verifying);
    let mut mismatches = Vec::new();
    let counts = |db: &Db| -> Result<Vec<(i64, String, i64)>> {
        // Sorted here, not by ORDER BY: the engines' collations order text differently.
        let mut rows = db
            .prepare("SELECT helpdesk_id, status, tickets FROM ticket_counts WHERE tickets <> 0")?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>>>()?;
        rows.sort();
        Ok(rows)
    };
    if counts(source)? != counts(&target)? {
        mismatches.push("ticket_counts: the tickets per status differ".to_string());
    }
    for (table, report) in tables.iter().zip(&mut reports) {
        let (source_rows, source_hash) = content_hash(source, table, options)?;
        let (target_rows, target_hash) = content_hash(&target, table, options)?;
        if source_rows != target_rows {
            mismatches.push(format!(
                "{}: {source_rows} rows in the source, {target_rows} in the target",
                table.name
            ));
        } else if source_hash != target_hash {
            mismatches.push(format!(
                "{}: {source_rows} rows on both sides but their content differs",
                table.name
            ));
        }
        report.rows = source_rows;
        report.hash = Some(source_hash);
    }
    if !mismatches.is_empty() {
        return Err(StoreError::Copy(format!(
            "the copy differs from the source: {}. Rows changed in the target since (or a \
             source changed while an earlier run copied) are not copied again: start from an \
             empty database",
            mismatches.join("; ")
        )));
    }
    target
        .prepare(&format!(
            "UPDATE {MARKER_TABLE} SET verified_at = ?1 WHERE source = ?2"
        ))?
        .execute(crate::engine::params![crate::now(), fingerprint])?;
    Ok(CopyReport {
        resumed,
        verified: true,
        tables: reports,
    })
}

fn refused(message: impl Into<String>) -> StoreError {
    StoreError::Copy(message.into())
}

/// The source's identity (see the module documentation).
fn fingerprint(source: &Db) -> Result<String> {
    let (installed_on, nanos): (Value, Value) = source
        .prepare("SELECT installed_on, execution_time FROM _sqlx_migrations WHERE version = 1")?
        .query_row((), |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut hash = Sha256::new();
    hash.update(b"postdesk db copy source v1\0");
    installed_on.feed(&mut hash);
    nanos.feed(&mut hash);
    Ok(hex::encode(hash.finalize()))
}

/// Decides whether the target may be written: true when it holds a copy of this source
/// already (resume), false when it is empty (a new copy, marked now); an error for any
/// other database. Runs before migrating, so a refused database is left untouched.
fn claim_target(target: &Db, fingerprint: &str) -> Result<bool> {
    let tables: Vec<String> = target
        .prepare(
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             ORDER BY table_name",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()?;
    if tables.iter().any(|t| t == MARKER_TABLE) {
        let sources: Vec<String> = target
            .prepare(&format!("SELECT source FROM {MARKER_TABLE}"))?
            .query_map((), |r| r.get(0))?
            .collect::<Result<_>>()?;
        if sources.iter().any(|s| s == fingerprint) {
            return Ok(true);
        }
        if !sources.is_empty() {
            return Err(refused(
                "the target holds a copy of another database: copy into an empty database \
                 (or drop and create this one again)",
            ));
        }
    }
    for table in tables
        .iter()
        .filter(|t| *t != MARKER_TABLE && *t != "_sqlx_migrations")
    {
        let rows: Option<i64> = target
            .prepare(&format!(
                "SELECT CAST(1 AS BIGINT) FROM {} LIMIT 1",
                quoted(table)
            ))?
            .query_row((), |r| r.get(0))
            .optional()?;
        if rows.is_some() {
            return Err(refused(format!(
                "the target is not empty (table {table} has rows) and is not a copy of this \
                 source under way: copy into an empty database, made with `createdb`"
            )));
        }
    }
    target.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
            source      TEXT PRIMARY KEY,
            started_at  BIGINT NOT NULL,
            verified_at BIGINT
        )"
    ))?;
    target
        .prepare(&format!(
            "INSERT INTO {MARKER_TABLE} (source, started_at) VALUES (?1, ?2)"
        ))?
        .execute(crate::engine::params![fingerprint, crate::now()])?;
    Ok(false)
}

/// A table as the source's schema describes it.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
    /// Primary key columns, in key order.
    key: Vec<String>,
    /// Whether the key is one integer column (resumable from the target's largest).
    integer_key: bool,
    /// Nullable columns referencing this same table, written in a second pass.
    self_references: Vec<String>,
    /// Tables this one references.
    references: BTreeSet<String>,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_list(&self) -> String {
        self.key
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows per INSERT: within PostgreSQL's parameter limit.
    fn batch_rows(&self, options: CopyOptions) -> usize {
        options
            .batch_rows
            .min(MAX_PARAMETERS / self.columns.len().max(1))
            .max(1)
    }

    /// `SELECT columns FROM table [WHERE (key) > (?…)] ORDER BY key LIMIT n`.
    fn keyset_select(&self, after: bool, limit: usize) -> String {
        let mut sql = format!("SELECT {} FROM {}", self.column_list(), quoted(&self.name));
        if after {
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                self.key_list(),
                crate::sql::placeholders(self.key.len())
            ));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", self.key_list()));
        sql
    }

    /// Positions of the key columns among the columns.
    fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| self.columns.iter().position(|c| c == k).unwrap_or(0))
            .collect()
    }
}

/// `"name"`: identifiers come from the schema, quoted all the same.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The source's tables in foreign-key order; an error for a table the copy does not know.
fn source_tables(source: &Db) -> Result<Vec<Table>> {
    let names: Vec<String> = source
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'
             ORDER BY name",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<Vec<String>>>()?
        .into_iter()
        .filter(|name| !is_derived(name))
        .collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !KNOWN_TABLES.contains(&n.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(refused(format!(
            "the source has tables this copy does not know: {}. A migration added them and \
             `db copy` (crates/store/src/copy.rs, KNOWN_TABLES) was not taught them; nothing \
             was copied",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut tables = BTreeMap::new();
    for name in names {
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String, String)> = Vec::new();
        let mut not_null = BTreeSet::new();
        let mut info = source.prepare(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
        )?;
        for row in info.query_map([&name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })? {
            let (column, declared, required, pk) = row?;
            if pk > 0 {
                key.push((pk, column.clone(), declared.to_ascii_uppercase()));
            }
            if required {
                not_null.insert(column.clone());
            }
            columns.push(column);
        }
        key.sort();
        if key.is_empty() {
            return Err(refused(format!(
                "table {name} has no primary key: db copy cannot resume it"
            )));
        }
        let integer_key = key.len() == 1 && matches!(key[0].2.as_str(), "INTEGER" | "BIGINT");
        let mut self_references = Vec::new();
        let mut references = BTreeSet::new();
        let mut fks =
            source.prepare("SELECT \"table\", \"from\" FROM pragma_foreign_key_list(?1)")?;
        for row in fks.query_map([&name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (referenced, column) = row?;
            if referenced == name {
                if not_null.contains(&column) {
                    return Err(refused(format!(
                        "{name}.{column} references its own table and may not be NULL: db copy \
                         cannot order such rows"
                    )));
                }
                self_references.push(column);
            } else {
                references.insert(referenced);
            }
        }
        tables.insert(
            name.clone(),
            Table {
                name,
                columns,
                key: key.into_iter().map(|(_, c, _)| c).collect(),
                integer_key,
                self_references,
                references,
            },
        );
    }
    // Foreign-key order: each table after every table it references.
    let mut ordered: Vec<Table> = Vec::new();
    let mut placed = BTreeSet::new();
    while !tables.is_empty() {
        let ready: Vec<String> = tables
            .values()
            .filter(|t| t.references.iter().all(|r| placed.contains(r)))
            .map(|t| t.name.clone())
            .collect();
        if ready.is_empty() {
            return Err(refused(format!(
                "the foreign keys between {} form a cycle: db copy cannot order them",
                tables.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        for name in ready {
            if let Some(table) = tables.remove(&name) {
                placed.insert(name);
                ordered.push(table);
            }
        }
    }
    Ok(ordered)
}

/// Every table must have the same columns on the target as on the source.
fn check_target_columns(target: &Db, tables: &[Table]) -> Result<()> {
    let mut differences = Vec::new();
    for table in tables {
        let columns: BTreeSet<String> = target
            .prepare(
                "SELECT column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = ?1",
            )?
            .query_map([&table.name], |r| r.get(0))?
            .collect::<Result<_>>()?;
        let source: BTreeSet<String> = table.columns.iter().cloned().collect();
        if columns != source {
            differences.push(format!(
                "{} (source only: {:?}; target only: {:?})",
                table.name,
                source.difference(&columns).collect::<Vec<_>>(),
                columns.difference(&source).collect::<Vec<_>>()
            ));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "the two schemas differ, nothing more was copied: {}",
            differences.join("; ")
        )))
    }
}

fn count(db: &Db, table: &str) -> Result<u64> {
    let n: i64 = db
        .prepare(&format!("SELECT COUNT(*) FROM {}", quoted(table)))?
        .query_row((), |r| r.get(0))?;
    Ok(n as u64)
}

/// Copies the rows of `table` the target lacks; returns how many it wrote. `budget`
/// counts down the rows this run may still write.
fn copy_table(
    source: &Db,
    target: &Db,
    table: &Table,
    options: CopyOptions,
    budget: &mut Option<u64>,
    total: u64,
    progress: &mut dyn FnMut(CopyProgress<'_>),
) -> Result<u64> {
    // Where to start: after the target's largest key when it is one integer (rows go
    // in by key order, each batch committed), else from the start.
    let mut after: Option<Vec<Value>> = if table.integer_key {
        let largest: Option<i64> = target
            .prepare(&format!(
                "SELECT MAX({}) FROM {}",
                table.key_list(),
                quoted(&table.name)
            ))?
            .query_row((), |r| r.get(0))?;
        largest.map(|k| vec![Value::Integer(k)])
    } else {
        None
    };
    if after.is_none() && !table.integer_key && count(target, &table.name)? == total {
        // Every row is there already (verified at the end).
        progress(CopyProgress::Rows {
            table: &table.name,
            written: 0,
            total,
        });
        return Ok(0);
    }
    let limit = table.batch_rows(options);
    let keys = table.key_positions();
    let self_refs: Vec<usize> = table
        .self_references
        .iter()
        .filter_map(|c| table.columns.iter().position(|x| x == c))
        .collect();
    let mut written = 0u64;
    loop {
        let mut batch_limit = limit;
        if let Some(left) = *budget {
            if left == 0 {
                break;
            }
            batch_limit = batch_limit.min(left as usize);
        }
        let rows = read_batch(source, table, after.as_deref(), batch_limit)?;
        if rows.is_empty() {
            break;
        }
        after = rows
            .last()
            .map(|row| keys.iter().map(|&i| row[i].clone()).collect());
        let last_read = rows.len() < batch_limit;
        let mut rows = rows;
        for row in &mut rows {
            for &i in &self_refs {
                row[i] = Value::Null;
            }
        }
        // Within about BATCH_BYTES per statement.
        let mut start = 0;
        while start < rows.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < rows.len() && (end == start || bytes < BATCH_BYTES) {
                bytes += rows[end].iter().map(Value::size).sum::<usize>();
                end += 1;
            }
            insert_rows(target, table, &rows[start..end], end - start == limit)?;
            start = end;
        }
        written += rows.len() as u64;
        if let Some(left) = budget.as_mut() {
            *left -= rows.len() as u64;
        }
        progress(CopyProgress::Rows {
            table: &table.name,
            written,
            total,
        });
        if last_read {
            break;
        }
    }
    if written == 0 {
        progress(CopyProgress::Rows {
            table: &table.name,
            written,
            total,
        });
    }
    Ok(written)
}

/// At most `limit` rows after the key `after`, by key order.
fn read_batch(
    db: &Db,
    table: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Vec<Value>>> {
    let sql = table.keyset_select(after.is_some(), limit);
    let mut statement = db.prepare(&sql)?;
    let values: Vec<Value> = after.map(<[Value]>::to_vec).unwrap_or_default();
    let width = table.columns.len();
    statement
        .query_map(params_from_iter(values), |r| {
            (0..width).map(|i| r.get::<_, Value>(i)).collect()
        })?
        .collect()
}

/// One multi-row INSERT of `rows`, skipping rows whose key is there already.
fn insert_rows(target: &Db, table: &Table, rows: &[Vec<Value>], full: bool) -> Result<()> {
    let row = format!("({})", crate::sql::placeholders(table.columns.len()));
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT DO NOTHING",
        quoted(&table.name),
        table.column_list(),
        vec![row; rows.len()].join(", ")
    );
    let values: Vec<&Value> = rows.iter().flatten().collect();
    // Full batches share one text: kept prepared; the last, shorter one is not.
    let mut statement = if full {
        target.prepare_cached(&sql)?
    } else {
        target.prepare(&sql)?
    };
    statement.execute(params_from_iter(values))?;
    Ok(())
}

/// Sets the columns that reference their own table, which the rows went in without.
fn set_self_references(
    source: &Db,
    target: &Db,
    table: &Table,
    options: CopyOptions,
) -> Result<()> {
    if table.self_references.is_empty() {
        return Ok(());
    }
    let keys = table.key_positions();
    for column in &table.self_references {
        let position = table.columns.iter().position(|c| c == column).unwrap_or(0);
        let condition: Vec<String> = table
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} = ?{}", quoted(k), i + 2))
            .collect();
        let update = format!(
            "UPDATE {} SET {} = ?1 WHERE {} AND {} IS DISTINCT FROM ?1",
            quoted(&table.name),
            quoted(column),
            condition.join(" AND "),
            quoted(column)
        );
        let mut after: Option<Vec<Value>> = None;
        loop {
            let rows = read_batch(source, table, after.as_deref(), table.batch_rows(options))?;
            let Some(last) = rows.last() else { break };
            after = Some(keys.iter().map(|&i| last[i].clone()).collect());
            for row in rows.iter().filter(|r| r[position] != Value::Null) {
                let mut values = vec![&row[position]];
                values.extend(keys.iter().map(|&i| &row[i]));
                target
                    .prepare_cached(&update)?
                    .execute(params_from_iter(values))?;
            }
        }
    }
    Ok(())
}

/// Moves the sequence of an identity column past the largest id copied.
fn fix_sequence(target: &Db, table: &Table) -> Result<()> {
    let identities: Vec<String> = target
        .prepare(
            "SELECT column_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 AND is_identity = 'YES'",
        )?
        .query_map([&table.name], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for column in identities {
        let name = quoted(&column);
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence(?1, ?2), COALESCE(MAX({name}), 1), MAX({name}) IS NOT NULL) FROM {}",
            quoted(&table.name)
        );
        target
            .prepare(&sql)?
            .query_row([&table.name, &column], |_| Ok(()))?;
    }
    Ok(())
}

/// Rows and the content hash (hex) of a table, read by keyset on either engine.
fn content_hash(db: &Db, table: &Table, options: CopyOptions) -> Result<(u64, String)> {
    let keys = table.key_positions();
    let mut sum = [0u64; 4];
    let mut rows_seen = 0u64;
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = read_batch(db, table, after.as_deref(), table.batch_rows(options))?;
        let Some(last) = rows.last() else { break };
        after = Some(keys.iter().map(|&i| last[i].clone()).collect());
        for row in &rows {
            let mut hash = Sha256::new();
            for value in row {
                value.feed(&mut hash);
            }
            let digest = hash.finalize();
            for (lane, chunk) in sum.iter_mut().zip(digest.chunks(8)) {
                let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                *lane = lane.wrapping_add(word);
            }
        }
        rows_seen += rows.len() as u64;
    }
    let mut hex = String::new();
    for lane in sum {
        hex.push_str(&format!("{lane:016x}"));
    }
    Ok((rows_seen, hex))
}

/// One value of a row as both engines give it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    /// Integers and booleans (0/1).
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    /// Adds the value, with its kind, to a row's hash.
    fn feed(&self, hash: &mut Sha256) {
        match self {
            Value::Null => hash.update([0]),
            Value::Integer(i) => {
                hash.update([1]);
                hash.update(i.to_le_bytes());
            }
            Value::Real(r) => {
                hash.update([2]);
                hash.update(r.to_bits().to_le_bytes());
            }
            Value::Text(t) => {
                hash.update([3]);
                hash.update((t.len() as u64).to_le_bytes());
                hash.update(t.as_bytes());
            }
            Value::Blob(b) => {
                hash.update([4]);
                hash.update((b.len() as u64).to_le_bytes());
                hash.update(b);
            }
        }
    }

    fn size(&self) -> usize {
        match self {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            _ => 8,
        }
    }
}

impl rusqlite::types::FromSql for Value {
    fn column_result(value: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(
                String::from_utf8(t.to_vec())
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))?,
            ),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("db copy does not know the column type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(t), &Type::BYTEA) => t.as_bytes().to_sql(ty, out),
            (Value::Text(t), _) if <String as ToSql>::accepts(ty) => t.to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (value, _) => Err(format!(
                "a {} value of the source does not fit a column of type {ty}",
                value.kind()
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

// `Value` is a parameter on both engines.
const _: fn() = || {
    fn is_param<T: Param + ?Sized>() {}
    is_param::<Value>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schema_is_known_to_the_copy() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate(&Db::sqlite(&conn), MIGRATIONS).unwrap();
        let tables = source_tables(&Db::sqlite(&conn)).unwrap();
        let mut names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names, KNOWN_TABLES,
            "a migration added or removed a table: teach db copy (KNOWN_TABLES)"
        );
        // Foreign-key order: tickets before entries, entries before attachments.
        let at = |n: &str| tables.iter().position(|t| t.name == n).unwrap();
        assert!(at("helpdesks") < at("tickets"));
        assert!(at("tickets") < at("entries") && at("entries") < at("attachments"));
        assert!(at("intake") < at("entries"));
        let tickets = &tables[at("tickets")];
        assert_eq!(tickets.self_references, ["parent_id"]);
        assert!(tickets.integer_key);
    }

    #[test]
    fn a_ticket_pointing_at_a_later_one_booleans_and_blobs_copy_and_ids_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.db");
        crate::db::create_and_migrate(&file, Schema::Migrate).unwrap();
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "INSERT INTO helpdesks (id, name) VALUES (7, 'Support');
             INSERT INTO agents (id, name, active, created_at) VALUES (3, 'alice', 0, 1);
             INSERT INTO tickets (id, helpdesk_id, number, title, mail_subject, status,
                 parent_id, reported_at, created_at, modified_at)
             VALUES (1, 7, 1, 'child', 's', 'open', 2, 1, 1, 1),
                    (2, 7, 2, 'parent', 's', 'open', NULL, 1, 1, 1);
             INSERT INTO intake (id, helpdesk_id, source, location, sha256, outcome,
                 classification, received_at, processed_at, raw_size, raw)
             VALUES (5, 7, 'file', 'a.eml', 'abc', 'created', 'normal', 1, 1, 3, x'00ff10');",
        )
        .unwrap();
        drop(conn);
        let url = postdesk_testkit::postgres::PostgresServer::shared()
            .unwrap()
            .fresh_database();
        let from = format!("sqlite://{}", file.display());
        let mut events = 0;
        let report =
            copy_database(&from, &url, CopyOptions::default(), &mut |_| events += 1).unwrap();
        assert!(report.verified && !report.resumed && events > 0);
        let target = PgConn::connect(&url).unwrap();
        let db = Db::postgres(&target);
        let parent: Option<i64> = db
            .prepare("SELECT parent_id FROM tickets WHERE id = 1")
            .unwrap()
            .query_row((), |r| r.get(0))
            .unwrap();
        assert_eq!(parent, Some(2));
        let active: bool = db
            .prepare("SELECT active FROM agents WHERE id = 3")
            .unwrap()
            .query_row((), |r| r.get(0))
            .unwrap();
        assert!(!active);
        let raw: Vec<u8> = db
            .prepare("SELECT raw FROM intake WHERE id = 5")
            .unwrap()
            .query_row((), |r| r.get(0))
            .unwrap();
        assert_eq!(raw, [0, 0xff, 0x10]);
        // New rows get ids after the copied ones.
        let next: i64 = db
            .prepare("INSERT INTO helpdesks (name) VALUES ('Sales') RETURNING id")
            .unwrap()
            .query_row((), |r| r.get(0))
            .unwrap();
        assert_eq!(next, 8);
        // Run again: nothing written, and the row added since makes it fail loudly.
        let again = copy_database(&from, &url, CopyOptions::default(), &mut |_| {});
        let error = again.unwrap_err().to_string();
        assert!(
            error.contains("helpdesks: 1 rows in the source, 2 in the target"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_table_stops_the_copy() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate(&Db::sqlite(&conn), MIGRATIONS).unwrap();
        conn.execute_batch("CREATE TABLE later_feature (id INTEGER PRIMARY KEY)")
            .unwrap();
        let error = source_tables(&Db::sqlite(&conn)).unwrap_err().to_string();
        assert!(error.contains("later_feature"), "{error}");
        assert!(error.contains("KNOWN_TABLES"), "{error}");
    }
}
