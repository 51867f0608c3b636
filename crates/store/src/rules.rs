//! What the mail rules set on a ticket: fields, agents, tags, and a note saying so.

use crate::engine::{Db, params};
use postdesk_core::id::TicketId;
use postdesk_core::rules::RuleDecision;

use crate::access::ensure_agent;
use crate::entries::insert_event;
use crate::incoming::IncomingMail;
use crate::{RegisteredHelpdesk, Result, now, tickets};

/// Applies the rules' `set` fields to `ticket_id` (created or followed up) and
/// records, as internal events, a hand-over from another helpdesk and what was set.
pub(crate) fn apply_to_ticket(
    conn: &Db,
    hd: &RegisteredHelpdesk,
    ticket_id: TicketId,
    mail: &IncomingMail,
    decision: &RuleDecision,
) -> Result<()> {
    if let Some(from) = &mail.route.routed_from {
        let names: Vec<String> = decision.applied.iter().map(|n| format!("{n:?}")).collect();
        let rules = if names.len() == 1 { "rule" } else { "rules" };
        let note = format!(
            "Handed over from helpdesk {from} by mail {rules} {}.",
            names.join(", ")
        );
        insert_event(conn, ticket_id, Some(hd.default_agent_id), &note, now())?;
    }
    let fields = &decision.fields;
    if !fields.changes_ticket() {
        return Ok(());
    }
    // Agents named by a rule are created on first use, as the configured defaults are.
    let assignee_id = match &fields.assignee {
        Some(agent) => Some(ensure_agent(conn, agent)?),
        None => None,
    };
    let manager_id = match &fields.manager {
        Some(agent) => Some(ensure_agent(conn, agent)?),
        None => None,
    };
    conn.prepare_cached(
        "UPDATE tickets SET status = COALESCE(?1, status), priority = COALESCE(?2, priority),
             ticket_type = COALESCE(?3, ticket_type), category = COALESCE(?4, category),
             subcategory = COALESCE(?5, subcategory), environment = COALESCE(?6, environment),
             assignee_id = COALESCE(?7, assignee_id), manager_id = COALESCE(?8, manager_id)
         WHERE id = ?9",
    )?
    .execute(params![
        fields.status,
        fields.priority,
        fields.ticket_type,
        fields.category,
        fields.subcategory,
        fields.environment,
        assignee_id,
        manager_id,
        ticket_id,
    ])?;
    tickets::add_tags(conn, ticket_id, &fields.tags)?;
    if let Some(note) = decision.note() {
        insert_event(conn, ticket_id, Some(hd.default_agent_id), &note, now())?;
    }
    Ok(())
}
