//! Waking a mailbox's reader from outside its loop: the provider's change
//! notifications (Graph's, and Gmail's Pub/Sub pushes) arrive at the web listener, are
//! checked here (against the subscriptions in the store, or the mailbox's push token),
//! and ring the bell of the mailbox they are for, so that its scan runs at once instead
//! of at the next `interval_secs`.
//!
//! A notification is only a wake-up. The scan it starts reads the provider's change
//! feed (the delta query), which stays the one source of truth, and the polling goes on
//! as before: a lost notification delays a mail until the next poll, a forged or
//! repeated one costs at most a scan that finds nothing. A notification wakes only
//! when its subscription id is one of ours and its `clientState` equals the secret kept
//! with that subscription (compared in constant time); the secret is never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use postdesk_store::Store;
use tokio::sync::Notify;

/// The bells of the mailboxes this process reads, by (helpdesk, mailbox) name.
#[derive(Default)]
pub struct Wakeups {
    bells: Mutex<HashMap<(String, String), Arc<Notify>>>,
}

impl Wakeups {
    /// The bell a mailbox's reader waits on beside its timer (made on first use).
    pub fn bell(&self, helpdesk: &str, mailbox: &str) -> Arc<Notify> {
        let mut bells = self.bells.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            bells
                .entry((helpdesk.to_string(), mailbox.to_string()))
                .or_default(),
        )
    }

    /// Rings a mailbox's bell: its reader scans as soon as the scan in hand (if any)
    /// is done. A mailbox nobody here reads (another instance holds it) is not rung:
    /// its reader polls.
    pub fn ring(&self, helpdesk: &str, mailbox: &str) -> bool {
        let bells = self.bells.lock().unwrap_or_else(|e| e.into_inner());
        match bells.get(&(helpdesk.to_string(), mailbox.to_string())) {
            Some(bell) => {
                bell.notify_one();
                true
            }
            None => false,
        }
    }
}

/// One notification as the provider sent it: which subscription, and the secret it
/// claims to carry.
#[derive(Clone)]
pub struct Notice {
    pub subscription_id: String,
    pub client_state: Option<String>,
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice")
            .field("subscription_id", &self.subscription_id)
            .finish_non_exhaustive()
    }
}

/// What became of a body of notifications.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Ours, with the right secret: their mailboxes were woken.
    pub accepted: usize,
    /// Ours, with a wrong or missing secret: ignored.
    pub refused: usize,
    /// Not a subscription of ours (an old one, or made up): ignored.
    pub unknown: usize,
}

/// At most this many notifications of one body are looked at; Graph sends a few.
pub const MAX_NOTICES: usize = 100;

/// Checks each notice against the store and wakes the mailboxes of the good ones
/// (each once, however many of its notices came).
pub async fn check_graph_notices(
    store: &Store,
    wakeups: &Wakeups,
    notices: &[Notice],
) -> Result<Checked, postdesk_store::StoreError> {
    let mut checked = Checked::default();
    let mut woken: Vec<(String, String)> = Vec::new();
    for notice in notices.iter().take(MAX_NOTICES) {
        let Some(subscription) = store.mailbox_subscription(&notice.subscription_id).await? else {
            checked.unknown += 1;
            continue;
        };
        let claimed = notice.client_state.as_deref().unwrap_or_default();
        if !same_secret(
            claimed.as_bytes(),
            subscription.client_state.expose().as_bytes(),
        ) {
            checked.refused += 1;
            tracing::warn!(
                mailbox = %subscription.mailbox,
                "a change notification with a wrong clientState was ignored"
            );
            continue;
        }
        checked.accepted += 1;
        let key = (subscription.helpdesk, subscription.mailbox);
        if !woken.contains(&key) {
            wakeups.ring(&key.0, &key.1);
            woken.push(key);
        }
    }
    checked.unknown += notices.len().saturating_sub(MAX_NOTICES);
    Ok(checked)
}

/// A Pub/Sub push of Gmail's: the token in its URL and the address its data names.
/// Rings each Gmail mailbox whose `push_token` is that token (constant time) and whose
/// `user` is that address (or `me`); `None` when the token is no mailbox's.
pub fn check_gmail_push(
    app: &crate::App,
    token: &str,
    email_address: Option<&str>,
) -> Option<usize> {
    use postdesk_core::mailbox::MailboxKind;
    let mut known = false;
    let mut rung = 0;
    for mailbox in app.mailboxes() {
        let settings = &mailbox.settings;
        let Some(expected) = &settings.push_token else {
            continue;
        };
        if settings.kind != MailboxKind::Gmail
            || !same_secret(token.as_bytes(), expected.expose().as_bytes())
        {
            continue;
        }
        known = true;
        let for_it = email_address.is_some_and(|a| {
            settings.user.eq_ignore_ascii_case(a) || settings.user.eq_ignore_ascii_case("me")
        });
        if for_it && app.wakeups().ring(&mailbox.helpdesk, &mailbox.name()) {
            rung += 1;
        }
    }
    known.then_some(rung)
}

/// Equal secrets, in a time that depends on their lengths only.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcd", b"abcd"));
        assert!(!same_secret(b"abcd", b"abce"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[tokio::test]
    async fn a_bell_rings_once_for_a_waiting_reader_and_only_for_known_mailboxes() {
        let wakeups = Wakeups::default();
        assert!(!wakeups.ring("Support", "graph:a"), "nobody reads it here");
        let bell = wakeups.bell("Support", "graph:a");
        assert!(wakeups.ring("Support", "graph:a"));
        // The ring is kept until the reader waits for it.
        tokio::time::timeout(std::time::Duration::from_secs(1), bell.notified())
            .await
            .expect("rung");
    }
}
