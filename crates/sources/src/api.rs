//! What Graph and Gmail mailboxes share: HTTP calls that obey the provider's
//! throttling (429/503 with `Retry-After`) and survive a cut connection, their errors
//! sorted into transient and permanent ones, the intake of a chunk of mails (committed
//! before anything is moved), the health record, and the [`Mailbox`] and its
//! [`Session`] — `scan_once`, `serve` with its polling loop, signed calls — with what
//! each provider does its own way behind [`Provider`].

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postdesk_app::App;
use postdesk_app::intake::{PipelineError, Processed, Summary};
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox};
use postdesk_core::RawMail;
use postdesk_core::error::{Context, chain};
use postdesk_core::mailbox::{MailboxSettings, Secret};
use postdesk_store::leases::LeaseFence;
use tokio::sync::{Notify, watch};

/// Attempts per request when the provider throttles or the connection breaks.
const ATTEMPTS: u32 = 6;
/// The longest `Retry-After` obeyed in one wait; longer ones are waited in the next scan.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Mails fetched, then committed together, before they are moved.
pub const CHUNK: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach {url}: {reason}. Check api_url / login_url and the network")]
    Connect { url: String, reason: String },
    #[error(
        "{what}: the provider still throttles after {ATTEMPTS} attempts (HTTP {status}); postdesk tries again later"
    )]
    Throttled { what: String, status: u16 },
    #[error("{what}: the provider answered HTTP {status}: {message}")]
    Server {
        what: String,
        status: u16,
        message: String,
    },
    /// The sign-in itself was refused: a wrong or revoked secret, a revoked refresh token.
    #[error("sign-in refused: {0}")]
    SignIn(String),
    #[error("{what}: access denied (HTTP {status}): {message}. {hint}")]
    Denied {
        what: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error("folder `{0}` does not exist in the mailbox; create it or set create_folders = true")]
    MissingFolder(String),
    #[error("{what}: unreadable answer: {reason}")]
    Protocol { what: String, reason: String },
    #[error("{0}")]
    Credential(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<postdesk_credentials::CredentialError> for ApiError {
    fn from(e: postdesk_credentials::CredentialError) -> Self {
        use postdesk_credentials::CredentialError as E;
        match e {
            E::Missing(m) => Self::Credential(m),
            E::OAuth(m) => Self::SignIn(m),
            E::Call { what, source } => Self::SignIn(chain(&Context::new(what, source))),
            E::Store(s) => Self::Pipeline(s.into()),
        }
    }
}

impl From<postdesk_credentials::graph::GraphTokenError> for ApiError {
    fn from(e: postdesk_credentials::graph::GraphTokenError) -> Self {
        use postdesk_credentials::graph::GraphTokenError as E;
        match e {
            E::Refused(m) => Self::SignIn(m),
            E::Unavailable(m) => Self::Connect {
                url: "the sign-in endpoint".into(),
                reason: m,
            },
            E::Credential(c) => c.into(),
        }
    }
}

impl From<postdesk_store::StoreError> for ApiError {
    fn from(e: postdesk_store::StoreError) -> Self {
        Self::Pipeline(e.into())
    }
}

impl ApiError {
    /// Worth retrying soon: the network, the provider's load, the store.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Throttled { .. } | Self::Pipeline(_) => true,
            Self::Server { status, .. } => *status >= 500,
            Self::Protocol { .. } => true,
            _ => false,
        }
    }

    /// Needs someone to act (a secret, a permission, a folder): retrying changes nothing.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// Another instance took the mailbox's lease over: stop reading it.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Pipeline(p) if p.is_lease_lost())
    }

    /// The sign-in was refused: the alert contacts are told.
    pub fn is_sign_in(&self) -> bool {
        matches!(self, Self::SignIn(_))
    }
}

