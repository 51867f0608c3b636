//! Intake: new tickets and their numbers, replies threaded by Message-ID or subject,
//! duplicates, loops, and the failed queue (kept raw, retried in place, dismissed).

use postdesk_core::entry::EntryKind;
use postdesk_core::id::TicketNumber;
use postdesk_core::intake::IntakeOutcome;
use postdesk_pipeline::Limits;
use postdesk_store::read::TicketFilter;
use postdesk_store::{Outcome, StoreError};

use std::sync::mpsc;
use std::time::Duration;

use crate::{Desk, Engine, Mail, counts, mail};

engine_tests! {
    a_new_mail_opens_a_ticket_numbered_from_first_ticket_number,
    a_reply_by_in_reply_to_is_appended_and_moves_the_status,
    a_reply_naming_the_ticket_in_references_only_is_appended,
    a_subject_reference_from_the_requester_is_appended,
    a_subject_reference_from_a_stranger_opens_a_new_ticket_with_a_note,
    mails_of_one_batch_thread_to_each_other,
    batches_into_one_helpdesk_wait_for_each_other_and_others_go_on,
    the_same_bytes_again_are_a_duplicate_and_change_nothing,
    other_bytes_with_a_taken_message_id_are_ignored,
    mail_from_our_own_address_is_ignored,
    a_failed_mail_is_kept_raw_with_its_reason,
    a_failed_mail_retried_in_place_opens_its_ticket,
    a_dismissed_failed_mail_leaves_the_failed_queue,
    a_database_error_fails_only_its_mail_of_the_batch,
}

async fn a_new_mail_opens_a_ticket_numbered_from_first_ticket_number(engine: Engine) {
    let desk = engine.desk().await;
    let reports = desk
        .import_all(&[
            mail("Alice <alice@acme.example>", "Printer on fire").body("Room 4, flames."),
            mail("Bob <bob@other.example>", "Cannot log in"),
            mail("Carol <carol@other.example>", "Quote please").to("sales@example.com"),
        ])
        .await;
    let outcomes: Vec<_> = reports.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Created; 3]);
    let numbers: Vec<_> = reports.iter().map(|r| r.ticket_number).collect();
    // Support counts from its first_ticket_number (100), Sales from the default (1).
    assert_eq!(
        numbers,
        [100, 101, 1].map(|n| Some(TicketNumber::new(n))),
        "{reports:?}"
    );

    let ticket = desk
        .store
        .ticket(Some("Support"), TicketNumber::new(100))
        .await
        .unwrap();
    assert_eq!(ticket.summary.title, "Printer on fire");
    assert_eq!(ticket.summary.status, "email-imported");
    assert_eq!(ticket.summary.priority.as_deref(), Some("normal"));
    assert_eq!(
        ticket.summary.requester.as_deref(),
        Some("alice@acme.example")
    );
    assert_eq!(ticket.summary.organization.as_deref(), Some("ACME"));
    assert_eq!(ticket.requester_name.as_deref(), Some("Alice"));
    assert_eq!(ticket.entries.len(), 1);
    assert_eq!(ticket.entries[0].kind, EntryKind::Incoming);
    assert_eq!(ticket.entries[0].body_text.trim(), "Room 4, flames.");
    assert_eq!(ticket.entries[0].intake_id, Some(reports[0].intake_id));

    // Typed ids: the id and the number reach the same ticket; another helpdesk's
    // number does not.
    let by_id = desk
        .store
        .ticket_by_id(reports[0].ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(by_id.summary.number, TicketNumber::new(100));
    assert_eq!(by_id.summary.helpdesk, "Support");
    let wrong_helpdesk = desk
        .store
        .ticket(Some("Sales"), TicketNumber::new(100))
        .await;
    assert!(
        matches!(wrong_helpdesk, Err(StoreError::NotFound(_))),
        "{wrong_helpdesk:?}"
    );
    let listed = desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    let titles: Vec<_> = listed.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["Quote please", "Cannot log in", "Printer on fire"]);
}

