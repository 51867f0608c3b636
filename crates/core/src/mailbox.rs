//! IMAP mailboxes a helpdesk reads (`[[helpdesk.mailbox]]`): where, how to log
//! in, which folders, and what to do with a mail once its ticket is committed.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config_issue::ConfigIssue;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// Shown in logs and `postdesk status`; default `user@host`.
    pub name: Option<String>,
    /// Required for IMAP; Graph and Gmail mailboxes have none.
    #[serde(default)]
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
    #[serde(default)]
    pub auth: Auth,
    /// Required with `auth = "oauth2"`.
    pub oauth2: Option<OAuth2Settings>,
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

    // ---- Microsoft Graph and Gmail API mailboxes (issue 20) ----
    /// `imap` (default), `graph` (Microsoft 365 via Microsoft Graph) or `gmail` (Gmail API).
    #[serde(default)]
    pub kind: MailboxKind,
    /// Graph: the Entra tenant (its id or a domain such as `contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// Graph: the app registration's application (client) id.
    pub client_id: Option<String>,
    /// Graph: the client secret, inline, from an environment variable or a file — one
    /// of them for `flow = "client-credentials"`, none needed for `device-code`.
    pub client_secret: Option<Secret>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Graph: how postdesk signs in.
    #[serde(default)]
    pub flow: GraphFlow,
    /// The API's base URL: default `https://graph.microsoft.com/v1.0` for Graph and
    /// `https://gmail.googleapis.com/gmail/v1` for Gmail (national clouds, tests).
    pub api_url: Option<String>,
    /// Graph: the sign-in authority, default `https://login.microsoftonline.com`.
    pub login_url: Option<String>,
    /// Graph: where Microsoft Graph reaches `serve`'s notification endpoint from
    /// outside (`https://desk.example.com/hooks/graph`). Set, `serve` subscribes to
    /// change notifications and scans as soon as one comes; the delta is still polled
    /// every `interval_secs`. Unset: polling only.
    pub notification_url: Option<String>,
    /// Gmail: the Pub/Sub topic (`projects/P/topics/T`) `serve` asks Gmail to publish
    /// the mailbox's changes to (`users.watch`, renewed daily). Its push subscription
    /// must deliver to `https://…/hooks/gmail?token=<push_token>`.
    pub topic: Option<String>,
    /// Gmail: the secret in the push endpoint's URL, which authenticates Pub/Sub's
    /// pushes (at least 24 characters of letters, digits, `-` and `_`).
    pub push_token: Option<Secret>,
}

/// What a `[[helpdesk.mailbox]]` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxKind {
    #[default]
    Imap,
    /// Microsoft 365 / Exchange Online through Microsoft Graph.
    Graph,
    /// Gmail / Google Workspace through the Gmail API.
    Gmail,
}

