//! What an agent can do at the desk, once, for every front end (today the web's pages
//! and its API): each action checks that the agent may see the helpdesk involved before
//! it reads or changes anything. An agent sees only their helpdesks; something the
//! agent may not see answers "not found", so its existence is not told.
//!
//! A ticket's status, priority and type are chosen from its helpdesk's lists
//! ([`FieldChoices`], from the config), and its assignee among its helpdesk's agents;
//! a value outside them, or longer than [`MAX_FIELD_CHARS`], is refused with the reason.

use postdesk_core::id::{ContactId, EntryId, HelpdeskId, IntakeId, OrganizationId, TicketId};
use postdesk_core::intake::IntakeOutcome;
use postdesk_core::settings::FieldChoices;
use postdesk_core::ticket::FieldChanges;
use postdesk_store::StoreError;
use postdesk_store::access::AgentAccount;
use postdesk_store::contacts::{Contact, ContactChange, ContactEdit, ContactEvent, Organization};
use postdesk_store::desk::{TicketPage, TicketQuery};
use postdesk_store::read::{IntakeRow, TicketSummary, TicketView};

use crate::App;
use crate::intake::{PipelineError, Processed};
use crate::outbox::{ReplyError, ReplyQueued};

/// Why a desk action did not happen. The first three are the agent's to fix (or to
/// accept); the others are the server's.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Not there, or not in the agent's helpdesks.
    #[error("{0}")]
    NotFound(String),
    /// Seen, but not the agent's to change.
    #[error("{0}")]
    Forbidden(String),
    /// Cannot be done as asked (an empty note, a helpdesk that cannot send mail, …).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] PipelineError),
    #[error(transparent)]
    Reply(ReplyError),
    #[error("{0}")]
    Internal(String),
}

/// A ticket's page: the ticket, the assignees its helpdesk offers, its deadlines and
/// interventions, and the text a new intervention starts from.
#[derive(Debug, Clone)]
pub struct TicketPageView {
    pub view: TicketView,
    pub agents: Vec<String>,
    pub deadlines: Vec<postdesk_core::sla::Deadline>,
    pub interventions: Vec<postdesk_store::interventions::InterventionRow>,
    pub intervention_text: String,
}

/// The desk as one agent sees it (see [`App::desk`]).
pub struct Desk<'a> {
    pub(crate) app: &'a App,
    agent: &'a AgentAccount,
}

impl App {
    /// The actions `agent` may take, limited to what they may see.
    pub fn desk<'a>(&'a self, agent: &'a AgentAccount) -> Desk<'a> {
        Desk { app: self, agent }
    }
}

/// The longest status, priority, type or assignee name taken.
pub const MAX_FIELD_CHARS: usize = 64;

/// `value` as the helpdesk's list of [`FieldChoices`] writes it, or why it is refused.
fn pick_choice(
    field: &str,
    value: &str,
    list: &[String],
    helpdesk: &str,
) -> Result<String, DeskError> {
    let value = check_free_value(field, value)?;
    if list.is_empty() {
        return Ok(value.to_string());
    }
    list.iter()
        .find(|v| v.eq_ignore_ascii_case(value))
        .cloned()
        .ok_or_else(|| {
            DeskError::Invalid(format!(
                "`{value}` is not a {field} of {helpdesk}; choose one of: {}",
                list.join(", ")
            ))
        })
}

/// A field value an agent typed: at most [`MAX_FIELD_CHARS`] characters of letters,
/// digits, spaces and `- _ . / & +`, so that it shows as what it is on every page.
pub fn check_free_value<'v>(field: &str, value: &'v str) -> Result<&'v str, DeskError> {
    let value = value.trim();
    let length = value.chars().count();
    if length > MAX_FIELD_CHARS {
        return Err(DeskError::Invalid(format!(
            "the {field} is {length} characters long; it may have at most {MAX_FIELD_CHARS}"
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '/' | '&' | '+')))
    {
        return Err(DeskError::Invalid(format!(
            "the {field} may hold letters, digits, spaces and - _ . / & + only, not {c:?}"
        )));
    }
    Ok(value)
}

