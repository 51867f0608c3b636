//! `Type=notify` for systemd (`deploy/postdesk.service`): `READY=1` once `serve` has
//! opened the store (the migrations ran then), bound its listeners and started its
//! mailboxes; `WATCHDOG=1` at half the interval systemd gives in `WATCHDOG_USEC`, sent
//! from a task of the runtime, so that a runtime that stops making progress gets the
//! process restarted; `STOPPING=1` when a signal begins the drain. Outside systemd
//! (no `NOTIFY_SOCKET`) each of them does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells systemd that `serve` is up, with a status line for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd that `serve` is draining.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("finishing the mail in hand"),
    ]);
}

/// Pings the watchdog until `stopped`, when systemd asked for one.
pub fn watchdog(mut stopped: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(Duration::from_millis(10));
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => send(&[NotifyState::Watchdog]),
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }))
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify systemd (NOTIFY_SOCKET)");
    }
}
