//! Microsoft 365 mailboxes through Microsoft Graph (`kind = "graph"`): sign-in with
//! the client-credentials flow or a delegated device-code sign-in, each folder read with
//! the delta query (its delta link kept in the store), each mail's MIME content
//! (`/$value`) through the same intake as IMAP mail, and only then the move to the
//! processed (or unprocessed) folder.
//!
//! The order is what makes a crash harmless: the delta link is saved only once every
//! mail it covers is committed and moved, so mail read again after a crash is found
//! in the ledger (its Message-ID, or the SHA-256 of its MIME content) and only moved.
//! An expired delta token (410, `SyncStateNotFound`) starts the folder over, which for
//! the same reason doubles nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postdesk_app::App;
use postdesk_app::intake::{Processed, Summary};
use postdesk_app::mailboxes::CheckStep;
use postdesk_core::mailbox::{AfterSuccess, GraphFlow, Secret};
use postdesk_core::{MailSource, RawMail};
use postdesk_credentials::graph::{self as graph_token, DELEGATED_SCOPE, TokenAnswer};
use postdesk_store::Outcome;
use postdesk_store::mailbox_subscriptions::MailboxSubscription;
use postdesk_store::mailboxes::StoredTokens;
use serde::Deserialize;

use crate::api::{self, ApiError, Http, Reply, Steps, Targets, encode};

pub const DEFAULT_API: &str = "https://graph.microsoft.com/v1.0";
/// Messages per delta page asked for (`Prefer: odata.maxpagesize`).
const PAGE_SIZE: usize = 50;
/// An access token in hand is renewed when it has less than this left.
const MARGIN: i64 = 120;
/// Graph's well-known folder names, usable wherever a folder id is.
const WELL_KNOWN: &[&str] = &[
    "inbox",
    "archive",
    "deleteditems",
    "drafts",
    "junkemail",
    "sentitems",
    "outbox",
];

/// A Graph mailbox and the helpdesk it feeds.
pub type GraphMailbox = api::Mailbox<Graph>;

/// Microsoft Graph, as [`api::Provider`]: the sign-in with client credentials or a
/// delegated token, delta queries, subscriptions beside the polling.
#[derive(Debug, Clone)]
pub enum Graph {}

/// What a Graph session keeps besides its client.
#[derive(Default)]
pub struct State {
    token: Option<(Secret, i64)>,
    /// The change-notification subscriptions this reader made or renewed: only these
    /// are deleted when it stops, never one the mailbox's next reader (another
    /// instance) made meanwhile.
    subscriptions: Vec<String>,
}

type Session = api::Session<Graph>;

#[derive(Deserialize)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: Option<u64>,
    interval: Option<u64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
struct FolderList {
    #[serde(default)]
    value: Vec<Folder>,
}

#[derive(Deserialize)]
struct Folder {
    id: String,
    #[serde(rename = "displayName", default)]
    display_name: String,
    #[serde(rename = "totalItemCount")]
    total_item_count: Option<i64>,
}

impl GraphMailbox {
    fn authority(&self) -> String {
        graph_token::authority(&self.settings)
    }

    fn client_id(&self) -> String {
        self.settings.client_id.clone().unwrap_or_default()
    }

