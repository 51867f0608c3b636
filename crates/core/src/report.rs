//! The arithmetic of the weekly reports (issue 18), pure: ISO weeks and the period
//! they make up, where a week starts in a helpdesk's time zone (its SLA calendar's, UTC
//! without one), and the median and 90th percentile of a list of durations.
//!
//! A report's period is a run of ISO weeks, the same labels for every helpdesk; each
//! helpdesk's week runs from Monday 00:00 to the next Monday 00:00 in its own zone.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;

use crate::settings::Helpdesk;

/// The longest period a report covers: ten years of weeks.
pub const MAX_WEEKS: usize = 530;

/// An ISO 8601 week: `2026-W49` (weeks start on Monday; week 1 holds the year's first
/// Thursday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    pub year: i16,
    pub week: i8,
}

impl IsoWeek {
    fn of_date(date: Date) -> Self {
        let iso = date.iso_week_date();
        Self {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// Its Monday.
    pub fn monday(self) -> Option<Date> {
        ISOWeekDate::new(self.year, self.week, Weekday::Monday)
            .ok()
            .map(ISOWeekDate::date)
    }

    /// Its Monday as `YYYY-MM-DD`.
    pub fn monday_text(self) -> String {
        self.monday().map(|d| d.to_string()).unwrap_or_default()
    }

    /// The week after.
    pub fn next(self) -> Option<Self> {
        let monday = self.monday()?;
        monday
            .checked_add(jiff::Span::new().days(7))
            .ok()
            .map(Self::of_date)
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// The weeks a report covers, first and last included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    pub first: IsoWeek,
    pub last: IsoWeek,
}

impl ReportPeriod {
    /// The weeks holding the dates `since` and `until` (`YYYY-MM-DD`, both included;
    /// no `until`: the week of `now`, in UTC). The message of an error says what to write.
    pub fn from_dates(since: &str, until: Option<&str>, now: i64) -> Result<Self, String> {
        let first = IsoWeek::of_date(parse_date(since)?);
        let last = match until.map(str::trim).filter(|u| !u.is_empty()) {
            Some(until) => IsoWeek::of_date(parse_date(until)?),
            None => ReportZone::utc().week_of(now),
        };
        if last < first {
            return Err(format!(
                "the period ends ({last}) before it starts ({first}); give --until on or after --since"
            ));
        }
        let period = Self { first, last };
        if period.weeks().len() > MAX_WEEKS {
            return Err(format!(
                "a report covers at most {MAX_WEEKS} weeks; give a shorter period"
            ));
        }
        Ok(period)
    }

    /// Every week of the period, in order (at most [`MAX_WEEKS`] + 1).
    pub fn weeks(&self) -> Vec<IsoWeek> {
        let mut weeks = Vec::new();
        let mut week = Some(self.first);
        while let Some(w) = week.filter(|w| *w <= self.last && weeks.len() <= MAX_WEEKS) {
            weeks.push(w);
            week = w.next();
        }
        weeks
    }
}

/// `YYYY-MM-DD`, or why not.
fn parse_date(text: &str) -> Result<Date, String> {
    text.trim().parse::<Date>().map_err(|_| {
        format!(
            "`{}` is not a date; write YYYY-MM-DD",
            text.chars().take(40).collect::<String>()
        )
    })
}

/// The time zone a helpdesk's weeks are counted in.
#[derive(Debug, Clone)]
pub struct ReportZone {
    zone: TimeZone,
    name: String,
}

impl ReportZone {
    pub fn utc() -> Self {
        Self {
            zone: TimeZone::UTC,
            name: "UTC".into(),
        }
    }

    /// The zone of the helpdesk's SLA calendar, UTC when it has none.
    pub fn of(helpdesk: &Helpdesk) -> Self {
        match &helpdesk.sla {
            Some(sla) => Self {
                zone: sla.calendar.zone().clone(),
                name: sla.calendar.zone_name().to_string(),
            },
            None => Self::utc(),
        }
    }

    /// Its IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The week `at` (Unix seconds) falls in, in this zone.
    pub fn week_of(&self, at: i64) -> IsoWeek {
        let ts = Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH);
        IsoWeek::of_date(self.zone.to_datetime(ts).date())
    }

    /// When `week` starts here: its Monday's midnight (the first instant of that day
    /// when a clock change skips midnight).
    pub fn start_of(&self, week: IsoWeek) -> i64 {
        week.monday()
            .and_then(|d| {
                self.zone
                    .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                    .ok()
            })
            .map(Timestamp::as_second)
            .unwrap_or(0)
    }
}

/// The middle and the 90th percentile of some durations (seconds), by nearest rank:
/// the value at position ⌈q·n⌉ of the sorted list. None of a list without any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durations {
    pub count: usize,
    pub median: Option<i64>,
    pub p90: Option<i64>,
}

impl Durations {
    pub fn of(mut seconds: Vec<i64>) -> Self {
        seconds.sort_unstable();
        Self {
            count: seconds.len(),
            median: nearest_rank(&seconds, 50),
            p90: nearest_rank(&seconds, 90),
        }
    }
}

/// The value at rank ⌈percent·n/100⌉ (1-based) of `sorted`.
pub fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    let n = sorted.len();
    let rank = (percent * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_are_iso_weeks_across_a_year_end() {
        let p = ReportPeriod::from_dates("2026-12-24", Some("2027-01-05"), 0).unwrap();
        let shown: Vec<String> = p.weeks().iter().map(|w| w.to_string()).collect();
        assert_eq!(shown, ["2026-W52", "2026-W53", "2027-W01"]);
        assert_eq!(p.first.monday_text(), "2026-12-21");
        assert!(ReportPeriod::from_dates("2026-12-24", Some("2026-12-01"), 0).is_err());
        assert!(ReportPeriod::from_dates("24/12/2026", None, 0).is_err());
        assert!(ReportPeriod::from_dates("1990-01-01", Some("2026-01-01"), 0).is_err());
    }

    #[test]
    fn a_week_starts_at_monday_midnight_in_its_zone() {
        let week = IsoWeek {
            year: 2026,
            week: 49,
        };
        // Monday 2026-11-30 00:00 UTC.
        assert_eq!(ReportZone::utc().start_of(week), 1_795_996_800);
        let amsterdam = ReportZone {
            zone: TimeZone::get("Europe/Amsterdam").unwrap(),
            name: "Europe/Amsterdam".into(),
        };
        assert_eq!(amsterdam.start_of(week), 1_795_996_800 - 3600);
        // Sunday 23:30 UTC is already Monday in Amsterdam.
        assert_eq!(amsterdam.week_of(1_795_996_800 - 1800), week);
        assert_eq!(ReportZone::utc().week_of(1_795_996_800 - 1800).week, 48);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let d = Durations::of((1..=10).rev().collect());
        assert_eq!((d.count, d.median, d.p90), (10, Some(5), Some(9)));
        let one = Durations::of(vec![7]);
        assert_eq!((one.median, one.p90), (Some(7), Some(7)));
        assert_eq!(Durations::of(Vec::new()), Durations::default());
    }
}
