//! The portal's pages: sign-in (link or password), the contact's tickets, one ticket's
//! customer-visible thread, a new ticket, an answer, closing, downloads, the account.
//! Every form that changes something carries the session's CSRF token (multipart
//! forms too); sign-in forms are refused when another site sent them.

use postdesk_core::id::{AttachmentId, EntryId, HelpdeskId, TicketId};
use std::net::SocketAddr;

use axum::Form;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::Serde;
use postdesk_app::portal::{Input, PortalUpload, Submitted};
use postdesk_store::access::LoginGate;
use postdesk_store::portal::LinkLimits;
use serde::{Deserialize, Serialize};

use super::auth::{
    Contact, PORTAL_SESSION_SECONDS, login_key, session_cookie, set_cookie, unknown_contact_hash,
};
use super::{MAX_UPLOAD_BYTES, PageError, render};
use crate::AppState;
use crate::auth::PasswordError;
use crate::auth::{check_same_origin, client_address, new_token, token_hash, verify_password};
use crate::files::{INLINE_IMAGES, file_response, stored_attachment};

const STYLESHEET: &str = include_str!("../../templates/portal/portal.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A helpdesk whose portal is on, as forms offer it.
#[derive(Serialize)]
struct Choice {
    id: HelpdeskId,
    name: String,
}

fn choices(state: &AppState) -> Vec<Choice> {
    state
        .app()
        .portal()
        .helpdesks()
        .iter()
        .map(|h| Choice {
            id: h.id,
            name: h.config.settings.name.clone(),
        })
        .collect()
}

/// The helpdesk a form named, or the only one with a portal.
fn chosen(state: &AppState, given: Option<&str>) -> Result<HelpdeskId, PageError> {
    let portal = state.app().portal();
    let helpdesks = portal.helpdesks();
    let id = match given.map(str::trim).filter(|g| !g.is_empty()) {
        Some(given) => given.parse::<i64>().ok().map(HelpdeskId::new),
        None if helpdesks.len() == 1 => Some(helpdesks[0].id),
        None => None,
    };
    id.filter(|id| portal.helpdesk(*id).is_some())
        .ok_or_else(|| PageError::BadRequest("choose one of the helpdesks listed".into()))
}

fn client(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> String {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    client_address(peer, headers, &state.0.settings.trusted_proxies)
        .map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

pub async fn login_form(State(state): State<AppState>) -> Result<Html<String>, PageError> {
    render(
        "portal/login.html",
        None,
        context! { helpdesks => Serde(choices(&state)) },
    )
}

#[derive(Deserialize)]
pub struct LinkForm {
    helpdesk: Option<String>,
    address: String,
}

/// The same page, with the same status, whether the address is a customer's or not.
pub async fn request_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<LinkForm>,
) -> Result<Response, PageError> {
    check_same_origin(&headers)?;
    let helpdesk_id = chosen(&state, form.helpdesk.as_deref())?;
    let address: String = form.address.trim().chars().take(254).collect();
    let token = new_token();
    state
        .app()
        .portal()
        .request_link(
            &postdesk_app::portal::LinkRequest {
                helpdesk_id,
                address: &address,
                client: &client(&state, &headers, &extensions),
                token: &token,
                token_hash: &token_hash(&token),
            },
            LinkLimits::default(),
        )
        .await?;
    let page = render(
        "portal/message.html",
        None,
        context! {
            title => "Check your mail",
            // Nothing of the address is repeated: the page is the same, byte for
            // byte, for a customer's address and for anyone else's.
            message => "If the address is one of our customers', a sign-in link is on its way to it. The link works once, within 15 minutes.",
        },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct LinkParams {
    h: Option<String>,
    t: Option<String>,
}

/// What the mailed link opens: a button that signs in. Opening the link changes
/// nothing (mail scanners that fetch links do not use it up), and the sign-in is a
/// form sent from this site, so the session cookie is set on a same-site request.
pub async fn link_page(Query(params): Query<LinkParams>) -> Result<Html<String>, PageError> {
    let keep = |v: Option<String>| -> String {
        v.unwrap_or_default()
            .chars()
            .take(128)
            .filter(char::is_ascii_alphanumeric)
            .collect()
    };
    render(
        "portal/message.html",
        None,
        context! {
            title => "Sign in",
            message => "Sign in to see your tickets.",
            link => context! { h => keep(params.h), t => keep(params.t) },
        },
    )
}

#[derive(Deserialize)]
pub struct RedeemForm {
    h: String,
    t: String,
}

pub async fn redeem_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<RedeemForm>,
) -> Result<Response, PageError> {
    check_same_origin(&headers)?;
    let refused = || {
        PageError::BadRequest(
            "this sign-in link cannot be used: it was used already, it has expired, or it is not ours. Ask for a new one."
                .into(),
        )
    };
    let helpdesk_id = form
        .h
        .trim()
        .parse::<i64>()
        .map(HelpdeskId::new)
        .map_err(|_| refused())?;
    let token = form.t.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused());
    }
    let session = new_token();
    let session_hash = token_hash(&session);
    state
        .app()
        .portal()
        .redeem(
            helpdesk_id,
            &token_hash(&token.to_ascii_lowercase()),
            &session_hash,
            &new_token(),
            PORTAL_SESSION_SECONDS,
        )
        .await?
        .ok_or_else(refused)?;
    signed_in(&state, &session)
}

fn signed_in(state: &AppState, session: &str) -> Result<Response, PageError> {
    let mut response = Redirect::to("/portal/tickets").into_response();
    set_cookie(&mut response, &session_cookie(state, session))?;
    Ok(response)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    address: String,
    password: String,
}

pub async fn password_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    check_same_origin(&headers)?;
    let client = client(&state, &headers, &extensions);
    let address: String = form.address.trim().chars().take(254).collect();
    let key = login_key(&address);
    // Counted before the password is checked, as agents' sign-ins are.
    let gate = state
        .store()
        .begin_login(&key, &client, state.0.settings.login_limits)
        .await?;
    if let LoginGate::Refused { wait_secs } = gate {
        return Err(PageError::TooMany(format!(
            "too many failed sign-ins; try again in {} minute(s)",
            (wait_secs.max(1) as u64).div_ceil(60)
        )));
    }
    let found = state.store().portal_password(&address).await?;
    let password = form.password;
    let (contact_id, ok) = tokio::task::spawn_blocking(move || match found {
        Some((id, hash)) => (Some(id), verify_password(&password, &hash)),
        None => {
            verify_password(&password, unknown_contact_hash());
            (None, false)
        }
    })
    .await
    .map_err(|e| PageError::Internal(e.into()))?;
    let Some(contact_id) = contact_id.filter(|_| ok) else {
        let page = render(
            "portal/login.html",
            None,
            context! {
                helpdesks => Serde(choices(&state)),
                error => "Wrong address or password, or no password was set for this address.",
            },
        )?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    state.store().login_succeeded(&key, &client).await?;
    let session = new_token();
    state
        .store()
        .create_portal_session(
            &token_hash(&session),
            contact_id,
            &address.to_lowercase(),
            &new_token(),
            PORTAL_SESSION_SECONDS,
        )
        .await?;
    signed_in(&state, &session)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    contact: Contact,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    contact.check_csrf(form.csrf.as_deref())?;
    state
        .store()
        .end_portal_session(&contact.token_hash)
        .await?;
    let mut response = Redirect::to("/portal/login").into_response();
    set_cookie(
        &mut response,
        "postdesk_portal=; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=0",
    )?;
    Ok(response)
}

pub async fn home(_contact: Contact) -> Redirect {
    Redirect::to("/portal/tickets")
}

/// The signed-in contact's name and CSRF token, for the page header and forms.
async fn me(state: &AppState, contact: &Contact) -> Result<(String, String), PageError> {
    let account = state.app().portal().account(contact.contact_id).await?;
    let name = if account.name.trim().is_empty() {
        contact.address.clone()
    } else {
        account.name
    };
    Ok((name, contact.csrf.clone()))
}

pub async fn tickets(
    State(state): State<AppState>,
    contact: Contact,
) -> Result<Html<String>, PageError> {
    let tickets = state.app().portal().tickets(&contact.viewer).await?;
    let (name, csrf) = me(&state, &contact).await?;
    let rows: Vec<_> = tickets
        .iter()
        .map(|t| {
            context! {
                t => Serde(t),
                reference => state.reference(t.helpdesk_id, t.number),
                mine => t.requester_id == Some(contact.contact_id),
            }
        })
        .collect();
    render(
        "portal/tickets.html",
        Some((&name, &csrf)),
        context! { tickets => rows },
    )
}

pub async fn new_ticket(
    State(state): State<AppState>,
    contact: Contact,
) -> Result<Html<String>, PageError> {
    let (name, csrf) = me(&state, &contact).await?;
    render(
        "portal/new.html",
        Some((&name, &csrf)),
        context! { helpdesks => Serde(choices(&state)) },
    )
}

/// A multipart form: its text fields and its files.
pub(super) struct Submission {
    pub(super) csrf: Option<String>,
    helpdesk: Option<String>,
    subject: String,
    text: String,
    pub(super) uploads: Vec<PortalUpload>,
}

/// The longest text field read (longer ones are refused by the service with the reason).
const MAX_FIELD_BYTES: usize = 512 * 1024;

pub(super) async fn read_submission(
    form: Result<Multipart, MultipartRejection>,
) -> Result<Submission, PageError> {
    // A body that is no multipart form carries no token that could be checked.
    let Ok(mut form) = form else {
        return Err(PageError::Forbidden(
            "the form has expired or did not come from this site; reload the page and try again"
                .into(),
        ));
    };
    let bad = |e: axum::extract::multipart::MultipartError| {
        PageError::BadRequest(format!("the form could not be read: {}", e.body_text()))
    };
    let mut submission = Submission {
        csrf: None,
        helpdesk: None,
        subject: String::new(),
        text: String::new(),
        uploads: Vec::new(),
    };
    let mut total = 0usize;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let mime_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = field.bytes().await.map_err(bad)?;
        total += bytes.len();
        if total > MAX_UPLOAD_BYTES {
            return Err(PageError::BadRequest(format!(
                "the files are larger than {} MB together",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            )));
        }
        if name == "files" {
            // A file input left empty still sends a part, without name or bytes.
            let file_name = file_name.unwrap_or_default();
            if !file_name.is_empty() || !bytes.is_empty() {
                submission.uploads.push(PortalUpload {
                    name: file_name,
                    mime_type,
                    bytes: bytes.to_vec(),
                });
            }
            continue;
        }
        if bytes.len() > MAX_FIELD_BYTES {
            return Err(PageError::BadRequest(format!(
                "the field {name} is too long"
            )));
        }
        let value = String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "csrf" => submission.csrf = Some(value),
            "helpdesk" => submission.helpdesk = Some(value),
            "subject" => submission.subject = value,
            "text" => submission.text = value,
            _ => {}
        }
    }
    Ok(submission)
}

