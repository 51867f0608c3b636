//! Test harness for postdesk's integration tests.
//!
//! [`dovecot::Dovecot`] starts a real Dovecot IMAP server on loopback, with its own
//! configuration, users, mail store and (optionally) a CA generated per run, and stops
//! it again when dropped. Linux only; needs Debian's `dovecot-imapd` (and `openssl` for
//! TLS), which `.ci/run` installs.

pub mod dovecot;
pub mod oauth;
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
