//! `postdesk serve`: every active mailbox, the outbox sender, the deadlines' escalations,
//! the web UI (with `/healthz` and `/readyz`) and the metrics listener together, until
//! SIGTERM or SIGINT (the signal is awaited by `postdesk demo` too). Under systemd it
//! says when it is ready and pings the watchdog (`systemd`).
//!
//! A signal drains: no mailbox claims more mail, the batch in flight is committed and
//! settled, the outbox finishes the mail it is sending, the web UI answers the requests
//! it has; then the process exits 0.
//!
//! Several instances may serve one PostgreSQL database (issue 15). What each piece
//! does so that it runs once across them:
//! - mailboxes (IMAP, Graph, Gmail): each read under its lease, by one instance at a
//!   time (`app::leases`), its batches fenced; given back on SIGTERM;
//! - the outbox sender: claims due mails with `FOR UPDATE SKIP LOCKED` and a lease per
//!   mail (`store::outbox`);
//! - deadline escalations: timers claimed with `FOR UPDATE SKIP LOCKED` in the
//!   transaction that queues their mail (`store::deadlines`);
//! - the web UI: stateless; sessions, CSRF tokens and sign-in limits are rows
//!   (`store::access`), so any instance answers any request.

use std::path::Path;

use anyhow::Context;
use tokio::sync::watch;

use super::mailboxes;

/// Serves every active mailbox and the web UI until SIGTERM or SIGINT, finishing the
/// mail in hand.
pub async fn serve(config_path: &Path, listen: Option<&str>) -> anyhow::Result<()> {
    // Listened for before anything starts: a SIGTERM during startup (systemd stopping
    // it, an operator, a test) is kept and stops the instance cleanly once it serves,
    // instead of killing it by the signal's default action.
    let signal = StopSignal::listen()?;
    let (config, app) = super::open(config_path, None).await?;
    let boxes = mailboxes::mailboxes(&app, None, true)?;
    let (stop, stopped) = watch::channel(false);
    let web = if config.web.enabled || listen.is_some() {
        let (address, task) = super::web::start(&config, &app, listen, stopped.clone()).await?;
        super::logs::status(&format!(
            "web UI on http://{address}/ (add agents with `postdesk agents add`)"
        ));
        Some(task)
    } else {
        None
    };
    let metrics = super::web::start_metrics(&config, &app, stopped.clone()).await?;
    let mut tasks = Vec::new();
    let mailboxes = boxes.len();
    // Alive, for the mailboxes' fair shares among instances.
    let announce = {
        let app = app.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move { app.leases().announce(stopped).await })
    };
    for configured in boxes {
        let app = app.clone();
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            // Read only while this instance holds the mailbox's lease.
            let leases = app.leases();
            leases
                .hold(&configured, mailboxes, stopped, |fence, stop| {
                    let mailbox =
                        postdesk_sources::any::AnyMailbox::from(&configured).with_fence(fence);
                    let app = app.clone();
                    async move { mailbox.serve(&app, stop).await }
                })
                .await
        }));
    }
    let outbox = tokio::spawn(app.outbox().sender(stopped.clone()));
    // Deadlines (issue 18): warnings and breaches, each sent once across instances.
    let escalations = tokio::spawn(app.deadlines().runner(stopped.clone()));
    tracing::info!(mailboxes = tasks.len(), instance = %app.instance(), "serving");
    let serving = format!(
        "serving {} mailbox(es) as instance {}",
        tasks.len(),
        app.instance()
    );
    super::logs::status(&format!("{serving}; stop with Ctrl-C or SIGTERM"));
    super::systemd::ready(&serving);
    let watchdog = super::systemd::watchdog(stopped.clone());
    signal.wait().await;
    super::logs::status("stopping after the mail in hand");
    super::systemd::stopping();
    stop.send(true).ok();
    for task in tasks {
        task.await?;
    }
    outbox.await?;
    escalations.await?;
    announce.await?;
    if let Some(web) = web {
        web.await?.context("the web UI stopped with an error")?;
    }
    if let Some(metrics) = metrics {
        metrics
            .await?
            .context("the metrics listener stopped with an error")?;
    }
    if let Some(watchdog) = watchdog {
        watchdog.await?;
    }
    app.store().close().await;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment [`StopSignal::listen`] returns,
/// so that one sent earlier than [`StopSignal::wait`] is not lost.
pub struct StopSignal {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Returns at the first of them (at once if one came already).
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
