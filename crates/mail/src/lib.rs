//! Bytes → parsed, classified mail. Pure: no I/O, never panics, never fails.
//!
//! `parse` turns raw RFC 5322 bytes into a [`ParsedMail`]; `classify` labels it
//! (auto-reply, bounce, loop…); `quote` splits a reply from the quoted history;
//! `sanitize` makes HTML safe to show; `auth` reads the receiving MTA's verdict on the sender.

pub mod auth;
pub mod charset;
pub mod classify;
pub mod header;
pub mod parse;
pub mod quote;
pub mod sanitize;
pub mod tnef;

pub use classify::{Classification, Verdict, classify, classify_with_signal};
pub use parse::{ParseOptions, parse, parse_with};
pub use quote::{StrippedReply, strip_reply};
pub use sanitize::{escape_html, push_escaped_html};

/// One mailbox address; `email` is as written (trimmed), compare with `email_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub name: Option<String>,
    pub email: String,
}

impl Address {
    /// The address used for lookups and comparisons: lower-cased, an internationalised
    /// domain in its ASCII (punycode) form, so `jo@Müller.de` and `jo@xn--mller-kva.de`
    /// are the same person.
    pub fn email_key(&self) -> String {
        let email = self.email.trim();
        match email.rsplit_once('@') {
            Some((local, domain)) => format!("{}@{}", local.to_lowercase(), domain_ascii(domain)),
            None => email.to_lowercase(),
        }
    }

    /// The address with an internationalised domain in Unicode (`xn--mller-kva.de` → `müller.de`), for display.
    pub fn email_unicode(&self) -> String {
        let email = self.email.trim();
        match email.rsplit_once('@') {
            Some((local, domain)) if domain.to_ascii_lowercase().contains("xn--") => {
                let (unicode, result) = idna::domain_to_unicode(domain);
                if result.is_ok() {
                    format!("{local}@{unicode}")
                } else {
                    email.to_string()
                }
            }
            _ => email.to_string(),
        }
    }
}

/// A domain in lower-case ASCII: punycode for an internationalised one (as written if it is not a valid IDN).
pub fn domain_ascii(domain: &str) -> String {
    if domain.is_ascii() {
        return domain.to_ascii_lowercase();
    }
    idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase())
}

/// Which header the sender was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenderSource {
    From,
    /// From had no usable address; the address was written in its display name (`"jo@example.com" <>`).
    FromDisplayName,
    Sender,
    ReplyTo,
    ReturnPath,
}

impl SenderSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::From => "From",
            Self::FromDisplayName => "From (display name)",
            Self::Sender => "Sender",
            Self::ReplyTo => "Reply-To",
            Self::ReturnPath => "Return-Path",
        }
    }
}

/// An attachment or inline part, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name as the sender gave it (decoded RFC 2047/2231), if any. Untrusted.
    pub original_name: Option<String>,
    /// A name safe to use on any file system and in a Content-Disposition header:
    /// no path separators, no control characters, no leading dots, bounded length,
    /// never empty (an unnamed part gets a name from its type and position: `image001.jpg`).
    pub safe_name: String,
    /// Lower-case `type/subtype`.
    pub mime_type: String,
    /// Content-ID without angle brackets, for inline parts referenced by `cid:`.
    pub content_id: Option<String>,
    pub inline: bool,
    /// Hex SHA-256 of `data`.
    pub sha256: String,
    pub data: Vec<u8>,
}

/// What a raw mail says, decoded. Every field is untrusted text.
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To ids without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids without angle brackets, in header order.
    pub references: Vec<String>,
    /// Decoded subject, whitespace-normalised (newlines folded to spaces); empty if none.
    pub subject: String,
    /// The sender: From, or when it has no usable address Sender, Reply-To or Return-Path
    /// (see `sender_source`). `None` only with a "no sender" warning saying why.
    pub from: Option<Address>,
    /// The header `from` was taken from; `None` when there is no sender.
    pub sender_source: Option<SenderSource>,
    pub reply_to: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    /// Return-Path address without brackets; `Some("")` for the null path `<>`.
    pub return_path: Option<String>,
    /// Date header as seconds since the Unix epoch (UTC), if present and valid.
    pub date: Option<i64>,
    /// Every header as (name, decoded value) in order, for rules `header:<Name>`.
    pub headers: Vec<(String, String)>,
    /// Body text: the text/plain body, or derived from the HTML body when there is none.
    pub text: String,
    /// The HTML body, sanitized for display (see `sanitize`), if the mail has one.
    pub html: Option<String>,
    /// Attachments, inline images and unpacked winmail.dat contents.
    pub attachments: Vec<Attachment>,
    /// Facts about the MIME structure that `classify` needs.
    pub structure: Structure,
    /// The character encoding postdesk chose for 8-bit text that had no usable label
    /// (raw 8-bit header bytes, a body part with no, an unknown or a wrong `charset`),
    /// as an encoding_rs name (`windows-1251`, `Shift_JIS`, `GBK`…); `None` when
    /// every label was used as written. Persist it with the entry.
    pub detected_charset: Option<String>,
    /// Problems met while parsing (bad charset, broken boundary…), for the record.
    pub warnings: Vec<String>,
}

/// MIME facts used by classification (bounces carry their original inside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Structure {
    /// Top-level Content-Type, lower-case `type/subtype`.
    pub content_type: String,
    /// `report-type` parameter of a multipart/report, lower-case.
    pub report_type: Option<String>,
    /// Message-ID of an embedded original (message/rfc822 or text/rfc822-headers part), if any.
    pub embedded_message_id: Option<String>,
    /// Subject of that embedded original, if any.
    pub embedded_subject: Option<String>,
}

impl ParsedMail {
    /// Removes U+0000 from every text of the mail. A NUL means nothing to a reader,
    /// and PostgreSQL's text columns cannot hold one (SQLite's can), so the store
    /// would otherwise refuse the mail on one engine and keep it on the other.
    pub fn remove_nul_chars(&mut self) {
        fn clean(text: &mut String) {
            if text.contains('\0') {
                text.retain(|c| c != '\0');
            }
        }
        fn clean_address(address: &mut Address) {
            address.name.iter_mut().for_each(clean);
            clean(&mut address.email);
        }
        let texts = [&mut self.subject, &mut self.text]
            .into_iter()
            .chain(self.message_id.iter_mut())
            .chain(self.in_reply_to.iter_mut())
            .chain(self.references.iter_mut())
            .chain(self.return_path.iter_mut())
            .chain(self.html.iter_mut())
            .chain(self.detected_charset.iter_mut())
            .chain(self.warnings.iter_mut());
        texts.for_each(clean);
        for (name, value) in &mut self.headers {
            clean(name);
            clean(value);
        }
        self.from.iter_mut().for_each(clean_address);
        self.reply_to.iter_mut().for_each(clean_address);
        self.to
            .iter_mut()
            .chain(&mut self.cc)
            .chain(&mut self.bcc)
            .for_each(clean_address);
        for a in &mut self.attachments {
            a.original_name.iter_mut().for_each(clean);
            clean(&mut a.safe_name);
            clean(&mut a.mime_type);
            a.content_id.iter_mut().for_each(clean);
        }
    }

    /// First header value with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
