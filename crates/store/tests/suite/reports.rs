//! The weekly reports (issue 18): a month of tickets made through intake, the desk and
//! the deadlines' own functions, their moments then set to a generated November 2026
//! (the store stamps everything with the clock); the report's numbers for every
//! helpdesk and week equal those of SQL written here, straight on the database, and a
//! few are known outright. Support counts its weeks in Europe/Amsterdam (its SLA
//! calendar), Sales, without deadlines, in UTC.

use postdesk_core::id::{HelpdeskId, TicketId};
use postdesk_core::report::{ReportPeriod, nearest_rank};
use postdesk_core::sla::{Happened, Target};
use postdesk_core::ticket::FieldChanges;
use postdesk_store::deadlines;
use postdesk_store::outbox::{self, OutgoingEntry};
use postdesk_store::reports::{ReportQuery, WeekReport};

use crate::{Desk, Engine, SALES, mail};

engine_tests! {
    a_month_of_tickets_reports_what_sql_counts,
}

const SUPPORT_SLA: &str = r#"
name = "Support"
addresses = ["support@example.com"]
closed_statuses = ["closed"]
[sla]
time_zone = "Europe/Amsterdam"
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
"#;

const H: i64 = 3600;
/// Monday 2026-11-02 00:00 UTC: the first day of ISO week 2026-W45.
const NOV_2: i64 = 1_793_577_600;
/// The report's "now": Monday 2026-12-07 12:00 UTC, after every generated deadline.
const NOW: i64 = 1_796_644_800;
/// Amsterdam is an hour ahead of UTC in November: its Monday starts at 23:00 UTC.
const AMSTERDAM: i64 = -H;

/// What happens to one generated ticket, at which moment.
struct Plan {
    created: i64,
    note: Option<i64>,
    reply: Option<i64>,
    closed: Option<i64>,
    reopened: Option<i64>,
    closed_again: Option<i64>,
}

/// The `i`th ticket of the month: every ~19 hours, most answered (some after the
/// 4-hour target), most closed (some after 40 hours), every seventh closed one
/// reopened and every other of those closed again. The first is created on Sunday
/// 23:30 UTC, which is already Monday in Amsterdam.
fn plan(i: i64) -> Plan {
    let created = if i == 0 {
        NOV_2 + 6 * 24 * H + 23 * H + 1800
    } else {
        NOV_2 + i * 19 * H + (i * 7919) % 3600
    };
    let reply = (i % 5 != 4).then(|| created + (i * 37 % 11) * H + i * 13 * 60);
    let note = (i % 4 == 1).then(|| created + 600);
    let closed = (i % 3 != 2).then(|| reply.unwrap_or(created) + (i * 53 % 60) * H + 60);
    let reopened = closed.filter(|_| i % 7 == 0).map(|c| c + H);
    let closed_again = reopened.filter(|_| i % 14 == 0).map(|r| r + 4 * H);
    Plan {
        created,
        note,
        reply,
        closed,
        reopened,
        closed_again,
    }
}

/// Raw SQL on the test's database, beside the store: to set the moments the store
/// stamped with the clock, and to count what the report should show.
enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(::postgres::Client),
}

impl Raw {
    fn open(url: &str) -> Self {
        match url.strip_prefix("sqlite://") {
            Some(file) => Self::Sqlite(rusqlite::Connection::open(file).unwrap()),
            None => Self::Postgres(::postgres::Client::connect(url, ::postgres::NoTls).unwrap()),
        }
    }

    /// One number (`?1`… placeholders, as the store writes them); none without a row.
    fn number(&mut self, sql: &str, args: &[i64]) -> Option<i64> {
        use rusqlite::OptionalExtension;
        match self {
            Self::Sqlite(c) => c
                .query_row(sql, rusqlite::params_from_iter(args), |r| r.get(0))
                .optional()
                .unwrap(),
            Self::Postgres(c) => c
                .query_opt(&sql.replace('?', "$"), &pg_args(args))
                .unwrap()
                .map(|r| r.get(0)),
        }
    }

