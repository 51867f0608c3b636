//! The search box (issue 19): any text parses to a query or a clear error, never a
//! panic; every token of a parsed query is safe inside either engine's quotes (no
//! space, quote, backslash, ASCII punctuation or control character), and a snippet of
//! the same text carries no markup but its own `<mark>`s.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk_core::search::{Document, Field, parse, snippet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut document = Document::default();
    document.add(Field::Body, &text);
    let _ = document.tsvector_literal();
    let Ok(query) = parse(&text) else {
        return;
    };
    for term in query.terms.iter().chain(&query.from) {
        assert!(!term.tokens.is_empty());
        for token in &term.tokens {
            assert!(!token.is_empty());
            assert!(
                token
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && !c.is_ascii_punctuation()),
                "{token:?}"
            );
        }
    }
    if let Some(html) = snippet([text.as_ref()], &query.terms) {
        let bare = html.as_str().replace("<mark>", "").replace("</mark>", "");
        assert!(!bare.contains('<') && !bare.contains('>'), "{html:?}");
    }
});
