//! What agents do at their desk (the web UI and the REST API): find tickets, change
//! them, take notes, look after contacts, organizations and the failed queue.
//!
//! Every query that lists or opens something takes the helpdesk ids the agent may see,
//! so permissions are enforced in SQL and not left to each caller.

use crate::engine::{Db, Dialect, OptionalExtension, Stmt, params, params_from_iter};
use postdesk_core::id::{
    AgentId, ContactId, EntryId, HelpdeskId, IntakeId, OrganizationId, TicketId,
};
use postdesk_core::search::{SearchQuery, SnippetHtml};

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
    /// The best match of a search first (issue 19); without words to match, `Updated`.
    Relevance,
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
            "relevance" => Self::Relevance,
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
            Self::Relevance => "relevance",
        }
    }

    /// The sort key of a listed ticket, as a page's cursor holds it; `None` for the sorts
    /// pages are counted for instead (due dates and relevance: computed per query).
    fn key_of(self, t: &TicketSummary) -> Option<String> {
        Some(match self {
            Self::Updated => t.modified_at.to_string(),
            Self::Newest => t.id.to_string(),
            Self::Created => t.reported_at.to_string(),
            Self::Number => t.number.to_string(),
            Self::Priority => priority_rank(t.priority.as_deref()).to_string(),
            Self::Status => t.status.clone(),
            Self::Due | Self::Relevance => return None,
        })
    }

    /// Whether the key is a number (written into the SQL once parsed) or text (bound).
    fn numeric(self) -> bool {
        !matches!(self, Self::Status)
    }

    fn column(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Self::Updated => "t.modified_at",
            Self::Newest => "t.id",
            Self::Created => "t.reported_at",
            Self::Number => "t.number",
            // Known priorities in their natural order, others after them.
            // The expression of the index tickets_priority_rank (migration 0017).
            Self::Priority => {
                "CASE lower(t.priority) WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"
            }
            Self::Status => "t.status",
            Self::Due => return crate::deadlines::due_sort_column().into(),
            Self::Relevance => "t.modified_at",
        })
    }
}

/// Known priorities in their natural order, others below them: as [`TicketSort::Priority`]
/// sorts in SQL.
fn priority_rank(priority: Option<&str>) -> i64 {
    match priority.map(str::to_lowercase).as_deref() {
        Some("urgent") => 4,
        Some("high") => 3,
        Some("normal") => 2,
        Some("low") => 1,
        _ => 0,
    }
}

/// Where a page of the ticket list starts or ends: the sort key and id of the ticket
/// next to it (keyset paging: the next page costs what the first does). Written
/// `ID:KEY` in links (`after=…`, `before=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub id: TicketId,
    pub key: String,
}

impl Cursor {
    /// `ID:KEY`; the key is checked against the sort when the page is read.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, key) = text.split_once(':')?;
        Some(Self {
            id: TicketId::new(id.parse().ok()?),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.key)
    }
}

/// Which way from a cursor a page goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAt {
    /// By page number (1-based): the only way for due dates and relevance.
    Number(i64),
    /// The tickets after this one, in the list's order.
    After(Cursor),
    /// The tickets before this one (the previous page).
    Before(Cursor),
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
    /// A full-text search (issue 19): words and phrases that must all occur in the
    /// ticket, and its filters (`from:`, `status:`, `helpdesk:`, `has:attachment`).
    pub search: Option<SearchQuery>,
    /// Deadline filters (issue 18): with the time they are judged at.
    pub due: Option<(crate::deadlines::DueFilter, i64)>,
    pub sort: TicketSort,
    pub ascending: bool,
    /// 1-based; used when `at` is `None`.
    pub page: i64,
    pub per_page: i64,
    /// A keyset page (issue 19); `None`: `page`.
    pub at: Option<PageAt>,
}

#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<TicketSummary>,
    /// A search's snippet for each ticket, in the same order (`None` without words).
    pub snippets: Vec<Option<SnippetHtml>>,
    /// Tickets matching the filters, over all pages.
    pub total: i64,
    /// A search matched more tickets than it looks at (`search::SEARCH_WINDOW`): the
    /// total and the counts are those of the newest matches only, a lower bound.
    pub beyond_window: bool,
    /// Per status, for the filters other than the status.
    pub status_counts: Vec<(String, i64)>,
    /// The earliest running deadline of each ticket of the page that has one (the
    /// list's "due" column), read with the page.
    pub due: Vec<(TicketId, crate::deadlines::NextDue)>,
    /// The next page's cursor, when there are more tickets after this page (sorts that
    /// page by cursor only).
    pub next: Option<Cursor>,
    /// The previous page's cursor, when this page was reached by a cursor and has
    /// tickets before it.
    pub previous: Option<Cursor>,
}