pub async fn create_ticket(
    State(state): State<AppState>,
    contact: Contact,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let form = read_submission(form).await?;
    contact.check_csrf(form.csrf.as_deref())?;
    let helpdesk_id = chosen(&state, form.helpdesk.as_deref())?;
    let submitted = state
        .app()
        .portal()
        .create(
            &contact.viewer,
            &contact.address,
            helpdesk_id,
            &Input {
                subject: &form.subject,
                text: &form.text,
                uploads: &form.uploads,
            },
        )
        .await?;
    submitted_page(&state, &contact, submitted, "Your ticket is registered").await
}

/// Where portal input went; files the policy refused are listed.
async fn submitted_page(
    state: &AppState,
    contact: &Contact,
    submitted: Submitted,
    title: &str,
) -> Result<Response, PageError> {
    if submitted.refused.is_empty() {
        return Ok(
            Redirect::to(&format!("/portal/tickets/{}?done=1", submitted.ticket_id))
                .into_response(),
        );
    }
    let view = state
        .app()
        .portal()
        .ticket(&contact.viewer, submitted.ticket_id)
        .await?;
    let (name, csrf) = me(state, contact).await?;
    let refused: Vec<_> = submitted
        .refused
        .iter()
        .map(|(file, reason)| context! { name => file, reason => reason })
        .collect();
    Ok(render(
        "portal/message.html",
        Some((&name, &csrf)),
        context! {
            title,
            message => format!(
                "{} {} has your message. These files were not taken:",
                state.reference(view.ticket.helpdesk_id, view.ticket.number),
                view.ticket.title
            ),
            refused,
            ticket_id => submitted.ticket_id.get(),
        },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn ticket(
    State(state): State<AppState>,
    contact: Contact,
    Path(id): Path<TicketId>,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let portal = state.app().portal();
    let view = portal.ticket(&contact.viewer, id).await?;
    let may_close = portal.may_close(&view.ticket);
    let (name, csrf) = me(&state, &contact).await?;
    let entries: Vec<_> = view
        .entries
        .iter()
        .map(|e| {
            let attachments: Vec<_> = e
                .attachments
                .iter()
                .map(|a| {
                    context! {
                        a => Serde(a),
                        image => INLINE_IMAGES.contains(&a.mime_type.to_ascii_lowercase().as_str()),
                    }
                })
                .collect();
            context! { e => Serde(e), attachments }
        })
        .collect();
    render(
        "portal/ticket.html",
        Some((&name, &csrf)),
        context! {
            t => Serde(&view.ticket),
            reference => state.reference(view.ticket.helpdesk_id, view.ticket.number),
            entries,
            files => Serde(&view.helpdesk_files),
            may_close,
            flash => done.done.is_some().then_some("Thank you: your message is on the ticket."),
        },
    )
}

pub async fn reply(
    State(state): State<AppState>,
    contact: Contact,
    Path(id): Path<TicketId>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let form = read_submission(form).await?;
    contact.check_csrf(form.csrf.as_deref())?;
    let submitted = state
        .app()
        .portal()
        .reply(
            &contact.viewer,
            &contact.address,
            id,
            &Input {
                subject: "",
                text: &form.text,
                uploads: &form.uploads,
            },
        )
        .await?;
    submitted_page(&state, &contact, submitted, "Your answer is on the ticket").await
}

pub async fn close(
    State(state): State<AppState>,
    contact: Contact,
    Path(id): Path<TicketId>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    contact.check_csrf(form.csrf.as_deref())?;
    state
        .app()
        .portal()
        .close(&contact.viewer, &contact.address, id)
        .await?;
    Ok(Redirect::to(&format!("/portal/tickets/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct DownloadParams {
    download: Option<String>,
}

pub async fn attachment(
    State(state): State<AppState>,
    contact: Contact,
    Path(id): Path<AttachmentId>,
    Query(params): Query<DownloadParams>,
) -> Result<Response, PageError> {
    let (file, sha256) = state
        .store()
        .portal_attachment(&contact.viewer, id)
        .await?
        .ok_or_else(|| PageError::NotFound("there is no such file on your tickets".into()))?;
    Ok(stored_attachment(state.store(), &sha256, &file, params.download.is_none()).await?)
}

pub async fn raw_mail(
    State(state): State<AppState>,
    contact: Contact,
    Path(id): Path<EntryId>,
) -> Result<Response, PageError> {
    let intake_id = state
        .store()
        .portal_raw_mail(&contact.viewer, id)
        .await?
        .ok_or_else(|| PageError::NotFound("there is no such mail of yours".into()))?;
    let bytes = state.store().raw_mail(intake_id).await?;
    Ok(file_response(
        bytes,
        "message/rfc822",
        &format!("mail-{id}.eml"),
        false,
    ))
}

pub async fn account(
    State(state): State<AppState>,
    contact: Contact,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let account = state.app().portal().account(contact.contact_id).await?;
    let (name, csrf) = me(&state, &contact).await?;
    render(
        "portal/account.html",
        Some((&name, &csrf)),
        context! {
            account => Serde(account),
            flash => done.done.is_some().then_some("Saved."),
        },
    )
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    csrf: Option<String>,
    password: Option<String>,
    remove: Option<String>,
}

pub async fn set_password(
    State(state): State<AppState>,
    contact: Contact,
    Form(form): Form<SetPasswordForm>,
) -> Result<Response, PageError> {
    contact.check_csrf(form.csrf.as_deref())?;
    let hash = if form.remove.is_some() {
        None
    } else {
        let password = form.password.unwrap_or_default();
        let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
            .await
            .map_err(|e| PageError::Internal(e.into()))?
            .map_err(|e| match e {
                e @ PasswordError::TooShort => PageError::BadRequest(e.to_string()),
                e @ PasswordError::Hash(_) => PageError::Internal(e.into()),
            })?;
        Some(hash)
    };
    state
        .store()
        .set_portal_password(contact.contact_id, hash.as_deref(), &contact.token_hash)
        .await?;
    Ok(Redirect::to("/portal/account?done=1").into_response())
}
