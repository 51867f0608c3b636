//! Applies one prepared mail inside a group transaction: ledger row, contact,
//! new ticket or follow-up, entry, attachments. Many mails share one commit, each
//! mail's effects all-or-nothing (see [`Batch`]).
//!
//! This is the one stage of the pipeline that cannot be spread over cores, so it
//! runs synchronously on a [`Writer`]: its own SQLite connection (rusqlite) on the
//! thread that owns it, with cached prepared statements. Through sqlx's worker
//! thread each statement cost two thread hand-offs, more than SQLite's own work.
//! On PostgreSQL, where each statement is a network round trip, the batch's rows are
//! written behind and sent a table at a time (see `pending`).
//!
//! [`intake::decide`] decides; this module gathers its facts (`facts`) and executes
//! the plan through the table modules (`ledger`, `tickets`, `entries`, `contacts`).

mod facts;

use postdesk_core::id::{ContactId, IntakeId, OrganizationId, TicketId, TicketNumber};
use postdesk_core::search::IndexText;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::engine::{Db, params};
use postdesk_core::intake::{self, Action, IntakeOutcome, Plan, PriorIntake};
use postdesk_core::settings::UnknownSender;
use postdesk_core::thread::{Decision, SenderFacts, TicketFacts};
use postdesk_mail::{Address, Classification};

use crate::contacts;
use crate::entries::insert_event;
use crate::entries::{IncomingEntry, insert_incoming};
pub use crate::incoming::{IncomingMail, IngestReport, Outcome, StoredAttachment};
use crate::leases::LeaseFence;
use crate::ledger::{self, LedgerIndex, LedgerRow};
use crate::pending::TicketChange;
use crate::tickets::{insert_participants, insert_ticket, participant_addresses};
use crate::writer::{WriteTx, Writer};
use crate::{RegisteredHelpdesk, Result, now};
pub(crate) use facts::gather_facts;
use facts::{Known, contact_by_address, gather};

/// Many mails, one commit.
pub struct Batch<'c> {
    tx: WriteTx<'c>,
    /// Each mail in its own savepoint. Without, a database error while applying a
    /// mail fails the whole batch, which the caller then redoes carefully.
    careful: bool,
    /// Agents' addresses (lower-case), read once per batch.
    agents: HashSet<String>,
    ledger: LedgerIndex,
    known: Known,
    /// Tickets a mail of the batch created or added to: their search documents are
    /// rebuilt once each, when the batch commits (see [`Batch::commit`]).
    to_index: BTreeSet<TicketId>,
    /// The batch's entries' texts as the prepare threads tokenized them, by ledger row.
    indexed: HashMap<IntakeId, IndexText>,
}

impl Writer {
    /// A group transaction for `mails`, holding the write lock from its start so
    /// what it reads stays true until it commits. `careful` puts each mail in its
    /// own savepoint; use it to redo a batch that failed without. With a `fence`
    /// (mail from a leased mailbox) it fails with [`crate::StoreError::LeaseLost`]
    /// before anything is written unless the lease is still held under it.
    pub fn begin_batch<'c>(
        &'c mut self,
        helpdesks: &[RegisteredHelpdesk],
        careful: bool,
        mails: &[&IncomingMail],
        fence: Option<&LeaseFence>,
    ) -> Result<Batch<'c>> {
        let written: BTreeSet<_> = mails.iter().map(|m| helpdesks[m.helpdesk].id).collect();
        let tx = self.intake_transaction(&written)?;
        let db = tx.db();
        if let Some(fence) = fence {
            crate::leases::check_fence(&db, fence)?;
        }
        let agents = crate::access::agent_emails(&db)?;
        let ledger = LedgerIndex::read(&db, mails)?;
        let known = Known::read(&db, helpdesks, mails)?;
        tx.write_behind(mails.len());
        Ok(Batch {
            tx,
            careful,
            agents,
            ledger,
            known,
            to_index: BTreeSet::new(),
            indexed: HashMap::new(),
        })
    }
}

