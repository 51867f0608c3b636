//! Outgoing mail of a helpdesk: the SMTP server it sends through (`[helpdesk.smtp]`),
//! who hears of what (`[helpdesk.notifications]`), and the templates of each mail,
//! checked when the configuration is loaded.

use crate::id::TicketNumber;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::text_enum::text_enum;

use crate::config_issue::ConfigIssue;
use crate::mailbox::{Secret, Security};

/// `[helpdesk.smtp]`: where this helpdesk's mail is sent from.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Default 465 for `tls`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    /// `tls`, `starttls` (the default here) or `none` (only when chosen).
    #[serde(default = "default_smtp_security")]
    pub security: Security,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for tests against self-signed servers.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// Login; without it postdesk sends without authenticating (a relay that trusts us).
    pub user: Option<String>,
    #[serde(default)]
    pub auth: SmtpAuth,
    /// The password (or, with `auth = "xoauth2"`, the access token): inline, from an
    /// environment variable or from a file — one of them when `user` is set.
    pub password: Option<Secret>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Sender address; default the helpdesk's first address.
    pub from: Option<String>,
    /// Sender display name; default the helpdesk's name.
    pub from_name: Option<String>,
    /// Seconds for each SMTP step.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, whatever its source.
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("security", &self.security)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpAuth {
    /// PLAIN or LOGIN, whichever the server offers.
    #[default]
    Password,
    /// XOAUTH2 with an access token (Microsoft 365, Google).
    Xoauth2,
}

fn default_smtp_security() -> Security {
    Security::Starttls
}
fn default_timeout() -> u64 {
    30
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::None => 25,
        })
    }

    /// Checks what serde cannot; the issue's key is inside `[helpdesk.smtp]`.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        if self.host.trim().is_empty() {
            return Err(ConfigIssue::new("host", "must not be empty"));
        }
        let sources = [
            self.password.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match (&self.user, sources) {
            // XOAUTH2 without a token of its own borrows the IMAP mailbox's OAuth2 account
            // (checked with the mailboxes, in `HelpdeskSettings::compile`).
            (Some(_), 0) if self.auth == SmtpAuth::Xoauth2 => {}
            (Some(_), 0) => {
                return Err(ConfigIssue::new(
                    "password",
                    "give one of password, password_env or password_file (or remove `user` to send without login)",
                ));
            }
            (_, n) if n > 1 => {
                return Err(ConfigIssue::new(
                    "password",
                    "give only one of password, password_env or password_file",
                ));
            }
            (None, 1) => {
                return Err(ConfigIssue::new(
                    "user",
                    "a password is given but no `user` to log in as",
                ));
            }
            _ => {}
        }
        if let Some(from) = &self.from
            && crate::address::normalize(from).is_none()
        {
            return Err(ConfigIssue::new(
                "from",
                format!("`{from}` is not an email address"),
            ));
        }
        if self.timeout_secs == 0 {
            return Err(ConfigIssue::new("timeout_secs", "must be 1 or more"));
        }
        Ok(())
    }
}

/// Who hears of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nobody.
    None,
    /// Every agent with an email address.
    AllAgents,
    /// The agents of a team listed in `notifications.teams`.
    Team(String),
    /// One address.
    Address(String),
    /// The ticket's agent: the assignee, else the manager (for new tickets the manager, else the assignee).
    TicketAgent,
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Target::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Target {
    /// The target written `s`; the issue names no key, as serde gives it its place.
    pub fn parse(s: &str) -> Result<Self, ConfigIssue> {
        let s = s.trim();
        Ok(match s {
            "none" => Self::None,
            "all-agents" => Self::AllAgents,
            "ticket-agent" => Self::TicketAgent,
            _ => {
                if let Some(team) = s.strip_prefix("team:") {
                    Self::Team(team.trim().to_string())
                } else if crate::address::normalize(s).is_some() {
                    Self::Address(s.to_string())
                } else {
                    return Err(ConfigIssue::unkeyed(format!(
                        "`{s}` is not a target; write none, all-agents, ticket-agent, team:<name> or an email address"
                    )));
                }
            }
        })
    }
}

