//! A throwaway OAuth2 authorization server on 127.0.0.1 for one test: a token endpoint
//! (refresh-token grant) and an introspection endpoint (RFC 7662) that Dovecot checks
//! bearer tokens at ([`crate::dovecot::DovecotOptions::oauth2`]).
//!
//! ```no_run
//! use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
//! use postdesk_testkit::oauth::TokenServer;
//!
//! let tokens = TokenServer::start();
//! tokens.client("postdesk", "client-secret");
//! let refresh = tokens.issue_refresh_token("alice");
//! let server = Dovecot::start(
//!     DovecotOptions::default()
//!         .user("alice", "secret")
//!         .oauth2(tokens.introspection_url()),
//! );
//! // POST grant_type=refresh_token&refresh_token={refresh}&client_id=postdesk&
//! // client_secret=client-secret to tokens.token_url() for an access token, then
//! // AUTHENTICATE XOAUTH2 (or OAUTHBEARER) at 127.0.0.1:{server.imap_port()}.
//! ```
//!
//! # Token endpoint: `POST /token`
//!
//! Body `application/x-www-form-urlencoded` (`+` and `%XX` decoded; a chunked body and
//! `Expect: 100-continue` work too): `grant_type=refresh_token&refresh_token=…` plus the
//! client's credentials, either as form fields `client_id` and `client_secret` or as
//! HTTP Basic (`Authorization: Basic base64(id:secret)`, id and secret taken as they
//! are or form-decoded, RFC 6749 2.3.1). `scope` is accepted and ignored (it is recorded,
//! see [`TokenServer::token_requests`]). Answers (JSON, `Cache-Control: no-store`,
//! always `Connection: close`):
//!
//! | case | status | body |
//! | --- | --- | --- |
//! | success | 200 | `{"access_token":"…","token_type":"Bearer","expires_in":N,"scope":"mail"}`, plus `"refresh_token":"…"` when rotating |
//! | unknown, rotated-away or revoked refresh token | 400 | `{"error":"invalid_grant","error_description":"…"}` |
//! | client not registered / wrong secret / no credentials | 401 | `{"error":"invalid_client",…}` |
//! | `grant_type` other than `refresh_token` | 400 | `{"error":"unsupported_grant_type",…}` |
//! | `grant_type` or `refresh_token` missing | 400 | `{"error":"invalid_request",…}` |
//!
//! Client authentication is only checked once a client has been registered with
//! [`TokenServer::client`]; before that any (or no) client is accepted. Refresh tokens
//! are not bound to a client.
//!
//! Each successful refresh issues a new access token (the user's earlier access tokens
//! stay valid until they expire). With [`TokenServer::set_rotation`] on (off by
//! default), it also issues a new refresh token and the one used stops working.
//!
//! # Introspection endpoint: `POST /introspect`
//!
//! Body `token=…` (form-encoded), no client authentication. A valid, unexpired access
//! token gives `200 {"active":true,"username":"<user>","token_type":"Bearer",
//! "exp":<unix time>,"scope":"mail"}`; anything else (unknown, expired, revoked, a
//! refresh token) `200 {"active":false}`.
//!
//! Nothing is persisted; the server stops (and its port closes) when dropped.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `expires_in` of issued access tokens until [`TokenServer::set_access_token_lifetime`].
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: u64 = 3600;

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One request to the token endpoint, as [`TokenServer::token_requests`] records it
/// (also the rejected ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `grant_type` form field, if any.
    pub grant_type: Option<String>,
    /// The client id from the form or from HTTP Basic.
    pub client_id: Option<String>,
    /// Whether the client authenticated with HTTP Basic (rather than form fields).
    pub basic_auth: bool,
    /// The `scope` form field, if any.
    pub scope: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running token authority; see the [module documentation](self).