    /// Keeps every folder subscribed, for as long as it is polled (never returns). A
    /// failure is logged and tried again with backoff; meanwhile polling goes on.
    async fn keep_subscribed(
        &self,
        session: &tokio::sync::Mutex<&mut Session>,
        bell: &tokio::sync::Notify,
    ) {
        let Some(url) = &self.settings.notification_url else {
            return std::future::pending().await;
        };
        let mut backoff = Duration::from_secs(5);
        loop {
            let outcome = {
                let mut session = session.lock().await;
                self.subscribe(&mut session, url).await
            };
            let wait = match outcome {
                Ok(Subscribed { next, created }) => {
                    backoff = Duration::from_secs(5);
                    if created {
                        // Mail that came while the subscription was being made had
                        // nobody to tell: one scan now covers it.
                        bell.notify_one();
                    }
                    next
                }
                Err(e) => {
                    tracing::warn!(mailbox = %self.name(), error = %e, retry_in = ?backoff, "cannot subscribe to change notifications; polling every interval_secs meanwhile");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(3600));
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Makes or renews each folder's subscription; when to look again.
    async fn subscribe(&self, session: &mut Session, url: &str) -> Result<Subscribed, ApiError> {
        let store = session.app.store().clone();
        let name = self.name();
        let held = store.mailbox_subscriptions(&self.helpdesk, &name).await?;
        let mut folders = Folders::default();
        // Looked at every quarter hour at least (a read of the store while all is
        // well): a subscription deleted meanwhile (by the reader before this one,
        // stopping late) is made again within that time.
        let mut next = RECHECK;
        let mut created = false;
        for folder in &self.settings.folders {
            let now = postdesk_store::now();
            let old = held.iter().find(|s| &s.folder == folder);
            let expires = match old {
                Some(s) if s.notification_url == url && s.expires_at - now > RENEW_BEFORE => {
                    s.expires_at
                }
                Some(s) if s.notification_url == url => match self.renew(session, s).await? {
                    Some(expires) => expires,
                    None => {
                        created = true;
                        self.create_subscription(session, &mut folders, folder, url)
                            .await?
                    }
                },
                other => {
                    if let Some(stale) = other {
                        // The URL changed: the old one would call where nobody listens.
                        self.delete_subscription(session, stale).await;
                    }
                    created = true;
                    self.create_subscription(session, &mut folders, folder, url)
                        .await?
                }
            };
            // Renewed a day before it runs out; one Graph granted for less than that
            // (it may shorten the time asked for) halfway through what is left.
            let left = expires - postdesk_store::now();
            if let Some(now_held) = store
                .mailbox_subscription_of(&self.helpdesk, &name, folder)
                .await?
                && !session
                    .state
                    .subscriptions
                    .contains(&now_held.subscription_id)
            {
                session.state.subscriptions.push(now_held.subscription_id);
            }
            let due = if left > RENEW_BEFORE {
                left - RENEW_BEFORE
            } else {
                (left / 2).max(1)
            };
            next = next.min(due);
        }
        Ok(Subscribed {
            next: Duration::from_secs(next as u64),
            created,
        })
    }

    /// `POST /subscriptions`: Graph calls `url` with a validation token first (the
    /// web listener echoes it), then answers with the subscription.
    async fn create_subscription(
        &self,
        session: &mut Session,
        folders: &mut Folders,
        folder: &str,
        url: &str,
    ) -> Result<i64, ApiError> {
        let folder_id = folders.resolve(session, folder, false).await?;
        let client_state = new_client_state()?;
        let expires = postdesk_store::now() + SUBSCRIPTION_LIFETIME;
        let body = serde_json::json!({
            "changeType": "created",
            "notificationUrl": url,
            "resource": format!(
                "users/{}/mailFolders('{}')/messages",
                self.settings.user,
                folder_id.replace('\'', "''")
            ),
            "expirationDateTime": postdesk_core::time::format_rfc3339(expires),
            "clientState": client_state.expose(),
        });
        let endpoint = format!("{}/subscriptions", self.api());
        let reply = session
            .call("subscribe to change notifications", |c| {
                c.post(&endpoint).json(&body)
            })
            .await?;
        if !reply.ok() {
            return Err(failure("subscribe to change notifications", &reply));
        }
        let made: SubscriptionAnswer = reply.json("subscription")?;
        let expires = made.expires_at().unwrap_or(expires).min(expires);
        session
            .app
            .store()
            .save_mailbox_subscription(&MailboxSubscription {
                helpdesk: self.helpdesk.clone(),
                mailbox: self.name(),
                folder: folder.to_string(),
                subscription_id: made.id,
                client_state,
                notification_url: url.to_string(),
                expires_at: expires,
            })
            .await?;
        tracing::info!(mailbox = %self.name(), folder, "subscribed to change notifications");
        Ok(expires)
    }

    /// `PATCH /subscriptions/{id}` with a later expiry; `None` when Graph no longer
    /// has it (a new one is made then).
    async fn renew(
        &self,
        session: &mut Session,
        held: &MailboxSubscription,
    ) -> Result<Option<i64>, ApiError> {
        let expires = postdesk_store::now() + SUBSCRIPTION_LIFETIME;
        let endpoint = format!(
            "{}/subscriptions/{}",
            self.api(),
            encode(&held.subscription_id)
        );
        let body =
            serde_json::json!({"expirationDateTime": postdesk_core::time::format_rfc3339(expires)});
        let reply = session
            .call("renew the subscription", |c| c.patch(&endpoint).json(&body))
            .await?;
        if reply.status == 404 {
            session
                .app
                .store()
                .delete_mailbox_subscription(&held.subscription_id)
                .await?;
            return Ok(None);
        }
        if !reply.ok() {
            return Err(failure("renew the subscription", &reply));
        }
        let renewed: SubscriptionAnswer = reply.json("subscription")?;
        let expires = renewed.expires_at().unwrap_or(expires).min(expires);
        session
            .app
            .store()
            .save_mailbox_subscription(&MailboxSubscription {
                expires_at: expires,
                ..held.clone()
            })
            .await?;
        Ok(Some(expires))
    }

    /// Deletes every subscription of this mailbox, at Graph and in the store (best
    /// effort: one Graph cannot delete now runs out by itself).
    async fn unsubscribe(&self, session: &mut Session) {
        let ours = std::mem::take(&mut session.state.subscriptions);
        let held = match session
            .app
            .store()
            .mailbox_subscriptions(&self.helpdesk, &self.name())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(mailbox = %self.name(), error = %e, "cannot list the subscriptions to delete");
                return;
            }
        };
        for s in held.iter().filter(|s| ours.contains(&s.subscription_id)) {
            self.delete_subscription(session, s).await;
        }
    }

    async fn delete_subscription(&self, session: &mut Session, held: &MailboxSubscription) {
        let endpoint = format!(
            "{}/subscriptions/{}",
            self.api(),
            encode(&held.subscription_id)
        );
        match session
            .call("delete the subscription", |c| c.delete(&endpoint))
            .await
        {
            Ok(r) if r.ok() || r.status == 404 => {}
            Ok(r) => {
                tracing::warn!(mailbox = %self.name(), error = %failure("delete the subscription", &r), "the subscription stays until it runs out")
            }
            Err(e) => {
                tracing::warn!(mailbox = %self.name(), error = %e, "the subscription stays until it runs out")
            }
        }
        if let Err(e) = session
            .app
            .store()
            .delete_mailbox_subscription(&held.subscription_id)
            .await
        {
            tracing::warn!(mailbox = %self.name(), error = %e, "cannot forget the subscription");
        }
    }

    /// One folder with its delta query.
    async fn scan_folder(
        &self,
        session: &mut Session,
        folders: &mut Folders,
        folder: &str,
        targets: &Targets<'_>,
    ) -> Result<Summary, ApiError> {
        let store = session.app.store().clone();
        let start = format!(
            "{}/mailFolders/{}/messages/delta?$select=id,receivedDateTime",
            session.user_url(),
            encode(targets.folder)
        );
        let mut url = store
            .sync_token(&self.helpdesk, &self.name(), folder)
            .await?
            .unwrap_or_else(|| start.clone());
        let mut total = Summary::default();
        let mut reset = false;
        // A mail that shows up twice in one round (changed while we read) is read once.
        let mut seen = HashSet::new();
        loop {
            let reply = session
                .call("delta query", |c| {
                    c.get(&url)
                        .header("Prefer", format!("odata.maxpagesize={PAGE_SIZE}"))
                })
                .await?;
            if reply.status == 410 || is_sync_reset(&reply) {
                if reset {
                    return Err(failure("delta query", &reply));
                }
                // The token expired or the folder's sync state is gone: read it all
                // again; the ledger recognises what was already taken.
                tracing::warn!(mailbox = %self.name(), folder, code = %reply.code(), "delta token refused, full resync");
                store
                    .clear_sync_token(&self.helpdesk, &self.name(), folder)
                    .await?;
                url = start.clone();
                reset = true;
                continue;
            }
            if !reply.ok() {
                return Err(failure("delta query", &reply));
            }
            let page: Page = reply.json("delta query")?;
            let ids: Vec<String> = page
                .value
                .iter()
                .filter(|m| m.get("@removed").is_none())
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .filter(|id| seen.insert(id.clone()))
                .collect();
            // For the metrics' lag: when the oldest mail of the page (being taken now;
            // those of earlier pages are in) came.
            let arrived = page
                .value
                .iter()
                .filter(|m| m.get("@removed").is_none())
                .filter_map(|m| postdesk_core::time::parse_rfc3339(m["receivedDateTime"].as_str()?))
                .min();
            if arrived.is_some() {
                self.set_waiting_since(&session.app, arrived);
            }
            for chunk in ids.chunks(api::CHUNK) {
                let summary = self.take(session, folders, folder, chunk, targets).await?;
                total.absorb(&summary);
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => url = next,
                (None, Some(delta)) => {
                    store
                        .set_sync_token(&self.helpdesk, &self.name(), folder, &delta)
                        .await?;
                    self.set_waiting_since(&session.app, None);
                    return Ok(total);
                }
                (None, None) => {
                    return Err(ApiError::Protocol {
                        what: "delta query".into(),
                        reason: "a page with neither @odata.nextLink nor @odata.deltaLink".into(),
                    });
                }
            }
        }
    }

    /// Fetches, commits, then moves one chunk of messages.
    async fn take(
        &self,
        session: &mut Session,
        folders: &mut Folders,
        folder: &str,
        ids: &[String],
        targets: &Targets<'_>,
    ) -> Result<Summary, ApiError> {
        let mut mails = Vec::with_capacity(ids.len());
        let mut id_of = HashMap::new();
        for id in ids {
            let url = format!("{}/messages/{}/$value", session.user_url(), encode(id));
            let reply = session.call("message content", |c| c.get(&url)).await?;
            if reply.status == 404 {
                continue; // moved or deleted by someone since the delta listed it
            }
            if !reply.ok() {
                return Err(failure("message content ($value)", &reply));
            }
            let location = format!("graph://{}/{folder}/{id}", self.name());
            id_of.insert(location.clone(), id.clone());
            mails.push(RawMail {
                source: MailSource::Graph,
                location,
                bytes: reply.body,
            });
        }
        let (summary, processed) = self.intake(&session.app, mails).await?;
        self.settle(session, folders, &id_of, &processed, targets)
            .await?;
        Ok(summary)
    }

    /// With the chunk committed, each mail leaves its folder: failures to the
    /// unprocessed folder, mails an `ignore` rule files to theirs, the rest per
    /// `after_success`.
    async fn settle(
        &self,
        session: &mut Session,
        folders: &mut Folders,
        id_of: &HashMap<String, String>,
        processed: &[Processed],
        targets: &Targets<'_>,
    ) -> Result<(), ApiError> {
        for p in processed {
            let Some(id) = id_of.get(&p.location) else {
                continue;
            };
            let target = if p.report.outcome == Outcome::Failed {
                Some(targets.unprocessed.to_string())
            } else if let Some(folder) = &p.report.move_to_folder {
                Some(folders.resolve(session, folder, true).await?)
            } else {
                match self.settings.after_success {
                    AfterSuccess::Move => Some(targets.processed.to_string()),
                    AfterSuccess::MarkRead => {
                        let url = format!("{}/messages/{}", session.user_url(), encode(id));
                        let reply = session
                            .call("mark as read", |c| {
                                c.patch(&url).json(&serde_json::json!({"isRead": true}))
                            })
                            .await?;
                        if !reply.ok() && reply.status != 404 {
                            return Err(failure("mark as read", &reply));
                        }
                        None
                    }
                    // The delta link remembers where reading stopped.
                    AfterSuccess::Keep => None,
                }
            };
            if let Some(target) = target {
                let url = format!("{}/messages/{}/move", session.user_url(), encode(id));
                let reply = session
                    .call("move", |c| {
                        c.post(&url)
                            .json(&serde_json::json!({"destinationId": target}))
                    })
                    .await?;
                // 404: gone already (moved by an earlier run that died before its delta link).
                if !reply.ok() && reply.status != 404 {
                    return Err(failure("move", &reply));
                }
            }
        }
        Ok(())
    }

    /// `postdesk check`: token, mailbox access, each folder, mails waiting.
    pub async fn check(&self, app: &App) -> Vec<CheckStep> {
        let mut steps = Steps::default();
        let flow = match self.settings.flow {
            GraphFlow::ClientCredentials => "client credentials",
            GraphFlow::DeviceCode => "device-code sign-in",
        };
        let signed_in = format!("{flow} at {}", self.authority());
        let Some(mut session) = self
            .check_sign_in(app, &mut steps, "token", signed_in)
            .await
        else {
            return steps.done();
        };
        let url = format!("{}/mailFolders/inbox", session.user_url());
        let access = match session.call("mailbox access", |c| c.get(&url)).await {
            Ok(r) if r.ok() => Ok(self.settings.user.clone()),
            Ok(r) => {
                let e = failure("mailbox access", &r);
                Err(match r.status {
                    404 => format!("{e}. Check `user`: it must be the mailbox's address or id"),
                    _ => e.to_string(),
                })
            }
            Err(e) => Err(e.to_string()),
        };
        if !steps.add("mailbox access", access) {
            return steps.done();
        }
        let mut folders = Folders::default();
        for folder in self.checked_folders() {
            let result = match folders.find(&mut session, folder).await {
                Ok(Some(found)) => Ok(match found.total_item_count {
                    Some(n) if self.settings.folders.contains(folder) => {
                        format!("{} ({n} mails waiting)", found.display_name)
                    }
                    _ => found.display_name,
                }),
                Ok(None) if self.settings.create_folders => Ok(format!(
                    "{folder} is missing; it will be created (create_folders = true)"
                )),
                Ok(None) => Err(format!(
                    "{folder} is missing; create it in the mailbox or set create_folders = true"
                )),
                Err(e) => Err(e.to_string()),
            };
            steps.add(&format!("folder {folder}"), result);
        }
        steps.done()
    }

    /// `postdesk mailboxes authorize NAME`: the device-code sign-in. Prints what the
    /// user does, waits for it, and keeps the tokens in the store.
    pub async fn authorize(&self, app: &App) -> Result<(), ApiError> {
        if self.settings.flow != GraphFlow::DeviceCode {
            return Err(ApiError::Credential(format!(
                "{} signs in with client credentials; set flow = \"device-code\" to sign in as a user",
                self.name()
            )));
        }
        let http = Http::new()?;
        let url = format!("{}/devicecode", self.authority());
        let form = [
            ("client_id", self.client_id()),
            ("scope", DELEGATED_SCOPE.to_string()),
        ];
        let reply = http
            .send("device code", |c| c.post(&url).form(&form))
            .await?;
        if !reply.ok() {
            return Err(ApiError::SignIn(format!(
                "{}. Allow public client flows for the app registration in Entra (Authentication)",
                reply.message()
            )));
        }
        let code: DeviceCode = reply.json("device code")?;
        println!(
            "{}",
            code.message.clone().unwrap_or_else(|| format!(
                "To sign in, open {} and enter the code {}.",
                code.verification_uri, code.user_code
            ))
        );
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(code.expires_in.unwrap_or(900));
        let mut interval = Duration::from_secs(code.interval.unwrap_or(5).max(1));
        let token_url = format!("{}/token", self.authority());
        let secret = graph_token::client_secret(&self.settings)?;
        loop {
            tokio::time::sleep(interval).await;
            let mut form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".to_string(),
                ),
                ("client_id", self.client_id()),
                ("device_code", code.device_code.clone()),
            ];
            if let Some(s) = &secret {
                form.push(("client_secret", s.expose().to_string()));
            }
            let reply = http
                .send("device code sign-in", |c| c.post(&token_url).form(&form))
                .await?;
            if reply.ok() {
                let answer: TokenAnswer = reply.json("token")?;
                let Some(refresh) = answer.refresh_token.clone() else {
                    return Err(ApiError::SignIn(
                        "no refresh token came back; the scope must include offline_access".into(),
                    ));
                };
                let now = postdesk_store::now();
                app.store()
                    .save_oauth_tokens(
                        &self.helpdesk,
                        &self.name(),
                        &StoredTokens {
                            configured: graph_token::fingerprint(&self.settings),
                            refresh_token: refresh,
                            access_token: Some(answer.access_token),
                            expires_at: answer.expires_in.map(|s| now + s),
                        },
                    )
                    .await?;
                return Ok(());
            }
            match reply.code().as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                _ => return Err(ApiError::SignIn(reply.message())),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::SignIn(
                    "the code expired before anyone signed in; run authorize again".into(),
                ));
            }
        }
    }
}

