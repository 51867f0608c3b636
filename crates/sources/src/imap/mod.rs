//! IMAP mailboxes: scan a folder by UID, run the mails through the App's intake,
//! and only then move them — successes to the processed folder, failures to the
//! unprocessed one — in batches.

pub mod check;
pub mod connect;
pub mod oauth;
pub mod serve;

use std::collections::HashMap;

use futures::TryStreamExt;
use postdesk_app::App;
use postdesk_app::intake::{PipelineError, Processed, Summary};
use postdesk_app::mailboxes::ConfiguredMailbox;
use postdesk_core::error::{Context, chain};
use postdesk_core::mailbox::{AfterSuccess, Auth, MailboxSettings, Scan};
use postdesk_core::{MailSource, RawMail};
use postdesk_store::Outcome;
use postdesk_store::leases::LeaseFence;

use connect::timed;
pub use connect::{Session, TIMEOUT};

/// Mails fetched and committed together; their moves are one command per folder.
const FETCH_BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {address}: {reason}. Check host, port and that the server is up")]
    Connect { address: String, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error("login as {user} was refused: {reason}. Check user and password")]
    Login { user: String, reason: String },
    #[error("the password is not available: {0}")]
    Password(String),
    #[error("OAuth2: {0}")]
    OAuth(String),
    #[error("timed out after {secs}s: {0}", secs = TIMEOUT.as_secs())]
    Timeout(String),
    #[error("IMAP: {0}")]
    Protocol(String),
    #[error("folder `{0}` does not exist on the server; create it or set create_folders = true")]
    MissingFolder(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

impl From<postdesk_credentials::CredentialError> for ImapError {
    fn from(e: postdesk_credentials::CredentialError) -> Self {
        use postdesk_credentials::CredentialError as E;
        match e {
            E::Missing(m) => Self::Password(m),
            E::OAuth(m) => Self::OAuth(m),
            E::Call { what, source } => Self::OAuth(chain(&Context::new(what, source))),
            E::Store(s) => Self::Pipeline(s.into()),
        }
    }
}

impl ImapError {
    /// Another instance took the mailbox's lease over: stop reading it.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Pipeline(p) if p.is_lease_lost())
    }

    /// Worth retrying soon (the server or network), as opposed to configuration.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout(_) | Self::Protocol(_) | Self::Pipeline(_)
        )
    }
}

/// How this mailbox logs in, with the secret fetched (and for OAuth2, refreshed) now.
pub async fn credential(
    store: &postdesk_store::Store,
    helpdesk: &str,
    settings: &MailboxSettings,
) -> Result<connect::Credential, ImapError> {
    match (&settings.auth, &settings.oauth2) {
        (Auth::Oauth2, Some(oauth2)) => {
            let token = postdesk_credentials::access_token(
                store,
                helpdesk,
                &settings.display_name(),
                oauth2,
            )
            .await?;
            Ok(connect::Credential::Bearer {
                token,
                mechanism: oauth2.mechanism,
            })
        }
        _ => Ok(connect::Credential::Password(postdesk_credentials::secret(
            &settings.password,
            &settings.password_env,
            &settings.password_file,
            "password",
        )?)),
    }
}

/// A configured folder name on this server: `/` and `.` both mean "one level
/// down", written with the server's own hierarchy delimiter.
pub fn server_folder(name: &str, delimiter: Option<&str>) -> String {
    match delimiter {
        Some(d) if d.len() == 1 => name.replace(['/', '.'], d),
        _ => name.to_string(),
    }
}

