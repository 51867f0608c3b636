//! Page templates (compiled into the binary; no build step, nothing fetched at run time).
//! minijinja escapes every value in `.html` templates; the one exception is a mail's HTML
//! body, which was sanitized when it was stored and is marked safe in `ticket.html`.

use axum::http::StatusCode;
use axum::response::Html;
use minijinja::{Environment, Value};

use crate::WebError;
use crate::auth::Agent;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("tickets.html", include_str!("../templates/tickets.html")),
    ("ticket.html", include_str!("../templates/ticket.html")),
    ("contacts.html", include_str!("../templates/contacts.html")),
    ("contact.html", include_str!("../templates/contact.html")),
    (
        "organizations.html",
        include_str!("../templates/organizations.html"),
    ),
    (
        "organization.html",
        include_str!("../templates/organization.html"),
    ),
    (
        "mailboxes.html",
        include_str!("../templates/mailboxes.html"),
    ),
    ("failed.html", include_str!("../templates/failed.html")),
    (
        "ticket_rows.html",
        include_str!("../templates/ticket_rows.html"),
    ),
    // Interventions (issue 18).
    (
        "interventions.html",
        include_str!("../templates/interventions.html"),
    ),
    // The weekly reports (issue 18).
    ("reports.html", include_str!("../templates/reports.html")),
];

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env.add_filter("time", |unix: Option<i64>| match unix {
        Some(t) => postdesk_core::time::format_time(t),
        None => "never".to_string(),
    });
    env.add_filter("size", human_size);
    env
}

/// `1.2 MB`, `512 bytes`.
fn human_size(bytes: i64) -> String {
    const UNITS: &[&str] = &["KB", "MB", "GB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Renders `template` with the signed-in agent (for the header and the forms' CSRF token).
pub fn render(
    env: &Environment<'static>,
    template: &str,
    agent: Option<&Agent>,
    nav: &str,
    context: Value,
) -> Result<Html<String>, WebError> {
    let me = agent.map(|a| {
        minijinja::context! {
            name => a.account.name.clone(),
            admin => a.account.is_admin(),
            helpdesks => a.account.helpdesk_names.clone(),
            unread => a.unread.unwrap_or(0),
        }
    });
    let csrf = agent.map(|a| a.csrf().to_string()).unwrap_or_default();
    let full = minijinja::context! { me, csrf, nav, ..context };
    env.get_template(template)
        .and_then(|t| t.render(full))
        .map(Html)
        // minijinja's alternate form says where in the template: kept as the text.
        .map_err(|e| WebError::Internal(format!("rendering {template}: {e:#}").into()))
}

/// A page for an error, without the template machinery (it must work when that fails).
pub fn error_page(status: StatusCode, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · postdesk</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body class=\"error-page\">\
         <main><h1>{code} {reason}</h1><p class=\"flash error\">{message}</p>\
         <p><a href=\"/tickets\">Back to the tickets</a></p></main></body></html>",
        code = status.as_u16(),
        reason = status.canonical_reason().unwrap_or(""),
        message = postdesk_mail::escape_html(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MB");
    }

    #[test]
    fn error_pages_escape_the_message() {
        let page = error_page(StatusCode::BAD_REQUEST, "<script>alert(1)</script>");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
    }
}
