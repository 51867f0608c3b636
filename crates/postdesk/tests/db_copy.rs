//! `postdesk db copy`: a SQLite store made by importing mails is copied into a fresh
//! database on the tests' PostgreSQL, interrupted and resumed, verified, and used
//! afterwards; a target holding anything else is refused.

mod common;

use std::time::Instant;

use common::{Desk, HELPDESK, mail};
use postdesk_testkit::postgres::PostgresServer;

fn server() -> &'static PostgresServer {
    PostgresServer::shared().expect("this test needs a PostgreSQL (see .ci/run)")
}

/// `n` mails as files in `dir`: new requests, every third a reply to the one before
/// (In-Reply-To), every fifth with an attachment.
fn write_mails(desk: &Desk, dir: &str, n: usize, tag: &str) {
    let folder = desk.path(dir);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 1..=n {
        let id = format!("<{tag}-{i}@customer.example>");
        let previous = format!("<{tag}-{}@customer.example>", i - 1);
        let from = format!("Customer {} <c{}@customer.example>", i % 97, i % 97);
        let subject = format!("Request {i} from {tag}");
        let mut headers = vec![
            ("From", from.as_str()),
            ("Subject", subject.as_str()),
            ("Message-ID", id.as_str()),
        ];
        if i % 3 == 0 {
            headers.push(("In-Reply-To", previous.as_str()));
        }
        let text = if i % 5 == 0 {
            let boundary = "b0undary";
            let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
            headers.push(("MIME-Version", "1.0"));
            let body = format!(
                "--{boundary}\nContent-Type: text/plain; charset=utf-8\n\nMail number {i}, with a file: ünïcødé.\n\
                 --{boundary}\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"f{i}.bin\"\n\
                 Content-Transfer-Encoding: base64\n\nAAECAwQFBgcICQoLDA0ODxAREhM=\n--{boundary}--"
            );
            let mut all = headers.clone();
            all.push(("Content-Type", content_type.as_str()));
            mail(&all, &body)
        } else {
            mail(&headers, &format!("Mail number {i}.\nIt needs an answer."))
        };
        std::fs::write(
            folder.join(format!("{i:05}.eml")),
            text.replace('\n', "\r\n"),
        )
        .unwrap();
    }
}

fn sqlite_count(desk: &Desk, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(desk.path("data/postdesk.db")).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn postgres_count(url: &str, table: &str) -> i64 {
    let database = url.rsplit('/').next().unwrap();
    server()
        .psql(database, &format!("SELECT COUNT(*) FROM {table}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_store_of_2000_mails_is_copied_interrupted_resumed_and_verified() {
    const MAILS: usize = 2000;
    let desk = Desk::on_sqlite("");
    write_mails(&desk, "mails", MAILS, "big");
    let imported = desk.run(&["import", "mails"]).ok();
    assert!(imported.contains(&MAILS.to_string()), "{imported}");
    desk.run(&["tickets", "set-status", "1", "closed"]).ok();
    let url = server().fresh_database();
    let from = "sqlite://data/postdesk.db";

    let started = Instant::now();
    let stopped = desk.run(&[
        "db",
        "copy",
        "--from",
        from,
        "--to",
        &url,
        "--stop-after-rows",
        "3000",
    ]);
    assert_ne!(stopped.code, 0, "{}", stopped.stdout);
    assert!(
        stopped
            .stderr
            .contains("run the same command again to resume"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stdout.contains("a new copy"), "{}", stopped.stdout);
    assert!(
        stopped.stdout.contains("3000 rows written in this run"),
        "{}",
        stopped.stdout
    );

    let resumed = desk.run(&["db", "copy", "--from", from, "--to", &url]).ok();
    assert!(
        resumed.contains("resuming the copy already under way"),
        "{resumed}"
    );
    assert!(resumed.contains("Copied and verified"), "{resumed}");
    eprintln!(
        "copy of {MAILS} mails, interrupted and resumed: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let again = desk.run(&["db", "copy", "--from", from, "--to", &url]).ok();
    assert!(again.contains("0 rows written in this run"), "{again}");
    assert!(again.contains("Copied and verified"), "{again}");

    for table in [
        "tickets",
        "entries",
        "intake",
        "attachments",
        "contacts",
        "agents",
        "outbox",
        "ticket_participants",
    ] {
        let rows = sqlite_count(&desk, table);
        assert_eq!(postgres_count(&url, table), rows, "{table}");
        assert!(rows > 0 || table == "outbox", "{table} has rows to copy");
    }
    assert_eq!(sqlite_count(&desk, "intake"), MAILS as i64);
    // The search index is built on the target, one document a ticket.
    assert_eq!(
        postgres_count(&url, "ticket_search"),
        sqlite_count(&desk, "tickets")
    );

    // The copy is a working store: new rows get new ids (the sequences were moved on).
    let tickets = postgres_count(&url, "tickets");
    let pg = Desk::on_sqlite("");
    std::fs::write(
        pg.config(),
        format!("data_dir = \"data\"\ndatabase_url = \"{url}\"\n{HELPDESK}"),
    )
    .unwrap();
    pg.import_mail(
        "new.eml",
        &mail(
            &[
                ("From", "new@customer.example"),
                ("Subject", "After the move"),
            ],
            "Hello",
        ),
    );
    assert_eq!(postgres_count(&url, "tickets"), tickets + 1);
    assert!(pg.list().contains("After the move"));
    // Once used, the copy is no longer the source's: copying again compares and fails.
    let changed = desk.run(&["db", "copy", "--from", from, "--to", &url]);
    assert_ne!(changed.code, 0);
    assert!(
        changed.stderr.contains("differs from the source"),
        "{}",
        changed.stderr
    );
}

#[test]
fn a_target_holding_anything_else_is_refused_and_left_alone() {
    let first = Desk::on_sqlite("");
    write_mails(&first, "mails", 5, "first");
    first.run(&["import", "mails"]).ok();
    let second = Desk::on_sqlite("");
    write_mails(&second, "mails", 3, "second");
    second.run(&["import", "mails"]).ok();
    let from = "sqlite://data/postdesk.db";

    // A database in use: migrated, with a ticket of its own.
    let used = server().fresh_database();
    let owner = Desk::on_sqlite("");
    std::fs::write(
        owner.config(),
        format!("data_dir = \"data\"\ndatabase_url = \"{used}\"\n{HELPDESK}"),
    )
    .unwrap();
    owner.run(&["db", "migrate"]).ok();
    owner.import_mail(
        "own.eml",
        &mail(&[("From", "x@example.org"), ("Subject", "Mine")], "x"),
    );
    let refused = first.run(&["db", "copy", "--from", from, "--to", &used]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("the target is not empty"),
        "{}",
        refused.stderr
    );
    assert_eq!(postgres_count(&used, "tickets"), 1, "nothing was written");

    // A database holding (part of) a copy of another store.
    let url = server().fresh_database();
    let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
    first
        .run(&["db", "copy", "--from", from, "--to", &url])
        .ok();
    let other = second.run(&["db", "copy", "--from", from, "--to", &with_password]);
    assert_ne!(other.code, 0);
    assert!(
        other.stderr.contains("a copy of another database"),
        "{}",
        other.stderr
    );
    assert!(!other.stdout.contains("hunter2") && !other.stderr.contains("hunter2"));
    assert!(other.stdout.contains("postgres:***@"), "{}", other.stdout);
}
