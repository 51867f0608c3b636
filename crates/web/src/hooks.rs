//! The providers' notification endpoints, reached without signing in: Microsoft
//! Graph's change notifications at `POST /hooks/graph` (the mailbox setting
//! `notification_url` points here) and Gmail's Pub/Sub pushes at `POST
//! /hooks/gmail?token=<push_token>`.
//!
//! Unauthenticated, so built to be safe against anyone: the body is at most
//! [`MAX_BODY`] bytes (413 beyond), hostile or malformed JSON is a 400 and never a
//! panic, the validation token is echoed only as `text/plain` (under the site's CSP
//! and `nosniff`) and only when short and printable, and a notification wakes a
//! mailbox only when its subscription is one of ours and its `clientState` matches
//! (`postdesk_app::push`). Nothing a caller sends is logged, secrets least of all. A
//! notification only wakes a scan of the delta, so even an accepted forgery reads
//! nothing that was not there.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use postdesk_app::push::{self, Notice};
use serde::Deserialize;

use crate::AppState;
use crate::routes::{Route, public};

/// Where Graph posts; `notification_url` must end in it (behind any proxy prefix).
pub const GRAPH_PATH: &str = "/hooks/graph";
/// A body of notifications larger than this is refused (Graph's are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;
/// The longest validation token echoed (Graph's are about 100 characters).
const MAX_VALIDATION_TOKEN: usize = 1024;

/// Where Pub/Sub pushes Gmail's changes, with `?token=<push_token>`.
pub const GMAIL_PATH: &str = "/hooks/gmail";

pub fn table() -> Vec<Route> {
    vec![
        public(
            Method::POST,
            GRAPH_PATH,
            post(graph).layer(DefaultBodyLimit::max(MAX_BODY)),
        ),
        public(
            Method::POST,
            GMAIL_PATH,
            post(gmail).layer(DefaultBodyLimit::max(MAX_BODY)),
        ),
    ]
}

#[derive(Deserialize)]
struct PushEnvelope {
    message: PushMessage,
}

#[derive(Deserialize)]
struct PushMessage {
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct GmailChange {
    #[serde(rename = "emailAddress")]
    email_address: Option<String>,
}

/// `POST /hooks/gmail?token=…`: a Pub/Sub push. A token that is no Gmail mailbox's
/// `push_token` is a 403 and looked at no further; with a good one, the mailbox the
/// message's `emailAddress` names is woken and the push acknowledged (204), also when
/// the address is another (nothing is woken then).
pub(crate) async fn gmail(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let token = pairs
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if token.is_empty() || token.len() > 256 {
        return (StatusCode::FORBIDDEN, "refused\n").into_response();
    }
    let address = serde_json::from_slice::<PushEnvelope>(&body)
        .ok()
        .and_then(|e| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(e.message.data.trim())
                .ok()
        })
        .and_then(|data| serde_json::from_slice::<GmailChange>(&data).ok())
        .and_then(|c| c.email_address);
    match push::check_gmail_push(state.app(), token, address.as_deref()) {
        None => {
            tracing::warn!("a Gmail push with a wrong token was refused");
            (StatusCode::FORBIDDEN, "refused\n").into_response()
        }
        Some(_) if address.is_none() => {
            (StatusCode::BAD_REQUEST, "not a Pub/Sub push of Gmail's\n").into_response()
        }
        Some(_) => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Deserialize)]
struct Notifications {
    #[serde(default)]
    value: Vec<RawNotice>,
}

#[derive(Deserialize)]
struct RawNotice {
    #[serde(rename = "subscriptionId")]
    subscription_id: Option<String>,
    #[serde(rename = "clientState")]
    client_state: Option<String>,
}

/// `POST /hooks/graph?validationToken=…`: the handshake Graph makes when a
/// subscription is created, answered with the token as plain text (Graph waits 10
/// s). Without it: a body of notifications, `202` when it was taken (also when none
/// of it was ours: Graph needs no retry), `403` when every notification of ours in it
/// carried a wrong `clientState`.
pub(crate) async fn graph(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(query) = query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
        if let Some((_, token)) = pairs.iter().find(|(k, _)| k == "validationToken") {
            let printable = token.chars().all(|c| !c.is_control());
            if token.is_empty() || token.len() > MAX_VALIDATION_TOKEN || !printable {
                return StatusCode::BAD_REQUEST.into_response();
            }
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                token.clone(),
            )
                .into_response();
        }
    }
    let Ok(notifications) = serde_json::from_slice::<Notifications>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a notification body\n").into_response();
    };
    let notices: Vec<Notice> = notifications
        .value
        .into_iter()
        .filter_map(|n| {
            Some(Notice {
                subscription_id: n.subscription_id.filter(|id| id.len() <= 256)?,
                client_state: n.client_state,
            })
        })
        .collect();
    match push::check_graph_notices(state.store(), state.app().wakeups(), &notices).await {
        Ok(checked) if checked.refused > 0 && checked.accepted == 0 => {
            (StatusCode::FORBIDDEN, "refused\n").into_response()
        }
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "change notification: the database does not answer");
            // Graph tries again later; meanwhile the mailbox polls.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
