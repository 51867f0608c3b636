//! Domain logic of postdesk, pure and I/O-free: helpdesk settings and policies,
//! ticket references in subjects, threading decisions, mail rules, the route stage and
//! the one decision of what becomes of an incoming mail (`intake::decide`).
//!
//! # Modules, and which way they depend
//!
//! Each policy module owns its settings type; [`settings`] composes them into a
//! compiled [`settings::Helpdesk`] from above. Dependencies point one way, down this
//! list, and never back (a module uses only modules of the layers below it):
//!
//! 1. What the others build on, using no module of this crate: [`address`] (the one
//!    address check), [`config_issue`] (the one error of configuration checks),
//!    [`error`] (internal errors kept with their causes), [`id`] (typed row ids), [`entry`] (a thread's entry kinds),
//!    [`reference`](mod@reference) (ticket references in subjects), [`ticket`] (the
//!    ticket field set), [`time`], [`attachments`] (the attachment policy) and
//!    [`thread`] (threading and its [`thread::ThreadSettings`]).
//! 2. Policies built on those: [`mailbox`] (IMAP mailboxes; uses `config_issue`),
//!    [`outgoing`] (SMTP, notifications, templates; uses `address`, `config_issue`,
//!    `mailbox`) and [`rules`] (mail rules and their settings; uses `config_issue`,
//!    `reference`, `thread`, `ticket`).
//! 3. [`settings`]: the `[[helpdesk]]` table and the compiled `Helpdesk`; uses
//!    `address`, `attachments`, `config_issue`, `mailbox`, `outgoing`, `reference`,
//!    `rules` and `thread`.
//! 4. The decisions on a whole helpdesk: [`route`] (uses `rules`, `settings`) and
//!    [`intake`] (uses `rules`, `settings`, `thread`), and [`report`] (the weekly
//!    reports' weeks and percentiles; uses `settings` for a helpdesk's zone).
//!
//! Tests that span modules (the rules with threading and routing) live in the
//! crate's own test module, above all of them.

pub mod address;
pub mod attachments;
pub mod config_issue;
pub mod entry;
pub mod error;
pub mod id;
pub mod intake;
// Interventions linked to tickets (issue 18).
pub mod intervention;
pub mod mailbox;
pub mod outgoing;
pub mod reference;
// The weekly reports' weeks and percentiles (issue 18).
pub mod report;
pub mod route;
pub mod rules;
// Issue 19: full-text search's tokens, query language and snippets.
pub mod search;
pub mod settings;
// Deadlines in business time (issue 18).
pub mod sla;
mod text_enum;
pub mod thread;
pub mod ticket;
pub mod time;

pub use reference::ReferenceFormat;
pub use settings::HelpdeskSettings;

text_enum::text_enum! {
    /// Where a mail came from, as the ledger records it.
    pub enum MailSource {
        /// One `.eml` file.
        File = "file",
        /// A message of an mbox file.
        Mbox = "mbox",
        /// A message of a Maildir.
        Maildir = "maildir",
        /// Standard input (`postdesk deliver`, the MTA pipe).
        Stdin = "stdin",
        /// An IMAP mailbox.
        Imap = "imap",
        /// The failed queue, processed again (`postdesk failed retry`).
        Retry = "retry",
        /// A Microsoft 365 mailbox read through Microsoft Graph (issue 20).
        Graph = "graph",
        /// A Gmail mailbox read through the Gmail API (issue 20).
        Gmail = "gmail",
        /// Written by a contact in the customer portal (issue 17).
        Portal = "portal",
    }
}

/// One mail as a source hands it over: bytes plus where it came from.
#[derive(Debug, Clone)]
pub struct RawMail {
    pub source: MailSource,
    /// Whatever finds the mail again at its source (path, `path#n` in an mbox, mailbox/UID).
    pub location: String,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests;
