//! Raw bytes → [`ParsedMail`] with mail-parser.
//!
//! Never fails and never panics: what cannot be read becomes a warning. mail-parser
//! does the MIME work (charsets, RFC 2047/2231, broken boundaries); this module picks
//! the bodies, turns parts into [`Attachment`]s with safe names, unpacks winmail.dat,
//! sanitizes HTML and records the structure facts `classify` needs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{
    Addr, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::charset::{self, Decided, Hints};
use crate::header;
use crate::sanitize::{normalize_cid, sanitize_html, stub_alternative_text};
use crate::{Address, Attachment, ParsedMail, SenderSource, Structure, tnef};

/// Longest `safe_name`, in bytes.
pub const MAX_NAME_BYTES: usize = 150;
/// At most this many warnings are kept.
const MAX_WARNINGS: usize = 50;
/// The body scan for an embedded Message-ID in bounces looks at this many bytes.
const SCAN_LIMIT: usize = 1 << 20;

/// What the caller decides about parsing: the mail crate knows nothing of where its
/// output is shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// The URL under which the caller serves an attachment, given its hex SHA-256:
    /// `cid:` images in the HTML are pointed there. `None` drops them, as a `cid:`
    /// that names no part of the mail is.
    pub attachment_url: Option<fn(&str) -> String>,
}

/// [`parse_with`] default options: `cid:` images are dropped (no attachment URL).
pub fn parse(raw: &[u8]) -> ParsedMail {
    parse_with(raw, &ParseOptions::default())
}

/// Never fails and never panics: what cannot be read becomes a warning.
pub fn parse_with(raw: &[u8], options: &ParseOptions) -> ParsedMail {
    let mut out = ParsedMail::default();
    let mut warnings = Vec::new();
    let raw = skip_leading_junk(raw, &mut warnings);
    let defused = defuse_deep_nesting(raw, &mut warnings);
    let first = MessageParser::default().parse(&defused[..]);
    let transcoded = first
        .as_ref()
        .and_then(|msg| transcode_8bit_headers(&defused, msg, &mut out));
    // Parsed again only when a header block changed (rare: most 8-bit bytes are in bodies).
    let (raw, msg): (&[u8], _) = match &transcoded {
        Some(t) => (t, MessageParser::default().parse(&t[..])),
        None => (&defused, first),
    };
    let Some(msg) = msg else {
        return headerless(raw);
    };
    // A first line that is neither a header nor an mbox "From " line: not a mail.
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let not_a_header = !first_line.contains(&b':') && !first_line.starts_with(b"From ");
    let Some(root) = msg
        .parts
        .first()
        .filter(|p| !p.headers.is_empty() && !not_a_header)
    else {
        return headerless(raw);
    };

    let hints = mail_hints(&msg, raw);
    read_headers(&mut out, raw, root, &hints);
    read_envelope(&mut out, &msg, raw);
    repair_display_names(&mut out, root, raw, &hints);
    read_structure(&mut out, root);

    check_parts(&msg, &mut warnings);

    // Bodies.
    let mut detected = None;
    let texts: Vec<Cow<'_, str>> = body_parts(&msg, &msg.text_body)
        .filter(|p| matches!(p.body, PartType::Text(_)))
        .map(|p| part_text(raw, p, &hints, &mut detected))
        .collect();
    let htmls: Vec<Cow<'_, str>> = body_parts(&msg, &msg.html_body)
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .map(|p| part_text(raw, p, &hints, &mut detected))
        .collect();
    let mut text = normalize_newlines(&texts.join("\n"));
    let mut html_source = (!htmls.is_empty()).then(|| htmls.join("\n"));

    // No body part at all (e.g. MHTML whose first related part is an image): an
    // unnamed text part that is not marked as an attachment is the body.
    let mut promoted = None;
    if texts.is_empty() && htmls.is_empty() {
        promoted = msg.attachments.iter().copied().find(|&id| {
            msg.parts.get(id as usize).is_some_and(|p| {
                matches!(p.body, PartType::Text(_) | PartType::Html(_))
                    && p.attachment_name().is_none()
                    && !p.content_disposition().is_some_and(|d| d.is_attachment())
                    && p.content_type().is_none_or(|c| {
                        c.ctype().eq_ignore_ascii_case("text")
                            && c.subtype().is_none_or(|s| {
                                s.eq_ignore_ascii_case("plain") || s.eq_ignore_ascii_case("html")
                            })
                    })
            })
        });
        if let Some(p) = promoted.and_then(|id| msg.parts.get(id as usize)) {
            let body = part_text(raw, p, &hints, &mut detected);
            match &p.body {
                PartType::Html(_) => html_source = Some(body.into_owned()),
                PartType::Text(_) => text = normalize_newlines(&body),
                _ => {}
            }
        }
    }

    // Attachments (winmail.dat unpacked), embedded originals.
    let mut tnef_bodies = TnefBodies::default();
    let mut unnamed = 0;
    for &id in &msg.attachments {
        if Some(id) == promoted {
            continue;
        }
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        let ctx = PartContext {
            msg: &msg,
            raw,
            hints: &hints,
        };
        add_attachment(
            &mut out,
            &ctx,
            part,
            &mut unnamed,
            &mut tnef_bodies,
            &mut warnings,
        );
    }
    if out.detected_charset.is_none() {
        out.detected_charset = detected.map(str::to_string);
    }

    if html_source.is_none() {
        // Outlook's winmail.dat often carries the formatted version of the text body.
        html_source = tnef_bodies.html.take();
    }
    if text.trim().is_empty() && html_source.is_none() {
        if let Some(t) = tnef_bodies.text.take() {
            text = normalize_newlines(&t);
        } else if let Some(rtf) = tnef_bodies.rtf.take() {
            // Only an RTF body: keep it as a file rather than lose the content.
            out.attachments.push(make_attachment(
                Some(tnef::BODY_RTF_NAME.into()),
                "application/rtf".into(),
                None,
                false,
                rtf,
            ));
        }
    }
    if let Some(h) = &html_source {
        // The HTML's text replaces a text/plain alternative that is only a stub.
        if let Some(html_text) = stub_alternative_text(&text, h) {
            text = normalize_newlines(&html_text);
        }
    }
    if has_replacement_char(&text) {
        warnings.push("body text had invalid byte sequences (replaced)".into());
    }
    // Leading blank lines and trailing whitespace carry nothing.
    out.text = text.trim_end().trim_start_matches(['\n', '\r']).to_string();

    if let Some(h) = html_source {
        let cids: HashMap<String, String> = out
            .attachments
            .iter()
            .filter_map(|a| {
                a.content_id
                    .as_ref()
                    .map(|c| (normalize_cid(c), a.sha256.clone()))
            })
            .collect();
        let cids_lower: HashMap<String, String> = cids
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        let lookup = |cid: &str| {
            let url = options.attachment_url?;
            let cid = normalize_cid(cid);
            cids.get(&cid)
                .or_else(|| cids_lower.get(&cid.to_lowercase()))
                .map(|sha| url(sha))
        };
        out.html = Some(sanitize_html(&h, &lookup));
    }

    if out.structure.embedded_message_id.is_none() && crate::classify::looks_like_bounce(&out) {
        scan_for_original(
            &mut out,
            raw.get(root.offset_body as usize..).unwrap_or_default(),
        );
    }

    if out.text.trim().is_empty()
        && out.html.as_deref().is_none_or(|h| h.trim().is_empty())
        && out.attachments.is_empty()
    {
        warnings.push("empty body".into());
    }
    for w in warnings {
        push_warning(&mut out, w);
    }
    out
}

