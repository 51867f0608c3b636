//! Microsoft Entra access tokens for Graph mailboxes (`kind = "graph"`), for reading
//! (`postdesk_sources::graph`) and sending (`postdesk_notify`) alike: the app's own with
//! the client-credentials flow, or a user's from the device-code sign-in, whose tokens
//! the store keeps (the refresh token rotates with each refresh).

use postdesk_core::error::chain;
use postdesk_core::mailbox::{MailboxSettings, Secret};
use postdesk_store::Store;
use postdesk_store::mailboxes::StoredTokens;
use sha2::{Digest, Sha256};

use crate::CredentialError;

pub const DEFAULT_LOGIN: &str = "https://login.microsoftonline.com";
/// The app's own permissions (client credentials): what the registration was granted.
pub const APP_SCOPE: &str = "https://graph.microsoft.com/.default";
/// A signed-in user's (device code): read, move and send mail, and a refresh token.
pub const DELEGATED_SCOPE: &str = "offline_access https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send";
/// A stored access token is renewed when it has less than this left.
const MARGIN: i64 = 120;

/// Why no token came.
#[derive(Debug, thiserror::Error)]
pub enum GraphTokenError {
    /// Entra refused: a wrong or expired secret, a revoked sign-in. Someone must act.
    #[error("{0}")]
    Refused(String),
    /// Entra could not be reached or failed (5xx): tried again later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

impl From<postdesk_store::StoreError> for GraphTokenError {
    fn from(e: postdesk_store::StoreError) -> Self {
        Self::Credential(e.into())
    }
}

#[derive(serde::Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
}

/// `{login_url}/{tenant}/oauth2/v2.0`: where `token` and `devicecode` are.
pub fn authority(settings: &MailboxSettings) -> String {
    format!(
        "{}/{}/oauth2/v2.0",
        settings
            .login_url
            .as_deref()
            .unwrap_or(DEFAULT_LOGIN)
            .trim_end_matches('/'),
        settings.tenant.as_deref().unwrap_or_default()
    )
}

/// What a device-code sign-in's stored tokens belong to: another tenant or app in the
/// config means signing in again.
pub fn fingerprint(settings: &MailboxSettings) -> String {
    let text = format!(
        "graph-device-code:{}:{}",
        authority(settings),
        settings.client_id.as_deref().unwrap_or_default()
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn client_secret(settings: &MailboxSettings) -> Result<Option<Secret>, CredentialError> {
    crate::optional_secret(
        &settings.client_secret,
        &settings.client_secret_env,
        &settings.client_secret_file,
        "client_secret",
    )
}

/// POSTs `form` to the token endpoint: the answer, or why not (Entra's own words).
pub async fn token_request(
    settings: &MailboxSettings,
    form: &[(&str, String)],
) -> Result<Result<TokenAnswer, (u16, serde_json::Value)>, GraphTokenError> {
    let url = format!("{}/token", authority(settings));
    let response = crate::http_client()?
        .post(&url)
        .form(form)
        .send()
        .await
        .map_err(|e| GraphTokenError::Unavailable(format!("{url}: {}", chain(&e))))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| GraphTokenError::Unavailable(format!("token answer: {}", chain(&e))))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&body)
            .map(Ok)
            .map_err(|e| GraphTokenError::Unavailable(format!("unreadable token answer: {e}")));
    }
    Ok(Err((
        status,
        serde_json::from_slice(&body).unwrap_or_default(),
    )))
}

/// `error (error_description)` of an OAuth2 error answer.
pub fn describe(error: &serde_json::Value) -> String {
    let code = error["error"].as_str().unwrap_or("error");
    match error["error_description"].as_str() {
        Some(d) => format!("{code} ({d})"),
        None => code.to_string(),
    }
}

fn refused(status: u16, error: &serde_json::Value, hint: &str) -> GraphTokenError {
    let text = format!("{}; {hint}", describe(error));
    if status >= 500 {
        GraphTokenError::Unavailable(text)
    } else {
        GraphTokenError::Refused(text)
    }
}

/// The app's token (client credentials) and when it expires (Unix time).
pub async fn client_credentials(
    settings: &MailboxSettings,
) -> Result<(Secret, i64), GraphTokenError> {
    let secret = client_secret(settings)?
        .ok_or_else(|| CredentialError::Missing("no client_secret is configured".into()))?;
    let form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", settings.client_id.clone().unwrap_or_default()),
        ("client_secret", secret.expose().to_string()),
        ("scope", APP_SCOPE.to_string()),
    ];
    match token_request(settings, &form).await? {
        Ok(answer) => Ok((
            Secret::new(answer.access_token),
            postdesk_store::now() + answer.expires_in.unwrap_or(3600),
        )),
        Err((status, error)) => Err(refused(
            status,
            &error,
            "check tenant, client_id and client_secret (a client secret expires: make a new one under Certificates & secrets in Entra)",
        )),
    }
}

/// The device-code sign-in's access token from the store, refreshed (and the rotated
/// refresh token kept) when it is about to expire. `name` is the mailbox's name.
pub async fn delegated(
    store: &Store,
    helpdesk: &str,
    name: &str,
    settings: &MailboxSettings,
) -> Result<(Secret, i64), GraphTokenError> {
    let authorize = format!("run `postdesk mailboxes authorize {name}` to sign in");
    let stored = store
        .oauth_tokens(helpdesk, name)
        .await?
        .filter(|t| t.configured == fingerprint(settings))
        .ok_or_else(|| {
            GraphTokenError::Refused(format!("nobody has signed in yet; {authorize}"))
        })?;
    let now = postdesk_store::now();
    if let (Some(token), Some(expires)) = (&stored.access_token, stored.expires_at)
        && expires - now > MARGIN
    {
        return Ok((Secret::new(token.clone()), expires));
    }
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("client_id", settings.client_id.clone().unwrap_or_default()),
        ("refresh_token", stored.refresh_token.clone()),
        ("scope", DELEGATED_SCOPE.to_string()),
    ];
    if let Some(s) = client_secret(settings)? {
        form.push(("client_secret", s.expose().to_string()));
    }
    let answer = match token_request(settings, &form).await? {
        Ok(answer) => answer,
        Err((status, error)) => {
            return Err(refused(
                status,
                &error,
                &format!("the sign-in was revoked or expired; {authorize}"),
            ));
        }
    };
    let expires = now + answer.expires_in.unwrap_or(3600);
    store
        .save_oauth_tokens(
            helpdesk,
            name,
            &StoredTokens {
                configured: stored.configured,
                refresh_token: answer.refresh_token.unwrap_or(stored.refresh_token),
                access_token: Some(answer.access_token.clone()),
                expires_at: Some(expires),
            },
        )
        .await?;
    Ok((Secret::new(answer.access_token), expires))
}
