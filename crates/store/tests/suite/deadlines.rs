//! Deadlines (issue 18): stored per ticket and target, their escalation timers armed,
//! cancelled when the deadline moves and revived when it moves back (never a sent one
//! again), claimed once even by two runners at the same moment, and the ticket list's
//! due filters and sorting.

use postdesk_core::id::TicketId;
use postdesk_core::sla::{Happened, Target, TimerKind};
use postdesk_store::deadlines::{self, DueFilter};
use postdesk_store::desk::{TicketQuery, TicketSort};
use postdesk_store::{StoreError, now};

use crate::{Desk, Engine, SALES, mail};

engine_tests! {
    a_new_tickets_deadlines_are_stored_with_their_timers,
    a_moved_deadline_cancels_its_timers_and_moving_back_revives_them,
    two_runners_at_once_claim_each_due_timer_once,
    a_paused_clock_has_no_timers_and_a_reply_meets_the_response,
    the_list_filters_and_sorts_by_deadline,
}

/// Support with a round-the-clock calendar, so that deadlines are plain sums.
const SUPPORT_SLA: &str = r#"
name = "Support"
addresses = ["support@example.com"]
first_ticket_number = 100
closed_statuses = ["closed"]
[sla]
time_zone = "UTC"
pause_statuses = ["waiting-for-customer"]
[sla.hours]
mon = "00:00-24:00"
tue = "00:00-24:00"
wed = "00:00-24:00"
thu = "00:00-24:00"
fri = "00:00-24:00"
sat = "00:00-24:00"
sun = "00:00-24:00"
[[sla.policy]]
name = "standard"
first_response = "4h"
resolution = "40h"
warn_before = "1h"
escalate_to = ["assignee"]
"#;

const H: i64 = 3600;

async fn desk(engine: Engine) -> Desk {
    engine.desk_with(&[SUPPORT_SLA, SALES]).await
}

/// A new Support ticket whose deadlines were set at `at`.
async fn ticket(desk: &Desk, subject: &str, at: i64) -> TicketId {
    let id = desk
        .import(&mail("Alice <alice@acme.example>", subject))
        .await
        .ticket_id
        .unwrap();
    apply(desk, id, Happened::Created, at).await;
    id
}

async fn apply(desk: &Desk, id: TicketId, happened: Happened, at: i64) {
    let helpdesks = desk.helpdesks.clone();
    desk.store
        .transaction(move |tx| deadlines::apply(tx, &helpdesks, id, happened, at))
        .await
        .unwrap();
}

async fn set_by_hand(desk: &Desk, id: TicketId, target: Target, due_at: i64) -> String {
    let helpdesks = desk.helpdesks.clone();
    let agent = desk.default_agent();
    desk.store
        .transaction(move |tx| deadlines::set_by_hand(tx, &helpdesks, id, agent, target, due_at))
        .await
        .unwrap()
}

/// (kind, due_at, status) of a ticket's timers of `target`.
async fn timers(desk: &Desk, id: TicketId, target: Target) -> Vec<(TimerKind, i64, String)> {
    let mut list: Vec<_> = desk
        .store
        .deadline_timers(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.target == target)
        .map(|t| (t.kind, t.due_at, t.status))
        .collect();
    list.sort_by_key(|(kind, due, status)| (*due, kind.as_str(), status.clone()));
    list
}

async fn a_new_tickets_deadlines_are_stored_with_their_timers(engine: Engine) {
    let desk = desk(engine).await;
    let at = now();
    let id = ticket(&desk, "Printer on fire", at).await;
    let list = desk.store.deadlines(id).await.unwrap();
    let shown: Vec<(Target, i64, &str)> = list
        .iter()
        .map(|d| (d.target, d.due_at - at, d.policy.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (Target::FirstResponse, 4 * H, "standard"),
            (Target::Resolution, 40 * H, "standard"),
        ]
    );
    let all = desk.store.deadline_timers(id).await.unwrap();
    let fire: Vec<(Target, TimerKind, i64, &str)> = all
        .iter()
        .map(|t| (t.target, t.kind, t.fire_at - at, t.status.as_str()))
        .collect();
    assert_eq!(
        fire,
        [
            (Target::FirstResponse, TimerKind::Warning, 3 * H, "pending"),
            (Target::FirstResponse, TimerKind::Breach, 4 * H, "pending"),
            (Target::Resolution, TimerKind::Warning, 39 * H, "pending"),
            (Target::Resolution, TimerKind::Breach, 40 * H, "pending"),
        ]
    );
    // A helpdesk without [sla] has no deadlines.
    let sales = desk
        .import(&mail("Bob <bob@example.org>", "Quote").to("sales@example.com"))
        .await
        .ticket_id
        .unwrap();
    apply(&desk, sales, Happened::Created, at).await;
    assert!(desk.store.deadlines(sales).await.unwrap().is_empty());
}

