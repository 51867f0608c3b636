//! Deadlines (service-level targets) of a helpdesk: the `[helpdesk.sla]` table with its
//! calendar and policies, compiled into an [`Sla`], and the one decision of what a
//! ticket's deadlines become when something happens to it ([`Sla::plan`]), with the
//! escalation timers each deadline needs ([`Sla::timers`]).
//!
//! A policy applies to the tickets of its helpdesk it matches (priority, type,
//! organization; the first matching one in the file's order), and sets up to three
//! targets in business time ([`calendar`]): the first response, the next response
//! after a customer's entry, and the resolution. Statuses listed in `pause_statuses`
//! stop the clock: the business time left is kept and counted again from the moment
//! the ticket leaves them. The store keeps the deadlines and runs the timers; this
//! module only decides.

pub mod calendar;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config_issue::ConfigIssue;
use crate::text_enum::text_enum;
use calendar::{Calendar, DayHours, WEEKDAYS, parse_date, parse_day, parse_holiday_file};

text_enum! {
    /// What a deadline is for.
    pub enum Target {
        /// The first agent reply to a new ticket.
        FirstResponse = "first_response",
        /// The next agent reply after a customer's entry.
        NextResponse = "next_response",
        /// The ticket reaching a closed status.
        Resolution = "resolution",
    }
}

impl Target {
    /// As pages and mails name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::FirstResponse => "First response",
            Self::NextResponse => "Next response",
            Self::Resolution => "Resolution",
        }
    }
}

text_enum! {
    /// An escalation timer's kind.
    pub enum TimerKind {
        /// `warn_before` the deadline.
        Warning = "warning",
        /// At the deadline, when it was not met.
        Breach = "breach",
    }
}

/// `[helpdesk.sla]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// IANA name of the zone the hours and holidays are in.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Working hours per weekday; none given: Monday to Friday, 09:00–17:00.
    pub hours: Option<HoursSettings>,
    /// Dates off, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// A file of dates off, one per line (relative to the config file).
    pub holidays_file: Option<PathBuf>,
    /// The text of `holidays_file`, read by whoever loads the configuration.
    #[serde(skip)]
    pub holidays_text: Option<String>,
    /// Statuses that stop the clock (e.g. `waiting-for-customer`).
    #[serde(default)]
    pub pause_statuses: Vec<String>,
    /// A customer's follow-up counts the next-response and resolution deadlines anew
    /// from the follow-up; otherwise a deadline that is running stands.
    #[serde(default)]
    pub recalculate_deadline: bool,
    /// `[[helpdesk.sla.policy]]`, looked at in order; the first that matches applies.
    #[serde(rename = "policy", default)]
    pub policies: Vec<PolicySettings>,
}

fn utc() -> String {
    "UTC".into()
}

/// `[helpdesk.sla.hours]`: `mon = "09:00-17:00"`, `"08:00-12:00, 13:00-17:00"`, `""`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSettings {
    pub mon: Option<String>,
    pub tue: Option<String>,
    pub wed: Option<String>,
    pub thu: Option<String>,
    pub fri: Option<String>,
    pub sat: Option<String>,
    pub sun: Option<String>,
}

/// `[[helpdesk.sla.policy]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub name: String,
    /// Only tickets of this priority (any case); none: every priority.
    pub priority: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    /// Only tickets whose requester's organization has this name.
    pub organization: Option<String>,
    /// Business time, `"4h"`, `"30m"`, `"1h30m"`.
    pub first_response: Option<String>,
    pub next_response: Option<String>,
    pub resolution: Option<String>,
    /// Clock time before a deadline when the warning goes out, `"30m"`; none: no warning.
    pub warn_before: Option<String>,
    /// Who hears of warnings and breaches: `assignee`, `manager`, `team:<name>`
    /// (of `notifications.teams`) or an address.
    #[serde(default)]
    pub escalate_to: Vec<String>,
}

/// Who hears of an escalation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    Assignee,
    Manager,
    Team(String),
    Address(String),
}

impl Escalation {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        Ok(match text {
            "assignee" => Self::Assignee,
            "manager" => Self::Manager,
            _ => match text.strip_prefix("team:") {
                Some(team) if !team.trim().is_empty() => Self::Team(team.trim().to_string()),
                _ if crate::address::normalize(text).is_some() => Self::Address(text.to_string()),
                _ => {
                    return Err(format!(
                        "`{text}` is not a target; write assignee, manager, team:<name> or an email address"
                    ));
                }
            },
        })
    }
}

/// A policy, checked.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub priority: Option<String>,
    pub ticket_type: Option<String>,
    pub organization: Option<String>,
    /// Business seconds.
    pub first_response: Option<i64>,
    pub next_response: Option<i64>,
    pub resolution: Option<i64>,
    /// Seconds of clock time.
    pub warn_before: Option<i64>,
    pub escalate_to: Vec<Escalation>,
}

