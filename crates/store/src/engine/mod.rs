//! The store's one way to run SQL, whatever the engine: a [`Db`] handle with prepared
//! (and cached) statements, parameters and rows. The table modules write their SQL
//! once, against this, and never see a driver.
//!
//! The shape follows rusqlite's (statements, `query_row` with a closure over the row,
//! [`OptionalExtension`]), since SQLite is the engine the SQL was first written for;
//! the PostgreSQL engine implements the same handle. SQL is written with numbered
//! placeholders (`?1`) or plain `?` for generated lists; each engine maps them to its
//! own form once per statement text.
//!
//! What differs between the dialects is kept out of the modules' SQL where a common
//! form exists (`RETURNING id` instead of the last insert's rowid, `GREATEST`-free
//! arithmetic, booleans as `TRUE`/`FALSE`); where none exists, the handle names the
//! engine, and the two forms stand side by side where they are used.

mod sqlite;

use crate::{Result, StoreError};

pub(crate) use sqlite::connect as connect_sqlite;

/// A connection (or the transaction on it) to run SQL on. Borrowed: the store owns the
/// connections and hands a `Db` to the work it runs.
#[derive(Clone, Copy)]
pub struct Db<'c> {
    conn: &'c rusqlite::Connection,
}

impl<'c> Db<'c> {
    pub(crate) fn sqlite(conn: &'c rusqlite::Connection) -> Self {
        Self { conn }
    }

    /// A statement kept prepared on this connection for the next use of the same text.
    pub(crate) fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        Ok(Stmt {
            inner: self.conn.prepare_cached(sql)?,
        })
    }

    /// A statement for SQL that is built per call (lists of placeholders): not cached.
    pub(crate) fn prepare(&self, sql: &str) -> Result<Stmt<'c>> {
        // rusqlite's cache is bounded, so an unusual text only pushes out an old one;
        // one statement type keeps the handle simple.
        self.prepare_cached(sql)
    }

    /// Runs one statement and maps its first row; no row is [`StoreError::NoRow`].
    pub(crate) fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// The id the last INSERT on this connection gave its row.
    pub(crate) fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }
}

/// A prepared statement.
pub(crate) struct Stmt<'c> {
    inner: rusqlite::CachedStatement<'c>,
}

impl Stmt<'_> {
    pub(crate) fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        Ok(self.inner.execute(sqlite::bind(&values))?)
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
            inner: self.inner.query(sqlite::bind(&values))?,
        })
    }
}

/// The rows of a query, one at a time.
pub(crate) struct Rows<'s> {
    inner: rusqlite::Rows<'s>,
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)] // a lending iterator: each row borrows the rows
    pub(crate) fn next(&mut self) -> Result<Option<Row<'_>>> {
        Ok(self.inner.next()?.map(|row| Row { inner: row }))
    }
}

/// One row of a result.
pub(crate) struct Row<'r> {
    inner: &'r rusqlite::Row<'r>,
}

impl Row<'_> {
    /// Column `index` (from 0) as a `T`. The `_` of `get::<_, T>` is the index's type,
    /// as with rusqlite.
    pub(crate) fn get<I: RowIndex, T: Column>(&self, index: I) -> Result<T> {
        T::from_sqlite(self.inner, index.position())
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

/// A value a column can be read as.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self>;
}

impl<T: rusqlite::types::FromSql> Column for T {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
}

/// A value a statement can take as a parameter.
pub(crate) trait Param: rusqlite::ToSql + Sync {}

impl<T: rusqlite::ToSql + Sync + ?Sized> Param for T {}

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
