//! `postdesk rules test`: what the mail rules would do with mails, writing nothing.
//!
//! Mails go through the same preparation and decisions as an import: parse,
//! classify, route (the rules), threading and the rules' resolution. The database,
//! when there is one, is opened read-only (no migration, no registration) to find
//! the tickets and contacts the mails refer to; without one, an empty database in
//! memory stands in. Attachments are not written.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Subcommand;
use postdesk_core::RawMail;
use postdesk_core::rules::{Disposition, RuleTrace};
use postdesk_core::settings::UnknownSender;
use postdesk_core::thread::Decision;
use postdesk_mail::{Address, Attachment, classify_with_signal};
use postdesk_pipeline::{Limits, analyse};
use postdesk_store::{DryRun, IncomingMail, RegisteredHelpdesk, Simulator};

use super::tickets::{clip, terminal_safe};
use crate::config::Config;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Show, for each mail, its classification, every rule with the conditions that
    /// held or failed, and the ticket it would create or update. Writes nothing.
    Test {
        /// Helpdesk whose rules run [default: chosen by recipient, as `import` does].
        #[arg(long)]
        helpdesk: Option<String>,
        /// .eml files (also mbox files, Maildir folders, directories). Without any,
        /// or with `-`, one mail is read from standard input.
        files: Vec<PathBuf>,
    },
}

pub async fn run(config_path: &Path, command: RulesCommand) -> anyhow::Result<()> {
    let RulesCommand::Test { helpdesk, files } = command;
    let config = Config::load(config_path)?;
    let simulator = match Simulator::open(&config.database_url)? {
        Some(simulator) => {
            println!(
                "Database {} opened read-only: nothing is written.",
                config.database_url
            );
            simulator
        }
        None => {
            println!(
                "No database yet at {}: no tickets or contacts exist. Nothing is written.",
                config.database_url
            );
            Simulator::empty()?
        }
    };
    let helpdesks = simulator.lookup_helpdesks(&config.helpdesks)?;
    let fixed = match &helpdesk {
        Some(name) => Some(
            helpdesks
                .iter()
                .position(|h| h.config.settings.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = helpdesks
                        .iter()
                        .map(|h| h.config.settings.name.as_str())
                        .collect();
                    anyhow::anyhow!(
                        "no helpdesk named `{name}` is configured; the helpdesks are {}",
                        names.join(", ")
                    )
                })?,
        ),
        None => None,
    };
    let limits = Limits {
        max_mail_bytes: config.max_mail_bytes,
    };
    let mut unreadable = 0;
    let from_stdin = files.is_empty() || files.iter().any(|f| f.as_os_str() == "-");
    let paths: Vec<PathBuf> = files.into_iter().filter(|f| f.as_os_str() != "-").collect();
    let mut mails: Box<dyn Iterator<Item = anyhow::Result<RawMail>>> = Box::new(
        postdesk_sources::files::read_paths(&paths).map(|m| m.map_err(anyhow::Error::from)),
    );
    if from_stdin {
        let limit = config.max_mail_bytes.saturating_mul(2);
        let stdin = postdesk_sources::stdin::read_one(std::io::stdin().lock(), limit)
            .map_err(anyhow::Error::from);
        mails = Box::new(std::iter::once(stdin).chain(mails));
    }
    for mail in mails {
        let raw = match mail {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("error: {e:#}");
                unreadable += 1;
                continue;
            }
        };
        let location = raw.location.clone();
        let (incoming, _) = analyse(raw, &helpdesks, fixed, &limits, &super::parse_options());
        let dry = if incoming.failure.is_none() {
            Some(simulator.dry_run(&helpdesks, &incoming)?)
        } else {
            None
        };
        print!("{}", render(&location, &helpdesks, &incoming, dry.as_ref()));
    }
    if unreadable > 0 {
        bail!("{unreadable} mail(s) could not be read");
    }
    Ok(())
}