impl Policy {
    fn target(&self, target: Target) -> Option<i64> {
        match target {
            Target::FirstResponse => self.first_response,
            Target::NextResponse => self.next_response,
            Target::Resolution => self.resolution,
        }
    }

    fn matches(&self, facts: &TicketFacts<'_>) -> bool {
        let fits = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| have.is_some_and(|h| h.trim().eq_ignore_ascii_case(w.trim())))
        };
        fits(&self.priority, facts.priority)
            && fits(&self.ticket_type, facts.ticket_type)
            && fits(&self.organization, facts.organization)
    }
}

/// A helpdesk's deadlines, checked: its calendar, the statuses that stop the clock,
/// and its policies.
#[derive(Debug, Clone)]
pub struct Sla {
    pub calendar: Calendar,
    pub pause_statuses: Vec<String>,
    pub recalculate_deadline: bool,
    pub policies: Vec<Policy>,
}

/// Business time as written: `"4h"`, `"45m"`, `"1h30m"`; at most 100,000 hours.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{}` is not a duration; write hours and minutes such as \"4h\", \"30m\" or \"1h30m\"",
            text.chars().take(40).collect::<String>()
        )
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in text.trim().chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' if !number.is_empty() && number.len() <= 9 => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                total += n * if c == 'h' { 3600 } else { 60 };
                number.clear();
                seen_unit = true;
            }
            ' ' => {}
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() || !seen_unit {
        return Err(bad());
    }
    if total <= 0 || total > 100_000 * 3600 {
        return Err(format!(
            "`{}` must be more than nothing and at most 100000h",
            text.trim()
        ));
    }
    Ok(total)
}

impl SlaSettings {
    /// Checks and compiles; the issue's key is inside `[helpdesk.sla]`.
    pub fn compile(&self) -> Result<Sla, ConfigIssue> {
        let week = self.week()?;
        let mut holidays = BTreeSet::new();
        for (i, text) in self.holidays.iter().enumerate() {
            let date = parse_date(text).ok_or_else(|| {
                ConfigIssue::new(
                    format!("holidays[{i}]"),
                    format!("`{}` is not a date; write YYYY-MM-DD", text.trim()),
                )
            })?;
            holidays.insert(date);
        }
        if let Some(text) = &self.holidays_text {
            let file = self
                .holidays_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            holidays.extend(
                parse_holiday_file(text)
                    .map_err(|e| ConfigIssue::new("holidays_file", format!("{file}: {e}")))?,
            );
        }
        let calendar = Calendar::new(&self.time_zone, week, holidays)?;
        let mut policies = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            let key = |k: &str| format!("policy[{i}].{k}");
            if p.name.trim().is_empty() {
                return Err(ConfigIssue::new(key("name"), "a policy needs a name"));
            }
            if self.policies[..i]
                .iter()
                .any(|q| q.name.trim().eq_ignore_ascii_case(p.name.trim()))
            {
                return Err(ConfigIssue::new(
                    key("name"),
                    format!("`{}` is used twice; names must be unique", p.name.trim()),
                ));
            }
            let duration = |k: &str, v: &Option<String>| -> Result<Option<i64>, ConfigIssue> {
                v.as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(|e| ConfigIssue::new(key(k), e))
            };
            let first_response = duration("first_response", &p.first_response)?;
            let next_response = duration("next_response", &p.next_response)?;
            let resolution = duration("resolution", &p.resolution)?;
            if first_response.is_none() && next_response.is_none() && resolution.is_none() {
                return Err(ConfigIssue::new(
                    key("name"),
                    format!(
                        "policy `{}` sets no target; give first_response, next_response or resolution",
                        p.name.trim()
                    ),
                ));
            }
            let mut escalate_to = Vec::new();
            for (j, t) in p.escalate_to.iter().enumerate() {
                escalate_to.push(
                    Escalation::parse(t)
                        .map_err(|e| ConfigIssue::new(key(&format!("escalate_to[{j}]")), e))?,
                );
            }
            policies.push(Policy {
                name: p.name.trim().to_string(),
                priority: p.priority.clone(),
                ticket_type: p.ticket_type.clone(),
                organization: p.organization.clone(),
                first_response,
                next_response,
                resolution,
                warn_before: duration("warn_before", &p.warn_before)?,
                escalate_to,
            });
        }
        Ok(Sla {
            calendar,
            pause_statuses: self.pause_statuses.clone(),
            recalculate_deadline: self.recalculate_deadline,
            policies,
        })
    }

    fn week(&self) -> Result<[DayHours; 7], ConfigIssue> {
        let Some(hours) = &self.hours else {
            let office = parse_day("09:00-17:00")?;
            let mut week: [DayHours; 7] = Default::default();
            week[..5].fill(office);
            return Ok(week);
        };
        let days = [
            &hours.mon, &hours.tue, &hours.wed, &hours.thu, &hours.fri, &hours.sat, &hours.sun,
        ];
        let mut week: [DayHours; 7] = Default::default();
        for (i, day) in days.iter().enumerate() {
            if let Some(text) = day {
                week[i] =
                    parse_day(text).map_err(|e| e.within(&format!("hours.{}", WEEKDAYS[i])))?;
            }
        }
        Ok(week)
    }
}

