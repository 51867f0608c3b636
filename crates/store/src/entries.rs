//! The `entries` table: an incoming mail's entry (with its attachments, see
//! `attachments`), the one way a change to a ticket is recorded for agents (status,
//! fields, requester's addresses, rules, hand-overs) and the one way an agent's note is
//! written, and an agent's reply as sent (the outbox queues its mail in the same
//! transaction). Customers never see events or notes.

use crate::engine::{Db, params};
use postdesk_core::id::{AgentId, ContactId, EntryId, IntakeId, TicketId};
use postdesk_mail::{Address, Classification, SenderSource};

use crate::incoming::IncomingMail;
use crate::outbox::OutgoingEntry;
use crate::pending::{Sequence, Table, Value};
use crate::{RegisteredHelpdesk, Result, attachments};

/// Records `text` as an internal event on `ticket_id`, by `agent_id` when an agent made
/// the change (`None`: postdesk itself), inside the caller's transaction; returns its id.
pub(crate) fn insert_event(
    conn: &Db,
    ticket_id: TicketId,
    agent_id: Option<AgentId>,
    text: &str,
    at: i64,
) -> Result<EntryId> {
    if let Some(pending) = conn.pending() {
        // PostgreSQL, in intake's batch: written behind (see `pending`).
        let id = pending.take_id(conn, Sequence::Entries)?;
        pending.push(Table::Entries, event_row(id, ticket_id, agent_id, text, at));
        return Ok(EntryId::new(id));
    }
    conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
         VALUES (?1, 'event', ?2, ?3, FALSE, ?4) RETURNING id",
    )?
    .query_row(params![ticket_id, agent_id, text, at], |r| r.get(0))
}

/// The customer-visible `outgoing` entry of an agent's reply; returns its id.
pub(crate) fn insert_outgoing(conn: &Db, entry: &OutgoingEntry<'_>, at: i64) -> Result<EntryId> {
    let id = conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, from_addr, to_addrs, cc_addrs, subject,
             body_text, message_id, in_reply_to, refs, visible_to_customer, created_at)
         VALUES (?1, 'outgoing', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, TRUE, ?11) RETURNING id",
    )?
    .query_row(
        params![
            entry.ticket_id,
            entry.agent_id,
            entry.from,
            entry.to.join(", "),
            entry.cc.join(", "),
            entry.subject,
            entry.body,
            entry.message_id,
            entry.in_reply_to,
            entry.references.join(" "),
            at,
        ],
        |r| r.get(0),
    )?;
    crate::search::refresh(conn, entry.ticket_id)?;
    Ok(id)
}

/// An agent's internal note on `ticket_id`; returns its id.
pub(crate) fn insert_note(
    conn: &Db,
    ticket_id: TicketId,
    agent_id: AgentId,
    text: &str,
    at: i64,
) -> Result<EntryId> {
    let id = conn
        .prepare_cached(
            "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
             VALUES (?1, 'note', ?2, ?3, FALSE, ?4) RETURNING id",
        )?
        .query_row(params![ticket_id, agent_id, text, at], |r| r.get(0))?;
    crate::search::refresh(conn, ticket_id)?;
    Ok(id)
}

/// An event's row as `pending` writes it behind: what `insert_event` sets, every
/// other column NULL (typed as the column, which PostgreSQL's client checks).
fn event_row(
    id: i64,
    ticket_id: TicketId,
    agent_id: Option<AgentId>,
    text: &str,
    at: i64,
) -> Vec<Value> {
    let text_null = || Box::new(None::<String>) as Value;
    let mut row: Vec<Value> = vec![
        Box::new(id),
        Box::new(ticket_id),
        Box::new("event"),
        Box::new(agent_id),
        Box::new(None::<ContactId>),
    ];
    row.extend((5..9).map(|_| text_null()));
    row.push(Box::new(text.to_string()));
    row.extend((10..17).map(|_| text_null()));
    row.push(Box::new(false));
    row.push(Box::new(None::<IntakeId>));
    row.push(Box::new(at));
    row.extend((20..23).map(|_| text_null()));
    row
}

