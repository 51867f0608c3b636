//! What threading needs to know of a batch's mails, asked of the database: the tickets
//! their subject references and Message-IDs point at, and who their senders are. Read
//! for a whole batch at once when it begins ([`Known`]), kept current as it writes.

use postdesk_core::id::{ContactId, HelpdeskId, OrganizationId, TicketId, TicketNumber};
use std::collections::{HashMap, HashSet};

use crate::engine::{Db, OptionalExtension, params, params_from_iter};
use postdesk_core::thread::{SenderFacts, ThreadFacts, TicketFacts};
use postdesk_mail::{Address, Classification};

use crate::contacts;
use crate::incoming::IncomingMail;
use crate::ledger::tickets_of_incoming;
use crate::sql::placeholders;
use crate::{RegisteredHelpdesk, Result};

/// What threading asks the database about a batch's mails, read for all of them
/// at once when the batch begins (it holds the write lock, so nobody else changes
/// it) and kept current as the batch writes: a few queries per batch instead of
/// several per mail. What it does not know is asked of the database as before.
#[derive(Default)]
pub(crate) struct Known {
    /// Lower-case address → contact (id, organization); `None`: no such contact.
    pub(crate) contacts: HashMap<String, Option<(ContactId, Option<OrganizationId>)>>,
    /// (helpdesk, number) → ticket id; `None`: no such ticket.
    pub(crate) numbers: HashMap<(HelpdeskId, TicketNumber), Option<TicketId>>,
    /// (helpdesk, Message-ID) → the ticket it threads to; `None`: none. Our own
    /// outgoing mails queued in this batch are not added: nobody can answer them yet.
    pub(crate) message_ids: HashMap<(HelpdeskId, String), Option<TicketId>>,
    pub(crate) tickets: HashMap<TicketId, TicketFacts>,
}

impl Known {
    pub(crate) fn read(
        conn: &Db,
        helpdesks: &[RegisteredHelpdesk],
        mails: &[&IncomingMail],
    ) -> Result<Self> {
        let mut known = Self::default();
        let mut addresses: HashSet<String> = helpdesks
            .iter()
            .map(|hd| hd.config.settings.default_contact.to_ascii_lowercase())
            .collect();
        let mut numbers: HashSet<(HelpdeskId, TicketNumber)> = HashSet::new();
        let mut message_ids: HashSet<(HelpdeskId, &str)> = HashSet::new();
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

        let mut ticket_ids: HashSet<TicketId> = HashSet::new();
        // Per helpdesk, so that UNIQUE (helpdesk_id, number) finds them.
        let mut by_helpdesk: HashMap<HelpdeskId, Vec<TicketNumber>> = HashMap::new();
        for (hd, n) in &numbers {
            by_helpdesk.entry(*hd).or_default().push(*n);
        }
        for (hd, wanted) in by_helpdesk {
            let sql = format!(
                "SELECT number, id FROM tickets WHERE helpdesk_id = ? AND number IN ({})",
                placeholders(wanted.len())
            );
            let mut statement = conn.prepare(&sql)?;
            let values = std::iter::once(hd.get()).chain(wanted.iter().map(|n| n.get()));
            let mut rows = statement.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let id: TicketId = row.get(1)?;
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
            let mut by_outbox: HashMap<(HelpdeskId, String), TicketId> = HashMap::new();
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
                let ticket_id: TicketId = row.get(0)?;
                if let Some(t) = known.tickets.get_mut(&ticket_id) {
                    t.participants.push(row.get(1)?);
                }
            }
        }
        Ok(known)
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
    conn: &Db,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    mail: &IncomingMail,
) -> Result<ThreadFacts> {
    gather(conn, hd, agents, &mut Known::default(), mail)
}

pub(crate) fn gather(
    conn: &Db,
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
    let mut sender = sender_facts(conn, hd, agents, known, m.from.as_ref())?;
    if let Some(authserv_id) = &hd.config.settings.trust_authentication_results {
        sender.forged = postdesk_mail::auth::forged_sender(m, authserv_id);
    }
    Ok(ThreadFacts {
        subject_number,
        by_subject,
        by_message_id,
        sender,
    })
}

fn ticket_by_number(
    conn: &Db,
    known: &mut Known,
    helpdesk_id: HelpdeskId,
    number: TicketNumber,
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
    conn: &Db,
    known: &Known,
    helpdesk_id: HelpdeskId,
    message_id: &str,
) -> Result<Option<TicketId>> {
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
    conn.prepare_cached(
        "SELECT ticket_id FROM outbox WHERE message_id = ?1 AND helpdesk_id = ?2
             AND ticket_id IS NOT NULL",
    )?
    .query_row(params![message_id, helpdesk_id], |r| r.get(0))
    .optional()
}

fn ticket_facts(conn: &Db, known: &mut Known, ticket_id: TicketId) -> Result<Option<TicketFacts>> {
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
        .collect::<Result<_>>()?;
    known.tickets.insert(ticket_id, facts.clone());
    Ok(Some(facts))
}

/// (contact id, organization id) of the contact with this address, if any.
pub(crate) fn contact_by_address(
    conn: &Db,
    known: &mut Known,
    email: &str,
) -> Result<Option<(ContactId, Option<OrganizationId>)>> {
    if let Some(contact) = known.contacts.get(email) {
        return Ok(*contact);
    }
    let contact = contacts::by_address(conn, email)?;
    known.contacts.insert(email.to_string(), contact);
    Ok(contact)
}

fn sender_facts(
    conn: &Db,
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
        organization_id = contacts::organization_named(conn, name)?;
    }
    Ok(SenderFacts {
        email: Some(email),
        contact_id,
        organization_id,
        is_agent,
        forged: None,
    })
}
