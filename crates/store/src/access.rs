//! Who may use the web UI and the API: agents with password hashes and roles, the
//! helpdesks they belong to, sessions, API tokens (which expire and can be revoked)
//! and the sign-in limits. Hashing and token generation happen in the caller (the web
//! crate); this module only keeps what it is given, and never a token itself.
//!
//! The sign-in limits live here, in the database, rather than in the web server's
//! memory: an attempt is counted in the same write transaction that decides whether
//! it may go ahead (so parallel attempts cannot slip past the count), the table is
//! bounded, and `postdesk agents locks | unlock` can see and clear them from another
//! process.

use crate::engine::{Db, OptionalExtension, params};
use postdesk_core::id::{AgentId, HelpdeskId};
use sha2::{Digest, Sha256};

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

/// What proves who a request is: the hash of its API token or of its session cookie.
#[derive(Debug, Clone)]
pub enum Proof {
    ApiToken(String),
    Session(String),
}

/// A request's agent, as [`Store::signed_in`] reads it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: AgentAccount,
    /// The session's CSRF token (`None` for an API token).
    pub csrf: Option<String>,
    /// Unread notifications, when asked for.
    pub unread: Option<i64>,
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

    /// Sets the password and ends every session of the old one; the agent's API tokens
    /// are revoked too unless `keep_tokens`.
    pub async fn set_agent_password(
        &self,
        name: &str,
        password_hash: &str,
        keep_tokens: bool,
    ) -> Result<()> {
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
            if !keep_tokens {
                revoke_tokens(tx, agent_named(tx, &name)?, None)?;
            }
            Ok(())
        })
        .await
    }

    /// Lets the agent sign in again (`true`) or not at all (`false`: their sessions end
    /// and their tokens stop working while they are disabled).
    pub async fn set_agent_active(&self, name: &str, active: bool) -> Result<()> {
        let name = name.to_string();
        self.write(move |tx| {
            let id = agent_named(tx, &name)?;
            tx.prepare_cached("UPDATE agents SET active = ?1 WHERE id = ?2")?
                .execute(params![active, id])?;
            if !active {
                tx.prepare_cached("DELETE FROM sessions WHERE agent_id = ?1")?
                    .execute([id])?;
            }
            Ok(())
        })
        .await
    }

    /// Names of the active agents who work in any of `helpdesk_ids`: their members,
    /// and the admins (who belong to every helpdesk). The choice of assignees.
    pub async fn helpdesk_agent_names(&self, helpdesk_ids: &[HelpdeskId]) -> Result<Vec<String>> {
        let helpdesk_ids = helpdesk_ids.to_vec();
        self.read(move |conn| helpdesk_agent_names(conn, &helpdesk_ids))
            .await
    }

    pub async fn agents(&self) -> Result<Vec<AgentAccount>> {
        self.read(|conn| {
            let ids: Vec<AgentId> = conn
                .prepare_cached("SELECT id FROM agents ORDER BY name")?
                .query_map((), |r| r.get(0))?
                .collect::<Result<_>>()?;
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
            conn
                .prepare_cached(
                    "SELECT id, password_hash FROM agents
                     WHERE (name = ?1 OR email = lower(?1)) AND active AND password_hash IS NOT NULL",
                )?
                .query_row([&login], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
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

    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
                .execute([&token_hash])?;
            Ok(())
        })
        .await
    }

    /// Keeps a new API token's hash; `expires_at` (unix seconds) ends it, `None` never.
    /// Returns the token's id, by which it is listed and revoked.
    pub async fn create_api_token(
        &self,
        agent: &str,
        name: &str,
        token_hash: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let (agent, name, token_hash) =
            (agent.to_string(), name.to_string(), token_hash.to_string());
        self.write(move |tx| {
            let agent_id = agent_named(tx, &agent)?;
            tx.prepare_cached(
                "INSERT INTO api_tokens (token_hash, agent_id, name, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?
            .query_row(
                params![token_hash, agent_id, name, now(), expires_at],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The agent's API tokens, newest first (what is known of them: never the token).
    pub async fn api_tokens(&self, agent: &str) -> Result<Vec<ApiTokenInfo>> {
        let agent = agent.to_string();
        self.read(move |conn| {
            let agent_id = agent_named(conn, &agent)?;
            conn.prepare_cached(
                "SELECT id, name, created_at, expires_at, last_used_at, revoked_at
                     FROM api_tokens WHERE agent_id = ?1 ORDER BY id DESC",
            )?
            .query_map([agent_id], |r| {
                Ok(ApiTokenInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                    last_used_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                })
            })?
            .collect::<Result<_>>()
        })
        .await
    }

    /// Revokes the agent's token `id`, or all their tokens; returns how many were live.
    pub async fn revoke_api_tokens(&self, agent: &str, id: Option<i64>) -> Result<usize> {
        let agent = agent.to_string();
        self.write(move |tx| {
            let agent_id = agent_named(tx, &agent)?;
            if let Some(id) = id {
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT id FROM api_tokens WHERE id = ?1 AND agent_id = ?2")?
                    .query_row(params![id, agent_id], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "{agent} has no token {id}; see `postdesk agents tokens {agent}`"
                    )));
                }
            }
            revoke_tokens(tx, agent_id, id)
        })
        .await
    }

    /// Who a request is, in one read (issue 19: the API token, the account and the
    /// unread count were three, each waiting for a reader under load): the active
    /// agent `proof` names, their account, the session's CSRF token, and with
    /// `count_unread` their unread notifications. `None`: no such live token or session.
    ///
    /// An API token's use is recorded (`last_used_at`) to the minute only
    /// (`TOKEN_USE_RESOLUTION`): the write follows the read only when the recorded use
    /// is older than that. Writing on every request made each API call a write
    /// transaction (a new writer connection, `BEGIN IMMEDIATE`, a synced commit and a
    /// checkpoint): 32 agents' requests queued one by one behind SQLite's write lock,
    /// and pages of 3 ms alone took seconds (issue 19).
    pub async fn signed_in(&self, proof: Proof, count_unread: bool) -> Result<Option<SignedIn>> {
        let found = self.read_signed_in(proof.clone(), count_unread).await?;
        let Some((signed_in, token_stale)) = found else {
            return Ok(None);
        };
        if let (Proof::ApiToken(hash), true) = (&proof, token_stale) {
            // Revoked, expired or disabled since the read: refused.
            if !self.note_token_use(hash).await? {
                return Ok(None);
            }
        }
        Ok(Some(signed_in))
    }

    /// [`Store::signed_in`]'s read, and whether the token's use is to be recorded.
    async fn read_signed_in(
        &self,
        proof: Proof,
        count_unread: bool,
    ) -> Result<Option<(SignedIn, bool)>> {
        self.read(move |conn| {
            let (agent_id, csrf, token_stale) = match &proof {
                Proof::ApiToken(hash) => match live_token(conn, hash)? {
                    Some((id, last_used)) => (id, None, token_use_stale(last_used)),
                    None => return Ok(None),
                },
                Proof::Session(hash) => match live_session(conn, hash)? {
                    Some((agent_id, csrf)) => (agent_id, Some(csrf), false),
                    None => return Ok(None),
                },
            };
            let account = agent_account(conn, agent_id)?;
            let unread = if count_unread {
                Some(crate::notifications::unread(conn, agent_id)?)
            } else {
                None
            };
            Ok(Some((
                SignedIn {
                    account,
                    csrf,
                    unread,
                },
                token_stale,
            )))
        })
        .await
    }

    /// Records the use of a live API token now; false when it was revoked or expired
    /// or its agent disabled since it was read (checked again as it is written).
    async fn note_token_use(&self, token_hash: &str) -> Result<bool> {
        let now = now();
        let hash = token_hash.to_string();
        self.write(move |tx| {
            let recorded = tx
                .prepare_cached(
                    "UPDATE api_tokens SET last_used_at = ?2
                     WHERE token_hash = ?1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?2)
                       AND agent_id IN (SELECT id FROM agents WHERE active)",
                )?
                .execute(params![hash, now])?;
            Ok(recorded > 0)
        })
        .await
    }

    /// Counts a sign-in attempt for `login` from `address` before its password is
    /// checked, in one write transaction, or refuses it (see [`LoginLimits`]).
    pub async fn begin_login(
        &self,
        login: &str,
        address: &str,
        limits: LoginLimits,
    ) -> Result<LoginGate> {
        let key = login_key(login);
        let address = address.to_string();
        self.write(move |tx| begin_login(tx, &key, &address, &limits, now()))
            .await
    }

    /// The attempt `begin_login` counted was right: the pair's count ends, the name's
    /// and the address's forget this one attempt, and the address becomes one the
    /// name is known to sign in from.
    pub async fn login_succeeded(&self, login: &str, address: &str) -> Result<()> {
        let key = login_key(login);
        let address = address.to_string();
        self.write(move |tx| {
            let now = now();
            tx.prepare_cached(
                "DELETE FROM login_attempts WHERE scope = 'pair' AND name_key = ?1 AND address = ?2",
            )?
            .execute([&key, &address])?;
            tx.prepare_cached(
                "UPDATE login_attempts SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                 WHERE (scope = 'name' AND name_key = ?1) OR (scope = 'address' AND address = ?2)",
            )?
            .execute([&key, &address])?;
            tx.prepare_cached(
                "INSERT INTO login_known (name_key, address, last_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name_key, address) DO UPDATE SET last_at = excluded.last_at",
            )?
            .execute(params![key, address, now])?;
            tx.prepare_cached("DELETE FROM login_known WHERE last_at < ?1")?
                .execute([now - KNOWN_ADDRESS_SECS])?;
            tx.prepare_cached(
                "DELETE FROM login_known WHERE (name_key, address) IN (
                     SELECT name_key, address FROM login_known ORDER BY last_at
                     LIMIT CASE WHEN (SELECT COUNT(*) FROM login_known) > ?1
                                THEN (SELECT COUNT(*) FROM login_known) - ?1 ELSE 0 END)",
            )?
            .execute([MAX_KNOWN_ADDRESSES])?;
            Ok(())
        })
        .await
    }

    /// The sign-in limits in force now: names (as the agent's name when it is one),
    /// addresses, attempts and how long they are refused.
    pub async fn login_locks(&self, limits: LoginLimits) -> Result<Vec<LoginLock>> {
        self.read(move |conn| {
            let now = now();
            let names: std::collections::HashMap<String, String> = conn
                .prepare_cached("SELECT name FROM agents")?
                .query_map((), |r| r.get::<_, String>(0))?
                .map(|name| name.map(|n| (login_key(&n), n)))
                .collect::<Result<_>>()?;
            let rows: Vec<(String, String, String, i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT scope, name_key, address, attempts, first_at, last_at
                     FROM login_attempts WHERE first_at > ?1 ORDER BY last_at DESC",
                )?
                .query_map([now - limits.window_secs], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<_>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(scope, key, address, attempts, first_at, last_at)| {
                    let count = Count {
                        attempts,
                        first_at,
                        last_at,
                    };
                    let wait_secs = match scope.as_str() {
                        "pair" => limits.pair_wait(&count, now),
                        "name" => limits.name_wait(&count, now),
                        _ => limits.address_wait(&count, now),
                    }?;
                    Some(LoginLock {
                        name: (!key.is_empty()).then(|| {
                            names
                                .get(&key)
                                .cloned()
                                .unwrap_or_else(|| "(not an agent)".into())
                        }),
                        address: (!address.is_empty()).then_some(address),
                        attempts,
                        wait_secs,
                    })
                })
                .collect())
        })
        .await
    }

    /// How many sign-in counts are kept (at most [`LoginLimits::max_rows`]).
    pub async fn login_count_rows(&self) -> Result<i64> {
        self.read(|conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM login_attempts")?
                .query_row((), |r| r.get(0))
        })
        .await
    }

    /// Clears the limits on the name `login`, and on the address of the agent of that
    /// name, from every client address; returns how many counts were cleared.
    pub async fn clear_login_locks(&self, login: &str) -> Result<usize> {
        let login = login.to_string();
        self.write(move |tx| {
            let email: Option<String> = tx
                .prepare_cached("SELECT email FROM agents WHERE name = ?1")?
                .query_row([&login], |r| r.get(0))
                .optional()?
                .flatten();
            let mut cleared = 0;
            for name in std::iter::once(login.as_str()).chain(email.as_deref()) {
                cleared += tx
                    .prepare_cached(
                        "DELETE FROM login_attempts WHERE scope IN ('pair', 'name') AND name_key = ?1",
                    )?
                    .execute([login_key(name)])?;
            }
            Ok(cleared)
        })
        .await
    }
}