/// What deciding a ticket's deadlines looks at.
#[derive(Debug, Clone, Copy)]
pub struct TicketFacts<'a> {
    pub status: &'a str,
    pub priority: Option<&'a str>,
    pub ticket_type: Option<&'a str>,
    /// The requester's organization's name.
    pub organization: Option<&'a str>,
    /// Whether the status is one of the helpdesk's closed ones.
    pub closed: bool,
}

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    /// It was opened.
    Created,
    /// The customer wrote again.
    CustomerEntry,
    /// An agent replied to the customer (an internal note is not a reply).
    AgentReply,
    /// Its status may have changed (the clock pauses, resumes or stops).
    StatusChanged,
    /// An agent set a target's deadline by hand.
    SetByHand { target: Target, due_at: i64 },
}

/// One deadline of a ticket, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub target: Target,
    /// The policy that set it (its escalation targets apply).
    pub policy: String,
    pub started_at: i64,
    pub due_at: i64,
    /// While the clock is stopped: since when, and the business seconds that were left.
    pub paused_since: Option<i64>,
    pub paused_left: Option<i64>,
    /// When it was met (the reply, the closing).
    pub met_at: Option<i64>,
    /// When the ticket was closed before it was met (responses no longer needed).
    pub stopped_at: Option<i64>,
    /// Set by an agent rather than by a policy.
    pub by_hand: bool,
}

/// How a deadline stands, for pages and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Met on time.
    Met,
    /// Met late, or closed past it.
    Missed,
    /// Running, not due yet.
    Running,
    /// Running and past due.
    Overdue,
    /// The clock is stopped.
    Paused,
    /// No longer needed (closed before it was due).
    Stopped,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "missed",
            Self::Running => "running",
            Self::Overdue => "overdue",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

impl Deadline {
    /// A deadline started at `at`, running.
    fn running(target: Target, policy: &str, at: i64, due_at: i64, by_hand: bool) -> Self {
        Self {
            target,
            policy: policy.to_string(),
            started_at: at,
            due_at,
            paused_since: None,
            paused_left: None,
            met_at: None,
            stopped_at: None,
            by_hand,
        }
    }

    /// Not met and not stopped.
    pub fn is_open(&self) -> bool {
        self.met_at.is_none() && self.stopped_at.is_none()
    }

    pub fn standing(&self, now: i64) -> Standing {
        match (self.met_at, self.stopped_at) {
            (Some(met), _) if met <= self.due_at => Standing::Met,
            (Some(_), _) => Standing::Missed,
            (None, Some(stopped)) if stopped > self.due_at => Standing::Missed,
            (None, Some(_)) => Standing::Stopped,
            (None, None) if self.paused_since.is_some() => Standing::Paused,
            (None, None) if now > self.due_at => Standing::Overdue,
            (None, None) => Standing::Running,
        }
    }
}

impl Sla {
    /// The policy for a ticket: the first that matches it.
    pub fn policy_for(&self, facts: &TicketFacts<'_>) -> Option<&Policy> {
        self.policies.iter().find(|p| p.matches(facts))
    }

