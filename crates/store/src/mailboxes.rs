//! IMAP mailbox health and remembered UIDs.

use sqlx::Row;

use crate::{Result, Store, now};

#[derive(Debug, Clone)]
pub struct MailboxStatus {
    pub helpdesk: String,
    pub mailbox: String,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub processed: i64,
    pub failed: i64,
}

impl Store {
    /// A scan went through: counts add up, the last error stays for the record.
    pub async fn mailbox_scanned(
        &self,
        helpdesk: &str,
        mailbox: &str,
        processed: usize,
        failed: usize,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_status (helpdesk, mailbox, last_success_at, processed, failed)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (helpdesk, mailbox) DO UPDATE SET last_success_at = excluded.last_success_at,
                 processed = mailbox_status.processed + excluded.processed,
                 failed = mailbox_status.failed + excluded.failed",
        )
        .bind(helpdesk)
        .bind(mailbox)
        .bind(now())
        .bind(processed as i64)
        .bind(failed as i64)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn mailbox_failed(&self, helpdesk: &str, mailbox: &str, error: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_status (helpdesk, mailbox, last_error, last_error_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (helpdesk, mailbox) DO UPDATE SET last_error = excluded.last_error,
                 last_error_at = excluded.last_error_at",
        )
        .bind(helpdesk)
        .bind(mailbox)
        .bind(error)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn mailbox_statuses(&self) -> Result<Vec<MailboxStatus>> {
        let rows = sqlx::query(
            "SELECT helpdesk, mailbox, last_success_at, last_error, last_error_at, processed, failed
             FROM mailbox_status ORDER BY helpdesk, mailbox",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| MailboxStatus {
                helpdesk: r.get(0),
                mailbox: r.get(1),
                last_success_at: r.get(2),
                last_error: r.get(3),
                last_error_at: r.get(4),
                processed: r.get(5),
                failed: r.get(6),
            })
            .collect())
    }

    /// (UIDVALIDITY, last UID processed) remembered for a folder.
    pub async fn folder_position(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>> {
        let row = sqlx::query(
            "SELECT uid_validity, last_uid FROM mailbox_folders WHERE helpdesk = $1 AND mailbox = $2 AND folder = $3",
        )
        .bind(helpdesk)
        .bind(mailbox)
        .bind(folder)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32)))
    }

    pub async fn set_folder_position(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_folders (helpdesk, mailbox, folder, uid_validity, last_uid) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (helpdesk, mailbox, folder) DO UPDATE SET uid_validity = excluded.uid_validity,
                 last_uid = excluded.last_uid",
        )
        .bind(helpdesk)
        .bind(mailbox)
        .bind(folder)
        .bind(i64::from(uid_validity))
        .bind(i64::from(last_uid))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
