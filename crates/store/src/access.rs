//! Who may use the web UI and the API: agents with password hashes and roles, the
//! helpdesks they belong to, sessions and API tokens. Hashing and token generation
//! happen in the caller (the web crate); this module only keeps what it is given.

use postdesk_core::id::{AgentId, HelpdeskId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::contacts::Scope;
use crate::{Result, Store, StoreError, Tx, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A signed-in agent and what they may see.
#[derive(Debug, Clone)]
pub struct AgentAccount {
    pub id: AgentId,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub active: bool,
    /// Helpdesk ids the agent belongs to (every helpdesk for an admin).
    pub helpdesks: Vec<HelpdeskId>,
    /// Helpdesk names, in the order of `helpdesks`.
    pub helpdesk_names: Vec<String>,
    pub has_password: bool,
}

impl AgentAccount {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn sees_helpdesk(&self, helpdesk_id: HelpdeskId) -> bool {
        self.helpdesks.contains(&helpdesk_id)
    }

    /// What the agent's contact and organization queries may reach.
    pub fn scope(&self) -> Scope {
        if self.is_admin() {
            Scope::Everything
        } else {
            Scope::Helpdesks(self.helpdesks.clone())
        }
    }
}

/// A session found by its token hash.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub agent_id: AgentId,
    pub csrf: String,
    pub expires_at: i64,
}

impl Store {
    /// Creates the agent or updates its email, role, password hash and helpdesks.
    pub async fn save_agent(
        &self,
        name: &str,
        email: Option<&str>,
        role: Role,
        password_hash: Option<&str>,
        helpdesks: &[String],
    ) -> Result<AgentId> {
        let name = name.to_string();
        let email = email.map(str::to_ascii_lowercase);
        let password_hash = password_hash.map(str::to_string);
        let helpdesks = helpdesks.to_vec();
        self.write(move |tx| {
            let mut helpdesk_ids = Vec::new();
            for h in &helpdesks {
                let id: Option<AgentId> = tx
                    .prepare_cached("SELECT id FROM helpdesks WHERE lower(name) = lower(?1)")?
                    .query_row([h], |r| r.get(0))
                    .optional()?;
                helpdesk_ids.push(id.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "there is no helpdesk named `{h}` (helpdesks are registered from the config when postdesk starts)"
                    ))
                })?);
            }
            let existing: Option<AgentId> = tx
                .prepare_cached("SELECT id FROM agents WHERE name = ?1")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            let id = match existing {
                Some(id) => {
                    tx.prepare_cached(
                        "UPDATE agents SET email = COALESCE(?1, email), role = ?2,
                                password_hash = COALESCE(?3, password_hash), active = TRUE
                         WHERE id = ?4",
                    )?
                    .execute(params![email, role.as_str(), password_hash, id])?;
                    id
                }
                None => tx
                    .prepare_cached(
                        "INSERT INTO agents (name, email, role, password_hash, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    )?
                    .query_row(
                        params![name, email, role.as_str(), password_hash, now()],
                        |r| r.get(0),
                    )?,
            };
            if !helpdesks.is_empty() {
                tx.prepare_cached("DELETE FROM agent_helpdesks WHERE agent_id = ?1")?
                    .execute([id])?;
                for h in helpdesk_ids {
                    tx.prepare_cached(
                        "INSERT INTO agent_helpdesks (agent_id, helpdesk_id) VALUES (?1, ?2)",
                    )?
                    .execute([id, h])?;
                }
            }
            Ok(id)
        })
        .await
    }

    pub async fn set_agent_password(&self, name: &str, password_hash: &str) -> Result<()> {
        let name = name.to_string();
        let password_hash = password_hash.to_string();
        self.write(move |tx| {
            let done = tx
                .prepare_cached("UPDATE agents SET password_hash = ?1 WHERE name = ?2")?
                .execute([&password_hash, &name])?;
            if done == 0 {
                return Err(StoreError::NotFound(format!(
                    "there is no agent named `{name}`; see `postdesk agents list`"
                )));
            }
            // A new password ends every session of the old one.
            tx.prepare_cached(
                "DELETE FROM sessions WHERE agent_id = (SELECT id FROM agents WHERE name = ?1)",
            )?
            .execute([&name])?;
            Ok(())
        })
        .await
    }

    pub async fn agents(&self) -> Result<Vec<AgentAccount>> {
        self.read(|conn| {
            let ids: Vec<AgentId> = conn
                .prepare_cached("SELECT id FROM agents ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter().map(|id| agent_account(conn, id)).collect()
        })
        .await
    }

    pub async fn agent_account(&self, id: AgentId) -> Result<AgentAccount> {
        self.read(move |conn| agent_account(conn, id)).await
    }

    /// The id of the agent named `name`, or NotFound.
    pub async fn agent_id(&self, name: &str) -> Result<AgentId> {
        let name = name.to_string();
        self.read(move |conn| agent_named(conn, &name)).await
    }

    /// The agent that signs in with `login` (name or email) and its password hash.
    pub async fn agent_login(&self, login: &str) -> Result<Option<(AgentId, String)>> {
        let login = login.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, password_hash FROM agents
                     WHERE (name = ?1 OR email = lower(?1)) AND active AND password_hash IS NOT NULL",
                )?
                .query_row([&login], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        agent_id: AgentId,
        csrf: &str,
        lifetime_secs: i64,
    ) -> Result<()> {
        let token_hash = token_hash.to_string();
        let csrf = csrf.to_string();
        self.write(move |tx| {
            let now = now();
            tx.prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")?
                .execute([now])?;
            tx.prepare_cached(
                "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                token_hash,
                agent_id,
                csrf,
                now,
                now + lifetime_secs
            ])?;
            Ok(())
        })
        .await
    }

    /// A live session of an active agent.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT s.agent_id, s.csrf, s.expires_at FROM sessions s JOIN agents a ON a.id = s.agent_id
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND a.active",
                )?
                .query_row(params![token_hash, now()], |r| {
                    Ok(SessionRow {
                        agent_id: r.get(0)?,
                        csrf: r.get(1)?,
                        expires_at: r.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
                .execute([&token_hash])?;
            Ok(())
        })
        .await
    }

    pub async fn create_api_token(&self, agent: &str, name: &str, token_hash: &str) -> Result<()> {
        let (agent, name, token_hash) =
            (agent.to_string(), name.to_string(), token_hash.to_string());
        self.write(move |tx| {
            let agent_id = agent_named(tx, &agent)?;
            tx.prepare_cached(
                "INSERT INTO api_tokens (token_hash, agent_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![token_hash, agent_id, name, now()])?;
            Ok(())
        })
        .await
    }

    /// The active agent an API token belongs to.
    pub async fn api_token_agent(&self, token_hash: &str) -> Result<Option<AgentId>> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| {
            Ok(tx
                .prepare_cached(
                    "UPDATE api_tokens SET last_used_at = ?2
                     WHERE token_hash = ?1 AND agent_id IN (SELECT id FROM agents WHERE active)
                     RETURNING agent_id",
                )?
                .query_row(params![token_hash, now()], |r| r.get(0))
                .optional()?)
        })
        .await
    }
}

