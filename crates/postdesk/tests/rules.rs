//! Mail rules end to end: the CRM mail-scanner setup in both orders, routing,
//! field setting, ignore, reject, every field and operator, match any/all, stop,
//! config errors, and the `rules test` simulator.

mod common;

use common::{Desk, mail};

/// The mail-scanner rules CRMs document, in the right order.
const SCANNER: &str = r#"
reference_format = "[Ticket ID : {number}]"
first_ticket_number = 102

[[helpdesk.rule]]
name = "reply updates its ticket"
conditions = [{ field = "subject", op = "has-ticket-id" }]
actions = [{ action = "update-ticket" }]

[[helpdesk.rule]]
name = "new mail opens a ticket"
conditions = [{ field = "subject", op = "not-equals", value = "" }]
actions = [{ action = "create-ticket" }]
"#;

/// The same two rules, the other way round.
const SCANNER_REVERSED: &str = r#"
reference_format = "[Ticket ID : {number}]"
first_ticket_number = 102

[[helpdesk.rule]]
name = "new mail opens a ticket"
conditions = [{ field = "subject", op = "not-equals", value = "" }]
actions = [{ action = "create-ticket" }]

[[helpdesk.rule]]
name = "reply updates its ticket"
conditions = [{ field = "subject", op = "has-ticket-id" }]
actions = [{ action = "update-ticket" }]
"#;

fn customer_request(desk: &Desk) {
    let out = desk.import_mail(
        "request.eml",
        &mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", "Problem xyz"),
                ("Message-ID", "<req@customer.example>"),
            ],
            "Our xyz does not work.\n",
        ),
    );
    assert!(out.contains("created #102"), "{out}");
}

fn customer_reply(desk: &Desk, name: &str) -> String {
    desk.import_mail(
        name,
        &mail(
            &[
                ("From", "Jane Doe <jane@customer.example>"),
                ("Subject", "Re: TT19 [Ticket ID : 102] Problem xyz"),
            ],
            &format!("Still broken ({name}).\n"),
        ),
    )
}

#[test]
fn mail_scanner_reply_updates_ticket_102_and_new_mail_creates_ticket_and_contact() {
    let desk = Desk::new(SCANNER);
    customer_request(&desk);
    let out = customer_reply(&desk, "reply.eml");
    assert!(out.contains("appended #102"), "{out}");
    let ticket = desk.show(102);
    assert!(ticket.contains("Still broken (reply.eml)."), "{ticket}");
    assert!(ticket.contains("status customer-replied"), "{ticket}");

    let out = desk.import_mail(
        "new.eml",
        &mail(
            &[
                ("From", "Max Muster <max@newcomer.example>"),
                ("Subject", "Cannot log in"),
            ],
            "Login fails.\n",
        ),
    );
    assert!(out.contains("created #103"), "{out}");
    let ticket = desk.show(103);
    assert!(
        ticket.contains("requester Max Muster <max@newcomer.example>"),
        "a contact was created for the sender: {ticket}"
    );
    let list = desk
        .run(&["tickets", "list", "--requester", "newcomer"])
        .ok();
    assert!(list.contains("max@newcomer.example"), "{list}");
}

#[test]
fn an_unknown_ticket_id_passes_over_update_ticket_to_the_next_rule() {
    let desk = Desk::new(SCANNER);
    customer_request(&desk);
    let out = desk.import_mail(
        "stale.eml",
        &mail(
            &[
                ("From", "jane@customer.example"),
                ("Subject", "Re: [Ticket ID : 999] old thing"),
            ],
            "x\n",
        ),
    );
    assert!(out.contains("created #103"), "{out}");
}

#[test]
fn update_ticket_keeps_the_closed_ticket_policy() {
    let desk = Desk::new(&format!("reply_to_closed = \"reject\"\n{SCANNER}"));
    customer_request(&desk);
    desk.run(&["tickets", "set-status", "102", "closed"]).ok();
    let out = customer_reply(&desk, "late.eml");
    assert!(
        out.contains("failed (reply to closed ticket #102 (reply_to_closed = reject))"),
        "the reply belongs to ticket 102, so update-ticket applies and the policy holds: {out}"
    );
}

