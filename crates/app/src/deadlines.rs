//! Deadlines from the entry points' side: the clock moved when an agent changes a
//! status or replies, a deadline set by hand (checked against the agent's helpdesks),
//! and the escalation runner that `serve` keeps going.
//!
//! Intake sets deadlines itself, in each mail's transaction (the pipeline calls the
//! store's `deadlines::on_ingested`). The agents' changes go through the store's own
//! transactions first and move the clock in the next one: the clock follows the
//! ticket's status whenever it is next looked at, so a crash in between is caught up
//! by the ticket's next change, and the runner checks for a reply before it escalates.
//!
//! Escalations are sent exactly once: a pass claims the due timers, queues each one's
//! mail in the outbox and marks it sent, all in one transaction (see the store's
//! `deadlines` for how several instances pass over each other).

use std::future::Future;
use std::time::Duration;

use postdesk_core::id::{AgentId, OutboxId, TicketId};
use postdesk_core::outgoing::Event;
use postdesk_core::sla::{Deadline, Escalation, Happened, Target, TimerKind, due_label};
use postdesk_core::time::format_time;
use postdesk_notify::compose::{self, Automatic, Draft};
use postdesk_store::deadlines::{self, DueTimer, EscalationTicket};
use postdesk_store::outbox::{self, NewOutgoing};
use postdesk_store::{RegisteredHelpdesk, StoreError, Tx, now};
use tokio::sync::watch;

use crate::App;
use crate::desk::{Desk, DeskError};

/// Escalations handed out in one pass.
const PASS_LIMIT: i64 = 100;

/// The App's deadlines (see [`App::deadlines`]).
pub struct Deadlines<'a> {
    app: &'a App,
}

impl App {
    pub fn deadlines(&self) -> Deadlines<'_> {
        Deadlines { app: self }
    }
}

/// What one pass of the runner did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Escalated {
    pub warnings: usize,
    pub breaches: usize,
    /// Timers whose deadline had moved or been met.
    pub dropped: usize,
}

/// One escalation, as the in-app notifications will take it.
#[derive(Debug, Clone)]
pub struct InAppEscalation<'a> {
    pub ticket_id: TicketId,
    pub ticket: &'a EscalationTicket,
    pub deadline: &'a Deadline,
    pub kind: TimerKind,
    /// The agents it concerns, by name (assignee, manager), where the policy names them.
    pub agents: Vec<String>,
}

/// The escalation told inside the app, in the transaction that sends its mail, so that
/// both happen exactly once: to the agents among its recipients (an outside address
/// gets the mail only).
fn notify_in_app(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    escalation: &InAppEscalation<'_>,
    text: &str,
    recipients: &[String],
) -> Result<(), StoreError> {
    postdesk_store::notifications::notify(
        tx,
        &postdesk_store::notifications::NewNotification {
            ticket_id: escalation.ticket_id,
            event: "modified",
            text,
            actor: None,
            audience: &postdesk_store::notifications::Audience::Addresses(recipients.to_vec()),
            keep_days: hd.config.settings.in_app.keep_days,
        },
    )?;
    Ok(())
}

