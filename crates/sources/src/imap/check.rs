//! `postdesk check`: the "test connection" button, one step at a time.

use futures::TryStreamExt;
use postdesk_app::mailboxes::CheckStep;
use postdesk_core::mailbox::MailboxSettings;

use super::connect::Credential;
use super::{ImapError, TIMEOUT, connect, server_folder, timed};

/// Runs every step it can; stops at the first that makes the next impossible.
/// `credential` is the password or OAuth2 token as fetched (and refreshed) just before.
pub async fn check(
    settings: &MailboxSettings,
    credential: Result<Credential, ImapError>,
) -> Vec<CheckStep> {
    let mut steps = Vec::new();
    let mut step = |name: &str, result: Result<String, String>| {
        let ok = result.is_ok();
        steps.push(CheckStep {
            name: name.to_string(),
            result,
        });
        ok
    };
    let address = format!("{}:{}", settings.host, settings.port());
    let resolved = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host(address.clone())).await;
    let dns = match resolved {
        Ok(Ok(addrs)) => {
            let list: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            Ok(format!("{} → {}", settings.host, list.join(", ")))
        }
        Ok(Err(e)) => Err(format!(
            "{} does not resolve: {e}; check `host`",
            settings.host
        )),
        Err(_) => Err(format!("resolving {} timed out", settings.host)),
    };
    if !step("DNS", dns) {
        return steps;
    }
    let client = match connect::connect(settings).await {
        Ok(client) => {
            step(
                "connect and TLS",
                Ok(format!("{address}, security {:?}", settings.security)),
            );
            client
        }
        Err(e) => {
            step("connect and TLS", Err(e.to_string()));
            return steps;
        }
    };
    let credential = match credential {
        Ok(c) => {
            if matches!(c, Credential::Bearer { .. }) {
                step("OAuth2 token", Ok("refreshed".into()));
            }
            c
        }
        Err(e) => {
            step("credentials", Err(e.to_string()));
            return steps;
        }
    };
    let mut session = match connect::login(client, settings, &credential).await {
        Ok(session) => {
            step("login", Ok(format!("as {}", settings.user)));
            session
        }
        Err(e) => {
            step("login", Err(e.to_string()));
            return steps;
        }
    };
    let names = async {
        let stream = timed("LIST", session.list(Some(""), Some("*"))).await?;
        timed("LIST", stream.try_collect::<Vec<_>>()).await
    }
    .await;
    let names = match names {
        Ok(names) => names,
        Err(e) => {
            step("folder list", Err(e.to_string()));
            return steps;
        }
    };
    let delimiter = names.iter().find_map(|n| n.delimiter().map(str::to_string));
    let existing: Vec<String> = names.iter().map(|n| n.name().to_string()).collect();
    step(
        "folder list",
        Ok(format!(
            "{} folders, delimiter {:?}",
            existing.len(),
            delimiter.as_deref().unwrap_or("none")
        )),
    );
    let wanted = settings
        .folders
        .iter()
        .chain([&settings.processed_folder, &settings.unprocessed_folder]);
    for folder in wanted {
        let name = server_folder(folder, delimiter.as_deref());
        let present = existing.iter().any(|e| e == &name) || name.eq_ignore_ascii_case("INBOX");
        let result = if present {
            Ok(name.clone())
        } else if settings.create_folders {
            Ok(format!(
                "{name} is missing; it will be created (create_folders = true)"
            ))
        } else {
            Err(format!(
                "{name} is missing; create it or set create_folders = true"
            ))
        };
        step(&format!("folder {folder}"), result);
    }
    for folder in &settings.folders {
        let name = server_folder(folder, delimiter.as_deref());
        let waiting = match timed("EXAMINE", session.examine(&name)).await {
            Ok(mailbox) => Ok(format!("{} mails waiting in {name}", mailbox.exists)),
            Err(e) => Err(e.to_string()),
        };
        step(&format!("mails in {folder}"), waiting);
    }
    let _ = tokio::time::timeout(TIMEOUT, session.logout()).await;
    steps
}
