//! A throwaway Dovecot IMAP server on 127.0.0.1 for one test.
//!
//! ```no_run
//! use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};
//!
//! let server = Dovecot::start(DovecotOptions::default().user("alice", "secret").tls());
//! server.append("alice", "INBOX", b"Subject: hi\r\n\r\nbody\r\n");
//! // connect to 127.0.0.1:{server.imap_port()} (plaintext, STARTTLS offered) or
//! // 127.0.0.1:{server.imaps_port().unwrap()} (implicit TLS, server name "localhost",
//! // trust only server.ca_cert_pem_path()), LOGIN alice secret, SELECT INBOX: 1 EXISTS.
//! ```
//!
//! # What runs
//!
//! `dovecot -F -c <tempdir>/dovecot.conf` in a process group of its own, led by a small
//! watchdog shell that kills the group should this process die without dropping the
//! [`Dovecot`] (killed test binary, Ctrl-C, a leaked static; the directory is left
//! then); with every path (`base_dir`, `state_dir`, log, mail) inside one temporary directory
//! under `/tmp`, listening on 127.0.0.1 only, on ports picked per run. It never touches
//! the system's Dovecot (`/etc/dovecot`, `/run/dovecot`, `/var/lib/dovecot`), which may
//! run beside it on 143/993. Logins: `LOGIN` and `AUTHENTICATE PLAIN`/`LOGIN` with the
//! users of [`DovecotOptions::users`]; a wrong password gets `NO [AUTHENTICATIONFAILED]`
//! after at most about 0.5 s (Dovecot flushes failed logins on a 0.5 s timer), with no
//! growing penalty for repeated failures. With [`DovecotOptions::oauth2`] also
//! `AUTHENTICATE XOAUTH2` and `OAUTHBEARER` (see below).
//!
//! # OAuth2 logins
//!
//! With [`DovecotOptions::oauth2`] the server also offers `AUTH=XOAUTH2` and
//! `AUTH=OAUTHBEARER` (in the greeting; SASL-IR works) and checks each bearer token by
//! POSTing `token=<token>` to the given RFC 7662 introspection URL (e.g. a
//! [`crate::oauth::TokenServer`]'s), at every login (no caching): it is accepted when the
//! answer has `"active": true` and a `"username"` equal to the login's user (lowercased,
//! as Dovecot lowercases user names). The user must also be one of
//! [`DovecotOptions::users`] (that is where its mail store is); passwords keep working
//! for `LOGIN` and `AUTHENTICATE PLAIN`/`LOGIN`, and only there (a token is no password).
//!
//! - `XOAUTH2`: `base64("user=alice\x01auth=Bearer <token>\x01\x01")`.
//! - `OAUTHBEARER`: `base64("n,a=alice,\x01host=127.0.0.1\x01port=<port>\x01auth=Bearer
//!   <token>\x01\x01")`; `host`/`port` are optional, but the `a=` user is required
//!   (`n,,` is refused).
//!
//! A token that is unknown, expired, revoked or another user's gets a continuation with
//! an error first, `+ base64({"status":"401","schemes":"bearer","scope":"mail"})` for
//! XOAUTH2 and `+ base64({"status":"invalid_token"})` for OAUTHBEARER; the client answers
//! with an empty line (or `AQ==`, the RFC 7628 `\x01`) and then gets
//! `NO [AUTHENTICATIONFAILED] Authentication failed.` (`*` gets `BAD Authentication
//! aborted by client.`). A malformed payload gets that `NO` at once. When the
//! introspection URL cannot be reached the answer is `NO [UNAVAILABLE] Temporary
//! authentication failure.` at once, without a continuation.
//!
//! # Mail store and folder names
//!
//! Each user's store is a Maildir at [`Dovecot::maildir`] (`<tempdir>/home/<user>/Maildir`),
//! owned by the unprivileged user the IMAP processes run as (`nobody` when the tests run
//! as root). `INBOX` (any case) is the Maildir root itself. Other folders, as named over
//! IMAP (one namespace, empty prefix, so `NAMESPACE` is `(("" "."))` or `(("" "/"))`):
//!
//! | layout | separator | `Processed` | `Processed.2024` / `Processed/2024` | `INBOX.Sub` / `INBOX/Sub` |
//! | --- | --- | --- | --- | --- |
//! | [`Layout::MaildirPlusPlus`] (default) | `.` | `Maildir/.Processed/` | `Maildir/.Processed.2024/` | `Maildir/.INBOX.Sub/` |
//! | [`Layout::Fs`] | `/` | `Maildir/Processed/` | `Maildir/Processed/2024/` | `Maildir/INBOX/Sub/` |
//!
//! `INBOX.Sub` is a folder of its own below INBOX, not the same as `Sub`. Names that are
//! not ASCII are stored in modified UTF-7, as IMAP names them (`Grüße` is `Gr&APwA3w-e`);
//! the methods here take the UTF-8 name. With the Maildir++ layout a name may not
//! contain `/`.
//!
//! # Mail delivered by the harness
//!
//! [`Dovecot::append`] writes the mail into the folder's `new/` (via `tmp/`, as a
//! Maildir delivery does). Dovecot sees it at its next sync of that folder: the next
//! `SELECT`/`EXAMINE`/`STATUS`/`NOOP`/`CHECK` of a client, and at once in `IDLE`
//! (inotify, with a 1 s poll as fallback). UIDs are assigned then, in the order the
//! mails were appended. The mail keeps the exact bytes given (no `\n` → `\r\n`
//! rewriting), so give IMAP-style CRLF mail. Folders made by the harness
//! ([`Dovecot::create_folder`], or [`Dovecot::append`] to a new folder) show up in `LIST`
//! at once, also in sessions already open (Dovecot keeps no mailbox list index here);
//! they are not subscribed (`LSUB`).
//!
//! # UIDVALIDITY
//!
//! [`Dovecot::reset_uidvalidity`] deletes the folder's `dovecot-uidlist` and index files,
//! as if the folder had been recreated: at its next access Dovecot gives it a new, larger
//! UIDVALIDITY and numbers its mails again from UID 1. A client that has the folder
//! selected gets `* BYE IMAP session state is inconsistent, please relogin.` in reply to
//! its next command (and the connection closes); a new session sees the new UIDVALIDITY
//! in `SELECT` and `STATUS`.
//!
//! # Stopping
//!
//! [`Dovecot::stop`] (and so [`Dovecot::restart`]) is graceful: listeners close, every
//! open session gets `* BYE Server shutting down.` and its connection closes (through
//! TLS too), typically within 20–50 ms; connecting then fails (refused) until
//! [`Dovecot::restart`] brings the server back on the same ports with the same store.
//! Dropping the [`Dovecot`] kills everything at once (connections just close, no BYE)
//! and removes its directory.
//!
//! # Capabilities
//!
//! Dovecot 2.3's default set (`IMAP4rev1 ... IDLE ... UIDPLUS ... MOVE ... LITERAL+ ...`),
//! with `STARTTLS` before login when TLS is on. With [`DovecotOptions::disable_move`] the
//! server does not advertise `MOVE` (neither in the greeting nor after login), but still
//! executes a `MOVE` command if a client sends one anyway.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// The address every instance listens on (never `localhost`, which may resolve to `::1`).
pub const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The name the generated server certificate is for (it also holds the IP 127.0.0.1).
pub const TLS_SERVER_NAME: &str = "localhost";

