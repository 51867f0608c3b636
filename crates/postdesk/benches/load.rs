//! Load benchmark (issue 19): a store of N seeded tickets (`postdesk dev seed`, about
//! three entries each, over 4 helpdesks), `postdesk serve` on loopback, and 32 agents
//! with API tokens sending a mixed workload for a fixed time from a load generator in
//! this process (tokio + reqwest, one connection pool): the first page of the ticket
//! list, a page filtered by status and helpdesk, a deep page (far down the list), the
//! ticket page, and a search. The pages are the agents' HTML pages (a token is
//! taken there as on the API). The deep pages start at the list's far end (oldest
//! first) and go on by each agent following the page's "Next →" link (a keyset cursor,
//! `after=`), as the UI pages; past the last page they start again. Prints p50/p99 per
//! request kind against the targets, requests/s, and serve's RSS (now and
//! peak), with the machine's load.
//!
//! cargo bench -p postdesk --bench load -- [N...]            (default: 100000)
//! POSTDESK_BENCH_SECONDS=30   how long the load runs per size
//! POSTDESK_BENCH_DATABASE=postgres   a PostgreSQL of its own from testkit (seeded each run)
//! POSTDESK_BENCH_DEEP=number   the deep pages start 90 % down by number (`page=`, an
//!                              OFFSET) instead of at the list's far end by cursor
//!
//! On SQLite the seeded store is kept in the target folder (`load-bench/N`) and reused
//! by the next run of the same size; delete it to seed again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk_testkit::postgres::PostgresServer;

mod common;

const HELPDESKS: usize = 4;
const AGENTS: usize = 32;
/// The first agent of each helpdesk is made an admin: it sees every helpdesk.
const ADMINS_EVERY: usize = 8;
const SEED: u64 = 1;
const PER_PAGE: u64 = 50;
/// Words of the seeded texts, in several scripts.
const SEARCHES: [&str; 7] = [
    "printer",
    "Rechnung",
    "принтер",
    "請求書",
    "facture",
    "发票",
    "password",
];
const FILTER_STATUSES: [&str; 3] = ["open", "pending", "closed"];

/// What is asked, with the p99 target in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    List,
    Filtered,
    Deep,
    Ticket,
    Search,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::List,
        Kind::Filtered,
        Kind::Deep,
        Kind::Ticket,
        Kind::Search,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::List => "list, first page",
            Kind::Filtered => "list, status+helpdesk",
            Kind::Deep => "list, deep page",
            Kind::Ticket => "ticket page",
            Kind::Search => "search",
        }
    }

    fn target_ms(self) -> Option<f64> {
        match self {
            Kind::List | Kind::Filtered => Some(50.0),
            Kind::Ticket => Some(30.0),
            Kind::Search => Some(100.0),
            Kind::Deep => None,
        }
    }
}

/// One agent's round of twenty requests: the mix of the workload.
const ROUND: [Kind; 20] = {
    use Kind::*;
    [
        List, Ticket, Filtered, Ticket, List, Search, Ticket, Filtered, List, Deep, //
        Ticket, List, Filtered, Ticket, Search, List, Ticket, Filtered, Deep, Ticket,
    ]
};

enum Target {
    Sqlite,
    Postgres(Box<PostgresServer>),
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let seconds: u64 = std::env::var("POSTDESK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let target = match std::env::var("POSTDESK_BENCH_DATABASE").as_deref() {
        Ok("postgres") => Target::Postgres(Box::new(
            PostgresServer::start().expect("a PostgreSQL for the benchmark"),
        )),
        _ => Target::Sqlite,
    };
    for n in sizes {
        bench(n, seconds, &target);
    }
}

fn postdesk(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postdesk"));
    command.arg("--config").arg(config);
    command
}

#[track_caller]
fn run(command: &mut Command, stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The folder of the store of `n` tickets: kept on SQLite, new on PostgreSQL.
fn store_dir(n: u64, target: &Target) -> (PathBuf, Option<tempfile::TempDir>) {
    match target {
        Target::Sqlite => {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("load-bench")
                .join(n.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            (dir, None)
        }
        Target::Postgres(_) => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_path_buf(), Some(temp))
        }
    }
}

