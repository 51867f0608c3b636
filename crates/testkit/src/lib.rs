//! Test harness for postdesk's integration tests.
//!
//! [`dovecot::Dovecot`] starts a real Dovecot IMAP server on loopback, with its own
//! configuration, users, mail store and (optionally) a CA generated per run, and stops
//! it again when dropped. Linux only; needs Debian's `dovecot-imapd` (and `openssl` for
//! TLS), which `.ci/run` installs. [`browser::Browser`] drives a headless Chromium over
//! WebDriver for the web UI's end-to-end tests (Debian's `chromium` and
//! `chromium-driver`). [`postgres::PostgresServer`] starts a PostgreSQL cluster of its
//! own on loopback (Debian's `postgresql`), shared by a test binary's tests, each with a
//! fresh database.

pub mod browser;
pub mod dovecot;
// Fake Microsoft Graph and Gmail API servers (issue 20).
pub mod gmail;
pub mod graph;
pub mod oauth;
pub mod postgres;
mod served;
pub mod smtp;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0),
/// and that this process has not been given before, so tests running side by side
/// never share one (a stopped server's port stays its own for a restart).
///
/// Another process may still take it before it is bound again;
/// [`dovecot::Dovecot::start`] retries with fresh ports when that happens.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("bind 127.0.0.1:0 for a free port");
        if given.insert(port) {
            return port;
        }
    }
}

/// Writes `ca.pem`, `ca.key`, `server.pem` and `server.key` (P-256, for `localhost` and
/// 127.0.0.1) into `dir` with the `openssl` command: a CA per run, trusted by nothing else.
pub(crate) fn write_certificates(dir: &std::path::Path, ca_name: &str) {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(crate::dovecot::find_program("openssl"))
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run openssl (apt-get install openssl): {e}"));
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "7",
    ];
    run(&[
        &["req", "-x509"][..],
        &key,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            &format!("/CN={ca_name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[
        &["req", "-x509", "-CA", "ca.pem", "-CAkey", "ca.key"][..],
        &key,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
    ]
    .concat());
}

/// Every process /proc lists now: its pid and its /proc directory (none when /proc
/// cannot be read). What each caller reads there is its own.
pub(crate) fn processes() -> impl Iterator<Item = (libc::pid_t, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<libc::pid_t>().ok()?;
            Some((pid, entry.path()))
        })
}