/// `[helpdesk.notifications]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Language of the built-in templates: `en` or `de`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Send the requester an acknowledgement of each new ticket.
    #[serde(default = "yes")]
    pub acknowledge: bool,
    /// Free text appended to acknowledgements (opening hours, …).
    #[serde(default)]
    pub acknowledgement_text: String,
    /// At most this many acknowledgements to one address per hour.
    #[serde(default = "default_rate_limit")]
    pub max_acknowledgements_per_hour: u32,
    /// Who hears of a new ticket.
    #[serde(default = "ticket_agent")]
    pub new_ticket: Target,
    /// Who hears of a customer's follow-up.
    #[serde(default = "ticket_agent")]
    pub follow_up: Target,
    /// Who is alerted when a mail could not be processed.
    #[serde(default)]
    pub alert_contacts: Vec<String>,
    /// Team name → agent addresses, for `team:<name>` targets.
    #[serde(default)]
    pub teams: BTreeMap<String, Vec<String>>,
    /// Link to a ticket in mails, `{number}` replaced: `https://desk.example.com/t/{number}`.
    pub ticket_link: Option<String>,
    /// Event → template file (`acknowledgement`, `new_ticket`, `follow_up`, `alert`, `reply`):
    /// a first line `Subject: …`, a blank line, then the body. Relative to the config file.
    #[serde(default)]
    pub templates: BTreeMap<String, PathBuf>,
    /// The files of `templates`, read by whoever loads the configuration.
    #[serde(skip)]
    pub template_texts: BTreeMap<String, String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            language: default_language(),
            acknowledge: true,
            acknowledgement_text: String::new(),
            max_acknowledgements_per_hour: default_rate_limit(),
            new_ticket: Target::TicketAgent,
            follow_up: Target::TicketAgent,
            alert_contacts: Vec::new(),
            teams: BTreeMap::new(),
            ticket_link: None,
            templates: BTreeMap::new(),
            template_texts: BTreeMap::new(),
        }
    }
}

fn default_language() -> String {
    "en".into()
}
fn default_rate_limit() -> u32 {
    3
}
fn ticket_agent() -> Target {
    Target::TicketAgent
}
fn yes() -> bool {
    true
}

/// The global `[outgoing]` table of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// When false every mail is rendered and kept in the outbox as `suppressed`, never sent:
    /// for test and staging copies of a production database.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// First retry after a transient failure; doubled each time, at most an hour.
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: u64,
    /// Attempts before a mail is given up as failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long a sender owns a mail it is sending; after a crash the mail is sent again then.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// How often `postdesk serve` looks for mail to send.
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retry_base_secs: default_retry_base(),
            max_attempts: default_max_attempts(),
            lease_secs: default_lease(),
            poll_secs: default_poll(),
        }
    }
}

fn default_retry_base() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    12
}
fn default_lease() -> u64 {
    300
}
fn default_poll() -> u64 {
    5
}

impl DeliverySettings {
    /// Seconds to wait after `attempts` failed attempts (1, 2, …).
    pub fn backoff(&self, attempts: u32) -> u64 {
        let shift = attempts.saturating_sub(1).min(20);
        self.retry_base_secs.saturating_mul(1 << shift).min(3600)
    }

    /// Checks what serde cannot; the issue's key is inside `[outgoing]`.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        if self.max_attempts == 0 {
            return Err(ConfigIssue::new("max_attempts", "must be 1 or more"));
        }
        if self.lease_secs == 0 || self.poll_secs == 0 || self.retry_base_secs == 0 {
            return Err(ConfigIssue::new(
                "lease_secs",
                "lease_secs, poll_secs and retry_base_secs must be 1 or more",
            ));
        }
        Ok(())
    }
}

text_enum! {
    /// The mails postdesk writes (an outbox row's kind).
    pub enum Event {
        /// To the requester of a new ticket.
        Acknowledgement = "acknowledgement",
        /// To agents: a new ticket.
        NewTicket = "new_ticket",
        /// To agents: the customer answered.
        FollowUp = "follow_up",
        /// To the alert contacts: a mail could not be processed.
        Alert = "alert",
        /// An agent's answer to the customer.
        Reply = "reply",
        /// To a contact: the one-time sign-in link of the customer portal.
        PortalLink = "portal_link",
        /// To agents: a ticket was changed (`[helpdesk.in_app] mail_modified`).
        TicketModified = "ticket_modified",
    }
}

