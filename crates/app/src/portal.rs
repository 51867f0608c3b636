//! The customer portal's service (issue 17): what a contact may do once signed in,
//! and how they sign in. The web's `/portal` pages call this; what a contact may read
//! is decided by the store's portal queries (`postdesk_store::portal`), each limited
//! to a [`Viewer`].
//!
//! - **Sign-in links** are asked for with an address; known and unknown addresses
//!   get the same answer. A known contact's link is kept (hashed) and its mail queued
//!   in the outbox in one transaction, after the request was counted against the
//!   limits per address and per client address. Tokens and hashes come from the caller.
//! - **Input**: a new ticket or an answer becomes a mail from the contact to the
//!   helpdesk, taken in by intake as mail is (ledger, attachment policy, threading,
//!   `reply_to_closed`, the acknowledgement and agents' notifications), except that the
//!   helpdesk's mail rules do not run on it (they are about mail) and an answer sets
//!   `portal_reply_status`.
//! - **Statuses** reach the contact as the helpdesk's customer label of them.

use postdesk_core::MailSource;
use postdesk_core::RawMail;
use postdesk_core::id::{AttachmentId, ContactId, EntryId, HelpdeskId, TicketId};
use postdesk_core::rules::RuleSet;
use postdesk_notify::portal::{CustomerMail, Upload, customer_mail, queue_link, safe_mime_type};

use postdesk_store::access::AgentAccount;
use postdesk_store::portal::{
    self, AgentFile, LinkLimits, NewLink, PortalAccount, PortalSession, PortalTicket,
    PortalTicketView, Viewer,
};
use postdesk_store::{Outcome, RegisteredHelpdesk, StoreError};

use crate::App;
use crate::intake::{Pipeline, PipelineError};

pub use postdesk_notify::portal::Upload as PortalUpload;

/// Why a portal action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Not there, or not the contact's.
    #[error("{0}")]
    NotFound(String),
    /// The contact's to fix.
    #[error("{0}")]
    Invalid(String),
    /// Asked too often; try again in this many seconds.
    #[error("too many sign-in links were asked for; try again in {} minute(s)", (.0 + 59) / 60)]
    TooMany(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] PipelineError),
    /// The server's fault; the cause keeps its chain for the log.
    #[error(transparent)]
    Internal(postdesk_core::error::BoxError),
}

/// The longest subject and text taken.
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 100_000;
pub const MAX_UPLOADS: usize = 10;

/// A request for a sign-in link.
pub struct LinkRequest<'a> {
    pub helpdesk_id: HelpdeskId,
    pub address: &'a str,
    /// The client's address, as the sign-in limits count it.
    pub client: &'a str,
    /// The random token to mail, and its hash to keep.
    pub token: &'a str,
    pub token_hash: &'a str,
}

/// A new ticket or an answer, as the contact wrote it.
pub struct Input<'a> {
    pub subject: &'a str,
    pub text: &'a str,
    pub uploads: &'a [Upload],
}

/// What became of portal input.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub ticket_id: TicketId,
    /// Files the attachment policy refused: (name, reason). Listed to the contact.
    pub refused: Vec<(String, String)>,
}

/// The portal (see [`App::portal`]).
pub struct Portal<'a> {
    app: &'a App,
}

impl App {
    pub fn portal(&self) -> Portal<'_> {
        Portal { app: self }
    }
}