async fn a_reply_by_in_reply_to_is_appended_and_moves_the_status(engine: Engine) {
    let desk = engine.desk().await;
    let first = mail("Alice <alice@acme.example>", "Printer on fire");
    let created = desk.import(&first).await;
    let reply = mail("Alice <alice@acme.example>", "Re: Printer on fire")
        .body("It is out now.\r\n\r\nOn Sunday Support wrote:\r\n> earlier text")
        .in_reply_to(first.message_id());
    let appended = desk.import(&reply).await;
    assert_eq!(appended.outcome, Outcome::Appended);
    assert_eq!(appended.ticket_id, created.ticket_id);
    assert_eq!(appended.ticket_number, Some(TicketNumber::new(100)));

    let ticket = desk
        .store
        .ticket_by_id(created.ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(ticket.summary.status, "customer-replied");
    assert_eq!(ticket.summary.entries, 2);
    assert_eq!(ticket.entries[1].kind, EntryKind::Incoming);
    assert!(
        ticket.entries[1].body_text.starts_with("It is out now."),
        "{:?}",
        ticket.entries[1].body_text
    );
    let page = desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 1, "a reply opens no ticket");
}

async fn a_reply_naming_the_ticket_in_references_only_is_appended(engine: Engine) {
    let desk = engine.desk().await;
    let first = mail("Alice <alice@acme.example>", "Printer on fire");
    let created = desk.import(&first).await;
    let reply = mail("Dave <dave@elsewhere.example>", "Fwd: about the printer")
        .references("unknown-earlier@test.example")
        .references(first.message_id());
    let appended = desk.import(&reply).await;
    assert_eq!(appended.outcome, Outcome::Appended, "{appended:?}");
    assert_eq!(appended.ticket_id, created.ticket_id);
}

async fn a_subject_reference_from_the_requester_is_appended(engine: Engine) {
    let desk = engine.desk().await;
    let created = desk
        .import(&mail("Alice <alice@acme.example>", "Printer on fire"))
        .await;
    let reply = desk
        .import(&mail(
            "Alice <alice@acme.example>",
            "Re: [HD#100] Printer on fire",
        ))
        .await;
    assert_eq!(reply.outcome, Outcome::Appended);
    assert_eq!(reply.ticket_id, created.ticket_id);
}

async fn a_subject_reference_from_a_stranger_opens_a_new_ticket_with_a_note(engine: Engine) {
    let desk = engine.desk().await;
    desk.import(&mail("Alice <alice@acme.example>", "Printer on fire"))
        .await;
    let stranger = desk
        .import(&mail(
            "Mallory <mallory@evil.example>",
            "Re: [HD#100] close it",
        ))
        .await;
    assert_eq!(stranger.outcome, Outcome::Created);
    assert_eq!(stranger.ticket_number, Some(TicketNumber::new(101)));
    let ticket = desk
        .store
        .ticket_by_id(stranger.ticket_id.unwrap())
        .await
        .unwrap();
    let events: Vec<_> = ticket
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Event)
        .map(|e| e.body_text.as_str())
        .collect();
    assert_eq!(
        events,
        [
            "The subject references ticket #100 but mallory@evil.example is not a participant of it, so a new ticket was opened."
        ]
    );
    let original = desk
        .store
        .ticket(None, TicketNumber::new(100))
        .await
        .unwrap();
    assert_eq!(original.summary.entries, 1, "ticket #100 is untouched");
}

/// Starts a batch of `mail` on a writer of its own, on a thread of its own: it is
/// reported on `begun`-then-`done` as it begins its transaction and commits, and on
/// `hold` it waits for a message before it commits.
fn batch_in_thread(
    desk: &Desk,
    mail: Mail,
    hold: Option<mpsc::Receiver<()>>,
    done: mpsc::Sender<&'static str>,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    let store = desk.store.clone();
    let helpdesks = desk.helpdesks.clone();
    tokio::task::spawn_blocking(move || {
        let prepared = crate::prepared(&store, &helpdesks, &mail);
        let mut writer = store.writer().expect("a writer");
        let mut batch = writer
            .begin_batch(&helpdesks, false, &[&prepared], None)
            .expect("the batch begins");
        batch
            .ingest(&helpdesks, &prepared, None)
            .expect("the mail is taken in");
        if let Some(hold) = hold {
            done.send(name).unwrap();
            hold.recv().unwrap();
        }
        batch.commit().expect("the batch commits");
        done.send(name).unwrap();
    })
}