/// Nested messages beyond this count are left unparsed (kept as opaque parts).
pub const MAX_NESTED_MESSAGES: usize = 200;

/// mail-parser nests message/rfc822 parts without a depth limit and its data
/// structures are dropped recursively: 10 000 nested messages overflow the stack.
/// Past [`MAX_NESTED_MESSAGES`] occurrences of `message/rfc822`, `message/global`
/// or `multipart/digest`, one letter of the type is changed (same length, so all
/// offsets stay valid) and the part is kept as an opaque attachment.
fn defuse_deep_nesting<'a>(raw: &'a [u8], warnings: &mut Vec<String>) -> Cow<'a, [u8]> {
    const PATTERNS: &[(&[u8], usize)] = &[
        (b"message/rfc822", 8),
        (b"message/global", 8),
        (b"multipart/digest", 10),
    ];
    let mut seen = 0;
    let mut out: Option<Vec<u8>> = None;
    // Every pattern starts with an 'm': jump from one to the next.
    for i in memchr::memchr2_iter(b'm', b'M', raw) {
        for (pat, letter) in PATTERNS {
            if raw
                .get(i..i + pat.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(pat))
            {
                seen += 1;
                if seen > MAX_NESTED_MESSAGES {
                    out.get_or_insert_with(|| raw.to_vec())[i + letter] = b'x';
                }
                break;
            }
        }
    }
    match out {
        Some(v) => {
            warnings.push(format!(
                "more than {MAX_NESTED_MESSAGES} embedded messages: the rest are kept unparsed"
            ));
            Cow::Owned(v)
        }
        None => Cow::Borrowed(raw),
    }
}

/// Lines that may precede the header block and are not part of the mail: a UTF-8 BOM,
/// blank lines, an mbox `From ` line, a forwarding client's "---- Original message ----".
/// At most [`MAX_JUNK_LINES`] lines are dropped, and only when a header line follows.
fn skip_leading_junk<'a>(raw: &'a [u8], warnings: &mut Vec<String>) -> &'a [u8] {
    let mut rest = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let mut dropped = 0;
    while dropped < MAX_JUNK_LINES {
        let line_end = memchr::memchr(b'\n', rest).map_or(rest.len(), |p| p + 1);
        let line = &rest[..line_end];
        let next = &rest[line_end..];
        let blank = line.iter().all(|b| b.is_ascii_whitespace());
        let junk = if blank {
            !line.is_empty()
        } else {
            !is_header_line(line) && !line.starts_with(b"From ") && is_header_line(next)
        };
        if !junk {
            break;
        }
        rest = next;
        dropped += 1;
    }
    if dropped > 0 && rest.len() < raw.len() && !rest.is_empty() {
        warnings.push(format!("{dropped} line(s) before the headers ignored"));
    }
    if rest.is_empty() { raw } else { rest }
}

const MAX_JUNK_LINES: usize = 5;

/// `Name: value`: a field name of printable ASCII without spaces, then a colon.
fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    colon > 0 && line[..colon].iter().all(|&b| (33..=126).contains(&b))
}

