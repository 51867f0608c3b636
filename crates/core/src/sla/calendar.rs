//! Business time: a calendar of working hours per weekday and holidays in one IANA time
//! zone, and the two sums deadlines need, counted in seconds of working time: the
//! moment `n` working seconds after a start ([`Calendar::add`]) and the working seconds
//! between two moments ([`Calendar::between`]).
//!
//! Hours are local clock times on each date, turned into instants through the zone, so
//! a day on which daylight saving begins or ends has as many working seconds as really
//! pass (a clock time that does not exist moves forward, as clocks do; one that occurs
//! twice is its first occurrence). Working intervals include their end: a deadline of
//! exactly eight hours from 09:00 on a 09:00–17:00 day is 17:00 that day, not 09:00 the
//! next, and so a deadline always falls inside working hours.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::config_issue::ConfigIssue;

/// Days looked ahead for working time before giving up (ten years): only a calendar
/// whose holidays cover years on end gets there, and then there is no deadline.
const MAX_DAYS: usize = 3660;

/// The weekdays as the configuration writes them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Working hours on one weekday: intervals of minutes from midnight, sorted, apart,
/// each `start < end <= 24 * 60`.
pub type DayHours = Vec<(u32, u32)>;

/// Working hours in a time zone, with holidays (whole local dates off).
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    zone_name: String,
    /// Monday first.
    week: [DayHours; 7],
    holidays: BTreeSet<Date>,
}

impl Calendar {
    /// A calendar of `week` (Monday first) in the IANA zone `zone`. A week without any
    /// working hour is an error: no deadline could ever be reached on it.
    pub fn new(
        zone: &str,
        week: [DayHours; 7],
        holidays: BTreeSet<Date>,
    ) -> Result<Self, ConfigIssue> {
        let zone_name = zone.trim().to_string();
        let tz = TimeZone::get(&zone_name).map_err(|_| {
            ConfigIssue::new(
                "time_zone",
                format!(
                    "`{zone_name}` is not a time zone; write an IANA name such as \"Europe/Amsterdam\" or \"UTC\""
                ),
            )
        })?;
        if week.iter().all(|day| day.is_empty()) {
            return Err(ConfigIssue::new(
                "hours",
                "the calendar has no working hours on any day; give at least one, e.g. mon = \"09:00-17:00\"",
            ));
        }
        for day in &week {
            debug_assert!(day.windows(2).all(|w| w[0].1 <= w[1].0));
            debug_assert!(day.iter().all(|(s, e)| s < e && *e <= 24 * 60));
        }
        Ok(Self {
            zone: tz,
            zone_name,
            week,
            holidays,
        })
    }

    /// The time zone's IANA name, as configured.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The time zone itself (the weekly reports count weeks in it).
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The local date of `at`.
    pub fn date_of(&self, at: i64) -> Option<Date> {
        let ts = Timestamp::from_second(at).ok()?;
        Some(self.zone.to_datetime(ts).date())
    }

    /// The working intervals (instants, end included) of one local date.
    fn intervals_of(&self, date: Date) -> Vec<(i64, i64)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let day = date.weekday().to_monday_zero_offset() as usize;
        self.week[day]
            .iter()
            .filter_map(|&(start, end)| {
                let s = self.instant(date, start)?;
                let e = self.instant(date, end)?;
                // A span wholly inside a skipped hour is no working time at all.
                (e > s).then_some((s, e))
            })
            .collect()
    }

    /// `minutes` after local midnight of `date`, as an instant (24:00 is the next
    /// day's midnight).
    fn instant(&self, date: Date, minutes: u32) -> Option<i64> {
        let (date, minutes) = if minutes >= 24 * 60 {
            (date.tomorrow().ok()?, minutes - 24 * 60)
        } else {
            (date, minutes)
        };
        let local = date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
        self.zone.to_timestamp(local).ok().map(Timestamp::as_second)
    }

    /// Working intervals in order that end at or after `from`, for at most
    /// [`MAX_DAYS`] days.
    fn intervals_from(&self, from: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        // From the day before: its hours may end after midnight in another offset.
        let first = self
            .date_of(from)
            .and_then(|d| d.yesterday().ok())
            .into_iter();
        first
            .flat_map(|start| {
                std::iter::successors(Some(start), |d| d.tomorrow().ok()).take(MAX_DAYS)
            })
            .flat_map(|date| self.intervals_of(date))
            .filter(move |&(_, end)| end >= from)
    }

    /// The moment `seconds` of working time after `start` (`seconds` < 0 counts as 0):
    /// with 0, `start` itself when it is working time, else the next opening. `None`
    /// when the calendar has no working time left within ten years.
    pub fn add(&self, start: i64, seconds: i64) -> Option<i64> {
        let mut remaining = seconds.max(0);
        for (open, close) in self.intervals_from(start) {
            let from = open.max(start);
            let available = close - from;
            if remaining <= available {
                return Some(from + remaining);
            }
            remaining -= available;
        }
        None
    }

    /// Seconds of working time from `from` to `to` (0 when `to` is not after `from`).
    pub fn between(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = 0;
        for (open, close) in self.intervals_from(from) {
            if open >= to {
                break;
            }
            total += close.min(to) - open.max(from);
        }
        total
    }

    /// Whether `at` is working time (an interval's end included).
    pub fn is_working(&self, at: i64) -> bool {
        self.intervals_from(at)
            .take_while(|&(open, _)| open <= at)
            .any(|(open, close)| open <= at && at <= close)
    }
}

