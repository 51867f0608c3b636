//! IMAP benchmark against a real Dovecot: N generated mails in INBOX → `postdesk scan`
//! → tickets (mails/s, peak RSS), then the delay from a mail's arrival to its committed
//! ticket with `postdesk serve` in IDLE (p50 / p99 over M mails).
//!
//! cargo bench -p postdesk --bench imap -- [N] [M]     (default: 10000 200)
//! The generator is ../shared/bench/gen_mail.py (override with POSTDESK_GEN_MAIL).
//! Also prints the load average before the scan: figures of a busy machine say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postdesk_testkit::dovecot::{Dovecot, DovecotOptions};

mod common;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(10_000);
    let m = args.get(1).copied().unwrap_or(200);
    let generator = std::env::var("POSTDESK_GEN_MAIL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen_mail.py")
        });
    let server = Dovecot::start(DovecotOptions::default().user("support", "secret"));
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("postdesk.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[[helpdesk]]\nname = \"Support\"\naddresses = [\"support@example.com\"]\n\
             [[helpdesk.mailbox]]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nuser = \"support\"\n\
             password = \"secret\"\ncreate_folders = true\n",
            server.imap_port()
        ),
    )
    .unwrap();

    // The generator writes straight into the INBOX Maildir, in UID order.
    let status = Command::new("python3")
        .arg(&generator)
        .args(["--n", &n.to_string(), "--id-format", "[HD#{id}]"])
        .arg("--maildir")
        .arg(server.maildir("support"))
        .arg("--manifest")
        .arg(work.path().join("manifest.json"))
        .status()
        .expect("python3 runs the generator");
    assert!(status.success());
    fix_owner(&server.maildir("support"));

    println!("load average before the scan: {}", common::load_average());
    let started = Instant::now();
    // Reaped below with wait4, which also reports the child's peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("scan")
        .spawn()
        .unwrap();
    let finished = common::wait_for(child.id() as libc::pid_t);
    let elapsed = started.elapsed();
    assert_eq!(finished.code, 0);
    println!(
        "imap scan n={n}: {:.2} s, {:.0} mails/s, peak RSS {:.1} MB, postdesk {:.1} CPU s; INBOX left {}, Processed {}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        finished.peak_rss_kb as f64 / 1024.0,
        finished.cpu_secs,
        server.folder_count("support", "INBOX"),
        server.folder_count("support", "Processed"),
    );

    // IDLE latency: one mail at a time, from delivery to its move out of INBOX (after the commit).
    let mut serve = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut delays = Vec::with_capacity(m);
    let before = server.folder_count("support", "Processed");
    for i in 0..m {
        let raw = format!(
            "From: idle{i}@example.org\r\nTo: support@example.com\r\nSubject: idle {i}\r\nMessage-ID: <idle-{i}@example.org>\r\n\r\nhello {i}\r\n"
        );
        let appended = Instant::now();
        server.append("support", "INBOX", raw.as_bytes());
        while server.folder_count("support", "Processed") < before + i + 1 {
            if appended.elapsed() > Duration::from_secs(30) {
                panic!("mail {i} was not processed within 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        delays.push(appended.elapsed());
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(serve.id().to_string())
        .status()
        .unwrap();
    serve.wait().unwrap();
    delays.sort();
    let pct = |p: f64| delays[((delays.len() as f64 * p) as usize).min(delays.len() - 1)];
    println!(
        "imap idle m={m}: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        delays[delays.len() - 1]
    );
}

/// The generator ran as root; Dovecot's mail processes run as the owner of the home folder.
fn fix_owner(maildir: &Path) {
    let owner = std::fs::metadata(maildir.parent().unwrap()).unwrap();
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!(
            "{}:{}",
            std::os::unix::fs::MetadataExt::uid(&owner),
            std::os::unix::fs::MetadataExt::gid(&owner)
        ))
        .arg(maildir)
        .status()
        .unwrap();
    assert!(status.success());
}
