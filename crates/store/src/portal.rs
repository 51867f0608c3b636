//! The customer portal's tables (`portal_links`, `portal_link_requests`,
//! `portal_sessions`, and the portal's columns of `contacts`, `organizations` and
//! `attachments`), and what a signed-in contact may read.
//!
//! Everything a contact reads goes through a [`Viewer`], and every query here joins
//! the ticket it reaches back to the viewer's own tickets (or its organization's,
//! where the organization shares them) in the helpdesks whose portal is on: an id
//! guessed for a ticket, an entry or an attachment of somebody else finds no row,
//! which the caller answers as "not found". Of a ticket the contact sees only the
//! customer-visible mail (incoming and outgoing entries marked visible), and of those
//! only public attachments whose bytes were kept: never notes, events, refused files
//! or internal uploads, in lists, pages, counts and downloads alike.
//!
//! Portal sessions are a kind of their own (their own table and cookie): a contact's
//! session can never be read as an agent's (`access::Store::session` reads only
//! `sessions`), nor an agent's as a contact's. Tokens are hashed by the caller (the
//! web crate); only hashes are kept, as in `access`.

use crate::engine::{Db, OptionalExtension, params};
use postdesk_core::id::{
    AttachmentId, ContactId, EntryId, HelpdeskId, IntakeId, OrganizationId, TicketId, TicketNumber,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desk::AttachmentFile;
use crate::sql::id_list;
use crate::{Result, Store, StoreError, Tx, now};

/// How often a sign-in link may be asked for, within `window_secs`: `per_address`
/// times for one address (known or not), `per_client` times from one client address.
#[derive(Debug, Clone, Copy)]
pub struct LinkLimits {
    pub window_secs: i64,
    pub per_address: i64,
    pub per_client: i64,
    /// Requests kept at most (the oldest go first).
    pub max_rows: i64,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            window_secs: 15 * 60,
            per_address: 3,
            per_client: 10,
            max_rows: 20_000,
        }
    }
}

/// How long a sign-in link works.
pub const LINK_SECONDS: i64 = 15 * 60;

/// A signed-in contact and what they may read: their tickets, their organization's
/// where it shares them, in `helpdesks` (those with the portal on).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub contact_id: ContactId,
    /// Set only when the contact's organization shares its tickets.
    pub shared_organization: Option<OrganizationId>,
    pub helpdesks: Vec<HelpdeskId>,
}

impl Viewer {
    /// `WHERE` text limiting tickets `t` to the viewer's; binds nothing (ids only).
    fn tickets_clause(&self) -> String {
        let own = format!("t.requester_id = {}", self.contact_id);
        let mine = match self.shared_organization {
            Some(org) => format!("({own} OR t.organization_id = {org})"),
            None => own,
        };
        format!("{mine} AND t.helpdesk_id IN {}", id_list(&self.helpdesks))
    }
}

/// What a portal page may show of entries and attachments.
const VISIBLE_ENTRY: &str = "e.visible_to_customer AND e.kind IN ('incoming', 'outgoing')";
/// Entries whose public files the customer may have: the visible thread, and the
/// events that record files agents added (the event's text stays internal).
const FILE_ENTRY: &str =
    "((e.visible_to_customer AND e.kind IN ('incoming', 'outgoing')) OR e.kind = 'event')";
/// An entry whose raw mail the viewer (`?2`) may download: a mail they sent
/// themselves, with no refused file in it (its bytes are only in the raw mail).
const OWN_RAW: &str = "(e.kind = 'incoming' AND e.intake_id IS NOT NULL AND e.author_contact_id = ?2
     AND NOT EXISTS (SELECT 1 FROM attachments r WHERE r.entry_id = e.id AND r.refused IS NOT NULL))";
const VISIBLE_ATTACHMENT: &str =
    "a.refused IS NULL AND a.sha256 IS NOT NULL AND a.visibility = 'public'";

/// A live portal session.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub contact_id: ContactId,
    /// The address the contact signed in with: portal input comes from it.
    pub address: String,
    pub csrf: String,
}