impl Portal<'_> {
    /// The helpdesks whose portal is on, in the configuration's order.
    pub fn helpdesks(&self) -> Vec<&RegisteredHelpdesk> {
        self.app
            .helpdesks()
            .iter()
            .filter(|h| h.config.settings.portal)
            .collect()
    }

    /// A helpdesk whose portal is on.
    pub fn helpdesk(&self, id: HelpdeskId) -> Option<&RegisteredHelpdesk> {
        self.app.helpdesk(id).filter(|h| h.config.settings.portal)
    }

    fn portal_helpdesk(&self, id: HelpdeskId) -> Result<&RegisteredHelpdesk, PortalError> {
        self.helpdesk(id)
            .ok_or_else(|| PortalError::NotFound("there is no such helpdesk portal".into()))
    }

    /// Counts the request and, for a contact's address, keeps the link and queues its
    /// mail. The same `Ok(())` for known and unknown addresses; `TooMany` for either
    /// when asked too often.
    pub async fn request_link(
        &self,
        request: &LinkRequest<'_>,
        limits: LinkLimits,
    ) -> Result<(), PortalError> {
        let hd = self.portal_helpdesk(request.helpdesk_id)?.clone();
        let Some(address) = postdesk_core::address::normalize(request.address) else {
            return Err(PortalError::Invalid(
                "that is not an email address; write it as name@example.com".into(),
            ));
        };
        let base = postdesk_notify::portal_link(&hd).unwrap_or_default();
        let link = format!("{base}/link?h={}&t={}", hd.id, request.token);
        let (client, token_hash) = (request.client.to_string(), request.token_hash.to_string());
        let outcome = self
            .app
            .store()
            .transaction(move |tx| {
                if let Some(wait) = portal::count_link_request(tx, &address, &client, &limits)? {
                    return Ok::<_, StoreError>(Some(wait));
                }
                let Some((contact_id, name)) = portal::contact_for_address(tx, &address)? else {
                    return Ok(None);
                };
                portal::insert_link(
                    tx,
                    &NewLink {
                        token_hash: &token_hash,
                        contact_id,
                        helpdesk_id: hd.id,
                        address: &address,
                        lifetime_secs: portal::LINK_SECONDS,
                    },
                )?;
                match queue_link(tx, &hd, &name, &address, &link) {
                    Ok(_) => {}
                    Err(postdesk_notify::NotifyError::Database(e)) => return Err(e),
                    // The same answer as for anyone: the reason is for the log.
                    Err(e) => tracing::warn!(error = %e, "no sign-in mail"),
                }
                Ok(None)
            })
            .await?;
        match outcome {
            Some(wait) => Err(PortalError::TooMany(wait)),
            None => Ok(()),
        }
    }

    /// Uses a sign-in link once: a session for its contact, or `None`.
    pub async fn redeem(
        &self,
        helpdesk_id: HelpdeskId,
        token_hash: &str,
        session_hash: &str,
        csrf: &str,
        lifetime_secs: i64,
    ) -> Result<Option<PortalSession>, PortalError> {
        if self.helpdesk(helpdesk_id).is_none() {
            return Ok(None);
        }
        Ok(self
            .app
            .store()
            .redeem_portal_link(token_hash, helpdesk_id, session_hash, csrf, lifetime_secs)
            .await?)
    }

    /// What the signed-in contact may read.
    pub async fn viewer(&self, contact_id: ContactId) -> Result<Viewer, PortalError> {
        let helpdesks = self.helpdesks().iter().map(|h| h.id).collect();
        Ok(self
            .app
            .store()
            .portal_viewer(contact_id, helpdesks)
            .await?)
    }

    pub async fn account(&self, contact_id: ContactId) -> Result<PortalAccount, PortalError> {
        Ok(self.app.store().portal_account(contact_id).await?)
    }

    /// The viewer's tickets, each status as its customer label.
    pub async fn tickets(&self, viewer: &Viewer) -> Result<Vec<PortalTicket>, PortalError> {
        let mut tickets = self.app.store().portal_tickets(viewer).await?;
        for t in &mut tickets {
            self.label(t);
        }
        Ok(tickets)
    }

    /// One of the viewer's tickets, its status as its customer label.
    pub async fn ticket(
        &self,
        viewer: &Viewer,
        id: TicketId,
    ) -> Result<PortalTicketView, PortalError> {
        let mut view = self.app.store().portal_ticket(viewer, id).await?;
        self.label(&mut view.ticket);
        Ok(view)
    }

    /// Whether the contact may close this ticket: the helpdesk allows it and it is open.
    pub fn may_close(&self, ticket: &PortalTicket) -> bool {
        !ticket.closed
            && self
                .helpdesk(ticket.helpdesk_id)
                .is_some_and(|h| h.config.settings.customer_may_close)
    }

    fn label(&self, ticket: &mut PortalTicket) {
        if let Some(hd) = self.app.helpdesk(ticket.helpdesk_id) {
            ticket.closed = hd.config.is_closed(&ticket.status);
            ticket.status = hd.config.customer_status(&ticket.status);
        }
    }

    /// Opens a ticket at `helpdesk_id` for the viewer, as a mail from `address`.
    pub async fn create(
        &self,
        viewer: &Viewer,
        address: &str,
        helpdesk_id: HelpdeskId,
        input: &Input<'_>,
    ) -> Result<Submitted, PortalError> {
        let hd = self.portal_helpdesk(helpdesk_id)?;
        let subject = check_subject(input.subject)?;
        self.take_in(viewer, address, hd, subject, input, &[]).await
    }

    /// Adds the viewer's answer to one of their tickets.
    pub async fn reply(
        &self,
        viewer: &Viewer,
        address: &str,
        ticket_id: TicketId,
        input: &Input<'_>,
    ) -> Result<Submitted, PortalError> {
        let view = self.app.store().portal_ticket(viewer, ticket_id).await?;
        let hd = self.portal_helpdesk(view.ticket.helpdesk_id)?;
        let subject = format!(
            "Re: {} {}",
            hd.config.reference.render(view.ticket.number),
            view.ticket.title
        );
        self.take_in(viewer, address, hd, &subject, input, &view.message_ids)
            .await
    }

    /// Closes one of the viewer's tickets, where the helpdesk lets customers.
    pub async fn close(
        &self,
        viewer: &Viewer,
        address: &str,
        ticket_id: TicketId,
    ) -> Result<(), PortalError> {
        let view = self.app.store().portal_ticket(viewer, ticket_id).await?;
        let hd = self.portal_helpdesk(view.ticket.helpdesk_id)?;
        if !hd.config.settings.customer_may_close {
            return Err(PortalError::Invalid(
                "this helpdesk closes its tickets itself; write an answer to say it is solved"
                    .into(),
            ));
        }
        let status = hd
            .config
            .settings
            .closed_statuses
            .first()
            .cloned()
            .unwrap_or_else(|| "closed".into());
        self.app
            .store()
            .close_portal_ticket(viewer, ticket_id, &status, address, hd.default_agent_id)
            .await?;
        self.app
            .notifications()
            .modified(
                ticket_id,
                None,
                &format!("{address} closed the ticket in the portal."),
            )
            .await;
        Ok(())
    }

    async fn take_in(
        &self,
        viewer: &Viewer,
        address: &str,
        hd: &RegisteredHelpdesk,
        subject: &str,
        input: &Input<'_>,
        references: &[String],
    ) -> Result<Submitted, PortalError> {
        let text = input.text.trim();
        if text.is_empty() {
            return Err(PortalError::Invalid("write a text first".into()));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(PortalError::Invalid(format!(
                "the text may have at most {MAX_TEXT_CHARS} characters"
            )));
        }
        if input.uploads.len() > MAX_UPLOADS {
            return Err(PortalError::Invalid(format!(
                "at most {MAX_UPLOADS} files at once"
            )));
        }
        let Some(to) = hd.config.settings.addresses.first() else {
            return Err(PortalError::Invalid(
                "this helpdesk has no address to write to".into(),
            ));
        };
        let account = self.account(viewer.contact_id).await?;
        let (bytes, _message_id) = customer_mail(&CustomerMail {
            from_name: Some(&account.name),
            from: address,
            to,
            subject,
            text,
            references,
            uploads: input.uploads,
        })
        .map_err(|e| PortalError::Invalid(format!("cannot take this in: {e}")))?;
        let refused = input
            .uploads
            .iter()
            .filter_map(|u| {
                postdesk_core::attachments::refusal(
                    &hd.config.settings.attachments,
                    &safe_mime_type(&u.mime_type),
                    u.bytes.len(),
                )
                .map(|reason| (u.name.clone(), reason))
            })
            .collect();
        // The helpdesk as intake sees it for portal input: no mail rules, and an
        // answer sets `portal_reply_status`.
        let mut helpdesks = self.app.helpdesks().to_vec();
        let index = helpdesks
            .iter()
            .position(|h| h.id == hd.id)
            .ok_or_else(|| PortalError::Internal("the helpdesk is not registered".into()))?;
        let portal_hd = &mut helpdesks[index];
        portal_hd.config.rules = RuleSet::compile(&[], &portal_hd.config.reference)
            .map_err(|e| PortalError::Internal(e.into()))?;
        portal_hd.config.threading.reply_status =
            portal_hd.config.portal_reply_status().to_string();
        let mut options = self.app.settings().intake.clone();
        options.helpdesk = Some(index);
        let raw = RawMail {
            source: MailSource::Portal,
            location: format!("portal/contact-{}", viewer.contact_id),
            bytes,
        };
        let mut reports = Vec::new();
        Pipeline::new(self.app.store().clone(), helpdesks, options)
            .run(std::iter::once(raw), |processed| {
                reports.extend(processed.iter().map(|p| p.report.clone()))
            })
            .await?;
        let report = reports
            .pop()
            .ok_or_else(|| PortalError::Internal("intake reported nothing".into()))?;
        match (report.outcome, report.ticket_id) {
            (Outcome::Created | Outcome::Appended, Some(ticket_id)) => {
                Ok(Submitted { ticket_id, refused })
            }
            _ => Err(PortalError::Invalid(format!(
                "your message could not be taken in{}",
                report.reason.map(|r| format!(": {r}")).unwrap_or_default()
            ))),
        }
    }
}