/// Headers with raw 8-bit bytes that are not UTF-8 (Subject, display names, file
/// names in GBK, windows-1251, Shift_JIS…) are transcoded to UTF-8 before mail-parser
/// reads them, which would otherwise replace them with U+FFFD. The encoding is the
/// first charset the mail declares that decodes them cleanly, else the detector's
/// guess over all such bytes (see `charset`). Only header blocks change; the bodies
/// keep their bytes. `None` when nothing needed transcoding.
fn transcode_8bit_headers(raw: &[u8], msg: &Message<'_>, out: &mut ParsedMail) -> Option<Vec<u8>> {
    if std::str::from_utf8(raw).is_ok() {
        return None;
    }
    // Header blocks of the parts, in order, that are not valid UTF-8.
    let mut ranges: Vec<(usize, usize)> = msg
        .parts
        .iter()
        .map(|p| (p.offset_header as usize, p.offset_body as usize))
        .filter(|&(a, b)| a < b && b <= raw.len() && std::str::from_utf8(&raw[a..b]).is_err())
        .collect();
    if ranges.is_empty() {
        return None;
    }
    ranges.sort_unstable();
    ranges.dedup();
    let hints = mail_hints(msg, raw);
    let mut sample = Vec::new();
    for &(a, b) in &ranges {
        for line in raw[a..b].split(|&c| c == b'\n') {
            if std::str::from_utf8(line).is_err() && sample.len() < charset::DETECT_LIMIT {
                sample.extend_from_slice(line);
                sample.push(b'\n');
            }
        }
    }
    let (encoding, _) = charset::choose(&sample, &hints);
    out.detected_charset = Some(encoding.name().to_string());
    let mut result = Vec::with_capacity(raw.len() + raw.len() / 4);
    let mut at = 0;
    for (a, b) in ranges {
        if a < at {
            continue;
        }
        result.extend_from_slice(&raw[at..a]);
        for line in raw[a..b].split_inclusive(|&c| c == b'\n') {
            if std::str::from_utf8(line).is_ok() {
                result.extend_from_slice(line);
            } else {
                result.extend_from_slice(encoding.decode_without_bom_handling(line).0.as_bytes());
            }
        }
        at = b;
    }
    result.extend_from_slice(&raw[at..]);
    Some(result)
}

/// Hints for unlabelled text: the sender's TLD and every charset the mail declares
/// (parts' `charset=` first, then encoded words' charsets in the headers).
fn mail_hints(msg: &Message<'_>, raw: &[u8]) -> Hints {
    const MAX_PARTS: usize = 500;
    let mut hints = Hints::default();
    let Some(root) = msg.parts.first() else {
        return hints;
    };
    let raw_header = |name: HeaderName<'static>| {
        root.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
    };
    for name in [HeaderName::From, HeaderName::Sender, HeaderName::ReturnPath] {
        if let Some(v) = raw_header(name) {
            hints.set_tld_from(&String::from_utf8_lossy(v));
            if hints.tld.is_some() {
                break;
            }
        }
    }
    for part in msg.parts.iter().take(MAX_PARTS) {
        if let Some(cs) = part.content_type().and_then(|c| c.attribute("charset")) {
            hints.declare(cs);
        }
    }
    let header_block = raw
        .get(root.offset_header as usize..root.offset_body as usize)
        .unwrap_or_default();
    for w in memchr::memmem::find_iter(header_block, b"=?").take(MAX_PARTS) {
        let rest = &header_block[w + 2..];
        if let Some(q) = rest.iter().take(40).position(|&b| b == b'?') {
            hints.declare(&String::from_utf8_lossy(&rest[..q]));
        }
    }
    hints
}

/// A text part's body. mail-parser's decoding stands unless the part has no charset, a
/// charset it does not know, or bytes invalid in the declared one (it then reads UTF-8
/// and writes U+FFFD): those parts are decoded again from their bytes with `charset`.
fn part_text<'a>(
    raw: &[u8],
    part: &'a MessagePart<'_>,
    hints: &Hints,
    detected: &mut Option<&'static str>,
) -> Cow<'a, str> {
    let (PartType::Text(parsed) | PartType::Html(parsed)) = &part.body else {
        return Cow::Borrowed("");
    };
    let label = part.content_type().and_then(|c| c.attribute("charset"));
    let suspect = has_replacement_char(parsed) || label.is_none_or(|l| !known_charset(l));
    if !suspect || parsed.is_ascii() && label.is_none() {
        return Cow::Borrowed(parsed.as_ref());
    }
    let Some(bytes) = part_bytes(raw, part) else {
        return Cow::Borrowed(parsed.as_ref());
    };
    if bytes.is_ascii() {
        return Cow::Borrowed(parsed.as_ref());
    }
    let (text, name, how) = charset::decode(&bytes, label, hints);
    match how {
        // mail-parser read it the same way (and its transfer decoding stands).
        Decided::Utf8 => Cow::Borrowed(parsed.as_ref()),
        Decided::Label if label.is_some_and(known_charset) => Cow::Borrowed(parsed.as_ref()),
        Decided::Label => Cow::Owned(text),
        Decided::Detected | Decided::DeclaredElsewhere => {
            detected.get_or_insert(name);
            Cow::Owned(text)
        }
    }
}

/// Whether `text` has U+FFFD, the mark of bytes a decoder could not read (searched
/// as bytes: `str::contains` with a non-ASCII char is several times slower on bodies).
fn has_replacement_char(text: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), "\u{FFFD}".as_bytes()).is_some()
}

/// A part's body bytes with the transfer encoding undone.
fn part_bytes(raw: &[u8], part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let body = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        mail_parser::Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        _ => Some(body.to_vec()),
    }
}

/// No header at all: keep whatever text there is.
fn headerless(raw: &[u8]) -> ParsedMail {
    let mut out = ParsedMail::default();
    out.structure.content_type = "text/plain".into();
    let (text, name, how) = charset::decode(raw, None, &Hints::default());
    if how == Decided::Detected {
        out.detected_charset = Some(name.to_string());
    }
    out.text = normalize_newlines(&text).trim().to_string();
    if has_replacement_char(&out.text) {
        out.warnings
            .push("body text had invalid byte sequences (replaced)".into());
    }
    out.warnings.push(
        if raw.is_empty() {
            "empty message"
        } else {
            "no header found: not a mail message"
        }
        .into(),
    );
    out.warnings
        .push("no sender: no header found (not a mail message)".into());
    if out.text.is_empty() {
        out.warnings.push("empty body".into());
    }
    out
}

