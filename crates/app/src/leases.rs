//! Mailbox leases from the entry points' side: which instance reads which mailbox
//! when several `postdesk serve` processes share one database (the rows and the fence
//! are `postdesk_store::leases`).
//!
//! [`Leases::hold`] is a mailbox's task in `serve`: it takes the mailbox's lease when
//! it is free, runs the reader with the lease's fence while renewing it every
//! `renew_secs`, stops the reader when the lease is lost (taken over, or not renewed
//! before it ran out, e.g. while the database was away), and tries again every
//! `renew_secs` while another instance holds it. On shutdown it stops the reader
//! (which finishes the mail in hand) and gives the lease back, so another instance
//! takes over at its next try instead of after the expiry. An instance that dies
//! holds on for at most `lease_secs`; the next holder then takes over within
//! `lease_secs + renew_secs` (40 s with the defaults).
//!
//! Mailboxes are shared out: every instance announces itself ([`Leases::announce`]),
//! takes a free lease only while it holds fewer than its fair share (the mailboxes
//! divided by the instances alive, rounded up) unless the lease has stayed free for
//! three renewals, and gives back a lease it holds beyond its share (a new instance
//! joined), so two instances on two mailboxes read one each.
//!
//! [`Leases::once`] is the same for one scan (`postdesk scan`, "scan now"): the lease
//! if it is free, renewed while the scan runs, given back after; refused while another
//! instance reads the mailbox.

use std::future::Future;
use std::time::Duration;

use postdesk_store::StoreError;
use postdesk_store::leases::{HeldLease, LeaseFence, LeaseKey};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::App;
use crate::mailboxes::ConfiguredMailbox;

/// How long a lease lasts and how often its holder renews it (`[instances]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// A dead holder keeps the mailbox this long at most.
    pub length: Duration,
    /// Renewal, and how often an instance tries to take a lease held elsewhere.
    pub renew_every: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            length: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
        }
    }
}

/// This process among the instances sharing the database: `host:pid:random`, so that
/// a restarted process (even with the same pid, as in a container) is another holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn of_this_process() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        // The standard library seeds each RandomState from the operating system.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let random = hasher.finish() & 0xff_ffff;
        Self(format!("{host}:{}:{random:06x}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `holder` is an instance of this machine (same host name) whose process
    /// no longer runs. Another machine's instance is never known dead: its lease is
    /// waited out. (Containers that share a host name but not their process ids would
    /// take each other's leases in turn; the fence keeps that from doubling anything.)
    pub fn knows_dead(&self, holder: &str) -> bool {
        let (Some((host, _)), Some((other_host, other_pid))) =
            (split_holder(&self.0), split_holder(holder))
        else {
            return false;
        };
        host == other_host
            && other_pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{other_pid}")).exists()
            && std::path::Path::new("/proc/self").exists()
    }
}

/// The host and pid of a holder `host:pid:random` (the host may hold colons).
fn split_holder(holder: &str) -> Option<(&str, u32)> {
    let mut parts = holder.rsplitn(3, ':');
    let _random = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid))
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another instance (or this one's `serve` task) reads the mailbox now.
    #[error("{mailbox} is being read by instance {holder} (postdesk serve); not scanned here")]
    Held { mailbox: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The App's mailbox leases (see [`App::leases`]).
pub struct Leases<'a> {
    app: &'a App,
}

impl App {
    pub fn leases(&self) -> Leases<'_> {
        Leases { app: self }
    }
}

/// The lease row of a mailbox.
pub fn lease_key(mailbox: &ConfiguredMailbox) -> LeaseKey {
    LeaseKey {
        helpdesk: mailbox.helpdesk.clone(),
        mailbox: mailbox.name(),
    }
}

/// Why the work under a lease stopped.
enum Ended {
    /// It returned by itself.
    Finished,
    /// The lease is no longer ours (taken over, or not renewed in time).
    Lost,
    /// Given up: this instance holds more than its share while another holds less.
    Yielded,
    Shutdown,
}

