//! Deadlines end to end through the command line (issue 18): set on a new ticket and
//! shown by `tickets show`, met by an agent's reply, set by hand as an event, and
//! escalated by `serve` through the outbox to a real SMTP server on loopback: a warning
//! and a breach, each exactly once, across a restart of `serve` and with two instances
//! running at once (on PostgreSQL with `POSTDESK_TEST_DATABASE=postgres`); and the
//! weekly reports of `postdesk report`, as CSV and as a table.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Desk, mail};
use postdesk_testkit::smtp::{Received, SinkOptions, SmtpSink};

/// Support with a round-the-clock calendar, escalating to a team.
fn helpdesk(sink: &SmtpSink) -> String {
    format!(
        r#"closed_statuses = ["closed"]
[helpdesk.smtp]
host = "127.0.0.1"
port = {}
security = "none"
[helpdesk.notifications]
acknowledge = false
new_ticket = "none"
follow_up = "none"
teams = {{ leads = ["lead@example.com"] }}
[helpdesk.sla]
time_zone = "Europe/Amsterdam"
pause_statuses = ["waiting-for-customer"]
[helpdesk.sla.hours]
mon = "00:00-24:00"
tue = "00:00-24:00"
wed = "00:00-24:00"
thu = "00:00-24:00"
fri = "00:00-24:00"
sat = "00:00-24:00"
sun = "00:00-24:00"
[[helpdesk.sla.policy]]
name = "standard"
first_response = "4h"
resolution = "40h"
warn_before = "30m"
escalate_to = ["team:leads", "assignee"]
"#,
        sink.port()
    )
}

