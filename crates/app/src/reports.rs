//! The weekly reports from the entry points' side (issue 18): a request as an entry
//! point gives it (dates as text, a helpdesk by name), checked and narrowed to the
//! helpdesks the asker may see, the store's report run on it, and the one CSV form of
//! a report that the web's download and `postdesk report --format csv` both write (and
//! the one label of its durations for people).
//! [`App::report`] is for the command line, which sees every helpdesk; the desk's
//! [`Desk::report`] is limited to the agent's (an admin's: all).
//!
//! CSV cells are neutralised against formula injection: a cell that begins with `=`,
//! `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, since helpdesk names
//! are hostile input.

use postdesk_core::id::HelpdeskId;
use postdesk_core::report::{Durations, ReportPeriod};
use postdesk_core::sla::{Target, span_label};
use postdesk_store::reports::{ReportQuery, WeekReport};

use crate::App;
use crate::desk::{Desk, DeskError};

/// A report as asked for: `since` and `until` are `YYYY-MM-DD` (no `until`: up to this
/// week), `helpdesk` a name (none: every helpdesk the asker sees).
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    pub since: String,
    pub until: Option<String>,
    pub helpdesk: Option<String>,
}

impl App {
    /// The report of `request` over every helpdesk (the command line's).
    pub async fn report(&self, request: &ReportRequest) -> Result<Vec<WeekReport>, DeskError> {
        let all: Vec<HelpdeskId> = self.helpdesks().iter().map(|h| h.id).collect();
        self.report_among(request, &all).await
    }

    /// The report of `request` over the helpdesks of `visible`; a helpdesk named but
    /// not among them is "not found", as one that does not exist.
    async fn report_among(
        &self,
        request: &ReportRequest,
        visible: &[HelpdeskId],
    ) -> Result<Vec<WeekReport>, DeskError> {
        let now = postdesk_store::now();
        let period = ReportPeriod::from_dates(&request.since, request.until.as_deref(), now)
            .map_err(DeskError::Invalid)?;
        let seen = self.helpdesks().iter().filter(|h| visible.contains(&h.id));
        let helpdesks: Vec<HelpdeskId> = match request
            .helpdesk
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(name) => {
                let found = seen
                    .filter(|h| h.config.settings.name.eq_ignore_ascii_case(name))
                    .map(|h| h.id)
                    .collect::<Vec<_>>();
                if found.is_empty() {
                    return Err(DeskError::NotFound(format!(
                        "no helpdesk named `{}`",
                        name.chars().take(64).collect::<String>()
                    )));
                }
                found
            }
            None => seen.map(|h| h.id).collect(),
        };
        let query = ReportQuery {
            helpdesks,
            period,
            now,
        };
        Ok(self.store().weekly_report(self.helpdesks(), &query).await?)
    }
}

impl Desk<'_> {
    /// The report of `request` over the helpdesks the agent sees.
    pub async fn report(&self, request: &ReportRequest) -> Result<Vec<WeekReport>, DeskError> {
        self.app
            .report_among(request, &self.agent().helpdesks)
            .await
    }
}

/// Median / p90 of some durations as people read them: `2 h / 5 h` (whole units,
/// rounded down); `-` without any. The page's table and `report --format table`.
pub fn durations_label(d: &Durations) -> String {
    match (d.median, d.p90) {
        (Some(median), Some(p90)) => format!("{} / {}", span_label(median), span_label(p90)),
        _ => "-".into(),
    }
}

/// The CSV's header row.
pub const CSV_COLUMNS: [&str; 18] = [
    "helpdesk",
    "week",
    "week_start",
    "time_zone",
    "created",
    "closed",
    "first_responses",
    "first_response_median_seconds",
    "first_response_p90_seconds",
    "resolved",
    "resolution_median_seconds",
    "resolution_p90_seconds",
    "first_response_met",
    "first_response_missed",
    "next_response_met",
    "next_response_missed",
    "resolution_met",
    "resolution_missed",
];

/// One row of the CSV per helpdesk and week, [`CSV_COLUMNS`] first; CRLF line ends
/// (RFC 4180). An empty duration cell: no such duration that week.
pub fn to_csv(report: &[WeekReport]) -> String {
    let mut out = String::new();
    push_row(&mut out, CSV_COLUMNS.iter().map(|c| c.to_string()));
    let seconds = |v: Option<i64>| v.map(|s| s.to_string()).unwrap_or_default();
    for row in report {
        let mut cells = vec![
            row.helpdesk.clone(),
            row.week.to_string(),
            row.week.monday_text(),
            row.time_zone.clone(),
            row.created.to_string(),
            row.closed.to_string(),
            row.first_response.count.to_string(),
            seconds(row.first_response.median),
            seconds(row.first_response.p90),
            row.resolution.count.to_string(),
            seconds(row.resolution.median),
            seconds(row.resolution.p90),
        ];
        for target in [
            Target::FirstResponse,
            Target::NextResponse,
            Target::Resolution,
        ] {
            let tally = row.tally(target);
            cells.push(tally.met.to_string());
            cells.push(tally.missed.to_string());
        }
        push_row(&mut out, cells.into_iter());
    }
    out
}

fn push_row(out: &mut String, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells.map(|c| csv_cell(&c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// One cell: neutralised when a spreadsheet would read it as a formula, quoted when
/// it holds a comma, a quote or a line break.
pub fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_separators_quoted() {
        assert_eq!(csv_cell("Support"), "Support");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("12"), "12");
    }
}