    pub fn policy_named(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Whether `status` stops the clock.
    pub fn pauses(&self, status: &str) -> bool {
        self.pause_statuses
            .iter()
            .any(|s| s.trim().eq_ignore_ascii_case(status.trim()))
    }

    /// A ticket's deadlines after `happened` at `at`, from those it had (`current`,
    /// one per target at most). The ticket's facts are those after the change: its
    /// status decides whether the clock runs.
    pub fn plan(
        &self,
        facts: &TicketFacts<'_>,
        current: &[Deadline],
        happened: Happened,
        at: i64,
    ) -> Vec<Deadline> {
        let mut next: Vec<Deadline> = current.to_vec();
        let policy = self.policy_for(facts);
        let find = |list: &[Deadline], target: Target| list.iter().position(|d| d.target == target);
        let start = |list: &mut Vec<Deadline>, target: Target, policy: &Policy| {
            let Some(seconds) = policy.target(target) else {
                return;
            };
            let Some(due_at) = self.calendar.add(at, seconds) else {
                return;
            };
            let deadline = Deadline::running(target, &policy.name, at, due_at, false);
            match find(list, target) {
                Some(i) => list[i] = deadline,
                None => list.push(deadline),
            }
        };
        match happened {
            Happened::Created => {
                if let Some(p) = policy {
                    start(&mut next, Target::FirstResponse, p);
                    start(&mut next, Target::Resolution, p);
                }
            }
            Happened::CustomerEntry => {
                if let Some(p) = policy {
                    // Until the first response, the customer waits for that one.
                    let awaiting_first =
                        find(&next, Target::FirstResponse).is_some_and(|i| next[i].is_open());
                    let running = |list: &[Deadline], t: Target| {
                        find(list, t).is_some_and(|i| list[i].is_open())
                    };
                    if !awaiting_first
                        && (self.recalculate_deadline || !running(&next, Target::NextResponse))
                    {
                        start(&mut next, Target::NextResponse, p);
                    }
                    if self.recalculate_deadline && running(&next, Target::Resolution) {
                        start(&mut next, Target::Resolution, p);
                    }
                }
            }
            Happened::AgentReply => {
                for d in next.iter_mut() {
                    if matches!(d.target, Target::FirstResponse | Target::NextResponse)
                        && d.is_open()
                        && d.started_at <= at
                    {
                        d.met_at = Some(at);
                    }
                }
            }
            Happened::StatusChanged => {}
            Happened::SetByHand { target, due_at } => match find(&next, target) {
                Some(i) => {
                    let d = &mut next[i];
                    d.due_at = due_at;
                    d.by_hand = true;
                    d.met_at = None;
                    d.stopped_at = None;
                    d.paused_since = None;
                    d.paused_left = None;
                }
                None => next.push(Deadline::running(
                    target,
                    policy.map_or("", |p| p.name.as_str()),
                    at,
                    due_at,
                    true,
                )),
            },
        }
        // A reopened ticket is being worked on again: the resolution that closing it
        // met no longer holds, so its clock starts over (as Zammad's solution time does).
        if !facts.closed
            && let Some(p) = policy
            && find(&next, Target::Resolution).is_some_and(|i| next[i].met_at.is_some())
        {
            start(&mut next, Target::Resolution, p);
        }
        // The clock follows the status it has now.
        let paused = self.pauses(facts.status);
        for d in next.iter_mut().filter(|d| d.is_open()) {
            if facts.closed {
                if d.target == Target::Resolution {
                    d.met_at = Some(at);
                } else {
                    d.stopped_at = Some(at);
                }
                continue;
            }
            match (paused, d.paused_since) {
                (true, None) => {
                    d.paused_since = Some(at);
                    d.paused_left = Some(self.calendar.between(at, d.due_at));
                }
                (false, Some(_)) => {
                    // A deadline already passed when the clock stopped stays passed.
                    let left = d.paused_left.unwrap_or(0);
                    if left > 0
                        && let Some(due) = self.calendar.add(at, left)
                    {
                        d.due_at = due;
                    }
                    d.paused_since = None;
                    d.paused_left = None;
                }
                _ => {}
            }
        }
        next.sort_by_key(|d| Target::ALL.iter().position(|t| *t == d.target));
        next
    }

    /// The escalation timers a deadline needs now: none once it is met, stopped or
    /// paused; else a warning `warn_before` it (when its policy sets one) and a breach
    /// at it.
    pub fn timers(&self, deadline: &Deadline) -> Vec<(TimerKind, i64)> {
        if !deadline.is_open() || deadline.paused_since.is_some() {
            return Vec::new();
        }
        let mut timers = Vec::new();
        if let Some(warn) = self
            .policy_named(&deadline.policy)
            .and_then(|p| p.warn_before)
        {
            timers.push((TimerKind::Warning, deadline.due_at - warn));
        }
        timers.push((TimerKind::Breach, deadline.due_at));
        timers
    }
}

/// How far a deadline is, for lists: `in 2 h`, `in 45 min`, `in 3 d`, `overdue 3 h`
/// (whole units, rounded down; under a minute counts as one).
pub fn due_label(due_at: i64, now: i64) -> String {
    let amount = span_label(due_at - now);
    if due_at >= now {
        format!("in {amount}")
    } else {
        format!("overdue {amount}")
    }
}

/// A span of time in whole units, rounded down: `45 min`, `2 h`, `3 d` (under a
/// minute counts as one; the sign is dropped).
pub fn span_label(seconds: i64) -> String {
    let gap = seconds.abs();
    if gap < 3600 {
        format!("{} min", (gap / 60).max(1))
    } else if gap < 48 * 3600 {
        format!("{} h", gap / 3600)
    } else {
        format!("{} d", gap / 86400)
    }
}

#[cfg(test)]
mod tests;
