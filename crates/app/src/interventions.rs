//! Interventions from the entry points' side: one prefilled from the helpdesk's
//! `intervention_text`, added, changed (and its ticket closed when the last open one is
//! done and `close_when_interventions_done = true`, reopened with it when
//! `reopen_with_intervention = true`), and listed. [`Interventions`] is for the command
//! line, which may touch every helpdesk; the desk's methods check the agent's.
//!
//! The customer's "usual closing mail" is whatever closing a ticket sends: postdesk
//! sends none on closing today, so closing by an intervention sends none either.

use postdesk_core::id::{AgentId, InterventionId, TicketId};
use postdesk_core::intervention::{InterventionStatus, TicketMove, TicketText};
use postdesk_core::time::format_time;
use postdesk_store::StoreError;
use postdesk_store::interventions::{
    self, InterventionChange, InterventionFilter, InterventionRow, NewIntervention,
};

use crate::App;
use crate::desk::{Desk, DeskError};

/// The App's interventions (see [`App::interventions`]).
pub struct Interventions<'a> {
    app: &'a App,
}

impl App {
    pub fn interventions(&self) -> Interventions<'_> {
        Interventions { app: self }
    }
}

/// A new intervention as an entry point gives it; no text: the template's.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    pub assignee: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub text: Option<String>,
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct Changed {
    pub intervention: InterventionRow,
    /// The ticket's event when it was closed or reopened.
    pub ticket: Option<String>,
}

impl Interventions<'_> {
    /// The text a new intervention of the ticket starts from. A read: it was a write
    /// transaction (a writer connection opened, the write lock taken and a checkpoint
    /// after) on every view of a ticket's page (issue 19).
    pub async fn prefill(&self, ticket_id: TicketId) -> Result<String, StoreError> {
        let t = self.app.store().intervention_ticket_text(ticket_id).await?;
        self.render(&t)
            .ok_or_else(|| StoreError::NotFound("the ticket's helpdesk is not configured".into()))
    }

    /// The helpdesk's template filled in with the ticket's text; `None` when the
    /// ticket's helpdesk is no longer configured (there is no template).
    pub(crate) fn render(&self, t: &interventions::TicketText) -> Option<String> {
        let hd = self
            .app
            .helpdesks()
            .iter()
            .find(|h| h.id == t.helpdesk_id)?;
        let number = hd.config.reference.render(t.number);
        Some(hd.config.interventions.template.render(&TicketText {
            number: &number,
            created: &format_time(t.opened_at),
            description: t.description.trim(),
            subject: &t.subject,
        }))
    }

    /// Adds an intervention to the ticket as `agent_id`.
    pub async fn add(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        planned: Planned,
    ) -> Result<InterventionRow, StoreError> {
        let text = match planned.text.filter(|t| !t.trim().is_empty()) {
            Some(text) => text,
            None => self.prefill(ticket_id).await?,
        };
        let new = NewIntervention {
            ticket_id,
            assignee: planned.assignee.filter(|a| !a.trim().is_empty()),
            planned_start: planned.planned_start,
            planned_end: planned.planned_end,
            text,
            created_by: agent_id,
        };
        self.app
            .store()
            .transaction(move |tx| interventions::add(tx, &new))
            .await
    }

    /// Changes an intervention as `agent_id`, and its ticket as the helpdesk's settings
    /// say, in one transaction; the deadlines follow the ticket's new status.
    pub async fn change(
        &self,
        id: InterventionId,
        agent_id: AgentId,
        change: InterventionChange,
    ) -> Result<Changed, StoreError> {
        let helpdesks = self.app.helpdesks().to_vec();
        let changed = self
            .app
            .store()
            .transaction(move |tx| -> Result<Changed, StoreError> {
                let (old, new) = interventions::change(tx, id, agent_id, &change)?;
                let Some(hd) = helpdesks.iter().find(|h| h.id == new.helpdesk_id) else {
                    return Ok(Changed {
                        intervention: new,
                        ticket: None,
                    });
                };
                let status = interventions::ticket_status(tx, new.ticket_id)?;
                let others = interventions::others_open(tx, new.ticket_id, id)?;
                let settings = &hd.config.settings;
                let target = match hd.config.interventions.ticket_move(
                    old.status,
                    new.status,
                    others,
                    hd.config.is_closed(&status),
                ) {
                    TicketMove::Stays => None,
                    TicketMove::Close => settings.closed_statuses.first().cloned(),
                    TicketMove::Reopen => Some(settings.reply_status.clone()),
                };
                let ticket = match target {
                    Some(s) => Some(interventions::move_ticket(
                        tx,
                        new.ticket_id,
                        id,
                        agent_id,
                        &s,
                    )?),
                    None => None,
                };
                Ok(Changed {
                    intervention: new,
                    ticket,
                })
            })
            .await?;
        if changed.ticket.is_some() {
            self.app
                .deadlines()
                .status_changed(changed.intervention.ticket_id)
                .await?;
        }
        Ok(changed)
    }

    pub async fn list(
        &self,
        filter: &InterventionFilter,
    ) -> Result<Vec<InterventionRow>, StoreError> {
        self.app.store().interventions(filter).await
    }
}