/// How precisely an API token's last use is kept, in seconds: a token used again
/// within this time of its recorded use is not written (see [`Store::api_token_agent`]).
const TOKEN_USE_RESOLUTION: i64 = 60;

/// What is known of an API token: never the token, nor its hash.
#[derive(Debug, Clone)]
pub struct ApiTokenInfo {
    pub id: i64,
    /// What it is for (`--label`).
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiTokenInfo {
    /// `live`, `revoked` or `expired`, at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "live"
        }
    }
}

/// Revokes the agent's token `id`, or all their tokens, and returns how many of them
/// were live. Expired tokens are revoked too, so that every token the agent had shows
/// as revoked, but they are not counted: they no longer worked.
fn revoke_tokens(tx: &Db, agent_id: AgentId, id: Option<i64>) -> Result<usize> {
    let now = now();
    let expiries: Vec<Option<i64>> = tx
        .prepare_cached(
            "UPDATE api_tokens SET revoked_at = ?1
             WHERE agent_id = ?2 AND (CAST(?3 AS BIGINT) IS NULL OR id = ?3) AND revoked_at IS NULL
             RETURNING expires_at",
        )?
        .query_map(params![now, agent_id, id], |r| r.get(0))?
        .collect::<Result<_>>()?;
    Ok(expiries
        .iter()
        .filter(|expires| expires.is_none_or(|at| at > now))
        .count())
}

