//! Agents' notifications inside the app (issue 17): what the desk and the portal tell
//! of a change to a ticket (`[helpdesk.in_app] modified`: none, all agents, a team or
//! the concerned agents; never the agent who made it), and each agent's list, bell
//! count, read marks and watched tickets. Intake's events (new tickets, customers'
//! entries) are written by notify in the mail's transaction.

use postdesk_core::id::{AgentId, TicketId};
use postdesk_store::StoreError;
use postdesk_store::notifications::{self, NewNotification, Notification};

use crate::App;

/// The App's notifications (see [`App::notifications`]).
pub struct Notifications<'a> {
    app: &'a App,
}

impl App {
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications { app: self }
    }
}

impl Notifications<'_> {
    /// Tells the helpdesk's `modified` audience of a change to the ticket by `actor`
    /// (inside the app, and by mail per `mail_modified`), in one transaction. A
    /// failure is logged, not returned: the change itself is made.
    pub async fn modified(&self, ticket_id: TicketId, actor: Option<AgentId>, text: &str) {
        let store = self.app.store();
        let result = async {
            let helpdesk_id = store.ticket_helpdesk(ticket_id).await?;
            let Some(hd) = self.app.helpdesk(helpdesk_id).cloned() else {
                return Ok(());
            };
            let text = text.to_string();
            store
                .transaction(move |tx| {
                    let settings = &hd.config.settings.in_app;
                    let audience =
                        postdesk_notify::in_app::audience(&hd.config, &settings.modified);
                    notifications::notify(
                        tx,
                        &NewNotification {
                            ticket_id,
                            event: "modified",
                            text: &text,
                            actor,
                            audience: &audience,
                            keep_days: settings.keep_days,
                        },
                    )?;
                    match postdesk_notify::in_app::mail_modified(tx, &hd, ticket_id, &text, actor) {
                        Ok(_) => Ok(()),
                        Err(postdesk_notify::NotifyError::Database(e)) => Err(e),
                        Err(e) => {
                            tracing::warn!(ticket = %ticket_id, error = %e, "no mail of a change");
                            Ok(())
                        }
                    }
                })
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(ticket = %ticket_id, error = %e, "no notification for a change");
        }
    }

    pub async fn list(&self, agent: AgentId) -> Result<Vec<Notification>, StoreError> {
        self.app.store().notifications(agent, 200).await
    }

    pub async fn unread(&self, agent: AgentId) -> Result<i64, StoreError> {
        self.app.store().unread_notifications(agent).await
    }

    /// One of the agent's notifications, or all (`None`), read.
    pub async fn mark_read(&self, agent: AgentId, id: Option<i64>) -> Result<usize, StoreError> {
        self.app.store().mark_notifications_read(agent, id).await
    }
}
