//! The router against a real SQLite store with mail imported through the App's intake:
//! who may reach what, CSRF, sign-in limits, the API and its OpenAPI document.
//! (What a browser does with the pages is tested in crates/postdesk/tests/web.rs.)

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox, MailboxControl, Pending};
use postdesk_app::{App, Settings};
use postdesk_core::RawMail;
use postdesk_core::settings::HelpdeskSettings;
use postdesk_store::Store;
use postdesk_store::access::Role;
use postdesk_web::{AppState, WebSettings, hash_password, new_token, router, routes, token_hash};
use serde_json::Value;
use tower::ServiceExt;

struct Desk {
    _dir: tempfile::TempDir,
    router: Router,
    store: Store,
    app: App,
}

const PASSWORD: &str = "a long password";

/// These tests talk to no IMAP server (the browser tests do): a check or scan says so.
struct NoImap;

impl MailboxControl for NoImap {
    fn check<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Vec<CheckStep>> {
        Box::pin(async {
            vec![CheckStep {
                name: "IMAP".into(),
                result: Err("not in these tests".into()),
            }]
        })
    }

    fn scan<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Result<Summary, String>> {
        Box::pin(async { Err("not in these tests".into()) })
    }
}

fn mail(from: &str, to: &str, subject: &str, body: &str) -> RawMail {
    let id = fastrand_id(subject);
    RawMail {
        source: postdesk_core::MailSource::File,
        location: format!("{subject}.eml"),
        bytes: format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@test>\r\n\
             Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        )
        .into_bytes(),
    }
}

fn fastrand_id(seed: &str) -> String {
    token_hash(seed)[..16].to_string()
}

async fn desk() -> Desk {
    desk_with(&[
        ("Support", "support@example.com"),
        ("Sales", "sales@example.com"),
    ])
    .await
}

