//! The agents' web UI and REST API (axum): tickets and their threads, replies and
//! notes, contacts and organizations, mailbox health and the failed queue.
//!
//! This crate is the HTTP side only. What a page or an API call does, and whether the
//! agent may, is the application layer's desk (`postdesk_app::desk`, reached through
//! [`AppState::desk`]); the mailbox buttons go through the `MailboxControl` the binary
//! hands to [`AppState::new`], so the web does not know the IMAP code.
//!
//! Pages are rendered on the server (minijinja, auto-escaped) and use no JavaScript at
//! all, so the Content-Security-Policy can forbid every script: a mail that slipped
//! past the HTML sanitizer still could not run one. Every route is listed once in
//! [`routes::table`]; all but sign-in and the stylesheet take the [`auth::Agent`]
//! extractor (or [`api::Changing`], built on it), which a test checks by walking that
//! table. A state change reaches its handler only through an extractor that checks the
//! session's CSRF token: [`auth::CsrfForm`] for the pages' forms, [`api::Changing`] for the API.

// The OpenAPI document is one `json!` literal, deeper than the default limit allows.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
// Deadlines on the pages and in the API (issue 18).
mod deadlines;
mod files;
// Issue 20: the providers' change notifications (unauthenticated, checked).
pub mod hooks;
// Interventions on the pages and in the API (issue 18).
mod interventions;
pub mod model;
mod openapi;
// Issue 19: /healthz, /readyz, request latency and the /metrics listener.
pub mod operations;
mod pages;
// Issue 17: the customer portal at /portal (its own routes, sessions and pages).
pub mod portal;
mod query;
// The weekly reports: page with SVG charts, CSV, API (issue 18).
mod reports;
pub mod routes;
mod views;

use postdesk_core::error::{BoxError, chain};
use postdesk_core::id::{HelpdeskId, TicketNumber};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postdesk_app::App;
use postdesk_app::desk::{Desk, DeskError};
use postdesk_app::mailboxes::MailboxControl;
use postdesk_store::access::LoginLimits;
use postdesk_store::{RegisteredHelpdesk, Store, StoreError};
use tokio::sync::watch;

pub use auth::{hash_password, new_token, token_hash};

/// How the UI is served.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Mark cookies `Secure`: the UI is reached over HTTPS (directly or through a proxy).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (for the sign-in limits).
    pub trusted_proxies: Vec<auth::TrustedProxy>,
    pub login_limits: LoginLimits,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    app: App,
    mailboxes: Box<dyn MailboxControl>,
    settings: WebSettings,
    templates: minijinja::Environment<'static>,
}

impl AppState {
    /// `mailboxes` does the mailbox page's "test connection" and "scan now" (the
    /// binary lends its IMAP code; the web does not know it).
    pub fn new(app: App, mailboxes: impl MailboxControl + 'static, settings: WebSettings) -> Self {
        Self(Arc::new(Inner {
            app,
            mailboxes: Box::new(mailboxes),
            settings,
            templates: views::environment(),
        }))
    }

    pub fn app(&self) -> &App {
        &self.0.app
    }

    pub fn store(&self) -> &Store {
        self.0.app.store()
    }

    /// What `agent` may do, limited to what they may see.
    pub fn desk<'a>(&'a self, agent: &'a auth::Agent) -> Desk<'a> {
        self.0.app.desk(&agent.account)
    }

    pub fn helpdesk(&self, id: HelpdeskId) -> Option<&RegisteredHelpdesk> {
        self.0.app.helpdesk(id)
    }

    /// A ticket's reference as its helpdesk writes it in subjects (`[HD#42]`).
    pub fn reference(&self, helpdesk_id: HelpdeskId, number: TicketNumber) -> String {
        match self.helpdesk(helpdesk_id) {
            Some(hd) => hd.config.reference.render(number),
            None => format!("#{number}"),
        }
    }

    fn mailboxes(&self) -> &dyn MailboxControl {
        self.0.mailboxes.as_ref()
    }
}

/// The router with every route and the security headers.
pub fn router(state: AppState) -> Router {
    routes::table()
        .into_iter()
        // The portal's routes: a table of their own (see `portal`).
        .chain(portal::table())
        // The providers' notification endpoints: public, checked by their secrets.
        .chain(hooks::table())
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.handler)
        })
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            operations::track_requests,
        ))
        .with_state(state)
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

/// No script may run, nothing is loaded from elsewhere, the pages cannot be framed.
/// Style attributes are allowed for the formatting of mails (the sanitizer keeps only
/// harmless properties); style sheets come from this site only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self'; style-src 'self'; \
     style-src-attr 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// What can go wrong in a request, each with the answer the user sees.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A page asked for without a session: go and sign in.
    #[error("sign in first")]
    SignIn,
    /// An API call without a valid token or session.
    #[error(
        "missing or invalid credentials: send `Authorization: Bearer <token>` (see `postdesk agents token`)"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The change was made on a page that is out of date (409).
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed sign-ins; try again in {0} minute(s)")]
    TooManyAttempts(u64),
    /// The database is out of reach or every connection stayed busy (503): the
    /// request may be tried again.
    #[error("the database is busy or out of reach; try again in a moment")]
    Unavailable(String),
    /// The server's fault (500): the cause is logged with its chain, the user sees
    /// a generic message.
    #[error(transparent)]
    Internal(BoxError),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => WebError::NotFound(m),
            StoreError::Invalid(m) => WebError::BadRequest(m),
            StoreError::Conflict(m) => WebError::Conflict(m),
            other if other.is_unavailable() => WebError::Unavailable(other.to_string()),
            other => WebError::Internal(other.into()),
        }
    }
}

impl From<DeskError> for WebError {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::NotFound(m) => WebError::NotFound(m),
            DeskError::Forbidden(m) => WebError::Forbidden(m),
            DeskError::Invalid(m) => WebError::BadRequest(m),
            DeskError::Store(e) => e.into(),
            other @ (DeskError::Intake(_) | DeskError::Reply(_) | DeskError::Internal(_)) => {
                WebError::Internal(other.into())
            }
        }
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::SignIn => StatusCode::SEE_OTHER,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What is shown: internal details go to the log, not to the browser.
    fn public_message(&self) -> String {
        match self {
            WebError::Internal(detail) => {
                tracing::error!(error = %chain(detail.as_ref()), "request failed");
                "something went wrong on the server; the details are in postdesk's log".into()
            }
            WebError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "request refused: the database is unavailable");
                self.to_string()
            }
            other => other.to_string(),
        }
    }

    /// The error as JSON, for the API.
    pub fn into_json(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "error": self.public_message() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        retry_later(status, response)
    }
}

/// A 503 says when to try again.
fn retry_later(status: StatusCode, mut response: Response) -> Response {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn => Redirect::to("/login").into_response(),
            WebError::Unauthorized => self.into_json(),
            other => {
                let status = other.status();
                let page = views::error_page(status, &other.public_message());
                retry_later(status, (status, axum::response::Html(page)).into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_database_is_a_503_that_says_when_to_try_again() {
        let error = WebError::from(StoreError::Busy("all 16 connections in use".into()));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let conflict = WebError::from(StoreError::Conflict("changed meanwhile".into()));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
    }
}
