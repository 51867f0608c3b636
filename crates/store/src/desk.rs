//! What agents do at their desk (the web UI and the REST API): find tickets, change
//! them, take notes, look after contacts, organizations and the failed queue.
//!
//! Every query that lists or opens something takes the helpdesk ids the agent may see,
//! so permissions are enforced in SQL and not left to each caller.

use sqlx::Row;

use crate::read::{SUMMARY_SELECT, TicketSummary, summary};
use crate::sql::{id_list, like_pattern};
use crate::{Result, Store, StoreError, now};

/// How the ticket list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketSort {
    #[default]
    Updated,
    Created,
    Number,
    Priority,
    Status,
}

impl TicketSort {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "updated" => Self::Updated,
            "created" => Self::Created,
            "number" => Self::Number,
            "priority" => Self::Priority,
            "status" => Self::Status,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::Created => "created",
            Self::Number => "number",
            Self::Priority => "priority",
            Self::Status => "status",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Updated => "t.modified_at",
            Self::Created => "t.reported_at",
            Self::Number => "t.number",
            // Known priorities in their natural order, others after them.
            Self::Priority => {
                "CASE lower(t.priority) WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"
            }
            Self::Status => "t.status",
        }
    }
}

/// The ticket list's filters, sorting and page.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// Helpdesk ids the agent may see; nothing else is ever listed.
    pub visible: Vec<i64>,
    pub helpdesk: Option<String>,
    pub status: Option<String>,
    /// Agent name; `-` for unassigned tickets.
    pub assignee: Option<String>,
    pub priority: Option<String>,
    /// Part of the requester's address or name.
    pub requester: Option<String>,
    /// Words that must all occur in the title, the subject or an entry's text.
    pub search: Option<String>,
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

/// A change an agent makes to a ticket's fields. `None` leaves a field as it is;
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub status: Option<String>,
    pub priority: Option<Option<String>>,
    pub ticket_type: Option<Option<String>>,
    /// Agent name.
    pub assignee: Option<Option<String>>,
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
        format!("${}", self.binds.len())
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
    if let Some(search) = &query.search {
        // Each word must occur somewhere; a bounded number of words keeps the query cheap.
        for word in search.split_whitespace().take(8) {
            let p = c.bind(like_pattern(word));
            c.sql.push(format!(
                "(t.title LIKE {p} ESCAPE '\\' OR t.mail_subject LIKE {p} ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM entries se WHERE se.ticket_id = t.id
                             AND se.body_text LIKE {p} ESCAPE '\\'))"
            ));
        }
    }
    c
}

