//! Read-side queries for the CLI and the web UI: ticket lists, threads, the failed queue.
//!
//! The views serialize as the web UI's pages and API show them: a field left out there
//! is `#[serde(skip)]`, with the reason beside it.

use crate::engine::{Db, OptionalExtension, Row, params};
use postdesk_core::MailSource;
use postdesk_core::entry::EntryKind;
use postdesk_core::id::{ContactId, EntryId, HelpdeskId, IntakeId, TicketId, TicketNumber};
use postdesk_core::intake::IntakeOutcome;
use postdesk_core::ticket::TicketFields;
use serde::Serialize;

use crate::{Result, Store, StoreError, blobs};

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: TicketId,
    pub helpdesk: String,
    pub number: TicketNumber,
    pub title: String,
    pub status: String,
    pub priority: Option<String>,
    pub requester: Option<String>,
    pub organization: Option<String>,
    pub entries: i64,
    /// Unix seconds.
    pub reported_at: i64,
    /// Agents and API callers know a helpdesk by its name (`helpdesk`).
    #[serde(skip)]
    pub helpdesk_id: HelpdeskId,
    /// Agent name.
    pub assignee: Option<String>,
    /// Unix seconds.
    pub modified_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub helpdesk: Option<String>,
    pub status: Option<String>,
    /// Substring of the requester's address.
    pub requester: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: EntryId,
    pub kind: EntryKind,
    /// The agent who wrote it (outgoing replies, notes).
    pub author: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    /// The new text: quoted replies and signatures stripped.
    #[serde(rename = "text")]
    pub body_text: String,
    /// The whole text with its quotes. Shown only where it differs from the new text.
    #[serde(skip)]
    pub body_full: Option<String>,
    /// Sanitized when the mail was stored (see `postdesk_mail::sanitize`). Shown only
    /// when not blank.
    #[serde(skip)]
    pub body_html: Option<String>,
    pub classification: Option<String>,
    /// The ledger row of an incoming mail: its raw bytes.
    pub intake_id: Option<IntakeId>,
    pub warnings: Option<String>,
    /// Incoming mail: the encoding postdesk chose for 8-bit text that had no usable
    /// label (`windows-1251`…); `None` when the mail's labels were used as written.
    pub detected_charset: Option<String>,
    /// Incoming mail: the header the sender was taken from (`From`, `Reply-To`…).
    pub sender_source: Option<String>,
    /// Incoming mail: what decided the classification (`Auto-Submitted: auto-replied`…).
    pub class_signal: Option<String>,
    pub visible_to_customer: bool,
    pub created_at: i64,
    /// Shown with their download links.
    #[serde(skip)]
    pub attachments: Vec<AttachmentView>,
}

impl EntryView {
    /// How postdesk read an incoming mail, where that is worth saying: the charset it
    /// chose, a sender not taken from From, the signal that made the mail automatic
    /// (`decoded as windows-1251`, `sender from Reply-To`, `bulk: List-Id …`). The
    /// ticket page's template says the same.
    pub fn reading_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.kind != EntryKind::Incoming {
            return notes;
        }
        if let Some(charset) = &self.detected_charset {
            notes.push(format!("decoded as {charset}"));
        }
        if let Some(source) = self.sender_source.as_deref().filter(|s| *s != "From") {
            notes.push(format!("sender from {source}"));
        }
        if let (Some(class), Some(signal)) = (&self.classification, &self.class_signal)
            && class != "normal"
        {
            notes.push(format!("{class}: {signal}"));
        }
        notes
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// Issue 17: agents switch an attachment's visibility by its id.
    pub id: postdesk_core::id::AttachmentId,
    /// `public` (the customer sees it in the portal) or `internal`.
    pub visibility: String,
    /// A safe file name (never a path).
    #[serde(rename = "name")]
    pub safe_name: String,
    pub mime_type: String,
    pub size: i64,
    pub inline: bool,
    /// Shown as a download link instead, and only when the bytes were kept.
    #[serde(skip)]
    pub sha256: Option<String>,
    /// Why the attachment policy refused it (its bytes were not kept).
    pub refused: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TicketView {
    pub summary: TicketSummary,
    pub mail_subject: String,
    pub requester_name: Option<String>,
    pub requester_id: Option<ContactId>,
    /// The ticket's fields beyond status and priority (which the summary has; the
    /// assignee is in both, shown once, with the summary).
    pub details: TicketFields,
    pub entries: Vec<EntryView>,
}

/// A row of the intake ledger. Agents see it in the failed queue, as what identifies
/// the mail and why it failed; the ledger's bookkeeping is not shown.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeRow {
    pub id: IntakeId,
    pub helpdesk: Option<String>,
    pub source: MailSource,
    pub location: String,
    #[serde(skip)]
    pub message_id: Option<String>,
    #[serde(skip)]
    pub sha256: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    /// `failed` for every mail of the failed queue.
    #[serde(skip)]
    pub outcome: IntakeOutcome,
    #[serde(skip)]
    pub classification: String,
    /// None for every mail of the failed queue: it made no ticket.
    #[serde(skip)]
    pub ticket_number: Option<TicketNumber>,
    pub reason: Option<String>,
    pub received_at: i64,
}

