//! The `mailbox_sync` table: per folder of a Graph or Gmail mailbox, the token its
//! change feed continues from (Graph's delta link, Gmail's history id).

use crate::engine::{OptionalExtension, params};

use crate::{Result, Store, now};

impl Store {
    /// The token a folder's feed continues from; `None` before its first full read
    /// or after the provider refused the token (a full resync follows).
    pub async fn sync_token(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<String>> {
        let key = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
        ];
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT sync_token FROM mailbox_sync
                     WHERE helpdesk = ?1 AND mailbox = ?2 AND folder = ?3",
            )?
            .query_row(key, |r| r.get(0))
            .optional()
        })
        .await
    }

    /// Remembers where the feed stands, once everything before it is committed and moved.
    pub async fn set_sync_token(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
        token: &str,
    ) -> Result<()> {
        let values = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
            token.to_string(),
        ];
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO mailbox_sync (helpdesk, mailbox, folder, sync_token, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (helpdesk, mailbox, folder) DO UPDATE SET
                     sync_token = excluded.sync_token, updated_at = excluded.updated_at",
            )?
            .execute(params![values[0], values[1], values[2], values[3], now()])?;
            Ok(())
        })
        .await
    }

    /// Forgets a folder's token: the provider refused it, the next read is a full one.
    pub async fn clear_sync_token(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<()> {
        let key = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
        ];
        self.write(move |tx| {
            tx.prepare_cached(
                "DELETE FROM mailbox_sync WHERE helpdesk = ?1 AND mailbox = ?2 AND folder = ?3",
            )?
            .execute(params![key[0], key[1], key[2]])?;
            Ok(())
        })
        .await
    }
}