impl api::Provider for Graph {
    const DEFAULT_API: &'static str = DEFAULT_API;
    type State = State;

    /// The one in hand while it has more than [`MARGIN`] left, else a new one.
    async fn token(session: &mut Session) -> Result<Secret, ApiError> {
        let now = postdesk_store::now();
        if let Some((token, expires)) = &session.state.token
            && expires - now > MARGIN
        {
            return Ok(token.clone());
        }
        let m = &session.mailbox;
        let (token, expires) = match m.settings.flow {
            GraphFlow::ClientCredentials => graph_token::client_credentials(&m.settings).await?,
            GraphFlow::DeviceCode => {
                graph_token::delegated(session.app.store(), &m.helpdesk, &m.name(), &m.settings)
                    .await?
            }
        };
        session.state.token = Some((token.clone(), expires));
        Ok(token)
    }

    /// A delegated token is kept in the store: forgotten there too.
    async fn forget_token(session: &mut Session) -> Result<(), ApiError> {
        session.state.token = None;
        if session.mailbox.settings.flow == GraphFlow::DeviceCode {
            session.forget_stored_token().await?;
        }
        Ok(())
    }

    type Folders = Folders;

    async fn folders(_session: &mut Session) -> Result<Folders, ApiError> {
        Ok(Folders::default())
    }