/// On PostgreSQL, intake's batches take a lock per helpdesk: an instance taking in mail
/// for Sales commits while another's batch into Support is open, and a second batch
/// into Support waits for the first (its ticket number and threading depend on it). On
/// SQLite there is one writer at a time: both wait.
async fn batches_into_one_helpdesk_wait_for_each_other_and_others_go_on(engine: Engine) {
    let postgres = engine.url.starts_with("postgres");
    let desk = engine.desk().await;
    let (done, finished) = mpsc::channel();
    let (release, hold) = mpsc::channel();
    let first = batch_in_thread(
        &desk,
        mail("ann@example.org", "Printer on fire"),
        Some(hold),
        done.clone(),
        "support-first",
    );
    assert_eq!(
        finished.recv_timeout(Duration::from_secs(30)),
        Ok("support-first")
    );
    let sales = batch_in_thread(
        &desk,
        mail("bob@example.org", "A quote please").to("sales@example.com"),
        None,
        done.clone(),
        "sales",
    );
    let second = batch_in_thread(
        &desk,
        mail("cy@example.org", "Scanner jammed"),
        None,
        done.clone(),
        "support-second",
    );
    if postgres {
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(30)),
            Ok("sales"),
            "the batch into another helpdesk commits while the first is open"
        );
    }
    assert_eq!(
        finished.recv_timeout(Duration::from_secs(1)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "nothing else commits while the first batch into Support is open"
    );
    release.send(()).unwrap();
    let mut rest: Vec<&str> = (0..if postgres { 2 } else { 3 })
        .map(|_| finished.recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    rest.sort();
    let expected: &[&str] = if postgres {
        &["support-first", "support-second"]
    } else {
        &["sales", "support-first", "support-second"]
    };
    assert_eq!(rest, expected);
    for task in [first, sales, second] {
        task.await.unwrap();
    }
    let tickets = desk
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    let mut numbers: Vec<(String, i64)> = tickets
        .iter()
        .map(|t| (t.title.clone(), t.number.get()))
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        [
            ("A quote please".to_string(), 1),
            ("Printer on fire".to_string(), 100),
            ("Scanner jammed".to_string(), 101),
        ]
    );
}

async fn mails_of_one_batch_thread_to_each_other(engine: Engine) {
    let desk = engine.desk().await;
    let first = mail("Alice <alice@acme.example>", "Printer on fire");
    let reply = mail("Alice <alice@acme.example>", "Re: Printer on fire")
        .id("reply-1@test.example")
        .in_reply_to(first.message_id());
    let reports = desk.import_all(&[first, reply]).await;
    assert_eq!(reports[0].outcome, Outcome::Created);
    assert_eq!(reports[1].outcome, Outcome::Appended);
    assert_eq!(reports[1].ticket_id, reports[0].ticket_id);
    // The contact made by the first mail is the second's author, not a new one.
    let contacts = desk
        .store
        .contacts(&postdesk_store::contacts::Scope::Everything, None, 100)
        .await
        .unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].tickets, 1);
}