/// A desk whose `serve` polls every second and serves no web UI.
fn desk(sink: &SmtpSink) -> Desk {
    let desk = Desk::new(&helpdesk(sink));
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let (first, rest) = common::split_top(&text);
    std::fs::write(
        desk.config(),
        format!("{first}\n[outgoing]\npoll_secs = 1\n[web]\nenabled = false\n{rest}"),
    )
    .unwrap();
    desk
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn serve(desk: &Desk) -> Child {
    Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", desk.config().to_str().unwrap(), "serve"])
        .current_dir(desk.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The escalation mails the sink has, as their subjects.
fn escalations(received: &[Received]) -> Vec<String> {
    let mut subjects: Vec<String> = received
        .iter()
        .map(|r| postdesk_mail::parse(&r.raw).subject)
        .filter(|s| s.contains("Warning:") || s.contains("Breached:"))
        .collect();
    subjects.sort();
    subjects
}

/// Waits until the sink holds `n` escalations (or the time is up); returns them.
fn wait_for_escalations(sink: &SmtpSink, n: usize, timeout: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let got = escalations(&sink.received());
        if got.len() >= n || started.elapsed() > timeout {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn new_ticket(desk: &Desk, n: usize) {
    desk.import_mail(
        &format!("m{n}.eml"),
        &mail(
            &[
                ("From", "Alice <alice@customer.example>"),
                ("Subject", &format!("Printer {n} on fire")),
                ("Message-ID", &format!("<m{n}@customer.example>")),
            ],
            "Help.",
        ),
    );
}

#[test]
fn a_new_ticket_has_deadlines_a_reply_meets_the_first_response_and_a_hand_set_one_is_an_event() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(&sink);
    new_ticket(&desk, 1);
    let shown = desk.show(1);
    assert!(shown.contains("Deadlines:"), "{shown}");
    assert!(
        shown.contains("First response  due ")
            && (shown.contains("in 4 h") || shown.contains("in 3 h")),
        "4 h of round-the-clock time: {shown}"
    );
    assert!(shown.contains("Resolution      due "), "{shown}");
    desk.run(&["reply", "1", "--message", "We are on it."]).ok();
    let shown = desk.show(1);
    let first = shown
        .lines()
        .find(|l| l.contains("First response"))
        .unwrap();
    assert!(first.contains("  met "), "{shown}");
    // By hand: recorded as an event, shown as set by hand.
    let out = desk
        .run(&[
            "tickets",
            "set-deadline",
            "1",
            "resolution",
            "2030-01-02 12:00",
        ])
        .ok();
    assert!(
        out.contains("Resolution deadline set from ")
            && out.contains(" to 2030-01-02 12:00 UTC by postdesk."),
        "{out}"
    );
    let shown = desk.show(1);
    assert!(shown.contains("Resolution deadline set from "), "{shown}");
    assert!(
        shown.contains("due 2030-01-02 12:00 UTC") && shown.contains("(set by hand)"),
        "{shown}"
    );
    let bad = desk.run(&["tickets", "set-deadline", "1", "resolution", "soon"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("is not a time"), "{}", bad.stderr);
    // Closing meets the resolution.
    desk.run(&["tickets", "set-status", "1", "closed"]).ok();
    let shown = desk.show(1);
    let resolution = shown.lines().find(|l| l.contains("Resolution  ")).unwrap();
    assert!(resolution.contains("  met "), "{shown}");
}

#[test]
fn warnings_and_breaches_are_sent_once_across_a_restart_and_two_instances() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(&sink);
    new_ticket(&desk, 1);
    // Due in three seconds: the warning (30 min before) is due at once, the breach soon.
    let due = (now() + 3).to_string();
    desk.run(&["tickets", "set-deadline", "1", "first_response", &due])
        .ok();
    let first = serve(&desk);
    let got = wait_for_escalations(&sink, 2, Duration::from_secs(30));
    stop(first);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("[HD#1] Breached: first response was due "),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("[HD#1] Warning: first response due "),
        "{got:?}"
    );
    let to: Vec<String> = sink
        .received()
        .iter()
        .flat_map(|r| r.envelope_to.clone())
        .collect();
    assert!(to.iter().all(|a| a == "lead@example.com"), "{to:?}");
    // Restarted: nothing again.
    let again = serve(&desk);
    std::thread::sleep(Duration::from_secs(4));
    stop(again);
    assert_eq!(escalations(&sink.received()).len(), 2);
    let shown = desk.show(1);
    assert_eq!(
        shown.matches("Warning: first response due").count(),
        1,
        "{shown}"
    );
    assert_eq!(
        shown.matches("Breached: first response was due").count(),
        1,
        "{shown}"
    );
    assert!(shown.contains("Mailed to lead@example.com"), "{shown}");

    // Two instances at once, on two more tickets' deadlines.
    new_ticket(&desk, 2);
    new_ticket(&desk, 3);
    let due = (now() + 3).to_string();
    for n in ["2", "3"] {
        desk.run(&["tickets", "set-deadline", n, "first_response", &due])
            .ok();
    }
    let (a, b) = (serve(&desk), serve(&desk));
    let got = wait_for_escalations(&sink, 6, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    stop(a);
    stop(b);
    let got_now = escalations(&sink.received());
    assert_eq!(got_now.len(), 6, "{got_now:?} (first seen: {got:?})");
    for n in [2, 3] {
        for kind in ["Warning", "Breached"] {
            let prefix = format!("[HD#{n}] {kind}:");
            assert_eq!(
                got_now.iter().filter(|s| s.starts_with(&prefix)).count(),
                1,
                "{got_now:?}"
            );
        }
    }
}

#[test]
fn a_calendar_without_hours_is_a_config_error_naming_file_line_and_key() {
    let desk = Desk::new(
        "[helpdesk.sla]\ntime_zone = \"UTC\"\n[helpdesk.sla.hours]\nmon = \"\"\n[[helpdesk.sla.policy]]\nname = \"x\"\nresolution = \"1h\"\n",
    );
    let run = desk.run(&["check-config"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("helpdesk.sla.hours") && run.stderr.contains("no working hours"),
        "{}",
        run.stderr
    );
    // The line of the hours table in the file as written.
    let text = std::fs::read_to_string(desk.config()).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("[helpdesk.sla.hours]"))
        .unwrap()
        + 1;
    assert!(
        run.stderr
            .contains(&format!("postdesk.toml:{line}: helpdesk.sla.hours:")),
        "{}",
        run.stderr
    );
}

/// `serve` with its web UI on a free port, once it listens.
fn serve_web(desk: &Desk) -> (Child, u16) {
    let port = postdesk_testkit::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", desk.config().to_str().unwrap()])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// An agent with an API token; returns the token.
fn agent_token(desk: &Desk, name: &str, helpdesk: &str, role: &str) -> String {
    desk.run_with_stdin(
        &[
            "agents",
            "add",
            name,
            "--helpdesk",
            helpdesk,
            "--role",
            role,
        ],
        Some(b"a long password\n"),
    )
    .ok();
    desk.run(&["agents", "token", name]).ok().trim().to_string()
}

/// One HTTP request with an API token; the status line and the body.
fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> (String, String) {
    let body = body.unwrap_or("");
    common::http_exchange(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn the_list_shows_a_sortable_due_column_with_filters_and_the_ticket_page_each_target() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = Desk::new(&helpdesk(&sink));
    let token = agent_token(&desk, "root", "Support", "admin");
    let ann = agent_token(&desk, "ann", "Support", "agent");
    new_ticket(&desk, 1);
    new_ticket(&desk, 2);
    new_ticket(&desk, 3);
    // #2 overdue by three hours; #3 answered (its first response met); #1 as set.
    let late = (now() - 3 * 3600 - 60).to_string();
    desk.run(&["tickets", "set-deadline", "2", "first_response", &late])
        .ok();
    desk.run(&["reply", "3", "--message", "Done."]).ok();
    let (mut child, port) = serve_web(&desk);
    let (status, page) = http(port, "GET", "/tickets?sort=due&order=asc", &token, None);
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("<th>Due</th>"), "{page}");
    assert!(page.contains(">overdue 3 h<"), "{page}");
    let order: Vec<usize> = [
        "Printer 2 on fire",
        "Printer 1 on fire",
        "Printer 3 on fire",
    ]
    .iter()
    .map(|t| {
        page.find(t)
            .unwrap_or_else(|| panic!("{t} not listed: {page}"))
    })
    .collect();
    assert!(
        order[0] < order[1] && order[1] < order[2],
        "soonest first: {order:?}"
    );
    let (_, overdue) = http(port, "GET", "/tickets?due=overdue", &token, None);
    assert!(overdue.contains("Printer 2 on fire"), "{overdue}");
    assert!(!overdue.contains("Printer 1 on fire"), "{overdue}");
    let (_, today) = http(port, "GET", "/tickets?due=today", &token, None);
    assert!(
        !today.contains("Printer 2 on fire"),
        "overdue is not due today: {today}"
    );
    let (status, _) = http(port, "GET", "/tickets?due=soon", &token, None);
    assert!(status.contains("400"), "{status}");
    // The API: the list's due, a ticket's deadlines, one set by hand.
    let (_, list) = http(port, "GET", "/api/tickets?sort=due&order=asc", &token, None);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let first = &list["tickets"][0];
    assert_eq!(first["number"], 2);
    assert_eq!(first["due"]["overdue"], true);
    assert_eq!(first["due"]["target"], "first_response");
    let id_of = |n: i64| {
        list["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["number"] == n)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    // An internal note is no reply: ticket 1's first response still runs.
    let (status, _) = http(
        port,
        "POST",
        &format!("/api/tickets/{}/notes", id_of(1)),
        &token,
        Some(r#"{"text": "Looking into it."}"#),
    );
    assert!(status.contains("200"), "{status}");
    let (_, noted) = http(
        port,
        "GET",
        &format!("/api/tickets/{}/deadlines", id_of(1)),
        &token,
        None,
    );
    let noted: serde_json::Value = serde_json::from_str(&noted).unwrap();
    assert_eq!(noted["deadlines"][0]["target"], "first_response");
    assert_eq!(noted["deadlines"][0]["standing"], "running", "{noted}");
    let answered = id_of(3);
    let (_, page) = http(port, "GET", &format!("/tickets/{answered}"), &token, None);
    assert!(page.contains("<h2>Deadlines</h2>"), "{page}");
    assert!(
        page.contains(r#"<tr class="deadline met"><th>First response</th>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<tr class="deadline running"><th>Resolution</th>"#),
        "{page}"
    );
    let (_, json) = http(
        port,
        "GET",
        &format!("/api/tickets/{answered}/deadlines"),
        &token,
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["deadlines"][0]["standing"], "met");
    assert_eq!(json["deadlines"][1]["target"], "resolution");
    // Ann watches #1, so a deadline moved on it is a change she hears of (issue 17);
    // root, who moves it, does not.
    let (status, _) = http(
        port,
        "POST",
        &format!("/api/tickets/{}/watch", id_of(1)),
        &ann,
        Some(r#"{"watch": true}"#),
    );
    assert!(status.contains("200"), "{status}");
    let told = |token: &str| -> Vec<String> {
        let (_, json) = http(port, "GET", "/api/notifications", token, None);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        json["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap_or_default().to_string())
            .filter(|text| text.contains("deadline"))
            .collect()
    };
    assert_eq!(told(&ann), Vec::<String>::new());
    let (status, set) = http(
        port,
        "PUT",
        &format!("/api/tickets/{}/deadlines/resolution", id_of(1)),
        &token,
        Some(r#"{"due": "2030-01-02 12:00"}"#),
    );
    assert!(status.contains("200"), "{status} {set}");
    assert!(set.contains("by root."), "{set}");
    let ann_told = told(&ann);
    assert_eq!(ann_told.len(), 1, "{ann_told:?}");
    assert!(
        ann_told[0].contains("Resolution deadline set from ")
            && ann_told[0].contains("2030-01-02 12:00 UTC by root."),
        "{ann_told:?}"
    );
    assert_eq!(
        told(&token),
        Vec::<String>::new(),
        "not the agent who acted"
    );
    let (status, bad) = http(
        port,
        "PUT",
        &format!("/api/tickets/{}/deadlines/someday", id_of(1)),
        &token,
        Some(r#"{"due": 1}"#),
    );
    assert!(
        status.contains("400") && bad.contains("is not one of"),
        "{status} {bad}"
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(desk.show(1).contains("Resolution deadline set from "));
}

/// Support with interventions: closing and reopening as given.
fn intervention_desk(close: bool, reopen: bool) -> Desk {
    Desk::new(&format!(
        r#"closed_statuses = ["closed"]
reply_status = "open"
[helpdesk.interventions]
intervention_text = "Job {{{{{{0}}}}}} of {{1}}: {{3}}\n{{2}}"
close_when_interventions_done = {close}
reopen_with_intervention = {reopen}
"#
    ))
}

fn status_of(desk: &Desk, number: i64) -> String {
    let shown = desk.show(number);
    shown
        .lines()
        .nth(1)
        .and_then(|l| l.split(" · status ").nth(1))
        .and_then(|l| l.split(" · ").next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_intervention_is_prefilled_from_the_template_with_all_four_placeholders() {
    let desk = intervention_desk(false, false);
    new_ticket(&desk, 1);
    let out = desk
        .run(&["interventions", "add", "1", "--start", "2026-12-07 08:00"])
        .ok();
    let shown = desk.show(1);
    let reported = shown
        .lines()
        .find_map(|l| l.strip_prefix("reported "))
        .unwrap()
        .to_string();
    assert!(
        out.contains(&format!(
            "Job {{[HD#1]}} of {reported}: Printer 1 on fire\nHelp."
        )),
        "{out}\n{shown}"
    );
    let list = desk.run(&["interventions", "list"]).ok();
    assert!(
        list.contains("planned") && list.contains("#1") && list.contains("2026-12-07 08:00 UTC"),
        "{list}"
    );
    assert!(
        shown.contains("Intervention 1 planned by postdesk."),
        "{shown}"
    );
    let listed = desk.show(1);
    assert!(
        listed.contains("Interventions:\n") && listed.contains("Job {[HD#1]}"),
        "tickets show lists them: {listed}"
    );
    // An unknown placeholder is a config error with file, line and key.
    let bad = Desk::new("[helpdesk.interventions]\nintervention_text = \"see {4}\"\n");
    let run = bad.run(&["check-config"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("helpdesk.interventions.intervention_text: `{4}` is not a placeholder"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(bad.config()).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("intervention_text"))
        .unwrap()
        + 1;
    assert!(
        run.stderr.contains(&format!("postdesk.toml:{line}:")),
        "{}",
        run.stderr
    );
}

#[test]
fn the_last_done_intervention_closes_the_ticket_only_when_set() {
    for close in [true, false] {
        let desk = intervention_desk(close, true);
        new_ticket(&desk, 1);
        desk.run(&["interventions", "add", "1", "--text", "Replace the fuser"])
            .ok();
        desk.run(&["interventions", "add", "1", "--text", "Check the toner"])
            .ok();
        desk.run(&[
            "interventions",
            "set",
            "1",
            "--status",
            "done",
            "--minutes",
            "45",
        ])
        .ok();
        assert_eq!(status_of(&desk, 1), "email-imported", "one is still open");
        let out = desk
            .run(&[
                "interventions",
                "set",
                "2",
                "--status",
                "done",
                "--report",
                "All fine.",
            ])
            .ok();
        let shown = desk.show(1);
        if close {
            assert_eq!(status_of(&desk, 1), "closed", "{shown}");
            assert!(
                out.contains(
                    "#1: Status changed from email-imported to closed: intervention 2 is done."
                ),
                "{out}"
            );
            assert!(
                shown.contains("intervention 2 is done"),
                "the event names it: {shown}"
            );
            // Reopened with its intervention (reopen_with_intervention = true).
            desk.run(&["interventions", "set", "2", "--status", "in-progress"])
                .ok();
            assert_eq!(status_of(&desk, 1), "open");
        } else {
            assert_eq!(status_of(&desk, 1), "email-imported", "{shown}");
            assert!(!out.contains("Status changed"), "{out}");
        }
        let list = desk
            .run(&["interventions", "list", "--status", "done"])
            .ok();
        assert!(list.contains("Replace the fuser"), "{list}");
    }
    // Reopening off: the ticket stays closed.
    let desk = intervention_desk(true, false);
    new_ticket(&desk, 1);
    desk.run(&["interventions", "add", "1", "--text", "Fix"])
        .ok();
    desk.run(&["interventions", "set", "1", "--status", "done"])
        .ok();
    assert_eq!(status_of(&desk, 1), "closed");
    desk.run(&["interventions", "set", "1", "--status", "planned"])
        .ok();
    assert_eq!(status_of(&desk, 1), "closed");
    let bad = desk.run(&["interventions", "set", "1", "--status", "finished"]);
    assert_ne!(bad.code, 0);
}

#[test]
fn interventions_on_the_ticket_page_the_api_and_my_week() {
    let desk = intervention_desk(true, false);
    // A second helpdesk, whose agent must not reach Support's interventions.
    let text = std::fs::read_to_string(desk.config()).unwrap();
    std::fs::write(
        desk.config(),
        format!("{text}\n[[helpdesk]]\nname = \"Sales\"\naddresses = [\"sales@example.com\"]\n"),
    )
    .unwrap();
    let token = agent_token(&desk, "ann", "Support", "agent");
    let stranger = agent_token(&desk, "sid", "Sales", "agent");
    new_ticket(&desk, 1);
    let (mut child, port) = serve_web(&desk);
    let (_, list) = http(port, "GET", "/api/tickets", &token, None);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list["tickets"][0]["id"].as_i64().unwrap();
    // The page offers the template's text.
    let (_, page) = http(port, "GET", &format!("/tickets/{id}"), &token, None);
    assert!(page.contains("<h2>Interventions</h2>"), "{page}");
    assert!(page.contains("Job {[HD#1]} of "), "prefilled: {page}");
    // Planned through the API, for this week, to ann.
    let start = form_time(now());
    let (status, added) = http(
        port,
        "POST",
        &format!("/api/tickets/{id}/interventions"),
        &token,
        Some(&format!(
            r#"{{"assignee": "ann", "planned_start": "{start}"}}"#
        )),
    );
    assert!(status.contains("200"), "{status} {added}");
    let added: serde_json::Value = serde_json::from_str(&added).unwrap();
    assert_eq!(added["status"], "planned");
    assert!(
        added["text"]
            .as_str()
            .unwrap()
            .contains("Printer 1 on fire"),
        "{added}"
    );
    let intervention = added["id"].as_i64().unwrap();
    let (_, mine) = http(port, "GET", "/interventions", &token, None);
    assert!(mine.contains("My interventions this week"), "{mine}");
    assert!(mine.contains("Printer 1 on fire"), "{mine}");
    let (_, theirs) = http(port, "GET", "/interventions", &stranger, None);
    assert!(!theirs.contains("Printer 1 on fire"), "{theirs}");
    let (status, _) = http(
        port,
        "PATCH",
        &format!("/api/interventions/{intervention}"),
        &stranger,
        Some(r#"{"status": "done"}"#),
    );
    assert!(status.contains("404"), "another helpdesk's agent: {status}");
    let (status, done) = http(
        port,
        "PATCH",
        &format!("/api/interventions/{intervention}"),
        &token,
        Some(r#"{"status": "done", "minutes_spent": 90, "report": "Fuser replaced."}"#),
    );
    assert!(status.contains("200"), "{status} {done}");
    let done: serde_json::Value = serde_json::from_str(&done).unwrap();
    assert_eq!(done["intervention"]["minutes_spent"], 90);
    assert!(
        done["ticket_event"]
            .as_str()
            .unwrap()
            .contains("intervention 1 is done"),
        "{done}"
    );
    let (_, page) = http(port, "GET", &format!("/tickets/{id}"), &token, None);
    assert!(page.contains("Fuser replaced."), "{page}");
    assert!(
        page.contains(r#"<span class="status">closed</span>"#),
        "{page}"
    );
    let (status, bad) = http(
        port,
        "PATCH",
        &format!("/api/interventions/{intervention}"),
        &token,
        Some(r#"{"status": "finished"}"#),
    );
    assert!(
        status.contains("400") && bad.contains("is not one of"),
        "{status} {bad}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `YYYY-MM-DD HH:MM` of `unix`, in UTC, as the forms take it.
fn form_time(unix: i64) -> String {
    postdesk_core::time::format_time(unix)
        .trim_end_matches(" UTC")
        .to_string()
}

/// A customer's follow-up to ticket 1 (threaded by In-Reply-To).
fn follow_up(desk: &Desk, n: usize) {
    desk.import_mail(
        &format!("f{n}.eml"),
        &mail(
            &[
                ("From", "Alice <alice@customer.example>"),
                ("Subject", "Re: Printer 1 on fire"),
                ("Message-ID", &format!("<f{n}@customer.example>")),
                ("In-Reply-To", "<m1@customer.example>"),
            ],
            "Still burning.",
        ),
    );
}

#[test]
fn a_follow_up_moves_a_running_deadline_only_with_recalculate_deadline() {
    let sink = SmtpSink::start(SinkOptions::default());
    for recalculate in [true, false] {
        let desk = Desk::new(&format!(
            "[helpdesk.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             [helpdesk.sla]\ntime_zone = \"UTC\"\nrecalculate_deadline = {recalculate}\n\
             [helpdesk.sla.hours]\nmon = \"00:00-24:00\"\ntue = \"00:00-24:00\"\n\
             wed = \"00:00-24:00\"\nthu = \"00:00-24:00\"\nfri = \"00:00-24:00\"\n\
             sat = \"00:00-24:00\"\nsun = \"00:00-24:00\"\n\
             [[helpdesk.sla.policy]]\nname = \"p\"\nfirst_response = \"1h\"\n\
             next_response = \"2h\"\nresolution = \"8h\"\n",
            sink.port()
        ));
        new_ticket(&desk, 1);
        desk.run(&["reply", "1", "--message", "On it."]).ok();
        follow_up(&desk, 1);
        let shown = desk.show(1);
        assert!(
            shown.contains("Next response   due "),
            "the follow-up starts it: {shown}"
        );
        // Both moved far by hand; the next follow-up counts them anew only when set.
        for target in ["next_response", "resolution"] {
            desk.run(&["tickets", "set-deadline", "1", target, "2030-01-02 12:00"])
                .ok();
        }
        follow_up(&desk, 2);
        let shown = desk.show(1);
        let line = |name: &str| {
            shown
                .lines()
                .find(|l| l.starts_with(&format!("  {name:<15} due ")))
                .unwrap_or_else(|| panic!("{name}: {shown}"))
                .to_string()
        };
        for name in ["Next response", "Resolution"] {
            let l = line(name);
            if recalculate {
                assert!(
                    !l.contains("2030-01-02"),
                    "recounted from the follow-up: {l}"
                );
                assert!(!l.contains("set by hand"), "{l}");
            } else {
                assert!(l.contains("due 2030-01-02 12:00 UTC"), "it stands: {l}");
            }
        }
    }
}

/// `report`'s CSV as rows of cells (no cell here holds a comma or a quote).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn report_gives_the_weeks_numbers_as_csv_and_as_a_table() {
    let sink = SmtpSink::start(SinkOptions::default());
    let desk = desk(&sink);
    for n in 1..=3 {
        new_ticket(&desk, n);
    }
    desk.run(&["reply", "1", "--message", "We are on it."]).ok();
    desk.run(&["tickets", "set-status", "2", "closed"]).ok();
    // Around today, whichever side of an Amsterdam Monday midnight the test runs.
    let day = |offset: i64| postdesk_core::time::format_time(now() + offset)[..10].to_string();
    let (since, until) = (day(-86_400), day(86_400));
    let csv = desk
        .run(&[
            "report", "--since", &since, "--until", &until, "--format", "csv",
        ])
        .ok();
    let rows = csv_rows(&csv);
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(header[0], "helpdesk");
    assert!(
        rows.len() >= 2 && rows.len() <= 3,
        "one or two weeks: {csv}"
    );
    assert!(
        rows[1..].iter().all(|r| r.len() == header.len()
            && r[0] == "Support"
            && r[column("time_zone")] == "Europe/Amsterdam"),
        "{csv}"
    );
    let sum = |name: &str| -> u64 {
        rows[1..]
            .iter()
            .map(|r| r[column(name)].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(sum("created"), 3, "{csv}");
    assert_eq!(sum("closed"), 1, "{csv}");
    assert_eq!(sum("first_responses"), 1, "{csv}");
    assert_eq!(sum("resolved"), 1, "{csv}");
    // The reply met its first-response deadline (due in 4 h, inside the period); the
    // closed ticket's first response stopped, the others still run: in neither column.
    assert_eq!(sum("first_response_met"), 1, "{csv}");
    assert_eq!(sum("first_response_missed"), 0, "{csv}");
    let answered = rows[1..]
        .iter()
        .find(|r| r[column("first_responses")] == "1")
        .unwrap();
    let median: i64 = answered[column("first_response_median_seconds")]
        .parse()
        .unwrap();
    assert!((0..120).contains(&median), "{csv}");
    let table = desk
        .run(&[
            "report",
            "--since",
            &since,
            "--until",
            &until,
            "--helpdesk",
            "support",
        ])
        .ok();
    assert!(table.starts_with("helpdesk "), "{table}");
    assert!(table.contains("Support in Europe/Amsterdam"), "{table}");
    let bad = desk.run(&["report", "--since", "last week"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("is not a date"), "{}", bad.stderr);
    let unknown = desk.run(&["report", "--since", &since, "--helpdesk", "Nope"]);
    assert!(
        unknown.stderr.contains("no helpdesk named `Nope`"),
        "{}",
        unknown.stderr
    );
}