async fn a_moved_deadline_cancels_its_timers_and_moving_back_revives_them(engine: Engine) {
    let desk = desk(engine).await;
    let at = now();
    let id = ticket(&desk, "Printer on fire", at).await;
    let first = at + 40 * H;
    let event = set_by_hand(&desk, id, Target::Resolution, at + 10 * H).await;
    assert!(
        event.starts_with("Resolution deadline set from "),
        "{event}"
    );
    assert!(event.ends_with(" by postdesk."), "{event}");
    let view = desk.store.ticket_by_id(id).await.unwrap();
    assert!(
        view.entries.iter().any(|e| e.body_text == event),
        "the change is an event on the ticket"
    );
    assert_eq!(
        timers(&desk, id, Target::Resolution).await,
        [
            (TimerKind::Breach, at + 10 * H, "pending".to_string()),
            (TimerKind::Warning, at + 10 * H, "pending".to_string()),
            (TimerKind::Breach, first, "cancelled".to_string()),
            (TimerKind::Warning, first, "cancelled".to_string()),
        ]
    );
    // Back to where it was: the same rows again, pending, not new ones.
    set_by_hand(&desk, id, Target::Resolution, first).await;
    let back = timers(&desk, id, Target::Resolution).await;
    assert_eq!(back.len(), 4, "{back:?}");
    assert_eq!(
        back.iter()
            .filter(|(_, due, s)| *due == first && s == "pending")
            .count(),
        2
    );
    // A timer that was sent is never sent again, however the deadline moves.
    let store = desk.store.clone();
    store
        .transaction(move |tx| {
            for t in deadlines::claim_due(tx, first + 1, 100)? {
                deadlines::finish_timer(tx, t.id, true, None)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    set_by_hand(&desk, id, Target::Resolution, at + 20 * H).await;
    set_by_hand(&desk, id, Target::Resolution, first).await;
    let statuses: Vec<String> = timers(&desk, id, Target::Resolution)
        .await
        .into_iter()
        .filter(|(_, due, _)| *due == first)
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(statuses, ["sent", "sent"]);
}

async fn two_runners_at_once_claim_each_due_timer_once(engine: Engine) {
    let desk = desk(engine).await;
    let at = now();
    let mut tickets = Vec::new();
    for n in 0..3 {
        let id = ticket(&desk, &format!("Printer {n}"), at).await;
        // Due already: warning and breach both fire.
        set_by_hand(&desk, id, Target::FirstResponse, at - 10).await;
        tickets.push(id);
    }
    // Each runner holds its claim a while before it commits, so they overlap.
    let runner = |store: postdesk_store::Store| {
        tokio::spawn(async move {
            store
                .transaction(move |tx| {
                    let claimed = deadlines::claim_due(tx, now(), 100)?;
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    for t in &claimed {
                        deadlines::finish_timer(tx, t.id, true, None)?;
                    }
                    Ok::<_, StoreError>(claimed.iter().map(|t| t.id).collect::<Vec<_>>())
                })
                .await
        })
    };
    let a = runner(desk.store.clone());
    let b = runner(desk.store.clone());
    let mut claimed: Vec<i64> = Vec::new();
    for r in [a.await.unwrap(), b.await.unwrap()] {
        match r {
            Ok(ids) => claimed.extend(ids),
            // SQLite: the second writer may give up waiting; it sent nothing then.
            Err(StoreError::Busy(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "a timer was claimed twice");
    assert_eq!(claimed.len(), 6, "two timers for each of three tickets");
    for id in tickets {
        let sent = timers(&desk, id, Target::FirstResponse)
            .await
            .into_iter()
            .filter(|(_, due, s)| *due == at - 10 && s == "sent")
            .count();
        assert_eq!(sent, 2);
    }
}

async fn a_paused_clock_has_no_timers_and_a_reply_meets_the_response(engine: Engine) {
    let desk = desk(engine).await;
    let at = now();
    let id = ticket(&desk, "Printer on fire", at).await;
    let helpdesks = desk.helpdesks.clone();
    let agent = desk.default_agent();
    desk.store
        .update_ticket(
            id,
            agent,
            &postdesk_core::ticket::FieldChanges {
                status: Some(Some("waiting-for-customer".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    apply(&desk, id, Happened::StatusChanged, at + H).await;
    let list = desk.store.deadlines(id).await.unwrap();
    assert!(list.iter().all(|d| d.paused_since == Some(at + H)));
    assert_eq!(list[0].paused_left, Some(3 * H));
    let pending = desk.store.deadline_timers(id).await.unwrap();
    assert!(
        pending.iter().all(|t| t.status == "cancelled"),
        "{pending:?}"
    );
    // Back to open two hours later: three hours left of the first response.
    desk.store
        .update_ticket(
            id,
            agent,
            &postdesk_core::ticket::FieldChanges {
                status: Some(Some("open".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    apply(&desk, id, Happened::StatusChanged, at + 3 * H).await;
    let list = desk.store.deadlines(id).await.unwrap();
    assert_eq!(list[0].due_at, at + 6 * H);
    // An agent's reply is found by the runner's check and meets it.
    let since = list[0].started_at;
    let store = desk.store.clone();
    let reply = store
        .transaction(move |tx| deadlines::first_reply_since(tx, id, since))
        .await
        .unwrap();
    assert_eq!(reply, None, "no reply yet (a note would not count either)");
    apply(&desk, id, Happened::AgentReply, at + 4 * H).await;
    let _ = helpdesks;
    let list = desk.store.deadlines(id).await.unwrap();
    assert_eq!(list[0].met_at, Some(at + 4 * H));
    let first: Vec<_> = timers(&desk, id, Target::FirstResponse).await;
    assert!(first.iter().all(|(_, _, s)| s == "cancelled"), "{first:?}");
}

async fn the_list_filters_and_sorts_by_deadline(engine: Engine) {
    let desk = desk(engine).await;
    let at = now();
    let late = ticket(&desk, "Late one", at).await;
    set_by_hand(&desk, late, Target::FirstResponse, at - H).await;
    let soon = ticket(&desk, "Soon one", at).await;
    set_by_hand(&desk, soon, Target::FirstResponse, at + 2 * H).await;
    let later = ticket(&desk, "Later one", at).await;
    let none = desk
        .import(&mail("Carol <carol@example.org>", "No deadline").to("sales@example.com"))
        .await
        .ticket_id
        .unwrap();
    let find = |due: Option<DueFilter>, sort: TicketSort| {
        let store = desk.store.clone();
        let visible = desk.all_helpdesks();
        async move {
            let page = store
                .find_tickets(&TicketQuery {
                    visible,
                    due: due.map(|d| (d, now())),
                    sort,
                    ascending: true,
                    page: 1,
                    per_page: 50,
                    ..TicketQuery::default()
                })
                .await
                .unwrap();
            page.tickets.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        find(Some(DueFilter::Overdue), TicketSort::Number).await,
        [late]
    );
    let end_of_day = at + 3 * H;
    assert_eq!(
        find(
            Some(DueFilter::DueBy { until: end_of_day }),
            TicketSort::Number
        )
        .await,
        [soon]
    );
    assert_eq!(
        find(None, TicketSort::Due).await,
        [late, soon, later, none],
        "soonest first, tickets without a deadline last"
    );
    let next = desk.store.next_due(&[late, soon, none]).await.unwrap();
    assert_eq!(next.len(), 2);
    assert_eq!(next[0].1.due_at, at - H);
}
