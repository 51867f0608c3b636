//! `postdesk tickets list|show`

use postdesk_core::id::TicketNumber;
use std::path::Path;

use clap::Subcommand;
use postdesk_core::ticket::FieldChanges;
use postdesk_core::time::format_time;
use postdesk_store::read::{TicketFilter, TicketView};

#[derive(Subcommand)]
pub enum TicketsCommand {
    /// Tickets, newest first.
    List {
        #[arg(long)]
        helpdesk: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Part of the requester's address.
        #[arg(long)]
        requester: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One ticket and its thread.
    Show {
        number: TicketNumber,
        #[arg(long)]
        helpdesk: Option<String>,
        /// Show the whole text of each mail, quoted history included.
        #[arg(long)]
        full: bool,
    },
    /// Set a deadline by hand (`first_response`, `next_response`, `resolution`), due at
    /// `YYYY-MM-DD HH:MM` (UTC) or Unix seconds; recorded as an event by the agent.
    SetDeadline {
        number: TicketNumber,
        target: postdesk_core::sla::Target,
        due: String,
        #[arg(long)]
        helpdesk: Option<String>,
        /// The agent recorded as making the change (default: the helpdesk's default agent).
        #[arg(long = "as", value_name = "AGENT")]
        agent: Option<String>,
    },
    /// Change a ticket's status (e.g. `closed`).
    SetStatus {
        number: TicketNumber,
        status: String,
        #[arg(long)]
        helpdesk: Option<String>,
        /// The agent recorded as making the change (default: the helpdesk's default agent).
        #[arg(long = "as", value_name = "AGENT")]
        agent: Option<String>,
    },
}

pub async fn run(config_path: &Path, command: TicketsCommand) -> anyhow::Result<()> {
    let (_, pipeline) = super::open(config_path, None).await?;
    let store = pipeline.store();
    match command {
        TicketsCommand::List {
            helpdesk,
            status,
            requester,
            limit,
        } => {
            let filter = TicketFilter {
                helpdesk,
                status,
                requester,
                limit,
            };
            print!("{}", render_list(&store.list_tickets(&filter).await?));
        }
        TicketsCommand::Show {
            number,
            helpdesk,
            full,
        } => {
            let view = store.ticket(helpdesk.as_deref(), number).await?;
            print!("{}", render_ticket(&view, full));
            let deadlines = store.deadlines(view.summary.id).await?;
            print!(
                "{}",
                super::deadlines::render(&deadlines, postdesk_store::now())
            );
            let interventions = store
                .interventions(&postdesk_store::interventions::InterventionFilter {
                    ticket_id: Some(view.summary.id),
                    ..Default::default()
                })
                .await?;
            if !interventions.is_empty() {
                print!(
                    "Interventions:\n{}",
                    super::interventions::render(&interventions)
                );
            }
        }
        TicketsCommand::SetDeadline {
            number,
            target,
            due,
            helpdesk,
            agent,
        } => {
            let view = store.ticket(helpdesk.as_deref(), number).await?;
            let author = author(&pipeline, agent, &view).await?;
            let text =
                super::deadlines::set(&pipeline, view.summary.id, author, target, &due).await?;
            println!("#{number}: {text}");
        }
        TicketsCommand::SetStatus {
            number,
            status,
            helpdesk,
            agent,
        } => {
            let view = store.ticket(helpdesk.as_deref(), number).await?;
            let author = author(&pipeline, agent, &view).await?;
            let update = FieldChanges {
                status: Some(Some(status.clone())),
                ..FieldChanges::default()
            };
            store
                .update_ticket(view.summary.id, author, &update)
                .await?;
            // Deadlines (issue 18): the new status may pause, resume or stop the clock.
            pipeline.deadlines().status_changed(view.summary.id).await?;
            println!("#{number}: {} → {status}", view.summary.status);
        }
    }
    Ok(())
}

/// The agent named with `--as`, or the ticket's helpdesk's default agent.
async fn author(
    app: &postdesk_app::App,
    agent: Option<String>,
    view: &TicketView,
) -> anyhow::Result<postdesk_core::id::AgentId> {
    Ok(match agent {
        Some(name) => app.store().agent_id(&name).await?,
        None => app
            .helpdesks()
            .iter()
            .find(|hd| hd.id == view.summary.helpdesk_id)
            .map(|hd| hd.default_agent_id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "helpdesk {} is not in the configuration; name the agent with --as",
                    view.summary.helpdesk
                )
            })?,
    })
}

