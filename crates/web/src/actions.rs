//! What an agent can do, once, for both the pages and the API: each action checks that
//! the agent may see the helpdesk involved before it reads or changes anything.
//! Something the agent may not see answers "not found", so its existence is not told.

use postdesk_app::intake::{Processed, Summary};
use postdesk_notify::reply::{ReplyError, ReplyQueued};
use postdesk_sources::imap::{self, check::Step};
use postdesk_store::contacts::{Contact, ContactChange, ContactEdit, ContactEvent, Organization};
use postdesk_store::desk::{TicketPage, TicketQuery, TicketUpdate};
use postdesk_store::read::{TicketSummary, TicketView};

use crate::auth::Agent;
use crate::model::{IntakeRow, Mailbox};
use crate::{AppState, WebError};

fn no_ticket(id: i64) -> WebError {
    WebError::NotFound(format!(
        "there is no ticket {id}, or it is not in your helpdesks"
    ))
}

pub async fn ticket(state: &AppState, agent: &Agent, id: i64) -> Result<TicketView, WebError> {
    let helpdesk = state
        .store()
        .ticket_helpdesk(id)
        .await
        .map_err(|_| no_ticket(id))?;
    if !agent.sees(helpdesk) {
        return Err(no_ticket(id));
    }
    Ok(state.store().ticket_by_id(id).await?)
}

pub async fn tickets(
    state: &AppState,
    agent: &Agent,
    mut query: TicketQuery,
) -> Result<TicketPage, WebError> {
    query.visible = agent.account.helpdesks.clone();
    Ok(state.store().find_tickets(&query).await?)
}

pub async fn reply(
    state: &AppState,
    agent: &Agent,
    id: i64,
    text: &str,
) -> Result<ReplyQueued, WebError> {
    let view = ticket(state, agent, id).await?;
    let hd = state.helpdesk(view.summary.helpdesk_id).ok_or_else(|| {
        WebError::Internal(format!(
            "helpdesk {} is not configured",
            view.summary.helpdesk
        ))
    })?;
    postdesk_notify::reply::reply(
        state.store(),
        hd,
        view.summary.number,
        Some(&agent.account.name),
        text,
    )
    .await
    .map_err(|e| match e {
        ReplyError::Empty => {
            WebError::BadRequest("the reply is empty; write a message first".into())
        }
        ReplyError::Store(e) => e.into(),
        other @ (ReplyError::NoSmtp(_) | ReplyError::NoRecipient(_)) => {
            WebError::BadRequest(other.to_string())
        }
        other => WebError::Internal(other.to_string()),
    })
}

pub async fn note(state: &AppState, agent: &Agent, id: i64, text: &str) -> Result<i64, WebError> {
    ticket(state, agent, id).await?;
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Err(WebError::BadRequest(
            "the note is empty; write something first".into(),
        ));
    }
    Ok(state.store().add_note(id, agent.account.id, text).await?)
}

pub async fn update(
    state: &AppState,
    agent: &Agent,
    id: i64,
    update: &TicketUpdate,
) -> Result<Vec<String>, WebError> {
    ticket(state, agent, id).await?;
    if update
        .status
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        return Err(WebError::BadRequest("a ticket always has a status".into()));
    }
    Ok(state
        .store()
        .update_ticket(id, agent.account.id, update)
        .await?)
}

/// The failed queue, as far as the agent may see it: mails no helpdesk took only for admins.
pub async fn failed(state: &AppState, agent: &Agent) -> Result<Vec<IntakeRow>, WebError> {
    let rows = state.store().intake_rows(Some("failed"), 500).await?;
    Ok(rows
        .into_iter()
        .filter(|r| sees_intake(agent, r.helpdesk.as_deref()))
        .collect())
}

fn sees_intake(agent: &Agent, helpdesk: Option<&str>) -> bool {
    match helpdesk {
        Some(name) => agent.account.helpdesk_names.iter().any(|h| h == name),
        None => agent.account.is_admin(),
    }
}

async fn failed_row(state: &AppState, agent: &Agent, id: i64) -> Result<(), WebError> {
    let row = state.store().intake_row(id).await?;
    if row.outcome != "failed" || !sees_intake(agent, row.helpdesk.as_deref()) {
        return Err(WebError::NotFound(format!(
            "failed mail {id} is not in your failed queue"
        )));
    }
    Ok(())
}

