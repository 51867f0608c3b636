//! Agents' notifications inside the app (issue 17): the `notifications` table (one
//! row per agent and event, read or not) and `ticket_watchers`. Who is notified is
//! decided here from an [`Audience`] (the helpdesk's setting, resolved against the
//! ticket: its helpdesk's agents, a team's addresses, or the agents concerned), never
//! including the agent who acted; read notifications older than `keep_days` are
//! pruned whenever new ones are written.

use crate::engine::{Db, OptionalExtension, params};
use postdesk_core::id::{AgentId, TicketId, TicketNumber};
use serde::Serialize;

use crate::sql::id_list;
use crate::{Result, Store, StoreError, Tx, now};

/// Who hears of an event, before it is resolved against the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    None,
    /// Every active agent who sees the ticket's helpdesk.
    AllAgents,
    /// The active agents with these addresses who see the helpdesk.
    Addresses(Vec<String>),
    /// The assignee, the manager, the watchers and the agents who wrote on the ticket.
    Concerned,
}

/// One event to tell.
pub struct NewNotification<'a> {
    pub ticket_id: TicketId,
    /// `created` or `modified`.
    pub event: &'a str,
    pub text: &'a str,
    /// The agent who acted: never told of their own change.
    pub actor: Option<AgentId>,
    pub audience: &'a Audience,
    pub keep_days: u32,
}

/// A notification as its agent sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: i64,
    pub ticket_id: TicketId,
    pub ticket_number: TicketNumber,
    pub helpdesk: String,
    pub title: String,
    pub event: String,
    pub text: String,
    pub created_at: i64,
    pub read: bool,
}

