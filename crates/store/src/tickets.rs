//! The `tickets` table's writes: a new ticket from a mail, with the next number of its
//! helpdesk and the title made from the subject, its participants (`ticket_participants`),
//! its tags (`ticket_tags`), and the mark of who changed it last.

use crate::engine::{Db, Dialect, params};
use postdesk_core::id::{AgentId, ContactId, OrganizationId, TicketId, TicketNumber};
use postdesk_mail::ParsedMail;
use std::collections::HashMap;

use crate::incoming::IncomingMail;
use crate::pending::{Sequence, Table};
use crate::{RegisteredHelpdesk, Result, Tx, now};

/// The next number of helpdesk `?1`, at least `?2` (`first_ticket_number`): the one
/// formula for numbering, used by the insert and by the simulator. The one place the
/// dialects differ in it: SQLite's scalar two-argument MAX is PostgreSQL's GREATEST.
/// A macro, so that the statements using it are literals (no text built per mail on
/// intake's path).
macro_rules! next_number {
    (sqlite) => {
        "MAX(?2, (SELECT COALESCE(MAX(number), 0) + 1 FROM tickets WHERE helpdesk_id = ?1))"
    };
    (postgres) => {
        "GREATEST(?2, (SELECT COALESCE(MAX(number), 0) + 1 FROM tickets WHERE helpdesk_id = ?1))"
    };
}

/// The new ticket's INSERT with the number formula of one dialect.
macro_rules! insert_ticket {
    ($dialect:ident) => {
        concat!(
            "INSERT INTO tickets (helpdesk_id, number, title, mail_subject, requester_id, organization_id,
                 channel, status, priority, ticket_type, environment, manager_id, assignee_id,
                 reported_at, created_at, created_by, modified_at, modified_by)
             VALUES (?1, ",
            next_number!($dialect),
            ", ?3, ?4, ?5, ?6, 'email', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?14, ?15)
             RETURNING id, number"
        )
    };
}

/// Locks the ticket's row until the transaction ends, so that a change reads and
/// writes it without another instance's change in between (issue 15: web changes to
/// one ticket from two instances). SQLite's transactions hold the write lock from
/// their start already; PostgreSQL locks the row.
pub(crate) fn lock(conn: &Db, ticket_id: TicketId) -> Result<()> {
    let sql = match conn.dialect() {
        Dialect::Sqlite => "SELECT id FROM tickets WHERE id = ?1",
        Dialect::Postgres => "SELECT id FROM tickets WHERE id = ?1 FOR UPDATE",
    };
    conn.prepare_cached(sql)?
        .query_map([ticket_id], |_| Ok(()))?
        .for_each(drop);
    Ok(())
}

/// Marks the ticket changed by `agent_id` at `at`.
pub(crate) fn touch(conn: &Db, ticket_id: TicketId, agent_id: AgentId, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE tickets SET modified_at = ?1, modified_by = ?2 WHERE id = ?3")?
        .execute(params![at, agent_id, ticket_id])?;
    Ok(())
}

/// A ticket's tags, sorted.
pub(crate) fn tags(conn: &Db, ticket_id: TicketId) -> Result<Vec<String>> {
    conn.prepare_cached("SELECT tag FROM ticket_tags WHERE ticket_id = ?1 ORDER BY tag")?
        .query_map([ticket_id], |r| r.get(0))?
        .collect()
}

