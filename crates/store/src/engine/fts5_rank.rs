//! `postdesk_rank`, the FTS5 ranking function of a search on SQLite: registered on every
//! connection, called as `postdesk_rank(ticket_search, w_title, w_people, w_files,
//! w_body)`, smaller for better matches as FTS5's `bm25` is.
//!
//! A ticket's rank is the sum, over the query's phrases, of the phrase's weighted count
//! `f` (each occurrence counts its column's weight) saturated as bm25 saturates it:
//! `f · (k1 + 1) / (f + k1)`, so a word in the title outweighs a few in the body and
//! twenty mentions are not worth twenty times one.
//!
//! What bm25 adds, and why it is left out (issue 19):
//! - **Its IDF** weighs each phrase by how rare it is, which bm25 learns by reading every
//!   match of every phrase of the query (43,000 for "printer" at 1,000,000 tickets),
//!   however few tickets the window ranks. Every ticket found contains every phrase, so
//!   the IDF only weighs one phrase's count against another's. PostgreSQL's `ts_rank`
//!   has no IDF either.
//! - **Its length normalisation** reads each document's size (a lookup per ticket).
//!
//! Together they were 70 % of the match's read of a one-word search at 1,000,000
//! tickets (4.6 ms with bm25, 1.3 ms without a rank).

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use rusqlite::Connection;
use rusqlite::ffi;

/// bm25's `k1`: how soon more occurrences stop counting.
const K1: f64 = 1.2;

/// The most phrases a query's rank tells apart; more are counted with the last.
const MAX_PHRASES: usize = 32;

/// Registers `postdesk_rank` on `conn`.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: the handle is `conn`'s open connection, used on this thread only for the
    // time of the call; `fts5_api` returns a pointer SQLite keeps valid while the
    // connection is open.
    unsafe {
        let db = conn.handle();
        let api = fts5_api(db)?;
        let Some(create) = (*api).xCreateFunction else {
            return Err(error("FTS5 offers no xCreateFunction"));
        };
        let rc = create(api, c"postdesk_rank".as_ptr(), null_mut(), Some(rank), None);
        if rc != ffi::SQLITE_OK {
            return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
        }
    }
    Ok(())
}

fn error(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ERROR),
        Some(message.to_string()),
    )
}

/// The connection's FTS5 API, asked for as SQLite documents it: `SELECT fts5(?1)` with
/// a pointer bound as `fts5_api_ptr`.
///
/// # Safety
/// `db` is an open connection.
unsafe fn fts5_api(db: *mut ffi::sqlite3) -> rusqlite::Result<*mut ffi::fts5_api> {
    let mut statement = null_mut();
    let mut api: *mut ffi::fts5_api = null_mut();
    // SAFETY: `db` is open; the statement is finalized before returning, and `api`
    // outlives its one step.
    let rc = unsafe {
        let rc = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &mut statement,
            null_mut(),
        );
        if rc == ffi::SQLITE_OK {
            ffi::sqlite3_bind_pointer(
                statement,
                1,
                (&raw mut api).cast::<c_void>(),
                c"fts5_api_ptr".as_ptr(),
                None,
            );
            ffi::sqlite3_step(statement);
        }
        ffi::sqlite3_finalize(statement);
        rc
    };
    if rc != ffi::SQLITE_OK || api.is_null() {
        return Err(error("this SQLite has no FTS5"));
    }
    Ok(api)
}