/// Writes the event for each agent of its audience but the actor; returns how many.
pub fn notify(tx: Tx<'_>, n: &NewNotification<'_>) -> Result<usize> {
    let db = tx.conn();
    let now = now();
    let agents = audience(&db, n.ticket_id, n.audience)?;
    let mut written = 0;
    for agent in agents.into_iter().filter(|a| Some(*a) != n.actor) {
        // The agent's read ones past keep_days go with their next: per agent, so that
        // the index on (agent_id, read_at) finds them (intake writes one per mail).
        db.prepare_cached(
            "DELETE FROM notifications
             WHERE agent_id = ?1 AND read_at IS NOT NULL AND read_at <= ?2",
        )?
        .execute(params![agent, now - i64::from(n.keep_days) * 86_400])?;
        db.prepare_cached(
            "INSERT INTO notifications (agent_id, ticket_id, event, text, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![agent, n.ticket_id, n.event, n.text, now])?;
        written += 1;
    }
    Ok(written)
}

/// [`notify`] for many events at once (intake's batch): the audiences of every
/// ticket read in a query per kind, the old read notifications of each agent pruned
/// once, the rows written in one statement. Returns how many were written.
pub fn notify_all(tx: Tx<'_>, list: &[NewNotification<'_>]) -> Result<usize> {
    if list.is_empty() {
        return Ok(0);
    }
    let db = tx.conn();
    let now = now();
    let mut tickets: Vec<TicketId> = list.iter().map(|n| n.ticket_id).collect();
    tickets.sort();
    tickets.dedup();
    let kinds = |wanted: fn(&Audience) -> bool| list.iter().any(|n| wanted(n.audience));
    let all_agents = if kinds(|a| *a == Audience::AllAgents) {
        audiences(&db, &tickets, ALL_AGENTS)?
    } else {
        Vec::new()
    };
    let concerned = if kinds(|a| *a == Audience::Concerned) {
        audiences(&db, &tickets, CONCERNED)?
    } else {
        Vec::new()
    };
    let of = |found: &[(TicketId, AgentId)], ticket: TicketId| -> Vec<AgentId> {
        found
            .iter()
            .filter(|(t, _)| *t == ticket)
            .map(|(_, a)| *a)
            .collect()
    };
    let mut rows: Vec<(AgentId, &NewNotification<'_>)> = Vec::new();
    for n in list {
        let mut agents = match n.audience {
            Audience::AllAgents => of(&all_agents, n.ticket_id),
            Audience::Concerned => of(&concerned, n.ticket_id),
            other => audience(&db, n.ticket_id, other)?,
        };
        agents.sort();
        agents.dedup();
        rows.extend(
            agents
                .into_iter()
                .filter(|a| Some(*a) != n.actor)
                .map(|a| (a, n)),
        );
    }
    let mut pruned: Vec<(AgentId, u32)> = rows.iter().map(|(a, n)| (*a, n.keep_days)).collect();
    pruned.sort();
    pruned.dedup();
    for (agent, keep_days) in pruned {
        db.prepare_cached(
            "DELETE FROM notifications
             WHERE agent_id = ?1 AND read_at IS NOT NULL AND read_at <= ?2",
        )?
        .execute(params![agent, now - i64::from(keep_days) * 86_400])?;
    }
    // 5 values a row: far below either engine's limit of parameters per statement.
    for chunk in rows.chunks(1000) {
        let sql = format!(
            "INSERT INTO notifications (agent_id, ticket_id, event, text, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut values: Vec<&dyn crate::engine::Param> = Vec::with_capacity(chunk.len() * 5);
        for (agent, n) in chunk {
            values.extend_from_slice(params![*agent, n.ticket_id, n.event, n.text, now]);
        }
        db.prepare(&sql)?.execute(values.as_slice())?;
    }
    Ok(rows.len())
}

/// (ticket, agent) for the agents each of `tickets` concerns (see
/// [`Audience::Concerned`]), `{tickets}` their id list. Each part goes through an
/// index on the ticket: as a condition on every agent, PostgreSQL read all of
/// `entries` for it (a third of a second a batch at 10,000 tickets).
const CONCERNED: &str =
    "SELECT id AS ticket_id, assignee_id AS agent_id FROM tickets WHERE id IN {tickets}
     UNION SELECT id, manager_id FROM tickets WHERE id IN {tickets}
     UNION SELECT ticket_id, agent_id FROM ticket_watchers WHERE ticket_id IN {tickets}
     UNION SELECT ticket_id, author_agent_id FROM entries
           WHERE ticket_id IN {tickets} AND kind IN ('outgoing', 'note')";

/// (ticket, agent) for every agent of each of `tickets`.
const ALL_AGENTS: &str = "SELECT t.id AS ticket_id, a.id AS agent_id FROM tickets t CROSS JOIN agents a WHERE t.id IN {tickets}";

/// (ticket, agent) for the agents `candidates` (a query of such pairs, see
/// [`CONCERNED`] and [`ALL_AGENTS`]) names who are active and see the ticket's
/// helpdesk (as [`SEES_TICKET`]).
fn audiences(db: &Db, tickets: &[TicketId], candidates: &str) -> Result<Vec<(TicketId, AgentId)>> {
    let candidates = candidates.replace("{tickets}", &id_list(tickets));
    let sql = format!(
        "SELECT c.ticket_id, a.id FROM ({candidates}) AS c
         JOIN tickets t ON t.id = c.ticket_id JOIN agents a ON a.id = c.agent_id
         WHERE a.active AND (a.role = 'admin' OR EXISTS (
             SELECT 1 FROM agent_helpdesks ah WHERE ah.agent_id = a.id AND ah.helpdesk_id = t.helpdesk_id))"
    );
    db.prepare(&sql)?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The active agents who see the ticket's helpdesk: its members and the admins.
const SEES_TICKET: &str = "a.active AND (a.role = 'admin' OR EXISTS (
     SELECT 1 FROM agent_helpdesks ah JOIN tickets t ON t.helpdesk_id = ah.helpdesk_id
     WHERE ah.agent_id = a.id AND t.id = ?1))";

fn audience(db: &Db, ticket: TicketId, audience: &Audience) -> Result<Vec<AgentId>> {
    // One text per kind of audience: kept prepared (intake asks once per mail).
    let ids = |sql: String, addresses: Option<&[String]>| -> Result<Vec<AgentId>> {
        let mut statement = db.prepare_cached(&sql)?;
        let rows: Vec<AgentId> = match addresses {
            None => statement
                .query_map([ticket], |r| r.get(0))?
                .collect::<Result<_>>()?,
            Some(list) => {
                let mut all = Vec::new();
                for address in list {
                    all.extend(
                        statement
                            .query_map(params![ticket, address.trim().to_lowercase()], |r| {
                                r.get(0)
                            })?
                            .collect::<Result<Vec<AgentId>>>()?,
                    );
                }
                all
            }
        };
        Ok(rows)
    };
    let mut agents = match audience {
        Audience::None => Vec::new(),
        Audience::AllAgents => ids(
            format!("SELECT a.id FROM agents a WHERE {SEES_TICKET} ORDER BY a.id"),
            None,
        )?,
        Audience::Addresses(list) => ids(
            format!("SELECT a.id FROM agents a WHERE a.email = ?2 AND {SEES_TICKET}"),
            Some(list),
        )?,
        Audience::Concerned => ids(
            format!(
                "SELECT a.id FROM agents a WHERE {SEES_TICKET} AND (
                     a.id IN (SELECT assignee_id FROM tickets WHERE id = ?1)
                  OR a.id IN (SELECT manager_id FROM tickets WHERE id = ?1)
                  OR a.id IN (SELECT agent_id FROM ticket_watchers WHERE ticket_id = ?1)
                  OR a.id IN (SELECT author_agent_id FROM entries
                              WHERE ticket_id = ?1 AND kind IN ('outgoing', 'note')))
                 ORDER BY a.id"
            ),
            None,
        )?,
    };
    agents.sort();
    agents.dedup();
    Ok(agents)
}

