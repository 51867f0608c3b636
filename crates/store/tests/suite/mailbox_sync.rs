//! Graph and Gmail mailboxes: the token each folder's change feed continues from.

use crate::Engine;

engine_tests! {
    sync_tokens_are_kept_per_folder_replaced_and_forgotten,
}

async fn sync_tokens_are_kept_per_folder_replaced_and_forgotten(engine: Engine) {
    let store = engine.open().await;
    assert_eq!(
        store
            .sync_token("Support", "graph:a", "inbox")
            .await
            .unwrap(),
        None
    );
    store
        .set_sync_token("Support", "graph:a", "inbox", "https://graph/delta?token=1")
        .await
        .unwrap();
    store
        .set_sync_token(
            "Support",
            "graph:a",
            "archive",
            "https://graph/delta?token=9",
        )
        .await
        .unwrap();
    store
        .set_sync_token("Support", "graph:a", "inbox", "https://graph/delta?token=2")
        .await
        .unwrap();
    assert_eq!(
        store
            .sync_token("Support", "graph:a", "inbox")
            .await
            .unwrap()
            .as_deref(),
        Some("https://graph/delta?token=2")
    );
    assert_eq!(
        store.sync_token("Sales", "graph:a", "inbox").await.unwrap(),
        None
    );
    store
        .clear_sync_token("Support", "graph:a", "inbox")
        .await
        .unwrap();
    assert_eq!(
        store
            .sync_token("Support", "graph:a", "inbox")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .sync_token("Support", "graph:a", "archive")
            .await
            .unwrap()
            .as_deref(),
        Some("https://graph/delta?token=9")
    );
}
