//! HTML → readable text and HTML sanitising on arbitrary input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let _ = postdesk_mail::sanitize::html_to_text(&html);
    let _ = postdesk_mail::sanitize::sanitize_html(&html, &|_| None);
});
