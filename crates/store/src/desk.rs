//! What agents do at their desk (the web UI and the REST API): find tickets, change
//! them, take notes, look after contacts, organizations and the failed queue.
//!
//! Every query that lists or opens something takes the helpdesk ids the agent may see,
//! so permissions are enforced in SQL and not left to each caller.

use crate::engine::{Db, OptionalExtension, params, params_from_iter};
use postdesk_core::id::{
    AgentId, ContactId, EntryId, HelpdeskId, IntakeId, OrganizationId, TicketId,
};

use crate::read::{SUMMARY_SELECT, TicketFilter, TicketSummary, summary};
use crate::sql::{id_list, like_pattern};
use crate::{Result, Store, StoreError, entries, now, tickets};
use postdesk_core::ticket::{FieldChanges, TicketFields};

/// How the ticket list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketSort {
    #[default]
    Updated,
    /// In the order they were opened (`tickets list`).
    Newest,
    Created,
    Number,
    Priority,
    Status,
    /// The earliest running deadline first (issue 18); tickets without one last.
    Due,
}

impl TicketSort {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "updated" => Self::Updated,
            "newest" => Self::Newest,
            "created" => Self::Created,
            "number" => Self::Number,
            "priority" => Self::Priority,
            "status" => Self::Status,
            "due" => Self::Due,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::Newest => "newest",
            Self::Created => "created",
            Self::Number => "number",
            Self::Priority => "priority",
            Self::Status => "status",
            Self::Due => "due",
        }
    }

    fn column(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Self::Updated => "t.modified_at",
            Self::Newest => "t.id",
            Self::Created => "t.reported_at",
            Self::Number => "t.number",
            // Known priorities in their natural order, others after them.
            Self::Priority => {
                "CASE lower(t.priority) WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"
            }
            Self::Status => "t.status",
            Self::Due => return crate::deadlines::due_sort_column().into(),
        })
    }
}

/// The ticket list's filters, sorting and page.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// Helpdesk ids the agent may see; nothing else is ever listed.
    pub visible: Vec<HelpdeskId>,
    pub helpdesk: Option<String>,
    pub status: Option<String>,
    /// Agent name; `-` for unassigned tickets.
    pub assignee: Option<String>,
    pub priority: Option<String>,
    /// Part of the requester's address or name.
    pub requester: Option<String>,
    /// Words that must all occur in the title, the subject or an entry's text.
    pub search: Option<String>,
    /// Deadline filters (issue 18): with the time they are judged at.
    pub due: Option<(crate::deadlines::DueFilter, i64)>,
    pub sort: TicketSort,
    pub ascending: bool,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<TicketSummary>,
    /// Tickets matching the filters, over all pages.
    pub total: i64,
    /// Per status, for the filters other than the status.
    pub status_counts: Vec<(String, i64)>,
}

/// An attachment as the download route needs it.
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub safe_name: String,
    pub mime_type: String,
    pub size: i64,
}

/// A WHERE clause with its text binds, numbered from `$1`.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    binds: Vec<String>,
}

impl Conditions {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        format!("?{}", self.binds.len())
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }
}

fn ticket_conditions(query: &TicketQuery, with_status: bool) -> Conditions {
    let mut c = Conditions::default();
    c.sql
        .push(format!("t.helpdesk_id IN {}", id_list(&query.visible)));
    if let Some(h) = query.helpdesk.clone() {
        let p = c.bind(h);
        c.sql.push(format!("h.name = {p}"));
    }
    if with_status && let Some(s) = query.status.clone() {
        let p = c.bind(s);
        c.sql.push(format!("t.status = {p}"));
    }
    match query.assignee.as_deref() {
        Some("-") => c.sql.push("t.assignee_id IS NULL".into()),
        Some(a) => {
            let p = c.bind(a.to_string());
            c.sql.push(format!("asg.name = {p}"));
        }
        None => {}
    }
    if let Some(p) = query.priority.clone() {
        let p = c.bind(p);
        c.sql.push(format!("t.priority = {p}"));
    }
    if let Some(r) = &query.requester {
        let p = c.bind(like_pattern(&r.to_lowercase()));
        c.sql.push(format!(
            "EXISTS (SELECT 1 FROM contacts rc LEFT JOIN contact_addresses ra ON ra.contact_id = rc.id
                     WHERE rc.id = t.requester_id
                       AND (ra.address LIKE {p} ESCAPE '\\' OR lower(rc.name) LIKE {p} ESCAPE '\\'))"
        ));
    }
    if let Some((due, now)) = query.due {
        c.sql.push(due.condition(now));
    }
    if let Some(search) = &query.search {
        // Each word must occur somewhere; a bounded number of words keeps the query cheap.
        // Both sides lower-cased: SQLite's LIKE ignores ASCII case, PostgreSQL's none.
        for word in search.split_whitespace().take(8) {
            let p = c.bind(like_pattern(&word.to_lowercase()));
            c.sql.push(format!(
                "(lower(t.title) LIKE {p} ESCAPE '\\' OR lower(t.mail_subject) LIKE {p} ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM entries se WHERE se.ticket_id = t.id
                             AND lower(se.body_text) LIKE {p} ESCAPE '\\'))"
            ));
        }
    }
    c
}

