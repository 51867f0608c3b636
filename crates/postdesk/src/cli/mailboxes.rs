//! `postdesk scan | check | status`: the IMAP mailboxes, and which of them the config
//! names (for `postdesk serve` and the web UI too).

use std::path::Path;

use anyhow::bail;
use postdesk_core::time::format_time;
use postdesk_sources::imap::{self, Mailbox};

use crate::config::Config;

/// The mailboxes of all helpdesks, or of the one named; with `active_only`, the active ones.
pub fn mailboxes(
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
    let (config, app) = super::open(config_path, None).await?;
    let boxes = mailboxes(&config, helpdesk, true)?;
    if boxes.is_empty() {
        println!(
            "No active mailbox is configured; add a [[helpdesk.mailbox]] (see `postdesk init`)."
        );
        return Ok(());
    }
    let mut tasks = Vec::new();
    for mailbox in boxes {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let result = mailbox.scan_once(&app).await;
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
    app.store().close().await;
    if errors > 0 {
        bail!("{errors} mailbox(es) could not be scanned; see `postdesk check`");
    }
    Ok(())
}

/// The "test connection" button for each mailbox.
pub async fn check(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<()> {
    // The store keeps OAuth2 tokens: a refresh during the check must not lose a rotated one.
    let (config, app) = super::open(config_path, None).await?;
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
        let credential = imap::credential(app.store(), &mailbox.helpdesk, &mailbox.settings).await;
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
    failures += super::outbox::check_smtp(&app, helpdesk).await;
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    Ok(())
}

pub async fn status(config_path: &Path) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let statuses = app.store().mailbox_statuses().await?;
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
