//! The notify stage: acknowledgements, agent notifications and failure alerts,
//! written to the transactional outbox in the same commit as the ticket change
//! that causes them (`on_ingested`); agents' replies (`reply`); and the sender
//! that delivers the outbox over SMTP (`send`).

pub mod compose;
pub mod reply;
pub mod send;

use std::collections::BTreeMap;

use postdesk_core::outgoing::{Event, Target};
use postdesk_core::time::format_time;
use postdesk_mail::Classification;
use postdesk_store::outbox::{self, NewOutgoing};
use postdesk_store::{IncomingMail, IngestReport, Outcome, RegisteredHelpdesk};
use rusqlite::Connection;

use compose::{Automatic, Draft};

pub use reply::{ReplyError, ReplyQueued, reply};

/// Texts longer than this are cut in notifications (the ticket has the whole text).
const DESCRIPTION_CHARS: usize = 8000;

/// Called by the pipeline for every applied mail, inside the mail's group transaction.
/// Queues nothing for a helpdesk without `[helpdesk.smtp]`.
pub fn on_ingested(
    conn: &Connection,
    helpdesk: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), postdesk_store::StoreError> {
    if helpdesk.config.outgoing.smtp.is_none() {
        return Ok(());
    }
    let result = match report.outcome {
        Outcome::Created if mail.classification == Classification::Normal => {
            created(conn, helpdesk, mail, report)
        }
        Outcome::Appended if mail.classification == Classification::Normal => {
            followed_up(conn, helpdesk, mail, report)
        }
        Outcome::Failed => failed(conn, helpdesk, mail, report),
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

impl From<rusqlite::Error> for NotifyError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.into())
    }
}

/// What the templates may say about a ticket.
#[derive(Debug, Clone, Default)]
pub(crate) struct TicketInfo {
    pub number: i64,
    pub title: String,
    pub status: String,
    pub created_at: i64,
    pub requester_name: String,
    pub manager: Option<(String, Option<String>)>,
    pub assignee: Option<(String, Option<String>)>,
}

pub(crate) fn ticket_info(
    conn: &Connection,
    ticket_id: i64,
) -> Result<TicketInfo, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT t.number, t.title, t.status, t.created_at, c.name, m.name, m.email, a.name, a.email
         FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id
         LEFT JOIN agents m ON m.id = t.manager_id LEFT JOIN agents a ON a.id = t.assignee_id
         WHERE t.id = ?1",
    )?
    .query_row([ticket_id], |r| {
        let agent = |name: Option<String>, email: Option<String>| name.map(|n| (n, email));
        Ok(TicketInfo {
            number: r.get(0)?,
            title: r.get(1)?,
            status: r.get(2)?,
            created_at: r.get(3)?,
            requester_name: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            manager: agent(r.get(5)?, r.get(6)?),
            assignee: agent(r.get(7)?, r.get(8)?),
        })
    })
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

fn cut(text: &str) -> String {
    let mut s: String = text.chars().take(DESCRIPTION_CHARS).collect();
    if s.len() < text.len() {
        s.push_str("\n[…]");
    }
    s
}

/// Sender address and name of a helpdesk's mail.
pub(crate) fn sender(hd: &RegisteredHelpdesk) -> Option<(String, String)> {
    let smtp = hd.config.outgoing.smtp.as_ref()?;
    let from = smtp
        .from
        .clone()
        .or_else(|| hd.config.settings.addresses.first().cloned())?;
    let name = smtp
        .from_name
        .clone()
        .unwrap_or_else(|| hd.config.settings.name.clone());
    Some((from, name))
}

