//! The mail rules: conditions and actions, what their mistakes say, and how they
//! combine with threading and the route stage.

use crate::id::{ContactId, TicketId, TicketNumber};
use postdesk_mail::{Address, Attachment, Classification, ParsedMail};

use crate::route::route;
use crate::rules::*;
use crate::settings::{Helpdesk, HelpdeskSettings, UnknownSender};
use crate::thread::{Decision, SenderFacts, ThreadFacts, TicketFacts};

fn cond(field: &str, op: &str, value: Option<&str>) -> ConditionSettings {
    ConditionSettings {
        field: field.into(),
        op: op.into(),
        value: value.map(ScalarValue::from),
        case_sensitive: false,
    }
}

fn rule(
    name: &str,
    conditions: Vec<ConditionSettings>,
    actions: Vec<ActionSettings>,
) -> RuleSettings {
    RuleSettings {
        name: name.into(),
        match_mode: MatchMode::All,
        stop: true,
        conditions,
        actions,
    }
}

fn set(f: impl FnOnce(&mut ActionSettings)) -> ActionSettings {
    let mut a = ActionSettings::named("set");
    f(&mut a);
    a
}

fn settings(rules: Vec<RuleSettings>) -> HelpdeskSettings {
    let mut s = crate::settings::tests::helpdesk("").settings;
    s.reference_format = "[Ticket ID : {number}]".into();
    s.rules = rules;
    s
}

fn helpdesk(rules: Vec<RuleSettings>) -> Helpdesk {
    settings(rules).compile().unwrap()
}

fn compile_error(rules: Vec<RuleSettings>) -> crate::config_issue::ConfigIssue {
    settings(rules).compile().unwrap_err()
}

fn address(name: Option<&str>, email: &str) -> Address {
    Address {
        name: name.map(Into::into),
        email: email.into(),
    }
}

fn attachment(name: &str, inline: bool) -> Attachment {
    Attachment {
        original_name: Some(name.into()),
        safe_name: name.into(),
        mime_type: "application/pdf".into(),
        content_id: None,
        inline,
        sha256: String::new(),
        data: Vec::new(),
    }
}

fn sample() -> ParsedMail {
    ParsedMail {
        subject: "Re: TT19 [Ticket ID : 102] Problem xyz".into(),
        from: Some(address(Some("Jane Doe"), "Jane@ACME.example")),
        to: vec![
            address(None, "support@example.com"),
            address(Some("Sales Team"), "sales@example.com"),
        ],
        cc: vec![address(Some("Carl"), "carl@partner.example")],
        bcc: Vec::new(),
        headers: vec![
            ("X-Priority".into(), "1 (Highest)".into()),
            ("Received".into(), "from a".into()),
            ("Received".into(), "from b".into()),
        ],
        text: "Hello,\nthe invoice INV-2026-001 is wrong.\n".into(),
        attachments: vec![
            attachment("Invoice.PDF", false),
            attachment("logo.png", true),
        ],
        ..ParsedMail::default()
    }
}

/// Whether one condition holds on `mail`.
fn holds(c: ConditionSettings, mail: &ParsedMail, class: Classification) -> bool {
    let hd = helpdesk(vec![rule(
        "r",
        vec![c],
        vec![ActionSettings::named("create-ticket")],
    )]);
    !hd.rules.evaluate(mail, class).is_empty()
}

fn on_sample(field: &str, op: &str, value: Option<&str>) -> bool {
    holds(cond(field, op, value), &sample(), Classification::Normal)
}

