//! The weekly reports (issue 18): per helpdesk and ISO week, the tickets created and
//! closed, the first-response and resolution times (median and 90th percentile), and
//! the deadlines met and missed per target. This module owns the reports' SQL, the
//! same on SQLite and PostgreSQL: it fetches the moments of each helpdesk's period and
//! buckets them into weeks in Rust, where the percentiles are taken too
//! ([`postdesk_core::report`]).
//!
//! What counts, and in which week:
//! - *created*: a ticket, in the week of its `created_at`;
//! - *first response*: the first agent reply (an `outgoing` entry; notes and events do
//!   not count), in the week it was sent, timed from the ticket's creation;
//! - *closed*: a ticket whose status is one of its helpdesk's closed statuses now, in
//!   the week it was closed: when its resolution deadline was met (closing meets it),
//!   else — a helpdesk without deadlines — its last change. A reopened ticket counts as
//!   created once; it is closed only while it is closed, in the week of its last
//!   closing, and its resolution time runs from its creation to that closing;
//! - *deadlines*: each stored deadline in the week it was due: met (on time), or missed
//!   (met late, closed past it, or overdue and still running); paused, running and
//!   stopped ones are in neither. A next-response deadline is stored once per ticket,
//!   so only its latest counts.
//!
//! Durations are wall-clock seconds; whether a deadline was met already reflects
//! business hours.

use postdesk_core::id::HelpdeskId;
use postdesk_core::report::{Durations, IsoWeek, ReportPeriod, ReportZone};
use postdesk_core::sla::{Standing, Target};

use crate::engine::{Db, params};
use crate::{RegisteredHelpdesk, Result, Store};

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    /// The helpdesks to report on (those the asker may see), in the order to show them.
    pub helpdesks: Vec<HelpdeskId>,
    pub period: ReportPeriod,
    /// The moment "overdue" is judged at (Unix seconds).
    pub now: i64,
}

/// One target's deadlines due in a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetTally {
    pub target: Target,
    pub met: u64,
    pub missed: u64,
}

/// One helpdesk's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekReport {
    pub helpdesk_id: HelpdeskId,
    pub helpdesk: String,
    pub week: IsoWeek,
    /// The zone the week is counted in (IANA name).
    pub time_zone: String,
    /// Unix seconds of its Monday's midnight in that zone.
    pub starts_at: i64,
    pub created: u64,
    pub closed: u64,
    pub first_response: Durations,
    pub resolution: Durations,
    /// Every target, in [`Target::ALL`]'s order.
    pub deadlines: Vec<TargetTally>,
}

impl WeekReport {
    fn empty(hd: &RegisteredHelpdesk, zone: &ReportZone, week: IsoWeek) -> Self {
        Self {
            helpdesk_id: hd.id,
            helpdesk: hd.config.settings.name.clone(),
            week,
            time_zone: zone.name().to_string(),
            starts_at: zone.start_of(week),
            created: 0,
            closed: 0,
            first_response: Durations::default(),
            resolution: Durations::default(),
            deadlines: Target::ALL
                .iter()
                .map(|&target| TargetTally {
                    target,
                    met: 0,
                    missed: 0,
                })
                .collect(),
        }
    }

    /// The tally of `target`.
    pub fn tally(&self, target: Target) -> TargetTally {
        self.deadlines
            .iter()
            .find(|t| t.target == target)
            .copied()
            .unwrap_or(TargetTally {
                target,
                met: 0,
                missed: 0,
            })
    }
}

/// The moments of one helpdesk's period, as fetched.
#[derive(Debug, Default)]
struct Moments {
    created: Vec<i64>,
    /// (created, first reply)
    first_replies: Vec<(i64, i64)>,
    /// (status, created, closed)
    closings: Vec<(String, i64, i64)>,
    /// (target, due, standing)
    deadlines: Vec<(Target, i64, Standing)>,
}

