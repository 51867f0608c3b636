//! The `ticket_deadlines` and `deadline_timers` tables: each ticket's deadline per
//! target, kept as core's [`Sla::plan`] decides it, and the escalation timers of each
//! deadline (a warning and a breach), re-armed whenever the deadline moves.
//!
//! Everything here runs inside the caller's transaction (a mail's intake, an agent's
//! change, the timer runner's pass), so a deadline and its timers change together with
//! what moved them. A timer is one row per (ticket, target, kind, due time): UNIQUE, so
//! that it is sent once however often its deadline moves away and back. Due timers are
//! claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL (several `serve` instances pass
//! over each other's) and under SQLite's write lock there, in the transaction that
//! queues their mail and marks them sent.

use postdesk_core::id::{AgentId, HelpdeskId, TicketId, TicketNumber};
use postdesk_core::sla::{Deadline, Happened, Sla, Target, TicketFacts, TimerKind};
use postdesk_mail::Classification;

use crate::engine::{Db, Dialect, OptionalExtension, Row, params};
use crate::sql::id_list;
use crate::{IncomingMail, IngestReport, Outcome, RegisteredHelpdesk, Result, Store, Tx, now};

/// A ticket's fields that deadlines look at, as stored.
#[derive(Debug, Clone)]
struct Facts {
    helpdesk_id: HelpdeskId,
    status: String,
    priority: Option<String>,
    ticket_type: Option<String>,
    organization: Option<String>,
}

fn facts(conn: &Db, ticket_id: TicketId) -> Result<Option<Facts>> {
    conn.prepare_cached(
        "SELECT t.helpdesk_id, t.status, t.priority, t.ticket_type, o.name FROM tickets t
         LEFT JOIN organizations o ON o.id = t.organization_id WHERE t.id = ?1",
    )?
    .query_row([ticket_id], |r| {
        Ok(Facts {
            helpdesk_id: r.get(0)?,
            status: r.get(1)?,
            priority: r.get(2)?,
            ticket_type: r.get(3)?,
            organization: r.get(4)?,
        })
    })
    .optional()
}

pub(crate) const DEADLINE_COLUMNS: &str =
    "target, policy, started_at, due_at, paused_since, paused_left, met_at,
    stopped_at, by_hand";

pub(crate) fn deadline(r: &Row<'_>) -> Result<Deadline> {
    Ok(Deadline {
        target: r.get(0)?,
        policy: r.get(1)?,
        started_at: r.get(2)?,
        due_at: r.get(3)?,
        paused_since: r.get(4)?,
        paused_left: r.get(5)?,
        met_at: r.get(6)?,
        stopped_at: r.get(7)?,
        by_hand: r.get(8)?,
    })
}

/// See [`Store::next_due`].
pub(crate) fn next_due(conn: &Db, tickets: &[TicketId]) -> Result<Vec<(TicketId, NextDue)>> {
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT d.ticket_id, d.target, d.due_at FROM ticket_deadlines d
         WHERE d.ticket_id IN {} AND {RUNNING} ORDER BY d.ticket_id, d.due_at",
        id_list(tickets)
    );
    let rows: Vec<(TicketId, Target, i64)> = conn
        .prepare(&sql)?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_>>()?;
    let mut out: Vec<(TicketId, NextDue)> = Vec::new();
    for (ticket, target, due_at) in rows {
        if out.last().is_none_or(|(t, _)| *t != ticket) {
            out.push((ticket, NextDue { target, due_at }));
        }
    }
    Ok(out)
}

/// A ticket's deadlines, first response first (see [`Store::deadlines`]).
pub(crate) fn of_ticket(conn: &Db, ticket_id: TicketId) -> Result<Vec<Deadline>> {
    let mut list = load(conn, ticket_id)?;
    list.sort_by_key(|d| Target::ALL.iter().position(|t| *t == d.target));
    Ok(list)
}

fn load(conn: &Db, ticket_id: TicketId) -> Result<Vec<Deadline>> {
    conn.prepare_cached(&format!(
        "SELECT {DEADLINE_COLUMNS} FROM ticket_deadlines WHERE ticket_id = ?1 ORDER BY id"
    ))?
    .query_map([ticket_id], deadline)?
    .collect()
}

