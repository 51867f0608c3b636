//! The HTML pages. Each handler takes the signed-in [`Agent`], calls one action and
//! renders one template; forms that change something are read through [`CsrfForm`], so
//! their fields are there only once the session's CSRF token matched.

use postdesk_core::id::{ContactId, IntakeId, OrganizationId, TicketId};
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::Serde;
use postdesk_app::desk::DeskError;
use postdesk_app::intake::Processed;
use postdesk_core::settings::FieldChoices;
use postdesk_core::ticket::FieldChanges;
use postdesk_store::access::LoginGate;
use postdesk_store::contacts::ContactChange;
use postdesk_store::ingest::Outcome;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Agent, Credential, CsrfForm, SESSION_COOKIE, SESSION_SECONDS};
use crate::model::{Mailbox, Ticket, TicketDetail};
use crate::query::{ContactSearch, TicketListParams};
use crate::{AppState, WebError, views};

fn render(
    state: &AppState,
    template: &str,
    agent: Option<&Agent>,
    nav: &str,
    context: minijinja::Value,
) -> Result<Html<String>, WebError> {
    views::render(&state.0.templates, template, agent, nav, context)
}

#[derive(Deserialize)]
pub struct TextForm {
    text: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
}

/// The sign-in page tells its own origin when its form is sent (older browsers send no
/// `Sec-Fetch-Site`, and under `no-referrer` an `Origin` of `null`): see
/// [`auth::check_same_origin`]. It shows nothing from mail.
const SIGN_IN_REFERRER_POLICY: HeaderValue = HeaderValue::from_static("same-origin");

pub async fn login_form(State(state): State<AppState>) -> Result<Response, WebError> {
    let page = render(&state, "login.html", None, "", context! {})?;
    Ok(([(header::REFERRER_POLICY, SIGN_IN_REFERRER_POLICY)], page).into_response())
}

/// Longer than any name or address an agent signs in with: such a login is wrong, and
/// neither looked up nor shown again in full.
const MAX_LOGIN_CHARS: usize = 254;

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    // Before anything is counted: another site's page must not spend agents' attempts.
    auth::check_same_origin(&headers)?;
    let settings = &state.0.settings;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let address = auth::client_address(peer, &headers, &settings.trusted_proxies)
        .map_or_else(|| "-".to_string(), |ip| ip.to_string());
    let login = form.login.trim();
    // Counted before the password is checked, in one transaction: parallel attempts
    // cannot all pass the limit before any of them is counted.
    let gate = state
        .store()
        .begin_login(login, &address, settings.login_limits)
        .await?;
    if let LoginGate::Refused { wait_secs } = gate {
        return Err(WebError::TooManyAttempts(
            (wait_secs.max(1) as u64).div_ceil(60),
        ));
    }
    let found = if login.chars().count() > MAX_LOGIN_CHARS {
        None
    } else {
        state.store().agent_login(login).await?
    };
    let password = form.password.clone();
    // argon2 takes tens of milliseconds of CPU: off the async threads. Unknown names are
    // checked against a fixed hash so that they take as long as known ones.
    let (agent_id, ok) = tokio::task::spawn_blocking(move || match found {
        Some((id, hash)) => (Some(id), auth::verify_password(&password, &hash)),
        None => {
            auth::verify_password(&password, unknown_agent_hash());
            (None, false)
        }
    })
    .await
    .map_err(|e| WebError::Internal(e.into()))?;
    let Some(agent_id) = agent_id.filter(|_| ok) else {
        let shown: String = login.chars().take(MAX_LOGIN_CHARS).collect();
        let page = render(
            &state,
            "login.html",
            None,
            "",
            context! { error => "Wrong name or password.", login => shown },
        )?;
        return Ok((
            axum::http::StatusCode::UNAUTHORIZED,
            [(header::REFERRER_POLICY, SIGN_IN_REFERRER_POLICY)],
            page,
        )
            .into_response());
    };
    state.store().login_succeeded(login, &address).await?;
    let token = auth::new_token();
    state
        .store()
        .create_session(
            &auth::token_hash(&token),
            agent_id,
            &auth::new_token(),
            SESSION_SECONDS,
        )
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if state.0.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Redirect::to("/tickets").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| WebError::Internal(e.into()))?,
    );
    Ok(response)
}

