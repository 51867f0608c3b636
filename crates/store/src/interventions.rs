//! The `interventions` table: work on site or in the workshop linked to a ticket, with
//! its assignee, planned start and end, status, time spent and report; and the ticket
//! status change an intervention causes (closing or reopening, decided by core's
//! `intervention` module), recorded as an event naming the intervention. Writes take
//! the caller's transaction, so an intervention and what it does to its ticket commit
//! together.

use postdesk_core::id::{AgentId, HelpdeskId, InterventionId, TicketId, TicketNumber};
use postdesk_core::intervention::InterventionStatus;

use crate::engine::{Db, OptionalExtension, Row, params};
use crate::sql::id_list;
use crate::{Result, Store, StoreError, Tx, entries, now, tickets};

/// An intervention with its ticket, as lists and pages show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InterventionRow {
    pub id: InterventionId,
    pub ticket_id: TicketId,
    #[serde(skip)]
    pub helpdesk_id: HelpdeskId,
    pub helpdesk: String,
    pub ticket_number: TicketNumber,
    pub ticket_title: String,
    /// Agent name.
    pub assignee: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub status: InterventionStatus,
    pub minutes_spent: i64,
    pub text: String,
    pub report: String,
    pub created_at: i64,
    pub modified_at: i64,
}

const ROW_SELECT: &str = "SELECT i.id, i.ticket_id, t.helpdesk_id, h.name, t.number, t.title, a.name,
        i.planned_start, i.planned_end, i.status, i.minutes_spent, i.text, i.report, i.created_at,
        i.modified_at
    FROM interventions i JOIN tickets t ON t.id = i.ticket_id JOIN helpdesks h ON h.id = t.helpdesk_id
    LEFT JOIN agents a ON a.id = i.assignee_id";

fn row(r: &Row<'_>) -> Result<InterventionRow> {
    Ok(InterventionRow {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        helpdesk_id: r.get(2)?,
        helpdesk: r.get(3)?,
        ticket_number: r.get(4)?,
        ticket_title: r.get(5)?,
        assignee: r.get(6)?,
        planned_start: r.get(7)?,
        planned_end: r.get(8)?,
        status: r.get(9)?,
        minutes_spent: r.get(10)?,
        text: r.get(11)?,
        report: r.get(12)?,
        created_at: r.get(13)?,
        modified_at: r.get(14)?,
    })
}

