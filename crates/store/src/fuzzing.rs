//! Entry points for the fuzz targets in `fuzz/`, built with the `fuzzing` feature only:
//! the store's own SQL and SQLite functions, run on an in-memory database.

use std::path::Path;

use postdesk_core::id::TicketId;
use postdesk_core::search::{Document, Field, SearchQuery};

use crate::engine::{Db, Dialect, connect_sqlite, params_from_iter};

/// Indexes `texts` (ticket `i + 1`'s title and body) in the `ticket_search` of migration
/// 0016, searches it with the match and rank a search of `query` runs
/// (`search::matching`, ranked by `postdesk_rank`), and returns each match with its
/// rank, best first.
pub fn rank_search(texts: &[&str], query: &SearchQuery) -> crate::Result<Vec<(i64, f64)>> {
    let conn = connect_sqlite(Path::new(":memory:"), rusqlite::OpenFlags::default())?;
    let db = Db::sqlite(&conn);
    db.execute_batch(include_str!("../migrations/sqlite/0016_search.sql"))?;
    // The window's join takes its tickets from `tickets t`: their ids are all it reads.
    db.execute_batch("CREATE TABLE tickets (id INTEGER PRIMARY KEY)")?;
    for (i, text) in texts.iter().enumerate() {
        let id = i as i64 + 1;
        let mut doc = Document::default();
        doc.add(Field::Title, text);
        doc.add(Field::Body, text);
        db.prepare_cached("INSERT INTO tickets (id) VALUES (?1)")?
            .execute([id])?;
        crate::search::write(&db, TicketId::new(id), &doc)?;
    }
    let Some(m) = crate::search::matching(Dialect::Sqlite, query, 1) else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<(i64, f64)> = db
        .prepare(&format!("SELECT t.id, {} FROM tickets t{}", m.rank, m.join))?
        .query_map(params_from_iter([m.query]), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::Result<_>>()?;
    // As a search by relevance orders them: best first, then newest.
    rows.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    Ok(rows)
}
