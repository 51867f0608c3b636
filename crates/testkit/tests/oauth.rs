//! The token authority over raw HTTP, and Dovecot's OAuth2 logins (XOAUTH2, OAUTHBEARER)
//! against it in raw IMAP over TcpStream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
use postdesk_testkit::oauth::TokenServer;
use serde_json::Value;

// ---------------------------------------------------------------------------------
// HTTP

/// Sends one HTTP/1.1 request; returns (status, JSON body).
fn http(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line in {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|l| l.parse().ok())
        .expect("Content-Length");
    assert_eq!(body.len(), length, "body length in {response:?}");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON {body:?}: {e}"));
    (status, json)
}

fn form_post(server: &TokenServer, path: &str, body: &str) -> (u16, Value) {
    http(
        server.port(),
        "POST",
        path,
        &["Content-Type: application/x-www-form-urlencoded"],
        body,
    )
}

fn refresh(server: &TokenServer, refresh_token: &str) -> (u16, Value) {
    form_post(
        server,
        "/token",
        &format!(
            "grant_type=refresh_token&refresh_token={refresh_token}&client_id=postdesk\
             &client_secret=s3cret&scope=https%3A%2F%2Fmail.example%2F"
        ),
    )
}

fn access_token(server: &TokenServer, refresh_token: &str) -> String {
    let (status, json) = refresh(server, refresh_token);
    assert_eq!(status, 200, "{json}");
    json["access_token"].as_str().expect("access_token").into()
}

fn introspect(server: &TokenServer, token: &str) -> Value {
    let (status, json) = form_post(server, "/introspect", &format!("token={token}"));
    assert_eq!(status, 200, "{json}");
    json
}

fn authority() -> TokenServer {
    let server = TokenServer::start();
    server.client("postdesk", "s3cret");
    server
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {text:?}"),
        };
        buffer = buffer << 6 | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// IMAP

struct Imap {
    stream: BufReader<TcpStream>,
    tag: u32,
}

/// How an AUTHENTICATE ended.
#[derive(Debug)]
struct Auth {
    /// The tagged reply (`OK ...`, `NO ...`).
    done: String,
    /// Decoded server challenges (`+ <base64>`) that came before it; each was answered
    /// with an empty line.
    challenges: Vec<String>,
}

impl Imap {
    fn connect(addr: SocketAddr) -> Imap {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut imap = Imap {
            stream: BufReader::new(stream),
            tag: 0,
        };
        let greeting = imap.line();
        assert!(greeting.starts_with("* OK"), "greeting {greeting:?}");
        assert!(
            greeting.contains("AUTH=XOAUTH2") && greeting.contains("AUTH=OAUTHBEARER"),
            "greeting {greeting:?}"
        );
        imap
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("read a line");
        assert!(!line.is_empty(), "connection closed");
        line.trim_end().to_string()
    }

    fn send(&mut self, text: &str) {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{text}\r\n").as_bytes())
            .expect("send");
        stream.flush().expect("flush");
    }

    /// Sends a command; answers continuation requests with an empty line.
    fn command(&mut self, command: &str) -> Auth {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.send(&format!("{tag} {command}"));
        let mut challenges = Vec::new();
        loop {
            let line = self.line();
            if let Some(done) = line.strip_prefix(&format!("{tag} ")) {
                return Auth {
                    done: done.to_string(),
                    challenges,
                };
            }
            if let Some(challenge) = line.strip_prefix("+") {
                let decoded = base64_decode(challenge.trim());
                challenges.push(String::from_utf8_lossy(&decoded).into_owned());
                self.send("");
            }
        }
    }

    fn xoauth2(&mut self, user: &str, token: &str) -> Auth {
        let payload = format!("user={user}\x01auth=Bearer {token}\x01\x01");
        self.command(&format!(
            "AUTHENTICATE XOAUTH2 {}",
            base64(payload.as_bytes())
        ))
    }

    fn oauthbearer(&mut self, user: &str, port: u16, token: &str) -> Auth {
        let payload =
            format!("n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01");
        self.command(&format!(
            "AUTHENTICATE OAUTHBEARER {}",
            base64(payload.as_bytes())
        ))
    }
}

