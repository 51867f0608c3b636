//! Who may use the web UI and the API: agents with password hashes and roles, the
//! helpdesks they belong to, sessions and API tokens. Hashing and token generation
//! happen in the caller (the web crate); this module only keeps what it is given.

use sqlx::Row;

use crate::contacts::Scope;
use crate::{Result, Store, StoreError, now};

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
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub active: bool,
    /// Helpdesk ids the agent belongs to (every helpdesk for an admin).
    pub helpdesks: Vec<i64>,
    /// Helpdesk names, in the order of `helpdesks`.
    pub helpdesk_names: Vec<String>,
    pub has_password: bool,
}

impl AgentAccount {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn sees_helpdesk(&self, helpdesk_id: i64) -> bool {
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
    pub agent_id: i64,
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
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let mut helpdesk_ids = Vec::new();
        for h in helpdesks {
            let id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM helpdesks WHERE lower(name) = lower($1)")
                    .bind(h)
                    .fetch_optional(&mut *tx)
                    .await?;
            helpdesk_ids.push(id.ok_or_else(|| {
                StoreError::NotFound(format!(
                    "there is no helpdesk named `{h}` (helpdesks are registered from the config when postdesk starts)"
                ))
            })?);
        }
        let email = email.map(str::to_ascii_lowercase);
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM agents WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE agents SET email = COALESCE($1, email), role = $2,
                            password_hash = COALESCE($3, password_hash), active = TRUE
                     WHERE id = $4",
                )
                .bind(&email)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO agents (name, email, role, password_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(name)
                .bind(&email)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(now())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        if !helpdesks.is_empty() {
            sqlx::query("DELETE FROM agent_helpdesks WHERE agent_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for h in helpdesk_ids {
                sqlx::query("INSERT INTO agent_helpdesks (agent_id, helpdesk_id) VALUES ($1, $2)")
                    .bind(id)
                    .bind(h)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn set_agent_password(&self, name: &str, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "there is no agent named `{name}`; see `postdesk agents list`"
            )));
        }
        // A new password ends every session of the old one.
        sqlx::query(
            "DELETE FROM sessions WHERE agent_id = (SELECT id FROM agents WHERE name = $1)",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn agents(&self) -> Result<Vec<AgentAccount>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM agents ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut agents = Vec::new();
        for id in ids {
            agents.push(self.agent_account(id).await?);
        }
        Ok(agents)
    }

    pub async fn agent_account(&self, id: i64) -> Result<AgentAccount> {
        let row = sqlx::query(
            "SELECT id, name, email, role, active, password_hash IS NOT NULL FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no agent {id}")))?;
        let role = Role::parse(row.get::<String, _>(3).as_str()).unwrap_or(Role::Agent);
        let helpdesks = if role == Role::Admin {
            sqlx::query("SELECT id, name FROM helpdesks ORDER BY name")
                .fetch_all(&self.pool)
                .await?
        } else {
            sqlx::query(
                "SELECT h.id, h.name FROM helpdesks h JOIN agent_helpdesks ah ON ah.helpdesk_id = h.id
                 WHERE ah.agent_id = $1 ORDER BY h.name",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
        };
        Ok(AgentAccount {
            id: row.get(0),
            name: row.get(1),
            email: row.get(2),
            role,
            active: row.get(4),
            helpdesks: helpdesks.iter().map(|r| r.get(0)).collect(),
            helpdesk_names: helpdesks.iter().map(|r| r.get(1)).collect(),
            has_password: row.get(5),
        })
    }

    /// The id of the agent named `name`, or NotFound.
    pub async fn agent_id(&self, name: &str) -> Result<i64> {
        sqlx::query_scalar("SELECT id FROM agents WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "there is no agent named `{name}`; see `postdesk agents list`"
                ))
            })
    }

    /// The agent that signs in with `login` (name or email) and its password hash.
    pub async fn agent_login(&self, login: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT id, password_hash FROM agents
             WHERE (name = $1 OR email = lower($1)) AND active AND password_hash IS NOT NULL",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        agent_id: i64,
        csrf: &str,
        lifetime_secs: i64,
    ) -> Result<()> {
        let now = now();
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(agent_id)
        .bind(csrf)
        .bind(now)
        .bind(now + lifetime_secs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live session of an active agent.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT s.agent_id, s.csrf, s.expires_at FROM sessions s JOIN agents a ON a.id = s.agent_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.active",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SessionRow {
            agent_id: r.get(0),
            csrf: r.get(1),
            expires_at: r.get(2),
        }))
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_api_token(&self, agent: &str, name: &str, token_hash: &str) -> Result<()> {
        let agent_id: i64 = sqlx::query_scalar("SELECT id FROM agents WHERE name = $1")
            .bind(agent)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "there is no agent named `{agent}`; see `postdesk agents list`"
                ))
            })?;
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, agent_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(agent_id)
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The active agent an API token belongs to.
    pub async fn api_token_agent(&self, token_hash: &str) -> Result<Option<i64>> {
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE api_tokens SET last_used_at = $2
             WHERE token_hash = $1 AND agent_id IN (SELECT id FROM agents WHERE active)
             RETURNING agent_id",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }
}
