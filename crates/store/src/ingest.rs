//! Applies one prepared mail inside a group transaction: ledger row, contact,
//! new ticket or follow-up, entry, attachments. Many mails share one commit, each
//! mail's effects all-or-nothing (see [`Batch`]).
//!
//! This is the one stage of the pipeline that cannot be spread over cores, so it
//! runs synchronously on a [`Writer`]: its own SQLite connection (rusqlite) on the
//! thread that owns it, with cached prepared statements. Through sqlx's worker
//! thread each statement cost two thread hand-offs, more than SQLite's own work.

use std::collections::{HashMap, HashSet};

use postdesk_core::intake::{self, Action, IntakeOutcome, Plan, PriorIntake};
use postdesk_core::route::Route;
use postdesk_core::settings::UnknownSender;
use postdesk_core::thread::{Decision, SenderFacts, ThreadFacts, TicketFacts};
use postdesk_mail::{Address, Classification, ParsedMail, StrippedReply};
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use crate::entries::insert_event;
use crate::ledger::{self, LedgerIndex, LedgerRow, tickets_of_incoming};
use crate::sql::placeholders;
use crate::tickets::insert_ticket;
use crate::writer::Writer;
use crate::{RegisteredHelpdesk, Result, now};

/// An attachment whose bytes are already on disk (or refused by policy).
#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub sha256: String,
    pub original_name: Option<String>,
    pub safe_name: String,
    pub mime_type: String,
    pub size: usize,
    pub content_id: Option<String>,
    pub inline: bool,
    /// Why the attachment policy refused it; its bytes are then only in the raw mail.
    pub refused: Option<String>,
}

/// A mail parsed, classified and ready to apply.
#[derive(Debug)]
pub struct IncomingMail {
    /// Index into the registered helpdesks.
    pub helpdesk: usize,
    /// `file`, `maildir`, `mbox`, `stdin`, `imap`…
    pub source: &'static str,
    /// Path, mailbox and UID… whatever finds the mail at its source.
    pub location: String,
    pub sha256: String,
    pub raw_size: usize,
    pub raw_compressed: Vec<u8>,
    /// Parsed mail; its attachment bytes are dropped once stored (see `attachments`).
    pub mail: ParsedMail,
    pub attachments: Vec<StoredAttachment>,
    pub classification: Classification,
    /// Ticket numbers referenced in the subject, in order.
    pub subject_numbers: Vec<i64>,
    /// The body split at the reply marker or quote header; `None` when the mail
    /// carries nothing that could thread it to a ticket (see [`IncomingMail::reply`]).
    pub reply: Option<StrippedReply>,
    /// What the mail rules found before threading (resolved in `apply`).
    pub route: Route,
    pub received_at: i64,
    /// Set when preparing failed (e.g. too large, attachment not writable): the mail is kept as failed.
    pub failure: Option<String>,
    /// Attachments being made durable on other threads; see [`IncomingMail::await_files`].
    pub files_pending: Vec<std::sync::mpsc::Receiver<Result<()>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Appended,
    Ignored,
    Failed,
    /// The same bytes were already processed; nothing was written.
    Duplicate,
}

impl IncomingMail {
    /// Waits until the attachment files this mail wrote are on disk, as its rows
    /// will point at them; one that could not be written fails the mail.
    pub fn await_files(&mut self) {
        for pending in self.files_pending.drain(..) {
            let error = match pending.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "an attachment was not written (its writer stopped)".to_string(),
            };
            self.failure.get_or_insert(error);
        }
    }

    /// What finds the mail in the ledger (its index): the Message-ID, or the
    /// SHA-256 of the bytes when there is none. Same bytes, same key.
    pub fn ledger_key(&self) -> &str {
        self.mail.message_id.as_deref().unwrap_or(&self.sha256)
    }

    /// What [`intake::decide`] needs of the mail.
    pub fn decision_input(&self, retry_of: Option<i64>) -> intake::Incoming<'_> {
        intake::Incoming {
            class: self.classification,
            message_id: self.mail.message_id.as_deref(),
            matched: &self.route.matched,
            failure: self.failure.as_deref(),
            retry_of,
        }
    }

    /// The body split at the reply marker or quote header. Preparing a mail skips
    /// the split (a fifth of its cost) when nothing could make it a follow-up;
    /// should threading still append it, the split is made here.
    pub fn reply(&self, marker: Option<&str>) -> std::borrow::Cow<'_, StrippedReply> {
        match &self.reply {
            Some(reply) => std::borrow::Cow::Borrowed(reply),
            None => std::borrow::Cow::Owned(postdesk_mail::strip_reply(&self.mail.text, marker)),
        }
    }
}

