//! The customer portal over HTTP (issue 17): the router against a real store (each
//! test on SQLite and on the testkit's PostgreSQL), mail taken in by the App's
//! intake, sign-in links read from the outbox as the SMTP sender would send them.
//!
//! - sign-in: the same answer for known and unknown addresses; a link works once, at
//!   its helpdesk only; a tampered one never; the portal cookie's attributes;
//! - separation: a portal session reaches no agent page nor `/api`, an agent's
//!   session no portal page (both tables walked);
//! - isolation: another contact's ticket, file and raw mail by id answer 404;
//! - what a contact sees: no notes, events, refused or internal files, the customer
//!   label of a hidden status; creating and answering with files; closing;
//! - pages: the CSP allows no script; hostile mail text is shown escaped.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox, MailboxControl, Pending};
use postdesk_app::{App, Settings};
use postdesk_core::RawMail;
use postdesk_core::id::TicketId;
use postdesk_core::outgoing::Event;
use postdesk_core::settings::HelpdeskSettings;
use postdesk_store::Store;
use postdesk_store::access::Role;
use postdesk_web::{AppState, WebSettings, hash_password, portal, router, routes};
use tower::ServiceExt;

/// Each test once per engine.
macro_rules! engine_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Engine::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Engine::Postgres).await })+
        }
    };
}

engine_tests! {
    the_answer_to_a_link_request_is_the_same_for_known_and_unknown_addresses,
    a_mailed_link_signs_in_once_and_only_at_its_helpdesk,
    portal_and_agent_sessions_never_reach_each_others_pages,
    another_contacts_ticket_file_and_mail_answer_404,
    a_contact_opens_and_answers_tickets_with_files_and_sees_only_the_public_thread,
    a_contact_with_a_password_signs_in_without_a_link,
    portal_pages_allow_no_script_and_show_hostile_text_escaped,
    the_settings_page_shows_each_portal_and_an_admin_lets_organizations_share,
    the_bell_counts_what_the_targets_name_and_never_the_agents_own_changes,
    the_api_has_notifications_watching_and_attachment_visibility,
    a_portal_answer_counts_the_running_deadlines_anew_where_the_helpdesk_says_so,
}

#[derive(Clone, Copy)]
enum Engine {
    Sqlite,
    Postgres,
}

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

/// Support (portal on, customers may close, a hidden status, answers set `open`),
/// Sales (portal on) and Internal (no portal); every one sends through an SMTP
/// server these tests never reach (mail stays queued in the outbox).
fn helpdesk(name: &str, extra: &str) -> String {
    let lower = name.to_lowercase();
    format!(
        "name = \"{name}\"\naddresses = [\"{lower}@example.com\"]\n{extra}\n\
         [organizations]\n\"acme.example\" = \"ACME\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nfrom = \"{lower}@example.com\"\n"
    )
}

struct Desk {
    _dir: tempfile::TempDir,
    router: Router,
    store: Store,
    app: App,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
    bytes: Vec<u8>,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn raw(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    attachment: Option<(&str, &str)>,
) -> RawMail {
    let id = postdesk_web::token_hash(subject)[..16].to_string();
    let head = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@test>\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    );
    let bytes = match attachment {
        None => format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"),
        Some((name, mime)) => format!(
            "{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n\
             --b\r\nContent-Type: {mime}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n"
        ),
    };
    RawMail {
        source: postdesk_core::MailSource::File,
        location: format!("{subject}.eml"),
        bytes: bytes.into_bytes(),
    }
}