pub struct TokenServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    /// client id → secret.
    clients: HashMap<String, String>,
    /// refresh token → user.
    refresh_tokens: HashMap<String, String>,
    access_tokens: HashMap<String, AccessToken>,
    rotation: bool,
    lifetime: u64,
    refreshes: usize,
    requests: Vec<TokenRequest>,
    counter: u64,
    random: RandomState,
}

struct AccessToken {
    user: String,
    /// Issue order.
    serial: u64,
    expiry: Instant,
    /// The expiry as Unix time (`exp` in introspection).
    exp: u64,
}

impl State {
    fn new_token(&mut self, kind: &str) -> String {
        self.counter += 1;
        let mut hasher = self.random.build_hasher();
        hasher.write_u64(self.counter);
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        let first = hasher.finish();
        hasher.write_u64(first);
        format!(
            "pd-{kind}-{}-{first:016x}{:016x}",
            self.counter,
            hasher.finish()
        )
    }

    fn issue_access_token(&mut self, user: &str) -> (String, u64) {
        let token = self.new_token("at");
        let lifetime = self.lifetime;
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_add(lifetime);
        let access = AccessToken {
            user: user.to_string(),
            serial: self.counter,
            expiry: Instant::now() + Duration::from_secs(lifetime),
            exp,
        };
        self.access_tokens.insert(token.clone(), access);
        (token, lifetime)
    }

    /// The user of a valid, unexpired access token, and its expiry as Unix time.
    fn active(&self, token: &str) -> Option<(&str, u64)> {
        let access = self.access_tokens.get(token)?;
        (Instant::now() < access.expiry).then_some((access.user.as_str(), access.exp))
    }
}

impl TokenServer {
    /// Binds a free port on 127.0.0.1 and serves on a thread of its own.
    pub fn start() -> TokenServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State {
            clients: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            rotation: false,
            lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            refreshes: 0,
            requests: Vec::new(),
            counter: 0,
            random: RandomState::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("oauth-token-server-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let state = Arc::clone(&state);
                        let _ = std::thread::Builder::new()
                            .name("oauth-token-conn".into())
                            .spawn(move || serve(stream, &state));
                    }
                })
                .expect("spawn the token server thread")
        };
        TokenServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// `http://127.0.0.1:PORT/introspect`.
    pub fn introspection_url(&self) -> String {
        format!("http://127.0.0.1:{}/introspect", self.port)
    }

    /// Registers a client (again: replaces its secret). From the first registration on,
    /// token requests must authenticate as a registered client.
    pub fn client(&self, client_id: &str, client_secret: &str) {
        self.lock()
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// Issues a refresh token for `user` and returns it.
    pub fn issue_refresh_token(&self, user: &str) -> String {
        let mut state = self.lock();
        let token = state.new_token("rt");
        state.refresh_tokens.insert(token.clone(), user.to_string());
        token
    }

    /// Issues an access token for `user` directly (no refresh counted) and returns it.
    pub fn issue_access_token(&self, user: &str) -> String {
        self.lock().issue_access_token(user).0
    }

    /// Turns refresh-token rotation on or off (off at start): when on, each refresh
    /// answers with a new `refresh_token` and the one used stops working.
    pub fn set_rotation(&self, on: bool) {
        self.lock().rotation = on;
    }

    /// The lifetime (`expires_in`) of access tokens issued from now on;
    /// [`DEFAULT_ACCESS_TOKEN_LIFETIME`] at start. 0 issues tokens that are expired at once.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.lock().lifetime = secs;
    }

    /// Revokes every refresh and access token issued so far (as when a refresh token
    /// dies after 90 days, or the user revokes the grant): refreshes get
    /// `invalid_grant`, introspection says `"active": false`. Tokens issued afterwards
    /// work.
    pub fn revoke_all(&self) {
        let mut state = self.lock();
        state.refresh_tokens.clear();
        state.access_tokens.clear();
    }

    /// How many refreshes succeeded.
    pub fn refresh_count(&self) -> usize {
        self.lock().refreshes
    }

    /// Every request to the token endpoint so far, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().requests.clone()
    }

    /// The most recently issued access token of `user` that is still valid, if any.
    pub fn valid_access_token(&self, user: &str) -> Option<String> {
        let state = self.lock();
        state
            .access_tokens
            .iter()
            .filter(|(token, access)| access.user == user && state.active(token).is_some())
            .max_by_key(|(_, access)| access.serial)
            .map(|(token, _)| token.clone())
    }

    /// Whether `token` is a valid, unexpired access token (what introspection answers).
    pub fn is_active(&self, token: &str) -> bool {
        self.lock().active(token).is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then sees the flag and ends (closing the port).
        let _ = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_secs(1),
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A parsed HTTP request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

struct Response {
    status: u16,
    body: String,
    extra_headers: Vec<String>,
}

fn json_response(status: u16, body: String) -> Response {
    Response {
        status,
        body,
        extra_headers: Vec::new(),
    }
}

fn error(status: u16, code: &str, description: &str) -> Response {
    json_response(
        status,
        format!(
            "{{\"error\":{},\"error_description\":{}}}",
            json_string(code),
            json_string(description)
        ),
    )
}

/// Serves one connection: one request, then close.
fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let response = match read_request(&stream) {
        Ok(Some(request)) => handle(&request, state),
        Ok(None) => return,
        Err(message) => error(400, "invalid_request", &message),
    };
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nPragma: no-cache\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for header in &response.extra_headers {
        let _ = write!(head, "{header}\r\n");
    }
    head.push_str("\r\n");
    let mut out = &stream;
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(response.body.as_bytes());
    let _ = out.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // Let the client read everything before the socket goes (no RST on unread data).
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = (&stream).read(&mut [0; 512]);
}

