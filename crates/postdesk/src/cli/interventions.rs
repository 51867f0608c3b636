//! `postdesk interventions add|list|set` (issue 18): work linked to a ticket, its text
//! prefilled from the helpdesk's `intervention_text`.

use std::path::Path;

use clap::Subcommand;
use postdesk_app::interventions::Planned;
use postdesk_core::id::{InterventionId, TicketNumber};
use postdesk_core::intervention::InterventionStatus;
use postdesk_core::time::{format_time, parse_time};
use postdesk_store::interventions::{InterventionChange, InterventionFilter, InterventionRow};

use super::tickets::terminal_safe;

#[derive(Subcommand)]
pub enum InterventionsCommand {
    /// Plan an intervention on ticket NUMBER (text from the template unless --text).
    Add {
        number: TicketNumber,
        #[arg(long)]
        helpdesk: Option<String>,
        /// The agent who does it.
        #[arg(long)]
        assignee: Option<String>,
        /// Planned start, `YYYY-MM-DD HH:MM` (UTC).
        #[arg(long)]
        start: Option<String>,
        /// Planned end, `YYYY-MM-DD HH:MM` (UTC).
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        text: Option<String>,
        /// The agent recorded as planning it (default: the helpdesk's default agent).
        #[arg(long = "as", value_name = "AGENT")]
        agent: Option<String>,
    },
    /// Interventions by planned start.
    List {
        #[arg(long)]
        assignee: Option<String>,
        /// planned, in-progress, done or cancelled.
        #[arg(long)]
        status: Option<InterventionStatus>,
    },
    /// Change an intervention; the last open one done may close its ticket.
    Set {
        id: InterventionId,
        #[arg(long)]
        status: Option<InterventionStatus>,
        /// Minutes spent.
        #[arg(long)]
        minutes: Option<i64>,
        #[arg(long)]
        report: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long = "as", value_name = "AGENT")]
        agent: Option<String>,
    },
}

fn time_arg(name: &str, value: Option<String>) -> anyhow::Result<Option<i64>> {
    value
        .map(|v| {
            parse_time(&v).ok_or_else(|| {
                anyhow::anyhow!("--{name} `{v}` is not a time; write YYYY-MM-DD HH:MM (UTC)")
            })
        })
        .transpose()
}

/// The agent named with `--as`, or the helpdesk's default agent.
async fn author(
    app: &postdesk_app::App,
    agent: Option<String>,
    helpdesk: postdesk_core::id::HelpdeskId,
) -> anyhow::Result<postdesk_core::id::AgentId> {
    Ok(match agent {
        Some(name) => app.store().agent_id(&name).await?,
        None => app
            .helpdesk(helpdesk)
            .map(|hd| hd.default_agent_id)
            .ok_or_else(|| {
                anyhow::anyhow!("the ticket's helpdesk is not configured; name the agent with --as")
            })?,
    })
}

pub async fn run(config_path: &Path, command: InterventionsCommand) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    match command {
        InterventionsCommand::Add {
            number,
            helpdesk,
            assignee,
            start,
            end,
            text,
            agent,
        } => {
            let view = store.ticket(helpdesk.as_deref(), number).await?;
            let author = author(&app, agent, view.summary.helpdesk_id).await?;
            let planned = Planned {
                assignee,
                planned_start: time_arg("start", start)?,
                planned_end: time_arg("end", end)?,
                text,
            };
            let row = app
                .interventions()
                .add(view.summary.id, author, planned)
                .await?;
            println!("Intervention {} on #{number}:", row.id);
            println!("{}", terminal_safe(&row.text));
        }
        InterventionsCommand::List { assignee, status } => {
            let rows = app
                .interventions()
                .list(&InterventionFilter {
                    assignee,
                    status,
                    ..Default::default()
                })
                .await?;
            print!("{}", render(&rows));
        }
        InterventionsCommand::Set {
            id,
            status,
            minutes,
            report,
            assignee,
            agent,
        } => {
            let row = store.intervention(id).await?;
            let author = author(&app, agent, row.helpdesk_id).await?;
            let change = InterventionChange {
                status,
                minutes_spent: minutes,
                report,
                assignee: assignee.map(|a| Some(a).filter(|a| !a.trim().is_empty())),
                ..Default::default()
            };
            let changed = app.interventions().change(id, author, change).await?;
            let i = &changed.intervention;
            println!(
                "Intervention {}: {} · {} min",
                i.id, i.status, i.minutes_spent
            );
            if let Some(event) = &changed.ticket {
                println!("#{}: {event}", i.ticket_number);
            }
        }
    }
    Ok(())
}

pub fn render(rows: &[InterventionRow]) -> String {
    if rows.is_empty() {
        return "No interventions.\n".into();
    }
    let mut out = format!(
        "{:>5}  {:<12}  {:>7}  {:<16}  {:<22}  {}\n",
        "id", "status", "ticket", "assignee", "planned", "text"
    );
    for r in rows {
        let planned = r
            .planned_start
            .map(format_time)
            .unwrap_or_else(|| "-".into());
        let first_line: String = r
            .text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        out.push_str(&format!(
            "{:>5}  {:<12}  {:>7}  {:<16}  {:<22}  {}\n",
            r.id,
            r.status.as_str(),
            format!("#{}", r.ticket_number),
            terminal_safe(r.assignee.as_deref().unwrap_or("-")),
            planned,
            terminal_safe(&first_line)
        ));
    }
    out
}