/// An argon2 hash of a random password nobody knows, made once.
fn unknown_agent_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::new_token()).unwrap_or_default())
}

pub async fn logout(
    State(state): State<AppState>,
    agent: Agent,
    _: CsrfForm<()>,
) -> Result<Response, WebError> {
    if let Credential::Session { token_hash, .. } = &agent.credential {
        state.store().end_session(token_hash).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("postdesk_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

pub async fn home(_agent: Agent) -> Redirect {
    Redirect::to("/tickets")
}

#[derive(Serialize)]
struct StatusTab {
    status: String,
    count: i64,
    link: String,
}

pub async fn tickets(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<TicketListParams>,
) -> Result<Html<String>, WebError> {
    let query = params.query(50)?;
    let desk = state.desk(&agent);
    // One read for the page, its counts, its due dates and the assignee choice.
    let (page, agents) = desk.tickets_and_colleagues(query.clone()).await?;
    // Only the agent's own helpdesks' values and agents are offered.
    let choices = desk.choices();
    let pages = ((page.total + query.per_page - 1) / query.per_page).max(1);
    let (next, previous) = (page.next.clone(), page.previous.clone());
    let status_total = page.status_counts.iter().map(|(_, c)| c).sum::<i64>();
    let total = page.total;
    let beyond_window = page.beyond_window;
    let status_counts: Vec<StatusTab> = page
        .status_counts
        .iter()
        .map(|(status, count)| StatusTab {
            status: status.clone(),
            count: *count,
            link: params.link(|p| {
                p.status = Some(status.clone());
                p.page = None;
                p.after = None;
                p.before = None;
            }),
        })
        .collect();
    let all_count: i64 = status_total;
    let tickets = Ticket::page(&state, page);
    let link_to_page = |n: i64| {
        params.link(|p| {
            p.page = Some(n.to_string());
            p.after = None;
            p.before = None;
        })
    };
    // Keyset pages (issue 19) where the sort has them: page 5,000 costs what page 1
    // does; due dates and relevance keep numbered pages.
    let keyset = !matches!(
        query.sort,
        postdesk_store::desk::TicketSort::Due | postdesk_store::desk::TicketSort::Relevance
    );
    let (prev_link, next_link) = if keyset {
        (
            previous.map(|c| {
                params.link(|p| {
                    p.page = None;
                    p.after = None;
                    p.before = Some(c.to_string());
                })
            }),
            next.map(|c| {
                params.link(|p| {
                    p.page = None;
                    p.before = None;
                    p.after = Some(c.to_string());
                })
            }),
        )
    } else {
        (
            (query.page > 1).then(|| link_to_page(query.page - 1)),
            (query.page < pages).then(|| link_to_page(query.page + 1)),
        )
    };
    render(
        &state,
        "tickets.html",
        Some(&agent),
        "tickets",
        context! {
            tickets => Serde(tickets),
            total,
            beyond_window,
            status_counts => Serde(status_counts),
            all_count,
            link_all_statuses => params.link(|p| { p.status = None; p.page = None; p.after = None; p.before = None; }),
            filters => context! {
                q => params.q.clone(), helpdesk => params.helpdesk.clone(), status => params.status.clone(),
                assignee => params.assignee.clone(), priority => params.priority.clone(),
                requester => params.requester.clone(), sort => query.sort.as_str(),
                due => params.due.clone(),
                order => if query.ascending { "asc" } else { "desc" },
            },
            statuses => choices.statuses,
            priorities => choices.priorities,
            agents,
            sorts => Serde(vec![("relevance", "Best match"), ("updated", "Last updated"), ("created", "Opened"), ("number", "Number"), ("priority", "Priority"), ("status", "Status"), ("due", "Due")]),
            page => (!keyset || query.at.is_none()).then_some(query.page),
            pages,
            first_link => (query.at.is_some() || query.page > 1).then(|| link_to_page(1)),
            prev_link,
            next_link,
        },
    )
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn ticket(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    Query(done): Query<Done>,
) -> Result<Html<String>, WebError> {
    // One read for all of it (issue 19).
    let page = state.desk(&agent).ticket_page(id).await?;
    let view = page.view;
    let agents = page.agents;
    // The choices are the ticket's helpdesk's, and its own values stay selectable.
    let mut choices = state
        .helpdesk(view.summary.helpdesk_id)
        .map(|hd| FieldChoices::of(&hd.config))
        .unwrap_or_default();
    for (list, current) in [
        (&mut choices.statuses, Some(&view.summary.status)),
        (&mut choices.priorities, view.summary.priority.as_ref()),
        (&mut choices.types, view.details.ticket_type.as_ref()),
    ] {
        if let Some(current) = current
            && !list.contains(current)
        {
            list.insert(0, current.clone());
        }
    }
    let mut t = TicketDetail::new(&state, view);
    t.deadlines = crate::deadlines::views(page.deadlines);
    let interventions = page.interventions;
    let intervention_text = page.intervention_text;
    let flash = match done.done.as_deref() {
        Some("reply") => Some("Your reply is queued; postdesk mails it in a moment."),
        Some("note") => Some("Note added."),
        Some("update") => Some("Ticket updated."),
        Some("unchanged") => Some("Nothing was changed."),
        Some("deadline") => Some("Deadline set."),
        Some("intervention") => Some("Intervention saved."),
        _ => None,
    };
    render(
        &state,
        "ticket.html",
        Some(&agent),
        "tickets",
        context! {
            t => Serde(t),
            flash,
            statuses => choices.statuses,
            priorities => choices.priorities,
            types => choices.types,
            agents,
            interventions => Serde(interventions),
            intervention_text,
        },
    )
}

/// Back to the ticket's page, which says what was `done` (see [`ticket`]).
fn back_to_ticket(id: TicketId, done: &str) -> Redirect {
    Redirect::to(&format!("/tickets/{id}?done={done}"))
}

pub async fn reply(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<TextForm>,
) -> Result<Redirect, WebError> {
    state.desk(&agent).reply(id, &form.text).await?;
    Ok(back_to_ticket(id, "reply"))
}

pub async fn note(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<TextForm>,
) -> Result<Redirect, WebError> {
    state.desk(&agent).note(id, &form.text).await?;
    Ok(back_to_ticket(id, "note"))
}

/// The ticket page's fields form: each field as submitted, and as the page showed it
/// (`seen_…`, hidden). The form sends every field, so only those the agent changed
/// are changes; each of those must still hold what the page showed, or the save is
/// refused (409) instead of undoing a change someone made meanwhile (issue 15: two
/// instances, two agents, one ticket).
#[derive(Deserialize)]
pub struct UpdateForm {
    status: Option<String>,
    priority: Option<String>,
    ticket_type: Option<String>,
    assignee: Option<String>,
    seen_status: Option<String>,
    seen_priority: Option<String>,
    seen_ticket_type: Option<String>,
    seen_assignee: Option<String>,
}

/// A submitted field against the value the page showed: `(change, seen)`. Without a
/// shown value (an older page) the field is a change, unchecked.
fn against_seen(
    submitted: Option<String>,
    seen: Option<String>,
) -> (Option<Option<String>>, Option<Option<String>>) {
    let Some(new) = submitted else {
        return (None, None);
    };
    match seen {
        Some(seen) if seen.trim() == new.trim() => (None, None),
        Some(seen) => (Some(Some(new)), Some(Some(seen))),
        None => (Some(Some(new)), None),
    }
}

pub async fn update_ticket(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<TicketId>,
    CsrfForm(form): CsrfForm<UpdateForm>,
) -> Result<Redirect, WebError> {
    let (status, seen_status) = against_seen(form.status, form.seen_status);
    let (priority, seen_priority) = against_seen(form.priority, form.seen_priority);
    let (ticket_type, seen_type) = against_seen(form.ticket_type, form.seen_ticket_type);
    let (assignee, seen_assignee) = against_seen(form.assignee, form.seen_assignee);
    let update = FieldChanges {
        status,
        priority,
        ticket_type,
        assignee,
        ..FieldChanges::default()
    };
    let seen = FieldChanges {
        status: seen_status,
        priority: seen_priority,
        ticket_type: seen_type,
        assignee: seen_assignee,
        ..FieldChanges::default()
    };
    let events = state.desk(&agent).update_seen(id, &update, &seen).await?;
    let done = if events.is_empty() {
        "unchanged"
    } else {
        "update"
    };
    Ok(back_to_ticket(id, done))
}

pub async fn contacts(
    State(state): State<AppState>,
    agent: Agent,
    Query(params): Query<ContactSearch>,
) -> Result<Html<String>, WebError> {
    let q = params.text()?;
    let contacts = state.desk(&agent).contacts(q, 200).await?;
    render(
        &state,
        "contacts.html",
        Some(&agent),
        "contacts",
        context! { contacts => Serde(contacts), q },
    )
}

pub async fn contact(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<ContactId>,
    Query(done): Query<Done>,
) -> Result<Html<String>, WebError> {
    let (c, tickets, events) = state.desk(&agent).contact(id).await?;
    let tickets = Ticket::list(&state, tickets);
    let flash = done.done.is_some().then_some("Contact saved.");
    render(
        &state,
        "contact.html",
        Some(&agent),
        "contacts",
        context! { c => Serde(c), tickets => Serde(tickets), events => Serde(events), flash },
    )
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

#[derive(Deserialize)]
pub struct AddressForm {
    address: String,
}

/// Makes the change and goes back to the contact's page, which says it was saved.
async fn change_contact(
    state: &AppState,
    agent: &Agent,
    id: ContactId,
    change: ContactChange,
) -> Result<Redirect, WebError> {
    state.desk(agent).edit_contact(id, change).await?;
    Ok(Redirect::to(&format!("/contacts/{id}?done=1")))
}

pub async fn rename_contact(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<ContactId>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<Redirect, WebError> {
    change_contact(&state, &agent, id, ContactChange::Rename(form.name)).await
}

pub async fn add_address(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<ContactId>,
    CsrfForm(form): CsrfForm<AddressForm>,
) -> Result<Redirect, WebError> {
    change_contact(&state, &agent, id, ContactChange::AddAddress(form.address)).await
}

pub async fn remove_address(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<ContactId>,
    CsrfForm(form): CsrfForm<AddressForm>,
) -> Result<Redirect, WebError> {
    change_contact(
        &state,
        &agent,
        id,
        ContactChange::RemoveAddress(form.address),
    )
    .await
}

pub async fn organizations(
    State(state): State<AppState>,
    agent: Agent,
) -> Result<Html<String>, WebError> {
    let organizations = state.desk(&agent).organizations().await?;
    render(
        &state,
        "organizations.html",
        Some(&agent),
        "organizations",
        context! { organizations => Serde(organizations) },
    )
}

pub async fn organization(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<OrganizationId>,
) -> Result<Html<String>, WebError> {
    let (o, contacts, tickets) = state.desk(&agent).organization(id).await?;
    let tickets = Ticket::list(&state, tickets);
    render(
        &state,
        "organization.html",
        Some(&agent),
        "organizations",
        context! { o => Serde(o), contacts => Serde(contacts), tickets => Serde(tickets) },
    )
}

async fn mailboxes_page(
    state: &AppState,
    agent: &Agent,
    extra: minijinja::Value,
) -> Result<Html<String>, WebError> {
    let mailboxes = Mailbox::list(state.desk(agent).mailboxes().await?);
    render(
        state,
        "mailboxes.html",
        Some(agent),
        "mailboxes",
        context! { mailboxes => Serde(mailboxes), ..extra },
    )
}

pub async fn mailboxes(
    State(state): State<AppState>,
    agent: Agent,
) -> Result<Html<String>, WebError> {
    mailboxes_page(&state, &agent, context! {}).await
}

#[derive(Serialize)]
struct StepView {
    name: String,
    ok: bool,
    detail: String,
}

pub async fn check_mailbox(
    State(state): State<AppState>,
    agent: Agent,
    Path(index): Path<usize>,
    _: CsrfForm<()>,
) -> Result<Html<String>, WebError> {
    let (health, steps) = state
        .desk(&agent)
        .check_mailbox(state.mailboxes(), index)
        .await?;
    let mailbox = Mailbox::new(health);
    let failed = steps.iter().any(|s| s.result.is_err());
    let steps: Vec<StepView> = steps
        .into_iter()
        .map(|s| match s.result {
            Ok(detail) => StepView {
                name: s.name,
                ok: true,
                detail,
            },
            Err(detail) => StepView {
                name: s.name,
                ok: false,
                detail,
            },
        })
        .collect();
    let (flash, flash_kind) = if failed {
        (
            format!(
                "{}: the connection test failed; see the steps below.",
                mailbox.name
            ),
            "error",
        )
    } else {
        (format!("{}: the connection works.", mailbox.name), "ok")
    };
    mailboxes_page(
        &state,
        &agent,
        context! { checked => context! { mailbox => Serde(mailbox), steps => Serde(steps) }, flash, flash_kind },
    )
    .await
}

pub async fn scan_mailbox(
    State(state): State<AppState>,
    agent: Agent,
    Path(index): Path<usize>,
    _: CsrfForm<()>,
) -> Result<Html<String>, WebError> {
    let scanned = state
        .desk(&agent)
        .scan_mailbox(state.mailboxes(), index)
        .await;
    let (flash, flash_kind) = match scanned {
        Ok(summary) => (format!("Scanned: {summary}"), "ok"),
        Err(DeskError::Invalid(problem)) => (format!("The scan failed: {problem}"), "error"),
        Err(other) => return Err(other.into()),
    };
    mailboxes_page(&state, &agent, context! { flash, flash_kind }).await
}

async fn failed_page(
    state: &AppState,
    agent: &Agent,
    extra: minijinja::Value,
) -> Result<Html<String>, WebError> {
    let failed = state.desk(agent).failed().await?;
    render(
        state,
        "failed.html",
        Some(agent),
        "failed",
        context! { failed => Serde(failed), ..extra },
    )
}

pub async fn failed(State(state): State<AppState>, agent: Agent) -> Result<Html<String>, WebError> {
    failed_page(&state, &agent, context! {}).await
}

/// What processing a mail again did, in words.
pub async fn retry_outcome(
    state: &AppState,
    id: IntakeId,
    p: &Processed,
) -> (String, &'static str) {
    let r = &p.report;
    let mut reference = String::new();
    if let (Some(ticket), Some(number)) = (r.ticket_id, r.ticket_number)
        && let Ok(helpdesk) = state.store().ticket_helpdesk(ticket).await
    {
        reference = state.reference(helpdesk, number);
    }
    match r.outcome {
        Outcome::Created => (format!("Mail {id} is now ticket {reference}."), "ok"),
        Outcome::Appended => (format!("Mail {id} was added to ticket {reference}."), "ok"),
        Outcome::Ignored => (format!("Mail {id} was ignored by a rule."), "ok"),
        Outcome::Duplicate => (format!("Mail {id} had already been processed."), "ok"),
        Outcome::Failed => (
            format!(
                "Mail {id} failed again: {}",
                r.reason.as_deref().unwrap_or("no reason given")
            ),
            "error",
        ),
    }
}

pub async fn retry_failed(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<IntakeId>,
    _: CsrfForm<()>,
) -> Result<Html<String>, WebError> {
    let processed = state.desk(&agent).retry(id).await?;
    let (flash, flash_kind) = retry_outcome(&state, id, &processed).await;
    failed_page(&state, &agent, context! { flash, flash_kind }).await
}

pub async fn dismiss_failed(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<IntakeId>,
    _: CsrfForm<()>,
) -> Result<Html<String>, WebError> {
    state.desk(&agent).dismiss(id).await?;
    let flash = format!("Mail {id} was dismissed; it stays in the ledger.");
    failed_page(&state, &agent, context! { flash }).await
}