/// How sign-in attempts are limited, within a window of `window_secs`:
///
/// - a name from one client address (`pair`) gets `per_pair` attempts;
/// - a name from anywhere gets `name_free` attempts, then one attempt per backoff that
///   doubles from `name_backoff_first_secs` up to `name_backoff_max_secs`: slower,
///   never locked;
/// - one client address gets `per_address` attempts at any names.
///
/// An address the name signed in from before is exempt from the last two, so that
/// strangers failing at an agent's name elsewhere cannot lock the agent out of the
/// address they work from. At most `max_rows` counts are kept (the oldest go first).
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub window_secs: i64,
    pub per_pair: i64,
    pub name_free: i64,
    pub name_backoff_first_secs: i64,
    pub name_backoff_max_secs: i64,
    pub per_address: i64,
    pub max_rows: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            window_secs: 15 * 60,
            per_pair: 5,
            name_free: 10,
            name_backoff_first_secs: 1,
            name_backoff_max_secs: 5 * 60,
            per_address: 50,
            max_rows: 20_000,
        }
    }
}

/// Attempts counted in the window that began at `first_at`.
#[derive(Debug, Clone, Copy)]
struct Count {
    attempts: i64,
    first_at: i64,
    last_at: i64,
}

impl LoginLimits {
    fn window_left(&self, count: &Count, now: i64) -> i64 {
        (count.first_at + self.window_secs - now).max(1)
    }