text_enum! {
    /// Where an outgoing mail stands in the outbox.
    pub enum OutboxStatus {
        /// Waiting for its next attempt (or its first).
        Queued = "queued",
        /// Accepted by the SMTP server.
        Sent = "sent",
        /// Refused for good, or out of attempts; `outbox retry` queues it again.
        Failed = "failed",
        /// Kept and never sent (`outgoing.enabled = false`).
        Suppressed = "suppressed",
    }
}

/// Built-in templates: (event, language) → (subject, body).
fn builtin(event: Event, language: &str) -> (&'static str, &'static str) {
    match (event, language) {
        (Event::Acknowledgement, "de") => (
            "{{ reference }} {{ title }} — registriert",
            "Guten Tag {{ requester_name }},\n\nwir haben Ihre Anfrage erhalten und unter der Nummer {{ reference }} registriert.\nBitte behalten Sie die Nummer im Betreff, wenn Sie uns dazu schreiben.\n{% if link %}\n{{ link }}\n{% endif %}{% if text %}\n{{ text }}\n{% endif %}\n{{ helpdesk }}\n",
        ),
        (Event::Acknowledgement, _) => (
            "{{ reference }} {{ title }} — registered",
            "Hello {{ requester_name }},\n\nwe have received your request and registered it as {{ reference }}.\nPlease keep the number in the subject when you write to us about it.\n{% if link %}\n{{ link }}\n{% endif %}{% if text %}\n{{ text }}\n{% endif %}\n{{ helpdesk }}\n",
        ),
        (Event::NewTicket, "de") => (
            "{{ reference }} {{ title }} — neues Ticket",
            "Neues Ticket {{ reference }} in {{ helpdesk }} von {{ requester_name }} <{{ requester_email }}>, {{ created }}.\nStatus: {{ status }}\n{% if link %}{{ link }}\n{% endif %}\n{{ description }}\n",
        ),
        (Event::NewTicket, _) => (
            "{{ reference }} {{ title }} — new ticket",
            "New ticket {{ reference }} in {{ helpdesk }} from {{ requester_name }} <{{ requester_email }}>, {{ created }}.\nStatus: {{ status }}\n{% if link %}{{ link }}\n{% endif %}\n{{ description }}\n",
        ),
        (Event::FollowUp, "de") => (
            "{{ reference }} {{ title }} — neue Antwort",
            "{{ author }} hat zu {{ reference }} geschrieben (Status: {{ status }}).\n{% if link %}{{ link }}\n{% endif %}\n{{ description }}\n",
        ),
        (Event::FollowUp, _) => (
            "{{ reference }} {{ title }} — new reply",
            "{{ author }} wrote on {{ reference }} (status: {{ status }}).\n{% if link %}{{ link }}\n{% endif %}\n{{ description }}\n",
        ),
        (Event::Alert, "de") => (
            "[postdesk] {{ helpdesk }}: eine Mail konnte nicht verarbeitet werden",
            "Eine Mail an {{ helpdesk }} konnte nicht verarbeitet werden.\n\nGrund: {{ reason }}\nAbsender: {{ sender }}\nBetreff: {{ subject }}\nLedger-Eintrag: {{ intake_id }}\n\nDie Mail liegt bei. `postdesk failed show {{ intake_id }}` zeigt sie, `postdesk failed retry {{ intake_id }}` versucht es erneut.\n",
        ),
        (Event::Alert, _) => (
            "[postdesk] {{ helpdesk }}: a mail could not be processed",
            "A mail to {{ helpdesk }} could not be processed.\n\nReason: {{ reason }}\nSender: {{ sender }}\nSubject: {{ subject }}\nLedger entry: {{ intake_id }}\n\nThe mail is attached. `postdesk failed show {{ intake_id }}` shows it, `postdesk failed retry {{ intake_id }}` tries again.\n",
        ),
        (Event::Reply, _) => ("Re: {{ reference }} {{ title }}", "{{ message }}\n"),
        (Event::TicketModified, "de") => (
            "{{ reference }} {{ title }} — geändert",
            "{{ description }}\n\nStatus: {{ status }}\n{% if link %}{{ link }}\n{% endif %}",
        ),
        (Event::TicketModified, _) => (
            "{{ reference }} {{ title }} — changed",
            "{{ description }}\n\nStatus: {{ status }}\n{% if link %}{{ link }}\n{% endif %}",
        ),
        (Event::PortalLink, "de") => (
            "{{ helpdesk }}: Ihr Anmeldelink",
            "Guten Tag,\n\nmit diesem Link melden Sie sich im Kundenportal von {{ helpdesk }} an. Er gilt 15 Minuten und nur einmal:\n\n{{ link }}\n\nHaben Sie keinen Link angefordert, können Sie diese Mail löschen.\n",
        ),
        (Event::PortalLink, _) => (
            "{{ helpdesk }}: your sign-in link",
            "Hello,\n\nthis link signs you in to the customer portal of {{ helpdesk }}. It works once, within 15 minutes:\n\n{{ link }}\n\nIf you did not ask for a link, you can delete this mail.\n",
        ),
    }
}