impl Outcome {
    /// The outcome as the ledger row holds it; `None` for a duplicate, which writes no row.
    pub fn stored(self) -> Option<IntakeOutcome> {
        match self {
            Self::Created => Some(IntakeOutcome::Created),
            Self::Appended => Some(IntakeOutcome::Appended),
            Self::Ignored => Some(IntakeOutcome::Ignored),
            Self::Failed => Some(IntakeOutcome::Failed),
            Self::Duplicate => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Appended => "appended",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
            Self::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestReport {
    pub outcome: Outcome,
    pub intake_id: i64,
    pub ticket_id: Option<i64>,
    pub ticket_number: Option<i64>,
    pub reason: Option<String>,
    /// For a mail a rule ignored: the IMAP folder to move it to.
    pub move_to_folder: Option<String>,
}

/// Many mails, one commit.
pub struct Batch<'c> {
    tx: Transaction<'c>,
    /// Each mail in its own savepoint. Without, a database error while applying a
    /// mail fails the whole batch, which the caller then redoes carefully.
    careful: bool,
    /// Agents' addresses (lower-case), read once per batch.
    agents: HashSet<String>,
    ledger: LedgerIndex,
    known: Known,
}

impl Writer {
    /// A group transaction for `mails`, holding the write lock from its start so
    /// what it reads stays true until it commits. `careful` puts each mail in its
    /// own savepoint; use it to redo a batch that failed without.
    pub fn begin_batch<'c>(
        &'c mut self,
        helpdesks: &[RegisteredHelpdesk],
        careful: bool,
        mails: &[&IncomingMail],
    ) -> Result<Batch<'c>> {
        let tx = self.transaction()?;
        let agents = tx
            .prepare_cached("SELECT email FROM agents WHERE email IS NOT NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<HashSet<String>>>()?;
        let ledger = LedgerIndex::read(&tx, mails)?;
        let known = Known::read(&tx, helpdesks, mails)?;
        Ok(Batch {
            tx,
            careful,
            agents,
            ledger,
            known,
        })
    }
}

/// What threading asks the database about a batch's mails, read for all of them
/// at once when the batch begins (it holds the write lock, so nobody else changes
/// it) and kept current as the batch writes: a few queries per batch instead of
/// several per mail. What it does not know is asked of the database as before.
#[derive(Default)]
struct Known {
    /// Lower-case address → contact (id, organization); `None`: no such contact.
    contacts: HashMap<String, Option<(i64, Option<i64>)>>,
    /// (helpdesk, number) → ticket id; `None`: no such ticket.
    numbers: HashMap<(i64, i64), Option<i64>>,
    /// (helpdesk, Message-ID) → the ticket it threads to; `None`: none. Our own
    /// outgoing mails queued in this batch are not added: nobody can answer them yet.
    message_ids: HashMap<(i64, String), Option<i64>>,
    tickets: HashMap<i64, TicketFacts>,
}

impl Known {
    fn read(
        conn: &Connection,
        helpdesks: &[RegisteredHelpdesk],
        mails: &[&IncomingMail],
    ) -> Result<Self> {
        let mut known = Self::default();
        let mut addresses: HashSet<String> = helpdesks
            .iter()
            .map(|hd| hd.config.settings.default_contact.to_ascii_lowercase())
            .collect();
        let mut numbers: HashSet<(i64, i64)> = HashSet::new();
        let mut message_ids: HashSet<(i64, &str)> = HashSet::new();
        for mail in mails.iter().filter(|m| m.failure.is_none()) {
            let Some(hd) = helpdesks.get(mail.helpdesk) else {
                continue;
            };
            let m = &mail.mail;
            if let Some(email) = m.from.as_ref().map(Address::email_key) {
                addresses.insert(email);
            }
            numbers.extend(mail.subject_numbers.iter().map(|n| (hd.id, *n)));
            if mail.classification == Classification::Bounce
                && let Some(subject) = &m.structure.embedded_subject
            {
                numbers.extend(
                    hd.config
                        .reference
                        .find_all(subject)
                        .iter()
                        .map(|n| (hd.id, *n)),
                );
            }
            message_ids.extend(candidates(mail).into_iter().map(|id| (hd.id, id)));
        }

        if !addresses.is_empty() {
            let sql = format!(
                "SELECT a.address, c.id, c.organization_id FROM contact_addresses a
                 JOIN contacts c ON c.id = a.contact_id WHERE a.address IN ({})",
                placeholders(addresses.len())
            );
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(&addresses))?;
            while let Some(row) = rows.next()? {
                known
                    .contacts
                    .insert(row.get(0)?, Some((row.get(1)?, row.get(2)?)));
            }
            for a in addresses {
                known.contacts.entry(a).or_insert(None);
            }
        }

