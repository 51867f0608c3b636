//! Full-text search and the ticket list at scale (issue 19): planted needles in every
//! script found, phrases, each filter, ranking, another helpdesk's tickets never
//! found, every write path keeping the index in step, hostile mail inert in snippets,
//! keyset pages that return every ticket once, counts per status kept by the counters.

use std::collections::BTreeSet;

use postdesk_core::id::TicketId;
use postdesk_core::search::parse;
use postdesk_core::ticket::FieldChanges;
use postdesk_store::access::Role;
use postdesk_store::contacts::{ContactChange, ContactEdit};
use postdesk_store::desk::{Cursor, PageAt, TicketPage, TicketQuery, TicketSort};
use postdesk_store::outbox::{self, OutgoingEntry};
use postdesk_store::portal::AgentFile;

use crate::{Desk, Engine, counts, mail};

/// A PNG's signature and header start: what the default attachment policy keeps.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03\xfe\xff";

engine_tests! {
    planted_needles_are_found_in_every_script,
    a_phrase_matches_its_words_in_order_only,
    each_filter_narrows_a_search,
    a_match_in_the_title_ranks_above_one_in_the_text,
    a_search_never_finds_a_ticket_of_a_helpdesk_the_agent_may_not_see,
    every_write_path_keeps_the_index_in_step,
    a_ticket_and_its_follow_up_in_one_batch_are_both_found,
    hostile_mail_stays_inert_in_snippets,
    keyset_pages_return_every_ticket_once_in_both_directions,
    counts_per_status_follow_every_change,
    the_migration_builds_the_index_of_tickets_already_there,
    a_huge_mail_is_taken_in_and_searched_up_to_the_bound,
    a_search_by_relevance_pages_and_counts_as_in_any_other_order,
    a_search_with_more_matches_than_it_ranks_says_so,
}

/// A search of `q` by an agent who sees `desk`'s every helpdesk, best match first.
fn search_query(desk: &Desk, q: &str) -> TicketQuery {
    TicketQuery {
        visible: desk.all_helpdesks(),
        search: Some(parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))),
        sort: TicketSort::Relevance,
        page: 1,
        per_page: 50,
        ..TicketQuery::default()
    }
}