/// An answer read to its end.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Protocol {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// The provider's own words: `error.message` (Graph, Gmail) or `error_description`
    /// (OAuth2), with the error code, else the start of the body.
    pub fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Wrapped {
            error: serde_json::Value,
            error_description: Option<String>,
        }
        if let Ok(w) = serde_json::from_slice::<Wrapped>(&self.body) {
            return match w.error {
                serde_json::Value::String(code) => match w.error_description {
                    Some(d) => format!("{code} ({d})"),
                    None => code,
                },
                serde_json::Value::Object(o) => {
                    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                    format!(
                        "{} ({})",
                        text("message"),
                        text("code").to_owned() + text("status")
                    )
                }
                other => other.to_string(),
            };
        }
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(200).collect()
    }

    /// A non-success answer, as the error it is; a 403 says what to grant (`denied`,
    /// the provider's words).
    pub fn failure(&self, what: &str, denied: &'static str) -> ApiError {
        match self.status {
            403 => ApiError::Denied {
                what: what.to_string(),
                status: 403,
                message: self.message(),
                hint: denied,
            },
            status => ApiError::Server {
                what: what.to_string(),
                status,
                message: self.message(),
            },
        }
    }

    /// Graph's `error.code` or Gmail's `error.status`/OAuth2's `error`, for decisions.
    pub fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match &v["error"] {
            serde_json::Value::String(s) => s.clone(),
            e => e["code"]
                .as_str()
                .or(e["status"].as_str())
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// The HTTP client of a mailbox.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Self, ApiError> {
        Ok(Self {
            client: postdesk_credentials::http_client()?,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request `build` makes (again for each attempt) and reads the answer.
    /// 429 and 503 are waited out as `Retry-After` says (a backoff without it); a
    /// connection that fails or breaks mid-answer is tried again; other answers are
    /// the caller's.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, ApiError> {
        let mut backoff = Duration::from_millis(500);
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            let request = build(&self.client);
            let outcome = async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
                let body = response.bytes().await?.to_vec();
                Ok::<_, reqwest::Error>((Reply { status, body }, retry_after))
            }
            .await;
            let wait = match outcome {
                Ok((reply, retry_after)) if matches!(reply.status, 429 | 503) => {
                    tracing::info!(what, status = reply.status, ?retry_after, "throttled");
                    last = Some(ApiError::Throttled {
                        what: what.to_string(),
                        status: reply.status,
                    });
                    retry_after.unwrap_or(backoff).min(MAX_RETRY_AFTER)
                }
                Ok((reply, _)) => return Ok(reply),
                Err(e) => {
                    let url = e.url().map(|u| redacted(u.as_str())).unwrap_or_default();
                    tracing::info!(what, error = %e, attempt, "request failed");
                    last = Some(ApiError::Connect {
                        url,
                        reason: without_url(&e),
                    });
                    backoff
                }
            };
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
        Err(last.expect("at least one attempt"))
    }
}