/// Dovecot 2.3.19's post-login capabilities less `MOVE`, for [`DovecotOptions::disable_move`].
const CAPABILITIES_WITHOUT_MOVE: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
     SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
     CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
     ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY SNIPPET=FUZZY \
     PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

/// Runs `$0 $@` (Dovecot) and exits as it does; kills the process group when stdin
/// reaches EOF.
const WATCHDOG: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill -KILL 0; } &
reader=$!
exec 3<&-
wait "$pid"
status=$?
kill -KILL "$reader" 2>/dev/null
exit "$status"
"#;

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at a first start when another process took one of the picked ports.
const PORT_ATTEMPTS: usize = 5;

/// How folders are laid out on disk (and which hierarchy separator IMAP shows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Dovecot's default for Maildir: separator `.`, folder `A.B` is `Maildir/.A.B/`.
    #[default]
    MaildirPlusPlus,
    /// `LAYOUT=fs`: separator `/`, folder `A/B` is `Maildir/A/B/`.
    Fs,
}

impl Layout {
    /// The hierarchy separator clients see in `LIST` and `NAMESPACE`.
    pub fn separator(self) -> char {
        match self {
            Layout::MaildirPlusPlus => '.',
            Layout::Fs => '/',
        }
    }
}

/// What to start. `DovecotOptions::default()` has no users, no TLS, `MOVE` advertised
/// and the Maildir++ layout; build on it with the methods or struct update syntax.
#[derive(Clone, Debug, Default)]
pub struct DovecotOptions {
    /// `(user, password)` pairs that can log in. A user name is 1–64 of
    /// `A-Z a-z 0-9 . _ @ + -`; a password is any text without NUL.
    pub users: Vec<(String, String)>,
    /// Also serve implicit TLS ([`Dovecot::imaps_port`]) and offer STARTTLS on the
    /// plaintext port, with a certificate for `localhost`/127.0.0.1 signed by a CA
    /// generated for this run ([`Dovecot::ca_cert_pem_path`]).
    pub tls: bool,
    /// Do not advertise the `MOVE` capability (Dovecot still executes `MOVE`).
    pub disable_move: bool,
    /// Folder layout and hierarchy separator.
    pub layout: Layout,
    /// Also accept OAuth2 bearer tokens (`AUTHENTICATE XOAUTH2` and `OAUTHBEARER`) for
    /// the users, checked at this RFC 7662 introspection URL (see the module
    /// documentation and [`crate::oauth::TokenServer::introspection_url`]).
    pub oauth2_introspection_url: Option<String>,
}

