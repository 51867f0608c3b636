//! A fake Microsoft Graph with its Entra sign-in, on 127.0.0.1, for the Graph
//! mailbox tests: the endpoints postdesk uses, with the shapes of the public API
//! reference, and the faults the real service shows, switched on by the test.
//!
//! Sign-in (`{login}/{tenant}/oauth2/v2.0/…`, form-encoded):
//! - `POST token`, `grant_type=client_credentials` (client id and secret as form
//!   fields, `scope=https://graph.microsoft.com/.default`): an app token for every
//!   mailbox, or only those of [`FakeGraph::limit_app_to`]. A wrong secret, or any after
//!   [`FakeGraph::revoke`], is `401 invalid_client` (AADSTS7000215).
//! - `POST devicecode` → `{device_code, user_code, verification_uri, expires_in,
//!   interval: 1, message}`; `POST token` with `grant_type=urn:ietf:params:oauth:
//!   grant-type:device_code` is `400 authorization_pending` until
//!   [`FakeGraph::approve_device_code`], then a user token with a refresh token.
//! - `POST token`, `grant_type=refresh_token`: a new access token and a rotated refresh
//!   token (the old one stops working, as Entra's do for public clients); unknown or
//!   revoked: `400 invalid_grant` (AADSTS70008).
//!
//! Graph (`/v1.0/users/{user}/…`, `Authorization: Bearer`): an unknown or expired token
//! is `401 InvalidAuthenticationToken`, a mailbox the token may not open `403
//! ErrorAccessDenied`, an unknown user `404 ErrorInvalidUser`.
//! - `GET mailFolders[?$filter=displayName eq '…']`, `POST mailFolders`,
//!   `GET mailFolders/{id}`, `GET|POST mailFolders/{id}/childFolders` — ids or the
//!   well-known names (`inbox`, `archive`, `deleteditems`, `sentitems`, `drafts`, `junkemail`).
//! - `GET mailFolders/{id}/messages/delta` → pages of `{value, @odata.nextLink}` ending
//!   with `@odata.deltaLink`; page size from `Prefer: odata.maxpagesize` (at most
//!   [`FakeGraph::set_page_size`], default 3, so small tests page too). A delta link
//!   returns what changed since: messages added, and `{"id", "@removed":
//!   {"reason": "deleted"}}` for those that left the folder. A token from before
//!   [`FakeGraph::reset_delta_tokens`] is `410 Gone`, code `SyncStateNotFound`.
//! - `GET messages/{id}/$value` → the MIME content (`text/plain`).
//! - `PATCH messages/{id}` (`isRead`), `POST messages/{id}/move {"destinationId"}` → 201
//!   with the moved message, which has a new id (as Exchange gives it).
//! - `POST sendMail` (`{"message": {...}, "saveToSentItems"}`, JSON) and
//!   `POST sendMail` with a base64 MIME body (`Content-Type: text/plain`) → 202; kept
//!   for [`FakeGraph::sent`].
//!
//! - `POST /v1.0/subscriptions` (`changeType` `created`, `resource`
//!   `users/{user}/mailFolders('{id}')/messages`, `notificationUrl`, `clientState`,
//!   `expirationDateTime`): first the validation call the real service makes — a `POST
//!   {notificationUrl}?validationToken=…` that must be answered 200 with the token as
//!   text within 10 s, else `400 ValidationError` — then 201 with the subscription.
//!   An expiry more than 10,080 minutes ahead is `400 ExtensionError`.
//!   `PATCH /v1.0/subscriptions/{id}` (a new `expirationDateTime`) and `DELETE` → 200 /
//!   204, `404 ResourceNotFound` for an unknown id. Each mail delivered to a subscribed
//!   folder is POSTed to its `notificationUrl` as `{"value": [{subscriptionId,
//!   clientState, changeType, resource, resourceData, …}]}`, in the background.
//!
//! Faults: [`FakeGraph::throttle`] (429 or 503 with `Retry-After`),
//! [`FakeGraph::expire_tokens`], [`FakeGraph::revoke`], [`FakeGraph::reset_delta_tokens`],
//! [`FakeGraph::cut_next_delta_page`] (the connection drops halfway through a page),
//! [`FakeGraph::hold_moves`] (moves wait until released; the test kills postdesk then),
//! [`FakeGraph::set_notifications`] (mail arrives without a notification),
//! [`FakeGraph::forge_notification`] (a notification with a wrong `clientState` or for
//! an unknown subscription).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::oauth::{form_decode, parse_form};
use crate::served::{Gate, Served, pass};

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "fake-graph-secret";

const WELL_KNOWN: &[(&str, &str)] = &[
    ("inbox", "Inbox"),
    ("archive", "Archive"),
    ("deleteditems", "Deleted Items"),
    ("sentitems", "Sent Items"),
    ("drafts", "Drafts"),
    ("junkemail", "Junk Email"),
];

