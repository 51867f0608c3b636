//! What one helpdesk (a team or division) is configured to do with its mail.
//! Deserialised from the `[[helpdesk]]` tables of the config file, and compiled into a
//! [`Helpdesk`] that composes the policies: each policy module owns its settings type
//! (threading's, the rules', the attachments', the outgoing side's, the mailboxes'),
//! and this module only puts them together.

use crate::id::TicketNumber;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config_issue::ConfigIssue;
use crate::mailbox::MailboxSettings;
use crate::outgoing::{NotificationSettings, Outgoing, SmtpAuth, SmtpSettings};
use crate::reference::{ReferenceFormat, ReferenceFormatError};
use crate::rules::{RuleSet, RuleSettings};
use crate::thread::{
    ThreadSettings, default_closed_statuses, default_followup_senders, default_reply_status,
};

// The policies' own types, where other crates have always found them.
pub use crate::attachments::AttachmentPolicy;
pub use crate::thread::{FollowupSender, ReplyToClosed, UnknownSender};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskSettings {
    pub name: String,
    /// Addresses that receive requests. Mail from them is never a customer's.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// How the ticket reference is written in subjects; `{number}` is the ticket number.
    #[serde(default = "default_reference_format")]
    pub reference_format: String,
    /// Other reference forms recognised in incoming subjects.
    #[serde(default)]
    pub also_recognise: Vec<String>,
    #[serde(default = "default_first_ticket_number")]
    pub first_ticket_number: TicketNumber,
    /// Contact used for senders that are not known (per `unknown_sender`).
    #[serde(default = "default_contact")]
    pub default_contact: String,
    /// Agent recorded as creator of imported tickets and entries.
    #[serde(default = "default_agent")]
    pub default_agent: String,
    #[serde(default = "default_new_ticket_status")]
    pub new_ticket_status: String,
    /// Status a customer's reply moves a ticket to.
    #[serde(default = "default_reply_status")]
    pub reply_status: String,
    /// Statuses that count as closed.
    #[serde(default = "default_closed_statuses")]
    pub closed_statuses: Vec<String>,
    /// Statuses agents may give this helpdesk's tickets, besides those named above and
    /// in its rules; none: `open` and `pending`.
    #[serde(default)]
    pub statuses: Vec<String>,
    /// Priorities agents may give; none: `low`, `normal`, `high`, `urgent`. The default
    /// priority and the rules' are always allowed.
    #[serde(default)]
    pub priorities: Vec<String>,
    /// Ticket types agents may give; none (and none in the defaults or rules): any
    /// short value.
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub reply_to_closed: ReplyToClosed,
    #[serde(default)]
    pub unknown_sender: UnknownSender,
    /// Sender domain → organization name, for new contacts.
    #[serde(default)]
    pub organizations: BTreeMap<String, String>,
    /// On follow-ups only the text above the line containing this marker is imported.
    #[serde(default)]
    pub reply_marker: Option<String>,
    #[serde(default)]
    pub defaults: TicketDefaults,
    #[serde(default)]
    pub attachments: AttachmentPolicy,
    /// Who may add to a ticket by quoting its number in the subject.
    #[serde(default = "default_followup_senders")]
    pub followup_senders: Vec<FollowupSender>,
    /// The authserv-id of the receiving MTA (`mx.example.com`) whose
    /// `Authentication-Results` are trusted: a follow-up whose From it reports as
    /// failing DMARC is not added to the ticket (a new ticket records why). Off by default.
    #[serde(default)]
    pub trust_authentication_results: Option<String>,
    /// Mail rules (`[[helpdesk.rule]]`), in the order they are looked at.
    #[serde(rename = "rule", default)]
    pub rules: Vec<RuleSettings>,
    /// IMAP mailboxes this helpdesk reads (`[[helpdesk.mailbox]]`).
    #[serde(rename = "mailbox", default)]
    pub mailboxes: Vec<MailboxSettings>,
    /// The SMTP server this helpdesk sends through (`[helpdesk.smtp]`); none: it sends nothing.
    pub smtp: Option<SmtpSettings>,
    /// Or the API of a Graph or Gmail mailbox (`[helpdesk.send]`, issue 20).
    pub send: Option<crate::outgoing::SendSettings>,
    /// Acknowledgements, notifications, alerts and their templates (`[helpdesk.notifications]`).
    #[serde(default)]
    pub notifications: NotificationSettings,
    // --- Deadlines (issue 18) ---
    /// Deadlines in business time and their escalation (`[helpdesk.sla]`); none: no deadlines.
    pub sla: Option<crate::sla::SlaSettings>,
    /// Interventions linked to tickets (`[helpdesk.interventions]`).
    pub interventions: Option<crate::intervention::InterventionSettings>,
    // --- end of deadlines ---
    // --- The customer portal (issue 17) ---
    /// Contacts may sign in at `/portal` and see, open and answer this helpdesk's tickets.
    #[serde(default)]
    pub portal: bool,
    /// Where customers reach the portal (`https://desk.example.com/portal`): sign-in
    /// links and `{{ portal_link }}` start with it. Needed with `portal = true`; never
    /// taken from a request's Host header, which anyone can write.
    #[serde(default)]
    pub portal_url: Option<String>,
    /// Status a contact's answer in the portal moves a ticket to; none: `reply_status`.
    #[serde(default)]
    pub portal_reply_status: Option<String>,
    /// Contacts may close their own tickets in the portal (to the first `closed_statuses`).
    #[serde(default)]
    pub customer_may_close: bool,
    /// Files agents add are public (the customer sees them) rather than internal.
    #[serde(default)]
    pub agent_uploads_visible_to_customer: bool,
    /// Status → what the customer sees of it (`[helpdesk.customer_statuses.<status>]`);
    /// a status not listed is shown as it is named.
    #[serde(default)]
    pub customer_statuses: BTreeMap<String, CustomerStatus>,
    /// Agents' notifications inside the app (`[helpdesk.in_app]`).
    #[serde(default)]
    pub in_app: InAppSettings,
}

