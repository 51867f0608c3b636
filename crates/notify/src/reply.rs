//! An agent's reply to a ticket: a customer-visible `outgoing` entry and the mail to
//! the requester and the other participants, in one transaction. The web UI and the
//! API call the same function as `postdesk reply`.

use postdesk_core::id::{EntryId, OutboxId, TicketNumber};
use postdesk_core::outgoing::Event;
use postdesk_store::outbox::{self, OutgoingEntry};
use postdesk_store::{RegisteredHelpdesk, Store, StoreError, Tx, access, tickets};

use crate::{NotifyError, Outgoing, Vars, compose, sender};

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error(
        "helpdesk `{0}` has no [helpdesk.smtp] table, so it cannot send mail; add one (see `postdesk init`)"
    )]
    NoSmtp(String),
    #[error("ticket {0} has no requester address to reply to")]
    NoRecipient(TicketNumber),
    #[error("the reply is empty; give the text with --message or on standard input")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Notify(#[from] NotifyError),
}

/// What was queued.
#[derive(Debug, Clone)]
pub struct ReplyQueued {
    pub outbox_id: OutboxId,
    pub entry_id: EntryId,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub suppressed: bool,
}

/// Records `text` from `agent` (name or email; created when missing) on ticket `number`
/// and queues the mail, both in one transaction.
pub async fn reply(
    store: &Store,
    hd: &RegisteredHelpdesk,
    number: TicketNumber,
    agent: Option<&str>,
    text: &str,
) -> Result<ReplyQueued, ReplyError> {
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Err(ReplyError::Empty);
    }
    let Some((from, _)) = sender(hd) else {
        return Err(ReplyError::NoSmtp(hd.config.settings.name.clone()));
    };
    let (hd, agent, text) = (hd.clone(), agent.map(str::to_string), text.to_string());
    store
        .transaction(move |tx| reply_in(tx, &hd, number, agent.as_deref(), &text, from))
        .await
}

/// `reply` inside its transaction.
fn reply_in(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    number: TicketNumber,
    agent: Option<&str>,
    text: &str,
    from: String,
) -> Result<ReplyQueued, ReplyError> {
    let ctx = outbox::reply_context(tx, hd.id, number)?;
    let Some(requester) = ctx.requester_email.clone() else {
        return Err(ReplyError::NoRecipient(number));
    };
    let agent_id = match agent {
        Some(a) => outbox::agent(tx, a)?,
        None => hd.default_agent_id,
    };
    let agent_name = access::agent_name(tx, agent_id)?;
    let info = tickets::info(tx, ctx.ticket_id)?;
    let mut vars = Vars::new();
    vars.ticket(hd, &info)
        .set("requester_email", requester.clone())
        .set("agent", agent_name)
        .set("message", text.to_string());
    let cc: Vec<String> = ctx
        .participants
        .iter()
        .filter(|p| !hd.config.is_own_address(p))
        .cloned()
        .collect();
    let mut references = ctx.last_references.clone();
    if let Some(id) = &ctx.last_message_id {
        references.push(id.clone());
    }
    // A long thread keeps its first and its latest ids (RFC 5322 allows trimming).
    if references.len() > 20 {
        let first = references[0].clone();
        references.drain(..references.len() - 19);
        references.insert(0, first);
    }
    let message_id = compose::new_message_id(&from);
    let rendered = hd
        .config
        .outgoing
        .templates
        .render(Event::Reply, vars.value())
        .map_err(NotifyError::from)?;
    let entry_id = outbox::add_outgoing_entry(
        tx,
        &OutgoingEntry {
            ticket_id: ctx.ticket_id,
            agent_id,
            from: &from,
            to: std::slice::from_ref(&requester),
            cc: &cc,
            subject: &rendered.subject,
            body: text,
            message_id: &message_id,
            in_reply_to: ctx.last_message_id.as_deref(),
            references: &references,
        },
    )?;
    let mut mail = Outgoing::new(
        Event::Reply,
        &vars,
        vec![(ctx.requester_name.clone(), requester.clone())],
    );
    mail.cc = cc.iter().map(|a| (None, a.clone())).collect();
    mail.in_reply_to = ctx.last_message_id.clone();
    mail.references = references;
    mail.ticket_id = Some(ctx.ticket_id);
    mail.entry_id = Some(entry_id);
    mail.message_id = Some(message_id.clone());
    let queued = crate::queue(tx, hd, mail)?;
    let Some((outbox_id, _)) = queued else {
        return Err(ReplyError::NoSmtp(hd.config.settings.name.clone()));
    };
    let mut recipients = vec![requester];
    recipients.extend(cc);
    Ok(ReplyQueued {
        outbox_id,
        entry_id,
        message_id,
        recipients,
        subject: rendered.subject,
        suppressed: !hd.config.outgoing.delivery.enabled,
    })
}
