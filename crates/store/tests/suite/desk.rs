//! The agents' desk: the ticket list (filters, search, sort, pages, counts, what an
//! agent may see), changes to a ticket recorded as events with their author, notes.

use postdesk_core::entry::EntryKind;
use postdesk_core::id::{TicketId, TicketNumber};
use postdesk_core::ticket::FieldChanges;
use postdesk_store::StoreError;
use postdesk_store::access::Role;
use postdesk_store::desk::{TicketQuery, TicketSort};

use crate::{Desk, Engine, counts, mail};

engine_tests! {
    the_ticket_list_filters_and_counts_per_status,
    the_ticket_list_sorts_and_pages,
    the_ticket_list_finds_words_in_titles_and_texts,
    the_ticket_list_shows_only_the_helpdesks_an_agent_may_see,
    the_ticket_page_is_read_at_once_and_only_for_its_helpdesks_agents,
    an_update_records_each_change_as_an_event_by_its_author,
    an_update_to_an_unknown_assignee_changes_nothing,
    an_update_sets_every_field_of_the_one_field_set,
    a_note_is_internal_and_by_its_agent,
}

/// Category, subcategory, environment, manager and tags change through the same
/// update as status and priority, each recorded; a cleared status is refused.
async fn an_update_sets_every_field_of_the_one_field_set(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let update = FieldChanges {
        category: Some(Some("hardware".into())),
        subcategory: Some(Some("printer".into())),
        environment: Some(Some("office 3".into())),
        manager: Some(Some("sam".into())),
        tags: Some(vec![
            "vip".into(),
            " floor-3 ".into(),
            "VIP".into(),
            "".into(),
        ]),
        ..FieldChanges::default()
    };
    let events = desk
        .store
        .update_ticket(ids[0], sam, &update)
        .await
        .unwrap();
    assert_eq!(
        events,
        [
            "Category changed from none to hardware by sam.",
            "Subcategory changed from none to printer by sam.",
            "Environment changed from none to office 3 by sam.",
            "Manager changed from none to sam by sam.",
            "Tags changed from none to floor-3, vip by sam.",
        ]
    );
    let ticket = desk.store.ticket_by_id(ids[0]).await.unwrap();
    assert_eq!(ticket.details.category.as_deref(), Some("hardware"));
    assert_eq!(ticket.details.subcategory.as_deref(), Some("printer"));
    assert_eq!(ticket.details.environment.as_deref(), Some("office 3"));
    assert_eq!(ticket.details.manager.as_deref(), Some("sam"));
    assert_eq!(ticket.details.tags, ["floor-3", "vip"]);
    // The same again changes nothing and records nothing.
    let again = desk
        .store
        .update_ticket(ids[0], sam, &update)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let untag = FieldChanges {
        tags: Some(Vec::new()),
        ..FieldChanges::default()
    };
    let events = desk.store.update_ticket(ids[0], sam, &untag).await.unwrap();
    assert_eq!(events, ["Tags changed from floor-3, vip to none by sam."]);
    let clear_status = FieldChanges {
        status: Some(None),
        ..FieldChanges::default()
    };
    let refused = desk.store.update_ticket(ids[0], sam, &clear_status).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    let ticket = desk.store.ticket_by_id(ids[0]).await.unwrap();
    assert_eq!(ticket.summary.status, "email-imported");
}

/// Five Support tickets (#100–#104, requesters alternating Alice and Bob) and one of
/// Sales (#1), with the agent `sam` of Support.
async fn five_tickets(engine: Engine) -> (Desk, Vec<TicketId>) {
    let desk = engine.desk().await;
    let mut mails = Vec::new();
    for n in 0..5 {
        let from = if n % 2 == 0 {
            "Alice <alice@acme.example>"
        } else {
            "Bob <bob@other.example>"
        };
        mails.push(mail(from, &format!("Question {n}")).body(&format!("Body number {n}.")));
    }
    mails.push(mail("Carol <carol@other.example>", "Quote").to("sales@example.com"));
    let ids = desk
        .import_all(&mails)
        .await
        .iter()
        .map(|r| r.ticket_id.unwrap())
        .collect();
    desk.store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    (desk, ids)
}

