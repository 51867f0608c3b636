//! The PostgreSQL harness against the real server, spoken to with `psql` and raw TCP.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use postdesk_testkit::postgres::PostgresServer;

fn port_of(url: &str) -> u16 {
    let after_host = url
        .split("@127.0.0.1:")
        .nth(1)
        .expect("url names 127.0.0.1");
    after_host.split('/').next().unwrap().parse().unwrap()
}

fn database_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[test]
fn shared_server_gives_each_test_an_empty_database() {
    let server = PostgresServer::shared().expect("a PostgreSQL for the tests");
    let first = server.fresh_database();
    let second = server.fresh_database();
    assert_ne!(first, second);
    assert_eq!(port_of(&first), server.port());
    server
        .psql(
            database_of(&first),
            "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (1)",
        )
        .unwrap();
    // The other database does not see the first one's table.
    let tables = server
        .psql(
            database_of(&second),
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .unwrap();
    assert_eq!(tables.trim(), "0");
    // The same server for every caller.
    let again = PostgresServer::shared().unwrap();
    assert!(std::ptr::eq(server, again));
}

#[test]
fn settings_are_the_durable_defaults_on_loopback_only() {
    let server = PostgresServer::shared().unwrap();
    let shown = server
        .psql(
            "postgres",
            "SELECT current_setting('fsync'), current_setting('synchronous_commit'), \
             current_setting('full_page_writes'), current_setting('listen_addresses'), \
             current_setting('lc_collate'), pg_encoding_to_char(encoding) \
             FROM pg_database WHERE datname = current_database()",
        )
        .unwrap();
    assert_eq!(shown.trim(), "on|on|on|127.0.0.1|C|UTF8");
}

#[test]
fn databases_can_be_made_from_many_threads_at_once() {
    let server = PostgresServer::shared().unwrap();
    let urls: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| server.fresh_database()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut names: Vec<&str> = urls.iter().map(|u| database_of(u)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6);
}

#[test]
fn own_servers_run_side_by_side_and_drop_removes_everything() {
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(PostgresServer::start);
        let b = scope.spawn(PostgresServer::start);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_ne!(a.port(), b.port());
    a.psql("postgres", "CREATE DATABASE only_on_a").unwrap();
    let on_b = b
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'only_on_a'",
        )
        .unwrap();
    assert_eq!(on_b.trim(), "0");

    let dir = a.data_dir().parent().unwrap().to_path_buf();
    let port = a.port();
    drop(a);
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // b is unaffected.
    assert_eq!(b.psql("postgres", "SELECT 1").unwrap().trim(), "1");
}

#[test]
fn stop_and_start_again_keep_the_data_and_the_port() {
    let mut server = PostgresServer::start().unwrap();
    let url = server.fresh_database();
    server
        .psql(
            database_of(&url),
            "CREATE TABLE kept (x TEXT); INSERT INTO kept VALUES ('yes')",
        )
        .unwrap();
    server.stop();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", server.port())).is_err());
    assert!(server.psql("postgres", "SELECT 1").is_err());
    server.start_again().unwrap();
    assert_eq!(port_of(&url), server.port());
    let kept = server
        .psql(database_of(&url), "SELECT x FROM kept")
        .unwrap();
    assert_eq!(kept.trim(), "yes");
}

/// A test binary that is killed leaves no server and no directory behind: the
/// watchdog cleans up. Runs this test binary again as the victim.
#[test]
fn a_killed_test_process_leaves_nothing_behind() {
    if let Ok(report) = std::env::var("POSTDESK_PG_VICTIM_REPORT") {
        let server = PostgresServer::shared().unwrap();
        std::fs::write(
            &report,
            format!("{} {}", server.port(), server.socket_dir().display()),
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut victim = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_test_process_leaves_nothing_behind",
            "--nocapture",
        ])
        .env("POSTDESK_PG_VICTIM_REPORT", report.path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let written = loop {
        let text = std::fs::read_to_string(report.path()).unwrap_or_default();
        if !text.is_empty() {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the victim never started its server"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (port, dir) = written.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    victim.kill().unwrap();
    victim.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (std::path::Path::new(dir).exists() || TcpStream::connect(("127.0.0.1", port)).is_ok())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!std::path::Path::new(dir).exists(), "{dir} is left");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