/// Processes a failed mail again, after its cause was fixed.
pub async fn retry(state: &AppState, agent: &Agent, id: i64) -> Result<Processed, WebError> {
    failed_row(state, agent, id).await?;
    let mut processed = state
        .app()
        .intake()
        .retry(&[id])
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    processed
        .pop()
        .ok_or_else(|| WebError::Internal(format!("retrying mail {id} gave no result")))
}

pub async fn dismiss(state: &AppState, agent: &Agent, id: i64) -> Result<(), WebError> {
    failed_row(state, agent, id).await?;
    Ok(state.store().dismiss_failed(id).await?)
}

/// May the agent see the raw mail of this ledger row?
pub async fn raw_mail(
    state: &AppState,
    agent: &Agent,
    intake_id: i64,
) -> Result<Vec<u8>, WebError> {
    let not_found = || {
        WebError::NotFound(format!(
            "there is no mail {intake_id}, or it is not in your helpdesks"
        ))
    };
    let helpdesk = state
        .store()
        .intake_helpdesk(intake_id)
        .await
        .map_err(|_| not_found())?;
    let allowed = match helpdesk {
        Some(id) => agent.sees(id),
        None => agent.account.is_admin(),
    };
    if !allowed {
        return Err(not_found());
    }
    Ok(state.store().raw_mail(intake_id).await?)
}

pub async fn mailboxes(state: &AppState, agent: &Agent) -> Result<Vec<Mailbox>, WebError> {
    let statuses = state.store().mailbox_statuses().await?;
    Ok(state
        .mailboxes()
        .iter()
        .enumerate()
        .filter(|(_, m)| agent.account.helpdesk_names.contains(&m.helpdesk))
        .map(|(index, m)| {
            let status = statuses
                .iter()
                .find(|s| s.helpdesk == m.helpdesk && s.mailbox == m.name());
            Mailbox::new(index, m, status)
        })
        .collect())
}

fn mailbox<'s>(
    state: &'s AppState,
    agent: &Agent,
    index: usize,
) -> Result<&'s imap::Mailbox, WebError> {
    state
        .mailboxes()
        .get(index)
        .filter(|m| agent.account.helpdesk_names.contains(&m.helpdesk))
        .ok_or_else(|| WebError::NotFound(format!("there is no mailbox {index} in your helpdesks")))
}

/// The "test connection" button: each step with what to fix.
pub async fn check_mailbox(
    state: &AppState,
    agent: &Agent,
    index: usize,
) -> Result<(Mailbox, Vec<Step>), WebError> {
    let m = mailbox(state, agent, index)?;
    let credential = imap::credential(state.store(), &m.helpdesk, &m.settings).await;
    let steps = imap::check::check(&m.settings, credential).await;
    let failure = steps.iter().find_map(|s| s.result.as_ref().err());
    // What the button found is the mailbox's health too.
    if let Some(problem) = failure {
        state
            .store()
            .mailbox_failed(&m.helpdesk, &m.name(), problem)
            .await?;
    }
    let status = state.store().mailbox_statuses().await?;
    let status = status
        .iter()
        .find(|s| s.helpdesk == m.helpdesk && s.mailbox == m.name());
    Ok((Mailbox::new(index, m, status), steps))
}

pub async fn scan_mailbox(
    state: &AppState,
    agent: &Agent,
    index: usize,
) -> Result<Summary, WebError> {
    let m = mailbox(state, agent, index)?;
    m.scan_once(state.app())
        .await
        .map_err(|e| WebError::BadRequest(format!("{}: {e}", m.name())))
}

/// The ticket list's query string, as the page and the API take it.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct TicketListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpdesk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Agent name, or `-` for unassigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// `updated` (default), `created`, `number`, `priority`, `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Kept as text so that a bad value gets a clear message, not a bare 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<String>,
}

