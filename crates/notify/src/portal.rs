//! The customer portal's own mail: the one-time sign-in link, queued in the outbox
//! in the transaction that keeps the link (issue 17). Tickets opened and answered in
//! the portal go through intake, which queues their acknowledgements and agents'
//! notifications as for mail (`on_ingested`).

use postdesk_core::id::OutboxId;
use postdesk_core::outgoing::Event;
use postdesk_store::{RegisteredHelpdesk, Tx};

use crate::{NotifyError, Outgoing, Vars, queue};

/// Queues the sign-in `link` to `address` (the contact `name`); `None` when the
/// helpdesk sends no mail.
pub fn queue_link(
    tx: Tx<'_>,
    hd: &RegisteredHelpdesk,
    name: &str,
    address: &str,
    link: &str,
) -> Result<Option<OutboxId>, NotifyError> {
    let mut vars = Vars::new();
    vars.set("helpdesk", hd.config.settings.name.clone())
        .set("requester_name", name.to_string())
        .set("requester_email", address.to_string())
        .set("link", link.to_string())
        .set("portal_link", link.to_string());
    let display = (!name.trim().is_empty()).then(|| name.to_string());
    let mail = Outgoing::new(
        Event::PortalLink,
        &vars,
        vec![(display, address.to_string())],
    );
    Ok(queue(tx, hd, mail)?.map(|(id, _)| id))
}

/// A file a contact uploaded in the portal.
#[derive(Debug, Clone)]
pub struct Upload {
    /// As the browser named it (hostile: only ever used as a file name in the mail).
    pub name: String,
    /// As the browser declared it; anything that is not `type/subtype` of token
    /// characters becomes `application/octet-stream`.
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// What a contact wrote in the portal, to be taken in as a mail from them.
#[derive(Debug, Clone)]
pub struct CustomerMail<'a> {
    pub from_name: Option<&'a str>,
    pub from: &'a str,
    /// The helpdesk's address.
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// Message-IDs of the ticket answered (none for a new ticket).
    pub references: &'a [String],
    pub uploads: &'a [Upload],
}

/// The contact's portal input as an RFC 5322 message (lettre encodes the subject,
/// names and parts), so intake stores it, applies the attachment policy and sends the
/// acknowledgement and notifications exactly as for mail. Returns the bytes and the
/// Message-ID.
pub fn customer_mail(mail: &CustomerMail<'_>) -> Result<(Vec<u8>, String), NotifyError> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};
    let from = crate::compose::mailbox(mail.from_name, mail.from)?;
    let to = crate::compose::mailbox(None, mail.to)?;
    // Not postdesk's own `pd.` form: that one, coming in, is a loop.
    let message_id = crate::compose::new_message_id(mail.to).replacen("pd.", "portal.", 1);
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(postdesk_core::outgoing::one_line(mail.subject))
        .message_id(Some(format!("<{message_id}>")));
    let references: Vec<String> = mail
        .references
        .iter()
        .filter(|r| {
            !r.is_empty()
                && r.len() <= 250
                && r.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        })
        .map(|r| format!("<{r}>"))
        .collect();
    if let Some(last) = references.last() {
        builder = builder
            .in_reply_to(last.clone())
            .references(references.join(" "));
    }
    let text = SinglePart::plain(mail.text.replace("\r\n", "\n"));
    let message = if mail.uploads.is_empty() {
        builder.singlepart(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(text);
        for upload in mail.uploads {
            let content_type = ContentType::parse(&safe_mime_type(&upload.mime_type))
                .unwrap_or(ContentType::parse("application/octet-stream").expect("valid"));
            let name = postdesk_core::outgoing::one_line(&upload.name);
            let name = if name.is_empty() { "file".into() } else { name };
            parts =
                parts.singlepart(Attachment::new(name).body(upload.bytes.clone(), content_type));
        }
        builder.multipart(parts)
    }
    .map_err(crate::compose::ComposeError::from)?;
    Ok((message.formatted(), message_id))
}

/// `type/subtype` in lower case when it is made of token characters, else
/// `application/octet-stream`.
pub fn safe_mime_type(declared: &str) -> String {
    let declared = declared.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match declared.split_once('/') {
        Some((t, s)) if token(t) && token(s) => declared,
        _ => "application/octet-stream".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_and_types_stay_inside_their_headers() {
        let uploads = [Upload {
            name: "a\r\nBcc: evil@example.com\".png".into(),
            mime_type: "image/png\r\nX-Evil: 1".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        }];
        let (raw, id) = customer_mail(&CustomerMail {
            from_name: Some("Jane\r\nBcc: x@example.com"),
            from: "jane@acme.example",
            to: "support@example.com",
            subject: "Printer\r\nBcc: evil@example.com",
            text: "It jams.",
            references: &["a@b".into(), "bad>id".into()],
            uploads: &uploads,
        })
        .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("\nBcc:"), "{text}");
        assert!(!text.contains("\nX-Evil"), "{text}");
        assert!(text.contains("application/octet-stream"), "{text}");
        assert!(text.contains("References: <a@b>\r\n"), "{text}");
        assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
        let parsed = postdesk_mail::parse(&raw);
        assert_eq!(parsed.subject, "Printer Bcc: evil@example.com");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(safe_mime_type("IMAGE/PNG"), "image/png");
    }
}