/// The variables every template may use.
pub const VARIABLES: &[&str] = &[
    "number",
    "reference",
    "title",
    "helpdesk",
    "status",
    "requester_name",
    "requester_email",
    "description",
    "created",
    "link",
    "agent",
    "author",
    "text",
    "message",
    "reason",
    "sender",
    "subject",
    "intake_id",
    "portal_link",
    "ticket_portal_link",
];

/// The templates of one helpdesk, compiled.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Arc<minijinja::Environment<'static>>,
}

/// A mail's text, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

impl Templates {
    /// Compiles the built-in templates of `language` with the overrides `texts`
    /// (event name → `Subject: …` line, blank line, body) and renders each once with
    /// sample values, so a typo in a variable is found at load time. The issue's key
    /// is inside `[helpdesk.notifications]`.
    pub fn compile(language: &str, texts: &BTreeMap<String, String>) -> Result<Self, ConfigIssue> {
        if !matches!(language, "en" | "de") {
            return Err(ConfigIssue::new(
                "language",
                format!("`{language}` has no built-in templates; write `en` or `de`"),
            ));
        }
        for name in texts.keys() {
            if !Event::ALL.iter().any(|e| e.as_str() == name) {
                return Err(ConfigIssue::new(
                    format!("templates.{name}"),
                    "unknown event; templates exist for acknowledgement, new_ticket, follow_up, alert, reply, portal_link and ticket_modified",
                ));
            }
        }
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        for &event in Event::ALL {
            let (mut subject, mut body) = {
                let (s, b) = builtin(event, language);
                (s.to_string(), b.to_string())
            };
            if let Some(text) = texts.get(event.as_str()) {
                let text = text.replace("\r\n", "\n");
                match text.strip_prefix("Subject:") {
                    Some(rest) => {
                        let (s, b) = rest.split_once('\n').unwrap_or((rest, ""));
                        subject = s.trim().to_string();
                        body = b.strip_prefix('\n').unwrap_or(b).to_string();
                    }
                    None => body = text,
                }
            }
            let key = format!("templates.{}", event.as_str());
            env.add_template_owned(format!("{}.subject", event.as_str()), subject)
                .map_err(|e| ConfigIssue::new(key.clone(), format!("subject: {e}")))?;
            env.add_template_owned(format!("{}.body", event.as_str()), body)
                .map_err(|e| ConfigIssue::new(key.clone(), e.to_string()))?;
        }
        let templates = Self { env: Arc::new(env) };
        for &event in Event::ALL {
            templates.render(event, sample()).map_err(|e| {
                ConfigIssue::new(format!("templates.{}", event.as_str()), e.to_string())
            })?;
        }
        Ok(templates)
    }

    /// Renders the subject and body of `event`; `vars` should hold every name of [`VARIABLES`].
    pub fn render(
        &self,
        event: Event,
        vars: minijinja::Value,
    ) -> Result<Rendered, minijinja::Error> {
        let subject = self
            .env
            .get_template(&format!("{}.subject", event.as_str()))?
            .render(&vars)?;
        let body = self
            .env
            .get_template(&format!("{}.body", event.as_str()))?
            .render(&vars)?;
        Ok(Rendered {
            // A subject is one line whatever the template or the values in it did.
            subject: one_line(&subject),
            body,
        })
    }
}

