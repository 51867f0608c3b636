//! The pipeline that turns raw mail into tickets:
//! prepare (parse → classify → route → reference lookup → reply strip → attachments,
//! in parallel on all cores) then apply (one writer, many mails per commit, each
//! mail in its own savepoint) then notify, then report back so the source may
//! acknowledge only what is committed.

mod prepare;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use postdesk_core::RawMail;
use postdesk_store::ingest::Writer;
use postdesk_store::{IncomingMail, IngestReport, Outcome, RegisteredHelpdesk, Store, StoreError};
use rayon::prelude::*;
use tokio::sync::mpsc;

pub use prepare::{Attachment, Limits, analyse, choose_helpdesk, prepare};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no helpdesk named `{0}` is configured")]
    UnknownHelpdesk(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Mails per transaction: one fsync serves them all.
    pub batch_size: usize,
    pub limits: Limits,
    /// Deliver every mail to this helpdesk instead of choosing by recipient.
    pub helpdesk: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: 256,
            limits: Limits::default(),
            helpdesk: None,
        }
    }
}

/// One mail's result, reported after its batch committed.
#[derive(Debug, Clone)]
pub struct Processed {
    pub source: &'static str,
    pub location: String,
    pub report: IngestReport,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub appended: usize,
    pub ignored: usize,
    pub failed: usize,
    pub duplicate: usize,
    pub elapsed: Duration,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.created + self.appended + self.ignored + self.failed + self.duplicate
    }

    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Appended => self.appended += 1,
            Outcome::Ignored => self.ignored += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Duplicate => self.duplicate += 1,
        }
    }

    /// Adds another run's counts and time to this one.
    pub fn absorb(&mut self, other: &Summary) {
        self.created += other.created;
        self.appended += other.appended;
        self.ignored += other.ignored;
        self.failed += other.failed;
        self.duplicate += other.duplicate;
        self.elapsed += other.elapsed;
    }

    pub fn mails_per_second(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} mails: {} created, {} appended, {} ignored, {} failed, {} already processed — {:.1} s, {:.0} mails/s",
            self.total(),
            self.created,
            self.appended,
            self.ignored,
            self.failed,
            self.duplicate,
            self.elapsed.as_secs_f64(),
            self.mails_per_second()
        )
    }
}

/// The threads that prepare mail: one per core, at a lower scheduling priority
/// than the writer. The writer is the one stage that cannot be spread over cores;
/// on equal terms the preparers take its core half the time and everything waits.
static PREPARE_POOL: LazyLock<rayon::ThreadPool> = LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("prepare-{i}"))
        .start_handler(|_| lower_priority())
        .build()
        .expect("the prepare threads start")
});

/// Lowers the calling thread's priority (Linux applies `nice` per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; no memory is involved.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 5) != 0 {
            tracing::debug!("could not lower the prepare threads' priority");
        }
    }
}

#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    helpdesks: Arc<Vec<RegisteredHelpdesk>>,
    options: Options,
}

impl Pipeline {
    pub fn new(store: Store, helpdesks: Vec<RegisteredHelpdesk>, options: Options) -> Self {
        Self {
            store,
            helpdesks: Arc::new(helpdesks),
            options,
        }
    }

    /// The same pipeline delivering every mail to one helpdesk.
    pub fn with_helpdesk(mut self, index: usize) -> Self {
        self.options.helpdesk = Some(index);
        self
    }

    /// The same pipeline committing every `size` mails.
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.options.batch_size = size.max(1);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn helpdesks(&self) -> &[RegisteredHelpdesk] {
        &self.helpdesks
    }

    /// Index of the helpdesk with this name.
    pub fn helpdesk_index(&self, name: &str) -> Result<usize, PipelineError> {
        self.helpdesks
            .iter()
            .position(|h| h.config.settings.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| PipelineError::UnknownHelpdesk(name.to_string()))
    }

