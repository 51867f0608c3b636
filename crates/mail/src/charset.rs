//! Which character encoding 8-bit text is in, when its label is missing, unknown or wrong.
//!
//! Rules, in order:
//! 1. Text that is valid UTF-8 is UTF-8 (pure ASCII included), whatever the label says
//!    about unlabelled bytes.
//! 2. A label is mapped through [`encoding_for_label`]: the WHATWG names of
//!    encoding_rs, which already read the labels that lie in practice the way mail
//!    means them (`gb2312` → GBK, `iso-8859-1` and `us-ascii` → windows-1252,
//!    `ks_c_5601-1987` → EUC-KR, `x-sjis` → Shift_JIS, `iso-8859-8-i` → ISO-8859-8),
//!    plus a few mail-only spellings (`cp-850`, `unicode-1-1-utf-7`, `x-mac-*`…).
//!    A `gb2312` label is read as GB18030, the superset that also decodes what GBK
//!    leaves out.
//! 3. Bytes with no usable label: the first charset the mail declares elsewhere (a
//!    part's `charset=`, an encoded word's charset) that decodes them without a
//!    single malformed sequence; else Firefox's detector (chardetng) guesses, told the
//!    sender's top-level domain.
//!
//! The detector's input is bounded ([`DETECT_LIMIT`]): the guess is made on a prefix.

use encoding_rs::{Encoding, GB18030, UTF_8};

/// The detector sees at most this many bytes.
pub const DETECT_LIMIT: usize = 64 * 1024;

/// What decided the encoding of some 8-bit text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The text's own label, used as written (after the usual aliasing).
    Label,
    /// Valid UTF-8 (or ASCII).
    Utf8,
    /// A charset declared elsewhere in the mail.
    DeclaredElsewhere,
    /// The detector's guess.
    Detected,
}

/// Hints for unlabelled text: the sender's top-level domain and the charsets the mail declares.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Lower-case ASCII top-level domain of the sender (`ru`, `jp`, `xn--p1ai`), if known.
    pub tld: Option<String>,
    /// Encodings named by the mail's own labels, in the order met; UTF-8 excluded.
    pub declared: Vec<&'static Encoding>,
}

impl Hints {
    /// Adds the encoding a label names (once; UTF-8 and UTF-16 are not useful hints).
    pub fn declare(&mut self, label: &str) {
        if let Some(Charset::Encoding(e)) = encoding_for_label(label)
            && e != UTF_8
            && e.is_ascii_compatible()
            && !self.declared.contains(&e)
        {
            self.declared.push(e);
        }
    }

    /// Takes the top-level domain from an address or a raw header value (`x@mail.example.ru>` → `ru`).
    pub fn set_tld_from(&mut self, address: &str) {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return;
        };
        let domain: String = domain
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        let tld = domain
            .trim_end_matches('.')
            .rsplit('.')
            .next()
            .unwrap_or("");
        // chardetng panics on a TLD with upper case, a dot or non-ASCII: only clean labels pass.
        if !tld.is_empty()
            && tld.len() <= 63
            && tld.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            self.tld = Some(tld.to_ascii_lowercase());
        }
    }
}

/// What a charset label stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Encoding(&'static Encoding),
    /// UTF-7 (RFC 2152), which encoding_rs does not implement.
    Utf7,
    /// IBM code page 850 (DOS Latin 1), which encoding_rs does not implement.
    Ibm850,
}