/// Who is notified inside the app of an event on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InAppTarget {
    None,
    /// Every agent who sees the helpdesk (its members and the admins).
    AllAgents,
    /// The agents whose addresses `notifications.teams.<name>` lists.
    Team(String),
    /// The assignee, the manager, and the agents who watch the ticket or wrote in it.
    Concerned,
    /// One address (for mail; inside the app, the agent with that address).
    Address(String),
}

impl<'de> Deserialize<'de> for InAppTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.trim();
        Ok(match s {
            "none" => Self::None,
            "all-agents" => Self::AllAgents,
            "concerned" => Self::Concerned,
            _ => match s.strip_prefix("team:") {
                Some(team) => Self::Team(team.trim().to_string()),
                None if crate::address::normalize(s).is_some() => Self::Address(s.to_string()),
                None => {
                    return Err(serde::de::Error::custom(format!(
                        "`{s}` is not a target; write none, all-agents, team:<name>, concerned or an email address"
                    )));
                }
            },
        })
    }
}

/// `[helpdesk.in_app]`: who hears of a new ticket and of a change inside the app.
/// The agent who made a change is never notified of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InAppSettings {
    #[serde(default = "all_agents")]
    pub created: InAppTarget,
    #[serde(default = "concerned")]
    pub modified: InAppTarget,
    /// Read notifications older than this are deleted.
    #[serde(default = "default_keep_days")]
    pub keep_days: u32,
    /// Who is mailed (through the outbox) of a change an agent or a customer in the
    /// portal made: the targets above or an address. A customer's mail follow-up is
    /// `notifications.follow_up`'s.
    #[serde(default = "no_target")]
    pub mail_modified: InAppTarget,
}

impl Default for InAppSettings {
    fn default() -> Self {
        Self {
            created: all_agents(),
            modified: concerned(),
            keep_days: default_keep_days(),
            mail_modified: no_target(),
        }
    }
}

fn all_agents() -> InAppTarget {
    InAppTarget::AllAgents
}
fn no_target() -> InAppTarget {
    InAppTarget::None
}
fn concerned() -> InAppTarget {
    InAppTarget::Concerned
}
fn default_keep_days() -> u32 {
    30
}