/// The report for one mail.
fn render(
    location: &str,
    helpdesks: &[RegisteredHelpdesk],
    incoming: &IncomingMail,
    dry: Option<&DryRun>,
) -> String {
    let m = &incoming.mail;
    let target = &helpdesks[incoming.helpdesk].config;
    let mut out = format!("\n── {} ──\n", terminal_safe(location));
    out.push_str(&format!(
        "From:    {}\nSubject: {}\n",
        m.from
            .as_ref()
            .map(show_address)
            .unwrap_or_else(|| "-".into()),
        clip(&m.subject, 100)
    ));
    // The rules that ran are those of the helpdesk the mail came to, before any hand-over.
    let ruling = match &incoming.route.routed_from {
        Some(name) => helpdesks
            .iter()
            .find(|h| &h.config.settings.name == name)
            .map_or(target, |h| &h.config),
        None => target,
    };
    let verdict = classify_with_signal(m, &ruling.own_addresses);
    let class = verdict.class;
    out.push_str(&format!(
        "helpdesk {} · classification {} ({})\n",
        ruling.settings.name,
        class.as_str(),
        verdict.signal
    ));
    let (Some(dry), None) = (dry, &incoming.failure) else {
        let reason = incoming.failure.as_deref().unwrap_or("-");
        out.push_str(&format!("Result: the failed queue: {reason}\n"));
        return out;
    };
    if ruling.rules.is_empty() {
        out.push_str("No rules: threading decides.\n");
    } else if class == postdesk_mail::Classification::Loop {
        out.push_str("Rules do not run on mail from our own address (a loop).\n");
    } else {
        // Conditions see the attachments as the route stage saw them (names, inline).
        let mut mail = m.clone();
        mail.attachments = incoming
            .attachments
            .iter()
            .map(|a| Attachment {
                original_name: a.original_name.clone(),
                safe_name: a.safe_name.clone(),
                mime_type: a.mime_type.clone(),
                content_id: a.content_id.clone(),
                inline: a.inline,
                sha256: a.sha256.clone(),
                data: Vec::new(),
            })
            .collect();
        let traces = ruling.rules.explain(&mail, class);
        out.push_str(&format!("Rules of {}:\n", ruling.settings.name));
        for (i, trace) in traces.iter().enumerate() {
            out.push_str(&render_rule(i + 1, trace, dry));
        }
    }
    let decided = &dry.ruled.rules;
    if let Some(from) = &incoming.route.routed_from {
        out.push_str(&format!(
            "Handed over from helpdesk {from} to helpdesk {} by the rules.\n",
            target.settings.name
        ));
    }
    if incoming.route.routed_from.is_none()
        && let Some(asked) = &decided.fields.helpdesk
        && !asked.eq_ignore_ascii_case(&target.settings.name)
    {
        // The hand-over is decided before the database is asked (see `route`).
        out.push_str(&format!(
            "Note: a rule names helpdesk {asked}, but the hand-over was decided assuming an \
             update-ticket rule would apply to this referenced mail; the mail stays in {}.\n",
            target.settings.name
        ));
    }
    if let Some(already) = &dry.already {
        out.push_str(&format!(
            "Note: this mail is {already}; importing it again changes nothing. Otherwise:\n"
        ));
    }
    let by = decided
        .decided_by
        .as_ref()
        .filter(|_| decided.disposition != Some(Disposition::UpdateTicket))
        .map(|name| format!(" (rule {name:?})"))
        .unwrap_or_default();
    let fields: Vec<String> = decided
        .fields
        .listed()
        .into_iter()
        .filter(|(k, _)| *k != "helpdesk")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    match &dry.ruled.decision {
        Decision::NewTicket { note } => {
            let s = &target.settings;
            let requester = match (&dry.facts.sender.email, dry.facts.sender.contact_id) {
                (Some(email), Some(id)) => format!("{email} (contact {id})"),
                (Some(email), None) if s.unknown_sender == UnknownSender::CreateContact => {
                    format!("{email} (a new contact)")
                }
                _ => format!("the default contact {}", s.default_contact),
            };
            out.push_str(&format!(
                "Result: new ticket #{} in {}{by}, requester {}, status {}\n",
                dry.next_number,
                s.name,
                terminal_safe(&requester),
                decided
                    .fields
                    .status
                    .as_deref()
                    .unwrap_or(&s.new_ticket_status)
            ));
            if let Some(note) = note {
                out.push_str(&format!("  note: {}\n", terminal_safe(note)));
            }
        }
        Decision::FollowUp {
            set_status, note, ..
        } => {
            let (number, title, status) = dry
                .ticket
                .as_ref()
                .map(|t| (t.number.to_string(), clip(&t.title, 60), t.status.clone()))
                .unwrap_or_default();
            let new_status = decided.fields.status.as_ref().or(set_status.as_ref());
            let status = match new_status {
                Some(new) if *new != status => format!("status {status} → {new}"),
                _ => format!("status {status}"),
            };
            out.push_str(&format!(
                "Result: added to ticket #{number} {title:?} in {}{by}, {status}\n",
                target.settings.name
            ));
            if let Some(note) = note {
                out.push_str(&format!("  note: {}\n", terminal_safe(note)));
            }
        }
        Decision::Ignore { reason } => {
            out.push_str(&format!(
                "Result: ignored, kept in the ledger: {}\n",
                terminal_safe(reason)
            ));
            if let Some(folder) = decided.ignore_folder() {
                out.push_str(&format!(
                    "  from an IMAP mailbox it would be moved to folder {folder:?}\n"
                ));
            }
        }
        Decision::Reject { reason } => {
            out.push_str(&format!(
                "Result: rejected to the failed queue: {}\n",
                terminal_safe(reason)
            ));
        }
    }
    if !fields.is_empty()
        && matches!(
            dry.ruled.decision,
            Decision::NewTicket { .. } | Decision::FollowUp { .. }
        )
    {
        out.push_str(&format!("  set: {}\n", fields.join(", ")));
    }
    out
}

