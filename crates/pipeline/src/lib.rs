//! The pipeline that turns raw mail into tickets:
//! prepare (parse → classify → route → reference lookup → reply strip → attachments,
//! in parallel on all cores) then apply (one writer, many mails per commit, each
//! mail in its own savepoint) then notify, then report back so the source may
//! acknowledge only what is committed.

mod prepare;

use postdesk_core::id::IntakeId;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use postdesk_core::{MailSource, RawMail};
use postdesk_mail::{Classification, ParseOptions};
use postdesk_store::leases::LeaseFence;
use postdesk_store::{
    IncomingMail, IngestReport, Outcome, RegisteredHelpdesk, Store, StoreError, Writer,
};
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

impl PipelineError {
    /// The mailbox's lease was taken over: its reader should stop, not retry.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_lease_lost())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Mails per transaction: one fsync serves them all. 128 by default: larger
    /// batches commit a little less often but hold more mail in memory (about 1.5 MB
    /// of raw mail each, four batches in flight); 256 raised the peak by 10 MB and
    /// gained nothing measurable.
    pub batch_size: usize,
    pub limits: Limits,
    /// Deliver every mail to this helpdesk instead of choosing by recipient.
    pub helpdesk: Option<usize>,
    /// How mail is parsed: where `cid:` images point is the web's to say.
    pub parse: ParseOptions,
    /// The lease the mails' mailbox is read under: each batch commits only while it
    /// is still held (see `postdesk_store::leases`).
    pub fence: Option<LeaseFence>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: 128,
            limits: Limits::default(),
            helpdesk: None,
            parse: ParseOptions::default(),
            fence: None,
        }
    }
}

/// One mail's result, reported after its batch committed.
#[derive(Debug, Clone)]
pub struct Processed {
    pub source: MailSource,
    pub location: String,
    /// What the mail was found to be (normal, auto-reply, bounce…), for the metrics.
    pub classification: Classification,
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

/// A named thread of the pipeline (the names show in `top -H` and profiles).
fn thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .expect("the pipeline's threads start")
}

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

/// The stages wired together over one store and its registered helpdesks. It runs
/// mail; what else the entry points need of the store and the helpdesks they get from
/// the application layer (`postdesk-app`), which builds a pipeline for each run.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    helpdesks: Arc<[RegisteredHelpdesk]>,
    options: Options,
}

impl Pipeline {
    pub fn new(
        store: Store,
        helpdesks: impl Into<Arc<[RegisteredHelpdesk]>>,
        options: Options,
    ) -> Self {
        Self {
            store,
            helpdesks: helpdesks.into(),
            options,
        }
    }

    /// The same pipeline delivering every mail to one helpdesk.
    pub fn with_helpdesk(mut self, index: usize) -> Self {
        self.options.helpdesk = Some(index);
        self
    }

    /// The same pipeline committing its batches only while `fence` holds (mail of a
    /// leased mailbox); `None` for mail that no lease covers.
    pub fn with_fence(mut self, fence: Option<LeaseFence>) -> Self {
        self.options.fence = fence;
        self
    }

