//! Where a mail's preparation time goes: each stage of `prepare` timed on its own,
//! on one thread, over N generated mails (µs per mail). The database side is
//! measured by the import benchmark (`cargo bench -p postdesk --bench import`).
//!
//! cargo bench -p postdesk-pipeline --bench stages -- [N]   (default: 2000)
//! The generator is ../shared/bench/gen_mail.py (override with POSTDESK_GEN_MAIL).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use postdesk_mail::{classify, parse, strip_reply};
use postdesk_store::blobs;
use sha2::{Digest, Sha256};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let generator = std::env::var("POSTDESK_GEN_MAIL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen_mail.py")
        });
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let status = Command::new("python3")
        .arg(&generator)
        .args(["--n", &n.to_string(), "--id-format", "[HD#{id}]"])
        .arg("--maildir")
        .arg(&maildir)
        .arg("--manifest")
        .arg(dir.path().join("manifest.json"))
        .status()
        .expect("python3 runs the generator");
    assert!(status.success(), "the generator failed");
    let mails: Vec<Vec<u8>> = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let bytes: usize = mails.iter().map(Vec::len).sum();
    println!(
        "stages over {} mails ({} KB on average), one thread, µs per mail:",
        mails.len(),
        bytes / mails.len() / 1024
    );

    let report = |name: &str, elapsed: Duration| {
        println!(
            "  {name:<28} {:>7.1}",
            elapsed.as_secs_f64() * 1e6 / mails.len() as f64
        );
    };
    report(
        "sha256 of the raw mail",
        time(|| {
            for m in &mails {
                std::hint::black_box(Sha256::digest(m));
            }
        }),
    );
    report(
        "compress the raw mail (zstd)",
        time(|| {
            for m in &mails {
                std::hint::black_box(blobs::compress(m).unwrap());
            }
        }),
    );
    let mut parsed = Vec::with_capacity(mails.len());
    report(
        "parse (with HTML sanitizing)",
        time(|| parsed.extend(mails.iter().map(|m| parse(m)))),
    );
    report(
        "  of which: sanitize HTML",
        time(|| {
            for p in &parsed {
                if let Some(html) = &p.html {
                    std::hint::black_box(postdesk_mail::sanitize::sanitize_html(html, &|_| None));
                }
            }
        }),
    );
    report(
        "classify",
        time(|| {
            for p in &parsed {
                std::hint::black_box(classify(p, &[]));
            }
        }),
    );
    report(
        "strip the quoted reply",
        time(|| {
            for p in &parsed {
                std::hint::black_box(strip_reply(&p.text, None));
            }
        }),
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}