impl Deadlines<'_> {
    /// The ticket's status may have changed: the clock pauses, resumes or stops.
    pub async fn status_changed(&self, ticket_id: TicketId) -> Result<(), StoreError> {
        self.apply(ticket_id, Happened::StatusChanged).await
    }

    /// An agent replied to the customer: the response targets running are met.
    pub async fn agent_replied(&self, ticket_id: TicketId) -> Result<(), StoreError> {
        self.apply(ticket_id, Happened::AgentReply).await
    }

    /// Sets a target's deadline by hand as `agent_id` (who may is the caller's to
    /// decide: agents go through [`Desk::set_deadline`]); recorded as an event. Returns
    /// the event's text.
    pub async fn set_by_hand(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        target: Target,
        due_at: i64,
    ) -> Result<String, StoreError> {
        let helpdesks = self.app.helpdesks().to_vec();
        let event = self
            .app
            .store()
            .transaction(move |tx| {
                deadlines::set_by_hand(tx, &helpdesks, ticket_id, agent_id, target, due_at)
            })
            .await?;
        // Issue 17: a deadline moved by hand is a change the concerned agents hear of.
        self.app
            .notifications()
            .modified(ticket_id, Some(agent_id), &event)
            .await;
        Ok(event)
    }

    async fn apply(&self, ticket_id: TicketId, happened: Happened) -> Result<(), StoreError> {
        let helpdesks = self.app.helpdesks().to_vec();
        self.app
            .store()
            .transaction(move |tx| {
                deadlines::apply(tx, &helpdesks, ticket_id, happened, now()).map(|_| ())
            })
            .await
    }

    /// One pass: every due warning and breach escalated once.
    pub async fn escalate_due(&self) -> Result<Escalated, StoreError> {
        let helpdesks = self.app.helpdesks().to_vec();
        self.app
            .store()
            .transaction(move |tx| {
                let mut done = Escalated::default();
                for timer in deadlines::claim_due(tx, now(), PASS_LIMIT)? {
                    match escalate(tx, &helpdesks, &timer)? {
                        Some(TimerKind::Warning) => done.warnings += 1,
                        Some(TimerKind::Breach) => done.breaches += 1,
                        None => done.dropped += 1,
                    }
                }
                Ok(done)
            })
            .await
    }

    /// Escalates what is due every `poll_secs` (the outbox's) until `stop` turns true
    /// (`postdesk serve`). Owns what it needs, so it can be spawned.
    pub fn runner(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let app = self.app.clone();
        async move {
            let poll = Duration::from_secs(app.settings().delivery.poll_secs.max(1));
            loop {
                match app.deadlines().escalate_due().await {
                    Ok(done) if done != Escalated::default() => {
                        tracing::info!(?done, "deadlines: escalations");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "deadlines: database error; trying again"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Escalates one claimed timer: its kind when it was sent, `None` when its deadline
/// no longer stands (moved, met, paused) and it was dropped.
fn escalate(
    tx: Tx<'_>,
    helpdesks: &[RegisteredHelpdesk],
    timer: &DueTimer,
) -> Result<Option<TimerKind>, StoreError> {
    let Some(deadline) = deadlines::timer_deadline(tx, timer)? else {
        deadlines::finish_timer(tx, timer.id, false, None)?;
        return Ok(None);
    };
    // A reply whose own hook has not run yet still meets a response target.
    if matches!(timer.target, Target::FirstResponse | Target::NextResponse)
        && let Some(at) = deadlines::first_reply_since(tx, timer.ticket_id, deadline.started_at)?
    {
        deadlines::apply(tx, helpdesks, timer.ticket_id, Happened::AgentReply, at)?;
        deadlines::finish_timer(tx, timer.id, false, None)?;
        return Ok(None);
    }
    let Some(ticket) = deadlines::escalation_ticket(tx, timer.ticket_id)? else {
        deadlines::finish_timer(tx, timer.id, false, None)?;
        return Ok(None);
    };
    let hd = helpdesks.iter().find(|h| h.id == ticket.helpdesk_id);
    let targets = hd
        .and_then(|hd| hd.config.sla.as_ref())
        .and_then(|sla| sla.policy_named(&deadline.policy))
        .map(|p| p.escalate_to.clone())
        .unwrap_or_default();
    let mut to: Vec<(Option<String>, String)> = Vec::new();
    let mut agents = Vec::new();
    for target in &targets {
        let agent = match target {
            Escalation::Assignee => ticket.assignee.as_ref(),
            Escalation::Manager => ticket.manager.as_ref(),
            Escalation::Team(team) => {
                let members = hd.and_then(|hd| hd.config.outgoing.notifications.teams.get(team));
                to.extend(members.into_iter().flatten().map(|a| (None, a.clone())));
                None
            }
            Escalation::Address(a) => {
                to.push((None, a.clone()));
                None
            }
        };
        if let Some((name, email)) = agent {
            agents.push(name.clone());
            if let Some(email) = email {
                to.push((Some(name.clone()), email.clone()));
            }
        }
    }
    let mut seen = Vec::new();
    to.retain(|(_, a)| {
        let key = a.trim().to_ascii_lowercase();
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    let text = describe(hd, &ticket, &deadline, timer.kind);
    let outbox_id = match hd {
        Some(hd) if !to.is_empty() => queue_mail(tx, hd, timer.ticket_id, &text, to.clone())?,
        _ => None,
    };
    if let Some(hd) = hd {
        let recipients: Vec<String> = to.iter().map(|(_, a)| a.clone()).collect();
        let escalation = InAppEscalation {
            ticket_id: timer.ticket_id,
            ticket: &ticket,
            deadline: &deadline,
            kind: timer.kind,
            agents,
        };
        notify_in_app(tx, hd, &escalation, &text.subject, &recipients)?;
    }
    let recipients: Vec<&str> = to.iter().map(|(_, a)| a.as_str()).collect();
    let event = match (outbox_id, recipients.is_empty()) {
        (Some(id), _) => format!(
            "{} Mailed to {} (outgoing mail {id}).",
            text.subject,
            recipients.join(", ")
        ),
        (None, true) => format!(
            "{} Nobody to tell: the policy names no one with an address.",
            text.subject
        ),
        (None, false) => format!("{} No mail: the helpdesk sends none.", text.subject),
    };
    deadlines::record_escalation(tx, timer.ticket_id, &event)?;
    deadlines::finish_timer(tx, timer.id, true, outbox_id)?;
    Ok(Some(timer.kind))
}

struct Text {
    subject: String,
    body: String,
}

fn describe(
    hd: Option<&RegisteredHelpdesk>,
    ticket: &EscalationTicket,
    deadline: &Deadline,
    kind: TimerKind,
) -> Text {
    let reference = hd
        .map(|hd| hd.config.reference.render(ticket.number))
        .unwrap_or_else(|| format!("#{}", ticket.number));
    let target = deadline.target.label();
    let due = format_time(deadline.due_at);
    let subject = match kind {
        TimerKind::Warning => format!(
            "{reference} Warning: {} due {due} ({}).",
            target.to_lowercase(),
            due_label(deadline.due_at, now())
        ),
        TimerKind::Breach => {
            format!(
                "{reference} Breached: {} was due {due}.",
                target.to_lowercase()
            )
        }
    };
    let assignee = ticket
        .assignee
        .as_ref()
        .map(|(n, _)| n.as_str())
        .unwrap_or("nobody");
    let link = hd
        .and_then(|hd| hd.config.outgoing.link(ticket.number))
        .map(|l| format!("\n{l}\n"))
        .unwrap_or_default();
    let body = format!(
        "{subject}\n\nTicket: {reference} {}\nStatus: {}\nAssigned to: {assignee}\nDeadline: {target}, policy {}, due {due}\n{link}",
        ticket.title,
        ticket.status,
        if deadline.policy.is_empty() {
            "(set by hand)"
        } else {
            &deadline.policy
        },
    );
    Text { subject, body }
}

/// The escalation mail, through the outbox as the helpdesk's other staff mail is
/// (kind `alert`: no migration of the outbox's kinds for it).
fn queue_mail(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    ticket_id: TicketId,
    text: &Text,
    to: Vec<(Option<String>, String)>,
) -> Result<Option<OutboxId>, StoreError> {
    let Some((from, from_name)) = postdesk_notify::sender(hd) else {
        return Ok(None);
    };
    let message_id = compose::new_message_id(&from);
    let draft = Draft {
        from_name: Some(from_name),
        from,
        to,
        cc: Vec::new(),
        subject: text.subject.clone(),
        body: text.body.clone(),
        message_id: message_id.clone(),
        in_reply_to: None,
        references: Vec::new(),
        automatic: Automatic::Generated,
        attach_mail: None,
    };
    let composed = match compose::compose(&draft) {
        Ok(c) => c,
        Err(e) => {
            // An address lettre refuses must not stop every other escalation.
            tracing::warn!(ticket = %ticket_id, error = %e, "deadlines: no escalation mail");
            return Ok(None);
        }
    };
    let id = outbox::queue(
        tx,
        &NewOutgoing {
            ticket_id: Some(ticket_id),
            ..postdesk_notify::outgoing(hd, Event::Alert, &message_id, &composed)
        },
    )?;
    Ok(Some(id))
}

impl Desk<'_> {
    /// A ticket's deadlines, first response first (none without `[helpdesk.sla]`).
    pub async fn deadlines(&self, id: TicketId) -> Result<Vec<Deadline>, DeskError> {
        self.check_ticket(id).await?;
        Ok(self.app.store().deadlines(id).await?)
    }

    /// Sets a target's deadline by hand; recorded as an event by the agent. Returns
    /// the event's text.
    pub async fn set_deadline(
        &self,
        id: TicketId,
        target: Target,
        due_at: i64,
    ) -> Result<String, DeskError> {
        let view = self.ticket(id).await?;
        let helpdesk = self.app.helpdesk(view.summary.helpdesk_id);
        if helpdesk.is_none_or(|hd| hd.config.sla.is_none()) {
            return Err(DeskError::Invalid(format!(
                "helpdesk {} has no deadlines; add a [helpdesk.sla] table to its configuration",
                view.summary.helpdesk
            )));
        }
        Ok(self
            .app
            .deadlines()
            .set_by_hand(id, self.agent().id, target, due_at)
            .await?)
    }
}
