//! OAuth2 for IMAP: trade the refresh token for an access token before it
//! expires, keep a rotated refresh token in the database, and log in with
//! SASL XOAUTH2 or OAUTHBEARER.

use std::time::Duration;

use postdesk_core::mailbox::{MailboxSettings, OAuth2Settings, SaslMechanism, Secret};
use postdesk_store::Store;
use postdesk_store::mailboxes::StoredTokens;
use sha2::{Digest, Sha256};

use super::{ImapError, secret};

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

/// A valid access token for the mailbox, refreshed (and a rotated refresh token
/// stored) when needed. A refresh failure is an error that says what to do.
pub async fn access_token(
    store: &Store,
    helpdesk: &str,
    mailbox: &str,
    settings: &OAuth2Settings,
) -> Result<Secret, ImapError> {
    let configured = secret(
        &settings.refresh_token,
        &settings.refresh_token_env,
        &settings.refresh_token_file,
        "oauth2.refresh_token",
    )?;
    let fingerprint = hex::encode(Sha256::digest(configured.expose().as_bytes()));
    let stored = store
        .oauth_tokens(helpdesk, mailbox)
        .await
        .map_err(store_error)?;
    // A refresh token replaced in the config wins over the one we kept.
    let stored = stored.filter(|t| t.configured == fingerprint);
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
    store
        .save_oauth_tokens(helpdesk, mailbox, &tokens)
        .await
        .map_err(store_error)?;
    Ok(Secret::new(response.access_token))
}

fn store_error(e: postdesk_store::StoreError) -> ImapError {
    ImapError::Pipeline(e.into())
}

async fn refresh(
    settings: &OAuth2Settings,
    refresh_token: &str,
) -> Result<TokenResponse, ImapError> {
    let client_secret = match (
        &settings.client_secret,
        &settings.client_secret_env,
        &settings.client_secret_file,
    ) {
        (None, None, None) => None,
        _ => Some(secret(
            &settings.client_secret,
            &settings.client_secret_env,
            &settings.client_secret_file,
            "oauth2.client_secret",
        )?),
    };
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
    let failed = |reason: String| {
        ImapError::OAuth(format!(
            "token refresh at {} failed: {reason}",
            settings.token_url
        ))
    };
    let response = http_client()?
        .post(&settings.token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| failed(format!("{e}; check token_url and the network")))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
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
    serde_json::from_slice(&body).map_err(|e| failed(format!("unreadable answer: {e}")))
}

fn http_client() -> Result<reqwest::Client, ImapError> {
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::OAuth(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ImapError::OAuth(format!("cannot set up HTTPS: {e}")))
}

/// The SASL exchange: the initial response, then an empty answer to an error challenge.
pub struct Bearer {
    initial: Option<String>,
}

impl Bearer {
    pub fn new(settings: &MailboxSettings, mechanism: SaslMechanism, token: &Secret) -> Self {
        let token = token.expose();
        let user = &settings.user;
        let initial = match mechanism {
            SaslMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            SaslMechanism::Oauthbearer => format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {token}\x01\x01",
                user.replace('=', "=3D").replace(',', "=2C"),
                settings.host,
                settings.port()
            ),
        };
        Self {
            initial: Some(initial),
        }
    }
}

impl async_imap::Authenticator for Bearer {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.initial.take().unwrap_or_default()
    }
}

pub fn mechanism_name(mechanism: SaslMechanism) -> &'static str {
    match mechanism {
        SaslMechanism::Xoauth2 => "XOAUTH2",
        SaslMechanism::Oauthbearer => "OAUTHBEARER",
    }
}