impl DovecotOptions {
    /// Adds a user.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_string(), password.to_string()));
        self
    }

    /// Sets [`DovecotOptions::tls`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Sets [`DovecotOptions::disable_move`].
    pub fn without_move(mut self) -> Self {
        self.disable_move = true;
        self
    }

    /// Sets [`DovecotOptions::layout`].
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets [`DovecotOptions::oauth2_introspection_url`]: `XOAUTH2` and `OAUTHBEARER`
    /// logins, with tokens checked at `introspection_url` (e.g.
    /// [`crate::oauth::TokenServer::introspection_url`]).
    pub fn oauth2(mut self, introspection_url: impl Into<String>) -> Self {
        self.oauth2_introspection_url = Some(introspection_url.into());
        self
    }
}

/// One mail in a folder's Maildir, as [`Dovecot::folder_mails`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMail {
    /// The UID from the folder's `dovecot-uidlist`; `None` while Dovecot has not synced
    /// the mail yet (delivered by [`Dovecot::append`] and not yet seen by a client).
    pub uid: Option<u32>,
    /// Maildir flag letters after `:2,` in the file name: `S` \Seen, `R` \Answered,
    /// `F` \Flagged, `T` \Deleted, `D` \Draft (plus `a`, `b`, … for keywords).
    pub flags: String,
    /// The file.
    pub path: PathBuf,
    /// The raw mail.
    pub raw: Vec<u8>,
}

impl StoredMail {
    /// Has `\Seen`.
    pub fn seen(&self) -> bool {
        self.flags.contains('S')
    }

    /// Has `\Deleted` (flagged, not yet expunged).
    pub fn deleted(&self) -> bool {
        self.flags.contains('T')
    }
}

/// A running Dovecot; see the [module documentation](self).
///
/// Dropping it kills the server and removes its directory.
pub struct Dovecot {
    dir: TempDir,
    /// The watchdog shell leading the process group (see `spawn_and_wait`).
    child: Option<Child>,
    /// Dovecot's master process (from `master.pid`).
    master: Option<libc::pid_t>,
    imap_port: u16,
    imaps_port: Option<u16>,
    ca_cert: Option<PathBuf>,
    layout: Layout,
    users: Vec<String>,
    mail_owner: (u32, u32),
    deliveries: Mutex<Delivery>,
}

#[derive(Default)]
struct Delivery {
    last_micros: u128,
    count: u64,
}

/// The settings a configuration is written from.
struct Settings<'a> {
    dir: &'a Path,
    options: &'a DovecotOptions,
    imap_port: u16,
    imaps_port: Option<u16>,
    mail_owner: (u32, u32),
    unprivileged_as: Option<(String, String)>,
}