/// A signed-in contact as the portal shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PortalAccount {
    pub id: ContactId,
    pub name: String,
    pub addresses: Vec<String>,
    pub organization: Option<String>,
    #[serde(skip)]
    pub organization_id: Option<OrganizationId>,
    pub shares_tickets: bool,
    pub has_password: bool,
}

/// A ticket in the contact's list.
#[derive(Debug, Clone, Serialize)]
pub struct PortalTicket {
    pub id: TicketId,
    #[serde(skip)]
    pub helpdesk_id: HelpdeskId,
    pub helpdesk: String,
    pub number: TicketNumber,
    pub title: String,
    /// As stored; the portal service replaces it with the customer's label of it.
    pub status: String,
    /// Whether the status is one of the helpdesk's closed ones (set with the label).
    pub closed: bool,
    /// The requester's name (a colleague's, on a shared ticket).
    pub requester: String,
    #[serde(skip)]
    pub requester_id: Option<ContactId>,
    /// Customer-visible entries only.
    pub entries: i64,
    pub reported_at: i64,
    pub modified_at: i64,
}

/// One customer-visible entry.
#[derive(Debug, Clone, Serialize)]
pub struct PortalEntry {
    pub id: EntryId,
    /// `incoming` (the customer's side) or `outgoing` (the helpdesk's answer).
    pub kind: String,
    pub from: Option<String>,
    /// The agent who answered.
    pub agent: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    pub created_at: i64,
    /// The viewer's own mail, without refused files: its raw bytes may be downloaded.
    pub has_raw: bool,
    pub attachments: Vec<PortalAttachment>,
}