/// A running fake; see the [module documentation](self). Stops when dropped.
pub struct FakeGraph {
    // Dropped (stopped) after `drop` let held moves go.
    server: Served,
    state: Arc<Mutex<State>>,
}

/// A mail sent through `sendMail`.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub user: String,
    /// The JSON message, for the JSON form.
    pub json: Option<Value>,
    /// The MIME content, for the MIME form.
    pub mime: Option<Vec<u8>>,
}

struct Folder {
    id: String,
    user: String,
    name: String,
    parent: Option<String>,
    well_known: Option<&'static str>,
}

struct Message {
    user: String,
    folder: String,
    mime: Vec<u8>,
    is_read: bool,
    /// `receivedDateTime`, Unix seconds.
    received: i64,
    added: u64,
    removed: Option<u64>,
}

/// A change-notification subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub user: String,
    pub folder_id: String,
    pub notification_url: String,
    pub client_state: String,
    pub expiration: String,
}

struct Token {
    /// `None`: an app token (client credentials).
    user: Option<String>,
    expires: Instant,
}

struct State {
    users: Vec<String>,
    app_limited_to: Option<Vec<String>>,
    folders: Vec<Folder>,
    messages: HashMap<String, Message>,
    order: Vec<String>,
    seq: u64,
    counter: u64,
    tokens: HashMap<String, Token>,
    refresh_tokens: HashMap<String, String>,
    /// device code → the user who approved it.
    device_codes: HashMap<String, Option<String>>,
    lifetime: Duration,
    revoked: bool,
    epoch: u64,
    page_size: usize,
    throttle: Vec<(u16, u64)>,
    throttled_at: Vec<Instant>,
    answered_after_throttle: Vec<Instant>,
    cut_next_delta: bool,
    cuts: usize,
    /// Moves held (`hold_moves`).
    held_moves: Gate,
    moves: usize,
    requests: Vec<String>,
    sent: Vec<SentMail>,
    token_requests: usize,
    subscriptions: Vec<Subscription>,
    /// The longest expiry granted, in seconds from now (Graph may shorten the one asked).
    subscription_lifetime: Option<i64>,
    /// Notify subscribers of delivered mail.
    notifications: bool,
    /// The status each notification POST was answered with, in order.
    notified: Arc<Mutex<Vec<u16>>>,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        // Ids of the real service are long base64 with `-`, `_` and `=`.
        format!("{prefix}-{:06}_Zk=", self.counter)
    }

    fn folder_id(&self, user: &str, key: &str) -> Option<String> {
        self.folders
            .iter()
            .find(|f| {
                f.user == user
                    && (f.id == key || f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(key)))
            })
            .map(|f| f.id.clone())
    }

    fn folder_by_path(&self, user: &str, path: &str) -> Option<String> {
        let mut parent: Option<String> = None;
        for part in path.split('/') {
            let found = self.folders.iter().find(|f| {
                f.user == user
                    && f.parent == parent
                    && (f.name.eq_ignore_ascii_case(part)
                        || (parent.is_none()
                            && f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(part))))
            })?;
            parent = Some(found.id.clone());
        }
        parent
    }

    fn add_folder(&mut self, user: &str, name: &str, parent: Option<String>) -> String {
        let id = self.next_id("AAMkFolder");
        self.folders.push(Folder {
            id: id.clone(),
            user: user.to_string(),
            name: name.to_string(),
            parent,
            well_known: None,
        });
        id
    }

    fn folder_json(&self, id: &str) -> Value {
        let f = self.folders.iter().find(|f| f.id == id).expect("folder");
        let count = self
            .messages
            .values()
            .filter(|m| m.folder == id && m.removed.is_none())
            .count();
        json!({
            "id": f.id,
            "displayName": f.name,
            "parentFolderId": f.parent,
            "childFolderCount": self.folders.iter().filter(|c| c.parent.as_deref() == Some(id)).count(),
            "totalItemCount": count,
            "unreadItemCount": self.messages.values().filter(|m| m.folder == id && m.removed.is_none() && !m.is_read).count(),
        })
    }

    fn add_message(&mut self, user: &str, folder: &str, mime: Vec<u8>) -> String {
        self.seq += 1;
        let id = self.next_id("AAMkMessage");
        self.messages.insert(
            id.clone(),
            Message {
                user: user.to_string(),
                folder: folder.to_string(),
                mime,
                is_read: false,
                received: unix_now(),
                added: self.seq,
                removed: None,
            },
        );
        self.order.push(id.clone());
        id
    }
}