/// What a customer sees of one status (`[helpdesk.customer_statuses.<status>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerStatus {
    /// Shown to the customer as it is named; when false, as `customer_label`.
    #[serde(default = "default_true")]
    pub visible: bool,
    /// What the customer sees instead of a hidden status (default "in progress").
    pub customer_label: Option<String>,
}

fn default_true() -> bool {
    true
}

/// What a hidden status without a `customer_label` shows as.
pub const DEFAULT_CUSTOMER_LABEL: &str = "in progress";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketDefaults {
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    #[serde(default = "default_priority")]
    pub priority: Option<String>,
    pub environment: Option<String>,
    /// Agent (name or email) who manages new tickets.
    pub manager: Option<String>,
    /// Agent (name or email) new tickets are assigned to.
    pub assignee: Option<String>,
}

impl Default for TicketDefaults {
    fn default() -> Self {
        Self {
            ticket_type: None,
            priority: default_priority(),
            environment: None,
            manager: None,
            assignee: None,
        }
    }
}

fn default_reference_format() -> String {
    "[HD#{number}]".into()
}
fn default_first_ticket_number() -> TicketNumber {
    TicketNumber::new(1)
}
fn default_contact() -> String {
    "unknown-sender@postdesk.invalid".into()
}
fn default_agent() -> String {
    "postdesk".into()
}
fn default_new_ticket_status() -> String {
    "email-imported".into()
}
fn default_priority() -> Option<String> {
    Some("normal".into())
}

/// Settings checked and compiled, ready for the pipeline.
#[derive(Debug, Clone)]
pub struct Helpdesk {
    pub settings: HelpdeskSettings,
    pub reference: ReferenceFormat,
    /// Lower-cased support addresses.
    pub own_addresses: Vec<String>,
    /// What threading follows, from the keys of `settings`.
    pub threading: ThreadSettings,
    /// The mail rules, compiled.
    pub rules: RuleSet,
    /// SMTP, notifications and templates, checked.
    pub outgoing: Outgoing,
    /// Deadlines: calendar and policies, checked (issue 18).
    pub sla: Option<crate::sla::Sla>,
    /// Interventions' template and ticket closing, checked (issue 18).
    pub interventions: crate::intervention::Interventions,
}

