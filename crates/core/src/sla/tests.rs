//! The deadline decisions: policies chosen, deadlines set on creation and follow-ups
//! (with `recalculate_deadline` on and off), met by replies and not by notes, paused
//! and resumed without losing time, set by hand, and the timers they need.

use super::*;

const H: i64 = 3600;

/// Monday 2026-11-16 09:00 UTC.
const MONDAY: i64 = 1_794_819_600;

fn sla(extra: &str) -> Sla {
    let toml_like = format!(
        r#"{{"time_zone": "UTC", "pause_statuses": ["waiting-for-customer"], {extra}
            "policy": [
              {{"name": "urgent", "priority": "urgent", "first_response": "1h", "resolution": "4h",
                "warn_before": "15m", "escalate_to": ["assignee", "team:leads"]}},
              {{"name": "acme", "organization": "ACME", "first_response": "2h", "next_response": "3h"}},
              {{"name": "default", "first_response": "4h", "next_response": "8h", "resolution": "40h",
                "warn_before": "1h"}}
            ]}}"#
    );
    let settings: SlaSettings = serde_json::from_str(&toml_like).unwrap();
    settings.compile().unwrap()
}

fn facts(status: &str) -> TicketFacts<'_> {
    TicketFacts {
        status,
        priority: Some("normal"),
        ticket_type: None,
        organization: None,
        closed: status == "closed",
    }
}

fn get(list: &[Deadline], target: Target) -> &Deadline {
    list.iter().find(|d| d.target == target).unwrap()
}

#[test]
fn the_monday_constant_is_a_monday_at_nine() {
    let date = sla("").calendar.date_of(MONDAY).unwrap();
    assert_eq!(date.to_string(), "2026-11-16");
    assert!(sla("").calendar.is_working(MONDAY));
    assert!(!sla("").calendar.is_working(MONDAY - 1));
}

#[test]
fn the_first_matching_policy_applies() {
    let sla = sla("");
    let urgent = TicketFacts {
        priority: Some("Urgent"),
        organization: Some("ACME"),
        ..facts("open")
    };
    assert_eq!(sla.policy_for(&urgent).unwrap().name, "urgent");
    let acme = TicketFacts {
        organization: Some("acme"),
        ..facts("open")
    };
    assert_eq!(sla.policy_for(&acme).unwrap().name, "acme");
    assert_eq!(sla.policy_for(&facts("open")).unwrap().name, "default");
    let only_narrow = Sla {
        policies: sla.policies[..1].to_vec(),
        ..sla.clone()
    };
    assert!(only_narrow.policy_for(&facts("open")).is_none());
    assert!(
        only_narrow
            .plan(&facts("open"), &[], Happened::Created, MONDAY)
            .is_empty()
    );
}

#[test]
fn creation_sets_first_response_and_resolution_in_business_time() {
    let sla = sla("");
    // Monday 15:00 + 4 h of a 9–17 day → Tuesday 11:00.
    let at = MONDAY + 6 * H;
    let list = sla.plan(&facts("new"), &[], Happened::Created, at);
    assert_eq!(list.len(), 2);
    let first = get(&list, Target::FirstResponse);
    assert_eq!(first.due_at, MONDAY + 24 * H + 2 * H);
    assert_eq!(first.policy, "default");
    assert_eq!(first.standing(at), Standing::Running);
    // 40 h: five working days → the next Monday 15:00.
    assert_eq!(get(&list, Target::Resolution).due_at, at + 7 * 24 * H);
}

#[test]
fn an_agent_reply_meets_the_response_targets_and_a_late_one_misses() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let replied = sla.plan(&facts("open"), &list, Happened::AgentReply, MONDAY + H);
    let first = get(&replied, Target::FirstResponse);
    assert_eq!(first.met_at, Some(MONDAY + H));
    assert_eq!(first.standing(MONDAY + 10 * H), Standing::Met);
    assert!(get(&replied, Target::Resolution).is_open());
    assert!(sla.timers(first).is_empty());
    // Past its deadline: missed.
    let late = sla.plan(&facts("open"), &list, Happened::AgentReply, MONDAY + 30 * H);
    assert_eq!(
        get(&late, Target::FirstResponse).standing(MONDAY + 30 * H),
        Standing::Missed
    );
    // No reply yet and past due: overdue.
    assert_eq!(
        get(&list, Target::FirstResponse).standing(MONDAY + 30 * H),
        Standing::Overdue
    );
}