/// Writes the deadlines that changed and brings their timers in line: pending timers
/// of a deadline that moved (or was met, stopped or paused) are cancelled, and the
/// ones it needs now are added, or revived when they were cancelled before (never
/// when they were sent: each is sent once).
fn save(
    conn: &Db,
    sla: &Sla,
    ticket_id: TicketId,
    old: &[Deadline],
    new: &[Deadline],
) -> Result<()> {
    for d in new {
        if old.iter().any(|o| o == d) {
            continue;
        }
        conn.prepare_cached(
            "INSERT INTO ticket_deadlines (ticket_id, target, policy, started_at, due_at, paused_since,
                 paused_left, met_at, stopped_at, by_hand)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (ticket_id, target) DO UPDATE SET policy = excluded.policy,
                 started_at = excluded.started_at, due_at = excluded.due_at,
                 paused_since = excluded.paused_since, paused_left = excluded.paused_left,
                 met_at = excluded.met_at, stopped_at = excluded.stopped_at, by_hand = excluded.by_hand",
        )?
        .execute(params![
            ticket_id,
            d.target,
            d.policy,
            d.started_at,
            d.due_at,
            d.paused_since,
            d.paused_left,
            d.met_at,
            d.stopped_at,
            d.by_hand,
        ])?;
        let wanted = sla.timers(d);
        // Pending timers of another due time, or of a deadline that needs none now.
        conn.prepare_cached(
            "UPDATE deadline_timers SET status = 'cancelled'
             WHERE ticket_id = ?1 AND target = ?2 AND status = 'pending' AND (due_at <> ?3 OR ?4)",
        )?
        .execute(params![ticket_id, d.target, d.due_at, wanted.is_empty()])?;
        for (kind, fire_at) in wanted {
            conn.prepare_cached(
                "INSERT INTO deadline_timers (ticket_id, target, kind, due_at, fire_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending')
                 ON CONFLICT (ticket_id, target, kind, due_at) DO UPDATE
                     SET status = 'pending', fire_at = excluded.fire_at
                     WHERE deadline_timers.status = 'cancelled'",
            )?
            .execute(params![ticket_id, d.target, kind, d.due_at, fire_at])?;
        }
    }
    Ok(())
}

/// The helpdesk of `helpdesks` a ticket is in, with its deadlines' settings.
fn helpdesk_of(
    helpdesks: &[RegisteredHelpdesk],
    id: HelpdeskId,
) -> Option<(&RegisteredHelpdesk, &Sla)> {
    let hd = helpdesks.iter().find(|h| h.id == id)?;
    Some((hd, hd.config.sla.as_ref()?))
}

/// Decides and stores a ticket's deadlines after `happened` at `at`, in the caller's
/// transaction; returns them. Nothing for a ticket whose helpdesk has no `[helpdesk.sla]`.
pub fn apply(
    tx: Tx<'_>,
    helpdesks: &[RegisteredHelpdesk],
    ticket_id: TicketId,
    happened: Happened,
    at: i64,
) -> Result<Vec<Deadline>> {
    let conn = tx.conn();
    let Some(facts) = facts(&conn, ticket_id)? else {
        return Ok(Vec::new());
    };
    let Some((hd, sla)) = helpdesk_of(helpdesks, facts.helpdesk_id) else {
        return Ok(Vec::new());
    };
    let current = load(&conn, ticket_id)?;
    let ticket = TicketFacts {
        status: &facts.status,
        priority: facts.priority.as_deref(),
        ticket_type: facts.ticket_type.as_deref(),
        organization: facts.organization.as_deref(),
        closed: hd.config.is_closed(&facts.status),
    };
    let planned = sla.plan(&ticket, &current, happened, at);
    save(&conn, sla, ticket_id, &current, &planned)?;
    Ok(planned)
}

/// After a mail was applied (inside its transaction): a new ticket gets its deadlines,
/// a customer's follow-up those it starts or moves, and the status it set moves the
/// clock. Auto-replies and bounces change nothing.
pub fn on_ingested(
    tx: Tx<'_>,
    helpdesks: &[RegisteredHelpdesk],
    mail: &IncomingMail,
    report: &IngestReport,
) -> Result<()> {
    let Some(ticket_id) = report.ticket_id else {
        return Ok(());
    };
    // Intake's writer is its narrowest stage: no query at all without deadlines.
    if helpdesks.iter().all(|h| h.config.sla.is_none()) {
        return Ok(());
    }
    let happened = match report.outcome {
        Outcome::Created => Happened::Created,
        Outcome::Appended if mail.classification == Classification::Normal => {
            Happened::CustomerEntry
        }
        _ => return Ok(()),
    };
    apply(tx, helpdesks, ticket_id, happened, now())?;
    Ok(())
}

