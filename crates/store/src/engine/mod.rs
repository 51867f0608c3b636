//! The store's one way to run SQL, whatever the engine: a [`Db`] handle with prepared
//! (and cached) statements, parameters and rows. The table modules write their SQL
//! once, against this, and never see a driver.
//!
//! Two engines sit under it: SQLite through rusqlite ([`sqlite`]) and PostgreSQL
//! through the `postgres` crate ([`postgres`]), both synchronous and run on threads
//! where blocking is allowed. The shape follows rusqlite's (statements, `query_row`
//! with a closure over the row, [`OptionalExtension`]), since SQLite is the engine the
//! SQL was first written for. SQL is written with numbered placeholders (`?1`) or
//! plain `?` for generated lists; PostgreSQL's engine maps them to `$1`… once per
//! statement text, when it prepares it.
//!
//! What differs between the dialects is kept out of the modules' SQL where a common
//! form exists (`RETURNING id` instead of the last insert's rowid, booleans as
//! `TRUE`/`FALSE`, `CAST(?1 AS TEXT) IS NULL` where PostgreSQL could not tell a
//! parameter's type from `?1 IS NULL` alone); where none exists, [`Db::dialect`] names the engine and the two
//! forms stand side by side where they are used.

mod fts5_rank;
pub(crate) mod postgres;
pub(crate) mod postgres_tls;
mod sqlite;

use crate::pending::Pending;
use crate::{Result, StoreError};

pub(crate) use sqlite::connect as connect_sqlite;

/// Which SQL dialect a [`Db`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection (or the transaction on it) to run SQL on. Borrowed: the store owns the
/// connections and hands a `Db` to the work it runs.
#[derive(Clone, Copy)]
pub struct Db<'c> {
    conn: Conn<'c>,
    /// Rows written behind (intake's batches on PostgreSQL, see [`crate::pending`]):
    /// sent before any other statement runs on this handle, so that nothing reads
    /// or writes past them.
    pending: Option<&'c Pending>,
}

#[derive(Clone, Copy)]
enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(&'c postgres::PgConn),
}

impl<'c> Db<'c> {
    pub(crate) fn sqlite(conn: &'c rusqlite::Connection) -> Self {
        Self {
            conn: Conn::Sqlite(conn),
            pending: None,
        }
    }

    pub(crate) fn postgres(conn: &'c postgres::PgConn) -> Self {
        Self {
            conn: Conn::Postgres(conn),
            pending: None,
        }
    }

    /// This handle with rows written behind in `pending`.
    pub(crate) fn with_pending(self, pending: &'c Pending) -> Self {
        Self {
            pending: Some(pending),
            ..self
        }
    }

