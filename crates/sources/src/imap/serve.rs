//! A mailbox served continuously: scan, then wait with IDLE (or sleep) until
//! something arrives or the interval passes; on errors reconnect with backoff.

use std::time::Duration;

use postdesk_app::App;
use tokio::sync::watch;

use super::{ImapError, Mailbox, Session, TIMEOUT, connect, timed};

/// IDLE is renewed well before the 29-minute limit of RFC 2177.
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Mailbox {
    /// Runs until `shutdown` turns true; the scan in hand is finished first.
    pub async fn serve(&self, app: &App, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        while !*shutdown.borrow() {
            match self.serve_session(app, &mut shutdown).await {
                Ok(()) => return,
                Err(e) if e.is_lease_lost() => {
                    tracing::info!(mailbox = %self.name(), "another instance took the mailbox over");
                    return;
                }
                Err(e) => {
                    let wait = if e.is_transient() {
                        backoff
                    } else {
                        MAX_BACKOFF
                    };
                    let wait = wait + jitter(wait);
                    tracing::warn!(mailbox = %self.name(), error = %e, retry_in = ?wait, "mailbox error");
                    self.record(app, &Err(e)).await;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn serve_session(
        &self,
        app: &App,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ImapError> {
        let credential = super::credential(app.store(), &self.helpdesk, &self.settings).await?;
        let mut session = connect::open(&self.settings, &credential).await?;
        tracing::info!(mailbox = %self.name(), "connected");
        let can_idle = self.settings.idle
            && timed("CAPABILITY", session.capabilities())
                .await?
                .has_str("IDLE");
        let interval = Duration::from_secs(self.settings.interval_secs);
        loop {
            let result = self.scan_session_marked(&mut session, app).await;
            let (result, uid_next) = match result {
                Ok((summary, uid_next)) => (Ok(summary), uid_next),
                Err(e) => (Err(e), None),
            };
            self.record(app, &result).await;
            let summary = result?;
            if summary.total() > 0 {
                tracing::info!(mailbox = %self.name(), %summary, "scanned");
            }
            if *shutdown.borrow() {
                break;
            }
            let woken = if can_idle {
                let (s, woken) = self.idle(session, interval, uid_next, shutdown).await?;
                session = s;
                woken
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => true,
                    _ = shutdown.changed() => false,
                }
            };
            if !woken || *shutdown.borrow() {
                break;
            }
        }
        let _ = tokio::time::timeout(TIMEOUT, session.logout()).await;
        Ok(())
    }

    /// IDLE on the first folder until the server reports a change, the interval
    /// passes (other folders are polled then) or shutdown. `false` means shutdown.
    /// `scanned_uid_next` is the folder's UIDNEXT when it was last scanned: mail that
    /// arrived since then would never be announced by IDLE, so it ends the wait at once.
    async fn idle(
        &self,
        mut session: Session,
        interval: Duration,
        scanned_uid_next: Option<u32>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(Session, bool), ImapError> {
        let folders = super::Folders::resolve(&mut session, &self.settings).await?;
        let selected = timed("SELECT", session.select(&folders.scan[0])).await?;
        if selected.uid_next.is_some() && selected.uid_next != scanned_uid_next {
            return Ok((session, true));
        }
        let mut idle = session.idle();
        timed("IDLE", idle.init()).await?;
        let woken = {
            let (wait, _stop) = idle.wait_with_timeout(interval.min(IDLE_RENEW));
            tokio::select! {
                result = wait => {
                    result.map_err(|e| ImapError::Protocol(format!("IDLE: {e}")))?;
                    true
                }
                _ = shutdown.changed() => false,
            }
        };
        let session = timed("DONE", idle.done()).await?;
        Ok((session, woken))
    }
}

/// Up to a quarter of `base`, so many mailboxes do not reconnect in step.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}
