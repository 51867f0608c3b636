//! The `intake` table, the ledger of every mail received: what the ledger already holds
//! of a batch's mails (one query per batch, for import and the simulator alike), the
//! row each mail gets, and the tickets its Message-IDs thread to.

use postdesk_core::id::{HelpdeskId, IntakeId, TicketId};
use std::collections::{HashMap, HashSet};

use crate::engine::{Db, params, params_from_iter};
use postdesk_core::intake::{IntakeOutcome, LedgerFacts, PriorIntake, Taken};

use crate::incoming::IncomingMail;
use crate::pending::{Sequence, Table};
use crate::sql::placeholders;
use crate::{RegisteredHelpdesk, Result, now};

/// What the ledger knows of a batch's mails: read with one query when the batch
/// begins, kept current as the batch writes.
#[derive(Default)]
pub(crate) struct LedgerIndex {
    /// (helpdesk, SHA-256) → its row, successful rows preferred.
    by_sha256: HashMap<(HelpdeskId, String), PriorIntake>,
    /// (helpdesk, Message-ID) → the mail with it that made a ticket or follow-up.
    taken: HashMap<(HelpdeskId, String), Taken>,
}

impl LedgerIndex {
    pub(crate) fn read(conn: &Db, mails: &[&IncomingMail]) -> Result<Self> {
        let mut index = Self::default();
        if mails.is_empty() {
            return Ok(index);
        }
        // Any outcome: the rows are sorted out below. With the outcome in the
        // condition SQLite answered it through the outcome index, reading every
        // successful row of the ledger per batch (imports slowed as it grew).
        let sql = format!(
            "SELECT helpdesk_id, id, outcome, ticket_id, sha256, message_id FROM intake
             WHERE coalesce(message_id, sha256) IN ({}) ORDER BY outcome = 'failed', id",
            placeholders(mails.len())
        );
        let wanted: HashSet<&str> = mails.iter().map(|m| m.sha256.as_str()).collect();
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(params_from_iter(mails.iter().map(|m| m.ledger_key())))?;
        while let Some(row) = rows.next()? {
            let Some(helpdesk_id) = row.get::<_, Option<HelpdeskId>>(0)? else {
                continue;
            };
            let outcome: IntakeOutcome = row.get(2)?;
            let prior = PriorIntake {
                intake_id: row.get(1)?,
                outcome,
                ticket_id: row.get(3)?,
            };
            let sha256: String = row.get(4)?;
            if let (Some(message_id), Some(ticket_id)) =
                (row.get::<_, Option<String>>(5)?, prior.ticket_id)
                && outcome.made_entry()
            {
                index
                    .taken
                    .entry((helpdesk_id, message_id))
                    .or_insert(Taken { outcome, ticket_id });
            }
            if wanted.contains(sha256.as_str()) {
                index
                    .by_sha256
                    .entry((helpdesk_id, sha256))
                    .or_insert(prior);
            }
        }
        Ok(index)
    }

    /// What the ledger holds of `mail` in the helpdesk.
    pub(crate) fn facts(&self, helpdesk_id: HelpdeskId, mail: &IncomingMail) -> LedgerFacts {
        LedgerFacts {
            same_bytes: self
                .by_sha256
                .get(&(helpdesk_id, mail.sha256.clone()))
                .copied(),
            message_id_taken_by: mail
                .mail
                .message_id
                .as_ref()
                .and_then(|id| self.taken.get(&(helpdesk_id, id.clone())).copied()),
        }
    }

    /// Records the row the batch just wrote, for later mails of the same batch.
    pub(crate) fn record(
        &mut self,
        helpdesk_id: HelpdeskId,
        mail: &IncomingMail,
        row: PriorIntake,
    ) {
        self.by_sha256
            .insert((helpdesk_id, mail.sha256.clone()), row);
        if let (Some(id), Some(ticket_id)) = (&mail.mail.message_id, row.ticket_id)
            && row.outcome.made_entry()
        {
            self.taken
                .entry((helpdesk_id, id.clone()))
                .or_insert(Taken {
                    outcome: row.outcome,
                    ticket_id,
                });
        }
    }
}