/// A mailbox to scan and the helpdesk it feeds.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub helpdesk: String,
    /// Position of the helpdesk in the App's helpdesks: every mail of this mailbox goes there.
    pub helpdesk_index: usize,
    pub settings: MailboxSettings,
    /// The lease this mailbox is read under (`serve`, `scan`): its batches commit
    /// only while it holds (see `postdesk_store::leases`).
    pub fence: Option<LeaseFence>,
    /// An error that could not be recorded as the mailbox's health when it happened
    /// (the database itself was away): recorded with the next result, so that
    /// `status` shows it.
    unrecorded: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl From<&ConfiguredMailbox> for Mailbox {
    fn from(configured: &ConfiguredMailbox) -> Self {
        Self {
            helpdesk: configured.helpdesk.clone(),
            helpdesk_index: configured.helpdesk_index,
            settings: configured.settings.clone(),
            fence: None,
            unrecorded: Default::default(),
        }
    }
}

impl Mailbox {
    pub fn name(&self) -> String {
        self.settings.display_name()
    }

    /// Connects, scans every folder once, logs out; the result is recorded as the mailbox's status.
    pub async fn scan_once(&self, app: &App) -> Result<Summary, ImapError> {
        let result = async {
            let credential = credential(app.store(), &self.helpdesk, &self.settings).await?;
            let mut session = connect::open(&self.settings, &credential).await?;
            let result = self.scan_session(&mut session, app).await;
            let _ = tokio::time::timeout(TIMEOUT, session.logout()).await;
            result
        }
        .await;
        self.record(app, &result).await;
        result
    }

