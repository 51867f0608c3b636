//! A search on SQLite (issue 19): any text, indexed as tickets and searched for as typed,
//! ranks through `postdesk_rank` (FTS5 and a ranking function of ours, over FFI) without
//! a crash or an error, and every rank is a finite number, smaller for better.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk_core::search::parse;
use postdesk_store::fuzzing::rank_search;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is what is typed in the search box; every line a ticket's text.
    let query_text = text.lines().next().unwrap_or_default();
    let Ok(query) = parse(query_text) else {
        return;
    };
    if !query.needs_index() {
        return;
    }
    let texts: Vec<&str> = text.lines().take(8).collect();
    let ranked = rank_search(&texts, &query).expect("a parsed search runs");
    for (id, rank) in ranked {
        assert!(id >= 1 && id as usize <= texts.len(), "{id}");
        assert!(rank.is_finite() && rank <= 0.0, "{rank}");
    }
});
