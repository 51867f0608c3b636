//! The notify stage: acknowledgements, agent notifications and failure alerts,
//! written to the transactional outbox in the same commit as the ticket change
//! that causes them (`on_ingested`); agents' replies (`reply`); and the sender
//! that delivers the outbox over SMTP (`send`).

// Sending through Graph or Gmail (issue 20).
pub mod api_send;
pub mod compose;
// Issue 17: the customer portal's sign-in mail, and agents' notifications in the app.
pub mod in_app;
pub mod portal;
pub mod reply;
pub mod send;

use postdesk_core::id::{EntryId, IntakeId, OutboxId, TicketId};
use std::collections::BTreeMap;

use postdesk_core::outgoing::{Event, Target};
use postdesk_core::time::format_time;
use postdesk_mail::Classification;
use postdesk_store::outbox::{self, NewOutgoing};
use postdesk_store::tickets::{self, TicketInfo};
use postdesk_store::{IncomingMail, IngestReport, Outcome, RegisteredHelpdesk, Tx, access};

use compose::{Automatic, Composed, Draft};

pub use reply::{ReplyError, ReplyQueued, reply};

/// Texts longer than this are cut in notifications (the ticket has the whole text).
const DESCRIPTION_CHARS: usize = 8000;

/// Called by the pipeline for every applied mail, inside the mail's group transaction.
/// Queues nothing for a helpdesk without `[helpdesk.smtp]` (or `[helpdesk.send]`).
/// The agents' notifications inside the app come for the whole batch, from
/// [`in_app::on_batch`].
pub fn on_ingested(
    tx: Tx<'_>,
    helpdesk: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), postdesk_store::StoreError> {
    if !helpdesk.config.outgoing.sends_mail() {
        return Ok(());
    }
    let result = match report.outcome {
        Outcome::Created if mail.classification == Classification::Normal => {
            created(tx, helpdesk, mail, report)
        }
        Outcome::Appended if mail.classification == Classification::Normal => {
            followed_up(tx, helpdesk, mail, report)
        }
        Outcome::Failed => failed(tx, helpdesk, mail, report),
        _ => Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(NotifyError::Database(e)) => Err(e),
        // A mail we cannot write (a template that fails on this ticket's values, an
        // address lettre refuses) must not cost the customer's mail its ticket.
        Err(e) => {
            tracing::warn!(location = %mail.location, error = %e, "no outgoing mail for this mail");
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Database(#[from] postdesk_store::StoreError),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
}

/// Every template variable, empty unless set.
pub(crate) struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    pub fn new() -> Self {
        Self(
            postdesk_core::outgoing::VARIABLES
                .iter()
                .map(|v| (*v, String::new()))
                .collect(),
        )
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.insert(name, value.into());
        self
    }

    pub fn ticket(&mut self, hd: &RegisteredHelpdesk, t: &TicketInfo) -> &mut Self {
        let o = &hd.config.outgoing;
        let agent = t
            .assignee
            .as_ref()
            .or(t.manager.as_ref())
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        self.set("number", t.number.to_string())
            .set("reference", hd.config.reference.render(t.number))
            .set("title", t.title.clone())
            .set("helpdesk", hd.config.settings.name.clone())
            .set("status", t.status.clone())
            .set("requester_name", t.requester_name.clone())
            .set("created", format_time(t.created_at))
            .set("link", o.link(t.number).unwrap_or_default())
            .set("agent", agent)
            // Issue 17: where the customer reads the ticket in the portal.
            .set("portal_link", portal_link(hd).unwrap_or_default())
            .set(
                "ticket_portal_link",
                portal_link(hd)
                    .map(|p| format!("{p}/tickets/{}", t.id))
                    .unwrap_or_default(),
            )
    }

    pub fn value(&self) -> minijinja::Value {
        minijinja::Value::from(
            self.0
                .iter()
                .map(|(k, v)| (*k, minijinja::Value::from(v.clone())))
                .collect::<BTreeMap<_, _>>(),
        )
    }
}

/// The helpdesk's portal (`portal_url`), when it has one switched on.
pub fn portal_link(hd: &RegisteredHelpdesk) -> Option<String> {
    hd.config.portal_link()
}

fn cut(text: &str) -> String {
    let mut s: String = text.chars().take(DESCRIPTION_CHARS).collect();
    if s.len() < text.len() {
        s.push_str("\n[…]");
    }
    s
}

/// Sender address and name of a helpdesk's mail (also the deadlines' escalations').
pub fn sender(hd: &RegisteredHelpdesk) -> Option<(String, String)> {
    let outgoing = &hd.config.outgoing;
    if !outgoing.sends_mail() {
        return None;
    }
    let (from, name) = outgoing.configured_from();
    let from = from
        .map(str::to_string)
        .or_else(|| hd.config.settings.addresses.first().cloned())?;
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| hd.config.settings.name.clone());
    Some((from, name))
}

/// One mail to render, compose and queue.
pub(crate) struct Outgoing<'a> {
    pub event: Event,
    pub vars: &'a Vars,
    /// (name, address).
    pub to: Vec<(Option<String>, String)>,
    pub cc: Vec<(Option<String>, String)>,
    /// In-Reply-To and References.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The rows the mail is about.
    pub ticket_id: Option<TicketId>,
    pub intake_id: Option<IntakeId>,
    pub entry_id: Option<EntryId>,
    /// A file attached as it is: (name, bytes).
    pub attach_mail: Option<(String, Vec<u8>)>,
    /// Fixed by the caller (a reply's entry already carries it), else made here.
    pub message_id: Option<String>,
}

