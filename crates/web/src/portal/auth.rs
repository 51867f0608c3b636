//! Who is signed in to the portal: the [`Contact`] extractor, read from the portal's
//! own cookie (`postdesk_portal`, `Path=/portal`) and the store's `portal_sessions`
//! only, so an agent's session cookie is never taken here and a portal cookie never
//! reaches the agents' extractor (`crate::auth::Agent` reads `postdesk_session` and
//! `sessions` only). The CSRF check and the tokens are the agents' ones
//! (`crate::auth::same_secret`, `new_token`, `token_hash`).

use postdesk_core::id::ContactId;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use postdesk_store::portal::Viewer;

use super::PageError;
use crate::AppState;
use crate::auth::{cookie_value, same_secret, token_hash};

pub const PORTAL_COOKIE: &str = "postdesk_portal";
/// Portal sessions last a working day, as agents' do.
pub const PORTAL_SESSION_SECONDS: i64 = 12 * 3600;

/// A signed-in contact. Every portal handler but sign-in takes one.
#[derive(Debug, Clone)]
pub struct Contact {
    pub contact_id: ContactId,
    /// The address they signed in with; what they write comes from it.
    pub address: String,
    pub csrf: String,
    pub token_hash: String,
    /// What they may read.
    pub viewer: Viewer,
}

impl Contact {
    /// The form's `csrf` field must be the session's.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), PageError> {
        match given {
            Some(given) if same_secret(given, &self.csrf) => Ok(()),
            _ => Err(PageError::Forbidden(
                "the form has expired or did not come from this site; reload the page and try again"
                    .into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Contact {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let token = cookie_value(&parts.headers, PORTAL_COOKIE).ok_or(PageError::SignIn)?;
        let hash = token_hash(token);
        let session = state
            .store()
            .portal_session(&hash)
            .await?
            .ok_or(PageError::SignIn)?;
        let viewer = state.app().portal().viewer(session.contact_id).await?;
        Ok(Contact {
            contact_id: session.contact_id,
            address: session.address,
            csrf: session.csrf,
            token_hash: hash,
            viewer,
        })
    }
}

/// The portal's session cookie: for `/portal` only, never readable by scripts, not
/// sent from other sites.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    format!(
        "{PORTAL_COOKIE}={token}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={PORTAL_SESSION_SECONDS}{}",
        if state.0.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

pub fn set_cookie(response: &mut Response, cookie: &str) -> Result<(), PageError> {
    let value = HeaderValue::from_str(cookie).map_err(|e| PageError::Internal(e.into()))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(())
}

/// An argon2 hash of a random password nobody knows, made once: unknown addresses
/// are checked against it so they take as long as known ones.
pub fn unknown_contact_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash_password(&crate::auth::new_token()).unwrap_or_default())
}

/// The key the sign-in limits count a contact's password sign-ins under, prefixed
/// so that an agent whose name is the same address does not share its count.
pub fn login_key(address: &str) -> String {
    format!("portal:{}", address.trim().to_lowercase())
}