#[test]
fn every_operator() {
    assert!(on_sample("subject", "contains", Some("PROBLEM")));
    assert!(!on_sample("subject", "contains", Some("printer")));
    assert!(on_sample("subject", "not-contains", Some("printer")));
    assert!(!on_sample("subject", "not-contains", Some("problem")));
    assert!(on_sample(
        "subject",
        "equals",
        Some(" re: tt19 [ticket id : 102] problem XYZ ")
    ));
    assert!(!on_sample("subject", "equals", Some("Problem xyz")));
    assert!(on_sample("subject", "not-equals", Some("")));
    assert!(!on_sample(
        "subject",
        "not-equals",
        Some("RE: TT19 [Ticket ID : 102] Problem xyz")
    ));
    assert!(on_sample("subject", "starts-with", Some("re: tt19")));
    assert!(!on_sample("subject", "starts-with", Some("TT19")));
    assert!(on_sample("subject", "ends-with", Some("XYZ")));
    assert!(!on_sample("subject", "ends-with", Some("Problem")));
    assert!(on_sample("subject", "regex", Some(r"tt\d+ \[")));
    assert!(!on_sample("subject", "regex", Some(r"^tt\d+")));
    assert!(on_sample("subject", "has-ticket-id", None));
    assert!(!on_sample("body", "has-ticket-id", None));
    assert!(!on_sample("subject", "is-empty", None));
    assert!(on_sample("bcc", "is-empty", None));
    assert!(on_sample("header:X-Missing", "is-empty", None));
}

#[test]
fn case_sensitive_when_told() {
    let mut c = cond("subject", "contains", Some("problem"));
    c.case_sensitive = true;
    assert!(!holds(c.clone(), &sample(), Classification::Normal));
    c.value = Some("Problem".into());
    assert!(holds(c, &sample(), Classification::Normal));
    let mut c = cond("subject", "regex", Some("PROBLEM"));
    c.case_sensitive = true;
    assert!(!holds(c, &sample(), Classification::Normal));
    // Case-insensitive also beyond ASCII.
    let mail = ParsedMail {
        subject: "GRÜSSE aus Köln".into(),
        ..ParsedMail::default()
    };
    assert!(holds(
        cond("subject", "contains", Some("grüsse")),
        &mail,
        Classification::Normal
    ));
}

#[test]
fn every_field() {
    // Address fields: any address, by name or address.
    assert!(on_sample("from", "contains", Some("jane doe")));
    assert!(on_sample("from", "equals", Some("jane@acme.example")));
    assert!(on_sample("from", "ends-with", Some("@acme.example")));
    assert!(on_sample("to", "equals", Some("sales@example.com")));
    assert!(on_sample("to", "equals", Some("Sales Team")));
    assert!(on_sample("to", "not-contains", Some("billing")));
    assert!(!on_sample("to", "not-contains", Some("sales")));
    assert!(on_sample("cc", "starts-with", Some("carl")));
    assert!(!on_sample("bcc", "contains", Some("@")));
    assert!(on_sample("subject", "contains", Some("[ticket id")));
    assert!(on_sample("body", "contains", Some("inv-2026-001")));
    assert!(on_sample("body", "regex", Some(r"(?m)^the invoice")));
    // Headers: any value of that name; the name ignores case.
    assert!(on_sample("header:x-priority", "starts-with", Some("1")));
    assert!(on_sample("header:Received", "equals", Some("from b")));
    assert!(!on_sample("header:X-Missing", "contains", Some("a")));
    assert!(on_sample("header:X-Missing", "equals", Some("")));
    assert!(on_sample("sender-domain", "equals", Some("acme.example")));
    assert!(!on_sample("sender-domain", "equals", Some("example")));
    assert!(on_sample("attachment-name", "ends-with", Some(".pdf")));
    assert!(on_sample("attachment-name", "equals", Some("logo.png")));
    assert!(!on_sample("attachment-name", "has-ticket-id", None));
    let has = |value: bool, mail: &ParsedMail| {
        let c = ConditionSettings {
            value: Some(ScalarValue::Bool(value)),
            ..cond("has-attachment", "equals", None)
        };
        holds(c, mail, Classification::Normal)
    };
    assert!(has(true, &sample()));
    assert!(!has(false, &sample()));
    // Only inline parts (a signature logo) is no attachment.
    let inline_only = ParsedMail {
        attachments: vec![attachment("logo.png", true)],
        ..sample()
    };
    assert!(has(false, &inline_only));
    assert!(holds(
        cond("classification", "equals", Some("auto-reply")),
        &sample(),
        Classification::AutoReply
    ));
    assert!(holds(
        cond("classification", "not-equals", Some("bulk")),
        &sample(),
        Classification::Normal
    ));
}