    /// The buffer of rows written behind, while a batch collects them.
    pub(crate) fn pending(&self) -> Option<&'c Pending> {
        self.pending.filter(|p| p.is_active())
    }

    /// The buffer of rows written behind, active or not.
    pub(crate) fn buffer(&self) -> Option<&'c Pending> {
        self.pending
    }

    /// This handle without its buffer: what sends the buffered rows runs on it.
    pub(crate) fn direct(&self) -> Db<'c> {
        Self {
            pending: None,
            ..*self
        }
    }

    /// Sends the rows written behind, if any: before every other statement.
    pub(crate) fn flush(&self) -> Result<()> {
        match self.pending {
            Some(pending) if pending.is_dirty() => pending.flush(&self.direct()),
            _ => Ok(()),
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A statement kept prepared on this connection for the next use of the same text.
    pub(crate) fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        self.flush()?;
        Ok(Stmt {
            inner: match self.conn {
                Conn::Sqlite(conn) => StmtInner::Sqlite(conn.prepare_cached(sql)?),
                Conn::Postgres(conn) => StmtInner::Postgres(conn, conn.prepare_cached(sql)?),
            },
        })
    }

    /// A statement for SQL that is built per call (lists of ids or placeholders): never
    /// in the cache of the hot statements, so that such texts cannot push those out
    /// (SQLite prepares it for this use only; PostgreSQL keeps it in a cache of its own,
    /// see `postgres::PgConn::prepare`).
    pub(crate) fn prepare(&self, sql: &str) -> Result<Stmt<'c>> {
        self.flush()?;
        Ok(Stmt {
            inner: match self.conn {
                Conn::Sqlite(conn) => StmtInner::SqliteOnce(conn.prepare(sql)?),
                Conn::Postgres(conn) => StmtInner::Postgres(conn, conn.prepare(sql)?),
            },
        })
    }

    /// A statement for SQL built per call whose text still repeats from call to call:
    /// what varies between callers is written in (an agent's helpdesk ids, a filter's
    /// shape) and what varies between calls is bound. SQLite keeps it in the
    /// connection's statement cache beside the hot statements; parsing a list page's
    /// SQL anew was a seventh of its CPU at 1,000,000 tickets (issue 19). PostgreSQL
    /// keeps it among the connection's built statements, with its parameters.
    pub(crate) fn prepare_repeated(&self, sql: &str) -> Result<Stmt<'c>> {
        self.flush()?;
        Ok(Stmt {
            inner: match self.conn {
                Conn::Sqlite(conn) => StmtInner::Sqlite(conn.prepare_cached(sql)?),
                Conn::Postgres(conn) => StmtInner::Postgres(conn, conn.prepare_repeated(sql)?),
            },
        })
    }

    /// PostgreSQL's COPY of rows into `target` (`table (column, …)`): `values` are the
    /// rows' values one after the other, in the columns' order, sent in the binary
    /// format. One statement whatever the number of rows, never planned, and stored
    /// by the server many rows at a time (see [`crate::pending`]). Not on SQLite, where
    /// a row is a call inside the process.
    pub(crate) fn copy_in(&self, target: &str, values: &[&dyn Param]) -> Result<()> {
        self.flush()?;
        match self.conn {
            Conn::Sqlite(_) => Err(StoreError::Invalid(
                "COPY is PostgreSQL's; SQLite inserts its rows one by one".into(),
            )),
            Conn::Postgres(conn) => conn.copy_in(target, values),
        }
    }

    /// Runs statements given as one text, without parameters (schema changes,
    /// transaction control).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        self.flush()?;
        match self.conn {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(conn) => conn.batch_execute(sql),
        }
    }
}

/// A prepared statement.
pub(crate) struct Stmt<'c> {
    inner: StmtInner<'c>,
}

enum StmtInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Postgres(&'c postgres::PgConn, ::postgres::Statement),
}

impl Stmt<'_> {
    pub(crate) fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        match &mut self.inner {
            StmtInner::Sqlite(stmt) => Ok(stmt.execute(sqlite::bind(&values))?),
            StmtInner::SqliteOnce(stmt) => Ok(stmt.execute(sqlite::bind(&values))?),
            StmtInner::Postgres(conn, stmt) => conn.execute(stmt, &values),
        }
    }

    pub(crate) fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(StoreError::NoRow),
        }
    }

    /// Every row, each mapped by `f`.
    pub(crate) fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        let mut mapped = Vec::new();
        while let Some(row) = rows.next()? {
            mapped.push(f(&row));
        }
        Ok(mapped.into_iter())
    }

    /// The rows, to step through with [`Rows::next`].
    pub(crate) fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        let values = params.values();
        Ok(Rows {
            inner: match &mut self.inner {
                StmtInner::Sqlite(stmt) => RowsInner::Sqlite(stmt.query(sqlite::bind(&values))?),
                StmtInner::SqliteOnce(stmt) => {
                    RowsInner::Sqlite(stmt.query(sqlite::bind(&values))?)
                }
                StmtInner::Postgres(conn, stmt) => RowsInner::Postgres {
                    rows: conn.query(stmt, &values)?.into_iter(),
                    current: None,
                },
            },
        })
    }
}