impl Store {
    /// One page of the tickets an agent may see, with the total and counts per status.
    pub async fn find_tickets(&self, query: &TicketQuery) -> Result<TicketPage> {
        let query = query.clone();
        self.read(move |conn| find_tickets(conn, &query, 500)).await
    }

    /// The CLI's list, through the same query as the agents' page (every helpdesk,
    /// newest first, up to `limit` tickets; 0: all), without the page's counts.
    pub async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let visible = conn
                .prepare_cached("SELECT id FROM helpdesks")?
                .query_map((), |r| r.get(0))?
                .collect::<Result<_>>()?;
            let limit = if filter.limit > 0 {
                filter.limit
            } else {
                i64::MAX
            };
            let query = TicketQuery {
                visible,
                helpdesk: filter.helpdesk,
                status: filter.status,
                requester: filter.requester,
                sort: TicketSort::Newest,
                page: 1,
                per_page: limit,
                ..TicketQuery::default()
            };
            ticket_page(conn, &query, limit)
        })
        .await
    }

    /// The helpdesk a ticket belongs to, or NotFound.
    pub async fn ticket_helpdesk(&self, ticket_id: TicketId) -> Result<HelpdeskId> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT helpdesk_id FROM tickets WHERE id = ?1")?
                .query_row([ticket_id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("there is no ticket with id {ticket_id}"))
                })
        })
        .await
    }

    /// Applies an agent's changes and records each as a system event, in one transaction.
    /// Returns the events written (empty when nothing changed). An unknown agent, or a
    /// status cleared, changes nothing and is refused.
    pub async fn update_ticket(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        update: &FieldChanges,
    ) -> Result<Vec<String>> {
        self.update_ticket_seen(ticket_id, agent_id, update, &FieldChanges::default())
            .await
    }

    /// [`Store::update_ticket`], refused with [`StoreError::Conflict`] when a field
    /// `seen` names (the value the agent's page showed, `Some(None)` for empty) holds
    /// another value now: someone changed it since, and the agent's change was made
    /// without knowing. The ticket's row is locked while it is read and written
    /// ([`tickets::lock`]), so changes from several instances never interleave.
    pub async fn update_ticket_seen(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        update: &FieldChanges,
        seen: &FieldChanges,
    ) -> Result<Vec<String>> {
        let update = update.clone();
        let seen = seen.clone();
        self.write(move |tx| {
            tickets::lock(tx, ticket_id)?;
            let old = current_fields(tx, ticket_id)?;
            check_seen(&old, &seen)?;
            let agent: String = tx
                .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
                .query_row([agent_id], |r| r.get(0))?;
            let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
            let cleaned = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
            let mut events = Vec::new();
            match &update.status {
                Some(None) => return Err(StoreError::Invalid("a status cannot be cleared".into())),
                Some(Some(status)) if old.status.as_ref() != Some(status) => {
                    tx.prepare_cached("UPDATE tickets SET status = ?1 WHERE id = ?2")?
                        .execute(params![status, ticket_id])?;
                    events.push(format!(
                        "Status changed from {} to {status} by {agent}.",
                        shown(&old.status)
                    ));
                }
                _ => {}
            }
            for (change, old, column, label) in [
                (&update.priority, &old.priority, "priority", "Priority"),
                (&update.ticket_type, &old.ticket_type, "ticket_type", "Type"),
                (&update.category, &old.category, "category", "Category"),
                (
                    &update.subcategory,
                    &old.subcategory,
                    "subcategory",
                    "Subcategory",
                ),
                (
                    &update.environment,
                    &old.environment,
                    "environment",
                    "Environment",
                ),
            ] {
                let Some(new) = change.as_ref().map(cleaned) else {
                    continue;
                };
                if *old != new {
                    tx.prepare_cached(&format!("UPDATE tickets SET {column} = ?1 WHERE id = ?2"))?
                        .execute(params![new, ticket_id])?;
                    events.push(format!(
                        "{label} changed from {} to {} by {agent}.",
                        shown(old),
                        shown(&new)
                    ));
                }
            }
            for (change, old, column, label) in [
                (&update.assignee, &old.assignee, "assignee_id", "Assignee"),
                (&update.manager, &old.manager, "manager_id", "Manager"),
            ] {
                let Some(new) = change.as_ref().map(cleaned) else {
                    continue;
                };
                if *old != new {
                    let id = new
                        .as_deref()
                        .map(|name| active_agent(tx, name))
                        .transpose()?;
                    tx.prepare_cached(&format!("UPDATE tickets SET {column} = ?1 WHERE id = ?2"))?
                        .execute(params![id, ticket_id])?;
                    events.push(format!(
                        "{label} changed from {} to {} by {agent}.",
                        shown(old),
                        shown(&new)
                    ));
                }
            }
            if let Some(tags) = &update.tags {
                let mut new: Vec<String> = Vec::new();
                for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                    if !new.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                        new.push(tag.to_string());
                    }
                }
                new.sort();
                if new != old.tags {
                    tickets::replace_tags(tx, ticket_id, &new)?;
                    let listed = |tags: &[String]| match tags {
                        [] => "none".to_string(),
                        tags => tags.join(", "),
                    };
                    events.push(format!(
                        "Tags changed from {} to {} by {agent}.",
                        listed(&old.tags),
                        listed(&new)
                    ));
                }
            }
            if !events.is_empty() {
                tickets::touch(tx, ticket_id, agent_id, now())?;
                for text in &events {
                    entries::insert_event(tx, ticket_id, Some(agent_id), text, now())?;
                }
            }
            Ok(events)
        })
        .await
    }

    /// An internal note: agents see it, the customer never does.
    pub async fn add_note(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        text: &str,
    ) -> Result<EntryId> {
        let text = text.to_string();
        self.write(move |tx| {
            let now = now();
            let id = entries::insert_note(tx, ticket_id, agent_id, &text, now)?;
            tickets::touch(tx, ticket_id, agent_id, now)?;
            Ok(id)
        })
        .await
    }

    /// Tickets requested by a contact or by anyone of an organization, that the agent may see.
    pub async fn tickets_of(
        &self,
        contact: Option<ContactId>,
        organization: Option<OrganizationId>,
        visible: &[HelpdeskId],
    ) -> Result<Vec<TicketSummary>> {
        let sql = format!(
            "{SUMMARY_SELECT} WHERE t.helpdesk_id IN {}
               AND (CAST(?1 AS BIGINT) IS NULL OR t.requester_id = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR t.organization_id = ?2)
             ORDER BY t.modified_at DESC, t.id DESC LIMIT 500",
            id_list(visible)
        );
        self.read(move |conn| {
            conn.prepare(&sql)?
                .query_map(params![contact, organization], summary)?
                .collect::<Result<_>>()
        })
        .await
    }

    /// Statuses, priorities and types in use, to offer as choices.
    pub async fn ticket_values(&self, column: TicketColumn) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT {0} FROM tickets WHERE {0} IS NOT NULL ORDER BY {0} LIMIT 200",
            column.name()
        );
        self.read(move |conn| {
            conn.prepare_cached(&sql)?
                .query_map((), |r| r.get(0))?
                .collect::<Result<_>>()
        })
        .await
    }

    /// Active agents' names (for the assignee choice).
    pub async fn agent_names(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT name FROM agents WHERE active ORDER BY name")?
                .query_map((), |r| r.get(0))?
                .collect::<Result<_>>()
        })
        .await
    }

    /// The helpdesk of a ledger row (None for mail no helpdesk took), or NotFound.
    pub async fn intake_helpdesk(&self, intake_id: IntakeId) -> Result<Option<HelpdeskId>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT helpdesk_id FROM intake WHERE id = ?1")?
                .query_row([intake_id], |r| r.get::<_, Option<HelpdeskId>>(0))
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("there is no intake record {intake_id}"))
                })
        })
        .await
    }

    /// Takes a failed mail out of the failed queue; it stays in the ledger.
    pub async fn dismiss_failed(&self, intake_id: IntakeId) -> Result<()> {
        self.write(move |tx| {
            let done = tx
                .prepare_cached(
                    "UPDATE intake SET dismissed_at = ?1 WHERE id = ?2 AND outcome = 'failed'",
                )?
                .execute(params![now(), intake_id])?;
            if done == 0 {
                return Err(StoreError::NotFound(format!(
                    "intake record {intake_id} is not in the failed queue"
                )));
            }
            Ok(())
        })
        .await
    }
}

