//! SMTP with XOAUTH2, reusing (and refreshing) the OAuth2 settings of the helpdesk's IMAP
//! mailbox of the same account, against aiosmtpd and a token server on loopback.

mod common;

use std::time::Duration;

use common::{Desk, mail};
use postdesk_testkit::oauth::TokenServer;
use postdesk_testkit::smtp::{SinkOptions, SmtpSink};

fn desk(tokens: &TokenServer, refresh_token: &str, smtp: &SmtpSink) -> Desk {
    let desk = Desk::new(&format!(
        "[[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = 1\nsecurity = \"none\"\nuser = \"support\"\nauth = \"oauth2\"\n\
         [helpdesk.mailbox.oauth2]\ntoken_url = \"{}\"\nclient_id = \"postdesk\"\nclient_secret = \"client-secret\"\nrefresh_token = \"{refresh_token}\"\n\
         [helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nuser = \"support\"\nauth = \"xoauth2\"\n",
        tokens.token_url(),
        smtp.port()
    ));
    let config = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&config);
    std::fs::write(
        desk.config(),
        format!("{first}\n[outgoing]\nretry_base_secs = 1\nlease_secs = 2\npoll_secs = 1\n{rest}"),
    )
    .unwrap();
    desk
}

fn request(desk: &Desk, n: usize) {
    desk.import_mail(
        &format!("{n}.eml"),
        &mail(
            &[
                ("From", &format!("c{n}@customer.example")),
                ("Subject", &format!("Request {n}")),
            ],
            "Help.",
        ),
    );
}

#[test]
fn smtp_xoauth2_reuses_the_imap_oauth2_account() {
    let tokens = TokenServer::start();
    tokens.client("postdesk", "client-secret");
    tokens.set_rotation(true);
    let smtp =
        SmtpSink::start(SinkOptions::default().oauth2("support", &tokens.introspection_url()));
    let desk = desk(&tokens, &tokens.issue_refresh_token("support"), &smtp);
    request(&desk, 1);
    let out = desk.run(&["outbox", "send"]).ok();
    assert!(out.contains("1 sent"), "{out}");
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(tokens.refresh_count(), 1);
    // The rotated refresh token is the one kept: the next mail still authenticates.
    tokens.set_access_token_lifetime(1);
    request(&desk, 2);
    let out = desk.run(&["outbox", "send"]).ok();
    assert!(out.contains("1 sent"), "{out}");
    assert_eq!(smtp.wait_for(2, Duration::from_secs(10)).len(), 2);
}

#[test]
fn a_revoked_token_keeps_the_mail_queued_with_the_reason() {
    let tokens = TokenServer::start();
    tokens.client("postdesk", "client-secret");
    let smtp =
        SmtpSink::start(SinkOptions::default().oauth2("support", &tokens.introspection_url()));
    let desk = desk(&tokens, &tokens.issue_refresh_token("support"), &smtp);
    tokens.revoke_all();
    request(&desk, 1);
    let out = desk.run(&["outbox", "send"]).ok();
    assert!(out.contains("1 to be retried"), "{out}");
    let list = desk.run(&["outbox", "list"]).ok();
    assert!(list.contains("invalid_grant"), "{list}");
    assert!(smtp.received().is_empty());
}
