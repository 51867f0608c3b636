//! Full-text search over tickets, on both engines, behind one API: each ticket has one
//! document in `ticket_search` (SQLite: an FTS5 table, contentless, rowid = ticket id;
//! PostgreSQL: a `tsvector` with a GIN index), and a [`SearchQuery`] (parsed once, in
//! `postdesk_core::search`) becomes each engine's match condition and rank here, the
//! two forms side by side.
//!
//! # What a document holds
//! Title, mail subject and ticket number (weight A), the requester's name and addresses
//! and the senders of incoming mail (B), attachment names (C), and the texts of mails,
//! replies and notes (D); events are left out. Tokens come from core's tokenizer (CJK as
//! bigrams, see there), so neither engine tokenizes: FTS5 uses its `ascii` tokenizer on
//! text that is already tokens joined by spaces, and PostgreSQL gets a `tsvector`
//! literal with positions and weights. The query side is the same: a `tsquery` literal
//! built from the parsed terms (not `websearch_to_tsquery`, which would parse the
//! agent's text a second time by other rules than SQLite's), and an FTS5 query with
//! every token quoted. No text of the user reaches either engine as syntax.
//!
//! # Kept in step by the write paths, not by triggers
//! [`refresh`] rebuilds a ticket's document inside the transaction that changed it:
//! intake's entries (new tickets and follow-ups, with their attachments: once per
//! ticket when the batch commits, after the mail rules), an agent's reply and note,
//! files added on the ticket page, and changes to a contact's name or addresses (for
//! each ticket they requested). Intake's prepare threads tokenize each mail's text
//! ahead ([`IndexText`]), so its one writer thread only copies the tokens in. Triggers were not taken because the tokenizer is
//! Rust (triggers would need it as a SQL function on both engines). Each of those paths
//! has a test in the store suite (`search.rs`).
//!
//! # Common words
//! A word such as "printer" or "Rechnung" is in a large share of all tickets (those
//! of the load bench are written from a few phrases per language). Ranking every match, then counting them and
//! grouping them by status for the tabs, read all of their index entries three times
//! for one page of 50: a search of 60 ms alone, and under 32 agents on two cores the
//! one request kind that missed its target by the most (issue 19). So a search looks
//! at the [`SEARCH_WINDOW`] newest matching tickets only (highest ids first: what a
//! support team asks about is mostly recent) and ranks, counts and pages within
//! those; when there are more, the list says so ("1000+", [`beyond_window`]) and a
//! narrower search (another word, a phrase, `from:`, a helpdesk or status filter)
//! reaches the older ones. The window is taken before the agent's helpdesks are
//! applied, so an agent of one helpdesk of several may see fewer than that many.
//!
//! # Existing databases
//! Migration 0016 creates the table; [`build_all`] then writes every ticket's document
//! in the migration's own transaction, logging its progress every 10,000 tickets.

use postdesk_core::id::{IntakeId, TicketId};
use postdesk_core::search::{
    Document, Field, IndexText, SearchQuery, SnippetHtml, Term, push_escaped_lexeme,
};

use std::collections::{BTreeMap, HashMap};

use crate::Result;
use crate::engine::{Db, Dialect, params};
use crate::sql::id_list;

/// Rebuilds the document of `ticket_id` from its rows, in the caller's transaction.
pub(crate) fn refresh(conn: &Db, ticket_id: TicketId) -> Result<()> {
    refresh_all(conn, &[ticket_id], &HashMap::new())
}

