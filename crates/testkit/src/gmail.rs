//! A fake Gmail API on 127.0.0.1 for the Gmail mailbox tests, with the shapes of the
//! public API reference. Access tokens are the ones testkit's [`TokenServer`] issues
//! (Google's token endpoint: refresh-token grant, rotation, revocation), checked on
//! every call; [`FakeGmail::expire_tokens`] makes those issued so far fail early.
//!
//! Endpoints (`/gmail/v1/users/{user}/…`, `user` is `me` or the address):
//! - `GET profile` → `{emailAddress, messagesTotal, threadsTotal, historyId}`
//! - `GET labels`, `POST labels {name}` → labels (`INBOX`, `UNREAD`… are system labels
//!   whose id is their name; user labels get `Label_N`); a taken name is 409.
//! - `GET messages?labelIds=&maxResults=&pageToken=` → `{messages: [{id, threadId}],
//!   nextPageToken, resultSizeEstimate}`, newest first, at most [`FakeGmail::set_page_size`].
//! - `GET messages/{id}?format=raw` → `{id, threadId, labelIds, sizeEstimate, historyId,
//!   raw}` (base64url).
//! - `POST messages/{id}/modify {addLabelIds, removeLabelIds}` → the message.
//! - `GET history?startHistoryId=&labelId=&historyTypes=&pageToken=` → `{history: [{id,
//!   messages, messagesAdded|labelsAdded: [...]}], nextPageToken, historyId}`; a start
//!   older than [`FakeGmail::expire_history`] allows is 404.
//! - `POST messages/send {raw}` → `{id, threadId, labelIds: ["SENT"]}`.
//! - `POST watch {topicName, labelIds, labelFilterBehavior}` → `{historyId, expiration}`
//!   (milliseconds); `POST stop` → 204. While a watch is on and the test named the push
//!   endpoint ([`FakeGmail::set_push_endpoint`], standing for the Pub/Sub push
//!   subscription), each mail delivered with a watched label is pushed there in Pub/Sub's
//!   envelope: `{"message": {"data": base64 of {"emailAddress", "historyId"},
//!   "messageId", "publishTime"}, "subscription"}`, in the background.
//!
//! Errors have Google's shape: `{"error": {"code", "message", "status"}}`.
//! [`FakeGmail::throttle`] answers the next calls 429 `RESOURCE_EXHAUSTED` with `Retry-After`;
//! [`FakeGmail::hold_modifies`] keeps label changes waiting (for a kill before them).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::oauth::{TokenServer, form_decode, parse_form};
use crate::served::{Gate, Served, pass};

const SYSTEM: &[&str] = &[
    "INBOX",
    "SENT",
    "TRASH",
    "SPAM",
    "DRAFT",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
];

pub struct FakeGmail {
    // Dropped (stopped) after `drop` let held label changes go.
    server: Served,
    state: Arc<Mutex<State>>,
}

struct Message {
    raw: Vec<u8>,
    labels: BTreeSet<String>,
    history_id: u64,
    /// `internalDate`: when it came, milliseconds since 1970.
    internal_date: u128,
}

enum Change {
    Added(String),
    LabelAdded(String, Vec<String>),
}