/// One weekday's hours as written: `"09:00-17:00"`, `"08:00-12:00, 13:00-17:30"`, or
/// `""` for none. The issue names no key (the caller knows the day).
pub fn parse_day(text: &str) -> Result<DayHours, ConfigIssue> {
    let mut day: DayHours = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            ConfigIssue::unkeyed(format!(
                "`{part}` is not a span of hours; write \"09:00-17:00\" (24:00 ends a day), several separated by commas"
            ))
        };
        let (start, end) = part.split_once('-').ok_or_else(bad)?;
        let start = clock(start.trim()).ok_or_else(bad)?;
        let end = clock(end.trim()).ok_or_else(bad)?;
        if start >= end {
            return Err(ConfigIssue::unkeyed(format!(
                "`{part}` ends before it starts; a span cannot pass midnight (end a day at 24:00 and start the next at 00:00)"
            )));
        }
        day.push((start, end));
    }
    day.sort_unstable();
    if let Some(w) = day.windows(2).find(|w| w[0].1 > w[1].0) {
        return Err(ConfigIssue::unkeyed(format!(
            "the spans {} and {} overlap",
            show_span(w[0]),
            show_span(w[1])
        )));
    }
    Ok(day)
}

fn show_span((start, end): (u32, u32)) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

/// `HH:MM` as minutes from midnight, `24:00` allowed.
fn clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// A holiday as written: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    text.parse().ok()
}