/// What a ticket's page shows from the database ([`Store::ticket_page`]).
#[derive(Debug, Clone)]
pub struct TicketPageParts {
    pub view: crate::read::TicketView,
    /// The active agents of its helpdesk and the admins: the choice of assignees.
    pub agents: Vec<String>,
    /// First response first.
    pub deadlines: Vec<postdesk_core::sla::Deadline>,
    pub interventions: Vec<crate::interventions::InterventionRow>,
    /// What a new intervention's text is made of.
    pub text: crate::interventions::TicketText,
}

/// An attachment as the download route needs it.
#[derive(Debug, Clone)]
pub struct AttachmentFile {
    pub safe_name: String,
    pub mime_type: String,
    pub size: i64,
}

/// A WHERE clause with its text binds, numbered from `?1`, and what a search adds: the
/// join of its matches and their rank.
#[derive(Default)]
struct Conditions {
    join: String,
    sql: Vec<String>,
    binds: Vec<String>,
    /// Smaller is better.
    rank: Option<String>,
    /// The number of the search's matches of every helpdesk, where the join has it.
    found: Option<String>,
    /// Whether the text carries values of this call (the clock, a cursor, an offset):
    /// such a text is not seen again, so it is not kept prepared.
    per_call: bool,
}

impl Conditions {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        format!("?{}", self.binds.len())
    }

    /// A statement for `sql`, built from these conditions: kept prepared for the next
    /// call unless its text carries this call's values.
    fn prepare<'c>(&self, conn: &Db<'c>, sql: &str) -> Result<Stmt<'c>> {
        if self.per_call {
            conn.prepare(sql)
        } else {
            conn.prepare_repeated(sql)
        }
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }
}

