//! Conditions: which part of a mail to look at, and how to compare it.
//!
//! Every field reads as a list of texts (an address field gives each name and each
//! address, a header every value of that header); a field with nothing in it reads
//! as one empty text. Positive operators hold when any text satisfies them; their
//! negations (`not-contains`, `not-equals`) hold when none does.

use std::cell::OnceCell;

use postdesk_mail::{Address, Classification, ParsedMail};
use regex::{Regex, RegexBuilder};

use crate::config_issue::ConfigIssue;
use crate::reference::ReferenceFormat;

/// Body conditions look at this much text: a 50 MB body must not cost a hundred
/// full scans per mail.
pub const BODY_MATCH_LIMIT: usize = 1024 * 1024;
/// Compiled size allowed for one rule's regex (the regex crate's default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    Body,
    /// `header:<Name>`, name as written (matched case-insensitively).
    Header(String),
    SenderDomain,
    AttachmentName,
    HasAttachment,
    Classification,
}

pub const FIELD_NAMES: &str = "from, to, cc, bcc, subject, body, header:<Name>, sender-domain, attachment-name, has-attachment, classification";

impl Field {
    /// The field written `text`; the issue's key is the condition's `field`.
    pub fn parse(text: &str) -> Result<Self, ConfigIssue> {
        let text = text.trim();
        if let Some((prefix, name)) = text.split_once(':')
            && prefix.trim().eq_ignore_ascii_case("header")
        {
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(ConfigIssue::new(
                    "field",
                    format!("`{text}` does not name a header; write e.g. `header:X-Priority`"),
                ));
            }
            return Ok(Self::Header(name.to_string()));
        }
        Ok(match text.to_ascii_lowercase().as_str() {
            "from" => Self::From,
            "to" => Self::To,
            "cc" => Self::Cc,
            "bcc" => Self::Bcc,
            "subject" => Self::Subject,
            "body" => Self::Body,
            "sender-domain" => Self::SenderDomain,
            "attachment-name" => Self::AttachmentName,
            "has-attachment" => Self::HasAttachment,
            "classification" => Self::Classification,
            _ => {
                return Err(ConfigIssue::new(
                    "field",
                    format!("unknown field `{text}`; use one of {FIELD_NAMES}"),
                ));
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Self::From => "from".into(),
            Self::To => "to".into(),
            Self::Cc => "cc".into(),
            Self::Bcc => "bcc".into(),
            Self::Subject => "subject".into(),
            Self::Body => "body".into(),
            Self::Header(name) => format!("header:{name}"),
            Self::SenderDomain => "sender-domain".into(),
            Self::AttachmentName => "attachment-name".into(),
            Self::HasAttachment => "has-attachment".into(),
            Self::Classification => "classification".into(),
        }
    }

    /// Fields holding free text, where a ticket reference can be looked for.
    fn is_text(&self) -> bool {
        matches!(
            self,
            Self::Subject | Self::Body | Self::Header(_) | Self::AttachmentName
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Contains,
    NotContains,
    Equals,
    NotEquals,
    StartsWith,
    EndsWith,
    Regex,
    HasTicketId,
    IsEmpty,
}

const OPS: [(&str, Op); 9] = [
    ("contains", Op::Contains),
    ("not-contains", Op::NotContains),
    ("equals", Op::Equals),
    ("not-equals", Op::NotEquals),
    ("starts-with", Op::StartsWith),
    ("ends-with", Op::EndsWith),
    ("regex", Op::Regex),
    ("has-ticket-id", Op::HasTicketId),
    ("is-empty", Op::IsEmpty),
];

impl Op {
    /// The operator written `text`; the issue's key is the condition's `op`.
    pub fn parse(text: &str) -> Result<Self, ConfigIssue> {
        let wanted = text.trim();
        OPS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                let names: Vec<&str> = OPS.iter().map(|(name, _)| *name).collect();
                ConfigIssue::new(
                    "op",
                    format!(
                        "unknown operator `{wanted}`; use one of {}",
                        names.join(", ")
                    ),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }

    fn takes_value(self) -> bool {
        !matches!(self, Self::HasTicketId | Self::IsEmpty)
    }
}

/// A condition checked and compiled.
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub case_sensitive: bool,
    /// The value as written, for display.
    pub value: String,
    /// What is compared: the value, lower-cased unless case-sensitive, trimmed for `equals`.
    needle: String,
    regex: Option<Regex>,
}

const CLASSIFICATIONS: [Classification; 5] = [
    Classification::Normal,
    Classification::AutoReply,
    Classification::Bounce,
    Classification::Bulk,
    Classification::Loop,
];

impl Condition {
    /// Checks and compiles one condition; the issue's key is inside the condition
    /// (`field`, `op` or `value`).
    pub fn compile(
        field: &str,
        op: &str,
        value: Option<String>,
        case_sensitive: bool,
    ) -> Result<Self, ConfigIssue> {
        let field = Field::parse(field)?;
        let op = Op::parse(op)?;
        let name = field.name();
        let value = match (op.takes_value(), value) {
            (true, Some(v)) => v,
            (true, None) => {
                return Err(ConfigIssue::new(
                    "value",
                    format!("`{}` needs a `value`", op.as_str()),
                ));
            }
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(ConfigIssue::new(
                    "value",
                    format!("`{}` takes no `value`; remove it", op.as_str()),
                ));
            }
        };
        if op == Op::HasTicketId && !field.is_text() {
            return Err(ConfigIssue::new(
                "op",
                format!(
                    "`has-ticket-id` looks for a ticket reference in text; use it on subject, body, a header or attachment-name, not on {name}"
                ),
            ));
        }
        if field == Field::HasAttachment
            && !(matches!(op, Op::Equals | Op::NotEquals)
                && matches!(value.as_str(), "true" | "false"))
        {
            return Err(ConfigIssue::new(
                "op",
                "has-attachment is true or false: write `op = \"equals\", value = true` (or false)",
            ));
        }
        if field == Field::Classification
            && matches!(op, Op::Equals | Op::NotEquals)
            && !CLASSIFICATIONS
                .iter()
                .any(|c| c.as_str().eq_ignore_ascii_case(value.trim()))
        {
            let names: Vec<&str> = CLASSIFICATIONS.iter().map(|c| c.as_str()).collect();
            return Err(ConfigIssue::new(
                "value",
                format!(
                    "`{value}` is not a classification; use one of {}",
                    names.join(", ")
                ),
            ));
        }
        let regex = if op == Op::Regex {
            let compiled = RegexBuilder::new(&value)
                .case_insensitive(!case_sensitive)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => ConfigIssue::new(
                        "value",
                        format!("the regex `{value}` is too large once compiled; simplify it"),
                    ),
                    e => ConfigIssue::new("value", format!("`{value}` is not a valid regex: {e}")),
                })?;
            Some(compiled)
        } else {
            None
        };
        let trimmed = if matches!(op, Op::Equals | Op::NotEquals) {
            value.trim()
        } else {
            value.as_str()
        };
        let needle = if case_sensitive {
            trimmed.to_string()
        } else {
            trimmed.to_lowercase()
        };
        Ok(Self {
            field,
            op,
            case_sensitive,
            value,
            needle,
            regex,
        })
    }