/// Where mail about an event goes: the audience's agents' addresses (an
/// `Addresses` audience as given, agents or not), never the actor's.
pub fn audience_addresses(
    tx: Tx<'_>,
    ticket: TicketId,
    audience: &Audience,
    actor: Option<AgentId>,
) -> Result<Vec<(Option<String>, String)>> {
    let db = tx.conn();
    let actor_email: Option<String> = match actor {
        Some(id) => db
            .prepare_cached("SELECT email FROM agents WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten(),
        None => None,
    };
    let mut list: Vec<(Option<String>, String)> = match audience {
        Audience::Addresses(addresses) => addresses
            .iter()
            .map(|a| (None, a.trim().to_lowercase()))
            .collect(),
        other => {
            let mut found = Vec::new();
            for id in self::audience(&db, ticket, other)? {
                if Some(id) == actor {
                    continue;
                }
                let row: Option<(String, Option<String>)> = db
                    .prepare_cached("SELECT name, email FROM agents WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((name, Some(email))) = row {
                    found.push((Some(name), email));
                }
            }
            found
        }
    };
    list.retain(|(_, a)| Some(a) != actor_email.as_ref());
    list.dedup_by(|x, y| x.1 == y.1);
    Ok(list)
}

impl Store {
    /// Writes a notification in a transaction of its own (for changes made outside
    /// intake's transaction); returns how many agents were told.
    pub async fn notify(
        &self,
        ticket_id: TicketId,
        event: &str,
        text: &str,
        actor: Option<AgentId>,
        audience: Audience,
        keep_days: u32,
    ) -> Result<usize> {
        let (event, text) = (event.to_string(), text.to_string());
        self.transaction(move |tx| {
            notify(
                tx,
                &NewNotification {
                    ticket_id,
                    event: &event,
                    text: &text,
                    actor,
                    audience: &audience,
                    keep_days,
                },
            )
        })
        .await
    }

    /// The agent's notifications, newest first.
    pub async fn notifications(&self, agent: AgentId, limit: i64) -> Result<Vec<Notification>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT n.id, n.ticket_id, t.number, h.name, t.title, n.event, n.text, n.created_at,
                        n.read_at IS NOT NULL
                 FROM notifications n JOIN tickets t ON t.id = n.ticket_id
                 JOIN helpdesks h ON h.id = t.helpdesk_id
                 WHERE n.agent_id = ?1 ORDER BY n.id DESC LIMIT ?2",
            )?
            .query_map(params![agent, limit], |r| {
                Ok(Notification {
                    id: r.get(0)?,
                    ticket_id: r.get(1)?,
                    ticket_number: r.get(2)?,
                    helpdesk: r.get(3)?,
                    title: r.get(4)?,
                    event: r.get(5)?,
                    text: r.get(6)?,
                    created_at: r.get(7)?,
                    read: r.get(8)?,
                })
            })?
            .collect::<Result<_>>()
        })
        .await
    }

    /// How many of the agent's notifications are unread: the bell's number.
    pub async fn unread_notifications(&self, agent: AgentId) -> Result<i64> {
        self.read(move |conn| unread(conn, agent)).await
    }

    /// Marks the agent's notification `id` read, or all of them; NotFound for an id
    /// that is not theirs.
    pub async fn mark_notifications_read(&self, agent: AgentId, id: Option<i64>) -> Result<usize> {
        self.write(move |tx| {
            let done = tx
                .prepare_cached(
                    "UPDATE notifications SET read_at = ?1
                     WHERE agent_id = ?2 AND (CAST(?3 AS BIGINT) IS NULL OR id = ?3) AND read_at IS NULL",
                )?
                .execute(params![now(), agent, id])?;
            if let Some(id) = id
                && done == 0
            {
                let mine: Option<i64> = tx
                    .prepare_cached("SELECT id FROM notifications WHERE id = ?1 AND agent_id = ?2")?
                    .query_row(params![id, agent], |r| r.get(0))
                    .optional()?;
                if mine.is_none() {
                    return Err(StoreError::NotFound(format!("you have no notification {id}")));
                }
            }
            Ok(done)
        })
        .await
    }

    /// The agent watches the ticket (or stops).
    pub async fn watch_ticket(&self, ticket: TicketId, agent: AgentId, watch: bool) -> Result<()> {
        self.write(move |tx| {
            if watch {
                tx.prepare_cached(
                    "INSERT INTO ticket_watchers (ticket_id, agent_id) VALUES (?1, ?2)
                     ON CONFLICT (ticket_id, agent_id) DO NOTHING",
                )?
                .execute(params![ticket, agent])?;
            } else {
                tx.prepare_cached(
                    "DELETE FROM ticket_watchers WHERE ticket_id = ?1 AND agent_id = ?2",
                )?
                .execute(params![ticket, agent])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn watches(&self, ticket: TicketId, agent: AgentId) -> Result<bool> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT 1 FROM ticket_watchers WHERE ticket_id = ?1 AND agent_id = ?2",
                )?
                .query_row(params![ticket, agent], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }
}

/// How many of the agent's notifications are unread (see
/// [`Store::unread_notifications`]).
pub(crate) fn unread(conn: &Db, agent: AgentId) -> Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM notifications WHERE agent_id = ?1 AND read_at IS NULL",
    )?
    .query_row([agent], |r| r.get(0))
}