impl<'a> Outgoing<'a> {
    /// A mail of `event` to `to` about the rows given, with nothing else set.
    pub fn new(event: Event, vars: &'a Vars, to: Vec<(Option<String>, String)>) -> Self {
        Self {
            event,
            vars,
            to,
            cc: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
            ticket_id: None,
            intake_id: None,
            entry_id: None,
            attach_mail: None,
            message_id: None,
        }
    }
}

/// Renders, composes and queues one mail: its outbox id and Message-ID, or `None`
/// for a helpdesk that sends no mail.
pub(crate) fn queue(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: Outgoing<'_>,
) -> Result<Option<(OutboxId, String)>, NotifyError> {
    let Some((from, from_name)) = sender(hd) else {
        return Ok(None);
    };
    let event = mail.event;
    let rendered = hd
        .config
        .outgoing
        .templates
        .render(event, mail.vars.value())?;
    let message_id = mail
        .message_id
        .unwrap_or_else(|| compose::new_message_id(&from));
    let draft = Draft {
        from_name: Some(from_name),
        from,
        to: mail.to,
        cc: mail.cc,
        subject: rendered.subject,
        body: rendered.body,
        message_id: message_id.clone(),
        in_reply_to: mail.in_reply_to,
        references: mail.references,
        automatic: match event {
            Event::Reply => Automatic::No,
            Event::Acknowledgement => Automatic::Replied,
            _ => Automatic::Generated,
        },
        attach_mail: mail.attach_mail,
    };
    let composed = compose::compose(&draft)?;
    let id = outbox::queue(
        tx,
        &NewOutgoing {
            ticket_id: mail.ticket_id,
            intake_id: mail.intake_id,
            entry_id: mail.entry_id,
            ..outgoing(hd, event, &message_id, &composed)
        },
    )?;
    Ok(Some((id, message_id)))
}

/// `composed` as the outbox takes it from `hd`, linked to nothing yet: kept and never
/// sent while the helpdesk's delivery is switched off.
pub fn outgoing<'a>(
    hd: &RegisteredHelpdesk,
    kind: Event,
    message_id: &'a str,
    composed: &'a Composed,
) -> NewOutgoing<'a> {
    NewOutgoing {
        helpdesk_id: hd.id,
        ticket_id: None,
        intake_id: None,
        entry_id: None,
        kind,
        message_id,
        envelope_from: &composed.envelope_from,
        recipients: &composed.recipients,
        subject: &composed.subject,
        raw: &composed.raw,
        suppressed: !hd.config.outgoing.delivery.enabled,
    }
}