pub(crate) const SUMMARY_SELECT: &str =
    "SELECT t.id, h.name, t.number, t.title, t.status, t.priority,
        (SELECT MIN(a.address) FROM contact_addresses a WHERE a.contact_id = t.requester_id),
        o.name, (SELECT COUNT(*) FROM entries e WHERE e.ticket_id = t.id), t.reported_at,
        t.helpdesk_id, asg.name, t.modified_at
     FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
     LEFT JOIN organizations o ON o.id = t.organization_id
     LEFT JOIN agents asg ON asg.id = t.assignee_id";

pub(crate) fn summary(row: &Row<'_>) -> Result<TicketSummary> {
    Ok(TicketSummary {
        id: row.get(0)?,
        helpdesk: row.get(1)?,
        number: row.get(2)?,
        title: row.get(3)?,
        status: row.get(4)?,
        priority: row.get(5)?,
        requester: row.get(6)?,
        organization: row.get(7)?,
        entries: row.get(8)?,
        reported_at: row.get(9)?,
        helpdesk_id: row.get(10)?,
        assignee: row.get(11)?,
        modified_at: row.get(12)?,
    })
}

impl Store {
    /// A ticket and its whole thread. `helpdesk` may be omitted when only one has that number.
    pub async fn ticket(&self, helpdesk: Option<&str>, number: TicketNumber) -> Result<TicketView> {
        let helpdesk = helpdesk.map(str::to_string);
        self.read(move |conn| {
            let ids: Vec<TicketId> = conn
                .prepare_cached(
                    "SELECT t.id FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
                     WHERE t.number = ?1 AND (CAST(?2 AS TEXT) IS NULL OR h.name = ?2) ORDER BY t.id",
                )?
                .query_map(params![number, helpdesk], |r| r.get(0))?
                .collect::<Result<_>>()?;
            match ids.as_slice() {
                [id] => ticket_view(conn, *id),
                [] => Err(StoreError::NotFound(format!(
                    "there is no ticket #{number}"
                ))),
                _ => Err(StoreError::NotFound(format!(
                    "several helpdesks have a ticket #{number}; name one with --helpdesk"
                ))),
            }
        })
        .await
    }

    /// A ticket and its whole thread, by its database id.
    pub async fn ticket_by_id(&self, id: TicketId) -> Result<TicketView> {
        self.read(move |conn| ticket_view(conn, id)).await
    }

    /// Ledger rows with this outcome (`failed`, `ignored`…), newest first.
    pub async fn intake_rows(
        &self,
        outcome: Option<IntakeOutcome>,
        limit: i64,
    ) -> Result<Vec<IntakeRow>> {
        self.read(move |conn| {
            let sql = format!(
                "{INTAKE_SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR i.outcome = ?1) AND i.dismissed_at IS NULL
                 ORDER BY i.id DESC LIMIT ?2"
            );
            let limit = if limit > 0 { limit } else { i64::MAX };
            conn.prepare_cached(&sql)?
                .query_map(params![outcome, limit], intake_row)?
                .collect::<Result<_>>()
        })
        .await
    }

    pub async fn intake_row(&self, id: IntakeId) -> Result<IntakeRow> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("{INTAKE_SELECT} WHERE i.id = ?1"))?
                .query_row([id], intake_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("there is no intake record {id}")))
        })
        .await
    }

    /// The raw mail of a ledger row, exactly as received.
    pub async fn raw_mail(&self, intake_id: IntakeId) -> Result<Vec<u8>> {
        let (size, data): (i64, Vec<u8>) = self
            .read(move |conn| {
                conn.prepare_cached("SELECT raw_size, raw FROM intake WHERE id = ?1")?
                    .query_row([intake_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("there is no intake record {intake_id}"))
                    })
            })
            .await?;
        blobs::decompress(&data, size as usize).map_err(|source| StoreError::Io {
            path: format!("intake/{intake_id}/raw").into(),
            source,
        })
    }

    /// Counts of ledger outcomes.
    pub async fn outcome_counts(&self) -> Result<Vec<(String, i64)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT outcome, COUNT(*) FROM intake GROUP BY outcome ORDER BY outcome",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_>>()
        })
        .await
    }
}

