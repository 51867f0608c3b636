//! parse → classify → reference lookup → thread decision → reply stripping on arbitrary bytes.
//! Run: cargo install cargo-fuzz && cargo +nightly fuzz run parse_classify_thread
//! (seed it with crates/mail/tests/corpus).

#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk_core::id::{ContactId, TicketId};
use postdesk_core::settings::HelpdeskSettings;
use postdesk_core::thread::{self, SenderFacts, ThreadFacts, TicketFacts};
use std::sync::OnceLock;

fn helpdesk() -> &'static postdesk_core::settings::Helpdesk {
    static HD: OnceLock<postdesk_core::settings::Helpdesk> = OnceLock::new();
    HD.get_or_init(|| {
        let settings: HelpdeskSettings = serde_json::from_str(
            r#"{"name": "Support", "addresses": ["support@example.com"],
                "also_recognise": ["[Ticket ID : {number}]"],
                "reply_marker": "===== reply above this line ====="}"#,
        )
        .unwrap();
        settings.compile().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let hd = helpdesk();
    let mail = postdesk_mail::parse(data);
    let class = postdesk_mail::classify(&mail, &hd.own_addresses);
    let numbers = hd.reference.find_all(&mail.subject);
    let ticket = numbers.first().map(|&number| TicketFacts {
        id: TicketId::new(1),
        number,
        status: "closed".into(),
        requester_contact_id: Some(ContactId::new(1)),
        organization_id: None,
        participants: mail.cc.iter().map(|a| a.email_key()).collect(),
    });
    let facts = ThreadFacts {
        subject_number: numbers.first().copied(),
        by_subject: ticket.clone(),
        by_message_id: ticket.filter(|_| !mail.in_reply_to.is_empty()),
        sender: SenderFacts {
            email: mail.from.as_ref().map(|a| a.email_key()),
            forged: postdesk_mail::auth::forged_sender(&mail, "mx.example.com"),
            ..Default::default()
        },
    };
    let _ = thread::decide(&hd.threading, class, &facts);
    let _ = postdesk_mail::strip_reply(&mail.text, hd.settings.reply_marker.as_deref());
});
