//! IMAP mailbox health and remembered UIDs.

use crate::engine::{OptionalExtension, params};
use serde::Serialize;

use crate::{Result, Store, now};

/// A mailbox's health. It serializes as part of the configured mailbox it belongs to,
/// which names the mailbox and its helpdesk.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxStatus {
    #[serde(skip)]
    pub helpdesk: String,
    #[serde(skip)]
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
        let (helpdesk, mailbox) = (helpdesk.to_string(), mailbox.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO mailbox_status (helpdesk, mailbox, last_success_at, processed, failed)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (helpdesk, mailbox) DO UPDATE SET last_success_at = excluded.last_success_at,
                     processed = mailbox_status.processed + excluded.processed,
                     failed = mailbox_status.failed + excluded.failed",
            )?
            .execute(params![helpdesk, mailbox, now(), processed as i64, failed as i64])?;
            Ok(())
        })
        .await
    }

    pub async fn mailbox_failed(&self, helpdesk: &str, mailbox: &str, error: &str) -> Result<()> {
        let (helpdesk, mailbox, error) =
            (helpdesk.to_string(), mailbox.to_string(), error.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO mailbox_status (helpdesk, mailbox, last_error, last_error_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (helpdesk, mailbox) DO UPDATE SET last_error = excluded.last_error,
                     last_error_at = excluded.last_error_at",
            )?
            .execute(params![helpdesk, mailbox, error, now()])?;
            Ok(())
        })
        .await
    }

    pub async fn mailbox_statuses(&self) -> Result<Vec<MailboxStatus>> {
        self.read(|conn| {
            conn
                .prepare_cached(
                    "SELECT helpdesk, mailbox, last_success_at, last_error, last_error_at, processed, failed
                     FROM mailbox_status ORDER BY helpdesk, mailbox",
                )?
                .query_map((), |r| {
                    Ok(MailboxStatus {
                        helpdesk: r.get(0)?,
                        mailbox: r.get(1)?,
                        last_success_at: r.get(2)?,
                        last_error: r.get(3)?,
                        last_error_at: r.get(4)?,
                        processed: r.get(5)?,
                        failed: r.get(6)?,
                    })
                })?
                .collect::<Result<_>>()
        })
        .await
    }

    /// (UIDVALIDITY, last UID processed) remembered for a folder.
    pub async fn folder_position(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>> {
        let key = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
        ];
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT uid_validity, last_uid FROM mailbox_folders
                     WHERE helpdesk = ?1 AND mailbox = ?2 AND folder = ?3",
            )?
            .query_row(key, |r| {
                Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u32))
            })
            .optional()
        })
        .await
    }

    pub async fn set_folder_position(
        &self,
        helpdesk: &str,
        mailbox: &str,
        folder: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<()> {
        let key = [
            helpdesk.to_string(),
            mailbox.to_string(),
            folder.to_string(),
        ];
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO mailbox_folders (helpdesk, mailbox, folder, uid_validity, last_uid)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (helpdesk, mailbox, folder) DO UPDATE SET uid_validity = excluded.uid_validity,
                     last_uid = excluded.last_uid",
            )?
            .execute(params![key[0], key[1], key[2], i64::from(uid_validity), i64::from(last_uid)])?;
            Ok(())
        })
        .await
    }
}

/// OAuth2 tokens kept for a mailbox.
#[derive(Debug, Clone)]
pub struct StoredTokens {
    /// SHA-256 (hex) of the refresh token in the config when these were stored.
    pub configured: String,
    pub refresh_token: String,
    pub access_token: Option<String>,
    pub expires_at: Option<i64>,
}

impl Store {
    pub async fn oauth_tokens(
        &self,
        helpdesk: &str,
        mailbox: &str,
    ) -> Result<Option<StoredTokens>> {
        let key = [helpdesk.to_string(), mailbox.to_string()];
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT configured, refresh_token, access_token, expires_at FROM oauth_tokens
                     WHERE helpdesk = ?1 AND mailbox = ?2",
            )?
            .query_row(key, |r| {
                Ok(StoredTokens {
                    configured: r.get(0)?,
                    refresh_token: r.get(1)?,
                    access_token: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            })
            .optional()
        })
        .await
    }

    pub async fn save_oauth_tokens(
        &self,
        helpdesk: &str,
        mailbox: &str,
        tokens: &StoredTokens,
    ) -> Result<()> {
        let key = [helpdesk.to_string(), mailbox.to_string()];
        let tokens = tokens.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO oauth_tokens (helpdesk, mailbox, configured, refresh_token, access_token, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (helpdesk, mailbox) DO UPDATE SET configured = excluded.configured,
                     refresh_token = excluded.refresh_token, access_token = excluded.access_token,
                     expires_at = excluded.expires_at",
            )?
            .execute(params![
                key[0],
                key[1],
                tokens.configured,
                tokens.refresh_token,
                tokens.access_token,
                tokens.expires_at
            ])?;
            Ok(())
        })
        .await
    }
}