pub(crate) fn ticket_view(conn: &Db, id: TicketId) -> Result<TicketView> {
    let summary = conn
        .prepare_cached(&format!("{SUMMARY_SELECT} WHERE t.id = ?1"))?
        .query_row([id], summary)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no ticket with id {id}")))?;
    let tags = crate::tickets::tags(conn, id)?;
    let (mail_subject, requester_name, requester_id, details) = conn
        .prepare_cached(
            "SELECT t.mail_subject, c.name, t.ticket_type, t.category, t.subcategory, t.environment,
                    a.name, m.name, c.id
             FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
             LEFT JOIN agents a ON a.id = t.assignee_id LEFT JOIN agents m ON m.id = t.manager_id
             WHERE t.id = ?1",
        )?
        .query_row([id], |head| {
            let details = TicketFields {
                ticket_type: head.get(2)?,
                category: head.get(3)?,
                subcategory: head.get(4)?,
                environment: head.get(5)?,
                assignee: head.get(6)?,
                manager: head.get(7)?,
                tags,
                ..TicketFields::default()
            };
            Ok((head.get(0)?, head.get(1)?, head.get(8)?, details))
        })?;
    let mut entries: Vec<EntryView> = conn
        .prepare_cached(
            "SELECT e.id, e.kind, e.from_addr, e.to_addrs, e.cc_addrs, e.subject, e.body_text, e.body_full,
                    e.classification, e.warnings, e.visible_to_customer, e.created_at, e.body_html,
                    e.intake_id, a.name, e.detected_charset, e.sender_source, e.class_signal
             FROM entries e LEFT JOIN agents a ON a.id = e.author_agent_id
             WHERE e.ticket_id = ?1 ORDER BY e.id",
        )?
        .query_map([id], |r| {
            Ok(EntryView {
                id: r.get(0)?,
                kind: r.get(1)?,
                author: r.get(14)?,
                from: r.get(2)?,
                to: r.get(3)?,
                cc: r.get(4)?,
                subject: r.get(5)?,
                body_text: r.get(6)?,
                body_full: r.get(7)?,
                body_html: r.get(12)?,
                classification: r.get(8)?,
                intake_id: r.get(13)?,
                warnings: r.get(9)?,
                detected_charset: r.get(15)?,
                sender_source: r.get(16)?,
                class_signal: r.get(17)?,
                visible_to_customer: r.get(10)?,
                created_at: r.get(11)?,
                attachments: Vec::new(),
            })
        })?
        .collect::<Result<_>>()?;
    // Every entry's attachments in one query (it was one query an entry: on
    // PostgreSQL a round trip each).
    let attachments: Vec<(EntryId, AttachmentView)> = conn
        .prepare_cached(
            "SELECT a.safe_name, a.mime_type, a.size, a.inline, a.sha256, a.refused, a.id,
                    a.visibility, a.entry_id
             FROM attachments a JOIN entries e ON e.id = a.entry_id
             WHERE e.ticket_id = ?1 ORDER BY a.id",
        )?
        .query_map([id], |a| {
            Ok((
                a.get(8)?,
                AttachmentView {
                    id: a.get(6)?,
                    visibility: a.get(7)?,
                    safe_name: a.get(0)?,
                    mime_type: a.get(1)?,
                    size: a.get(2)?,
                    inline: a.get(3)?,
                    sha256: a.get(4)?,
                    refused: a.get(5)?,
                },
            ))
        })?
        .collect::<Result<_>>()?;
    for (entry_id, attachment) in attachments {
        if let Some(entry) = entries.iter_mut().find(|e| e.id == entry_id) {
            entry.attachments.push(attachment);
        }
    }
    Ok(TicketView {
        summary,
        mail_subject,
        requester_name,
        requester_id,
        details,
        entries,
    })
}

const INTAKE_SELECT: &str =
    "SELECT i.id, h.name, i.source, i.location, i.message_id, i.sha256, i.sender, i.subject,
            i.outcome, i.classification, t.number, i.reason, i.received_at
     FROM intake i LEFT JOIN helpdesks h ON h.id = i.helpdesk_id LEFT JOIN tickets t ON t.id = i.ticket_id";

fn intake_row(r: &Row<'_>) -> Result<IntakeRow> {
    Ok(IntakeRow {
        id: r.get(0)?,
        helpdesk: r.get(1)?,
        source: r.get(2)?,
        location: r.get(3)?,
        message_id: r.get(4)?,
        sha256: r.get(5)?,
        sender: r.get(6)?,
        subject: r.get(7)?,
        outcome: r.get(8)?,
        classification: r.get(9)?,
        ticket_number: r.get(10)?,
        reason: r.get(11)?,
        received_at: r.get(12)?,
    })
}
