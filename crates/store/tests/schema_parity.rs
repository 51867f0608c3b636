//! The SQLite and PostgreSQL migrations must build the same schema.
//!
//! Applies every file of `migrations/sqlite` to a new SQLite database (rusqlite, in
//! order) and every file of `migrations/postgres` to a new database on the testkit's
//! PostgreSQL, reads both catalogs into one normalized [`Schema`] and fails with the
//! facts found on one side only. Compared: tables; columns with a type class (what
//! the column holds, not how it is spelled: SQLite's INTEGER and BIGINT are the same
//! 64-bit integer, PostgreSQL's INTEGER is not), nullability, defaults and whether the
//! database hands out the id; primary keys; unique constraints; indexes with their key
//! columns or expressions, uniqueness and predicate; foreign keys with their actions;
//! and CHECK constraints by the columns and literals they name (the expressions
//! themselves are spelled differently: PostgreSQL stores `IN (…)` as `= ANY (ARRAY[…])`).
//!
//! Full-text search indexes (issue 19) have no common form: SQLite's is an FTS5 virtual
//! table (with shadow tables FTS5 makes and owns), PostgreSQL's a table of `tsvector`s
//! with a GIN index. Each side recognizes its own kind and reports it as the one fact
//! `search index NAME` instead of its tables and columns; what goes into the index is
//! written once, for both, in the store's `search` module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use postdesk_testkit::postgres::PostgresServer;

/// What a column holds, whatever the dialect calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TypeClass {
    /// 64-bit: SQLite's every integer, PostgreSQL's BIGINT.
    Integer,
    /// PostgreSQL's INTEGER or SMALLINT: narrower than SQLite stores, so always drift.
    NarrowInteger,
    Text,
    Blob,
    Real,
    Boolean,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    class: Result<TypeClass, String>,
    not_null: bool,
    /// Normalized (see [`normalize_sql`]); `None` when there is none.
    default: Option<String>,
    /// The database picks the value: SQLite's INTEGER PRIMARY KEY, PostgreSQL's identity.
    generated_id: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    unique: bool,
    /// Column names or normalized expressions, in key order.
    keys: Vec<String>,
    /// The normalized WHERE of a partial index.
    predicate: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    columns: Vec<String>,
    table: String,
    referenced: Vec<String>,
    on_update: String,
    on_delete: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Check {
    columns: BTreeSet<String>,
    literals: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    /// Key columns of UNIQUE constraints (their names differ per engine).
    uniques: BTreeSet<Vec<String>>,
    /// Indexes made with CREATE INDEX, by name.
    indexes: BTreeMap<String, Index>,
    foreign_keys: BTreeSet<ForeignKey>,
    checks: BTreeSet<Check>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Table>,
    /// Full-text search indexes, by name (see the module's doc).
    search_indexes: BTreeSet<String>,
}

