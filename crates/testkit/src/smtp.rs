//! A throwaway SMTP server on 127.0.0.1 that keeps every mail it accepts in a Maildir.
//!
//! ```no_run
//! use postdesk_testkit::smtp::{SmtpSink, SinkOptions};
//!
//! let sink = SmtpSink::start(SinkOptions::default());
//! // send to 127.0.0.1:{sink.port()}, plaintext, no login
//! let mails = sink.wait_for(1, std::time::Duration::from_secs(10));
//! ```
//!
//! Runs Debian's `python3-aiosmtpd` (`/usr/bin/python3`, which `.ci/run` installs) with a
//! small handler written per run: each accepted mail is stored in `<dir>/Maildir/new/`
//! with two headers in front, `X-Envelope-From` and `X-Envelope-To` (the SMTP envelope).
//! Recipients whose local part starts with `reject` get `550 5.1.1`, with `tempfail`
//! `451 4.3.0`. With [`SinkOptions::starttls`] the server offers STARTTLS with a
//! certificate for `localhost`/127.0.0.1 from a CA generated per run
//! ([`SmtpSink::ca_cert_pem_path`]) and requires it; with [`SinkOptions::login`] it
//! requires `AUTH PLAIN`/`LOGIN` (after STARTTLS when that is on).
//!
//! [`SmtpSink::stop`] kills the server (connections just close), [`SmtpSink::start_again`]
//! starts it on the same port with the same store, for "the server was down" tests.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = r#"
import asyncio, base64, json, os, ssl, sys, time, urllib.parse, urllib.request
from aiosmtpd.smtp import SMTP, AuthResult

port, store, cert, key, user, password, introspect = sys.argv[1:8]
counter = [0]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0].lower()
        if local.startswith('reject'):
            return '550 5.1.1 <%s>: mailbox unavailable' % address
        if local.startswith('tempfail'):
            return '451 4.3.0 <%s>: try again later' % address
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        counter[0] += 1
        name = '%d.%d_%d.sink' % (time.time(), os.getpid(), counter[0])
        head = 'X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n' % (
            envelope.mail_from, ', '.join(envelope.rcpt_tos))
        data = head.encode() + envelope.original_content
        tmp = os.path.join(store, 'tmp', name)
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(store, 'new', name))
        return '250 2.0.0 Ok: queued as %s' % name

class OAuthHandler(Handler):
    # SASL XOAUTH2: the bearer token is checked at the token server's introspection URL.
    async def auth_XOAUTH2(self, server, args):
        if len(args) > 1:
            blob = args[1]
        else:
            blob = await server.challenge_auth('', encode_to_b64=False)
            blob = blob if isinstance(blob, str) else blob.decode()
        fields = dict(f.split('=', 1) for f in base64.b64decode(blob).decode().split('\x01') if '=' in f)
        token = fields.get('auth', '').removeprefix('Bearer ')
        body = urllib.parse.urlencode({'token': token}).encode()
        answer = json.loads(urllib.request.urlopen(introspect, body, timeout=5).read())
        ok = answer.get('active') is True and answer.get('username') == fields.get('user') == user
        return AuthResult(success=ok, handled=False)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    return AuthResult(success=ok, handled=False)

async def main():
    tls = None
    if cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
    kwargs = dict(tls_context=tls, require_starttls=bool(tls), hostname='localhost')
    handler = Handler()
    if introspect:
        handler = OAuthHandler()
        kwargs.update(auth_required=True, auth_require_tls=bool(tls),
                      auth_exclude_mechanism=['PLAIN', 'LOGIN'])
    elif user:
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(tls))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), '127.0.0.1', int(port))
    print('READY', flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// What the sink offers.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    starttls: bool,
    login: Option<(String, String)>,
    oauth2: Option<(String, String)>,
}

impl SinkOptions {
    /// Offer and require STARTTLS (certificate from a per-run CA).
    pub fn starttls(mut self) -> Self {
        self.starttls = true;
        self
    }