    fn execute(&mut self, sql: &str, args: &[i64]) {
        match self {
            Self::Sqlite(c) => {
                c.execute(sql, rusqlite::params_from_iter(args)).unwrap();
            }
            Self::Postgres(c) => {
                c.execute(&sql.replace('?', "$"), &pg_args(args)).unwrap();
            }
        }
    }

    /// The value at rank ⌈q·n⌉ of `durations` (a query of one column, `?1`… its
    /// arguments), taken by the database: ORDER BY, OFFSET.
    fn rank(&mut self, durations: &str, args: &[i64], count: i64, percent: i64) -> Option<i64> {
        if count == 0 {
            return None;
        }
        let offset = ((percent * count + 99) / 100).max(1) - 1;
        self.number(
            &format!("SELECT x FROM ({durations}) AS q ORDER BY x LIMIT 1 OFFSET {offset}"),
            args,
        )
    }
}

fn pg_args(args: &[i64]) -> Vec<&(dyn ::postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn ::postgres::types::ToSql + Sync))
        .collect()
}

/// What SQL says of one helpdesk's week [from, to).
fn counted(raw: &mut Raw, helpdesk: HelpdeskId, from: i64, to: i64) -> Counted {
    let hd = helpdesk.get();
    let args = [hd, from, to];
    let created = raw
        .number(
            "SELECT COUNT(*) FROM tickets WHERE helpdesk_id = ?1 AND created_at >= ?2 AND created_at < ?3",
            &args,
        )
        .unwrap();
    let closed_durations = "SELECT COALESCE(d.met_at, t.modified_at) - t.created_at AS x
         FROM tickets t LEFT JOIN ticket_deadlines d ON d.ticket_id = t.id AND d.target = 'resolution'
         WHERE t.helpdesk_id = ?1 AND t.status = 'closed'
           AND COALESCE(d.met_at, t.modified_at) >= ?2 AND COALESCE(d.met_at, t.modified_at) < ?3";
    let closed = raw
        .number(
            &format!("SELECT COUNT(*) FROM ({closed_durations}) AS c"),
            &args,
        )
        .unwrap();
    let first_durations = "SELECT answered - opened AS x FROM (
             SELECT t.created_at AS opened, (SELECT MIN(e.created_at) FROM entries e
                 WHERE e.ticket_id = t.id AND e.kind = 'outgoing') AS answered
             FROM tickets t WHERE t.helpdesk_id = ?1) AS f
         WHERE answered >= ?2 AND answered < ?3";
    let answered = raw
        .number(
            &format!("SELECT COUNT(*) FROM ({first_durations}) AS c"),
            &args,
        )
        .unwrap();
    let mut deadlines = Vec::new();
    for target in Target::ALL {
        let of_target = format!(
            "SELECT COUNT(*) FROM ticket_deadlines d JOIN tickets t ON t.id = d.ticket_id
             WHERE t.helpdesk_id = ?1 AND d.due_at >= ?2 AND d.due_at < ?3
               AND d.target = '{}' AND ",
            target.as_str()
        );
        let met = raw
            .number(
                &format!("{of_target} d.met_at IS NOT NULL AND d.met_at <= d.due_at"),
                &args,
            )
            .unwrap();
        let missed = raw
            .number(
                &format!(
                    "{of_target} (d.met_at > d.due_at
                     OR (d.met_at IS NULL AND d.stopped_at > d.due_at)
                     OR (d.met_at IS NULL AND d.stopped_at IS NULL AND d.paused_since IS NULL
                         AND d.due_at < ?4))"
                ),
                &[hd, from, to, NOW],
            )
            .unwrap();
        deadlines.push((*target, met as u64, missed as u64));
    }
    Counted {
        created: created as u64,
        closed: closed as u64,
        first: (
            answered as usize,
            raw.rank(first_durations, &args, answered, 50),
            raw.rank(first_durations, &args, answered, 90),
        ),
        resolution: (
            closed as usize,
            raw.rank(closed_durations, &args, closed, 50),
            raw.rank(closed_durations, &args, closed, 90),
        ),
        deadlines,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Counted {
    created: u64,
    closed: u64,
    /// (count, median, p90)
    first: (usize, Option<i64>, Option<i64>),
    resolution: (usize, Option<i64>, Option<i64>),
    /// (target, met, missed)
    deadlines: Vec<(Target, u64, u64)>,
}

impl Counted {
    fn of(row: &WeekReport) -> Self {
        Self {
            created: row.created,
            closed: row.closed,
            first: (
                row.first_response.count,
                row.first_response.median,
                row.first_response.p90,
            ),
            resolution: (
                row.resolution.count,
                row.resolution.median,
                row.resolution.p90,
            ),
            deadlines: row
                .deadlines
                .iter()
                .map(|t| (t.target, t.met, t.missed))
                .collect(),
        }
    }
}

async fn apply(desk: &Desk, id: TicketId, happened: Happened, at: i64) {
    let helpdesks = desk.helpdesks.clone();
    desk.store
        .transaction(move |tx| deadlines::apply(tx, &helpdesks, id, happened, at))
        .await
        .unwrap();
}

async fn set_status(desk: &Desk, id: TicketId, status: &str, at: i64) {
    let change = FieldChanges {
        status: Some(Some(status.to_string())),
        ..Default::default()
    };
    desk.store
        .update_ticket(id, desk.default_agent(), &change)
        .await
        .unwrap();
    apply(desk, id, Happened::StatusChanged, at).await;
}

/// Makes one planned ticket, mailed `to` a helpdesk's address; returns the raw
/// statements that move its moments to the plan's.
async fn make(desk: &Desk, n: i64, to: &str, p: &Plan) -> Vec<(&'static str, Vec<i64>)> {
    let subject = format!("Request {n} to {to}");
    let id = desk
        .import(&mail("Alice <alice@acme.example>", &subject).to(to))
        .await
        .ticket_id
        .unwrap();
    let mut moves = Vec::new();
    apply(desk, id, Happened::Created, p.created).await;
    if let Some(at) = p.note {
        let note = desk
            .store
            .add_note(id, desk.default_agent(), "Looking into it.")
            .await
            .unwrap();
        moves.push((
            "UPDATE entries SET created_at = ?1 WHERE id = ?2",
            vec![at, note.get()],
        ));
    }
    if let Some(at) = p.reply {
        let agent = desk.default_agent();
        let entry = desk
            .store
            .transaction(move |tx| {
                outbox::add_outgoing_entry(
                    tx,
                    &OutgoingEntry {
                        ticket_id: id,
                        agent_id: agent,
                        from: "support@example.com",
                        to: &["alice@acme.example".to_string()],
                        cc: &[],
                        subject: "Re: your request",
                        body: "On it.",
                        message_id: &format!("reply-{}@example.com", id.get()),
                        in_reply_to: None,
                        references: &[],
                    },
                )
            })
            .await
            .unwrap();
        apply(desk, id, Happened::AgentReply, at).await;
        moves.push((
            "UPDATE entries SET created_at = ?1 WHERE id = ?2",
            vec![at, entry.get()],
        ));
    }
    let mut last = p.reply.unwrap_or(p.created);
    for (status, at) in [
        ("closed", p.closed),
        ("open", p.reopened),
        ("closed", p.closed_again),
    ] {
        if let Some(at) = at {
            set_status(desk, id, status, at).await;
            last = at;
        }
    }
    moves.push((
        "UPDATE tickets SET created_at = ?1, modified_at = ?2 WHERE id = ?3",
        vec![p.created, last, id.get()],
    ));
    moves
}

async fn a_month_of_tickets_reports_what_sql_counts(engine: Engine) {
    let desk = engine.desk_with(&[SUPPORT_SLA, SALES]).await;
    let support = desk.helpdesk("Support");
    let sales = desk.helpdesk("Sales");
    let mut moves = Vec::new();
    let mut closed_now = 0;
    for i in 0..36 {
        let p = plan(i);
        closed_now +=
            u64::from(p.closed.is_some() && (p.reopened.is_none() || p.closed_again.is_some()));
        moves.extend(make(&desk, i, "support@example.com", &p).await);
    }
    for i in 0..8 {
        let p = plan(i * 4 + 1);
        moves.extend(make(&desk, 100 + i, "sales@example.com", &p).await);
    }
    let url = desk.engine.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::open(&url);
        for (sql, args) in moves {
            raw.execute(sql, &args);
        }
    })
    .await
    .unwrap();

    let period = ReportPeriod::from_dates("2026-11-02", Some("2026-12-06"), NOW).unwrap();
    let query = ReportQuery {
        helpdesks: vec![support, sales],
        period,
        now: NOW,
    };
    let report = desk
        .store
        .weekly_report(&desk.helpdesks, &query)
        .await
        .unwrap();
    let weeks: Vec<(String, String, &str)> = report
        .iter()
        .map(|r| (r.helpdesk.clone(), r.week.to_string(), r.time_zone.as_str()))
        .collect();
    let expected_weeks: Vec<(String, String, &str)> =
        [("Support", "Europe/Amsterdam"), ("Sales", "UTC")]
            .iter()
            .flat_map(|(hd, zone)| {
                (45..=49).map(move |w| (hd.to_string(), format!("2026-W{w}"), *zone))
            })
            .collect();
    assert_eq!(weeks, expected_weeks);

    // The same numbers as SQL's, week by week, on each helpdesk's own week boundaries.
    let url = desk.engine.url.clone();
    let rows = report.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::open(&url);
        for row in &rows {
            let shift = if row.helpdesk_id == support {
                AMSTERDAM
            } else {
                0
            };
            let from = NOV_2 + i64::from(row.week.week - 45) * 7 * 24 * H + shift;
            assert_eq!(row.starts_at, from, "{} {}", row.helpdesk, row.week);
            let sql = counted(&mut raw, row.helpdesk_id, from, from + 7 * 24 * H);
            assert_eq!(Counted::of(row), sql, "{} {}", row.helpdesk, row.week);
        }
    })
    .await
    .unwrap();

    // Known outright: every Support ticket counted once, closed ones as they stand now
    // (a reopened ticket that stays open is not closed), the Sunday-evening ticket in
    // Amsterdam's next week, notes no response, the generated deadlines decided.
    let support_rows: Vec<&WeekReport> =
        report.iter().filter(|r| r.helpdesk_id == support).collect();
    assert_eq!(support_rows.iter().map(|r| r.created).sum::<u64>(), 36);
    assert_eq!(
        support_rows.iter().map(|r| r.closed).sum::<u64>(),
        closed_now
    );
    assert_eq!(
        support_rows[0].created, 8,
        "W45: tickets 1 to 8; ticket 0 (Sunday 23:30 UTC) is in W46"
    );
    assert!(support_rows[1].created >= 1);
    let sales_rows: Vec<&WeekReport> = report.iter().filter(|r| r.helpdesk_id == sales).collect();
    assert_eq!(sales_rows.iter().map(|r| r.created).sum::<u64>(), 8);
    assert!(
        sales_rows
            .iter()
            .all(|r| r.deadlines.iter().all(|t| t.met + t.missed == 0))
    );
    let first_met: u64 = support_rows
        .iter()
        .map(|r| r.tally(Target::FirstResponse).met)
        .sum();
    let first_missed: u64 = support_rows
        .iter()
        .map(|r| r.tally(Target::FirstResponse).missed)
        .sum();
    let replied_in_time = (0..36)
        .filter(|i| {
            plan(*i)
                .reply
                .is_some_and(|r| r - plan(*i).created <= 4 * H)
        })
        .count() as u64;
    assert_eq!(first_met, replied_in_time);
    assert!(first_missed > 0 && first_met > 0);
    let all_first: Vec<i64> = {
        let mut list: Vec<i64> = (0..36)
            .filter_map(|i| plan(i).reply.map(|r| r - plan(i).created))
            .collect();
        list.sort();
        list
    };
    let counted_first: usize = support_rows.iter().map(|r| r.first_response.count).sum();
    assert_eq!(counted_first, all_first.len());
    assert!(nearest_rank(&all_first, 90) >= nearest_rank(&all_first, 50));
}
