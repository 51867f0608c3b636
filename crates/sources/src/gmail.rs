//! Gmail mailboxes through the Gmail API (`kind = "gmail"`): OAuth2 with the refresh
//! token of `[helpdesk.mailbox.oauth2]` (a rotated one kept in the store, as for IMAP),
//! labels as folders, each mail's raw RFC 822 form through the same intake as IMAP
//! mail, and only after the commit the label change (the scanned label removed, the
//! processed or unprocessed one added).
//!
//! The first read of a label lists its messages; the mailbox's history id, taken
//! before that listing, is kept and later reads follow the history from there. It is
//! saved only once every mail before it is committed and relabelled; a history id
//! Gmail no longer knows (404) starts the label over, and the ledger recognises what
//! was already taken.
//!
//! With `topic`, `serve` also asks Gmail to publish the mailbox's changes to that
//! Pub/Sub topic (`users.watch`, renewed every few hours, stopped when it stops); the
//! push arrives at the web listener (`/hooks/gmail?token=…`) and rings the mailbox's
//! bell, so the history is read at once. Polling goes on as the fallback.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine as _;
use postdesk_app::App;
use postdesk_app::intake::{Processed, Summary};
use postdesk_app::mailboxes::CheckStep;
use postdesk_core::mailbox::{AfterSuccess, Secret};
use postdesk_core::{MailSource, RawMail};
use postdesk_store::Outcome;
use serde::Deserialize;

use crate::api::{self, ApiError, Reply, Steps, Targets, encode};

pub const DEFAULT_API: &str = "https://gmail.googleapis.com/gmail/v1";
const PAGE_SIZE: usize = 100;

/// A Gmail mailbox and the helpdesk it feeds.
pub type GmailMailbox = api::Mailbox<Gmail>;

/// The Gmail API, as [`api::Provider`]: OAuth2 with a refresh token, labels as
/// folders, the history, a Pub/Sub watch beside the polling.
#[derive(Debug, Clone)]
pub enum Gmail {}

/// What a Gmail session keeps besides its client.
#[derive(Default)]
pub struct State {
    /// This reader asked Gmail to watch the mailbox (`topic`): it stops the watch
    /// when it stops.
    watching: bool,
}

type Session = api::Session<Gmail>;

#[derive(Deserialize)]
struct Profile {
    #[serde(rename = "emailAddress", default)]
    email_address: String,
    #[serde(rename = "messagesTotal")]
    messages_total: Option<i64>,
    #[serde(rename = "historyId")]
    history_id: String,
}

#[derive(Deserialize, Clone)]
struct Label {
    id: String,
    name: String,
    #[serde(rename = "messagesTotal")]
    messages_total: Option<i64>,
}

#[derive(Deserialize)]
struct Labels {
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct MessageRef {
    id: String,
    #[serde(rename = "labelIds", default)]
    label_ids: Vec<String>,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageRef>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Added {
    message: MessageRef,
}

#[derive(Deserialize)]
struct LabelChange {
    message: MessageRef,
    #[serde(rename = "labelIds", default)]
    label_ids: Vec<String>,
}

#[derive(Deserialize)]
struct HistoryRecord {
    #[serde(rename = "messagesAdded", default)]
    messages_added: Vec<Added>,
    #[serde(rename = "labelsAdded", default)]
    labels_added: Vec<LabelChange>,
}

#[derive(Deserialize)]
struct History {
    #[serde(default)]
    history: Vec<HistoryRecord>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(rename = "historyId")]
    history_id: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "labelIds", default)]
    label_ids: Vec<String>,
    raw: String,
    /// When it came, milliseconds since 1970 (a string).
    #[serde(rename = "internalDate")]
    internal_date: Option<String>,
}

