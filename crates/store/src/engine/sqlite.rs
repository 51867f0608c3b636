//! The SQLite engine: rusqlite connections to the database file, opened with what
//! every connection of postdesk sets, and the binding of the handle's parameters.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Param;

/// Opens a connection to the file with what every connection of postdesk sets.
pub(crate) fn connect(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    // The hot statements and the repeated built ones (`Db::prepare_repeated`): an
    // agent's list pages, counts and ticket pages.
    conn.set_prepared_statement_cache_capacity(128);
    super::fts5_rank::register(&conn)?;
    Ok(conn)
}

/// The parameters as rusqlite binds them.
pub(super) fn bind<'a>(values: &'a [&'a dyn Param]) -> impl rusqlite::Params + 'a {
    rusqlite::params_from_iter(values.iter().map(|v| *v as &dyn rusqlite::ToSql))
}