        let mut ticket_ids: HashSet<i64> = HashSet::new();
        // Per helpdesk, so that UNIQUE (helpdesk_id, number) finds them.
        let mut by_helpdesk: HashMap<i64, Vec<i64>> = HashMap::new();
        for (hd, n) in &numbers {
            by_helpdesk.entry(*hd).or_default().push(*n);
        }
        for (hd, wanted) in by_helpdesk {
            let sql = format!(
                "SELECT number, id FROM tickets WHERE helpdesk_id = ? AND number IN ({})",
                placeholders(wanted.len())
            );
            let mut statement = conn.prepare(&sql)?;
            let values = std::iter::once(hd).chain(wanted);
            let mut rows = statement.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(1)?;
                known.numbers.insert((hd, row.get(0)?), Some(id));
                ticket_ids.insert(id);
            }
        }
        for key in numbers {
            known.numbers.entry(key).or_insert(None);
        }

        if !message_ids.is_empty() {
            let distinct: Vec<&str> = message_ids
                .iter()
                .map(|(_, id)| *id)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            // As `ticket_by_message_id`: an incoming mail first, else our own outgoing mail.
            let by_incoming = tickets_of_incoming(conn, &distinct)?;
            let sql = format!(
                "SELECT helpdesk_id, message_id, ticket_id FROM outbox
                 WHERE message_id IN ({}) AND ticket_id IS NOT NULL",
                placeholders(distinct.len())
            );
            let mut by_outbox: HashMap<(i64, String), i64> = HashMap::new();
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(&distinct))?;
            while let Some(row) = rows.next()? {
                by_outbox.insert((row.get(0)?, row.get(1)?), row.get(2)?);
            }
            for (hd, id) in message_ids {
                let key = (hd, id.to_string());
                let ticket = by_incoming.get(&key).or(by_outbox.get(&key)).copied();
                ticket_ids.extend(ticket);
                known.message_ids.insert(key, ticket);
            }
        }

        if !ticket_ids.is_empty() {
            let sql = format!(
                "SELECT id, number, status, requester_id, organization_id FROM tickets WHERE id IN ({})",
                placeholders(ticket_ids.len())
            );
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(&ticket_ids))?;
            while let Some(row) = rows.next()? {
                let facts = TicketFacts {
                    id: row.get(0)?,
                    number: row.get(1)?,
                    status: row.get(2)?,
                    requester_contact_id: row.get(3)?,
                    organization_id: row.get(4)?,
                    participants: Vec::new(),
                };
                known.tickets.insert(facts.id, facts);
            }
            let sql = format!(
                "SELECT ticket_id, address FROM ticket_participants WHERE ticket_id IN ({})
                 ORDER BY ticket_id, address",
                placeholders(ticket_ids.len())
            );
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(&ticket_ids))?;
            while let Some(row) = rows.next()? {
                let ticket_id: i64 = row.get(0)?;
                if let Some(t) = known.tickets.get_mut(&ticket_id) {
                    t.participants.push(row.get(1)?);
                }
            }
        }
        Ok(known)
    }
}

