//! Agents' notifications inside the app (issue 17): the notifications page (each
//! with a link to its ticket, marked read one by one or all at once) and watching a
//! ticket. The bell's count is read with the agent on each page load (`auth::Agent`),
//! so it stays current without any script.

use postdesk_core::id::TicketId;

use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use minijinja::value::Serde;
use serde::Deserialize;

use crate::auth::{Agent, CsrfForm};
use crate::{AppState, WebError};

pub async fn list(State(state): State<AppState>, agent: Agent) -> Result<Html<String>, WebError> {
    let notifications = state.app().notifications().list(agent.account.id).await?;
    let rows: Vec<_> = notifications
        .iter()
        .map(|n| {
            minijinja::context! {
                n => Serde(n),
                reference => state.reference(
                    state
                        .app()
                        .helpdesks()
                        .iter()
                        .find(|h| h.config.settings.name == n.helpdesk)
                        .map(|h| h.id)
                        .unwrap_or(postdesk_core::id::HelpdeskId::new(0)),
                    n.ticket_number
                ),
            }
        })
        .collect();
    crate::views::render(
        &super::ENVIRONMENT,
        "portal/notifications.html",
        Some(&agent),
        "notifications",
        minijinja::context! { notifications => rows },
    )
}

#[derive(Deserialize)]
pub struct ReadForm {
    /// One notification; none: all of them.
    id: Option<String>,
}

pub async fn mark_read(
    State(state): State<AppState>,
    agent: Agent,
    CsrfForm(form): CsrfForm<ReadForm>,
) -> Result<Redirect, WebError> {
    let id = match form.id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| WebError::BadRequest("name the notification by its id".into()))?,
        ),
        None => None,
    };
    state
        .app()
        .notifications()
        .mark_read(agent.account.id, id)
        .await?;
    Ok(Redirect::to("/notifications"))
}

#[derive(Deserialize)]
pub struct WatchForm {
    watch: Option<String>,
}

pub async fn watch(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<WatchForm>,
) -> Result<Redirect, WebError> {
    // Only a ticket the agent may see (else "not found").
    state.desk(&agent).ticket(id).await?;
    let watch = form.watch.as_deref() != Some("false");
    state
        .store()
        .watch_ticket(id, agent.account.id, watch)
        .await?;
    Ok(Redirect::to(&format!("/tickets/{id}?done=update")))
}