fn push_warning(out: &mut ParsedMail, w: String) {
    if out.warnings.len() < MAX_WARNINGS && !out.warnings.contains(&w) {
        out.warnings.push(w);
    }
}

fn body_parts<'a, 'x>(
    msg: &'a Message<'x>,
    ids: &'a [u32],
) -> impl Iterator<Item = &'a MessagePart<'x>> {
    ids.iter().filter_map(|&id| msg.parts.get(id as usize))
}

// ---------------------------------------------------------------- headers

fn read_headers(out: &mut ParsedMail, raw: &[u8], root: &MessagePart<'_>, hints: &Hints) {
    for h in &root.headers {
        let value = raw
            .get(h.offset_start as usize..h.offset_end as usize)
            .map(|v| normalize_subject(&header::decode_raw_value(v, hints)))
            .unwrap_or_default();
        out.headers.push((h.name.as_str().to_string(), value));
    }
}

/// RFC 2047-decodes and unfolds a raw header value (no hints: raw 8-bit bytes are detected).
pub fn decode_header_value(raw: &[u8]) -> String {
    header::decode_raw_value(raw, &Hints::default())
        .trim()
        .to_string()
}

fn read_envelope(out: &mut ParsedMail, msg: &Message<'_>, raw: &[u8]) {
    let root = &msg.parts[0];
    let value = |name: HeaderName<'static>| {
        root.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    };

    out.message_id = out
        .header("Message-ID")
        .map(ids_in)
        .and_then(|ids| ids.into_iter().next());
    out.in_reply_to = out.header("In-Reply-To").map(ids_in).unwrap_or_default();
    out.references = out.header("References").map(ids_in).unwrap_or_default();
    out.subject = normalize_subject(out.header("Subject").unwrap_or(""));
    out.reply_to = msg.reply_to().and_then(|a| a.iter().find_map(to_address));
    out.return_path = out.header("Return-Path").map(parse_return_path);
    read_sender(out, msg, raw);
    out.to = msg
        .all_to()
        .flat_map(|a| a.iter().filter_map(to_address))
        .collect();
    out.cc = msg
        .all_cc()
        .flat_map(|a| a.iter().filter_map(to_address))
        .collect();
    out.bcc = msg
        .all_bcc()
        .flat_map(|a| a.iter().filter_map(to_address))
        .collect();

    match value(HeaderName::Date) {
        None => out.warnings.push("no Date header".into()),
        Some(HeaderValue::DateTime(dt)) if dt.is_valid() => out.date = Some(dt.to_timestamp()),
        Some(_) => {
            let raw = out
                .header("Date")
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>();
            out.warnings
                .push(format!("unparsable Date header: {raw:?}"));
        }
    }
    if out.subject.contains("=?") && out.subject.contains("?=") {
        out.warnings
            .push("Subject has undecodable encoded-words (unknown charset?)".into());
    }
}

/// The sender: From; when it has no usable address, an address written in its display
/// name, then Sender, Reply-To and Return-Path (not the null path). Which one was used
/// is recorded; without any, a warning beginning "no sender" says why.
fn read_sender(out: &mut ParsedMail, msg: &Message<'_>, raw: &[u8]) {
    let root = &msg.parts[0];
    let has = |name: HeaderName<'static>| root.headers.iter().any(|h| h.name == name);
    let first_address = |name: HeaderName<'static>| {
        root.headers
            .iter()
            .filter(|h| h.name == name)
            .find_map(|h| match &h.value {
                HeaderValue::Address(a) => a.iter().find_map(to_address),
                _ => None,
            })
    };
    let mut found = first_address(HeaderName::From).map(|a| (a, SenderSource::From));
    if found.is_none() && has(HeaderName::From) {
        // `"jo@example.com" <>`, `jo@example.com <>`: the address is in the display name.
        let raw_from = root
            .headers
            .iter()
            .find(|h| h.name == HeaderName::From)
            .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
            .map(|v| header::decode_raw_value(v, &Hints::default()))
            .unwrap_or_default();
        found = address_in_text(&raw_from).map(|a| (a, SenderSource::FromDisplayName));
    }
    if found.is_none() {
        found = first_address(HeaderName::Sender)
            .map(|a| (a, SenderSource::Sender))
            .or_else(|| out.reply_to.clone().map(|a| (a, SenderSource::ReplyTo)))
            .or_else(|| {
                out.return_path
                    .as_deref()
                    .and_then(clean_email)
                    .map(|email| (Address { name: None, email }, SenderSource::ReturnPath))
            });
    }
    match found {
        Some((address, source)) => {
            if source != SenderSource::From {
                out.warnings.push(format!(
                    "{}; sender taken from {}",
                    if has(HeaderName::From) {
                        "From header has no address"
                    } else {
                        "no From header"
                    },
                    source.as_str()
                ));
            }
            out.from = Some(address);
            out.sender_source = Some(source);
        }
        None => out.warnings.push(
            if has(HeaderName::From) {
                "no sender: the From header has no address, and there is no Sender, Reply-To or Return-Path"
            } else {
                "no sender: no From, Sender, Reply-To or Return-Path header"
            }
            .into(),
        ),
    }
}

/// The headers whose display names [`repair_display_names`] reads again.
const ADDRESS_HEADERS: [HeaderName<'static>; 6] = [
    HeaderName::From,
    HeaderName::Sender,
    HeaderName::ReplyTo,
    HeaderName::To,
    HeaderName::Cc,
    HeaderName::Bcc,
];