impl Schema {
    /// One line per fact, so that two schemas compare as two sets of lines.
    fn facts(&self) -> BTreeSet<String> {
        let mut facts = BTreeSet::new();
        for name in &self.search_indexes {
            facts.insert(format!("search index {name}"));
        }
        for (name, table) in &self.tables {
            facts.insert(format!("table {name}"));
            for (column, c) in &table.columns {
                let class = match &c.class {
                    Ok(class) => format!("{class:?}").to_lowercase(),
                    Err(declared) => format!("unknown type {declared:?}"),
                };
                facts.insert(format!(
                    "{name}.{column}: {class}{}{}{}",
                    if c.not_null { " not null" } else { " null" },
                    c.default
                        .as_ref()
                        .map(|d| format!(" default {d}"))
                        .unwrap_or_default(),
                    if c.generated_id { " generated id" } else { "" },
                ));
            }
            if !table.primary_key.is_empty() {
                facts.insert(format!(
                    "{name}: primary key ({})",
                    table.primary_key.join(", ")
                ));
            }
            for unique in &table.uniques {
                facts.insert(format!("{name}: unique ({})", unique.join(", ")));
            }
            for (index, i) in &table.indexes {
                facts.insert(format!(
                    "{name}: {}index {index} ({}){}",
                    if i.unique { "unique " } else { "" },
                    i.keys.join(", "),
                    i.predicate
                        .as_ref()
                        .map(|p| format!(" where {p}"))
                        .unwrap_or_default()
                ));
            }
            for fk in &table.foreign_keys {
                facts.insert(format!(
                    "{name}: foreign key ({}) references {}({}) on update {} on delete {}",
                    fk.columns.join(", "),
                    fk.table,
                    fk.referenced.join(", "),
                    fk.on_update,
                    fk.on_delete
                ));
            }
            for check in &table.checks {
                facts.insert(format!(
                    "{name}: check on ({}) naming [{}]",
                    check.columns.iter().cloned().collect::<Vec<_>>().join(", "),
                    check
                        .literals
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        facts
    }
}

/// `Ok` when the schemas agree; else the facts each side has and the other lacks.
fn compare(sqlite: &Schema, postgres: &Schema) -> Result<(), String> {
    let (a, b) = (sqlite.facts(), postgres.facts());
    let only_sqlite: Vec<&String> = a.difference(&b).collect();
    let only_postgres: Vec<&String> = b.difference(&a).collect();
    if only_sqlite.is_empty() && only_postgres.is_empty() {
        return Ok(());
    }
    let mut report = String::from("the SQLite and PostgreSQL schemas differ\n");
    for (side, lines) in [("SQLite", only_sqlite), ("PostgreSQL", only_postgres)] {
        if !lines.is_empty() {
            report.push_str(&format!("  only in {side}:\n"));
            for line in lines {
                report.push_str(&format!("    {line}\n"));
            }
        }
    }
    Err(report)
}

/// Lower-cases, drops whitespace and PostgreSQL's `::type` casts outside quotes, and
/// strips parentheses around the whole: `(COALESCE(message_id, sha256))` and
/// `coalesce(message_id, sha256)` are both `coalesce(message_id,sha256)`.
fn normalize_sql(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\'' {
                        break;
                    }
                }
            }
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                // A type name: letters, digits and `_`, and the second word of
                // "character varying" or "double precision" (not the words after a
                // cast, as in `'urgent'::text THEN 4`).
                let mut name = String::new();
                while chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    name.push(chars.next().unwrap());
                }
                let second = match name.as_str() {
                    "character" => " varying",
                    "double" => " precision",
                    _ => "",
                };
                let rest: String = chars.clone().take(second.len()).collect();
                if !second.is_empty() && rest == second {
                    chars.nth(second.len() - 1);
                }
            }
            c if c.is_whitespace() => {}
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    while out.starts_with('(') && closing_paren(&out, 0) == Some(out.len() - 1) {
        out = out[1..out.len() - 1].to_string();
    }
    out
}

