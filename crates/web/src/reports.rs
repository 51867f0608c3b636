//! The weekly reports on the web (issue 18): `/reports`, a page per helpdesk the agent
//! sees with its charts drawn here as inline SVG (no script: the CSP has none) and a
//! table of every number; `/reports.csv`, the same report as the command line's CSV;
//! and `GET /api/reports`, as JSON. All three take `since`, `until` (`YYYY-MM-DD`) and
//! `helpdesk` (a name; none: every helpdesk the agent sees), and go through the desk,
//! which narrows the report to the agent's helpdesks.
//!
//! The charts' geometry is computed here; the template only places it, and its text
//! (helpdesk names, week labels, tooltips) is escaped by the template engine like any
//! other value.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use minijinja::value::Serde;
use postdesk_app::reports::{ReportRequest, durations_label, to_csv};
use postdesk_core::report::Durations;
use postdesk_core::sla::{Target, span_label};
use postdesk_core::time::format_time;
use postdesk_store::reports::WeekReport;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::auth::Agent;
use crate::{AppState, WebError};

/// The weeks a report shows when none are asked for: this one and the seven before.
const DEFAULT_WEEKS: i64 = 8;

/// The query of all three forms; missing or empty fields take their defaults.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ReportParams {
    since: String,
    until: String,
    helpdesk: String,
}

impl ReportParams {
    fn request(&self) -> ReportRequest {
        let now = postdesk_store::now();
        let since = match self.since.trim() {
            "" => date_of(now - (DEFAULT_WEEKS - 1) * 7 * 86_400),
            given => given.to_string(),
        };
        let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        ReportRequest {
            since,
            until: given(&self.until),
            helpdesk: given(&self.helpdesk),
        }
    }
}

/// `YYYY-MM-DD` of `unix` in UTC.
fn date_of(unix: i64) -> String {
    format_time(unix).chars().take(10).collect()
}

async fn report(
    state: &AppState,
    agent: &Agent,
    request: &ReportRequest,
) -> Result<Vec<WeekReport>, WebError> {
    Ok(state.desk(agent).report(request).await?)
}

/// `GET /reports`.
pub async fn page(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<ReportParams>,
) -> Result<Html<String>, WebError> {
    let request = params.request();
    let rows = report(&state, &agent, &request).await?;
    let sections = sections(&rows);
    crate::views::render(
        &state.0.templates,
        "reports.html",
        Some(&agent),
        "reports",
        context! {
            sections => Serde(sections),
            since => request.since,
            until => request.until.unwrap_or_else(|| date_of(postdesk_store::now())),
            helpdesk => request.helpdesk.unwrap_or_default(),
            helpdesks => agent.account.helpdesk_names.clone(),
        },
    )
}

/// `GET /reports.csv`: an attachment, neutralised against formulas (see the app's
/// `reports`).
pub async fn csv(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<ReportParams>,
) -> Result<Response, WebError> {
    let rows = report(&state, &agent, &params.request()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"postdesk-report.csv\"",
            ),
        ],
        to_csv(&rows),
    )
        .into_response())
}

/// One week of one helpdesk in the API.
#[derive(Debug, Serialize)]
pub struct ApiWeek {
    pub helpdesk: String,
    /// `2026-W49`.
    pub week: String,
    /// Its Monday, `YYYY-MM-DD`.
    pub week_start: String,
    pub time_zone: String,
    pub created: u64,
    pub closed: u64,
    pub first_response: ApiDurations,
    pub resolution: ApiDurations,
    /// `{ "first_response": { "met": 3, "missed": 1 }, … }`.
    pub deadlines: serde_json::Map<String, Value>,
}

/// Durations in seconds; `null` without any.
#[derive(Debug, Serialize)]
pub struct ApiDurations {
    pub count: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl From<&Durations> for ApiDurations {
    fn from(d: &Durations) -> Self {
        Self {
            count: d.count,
            median_seconds: d.median,
            p90_seconds: d.p90,
        }
    }
}

impl From<&WeekReport> for ApiWeek {
    fn from(row: &WeekReport) -> Self {
        Self {
            helpdesk: row.helpdesk.clone(),
            week: row.week.to_string(),
            week_start: row.week.monday_text(),
            time_zone: row.time_zone.clone(),
            created: row.created,
            closed: row.closed,
            first_response: (&row.first_response).into(),
            resolution: (&row.resolution).into(),
            deadlines: row
                .deadlines
                .iter()
                .map(|t| {
                    (
                        t.target.as_str().to_string(),
                        json!({ "met": t.met, "missed": t.missed }),
                    )
                })
                .collect(),
        }
    }
}

/// `GET /api/reports`.
pub async fn api(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    let rows = report(&state, &agent, &params.request()).await?;
    let weeks: Vec<ApiWeek> = rows.iter().map(ApiWeek::from).collect();
    Ok(Json(json!({ "weeks": weeks })))
}

/// One helpdesk on the page: its charts and its table.
#[derive(Debug, Serialize)]
struct Section {
    helpdesk: String,
    time_zone: String,
    charts: Vec<Chart>,
    rows: Vec<TableRow>,
}

#[derive(Debug, Serialize)]
struct TableRow {
    week: String,
    week_start: String,
    created: u64,
    closed: u64,
    first_response: String,
    resolution: String,
    /// `met / missed` per target, in [`Target::ALL`]'s order.
    deadlines: Vec<String>,
}

fn sections(rows: &[WeekReport]) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let id = rows[start].helpdesk_id;
        let end = rows[start..]
            .iter()
            .position(|r| r.helpdesk_id != id)
            .map_or(rows.len(), |n| start + n);
        let weeks = &rows[start..end];
        sections.push(Section {
            helpdesk: weeks[0].helpdesk.clone(),
            time_zone: weeks[0].time_zone.clone(),
            charts: charts(weeks),
            rows: weeks
                .iter()
                .map(|r| TableRow {
                    week: r.week.to_string(),
                    week_start: r.week.monday_text(),
                    created: r.created,
                    closed: r.closed,
                    first_response: durations_label(&r.first_response),
                    resolution: durations_label(&r.resolution),
                    deadlines: Target::ALL
                        .iter()
                        .map(|t| {
                            let t = r.tally(*t);
                            format!("{} / {}", t.met, t.missed)
                        })
                        .collect(),
                })
                .collect(),
        });
        start = end;
    }
    sections
}

