//! IMAP mailboxes: their health (scans counted, the last error kept for the record),
//! the last UID read per folder, and the OAuth tokens kept for them.

use postdesk_store::mailboxes::StoredTokens;

use crate::Engine;

engine_tests! {
    a_mailboxs_scans_add_up_and_its_last_error_stays,
    folder_positions_are_kept_per_folder,
    oauth_tokens_are_kept_and_replaced,
}

async fn a_mailboxs_scans_add_up_and_its_last_error_stays(engine: Engine) {
    let store = engine.open().await;
    assert!(store.mailbox_statuses().await.unwrap().is_empty());
    store
        .mailbox_failed("Support", "inbox", "login refused")
        .await
        .unwrap();
    store
        .mailbox_scanned("Support", "inbox", 10, 1)
        .await
        .unwrap();
    store
        .mailbox_scanned("Support", "inbox", 5, 0)
        .await
        .unwrap();
    store.mailbox_scanned("Sales", "inbox", 2, 0).await.unwrap();
    let statuses = store.mailbox_statuses().await.unwrap();
    let seen: Vec<_> = statuses
        .iter()
        .map(|s| {
            (
                s.helpdesk.as_str(),
                s.mailbox.as_str(),
                s.processed,
                s.failed,
                s.last_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Sales", "inbox", 2, 0, None),
            ("Support", "inbox", 15, 1, Some("login refused")),
        ]
    );
    let support = &statuses[1];
    assert!(support.last_success_at.is_some() && support.last_error_at.is_some());
    // A new error replaces the old one and leaves the counts alone.
    store
        .mailbox_failed("Support", "inbox", "timed out")
        .await
        .unwrap();
    let statuses = store.mailbox_statuses().await.unwrap();
    assert_eq!(statuses[1].last_error.as_deref(), Some("timed out"));
    assert_eq!((statuses[1].processed, statuses[1].failed), (15, 1));
}

async fn folder_positions_are_kept_per_folder(engine: Engine) {
    let store = engine.open().await;
    assert_eq!(
        store
            .folder_position("Support", "inbox", "INBOX")
            .await
            .unwrap(),
        None
    );
    store
        .set_folder_position("Support", "inbox", "INBOX", 7, 120)
        .await
        .unwrap();
    store
        .set_folder_position("Support", "inbox", "Archive", 9, 3)
        .await
        .unwrap();
    store
        .set_folder_position("Support", "inbox", "INBOX", 7, 131)
        .await
        .unwrap();
    assert_eq!(
        store
            .folder_position("Support", "inbox", "INBOX")
            .await
            .unwrap(),
        Some((7, 131))
    );
    assert_eq!(
        store
            .folder_position("Support", "inbox", "Archive")
            .await
            .unwrap(),
        Some((9, 3))
    );
    assert_eq!(
        store
            .folder_position("Sales", "inbox", "INBOX")
            .await
            .unwrap(),
        None
    );
    // UIDs and UIDVALIDITY are 32-bit unsigned: the largest round-trips.
    store
        .set_folder_position("Sales", "inbox", "INBOX", u32::MAX, u32::MAX)
        .await
        .unwrap();
    assert_eq!(
        store
            .folder_position("Sales", "inbox", "INBOX")
            .await
            .unwrap(),
        Some((u32::MAX, u32::MAX))
    );
}

async fn oauth_tokens_are_kept_and_replaced(engine: Engine) {
    let store = engine.open().await;
    assert!(
        store
            .oauth_tokens("Support", "inbox")
            .await
            .unwrap()
            .is_none()
    );
    let first = StoredTokens {
        configured: "sha-of-config".into(),
        refresh_token: "refresh-1".into(),
        access_token: Some("access-1".into()),
        expires_at: Some(1_900_000_000),
    };
    store
        .save_oauth_tokens("Support", "inbox", &first)
        .await
        .unwrap();
    let kept = store
        .oauth_tokens("Support", "inbox")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            kept.configured.as_str(),
            kept.refresh_token.as_str(),
            kept.access_token.as_deref(),
            kept.expires_at
        ),
        (
            "sha-of-config",
            "refresh-1",
            Some("access-1"),
            Some(1_900_000_000)
        )
    );
    let rotated = StoredTokens {
        refresh_token: "refresh-2".into(),
        access_token: None,
        expires_at: None,
        ..first
    };
    store
        .save_oauth_tokens("Support", "inbox", &rotated)
        .await
        .unwrap();
    let kept = store
        .oauth_tokens("Support", "inbox")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.refresh_token, "refresh-2");
    assert_eq!((kept.access_token, kept.expires_at), (None, None));
    assert!(
        store
            .oauth_tokens("Sales", "inbox")
            .await
            .unwrap()
            .is_none()
    );
}
