//! Domain logic of postdesk, pure and I/O-free: helpdesk settings and policies,
//! ticket references in subjects, threading decisions, mail rules, the route stage and
//! the one decision of what becomes of an incoming mail (`intake::decide`).

pub mod address;
pub mod attachments;
pub mod config_issue;
pub mod intake;
pub mod mailbox;
pub mod outgoing;
pub mod reference;
pub mod route;
pub mod rules;
pub mod settings;
pub mod thread;
pub mod time;

pub use reference::ReferenceFormat;
pub use settings::HelpdeskSettings;

/// One mail as a source hands it over: bytes plus where it came from.
#[derive(Debug, Clone)]
pub struct RawMail {
    /// `file`, `mbox`, `maildir`, `stdin`, `imap`…
    pub source: &'static str,
    /// Whatever finds the mail again at its source (path, `path#n` in an mbox, mailbox/UID).
    pub location: String,
    pub bytes: Vec<u8>,
}
