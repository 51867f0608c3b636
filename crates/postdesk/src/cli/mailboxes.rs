//! `postdesk scan | check | status`: the IMAP mailboxes; which of them a command works
//! on (for `postdesk serve` too); and the IMAP side of the web UI's mailbox buttons.

use std::path::Path;

use anyhow::bail;
use postdesk_app::App;
use postdesk_app::intake::Summary;
use postdesk_app::mailboxes::{CheckStep, ConfiguredMailbox, MailboxControl, Pending};
use postdesk_core::time::{format_time, format_time_seconds};
// Every kind of mailbox (IMAP, Graph, Gmail) behind one face (issue 20).
use postdesk_sources::any::AnyMailbox as Mailbox;

/// The configured mailboxes of all helpdesks, or of the one named; with `active_only`,
/// the active ones.
pub fn mailboxes(
    app: &App,
    helpdesk: Option<&str>,
    active_only: bool,
) -> anyhow::Result<Vec<ConfiguredMailbox>> {
    if let Some(name) = helpdesk {
        app.helpdesk_index(name)?;
    }
    Ok(app
        .mailboxes()
        .into_iter()
        .filter(|m| helpdesk.is_none_or(|h| h.eq_ignore_ascii_case(&m.helpdesk)))
        .filter(|m| m.settings.active || !active_only)
        .collect())
}

/// The mailbox page's "test connection" and "scan now", over IMAP: what the binary
/// lends the web UI (which does not know the IMAP code), and `postdesk check` uses too.
pub struct ImapControl {
    app: App,
}

impl ImapControl {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

impl MailboxControl for ImapControl {
    fn check<'a>(&'a self, mailbox: &'a ConfiguredMailbox) -> Pending<'a, Vec<CheckStep>> {
        Box::pin(async move { Mailbox::from(mailbox).check(&self.app).await })
    }

    fn scan<'a>(&'a self, mailbox: &'a ConfiguredMailbox) -> Pending<'a, Result<Summary, String>> {
        Box::pin(async move { scan_leased(&self.app, mailbox).await })
    }
}

/// One scan of `mailbox` under its lease (so never beside the instance that serves
/// it); the error in words.
async fn scan_leased(app: &App, mailbox: &ConfiguredMailbox) -> Result<Summary, String> {
    app.leases()
        .once(mailbox, |fence| async move {
            Mailbox::from(mailbox)
                .with_fence(fence)
                .scan_once(app)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
}

/// Scans every active mailbox once, each on its own task so a broken one delays no other.
pub async fn scan(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let boxes = mailboxes(&app, helpdesk, true)?;
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
            let result = scan_leased(&app, &mailbox).await;
            (Mailbox::from(&mailbox), result)
        }));
    }
    let mut errors = 0;
    for task in tasks {
        let (mailbox, result) = task.await?;
        match result {
            Ok(summary) => {
                println!("{} ({}): {summary}", mailbox.name(), mailbox.helpdesk());
            }
            Err(e) => {
                errors += 1;
                eprintln!("{} ({}): error: {e}", mailbox.name(), mailbox.helpdesk());
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
    check_database(config_path).await?;
    let (config, app) = super::open(config_path, None).await?;
    for warning in config.permission_warnings() {
        eprintln!("warning: {warning}");
    }
    let boxes = mailboxes(&app, helpdesk, false)?;
    let control = ImapControl::new(app.clone());
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
        for step in control.check(&mailbox).await {
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

/// The database's steps (URL, DNS, TCP, TLS, sign-in, database, permissions, schema),
/// printed as the mailboxes' are; an error naming the failed step stops the check.
async fn check_database(config_path: &Path) -> anyhow::Result<()> {
    let config = crate::config::Config::load(config_path)?;
    let url = config.database_url.clone();
    let steps = tokio::task::spawn_blocking(move || postdesk_store::check::check_database(&url))
        .await
        .map_err(|e| anyhow::anyhow!("the database check stopped: {e}"))?;
    println!("database");
    let mut failed = None;
    for step in steps {
        match step.result {
            Ok(detail) => println!("  ok    {}: {detail}", step.step.as_str()),
            Err(problem) => {
                println!("  FAIL  {}: {problem}", step.step.as_str());
                failed = Some(step.step);
            }
        }
    }
    if let Some(step) = failed {
        bail!("the {} check failed: see above", step.as_str());
    }
    Ok(())
}

/// `postdesk mailboxes authorize NAME`: a Graph mailbox's device-code sign-in.
pub async fn authorize(config_path: &Path, name: &str) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let all = mailboxes(&app, None, false)?;
    let Some(mailbox) = all.iter().find(|m| m.name().eq_ignore_ascii_case(name)) else {
        let names: Vec<String> = all.iter().map(|m| m.name()).collect();
        bail!(
            "no mailbox is named `{name}`; the configured ones are: {}",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    };
    let result = Mailbox::from(mailbox).authorize(&app).await;
    app.store().close().await;
    result?;
    println!("{}: signed in; `postdesk check` tests it.", mailbox.name());
    Ok(())
}

pub async fn status(config_path: &Path) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let statuses = app.store().mailbox_statuses().await?;
    let (now_ms, leases) = app.store().leases().await?;
    if statuses.is_empty() {
        println!("No mailbox has been scanned yet.");
    }
    for s in statuses {
        println!("{} ({})", s.mailbox, s.helpdesk);
        let lease = leases
            .iter()
            .find(|l| l.key.helpdesk == s.helpdesk && l.key.mailbox == s.mailbox);
        if let Some(lease) = lease {
            println!("  {}", lease_line(lease, now_ms));
        }
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

/// Who reads a mailbox: `read by HOLDER until TIME (lease N)`, or since when nobody.
fn lease_line(lease: &postdesk_store::leases::LeaseRow, now_ms: i64) -> String {
    let time = |ms: i64| format_time_seconds(ms.div_euclid(1000));
    if lease.is_held(now_ms) {
        format!(
            "read by {} until {} (lease {}, renewed {})",
            lease.holder,
            time(lease.expires_ms),
            lease.token,
            time(lease.renewed_ms)
        )
    } else if let Some(released) = lease.released_ms {
        format!(
            "read by no instance: {} gave it back at {}",
            lease.holder,
            time(released)
        )
    } else {
        format!(
            "read by no instance: the lease of {} ran out at {}",
            lease.holder,
            time(lease.expires_ms)
        )
    }
}
