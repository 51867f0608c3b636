//! `postdesk agents add | list | passwd | disable | enable | token | tokens | revoke |
//! locks | unlock`: who may use the web UI and the API, their tokens (shown once, when
//! created; only their hashes are kept) and the sign-in limits in force.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use postdesk_store::access::{LoginLimits, Role};

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// Add an agent, or change an existing one's email, role and helpdesks. Asks for a
    /// password (or reads one line from standard input when it is not a terminal).
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// `agent` sees the helpdesks given with --helpdesk; `admin` sees every helpdesk.
        #[arg(long, default_value = "agent", value_parser = ["agent", "admin"])]
        role: String,
        /// A helpdesk the agent belongs to (repeat for several).
        #[arg(long = "helpdesk")]
        helpdesks: Vec<String>,
    },
    /// Every agent, their role and helpdesks.
    List,
    /// Set an agent's password: ends their open sessions and revokes their API tokens.
    Passwd {
        name: String,
        /// Leave the agent's API tokens working.
        #[arg(long)]
        keep_tokens: bool,
    },
    /// Stop an agent from signing in: their sessions end, their tokens stop working.
    Disable { name: String },
    /// Let a disabled agent sign in again (their revoked tokens stay revoked).
    Enable { name: String },
    /// Create an API token for an agent; it is shown once.
    Token {
        name: String,
        /// What the token is for, e.g. "monitoring".
        #[arg(long, default_value = "api")]
        label: String,
        /// How long it works: `90d`, `12h`, `30m`, `45s`, or `never`.
        #[arg(long, default_value = "90d")]
        expires: String,
    },
    /// An agent's API tokens: id, label, state, creation, expiry and last use.
    Tokens { name: String },
    /// Revoke an agent's API token (by the id `agents tokens` shows), or all of them.
    Revoke { name: String, token_id: Option<i64> },
    /// The sign-in limits in force: names, addresses, attempts and the time left.
    Locks,
    /// Clear the sign-in limits on an agent's name, from every address.
    Unlock { name: String },
}