fn moments(conn: &Db, helpdesk: HelpdeskId, from: i64, to: i64, now: i64) -> Result<Moments> {
    let created = conn
        .prepare_cached(
            "SELECT created_at FROM tickets
             WHERE helpdesk_id = ?1 AND created_at >= ?2 AND created_at < ?3",
        )?
        .query_map(params![helpdesk, from, to], |r| r.get(0))?
        .collect::<Result<Vec<i64>>>()?;
    let first_replies = conn
        .prepare_cached(
            "SELECT t.created_at, MIN(e.created_at) FROM tickets t
             JOIN entries e ON e.ticket_id = t.id AND e.kind = 'outgoing'
             WHERE t.helpdesk_id = ?1
             GROUP BY t.id, t.created_at
             HAVING MIN(e.created_at) >= ?2 AND MIN(e.created_at) < ?3",
        )?
        .query_map(params![helpdesk, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(i64, i64)>>>()?;
    let closings = conn
        .prepare_cached(
            "SELECT t.status, t.created_at, COALESCE(d.met_at, t.modified_at) FROM tickets t
             LEFT JOIN ticket_deadlines d ON d.ticket_id = t.id AND d.target = 'resolution'
             WHERE t.helpdesk_id = ?1
               AND COALESCE(d.met_at, t.modified_at) >= ?2
               AND COALESCE(d.met_at, t.modified_at) < ?3",
        )?
        .query_map(params![helpdesk, from, to], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<(String, i64, i64)>>>()?;
    let deadlines = conn
        .prepare_cached(&format!(
            "SELECT {} FROM ticket_deadlines d JOIN tickets t ON t.id = d.ticket_id
             WHERE t.helpdesk_id = ?1 AND d.due_at >= ?2 AND d.due_at < ?3",
            qualified_deadline_columns()
        ))?
        .query_map(params![helpdesk, from, to], crate::deadlines::deadline)?
        .map(|d| d.map(|d| (d.target, d.due_at, d.standing(now))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Moments {
        created,
        first_replies,
        closings,
        deadlines,
    })
}

/// The deadlines' columns, read from `d`.
fn qualified_deadline_columns() -> String {
    crate::deadlines::DEADLINE_COLUMNS
        .split(',')
        .map(|c| format!("d.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Buckets one helpdesk's moments into its weeks.
fn weeks_of(
    hd: &RegisteredHelpdesk,
    zone: &ReportZone,
    weeks: &[IsoWeek],
    m: Moments,
) -> Vec<WeekReport> {
    let mut rows: Vec<WeekReport> = weeks
        .iter()
        .map(|w| WeekReport::empty(hd, zone, *w))
        .collect();
    let mut first: Vec<Vec<i64>> = vec![Vec::new(); weeks.len()];
    let mut resolution: Vec<Vec<i64>> = vec![Vec::new(); weeks.len()];
    let index = |at: i64| weeks.binary_search(&zone.week_of(at)).ok();
    for at in m.created {
        if let Some(i) = index(at) {
            rows[i].created += 1;
        }
    }
    for (created, replied) in m.first_replies {
        if let Some(i) = index(replied) {
            first[i].push(replied - created);
        }
    }
    for (status, created, closed) in m.closings {
        if !hd.config.is_closed(&status) {
            continue;
        }
        if let Some(i) = index(closed) {
            rows[i].closed += 1;
            resolution[i].push(closed - created);
        }
    }
    for (target, due, standing) in m.deadlines {
        let Some(i) = index(due) else { continue };
        let Some(tally) = rows[i].deadlines.iter_mut().find(|t| t.target == target) else {
            continue;
        };
        match standing {
            Standing::Met => tally.met += 1,
            Standing::Missed | Standing::Overdue => tally.missed += 1,
            Standing::Running | Standing::Paused | Standing::Stopped => {}
        }
    }
    for ((row, first), resolution) in rows.iter_mut().zip(first).zip(resolution) {
        row.first_response = Durations::of(first);
        row.resolution = Durations::of(resolution);
    }
    rows
}

impl Store {
    /// The report of `query`: one row per helpdesk (of `helpdesks`, in the query's
    /// order) and week of the period, weeks without any ticket included.
    pub async fn weekly_report(
        &self,
        helpdesks: &[RegisteredHelpdesk],
        query: &ReportQuery,
    ) -> Result<Vec<WeekReport>> {
        let chosen: Vec<RegisteredHelpdesk> = query
            .helpdesks
            .iter()
            .filter_map(|id| helpdesks.iter().find(|h| h.id == *id).cloned())
            .collect();
        let query = query.clone();
        self.read(move |conn| {
            let weeks = query.period.weeks();
            let Some(after_last) = query.period.last.next() else {
                return Ok(Vec::new());
            };
            let mut report = Vec::new();
            for hd in &chosen {
                let zone = ReportZone::of(&hd.config);
                let from = zone.start_of(query.period.first);
                let to = zone.start_of(after_last);
                let m = moments(conn, hd.id, from, to, query.now)?;
                report.extend(weeks_of(hd, &zone, &weeks, m));
            }
            Ok(report)
        })
        .await
    }
}