fn get(conn: &Db, id: InterventionId) -> Result<InterventionRow> {
    conn.prepare_cached(&format!("{ROW_SELECT} WHERE i.id = ?1"))?
        .query_row([id], row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no intervention {id}")))
}

/// The active agent named `name`.
fn agent_named(conn: &Db, name: &str) -> Result<AgentId> {
    conn.prepare_cached("SELECT id FROM agents WHERE name = ?1 AND active")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no agent named `{name}`")))
}

fn agent_name(conn: &Db, id: AgentId) -> Result<String> {
    conn.prepare_cached("SELECT name FROM agents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

/// What a template fills in about a ticket: its number, when it was opened (as its
/// page shows it: the first mail's date), description (the first customer mail's
/// text) and mail subject.
#[derive(Debug, Clone)]
pub struct TicketText {
    pub helpdesk_id: HelpdeskId,
    pub number: TicketNumber,
    /// Unix seconds.
    pub opened_at: i64,
    pub description: String,
    pub subject: String,
}

/// What a new intervention's text of the ticket is made of.
pub(crate) fn ticket_text(conn: &Db, ticket_id: TicketId) -> Result<TicketText> {
    let (helpdesk_id, number, opened_at, subject): (HelpdeskId, TicketNumber, i64, String) = conn
        .prepare_cached(
            "SELECT helpdesk_id, number, reported_at, mail_subject FROM tickets WHERE id = ?1",
        )?
        .query_row([ticket_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no ticket with id {ticket_id}")))?;
    let description: Option<String> = conn
        .prepare_cached(
            "SELECT body_text FROM entries WHERE ticket_id = ?1 AND kind = 'incoming'
             ORDER BY id LIMIT 1",
        )?
        .query_row([ticket_id], |r| r.get(0))
        .optional()?;
    Ok(TicketText {
        helpdesk_id,
        number,
        opened_at,
        description: description.unwrap_or_default(),
        subject,
    })
}

/// A new intervention.
#[derive(Debug, Clone)]
pub struct NewIntervention {
    pub ticket_id: TicketId,
    /// Agent name.
    pub assignee: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub text: String,
    pub created_by: AgentId,
}

/// Adds an intervention (planned) and records it on its ticket.
pub fn add(tx: Tx<'_>, new: &NewIntervention) -> Result<InterventionRow> {
    let conn = tx.conn();
    check_plan(new.planned_start, new.planned_end)?;
    let assignee = new
        .assignee
        .as_deref()
        .map(|name| agent_named(&conn, name))
        .transpose()?;
    let at = now();
    let id: InterventionId = conn
        .prepare_cached(
            "INSERT INTO interventions (ticket_id, assignee_id, planned_start, planned_end, status,
                 text, created_at, created_by, modified_at)
             VALUES (?1, ?2, ?3, ?4, 'planned', ?5, ?6, ?7, ?6) RETURNING id",
        )?
        .query_row(
            params![
                new.ticket_id,
                assignee,
                new.planned_start,
                new.planned_end,
                new.text,
                at,
                new.created_by
            ],
            |r| r.get(0),
        )?;
    let by = agent_name(&conn, new.created_by)?;
    let for_whom = new
        .assignee
        .as_deref()
        .map(|a| format!(" for {a}"))
        .unwrap_or_default();
    entries::insert_event(
        &conn,
        new.ticket_id,
        Some(new.created_by),
        &format!("Intervention {id} planned{for_whom} by {by}."),
        at,
    )?;
    tickets::touch(&conn, new.ticket_id, new.created_by, at)?;
    get(&conn, id)
}

fn check_plan(start: Option<i64>, end: Option<i64>) -> Result<()> {
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(StoreError::Invalid(
            "the planned end is before the planned start".into(),
        ));
    }
    Ok(())
}

/// A change to an intervention; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InterventionChange {
    pub status: Option<InterventionStatus>,
    /// Agent name; `Some(None)` clears it.
    pub assignee: Option<Option<String>>,
    pub planned_start: Option<Option<i64>>,
    pub planned_end: Option<Option<i64>>,
    pub minutes_spent: Option<i64>,
    pub report: Option<String>,
}

/// Applies `change` as `agent_id`; the intervention before and after. A change of
/// status is recorded on the ticket.
pub fn change(
    tx: Tx<'_>,
    id: InterventionId,
    agent_id: AgentId,
    change: &InterventionChange,
) -> Result<(InterventionRow, InterventionRow)> {
    let conn = tx.conn();
    let old = get(&conn, id)?;
    if let Some(m) = change.minutes_spent
        && !(0..=1_000_000).contains(&m)
    {
        return Err(StoreError::Invalid(
            "the time spent must be 0 to 1000000 minutes".into(),
        ));
    }
    let start = change.planned_start.unwrap_or(old.planned_start);
    let end = change.planned_end.unwrap_or(old.planned_end);
    check_plan(start, end)?;
    let assignee = match &change.assignee {
        Some(Some(name)) => Some(agent_named(&conn, name)?),
        Some(None) => None,
        None => match &old.assignee {
            Some(name) => Some(agent_named(&conn, name)?),
            None => None,
        },
    };
    let status = change.status.unwrap_or(old.status);
    let at = now();
    conn.prepare_cached(
        "UPDATE interventions SET status = ?1, assignee_id = ?2, planned_start = ?3, planned_end = ?4,
             minutes_spent = ?5, report = ?6, modified_at = ?7 WHERE id = ?8",
    )?
    .execute(params![
        status,
        assignee,
        start,
        end,
        change.minutes_spent.unwrap_or(old.minutes_spent),
        change.report.clone().unwrap_or_else(|| old.report.clone()),
        at,
        id
    ])?;
    if status != old.status {
        let by = agent_name(&conn, agent_id)?;
        entries::insert_event(
            &conn,
            old.ticket_id,
            Some(agent_id),
            &format!(
                "Intervention {id} changed from {} to {status} by {by}.",
                old.status
            ),
            at,
        )?;
    }
    tickets::touch(&conn, old.ticket_id, agent_id, at)?;
    let new = get(&conn, id)?;
    Ok((old, new))
}

/// Open interventions of a ticket other than `except`.
pub fn others_open(tx: Tx<'_>, ticket_id: TicketId, except: InterventionId) -> Result<usize> {
    let n: i64 = tx
        .conn()
        .prepare_cached(
            "SELECT COUNT(*) FROM interventions WHERE ticket_id = ?1 AND id <> ?2
             AND status IN ('planned', 'in-progress')",
        )?
        .query_row(params![ticket_id, except], |r| r.get(0))?;
    Ok(n as usize)
}

/// The ticket's status.
pub fn ticket_status(tx: Tx<'_>, ticket_id: TicketId) -> Result<String> {
    tx.conn()
        .prepare_cached("SELECT status FROM tickets WHERE id = ?1")?
        .query_row([ticket_id], |r| r.get(0))
}

/// Moves the ticket to `status` because of intervention `id`, recorded as an event
/// naming it.
pub fn move_ticket(
    tx: Tx<'_>,
    ticket_id: TicketId,
    id: InterventionId,
    agent_id: AgentId,
    status: &str,
) -> Result<String> {
    let conn = tx.conn();
    let old = ticket_status(tx, ticket_id)?;
    let at = now();
    conn.prepare_cached("UPDATE tickets SET status = ?1 WHERE id = ?2")?
        .execute(params![status, ticket_id])?;
    let text = format!(
        "Status changed from {old} to {status}: intervention {id} is {}.",
        { get(&conn, id)?.status }
    );
    entries::insert_event(&conn, ticket_id, Some(agent_id), &text, at)?;
    tickets::touch(&conn, ticket_id, agent_id, at)?;
    Ok(text)
}

/// Which interventions a list shows.
#[derive(Debug, Clone, Default)]
pub struct InterventionFilter {
    /// Helpdesks the caller may see; `None`: every helpdesk (the command line).
    pub visible: Option<Vec<HelpdeskId>>,
    pub ticket_id: Option<TicketId>,
    /// Agent name.
    pub assignee: Option<String>,
    pub status: Option<InterventionStatus>,
    /// Planned to start in `[from, to)`.
    pub planned_between: Option<(i64, i64)>,
}

impl Store {
    /// Interventions `filter` finds, by planned start (unplanned last), then id.
    pub async fn interventions(&self, filter: &InterventionFilter) -> Result<Vec<InterventionRow>> {
        let filter = filter.clone();
        self.read(move |conn| list(conn, &filter)).await
    }

    /// The text a new intervention of the ticket starts from is made of (a read; see
    /// `ticket_text`).
    pub async fn intervention_ticket_text(&self, ticket_id: TicketId) -> Result<TicketText> {
        self.read(move |conn| ticket_text(conn, ticket_id)).await
    }

    /// One intervention.
    pub async fn intervention(&self, id: InterventionId) -> Result<InterventionRow> {
        self.read(move |conn| get(conn, id)).await
    }
}

/// Interventions `filter` finds (see [`Store::interventions`]).
pub(crate) fn list(conn: &Db, filter: &InterventionFilter) -> Result<Vec<InterventionRow>> {
    let visible = match &filter.visible {
        Some(ids) => format!("t.helpdesk_id IN {}", id_list(ids)),
        None => "TRUE".into(),
    };
    // A ticket's own (its page): a condition its index serves, which the `IS NULL OR`
    // form of the other filters is not.
    let ticket = match filter.ticket_id {
        Some(_) => "i.ticket_id = ?1",
        None => "CAST(?1 AS BIGINT) IS NULL",
    };
    let (from, to) = filter.planned_between.unzip();
    let sql = format!(
        "{ROW_SELECT} WHERE {visible}
           AND {ticket}
           AND (CAST(?2 AS TEXT) IS NULL OR a.name = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR i.status = ?3)
           AND (CAST(?4 AS BIGINT) IS NULL OR (i.planned_start >= ?4 AND i.planned_start < ?5))
         ORDER BY CASE WHEN i.planned_start IS NULL THEN 1 ELSE 0 END, i.planned_start, i.id
         LIMIT 1000"
    );
    conn.prepare_repeated(&sql)?
        .query_map(
            params![
                filter.ticket_id,
                filter.assignee,
                filter.status.map(|s| s.as_str()),
                from,
                to
            ],
            row,
        )?
        .collect()
}