    /// The same pipeline committing every `size` mails.
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.options.batch_size = size.max(1);
        self
    }

    /// Index of the helpdesk a ledger row names.
    fn helpdesk_index(&self, name: &str) -> Result<usize, PipelineError> {
        self.helpdesks
            .iter()
            .position(|h| h.config.settings.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| PipelineError::UnknownHelpdesk(name.to_string()))
    }

    /// Processes every mail of `mails` in order. `on_committed` hears of each batch
    /// once it is durable; a store error stops the run, leaving later mails untouched.
    ///
    /// The stages overlap: a thread reads the source, another has batches prepared
    /// on all cores, the writer thread commits them on its own connection, and this
    /// task reports them and has the write-ahead log checkpointed on the side.
    pub async fn run<I>(
        &self,
        mails: I,
        mut on_committed: impl FnMut(&[Processed]),
    ) -> Result<Summary, PipelineError>
    where
        I: Iterator<Item = RawMail> + Send + 'static,
    {
        let started = Instant::now();
        // The source is read a batch ahead, so the prepare threads never wait for it;
        // handed over a batch at a time (one wake-up per batch, not per mail). One
        // batch ahead, not more: each one in flight is ~1.5 MB of raw mail.
        let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<RawMail>>(0);
        let batch_size = self.options.batch_size;
        let reader = thread("reader", move || {
            let mut mails = mails.peekable();
            while mails.peek().is_some() {
                let chunk: Vec<RawMail> = mails.by_ref().take(batch_size).collect();
                if raw_tx.send(chunk).is_err() {
                    return; // the run stopped on an error
                }
            }
        });
        // Two prepared batches in flight: one being written, one being parsed.
        let (prepared_tx, prepared_rx) = std::sync::mpsc::sync_channel::<Vec<IncomingMail>>(1);
        let preparer = {
            let helpdesks = Arc::clone(&self.helpdesks);
            let options = self.options.clone();
            let data_dir = self.store.data_dir().to_path_buf();
            thread("preparer", move || {
                for chunk in raw_rx {
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
                                    &options.parse,
                                )
                            })
                            .collect()
                    });
                    if prepared_tx.send(prepared).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            })
        };
        let (committed_tx, mut committed_rx) = mpsc::unbounded_channel();
        let writer = {
            let pipeline = self.clone();
            thread("writer", move || -> Result<(), PipelineError> {
                // Opened when the first batch is ready, kept for the others.
                let mut writer = None;
                for batch in prepared_rx {
                    let mut jobs: Vec<(IncomingMail, Option<IntakeId>)> =
                        batch.into_iter().map(|m| (m, None)).collect();
                    let writer = match &mut writer {
                        Some(writer) => writer,
                        None => writer.insert(pipeline.store.writer()?),
                    };
                    let processed = pipeline.commit(writer, &mut jobs)?;
                    if committed_tx.send(processed).is_err() {
                        break;
                    }
                }
                Ok(())
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
        while let Some(processed) = committed_rx.recv().await {
            processed.iter().for_each(|p| summary.add(p.report.outcome));
            on_committed(&processed);
            let _ = checkpoint_tx.try_send(());
        }
        drop(checkpoint_tx);
        let _ = checkpointer.await;
        let result = tokio::task::spawn_blocking(move || {
            let result = writer.join();
            let _ = preparer.join();
            let _ = reader.join();
            result
        })
        .await
        .expect("joining the pipeline's threads does not fail");
        summary.elapsed = started.elapsed();
        match result {
            Ok(result) => result.map(|()| summary),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Processes ledger rows again (the failed queue's "retry"), updating them in place.
    pub async fn retry(&self, intake_ids: &[IntakeId]) -> Result<Vec<Processed>, PipelineError> {
        let mut jobs = Vec::new();
        for &id in intake_ids {
            let row = self.store.intake_row(id).await?;
            let bytes = self.store.raw_mail(id).await?;
            let helpdesk = match &row.helpdesk {
                Some(name) => Some(self.helpdesk_index(name)?),
                None => self.options.helpdesk,
            };
            let raw = RawMail {
                source: MailSource::Retry,
                location: row.location.clone(),
                bytes,
            };
            let mail = prepare(
                raw,
                &self.helpdesks,
                helpdesk,
                self.store.data_dir(),
                &self.options.limits,
                &self.options.parse,
            );
            jobs.push((mail, Some(id)));
        }
        let pipeline = self.clone();
        let processed = tokio::task::spawn_blocking(move || {
            let mut writer = pipeline.store.writer()?;
            pipeline.commit(&mut writer, &mut jobs)
        })
        .await
        .expect("the writer does not panic")?;
        self.store.checkpoint().await?;
        Ok(processed)
    }

    /// Commits a batch in one transaction, once its attachment files are on disk.
    /// Tried first without a savepoint per mail; if any mail hits a database error
    /// the batch is rolled back and redone with savepoints, so only that mail fails.
    fn commit(
        &self,
        writer: &mut Writer,
        jobs: &mut [(IncomingMail, Option<IntakeId>)],
    ) -> Result<Vec<Processed>, PipelineError> {
        jobs.iter_mut().for_each(|(mail, _)| mail.await_files());
        match self.commit_once(writer, jobs, false) {
            Ok(processed) => Ok(processed),
            // Another instance reads the mailbox now: nothing to redo.
            Err(PipelineError::Store(e)) if e.is_lease_lost() => Err(e.into()),
            Err(e) => {
                tracing::debug!(error = %e, "batch failed; redoing it mail by mail");
                self.commit_once(writer, jobs, true)
            }
        }
    }

    fn commit_once(
        &self,
        writer: &mut Writer,
        jobs: &[(IncomingMail, Option<IntakeId>)],
        careful: bool,
    ) -> Result<Vec<Processed>, PipelineError> {
        let mails: Vec<&IncomingMail> = jobs.iter().map(|(m, _)| m).collect();
        let fence = self.options.fence.as_ref();
        let mut batch = writer.begin_batch(&self.helpdesks, careful, &mails, fence)?;
        let mut processed = Vec::with_capacity(jobs.len());
        for (mail, retry_of) in jobs {
            let report = batch.ingest(&self.helpdesks, mail, *retry_of)?;
            if report.outcome != Outcome::Duplicate {
                let helpdesk = &self.helpdesks[mail.helpdesk];
                postdesk_notify::on_ingested(batch.connection(), helpdesk, mail, &report)?;
                // Deadlines (issue 18): set or moved in the mail's own transaction.
                postdesk_store::deadlines::on_ingested(
                    batch.connection(),
                    &self.helpdesks,
                    mail,
                    &report,
                )?;
            }
            processed.push(Processed {
                source: mail.source,
                location: mail.location.clone(),
                classification: mail.classification,
                report,
            });
        }
        // The agents' notifications of the whole batch at once (issue 15: a read per
        // mail cost a round trip each on PostgreSQL).
        let ingested: Vec<postdesk_notify::in_app::Ingested<'_>> = jobs
            .iter()
            .zip(&processed)
            .filter(|(_, p)| p.report.outcome != Outcome::Duplicate)
            .map(|((mail, _), p)| postdesk_notify::in_app::Ingested {
                helpdesk: &self.helpdesks[mail.helpdesk],
                mail,
                report: &p.report,
            })
            .collect();
        postdesk_notify::in_app::on_batch(batch.connection(), &ingested)?;
        batch.commit()?;
        Ok(processed)
    }
}
