//! `postdesk init` and `postdesk check-config` as a user meets them.

mod common;

use common::Desk;

#[test]
fn init_writes_a_config_that_checks() {
    let desk = Desk::new("");
    let path = desk.path("new.toml");
    desk.run(&["init", path.to_str().unwrap()]).ok();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[[helpdesk]]") && text.contains("# "),
        "commented: {text}"
    );
    let run = desk.run_without_config(&["--config", path.to_str().unwrap(), "check-config"], None);
    assert!(run.ok().contains("OK"));
    // init never overwrites.
    let again = desk.run(&["init", path.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn errors_name_file_line_and_key() {
    let desk = Desk::on_sqlite("unknown_sender = \"ignore\"\n");
    let run = desk.run(&["check-config"]);
    assert_eq!(run.code, 1);
    let expected = format!("{}:6", desk.config().display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("create-contact"),
        "says what is allowed: {}",
        run.stderr
    );
}

#[test]
fn a_missing_config_says_how_to_make_one() {
    let desk = Desk::new("");
    std::fs::remove_file(desk.config()).unwrap();
    let run = desk.run(&["tickets", "list"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("postdesk init"), "{}", run.stderr);
}