/// Control characters (CR, LF, TAB…) become spaces, runs of spaces one.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn sample() -> minijinja::Value {
    let mut map = BTreeMap::new();
    for name in VARIABLES {
        map.insert(*name, minijinja::Value::from(format!("<{name}>")));
    }
    minijinja::Value::from(map)
}

/// The outgoing side of a helpdesk, checked.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub smtp: Option<SmtpSettings>,
    /// `[helpdesk.send]`: sending through Graph or Gmail instead (issue 20), its
    /// `mailbox` resolved to the configured mailbox's name. Set by the helpdesk's
    /// compile, which knows the mailboxes.
    pub send: Option<SendSettings>,
    pub notifications: NotificationSettings,
    pub templates: Templates,
    /// Set from the global `[outgoing]` table by whoever loads the configuration.
    pub delivery: DeliverySettings,
}

// ---- Sending through Graph or Gmail (issue 20) ----

/// `[helpdesk.send]`: the sibling of `[helpdesk.smtp]` for tenants without SMTP AUTH:
/// mail goes out through the API of one of the helpdesk's Graph or Gmail mailboxes,
/// as the MIME postdesk composed (so its Message-ID, In-Reply-To and References stay).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSettings {
    pub kind: SendKind,
    /// The `[[helpdesk.mailbox]]` (its `name`, or `graph:USER` / `gmail:USER`) whose
    /// sign-in and account send; default the helpdesk's only mailbox of that kind.
    pub mailbox: Option<String>,
    /// Sender address; default the helpdesk's first address.
    pub from: Option<String>,
    /// Sender display name; default the helpdesk's name.
    pub from_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendKind {
    /// Microsoft Graph `sendMail` with the MIME content.
    Graph,
    /// Gmail `users.messages.send` with the raw message.
    Gmail,
}

impl Outgoing {
    /// Whether this helpdesk sends mail at all (over SMTP or an API).
    pub fn sends_mail(&self) -> bool {
        self.smtp.is_some() || self.send.is_some()
    }

    /// The configured sender address and name, if any (else the helpdesk's own).
    pub fn configured_from(&self) -> (Option<&str>, Option<&str>) {
        match (&self.smtp, &self.send) {
            (Some(s), _) => (s.from.as_deref(), s.from_name.as_deref()),
            (None, Some(s)) => (s.from.as_deref(), s.from_name.as_deref()),
            (None, None) => (None, None),
        }
    }
}

impl Outgoing {
    /// Checks the settings; the issue's key is inside `[[helpdesk]]`.
    pub fn compile(
        smtp: Option<SmtpSettings>,
        notifications: NotificationSettings,
    ) -> Result<Self, ConfigIssue> {
        if let Some(smtp) = &smtp {
            smtp.check().map_err(|issue| issue.within("smtp"))?;
        }
        let n = &notifications;
        for (i, a) in n.alert_contacts.iter().enumerate() {
            if crate::address::normalize(a).is_none() {
                return Err(ConfigIssue::new(
                    format!("notifications.alert_contacts[{i}]"),
                    format!("`{a}` is not an email address"),
                ));
            }
        }
        for (key, target) in [("new_ticket", &n.new_ticket), ("follow_up", &n.follow_up)] {
            if let Target::Team(team) = target
                && !n.teams.contains_key(team)
            {
                return Err(ConfigIssue::new(
                    format!("notifications.{key}"),
                    format!("no team `{team}` in notifications.teams"),
                ));
            }
        }
        for (team, members) in &n.teams {
            if let Some(bad) = members
                .iter()
                .find(|m| crate::address::normalize(m).is_none())
            {
                return Err(ConfigIssue::new(
                    format!("notifications.teams.{team}"),
                    format!("`{bad}` is not an email address"),
                ));
            }
        }
        if let Some(link) = &n.ticket_link
            && !link.contains("{number}")
        {
            return Err(ConfigIssue::new(
                "notifications.ticket_link",
                "must contain `{number}`",
            ));
        }
        let templates = Templates::compile(&n.language, &n.template_texts)
            .map_err(|issue| issue.within("notifications"))?;
        Ok(Self {
            smtp,
            send: None,
            notifications,
            templates,
            delivery: DeliverySettings::default(),
        })
    }

