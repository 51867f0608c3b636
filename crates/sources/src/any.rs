//! One face for every kind of mailbox (`kind = "imap" | "graph" | "gmail"`): what the
//! command line and the web's buttons call — scan once, serve, check, and the
//! device-code sign-in — dispatched to the source that speaks the protocol.

use postdesk_app::App;
use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox};
use postdesk_core::mailbox::MailboxKind;
use postdesk_store::leases::LeaseFence;
use tokio::sync::watch;

use crate::api::ApiError;
use crate::gmail::GmailMailbox;
use crate::graph::GraphMailbox;
use crate::imap::{self, ImapError};

/// A configured mailbox of any kind.
#[derive(Debug, Clone)]
pub enum AnyMailbox {
    Imap(imap::Mailbox),
    Graph(GraphMailbox),
    Gmail(GmailMailbox),
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl MailboxError {
    /// Another instance took the mailbox's lease over.
    pub fn is_lease_lost(&self) -> bool {
        match self {
            Self::Imap(e) => e.is_lease_lost(),
            Self::Api(e) => e.is_lease_lost(),
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            Self::Imap(e) => e.is_transient(),
            Self::Api(e) => e.is_transient(),
        }
    }
}

impl From<&ConfiguredMailbox> for AnyMailbox {
    fn from(c: &ConfiguredMailbox) -> Self {
        match c.settings.kind {
            MailboxKind::Imap => Self::Imap(c.into()),
            MailboxKind::Graph => Self::Graph(c.into()),
            MailboxKind::Gmail => Self::Gmail(c.into()),
        }
    }
}

impl AnyMailbox {
    pub fn name(&self) -> String {
        match self {
            Self::Imap(m) => m.name(),
            Self::Graph(m) => m.name(),
            Self::Gmail(m) => m.name(),
        }
    }

    /// The same mailbox, its batches committed only while `fence` holds (see
    /// `postdesk_store::leases`).
    pub fn with_fence(mut self, fence: LeaseFence) -> Self {
        let slot = match &mut self {
            Self::Imap(m) => &mut m.fence,
            Self::Graph(m) => &mut m.fence,
            Self::Gmail(m) => &mut m.fence,
        };
        *slot = Some(fence);
        self
    }

    pub fn helpdesk(&self) -> &str {
        match self {
            Self::Imap(m) => &m.helpdesk,
            Self::Graph(m) => &m.helpdesk,
            Self::Gmail(m) => &m.helpdesk,
        }
    }

    /// Scans every folder once; the result is recorded as the mailbox's health.
    pub async fn scan_once(&self, app: &App) -> Result<Summary, MailboxError> {
        Ok(match self {
            Self::Imap(m) => m.scan_once(app).await?,
            Self::Graph(m) => m.scan_once(app).await?,
            Self::Gmail(m) => m.scan_once(app).await?,
        })
    }

    /// Reads continuously until `shutdown` turns true.
    pub async fn serve(&self, app: &App, shutdown: watch::Receiver<bool>) {
        match self {
            Self::Imap(m) => m.serve(app, shutdown).await,
            Self::Graph(m) => m.serve(app, shutdown).await,
            Self::Gmail(m) => m.serve(app, shutdown).await,
        }
    }

    /// The connection test, step by step.
    pub async fn check(&self, app: &App) -> Vec<CheckStep> {
        match self {
            Self::Imap(m) => {
                // The store keeps OAuth2 tokens: a refresh during the check must not lose a rotated one.
                let credential = imap::credential(app.store(), &m.helpdesk, &m.settings).await;
                imap::check::check(&m.settings, credential).await
            }
            Self::Graph(m) => m.check(app).await,
            Self::Gmail(m) => m.check(app).await,
        }
    }

    /// `postdesk mailboxes authorize`: only Graph's device-code sign-in has one.
    pub async fn authorize(&self, app: &App) -> Result<(), MailboxError> {
        match self {
            Self::Graph(m) => Ok(m.authorize(app).await?),
            _ => Err(ApiError::Credential(format!(
                "{} has no sign-in of its own: only kind = \"graph\" with flow = \"device-code\" is authorized this way (IMAP and Gmail take a refresh token in [helpdesk.mailbox.oauth2])",
                self.name()
            ))
            .into()),
        }
    }
}
