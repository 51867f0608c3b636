//! How postdesk writes a moment for people: to the minute, in UTC, alike in the CLI's
//! output, the web UI and the mails it sends.

/// `2026-11-22 14:05 UTC` (seconds are dropped, not rounded). A timestamp the calendar
/// cannot hold is written as its number of seconds rather than lost.
pub fn format_time(unix: i64) -> String {
    let format = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Like [`format_time`], to the second: `2026-11-22 14:05:09 UTC` (leases, whose
/// times are seconds apart).
pub fn format_time_seconds(unix: i64) -> String {
    let format =
        ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// The moment `format_time` writes, read back: `2026-11-22 14:05` (UTC; a trailing
/// ` UTC` and a `T` between date and time, as browsers send it, are taken too), or
/// Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(unix) = text.trim().parse::<i64>() {
        return Some(unix);
    }
    let format = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let written = text.trim().trim_end_matches(" UTC").replacen('T', " ", 1);
    ::time::PrimitiveDateTime::parse(&written, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::{format_time, parse_time};

    #[test]
    fn what_is_written_reads_back() {
        assert_eq!(parse_time("2026-11-22 14:05"), Some(1_795_356_300));
        assert_eq!(parse_time("2026-11-22T14:05"), Some(1_795_356_300));
        assert_eq!(parse_time(&format_time(1_795_356_300)), Some(1_795_356_300));
        assert_eq!(parse_time(" 1795356300 "), Some(1_795_356_300));
        assert_eq!(parse_time("tomorrow"), None);
    }

    #[test]
    fn minutes_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_795_356_359), "2026-11-22 14:05 UTC");
        assert_eq!(format_time(-60), "1969-12-31 23:59 UTC");
    }

    #[test]
    fn a_timestamp_past_the_calendar_stays_a_number() {
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
    }
}
