//! Signing in: argon2 password hashes, random tokens for sessions and the API, the
//! extractor that turns a request into a signed-in agent, CSRF checks, the
//! same-origin check of the sign-in form and the client address the sign-in limits
//! count by (the limits themselves are the store's, `postdesk_store::access::LoginLimits`).

use postdesk_core::error::BoxError;
use postdesk_core::id::HelpdeskId;
use std::net::IpAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use postdesk_store::access::{AgentAccount, Proof};
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
    #[error("cannot hash the password")]
    Hash(#[source] BoxError),
}

/// An argon2id hash in PHC format, with a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < 10 {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.into()))?;
    // password_hash's error is no std::error::Error (its `std` feature is off): it has
    // no cause to keep, its text is all of it.
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string().into()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string().into()))
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
    /// Issue 17: unread notifications, counted on each page load for the bell (not
    /// for API calls).
    pub unread: Option<i64>,
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
        // One read for the token or session, the account and the bell's count.
        let proof = if let Some(token) = bearer(&parts.headers) {
            Proof::ApiToken(token_hash(token))
        } else if let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) {
            Proof::Session(token_hash(token))
        } else {
            return Err(unauthenticated());
        };
        let signed_in = store.signed_in(proof.clone(), !api).await?;
        let Some(signed_in) = signed_in else {
            return Err(match proof {
                Proof::ApiToken(_) => WebError::Unauthorized,
                Proof::Session(_) => unauthenticated(),
            });
        };
        let credential = match (proof, signed_in.csrf) {
            (Proof::Session(token_hash), Some(csrf)) => Credential::Session { token_hash, csrf },
            _ => Credential::ApiToken,
        };
        let (account, unread) = (signed_in.account, signed_in.unread);
        let agent = Agent {
            account,
            credential,
            unread,
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

/// A proxy whose `X-Forwarded-For` is believed: one address or a network
/// (`10.0.0.0/8`, `::1`), as `[web] trusted_proxies` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not an IP address or a network like \"10.0.0.0/8\"");
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
            None => bits,
        };
        Ok(Self { network, prefix })
    }
}

impl TrustedProxy {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (net, addr, bits) = match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(n) as u128, u32::from(a) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (net >> shift) == (addr >> shift)
    }
}

/// The client a request came from: the connection's peer, or, when that peer is a
/// trusted proxy, the nearest address in `X-Forwarded-For` that is not one. Without
/// a trusted proxy the header is ignored: anyone can write it.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[TrustedProxy],
) -> Option<IpAddr> {
    let is_trusted = |a: IpAddr| trusted.iter().any(|t| t.contains(a));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    // From the nearest hop outwards: each trusted hop vouches for the one before it.
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !is_trusted(address) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

/// The sign-in form may be sent only from this site's own pages: a browser says where
/// a form came from (`Sec-Fetch-Site`, `Origin`), and another site's page that makes
/// agents' browsers post wrong passwords (to trip the sign-in limits) is refused before
/// anything is counted. Clients that send neither header (scripts, curl) are not
/// browsers driven by another site.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let refused = || {
        WebError::Forbidden(
            "this sign-in did not come from postdesk's own sign-in page; open the page and sign in there"
                .into(),
        )
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Current browsers say it outright; it also holds where `Origin` is `null` (which
    // Chromium sends for pages whose Referrer-Policy is `no-referrer`).
    if let Some(site) = header("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => Err(refused()),
        };
    }
    // Older browsers: the origin must be this host (the sign-in page's Referrer-Policy
    // is `same-origin` so that they send it).
    if let Some(origin) = header("origin") {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let host = header("host");
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
            _ => return Err(refused()),
        }
    }
    Ok(())
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
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: TrustedProxy = "10.0.0.0/8".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        let peer = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        assert_eq!(
            client_address(peer("10.0.0.1"), &headers, &[proxy]),
            peer("203.0.113.9")
        );
        // Written by the client itself: ignored.
        assert_eq!(
            client_address(peer("198.51.100.4"), &headers, &[proxy]),
            peer("198.51.100.4")
        );
        assert_eq!(
            client_address(peer("10.0.0.1"), &headers, &[]),
            peer("10.0.0.1")
        );
        assert!(
            "::1"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            "127.0.0.1"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
        assert!("proxy.example".parse::<TrustedProxy>().is_err());
    }

    #[test]
    fn the_sign_in_form_must_come_from_this_site() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, v.parse().unwrap());
            }
            check_same_origin(&headers).is_ok()
        };
        assert!(with(&[]));
        assert!(with(&[
            ("host", "desk.example"),
            ("origin", "https://desk.example")
        ]));
        assert!(with(&[("sec-fetch-site", "same-origin")]));
        assert!(with(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ]));
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[
            ("host", "desk.example"),
            ("origin", "https://evil.example")
        ]));
        assert!(!with(&[("host", "desk.example"), ("origin", "null")]));
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