    fn resolve(
        folders: &mut Folders,
        session: &mut Session,
        name: &str,
        create: bool,
    ) -> impl Future<Output = Result<String, ApiError>> + Send {
        folders.resolve(session, name, create)
    }

    fn scan_folder(
        mailbox: &GraphMailbox,
        session: &mut Session,
        folders: &mut Folders,
        name: &str,
        targets: &Targets<'_>,
    ) -> impl Future<Output = Result<Summary, ApiError>> + Send {
        mailbox.scan_folder(session, folders, name, targets)
    }

    /// With `notification_url`: a change-notification subscription per folder, made,
    /// renewed before it runs out, and a scan as soon as a notification comes.
    fn beside(
        mailbox: &GraphMailbox,
        session: &tokio::sync::Mutex<&mut Session>,
        bell: &tokio::sync::Notify,
    ) -> impl Future<Output = ()> + Send {
        mailbox.keep_subscribed(session, bell)
    }

    /// Stopping (or the lease went elsewhere): the next reader makes its own.
    fn after(mailbox: &GraphMailbox, session: &mut Session) -> impl Future<Output = ()> + Send {
        mailbox.unsubscribe(session)
    }
}

/// Folder names to ids, found once per scan.
#[derive(Default)]
pub struct Folders {
    ids: HashMap<String, String>,
}

