//! Entry points for the fuzz targets in `fuzz/`, built with the `fuzzing` feature only:
//! the store's own SQL and SQLite functions, run on an in-memory database.

use std::path::Path;

use postdesk_core::search::{Document, Field, SearchQuery};

use crate::engine::connect_sqlite;

/// Indexes `texts` (ticket `i + 1`'s body and title) in a `ticket_search` of migration
/// 0016's form, searches it with the SQL a search of `query` runs (`search::fts5_query`)
/// ranked by `postdesk_rank`, and returns each match with its rank, best first.
pub fn rank_search(texts: &[&str], query: &SearchQuery) -> rusqlite::Result<Vec<(i64, f64)>> {
    let conn = connect_sqlite(Path::new(":memory:"), rusqlite::OpenFlags::default())?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE ticket_search USING fts5(
             title, people, files, body,
             tokenize = 'ascii', content = '', contentless_delete = 1
         );",
    )?;
    for (i, text) in texts.iter().enumerate() {
        let mut doc = Document::default();
        doc.add(Field::Title, text);
        doc.add(Field::Body, text);
        conn.execute(
            "INSERT INTO ticket_search (rowid, title, people, files, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                i as i64 + 1,
                doc.column_text(Field::Title),
                doc.column_text(Field::People),
                doc.column_text(Field::Files),
                doc.column_text(Field::Body),
            ],
        )?;
    }
    let mut statement = conn.prepare(
        "SELECT rowid, postdesk_rank(ticket_search, 10.0, 4.0, 2.0, 1.0) AS r
         FROM ticket_search WHERE ticket_search MATCH ?1 ORDER BY r, rowid DESC",
    )?;
    let rows = statement
        .query_map([crate::search::fts5_query(query)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
