//! The ledger seen by the rules simulator: its dry run, on a read-only connection,
//! decides what a real import then does, and writes nothing.

use postdesk_core::id::TicketNumber;
use postdesk_core::thread::Decision;
use postdesk_mail::ParseOptions;
use postdesk_pipeline::{Limits, analyse};
use postdesk_store::{DryRun, Outcome, Simulator};

use crate::{Desk, Engine, Mail, counts, mail};

engine_tests! {
    the_simulators_dry_run_agrees_with_a_real_import,
}

/// What the simulator says importing `mail` would do, as `postdesk rules test` asks.
fn dry_run(desk: &Desk, mail: &Mail) -> DryRun {
    let simulator = Simulator::open(&desk.engine.url)
        .expect("the simulator opens")
        .expect("the database exists");
    let configs: Vec<_> = desk.helpdesks.iter().map(|h| h.config.clone()).collect();
    let helpdesks = simulator.lookup_helpdesks(&configs).unwrap();
    let (incoming, _kept) = analyse(
        mail.raw(),
        &helpdesks,
        None,
        &Limits::default(),
        &ParseOptions::default(),
    );
    simulator.dry_run(&helpdesks, &incoming).unwrap()
}

async fn the_simulators_dry_run_agrees_with_a_real_import(engine: Engine) {
    let desk = engine.desk().await;
    let first = mail("Alice <alice@acme.example>", "Printer on fire");
    let reply = mail("Alice <alice@acme.example>", "Re: Printer on fire")
        .id("reply-1@test.example")
        .in_reply_to(first.message_id());

    let would = dry_run(&desk, &first);
    assert!(
        matches!(would.ruled.decision, Decision::NewTicket { .. }),
        "{would:?}"
    );
    assert_eq!(would.next_number, TicketNumber::new(100));
    assert_eq!(would.already, None);
    assert!(would.ticket.is_none());
    assert!(
        desk.store.outcome_counts().await.unwrap().is_empty(),
        "a dry run writes nothing"
    );

    let created = desk.import(&first).await;
    assert_eq!(created.outcome, Outcome::Created);
    assert_eq!(created.ticket_number, Some(would.next_number));

    let would = dry_run(&desk, &reply);
    match &would.ruled.decision {
        Decision::FollowUp {
            ticket_id,
            set_status,
            ..
        } => {
            assert_eq!(Some(*ticket_id), created.ticket_id);
            assert_eq!(set_status.as_deref(), Some("customer-replied"));
        }
        other => panic!("a follow-up, not {other:?}"),
    }
    let brief = would.ticket.as_ref().unwrap();
    assert_eq!(
        (brief.number, brief.title.as_str(), brief.status.as_str()),
        (TicketNumber::new(100), "Printer on fire", "email-imported")
    );
    assert_eq!(would.next_number, TicketNumber::new(101));
    let appended = desk.import(&reply).await;
    assert_eq!(appended.outcome, Outcome::Appended);
    assert_eq!(appended.ticket_id, created.ticket_id);

    // The same bytes again: the simulator knows, as intake does.
    let would = dry_run(&desk, &first);
    assert_eq!(
        would.already.as_deref(),
        Some("already imported (created, ticket #100)")
    );
    assert_eq!(desk.import(&first).await.outcome, Outcome::Duplicate);
    assert_eq!(
        counts(&desk.store.outcome_counts().await.unwrap()),
        [("appended", 1), ("created", 1)].into()
    );
}
