//! The `mailbox_subscriptions` table: the change-notification subscriptions `serve`
//! holds for API mailboxes (a Graph subscription per folder), each with its random
//! `clientState`, so that whichever instance receives a notification can tell a real
//! one from a forged one, and a restarted instance renews what it made before.

use postdesk_core::mailbox::Secret;

use crate::engine::{OptionalExtension, params};
use crate::{Result, Store, now};

/// One subscription: which mailbox folder it watches, the provider's id for it, the
/// secret every notification of it carries, and when it runs out (Unix seconds).
#[derive(Debug, Clone)]
pub struct MailboxSubscription {
    pub helpdesk: String,
    pub mailbox: String,
    pub folder: String,
    pub subscription_id: String,
    pub client_state: Secret,
    pub notification_url: String,
    pub expires_at: i64,
}

const COLUMNS: &str =
    "helpdesk, mailbox, folder, subscription_id, client_state, notification_url, expires_at";

fn row(r: &crate::engine::Row<'_>) -> Result<MailboxSubscription> {
    Ok(MailboxSubscription {
        helpdesk: r.get(0)?,
        mailbox: r.get(1)?,
        folder: r.get(2)?,
        subscription_id: r.get(3)?,
        client_state: Secret::new(r.get(4)?),
        notification_url: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

impl Store {
    /// The subscriptions of one mailbox, by folder.
    pub async fn mailbox_subscriptions(
        &self,
        helpdesk: &str,
        mailbox: &str,
    ) -> Result<Vec<MailboxSubscription>> {
        let key = [helpdesk.to_string(), mailbox.to_string()];
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mailbox_subscriptions
                     WHERE helpdesk = ?1 AND mailbox = ?2 ORDER BY folder"
            ))?
            .query_map(key, row)?
            .collect::<Result<_>>()
        })
        .await
    }

    /// The subscription of one mailbox folder.
    pub async fn mailbox_subscription_of(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<MailboxSubscription>> {
        let key = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
        ];
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mailbox_subscriptions
                     WHERE helpdesk = ?1 AND mailbox = ?2 AND folder = ?3"
            ))?
            .query_row(key, row)
            .optional()
        })
        .await
    }

    /// The subscription the provider calls `subscription_id`, if it is one of ours.
    pub async fn mailbox_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<MailboxSubscription>> {
        let id = subscription_id.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mailbox_subscriptions WHERE subscription_id = ?1"
            ))?
            .query_row([id], row)
            .optional()
        })
        .await
    }

    /// Keeps a subscription made or renewed (one per mailbox folder: a new one
    /// replaces the folder's old one).
    pub async fn save_mailbox_subscription(&self, s: &MailboxSubscription) -> Result<()> {
        let s = s.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO mailbox_subscriptions
                     (helpdesk, mailbox, folder, subscription_id, client_state,
                      notification_url, expires_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (helpdesk, mailbox, folder) DO UPDATE SET
                     subscription_id = excluded.subscription_id,
                     client_state = excluded.client_state,
                     notification_url = excluded.notification_url,
                     expires_at = excluded.expires_at,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![
                s.helpdesk,
                s.mailbox,
                s.folder,
                s.subscription_id,
                s.client_state.expose().to_string(),
                s.notification_url,
                s.expires_at,
                now()
            ])?;
            Ok(())
        })
        .await
    }

    /// Forgets a subscription (deleted at the provider, or gone there).
    pub async fn delete_mailbox_subscription(&self, subscription_id: &str) -> Result<()> {
        let id = subscription_id.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM mailbox_subscriptions WHERE subscription_id = ?1")?
                .execute([id])?;
            Ok(())
        })
        .await
    }
}
