//! `parse` on arbitrary bytes: never panics, and what it returns is well-formed
//! (safe attachment names, no control characters in the subject).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mail = postdesk_mail::parse(data);
    assert!(!mail.subject.chars().any(char::is_control));
    for a in &mail.attachments {
        assert!(!a.safe_name.is_empty());
        assert!(!a.safe_name.contains(['/', '\\']));
        assert!(!a.safe_name.starts_with('.'));
    }
});
