//! `postdesk scan | check | status | serve`: the IMAP mailboxes.

use std::path::Path;

use anyhow::{Context, bail};
use postdesk_pipeline::Pipeline;
use postdesk_sources::imap::{self, Mailbox};
use tokio::sync::watch;

use super::format_time;
use crate::config::Config;

/// The active mailboxes of all helpdesks, or of the one named.
fn mailboxes(
    config: &Config,
    helpdesk: Option<&str>,
    active_only: bool,
) -> anyhow::Result<Vec<Mailbox>> {
    let mut found = Vec::new();
    for (index, hd) in config.helpdesks.iter().enumerate() {
        let name = &hd.settings.name;
        if helpdesk.is_some_and(|h| !h.eq_ignore_ascii_case(name)) {
            continue;
        }
        for settings in &hd.settings.mailboxes {
            if active_only && !settings.active {
                continue;
            }
            found.push(Mailbox {
                helpdesk: name.clone(),
                helpdesk_index: index,
                settings: settings.clone(),
            });
        }
    }
    if let Some(h) = helpdesk
        && !config
            .helpdesks
            .iter()
            .any(|hd| hd.settings.name.eq_ignore_ascii_case(h))
    {
        bail!("no helpdesk named `{h}` is configured");
    }
    Ok(found)
}

/// Every configured mailbox, active or not (the web UI lists them all).
pub fn configured(config: &Config) -> Vec<Mailbox> {
    mailboxes(config, None, false).unwrap_or_default()
}

/// Scans every active mailbox once, each on its own task so a broken one delays no other.
pub async fn scan(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<()> {
    let (config, pipeline) = super::open(config_path, None).await?;
    let boxes = mailboxes(&config, helpdesk, true)?;
    if boxes.is_empty() {
        println!(
            "No active mailbox is configured; add a [[helpdesk.mailbox]] (see `postdesk init`)."
        );
        return Ok(());
    }
    let mut tasks = Vec::new();
    for mailbox in boxes {
        let pipeline = pipeline.clone().with_helpdesk(mailbox.helpdesk_index);
        tasks.push(tokio::spawn(async move {
            let result = mailbox.scan_once(&pipeline).await;
            (mailbox, result)
        }));
    }
    let mut errors = 0;
    for task in tasks {
        let (mailbox, result) = task.await?;
        match result {
            Ok(summary) => {
                println!("{} ({}): {summary}", mailbox.name(), mailbox.helpdesk);
            }
            Err(e) => {
                errors += 1;
                eprintln!("{} ({}): error: {e}", mailbox.name(), mailbox.helpdesk);
            }
        }
    }
    pipeline.store().close().await;
    if errors > 0 {
        bail!("{errors} mailbox(es) could not be scanned; see `postdesk check`");
    }
    Ok(())
}

/// The "test connection" button for each mailbox.
pub async fn check(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<()> {
    // The store keeps OAuth2 tokens: a refresh during the check must not lose a rotated one.
    let (config, pipeline) = super::open(config_path, None).await?;
    let boxes = mailboxes(&config, helpdesk, false)?;
    if boxes.is_empty() {
        println!("No mailbox is configured.");
    }
    let mut failures = 0;
    for mailbox in boxes {
        println!(
            "{} ({}){}",
            mailbox.name(),
            mailbox.helpdesk,
            if mailbox.settings.active {
                ""
            } else {
                " — inactive"
            }
        );
        let credential =
            imap::credential(pipeline.store(), &mailbox.helpdesk, &mailbox.settings).await;
        for step in imap::check::check(&mailbox.settings, credential).await {
            match step.result {
                Ok(detail) => println!("  ok    {}: {detail}", step.name),
                Err(problem) => {
                    failures += 1;
                    println!("  FAIL  {}: {problem}", step.name);
                }
            }
        }
    }
    failures += super::outbox::check_smtp(&config, pipeline.store(), helpdesk).await;
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    Ok(())
}

pub async fn status(config_path: &Path) -> anyhow::Result<()> {
    let (_, pipeline) = super::open(config_path, None).await?;
    let statuses = pipeline.store().mailbox_statuses().await?;
    if statuses.is_empty() {
        println!("No mailbox has been scanned yet.");
    }
    for s in statuses {
        println!("{} ({})", s.mailbox, s.helpdesk);
        println!(
            "  last successful check: {}",
            s.last_success_at
                .map(format_time)
                .unwrap_or_else(|| "never".into())
        );
        if let Some(error) = &s.last_error {
            println!(
                "  last error: {} ({})",
                error,
                s.last_error_at.map(format_time).unwrap_or_default()
            );
        }
        println!("  mails processed: {}, failed: {}", s.processed, s.failed);
    }
    Ok(())
}

/// Serves every active mailbox and the web UI until SIGTERM or SIGINT, finishing the
/// mail in hand.
pub async fn serve(config_path: &Path, listen: Option<&str>) -> anyhow::Result<()> {
    let (config, pipeline) = super::open(config_path, None).await?;
    let boxes = mailboxes(&config, None, true)?;
    let (stop, stopped) = watch::channel(false);
    let web = if config.web.enabled || listen.is_some() {
        let (address, task) =
            super::web::start(&config, &pipeline, listen, stopped.clone()).await?;
        eprintln!("postdesk: web UI on http://{address}/ (add agents with `postdesk agents add`)");
        Some(task)
    } else {
        None
    };
    let mut tasks = Vec::new();
    for mailbox in boxes {
        let pipeline: Pipeline = pipeline.clone().with_helpdesk(mailbox.helpdesk_index);
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            mailbox.serve(&pipeline, stopped).await
        }));
    }
    let outbox = tokio::spawn(postdesk_notify::send::run(
        pipeline.store().clone(),
        pipeline.helpdesks().to_vec(),
        config.outgoing.clone(),
        stopped.clone(),
    ));
    tracing::info!(mailboxes = tasks.len(), "serving");
    eprintln!(
        "postdesk: serving {} mailbox(es); stop with Ctrl-C or SIGTERM",
        tasks.len()
    );
    wait_for_signal().await?;
    eprintln!("postdesk: stopping after the mail in hand");
    stop.send(true).ok();
    for task in tasks {
        task.await?;
    }
    outbox.await?;
    if let Some(web) = web {
        web.await?.context("the web UI stopped with an error")?;
    }
    pipeline.store().close().await;
    Ok(())
}

pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}
