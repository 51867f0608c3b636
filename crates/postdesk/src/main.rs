//! postdesk: a self-hosted helpdesk that turns email into tickets.

/// jemalloc: parsing allocates much, on several threads at once, and glibc's
/// malloc took a tenth of an import's CPU. One arena, and freed pages given back
/// after half a second, keep the peak memory near glibc's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol (its name carries the crate's prefix).
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &[u8; 46] = b"narenas:1,dirty_decay_ms:500,muzzy_decay_ms:0\0";

mod cli;
mod config;
mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "postdesk",
    version,
    about = "A self-hosted helpdesk that turns email into tickets"
)]
struct Args {
    /// Configuration file [default: ./postdesk.toml]
    #[arg(long, global = true, env = "POSTDESK_CONFIG")]
    config: Option<PathBuf>,
    /// How log lines look: `text` for people, `json` (one object a line) for log
    /// shippers. The level is `POSTDESK_LOG` (default `warn`).
    #[arg(
        long,
        global = true,
        env = "POSTDESK_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: cli::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented example configuration.
    Init {
        /// Where to write it.
        #[arg(default_value = "postdesk.toml")]
        path: PathBuf,
    },
    /// Check the configuration file and report every problem with its line.
    CheckConfig,
    /// Import .eml files, mbox files, Maildir folders or directories of mails.
    Import(cli::import::ImportArgs),
    /// Store one mail read from standard input (for an MTA pipe). Exits 75 (EX_TEMPFAIL)
    /// when the mail could not be stored, so the MTA retries.
    Deliver {
        /// Helpdesk the mail is for [default: chosen by recipient].
        #[arg(long)]
        helpdesk: Option<String>,
    },
    /// List and show tickets.
    #[command(subcommand)]
    Tickets(cli::tickets::TicketsCommand),
    /// Interventions linked to tickets: add, list, set (issue 18).
    #[command(subcommand)]
    Interventions(cli::interventions::InterventionsCommand),
    /// Weekly reports per helpdesk: response and resolution times, deadlines met, tickets
    /// created and closed (issue 18).
    Report(cli::report::ReportArgs),
    /// The failed queue: mails that could not be processed, kept with their reason.
    #[command(subcommand)]
    Failed(cli::failed::FailedCommand),
    /// Mail rules: see what they would do with mails (`rules test`), writing nothing.
    #[command(subcommand)]
    Rules(cli::rules::RulesCommand),
    /// Scan every active mailbox (IMAP, Graph, Gmail) once and exit (for cron and scripts).
    Scan {
        #[arg(long)]
        helpdesk: Option<String>,
    },
    /// Test each mailbox's connection step by step: DNS, TCP, TLS, login, folders, mails waiting.
    Check {
        #[arg(long)]
        helpdesk: Option<String>,
    },
    /// Each mailbox's last successful check, last error and counts.
    Status,
    /// Mailbox sign-ins: `mailboxes authorize NAME` signs a Graph mailbox in (device code).
    #[command(subcommand)]
    Mailboxes(MailboxesCommand),
    /// Run every active mailbox continuously (IDLE or polling), the outbox and the web UI,
    /// until SIGTERM/SIGINT.
    Serve {
        /// Address for the web UI [default: `listen` in [web], 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
    },
    /// Copy the store while postdesk runs: a consistent SQLite copy, the attachments and
    /// a manifest of their SHA-256 hashes and counts, into the new folder DEST.
    Backup(cli::backup::BackupArgs),
    /// Put a backup back (into an empty data folder), checking every hash and count first.
    Restore(cli::backup::RestoreArgs),
    /// The database: `db migrate` brings its schema up to date, `db copy` moves a SQLite
    /// store to PostgreSQL.
    #[command(subcommand)]
    Db(DbCommand),
    /// Agents: who may sign in to the web UI and use the API.
    #[command(subcommand)]
    Agents(cli::agents::AgentsCommand),
    /// Answer a ticket: mails the requester and CC'd participants, threaded, and records the reply.
    Reply(cli::outbox::ReplyArgs),
    /// Outgoing mail: acknowledgements, notifications, alerts and replies.
    #[command(subcommand)]
    Outbox(cli::outbox::OutboxCommand),
    /// Tools for developers: `dev seed` fills a database with generated tickets (issue 19).
    #[command(subcommand)]
    Dev(cli::dev::DevCommand),
    /// Show what postdesk does: write a config and sample mails, import them, print the
    /// tickets, then serve the web UI with a demo admin until Ctrl-C.
    Demo {
        /// Folder for the demo's config, Maildir and database.
        #[arg(default_value = "postdesk-demo")]
        dir: PathBuf,
        /// Stop after printing the tickets.
        #[arg(long)]
        no_serve: bool,
        /// Address for the web UI [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply the migrations the database lacks (with `auto_migrate = false`, as is the
    /// default on PostgreSQL, nothing else does), then report the schema version.
    Migrate,
    /// Copy every table of a SQLite store into an empty PostgreSQL database, resumable,
    /// then check every count and content hash.
    Copy(cli::db::CopyArgs),
}

#[derive(Subcommand)]
enum MailboxesCommand {
    /// Sign a `kind = "graph"`, `flow = "device-code"` mailbox in: prints a code to enter
    /// at Microsoft's sign-in page, waits, and keeps the tokens in the database.
    Authorize {
        /// The mailbox's name (`name`, or `graph:USER`), as `postdesk status` shows it.
        name: String,
    },
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = Args::parse();
    cli::logs::init(args.log_format);
    let config_path = args
        .config
        .unwrap_or_else(|| PathBuf::from("postdesk.toml"));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Init { path } => cli::init(&path),
            Command::CheckConfig => cli::check_config(&config_path),
            Command::Import(import) => cli::import::run(&config_path, import).await,
            Command::Deliver { helpdesk } => {
                return cli::deliver::run(&config_path, helpdesk.as_deref()).await;
            }
            Command::Tickets(command) => cli::tickets::run(&config_path, command).await,
            Command::Interventions(command) => cli::interventions::run(&config_path, command).await,
            Command::Report(args) => cli::report::run(&config_path, args).await,
            Command::Failed(command) => cli::failed::run(&config_path, command).await,
            Command::Rules(command) => cli::rules::run(&config_path, command).await,
            Command::Demo {
                dir,
                no_serve,
                listen,
            } => demo::run(&dir, !no_serve, listen.as_deref()).await,
            Command::Scan { helpdesk } => {
                cli::mailboxes::scan(&config_path, helpdesk.as_deref()).await
            }
            Command::Check { helpdesk } => {
                cli::mailboxes::check(&config_path, helpdesk.as_deref()).await
            }
            Command::Status => cli::mailboxes::status(&config_path).await,
            Command::Mailboxes(MailboxesCommand::Authorize { name }) => {
                cli::mailboxes::authorize(&config_path, &name).await
            }
            Command::Serve { listen } => cli::serve::serve(&config_path, listen.as_deref()).await,
            Command::Backup(backup) => cli::backup::backup(&config_path, backup).await,
            Command::Restore(restore) => cli::backup::restore(&config_path, restore).await,
            Command::Db(DbCommand::Migrate) => cli::migrate(&config_path).await,
            Command::Db(DbCommand::Copy(args)) => cli::db::copy(args).await,
            Command::Agents(command) => cli::agents::run(&config_path, command).await,
            Command::Reply(reply) => cli::outbox::reply(&config_path, reply).await,
            Command::Outbox(command) => cli::outbox::run(&config_path, command).await,
            Command::Dev(command) => cli::dev::run(&config_path, command).await,
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own arena; with the parse threads and the
/// runtime's, memory stays high after peaks. Two arenas keep the import's RSS flat.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
