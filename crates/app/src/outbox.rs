//! The outbox from the entry points' side: a reply queued, what is due sent, the sender
//! that keeps sending, an SMTP server checked. A thin entry: notify composes, queues and
//! sends; this passes it the App's store, helpdesks and delivery settings.

use postdesk_core::id::{OutboxId, TicketNumber};
use std::future::Future;

pub use postdesk_notify::send::{Delivered, Step as SmtpStep};
pub use postdesk_notify::{ReplyError, ReplyQueued};
use postdesk_store::{RegisteredHelpdesk, StoreError};
use tokio::sync::watch;

use crate::App;

/// The App's outbox (see [`App::outbox`]).
pub struct Outbox<'a> {
    app: &'a App,
}

impl App {
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox { app: self }
    }
}

impl Outbox<'_> {
    /// Records `text` from `agent` (name or email; the helpdesk's default agent when
    /// none) on ticket `number` of `helpdesk` and queues the mail, in one transaction.
    /// Who may reply is the caller's to decide (an agent's replies go through [`crate::desk`]).
    pub async fn reply(
        &self,
        helpdesk: &RegisteredHelpdesk,
        number: TicketNumber,
        agent: Option<&str>,
        text: &str,
    ) -> Result<ReplyQueued, ReplyError> {
        postdesk_notify::reply(self.app.store(), helpdesk, number, agent, text).await
    }

    /// Sends every mail due now (or only the mail `only`), once.
    pub async fn deliver_due(&self, only: Option<OutboxId>) -> Result<Delivered, StoreError> {
        postdesk_notify::send::deliver_due(
            self.app.store(),
            self.app.helpdesks(),
            &self.app.settings().delivery,
            only,
        )
        .await
    }

    /// Sends what is due every `poll_secs` until `stop` turns true (`postdesk serve`).
    /// Owns what it needs, so it can be spawned.
    pub fn sender(&self, stop: watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
        postdesk_notify::send::run(
            self.app.store().clone(),
            self.app.helpdesks().to_vec(),
            self.app.settings().delivery.clone(),
            stop,
        )
    }

    /// The helpdesk's SMTP server step by step, logging in as the sender would, with
    /// `from` as the sender address. No steps for a helpdesk without SMTP.
    pub async fn check_smtp(&self, helpdesk: &RegisteredHelpdesk, from: &str) -> Vec<SmtpStep> {
        let Some(smtp) = &helpdesk.config.outgoing.smtp else {
            return Vec::new();
        };
        let password =
            postdesk_notify::send::smtp_password(self.app.store(), &helpdesk.config).await;
        postdesk_notify::send::check(smtp, from, password).await
    }

    /// Tells the helpdesk's alert contacts that a mailbox stopped reading mail and why
    /// (issue 20: a revoked sign-in of a Graph or Gmail mailbox).
    pub async fn mailbox_alert(
        &self,
        helpdesk: &RegisteredHelpdesk,
        mailbox: &str,
        problem: &str,
    ) -> Result<Option<OutboxId>, postdesk_notify::NotifyError> {
        postdesk_notify::mailbox_alert(self.app.store(), helpdesk, mailbox, problem).await
    }
}
