//! Rows written behind: intake's batches on PostgreSQL keep the rows of their mails
//! (ledger rows, tickets, entries, attachments, participants, and the follow-ups'
//! ticket changes) here and send them a table at a time (COPY, or a multi-row INSERT
//! where rows may exist already), instead of one statement (one network round trip)
//! per row (issue 15).
//!
//! Nothing can read or write past them: the engine's handle ([`crate::engine::Db`])
//! sends them before any other statement, so a query, a change by the rules, a
//! notification or the commit always finds them in the database. A batch thus keeps
//! them only while nothing else runs, which is the whole of a mail on intake's path.
//! Rows need their ids before they are sent (a report names its ledger row, an entry
//! its ticket): those are drawn from the tables' sequences, many in one query.
//!
//! SQLite writes each row as it comes (a statement there is a call inside the
//! process), so its batches have no buffer; the table modules put the two forms side
//! by side. The batch's search documents are rebuilt when it commits, on both engines
//! (`ingest::Batch::commit`), after the rows they are made of were sent.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use postdesk_core::id::{AgentId, HelpdeskId, TicketId, TicketNumber};

use crate::Result;
use crate::engine::{Db, Param, params};

/// Tables written behind, in the order they are sent: each after the ones its rows
/// refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Contacts,
    ContactAddresses,
    Tickets,
    Intake,
    Entries,
    Attachments,
    Participants,
}

impl Table {
    const ALL: [Table; 7] = [
        Table::Contacts,
        Table::ContactAddresses,
        Table::Tickets,
        Table::Intake,
        Table::Entries,
        Table::Attachments,
        Table::Participants,
    ];

    /// The table and its columns, their number, and for a table whose rows may be there
    /// already, what an INSERT of them adds after its VALUES (tables without are sent
    /// by COPY, see [`insert_rows`]).
    fn statement(self) -> (&'static str, usize, &'static str) {
        match self {
            Table::Contacts => (
                "contacts (id, name, organization_id, created_at)",
                4,
                "",
            ),
            Table::ContactAddresses => (
                "contact_addresses (address, contact_id)",
                2,
                "",
            ),
            Table::Tickets => (
                "tickets (id, helpdesk_id, number, title, mail_subject, requester_id,
                     organization_id, channel, status, priority, ticket_type, environment, manager_id,
                     assignee_id, reported_at, created_at, created_by, modified_at, modified_by)",
                19,
                "",
            ),
            Table::Intake => (
                "intake (id, helpdesk_id, source, location, message_id, sha256, sender,
                     subject, outcome, classification, ticket_id, reason, received_at, processed_at,
                     raw_size, raw)",
                16,
                "",
            ),
            Table::Entries => (
                "entries (id, ticket_id, kind, author_agent_id, author_contact_id, from_addr,
                     to_addrs, cc_addrs, subject, body_text, body_full, body_html, message_id,
                     in_reply_to, refs, classification, warnings, visible_to_customer, intake_id,
                     created_at, detected_charset, sender_source, class_signal)",
                23,
                "",
            ),
            Table::Attachments => (
                "attachments (entry_id, sha256, original_name, safe_name, mime_type, size,
                     content_id, inline, refused)",
                9,
                "",
            ),
            Table::Participants => (
                "ticket_participants (ticket_id, address)",
                2,
                " ON CONFLICT DO NOTHING",
            ),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Tables whose ids a batch draws ahead from their sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Sequence {
    Contacts,
    Intake,
    Tickets,
    Entries,
}

impl Sequence {
    fn table(self) -> &'static str {
        match self {
            Sequence::Contacts => "contacts",
            Sequence::Intake => "intake",
            Sequence::Tickets => "tickets",
            Sequence::Entries => "entries",
        }
    }

    /// How many ids to draw at once for a batch of `mails`: about as many as it
    /// will use (ids drawn and not used are gaps, harmless but untidy).
    fn draw(self, mails: usize) -> usize {
        match self {
            // Most senders are known: a new contact for one mail in ten or so.
            Sequence::Contacts => mails / 8 + 1,
            _ => mails,
        }
    }
}