impl GmailMailbox {
    /// One label, listed the first time, then its history followed.
    async fn scan_label(
        &self,
        session: &mut Session,
        labels: &mut LabelMap,
        folder: &str,
        targets: &Targets<'_>,
    ) -> Result<Summary, ApiError> {
        let store = session.app.store().clone();
        let known = store
            .sync_token(&self.helpdesk, &self.name(), folder)
            .await?;
        let (ids, history_id) = match known {
            Some(start) => match session.history(targets.folder, &start).await? {
                Some(found) => found,
                None => {
                    tracing::warn!(mailbox = %self.name(), folder, "history id too old, full resync");
                    store
                        .clear_sync_token(&self.helpdesk, &self.name(), folder)
                        .await?;
                    session.list(targets.folder).await?
                }
            },
            None => session.list(targets.folder).await?,
        };
        let mut total = Summary::default();
        for chunk in ids.chunks(api::CHUNK) {
            let summary = self.take(session, labels, folder, chunk, targets).await?;
            total.absorb(&summary);
        }
        store
            .set_sync_token(&self.helpdesk, &self.name(), folder, &history_id)
            .await?;
        self.set_waiting_since(&session.app, None);
        Ok(total)
    }

    async fn take(
        &self,
        session: &mut Session,
        labels: &mut LabelMap,
        folder: &str,
        ids: &[String],
        targets: &Targets<'_>,
    ) -> Result<Summary, ApiError> {
        let mut mails = Vec::with_capacity(ids.len());
        let mut id_of = HashMap::new();
        let mut oldest: Option<i64> = None;
        for id in ids {
            let url = format!("{}/messages/{}", session.user_url(), encode(id));
            let reply = session
                .call("raw message", |c| c.get(&url).query(&[("format", "raw")]))
                .await?;
            if reply.status == 404 {
                continue; // deleted since it was listed
            }
            if !reply.ok() {
                return Err(failure("raw message", &reply));
            }
            let message: RawMessage = reply.json("raw message")?;
            // Relabelled since the history named it (by us, before a crash, or by someone).
            if !message.label_ids.iter().any(|l| l == targets.folder) {
                continue;
            }
            // Gmail pads its base64url; decoding without the padding takes either form.
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(message.raw.trim_end_matches('='))
                .map_err(|e| ApiError::Protocol {
                    what: "raw message".into(),
                    reason: format!("not base64url: {e}"),
                })?;
            let arrived = message
                .internal_date
                .as_deref()
                .and_then(|ms| ms.parse::<i64>().ok())
                .map(|ms| ms / 1000);
            if let Some(arrived) = arrived {
                oldest = Some(oldest.map_or(arrived, |o| o.min(arrived)));
            }
            let location = format!("gmail://{}/{folder}/{id}", self.name());
            id_of.insert(location.clone(), id.clone());
            mails.push(RawMail {
                source: MailSource::Gmail,
                location,
                bytes,
            });
        }
        // The metrics' lag counts from the oldest of the chunk until the label is done
        // (and on, while a scan fails).
        if oldest.is_some() {
            self.set_waiting_since(&session.app, oldest);
        }
        let (summary, processed) = self.intake(&session.app, mails).await?;
        self.settle(session, labels, &id_of, &processed, targets)
            .await?;
        Ok(summary)
    }

    /// With the chunk committed, the labels change: the scanned label goes, the
    /// unprocessed (failures), the rule's or the processed one comes.
    async fn settle(
        &self,
        session: &mut Session,
        labels: &mut LabelMap,
        id_of: &HashMap<String, String>,
        processed: &[Processed],
        targets: &Targets<'_>,
    ) -> Result<(), ApiError> {
        for p in processed {
            let Some(id) = id_of.get(&p.location) else {
                continue;
            };
            let (add, remove): (Vec<String>, Vec<String>) = if p.report.outcome == Outcome::Failed {
                (
                    vec![targets.unprocessed.to_string()],
                    vec![targets.folder.to_string()],
                )
            } else if let Some(folder) = &p.report.move_to_folder {
                let label = labels.resolve(session, folder, true).await?;
                (vec![label], vec![targets.folder.to_string()])
            } else {
                match self.settings.after_success {
                    AfterSuccess::Move => (
                        vec![targets.processed.to_string()],
                        vec![targets.folder.to_string()],
                    ),
                    AfterSuccess::MarkRead => (Vec::new(), vec!["UNREAD".to_string()]),
                    AfterSuccess::Keep => continue,
                }
            };
            let url = format!("{}/messages/{}/modify", session.user_url(), encode(id));
            let body = serde_json::json!({"addLabelIds": add, "removeLabelIds": remove});
            let reply = session
                .call("label change", |c| c.post(&url).json(&body))
                .await?;
            if !reply.ok() && reply.status != 404 {
                return Err(failure("label change", &reply));
            }
        }
        Ok(())
    }