/// One page of `query`, at most `max_per_page` tickets, with the total and counts per status.
fn find_tickets(conn: &Db, query: &TicketQuery, max_per_page: i64) -> Result<TicketPage> {
    let tickets = ticket_page(conn, query, max_per_page)?;
    let c = ticket_conditions(query, true);
    let from = "FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
                LEFT JOIN agents asg ON asg.id = t.assignee_id";
    let count_sql = format!("SELECT COUNT(*) {from}{}", c.clause());
    let total: i64 = conn
        .prepare(&count_sql)?
        .query_row(params_from_iter(&c.binds), |r| r.get(0))?;

    let c = ticket_conditions(query, false);
    let counts_sql = format!(
        "SELECT t.status, COUNT(*) {from}{} GROUP BY t.status ORDER BY t.status",
        c.clause()
    );
    let status_counts = conn
        .prepare(&counts_sql)?
        .query_map(params_from_iter(&c.binds), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    Ok(TicketPage {
        tickets,
        total,
        status_counts,
    })
}

/// The tickets of one page of `query`, at most `max_per_page`.
fn ticket_page(conn: &Db, query: &TicketQuery, max_per_page: i64) -> Result<Vec<TicketSummary>> {
    let per_page = query.per_page.clamp(1, max_per_page);
    let page = query.page.max(1);
    let c = ticket_conditions(query, true);
    let order = format!(
        "{} {}, t.id {}",
        query.sort.column(),
        if query.ascending { "ASC" } else { "DESC" },
        if query.ascending { "ASC" } else { "DESC" }
    );
    let sql = format!(
        "{SUMMARY_SELECT}{} ORDER BY {order} LIMIT {per_page} OFFSET {}",
        c.clause(),
        (page - 1).saturating_mul(per_page)
    );
    conn.prepare(&sql)?
        .query_map(params_from_iter(&c.binds), summary)?
        .collect::<Result<_>>()
}

/// Ticket columns whose values are offered as choices.
#[derive(Debug, Clone, Copy)]
pub enum TicketColumn {
    Status,
    Priority,
    Type,
}

impl TicketColumn {
    fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Priority => "priority",
            Self::Type => "ticket_type",
        }
    }
}