/// A public attachment whose bytes were kept.
#[derive(Debug, Clone, Serialize)]
pub struct PortalAttachment {
    pub id: AttachmentId,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortalTicketView {
    pub ticket: PortalTicket,
    pub entries: Vec<PortalEntry>,
    /// Public files agents added to the ticket.
    pub helpdesk_files: Vec<PortalAttachment>,
    /// Every Message-ID on the ticket, oldest first: a portal answer names them in
    /// References so intake threads it to this ticket.
    #[serde(skip)]
    pub message_ids: Vec<String>,
}

/// A file an agent adds to a ticket.
#[derive(Debug, Clone)]
pub struct AgentFile {
    pub name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// A link to keep (see [`insert_link`]).
pub struct NewLink<'a> {
    pub token_hash: &'a str,
    pub contact_id: ContactId,
    pub helpdesk_id: HelpdeskId,
    pub address: &'a str,
    /// [`LINK_SECONDS`], but for tests of expiry.
    pub lifetime_secs: i64,
}

/// What is kept of an address asking for links: a hash of its lower-cased first
/// characters (bounded rows, whatever was typed).
fn address_key(address: &str) -> String {
    let address: String = address.trim().chars().take(254).collect();
    format!("{:x}", Sha256::digest(address.to_lowercase().as_bytes()))
}

/// Counts a request for a sign-in link in the transaction that answers it; `Some(wait)`
/// (seconds) when the address or the client asked too often, and then nothing is
/// counted. Known and unknown addresses count alike.
pub fn count_link_request(
    tx: Tx<'_>,
    address: &str,
    client: &str,
    limits: &LinkLimits,
) -> Result<Option<i64>> {
    let db = tx.conn();
    let now = now();
    let since = now - limits.window_secs;
    db.prepare_cached("DELETE FROM portal_link_requests WHERE created_at <= ?1")?
        .execute([since])?;
    let key = address_key(address);
    let wait = |column: &str, value: &str, limit: i64| -> Result<Option<i64>> {
        let (count, first): (i64, Option<i64>) = db
            .prepare_cached(&format!(
                "SELECT COUNT(*), MIN(created_at) FROM portal_link_requests
                 WHERE {column} = ?1 AND created_at > ?2"
            ))?
            .query_row(params![value, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((count >= limit).then(|| (first.unwrap_or(now) + limits.window_secs - now).max(1)))
    };
    let refused = wait("address_key", &key, limits.per_address)?.max(wait(
        "client",
        client,
        limits.per_client,
    )?);
    if refused.is_some() {
        return Ok(refused);
    }
    db.prepare_cached(
        "INSERT INTO portal_link_requests (address_key, client, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![key, client, now])?;
    db.prepare_cached(
        "DELETE FROM portal_link_requests WHERE id IN (
             SELECT id FROM portal_link_requests ORDER BY id
             LIMIT CASE WHEN (SELECT COUNT(*) FROM portal_link_requests) > ?1
                        THEN (SELECT COUNT(*) FROM portal_link_requests) - ?1 ELSE 0 END)",
    )?
    .execute([limits.max_rows])?;
    Ok(None)
}

/// The contact that has `address` (any case), with its name.
pub fn contact_for_address(tx: Tx<'_>, address: &str) -> Result<Option<(ContactId, String)>> {
    contact_by_address(&tx.conn(), address)
}

fn contact_by_address(db: &Db, address: &str) -> Result<Option<(ContactId, String)>> {
    db.prepare_cached(
        "SELECT c.id, c.name FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id
         WHERE a.address = ?1",
    )?
    .query_row([address.trim().to_lowercase()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

/// Keeps a new sign-in link (its hash), valid for its lifetime; links past their
/// time are deleted on the way.
pub fn insert_link(tx: Tx<'_>, link: &NewLink<'_>) -> Result<()> {
    let db = tx.conn();
    let now = now();
    db.prepare_cached("DELETE FROM portal_links WHERE expires_at < ?1")?
        .execute([now])?;
    db.prepare_cached(
        "INSERT INTO portal_links (token_hash, contact_id, helpdesk_id, address, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        link.token_hash,
        link.contact_id,
        link.helpdesk_id,
        link.address.trim().to_lowercase(),
        now,
        now + link.lifetime_secs
    ])?;
    Ok(())
}

impl Store {
    /// Uses the link `token_hash` asked for at `helpdesk_id`'s portal, once: a used,
    /// expired or unknown link, or one of another helpdesk, is `None` (and a link of
    /// another helpdesk stays unused). A good link starts the session `session_hash`.
    pub async fn redeem_portal_link(
        &self,
        token_hash: &str,
        helpdesk_id: HelpdeskId,
        session_hash: &str,
        csrf: &str,
        lifetime_secs: i64,
    ) -> Result<Option<PortalSession>> {
        let (token_hash, session_hash, csrf) = (
            token_hash.to_string(),
            session_hash.to_string(),
            csrf.to_string(),
        );
        self.write(move |tx| {
            let now = now();
            let used: Option<(ContactId, String)> = tx
                .prepare_cached(
                    "UPDATE portal_links SET used_at = ?1
                     WHERE token_hash = ?2 AND helpdesk_id = ?3 AND used_at IS NULL AND expires_at > ?1
                     RETURNING contact_id, address",
                )?
                .query_row(params![now, token_hash, helpdesk_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((contact_id, address)) = used else {
                return Ok(None);
            };
            insert_session(tx, &session_hash, contact_id, &address, &csrf, lifetime_secs)?;
            Ok(Some(PortalSession {
                contact_id,
                address,
                csrf,
            }))
        })
        .await
    }

    /// Starts a portal session (after a password sign-in).
    pub async fn create_portal_session(
        &self,
        token_hash: &str,
        contact_id: ContactId,
        address: &str,
        csrf: &str,
        lifetime_secs: i64,
    ) -> Result<()> {
        let (token_hash, address, csrf) = (
            token_hash.to_string(),
            address.to_string(),
            csrf.to_string(),
        );
        self.write(move |tx| {
            insert_session(tx, &token_hash, contact_id, &address, &csrf, lifetime_secs)
        })
        .await
    }

    /// A live portal session; never an agent's.
    pub async fn portal_session(&self, token_hash: &str) -> Result<Option<PortalSession>> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT contact_id, address, csrf FROM portal_sessions
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![token_hash, now()], |r| {
                Ok(PortalSession {
                    contact_id: r.get(0)?,
                    address: r.get(1)?,
                    csrf: r.get(2)?,
                })
            })
            .optional()
        })
        .await
    }

    pub async fn end_portal_session(&self, token_hash: &str) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM portal_sessions WHERE token_hash = ?1")?
                .execute([&token_hash])?;
            Ok(())
        })
        .await
    }