#[test]
fn with_the_rules_reversed_every_reply_opens_a_new_ticket() {
    let desk = Desk::new(SCANNER_REVERSED);
    customer_request(&desk);
    for (i, expected) in [(1, "created #103"), (2, "created #104")] {
        let out = customer_reply(&desk, &format!("reply{i}.eml"));
        assert!(out.contains(expected), "{out}");
    }
    let ticket = desk.show(102);
    assert!(!ticket.contains("Still broken"), "{ticket}");
    let ticket = desk.show(103);
    assert!(
        ticket.contains(
            "Rule \"new mail opens a ticket\" opened a new ticket although the mail belongs to ticket #102."
        ),
        "{ticket}"
    );
}

#[test]
fn a_rule_hands_mail_to_another_helpdesk_with_fields_and_tags() {
    let desk = Desk::new(
        r#"
[[helpdesk.rule]]
name = "acme goes to billing"
conditions = [
  { field = "sender-domain", op = "equals", value = "acme.example" },
  { field = "header:X-Priority", op = "starts-with", value = "1", case_sensitive = true },
]
actions = [{ action = "set", helpdesk = "Billing", priority = "high", tags = ["vip"] }]

[[helpdesk]]
name = "Billing"
addresses = ["billing@example.com"]
reference_format = "[BILL#{number}]"
"#,
    );
    let out = desk.import_mail(
        "1.eml",
        &mail(
            &[
                ("From", "Jane <jane@acme.example>"),
                ("Subject", "Invoice wrong"),
                ("X-Priority", "1 (Highest)"),
            ],
            "The invoice is wrong.\n",
        ),
    );
    assert!(out.contains("created #1"), "{out}");
    let ticket = desk
        .run(&["tickets", "show", "1", "--helpdesk", "Billing"])
        .ok();
    assert!(ticket.contains("helpdesk Billing"), "{ticket}");
    assert!(ticket.contains("priority high"), "{ticket}");
    assert!(ticket.contains("tags vip"), "{ticket}");
    assert!(
        ticket.contains("Handed over from helpdesk Support by mail rule \"acme goes to billing\"."),
        "{ticket}"
    );
    // The reply, sent to support@ again, is handed over too and threads in Billing.
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "jane@acme.example"),
                ("Subject", "Re: [BILL#1] Invoice wrong"),
                ("X-Priority", "1"),
            ],
            "Any news?\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
    // Not from acme (and X-Priority is case-sensitive text, here absent): stays in Support.
    let out = desk.import_mail(
        "3.eml",
        &mail(
            &[("From", "bob@other.example"), ("Subject", "Hello")],
            "hi\n",
        ),
    );
    assert!(out.contains("created #1"), "{out}");
    let list = desk.run(&["tickets", "list", "--helpdesk", "Support"]).ok();
    assert!(list.contains("bob@other.example"), "{list}");
}