fn render_rule(position: usize, trace: &RuleTrace, dry: &DryRun) -> String {
    let rule = &trace.rule;
    let decided = &dry.ruled.rules;
    let status = if !trace.matched {
        "no match".to_string()
    } else if decided.passed_over.contains(&rule.name) {
        "matched, passed over: update-ticket, but the mail belongs to no ticket".to_string()
    } else if decided.applied.contains(&rule.name) {
        match (&rule.actions.disposition, &decided.decided_by) {
            (Some(d), Some(by)) if *by != rule.name => format!(
                "matched, applies; its {} gives way to rule {by:?}",
                d.action_name()
            ),
            _ => "matched, applies".to_string(),
        }
    } else {
        "matched, not reached: an earlier rule stops".to_string()
    };
    let stop = if rule.stop { "" } else { ", stop = false" };
    let mut out = format!(
        "  {position}. {:?} (match {}{stop}): {status}\n",
        rule.name,
        rule.match_mode.as_str()
    );
    if trace.conditions.is_empty() {
        out.push_str("       (no conditions: matches every mail)\n");
    }
    for c in &trace.conditions {
        let texts: Vec<String> = c
            .texts
            .iter()
            .map(|t| format!("{:?}", clip(t, 60)))
            .collect();
        out.push_str(&format!(
            "       {} {}   read: {}\n",
            if c.holds { "✓" } else { "✗" },
            terminal_safe(&c.condition),
            texts.join(", ")
        ));
    }
    out.push_str(&format!(
        "       actions: {}\n",
        rule.describe_actions().join("; ")
    ));
    out
}

fn show_address(a: &Address) -> String {
    let text = match a.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} <{}>", a.email),
        None => a.email.clone(),
    };
    clip(&text, 100)
}
