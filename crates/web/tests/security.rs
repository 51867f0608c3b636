//! The attacks of issue 21 against the web UI and API, served for real on loopback
//! (`postdesk_web::serve`, over TCP, with the client's address as the server sees it)
//! against a real SQLite store with mail taken in through the App's intake: each test
//! makes the attack and checks it does no harm.
//!
//! (Cross-helpdesk contacts and organizations are in `access.rs`; tokens, locks and
//! file modes through the command line, and the browser's view, in
//! `crates/postdesk/tests/security.rs`.)

use std::net::SocketAddr;

use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox, MailboxControl, Pending};
use postdesk_app::{App, Settings};
use postdesk_core::RawMail;
use postdesk_core::settings::HelpdeskSettings;
use postdesk_store::Store;
use postdesk_store::access::{LoginGate, LoginLimits, Role};
use postdesk_web::{AppState, WebSettings, hash_password, new_token, token_hash};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const PASSWORD: &str = "a long password";

struct NoImap;

impl MailboxControl for NoImap {
    fn check<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Vec<CheckStep>> {
        Box::pin(async { Vec::new() })
    }

    fn scan<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Result<Summary, String>> {
        Box::pin(async { Err("not in these tests".into()) })
    }
}

/// Two helpdesks with a ticket each, three agents, and the UI served on loopback.
struct Served {
    _dir: tempfile::TempDir,
    store: Store,
    address: SocketAddr,
    _stop: watch::Sender<bool>,
}

fn mail(from: &str, to: &str, subject: &str) -> RawMail {
    RawMail {
        source: postdesk_core::MailSource::File,
        location: format!("{subject}.eml"),
        bytes: format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\
             Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nHello.\r\n",
            &token_hash(subject)[..16]
        )
        .into_bytes(),
    }
}