fn query(desk: &Desk) -> TicketQuery {
    TicketQuery {
        visible: desk.all_helpdesks(),
        sort: TicketSort::Number,
        ascending: true,
        page: 1,
        per_page: 50,
        ..TicketQuery::default()
    }
}

fn numbers(page: &postdesk_store::desk::TicketPage) -> Vec<i64> {
    page.tickets.iter().map(|t| t.number.get()).collect()
}

async fn close(desk: &Desk, id: TicketId) {
    let update = FieldChanges {
        status: Some(Some("closed".into())),
        ..FieldChanges::default()
    };
    change(desk, id, &update).await;
}

async fn change(desk: &Desk, id: TicketId, changes: &FieldChanges) {
    desk.store
        .update_ticket(id, desk.default_agent(), changes)
        .await
        .unwrap();
}

async fn the_ticket_list_filters_and_counts_per_status(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    close(&desk, ids[1]).await;
    close(&desk, ids[2]).await;

    let support = TicketQuery {
        helpdesk: Some("Support".into()),
        ..query(&desk)
    };
    let all = desk.store.find_tickets(&support).await.unwrap();
    assert_eq!(numbers(&all), [100, 101, 102, 103, 104]);
    assert_eq!(all.total, 5);
    assert_eq!(
        counts(&all.status_counts),
        [("closed", 2), ("email-imported", 3)].into()
    );

    let closed = TicketQuery {
        status: Some("closed".into()),
        ..support.clone()
    };
    let page = desk.store.find_tickets(&closed).await.unwrap();
    assert_eq!(numbers(&page), [101, 102]);
    assert_eq!(page.total, 2);
    // The counts per status ignore the status filter: they offer the other statuses.
    assert_eq!(
        counts(&page.status_counts),
        [("closed", 2), ("email-imported", 3)].into()
    );

    let bobs = TicketQuery {
        requester: Some("BOB@other".into()),
        ..support.clone()
    };
    assert_eq!(
        numbers(&desk.store.find_tickets(&bobs).await.unwrap()),
        [101, 103]
    );
    let by_name = TicketQuery {
        requester: Some("alic".into()),
        ..support.clone()
    };
    assert_eq!(
        numbers(&desk.store.find_tickets(&by_name).await.unwrap()),
        [100, 102, 104]
    );
    let unassigned = TicketQuery {
        assignee: Some("-".into()),
        ..support.clone()
    };
    assert_eq!(desk.store.find_tickets(&unassigned).await.unwrap().total, 5);

    let to_sam = FieldChanges {
        assignee: Some(Some("sam".into())),
        ..FieldChanges::default()
    };
    for id in [ids[0], ids[3]] {
        change(&desk, id, &to_sam).await;
    }
    let sams = |page| TicketQuery {
        assignee: Some("sam".into()),
        page,
        per_page: 1,
        ..support.clone()
    };
    let first = desk.store.find_tickets(&sams(1)).await.unwrap();
    assert_eq!((numbers(&first), first.total), (vec![100], 2));
    // A page by number past the first (its ids are taken first, see `page_sql`).
    let second = desk.store.find_tickets(&sams(2)).await.unwrap();
    assert_eq!((numbers(&second), second.total), (vec![103], 2));
    let nobody = TicketQuery {
        assignee: Some("nobody".into()),
        ..support
    };
    assert_eq!(desk.store.find_tickets(&nobody).await.unwrap().total, 0);
}

