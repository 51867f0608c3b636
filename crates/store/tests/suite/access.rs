//! Access: agents and their helpdesks, sessions and API tokens (found by their hash,
//! until ended, revoked or expired; never for a disabled agent), sign-in limits.

use postdesk_store::StoreError;
use postdesk_store::access::{LoginGate, LoginLimits, Proof, Role};
use postdesk_store::notifications::Audience;

use crate::{Desk, Engine, session_agent, token_agent};

engine_tests! {
    agents_belong_to_the_helpdesks_they_are_given,
    a_session_is_found_by_its_hash_until_ended_or_expired,
    an_api_token_works_until_revoked_or_expired,
    a_disabled_agent_has_no_session_and_no_token,
    one_read_signs_a_request_in_with_the_agents_account_and_unread_count,
    sign_in_attempts_are_limited_and_can_be_cleared,
    revoking_all_tokens_counts_the_live_ones,
}

/// `sam` of Support, `root` the admin.
async fn agents(engine: Engine) -> Desk {
    let desk = engine.desk().await;
    desk.store
        .save_agent(
            "sam",
            Some("Sam@Example.com"),
            Role::Agent,
            Some("hash-1"),
            &["support".into()],
        )
        .await
        .unwrap();
    desk.store
        .save_agent("root", None, Role::Admin, Some("hash-2"), &[])
        .await
        .unwrap();
    desk
}