/// The index of the `)` that closes the `(` at `open`, skipping quoted text.
fn closing_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// The quoted strings in an expression: what a CHECK allows or forbids.
fn literals(sql: &str) -> BTreeSet<String> {
    sql.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The table's column names appearing in an expression (outside quotes).
fn columns_named(sql: &str, columns: &BTreeMap<String, Column>) -> BTreeSet<String> {
    sql.split('\'')
        .step_by(2)
        .flat_map(|unquoted| unquoted.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .map(str::to_ascii_lowercase)
        .filter(|word| columns.contains_key(word))
        .collect()
}

fn action(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn migration_files(engine: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// SQLite's type affinity rules (section 3.1 of its datatype documentation), with
/// BOOLEAN told apart: SQLite stores it as an integer, but it is declared as a boolean.
fn sqlite_class(declared: &str) -> Result<TypeClass, String> {
    let upper = declared.to_ascii_uppercase();
    if upper == "BOOLEAN" || upper == "BOOL" {
        Ok(TypeClass::Boolean)
    } else if upper.contains("INT") {
        Ok(TypeClass::Integer)
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        Ok(TypeClass::Text)
    } else if upper.contains("BLOB") {
        Ok(TypeClass::Blob)
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        Ok(TypeClass::Real)
    } else {
        Err(declared.to_string())
    }
}

fn postgres_class(formatted: &str) -> Result<TypeClass, String> {
    match formatted {
        "bigint" => Ok(TypeClass::Integer),
        "integer" | "smallint" => Ok(TypeClass::NarrowInteger),
        "text" => Ok(TypeClass::Text),
        t if t.starts_with("character varying") || t.starts_with("character(") => {
            Ok(TypeClass::Text)
        }
        "bytea" => Ok(TypeClass::Blob),
        "real" | "double precision" => Ok(TypeClass::Real),
        "boolean" => Ok(TypeClass::Boolean),
        other => Err(other.to_string()),
    }
}

/// The schema of a SQLite database, from its catalog and pragmas.
fn sqlite_schema(conn: &rusqlite::Connection) -> Schema {
    let mut schema = Schema::default();
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // FTS5 tables, and the shadow tables FTS5 keeps for each.
    let fts5: BTreeSet<String> = tables
        .iter()
        .filter(|(_, create)| {
            let upper = create.to_ascii_uppercase();
            upper.starts_with("CREATE VIRTUAL TABLE") && upper.contains("USING FTS5")
        })
        .map(|(name, _)| name.clone())
        .collect();
    let shadow = |name: &str| {
        fts5.iter().any(|index| {
            ["_data", "_idx", "_docsize", "_config", "_content"]
                .iter()
                .any(|suffix| name == format!("{index}{suffix}"))
        })
    };
    schema.search_indexes = fts5.clone();
    for (name, create) in tables {
        if fts5.contains(&name) || shadow(&name) {
            continue;
        }
        let mut table = Table::default();
        let mut pk: Vec<(i64, String, String)> = Vec::new();
        let mut stmt = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
            .unwrap();
        let rows = stmt
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (column, declared, not_null, default, pk_position) = row.unwrap();
            if pk_position > 0 {
                pk.push((pk_position, column.clone(), declared.clone()));
            }
            table.columns.insert(
                column,
                Column {
                    class: sqlite_class(&declared),
                    // A primary key column is NOT NULL on PostgreSQL by definition;
                    // SQLite lets a non-integer one hold NULL unless declared NOT NULL
                    // (a documented quirk), which the README lists.
                    not_null: not_null || pk_position > 0,
                    default: default.as_deref().map(normalize_sql),
                    generated_id: false,
                },
            );
        }
        pk.sort();
        // Only a lone column declared exactly INTEGER is the rowid, handed out by SQLite.
        if let [(_, column, declared)] = pk.as_slice()
            && declared.eq_ignore_ascii_case("INTEGER")
        {
            table.columns.get_mut(column).unwrap().generated_id = true;
        }
        table.primary_key = pk.into_iter().map(|(_, column, _)| column).collect();

        let indexes: Vec<(String, bool, String)> = conn
            .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
            .unwrap()
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (index, unique, origin) in indexes {
            match origin.as_str() {
                // The primary key's own index (of a table without rowid alias).
                "pk" => {}
                "u" => {
                    let columns: Vec<String> = conn
                        .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                        .unwrap()
                        .query_map([&index], |r| r.get(0))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    table.uniques.insert(columns);
                }
                _ => {
                    let sql: String = conn
                        .query_row(
                            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                            [&index],
                            |r| r.get(0),
                        )
                        .unwrap();
                    table
                        .indexes
                        .insert(index, sqlite_index(&sql, &name, unique));
                }
            }
        }

        let mut fks: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete
                 FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
            )
            .unwrap();
        let rows = stmt
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (id, target, from, to, on_update, on_delete) = row.unwrap();
            let fk = fks.entry(id).or_insert_with(|| ForeignKey {
                columns: Vec::new(),
                table: target,
                referenced: Vec::new(),
                on_update: action(&on_update),
                on_delete: action(&on_delete),
            });
            fk.columns.push(from);
            // `REFERENCES t` without a column names t's primary key.
            fk.referenced
                .push(to.unwrap_or_else(|| "<primary key>".into()));
        }
        table.foreign_keys = fks.into_values().collect();

        let mut rest = create.as_str();
        while let Some(at) = rest.to_ascii_uppercase().find("CHECK") {
            let Some(open) = rest[at..].find('(').map(|o| at + o) else {
                break;
            };
            let close = closing_paren(rest, open).expect("balanced CHECK");
            let expression = &rest[open + 1..close];
            table.checks.insert(Check {
                columns: columns_named(expression, &table.columns),
                literals: literals(expression),
            });
            rest = &rest[close..];
        }
        schema.tables.insert(name, table);
    }
    schema
}

/// An index from its `CREATE [UNIQUE] INDEX name ON table (keys) [WHERE predicate]`.
fn sqlite_index(sql: &str, table: &str, unique: bool) -> Index {
    let upper = sql.to_ascii_uppercase();
    let on = upper
        .find(&format!(" ON {}", table.to_ascii_uppercase()))
        .unwrap_or_else(|| panic!("no ON {table} in {sql}"));
    let open = on + sql[on..].find('(').expect("index keys");
    let close = closing_paren(sql, open).expect("balanced index keys");
    let keys = split_top_level(&sql[open + 1..close])
        .iter()
        .map(|key| normalize_sql(key))
        .collect();
    let predicate = upper[close..]
        .find("WHERE")
        .map(|w| normalize_sql(&sql[close + w + "WHERE".len()..]));
    Index {
        unique,
        keys,
        predicate,
    }
}

/// The schema of a PostgreSQL database's `public` schema, from pg_catalog.
fn postgres_schema(client: &mut postgres::Client) -> Schema {
    let mut schema = Schema::default();
    let columns = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
               AND NOT a.attisdropped",
            &[],
        )
        .unwrap();
    for row in columns {
        let table: String = row.get(0);
        let default: Option<String> = row.get(4);
        schema.tables.entry(table).or_default().columns.insert(
            row.get(1),
            Column {
                class: postgres_class(row.get(2)),
                not_null: row.get(3),
                default: default.as_deref().map(normalize_sql),
                generated_id: row.get(5),
            },
        );
    }

    let constraints = client
        .query(
            "SELECT c.relname::text, k.contype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                          ORDER BY u.i),
                    f.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                          ORDER BY u.i),
                    k.confupdtype::text, k.confdeltype::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_class f ON f.oid = k.confrelid
             WHERE n.nspname = 'public'",
            &[],
        )
        .unwrap();
    for row in constraints {
        let table_name: String = row.get(0);
        let kind: String = row.get(1);
        let columns: Vec<String> = row.get(2);
        let table = schema.tables.entry(table_name).or_default();
        match kind.as_str() {
            "p" => table.primary_key = columns,
            "u" => {
                table.uniques.insert(columns);
            }
            "f" => {
                let fk_action = |code: String| {
                    match code.as_str() {
                        "a" => "no action",
                        "r" => "restrict",
                        "c" => "cascade",
                        "n" => "set null",
                        "d" => "set default",
                        other => panic!("unknown foreign key action {other:?}"),
                    }
                    .to_string()
                };
                table.foreign_keys.insert(ForeignKey {
                    columns,
                    table: row.get(3),
                    referenced: row.get(4),
                    on_update: fk_action(row.get(5)),
                    on_delete: fk_action(row.get(6)),
                });
            }
            "c" => {
                let definition: String = row.get(7);
                table.checks.insert(Check {
                    columns: columns.into_iter().collect(),
                    literals: literals(&definition),
                });
            }
            other => panic!("constraint kind {other:?} is not compared yet: add it"),
        }
    }

    let indexes = client
        .query(
            "SELECT t.relname::text, i.relname::text, x.indisunique,
                    ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                          FROM generate_series(1, x.indnkeyatts::int) k ORDER BY k),
                    pg_get_expr(x.indpred, x.indrelid, true)
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = 'public'
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                               WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                                 AND k.contype IN ('p', 'u', 'x'))",
            &[],
        )
        .unwrap();
    for row in indexes {
        let table: String = row.get(0);
        let keys: Vec<String> = row.get(3);
        let predicate: Option<String> = row.get(4);
        schema.tables.entry(table).or_default().indexes.insert(
            row.get(1),
            Index {
                unique: row.get(2),
                keys: keys.iter().map(|k| normalize_sql(k)).collect(),
                predicate: predicate.as_deref().map(normalize_sql),
            },
        );
    }
    // A table of tsvectors with a GIN index on them, keyed by a ticket: a search index.
    let searched = client
        .query(
            "SELECT DISTINCT c.relname::text FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_index x ON x.indrelid = c.oid AND a.attnum = ANY (x.indkey)
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_am m ON m.oid = i.relam
             WHERE n.nspname = 'public' AND a.atttypid = 'tsvector'::regtype
               AND m.amname = 'gin'",
            &[],
        )
        .unwrap();
    for row in searched {
        let name: String = row.get(0);
        let table = schema.tables.remove(&name).expect("the index's table");
        assert!(
            table
                .foreign_keys
                .iter()
                .any(|fk| fk.table == "tickets" && fk.on_delete == "cascade"),
            "the search index {name} is not kept per ticket"
        );
        schema.search_indexes.insert(name);
    }
    schema
}