/// An agent sets a target's deadline by hand: stored, its timers re-armed, and the
/// change recorded as an event on the ticket. Returns the event's text.
pub fn set_by_hand(
    tx: Tx<'_>,
    helpdesks: &[RegisteredHelpdesk],
    ticket_id: TicketId,
    agent_id: AgentId,
    target: Target,
    due_at: i64,
) -> Result<String> {
    let conn = tx.conn();
    let at = now();
    let before = load(&conn, ticket_id)?;
    apply(
        tx,
        helpdesks,
        ticket_id,
        Happened::SetByHand { target, due_at },
        at,
    )?;
    let agent: String = conn
        .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
        .query_row([agent_id], |r| r.get(0))?;
    let was = before
        .iter()
        .find(|d| d.target == target)
        .map(|d| postdesk_core::time::format_time(d.due_at))
        .unwrap_or_else(|| "none".into());
    let text = format!(
        "{} deadline set from {was} to {} by {agent}.",
        target.label(),
        postdesk_core::time::format_time(due_at)
    );
    crate::entries::insert_event(&conn, ticket_id, Some(agent_id), &text, at)?;
    crate::tickets::touch(&conn, ticket_id, agent_id, at)?;
    Ok(text)
}

/// The first agent reply on a ticket at or after `since`, if any.
pub fn first_reply_since(tx: Tx<'_>, ticket_id: TicketId, since: i64) -> Result<Option<i64>> {
    tx.conn()
        .prepare_cached(
            "SELECT MIN(created_at) FROM entries WHERE ticket_id = ?1 AND kind = 'outgoing'
             AND created_at >= ?2",
        )?
        .query_row(params![ticket_id, since], |r| r.get(0))
}

/// A due timer, claimed in the caller's transaction.
#[derive(Debug, Clone)]
pub struct DueTimer {
    pub id: i64,
    pub ticket_id: TicketId,
    pub target: Target,
    pub kind: TimerKind,
    pub due_at: i64,
    pub fire_at: i64,
}

/// The pending timers due at `now` (up to `limit`), locked for this transaction. One
/// dialect difference: PostgreSQL's row locks that other instances skip; SQLite's
/// transaction already holds the write lock.
macro_rules! due_timers {
    ($lock:literal) => {
        concat!(
            "SELECT id, ticket_id, target, kind, due_at, fire_at FROM deadline_timers
             WHERE status = 'pending' AND fire_at <= ?1 ORDER BY fire_at, id LIMIT ?2",
            $lock
        )
    };
}

pub fn claim_due(tx: Tx<'_>, now: i64, limit: i64) -> Result<Vec<DueTimer>> {
    let conn = tx.conn();
    conn.prepare_cached(match conn.dialect() {
        Dialect::Sqlite => due_timers!(""),
        Dialect::Postgres => due_timers!(" FOR UPDATE SKIP LOCKED"),
    })?
    .query_map(params![now, limit], |r| {
        Ok(DueTimer {
            id: r.get(0)?,
            ticket_id: r.get(1)?,
            target: r.get(2)?,
            kind: r.get(3)?,
            due_at: r.get(4)?,
            fire_at: r.get(5)?,
        })
    })?
    .collect()
}

/// The deadline a timer is for, when it still stands as the timer knows it (the same
/// due time, open, running): otherwise the timer has nothing to say.
pub fn timer_deadline(tx: Tx<'_>, timer: &DueTimer) -> Result<Option<Deadline>> {
    let d = tx
        .conn()
        .prepare_cached(&format!(
            "SELECT {DEADLINE_COLUMNS} FROM ticket_deadlines WHERE ticket_id = ?1 AND target = ?2"
        ))?
        .query_row(params![timer.ticket_id, timer.target], deadline)
        .optional()?;
    Ok(d.filter(|d| d.due_at == timer.due_at && d.is_open() && d.paused_since.is_none()))
}

/// Marks a claimed timer done: `sent` with the mail it queued (if any), or `cancelled`
/// when its deadline no longer stands.
pub fn finish_timer(
    tx: Tx<'_>,
    id: i64,
    sent: bool,
    outbox_id: Option<postdesk_core::id::OutboxId>,
) -> Result<()> {
    tx.conn()
        .prepare_cached(
            "UPDATE deadline_timers SET status = ?1, outbox_id = ?2, fired_at = ?3 WHERE id = ?4",
        )?
        .execute(params![
            if sent { "sent" } else { "cancelled" },
            outbox_id,
            now(),
            id
        ])?;
    Ok(())
}