#[test]
fn a_follow_up_starts_the_next_response_only_after_the_first() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let early = sla.plan(&facts("open"), &list, Happened::CustomerEntry, MONDAY + H);
    assert!(early.iter().all(|d| d.target != Target::NextResponse));
    let replied = sla.plan(&facts("open"), &list, Happened::AgentReply, MONDAY + H);
    let follow = sla.plan(
        &facts("open"),
        &replied,
        Happened::CustomerEntry,
        MONDAY + 2 * H,
    );
    let next = get(&follow, Target::NextResponse);
    // 11:00 + 8 h → Tuesday 11:00.
    assert_eq!(next.due_at, MONDAY + 26 * H);
    let answered = sla.plan(
        &facts("open"),
        &follow,
        Happened::AgentReply,
        MONDAY + 3 * H,
    );
    assert_eq!(
        get(&answered, Target::NextResponse).met_at,
        Some(MONDAY + 3 * H)
    );
}

#[test]
fn recalculation_on_follow_up_follows_the_setting() {
    for recalculate in [false, true] {
        let sla = sla(&format!("\"recalculate_deadline\": {recalculate},"));
        let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
        let list = sla.plan(&facts("open"), &list, Happened::AgentReply, MONDAY + H);
        let list = sla.plan(
            &facts("open"),
            &list,
            Happened::CustomerEntry,
            MONDAY + 2 * H,
        );
        let again = sla.plan(
            &facts("open"),
            &list,
            Happened::CustomerEntry,
            MONDAY + 5 * H,
        );
        let (next, resolution) = (
            get(&again, Target::NextResponse),
            get(&again, Target::Resolution),
        );
        if recalculate {
            // Counted again from the second follow-up (14:00 + 8 h → Tuesday 14:00).
            assert_eq!(next.due_at, MONDAY + 29 * H);
            assert_eq!(resolution.started_at, MONDAY + 5 * H);
            assert_eq!(resolution.due_at, MONDAY + 5 * H + 7 * 24 * H);
        } else {
            // The deadlines stand: 40 h from Monday 09:00 is Friday 17:00.
            assert_eq!(next.due_at, MONDAY + 26 * H);
            assert_eq!(resolution.due_at, MONDAY + 4 * 24 * H + 8 * H);
        }
    }
}

#[test]
fn a_pausing_status_stops_the_clock_and_resuming_keeps_what_was_left() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    // Paused at 10:00 with 3 h of the first response left.
    let paused = sla.plan(
        &facts("waiting-for-customer"),
        &list,
        Happened::StatusChanged,
        MONDAY + H,
    );
    let first = get(&paused, Target::FirstResponse);
    assert_eq!(first.paused_left, Some(3 * H));
    assert_eq!(first.standing(MONDAY + 100 * H), Standing::Paused);
    assert!(sla.timers(first).is_empty());
    // Resumed on Wednesday 16:00: 1 h that day, 2 h on Thursday → Thursday 11:00.
    let resumed_at = MONDAY + 2 * 24 * H + 7 * H;
    let resumed = sla.plan(&facts("open"), &paused, Happened::StatusChanged, resumed_at);
    let first = get(&resumed, Target::FirstResponse);
    assert_eq!(first.due_at, MONDAY + 3 * 24 * H + 2 * H);
    assert_eq!(first.paused_since, None);
    let cal = &sla.calendar;
    assert_eq!(
        cal.between(MONDAY, MONDAY + H) + cal.between(resumed_at, first.due_at),
        4 * H
    );
    // A change of status that neither pauses nor resumes moves nothing.
    assert_eq!(
        sla.plan(
            &facts("pending"),
            &resumed,
            Happened::StatusChanged,
            resumed_at + H
        ),
        resumed
    );
}

#[test]
fn a_deadline_past_when_paused_stays_past() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let late = MONDAY + 30 * H;
    let paused = sla.plan(
        &facts("waiting-for-customer"),
        &list,
        Happened::StatusChanged,
        late,
    );
    assert_eq!(get(&paused, Target::FirstResponse).paused_left, Some(0));
    let resumed = sla.plan(
        &facts("open"),
        &paused,
        Happened::StatusChanged,
        late + 48 * H,
    );
    assert_eq!(
        get(&resumed, Target::FirstResponse).due_at,
        get(&list, Target::FirstResponse).due_at
    );
}

#[test]
fn a_ticket_created_in_a_pausing_status_starts_paused() {
    let sla = sla("");
    let list = sla.plan(
        &facts("waiting-for-customer"),
        &[],
        Happened::Created,
        MONDAY,
    );
    assert_eq!(get(&list, Target::FirstResponse).paused_left, Some(4 * H));
}

#[test]
fn closing_meets_the_resolution_and_stops_the_rest() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let closed = sla.plan(&facts("closed"), &list, Happened::StatusChanged, MONDAY + H);
    assert_eq!(get(&closed, Target::Resolution).met_at, Some(MONDAY + H));
    let first = get(&closed, Target::FirstResponse);
    assert_eq!(first.stopped_at, Some(MONDAY + H));
    assert_eq!(first.standing(MONDAY + 2 * H), Standing::Stopped);
    assert!(closed.iter().all(|d| sla.timers(d).is_empty()));
}