/// A SQLite database with every SQLite migration applied, `extra` after them.
fn migrated_sqlite(extra: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    for file in migration_files("sqlite") {
        conn.execute_batch(&read(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    conn.execute_batch(extra).unwrap();
    conn
}

fn migrated_postgres_schema() -> Schema {
    let server = PostgresServer::shared().expect("a PostgreSQL for the tests");
    let url = server.fresh_database();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for file in migration_files("postgres") {
        client
            .batch_execute(&read(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    postgres_schema(&mut client)
}

#[test]
fn both_engines_have_the_same_migration_files() {
    let names = |engine| -> Vec<String> {
        migration_files(engine)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

#[test]
fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let sqlite = sqlite_schema(&migrated_sqlite(""));
    let postgres = migrated_postgres_schema();
    // Guard against a comparison of two empty readings.
    assert!(sqlite.tables.contains_key("tickets") && sqlite.tables.len() >= 19);
    assert!(sqlite.search_indexes.contains("ticket_search"));
    if let Err(report) = compare(&sqlite, &postgres) {
        panic!("{report}");
    }
}

#[test]
fn a_column_added_on_one_engine_only_is_reported() {
    let sqlite = sqlite_schema(&migrated_sqlite(
        "ALTER TABLE tickets ADD COLUMN due_note TEXT;
         CREATE INDEX tickets_due ON tickets(deadline_at) WHERE done_at IS NULL;",
    ));
    let postgres = migrated_postgres_schema();
    let report = compare(&sqlite, &postgres).unwrap_err();
    assert!(report.contains("only in SQLite:"), "{report}");
    assert!(report.contains("tickets.due_note: text null"), "{report}");
    assert!(
        report.contains("tickets: index tickets_due (deadline_at) where done_atisnull"),
        "{report}"
    );
    assert!(!report.contains("only in PostgreSQL:"), "{report}");
}

#[cfg(test)]
mod comparer {
    use super::*;

    fn column(class: TypeClass, not_null: bool) -> Column {
        Column {
            class: Ok(class),
            not_null,
            default: None,
            generated_id: false,
        }
    }

    fn one_table(table: Table) -> Schema {
        Schema {
            tables: BTreeMap::from([("outbox".to_string(), table)]),
            search_indexes: BTreeSet::new(),
        }
    }

    fn outbox() -> Table {
        Table {
            columns: BTreeMap::from([
                (
                    "id".into(),
                    Column {
                        generated_id: true,
                        ..column(TypeClass::Integer, true)
                    },
                ),
                ("kind".into(), column(TypeClass::Text, true)),
                ("sent_at".into(), column(TypeClass::Integer, false)),
            ]),
            primary_key: vec!["id".into()],
            uniques: BTreeSet::new(),
            indexes: BTreeMap::from([(
                "outbox_due".into(),
                Index {
                    unique: false,
                    keys: vec!["kind".into(), "sent_at".into()],
                    predicate: None,
                },
            )]),
            foreign_keys: BTreeSet::new(),
            checks: BTreeSet::from([Check {
                columns: BTreeSet::from(["kind".into()]),
                literals: BTreeSet::from(["alert".into(), "reply".into()]),
            }]),
        }
    }

    #[test]
    fn equal_models_agree() {
        assert_eq!(compare(&one_table(outbox()), &one_table(outbox())), Ok(()));
    }

    #[test]
    fn every_kind_of_drift_is_named_on_its_side() {
        let sqlite = one_table(outbox());
        let mut drifted = outbox();
        drifted.columns.get_mut("sent_at").unwrap().class = Ok(TypeClass::NarrowInteger);
        drifted.columns.get_mut("kind").unwrap().not_null = false;
        drifted.indexes.get_mut("outbox_due").unwrap().predicate = Some("sent_atisnull".into());
        drifted.checks = BTreeSet::from([Check {
            columns: BTreeSet::from(["kind".into()]),
            literals: BTreeSet::from(["alert".into()]),
        }]);
        drifted.uniques.insert(vec!["kind".into()]);
        let report = compare(&sqlite, &one_table(drifted)).unwrap_err();
        let expected = "the SQLite and PostgreSQL schemas differ
  only in SQLite:
    outbox.kind: text not null
    outbox.sent_at: integer null
    outbox: check on (kind) naming [alert, reply]
    outbox: index outbox_due (kind, sent_at)
  only in PostgreSQL:
    outbox.kind: text null
    outbox.sent_at: narrowinteger null
    outbox: check on (kind) naming [alert]
    outbox: index outbox_due (kind, sent_at) where sent_atisnull
    outbox: unique (kind)
";
        assert_eq!(report, expected);
    }

    #[test]
    fn a_missing_table_is_named() {
        let report = compare(&one_table(outbox()), &Schema::default()).unwrap_err();
        assert!(report.contains("only in SQLite:\n    outbox.id: integer not null generated id"));
        assert!(report.contains("    table outbox\n"));
    }

    #[test]
    fn expressions_are_compared_as_written_on_either_side() {
        assert_eq!(
            normalize_sql("(COALESCE(message_id, sha256))"),
            normalize_sql("coalesce(message_id, sha256)")
        );
        assert_eq!(normalize_sql("'agent'::text"), "'agent'");
        assert_eq!(normalize_sql("TRUE"), normalize_sql("true"));
        assert_eq!(
            normalize_sql("((status = 'Queued'::character varying))"),
            "status='Queued'"
        );
        assert_eq!(
            normalize_sql("CASE lower(priority) WHEN 'urgent'::text THEN 4 ELSE 0 END"),
            normalize_sql("CASE lower(priority) WHEN 'urgent' THEN 4 ELSE 0 END")
        );
        assert_eq!(normalize_sql("x::double precision"), "x");
    }
}