impl Leases<'_> {
    fn settings(&self) -> LeaseSettings {
        self.app.settings().leases
    }

    /// `serve`'s task for `mailbox`: `work(fence, stop)` reads it for as long as this
    /// instance holds its lease (until `stop` turns true), again each time the lease
    /// is won back, until `shutdown` (see the module documentation).
    ///
    /// `mailboxes` is how many this instance serves in all (for its fair share).
    pub async fn hold<F, Fut>(
        &self,
        mailbox: &ConfiguredMailbox,
        mailboxes: usize,
        mut shutdown: watch::Receiver<bool>,
        mut work: F,
    ) where
        F: FnMut(LeaseFence, watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let key = lease_key(mailbox);
        let settings = self.settings();
        let mut told_waiting = false;
        while !*shutdown.borrow() {
            let acquired = if self.may_take(&key, mailboxes).await {
                self.acquire(&key).await
            } else {
                Ok(None)
            };
            let wait = match acquired {
                Ok(Some(held)) => {
                    told_waiting = false;
                    tracing::info!(mailbox = %key.mailbox, token = %held.fence.token, "took the mailbox's lease");
                    let (stop, stopped) = watch::channel(false);
                    let fence = held.fence.clone();
                    let ended = self
                        .renewing(
                            held,
                            Some(mailboxes),
                            work(fence.clone(), stopped),
                            &stop,
                            &mut shutdown,
                        )
                        .await;
                    match ended {
                        Ended::Shutdown => {
                            self.release(&fence).await;
                            return;
                        }
                        Ended::Lost => {
                            tracing::warn!(mailbox = %key.mailbox, token = %fence.token, "lost the mailbox's lease; reading stopped");
                            settings.renew_every
                        }
                        Ended::Yielded => {
                            tracing::info!(mailbox = %key.mailbox, "gave the mailbox to an instance with fewer");
                            self.release(&fence).await;
                            // Long enough for the instance with fewer to take it.
                            settings.renew_every * 3
                        }
                        Ended::Finished => {
                            // The reader gave up on its own (a broken configuration):
                            // let another instance try, and try again later.
                            self.release(&fence).await;
                            settings.renew_every
                        }
                    }
                }
                Ok(None) => {
                    if !told_waiting {
                        tracing::info!(mailbox = %key.mailbox, "another instance reads the mailbox; waiting for its lease");
                        told_waiting = true;
                    }
                    settings.renew_every
                }
                Err(e) => {
                    tracing::warn!(mailbox = %key.mailbox, error = %e, "cannot take the mailbox's lease; trying again");
                    settings.renew_every
                }
            };
            let wait = wait + jitter(wait);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Runs `work` once under the mailbox's lease, taken for it and given back after;
    /// [`LeaseError::Held`] when another instance holds it.
    pub async fn once<T, Fut>(
        &self,
        mailbox: &ConfiguredMailbox,
        work: impl FnOnce(LeaseFence) -> Fut,
    ) -> Result<T, LeaseError>
    where
        Fut: Future<Output = T>,
    {
        let key = lease_key(mailbox);
        let store = self.app.store();
        let Some(held) = self.acquire(&key).await? else {
            let (_, leases) = store.leases().await?;
            let holder = leases
                .into_iter()
                .find(|l| l.key == key)
                .map(|l| l.holder)
                .unwrap_or_default();
            return Err(LeaseError::Held {
                mailbox: key.mailbox,
                holder,
            });
        };
        let fence = held.fence.clone();
        let (stop, _) = watch::channel(false);
        // No shutdown for one scan: the sender stays, so `never` never changes.
        let (_kept, mut never) = watch::channel(false);
        let mut output = None;
        let fut = async {
            output = Some(work(fence.clone()).await);
        };
        // A lost lease cannot stop a single scan; its next batch fails on the fence.
        self.renewing(held, None, fut, &stop, &mut never).await;
        self.release(&fence).await;
        Ok(output.expect("the work ran to its end"))
    }

    /// Drives `work` to its end while renewing `held` every `renew_every`. When the
    /// lease is lost, or `shutdown` turns true, `stop` is sent and the work is
    /// awaited (it finishes what it has in hand; its commits are fenced).
    async fn renewing(
        &self,
        held: HeldLease,
        share_of: Option<usize>,
        work: impl Future<Output = ()>,
        stop: &watch::Sender<bool>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let settings = self.settings();
        let store = self.app.store();
        let fence = held.fence;
        // By this process's clock, no later than the database's expiry (measured from
        // before the call that set it).
        let mut valid_until = Instant::now() + settings.length;
        tokio::pin!(work);
        let mut ticks =
            tokio::time::interval_at(Instant::now() + settings.renew_every, settings.renew_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ended = loop {
            tokio::select! {
                () = &mut work => return Ended::Finished,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break Ended::Shutdown;
                    }
                }
                _ = ticks.tick() => {
                    let asked = Instant::now();
                    match store.renew_lease(&fence, settings.length).await {
                        Ok(Some(_)) => {
                            valid_until = asked + settings.length;
                            if let Some(mailboxes) = share_of
                                && self.beyond_share(mailboxes).await
                            {
                                break Ended::Yielded;
                            }
                        }
                        Ok(None) => break Ended::Lost,
                        Err(e) => {
                            tracing::warn!(mailbox = %fence.key.mailbox, error = %e, "cannot renew the mailbox's lease");
                            if Instant::now() >= valid_until {
                                break Ended::Lost;
                            }
                        }
                    }
                }
            }
        };
        let _ = stop.send(true);
        work.await;
        ended
    }

    /// Says, every `renew_every` until `shutdown`, that this instance is alive (for
    /// the fair shares); its row goes when it stops.
    pub async fn announce(&self, mut shutdown: watch::Receiver<bool>) {
        let store = self.app.store();
        let holder = self.app.instance().as_str();
        while !*shutdown.borrow() {
            if let Err(e) = store.announce_instance(holder).await {
                tracing::debug!(error = %e, "cannot announce this instance; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings().renew_every) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(e) = store.forget_instance(holder).await {
            tracing::debug!(error = %e, "cannot remove this instance's row; it ages out");
        }
    }

    /// This instance's fair share of `mailboxes`, and how many leases it holds; `None`
    /// when the database cannot say.
    async fn share(&self, mailboxes: usize) -> Option<(usize, usize)> {
        let store = self.app.store();
        let holder = self.app.instance().as_str();
        let (alive, held) = store
            .lease_share(holder, self.settings().length)
            .await
            .ok()?;
        Some((mailboxes.div_ceil(alive.max(1)), held))
    }

    /// Whether to try for the lease of `key`: below its fair share, or the lease has
    /// stayed free for three renewals (nobody below theirs wants it; a lease never
    /// held waits for the instances below theirs too, until the dead ones' rows age
    /// out).
    async fn may_take(&self, key: &LeaseKey, mailboxes: usize) -> bool {
        let Some((fair, held)) = self.share(mailboxes).await else {
            return true;
        };
        if held < fair {
            return true;
        }
        let Ok((now, leases)) = self.app.store().leases().await else {
            return true;
        };
        let patience =
            i64::try_from((self.settings().renew_every * 3).as_millis()).unwrap_or(i64::MAX);
        leases
            .iter()
            .find(|l| &l.key == key)
            .is_some_and(|l| !l.is_held(now) && now - l.expires_ms > patience)
    }

    /// Whether this instance holds more than its share, and should give one lease up:
    /// each of its mailboxes' tasks asks, and half of them (at random) answer yes, so
    /// that they do not all give theirs up at once.
    async fn beyond_share(&self, mailboxes: usize) -> bool {
        match self.share(mailboxes).await {
            Some((fair, held)) => held > fair && coin(),
            None => false,
        }
    }

    /// The lease of `key` if it is free, or held by a process of this machine that
    /// no longer runs (a `kill -9`, a crash): that one need not be waited out.
    async fn acquire(&self, key: &LeaseKey) -> Result<Option<HeldLease>, StoreError> {
        let store = self.app.store();
        let holder = self.app.instance().as_str();
        let length = self.settings().length;
        if let Some(held) = store.acquire_lease(key, holder, length, None).await? {
            return Ok(Some(held));
        }
        let (now, leases) = store.leases().await?;
        let dead = leases
            .into_iter()
            .find(|l| &l.key == key && l.is_held(now))
            .filter(|l| self.app.instance().knows_dead(&l.holder));
        match dead {
            Some(lease) => {
                tracing::info!(mailbox = %key.mailbox, holder = %lease.holder, "the mailbox's holder on this machine is gone; taking over");
                store
                    .acquire_lease(key, holder, length, Some(&lease.holder))
                    .await
            }
            None => Ok(None),
        }
    }

    async fn release(&self, fence: &LeaseFence) {
        match self.app.store().release_lease(fence).await {
            Ok(true) => {
                tracing::info!(mailbox = %fence.key.mailbox, "gave the mailbox's lease back")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(mailbox = %fence.key.mailbox, error = %e, "cannot give the mailbox's lease back; it expires by itself")
            }
        }
    }
}

/// Heads or tails, from the clock's nanoseconds.
fn coin() -> bool {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_micros() % 2 == 0)
        .unwrap_or(true)
}

/// Up to a quarter of `base`, so that instances do not try in step.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_split_from_the_right() {
        assert_eq!(split_holder("web-1:42:0a1b2c"), Some(("web-1", 42)));
        assert_eq!(split_holder("fe80::1:42:0a1b2c"), Some(("fe80::1", 42)));
        assert_eq!(split_holder("nonsense"), None);
    }

    #[test]
    fn only_a_gone_process_of_this_machine_is_known_dead() {
        let me = InstanceId::of_this_process();
        let (host, pid) = split_holder(me.as_str()).unwrap();
        assert_eq!(pid, std::process::id());
        assert!(!me.knows_dead(me.as_str()), "this process runs");
        // pid 1 always runs; a pid above the kernel's limit never does.
        assert!(!me.knows_dead(&format!("{host}:1:abc")));
        assert!(me.knows_dead(&format!("{host}:999999999:abc")));
        assert!(!me.knows_dead("another-machine:999999999:abc"));
    }
}