fn ticket_conditions(dialect: Dialect, query: &TicketQuery, with_status: bool) -> Conditions {
    let mut c = Conditions::default();
    // With several helpdesks, `+` keeps SQLite from choosing the helpdesk index and
    // sorting all their tickets: the list walks the sort's own index instead and stops
    // at the page's end.
    // A search's matches (at most `search::SEARCH_WINDOW`) drive its join in the same
    // way: with an index to take for the helpdesk or the status, SQLite walked every
    // ticket of an agent's one helpdesk and looked each up among the matches (25,000
    // ticket rows read for one search of the load bench; issue 19).
    // Both are SQLite's alone: PostgreSQL chooses by its statistics, which `+` would
    // hide from it (the condition becomes an expression it cannot estimate).
    let sqlite = matches!(dialect, Dialect::Sqlite);
    let searching = query.search.as_ref().is_some_and(|s| s.needs_index());
    let plus = if sqlite && (query.visible.len() > 1 || searching) {
        "+"
    } else {
        ""
    };
    let text_plus = if sqlite && searching { "+" } else { "" };
    c.sql.push(format!(
        "{plus}t.helpdesk_id IN {}",
        id_list(&query.visible)
    ));
    let search = query.search.as_ref();
    if with_status {
        for s in [query.status.clone(), search.and_then(|s| s.status.clone())]
            .into_iter()
            .flatten()
        {
            let p = c.bind(s);
            c.sql.push(format!("{text_plus}t.status = {p}"));
        }
    }
    match query.assignee.as_deref() {
        Some("-") => c.sql.push("t.assignee_id IS NULL".into()),
        Some(a) => {
            let p = c.bind(a.to_string());
            // A scalar: the list stays one walk of the assignee's index.
            c.sql.push(format!(
                "t.assignee_id = (SELECT ag.id FROM agents ag WHERE ag.name = {p})"
            ));
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
        c.per_call = true;
    }
    if let Some(search) = search {
        if search.has_attachment() {
            c.sql.push(
                "EXISTS (SELECT 1 FROM entries se JOIN attachments sa ON sa.entry_id = se.id
                         WHERE se.ticket_id = t.id AND sa.refused IS NULL)"
                    .into(),
            );
        }
        if let Some(m) = crate::search::matching(dialect, search, c.binds.len() + 1) {
            c.binds.push(m.query);
            c.join = m.join;
            c.rank = Some(m.rank);
            c.found = m.found;
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

    /// [`Store::find_tickets`] and, in the same read, the names of the agents of the
    /// visible helpdesks (the list page's assignee filter; see
    /// [`Store::helpdesk_agent_names`]).
    pub async fn find_tickets_and_agents(
        &self,
        query: &TicketQuery,
    ) -> Result<(TicketPage, Vec<String>)> {
        let query = query.clone();
        self.read(move |conn| {
            Ok((
                find_tickets(conn, &query, 500)?,
                crate::access::helpdesk_agent_names(conn, &query.visible)?,
            ))
        })
        .await
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
            Ok(ticket_page(conn, &by_helpdesk_id(conn, &query)?, limit)?.0)
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

    /// Everything a ticket's page shows from the database, in one read (issue 19: the
    /// page made eight, each waiting for a reader under load, and checked the agent's
    /// helpdesks in three of them): the ticket, the assignees its helpdesk offers, its
    /// deadlines and interventions, and what a new intervention's text is made of.
    /// NotFound when there is no such ticket or it is in none of `visible`.
    pub async fn ticket_page(
        &self,
        id: TicketId,
        visible: Vec<HelpdeskId>,
    ) -> Result<TicketPageParts> {
        self.read(move |conn| {
            let helpdesk: Option<HelpdeskId> = conn
                .prepare_cached("SELECT helpdesk_id FROM tickets WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            let Some(helpdesk) = helpdesk.filter(|h| visible.contains(h)) else {
                return Err(StoreError::NotFound(format!(
                    "there is no ticket {id}, or it is not in your helpdesks"
                )));
            };
            Ok(TicketPageParts {
                view: crate::read::ticket_view(conn, id)?,
                agents: crate::access::helpdesk_agent_names(conn, &[helpdesk])?,
                deadlines: crate::deadlines::of_ticket(conn, id)?,
                interventions: crate::interventions::list(
                    conn,
                    &crate::interventions::InterventionFilter {
                        visible: Some(vec![helpdesk]),
                        ticket_id: Some(id),
                        ..Default::default()
                    },
                )?,
                text: crate::interventions::ticket_text(conn, id)?,
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

/// `query` with the helpdesks it names (the list's helpdesk filter, a search's
/// `helpdesk:`) taken out of its visible ones: the visible helpdesks of that name, none
/// when there is no such helpdesk or the agent may not see it. A chosen helpdesk is
/// then an id the list's SQL compares with, so an index of the helpdesk and status
/// serves a page filtered by both (a join on the helpdesk's name, or a subquery for its
/// id, left SQLite using only the helpdesk column of such an index: issue 19).
fn by_helpdesk_id(conn: &Db, query: &TicketQuery) -> Result<TicketQuery> {
    let mut query = query.clone();
    let names = [
        query.helpdesk.take(),
        query.search.as_mut().and_then(|s| s.helpdesk.take()),
    ];
    for name in names.into_iter().flatten() {
        let id: Option<HelpdeskId> = conn
            .prepare_cached("SELECT id FROM helpdesks WHERE name = ?1")?
            .query_row([&name], |r| r.get(0))
            .optional()?;
        query.visible.retain(|v| Some(*v) == id);
    }
    Ok(query)
}

/// One page of `query`, at most `max_per_page` tickets, with the total and counts per status.
fn find_tickets(conn: &Db, query: &TicketQuery, max_per_page: i64) -> Result<TicketPage> {
    let query = &by_helpdesk_id(conn, query)?;
    let (tickets, next, previous, counts, found) = match ranked_page(conn, query, max_per_page)? {
        Some(ranked) => (
            ranked.tickets,
            None,
            None,
            Some(ranked.counts),
            ranked.found,
        ),
        None => {
            let (tickets, next, previous) = ticket_page(conn, query, max_per_page)?;
            (tickets, next, previous, None, None)
        }
    };
    let snippets = match &query.search {
        Some(search) if !search.terms.is_empty() => {
            let ids: Vec<TicketId> = tickets.iter().map(|t| t.id).collect();
            crate::search::snippets(conn, &ids, search)?
        }
        _ => vec![None; tickets.len()],
    };
    let (total, status_counts) = match counts {
        Some(counts) => (total_of(query, &counts), counts),
        None if counted_by_counters(query) => from_counters(conn, query)?,
        None => counted(conn, query)?,
    };
    let beyond_window = match (&query.search, found) {
        (_, Some(found)) => found > crate::search::SEARCH_WINDOW,
        (Some(search), None) => crate::search::beyond_window(conn, search)?,
        (None, None) => false,
    };
    let ids: Vec<TicketId> = tickets.iter().map(|t| t.id).collect();
    let due = crate::deadlines::next_due(conn, &ids)?;
    Ok(TicketPage {
        tickets,
        snippets,
        total,
        beyond_window,
        status_counts,
        due,
        next,
        previous,
    })
}

/// Tickets per status, in the order of the statuses.
type StatusCounts = Vec<(String, i64)>;

/// [`ranked_page`]'s page and counts per status, and the number of the search's
/// matches of every helpdesk where the read had it (see `search::Match::found`).
struct RankedPage {
    tickets: Vec<TicketSummary>,
    counts: StatusCounts,
    found: Option<i64>,
}

/// A page of a search by relevance (the search box's own order) and its counts per
/// status, from one pass over its matches; `None` for other lists. A search ranks only
/// its window of matches (`search::SEARCH_WINDOW`), so its page and counts are both
/// made of the same few hundred rows: they are read once (ticket, status, rank), then
/// counted, filtered by status, sorted and cut here, and only the page's tickets read
/// in full. The page query and the count each ran the match, its ranking and the join
/// with every matching ticket before (issue 19: 40 % of serve's time under load).
fn ranked_page(conn: &Db, query: &TicketQuery, max_per_page: i64) -> Result<Option<RankedPage>> {
    let page = match &query.at {
        None => query.page,
        Some(PageAt::Number(page)) => *page,
        // Refused by `page_sql`, as for every sort paged by number.
        Some(_) => return Ok(None),
    };
    if query.sort != TicketSort::Relevance {
        return Ok(None);
    }
    let c = ticket_conditions(conn.dialect(), query, false);
    let Some(sql) = ranked_sql(&c) else {
        return Ok(None);
    };
    let mut found = None;
    let rows: Vec<(TicketId, String, f64)> = c
        .prepare(conn, &sql)?
        .query_map(params_from_iter(&c.binds), |r| {
            found = r.get(3)?;
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_>>()?;
    let mut counts: std::collections::BTreeMap<&str, i64> = Default::default();
    for (_, status, _) in &rows {
        *counts.entry(status).or_default() += 1;
    }
    let counts: Vec<(String, i64)> = counts
        .into_iter()
        .map(|(status, n)| (status.to_string(), n))
        .collect();
    let wanted = statuses_asked_for(query);
    let mut matching: Vec<&(TicketId, String, f64)> = rows
        .iter()
        .filter(|(_, status, _)| wanted.iter().all(|w| *w == status))
        .collect();
    // As `page_sql` orders a search by relevance: best first, then newest.
    matching.sort_by(|a, b| a.2.total_cmp(&b.2).then(b.0.cmp(&a.0)));
    let per_page = query.per_page.clamp(1, max_per_page);
    let offset = offset_of(page, per_page);
    let ids: Vec<TicketId> = matching
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(per_page as usize)
        .map(|(id, ..)| *id)
        .collect();
    let mut tickets: Vec<TicketSummary> = if ids.is_empty() {
        Vec::new()
    } else {
        conn.prepare(&format!("{SUMMARY_SELECT} WHERE t.id IN {}", id_list(&ids)))?
            .query_map((), summary)?
            .collect::<Result<_>>()?
    };
    tickets.sort_by_key(|t| ids.iter().position(|id| *id == t.id));
    Ok(Some(RankedPage {
        tickets,
        counts,
        found,
    }))
}

/// Whether the counts per status come from `ticket_counts` (kept by triggers, see
/// migration 0017): when the only filters are helpdesks and statuses.
fn counted_by_counters(query: &TicketQuery) -> bool {
    query.assignee.is_none()
        && query.priority.is_none()
        && query.requester.is_none()
        && query.due.is_none()
        && query
            .search
            .as_ref()
            .is_none_or(|s| !s.needs_index() && !s.has_attachment())
}

/// The total and the counts per status, from the counter rows of the visible helpdesks.
fn from_counters(conn: &Db, query: &TicketQuery) -> Result<(i64, Vec<(String, i64)>)> {
    let mut c = Conditions::default();
    c.sql
        .push(format!("c.helpdesk_id IN {}", id_list(&query.visible)));
    let sql = format!(
        "SELECT c.status, CAST(SUM(c.tickets) AS BIGINT) FROM ticket_counts c{}
         GROUP BY c.status HAVING SUM(c.tickets) > 0 ORDER BY c.status",
        c.clause()
    );
    let counts: Vec<(String, i64)> = c
        .prepare(conn, &sql)?
        .query_map(params_from_iter(&c.binds), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    Ok((total_of(query, &counts), counts))
}

/// The statuses `query` asks for: the list's status filter and a search's `status:`
/// (a ticket must have all of them).
fn statuses_asked_for(query: &TicketQuery) -> Vec<&String> {
    [
        query.status.as_ref(),
        query.search.as_ref().and_then(|s| s.status.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// How many tickets come before page `page` (1-based) of `per_page`.
fn offset_of(page: i64, per_page: i64) -> i64 {
    (page.max(1) - 1).saturating_mul(per_page)
}

/// The read of a search's matches by relevance: each matching ticket, its status, its
/// rank and, where the engine counts them in the same read, the number of all the
/// search's matches (`ranked_page`); `None` without words to rank by.
fn ranked_sql(c: &Conditions) -> Option<String> {
    let rank = c.rank.as_ref()?;
    let found = c.found.as_deref().unwrap_or("NULL");
    Some(format!(
        "SELECT t.id, t.status, CAST({rank} AS DOUBLE PRECISION), CAST({found} AS BIGINT)
         FROM tickets t{}{}",
        c.join,
        c.clause()
    ))
}

/// The count per status of the tickets `c` matches (`counted`).
fn counts_sql(c: &Conditions) -> String {
    format!(
        "SELECT t.status, COUNT(*) FROM tickets t{}{} GROUP BY t.status ORDER BY t.status",
        c.join,
        c.clause()
    )
}

/// The tickets matching `query`, from its counts per status (which leave its status
/// filters out): those of the statuses it asks for.
fn total_of(query: &TicketQuery, counts: &[(String, i64)]) -> i64 {
    let wanted = statuses_asked_for(query);
    counts
        .iter()
        .filter(|(status, _)| wanted.iter().all(|w| *w == status))
        .map(|(_, n)| n)
        .sum()
}

/// The total and the counts per status, counted over the matching tickets (filters the
/// counter rows do not split by; a search counts its matches). One query: the total is
/// the sum of the counts of the statuses asked for (it was a second count of the same
/// rows, and for a search a second run of the match).
fn counted(conn: &Db, query: &TicketQuery) -> Result<(i64, Vec<(String, i64)>)> {
    let c = ticket_conditions(conn.dialect(), query, false);
    let status_counts: Vec<(String, i64)> = c
        .prepare(conn, &counts_sql(&c))?
        .query_map(params_from_iter(&c.binds), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    Ok((total_of(query, &status_counts), status_counts))
}

/// The tickets of one page of `query`, at most `max_per_page`, and the cursors of the
/// pages after and before it.
fn ticket_page(
    conn: &Db,
    query: &TicketQuery,
    max_per_page: i64,
) -> Result<(Vec<TicketSummary>, Option<Cursor>, Option<Cursor>)> {
    let page = page_sql(conn.dialect(), query, max_per_page)?;
    let PageSql {
        sql,
        conditions,
        sort,
        per_page,
        at,
    } = page;
    let backwards = matches!(at, PageAt::Before(_));
    let mut tickets: Vec<TicketSummary> = conditions
        .prepare(conn, &sql)?
        .query_map(params_from_iter(&conditions.binds), summary)?
        .collect::<Result<_>>()?;
    let more = tickets.len() as i64 > per_page;
    tickets.truncate(per_page as usize);
    if backwards {
        tickets.reverse();
    }
    let cursor_of = |t: Option<&TicketSummary>| {
        t.and_then(|t| sort.key_of(t).map(|key| Cursor { id: t.id, key }))
    };
    let (next, previous) = match &at {
        PageAt::Number(page) => (
            more.then(|| cursor_of(tickets.last())).flatten(),
            (*page > 1).then(|| cursor_of(tickets.first())).flatten(),
        ),
        PageAt::After(_) => (
            more.then(|| cursor_of(tickets.last())).flatten(),
            cursor_of(tickets.first()),
        ),
        PageAt::Before(_) => (
            cursor_of(tickets.last()),
            more.then(|| cursor_of(tickets.first())).flatten(),
        ),
    };
    Ok((tickets, next, previous))
}

/// A list page's query: its SQL (one ticket more than the page, to know whether more
/// follow), the conditions it was built from (their binds), the sort it ended up with,
/// the page size and where it starts.
struct PageSql {
    sql: String,
    conditions: Conditions,
    sort: TicketSort,
    per_page: i64,
    at: PageAt,
}

fn page_sql(dialect: Dialect, query: &TicketQuery, max_per_page: i64) -> Result<PageSql> {
    let per_page = query.per_page.clamp(1, max_per_page);
    let mut c = ticket_conditions(dialect, query, true);
    let sort = match (query.sort, &c.rank) {
        (TicketSort::Relevance, None) => TicketSort::Updated,
        (sort, _) => sort,
    };
    let keyset = sort != TicketSort::Due && sort != TicketSort::Relevance;
    let at = query.at.clone().unwrap_or(PageAt::Number(query.page));
    let ascending = query.ascending != matches!(at, PageAt::Before(_));
    let dir = if ascending { "ASC" } else { "DESC" };
    let column = sort.column();
    let order = match (&c.rank, sort) {
        (Some(rank), TicketSort::Relevance) => format!("{rank} ASC, t.id DESC"),
        _ => format!("{column} {dir}, t.id {dir}"),
    };
    let mut offset = 0;
    match &at {
        PageAt::Number(page) => {
            offset = offset_of(*page, per_page);
            // Written into the SQL below.
            c.per_call |= offset > 0;
        }
        PageAt::After(cursor) | PageAt::Before(cursor) => {
            if !keyset {
                return Err(StoreError::Invalid(format!(
                    "lists sorted by {} are paged by number (`page`), not by `after` or `before`",
                    sort.as_str()
                )));
            }
            let key = if sort.numeric() {
                cursor
                    .key
                    .parse::<i64>()
                    .map_err(|_| {
                        StoreError::Invalid(format!(
                            "this page link ({cursor}) is not one of a list sorted by {}: start from the first page",
                            sort.as_str()
                        ))
                    })?
                    .to_string()
            } else {
                c.bind(cursor.key.clone())
            };
            let op = if ascending { ">" } else { "<" };
            // The first half is implied by the second; it is the range an index
            // can seek to (SQLite does not take one from a row value on an expression).
            c.sql.push(format!(
                "{column} {op}= {key} AND ({column}, t.id) {op} ({key}, {})",
                cursor.id
            ));
            c.per_call = true;
        }
    }
    let limit = per_page.saturating_add(1);
    let ranked = matches!(sort, TicketSort::Relevance);
    let sql = if offset > 0 && !ranked {
        // A page far down by number: its ids are taken first, from the sort's index
        // alone, and only then are its rows read and joined. The OFFSET then skips
        // index entries instead of rows with their joins: page 5,000 of a helpdesk's
        // list (250,000 entries skipped) took 0.7 s at 1,000,000 tickets, and 9 ms so
        // (issue 19).
        format!(
            "{SUMMARY_SELECT} WHERE t.id IN (
                 SELECT t.id FROM tickets t{}{}
                 ORDER BY {order} LIMIT {limit} OFFSET {offset})
             ORDER BY {order}",
            c.join,
            c.clause(),
        )
    } else {
        format!(
            "{SUMMARY_SELECT}{}{} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            c.join,
            c.clause(),
        )
    };
    Ok(PageSql {
        sql,
        conditions: c,
        sort,
        per_page,
        at,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for a list page, one line a step.
    fn plan(conn: &rusqlite::Connection, query: &TicketQuery) -> String {
        let query = by_helpdesk_id(&Db::sqlite(conn), query).unwrap();
        let page = page_sql(Dialect::Sqlite, &query, 500).unwrap();
        sqlite_plan(conn, &page.sql, &page.conditions.binds)
    }

    /// SQLite's plan of `sql` with `binds`, one line a step.
    fn sqlite_plan(conn: &rusqlite::Connection, sql: &str, binds: &[String]) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(binds), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A migrated SQLite file (kept while the folder lives) with helpdesks 1 and 2.
    fn two_helpdesks() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        crate::db::create_and_migrate(&path, crate::Schema::Migrate).unwrap();
        let conn = crate::engine::connect_sqlite(&path, rusqlite::OpenFlags::default()).unwrap();
        conn.execute_batch("INSERT INTO helpdesks (id, name) VALUES (1, 'Support'), (2, 'Sales')")
            .unwrap();
        (dir, conn)
    }

    /// Each filter and keyset sort of the list walks an index in the list's order and
    /// stops at the page's end: no step sorts the matching tickets (issue 19).
    #[test]
    fn list_pages_walk_an_index_and_never_sort_the_whole_list() {
        let (_dir, conn) = two_helpdesks();
        let base = TicketQuery {
            visible: vec![HelpdeskId::new(1), HelpdeskId::new(2)],
            page: 1,
            per_page: 50,
            ..TicketQuery::default()
        };
        let after = |key: &str| {
            Some(PageAt::After(Cursor {
                id: TicketId::new(7),
                key: key.into(),
            }))
        };
        let cases = [
            ("first page", base.clone(), "tickets_modified"),
            (
                "a page far down",
                TicketQuery {
                    at: after("1796644723"),
                    ..base.clone()
                },
                "tickets_modified (modified_at<?)",
            ),
            (
                "status",
                TicketQuery {
                    status: Some("open".into()),
                    at: after("1796644723"),
                    ..base.clone()
                },
                "tickets_status_modified (status=? AND modified_at<?)",
            ),
            (
                "assignee",
                TicketQuery {
                    assignee: Some("sam".into()),
                    ..base.clone()
                },
                "tickets_assignee_modified",
            ),
            (
                "unassigned",
                TicketQuery {
                    assignee: Some("-".into()),
                    ..base.clone()
                },
                "tickets_assignee_modified",
            ),
            (
                "priority",
                TicketQuery {
                    priority: Some("high".into()),
                    ..base.clone()
                },
                "tickets_priority_modified",
            ),
            (
                "number",
                TicketQuery {
                    sort: TicketSort::Number,
                    ascending: true,
                    at: after("5"),
                    ..base.clone()
                },
                "tickets_number (number>?)",
            ),
            (
                "opened",
                TicketQuery {
                    sort: TicketSort::Created,
                    ..base.clone()
                },
                "tickets_reported",
            ),
            (
                "priority, a page far down",
                TicketQuery {
                    sort: TicketSort::Priority,
                    at: after("3"),
                    ..base.clone()
                },
                "tickets_priority_rank (<expr><?)",
            ),
            (
                "one helpdesk's agent",
                TicketQuery {
                    visible: vec![HelpdeskId::new(1)],
                    at: after("1796644723"),
                    ..base.clone()
                },
                "tickets_helpdesk_modified (helpdesk_id=? AND modified_at<?)",
            ),
            (
                "a helpdesk chosen",
                TicketQuery {
                    helpdesk: Some("Support".into()),
                    ..base.clone()
                },
                "tickets_helpdesk_modified (helpdesk_id=?)",
            ),
            (
                "one helpdesk's agent, first page",
                TicketQuery {
                    visible: vec![HelpdeskId::new(1)],
                    ..base.clone()
                },
                "tickets_helpdesk_modified (helpdesk_id=?)",
            ),
            (
                "status and helpdesk chosen",
                TicketQuery {
                    helpdesk: Some("Support".into()),
                    status: Some("open".into()),
                    ..base.clone()
                },
                "tickets_helpdesk_status_modified (helpdesk_id=? AND status=?)",
            ),
            (
                "status and helpdesk chosen, a page far down",
                TicketQuery {
                    helpdesk: Some("Support".into()),
                    status: Some("open".into()),
                    at: after("1796644723"),
                    ..base.clone()
                },
                // Without statistics SQLite rates this index and the helpdesk's alone
                // (`tickets_helpdesk_modified (helpdesk_id=? AND modified_at<?)`) alike
                // for a range: either walks the list's order from the cursor.
                "tickets_helpdesk_",
            ),
            (
                "one helpdesk's agent, status and helpdesk chosen",
                TicketQuery {
                    visible: vec![HelpdeskId::new(1)],
                    helpdesk: Some("Support".into()),
                    status: Some("open".into()),
                    ..base.clone()
                },
                "tickets_helpdesk_status_modified (helpdesk_id=? AND status=?)",
            ),
            (
                "one helpdesk's agent, status",
                TicketQuery {
                    visible: vec![HelpdeskId::new(1)],
                    status: Some("open".into()),
                    ..base.clone()
                },
                "tickets_helpdesk_status_modified (helpdesk_id=? AND status=?)",
            ),
        ];
        // A search: its matches drive the join, for one helpdesk as for several, with
        // a status or without; only they are sorted by rank.
        for (visible, status) in [
            (vec![HelpdeskId::new(1)], None),
            (vec![HelpdeskId::new(1)], Some("open")),
            (base.visible.clone(), None),
            (base.visible.clone(), Some("open")),
        ] {
            let query = TicketQuery {
                visible,
                status: status.map(str::to_string),
                search: postdesk_core::search::parse("printer").ok(),
                sort: TicketSort::Relevance,
                ..base.clone()
            };
            let c = ticket_conditions(Dialect::Sqlite, &query, false);
            let counts = sqlite_plan(&conn, &counts_sql(&c), &c.binds);
            for (label, plan) in [("page", plan(&conn, &query)), ("counts", counts)] {
                let label = format!("search, {label}, {:?} {status:?}", query.visible);
                assert!(plan.contains("\nSCAN m\n"), "{label}: {plan}");
                assert!(
                    plan.contains("SEARCH t USING INTEGER PRIMARY KEY (rowid=?)"),
                    "{label}: {plan}"
                );
            }
        }
        for (label, query, index) in cases {
            let plan = plan(&conn, &query);
            assert!(plan.contains(index), "{label}: {plan}");
            assert!(
                !plan.contains("TEMP B-TREE FOR ORDER BY"),
                "{label}: {plan}"
            );
        }
    }

    /// A numbered page far down skips the entries before it in the sort's index alone,
    /// without reading their tickets (issue 19: `page=5000` took 0.7 s at 1,000,000
    /// tickets), and then reads only the page's tickets, by id.
    #[test]
    fn a_numbered_page_far_down_skips_index_entries_not_tickets() {
        let (_dir, conn) = two_helpdesks();
        let both = vec![HelpdeskId::new(1), HelpdeskId::new(2)];
        let far = |visible: &Vec<HelpdeskId>| TicketQuery {
            visible: visible.clone(),
            page: 5000,
            per_page: 50,
            ..TicketQuery::default()
        };
        let cases = [
            ("all helpdesks", far(&both), "tickets_modified"),
            (
                "one helpdesk's agent",
                far(&vec![HelpdeskId::new(1)]),
                "tickets_helpdesk_modified (helpdesk_id=?)",
            ),
            (
                "status",
                TicketQuery {
                    status: Some("open".into()),
                    ..far(&both)
                },
                "tickets_status_modified (status=?)",
            ),
            (
                "one helpdesk's agent, status",
                TicketQuery {
                    status: Some("open".into()),
                    ..far(&vec![HelpdeskId::new(1)])
                },
                "tickets_helpdesk_status_modified (helpdesk_id=? AND status=?)",
            ),
            (
                "unassigned",
                TicketQuery {
                    assignee: Some("-".into()),
                    ..far(&both)
                },
                "tickets_assignee_modified (assignee_id=?)",
            ),
            (
                "by number",
                TicketQuery {
                    sort: TicketSort::Number,
                    ..far(&both)
                },
                "tickets_number",
            ),
            (
                "by priority",
                TicketQuery {
                    sort: TicketSort::Priority,
                    ..far(&both)
                },
                "tickets_priority_rank",
            ),
        ];
        for (label, query, index) in cases {
            let plan = plan(&conn, &query);
            assert!(
                plan.contains(&format!("SCAN t USING COVERING INDEX {index}"))
                    || plan.contains(&format!("SEARCH t USING COVERING INDEX {index}")),
                "{label}: {plan}"
            );
            assert!(
                plan.contains("SEARCH t USING INTEGER PRIMARY KEY (rowid=?)"),
                "{label}: {plan}"
            );
        }
    }

    /// PostgreSQL's plan of `sql` with `binds` (text, then a count), one line a step.
    fn pg_plan(db: &Db, sql: &str, binds: &[String], count: Option<i64>) -> String {
        let mut values: Vec<&dyn crate::engine::Param> = binds
            .iter()
            .map(|b| b as &dyn crate::engine::Param)
            .collect();
        if let Some(count) = &count {
            values.push(count);
        }
        db.prepare(&format!("EXPLAIN {sql}"))
            .unwrap()
            .query_map(values.as_slice(), |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// On PostgreSQL every read of a search (the relevance page with its counts, a
    /// page in another order, the counts of such a page, whether there are more
    /// matches than the window) takes its matches by a bitmap of the GIN index: for a
    /// word in half of all tickets as for a word in a few, on a database without
    /// statistics as with them. PostgreSQL read the whole table instead, testing each
    /// row (a sequential scan, or a walk by `ticket_id DESC` until the window was
    /// full), once its statistics said a word was common (issue 19).
    #[test]
    fn postgres_searches_take_their_matches_from_the_gin_index() {
        let url = postdesk_testkit::postgres::PostgresServer::shared()
            .unwrap()
            .fresh_database();
        let conn = crate::engine::postgres::PgConn::connect(&url).unwrap();
        let db = Db::postgres(&conn);
        crate::db::migrate(&db, crate::db::POSTGRES_MIGRATIONS).unwrap();
        // 20,000 tickets over two helpdesks; "printer" in every other one, "rare" in
        // four; forty other words each, so the table is not so small that reading
        // all of it is the cheaper plan anyway. Autovacuum is kept away, so the first
        // round sees no statistics. The index's pending list (rows added since its
        // last cleanup, which a search reads whole) is cleaned up, as autovacuum does
        // after such a burst: what it costs is not the query's form, and on a table
        // this small a full list (4 MB) outweighs reading the table itself.
        db.execute_batch(
            "ALTER TABLE tickets SET (autovacuum_enabled = off);
             ALTER TABLE ticket_search SET (autovacuum_enabled = off);
             INSERT INTO helpdesks (id, name) VALUES (1, 'Support'), (2, 'Sales');
             INSERT INTO tickets (id, helpdesk_id, number, title, mail_subject, status,
                 reported_at, created_at, modified_at)
             SELECT i, 1 + i % 2, i, 't', 's', CASE WHEN i % 3 = 0 THEN 'open' ELSE 'closed' END,
                 i, i, i
             FROM generate_series(1, 20000) i;
             INSERT INTO ticket_search (ticket_id, document)
             SELECT i, CAST(concat_ws(' ',
                     CASE WHEN i % 2 = 0 THEN 'printer' END,
                     CASE WHEN i % 5000 = 0 THEN 'rare' END,
                     (SELECT string_agg('w' || ((i * k) % 997), ' ')
                      FROM generate_series(1, 40) k)) AS tsvector)
             FROM generate_series(1, 20000) i;
             SELECT gin_clean_pending_list('ticket_search_document');",
        )
        .unwrap();
        let base = TicketQuery {
            visible: vec![HelpdeskId::new(1), HelpdeskId::new(2)],
            page: 1,
            per_page: 50,
            sort: TicketSort::Relevance,
            ..TicketQuery::default()
        };
        for statistics in [false, true] {
            if statistics {
                db.execute_batch("ANALYZE tickets; ANALYZE ticket_search")
                    .unwrap();
            }
            for word in ["printer", "rare", "printer rare", "\"printer w1\""] {
                let search = postdesk_core::search::parse(word).unwrap();
                for query in [
                    TicketQuery {
                        search: Some(search.clone()),
                        ..base.clone()
                    },
                    TicketQuery {
                        search: Some(search.clone()),
                        visible: vec![HelpdeskId::new(1)],
                        status: Some("open".into()),
                        ..base.clone()
                    },
                    TicketQuery {
                        search: Some(search.clone()),
                        sort: TicketSort::Updated,
                        ..base.clone()
                    },
                ] {
                    // The reads of `ranked_page` and `counted`.
                    let c = ticket_conditions(Dialect::Postgres, &query, false);
                    let ranked = ranked_sql(&c).unwrap();
                    let counts = counts_sql(&c);
                    let page = page_sql(Dialect::Postgres, &query, 500).unwrap();
                    let window = crate::search::window_count_sql(Dialect::Postgres);
                    let text = vec![crate::search::tsquery(&search)];
                    for (label, plan) in [
                        ("ranked", pg_plan(&db, &ranked, &c.binds, None)),
                        ("counts", pg_plan(&db, &counts, &c.binds, None)),
                        (
                            "page",
                            pg_plan(&db, &page.sql, &page.conditions.binds, None),
                        ),
                        ("window", pg_plan(&db, &window, &text, Some(1001))),
                    ] {
                        let label = format!(
                            "{label}, {word}, {:?} {:?} {:?}, statistics: {statistics}",
                            query.visible, query.status, query.sort
                        );
                        assert!(
                            plan.contains("Bitmap Index Scan on ticket_search_document"),
                            "{label}:\n{plan}"
                        );
                        assert!(
                            !plan.contains("Seq Scan on ticket_search")
                                && !plan.contains("Index Scan Backward using ticket_search_pkey"),
                            "{label}:\n{plan}"
                        );
                    }
                }
            }
        }
    }
}