pub fn render_list(tickets: &[postdesk_store::read::TicketSummary]) -> String {
    if tickets.is_empty() {
        return "No tickets.\n".into();
    }
    let mut out = format!(
        "{:>6}  {:<16}  {:<28}  {:>7}  {}\n",
        "#", "status", "requester", "entries", "title"
    );
    for t in tickets {
        out.push_str(&format!(
            "{:>6}  {:<16}  {:<28}  {:>7}  {}\n",
            t.number,
            clip(&t.status, 16),
            clip(t.requester.as_deref().unwrap_or("-"), 28),
            t.entries,
            clip(&t.title, 70)
        ));
    }
    out
}

pub fn render_ticket(view: &TicketView, full: bool) -> String {
    let t = &view.summary;
    let mut out = format!("#{} {}\n", t.number, terminal_safe(&t.title));
    out.push_str(&format!(
        "helpdesk {} · status {} · priority {} · requester {} <{}>{}\n",
        t.helpdesk,
        t.status,
        t.priority.as_deref().unwrap_or("-"),
        terminal_safe(view.requester_name.as_deref().unwrap_or("-")),
        t.requester.as_deref().unwrap_or("-"),
        t.organization
            .as_deref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default()
    ));
    let d = &view.details;
    let details: Vec<String> = [
        ("type", &d.ticket_type),
        ("category", &d.category),
        ("subcategory", &d.subcategory),
        ("environment", &d.environment),
        ("assignee", &d.assignee),
        ("manager", &d.manager),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value
            .as_ref()
            .map(|v| format!("{name} {}", terminal_safe(v)))
    })
    .chain((!d.tags.is_empty()).then(|| format!("tags {}", terminal_safe(&d.tags.join(", ")))))
    .collect();
    if !details.is_empty() {
        out.push_str(&details.join(" · "));
        out.push('\n');
    }
    out.push_str(&format!("reported {}\n", format_time(t.reported_at)));
    for e in &view.entries {
        out.push_str(&format!("\n── {} · {}", e.kind, format_time(e.created_at)));
        if let Some(from) = &e.from {
            out.push_str(&format!(" · from {}", terminal_safe(from)));
        }
        if let Some(class) = e.classification.as_deref().filter(|c| *c != "normal") {
            out.push_str(&format!(" · {class}"));
        }
        if !e.visible_to_customer {
            out.push_str(" · internal");
        }
        out.push_str(" ──\n");
        let body = if full {
            e.body_full.as_deref().unwrap_or(&e.body_text)
        } else {
            &e.body_text
        };
        out.push_str(&terminal_safe(body.trim_end()));
        out.push('\n');
        for a in &e.attachments {
            let state = match &a.refused {
                Some(reason) => format!("refused: {reason}"),
                None if a.inline => "inline".into(),
                None => "kept".into(),
            };
            out.push_str(&format!(
                "  📎 {} ({}, {} bytes, {state})\n",
                terminal_safe(&a.safe_name),
                a.mime_type,
                a.size
            ));
        }
        let notes = e.reading_notes();
        if !notes.is_empty() {
            out.push_str(&format!("  ({})\n", terminal_safe(&notes.join(" · "))));
        }
        if let Some(w) = &e.warnings {
            out.push_str(&format!("  ⚠ {}\n", terminal_safe(&w.replace('\n', "; "))));
        }
    }
    out
}

/// Mail text is hostile: drop control characters (terminal escapes) except newlines and tabs.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// One line of at most `width` characters, terminal-safe.
pub fn clip(text: &str, width: usize) -> String {
    let text = terminal_safe(text).replace(['\n', '\t'], " ");
    if text.chars().count() <= width {
        return text;
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_removed() {
        assert_eq!(terminal_safe("a\x1b[31mred\x07\nb"), "a[31mred\nb");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
