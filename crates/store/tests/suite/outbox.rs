//! The outbox: mails queued in the transaction of the change that causes them, claimed
//! by a sender with a lease (never by two), sent, deferred, failed, retried, suppressed.

use postdesk_core::id::{HelpdeskId, OutboxId, TicketId};
use postdesk_core::outgoing::{Event, OutboxStatus};
use postdesk_store::outbox::{self, NewOutgoing};
use postdesk_store::{Store, StoreError, now};

use crate::{Desk, Engine, counts, mail};

engine_tests! {
    a_queued_mail_is_claimed_then_sent,
    a_claimed_mail_is_not_claimed_again_by_another_sender,
    a_deferred_mail_waits_for_its_next_attempt,
    a_failed_mail_is_told_on_its_ticket_and_can_be_retried,
    a_suppressed_mail_is_kept_and_never_claimed,
    a_transaction_that_fails_queues_nothing,
}

const RAW: &[u8] = b"Subject: Re: Printer\r\n\r\nWe are on it.\r\n";

/// Queues `n` mails to Alice about `ticket_id` in one transaction, as notify does;
/// their Message-IDs (unique in the outbox) are made from `tag`.
async fn queue(
    store: &Store,
    tag: &'static str,
    helpdesk_id: HelpdeskId,
    ticket_id: Option<TicketId>,
    n: usize,
    suppressed: bool,
) -> Vec<OutboxId> {
    store
        .transaction(move |tx| {
            (0..n)
                .map(|i| {
                    let message_id = format!("{tag}-{i}@support.example.com");
                    outbox::queue(
                        tx,
                        &NewOutgoing {
                            helpdesk_id,
                            ticket_id,
                            intake_id: None,
                            entry_id: None,
                            kind: Event::Acknowledgement,
                            message_id: &message_id,
                            envelope_from: "support@example.com",
                            recipients: &[" Alice@ACME.example ".to_string()],
                            subject: "Re: Printer",
                            raw: RAW,
                            suppressed,
                        },
                    )
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await
        .unwrap()
}

/// A desk with one Support ticket (#100) and `n` mails queued about it.
async fn with_queued(engine: Engine, n: usize) -> (Desk, TicketId, Vec<OutboxId>) {
    let desk = engine.desk().await;
    let ticket_id = desk
        .import(&mail("Alice <alice@acme.example>", "Printer on fire"))
        .await
        .ticket_id
        .unwrap();
    let ids = queue(
        &desk.store,
        "out",
        desk.helpdesk("Support"),
        Some(ticket_id),
        n,
        false,
    )
    .await;
    (desk, ticket_id, ids)
}

async fn a_queued_mail_is_claimed_then_sent(engine: Engine) {
    let (desk, _, ids) = with_queued(engine, 1).await;
    let row = desk.store.outbox_row(ids[0]).await.unwrap();
    assert_eq!(row.status, OutboxStatus::Queued);
    assert_eq!(row.helpdesk, "Support");
    assert_eq!(row.ticket_number.map(|n| n.get()), Some(100));
    assert_eq!(row.recipients, "alice@acme.example", "trimmed, lower-cased");
    assert_eq!(row.kind, Event::Acknowledgement);

    let claimed = desk.store.outbox_claim(None, now(), 300, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0]);
    assert_eq!(claimed[0].recipients, ["alice@acme.example"]);
    assert_eq!(claimed[0].raw, RAW);
    assert_eq!(claimed[0].message_id, "out-0@support.example.com");
    assert_eq!(claimed[0].attempts, 0);

    desk.store.outbox_mark_sent(ids[0]).await.unwrap();
    let row = desk.store.outbox_row(ids[0]).await.unwrap();
    assert_eq!(row.status, OutboxStatus::Sent);
    assert_eq!(row.attempts, 1);
    assert!(row.sent_at.is_some());
    assert_eq!(desk.store.outbox_raw(ids[0]).await.unwrap(), RAW);
    assert_eq!(
        counts(&desk.store.outbox_counts().await.unwrap()),
        [("sent", 1)].into()
    );
    // A sent mail is never claimed again, however late the sender looks.
    let later = desk
        .store
        .outbox_claim(None, now() + 100_000, 300, 10)
        .await
        .unwrap();
    assert!(later.is_empty());
}

async fn a_claimed_mail_is_not_claimed_again_by_another_sender(engine: Engine) {
    let (desk, _, ids) = with_queued(engine, 6).await;
    // Two senders at once, each taking up to four.
    let (a, b) = tokio::join!(
        desk.store.outbox_claim(None, now(), 300, 4),
        desk.store.outbox_claim(None, now(), 300, 4),
    );
    let mut all: Vec<OutboxId> = a.unwrap().iter().chain(&b.unwrap()).map(|c| c.id).collect();
    all.sort();
    assert_eq!(all, ids, "each mail claimed exactly once");
    // While the lease runs nobody gets them; once it ends they are due again.
    assert!(
        desk.store
            .outbox_claim(None, now(), 300, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after_lease = desk
        .store
        .outbox_claim(None, now() + 301, 300, 10)
        .await
        .unwrap();
    assert_eq!(after_lease.len(), 6);
    // `only` claims that one mail.
    let only = desk
        .store
        .outbox_claim(Some(ids[2]), now() + 100_000, 300, 10)
        .await
        .unwrap();
    assert_eq!(only.iter().map(|c| c.id).collect::<Vec<_>>(), [ids[2]]);
}

async fn a_deferred_mail_waits_for_its_next_attempt(engine: Engine) {
    let (desk, _, ids) = with_queued(engine, 1).await;
    desk.store.outbox_claim(None, now(), 300, 10).await.unwrap();
    let next = now() + 3600;
    desk.store
        .outbox_defer(ids[0], next, "421 try later")
        .await
        .unwrap();
    let row = desk.store.outbox_row(ids[0]).await.unwrap();
    assert_eq!(row.status, OutboxStatus::Queued);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.next_attempt_at, next);
    assert_eq!(row.last_error.as_deref(), Some("421 try later"));
    assert!(
        desk.store
            .outbox_claim(None, next - 1, 300, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its next attempt"
    );
    let due = desk.store.outbox_claim(None, next, 300, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1);
}

async fn a_failed_mail_is_told_on_its_ticket_and_can_be_retried(engine: Engine) {
    let (desk, ticket_id, ids) = with_queued(engine, 2).await;
    desk.store
        .outbox_fail(ids[0], "550 no such user")
        .await
        .unwrap();
    let row = desk.store.outbox_row(ids[0]).await.unwrap();
    assert_eq!(row.status, OutboxStatus::Failed);
    assert_eq!(row.attempts, 1);
    let ticket = desk.store.ticket_by_id(ticket_id).await.unwrap();
    let told = &ticket.entries.last().unwrap().body_text;
    assert!(
        told.starts_with(&format!(
            "Outgoing mail {} (acknowledgement) to alice@acme.example could not be delivered: 550 no such user.",
            ids[0]
        )),
        "{told}"
    );
    assert_eq!(
        desk.store
            .outbox_rows(Some(OutboxStatus::Failed), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [ids[0]]
    );
    // A failed mail is never claimed until retried.
    let claimed = desk
        .store
        .outbox_claim(None, now() + 100_000, 300, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [ids[1]]);
    desk.store.outbox_mark_sent(ids[1]).await.unwrap();

    // Retrying a sent mail does nothing; a failed one is queued afresh.
    assert_eq!(desk.store.outbox_retry(&[ids[1]]).await.unwrap(), 0);
    assert_eq!(desk.store.outbox_retry_failed().await.unwrap(), 1);
    let row = desk.store.outbox_row(ids[0]).await.unwrap();
    assert_eq!(row.status, OutboxStatus::Queued);
    assert_eq!(row.attempts, 0);
    assert_eq!(row.last_error, None);
    let claimed = desk.store.outbox_claim(None, now(), 300, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [ids[0]]);
    assert_eq!(
        counts(&desk.store.outbox_counts().await.unwrap()),
        [("queued", 1), ("sent", 1)].into()
    );
}

async fn a_suppressed_mail_is_kept_and_never_claimed(engine: Engine) {
    let desk = engine.desk().await;
    let support = desk.helpdesk("Support");
    let suppressed = queue(&desk.store, "off", support, None, 1, true).await;
    let queued = queue(&desk.store, "on", support, None, 1, false).await;
    desk.store.outbox_suppress(queued[0]).await.unwrap();
    for id in [suppressed[0], queued[0]] {
        assert_eq!(
            desk.store.outbox_row(id).await.unwrap().status,
            OutboxStatus::Suppressed
        );
        assert_eq!(desk.store.outbox_raw(id).await.unwrap(), RAW, "kept");
    }
    assert!(
        desk.store
            .outbox_claim(None, now() + 100_000, 300, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(desk.store.outbox_retry(&suppressed).await.unwrap(), 0);
    assert_eq!(
        counts(&desk.store.outbox_counts().await.unwrap()),
        [("suppressed", 2)].into()
    );
}

async fn a_transaction_that_fails_queues_nothing(engine: Engine) {
    let desk = engine.desk().await;
    let helpdesk_id = desk.helpdesk("Support");
    let failed: Result<(), StoreError> = desk
        .store
        .transaction(move |tx| {
            outbox::queue(
                tx,
                &NewOutgoing {
                    helpdesk_id,
                    ticket_id: None,
                    intake_id: None,
                    entry_id: None,
                    kind: Event::Alert,
                    message_id: "alert-1@support.example.com",
                    envelope_from: "support@example.com",
                    recipients: &["admin@example.com".to_string()],
                    subject: "Alert",
                    raw: RAW,
                    suppressed: false,
                },
            )?;
            Err(StoreError::Invalid("the change behind it failed".into()))
        })
        .await;
    assert!(failed.is_err());
    assert!(desk.store.outbox_counts().await.unwrap().is_empty());
    assert!(desk.store.outbox_rows(None, 10).await.unwrap().is_empty());
}
