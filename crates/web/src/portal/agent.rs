//! The agents' side of what customers see (issue 17), on the agents' ticket page:
//! adding files to a ticket (internal unless the helpdesk's
//! `agent_uploads_visible_to_customer` says otherwise) and switching an attachment
//! between public and internal. These routes are agents' routes (in
//! `routes::table`, behind the [`Agent`] extractor and its CSRF check); they live
//! here beside the portal whose view they decide.

use postdesk_core::id::{AttachmentId, TicketId};

use axum::extract::{Multipart, Path, State};
use axum::response::Redirect;
use postdesk_app::portal::PortalError;
use postdesk_store::portal::AgentFile;
use serde::Deserialize;

use crate::auth::{Agent, CsrfForm};
use crate::{AppState, WebError};

impl From<PortalError> for WebError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::NotFound(m) => WebError::NotFound(m),
            PortalError::Invalid(m) => WebError::BadRequest(m),
            PortalError::Store(e) => e.into(),
            other => WebError::Internal(other.into()),
        }
    }
}

pub async fn add_files(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Redirect, WebError> {
    // Read as the portal's forms are; a body that is no multipart form carries no
    // token and is refused as such.
    let form = super::pages::read_submission(form).await?;
    // The token is checked before anything is kept.
    agent.check_csrf(form.csrf.as_deref())?;
    let files = form
        .uploads
        .into_iter()
        .map(|u| AgentFile {
            name: u.name,
            mime_type: u.mime_type,
            bytes: u.bytes,
        })
        .collect();
    state
        .app()
        .portal()
        .agent_files(&agent.account, id, files)
        .await?;
    Ok(Redirect::to(&format!("/tickets/{id}?done=update")))
}

#[derive(Deserialize)]
pub struct VisibilityForm {
    attachment: Option<String>,
    visibility: Option<String>,
}

pub async fn set_visibility(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<VisibilityForm>,
) -> Result<Redirect, WebError> {
    let attachment = form
        .attachment
        .unwrap_or_default()
        .trim()
        .parse::<i64>()
        .map(AttachmentId::new)
        .map_err(|_| WebError::BadRequest("name the attachment by its id".into()))?;
    let public = match form.visibility.as_deref().unwrap_or_default() {
        "public" => true,
        "internal" => false,
        _ => {
            return Err(WebError::BadRequest(
                "visibility is `public` or `internal`".into(),
            ));
        }
    };
    let ticket = state
        .app()
        .portal()
        .set_visibility(&agent.account, attachment, public)
        .await?;
    let _ = id;
    Ok(Redirect::to(&format!("/tickets/{ticket}?done=update")))
}

/// One helpdesk's portal settings, as the settings page shows them.
#[derive(serde::Serialize)]
struct PortalSettings {
    name: String,
    portal: bool,
    link: Option<String>,
    reply_status: String,
    customer_may_close: bool,
    agent_uploads_visible_to_customer: bool,
    /// (status, what the customer sees).
    statuses: Vec<(String, String)>,
}

/// The portal's settings page: each of the agent's helpdesks with its portal link
/// and settings (from the config), and the organizations that share their tickets
/// (an admin switches them here).
pub async fn settings(
    State(state): State<AppState>,
    agent: Agent,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<axum::response::Html<String>, WebError> {
    let helpdesks: Vec<PortalSettings> = state
        .app()
        .helpdesks()
        .iter()
        .filter(|h| agent.sees(h.id))
        .map(|h| {
            let s = &h.config.settings;
            let mut statuses: Vec<String> =
                postdesk_core::settings::FieldChoices::of(&h.config).statuses;
            statuses.extend(s.customer_statuses.keys().cloned());
            statuses.sort();
            statuses.dedup();
            PortalSettings {
                name: s.name.clone(),
                portal: s.portal,
                link: h.config.portal_link(),
                reply_status: h.config.portal_reply_status().to_string(),
                customer_may_close: s.customer_may_close,
                agent_uploads_visible_to_customer: s.agent_uploads_visible_to_customer,
                statuses: statuses
                    .into_iter()
                    .map(|st| {
                        let shown = h.config.customer_status(&st);
                        (st, shown)
                    })
                    .collect(),
            }
        })
        .collect();
    let organizations: Vec<_> = state
        .store()
        .organization_sharing()
        .await?
        .into_iter()
        .map(|(name, share)| minijinja::context! { name, share })
        .collect();
    crate::views::render(
        &super::ENVIRONMENT,
        "portal/settings.html",
        Some(&agent),
        "portal",
        minijinja::context! {
            helpdesks => minijinja::value::Serde(helpdesks),
            organizations,
            flash => done.done.is_some().then_some("Saved."),
        },
    )
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct ShareForm {
    organization: Option<String>,
    share: Option<String>,
}

/// An admin lets an organization's contacts see each other's tickets (or not).
pub async fn share_tickets(
    State(state): State<AppState>,
    agent: Agent,
    CsrfForm(form): CsrfForm<ShareForm>,
) -> Result<Redirect, WebError> {
    if !agent.account.is_admin() {
        return Err(WebError::Forbidden(
            "only an admin decides which organizations share their tickets".into(),
        ));
    }
    let share = form.share.as_deref() == Some("true");
    state
        .store()
        .set_share_tickets(form.organization.as_deref().unwrap_or_default(), share)
        .await?;
    Ok(Redirect::to("/settings/portal?done=1"))
}
