//! Agents' notifications inside the app (issue 17), for what intake does: a new ticket
//! (`[helpdesk.in_app] created`) and a customer's new entry (`modified`), written in the
//! mail's own transaction. Changes agents make are told by the app's desk, which
//! also has them mailed (`mail_modified`) through the outbox.

use postdesk_core::id::{AgentId, TicketId};
use postdesk_core::outgoing::Event;
use postdesk_core::settings::{Helpdesk, InAppTarget};
use postdesk_mail::Classification;
use postdesk_store::notifications::{self, Audience, NewNotification};
use postdesk_store::{
    IncomingMail, IngestReport, Outcome, RegisteredHelpdesk, StoreError, Tx, tickets,
};

use crate::{NotifyError, Outgoing, Vars, queue};

/// The helpdesk's target as the store resolves it (a team by its addresses).
pub fn audience(hd: &Helpdesk, target: &InAppTarget) -> Audience {
    match target {
        InAppTarget::None => Audience::None,
        InAppTarget::AllAgents => Audience::AllAgents,
        InAppTarget::Concerned => Audience::Concerned,
        InAppTarget::Address(address) => Audience::Addresses(vec![address.clone()]),
        InAppTarget::Team(team) => Audience::Addresses(
            hd.outgoing
                .notifications
                .teams
                .get(team)
                .cloned()
                .unwrap_or_default(),
        ),
    }
}

pub(crate) fn on_ingested(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), StoreError> {
    if mail.classification != Classification::Normal {
        return Ok(());
    }
    let Some(ticket_id) = report.ticket_id else {
        return Ok(());
    };
    let settings = &hd.config.settings.in_app;
    let (event, target) = match report.outcome {
        Outcome::Created => ("created", &settings.created),
        Outcome::Appended => ("modified", &settings.modified),
        _ => return Ok(()),
    };
    if *target == InAppTarget::None {
        return Ok(());
    }
    let info = tickets::info(tx, ticket_id)?;
    let reference = hd.config.reference.render(info.number);
    let from = mail
        .mail
        .from
        .as_ref()
        .map(|a| a.email_key())
        .unwrap_or_else(|| "an unknown sender".into());
    let text = match report.outcome {
        Outcome::Created => format!("New ticket {reference} {} from {from}", info.title),
        _ => format!("{from} wrote on {reference} {}", info.title),
    };
    notifications::notify(
        tx,
        &NewNotification {
            ticket_id,
            event,
            text: &text,
            actor: None,
            audience: &audience(&hd.config, target),
            keep_days: settings.keep_days,
        },
    )?;
    Ok(())
}

/// Queues the mail of a change (`[helpdesk.in_app] mail_modified`) to its audience but
/// the agent who made it, in the change's transaction; nothing when the helpdesk sends
/// no mail or the setting is `none`.
pub fn mail_modified(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    ticket_id: TicketId,
    text: &str,
    actor: Option<AgentId>,
) -> Result<usize, NotifyError> {
    let target = &hd.config.settings.in_app.mail_modified;
    if *target == InAppTarget::None || hd.config.outgoing.smtp.is_none() {
        return Ok(0);
    }
    let to =
        notifications::audience_addresses(tx, ticket_id, &audience(&hd.config, target), actor)?;
    let to: Vec<_> = to
        .into_iter()
        .filter(|(_, a)| !hd.config.is_own_address(a))
        .collect();
    if to.is_empty() {
        return Ok(0);
    }
    let info = tickets::info(tx, ticket_id)?;
    let mut vars = Vars::new();
    vars.ticket(hd, &info).set("description", text.to_string());
    let count = to.len();
    let mut mail = Outgoing::new(Event::TicketModified, &vars, to);
    mail.ticket_id = Some(ticket_id);
    queue(tx, hd, mail)?;
    Ok(count)
}
