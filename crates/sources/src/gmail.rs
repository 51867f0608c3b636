//! Gmail mailboxes through the Gmail API (`kind = "gmail"`).

use postdesk_app::App;
use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox};
use postdesk_core::mailbox::MailboxSettings;
use tokio::sync::watch;

use crate::api::ApiError;

#[derive(Debug, Clone)]
pub struct GmailMailbox {
    pub helpdesk: String,
    pub helpdesk_index: usize,
    pub settings: MailboxSettings,
}

impl From<&ConfiguredMailbox> for GmailMailbox {
    fn from(c: &ConfiguredMailbox) -> Self {
        Self {
            helpdesk: c.helpdesk.clone(),
            helpdesk_index: c.helpdesk_index,
            settings: c.settings.clone(),
        }
    }
}

impl GmailMailbox {
    pub fn name(&self) -> String {
        self.settings.display_name()
    }
    pub async fn scan_once(&self, _app: &App) -> Result<Summary, ApiError> {
        todo!()
    }
    pub async fn serve(&self, _app: &App, _shutdown: watch::Receiver<bool>) {}
    pub async fn check(&self, _app: &App) -> Vec<CheckStep> {
        Vec::new()
    }
}