/// Agents' addresses (lower-case): mail from them is an agent's, whatever it quotes.
pub(crate) fn agent_emails(conn: &Connection) -> Result<std::collections::HashSet<String>> {
    Ok(conn
        .prepare_cached("SELECT email FROM agents WHERE email IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Every agent with an address, as (name, address), in the order they were added.
pub fn agents_with_email(tx: Tx<'_>) -> Result<Vec<(String, String)>> {
    Ok(tx
        .conn()
        .prepare_cached("SELECT name, email FROM agents WHERE email IS NOT NULL ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// The name of agent `id`.
pub fn agent_name(tx: Tx<'_>, id: AgentId) -> Result<String> {
    Ok(tx
        .conn()
        .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?)
}

/// The id of the agent named `name`, or NotFound.
fn agent_named(conn: &Connection, name: &str) -> Result<AgentId> {
    conn.prepare_cached("SELECT id FROM agents WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "there is no agent named `{name}`; see `postdesk agents list`"
            ))
        })
}

fn agent_account(conn: &Connection, id: AgentId) -> Result<AgentAccount> {
    let (name, email, role, active, has_password): (String, Option<String>, String, bool, bool) =
        conn.prepare_cached(
            "SELECT name, email, role, active, password_hash IS NOT NULL FROM agents WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("there is no agent {id}")))?;
    let role = Role::parse(&role).unwrap_or(Role::Agent);
    let helpdesks: Vec<(HelpdeskId, String)> = if role == Role::Admin {
        conn.prepare_cached("SELECT id, name FROM helpdesks ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    } else {
        conn.prepare_cached(
            "SELECT h.id, h.name FROM helpdesks h JOIN agent_helpdesks ah ON ah.helpdesk_id = h.id
             WHERE ah.agent_id = ?1 ORDER BY h.name",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?
    };
    Ok(AgentAccount {
        id,
        name,
        email,
        role,
        active,
        helpdesks: helpdesks.iter().map(|h| h.0).collect(),
        helpdesk_names: helpdesks.into_iter().map(|h| h.1).collect(),
        has_password,
    })
}