impl Batch<'_> {
    /// Rebuilds the search document of each ticket the batch wrote to, then commits.
    /// Once per ticket: a ticket with three mails in the batch is tokenized once, not
    /// three times.
    pub fn commit(self) -> Result<()> {
        let tickets: Vec<TicketId> = self.to_index.iter().copied().collect();
        crate::search::refresh_all(&self.tx.db(), &tickets, &self.indexed)?;
        self.tx.commit()
    }

    /// Applies one mail of the batch. In a careful batch a database error inside
    /// the mail's savepoint rolls back only this mail, which is then recorded as
    /// failed; any error returned means the whole batch must be abandoned.
    pub fn ingest(
        &mut self,
        helpdesks: &[RegisteredHelpdesk],
        mail: &IncomingMail,
        retry_of: Option<IntakeId>,
    ) -> Result<IngestReport> {
        let hd = &helpdesks[mail.helpdesk];
        let report = self.ingest_one(hd, mail, retry_of)?;
        if let Some(ticket) = report.ticket_id {
            // The entry shows the whole text on a new ticket, the reply on a follow-up.
            let indexed = match report.outcome {
                Outcome::Created => Some(&mail.indexed),
                Outcome::Appended => Some(&mail.indexed_reply),
                _ => None,
            };
            if let Some(indexed) = indexed {
                self.to_index.insert(ticket);
                if let Some(text) = indexed {
                    self.indexed.insert(report.intake_id, text.clone());
                }
            }
        }
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
        retry_of: Option<IntakeId>,
    ) -> Result<IngestReport> {
        let ledger = self.ledger.facts(hd.id, mail);
        let input = mail.decision_input(retry_of);
        let agents = &self.agents;
        let known = &mut self.known;
        let mut decide_and_execute = |conn: &Db| {
            let plan = intake::decide(&hd.config, input, &ledger, || {
                gather(conn, hd, agents, known, mail)
            })?;
            execute(conn, hd, known, mail, plan)
        };
        if !self.careful {
            return decide_and_execute(&self.tx.db());
        }
        match self.tx.savepoint(|db| decide_and_execute(db)) {
            Ok(report) => Ok(report),
            Err(e) => {
                // It may have learnt rows that the rollback took back: ask the database again.
                self.known = Known::default();
                tracing::warn!(location = %mail.location, error = %e, "mail could not be applied");
                let retry_of = intake::row_to_update(&input, &ledger);
                record_failure(&self.tx.db(), hd, mail, retry_of, &e.to_string())
            }
        }
    }

    /// The transaction, for stages that add their own rows to the same commit (notify).
    pub fn connection(&self) -> crate::Tx<'_> {
        crate::Tx::new(self.tx.db())
    }
}

fn record_failure(
    conn: &Db,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    retry_of: Option<IntakeId>,
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
    conn: &Db,
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
                    let id = contacts::create(conn, name, email, requester.organization_id)?;
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
            let entry = IncomingEntry {
                ticket_id,
                author: contact_id,
                intake_id,
                body_text: &m.text,
            };
            insert_incoming(conn, hd, mail, &entry)?;
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
            let entry = IncomingEntry {
                ticket_id,
                author: informant,
                intake_id,
                body_text: &reply.reply,
            };
            insert_incoming(conn, hd, mail, &entry)?;
            // Status (when it changes), last modified, and the number to report.
            let threaded = [&facts.by_subject, &facts.by_message_id]
                .into_iter()
                .flatten()
                .find(|t| t.id == ticket_id)
                .map(|t| t.number);
            let number: TicketNumber = match (conn.pending(), threaded) {
                // PostgreSQL: written behind; the number is the one threading found.
                (Some(pending), Some(number)) => {
                    pending.change_ticket(TicketChange {
                        ticket_id,
                        status: set_status.clone(),
                        at: now(),
                        by: hd.default_agent_id,
                    });
                    number
                }
                _ => conn
                    .prepare_cached(
                        "UPDATE tickets SET status = COALESCE(?1, status), modified_at = ?2,
                         modified_by = ?3 WHERE id = ?4 RETURNING number",
                    )?
                    .query_row(
                        params![set_status, now(), hd.default_agent_id, ticket_id],
                        |r| r.get(0),
                    )?,
            };
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
    intake_id: IntakeId,
    ticket_id: Option<TicketId>,
    ticket_number: Option<TicketNumber>,
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

/// The requester of a new ticket.
struct NewRequester {
    contact: Requester,
    organization_id: Option<OrganizationId>,
}

enum Requester {
    Known(ContactId),
    /// A contact to create with the ticket.
    New {
        name: String,
        email: String,
    },
}

fn requester_for_new_ticket(
    conn: &Db,
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
                Some(name) => Some(contacts::ensure_organization(conn, name)?),
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
                _ => contacts::organization_of(conn, id)?,
            };
            Ok(NewRequester {
                contact: Requester::Known(id),
                organization_id,
            })
        }
    }
}

/// The helpdesk's default contact, created on first use.
fn default_contact(conn: &Db, hd: &RegisteredHelpdesk, known: &mut Known) -> Result<ContactId> {
    let email = hd.config.settings.default_contact.to_ascii_lowercase();
    match contact_by_address(conn, known, &email)? {
        Some((id, _)) => Ok(id),
        None => {
            let id = contacts::create(conn, "Unknown sender", &email, None)?;
            known.contacts.insert(email, Some((id, None)));
            Ok(id)
        }
    }
}
