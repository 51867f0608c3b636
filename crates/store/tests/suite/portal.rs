//! The customer portal's store side (issue 17): what a signed-in contact may read,
//! limited to their own tickets (and their organization's where it shares them), with
//! only the customer-visible thread; ids guessed for other people's tickets,
//! attachments and mails find nothing; one-time sign-in links, their limits, and
//! portal sessions that are never agents' sessions.

use postdesk_core::id::{AttachmentId, EntryId, HelpdeskId, TicketId};
use postdesk_core::ticket::FieldChanges;
use postdesk_store::StoreError;
use postdesk_store::access::Role;
use postdesk_store::portal::{self, LINK_SECONDS, LinkLimits, NewLink, Viewer};

use crate::{Desk, Engine, mail};

engine_tests! {
    a_contact_sees_only_their_tickets_and_their_organizations_when_it_shares,
    guessed_ticket_attachment_and_entry_ids_of_others_find_nothing,
    only_the_customer_visible_thread_is_shown_and_counted,
    a_sign_in_link_works_once_within_its_time_and_only_at_its_helpdesk,
    link_requests_are_limited_per_address_and_per_client_known_or_not,
    portal_and_agent_sessions_never_stand_in_for_each_other,
    a_contact_closes_only_their_own_tickets,
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03\xfe\xff";

/// Support tickets of Alice (ACME, with a PNG and a refused ZIP), Bob (with a PNG) and
/// Carol (ACME), and a Sales ticket of Alice.
struct Tickets {
    desk: Desk,
    alice: TicketId,
    bob: TicketId,
    carol: TicketId,
    alice_sales: TicketId,
}

async fn tickets(engine: Engine) -> Tickets {
    let desk = engine.desk().await;
    let reports = desk
        .import_all(&[
            mail("Alice <alice@acme.example>", "Printer jams")
                .attach("chart.png", "image/png", PNG)
                .attach("tools.zip", "application/zip", b"PK\x03\x04zip"),
            mail("Bob <bob@other.example>", "Bob's screen").attach("bob.png", "image/png", PNG),
            mail("Carol <carol@acme.example>", "Carol's laptop"),
            mail("Alice <alice@acme.example>", "A quote").to("sales@example.com"),
        ])
        .await;
    let id = |i: usize| reports[i].ticket_id.expect("a ticket");
    Tickets {
        alice: id(0),
        bob: id(1),
        carol: id(2),
        alice_sales: id(3),
        desk,
    }
}

impl Tickets {
    fn support(&self) -> HelpdeskId {
        self.desk.helpdesk("Support")
    }

    /// The contact with this address, as the portal sees them (Support's portal only).
    async fn viewer(&self, address: &str) -> Viewer {
        let address = address.to_string();
        let contact = self
            .desk
            .store
            .transaction(move |tx| portal::contact_for_address(tx, &address))
            .await
            .unwrap()
            .expect("a contact")
            .0;
        self.desk
            .store
            .portal_viewer(contact, vec![self.support()])
            .await
            .unwrap()
    }

    async fn ids(&self, viewer: &Viewer) -> Vec<TicketId> {
        let mut ids: Vec<TicketId> = self
            .desk
            .store
            .portal_tickets(viewer)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        ids.sort();
        ids
    }
}

async fn a_contact_sees_only_their_tickets_and_their_organizations_when_it_shares(engine: Engine) {
    let t = tickets(engine).await;
    let alice = t.viewer("ALICE@acme.example").await;
    // Not Carol's (ACME does not share yet), not Bob's, not Sales' (no portal there).
    assert_eq!(t.ids(&alice).await, [t.alice]);
    for other in [t.bob, t.carol, t.alice_sales] {
        let e = t.desk.store.portal_ticket(&alice, other).await.unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    }
    t.desk.store.set_share_tickets("acme", true).await.unwrap();
    let alice = t.viewer("alice@acme.example").await;
    assert_eq!(t.ids(&alice).await, [t.alice, t.carol]);
    let carols = t.desk.store.portal_ticket(&alice, t.carol).await.unwrap();
    assert_eq!(carols.ticket.requester, "Carol");
    // Bob has no organization: still only his own.
    let bob = t.viewer("bob@other.example").await;
    assert_eq!(t.ids(&bob).await, [t.bob]);
    assert!(t.desk.store.portal_ticket(&bob, t.carol).await.is_err());
    let e = t.desk.store.set_share_tickets("Nobody Inc", true).await;
    assert!(matches!(e, Err(StoreError::NotFound(_))));
    t.desk.store.set_share_tickets("ACME", false).await.unwrap();
    let alice = t.viewer("alice@acme.example").await;
    assert_eq!(t.ids(&alice).await, [t.alice]);
}

async fn guessed_ticket_attachment_and_entry_ids_of_others_find_nothing(engine: Engine) {
    let t = tickets(engine).await;
    let (alice, bob) = (
        t.viewer("alice@acme.example").await,
        t.viewer("bob@other.example").await,
    );
    let store = &t.desk.store;
    let own = store.portal_ticket(&alice, t.alice).await.unwrap();
    let own_png = own.entries[0].attachments[0].id;
    let own_entry = own.entries[0].id;
    let bobs = store.portal_ticket(&bob, t.bob).await.unwrap();
    let bob_png = bobs.entries[0].attachments[0].id;
    let bob_entry = bobs.entries[0].id;
    assert!(
        store
            .portal_attachment(&bob, bob_png)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .portal_raw_mail(&bob, bob_entry)
            .await
            .unwrap()
            .is_some()
    );
    // Every id there is, as Alice: only her own ticket, file and mail answer.
    let mut found_tickets = Vec::new();
    let mut found_files = Vec::new();
    let mut found_mails = Vec::new();
    for n in 1..=40 {
        if store.portal_ticket(&alice, TicketId::new(n)).await.is_ok() {
            found_tickets.push(TicketId::new(n));
        }
        if let Some((file, _)) = store
            .portal_attachment(&alice, AttachmentId::new(n))
            .await
            .unwrap()
        {
            found_files.push((AttachmentId::new(n), file.safe_name));
        }
        if store
            .portal_raw_mail(&alice, EntryId::new(n))
            .await
            .unwrap()
            .is_some()
        {
            found_mails.push(EntryId::new(n));
        }
    }
    assert_eq!(found_tickets, [t.alice]);
    assert_eq!(found_files, [(own_png, "chart.png".to_string())]);
    // Her mail has a refused file in it, so not even her own raw mail is offered.
    assert_eq!(found_mails, Vec::<EntryId>::new());
    assert!(!own.entries[0].has_raw);
    assert!(bobs.entries[0].has_raw);
    assert!(
        store
            .portal_raw_mail(&alice, own_entry)
            .await
            .unwrap()
            .is_none()
    );
}

async fn only_the_customer_visible_thread_is_shown_and_counted(engine: Engine) {
    let t = tickets(engine).await;
    let store = &t.desk.store;
    store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    let sam = store.agent_id("sam").await.unwrap();
    store
        .add_note(t.alice, sam, "Internal: she is a VIP.")
        .await
        .unwrap();
    store
        .update_ticket(
            t.alice,
            sam,
            &FieldChanges {
                priority: Some(Some("high".into())),
                ..FieldChanges::default()
            },
        )
        .await
        .unwrap();
    let alice = t.viewer("alice@acme.example").await;
    let view = store.portal_ticket(&alice, t.alice).await.unwrap();
    assert_eq!(view.entries.len(), 1, "{:?}", view.entries);
    assert_eq!(view.ticket.entries, 1);
    let listed = store.portal_tickets(&alice).await.unwrap();
    assert_eq!(listed[0].entries, 1);
    let names: Vec<&str> = view.entries[0]
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    // The refused ZIP is not listed.
    assert_eq!(names, ["chart.png"]);
    let png = view.entries[0].attachments[0].id;
    // An agent makes the file internal: gone from the page and the download.
    let support = vec![t.support()];
    store
        .set_attachment_visibility(png, false, sam, &support)
        .await
        .unwrap();
    let view = store.portal_ticket(&alice, t.alice).await.unwrap();
    assert!(view.entries[0].attachments.is_empty());
    assert!(
        store
            .portal_attachment(&alice, png)
            .await
            .unwrap()
            .is_none()
    );
    // The switch is an internal event by sam.
    let agent_view = store.ticket_by_id(t.alice).await.unwrap();
    let last = agent_view.entries.last().unwrap();
    assert_eq!(last.body_text, "Attachment chart.png made internal by sam.");
    assert!(!last.visible_to_customer);
    assert_eq!(
        store
            .portal_ticket(&alice, t.alice)
            .await
            .unwrap()
            .ticket
            .entries,
        1
    );
    // Only agents of the ticket's helpdesk may switch it.
    let sales = vec![t.desk.helpdesk("Sales")];
    let e = store
        .set_attachment_visibility(png, true, sam, &sales)
        .await;
    assert!(matches!(e, Err(StoreError::NotFound(_))));
    store
        .set_attachment_visibility(png, true, sam, &support)
        .await
        .unwrap();
    assert!(
        store
            .portal_attachment(&alice, png)
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_sign_in_link_works_once_within_its_time_and_only_at_its_helpdesk(engine: Engine) {
    let t = tickets(engine).await;
    let (support, sales) = (t.support(), t.desk.helpdesk("Sales"));
    let store = &t.desk.store;
    let keep = |hash: &'static str, lifetime_secs: i64| {
        let store = store.clone();
        async move {
            store
                .transaction(move |tx| {
                    let (contact, _) =
                        portal::contact_for_address(tx, "alice@acme.example")?.expect("Alice");
                    portal::insert_link(
                        tx,
                        &NewLink {
                            token_hash: hash,
                            contact_id: contact,
                            helpdesk_id: support,
                            address: "Alice@ACME.example",
                            lifetime_secs,
                        },
                    )
                })
                .await
                .unwrap()
        }
    };
    keep("good", LINK_SECONDS).await;
    keep("expired", -1).await;
    // A link of Support's portal, presented at Sales': refused, and still unused.
    let redeem = |hash: &'static str, at: HelpdeskId, session: &'static str| {
        store.redeem_portal_link(hash, at, session, "csrf", 3600)
    };
    assert!(redeem("good", sales, "s0").await.unwrap().is_none());
    let session = redeem("good", support, "s1")
        .await
        .unwrap()
        .expect("a session");
    assert_eq!(session.address, "alice@acme.example");
    assert_eq!(session.csrf, "csrf");
    let live = store.portal_session("s1").await.unwrap().expect("live");
    assert_eq!(live.contact_id, session.contact_id);
    // Used once: never again; expired and unknown links never.
    assert!(redeem("good", support, "s2").await.unwrap().is_none());
    assert!(redeem("expired", support, "s3").await.unwrap().is_none());
    assert!(redeem("tampered", support, "s4").await.unwrap().is_none());
    for refused in ["s0", "s2", "s3", "s4"] {
        assert!(store.portal_session(refused).await.unwrap().is_none());
    }
    store.end_portal_session("s1").await.unwrap();
    assert!(store.portal_session("s1").await.unwrap().is_none());
}

async fn link_requests_are_limited_per_address_and_per_client_known_or_not(engine: Engine) {
    let t = tickets(engine).await;
    let limits = LinkLimits {
        per_address: 2,
        per_client: 4,
        ..LinkLimits::default()
    };
    let ask = |address: &'static str, client: &'static str| {
        t.desk
            .store
            .transaction(move |tx| portal::count_link_request(tx, address, client, &limits))
    };
    // A customer's address and a stranger's are limited alike, whatever their case.
    for address in ["alice@acme.example", "nobody@nowhere.example"] {
        assert_eq!(ask(address, "10.0.0.1").await.unwrap(), None);
        assert_eq!(ask(address, "10.0.0.2").await.unwrap(), None);
        let wait = ask(address, "10.0.0.3").await.unwrap();
        assert!(wait.is_some_and(|w| w > 0 && w <= 15 * 60), "{wait:?}");
    }
    assert!(
        ask("ALICE@acme.example", "10.0.0.9")
            .await
            .unwrap()
            .is_some()
    );
    // One client, four different addresses, then refused for any address.
    for address in ["a@x.example", "b@x.example", "c@x.example", "d@x.example"] {
        assert_eq!(ask(address, "192.0.2.7").await.unwrap(), None, "{address}");
    }
    assert!(ask("e@x.example", "192.0.2.7").await.unwrap().is_some());
    assert_eq!(ask("e@x.example", "192.0.2.8").await.unwrap(), None);
}

async fn portal_and_agent_sessions_never_stand_in_for_each_other(engine: Engine) {
    let t = tickets(engine).await;
    let store = &t.desk.store;
    let sam = store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    store
        .create_session("agent-hash", sam, "c1", 3600)
        .await
        .unwrap();
    let alice = t.viewer("alice@acme.example").await;
    store
        .create_portal_session(
            "portal-hash",
            alice.contact_id,
            "alice@acme.example",
            "c2",
            3600,
        )
        .await
        .unwrap();
    assert!(crate::session_agent(store, "agent-hash").await.is_some());
    assert!(store.portal_session("portal-hash").await.unwrap().is_some());
    assert!(crate::session_agent(store, "portal-hash").await.is_none());
    assert!(store.portal_session("agent-hash").await.unwrap().is_none());
    // A new portal password ends the contact's other portal sessions only.
    store
        .create_portal_session(
            "portal-2",
            alice.contact_id,
            "alice@acme.example",
            "c3",
            3600,
        )
        .await
        .unwrap();
    store
        .set_portal_password(alice.contact_id, Some("$argon2id$fake"), "portal-2")
        .await
        .unwrap();
    assert!(store.portal_session("portal-hash").await.unwrap().is_none());
    assert!(store.portal_session("portal-2").await.unwrap().is_some());
    assert!(crate::session_agent(store, "agent-hash").await.is_some());
    let (id, hash) = store
        .portal_password("ALICE@acme.example")
        .await
        .unwrap()
        .expect("a password");
    assert_eq!((id, hash.as_str()), (alice.contact_id, "$argon2id$fake"));
    assert!(
        store
            .portal_password("bob@other.example")
            .await
            .unwrap()
            .is_none()
    );
    let account = store.portal_account(alice.contact_id).await.unwrap();
    assert!(account.has_password);
    assert_eq!(account.organization.as_deref(), Some("ACME"));
}

async fn a_contact_closes_only_their_own_tickets(engine: Engine) {
    let t = tickets(engine).await;
    let store = &t.desk.store;
    let agent = t.desk.default_agent();
    let alice = t.viewer("alice@acme.example").await;
    let e = store
        .close_portal_ticket(&alice, t.bob, "closed", "alice@acme.example", agent)
        .await;
    assert!(matches!(e, Err(StoreError::NotFound(_))));
    assert_ne!(
        store.ticket_by_id(t.bob).await.unwrap().summary.status,
        "closed"
    );
    store
        .close_portal_ticket(&alice, t.alice, "closed", "alice@acme.example", agent)
        .await
        .unwrap();
    let view = store.ticket_by_id(t.alice).await.unwrap();
    assert_eq!(view.summary.status, "closed");
    assert_eq!(
        view.entries.last().unwrap().body_text,
        "Status changed from email-imported to closed by the customer alice@acme.example in the portal."
    );
}
