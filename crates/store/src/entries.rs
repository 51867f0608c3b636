//! The `entries` table's internal events: the one way a change to a ticket is recorded
//! for agents (status, fields, requester's addresses, rules, hand-overs). Customers
//! never see events.

use rusqlite::{Connection, params};
use sqlx::SqliteConnection;

use crate::Result;

/// Records `text` as an internal event on `ticket_id`, by `agent_id` when an agent made
/// the change (`None`: postdesk itself), inside the caller's transaction.
pub async fn insert_event(
    conn: &mut SqliteConnection,
    ticket_id: i64,
    agent_id: Option<i64>,
    text: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(EVENT_INSERT)
        .bind(ticket_id)
        .bind(agent_id)
        .bind(text)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`insert_event`] on the writer's connection (intake and the rules).
pub(crate) fn insert_event_sync(
    conn: &Connection,
    ticket_id: i64,
    agent_id: Option<i64>,
    text: &str,
    at: i64,
) -> Result<()> {
    conn.prepare_cached(EVENT_INSERT)?
        .execute(params![ticket_id, agent_id, text, at])?;
    Ok(())
}

/// Written once for both drivers: `$n` placeholders are understood by both.
const EVENT_INSERT: &str = "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
     VALUES ($1, 'event', $2, $3, FALSE, $4)";