/// Reads one request; `None` when the connection closed before sending anything.
fn read_request(stream: &TcpStream) -> Result<Option<Request>, String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut first = true;
    let mut request_line = String::new();
    let mut headers = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the request: {e}"))?;
        if read == 0 {
            if first {
                return Ok(None);
            }
            return Err("connection closed in the request head".into());
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if first {
            first = false;
            request_line = trimmed.to_string();
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed
            .split_once(':')
            .ok_or_else(|| format!("bad header line {trimmed:?}"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("Expect")
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        let _ = (&mut &*stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("reading a chunk size: {e}"))?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("bad chunk size {:?}", line.trim()))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    line.clear();
                    let read = reader.read_line(&mut line).unwrap_or(0);
                    if read == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if request.body.len() + size > MAX_BODY {
                return Err("request body too large".into());
            }
            let start = request.body.len();
            request.body.resize(start + size, 0);
            reader
                .read_exact(&mut request.body[start..])
                .map_err(|e| format!("reading a chunk: {e}"))?;
            line.clear();
            let _ = reader.read_line(&mut line);
        }
    } else if let Some(length) = request.header("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        if length > MAX_BODY {
            return Err("request body too large".into());
        }
        request.body.resize(length, 0);
        reader
            .read_exact(&mut request.body)
            .map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok(Some(request))
}

fn handle(request: &Request, state: &Mutex<State>) -> Response {
    let endpoint = match request.path.as_str() {
        "/token" => token,
        "/introspect" => introspect,
        _ => return error(404, "not_found", "no such endpoint (/token, /introspect)"),
    };
    if request.method != "POST" {
        let mut response = error(405, "invalid_request", "use POST");
        response.extra_headers.push("Allow: POST".into());
        return response;
    }
    let form = parse_form(&request.body);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    endpoint(request, &form, &mut state)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn token(request: &Request, form: &[(String, String)], state: &mut State) -> Response {
    let basic = request
        .header("Authorization")
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| base64_decode(credentials.trim()))?
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (id, secret) = text.split_once(':')?;
            Some((id.to_string(), secret.to_string()))
        });
    let mut record = TokenRequest {
        grant_type: field(form, "grant_type").map(str::to_string),
        client_id: basic
            .as_ref()
            .map(|(id, _)| form_decode(id))
            .or_else(|| field(form, "client_id").map(str::to_string)),
        basic_auth: basic.is_some(),
        scope: field(form, "scope").map(str::to_string),
        status: 0,
    };
    let response = refresh(form, basic.as_ref(), state);
    record.status = response.status;
    state.requests.push(record);
    response
}