/// Renders, composes and queues one mail.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    event: Event,
    vars: &Vars,
    to: Vec<(Option<String>, String)>,
    cc: Vec<(Option<String>, String)>,
    threading: (Option<String>, Vec<String>),
    ids: (Option<i64>, Option<i64>, Option<i64>),
    attach_mail: Option<(String, Vec<u8>)>,
    message_id: Option<String>,
) -> Result<Option<(i64, String)>, NotifyError> {
    let Some((from, from_name)) = sender(hd) else {
        return Ok(None);
    };
    let rendered = hd.config.outgoing.templates.render(event, vars.value())?;
    let message_id = message_id.unwrap_or_else(|| compose::new_message_id(&from));
    let draft = Draft {
        from_name: Some(from_name),
        from,
        to,
        cc,
        subject: rendered.subject,
        body: rendered.body,
        message_id: message_id.clone(),
        in_reply_to: threading.0,
        references: threading.1,
        automatic: match event {
            Event::Reply => Automatic::No,
            Event::Acknowledgement => Automatic::Replied,
            _ => Automatic::Generated,
        },
        attach_mail,
    };
    let composed = compose::compose(&draft)?;
    let (ticket_id, intake_id, entry_id) = ids;
    let id = outbox::queue(
        conn,
        &NewOutgoing {
            helpdesk_id: hd.id,
            ticket_id,
            intake_id,
            entry_id,
            kind: event.as_str(),
            message_id: &message_id,
            envelope_from: &composed.envelope_from,
            recipients: &composed.recipients,
            subject: &composed.subject,
            raw: &composed.raw,
            suppressed: !hd.config.outgoing.delivery.enabled,
        },
    )?;
    Ok(Some((id, message_id)))
}

fn created(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<(), NotifyError> {
    let Some(ticket_id) = report.ticket_id else {
        return Ok(());
    };
    let info = ticket_info(conn, ticket_id)?;
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
    if let Some(skip) = acknowledgement_skipped(conn, hd, mail, &from)? {
        tracing::info!(ticket = info.number, reason = skip, "no acknowledgement");
    } else {
        let name = m.from.as_ref().and_then(|a| a.name.clone());
        let threading = match &m.message_id {
            Some(id) => (Some(id.clone()), vec![id.clone()]),
            None => (None, Vec::new()),
        };
        queue(
            conn,
            hd,
            Event::Acknowledgement,
            &vars,
            vec![(name, from.clone())],
            Vec::new(),
            threading,
            (Some(ticket_id), Some(report.intake_id), None),
            None,
            None,
        )?;
    }
    let target = &hd.config.outgoing.notifications.new_ticket;
    let agent = info.manager.clone().or(info.assignee.clone());
    let to = recipients(conn, hd, target, agent, &from)?;
    if !to.is_empty() {
        queue(
            conn,
            hd,
            Event::NewTicket,
            &vars,
            to,
            Vec::new(),
            (None, Vec::new()),
            (Some(ticket_id), Some(report.intake_id), None),
            None,
            None,
        )?;
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
    conn: &Connection,
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
    let sent = outbox::acknowledgements_since(conn, from, since)?;
    if sent >= i64::from(n.max_acknowledgements_per_hour) {
        return Ok(Some("rate limit of acknowledgements per hour reached"));
    }
    Ok(None)
}

/// The addresses of `target`, except `exclude` (the mail's sender) and our own.
fn recipients(
    conn: &Connection,
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
        Target::AllAgents => conn
            .prepare_cached("SELECT name, email FROM agents WHERE email IS NOT NULL ORDER BY id")?
            .query_map([], |r| Ok((Some(r.get(0)?), r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?,
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
    conn: &Connection,
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
    let info = ticket_info(conn, ticket_id)?;
    let from = mail
        .mail
        .from
        .as_ref()
        .map(|a| a.email_key())
        .unwrap_or_default();
    let agent = info.assignee.clone().or(info.manager.clone());
    let to = recipients(conn, hd, target, agent, &from)?;
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
    queue(
        conn,
        hd,
        Event::FollowUp,
        &vars,
        to,
        Vec::new(),
        (None, Vec::new()),
        (Some(ticket_id), Some(report.intake_id), None),
        None,
        None,
    )?;
    Ok(())
}

fn failed(
    conn: &Connection,
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
    queue(
        conn,
        hd,
        Event::Alert,
        &vars,
        to,
        Vec::new(),
        (None, Vec::new()),
        (None, Some(report.intake_id), None),
        Some((format!("failed-{}.eml", report.intake_id), original)),
        None,
    )?;
    Ok(())
}
