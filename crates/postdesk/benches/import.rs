//! Import benchmark: N generated mails in a Maildir → `postdesk import` → SQLite
//! (synchronous=FULL), or PostgreSQL with `POSTDESK_BENCH_DATABASE=postgres` (a server
//! of its own from testkit, with PostgreSQL's default `fsync` and `synchronous_commit`
//! on). Prints mails/s and the importer's peak RSS and CPU seconds (and PostgreSQL's
//! CPU seconds beside them), then checks that every mail landed where the generator's
//! manifest says.
//!
//! cargo bench -p postdesk --bench import -- [N...]   (default: 10000 100000)
//! The generator is ../shared/bench/gen_mail.py (override with POSTDESK_GEN_MAIL).
//!
//! `POSTDESK_BENCH_INSTANCES=K` runs K importers at once, as K instances on K mailboxes:
//! N/K mails each (generated with seeds 1…K), each into a helpdesk of its own
//! (`import --helpdesk`), all on the one database; mails/s is all N over the time until
//! the last one finished. Compare with K = 1 for what several instances add.
//! `POSTDESK_BENCH_BATCH=N` sets the mails per transaction (`batch_size`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use postdesk_testkit::postgres::PostgresServer;

mod common;
use rusqlite::OptionalExtension;

/// Where the tickets go: the SQLite file in the data folder, or a PostgreSQL database.
enum Target {
    Sqlite,
    Postgres(Box<PostgresServer>),
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let generator = std::env::var("POSTDESK_GEN_MAIL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen_mail.py")
        });
    // Removed only at the end: ext4 without a journal (as here) passes over the
    // inodes of files deleted in the last minute when it makes a new file, which
    // slowed the next size's attachment files by a tenth.
    let target = match std::env::var("POSTDESK_BENCH_DATABASE").as_deref() {
        Ok("postgres") => Target::Postgres(Box::new(
            PostgresServer::start().expect("a PostgreSQL for the benchmark"),
        )),
        _ => Target::Sqlite,
    };
    let dirs: Vec<tempfile::TempDir> = sizes
        .into_iter()
        .map(|n| bench(n, &generator, &target))
        .collect();
    drop(dirs);
}

fn instances() -> usize {
    std::env::var("POSTDESK_BENCH_INSTANCES")
        .ok()
        .and_then(|k| k.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(1)
}

fn bench(n: usize, generator: &Path, target: &Target) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let k = instances();
    // Instance i's Maildir and manifest: N/K generated mails, seed i + 1.
    let sets: Vec<(PathBuf, PathBuf)> = (0..k)
        .map(|i| {
            let maildir = dir.path().join(format!("Maildir{i}"));
            let manifest = dir.path().join(format!("manifest{i}.json"));
            let status = Command::new("python3")
                .arg(generator)
                .args(["--n", &(n / k).to_string(), "--id-format", "[HD#{id}]"])
                .args(["--seed", &(i + 1).to_string()])
                .arg("--maildir")
                .arg(&maildir)
                .arg("--manifest")
                .arg(&manifest)
                .status()
                .expect("python3 runs the generator");
            assert!(status.success(), "the generator failed");
            (maildir, manifest)
        })
        .collect();
    let config = dir.path().join("postdesk.toml");
    let database_url = match target {
        Target::Sqlite => None,
        Target::Postgres(server) => Some(server.fresh_database()),
    };
    let database_line = database_url
        .as_ref()
        .map(|url| format!("database_url = \"{url}\"\n"))
        .unwrap_or_default();
    let helpdesks: String = (0..k)
        .map(|i| {
            let name = helpdesk_name(i);
            let address = name.to_lowercase();
            format!("[[helpdesk]]\nname = \"{name}\"\naddresses = [\"{address}@example.com\"]\n")
        })
        .collect();
    // `POSTDESK_BENCH_BATCH=N`: mails per transaction (`batch_size`; the default else).
    let batch_line = std::env::var("POSTDESK_BENCH_BATCH")
        .map(|n| format!("batch_size = {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!("data_dir = \"data\"\n{batch_line}{database_line}{helpdesks}"),
    )
    .unwrap();
    {
        // Not timed: the schema is made explicitly, as in production (and before
        // several importers would race to make a new SQLite file).
        let status = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .args(["db", "migrate"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "postdesk db migrate failed");
    }
    let database_cpu_before = database_cpu(target);
    let load_before = common::load_average();

    let started = Instant::now();
    let children: Vec<_> = sets
        .iter()
        .enumerate()
        .map(|(i, (maildir, _))| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_postdesk"));
            command.arg("--config").arg(&config).arg("import");
            if k > 1 {
                command.args(["--helpdesk", &helpdesk_name(i)]);
            }
            command.arg(maildir).spawn().unwrap()
        })
        .collect();
    // Reaped with wait4, which also reports each child's peak RSS.
    let mut peak_rss_kb = 0;
    let mut cpu_secs = 0.0;
    for child in &children {
        let finished = common::wait_for(child.id() as libc::pid_t);
        assert_eq!(finished.code, 0, "postdesk import failed");
        peak_rss_kb = peak_rss_kb.max(finished.peak_rss_kb);
        cpu_secs += finished.cpu_secs;
    }
    let elapsed = started.elapsed();
    let database_cpu = match target {
        Target::Sqlite => String::new(),
        Target::Postgres(_) => format!(
            ", PostgreSQL {:.2} CPU s",
            database_cpu(target) - database_cpu_before
        ),
    };
    let importers = if k > 1 {
        format!(" ({k} importers at once; RSS is the largest, CPU the sum)")
    } else {
        String::new()
    };
    let n = n / k * k;
    println!(
        "import n={n}: {:.2} s, {:.0} mails/s, peak RSS {:.1} MB, {cpu_secs:.2} CPU s{database_cpu}{importers}; load average {load_before} before",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        peak_rss_kb as f64 / 1024.0
    );
    let mut wrong = Vec::new();
    for (_, manifest) in &sets {
        wrong.extend(match &database_url {
            None => check_manifest(
                manifest,
                &mut sqlite_finder(&dir.path().join("data/postdesk.db")),
            ),
            Some(url) => check_manifest(manifest, &mut postgres_finder(url)),
        });
    }
    println!(
        "manifest n={n}: {} of {n} mails where the manifest says",
        n - wrong.len()
    );
    for w in wrong.iter().take(10) {
        println!("  {w}");
    }
    dir
}

