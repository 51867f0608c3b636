//! Mail rules: per helpdesk, an ordered list of conditions and actions that decide
//! what happens to a mail before threading does (as CRM mail scanners do).
//!
//! - A rule *matches* when all (`match = "all"`, the default) or any (`"any"`) of its
//!   conditions hold; a rule without conditions matches every mail.
//! - Rules are looked at in order. The first matching rule with `stop = true` (the
//!   default) is the last one looked at; `stop = false` lets later rules add to it.
//! - Earlier rules win: once a rule decided the disposition (create, update, ignore,
//!   reject) or a field, a later rule does not change it. Tags add up.
//! - `update-ticket` applies only when threading finds the ticket the mail belongs to
//!   (then threading's decision stands, `reply_to_closed` included); otherwise the rule
//!   is passed over as if it had not matched, and later rules are looked at. Whether the ticket exists is known only to the store, so rules are
//!   evaluated here ([`RuleSet::evaluate`], pure and fast) and resolved there
//!   ([`Matched::resolve`], [`decide`]).
//! - Mail from our own addresses (a loop) is always ignored; rules never run on it.
//!
//! Everything is checked and compiled (regexes included) once, at config load.

use crate::id::TicketNumber;

mod condition;
mod outcome;
pub mod settings;

use std::sync::Arc;

use postdesk_mail::{Classification, ParsedMail};

pub use condition::{BODY_MATCH_LIMIT, Condition, FIELD_NAMES, Field, MailView, Op};
pub use outcome::{Matched, RuleDecision, Ruled, decide};
pub use settings::{
    ActionSettings, ConditionSettings, MatchMode, RuleSettings, ScalarValue, WrittenFields,
};

use crate::config_issue::ConfigIssue;
use crate::reference::ReferenceFormat;
use crate::ticket::{self, TicketFields};

/// The rules of one helpdesk, compiled.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    reference: ReferenceFormat,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub match_mode: MatchMode,
    pub stop: bool,
    pub conditions: Vec<Condition>,
    pub actions: RuleActions,
}

/// What a rule does when it applies: at most one disposition, and fields to set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleActions {
    pub disposition: Option<Disposition>,
    pub set: TicketFields,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A new ticket, even when threading would add the mail to one.
    CreateTicket,
    /// Add the mail to the ticket threading finds (a closed one follows
    /// `reply_to_closed`); passed over when there is none.
    UpdateTicket,
    /// No ticket; the mail is kept in the ledger as ignored.
    Ignore {
        reason: Option<String>,
        /// IMAP folder the mail is moved to.
        folder: Option<String>,
    },
    /// The failed queue, with the reason.
    Reject { reason: Option<String> },
}

impl Disposition {
    pub fn action_name(&self) -> &'static str {
        match self {
            Self::CreateTicket => "create-ticket",
            Self::UpdateTicket => "update-ticket",
            Self::Ignore { .. } => "ignore",
            Self::Reject { .. } => "reject",
        }
    }
}

/// One rule looked at by the simulator: every condition, whether it held.
#[derive(Debug, Clone)]
pub struct RuleTrace {
    pub rule: Arc<Rule>,
    pub matched: bool,
    pub conditions: Vec<ConditionTrace>,
}

#[derive(Debug, Clone)]
pub struct ConditionTrace {
    /// `subject contains "invoice"`.
    pub condition: String,
    pub holds: bool,
    /// The texts the field read as (a few, for display).
    pub texts: Vec<String>,
}