impl Folders {
    /// The id of `name` (`Parent/Child` for a subfolder; Graph's well-known names such
    /// as `inbox` at the top), created when missing and `create` allows.
    async fn resolve(
        &mut self,
        session: &mut Session,
        name: &str,
        create: bool,
    ) -> Result<String, ApiError> {
        if let Some(id) = self.ids.get(name) {
            return Ok(id.clone());
        }
        let mut parent: Option<String> = None;
        for part in name.split('/').filter(|p| !p.is_empty()) {
            let found = match &parent {
                None if WELL_KNOWN.contains(&part.to_ascii_lowercase().as_str()) => {
                    Some(part.to_ascii_lowercase())
                }
                _ => lookup(session, parent.as_deref(), part)
                    .await?
                    .map(|f| f.id),
            };
            let id = match found {
                Some(id) => id,
                None if create => create_folder(session, parent.as_deref(), part).await?,
                None => return Err(ApiError::MissingFolder(name.to_string())),
            };
            parent = Some(id);
        }
        let id = parent.ok_or_else(|| ApiError::MissingFolder(name.to_string()))?;
        self.ids.insert(name.to_string(), id.clone());
        Ok(id)
    }

    /// The folder `name` if it exists, with its mail count.
    async fn find(
        &mut self,
        session: &mut Session,
        name: &str,
    ) -> Result<Option<Folder>, ApiError> {
        let mut found = None;
        for part in name.split('/').filter(|p| !p.is_empty()) {
            let parent = found.as_ref().map(|f: &Folder| f.id.clone());
            let next =
                if parent.is_none() && WELL_KNOWN.contains(&part.to_ascii_lowercase().as_str()) {
                    let url = format!(
                        "{}/mailFolders/{}",
                        session.user_url(),
                        part.to_ascii_lowercase()
                    );
                    let reply = session.call("folder", |c| c.get(&url)).await?;
                    if !reply.ok() {
                        return Err(failure("folder", &reply));
                    }
                    Some(reply.json::<Folder>("folder")?)
                } else {
                    lookup(session, parent.as_deref(), part).await?
                };
            match next {
                Some(f) => found = Some(f),
                None => return Ok(None),
            }
        }
        Ok(found)
    }
}