/// A value of a buffered row, owned until it is sent.
pub(crate) type Value = Box<dyn Param>;

/// A follow-up's change to its ticket: the status (when it changes) and who changed
/// it last, when.
pub(crate) struct TicketChange {
    pub ticket_id: TicketId,
    pub status: Option<String>,
    pub at: i64,
    pub by: AgentId,
}

/// PostgreSQL takes at most 65,535 parameters per statement.
const MAX_PARAMETERS: usize = 65_535;

/// The buffer of one writer (see the module documentation). Active only inside one
/// of intake's transactions on PostgreSQL.
#[derive(Default)]
pub(crate) struct Pending {
    active: Cell<bool>,
    dirty: Cell<bool>,
    /// Ids drawn per batch and table: the batch's mails.
    reserve: Cell<usize>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// Per [`Table`], its rows' values one after the other.
    rows: [Vec<Value>; 7],
    changes: Vec<TicketChange>,
    /// Ids drawn and not yet used, per sequence, the next last.
    ids: HashMap<Sequence, Vec<i64>>,
    /// The next ticket number per helpdesk, once read in this batch.
    numbers: HashMap<HelpdeskId, TicketNumber>,
}

impl Pending {
    /// Starts buffering for a batch of `mails`.
    pub(crate) fn activate(&self, mails: usize) {
        self.active.set(true);
        self.reserve.set(mails.max(1));
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.get()
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.get()
    }

    /// Ends the batch: whatever is left is dropped (sent by the commit already, or
    /// rolled back with it).
    pub(crate) fn finish(&self) {
        self.active.set(false);
        self.discard();
        let mut state = self.state.borrow_mut();
        state.ids.clear();
        state.numbers.clear();
    }

    /// Drops the rows not yet sent (a mail's savepoint rolled back). Ticket numbers
    /// are read again, so that none is skipped; ids drawn stay drawn.
    pub(crate) fn discard(&self) {
        let mut state = self.state.borrow_mut();
        state.rows.iter_mut().for_each(Vec::clear);
        state.changes.clear();
        state.numbers.clear();
        self.dirty.set(false);
    }

    /// Adds a row to `table`: its values in the order of [`Table::statement`]'s columns.
    pub(crate) fn push(&self, table: Table, values: Vec<Value>) {
        debug_assert_eq!(values.len(), table.statement().1);
        self.state.borrow_mut().rows[table.index()].extend(values);
        self.dirty.set(true);
    }

    /// A follow-up's change to its ticket, sent after the rows.
    pub(crate) fn change_ticket(&self, change: TicketChange) {
        self.state.borrow_mut().changes.push(change);
        self.dirty.set(true);
    }

    /// The next id of `sequence`'s table, drawn ahead for the batch when none is left.
    pub(crate) fn take_id(&self, conn: &Db, sequence: Sequence) -> Result<i64> {
        let mut state = self.state.borrow_mut();
        let ids = state.ids.entry(sequence).or_default();
        if ids.is_empty() {
            let count = sequence.draw(self.reserve.get()) as i64;
            // Directly: drawing ids reads none of the rows waiting here.
            let drawn: Vec<i64> = conn
                .direct()
                .prepare_cached(
                    "SELECT nextval(pg_get_serial_sequence(?1, 'id'))
                     FROM generate_series(1, CAST(?2 AS BIGINT))",
                )?
                .query_map(params![sequence.table(), count], |r| r.get(0))?
                .collect::<Result<_>>()?;
            ids.extend(drawn.into_iter().rev());
        }
        ids.pop()
            .ok_or_else(|| crate::StoreError::Invalid("no id drawn from the sequence".into()))
    }