    /// `subject contains "invoice"`, as the simulator shows it.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.field.name(), self.op.as_str());
        if self.op.takes_value() {
            text.push_str(&format!(" {:?}", self.value));
        }
        if self.case_sensitive && self.op.takes_value() && self.op != Op::Regex {
            text.push_str(" (case-sensitive)");
        }
        text
    }

    pub fn matches(&self, mail: &MailView<'_>, reference: &ReferenceFormat) -> bool {
        let lowered = !self.case_sensitive;
        let needle = self.needle.as_str();
        match self.op {
            Op::Contains => mail.any(&self.field, lowered, |v| v.contains(needle)),
            Op::NotContains => !mail.any(&self.field, lowered, |v| v.contains(needle)),
            Op::Equals => mail.any(&self.field, lowered, |v| v.trim() == needle),
            Op::NotEquals => !mail.any(&self.field, lowered, |v| v.trim() == needle),
            Op::StartsWith => {
                mail.any(&self.field, lowered, |v| v.trim_start().starts_with(needle))
            }
            Op::EndsWith => mail.any(&self.field, lowered, |v| v.trim_end().ends_with(needle)),
            Op::Regex => match &self.regex {
                Some(regex) => mail.any(&self.field, false, |v| regex.is_match(v)),
                None => false,
            },
            Op::HasTicketId => mail.any(&self.field, false, |v| reference.is_referenced(v)),
            Op::IsEmpty => !mail.any(&self.field, false, |v| !v.trim().is_empty()),
        }
    }
}