    /// `postdesk check`: token, mailbox access, each label.
    pub async fn check(&self, app: &App) -> Vec<CheckStep> {
        let mut steps = Steps::default();
        let Some(mut session) = self
            .check_sign_in(app, &mut steps, "OAuth2 token", "refreshed".to_string())
            .await
        else {
            return steps.done();
        };
        let url = format!("{}/profile", session.user_url());
        let profile = match session.call("mailbox access", |c| c.get(&url)).await {
            Ok(r) if r.ok() => r.json::<Profile>("profile"),
            Ok(r) => Err(failure("mailbox access", &r)),
            Err(e) => Err(e),
        };
        let access = profile.map(|p| {
            format!(
                "{}, {} mails",
                p.email_address,
                p.messages_total.unwrap_or(0)
            )
        });
        if !steps.add("mailbox access", access.map_err(|e| e.to_string())) {
            return steps.done();
        }
        let labels = match session.labels().await {
            Ok(l) => l,
            Err(e) => {
                steps.add("labels", Err(e.to_string()));
                return steps.done();
            }
        };
        for folder in self.checked_folders() {
            let result = match labels.find(folder) {
                Some(l) => Ok(match l.messages_total {
                    Some(n) if self.settings.folders.contains(folder) => {
                        format!("label {} ({n} mails)", l.name)
                    }
                    _ => format!("label {}", l.name),
                }),
                None if self.settings.create_folders => Ok(format!(
                    "{folder} is missing; it will be created (create_folders = true)"
                )),
                None => Err(format!(
                    "there is no label {folder}; create it in Gmail or set create_folders = true"
                )),
            };
            steps.add(&format!("folder {folder}"), result);
        }
        steps.done()
    }
}

impl api::Provider for Gmail {
    const DEFAULT_API: &'static str = DEFAULT_API;
    type State = State;

    /// Refreshed, a rotated refresh token kept, by the credentials crate.
    async fn token(session: &mut Session) -> Result<Secret, ApiError> {
        let m = &session.mailbox;
        let oauth2 = m.settings.oauth2.as_ref().ok_or_else(|| {
            ApiError::Credential("kind = \"gmail\" needs [helpdesk.mailbox.oauth2]".into())
        })?;
        Ok(
            postdesk_credentials::access_token(session.app.store(), &m.helpdesk, &m.name(), oauth2)
                .await?,
        )
    }

    /// The access token is kept in the store (shared with IMAP's OAuth2).
    async fn forget_token(session: &mut Session) -> Result<(), ApiError> {
        session.forget_stored_token().await
    }

    type Folders = LabelMap;

    fn folders(session: &mut Session) -> impl Future<Output = Result<LabelMap, ApiError>> + Send {
        session.labels()
    }

    fn resolve(
        labels: &mut LabelMap,
        session: &mut Session,
        name: &str,
        create: bool,
    ) -> impl Future<Output = Result<String, ApiError>> + Send {
        labels.resolve(session, name, create)
    }

    fn scan_folder(
        mailbox: &GmailMailbox,
        session: &mut Session,
        labels: &mut LabelMap,
        name: &str,
        targets: &Targets<'_>,
    ) -> impl Future<Output = Result<Summary, ApiError>> + Send {
        mailbox.scan_label(session, labels, name, targets)
    }

