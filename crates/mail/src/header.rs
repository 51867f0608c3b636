//! Header values as people wrote them: RFC 2047 encoded words, RFC 2231 parameters,
//! raw 8-bit bytes.
//!
//! mail-parser decodes each encoded word on its own; a multibyte character split
//! between two words (a long Cyrillic subject, `ß` at a word boundary) then turns into
//! two U+FFFD. Here adjacent encoded words in the same charset are joined as bytes
//! before decoding, and the same for RFC 2231 continuations (`filename*0*=`,
//! `filename*1*=`). Tolerated, as mail clients do: lowercase `q`/`b`, encoded words
//! with no space around them or inside quoted strings, whitespace inside a word,
//! missing base64 padding. An unknown charset goes to detection (never deleted).
//!
//! Work is linear: an encoded word is looked for within [`MAX_WORD`] bytes of its `=?`.

use crate::charset::{self, Hints};

/// Longest encoded word looked for (RFC 2047 says 75; real mail goes beyond).
pub const MAX_WORD: usize = 4096;

/// One `=?charset?enc?text?=` found in a string.
struct Word<'a> {
    charset: &'a str,
    bytes: Vec<u8>,
    /// Byte range in the input.
    end: usize,
}

fn parse_word(s: &str, start: usize) -> Option<Word<'_>> {
    let rest = s.get(start..)?.strip_prefix("=?")?;
    let window = &rest[..floor_char_boundary(rest, MAX_WORD)];
    let q1 = window.find('?')?;
    let charset = &window[..q1];
    if charset.is_empty() || charset.contains(|c: char| c.is_whitespace() || c == '=') {
        return None;
    }
    let enc = window.get(q1 + 1..q1 + 2)?;
    if window.get(q1 + 2..q1 + 3)? != "?" {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = window.get(text_start..)?.find("?=")?;
    let text = &window[text_start..text_start + text_len];
    let bytes = match enc {
        "b" | "B" => base64_tolerant(text.as_bytes()),
        "q" | "Q" => q_decode(text.as_bytes()),
        _ => return None,
    };
    Some(Word {
        charset,
        bytes,
        end: start + 2 + text_start + text_len + 2,
    })
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Decodes the encoded words in an (unfolded) header text.
pub fn decode_words(s: &str, hints: &Hints) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Bytes of a run of encoded words in one charset, not yet decoded.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let flush = |pending: &mut Option<(String, Vec<u8>)>, out: &mut String| {
        if let Some((cs, bytes)) = pending.take() {
            out.push_str(&charset::decode(&bytes, Some(&cs), hints).0);
        }
    };
    while i < s.len() {
        let Some(off) = s[i..].find("=?") else {
            flush(&mut pending, &mut out);
            out.push_str(&s[i..]);
            break;
        };
        let at = i + off;
        let Some(word) = parse_word(s, at) else {
            flush(&mut pending, &mut out);
            out.push_str(&s[i..at + 2]);
            i = at + 2;
            continue;
        };
        let between = &s[i..at];
        // Whitespace between two encoded words is not text (RFC 2047 §6.2).
        let joins = pending.is_some() && between.chars().all(char::is_whitespace);
        if !joins {
            flush(&mut pending, &mut out);
            out.push_str(between);
        }
        let cs = word.charset.to_string();
        match &mut pending {
            Some((pcs, bytes)) if pcs.eq_ignore_ascii_case(&cs) => bytes.extend(word.bytes),
            _ => {
                flush(&mut pending, &mut out);
                pending = Some((cs, word.bytes));
            }
        }
        i = word.end;
    }
    flush(&mut pending, &mut out);
    out
}

/// A raw header value (as bytes in the mail): unfolded, raw 8-bit bytes decoded
/// with the hints, encoded words decoded. Not whitespace-normalised.
pub fn decode_raw_value(raw: &[u8], hints: &Hints) -> String {
    match std::str::from_utf8(raw) {
        // Most headers (Received, Date, Message-ID…) have nothing to decode.
        Ok(text) if memchr::memmem::find(raw, b"=?").is_none() => unfold(text),
        _ => decode_words(&unfold(&raw_to_text(raw, hints)), hints),
    }
}