impl Batch<'_> {
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    /// Applies one mail of the batch. In a careful batch a database error inside
    /// the mail's savepoint rolls back only this mail, which is then recorded as
    /// failed; any error returned means the whole batch must be abandoned.
    pub fn ingest(
        &mut self,
        helpdesks: &[RegisteredHelpdesk],
        mail: &IncomingMail,
        retry_of: Option<i64>,
    ) -> Result<IngestReport> {
        let hd = &helpdesks[mail.helpdesk];
        let report = self.ingest_one(hd, mail, retry_of)?;
        if let Some(outcome) = report.outcome.stored() {
            let row = PriorIntake {
                intake_id: report.intake_id,
                outcome,
                ticket_id: report.ticket_id,
            };
            self.ledger.record(hd.id, mail, row);
        }
        Ok(report)
    }

    fn ingest_one(
        &mut self,
        hd: &RegisteredHelpdesk,
        mail: &IncomingMail,
        retry_of: Option<i64>,
    ) -> Result<IngestReport> {
        let ledger = self.ledger.facts(hd.id, mail);
        let input = mail.decision_input(retry_of);
        let agents = &self.agents;
        let known = &mut self.known;
        let mut decide_and_execute = |conn: &Connection| {
            let plan = intake::decide(&hd.config, input, &ledger, || {
                gather(conn, hd, agents, known, mail)
            })?;
            execute(conn, hd, known, mail, plan)
        };
        if !self.careful {
            return decide_and_execute(&self.tx);
        }
        let savepoint = self.tx.savepoint()?;
        match decide_and_execute(&savepoint) {
            Ok(report) => {
                savepoint.commit()?;
                Ok(report)
            }
            Err(e) => {
                savepoint.finish()?; // rolled back: a savepoint not committed is dropped
                // It may have learnt rows that the rollback took back: ask the database again.
                self.known = Known::default();
                tracing::warn!(location = %mail.location, error = %e, "mail could not be applied");
                let retry_of = intake::row_to_update(&input, &ledger);
                record_failure(&self.tx, hd, mail, retry_of, &e.to_string())
            }
        }
    }

    /// The transaction, for stages that add their own rows to the same commit (notify).
    pub fn connection(&self) -> &Connection {
        &self.tx
    }
}

fn record_failure(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    retry_of: Option<i64>,
    reason: &str,
) -> Result<IngestReport> {
    let row = LedgerRow {
        retry_of,
        outcome: IntakeOutcome::Failed,
        classification: mail.classification.as_str(),
        ticket_id: None,
        reason: Some(reason),
    };
    let intake_id = ledger::write(conn, hd, mail, &row)?;
    Ok(report(
        Outcome::Failed,
        intake_id,
        None,
        None,
        Some(reason.to_string()),
    ))
}