/// The holidays of a file: one date per line, anything after it (a name) and lines
/// starting with `#` ignored. The error names the line.
pub fn parse_holiday_file(text: &str) -> Result<BTreeSet<Date>, String> {
    let mut dates = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or(line);
        let date = parse_date(first).ok_or_else(|| {
            format!(
                "line {}: `{}` is not a date; write one date per line as YYYY-MM-DD, a name may follow",
                n + 1,
                first.chars().take(40).collect::<String>()
            )
        })?;
        dates.insert(date);
    }
    Ok(dates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a local time in `zone`.
    fn at(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        TimeZone::get(zone)
            .unwrap()
            .to_timestamp(jiff::civil::date(y, mo, d).at(h, mi, 0, 0))
            .unwrap()
            .as_second()
    }

    fn office(zone: &str, holidays: &[&str]) -> Calendar {
        let nine_to_five = parse_day("09:00-17:00").unwrap();
        let mut week: [DayHours; 7] = Default::default();
        for day in week.iter_mut().take(5) {
            *day = nine_to_five.clone();
        }
        let holidays = holidays.iter().map(|d| parse_date(d).unwrap()).collect();
        Calendar::new(zone, week, holidays).unwrap()
    }

    const H: i64 = 3600;

    #[test]
    fn hours_are_counted_inside_working_time_only() {
        let cal = office("Europe/Amsterdam", &[]);
        // Thursday 2026-11-19 16:00 + 2 h → Friday 10:00.
        let start = at("Europe/Amsterdam", 2026, 11, 19, 16, 0);
        assert_eq!(
            cal.add(start, 2 * H),
            Some(at("Europe/Amsterdam", 2026, 11, 20, 10, 0))
        );
        // Friday 16:00 + 2 h → Monday 10:00 (the weekend has no hours).
        let friday = at("Europe/Amsterdam", 2026, 11, 20, 16, 0);
        assert_eq!(
            cal.add(friday, 2 * H),
            Some(at("Europe/Amsterdam", 2026, 11, 23, 10, 0))
        );
        // Started on Saturday: the clock starts on Monday at 09:00.
        let saturday = at("Europe/Amsterdam", 2026, 11, 21, 11, 0);
        assert_eq!(
            cal.add(saturday, H),
            Some(at("Europe/Amsterdam", 2026, 11, 23, 10, 0))
        );
        assert_eq!(cal.between(friday, cal.add(friday, 2 * H).unwrap()), 2 * H);
        // A full day ends at the day's close, not at the next opening.
        let nine = at("Europe/Amsterdam", 2026, 11, 19, 9, 0);
        assert_eq!(
            cal.add(nine, 8 * H),
            Some(at("Europe/Amsterdam", 2026, 11, 19, 17, 0))
        );
    }

    #[test]
    fn a_target_can_span_weeks() {
        let cal = office("UTC", &[]);
        let monday = at("UTC", 2026, 11, 2, 9, 0);
        // 100 working hours = 12.5 days of 8 h: two full weeks (80 h), then 2.5 days.
        assert_eq!(
            cal.add(monday, 100 * H),
            Some(at("UTC", 2026, 11, 18, 13, 0))
        );
        assert_eq!(cal.between(monday, at("UTC", 2026, 11, 18, 13, 0)), 100 * H);
    }

    #[test]
    fn holidays_are_days_off_and_weekend_holidays_change_nothing() {
        // 2026-12-25 is a Friday, 2026-12-26 a Saturday.
        let cal = office("Europe/Amsterdam", &["2026-12-25", "2026-12-26"]);
        let plain = office("Europe/Amsterdam", &[]);
        let thursday = at("Europe/Amsterdam", 2026, 12, 24, 16, 0);
        assert_eq!(
            cal.add(thursday, 2 * H),
            Some(at("Europe/Amsterdam", 2026, 12, 28, 10, 0))
        );
        assert_eq!(
            plain.add(thursday, 2 * H),
            Some(at("Europe/Amsterdam", 2026, 12, 25, 10, 0))
        );
        // A holiday on a Saturday: the same as without it.
        let weekend_only = office("Europe/Amsterdam", &["2026-12-26"]);
        for h in [1, 5, 9, 17, 40] {
            assert_eq!(
                weekend_only.add(thursday, h * H),
                plain.add(thursday, h * H)
            );
        }
    }

    #[test]
    fn daylight_saving_days_count_the_hours_that_pass() {
        // Round the clock, every day: the autumn change (Europe/Amsterdam,
        // 2026-10-25 03:00 → 02:00) makes a day of 25 hours, the spring one
        // (2026-03-29 02:00 → 03:00) one of 23.
        let mut week: [DayHours; 7] = Default::default();
        for day in week.iter_mut() {
            *day = parse_day("00:00-24:00").unwrap();
        }
        let cal = Calendar::new("Europe/Amsterdam", week, BTreeSet::new()).unwrap();
        let autumn = at("Europe/Amsterdam", 2026, 10, 25, 0, 0);
        let next = at("Europe/Amsterdam", 2026, 10, 26, 0, 0);
        assert_eq!(cal.between(autumn, next), 25 * H);
        assert_eq!(cal.add(autumn, 24 * H), Some(next - H));
        let spring = at("Europe/Amsterdam", 2026, 3, 29, 0, 0);
        assert_eq!(
            cal.between(spring, at("Europe/Amsterdam", 2026, 3, 30, 0, 0)),
            23 * H
        );
    }

    #[test]
    fn office_hours_keep_their_local_time_across_a_change() {
        // America/New_York: DST ends on Sunday 2026-11-01. Friday 16:00 + 2 h is
        // Monday 10:00 local, which is 15:00 UTC now, 14:00 UTC before.
        let cal = office("America/New_York", &[]);
        let friday = at("America/New_York", 2026, 10, 30, 16, 0);
        let monday = cal.add(friday, 2 * H).unwrap();
        assert_eq!(monday, at("America/New_York", 2026, 11, 2, 10, 0));
        assert_eq!(monday, at("UTC", 2026, 11, 2, 15, 0));
        assert_eq!(friday, at("UTC", 2026, 10, 30, 20, 0));
        // Spring: 2026-03-08 02:00 → 03:00; a night shift over the gap has an hour less.
        let mut week: [DayHours; 7] = Default::default();
        week[6] = parse_day("00:00-06:00").unwrap(); // Sunday
        let night = Calendar::new("America/New_York", week, BTreeSet::new()).unwrap();
        let sunday = at("America/New_York", 2026, 3, 8, 0, 0);
        assert_eq!(
            night.between(sunday, at("America/New_York", 2026, 3, 8, 6, 0)),
            5 * H
        );
    }

    #[test]
    fn days_without_hours_and_split_days() {
        let mut week: [DayHours; 7] = Default::default();
        week[2] = parse_day("13:00-17:00, 08:00-12:00").unwrap(); // Wednesdays only
        let cal = Calendar::new("UTC", week, BTreeSet::new()).unwrap();
        let monday = at("UTC", 2026, 11, 16, 10, 0);
        assert_eq!(cal.add(monday, 5 * H), Some(at("UTC", 2026, 11, 18, 14, 0)));
        assert_eq!(cal.add(monday, 8 * H), Some(at("UTC", 2026, 11, 18, 17, 0)));
        assert_eq!(
            cal.add(monday, 8 * H + 1),
            Some(at("UTC", 2026, 11, 25, 8, 0) + 1)
        );
        assert!(!cal.is_working(at("UTC", 2026, 11, 18, 12, 30)));
        assert!(cal.is_working(at("UTC", 2026, 11, 18, 12, 0)));
    }

    #[test]
    fn a_calendar_without_hours_or_with_a_bad_zone_is_a_config_error() {
        let error = Calendar::new("UTC", Default::default(), BTreeSet::new()).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("hours"));
        assert!(error.message.contains("no working hours"), "{error}");
        let mut week: [DayHours; 7] = Default::default();
        week[0] = parse_day("09:00-17:00").unwrap();
        let error = Calendar::new("Mars/Olympus", week, BTreeSet::new()).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("time_zone"));
        assert!(error.message.contains("Mars/Olympus"), "{error}");
    }

    #[test]
    fn hours_and_holidays_are_checked() {
        for bad in ["9-17", "17:00-09:00", "09:00-25:00", "09:60-10:00", "x"] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
        assert!(
            parse_day("09:00-12:00, 11:00-13:00")
                .unwrap_err()
                .message
                .contains("overlap")
        );
        assert_eq!(parse_day("").unwrap(), Vec::new());
        assert_eq!(parse_day("00:00-24:00").unwrap(), vec![(0, 1440)]);
        let dates = parse_holiday_file("# Dutch\n2026-12-25 Kerstmis\n\n2026-12-26\n").unwrap();
        assert_eq!(dates.len(), 2);
        let error = parse_holiday_file("2026-12-25\n25.12.2026\n").unwrap_err();
        assert!(error.starts_with("line 2: `25.12.2026`"), "{error}");
    }

    /// The calendar's laws on many random starts and amounts (a fixed seed, so a
    /// failure repeats): a deadline is working time, two steps are one, and the
    /// working time between a start and its deadline is what was added.
    #[test]
    fn properties_hold_on_random_input() {
        let mut rng = fastrand::Rng::with_seed(18);
        let calendars = [
            office(
                "Europe/Amsterdam",
                &["2026-12-25", "2027-01-01", "2026-10-26"],
            ),
            office("America/New_York", &["2026-11-26"]),
            {
                let mut week: [DayHours; 7] = Default::default();
                week[1] = parse_day("00:00-02:30, 22:00-24:00").unwrap();
                week[6] = parse_day("01:30-03:30").unwrap(); // Sundays: over both changes
                Calendar::new("Europe/Amsterdam", week, BTreeSet::new()).unwrap()
            },
        ];
        // Starts from 2026-01-01 over two years: both DST changes of each zone.
        let base = at("UTC", 2026, 1, 1, 0, 0);
        for cal in &calendars {
            for _ in 0..400 {
                let start = base + rng.i64(0..2 * 365 * 24 * H);
                let a = rng.i64(0..60 * H);
                let b = rng.i64(0..60 * H);
                let due = cal.add(start, a).unwrap();
                assert!(cal.is_working(due), "{} + {a}", start);
                assert!(due >= start);
                assert_eq!(cal.add(due, b), cal.add(start, a + b), "{start} {a} {b}");
                assert_eq!(cal.between(start, due), a, "{start} {a}");
                // Pausing at `pause` and resuming at `resume` keeps what was left.
                let pause = start + rng.i64(0..=(due - start));
                let resume = pause + rng.i64(0..30 * 24 * H);
                let left = cal.between(pause, due);
                let moved = cal.add(resume, left).unwrap();
                assert_eq!(
                    cal.between(start, pause) + cal.between(resume, moved),
                    a,
                    "{start} {a} {pause} {resume}"
                );
            }
        }
    }
}