    /// The contact with `address` and their password hash, if they set one.
    pub async fn portal_password(&self, address: &str) -> Result<Option<(ContactId, String)>> {
        let address = address.trim().to_lowercase();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT c.id, c.password_hash FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id
                 WHERE a.address = ?1 AND c.password_hash IS NOT NULL",
            )?
            .query_row([&address], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
        })
        .await
    }

    /// Sets (or, with `None`, removes) the contact's portal password; their other
    /// portal sessions end.
    pub async fn set_portal_password(
        &self,
        contact_id: ContactId,
        password_hash: Option<&str>,
        keep_session: &str,
    ) -> Result<()> {
        let (hash, keep) = (password_hash.map(str::to_string), keep_session.to_string());
        self.write(move |tx| {
            tx.prepare_cached("UPDATE contacts SET password_hash = ?1 WHERE id = ?2")?
                .execute(params![hash, contact_id])?;
            tx.prepare_cached(
                "DELETE FROM portal_sessions WHERE contact_id = ?1 AND token_hash <> ?2",
            )?
            .execute(params![contact_id, keep])?;
            Ok(())
        })
        .await
    }

    /// The signed-in contact.
    pub async fn portal_account(&self, contact_id: ContactId) -> Result<PortalAccount> {
        self.read(move |conn| {
            let (name, organization, organization_id, shares, has_password) = conn
                .prepare_cached(
                    "SELECT c.name, o.name, o.id, COALESCE(o.share_tickets, FALSE), c.password_hash IS NOT NULL
                     FROM contacts c LEFT JOIN organizations o ON o.id = c.organization_id
                     WHERE c.id = ?1",
                )?
                .query_row([contact_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<OrganizationId>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound("there is no such contact".into()))?;
            let addresses = conn
                .prepare_cached(
                    "SELECT address FROM contact_addresses WHERE contact_id = ?1 ORDER BY address",
                )?
                .query_map([contact_id], |r| r.get(0))?
                .collect::<Result<_>>()?;
            Ok(PortalAccount {
                id: contact_id,
                name,
                addresses,
                organization,
                organization_id,
                shares_tickets: shares,
                has_password,
            })
        })
        .await
    }

    /// Lets the organization's contacts see each other's tickets in the portal (or not).
    pub async fn set_share_tickets(&self, organization: &str, share: bool) -> Result<()> {
        let organization = organization.to_string();
        self.write(move |tx| {
            let done = tx
                .prepare_cached(
                    "UPDATE organizations SET share_tickets = ?1 WHERE lower(name) = lower(?2)",
                )?
                .execute(params![share, organization])?;
            if done == 0 {
                return Err(StoreError::NotFound(format!(
                    "there is no organization named `{organization}`"
                )));
            }
            Ok(())
        })
        .await
    }

    /// Every organization with whether it shares its tickets, by name.
    pub async fn organization_sharing(&self) -> Result<Vec<(String, bool)>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT name, share_tickets FROM organizations ORDER BY name")?
                .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_>>()
        })
        .await
    }

    /// The viewer's tickets, most recently changed first.
    pub async fn portal_tickets(&self, viewer: &Viewer) -> Result<Vec<PortalTicket>> {
        let sql = format!(
            "{TICKET_SELECT} WHERE {} ORDER BY t.modified_at DESC, t.id DESC LIMIT 500",
            viewer.tickets_clause()
        );
        self.read(move |conn| {
            conn.prepare(&sql)?
                .query_map((), portal_ticket)?
                .collect::<Result<_>>()
        })
        .await
    }

    /// One of the viewer's tickets with its customer-visible thread; NotFound for any
    /// other id.
    pub async fn portal_ticket(&self, viewer: &Viewer, id: TicketId) -> Result<PortalTicketView> {
        let sql = format!(
            "{TICKET_SELECT} WHERE t.id = ?1 AND {}",
            viewer.tickets_clause()
        );
        let viewer_contact = viewer.contact_id;
        self.read(move |conn| {
            let ticket = conn
                .prepare(&sql)?
                .query_row([id], portal_ticket)
                .optional()?
                .ok_or_else(not_yours)?;
            let mut entries: Vec<PortalEntry> = conn
                .prepare_cached(&format!(
                    "SELECT e.id, e.kind, e.from_addr, ag.name, e.subject, e.body_text, e.created_at,
                            {OWN_RAW}
                     FROM entries e LEFT JOIN agents ag ON ag.id = e.author_agent_id
                     WHERE e.ticket_id = ?1 AND {VISIBLE_ENTRY} ORDER BY e.id"
                ))?
                .query_map(params![id, viewer_contact], |r| {
                    let kind: String = r.get(1)?;
                    let outgoing = kind == "outgoing";
                    Ok(PortalEntry {
                        id: r.get(0)?,
                        from: r.get(2)?,
                        agent: if outgoing { r.get(3)? } else { None },
                        kind,
                        subject: r.get(4)?,
                        text: r.get(5)?,
                        created_at: r.get(6)?,
                        has_raw: r.get(7)?,
                        attachments: Vec::new(),
                    })
                })?
                .collect::<Result<_>>()?;
            let mut attachments = conn.prepare_cached(&format!(
                "SELECT a.id, a.safe_name, a.mime_type, a.size FROM attachments a
                 WHERE a.entry_id = ?1 AND {VISIBLE_ATTACHMENT} ORDER BY a.id"
            ))?;
            for entry in &mut entries {
                entry.attachments = attachments
                    .query_map([entry.id], |r| {
                        Ok(PortalAttachment {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            mime_type: r.get(2)?,
                            size: r.get(3)?,
                        })
                    })?
                    .collect::<Result<_>>()?;
            }
            let helpdesk_files = conn
                .prepare_cached(&format!(
                    "SELECT a.id, a.safe_name, a.mime_type, a.size FROM attachments a
                     JOIN entries e ON e.id = a.entry_id
                     WHERE e.ticket_id = ?1 AND e.kind = 'event' AND {VISIBLE_ATTACHMENT} ORDER BY a.id"
                ))?
                .query_map([id], |r| {
                    Ok(PortalAttachment {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        mime_type: r.get(2)?,
                        size: r.get(3)?,
                    })
                })?
                .collect::<Result<_>>()?;
            let message_ids = conn
                .prepare_cached(
                    "SELECT message_id FROM entries WHERE ticket_id = ?1 AND message_id IS NOT NULL
                     ORDER BY id",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_>>()?;
            Ok(PortalTicketView {
                ticket,
                entries,
                helpdesk_files,
                message_ids,
            })
        })
        .await
    }

    /// A public attachment of a visible entry of one of the viewer's tickets: its file
    /// and hash; `None` for any other id.
    pub async fn portal_attachment(
        &self,
        viewer: &Viewer,
        id: AttachmentId,
    ) -> Result<Option<(AttachmentFile, String)>> {
        let sql = format!(
            "SELECT a.safe_name, a.mime_type, a.size, a.sha256 FROM attachments a
             JOIN entries e ON e.id = a.entry_id JOIN tickets t ON t.id = e.ticket_id
             WHERE a.id = ?1 AND {VISIBLE_ATTACHMENT} AND {FILE_ENTRY} AND {}",
            viewer.tickets_clause()
        );
        self.read(move |conn| {
            conn.prepare(&sql)?
                .query_row([id], |r| {
                    Ok((
                        AttachmentFile {
                            safe_name: r.get(0)?,
                            mime_type: r.get(1)?,
                            size: r.get(2)?,
                        },
                        r.get(3)?,
                    ))
                })
                .optional()
        })
        .await
    }

    /// The ledger row of a visible mail the viewer sent on one of their tickets, with
    /// no refused file in it (its raw mail); `None` for any other id.
    pub async fn portal_raw_mail(
        &self,
        viewer: &Viewer,
        entry: EntryId,
    ) -> Result<Option<IntakeId>> {
        let sql = format!(
            "SELECT e.intake_id FROM entries e JOIN tickets t ON t.id = e.ticket_id
             WHERE e.id = ?1 AND {OWN_RAW} AND {VISIBLE_ENTRY} AND {}",
            viewer.tickets_clause()
        );
        let viewer_contact = viewer.contact_id;
        self.read(move |conn| {
            conn.prepare(&sql)?
                .query_row(params![entry, viewer_contact], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Who the viewer is: their organization, when it shares tickets.
    pub async fn portal_viewer(
        &self,
        contact_id: ContactId,
        helpdesks: Vec<HelpdeskId>,
    ) -> Result<Viewer> {
        let shared = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT o.id FROM contacts c JOIN organizations o ON o.id = c.organization_id
                     WHERE c.id = ?1 AND o.share_tickets",
                )?
                .query_row([contact_id], |r| r.get(0))
                .optional()
            })
            .await?;
        Ok(Viewer {
            contact_id,
            shared_organization: shared,
            helpdesks,
        })
    }

    /// Closes one of the viewer's tickets (`status`), recorded as an event that names
    /// the contact's `address`, by the helpdesk's default `agent`. NotFound for any
    /// other id.
    pub async fn close_portal_ticket(
        &self,
        viewer: &Viewer,
        id: TicketId,
        status: &str,
        address: &str,
        agent: postdesk_core::id::AgentId,
    ) -> Result<()> {
        let sql = format!(
            "SELECT t.status FROM tickets t WHERE t.id = ?1 AND {}",
            viewer.tickets_clause()
        );
        let (status, address) = (status.to_string(), address.to_string());
        self.write(move |tx| {
            let old: String = tx
                .prepare(&sql)?
                .query_row([id], |r| r.get(0))
                .optional()?
                .ok_or_else(not_yours)?;
            if old == status {
                return Ok(());
            }
            let now = now();
            tx.prepare_cached("UPDATE tickets SET status = ?1 WHERE id = ?2")?
                .execute(params![status, id])?;
            crate::entries::insert_event(
                tx,
                id,
                Some(agent),
                &format!(
                    "Status changed from {old} to {status} by the customer {address} in the portal."
                ),
                now,
            )?;
            crate::tickets::touch(tx, id, agent, now)?;
            Ok(())
        })
        .await
    }

    /// Files an agent adds to a ticket of `visible` (their helpdesks): kept by content
    /// hash as intake keeps mail attachments, on an internal event that names them,
    /// `public` (the customer sees them in the portal) or internal. Returns the event.
    pub async fn add_agent_files(
        &self,
        ticket_id: TicketId,
        agent: postdesk_core::id::AgentId,
        files: Vec<AgentFile>,
        public: bool,
        visible: &[HelpdeskId],
    ) -> Result<EntryId> {
        if files.is_empty() {
            return Err(StoreError::Invalid("choose a file first".into()));
        }
        let data_dir = self.data_dir().to_path_buf();
        // Written, flushed and in place before any row points at them.
        let stored = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|file| {
                    let sha256 = format!("{:x}", Sha256::digest(&file.bytes));
                    if let Some(staged) =
                        crate::blobs::stage_attachment(&data_dir, &sha256, &file.bytes)?
                    {
                        staged.finish()?;
                    }
                    let mime_type = file.mime_type.trim().to_ascii_lowercase();
                    Ok(crate::incoming::StoredAttachment {
                        sha256,
                        original_name: Some(file.name.clone()),
                        safe_name: postdesk_mail::parse::safe_name(Some(&file.name), &mime_type),
                        mime_type,
                        size: file.bytes.len(),
                        content_id: None,
                        inline: false,
                        refused: None,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("storing the files stopped: {e}")))??;
        let sql = format!(
            "SELECT t.id FROM tickets t WHERE t.id = ?1 AND t.helpdesk_id IN {}",
            id_list(visible)
        );
        self.write(move |tx| {
            tx.prepare(&sql)?
                .query_row([ticket_id], |r| r.get::<_, TicketId>(0))
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound("there is no such ticket in your helpdesks".into())
                })?;
            let agent_name: String = tx
                .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
                .query_row([agent], |r| r.get(0))?;
            let names: Vec<&str> = stored.iter().map(|a| a.safe_name.as_str()).collect();
            let visibility = if public { "public" } else { "internal" };
            let now = now();
            let text = format!("{agent_name} added {} ({visibility}).", names.join(", "));
            let entry = crate::entries::insert_event(tx, ticket_id, Some(agent), &text, now)?;
            crate::attachments::insert(tx, entry, &stored)?;
            crate::search::refresh(tx, ticket_id)?;
            tx.prepare_cached("UPDATE attachments SET visibility = ?1 WHERE entry_id = ?2")?
                .execute(params![visibility, entry])?;
            crate::tickets::touch(tx, ticket_id, agent, now)?;
            Ok(entry)
        })
        .await
    }

    /// Makes an attachment public (the customer sees it) or internal, recorded as an
    /// event by `agent` on its ticket. Returns the ticket.
    pub async fn set_attachment_visibility(
        &self,
        id: AttachmentId,
        public: bool,
        agent: postdesk_core::id::AgentId,
        visible: &[HelpdeskId],
    ) -> Result<TicketId> {
        let sql = format!(
            "SELECT t.id, a.safe_name FROM attachments a JOIN entries e ON e.id = a.entry_id
             JOIN tickets t ON t.id = e.ticket_id WHERE a.id = ?1 AND t.helpdesk_id IN {}",
            id_list(visible)
        );
        self.write(move |tx| {
            let (ticket_id, name): (TicketId, String) = tx
                .prepare(&sql)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound("there is no such attachment in your helpdesks".into())
                })?;
            let value = if public { "public" } else { "internal" };
            let agent_name: String = tx
                .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
                .query_row([agent], |r| r.get(0))?;
            tx.prepare_cached("UPDATE attachments SET visibility = ?1 WHERE id = ?2")?
                .execute(params![value, id])?;
            let now = now();
            crate::entries::insert_event(
                tx,
                ticket_id,
                Some(agent),
                &format!("Attachment {name} made {value} by {agent_name}."),
                now,
            )?;
            crate::tickets::touch(tx, ticket_id, agent, now)?;
            Ok(ticket_id)
        })
        .await
    }
}

