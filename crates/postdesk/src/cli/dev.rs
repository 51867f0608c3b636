//! `postdesk dev seed`: fills a database with generated tickets for benches and trials
//! (issue 19; the data and how it is written: `postdesk_store::seed`). It writes into
//! the database the config names, over the helpdesks the config names.

use std::io::IsTerminal;
use std::path::Path;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use postdesk_store::seed::{SeedPlan, SeedProgress};

#[derive(Subcommand)]
pub enum DevCommand {
    /// Fill the database with N generated tickets (about three entries each: the
    /// customer's mails, agents' notes and status changes) in several languages.
    /// Refuses a database that already holds tickets or mails unless --force.
    Seed(SeedArgs),
}

#[derive(clap::Args)]
pub struct SeedArgs {
    /// How many tickets to make.
    #[arg(long)]
    tickets: u64,
    /// Over how many of the config's helpdesks (the first K) [default: all of them].
    #[arg(long)]
    helpdesks: Option<usize>,
    /// The same seed makes the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tickets per transaction.
    #[arg(long, default_value_t = 2_000)]
    batch: u64,
    /// Add to a database that already holds tickets.
    #[arg(long)]
    force: bool,
}

pub async fn run(config_path: &Path, command: DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::Seed(args) => seed(config_path, args).await,
    }
}

async fn seed(config_path: &Path, args: SeedArgs) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    let helpdesks = app.helpdesks();
    let plan = SeedPlan {
        force: args.force,
        batch: args.batch,
        ..SeedPlan::new(
            args.tickets,
            args.helpdesks.unwrap_or(helpdesks.len()),
            args.seed,
        )
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(args.tickets);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} tickets  {per_sec}  {msg}  (ETA {eta})",
            )
            .expect("valid progress template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let shown = bar.clone();
    // Without a terminal, a line every tenth of the way.
    let mut next_line = args.tickets.div_ceil(10);
    let total = args.tickets;
    let progress = move |p: SeedProgress| {
        shown.set_position(p.tickets);
        shown.set_message(format!("{} entries", p.entries));
        if shown.is_hidden() && p.tickets >= next_line.min(total) {
            eprintln!(
                "seeded {} of {total} tickets, {} entries",
                p.tickets, p.entries
            );
            next_line += total.div_ceil(10);
        }
    };
    let report = store.seed(helpdesks, plan, progress).await;
    bar.finish_and_clear();
    let report = report?;
    store.close().await;
    println!(
        "Seeded {} tickets with {} entries ({} attachments) in {:.1} s ({:.0} tickets/s).",
        report.tickets,
        report.entries,
        report.attachments,
        report.seconds,
        report.tickets as f64 / report.seconds.max(0.001)
    );
    println!(
        "Agents (no password; set one with `postdesk agents passwd NAME`, or make a token with `postdesk agents token NAME`): {}",
        report.agents.join(", ")
    );
    Ok(())
}
