//! Interventions on the pages and in the API (issue 18): the ticket page's list with a
//! form prefilled from the helpdesk's template and one to change each, the agent's
//! page "my interventions this week", and `/api/tickets/{id}/interventions` and
//! `/api/interventions/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use minijinja::context;
use minijinja::value::Serde;
use postdesk_app::interventions::{Planned, parse_status};
use postdesk_core::id::{InterventionId, TicketId};
use postdesk_core::time::parse_time;
use postdesk_store::interventions::{InterventionChange, InterventionRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, Body, Changing};
use crate::auth::{Agent, CsrfForm};
use crate::{AppState, WebError};

/// An optional field of a form: empty is none.
fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

fn time_field(name: &str, text: &str) -> Result<Option<i64>, WebError> {
    given(text)
        .map(|t| {
            parse_time(t).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "the {name} `{}` is not a time; write YYYY-MM-DD HH:MM (UTC)",
                    t.chars().take(40).collect::<String>()
                ))
            })
        })
        .transpose()
}

/// Monday 00:00 UTC of the week of `now`, and the next Monday (the ISO weeks of the
/// reports).
fn this_week(now: i64) -> (i64, i64) {
    let zone = postdesk_core::report::ReportZone::utc();
    let week = zone.week_of(now);
    let from = zone.start_of(week);
    (
        from,
        week.next().map_or(from + 7 * 86_400, |w| zone.start_of(w)),
    )
}

/// `/interventions`: the signed-in agent's interventions planned this week.
pub async fn mine(State(state): State<AppState>, agent: Agent) -> Result<Html<String>, WebError> {
    let (from, to) = this_week(postdesk_store::now());
    let rows = state.desk(&agent).my_interventions(from, to).await?;
    crate::views::render(
        &state.0.templates,
        "interventions.html",
        Some(&agent),
        "interventions",
        context! { interventions => Serde(rows), from, to },
    )
}

/// The form fields; missing ones read as empty, so that the CSRF check comes first.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AddForm {
    assignee: String,
    start: String,
    end: String,
    text: String,
}

impl AddForm {
    fn planned(&self) -> Result<Planned, WebError> {
        Ok(Planned {
            assignee: given(&self.assignee).map(str::to_string),
            planned_start: time_field("start", &self.start)?,
            planned_end: time_field("end", &self.end)?,
            text: given(&self.text).map(str::to_string),
        })
    }
}

pub async fn add_page(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<Redirect, WebError> {
    state
        .desk(&agent)
        .add_intervention(id, form.planned()?)
        .await?;
    Ok(Redirect::to(&format!("/tickets/{id}?done=intervention")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangeForm {
    status: String,
    minutes: String,
    report: String,
}

pub async fn change_page(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<InterventionId>,
    CsrfForm(form): CsrfForm<ChangeForm>,
) -> Result<Redirect, WebError> {
    let minutes = match given(&form.minutes) {
        Some(m) => Some(m.parse::<i64>().map_err(|_| {
            WebError::BadRequest(format!("the time spent `{m}` is not a number of minutes"))
        })?),
        None => None,
    };
    let change = InterventionChange {
        status: given(&form.status).map(parse_status).transpose()?,
        minutes_spent: minutes,
        report: given(&form.report).map(str::to_string),
        ..Default::default()
    };
    let changed = state.desk(&agent).change_intervention(id, change).await?;
    Ok(Redirect::to(&format!(
        "/tickets/{}?done=intervention",
        changed.intervention.ticket_id
    )))
}

/// What the ticket page shows of a ticket's interventions.
pub async fn for_ticket_page(
    state: &AppState,
    agent: &Agent,
    id: TicketId,
) -> Result<(Vec<InterventionRow>, String), WebError> {
    let desk = state.desk(agent);
    Ok((
        desk.ticket_interventions(id).await?,
        desk.intervention_text(id).await?,
    ))
}

/// `GET /api/tickets/{id}/interventions`: the list and the text a new one starts from.
pub async fn list_api(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
) -> Result<Json<Value>, ApiError> {
    let (list, text) = for_ticket_page(&state, &agent, id).await?;
    Ok(Json(
        json!({ "interventions": list, "template_text": text }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    assignee: Option<String>,
    /// `YYYY-MM-DD HH:MM` (UTC) or Unix seconds.
    planned_start: Option<String>,
    planned_end: Option<String>,
    /// None: the helpdesk's template.
    text: Option<String>,
}

/// `POST /api/tickets/{id}/interventions`.
pub async fn add_api(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<TicketId>,
    Body(body): Body<AddBody>,
) -> Result<Json<Value>, ApiError> {
    let planned = Planned {
        assignee: body.assignee,
        planned_start: time_field("planned_start", body.planned_start.as_deref().unwrap_or(""))?,
        planned_end: time_field("planned_end", body.planned_end.as_deref().unwrap_or(""))?,
        text: body.text,
    };
    let row = state.desk(&agent).add_intervention(id, planned).await?;
    Ok(Json(json!(row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    status: Option<String>,
    minutes_spent: Option<i64>,
    report: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::api::present")]
    assignee: Option<Option<String>>,
}

/// `PATCH /api/interventions/{id}`.
pub async fn change_api(
    State(state): State<AppState>,
    Changing(agent): Changing,
    Path(id): Path<InterventionId>,
    Body(body): Body<ChangeBody>,
) -> Result<Json<Value>, ApiError> {
    let change = InterventionChange {
        status: body.status.as_deref().map(parse_status).transpose()?,
        minutes_spent: body.minutes_spent,
        report: body.report,
        assignee: body.assignee,
        ..Default::default()
    };
    let changed = state.desk(&agent).change_intervention(id, change).await?;
    Ok(Json(json!({
        "intervention": changed.intervention,
        "ticket_event": changed.ticket,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_week_runs_from_monday() {
        // Wednesday 2026-11-18 12:00 UTC → Monday 2026-11-16 00:00 to 2026-11-23.
        let (from, to) = this_week(1_795_003_200);
        assert_eq!(
            postdesk_core::time::format_time(from),
            "2026-11-16 00:00 UTC"
        );
        assert_eq!(postdesk_core::time::format_time(to), "2026-11-23 00:00 UTC");
        let (monday, _) = this_week(from);
        assert_eq!(monday, from);
    }
}