fn no_ticket(id: TicketId) -> DeskError {
    DeskError::NotFound(format!(
        "there is no ticket {id}, or it is not in your helpdesks"
    ))
}

impl Desk<'_> {
    /// The agent this desk is for.
    pub(crate) fn agent(&self) -> &AgentAccount {
        self.agent
    }

    pub async fn ticket(&self, id: TicketId) -> Result<TicketView, DeskError> {
        self.check_ticket(id).await?;
        Ok(self.app.store().ticket_by_id(id).await?)
    }

    /// What the ticket's page shows, read at once (see
    /// [`postdesk_store::Store::ticket_page`]), with a new intervention's text filled in
    /// from the helpdesk's template.
    pub async fn ticket_page(&self, id: TicketId) -> Result<TicketPageView, DeskError> {
        let parts = self
            .app
            .store()
            .ticket_page(id, self.agent.helpdesks.clone())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => no_ticket(id),
                e => e.into(),
            })?;
        // A ticket of a helpdesk no longer configured still shows (and through the API,
        // which reads it here too); its new intervention starts blank.
        let intervention_text = self
            .app
            .interventions()
            .render(&parts.text)
            .unwrap_or_default();
        Ok(TicketPageView {
            view: parts.view,
            agents: parts.agents,
            deadlines: parts.deadlines,
            interventions: parts.interventions,
            intervention_text,
        })
    }

    /// That the ticket exists and the agent may see it, without loading it: the ticket
    /// page asked for its deadlines, interventions and their text each loaded the whole
    /// ticket again only for this check (issue 19).
    pub(crate) async fn check_ticket(&self, id: TicketId) -> Result<(), DeskError> {
        let helpdesk = self
            .app
            .store()
            .ticket_helpdesk(id)
            .await
            .map_err(|_| no_ticket(id))?;
        if !self.agent.sees_helpdesk(helpdesk) {
            return Err(no_ticket(id));
        }
        Ok(())
    }

    /// A page of the tickets `query` finds among the agent's helpdesks.
    pub async fn tickets(&self, mut query: TicketQuery) -> Result<TicketPage, DeskError> {
        query.visible = self.agent.helpdesks.clone();
        Ok(self.app.store().find_tickets(&query).await?)
    }

    /// [`Desk::tickets`] and, in the same read, the agents of every helpdesk the agent
    /// sees (the list page's assignee filter).
    pub async fn tickets_and_colleagues(
        &self,
        mut query: TicketQuery,
    ) -> Result<(TicketPage, Vec<String>), DeskError> {
        query.visible = self.agent.helpdesks.clone();
        Ok(self.app.store().find_tickets_and_agents(&query).await?)
    }

    /// Mails the agent's answer to the ticket's requester and participants.
    pub async fn reply(&self, id: TicketId, text: &str) -> Result<ReplyQueued, DeskError> {
        let view = self.ticket(id).await?;
        let helpdesk = self.app.helpdesk(view.summary.helpdesk_id).ok_or_else(|| {
            DeskError::Internal(format!(
                "helpdesk {} is not configured",
                view.summary.helpdesk
            ))
        })?;
        let queued = self
            .app
            .outbox()
            .reply(helpdesk, view.summary.number, Some(&self.agent.name), text)
            .await
            .map_err(|e| match e {
                ReplyError::Empty => {
                    DeskError::Invalid("the reply is empty; write a message first".into())
                }
                ReplyError::Store(e) => e.into(),
                other @ (ReplyError::NoSmtp(_) | ReplyError::NoRecipient(_)) => {
                    DeskError::Invalid(other.to_string())
                }
                other => DeskError::Reply(other),
            })?;
        // Deadlines (issue 18): the reply meets the response targets running.
        self.app.deadlines().agent_replied(id).await?;
        // Issue 17: the change told inside the app.
        self.app
            .notifications()
            .modified(
                id,
                Some(self.agent.id),
                &format!("{} answered the customer.", self.agent.name),
            )
            .await;
        Ok(queued)
    }

    /// An internal note on the ticket; returns its entry id.
    pub async fn note(&self, id: TicketId, text: &str) -> Result<EntryId, DeskError> {
        self.check_ticket(id).await?;
        let text = text.trim_end();
        if text.trim().is_empty() {
            return Err(DeskError::Invalid(
                "the note is empty; write something first".into(),
            ));
        }
        let entry = self.app.store().add_note(id, self.agent.id, text).await?;
        // Issue 17: the change told inside the app.
        self.app
            .notifications()
            .modified(
                id,
                Some(self.agent.id),
                &format!("{} added a note.", self.agent.name),
            )
            .await;
        Ok(entry)
    }

    /// Changes the ticket's fields; returns the changes as recorded. Each new value
    /// must be one of the ticket's helpdesk's ([`FieldChoices`]; the assignee one of
    /// its agents); a value the ticket has already stands as it is.
    pub async fn update(
        &self,
        id: TicketId,
        update: &FieldChanges,
    ) -> Result<Vec<String>, DeskError> {
        self.update_seen(id, update, &FieldChanges::default()).await
    }

    /// [`Desk::update`] of a change made on a page that showed the fields `seen`
    /// names with those values: refused (a conflict, nothing saved) when one of them
    /// was changed by someone else since (see `Store::update_ticket_seen`).
    pub async fn update_seen(
        &self,
        id: TicketId,
        update: &FieldChanges,
        seen: &FieldChanges,
    ) -> Result<Vec<String>, DeskError> {
        let view = self.ticket(id).await?;
        if update
            .status
            .as_ref()
            .is_some_and(|s| s.as_deref().is_none_or(|s| s.trim().is_empty()))
        {
            return Err(DeskError::Invalid("a ticket always has a status".into()));
        }
        let ticket = &view.summary;
        let helpdesk = self.app.helpdesk(ticket.helpdesk_id).ok_or_else(|| {
            DeskError::Internal(format!("helpdesk {} is not configured", ticket.helpdesk))
        })?;
        let choices = FieldChoices::of(&helpdesk.config);
        let name = &ticket.helpdesk;
        let changed = |new: &str, old: Option<&str>| old != Some(new.trim());
        fn given(new: &Option<Option<String>>) -> Option<&str> {
            new.as_ref()
                .and_then(|v| v.as_deref())
                .filter(|v| !v.trim().is_empty())
        }
        let mut checked = update.clone();
        for (field, new, old, list, out) in [
            (
                "status",
                &update.status,
                Some(ticket.status.as_str()),
                &choices.statuses,
                &mut checked.status,
            ),
            (
                "priority",
                &update.priority,
                ticket.priority.as_deref(),
                &choices.priorities,
                &mut checked.priority,
            ),
            (
                "type",
                &update.ticket_type,
                view.details.ticket_type.as_deref(),
                &choices.types,
                &mut checked.ticket_type,
            ),
        ] {
            if let Some(value) = given(new)
                && changed(value, old)
            {
                *out = Some(Some(pick_choice(field, value, list, name)?));
            }
        }
        for (field, new) in [
            ("category", &update.category),
            ("subcategory", &update.subcategory),
            ("environment", &update.environment),
        ] {
            if let Some(value) = given(new) {
                check_free_value(field, value)?;
            }
        }
        for tag in update.tags.iter().flatten() {
            check_free_value("tag", tag)?;
        }
        for (field, new, old, out) in [
            (
                "assignee",
                &update.assignee,
                ticket.assignee.as_deref(),
                &mut checked.assignee,
            ),
            (
                "manager",
                &update.manager,
                view.details.manager.as_deref(),
                &mut checked.manager,
            ),
        ] {
            let Some(agent) = given(new).filter(|v| changed(v, old)) else {
                continue;
            };
            let agent = check_free_value(field, agent)?;
            let agents = self.helpdesk_agents(ticket.helpdesk_id).await?;
            if !agents.iter().any(|a| a == agent) {
                return Err(DeskError::Invalid(format!(
                    "`{agent}` is not an agent of {name}; choose one of: {}",
                    agents.join(", ")
                )));
            }
            *out = Some(Some(agent.to_string()));
        }
        let events = self
            .app
            .store()
            .update_ticket_seen(id, self.agent.id, &checked, seen)
            .await?;
        // Deadlines (issue 18): a new status may pause, resume or stop the clock.
        if checked.status.is_some() && !events.is_empty() {
            self.app.deadlines().status_changed(id).await?;
        }
        // Issue 17: the changes told inside the app.
        if !events.is_empty() {
            self.app
                .notifications()
                .modified(id, Some(self.agent.id), &events.join(" "))
                .await;
        }
        Ok(events)
    }

    /// The active agents of a helpdesk the agent sees (its members and the admins):
    /// who its tickets may be assigned to.
    pub async fn helpdesk_agents(&self, helpdesk_id: HelpdeskId) -> Result<Vec<String>, DeskError> {
        if !self.agent.sees_helpdesk(helpdesk_id) {
            return Ok(Vec::new());
        }
        Ok(self
            .app
            .store()
            .helpdesk_agent_names(&[helpdesk_id])
            .await?)
    }

    /// The field choices of each helpdesk the agent sees, merged (for the ticket list's
    /// filters), in the helpdesks' order.
    pub fn choices(&self) -> FieldChoices {
        let mut all = FieldChoices::default();
        for id in &self.agent.helpdesks {
            if let Some(hd) = self.app.helpdesk(*id) {
                let c = FieldChoices::of(&hd.config);
                for (into, from) in [
                    (&mut all.statuses, c.statuses),
                    (&mut all.priorities, c.priorities),
                    (&mut all.types, c.types),
                ] {
                    for v in from {
                        if !into.contains(&v) {
                            into.push(v);
                        }
                    }
                }
            }
        }
        all
    }

    /// The failed queue, as far as the agent may see it: mails no helpdesk took only for admins.
    pub async fn failed(&self) -> Result<Vec<IntakeRow>, DeskError> {
        let rows = self
            .app
            .store()
            .intake_rows(Some(IntakeOutcome::Failed), 500)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| self.sees_intake(r.helpdesk.as_deref()))
            .collect())
    }

    pub(crate) fn sees_helpdesk_named(&self, name: &str) -> bool {
        self.agent.helpdesk_names.iter().any(|h| h == name)
    }

    fn sees_intake(&self, helpdesk: Option<&str>) -> bool {
        match helpdesk {
            Some(name) => self.sees_helpdesk_named(name),
            None => self.agent.is_admin(),
        }
    }

    async fn failed_row(&self, id: IntakeId) -> Result<(), DeskError> {
        let row = self.app.store().intake_row(id).await?;
        if row.outcome != IntakeOutcome::Failed || !self.sees_intake(row.helpdesk.as_deref()) {
            return Err(DeskError::NotFound(format!(
                "failed mail {id} is not in your failed queue"
            )));
        }
        Ok(())
    }

    /// Processes a failed mail again, after its cause was fixed.
    pub async fn retry(&self, id: IntakeId) -> Result<Processed, DeskError> {
        self.failed_row(id).await?;
        let mut processed = self.app.intake().retry(&[id]).await?;
        processed
            .pop()
            .ok_or_else(|| DeskError::Internal(format!("retrying mail {id} gave no result")))
    }

    /// Takes a mail off the failed queue; its ledger row stays.
    pub async fn dismiss(&self, id: IntakeId) -> Result<(), DeskError> {
        self.failed_row(id).await?;
        Ok(self.app.store().dismiss_failed(id).await?)
    }

    /// The raw mail of a ledger row, if the agent may see it.
    pub async fn raw_mail(&self, intake_id: IntakeId) -> Result<Vec<u8>, DeskError> {
        let not_found = || {
            DeskError::NotFound(format!(
                "there is no mail {intake_id}, or it is not in your helpdesks"
            ))
        };
        let store = self.app.store();
        let helpdesk = store
            .intake_helpdesk(intake_id)
            .await
            .map_err(|_| not_found())?;
        let allowed = match helpdesk {
            Some(id) => self.agent.sees_helpdesk(id),
            None => self.agent.is_admin(),
        };
        if !allowed {
            return Err(not_found());
        }
        Ok(store.raw_mail(intake_id).await?)
    }

    /// Contacts the agent may see (those with tickets in the agent's helpdesks; all for admins).
    pub async fn contacts(
        &self,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Contact>, DeskError> {
        Ok(self
            .app
            .store()
            .contacts(&self.agent.scope(), search, limit)
            .await?)
    }

    /// A contact the agent may see, the tickets of it the agent may see, and its changes.
    pub async fn contact(
        &self,
        id: ContactId,
    ) -> Result<(Contact, Vec<TicketSummary>, Vec<ContactEvent>), DeskError> {
        let store = self.app.store();
        let contact = store.contact(&self.agent.scope(), id).await?;
        let tickets = store
            .tickets_of(Some(id), None, &self.agent.helpdesks)
            .await?;
        let events = store.contact_events(id).await?;
        Ok((contact, tickets, events))
    }

    /// Changes a contact. Its addresses decide where the helpdesks' replies go and who
    /// may write to its tickets, so only an admin or an agent of every helpdesk the
    /// contact has tickets in may change it; to other agents who see it the answer is
    /// "forbidden", to agents who do not see it "not found". The change is recorded on
    /// the contact and its open tickets.
    pub async fn edit_contact(
        &self,
        id: ContactId,
        change: ContactChange,
    ) -> Result<bool, DeskError> {
        let store = self.app.store();
        store.contact(&self.agent.scope(), id).await?;
        let helpdesks = store.contact_helpdesks(id).await?;
        if !self.agent.is_admin() && !helpdesks.iter().all(|h| self.agent.sees_helpdesk(*h)) {
            return Err(DeskError::Forbidden(
                "this contact also has tickets in a helpdesk you are not in: only an admin, or \
                 an agent of every helpdesk it has tickets in, may change it"
                    .into(),
            ));
        }
        let open_tickets: Vec<TicketId> = store
            .tickets_of(Some(id), None, &helpdesks)
            .await?
            .into_iter()
            .filter(|t| {
                self.app
                    .helpdesk(t.helpdesk_id)
                    .is_none_or(|hd| !hd.config.is_closed(&t.status))
            })
            .map(|t| t.id)
            .collect();
        let edit = ContactEdit {
            contact_id: id,
            agent_id: self.agent.id,
            change,
            open_tickets: &open_tickets,
        };
        Ok(store.edit_contact(&edit).await?)
    }

    /// Organizations the agent may see (with tickets in the agent's helpdesks; all for admins).
    pub async fn organizations(&self) -> Result<Vec<Organization>, DeskError> {
        Ok(self.app.store().organizations(&self.agent.scope()).await?)
    }

    /// An organization the agent may see, its contacts and tickets the agent may see.
    pub async fn organization(
        &self,
        id: OrganizationId,
    ) -> Result<(Organization, Vec<Contact>, Vec<TicketSummary>), DeskError> {
        let store = self.app.store();
        let (organization, contacts) = store.organization(&self.agent.scope(), id).await?;
        let tickets = store
            .tickets_of(None, Some(id), &self.agent.helpdesks)
            .await?;
        Ok((organization, contacts, tickets))
    }
}