async fn the_same_bytes_again_are_a_duplicate_and_change_nothing(engine: Engine) {
    let desk = engine.desk().await;
    let m = mail("Alice <alice@acme.example>", "Printer on fire");
    let first = desk.import(&m).await;
    let again = desk.import(&m).await;
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(again.intake_id, first.intake_id);
    assert_eq!(again.ticket_id, first.ticket_id);
    // The same bytes twice in one batch: the second is a duplicate of the first.
    let both = desk.import_all(&[m.clone(), m]).await;
    assert_eq!(both[0].outcome, Outcome::Duplicate);
    assert_eq!(both[1].outcome, Outcome::Duplicate);

    let ledger = desk.store.outcome_counts().await.unwrap();
    assert_eq!(counts(&ledger), [("created", 1)].into());
    let ticket = desk
        .store
        .ticket_by_id(first.ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(ticket.summary.entries, 1);
}

async fn other_bytes_with_a_taken_message_id_are_ignored(engine: Engine) {
    let desk = engine.desk().await;
    let m = mail("Alice <alice@acme.example>", "Printer on fire");
    let first = desk.import(&m).await;
    let copy = desk.import(&m.clone().body("A different body.")).await;
    assert_eq!(copy.outcome, Outcome::Ignored);
    assert_eq!(copy.ticket_id, first.ticket_id);
    assert_ne!(copy.intake_id, first.intake_id, "a ledger row of its own");
    assert!(copy.reason.is_some());
    let ledger = desk.store.outcome_counts().await.unwrap();
    assert_eq!(counts(&ledger), [("created", 1), ("ignored", 1)].into());
    let ticket = desk
        .store
        .ticket_by_id(first.ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(ticket.summary.entries, 1);
}

async fn mail_from_our_own_address_is_ignored(engine: Engine) {
    let desk = engine.desk().await;
    let report = desk
        .import(&mail("Support <support@example.com>", "Out of office"))
        .await;
    assert_eq!(report.outcome, Outcome::Ignored);
    assert_eq!(report.ticket_id, None);
    let rows = desk
        .store
        .intake_rows(Some(IntakeOutcome::Ignored), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].reason.as_deref(),
        Some("mail from our own address support@example.com")
    );
    assert!(
        desk.store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Limits under which every mail is too large: a deterministic way to fail one.
fn tiny_limits() -> Limits {
    Limits { max_mail_bytes: 10 }
}

async fn a_failed_mail_is_kept_raw_with_its_reason(engine: Engine) {
    let desk = engine.desk().await;
    let raw = mail("Alice <alice@acme.example>", "Printer on fire").raw();
    let bytes = raw.bytes.clone();
    let report = desk
        .ingest(vec![(raw, None)], tiny_limits())
        .await
        .remove(0);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.ticket_id, None);

    let failed = desk
        .store
        .intake_rows(Some(IntakeOutcome::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    let row = &failed[0];
    assert_eq!(row.id, report.intake_id);
    assert_eq!(row.helpdesk.as_deref(), Some("Support"));
    assert_eq!(row.location, "printer-on-fire@test.example.eml");
    let reason = row.reason.as_deref().unwrap();
    assert!(
        reason.contains(&format!(
            "the mail is {} bytes, more than the limit of 10",
            bytes.len()
        )),
        "{reason}"
    );
    assert_eq!(desk.store.raw_mail(row.id).await.unwrap(), bytes);
    assert!(
        desk.store
            .list_tickets(&TicketFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_failed_mail_retried_in_place_opens_its_ticket(engine: Engine) {
    let desk = engine.desk().await;
    let raw = mail("Alice <alice@acme.example>", "Printer on fire").raw();
    let failed = desk
        .ingest(vec![(raw.clone(), None)], tiny_limits())
        .await
        .remove(0);
    assert_eq!(failed.outcome, Outcome::Failed);

    // As `failed retry` does: the kept bytes, processed again, updating their row.
    let kept = desk.store.raw_mail(failed.intake_id).await.unwrap();
    let retry = postdesk_core::RawMail {
        source: postdesk_core::MailSource::Retry,
        bytes: kept,
        ..raw
    };
    let retried = desk
        .ingest(vec![(retry, Some(failed.intake_id))], Limits::default())
        .await
        .remove(0);
    assert_eq!(retried.outcome, Outcome::Created);
    assert_eq!(retried.intake_id, failed.intake_id, "the same ledger row");
    assert_eq!(retried.ticket_number, Some(TicketNumber::new(100)));

    let ledger = desk.store.outcome_counts().await.unwrap();
    assert_eq!(counts(&ledger), [("created", 1)].into());
    let row = desk.store.intake_row(failed.intake_id).await.unwrap();
    assert_eq!(row.outcome, IntakeOutcome::Created);
    assert_eq!(row.ticket_number, Some(TicketNumber::new(100)));
    assert_eq!(row.reason, None);
}

async fn a_dismissed_failed_mail_leaves_the_failed_queue(engine: Engine) {
    let desk = engine.desk().await;
    let raw = mail("Alice <alice@acme.example>", "Printer on fire").raw();
    let failed = desk
        .ingest(vec![(raw, None)], tiny_limits())
        .await
        .remove(0);
    let created = desk
        .import(&mail("Bob <bob@other.example>", "Cannot log in"))
        .await;

    desk.store.dismiss_failed(failed.intake_id).await.unwrap();
    let queue = desk
        .store
        .intake_rows(Some(IntakeOutcome::Failed), 10)
        .await
        .unwrap();
    assert!(queue.is_empty(), "{queue:?}");
    // It stays in the ledger, raw mail and all.
    assert_eq!(
        desk.store
            .intake_row(failed.intake_id)
            .await
            .unwrap()
            .outcome,
        IntakeOutcome::Failed
    );
    assert!(
        !desk
            .store
            .raw_mail(failed.intake_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Only failed mails can be dismissed.
    let not_failed = desk.store.dismiss_failed(created.intake_id).await;
    assert!(
        matches!(not_failed, Err(StoreError::NotFound(_))),
        "{not_failed:?}"
    );
}

/// A mail whose rows the database refuses (here a trigger, as a constraint would) fails
/// alone: the batch is redone with a savepoint per mail, the others get their tickets,
/// numbered without a gap. On PostgreSQL the rows are written behind and the refusal
/// comes only when they are sent (issue 15): inside the mail's savepoint all the same.
async fn a_database_error_fails_only_its_mail_of_the_batch(engine: Engine) {
    let sql = match engine.url.strip_prefix("sqlite://") {
        Some(_) => {
            "CREATE TRIGGER poison BEFORE INSERT ON entries WHEN NEW.subject = 'Poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        }
        None => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.subject = 'Poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
             RETURN NEW; END $$;
             CREATE TRIGGER poison BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    };
    let desk = engine.desk().await;
    let url = desk.engine.url.clone();
    tokio::task::spawn_blocking(move || match url.strip_prefix("sqlite://") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        None => ::postgres::Client::connect(&url, ::postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    })
    .await
    .unwrap();
    let first = mail("Alice <alice@acme.example>", "Printer on fire");
    let reply = mail("Alice <alice@acme.example>", "Re: Printer on fire")
        .id("reply-1@test.example")
        .in_reply_to(first.message_id());
    let reports = desk
        .import_all(&[
            first,
            mail("Dora <dora@new.example>", "Poison"),
            mail("Bob <bob@other.example>", "Cannot log in"),
            reply,
        ])
        .await;
    let outcomes: Vec<_> = reports.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Created,
            Outcome::Failed,
            Outcome::Created,
            Outcome::Appended
        ],
        "{reports:?}"
    );
    let numbers: Vec<_> = reports.iter().map(|r| r.ticket_number).collect();
    assert_eq!(
        numbers,
        [Some(100), None, Some(101), Some(100)].map(|n| n.map(TicketNumber::new))
    );
    assert_eq!(reports[3].ticket_id, reports[0].ticket_id);
    assert!(
        reports[1]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("poisoned"),
        "{reports:?}"
    );
    let ticket = desk
        .store
        .ticket(Some("Support"), TicketNumber::new(101))
        .await
        .unwrap();
    assert_eq!(ticket.summary.title, "Cannot log in");
    let first = desk
        .store
        .ticket(Some("Support"), TicketNumber::new(100))
        .await
        .unwrap();
    assert_eq!(first.summary.entries, 2);
    // Nothing of the refused mail but its ledger row: no contact for its sender.
    let contacts = desk
        .store
        .contacts(&postdesk_store::contacts::Scope::Everything, None, 100)
        .await
        .unwrap();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
}
