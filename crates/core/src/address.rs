//! The one check of "is this an email address", for what people write: the config
//! file's addresses and the addresses agents type. Mail headers are parsed by the
//! `mail` crate instead; this is not an RFC 5322 parser.

/// The longest address accepted (RFC 5321's path limit, less the angle brackets).
const MAX_LEN: usize = 254;

/// Characters that never belong in an address as people write one: whitespace,
/// control characters, and the punctuation of display names and address lists.
fn is_forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c)
}

/// `text` as an address `name@domain.tld`, trimmed and lower-cased, or `None` when
/// it is not one: exactly one `@`, something before it, and a domain with a dot
/// inside it (not at its start or end); none of whitespace, control characters or
/// `<>,;"()[]\`; at most 254 bytes.
pub fn normalize(text: &str) -> Option<String> {
    let address = text.trim().to_lowercase();
    let (local, domain) = address.split_once('@')?;
    let valid = address.len() <= MAX_LEN
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address.chars().any(is_forbidden);
    valid.then_some(address)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize(" Alice@Example.ORG ").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            normalize("first.last+tag@mail.example.co.uk").as_deref(),
            Some("first.last+tag@mail.example.co.uk")
        );
    }

    #[test]
    fn what_is_not_an_address() {
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@localhost",
            "alice@.org",
            "alice@example.",
            "a b@example.org",
            "alice@exa\tmple.org",
            "alice@example.org\u{0}",
            "alice@example.org, bob@example.org",
            "alice@example.org;bob@example.org",
            "<alice@example.org>",
            "Alice <alice@example.org>",
            "\"alice\"@example.org",
            "alice(x)@example.org",
            "alice@[192.0.2.1]",
            "ali\\ce@example.org",
            "a@b@example.org",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?} passed");
        }
    }

    #[test]
    fn at_most_254_bytes() {
        let local = |n: usize| "a".repeat(n);
        // `@example.org` is 12 bytes.
        assert!(normalize(&format!("{}@example.org", local(242))).is_some());
        assert!(normalize(&format!("{}@example.org", local(243))).is_none());
        assert!(normalize(&format!("{}@example.org", local(250))).is_none());
    }
}