fn join_addresses(list: &[Address]) -> String {
    list.iter()
        .map(|a| a.email.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where an incoming mail's entry goes, and what of the mail it shows.
pub(crate) struct IncomingEntry<'a> {
    pub ticket_id: TicketId,
    /// The contact the entry is written by (the requester, or who informed).
    pub author: ContactId,
    pub intake_id: IntakeId,
    /// The text shown: the whole mail for a new ticket, the reply above its quote
    /// for a follow-up.
    pub body_text: &'a str,
}

/// The mail's entry and its attachments.
pub(crate) fn insert_incoming(
    conn: &Db,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    entry: &IncomingEntry<'_>,
) -> Result<()> {
    let IncomingEntry {
        ticket_id,
        author,
        intake_id,
        body_text,
    } = *entry;
    let m = &mail.mail;
    let visible = matches!(
        mail.classification,
        Classification::Normal | Classification::Bulk
    );
    let warnings = (!m.warnings.is_empty()).then(|| m.warnings.join("\n"));
    if let Some(pending) = conn.pending() {
        // PostgreSQL: written behind, its id drawn ahead (see `pending`).
        let id = pending.take_id(conn, Sequence::Entries)?;
        pending.push(
            Table::Entries,
            vec![
                Box::new(id),
                Box::new(ticket_id),
                Box::new("incoming"),
                Box::new(hd.default_agent_id),
                Box::new(author),
                Box::new(m.from.as_ref().map(|a| a.email.clone())),
                Box::new(join_addresses(&m.to)),
                Box::new(join_addresses(&m.cc)),
                Box::new(m.subject.clone()),
                Box::new(body_text.to_string()),
                Box::new((body_text != m.text).then(|| m.text.clone())),
                Box::new(m.html.clone()),
                Box::new(m.message_id.clone()),
                Box::new(m.in_reply_to.join(" ")),
                Box::new(m.references.join(" ")),
                Box::new(mail.classification.as_str()),
                Box::new(warnings),
                Box::new(visible),
                Box::new(intake_id),
                Box::new(m.date.unwrap_or(mail.received_at)),
                Box::new(m.detected_charset.clone()),
                Box::new(m.sender_source.map(SenderSource::as_str)),
                Box::new(mail.class_signal.clone()),
            ],
        );
        if !mail.attachments.is_empty() {
            attachments::insert(conn, EntryId::new(id), &mail.attachments)?;
        }
        // Its ticket's search document is rebuilt when the batch commits.
        return Ok(());
    }
    let inserted_id: i64 = conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, author_contact_id, from_addr, to_addrs, cc_addrs,
             subject, body_text, body_full, body_html, message_id, in_reply_to, refs, classification,
             warnings, visible_to_customer, intake_id, created_at, detected_charset, sender_source,
             class_signal)
         VALUES (?1, 'incoming', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21) RETURNING id",
    )?
    .query_row(params![
        ticket_id,
        hd.default_agent_id,
        author,
        m.from.as_ref().map(|a| a.email.as_str()),
        join_addresses(&m.to),
        join_addresses(&m.cc),
        m.subject,
        body_text,
        // Kept only when it differs from what is shown (a follow-up cut at its quote).
        (body_text != m.text).then_some(&m.text),
        m.html,
        m.message_id,
        m.in_reply_to.join(" "),
        m.references.join(" "),
        mail.classification.as_str(),
        warnings,
        visible,
        intake_id,
        m.date.unwrap_or(mail.received_at),
        m.detected_charset,
        m.sender_source.map(SenderSource::as_str),
        mail.class_signal,
    ], |r| r.get(0))?;
    if !mail.attachments.is_empty() {
        attachments::insert(conn, EntryId::new(inserted_id), &mail.attachments)?;
    }
    // The ticket's search document is rebuilt when intake's batch commits.
    Ok(())
}