/// Carries out the plan for one mail: its ledger row, and for a mail that threading
/// and the rules let in, its contact, ticket or follow-up, entry and events.
fn execute(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    known: &mut Known,
    mail: &IncomingMail,
    plan: Plan,
) -> Result<IngestReport> {
    let m = &mail.mail;
    let retry_of = plan.retry_of;
    let (facts, ruled) = match plan.action {
        Action::AlreadyProcessed(prior) => {
            return Ok(IngestReport {
                outcome: Outcome::Duplicate,
                intake_id: prior.intake_id,
                ticket_id: prior.ticket_id,
                ticket_number: None,
                reason: Some("the same mail was already processed".into()),
                move_to_folder: None,
            });
        }
        Action::Fail { reason } => return record_failure(conn, hd, mail, retry_of, &reason),
        Action::DuplicateMessageId { taken_by, reason } => {
            let row = LedgerRow {
                retry_of,
                outcome: IntakeOutcome::Ignored,
                classification: "duplicate",
                ticket_id: Some(taken_by.ticket_id),
                reason: Some(&reason),
            };
            let intake_id = ledger::write(conn, hd, mail, &row)?;
            return Ok(report(
                Outcome::Ignored,
                intake_id,
                Some(taken_by.ticket_id),
                None,
                Some(reason),
            ));
        }
        Action::Apply(applied) => (applied.facts, applied.ruled),
    };
    if !ruled.rules.applied.is_empty() || !ruled.rules.passed_over.is_empty() {
        tracing::debug!(
            location = %mail.location,
            applied = ?ruled.rules.applied,
            passed_over = ?ruled.rules.passed_over,
            "mail rules"
        );
    }
    let class = mail.classification.as_str();
    // The rules may change what threading knows of the ticket: ask the database next time.
    let rules_change_ticket = ruled.rules.fields.changes_ticket();
    match ruled.decision {
        Decision::Ignore { reason } => {
            let intake_id = ledger::write(
                conn,
                hd,
                mail,
                &LedgerRow {
                    retry_of,
                    outcome: IntakeOutcome::Ignored,
                    classification: class,
                    ticket_id: None,
                    reason: Some(&reason),
                },
            )?;
            let mut report = report(Outcome::Ignored, intake_id, None, None, Some(reason));
            report.move_to_folder = ruled.rules.ignore_folder().map(str::to_string);
            Ok(report)
        }
        Decision::Reject { reason } => {
            let intake_id = ledger::write(
                conn,
                hd,
                mail,
                &LedgerRow {
                    retry_of,
                    outcome: IntakeOutcome::Failed,
                    classification: class,
                    ticket_id: None,
                    reason: Some(&reason),
                },
            )?;
            Ok(report(Outcome::Failed, intake_id, None, None, Some(reason)))
        }
        Decision::NewTicket { note } => {
            let requester =
                requester_for_new_ticket(conn, hd, known, m.from.as_ref(), &facts.sender)?;
            let contact_id = match &requester.contact {
                Requester::Known(id) => *id,
                Requester::New { name, email } => {
                    let id = create_contact(conn, name, email, requester.organization_id)?;
                    known
                        .contacts
                        .insert(email.clone(), Some((id, requester.organization_id)));
                    id
                }
            };
            let (ticket_id, number) =
                insert_ticket(conn, hd, mail, contact_id, requester.organization_id)?;
            let intake_id = ledger::write(
                conn,
                hd,
                mail,
                &LedgerRow {
                    retry_of,
                    outcome: IntakeOutcome::Created,
                    classification: class,
                    ticket_id: Some(ticket_id),
                    reason: None,
                },
            )?;
            // A new ticket's description is the whole text: nothing in it is history we know.
            insert_entry(conn, hd, ticket_id, mail, contact_id, intake_id, &m.text)?;
            let participants = participant_addresses(hd, m);
            insert_participants(conn, ticket_id, &participants)?;
            known.numbers.insert((hd.id, number), Some(ticket_id));
            if let Some(id) = &m.message_id {
                known
                    .message_ids
                    .insert((hd.id, id.clone()), Some(ticket_id));
            }
            if !rules_change_ticket {
                let mut participants = participants;
                participants.sort();
                known.tickets.insert(
                    ticket_id,
                    TicketFacts {
                        id: ticket_id,
                        number,
                        status: hd.config.settings.new_ticket_status.clone(),
                        requester_contact_id: Some(contact_id),
                        organization_id: requester.organization_id,
                        participants,
                    },
                );
            }
            if let Some(note) = note {
                insert_event(conn, ticket_id, Some(hd.default_agent_id), &note, now())?;
            }
            crate::rules::apply_to_ticket(conn, hd, ticket_id, mail, &ruled.rules)?;
            Ok(report(
                Outcome::Created,
                intake_id,
                Some(ticket_id),
                Some(number),
                None,
            ))
        }
        Decision::FollowUp {
            ticket_id,
            set_status,
            note,
        } => {
            let informant = match facts.sender.contact_id {
                Some(id) => id,
                None => default_contact(conn, hd, known)?,
            };
            let intake_id = ledger::write(
                conn,
                hd,
                mail,
                &LedgerRow {
                    retry_of,
                    outcome: IntakeOutcome::Appended,
                    classification: class,
                    ticket_id: Some(ticket_id),
                    reason: None,
                },
            )?;
            let reply = mail.reply(hd.config.settings.reply_marker.as_deref());
            insert_entry(
                conn,
                hd,
                ticket_id,
                mail,
                informant,
                intake_id,
                &reply.reply,
            )?;
            // Status (when it changes), last modified, and the number to report.
            let number: i64 = conn
                .prepare_cached(
                    "UPDATE tickets SET status = COALESCE(?1, status), modified_at = ?2,
                     modified_by = ?3 WHERE id = ?4 RETURNING number",
                )?
                .query_row(
                    params![set_status, now(), hd.default_agent_id, ticket_id],
                    |r| r.get(0),
                )?;
            let participants = if mail.classification == Classification::Normal {
                participant_addresses(hd, m)
            } else {
                Vec::new()
            };
            insert_participants(conn, ticket_id, &participants)?;
            if let Some(id) = &m.message_id {
                known
                    .message_ids
                    .insert((hd.id, id.clone()), Some(ticket_id));
            }
            if rules_change_ticket {
                known.tickets.remove(&ticket_id);
            } else if let Some(t) = known.tickets.get_mut(&ticket_id) {
                if let Some(status) = set_status {
                    t.status = status;
                }
                t.participants.extend(participants);
                t.participants.sort();
                t.participants.dedup();
            }
            if let Some(note) = note {
                insert_event(conn, ticket_id, Some(hd.default_agent_id), &note, now())?;
            }
            crate::rules::apply_to_ticket(conn, hd, ticket_id, mail, &ruled.rules)?;
            Ok(report(
                Outcome::Appended,
                intake_id,
                Some(ticket_id),
                Some(number),
                None,
            ))
        }
    }
}

