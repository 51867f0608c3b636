//! Mailbox leases (issue 15): one holder at a time, a token raised on every takeover,
//! and batches fenced by it.

use std::time::Duration;

use postdesk_store::leases::{FencingToken, LeaseFence, LeaseKey};
use postdesk_store::read::TicketFilter;
use postdesk_store::{IncomingMail, StoreError};

use crate::{Desk, Engine, mail};

engine_tests! {
    a_free_lease_is_taken_by_one_holder_and_given_back,
    an_expired_lease_is_taken_over_with_a_new_token,
    a_batch_under_a_lost_lease_writes_nothing,
}

const MINUTE: Duration = Duration::from_secs(60);

fn key(mailbox: &str) -> LeaseKey {
    LeaseKey {
        helpdesk: "Support".into(),
        mailbox: mailbox.into(),
    }
}

async fn a_free_lease_is_taken_by_one_holder_and_given_back(engine: Engine) {
    let store = engine.open().await;
    let a = store
        .acquire_lease(&key("imap:a"), "host:1:a", MINUTE, None)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(a.fence.token, FencingToken(1));
    // Held: neither another instance nor the holder's own second task gets it.
    for holder in ["host:2:b", "host:1:a"] {
        let again = store
            .acquire_lease(&key("imap:a"), holder, MINUTE, None)
            .await;
        assert!(again.unwrap().is_none(), "{holder} took a held lease");
    }
    // Another mailbox is another lease.
    assert!(
        store
            .acquire_lease(&key("imap:other"), "host:2:b", MINUTE, None)
            .await
            .unwrap()
            .is_some()
    );
    let renewed = store.renew_lease(&a.fence, MINUTE).await.unwrap().unwrap();
    assert!(renewed.expires_ms >= a.expires_ms);
    let (now, rows) = store.leases().await.unwrap();
    let row = rows.iter().find(|r| r.key == key("imap:a")).unwrap();
    assert_eq!(row.holder, "host:1:a");
    assert!(row.is_held(now));

    assert!(store.release_lease(&a.fence).await.unwrap());
    let (now, rows) = store.leases().await.unwrap();
    let row = rows.iter().find(|r| r.key == key("imap:a")).unwrap();
    assert!(!row.is_held(now) && row.released_ms.is_some());
    // Given back: the next instance takes it at once, with a new token; the old
    // holder can neither renew nor give it back again.
    let b = store
        .acquire_lease(&key("imap:a"), "host:2:b", MINUTE, None)
        .await
        .unwrap()
        .expect("a released lease is free");
    assert_eq!(b.fence.token, FencingToken(2));
    assert!(store.renew_lease(&a.fence, MINUTE).await.unwrap().is_none());
    assert!(!store.release_lease(&a.fence).await.unwrap());
}

async fn an_expired_lease_is_taken_over_with_a_new_token(engine: Engine) {
    let store = engine.open().await;
    let short = Duration::from_millis(50);
    let a = store
        .acquire_lease(&key("imap:a"), "host:1:a", short, None)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    // Expired, and nobody took it: the holder may still renew it (its token fences).
    let renewed = store.renew_lease(&a.fence, short).await.unwrap();
    assert!(renewed.is_some());
    tokio::time::sleep(Duration::from_millis(120)).await;
    let b = store
        .acquire_lease(&key("imap:a"), "host:2:b", MINUTE, None)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(b.fence.token, FencingToken(2));
    assert!(store.renew_lease(&a.fence, MINUTE).await.unwrap().is_none());
    // Even the old holder taking it back is a takeover: a new token.
    assert!(store.release_lease(&b.fence).await.unwrap());
    let a2 = store
        .acquire_lease(&key("imap:a"), "host:1:a", MINUTE, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a2.fence.token, FencingToken(3));
    assert!(store.renew_lease(&a.fence, MINUTE).await.unwrap().is_none());
    // A holder known to be dead gives its lease up before it expires; naming another
    // holder as dead changes nothing.
    let not_it = store
        .acquire_lease(&key("imap:a"), "host:2:b", MINUTE, Some("host:9:z"))
        .await
        .unwrap();
    assert!(not_it.is_none());
    let b2 = store
        .acquire_lease(&key("imap:a"), "host:2:b", MINUTE, Some("host:1:a"))
        .await
        .unwrap()
        .expect("the lease of a dead holder is taken over");
    assert_eq!(b2.fence.token, FencingToken(4));
}

/// Applies `mails` in one batch fenced by `fence`.
async fn ingest_fenced(
    desk: &Desk,
    mails: Vec<crate::Mail>,
    fence: LeaseFence,
) -> postdesk_store::Result<usize> {
    let store = desk.store.clone();
    let helpdesks = desk.helpdesks.clone();
    tokio::task::spawn_blocking(move || {
        let prepared: Vec<IncomingMail> = mails
            .iter()
            .map(|m| crate::prepared(&store, &helpdesks, m))
            .collect();
        let refs: Vec<&IncomingMail> = prepared.iter().collect();
        let mut writer = store.writer()?;
        let mut batch = writer.begin_batch(&helpdesks, false, &refs, Some(&fence))?;
        for mail in &prepared {
            batch.ingest(&helpdesks, mail, None)?;
        }
        batch.commit()?;
        Ok(prepared.len())
    })
    .await
    .unwrap()
}

async fn a_batch_under_a_lost_lease_writes_nothing(engine: Engine) {
    let desk = engine.desk().await;
    let store = &desk.store;
    let old = store
        .acquire_lease(&key("imap:a"), "host:1:a", Duration::ZERO, None)
        .await
        .unwrap()
        .unwrap();
    // While nobody took it over, the expired lease still fences: the batch commits.
    let first = vec![mail("ann@example.org", "Printer on fire")];
    assert_eq!(
        ingest_fenced(&desk, first, old.fence.clone())
            .await
            .unwrap(),
        1
    );
    // Another instance takes the mailbox over; the paused old holder wakes up with a batch.
    let new = store
        .acquire_lease(&key("imap:a"), "host:2:b", MINUTE, None)
        .await
        .unwrap()
        .unwrap();
    let late = vec![
        mail("bob@example.org", "Scanner jammed"),
        mail("cy@example.org", "Coffee machine"),
    ];
    let refused = ingest_fenced(&desk, late.clone(), old.fence.clone()).await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    let titles = |desk: &Desk| {
        let store = desk.store.clone();
        async move {
            store
                .list_tickets(&TicketFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.title)
                .collect::<Vec<_>>()
        }
    };
    let before = titles(&desk).await;
    assert_eq!(before, vec!["Printer on fire".to_string()]);
    // The new holder commits the same mails: each once.
    assert_eq!(ingest_fenced(&desk, late, new.fence).await.unwrap(), 2);
    let mut after = titles(&desk).await;
    after.sort();
    assert_eq!(
        after,
        ["Coffee machine", "Printer on fire", "Scanner jammed"]
    );
}