/// Two helpdesks (named as given, the first with Alice's and Carol's mails, the second
/// with Bob's), agents `root` (admin), `sam` (of the first) and `sue` (of the second).
async fn desk_with(names: &[(&str, &str); 2]) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("postdesk.db").display()),
        dir.path(),
    )
    .await
    .unwrap();
    let helpdesks = names
        .iter()
        .map(|(name, address)| {
            toml::from_str::<HelpdeskSettings>(&format!(
                "name = \"{name}\"\naddresses = [\"{address}\"]\n[organizations]\n\"acme.example\" = \"ACME\"\n"
            ))
            .unwrap()
            .compile()
            .unwrap()
        })
        .collect::<Vec<_>>();
    let registered = store.register_helpdesks(&helpdesks).await.unwrap();
    let app = App::new(store.clone(), registered, Settings::default());
    let mut mails = vec![
        mail(
            "Alice <alice@acme.example>",
            "support@example.com",
            "Printer on fire",
            "The printer in room 4 is on fire.",
        ),
        mail(
            "Bob <bob@other.example>",
            "sales@example.com",
            "Quote for 40 licences",
            "Please send a quote.",
        ),
    ];
    for n in 0..60 {
        mails.push(mail(
            "Carol <carol@acme.example>",
            "support@example.com",
            &format!("Question {n:02}"),
            "How do I reset my password?",
        ));
    }
    let summary = app.intake().run(mails.into_iter(), |_| {}).await.unwrap();
    assert_eq!(summary.created, 62);
    let hash = hash_password(PASSWORD).unwrap();
    store
        .save_agent(
            "root",
            Some("root@example.com"),
            Role::Admin,
            Some(&hash),
            &[],
        )
        .await
        .unwrap();
    store
        .save_agent("sam", None, Role::Agent, Some(&hash), &[names[0].0.into()])
        .await
        .unwrap();
    store
        .save_agent("sue", None, Role::Agent, Some(&hash), &[names[1].0.into()])
        .await
        .unwrap();
    let web = router(AppState::new(app.clone(), NoImap, WebSettings::default()));
    Desk {
        _dir: dir,
        router: web,
        store,
        app,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Desk {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 10 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn token(&self, agent: &str) -> String {
        let token = new_token();
        self.store
            .create_api_token(agent, "test", &token_hash(&token), None)
            .await
            .unwrap();
        token
    }

    async fn api(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// Signs in through the form; returns the session cookie and the page's CSRF token.
    async fn sign_in(&self, login: &str) -> (String, String) {
        let reply = self
            .send(form(
                "/login",
                None,
                &format!("login={login}&password=a+long+password"),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let cookie = reply.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let cookie = cookie.split(';').next().unwrap().to_string();
        let page = self.page(&cookie, "/tickets").await;
        let csrf = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF token in the page")
            .to_string();
        (cookie, csrf)
    }

    async fn page(&self, cookie: &str, path: &str) -> Reply {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn ticket_id(&self, token: &str, title: &str) -> i64 {
        let list = self
            .api(
                token,
                Method::GET,
                &format!("/api/tickets?q={}", title.replace(' ', "+")),
                None,
            )
            .await
            .json();
        list["tickets"][0]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no ticket {title:?}: {list}"))
    }
}

fn form(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{sha256}", &"ab".repeat(32))
        .replace("{id}", "1")
        .replace("{index}", "0")
        .replace("{intake_id}", "1")
}

#[tokio::test]
async fn every_route_but_sign_in_needs_a_session_or_token() {
    let desk = desk().await;
    let table = routes::table();
    let public: Vec<_> = table
        .iter()
        .filter(|r| r.public)
        .map(|r| (r.method.clone(), r.path))
        .collect();
    assert_eq!(
        public,
        [
            (Method::GET, "/login"),
            (Method::POST, "/login"),
            (Method::GET, "/static/app.css"),
            (Method::GET, "/healthz"),
            (Method::GET, "/readyz")
        ]
    );
    for route in table.iter().filter(|r| !r.public) {
        let path = concrete(route.path);
        let api = path.starts_with("/api/");
        for credential in [None, Some("Bearer not-a-token"), Some("cookie")] {
            let mut request = Request::builder().method(route.method.clone()).uri(&path);
            match credential {
                Some("cookie") => {
                    request = request.header(header::COOKIE, "postdesk_session=forged")
                }
                Some(bearer) => request = request.header(header::AUTHORIZATION, bearer),
                None => {}
            }
            let reply = desk
                .send(
                    request
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from("csrf=x&text=hi"))
                        .unwrap(),
                )
                .await;
            let bearer = credential.is_some_and(|c| c.starts_with("Bearer"));
            if api || bearer {
                assert_eq!(
                    reply.status,
                    StatusCode::UNAUTHORIZED,
                    "{} {path} with {credential:?}",
                    route.method
                );
                if api {
                    assert!(reply.json()["error"].is_string());
                }
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::SEE_OTHER,
                    "{} {path} with {credential:?}",
                    route.method
                );
                assert_eq!(reply.location(), "/login");
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_names_exactly_the_api_routes() {
    let desk = desk().await;
    let token = desk.token("sam").await;
    let doc = desk
        .api(&token, Method::GET, "/api/openapi.json", None)
        .await
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = routes::table()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    routed.sort();
    assert_eq!(documented, routed);
}

#[tokio::test]
async fn agents_see_and_change_only_their_helpdesks_tickets() {
    let desk = desk().await;
    let (sam, sue, root) = (
        desk.token("sam").await,
        desk.token("sue").await,
        desk.token("root").await,
    );
    let sales_ticket = desk.ticket_id(&sue, "Quote").await;
    let support_ticket = desk.ticket_id(&sam, "Printer").await;

    let list = desk
        .api(&sam, Method::GET, "/api/tickets?per_page=500", None)
        .await
        .json();
    assert_eq!(list["total"], 61);
    assert!(
        list["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["helpdesk"] == "Support")
    );
    assert_eq!(
        desk.api(&sue, Method::GET, "/api/tickets", None)
            .await
            .json()["total"],
        1
    );
    assert_eq!(
        desk.api(&root, Method::GET, "/api/tickets", None)
            .await
            .json()["total"],
        62
    );

    // Sam cannot read, change, answer or annotate Sales' ticket: it does not exist for him.
    let path = format!("/api/tickets/{sales_ticket}");
    assert_eq!(
        desk.api(&sam, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let patch = serde_json::json!({ "status": "closed" });
    assert_eq!(
        desk.api(&sam, Method::PATCH, &path, Some(patch.clone()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let note = serde_json::json!({ "text": "sneaky" });
    assert_eq!(
        desk.api(
            &sam,
            Method::POST,
            &format!("{path}/notes"),
            Some(note.clone())
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        desk.api(&sam, Method::POST, &format!("{path}/reply"), Some(note))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (cookie, _) = desk.sign_in("sam").await;
    assert_eq!(
        desk.page(&cookie, &format!("/tickets/{sales_ticket}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let ticket = desk.api(&sue, Method::GET, &path, None).await.json();
    assert_eq!(
        ticket["status"], "email-imported",
        "nothing changed: {ticket}"
    );
    assert_eq!(ticket["thread"].as_array().unwrap().len(), 1);

    // In his own helpdesk he can.
    let path = format!("/api/tickets/{support_ticket}");
    let changed = desk
        .api(
            &sam,
            Method::PATCH,
            &path,
            Some(serde_json::json!({ "status": "open", "priority": "high", "assignee": "sam" })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let changed = changed.json();
    assert_eq!(changed["ticket"]["status"], "open");
    assert_eq!(changed["ticket"]["priority"], "high");
    assert_eq!(changed["ticket"]["assignee"], "sam");
    assert_eq!(changed["changes"].as_array().unwrap().len(), 3, "{changed}");
    let events: Vec<&str> = changed["ticket"]["thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "event")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"Priority changed from normal to high by sam."),
        "{events:?}"
    );
    let note = desk
        .api(
            &sam,
            Method::POST,
            &format!("{path}/notes"),
            Some(serde_json::json!({ "text": "Called the fire brigade." })),
        )
        .await;
    assert_eq!(note.status, StatusCode::OK, "{}", note.body);
    let thread = desk.api(&sam, Method::GET, &path, None).await.json()["thread"].clone();
    let last = thread.as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["author"].as_str()),
        (Some("note"), Some("sam"))
    );
    assert_eq!(last["visible_to_customer"], false);
    // Without SMTP configured, a reply says what to add.
    let reply = desk
        .api(
            &sam,
            Method::POST,
            &format!("{path}/reply"),
            Some(serde_json::json!({ "text": "On our way." })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("[helpdesk.smtp]"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_ticket_list_filters_searches_sorts_and_pages() {
    let desk = desk().await;
    let root = desk.token("root").await;
    let get = |q: &'static str| {
        let desk = &desk;
        let root = root.clone();
        async move {
            desk.api(&root, Method::GET, &format!("/api/tickets?{q}"), None)
                .await
        }
    };
    let page = get("helpdesk=Support&per_page=25&page=3&sort=number&order=asc")
        .await
        .json();
    assert_eq!(page["total"], 61);
    let tickets = page["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 11);
    let numbers: Vec<i64> = tickets
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(page["status_counts"]["email-imported"], 61);
    // Every word must match, in the subject or the text, case-insensitively for ASCII.
    assert_eq!(get("q=room+FIRE").await.json()["total"], 1);
    assert_eq!(get("q=fire+nowhere").await.json()["total"], 0);
    assert_eq!(
        get("q=fi%25e").await.json()["total"],
        0,
        "% is not a wildcard"
    );
    // Keyset pages: the next page's cursor gives the tickets after the first page's.
    let first = get("helpdesk=Support&per_page=25&sort=number&order=asc")
        .await
        .json();
    let next = first["next"].as_str().unwrap().to_string();
    let second = desk
        .api(
            &root,
            Method::GET,
            &format!(
                "/api/tickets?helpdesk=Support&per_page=25&sort=number&order=asc&after={next}"
            ),
            None,
        )
        .await
        .json();
    assert_eq!(
        second["tickets"][0]["number"],
        first["tickets"][24]["number"].as_i64().unwrap() + 1
    );
    assert!(second["page"].is_null());
    let bad = get("q=%22unclosed").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("not closed"),
        "{}",
        bad.body
    );
    assert_eq!(get("requester=carol").await.json()["total"], 60);
    assert_eq!(get("requester=ACME.example").await.json()["total"], 61);
    assert_eq!(get("assignee=-").await.json()["total"], 62);
    assert_eq!(get("status=closed").await.json()["total"], 0);
    let bad = get("page=zero").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("`page`"));
    assert_eq!(get("sort=colour").await.status, StatusCode::BAD_REQUEST);

    // The page shows the same, with working page links and counts.
    let (cookie, _) = desk.sign_in("root").await;
    let html = desk
        .page(&cookie, "/tickets?helpdesk=Support&sort=number&order=asc")
        .await
        .body;
    assert!(html.contains("Page 1 of 2"), "{html}");
    // The next page by keyset: after the last ticket shown (#50, its number the key).
    assert!(
        html.contains(
            "href=\"&#x2f;tickets?helpdesk=Support&amp;sort=number&amp;order=asc&amp;after="
        ),
        "{html}"
    );
    assert!(html.contains("[HD#1]"));
    // A search shows where its words matched, marked.
    let html = desk.page(&cookie, "/tickets?q=room+FIRE").await.body;
    assert!(
        html.contains("<span class=\"snippet\">") && html.contains("<mark>"),
        "{html}"
    );
    // Markup in the matched text shows as text, in the page and in the API.
    let id = desk.ticket_id(&root, "Printer on fire").await;
    let note = desk
        .api(
            &root,
            Method::POST,
            &format!("/api/tickets/{id}/notes"),
            Some(serde_json::json!({ "text": "<img src=x onerror=alert(1)> zanzibar <b>" })),
        )
        .await;
    assert_eq!(note.status, StatusCode::OK, "{}", note.body);
    let html = desk.page(&cookie, "/tickets?q=zanzibar").await.body;
    assert!(
        html.contains(
            "<span class=\"snippet\">&lt;img src=x onerror=alert(1)&gt; <mark>zanzibar</mark> &lt;b&gt;</span>"
        ),
        "{html}"
    );
    assert!(!html.contains("<img src=x"), "{html}");
    let listed = get("q=zanzibar").await.json();
    assert_eq!(
        listed["tickets"][0]["snippet"],
        "&lt;img src=x onerror=alert(1)&gt; <mark>zanzibar</mark> &lt;b&gt;"
    );
}

#[tokio::test]
async fn state_changes_need_the_sessions_csrf_token() {
    let desk = desk().await;
    let sam = desk.token("sam").await;
    let id = desk.ticket_id(&sam, "Printer").await;
    let (cookie, csrf) = desk.sign_in("sam").await;
    let note = |body: String| form(&format!("/tickets/{id}/note"), Some(&cookie), &body);
    assert_eq!(
        desk.send(note("text=forged".into())).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        desk.send(note("csrf=wrong&text=forged".into()))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ok = desk
        .send(note(format!("csrf={csrf}&text=Checked+the+printer")))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), format!("/tickets/{id}?done=note"));
    let page = desk
        .page(&cookie, &format!("/tickets/{id}?done=note"))
        .await
        .body;
    assert!(page.contains("Checked the printer") && page.contains("Note added."));
    assert!(!page.contains("forged"));
    // So does every other form, whatever else it carries.
    let fields = "text=forged&name=Forged&address=forged%40example.org&status=forged";
    for route in routes::table()
        .iter()
        .filter(|r| r.method == Method::POST && !r.public && !r.path.starts_with("/api/"))
    {
        let path = concrete(route.path);
        for body in [fields.to_string(), format!("csrf=wrong&{fields}")] {
            let reply = desk.send(form(&path, Some(&cookie), &body)).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} with {body}");
        }
    }

    // The API through a browser session needs the token in a header.
    let api_note = |csrf: Option<&str>| {
        let mut r = Request::post(format!("/api/tickets/{id}/notes"))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.body(Body::from(r#"{"text":"via api"}"#)).unwrap()
    };
    assert_eq!(
        desk.send(api_note(None)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        desk.send(api_note(Some(&csrf))).await.status,
        StatusCode::OK
    );
    for route in routes::table()
        .iter()
        .filter(|r| r.method != Method::GET && r.path.starts_with("/api/"))
    {
        let path = concrete(route.path);
        for token in [None, Some("wrong")] {
            let mut request = Request::builder()
                .method(route.method.clone())
                .uri(&path)
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(token) = token {
                request = request.header("x-csrf-token", token);
            }
            let reply = desk
                .send(request.body(Body::from(r#"{"text":"forged"}"#)).unwrap())
                .await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(reply.json()["error"].is_string(), "{path}: {}", reply.body);
        }
    }

    // Signing out ends the session on the server.
    let out = desk
        .send(form("/logout", Some(&cookie), &format!("csrf={csrf}")))
        .await;
    assert_eq!(out.location(), "/login");
    let after = desk.page(&cookie, "/tickets").await;
    assert_eq!(
        (after.status, after.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited() {
    let desk = desk().await;
    for _ in 0..5 {
        let reply = desk
            .send(form("/login", None, "login=sam&password=wrong+password"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("Wrong name or password."));
    }
    let blocked = desk
        .send(form("/login", None, "login=sam&password=a+long+password"))
        .await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(blocked.body.contains("too many failed sign-ins"));
    // Another agent is not locked out by Sam's attacker.
    desk.sign_in("sue").await;
    let unknown = desk
        .send(form("/login", None, "login=nobody&password=whatever"))
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_carry_a_policy_that_forbids_scripts() {
    let desk = desk().await;
    for path in ["/login", "/static/app.css"] {
        let reply = desk
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("script-src"),
            "no script source is ever allowed: {csp}"
        );
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY");
    }
    let (cookie, _) = desk.sign_in("root").await;
    for path in [
        "/tickets",
        "/contacts",
        "/organizations",
        "/mailboxes",
        "/failed",
    ] {
        let reply = desk.page(&cookie, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert!(!reply.body.contains("<script"), "{path} has a script");
    }
}

#[tokio::test]
async fn contacts_and_organizations_list_their_tickets_and_addresses_can_be_edited() {
    let desk = desk().await;
    let root = desk.token("root").await;
    let contacts = desk
        .api(&root, Method::GET, "/api/contacts?q=acme", None)
        .await
        .json();
    let alice = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Alice")
        .unwrap_or_else(|| panic!("{contacts}"))
        .clone();
    assert_eq!(alice["organization"], "ACME");
    let id = alice["id"].as_i64().unwrap();
    let (cookie, csrf) = desk.sign_in("root").await;
    let add = |address: &str| {
        form(
            &format!("/contacts/{id}/addresses"),
            Some(&cookie),
            &format!("csrf={csrf}&address={address}"),
        )
    };
    assert_eq!(
        desk.send(add("Alice.Home%40Example.org")).await.status,
        StatusCode::SEE_OTHER
    );
    let taken = desk.send(add("carol%40acme.example")).await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(taken.body.contains("already belongs to another contact"));
    assert_eq!(
        desk.send(add("not-an-address")).await.status,
        StatusCode::BAD_REQUEST
    );
    let contact = desk
        .api(&root, Method::GET, &format!("/api/contacts/{id}"), None)
        .await
        .json();
    assert_eq!(
        contact["contact"]["addresses"],
        serde_json::json!(["alice.home@example.org", "alice@acme.example"])
    );
    assert_eq!(contact["tickets"][0]["title"], "Printer on fire");
    let orgs = desk
        .api(&root, Method::GET, "/api/organizations", None)
        .await
        .json();
    assert_eq!(orgs[0]["name"], "ACME");
    assert_eq!(orgs[0]["tickets"], 61);
    let page = desk
        .page(&cookie, &format!("/organizations/{}", orgs[0]["id"]))
        .await;
    assert!(page.body.contains("Printer on fire") && page.body.contains("Carol"));
}

/// The contact of `name` as an admin sees it.
async fn contact_id(desk: &Desk, root: &str, name: &str) -> i64 {
    let contacts = desk
        .api(root, Method::GET, &format!("/api/contacts?q={name}"), None)
        .await
        .json();
    contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["id"].as_i64())
        .unwrap_or_else(|| panic!("no contact {name}: {contacts}"))
}

#[tokio::test]
async fn an_agent_can_neither_see_nor_change_another_helpdesks_contacts() {
    let desk = desk().await;
    let root = desk.token("root").await;
    let bob = contact_id(&desk, &root, "Bob").await; // a customer of Sales only
    let sam = desk.token("sam").await; // an agent of Support
    // Reads: the list leaves Bob out, his page and the API answer 404.
    let list = desk
        .api(&sam, Method::GET, "/api/contacts", None)
        .await
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Alice") && !names.contains(&"Bob"),
        "{names:?}"
    );
    assert_eq!(
        desk.api(&sam, Method::GET, &format!("/api/contacts/{bob}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (cookie, csrf) = desk.sign_in("sam").await;
    let page = desk.page(&cookie, &format!("/contacts/{bob}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("bob@other.example"));
    let listed = desk.page(&cookie, "/contacts").await;
    assert!(!listed.body.contains("bob@other.example"));

    // The attack: add the thief's address, remove the customer's, rename. All 404.
    for (path, body) in [
        (
            format!("/contacts/{bob}/addresses"),
            "address=thief%40evil.example".to_string(),
        ),
        (
            format!("/contacts/{bob}/addresses/remove"),
            "address=bob%40other.example".to_string(),
        ),
        (format!("/contacts/{bob}"), "name=Thief".to_string()),
    ] {
        let reply = desk
            .send(form(&path, Some(&cookie), &format!("csrf={csrf}&{body}")))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
    }
    let bob_now = desk
        .api(&root, Method::GET, &format!("/api/contacts/{bob}"), None)
        .await
        .json();
    assert_eq!(bob_now["contact"]["name"], "Bob");
    assert_eq!(
        bob_now["contact"]["addresses"],
        serde_json::json!(["bob@other.example"])
    );
    // So a mail from the thief quoting Bob's ticket does not become Bob's follow-up.
    let reference = bob_now["tickets"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let thief = desk
        .app
        .intake()
        .run(
            std::iter::once(mail(
                "Thief <thief@evil.example>",
                "sales@example.com",
                &format!("Re: {reference} Quote for 40 licences"),
                "Send the licences to me instead.",
            )),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((thief.created, thief.appended), (1, 0), "{reference}");
    // …while the same mail from Bob's own address is his follow-up.
    let own = desk
        .app
        .intake()
        .run(
            std::iter::once(mail(
                "Bob <bob@other.example>",
                "sales@example.com",
                &format!("Re: {reference} Quote for 40 licences, again"),
                "Any news?",
            )),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((own.created, own.appended), (0, 1));
    let bob_now = desk
        .api(&root, Method::GET, &format!("/api/contacts/{bob}"), None)
        .await
        .json();
    let ticket = bob_now["tickets"][0]["id"].as_i64().unwrap();
    let thread = desk
        .api(&root, Method::GET, &format!("/api/tickets/{ticket}"), None)
        .await;
    assert!(
        !thread.body.contains("Send the licences to me"),
        "{}",
        thread.body
    );

    // Organizations: ACME has tickets in Support only, so Sales' agent does not see it.
    let sue = desk.token("sue").await;
    let orgs = desk
        .api(&sue, Method::GET, "/api/organizations", None)
        .await
        .json();
    assert_eq!(orgs, serde_json::json!([]));
    let acme = desk
        .api(&root, Method::GET, "/api/organizations", None)
        .await
        .json()[0]["id"]
        .as_i64()
        .unwrap();
    let (sue_cookie, _) = desk.sign_in("sue").await;
    assert_eq!(
        desk.page(&sue_cookie, &format!("/organizations/{acme}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !desk
            .page(&sue_cookie, "/organizations")
            .await
            .body
            .contains("ACME")
    );
}

#[tokio::test]
async fn address_changes_need_every_helpdesk_involved_and_are_recorded() {
    let desk = desk().await;
    let root = desk.token("root").await;
    // Alice also writes to Sales: her addresses now matter to both helpdesks.
    desk.app
        .intake()
        .run(
            std::iter::once(mail(
                "Alice <alice@acme.example>",
                "sales@example.com",
                "Quote for toner",
                "And a quote for toner, please.",
            )),
            |_| {},
        )
        .await
        .unwrap();
    let alice = contact_id(&desk, &root, "Alice").await;
    let (cookie, csrf) = desk.sign_in("sam").await;
    let add = desk
        .send(form(
            &format!("/contacts/{alice}/addresses"),
            Some(&cookie),
            &format!("csrf={csrf}&address=alice.home%40example.org"),
        ))
        .await;
    assert_eq!(add.status, StatusCode::FORBIDDEN, "{}", add.body);
    // Sam still sees Alice, and only the Support ticket.
    let sam = desk.token("sam").await;
    let seen = desk
        .api(&sam, Method::GET, &format!("/api/contacts/{alice}"), None)
        .await
        .json();
    assert_eq!(
        seen["contact"]["addresses"],
        serde_json::json!(["alice@acme.example"])
    );
    assert_eq!(seen["contact"]["tickets"], 1);
    assert_eq!(seen["tickets"].as_array().unwrap().len(), 1);

    // An admin may: the change is on the contact, with the old and the new value, and
    // on each of her open tickets.
    let (root_cookie, root_csrf) = desk.sign_in("root").await;
    let add = desk
        .send(form(
            &format!("/contacts/{alice}/addresses"),
            Some(&root_cookie),
            &format!("csrf={root_csrf}&address=alice.home%40example.org"),
        ))
        .await;
    assert_eq!(add.status, StatusCode::SEE_OTHER, "{}", add.body);
    let contact = desk
        .api(&root, Method::GET, &format!("/api/contacts/{alice}"), None)
        .await
        .json();
    assert_eq!(contact["events"][0]["field"], "addresses");
    assert_eq!(contact["events"][0]["old_value"], "alice@acme.example");
    assert_eq!(
        contact["events"][0]["new_value"],
        "alice.home@example.org, alice@acme.example"
    );
    assert_eq!(contact["events"][0]["agent"], "root");
    let page = desk.page(&root_cookie, &format!("/contacts/{alice}")).await;
    assert!(
        page.body
            .contains("addresses changed from alice@acme.example to alice.home@example.org, alice@acme.example"),
        "{}",
        page.body
    );
    for t in contact["tickets"].as_array().unwrap() {
        let thread = desk
            .api(
                &root,
                Method::GET,
                &format!("/api/tickets/{}", t["id"]),
                None,
            )
            .await;
        assert!(
            thread.body.contains(
                "The requester's addresses changed from alice@acme.example to alice.home@example.org, alice@acme.example by root."
            ),
            "{}",
            thread.body
        );
    }
}

/// The property names an OpenAPI schema of the document lists (`allOf` parts merged).
fn documented_fields(doc: &Value, schema: &str) -> Vec<String> {
    let schema = &doc["components"]["schemas"][schema];
    let parts = match schema["allOf"].as_array() {
        Some(parts) => parts.clone(),
        None => vec![schema.clone()],
    };
    let mut fields: Vec<String> = parts
        .iter()
        .flat_map(|part| {
            let part = match part["$ref"].as_str() {
                Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
                None => part,
            };
            part["properties"].as_object().unwrap().keys().cloned()
        })
        .collect();
    fields.sort();
    fields
}

fn fields(object: &Value) -> Vec<String> {
    let mut fields: Vec<String> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .cloned()
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn api_objects_have_exactly_the_documented_fields() {
    let desk = desk().await;
    // A mail with an attachment, for the attachment's fields.
    let attached = RawMail {
        source: postdesk_core::MailSource::File,
        location: "attached.eml".into(),
        bytes: b"From: Dan <dan@example.net>\r\nTo: support@example.com\r\nSubject: Attached log\r\n\
                 Message-ID: <attached@test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
                 See the log.\r\n--b\r\nContent-Type: text/plain; name=log.txt\r\n\
                 Content-Disposition: attachment; filename=log.txt\r\n\r\nline 1\r\n--b--\r\n"
            .to_vec(),
    };
    desk.app
        .intake()
        .run(std::iter::once(attached), |_| {})
        .await
        .unwrap();
    // A helpdesk that refuses unknown senders fills the failed queue; its mailbox, with
    // an error on record, the mailbox list.
    let strict = toml::from_str::<HelpdeskSettings>(
        "name = \"Strict\"\naddresses = [\"strict@example.com\"]\nunknown_sender = \"reject\"\n\
         [[mailbox]]\nhost = \"127.0.0.1\"\nport = 9\nuser = \"strict\"\npassword = \"x\"\n",
    )
    .unwrap()
    .compile()
    .unwrap();
    let registered = desk.store.register_helpdesks(&[strict]).await.unwrap();
    let strict = App::new(desk.store.clone(), registered, Settings::default());
    desk.store
        .mailbox_failed(
            "Strict",
            &strict.mailboxes()[0].name(),
            "connection refused",
        )
        .await
        .unwrap();
    let refused = mail(
        "Eve <eve@example.net>",
        "strict@example.com",
        "Let me in",
        "Please.",
    );
    let summary = strict
        .intake()
        .run(std::iter::once(refused), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.failed, 1);
    let desk = Desk {
        router: router(AppState::new(strict, NoImap, WebSettings::default())),
        ..desk
    };

    let root = desk.token("root").await;
    let get = |path: String| {
        let desk = &desk;
        let root = root.clone();
        async move { desk.api(&root, Method::GET, &path, None).await.json() }
    };
    let doc = get("/api/openapi.json".into()).await;
    let check = |schema: &str, object: &Value| {
        assert_eq!(
            fields(object),
            documented_fields(&doc, schema),
            "{schema}: {object}"
        );
    };
    let list = get("/api/tickets?q=attached".into()).await;
    check("ListedTicket", &list["tickets"][0]);
    let ticket = get(format!("/api/tickets/{}", list["tickets"][0]["id"])).await;
    check("TicketDetail", &ticket);
    check("Entry", &ticket["thread"][0]);
    check("Attachment", &ticket["thread"][0]["attachments"][0]);
    check("Contact", &get("/api/contacts".into()).await[0]);
    check("Organization", &get("/api/organizations".into()).await[0]);
    check("Mailbox", &get("/api/mailboxes".into()).await[0]);
    check("FailedMail", &get("/api/failed".into()).await[0]);

    // The ticket's helpdesk (Support) is not configured in this app: its page still
    // shows, with a blank text for a new intervention (no template to fill).
    let (cookie, _) = desk.sign_in("root").await;
    let page = desk
        .page(&cookie, &format!("/tickets/{}", ticket["id"]))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Attached log"), "{}", page.body);
}

/// The CSV's rows as cells (quoted cells with commas and doubled quotes read back).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(std::mem::take(&mut cell)),
                (c, _) => cell.push(c),
            }
        }
        cells.push(cell);
        rows.push(cells);
    }
    rows
}

#[tokio::test]
async fn reports_draw_svg_charts_without_script_and_download_as_neutralised_csv() {
    // A hostile helpdesk name: markup for the page, a formula for a spreadsheet.
    let hostile = "=1+2 <script>alert(1)</script>";
    let desk = desk_with(&[
        (hostile, "support@example.com"),
        ("Sales", "sales@example.com"),
    ])
    .await;
    let (cookie, _) = desk.sign_in("root").await;
    let page = desk.page(&cookie, "/tickets").await;
    assert!(
        page.body.contains(r#"<a href="/reports""#),
        "a link in the navigation"
    );
    let reply = desk.page(&cookie, "/reports").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains("script-src"), "{csp}");
    let body = &reply.body;
    assert!(
        !body.contains("<script"),
        "no script, the name escaped: {body}"
    );
    assert!(
        body.contains("<h2>=1+2 &lt;script&gt;alert(1)&lt;"),
        "the name shown as text"
    );
    // Four charts a helpdesk, drawn as SVG with a bar for this week's 61 tickets, the
    // hostile name escaped inside the SVG too.
    assert_eq!(body.matches("<svg ").count(), 8, "{body}");
    let svg = body
        .split("<svg ")
        .nth(1)
        .unwrap()
        .split("</svg>")
        .next()
        .unwrap();
    assert!(
        svg.contains("<title>=1+2 &lt;script&gt;alert(1)&lt;"),
        "{svg}"
    );
    assert!(
        svg.contains(": Tickets created and closed</title>"),
        "{svg}"
    );
    assert!(svg.contains(" created: 61</title>"), "{svg}");
    assert!(svg.contains(r#"<rect class="bar a""#), "{svg}");
    assert!(body.contains("<h2>Sales"), "an admin sees every helpdesk");

    // An agent sees their helpdesk only; another's is not there at all.
    let (sue, _) = desk.sign_in("sue").await;
    let theirs = desk.page(&sue, "/reports").await.body;
    assert!(
        theirs.contains("<h2>Sales") && !theirs.contains("alert(1)"),
        "{theirs}"
    );
    let (sam, _) = desk.sign_in("sam").await;
    let other = desk.page(&sam, "/reports?helpdesk=Sales").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let own = desk.page(&sue, "/reports?helpdesk=sales").await;
    assert_eq!(own.status, StatusCode::OK);
    let bad = desk.page(&sue, "/reports?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a date"), "{}", bad.body);

    // The CSV: an attachment, a row a helpdesk and week, formulas neutralised.
    let csv = desk.page(&cookie, "/reports.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let rows = csv_rows(&csv.body);
    assert_eq!(
        rows[0][..6],
        [
            "helpdesk",
            "week",
            "week_start",
            "time_zone",
            "created",
            "closed"
        ]
    );
    assert_eq!(
        rows.len(),
        1 + 2 * 8,
        "eight weeks of two helpdesks: {rows:?}"
    );
    assert!(rows[1..].iter().all(|r| r.len() == rows[0].len()));
    let created = |name: &str| -> u64 {
        rows[1..]
            .iter()
            .filter(|r| r[0] == name)
            .map(|r| r[4].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(created("'=1+2 <script>alert(1)</script>"), 61);
    assert_eq!(created("Sales"), 1);
    assert!(rows[1..].iter().all(|r| !r[0].starts_with('=')));

    // The API gives the same weeks, narrowed to the agent's helpdesks.
    let token = desk.token("sue").await;
    let api = desk
        .api(&token, Method::GET, "/api/reports", None)
        .await
        .json();
    let weeks = api["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 8);
    assert!(weeks.iter().all(|w| w["helpdesk"] == "Sales"));
    assert_eq!(
        weeks
            .iter()
            .map(|w| w["created"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    let doc = desk
        .api(&token, Method::GET, "/api/openapi.json", None)
        .await
        .json();
    assert_eq!(fields(&weeks[0]), documented_fields(&doc, "ReportWeek"));
}