impl HelpdeskSettings {
    /// Checks what serde cannot and compiles the reference formats, the rules and the
    /// outgoing side. The issue's key is inside the `[[helpdesk]]` table, e.g.
    /// `reference_format` or `rule[1].conditions[0].op`.
    pub fn compile(self) -> Result<Helpdesk, ConfigIssue> {
        if self.name.trim().is_empty() {
            return Err(ConfigIssue::new("name", "must not be empty"));
        }
        for address in &self.addresses {
            if crate::address::normalize(address).is_none() {
                return Err(ConfigIssue::new(
                    "addresses",
                    format!("`{address}` is not an email address"),
                ));
            }
        }
        if crate::address::normalize(&self.default_contact).is_none() {
            return Err(ConfigIssue::new(
                "default_contact",
                format!("`{}` is not an email address", self.default_contact),
            ));
        }
        if self.first_ticket_number.get() < 1 {
            return Err(ConfigIssue::new("first_ticket_number", "must be 1 or more"));
        }
        if let Some(marker) = &self.reply_marker
            && marker.trim().is_empty()
        {
            return Err(ConfigIssue::new(
                "reply_marker",
                "must not be blank; remove the key instead",
            ));
        }
        for t in &self.attachments.allowed_types {
            if !t.contains('/') {
                return Err(ConfigIssue::new(
                    "attachments.allowed_types",
                    format!("`{t}` is not a MIME type; write e.g. `image/*` or `application/pdf`"),
                ));
            }
        }
        for (i, mailbox) in self.mailboxes.iter().enumerate() {
            mailbox
                .check()
                .map_err(|issue| issue.within(&format!("mailbox[{i}]")))?;
        }
        if let Some(smtp) = &self.smtp
            && smtp.auth == SmtpAuth::Xoauth2
            && smtp.password.is_none()
            && smtp.password_env.is_none()
            && smtp.password_file.is_none()
            && !self.mailboxes.iter().any(|m| {
                m.oauth2.is_some()
                    && smtp
                        .user
                        .as_deref()
                        .is_none_or(|u| m.user.eq_ignore_ascii_case(u))
            })
        {
            return Err(ConfigIssue::new(
                "smtp.password",
                "auth = \"xoauth2\" needs an access token (password, password_env or password_file) or an IMAP mailbox of the same user with OAuth2",
            ));
        }
        let reference = ReferenceFormat::new(&self.reference_format, &self.also_recognise)
            .map_err(|e| {
                let key = match e {
                    ReferenceFormatError::NoPlaceholder(ref f)
                    | ReferenceFormatError::SeveralPlaceholders(ref f)
                    | ReferenceFormatError::BareNumber(ref f)
                        if *f != self.reference_format =>
                    {
                        "also_recognise"
                    }
                    _ => "reference_format",
                };
                ConfigIssue::new(key, e.to_string())
            })?;
        for (status, shown) in &self.customer_statuses {
            if let Some(label) = &shown.customer_label
                && (label.trim().is_empty() || label.chars().count() > 64)
            {
                return Err(ConfigIssue::new(
                    format!("customer_statuses.{status}.customer_label"),
                    "must be 1 to 64 characters",
                ));
            }
        }
        match &self.portal_url {
            None if self.portal => {
                return Err(ConfigIssue::new(
                    "portal_url",
                    "portal = true needs the address customers reach the portal at, e.g. \"https://desk.example.com/portal\"",
                ));
            }
            Some(url)
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                return Err(ConfigIssue::new(
                    "portal_url",
                    format!("`{url}` is not an http(s) address"),
                ));
            }
            _ => {}
        }
        if let Some(status) = &self.portal_reply_status
            && status.trim().is_empty()
        {
            return Err(ConfigIssue::new(
                "portal_reply_status",
                "must not be blank; remove the key to use reply_status",
            ));
        }
        for (key, target) in [
            ("in_app.created", &self.in_app.created),
            ("in_app.modified", &self.in_app.modified),
            ("in_app.mail_modified", &self.in_app.mail_modified),
        ] {
            if let InAppTarget::Team(team) = target
                && !self.notifications.teams.contains_key(team)
            {
                return Err(ConfigIssue::new(
                    key,
                    format!("no team `{team}` in notifications.teams"),
                ));
            }
        }
        let rules = RuleSet::compile(&self.rules, &reference)?;
        let mut outgoing = Outgoing::compile(self.smtp.clone(), self.notifications.clone())?;
        outgoing.send = self.resolve_send()?;
        let sla = match &self.sla {
            Some(sla) => Some(sla.compile().map_err(|issue| issue.within("sla"))?),
            None => None,
        };
        let interventions = self
            .interventions
            .clone()
            .unwrap_or_default()
            .compile()
            .map_err(|issue| issue.within("interventions"))?;
        let own_addresses = self
            .addresses
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        let threading = ThreadSettings {
            reply_status: self.reply_status.clone(),
            closed_statuses: self.closed_statuses.clone(),
            reply_to_closed: self.reply_to_closed,
            unknown_sender: self.unknown_sender,
            followup_senders: self.followup_senders.clone(),
        };
        Ok(Helpdesk {
            settings: self,
            reference,
            own_addresses,
            threading,
            rules,
            outgoing,
            sla,
            interventions,
        })
    }
}

