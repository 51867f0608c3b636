//! The transactional outbox: outgoing mails rendered and queued in the transaction of
//! the change that causes them, claimed by a sender with a lease, marked sent, deferred
//! or failed. A row stays `queued` until its mail was accepted, so a crash never loses
//! one; the only repeat (accepted, then a crash before it was recorded) carries the
//! same bytes and Message-ID.

use crate::engine::{Dialect, OptionalExtension, Row, params};
use postdesk_core::id::{
    AgentId, ContactId, EntryId, HelpdeskId, IntakeId, OutboxId, TicketId, TicketNumber,
};
use postdesk_core::outgoing::{Event, OutboxStatus};

use crate::{Result, Store, StoreError, Tx, now};

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct NewOutgoing<'a> {
    pub helpdesk_id: HelpdeskId,
    pub ticket_id: Option<TicketId>,
    pub intake_id: Option<IntakeId>,
    pub entry_id: Option<EntryId>,
    pub kind: Event,
    /// Without angle brackets.
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    /// The whole message as it goes over SMTP.
    pub raw: &'a [u8],
    /// Kept, never sent (`outgoing.enabled = false`).
    pub suppressed: bool,
}

/// Writes `mail` to the outbox on `conn` (the caller's transaction).
pub fn queue(tx: Tx<'_>, mail: &NewOutgoing<'_>) -> Result<OutboxId> {
    let conn = tx.conn();
    let recipients = mail
        .recipients
        .iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ");
    let now = now();
    let inserted_id: i64 = conn.prepare_cached(
        "INSERT INTO outbox (helpdesk_id, ticket_id, intake_id, entry_id, kind, message_id, envelope_from,
             recipients, subject, raw, status, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) RETURNING id",
    )?
    .query_row(params![
        mail.helpdesk_id,
        mail.ticket_id,
        mail.intake_id,
        mail.entry_id,
        mail.kind,
        mail.message_id,
        mail.envelope_from,
        recipients,
        mail.subject,
        mail.raw,
        if mail.suppressed {
            OutboxStatus::Suppressed
        } else {
            OutboxStatus::Queued
        },
        now,
    ], |r| r.get(0))?;
    Ok(OutboxId::new(inserted_id))
}

/// Acknowledgements queued to `recipient` (any status) since `since`.
pub fn acknowledgements_since(tx: Tx<'_>, recipient: &str, since: i64) -> Result<i64> {
    let conn = tx.conn();
    conn.prepare_cached(
        "SELECT COUNT(*) FROM outbox WHERE recipients = ?1 AND kind = 'acknowledgement'
             AND created_at >= ?2",
    )?
    .query_row(params![recipient.trim().to_ascii_lowercase(), since], |r| {
        r.get(0)
    })
}

/// An outbox row as `postdesk outbox list|show` shows it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: OutboxId,
    pub helpdesk: String,
    pub ticket_number: Option<TicketNumber>,
    pub kind: Event,
    pub message_id: String,
    pub envelope_from: String,
    pub recipients: String,
    pub subject: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const ROW_COLUMNS: &str = "o.id, h.name, t.number, o.kind, o.message_id, o.envelope_from, o.recipients,
    o.subject, o.status, o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.sent_at
    FROM outbox o JOIN helpdesks h ON h.id = o.helpdesk_id LEFT JOIN tickets t ON t.id = o.ticket_id";

fn outbox_row(r: &Row<'_>) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        helpdesk: r.get(1)?,
        ticket_number: r.get(2)?,
        kind: r.get(3)?,
        message_id: r.get(4)?,
        envelope_from: r.get(5)?,
        recipients: r.get(6)?,
        subject: r.get(7)?,
        status: r.get(8)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        sent_at: r.get(13)?,
    })
}

/// A mail a sender has claimed: it is its own until the lease ends.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: OutboxId,
    pub helpdesk_id: HelpdeskId,
    pub ticket_id: Option<TicketId>,
    pub message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: i64,
}

/// The context of an agent's reply.
#[derive(Debug, Clone)]
pub struct ReplyContext {
    pub ticket_id: TicketId,
    pub helpdesk_id: HelpdeskId,
    pub number: TicketNumber,
    pub title: String,
    pub status: String,
    pub requester_name: Option<String>,
    /// The address the requester last wrote from, else any of theirs.
    pub requester_email: Option<String>,
    /// Everyone else who was To/CC on the ticket's mail (lower-case).
    pub participants: Vec<String>,
    /// Message-ID of the latest mail of the ticket (incoming or outgoing) and its References.
    pub last_message_id: Option<String>,
    pub last_references: Vec<String>,
}

