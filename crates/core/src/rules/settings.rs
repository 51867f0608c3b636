//! Mail rules as written in the `[[helpdesk.rule]]` tables of the config file.
//!
//! Fields and operators are read as text and checked by [`super::RuleSet::compile`],
//! so a mistake is reported with the rule's name and a list of what is allowed.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Shown by the simulator and recorded on the tickets the rule changes.
    pub name: String,
    /// Whether all conditions must hold, or any one of them.
    #[serde(rename = "match", default)]
    pub match_mode: MatchMode,
    /// `true` (the default): when this rule applies, later rules are not looked at.
    #[serde(default = "default_stop")]
    pub stop: bool,
    /// No conditions: the rule matches every mail.
    #[serde(default)]
    pub conditions: Vec<ConditionSettings>,
    #[serde(default)]
    pub actions: Vec<ActionSettings>,
}

fn default_stop() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchMode {
    #[default]
    All,
    Any,
}

impl MatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Any => "any",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSettings {
    /// `from`, `subject`, `header:X-Priority`…
    pub field: String,
    /// `contains`, `equals`, `regex`…
    pub op: String,
    #[serde(default)]
    pub value: Option<ScalarValue>,
    /// Comparisons ignore case unless this is `true`.
    #[serde(default)]
    pub case_sensitive: bool,
}

/// A condition's value: text, or a boolean or number written without quotes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ScalarValue {
    Text(String),
    Bool(bool),
    Integer(i64),
}

impl ScalarValue {
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Bool(b) => b.to_string(),
            Self::Integer(i) => i.to_string(),
        }
    }
}

impl From<&str> for ScalarValue {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

/// One action. Which keys are allowed depends on `action`; the compiler refuses the others.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSettings {
    /// `create-ticket`, `update-ticket`, `set`, `ignore` or `reject`.
    pub action: String,
    // `set`:
    /// Name of the helpdesk to hand the mail to.
    pub helpdesk: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub environment: Option<String>,
    /// Agent name or email; created when missing.
    pub assignee: Option<String>,
    /// Agent name or email; created when missing.
    pub manager: Option<String>,
    pub tags: Option<Vec<String>>,
    // `ignore`:
    /// IMAP folder the mail is moved to.
    pub folder: Option<String>,
    // `ignore` and `reject`:
    /// Recorded in the ledger (and the failed queue for `reject`).
    pub reason: Option<String>,
}

impl ActionSettings {
    /// Convenience for tests and benchmarks: an action with no keys but its name.
    pub fn named(action: &str) -> Self {
        Self {
            action: action.into(),
            ..Self::default()
        }
    }
}