/// A ticket's fields as they are now (the tags sorted), for a change to compare with.
/// Fails when a field holds another value than the one `seen` says the agent saw.
fn check_seen(current: &TicketFields, seen: &FieldChanges) -> Result<()> {
    let empty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    for (label, seen, now) in [
        ("status", &seen.status, &current.status),
        ("priority", &seen.priority, &current.priority),
        ("type", &seen.ticket_type, &current.ticket_type),
        ("category", &seen.category, &current.category),
        ("subcategory", &seen.subcategory, &current.subcategory),
        ("environment", &seen.environment, &current.environment),
        ("assignee", &seen.assignee, &current.assignee),
        ("manager", &seen.manager, &current.manager),
    ] {
        let Some(seen) = seen else { continue };
        if empty(seen) != empty(now) {
            let shown = |v: &Option<String>| empty(v).unwrap_or_else(|| "none".into());
            return Err(StoreError::Conflict(format!(
                "the ticket's {label} was changed to {} by someone else while you had it open (you saw {}); nothing was saved: reload the ticket and make your change again",
                shown(now),
                shown(seen)
            )));
        }
    }
    if let Some(seen) = &seen.tags
        && {
            let mut seen = seen.clone();
            seen.sort();
            seen != current.tags
        }
    {
        return Err(StoreError::Conflict(
            "the ticket's tags were changed by someone else while you had it open; nothing was saved: reload the ticket and make your change again".into(),
        ));
    }
    Ok(())
}

fn current_fields(tx: &Db, ticket_id: TicketId) -> Result<TicketFields> {
    let mut fields = tx
        .prepare_cached(
            "SELECT t.status, t.priority, t.ticket_type, t.category, t.subcategory,
                    t.environment, a.name, m.name
             FROM tickets t LEFT JOIN agents a ON a.id = t.assignee_id
             LEFT JOIN agents m ON m.id = t.manager_id WHERE t.id = ?1",
        )?
        .query_row([ticket_id], |r| {
            Ok(TicketFields {
                status: r.get(0)?,
                priority: r.get(1)?,
                ticket_type: r.get(2)?,
                category: r.get(3)?,
                subcategory: r.get(4)?,
                environment: r.get(5)?,
                assignee: r.get(6)?,
                manager: r.get(7)?,
                ..TicketFields::default()
            })
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no ticket with id {ticket_id}")))?;
    fields.tags = tickets::tags(tx, ticket_id)?;
    Ok(fields)
}

/// The id of the active agent named `name`.
fn active_agent(tx: &Db, name: &str) -> Result<AgentId> {
    tx.prepare_cached("SELECT id FROM agents WHERE name = ?1 AND active")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no agent named `{name}`")))
}