    /// With `topic`: the watch, asked for and renewed.
    fn beside(
        mailbox: &GmailMailbox,
        session: &tokio::sync::Mutex<&mut Session>,
        bell: &tokio::sync::Notify,
    ) -> impl Future<Output = ()> + Send {
        mailbox.keep_watching(session, bell)
    }

    /// Stopping (or the lease went elsewhere): the watch is stopped.
    fn after(mailbox: &GmailMailbox, session: &mut Session) -> impl Future<Output = ()> + Send {
        mailbox.stop_watching(session)
    }
}

/// How often the watch is asked for again: Gmail keeps one seven days and asks for a
/// renewal daily; a shorter period also bounds how long a watch stopped by the
/// mailbox's previous reader (another instance, stopping late) stays away.
const WATCH_RENEWAL: Duration = Duration::from_secs(6 * 3600);

impl GmailMailbox {
    /// Keeps Gmail publishing the mailbox's changes to `topic` (never returns). A
    /// failure is logged and tried again with backoff; meanwhile polling goes on.
    async fn keep_watching(
        &self,
        session: &tokio::sync::Mutex<&mut Session>,
        bell: &tokio::sync::Notify,
    ) {
        let Some(topic) = &self.settings.topic else {
            return std::future::pending().await;
        };
        let mut backoff = Duration::from_secs(5);
        loop {
            let outcome = {
                let mut session = session.lock().await;
                self.watch(&mut session, topic).await
            };
            let wait = match outcome {
                Ok(()) => {
                    backoff = Duration::from_secs(5);
                    // Mail that came before the watch was in force: one scan covers it.
                    bell.notify_one();
                    WATCH_RENEWAL
                }
                Err(e) => {
                    tracing::warn!(mailbox = %self.name(), error = %e, retry_in = ?backoff, "cannot watch the mailbox (Gmail push); polling every interval_secs meanwhile");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(3600));
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// `users.watch` on the scanned labels.
    async fn watch(&self, session: &mut Session, topic: &str) -> Result<(), ApiError> {
        let mut labels = session.labels().await?;
        let mut ids = Vec::new();
        for folder in &self.settings.folders {
            ids.push(labels.resolve(session, folder, false).await?);
        }
        let url = format!("{}/watch", session.user_url());
        let body = serde_json::json!({
            "topicName": topic,
            "labelIds": ids,
            "labelFilterBehavior": "INCLUDE",
        });
        let reply = session
            .call("watch (Gmail push)", |c| c.post(&url).json(&body))
            .await?;
        if !reply.ok() {
            return Err(failure("watch (Gmail push)", &reply));
        }
        session.state.watching = true;
        Ok(())
    }

    /// `users.stop`, when this reader started the watch (best effort).
    async fn stop_watching(&self, session: &mut Session) {
        if !std::mem::take(&mut session.state.watching) {
            return;
        }
        let url = format!("{}/stop", session.user_url());
        match session.call("stop the watch", |c| c.post(&url)).await {
            Ok(r) if r.ok() => {}
            Ok(r) => {
                tracing::warn!(mailbox = %self.name(), error = %failure("stop the watch", &r), "the watch stays until it runs out")
            }
            Err(e) => {
                tracing::warn!(mailbox = %self.name(), error = %e, "the watch stays until it runs out")
            }
        }
    }
}

impl Session {
    async fn labels(&mut self) -> Result<LabelMap, ApiError> {
        let url = format!("{}/labels", self.user_url());
        let reply = self.call("labels", |c| c.get(&url)).await?;
        if !reply.ok() {
            return Err(failure("labels", &reply));
        }
        Ok(LabelMap {
            labels: reply.json::<Labels>("labels")?.labels,
        })
    }

    /// Every message with `label`, oldest first, and the history id to follow from.
    async fn list(&mut self, label: &str) -> Result<(Vec<String>, String), ApiError> {
        let url = format!("{}/profile", self.user_url());
        let reply = self.call("profile", |c| c.get(&url)).await?;
        if !reply.ok() {
            return Err(failure("profile", &reply));
        }
        // Taken before the listing: what arrives meanwhile is in the history after it.
        let history_id = reply.json::<Profile>("profile")?.history_id;
        let url = format!("{}/messages", self.user_url());
        let mut ids = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("labelIds", label.to_string()),
                ("maxResults", PAGE_SIZE.to_string()),
            ];
            if let Some(p) = &page {
                query.push(("pageToken", p.clone()));
            }
            let reply = self
                .call("message list", |c| c.get(&url).query(&query))
                .await?;
            if !reply.ok() {
                return Err(failure("message list", &reply));
            }
            let list: MessageList = reply.json("message list")?;
            ids.extend(list.messages.into_iter().map(|m| m.id));
            match list.next_page_token {
                Some(p) => page = Some(p),
                None => break,
            }
        }
        // Gmail lists newest first; a reply should follow what it answers.
        ids.reverse();
        let mut seen = HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        Ok((ids, history_id))
    }

    /// Messages that got `label` since `start`, in order, and the new history id;
    /// `None` when Gmail no longer has history that old (a full read follows).
    async fn history(
        &mut self,
        label: &str,
        start: &str,
    ) -> Result<Option<(Vec<String>, String)>, ApiError> {
        let url = format!("{}/history", self.user_url());
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut page: Option<String> = None;
        let mut newest = start.to_string();
        loop {
            let mut query = vec![
                ("startHistoryId", start.to_string()),
                ("labelId", label.to_string()),
                ("historyTypes", "messageAdded".to_string()),
                ("historyTypes", "labelAdded".to_string()),
                ("maxResults", PAGE_SIZE.to_string()),
            ];
            if let Some(p) = &page {
                query.push(("pageToken", p.clone()));
            }
            let reply = self.call("history", |c| c.get(&url).query(&query)).await?;
            if reply.status == 404 {
                return Ok(None);
            }
            if !reply.ok() {
                return Err(failure("history", &reply));
            }
            let history: History = reply.json("history")?;
            for record in history.history {
                let added = record
                    .messages_added
                    .into_iter()
                    .map(|a| a.message)
                    .filter(|m| m.label_ids.iter().any(|l| l == label));
                let labelled = record
                    .labels_added
                    .into_iter()
                    .filter(|c| c.label_ids.iter().any(|l| l == label))
                    .map(|c| c.message);
                for m in added.chain(labelled) {
                    if seen.insert(m.id.clone()) {
                        ids.push(m.id);
                    }
                }
            }
            if let Some(h) = history.history_id {
                newest = h;
            }
            match history.next_page_token {
                Some(p) => page = Some(p),
                None => break,
            }
        }
        Ok(Some((ids, newest)))
    }
}

/// Label names to ids (`INBOX`, `UNREAD`… are their own ids).
pub struct LabelMap {
    labels: Vec<Label>,
}

impl LabelMap {
    fn find(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == name).or_else(|| {
            self.labels
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(name))
        })
    }

    async fn resolve(
        &mut self,
        session: &mut Session,
        name: &str,
        create: bool,
    ) -> Result<String, ApiError> {
        if let Some(l) = self.find(name) {
            return Ok(l.id.clone());
        }
        if !create {
            return Err(ApiError::MissingFolder(name.to_string()));
        }
        let url = format!("{}/labels", session.user_url());
        let body = serde_json::json!({
            "name": name,
            "labelListVisibility": "labelShow",
            "messageListVisibility": "show",
        });
        let reply = session
            .call("create label", |c| c.post(&url).json(&body))
            .await?;
        if !reply.ok() {
            return Err(failure("create label", &reply));
        }
        let label: Label = reply.json("create label")?;
        self.labels.push(label.clone());
        Ok(label.id)
    }
}

/// A non-success answer, as the error it is.
fn failure(what: &str, reply: &Reply) -> ApiError {
    reply.failure(
        what,
        "Enable the Gmail API in the Google Cloud project and grant the scope https://www.googleapis.com/auth/gmail.modify",
    )
}
