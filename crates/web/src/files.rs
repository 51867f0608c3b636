//! Files leaving postdesk: attachments, raw mails and the style sheet. Attachment bytes
//! are attacker-controlled: they are served as downloads with a safe name, never sniffed,
//! and only common raster images are shown inline (for `cid:` images in mail bodies).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use postdesk_core::error::Context;
use postdesk_core::id::IntakeId;
use serde::Deserialize;

use crate::auth::Agent;
use crate::{AppState, WebError};

const STYLESHEET: &str = include_str!("../static/app.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Images a browser may show inline without risk: no SVG (it can carry script).
pub(crate) const INLINE_IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

#[derive(Deserialize)]
pub struct DownloadParams {
    download: Option<String>,
}

pub async fn attachment(
    State(state): State<AppState>,
    agent: Agent,
    Path(sha256): Path<String>,
    Query(params): Query<DownloadParams>,
) -> Result<Response, WebError> {
    let not_found = || WebError::NotFound("there is no such attachment in your helpdesks".into());
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let sha256 = sha256.to_ascii_lowercase();
    let file = state
        .store()
        .attachment_file(&sha256, &agent.account.helpdesks)
        .await?
        .ok_or_else(not_found)?;
    stored_attachment(state.store(), &sha256, &file, params.download.is_none()).await
}

/// An attachment's bytes as a download, or inline for a raster image when `inline`
/// is allowed (the agents' and the portal's downloads alike).
pub(crate) async fn stored_attachment(
    store: &postdesk_store::Store,
    sha256: &str,
    file: &postdesk_store::desk::AttachmentFile,
    inline: bool,
) -> Result<Response, WebError> {
    let path = postdesk_store::blobs::attachment_path(store.data_dir(), sha256);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        WebError::Internal(
            Context::new(format!("cannot read attachment {}", path.display()), e).into(),
        )
    })?;
    let mime = file.mime_type.to_ascii_lowercase();
    let inline = inline && INLINE_IMAGES.contains(&mime.as_str());
    let content_type = if inline {
        mime
    } else {
        "application/octet-stream".to_string()
    };
    Ok(file_response(bytes, &content_type, &file.safe_name, inline))
}

pub async fn raw_mail(
    State(state): State<AppState>,
    agent: Agent,
    Path(intake_id): Path<IntakeId>,
) -> Result<Response, WebError> {
    let bytes = state.desk(&agent).raw_mail(intake_id).await?;
    Ok(file_response(
        bytes,
        "message/rfc822",
        &format!("mail-{intake_id}.eml"),
        false,
    ))
}

pub(crate) fn file_response(
    bytes: Vec<u8>,
    content_type: &str,
    name: &str,
    inline: bool,
) -> Response {
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(name, inline)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Even if a browser were tricked into rendering it, the file could not run script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

/// `attachment; filename="…"; filename*=UTF-8''…` with a name that cannot break out of
/// the header or name a path: ASCII fallback plus the RFC 5987 encoded original.
pub fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .-_()+,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = ascii.trim_matches(|c| c == '.' || c == ' ');
    let ascii = if ascii.is_empty() { "file" } else { ascii };
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_cannot_break_out_or_name_a_path() {
        let value = content_disposition("a\"; filename=evil.exe\r\nX: y/../../etc/passwd", false);
        assert!(
            value.starts_with(
                "attachment; filename=\"a__ filename_evil.exe__X_ y_.._.._etc_passwd\";"
            )
        );
        assert!(!value.contains('\r') && !value.contains('\n'));
        assert!(!value.contains('/'), "{value}");
        assert_eq!(
            content_disposition("résumé.pdf", true),
            "inline; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
        );
        assert!(content_disposition("...", false).contains("filename=\"file\""));
    }
}