    fn pair_wait(&self, count: &Count, now: i64) -> Option<i64> {
        (count.attempts >= self.per_pair).then(|| self.window_left(count, now))
    }

    fn address_wait(&self, count: &Count, now: i64) -> Option<i64> {
        (count.attempts >= self.per_address).then(|| self.window_left(count, now))
    }

    fn name_wait(&self, count: &Count, now: i64) -> Option<i64> {
        let over = count.attempts - self.name_free;
        if over < 0 {
            return None;
        }
        let backoff = self
            .name_backoff_first_secs
            .saturating_mul(1i64 << over.min(30))
            .min(self.name_backoff_max_secs);
        let wait = count.last_at + backoff - now;
        (wait > 0).then_some(wait)
    }
}

/// Whether a sign-in attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// Counted; check the password.
    Allowed,
    /// Not counted and not to be checked: too many attempts; try again after this long.
    Refused { wait_secs: i64 },
}

/// A sign-in limit in force (`postdesk agents locks`).
#[derive(Debug, Clone)]
pub struct LoginLock {
    /// The agent's name; `(not an agent)` for a name no agent has; none for a limit
    /// on the address alone.
    pub name: Option<String>,
    /// None for the limit on the name from anywhere.
    pub address: Option<String>,
    pub attempts: i64,
    pub wait_secs: i64,
}