#[test]
fn a_mail_without_sender_reads_as_empty() {
    let mail = ParsedMail::default();
    assert!(holds(
        cond("from", "is-empty", None),
        &mail,
        Classification::Normal
    ));
    assert!(holds(
        cond("sender-domain", "equals", Some("")),
        &mail,
        Classification::Normal
    ));
    assert!(holds(
        cond("subject", "is-empty", None),
        &mail,
        Classification::Normal
    ));
    assert!(!holds(
        cond("subject", "not-equals", Some("")),
        &mail,
        Classification::Normal
    ));
    assert!(holds(
        cond("attachment-name", "not-contains", Some("x")),
        &mail,
        Classification::Normal
    ));
}

#[test]
fn match_all_any_and_no_conditions() {
    let conditions = vec![
        cond("subject", "contains", Some("problem")),
        cond("from", "contains", Some("nobody")),
    ];
    let all = rule(
        "all",
        conditions.clone(),
        vec![ActionSettings::named("create-ticket")],
    );
    let any = RuleSettings {
        name: "any".into(),
        match_mode: MatchMode::Any,
        ..all.clone()
    };
    let none = rule("none", vec![], vec![ActionSettings::named("create-ticket")]);
    let names = |r: RuleSettings| {
        let hd = helpdesk(vec![r]);
        hd.rules
            .evaluate(&sample(), Classification::Normal)
            .rules()
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    assert!(names(all).is_empty());
    assert_eq!(names(any), ["any"]);
    assert_eq!(names(none), ["none"]);
}

fn priority(p: &str) -> ActionSettings {
    set(|a| a.set.priority = Some(p.into()))
}

#[test]
fn stop_and_precedence() {
    let tag = |t: &str| set(|a| a.set.tags = Some(vec![t.into(), "common".into()]));
    let a = RuleSettings {
        stop: false,
        ..rule("a", vec![], vec![priority("high"), tag("a")])
    };
    let b = rule(
        "b",
        vec![],
        vec![
            priority("low"),
            tag("b"),
            ActionSettings::named("create-ticket"),
        ],
    );
    let c = rule("c", vec![], vec![ActionSettings::named("create-ticket")]);
    let hd = helpdesk(vec![a, b, c]);
    let matched = hd.rules.evaluate(&sample(), Classification::Normal);
    let names: Vec<&str> = matched.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "b stops");
    let d = matched.resolve(false);
    assert_eq!(d.applied, ["a", "b"]);
    assert_eq!(
        d.fields.priority.as_deref(),
        Some("high"),
        "the earlier rule wins"
    );
    assert_eq!(d.fields.tags, ["a", "common", "b"], "tags add up");
    assert_eq!(d.decided_by.as_deref(), Some("b"));
    assert_eq!(d.disposition, Some(Disposition::CreateTicket));
}

#[test]
fn update_ticket_without_a_ticket_is_passed_over() {
    let update = rule(
        "update",
        vec![cond("subject", "has-ticket-id", None)],
        vec![priority("high"), ActionSettings::named("update-ticket")],
    );
    let create = rule(
        "create",
        vec![cond("subject", "not-equals", Some(""))],
        vec![ActionSettings::named("create-ticket")],
    );
    let hd = helpdesk(vec![update, create]);
    let matched = hd.rules.evaluate(&sample(), Classification::Normal);
    assert_eq!(
        matched.rules().len(),
        2,
        "kept: update-ticket may be passed over"
    );
    assert!(matched.depends_on_ticket());
    let found = matched.resolve(true);
    assert_eq!(found.disposition, Some(Disposition::UpdateTicket));
    assert_eq!(found.applied, ["update"]);
    assert_eq!(found.fields.priority.as_deref(), Some("high"));
    let missing = matched.resolve(false);
    assert_eq!(missing.disposition, Some(Disposition::CreateTicket));
    assert_eq!(missing.applied, ["create"]);
    assert_eq!(missing.passed_over, ["update"]);
    assert_eq!(
        missing.fields.priority, None,
        "a passed-over rule sets nothing"
    );
}

fn ticket(id: i64, number: i64) -> TicketFacts {
    TicketFacts {
        id: TicketId::new(id),
        number: TicketNumber::new(number),
        status: "open".into(),
        requester_contact_id: Some(ContactId::new(1)),
        organization_id: None,
        participants: Vec::new(),
    }
}