/// mail-parser decodes the encoded words of a display name one by one, so a character
/// split between two words turns into U+FFFD (`Ив��н`). Such a name is read again
/// from the raw header with [`header::decode_words`], which joins adjacent words in
/// one charset before decoding them. Names that decoded cleanly are left as they are.
fn repair_display_names(out: &mut ParsedMail, root: &MessagePart<'_>, raw: &[u8], hints: &Hints) {
    fn broken(a: &Address) -> bool {
        a.name.as_deref().is_some_and(|n| n.contains('\u{FFFD}'))
    }
    let addresses = || {
        out.from
            .iter()
            .chain(&out.reply_to)
            .chain(&out.to)
            .chain(&out.cc)
            .chain(&out.bcc)
    };
    if !addresses().any(broken) {
        return;
    }
    // Address key → the name the joining decoder reads; the first header that names an address wins.
    let mut names: HashMap<String, String> = HashMap::new();
    for h in root
        .headers
        .iter()
        .filter(|h| ADDRESS_HEADERS.contains(&h.name))
    {
        let Some(value) = raw.get(h.offset_start as usize..h.offset_end as usize) else {
            continue;
        };
        let list = header::unfold(&header::raw_to_text(value, hints));
        for (written, email) in named_addresses(&list) {
            let name = display_name(&header::decode_words(written, hints));
            if !name.is_empty() && !name.contains('\u{FFFD}') {
                let key = Address { name: None, email }.email_key();
                names.entry(key).or_insert(name);
            }
        }
    }
    let repair = |a: &mut Address| {
        if broken(a)
            && let Some(name) = names.get(&a.email_key())
        {
            a.name = Some(name.clone());
        }
    };
    out.from.iter_mut().for_each(repair);
    out.reply_to.iter_mut().for_each(repair);
    out.to.iter_mut().for_each(repair);
    out.cc.iter_mut().for_each(repair);
    out.bcc.iter_mut().for_each(repair);
}

/// `(display name as written, address)` for each `name <address>` of an address list
/// (unfolded, encoded words not yet decoded). A group's name (`Team: jo <jo@x>;`) is
/// not part of its members' names. An entry without angle brackets has no display
/// name to read (`jo@x (Jo)` keeps its comment for mail-parser).
fn named_addresses(list: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    let (mut quoted, mut escaped, mut comment) = (false, false, 0usize);
    let mut start = 0;
    let mut angle = None;
    for (i, c) in list.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        let top = !quoted && comment == 0;
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted => comment = comment.saturating_sub(1),
            '<' if top && angle.is_none() => angle = Some(i),
            '>' if top => {
                if let Some(at) = angle.take()
                    && let Some(email) = clean_email(&list[at + 1..i])
                {
                    found.push((&list[start..at], email));
                }
                start = i + 1;
            }
            ',' | ';' | ':' if top && angle.is_none() => start = i + 1,
            _ => {}
        }
    }
    found
}

/// A decoded display name as people read it: outer quotes and quoting backslashes
/// removed, whitespace normalised.
fn display_name(decoded: &str) -> String {
    let trimmed = decoded.trim();
    let inner = trimmed
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(trimmed);
    let mut name = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.extend(chars.next()),
            c => name.push(c),
        }
    }
    normalize_subject(&name)
}

/// The first `local@domain` word in a text (a display name that holds the address).
fn address_in_text(text: &str) -> Option<Address> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '<' | '>' | ',' | ';' | '(' | ')' | '\'')
    })
    .filter(|w| w.contains('@'))
    .find_map(clean_email)
    .map(|email| Address { name: None, email })
}

/// An address as mail writes it, cleaned: no whitespace or control characters (a space
/// inside the local part is a typo, not an address), no brackets, no trailing dot on the
/// domain. `None` unless it has a local part and a domain.
pub fn clean_email(raw: &str) -> Option<String> {
    let email: String = raw
        .trim()
        .trim_start_matches(['<', '"', '\''])
        .trim_end_matches(['>', '"', '\''])
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    let email = email.trim_end_matches('.');
    let (local, domain) = email.rsplit_once('@')?;
    let domain = domain.trim_matches('.');
    if local.is_empty() || domain.is_empty() || domain.contains(['@', '<', '>']) {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

fn to_address(a: &Addr<'_>) -> Option<Address> {
    let written = a.address.as_deref()?;
    // A bare word with no domain (`mailer-daemon`) is kept as written: classification reads it.
    let email = clean_email(written).or_else(|| {
        let w: String = written
            .trim()
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .collect();
        (!w.is_empty() && !w.contains('@')).then_some(w)
    })?;
    let name = a
        .name
        .as_deref()
        .map(normalize_subject)
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&email));
    Some(Address { name, email })
}

/// Ids from a Message-ID / In-Reply-To / References value, without brackets:
/// every `<…>`, plus bare `local@domain` words (broken clients); comments skipped.
pub fn ids_in(value: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut chars = value.chars();
    let mut bare = String::new();
    let flush = |bare: &mut String, ids: &mut Vec<String>| {
        let t = bare.trim_matches(|c: char| c == ',' || c == ';' || c == '"');
        if t.contains('@') && !ids.iter().any(|i| i == t) {
            ids.push(t.to_string());
        }
        bare.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                flush(&mut bare, &mut ids);
                let id: String = chars
                    .by_ref()
                    .take_while(|&c| c != '>')
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect();
                if !id.is_empty() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
            '(' => {
                flush(&mut bare, &mut ids);
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' if depth == 1 => break,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            c if c.is_whitespace() || c == ',' => flush(&mut bare, &mut ids),
            c if c.is_control() => {}
            c => bare.push(c),
        }
    }
    flush(&mut bare, &mut ids);
    ids
}

/// `<addr>` → `addr`, `<>` (or an empty value) → `""`.
fn parse_return_path(v: &str) -> String {
    let v = v.trim();
    let inner = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split_whitespace().next().unwrap_or(""),
    };
    inner.trim().to_string()
}

