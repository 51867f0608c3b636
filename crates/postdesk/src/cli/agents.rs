//! `postdesk agents add | list | passwd | token`: who may use the web UI and the API.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use postdesk_store::access::Role;

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
    /// Set an agent's password (ends their open sessions).
    Passwd { name: String },
    /// Create an API token for an agent; it is shown once.
    Token {
        name: String,
        /// What the token is for, e.g. "monitoring".
        #[arg(long, default_value = "api")]
        label: String,
    },
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
                    if a.has_password {
                        ""
                    } else {
                        "  (no password: cannot sign in)"
                    }
                );
            }
        }
        AgentsCommand::Passwd { name } => {
            let hash = new_password_hash(&format!("New password for {name}: "))?;
            store.set_agent_password(&name, &hash).await?;
            println!("Password of {name} changed; their open sessions have ended.");
        }
        AgentsCommand::Token { name, label } => {
            let token = postdesk_web::new_token();
            store
                .create_api_token(&name, &label, &postdesk_web::token_hash(&token))
                .await?;
            println!("{token}");
            eprintln!(
                "API token for {name}: send it as `Authorization: Bearer <token>`. It is not shown again."
            );
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