async fn the_ticket_list_sorts_and_pages(engine: Engine) {
    let (desk, _) = five_tickets(engine).await;
    let support = TicketQuery {
        helpdesk: Some("Support".into()),
        per_page: 2,
        ..query(&desk)
    };
    let pages: Vec<Vec<i64>> = {
        let mut pages = Vec::new();
        for page in 1..=4 {
            let q = TicketQuery {
                page,
                ..support.clone()
            };
            let found = desk.store.find_tickets(&q).await.unwrap();
            assert_eq!(found.total, 5, "the total counts every page");
            pages.push(numbers(&found));
        }
        pages
    };
    assert_eq!(pages, [vec![100, 101], vec![102, 103], vec![104], vec![]]);

    let descending = TicketQuery {
        ascending: false,
        per_page: 3,
        ..support
    };
    assert_eq!(
        numbers(&desk.store.find_tickets(&descending).await.unwrap()),
        [104, 103, 102]
    );
    // Newest first across helpdesks: the order they were opened in, reversed.
    let newest = TicketQuery {
        sort: TicketSort::Newest,
        ascending: false,
        ..query(&desk)
    };
    assert_eq!(
        numbers(&desk.store.find_tickets(&newest).await.unwrap()),
        [1, 104, 103, 102, 101, 100]
    );
}

async fn the_ticket_list_finds_words_in_titles_and_texts(engine: Engine) {
    let (desk, _) = five_tickets(engine).await;
    let search = |words: &str| TicketQuery {
        search: Some(postdesk_core::search::parse(words).unwrap()),
        ..query(&desk)
    };
    // In the entry's text only.
    let found = desk.store.find_tickets(&search("number 3")).await.unwrap();
    assert_eq!(numbers(&found), [103]);
    // In the title; every word must occur.
    let found = desk
        .store
        .find_tickets(&search("question body"))
        .await
        .unwrap();
    assert_eq!(found.total, 5);
    let found = desk
        .store
        .find_tickets(&search("question quote"))
        .await
        .unwrap();
    assert_eq!(found.total, 0);
    // LIKE's and the engines' operators are no words: nothing to search for.
    let found = desk.store.find_tickets(&search("% * -")).await.unwrap();
    assert_eq!(found.total, 6);
    assert!(found.snippets.iter().all(Option::is_none));
}

async fn the_ticket_list_shows_only_the_helpdesks_an_agent_may_see(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    let sales_only = TicketQuery {
        visible: vec![desk.helpdesk("Sales")],
        ..query(&desk)
    };
    let page = desk.store.find_tickets(&sales_only).await.unwrap();
    assert_eq!(numbers(&page), [1]);
    assert_eq!(page.total, 1);
    assert_eq!(counts(&page.status_counts), [("email-imported", 1)].into());
    // Naming a helpdesk one may not see finds nothing, rather than its tickets.
    let asking_for_support = TicketQuery {
        helpdesk: Some("Support".into()),
        ..sales_only
    };
    assert_eq!(
        desk.store
            .find_tickets(&asking_for_support)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        desk.store.ticket_helpdesk(ids[0]).await.unwrap(),
        desk.helpdesk("Support")
    );
}

