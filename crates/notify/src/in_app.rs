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

/// One mail intake applied, for [`on_batch`].
pub struct Ingested<'a> {
    pub helpdesk: &'a RegisteredHelpdesk,
    pub mail: &'a IncomingMail,
    pub report: &'a IngestReport,
}

/// The notifications of a batch's mails, written in its transaction once all of them
/// are applied: the tickets' titles in one query and the notifications together
/// (`notifications::notify_all`), where one mail at a time cost each mail two reads on
/// PostgreSQL, and sent the rows intake writes behind after every mail (issue 15).
/// Their text names only the ticket's number and title, which later mails of the
/// batch do not change.
pub fn on_batch(tx: Tx<'_>, mails: &[Ingested<'_>]) -> Result<(), StoreError> {
    let wanted: Vec<(&Ingested<'_>, TicketId, &'static str, &InAppTarget)> = mails
        .iter()
        .filter_map(|m| {
            if m.mail.classification != Classification::Normal {
                return None;
            }
            let ticket_id = m.report.ticket_id?;
            let settings = &m.helpdesk.config.settings.in_app;
            let (event, target) = match m.report.outcome {
                Outcome::Created => ("created", &settings.created),
                Outcome::Appended => ("modified", &settings.modified),
                _ => return None,
            };
            (*target != InAppTarget::None).then_some((m, ticket_id, event, target))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<TicketId> = wanted.iter().map(|w| w.1).collect();
    ids.sort();
    ids.dedup();
    let infos = tickets::infos(tx, &ids)?;
    let mut texts = Vec::with_capacity(wanted.len());
    let mut audiences = Vec::with_capacity(wanted.len());
    for (m, ticket_id, _, target) in &wanted {
        let info = infos
            .get(ticket_id)
            .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
        let reference = m.helpdesk.config.reference.render(info.number);
        let from = m
            .mail
            .mail
            .from
            .as_ref()
            .map(|a| a.email_key())
            .unwrap_or_else(|| "an unknown sender".into());
        texts.push(match m.report.outcome {
            Outcome::Created => format!("New ticket {reference} {} from {from}", info.title),
            _ => format!("{from} wrote on {reference} {}", info.title),
        });
        audiences.push(audience(&m.helpdesk.config, target));
    }
    let list: Vec<NewNotification<'_>> = wanted
        .iter()
        .zip(&texts)
        .zip(&audiences)
        .map(
            |(((m, ticket_id, event, _), text), audience)| NewNotification {
                ticket_id: *ticket_id,
                event,
                text,
                actor: None,
                audience,
                keep_days: m.helpdesk.config.settings.in_app.keep_days,
            },
        )
        .collect();
    notifications::notify_all(tx, &list)?;
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