/// Adds tags a ticket does not have yet.
pub(crate) fn add_tags(conn: &Db, ticket_id: TicketId, tags: &[String]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO ticket_tags (ticket_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for tag in tags {
        insert.execute(params![ticket_id, tag])?;
    }
    Ok(())
}

/// Makes `tags` the ticket's tags.
pub(crate) fn replace_tags(conn: &Db, ticket_id: TicketId, tags: &[String]) -> Result<()> {
    conn.prepare_cached("DELETE FROM ticket_tags WHERE ticket_id = ?1")?
        .execute([ticket_id])?;
    add_tags(conn, ticket_id, tags)
}

/// The number the next new ticket of `hd` gets.
pub(crate) fn next_number(conn: &Db, hd: &RegisteredHelpdesk) -> Result<TicketNumber> {
    conn.prepare_cached(match conn.dialect() {
        Dialect::Sqlite => concat!("SELECT ", next_number!(sqlite)),
        Dialect::Postgres => concat!("SELECT ", next_number!(postgres)),
    })?
    .query_row(
        params![hd.id, hd.config.settings.first_ticket_number],
        |r| r.get(0),
    )
}

/// The new ticket: its id and number.
pub(crate) fn insert_ticket(
    conn: &Db,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    requester_id: ContactId,
    organization_id: Option<OrganizationId>,
) -> Result<(TicketId, TicketNumber)> {
    let s = &hd.config.settings;
    let m = &mail.mail;
    let now = now();
    if let Some(pending) = conn.pending() {
        // PostgreSQL: written behind, its id drawn ahead and its number counted from
        // the one read once per batch (the batch holds intake's lock).
        let id = pending.take_id(conn, Sequence::Tickets)?;
        let number = pending.next_number(hd.id, || next_number(conn, hd))?;
        pending.push(
            Table::Tickets,
            vec![
                Box::new(id),
                Box::new(hd.id),
                Box::new(number),
                Box::new(ticket_title(&m.subject)),
                Box::new(m.subject.clone()),
                Box::new(requester_id),
                Box::new(organization_id),
                Box::new("email"),
                Box::new(s.new_ticket_status.clone()),
                Box::new(s.defaults.priority.clone()),
                Box::new(s.defaults.ticket_type.clone()),
                Box::new(s.defaults.environment.clone()),
                Box::new(hd.manager_id),
                Box::new(hd.assignee_id),
                Box::new(m.date.unwrap_or(mail.received_at)),
                Box::new(now),
                Box::new(hd.default_agent_id),
                Box::new(now),
                Box::new(hd.default_agent_id),
            ],
        );
        return Ok((TicketId::new(id), number));
    }
    // The next number is derived in the INSERT itself: the batch holds the write
    // lock, and UNIQUE (helpdesk_id, number) guards it anyway.
    conn.prepare_cached(match conn.dialect() {
        Dialect::Sqlite => insert_ticket!(sqlite),
        Dialect::Postgres => insert_ticket!(postgres),
    })?
    .query_row(
        params![
            hd.id,
            s.first_ticket_number,
            ticket_title(&m.subject),
            m.subject,
            requester_id,
            organization_id,
            s.new_ticket_status,
            s.defaults.priority,
            s.defaults.ticket_type,
            s.defaults.environment,
            hd.manager_id,
            hd.assignee_id,
            m.date.unwrap_or(mail.received_at),
            now,
            hd.default_agent_id,
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Title from the subject: at most 200 characters, never empty.
pub fn ticket_title(subject: &str) -> String {
    let subject = subject.trim();
    if subject.is_empty() {
        return "(no subject)".into();
    }
    subject.chars().take(200).collect()
}

/// Sender, To and CC become participants, except our own addresses.
pub(crate) fn participant_addresses(hd: &RegisteredHelpdesk, m: &ParsedMail) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for address in m.from.iter().chain(&m.to).chain(&m.cc) {
        let key = address.email_key();
        if key.contains('@') && !hd.config.is_own_address(&key) && !addresses.contains(&key) {
            addresses.push(key);
        }
    }
    addresses
}

/// Addresses written by one statement; a mail with more (a long CC list) takes several.
const PARTICIPANTS_PER_STATEMENT: usize = 8;

pub(crate) fn insert_participants(
    conn: &Db,
    ticket_id: TicketId,
    addresses: &[String],
) -> Result<()> {
    if let Some(pending) = conn.pending() {
        // PostgreSQL: written behind (see `pending`).
        for address in addresses {
            pending.push(
                Table::Participants,
                vec![Box::new(ticket_id), Box::new(address.clone())],
            );
        }
        return Ok(());
    }
    // One statement for all of them: on PostgreSQL each statement is a round trip. A
    // mail names few addresses, so the texts for each count stay cached.
    for chunk in addresses.chunks(PARTICIPANTS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(?1, ?{})", i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO ticket_participants (ticket_id, address) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut values: Vec<&dyn crate::engine::Param> = Vec::with_capacity(chunk.len() + 1);
        values.push(&ticket_id);
        values.extend(chunk.iter().map(|a| a as &dyn crate::engine::Param));
        conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    }
    Ok(())
}

/// What the notification templates may say about a ticket.
#[derive(Debug, Clone)]
pub struct TicketInfo {
    /// The ticket's id: its address in the customer portal.
    pub id: TicketId,
    pub number: TicketNumber,
    pub title: String,
    pub status: String,
    pub created_at: i64,
    pub requester_name: String,
    /// Name and address.
    pub manager: Option<(String, Option<String>)>,
    /// Name and address.
    pub assignee: Option<(String, Option<String>)>,
}

/// What [`info`] and [`infos`] read, with the ticket's id first.
const INFO: &str =
    "SELECT t.id, t.number, t.title, t.status, t.created_at, c.name, m.name, m.email, a.name, a.email
     FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
     LEFT JOIN agents m ON m.id = t.manager_id LEFT JOIN agents a ON a.id = t.assignee_id";

fn info_row(r: &crate::engine::Row<'_>) -> Result<TicketInfo> {
    let agent = |name: Option<String>, email: Option<String>| name.map(|n| (n, email));
    Ok(TicketInfo {
        id: r.get(0)?,
        number: r.get(1)?,
        title: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        requester_name: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
        manager: agent(r.get(6)?, r.get(7)?),
        assignee: agent(r.get(8)?, r.get(9)?),
    })
}

/// Ticket `ticket_id` as the notification templates see it.
pub fn info(tx: Tx<'_>, ticket_id: TicketId) -> Result<TicketInfo> {
    tx.conn()
        .prepare_cached(&format!("{INFO} WHERE t.id = ?1"))?
        .query_row([ticket_id], info_row)
}

/// [`info`] of many tickets in one query (intake's batch); a ticket that does not
/// exist is left out.
pub fn infos(tx: Tx<'_>, ticket_ids: &[TicketId]) -> Result<HashMap<TicketId, TicketInfo>> {
    if ticket_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("{INFO} WHERE t.id IN {}", crate::sql::id_list(ticket_ids));
    tx.conn()
        .prepare(&sql)?
        .query_map((), info_row)?
        .map(|info| info.map(|i| (i.id, i)))
        .collect()
}