/// How a Graph mailbox signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphFlow {
    /// The app's own identity (application permission `Mail.ReadWrite`).
    #[default]
    ClientCredentials,
    /// A user signs in once with `postdesk mailboxes authorize NAME` (delegated
    /// `Mail.ReadWrite` and `offline_access`); the refresh token is kept in the store.
    DeviceCode,
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
        self.name.clone().unwrap_or_else(|| match self.kind {
            MailboxKind::Imap => format!("{}@{}", self.user, self.host),
            MailboxKind::Graph => format!("graph:{}", self.user),
            MailboxKind::Gmail => format!("gmail:{}", self.user),
        })
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 993,
            Security::Starttls | Security::None => 143,
        })
    }

    /// Checks what serde cannot; the issue's key is inside `[[helpdesk.mailbox]]`.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        match self.kind {
            MailboxKind::Imap => self.check_imap()?,
            MailboxKind::Graph | MailboxKind::Gmail => self.check_api()?,
        }
        if self.folders.is_empty() {
            return Err(ConfigIssue::new(
                "folders",
                "name at least one folder, e.g. [\"INBOX\"]",
            ));
        }
        if self.interval_secs == 0 {
            return Err(ConfigIssue::new("interval_secs", "must be 1 or more"));
        }
        Ok(())
    }

    fn check_imap(&self) -> Result<(), ConfigIssue> {
        match (self.auth, &self.oauth2) {
            (Auth::Password, _) => one_source(
                "password",
                [
                    self.password.is_some(),
                    self.password_env.is_some(),
                    self.password_file.is_some(),
                ],
            )?,
            (Auth::Oauth2, None) => {
                return Err(ConfigIssue::new(
                    "oauth2",
                    "auth = \"oauth2\" needs a [helpdesk.mailbox.oauth2] table",
                ));
            }
            (Auth::Oauth2, Some(oauth)) => oauth.check()?,
        }
        if self.host.trim().is_empty() {
            return Err(ConfigIssue::new("host", "must not be empty"));
        }
        Ok(())
    }

    /// Graph and Gmail: what each needs, and no IMAP key that would be ignored.
    fn check_api(&self) -> Result<(), ConfigIssue> {
        let kind = match self.kind {
            MailboxKind::Graph => "graph",
            _ => "gmail",
        };
        if !self.host.is_empty() || self.password.is_some() || self.password_env.is_some() {
            return Err(ConfigIssue::new(
                "host",
                format!("a kind = \"{kind}\" mailbox has no host or password; remove them"),
            ));
        }
        if let Some(url) = self
            .api_url
            .iter()
            .chain(&self.login_url)
            .find(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(ConfigIssue::new(
                "api_url",
                format!("`{url}` is not an http(s) URL"),
            ));
        }
        if let Some(url) = &self.notification_url {
            if self.kind != MailboxKind::Graph {
                return Err(ConfigIssue::new(
                    "notification_url",
                    "only kind = \"graph\" mailboxes take change notifications; Gmail is polled",
                ));
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigIssue::new(
                    "notification_url",
                    format!("`{url}` is not an http(s) URL; Graph calls it, and wants https://"),
                ));
            }
        }
        match (&self.topic, &self.push_token) {
            (Some(_), _) | (_, Some(_)) if self.kind != MailboxKind::Gmail => {
                return Err(ConfigIssue::new(
                    "topic",
                    "topic and push_token are for kind = \"gmail\" (Graph takes notification_url)",
                ));
            }
            (Some(topic), Some(token)) => {
                let parts: Vec<&str> = topic.split('/').collect();
                if parts.len() != 4 || parts[0] != "projects" || parts[2] != "topics" {
                    return Err(ConfigIssue::new(
                        "topic",
                        format!("`{topic}` is not a Pub/Sub topic (projects/PROJECT/topics/TOPIC)"),
                    ));
                }
                let token = token.expose();
                let safe = token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if token.len() < 24 || !safe {
                    return Err(ConfigIssue::new(
                        "push_token",
                        "must be at least 24 characters of letters, digits, - and _ (e.g. `openssl rand -hex 16`)",
                    ));
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigIssue::new(
                    "push_token",
                    "Gmail push needs both topic and push_token",
                ));
            }
            (None, None) => {}
        }
        if self.user.trim().is_empty() {
            return Err(ConfigIssue::new(
                "user",
                "name the mailbox (its address, or `me` for Gmail)",
            ));
        }
        let secrets = [
            self.client_secret.is_some(),
            self.client_secret_env.is_some(),
            self.client_secret_file.is_some(),
        ];
        match self.kind {
            MailboxKind::Graph => {
                for (key, value) in [("tenant", &self.tenant), ("client_id", &self.client_id)] {
                    if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                        return Err(ConfigIssue::new(
                            key,
                            format!(
                                "kind = \"graph\" needs {key} (from the app registration in Microsoft Entra)"
                            ),
                        ));
                    }
                }
                match self.flow {
                    GraphFlow::ClientCredentials => one_source("client_secret", secrets)?,
                    GraphFlow::DeviceCode if secrets.iter().filter(|s| **s).count() > 1 => {
                        return Err(ConfigIssue::new(
                            "client_secret",
                            "give only one of client_secret, client_secret_env or client_secret_file",
                        ));
                    }
                    GraphFlow::DeviceCode => {}
                }
            }
            _ => match &self.oauth2 {
                None => {
                    return Err(ConfigIssue::new(
                        "oauth2",
                        "kind = \"gmail\" needs a [helpdesk.mailbox.oauth2] table (token_url, client_id, client_secret, refresh_token)",
                    ));
                }
                Some(oauth) => oauth.check()?,
            },
        }
        Ok(())
    }
}