impl HelpdeskSettings {
    /// `[helpdesk.send]` with its mailbox found: one of this helpdesk's mailboxes of
    /// the same kind (the only one when none is named). Not with `[helpdesk.smtp]`.
    fn resolve_send(&self) -> Result<Option<crate::outgoing::SendSettings>, ConfigIssue> {
        use crate::mailbox::MailboxKind;
        use crate::outgoing::SendKind;
        let Some(send) = &self.send else {
            return Ok(None);
        };
        if self.smtp.is_some() {
            return Err(ConfigIssue::new(
                "send",
                "give [helpdesk.smtp] or [helpdesk.send], not both",
            ));
        }
        if let Some(from) = &send.from
            && crate::address::normalize(from).is_none()
        {
            return Err(ConfigIssue::new(
                "send.from",
                format!("`{from}` is not an email address"),
            ));
        }
        let (kind, word) = match send.kind {
            SendKind::Graph => (MailboxKind::Graph, "graph"),
            SendKind::Gmail => (MailboxKind::Gmail, "gmail"),
        };
        let candidates: Vec<&MailboxSettings> =
            self.mailboxes.iter().filter(|m| m.kind == kind).collect();
        let found = match &send.mailbox {
            Some(name) => candidates
                .iter()
                .find(|m| m.display_name().eq_ignore_ascii_case(name))
                .copied(),
            None if candidates.len() == 1 => Some(candidates[0]),
            None => None,
        };
        let Some(mailbox) = found else {
            return Err(ConfigIssue::new(
                "send.mailbox",
                match (&send.mailbox, candidates.len()) {
                    (Some(name), _) => {
                        format!("no [[helpdesk.mailbox]] with kind = \"{word}\" is named `{name}`")
                    }
                    (None, 0) => format!(
                        "kind = \"{word}\" sends through a [[helpdesk.mailbox]] with kind = \"{word}\"; add one"
                    ),
                    (None, _) => format!(
                        "several kind = \"{word}\" mailboxes: name the one that sends (mailbox = \"…\")"
                    ),
                },
            ));
        };
        let mut resolved = send.clone();
        resolved.mailbox = Some(mailbox.display_name());
        Ok(Some(resolved))
    }
}

/// The values a helpdesk's tickets may take, from its config: the lists it gives
/// (`statuses`, `priorities`, `types`, or their defaults) and every value it sets
/// itself (new, reply and closed statuses, the defaults, the rules' `set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldChoices {
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    /// Empty: any value the desk accepts as a free value.
    pub types: Vec<String>,
}

impl FieldChoices {
    pub fn of(helpdesk: &Helpdesk) -> Self {
        let s = &helpdesk.settings;
        let or_default = |given: &[String], default: &[&str]| -> Vec<String> {
            if given.is_empty() {
                default.iter().map(|v| v.to_string()).collect()
            } else {
                given.to_vec()
            }
        };
        let mut statuses = vec![s.new_ticket_status.clone(), s.reply_status.clone()];
        // Issue 17: the status a customer's answer in the portal sets.
        statuses.extend(s.portal_reply_status.iter().cloned());
        statuses.extend(or_default(&s.statuses, &["open", "pending"]));
        statuses.extend(s.closed_statuses.iter().cloned());
        let mut priorities = or_default(&s.priorities, &["low", "normal", "high", "urgent"]);
        priorities.extend(s.defaults.priority.iter().cloned());
        let mut types = s.types.clone();
        types.extend(s.defaults.ticket_type.iter().cloned());
        for set in s.rules.iter().flat_map(|r| &r.actions).map(|a| &a.set) {
            statuses.extend(set.status.iter().cloned());
            priorities.extend(set.priority.iter().cloned());
            types.extend(set.ticket_type.iter().cloned());
        }
        let unique = |mut list: Vec<String>| {
            let mut seen = std::collections::HashSet::new();
            list.retain(|v| !v.trim().is_empty() && seen.insert(v.to_lowercase()));
            list
        };
        Self {
            statuses: unique(statuses),
            priorities: unique(priorities),
            types: unique(types),
        }
    }
}

impl Helpdesk {
    pub fn is_closed(&self, status: &str) -> bool {
        self.threading.is_closed(status)
    }

