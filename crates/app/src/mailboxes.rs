//! The configured IMAP mailboxes and the two things the desk does with them: "test
//! connection" and "scan now". Speaking IMAP is an adapter's job (`crates/sources`), so
//! this layer only names the two operations, as [`MailboxControl`]; the binary
//! implements it with the IMAP code and hands it to the web. The web thus tests and
//! scans mailboxes without depending on the IMAP code.

use std::future::Future;
use std::pin::Pin;

use postdesk_core::mailbox::MailboxSettings;
use postdesk_store::mailboxes::MailboxStatus;

use crate::App;
use crate::desk::{Desk, DeskError};
use crate::intake::Summary;

/// A mailbox as the configuration lists it, and the helpdesk it feeds.
#[derive(Debug, Clone)]
pub struct ConfiguredMailbox {
    /// Position among all configured mailboxes, active or not (`/mailboxes/{index}/…`).
    pub index: usize,
    pub helpdesk: String,
    /// Position of that helpdesk in [`App::helpdesks`]: its mail goes there.
    pub helpdesk_index: usize,
    pub settings: MailboxSettings,
}

impl ConfiguredMailbox {
    pub fn name(&self) -> String {
        self.settings.display_name()
    }
}

/// A mailbox and its health on record (none before its first scan or check).
#[derive(Debug, Clone)]
pub struct MailboxHealth {
    pub mailbox: ConfiguredMailbox,
    pub status: Option<MailboxStatus>,
}

/// One step of a connection test: what it found, or what to fix.
#[derive(Debug, Clone)]
pub struct CheckStep {
    pub name: String,
    pub result: Result<String, String>,
}

/// A future a [`MailboxControl`] returns (boxed, so the trait can be used as `dyn`).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Talking to a mailbox's server, for the desk's buttons.
pub trait MailboxControl: Send + Sync {
    /// Every step it can (address, connection, login, folders), stopping at the
    /// first that makes the next impossible.
    fn check<'a>(&'a self, mailbox: &'a ConfiguredMailbox) -> Pending<'a, Vec<CheckStep>>;

    /// Scans every folder once and records the result as the mailbox's status;
    /// the error is said in words, for the agent.
    fn scan<'a>(&'a self, mailbox: &'a ConfiguredMailbox) -> Pending<'a, Result<Summary, String>>;
}

impl App {
    /// Every configured mailbox, active or not, in the configuration's order.
    pub fn mailboxes(&self) -> Vec<ConfiguredMailbox> {
        let mut found = Vec::new();
        for (helpdesk_index, helpdesk) in self.helpdesks().iter().enumerate() {
            let settings = &helpdesk.config.settings;
            for mailbox in &settings.mailboxes {
                found.push(ConfiguredMailbox {
                    index: found.len(),
                    helpdesk: settings.name.clone(),
                    helpdesk_index,
                    settings: mailbox.clone(),
                });
            }
        }
        found
    }
}

fn health(mailbox: ConfiguredMailbox, statuses: &[MailboxStatus]) -> MailboxHealth {
    let status = statuses
        .iter()
        .find(|s| s.helpdesk == mailbox.helpdesk && s.mailbox == mailbox.name())
        .cloned();
    MailboxHealth { mailbox, status }
}

impl Desk<'_> {
    /// The mailboxes of the agent's helpdesks, with their health.
    pub async fn mailboxes(&self) -> Result<Vec<MailboxHealth>, DeskError> {
        let statuses = self.app.store().mailbox_statuses().await?;
        Ok(self
            .app
            .mailboxes()
            .into_iter()
            .filter(|m| self.sees_helpdesk_named(&m.helpdesk))
            .map(|m| health(m, &statuses))
            .collect())
    }

    fn mailbox(&self, index: usize) -> Result<ConfiguredMailbox, DeskError> {
        self.app
            .mailboxes()
            .into_iter()
            .nth(index)
            .filter(|m| self.sees_helpdesk_named(&m.helpdesk))
            .ok_or_else(|| {
                DeskError::NotFound(format!("there is no mailbox {index} in your helpdesks"))
            })
    }

    /// The "test connection" button: each step with what to fix. What it found is the
    /// mailbox's health too, so a failure is recorded.
    pub async fn check_mailbox(
        &self,
        control: &dyn MailboxControl,
        index: usize,
    ) -> Result<(MailboxHealth, Vec<CheckStep>), DeskError> {
        let mailbox = self.mailbox(index)?;
        let steps = control.check(&mailbox).await;
        let store = self.app.store();
        if let Some(problem) = steps.iter().find_map(|s| s.result.as_ref().err()) {
            store
                .mailbox_failed(&mailbox.helpdesk, &mailbox.name(), problem)
                .await?;
        }
        let statuses = store.mailbox_statuses().await?;
        Ok((health(mailbox, &statuses), steps))
    }

    /// The "scan now" button. A scan that fails is [`DeskError::Invalid`]: the agent
    /// is told why (the status records it too).
    pub async fn scan_mailbox(
        &self,
        control: &dyn MailboxControl,
        index: usize,
    ) -> Result<Summary, DeskError> {
        let mailbox = self.mailbox(index)?;
        control
            .scan(&mailbox)
            .await
            .map_err(|problem| DeskError::Invalid(format!("{}: {problem}", mailbox.name())))
    }
}
