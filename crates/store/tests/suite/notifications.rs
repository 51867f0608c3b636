//! Agents' notifications inside the app (issue 17): each audience names exactly its
//! agents (those who see the ticket's helpdesk), never the agent who acted; read
//! marks, the unread count, pruning and watchers.

use postdesk_core::ticket::FieldChanges;
use postdesk_store::StoreError;
use postdesk_store::access::Role;
use postdesk_store::notifications::Audience;

use crate::{Engine, mail};

engine_tests! {
    each_audience_names_exactly_its_agents_and_never_the_actor,
    read_marks_counts_and_pruning,
}

async fn each_audience_names_exactly_its_agents_and_never_the_actor(engine: Engine) {
    let desk = engine.desk().await;
    let store = &desk.store;
    let mut ids = Vec::new();
    for (name, email, role, helpdesk) in [
        ("sam", "sam@example.com", Role::Agent, Some("Support")),
        ("sue", "sue@example.com", Role::Agent, Some("Support")),
        ("sal", "sal@example.com", Role::Agent, Some("Sales")),
        ("root", "root@example.com", Role::Admin, None),
    ] {
        let helpdesks: Vec<String> = helpdesk.into_iter().map(String::from).collect();
        ids.push(
            store
                .save_agent(name, Some(email), role, None, &helpdesks)
                .await
                .unwrap(),
        );
    }
    let [sam, sue, sal, root] = [ids[0], ids[1], ids[2], ids[3]];
    let ticket = desk
        .import(&mail("Alice <alice@acme.example>", "Printer jams"))
        .await
        .ticket_id
        .unwrap();
    // Every agent who sees Support (the admin too), none of Sales.
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
    for (agent, expected) in [(sam, 1), (sue, 1), (sal, 0), (root, 1)] {
        assert_eq!(store.unread_notifications(agent).await.unwrap(), expected);
    }
    let told = list(store, sam).await;
    assert_eq!(told[0].text, "New ticket");
    assert_eq!(told[0].event, "created");
    assert_eq!(told[0].ticket_id, ticket);
    assert_eq!(told[0].ticket_number.get(), 100);
    let count =
        |audience: Audience, actor| store.notify(ticket, "modified", "x", actor, audience, 30);
    assert_eq!(count(Audience::None, None).await.unwrap(), 0);
    assert_eq!(count(Audience::AllAgents, Some(sue)).await.unwrap(), 2); // sam, root
    // A team's addresses: only those who see the helpdesk (not sal of Sales).
    let team = Audience::Addresses(vec!["SAM@example.com".into(), "sal@example.com".into()]);
    assert_eq!(count(team.clone(), None).await.unwrap(), 1);
    assert_eq!(count(team, Some(sam)).await.unwrap(), 0);
    // Concerned: nobody yet; then the assignee, a note's author and a watcher.
    assert_eq!(count(Audience::Concerned, None).await.unwrap(), 0);
    store
        .update_ticket(
            ticket,
            root,
            &FieldChanges {
                assignee: Some(Some("sam".into())),
                ..FieldChanges::default()
            },
        )
        .await
        .unwrap();
    store.add_note(ticket, sue, "Looked at it.").await.unwrap();
    store.watch_ticket(ticket, sal, true).await.unwrap();
    store.watch_ticket(ticket, root, true).await.unwrap();
    store.watch_ticket(ticket, root, true).await.unwrap();
    assert!(store.watches(ticket, root).await.unwrap());
    // sam (assignee), sue (wrote), root (watches); sal watches but cannot see Support.
    assert_eq!(count(Audience::Concerned, None).await.unwrap(), 3);
    assert_eq!(count(Audience::Concerned, Some(sue)).await.unwrap(), 2);
    store.watch_ticket(ticket, root, false).await.unwrap();
    assert!(!store.watches(ticket, root).await.unwrap());
    assert_eq!(count(Audience::Concerned, None).await.unwrap(), 2);
}

async fn read_marks_counts_and_pruning(engine: Engine) {
    let desk = engine.desk().await;
    let store = &desk.store;
    let sam = store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    let sue = store
        .save_agent("sue", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    let one = desk
        .import(&mail("Alice <alice@acme.example>", "One"))
        .await
        .ticket_id
        .unwrap();
    let two = desk
        .import(&mail("Bob <bob@other.example>", "Two"))
        .await
        .ticket_id
        .unwrap();
    for (ticket, text) in [(one, "About One"), (two, "About Two")] {
        store
            .notify(ticket, "created", text, None, Audience::AllAgents, 30)
            .await
            .unwrap();
    }
    assert_eq!(store.unread_notifications(sam).await.unwrap(), 2);
    let sams = list(store, sam).await;
    assert_eq!(sams.len(), 2);
    assert!(sams[0].text.contains("Two"), "newest first: {sams:?}");
    // Sue cannot mark Sam's.
    let e = store.mark_notifications_read(sue, Some(sams[0].id)).await;
    assert!(matches!(e, Err(StoreError::NotFound(_))));
    assert_eq!(
        store
            .mark_notifications_read(sam, Some(sams[0].id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.unread_notifications(sam).await.unwrap(), 1);
    assert_eq!(store.unread_notifications(sue).await.unwrap(), 2);
    assert_eq!(store.mark_notifications_read(sam, None).await.unwrap(), 1);
    assert_eq!(store.unread_notifications(sam).await.unwrap(), 0);
    // Read ones past keep_days go with the next notification; unread ones stay.
    store
        .notify(two, "modified", "later", None, Audience::AllAgents, 0)
        .await
        .unwrap();
    let sams = list(store, sam).await;
    assert_eq!(sams.len(), 1, "{sams:?}");
    assert_eq!((sams[0].text.as_str(), sams[0].read), ("later", false));
    assert_eq!(list(store, sue).await.len(), 3);
}

async fn list(
    store: &postdesk_store::Store,
    agent: postdesk_core::id::AgentId,
) -> Vec<postdesk_store::notifications::Notification> {
    store.notifications(agent, 100).await.unwrap()
}