/// Everything the ticket page shows from the database, in one read (issue 19), and
/// nothing for an agent of another helpdesk.
async fn the_ticket_page_is_read_at_once_and_only_for_its_helpdesks_agents(engine: Engine) {
    use postdesk_store::interventions::{self, NewIntervention};
    let (desk, ids) = five_tickets(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let first = ids[0];
    desk.store
        .transaction(move |tx| {
            interventions::add(
                tx,
                &NewIntervention {
                    ticket_id: first,
                    assignee: Some("sam".into()),
                    planned_start: None,
                    planned_end: None,
                    text: "Replace the drum".into(),
                    created_by: sam,
                },
            )
        })
        .await
        .unwrap();
    let support = vec![desk.helpdesk("Support")];
    let page = desk
        .store
        .ticket_page(ids[0], support.clone())
        .await
        .unwrap();
    assert_eq!(page.view.summary.number.get(), 100);
    assert_eq!(page.view.mail_subject, "Question 0");
    assert!(
        page.agents.contains(&"sam".to_string()),
        "{:?}",
        page.agents
    );
    let texts: Vec<&str> = page.interventions.iter().map(|i| i.text.as_str()).collect();
    assert_eq!(texts, ["Replace the drum"]);
    assert_eq!(page.interventions[0].assignee.as_deref(), Some("sam"));
    assert_eq!(page.text.subject, "Question 0");
    assert_eq!(page.text.description.trim(), "Body number 0.");
    assert!(page.deadlines.is_empty(), "no SLA configured");
    // Another ticket has none of the first one's interventions.
    let other = desk.store.ticket_page(ids[1], support).await.unwrap();
    assert!(other.interventions.is_empty());
    assert_eq!(other.text.subject, "Question 1");

    for (id, visible) in [
        (ids[0], vec![desk.helpdesk("Sales")]),
        (TicketId::new(999_999), desk.all_helpdesks()),
    ] {
        let refused = desk.store.ticket_page(id, visible).await;
        assert!(
            matches!(&refused, Err(StoreError::NotFound(_))),
            "{id}: {refused:?}"
        );
    }
}

async fn an_update_records_each_change_as_an_event_by_its_author(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let update = FieldChanges {
        status: Some(Some("pending".into())),
        priority: Some(Some("high".into())),
        ticket_type: Some(Some("incident".into())),
        assignee: Some(Some("sam".into())),
        ..FieldChanges::default()
    };
    let events = desk
        .store
        .update_ticket(ids[0], sam, &update)
        .await
        .unwrap();
    assert_eq!(
        events,
        [
            "Status changed from email-imported to pending by sam.",
            "Priority changed from normal to high by sam.",
            "Type changed from none to incident by sam.",
            "Assignee changed from none to sam by sam.",
        ]
    );
    let ticket = desk.store.ticket_by_id(ids[0]).await.unwrap();
    assert_eq!(ticket.summary.status, "pending");
    assert_eq!(ticket.summary.priority.as_deref(), Some("high"));
    assert_eq!(ticket.summary.assignee.as_deref(), Some("sam"));
    assert_eq!(ticket.details.ticket_type.as_deref(), Some("incident"));
    let recorded: Vec<_> = ticket
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Event)
        .map(|e| {
            (
                e.body_text.as_str(),
                e.author.as_deref(),
                e.visible_to_customer,
            )
        })
        .collect();
    assert_eq!(recorded.len(), 4);
    assert!(
        recorded
            .iter()
            .all(|(_, author, visible)| *author == Some("sam") && !visible),
        "{recorded:?}"
    );

    // The same again changes nothing and records nothing.
    let again = desk
        .store
        .update_ticket(ids[0], sam, &update)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    // Clearing a field records it too.
    let clear = FieldChanges {
        assignee: Some(None),
        ..FieldChanges::default()
    };
    let events = desk.store.update_ticket(ids[0], sam, &clear).await.unwrap();
    assert_eq!(events, ["Assignee changed from sam to none by sam."]);
    let page = desk
        .store
        .find_tickets(&TicketQuery {
            assignee: Some("sam".into()),
            ..query(&desk)
        })
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

async fn an_update_to_an_unknown_assignee_changes_nothing(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    let update = FieldChanges {
        status: Some(Some("pending".into())),
        assignee: Some(Some("nobody".into())),
        ..FieldChanges::default()
    };
    let refused = desk
        .store
        .update_ticket(ids[0], desk.default_agent(), &update)
        .await;
    assert!(
        matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("nobody")),
        "{refused:?}"
    );
    // One transaction: the status change before the refusal is not kept either.
    let ticket = desk.store.ticket_by_id(ids[0]).await.unwrap();
    assert_eq!(ticket.summary.status, "email-imported");
    assert_eq!(ticket.entries.len(), 1);
    let missing = desk
        .store
        .update_ticket(TicketId::new(999_999), desk.default_agent(), &update)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn a_note_is_internal_and_by_its_agent(engine: Engine) {
    let (desk, ids) = five_tickets(engine).await;
    let sam = desk.store.agent_id("sam").await.unwrap();
    let entry = desk
        .store
        .add_note(ids[3], sam, "Called the customer.")
        .await
        .unwrap();
    let ticket = desk
        .store
        .ticket(Some("Support"), TicketNumber::new(103))
        .await
        .unwrap();
    let note = ticket.entries.last().unwrap();
    assert_eq!(note.id, entry);
    assert_eq!(note.kind, EntryKind::Note);
    assert_eq!(note.body_text, "Called the customer.");
    assert_eq!(note.author.as_deref(), Some("sam"));
    assert!(!note.visible_to_customer);
    assert_eq!(ticket.summary.entries, 2);
}