/// Raw header bytes as text: UTF-8 if valid, else decoded with the hints (declared charset, detection).
pub fn raw_to_text(raw: &[u8], hints: &Hints) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let (e, _) = charset::choose(raw, hints);
            e.decode_without_bom_handling(raw).0.into_owned()
        }
    }
}

/// Folding removed: CR and LF dropped (the whitespace that follows stays).
pub fn unfold(s: &str) -> String {
    s.replace(['\r', '\n'], "")
}

/// Tolerant base64: whitespace and stray characters skipped, padding optional.
pub fn base64_tolerant(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out
}

/// RFC 2047 Q: `_` is a space, `=XX` a byte; a broken `=` stays as it is.
fn q_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let Some(b) = input.get(i + 1..i + 3).and_then(hex_byte) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(two).ok()?;
    u8::from_str_radix(s, 16).ok()
}

fn percent_decode(input: &str) -> Vec<u8> {
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Parameters of a Content-Type or Content-Disposition value (already unfolded text),
/// with RFC 2231 continuations joined and decoded and RFC 2047 words decoded.
/// Names are lower-case; the first occurrence of a name wins.
pub fn parameters(value: &str, hints: &Hints) -> Vec<(String, String)> {
    let mut segments: Vec<(String, Vec<Segment>)> = Vec::new();
    for (name, raw_value, quoted) in split_params(value) {
        let (base, index, extended) = split_param_name(&name);
        let entry = match segments.iter_mut().find(|(n, _)| *n == base) {
            Some(e) => e,
            None => {
                segments.push((base.clone(), Vec::new()));
                segments.last_mut().expect("just pushed")
            }
        };
        // A quoted value is never percent-encoded, whatever the name says.
        let extended = extended && !quoted;
        match entry.1.iter_mut().find(|(i, _, _)| *i == index) {
            // `filename*` is preferred over a plain `filename` given as well (RFC 2231 §4.1).
            Some(seg) if extended && !seg.1 => *seg = (index, extended, raw_value),
            Some(_) => {}
            None => entry.1.push((index, extended, raw_value)),
        }
    }
    let mut out = Vec::new();
    for (name, mut segs) in segments {
        segs.sort_by_key(|(i, _, _)| *i);
        let mut label: Option<String> = None;
        let mut bytes = Vec::new();
        for (n, (_, extended, v)) in segs.iter().enumerate() {
            if *extended {
                let mut v = v.as_str();
                if n == 0 {
                    // charset'language'value
                    let mut parts = v.splitn(3, '\'');
                    if let (Some(cs), Some(_lang), Some(rest)) =
                        (parts.next(), parts.next(), parts.next())
                    {
                        label = Some(cs.to_string()).filter(|c| !c.is_empty());
                        v = rest;
                    }
                }
                bytes.extend(percent_decode(v));
            } else {
                bytes.extend_from_slice(v.as_bytes());
            }
        }
        let text = match &label {
            Some(l) => charset::decode(&bytes, Some(l), hints).0,
            None => String::from_utf8(bytes)
                .unwrap_or_else(|e| charset::decode(e.as_bytes(), None, hints).0),
        };
        // Mixed RFC 2231 and RFC 2047 (Outlook, Thunderbird of old): decode the words too.
        let text = if text.contains("=?") {
            decode_words(&text, hints)
        } else {
            text
        };
        out.push((name, text));
    }
    out
}

/// One piece of a parameter value: (continuation index, percent-encoded?, raw value).
type Segment = (usize, bool, String);

/// `filename*1*` → (`filename`, 1, true); `name*` → (`name`, 0, true).
fn split_param_name(name: &str) -> (String, usize, bool) {
    let lower = name.trim().to_ascii_lowercase();
    let extended = lower.ends_with('*');
    let stem = lower.trim_end_matches('*');
    match stem.rsplit_once('*') {
        Some((base, idx)) if idx.chars().all(|c| c.is_ascii_digit()) && !idx.is_empty() => (
            base.to_string(),
            idx.parse().unwrap_or(usize::MAX),
            extended,
        ),
        _ => (stem.to_string(), 0, extended),
    }
}

/// At most this many parameters (continuations included) are read from one header.
pub const MAX_PARAMS: usize = 256;

/// `; name=value` pairs after the first `;` (value unquoted; quoted flag).
fn split_params(value: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut chars = value.char_indices().peekable();
    // Skip the type (`attachment`, `text/plain`).
    for (_, c) in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    // Real mail has a handful; a flood of continuations must not cost quadratic time.
    while out.len() < MAX_PARAMS {
        let mut name = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let Some((_, sep)) = chars.next() else {
            break;
        };
        if sep == ';' {
            continue;
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut v = String::new();
        let mut quoted = false;
        if chars.peek().is_some_and(|(_, c)| *c == '"') {
            quoted = true;
            chars.next();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => break,
                    c => v.push(c),
                }
            }
            for (_, c) in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for (_, c) in chars.by_ref() {
                if c == ';' {
                    break;
                }
                v.push(c);
            }
            v = v.trim().to_string();
        }
        let name = name.trim().to_string();
        if !name.is_empty() {
            out.push((name, v, quoted));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> String {
        decode_words(s, &Hints::default())
    }

    #[test]
    fn adjacent_words_are_joined_before_decoding() {
        // "Привет мир" with "е" split between the two words.
        assert_eq!(
            words("=?utf-8?B?0J/RgNC40LLQ?= =?utf-8?B?tdGCINC80LjRgA==?="),
            "Привет мир"
        );
        assert_eq!(words("=?UTF-8?Q?Stra=C3?=\r\n =?UTF-8?Q?=9Fe?="), "Straße");
    }

    #[test]
    fn tolerated_forms() {
        assert_eq!(words("a=?utf-8?q?b?=c"), "abc");
        assert_eq!(words("=?utf-8?q?hello world?="), "hello world");
        assert_eq!(words("=?utf-8?b?w5xiZXI?="), "Über");
        assert_eq!(
            words("\"=?iso-8859-1?q?J=F6rg?=\" <j@b.de>"),
            "\"Jörg\" <j@b.de>"
        );
        assert_eq!(words("=?unicode-1-1-utf-7?Q?+AOQ-rger?="), "ärger");
        assert_eq!(words("=?x-unknown?Q?caf=C3=A9?="), "café");
        assert_eq!(words("=?cp-850?Q?caf=82?="), "café");
        assert_eq!(words("=?utf-8?q?a?= b =?utf-8?q?c?="), "a b c");
        assert_eq!(words("no =? word ?= here"), "no =? word ?= here");
    }

    #[test]
    fn rfc2231_continuations_any_charset_and_mixed_with_2047() {
        let p = |v: &str| parameters(v, &Hints::default());
        assert_eq!(
            p("attachment; filename*0*=utf-8''Stra%C3; filename*1*=%9Fe.txt"),
            vec![("filename".to_string(), "Straße.txt".to_string())]
        );
        assert_eq!(
            p("attachment; filename*0*=iso-2022-jp''%1B%24B%24%22%1B%28B; filename*1=.txt")[0].1,
            "あ.txt"
        );
        assert_eq!(
            p("attachment; filename=\"=?utf-8?B?w5xiZXIucGRm?=\"")[0].1,
            "Über.pdf"
        );
        assert_eq!(
            p("attachment; filename*=iso-8859-1'de'Gr%FC%DFe%20a%3Bb.txt")[0].1,
            "Grüße a;b.txt"
        );
        assert_eq!(
            p("text/plain; name=\"a \\\"q\\\" b.txt\"; charset=utf-8"),
            vec![
                ("name".to_string(), "a \"q\" b.txt".to_string()),
                ("charset".to_string(), "utf-8".to_string())
            ]
        );
    }
}