/// The ranking function FTS5 calls once per matching row (see the module doc). The
/// weights are its arguments after the table's name; a column without one weighs 1.
unsafe extern "C" fn rank(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    context: *mut ffi::sqlite3_context,
    n_values: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 passes its API, the row's context and `n_values` argument values,
    // all valid for this call.
    unsafe {
        let (Some(inst_count), Some(inst)) = ((*api).xInstCount, (*api).xInst) else {
            ffi::sqlite3_result_error_code(context, ffi::SQLITE_ERROR);
            return;
        };
        let weights: &[*mut ffi::sqlite3_value] = if values.is_null() || n_values <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(values, n_values as usize)
        };
        let weight = |column: c_int| {
            usize::try_from(column)
                .ok()
                .and_then(|c| weights.get(c))
                .map_or(1.0, |value| ffi::sqlite3_value_double(*value))
        };
        let mut count = 0;
        let rc = inst_count(fts, &mut count);
        if rc != ffi::SQLITE_OK {
            ffi::sqlite3_result_error_code(context, rc);
            return;
        }
        let mut counts = [0.0f64; MAX_PHRASES];
        for i in 0..count {
            let (mut phrase, mut column, mut offset) = (0, 0, 0);
            let rc = inst(fts, i, &mut phrase, &mut column, &mut offset);
            if rc != ffi::SQLITE_OK {
                ffi::sqlite3_result_error_code(context, rc);
                return;
            }
            let slot = usize::try_from(phrase).unwrap_or(0).min(MAX_PHRASES - 1);
            counts[slot] += weight(column);
        }
        let score: f64 = counts
            .iter()
            .filter(|f| **f > 0.0)
            .map(|f| f * (K1 + 1.0) / (f + K1))
            .sum();
        ffi::sqlite3_result_double(context, -score);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(docs: &[(i64, &str, &str)], query: &str) -> Vec<(i64, f64)> {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE s USING fts5(title, body, tokenize = 'ascii',
                 content = '', contentless_delete = 1);",
        )
        .unwrap();
        for (id, title, body) in docs {
            conn.execute(
                "INSERT INTO s (rowid, title, body) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, title, body],
            )
            .unwrap();
        }
        conn.prepare(
            "SELECT rowid, postdesk_rank(s, 10.0, 1.0) AS r FROM s WHERE s MATCH ?1
             ORDER BY r, rowid DESC",
        )
        .unwrap()
        .query_map([query], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    #[test]
    fn a_word_in_the_title_outranks_many_in_the_body() {
        let order: Vec<i64> = ranked(
            &[
                (1, "invoice question", "printer"),
                (2, "printer broken", "nothing else"),
                (3, "hello", "printer printer printer printer printer"),
                (4, "hello", "the printer"),
            ],
            "\"printer\"",
        )
        .into_iter()
        .map(|(id, _)| id)
        .collect();
        assert_eq!(order, [2, 3, 4, 1]);
    }

    #[test]
    fn every_phrase_counts_and_more_occurrences_saturate() {
        let rows = ranked(
            &[
                (1, "", "paper jam printer"),
                (2, "", "paper jam paper jam printer printer"),
                (3, "", &"paper jam ".repeat(40)),
            ],
            "\"paper jam\"",
        );
        let score = |id| rows.iter().find(|(i, _)| *i == id).unwrap().1;
        assert!(
            score(2) < score(1),
            "two mentions rank before one: {rows:?}"
        );
        // bm25's saturation: forty mentions are worth at most k1 + 1 times one.
        assert!(score(3) > (K1 + 1.0) * score(1), "{rows:?}");
        let both = ranked(
            &[(1, "", "paper printer"), (2, "", "paper")],
            "paper AND printer",
        );
        assert_eq!(both.len(), 1);
        assert!(
            (both[0].1 - -2.0).abs() < 1e-9,
            "two phrases, one each: {both:?}"
        );
    }

    #[test]
    fn more_phrases_than_it_tells_apart_still_rank() {
        let words: Vec<String> = (0..MAX_PHRASES + 8).map(|i| format!("w{i}")).collect();
        let text = words.join(" ");
        let query = words.join(" AND ");
        let rows = ranked(&[(1, "", text.as_str()), (2, &text, &text)], &query);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            [2, 1],
            "{rows:?}"
        );
        assert!(
            rows.iter().all(|(_, r)| r.is_finite() && *r < 0.0),
            "{rows:?}"
        );
    }
}