/// An agent's reply as it is recorded on the ticket.
#[derive(Debug, Clone)]
pub struct OutgoingEntry<'a> {
    pub ticket_id: TicketId,
    pub agent_id: AgentId,
    pub from: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
}

/// Adds the customer-visible `outgoing` entry of a reply; returns its id.
pub fn add_outgoing_entry(tx: Tx<'_>, entry: &OutgoingEntry<'_>) -> Result<EntryId> {
    let conn = tx.conn();
    let now = now();
    let inserted_id: i64 = conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, from_addr, to_addrs, cc_addrs, subject,
             body_text, message_id, in_reply_to, refs, visible_to_customer, created_at)
         VALUES (?1, 'outgoing', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, TRUE, ?11) RETURNING id",
    )?
    .query_row(params![
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
        now,
    ], |r| r.get(0))?;
    let id = EntryId::new(inserted_id);
    conn.prepare_cached("UPDATE tickets SET modified_at = ?1, modified_by = ?2 WHERE id = ?3")?
        .execute(params![now, entry.agent_id, entry.ticket_id])?;
    crate::search::refresh(&conn, entry.ticket_id)?;
    Ok(id)
}

/// What a reply to ticket `number` of helpdesk `helpdesk_id` needs to know.
pub fn reply_context(
    tx: Tx<'_>,
    helpdesk_id: HelpdeskId,
    number: TicketNumber,
) -> Result<ReplyContext> {
    let conn = tx.conn();
    let (ticket_id, title, status, requester_id, requester_name) = conn
        .prepare_cached(
            "SELECT t.id, t.title, t.status, t.requester_id, c.name FROM tickets t
             LEFT JOIN contacts c ON c.id = t.requester_id
             WHERE t.helpdesk_id = ?1 AND t.number = ?2",
        )?
        .query_row(params![helpdesk_id, number], |r| {
            Ok((
                r.get::<_, TicketId>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<ContactId>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no ticket number {number}")))?;
    let addresses: Vec<String> = conn
        .prepare_cached("SELECT address FROM contact_addresses WHERE contact_id = ?1")?
        .query_map([requester_id], |r| r.get(0))?
        .collect::<Result<_>>()?;
    // The address the requester last wrote from, if it is one of theirs.
    let last_from: Option<String> = conn
        .prepare_cached(
            "SELECT LOWER(from_addr) FROM entries WHERE ticket_id = ?1 AND kind = 'incoming'
             AND author_contact_id = ?2 AND from_addr IS NOT NULL ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![ticket_id, requester_id], |r| r.get(0))
        .optional()?;
    let requester_email = last_from
        .filter(|a| addresses.contains(a))
        .or_else(|| addresses.first().cloned());
    let participants = conn
        .prepare_cached(
            "SELECT address FROM ticket_participants WHERE ticket_id = ?1 ORDER BY address",
        )?
        .query_map([ticket_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| Some(p) != requester_email.as_ref())
        .collect();
    let last: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT message_id, refs FROM entries WHERE ticket_id = ?1 AND message_id IS NOT NULL
             AND kind IN ('incoming', 'outgoing') AND visible_to_customer ORDER BY id DESC LIMIT 1",
        )?
        .query_row([ticket_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (last_message_id, last_references) = match last {
        Some((id, refs)) => (
            id,
            refs.unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    Ok(ReplyContext {
        ticket_id,
        helpdesk_id,
        number,
        title,
        status,
        requester_name,
        requester_email,
        participants,
        last_message_id,
        last_references,
    })
}

/// The claim of due mails for one sender. The dialects differ in one clause: on
/// PostgreSQL, where senders of several instances claim at once, rows another sender is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`) instead of claimed twice; SQLite's
/// one writer at a time needs none. The outer condition is checked again on the row
/// as it is when locked.
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE id IN (
                 SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?2
                 AND (CAST(?3 AS BIGINT) IS NULL OR id = ?3) ORDER BY id LIMIT ?4",
            $lock,
            ") AND status = 'queued' AND next_attempt_at <= ?2
             RETURNING id, helpdesk_id, ticket_id, message_id, envelope_from, recipients, raw, attempts"
        )
    };
}

impl Store {
    /// Outbox rows, newest first; `status` filters.
    pub async fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {ROW_COLUMNS} WHERE (CAST(?1 AS TEXT) IS NULL OR o.status = ?1) ORDER BY o.id DESC LIMIT ?2"
            );
            conn
                .prepare_cached(&sql)?
                .query_map(params![status, limit], outbox_row)?
                .collect::<Result<_>>()
        })
        .await
    }

    pub async fn outbox_row(&self, id: OutboxId) -> Result<OutboxRow> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {ROW_COLUMNS} WHERE o.id = ?1"))?
                .query_row([id], outbox_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("no outgoing mail with id {id}")))
        })
        .await
    }

    /// The message exactly as it is (or was) sent.
    pub async fn outbox_raw(&self, id: OutboxId) -> Result<Vec<u8>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT raw FROM outbox WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("no outgoing mail with id {id}")))
        })
        .await
    }

    /// Puts failed (or waiting) mails back in the queue, due now, with their attempts
    /// counted from zero. Sent and suppressed mails are left alone. Returns how many.
    pub async fn outbox_retry(&self, ids: &[OutboxId]) -> Result<u64> {
        let ids = ids.to_vec();
        self.write(move |tx| {
            let mut retry = tx.prepare_cached(
                "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = ?1, last_error = NULL
                 WHERE id = ?2 AND status IN ('failed', 'queued')",
            )?;
            let mut changed = 0;
            for id in ids {
                changed += retry.execute(params![now(), id])? as u64;
            }
            Ok(changed)
        })
        .await
    }

    /// Every failed mail back in the queue; returns how many.
    pub async fn outbox_retry_failed(&self) -> Result<u64> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(
                    "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = ?1, last_error = NULL
                     WHERE status = 'failed'",
                )?
                .execute([now()])? as u64)
        })
        .await
    }

    /// Claims up to `limit` mails (of `only` when given) that were due at `due_by`,
    /// for `lease_secs`: one statement, so two senders never hold the same mail.
    pub async fn outbox_claim(
        &self,
        only: Option<OutboxId>,
        due_by: i64,
        lease_secs: u64,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        self.write(move |tx| {
            let lease_end = now().saturating_add(lease_secs as i64);
            let mut claimed: Vec<Claimed> = tx
                .prepare_cached(match tx.dialect() {
                    Dialect::Sqlite => claim!(""),
                    Dialect::Postgres => claim!(" FOR UPDATE SKIP LOCKED"),
                })?
                .query_map(params![lease_end, due_by, only, limit], |r| {
                    let recipients: String = r.get(5)?;
                    Ok(Claimed {
                        id: r.get(0)?,
                        helpdesk_id: r.get(1)?,
                        ticket_id: r.get(2)?,
                        message_id: r.get(3)?,
                        envelope_from: r.get(4)?,
                        recipients: recipients
                            .split(", ")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                        raw: r.get(6)?,
                        attempts: r.get(7)?,
                    })
                })?
                .collect::<Result<_>>()?;
            claimed.sort_by_key(|c| c.id);
            Ok(claimed)
        })
        .await
    }

    pub async fn outbox_mark_sent(&self, id: OutboxId) -> Result<()> {
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET status = 'sent', sent_at = ?1, attempts = attempts + 1, last_error = NULL
                 WHERE id = ?2",
            )?
            .execute(params![now(), id])?;
            Ok(())
        })
        .await
    }

    /// A transient failure: tried again at `next_attempt_at`.
    pub async fn outbox_defer(
        &self,
        id: OutboxId,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<()> {
        let error = error.to_string();
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1, last_error = ?2 WHERE id = ?3",
            )?
            .execute(params![next_attempt_at, error, id])?;
            Ok(())
        })
        .await
    }

    /// A permanent failure, recorded on the ticket too.
    pub async fn outbox_fail(&self, id: OutboxId, error: &str) -> Result<()> {
        let error = error.to_string();
        self.write(move |tx| {
            let failed: Option<(Option<TicketId>, String, String)> = tx
                .prepare_cached(
                    "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?1 WHERE id = ?2
                     RETURNING ticket_id, kind, recipients",
                )?
                .query_row(params![error, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((Some(ticket_id), kind, recipients)) = failed {
                let text = format!(
                    "Outgoing mail {id} ({kind}) to {recipients} could not be delivered: {error}. \
                     See `postdesk outbox show {id}`; `postdesk outbox retry {id}` sends it again."
                );
                crate::entries::insert_event(tx, ticket_id, None, &text, now())?;
            }
            Ok(())
        })
        .await
    }

    /// Keeps a queued mail as suppressed (sending is switched off).
    pub async fn outbox_suppress(&self, id: OutboxId) -> Result<()> {
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET status = 'suppressed' WHERE id = ?1 AND status = 'queued'",
            )?
            .execute([id])?;
            Ok(())
        })
        .await
    }

    /// Rows per status.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_>>()
        })
        .await
    }
}

/// The agent named `name_or_email`, created when missing (an `@` makes it the email too).
pub fn agent(tx: Tx<'_>, name_or_email: &str) -> Result<AgentId> {
    crate::ensure_agent(&tx.conn(), name_or_email)
}
