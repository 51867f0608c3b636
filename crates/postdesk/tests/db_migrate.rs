//! `postdesk db migrate` and `auto_migrate`: on SQLite every command brings the schema
//! up to date by default; on PostgreSQL (and with `auto_migrate = false`) commands
//! refuse an old schema with a message that names `postdesk db migrate`, which then
//! applies what is missing.

mod common;

use common::{Desk, HELPDESK};

fn desk_with(top: &str) -> Desk {
    let desk = Desk::on_sqlite("");
    std::fs::write(
        desk.config(),
        format!("data_dir = \"data\"\n{top}{HELPDESK}"),
    )
    .unwrap();
    desk
}

#[test]
fn on_sqlite_commands_migrate_and_db_migrate_reports_the_version() {
    let desk = desk_with("");
    let first = desk.run(&["db", "migrate"]).ok();
    assert!(
        first.starts_with("Migrated the schema from version 0 to "),
        "{first}"
    );
    let again = desk.run(&["db", "migrate"]).ok();
    assert!(
        again.starts_with("The schema is up to date (version "),
        "{again}"
    );
    // Any command migrates a new file itself (auto_migrate defaults to true on SQLite).
    let fresh = desk_with("");
    fresh.run(&["tickets", "list"]).ok();
    assert!(
        fresh
            .run(&["db", "migrate"])
            .ok()
            .starts_with("The schema is up to date")
    );
}

#[test]
fn without_auto_migrate_commands_refuse_until_db_migrate_has_run() {
    let desk = desk_with("auto_migrate = false\n");
    let refused = desk.run(&["tickets", "list"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("schema is at version 0")
            && refused.stderr.contains("run `postdesk db migrate`"),
        "{}",
        refused.stderr
    );
    desk.run(&["db", "migrate"]).ok();
    desk.run(&["tickets", "list"]).ok();
}

#[test]
fn on_postgresql_commands_do_not_migrate_by_default() {
    let server = postdesk_testkit::postgres::PostgresServer::shared()
        .expect("this test needs a PostgreSQL (see .ci/run)");
    let url = server.fresh_database();
    let desk = desk_with(&format!("database_url = \"{url}\"\n"));
    let refused = desk.run(&["tickets", "list"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("run `postdesk db migrate`"),
        "{}",
        refused.stderr
    );
    let migrated = desk.run(&["db", "migrate"]).ok();
    assert!(
        migrated.starts_with("Migrated the schema from version 0 to "),
        "{migrated}"
    );
    desk.run(&["tickets", "list"]).ok();
}
