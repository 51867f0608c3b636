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

// The same in the API (`/api/notifications`, `/api/tickets/{id}/watch`,
// `/api/attachments/{id}`), described in the OpenAPI document.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use postdesk_core::id::AttachmentId;
use serde_json::{Value, json};

use crate::api::{ApiError, Changing};

fn body<T>(given: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    given
        .map(|Json(v)| v)
        .map_err(|e| WebError::BadRequest(e.body_text()).into())
}

pub async fn api_list(
    State(state): State<AppState>,
    agent: Agent,
) -> Result<Json<Value>, ApiError> {
    let notifications = state.app().notifications();
    let list = notifications.list(agent.account.id).await?;
    let unread = notifications.unread(agent.account.id).await?;
    Ok(Json(json!({ "unread": unread, "notifications": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    id: Option<i64>,
}

pub async fn api_mark_read(
    State(state): State<AppState>,
    Changing(agent): Changing,
    given: Result<Json<ReadBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let read = body(given)?;
    let marked = state
        .app()
        .notifications()
        .mark_read(agent.account.id, read.id)
        .await?;
    Ok(Json(json!({ "marked": marked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchBody {
    watch: bool,
}

pub async fn api_watch(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<TicketId>,
    given: Result<Json<WatchBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let watch = body(given)?.watch;
    state.desk(&agent).ticket(id).await?;
    state
        .store()
        .watch_ticket(id, agent.account.id, watch)
        .await?;
    Ok(Json(json!({ "watching": watch })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisibilityBody {
    visibility: String,
}

pub async fn api_visibility(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<AttachmentId>,
    given: Result<Json<VisibilityBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let public = match body(given)?.visibility.as_str() {
        "public" => true,
        "internal" => false,
        _ => {
            return Err(WebError::BadRequest("visibility is `public` or `internal`".into()).into());
        }
    };
    let ticket = state
        .app()
        .portal()
        .set_visibility(&agent.account, id, public)
        .await
        .map_err(WebError::from)?;
    Ok(Json(json!({
        "ticket_id": ticket,
        "visibility": if public { "public" } else { "internal" },
    })))
}