/// `Retry-After` in seconds (what Graph and Google send); an HTTP date is not used by
/// either and is taken as "no hint".
fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A URL without its query: delta links and page tokens are bearer-like state.
fn redacted(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

/// reqwest's message, without the URL it appends (it may carry a delta token).
fn without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    let text = match e.url() {
        Some(u) => text.replace(&format!(" ({u})"), "").replace(u.as_str(), ""),
        None => text,
    };
    let mut source = std::error::Error::source(e);
    let mut out = text;
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

/// A URL path segment: ids and addresses are URL-safe but for a few characters.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' | b'=' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Records a scan's result as the mailbox's health; a refused sign-in that is new
/// (not the error already on record) alerts the helpdesk's alert contacts.
pub async fn record(app: &App, helpdesk: &str, name: &str, result: &Result<Summary, ApiError>) {
    if let Err(e) = result
        && e.is_lease_lost()
    {
        return; // not this mailbox's health: another instance reads it now
    }
    let store = app.store();
    let outcome = match result {
        Ok(s) => {
            store
                .mailbox_scanned(helpdesk, name, s.total() - s.failed, s.failed)
                .await
        }
        Err(e) => {
            let message = e.to_string();
            if e.is_sign_in() {
                let known = store.mailbox_statuses().await.ok().and_then(|all| {
                    all.into_iter()
                        .find(|s| s.helpdesk == helpdesk && s.mailbox == name)
                        .and_then(|s| s.last_error)
                });
                if known.as_deref() != Some(message.as_str()) {
                    alert(app, helpdesk, name, &message).await;
                }
            }
            store.mailbox_failed(helpdesk, name, &message).await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(mailbox = %name, error = %e, "cannot record the mailbox status");
    }
}

async fn alert(app: &App, helpdesk: &str, name: &str, problem: &str) {
    let Some(hd) = app
        .helpdesks()
        .iter()
        .find(|h| h.config.settings.name == helpdesk)
    else {
        return;
    };
    if let Err(e) = app.outbox().mailbox_alert(hd, name, problem).await {
        tracing::warn!(mailbox = %name, error = %e, "cannot queue the mailbox alert");
    }
}

/// A Graph or Gmail mailbox and the helpdesk it feeds. What the two share is here
/// once; the provider `P` ([`crate::graph::Graph`], [`crate::gmail::Gmail`]) says
/// through [`Provider`] what differs: the sign-in, one scan, what runs beside.
#[derive(Debug, Clone)]
pub struct Mailbox<P> {
    pub helpdesk: String,
    /// Position of the helpdesk in the App's helpdesks: every mail of this mailbox goes there.
    pub helpdesk_index: usize,
    pub settings: MailboxSettings,
    /// The lease this mailbox is read under (`serve`, `scan`): its batches commit
    /// only while it holds (see `postdesk_store::leases`).
    pub fence: Option<LeaseFence>,
    provider: PhantomData<P>,
}

impl<P> From<&ConfiguredMailbox> for Mailbox<P> {
    fn from(c: &ConfiguredMailbox) -> Self {
        Self {
            helpdesk: c.helpdesk.clone(),
            helpdesk_index: c.helpdesk_index,
            settings: c.settings.clone(),
            fence: None,
            provider: PhantomData,
        }
    }
}

impl<P> Mailbox<P> {
    pub fn name(&self) -> String {
        self.settings.display_name()
    }
}

impl<P: Provider> Mailbox<P> {
    /// The provider's API root: `api_url`, else its public one.
    pub(crate) fn api(&self) -> &str {
        self.settings
            .api_url
            .as_deref()
            .unwrap_or(P::DEFAULT_API)
            .trim_end_matches('/')
    }

    /// A session with a new HTTP client and no access token yet.
    pub(crate) fn session(&self, app: &App) -> Result<Session<P>, ApiError> {
        Ok(Session {
            mailbox: self.clone(),
            app: app.clone(),
            http: Http::new()?,
            state: P::State::default(),
        })
    }

    /// Runs `mails` (none: nothing to do) through the helpdesk's intake, under the
    /// mailbox's lease, and counts them in the metrics: the summary and each mail's
    /// result, all committed when this returns (the caller moves them only then).
    pub(crate) async fn intake(
        &self,
        app: &App,
        mails: Vec<RawMail>,
    ) -> Result<(Summary, Vec<Processed>), ApiError> {
        if mails.is_empty() {
            return Ok(Default::default());
        }
        let processed = Arc::new(Mutex::new(Vec::with_capacity(mails.len())));
        let sink = Arc::clone(&processed);
        let summary = app
            .intake()
            .with_helpdesk(self.helpdesk_index)
            .with_fence(self.fence.clone())
            .with_batch_size(CHUNK)
            .run(mails.into_iter(), move |batch| {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(batch);
            })
            .await?;
        let processed = std::mem::take(&mut *processed.lock().unwrap_or_else(|e| e.into_inner()));
        app.metrics()
            .count_mails(&self.helpdesk, &self.name(), &processed);
        Ok((summary, processed))
    }

    /// `postdesk_mailbox_lag_seconds` counts from `arrived` (`None`: nothing waits). It
    /// stays set while a scan fails, so the lag grows until the mail is in.
    pub(crate) fn set_waiting_since(&self, app: &App, arrived: Option<i64>) {
        app.metrics()
            .set_mailbox_waiting_since(&self.helpdesk, &self.name(), arrived);
    }

    /// Every folder once, committed and moved when it returns: where mail goes
    /// resolved first (created where `create_folders` allows), then each folder read.
    async fn scan(&self, session: &mut Session<P>) -> Result<Summary, ApiError> {
        let create = self.settings.create_folders;
        let mut folders = P::folders(session).await?;
        let processed = P::resolve(
            &mut folders,
            session,
            &self.settings.processed_folder,
            create,
        )
        .await?;
        let unprocessed = P::resolve(
            &mut folders,
            session,
            &self.settings.unprocessed_folder,
            create,
        )
        .await?;
        let mut total = Summary::default();
        for name in &self.settings.folders {
            let folder = P::resolve(&mut folders, session, name, false).await?;
            let targets = Targets {
                folder: &folder,
                processed: &processed,
                unprocessed: &unprocessed,
            };
            let summary = P::scan_folder(self, session, &mut folders, name, &targets).await?;
            total.absorb(&summary);
        }
        Ok(total)
    }

    /// Scans every folder once; the result is recorded as the mailbox's health.
    pub async fn scan_once(&self, app: &App) -> Result<Summary, ApiError> {
        let result = async {
            let mut session = self.session(app)?;
            self.scan(&mut session).await
        }
        .await;
        record(app, &self.helpdesk, &self.name(), &result).await;
        result
    }

    /// Reads the mailbox until `shutdown` with one session (and token) throughout:
    /// polls every `interval_secs` and when its bell rings (a change notification),
    /// with [`Provider::beside`] running along (Graph's subscriptions, Gmail's
    /// watch); each scan recorded as the mailbox's health.
    pub async fn serve(&self, app: &App, shutdown: watch::Receiver<bool>) {
        let name = self.name();
        let mut session = match self.session(app) {
            Ok(s) => s,
            Err(e) => {
                record(app, &self.helpdesk, &name, &Err(e)).await;
                return;
            }
        };
        let session = tokio::sync::Mutex::new(&mut session);
        let bell = app.wakeups().bell(&self.helpdesk, &name);
        let polling = poll(
            &name,
            Duration::from_secs(self.settings.interval_secs),
            shutdown,
            &bell,
            || async {
                let mut session = session.lock().await;
                let result = self.scan(&mut session).await;
                record(app, &self.helpdesk, &name, &result).await;
                result
            },
        );
        tokio::select! {
            _ = polling => {}
            _ = P::beside(self, &session, &bell) => {}
        }
        let mut session = session.lock().await;
        P::after(self, &mut session).await;
    }
}

impl<P: Provider> Mailbox<P> {
    /// The start of `postdesk check` with either provider: a session and an access
    /// token, each a step (the token's named `token`, said as `signed_in`); `None`
    /// when one failed, as the next steps need both.
    pub(crate) async fn check_sign_in(
        &self,
        app: &App,
        steps: &mut Steps,
        token: &str,
        signed_in: String,
    ) -> Option<Session<P>> {
        let mut session = match self.session(app) {
            Ok(s) => s,
            Err(e) => {
                steps.add("credentials", Err(e.to_string()));
                return None;
            }
        };
        let result = P::token(&mut session).await.map(|_| signed_in);
        steps
            .add(token, result.map_err(|e| e.to_string()))
            .then_some(session)
    }

    /// The folders `postdesk check` looks at: those read, then where mail goes.
    pub(crate) fn checked_folders(&self) -> impl Iterator<Item = &String> {
        self.settings.folders.iter().chain([
            &self.settings.processed_folder,
            &self.settings.unprocessed_folder,
        ])
    }
}

/// The steps of `postdesk check`, in order.
#[derive(Default)]
pub(crate) struct Steps(Vec<CheckStep>);

impl Steps {
    /// Adds a step; whether it passed (the next steps may need it).
    pub(crate) fn add(&mut self, name: &str, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        self.0.push(CheckStep {
            name: name.to_string(),
            result,
        });
        ok
    }

    pub(crate) fn done(self) -> Vec<CheckStep> {
        self.0
    }
}

/// A scanned folder and where its mails go, as the provider's ids.
pub struct Targets<'a> {
    pub folder: &'a str,
    pub processed: &'a str,
    pub unprocessed: &'a str,
}

/// What differs between Graph and Gmail: the sign-in, the folders (labels) and the
/// read of one, and what runs beside the polling. Implemented by the provider types of [`Mailbox`].
pub trait Provider: Clone + Send + Sync + 'static {
    /// The API root where `api_url` names none.
    const DEFAULT_API: &'static str;
    /// What a session keeps besides the client, for as long as it lives (Graph: its
    /// access token and subscriptions; Gmail: whether it watches).
    type State: Default + Send;

    /// A valid access token: the one in hand, else a new one.
    fn token(session: &mut Session<Self>) -> impl Future<Output = Result<Secret, ApiError>> + Send;

    /// The token in hand was refused before its time: the next [`Provider::token`]
    /// gets a new one.
    fn forget_token(
        session: &mut Session<Self>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Folder (Graph) or label (Gmail) ids by name, looked up once per scan.
    type Folders: Send;

    /// The folder ids a scan starts with.
    fn folders(
        session: &mut Session<Self>,
    ) -> impl Future<Output = Result<Self::Folders, ApiError>> + Send;

    /// The id of the folder `name`, created when missing and `create` allows.
    fn resolve(
        folders: &mut Self::Folders,
        session: &mut Session<Self>,
        name: &str,
        create: bool,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// The new mails of the folder `name`, taken in and moved to `targets`; committed
    /// and moved when it returns.
    fn scan_folder(
        mailbox: &Mailbox<Self>,
        session: &mut Session<Self>,
        folders: &mut Self::Folders,
        name: &str,
        targets: &Targets<'_>,
    ) -> impl Future<Output = Result<Summary, ApiError>> + Send;

    /// Runs beside `serve`'s polling and is dropped when the polling ends (Graph keeps
    /// its change-notification subscriptions here). By default nothing.
    fn beside(
        _mailbox: &Mailbox<Self>,
        _session: &tokio::sync::Mutex<&mut Session<Self>>,
        _bell: &Notify,
    ) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// After `serve` stopped polling, with the session (Graph deletes its
    /// subscriptions). By default nothing.
    fn after(
        _mailbox: &Mailbox<Self>,
        _session: &mut Session<Self>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A signed-in connection to one mailbox, kept across scans by `serve`: the HTTP
/// client, and what the provider keeps besides (its [`Provider::State`]).
pub struct Session<P: Provider> {
    pub(crate) mailbox: Mailbox<P>,
    pub(crate) app: App,
    pub(crate) http: Http,
    pub(crate) state: P::State,
}

impl<P: Provider> Session<P> {
    /// The mailbox's root, the same form with both providers.
    pub(crate) fn user_url(&self) -> String {
        format!(
            "{}/users/{}",
            self.mailbox.api(),
            encode(&self.mailbox.settings.user)
        )
    }

    /// A call with the access token; a 401 (the token expired or was revoked early)
    /// gets a new token and one more try, a second 401 is a refused sign-in.
    pub(crate) async fn call(
        &mut self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, ApiError> {
        for fresh in [false, true] {
            let token = P::token(self).await?;
            let reply = self
                .http
                .send(what, |c| build(c).bearer_auth(token.expose()))
                .await?;
            if reply.status != 401 {
                return Ok(reply);
            }
            if fresh {
                return Err(ApiError::SignIn(format!(
                    "{what}: a new access token was refused too: {}",
                    reply.message()
                )));
            }
            tracing::info!(what, "access token refused, signing in again");
            P::forget_token(self).await?;
        }
        unreachable!("the loop returns")
    }

    /// Forgets the access token kept in the store (Gmail's, shared with IMAP's
    /// OAuth2, and Graph's delegated one).
    pub(crate) async fn forget_stored_token(&self) -> Result<(), ApiError> {
        let m = &self.mailbox;
        postdesk_credentials::forget_access_token(self.app.store(), &m.helpdesk, &m.name()).await?;
        Ok(())
    }
}

/// `serve` for a Graph or Gmail mailbox: `scan` every `interval`, and at once when
/// `bell` rings (a change notification); after an error, with backoff (long for a permanent one), until
/// `shutdown` turns true. The scan in hand is finished first.
async fn poll<F, Fut>(
    name: &str,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    bell: &Notify,
    mut scan: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Summary, ApiError>>,
{
    let mut backoff = Duration::from_secs(1);
    while !*shutdown.borrow() {
        let wait = match scan().await {
            Ok(summary) => {
                backoff = Duration::from_secs(1);
                if summary.total() > 0 {
                    tracing::info!(mailbox = %name, %summary, "scanned");
                }
                interval
            }
            Err(e) if e.is_lease_lost() => {
                tracing::info!(mailbox = %name, "another instance took the mailbox over");
                return;
            }
            Err(e) => {
                let wait = if e.is_transient() {
                    backoff
                } else {
                    MAX_BACKOFF
                };
                tracing::warn!(mailbox = %name, error = %e, retry_in = ?wait, "mailbox error");
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait.min(interval.max(backoff))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
            // A change notification (`postdesk_app::push`): scan now.
            _ = bell.notified() => {
                tracing::debug!(mailbox = %name, "woken by a change notification");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn provider_messages_are_read() {
        let graph = Reply {
            status: 410,
            body: br#"{"error":{"code":"SyncStateNotFound","message":"The sync state is gone."}}"#
                .to_vec(),
        };
        assert_eq!(graph.code(), "SyncStateNotFound");
        assert_eq!(
            graph.message(),
            "The sync state is gone. (SyncStateNotFound)"
        );
        let oauth = Reply {
            status: 400,
            body: br#"{"error":"invalid_grant","error_description":"revoked"}"#.to_vec(),
        };
        assert_eq!(oauth.code(), "invalid_grant");
        assert_eq!(oauth.message(), "invalid_grant (revoked)");
        let gmail = Reply {
            status: 404,
            body: br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#.to_vec(),
        };
        assert_eq!(gmail.code(), "NOT_FOUND");
    }

    #[test]
    fn urls_lose_their_query() {
        assert_eq!(
            redacted("https://graph/v1.0/me/delta?$deltatoken=secret"),
            "https://graph/v1.0/me/delta"
        );
    }
}