fn created(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), NotifyError> {
    let Some(ticket_id) = report.ticket_id else {
        return Ok(());
    };
    let info = tickets::info(tx, ticket_id)?;
    let m = &mail.mail;
    let from = m.from.as_ref().map(|a| a.email_key()).unwrap_or_default();
    let mut vars = Vars::new();
    vars.ticket(hd, &info)
        .set("requester_email", from.clone())
        .set("description", cut(&m.text))
        .set("author", author(mail))
        .set(
            "text",
            hd.config
                .outgoing
                .notifications
                .acknowledgement_text
                .clone(),
        );
    if let Some(skip) = acknowledgement_skipped(tx, hd, mail, &from)? {
        tracing::info!(
            ticket = info.number.get(),
            reason = skip,
            "no acknowledgement"
        );
    } else {
        let name = m.from.as_ref().and_then(|a| a.name.clone());
        let mut ack = Outgoing::new(Event::Acknowledgement, &vars, vec![(name, from.clone())]);
        if let Some(id) = &m.message_id {
            ack.in_reply_to = Some(id.clone());
            ack.references = vec![id.clone()];
        }
        ack.ticket_id = Some(ticket_id);
        ack.intake_id = Some(report.intake_id);
        queue(tx, hd, ack)?;
    }
    let target = &hd.config.outgoing.notifications.new_ticket;
    let agent = info.manager.clone().or(info.assignee.clone());
    let to = recipients(tx, hd, target, agent, &from)?;
    if !to.is_empty() {
        let mut notification = Outgoing::new(Event::NewTicket, &vars, to);
        notification.ticket_id = Some(ticket_id);
        notification.intake_id = Some(report.intake_id);
        queue(tx, hd, notification)?;
    }
    Ok(())
}

fn author(mail: &IncomingMail) -> String {
    match &mail.mail.from {
        Some(a) => match &a.name {
            Some(n) if !n.trim().is_empty() => format!("{} <{}>", n.trim(), a.email),
            _ => a.email.clone(),
        },
        None => "(no sender)".into(),
    }
}

/// Why no acknowledgement goes to `from`, if it does not.
fn acknowledgement_skipped(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    from: &str,
) -> Result<Option<&'static str>, NotifyError> {
    let n = &hd.config.outgoing.notifications;
    let m = &mail.mail;
    if !n.acknowledge {
        return Ok(Some("acknowledgements are off"));
    }
    if !from.contains('@') {
        return Ok(Some("no sender address"));
    }
    if hd.config.is_own_address(from) {
        return Ok(Some("mail from our own address"));
    }
    if m.return_path.as_deref() == Some("") {
        return Ok(Some("null return path"));
    }
    if let Some(v) = m.header("Auto-Submitted")
        && !v.trim().eq_ignore_ascii_case("no")
    {
        return Ok(Some("automatic mail"));
    }
    if m.header("List-Id").is_some() || m.header("List-Unsubscribe").is_some() {
        return Ok(Some("list mail"));
    }
    if let Some(p) = m.header("Precedence")
        && ["bulk", "junk", "list", "auto_reply"].contains(&p.trim().to_ascii_lowercase().as_str())
    {
        return Ok(Some("bulk mail"));
    }
    let local = from.split('@').next().unwrap_or_default();
    if [
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
    ]
    .contains(&local)
    {
        return Ok(Some("no-reply address"));
    }
    let since = postdesk_store::now() - 3600;
    let sent = outbox::acknowledgements_since(tx, from, since)?;
    if sent >= i64::from(n.max_acknowledgements_per_hour) {
        return Ok(Some("rate limit of acknowledgements per hour reached"));
    }
    Ok(None)
}

/// The addresses of `target`, except `exclude` (the mail's sender) and our own.
fn recipients(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    target: &Target,
    ticket_agent: Option<(String, Option<String>)>,
    exclude: &str,
) -> Result<Vec<(Option<String>, String)>, NotifyError> {
    let list: Vec<(Option<String>, String)> = match target {
        Target::None => Vec::new(),
        Target::Address(a) => vec![(None, a.clone())],
        Target::Team(team) => hd
            .config
            .outgoing
            .notifications
            .teams
            .get(team)
            .map(|m| m.iter().map(|a| (None, a.clone())).collect())
            .unwrap_or_default(),
        Target::TicketAgent => ticket_agent
            .and_then(|(name, email)| email.map(|e| (Some(name), e)))
            .into_iter()
            .collect(),
        Target::AllAgents => access::agents_with_email(tx)?
            .into_iter()
            .map(|(name, email)| (Some(name), email))
            .collect(),
    };
    let mut seen = Vec::new();
    Ok(list
        .into_iter()
        .filter(|(_, a)| {
            let key = a.trim().to_ascii_lowercase();
            let keep = key != exclude && !hd.config.is_own_address(&key) && !seen.contains(&key);
            seen.push(key);
            keep
        })
        .collect())
}