    /// The link to ticket `number`, if configured.
    pub fn link(&self, number: TicketNumber) -> Option<String> {
        self.notifications
            .ticket_link
            .as_ref()
            .map(|l| l.replace("{number}", &number.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> minijinja::Value {
        let mut v = BTreeMap::new();
        for name in VARIABLES {
            v.insert(*name, minijinja::Value::from(""));
        }
        v.insert("reference", "[HD#7]".into());
        v.insert("title", "Printer\r\nBcc: evil@example.com".into());
        v.insert("requester_name", "Jane".into());
        v.insert("helpdesk", "Support".into());
        minijinja::Value::from(v)
    }

    #[test]
    fn builtin_acknowledgement() {
        let t = Templates::compile("en", &BTreeMap::new()).unwrap();
        let r = t.render(Event::Acknowledgement, vars()).unwrap();
        assert_eq!(
            r.subject,
            "[HD#7] Printer Bcc: evil@example.com — registered"
        );
        assert!(r.body.starts_with("Hello Jane,"), "{}", r.body);
        let de = Templates::compile("de", &BTreeMap::new()).unwrap();
        assert!(
            de.render(Event::Acknowledgement, vars())
                .unwrap()
                .subject
                .ends_with("registriert")
        );
    }

    #[test]
    fn overrides_are_checked() {
        let mut texts = BTreeMap::new();
        texts.insert(
            "acknowledgement".to_string(),
            "Subject: Got it: {{ title }}\n\nThanks {{ requester_name }}!\n".to_string(),
        );
        let t = Templates::compile("en", &texts).unwrap();
        let r = t.render(Event::Acknowledgement, vars()).unwrap();
        assert!(r.subject.starts_with("Got it: Printer"));
        assert_eq!(r.body, "Thanks Jane!\n");

        texts.insert("acknowledgement".into(), "{{ ticket_numbr }}".into());
        let e = Templates::compile("en", &texts).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("templates.acknowledgement"));
        texts.insert("acknowledgement".into(), "{% if %}".into());
        assert!(Templates::compile("en", &texts).is_err());
        texts.clear();
        texts.insert("welcome".into(), "x".into());
        assert_eq!(
            Templates::compile("en", &texts).unwrap_err().key.as_deref(),
            Some("templates.welcome")
        );
        assert_eq!(
            Templates::compile("fr", &BTreeMap::new())
                .unwrap_err()
                .key
                .as_deref(),
            Some("language")
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("none").unwrap(), Target::None);
        assert_eq!(
            Target::parse("team:first-level").unwrap(),
            Target::Team("first-level".into())
        );
        assert_eq!(
            Target::parse("ops@example.com").unwrap(),
            Target::Address("ops@example.com".into())
        );
        assert!(Target::parse("everybody").is_err());
    }

    #[test]
    fn smtp_settings_check_and_hide_the_password() {
        let s: SmtpSettings = serde_json::from_str(
            r#"{"host": "smtp.example.com", "user": "u", "password": "hunter2"}"#,
        )
        .unwrap();
        assert_eq!(s.port(), 587);
        assert!(s.check().is_ok());
        assert!(!format!("{s:?}").contains("hunter2"));
        let s: SmtpSettings =
            serde_json::from_str(r#"{"host": "smtp.example.com", "user": "u"}"#).unwrap();
        assert_eq!(s.check().unwrap_err().key.as_deref(), Some("password"));
        let s: SmtpSettings = serde_json::from_str(r#"{"host": "h", "security": "tls"}"#).unwrap();
        assert_eq!(s.port(), 465);
        assert!(s.check().is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let d = DeliverySettings::default();
        assert_eq!(d.backoff(1), 60);
        assert_eq!(d.backoff(2), 120);
        assert_eq!(d.backoff(30), 3600);
    }
}