#[test]
fn reopening_starts_a_new_resolution_deadline() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let closed = sla.plan(&facts("closed"), &list, Happened::StatusChanged, MONDAY + H);
    // Reopened by the customer's answer a business day later.
    let at = MONDAY + 24 * H;
    let reopened = sla.plan(&facts("open"), &closed, Happened::CustomerEntry, at);
    let resolution = get(&reopened, Target::Resolution);
    assert_eq!(resolution.met_at, None);
    assert_eq!(resolution.started_at, at);
    assert!(resolution.due_at > at);
    assert_eq!(resolution.standing(at), Standing::Running);
    assert!(!sla.timers(resolution).is_empty());
    // Reopened by an agent's status change: the same.
    let by_agent = sla.plan(&facts("open"), &closed, Happened::StatusChanged, at);
    assert_eq!(get(&by_agent, Target::Resolution).started_at, at);
    // A status change that keeps it closed changes nothing.
    let still = sla.plan(&facts("closed"), &closed, Happened::StatusChanged, at);
    assert_eq!(still, closed);
}

#[test]
fn a_deadline_set_by_hand_replaces_the_policys() {
    let sla = sla("");
    let list = sla.plan(&facts("new"), &[], Happened::Created, MONDAY);
    let due = MONDAY + 50 * H;
    let set = sla.plan(
        &facts("open"),
        &list,
        Happened::SetByHand {
            target: Target::Resolution,
            due_at: due,
        },
        MONDAY + H,
    );
    let resolution = get(&set, Target::Resolution);
    assert_eq!(resolution.due_at, due);
    assert!(resolution.by_hand);
    assert_eq!(
        sla.timers(resolution),
        vec![(TimerKind::Warning, due - H), (TimerKind::Breach, due)]
    );
    // A target the policy does not set can be set by hand too.
    let next = sla.plan(
        &facts("open"),
        &list,
        Happened::SetByHand {
            target: Target::NextResponse,
            due_at: due,
        },
        MONDAY + H,
    );
    assert!(get(&next, Target::NextResponse).by_hand);
}

#[test]
fn policies_and_durations_are_checked() {
    assert_eq!(parse_duration("1h30m"), Ok(5400));
    assert_eq!(parse_duration("45m"), Ok(2700));
    assert_eq!(parse_duration("100h"), Ok(360_000));
    for bad in ["", "4", "h", "2d", "1.5h", "0m", "-1h", "999999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    let bad = |json: &str| {
        serde_json::from_str::<SlaSettings>(json)
            .unwrap()
            .compile()
            .unwrap_err()
    };
    let e = bad(r#"{"policy": [{"name": "x", "first_response": "4 hours"}]}"#);
    assert_eq!(e.key.as_deref(), Some("policy[0].first_response"));
    let e = bad(r#"{"policy": [{"name": "x"}]}"#);
    assert!(e.message.contains("sets no target"), "{e}");
    let e = bad(r#"{"policy": [{"name": "x", "resolution": "1h", "escalate_to": ["boss"]}]}"#);
    assert_eq!(e.key.as_deref(), Some("policy[0].escalate_to[0]"));
    let e = bad(r#"{"hours": {"mon": "", "tue": ""}}"#);
    assert_eq!(e.key.as_deref(), Some("hours"));
    let e = bad(r#"{"hours": {"mon": "9 to 5"}}"#);
    assert_eq!(e.key.as_deref(), Some("hours.mon"));
    let e = bad(r#"{"holidays": ["25.12.2026"]}"#);
    assert_eq!(e.key.as_deref(), Some("holidays[0]"));
    let e = bad(r#"{"time_zone": "Europe/Amsterdan"}"#);
    assert_eq!(e.key.as_deref(), Some("time_zone"));
    assert!(
        serde_json::from_str::<SlaSettings>(r#"{"hours": {"monday": "09:00-17:00"}}"#).is_err()
    );
    let mut with_file: SlaSettings = serde_json::from_str(r#"{"holidays_file": "h.txt"}"#).unwrap();
    with_file.holidays_text = Some("2026-12-25\nnope\n".into());
    let e = with_file.compile().unwrap_err();
    assert_eq!(e.key.as_deref(), Some("holidays_file"));
    assert!(e.message.starts_with("h.txt: line 2"), "{e}");
    assert_eq!(
        Escalation::parse("team:leads"),
        Ok(Escalation::Team("leads".into()))
    );
}

#[test]
fn due_labels_say_how_far() {
    assert_eq!(due_label(MONDAY + 2 * H + 59, MONDAY), "in 2 h");
    assert_eq!(due_label(MONDAY - 3 * H - 10, MONDAY), "overdue 3 h");
    assert_eq!(due_label(MONDAY + 45 * 60, MONDAY), "in 45 min");
    assert_eq!(due_label(MONDAY + 10, MONDAY), "in 1 min");
    assert_eq!(due_label(MONDAY + 80 * H, MONDAY), "in 3 d");
}