async fn agents_belong_to_the_helpdesks_they_are_given(engine: Engine) {
    let desk = agents(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let account = desk.store.agent_account(sam).await.unwrap();
    assert_eq!(account.name, "sam");
    assert_eq!(account.email.as_deref(), Some("sam@example.com"));
    assert_eq!(account.role, Role::Agent);
    assert!(account.active && account.has_password);
    assert_eq!(account.helpdesk_names, ["Support"]);
    assert!(account.sees_helpdesk(desk.helpdesk("Support")));
    assert!(!account.sees_helpdesk(desk.helpdesk("Sales")));

    let root = desk.store.agent_id("root").await.unwrap();
    let admin = desk.store.agent_account(root).await.unwrap();
    assert!(admin.is_admin());
    assert_eq!(
        admin.helpdesks.len(),
        2,
        "an admin belongs to every helpdesk"
    );

    // Sign-in by name or by address, any case of the address.
    assert_eq!(
        desk.store.agent_login("SAM@example.com").await.unwrap(),
        Some((sam, "hash-1".to_string()))
    );
    assert_eq!(desk.store.agent_login("nobody").await.unwrap(), None);
    let names = desk
        .store
        .helpdesk_agent_names(&[desk.helpdesk("Sales")])
        .await
        .unwrap();
    assert_eq!(names, ["root"], "Sales has only the admin");
    let unknown = desk
        .store
        .save_agent("sue", None, Role::Agent, None, &["Nowhere".into()])
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

async fn a_session_is_found_by_its_hash_until_ended_or_expired(engine: Engine) {
    let desk = agents(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    desk.store
        .create_session("live-hash", sam, "csrf-1", 3600)
        .await
        .unwrap();
    let session = desk
        .store
        .signed_in(Proof::Session("live-hash".into()), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.account.id, sam);
    assert_eq!(session.csrf.as_deref(), Some("csrf-1"));
    assert!(session_agent(&desk.store, "other-hash").await.is_none());

    desk.store.end_session("live-hash").await.unwrap();
    assert!(session_agent(&desk.store, "live-hash").await.is_none());

    // A lifetime already over: expired on arrival, whatever the clock does next.
    desk.store
        .create_session("old-hash", sam, "csrf-2", -10)
        .await
        .unwrap();
    assert!(session_agent(&desk.store, "old-hash").await.is_none());

    // A new password ends every session.
    desk.store
        .create_session("again-hash", sam, "csrf-3", 3600)
        .await
        .unwrap();
    desk.store
        .set_agent_password("sam", "hash-new", true)
        .await
        .unwrap();
    assert!(session_agent(&desk.store, "again-hash").await.is_none());
}

async fn an_api_token_works_until_revoked_or_expired(engine: Engine) {
    let desk = agents(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let first = desk
        .store
        .create_api_token("sam", "ci", "token-1", None)
        .await
        .unwrap();
    let second = desk
        .store
        .create_api_token("sam", "script", "token-2", None)
        .await
        .unwrap();
    desk.store
        .create_api_token("sam", "old", "token-3", Some(postdesk_store::now() - 10))
        .await
        .unwrap();
    assert_eq!(token_agent(&desk.store, "token-1").await, Some(sam));
    assert_eq!(token_agent(&desk.store, "token-3").await, None);
    assert_eq!(token_agent(&desk.store, "no-such").await, None);

    let now = postdesk_store::now();
    let tokens = desk.store.api_tokens("sam").await.unwrap();
    let listed: Vec<_> = tokens
        .iter()
        .map(|t| (t.name.as_str(), t.state(now), t.last_used_at.is_some()))
        .collect();
    assert_eq!(
        listed,
        [
            ("old", "expired", false),
            ("script", "live", false),
            ("ci", "live", true),
        ],
        "newest first; using a token records when"
    );

    assert_eq!(
        desk.store
            .revoke_api_tokens("sam", Some(first))
            .await
            .unwrap(),
        1
    );
    assert_eq!(token_agent(&desk.store, "token-1").await, None);
    assert_eq!(token_agent(&desk.store, "token-2").await, Some(sam));
    // All of them (how many it says: see `revoking_all_tokens_counts_the_live_ones`).
    desk.store.revoke_api_tokens("sam", None).await.unwrap();
    assert_eq!(token_agent(&desk.store, "token-2").await, None);
    let gone = desk.store.revoke_api_tokens("root", Some(second)).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
}

async fn a_disabled_agent_has_no_session_and_no_token(engine: Engine) {
    let desk = agents(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    desk.store
        .create_session("s-hash", sam, "csrf", 3600)
        .await
        .unwrap();
    desk.store
        .create_api_token("sam", "ci", "t-hash", None)
        .await
        .unwrap();
    desk.store.set_agent_active("sam", false).await.unwrap();
    assert!(session_agent(&desk.store, "s-hash").await.is_none());
    assert_eq!(token_agent(&desk.store, "t-hash").await, None);
    assert_eq!(desk.store.agent_login("sam").await.unwrap(), None);
    assert!(
        !desk
            .store
            .agent_names()
            .await
            .unwrap()
            .contains(&"sam".into())
    );

    // Enabled again, the token works again; the session ended for good.
    desk.store.set_agent_active("sam", true).await.unwrap();
    assert_eq!(token_agent(&desk.store, "t-hash").await, Some(sam));
    assert!(session_agent(&desk.store, "s-hash").await.is_none());
}

async fn sign_in_attempts_are_limited_and_can_be_cleared(engine: Engine) {
    let desk = agents(engine).await;
    let limits = LoginLimits {
        per_pair: 3,
        ..LoginLimits::default()
    };
    for attempt in 1..=3 {
        let gate = desk
            .store
            .begin_login("sam", "192.0.2.1", limits)
            .await
            .unwrap();
        assert_eq!(gate, LoginGate::Allowed, "attempt {attempt}");
    }
    let refused = desk
        .store
        .begin_login("sam", "192.0.2.1", limits)
        .await
        .unwrap();
    assert!(
        matches!(refused, LoginGate::Refused { wait_secs } if wait_secs > 0 && wait_secs <= limits.window_secs),
        "{refused:?}"
    );
    // Another address may still try that name.
    assert_eq!(
        desk.store
            .begin_login("sam", "198.51.100.7", limits)
            .await
            .unwrap(),
        LoginGate::Allowed
    );
    let locks = desk.store.login_locks(limits).await.unwrap();
    let pair: Vec<_> = locks
        .iter()
        .filter(|l| l.address.as_deref() == Some("192.0.2.1") && l.name.is_some())
        .map(|l| (l.name.as_deref(), l.attempts))
        .collect();
    assert_eq!(pair, [(Some("sam"), 3)]);

    assert!(desk.store.clear_login_locks("sam").await.unwrap() > 0);
    assert!(desk.store.login_locks(limits).await.unwrap().is_empty());
    assert_eq!(
        desk.store
            .begin_login("sam", "192.0.2.1", limits)
            .await
            .unwrap(),
        LoginGate::Allowed
    );
    // A right password ends the pair's count.
    desk.store
        .login_succeeded("sam", "192.0.2.1")
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            desk.store
                .begin_login("sam", "192.0.2.1", limits)
                .await
                .unwrap(),
            LoginGate::Allowed
        );
    }
    assert!(desk.store.login_count_rows().await.unwrap() > 0);
}

/// `revoke_api_tokens` says it "returns how many were live"; `postdesk agents revoke`
/// reports that number to the admin.
async fn revoking_all_tokens_counts_the_live_ones(engine: Engine) {
    let desk = agents(engine).await;
    desk.store
        .create_api_token("sam", "live", "token-live", None)
        .await
        .unwrap();
    desk.store
        .create_api_token("sam", "old", "token-old", Some(postdesk_store::now() - 10))
        .await
        .unwrap();
    assert_eq!(desk.store.revoke_api_tokens("sam", None).await.unwrap(), 1);
    let states: Vec<_> = desk
        .store
        .api_tokens("sam")
        .await
        .unwrap()
        .iter()
        .map(|t| t.state(postdesk_store::now()))
        .collect();
    assert_eq!(
        states,
        ["revoked", "revoked"],
        "every token, the expired one too"
    );
    assert_eq!(desk.store.revoke_api_tokens("sam", None).await.unwrap(), 0);
}

/// What each page's request is signed in by (issue 19: one read instead of three): the
/// token or session, the account with its helpdesks, and the bell's count.
async fn one_read_signs_a_request_in_with_the_agents_account_and_unread_count(engine: Engine) {
    let desk = agents(engine).await;
    let store = &desk.store;
    let sam = store.agent_id("sam").await.unwrap();
    store
        .create_api_token("sam", "ci", "token-1", None)
        .await
        .unwrap();
    store
        .create_session("s-hash", sam, "csrf-1", 3600)
        .await
        .unwrap();
    let ticket = desk
        .import(&crate::mail("Alice <alice@acme.example>", "Printer jams"))
        .await
        .ticket_id
        .unwrap();
    store
        .notify(
            ticket,
            "created",
            "New ticket",
            None,
            Audience::AllAgents,
            30,
        )
        .await
        .unwrap();

    let by_token = store
        .signed_in(Proof::ApiToken("token-1".into()), true)
        .await
        .unwrap()
        .expect("a live token");
    assert_eq!(by_token.account.id, sam);
    assert_eq!(by_token.account.helpdesk_names, ["Support"]);
    assert_eq!(by_token.csrf, None);
    assert_eq!(by_token.unread, Some(1));
    let used = store.api_tokens("sam").await.unwrap()[0].last_used_at;
    assert!(used.is_some(), "a token's use is recorded");
    let again = store
        .signed_in(Proof::ApiToken("token-1".into()), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.unread, None, "the API counts no bell");

    let by_session = store
        .signed_in(Proof::Session("s-hash".into()), true)
        .await
        .unwrap()
        .expect("a live session");
    assert_eq!(by_session.account.name, "sam");
    assert_eq!(by_session.csrf.as_deref(), Some("csrf-1"));
    assert_eq!(by_session.unread, Some(1));

    store.mark_notifications_read(sam, None).await.unwrap();
    let read = store
        .signed_in(Proof::Session("s-hash".into()), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.unread, Some(0));

    for proof in [
        Proof::ApiToken("no-such".into()),
        Proof::Session("no-such".into()),
        // A session's hash is no token, nor the other way round.
        Proof::ApiToken("s-hash".into()),
        Proof::Session("token-1".into()),
    ] {
        let found = store.signed_in(proof.clone(), true).await.unwrap();
        assert!(found.is_none(), "{proof:?}");
    }
    store.revoke_api_tokens("sam", None).await.unwrap();
    let revoked = store
        .signed_in(Proof::ApiToken("token-1".into()), true)
        .await
        .unwrap();
    assert!(revoked.is_none());
}