impl FakeGraph {
    /// A fake with the mailboxes `users`, each with the well-known folders.
    pub fn start(users: &[&str]) -> Self {
        let mut state = State {
            users: users.iter().map(|u| u.to_string()).collect(),
            app_limited_to: None,
            folders: Vec::new(),
            messages: HashMap::new(),
            order: Vec::new(),
            seq: 0,
            counter: 0,
            tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            device_codes: HashMap::new(),
            lifetime: Duration::from_secs(3600),
            revoked: false,
            epoch: 1,
            page_size: 3,
            throttle: Vec::new(),
            throttled_at: Vec::new(),
            answered_after_throttle: Vec::new(),
            cut_next_delta: false,
            cuts: 0,
            held_moves: Gate::default(),
            moves: 0,
            requests: Vec::new(),
            sent: Vec::new(),
            token_requests: 0,
            subscriptions: Vec::new(),
            subscription_lifetime: None,
            notifications: true,
            notified: Arc::default(),
        };
        for user in users {
            for (well_known, name) in WELL_KNOWN {
                let id = state.next_id("AAMkFolder");
                state.folders.push(Folder {
                    id,
                    user: user.to_string(),
                    name: name.to_string(),
                    parent: None,
                    well_known: Some(well_known),
                });
            }
        }
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let server = Served::start("the fake Graph", move |port| {
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = Arc::clone(&shared);
                    async move { handle(&state, port, method, uri, headers, body).await }
                },
            )
        });
        Self { server, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `api_url` for the config.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1.0", self.server.port)
    }

    /// `login_url` for the config.
    pub fn login_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// Puts a mail into `folder` (a path such as `Inbox` or `Inbox/Sub`); its id. The
    /// folder's subscribers are notified (in the background) unless
    /// [`Self::set_notifications`] turned that off.
    pub fn deliver(&self, user: &str, folder: &str, mime: &[u8]) -> String {
        let mut state = self.lock();
        let folder_id = state
            .folder_by_path(user, folder)
            .unwrap_or_else(|| panic!("no folder {folder} for {user}"));
        let id = state.add_message(user, &folder_id, mime.to_vec());
        if state.notifications {
            let notified = Arc::clone(&state.notified);
            for sub in subscribers(&state, user, &folder_id) {
                let body = notification(&sub, &sub.client_state, &id);
                let notified = Arc::clone(&notified);
                std::thread::spawn(move || {
                    let status = post_to(&sub.notification_url, &body).map_or(0, |(s, _)| s);
                    notified
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(status);
                });
            }
        }
        id
    }

    /// Sets when a mail was received (`receivedDateTime`, Unix seconds).
    pub fn set_received(&self, id: &str, unix: i64) {
        if let Some(m) = self.lock().messages.get_mut(id) {
            m.received = unix;
        }
    }

    /// Whether delivered mail is notified to subscribers (default yes).
    pub fn set_notifications(&self, on: bool) {
        self.lock().notifications = on;
    }

    /// Notifies the subscribers of `folder` now, as for a new mail, with the right
    /// `clientState`; the status of each answer (0: no answer).
    pub fn notify(&self, user: &str, folder: &str) -> Vec<u16> {
        let subs = {
            let state = self.lock();
            let folder_id = state.folder_by_path(user, folder).expect("folder");
            subscribers(&state, user, &folder_id)
        };
        subs.iter()
            .map(|sub| {
                let body = notification(sub, &sub.client_state, "AAMkMessage-none");
                post_to(&sub.notification_url, &body).map_or(0, |(s, _)| s)
            })
            .collect()
    }

    /// A forged notification to the first subscription's URL: with `client_state`
    /// instead of the right one, for `subscription_id` instead of the real one. The
    /// status and body of the answer.
    pub fn forge_notification(
        &self,
        subscription_id: Option<&str>,
        client_state: &str,
    ) -> (u16, String) {
        let mut sub = self
            .lock()
            .subscriptions
            .first()
            .cloned()
            .expect("a subscription");
        if let Some(id) = subscription_id {
            sub.id = id.to_string();
        }
        let body = notification(&sub, client_state, "AAMkMessage-forged");
        post_to(&sub.notification_url, &body)
            .map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned()))
            .unwrap_or_default()
    }

    /// Subscriptions are granted at most `secs` (made or renewed), whatever is asked.
    pub fn set_subscription_lifetime(&self, secs: i64) {
        self.lock().subscription_lifetime = Some(secs);
    }

    /// Every subscription is gone (as when Graph removes one): renewing it is a 404.
    pub fn drop_subscriptions(&self) {
        self.lock().subscriptions.clear();
    }

    /// The subscriptions in force.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.lock().subscriptions.clone()
    }

    /// The status of each notification POST for delivered mail, in order.
    pub fn notified(&self) -> Vec<u16> {
        self.lock()
            .notified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Creates a folder (a path; its parents must exist).
    pub fn create_folder(&self, user: &str, path: &str) {
        let mut state = self.lock();
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (state.folder_by_path(user, p), n),
            None => (None, path),
        };
        state.add_folder(user, name, parent);
    }

    /// The MIME content of each mail in `folder`, in arrival order; empty for a folder
    /// that does not exist.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let state = self.lock();
        let Some(id) = state.folder_by_path(user, folder) else {
            return Vec::new();
        };
        state
            .order
            .iter()
            .filter_map(|m| state.messages.get(m))
            .filter(|m| m.user == user && m.folder == id && m.removed.is_none())
            .map(|m| m.mime.clone())
            .collect()
    }

    pub fn count(&self, user: &str, folder: &str) -> usize {
        self.messages(user, folder).len()
    }

    /// Only these mailboxes open with an app token (an application access policy).
    pub fn limit_app_to(&self, users: &[&str]) {
        self.lock().app_limited_to = Some(users.iter().map(|u| u.to_string()).collect());
    }

    /// `expires_in` of new access tokens.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().lifetime = Duration::from_secs(secs);
    }

    /// Every access token issued so far stops working (401) before its time.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.lock().tokens.values_mut() {
            t.expires = now;
        }
    }

    /// The client secret and every refresh and access token are revoked.
    pub fn revoke(&self) {
        let mut state = self.lock();
        state.revoked = true;
        state.refresh_tokens.clear();
        state.tokens.clear();
    }

    /// Every delta and skip token issued so far is refused with 410 SyncStateNotFound.
    pub fn reset_delta_tokens(&self) {
        self.lock().epoch += 1;
    }

    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    /// The next `count` Graph requests are answered `status` (429 or 503) with `Retry-After: secs`.
    pub fn throttle(&self, count: usize, status: u16, secs: u64) {
        let mut state = self.lock();
        for _ in 0..count {
            state.throttle.push((status, secs));
        }
    }

    /// When each throttled answer was given, and when the next answers were.
    pub fn throttle_log(&self) -> (Vec<Instant>, Vec<Instant>) {
        let state = self.lock();
        (
            state.throttled_at.clone(),
            state.answered_after_throttle.clone(),
        )
    }

    /// The next delta page is cut off halfway: the connection drops mid-answer.
    pub fn cut_next_delta_page(&self) {
        self.lock().cut_next_delta = true;
    }

    /// How many pages were cut.
    pub fn cuts(&self) -> usize {
        self.lock().cuts
    }

    /// Moves wait (the request open, unanswered) until `hold_moves(false)`.
    pub fn hold_moves(&self, hold: bool) {
        self.lock().held_moves.held = hold;
    }

    /// Moves waiting now because of [`Self::hold_moves`].
    pub fn moves_waiting(&self) -> usize {
        self.lock().held_moves.waiting
    }

    /// Moves done.
    pub fn moves(&self) -> usize {
        self.lock().moves
    }

    /// Signs the pending device code in as `user`.
    pub fn approve_device_code(&self, user: &str) {
        for v in self.lock().device_codes.values_mut() {
            if v.is_none() {
                *v = Some(user.to_string());
            }
        }
    }

    /// Device codes asked for.
    pub fn device_codes(&self) -> usize {
        self.lock().device_codes.len()
    }

    /// Requests to the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// `METHOD /path` of every Graph request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    pub fn sent(&self) -> Vec<SentMail> {
        self.lock().sent.clone()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        // Held moves would keep a connection open and the graceful shutdown waiting.
        self.lock().held_moves.held = false;
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"code": code, "message": message, "innerError": {"request-id": "fake"}}})
            .to_string(),
    )
        .into_response()
}

fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": code, "error_description": description, "error_codes": [0]}).to_string(),
    )
        .into_response()
}

fn json_response(status: u16, value: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn decode_segment(s: &str) -> String {
    form_decode(&s.replace('+', "%2B"))
}

async fn handle(
    shared: &Arc<Mutex<State>>,
    port: u16,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = parse_form(uri.query().unwrap_or_default().as_bytes());
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode_segment)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if segs.len() == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" {
        let form = parse_form(&body);
        let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
        state.token_requests += 1;
        if segs[0] != TENANT {
            return oauth_error(
                400,
                "invalid_request",
                "AADSTS90002: Tenant not found. Check the tenant id.",
            );
        }
        return match segs[3] {
            "token" => token(&mut state, &form),
            "devicecode" => {
                let code = state.next_id("device");
                state.device_codes.insert(code.clone(), None);
                json_response(
                    200,
                    json!({
                        "device_code": code,
                        "user_code": "FAKE-CODE",
                        "verification_uri": "https://microsoft.com/devicelogin",
                        "expires_in": 900,
                        "interval": 1,
                        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FAKE-CODE to authenticate."
                    }),
                )
            }
            _ => oauth_error(404, "invalid_request", "no such endpoint"),
        };
    }
    if segs.len() >= 2 && segs[0] == "v1.0" && segs[1] == "subscriptions" {
        return subscriptions(shared, &method, &segs[2..], &headers, &body).await;
    }
    if segs.len() < 3 || segs[0] != "v1.0" || segs[1] != "users" {
        return graph_error(400, "BadRequest", "Invalid version or resource.");
    }
    let user = segs[2].to_string();
    let rest: Vec<&str> = segs[3..].to_vec();
    // Faults and authentication, as the service checks them: throttling first.
    {
        let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(format!("{method} {path}"));
        if !state.throttle.is_empty() {
            let (status, secs) = state.throttle.remove(0);
            state.throttled_at.push(Instant::now());
            let mut response = graph_error(
                status,
                if status == 429 {
                    "TooManyRequests"
                } else {
                    "ServiceUnavailable"
                },
                "Application is over its MailboxConcurrency limit.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("header value"),
            );
            return response;
        }
        if !state.throttled_at.is_empty() {
            state.answered_after_throttle.push(Instant::now());
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let Some(token) = state.tokens.get(bearer) else {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed.",
            );
        };
        if token.expires <= Instant::now() {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            );
        }
        let allowed = match &token.user {
            Some(u) => u.eq_ignore_ascii_case(&user),
            None => state
                .app_limited_to
                .as_ref()
                .is_none_or(|l| l.iter().any(|u| u.eq_ignore_ascii_case(&user))),
        };
        if !state.users.iter().any(|u| u.eq_ignore_ascii_case(&user)) {
            return graph_error(
                404,
                "ErrorInvalidUser",
                &format!("The requested user '{user}' is invalid."),
            );
        }
        if !allowed {
            return graph_error(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            );
        }
    }
    let user = {
        let state = shared.lock().unwrap_or_else(|e| e.into_inner());
        state
            .users
            .iter()
            .find(|u| u.eq_ignore_ascii_case(&user))
            .cloned()
            .unwrap_or(user)
    };
    let base = format!("http://127.0.0.1:{port}/v1.0/users/{user}");
    match (method.as_str(), rest.as_slice()) {
        ("GET", ["mailFolders"]) | ("POST", ["mailFolders"]) => {
            folders(shared, &user, None, &method, &query, &body)
        }
        ("GET", ["mailFolders", id]) => {
            let state = shared.lock().unwrap_or_else(|e| e.into_inner());
            match state.folder_id(&user, id) {
                Some(id) => json_response(200, state.folder_json(&id)),
                None => graph_error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("GET", ["mailFolders", id, "childFolders"])
        | ("POST", ["mailFolders", id, "childFolders"]) => {
            let parent = shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .folder_id(&user, id);
            match parent {
                Some(p) => folders(shared, &user, Some(p), &method, &query, &body),
                None => graph_error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("GET", ["mailFolders", id, "messages", "delta"]) => {
            delta(shared, &base, &user, id, &query, &headers)
        }
        ("GET", ["messages", id, "$value"]) => {
            let state = shared.lock().unwrap_or_else(|e| e.into_inner());
            match state
                .messages
                .get(*id)
                .filter(|m| m.removed.is_none() && m.user == user)
            {
                Some(m) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain")],
                    m.mime.clone(),
                )
                    .into_response(),
                None => graph_error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("PATCH", ["messages", id]) => {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
            match state.messages.get_mut(*id).filter(|m| m.removed.is_none()) {
                Some(m) => {
                    if let Some(read) = patch["isRead"].as_bool() {
                        m.is_read = read;
                    }
                    json_response(200, json!({"id": id, "isRead": m.is_read}))
                }
                None => graph_error(
                    404,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("POST", ["messages", id, "move"]) => r#move(shared, &user, id, &body).await,
        ("POST", ["sendMail"]) => {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let is_mime = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/plain"));
            let sent = if is_mime {
                use base64::Engine as _;
                match base64::engine::general_purpose::STANDARD.decode(body.trim_ascii()) {
                    Ok(mime) => SentMail {
                        user: user.clone(),
                        json: None,
                        mime: Some(mime),
                    },
                    Err(_) => {
                        return graph_error(
                            400,
                            "ErrorMimeContentInvalidBase64String",
                            "Invalid base64 string for MIME content.",
                        );
                    }
                }
            } else {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) if v["message"].is_object() => SentMail {
                        user: user.clone(),
                        json: Some(v["message"].clone()),
                        mime: None,
                    },
                    _ => {
                        return graph_error(
                            400,
                            "ErrorInvalidRequest",
                            "Empty Payload. JSON content expected.",
                        );
                    }
                }
            };
            state.sent.push(sent);
            StatusCode::ACCEPTED.into_response()
        }
        _ => graph_error(
            400,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", rest.join("/")),
        ),
    }
}

fn token(state: &mut State, form: &[(String, String)]) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("client_id") != Some(CLIENT_ID) {
        return oauth_error(
            400,
            "unauthorized_client",
            "AADSTS700016: Application with identifier was not found in the directory.",
        );
    }
    let lifetime = state.lifetime;
    let issue = |state: &mut State, user: Option<String>, refresh: bool| {
        let access = state.next_id("eyJ0eXAiOiJKV1Q");
        state.tokens.insert(
            access.clone(),
            Token {
                user: user.clone(),
                expires: Instant::now() + lifetime,
            },
        );
        let mut answer = json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access,
        });
        if refresh && let Some(user) = user {
            let refresh = state.next_id("M.R3_BAY");
            state.refresh_tokens.insert(refresh.clone(), user);
            answer["refresh_token"] = json!(refresh);
            answer["scope"] = json!("https://graph.microsoft.com/Mail.ReadWrite");
        }
        json_response(200, answer)
    };
    match field("grant_type") {
        Some("client_credentials") => {
            if state.revoked || field("client_secret") != Some(CLIENT_SECRET) {
                return oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                );
            }
            if field("scope") != Some("https://graph.microsoft.com/.default") {
                return oauth_error(
                    400,
                    "invalid_scope",
                    "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
                );
            }
            issue(state, None, false)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = field("device_code").unwrap_or_default().to_string();
            match state.device_codes.get(&code).cloned() {
                None => oauth_error(
                    400,
                    "invalid_grant",
                    "AADSTS70000: The provided device code is invalid.",
                ),
                Some(None) => oauth_error(
                    400,
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                ),
                Some(Some(user)) => {
                    state.device_codes.remove(&code);
                    issue(state, Some(user), true)
                }
            }
        }
        Some("refresh_token") => {
            let refresh = field("refresh_token").unwrap_or_default().to_string();
            match state.refresh_tokens.remove(&refresh) {
                Some(user) => issue(state, Some(user), true),
                None => oauth_error(
                    400,
                    "invalid_grant",
                    "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity or was revoked.",
                ),
            }
        }
        _ => oauth_error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        ),
    }
}

