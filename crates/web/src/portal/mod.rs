//! The customer portal at `/portal` (issue 17): contacts sign in with a one-time link
//! mailed to them (or a password they set), see their tickets (and their
//! organization's, where it shares them) with the customer-visible thread only, open
//! tickets, answer and, where allowed, close them.
//!
//! Its routes are a table of their own ([`table`]), mounted beside the agents' one:
//! every route but the sign-in ones takes the [`auth::Contact`] extractor, which reads
//! only the portal's cookie and sessions, and no portal route takes an agent. A test
//! walks this table (`crates/web/tests/portal.rs`). What a contact may read and do is
//! the application's portal service (`postdesk_app::portal`) over the store's
//! `portal` queries; this module is the HTTP side. Pages use the agents' security
//! headers (a CSP without any script) and escape every value.

pub(crate) mod agent;
pub mod auth;
pub(crate) mod notifications;
pub(crate) mod pages;

use std::sync::LazyLock;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use postdesk_app::portal::PortalError;
use postdesk_core::error::{BoxError, chain};
use postdesk_store::StoreError;

use crate::WebError;
use crate::routes::{Route, public, route};

/// The largest request a portal form may send (a ticket with its files); intake's
/// own limit on a mail's size still applies to what it becomes.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

/// Every portal route.
pub fn table() -> Vec<Route> {
    use Method as M;
    let uploads = || DefaultBodyLimit::max(MAX_UPLOAD_BYTES);
    vec![
        public(M::GET, "/portal/login", get(pages::login_form)),
        public(M::POST, "/portal/login/link", post(pages::request_link)),
        public(
            M::POST,
            "/portal/login/password",
            post(pages::password_login),
        ),
        public(M::GET, "/portal/link", get(pages::link_page)),
        public(M::POST, "/portal/link", post(pages::redeem_link)),
        public(M::GET, "/portal/static/portal.css", get(pages::stylesheet)),
        route(M::GET, "/portal", get(pages::home)),
        route(M::POST, "/portal/logout", post(pages::logout)),
        route(M::GET, "/portal/tickets", get(pages::tickets)),
        route(M::GET, "/portal/tickets/new", get(pages::new_ticket)),
        route(
            M::POST,
            "/portal/tickets",
            post(pages::create_ticket).layer(uploads()),
        ),
        route(M::GET, "/portal/tickets/{id}", get(pages::ticket)),
        route(
            M::POST,
            "/portal/tickets/{id}/reply",
            post(pages::reply).layer(uploads()),
        ),
        route(M::POST, "/portal/tickets/{id}/close", post(pages::close)),
        route(M::GET, "/portal/attachments/{id}", get(pages::attachment)),
        route(M::GET, "/portal/entries/{id}/raw", get(pages::raw_mail)),
        route(M::GET, "/portal/account", get(pages::account)),
        route(
            M::POST,
            "/portal/account/password",
            post(pages::set_password),
        ),
    ]
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "portal/base.html",
        include_str!("../../templates/portal/base.html"),
    ),
    (
        "portal/login.html",
        include_str!("../../templates/portal/login.html"),
    ),
    (
        "portal/message.html",
        include_str!("../../templates/portal/message.html"),
    ),
    (
        "portal/tickets.html",
        include_str!("../../templates/portal/tickets.html"),
    ),
    (
        "portal/ticket.html",
        include_str!("../../templates/portal/ticket.html"),
    ),
    (
        "portal/new.html",
        include_str!("../../templates/portal/new.html"),
    ),
    (
        "portal/account.html",
        include_str!("../../templates/portal/account.html"),
    ),
    // The agents' page of the portal's settings (extends the agents' base.html).
    (
        "portal/settings.html",
        include_str!("../../templates/portal/settings.html"),
    ),
    (
        "portal/notifications.html",
        include_str!("../../templates/portal/notifications.html"),
    ),
];

/// The agents' template environment (its filters) with the portal's pages added.
pub(crate) static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = crate::views::environment();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env
});

/// Renders a portal page; `me` is the signed-in contact (their name and the CSRF token).
fn render(
    template: &str,
    me: Option<(&str, &str)>,
    context: minijinja::Value,
) -> Result<Html<String>, PageError> {
    let (name, csrf) = me.unwrap_or_default();
    let full = minijinja::context! {
        me => me.map(|_| name),
        csrf,
        ..context
    };
    ENVIRONMENT
        .get_template(template)
        .and_then(|t| t.render(full))
        .map(Html)
        // minijinja's alternate form says where in the template: kept as the text.
        .map_err(|e| PageError::Internal(format!("rendering {template}: {e:#}").into()))
}

/// What can go wrong in a portal request, each with what the contact sees. Details
/// of server errors go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not signed in (or the session ended): the portal's sign-in page.
    #[error("sign in first")]
    SignIn,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooMany(String),
    /// The server's fault: the cause is logged with its chain, the contact sees a
    /// generic message.
    #[error(transparent)]
    Internal(BoxError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        WebError::from(e).into()
    }
}

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        match e {
            WebError::SignIn | WebError::Unauthorized => PageError::SignIn,
            WebError::NotFound(m) => PageError::NotFound(m),
            WebError::Forbidden(m) => PageError::Forbidden(m),
            WebError::BadRequest(m) | WebError::Conflict(m) => PageError::BadRequest(m),
            WebError::TooManyAttempts(minutes) => PageError::TooMany(format!(
                "too many failed sign-ins; try again in {minutes} minute(s)"
            )),
            WebError::Internal(e) => PageError::Internal(e),
            WebError::Unavailable(m) => PageError::Internal(m.into()),
        }
    }
}

impl From<PortalError> for PageError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::NotFound(m) => PageError::NotFound(m),
            PortalError::Invalid(m) => PageError::BadRequest(m),
            too_many @ PortalError::TooMany(_) => PageError::TooMany(too_many.to_string()),
            PortalError::Store(e) => e.into(),
            other @ (PortalError::Intake(_) | PortalError::Internal(_)) => {
                PageError::Internal(other.into())
            }
        }
    }
}

/// For the agents' routes that read the portal's multipart forms.
impl From<PageError> for WebError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::SignIn => WebError::SignIn,
            PageError::NotFound(m) => WebError::NotFound(m),
            PageError::Forbidden(m) => WebError::Forbidden(m),
            PageError::BadRequest(m) | PageError::TooMany(m) => WebError::BadRequest(m),
            PageError::Internal(e) => WebError::Internal(e),
        }
    }
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::SignIn => StatusCode::SEE_OTHER,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match self {
            PageError::SignIn => return Redirect::to("/portal/login").into_response(),
            PageError::Internal(detail) => {
                tracing::error!(error = %chain(detail.as_ref()), "portal request failed");
                "something went wrong on the server; please try again later".to_string()
            }
            other => other.to_string(),
        };
        let page = render(
            "portal/message.html",
            None,
            minijinja::context! { title => status.canonical_reason().unwrap_or("Error"), error => message.clone() },
        )
        .map(|html| html.0)
        .unwrap_or_else(|_| crate::views::error_page(status, &message));
        (status, Html(page)).into_response()
    }
}
