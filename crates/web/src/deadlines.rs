//! Deadlines on the pages and in the API (issue 18): the "due" cell of the ticket list,
//! each target on the ticket page with whether it was met, and a deadline set by hand
//! (a form on the ticket page, `PUT /api/tickets/{id}/deadlines/{target}`). One shape
//! for both, as everywhere in [`crate::model`].

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Redirect;
use postdesk_core::id::TicketId;
use postdesk_core::sla::{Deadline, Target, due_label};
use postdesk_core::time::format_time;
use postdesk_store::deadlines::NextDue;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiError, Body, Changing};
use crate::auth::{Agent, CsrfForm};
use crate::model::Ticket;
use crate::{AppState, WebError};

/// The list's "due" cell: the ticket's earliest running deadline.
#[derive(Debug, Clone, Serialize)]
pub struct DueCell {
    pub target: Target,
    /// Unix seconds.
    pub due_at: i64,
    /// `in 2 h`, `overdue 3 h`.
    pub label: String,
    pub overdue: bool,
}

/// One target of a ticket, as the ticket page and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlineView {
    pub target: Target,
    /// `First response`, …
    pub name: &'static str,
    /// The policy that set it; empty when set by hand without one.
    pub policy: String,
    pub started_at: i64,
    pub due_at: i64,
    /// `met`, `missed`, `running`, `overdue`, `paused`, `stopped`.
    pub standing: &'static str,
    pub met_at: Option<i64>,
    pub by_hand: bool,
    /// `in 2 h`, `overdue 3 h` while it runs; none otherwise.
    pub label: Option<String>,
}

impl DeadlineView {
    pub fn new(d: Deadline, now: i64) -> Self {
        let standing = d.standing(now);
        let running = d.is_open() && d.paused_since.is_none();
        Self {
            target: d.target,
            name: d.target.label(),
            standing: standing.as_str(),
            label: running.then(|| due_label(d.due_at, now)),
            policy: d.policy,
            started_at: d.started_at,
            due_at: d.due_at,
            met_at: d.met_at,
            by_hand: d.by_hand,
        }
    }
}

/// Fills the tickets' due cells.
pub fn fill_due(due: &[(TicketId, NextDue)], tickets: &mut [Ticket]) {
    let now = postdesk_store::now();
    for t in tickets.iter_mut() {
        t.due = due
            .iter()
            .find(|(id, _)| *id == t.summary.id)
            .map(|(_, d)| DueCell {
                target: d.target,
                due_at: d.due_at,
                label: due_label(d.due_at, now),
                overdue: d.due_at < now,
            });
    }
}

/// A ticket's deadlines as shown, judged now.
pub fn views(deadlines: Vec<Deadline>) -> Vec<DeadlineView> {
    let now = postdesk_store::now();
    deadlines
        .into_iter()
        .map(|d| DeadlineView::new(d, now))
        .collect()
}

/// `YYYY-MM-DD HH:MM` (UTC, as every time is shown), or `…T…` as a browser's
/// `datetime-local` input sends it, or Unix seconds.
fn parse_due(text: &str) -> Result<i64, WebError> {
    let text = text.trim();
    let bad = || {
        WebError::BadRequest(format!(
            "`{}` is not a time; write YYYY-MM-DD HH:MM (UTC)",
            text.chars().take(40).collect::<String>()
        ))
    };
    postdesk_core::time::parse_time(text).ok_or_else(bad)
}

fn parse_target(text: &str) -> Result<Target, WebError> {
    text.trim().parse().map_err(WebError::BadRequest)
}

/// Missing fields read as empty, so that the CSRF check comes first and a missing
/// field then gets its own message.
#[derive(Deserialize)]
pub struct DeadlineForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    due: String,
}

/// The ticket page's "set deadline" form.
pub async fn set_page(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<DeadlineForm>,
) -> Result<Redirect, WebError> {
    let target = parse_target(&form.target)?;
    let due = parse_due(&form.due)?;
    state.desk(&agent).set_deadline(id, target, due).await?;
    Ok(Redirect::to(&format!("/tickets/{id}?done=deadline")))
}

/// `GET /api/tickets/{id}/deadlines`.
pub async fn list_api(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
) -> Result<Json<Value>, ApiError> {
    let now = postdesk_store::now();
    let list: Vec<DeadlineView> = state
        .desk(&agent)
        .deadlines(id)
        .await?
        .into_iter()
        .map(|d| DeadlineView::new(d, now))
        .collect();
    Ok(Json(serde_json::json!({ "deadlines": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineBody {
    /// Unix seconds, or `YYYY-MM-DD HH:MM` (UTC).
    due: Value,
}

/// `PUT /api/tickets/{id}/deadlines/{target}` with `{"due": …}`.
pub async fn set_api(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path((id, target)): Path<(TicketId, String)>,
    Body(body): Body<DeadlineBody>,
) -> Result<Json<Value>, ApiError> {
    let target = parse_target(&target)?;
    let due = match &body.due {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| WebError::BadRequest("`due` must be whole Unix seconds".into()))?,
        Value::String(s) => parse_due(s)?,
        _ => {
            return Err(WebError::BadRequest(
                "`due` must be Unix seconds or a text YYYY-MM-DD HH:MM (UTC)".into(),
            )
            .into());
        }
    };
    let event = state.desk(&agent).set_deadline(id, target, due).await?;
    Ok(Json(
        serde_json::json!({ "event": event, "due_at": due, "due": format_time(due) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_read_in_utc() {
        assert_eq!(parse_due("2026-11-22 14:05").unwrap(), 1_795_356_300);
        assert_eq!(parse_due("2026-11-22T14:05").unwrap(), 1_795_356_300);
        assert_eq!(parse_due("2026-11-22 14:05 UTC").unwrap(), 1_795_356_300);
        assert_eq!(parse_due("1795356300").unwrap(), 1_795_356_300);
        assert!(parse_due("tomorrow").is_err());
        assert!(parse_target("resolution").is_ok());
        assert!(parse_target("soon").is_err());
    }
}
