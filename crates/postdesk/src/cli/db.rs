//! `postdesk db copy`: moves a SQLite store to PostgreSQL through the store's `copy`
//! module, showing each table's progress and the verification at the end.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use postdesk_store::copy::{CopyOptions, CopyProgress, CopyReport, copy_database};
use postdesk_store::redacted_url;

#[derive(Args)]
pub struct CopyArgs {
    /// The SQLite store to copy: `sqlite://PATH` (the `database_url` it was used with).
    #[arg(long)]
    pub from: String,
    /// An empty PostgreSQL database (or one this copy was interrupted in):
    /// `postgres://USER:PASSWORD@HOST/DATABASE`.
    #[arg(long)]
    pub to: String,
    /// Rows per INSERT at most.
    #[arg(long, default_value_t = 500)]
    pub batch_rows: usize,
    /// Stop after writing this many rows (to try resuming); the next run goes on.
    #[arg(long, hide = true)]
    pub stop_after_rows: Option<u64>,
}

/// Runs the copy on a blocking thread, printing progress on a terminal and one line
/// per table at the end.
pub async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let options = CopyOptions {
        batch_rows: args.batch_rows.max(1),
        stop_after_rows: args.stop_after_rows,
    };
    let target = redacted_url(&args.to);
    println!("Copying {} to {target}", args.from);
    let report = tokio::task::spawn_blocking(move || {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg:>24} {bar:30} {pos}/{len} rows  {per_sec}")
                    .expect("valid progress template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut on_progress = |event: CopyProgress<'_>| match event {
            CopyProgress::Started { resumed, tables } => {
                let how = if resumed {
                    "resuming the copy already under way there"
                } else {
                    "a new copy"
                };
                bar.suspend(|| println!("{tables} tables, {how}"));
            }
            CopyProgress::Rows {
                table,
                written,
                total,
            } => {
                bar.set_message(table.to_string());
                bar.set_length(total);
                bar.set_position(written.min(total));
            }
            CopyProgress::Verifying => {
                bar.finish_and_clear();
                println!("Checking every table's count and content hash…");
            }
        };
        let report = copy_database(&args.from, &args.to, options, &mut on_progress);
        bar.finish_and_clear();
        report
    })
    .await
    .context("the copy stopped")??;
    print_report(&report);
    if report.verified {
        println!(
            "Copied and verified. Attachment files stay in the data folder: point the \
             config's database_url at {target} and start postdesk."
        );
        Ok(())
    } else {
        anyhow::bail!("the copy stopped before the end; run the same command again to resume")
    }
}

fn print_report(report: &CopyReport) {
    let written: u64 = report.tables.iter().map(|t| t.written).sum();
    let rows: u64 = report.tables.iter().map(|t| t.rows).sum();
    for table in &report.tables {
        let hash = table
            .hash
            .as_deref()
            .map(|h| format!("  hash {}", &h[..16.min(h.len())]))
            .unwrap_or_default();
        println!(
            "  {:<22} {:>8} rows, {:>8} written{hash}",
            table.table, table.rows, table.written
        );
    }
    println!("{written} rows written in this run, {rows} in the source.");
}