impl Dovecot {
    /// Writes a configuration, starts Dovecot and blocks until it greets on the IMAP
    /// port (and accepts on the IMAPS port). Panics, with the end of Dovecot's log,
    /// when it cannot be started.
    pub fn start(options: DovecotOptions) -> Dovecot {
        for (name, password) in &options.users {
            check_user_name(name);
            assert!(
                !password.contains('\0'),
                "password of {name:?} contains NUL"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("postdesk-dovecot-")
            // /tmp rather than $TMPDIR: every ancestor must be traversable by the mail
            // user, and socket paths under base_dir must stay short.
            .tempdir_in("/tmp")
            .expect("create a directory under /tmp");
        set_mode(dir.path(), 0o755);

        // As root (CI, the dev containers) the IMAP processes run as `nobody`; as any
        // other user Dovecot runs everything as that user.
        let (mail_owner, unprivileged_as) = if unsafe { libc::geteuid() } == 0 {
            let nobody = lookup_user("nobody").expect("user nobody exists");
            ((nobody.uid, nobody.gid), None)
        } else {
            let me = current_user();
            let group = group_name(me.gid).unwrap_or_else(|| me.gid.to_string());
            ((me.uid, me.gid), Some((me.name, group)))
        };

        for sub in ["run", "state", "home"] {
            let path = dir.path().join(sub);
            fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
            set_mode(&path, 0o755);
        }
        let mut passwd = String::new();
        for (name, password) in &options.users {
            let home = dir.path().join("home").join(name);
            fs::create_dir(&home).unwrap_or_else(|e| panic!("mkdir {}: {e}", home.display()));
            chown(&home, Some(mail_owner.0), Some(mail_owner.1))
                .unwrap_or_else(|e| panic!("chown {}: {e}", home.display()));
            set_mode(&home, 0o700);
            let _ = writeln!(
                passwd,
                "{name}:{{PLAIN.HEX}}{}::::::",
                hex(password.as_bytes())
            );
        }
        write_file(&dir.path().join("passwd"), passwd.as_bytes(), 0o644);
        if let Some(url) = &options.oauth2_introspection_url {
            assert!(
                !url.contains(['\r', '\n']) && !url.trim().is_empty(),
                "bad introspection URL {url:?}"
            );
            write_file(
                &dir.path().join(OAUTH2_CONFIG),
                oauth2_config(url).as_bytes(),
                0o644,
            );
        }

        let ca_cert = options
            .tls
            .then(|| generate_certificates(&dir.path().join("tls")));

        let mut server = Dovecot {
            child: None,
            master: None,
            imap_port: 0,
            imaps_port: None,
            ca_cert,
            layout: options.layout,
            users: options.users.iter().map(|(name, _)| name.clone()).collect(),
            mail_owner,
            deliveries: Mutex::new(Delivery::default()),
            dir,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            server.imap_port = crate::free_port();
            server.imaps_port = options.tls.then(crate::free_port);
            if server.imaps_port == Some(server.imap_port) {
                continue;
            }
            let config = Settings {
                dir: server.dir.path(),
                options: &options,
                imap_port: server.imap_port,
                imaps_port: server.imaps_port,
                mail_owner,
                unprivileged_as: unprivileged_as.clone(),
            }
            .render();
            write_file(&server.config_path(), config.as_bytes(), 0o644);
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(failure) => {
                    let log = server.log_tail(60);
                    let port_taken = log.contains("Address already in use");
                    if port_taken && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    panic!(
                        "dovecot did not start ({failure}); config {}\n--- log tail ---\n{log}",
                        server.config_path().display()
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The plaintext IMAP port on [`HOST`] (STARTTLS offered when TLS is on).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The implicit-TLS IMAP port on [`HOST`], when TLS is on.
    pub fn imaps_port(&self) -> Option<u16> {
        self.imaps_port
    }

    /// `127.0.0.1:<imap_port>`.
    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::from((HOST, self.imap_port))
    }

    /// `127.0.0.1:<imaps_port>`, when TLS is on.
    pub fn imaps_addr(&self) -> Option<SocketAddr> {
        self.imaps_port.map(|port| SocketAddr::from((HOST, port)))
    }

    /// The PEM file of the CA that signed the server certificate (for `localhost` and
    /// 127.0.0.1), when TLS is on. Generated per run; trust only this.
    pub fn ca_cert_pem_path(&self) -> Option<PathBuf> {
        self.ca_cert.clone()
    }

    /// Whether the server process is running (false between [`Dovecot::stop`] and
    /// [`Dovecot::restart`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The run's directory (configuration, log, sockets, mail).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated `dovecot.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// Dovecot's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// The last `lines` lines of Dovecot's log, and anything it wrote to stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut tail = String::new();
        for file in ["dovecot.stderr", "dovecot.log"] {
            let text = fs::read(self.dir.path().join(file))
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            for line in &all[all.len().saturating_sub(lines)..] {
                tail.push_str(line);
                tail.push('\n');
            }
        }
        tail
    }

    /// The user's Maildir, which is also their INBOX.
    pub fn maildir(&self, user: &str) -> PathBuf {
        assert!(
            self.users.iter().any(|known| known == user),
            "no user {user:?} on this server (users: {:?})",
            self.users
        );
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// The directory of a folder, by its IMAP name (see the module documentation).
    /// It need not exist.
    pub fn folder_path(&self, user: &str, folder: &str) -> PathBuf {
        let root = self.maildir(user);
        let separator = self.layout.separator();
        assert!(!folder.is_empty(), "empty folder name");
        assert!(
            !folder.contains(['\0', '\r', '\n']),
            "folder name {folder:?} has control characters"
        );
        if folder.eq_ignore_ascii_case("INBOX") {
            return root;
        }
        let mut components: Vec<&str> = folder.split(separator).collect();
        for component in &components {
            assert!(
                !component.is_empty() && *component != "." && *component != "..",
                "bad folder name {folder:?} (separator {separator:?})"
            );
            assert!(
                !component.contains('/'),
                "folder name {folder:?} has a '/', which the Maildir++ layout does not allow"
            );
        }
        if components[0].eq_ignore_ascii_case("INBOX") {
            components[0] = "INBOX";
        }
        let name = modified_utf7(&components.join(&separator.to_string()));
        match self.layout {
            Layout::MaildirPlusPlus => root.join(format!(".{name}")),
            Layout::Fs => root.join(name),
        }
    }

    /// Creates a folder (and, with the fs layout, its parents) if it does not exist.
    /// Visible in `LIST` at once (not subscribed).
    pub fn create_folder(&self, user: &str, folder: &str) {
        let root = self.maildir(user);
        let path = self.folder_path(user, folder);
        let mut missing = Vec::new();
        let mut at = path.as_path();
        while !at.exists() {
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.iter().rev() {
            self.mkdir_owned(dir);
        }
        if !root.join("cur").exists() || missing.contains(&root) {
            for sub in ["cur", "new", "tmp"] {
                self.mkdir_owned(&root.join(sub));
            }
        }
        for sub in ["cur", "new", "tmp"] {
            let sub = path.join(sub);
            if !sub.exists() {
                self.mkdir_owned(&sub);
            }
        }
        if self.layout == Layout::MaildirPlusPlus && path != root {
            let marker = path.join("maildirfolder");
            if !marker.exists() {
                write_file(&marker, b"", 0o600);
                self.give_to_mail_owner(&marker);
            }
        }
    }

    /// Delivers a mail into a folder, creating the folder if it is missing. Clients see
    /// it at their next sync of the folder (see the module documentation).
    pub fn append(&self, user: &str, folder: &str, raw: &[u8]) {
        self.create_folder(user, folder);
        let path = self.folder_path(user, folder);
        let name = self.unique_name(raw.len());
        let tmp = path.join("tmp").join(&name);
        write_file(&tmp, raw, 0o600);
        self.give_to_mail_owner(&tmp);
        let new = path.join("new").join(&name);
        fs::rename(&tmp, &new)
            .unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), new.display()));
    }

    /// How many mails the folder holds (files in `new/` and `cur/`; a mail flagged
    /// `\Deleted` counts until it is expunged). 0 for a folder that does not exist.
    pub fn folder_count(&self, user: &str, folder: &str) -> usize {
        self.mail_files(user, folder).len()
    }

    /// The raw mails of a folder, in UID order (mails Dovecot has not seen yet last, in
    /// delivery order).
    pub fn folder_messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        self.folder_mails(user, folder)
            .into_iter()
            .map(|mail| mail.raw)
            .collect()
    }

    /// The mails of a folder with their UIDs and flags, in the order of
    /// [`Dovecot::folder_messages`].
    pub fn folder_mails(&self, user: &str, folder: &str) -> Vec<StoredMail> {
        let uids = self.uidlist(user, folder).map(|list| list.uids);
        let mut mails: Vec<StoredMail> = self
            .mail_files(user, folder)
            .into_iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let (base, info) = name.split_once(':').unwrap_or((&name, ""));
                let flags = info.strip_prefix("2,").unwrap_or("").to_string();
                let uid = uids
                    .as_ref()
                    .and_then(|uids| uids.iter().find(|(_, b)| b == base).map(|(uid, _)| *uid));
                let raw =
                    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                StoredMail {
                    uid,
                    flags,
                    path,
                    raw,
                }
            })
            .collect();
        mails.sort_by(|a, b| {
            let key = |m: &StoredMail| {
                (
                    m.uid.is_none(),
                    m.uid,
                    m.path.file_name().map(|n| n.to_owned()),
                )
            };
            key(a).cmp(&key(b))
        });
        mails
    }

