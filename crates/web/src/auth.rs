//! Signing in: argon2 password hashes, random tokens for sessions and the API, the
//! extractor that turns a request into a signed-in agent, CSRF checks and the limit
//! on failed sign-ins.

use postdesk_core::id::HelpdeskId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use postdesk_store::access::AgentAccount;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{AppState, WebError};

pub const SESSION_COOKIE: &str = "postdesk_session";
/// Sessions last a working day.
pub const SESSION_SECONDS: i64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least 10 characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// An argon2id hash in PHC format, with a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < 10 {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// 32 random bytes as hex: session cookies, CSRF tokens and API tokens.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    hex::encode(bytes)
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal without telling how many leading bytes matched.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A browser session; state changes must carry its CSRF token.
    Session { token_hash: String, csrf: String },
    /// `Authorization: Bearer`; no cookie is involved, so no CSRF token is needed.
    ApiToken,
}

/// The signed-in agent. Every handler except sign-in takes one, so a request without a
/// valid session or token never reaches a handler's body.
#[derive(Debug, Clone)]
pub struct Agent {
    pub account: AgentAccount,
    pub credential: Credential,
}

impl Agent {
    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> &str {
        match &self.credential {
            Credential::Session { csrf, .. } => csrf,
            Credential::ApiToken => "",
        }
    }

    /// Checks the CSRF token a state-changing request carries (form field or
    /// `X-CSRF-Token` header). Token-authenticated API calls need none.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), WebError> {
        match &self.credential {
            Credential::ApiToken => Ok(()),
            Credential::Session { csrf, .. } => match given {
                Some(given) if same_secret(given, csrf) => Ok(()),
                _ => Err(WebError::Forbidden(
                    "the form has expired or did not come from this site; reload the page and try again"
                        .into(),
                )),
            },
        }
    }

    pub fn sees(&self, helpdesk_id: HelpdeskId) -> bool {
        self.account.sees_helpdesk(helpdesk_id)
    }
}

pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let api = parts.uri.path().starts_with("/api/");
        let unauthenticated = || {
            if api {
                WebError::Unauthorized
            } else {
                WebError::SignIn
            }
        };
        let store = state.store();
        let (agent_id, credential) = if let Some(token) = bearer(&parts.headers) {
            let id = store
                .api_token_agent(&token_hash(token))
                .await?
                .ok_or(WebError::Unauthorized)?;
            (id, Credential::ApiToken)
        } else if let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) {
            let hash = token_hash(token);
            let session = store.session(&hash).await?.ok_or_else(unauthenticated)?;
            (
                session.agent_id,
                Credential::Session {
                    token_hash: hash,
                    csrf: session.csrf,
                },
            )
        } else {
            return Err(unauthenticated());
        };
        let account = store.agent_account(agent_id).await?;
        let agent = Agent {
            account,
            credential,
        };
        // For a `CsrfForm` later in the same request, which checks against this agent.
        parts.extensions.insert(agent.clone());
        Ok(agent)
    }
}

/// A form that changes something: its fields `T`, available only once the form's `csrf`
/// field matched the session's token. A wrong or missing token answers 403, as
/// [`Agent::check_csrf`] does; a form that does not parse is refused before that, as
/// by [`axum::Form`]. Use `CsrfForm<()>` for a form with no other field.
///
/// `T` is read through `#[serde(flatten)]`, which hands every value over as text:
/// its fields must be strings (or options of strings).
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct WithCsrf<T> {
    csrf: Option<String>,
    #[serde(flatten)]
    fields: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        // The handler's `Agent` extractor ran first and left the agent here.
        let agent = match parts.extensions.get::<Agent>() {
            Some(agent) => agent.clone(),
            None => Agent::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?,
        };
        let Form(form) = Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        agent
            .check_csrf(form.csrf.as_deref())
            .map_err(IntoResponse::into_response)?;
        Ok(CsrfForm(form.fields))
    }
}

/// Failed sign-ins per account name and per client address: after `MAX_FAILURES` within
/// `WINDOW`, further attempts are refused until the window has passed.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const MAX_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginLimiter {
    fn keys(login: &str, ip: Option<IpAddr>) -> Vec<String> {
        let mut keys = vec![format!("login:{}", login.trim().to_lowercase())];
        if let Some(ip) = ip {
            keys.push(format!("ip:{ip}"));
        }
        keys
    }

    /// `Some(wait)` when this sign-in must be refused.
    pub fn blocked(&self, login: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        Self::keys(login, ip)
            .iter()
            .filter_map(|key| {
                let times = failures.get_mut(key)?;
                times.retain(|t| now.duration_since(*t) < WINDOW);
                (times.len() >= MAX_FAILURES).then(|| WINDOW - now.duration_since(times[0]))
            })
            .max()
    }

    pub fn failed(&self, login: &str, ip: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded memory under a flood of made-up names: forget the oldest half.
        if failures.len() > 10_000 {
            let now = Instant::now();
            failures.retain(|_, t| t.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for key in Self::keys(login, ip) {
            failures.entry(key).or_default().push(Instant::now());
        }
    }

    pub fn succeeded(&self, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("login:{}", login.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
    }

    #[test]
    fn five_failures_block_the_account_name_and_the_address() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..5 {
            assert!(limiter.blocked("Alice", Some(ip)).is_none());
            limiter.failed("alice", Some(ip));
        }
        assert!(limiter.blocked("ALICE", None).is_some());
        assert!(limiter.blocked("bob", Some(ip)).is_some());
        assert!(limiter.blocked("bob", None).is_none());
        limiter.succeeded("alice");
        assert!(limiter.blocked("alice", None).is_none());
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read_exactly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; postdesk_session=abc; postdesk_sessionx=no"
                .parse()
                .unwrap(),
        );
        headers.insert(header::AUTHORIZATION, "Bearer  tok ".parse().unwrap());
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(bearer(&headers), Some("tok"));
    }
}
