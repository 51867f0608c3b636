//! `postdesk backup` while an import writes, and `postdesk restore` of what it wrote:
//! a consistent store with every count and hash checked, a tampered or incomplete
//! backup refused (naming the file), a store that is there kept unless `--force`, and
//! PostgreSQL pointed to its own tools.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Desk, HELPDESK};
use postdesk_testkit::postgres::PostgresServer;

const MAILS: usize = 4000;

/// A Maildir of `mails` mails: new tickets, follow-ups on them, and every fifth with an
/// attachment (`image/png`) of its own bytes.
fn write_maildir(dir: &Path, mails: usize) {
    let new = dir.join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::create_dir_all(dir.join("cur")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    for n in 0..mails {
        let threading = if n % 3 == 2 {
            format!("In-Reply-To: <m{}@example.org>\r\n", n - 1)
        } else {
            String::new()
        };
        let body = format!("Mail number {n}: the printer on floor {} jams.", n % 17);
        let mail = if n % 5 == 0 {
            format!(
                "From: Customer {n} <c{}@example.org>\r\nTo: support@example.com\r\n\
                 Subject: Question {n}\r\nMessage-ID: <m{n}@example.org>\r\n{threading}\
                 Date: Mon, 16 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b\r\n\
                 Content-Type: image/png; name=\"shot-{n}.png\"\r\n\
                 Content-Disposition: attachment; filename=\"shot-{n}.png\"\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\nthe bytes of mail {n}'s picture\r\n--b--\r\n",
                n % 200
            )
        } else {
            format!(
                "From: Customer {n} <c{}@example.org>\r\nTo: support@example.com\r\n\
                 Subject: Question {n}\r\nMessage-ID: <m{n}@example.org>\r\n{threading}\
                 Date: Mon, 16 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
                n % 200
            )
        };
        std::fs::write(new.join(format!("{n:05}.mail:2,")), mail).unwrap();
    }
}

fn count(db: &Path, table: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or(0)
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_backup_taken_during_an_import_restores_to_a_consistent_verified_store() {
    let desk = Desk::on_sqlite("[helpdesk.attachments]\nallowed_types = [\"image/*\"]\n");
    // The store exists (migrated) before the import starts, so it can be watched.
    desk.run(&["db", "migrate"]).ok();
    let maildir = desk.path("maildir");
    write_maildir(&maildir, MAILS);
    let database = desk.path("data/postdesk.db");

    let mut import = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.config())
        .args(["import", maildir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&database, "intake") == 0 {
        assert!(Instant::now() < deadline, "the import wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let backup = desk.path("backup");
    let out = desk.run(&["backup", backup.to_str().unwrap()]).ok();
    assert!(out.contains("Backed up to"), "{out}");
    assert!(import.wait().unwrap().success());
    assert_eq!(count(&database, "intake"), MAILS as i64);

    let taken = manifest(&backup);
    let mails = taken["counts"]["mails"].as_i64().unwrap();
    assert!(
        0 < mails && mails < MAILS as i64,
        "the backup was taken while the import ran: {mails} of {MAILS} mails"
    );
    eprintln!("backup holds {mails} of {MAILS} mails");
    let files = taken["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], "postdesk.db");
    let attachment_files = files.len() - 1;
    assert_eq!(
        attachment_files as i64,
        taken["counts"]["attachments"].as_i64().unwrap(),
        "every attachment of the copy, and only those, is in the backup"
    );
    assert!(attachment_files > 0);

    // Restored into a new data folder: every hash and count checked.
    let restored = desk.path("restored");
    let args = ["restore", backup.to_str().unwrap(), "--data-dir"];
    let out = desk
        .run(&[&args[..], &[restored.to_str().unwrap()]].concat())
        .ok();
    assert!(out.contains("each matching its SHA-256"), "{out}");
    let restored_db = restored.join("postdesk.db");
    for (table, key) in [
        ("tickets", "tickets"),
        ("entries", "entries"),
        ("intake", "mails"),
        ("attachments", "attachments"),
    ] {
        assert_eq!(
            count(&restored_db, table),
            taken["counts"][key].as_i64().unwrap(),
            "{table}"
        );
    }
    for file in &files[1..] {
        let path = restored.join(file["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            file["bytes"].as_u64().unwrap(),
            "{}",
            path.display()
        );
    }
    // postdesk works on the restored store.
    let config = desk.path("restored.toml");
    std::fs::write(&config, format!("data_dir = \"restored\"\n{HELPDESK}")).unwrap();
    let tickets = desk
        .run_without_config(
            &["--config", config.to_str().unwrap(), "tickets", "show", "1"],
            None,
        )
        .ok();
    assert!(tickets.contains("Question 0"), "{tickets}");

    // A store is there now: refused unless --force.
    let again = desk.run(&[&args[..], &[restored.to_str().unwrap()]].concat());
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("already holds a store"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    desk.run(&[&args[..], &[restored.to_str().unwrap(), "--force"]].concat())
        .ok();

    // A backup folder that is not empty is not written into.
    let refused = desk.run(&["backup", backup.to_str().unwrap()]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_tampered_or_incomplete_backup_is_refused_naming_the_file() {
    let desk = Desk::on_sqlite("[helpdesk.attachments]\nallowed_types = [\"image/*\"]\n");
    let maildir = desk.path("maildir");
    write_maildir(&maildir, 40);
    desk.run(&["import", maildir.to_str().unwrap()]).ok();
    let backup = desk.path("backup");
    desk.run(&["backup", backup.to_str().unwrap()]).ok();
    let files = manifest(&backup)["files"].as_array().unwrap().clone();

    // One byte of one attachment changed.
    let tampered = desk.path("tampered");
    copy_dir(&backup, &tampered);
    let victim = tampered.join(files[1]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&victim, bytes).unwrap();
    let target = desk.path("target");
    let run = desk.run(&[
        "restore",
        tampered.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("the backup is damaged"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(victim.to_str().unwrap()),
        "names the file: {}",
        run.stderr
    );
    assert!(!target.join("postdesk.db").exists(), "nothing was written");

    // The database copy changed: its hash no longer matches.
    let tampered_db = desk.path("tampered-db");
    copy_dir(&backup, &tampered_db);
    let db = tampered_db.join("postdesk.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "DELETE FROM attachments WHERE id = (SELECT MAX(id) FROM attachments)",
        [],
    )
    .unwrap();
    drop(conn);
    let run = desk.run(&[
        "restore",
        tampered_db.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains(db.to_str().unwrap()), "{}", run.stderr);

    // An attachment missing.
    let incomplete = desk.path("incomplete");
    copy_dir(&backup, &incomplete);
    let gone = incomplete.join(files[2]["path"].as_str().unwrap());
    std::fs::remove_file(&gone).unwrap();
    let run = desk.run(&[
        "restore",
        incomplete.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("the backup is incomplete"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(gone.to_str().unwrap()),
        "{}",
        run.stderr
    );

    // The untouched backup restores.
    desk.run(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ])
    .ok();
}

#[test]
fn a_postgresql_store_is_pointed_to_pg_dump() {
    let server = PostgresServer::shared().expect("a PostgreSQL for the tests");
    let desk = Desk::on_sqlite("");
    std::fs::write(
        desk.config(),
        format!(
            "data_dir = \"data\"\ndatabase_url = \"{}\"\nauto_migrate = true\n{HELPDESK}",
            server.fresh_database()
        ),
    )
    .unwrap();
    let run = desk.run(&["backup", desk.path("backup").to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("pg_dump"), "{}", run.stderr);
    assert!(!desk.path("backup").exists());
    let run = desk.run(&["restore", desk.path("backup").to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("pg_dump"), "{}", run.stderr);
}