fn followed_up(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), NotifyError> {
    let Some(ticket_id) = report.ticket_id else {
        return Ok(());
    };
    let target = &hd.config.outgoing.notifications.follow_up;
    if *target == Target::None {
        return Ok(());
    }
    let info = tickets::info(tx, ticket_id)?;
    let from = mail
        .mail
        .from
        .as_ref()
        .map(|a| a.email_key())
        .unwrap_or_default();
    let agent = info.assignee.clone().or(info.manager.clone());
    let to = recipients(tx, hd, target, agent, &from)?;
    if to.is_empty() {
        return Ok(());
    }
    let mut vars = Vars::new();
    vars.ticket(hd, &info)
        .set("requester_email", from.clone())
        .set(
            "description",
            cut(&mail.reply(hd.config.settings.reply_marker.as_deref()).reply),
        )
        .set("author", author(mail));
    let mut notification = Outgoing::new(Event::FollowUp, &vars, to);
    notification.ticket_id = Some(ticket_id);
    notification.intake_id = Some(report.intake_id);
    queue(tx, hd, notification)?;
    Ok(())
}

fn failed(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), NotifyError> {
    let contacts = &hd.config.outgoing.notifications.alert_contacts;
    if contacts.is_empty() {
        return Ok(());
    }
    let m = &mail.mail;
    let mut vars = Vars::new();
    vars.set("helpdesk", hd.config.settings.name.clone())
        .set("reason", report.reason.clone().unwrap_or_default())
        .set("sender", author(mail))
        .set("subject", m.subject.clone())
        .set("intake_id", report.intake_id.to_string());
    let original = zstd::decode_all(mail.raw_compressed.as_slice()).unwrap_or_default();
    let to = contacts.iter().map(|a| (None, a.clone())).collect();
    let mut alert = Outgoing::new(Event::Alert, &vars, to);
    alert.intake_id = Some(report.intake_id);
    alert.attach_mail = Some((format!("failed-{}.eml", report.intake_id), original));
    queue(tx, hd, alert)?;
    Ok(())
}

// ---- Mailbox alerts (issue 20) ----

/// Tells the alert contacts of `hd` that mailbox `mailbox` stopped working for a reason
/// someone has to act on (a revoked sign-in). An outbox row of kind `alert`; its text
/// is fixed (the `alert` template speaks of one failed mail). `None` when the helpdesk
/// has no alert contacts or sends no mail.
pub async fn mailbox_alert(
    store: &postdesk_store::Store,
    hd: &RegisteredHelpdesk,
    mailbox: &str,
    problem: &str,
) -> Result<Option<OutboxId>, NotifyError> {
    let contacts = hd.config.outgoing.notifications.alert_contacts.clone();
    if contacts.is_empty() || !hd.config.outgoing.sends_mail() {
        return Ok(None);
    }
    let Some((from, from_name)) = sender(hd) else {
        return Ok(None);
    };
    let name = &hd.config.settings.name;
    let (subject, body) = match hd.config.outgoing.notifications.language.as_str() {
        "de" => (
            format!("[postdesk] {name}: Postfach {mailbox} liest keine Mail mehr"),
            format!(
                "Das Postfach {mailbox} von {name} kann nicht mehr gelesen werden.\n\nGrund: {problem}\n\n`postdesk check` zeigt Schritt für Schritt, was fehlt; ein Postfach mit delegierter Anmeldung wird mit `postdesk mailboxes authorize {mailbox}` neu angemeldet.\n"
            ),
        ),
        _ => (
            format!("[postdesk] {name}: mailbox {mailbox} stopped reading mail"),
            format!(
                "The mailbox {mailbox} of {name} cannot be read any more.\n\nReason: {problem}\n\n`postdesk check` shows step by step what is missing; a mailbox with delegated sign-in signs in again with `postdesk mailboxes authorize {mailbox}`.\n"
            ),
        ),
    };
    let message_id = compose::new_message_id(&from);
    let draft = Draft {
        from_name: Some(from_name),
        from,
        to: contacts.into_iter().map(|a| (None, a)).collect(),
        cc: Vec::new(),
        subject: postdesk_core::outgoing::one_line(&subject),
        body,
        message_id: message_id.clone(),
        in_reply_to: None,
        references: Vec::new(),
        automatic: Automatic::Generated,
        attach_mail: None,
    };
    let composed = compose::compose(&draft)?;
    let hd = hd.clone();
    let id = store
        .transaction(move |tx| {
            outbox::queue(tx, &outgoing(&hd, Event::Alert, &message_id, &composed))
                .map_err(NotifyError::from)
        })
        .await?;
    Ok(Some(id))
}