/// A mail's ledger row, as the decision for it left it.
pub(crate) struct LedgerRow<'a> {
    /// The row to update instead of adding one (a retry, or a failed copy of the same bytes).
    pub retry_of: Option<IntakeId>,
    pub outcome: IntakeOutcome,
    /// The mail's classification, or `duplicate` for a copy of a Message-ID taken.
    pub classification: &'a str,
    pub ticket_id: Option<TicketId>,
    pub reason: Option<&'a str>,
}

/// Writes the ledger row of `mail` (a new one, or `retry_of` updated), returning its id.
pub(crate) fn write(
    conn: &Db,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    row: &LedgerRow<'_>,
) -> Result<IntakeId> {
    let m = &mail.mail;
    if let Some(id) = row.retry_of {
        conn.prepare_cached(
            "UPDATE intake SET outcome = ?1, classification = ?2, ticket_id = ?3, reason = ?4,
             processed_at = ?5, source = ?6, location = ?7 WHERE id = ?8",
        )?
        .execute(params![
            row.outcome.as_str(),
            row.classification,
            row.ticket_id,
            row.reason,
            now(),
            mail.source,
            mail.location,
            id
        ])?;
        return Ok(id);
    }
    if let Some(pending) = conn.pending() {
        // PostgreSQL: written behind, with its id drawn ahead.
        let id = pending.take_id(conn, Sequence::Intake)?;
        pending.push(
            Table::Intake,
            vec![
                Box::new(id),
                Box::new(hd.id),
                Box::new(mail.source),
                Box::new(mail.location.clone()),
                Box::new(m.message_id.clone()),
                Box::new(mail.sha256.clone()),
                Box::new(m.from.as_ref().map(|a| a.email_key())),
                Box::new(m.subject.clone()),
                Box::new(row.outcome.as_str()),
                Box::new(row.classification.to_string()),
                Box::new(row.ticket_id),
                Box::new(row.reason.map(str::to_string)),
                Box::new(mail.received_at),
                Box::new(now()),
                Box::new(mail.raw_size as i64),
                Box::new(mail.raw_compressed.clone()),
            ],
        );
        return Ok(IntakeId::new(id));
    }
    let inserted_id: i64 = conn.prepare_cached(
        "INSERT INTO intake (helpdesk_id, source, location, message_id, sha256, sender, subject,
             outcome, classification, ticket_id, reason, received_at, processed_at, raw_size, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING id",
    )?
    .query_row(params![
        hd.id,
        mail.source,
        mail.location,
        m.message_id,
        mail.sha256,
        m.from.as_ref().map(|a| a.email_key()),
        m.subject,
        row.outcome.as_str(),
        row.classification,
        row.ticket_id,
        row.reason,
        mail.received_at,
        now(),
        mail.raw_size as i64,
        mail.raw_compressed,
    ], |r| r.get(0))?;
    Ok(IntakeId::new(inserted_id))
}

/// The ticket that each of `message_ids` threads to through an incoming mail, by
/// helpdesk: the intake row of the mail that became a ticket or follow-up (every
/// incoming entry has one), the newest first.
pub(crate) fn tickets_of_incoming(
    conn: &Db,
    message_ids: &[&str],
) -> Result<HashMap<(HelpdeskId, String), TicketId>> {
    // The outcome is checked here, not in SQL: with it in the condition SQLite
    // chose the outcome index and read every successful row of the ledger.
    let sql = format!(
        "SELECT helpdesk_id, message_id, outcome, ticket_id FROM intake
         WHERE coalesce(message_id, sha256) IN ({}) ORDER BY id",
        placeholders(message_ids.len())
    );
    let mut tickets = HashMap::new();
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(message_ids))?;
    while let Some(row) = rows.next()? {
        let helpdesk_id: Option<HelpdeskId> = row.get(0)?;
        let message_id: Option<String> = row.get(1)?;
        let outcome: IntakeOutcome = row.get(2)?;
        let ticket_id: Option<TicketId> = row.get(3)?;
        if let (Some(helpdesk_id), Some(message_id), Some(ticket_id)) =
            (helpdesk_id, message_id, ticket_id)
            && outcome.made_entry()
        {
            tickets.insert((helpdesk_id, message_id), ticket_id);
        }
    }
    Ok(tickets)
}