async fn desk(engine: Engine) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let url = match engine {
        Engine::Sqlite => format!("sqlite://{}", dir.path().join("postdesk.db").display()),
        Engine::Postgres => postdesk_testkit::postgres::PostgresServer::shared()
            .expect("a PostgreSQL for the tests")
            .fresh_database(),
    };
    let store = Store::open(&url, dir.path()).await.unwrap();
    let helpdesks: Vec<_> = [
        helpdesk(
            "Support",
            "portal = true\nportal_url = \"https://desk.example/portal/\"\ncustomer_may_close = true\n\
             portal_reply_status = \"open\"\n\
             [customer_statuses.email-imported]\nvisible = false\ncustomer_label = \"received\"\n\
             [in_app]\nmail_modified = \"concerned\"\n",
        ),
        helpdesk(
            "Sales",
            "portal = true\nportal_url = \"https://sales.example/portal\"\n\
             [sla]\nrecalculate_deadline = true\n\
             [sla.hours]\nmon = \"00:00-24:00\"\ntue = \"00:00-24:00\"\nwed = \"00:00-24:00\"\n\
             thu = \"00:00-24:00\"\nfri = \"00:00-24:00\"\nsat = \"00:00-24:00\"\nsun = \"00:00-24:00\"\n\
             [[sla.policy]]\nname = \"standard\"\nresolution = \"40h\"\n",
        ),
        helpdesk("Internal", ""),
    ]
    .iter()
    .map(|text| {
        toml::from_str::<HelpdeskSettings>(text)
            .unwrap()
            .compile()
            .unwrap()
    })
    .collect();
    let registered = store.register_helpdesks(&helpdesks).await.unwrap();
    let app = App::new(store.clone(), registered, Settings::default());
    let mails = vec![
        raw(
            "Alice <alice@acme.example>",
            "support@example.com",
            "Printer jams",
            "The printer in room 4 jams.",
            Some(("jam.png", "image/png")),
        ),
        raw(
            "Bob <bob@other.example>",
            "support@example.com",
            "Bob's secret",
            "Bob's private matter.",
            Some(("bob.png", "image/png")),
        ),
        raw(
            "Alice <alice@acme.example>",
            "internal@example.com",
            "Internal only",
            "No portal here.",
            None,
        ),
    ];
    let summary = app.intake().run(mails.into_iter(), |_| {}).await.unwrap();
    assert_eq!(summary.created, 3);
    let hash = hash_password(PASSWORD).unwrap();
    store
        .save_agent(
            "sam",
            Some("sam@example.com"),
            Role::Agent,
            Some(&hash),
            &["Support".into()],
        )
        .await
        .unwrap();
    store
        .save_agent("root", None, Role::Admin, Some(&hash), &[])
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
            bytes: body.to_vec(),
        }
    }

    async fn get(&self, cookie: &str, path: &str) -> Reply {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, cookie: &str, path: &str, body: &str) -> Reply {
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn multipart(&self, cookie: &str, path: &str, parts: &[Part<'_>]) -> Reply {
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(b"--XBOUNDARY\r\n");
            match part {
                Part::Field(name, value) => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                ),
                Part::File(name, mime, bytes) => {
                    body.extend_from_slice(
                        format!(
                            "Content-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                             Content-Type: {mime}\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(bytes);
                    body.extend_from_slice(b"\r\n");
                }
            }
        }
        body.extend_from_slice(b"--XBOUNDARY--\r\n");
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(
                    header::CONTENT_TYPE,
                    "multipart/form-data; boundary=XBOUNDARY",
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    fn helpdesk_id(&self, name: &str) -> i64 {
        self.app
            .helpdesks()
            .iter()
            .find(|h| h.config.settings.name == name)
            .unwrap()
            .id
            .get()
    }

    /// Asks for a link for `address` at `helpdesk`'s portal.
    async fn ask(&self, helpdesk: &str, address: &str) -> Reply {
        self.post(
            "",
            "/portal/login/link",
            &format!("helpdesk={}&address={address}", self.helpdesk_id(helpdesk)),
        )
        .await
    }

    /// The sign-in link of the newest portal mail to `address`, as the mail reads.
    async fn mailed_link(&self, address: &str) -> String {
        let rows = self.store.outbox_rows(None, 100).await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.kind == Event::PortalLink && r.recipients == address)
            .unwrap_or_else(|| panic!("no sign-in mail to {address}: {rows:?}"));
        let raw = self.store.outbox_raw(row.id).await.unwrap();
        let mail = postdesk_mail::parse(&raw);
        mail.text
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .expect("a link in the mail")
            .to_string()
    }

    /// Follows a mailed link as a browser does: the page, then its button.
    async fn follow(&self, link: &str) -> Reply {
        let path = link
            .strip_prefix("https://desk.example")
            .or_else(|| link.strip_prefix("https://sales.example"))
            .expect("a portal link");
        let page = self.get("", path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let value = |name: &str| {
            page.body
                .split(&format!("name=\"{name}\" value=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no {name} in {}", page.body))
                .to_string()
        };
        self.post(
            "",
            "/portal/link",
            &format!("h={}&t={}", value("h"), value("t")),
        )
        .await
    }

    /// Signs `address` in with a mailed link: the portal cookie and the CSRF token.
    async fn sign_in(&self, address: &str) -> (String, String) {
        let asked = self.ask("Support", address).await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
        let link = self.mailed_link(address).await;
        let reply = self.follow(&link).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.location(), "/portal/tickets");
        let cookie = reply.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let page = self.get(&cookie, "/portal/tickets").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        (cookie, csrf_of(&page.body))
    }

    async fn agent_cookie(&self) -> String {
        self.agent_cookie_of("sam").await
    }

    async fn agent_cookie_of(&self, name: &str) -> String {
        let reply = self
            .post(
                "",
                "/login",
                &format!("login={name}&password=a+long+password"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    async fn ticket_titled(&self, title: &str) -> TicketId {
        let page = self
            .store
            .list_tickets(&postdesk_store::read::TicketFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        page.iter()
            .find(|t| t.title == title)
            .unwrap_or_else(|| panic!("no ticket {title}"))
            .id
    }
}

enum Part<'a> {
    Field(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_string()
}

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{sha256}", &"ab".repeat(32))
        .replace("{id}", "1")
        .replace("{index}", "0")
        .replace("{intake_id}", "1")
}

async fn the_answer_to_a_link_request_is_the_same_for_known_and_unknown_addresses(engine: Engine) {
    let desk = desk(engine).await;
    let known = desk.ask("Support", "alice@acme.example").await;
    let unknown = desk.ask("Support", "nobody@nowhere.example").await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    assert!(known.body.contains("sign-in link is on its way"));
    // One mail, to the customer only, through the outbox, with the configured URL.
    let links: Vec<_> = desk
        .store
        .outbox_rows(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == Event::PortalLink)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].recipients, "alice@acme.example");
    assert_eq!(links[0].subject, "Support: your sign-in link");
    let link = desk.mailed_link("alice@acme.example").await;
    assert!(
        link.starts_with(&format!(
            "https://desk.example/portal/link?h={}&t=",
            desk.helpdesk_id("Support")
        )),
        "{link}"
    );
    // Both are limited alike: the fourth request within the window is refused.
    for _ in 0..2 {
        assert_eq!(
            desk.ask("Support", "alice@acme.example").await.status,
            StatusCode::OK
        );
        assert_eq!(
            desk.ask("Support", "nobody@nowhere.example").await.status,
            StatusCode::OK
        );
    }
    let known = desk.ask("Support", "alice@acme.example").await;
    let unknown = desk.ask("Support", "nobody@nowhere.example").await;
    assert_eq!(known.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    // Not an address, or a helpdesk without a portal: refused, for anyone.
    assert_eq!(
        desk.ask("Support", "not-an-address").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        desk.ask("Internal", "alice@acme.example").await.status,
        StatusCode::BAD_REQUEST
    );
    // Another site's page cannot make browsers ask.
    let cross = desk
        .send(
            Request::post("/portal/login/link")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from("address=alice@acme.example"))
                .unwrap(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
}

async fn a_mailed_link_signs_in_once_and_only_at_its_helpdesk(engine: Engine) {
    let desk = desk(engine).await;
    desk.ask("Support", "alice@acme.example").await;
    let link = desk.mailed_link("alice@acme.example").await;
    // Opening the link (a mail scanner fetching it) uses nothing up.
    let path = link
        .strip_prefix("https://desk.example")
        .unwrap()
        .to_string();
    desk.get("", &path).await;
    desk.get("", &path).await;
    // At another helpdesk's portal: refused, and still good at its own.
    let token = link.split("&t=").nth(1).unwrap().to_string();
    let sales = desk.helpdesk_id("Sales");
    let elsewhere = desk
        .post("", "/portal/link", &format!("h={sales}&t={token}"))
        .await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(elsewhere.headers.get(header::SET_COOKIE).is_none());
    // Tampered: one character changed.
    let mut tampered = token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'a' { b'b' } else { b'a' };
    let support = desk.helpdesk_id("Support");
    let tampered = desk
        .post(
            "",
            "/portal/link",
            &format!("h={support}&t={}", String::from_utf8(tampered).unwrap()),
        )
        .await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    let first = desk.follow(&link).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let cookie = first.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("postdesk_portal="), "{cookie}");
    for attribute in ["Path=/portal", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Used: refused with the same page as any bad link.
    let again = desk.follow(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body, tampered.body);
    assert!(again.body.contains("cannot be used"));
}

async fn portal_and_agent_sessions_never_reach_each_others_pages(engine: Engine) {
    let desk = desk(engine).await;
    let (contact, _) = desk.sign_in("alice@acme.example").await;
    let agent = desk.agent_cookie().await;
    // The portal cookie, under its own name and under the agents': no agent page, no API.
    let forged_agent = contact.replace("postdesk_portal=", "postdesk_session=");
    for route in routes::table().iter().filter(|r| !r.public) {
        let path = concrete(route.path);
        for cookie in [&contact, &forged_agent] {
            let reply = desk
                .send(
                    Request::builder()
                        .method(route.method.clone())
                        .uri(&path)
                        .header(header::COOKIE, cookie.as_str())
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from("csrf=x&text=hi"))
                        .unwrap(),
                )
                .await;
            if path.starts_with("/api/") {
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
            } else {
                assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
                assert_eq!(reply.location(), "/login", "{path}");
            }
        }
    }
    // The agent's cookie, under its own name and the portal's: no portal page.
    let forged_contact = agent.replace("postdesk_session=", "postdesk_portal=");
    let table = portal::table();
    let public: Vec<_> = table
        .iter()
        .filter(|r| r.public)
        .map(|r| (r.method.clone(), r.path))
        .collect();
    assert_eq!(
        public,
        [
            (Method::GET, "/portal/login"),
            (Method::POST, "/portal/login/link"),
            (Method::POST, "/portal/login/password"),
            (Method::GET, "/portal/link"),
            (Method::POST, "/portal/link"),
            (Method::GET, "/portal/static/portal.css"),
        ]
    );
    for route in table.iter().filter(|r| !r.public) {
        let path = concrete(route.path);
        for cookie in ["", agent.as_str(), forged_contact.as_str()] {
            let reply = desk
                .send(
                    Request::builder()
                        .method(route.method.clone())
                        .uri(&path)
                        .header(header::COOKIE, cookie)
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from("csrf=x&text=hi"))
                        .unwrap(),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::SEE_OTHER,
                "{path} with {cookie:?}"
            );
            assert_eq!(reply.location(), "/portal/login", "{path}");
        }
    }
    // Both still work where they belong.
    assert_eq!(
        desk.get(&contact, "/portal/tickets").await.status,
        StatusCode::OK
    );
    assert_eq!(desk.get(&agent, "/tickets").await.status, StatusCode::OK);
}

async fn another_contacts_ticket_file_and_mail_answer_404(engine: Engine) {
    let desk = desk(engine).await;
    let (alice, _) = desk.sign_in("alice@acme.example").await;
    let (bob, _) = desk.sign_in("bob@other.example").await;
    let bobs = desk.ticket_titled("Bob's secret").await;
    let alices = desk.ticket_titled("Printer jams").await;
    // Bob's own page names his file and mail; Alice gets 404 for each, by id.
    let page = desk.get(&bob, &format!("/portal/tickets/{bobs}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let file = page
        .body
        .split("href=\"/portal/attachments/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .expect("Bob's file")
        .to_string();
    let mail = page
        .body
        .split("href=\"/portal/entries/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("Bob's mail")
        .to_string();
    assert_eq!(
        desk.get(&bob, &format!("/portal/attachments/{file}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        desk.get(&bob, &format!("/portal/entries/{mail}/raw"))
            .await
            .status,
        StatusCode::OK
    );
    for path in [
        format!("/portal/tickets/{bobs}"),
        format!("/portal/attachments/{file}"),
        format!("/portal/attachments/{file}?download=1"),
        format!("/portal/entries/{mail}/raw"),
        "/portal/tickets/999999".to_string(),
        "/portal/attachments/999999".to_string(),
    ] {
        let reply = desk.get(&alice, &path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.body.contains("Bob"), "{path}: {}", reply.body);
    }
    let list = desk.get(&alice, "/portal/tickets").await.body;
    assert!(list.contains("Printer jams"));
    assert!(!list.contains("Bob's secret"));
    // Not the ticket of a helpdesk without a portal, though it is hers.
    assert!(!list.contains("Internal only"));
    let internal = desk.ticket_titled("Internal only").await;
    assert_eq!(
        desk.get(&alice, &format!("/portal/tickets/{internal}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Answering or closing another's ticket: 404, nothing written.
    let (_, csrf) = desk.sign_in("alice@acme.example").await;
    let _ = alices;
    let before = desk.store.ticket_by_id(bobs).await.unwrap().entries.len();
    let reply = desk
        .multipart(
            &alice,
            &format!("/portal/tickets/{bobs}/reply"),
            &[Part::Field("csrf", &csrf), Part::Field("text", "mine now")],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "the first session's token is not the second's"
    );
    let page = desk.get(&alice, "/portal/tickets").await;
    let csrf = csrf_of(&page.body);
    let reply = desk
        .multipart(
            &alice,
            &format!("/portal/tickets/{bobs}/reply"),
            &[Part::Field("csrf", &csrf), Part::Field("text", "mine now")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let close = desk
        .post(
            &alice,
            &format!("/portal/tickets/{bobs}/close"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(close.status, StatusCode::NOT_FOUND);
    let after = desk.store.ticket_by_id(bobs).await.unwrap();
    assert_eq!(after.entries.len(), before);
    assert_eq!(after.summary.status, "email-imported");
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-portal";

async fn a_contact_opens_and_answers_tickets_with_files_and_sees_only_the_public_thread(
    engine: Engine,
) {
    let desk = desk(engine).await;
    let (alice, csrf) = desk.sign_in("alice@acme.example").await;
    // Without the CSRF token: refused, nothing made.
    let refused = desk
        .multipart(
            &alice,
            "/portal/tickets",
            &[Part::Field("subject", "No token"), Part::Field("text", "x")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let support = desk.helpdesk_id("Support").to_string();
    let created = desk
        .multipart(
            &alice,
            "/portal/tickets",
            &[
                Part::Field("csrf", &csrf),
                Part::Field("helpdesk", &support),
                Part::Field("subject", "Scanner is slow ünïcode"),
                Part::Field("text", "It takes ten minutes per page."),
                Part::File("scan.png", "image/png", PNG),
                Part::File("tool.exe", "application/x-msdownload", b"MZ\x90\x00"),
            ],
        )
        .await;
    // The refused file is listed to the contact.
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.body.contains("tool.exe"), "{}", created.body);
    assert!(
        created
            .body
            .contains("type application&#x2f;x-msdownload is not allowed"),
        "{}",
        created.body
    );
    let id = desk.ticket_titled("Scanner is slow ünïcode").await;
    let view = desk.store.ticket_by_id(id).await.unwrap();
    assert_eq!(view.summary.status, "email-imported");
    assert_eq!(
        view.summary.requester.as_deref(),
        Some("alice@acme.example")
    );
    let names: Vec<_> = view.entries[0]
        .attachments
        .iter()
        .map(|a| a.safe_name.clone())
        .collect();
    assert_eq!(names, ["scan.png", "tool.exe"]);
    // The acknowledgement went out as for mail.
    let rows = desk.store.outbox_rows(None, 100).await.unwrap();
    assert!(
        rows.iter().any(|r| r.kind == Event::Acknowledgement
            && r.recipients == "alice@acme.example"
            && r.subject.contains("Scanner is slow")),
        "{rows:?}"
    );
    // An agent answers, notes, changes a field; and makes the customer's PNG internal.
    let hd = desk.app.helpdesks()[0].clone();
    desk.app
        .outbox()
        .reply(
            &hd,
            view.summary.number,
            Some("sam"),
            "Please restart the scanner.",
        )
        .await
        .unwrap();
    let sam = desk.store.agent_id("sam").await.unwrap();
    desk.store
        .add_note(id, sam, "INTERNAL-NOTE: firmware bug")
        .await
        .unwrap();
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let png_id: i64 = page
        .body
        .split("href=\"/portal/attachments/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .unwrap()
        .parse()
        .unwrap();
    let file = desk
        .get(&alice, &format!("/portal/attachments/{png_id}?download=1"))
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, PNG);
    desk.store
        .set_attachment_visibility(
            postdesk_core::id::AttachmentId::new(png_id),
            false,
            sam,
            &[hd.id],
        )
        .await
        .unwrap();
    // The agent adds a PDF: internal by default (agent_uploads_visible_to_customer).
    let agent = desk.agent_cookie().await;
    let agent_page = desk.get(&agent, &format!("/tickets/{id}")).await;
    assert_eq!(agent_page.status, StatusCode::OK);
    let agent_csrf = csrf_of(&agent_page.body);
    let added = desk
        .multipart(
            &agent,
            &format!("/tickets/{id}/files"),
            &[
                Part::Field("csrf", &agent_csrf),
                Part::File("report.pdf", "application/pdf", b"%PDF-1.4 internal report"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let agent_page = desk.get(&agent, &format!("/tickets/{id}")).await;
    assert!(agent_page.body.contains("sam added report.pdf (internal)."));
    let pdf_id: i64 = agent_page
        .body
        .split("name=\"attachment\" value=\"")
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|v| v.parse().ok())
        .max()
        .expect("the PDF's visibility switch");
    // Guessing its id (or any other) finds only what the customer may have.
    for n in 1..=pdf_id + 5 {
        let reply = desk.get(&alice, &format!("/portal/attachments/{n}")).await;
        if n == pdf_id {
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "the internal PDF");
        }
        assert!(!reply.bytes.starts_with(b"%PDF"), "attachment {n}");
    }
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    assert!(!page.body.contains("report.pdf"));
    assert!(page.body.contains("Please restart the scanner."));
    assert!(!page.body.contains("INTERNAL-NOTE"));
    assert!(!page.body.contains("made internal"));
    assert!(!page.body.contains("scan.png"));
    assert!(!page.body.contains("tool.exe"));
    // The hidden status shows as its customer label; the thread counts two messages.
    assert!(
        page.body.contains("<span class=\"status\">received</span>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("email-imported"));
    assert!(page.body.contains("2 messages"));
    assert_eq!(
        desk.get(&alice, &format!("/portal/attachments/{png_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Shown to the customer by the agent: listed and downloadable; the switch is an event.
    let shown = desk
        .post(
            &agent,
            &format!("/tickets/{id}/files/visibility"),
            &format!("csrf={agent_csrf}&attachment={pdf_id}&visibility=public"),
        )
        .await;
    assert_eq!(shown.status, StatusCode::SEE_OTHER, "{}", shown.body);
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    assert!(page.body.contains("Files from Support"));
    assert!(page.body.contains("report.pdf"));
    assert!(!page.body.contains("made public"));
    let pdf = desk
        .get(&alice, &format!("/portal/attachments/{pdf_id}"))
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.bytes, b"%PDF-1.4 internal report");
    assert_eq!(
        pdf.headers[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    let agent_page = desk.get(&agent, &format!("/tickets/{id}")).await;
    assert!(
        agent_page
            .body
            .contains("Attachment report.pdf made public by sam.")
    );
    // The answer, with a file: the status the portal sets, the entry on the ticket.
    let csrf = csrf_of(&page.body);
    let answered = desk
        .multipart(
            &alice,
            &format!("/portal/tickets/{id}/reply"),
            &[
                Part::Field("csrf", &csrf),
                Part::Field("text", "Restarted, still slow."),
                Part::File("after.png", "image/png", b"\x89PNG\r\n\x1a\nafter"),
            ],
        )
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER, "{}", answered.body);
    assert_eq!(answered.location(), format!("/portal/tickets/{id}?done=1"));
    let view = desk.store.ticket_by_id(id).await.unwrap();
    assert_eq!(view.summary.status, "open");
    let last = view
        .entries
        .iter()
        .rev()
        .find(|e| e.kind == postdesk_core::entry::EntryKind::Incoming)
        .unwrap();
    assert_eq!(last.body_text.trim(), "Restarted, still slow.");
    assert_eq!(last.attachments[0].safe_name, "after.png");
    let page = desk
        .get(&alice, &format!("/portal/tickets/{id}?done=1"))
        .await;
    assert!(page.body.contains("Restarted, still slow."));
    assert!(page.body.contains("after.png"));
    assert!(page.body.contains("<span class=\"status\">open</span>"));
    // Closing, where the helpdesk allows it.
    let close = desk
        .post(
            &alice,
            &format!("/portal/tickets/{id}/close"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(close.status, StatusCode::SEE_OTHER);
    assert_eq!(
        desk.store.ticket_by_id(id).await.unwrap().summary.status,
        "closed"
    );
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    assert!(!page.body.contains("close the ticket"));
}

async fn a_contact_with_a_password_signs_in_without_a_link(engine: Engine) {
    let desk = desk(engine).await;
    let wrong = desk
        .post(
            "",
            "/portal/login/password",
            "address=alice@acme.example&password=whatever+it+is",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let (alice, csrf) = desk.sign_in("alice@acme.example").await;
    let short = desk
        .post(
            &alice,
            "/portal/account/password",
            &format!("csrf={csrf}&password=short"),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let set = desk
        .post(
            &alice,
            "/portal/account/password",
            &format!("csrf={csrf}&password=correct+horse+battery"),
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    // The agents' sign-in does not know the contact's password.
    let as_agent = desk
        .post(
            "",
            "/login",
            "login=alice@acme.example&password=correct+horse+battery",
        )
        .await;
    assert_eq!(as_agent.status, StatusCode::UNAUTHORIZED);
    let signed_in = desk
        .post(
            "",
            "/portal/login/password",
            "address=ALICE@acme.example&password=correct+horse+battery",
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let cookie = signed_in.headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap();
    assert!(
        desk.get(cookie, "/portal/tickets")
            .await
            .body
            .contains("Printer jams")
    );
    // An agent's password is not a contact's.
    let agent = desk
        .post(
            "",
            "/portal/login/password",
            "address=sam@example.com&password=a+long+password",
        )
        .await;
    assert_eq!(agent.status, StatusCode::UNAUTHORIZED);
}

async fn portal_pages_allow_no_script_and_show_hostile_text_escaped(engine: Engine) {
    let desk = desk(engine).await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)><meta http-equiv=refresh content=0;url=https://evil.example>";
    let summary = desk
        .app
        .intake()
        .run(
            std::iter::once(raw(
                "Alice <alice@acme.example>",
                "support@example.com",
                "<b>bold</b> subject",
                hostile,
                None,
            )),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(summary.created, 1);
    let (alice, _) = desk.sign_in("alice@acme.example").await;
    let id = desk.ticket_titled("<b>bold</b> subject").await;
    for path in [
        "/portal/login".to_string(),
        "/portal/link?h=1&t=abc".to_string(),
        "/portal/tickets".to_string(),
        "/portal/tickets/new".to_string(),
        format!("/portal/tickets/{id}"),
        "/portal/account".to_string(),
        "/portal/tickets/424242".to_string(),
    ] {
        let page = desk.get(&alice, &path).await;
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src"), "{path}: {csp}");
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(!page.body.contains("<script"), "{path}");
        assert!(!page.body.contains("<img"), "{path}");
        assert!(!page.body.contains("<meta http-equiv"), "{path}");
        assert!(!page.body.contains("<b>bold"), "{path}");
    }
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;"),
        "{}",
        page.body
    );
    let css = desk.get("", "/portal/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
}

async fn the_settings_page_shows_each_portal_and_an_admin_lets_organizations_share(engine: Engine) {
    let desk = desk(engine).await;
    let sam = desk.agent_cookie().await;
    let page = desk.get(&sam, "/settings/portal").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("href=\"https:&#x2f;&#x2f;desk.example&#x2f;portal\""),
        "{}",
        page.body
    );
    // Sam works in Support only: Sales' portal is not his page's.
    assert!(!page.body.contains("sales.example"));
    assert!(
        page.body
            .contains("<span class=\"status\">email-imported</span></td><td>received</td>"),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page.body);
    let refused = desk
        .post(
            &sam,
            "/settings/portal/organizations",
            &format!("csrf={csrf}&organization=ACME&share=true"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Carol of ACME writes; Alice sees her ticket only once ACME shares.
    desk.app
        .intake()
        .run(
            std::iter::once(raw(
                "Carol <carol@acme.example>",
                "support@example.com",
                "Carol's request",
                "Hi.",
                None,
            )),
            |_| {},
        )
        .await
        .unwrap();
    let (alice, _) = desk.sign_in("alice@acme.example").await;
    assert!(
        !desk
            .get(&alice, "/portal/tickets")
            .await
            .body
            .contains("Carol's request")
    );
    let root = desk.agent_cookie_of("root").await;
    let page = desk.get(&root, "/settings/portal").await;
    assert!(page.body.contains("sales.example"));
    let csrf = csrf_of(&page.body);
    let shared = desk
        .post(
            &root,
            "/settings/portal/organizations",
            &format!("csrf={csrf}&organization=ACME&share=true"),
        )
        .await;
    assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.body);
    let list = desk.get(&alice, "/portal/tickets").await.body;
    assert!(
        list.contains("Carol&#x27;s request") || list.contains("Carol's request"),
        "{list}"
    );
    assert!(list.contains("from Carol"));
}

/// The whole path in headless Chromium against the web server on loopback, with the
/// outbox sender mailing to the testkit's SMTP sink: a customer asks for a link, reads
/// it from the sink, signs in and opens a ticket with a PNG; the acknowledgement
/// arrives; an agent answers, adds a note and a PDF (internal by default); the
/// customer sees the answer and neither the note nor the PDF, on the page or by its
/// URL. Screenshots of the portal's pages at a desktop and a phone size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_path_in_chromium() {
    use postdesk_testkit::browser::Browser;
    use postdesk_testkit::smtp::{SinkOptions, SmtpSink};
    use std::time::Duration;

    let sink = SmtpSink::start(SinkOptions::default());
    let live = Live::start(sink.port(), "").await;
    let (base, dir, store, app) = (&live.base, &live.dir, &live.store, &live.app);
    // Alice is a customer: she wrote before.
    app.intake()
        .run(
            std::iter::once(raw(
                "Alice <alice@acme.example>",
                "support@example.com",
                "First question",
                "Hello.",
                None,
            )),
            |_| {},
        )
        .await
        .unwrap();
    let hash = hash_password(PASSWORD).unwrap();
    store
        .save_agent(
            "sam",
            Some("sam@example.com"),
            Role::Agent,
            Some(&hash),
            &["Support".into()],
        )
        .await
        .unwrap();
    let wait_mails =
        |n: usize| tokio::task::block_in_place(|| sink.wait_for(n, Duration::from_secs(30)));

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/portal")).await;
    assert!(browser.current_url().await.ends_with("/portal/login"));
    browser.screenshot("portal-login-desktop").await;
    browser
        .fill("input[name=address]", "alice@acme.example")
        .await;
    browser.submit("form[action='/portal/login/link']").await;
    browser.wait_for("section.message").await;
    assert!(
        browser
            .page_source()
            .await
            .contains("sign-in link is on its way")
    );
    // Her first mail's acknowledgement, then the link.
    let mails = wait_mails(2);
    let link_mail = mails
        .iter()
        .find(|m| postdesk_mail::parse(&m.raw).subject == "Support: your sign-in link")
        .expect("the sign-in mail");
    assert_eq!(link_mail.envelope_to, ["alice@acme.example"]);
    let link = postdesk_mail::parse(&link_mail.raw)
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/portal/link?")))
        .expect("the sign-in link")
        .to_string();
    browser.goto(&link).await;
    browser.screenshot("portal-link-desktop").await;
    browser.click("form[action='/portal/link'] button").await;
    browser.wait_for("table.portal-tickets, p.empty").await;
    assert!(browser.current_url().await.ends_with("/portal/tickets"));
    assert!(browser.page_source().await.contains("First question"));
    browser.screenshot("portal-tickets-desktop").await;
    // The same link again: refused.
    let again = Browser::start().await;
    again.goto(&link).await;
    again.click("form[action='/portal/link'] button").await;
    again.wait_for("p.flash.error").await;
    assert!(again.text("p.flash.error").await.contains("cannot be used"));
    again.close().await;

    // A new ticket with a PNG.
    let png_path = dir.path().join("screen.png");
    std::fs::write(&png_path, PNG).unwrap();
    browser.click("a[href='/portal/tickets/new']").await;
    browser.wait_for("form.new-ticket").await;
    browser.screenshot("portal-new-desktop").await;
    browser.fill("input[name=subject]", "Scanner broken").await;
    browser
        .fill("textarea[name=text]", "It shows error 42.")
        .await;
    browser
        .find("input[type=file]")
        .await
        .send_keys(png_path.to_str().unwrap())
        .await
        .unwrap();
    browser.submit("form.new-ticket").await;
    browser.wait_for("section.thread").await;
    let ticket_url = browser.current_url().await;
    assert!(ticket_url.ends_with("?done=1"), "{ticket_url}");
    assert!(
        browser
            .text("p.flash")
            .await
            .contains("your message is on the ticket")
    );
    let ticket_url = ticket_url.trim_end_matches("?done=1").to_string();
    assert!(browser.text("h1").await.contains("Scanner broken"));
    assert!(browser.page_source().await.contains("screen.png"));
    // The acknowledgement arrives.
    let mails = wait_mails(3);
    assert!(
        mails.iter().any(|m| {
            let parsed = postdesk_mail::parse(&m.raw);
            m.envelope_to == ["alice@acme.example"]
                && parsed.subject.contains("Scanner broken — registered")
        }),
        "{:?}",
        mails
            .iter()
            .map(|m| postdesk_mail::parse(&m.raw).subject)
            .collect::<Vec<_>>()
    );

    // The agent answers, notes, and adds a PDF, in their own browser.
    let agent = Browser::start().await;
    agent.goto(&format!("{base}/login")).await;
    agent.fill("input[name=login]", "sam").await;
    agent.fill("input[name=password]", PASSWORD).await;
    agent.submit("form[action='/login']").await;
    agent.wait_for("table.tickets, p.empty").await;
    let ticket_id = ticket_url.rsplit('/').next().unwrap().to_string();
    agent.goto(&format!("{base}/tickets/{ticket_id}")).await;
    agent
        .fill(
            "form[action$='/reply'] textarea",
            "Please update the driver.",
        )
        .await;
    agent.submit("form[action$='/reply']").await;
    agent.wait_for("p.flash").await;
    agent
        .fill(
            "form[action$='/note'] textarea",
            "SECRET-NOTE: known firmware bug",
        )
        .await;
    agent.submit("form[action$='/note']").await;
    agent.wait_for("p.flash").await;
    let pdf_path = dir.path().join("analysis.pdf");
    std::fs::write(&pdf_path, b"%PDF-1.4 internal analysis").unwrap();
    agent
        .find("form[action$='/files'] input[type=file]")
        .await
        .send_keys(pdf_path.to_str().unwrap())
        .await
        .unwrap();
    agent.submit("form[action$='/files']").await;
    agent.wait_for("p.flash").await;
    let source = agent.page_source().await;
    assert!(source.contains("analysis.pdf"));
    let pdf_id = source
        .split("name=\"attachment\" value=\"")
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|v| v.parse::<i64>().ok())
        .max()
        .unwrap();
    agent.close().await;

    // The customer sees the answer, neither the note nor the PDF, nor the PDF by its URL.
    browser.goto(&ticket_url).await;
    let source = browser.page_source().await;
    assert!(source.contains("Please update the driver."), "{source}");
    assert!(!source.contains("SECRET-NOTE"));
    assert!(!source.contains("analysis.pdf"));
    browser.screenshot("portal-ticket-desktop").await;
    browser
        .goto(&format!("{base}/portal/attachments/{pdf_id}"))
        .await;
    assert!(
        browser
            .page_source()
            .await
            .contains("no such file on your tickets")
    );
    browser.assert_not_pwned().await;
    // The phone-sized window.
    browser.client().set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        (ticket_url.as_str(), "portal-ticket-phone"),
        (
            &format!("{base}/portal/tickets") as &str,
            "portal-tickets-phone",
        ),
        (
            &format!("{base}/portal/tickets/new") as &str,
            "portal-new-phone",
        ),
    ] {
        browser.goto(path).await;
        browser.screenshot(name).await;
        let overflow = browser
            .execute("return document.documentElement.scrollWidth > window.innerWidth;")
            .await;
        assert_eq!(
            overflow,
            serde_json::Value::Bool(false),
            "{name} scrolls sideways"
        );
    }
    browser.close().await;
    live.stop().await;
}

/// `postdesk_web::serve` on a free loopback port over a fresh SQLite store with one
/// helpdesk, Support (portal on; `extra` TOML added to it), sending through the SMTP
/// server on `smtp_port` with the App's outbox sender.
struct Live {
    base: String,
    dir: tempfile::TempDir,
    store: Store,
    app: App,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Live {
    async fn start(smtp_port: u16, extra: &str) -> Live {
        let port = postdesk_testkit::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &format!("sqlite://{}", dir.path().join("postdesk.db").display()),
            dir.path(),
        )
        .await
        .unwrap();
        let text = format!(
            "name = \"Support\"\naddresses = [\"support@example.com\"]\nportal = true\n\
             portal_url = \"{base}/portal\"\n{extra}\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"support@example.com\"\n"
        );
        let hd = toml::from_str::<HelpdeskSettings>(&text)
            .unwrap()
            .compile()
            .unwrap();
        let registered = store.register_helpdesks(&[hd]).await.unwrap();
        let mut settings = Settings::default();
        settings.delivery.poll_secs = 1;
        let app = App::new(store.clone(), registered, settings);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let state = AppState::new(app.clone(), NoImap, WebSettings::default());
        let server = postdesk_web::serve(listener, state, stopped.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = server.await;
            }),
            tokio::spawn(app.outbox().sender(stopped)),
        ];
        Live {
            base,
            dir,
            store,
            app,
            stop,
            tasks,
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The hostile mails of `tests/hostile` (script tags, broken markup, CSS tricks, header
/// injection, path traversal, SVG attachments, URLs) in the portal, in Chromium, as
/// their sender sees them: nothing runs, nothing loads from elsewhere, no markup of
/// theirs is interpreted, their files are downloads with safe names.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_mails_run_nothing_in_the_portal() {
    use postdesk_testkit::browser::Browser;
    use postdesk_testkit::smtp::{SinkOptions, SmtpSink};
    use std::time::Duration;

    let sink = SmtpSink::start(SinkOptions::default());
    let live = Live::start(
        sink.port(),
        "[attachments]\nallowed_types = [\"image/*\", \"text/plain\", \"application/*\"]",
    )
    .await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut mails = Vec::new();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            mails.push(RawMail {
                source: postdesk_core::MailSource::File,
                location: path.display().to_string(),
                bytes: std::fs::read(&path).unwrap(),
            });
        }
    }
    let summary = live
        .app
        .intake()
        .run(mails.into_iter(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.created, 7);
    let browser = Browser::start().await;
    browser.goto(&format!("{}/portal/login", live.base)).await;
    browser
        .fill("input[name=address]", "mallory@attacker.example.net")
        .await;
    browser.submit("form[action='/portal/login/link']").await;
    browser.wait_for("section.message").await;
    // Acknowledgements of Mallory's mails go out too: wait for the link among them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let link = loop {
        let found = sink
            .received()
            .iter()
            .map(|m| postdesk_mail::parse(&m.raw))
            .find(|m| m.subject == "Support: your sign-in link")
            .and_then(|m| {
                m.text
                    .split_whitespace()
                    .find(|w| w.contains("/portal/link?"))
                    .map(str::to_string)
            });
        if found.is_some() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    .expect("the sign-in link");
    browser.goto(&link).await;
    browser.click("form[action='/portal/link'] button").await;
    browser.wait_for("table.portal-tickets").await;
    browser.assert_not_pwned().await;
    let links: Vec<String> = browser
        .execute(
            "return [...document.querySelectorAll('td.title a')].map(a => a.getAttribute('href'))",
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(links.len(), 7, "{links:?}");
    let cookie = browser
        .client()
        .get_named_cookie("postdesk_portal")
        .await
        .unwrap();
    let cookie = format!("postdesk_portal={}", cookie.value());
    let http = reqwest_like(&live.base, &cookie);
    for link in &links {
        browser.goto(&format!("{}{link}", live.base)).await;
        browser.wait_for("article.entry").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.assert_not_pwned().await;
        let report = browser
            .execute(
                r#"
                const own = location.origin;
                const bad = [];
                for (const e of document.body.querySelectorAll('*')) {
                    for (const a of e.attributes) {
                        if (a.name.startsWith('on')) bad.push('handler ' + e.tagName + ' ' + a.name);
                        if (['href', 'src', 'action', 'formaction', 'srcset', 'background', 'style'].includes(a.name)) {
                            const v = a.value.trim().toLowerCase();
                            if (a.name === 'style' || !v.startsWith('/')) bad.push('attribute ' + e.tagName + ' ' + a.name + '=' + a.value);
                        }
                    }
                    if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'BASE', 'META', 'STYLE', 'FRAME', 'IMG'].includes(e.tagName.toUpperCase()))
                        bad.push('element ' + e.tagName);
                }
                for (const r of performance.getEntriesByType('resource')) {
                    if (!r.name.startsWith(own)) bad.push('loaded ' + r.name);
                }
                return { bad, canary: document.body.innerText.includes('CANARY-') };
                "#,
            )
            .await;
        assert_eq!(report["bad"], serde_json::json!([]), "{link}: {report}");
        assert_eq!(
            report["canary"], true,
            "{link}: the mail's text was not shown"
        );
        let files: Vec<(String, String)> = browser
            .execute("return [...document.querySelectorAll('ul.attachments a')].map(a => [a.getAttribute('href'), a.textContent])")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
            .collect();
        for (href, name) in files {
            assert!(
                !name.contains('/') && !name.contains('\\') && !name.contains(".."),
                "unsafe name {name:?}"
            );
            let headers = http(&href).to_ascii_lowercase();
            assert!(headers.starts_with("http/1.1 200"), "{href}: {headers}");
            assert!(
                headers.contains("content-disposition: attachment;"),
                "{href}: {headers}"
            );
            assert!(
                headers.contains("content-type: application/octet-stream"),
                "{href}: {headers}"
            );
            assert!(
                headers.contains("x-content-type-options: nosniff"),
                "{href}: {headers}"
            );
        }
    }
    browser.close().await;
    live.stop().await;
}

/// A GET with the cookie over a plain socket: the status line and headers.
fn reqwest_like(base: &str, cookie: &str) -> impl Fn(&str) -> String + use<> {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://").to_string();
    let cookie = cookie.to_string();
    move |path: &str| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        text.split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Support's defaults: `created = "all-agents"`, `modified = "concerned"`.
async fn the_bell_counts_what_the_targets_name_and_never_the_agents_own_changes(engine: Engine) {
    let desk = desk(engine).await;
    let (sam, root) = (
        desk.agent_cookie().await,
        desk.agent_cookie_of("root").await,
    );
    let bell = |page: &str| -> i64 {
        page.split("<span class=\"count\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no bell in {page}"))
    };
    let count = |cookie: String| {
        let desk = &desk;
        async move { bell(&desk.get(&cookie, "/tickets").await.body) }
    };
    assert_eq!(
        (count(sam.clone()).await, count(root.clone()).await),
        (0, 0)
    );
    // A customer opens a ticket in the portal: every agent of Support hears of it.
    let (alice, csrf) = desk.sign_in("alice@acme.example").await;
    let support = desk.helpdesk_id("Support").to_string();
    let created = desk
        .multipart(
            &alice,
            "/portal/tickets",
            &[
                Part::Field("csrf", &csrf),
                Part::Field("helpdesk", &support),
                Part::Field("subject", "Bell test"),
                Part::Field("text", "Ring."),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id = desk.ticket_titled("Bell test").await;
    assert_eq!(
        (count(sam.clone()).await, count(root.clone()).await),
        (1, 1)
    );
    // The admin assigns it to sam: sam is concerned, the admin acted.
    let root_csrf = csrf_of(&desk.get(&root, &format!("/tickets/{id}")).await.body);
    let assigned = desk
        .post(
            &root,
            &format!("/tickets/{id}/update"),
            &format!("csrf={root_csrf}&assignee=sam"),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER, "{}", assigned.body);
    assert_eq!(
        (count(sam.clone()).await, count(root.clone()).await),
        (2, 1)
    );
    // By mail too (`mail_modified = "concerned"`): to sam, through the outbox.
    let change_mails = || async {
        desk.store
            .outbox_rows(None, 200)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == Event::TicketModified)
            .map(|r| (r.recipients, r.subject))
            .collect::<Vec<_>>()
    };
    let mails = change_mails().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "sam@example.com");
    assert!(mails[0].1.ends_with("Bell test — changed"), "{mails:?}");
    // Sam's own note tells nobody: he is the only one concerned.
    let sam_csrf = csrf_of(&desk.get(&sam, &format!("/tickets/{id}")).await.body);
    desk.post(
        &sam,
        &format!("/tickets/{id}/note"),
        &format!("csrf={sam_csrf}&text=On+it"),
    )
    .await;
    assert_eq!(
        (count(sam.clone()).await, count(root.clone()).await),
        (2, 1)
    );
    assert_eq!(change_mails().await.len(), 1, "no mail of sam's own note");
    // The admin watches; the customer answers: both are told.
    let watched = desk
        .post(
            &root,
            &format!("/tickets/{id}/watch"),
            &format!("csrf={root_csrf}&watch=true"),
        )
        .await;
    assert_eq!(watched.status, StatusCode::SEE_OTHER);
    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    desk.multipart(
        &alice,
        &format!("/portal/tickets/{id}/reply"),
        &[
            Part::Field("csrf", &csrf_of(&page.body)),
            Part::Field("text", "Still ringing."),
        ],
    )
    .await;
    assert_eq!(
        (count(sam.clone()).await, count(root.clone()).await),
        (3, 2)
    );
    // The list links each to its ticket; read one by one or all at once.
    let list = desk.get(&sam, "/notifications").await.body;
    assert!(list.contains(&format!("href=\"/tickets/{id}\"")), "{list}");
    assert!(list.contains("New ticket [HD#"), "{list}");
    assert!(
        list.contains("Assignee changed from none to sam by root."),
        "{list}"
    );
    assert!(list.contains("alice@acme.example wrote on"), "{list}");
    assert!(!list.contains("sam added a note"), "{list}");
    let one: String = list
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let sam_csrf = csrf_of(&list);
    desk.post(
        &sam,
        "/notifications/read",
        &format!("csrf={sam_csrf}&id={one}"),
    )
    .await;
    assert_eq!(count(sam.clone()).await, 2);
    // Another agent's notification is not sam's to mark.
    let roots = desk.get(&root, "/notifications").await.body;
    let theirs: String = roots
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let refused = desk
        .post(
            &sam,
            "/notifications/read",
            &format!("csrf={sam_csrf}&id={theirs}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(count(root.clone()).await, 2);
    desk.post(&sam, "/notifications/read", &format!("csrf={sam_csrf}"))
        .await;
    assert_eq!(count(sam.clone()).await, 0);
}

async fn the_api_has_notifications_watching_and_attachment_visibility(engine: Engine) {
    let desk = desk(engine).await;
    let token = postdesk_web::new_token();
    desk.store
        .create_api_token("sam", "test", &postdesk_web::token_hash(&token), None)
        .await
        .unwrap();
    let api = |method: Method, path: String, body: Option<serde_json::Value>| {
        let desk = &desk;
        let token = token.clone();
        async move {
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
            let reply = desk.send(request.body(body).unwrap()).await;
            let json: serde_json::Value = serde_json::from_str(&reply.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.body));
            (reply.status, json)
        }
    };
    let alices = desk.ticket_titled("Printer jams").await;
    let bobs = desk.ticket_titled("Bob's secret").await;
    let (status, ticket) = api(Method::GET, format!("/api/tickets/{alices}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let attachment = &ticket["thread"][0]["attachments"][0];
    assert_eq!(attachment["visibility"], "public", "{ticket}");
    let attachment_id = attachment["id"].as_i64().unwrap();
    let (status, changed) = api(
        Method::PATCH,
        format!("/api/attachments/{attachment_id}"),
        Some(serde_json::json!({ "visibility": "internal" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["ticket_id"], alices.get());
    let (_, ticket) = api(Method::GET, format!("/api/tickets/{alices}"), None).await;
    assert_eq!(
        ticket["thread"][0]["attachments"][0]["visibility"],
        "internal"
    );
    let (status, _) = api(
        Method::PATCH,
        format!("/api/attachments/{attachment_id}"),
        Some(serde_json::json!({ "visibility": "secret" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Watching, then a customer's answer: sam is told (concerned), via the API too.
    let (status, watched) = api(
        Method::POST,
        format!("/api/tickets/{bobs}/watch"),
        Some(serde_json::json!({ "watch": true })),
    )
    .await;
    assert_eq!(
        (status, watched["watching"].clone()),
        (StatusCode::OK, serde_json::json!(true))
    );
    let (bob, _) = desk.sign_in("bob@other.example").await;
    let page = desk.get(&bob, &format!("/portal/tickets/{bobs}")).await;
    desk.multipart(
        &bob,
        &format!("/portal/tickets/{bobs}/reply"),
        &[
            Part::Field("csrf", &csrf_of(&page.body)),
            Part::Field("text", "Any news?"),
        ],
    )
    .await;
    let (status, list) = api(Method::GET, "/api/notifications".into(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["unread"], 1, "{list}");
    assert_eq!(list["notifications"][0]["ticket_id"], bobs.get());
    assert_eq!(list["notifications"][0]["event"], "modified");
    let (status, marked) = api(
        Method::POST,
        "/api/notifications/read".into(),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(
        (status, marked["marked"].clone()),
        (StatusCode::OK, serde_json::json!(1))
    );
    let (_, list) = api(Method::GET, "/api/notifications".into(), None).await;
    assert_eq!(list["unread"], 0);
    // The document names the new routes and objects.
    let (_, doc) = api(Method::GET, "/api/openapi.json".into(), None).await;
    for path in [
        "/api/notifications",
        "/api/notifications/read",
        "/api/tickets/{id}/watch",
        "/api/attachments/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let documented: Vec<String> = doc["components"]["schemas"]["Notification"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut given: Vec<String> = list["notifications"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    given.sort();
    let mut documented = documented;
    documented.sort();
    assert_eq!(given, documented);
}

/// A customer's answer in the portal is a follow-up like a mail's: at Sales
/// (`recalculate_deadline = true`) it counts the running resolution deadline anew from
/// the answer, replacing one an agent had moved far away.
async fn a_portal_answer_counts_the_running_deadlines_anew_where_the_helpdesk_says_so(
    engine: Engine,
) {
    use postdesk_core::sla::Target;
    let desk = desk(engine).await;
    let (alice, csrf) = desk.sign_in("alice@acme.example").await;
    let sales = desk.helpdesk_id("Sales").to_string();
    let created = desk
        .multipart(
            &alice,
            "/portal/tickets",
            &[
                Part::Field("csrf", &csrf),
                Part::Field("helpdesk", &sales),
                Part::Field("subject", "Quote for ten printers"),
                Part::Field("text", "What would ten cost?"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id = desk.ticket_titled("Quote for ten printers").await;
    let resolution = |list: Vec<postdesk_core::sla::Deadline>| {
        list.into_iter()
            .find(|d| d.target == Target::Resolution)
            .expect("a resolution deadline")
    };
    let forty_hours = 40 * 3600;
    let first = resolution(desk.store.deadlines(id).await.unwrap());
    assert_eq!(first.due_at - first.started_at, forty_hours);
    let dana = desk
        .store
        .save_agent("dana", None, Role::Agent, None, &["Sales".into()])
        .await
        .unwrap();
    let far = first.due_at + 365 * 24 * 3600;
    desk.app
        .deadlines()
        .set_by_hand(id, dana, Target::Resolution, far)
        .await
        .unwrap();
    let moved = resolution(desk.store.deadlines(id).await.unwrap());
    assert!(moved.by_hand && moved.due_at == far, "{moved:?}");

    let page = desk.get(&alice, &format!("/portal/tickets/{id}")).await;
    let answered = desk
        .multipart(
            &alice,
            &format!("/portal/tickets/{id}/reply"),
            &[
                Part::Field("csrf", &csrf_of(&page.body)),
                Part::Field("text", "And with toner?"),
            ],
        )
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER, "{}", answered.body);
    let anew = resolution(desk.store.deadlines(id).await.unwrap());
    assert!(!anew.by_hand, "{anew:?}");
    assert!(anew.started_at >= first.started_at, "{anew:?}");
    assert_eq!(anew.due_at - anew.started_at, forty_hours, "{anew:?}");
}