    /// Require AUTH XOAUTH2 for `user` with a bearer token that this introspection URL
    /// (see [`crate::oauth::TokenServer`]) says is active for that user.
    pub fn oauth2(mut self, user: &str, introspection_url: &str) -> Self {
        self.oauth2 = Some((user.into(), introspection_url.into()));
        self
    }

    /// Require AUTH with this user and password.
    pub fn login(mut self, user: &str, password: &str) -> Self {
        self.login = Some((user.into(), password.into()));
        self
    }
}

pub struct SmtpSink {
    dir: tempfile::TempDir,
    options: SinkOptions,
    port: u16,
    child: Option<Child>,
}

/// One mail the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// SMTP envelope sender and recipients.
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The message as received (without the sink's two envelope headers).
    pub raw: Vec<u8>,
}

impl SmtpSink {
    pub fn start(options: SinkOptions) -> SmtpSink {
        let dir = tempfile::Builder::new()
            .prefix("postdesk-smtp-")
            .tempdir()
            .expect("temp dir");
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(dir.path().join("Maildir").join(sub)).expect("mkdir Maildir");
        }
        fs::write(dir.path().join("server.py"), SERVER).expect("write server.py");
        if options.starttls {
            crate::write_certificates(dir.path(), "postdesk testkit SMTP CA");
        }
        let mut sink = SmtpSink {
            dir,
            options,
            port: 0,
            child: None,
        };
        for _ in 0..5 {
            sink.port = crate::free_port();
            if sink.spawn() {
                return sink;
            }
        }
        panic!("the SMTP sink did not start (apt-get install python3-aiosmtpd)");
    }

    fn spawn(&mut self) -> bool {
        let dir = self.dir.path();
        let (cert, key) = if self.options.starttls {
            (
                dir.join("server.pem").display().to_string(),
                dir.join("server.key").display().to_string(),
            )
        } else {
            (String::new(), String::new())
        };
        let (mut user, password) = self.options.login.clone().unwrap_or_default();
        let introspect = match &self.options.oauth2 {
            Some((oauth_user, url)) => {
                user = oauth_user.clone();
                url.clone()
            }
            None => String::new(),
        };
        let mut child = Command::new("/usr/bin/python3")
            .arg(dir.join("server.py"))
            .arg(self.port.to_string())
            .arg(dir.join("Maildir"))
            .args([cert, key, user, password, introspect])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run /usr/bin/python3 (apt-get install python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let ready = BufReader::new(stdout).read_line(&mut line).is_ok() && line.trim() == "READY";
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        self.child = Some(child);
        true
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate (with [`SinkOptions::starttls`]).
    pub fn ca_cert_pem_path(&self) -> Option<PathBuf> {
        self.options
            .starttls
            .then(|| self.dir.path().join("ca.pem"))
    }

    /// Kills the server: the port refuses connections until [`SmtpSink::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port, with the mails it has.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "the SMTP sink did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every mail accepted so far, in the order received.
    pub fn received(&self) -> Vec<Received> {
        let new = self.dir.path().join("Maildir").join("new");
        let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = fs::read_dir(&new)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        let modified = e
                            .metadata()
                            .and_then(|m| m.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        (
                            modified,
                            e.file_name().to_string_lossy().into_owned(),
                            e.path(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, _, path)| fs::read(path).ok())
            .map(|bytes| parse_received(&bytes))
            .collect()
    }

    /// Waits until at least `n` mails arrived; returns them all.
    #[track_caller]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mail(s) at the SMTP sink, got {}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn parse_received(bytes: &[u8]) -> Received {
    let mut rest = bytes;
    let mut envelope_from = String::new();
    let mut envelope_to = Vec::new();
    for _ in 0..2 {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        if let Some(v) = line.strip_prefix("X-Envelope-From: ") {
            envelope_from = v.to_string();
        } else if let Some(v) = line.strip_prefix("X-Envelope-To: ") {
            envelope_to = v
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        rest = &rest[(end + 2).min(rest.len())..];
    }
    Received {
        envelope_from,
        envelope_to,
        raw: rest.to_vec(),
    }
}