#[test]
fn set_gives_every_field_on_new_tickets_and_follow_ups() {
    let desk = Desk::on_sqlite(
        r#"
[[helpdesk.rule]]
name = "classify outages"
match = "any"
conditions = [
  { field = "subject", op = "contains", value = "outage" },
  { field = "body", op = "contains", value = "down" },
]
actions = [{ action = "set", status = "triage", priority = "urgent", type = "incident", category = "network", subcategory = "vpn", environment = "production", assignee = "oncall@example.com", manager = "Lead Larry", tags = ["outage", "p1"] }]
"#,
    );
    let out = desk.import_mail(
        "1.eml",
        &mail(
            &[("From", "ops@customer.example"), ("Subject", "VPN outage")],
            "Everything is down.\n",
        ),
    );
    assert!(out.contains("created #1"), "{out}");
    let ticket = desk.show(1);
    for expected in [
        "status triage",
        "priority urgent",
        "type incident · category network · subcategory vpn · environment production · assignee oncall@example.com · manager Lead Larry · tags outage, p1",
        "Set by mail rule \"classify outages\": status triage, priority urgent, type incident, category network, subcategory vpn, environment production, assignee oncall@example.com, manager Lead Larry, tags outage, p1.",
    ] {
        assert!(
            ticket.contains(expected),
            "{expected:?} missing in:\n{ticket}"
        );
    }
    // A follow-up matching the rule gets its fields too (status wins over reply_status).
    let out = desk.import_mail(
        "2.eml",
        &mail(
            &[
                ("From", "ops@customer.example"),
                ("Subject", "Re: [HD#1] VPN outage"),
            ],
            "still down\n",
        ),
    );
    assert!(out.contains("appended #1"), "{out}");
    assert!(desk.show(1).contains("status triage"));
    // Agents named by rules were created once.
    let agents = query(
        &desk,
        "SELECT COUNT(*) FROM agents WHERE name IN ('oncall@example.com', 'Lead Larry')",
    );
    assert_eq!(agents, 2);
}

#[test]
fn ignore_keeps_the_mail_in_the_ledger_with_the_rule_reason() {
    let desk = Desk::on_sqlite(
        r#"
[[helpdesk.rule]]
name = "newsletters"
match = "any"
conditions = [
  { field = "header:List-Id", op = "not-equals", value = "" },
  { field = "classification", op = "equals", value = "bulk" },
]
actions = [{ action = "ignore", folder = "Newsletters", reason = "newsletter" }]
"#,
    );
    let out = desk.import_mail(
        "news.eml",
        &mail(
            &[
                ("From", "news@vendor.example"),
                ("Subject", "Our November news"),
                ("List-Id", "<news.vendor.example>"),
            ],
            "News!\n",
        ),
    );
    assert!(
        out.contains("ignored (rule \"newsletters\": newsletter)"),
        "{out}"
    );
    assert!(desk.list().contains("No tickets."));
    let ignored = query(
        &desk,
        "SELECT COUNT(*) FROM intake WHERE outcome = 'ignored' AND reason = 'rule \"newsletters\": newsletter' AND length(raw) > 0",
    );
    assert_eq!(ignored, 1, "recorded with its raw mail");
}

#[test]
fn reject_puts_the_mail_in_the_failed_queue_with_the_rule_reason() {
    let desk = Desk::new(
        r#"
[[helpdesk.rule]]
name = "no executables"
conditions = [{ field = "attachment-name", op = "regex", value = '\.(exe|scr|js)$' }]
actions = [{ action = "reject", reason = "executable attachment" }]
"#,
    );
    let raw = "From: x@evil.example\nTo: support@example.com\nSubject: invoice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"Invoice.PDF.exe\"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--b--\n";
    let out = desk.import_mail("evil.eml", raw);
    assert!(
        out.contains("failed (rule \"no executables\": executable attachment)"),
        "{out}"
    );
    let failed = desk.run(&["failed", "list"]).ok();
    assert!(failed.contains("executable attachment"), "{failed}");
    assert!(desk.list().contains("No tickets."));
}

#[test]
fn create_ticket_follows_the_unknown_sender_policy() {
    let desk = Desk::new(
        r#"
unknown_sender = "reject"

[[helpdesk.rule]]
name = "everything opens a ticket"
actions = [{ action = "create-ticket" }]
"#,
    );
    let out = desk.import_mail(
        "1.eml",
        &mail(&[("From", "stranger@x.example"), ("Subject", "hi")], "x\n"),
    );
    assert!(out.contains("failed (unknown sender"), "{out}");
}