/// The helpdesk instance `i` imports into.
fn helpdesk_name(i: usize) -> String {
    if i == 0 {
        "Support".into()
    } else {
        format!("Desk{i}")
    }
}

fn database_cpu(target: &Target) -> f64 {
    match target {
        Target::Sqlite => 0.0,
        Target::Postgres(server) => server.cpu_seconds(),
    }
}

/// A mail's ticket number and entry text, by its Message-ID (or hash): through the
/// ledger's index, the mail's intake row, then its entry.
const FIND_ENTRY: &str =
    "SELECT t.number, e.body_text FROM intake i JOIN entries e ON e.intake_id = i.id
     JOIN tickets t ON t.id = e.ticket_id WHERE coalesce(i.message_id, i.sha256) = $1";

type Finder = dyn FnMut(&str) -> Option<(i64, String)>;

fn sqlite_finder(db: &Path) -> Box<Finder> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    Box::new(move |message_id| {
        conn.prepare_cached(FIND_ENTRY)
            .unwrap()
            .query_row([message_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .unwrap()
    })
}

fn postgres_finder(url: &str) -> Box<Finder> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let find = client.prepare(FIND_ENTRY).unwrap();
    Box::new(move |message_id| {
        client
            .query_opt(&find, &[&message_id])
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    })
}

/// Mails that did not become what the manifest expects.
fn check_manifest(manifest: &Path, find: &mut Finder) -> Vec<String> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let mut wrong = Vec::new();
    for m in manifest["messages"].as_array().unwrap() {
        let message_id = m["message_id"].as_str().unwrap().trim_matches(['<', '>']);
        let expected = m["expect_ticket_id"]
            .as_i64()
            .or(m["ref_ticket_id"].as_i64());
        let Some((number, body)) = find(message_id) else {
            wrong.push(format!("{message_id}: no entry"));
            continue;
        };
        if Some(number) != expected {
            wrong.push(format!(
                "{message_id}: ticket #{number}, expected {expected:?}"
            ));
        }
        for key in ["token", "marker"] {
            let want = m[key].as_str().unwrap();
            if !body.contains(want) {
                wrong.push(format!("{message_id}: body lacks its {key} {want:?}"));
            }
        }
    }
    wrong
}
