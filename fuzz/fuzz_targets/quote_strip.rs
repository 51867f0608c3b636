//! Reply/quote separation on arbitrary text, with and without a reply marker.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = postdesk_mail::strip_reply(&text, None);
    let _ = postdesk_mail::strip_reply(&text, Some("===== reply above this line ====="));
});
