//! The probes operators use (`/healthz`, `/readyz`) against a real SQLite file and a
//! real PostgreSQL server that go away and come back, and the request latency series
//! they leave in `/metrics`, labelled by route template.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox, MailboxControl, Pending};
use postdesk_app::{App, Settings, intake::Summary};
use postdesk_store::Store;
use postdesk_testkit::postgres::PostgresServer;
use postdesk_web::{AppState, WebSettings, router};
use tower::ServiceExt;

struct NoImap;

impl MailboxControl for NoImap {
    fn check<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Vec<CheckStep>> {
        Box::pin(async { Vec::new() })
    }

    fn scan<'a>(&'a self, _: &'a ConfiguredMailbox) -> Pending<'a, Result<Summary, String>> {
        Box::pin(async { Err("no mailboxes here".into()) })
    }
}

async fn app_on(url: &str, data: &std::path::Path) -> (App, Router) {
    let store = Store::open(url, data).await.unwrap();
    let app = App::new(store, Vec::new(), Settings::default());
    let web = router(AppState::new(app.clone(), NoImap, WebSettings::default()));
    (app, web)
}

async fn get(web: &Router, path: &str) -> (StatusCode, String) {
    let reply = web
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = reply.status();
    let body = axum::body::to_bytes(reply.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Asks `/readyz` until it answers `want` (a pooled connection may need one failed
/// query to notice that its server went away), at most 15 s.
async fn readyz_until(web: &Router, want: StatusCode) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(web, "/readyz").await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status} ({body:?}), never {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_follows_the_sqlite_file_and_healthz_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("db");
    std::fs::create_dir(&folder).unwrap();
    let url = format!("sqlite://{}", folder.join("postdesk.db").display());
    let (_app, web) = app_on(&url, dir.path()).await;

    assert_eq!(get(&web, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    let (status, body) = get(&web, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("ready (schema "), "{body}");

    // The database's folder goes away (a lost mount): not ready, though the process is
    // alive, and the answer names no path.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&folder, &moved).unwrap();
    let body = readyz_until(&web, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body, "not ready: the database does not answer\n");
    assert!(!body.contains(dir.path().to_str().unwrap()));
    assert_eq!(get(&web, "/healthz").await.0, StatusCode::OK);

    // Back where it was: ready again, without a restart.
    std::fs::rename(&moved, &folder).unwrap();
    let body = readyz_until(&web, StatusCode::OK).await;
    assert!(body.starts_with("ready"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_postgresql_server_that_stops_and_starts() {
    let mut server = PostgresServer::start().expect("a PostgreSQL for the tests");
    let dir = tempfile::tempdir().unwrap();
    let (_app, web) = app_on(&server.fresh_database(), dir.path()).await;
    let body = readyz_until(&web, StatusCode::OK).await;
    assert!(body.starts_with("ready (schema "), "{body}");

    tokio::task::block_in_place(|| server.stop());
    let body = readyz_until(&web, StatusCode::SERVICE_UNAVAILABLE).await;
    // Not the server's words, which name the host and the user.
    assert_eq!(body, "not ready: the database does not answer\n");
    assert_eq!(get(&web, "/healthz").await.0, StatusCode::OK);

    tokio::task::block_in_place(|| server.start_again()).unwrap();
    readyz_until(&web, StatusCode::OK).await;
}

#[tokio::test]
async fn request_latency_is_recorded_by_route_template_not_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("postdesk.db").display());
    let (app, web) = app_on(&url, dir.path()).await;
    for id in [1, 2, 3, 987654] {
        // Without a session: a redirect to the sign-in, timed all the same.
        assert_eq!(
            get(&web, &format!("/tickets/{id}")).await.0,
            StatusCode::SEE_OTHER
        );
    }
    get(&web, "/no/such/page/4711").await;
    get(&web, "/readyz").await;
    let text = app.metrics().render(app.store()).await;
    let count = |labels: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("postdesk_http_request_duration_seconds_count{") && l.contains(labels)
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse::<u64>().unwrap())
    };
    assert_eq!(
        count(r#"route="/tickets/{id}",status="303""#),
        Some(4),
        "{text}"
    );
    assert_eq!(count(r#"route="/readyz",status="200""#), Some(1), "{text}");
    assert_eq!(count(r#"route="unmatched""#), Some(1), "{text}");
    assert!(!text.contains("987654") && !text.contains("4711"), "{text}");
    // Reads waited for their connections, and the store's gauges were read.
    assert!(
        text.contains(r#"postdesk_db_connection_wait_seconds_count{connection="read"}"#),
        "{text}"
    );
    assert!(text.contains("postdesk_database_up 1"), "{text}");
    assert!(text.contains("postdesk_failed_queue_mails 0"), "{text}");
}

#[tokio::test]
async fn mailbox_lag_grows_while_mail_waits_and_drops_to_zero_once_it_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("postdesk.db").display());
    let (app, _web) = app_on(&url, dir.path()).await;
    let metrics = app.metrics();
    let lag = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(r#"postdesk_mailbox_lag_seconds{helpdesk="Support",mailbox="inbox"}"#)
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse::<i64>().unwrap())
    };
    assert_eq!(lag(&metrics.render(app.store()).await), None);
    let arrived = postdesk_store::now() - 120;
    metrics.set_mailbox_waiting_since("Support", "inbox", Some(arrived));
    let first = lag(&metrics.render(app.store()).await).unwrap();
    assert!((120..130).contains(&first), "{first}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = lag(&metrics.render(app.store()).await).unwrap();
    assert!(
        later > first,
        "counted at each scrape: {first} then {later}"
    );
    metrics.set_mailbox_waiting_since("Support", "inbox", None);
    assert_eq!(lag(&metrics.render(app.store()).await), Some(0));
}