/// Whitespace (newlines, tabs, runs) folded to single spaces, control characters dropped, trimmed.
pub fn normalize_subject(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

fn normalize_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

// ---------------------------------------------------------------- structure

fn read_structure(out: &mut ParsedMail, root: &MessagePart<'_>) {
    let ct = root.content_type();
    out.structure = Structure {
        content_type: ct.map(mime_of).unwrap_or_else(|| "text/plain".into()),
        report_type: ct
            .filter(|c| {
                c.ctype().eq_ignore_ascii_case("multipart")
                    && c.subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            })
            .map(|c| {
                c.attribute("report-type")
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            }),
        embedded_message_id: None,
        embedded_subject: None,
    };
}

fn mime_of(ct: &mail_parser::ContentType<'_>) -> String {
    let t = ct.ctype().trim().to_ascii_lowercase();
    match ct.subtype() {
        Some(s) => format!("{t}/{}", s.trim().to_ascii_lowercase()),
        None if t == "text" => "text/plain".into(),
        None if t == "multipart" => "multipart/mixed".into(),
        None => format!("{t}/octet-stream"),
    }
}

const UTF8_ALIASES: &[&str] = &[
    "utf8",
    "unicode11utf8",
    "unicode20utf8",
    "xunicode20utf8",
    "unicode11utf8",
];

fn known_charset(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    UTF8_ALIASES.contains(&squashed.as_str()) || charset_decoder(name.trim().as_bytes()).is_some()
}

/// Encoding problems, unknown charsets, multiparts without or with a missing end boundary.
fn check_parts(msg: &Message<'_>, warnings: &mut Vec<String>) {
    // Each check scans the multipart's bytes: bound the work for mails with thousands of them.
    const MAX_BOUNDARY_CHECKS: usize = 20;
    let mut checked = 0;
    for (i, part) in msg.parts.iter().enumerate() {
        let ct = part.content_type();
        let mime = ct.map(mime_of).unwrap_or_else(|| "text/plain".into());
        if part.is_encoding_problem {
            warnings.push(format!("encoding problem in MIME part {i} ({mime})"));
        }
        if let Some(cs) = ct.and_then(|c| c.attribute("charset"))
            && matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && !known_charset(cs)
        {
            let cs: String = cs.chars().take(40).collect();
            warnings.push(format!(
                "unknown charset {cs:?} in MIME part {i}; read as UTF-8"
            ));
        }
        if mime.starts_with("multipart/") {
            match ct.and_then(|c| c.attribute("boundary")) {
                None => warnings.push(format!("{mime} without boundary in MIME part {i}")),
                Some(b) => {
                    let mut closing = b"--".to_vec();
                    closing.extend_from_slice(b.as_bytes());
                    closing.extend_from_slice(b"--");
                    let end = (part.offset_end as usize).min(msg.raw_message.len());
                    let hay = msg
                        .raw_message
                        .get(part.offset_body as usize..end)
                        .unwrap_or_default();
                    checked += 1;
                    if checked <= MAX_BOUNDARY_CHECKS && !contains(hay, &closing) {
                        warnings.push(format!(
                            "truncated multipart: no closing boundary for MIME part {i}"
                        ));
                    }
                }
            }
        }
    }
}

/// The closing boundary sits at the end of its part, so search backwards.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::rfind(hay, needle).is_some()
}

// ---------------------------------------------------------------- attachments

#[derive(Default)]
struct TnefBodies {
    html: Option<String>,
    text: Option<String>,
    rtf: Option<Vec<u8>>,
}

/// What naming and decoding a part needs besides the part.
struct PartContext<'a, 'x> {
    msg: &'a Message<'x>,
    /// The bytes the part offsets refer to.
    raw: &'a [u8],
    hints: &'a Hints,
}

/// The name a sender gave a part, decoded, from the first of: Content-Disposition
/// `filename*`/`filename`, Content-Type `name*`/`name`, Content-Location (its last path
/// segment), Content-Description. Read from the raw header so that RFC 2231
/// continuations and split encoded words are joined before decoding.
fn part_name(ctx: &PartContext<'_, '_>, part: &MessagePart<'_>) -> Option<String> {
    let raw_value = |name: HeaderName<'static>| {
        part.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| ctx.raw.get(h.offset_start as usize..h.offset_end as usize))
            .map(|v| header::unfold(&header::raw_to_text(v, ctx.hints)))
    };
    let param = |header_name: HeaderName<'static>, param: &str| {
        raw_value(header_name).and_then(|v| {
            header::parameters(&v, ctx.hints)
                .into_iter()
                .find(|(n, _)| n == param)
                .map(|(_, v)| v)
        })
    };
    let clean = |n: String| Some(normalize_subject(&n)).filter(|n| !n.is_empty());
    param(HeaderName::ContentDisposition, "filename")
        .and_then(clean)
        .or_else(|| param(HeaderName::ContentType, "name").and_then(clean))
        .or_else(|| {
            raw_value(HeaderName::ContentLocation).and_then(|v| {
                let v = header::decode_words(v.trim(), ctx.hints);
                let path = v.split(['?', '#']).next().unwrap_or("");
                let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                // `cid:…` and a bare host name are not file names.
                (!last.is_empty() && !v.starts_with("cid:") && last.contains('.'))
                    .then(|| percent_decode_lossy(last))
                    .and_then(clean)
            })
        })
        .or_else(|| {
            raw_value(HeaderName::ContentDescription)
                .map(|v| header::decode_words(&v, ctx.hints))
                .and_then(clean)
        })
        .or_else(|| part.attachment_name().map(str::to_string).and_then(clean))
}

fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// The name for a part that has none: its kind and its position among the unnamed
/// parts, as mail clients save them (`image001.png`, `attachment002.pdf`).
fn generated_name(mime: &str, position: usize) -> String {
    let stem = match mime.split('/').next().unwrap_or("") {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        "text" => "text",
        "message" => "message",
        _ => "attachment",
    };
    format!("{stem}{position:03}.{}", extension_for(mime))
}