/// One mail against a rule per field and operator, each `stop = false` and tagging
/// the ticket with its name: the tags say exactly which rules matched.
#[test]
fn every_field_and_operator_match_any_all_and_stop() {
    let rules: &[(&str, &str, &str)] = &[
        // (name, match, conditions)
        (
            "yes-from-name",
            "all",
            r#"{ field = "from", op = "contains", value = "jane doe" }"#,
        ),
        (
            "yes-from-address",
            "all",
            r#"{ field = "from", op = "equals", value = "JANE@acme.example" }"#,
        ),
        (
            "no-from-not-contains",
            "all",
            r#"{ field = "from", op = "not-contains", value = "acme" }"#,
        ),
        (
            "yes-to-any-address",
            "all",
            r#"{ field = "to", op = "equals", value = "sales@example.com" }"#,
        ),
        (
            "yes-to-name",
            "all",
            r#"{ field = "to", op = "equals", value = "sales team" }"#,
        ),
        (
            "yes-cc-starts-with",
            "all",
            r#"{ field = "cc", op = "starts-with", value = "carl" }"#,
        ),
        (
            "yes-bcc-ends-with",
            "all",
            r#"{ field = "bcc", op = "ends-with", value = "@example.org" }"#,
        ),
        (
            "yes-subject-regex",
            "all",
            r#"{ field = "subject", op = "regex", value = '^invoice \d{4}' }"#,
        ),
        (
            "no-subject-regex-case",
            "all",
            r#"{ field = "subject", op = "regex", value = "^INVOICE", case_sensitive = true }"#,
        ),
        (
            "yes-subject-not-equals",
            "all",
            r#"{ field = "subject", op = "not-equals", value = "" }"#,
        ),
        (
            "no-subject-equals",
            "all",
            r#"{ field = "subject", op = "equals", value = "invoice" }"#,
        ),
        (
            "yes-subject-ends-with",
            "all",
            r#"{ field = "subject", op = "ends-with", value = "WRONG" }"#,
        ),
        (
            "no-subject-case-sensitive",
            "all",
            r#"{ field = "subject", op = "ends-with", value = "WRONG", case_sensitive = true }"#,
        ),
        (
            "no-subject-ticket-id",
            "all",
            r#"{ field = "subject", op = "has-ticket-id" }"#,
        ),
        (
            "no-subject-is-empty",
            "all",
            r#"{ field = "subject", op = "is-empty" }"#,
        ),
        (
            "yes-body-contains",
            "all",
            r#"{ field = "body", op = "contains", value = "order 4711" }"#,
        ),
        (
            "yes-body-ticket-id",
            "all",
            r#"{ field = "body", op = "has-ticket-id" }"#,
        ),
        (
            "yes-body-not-contains",
            "all",
            r#"{ field = "body", op = "not-contains", value = "unsubscribe" }"#,
        ),
        (
            "yes-header",
            "all",
            r#"{ field = "header:x-priority", op = "starts-with", value = "1" }"#,
        ),
        (
            "no-header-missing",
            "all",
            r#"{ field = "header:X-Missing", op = "contains", value = "a" }"#,
        ),
        (
            "yes-header-missing-is-empty",
            "all",
            r#"{ field = "header:X-Missing", op = "is-empty" }"#,
        ),
        (
            "yes-sender-domain",
            "all",
            r#"{ field = "sender-domain", op = "equals", value = "ACME.example" }"#,
        ),
        (
            "no-sender-domain",
            "all",
            r#"{ field = "sender-domain", op = "equals", value = "example" }"#,
        ),
        (
            "yes-attachment-name",
            "all",
            r#"{ field = "attachment-name", op = "ends-with", value = ".pdf" }"#,
        ),
        (
            "yes-has-attachment",
            "all",
            r#"{ field = "has-attachment", op = "equals", value = true }"#,
        ),
        (
            "no-has-no-attachment",
            "all",
            r#"{ field = "has-attachment", op = "equals", value = false }"#,
        ),
        (
            "yes-classification",
            "all",
            r#"{ field = "classification", op = "equals", value = "normal" }"#,
        ),
        (
            "no-classification",
            "all",
            r#"{ field = "classification", op = "not-equals", value = "normal" }"#,
        ),
        (
            "yes-match-any",
            "any",
            r#"{ field = "subject", op = "contains", value = "nothing-here" }, { field = "from", op = "contains", value = "jane" }"#,
        ),
        (
            "no-match-all",
            "all",
            r#"{ field = "subject", op = "contains", value = "nothing-here" }, { field = "from", op = "contains", value = "jane" }"#,
        ),
        (
            "yes-match-all",
            "all",
            r#"{ field = "subject", op = "contains", value = "invoice" }, { field = "from", op = "contains", value = "jane" }"#,
        ),
    ];
    let mut config = String::new();
    for (name, mode, conditions) in rules {
        config.push_str(&format!(
            "\n[[helpdesk.rule]]\nname = \"{name}\"\nmatch = \"{mode}\"\nstop = false\nconditions = [{conditions}]\nactions = [{{ action = \"set\", tags = [\"{name}\"] }}]\n"
        ));
    }
    // A stopping rule, then one that is never reached.
    config.push_str("\n[[helpdesk.rule]]\nname = \"yes-stops\"\nactions = [{ action = \"set\", tags = [\"yes-stops\"] }]\n");
    config.push_str("\n[[helpdesk.rule]]\nname = \"no-after-stop\"\nactions = [{ action = \"set\", tags = [\"no-after-stop\"] }]\n");
    let desk = Desk::new(&config);
    let raw = "From: Jane Doe <jane@acme.example>\nTo: support@example.com, Sales Team <sales@example.com>\nCc: Carl <carl@partner.example>\nBcc: hidden@example.org\nSubject: Invoice 2026 is wrong\nX-Priority: 1 (Highest)\nMessage-ID: <every@acme.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nOur order 4711 was billed twice, see [HD#77].\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"Invoice-2026.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n";
    let out = desk.import_mail("every.eml", raw);
    assert!(out.contains("created #1"), "{out}");
    let ticket = desk.show(1);
    let tags = ticket
        .lines()
        .find_map(|l| l.strip_prefix("tags "))
        .unwrap_or_else(|| panic!("no tags line in:\n{ticket}"));
    let got: Vec<&str> = tags.split(", ").collect();
    let mut expected: Vec<&str> = rules
        .iter()
        .map(|(name, _, _)| *name)
        .chain(["yes-stops", "no-after-stop"])
        .filter(|name| name.starts_with("yes-"))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn config_errors_name_the_rule_and_the_line() {
    let desk = Desk::on_sqlite(
        r#"
[[helpdesk.rule]]
name = "fine"
actions = [{ action = "create-ticket" }]

[[helpdesk.rule]]
name = "typo"
conditions = [
  { field = "subject", op = "contians", value = "x" },
]
actions = [{ action = "create-ticket" }]
"#,
    );
    let run = desk.run(&["check-config"]);
    assert_eq!(run.code, 1);
    let expected = format!(
        "{}:14: helpdesk.rule[1].conditions[0].op: in rule \"typo\": unknown operator `contians`",
        desk.config().display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);

    for (bad, line, words) in [
        (
            "conditions = [{ field = \"subjet\", op = \"contains\", value = \"x\" }]\nactions = [{ action = \"ignore\" }]",
            9,
            "unknown field `subjet`",
        ),
        (
            "conditions = [{ field = \"body\", op = \"regex\", value = \"[a-\" }]\nactions = [{ action = \"ignore\" }]",
            9,
            "is not a valid regex",
        ),
        ("conditions = []", 7, "a rule needs at least one action"),
        (
            "actions = [{ action = \"set\", helpdesk = \"Nowhere\" }]",
            9,
            "no helpdesk named `Nowhere`",
        ),
        (
            "actions = [{ action = \"delete\" }]",
            9,
            "unknown action `delete`",
        ),
        (
            "action = [{ action = \"ignore\" }]",
            9,
            "unknown field `action`",
        ),
    ] {
        desk.write_config(&format!("\n[[helpdesk.rule]]\nname = \"bad one\"\n{bad}\n"));
        let run = desk.run(&["check-config"]);
        assert_eq!(run.code, 1, "{bad}");
        let at = format!("{}:{line}:", desk.config().display());
        assert!(run.stderr.contains(&at), "{at} for {bad}: {}", run.stderr);
        assert!(run.stderr.contains("in rule \"bad one\""), "{}", run.stderr);
        assert!(run.stderr.contains(words), "{words}: {}", run.stderr);
    }
}

#[test]
fn rules_test_shows_conditions_actions_and_the_ticket_without_writing() {
    let desk = Desk::on_sqlite(SCANNER);
    // No database yet: nothing is created, not even the data folder.
    let reply = mail(
        &[
            ("From", "Jane Doe <jane@customer.example>"),
            ("Subject", "Re: TT19 [Ticket ID : 102] Problem xyz"),
        ],
        "Still broken.\n",
    )
    .replace('\n', "\r\n");
    std::fs::write(desk.path("reply.eml"), &reply).unwrap();
    let out = desk
        .run(&["rules", "test", "--helpdesk", "Support", "reply.eml"])
        .ok();
    assert!(out.contains("No database yet"), "{out}");
    assert!(out.contains("classification normal"), "{out}");
    assert!(
        out.contains("1. \"reply updates its ticket\" (match all): matched, passed over"),
        "{out}"
    );
    assert!(out.contains("✓ subject has-ticket-id"), "{out}");
    assert!(
        out.contains("Result: new ticket #102 in Support (rule \"new mail opens a ticket\"), requester jane@customer.example (a new contact)"),
        "{out}"
    );
    assert!(!desk.path("data").exists(), "nothing written");

    customer_request(&desk);
    let db = desk.path("data/postdesk.db");
    let before = std::fs::read(&db).unwrap();
    // From stdin (no file), and with `-` among files.
    for args in [vec!["rules", "test"], vec!["rules", "test", "-"]] {
        let out = desk.run_with_stdin(&args, Some(reply.as_bytes())).ok();
        assert!(out.contains("opened read-only"), "{out}");
        assert!(
            out.contains("1. \"reply updates its ticket\" (match all): matched, applies"),
            "{out}"
        );
        assert!(
            out.contains("2. \"new mail opens a ticket\" (match all): matched, not reached"),
            "{out}"
        );
        assert!(
            out.contains("Result: added to ticket #102 \"Problem xyz\" in Support, status email-imported → customer-replied"),
            "{out}"
        );
    }
    // A failing condition shows what the field read.
    let new = mail(&[("From", "a@b.example"), ("Subject", "")], "x\n");
    let out = desk
        .run_with_stdin(&["rules", "test"], Some(new.as_bytes()))
        .ok();
    assert!(
        out.contains("✗ subject not-equals \"\"   read: \"\""),
        "{out}"
    );
    assert!(out.contains("Result: new ticket #103"), "{out}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database is unchanged"
    );
    assert!(!desk.show(102).contains("Still broken."));
    // Already imported mails say so.
    let out = desk.run(&["rules", "test", "request.eml"]).ok();
    assert!(
        out.contains("already imported (created, ticket #102)"),
        "{out}"
    );
}

#[test]
fn rules_test_names_the_helpdesks_when_one_is_unknown() {
    let desk = Desk::new(SCANNER);
    let run = desk.run_with_stdin(&["rules", "test", "--helpdesk", "Sales"], Some(b""));
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no helpdesk named `Sales` is configured; the helpdesks are Support"),
        "{}",
        run.stderr
    );
}

/// A number from the database (read-only use).
fn query(desk: &Desk, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        desk.path("data/postdesk.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}
