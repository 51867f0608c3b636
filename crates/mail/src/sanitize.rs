//! HTML from mail made safe to show in a browser, and HTML → plain text.

/// Plain text rendering of an HTML body (used when a mail has no text/plain part).
pub fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), 100).unwrap_or_default()
}