    /// The folder's UIDVALIDITY as Dovecot last recorded it (`dovecot-uidlist`), or
    /// `None` before Dovecot has opened the folder.
    pub fn uidvalidity(&self, user: &str, folder: &str) -> Option<u32> {
        self.uidlist(user, folder).map(|list| list.uidvalidity)
    }

    /// Makes Dovecot forget the folder's UIDs: at its next access (by any client, or by
    /// `doveadm`) the folder gets a new, larger UIDVALIDITY and its mails new UIDs from 1
    /// (see the module documentation). [`Dovecot::uidvalidity`] is `None` until then.
    pub fn reset_uidvalidity(&self, user: &str, folder: &str) {
        let path = self.folder_path(user, folder);
        let entries = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("folder {folder:?} of {user:?} ({}): {e}", path.display()));
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("dovecot-uidlist") || name.starts_with("dovecot.index") {
                fs::remove_file(entry.path())
                    .unwrap_or_else(|e| panic!("remove {}: {e}", entry.path().display()));
            }
        }
    }

    /// Runs `doveadm -c <this run's config> <args>` (needs the server running for
    /// anything that looks up users), e.g. `["expunge", "-u", "alice", "mailbox",
    /// "INBOX", "all"]`.
    pub fn doveadm(&self, args: &[&str]) -> Output {
        Command::new(find_program("doveadm"))
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run doveadm")
    }

    /// Stops the server gracefully: clients get `* BYE Server shutting down.` and see
    /// the connection close, new connections are refused. The mail store stays.
    /// Does nothing when it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as libc::pid_t;
        let Some(master) = self.master.take() else {
            kill_group(child);
            return;
        };
        let signalled = Instant::now();
        unsafe { libc::kill(master, libc::SIGTERM) };
        // The master stops accepting and ends its services (auth first), but leaves the
        // client processes (imap sessions, imap-login TLS proxies) running, services
        // that those still talk to wait for them, and at its end it sleeps a whole
        // second for its log process. So, in steps: once auth is gone, the sessions are
        // told to end (each says `* BYE Server shutting down.`); once they are gone,
        // the TLS proxies have 0.1 s to pass that on and close; then the whole group is
        // killed.
        let mut step = StopStep::Stopping;
        while signalled.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            let members = group_members(group);
            let named = |name: &'static str| members.iter().filter(move |m| m.name == name);
            match step {
                StopStep::Stopping => {
                    if named("auth").next().is_none()
                        || signalled.elapsed() > Duration::from_millis(300)
                    {
                        for session in named("imap") {
                            unsafe { libc::kill(session.pid, libc::SIGTERM) };
                        }
                        step = StopStep::SessionsTold;
                    }
                }
                StopStep::SessionsTold => {
                    if named("imap").next().is_none() {
                        step = StopStep::SessionsGone(Instant::now());
                    }
                }
                StopStep::SessionsGone(since) => {
                    if named("imap-login").next().is_none() {
                        break;
                    }
                    if since.elapsed() > Duration::from_millis(100) {
                        for login in named("imap-login") {
                            unsafe { libc::kill(login.pid, libc::SIGTERM) };
                        }
                        step = StopStep::LoginsTold;
                    }
                }
                StopStep::LoginsTold => {
                    if named("imap-login").next().is_none() {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        kill_group(child);
        let _ = fs::remove_file(self.dir.path().join("run").join("master.pid"));
    }

    /// Stops the server if it runs and starts it again with the same configuration,
    /// ports and mail store. Panics when it cannot (e.g. a port was taken meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(failure) = self.spawn_and_wait() {
            panic!(
                "dovecot did not restart ({failure})\n--- log tail ---\n{}",
                self.log_tail(60)
            );
        }
    }

    /// Starts `dovecot -F` and waits until it serves; kills it again on failure.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dovecot.stderr"))
            .map_err(|e| format!("open dovecot.stderr: {e}"))?;
        // A watchdog shell leads the process group: it runs `dovecot -F` and waits for
        // it (so its exit is Dovecot's), and kills the whole group when its stdin, a
        // pipe this process holds, reaches EOF: when this process ends without
        // dropping the `Dovecot` (killed, aborted, or a leaked static).
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(find_program("dovecot"))
            .arg("-F")
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::piped())
            .stdout(stderr.try_clone().map_err(|e| e.to_string())?)
            .stderr(stderr)
            .process_group(0);
        let child = command.spawn().map_err(|e| format!("spawn dovecot: {e}"))?;
        self.child = Some(child);
        self.master = None;
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.kill();
                Err(failure)
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let pid_file = self.dir.path().join("run").join("master.pid");
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("dovecot exited with {status}"));
            }
            self.master = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|pid| pid.trim().parse().ok());
            if self.master.is_some()
                && greets(self.imap_addr())
                && self.imaps_addr().is_none_or(accepts)
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("not ready after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the whole process group at once (no goodbye to clients).
    fn kill(&mut self) {
        self.master = None;
        if let Some(child) = self.child.take() {
            kill_group(child);
            let _ = fs::remove_file(self.dir.path().join("run").join("master.pid"));
        }
    }

    fn mail_files(&self, user: &str, folder: &str) -> Vec<PathBuf> {
        let path = self.folder_path(user, folder);
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(path.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                if is_file && !entry.file_name().to_string_lossy().starts_with('.') {
                    files.push(entry.path());
                }
            }
        }
        files
    }

    fn uidlist(&self, user: &str, folder: &str) -> Option<UidList> {
        let text =
            fs::read_to_string(self.folder_path(user, folder).join("dovecot-uidlist")).ok()?;
        UidList::parse(&text)
    }

    /// A Maildir file name that sorts after every earlier one of this server (Dovecot
    /// numbers new mails in the order of the time in their names).
    fn unique_name(&self, size: usize) -> String {
        let mut delivery = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        delivery.last_micros = now.max(delivery.last_micros + 1);
        delivery.count += 1;
        let micros = delivery.last_micros;
        format!(
            "{}.M{}P{}Q{}.postdesk-testkit,S={size}",
            micros / 1_000_000,
            micros % 1_000_000,
            std::process::id(),
            delivery.count
        )
    }

    fn mkdir_owned(&self, dir: &Path) {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return,
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
        set_mode(dir, 0o700);
        self.give_to_mail_owner(dir);
    }

    fn give_to_mail_owner(&self, path: &Path) {
        chown(path, Some(self.mail_owner.0), Some(self.mail_owner.1))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("dir", &self.dir.path())
            .field("imap_port", &self.imap_port)
            .field("imaps_port", &self.imaps_port)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Settings<'_> {
    fn render(&self) -> String {
        let dir = self.dir.display();
        let options = self.options;
        let mut conf = String::new();
        let mut line = |text: String| {
            conf.push_str(&text);
            conf.push('\n');
        };
        line("# Written by postdesk-testkit for one test run.".into());
        line("protocols = imap".into());
        line("listen = 127.0.0.1".into());
        line(format!("base_dir = {dir}/run"));
        line(format!("state_dir = {dir}/state"));
        line(format!(
            "instance_name = postdesk-testkit-{}",
            self.dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        line(format!("log_path = {dir}/dovecot.log"));
        // No stats process to wait for at shutdown.
        line("stats_writer_socket_path =".into());
        line("disable_plaintext_auth = no".into());
        line(match options.oauth2_introspection_url {
            Some(_) => "auth_mechanisms = plain login xoauth2 oauthbearer".into(),
            None => "auth_mechanisms = plain login".into(),
        });
        // Failed logins are answered at Dovecot's next 0.5 s flush, not after 2 s.
        line("auth_failure_delay = 0".into());
        line("auth_verbose = yes".into());
        line("mail_max_userip_connections = 1000".into());
        line("mail_fsync = never".into());
        // IDLE notices mail written into the Maildir by inotify, or by this poll.
        line("mailbox_idle_check_interval = 1 secs".into());
        // LIST reads the directories each time, so folders made by the harness show
        // up in sessions that are already open.
        line("mailbox_list_index = no".into());
        line(match options.layout {
            Layout::MaildirPlusPlus => "mail_location = maildir:~/Maildir".into(),
            Layout::Fs => "mail_location = maildir:~/Maildir:LAYOUT=fs".into(),
        });
        line(format!(
            "namespace inbox {{\n  inbox = yes\n  prefix =\n  separator = {}\n}}",
            options.layout.separator()
        ));
        if options.disable_move {
            line(format!("imap_capability = {CAPABILITIES_WITHOUT_MOVE}"));
        }
        match self.imaps_port {
            Some(_) => {
                let tls = self.dir.join("tls");
                line("ssl = yes".into());
                line(format!("ssl_cert = <{}", tls.join("server.pem").display()));
                line(format!("ssl_key = <{}", tls.join("server.key").display()));
            }
            None => line("ssl = no".into()),
        }
        match options.oauth2_introspection_url {
            // Passwords for LOGIN, PLAIN and LOGIN; bearer tokens for the OAuth2
            // mechanisms only (a password is never sent to the introspection URL, a
            // token never compared with a password).
            Some(_) => line(format!(
                "passdb {{\n  driver = passwd-file\n  mechanisms = plain login\n  \
                 args = scheme=PLAIN username_format=%u {dir}/passwd\n}}\n\
                 passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  \
                 args = {dir}/{OAUTH2_CONFIG}\n}}"
            )),
            None => line(format!(
                "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {dir}/passwd\n}}"
            )),
        }
        line(format!(
            "userdb {{\n  driver = static\n  args = uid={} gid={} home={dir}/home/%u\n}}",
            self.mail_owner.0, self.mail_owner.1
        ));
        // Without this every failed login delays the next one from the same IP by seconds.
        line("service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}".into());
        let imaps = match self.imaps_port {
            Some(port) => format!(
                "  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n"
            ),
            None => "  inet_listener imaps {\n    port = 0\n  }\n".into(),
        };
        line(format!(
            "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {}\n  }}\n{imaps}}}",
            self.imap_port
        ));
        if let Some((user, group)) = &self.unprivileged_as {
            // Not root: everything runs as the current user, nothing can chroot.
            line(format!("default_internal_user = {user}"));
            line(format!("default_internal_group = {group}"));
            line(format!("default_login_user = {user}"));
            line(format!("first_valid_uid = {}", self.mail_owner.0));
            line(format!("first_valid_gid = {}", self.mail_owner.1));
            for service in [
                "imap-login",
                "anvil",
                "auth",
                "auth-worker",
                "log",
                "config",
            ] {
                line(format!("service {service} {{\n  chroot =\n  user =\n}}"));
            }
        }
        conf
    }
}

/// The oauth2 passdb's settings file, in the run's directory.
const OAUTH2_CONFIG: &str = "oauth2.conf.ext";

/// The oauth2 passdb's settings: every token is POSTed (`token=<token>`) to the
/// introspection URL, and accepted when the answer has `"active": true` and a
/// `"username"` equal to the login's user name.
fn oauth2_config(introspection_url: &str) -> String {
    format!(
        "introspection_mode = post\n\
         introspection_url = {introspection_url}\n\
         force_introspection = yes\n\
         username_attribute = username\n\
         active_attribute = active\n\
         active_value = true\n\
         timeout_msecs = 5000\n"
    )
}

/// `dovecot-uidlist`: `3 V<uidvalidity> N<next uid> ...` then `<uid> [fields] :<name>`.
struct UidList {
    uidvalidity: u32,
    uids: Vec<(u32, String)>,
}

impl UidList {
    fn parse(text: &str) -> Option<UidList> {
        let mut lines = text.lines();
        let header = lines.next()?;
        let uidvalidity = header
            .split(' ')
            .find_map(|field| field.strip_prefix('V'))?
            .parse()
            .ok()?;
        let uids = lines
            .filter_map(|line| {
                let (fields, name) = line.split_once(':')?;
                let uid = fields.split(' ').next()?.parse().ok()?;
                Some((uid, name.to_string()))
            })
            .collect();
        Some(UidList { uidvalidity, uids })
    }
}

/// Connects and reads Dovecot's `* OK` greeting (sent only once auth is up).
fn greets(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = String::new();
    let ok =
        BufReader::new(&stream).read_line(&mut greeting).is_ok() && greeting.starts_with("* OK");
    if ok {
        let _ = (&stream).write_all(b"z LOGOUT\r\n");
        let _ = (&stream).read(&mut [0; 256]);
    }
    ok
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Writes the run's CA and server certificate into `dir`; returns the CA's path.
fn generate_certificates(dir: &Path) -> PathBuf {
    fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    set_mode(dir, 0o755);
    crate::write_certificates(dir, "postdesk testkit CA");
    dir.join("ca.pem")
}

/// Where [`Dovecot::stop`] is.
enum StopStep {
    Stopping,
    SessionsTold,
    SessionsGone(Instant),
    LoginsTold,
}

/// SIGKILLs Dovecot's process group, reaps its leader (the watchdog shell) and waits
/// until no process of the group is left (the login processes hold the listening
/// sockets).
fn kill_group(mut leader: Child) {
    let pgid = leader.id() as libc::pid_t;
    // The group id stays reserved while any member lives, even after the leader is
    // reaped, so this cannot hit an unrelated process.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let _ = leader.wait();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !group_members(pgid).is_empty() && Instant::now() < deadline {
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A process in Dovecot's process group.
struct Member {
    pid: libc::pid_t,
    /// The service (`log`, `imap`, `auth`, …): the process's `comm`.
    name: String,
}

/// The live (non-zombie) processes of a process group, from /proc.
fn group_members(pgid: libc::pid_t) -> Vec<Member> {
    let mut members = Vec::new();
    for (pid, dir) in crate::processes() {
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm (the executable's name: imap, log,
        // imap-login, ...) may contain spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 3 || fields[0] == "Z" || fields[2].parse() != Ok(pgid) {
            continue;
        }
        let name = head.split_once('(').map_or("", |(_, comm)| comm);
        members.push(Member {
            pid,
            name: name.to_string(),
        });
    }
    members
}

/// `name` on $PATH or in the sbin directories (which a non-root $PATH often lacks).
pub(crate) fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH or in /usr/sbin (apt-get install dovecot-imapd openssl)"
            )
        })
}