/// Exactly one of a secret's sources (`x`, `x_env`, `x_file`) must be given.
fn one_source(key: &str, given: [bool; 3]) -> Result<(), ConfigIssue> {
    match given.iter().filter(|g| **g).count() {
        1 => Ok(()),
        0 => Err(ConfigIssue::new(
            key,
            format!("give one of {key}, {key}_env or {key}_file"),
        )),
        _ => Err(ConfigIssue::new(
            key,
            format!("give only one of {key}, {key}_env or {key}_file"),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    #[default]
    Password,
    /// SASL XOAUTH2 or OAUTHBEARER with an access token from `oauth2.token_url`.
    Oauth2,
}

/// OAuth2 for IMAP (Microsoft 365, Gmail…): a refresh token is traded for access
/// tokens at the token endpoint; a rotated refresh token is kept in the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_env: Option<String>,
    pub refresh_token_file: Option<PathBuf>,
    #[serde(default)]
    pub mechanism: SaslMechanism,
}

impl OAuth2Settings {
    fn check(&self) -> Result<(), ConfigIssue> {
        if !(self.token_url.starts_with("https://") || self.token_url.starts_with("http://")) {
            return Err(ConfigIssue::new(
                "oauth2.token_url",
                format!("`{}` is not an http(s) URL", self.token_url),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigIssue::new("oauth2.client_id", "must not be empty"));
        }
        one_source(
            "oauth2.refresh_token",
            [
                self.refresh_token.is_some(),
                self.refresh_token_env.is_some(),
                self.refresh_token_file.is_some(),
            ],
        )?;
        let secrets = [
            self.client_secret.is_some(),
            self.client_secret_env.is_some(),
            self.client_secret_file.is_some(),
        ];
        if secrets.iter().filter(|s| **s).count() > 1 {
            return Err(ConfigIssue::new(
                "oauth2.client_secret",
                "give only one of client_secret, client_secret_env or client_secret_file",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaslMechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    #[default]
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    Oauthbearer,
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

/// A secret from the config: never printed, never logged, and never echoed in the
/// config's error messages (a value of the wrong type is refused without quoting it).
#[derive(Clone)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_string(SecretText)
    }
}

/// Takes only text. serde's own message for a value of another type quotes the value
/// (``invalid type: integer `47114711` ``), which for a secret is the secret.
struct SecretText;

const SECRET_NOT_TEXT: &str =
    "a secret must be written as a string in quotes (its value is not shown here)";

impl serde::de::Visitor<'_> for SecretText {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }
}

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
    fn oauth2_needs_its_table_and_one_refresh_token() {
        let m = settings(r#"{"host": "h", "user": "u", "auth": "oauth2"}"#);
        assert_eq!(m.check().unwrap_err().key.as_deref(), Some("oauth2"));
        let m = settings(
            r#"{"host": "h", "user": "u", "auth": "oauth2", "oauth2": {"token_url": "https://login.example/token", "client_id": "c"}}"#,
        );
        assert_eq!(
            m.check().unwrap_err().key.as_deref(),
            Some("oauth2.refresh_token")
        );
        let m = settings(
            r#"{"host": "h", "user": "u", "auth": "oauth2", "oauth2": {"token_url": "https://login.example/token", "client_id": "c", "refresh_token": "rt-secret"}}"#,
        );
        assert!(m.check().is_ok());
        assert!(!format!("{m:?}").contains("rt-secret"));
    }

    #[test]
    fn exactly_one_password_source() {
        let none = settings(r#"{"host": "h", "user": "u"}"#);
        assert_eq!(none.check().unwrap_err().key.as_deref(), Some("password"));
        let two = settings(r#"{"host": "h", "user": "u", "password": "x", "password_env": "X"}"#);
        assert_eq!(two.check().unwrap_err().key.as_deref(), Some("password"));
    }

    #[test]
    fn graph_and_gmail_mailboxes_need_their_own_keys() {
        let key = |json: &str| settings(json).check().err().and_then(|i| i.key);
        let graph = r#"{"kind": "graph", "tenant": "t", "client_id": "c", "client_secret": "s", "user": "support@contoso.com"}"#;
        let m = settings(graph);
        assert!(m.check().is_ok());
        assert_eq!(m.display_name(), "graph:support@contoso.com");
        assert!(!format!("{m:?}").contains("\"s\""));
        assert_eq!(
            key(r#"{"kind": "graph", "client_id": "c", "client_secret": "s", "user": "u"}"#)
                .as_deref(),
            Some("tenant")
        );
        assert_eq!(
            key(r#"{"kind": "graph", "tenant": "t", "client_id": "c", "user": "u"}"#).as_deref(),
            Some("client_secret")
        );
        // A device-code sign-in needs no secret.
        assert_eq!(
            key(
                r#"{"kind": "graph", "tenant": "t", "client_id": "c", "user": "u", "flow": "device-code"}"#
            ),
            None
        );
        assert_eq!(
            key(r#"{"kind": "graph", "tenant": "t", "client_id": "c", "client_secret": "s", "user": "u", "host": "imap.x"}"#).as_deref(),
            Some("host")
        );
        assert_eq!(
            key(r#"{"kind": "graph", "tenant": "t", "client_id": "c", "client_secret": "s", "user": "u", "api_url": "ftp://x"}"#).as_deref(),
            Some("api_url")
        );
        assert_eq!(
            key(r#"{"kind": "gmail", "user": "me"}"#).as_deref(),
            Some("oauth2")
        );
        let gmail = settings(
            r#"{"kind": "gmail", "user": "me", "oauth2": {"token_url": "https://oauth2.googleapis.com/token", "client_id": "c", "refresh_token": "r"}}"#,
        );
        assert!(gmail.check().is_ok());
        assert_eq!(gmail.display_name(), "gmail:me");
        // IMAP still needs its host.
        assert_eq!(
            key(r#"{"user": "u", "password": "p"}"#).as_deref(),
            Some("host")
        );
    }

    #[test]
    fn notification_settings_belong_to_their_kind_and_are_checked() {
        let key = |json: &str| settings(json).check().err().and_then(|i| i.key);
        let graph = |extra: &str| {
            format!(
                r#"{{"kind": "graph", "tenant": "t", "client_id": "c", "client_secret": "s", "user": "u"{extra}}}"#
            )
        };
        assert_eq!(
            key(&graph(
                r#", "notification_url": "https://desk.example.com/hooks/graph""#
            )),
            None
        );
        assert_eq!(
            key(&graph(r#", "notification_url": "desk.example.com""#)).as_deref(),
            Some("notification_url")
        );
        assert_eq!(
            key(&graph(r#", "topic": "projects/p/topics/t""#)).as_deref(),
            Some("topic")
        );
        let gmail = |extra: &str| {
            format!(
                r#"{{"kind": "gmail", "user": "me", "oauth2": {{"token_url": "https://oauth2.googleapis.com/token", "client_id": "c", "refresh_token": "r"}}{extra}}}"#
            )
        };
        let token = "0123456789abcdef01234567";
        assert_eq!(
            key(&gmail(&format!(
                r#", "topic": "projects/p/topics/t", "push_token": "{token}""#
            ))),
            None
        );
        assert_eq!(
            key(&gmail(r#", "topic": "projects/p/topics/t""#)).as_deref(),
            Some("push_token")
        );
        assert_eq!(
            key(&gmail(&format!(
                r#", "topic": "p/t", "push_token": "{token}""#
            )))
            .as_deref(),
            Some("topic")
        );
        let short = settings(&gmail(
            r#", "topic": "projects/p/topics/t", "push_token": "sh0rt secret""#,
        ));
        let issue = short.check().unwrap_err();
        assert_eq!(issue.key.as_deref(), Some("push_token"));
        assert!(
            !issue.to_string().contains("sh0rt"),
            "the secret is not quoted"
        );
        assert_eq!(
            key(&gmail(r#", "notification_url": "https://x/hooks/graph""#)).as_deref(),
            Some("notification_url")
        );
    }
}