fn facts(known_sender: bool) -> ThreadFacts {
    ThreadFacts {
        subject_number: Some(TicketNumber::new(102)),
        by_subject: Some(ticket(7, 102)),
        by_message_id: None,
        sender: SenderFacts {
            email: Some("jane@acme.example".into()),
            contact_id: known_sender.then_some(ContactId::new(1)),
            organization_id: None,
            is_agent: false,
            forged: None,
        },
    }
}

fn followup() -> Decision {
    Decision::FollowUp {
        ticket_id: TicketId::new(7),
        set_status: None,
        note: None,
    }
}

#[test]
fn decide_combines_rules_with_threading() {
    let mail = sample();
    let run = |rules: Vec<RuleSettings>, threaded: Decision, class: Classification| {
        let hd = helpdesk(rules);
        let matched = hd.rules.evaluate(&mail, class);
        decide(&hd.threading, class, &facts(true), threaded, &matched)
    };
    // No rules: threading decides.
    assert_eq!(
        run(vec![], followup(), Classification::Normal).decision,
        followup()
    );
    // create-ticket overrides a follow-up and says so.
    let create = rule(
        "always new",
        vec![],
        vec![ActionSettings::named("create-ticket")],
    );
    let ruled = run(vec![create.clone()], followup(), Classification::Normal);
    let Decision::NewTicket { note: Some(note) } = &ruled.decision else {
        panic!("{ruled:?}")
    };
    assert!(
        note.contains("#102") && note.contains("always new"),
        "{note}"
    );
    // Ignore and reject carry the rule's name and reason.
    let ignore = rule(
        "newsletters",
        vec![],
        vec![ActionSettings {
            reason: Some("newsletter".into()),
            folder: Some("News".into()),
            ..ActionSettings::named("ignore")
        }],
    );
    let ruled = run(vec![ignore], followup(), Classification::Normal);
    assert_eq!(
        ruled.decision,
        Decision::Ignore {
            reason: "rule \"newsletters\": newsletter".into()
        }
    );
    assert_eq!(ruled.rules.ignore_folder(), Some("News"));
    let reject = rule("no", vec![], vec![ActionSettings::named("reject")]);
    assert_eq!(
        run(vec![reject], followup(), Classification::Normal).decision,
        Decision::Reject {
            reason: "rule \"no\": rejected".into()
        }
    );
    // Loops are never touched.
    let loop_ignored = Decision::Ignore {
        reason: "loop".into(),
    };
    assert_eq!(
        run(vec![create], loop_ignored.clone(), Classification::Loop).decision,
        loop_ignored
    );
}

#[test]
fn create_ticket_follows_the_unknown_sender_policy() {
    let mut s = settings(vec![rule(
        "new",
        vec![],
        vec![ActionSettings::named("create-ticket")],
    )]);
    s.unknown_sender = UnknownSender::Reject;
    let hd = s.compile().unwrap();
    let matched = hd.rules.evaluate(&sample(), Classification::Normal);
    let ruled = decide(
        &hd.threading,
        Classification::Normal,
        &facts(false),
        followup(),
        &matched,
    );
    assert!(
        matches!(ruled.decision, Decision::Reject { .. }),
        "{ruled:?}"
    );
    let ruled = decide(
        &hd.threading,
        Classification::Normal,
        &facts(true),
        followup(),
        &matched,
    );
    assert!(
        matches!(ruled.decision, Decision::NewTicket { .. }),
        "{ruled:?}"
    );
}

#[test]
fn the_note_names_rules_and_fields() {
    let hd = helpdesk(vec![rule(
        "billing",
        vec![],
        vec![set(|a| {
            a.set.priority = Some("high".into());
            a.set.tags = Some(vec!["vip".into()]);
        })],
    )]);
    let d = hd
        .rules
        .evaluate(&sample(), Classification::Normal)
        .resolve(false);
    assert_eq!(
        d.note().as_deref(),
        Some("Set by mail rule \"billing\": priority high, tags vip.")
    );
}

