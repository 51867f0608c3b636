//! Deadlines on the command line (issue 18): the lines `tickets show` adds, and
//! `tickets set-deadline`.

use postdesk_core::id::{AgentId, TicketId};
use postdesk_core::sla::{Deadline, Standing, Target, due_label};
use postdesk_core::time::{format_time, parse_time};

/// `Deadlines:` and one line per target, or nothing for a ticket without any.
pub fn render(deadlines: &[Deadline], now: i64) -> String {
    if deadlines.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deadlines:\n");
    for d in deadlines {
        let standing = match d.standing(now) {
            Standing::Running | Standing::Overdue => due_label(d.due_at, now),
            Standing::Met => format!("met {}", d.met_at.map(format_time).unwrap_or_default()),
            Standing::Missed => "missed".into(),
            Standing::Paused => "paused".into(),
            Standing::Stopped => "not needed (closed)".into(),
        };
        out.push_str(&format!(
            "  {:<15} due {}  {standing}{}\n",
            d.target.label(),
            format_time(d.due_at),
            if d.by_hand { "  (set by hand)" } else { "" }
        ));
    }
    out
}

/// Sets `target` of the ticket due at `due` (`YYYY-MM-DD HH:MM` UTC, or Unix seconds).
pub async fn set(
    app: &postdesk_app::App,
    ticket_id: TicketId,
    agent_id: AgentId,
    target: Target,
    due: &str,
) -> anyhow::Result<String> {
    let due_at = parse_time(due).ok_or_else(|| {
        anyhow::anyhow!("`{due}` is not a time; write YYYY-MM-DD HH:MM (UTC) or Unix seconds")
    })?;
    let helpdesk = app.store().ticket_helpdesk(ticket_id).await?;
    if app
        .helpdesk(helpdesk)
        .is_none_or(|hd| hd.config.sla.is_none())
    {
        anyhow::bail!(
            "the ticket's helpdesk has no deadlines; add a [helpdesk.sla] table to its configuration"
        );
    }
    Ok(app
        .deadlines()
        .set_by_hand(ticket_id, agent_id, target, due_at)
        .await?)
}