fn write_config(dir: &Path, database_url: Option<&str>, port: u16) -> PathBuf {
    let mut config = String::from("data_dir = \"data\"\n");
    if let Some(url) = database_url {
        config.push_str(&format!("database_url = \"{url}\"\n"));
    }
    config.push_str(&format!("[web]\nlisten = \"127.0.0.1:{port}\"\n"));
    for (name, address) in [
        ("Support", "support@example.com"),
        ("Sales", "sales@example.com"),
        ("Technik", "technik@example.de"),
        ("Поддержка", "help@example.ru"),
    ] {
        config.push_str(&format!(
            "[[helpdesk]]\nname = \"{name}\"\naddresses = [\"{address}\"]\n"
        ));
    }
    let path = dir.join("postdesk.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// An agent of the load: its token, and what it may see.
#[derive(Clone)]
struct LoadAgent {
    token: String,
    /// `None`: an admin, who sees every helpdesk.
    helpdesk: Option<String>,
}

/// What the requests are made of: tickets to open and pages to reach, per helpdesk.
struct Catalogue {
    /// Helpdesk name → a sample of its ticket ids.
    tickets: HashMap<String, Vec<i64>>,
    /// Helpdesk name → its tickets.
    counts: HashMap<String, i64>,
}

const CATALOGUE_TICKETS: &str = "SELECT t.id, h.name FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id WHERE t.id % 97 = 0";
const CATALOGUE_COUNTS: &str = "SELECT h.name, COUNT(*) FROM tickets t JOIN helpdesks h ON h.id = t.helpdesk_id GROUP BY h.name";

fn catalogue(dir: &Path, database_url: Option<&str>) -> Catalogue {
    let mut tickets: HashMap<String, Vec<i64>> = HashMap::new();
    let mut counts = HashMap::new();
    match database_url {
        None => {
            let conn = rusqlite::Connection::open_with_flags(
                dir.join("data/postdesk.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            let mut s = conn.prepare(CATALOGUE_TICKETS).unwrap();
            let rows = s
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .unwrap();
            for row in rows {
                let (id, hd) = row.unwrap();
                tickets.entry(hd).or_default().push(id);
            }
            let mut s = conn.prepare(CATALOGUE_COUNTS).unwrap();
            let rows = s
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .unwrap();
            for row in rows {
                let (hd, n) = row.unwrap();
                counts.insert(hd, n);
            }
        }
        Some(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            for row in client.query(CATALOGUE_TICKETS, &[]).unwrap() {
                tickets.entry(row.get(1)).or_default().push(row.get(0));
            }
            for row in client.query(CATALOGUE_COUNTS, &[]).unwrap() {
                counts.insert(row.get(0), row.get(1));
            }
        }
    }
    Catalogue { tickets, counts }
}

fn bench(n: u64, seconds: u64, target: &Target) {
    let (dir, _temp) = store_dir(n, target);
    let database_url = match target {
        Target::Sqlite => None,
        Target::Postgres(server) => Some(server.fresh_database()),
    };
    let port = free_port();
    let config = write_config(&dir, database_url.as_deref(), port);
    let seeded = dir.join("seeded");
    if seeded.exists() {
        println!("load n={n}: reusing the store in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir.join("data"));
        if database_url.is_some() {
            run(postdesk(&config).args(["db", "migrate"]), None);
        }
        println!(
            "load n={n}: seeding {} (load {})",
            dir.display(),
            common::load_average()
        );
        let started = Instant::now();
        let status = postdesk(&config)
            .args(["dev", "seed", "--tickets", &n.to_string()])
            .args([
                "--helpdesks",
                &HELPDESKS.to_string(),
                "--seed",
                &SEED.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "postdesk dev seed failed");
        println!(
            "load n={n}: seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        std::fs::write(&seeded, "").unwrap();
    }

    // 32 agents: the seeded ones, the first of each helpdesk made an admin; a new token each.
    let listing = run(postdesk(&config).args(["agents", "list"]), None);
    let mut agents = Vec::new();
    for (i, line) in listing.lines().take(AGENTS).enumerate() {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap().to_string();
        let helpdesk = line.split_whitespace().nth(3).map(str::to_string);
        let admin = i % ADMINS_EVERY == 0;
        if admin {
            run(
                postdesk(&config).args(["agents", "add", &name, "--role", "admin"]),
                Some("load-bench-password\n"),
            );
        }
        let token = run(
            postdesk(&config).args(["agents", "token", &name, "--expires", "never"]),
            None,
        );
        agents.push(LoadAgent {
            token: token.trim().to_string(),
            helpdesk: if admin { None } else { helpdesk },
        });
    }
    assert_eq!(agents.len(), AGENTS, "the seed makes {AGENTS} agents");
    let catalogue = Arc::new(catalogue(&dir, database_url.as_deref()));

    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut serve = postdesk(&config)
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        wait_until_up(&base, &mut serve).await;
        let load_before = common::load_average();
        let rss_before = rss_kb(serve.id(), "VmRSS");
        // One admin alone first: what each request costs without waiting for others.
        let solo = vec![agents[0].clone()];
        let solo = load(&base, solo, Arc::clone(&catalogue), Duration::from_secs(10)).await;
        let report = load(&base, agents, catalogue, Duration::from_secs(seconds)).await;
        (load_before, rss_before, solo, report)
    });
    let (load_before, rss_before, solo, report) = result;
    let rss = rss_kb(serve.id(), "VmRSS");
    let peak = rss_kb(serve.id(), "VmHWM");
    // SAFETY: our own child; SIGTERM lets it drain and stop.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    let _ = serve.wait();

    let engine = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "load n={n} ({engine}, {AGENTS} agents, {seconds} s; load average {load_before} before, {} after):",
        common::load_average()
    );
    println!(
        "  {:<24} {:>8} {:>10} {:>10} {:>10} {:>14}  target",
        "request", "count", "p50 ms", "p99 ms", "max ms", "alone p50 ms"
    );
    let mut total = 0;
    for kind in Kind::ALL {
        let mut times = report.times.get(&kind).cloned().unwrap_or_default();
        times.sort_unstable();
        total += times.len();
        let at = |q: f64| {
            times
                .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        let p99 = at(0.99);
        let mut alone = solo.times.get(&kind).cloned().unwrap_or_default();
        alone.sort_unstable();
        let alone = alone
            .get(alone.len() / 2)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        let verdict = match kind.target_ms() {
            Some(t) if p99 < t => format!("< {t} ms: met"),
            Some(t) => format!("< {t} ms: MISSED"),
            None => "-".to_string(),
        };
        println!(
            "  {:<24} {:>8} {:>10.1} {:>10.1} {:>10.1} {alone:>14.1}  {verdict}",
            kind.label(),
            times.len(),
            at(0.5),
            p99,
            times.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        );
    }
    let rate = total as f64 / report.elapsed.as_secs_f64();
    println!(
        "  throughput {rate:.0} req/s (target ≥ 1000: {}), {} errors{}",
        if rate >= 1000.0 { "met" } else { "MISSED" },
        report.errors.len(),
        report
            .errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "  serve RSS {:.1} MB before the load, {:.1} MB after, peak {:.1} MB",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}

/// A field of /proc/PID/status in KiB.
fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A plain-HTTP client: reqwest is built here without a TLS provider, so one is given
/// (ring, as the rest of postdesk), though loopback needs none.
fn http_client(pool: usize) -> reqwest::Client {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn wait_until_up(base: &str, serve: &mut Child) {
    let client = http_client(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = serve.try_wait().unwrap() {
            panic!("postdesk serve stopped ({status}); see serve.log in the bench folder");
        }
        if client.get(format!("{base}/login")).send().await.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "postdesk serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Report {
    times: HashMap<Kind, Vec<Duration>>,
    errors: Vec<String>,
    elapsed: Duration,
}

async fn load(
    base: &str,
    agents: Vec<LoadAgent>,
    catalogue: Arc<Catalogue>,
    length: Duration,
) -> Report {
    let client = http_client(AGENTS);
    let started = Instant::now();
    let deadline = started + length;
    let tasks: Vec<_> = agents
        .into_iter()
        .enumerate()
        .map(|(i, agent)| {
            let client = client.clone();
            let catalogue = Arc::clone(&catalogue);
            let base = base.to_string();
            tokio::spawn(
                async move { agent_loop(i, agent, client, &base, &catalogue, deadline).await },
            )
        })
        .collect();
    let mut report = Report {
        times: HashMap::new(),
        errors: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (times, errors) = task.await.unwrap();
        for (kind, t) in times {
            report.times.entry(kind).or_default().extend(t);
        }
        report.errors.extend(errors);
    }
    report.elapsed = started.elapsed();
    report
}

type AgentResult = (HashMap<Kind, Vec<Duration>>, Vec<String>);

async fn agent_loop(
    index: usize,
    agent: LoadAgent,
    client: reqwest::Client,
    base: &str,
    catalogue: &Catalogue,
    deadline: Instant,
) -> AgentResult {
    let mut times: HashMap<Kind, Vec<Duration>> = HashMap::new();
    let mut errors = Vec::new();
    let helpdesks: Vec<&String> = {
        let mut all: Vec<&String> = catalogue.counts.keys().collect();
        all.sort();
        match &agent.helpdesk {
            Some(own) => all.into_iter().filter(|h| *h == own).collect(),
            None => all,
        }
    };
    let visible: i64 = helpdesks.iter().map(|h| catalogue.counts[*h]).sum();
    let deep_page = ((visible as u64).div_ceil(PER_PAGE) * 9 / 10).max(1);
    // Where an agent's deep paging starts: at the list's far end (oldest first), by
    // cursor all along as the UI pages; with POSTDESK_BENCH_DEEP=number, 90 % down by
    // number (`page=`, an OFFSET through the rows before it).
    let deep_start = match std::env::var("POSTDESK_BENCH_DEEP").as_deref() {
        Ok("number") => format!("/tickets?page={deep_page}"),
        _ => "/tickets?order=asc".to_string(),
    };
    let ids: Vec<i64> = helpdesks
        .iter()
        .flat_map(|h| catalogue.tickets.get(*h).cloned().unwrap_or_default())
        .collect();
    let mut step = index * 7;
    // The deep page's "Next →" link, as an agent paging on from there clicks it.
    let mut deep_next: Option<String> = None;
    while Instant::now() < deadline {
        let kind = ROUND[step % ROUND.len()];
        let pick = |list_len: usize| (step * 31 + index * 17) % list_len.max(1);
        let path = match kind {
            Kind::List => "/tickets".to_string(),
            Kind::Filtered => format!(
                "/tickets?status={}&helpdesk={}",
                FILTER_STATUSES[pick(FILTER_STATUSES.len())],
                helpdesks[pick(helpdesks.len())]
            ),
            Kind::Deep => deep_next.take().unwrap_or_else(|| deep_start.clone()),
            Kind::Ticket => match ids.get(pick(ids.len())) {
                Some(id) => format!("/tickets/{id}"),
                None => "/tickets".to_string(),
            },
            Kind::Search => format!("/tickets?q={}", SEARCHES[pick(SEARCHES.len())]),
        };
        step += 1;
        let sent = Instant::now();
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(&agent.token)
            .send()
            .await;
        let outcome = match response {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(body) => {
                    if kind == Kind::Deep {
                        deep_next = next_link(&String::from_utf8_lossy(&body));
                    }
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            Ok(r) => Err(format!("{path}: {}", r.status())),
            Err(e) => Err(format!("{path}: {e}")),
        };
        let took = sent.elapsed();
        match outcome {
            Ok(()) => times.entry(kind).or_default().push(took),
            Err(e) => errors.push(e),
        }
    }
    (times, errors)
}

/// The target of a list page's `rel="next"` link (the keyset cursor `after=`), as a
/// browser follows it; `None` on the last page.
fn next_link(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    // minijinja's HTML escaping: `&`, `/`, quotes.
    let mut link = html[start..end].to_string();
    for (entity, c) in [
        ("&#x2f;", "/"),
        ("&#x27;", "'"),
        ("&quot;", "\""),
        ("&amp;", "&"),
    ] {
        link = link.replace(entity, c);
    }
    Some(link)
}
