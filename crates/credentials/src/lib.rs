//! Credentials for every connection postdesk makes (IMAP, SMTP): secrets from the
//! config (inline, environment variable or file) and OAuth2 access tokens, refreshed
//! before they expire, with a rotated refresh token kept in the database.

use std::path::PathBuf;
use std::time::Duration;

use postdesk_core::error::BoxError;
use postdesk_core::mailbox::{MailboxSettings, OAuth2Settings, Secret};
use postdesk_store::Store;
use postdesk_store::mailboxes::StoredTokens;
use sha2::{Digest, Sha256};

// Issue 20: Microsoft Entra tokens for Graph mailboxes.
pub mod graph;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{0}")]
    Missing(String),
    /// The provider refused, or answered what cannot be used: in its words.
    #[error("OAuth2: {0}")]
    OAuth(String),
    /// A call to the token endpoint (or setting up HTTPS for it) failed: the cause is
    /// kept as the source.
    #[error("OAuth2: {what}")]
    Call {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Store(#[from] postdesk_store::StoreError),
}

/// A secret from wherever the config says it is; `None` when no source is given.
/// `what` names the key in errors (`password`, `oauth2.refresh_token`…).
pub fn optional_secret(
    inline: &Option<Secret>,
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<Secret>, CredentialError> {
    if let Some(value) = inline {
        return Ok(Some(value.clone()));
    }
    if let Some(var) = env {
        return std::env::var(var)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| {
                CredentialError::Missing(format!("{what}: environment variable {var} is not set"))
            });
    }
    if let Some(path) = file {
        return std::fs::read_to_string(path)
            .map(|s| Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_string())))
            .map_err(|e| {
                CredentialError::Missing(format!("{what}: cannot read {}: {e}", path.display()))
            });
    }
    Ok(None)
}

/// Like [`optional_secret`], but one source must be given.
pub fn secret(
    inline: &Option<Secret>,
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<Secret, CredentialError> {
    optional_secret(inline, env, file, what)?
        .ok_or_else(|| CredentialError::Missing(format!("no {what} is configured")))
}

/// The IMAP mailbox of a helpdesk whose OAuth2 settings serve `user` too (the same
/// account sends mail): the one with that user, else the only OAuth2 mailbox.
pub fn oauth_mailbox<'a>(
    mailboxes: &'a [MailboxSettings],
    user: Option<&str>,
) -> Option<&'a MailboxSettings> {
    let oauth: Vec<&MailboxSettings> = mailboxes.iter().filter(|m| m.oauth2.is_some()).collect();
    match user {
        Some(u) => oauth
            .iter()
            .find(|m| m.user.eq_ignore_ascii_case(u))
            .copied(),
        None if oauth.len() == 1 => Some(oauth[0]),
        None => None,
    }
}

/// An access token is refreshed when it has less than this left.
const REFRESH_MARGIN: i64 = 120;

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// A valid access token for the account `key` of `helpdesk`, refreshed (and a rotated
/// refresh token stored) when needed. A refresh failure says what to do.
pub async fn access_token(
    store: &Store,
    helpdesk: &str,
    key: &str,
    settings: &OAuth2Settings,
) -> Result<Secret, CredentialError> {
    let configured = secret(
        &settings.refresh_token,
        &settings.refresh_token_env,
        &settings.refresh_token_file,
        "oauth2.refresh_token",
    )?;
    let fingerprint = hex::encode(Sha256::digest(configured.expose().as_bytes()));
    // A refresh token replaced in the config wins over the one we kept.
    let stored = store
        .oauth_tokens(helpdesk, key)
        .await?
        .filter(|t| t.configured == fingerprint);
    let now = postdesk_store::now();
    if let Some(t) = &stored
        && let (Some(token), Some(expires_at)) = (&t.access_token, t.expires_at)
        && expires_at - now > REFRESH_MARGIN
    {
        return Ok(Secret::new(token.clone()));
    }
    let refresh_token = stored
        .as_ref()
        .map(|t| t.refresh_token.clone())
        .unwrap_or_else(|| configured.expose().to_string());
    let response = refresh(settings, &refresh_token).await?;
    let tokens = StoredTokens {
        configured: fingerprint,
        refresh_token: response.refresh_token.unwrap_or(refresh_token),
        access_token: Some(response.access_token.clone()),
        expires_at: response.expires_in.map(|s| now + s),
    };
    store.save_oauth_tokens(helpdesk, key, &tokens).await?;
    Ok(Secret::new(response.access_token))
}

/// A kept access token was refused before its time (revoked early, or the provider
/// restarted its keys): it is dropped, so the next [`access_token`] (or
/// [`graph::delegated`]) refreshes. The refresh token stays.
pub async fn forget_access_token(
    store: &Store,
    helpdesk: &str,
    key: &str,
) -> Result<(), CredentialError> {
    if let Some(mut t) = store.oauth_tokens(helpdesk, key).await? {
        t.access_token = None;
        t.expires_at = None;
        store.save_oauth_tokens(helpdesk, key, &t).await?;
    }
    Ok(())
}

async fn refresh(
    settings: &OAuth2Settings,
    refresh_token: &str,
) -> Result<TokenResponse, CredentialError> {
    let client_secret = optional_secret(
        &settings.client_secret,
        &settings.client_secret_env,
        &settings.client_secret_file,
        "oauth2.client_secret",
    )?;
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.to_string()),
        ("client_id", settings.client_id.clone()),
    ];
    if let Some(s) = &client_secret {
        form.push(("client_secret", s.expose().to_string()));
    }
    if !settings.scopes.is_empty() {
        form.push(("scope", settings.scopes.join(" ")));
    }
    let failed_at = format!("token refresh at {} failed", settings.token_url);
    let failed = |reason: String| CredentialError::OAuth(format!("{failed_at}: {reason}"));
    let call_failed = |what: String, e: BoxError| CredentialError::Call { what, source: e };
    let response = http_client()?
        .post(&settings.token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            call_failed(
                format!("{failed_at}; check token_url and the network"),
                e.into(),
            )
        })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| call_failed(failed_at.clone(), e.into()))?;
    if !status.is_success() {
        let reason = match serde_json::from_slice::<TokenError>(&body) {
            Ok(e) => format!(
                "{}{}. The refresh token may have expired or been revoked: sign in again to get a new one and put it in oauth2.refresh_token",
                e.error,
                e.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Err(_) => format!("HTTP {status}"),
        };
        return Err(failed(reason));
    }
    serde_json::from_slice(&body)
        .map_err(|e| call_failed(format!("{failed_at}: unreadable answer"), e.into()))
}

/// The HTTPS client (rustls on ring, the web's roots, 30 s per request) every OAuth2
/// and API call uses.
pub fn http_client() -> Result<reqwest::Client, CredentialError> {
    use tokio_rustls::rustls;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| https_failed(e.into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| https_failed(e.into()))
}

fn https_failed(source: BoxError) -> CredentialError {
    CredentialError::Call {
        what: "cannot set up HTTPS".into(),
        source,
    }
}
