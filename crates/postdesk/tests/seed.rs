//! `postdesk dev seed` on a real SQLite file: the asked number of tickets, about three
//! entries each, the same data for the same seed, and no seeding into a database that
//! already holds tickets unless `--force`.

mod common;

use common::Desk;

const SECOND_HELPDESK: &str = r#"
[[helpdesk]]
name = "Sales"
addresses = ["sales@example.com"]
"#;

fn desk() -> Desk {
    Desk::on_sqlite(SECOND_HELPDESK)
}

fn db(desk: &Desk) -> rusqlite::Connection {
    rusqlite::Connection::open(desk.path("data/postdesk.db")).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Everything agents see of the seeded tickets, in a fixed order, as one text.
fn contents(conn: &rusqlite::Connection) -> String {
    let mut text = String::new();
    let mut tickets = conn
        .prepare(
            "SELECT t.number, h.name, t.title, t.status, t.priority, a.name, t.created_at,
                    t.modified_at, c.name,
                    (SELECT group_concat(address) FROM contact_addresses WHERE contact_id = c.id)
             FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id
             JOIN contacts c ON c.id = t.requester_id LEFT JOIN agents a ON a.id = t.assignee_id
             ORDER BY h.name, t.number",
        )
        .unwrap();
    let rows = tickets
        .query_map([], |r| {
            Ok(format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}\n",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .unwrap();
    for row in rows {
        text.push_str(&row.unwrap());
    }
    let mut entries = conn
        .prepare(
            "SELECT e.kind, e.body_text, e.created_at, group_concat(a.safe_name)
             FROM entries e JOIN tickets t ON t.id = e.ticket_id
             LEFT JOIN attachments a ON a.entry_id = e.id
             GROUP BY e.id ORDER BY t.helpdesk_id, t.number, e.created_at, e.kind",
        )
        .unwrap();
    let rows = entries
        .query_map([], |r| {
            Ok(format!(
                "{:?} {:?} {:?} {:?}\n",
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        text.push_str(&row.unwrap());
    }
    text
}

/// The entries count the command printed (`Seeded N tickets with M entries …`).
fn printed_entries(stdout: &str) -> i64 {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "entries").unwrap();
    words[at - 1].parse().unwrap()
}

#[test]
fn seed_makes_the_asked_tickets_the_same_for_a_seed_and_refuses_a_full_database() {
    let desk = desk();
    let out = desk
        .run(&[
            "dev",
            "seed",
            "--tickets",
            "300",
            "--seed",
            "5",
            "--batch",
            "70",
        ])
        .ok();
    assert!(out.contains("Seeded 300 tickets"), "{out}");
    let conn = db(&desk);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets"), 300);
    let entries = count(&conn, "SELECT COUNT(*) FROM entries");
    assert_eq!(entries, printed_entries(&out), "{out}");
    assert!(
        (750..=1050).contains(&entries),
        "about three entries a ticket: {entries}"
    );
    for kind in ["incoming", "note", "event"] {
        let n = count(
            &conn,
            &format!("SELECT COUNT(*) FROM entries WHERE kind = '{kind}'"),
        );
        assert!(n > 0, "no {kind} entries");
    }
    // Both helpdesks, several statuses and languages, some attachments on disk.
    assert_eq!(
        count(&conn, "SELECT COUNT(DISTINCT helpdesk_id) FROM tickets"),
        2
    );
    assert!(count(&conn, "SELECT COUNT(DISTINCT status) FROM tickets") >= 4);
    assert!(
        count(
            &conn,
            "SELECT COUNT(*) FROM tickets WHERE title GLOB '*[а-я]*'"
        ) > 0
    );
    assert!(count(&conn, "SELECT COUNT(*) FROM attachments") > 0);
    let sha: String = conn
        .query_row("SELECT sha256 FROM attachments LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(
        desk.path(&format!("data/attachments/{}/{sha}", &sha[..2]))
            .exists()
    );
    let first = contents(&conn);

    // The same seed in a batch of another size: the same data.
    let again = self::desk();
    again
        .run(&["dev", "seed", "--tickets", "300", "--seed", "5"])
        .ok();
    assert_eq!(contents(&db(&again)), first);
    // Another seed: other data.
    let other = self::desk();
    other
        .run(&["dev", "seed", "--tickets", "300", "--seed", "6"])
        .ok();
    assert_ne!(contents(&db(&other)), first);

    // A database with tickets is refused, untouched, unless --force.
    let refused = desk.run(&["dev", "seed", "--tickets", "10", "--seed", "5"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(contents(&conn), first);
    desk.run(&["dev", "seed", "--tickets", "10", "--seed", "5", "--force"])
        .ok();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tickets"), 310);
}

#[test]
fn bad_seed_arguments_get_a_clear_error() {
    let desk = desk();
    let run = desk.run(&["dev", "seed", "--tickets", "10", "--helpdesks", "3"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("cannot seed 3 helpdesks"),
        "{}",
        run.stderr
    );
    let run = desk.run(&["dev", "seed", "--tickets", "0"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("at least one ticket"), "{}", run.stderr);
    let run = desk.run(&["dev", "seed", "--tickets", "many"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--tickets"), "{}", run.stderr);
}

/// On the engine of the run (PostgreSQL with `POSTDESK_TEST_DATABASE=postgres`): the
/// seeded tickets are listed, each with its entries, and a second seed is refused.
#[test]
fn seed_works_on_the_engine_of_the_run() {
    let desk = Desk::new(SECOND_HELPDESK);
    let out = desk
        .run(&[
            "dev",
            "seed",
            "--tickets",
            "40",
            "--seed",
            "3",
            "--batch",
            "15",
        ])
        .ok();
    assert!(out.contains("Seeded 40 tickets"), "{out}");
    let list = desk.run(&["tickets", "list", "--limit", "0"]).ok();
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 40, "{list}");
    let entries: i64 = rows
        .iter()
        .map(|row| {
            let after_status = row.split_whitespace().nth(3).unwrap_or("0");
            after_status.parse::<i64>().unwrap_or(0)
        })
        .sum();
    assert_eq!(entries, printed_entries(&out), "{list}");
    let refused = desk.run(&["dev", "seed", "--tickets", "5"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
}