/// Rebuilds the documents of every ticket `contact` requested (its name or addresses
/// changed).
pub(crate) fn refresh_requested_by(conn: &Db, contact: postdesk_core::id::ContactId) -> Result<()> {
    let tickets: Vec<TicketId> = conn
        .prepare_cached("SELECT id FROM tickets WHERE requester_id = ?1")?
        .query_map([contact], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for chunk in tickets.chunks(BUILD_CHUNK) {
        refresh_all(conn, chunk, &HashMap::new())?;
    }
    Ok(())
}

/// Tickets whose documents are read and written together when many are rebuilt.
const BUILD_CHUNK: usize = 1_000;

/// Writes every ticket's document (migration 0016, on a database with tickets).
pub(crate) fn build_all(conn: &Db) -> Result<()> {
    let ids: Vec<TicketId> = conn
        .prepare("SELECT id FROM tickets ORDER BY id")?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()?;
    let total = ids.len();
    if total > 0 {
        tracing::info!(tickets = total, "building the search index");
    }
    let mut done = 0;
    for chunk in ids.chunks(BUILD_CHUNK) {
        refresh_all(conn, chunk, &HashMap::new())?;
        let before = done;
        done += chunk.len();
        if done / 10_000 > before / 10_000 {
            tracing::info!("search index: {done} of {total} tickets");
        }
    }
    if total > 0 {
        tracing::info!(tickets = total, "search index built");
    }
    Ok(())
}

/// A ticket's title, subject, number, requester's name and requester.
type Head = (String, String, i64, Option<String>, Option<i64>);

/// What a ticket's document is made of, as read from its rows: the head, the
/// requester's addresses, the entries' (kind, sender, text, ledger row) but events,
/// the attachments' (original name, safe name).
#[derive(Default)]
struct Parts {
    addresses: Vec<String>,
    entries: Vec<(String, Option<String>, String, Option<IntakeId>)>,
    files: Vec<(String, String)>,
}

/// The document of a ticket from what it is made of: the one place that says what goes
/// where. The texts of mails' entries are
/// taken from `indexed` (by ledger row) where intake tokenized them ahead.
fn assemble(head: Head, parts: Parts, indexed: &HashMap<IntakeId, IndexText>) -> Document {
    let (title, subject, number, requester, _) = head;
    let mut doc = Document::default();
    doc.add(Field::Title, &number.to_string());
    doc.add(Field::Title, &title);
    if subject != title {
        doc.add(Field::Title, &subject);
    }
    if let Some(name) = requester {
        doc.add(Field::People, &name);
    }
    for address in &parts.addresses {
        doc.add(Field::People, address);
    }
    for (kind, from, ..) in &parts.entries {
        if kind == "incoming"
            && let Some(from) = from
        {
            doc.add(Field::People, from);
        }
    }
    for (original, safe) in &parts.files {
        doc.add(Field::Files, original);
        if safe != original {
            doc.add(Field::Files, safe);
        }
    }
    for (_, _, text, intake) in &parts.entries {
        match intake.and_then(|id| indexed.get(&id)) {
            Some(tokens) => doc.add_indexed(Field::Body, tokens),
            None => doc.add(Field::Body, text),
        }
    }
    doc
}

/// Rebuilds the documents of `tickets` from their rows (intake's batch when it commits,
/// one ticket for [`refresh`]): each of the reads for all of them in one query, and on
/// PostgreSQL the documents written in one statement, where one ticket at a time cost
/// five round trips each. The texts of the batch's mails come from `indexed` (see
/// [`assemble`]).
pub(crate) fn refresh_all(
    conn: &Db,
    tickets: &[TicketId],
    indexed: &HashMap<IntakeId, IndexText>,
) -> Result<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let list = id_list(tickets);
    let mut heads: BTreeMap<TicketId, (Head, Parts)> = BTreeMap::new();
    let sql = format!(
        "SELECT t.id, t.title, t.mail_subject, t.number, c.name, t.requester_id
         FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id WHERE t.id IN {list}"
    );
    for row in conn.prepare(&sql)?.query_map((), |r| {
        let head: Head = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        Ok((r.get::<_, TicketId>(0)?, head))
    })? {
        let (id, head) = row?;
        heads.insert(id, (head, Parts::default()));
    }
    let sql = format!(
        "SELECT t.id, a.address FROM tickets t JOIN contact_addresses a ON a.contact_id = t.requester_id
         WHERE t.id IN {list}"
    );
    for row in conn
        .prepare(&sql)?
        .query_map((), |r| Ok((r.get::<_, TicketId>(0)?, r.get(1)?)))?
    {
        let (id, address) = row?;
        if let Some((_, parts)) = heads.get_mut(&id) {
            parts.addresses.push(address);
        }
    }
    // The texts intake tokenized ahead are not read back (nor decompressed): the
    // tokens stand in for them.
    let text = if indexed.is_empty() {
        "body_text".to_string()
    } else {
        let ahead: Vec<IntakeId> = indexed.keys().copied().collect();
        format!(
            "CASE WHEN intake_id IN {} THEN '' ELSE body_text END",
            id_list(&ahead)
        )
    };
    let sql = format!(
        "SELECT ticket_id, kind, from_addr, {text}, intake_id FROM entries
         WHERE ticket_id IN {list} AND kind <> 'event' ORDER BY id"
    );
    for row in conn.prepare(&sql)?.query_map((), |r| {
        let entry = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        Ok((r.get::<_, TicketId>(0)?, entry))
    })? {
        let (id, entry) = row?;
        if let Some((_, parts)) = heads.get_mut(&id) {
            parts.entries.push(entry);
        }
    }
    let sql = format!(
        "SELECT e.ticket_id, COALESCE(a.original_name, ''), a.safe_name FROM attachments a
         JOIN entries e ON e.id = a.entry_id WHERE e.ticket_id IN {list} ORDER BY a.id"
    );
    for row in conn.prepare(&sql)?.query_map((), |r| {
        Ok((r.get::<_, TicketId>(0)?, (r.get(1)?, r.get(2)?)))
    })? {
        let (id, file) = row?;
        if let Some((_, parts)) = heads.get_mut(&id) {
            parts.files.push(file);
        }
    }
    let documents: Vec<(TicketId, Document)> = heads
        .into_iter()
        .map(|(id, (head, parts))| (id, assemble(head, parts, indexed)))
        .collect();
    match conn.dialect() {
        Dialect::Sqlite => {
            for (id, doc) in &documents {
                write(conn, *id, doc)?;
            }
        }
        Dialect::Postgres => {
            // Two values a row: far below PostgreSQL's limit of parameters.
            for chunk in documents.chunks(10_000) {
                let sql = format!(
                    "INSERT INTO ticket_search (ticket_id, document) VALUES {}
                     ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document",
                    vec!["(?, ?)"; chunk.len()].join(", ")
                );
                let documents: Vec<TsVector> = chunk.iter().map(|(_, d)| TsVector::of(d)).collect();
                let mut values: Vec<&dyn crate::engine::Param> = Vec::new();
                for ((id, _), document) in chunk.iter().zip(&documents) {
                    values.extend_from_slice(params![*id, *document]);
                }
                conn.prepare(&sql)?.execute(values.as_slice())?;
            }
        }
    }
    Ok(())
}