/// A mail as conditions read it; lower-cased copies are made once, on first use.
pub struct MailView<'m> {
    mail: &'m ParsedMail,
    class: Classification,
    body: &'m str,
    sender_domain: String,
    lower: Lowered,
}

#[derive(Default)]
struct Lowered {
    subject: OnceCell<String>,
    body: OnceCell<String>,
    from: OnceCell<Vec<String>>,
    to: OnceCell<Vec<String>>,
    cc: OnceCell<Vec<String>>,
    bcc: OnceCell<Vec<String>>,
    attachment_names: OnceCell<Vec<String>>,
}

impl<'m> MailView<'m> {
    pub fn new(mail: &'m ParsedMail, class: Classification) -> Self {
        let body = &mail.text[..mail.text.floor_char_boundary(BODY_MATCH_LIMIT)];
        let sender_domain = mail
            .from
            .as_ref()
            .and_then(|a| a.email.trim().rsplit_once('@'))
            .map(|(_, domain)| domain.trim_end_matches('>').to_lowercase())
            .unwrap_or_default();
        Self {
            mail,
            class,
            body,
            sender_domain,
            lower: Lowered::default(),
        }
    }

    /// Whether any text of `field` satisfies `test`; `lowered` gives lower-cased texts.
    /// A field with no text reads as one empty text.
    pub fn any(&self, field: &Field, lowered: bool, mut test: impl FnMut(&str) -> bool) -> bool {
        let mut seen = false;
        let mut check = |v: &str| {
            seen = true;
            test(v)
        };
        let hit = match field {
            Field::Subject if lowered => check(
                self.lower
                    .subject
                    .get_or_init(|| self.mail.subject.to_lowercase()),
            ),
            Field::Subject => check(&self.mail.subject),
            Field::Body if lowered => {
                check(self.lower.body.get_or_init(|| self.body.to_lowercase()))
            }
            Field::Body => check(self.body),
            Field::From | Field::To | Field::Cc | Field::Bcc => {
                let (list, cache) = self.addresses(field);
                if lowered {
                    cache
                        .get_or_init(|| address_texts(list).map(str::to_lowercase).collect())
                        .iter()
                        .any(|v| check(v))
                } else {
                    address_texts(list).any(check)
                }
            }
            Field::Header(name) => self
                .mail
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .any(|(_, v)| {
                    if lowered {
                        check(&v.to_lowercase())
                    } else {
                        check(v)
                    }
                }),
            // Already lower-case.
            Field::SenderDomain => check(&self.sender_domain),
            Field::AttachmentName if lowered => self
                .lower
                .attachment_names
                .get_or_init(|| self.attachment_names().map(str::to_lowercase).collect())
                .iter()
                .any(|v| check(v)),
            Field::AttachmentName => self.attachment_names().any(check),
            Field::HasAttachment => check(if self.mail.attachments.iter().any(|a| !a.inline) {
                "true"
            } else {
                "false"
            }),
            Field::Classification => check(self.class.as_str()),
        };
        hit || (!seen && test(""))
    }

    /// The texts of `field`, for the simulator: at most `limit` of them.
    pub fn texts(&self, field: &Field, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        self.any(field, false, |v| {
            out.push(v.to_string());
            out.len() >= limit
        });
        out
    }

    fn addresses(&self, field: &Field) -> (&'m [Address], &OnceCell<Vec<String>>) {
        match field {
            Field::From => (self.mail.from.as_slice(), &self.lower.from),
            Field::To => (&self.mail.to, &self.lower.to),
            Field::Cc => (&self.mail.cc, &self.lower.cc),
            _ => (&self.mail.bcc, &self.lower.bcc),
        }
    }

    fn attachment_names(&self) -> impl Iterator<Item = &'m str> {
        self.mail
            .attachments
            .iter()
            .map(|a| a.original_name.as_deref().unwrap_or(&a.safe_name))
    }
}

/// Each address's display name (when it has one) and address.
fn address_texts(list: &[Address]) -> impl Iterator<Item = &str> {
    list.iter().flat_map(|a| {
        let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        name.into_iter().chain(std::iter::once(a.email.trim()))
    })
}