fn dovecot(tokens: &TokenServer) -> Dovecot {
    Dovecot::start(
        DovecotOptions::default()
            .user("alice", "secret")
            .user("bob", "hunter2")
            .oauth2(tokens.introspection_url()),
    )
}

fn assert_ok(auth: &Auth, server: &Dovecot) {
    assert!(
        auth.done.starts_with("OK"),
        "{auth:?}\n--- log ---\n{}",
        server.log_tail(30)
    );
}

fn assert_no(auth: &Auth, server: &Dovecot) {
    assert!(
        auth.done.starts_with("NO"),
        "{auth:?}\n--- log ---\n{}",
        server.log_tail(30)
    );
}

// ---------------------------------------------------------------------------------
// Dovecot

#[test]
fn xoauth2_logs_in_with_a_refreshed_token_and_not_with_a_bad_one() {
    let tokens = authority();
    let refresh_token = tokens.issue_refresh_token("alice");
    let server = dovecot(&tokens);
    server.append("alice", "INBOX", b"Subject: hi\r\n\r\nbody\r\n");
    let token = access_token(&tokens, &refresh_token);

    let mut imap = Imap::connect(server.imap_addr());
    let auth = imap.xoauth2("alice", &token);
    assert_ok(&auth, &server);
    assert!(auth.challenges.is_empty(), "{auth:?}");
    let select = imap.command("SELECT INBOX");
    assert!(select.done.starts_with("OK"), "{select:?}");

    for bad in ["pd-at-1-00000000000000000000000000000000", "", "x"] {
        let mut imap = Imap::connect(server.imap_addr());
        let auth = imap.xoauth2("alice", bad);
        assert_no(&auth, &server);
    }

    // The token is alice's: not bob's.
    let mut imap = Imap::connect(server.imap_addr());
    assert_no(&imap.xoauth2("bob", &token), &server);

    // Revoked: the same token that worked above.
    tokens.revoke_all();
    let mut imap = Imap::connect(server.imap_addr());
    let auth = imap.xoauth2("alice", &token);
    assert_no(&auth, &server);
    assert_eq!(
        auth.challenges,
        [r#"{"status":"401","schemes":"bearer","scope":"mail"}"#],
        "XOAUTH2 failure challenge"
    );
}

#[test]
fn oauthbearer_logs_in_with_a_valid_token_only() {
    let tokens = authority();
    let server = dovecot(&tokens);
    let token = access_token(&tokens, &tokens.issue_refresh_token("bob"));

    let mut imap = Imap::connect(server.imap_addr());
    let auth = imap.oauthbearer("bob", server.imap_port(), &token);
    assert_ok(&auth, &server);
    assert!(auth.challenges.is_empty(), "{auth:?}");
    assert!(imap.command("SELECT INBOX").done.starts_with("OK"));

    let mut imap = Imap::connect(server.imap_addr());
    assert_no(
        &imap.oauthbearer("alice", server.imap_port(), &token),
        &server,
    );

    let mut imap = Imap::connect(server.imap_addr());
    let auth = imap.oauthbearer("bob", server.imap_port(), "pd-at-unknown");
    assert_no(&auth, &server);
    assert_eq!(
        auth.challenges,
        [r#"{"status":"invalid_token"}"#],
        "OAUTHBEARER failure challenge"
    );

    tokens.revoke_all();
    let mut imap = Imap::connect(server.imap_addr());
    assert_no(
        &imap.oauthbearer("bob", server.imap_port(), &token),
        &server,
    );
}

#[test]
fn an_expired_access_token_is_refused() {
    let tokens = authority();
    let server = dovecot(&tokens);
    tokens.set_access_token_lifetime(1);
    let token = tokens.issue_access_token("alice");
    let mut imap = Imap::connect(server.imap_addr());
    assert_ok(&imap.xoauth2("alice", &token), &server);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!tokens.is_active(&token));
    let mut imap = Imap::connect(server.imap_addr());
    assert_no(&imap.xoauth2("alice", &token), &server);
}

#[test]
fn passwords_keep_working_beside_oauth2() {
    let tokens = authority();
    let server = dovecot(&tokens);
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.command("LOGIN alice secret").done.starts_with("OK"));
    let mut imap = Imap::connect(server.imap_addr());
    let plain = base64(b"\0bob\0hunter2");
    assert!(
        imap.command(&format!("AUTHENTICATE PLAIN {plain}"))
            .done
            .starts_with("OK")
    );
    let mut imap = Imap::connect(server.imap_addr());
    assert!(imap.command("LOGIN alice wrong").done.starts_with("NO"));
    // A token is not a password, and a password not a token.
    let token = tokens.issue_access_token("alice");
    let mut imap = Imap::connect(server.imap_addr());
    assert!(
        imap.command(&format!("LOGIN alice {token}"))
            .done
            .starts_with("NO")
    );
    let mut imap = Imap::connect(server.imap_addr());
    assert_no(&imap.xoauth2("alice", "secret"), &server);
}

