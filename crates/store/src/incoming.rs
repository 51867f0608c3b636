//! A mail as the pipeline hands it to the store: parsed, classified, its attachments
//! already on disk, the mail rules evaluated; and what became of it. The pipeline
//! builds these (`postdesk_pipeline::prepare`); the store persists them.

use postdesk_core::MailSource;
use postdesk_core::id::{IntakeId, TicketId, TicketNumber};
use postdesk_core::intake::{self, IntakeOutcome};
use postdesk_core::route::Route;
use postdesk_core::search::IndexText;
use postdesk_mail::{Classification, ParsedMail, StrippedReply};

use crate::Result;

/// An attachment whose bytes are already on disk (or refused by policy).
#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub sha256: String,
    pub original_name: Option<String>,
    pub safe_name: String,
    pub mime_type: String,
    pub size: usize,
    pub content_id: Option<String>,
    pub inline: bool,
    /// Why the attachment policy refused it; its bytes are then only in the raw mail.
    pub refused: Option<String>,
}

/// A mail parsed, classified and ready to apply.
#[derive(Debug)]
pub struct IncomingMail {
    /// Index into the registered helpdesks.
    pub helpdesk: usize,
    /// `file`, `maildir`, `mbox`, `stdin`, `imap`…
    pub source: MailSource,
    /// Path, mailbox and UID… whatever finds the mail at its source.
    pub location: String,
    pub sha256: String,
    pub raw_size: usize,
    pub raw_compressed: Vec<u8>,
    /// Parsed mail; its attachment bytes are dropped once stored (see `attachments`).
    pub mail: ParsedMail,
    pub attachments: Vec<StoredAttachment>,
    pub classification: Classification,
    /// What decided the classification, as people read it (`Auto-Submitted: auto-replied`…).
    pub class_signal: String,
    /// Ticket numbers referenced in the subject, in order.
    pub subject_numbers: Vec<TicketNumber>,
    /// The body split at the reply marker or quote header; `None` when the mail
    /// carries nothing that could thread it to a ticket (see [`IncomingMail::reply`]).
    pub reply: Option<StrippedReply>,
    /// What the mail rules found before threading (resolved in `apply`).
    pub route: Route,
    /// The tokens of the text a new ticket shows (the whole text) and of a follow-up's
    /// (its reply, when split while preparing), made on the prepare threads for the
    /// search index; `None`: the writer tokenizes the text itself.
    pub indexed: Option<IndexText>,
    pub indexed_reply: Option<IndexText>,
    pub received_at: i64,
    /// Set when preparing failed (e.g. too large, attachment not writable): the mail is kept as failed.
    pub failure: Option<String>,
    /// Attachments being made durable on other threads; see [`IncomingMail::await_files`].
    pub files_pending: Vec<std::sync::mpsc::Receiver<Result<()>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Appended,
    Ignored,
    Failed,
    /// The same bytes were already processed; nothing was written.
    Duplicate,
}

impl IncomingMail {
    /// Waits until the attachment files this mail wrote are on disk, as its rows
    /// will point at them; one that could not be written fails the mail.
    pub fn await_files(&mut self) {
        for pending in self.files_pending.drain(..) {
            let error = match pending.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "an attachment was not written (its writer stopped)".to_string(),
            };
            self.failure.get_or_insert(error);
        }
    }

    /// What finds the mail in the ledger (its index): the Message-ID, or the
    /// SHA-256 of the bytes when there is none. Same bytes, same key.
    pub fn ledger_key(&self) -> &str {
        self.mail.message_id.as_deref().unwrap_or(&self.sha256)
    }

    /// What [`intake::decide`] needs of the mail.
    pub fn decision_input(&self, retry_of: Option<IntakeId>) -> intake::Incoming<'_> {
        intake::Incoming {
            class: self.classification,
            message_id: self.mail.message_id.as_deref(),
            matched: &self.route.matched,
            failure: self.failure.as_deref(),
            retry_of,
        }
    }

    /// The body split at the reply marker or quote header. Preparing a mail skips
    /// the split (a fifth of its cost) when nothing could make it a follow-up;
    /// should threading still append it, the split is made here.
    pub fn reply(&self, marker: Option<&str>) -> std::borrow::Cow<'_, StrippedReply> {
        match &self.reply {
            Some(reply) => std::borrow::Cow::Borrowed(reply),
            None => std::borrow::Cow::Owned(postdesk_mail::strip_reply(&self.mail.text, marker)),
        }
    }
}

impl Outcome {
    /// The outcome as the ledger row holds it; `None` for a duplicate, which writes no row.
    pub fn stored(self) -> Option<IntakeOutcome> {
        match self {
            Self::Created => Some(IntakeOutcome::Created),
            Self::Appended => Some(IntakeOutcome::Appended),
            Self::Ignored => Some(IntakeOutcome::Ignored),
            Self::Failed => Some(IntakeOutcome::Failed),
            Self::Duplicate => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.stored().map_or("duplicate", IntakeOutcome::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct IngestReport {
    pub outcome: Outcome,
    pub intake_id: IntakeId,
    pub ticket_id: Option<TicketId>,
    pub ticket_number: Option<TicketNumber>,
    pub reason: Option<String>,
    /// For a mail a rule ignored: the IMAP folder to move it to.
    pub move_to_folder: Option<String>,
}