    /// The number the next new ticket of `helpdesk` gets: read once per batch (after
    /// the rows before it are sent), then counted here.
    pub(crate) fn next_number(
        &self,
        helpdesk: HelpdeskId,
        read: impl FnOnce() -> Result<TicketNumber>,
    ) -> Result<TicketNumber> {
        let known = self.state.borrow().numbers.get(&helpdesk).copied();
        let number = match known {
            Some(n) => n,
            None => read()?,
        };
        self.state
            .borrow_mut()
            .numbers
            .insert(helpdesk, TicketNumber::new(number.get() + 1));
        Ok(number)
    }

    /// Sends everything buffered on `conn` (a handle without this buffer): each table's
    /// rows in as few statements as PostgreSQL's parameter limit allows, then the
    /// tickets' changes in one.
    pub(crate) fn flush(&self, conn: &Db) -> Result<()> {
        let state = {
            let mut state = self.state.borrow_mut();
            self.dirty.set(false);
            State {
                rows: std::mem::take(&mut state.rows),
                changes: std::mem::take(&mut state.changes),
                ..State::default()
            }
        };
        for table in Table::ALL {
            insert_rows(conn, table, &state.rows[table.index()])?;
        }
        change_tickets(conn, state.changes)
    }
}

/// The rows of one table: by COPY (binary), or, for a table whose rows may be there
/// already (`ON CONFLICT`, which COPY lacks), one multi-row INSERT per chunk of rows.
///
/// COPY was taken for the others because the server's CPU, not round trips, bounds
/// intake on PostgreSQL (issue 15): a multi-row INSERT's text differs with its number of
/// rows, so each was parsed and planned for its one use (planning its thousands of
/// parameters was a tenth of the server's CPU in the import bench), and its rows were
/// stored one at a time; COPY is never planned and stores many rows per page and per
/// write-ahead-log record.
fn insert_rows(conn: &Db, table: Table, values: &[Value]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let (target, columns, tail) = table.statement();
    if tail.is_empty() {
        let values: Vec<&dyn Param> = values.iter().map(|v| v.as_ref()).collect();
        return conn.copy_in(target, &values);
    }
    let per_statement = MAX_PARAMETERS / columns;
    for chunk in values.chunks(per_statement * columns) {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let rows = vec![row.as_str(); chunk.len() / columns].join(", ");
        let sql = format!("INSERT INTO {target} VALUES {rows}{tail}");
        let values: Vec<&dyn Param> = chunk.iter().map(|v| v.as_ref()).collect();
        // Prepared for this use: the texts differ with the number of rows.
        conn.prepare(&sql)?.execute(values.as_slice())?;
    }
    Ok(())
}

/// The follow-ups' changes, one per ticket (the last time and agent, the last status
/// set), in one UPDATE.
fn change_tickets(conn: &Db, changes: Vec<TicketChange>) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut merged: Vec<TicketChange> = Vec::new();
    for change in changes {
        match merged.iter_mut().find(|c| c.ticket_id == change.ticket_id) {
            Some(c) => {
                c.at = change.at;
                c.by = change.by;
                if change.status.is_some() {
                    c.status = change.status;
                }
            }
            None => merged.push(change),
        }
    }
    for chunk in merged.chunks(MAX_PARAMETERS / 4) {
        let rows = vec![
            "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))";
            chunk.len()
        ]
        .join(", ");
        let sql = format!(
            "UPDATE tickets AS t SET status = COALESCE(v.status, t.status), modified_at = v.at,
                 modified_by = v.agent
             FROM (VALUES {rows}) AS v (id, status, at, agent) WHERE t.id = v.id"
        );
        let mut values: Vec<&dyn Param> = Vec::with_capacity(chunk.len() * 4);
        for c in chunk {
            values.extend_from_slice(params![c.ticket_id, c.status, c.at, c.by]);
        }
        conn.prepare(&sql)?.execute(values.as_slice())?;
    }
    Ok(())
}
