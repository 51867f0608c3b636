//! `[helpdesk.send]`: the outbox delivered through the API of a Graph or Gmail mailbox
//! instead of SMTP (issue 20), with the same claims, leases, retries and suppressed
//! mode ([`crate::send::deliver_due_with`] only picks this transport). Each mail goes
//! out as the MIME postdesk composed — Graph `sendMail` with the MIME content, Gmail
//! `users.messages.send` with the raw message — so its Message-ID, In-Reply-To and
//! References are postdesk's own.
//!
//! An answer is sorted as SMTP replies are: accepted (2xx) is sent; throttling, the
//! provider's failures and a refused sign-in or permission (401/403, our
//! configuration's fault) are retried later; any other refusal is the mail's and fails it.

use base64::Engine as _;
use postdesk_core::error::chain;
use postdesk_core::mailbox::{GraphFlow, MailboxSettings, Secret};
use postdesk_core::outgoing::SendKind;
use postdesk_store::outbox::Claimed;
use postdesk_store::{RegisteredHelpdesk, Store};

use crate::send::Attempt;

const GRAPH_API: &str = "https://graph.microsoft.com/v1.0";
const GMAIL_API: &str = "https://gmail.googleapis.com/gmail/v1";

/// A signed-in sender for one helpdesk, for one run of the outbox.
pub struct ApiTransport {
    kind: SendKind,
    /// `…/users/{user}` of the sending mailbox.
    user_url: reqwest::Url,
    token: Secret,
    client: reqwest::Client,
}

/// Signs in as the helpdesk's sending mailbox; the error (in words) defers the mail.
pub async fn connect(store: &Store, hd: &RegisteredHelpdesk) -> Result<ApiTransport, String> {
    let send = hd
        .config
        .outgoing
        .send
        .as_ref()
        .ok_or("the helpdesk has no [helpdesk.send]")?;
    let name = send.mailbox.as_deref().unwrap_or_default();
    let mailbox = hd
        .config
        .settings
        .mailboxes
        .iter()
        .find(|m| m.display_name() == name)
        .ok_or_else(|| format!("send: the mailbox `{name}` is not configured"))?;
    let helpdesk = &hd.config.settings.name;
    let token = match send.kind {
        SendKind::Graph => graph_token(store, helpdesk, mailbox).await?,
        SendKind::Gmail => {
            let oauth2 = mailbox
                .oauth2
                .as_ref()
                .ok_or("send: the Gmail mailbox has no [helpdesk.mailbox.oauth2]")?;
            postdesk_credentials::access_token(store, helpdesk, name, oauth2)
                .await
                .map_err(|e| format!("send through {name}: {}", chain(&e)))?
        }
    };
    let base = mailbox.api_url.as_deref().unwrap_or(match send.kind {
        SendKind::Graph => GRAPH_API,
        SendKind::Gmail => GMAIL_API,
    });
    let mut user_url = reqwest::Url::parse(base.trim_end_matches('/'))
        .map_err(|e| format!("api_url `{base}`: {e}"))?;
    user_url
        .path_segments_mut()
        .map_err(|()| format!("api_url `{base}` cannot take a path"))?
        .push("users")
        .push(&mailbox.user);
    let client = postdesk_credentials::http_client().map_err(|e| chain(&e))?;
    Ok(ApiTransport {
        kind: send.kind,
        user_url,
        token,
        client,
    })
}

async fn graph_token(
    store: &Store,
    helpdesk: &str,
    mailbox: &MailboxSettings,
) -> Result<Secret, String> {
    use postdesk_credentials::graph;
    let name = mailbox.display_name();
    let token = match mailbox.flow {
        GraphFlow::ClientCredentials => graph::client_credentials(mailbox).await,
        GraphFlow::DeviceCode => graph::delegated(store, helpdesk, &name, mailbox).await,
    };
    token
        .map(|(t, _)| t)
        .map_err(|e| format!("send through {name}: sign-in refused: {}", chain(&e)))
}

impl ApiTransport {
    fn url(&self, tail: &[&str]) -> reqwest::Url {
        let mut url = self.user_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(tail);
        }
        url
    }

    pub async fn send(&self, mail: &Claimed) -> Attempt {
        let request = match self.kind {
            // Graph takes MIME as base64 text; recipients come from its To/Cc headers.
            SendKind::Graph => self
                .client
                .post(self.url(&["sendMail"]))
                .header(reqwest::header::CONTENT_TYPE, "text/plain")
                .body(base64::engine::general_purpose::STANDARD.encode(&mail.raw)),
            SendKind::Gmail => {
                self.client
                    .post(self.url(&["messages", "send"]))
                    .json(&serde_json::json!({
                        "raw": base64::engine::general_purpose::URL_SAFE.encode(&mail.raw)
                    }))
            }
        };
        let response = match request.bearer_auth(self.token.expose()).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Deferred(format!("cannot reach the API: {}", chain(&e))),
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let what = match self.kind {
            SendKind::Graph => "Graph sendMail",
            SendKind::Gmail => "Gmail messages.send",
        };
        let message = || {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let text = v["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.chars().take(200).collect());
            format!("{what}: HTTP {status}: {text}")
        };
        match status {
            200..=299 => Attempt::Sent,
            401 | 403 | 408 | 429 | 500..=599 => Attempt::Deferred(message()),
            _ => Attempt::Failed(message()),
        }
    }
}
