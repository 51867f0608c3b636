//! TLS to PostgreSQL (`sslmode`, `sslrootcert`) and `postdesk check`'s database steps,
//! against a PostgreSQL of the test's own with `ssl = on` (a certificate for 127.0.0.1
//! signed by a CA made for it) and a role that signs in with a password.

mod common;

use common::{Desk, HELPDESK};
use postdesk_testkit::postgres::{PostgresServer, ServerOptions};

const PASSWORD: &str = "right-Pa55";

fn desk_on(url: &str) -> Desk {
    let desk = Desk::on_sqlite("");
    std::fs::write(
        desk.config(),
        format!("data_dir = \"data\"\ndatabase_url = \"{url}\"\n{HELPDESK}"),
    )
    .unwrap();
    desk
}

/// `postdesk check` on `url`: its exit code, stdout and stderr, which must never hold
/// the password.
fn check(url: &str) -> (i32, String, String) {
    let run = desk_on(url).run(&["check"]);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PASSWORD), "the password was shown: {text}");
        assert!(
            !text.contains("wrong-Pa55"),
            "the password was shown: {text}"
        );
    }
    eprintln!(
        "--- check {}\n{}{}",
        postdesk_store::redacted_url(url),
        run.stdout,
        run.stderr
    );
    (run.code, run.stdout, run.stderr)
}

#[test]
fn tls_to_the_database_and_each_failing_step_named_by_check() {
    let server = PostgresServer::start_with(ServerOptions {
        tls: true,
        password_role: Some(("desk".into(), PASSWORD.into())),
    })
    .expect("a PostgreSQL with TLS for this test (see .ci/run)");
    let database = server
        .fresh_database()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let port = server.port();
    let ca = server.ca_cert_path().unwrap();
    let url = |password: &str, port: u16, database: &str, tls: &str| {
        format!("postgres://desk:{password}@127.0.0.1:{port}/{database}?{tls}")
    };
    let verify_full = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    let good = url(PASSWORD, port, &database, &verify_full);

    // verify-full with the right CA: the store works over TLS, and check says so.
    let desk = desk_on(&good);
    desk.run(&["db", "migrate"]).ok();
    desk.run(&["tickets", "list"]).ok();
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ok    database TLS: encrypted (TLSv1."),
        "{out}"
    );
    assert!(
        out.contains("naming the host (sslmode=verify-full)"),
        "{out}"
    );
    assert!(
        out.contains("ok    database sign-in: signed in as desk"),
        "{out}"
    );
    assert!(out.contains("ok    database schema: version"), "{out}");
    assert!(out.contains("desk:***@127.0.0.1"), "{out}");
    let verify_ca = url(
        PASSWORD,
        port,
        &database,
        &verify_full.replace("verify-full", "verify-ca"),
    );
    assert_eq!(check(&verify_ca).0, 0);
    let require = url(PASSWORD, port, &database, "sslmode=require");
    let (code, out, _) = check(&require);
    assert_eq!(code, 0);
    assert!(
        out.contains("encrypted (TLSv1.") && out.contains("certificate not checked"),
        "{out}"
    );

    // A CA that did not sign the server's certificate: refused at the TLS step.
    let other = PostgresServer::start_with(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .unwrap();
    let kept = tempfile::tempdir().unwrap();
    let other_ca = kept.path().join("other-ca.pem");
    std::fs::copy(other.ca_cert_path().unwrap(), &other_ca).unwrap();
    drop(other);
    let wrong_root = format!("sslmode=verify-full&sslrootcert={}", other_ca.display());
    let (code, out, err) = check(&url(PASSWORD, port, &database, &wrong_root));
    assert_ne!(code, 0);
    assert!(out.contains("FAIL  database TLS:"), "{out}");
    assert!(
        out.contains("invalid peer certificate") && out.contains("sslrootcert"),
        "{out}"
    );
    assert!(err.contains("the database TLS check failed"), "{err}");
    let refused = desk_on(&url(PASSWORD, port, &database, &wrong_root)).run(&["tickets", "list"]);
    assert_ne!(
        refused.code, 0,
        "a store does not open over an unverified TLS"
    );

    // Wrong password, missing database, wrong port: each step named.
    let (code, out, _) = check(&url("wrong-Pa55", port, &database, &verify_full));
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  database sign-in:") && out.contains("password"),
        "{out}"
    );
    let (code, out, _) = check(&url(PASSWORD, port, "no_such_db", &verify_full));
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  database: ") && out.contains("createdb"),
        "{out}"
    );
    let closed = postdesk_testkit::free_port();
    let (code, out, _) = check(&url(PASSWORD, closed, &database, &verify_full));
    assert_ne!(code, 0);
    assert!(out.contains("ok    database DNS: 127.0.0.1"), "{out}");
    assert!(
        out.contains("FAIL  database TCP: nothing answers on 127.0.0.1 port"),
        "{out}"
    );
    let (code, out, _) = check(&format!(
        "postgres://desk:{PASSWORD}@no-such-host.invalid/x"
    ));
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  database DNS: cannot resolve no-such-host.invalid"),
        "{out}"
    );
}

#[test]
fn sslmode_require_is_refused_by_a_server_without_tls_and_prefer_falls_back() {
    let shared = PostgresServer::shared().expect("a PostgreSQL (see .ci/run)");
    let plain = shared.fresh_database();
    let (code, out, _) = check(&format!("{plain}?sslmode=require"));
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  database TLS:") && out.contains("server does not support TLS"),
        "{out}"
    );
    let desk = desk_on(&format!("{plain}?sslmode=prefer"));
    desk.run(&["db", "migrate"]).ok();
    let (code, out, err) = check(&format!("{plain}?sslmode=prefer"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ok    database TLS: not encrypted (sslmode=prefer)"),
        "{out}"
    );
}