async fn search(desk: &Desk, q: &str) -> TicketPage {
    desk.store
        .find_tickets(&search_query(desk, q))
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The ticket ids `q` finds, best first.
async fn found(desk: &Desk, q: &str) -> Vec<TicketId> {
    let page = search(desk, q).await;
    assert_eq!(page.total, page.tickets.len() as i64, "{q}: total");
    page.tickets.iter().map(|t| t.id).collect()
}

/// Six Support tickets with a needle each, and two of noise.
async fn needles(engine: Engine) -> (Desk, Vec<TicketId>) {
    let desk = engine.desk().await;
    let mails = [
        mail("Alice <alice@acme.example>", "Printer jam on floor three")
            .body("The printer says PC LOAD LETTER and stops."),
        mail("Boris <boris@other.example>", "Russian office")
            .body("Принтер не печатает уже второй день."),
        mail("Li <li@other.example>", "China office").body("我的打印机坏了，请帮忙。"),
        mail("Carol <carol@other.example>", "Quarterly numbers")
            .body("See the file.")
            .attach("quarterly-report-2026.png", "image/png", PNG),
        mail("Zed Quux <zed.quux@faraway.example>", "Hello there").body("Just saying hi."),
        mail("Dora <dora@other.example>", "Japanese office").body("プリンターが動きません"),
        mail("Noise <noise@other.example>", "Weekly newsletter")
            .body("Nothing to see.")
            .attach("virus.pdf", "application/pdf", b"%PDF-1.4 x"),
        mail("Noise <noise@other.example>", "Another newsletter").body("Still nothing."),
    ];
    let ids = desk
        .import_all(&mails)
        .await
        .iter()
        .map(|r| r.ticket_id.expect("a ticket"))
        .collect();
    (desk, ids)
}

async fn planted_needles_are_found_in_every_script(engine: Engine) {
    let (desk, ids) = needles(engine).await;
    // Latin, any case, in the text.
    assert_eq!(found(&desk, "LOAD letter").await, [ids[0]]);
    // Cyrillic, lower-cased whatever case was typed.
    assert_eq!(found(&desk, "ПЕЧАТАЕТ").await, [ids[1]]);
    assert_eq!(found(&desk, "принтер").await, [ids[1]]);
    // Chinese: a three-character word, a two-character one, a lone character.
    assert_eq!(found(&desk, "打印机").await, [ids[2]]);
    assert_eq!(found(&desk, "坏了").await, [ids[2]]);
    assert_eq!(found(&desk, "帮").await, [ids[2]]);
    assert_eq!(found(&desk, "打印坏").await, Vec::<TicketId>::new());
    // Japanese katakana.
    assert_eq!(found(&desk, "プリンター").await, [ids[5]]);
    // An attachment's name, whole or in part.
    assert_eq!(found(&desk, "quarterly-report-2026.png").await, [ids[3]]);
    assert_eq!(found(&desk, "report").await, [ids[3]]);
    // An address, whole or its domain, and a name.
    assert_eq!(found(&desk, "zed.quux@faraway.example").await, [ids[4]]);
    assert_eq!(found(&desk, "faraway").await, [ids[4]]);
    assert_eq!(found(&desk, "Quux").await, [ids[4]]);
    // A ticket number, bare or as written in subjects.
    let number = desk
        .store
        .ticket_by_id(ids[3])
        .await
        .unwrap()
        .summary
        .number;
    assert_eq!(found(&desk, &number.to_string()).await, [ids[3]]);
    assert_eq!(found(&desk, &format!("#{number}")).await, [ids[3]]);
    // Every word must occur.
    assert_eq!(
        found(&desk, "printer печатает").await,
        Vec::<TicketId>::new()
    );
    // What users see: the matched words marked in the snippet.
    let page = search(&desk, "打印机").await;
    let snippet = page.snippets[0].as_ref().expect("a snippet");
    assert_eq!(snippet.as_str(), "我的<mark>打印机</mark>坏了，请帮忙。");
    let page = search(&desk, "печатает").await;
    assert!(
        page.snippets[0]
            .as_ref()
            .unwrap()
            .as_str()
            .contains("не <mark>печатает</mark> уже"),
        "{:?}",
        page.snippets
    );
}

async fn a_phrase_matches_its_words_in_order_only(engine: Engine) {
    let desk = engine.desk().await;
    let reports = desk
        .import_all(&[
            mail("a <a@x.example>", "Tray").body("There is a paper jam in tray two."),
            mail("b <b@x.example>", "Other").body("Jam the paper back in, please."),
        ])
        .await;
    let (first, second) = (reports[0].ticket_id.unwrap(), reports[1].ticket_id.unwrap());
    assert_eq!(found(&desk, "\"paper jam\"").await, [first]);
    let both: BTreeSet<_> = found(&desk, "paper jam").await.into_iter().collect();
    assert_eq!(both, BTreeSet::from([first, second]));
    assert_eq!(found(&desk, "\"jam the paper\"").await, [second]);
}

async fn each_filter_narrows_a_search(engine: Engine) {
    let (desk, ids) = needles(engine).await;
    let sales = desk
        .import(&mail("Alice <alice@acme.example>", "Printer quote").to("sales@example.com"))
        .await
        .ticket_id
        .unwrap();
    // from: a requester's address or name; with words, both must hold.
    let alices: BTreeSet<_> = found(&desk, "from:alice@acme.example")
        .await
        .into_iter()
        .collect();
    assert_eq!(alices, BTreeSet::from([ids[0], sales]));
    assert_eq!(
        found(&desk, "printer from:boris").await,
        Vec::<TicketId>::new()
    );
    assert_eq!(found(&desk, "from:\"Zed Quux\"").await, [ids[4]]);
    // A word of the body is not a sender.
    assert_eq!(found(&desk, "from:printer").await, Vec::<TicketId>::new());
    // helpdesk:
    assert_eq!(found(&desk, "printer helpdesk:Sales").await, [sales]);
    assert_eq!(found(&desk, "printer helpdesk:Support").await, [ids[0]]);
    // status:
    let sam = desk.default_agent();
    let close = FieldChanges {
        status: Some(Some("closed".into())),
        ..FieldChanges::default()
    };
    desk.store.update_ticket(ids[0], sam, &close).await.unwrap();
    assert_eq!(found(&desk, "printer status:closed").await, [ids[0]]);
    assert_eq!(found(&desk, "printer status:email-imported").await, [sales]);
    // has:attachment, alone (no words) and with words.
    // (A refused file is no attachment: the newsletter's PDF was not kept.)
    assert_eq!(found(&desk, "has:attachment").await, [ids[3]]);
    assert_eq!(found(&desk, "numbers has:attachment").await, [ids[3]]);
    assert_eq!(
        found(&desk, "printer has:attachment").await,
        Vec::<TicketId>::new()
    );
    // Filters only: counted through the counter rows, and still right.
    let page = search(&desk, "status:closed").await;
    assert_eq!(page.total, 1);
    assert_eq!(page.tickets[0].id, ids[0]);
}

async fn a_match_in_the_title_ranks_above_one_in_the_text(engine: Engine) {
    let desk = engine.desk().await;
    let reports = desk
        .import_all(&[
            mail("a <a@x.example>", "Weekly meeting")
                .body("Agenda: budget, invoice backlog, holidays, parking, coffee machine."),
            mail("b <b@x.example>", "Invoice missing").body("Where is it?"),
            mail("c <c@x.example>", "Lunch").body("Nothing about money."),
        ])
        .await;
    let (body_match, title_match) = (reports[0].ticket_id.unwrap(), reports[1].ticket_id.unwrap());
    assert_eq!(found(&desk, "invoice").await, [title_match, body_match]);
}

async fn a_search_never_finds_a_ticket_of_a_helpdesk_the_agent_may_not_see(engine: Engine) {
    let desk = engine.desk().await;
    let support = desk
        .import(&mail("Ann <ann@x.example>", "Secret merger").body("codeword aardvark"))
        .await
        .ticket_id
        .unwrap();
    let sales = desk
        .import(
            &mail("Ann <ann@x.example>", "Sales aardvark")
                .to("sales@example.com")
                .body("codeword aardvark"),
        )
        .await
        .ticket_id
        .unwrap();
    let sales_agent = |q: &str| TicketQuery {
        visible: vec![desk.helpdesk("Sales")],
        ..search_query(&desk, q)
    };
    for q in [
        "aardvark",
        "merger",
        "from:ann@x.example",
        "aardvark helpdesk:Support",
        "has:attachment helpdesk:Support",
        "status:email-imported",
    ] {
        let page = desk.store.find_tickets(&sales_agent(q)).await.unwrap();
        assert!(
            page.tickets.iter().all(|t| t.id != support),
            "{q} found Support's ticket"
        );
        let seen: i64 = page.status_counts.iter().map(|(_, n)| n).sum();
        assert!(page.total <= 1 && seen <= 1, "{q}: counts {page:?}");
    }
    let page = desk
        .store
        .find_tickets(&sales_agent("aardvark"))
        .await
        .unwrap();
    assert_eq!(
        page.tickets.iter().map(|t| t.id).collect::<Vec<_>>(),
        [sales]
    );
    // An admin sees both.
    assert_eq!(found(&desk, "aardvark").await.len(), 2);
}

async fn every_write_path_keeps_the_index_in_step(engine: Engine) {
    let desk = engine.desk().await;
    let first = mail("Ann <ann@x.example>", "Broken chair").body("It wobbles.");
    let ticket = desk.import(&first).await.ticket_id.unwrap();
    let sam = desk
        .store
        .save_agent("sam", None, Role::Agent, None, &["Support".into()])
        .await
        .unwrap();
    // A customer's follow-up by mail.
    desk.import(
        &mail("Ann <ann@x.example>", "Re: Broken chair")
            .in_reply_to(first.message_id())
            .body("Also the kumquat tree fell over."),
    )
    .await;
    assert_eq!(found(&desk, "kumquat").await, [ticket]);
    // An internal note.
    desk.store
        .add_note(ticket, sam, "Ordered a zebracorn cushion.")
        .await
        .unwrap();
    assert_eq!(found(&desk, "zebracorn").await, [ticket]);
    // An agent's reply.
    desk.store
        .transaction(move |tx| {
            outbox::add_outgoing_entry(
                tx,
                &OutgoingEntry {
                    ticket_id: ticket,
                    agent_id: sam,
                    from: "support@example.com",
                    to: &["ann@x.example".to_string()],
                    cc: &[],
                    subject: "Re: Broken chair",
                    body: "A technician named Xylophonist comes tomorrow.",
                    message_id: "reply-1@support.example.com",
                    in_reply_to: None,
                    references: &[],
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(found(&desk, "xylophonist").await, [ticket]);
    // Files an agent adds on the ticket page.
    desk.store
        .add_agent_files(
            ticket,
            sam,
            vec![AgentFile {
                name: "blueprint-x7.dwg".into(),
                mime_type: "application/octet-stream".into(),
                bytes: b"drawing".to_vec(),
            }],
            false,
            &desk.all_helpdesks(),
        )
        .await
        .unwrap();
    assert_eq!(found(&desk, "blueprint x7").await, [ticket]);
    // The requester renamed and given another address.
    let contact = desk
        .store
        .ticket_by_id(ticket)
        .await
        .unwrap()
        .requester_id
        .unwrap();
    for change in [
        ContactChange::Rename("Ophelia Wobblesworth".into()),
        ContactChange::AddAddress("ophelia@newplace.example".into()),
    ] {
        desk.store
            .edit_contact(&ContactEdit {
                contact_id: contact,
                agent_id: sam,
                change,
                open_tickets: &[],
            })
            .await
            .unwrap();
    }
    assert_eq!(found(&desk, "from:wobblesworth").await, [ticket]);
    assert_eq!(found(&desk, "newplace").await, [ticket]);
    // Events (status changes) are not searched: a word only they hold finds nothing.
    let close = FieldChanges {
        status: Some(Some("closed".into())),
        ..FieldChanges::default()
    };
    desk.store.update_ticket(ticket, sam, &close).await.unwrap();
    assert_eq!(found(&desk, "changed").await, Vec::<TicketId>::new());
}

/// Intake indexes a batch's tickets when the batch commits, once each: a new ticket and
/// a follow-up to it in the same batch are both in its document, and a follow-up to a
/// ticket of an earlier batch is added to what that ticket had.
async fn a_ticket_and_its_follow_up_in_one_batch_are_both_found(engine: Engine) {
    let desk = engine.desk().await;
    let older = mail("Bo <bo@x.example>", "Lamp flickers").body("The quasar lamp flickers.");
    let first = mail("Ann <ann@x.example>", "Broken chair").body("It wobbles like a marimba.");
    let reports = desk
        .import_all(&[
            first.clone(),
            mail("Ann <ann@x.example>", "Re: Broken chair")
                .in_reply_to(first.message_id())
                .body("Also the kumquat tree fell over."),
        ])
        .await;
    let ticket = reports[0].ticket_id.unwrap();
    assert_eq!(
        reports[1].ticket_id,
        Some(ticket),
        "the second mail is a follow-up"
    );
    let lamp = desk.import(&older).await.ticket_id.unwrap();
    desk.import_all(&[mail("Bo <bo@x.example>", "Re: Lamp flickers")
        .in_reply_to(older.message_id())
        .body("Now it hums a tarantella.")])
        .await;
    assert_eq!(found(&desk, "marimba").await, [ticket]);
    assert_eq!(found(&desk, "kumquat").await, [ticket]);
    assert_eq!(found(&desk, "quasar tarantella").await, [lamp]);
}

async fn hostile_mail_stays_inert_in_snippets(engine: Engine) {
    let desk = engine.desk().await;
    desk.import(
        &mail("Eve <eve@x.example>", "Hi")
            .body("<script>alert(1)</script> the needle <img src=x onerror=alert(2)> & \"quotes\""),
    )
    .await;
    let page = search(&desk, "needle").await;
    let snippet = page.snippets[0].as_ref().unwrap().as_str();
    assert_eq!(
        snippet,
        "&lt;script&gt;alert(1)&lt;/script&gt; the <mark>needle</mark> &lt;img src=x onerror=alert(2)&gt; &amp; &quot;quotes&quot;"
    );
    // Operators of either engine are plain words or separators, never syntax.
    for q in [
        "needle OR x",
        "needle*",
        "NEAR(needle)",
        "needle & !x",
        "'needle'",
        "needle:*",
    ] {
        let page = desk
            .store
            .find_tickets(&search_query(&desk, q))
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(page.total <= 1, "{q}");
    }
}

/// Every ticket id, walking `query`'s pages forwards by `next`, then back by `previous`.
async fn walk(desk: &Desk, query: &TicketQuery) -> (Vec<TicketId>, Vec<TicketId>) {
    let mut forwards = Vec::new();
    let mut page = desk.store.find_tickets(query).await.unwrap();
    let mut pages = vec![page.tickets.iter().map(|t| t.id).collect::<Vec<_>>()];
    forwards.extend(page.tickets.iter().map(|t| t.id));
    while let Some(next) = page.next.clone() {
        page = desk
            .store
            .find_tickets(&TicketQuery {
                at: Some(PageAt::After(next)),
                ..query.clone()
            })
            .await
            .unwrap();
        forwards.extend(page.tickets.iter().map(|t| t.id));
        pages.push(page.tickets.iter().map(|t| t.id).collect());
        assert!(pages.len() < 100, "the pages never end");
    }
    let mut backwards = Vec::new();
    let mut previous: Option<Cursor> = page.previous.clone();
    backwards.extend(page.tickets.iter().rev().map(|t| t.id));
    while let Some(cursor) = previous {
        let page = desk
            .store
            .find_tickets(&TicketQuery {
                at: Some(PageAt::Before(cursor)),
                ..query.clone()
            })
            .await
            .unwrap();
        backwards.extend(page.tickets.iter().rev().map(|t| t.id));
        previous = page.previous.clone();
        assert!(
            backwards.len() <= forwards.len(),
            "the pages back never end"
        );
    }
    backwards.reverse();
    (forwards, backwards)
}

async fn keyset_pages_return_every_ticket_once_in_both_directions(engine: Engine) {
    let desk = engine.desk().await;
    // One batch: many tickets share their times, so ties must be broken by id.
    let mails: Vec<_> = (0..23)
        .map(|n| mail(&format!("P{n} <p{n}@x.example>"), &format!("Item {n}")))
        .collect();
    let ids: BTreeSet<TicketId> = desk
        .import_all(&mails)
        .await
        .iter()
        .map(|r| r.ticket_id.unwrap())
        .collect();
    // Some statuses and times differ.
    let sam = desk.default_agent();
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let status = if i % 2 == 0 { "closed" } else { "waiting" };
        let change = FieldChanges {
            status: Some(Some(status.into())),
            ..FieldChanges::default()
        };
        desk.store.update_ticket(*id, sam, &change).await.unwrap();
    }
    for sort in [
        TicketSort::Updated,
        TicketSort::Created,
        TicketSort::Number,
        TicketSort::Newest,
        TicketSort::Status,
        TicketSort::Priority,
    ] {
        for ascending in [false, true] {
            let query = TicketQuery {
                visible: desk.all_helpdesks(),
                sort,
                ascending,
                page: 1,
                per_page: 5,
                ..TicketQuery::default()
            };
            let (forwards, backwards) = walk(&desk, &query).await;
            let label = format!("{sort:?} ascending={ascending}");
            assert_eq!(forwards.len(), ids.len(), "{label}: {forwards:?}");
            assert_eq!(
                forwards.iter().copied().collect::<BTreeSet<_>>(),
                ids,
                "{label}"
            );
            assert_eq!(backwards, forwards, "{label}");
            // The same order as one page of everything.
            let all = desk
                .store
                .find_tickets(&TicketQuery {
                    per_page: 100,
                    ..query.clone()
                })
                .await
                .unwrap();
            let at_once: Vec<_> = all.tickets.iter().map(|t| t.id).collect();
            assert_eq!(forwards, at_once, "{label}");
        }
    }
    // A cursor of another sort is refused with a clear message, not misread.
    let refused = desk
        .store
        .find_tickets(&TicketQuery {
            visible: desk.all_helpdesks(),
            sort: TicketSort::Updated,
            per_page: 5,
            at: Some(PageAt::After(Cursor::parse("3:closed").unwrap())),
            ..TicketQuery::default()
        })
        .await;
    assert!(
        matches!(&refused, Err(postdesk_store::StoreError::Invalid(m)) if m.contains("first page")),
        "{refused:?}"
    );
}

async fn counts_per_status_follow_every_change(engine: Engine) {
    let (desk, ids) = needles(engine).await;
    desk.import(&mail("S <s@x.example>", "Sales one").to("sales@example.com"))
        .await;
    let sam = desk.default_agent();
    let set = |status: &str| FieldChanges {
        status: Some(Some(status.into())),
        ..FieldChanges::default()
    };
    desk.store
        .update_ticket(ids[0], sam, &set("closed"))
        .await
        .unwrap();
    desk.store
        .update_ticket(ids[1], sam, &set("closed"))
        .await
        .unwrap();
    desk.store
        .update_ticket(ids[1], sam, &set("waiting"))
        .await
        .unwrap();
    let all = TicketQuery {
        visible: desk.all_helpdesks(),
        page: 1,
        per_page: 50,
        ..TicketQuery::default()
    };
    let page = desk.store.find_tickets(&all).await.unwrap();
    assert_eq!(
        counts(&page.status_counts),
        [("closed", 1), ("email-imported", 7), ("waiting", 1)].into()
    );
    assert_eq!(page.total, 9);
    // The same numbers as a count over the tickets (a filter the counters do not
    // split by, which matches every ticket here).
    let scanned = desk
        .store
        .find_tickets(&TicketQuery {
            requester: Some("@".into()),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(scanned.status_counts, page.status_counts);
    // Per helpdesk and status.
    let support_closed = desk
        .store
        .find_tickets(&TicketQuery {
            helpdesk: Some("Support".into()),
            status: Some("closed".into()),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(support_closed.total, 1);
    assert_eq!(
        counts(&support_closed.status_counts),
        [("closed", 1), ("email-imported", 6), ("waiting", 1)].into()
    );
    let sales_only = TicketQuery {
        visible: vec![desk.helpdesk("Sales")],
        ..all
    };
    let page = desk.store.find_tickets(&sales_only).await.unwrap();
    assert_eq!(counts(&page.status_counts), [("email-imported", 1)].into());
}

/// A database from before search (its tickets there, no index): migration 0016 writes
/// every ticket's document when the store opens it.
async fn the_migration_builds_the_index_of_tickets_already_there(engine: Engine) {
    let (desk, ids) = needles(engine).await;
    desk.store.close().await;
    let undo = "DROP TABLE ticket_search; DELETE FROM _sqlx_migrations WHERE version = 16;";
    let url = desk.engine.url.clone();
    tokio::task::spawn_blocking(move || match url.strip_prefix("sqlite://") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(undo)
            .unwrap(),
        None => ::postgres::Client::connect(&url, ::postgres::NoTls)
            .unwrap()
            .batch_execute(undo)
            .unwrap(),
    })
    .await
    .unwrap();
    let store = desk.engine.open().await;
    let desk = Desk { store, ..desk };
    assert_eq!(found(&desk, "печатает").await, [ids[1]]);
    assert_eq!(found(&desk, "打印机").await, [ids[2]]);
    assert_eq!(found(&desk, "from:faraway").await, [ids[4]]);
    assert_eq!(found(&desk, "quarterly").await, [ids[3]]);
}

/// 30,000 different long words (over 700 KB, more than a `tsvector` holds unbounded):
/// the mail is a ticket like any other, its text searchable up to the document's bound.
async fn a_huge_mail_is_taken_in_and_searched_up_to_the_bound(engine: Engine) {
    let desk = engine.desk().await;
    let words: Vec<String> = (0..30_000)
        .map(|i| format!("lexeme{i:05}abcdefghijklmno"))
        .collect();
    let report = desk
        .import(&mail("Big <big@x.example>", "Huge log").body(&words.join(" ")))
        .await;
    let ticket = report.ticket_id.expect("a ticket");
    assert_eq!(found(&desk, "lexeme00000abcdefghijklmno").await, [ticket]);
    assert_eq!(found(&desk, "lexeme09000abcdefghijklmno").await, [ticket]);
    assert_eq!(
        found(&desk, "lexeme29999abcdefghijklmno").await,
        Vec::<TicketId>::new()
    );
    assert_eq!(found(&desk, "huge log").await, [ticket]);
}

/// A search by relevance reads its matches once, then counts, filters, ranks and pages
/// them itself (issue 19): the same tickets, total and counts per status as the same
/// search in another order (counted by the database), and pages that add up to the
/// whole list, best match first.
async fn a_search_by_relevance_pages_and_counts_as_in_any_other_order(engine: Engine) {
    let desk = engine.desk().await;
    // "printer" once in the text of each, and in the title of two of them: those rank
    // first; another helpdesk's and a ticket without the word are never found.
    let mut mails = Vec::new();
    for n in 0..7 {
        let subject = if n % 3 == 0 {
            format!("Printer {n}")
        } else {
            format!("Question {n}")
        };
        mails.push(
            mail("Alice <alice@acme.example>", &subject).body(&format!("The printer {n} is down.")),
        );
    }
    mails.push(mail("Bob <bob@other.example>", "Scanner").body("The scanner is down."));
    mails.push(
        mail("Carol <carol@other.example>", "Printer quote")
            .body("A printer for us?")
            .to("sales@example.com"),
    );
    let ids: Vec<TicketId> = desk
        .import_all(&mails)
        .await
        .iter()
        .map(|r| r.ticket_id.unwrap())
        .collect();
    let sam = desk.default_agent();
    for id in [ids[0], ids[2], ids[4]] {
        let change = FieldChanges {
            status: Some(Some("closed".into())),
            ..FieldChanges::default()
        };
        desk.store.update_ticket(id, sam, &change).await.unwrap();
    }
    let support = vec![desk.helpdesk("Support")];
    for status in [None, Some("closed"), Some("email-imported")] {
        let ranked = TicketQuery {
            visible: support.clone(),
            status: status.map(str::to_string),
            per_page: 100,
            ..search_query(&desk, "printer")
        };
        let all = desk.store.find_tickets(&ranked).await.unwrap();
        let label = format!("status {status:?}");
        let mut pages = Vec::new();
        for page in 1..=4 {
            let one = desk
                .store
                .find_tickets(&TicketQuery {
                    page,
                    per_page: 2,
                    ..ranked.clone()
                })
                .await
                .unwrap();
            assert_eq!(one.total, all.total, "{label}: every page's total");
            assert_eq!(one.tickets.len(), one.snippets.len(), "{label}");
            pages.extend(one.tickets.iter().map(|t| t.id));
        }
        let at_once: Vec<TicketId> = all.tickets.iter().map(|t| t.id).collect();
        assert_eq!(pages, at_once, "{label}: pages add up to the list");
        let by_update = desk
            .store
            .find_tickets(&TicketQuery {
                sort: TicketSort::Updated,
                ..ranked.clone()
            })
            .await
            .unwrap();
        assert_eq!(all.total, by_update.total, "{label}: total");
        assert_eq!(all.total, at_once.len() as i64, "{label}: total");
        assert_eq!(
            all.status_counts, by_update.status_counts,
            "{label}: counts"
        );
        assert_eq!(
            at_once.iter().collect::<BTreeSet<_>>(),
            by_update
                .tickets
                .iter()
                .map(|t| &t.id)
                .collect::<BTreeSet<_>>(),
            "{label}: the same tickets"
        );
        // The titles with the word first.
        let titled: Vec<bool> = all
            .tickets
            .iter()
            .map(|t| t.title.starts_with("Printer"))
            .collect();
        let mut sorted = titled.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(titled, sorted, "{label}: {:?}", all.tickets);
    }
    let all = desk
        .store
        .find_tickets(&TicketQuery {
            visible: support,
            ..search_query(&desk, "printer")
        })
        .await
        .unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(
        counts(&all.status_counts),
        [("closed", 3), ("email-imported", 4)].into()
    );
}

/// A word in more tickets than a search ranks (`SEARCH_WINDOW`): the page says that
/// only the newest are counted (the list shows "1000+" and a hint), for an agent whose
/// helpdesk has none of them among the newest too; a rarer word does not.
async fn a_search_with_more_matches_than_it_ranks_says_so(engine: Engine) {
    let desk = engine.desk().await;
    let window = postdesk_store::search::SEARCH_WINDOW as usize;
    // Sales's one ticket is the oldest: outside the window of the newest matches.
    desk.import(
        &mail("Ann <ann@x.example>", "Widget for Sales")
            .to("sales@example.com")
            .body("widget"),
    )
    .await;
    let mails: Vec<_> = (0..window)
        .map(|i| mail("Bo <bo@x.example>", &format!("Widget {i}")).body("widget"))
        .collect();
    desk.import_all(&mails).await;
    desk.import(&mail("Cy <cy@x.example>", "Gadget").body("gadget"))
        .await;

    let page = search(&desk, "widget").await;
    assert!(page.beyond_window, "{} matches", window + 1);
    assert_eq!(page.total, window as i64, "the window is counted");
    assert_eq!(page.tickets.len(), 50);
    let sales_agent = TicketQuery {
        visible: vec![desk.helpdesk("Sales")],
        ..search_query(&desk, "widget")
    };
    let page = desk.store.find_tickets(&sales_agent).await.unwrap();
    assert!(page.beyond_window, "Sales sees none of the window");
    assert!(page.tickets.is_empty());

    let page = search(&desk, "gadget").await;
    assert!(!page.beyond_window);
    assert_eq!(page.total, 1);
}