fn folders(
    shared: &Arc<Mutex<State>>,
    user: &str,
    parent: Option<String>,
    method: &Method,
    query: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    if method == Method::POST {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let Some(name) = request["displayName"].as_str() else {
            return graph_error(400, "ErrorInvalidRequest", "displayName is required.");
        };
        let exists = state
            .folders
            .iter()
            .any(|f| f.user == user && f.parent == parent && f.name.eq_ignore_ascii_case(name));
        if exists {
            return graph_error(
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            );
        }
        let id = state.add_folder(user, name, parent);
        return json_response(201, state.folder_json(&id));
    }
    let wanted = query
        .iter()
        .find(|(k, _)| k == "$filter")
        .map(|(_, v)| v.clone());
    let name_filter = match wanted {
        None => None,
        Some(filter) => match filter
            .strip_prefix("displayName eq '")
            .and_then(|r| r.strip_suffix('\''))
        {
            Some(name) => Some(name.replace("''", "'")),
            None => {
                return graph_error(
                    400,
                    "ErrorInvalidUrlQueryFilter",
                    "The query filter contains one or more invalid nodes.",
                );
            }
        },
    };
    let ids: Vec<String> = state
        .folders
        .iter()
        .filter(|f| f.user == user && f.parent == parent)
        // OData's `eq` on strings ignores case in Exchange.
        .filter(|f| {
            name_filter
                .as_deref()
                .is_none_or(|n| f.name.eq_ignore_ascii_case(n))
        })
        .map(|f| f.id.clone())
        .collect();
    let value: Vec<Value> = ids.iter().map(|id| state.folder_json(id)).collect();
    json_response(200, json!({ "value": value }))
}

