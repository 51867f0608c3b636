//! Mail rules as written in the `[[helpdesk.rule]]` tables of the config file.
//!
//! Fields and operators are read as text and checked by [`super::RuleSet::compile`],
//! so a mistake is reported with the rule's name and a list of what is allowed.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::ticket::{self, TicketFields};

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
///
/// Written as one flat table (`{ action = "set", priority = "high" }`), so it is read by
/// hand ([`Deserialize`] below) into the shared [`TicketFields`]: serde's `flatten`
/// would lose the list of allowed keys in messages and the lines TOML finds.
#[derive(Debug, Clone, Default)]
pub struct ActionSettings {
    /// `create-ticket`, `update-ticket`, `set`, `ignore` or `reject`.
    pub action: String,
    /// `set`: the ticket fields (agents named in `assignee` and `manager` are created
    /// when missing) and the helpdesk to hand the mail to, as written.
    pub set: WrittenFields,
    /// `ignore`: IMAP folder the mail is moved to.
    pub folder: Option<String>,
    /// `ignore` and `reject`: recorded in the ledger (and the failed queue for `reject`).
    pub reason: Option<String>,
}

/// Ticket fields as a `set` action writes them: tags may be given empty.
pub type WrittenFields = TicketFields<Option<Vec<String>>>;

impl ActionSettings {
    /// Convenience for tests and benchmarks: an action with no keys but its name.
    pub fn named(action: &str) -> Self {
        Self {
            action: action.into(),
            ..Self::default()
        }
    }
}

/// The keys of an action table, in the order messages list them: `action`, the ticket
/// fields, `folder`, `reason`.
const ACTION_KEYS: [&str; 13] = {
    let mut keys = [""; 13];
    keys[0] = "action";
    let mut i = 0;
    while i < ticket::KEYS.len() {
        keys[i + 1] = ticket::KEYS[i];
        i += 1;
    }
    keys[11] = "folder";
    keys[12] = "reason";
    keys
};

// What follows reads an action as serde's derived `Deserialize` did, message for
// message: an unknown key is refused while the key is read (so TOML points at the
// key), a key given twice or a missing `action` is refused as serde words it.
impl<'de> Deserialize<'de> for ActionSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("ActionSettings", &ACTION_KEYS, ActionVisitor)
    }
}

/// A key of an action table, by its position in [`ACTION_KEYS`].
struct ActionKey(usize);

impl<'de> Deserialize<'de> for ActionKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ActionKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<ActionKey, E> {
                ACTION_KEYS
                    .iter()
                    .position(|k| *k == key)
                    .map(ActionKey)
                    .ok_or_else(|| E::unknown_field(key, &ACTION_KEYS))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct ActionVisitor;

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = ActionSettings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct ActionSettings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ActionSettings, A::Error> {
        let mut action = None;
        let mut out = ActionSettings::default();
        let mut seen = [false; ACTION_KEYS.len()];
        while let Some(ActionKey(index)) = map.next_key()? {
            let key = ACTION_KEYS[index];
            if std::mem::replace(&mut seen[index], true) {
                return Err(de::Error::duplicate_field(key));
            }
            match key {
                "action" => action = Some(map.next_value()?),
                "tags" => out.set.tags = map.next_value()?,
                "folder" => out.folder = map.next_value()?,
                "reason" => out.reason = map.next_value()?,
                _ => {
                    if let Some((_, field)) =
                        out.set.texts_mut().into_iter().find(|(k, _)| *k == key)
                    {
                        *field = map.next_value()?;
                    }
                }
            }
        }
        out.action = action.ok_or_else(|| de::Error::missing_field("action"))?;
        Ok(out)
    }

    /// A table written as an array of its values, in the order of [`ACTION_KEYS`]:
    /// odd, but the derived form took it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ActionSettings, A::Error> {
        fn element<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
            seq: &mut A,
            index: usize,
        ) -> Result<T, A::Error> {
            seq.next_element()?.ok_or_else(|| {
                de::Error::invalid_length(index, &"struct ActionSettings with 13 elements")
            })
        }
        let mut out = ActionSettings {
            action: element(&mut seq, 0)?,
            ..ActionSettings::default()
        };
        for (index, (_, field)) in out.set.texts_mut().into_iter().enumerate() {
            *field = element(&mut seq, index + 1)?;
        }
        out.set.tags = element(&mut seq, 10)?;
        out.folder = element(&mut seq, 11)?;
        out.reason = element(&mut seq, 12)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(json: &str) -> Result<ActionSettings, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn an_action_reads_as_one_flat_table() {
        let a =
            action(r#"{"action": "set", "type": "incident", "priority": "high", "tags": ["vip"]}"#)
                .unwrap();
        assert_eq!(a.action, "set");
        assert_eq!(a.set.ticket_type.as_deref(), Some("incident"));
        assert_eq!(a.set.priority.as_deref(), Some("high"));
        assert_eq!(a.set.tags, Some(vec!["vip".to_string()]));
        let a =
            action(r#"{"action": "ignore", "folder": "News", "reason": "newsletter", "tags": []}"#)
                .unwrap();
        assert_eq!(
            (a.folder.as_deref(), a.reason.as_deref()),
            (Some("News"), Some("newsletter"))
        );
        assert_eq!(
            a.set.tags,
            Some(Vec::new()),
            "an empty list is told from none"
        );
        assert_eq!(
            action(r#"{"action": "set"}"#).unwrap().set,
            WrittenFields::default()
        );
    }

    #[test]
    fn mistakes_read_as_serde_words_them() {
        let e = action(r#"{"action": "set", "priorty": "high"}"#).unwrap_err();
        assert!(
            e.starts_with("unknown field `priorty`, expected one of `action`, `helpdesk`, `status`, `priority`, `type`, `category`, `subcategory`, `environment`, `assignee`, `manager`, `tags`, `folder`, `reason`"),
            "{e}"
        );
        let e = action(r#"{"priority": "high"}"#).unwrap_err();
        assert!(e.starts_with("missing field `action`"), "{e}");
        let e = action(r#"{"action": "set", "priority": 1}"#).unwrap_err();
        assert!(
            e.starts_with("invalid type: integer `1`, expected a string"),
            "{e}"
        );
        let e = action(r#"{"action": "set", "tags": "vip"}"#).unwrap_err();
        assert!(
            e.starts_with("invalid type: string \"vip\", expected a sequence"),
            "{e}"
        );
        let e = action(r#"{"action": "set", "status": "a", "status": "b"}"#).unwrap_err();
        assert!(e.starts_with("duplicate field `status`"), "{e}");
        let e = action(r#""set""#).unwrap_err();
        assert!(
            e.starts_with("invalid type: string \"set\", expected struct ActionSettings"),
            "{e}"
        );
        let e = action(r#"["set"]"#).unwrap_err();
        assert!(
            e.starts_with("invalid length 1, expected struct ActionSettings with 13 elements"),
            "{e}"
        );
    }
}
