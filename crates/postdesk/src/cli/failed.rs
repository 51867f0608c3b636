//! `postdesk failed list|show|retry`

use postdesk_core::id::IntakeId;
use std::io::Write;
use std::path::Path;

use clap::Subcommand;
use postdesk_core::intake::IntakeOutcome;
use postdesk_core::time::format_time;

use super::queue::{ListArgs, RetryArgs, ShowArgs};
use super::tickets::terminal_safe;

// `mut_arg` words the help of the shared `--raw` and `--all` for this queue.
#[derive(Subcommand)]
pub enum FailedCommand {
    /// Mails that could not be processed, newest first.
    List(ListArgs),
    /// One failed mail: its reason and headers, or its raw bytes with --raw.
    #[command(mut_arg("raw", |raw| {
        raw.help("Write the raw mail exactly as received to standard output")
    }))]
    Show(ShowArgs),
    /// Process failed mails again, after the cause was fixed.
    #[command(mut_arg("all", |all| all.help("Every mail in the failed queue")))]
    Retry(RetryArgs),
}

pub async fn run(config_path: &Path, command: FailedCommand) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    match command {
        FailedCommand::List(ListArgs { limit }) => {
            let rows = store
                .intake_rows(Some(IntakeOutcome::Failed), limit)
                .await?;
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
        FailedCommand::Show(ShowArgs { id, raw }) => {
            let row = store.intake_row(IntakeId::new(id)).await?;
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
        FailedCommand::Retry(RetryArgs { ids, all }) => {
            let ids: Vec<IntakeId> = if all {
                store
                    .intake_rows(Some(IntakeOutcome::Failed), 0)
                    .await?
                    .iter()
                    .map(|r| r.id)
                    .collect()
            } else {
                ids.into_iter().map(IntakeId::new).collect()
            };
            if ids.is_empty() {
                println!("Nothing to retry.");
            }
            for p in app.intake().retry(&ids).await? {
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

#[cfg(test)]
mod tests {
    use clap::{Command, Subcommand};

    use super::FailedCommand;

    fn help(queue: &Command, subcommand: &str, arg: &str) -> Option<String> {
        let sub = queue.find_subcommand(subcommand).expect(subcommand);
        let arg = sub.get_arguments().find(|a| a.get_id() == arg).expect(arg);
        arg.get_help().map(ToString::to_string)
    }

    #[test]
    fn the_shared_arguments_are_worded_for_the_failed_queue() {
        let mut failed = FailedCommand::augment_subcommands(Command::new("failed"));
        failed.build();
        assert_eq!(
            help(&failed, "show", "raw").as_deref(),
            Some("Write the raw mail exactly as received to standard output")
        );
        assert_eq!(
            help(&failed, "retry", "all").as_deref(),
            Some("Every mail in the failed queue")
        );
    }
}