async fn lookup(
    session: &mut Session,
    parent: Option<&str>,
    name: &str,
) -> Result<Option<Folder>, ApiError> {
    let url = match parent {
        None => format!("{}/mailFolders", session.user_url()),
        Some(p) => format!(
            "{}/mailFolders/{}/childFolders",
            session.user_url(),
            encode(p)
        ),
    };
    // OData string literals double their single quotes.
    let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
    let reply = session
        .call("folder list", |c| {
            c.get(&url).query(&[
                ("$filter", filter.as_str()),
                ("$select", "id,displayName,totalItemCount"),
            ])
        })
        .await?;
    if !reply.ok() {
        return Err(failure("folder list", &reply));
    }
    let list: FolderList = reply.json("folder list")?;
    Ok(list
        .value
        .into_iter()
        .find(|f| f.display_name.eq_ignore_ascii_case(name)))
}

async fn create_folder(
    session: &mut Session,
    parent: Option<&str>,
    name: &str,
) -> Result<String, ApiError> {
    let url = match parent {
        None => format!("{}/mailFolders", session.user_url()),
        Some(p) => format!(
            "{}/mailFolders/{}/childFolders",
            session.user_url(),
            encode(p)
        ),
    };
    let reply = session
        .call("create folder", |c| {
            c.post(&url).json(&serde_json::json!({"displayName": name}))
        })
        .await?;
    if !reply.ok() {
        return Err(failure("create folder", &reply));
    }
    Ok(reply.json::<Folder>("create folder")?.id)
}