/// A ticket's earliest running deadline, for lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NextDue {
    pub target: Target,
    pub due_at: i64,
}

/// A timer as `deadlines` tests and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRow {
    pub target: Target,
    pub kind: TimerKind,
    pub due_at: i64,
    pub fire_at: i64,
    pub status: String,
    pub outbox_id: Option<postdesk_core::id::OutboxId>,
}

/// Running (open, not paused) deadlines, the SQL condition on `d` shared by lists.
pub(crate) const RUNNING: &str =
    "d.met_at IS NULL AND d.stopped_at IS NULL AND d.paused_since IS NULL";

/// The ticket list's "due" column: the earliest running deadline's due time, or the
/// largest number for tickets without one, so they sort last.
pub(crate) fn due_sort_column() -> String {
    format!(
        "COALESCE((SELECT MIN(d.due_at) FROM ticket_deadlines d WHERE d.ticket_id = t.id AND {RUNNING}), 9223372036854775807)"
    )
}

/// The ticket list's due filters, as a condition on `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueFilter {
    /// A running deadline has passed.
    Overdue,
    /// A running deadline falls between now and `until` (the end of the day).
    DueBy { until: i64 },
}

impl DueFilter {
    pub(crate) fn condition(self, now: i64) -> String {
        // Numbers the server computed, not user input: written into the SQL.
        let range = match self {
            Self::Overdue => format!("d.due_at < {now}"),
            Self::DueBy { until } => format!("d.due_at >= {now} AND d.due_at < {until}"),
        };
        format!(
            "EXISTS (SELECT 1 FROM ticket_deadlines d WHERE d.ticket_id = t.id AND {RUNNING} AND {range})"
        )
    }
}

impl Store {
    /// A ticket's deadlines, first response first.
    pub async fn deadlines(&self, ticket_id: TicketId) -> Result<Vec<Deadline>> {
        self.read(move |conn| of_ticket(conn, ticket_id)).await
    }

    /// The earliest running deadline of each of `tickets` that has one.
    pub async fn next_due(&self, tickets: &[TicketId]) -> Result<Vec<(TicketId, NextDue)>> {
        let tickets = tickets.to_vec();
        self.read(move |conn| next_due(conn, &tickets)).await
    }

    /// A ticket's escalation timers, in the order they fire.
    pub async fn deadline_timers(&self, ticket_id: TicketId) -> Result<Vec<TimerRow>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT target, kind, due_at, fire_at, status, outbox_id FROM deadline_timers
                 WHERE ticket_id = ?1 ORDER BY fire_at, id",
            )?
            .query_map([ticket_id], |r| {
                Ok(TimerRow {
                    target: r.get(0)?,
                    kind: r.get(1)?,
                    due_at: r.get(2)?,
                    fire_at: r.get(3)?,
                    status: r.get(4)?,
                    outbox_id: r.get(5)?,
                })
            })?
            .collect()
        })
        .await
    }
}

/// What an escalation mail says about its ticket, and who may hear of it.
#[derive(Debug, Clone)]
pub struct EscalationTicket {
    pub helpdesk_id: HelpdeskId,
    pub number: TicketNumber,
    pub title: String,
    pub status: String,
    /// Name and address.
    pub assignee: Option<(String, Option<String>)>,
    pub manager: Option<(String, Option<String>)>,
}

pub fn escalation_ticket(tx: Tx<'_>, ticket_id: TicketId) -> Result<Option<EscalationTicket>> {
    tx.conn()
        .prepare_cached(
            "SELECT t.helpdesk_id, t.number, t.title, t.status, a.name, a.email, m.name, m.email
             FROM tickets t LEFT JOIN agents a ON a.id = t.assignee_id
             LEFT JOIN agents m ON m.id = t.manager_id WHERE t.id = ?1",
        )?
        .query_row([ticket_id], |r| {
            let agent = |name: Option<String>, email: Option<String>| name.map(|n| (n, email));
            Ok(EscalationTicket {
                helpdesk_id: r.get(0)?,
                number: r.get(1)?,
                title: r.get(2)?,
                status: r.get(3)?,
                assignee: agent(r.get(4)?, r.get(5)?),
                manager: agent(r.get(6)?, r.get(7)?),
            })
        })
        .optional()
}

/// Records what an escalation did on its ticket, as an internal event.
pub fn record_escalation(tx: Tx<'_>, ticket_id: TicketId, text: &str) -> Result<()> {
    crate::entries::insert_event(&tx.conn(), ticket_id, None, text, now())?;
    Ok(())
}
