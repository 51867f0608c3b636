//! Test harness for postdesk's integration tests.
//!
//! [`dovecot::Dovecot`] starts a real Dovecot IMAP server on loopback, with its own
//! configuration, users, mail store and (optionally) a CA generated per run, and stops
//! it again when dropped. Linux only; needs Debian's `dovecot-imapd` (and `openssl` for
//! TLS), which `.ci/run` installs.

pub mod dovecot;

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
///
/// Another process may take it before it is bound again; [`dovecot::Dovecot::start`]
/// retries with fresh ports when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 for a free port")
}