fn check_user_name(name: &str) {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
        && !name.starts_with('.');
    assert!(
        ok,
        "user name {name:?}: use 1-64 of A-Z a-z 0-9 . _ @ + - (not starting with '.')"
    );
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3501 modified UTF-7, as Dovecot names folders on disk.
pub fn modified_utf7(name: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    fn flush(out: &mut String, units: &mut Vec<u16>) {
        if units.is_empty() {
            return;
        }
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out.push('-');
        units.clear();
    }
    let mut out = String::new();
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut units);
    out
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

fn lookup_user(name: &str) -> Option<Passwd> {
    let name = std::ffi::CString::new(name).ok()?;
    passwd_entry(|pwd, buf, len, result| unsafe {
        libc::getpwnam_r(name.as_ptr(), pwd, buf, len, result)
    })
}

fn current_user() -> Passwd {
    let uid = unsafe { libc::geteuid() };
    passwd_entry(|pwd, buf, len, result| unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) })
        .unwrap_or_else(|| Passwd {
            name: uid.to_string(),
            uid,
            gid: unsafe { libc::getegid() },
        })
}

fn passwd_entry(
    call: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> Option<Passwd> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result = std::ptr::null_mut();
    let rc = call(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
    if rc != 0 || result.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    Some(Passwd {
        name,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

fn group_name(gid: u32) -> Option<String> {
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result = std::ptr::null_mut();
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(
        unsafe { std::ffi::CStr::from_ptr(grp.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_matches_dovecot() {
        assert_eq!(modified_utf7("Grüße & Co"), "Gr&APwA3w-e &- Co");
        assert_eq!(modified_utf7("Processed.2024"), "Processed.2024");
        assert_eq!(modified_utf7("日本語"), "&ZeVnLIqe-");
        assert_eq!(
            modified_utf7("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn uidlist_parses() {
        let list =
            UidList::parse("3 V1795314097 N5 Gabc\n1 :1.M1P1.host\n2 G1234 :2.M2P2.host,S=5\n")
                .expect("parses");
        assert_eq!(list.uidvalidity, 1_795_314_097);
        assert_eq!(
            list.uids,
            vec![
                (1, "1.M1P1.host".to_string()),
                (2, "2.M2P2.host,S=5".to_string())
            ]
        );
    }
}