impl TicketListParams {
    /// Empty fields (an untouched form input) mean "no filter".
    fn field(value: &Option<String>) -> Option<String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn query(&self, default_per_page: i64) -> Result<TicketQuery, WebError> {
        let number = |name: &str, value: &Option<String>, default: i64| match Self::field(value) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                WebError::BadRequest(format!("`{name}` must be a whole number from 1, not `{v}`"))
            }),
        };
        let sort = match Self::field(&self.sort) {
            None => Default::default(),
            Some(s) => postdesk_store::desk::TicketSort::parse(&s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`sort` must be updated, created, number, priority or status, not `{s}`"
                ))
            })?,
        };
        let ascending = match Self::field(&self.order).as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => {
                return Err(WebError::BadRequest(format!(
                    "`order` must be asc or desc, not `{o}`"
                )));
            }
        };
        Ok(TicketQuery {
            visible: Vec::new(),
            helpdesk: Self::field(&self.helpdesk),
            status: Self::field(&self.status),
            assignee: Self::field(&self.assignee),
            priority: Self::field(&self.priority),
            requester: Self::field(&self.requester),
            search: Self::field(&self.q),
            sort,
            ascending,
            page: number("page", &self.page, 1)?,
            per_page: number("per_page", &self.per_page, default_per_page)?.min(500),
        })
    }

    /// `/tickets?…` with these filters, changed by `change`.
    pub fn link(&self, change: impl FnOnce(&mut Self)) -> String {
        let mut params = self.clone();
        change(&mut params);
        for field in [
            &mut params.q,
            &mut params.helpdesk,
            &mut params.status,
            &mut params.assignee,
            &mut params.priority,
            &mut params.requester,
            &mut params.sort,
            &mut params.order,
            &mut params.page,
            &mut params.per_page,
        ] {
            *field = Self::field(field);
        }
        match serde_urlencoded::to_string(&params) {
            Ok(q) if !q.is_empty() => format!("/tickets?{q}"),
            _ => "/tickets".into(),
        }
    }
}

/// The contact list's query string, as the page and the API take it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ContactSearch {
    /// Part of a name or an address.
    pub q: Option<String>,
}

impl ContactSearch {
    /// What to search for; an empty field (an untouched form input) means everything.
    pub fn text(&self) -> Option<&str> {
        self.q.as_deref().filter(|q| !q.trim().is_empty())
    }
}

/// Contacts the agent may see (those with tickets in the agent's helpdesks; all for admins).
pub async fn contacts(
    state: &AppState,
    agent: &Agent,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, WebError> {
    Ok(state
        .store()
        .contacts(&agent.account.scope(), search, limit)
        .await?)
}

/// A contact the agent may see, the tickets of it the agent may see, and its changes.
pub async fn contact(
    state: &AppState,
    agent: &Agent,
    id: i64,
) -> Result<(Contact, Vec<TicketSummary>, Vec<ContactEvent>), WebError> {
    let contact = state.store().contact(&agent.account.scope(), id).await?;
    let tickets = state
        .store()
        .tickets_of(Some(id), None, &agent.account.helpdesks)
        .await?;
    let events = state.store().contact_events(id).await?;
    Ok((contact, tickets, events))
}

/// Changes a contact. Its addresses decide where the helpdesks' replies go and who may
/// write to its tickets, so only an admin or an agent of every helpdesk the contact has
/// tickets in may change it; to other agents who see it the answer is 403, to agents
/// who do not see it 404. The change is recorded on the contact and its open tickets.
pub async fn edit_contact(
    state: &AppState,
    agent: &Agent,
    id: i64,
    change: ContactChange,
) -> Result<bool, WebError> {
    state.store().contact(&agent.account.scope(), id).await?;
    let helpdesks = state.store().contact_helpdesks(id).await?;
    if !agent.account.is_admin() && !helpdesks.iter().all(|h| agent.sees(*h)) {
        return Err(WebError::Forbidden(
            "this contact also has tickets in a helpdesk you are not in: only an admin, or an \
             agent of every helpdesk it has tickets in, may change it"
                .into(),
        ));
    }
    let open_tickets: Vec<i64> = state
        .store()
        .tickets_of(Some(id), None, &helpdesks)
        .await?
        .into_iter()
        .filter(|t| {
            state
                .helpdesk(t.helpdesk_id)
                .is_none_or(|hd| !hd.config.is_closed(&t.status))
        })
        .map(|t| t.id)
        .collect();
    let edit = ContactEdit {
        contact_id: id,
        agent_id: agent.account.id,
        change,
        open_tickets: &open_tickets,
    };
    Ok(state.store().edit_contact(&edit).await?)
}

/// Organizations the agent may see (with tickets in the agent's helpdesks; all for admins).
pub async fn organizations(state: &AppState, agent: &Agent) -> Result<Vec<Organization>, WebError> {
    Ok(state.store().organizations(&agent.account.scope()).await?)
}

/// An organization the agent may see, its contacts and tickets the agent may see.
pub async fn organization(
    state: &AppState,
    agent: &Agent,
    id: i64,
) -> Result<(Organization, Vec<Contact>, Vec<TicketSummary>), WebError> {
    let (organization, contacts) = state
        .store()
        .organization(&agent.account.scope(), id)
        .await?;
    let tickets = state
        .store()
        .tickets_of(None, Some(id), &agent.account.helpdesks)
        .await?;
    Ok((organization, contacts, tickets))
}