/// The charset a label names, with the aliases mail uses; `None` for an unknown label.
pub fn encoding_for_label(label: &str) -> Option<Charset> {
    // RFC 2231 allows a language suffix in encoded words: `utf-8*en`.
    let label = label
        .split('*')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    let lower = label.to_ascii_lowercase();
    let squashed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match squashed.as_str() {
        "utf7" | "unicode11utf7" | "unicode20utf7" | "xunicode20utf7" | "csunicode11utf7" => {
            return Some(Charset::Utf7);
        }
        "cp850" | "ibm850" | "850" | "cspc850multilingual" => return Some(Charset::Ibm850),
        "utf8" | "unicode11utf8" | "unicode20utf8" | "xunicode20utf8" | "utf8mb4" => {
            return Some(Charset::Encoding(UTF_8));
        }
        // The GB2312 label is used for GBK text, and GB18030 decodes all of it.
        "gb2312" | "csgb2312" | "gbk" | "cp936" | "xgbk" | "euccn" | "xeuccn" | "gb231280" => {
            return Some(Charset::Encoding(GB18030));
        }
        "ksc56011987" | "ksc5601" | "cp949" | "uhc" => {
            return Some(Charset::Encoding(encoding_rs::EUC_KR));
        }
        "xsjis" | "sjis" | "shiftjis" | "cp932" | "mskanji" | "windows31j" => {
            return Some(Charset::Encoding(encoding_rs::SHIFT_JIS));
        }
        "xmaccyrillic" | "maccyrillic" => {
            return Some(Charset::Encoding(encoding_rs::X_MAC_CYRILLIC));
        }
        "macintosh" | "xmacroman" | "macroman" => {
            return Some(Charset::Encoding(encoding_rs::MACINTOSH));
        }
        "ansix341968" | "usascii" | "ascii" | "us" | "iso646us" | "latin1" | "iso88591" => {
            return Some(Charset::Encoding(encoding_rs::WINDOWS_1252));
        }
        _ => {}
    }
    // `cp1251`, `win-1251`, `windows1251` → `windows-1251`.
    for prefix in ["cp", "win", "windows", "ms"] {
        if let Some(num) = squashed.strip_prefix(prefix)
            && num.len() == 4
            && num.starts_with("125")
            && let Some(e) = Encoding::for_label(format!("windows-{num}").as_bytes())
        {
            return Some(Charset::Encoding(e));
        }
    }
    if let Some(e) = Encoding::for_label(lower.as_bytes()) {
        // The "replacement" encoding decodes everything to U+FFFD: never what a mail means.
        return (e != encoding_rs::REPLACEMENT).then_some(Charset::Encoding(e));
    }
    // `iso8859-2`, `iso_8859_2`, `8859-2`.
    if let Some(num) = squashed
        .strip_prefix("iso8859")
        .or_else(|| squashed.strip_prefix("8859"))
        && let Some(e) = Encoding::for_label(format!("iso-8859-{num}").as_bytes())
    {
        return Some(Charset::Encoding(e));
    }
    None
}

/// Decodes bytes that carry `label` (if any). Returns the text and how it was decided;
/// an unknown or absent label, or a label the bytes are not valid in, goes to detection.
pub fn decode(bytes: &[u8], label: Option<&str>, hints: &Hints) -> (String, &'static str, Decided) {
    let charset = label.and_then(encoding_for_label);
    if let Some(c) = charset {
        match c {
            Charset::Utf7 => return (decode_utf7(bytes), "UTF-7", Decided::Label),
            Charset::Ibm850 => return (decode_ibm850(bytes), "IBM850", Decided::Label),
            Charset::Encoding(e) => {
                if let Some(text) = decode_clean(e, bytes) {
                    return (text, e.name(), Decided::Label);
                }
                // A label the bytes are not valid in (UTF-8 that is really Latin-1…):
                // detection below; the label's reading is the fallback.
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), UTF_8.name(), Decided::Utf8);
    }
    // Mostly UTF-8 with a few broken bytes (a cut multibyte character, garbage in a
    // part): reading it as anything else would garble all the good characters.
    // With a UTF-8 label a few good characters are enough; without one, legacy text
    // (GBK pairs) forms valid UTF-8 by accident too often, so most must be good.
    let labelled_utf8 = charset == Some(Charset::Encoding(UTF_8));
    if mostly_utf8(bytes, labelled_utf8) {
        let how = if labelled_utf8 {
            Decided::Label
        } else {
            Decided::Utf8
        };
        return (
            String::from_utf8_lossy(bytes).into_owned(),
            UTF_8.name(),
            how,
        );
    }
    let (e, how) = choose(bytes, hints);
    match decode_clean(e, bytes) {
        Some(text) => (text, e.name(), how),
        // The guess does not fit every byte (binary data, mixed encodings): windows-1252
        // reads any byte, so what can be read is not replaced.
        None => {
            let w = encoding_rs::WINDOWS_1252;
            (
                w.decode_without_bom_handling(bytes).0.into_owned(),
                w.name(),
                how,
            )
        }
    }
}

/// Valid multibyte UTF-8 characters, and for each at most four invalid bytes when
/// `lenient`, else at most half an invalid byte. Legacy text forms valid UTF-8
/// sequences only by accident (some GBK pairs do), far more rarely than that.
pub fn mostly_utf8(bytes: &[u8], lenient: bool) -> bool {
    let (mut good, mut bad) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        good += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        bad += chunk.invalid().len();
    }
    good > 0
        && if lenient {
            good * 4 >= bad
        } else {
            good >= bad * 2
        }
}

/// The encoding for unlabelled, non-UTF-8 bytes: a declared charset that fits, else the detector's guess.
pub fn choose(bytes: &[u8], hints: &Hints) -> (&'static Encoding, Decided) {
    for &e in &hints.declared {
        if decode_clean(e, bytes).is_some() && !implausible(e, bytes) {
            return (e, Decided::DeclaredElsewhere);
        }
    }
    (detect(bytes, hints.tld.as_deref()), Decided::Detected)
}

