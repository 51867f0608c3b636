//! The whole loop through real servers: a customer's mail arrives in Dovecot, `postdesk
//! serve` makes a ticket and sends the acknowledgement over SMTP, the customer answers the
//! acknowledgement (threaded only by In-Reply-To, subject edited), the answer lands on the
//! same ticket.

mod common;

use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
use postdesk_testkit::smtp::{SinkOptions, SmtpSink};

#[test]
fn customer_mail_acknowledgement_and_answer_thread_into_one_ticket() {
    let imap = Dovecot::start(DovecotOptions::default().user("support", "secret"));
    let smtp = SmtpSink::start(SinkOptions::default());
    let desk = Desk::new(&format!(
        "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nuser = \"support\"\npassword = \"secret\"\ncreate_folders = true\n\
         [helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        imap.imap_port(),
        smtp.port()
    ));
    let config = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&config);
    std::fs::write(
        desk.config(),
        format!("{first}\n[outgoing]\nretry_base_secs = 1\nlease_secs = 2\npoll_secs = 1\n{rest}"),
    )
    .unwrap();

    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let request = mail(
        &[
            ("From", "Jane Doe <jane@customer.example>"),
            ("Subject", "Printer on fire"),
            ("Message-ID", "<first@customer.example>"),
        ],
        "It is burning.",
    );
    imap.append("support", "INBOX", request.replace('\n', "\r\n").as_bytes());
    let acks = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(acks.len(), 1, "the acknowledgement was sent by serve");
    let ack = postdesk_mail::parse(&acks[0].raw);
    assert_eq!(ack.subject, "[HD#1] Printer on fire — registered");
    let ack_id = ack
        .message_id
        .clone()
        .expect("the acknowledgement has a Message-ID");

    // The customer answers the acknowledgement, with a subject of her own.
    let answer = mail(
        &[
            ("From", "jane@customer.example"),
            ("Subject", "it is out now"),
            ("Message-ID", "<second@customer.example>"),
            ("In-Reply-To", &format!("<{ack_id}>")),
        ],
        "The fire brigade came.\n\nOn Monday, Support wrote:\n> We registered your request.",
    );
    imap.append("support", "INBOX", answer.replace('\n', "\r\n").as_bytes());
    let started = Instant::now();
    while imap.folder_count("support", "Processed") < 2
        && started.elapsed() < Duration::from_secs(15)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(serve.id().to_string())
        .status()
        .unwrap();
    assert!(serve.wait().unwrap().success());
    assert_eq!(imap.folder_count("support", "Processed"), 2);
    let list = desk.list();
    assert_eq!(list.lines().count(), 2, "one ticket: {list}");
    let ticket = desk.show(1);
    assert!(ticket.contains("The fire brigade came."), "{ticket}");
    assert!(
        !ticket.contains("We registered your request"),
        "the quote is cut: {ticket}"
    );
}