fn report(
    outcome: Outcome,
    intake_id: i64,
    ticket_id: Option<i64>,
    ticket_number: Option<i64>,
    reason: Option<String>,
) -> IngestReport {
    IngestReport {
        outcome,
        intake_id,
        ticket_id,
        ticket_number,
        reason,
        move_to_folder: None,
    }
}

/// Message-IDs that may thread the mail, most specific first: In-Reply-To, then
/// References from the newest (for bounces the embedded original first); at most 20.
fn candidates(mail: &IncomingMail) -> Vec<&str> {
    let m = &mail.mail;
    let mut candidates: Vec<&str> = m.in_reply_to.iter().map(String::as_str).collect();
    candidates.extend(m.references.iter().rev().map(String::as_str));
    if mail.classification == Classification::Bounce
        && let Some(id) = &m.structure.embedded_message_id
    {
        candidates.insert(0, id);
    }
    candidates.truncate(20);
    candidates
}

/// What threading needs to know about `mail`, asked of the database.
pub(crate) fn gather_facts(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    mail: &IncomingMail,
) -> Result<ThreadFacts> {
    gather(conn, hd, agents, &mut Known::default(), mail)
}

fn gather(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    known: &mut Known,
    mail: &IncomingMail,
) -> Result<ThreadFacts> {
    let m = &mail.mail;
    let subject_number = mail.subject_numbers.first().copied();
    let mut by_subject = None;
    for number in &mail.subject_numbers {
        if let Some(t) = ticket_by_number(conn, known, hd.id, *number)? {
            by_subject = Some(t);
            break;
        }
    }
    let mut by_message_id = None;
    for id in candidates(mail) {
        if let Some(ticket_id) = ticket_by_message_id(conn, known, hd.id, id)? {
            by_message_id = ticket_facts(conn, known, ticket_id)?;
            break;
        }
    }
    if by_subject.is_none()
        && mail.classification == Classification::Bounce
        && let Some(subject) = &m.structure.embedded_subject
        && let Some(number) = hd.config.reference.find_all(subject).first()
    {
        by_subject = ticket_by_number(conn, known, hd.id, *number)?;
    }
    let sender = sender_facts(conn, hd, agents, known, m.from.as_ref())?;
    Ok(ThreadFacts {
        subject_number,
        by_subject,
        by_message_id,
        sender,
    })
}

fn ticket_by_number(
    conn: &Connection,
    known: &mut Known,
    helpdesk_id: i64,
    number: i64,
) -> Result<Option<TicketFacts>> {
    let id = match known.numbers.get(&(helpdesk_id, number)) {
        Some(id) => *id,
        None => conn
            .prepare_cached("SELECT id FROM tickets WHERE helpdesk_id = ?1 AND number = ?2")?
            .query_row(params![helpdesk_id, number], |r| r.get(0))
            .optional()?,
    };
    match id {
        Some(id) => ticket_facts(conn, known, id),
        None => Ok(None),
    }
}

