//! The one error of configuration checks: a [`ConfigIssue`] names the key it is about
//! and says what is wrong. Every check in core returns it with the key relative to the
//! table it checks (`host` for `[helpdesk.smtp]`); the caller that knows where that
//! table sits puts it [`within`](ConfigIssue::within) its own, and whoever has the file
//! adds the line.

/// One problem found in the configuration: the key it is about, the line where the
/// file has that key, and what is wrong. Written `key: message`, or the message alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted, with `[n]` for array positions (from 0): `outgoing.max_attempts`,
    /// `helpdesk.rule[1].conditions[0].op`. None when the message names no key or
    /// names it in its own words (`max_mail_mb must be…`).
    pub key: Option<String>,
    /// From 1; None when the file does not have the key (a default was wrong, or the
    /// problem is the whole file), or while the issue is not located in a file yet.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigIssue {}

impl ConfigIssue {
    /// A problem with `key`, not yet located in a file.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            line: None,
            message: message.into(),
        }
    }

    /// A problem whose message says all.
    pub fn unkeyed(message: impl Into<String>) -> Self {
        Self {
            key: None,
            line: None,
            message: message.into(),
        }
    }

    /// The same problem at `line` of the file.
    pub fn at_line(self, line: Option<usize>) -> Self {
        Self { line, ..self }
    }

    /// The same problem seen from the table that holds `table`: the key becomes
    /// `table.key`, or `table` itself when the problem names no key inside it.
    pub fn within(self, table: &str) -> Self {
        let key = match self.key {
            Some(key) => format!("{table}.{key}"),
            None => table.to_string(),
        };
        Self {
            key: Some(key),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigIssue;

    #[test]
    fn written_key_colon_message() {
        let issue = ConfigIssue::new("host", "must not be empty").within("smtp");
        assert_eq!(issue.key.as_deref(), Some("smtp.host"));
        assert_eq!(issue.to_string(), "smtp.host: must not be empty");
        assert_eq!(
            ConfigIssue::unkeyed("no `[[helpdesk]]` is configured").to_string(),
            "no `[[helpdesk]]` is configured"
        );
        assert_eq!(
            ConfigIssue::unkeyed("a rule needs a name")
                .within("rule[0]")
                .key
                .as_deref(),
            Some("rule[0]")
        );
    }
}