impl RuleSet {
    /// Checks and compiles `settings`; the first problem is returned, its key inside
    /// `[[helpdesk]]` (`rule[1].conditions[0].op`) and its message naming the rule.
    pub fn compile(
        settings: &[RuleSettings],
        reference: &ReferenceFormat,
    ) -> Result<Self, ConfigIssue> {
        let mut rules: Vec<Arc<Rule>> = Vec::with_capacity(settings.len());
        for (index, rule) in settings.iter().enumerate() {
            let name = rule.name.trim();
            // An issue inside this rule, as seen from the helpdesk: placed at the rule,
            // and saying which rule it is, since the position alone is hard to find.
            let in_rule = |issue: ConfigIssue| {
                let mut issue = issue.within(&format!("rule[{index}]"));
                if !name.is_empty() {
                    issue.message = format!("in rule {name:?}: {}", issue.message);
                }
                issue
            };
            if name.is_empty() {
                return Err(in_rule(ConfigIssue::new("name", "a rule needs a name")));
            }
            if rules
                .iter()
                .any(|r| r.name.trim().eq_ignore_ascii_case(name))
            {
                return Err(in_rule(ConfigIssue::new(
                    "name",
                    "another rule of this helpdesk has this name; names must be unique",
                )));
            }
            let mut conditions = Vec::with_capacity(rule.conditions.len());
            for (i, c) in rule.conditions.iter().enumerate() {
                let condition = Condition::compile(
                    &c.field,
                    &c.op,
                    c.value.as_ref().map(ScalarValue::to_text),
                    c.case_sensitive,
                )
                .map_err(|issue| in_rule(issue.within(&format!("conditions[{i}]"))))?;
                conditions.push(condition);
            }
            let actions = compile_actions(&rule.actions).map_err(in_rule)?;
            rules.push(Arc::new(Rule {
                name: name.to_string(),
                match_mode: rule.match_mode,
                stop: rule.stop,
                conditions,
                actions,
            }));
        }
        Ok(Self {
            rules,
            reference: reference.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The rules that match `mail`, in order, as far as they can matter: up to the
    /// first matching rule with `stop` that surely applies (an `update-ticket` rule
    /// may be passed over, so the rules after it are kept too).
    pub fn evaluate(&self, mail: &ParsedMail, class: Classification) -> Matched {
        let view = MailView::new(mail, class);
        let mut matched = Vec::new();
        for rule in &self.rules {
            if rule.matches(&view, &self.reference) {
                matched.push(Arc::clone(rule));
                if rule.stop && rule.actions.disposition != Some(Disposition::UpdateTicket) {
                    break;
                }
            }
        }
        Matched::new(matched)
    }

    /// Every rule and every condition, evaluated without shortcuts, for the simulator.
    pub fn explain(&self, mail: &ParsedMail, class: Classification) -> Vec<RuleTrace> {
        let view = MailView::new(mail, class);
        self.rules
            .iter()
            .map(|rule| {
                let conditions: Vec<ConditionTrace> = rule
                    .conditions
                    .iter()
                    .map(|c| ConditionTrace {
                        condition: c.describe(),
                        holds: c.matches(&view, &self.reference),
                        texts: view.texts(&c.field, 3),
                    })
                    .collect();
                let matched = match rule.match_mode {
                    _ if conditions.is_empty() => true,
                    MatchMode::All => conditions.iter().all(|c| c.holds),
                    MatchMode::Any => conditions.iter().any(|c| c.holds),
                };
                RuleTrace {
                    rule: Arc::clone(rule),
                    matched,
                    conditions,
                }
            })
            .collect()
    }

    /// Ticket numbers referenced in `text` in this helpdesk's formats.
    pub fn references_in(&self, text: &str) -> Vec<TicketNumber> {
        self.reference.find_all(text)
    }
}

impl Rule {
    fn matches(&self, mail: &MailView<'_>, reference: &ReferenceFormat) -> bool {
        if self.conditions.is_empty() {
            return true;
        }
        match self.match_mode {
            MatchMode::All => self.conditions.iter().all(|c| c.matches(mail, reference)),
            MatchMode::Any => self.conditions.iter().any(|c| c.matches(mail, reference)),
        }
    }

    /// `update-ticket`, `set priority high, tags vip`… for display.
    pub fn describe_actions(&self) -> Vec<String> {
        let mut out = Vec::new();
        let set = self.actions.set.listed();
        if !set.is_empty() {
            let fields: Vec<String> = set.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.push(format!("set {}", fields.join(", ")));
        }
        match &self.actions.disposition {
            Some(Disposition::Ignore { reason, folder }) => {
                let mut text = "ignore".to_string();
                if let Some(reason) = reason {
                    text.push_str(&format!(" ({reason})"));
                }
                if let Some(folder) = folder {
                    text.push_str(&format!(", IMAP folder {folder:?}"));
                }
                out.push(text);
            }
            Some(Disposition::Reject {
                reason: Some(reason),
            }) => out.push(format!("reject ({reason})")),
            Some(d) => out.push(d.action_name().to_string()),
            None => {}
        }
        out
    }
}

const ACTION_NAMES: &str = "create-ticket, update-ticket, set, ignore, reject";

/// Checks the actions of one rule; the issue's key is inside the rule.
fn compile_actions(actions: &[ActionSettings]) -> Result<RuleActions, ConfigIssue> {
    if actions.is_empty() {
        return Err(ConfigIssue::new(
            "actions",
            format!("a rule needs at least one action ({ACTION_NAMES})"),
        ));
    }
    let mut compiled = RuleActions::default();
    for (i, a) in actions.iter().enumerate() {
        let key = |k: &str| format!("actions[{i}].{k}");
        let name = a.action.trim().to_ascii_lowercase();
        let given = given_keys(a);
        let allowed: &[&str] = match name.as_str() {
            "set" => &ticket::KEYS,
            "ignore" => &["folder", "reason"],
            "reject" => &["reason"],
            "create-ticket" | "update-ticket" => &[],
            _ => {
                return Err(ConfigIssue::new(
                    key("action"),
                    format!("unknown action `{}`; use one of {ACTION_NAMES}", a.action),
                ));
            }
        };
        if let Some((k, _)) = given.iter().find(|(k, _)| !allowed.contains(k)) {
            let owner = if *k == "folder" {
                "an `ignore` action"
            } else if *k == "reason" {
                "an `ignore` or `reject` action"
            } else {
                "a `set` action"
            };
            return Err(ConfigIssue::new(
                key(k),
                format!("`{k}` belongs to {owner}, not to `{name}`"),
            ));
        }
        for (k, v) in &given {
            if v.is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigIssue::new(
                    key(k),
                    format!("`{k}` must not be blank; remove it instead"),
                ));
            }
        }
        if let Some(tags) = &a.set.tags {
            if tags.is_empty() {
                return Err(ConfigIssue::new(
                    key("tags"),
                    "`tags` is empty; remove it or add a tag",
                ));
            }
            if tags.iter().any(|t| t.trim().is_empty()) {
                return Err(ConfigIssue::new(key("tags"), "a tag must not be blank"));
            }
        }
        let disposition = match name.as_str() {
            "set" => {
                if given.is_empty() {
                    return Err(ConfigIssue::new(
                        key("action"),
                        "`set` needs at least one field: helpdesk, status, priority, type, category, subcategory, environment, assignee, manager or tags",
                    ));
                }
                let set = trimmed_fields(&a.set);
                // Within one rule, a later `set` of the same field would be silently lost.
                if let Some((field, _)) = set.listed().iter().find(|(f, _)| {
                    *f != "tags" && compiled.set.listed().iter().any(|(g, _)| g == f)
                }) {
                    return Err(ConfigIssue::new(
                        key(field),
                        format!("`{field}` is already set by an earlier action of this rule"),
                    ));
                }
                compiled.set.fill_from(&set);
                None
            }
            "create-ticket" => Some(Disposition::CreateTicket),
            "update-ticket" => Some(Disposition::UpdateTicket),
            "ignore" => Some(Disposition::Ignore {
                reason: trimmed(&a.reason),
                folder: trimmed(&a.folder),
            }),
            _ => Some(Disposition::Reject {
                reason: trimmed(&a.reason),
            }),
        };
        if let Some(d) = disposition {
            if let Some(earlier) = &compiled.disposition {
                return Err(ConfigIssue::new(
                    key("action"),
                    format!(
                        "a rule does one of create-ticket, update-ticket, ignore, reject; this one already does `{}`",
                        earlier.action_name()
                    ),
                ));
            }
            compiled.disposition = Some(d);
        }
    }
    if compiled.disposition == Some(Disposition::UpdateTicket) && compiled.set.helpdesk.is_some() {
        return Err(ConfigIssue::new(
            "actions",
            "`update-ticket` adds to a ticket of this helpdesk, so the rule cannot also `set helpdesk`",
        ));
    }
    if matches!(
        compiled.disposition,
        Some(Disposition::Ignore { .. } | Disposition::Reject { .. })
    ) && compiled.set.listed().iter().any(|(k, _)| *k != "helpdesk")
    {
        return Err(ConfigIssue::new(
            "actions",
            "an ignored or rejected mail makes no ticket, so there are no ticket fields to `set`",
        ));
    }
    Ok(compiled)
}

/// The keys an action gives besides `action`, with their text; `tags` has none.
fn given_keys(a: &ActionSettings) -> Vec<(&'static str, Option<&str>)> {
    let single = a
        .set
        .texts()
        .into_iter()
        .chain([("folder", &a.folder), ("reason", &a.reason)]);
    let mut out: Vec<(&'static str, Option<&str>)> = single
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, Some(v))))
        .collect();
    if a.set.tags.is_some() {
        out.push(("tags", None));
    }
    out
}

fn trimmed(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.trim().to_string())
}

/// The fields of a `set` action as written, each trimmed, the tags a list.
fn trimmed_fields(written: &WrittenFields) -> TicketFields {
    let mut fields = TicketFields {
        tags: written
            .tags
            .iter()
            .flatten()
            .map(|t| t.trim().to_string())
            .collect(),
        ..TicketFields::default()
    };
    for ((_, field), (_, value)) in fields.texts_mut().into_iter().zip(written.texts()) {
        *field = trimmed(value);
    }
    fields
}