/// Names are compared in lower case and only by their first characters: what is kept
/// of a name typed at the sign-in (however long) is this fixed-size hash.
pub fn login_key(login: &str) -> String {
    const KEPT_CHARS: usize = 64;
    let name: String = login.trim().chars().take(KEPT_CHARS).collect();
    format!("{:x}", Sha256::digest(name.to_lowercase().as_bytes()))
}

/// How long an address stays one a name is known to sign in from.
const KNOWN_ADDRESS_SECS: i64 = 90 * 24 * 3600;
const MAX_KNOWN_ADDRESSES: i64 = 10_000;

fn begin_login(
    tx: &Db,
    key: &str,
    address: &str,
    limits: &LoginLimits,
    now: i64,
) -> Result<LoginGate> {
    let window_start = now - limits.window_secs;
    tx.prepare_cached("DELETE FROM login_attempts WHERE last_at <= ?1")?
        .execute([window_start])?;
    let count = |scope: &str, name_key: &str, address: &str| -> Result<Option<Count>> {
        tx.prepare_cached(
            "SELECT attempts, first_at, last_at FROM login_attempts
                 WHERE scope = ?1 AND name_key = ?2 AND address = ?3 AND first_at > ?4",
        )?
        .query_row(params![scope, name_key, address, window_start], |r| {
            Ok(Count {
                attempts: r.get(0)?,
                first_at: r.get(1)?,
                last_at: r.get(2)?,
            })
        })
        .optional()
    };
    let known = tx
        .prepare_cached("SELECT 1 FROM login_known WHERE name_key = ?1 AND address = ?2")?
        .query_row([key, address], |_| Ok(()))
        .optional()?
        .is_some();
    let mut wait = count("pair", key, address)?.and_then(|c| limits.pair_wait(&c, now));
    if !known {
        let by_name = count("name", key, "")?.and_then(|c| limits.name_wait(&c, now));
        let by_address = count("address", "", address)?.and_then(|c| limits.address_wait(&c, now));
        wait = wait.max(by_name).max(by_address);
    }
    if let Some(wait_secs) = wait {
        return Ok(LoginGate::Refused { wait_secs });
    }
    for (scope, name_key, address) in [
        ("pair", key, address),
        ("name", key, ""),
        ("address", "", address),
    ] {
        tx.prepare_cached(
            "INSERT INTO login_attempts (scope, name_key, address, attempts, first_at, last_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)
             ON CONFLICT (scope, name_key, address) DO UPDATE SET
                 attempts = CASE WHEN login_attempts.first_at <= ?5 THEN 1
                                 ELSE login_attempts.attempts + 1 END,
                 first_at = CASE WHEN login_attempts.first_at <= ?5 THEN ?4
                                 ELSE login_attempts.first_at END,
                 last_at = ?4",
        )?
        .execute(params![scope, name_key, address, now, window_start])?;
    }
    tx.prepare_cached(
        "DELETE FROM login_attempts WHERE (scope, name_key, address) IN (
             SELECT scope, name_key, address FROM login_attempts ORDER BY last_at
             LIMIT CASE WHEN (SELECT COUNT(*) FROM login_attempts) > ?1
                        THEN (SELECT COUNT(*) FROM login_attempts) - ?1 ELSE 0 END)",
    )?
    .execute([limits.max_rows])?;
    Ok(LoginGate::Allowed)
}