#[test]
fn route_hands_over_to_another_helpdesk() {
    let to_billing = rule(
        "billing",
        vec![cond("sender-domain", "equals", Some("acme.example"))],
        vec![
            set(|a| a.set.helpdesk = Some("Billing".into())),
            ActionSettings::named("create-ticket"),
        ],
    );
    let hd = helpdesk(vec![to_billing]);
    let r = route(&hd, &sample(), Classification::Normal);
    assert_eq!(r.helpdesk.as_deref(), Some("Billing"));
    assert_eq!(r.matched.rules().len(), 1);
    // Never for loops.
    let r = route(&hd, &sample(), Classification::Loop);
    assert_eq!(r.helpdesk, None);
    assert!(r.matched.is_empty());
    // Naming its own helpdesk is no hand-over.
    let to_self = rule(
        "self",
        vec![],
        vec![set(|a| a.set.helpdesk = Some("support".into()))],
    );
    assert_eq!(
        route(&helpdesk(vec![to_self]), &sample(), Classification::Normal).helpdesk,
        None
    );
}

#[test]
fn routing_assumes_a_referenced_mail_finds_its_ticket() {
    let update = rule(
        "update",
        vec![cond("subject", "has-ticket-id", None)],
        vec![ActionSettings::named("update-ticket")],
    );
    let to_billing = rule(
        "billing",
        vec![],
        vec![set(|a| a.set.helpdesk = Some("Billing".into()))],
    );
    let hd = helpdesk(vec![update, to_billing]);
    assert_eq!(route(&hd, &sample(), Classification::Normal).helpdesk, None);
    let new_mail = ParsedMail {
        subject: "Invoice wrong".into(),
        ..sample()
    };
    assert_eq!(
        route(&hd, &new_mail, Classification::Normal)
            .helpdesk
            .as_deref(),
        Some("Billing")
    );
}

#[test]
fn explain_shows_every_condition() {
    let hd = helpdesk(vec![
        RuleSettings {
            match_mode: MatchMode::Any,
            ..rule(
                "r1",
                vec![
                    cond("subject", "contains", Some("printer")),
                    cond("subject", "has-ticket-id", None),
                ],
                vec![ActionSettings::named("update-ticket")],
            )
        },
        rule(
            "r2",
            vec![cond("from", "contains", Some("nobody"))],
            vec![priority("low")],
        ),
    ]);
    let trace = hd.rules.explain(&sample(), Classification::Normal);
    assert_eq!(trace.len(), 2);
    assert!(trace[0].matched);
    assert_eq!(
        trace[0].conditions[0].condition,
        "subject contains \"printer\""
    );
    assert!(!trace[0].conditions[0].holds);
    assert!(trace[0].conditions[1].holds);
    assert_eq!(
        trace[0].conditions[1].texts,
        ["Re: TT19 [Ticket ID : 102] Problem xyz"]
    );
    assert!(!trace[1].matched);
    assert_eq!(
        trace[1].conditions[0].texts,
        ["Jane Doe", "Jane@ACME.example"]
    );
    assert_eq!(trace[0].rule.describe_actions(), ["update-ticket"]);
    assert_eq!(trace[1].rule.describe_actions(), ["set priority low"]);
}