    async fn record(&self, app: &App, result: &Result<Summary, ImapError>) {
        if let Err(e) = result
            && e.is_lease_lost()
        {
            return; // not this mailbox's health: another instance reads it now
        }
        let store = app.store();
        let pending = self
            .unrecorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(error) = &pending
            && store
                .mailbox_failed(&self.helpdesk, &self.name(), error)
                .await
                .is_err()
        {
            self.keep_unrecorded(pending);
            return;
        }
        let outcome = match result {
            Ok(s) => {
                store
                    .mailbox_scanned(&self.helpdesk, &self.name(), s.total() - s.failed, s.failed)
                    .await
            }
            Err(e) => {
                store
                    .mailbox_failed(&self.helpdesk, &self.name(), &e.to_string())
                    .await
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(mailbox = %self.name(), error = %e, "cannot record the mailbox status");
            if let Err(error) = result {
                self.keep_unrecorded(Some(error.to_string()));
            }
        }
    }

    fn keep_unrecorded(&self, error: Option<String>) {
        *self.unrecorded.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Scans every configured folder on an open session.
    pub async fn scan_session(
        &self,
        session: &mut Session,
        app: &App,
    ) -> Result<Summary, ImapError> {
        Ok(self.scan_session_marked(session, app).await?.0)
    }

    /// Like `scan_session`, also returning the first folder's UIDNEXT as the scan saw
    /// it, so a wait can tell whether mail arrived in between.
    pub async fn scan_session_marked(
        &self,
        session: &mut Session,
        app: &App,
    ) -> Result<(Summary, Option<u32>), ImapError> {
        let mut folders = Folders::resolve(session, &self.settings).await?;
        let mut total = Summary::default();
        let mut first_uid_next = None;
        for (i, folder) in folders.scan.clone().iter().enumerate() {
            let (summary, uid_next) = self.scan_folder(session, app, &mut folders, folder).await?;
            if i == 0 {
                first_uid_next = uid_next;
            }
            total.absorb(&summary);
        }
        Ok((total, first_uid_next))
    }

    async fn scan_folder(
        &self,
        session: &mut Session,
        app: &App,
        folders: &mut Folders,
        folder: &str,
    ) -> Result<(Summary, Option<u32>), ImapError> {
        let selected = timed(&format!("SELECT {folder}"), session.select(folder)).await?;
        let uid_next = selected.uid_next;
        let validity = selected.uid_validity.unwrap_or(0);
        let mut first_uid = 1;
        let query = match (self.settings.after_success, self.settings.scan) {
            (AfterSuccess::Keep, _) => {
                let position = app
                    .store()
                    .folder_position(&self.helpdesk, &self.name(), folder)
                    .await
                    .map_err(PipelineError::from)?;
                // A new UIDVALIDITY means old UIDs mean nothing: start over; the ledger
                // recognises what was already processed.
                if let Some((v, last)) = position
                    && v == validity
                {
                    first_uid = last + 1;
                }
                format!("UID {first_uid}:*")
            }
            (_, Scan::Unseen) => "UNSEEN".to_string(),
            (_, Scan::All) => "ALL".to_string(),
        };
        let mut uids: Vec<u32> = timed("UID SEARCH", session.uid_search(&query))
            .await?
            .into_iter()
            .filter(|uid| *uid >= first_uid)
            .collect();
        uids.sort_unstable();
        let Some(&oldest) = uids.first() else {
            self.set_waiting_since(app, None);
            return Ok((Summary::default(), uid_next));
        };
        self.note_lag(session, app, folder, oldest).await;
        // One pipeline run for the whole folder, fed as mails are fetched, so that
        // fetching, parsing and writing overlap all the time. Each batch is settled
        // (moved) as soon as it is committed, between the fetches of the next ones.
        let (raw_tx, raw_rx) = tokio::sync::mpsc::channel::<RawMail>(FETCH_BATCH);
        let (committed_tx, mut committed_rx) = tokio::sync::mpsc::unbounded_channel();
        let run = {
            // Every mail of this mailbox goes to its helpdesk, whatever its recipients.
            let pipeline = app
                .intake()
                .with_helpdesk(self.helpdesk_index)
                .with_fence(self.fence.clone())
                .with_batch_size(FETCH_BATCH);
            let mut raw_rx = raw_rx;
            // Read on the pipeline's own reader thread, where blocking is fine.
            let mails = std::iter::from_fn(move || raw_rx.blocking_recv());
            tokio::spawn(async move {
                pipeline
                    .run(mails, move |batch| {
                        let _ = committed_tx.send(batch.to_vec());
                    })
                    .await
            })
        };
        // The UIDs of the mails fetched and not yet settled: it never holds more than
        // the mails in flight, however big the folder.
        let mut uid_of: HashMap<String, u32> = HashMap::new();
        for chunk in uids.chunks(FETCH_BATCH) {
            let fetched = Fetched {
                folder,
                validity,
                to_pipeline: &raw_tx,
                uid_of: &mut uid_of,
            };
            if !self.fetch(session, chunk, fetched).await? {
                break; // the run stopped; its error is returned below
            }
            while let Ok(batch) = committed_rx.try_recv() {
                let scanned = ScannedFolder {
                    name: folder,
                    validity,
                    uid_of: &mut uid_of,
                };
                self.settle(session, app, folders, scanned, &batch).await?;
            }
        }
        drop(raw_tx);
        while let Some(batch) = committed_rx.recv().await {
            let scanned = ScannedFolder {
                name: folder,
                validity,
                uid_of: &mut uid_of,
            };
            self.settle(session, app, folders, scanned, &batch).await?;
        }
        let total = run.await.map_err(join_error)??;
        self.set_waiting_since(app, None);
        Ok((total, uid_next))
    }

    /// For the metrics' lag: when the oldest mail waiting (the lowest UID) arrived in the
    /// folder, by the server's INTERNALDATE. A server that does not say leaves it as it
    /// was; an error here shows in the next command, which reports it.
    async fn note_lag(&self, session: &mut Session, app: &App, folder: &str, uid: u32) {
        let Ok(stream) = timed(
            &format!("UID FETCH INTERNALDATE in {folder}"),
            session.uid_fetch(uid.to_string(), "(UID INTERNALDATE)"),
        )
        .await
        else {
            return;
        };
        let Ok(fetches) = timed("UID FETCH", stream.try_collect::<Vec<_>>()).await else {
            return;
        };
        if let Some(arrived) = fetches.iter().find_map(|f| f.internal_date()) {
            self.set_waiting_since(app, Some(arrived.timestamp()));
        }
    }

    fn set_waiting_since(&self, app: &App, arrived: Option<i64>) {
        app.metrics()
            .set_mailbox_waiting_since(&self.helpdesk, &self.name(), arrived);
    }

    /// With its batch committed, each mail leaves its folder: failures to the
    /// unprocessed folder, successes per `after_success`. A UID with no outcome
    /// (vanished before the fetch) stays where it is.
    async fn settle(
        &self,
        session: &mut Session,
        app: &App,
        folders: &mut Folders,
        scanned: ScannedFolder<'_>,
        batch: &[Processed],
    ) -> Result<(), ImapError> {
        let ScannedFolder {
            name: folder,
            validity,
            uid_of,
        } = scanned;
        app.metrics()
            .count_mails(&self.helpdesk, &self.name(), batch);
        let (mut failed, mut done) = (Vec::new(), Vec::new());
        // Mails an `ignore` rule sends to a folder of its own.
        let mut ignored_to: HashMap<String, Vec<u32>> = HashMap::new();
        let mut last = None;
        for p in batch {
            let Some(uid) = uid_of.remove(&p.location) else {
                continue;
            };
            last = last.max(Some(uid));
            if p.report.outcome == Outcome::Failed {
                failed.push(uid);
            } else if let Some(target) = &p.report.move_to_folder {
                ignored_to
                    .entry(folders.server_name(target))
                    .or_default()
                    .push(uid);
            } else {
                done.push(uid);
            }
        }
        // `uid_set` wants them in order.
        for uids in [&mut failed, &mut done]
            .into_iter()
            .chain(ignored_to.values_mut())
        {
            uids.sort_unstable();
        }
        self.move_uids(session, &failed, &folders.unprocessed, folders.has_move)
            .await?;
        for (target, uids) in &ignored_to {
            folders.ensure(session, target, &self.settings).await?;
            self.move_uids(session, uids, target, folders.has_move)
                .await?;
        }
        match self.settings.after_success {
            AfterSuccess::Move => {
                self.move_uids(session, &done, &folders.processed, folders.has_move)
                    .await?
            }
            AfterSuccess::MarkRead if !done.is_empty() => {
                let stream = timed(
                    "UID STORE",
                    session.uid_store(uid_set(&done), "+FLAGS.SILENT (\\Seen)"),
                )
                .await?;
                timed("UID STORE", stream.try_collect::<Vec<_>>()).await?;
            }
            AfterSuccess::MarkRead => {}
            AfterSuccess::Keep => {
                if let Some(last) = last {
                    app.store()
                        .set_folder_position(&self.helpdesk, &self.name(), folder, validity, last)
                        .await
                        .map_err(PipelineError::from)?;
                }
            }
        }
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(())
    }

    fn location(&self, folder: &str, validity: u32, uid: u32) -> String {
        format!(
            "imap://{}/{folder};UIDVALIDITY={validity}/;UID={uid}",
            self.name()
        )
    }

    /// Fetches `uids` and hands each mail to the pipeline as its response arrives (so
    /// at most the pipeline's queue of mails is held, not the whole chunk twice).
    /// False when the pipeline stopped taking mails.
    async fn fetch(
        &self,
        session: &mut Session,
        uids: &[u32],
        fetched: Fetched<'_>,
    ) -> Result<bool, ImapError> {
        let mut stream = timed(
            "UID FETCH",
            session.uid_fetch(uid_set(uids), "(UID BODY.PEEK[])"),
        )
        .await?;
        while let Some(f) = timed("UID FETCH", stream.try_next()).await? {
            let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                continue;
            };
            let raw = RawMail {
                source: MailSource::Imap,
                location: self.location(fetched.folder, fetched.validity, uid),
                bytes: body.to_vec(),
            };
            fetched.uid_of.insert(raw.location.clone(), uid);
            if fetched.to_pipeline.send(raw).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn move_uids(
        &self,
        session: &mut Session,
        uids: &[u32],
        target: &str,
        has_move: bool,
    ) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if has_move {
            return timed("UID MOVE", session.uid_mv(&set, target)).await;
        }
        // RFC 3501 without MOVE: copy, flag deleted, expunge just those UIDs.
        timed("UID COPY", session.uid_copy(&set, target)).await?;
        let stream = timed(
            "UID STORE",
            session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"),
        )
        .await?;
        timed("UID STORE", stream.try_collect::<Vec<_>>()).await?;
        let stream = timed("UID EXPUNGE", session.uid_expunge(&set)).await?;
        timed("UID EXPUNGE", stream.try_collect::<Vec<_>>()).await?;
        Ok(())
    }
}

fn join_error(e: tokio::task::JoinError) -> ImapError {
    ImapError::Protocol(format!("processing a batch stopped: {e}"))
}

/// `1:3,7,9:10` for sorted UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The folders of one mailbox, as named on the server.
pub struct Folders {
    pub scan: Vec<String>,
    pub processed: String,
    pub unprocessed: String,
    pub has_move: bool,
    delimiter: Option<String>,
    existing: Vec<String>,
}

impl Folders {
    /// Maps names to the server's delimiter and checks they exist (creating them when allowed).
    pub async fn resolve(
        session: &mut Session,
        settings: &MailboxSettings,
    ) -> Result<Self, ImapError> {
        let capabilities = timed("CAPABILITY", session.capabilities()).await?;
        let has_move = capabilities.has_str("MOVE");
        let names: Vec<_> = {
            let stream = timed("LIST", session.list(Some(""), Some("*"))).await?;
            timed("LIST", stream.try_collect::<Vec<_>>()).await?
        };
        let delimiter = names.iter().find_map(|n| n.delimiter().map(str::to_string));
        let existing: Vec<String> = names.iter().map(|n| n.name().to_string()).collect();
        let map = |name: &str| server_folder(name, delimiter.as_deref());
        let mut folders = Self {
            scan: settings.folders.iter().map(|f| map(f)).collect(),
            processed: map(&settings.processed_folder),
            unprocessed: map(&settings.unprocessed_folder),
            has_move,
            delimiter,
            existing,
        };
        let wanted: Vec<String> = folders
            .scan
            .iter()
            .chain([&folders.processed, &folders.unprocessed])
            .cloned()
            .collect();
        for name in &wanted {
            folders.ensure(session, name, settings).await?;
        }
        Ok(folders)
    }

    /// A configured name written with this server's delimiter.
    pub fn server_name(&self, name: &str) -> String {
        server_folder(name, self.delimiter.as_deref())
    }

    /// Makes sure `name` (a server name) exists, creating it when allowed.
    pub async fn ensure(
        &mut self,
        session: &mut Session,
        name: &str,
        settings: &MailboxSettings,
    ) -> Result<(), ImapError> {
        let exists = name.eq_ignore_ascii_case("INBOX") || self.existing.iter().any(|e| e == name);
        if exists {
            return Ok(());
        }
        if !settings.create_folders {
            return Err(ImapError::MissingFolder(name.to_string()));
        }
        timed(&format!("CREATE {name}"), session.create(name)).await?;
        self.existing.push(name.to_string());
        Ok(())
    }
}

/// The folder a scan reads: its name, its UIDVALIDITY, and the UID of each mail
/// fetched from it, by the location the pipeline reports it under.
struct ScannedFolder<'a> {
    name: &'a str,
    validity: u32,
    /// Settling takes each mail's UID out.
    uid_of: &'a mut HashMap<String, u32>,
}

/// Where a folder's fetched mails go: to the pipeline, their UIDs kept until settled.
struct Fetched<'a> {
    folder: &'a str,
    validity: u32,
    to_pipeline: &'a tokio::sync::mpsc::Sender<RawMail>,
    uid_of: &'a mut HashMap<String, u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn folder_names_follow_the_server_delimiter() {
        assert_eq!(
            server_folder("INBOX/Processed", Some(".")),
            "INBOX.Processed"
        );
        assert_eq!(
            server_folder("INBOX.Processed", Some("/")),
            "INBOX/Processed"
        );
        assert_eq!(server_folder("Processed", Some("/")), "Processed");
    }
}
