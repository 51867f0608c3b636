//! Sender authenticity as the receiving MTA saw it: its `Authentication-Results`
//! header (RFC 8601), read for the one authserv-id the admin trusts.
//!
//! Anyone can write an Authentication-Results header into a mail. The trusted MTA adds
//! its own above those already there (and should delete forged ones carrying its id,
//! RFC 8601 §5), so only the first header with the trusted id is read. Its `dmarc=`
//! result says whether the From domain is aligned with a passing SPF or DKIM check.
//! Only an explicit failure counts against the sender: `none` (the domain publishes no
//! DMARC policy), a missing result or a missing header say nothing either way.

use crate::ParsedMail;

/// Why the trusted MTA says the sender is forged, or `None` when it does not say so.
pub fn forged_sender(mail: &ParsedMail, authserv_id: &str) -> Option<String> {
    let authserv_id = authserv_id.trim();
    let results = mail
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| without_comments(value))
        .find(|value| {
            let id = value.split(';').next().unwrap_or_default();
            id.split_whitespace()
                .next()
                .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        })?;
    let from_domain = mail
        .from
        .as_ref()
        .and_then(|a| a.email_key().rsplit_once('@').map(|(_, d)| d.to_string()));
    for resinfo in results.split(';').skip(1) {
        let mut words = resinfo.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method.split('/').next().unwrap_or_default();
        if !method.eq_ignore_ascii_case("dmarc") {
            continue;
        }
        let checked = words
            .filter_map(|w| w.split_once('='))
            .find(|(property, _)| property.eq_ignore_ascii_case("header.from"))
            .map(|(_, domain)| crate::domain_ascii(domain.trim_matches('"')));
        if result.eq_ignore_ascii_case("fail") {
            return Some(format!(
                "{authserv_id} reports dmarc=fail for the From domain"
            ));
        }
        // A pass for another domain than the From's does not vouch for this sender.
        if let (Some(checked), Some(from)) = (&checked, &from_domain)
            && checked != from
        {
            return Some(format!(
                "{authserv_id} checked DMARC for {checked}, not for the From domain {from}"
            ));
        }
        return None;
    }
    None
}

/// The header value with its `(comments)` removed (they may hold `;` and `=`).
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, results: &[&str]) -> ParsedMail {
        let mut raw = format!("From: {from}\r\nSubject: x\r\n");
        for r in results {
            raw.push_str(&format!("Authentication-Results: {r}\r\n"));
        }
        raw.push_str("\r\nbody\r\n");
        crate::parse(raw.as_bytes())
    }

    #[test]
    fn only_the_trusted_id_and_only_its_first_header_count() {
        let fail = "mx.example.com; spf=fail smtp.mailfrom=example.org; dmarc=fail (p=reject; dis=none) header.from=example.org";
        let pass =
            "mx.example.com; dkim=pass header.d=example.org; dmarc=pass header.from=example.org";
        let m = mail("jo@example.org", &[fail]);
        assert!(forged_sender(&m, "mx.example.com").is_some_and(|why| why.contains("dmarc=fail")));
        assert_eq!(forged_sender(&m, "other.example.net"), None);
        // A forger's own header below the MTA's does not count, nor one with another id.
        let m = mail("jo@example.org", &[pass, fail]);
        assert_eq!(forged_sender(&m, "mx.example.com"), None);
        let m = mail(
            "jo@example.org",
            &["evil.example; dmarc=pass header.from=example.org", fail],
        );
        assert!(forged_sender(&m, "MX.example.com").is_some());
    }

    #[test]
    fn no_policy_no_result_or_no_header_say_nothing() {
        for results in [
            &["mx.example.com 1; dmarc=none header.from=example.org"][..],
            &["mx.example.com; dkim=pass header.d=example.org"][..],
            &["mx.example.com; none"][..],
            &[][..],
        ] {
            assert_eq!(
                forged_sender(&mail("jo@example.org", results), "mx.example.com"),
                None,
                "{results:?}"
            );
        }
    }

    #[test]
    fn a_pass_for_another_domain_does_not_vouch_for_the_from() {
        let m = mail(
            "jo@example.org",
            &["mx.example.com; dmarc=pass header.from=attacker.example"],
        );
        assert!(
            forged_sender(&m, "mx.example.com").is_some_and(|why| why.contains("attacker.example"))
        );
        let m = mail(
            "jo@Example.ORG",
            &["(comment; dmarc=fail) mx.example.com; dmarc=pass header.from=example.org"],
        );
        assert_eq!(forged_sender(&m, "mx.example.com"), None);
    }
}
