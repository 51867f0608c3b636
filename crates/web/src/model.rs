//! What the UI shows and the API returns: one serializable shape per thing, built from
//! the store's rows, so the pages and the JSON never disagree.

pub use postdesk_store::contacts::{Contact, ContactEvent, Organization};
use postdesk_store::mailboxes::MailboxStatus;
use postdesk_store::read::{EntryView, IntakeRow, TicketSummary, TicketView};
use serde::Serialize;

use crate::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    pub id: i64,
    /// As written in subjects, e.g. `[HD#1042]`.
    pub reference: String,
    pub helpdesk: String,
    pub number: i64,
    pub title: String,
    pub status: String,
    pub closed: bool,
    pub priority: Option<String>,
    pub requester: Option<String>,
    pub organization: Option<String>,
    pub assignee: Option<String>,
    pub entries: i64,
    /// Unix seconds.
    pub reported_at: i64,
    pub modified_at: i64,
}

impl Ticket {
    pub fn new(state: &AppState, t: &TicketSummary) -> Self {
        Self {
            id: t.id,
            reference: state.reference(t.helpdesk_id, t.number),
            helpdesk: t.helpdesk.clone(),
            number: t.number,
            title: t.title.clone(),
            status: t.status.clone(),
            closed: state
                .helpdesk(t.helpdesk_id)
                .is_some_and(|hd| hd.config.is_closed(&t.status)),
            priority: t.priority.clone(),
            requester: t.requester.clone(),
            organization: t.organization.clone(),
            assignee: t.assignee.clone(),
            entries: t.entries,
            reported_at: t.reported_at,
            modified_at: t.modified_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub mail_subject: String,
    pub requester_name: Option<String>,
    pub requester_id: Option<i64>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub environment: Option<String>,
    pub manager: Option<String>,
    pub tags: Vec<String>,
    pub thread: Vec<Entry>,
}

impl TicketDetail {
    pub fn new(state: &AppState, t: &TicketView) -> Self {
        Self {
            ticket: Ticket::new(state, &t.summary),
            mail_subject: t.mail_subject.clone(),
            requester_name: t.requester_name.clone(),
            requester_id: t.requester_id,
            ticket_type: t.details.ticket_type.clone(),
            category: t.details.category.clone(),
            subcategory: t.details.subcategory.clone(),
            environment: t.details.environment.clone(),
            manager: t.details.manager.clone(),
            tags: t.details.tags.clone(),
            thread: t.entries.iter().map(Entry::new).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// `incoming`, `outgoing`, `note` or `event`.
    pub kind: String,
    /// The agent who wrote a reply or note.
    pub author: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub subject: Option<String>,
    /// The new text: quoted replies and signatures stripped.
    pub text: String,
    /// The whole text with its quotes, when it differs from `text`.
    pub full_text: Option<String>,
    /// The HTML body, sanitized when the mail was stored.
    pub html: Option<String>,
    pub classification: Option<String>,
    pub warnings: Option<String>,
    pub visible_to_customer: bool,
    pub created_at: i64,
    /// Ledger row of an incoming mail; its raw mail is at `/raw/{intake_id}`.
    pub intake_id: Option<i64>,
    pub attachments: Vec<Attachment>,
}

impl Entry {
    fn new(e: &EntryView) -> Self {
        Self {
            id: e.id,
            kind: e.kind.clone(),
            author: e.author.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            cc: e.cc.clone(),
            subject: e.subject.clone(),
            text: e.body_text.clone(),
            full_text: e
                .body_full
                .clone()
                .filter(|full| full.trim() != e.body_text.trim()),
            html: e.body_html.clone().filter(|h| !h.trim().is_empty()),
            classification: e.classification.clone(),
            warnings: e.warnings.clone(),
            visible_to_customer: e.visible_to_customer,
            created_at: e.created_at,
            intake_id: e.intake_id,
            attachments: e
                .attachments
                .iter()
                .map(|a| Attachment {
                    name: a.safe_name.clone(),
                    mime_type: a.mime_type.clone(),
                    size: a.size,
                    inline: a.inline,
                    url: a
                        .sha256
                        .as_ref()
                        .filter(|_| a.refused.is_none())
                        .map(|sha| format!("/attachments/{sha}")),
                    refused: a.refused.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// A safe file name (never a path).
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub inline: bool,
    /// Download link; none when the attachment policy refused it.
    pub url: Option<String>,
    /// Why it was refused (its bytes were not kept).
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    /// Position in the configuration: `/mailboxes/{index}/check`.
    pub index: usize,
    pub helpdesk: String,
    pub name: String,
    pub host: String,
    pub active: bool,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub processed: i64,
    pub failed: i64,
}

impl Mailbox {
    pub fn new(
        index: usize,
        mailbox: &postdesk_sources::imap::Mailbox,
        status: Option<&MailboxStatus>,
    ) -> Self {
        Self {
            index,
            helpdesk: mailbox.helpdesk.clone(),
            name: mailbox.name(),
            host: format!("{}:{}", mailbox.settings.host, mailbox.settings.port()),
            active: mailbox.settings.active,
            last_success_at: status.and_then(|s| s.last_success_at),
            last_error: status.and_then(|s| s.last_error.clone()),
            last_error_at: status.and_then(|s| s.last_error_at),
            processed: status.map_or(0, |s| s.processed),
            failed: status.map_or(0, |s| s.failed),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedMail {
    pub id: i64,
    pub helpdesk: Option<String>,
    pub source: String,
    pub location: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub received_at: i64,
}

impl From<IntakeRow> for FailedMail {
    fn from(r: IntakeRow) -> Self {
        Self {
            id: r.id,
            helpdesk: r.helpdesk,
            source: r.source,
            location: r.location,
            sender: r.sender,
            subject: r.subject,
            reason: r.reason,
            received_at: r.received_at,
        }
    }
}
