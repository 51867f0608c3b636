//! What operators and their tools ask of the web listener: `/healthz` (the process
//! answers) and `/readyz` (the database answers with a current schema), both without
//! signing in and answering no secret; the latency of every request, recorded by route
//! template ([`track_requests`]); and `/metrics` on a listener of its own
//! ([`metrics_router`]), for Prometheus.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use postdesk_app::App;
use postdesk_store::operations::Readiness;

use crate::AppState;

/// A readiness probe waits this long for the database, then answers "not ready".
const READINESS_WAIT: Duration = Duration::from_secs(5);

/// `GET /healthz`: the process is alive and serving requests.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database answers and its schema is this binary's, 503
/// otherwise. The answer says which, in a few words; the database's own error (which
/// may name hosts, users or paths) goes to the log only.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = tokio::time::timeout(READINESS_WAIT, state.store().readiness())
        .await
        .unwrap_or_else(|_| Readiness::Unavailable("no answer within 5 s".into()));
    let unready = |message: String| (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    match readiness {
        Readiness::Ready { schema } => format!("ready (schema {schema})\n").into_response(),
        Readiness::SchemaBehind { database, binary } => unready(format!(
            "not ready: the schema is at {database}, this postdesk needs {binary} (run `postdesk db migrate`)\n"
        )),
        Readiness::SchemaTooNew { database, binary } => unready(format!(
            "not ready: the schema is at {database}, newer than this postdesk's {binary}\n"
        )),
        Readiness::Unavailable(detail) => {
            tracing::warn!(error = %detail, "readiness: the database does not answer");
            unready("not ready: the database does not answer\n".into())
        }
    }
}

/// Times every request and records it under its route's template (`/tickets/{id}`,
/// never the path asked for, so ids cannot multiply the series); a path no route takes
/// is `unmatched`.
pub(crate) async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.app().metrics().observe_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The router of the metrics listener (`[metrics] listen`): `GET /metrics` only.
/// Nothing on it needs signing in, so it belongs on an address only Prometheus reaches.
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn metrics(State(app): State<App>) -> Response {
    let text = app.metrics().render(app.store()).await;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Serves [`metrics_router`] on `listener` until `shutdown` turns true.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    app: App,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(app))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