/// The rows of a query, one at a time.
pub(crate) struct Rows<'s> {
    inner: RowsInner<'s>,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres {
        rows: std::vec::IntoIter<::postgres::Row>,
        current: Option<::postgres::Row>,
    },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // a lending iterator: each row borrows the rows
    pub(crate) fn next(&mut self) -> Result<Option<Row<'_>>> {
        Ok(match &mut self.inner {
            RowsInner::Sqlite(rows) => rows.next()?.map(Row::Sqlite),
            RowsInner::Postgres { rows, current } => {
                *current = rows.next();
                current.as_ref().map(Row::Postgres)
            }
        })
    }
}

/// One row of a result.
pub(crate) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r ::postgres::Row),
}

impl Row<'_> {
    /// Column `index` (from 0) as a `T`. The `_` of `get::<_, T>` is the index's type,
    /// as with rusqlite.
    pub(crate) fn get<I: RowIndex, T: Column>(&self, index: I) -> Result<T> {
        match self {
            Row::Sqlite(row) => T::from_sqlite(row, index.position()),
            Row::Postgres(row) => T::from_postgres(row, index.position()),
        }
    }
}

/// A column's position in a row (from 0); only `usize`, so that a literal `0` is one.
pub(crate) trait RowIndex {
    fn position(self) -> usize;
}

impl RowIndex for usize {
    fn position(self) -> usize {
        self
    }
}

/// A value a column can be read as, on either engine.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self>;
    fn from_postgres(row: &::postgres::Row, index: usize) -> Result<Self>;
}

impl<T> Column for T
where
    T: rusqlite::types::FromSql + for<'a> ::postgres::types::FromSql<'a>,
{
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }

    fn from_postgres(row: &::postgres::Row, index: usize) -> Result<Self> {
        Ok(row.try_get(index)?)
    }
}

/// A value a statement can take as a parameter, on either engine.
pub(crate) trait Param: rusqlite::ToSql + ::postgres::types::ToSql + Sync {}

impl<T: rusqlite::ToSql + ::postgres::types::ToSql + Sync + ?Sized> Param for T {}

/// The parameters of one execution: `params![a, b]`, an array `[a]` of one type,
/// `()` for none, or [`params_from_iter`].
pub(crate) trait Params {
    fn values(&self) -> Vec<&dyn Param>;
}

impl Params for () {
    fn values(&self) -> Vec<&dyn Param> {
        Vec::new()
    }
}

impl Params for &[&dyn Param] {
    fn values(&self) -> Vec<&dyn Param> {
        self.to_vec()
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<&dyn Param> {
        self.iter().map(|v| v as &dyn Param).collect()
    }
}

impl<T: Param, const N: usize> Params for &[T; N] {
    fn values(&self) -> Vec<&dyn Param> {
        self.iter().map(|v| v as &dyn Param).collect()
    }
}

/// Parameters from a list whose length is known only when the statement runs.
pub(crate) struct ParamsFromIter<T>(Vec<T>);

pub(crate) fn params_from_iter<I>(values: I) -> ParamsFromIter<I::Item>
where
    I: IntoIterator,
    I::Item: Param,
{
    ParamsFromIter(values.into_iter().collect())
}

impl<T: Param> Params for ParamsFromIter<T> {
    fn values(&self) -> Vec<&dyn Param> {
        self.0.iter().map(|v| v as &dyn Param).collect()
    }
}

/// `params![a, b, c]`: parameters of different types.
macro_rules! params {
    () => { &[] as &[&dyn $crate::engine::Param] };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::engine::Param),+] as &[&dyn $crate::engine::Param]
    };
}
pub(crate) use params;

/// `.optional()`: a query that found no row gives `None` instead of an error.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NoRow) => Ok(None),
            Err(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