    /// The status as a customer sees it: its name, or the label that hides it.
    pub fn customer_status(&self, status: &str) -> String {
        match self
            .settings
            .customer_statuses
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(status))
        {
            Some((_, shown)) if !shown.visible => shown
                .customer_label
                .clone()
                .unwrap_or_else(|| DEFAULT_CUSTOMER_LABEL.to_string()),
            _ => status.to_string(),
        }
    }

    /// Where customers reach this helpdesk's portal (`portal_url` without a trailing
    /// slash), when its portal is on.
    pub fn portal_link(&self) -> Option<String> {
        let s = &self.settings;
        s.portal
            .then_some(s.portal_url.as_deref())
            .flatten()
            .map(|u| u.trim_end_matches('/').to_string())
    }

    /// The status a contact's answer in the portal sets.
    pub fn portal_reply_status(&self) -> &str {
        self.settings
            .portal_reply_status
            .as_deref()
            .unwrap_or(&self.settings.reply_status)
    }

    pub fn is_own_address(&self, email_key: &str) -> bool {
        self.own_addresses.iter().any(|a| a == email_key)
    }

    /// Organization configured for the domain of `email_key`, if any.
    pub fn organization_for(&self, email_key: &str) -> Option<&str> {
        let domain = email_key.rsplit_once('@')?.1;
        self.settings
            .organizations
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, org)| org.as_str())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::id::TicketNumber;

    pub fn helpdesk(extra_toml: &str) -> Helpdesk {
        let src =
            format!("name = \"Support\"\naddresses = [\"support@example.com\"]\n{extra_toml}");
        toml_like(&src).compile().unwrap()
    }

    /// Minimal `key = value` reader so the pure crate's tests need no TOML dependency.
    fn toml_like(src: &str) -> HelpdeskSettings {
        let json = src
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                format!("\"{}\": {}", k.trim(), v.trim())
            })
            .collect::<Vec<_>>()
            .join(",");
        serde_json::from_str(&format!("{{{json}}}")).unwrap()
    }

    #[test]
    fn defaults_are_those_documented() {
        let hd = helpdesk("");
        assert_eq!(hd.reference.render(TicketNumber::new(7)), "[HD#7]");
        assert_eq!(hd.settings.new_ticket_status, "email-imported");
        assert_eq!(hd.settings.unknown_sender, UnknownSender::CreateContact);
        assert_eq!(hd.settings.reply_to_closed, ReplyToClosed::Reopen);
        assert_eq!(hd.settings.attachments.allowed_types, vec!["image/*"]);
        assert_eq!(hd.settings.defaults.priority.as_deref(), Some("normal"));
        assert!(hd.is_closed("Closed"));
        assert!(hd.is_own_address("support@example.com"));
    }

    #[test]
    fn hidden_statuses_show_their_customer_label() {
        let mut hd = helpdesk("portal_reply_status = \"waiting\"");
        hd.settings.customer_statuses.insert(
            "vendor".into(),
            CustomerStatus {
                visible: false,
                customer_label: Some("being worked on".into()),
            },
        );
        hd.settings.customer_statuses.insert(
            "triage".into(),
            CustomerStatus {
                visible: false,
                customer_label: None,
            },
        );
        assert_eq!(hd.customer_status("Vendor"), "being worked on");
        assert_eq!(hd.customer_status("triage"), DEFAULT_CUSTOMER_LABEL);
        assert_eq!(hd.customer_status("open"), "open");
        assert_eq!(hd.portal_reply_status(), "waiting");
        assert_eq!(helpdesk("").portal_reply_status(), "customer-replied");
    }

    #[test]
    fn organization_by_domain() {
        let hd = helpdesk("organizations = {\"acme.example\": \"ACME\"}");
        assert_eq!(hd.organization_for("jane@ACME.example"), Some("ACME"));
        assert_eq!(hd.organization_for("jane@other.example"), None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = HelpdeskSettings {
            reference_format: "[HD]".into(),
            ..helpdesk("").settings
        };
        assert_eq!(
            bad.compile().unwrap_err().key.as_deref(),
            Some("reference_format")
        );
        let bad = HelpdeskSettings {
            also_recognise: vec!["x".into()],
            ..helpdesk("").settings
        };
        assert_eq!(
            bad.compile().unwrap_err().key.as_deref(),
            Some("also_recognise")
        );
        let bad = HelpdeskSettings {
            addresses: vec!["support".into()],
            ..helpdesk("").settings
        };
        assert_eq!(bad.compile().unwrap_err().key.as_deref(), Some("addresses"));
    }
}