/// A status as an agent wrote it, or why it is refused.
pub fn parse_status(text: &str) -> Result<InterventionStatus, DeskError> {
    text.trim().parse().map_err(DeskError::Invalid)
}

impl Desk<'_> {
    /// The ticket's interventions.
    pub async fn ticket_interventions(
        &self,
        id: TicketId,
    ) -> Result<Vec<InterventionRow>, DeskError> {
        self.check_ticket(id).await?;
        Ok(self
            .app
            .store()
            .interventions(&InterventionFilter {
                visible: Some(self.agent().helpdesks.clone()),
                ticket_id: Some(id),
                ..Default::default()
            })
            .await?)
    }

    /// The text a new intervention of the ticket starts from.
    pub async fn intervention_text(&self, id: TicketId) -> Result<String, DeskError> {
        self.check_ticket(id).await?;
        Ok(self.app.interventions().prefill(id).await?)
    }

    /// Adds an intervention to the ticket; the assignee must be an agent of its helpdesk.
    pub async fn add_intervention(
        &self,
        id: TicketId,
        planned: Planned,
    ) -> Result<InterventionRow, DeskError> {
        let view = self.ticket(id).await?;
        if let Some(a) = planned.assignee.as_deref().filter(|a| !a.trim().is_empty()) {
            self.check_assignee(view.summary.helpdesk_id, a).await?;
        }
        Ok(self
            .app
            .interventions()
            .add(id, self.agent().id, planned)
            .await?)
    }

    /// Changes an intervention of a ticket the agent may see.
    pub async fn change_intervention(
        &self,
        id: InterventionId,
        change: InterventionChange,
    ) -> Result<Changed, DeskError> {
        let not_found = || {
            DeskError::NotFound(format!(
                "there is no intervention {id}, or it is not in your helpdesks"
            ))
        };
        let row = self
            .app
            .store()
            .intervention(id)
            .await
            .map_err(|_| not_found())?;
        if !self.agent().sees_helpdesk(row.helpdesk_id) {
            return Err(not_found());
        }
        if let Some(Some(a)) = &change.assignee {
            self.check_assignee(row.helpdesk_id, a).await?;
        }
        Ok(self
            .app
            .interventions()
            .change(id, self.agent().id, change)
            .await?)
    }

    /// The agent's own interventions planned in `[from, to)`.
    pub async fn my_interventions(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<InterventionRow>, DeskError> {
        Ok(self
            .app
            .store()
            .interventions(&InterventionFilter {
                visible: Some(self.agent().helpdesks.clone()),
                assignee: Some(self.agent().name.clone()),
                planned_between: Some((from, to)),
                ..Default::default()
            })
            .await?)
    }

    async fn check_assignee(
        &self,
        helpdesk: postdesk_core::id::HelpdeskId,
        name: &str,
    ) -> Result<(), DeskError> {
        let agents = self.helpdesk_agents(helpdesk).await?;
        if !agents.iter().any(|a| a == name.trim()) {
            return Err(DeskError::Invalid(format!(
                "`{}` is not an agent of this helpdesk; choose one of: {}",
                name.trim(),
                agents.join(", ")
            )));
        }
        Ok(())
    }
}
