//! The attachment policy: which parts are kept, which are refused (and listed).

use serde::Deserialize;

/// `[helpdesk.attachments]`: which attachments are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentPolicy {
    /// MIME types kept; `type/*` matches a whole family.
    #[serde(default = "default_allowed_types")]
    pub allowed_types: Vec<String>,
    #[serde(default = "default_max_size_mb")]
    pub max_size_mb: u64,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            allowed_types: default_allowed_types(),
            max_size_mb: default_max_size_mb(),
        }
    }
}

fn default_allowed_types() -> Vec<String> {
    vec!["image/*".into()]
}
fn default_max_size_mb() -> u64 {
    10
}

/// Why an attachment was not kept, or `None` when it is.
pub fn refusal(policy: &AttachmentPolicy, mime_type: &str, size: usize) -> Option<String> {
    let mime_type = mime_type.to_ascii_lowercase();
    let allowed = policy.allowed_types.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_suffix("/*") {
            Some("*") => true,
            Some(family) => mime_type.split('/').next() == Some(family),
            None => pattern == mime_type,
        }
    });
    if !allowed {
        return Some(format!("type {mime_type} is not allowed"));
    }
    let max = policy.max_size_mb.saturating_mul(1024 * 1024);
    (size as u64 > max).then(|| format!("larger than {} MB", policy.max_size_mb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_only_by_default() {
        let p = AttachmentPolicy::default();
        assert_eq!(refusal(&p, "image/png", 10), None);
        assert_eq!(refusal(&p, "IMAGE/JPEG", 10), None);
        assert!(
            refusal(&p, "application/pdf", 10)
                .unwrap()
                .contains("application/pdf")
        );
        assert!(
            refusal(&p, "image/png", 11 * 1024 * 1024)
                .unwrap()
                .contains("10 MB")
        );
    }

    #[test]
    fn exact_types_and_everything() {
        let p = AttachmentPolicy {
            allowed_types: vec!["application/pdf".into()],
            max_size_mb: 1,
        };
        assert_eq!(refusal(&p, "application/pdf", 10), None);
        assert!(refusal(&p, "image/png", 10).is_some());
        let p = AttachmentPolicy {
            allowed_types: vec!["*/*".into()],
            max_size_mb: 1,
        };
        assert_eq!(refusal(&p, "application/x-msdownload", 10), None);
    }
}
