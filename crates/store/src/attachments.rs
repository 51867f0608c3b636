//! The `attachments` table: an entry's attachments as intake stores them (the bytes
//! are files under the data folder, see `blobs`), and the one a download asks for.

use crate::engine::{Db, OptionalExtension, params};
use postdesk_core::id::{EntryId, HelpdeskId};

use crate::desk::AttachmentFile;
use crate::incoming::StoredAttachment;
use crate::pending::Table;
use crate::sql::id_list;
use crate::{Result, Store};

/// The attachments of entry `entry_id`; a refused one is listed without its hash.
pub(crate) fn insert(conn: &Db, entry_id: EntryId, attachments: &[StoredAttachment]) -> Result<()> {
    if let Some(pending) = conn.pending() {
        // PostgreSQL: written behind (see `pending`).
        for a in attachments {
            pending.push(
                Table::Attachments,
                vec![
                    Box::new(entry_id),
                    Box::new(a.refused.is_none().then(|| a.sha256.clone())),
                    Box::new(a.original_name.clone()),
                    Box::new(a.safe_name.clone()),
                    Box::new(a.mime_type.clone()),
                    Box::new(a.size as i64),
                    Box::new(a.content_id.clone()),
                    Box::new(a.inline),
                    Box::new(a.refused.clone()),
                ],
            );
        }
        return Ok(());
    }
    let mut statement = conn.prepare_cached(
        "INSERT INTO attachments (entry_id, sha256, original_name, safe_name, mime_type, size,
             content_id, inline, refused)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for a in attachments {
        statement.execute(params![
            entry_id,
            a.refused.is_none().then_some(&a.sha256),
            a.original_name,
            a.safe_name,
            a.mime_type,
            a.size as i64,
            a.content_id,
            a.inline,
            a.refused,
        ])?;
    }
    Ok(())
}

impl Store {
    /// An attachment reachable from a ticket the agent may see, by its content hash.
    pub async fn attachment_file(
        &self,
        sha256: &str,
        visible: &[HelpdeskId],
    ) -> Result<Option<AttachmentFile>> {
        let sql = format!(
            "SELECT a.safe_name, a.mime_type, a.size FROM attachments a
             JOIN entries e ON e.id = a.entry_id JOIN tickets t ON t.id = e.ticket_id
             WHERE a.sha256 = ?1 AND a.refused IS NULL AND t.helpdesk_id IN {} LIMIT 1",
            id_list(visible)
        );
        let sha256 = sha256.to_string();
        self.read(move |conn| {
            conn.prepare(&sql)?
                .query_row([sha256], |r| {
                    Ok(AttachmentFile {
                        safe_name: r.get(0)?,
                        mime_type: r.get(1)?,
                        size: r.get(2)?,
                    })
                })
                .optional()
        })
        .await
    }
}