async fn serve(settings: WebSettings) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("postdesk.db").display()),
        dir.path(),
    )
    .await
    .unwrap();
    let helpdesks = [
        ("Support", "support@example.com", ""),
        (
            "Sales",
            "sales@example.com",
            "statuses = [\"quoted\"]\ntypes = [\"quote\", \"order\"]\n",
        ),
    ]
    .iter()
    .map(|(name, address, extra)| {
        toml::from_str::<HelpdeskSettings>(&format!(
            "name = \"{name}\"\naddresses = [\"{address}\"]\n{extra}"
        ))
        .unwrap()
        .compile()
        .unwrap()
    })
    .collect::<Vec<_>>();
    let registered = store.register_helpdesks(&helpdesks).await.unwrap();
    let app = App::new(store.clone(), registered, Settings::default());
    let mails = vec![
        mail(
            "Alice <alice@acme.example>",
            "support@example.com",
            "Printer on fire",
        ),
        mail(
            "Bob <bob@other.example>",
            "sales@example.com",
            "Quote for 40 licences",
        ),
    ];
    let summary = app.intake().run(mails.into_iter(), |_| {}).await.unwrap();
    assert_eq!(summary.created, 2);
    let hash = hash_password(PASSWORD).unwrap();
    for (name, role, helpdesks) in [
        ("root", Role::Admin, vec![]),
        ("sam", Role::Agent, vec!["Support".to_string()]),
        ("sue", Role::Agent, vec!["Sales".to_string()]),
    ] {
        store
            .save_agent(name, None, role, Some(&hash), &helpdesks)
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let state = AppState::new(app, NoImap, settings);
    tokio::spawn(postdesk_web::serve(listener, state, stopped));
    Served {
        _dir: dir,
        store,
        address,
        _stop: stop,
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Served {
    /// One HTTP/1.1 request on a connection of its own.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A sign-in with the form, from `forwarded_for` (through a proxy) when given.
    async fn sign_in(&self, login: &str, password: &str, forwarded_for: Option<&str>) -> Reply {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(client) = forwarded_for {
            headers.push(("X-Forwarded-For", client));
        }
        let body = serde_urlencoded_pair(login, password);
        self.request("POST", "/login", &headers, body.as_bytes())
            .await
    }

    async fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
    }

    async fn token(&self, agent: &str, expires_at: Option<i64>) -> String {
        let token = new_token();
        self.store
            .create_api_token(agent, "test", &token_hash(&token), expires_at)
            .await
            .unwrap();
        token
    }

    /// A session cookie and its CSRF token, from a sign-in that must work.
    async fn session(&self, login: &str) -> (String, String) {
        let reply = self.sign_in(login, PASSWORD, None).await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        let cookie = reply
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let page = self
            .request("GET", "/tickets", &[("Cookie", &cookie)], b"")
            .await;
        let csrf = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF token in the page")
            .to_string();
        (cookie, csrf)
    }

    async fn ticket_id(&self, token: &str, title: &str) -> i64 {
        let list = self
            .api(
                token,
                "GET",
                &format!("/api/tickets?q={}", title.replace(' ', "+")),
                None,
            )
            .await
            .json();
        list["tickets"][0]["id"].as_i64().unwrap()
    }
}

fn serde_urlencoded_pair(login: &str, password: &str) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("login={}&password={}", encode(login), encode(password))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

fn through_loopback_proxy() -> WebSettings {
    WebSettings {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..WebSettings::default()
    }
}

/// Fault 3: thirty wrong passwords sent at once are all counted before any is checked,
/// so only the first five are checked at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_parallel_wrong_passwords_get_at_most_five_checks() {
    let served = std::sync::Arc::new(serve(WebSettings::default()).await);
    let attempts: Vec<_> = (0..30)
        .map(|n| {
            let served = served.clone();
            tokio::spawn(async move {
                served
                    .sign_in("sam", &format!("wrong password {n}"), None)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    assert!(limited >= 25, "{limited} were limited: {statuses:?}");
    assert_eq!(checked + limited, 30, "{statuses:?}");
    // The right password from the same address waits too: the pair is limited.
    let right = served.sign_in("sam", PASSWORD, None).await;
    assert_eq!(right.status, 429);
    assert!(
        right.body.contains("too many failed sign-ins"),
        "{}",
        right.body
    );
    let locks = served
        .store
        .login_locks(LoginLimits::default())
        .await
        .unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l.name.as_deref() == Some("sam") && l.address.as_deref() == Some("127.0.0.1")),
        "{locks:?}"
    );
}

/// Fault 4: strangers failing at an agent's name, or at made-up names, from their own
/// addresses do not lock the agent out of the address the agent works from; behind a
/// trusted proxy the client's address counts, and without one the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_lock_an_agent_out_of_their_own_address() {
    // Ten attempts per address at any names, to keep the test short; the name's backoff
    // starts at a minute, so that the test's own pace cannot outlast it.
    let limits = LoginLimits {
        per_address: 10,
        name_backoff_first_secs: 60,
        ..LoginLimits::default()
    };
    let served = serve(WebSettings {
        login_limits: limits,
        ..through_loopback_proxy()
    })
    .await;
    let home = "192.0.2.10";
    assert_eq!(
        served.sign_in("sam", PASSWORD, Some(home)).await.status,
        303
    );
    // A botnet at Sam's name from four addresses, and made-up names from one of them.
    for attacker in [
        "198.51.100.6",
        "198.51.100.7",
        "198.51.100.8",
        "198.51.100.9",
    ] {
        for n in 0..6 {
            let reply = served
                .sign_in("sam", &format!("guess {n}"), Some(attacker))
                .await;
            assert!(matches!(reply.status, 401 | 429), "{reply:?}");
        }
    }
    for n in 0..8 {
        let reply = served
            .sign_in(&format!("nobody{n}"), "guess", Some("198.51.100.7"))
            .await;
        assert!(matches!(reply.status, 401 | 429), "{reply:?}");
    }
    // The attacker is limited at Sam's name and at any name.
    let attacker = served.sign_in("sam", PASSWORD, Some("198.51.100.7")).await;
    assert_eq!(attacker.status, 429);
    let sue = served.sign_in("sue", PASSWORD, Some("198.51.100.7")).await;
    assert_eq!(sue.status, 429, "the address is limited for every name");
    // Sam from home is not; Sue from her own address neither.
    assert_eq!(
        served.sign_in("sam", PASSWORD, Some(home)).await.status,
        303
    );
    assert_eq!(
        served
            .sign_in("sue", PASSWORD, Some("203.0.113.20"))
            .await
            .status,
        303
    );
    // From an address Sam never used, his name is slowed down, for minutes at most.
    let elsewhere = served.sign_in("sam", PASSWORD, Some("203.0.113.5")).await;
    assert_eq!(elsewhere.status, 429, "{}", elsewhere.body);
    let locks = served.store.login_locks(limits).await.unwrap();
    let by_name = locks
        .iter()
        .find(|l| l.name.as_deref() == Some("sam") && l.address.is_none())
        .unwrap_or_else(|| panic!("{locks:?}"));
    assert!(by_name.wait_secs <= 300, "{by_name:?}");
    // An admin clears Sam's limits (`postdesk agents unlock sam`).
    served.store.clear_login_locks("sam").await.unwrap();
    assert_eq!(
        served
            .sign_in("sam", PASSWORD, Some("203.0.113.5"))
            .await
            .status,
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_without_a_trusted_proxy() {
    let served = serve(WebSettings::default()).await;
    for n in 0..5 {
        let spoofed = format!("198.51.100.{n}");
        let reply = served.sign_in("sam", "guess", Some(&spoofed)).await;
        assert_eq!(reply.status, 401);
    }
    // Another made-up address does not give the attacker five more attempts.
    let reply = served.sign_in("sam", "guess", Some("198.51.100.99")).await;
    assert_eq!(reply.status, 429);
}

/// Fault 4: another site's page cannot make agents' browsers post sign-ins (which
/// would spend their attempts); nothing is counted for such a post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_posted_from_another_site_is_refused_and_not_counted() {
    let served = serve(WebSettings::default()).await;
    let body = serde_urlencoded_pair("sam", "guess");
    for headers in [
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
    ] {
        for _ in 0..6 {
            let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
            all.extend(headers.iter().copied());
            let reply = served
                .request("POST", "/login", &all, body.as_bytes())
                .await;
            assert_eq!(reply.status, 403, "{headers:?}: {}", reply.body);
            assert!(
                reply.body.contains("did not come from postdesk"),
                "{}",
                reply.body
            );
        }
    }
    assert_eq!(served.store.login_count_rows().await.unwrap(), 0);
    // The site's own form (same origin) works.
    let own_origin = format!("http://{}", served.address);
    let reply = served
        .request(
            "POST",
            "/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &own_origin),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            serde_urlencoded_pair("sam", PASSWORD).as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
}

/// Fault 5: a revoked, an expired token and a disabled agent's token get 401; a new
/// password revokes the tokens unless the admin keeps them; disabling ends sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_disabled_tokens_get_401() {
    let served = serve(WebSettings::default()).await;
    let now = postdesk_store::now();
    let live = served.token("sam", Some(now + 3600)).await;
    let other = served.token("sam", None).await;
    let expired = served.token("sam", Some(now - 1)).await;
    assert_eq!(served.api(&live, "GET", "/api/me", None).await.status, 200);
    let reply = served.api(&expired, "GET", "/api/me", None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    let tokens = served.store.api_tokens("sam").await.unwrap();
    assert_eq!(tokens.len(), 3);
    let states: Vec<&str> = tokens.iter().map(|t| t.state(now)).collect();
    assert_eq!(states, ["expired", "live", "live"]);
    assert!(tokens[1].last_used_at.is_none());
    assert!(tokens[2].last_used_at.is_some(), "last use is shown");
    served
        .store
        .revoke_api_tokens("sam", Some(tokens[2].id))
        .await
        .unwrap();
    assert_eq!(served.api(&live, "GET", "/api/me", None).await.status, 401);
    assert_eq!(served.api(&other, "GET", "/api/me", None).await.status, 200);

    // A password change keeps tokens only when asked to.
    let hash = hash_password("another long password").unwrap();
    served
        .store
        .set_agent_password("sam", &hash, true)
        .await
        .unwrap();
    assert_eq!(served.api(&other, "GET", "/api/me", None).await.status, 200);
    served
        .store
        .set_agent_password("sam", &hash, false)
        .await
        .unwrap();
    assert_eq!(served.api(&other, "GET", "/api/me", None).await.status, 401);

    // Disabling an agent stops their tokens and sessions; enabling lets them back in.
    let sue = served.token("sue", None).await;
    let (cookie, _) = served.session("sue").await;
    served.store.set_agent_active("sue", false).await.unwrap();
    assert_eq!(served.api(&sue, "GET", "/api/me", None).await.status, 401);
    let page = served
        .request("GET", "/tickets", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/login"));
    assert_eq!(served.sign_in("sue", PASSWORD, None).await.status, 401);
    served.store.set_agent_active("sue", true).await.unwrap();
    assert_eq!(served.api(&sue, "GET", "/api/me", None).await.status, 200);
}

/// Fault 6: a 2 MB status is refused with the reason, values come from the ticket's
/// helpdesk's lists, assignees from its agents, and neither leaks to another helpdesk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_field_values_are_bounded_and_per_helpdesk() {
    let served = serve(WebSettings::default()).await;
    let sam = served.token("sam", None).await;
    let sue = served.token("sue", None).await;
    let support = served.ticket_id(&sam, "Printer on fire").await;
    let sales = served.ticket_id(&sue, "Quote for 40 licences").await;
    let (sue_cookie, _) = served.session("sue").await;
    let sales_page = served
        .request(
            "GET",
            &format!("/tickets/{sales}"),
            &[("Cookie", &sue_cookie)],
            b"",
        )
        .await;
    assert_eq!(sales_page.status, 200);

    let huge = "x".repeat(2_000_000);
    let reply = served
        .api(
            &sam,
            "PATCH",
            &format!("/api/tickets/{support}"),
            Some(json!({ "status": huge })),
        )
        .await;
    assert_eq!(
        reply.status,
        400,
        "{}",
        &reply.body[..reply.body.len().min(300)]
    );
    assert_eq!(
        reply.json()["error"],
        "the status is 2000000 characters long; it may have at most 64"
    );
    // Through the page's form too.
    let (cookie, csrf) = served.session("sam").await;
    let form = format!("csrf={csrf}&status={}", "y".repeat(2_000_000));
    let reply = served
        .request(
            "POST",
            &format!("/tickets/{support}/update"),
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("at most 64"),
        "{}",
        &reply.body[..reply.body.len().min(500)]
    );
    assert!(reply.body.len() < 10_000, "the value is not echoed");

    for (body, error) in [
        (
            json!({ "status": "quoted" }),
            "`quoted` is not a status of Support; choose one of: email-imported, customer-replied, \
             open, pending, closed, resolved",
        ),
        (
            json!({ "status": "<b>x</b>" }),
            "the status may hold letters, digits, spaces and - _ . / & + only, not '<'",
        ),
        (
            json!({ "priority": "blocker" }),
            "`blocker` is not a priority of Support; choose one of: low, normal, high, urgent",
        ),
        (
            json!({ "assignee": "sue" }),
            "`sue` is not an agent of Support; choose one of: root, sam",
        ),
    ] {
        let reply = served
            .api(
                &sam,
                "PATCH",
                &format!("/api/tickets/{support}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["error"], error, "{body}");
    }
    let reply = served
        .api(
            &sam,
            "PATCH",
            &format!("/api/tickets/{support}"),
            Some(json!({ "status": "Pending", "priority": "high", "type": "question", "assignee": "sam" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["ticket"]["status"],
        "pending",
        "written as the list does"
    );
    // Sales has its own lists: its status and types, and only its types.
    let reply = served
        .api(
            &sue,
            "PATCH",
            &format!("/api/tickets/{sales}"),
            Some(json!({ "status": "quoted", "type": "order" })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = served
        .api(
            &sue,
            "PATCH",
            &format!("/api/tickets/{sales}"),
            Some(json!({ "type": "question" })),
        )
        .await;
    assert_eq!(
        reply.json()["error"],
        "`question` is not a type of Sales; choose one of: quote, order"
    );

    // Nothing of Support shows on Sales's pages: its agents, its values.
    let sales_after = served
        .request(
            "GET",
            &format!("/tickets/{sales}"),
            &[("Cookie", &sue_cookie)],
            b"",
        )
        .await;
    let list = served
        .request("GET", "/tickets", &[("Cookie", &sue_cookie)], b"")
        .await;
    for page in [&sales_after.body, &list.body] {
        assert!(
            !page.contains(">sam</option>"),
            "Support's agent is offered to Sales"
        );
        assert!(!page.contains("question"), "Support's type shows at Sales");
    }
    assert!(sales_after.body.contains(">sue</option>"));
    assert!(
        sales_after.body.len() < sales_page.body.len() + 2_000,
        "Sales's page grew from {} to {} bytes",
        sales_page.body.len(),
        sales_after.body.len()
    );
}

/// Fault 7: what the limits keep of a name is a fixed-size hash of its first
/// characters, and the number of counts is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_limits_keep_bounded_keys_in_a_bounded_table() {
    let served = serve(WebSettings::default()).await;
    // A 1 MB name over HTTP: refused as any wrong name, and not shown back in full.
    let long = "n".repeat(1 << 20);
    let reply = served.sign_in(&long, "guess", None).await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.len() < 10_000, "{} bytes", reply.body.len());
    // Names that differ only past their first 64 characters are one name to the limits.
    let limits = LoginLimits {
        max_rows: 100,
        per_address: i64::MAX,
        ..LoginLimits::default()
    };
    let prefix = "m".repeat(64);
    for n in 0..5 {
        let gate = served
            .store
            .begin_login(&format!("{prefix}{n}"), "192.0.2.1", limits)
            .await
            .unwrap();
        assert_eq!(gate, LoginGate::Allowed);
    }
    let gate = served
        .store
        .begin_login(&format!("{prefix}-and-more"), "192.0.2.1", limits)
        .await
        .unwrap();
    assert!(matches!(gate, LoginGate::Refused { .. }), "{gate:?}");
    // A flood of 500 made-up 100 KB names keeps at most `max_rows` counts.
    for n in 0..500 {
        let name = format!("{n}{}", "z".repeat(100_000));
        served
            .store
            .begin_login(&name, "192.0.2.2", limits)
            .await
            .unwrap();
    }
    let rows = served.store.login_count_rows().await.unwrap();
    assert!(rows <= 100, "{rows} rows kept");
}

/// Fault 11: a 64 KB search term and a page past any arithmetic get a 400 that says
/// why, on the pages and in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_are_bounded() {
    let served = serve(WebSettings::default()).await;
    let token = served.token("root", None).await;
    let (cookie, _) = served.session("root").await;
    // 64 KB; a URI much longer is refused by the HTTP layer (414) before any handler.
    let term = "a".repeat(64_000);
    for path in [
        format!("/api/tickets?q={term}"),
        format!("/api/contacts?q={term}"),
        format!("/api/tickets?requester={term}"),
    ] {
        let reply = served.api(&token, "GET", &path, None).await;
        assert_eq!(reply.status, 400, "{}", &path[..30]);
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.ends_with("is 64000 characters long; it may have at most 200"),
            "{error}"
        );
    }
    for path in [format!("/tickets?q={term}"), format!("/contacts?q={term}")] {
        let reply = served
            .request("GET", &path, &[("Cookie", &cookie)], b"")
            .await;
        assert_eq!(reply.status, 400);
        assert!(
            reply.body.contains("it may have at most 200"),
            "{}",
            reply.body
        );
    }
    let reply = served
        .api(&token, "GET", "/api/tickets?page=9223372036854775807", None)
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"],
        "`page` must be a whole number from 1 to 1000000, not `9223372036854775807`"
    );
    // The last page there can be is a page, past the tickets: empty, not page 1.
    let reply = served
        .api(
            &token,
            "GET",
            "/api/tickets?page=1000000&per_page=500",
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["tickets"], json!([]));
    assert_eq!(reply.json()["total"], 2);
}