/// How long a subscription is asked for: Graph allows Outlook messages just under
/// seven days (10,080 minutes); three leave room for clocks and missed renewals.
const SUBSCRIPTION_LIFETIME: i64 = 3 * 24 * 3600;
/// A subscription is renewed when less than this is left.
const RENEW_BEFORE: i64 = 24 * 3600;

/// The longest wait between two looks at the subscriptions.
const RECHECK: i64 = 15 * 60;

/// What [`GraphMailbox::subscribe`] did.
struct Subscribed {
    /// When to look at the subscriptions again (the first renewal due).
    next: Duration,
    /// A subscription was made: mail may have come before it.
    created: bool,
}

#[derive(Deserialize)]
struct SubscriptionAnswer {
    id: String,
    #[serde(rename = "expirationDateTime")]
    expiration: Option<String>,
}

impl SubscriptionAnswer {
    /// The expiry Graph granted.
    fn expires_at(&self) -> Option<i64> {
        postdesk_core::time::parse_rfc3339(self.expiration.as_deref()?)
    }
}

/// A new random `clientState`: 32 bytes, hex.
fn new_client_state() -> Result<Secret, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Credential(format!("no random numbers from the system: {e}")))?;
    Ok(Secret::new(hex::encode(bytes)))
}

/// Graph's `410 Gone`, or its error codes for a delta token it no longer knows.
fn is_sync_reset(reply: &Reply) -> bool {
    let code = reply.code();
    reply.status >= 400
        && ["syncstatenotfound", "syncstateinvalid", "resyncrequired"]
            .contains(&code.to_ascii_lowercase().as_str())
}

/// A non-success answer, as the error it is.
fn failure(what: &str, reply: &Reply) -> ApiError {
    reply.failure(
        what,
        "Grant the app registration Mail.ReadWrite (admin consent); if an application access policy limits it, include this mailbox",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("support@example.com"), "support@example.com");
        assert_eq!(encode("AAMk/AD+x="), "AAMk%2FAD%2Bx=");
    }

    #[test]
    fn subscription_times_are_written_and_read_as_graph_does() {
        assert_eq!(
            postdesk_core::time::format_rfc3339(1_795_356_309),
            "2026-11-22T14:05:09Z"
        );
        let answer = SubscriptionAnswer {
            id: "s".into(),
            expiration: Some("2026-11-22T14:05:09.0000000Z".into()),
        };
        assert_eq!(answer.expires_at(), Some(1_795_356_309));
        assert_eq!(new_client_state().unwrap().expose().len(), 64);
        assert_ne!(
            new_client_state().unwrap().expose(),
            new_client_state().unwrap().expose()
        );
    }

    #[test]
    fn sync_resets_are_recognised_by_code() {
        let reply = Reply {
            status: 400,
            body: br#"{"error":{"code":"syncStateNotFound","message":"gone"}}"#.to_vec(),
        };
        assert!(is_sync_reset(&reply));
        let other = Reply {
            status: 400,
            body: br#"{"error":{"code":"ErrorInvalidRequest","message":"no"}}"#.to_vec(),
        };
        assert!(!is_sync_reset(&other));
    }
}