/// A bar chart of two series per week, laid out for the template.
#[derive(Debug, Serialize)]
struct Chart {
    title: &'static str,
    width: i64,
    height: i64,
    /// The plot's top and bottom (y), and the largest value's label at the top.
    top: i64,
    bottom: i64,
    max_label: String,
    /// The two series' names, for the legend (classes `a` and `b`).
    series: [&'static str; 2],
    bars: Vec<Bar>,
    labels: Vec<Label>,
}

#[derive(Debug, Serialize)]
struct Bar {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
    /// `a` or `b`.
    class: &'static str,
    /// The tooltip: `2026-W49 created: 4`.
    title: String,
}

#[derive(Debug, Serialize)]
struct Label {
    x: i64,
    text: String,
}

const LEFT: i64 = 48;
const GROUP: i64 = 36;
const BAR: i64 = 14;
const TOP: i64 = 24;
const PLOT: i64 = 120;

/// What one chart plots: two values per week (none: no bar) and how to write them.
struct Plot {
    title: &'static str,
    series: [&'static str; 2],
    values: Vec<[Option<i64>; 2]>,
    label: fn(i64) -> String,
}

fn count_label(n: i64) -> String {
    n.to_string()
}

fn charts(weeks: &[WeekReport]) -> Vec<Chart> {
    let sum = |r: &WeekReport, met: bool| -> i64 {
        r.deadlines
            .iter()
            .map(|t| if met { t.met } else { t.missed } as i64)
            .sum()
    };
    let plots = [
        Plot {
            title: "Tickets created and closed",
            series: ["created", "closed"],
            values: weeks
                .iter()
                .map(|r| [Some(r.created as i64), Some(r.closed as i64)])
                .collect(),
            label: count_label,
        },
        Plot {
            title: "First response (median, p90)",
            series: ["median", "p90"],
            values: weeks
                .iter()
                .map(|r| [r.first_response.median, r.first_response.p90])
                .collect(),
            label: span_label,
        },
        Plot {
            title: "Resolution (median, p90)",
            series: ["median", "p90"],
            values: weeks
                .iter()
                .map(|r| [r.resolution.median, r.resolution.p90])
                .collect(),
            label: span_label,
        },
        Plot {
            title: "Deadlines met and missed",
            series: ["met", "missed"],
            values: weeks
                .iter()
                .map(|r| [Some(sum(r, true)), Some(sum(r, false))])
                .collect(),
            label: count_label,
        },
    ];
    plots.into_iter().map(|plot| chart(weeks, plot)).collect()
}

fn chart(weeks: &[WeekReport], plot: Plot) -> Chart {
    let largest = plot.values.iter().flatten().flatten().copied().max();
    let max = largest.unwrap_or(0).max(1);
    let bottom = TOP + PLOT;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (week, values)) in weeks.iter().zip(&plot.values).enumerate() {
        let x = LEFT + i as i64 * GROUP;
        labels.push(Label {
            x: x + BAR,
            text: format!("W{:02}", week.week.week),
        });
        for (j, value) in values.iter().enumerate() {
            let Some(value) = *value else { continue };
            let height = value * PLOT / max;
            bars.push(Bar {
                x: x + 2 + j as i64 * BAR,
                y: bottom - height,
                width: BAR - 2,
                height,
                class: ["a", "b"][j],
                title: format!("{} {}: {}", week.week, plot.series[j], (plot.label)(value)),
            });
        }
    }
    Chart {
        title: plot.title,
        width: LEFT + weeks.len() as i64 * GROUP + 8,
        height: bottom + 20,
        top: TOP,
        bottom,
        // Nothing to plot: no scale either.
        max_label: largest.map(|_| (plot.label)(max)).unwrap_or_default(),
        series: plot.series,
        bars,
        labels,
    }
}