fn add_attachment(
    out: &mut ParsedMail,
    ctx: &PartContext<'_, '_>,
    part: &MessagePart<'_>,
    unnamed: &mut usize,
    tnef_bodies: &mut TnefBodies,
    warnings: &mut Vec<String>,
) {
    let msg = ctx.msg;
    let ct = part.content_type();
    let mut mime = ct.map(mime_of).unwrap_or_else(|| match part.body {
        PartType::Html(_) => "text/html".into(),
        PartType::Text(_) => "text/plain".into(),
        PartType::Message(_) => "message/rfc822".into(),
        _ => "application/octet-stream".into(),
    });
    // Undo `defuse_deep_nesting` for the type shown to users.
    match mime.as_str() {
        "message/xfc822" => mime = "message/rfc822".into(),
        "message/xlobal" => mime = "message/global".into(),
        _ => {}
    }
    let original_name = part_name(ctx, part);
    let content_id = part
        .content_id()
        .map(|c| {
            c.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|c| !c.is_empty());
    let disposition = part.content_disposition();
    let is_attachment_disp = disposition.is_some_and(|d| d.is_attachment());
    let is_inline_disp = disposition.is_some_and(|d| d.is_inline());

    let data: Vec<u8> = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        PartType::Message(nested) => {
            mime = if mime.starts_with("message/") {
                mime
            } else {
                "message/rfc822".into()
            };
            let (id, subject) = id_and_subject(nested);
            record_embedded(out, id, subject);
            nested_raw(msg, part, nested).to_vec()
        }
        PartType::Multipart(_) => return,
    };

    if matches!(
        mime.as_str(),
        "text/rfc822-headers" | "message/rfc822-headers"
    ) && let Some(h) = MessageParser::default().parse_headers(&data)
    {
        let (id, subject) = id_and_subject(&h);
        record_embedded(out, id, subject);
    }

    let is_tnef = matches!(
        mime.as_str(),
        "application/ms-tnef" | "application/vnd.ms-tnef"
    ) || original_name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"));
    if is_tnef && unpack_tnef(out, &data, tnef_bodies, warnings) {
        return;
    }

    let inline = !is_attachment_disp
        && (matches!(part.body, PartType::InlineBinary(_))
            || is_inline_disp
            || (content_id.is_some() && mime.starts_with("image/")));

    // A forwarded mail is named after its Subject.
    let message_name = match (&original_name, &part.body) {
        (None, PartType::Message(nested)) => id_and_subject(nested)
            .1
            .map(normalize_subject)
            .filter(|s| !s.is_empty())
            .map(|s| format!("{s}.eml")),
        _ => None,
    };
    let original_name = original_name.or(message_name);
    let fallback_name = original_name.is_none().then(|| {
        *unnamed += 1;
        generated_name(&mime, *unnamed)
    });
    let is_message =
        matches!(part.body, PartType::Message(_)) || mime.starts_with("message/rfc822");
    let mut a = make_attachment(original_name, mime, content_id, inline, data);
    if let Some(f) = fallback_name {
        a.safe_name = safe_name(Some(&f), &a.mime_type);
    }
    // A nested message is always saved as `*.eml`.
    if is_message && !a.safe_name.to_ascii_lowercase().ends_with(".eml") {
        let stem = a.safe_name.clone();
        a.safe_name = truncate_name(&format!("{stem}.eml"), MAX_NAME_BYTES);
    }
    out.attachments.push(a);
}

/// Bytes of a nested message: its span in the parent for an unencoded part, else the decoded bytes.
fn nested_raw<'a>(
    msg: &'a Message<'_>,
    part: &MessagePart<'_>,
    nested: &'a Message<'_>,
) -> &'a [u8] {
    if part.encoding == mail_parser::Encoding::None
        && let Some(span) = msg
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize)
        && !span.is_empty()
    {
        return span;
    }
    &nested.raw_message
}

/// Message-ID and Subject of a nested message (mail-parser's accessors index `parts[0]`).
fn id_and_subject<'a>(m: &'a Message<'_>) -> (Option<&'a str>, Option<&'a str>) {
    if m.parts.is_empty() {
        return (None, None);
    }
    (m.message_id(), m.subject())
}

fn record_embedded(out: &mut ParsedMail, message_id: Option<&str>, subject: Option<&str>) {
    if out.structure.embedded_message_id.is_some() {
        return;
    }
    let id = message_id
        .map(|m| {
            m.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_string()
        })
        .filter(|m| !m.is_empty());
    if id.is_some() {
        out.structure.embedded_message_id = id;
        out.structure.embedded_subject = subject.map(normalize_subject);
    } else if out.structure.embedded_subject.is_none() {
        out.structure.embedded_subject = subject.map(normalize_subject).filter(|s| !s.is_empty());
    }
}

/// Replaces a winmail.dat by its files. False if it must be kept (not TNEF / damaged).
fn unpack_tnef(
    out: &mut ParsedMail,
    data: &[u8],
    bodies: &mut TnefBodies,
    warnings: &mut Vec<String>,
) -> bool {
    let t = match tnef::decode(data) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!("winmail.dat kept as is: {e}"));
            return false;
        }
    };
    for a in &t.attachments {
        let mime = a
            .mime_type
            .clone()
            .filter(|m| m.contains('/') && !m.contains(char::is_whitespace))
            .unwrap_or_else(|| mime_from_name(a.name.as_deref().unwrap_or("")).to_string());
        out.attachments.push(make_attachment(
            a.name.clone(),
            mime,
            a.content_id.clone(),
            false,
            a.data.clone(),
        ));
    }
    if t.damaged {
        let detail = t.warnings.first().cloned().unwrap_or_default();
        warnings.push(format!(
            "winmail.dat is damaged ({detail}); kept whole, {} file(s) extracted",
            t.attachments.len()
        ));
        return false;
    }
    bodies.html = bodies.html.take().or(t.body_html);
    bodies.text = bodies.text.take().or(t.body_text);
    bodies.rtf = bodies.rtf.take().or(t.body_rtf);
    true
}

