//! The mailbox page's actions, for both the pages and the API (each shows an agent only
//! the mailboxes of their helpdesks), and the list pages' query strings. Every other
//! desk action is the application layer's: `postdesk_app::desk`.

use postdesk_app::intake::Summary;
use postdesk_sources::imap::{self, check::Step};
use postdesk_store::desk::TicketQuery;

use crate::auth::Agent;
use crate::model::Mailbox;
use crate::{AppState, WebError};

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
