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

/// `2026-12-10T11:00:00Z`: RFC 3339 in UTC, to the second (Graph's and Gmail's form).
pub fn format_rfc3339(unix: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// An RFC 3339 moment (any offset; fractions of a second dropped) as Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    ::time::OffsetDateTime::parse(
        text.trim(),
        &::time::format_description::well_known::Rfc3339,
    )
    .ok()
    .map(|t| t.unix_timestamp())
}

/// `Tue, 01 Sep 2026 08:00:00 +0000`: a mail's `Date:` header.
pub fn format_rfc2822(unix: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc2822)
                .ok()
        })
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
    use super::*;

    #[test]
    fn rfc_forms_are_written_and_read() {
        assert_eq!(format_rfc3339(1_795_356_309), "2026-11-22T14:05:09Z");
        assert_eq!(parse_rfc3339("2026-11-22T14:05:09Z"), Some(1_795_356_309));
        assert_eq!(
            parse_rfc3339("2026-11-22T14:05:09.1234567Z"),
            Some(1_795_356_309)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T15:05:09+01:00"),
            Some(1_795_356_309)
        );
        assert_eq!(parse_rfc3339("soon"), None);
        assert_eq!(format_rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            format_rfc2822(1_796_641_182),
            "Mon, 07 Dec 2026 10:59:42 +0000"
        );
    }

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