fn refresh(
    form: &[(String, String)],
    basic: Option<&(String, String)>,
    state: &mut State,
) -> Response {
    if !state.clients.is_empty() {
        let authenticated = match basic {
            Some((id, secret)) => [
                (id.clone(), secret.clone()),
                (form_decode(id), form_decode(secret)),
            ]
            .iter()
            .any(|(id, secret)| state.clients.get(id) == Some(secret)),
            None => match field(form, "client_id") {
                Some(id) => {
                    state.clients.get(id).map(String::as_str)
                        == Some(field(form, "client_secret").unwrap_or(""))
                }
                None => false,
            },
        };
        if !authenticated {
            let mut response = error(
                401,
                "invalid_client",
                "client authentication failed (unknown client_id, wrong client_secret, or none sent)",
            );
            if basic.is_some() {
                response
                    .extra_headers
                    .push("WWW-Authenticate: Basic realm=\"postdesk-testkit\"".into());
            }
            return response;
        }
    }
    match field(form, "grant_type") {
        None => return error(400, "invalid_request", "grant_type is missing"),
        Some("refresh_token") => {}
        Some(other) => {
            return error(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported (only refresh_token)"),
            );
        }
    }
    let Some(refresh_token) = field(form, "refresh_token") else {
        return error(400, "invalid_request", "refresh_token is missing");
    };
    let Some(user) = state.refresh_tokens.get(refresh_token).cloned() else {
        return error(
            400,
            "invalid_grant",
            "the refresh token is invalid, expired or revoked",
        );
    };
    let (access_token, expires_in) = state.issue_access_token(&user);
    let mut body = format!(
        "{{\"access_token\":{},\"token_type\":\"Bearer\",\"expires_in\":{expires_in},\"scope\":\"mail\"",
        json_string(&access_token)
    );
    if state.rotation {
        state.refresh_tokens.remove(refresh_token);
        let new = state.new_token("rt");
        state.refresh_tokens.insert(new.clone(), user);
        let _ = write!(body, ",\"refresh_token\":{}", json_string(&new));
    }
    body.push('}');
    state.refreshes += 1;
    json_response(200, body)
}

fn introspect(_request: &Request, form: &[(String, String)], state: &mut State) -> Response {
    let body = match field(form, "token").and_then(|token| state.active(token)) {
        Some((user, exp)) => format!(
            "{{\"active\":true,\"username\":{},\"token_type\":\"Bearer\",\"exp\":{exp},\"scope\":\"mail\"}}",
            json_string(user)
        ),
        None => "{\"active\":false}".to_string(),
    };
    json_response(200, body)
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

/// Decodes one form value: `+` is a space, `%XX` a byte (invalid escapes stay as they are).
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

/// Standard base64 (padding optional); `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = buffer << 6 | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            parse_form(b"a=b+c&d=%2F%3d%zz&e&scope=https%3A%2F%2Fmail.example%2F+x"),
            vec![
                ("a".to_string(), "b c".to_string()),
                ("d".to_string(), "/=%zz".to_string()),
                ("e".to_string(), String::new()),
                ("scope".to_string(), "https://mail.example/ x".to_string()),
            ]
        );
        assert_eq!(form_decode("%"), "%");
        assert_eq!(form_decode("%4"), "%4");
        assert_eq!(form_decode("%41"), "A");
        assert_eq!(form_decode("%C3%BC"), "ü");
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(
            base64_decode("cG9zdGRlc2s6czNjcmV0"),
            Some(b"postdesk:s3cret".to_vec())
        );
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("a b"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