pub(crate) fn write(conn: &Db, ticket_id: TicketId, doc: &Document) -> Result<()> {
    match conn.dialect() {
        Dialect::Sqlite => {
            conn.prepare_cached("DELETE FROM ticket_search WHERE rowid = ?1")?
                .execute([ticket_id])?;
            conn.prepare_cached(
                "INSERT INTO ticket_search (rowid, title, people, files, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                ticket_id,
                doc.column_text(Field::Title),
                doc.column_text(Field::People),
                doc.column_text(Field::Files),
                doc.column_text(Field::Body),
            ])?;
        }
        Dialect::Postgres => {
            conn.prepare_cached(
                "INSERT INTO ticket_search (ticket_id, document) VALUES (?1, ?2)
                 ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document",
            )?
            .execute(params![ticket_id, TsVector::of(doc)])?;
        }
    }
    Ok(())
}

/// A document as a `tsvector` parameter on PostgreSQL, sent in the binary form
/// ([`Document::tsvector_binary`]): the server reads it as it is instead of parsing a
/// literal. SQLite never takes one (its documents are FTS5 columns); there it would be
/// the same bytes as a blob.
struct TsVector(Vec<u8>);

impl TsVector {
    fn of(doc: &Document) -> Self {
        Self(doc.tsvector_binary())
    }
}

impl std::fmt::Debug for TsVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsVector({} bytes)", self.0.len())
    }
}

impl rusqlite::ToSql for TsVector {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Blob(&self.0),
        ))
    }
}

impl postgres::types::ToSql for TsVector {
    fn to_sql(
        &self,
        _: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        out.extend_from_slice(&self.0);
        Ok(postgres::types::IsNull::No)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        ty.name() == "tsvector"
    }

    postgres::types::to_sql_checked!();
}

/// The matches a search ranks, counts and pages through at most: the newest tickets
/// matching it (highest ticket ids first). See the module doc, "Common words".
pub const SEARCH_WINDOW: i64 = 1000;

/// A search's part of the ticket list's SQL: the join of its matches (alias `m`, with
/// their rank `m.score`, smaller is better) and the one bound value, the engine's query
/// text, at `?{placeholder}`.
pub(crate) struct Match {
    pub join: String,
    pub rank: String,
    pub query: String,
    /// The number of all matches (of every helpdesk), where the join counts them in the
    /// same read (PostgreSQL; see [`beyond_window`]).
    pub found: Option<String>,
}

