//! The commands, each a thin layer over the [`App`] that [`open`] builds from the
//! configuration (the application layer, `postdesk-app`).

pub mod agents;
// Issue 19: `backup` and `restore`.
pub mod backup;
// Deadlines: `tickets show` lines and `tickets set-deadline` (issue 18).
pub mod deadlines;
// Issue 15: `db copy` from SQLite to PostgreSQL.
pub mod db;
pub mod deliver;
// Issue 19: `dev seed`, generated data for the load bench.
pub mod dev;
pub mod failed;
pub mod import;
// Interventions linked to tickets (issue 18).
pub mod interventions;
// Issue 19: text or JSON log lines, and serve's status lines.
pub mod logs;
pub mod mailboxes;
pub mod outbox;
pub mod queue;
// The weekly reports (issue 18).
pub mod report;
pub mod rules;
pub mod serve;
// Issue 19: readiness and watchdog for systemd (`Type=notify`).
pub mod systemd;
pub mod tickets;
pub mod web;

use std::path::Path;

use anyhow::{Context, bail};
use postdesk_app::intake::{IntakeOptions, Limits};
use postdesk_app::{App, Settings};
use postdesk_mail::ParseOptions;
use postdesk_store::{Schema, Store};

use crate::config::{self, Config};

pub fn init(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; remove it or give another path",
            path.display()
        );
    }
    std::fs::write(path, config::EXAMPLE)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "Wrote {}. Edit it, then run `postdesk check-config`.",
        path.display()
    );
    Ok(())
}

pub fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    println!("{}: OK", path.display());
    for hd in &config.helpdesks {
        let s = &hd.settings;
        println!(
            "  helpdesk {:?}: {} address(es), reference {}, unknown senders: {:?}, {} mail rule(s)",
            s.name,
            s.addresses.len(),
            hd.reference.render(s.first_ticket_number),
            s.unknown_sender,
            hd.rules.rules().len()
        );
    }
    println!(
        "  database: {}",
        postdesk_store::redacted_url(&config.database_url)
    );
    println!("  data dir: {}", config.data_dir.display());
    for warning in config.permission_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// How the binary parses mail: `cid:` images point at the web's attachment route.
pub fn parse_options() -> ParseOptions {
    ParseOptions {
        attachment_url: Some(postdesk_web::routes::attachment_url),
    }
}

/// Loads the config, opens the store, registers the helpdesks: the App every command,
/// the IMAP mailboxes and the web UI share. With `helpdesk`, every mail taken in goes
/// to that helpdesk.
/// `postdesk db migrate`: applies the migrations the database lacks, whatever
/// `auto_migrate` says, and reports the versions.
pub async fn migrate(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    config.apply_umask();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let (store, versions) =
        Store::open_with(&config.database_url, &config.data_dir, Schema::Migrate).await?;
    store.close().await;
    match versions.before {
        Some(before) if before == versions.after => {
            println!("The schema is up to date (version {}).", versions.after)
        }
        before => println!(
            "Migrated the schema from version {} to {}.",
            before.unwrap_or(0),
            versions.after
        ),
    }
    Ok(())
}

pub async fn open(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<(Config, App)> {
    let config = Config::load(config_path)?;
    config.apply_umask();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let schema = if config.auto_migrate {
        Schema::Migrate
    } else {
        Schema::MustBeCurrent
    };
    let (store, _) = Store::open_with(&config.database_url, &config.data_dir, schema).await?;
    let registered = store.register_helpdesks(&config.helpdesks).await?;
    let settings = Settings {
        intake: IntakeOptions {
            batch_size: config.batch_size,
            limits: Limits {
                max_mail_bytes: config.max_mail_bytes,
            },
            helpdesk: None,
            parse: parse_options(),
            fence: None,
        },
        delivery: config.outgoing.clone(),
        leases: config.instances.leases(),
    };
    let mut app = App::new(store, registered, settings);
    if let Some(name) = helpdesk {
        let index = app.helpdesk_index(name)?;
        app = app.delivering_to(index);
    }
    Ok((config, app))
}