fn not_yours() -> StoreError {
    StoreError::NotFound("there is no such ticket among yours".into())
}

fn insert_session(
    db: &Db,
    token_hash: &str,
    contact_id: ContactId,
    address: &str,
    csrf: &str,
    lifetime_secs: i64,
) -> Result<()> {
    let now = now();
    db.prepare_cached("DELETE FROM portal_sessions WHERE expires_at < ?1")?
        .execute([now])?;
    db.prepare_cached(
        "INSERT INTO portal_sessions (token_hash, contact_id, address, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        token_hash,
        contact_id,
        address,
        csrf,
        now,
        now + lifetime_secs
    ])?;
    Ok(())
}

const TICKET_SELECT: &str = "SELECT t.id, t.helpdesk_id, h.name, t.number, t.title, t.status,
        COALESCE(c.name, ''), t.requester_id,
        (SELECT COUNT(*) FROM entries e WHERE e.ticket_id = t.id AND e.visible_to_customer
             AND e.kind IN ('incoming', 'outgoing')),
        t.reported_at, t.modified_at
     FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
     LEFT JOIN contacts c ON c.id = t.requester_id";

fn portal_ticket(r: &crate::engine::Row<'_>) -> Result<PortalTicket> {
    Ok(PortalTicket {
        id: r.get(0)?,
        helpdesk_id: r.get(1)?,
        helpdesk: r.get(2)?,
        number: r.get(3)?,
        title: r.get(4)?,
        status: r.get(5)?,
        closed: false,
        requester: r.get(6)?,
        requester_id: r.get(7)?,
        entries: r.get(8)?,
        reported_at: r.get(9)?,
        modified_at: r.get(10)?,
    })
}
