//! The `entries` table's internal entries: the one way a change to a ticket is recorded
//! for agents (status, fields, requester's addresses, rules, hand-overs) and the one
//! way an agent's note is written. Customers never see either. (Incoming mails'
//! entries are written by intake, replies' by the outbox.)

use rusqlite::{Connection, params};

use crate::Result;

/// Records `text` as an internal event on `ticket_id`, by `agent_id` when an agent made
/// the change (`None`: postdesk itself), inside the caller's transaction.
pub(crate) fn insert_event(
    conn: &Connection,
    ticket_id: i64,
    agent_id: Option<i64>,
    text: &str,
    at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
         VALUES (?1, 'event', ?2, ?3, FALSE, ?4)",
    )?
    .execute(params![ticket_id, agent_id, text, at])?;
    Ok(())
}

/// An agent's internal note on `ticket_id`; returns its id.
pub(crate) fn insert_note(
    conn: &Connection,
    ticket_id: i64,
    agent_id: i64,
    text: &str,
    at: i64,
) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
             VALUES (?1, 'note', ?2, ?3, FALSE, ?4) RETURNING id",
        )?
        .query_row(params![ticket_id, agent_id, text, at], |r| r.get(0))?)
}