struct State {
    address: String,
    labels: Vec<(String, String)>,
    messages: HashMap<String, Message>,
    order: Vec<String>,
    history: Vec<(u64, Change)>,
    history_id: u64,
    oldest_history: u64,
    counter: u64,
    page_size: usize,
    refused_tokens: HashSet<String>,
    seen_tokens: HashSet<String>,
    throttle: Vec<u64>,
    throttled: usize,
    sent: Vec<Vec<u8>>,
    requests: Vec<String>,
    /// Label changes held (`hold_modifies`).
    held_modifies: Gate,
    /// The watch in force: its topic and labels.
    watch: Option<(String, Vec<String>)>,
    push_endpoint: Option<String>,
    /// The status each push was answered with, in order.
    pushed: Arc<Mutex<Vec<u16>>>,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.history_id += 1;
        self.history_id
    }

    fn label_json(&self, id: &str, name: &str) -> Value {
        let total = self
            .messages
            .values()
            .filter(|m| m.labels.contains(id))
            .count();
        json!({
            "id": id,
            "name": name,
            "type": if SYSTEM.contains(&id) { "system" } else { "user" },
            "messagesTotal": total,
        })
    }

    fn label_id(&self, name: &str) -> Option<String> {
        self.labels
            .iter()
            .find(|(id, n)| id == name || n.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone())
    }

    fn message_json(&self, id: &str, raw: bool) -> Value {
        let m = &self.messages[id];
        let mut v = json!({
            "id": id,
            "threadId": id,
            "labelIds": m.labels.iter().collect::<Vec<_>>(),
            "sizeEstimate": m.raw.len(),
            "historyId": m.history_id.to_string(),
            "internalDate": m.internal_date.to_string(),
        });
        if raw {
            v["raw"] = json!(base64::engine::general_purpose::URL_SAFE.encode(&m.raw));
        }
        v
    }
}

fn error(status: u16, message: &str, code: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": {"code": status, "message": message, "status": code,
            "errors": [{"message": message, "domain": "global", "reason": code}]}})
        .to_string(),
    )
        .into_response()
}