/// The agents' side of what customers see (issue 17): files agents add, and each
/// attachment's visibility. Checked against the agent's helpdesks like the desk's
/// actions: a ticket or file of another helpdesk is "not found".
impl Portal<'_> {
    /// Adds `files` to the ticket as `agent`'s, public or internal as the helpdesk's
    /// `agent_uploads_visible_to_customer` says (internal by default).
    pub async fn agent_files(
        &self,
        agent: &AgentAccount,
        ticket_id: TicketId,
        files: Vec<AgentFile>,
    ) -> Result<EntryId, PortalError> {
        let store = self.app.store();
        let helpdesk_id = store.ticket_helpdesk(ticket_id).await?;
        let hd = self
            .app
            .helpdesk(helpdesk_id)
            .filter(|_| agent.sees_helpdesk(helpdesk_id))
            .ok_or_else(|| {
                PortalError::NotFound("there is no such ticket in your helpdesks".into())
            })?;
        let max = hd
            .config
            .settings
            .attachments
            .max_size_mb
            .saturating_mul(1024 * 1024);
        if let Some(big) = files.iter().find(|f| f.bytes.len() as u64 > max) {
            return Err(PortalError::Invalid(format!(
                "{} is larger than {} MB",
                big.name, hd.config.settings.attachments.max_size_mb
            )));
        }
        let public = hd.config.settings.agent_uploads_visible_to_customer;
        let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let entry = store
            .add_agent_files(ticket_id, agent.id, files, public, &agent.helpdesks)
            .await?;
        self.app
            .notifications()
            .modified(
                ticket_id,
                Some(agent.id),
                &format!("{} added {}.", agent.name, names.join(", ")),
            )
            .await;
        Ok(entry)
    }

    /// Makes an attachment public or internal, recorded as an event by `agent`.
    pub async fn set_visibility(
        &self,
        agent: &AgentAccount,
        attachment: AttachmentId,
        public: bool,
    ) -> Result<TicketId, PortalError> {
        let ticket = self
            .app
            .store()
            .set_attachment_visibility(attachment, public, agent.id, &agent.helpdesks)
            .await?;
        let shown = if public { "public" } else { "internal" };
        self.app
            .notifications()
            .modified(
                ticket,
                Some(agent.id),
                &format!("{} made an attachment {shown}.", agent.name),
            )
            .await;
        Ok(ticket)
    }
}

fn check_subject(subject: &str) -> Result<&str, PortalError> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(PortalError::Invalid("give the ticket a subject".into()));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(PortalError::Invalid(format!(
            "the subject may have at most {MAX_SUBJECT_CHARS} characters"
        )));
    }
    Ok(subject)
}