fn delta(
    shared: &Arc<Mutex<State>>,
    base: &str,
    user: &str,
    folder: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    let Some(folder_id) = state.folder_id(user, folder) else {
        return graph_error(
            404,
            "ErrorItemNotFound",
            "The specified folder was not found in the store.",
        );
    };
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    // Tokens: `e{epoch}.{since}.{upto}.{offset}` (skip) and `e{epoch}.{upto}` (delta).
    let token = get("$skiptoken").or_else(|| get("$deltatoken"));
    let (since, upto, offset) = match &token {
        None => (0, state.seq, 0),
        Some(t) => {
            let parts: Vec<&str> = t.split('.').collect();
            let epoch = parts
                .first()
                .and_then(|e| e.strip_prefix('e'))
                .and_then(|e| e.parse::<u64>().ok());
            let numbers: Option<Vec<u64>> = parts[1..].iter().map(|p| p.parse().ok()).collect();
            match (epoch, numbers.as_deref()) {
                (Some(e), _) if e != state.epoch => {
                    return graph_error(
                        410,
                        "SyncStateNotFound",
                        "The sync state generation is not found. Please perform a full resync.",
                    );
                }
                (Some(_), Some([since, upto, offset])) => (*since, *upto, *offset as usize),
                (Some(_), Some([upto])) => (*upto, state.seq, 0),
                _ => {
                    return graph_error(
                        400,
                        "ErrorInvalidSyncStateData",
                        "The sync state data is corrupt or otherwise invalid.",
                    );
                }
            }
        }
    };
    let max = headers
        .get("Prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(10)
        .min(state.page_size);
    let changes: Vec<Value> = state
        .order
        .iter()
        .filter_map(|id| state.messages.get(id).map(|m| (id, m)))
        .filter(|(_, m)| m.folder == folder_id && m.user == user)
        .filter_map(|(id, m)| {
            let present = m.added <= upto && m.removed.is_none_or(|r| r > upto);
            let changed = (m.added > since && m.added <= upto)
                || m.removed.is_some_and(|r| r > since && r <= upto);
            match (changed, present) {
                (true, true) => Some(json!({
                    "@odata.type": "#microsoft.graph.message",
                    "id": id,
                    "receivedDateTime": graph_time(m.received).replace(".0000000", ""),
                })),
                (true, false) if since > 0 && m.added <= since => {
                    Some(json!({"id": id, "@removed": {"reason": "deleted"}}))
                }
                _ => None,
            }
        })
        .collect();
    let page: Vec<Value> = changes.iter().skip(offset).take(max).cloned().collect();
    let link = format!("{base}/mailFolders/{folder}/messages/delta");
    let mut answer = json!({
        "@odata.context": format!("{base}/$metadata#Collection(message)"),
        "value": page,
    });
    if offset + max < changes.len() {
        answer["@odata.nextLink"] = json!(format!(
            "{link}?$skiptoken=e{}.{since}.{upto}.{}",
            state.epoch,
            offset + max
        ));
    } else {
        answer["@odata.deltaLink"] = json!(format!("{link}?$deltatoken=e{}.{upto}", state.epoch));
    }
    let text = answer.to_string();
    if state.cut_next_delta {
        state.cut_next_delta = false;
        state.cuts += 1;
        let half = Bytes::from(text.as_bytes()[..text.len() / 2].to_vec());
        let stream = futures::stream::iter(vec![
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            )),
        ]);
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    json_response(200, answer)
}