fn ok(value: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

impl FakeGmail {
    /// A mailbox for `address`; its calls need an access token that `tokens` issued.
    pub fn start(address: &str, tokens: Arc<TokenServer>) -> Self {
        let state = State {
            address: address.to_string(),
            labels: SYSTEM
                .iter()
                .map(|l| (l.to_string(), l.to_string()))
                .collect(),
            messages: HashMap::new(),
            order: Vec::new(),
            history: Vec::new(),
            history_id: 1000,
            oldest_history: 0,
            counter: 0,
            page_size: 3,
            refused_tokens: HashSet::new(),
            seen_tokens: HashSet::new(),
            throttle: Vec::new(),
            throttled: 0,
            sent: Vec::new(),
            requests: Vec::new(),
            held_modifies: Gate::default(),
            watch: None,
            push_endpoint: None,
            pushed: Arc::default(),
        };
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let server = Served::start("the fake Gmail", move |_| {
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = Arc::clone(&shared);
                    let tokens = Arc::clone(&tokens);
                    async move {
                        if uri.path().ends_with("/modify") {
                            pass(&state, |s| &mut s.held_modifies).await;
                        }
                        handle(&state, &tokens, method, uri, headers, body)
                    }
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
        format!("http://127.0.0.1:{}/gmail/v1", self.server.port)
    }

    /// A mail arrives with `labels` (e.g. `["INBOX", "UNREAD"]`); its id.
    pub fn deliver(&self, raw: &[u8], labels: &[&str]) -> String {
        let mut state = self.lock();
        state.counter += 1;
        let id = format!("18c{:013x}", state.counter);
        let history_id = state.bump();
        state.messages.insert(
            id.clone(),
            Message {
                raw: raw.to_vec(),
                labels: labels.iter().map(|l| l.to_string()).collect(),
                history_id,
                internal_date: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis()),
            },
        );
        state.order.push(id.clone());
        state.history.push((history_id, Change::Added(id.clone())));
        if let (Some((_, watched)), Some(endpoint)) = (&state.watch, &state.push_endpoint)
            && labels
                .iter()
                .any(|l| watched.iter().any(|w| w.as_str() == *l))
        {
            let body = envelope(&state.address, history_id);
            let (endpoint, pushed) = (endpoint.clone(), Arc::clone(&state.pushed));
            std::thread::spawn(move || {
                let status = crate::graph::post_to(&endpoint, &body).map_or(0, |(s, _)| s);
                pushed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(status);
            });
        }
        id
    }

    /// Creates a user label.
    /// Where the Pub/Sub push subscription delivers (postdesk's `/hooks/gmail?token=…`).
    pub fn set_push_endpoint(&self, url: &str) {
        self.lock().push_endpoint = Some(url.to_string());
    }

    /// The watch in force: its topic and label ids.
    pub fn watch(&self) -> Option<(String, Vec<String>)> {
        self.lock().watch.clone()
    }

    /// The status each push was answered with.
    pub fn pushed(&self) -> Vec<u16> {
        self.lock()
            .pushed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A push to `url` as Pub/Sub sends it, for `email_address`: the answer's status.
    pub fn push_to(&self, url: &str, email_address: &str) -> u16 {
        let history_id = self.lock().history_id;
        crate::graph::post_to(url, &envelope(email_address, history_id)).map_or(0, |(s, _)| s)
    }

    /// Sets when a mail came (`internalDate`, Unix seconds).
    pub fn set_internal_date(&self, id: &str, unix: i64) {
        if let Some(m) = self.lock().messages.get_mut(id) {
            m.internal_date = (unix as u128) * 1000;
        }
    }

    pub fn create_label(&self, name: &str) {
        let mut state = self.lock();
        state.counter += 1;
        let id = format!("Label_{}", state.counter);
        state.labels.push((id, name.to_string()));
    }

    /// How many messages carry the label (by name).
    pub fn count(&self, label: &str) -> usize {
        let state = self.lock();
        let Some(id) = state.label_id(label) else {
            return 0;
        };
        state
            .messages
            .values()
            .filter(|m| m.labels.contains(&id))
            .count()
    }

    /// Every message's label names, sorted, in arrival order.
    pub fn labels_of_all(&self) -> Vec<Vec<String>> {
        let state = self.lock();
        state
            .order
            .iter()
            .map(|id| {
                let mut names: Vec<String> = state.messages[id]
                    .labels
                    .iter()
                    .map(|l| {
                        state
                            .labels
                            .iter()
                            .find(|(i, _)| i == l)
                            .map(|(_, n)| n.clone())
                            .unwrap_or_else(|| l.clone())
                    })
                    .collect();
                names.sort();
                names
            })
            .collect()
    }

    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    /// History before now is gone: a `startHistoryId` from before is 404.
    pub fn expire_history(&self) {
        let mut state = self.lock();
        state.oldest_history = state.history_id + 1;
        state.bump();
    }

    /// Every access token used so far is refused (401) from now on, as if expired early.
    pub fn expire_tokens(&self) {
        let mut state = self.lock();
        let seen: Vec<String> = state.seen_tokens.drain().collect();
        state.refused_tokens.extend(seen);
    }

    /// The next `count` calls are answered 429 with `Retry-After: secs`.
    pub fn throttle(&self, count: usize, secs: u64) {
        let mut state = self.lock();
        for _ in 0..count {
            state.throttle.push(secs);
        }
    }

    pub fn throttled(&self) -> usize {
        self.lock().throttled
    }

    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.lock().sent.clone()
    }

    /// `METHOD /path` of every call, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }
}

impl FakeGmail {
    /// Label changes wait (unanswered) until `hold_modifies(false)`; the test kills postdesk then.
    pub fn hold_modifies(&self, hold: bool) {
        self.lock().held_modifies.held = hold;
    }

    /// Label changes waiting now.
    pub fn modifies_waiting(&self) -> usize {
        self.lock().held_modifies.waiting
    }
}

impl Drop for FakeGmail {
    fn drop(&mut self) {
        // Held label changes would keep a connection open and the graceful shutdown waiting.
        self.lock().held_modifies.held = false;
    }
}

fn handle(
    shared: &Arc<Mutex<State>>,
    tokens: &TokenServer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = parse_form(uri.query().unwrap_or_default().as_bytes());
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| form_decode(&s.replace('+', "%2B")))
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
    state.requests.push(format!("{method} {path}"));
    if !state.throttle.is_empty() {
        let secs = state.throttle.remove(0);
        state.throttled += 1;
        let mut response = error(
            429,
            "Too many concurrent requests for user.",
            "RESOURCE_EXHAUSTED",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("header"),
        );
        return response;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !tokens.is_active(bearer) || state.refused_tokens.contains(bearer) {
        return error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
        );
    }
    state.seen_tokens.insert(bearer.to_string());
    if segs.len() < 5 || segs[0] != "gmail" || segs[1] != "v1" || segs[2] != "users" {
        return error(404, "Not Found", "NOT_FOUND");
    }
    if segs[3] != "me" && !segs[3].eq_ignore_ascii_case(&state.address) {
        return error(403, "Delegation denied for this user", "PERMISSION_DENIED");
    }
    let rest = &segs[4..];
    match (method.as_str(), rest) {
        ("GET", ["profile"]) => ok(json!({
            "emailAddress": state.address,
            "messagesTotal": state.messages.len(),
            "threadsTotal": state.messages.len(),
            "historyId": state.history_id.to_string(),
        })),
        ("GET", ["labels"]) => {
            let labels: Vec<Value> = state
                .labels
                .iter()
                .map(|(id, name)| state.label_json(id, name))
                .collect();
            ok(json!({ "labels": labels }))
        }
        ("POST", ["labels"]) => {
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let Some(name) = request["name"].as_str() else {
                return error(400, "Invalid label name", "INVALID_ARGUMENT");
            };
            if state.label_id(name).is_some() {
                return error(409, "Label name exists or conflicts", "ALREADY_EXISTS");
            }
            state.counter += 1;
            let id = format!("Label_{}", state.counter);
            state.labels.push((id.clone(), name.to_string()));
            ok(state.label_json(&id, name))
        }
        ("GET", ["messages"]) => {
            let label = get("labelIds");
            let max = get("maxResults")
                .and_then(|m| m.parse::<usize>().ok())
                .unwrap_or(100)
                .min(state.page_size);
            let offset = get("pageToken")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(0);
            let all: Vec<&String> = state
                .order
                .iter()
                .rev()
                .filter(|id| {
                    label
                        .as_ref()
                        .is_none_or(|l| state.messages[*id].labels.contains(l))
                })
                .collect();
            let page: Vec<Value> = all
                .iter()
                .skip(offset)
                .take(max)
                .map(|id| json!({"id": id, "threadId": id}))
                .collect();
            let mut answer = json!({"resultSizeEstimate": all.len()});
            if !page.is_empty() {
                answer["messages"] = json!(page);
            }
            if offset + max < all.len() {
                answer["nextPageToken"] = json!((offset + max).to_string());
            }
            ok(answer)
        }
        ("GET", ["messages", id]) => {
            if !state.messages.contains_key(*id) {
                return error(404, "Requested entity was not found.", "NOT_FOUND");
            }
            ok(state.message_json(id, get("format").as_deref() == Some("raw")))
        }
        ("POST", ["messages", id, "modify"]) => {
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let list = |k: &str| -> Vec<String> {
                request[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (add, remove) = (list("addLabelIds"), list("removeLabelIds"));
            if let Some(bad) = add
                .iter()
                .chain(&remove)
                .find(|l| !state.labels.iter().any(|(i, _)| i == *l))
            {
                return error(400, &format!("Invalid label: {bad}"), "INVALID_ARGUMENT");
            }
            if !state.messages.contains_key(*id) {
                return error(404, "Requested entity was not found.", "NOT_FOUND");
            }
            let history_id = state.bump();
            let id = id.to_string();
            let m = state.messages.get_mut(&id).expect("checked");
            for l in &remove {
                m.labels.remove(l);
            }
            let fresh: Vec<String> = add
                .iter()
                .filter(|l| m.labels.insert((*l).clone()))
                .cloned()
                .collect();
            m.history_id = history_id;
            if !fresh.is_empty() {
                state
                    .history
                    .push((history_id, Change::LabelAdded(id.clone(), fresh)));
            }
            ok(state.message_json(&id, false))
        }
        ("GET", ["history"]) => {
            let Some(start) = get("startHistoryId").and_then(|s| s.parse::<u64>().ok()) else {
                return error(400, "Invalid startHistoryId", "INVALID_ARGUMENT");
            };
            if start < state.oldest_history {
                return error(404, "Requested entity was not found.", "NOT_FOUND");
            }
            let label = get("labelId");
            let types: Vec<String> = query
                .iter()
                .filter(|(k, _)| k == "historyTypes")
                .map(|(_, v)| v.clone())
                .collect();
            let wants = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
            let records: Vec<Value> = state
                .history
                .iter()
                .filter(|(h, _)| *h > start)
                .filter_map(|(h, change)| {
                    let (id, kind, labels) = match change {
                        Change::Added(id) if wants("messageAdded") => (id, "messagesAdded", None),
                        Change::LabelAdded(id, l) if wants("labelAdded") => {
                            (id, "labelsAdded", Some(l.clone()))
                        }
                        _ => return None,
                    };
                    let m = state.messages.get(id)?;
                    // Gmail files a record under each label the message had then;
                    // the fake files it under the labels it has now or got.
                    if let Some(l) = &label {
                        let touched = labels.as_ref().is_some_and(|ls| ls.contains(l))
                            || m.labels.contains(l);
                        if !touched {
                            return None;
                        }
                    }
                    let message = json!({"id": id, "threadId": id, "labelIds": m.labels.iter().collect::<Vec<_>>()});
                    let mut entry = json!({"message": message});
                    if let Some(ls) = labels {
                        entry["labelIds"] = json!(ls);
                    }
                    Some(json!({"id": h.to_string(), "messages": [message], kind: [entry]}))
                })
                .collect();
            let offset = get("pageToken")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(0);
            let size = state.page_size;
            let page: Vec<Value> = records.iter().skip(offset).take(size).cloned().collect();
            let mut answer = json!({"historyId": state.history_id.to_string()});
            if !page.is_empty() {
                answer["history"] = json!(page);
            }
            if offset + size < records.len() {
                answer["nextPageToken"] = json!((offset + size).to_string());
            }
            ok(answer)
        }
        ("POST", ["watch"]) => {
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let Some(topic) = request["topicName"].as_str() else {
                return error(400, "Invalid topicName", "INVALID_ARGUMENT");
            };
            if !topic.starts_with("projects/") || !topic.contains("/topics/") {
                return error(
                    400,
                    "Invalid topicName does not match projects/*/topics/*",
                    "INVALID_ARGUMENT",
                );
            }
            let labels = request["labelIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            state.watch = Some((topic.to_string(), labels));
            let expiration = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 7 * 24 * 3600 * 1000;
            ok(
                json!({"historyId": state.history_id.to_string(), "expiration": expiration.to_string()}),
            )
        }
        ("POST", ["stop"]) => {
            state.watch = None;
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["messages", "send"]) => {
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let raw = request["raw"].as_str().unwrap_or_default();
            let decoded =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='));
            match decoded {
                Ok(mime) if !mime.is_empty() => {
                    state.sent.push(mime);
                    state.counter += 1;
                    ok(json!({"id": format!("18d{:013x}", state.counter), "labelIds": ["SENT"]}))
                }
                _ => error(400, "Invalid value for ByteString", "INVALID_ARGUMENT"),
            }
        }
        _ => error(404, "Not Found", "NOT_FOUND"),
    }
}

/// A Pub/Sub push body for a Gmail change.
fn envelope(email_address: &str, history_id: u64) -> Vec<u8> {
    let data = json!({"emailAddress": email_address, "historyId": history_id}).to_string();
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2026-12-07T10:00:00.000Z",
            "publish_time": "2026-12-07T10:00:00.000Z",
        },
        "subscription": "projects/postdesk-test/subscriptions/gmail-push",
    })
    .to_string()
    .into_bytes()
}
