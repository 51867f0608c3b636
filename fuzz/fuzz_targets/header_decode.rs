//! Header decoding (RFC 2047 encoded words, raw 8-bit bytes, folding) on arbitrary
//! bytes, both directly and as the Subject, From, To, Authentication-Results and
//! Content-Disposition of a mail (display names, the trusted MTA's verdict, file names).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = postdesk_mail::parse::decode_header_value(data);
    let mut mail = Vec::with_capacity(data.len() * 3 + 200);
    for name in [
        &b"Subject: "[..],
        b"From: ",
        b"To: ",
        b"Authentication-Results: mx.example.com; ",
        b"Content-Disposition: attachment; filename*0*=",
    ] {
        mail.extend_from_slice(name);
        mail.extend_from_slice(data);
        mail.extend_from_slice(b"\r\n");
    }
    mail.extend_from_slice(b"\r\nbody\r\n");
    let parsed = postdesk_mail::parse(&mail);
    let _ = postdesk_mail::auth::forged_sender(&parsed, "mx.example.com");
});