#[test]
fn an_unreachable_authority_is_a_temporary_failure() {
    let tokens = authority();
    let server = dovecot(&tokens);
    let token = tokens.issue_access_token("alice");
    drop(tokens);
    let mut imap = Imap::connect(server.imap_addr());
    let auth = imap.xoauth2("alice", &token);
    assert!(auth.done.starts_with("NO [UNAVAILABLE]"), "{auth:?}");
    assert!(auth.challenges.is_empty(), "{auth:?}");
}

// ---------------------------------------------------------------------------------
// The token endpoint

#[test]
fn refresh_hands_out_working_access_tokens() {
    let tokens = authority();
    let refresh_token = tokens.issue_refresh_token("alice");
    assert_eq!(tokens.valid_access_token("alice"), None);

    let (status, json) = refresh(&tokens, &refresh_token);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 3600);
    assert!(json.get("refresh_token").is_none(), "no rotation: {json}");
    let first = json["access_token"].as_str().unwrap().to_string();
    assert_eq!(tokens.valid_access_token("alice").as_deref(), Some(&*first));
    assert_eq!(introspect(&tokens, &first)["active"], true);
    assert_eq!(introspect(&tokens, &first)["username"], "alice");
    assert_eq!(tokens.refresh_count(), 1);

    // Without rotation the refresh token works again; every refresh is a new token.
    tokens.set_access_token_lifetime(60);
    let (status, json) = refresh(&tokens, &refresh_token);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["expires_in"], 60);
    let second = json["access_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(tokens.refresh_count(), 2);
    assert_eq!(tokens.valid_access_token("alice").as_deref(), Some(second));
    assert_eq!(tokens.valid_access_token("bob"), None);

    // Not access tokens: unknown, refresh tokens.
    assert_eq!(
        introspect(&tokens, "nope"),
        serde_json::json!({"active": false})
    );
    assert_eq!(introspect(&tokens, &refresh_token)["active"], false);

    let requests = tokens.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].client_id.as_deref(), Some("postdesk"));
    assert_eq!(requests[0].scope.as_deref(), Some("https://mail.example/"));
    assert!(!requests[0].basic_auth);
}

#[test]
fn rotation_invalidates_the_used_refresh_token() {
    let tokens = authority();
    tokens.set_rotation(true);
    let old = tokens.issue_refresh_token("alice");
    let (status, json) = refresh(&tokens, &old);
    assert_eq!(status, 200, "{json}");
    let new = json["refresh_token"].as_str().expect("a new refresh token");
    assert_ne!(new, old);

    let (status, json) = refresh(&tokens, &old);
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["error"], "invalid_grant");
    assert!(json["error_description"].is_string());

    let (status, json) = refresh(&tokens, new);
    assert_eq!(status, 200, "{json}");
    assert_ne!(json["refresh_token"].as_str(), Some(new));
    assert_eq!(tokens.refresh_count(), 2);
}

