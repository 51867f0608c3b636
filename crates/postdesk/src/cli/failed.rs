//! `postdesk failed list|show|retry`

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use super::format_time;
use super::tickets::terminal_safe;

#[derive(Subcommand)]
pub enum FailedCommand {
    /// Mails that could not be processed, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One failed mail: its reason and headers, or its raw bytes with --raw.
    Show {
        id: i64,
        /// Write the raw mail exactly as received to standard output.
        #[arg(long)]
        raw: bool,
    },
    /// Process failed mails again, after the cause was fixed.
    Retry {
        ids: Vec<i64>,
        /// Every mail in the failed queue.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

pub async fn run(config_path: &Path, command: FailedCommand) -> anyhow::Result<()> {
    let (_, pipeline) = super::open(config_path, None).await?;
    let store = pipeline.store();
    match command {
        FailedCommand::List { limit } => {
            let rows = store.intake_rows(Some("failed"), limit).await?;
            if rows.is_empty() {
                println!("No failed mails.");
            }
            for r in rows {
                println!(
                    "{:>6}  {}  {:<30}  {}\n        reason: {}",
                    r.id,
                    format_time(r.received_at),
                    terminal_safe(r.sender.as_deref().unwrap_or("-")),
                    terminal_safe(r.subject.as_deref().unwrap_or("")),
                    terminal_safe(r.reason.as_deref().unwrap_or("-"))
                );
            }
        }
        FailedCommand::Show { id, raw } => {
            let row = store.intake_row(id).await?;
            let bytes = store.raw_mail(row.id).await?;
            if raw {
                std::io::stdout().write_all(&bytes)?;
                return Ok(());
            }
            println!(
                "intake record {} · {} · {}",
                row.id, row.outcome, row.classification
            );
            println!(
                "from {} via {} ({})",
                row.source,
                terminal_safe(&row.location),
                format_time(row.received_at)
            );
            println!(
                "reason: {}",
                terminal_safe(row.reason.as_deref().unwrap_or("-"))
            );
            println!("sha256 {} · {} bytes\n", row.sha256, bytes.len());
            let text = String::from_utf8_lossy(&bytes);
            let headers = text.split("\n\n").next().unwrap_or("");
            println!("{}", terminal_safe(headers));
        }
        FailedCommand::Retry { ids, all } => {
            let ids = if all {
                store
                    .intake_rows(Some("failed"), 0)
                    .await?
                    .iter()
                    .map(|r| r.id)
                    .collect()
            } else {
                ids
            };
            if ids.is_empty() {
                println!("Nothing to retry.");
            }
            for p in pipeline.retry(&ids).await? {
                let r = &p.report;
                let ticket = r
                    .ticket_number
                    .map(|n| format!(" ticket #{n}"))
                    .unwrap_or_default();
                let reason = r
                    .reason
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                println!("{}: {}{ticket}{reason}", r.intake_id, r.outcome.as_str());
            }
        }
    }
    Ok(())
}
