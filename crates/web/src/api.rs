//! The REST API: JSON over the same actions and permissions as the pages.
//! Authenticate with `Authorization: Bearer <token>` (`postdesk agents token NAME`);
//! a browser session works too, with its CSRF token in `X-CSRF-Token` for changes.
//! Described at `/api/openapi.json`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use postdesk_core::id::{ContactId, IntakeId, TicketId};
use postdesk_core::ticket::FieldChanges;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::Agent;
use crate::model::{Mailbox, Ticket, TicketDetail};
use crate::query::{ContactSearch, TicketListParams};
use crate::{AppState, WebError};

/// API errors are JSON: `{"error": "…"}` with the matching status.
pub struct ApiError(pub(crate) WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        Self(e)
    }
}

impl From<postdesk_store::StoreError> for ApiError {
    fn from(e: postdesk_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<postdesk_app::desk::DeskError> for ApiError {
    fn from(e: postdesk_app::desk::DeskError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_json()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// A JSON body whose errors say what was wrong, as JSON.
pub struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e: JsonRejection| ApiError(WebError::BadRequest(e.body_text())))
    }
}

/// The signed-in agent of a call that changes something. Through a browser session the
/// call must carry the session's CSRF token in `X-CSRF-Token` (403 otherwise); a call
/// with an API token needs none. It is checked before the path and the body are read.
pub struct Changing(pub(crate) Agent);

impl FromRequestParts<AppState> for Changing {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let agent = Agent::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        agent
            .check_csrf(given)
            .map_err(|e| ApiError(e).into_response())?;
        Ok(Changing(agent))
    }
}

fn to_json<T: serde::Serialize>(value: T) -> ApiResult {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| ApiError(WebError::Internal(e.into())))
}

pub async fn me(agent: Agent) -> ApiResult {
    let a = &agent.account;
    Ok(Json(json!({
        "id": a.id,
        "name": a.name,
        "email": a.email,
        "role": a.role.as_str(),
        "helpdesks": a.helpdesk_names,
    })))
}

pub async fn tickets(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<TicketListParams>,
) -> ApiResult {
    let query = params.query(50)?;
    let page = state.desk(&agent).tickets(query.clone()).await?;
    let (total, next, previous) = (page.total, page.next.clone(), page.previous.clone());
    let beyond_window = page.beyond_window;
    let counts: serde_json::Map<String, Value> = page
        .status_counts
        .iter()
        .map(|(s, n)| (s.clone(), json!(n)))
        .collect();
    let tickets = Ticket::page(&state, page);
    Ok(Json(json!({
        "total": total,
        // A search of a common word counts its newest matches only (store's search).
        "total_is_lower_bound": beyond_window,
        "page": if query.at.is_none() { Some(query.page) } else { None },
        "per_page": query.per_page,
        "status_counts": counts,
        // Keyset pages (issue 19): pass as `after` / `before`; null at either end.
        "next": next.map(|c| c.to_string()),
        "previous": previous.map(|c| c.to_string()),
        "tickets": tickets,
    })))
}

pub async fn ticket(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
) -> ApiResult {
    // One read, as the ticket's page (issue 19).
    let page = state.desk(&agent).ticket_page(id).await?;
    let mut detail = TicketDetail::new(&state, page.view);
    detail.deadlines = crate::deadlines::views(page.deadlines);
    to_json(detail)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    status: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    priority: Option<Option<String>>,
    #[serde(default, rename = "type", deserialize_with = "present")]
    ticket_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
}

/// Tells a field given as `null` (clear it) from a field left out (keep it).
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn update_ticket(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<TicketId>,
    Body(body): Body<UpdateBody>,
) -> ApiResult {
    let update = FieldChanges {
        status: body.status.map(Some),
        priority: body.priority,
        ticket_type: body.ticket_type,
        assignee: body.assignee,
        ..FieldChanges::default()
    };
    let events = state.desk(&agent).update(id, &update).await?;
    let view = state.desk(&agent).ticket(id).await?;
    Ok(Json(json!({
        "changes": events,
        "ticket": TicketDetail::new(&state, view),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    text: String,
}

pub async fn reply(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<TicketId>,
    Body(body): Body<TextBody>,
) -> ApiResult {
    let queued = state.desk(&agent).reply(id, &body.text).await?;
    Ok(Json(json!({
        "entry_id": queued.entry_id,
        "outbox_id": queued.outbox_id,
        "message_id": queued.message_id,
        "subject": queued.subject,
        "recipients": queued.recipients,
        "suppressed": queued.suppressed,
    })))
}

pub async fn note(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<TicketId>,
    Body(body): Body<TextBody>,
) -> ApiResult {
    let entry_id = state.desk(&agent).note(id, &body.text).await?;
    Ok(Json(json!({ "entry_id": entry_id })))
}

pub async fn contacts(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<ContactSearch>,
) -> ApiResult {
    to_json(state.desk(&agent).contacts(params.text()?, 500).await?)
}

pub async fn contact(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<ContactId>,
) -> ApiResult {
    let (contact, tickets, events) = state.desk(&agent).contact(id).await?;
    let tickets = Ticket::list(&state, tickets);
    Ok(Json(
        json!({ "contact": contact, "tickets": tickets, "events": events }),
    ))
}

pub async fn organizations(State(state): State<AppState>, agent: Agent) -> ApiResult {
    to_json(state.desk(&agent).organizations().await?)
}

pub async fn mailboxes(State(state): State<AppState>, agent: Agent) -> ApiResult {
    to_json(Mailbox::list(state.desk(&agent).mailboxes().await?))
}

pub async fn failed(State(state): State<AppState>, agent: Agent) -> ApiResult {
    to_json(state.desk(&agent).failed().await?)
}

pub async fn retry_failed(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<IntakeId>,
) -> ApiResult {
    let processed = state.desk(&agent).retry(id).await?;
    let (message, _) = crate::pages::retry_outcome(&state, id, &processed).await;
    let r = &processed.report;
    Ok(Json(json!({
        "outcome": r.outcome.as_str(),
        "ticket_id": r.ticket_id,
        "ticket_number": r.ticket_number,
        "reason": r.reason,
        "message": message,
    })))
}

pub async fn dismiss_failed(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<IntakeId>,
) -> ApiResult {
    state.desk(&agent).dismiss(id).await?;
    Ok(Json(json!({ "dismissed": id })))
}