#[test]
fn revoke_all_makes_refresh_fail_with_invalid_grant() {
    let tokens = authority();
    let refresh_token = tokens.issue_refresh_token("alice");
    let access = access_token(&tokens, &refresh_token);
    tokens.revoke_all();
    let (status, json) = refresh(&tokens, &refresh_token);
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["error"], "invalid_grant");
    assert_eq!(introspect(&tokens, &access)["active"], false);
    assert_eq!(tokens.valid_access_token("alice"), None);
    assert_eq!(tokens.refresh_count(), 1);
    // A new grant works again.
    access_token(&tokens, &tokens.issue_refresh_token("alice"));
}

#[test]
fn client_credentials_are_checked_in_the_form_or_as_basic_auth() {
    let tokens = TokenServer::start();
    let refresh_token = tokens.issue_refresh_token("alice");
    // No client registered yet: anything goes.
    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    assert_eq!(form_post(&tokens, "/token", &body).0, 200);

    tokens.client("desk app", "s3:cr+t");
    let (status, json) = form_post(&tokens, "/token", &body);
    assert_eq!((status, &json["error"]), (401, &"invalid_client".into()));
    let wrong = format!("{body}&client_id=desk+app&client_secret=s3%3Acr%2Bx");
    assert_eq!(form_post(&tokens, "/token", &wrong).0, 401);
    let right = format!("{body}&client_id=desk+app&client_secret=s3%3Acr%2Bt");
    assert_eq!(form_post(&tokens, "/token", &right).0, 200);

    // Basic, form-encoded (RFC 6749 2.3.1) and raw.
    for credentials in ["desk+app:s3%3Acr%2Bt", "desk app:s3:cr+t"] {
        let header = format!("Authorization: Basic {}", base64(credentials.as_bytes()));
        let (status, json) = http(
            tokens.port(),
            "POST",
            "/token",
            &["Content-Type: application/x-www-form-urlencoded", &header],
            &body,
        );
        assert_eq!(status, 200, "{credentials}: {json}");
    }
    let header = format!("Authorization: Basic {}", base64(b"desk app:wrong"));
    let (status, _) = http(tokens.port(), "POST", "/token", &[&header], &body);
    assert_eq!(status, 401);

    let requests = tokens.token_requests();
    assert_eq!(requests.len(), 7);
    assert!(requests[4].basic_auth);
    assert_eq!(requests[4].client_id.as_deref(), Some("desk app"));
    assert_eq!(tokens.refresh_count(), 4);
}

#[test]
fn form_values_are_percent_decoded() {
    let tokens = authority();
    let refresh_token = tokens.issue_refresh_token("alice");
    let encoded: String = refresh_token.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, json) = refresh(&tokens, &encoded);
    assert_eq!(status, 200, "{json}");
    let access = json["access_token"].as_str().unwrap();
    let encoded: String = access.bytes().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(introspect(&tokens, &encoded)["username"], "alice");
}

#[test]
fn bad_requests_get_oauth_errors() {
    let tokens = authority();
    let refresh_token = tokens.issue_refresh_token("alice");
    let client = "client_id=postdesk&client_secret=s3cret";
    let cases = [
        (
            format!("grant_type=password&username=a&password=b&{client}"),
            "unsupported_grant_type",
        ),
        (
            format!("refresh_token={refresh_token}&{client}"),
            "invalid_request",
        ),
        (
            format!("grant_type=refresh_token&{client}"),
            "invalid_request",
        ),
        (
            format!("grant_type=refresh_token&refresh_token=pd-rt-x&{client}"),
            "invalid_grant",
        ),
    ];
    for (body, error) in cases {
        let (status, json) = form_post(&tokens, "/token", &body);
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some(error)),
            "{body}"
        );
    }
    assert_eq!(http(tokens.port(), "GET", "/token", &[], "").0, 405);
    assert_eq!(http(tokens.port(), "POST", "/other", &[], "").0, 404);
    assert_eq!(tokens.refresh_count(), 0);
}

#[test]
fn the_server_stops_when_dropped() {
    let tokens = authority();
    let port = tokens.port();
    assert_eq!(http(port, "POST", "/introspect", &[], "token=x").0, 200);
    drop(tokens);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