async fn r#move(shared: &Arc<Mutex<State>>, user: &str, id: &str, body: &[u8]) -> Response {
    pass(shared, |s| &mut s.held_moves).await;
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(target) = request["destinationId"]
        .as_str()
        .and_then(|d| state.folder_id(user, d))
    else {
        return graph_error(400, "ErrorInvalidIdMalformed", "Id is malformed.");
    };
    let Some(message) = state
        .messages
        .get(id)
        .filter(|m| m.removed.is_none() && m.user == user)
    else {
        return graph_error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    let mime = message.mime.clone();
    let is_read = message.is_read;
    state.seq += 1;
    let seq = state.seq;
    if let Some(m) = state.messages.get_mut(id) {
        m.removed = Some(seq);
    }
    let new_id = state.add_message(user, &target, mime);
    if let Some(m) = state.messages.get_mut(&new_id) {
        m.is_read = is_read;
    }
    state.moves += 1;
    json_response(
        201,
        json!({"id": new_id, "parentFolderId": target, "isRead": is_read}),
    )
}

/// The subscriptions of one folder.
fn subscribers(state: &State, user: &str, folder_id: &str) -> Vec<Subscription> {
    state
        .subscriptions
        .iter()
        .filter(|s| s.user.eq_ignore_ascii_case(user) && s.folder_id == folder_id)
        .cloned()
        .collect()
}

/// A notification body as Graph posts it for a new message.
fn notification(sub: &Subscription, client_state: &str, message_id: &str) -> Vec<u8> {
    json!({"value": [{
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": sub.expiration,
        "changeType": "created",
        "resource": format!("Users/{}/Messages/{message_id}", sub.user),
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Message",
            "@odata.id": format!("Users/{}/Messages/{message_id}", sub.user),
            "@odata.etag": "W/\"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf\"",
            "id": message_id,
        },
        "clientState": client_state,
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
    }]})
    .to_string()
    .into_bytes()
}

