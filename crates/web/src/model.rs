//! What the UI shows and the API returns: one serializable shape per thing, so the pages
//! and the JSON never disagree. Most are the store's views as they are; the types here
//! add only what the store does not know (a ticket's reference and whether its status
//! closes it, download links, a mailbox's configuration) to the store's view, flattened.

use postdesk_app::mailboxes::MailboxHealth;
use postdesk_core::id::ContactId;
use postdesk_core::ticket::TicketFields;
pub use postdesk_store::contacts::{Contact, ContactEvent, Organization};
use postdesk_store::mailboxes::MailboxStatus;
pub use postdesk_store::read::IntakeRow;
use postdesk_store::read::{AttachmentView, EntryView, TicketSummary, TicketView};
use serde::Serialize;

use crate::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    #[serde(flatten)]
    pub summary: TicketSummary,
    /// As written in subjects, e.g. `[HD#1042]`.
    pub reference: String,
    /// The status is one its helpdesk counts as closed.
    pub closed: bool,
    /// The earliest running deadline (issue 18), filled by `Ticket::page`.
    pub due: Option<crate::deadlines::DueCell>,
    /// A search's snippet (issue 19): HTML, the mail text escaped and the matches in
    /// `<mark>`; only a search with words has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<postdesk_core::search::SnippetHtml>,
}

impl Ticket {
    pub fn new(state: &AppState, summary: TicketSummary) -> Self {
        Self {
            reference: state.reference(summary.helpdesk_id, summary.number),
            closed: state
                .helpdesk(summary.helpdesk_id)
                .is_some_and(|hd| hd.config.is_closed(&summary.status)),
            due: None,
            snippet: None,
            summary,
        }
    }

    pub fn list(state: &AppState, summaries: Vec<TicketSummary>) -> Vec<Self> {
        summaries
            .into_iter()
            .map(|summary| Self::new(state, summary))
            .collect()
    }

    /// A list page's tickets, with their snippets and due cells.
    pub fn page(state: &AppState, page: postdesk_store::desk::TicketPage) -> Vec<Self> {
        let mut tickets: Vec<Self> = page
            .tickets
            .into_iter()
            .zip(page.snippets)
            .map(|(summary, snippet)| Self {
                snippet,
                ..Self::new(state, summary)
            })
            .collect();
        crate::deadlines::fill_due(&page.due, &mut tickets);
        tickets
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub mail_subject: String,
    pub requester_name: Option<String>,
    pub requester_id: Option<ContactId>,
    #[serde(flatten, serialize_with = "detail_fields")]
    pub details: TicketFields,
    pub thread: Vec<Entry>,
    /// Each target and whether it was met (issue 18), filled from the ticket page's read
    /// (`deadlines::views`).
    pub deadlines: Vec<crate::deadlines::DeadlineView>,
}

/// The ticket's fields that its summary does not already have (status, priority and
/// assignee are there; the helpdesk is the summary's), so that each key is written once.
fn detail_fields<S: serde::Serializer>(fields: &TicketFields, out: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = out.serialize_map(Some(6))?;
    map.serialize_entry("ticket_type", &fields.ticket_type)?;
    map.serialize_entry("category", &fields.category)?;
    map.serialize_entry("subcategory", &fields.subcategory)?;
    map.serialize_entry("environment", &fields.environment)?;
    map.serialize_entry("manager", &fields.manager)?;
    map.serialize_entry("tags", &fields.tags)?;
    map.end()
}

impl TicketDetail {
    pub fn new(state: &AppState, view: TicketView) -> Self {
        Self {
            ticket: Ticket::new(state, view.summary),
            mail_subject: view.mail_subject,
            requester_name: view.requester_name,
            requester_id: view.requester_id,
            details: view.details,
            thread: view.entries.into_iter().map(Entry::new).collect(),
            deadlines: Vec::new(),
        }
    }
}

/// One entry of a ticket's thread, with the parts of its body worth showing.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub entry: EntryView,
    /// The whole text with its quotes, when it differs from `text`.
    pub full_text: Option<String>,
    /// The HTML body, sanitized when the mail was stored.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl Entry {
    fn new(mut entry: EntryView) -> Self {
        // Moved out of the view, which does not serialize them, so they are kept once.
        let full_text = entry
            .body_full
            .take()
            .filter(|full| full.trim() != entry.body_text.trim());
        let html = entry.body_html.take().filter(|h| !h.trim().is_empty());
        let attachments = std::mem::take(&mut entry.attachments)
            .into_iter()
            .map(Attachment::new)
            .collect();
        Self {
            entry,
            full_text,
            html,
            attachments,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    #[serde(flatten)]
    pub attachment: AttachmentView,
    /// Download link; none when the attachment policy refused it.
    pub url: Option<String>,
}

impl Attachment {
    fn new(attachment: AttachmentView) -> Self {
        let url = attachment
            .sha256
            .as_ref()
            .filter(|_| attachment.refused.is_none())
            .map(|sha| crate::routes::attachment_url(sha));
        Self { attachment, url }
    }
}

/// A configured mailbox and its health.
#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    /// Position in the configuration: `/mailboxes/{index}/check`.
    pub index: usize,
    pub helpdesk: String,
    pub name: String,
    pub host: String,
    pub active: bool,
    #[serde(flatten)]
    pub status: MailboxStatus,
}

impl Mailbox {
    pub fn new(MailboxHealth { mailbox, status }: MailboxHealth) -> Self {
        // Before its first scan a mailbox has no health on record.
        let status = status.unwrap_or_else(|| MailboxStatus {
            helpdesk: mailbox.helpdesk.clone(),
            mailbox: mailbox.name(),
            last_success_at: None,
            last_error: None,
            last_error_at: None,
            processed: 0,
            failed: 0,
        });
        Self {
            index: mailbox.index,
            name: mailbox.name(),
            // Graph and Gmail mailboxes (issue 20) have no host: their API is named.
            host: match mailbox.settings.kind {
                postdesk_core::mailbox::MailboxKind::Imap => {
                    format!("{}:{}", mailbox.settings.host, mailbox.settings.port())
                }
                postdesk_core::mailbox::MailboxKind::Graph => "Microsoft Graph".into(),
                postdesk_core::mailbox::MailboxKind::Gmail => "Gmail API".into(),
            },
            active: mailbox.settings.active,
            helpdesk: mailbox.helpdesk,
            status,
        }
    }

    pub fn list(healths: Vec<MailboxHealth>) -> Vec<Self> {
        healths.into_iter().map(Self::new).collect()
    }
}