fn ticket_by_message_id(
    conn: &Connection,
    known: &Known,
    helpdesk_id: i64,
    message_id: &str,
) -> Result<Option<i64>> {
    if let Some(ticket_id) = known
        .message_ids
        .get(&(helpdesk_id, message_id.to_string()))
    {
        return Ok(*ticket_id);
    }
    let by_incoming = tickets_of_incoming(conn, &[message_id])?
        .get(&(helpdesk_id, message_id.to_string()))
        .copied();
    if by_incoming.is_some() {
        return Ok(by_incoming);
    }
    // Our own mails about a ticket (acknowledgements, notifications) thread answers too.
    Ok(conn
        .prepare_cached(
            "SELECT ticket_id FROM outbox WHERE message_id = ?1 AND helpdesk_id = ?2
             AND ticket_id IS NOT NULL",
        )?
        .query_row(params![message_id, helpdesk_id], |r| r.get(0))
        .optional()?)
}

fn ticket_facts(
    conn: &Connection,
    known: &mut Known,
    ticket_id: i64,
) -> Result<Option<TicketFacts>> {
    if let Some(t) = known.tickets.get(&ticket_id) {
        return Ok(Some(t.clone()));
    }
    let Some(mut facts) = conn
        .prepare_cached(
            "SELECT id, number, status, requester_id, organization_id FROM tickets WHERE id = ?1",
        )?
        .query_row([ticket_id], |r| {
            Ok(TicketFacts {
                id: r.get(0)?,
                number: r.get(1)?,
                status: r.get(2)?,
                requester_contact_id: r.get(3)?,
                organization_id: r.get(4)?,
                participants: Vec::new(),
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    facts.participants = conn
        .prepare_cached("SELECT address FROM ticket_participants WHERE ticket_id = ?1")?
        .query_map([ticket_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    known.tickets.insert(ticket_id, facts.clone());
    Ok(Some(facts))
}

/// (contact id, organization id) of the contact with this address, if any.
fn contact_by_address(
    conn: &Connection,
    known: &mut Known,
    email: &str,
) -> Result<Option<(i64, Option<i64>)>> {
    if let Some(contact) = known.contacts.get(email) {
        return Ok(*contact);
    }
    let contact = conn
        .prepare_cached(
            "SELECT c.id, c.organization_id FROM contact_addresses a
             JOIN contacts c ON c.id = a.contact_id WHERE a.address = ?1",
        )?
        .query_row([email], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    known.contacts.insert(email.to_string(), contact);
    Ok(contact)
}

fn sender_facts(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    known: &mut Known,
    from: Option<&Address>,
) -> Result<SenderFacts> {
    let Some(email) = from.map(Address::email_key).filter(|e| e.contains('@')) else {
        return Ok(SenderFacts::default());
    };
    let contact = contact_by_address(conn, known, &email)?;
    let is_agent = agents.contains(&email);
    let contact_id = contact.map(|c| c.0);
    let mut organization_id = contact.and_then(|c| c.1);
    // An address not yet known still belongs to the organization its domain is mapped to.
    if contact_id.is_none()
        && let Some(name) = hd.config.organization_for(&email)
    {
        organization_id = conn
            .prepare_cached("SELECT id FROM organizations WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
    }
    Ok(SenderFacts {
        email: Some(email),
        contact_id,
        organization_id,
        is_agent,
    })
}

/// The requester of a new ticket.
struct NewRequester {
    contact: Requester,
    organization_id: Option<i64>,
}

enum Requester {
    Known(i64),
    /// A contact to create with the ticket.
    New {
        name: String,
        email: String,
    },
}

fn requester_for_new_ticket(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    known: &mut Known,
    from: Option<&Address>,
    sender: &SenderFacts,
) -> Result<NewRequester> {
    if let Some(id) = sender.contact_id {
        return Ok(NewRequester {
            contact: Requester::Known(id),
            organization_id: sender.organization_id,
        });
    }
    let create = hd.config.settings.unknown_sender == UnknownSender::CreateContact;
    match (from, &sender.email) {
        (Some(address), Some(email)) if create => {
            let organization_id = match hd.config.organization_for(email) {
                Some(name) => Some(ensure_organization(conn, name)?),
                None => None,
            };
            let name = address
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
            Ok(NewRequester {
                contact: Requester::New {
                    name,
                    email: email.clone(),
                },
                organization_id,
            })
        }
        _ => {
            let id = default_contact(conn, hd, known)?;
            let email = hd.config.settings.default_contact.to_ascii_lowercase();
            let organization_id = match known.contacts.get(&email) {
                Some(Some((_, org))) => *org,
                _ => conn
                    .prepare_cached("SELECT organization_id FROM contacts WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))?,
            };
            Ok(NewRequester {
                contact: Requester::Known(id),
                organization_id,
            })
        }
    }
}

fn ensure_organization(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    )?
    .execute(params![name, now()])?;
    Ok(conn
        .prepare_cached("SELECT id FROM organizations WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?)
}

fn create_contact(
    conn: &Connection,
    name: &str,
    email: &str,
    organization_id: Option<i64>,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO contacts (name, organization_id, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![name, organization_id, now()])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO contact_addresses (address, contact_id) VALUES (?1, ?2)")?
        .execute(params![email, id])?;
    Ok(id)
}

/// The helpdesk's default contact, created on first use.
fn default_contact(conn: &Connection, hd: &RegisteredHelpdesk, known: &mut Known) -> Result<i64> {
    let email = hd.config.settings.default_contact.to_ascii_lowercase();
    match contact_by_address(conn, known, &email)? {
        Some((id, _)) => Ok(id),
        None => {
            let id = create_contact(conn, "Unknown sender", &email, None)?;
            known.contacts.insert(email, Some((id, None)));
            Ok(id)
        }
    }
}

fn join_addresses(list: &[Address]) -> String {
    list.iter()
        .map(|a| a.email.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mail's entry and its attachments.
fn insert_entry(
    conn: &Connection,
    hd: &RegisteredHelpdesk,
    ticket_id: i64,
    mail: &IncomingMail,
    author_contact_id: i64,
    intake_id: i64,
    body_text: &str,
) -> Result<()> {
    let m = &mail.mail;
    let visible = matches!(
        mail.classification,
        Classification::Normal | Classification::Bulk
    );
    let warnings = (!m.warnings.is_empty()).then(|| m.warnings.join("\n"));
    conn.prepare_cached(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, author_contact_id, from_addr, to_addrs, cc_addrs,
             subject, body_text, body_full, body_html, message_id, in_reply_to, refs, classification,
             warnings, visible_to_customer, intake_id, created_at)
         VALUES (?1, 'incoming', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        ticket_id,
        hd.default_agent_id,
        author_contact_id,
        m.from.as_ref().map(|a| a.email.as_str()),
        join_addresses(&m.to),
        join_addresses(&m.cc),
        m.subject,
        body_text,
        // Kept only when it differs from what is shown (a follow-up cut at its quote).
        (body_text != m.text).then_some(&m.text),
        m.html,
        m.message_id,
        m.in_reply_to.join(" "),
        m.references.join(" "),
        mail.classification.as_str(),
        warnings,
        visible,
        intake_id,
        m.date.unwrap_or(mail.received_at),
    ])?;
    if mail.attachments.is_empty() {
        return Ok(());
    }
    let entry_id = conn.last_insert_rowid();
    let mut statement = conn.prepare_cached(
        "INSERT INTO attachments (entry_id, sha256, original_name, safe_name, mime_type, size,
             content_id, inline, refused)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for a in &mail.attachments {
        statement.execute(params![
            entry_id,
            a.refused.is_none().then_some(&a.sha256),
            a.original_name,
            a.safe_name,
            a.mime_type,
            a.size as i64,
            a.content_id,
            a.inline,
            a.refused,
        ])?;
    }
    Ok(())
}

/// Sender, To and CC become participants, except our own addresses.
fn participant_addresses(hd: &RegisteredHelpdesk, m: &ParsedMail) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for address in m.from.iter().chain(&m.to).chain(&m.cc) {
        let key = address.email_key();
        if key.contains('@') && !hd.config.is_own_address(&key) && !addresses.contains(&key) {
            addresses.push(key);
        }
    }
    addresses
}

fn insert_participants(conn: &Connection, ticket_id: i64, addresses: &[String]) -> Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO ticket_participants (ticket_id, address) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for address in addresses {
        statement.execute(params![ticket_id, address])?;
    }
    Ok(())
}