/// The match of `query`'s words, phrases and `from:` values; `None` when it has none.
pub(crate) fn matching(dialect: Dialect, query: &SearchQuery, placeholder: usize) -> Option<Match> {
    if !query.needs_index() {
        return None;
    }
    let p = format!("?{placeholder}");
    Some(match dialect {
        // `postdesk_rank` (see `engine::fts5_rank`) is smaller for better matches, as
        // bm25 is; weights per column as PostgreSQL's A–D. The LIMIT also keeps SQLite
        // from flattening the subquery into the join, where it may evaluate the match
        // once per ticket of a helpdesk's index instead of once (suspected from the
        // 110 s searches of one-helpdesk agents under load).
        Dialect::Sqlite => Match {
            join: format!(
                " JOIN (SELECT rowid AS sid, postdesk_rank(ticket_search, 10.0, 4.0, 2.0, 1.0) AS score
                        FROM ticket_search WHERE ticket_search MATCH {p}
                        ORDER BY rowid DESC LIMIT {SEARCH_WINDOW}) m ON m.sid = t.id"
            ),
            rank: "m.score".into(),
            query: fts5_query(query),
            found: None,
        },
        // The matches are taken by the GIN index (a bitmap), sorted, and only the
        // window's newest ranked, however common the word and whatever the statistics
        // say (see [`pg_matches`]); the documents of the window are read again by key
        // for `ts_rank`, which then runs on at most `SEARCH_WINDOW` of them instead of
        // on every match. The matches are counted on the way (`found`): the bitmap
        // holds them all, where a count of its own read the index a second time.
        Dialect::Postgres => Match {
            join: format!(
                " JOIN (SELECT s.ticket_id AS sid, w.found,
                               -ts_rank(s.document, CAST(CAST({p} AS TEXT) AS tsquery)) AS score
                        FROM (SELECT ticket_id, COUNT(*) OVER () AS found FROM {matches}
                              ORDER BY ticket_id DESC LIMIT {SEARCH_WINDOW}) w
                        JOIN ticket_search s ON s.ticket_id = w.ticket_id) m ON m.sid = t.id",
                matches = pg_matches(&p),
            ),
            rank: "m.score".into(),
            query: tsquery(query),
            found: Some("m.found".into()),
        },
    })
}

/// PostgreSQL's matches of the `tsquery` text bound at `placeholder`, as a derived
/// table `h` of their `ticket_id`s, read by the GIN index on `ticket_search.document`.
///
/// Two things keep PostgreSQL on the index (issue 19; at 18,000 tickets a one-word
/// search took 65 ms without them):
/// - The `tsquery` is a scalar subquery, so the planner sees a parameter instead of a
///   constant and estimates the matches with its default (0.5 % of the rows) rather
///   than from the statistics of the document's words. With those, a common word such
///   as "printer" was estimated at several percent of all tickets, and PostgreSQL
///   read the whole table testing `@@` on each row (a sequential scan, or a walk by
///   `ticket_id DESC` until the window was full, which for a rarer word is the whole
///   table); on a database without statistics its guess depended on how big the
///   table looked. A bitmap of the index finds the matches without testing the rows
///   that do not match; its cost per match is small, but the planner rates `@@` as
///   cheap as a comparison of integers, so it never saw that.
/// - `OFFSET 0` keeps the subquery from being merged into the query around it, so the
///   window's `ORDER BY ticket_id DESC LIMIT` cannot be served by walking the primary
///   key and testing each row: the matches are taken first, then sorted.
fn pg_matches(placeholder: &str) -> String {
    format!(
        "(SELECT ticket_id FROM ticket_search
          WHERE document @@ (SELECT CAST(CAST({placeholder} AS TEXT) AS tsquery)) OFFSET 0) h"
    )
}

/// Whether `query` matches more tickets than [`SEARCH_WINDOW`] (of any helpdesk): its
/// counts are then those of the window only.
pub(crate) fn beyond_window(conn: &Db, query: &SearchQuery) -> Result<bool> {
    if !query.needs_index() {
        return Ok(false);
    }
    let text = match conn.dialect() {
        Dialect::Sqlite => fts5_query(query),
        Dialect::Postgres => tsquery(query),
    };
    let found: i64 = conn
        .prepare_cached(&window_count_sql(conn.dialect()))?
        .query_row(params![text, SEARCH_WINDOW + 1], |r| r.get(0))?;
    Ok(found > SEARCH_WINDOW)
}