fn make_attachment(
    original_name: Option<String>,
    mime_type: String,
    content_id: Option<String>,
    inline: bool,
    data: Vec<u8>,
) -> Attachment {
    let safe_name = safe_name(original_name.as_deref(), &mime_type);
    Attachment {
        original_name,
        safe_name,
        mime_type,
        content_id,
        inline,
        sha256: hex::encode(Sha256::digest(&data)),
        data,
    }
}

// ---------------------------------------------------------------- bounces

static MESSAGE_ID_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?mi)^[ \t>]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?<?([^\s<>]+@[^\s<>]+)>?")
        .expect("valid regex")
});
static SUBJECT_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mi)^[ \t>]*Subject:[ \t]*([^\r\n]*)").expect("valid regex"));

/// Best effort for bounces that quote the original as plain text: the first
/// `Message-ID:` header line in the body that is not the bounce's own.
fn scan_for_original(out: &mut ParsedMail, body: &[u8]) {
    let body = &body[..body.len().min(SCAN_LIMIT)];
    let text = String::from_utf8_lossy(body);
    let own = out.message_id.clone().unwrap_or_default();
    for caps in MESSAGE_ID_LINE.captures_iter(&text) {
        let id = caps[1].trim_end_matches(['.', ',', ';']).to_string();
        if id == own {
            continue;
        }
        let at = caps.get(0).map_or(0, |m| m.start());
        let subject = header_block_subject(&text, at);
        out.structure.embedded_message_id = Some(id);
        if out.structure.embedded_subject.is_none() {
            out.structure.embedded_subject = subject;
        }
        return;
    }
}

/// The Subject line of the header block (no blank line in between) around `at`.
fn header_block_subject(text: &str, at: usize) -> Option<String> {
    // A blank line is "\n\n" or "\r\n\r\n" (mixed line ends happen): nearest of either.
    let before = &text[..at];
    let start = [before.rfind("\n\n"), before.rfind("\n\r\n")]
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |p| p + 1);
    let after = &text[at..];
    let end = [after.find("\n\n"), after.find("\n\r\n")]
        .into_iter()
        .flatten()
        .min()
        .map_or(text.len(), |p| at + p);
    let block = &text[start..end];
    SUBJECT_LINE
        .captures(block)
        .map(|c| normalize_subject(&c[1]))
        .filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------- names

/// A file name safe on any file system and in a Content-Disposition header:
/// last path component only, no control or reserved characters, no leading dots,
/// no Windows device names, at most [`MAX_NAME_BYTES`] bytes (the extension is
/// kept when it is short), never empty (`attachment.<ext>` from the MIME type).
pub fn safe_name(original: Option<&str>, mime_type: &str) -> String {
    let name = original.unwrap_or("");
    // Last path component, with either separator.
    let name = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut s: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' | ';' => '_',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    s = normalize_subject(&s);
    // No leading dots (hidden files, `..`), no trailing dots or spaces (Windows).
    let s = s
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_string();
    if s.is_empty() {
        return format!("attachment.{}", extension_for(mime_type));
    }
    let s = if is_reserved_device_name(&s) {
        format!("_{s}")
    } else {
        s
    };
    truncate_name(&s, MAX_NAME_BYTES)
}

/// Bidi overrides and zero-width characters that disguise extensions.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn is_reserved_device_name(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit())
}

fn truncate_name(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(p)
            if p > 0
                && name.len() - p <= 16
                && name[p + 1..].chars().all(|c| c.is_alphanumeric()) =>
        {
            (&name[..p], &name[p..])
        }
        _ => (name, ""),
    };
    let budget = max.saturating_sub(ext.len());
    let mut cut = budget.min(stem.len());
    while cut > 0 && !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches(['.', ' ']);
    let stem = if stem.is_empty() { "attachment" } else { stem };
    format!("{stem}{ext}")
}

/// File extension for a MIME type (without dot).
pub fn extension_for(mime: &str) -> Cow<'static, str> {
    let mime = mime.trim().to_ascii_lowercase();
    let ext = match mime.as_str() {
        "text/plain"
        | "message/delivery-status"
        | "text/rfc822-headers"
        | "message/disposition-notification"
        | "message/feedback-report" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "text/csv" => "csv",
        "text/xml" | "application/xml" => "xml",
        "text/rtf" | "application/rtf" => "rtf",
        "message/rfc822" | "message/global" => "eml",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "image/tiff" => "tif",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/json" => "json",
        "application/ms-tnef" | "application/vnd.ms-tnef" => "dat",
        "application/pgp-signature" => "asc",
        "application/pkcs7-signature" | "application/x-pkcs7-signature" => "p7s",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" => "wav",
        "video/mp4" => "mp4",
        _ => {
            let sub = mime.split('/').nth(1).unwrap_or("");
            let sub = sub.strip_prefix("x-").unwrap_or(sub);
            if !sub.is_empty() && sub.len() <= 8 && sub.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Cow::Owned(sub.to_string());
            }
            "bin"
        }
    };
    Cow::Borrowed(ext)
}

/// MIME type guessed from a file name's extension (for winmail.dat contents).
pub fn mime_from_name(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "ini" | "cfg" | "bat" | "sys" => "text/plain",
        "htm" | "html" => "text/html",
        "rtf" => "application/rtf",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "ics" => "text/calendar",
        "eml" => "message/rfc822",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "webp" => "image/webp",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}
