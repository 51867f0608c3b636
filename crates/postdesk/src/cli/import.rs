//! `postdesk import PATH...`

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use postdesk_app::App;
use postdesk_app::intake::Summary;
use postdesk_store::Outcome;

#[derive(Args)]
pub struct ImportArgs {
    /// .eml files, mbox files, Maildir folders or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Helpdesk for every mail [default: chosen by recipient, else the first].
    #[arg(long)]
    pub helpdesk: Option<String>,
    /// Print one line per mail.
    #[arg(long, short)]
    pub verbose: bool,
}

pub async fn run(config_path: &Path, args: ImportArgs) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, args.helpdesk.as_deref()).await?;
    let summary = import(&app, &args.paths, args.verbose).await?;
    app.store().close().await;
    println!("{summary}");
    if summary.failed > 0 {
        println!("See them with `postdesk failed list`.");
    }
    Ok(())
}

/// Imports `paths`, showing progress on a terminal; unreadable files are reported and counted as failed.
pub async fn import(app: &App, paths: &[PathBuf], verbose: bool) -> anyhow::Result<Summary> {
    let unreadable = Arc::new(AtomicUsize::new(0));
    let progress = if std::io::stderr().is_terminal() && !verbose {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} mails  {per_sec}  {msg}")
                .expect("valid progress template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mails = {
        let unreadable = Arc::clone(&unreadable);
        let progress = progress.clone();
        postdesk_sources::files::read_paths(paths).filter_map(move |item| match item {
            Ok(mail) => Some(mail),
            Err(e) => {
                progress.suspend(|| eprintln!("error: {e}"));
                unreadable.fetch_add(1, Ordering::Relaxed);
                None
            }
        })
    };
    let mut summary = app
        .intake()
        .run(mails, |batch| {
            progress.inc(batch.len() as u64);
            if verbose {
                for p in batch {
                    let r = &p.report;
                    let ticket = r
                        .ticket_number
                        .map(|n| format!(" #{n}"))
                        .unwrap_or_default();
                    let reason = r
                        .reason
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default();
                    println!("{}{ticket}{reason}  {}", r.outcome.as_str(), p.location);
                }
            } else {
                for p in batch.iter().filter(|p| p.report.outcome == Outcome::Failed) {
                    let reason = p.report.reason.as_deref().unwrap_or("");
                    progress.suspend(|| eprintln!("failed: {}: {reason}", p.location));
                }
            }
        })
        .await?;
    progress.finish_and_clear();
    summary.failed += unreadable.load(Ordering::Relaxed);
    Ok(summary)
}