impl Store {
    /// One page of the tickets an agent may see, with the total and counts per status.
    pub async fn find_tickets(&self, query: &TicketQuery) -> Result<TicketPage> {
        let per_page = query.per_page.clamp(1, 500);
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
            (page - 1) * per_page
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &c.binds {
            q = q.bind(b);
        }
        let tickets = q.fetch_all(&self.pool).await?.iter().map(summary).collect();

        let from = "FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
                    LEFT JOIN agents asg ON asg.id = t.assignee_id";
        let count_sql = format!("SELECT COUNT(*) {from}{}", c.clause());
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql));
        for b in &c.binds {
            q = q.bind(b);
        }
        let total: i64 = q.fetch_one(&self.pool).await?;

        let c = ticket_conditions(query, false);
        let counts_sql = format!(
            "SELECT t.status, COUNT(*) {from}{} GROUP BY t.status ORDER BY t.status",
            c.clause()
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(counts_sql));
        for b in &c.binds {
            q = q.bind(b);
        }
        let status_counts = q.fetch_all(&self.pool).await?;
        Ok(TicketPage {
            tickets,
            total,
            status_counts,
        })
    }

    /// The helpdesk a ticket belongs to, or NotFound.
    pub async fn ticket_helpdesk(&self, ticket_id: i64) -> Result<i64> {
        sqlx::query_scalar("SELECT helpdesk_id FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no ticket with id {ticket_id}")))
    }

    /// Applies an agent's changes and records each as a system event, in one transaction.
    /// Returns the events written (empty when nothing changed).
    pub async fn update_ticket(
        &self,
        ticket_id: i64,
        agent_id: i64,
        update: &TicketUpdate,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT t.status, t.priority, t.ticket_type, a.name FROM tickets t
             LEFT JOIN agents a ON a.id = t.assignee_id WHERE t.id = $1",
        )
        .bind(ticket_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no ticket with id {ticket_id}")))?;
        let agent: String = sqlx::query_scalar("SELECT name FROM agents WHERE id = $1")
            .bind(agent_id)
            .fetch_one(&mut *tx)
            .await?;
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let mut events = Vec::new();
        let now = now();
        if let Some(status) = &update.status {
            let old: String = row.get(0);
            if &old != status {
                sqlx::query("UPDATE tickets SET status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(ticket_id)
                    .execute(&mut *tx)
                    .await?;
                events.push(format!("Status changed from {old} to {status} by {agent}."));
            }
        }
        for (value, index, column, label) in [
            (&update.priority, 1, "priority", "Priority"),
            (&update.ticket_type, 2, "ticket_type", "Type"),
        ] {
            let Some(new) = value else { continue };
            let new = new.clone().filter(|v| !v.trim().is_empty());
            let old: Option<String> = row.get(index);
            if old != new {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE tickets SET {column} = $1 WHERE id = $2"
                )))
                .bind(&new)
                .bind(ticket_id)
                .execute(&mut *tx)
                .await?;
                events.push(format!(
                    "{label} changed from {} to {} by {agent}.",
                    shown(&old),
                    shown(&new)
                ));
            }
        }
        if let Some(new) = &update.assignee {
            let new = new.clone().filter(|v| !v.trim().is_empty());
            let old: Option<String> = row.get(3);
            if old != new {
                let id: Option<i64> = match &new {
                    Some(name) => Some(
                        sqlx::query_scalar("SELECT id FROM agents WHERE name = $1 AND active")
                            .bind(name)
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or_else(|| {
                                StoreError::NotFound(format!("there is no agent named `{name}`"))
                            })?,
                    ),
                    None => None,
                };
                sqlx::query("UPDATE tickets SET assignee_id = $1 WHERE id = $2")
                    .bind(id)
                    .bind(ticket_id)
                    .execute(&mut *tx)
                    .await?;
                events.push(format!(
                    "Assignee changed from {} to {} by {agent}.",
                    shown(&old),
                    shown(&new)
                ));
            }
        }
        if !events.is_empty() {
            sqlx::query("UPDATE tickets SET modified_at = $1, modified_by = $2 WHERE id = $3")
                .bind(now)
                .bind(agent_id)
                .bind(ticket_id)
                .execute(&mut *tx)
                .await?;
            for text in &events {
                crate::entries::insert_event(&mut tx, ticket_id, Some(agent_id), text, now).await?;
            }
        }
        tx.commit().await?;
        Ok(events)
    }

    /// An internal note: agents see it, the customer never does.
    pub async fn add_note(&self, ticket_id: i64, agent_id: i64, text: &str) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
             VALUES ($1, 'note', $2, $3, FALSE, $4) RETURNING id",
        )
        .bind(ticket_id)
        .bind(agent_id)
        .bind(text)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE tickets SET modified_at = $1, modified_by = $2 WHERE id = $3")
            .bind(now)
            .bind(agent_id)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Tickets requested by a contact or by anyone of an organization, that the agent may see.
    pub async fn tickets_of(
        &self,
        contact: Option<i64>,
        organization: Option<i64>,
        visible: &[i64],
    ) -> Result<Vec<TicketSummary>> {
        let sql = format!(
            "{SUMMARY_SELECT} WHERE t.helpdesk_id IN {}
               AND ($1 IS NULL OR t.requester_id = $1) AND ($2 IS NULL OR t.organization_id = $2)
             ORDER BY t.modified_at DESC, t.id DESC LIMIT 500",
            id_list(visible)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(contact)
            .bind(organization)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(summary).collect())
    }

    /// Statuses, priorities and types in use, to offer as choices.
    pub async fn ticket_values(&self, column: TicketColumn) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT {0} FROM tickets WHERE {0} IS NOT NULL ORDER BY {0} LIMIT 200",
            column.name()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Active agents' names (for the assignee choice).
    pub async fn agent_names(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM agents WHERE active ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// An attachment reachable from a ticket the agent may see, by its content hash.
    pub async fn attachment_file(
        &self,
        sha256: &str,
        visible: &[i64],
    ) -> Result<Option<AttachmentFile>> {
        let sql = format!(
            "SELECT a.safe_name, a.mime_type, a.size FROM attachments a
             JOIN entries e ON e.id = a.entry_id JOIN tickets t ON t.id = e.ticket_id
             WHERE a.sha256 = $1 AND a.refused IS NULL AND t.helpdesk_id IN {} LIMIT 1",
            id_list(visible)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| AttachmentFile {
            safe_name: r.get(0),
            mime_type: r.get(1),
            size: r.get(2),
        }))
    }

    /// The helpdesk of a ledger row (None for mail no helpdesk took), or NotFound.
    pub async fn intake_helpdesk(&self, intake_id: i64) -> Result<Option<i64>> {
        sqlx::query_scalar::<_, Option<i64>>("SELECT helpdesk_id FROM intake WHERE id = $1")
            .bind(intake_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no intake record {intake_id}")))
    }

    /// Takes a failed mail out of the failed queue; it stays in the ledger.
    pub async fn dismiss_failed(&self, intake_id: i64) -> Result<()> {
        let done =
            sqlx::query("UPDATE intake SET dismissed_at = $1 WHERE id = $2 AND outcome = 'failed'")
                .bind(now())
                .bind(intake_id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "intake record {intake_id} is not in the failed queue"
            )));
        }
        Ok(())
    }
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