    /// Processes every mail of `mails` in order. `on_committed` hears of each batch
    /// once it is durable; a store error stops the run, leaving later mails untouched.
    pub async fn run<I>(
        &self,
        mails: I,
        mut on_committed: impl FnMut(&[Processed]),
    ) -> Result<Summary, PipelineError>
    where
        I: Iterator<Item = RawMail> + Send + 'static,
    {
        let started = Instant::now();
        // Two prepared batches in flight: one being written, one being parsed.
        let (tx, mut rx) = mpsc::channel::<Vec<IncomingMail>>(1);
        let preparer = {
            let helpdesks = Arc::clone(&self.helpdesks);
            let options = self.options.clone();
            let data_dir = self.store.data_dir().to_path_buf();
            std::thread::spawn(move || {
                let mut mails = mails.peekable();
                while mails.peek().is_some() {
                    let chunk: Vec<RawMail> = mails.by_ref().take(options.batch_size).collect();
                    let prepared: Vec<IncomingMail> = PREPARE_POOL.install(|| {
                        chunk
                            .into_par_iter()
                            .map(|raw| {
                                prepare(
                                    raw,
                                    &helpdesks,
                                    options.helpdesk,
                                    &data_dir,
                                    &options.limits,
                                )
                            })
                            .collect()
                    });
                    if tx.blocking_send(prepared).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            })
        };
        // The write-ahead log is copied into the database beside the writer (see
        // `Writer`): after each commit, unless a checkpoint is still running.
        let (checkpoint_tx, mut checkpoint_rx) = mpsc::channel::<()>(1);
        let checkpointer = {
            let store = self.store.clone();
            tokio::spawn(async move {
                while checkpoint_rx.recv().await.is_some() {
                    if let Err(e) = store.checkpoint().await {
                        tracing::debug!(error = %e, "checkpoint failed; the next one catches up");
                    }
                }
            })
        };
        let mut summary = Summary::default();
        let mut result = Ok(());
        let mut writer = None;
        while let Some(batch) = rx.recv().await {
            let jobs: Vec<(IncomingMail, Option<i64>)> =
                batch.into_iter().map(|m| (m, None)).collect();
            // Taken when the first batch is ready, kept for the others.
            let conn = match &mut writer {
                Some(conn) => conn,
                None => match self.store.writer().await {
                    Ok(conn) => writer.insert(conn),
                    Err(e) => {
                        result = Err(e.into());
                        break;
                    }
                },
            };
            match self.commit(conn, &jobs).await {
                Ok(processed) => {
                    processed.iter().for_each(|p| summary.add(p.report.outcome));
                    on_committed(&processed);
                    let _ = checkpoint_tx.try_send(());
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(checkpoint_tx);
        let _ = checkpointer.await;
        if let Some(writer) = writer
            && let Err(e) = writer.release().await
        {
            result = result.and(Err(e.into()));
        }
        drop(rx);
        let _ = preparer.join();
        summary.elapsed = started.elapsed();
        result.map(|()| summary)
    }

    /// Processes ledger rows again (the failed queue's "retry"), updating them in place.
    pub async fn retry(&self, intake_ids: &[i64]) -> Result<Vec<Processed>, PipelineError> {
        let mut jobs = Vec::new();
        for &id in intake_ids {
            let row = self.store.intake_row(id).await?;
            let bytes = self.store.raw_mail(id).await?;
            let helpdesk = match &row.helpdesk {
                Some(name) => Some(self.helpdesk_index(name)?),
                None => self.options.helpdesk,
            };
            let raw = RawMail {
                source: "retry",
                location: row.location.clone(),
                bytes,
            };
            let mail = prepare(
                raw,
                &self.helpdesks,
                helpdesk,
                self.store.data_dir(),
                &self.options.limits,
            );
            jobs.push((mail, Some(id)));
        }
        let mut writer = self.store.writer().await?;
        let processed = self.commit(&mut writer, &jobs).await;
        writer.release().await?;
        processed
    }

    /// Commits a batch in one transaction. Tried first without a savepoint per mail
    /// (fewer round trips); if any mail hits a database error the batch is rolled
    /// back and redone with savepoints, so only that mail fails.
    async fn commit(
        &self,
        conn: &mut Writer,
        jobs: &[(IncomingMail, Option<i64>)],
    ) -> Result<Vec<Processed>, PipelineError> {
        match self.commit_once(conn, jobs, false).await {
            Ok(processed) => Ok(processed),
            Err(e) => {
                tracing::debug!(error = %e, "batch failed; redoing it mail by mail");
                self.commit_once(conn, jobs, true).await
            }
        }
    }

    async fn commit_once(
        &self,
        conn: &mut Writer,
        jobs: &[(IncomingMail, Option<i64>)],
        careful: bool,
    ) -> Result<Vec<Processed>, PipelineError> {
        let mails: Vec<&IncomingMail> = jobs.iter().map(|(m, _)| m).collect();
        let mut batch = self
            .store
            .begin_batch(conn, &self.helpdesks, careful, &mails)
            .await?;
        let mut processed = Vec::with_capacity(jobs.len());
        for (mail, retry_of) in jobs {
            let report = batch.ingest(&self.helpdesks, mail, *retry_of).await?;
            if report.outcome != Outcome::Duplicate {
                let helpdesk = &self.helpdesks[mail.helpdesk];
                postdesk_notify::on_ingested(batch.connection(), helpdesk, mail, &report)
                    .await
                    .map_err(StoreError::from)?;
            }
            processed.push(Processed {
                source: mail.source,
                location: mail.location.clone(),
                report,
            });
        }
        batch.commit().await?;
        Ok(processed)
    }
}
