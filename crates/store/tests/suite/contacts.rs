//! Contacts and organizations: made by intake from senders, scoped to the helpdesks
//! where they requested tickets, and changed by agents with every change recorded.

use postdesk_core::id::ContactId;
use postdesk_store::StoreError;
use postdesk_store::access::Role;
use postdesk_store::contacts::{ContactChange, ContactEdit, Scope};

use crate::{Desk, Engine, mail};

engine_tests! {
    a_new_sender_becomes_a_contact_of_their_organization,
    an_agent_of_another_helpdesk_sees_no_contact_nor_organization,
    an_added_address_is_recorded_and_threads_the_senders_mail,
    an_address_is_neither_taken_from_another_contact_nor_the_last_removed,
    a_rename_is_recorded_with_the_old_and_new_name,
}

/// Alice (ACME) asked Support, Carol asked Sales; `sam` works in Support.
async fn two_requesters(engine: Engine) -> (Desk, ContactId, ContactId) {
    let desk = engine.desk().await;
    let reports = desk
        .import_all(&[
            mail("Alice Smith <Alice@ACME.example>", "Printer on fire"),
            mail("Carol <carol@other.example>", "Quote").to("sales@example.com"),
        ])
        .await;
    let mut requesters = Vec::new();
    for r in &reports {
        let ticket = desk.store.ticket_by_id(r.ticket_id.unwrap()).await.unwrap();
        requesters.push(ticket.requester_id.unwrap());
    }
    desk.store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    (desk, requesters[0], requesters[1])
}

async fn a_new_sender_becomes_a_contact_of_their_organization(engine: Engine) {
    let (desk, alice, _) = two_requesters(engine).await;
    let contact = desk.store.contact(&Scope::Everything, alice).await.unwrap();
    assert_eq!(contact.name, "Alice Smith");
    assert_eq!(contact.addresses, ["alice@acme.example"], "lower-cased");
    assert_eq!(contact.organization.as_deref(), Some("ACME"));
    assert_eq!(contact.tickets, 1);

    let found = desk
        .store
        .contacts(&Scope::Everything, Some("SMITH"), 10)
        .await
        .unwrap();
    assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [alice]);
    let organizations = desk.store.organizations(&Scope::Everything).await.unwrap();
    let listed: Vec<_> = organizations
        .iter()
        .map(|o| (o.name.as_str(), o.contacts, o.tickets))
        .collect();
    assert_eq!(listed, [("ACME", 1, 1)]);
    let (org, members) = desk
        .store
        .organization(&Scope::Everything, contact.organization_id.unwrap())
        .await
        .unwrap();
    assert_eq!(org.name, "ACME");
    assert_eq!(members.iter().map(|c| c.id).collect::<Vec<_>>(), [alice]);
    assert_eq!(
        desk.store.contact_helpdesks(alice).await.unwrap(),
        [desk.helpdesk("Support")]
    );
}

