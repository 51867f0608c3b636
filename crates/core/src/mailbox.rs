//! IMAP mailboxes a helpdesk reads (`[[helpdesk.mailbox]]`): where, how to log
//! in, which folders, and what to do with a mail once its ticket is committed.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// Shown in logs and `postdesk status`; default `user@host`.
    pub name: Option<String>,
    pub host: String,
    /// Default 993 for `tls`, 143 otherwise.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    /// Extra CA certificate (PEM) to trust, e.g. a company CA.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for tests against self-signed servers.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// Passed to the server as written (Exchange's `user@domain\shared` included).
    pub user: String,
    /// The password inline, from an environment variable, or from a file — one of them.
    pub password: Option<Secret>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    #[serde(default = "default_processed")]
    pub processed_folder: String,
    #[serde(default = "default_unprocessed")]
    pub unprocessed_folder: String,
    /// Create missing folders instead of reporting them.
    #[serde(default)]
    pub create_folders: bool,
    #[serde(default)]
    pub scan: Scan,
    #[serde(default)]
    pub after_success: AfterSuccess,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Wait with IDLE between scans when the server offers it.
    #[serde(default = "yes")]
    pub idle: bool,
    #[serde(default = "yes")]
    pub active: bool,
}

impl std::fmt::Debug for MailboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, whatever its source.
        f.debug_struct("MailboxSettings")
            .field("name", &self.display_name())
            .field("security", &self.security)
            .field("folders", &self.folders)
            .finish_non_exhaustive()
    }
}

impl MailboxSettings {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.user, self.host))
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 993,
            Security::Starttls | Security::None => 143,
        })
    }

    /// Checks what serde cannot; the error names the key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let sources = [
            self.password.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => {
                return Err((
                    "password",
                    "give one of password, password_env or password_file".into(),
                ));
            }
            1 => {}
            _ => {
                return Err((
                    "password",
                    "give only one of password, password_env or password_file".into(),
                ));
            }
        }
        if self.host.trim().is_empty() {
            return Err(("host", "must not be empty".into()));
        }
        if self.folders.is_empty() {
            return Err((
                "folders",
                "name at least one folder, e.g. [\"INBOX\"]".into(),
            ));
        }
        if self.interval_secs == 0 {
            return Err(("interval_secs", "must be 1 or more".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Implicit TLS (IMAPS, port 993).
    #[default]
    Tls,
    Starttls,
    /// Plaintext: only when chosen explicitly.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scan {
    /// Every mail in the folder (read or not): nothing is skipped because someone opened it.
    #[default]
    All,
    Unseen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterSuccess {
    /// Move to the processed folder.
    #[default]
    Move,
    /// Flag as read and leave it.
    MarkRead,
    /// Leave it; postdesk remembers the last UID it processed.
    Keep,
}

/// A secret from the config: never printed, never logged.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

fn default_folders() -> Vec<String> {
    vec!["INBOX".into()]
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_unprocessed() -> String {
    "Unprocessed".into()
}
fn default_interval() -> u64 {
    60
}
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> MailboxSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_and_secrets() {
        let m = settings(
            r#"{"host": "imap.example.com", "user": "support@example.com\\shared", "password": "hunter2"}"#,
        );
        assert_eq!(m.port(), 993);
        assert_eq!(m.user, "support@example.com\\shared");
        assert_eq!(m.folders, vec!["INBOX"]);
        assert_eq!(m.after_success, AfterSuccess::Move);
        assert!(m.check().is_ok());
        let shown = format!("{m:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn exactly_one_password_source() {
        let none = settings(r#"{"host": "h", "user": "u"}"#);
        assert_eq!(none.check().unwrap_err().0, "password");
        let two = settings(r#"{"host": "h", "user": "u", "password": "x", "password_env": "X"}"#);
        assert_eq!(two.check().unwrap_err().0, "password");
    }
}
