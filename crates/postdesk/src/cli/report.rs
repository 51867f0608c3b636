//! `postdesk report` (issue 18): the weekly reports of every helpdesk (or one), as CSV
//! (the web's download, byte for byte) or as a table for the terminal.

use std::path::Path;

use clap::{Args, ValueEnum};
use postdesk_app::reports::{ReportRequest, durations_label, to_csv};
use postdesk_core::sla::Target;
use postdesk_store::reports::WeekReport;

use super::tickets::clip;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Table,
}

#[derive(Args)]
pub struct ReportArgs {
    /// First day, `YYYY-MM-DD`: the report starts with the ISO week holding it.
    #[arg(long)]
    since: String,
    /// Last day, `YYYY-MM-DD` [default: today]: the report ends with its week.
    #[arg(long)]
    until: Option<String>,
    /// Only this helpdesk [default: every helpdesk].
    #[arg(long)]
    helpdesk: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

pub async fn run(config_path: &Path, args: ReportArgs) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let request = ReportRequest {
        since: args.since,
        until: args.until,
        helpdesk: args.helpdesk,
    };
    let report = app.report(&request).await?;
    match args.format {
        ReportFormat::Csv => print!("{}", to_csv(&report)),
        ReportFormat::Table => print!("{}", render_table(&report)),
    }
    Ok(())
}

/// One line per helpdesk and week; deadlines as met/missed per target.
pub fn render_table(report: &[WeekReport]) -> String {
    if report.is_empty() {
        return "No helpdesks to report on.\n".into();
    }
    let line = |cells: [&str; 8]| {
        format!(
            "{:<16}  {:<8}  {:>7}  {:>6}  {:<21}  {:<20}  {:<14}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        )
    };
    let mut out = line([
        "helpdesk",
        "week",
        "created",
        "closed",
        "first resp. (med/p90)",
        "resolution (med/p90)",
        "1st met/missed",
        "next, resolution met/missed",
    ]);
    for row in report {
        let tally = |t: Target| {
            let t = row.tally(t);
            format!("{}/{}", t.met, t.missed)
        };
        out.push_str(&line([
            &clip(&row.helpdesk, 16),
            &row.week.to_string(),
            &row.created.to_string(),
            &row.closed.to_string(),
            &durations_label(&row.first_response),
            &durations_label(&row.resolution),
            &tally(Target::FirstResponse),
            &format!(
                "{}, {}",
                tally(Target::NextResponse),
                tally(Target::Resolution)
            ),
        ]));
    }
    let zones: Vec<String> = {
        let mut z: Vec<String> = report
            .iter()
            .map(|r| format!("{} in {}", clip(&r.helpdesk, 40), r.time_zone))
            .collect();
        z.dedup();
        z
    };
    out.push_str(&format!(
        "Weeks run Monday to Sunday: {}. Times are wall-clock, from the ticket's creation.\n",
        zones.join(", ")
    ));
    out
}