/// [`beyond_window`]'s count of the matches of the engine's query text at `?1`, up to
/// `?2` of them.
pub(crate) fn window_count_sql(dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => "SELECT COUNT(*) FROM (SELECT rowid FROM ticket_search
             WHERE ticket_search MATCH ?1 LIMIT ?2) w"
            .to_string(),
        Dialect::Postgres => format!(
            "SELECT COUNT(*) FROM (SELECT ticket_id FROM {} LIMIT ?2) w",
            pg_matches("?1")
        ),
    }
}

/// An FTS5 query: each term a quoted phrase (a lone CJK character a prefix), `from:`
/// values limited to the `people` column, all of them required.
pub(crate) fn fts5_query(query: &SearchQuery) -> String {
    let phrase = |term: &Term| {
        let mut text = String::from("\"");
        for (i, token) in term.tokens.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(&token.replace('"', "\"\""));
        }
        text.push('"');
        if term.prefix {
            text.push_str(" *");
        }
        text
    };
    let mut parts: Vec<String> = query.terms.iter().map(phrase).collect();
    parts.extend(query.from.iter().map(|t| format!("people : {}", phrase(t))));
    parts.join(" AND ")
}

/// A `tsquery` literal: each term its tokens followed by each other (`<->`), a prefix
/// `:*`, `from:` values limited to weight B, all of them joined by `&`.
pub(crate) fn tsquery(query: &SearchQuery) -> String {
    let phrase = |term: &Term, weight: &str| {
        let mut text = String::from("(");
        let last = term.tokens.len() - 1;
        for (i, token) in term.tokens.iter().enumerate() {
            if i > 0 {
                text.push_str(" <-> ");
            }
            text.push('\'');
            push_escaped_lexeme(&mut text, token);
            text.push('\'');
            let prefix = if term.prefix && i == last { "*" } else { "" };
            if !prefix.is_empty() || !weight.is_empty() {
                text.push(':');
                text.push_str(prefix);
                text.push_str(weight);
            }
        }
        text.push(')');
        text
    };
    let mut parts: Vec<String> = query.terms.iter().map(|t| phrase(t, "")).collect();
    parts.extend(query.from.iter().map(|t| phrase(t, "B")));
    parts.join(" & ")
}

/// The snippets of `tickets` for `query`'s words and phrases: the best of each
/// ticket's title, subject and texts (events left out), read in two queries.
pub(crate) fn snippets(
    conn: &Db,
    tickets: &[TicketId],
    query: &SearchQuery,
) -> Result<Vec<Option<SnippetHtml>>> {
    if query.terms.is_empty() || tickets.is_empty() {
        return Ok(vec![None; tickets.len()]);
    }
    let mut texts: BTreeMap<TicketId, Vec<String>> = BTreeMap::new();
    let heads = format!(
        "SELECT id, title, mail_subject FROM tickets WHERE id IN {}",
        id_list(tickets)
    );
    for row in conn.prepare(&heads)?.query_map((), |r| {
        Ok((
            r.get::<_, TicketId>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (id, title, subject) = row?;
        texts.entry(id).or_default().extend([title, subject]);
    }
    let bodies = format!(
        "SELECT ticket_id, body_text FROM entries WHERE ticket_id IN {} AND kind <> 'event'
         ORDER BY ticket_id, id",
        id_list(tickets)
    );
    for row in conn.prepare(&bodies)?.query_map((), |r| {
        Ok((r.get::<_, TicketId>(0)?, r.get::<_, String>(1)?))
    })? {
        let (id, text) = row?;
        texts.entry(id).or_default().push(text);
    }
    Ok(tickets
        .iter()
        .map(|id| {
            let texts = texts.get(id).map(Vec::as_slice).unwrap_or_default();
            postdesk_core::search::snippet(texts.iter().map(String::as_str), &query.terms)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdesk_core::search::parse;

    #[test]
    fn engine_queries_quote_every_token() {
        let q = parse(r#"printer "paper jam" 打 from:ann@x.example"#).unwrap();
        assert_eq!(
            fts5_query(&q),
            r#""printer" AND "paper jam" AND "打" * AND people : "ann x example""#
        );
        assert_eq!(
            tsquery(&q),
            "('printer') & ('paper' <-> 'jam') & ('打':*) & ('ann':B <-> 'x':B <-> 'example':B)"
        );
    }
}