/// `90d`, `12h`, `30m`, `45s` in seconds; `never` is none.
fn lifetime(text: &str) -> anyhow::Result<Option<i64>> {
    if text == "never" {
        return Ok(None);
    }
    let bad = || {
        anyhow::anyhow!(
            "`{text}` is not a lifetime; write e.g. `90d`, `12h`, `30m`, `45s` or `never`"
        )
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    number.checked_mul(unit).map(Some).ok_or_else(bad)
}

fn when(time: Option<i64>, none: &str) -> String {
    time.map_or_else(|| none.to_string(), postdesk_core::time::format_time)
}

pub async fn run(config_path: &Path, command: AgentsCommand) -> anyhow::Result<()> {
    let (_, app) = super::open(config_path, None).await?;
    let store = app.store();
    match command {
        AgentsCommand::Add {
            name,
            email,
            role,
            helpdesks,
        } => {
            let role = Role::parse(&role).unwrap_or(Role::Agent);
            if role == Role::Agent && helpdesks.is_empty() {
                bail!(
                    "an agent sees only the helpdesks they belong to: give at least one --helpdesk NAME (or --role admin)"
                );
            }
            let hash = new_password_hash(&format!("Password for {name}: "))?;
            store
                .save_agent(&name, email.as_deref(), role, Some(&hash), &helpdesks)
                .await?;
            println!(
                "Agent {name} ({}) can sign in{}.",
                role.as_str(),
                if helpdesks.is_empty() {
                    String::new()
                } else {
                    format!(" to {}", helpdesks.join(", "))
                }
            );
        }
        AgentsCommand::List => {
            let agents = store.agents().await?;
            for a in agents {
                println!(
                    "{:<20} {:<6} {:<28} {}{}",
                    a.name,
                    a.role.as_str(),
                    a.email.as_deref().unwrap_or("-"),
                    a.helpdesk_names.join(", "),
                    if !a.active {
                        "  (disabled: cannot sign in)"
                    } else if a.has_password {
                        ""
                    } else {
                        "  (no password: cannot sign in)"
                    }
                );
            }
        }
        AgentsCommand::Passwd { name, keep_tokens } => {
            let hash = new_password_hash(&format!("New password for {name}: "))?;
            store.set_agent_password(&name, &hash, keep_tokens).await?;
            println!(
                "Password of {name} changed; their open sessions have ended{}.",
                if keep_tokens {
                    ", their API tokens still work"
                } else {
                    " and their API tokens are revoked"
                }
            );
        }
        AgentsCommand::Disable { name } => {
            store.set_agent_active(&name, false).await?;
            println!("{name} is disabled: their sessions have ended and their tokens do not work.");
        }
        AgentsCommand::Enable { name } => {
            store.set_agent_active(&name, true).await?;
            println!("{name} can sign in again.");
        }
        AgentsCommand::Token {
            name,
            label,
            expires,
        } => {
            let expires_at = lifetime(&expires)?.map(|secs| postdesk_store::now() + secs);
            let token = postdesk_web::new_token();
            let id = store
                .create_api_token(&name, &label, &postdesk_web::token_hash(&token), expires_at)
                .await?;
            println!("{token}");
            eprintln!(
                "API token {id} for {name}, {}: send it as `Authorization: Bearer <token>`. \
                 It is not shown again; `postdesk agents revoke {name} {id}` ends it.",
                expires_at.map_or_else(
                    || "never expires".to_string(),
                    |t| format!("expires {}", postdesk_core::time::format_time(t))
                )
            );
        }
        AgentsCommand::Tokens { name } => {
            let now = postdesk_store::now();
            let tokens = store.api_tokens(&name).await?;
            if tokens.is_empty() {
                println!("{name} has no API tokens.");
            }
            for t in tokens {
                println!(
                    "{:<5} {:<16} {:<8} created {}  expires {}  last used {}",
                    t.id,
                    t.name,
                    t.state(now),
                    postdesk_core::time::format_time(t.created_at),
                    when(t.expires_at, "never"),
                    when(t.last_used_at, "never"),
                );
            }
        }
        AgentsCommand::Revoke { name, token_id } => {
            let revoked = store.revoke_api_tokens(&name, token_id).await?;
            match token_id {
                Some(id) if revoked == 0 => println!("Token {id} of {name} was not live."),
                Some(id) => println!("Token {id} of {name} is revoked."),
                None => println!("{revoked} token(s) of {name} revoked."),
            }
        }
        AgentsCommand::Locks => {
            let locks = store.login_locks(LoginLimits::default()).await?;
            if locks.is_empty() {
                println!("No sign-in is limited now.");
            }
            for lock in locks {
                println!(
                    "{:<24} {:<40} {:>4} attempts, refused for {}s more",
                    lock.name.as_deref().unwrap_or("(any name)"),
                    lock.address.as_deref().unwrap_or("(any address)"),
                    lock.attempts,
                    lock.wait_secs
                );
            }
        }
        AgentsCommand::Unlock { name } => {
            let cleared = store.clear_login_locks(&name).await?;
            println!("Sign-in limits on {name} cleared ({cleared} count(s)).");
        }
    }
    app.store().close().await;
    Ok(())
}

fn new_password_hash(prompt: &str) -> anyhow::Result<String> {
    let password = read_password(prompt)?;
    Ok(postdesk_web::hash_password(&password)?)
}

/// One line from standard input; on a terminal, asked for without echo.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = String::new();
    if terminal {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
        let _echo = EchoOff::new();
        stdin.lock().read_line(&mut line)?;
        eprintln!();
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
    }
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password given");
    }
    Ok(password)
}

/// Turns terminal echo off until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut term) != 0 {
                return Self(None);
            }
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &term);
            Self(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}