async fn an_agent_of_another_helpdesk_sees_no_contact_nor_organization(engine: Engine) {
    let (desk, alice, carol) = two_requesters(engine).await;
    let sales = Scope::Helpdesks(vec![desk.helpdesk("Sales")]);
    let seen: Vec<_> = desk
        .store
        .contacts(&sales, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(seen, [carol]);
    let hidden = desk.store.contact(&sales, alice).await;
    assert!(matches!(hidden, Err(StoreError::NotFound(_))), "{hidden:?}");
    assert!(
        desk.store
            .contacts(&sales, Some("alice"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(desk.store.organizations(&sales).await.unwrap().is_empty());
    let acme = desk
        .store
        .contact(&Scope::Everything, alice)
        .await
        .unwrap()
        .organization_id
        .unwrap();
    let hidden = desk.store.organization(&sales, acme).await;
    assert!(matches!(hidden, Err(StoreError::NotFound(_))), "{hidden:?}");
    let tickets = desk
        .store
        .tickets_of(Some(alice), None, &[desk.helpdesk("Sales")])
        .await
        .unwrap();
    assert!(tickets.is_empty(), "{tickets:?}");

    // Support's agent sees Alice, with her ticket.
    let support = Scope::Helpdesks(vec![desk.helpdesk("Support")]);
    assert_eq!(
        desk.store.contact(&support, alice).await.unwrap().tickets,
        1
    );
    let tickets = desk
        .store
        .tickets_of(None, Some(acme), &[desk.helpdesk("Support")])
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1);
}

async fn an_added_address_is_recorded_and_threads_the_senders_mail(engine: Engine) {
    let (desk, alice, _) = two_requesters(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let open = desk
        .store
        .tickets_of(Some(alice), None, &desk.all_helpdesks())
        .await
        .unwrap();
    let open_tickets = [open[0].id];
    let changed = desk
        .store
        .edit_contact(&ContactEdit {
            contact_id: alice,
            agent_id: sam,
            change: ContactChange::AddAddress(" Alice@Home.example ".into()),
            open_tickets: &open_tickets,
        })
        .await
        .unwrap();
    assert!(changed);
    let events = desk.store.contact_events(alice).await.unwrap();
    let recorded: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.field.as_str(),
                e.old_value.as_str(),
                e.new_value.as_str(),
                e.agent.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [(
            "addresses",
            "alice@acme.example",
            "alice@acme.example, alice@home.example",
            Some("sam")
        )]
    );
    let ticket = desk.store.ticket_by_id(open_tickets[0]).await.unwrap();
    assert_eq!(
        ticket.entries.last().unwrap().body_text,
        "The requester's addresses changed from alice@acme.example to alice@acme.example, alice@home.example by sam."
    );

    // Adding it again changes nothing and records nothing.
    let again = desk
        .store
        .edit_contact(&ContactEdit {
            contact_id: alice,
            agent_id: sam,
            change: ContactChange::AddAddress("alice@home.example".into()),
            open_tickets: &open_tickets,
        })
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(desk.store.contact_events(alice).await.unwrap().len(), 1);

    // Mail from the new address is Alice's.
    let report = desk
        .import(&mail("A. Smith <alice@home.example>", "Second question"))
        .await;
    let ticket = desk
        .store
        .ticket_by_id(report.ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(ticket.requester_id, Some(alice));
    assert_eq!(
        desk.store
            .contact(&Scope::Everything, alice)
            .await
            .unwrap()
            .tickets,
        2
    );
}

async fn an_address_is_neither_taken_from_another_contact_nor_the_last_removed(engine: Engine) {
    let (desk, alice, _) = two_requesters(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let edit = |change| ContactEdit {
        contact_id: alice,
        agent_id: sam,
        change,
        open_tickets: &[],
    };
    let taken = desk
        .store
        .edit_contact(&edit(ContactChange::AddAddress(
            "carol@other.example".into(),
        )))
        .await;
    assert!(
        matches!(&taken, Err(StoreError::Invalid(m)) if m.contains("already belongs to another contact")),
        "{taken:?}"
    );
    let last = desk
        .store
        .edit_contact(&edit(ContactChange::RemoveAddress(
            "alice@acme.example".into(),
        )))
        .await;
    assert!(matches!(last, Err(StoreError::Invalid(_))), "{last:?}");
    let bad = desk
        .store
        .edit_contact(&edit(ContactChange::AddAddress("not an address".into())))
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    let contact = desk.store.contact(&Scope::Everything, alice).await.unwrap();
    assert_eq!(contact.addresses, ["alice@acme.example"]);
    assert!(desk.store.contact_events(alice).await.unwrap().is_empty());
}

async fn a_rename_is_recorded_with_the_old_and_new_name(engine: Engine) {
    let (desk, alice, _) = two_requesters(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let renamed = desk
        .store
        .edit_contact(&ContactEdit {
            contact_id: alice,
            agent_id: sam,
            change: ContactChange::Rename("  Alice Jones ".into()),
            open_tickets: &[],
        })
        .await
        .unwrap();
    assert!(renamed);
    let contact = desk.store.contact(&Scope::Everything, alice).await.unwrap();
    assert_eq!(contact.name, "Alice Jones");
    let events = desk.store.contact_events(alice).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].field.as_str(),
            events[0].old_value.as_str(),
            events[0].new_value.as_str()
        ),
        ("name", "Alice Smith", "Alice Jones")
    );
}