/// Agents' addresses (lower-case): mail from them is an agent's, whatever it quotes.
pub(crate) fn agent_emails(conn: &Db) -> Result<std::collections::HashSet<String>> {
    conn.prepare_cached("SELECT email FROM agents WHERE email IS NOT NULL")?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()
}

/// Every agent with an address, as (name, address), in the order they were added.
pub fn agents_with_email(tx: Tx<'_>) -> Result<Vec<(String, String)>> {
    tx.conn()
        .prepare_cached("SELECT name, email FROM agents WHERE email IS NOT NULL ORDER BY id")?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()
}

/// The name of agent `id`.
pub fn agent_name(tx: Tx<'_>, id: AgentId) -> Result<String> {
    tx.conn()
        .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

/// The id of the agent named `name`, or NotFound.
fn agent_named(conn: &Db, name: &str) -> Result<AgentId> {
    conn.prepare_cached("SELECT id FROM agents WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "there is no agent named `{name}`; see `postdesk agents list`"
            ))
        })
}

/// See [`Store::helpdesk_agent_names`].
pub(crate) fn helpdesk_agent_names(conn: &Db, helpdesk_ids: &[HelpdeskId]) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT name FROM agents a WHERE a.active AND (a.role = 'admin' OR EXISTS (
             SELECT 1 FROM agent_helpdesks ah WHERE ah.agent_id = a.id AND ah.helpdesk_id IN {}))
         ORDER BY name",
        crate::sql::id_list(helpdesk_ids)
    );
    conn.prepare_repeated(&sql)?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_>>()
}

/// The agent of a live session (not expired, its agent active) and its CSRF token.
fn live_session(conn: &Db, token_hash: &str) -> Result<Option<(AgentId, String)>> {
    conn.prepare_cached(
        "SELECT s.agent_id, s.csrf FROM sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND a.active",
    )?
    .query_row(params![token_hash, now()], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// The agent of a live API token (not revoked, not expired, its agent active) and
/// when the token's use was last recorded.
fn live_token(conn: &Db, token_hash: &str) -> Result<Option<(AgentId, Option<i64>)>> {
    conn.prepare_cached(
        "SELECT agent_id, last_used_at FROM api_tokens
         WHERE token_hash = ?1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > ?2)
           AND agent_id IN (SELECT id FROM agents WHERE active)",
    )?
    .query_row(params![token_hash, now()], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// Whether a token's recorded use is older than [`TOKEN_USE_RESOLUTION`] (or none).
fn token_use_stale(last_used: Option<i64>) -> bool {
    last_used.is_none_or(|t| t <= now() - TOKEN_USE_RESOLUTION)
}

fn agent_account(conn: &Db, id: AgentId) -> Result<AgentAccount> {
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
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_>>()?
    } else {
        conn.prepare_cached(
            "SELECT h.id, h.name FROM helpdesks h JOIN agent_helpdesks ah ON ah.helpdesk_id = h.id
             WHERE ah.agent_id = ?1 ORDER BY h.name",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?
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

/// The agent named `name_or_email`, created when missing (an `@` makes it the email too).
pub(crate) fn ensure_agent(conn: &Db, name_or_email: &str) -> Result<AgentId> {
    let email = name_or_email
        .contains('@')
        .then(|| name_or_email.to_ascii_lowercase());
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM agents WHERE name = ?1 OR email = ?2")?
        .query_row(params![name_or_email, email], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    let inserted_id: i64 = conn
        .prepare_cached(
            "INSERT INTO agents (name, email, created_at) VALUES (?1, ?2, ?3) RETURNING id",
        )?
        .query_row(params![name_or_email, email, now()], |r| r.get(0))?;
    Ok(AgentId::new(inserted_id))
}
