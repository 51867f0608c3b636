//! `postdesk reply N`, `postdesk outbox list|show|retry|send`, and the SMTP steps of
//! `postdesk check`.

use postdesk_core::id::{OutboxId, TicketNumber};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use postdesk_app::App;
use postdesk_core::outgoing::OutboxStatus;
use postdesk_core::time::format_time;

use super::queue::{ListArgs, RetryArgs, ShowArgs};
use super::tickets::terminal_safe;

#[derive(Args)]
pub struct ReplyArgs {
    /// Ticket number.
    pub number: TicketNumber,
    /// The text; without it, read from standard input.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Helpdesk of the ticket [default: the only one with this number].
    #[arg(long)]
    pub helpdesk: Option<String>,
    /// Agent (name or email) who writes [default: the helpdesk's default agent].
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Outgoing mails, newest first.
    List {
        /// queued, sent, failed or suppressed.
        #[arg(long)]
        status: Option<OutboxStatus>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One outgoing mail: where it goes, its state, its text; --raw for the exact message.
    Show(ShowArgs),
    /// Queue failed mails again (and send what is due now).
    Retry(RetryArgs),
    /// Send every mail that is due, once, and exit (for cron; `postdesk serve` does it continuously).
    Send,
}

pub async fn reply(config_path: &Path, args: ReplyArgs) -> anyhow::Result<()> {
    let text = match args.message {
        Some(m) => m,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the reply from standard input")?;
            s
        }
    };
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    let ticket = store.ticket(args.helpdesk.as_deref(), args.number).await?;
    let index = app.helpdesk_index(&ticket.summary.helpdesk)?;
    let hd = &app.helpdesks()[index];
    let queued = app
        .outbox()
        .reply(hd, args.number, args.agent.as_deref(), &text)
        .await?;
    // Deadlines (issue 18): the reply meets the response targets running.
    app.deadlines().agent_replied(ticket.summary.id).await?;
    println!(
        "Reply to {} ({}): {}",
        hd.config.reference.render(args.number),
        terminal_safe(&queued.recipients.join(", ")),
        terminal_safe(&queued.subject)
    );
    if queued.suppressed {
        println!(
            "Outgoing mail is switched off (outgoing.enabled = false): kept as suppressed, not sent."
        );
    } else {
        let done = app.outbox().deliver_due(Some(queued.outbox_id)).await?;
        let row = store.outbox_row(queued.outbox_id).await?;
        match row.status {
            OutboxStatus::Sent => println!("Sent (outbox {}).", row.id),
            _ if done.sent == 0 => println!(
                "Queued as outbox {}; not sent yet: {}. `postdesk serve` (or `postdesk outbox send`) sends it.",
                row.id,
                terminal_safe(row.last_error.as_deref().unwrap_or("waiting"))
            ),
            _ => {}
        }
    }
    store.close().await;
    Ok(())
}

pub async fn run(config_path: &Path, command: OutboxCommand) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    match command {
        OutboxCommand::List {
            status,
            list: ListArgs { limit },
        } => {
            let rows = store.outbox_rows(status, limit).await?;
            if rows.is_empty() {
                println!("The outbox is empty.");
            }
            for r in rows {
                let ticket = r
                    .ticket_number
                    .map(|n| format!("#{n}"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:>6}  {}  {:<10}  {:<15}  {:>6}  {}  {}",
                    r.id,
                    format_time(r.created_at),
                    r.status,
                    r.kind,
                    ticket,
                    terminal_safe(&r.recipients),
                    terminal_safe(&r.subject)
                );
                if let Some(e) = &r.last_error {
                    println!("        last error: {}", terminal_safe(e));
                }
            }
        }
        OutboxCommand::Show(ShowArgs { id, raw }) => {
            let id = OutboxId::new(id);
            let bytes = store.outbox_raw(id).await?;
            if raw {
                std::io::stdout().write_all(&bytes)?;
                return Ok(());
            }
            let r = store.outbox_row(id).await?;
            println!("Outgoing mail {} ({}, {})", r.id, r.kind, r.helpdesk);
            if let Some(n) = r.ticket_number {
                println!("  ticket:      #{n}");
            }
            println!("  status:      {}", r.status);
            println!("  message-id:  <{}>", terminal_safe(&r.message_id));
            println!("  from:        {}", terminal_safe(&r.envelope_from));
            println!("  to:          {}", terminal_safe(&r.recipients));
            println!("  subject:     {}", terminal_safe(&r.subject));
            println!("  queued:      {}", format_time(r.created_at));
            println!("  attempts:    {}", r.attempts);
            match r.status {
                OutboxStatus::Sent => {
                    println!("  sent:        {}", format_time(r.sent_at.unwrap_or(0)))
                }
                OutboxStatus::Queued => {
                    println!("  next try:    {}", format_time(r.next_attempt_at))
                }
                _ => {}
            }
            if let Some(e) = &r.last_error {
                println!("  last error:  {}", terminal_safe(e));
            }
            let text = String::from_utf8_lossy(&bytes);
            let headers_end = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
            println!("\n{}", terminal_safe(&text[headers_end..]));
        }
        OutboxCommand::Retry(RetryArgs { ids, all }) => {
            if ids.is_empty() && !all {
                bail!(
                    "name the mails to retry (see `postdesk outbox list --status failed`) or give --all"
                );
            }
            let n = if all {
                store.outbox_retry_failed().await?
            } else {
                let ids: Vec<OutboxId> = ids.into_iter().map(OutboxId::new).collect();
                store.outbox_retry(&ids).await?
            };
            println!("{n} mail(s) queued again.");
            let done = app.outbox().deliver_due(None).await?;
            println!("Outbox: {done}");
        }
        OutboxCommand::Send => {
            let done = app.outbox().deliver_due(None).await?;
            println!("Outbox: {done}");
        }
    }
    store.close().await;
    Ok(())
}

/// `postdesk check`'s SMTP part: each helpdesk's server, step by step. Returns the failures.
pub async fn check_smtp(app: &App, helpdesk: Option<&str>) -> usize {
    let mut failures = 0;
    for registered in app.helpdesks() {
        let hd = &registered.config;
        let s = &hd.settings;
        if helpdesk.is_some_and(|h| !h.eq_ignore_ascii_case(&s.name)) {
            continue;
        }
        let Some(smtp) = &hd.outgoing.smtp else {
            continue;
        };
        let from = smtp
            .from
            .clone()
            .or_else(|| s.addresses.first().cloned())
            .unwrap_or_default();
        println!(
            "SMTP {}:{} ({}){}",
            smtp.host,
            smtp.port(),
            s.name,
            if app.settings().delivery.enabled {
                ""
            } else {
                " — outgoing.enabled = false: nothing is sent"
            }
        );
        for step in app.outbox().check_smtp(registered, &from).await {
            match step.result {
                Ok(detail) => println!("  ok    {}: {detail}", step.name),
                Err(problem) => {
                    failures += 1;
                    println!("  FAIL  {}: {problem}", step.name);
                }
            }
        }
    }
    failures
}