/// `/v1.0/subscriptions[/{id}]`: create (with the validation call), renew, delete.
async fn subscriptions(
    shared: &Arc<Mutex<State>>,
    method: &Method,
    rest: &[&str],
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    {
        let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(format!("{method} /v1.0/subscriptions"));
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let valid = state
            .tokens
            .get(bearer)
            .is_some_and(|t| t.expires > Instant::now());
        if !valid {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty or expired.",
            );
        }
    }
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    match (method.as_str(), rest) {
        ("POST", []) => {
            let text = |k: &str| request[k].as_str().unwrap_or_default().to_string();
            let (url, resource) = (text("notificationUrl"), text("resource"));
            if text("changeType") != "created" || !url.starts_with("http") {
                return graph_error(
                    400,
                    "InvalidRequest",
                    "changeType or notificationUrl is invalid.",
                );
            }
            let Some(expiration) = request["expirationDateTime"].as_str().map(str::to_string)
            else {
                return graph_error(400, "InvalidRequest", "expirationDateTime is required.");
            };
            if !within_limit(&expiration) {
                return graph_error(
                    400,
                    "ExtensionError",
                    "Subscription expiration can only be 10070 minutes in the future.",
                );
            }
            // users/{user}/mailFolders('{id}')/messages
            let parsed = resource
                .strip_prefix("users/")
                .and_then(|r| r.split_once("/mailFolders('"))
                .and_then(|(user, r)| {
                    r.strip_suffix("')/messages")
                        .map(|id| (user.to_string(), id.replace("''", "'")))
                });
            let folder = parsed.and_then(|(user, folder)| {
                let state = shared.lock().unwrap_or_else(|e| e.into_inner());
                let user = state
                    .users
                    .iter()
                    .find(|u| u.eq_ignore_ascii_case(&user))?
                    .clone();
                let id = state.folder_id(&user, &folder)?;
                Some((user, id))
            });
            let Some((user, folder_id)) = folder else {
                return graph_error(
                    400,
                    "InvalidRequest",
                    "Resource is not a known message folder.",
                );
            };
            // The validation call, as the service makes it before answering.
            let token = format!(
                "Validation: Testing client application reachability for subscription Request-Id: {}",
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next_id("req")
            );
            let target = format!("{url}?validationToken={}", url_encode(&token));
            let started = Instant::now();
            let answer = tokio::task::spawn_blocking(move || post_to(&target, b""))
                .await
                .ok()
                .flatten();
            let valid = matches!(&answer, Some((200, b)) if b == token.as_bytes())
                && started.elapsed() < Duration::from_secs(10);
            if !valid {
                return graph_error(
                    400,
                    "ValidationError",
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
                );
            }
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let expiration = granted(&state, &expiration);
            let sub = Subscription {
                id: state.next_id("sub").replace("_Zk=", "-7f3a"),
                user,
                folder_id,
                notification_url: url,
                client_state: text("clientState"),
                expiration,
            };
            state.subscriptions.push(sub.clone());
            json_response(201, subscription_json(&sub, &resource))
        }
        ("PATCH", [id]) => {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let Some(expiration) = request["expirationDateTime"].as_str() else {
                return graph_error(400, "InvalidRequest", "expirationDateTime is required.");
            };
            if !within_limit(expiration) {
                return graph_error(
                    400,
                    "ExtensionError",
                    "Subscription expiration can only be 10070 minutes in the future.",
                );
            }
            let expiration = granted(&state, expiration);
            match state.subscriptions.iter_mut().find(|s| s.id == *id) {
                Some(sub) => {
                    sub.expiration = expiration;
                    let sub = sub.clone();
                    json_response(200, subscription_json(&sub, ""))
                }
                None => graph_error(404, "ResourceNotFound", "The object was not found."),
            }
        }
        ("DELETE", [id]) => {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let before = state.subscriptions.len();
            state.subscriptions.retain(|s| s.id != *id);
            if state.subscriptions.len() < before {
                StatusCode::NO_CONTENT.into_response()
            } else {
                graph_error(404, "ResourceNotFound", "The object was not found.")
            }
        }
        _ => graph_error(400, "BadRequest", "Unsupported subscription request."),
    }
}

fn subscription_json(sub: &Subscription, resource: &str) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        "id": sub.id,
        "resource": resource,
        "applicationId": CLIENT_ID,
        "changeType": "created",
        "clientState": sub.client_state,
        "notificationUrl": sub.notification_url,
        "expirationDateTime": sub.expiration,
        "creatorId": "8ee44408-0679-472c-bc2a-692812af3437",
    })
}

/// The expiry granted for the one asked: shortened to the lifetime the test set.
fn granted(state: &State, asked: &str) -> String {
    match (state.subscription_lifetime, unix_of(asked)) {
        (Some(secs), Some(at)) => graph_time(at.min(unix_now() + secs)),
        _ => asked.to_string(),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `2026-12-10T11:00:00.0000000Z`, as Graph writes times.
fn graph_time(unix: i64) -> String {
    let second = time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    second.replace('Z', ".0000000Z")
}

/// `2026-12-10T11:00:00Z` (or with fractions) at most 10,080 minutes from now, by the
/// system clock.
fn within_limit(expiration: &str) -> bool {
    let Some(at) = unix_of(expiration) else {
        return false;
    };
    let now = unix_now();
    at > now && at - now <= 10_080 * 60
}

/// Seconds since 1970 of an RFC 3339 time (fractions allowed).
fn unix_of(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blocking `POST` of JSON (plain text for an empty body) to an `http://` URL; the
/// status and body of the answer, `None` when nothing answered within 10 s.
pub(crate) fn post_to(url: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let content_type = if body.is_empty() {
        "text/plain"
    } else {
        "application/json"
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&answer[..split])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, answer[split + 4..].to_vec()))
}

#[cfg(test)]
mod subscription_tests {
    use super::*;

    #[test]
    fn graph_times_read_as_unix_seconds() {
        assert_eq!(unix_of("2026-11-22T14:05:09Z"), Some(1_795_356_309));
        assert_eq!(unix_of("1970-01-01T00:00:00.0000000Z"), Some(0));
        assert_eq!(unix_of("soon"), None);
        assert_eq!(graph_time(1_795_356_309), "2026-11-22T14:05:09.0000000Z");
        assert_eq!(
            unix_of(&graph_time(951_782_400)),
            Some(951_782_400),
            "2000-02-29"
        );
    }
}