/// A single-byte charset "decodes" any bytes; it is not taken from a hint when the
/// bytes are clearly multi-byte text (the detector, given the bytes, says a CJK encoding).
fn implausible(e: &'static Encoding, bytes: &[u8]) -> bool {
    if !is_single_byte(e) {
        return false;
    }
    let guess = detect(bytes, None);
    !is_single_byte(guess) && decode_clean(guess, bytes).is_some()
}

fn is_single_byte(e: &'static Encoding) -> bool {
    !matches!(
        e.name(),
        "GBK" | "gb18030" | "Big5" | "Shift_JIS" | "EUC-JP" | "EUC-KR" | "ISO-2022-JP" | "UTF-8"
    ) && e.is_ascii_compatible()
}

/// chardetng's guess for non-UTF-8 bytes (UTF-8 is never guessed: valid UTF-8 was taken before).
pub fn detect(bytes: &[u8], tld: Option<&str>) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    let sample = &bytes[..bytes.len().min(DETECT_LIMIT)];
    detector.feed(sample, true);
    let tld = tld.filter(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    detector.guess(tld.map(str::as_bytes), chardetng::Utf8Detection::Deny)
}

/// The text if `bytes` is valid in `e` (no malformed sequence), else `None`.
pub fn decode_clean(e: &'static Encoding, bytes: &[u8]) -> Option<String> {
    let (text, had_errors) = e.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// RFC 2152 UTF-7: `+` starts modified base64 of UTF-16, `-` (or any non-base64 byte) ends it.
fn decode_utf7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'+' {
            out.push(if b.is_ascii() { b as char } else { '\u{FFFD}' });
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        while let Some(v) = bytes.get(i).and_then(|&c| base64_value(c)) {
            bits = (bits << 6) | u32::from(v);
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
            i += 1;
        }
        out.extend(char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')));
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    out
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// IBM code page 850, upper half (0x80–0xFF).
const IBM850_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{AD}±‗¾¶§÷¸°¨·¹³²■\u{A0}";

fn decode_ibm850(bytes: &[u8]) -> String {
    let high: Vec<char> = IBM850_HIGH.chars().collect();
    bytes
        .iter()
        .map(|&b| {
            if b < 0x80 {
                b as char
            } else {
                high.get(usize::from(b - 0x80))
                    .copied()
                    .unwrap_or('\u{FFFD}')
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lying_and_mail_only_labels() {
        let name = |l: &str| match encoding_for_label(l) {
            Some(Charset::Encoding(e)) => e.name().to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".into(),
        };
        assert_eq!(name("gb2312"), "gb18030");
        assert_eq!(name("ISO-8859-1"), "windows-1252");
        assert_eq!(name("us-ascii"), "windows-1252");
        assert_eq!(name("ks_c_5601-1987"), "EUC-KR");
        assert_eq!(name("x-sjis"), "Shift_JIS");
        assert_eq!(name("iso-8859-8-i"), "ISO-8859-8-I");
        assert_eq!(name("cp-850"), "Ibm850");
        assert_eq!(name("unicode-1-1-utf-7"), "Utf7");
        assert_eq!(name("win-1251"), "windows-1251");
        assert_eq!(name("utf-8*en"), "UTF-8");
        assert_eq!(name("x-bogus"), "unknown");
        assert_eq!(name("iso-2022-kr"), "unknown");
    }

    #[test]
    fn utf7_and_cp850() {
        assert_eq!(decode_utf7(b"+AOQ-rger 1 +- 1"), "ärger 1 + 1");
        assert_eq!(decode_ibm850(b"caf\x82 \x99"), "café Ö");
        assert_eq!(IBM850_HIGH.chars().count(), 128);
    }

    #[test]
    fn unlabelled_bytes_are_detected_with_the_tld_and_declared_hints() {
        // "Привет, как дела? Всё хорошо." in windows-1251 and KOI8-R.
        let text = "Привет, как дела? Всё хорошо, спасибо.";
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(text);
        let (koi8, _, _) = encoding_rs::KOI8_R.encode(text);
        let hints = Hints {
            tld: Some("ru".into()),
            ..Default::default()
        };
        assert_eq!(decode(&cp1251, None, &hints).0, text);
        assert_eq!(decode(&koi8, None, &hints).0, text);
        // A declared charset that fits wins over the guess.
        let mut declared = Hints::default();
        declared.declare("koi8-r");
        let (out, name, how) = decode(&koi8, None, &declared);
        assert_eq!(
            (out.as_str(), name, how),
            (text, "KOI8-R", Decided::DeclaredElsewhere)
        );
        // A label the bytes are invalid in goes to detection.
        let (out, _, how) = decode(&cp1251, Some("utf-8"), &hints);
        assert_eq!((out.as_str(), how), (text, Decided::Detected));
    }
}
