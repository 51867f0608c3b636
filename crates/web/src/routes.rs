//! Every route, in one table: the router is built from it and the access test walks it,
//! so a route cannot be added without being checked.

use axum::http::Method;
use axum::routing::{MethodRouter, get, patch, post, put};

use axum::extract::DefaultBodyLimit;

use crate::{
    AppState, api, deadlines, files, interventions, openapi, operations, pages, portal, reports,
};

pub struct Route {
    pub method: Method,
    /// Axum path syntax; `{id}`-style parameters.
    pub path: &'static str,
    /// Reachable without signing in (only the sign-in page, its style sheet and the
    /// health probes).
    pub public: bool,
    pub handler: MethodRouter<AppState>,
}

pub(crate) fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        public: false,
        handler,
    }
}

pub(crate) fn public(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        public: true,
        ..route(method, path, handler)
    }
}

/// The attachment route, with its parameter as a placeholder for [`attachment_url`].
const ATTACHMENT_ROUTE: &str = "/attachments/{sha256}";

/// Where an attachment is served, by its hex SHA-256: download links, and the
/// `cid:` images of a mail's HTML (the pipeline is given this when it parses).
pub fn attachment_url(sha256: &str) -> String {
    ATTACHMENT_ROUTE.replace("{sha256}", sha256)
}

pub fn table() -> Vec<Route> {
    use Method as M;
    vec![
        public(M::GET, "/login", get(pages::login_form)),
        public(M::POST, "/login", post(pages::login)),
        public(M::GET, "/static/app.css", get(files::stylesheet)),
        // Issue 19: for load balancers, orchestrators and monitoring.
        public(M::GET, "/healthz", get(operations::healthz)),
        public(M::GET, "/readyz", get(operations::readyz)),
        route(M::POST, "/logout", post(pages::logout)),
        route(M::GET, "/", get(pages::home)),
        route(M::GET, "/tickets", get(pages::tickets)),
        route(M::GET, "/tickets/{id}", get(pages::ticket)),
        route(M::POST, "/tickets/{id}/reply", post(pages::reply)),
        route(M::POST, "/tickets/{id}/note", post(pages::note)),
        route(M::POST, "/tickets/{id}/update", post(pages::update_ticket)),
        route(M::POST, "/tickets/{id}/deadline", post(deadlines::set_page)),
        route(
            M::POST,
            "/tickets/{id}/interventions",
            post(interventions::add_page),
        ),
        route(M::GET, "/interventions", get(interventions::mine)),
        // The weekly reports (issue 18).
        route(M::GET, "/reports", get(reports::page)),
        route(M::GET, "/reports.csv", get(reports::csv)),
        route(
            M::POST,
            "/interventions/{id}",
            post(interventions::change_page),
        ),
        // Issue 17: files agents add, and what the customer may see of attachments.
        route(
            M::POST,
            "/tickets/{id}/files",
            post(portal::agent::add_files).layer(DefaultBodyLimit::max(portal::MAX_UPLOAD_BYTES)),
        ),
        route(
            M::POST,
            "/tickets/{id}/files/visibility",
            post(portal::agent::set_visibility),
        ),
        route(M::GET, "/settings/portal", get(portal::agent::settings)),
        route(M::GET, "/notifications", get(portal::notifications::list)),
        route(
            M::POST,
            "/notifications/read",
            post(portal::notifications::mark_read),
        ),
        route(
            M::POST,
            "/tickets/{id}/watch",
            post(portal::notifications::watch),
        ),
        route(
            M::POST,
            "/settings/portal/organizations",
            post(portal::agent::share_tickets),
        ),
        route(M::GET, "/contacts", get(pages::contacts)),
        route(M::GET, "/contacts/{id}", get(pages::contact)),
        route(M::POST, "/contacts/{id}", post(pages::rename_contact)),
        route(
            M::POST,
            "/contacts/{id}/addresses",
            post(pages::add_address),
        ),
        route(
            M::POST,
            "/contacts/{id}/addresses/remove",
            post(pages::remove_address),
        ),
        route(M::GET, "/organizations", get(pages::organizations)),
        route(M::GET, "/organizations/{id}", get(pages::organization)),
        route(M::GET, "/mailboxes", get(pages::mailboxes)),
        route(
            M::POST,
            "/mailboxes/{index}/check",
            post(pages::check_mailbox),
        ),
        route(
            M::POST,
            "/mailboxes/{index}/scan",
            post(pages::scan_mailbox),
        ),
        route(M::GET, "/failed", get(pages::failed)),
        route(M::POST, "/failed/{id}/retry", post(pages::retry_failed)),
        route(M::POST, "/failed/{id}/dismiss", post(pages::dismiss_failed)),
        route(M::GET, ATTACHMENT_ROUTE, get(files::attachment)),
        route(M::GET, "/raw/{intake_id}", get(files::raw_mail)),
        route(M::GET, "/api/openapi.json", get(openapi::document)),
        route(M::GET, "/api/me", get(api::me)),
        route(M::GET, "/api/tickets", get(api::tickets)),
        route(M::GET, "/api/tickets/{id}", get(api::ticket)),
        route(M::PATCH, "/api/tickets/{id}", patch(api::update_ticket)),
        route(M::POST, "/api/tickets/{id}/reply", post(api::reply)),
        route(M::POST, "/api/tickets/{id}/notes", post(api::note)),
        route(
            M::GET,
            "/api/tickets/{id}/deadlines",
            get(deadlines::list_api),
        ),
        route(
            M::PUT,
            "/api/tickets/{id}/deadlines/{target}",
            put(deadlines::set_api),
        ),
        route(
            M::GET,
            "/api/tickets/{id}/interventions",
            get(interventions::list_api),
        ),
        route(
            M::POST,
            "/api/tickets/{id}/interventions",
            post(interventions::add_api),
        ),
        route(
            M::PATCH,
            "/api/interventions/{id}",
            patch(interventions::change_api),
        ),
        route(M::GET, "/api/reports", get(reports::api)),
        route(M::GET, "/api/contacts", get(api::contacts)),
        route(M::GET, "/api/contacts/{id}", get(api::contact)),
        route(M::GET, "/api/organizations", get(api::organizations)),
        route(M::GET, "/api/mailboxes", get(api::mailboxes)),
        route(M::GET, "/api/failed", get(api::failed)),
        route(M::POST, "/api/failed/{id}/retry", post(api::retry_failed)),
        route(
            M::POST,
            "/api/failed/{id}/dismiss",
            post(api::dismiss_failed),
        ),
        // Issue 17: notifications, watchers and what the customer sees of attachments.
        route(
            M::GET,
            "/api/notifications",
            get(portal::notifications::api_list),
        ),
        route(
            M::POST,
            "/api/notifications/read",
            post(portal::notifications::api_mark_read),
        ),
        route(
            M::POST,
            "/api/tickets/{id}/watch",
            post(portal::notifications::api_watch),
        ),
        route(
            M::PATCH,
            "/api/attachments/{id}",
            patch(portal::notifications::api_visibility),
        ),
    ]
}