#[test]
fn errors_name_rule_and_key() {
    let create = || vec![ActionSettings::named("create-ticket")];
    let check = |rules: Vec<RuleSettings>, key: &str, words: &[&str]| {
        let e = compile_error(rules);
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        for w in words {
            assert!(e.message.contains(w), "{w:?} missing in: {e}");
        }
    };
    check(
        vec![
            rule("ok", vec![], create()),
            rule("bad", vec![cond("fromm", "contains", Some("x"))], create()),
        ],
        "rule[1].conditions[0].field",
        &["in rule \"bad\"", "`fromm`", "sender-domain"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("from", "contanis", Some("x"))],
            create(),
        )],
        "rule[0].conditions[0].op",
        &["`contanis`", "not-contains", "has-ticket-id"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("subject", "regex", Some("(unclosed"))],
            create(),
        )],
        "rule[0].conditions[0].value",
        &["not a valid regex"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("body", "regex", Some(r"\w{1000}\w{1000}\w{1000}"))],
            create(),
        )],
        "rule[0].conditions[0].value",
        &["too large"],
    );
    check(
        vec![rule("r", vec![], vec![])],
        "rule[0].actions",
        &["at least one action"],
    );
    check(
        vec![rule("r", vec![cond("subject", "contains", None)], create())],
        "rule[0].conditions[0].value",
        &["needs a `value`"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("subject", "is-empty", Some("x"))],
            create(),
        )],
        "rule[0].conditions[0].value",
        &["takes no `value`"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("from", "has-ticket-id", None)],
            create(),
        )],
        "rule[0].conditions[0].op",
        &["has-ticket-id"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("has-attachment", "contains", Some("x"))],
            create(),
        )],
        "rule[0].conditions[0].op",
        &["true or false"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("classification", "equals", Some("newsletter"))],
            create(),
        )],
        "rule[0].conditions[0].value",
        &["auto-reply", "bulk"],
    );
    check(
        vec![rule(
            "r",
            vec![cond("header:", "contains", Some("x"))],
            create(),
        )],
        "rule[0].conditions[0].field",
        &["header:X-Priority"],
    );
    check(
        vec![rule("r", vec![], vec![ActionSettings::named("forward")])],
        "rule[0].actions[0].action",
        &["`forward`", "update-ticket"],
    );
    check(
        vec![rule(
            "r",
            vec![],
            vec![
                ActionSettings::named("create-ticket"),
                ActionSettings::named("ignore"),
            ],
        )],
        "rule[0].actions[1].action",
        &["already does `create-ticket`"],
    );
    check(
        vec![rule("r", vec![], vec![ActionSettings::named("set")])],
        "rule[0].actions[0].action",
        &["at least one field"],
    );
    check(
        vec![rule(
            "r",
            vec![],
            vec![ActionSettings {
                set: WrittenFields {
                    priority: Some("high".into()),
                    ..WrittenFields::default()
                },
                ..ActionSettings::named("ignore")
            }],
        )],
        "rule[0].actions[0].priority",
        &["belongs to a `set` action"],
    );
    check(
        vec![rule(
            "r",
            vec![],
            vec![
                set(|a| a.set.helpdesk = Some("B".into())),
                ActionSettings::named("update-ticket"),
            ],
        )],
        "rule[0].actions",
        &["cannot also `set helpdesk`"],
    );
    check(
        vec![rule(
            "r",
            vec![],
            vec![priority("high"), ActionSettings::named("reject")],
        )],
        "rule[0].actions",
        &["no ticket fields"],
    );
    check(
        vec![rule(
            "r",
            vec![],
            vec![set(|a| a.set.tags = Some(vec![" ".into()]))],
        )],
        "rule[0].actions[0].tags",
        &["blank"],
    );
    check(
        vec![rule("r", vec![], vec![priority("high"), priority("low")])],
        "rule[0].actions[1].priority",
        &["already set"],
    );
    check(
        vec![
            rule("Same", vec![], create()),
            rule("same", vec![], create()),
        ],
        "rule[1].name",
        &["unique"],
    );
    check(
        vec![rule(" ", vec![], create())],
        "rule[0].name",
        &["needs a name"],
    );
}

#[test]
fn hostile_bodies_are_bounded_and_never_panic() {
    // The keyword lies past the limit; a multi-byte character straddles it.
    let mut text = "é".repeat(BODY_MATCH_LIMIT / 2 + 1);
    text.push_str("needle");
    let mail = ParsedMail {
        text,
        ..ParsedMail::default()
    };
    assert!(!holds(
        cond("body", "contains", Some("needle")),
        &mail,
        Classification::Normal
    ));
    assert!(holds(
        cond("body", "contains", Some("ééé")),
        &mail,
        Classification::Normal
    ));
    // Control characters, NULs and odd Unicode in headers and names are just text.
    let odd = ParsedMail {
        subject: "\u{0}\u{202e}[Ticket ID : 99999999999999999999]".into(),
        from: Some(address(Some("\u{130}stanbul"), "@")),
        headers: vec![("X-\u{1F600}".into(), "\u{0}".into())],
        ..ParsedMail::default()
    };
    for field in [
        "from",
        "subject",
        "sender-domain",
        "header:X-Odd",
        "body",
        "attachment-name",
    ] {
        for op in [
            "contains",
            "equals",
            "starts-with",
            "ends-with",
            "regex",
            "not-equals",
        ] {
            holds(cond(field, op, Some("i̇")), &odd, Classification::Normal);
        }
    }
    assert!(!holds(
        cond("subject", "has-ticket-id", None),
        &odd,
        Classification::Normal
    ));
}
