//! winmail.dat (TNEF) unpacking.
//!
//! TNEF ([MS-OXTNEF]) is a flat list of attributes after a 6-byte header
//! (signature `0x223E9F78`, legacy key u16). Each attribute is
//! `level u8, id u32, length u32, data, checksum u16`. `attAttachRendData`
//! starts a new attachment; `attAttachTitle` is its (8.3) name,
//! `attAttachData` its bytes and `attAttachment` a MAPI property list that may
//! hold the long file name (`PR_ATTACH_LONG_FILENAME`). The message-level MAPI
//! properties (`attMAPIProps`) carry the body as compressed RTF and/or HTML.
//!
//! Every length read from the stream is checked against the bytes that remain
//! before anything is allocated; a damaged stream yields what could be read
//! before the damage, with [`Tnef::damaged`] set and a warning.

use std::fmt;

/// The TNEF signature, little-endian at offset 0.
pub const SIGNATURE: u32 = 0x223E_9F78;

const LEVEL_MESSAGE: u8 = 1;
const LEVEL_ATTACHMENT: u8 = 2;

// Attribute ids (low 16 bits of the attribute tag; the high 16 bits are the type).
const ATT_BODY: u16 = 0x800C;
const ATT_ATTACH_DATA: u16 = 0x800F;
const ATT_ATTACH_TITLE: u16 = 0x8010;
const ATT_ATTACH_REND_DATA: u16 = 0x9002;
const ATT_MAPI_PROPS: u16 = 0x9003;
const ATT_ATTACHMENT: u16 = 0x9005;
const ATT_OEM_CODEPAGE: u16 = 0x9007;

// MAPI property ids.
const PR_BODY: u16 = 0x1000;
const PR_RTF_COMPRESSED: u16 = 0x1009;
const PR_BODY_HTML: u16 = 0x1013;
const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const PR_ATTACH_CONTENT_ID: u16 = 0x3712;
const PR_INTERNET_CPID: u16 = 0x3FDE;

// MAPI property types.
const PT_UNSPECIFIED: u16 = 0x0000;
const PT_NULL: u16 = 0x0001;
const PT_SHORT: u16 = 0x0002;
const PT_LONG: u16 = 0x0003;
const PT_FLOAT: u16 = 0x0004;
const PT_DOUBLE: u16 = 0x0005;
const PT_CURRENCY: u16 = 0x0006;
const PT_APPTIME: u16 = 0x0007;
const PT_ERROR: u16 = 0x000A;
const PT_BOOLEAN: u16 = 0x000B;
const PT_OBJECT: u16 = 0x000D;
const PT_I8: u16 = 0x0014;
const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_SYSTIME: u16 = 0x0040;
const PT_CLSID: u16 = 0x0048;
const PT_BINARY: u16 = 0x0102;
const MV_FLAG: u16 = 0x1000;

/// Name given to the decompressed RTF body in [`Tnef::files`].
pub const BODY_RTF_NAME: &str = "body.rtf";
/// Name given to the HTML body in [`Tnef::files`].
pub const BODY_HTML_NAME: &str = "body.html";

/// One file attached inside a winmail.dat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefAttachment {
    /// Long file name if present, else the 8.3 name or the display name. Untrusted.
    pub name: Option<String>,
    /// `PR_ATTACH_MIME_TAG`, when the sender's client recorded one.
    pub mime_type: Option<String>,
    /// `PR_ATTACH_CONTENT_ID`, without angle brackets.
    pub content_id: Option<String>,
    pub data: Vec<u8>,
}

/// What a winmail.dat holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tnef {
    /// Attached files, in stream order (only those whose data was present).
    pub attachments: Vec<TnefAttachment>,
    /// Plain text body (`attBody` or `PR_BODY`).
    pub body_text: Option<String>,
    /// HTML body (`PR_BODY_HTML`), decoded to text.
    pub body_html: Option<String>,
    /// RTF body, decompressed from `PR_RTF_COMPRESSED`.
    pub body_rtf: Option<Vec<u8>>,
    /// True when the stream was cut short or malformed: the contents are partial.
    pub damaged: bool,
    /// What was wrong, for the record.
    pub warnings: Vec<String>,
}

/// A file extracted from a winmail.dat: an attachment or a saved body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TnefFile<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

impl Tnef {
    /// Attachments (with a name, or `Untitled Attachment`) followed by the bodies
    /// that other TNEF tools save as files: `body.rtf`, then `body.html`.
    pub fn files(&self) -> Vec<TnefFile<'_>> {
        let mut files: Vec<TnefFile<'_>> = self
            .attachments
            .iter()
            .map(|a| TnefFile {
                name: a.name.as_deref().unwrap_or("Untitled Attachment"),
                data: &a.data,
            })
            .collect();
        if let Some(rtf) = &self.body_rtf {
            files.push(TnefFile {
                name: BODY_RTF_NAME,
                data: rtf,
            });
        }
        if let Some(html) = &self.body_html {
            files.push(TnefFile {
                name: BODY_HTML_NAME,
                data: html.as_bytes(),
            });
        }
        files
    }

    /// Names of [`Tnef::files`], in order.
    pub fn file_names(&self) -> Vec<&str> {
        self.files().into_iter().map(|f| f.name).collect()
    }
}

/// Why a buffer could not be read as TNEF at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TnefError {
    /// Fewer than 6 bytes, or the signature is wrong.
    NotTnef,
}

impl fmt::Display for TnefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TnefError::NotTnef => f.write_str("not a TNEF stream (bad signature)"),
        }
    }
}

impl std::error::Error for TnefError {}

/// True if `data` starts with the TNEF signature.
pub fn is_tnef(data: &[u8]) -> bool {
    data.get(..4)
        .is_some_and(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) == SIGNATURE)
}

/// Decodes a winmail.dat. Fails only when the signature is missing; damage later
/// in the stream gives a partial result with [`Tnef::damaged`] set.
pub fn decode(data: &[u8]) -> Result<Tnef, TnefError> {
    let mut r = Reader::new(data);
    if r.u32() != Some(SIGNATURE) {
        return Err(TnefError::NotTnef);
    }
    if r.u16().is_none() {
        return Err(TnefError::NotTnef);
    }

    let mut out = Tnef::default();
    let mut codepage: u32 = 1252;
    let mut current: Option<AttachBuilder> = None;
    let mut finished: Vec<AttachBuilder> = Vec::new();

    while r.remaining() > 0 {
        let start = r.pos;
        let (Some(level), Some(tag), Some(len)) = (r.u8(), r.u32(), r.u32()) else {
            out.damage(format!("truncated attribute header at offset {start}"));
            break;
        };
        let id = (tag & 0xFFFF) as u16;
        if level != LEVEL_MESSAGE && level != LEVEL_ATTACHMENT {
            out.damage(format!("invalid attribute level {level} at offset {start}"));
            break;
        }
        let Some(payload) = r.take(len as usize) else {
            out.damage(format!(
                "attribute 0x{tag:08x} at offset {start} claims {len} bytes, only {} left",
                r.remaining()
            ));
            break;
        };
        match r.u16() {
            Some(sum) if sum == checksum(payload) => {}
            Some(_) => out.damage(format!(
                "checksum mismatch in attribute 0x{tag:08x} at offset {start}"
            )),
            None => out.damage(format!(
                "missing checksum of attribute 0x{tag:08x} at offset {start}"
            )),
        }

        match id {
            ATT_OEM_CODEPAGE => {
                if let Some(cp) = Reader::new(payload).u32() {
                    codepage = cp;
                }
            }
            ATT_ATTACH_REND_DATA => {
                if let Some(done) = current.replace(AttachBuilder::default()) {
                    finished.push(done);
                }
            }
            ATT_ATTACH_TITLE => {
                current.get_or_insert_default().title = non_empty(decode_8bit(payload, codepage));
            }
            ATT_ATTACH_DATA => {
                current.get_or_insert_default().data = Some(payload.to_vec());
            }
            ATT_ATTACHMENT => match read_props(payload) {
                Ok(props) => current.get_or_insert_default().apply(&props, codepage),
                Err(e) => out.damage(format!("attachment properties: {e}")),
            },
            ATT_MAPI_PROPS if level == LEVEL_MESSAGE => match read_props(payload) {
                Ok(props) => out.apply_message_props(&props, codepage),
                Err(e) => out.damage(format!("message properties: {e}")),
            },
            ATT_BODY if level == LEVEL_MESSAGE && out.body_text.is_none() => {
                out.body_text = non_empty(decode_8bit(payload, codepage));
            }
            _ => {}
        }
    }
    if let Some(done) = current.take() {
        finished.push(done);
    }
    out.attachments = finished
        .into_iter()
        .filter_map(AttachBuilder::build)
        .collect();
    Ok(out)
}

impl Tnef {
    fn damage(&mut self, warning: String) {
        self.damaged = true;
        if self.warnings.len() < 20 {
            self.warnings.push(warning);
        }
    }

    fn apply_message_props(&mut self, props: &[Prop<'_>], codepage: u32) {
        let codepage = props
            .iter()
            .find(|p| p.id == PR_INTERNET_CPID)
            .and_then(|p| p.as_u32())
            .unwrap_or(codepage);
        for p in props {
            match p.id {
                PR_RTF_COMPRESSED => {
                    if let Some(rtf) = p.bytes().and_then(decompress_rtf) {
                        self.body_rtf = Some(rtf);
                    } else {
                        self.damage("compressed RTF body could not be decompressed".into());
                    }
                }
                PR_BODY_HTML => {
                    if let Some(html) = p.string(codepage) {
                        self.body_html = Some(html);
                    }
                }
                PR_BODY => {
                    if let Some(text) = p.string(codepage).and_then(non_empty) {
                        self.body_text = Some(text);
                    }
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug, Default)]
struct AttachBuilder {
    title: Option<String>,
    long_name: Option<String>,
    file_name: Option<String>,
    display_name: Option<String>,
    mime_type: Option<String>,
    content_id: Option<String>,
    data: Option<Vec<u8>>,
    prop_data: Option<Vec<u8>>,
}

impl AttachBuilder {
    fn apply(&mut self, props: &[Prop<'_>], codepage: u32) {
        for p in props {
            match p.id {
                PR_ATTACH_LONG_FILENAME => self.long_name = p.string(codepage).and_then(non_empty),
                PR_ATTACH_FILENAME => self.file_name = p.string(codepage).and_then(non_empty),
                PR_DISPLAY_NAME => self.display_name = p.string(codepage).and_then(non_empty),
                PR_ATTACH_MIME_TAG => {
                    self.mime_type = p
                        .string(codepage)
                        .and_then(non_empty)
                        .map(|m| m.to_ascii_lowercase())
                }
                PR_ATTACH_CONTENT_ID => {
                    self.content_id = p
                        .string(codepage)
                        .map(|c| {
                            c.trim()
                                .trim_start_matches('<')
                                .trim_end_matches('>')
                                .to_string()
                        })
                        .and_then(non_empty)
                }
                PR_ATTACH_DATA => {
                    if let Some(bytes) = p.bytes() {
                        // PT_OBJECT values start with the 16-byte IID of the object.
                        let bytes = if p.ptype == PT_OBJECT {
                            bytes.get(16..).unwrap_or_default()
                        } else {
                            bytes
                        };
                        self.prop_data = Some(bytes.to_vec());
                    }
                }
                _ => {}
            }
        }
    }

    fn build(self) -> Option<TnefAttachment> {
        let data = self.data.or(self.prop_data)?;
        let name = self
            .long_name
            .or(self.file_name)
            .or(self.title)
            .or(self.display_name);
        Some(TnefAttachment {
            name,
            mime_type: self.mime_type,
            content_id: self.content_id,
            data,
        })
    }
}

/// One MAPI property with its first value (multi-valued properties keep only the first).
#[derive(Debug)]
struct Prop<'a> {
    ptype: u16,
    id: u16,
    value: Option<&'a [u8]>,
}

impl<'a> Prop<'a> {
    fn bytes(&self) -> Option<&'a [u8]> {
        self.value
    }

    fn as_u32(&self) -> Option<u32> {
        match self.ptype {
            PT_LONG | PT_SHORT | PT_ERROR | PT_BOOLEAN => Reader::new(self.value?).u32(),
            _ => None,
        }
    }

    fn string(&self, codepage: u32) -> Option<String> {
        let v = self.value?;
        match self.ptype {
            PT_UNICODE => Some(decode_utf16le(v)),
            PT_STRING8 | PT_BINARY => Some(decode_8bit(v, codepage)),
            _ => None,
        }
    }
}

/// Reads a MAPI property list (`attMAPIProps`, `attAttachment`).
fn read_props(data: &[u8]) -> Result<Vec<Prop<'_>>, String> {
    let mut r = Reader::new(data);
    let count = r.u32().ok_or("missing property count")? as usize;
    // Every property takes at least 4 bytes: refuse counts the data cannot hold.
    if count > r.remaining() / 4 {
        return Err(format!("property count {count} exceeds the data"));
    }
    let mut props = Vec::with_capacity(count);
    for n in 0..count {
        let (Some(ptype), Some(id)) = (r.u16(), r.u16()) else {
            return Err(format!("property {n} truncated"));
        };
        if id >= 0x8000 {
            // Named property: GUID, kind, then a numeric id or a UTF-16 name.
            r.take(16).ok_or("named property GUID truncated")?;
            let kind = r.u32().ok_or("named property kind truncated")?;
            if kind == 0 {
                r.u32().ok_or("named property id truncated")?;
            } else {
                let len = r.u32().ok_or("named property name length truncated")? as usize;
                r.take(len).ok_or("named property name truncated")?;
                r.skip_padding(len);
            }
        }
        let multi = ptype & MV_FLAG != 0;
        let base = ptype & !MV_FLAG;
        let variable = matches!(base, PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT);
        let fixed = match base {
            PT_UNSPECIFIED | PT_NULL => Some(0),
            PT_SHORT | PT_BOOLEAN | PT_LONG | PT_FLOAT | PT_ERROR => Some(4),
            PT_DOUBLE | PT_CURRENCY | PT_APPTIME | PT_I8 | PT_SYSTIME => Some(8),
            PT_CLSID => Some(16),
            _ if variable => None,
            other => {
                return Err(format!(
                    "property {n} (0x{id:04x}) has unknown type 0x{other:04x}"
                ));
            }
        };
        let values = if multi || variable {
            let c = r.u32().ok_or("value count truncated")? as usize;
            if c > r.remaining() / 4 + 1 {
                return Err(format!("property {n} value count {c} exceeds the data"));
            }
            c
        } else {
            1
        };
        let mut first = None;
        for _ in 0..values {
            let v = match fixed {
                Some(size) => r.take(size).ok_or("fixed-size value truncated")?,
                None => {
                    let len = r.u32().ok_or("value length truncated")? as usize;
                    let v = r
                        .take(len)
                        .ok_or_else(|| format!("property 0x{id:04x} value truncated"))?;
                    r.skip_padding(len);
                    v
                }
            };
            first.get_or_insert(v);
        }
        props.push(Prop {
            ptype: base,
            id,
            value: first,
        });
    }
    Ok(props)
}

/// TNEF attribute checksum: sum of the data bytes modulo 65536.
fn checksum(data: &[u8]) -> u16 {
    data.iter()
        .fold(0u16, |acc, &b| acc.wrapping_add(u16::from(b)))
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if t.is_empty() {
        None
    } else {
        Some(t.to_string())
    }
}

fn decode_utf16le(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&units);
    s.trim_end_matches('\0').to_string()
}

/// Decodes 8-bit text in a Windows code page, falling back to windows-1252.
fn decode_8bit(data: &[u8], codepage: u32) -> String {
    let data = match data.iter().position(|&b| b == 0) {
        Some(end) => &data[..end],
        None => data,
    };
    if codepage == 65001 || codepage == 20127 {
        return String::from_utf8_lossy(data).into_owned();
    }
    if let Ok(s) = std::str::from_utf8(data)
        && s.is_ascii()
    {
        return s.to_string();
    }
    let name = codepage_name(codepage).unwrap_or("windows-1252");
    match mail_parser::decoders::charsets::map::charset_decoder(name.as_bytes()) {
        Some(decode) => decode(data),
        None => String::from_utf8_lossy(data).into_owned(),
    }
}

fn codepage_name(cp: u32) -> Option<&'static str> {
    Some(match cp {
        437 => "ibm437",
        850 => "850",
        866 => "866",
        874 => "windows-874",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        1250 => "windows-1250",
        1251 => "windows-1251",
        1252 => "windows-1252",
        1253 => "windows-1253",
        1254 => "windows-1254",
        1255 => "windows-1255",
        1256 => "windows-1256",
        1257 => "windows-1257",
        1258 => "windows-1258",
        10000 => "macintosh",
        20866 => "koi8-r",
        21866 => "koi8-u",
        28591 => "iso-8859-1",
        28592 => "iso-8859-2",
        28593 => "iso-8859-3",
        28594 => "iso-8859-4",
        28595 => "iso-8859-5",
        28596 => "iso-8859-6",
        28597 => "iso-8859-7",
        28598 => "iso-8859-8",
        28599 => "iso-8859-9",
        28605 => "iso-8859-15",
        50220..=50222 => "iso-2022-jp",
        51932 => "euc-jp",
        51949 => "euc-kr",
        54936 => "gb18030",
        _ => return None,
    })
}

/// The dictionary that compressed RTF starts with ([MS-OXRTFCP] 2.1.2.1).
const RTF_PREBUF: &[u8] = b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

const RTF_COMPRESSED: u32 = 0x7546_5A4C; // "LZFu"
const RTF_UNCOMPRESSED: u32 = 0x414C_454D; // "MELA"

/// Decompresses `PR_RTF_COMPRESSED` ([MS-OXRTFCP]). `None` if the header is bad.
pub fn decompress_rtf(data: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(data);
    let comp_size = r.u32()? as usize;
    let raw_size = r.u32()? as usize;
    let kind = r.u32()?;
    let _crc = r.u32()?;
    // comp_size counts the bytes after itself, header included.
    let end = data.len().min(comp_size.saturating_add(4));
    let body = data.get(16..end.max(16))?;
    match kind {
        RTF_UNCOMPRESSED => Some(body[..body.len().min(raw_size)].to_vec()),
        RTF_COMPRESSED => Some(lzfu(body, raw_size)),
        _ => None,
    }
}

fn lzfu(input: &[u8], raw_size: usize) -> Vec<u8> {
    let mut dict = [0u8; 4096];
    dict[..RTF_PREBUF.len()].copy_from_slice(RTF_PREBUF);
    let mut wpos = RTF_PREBUF.len();
    // Output grows at most 17 bytes per 2 input bytes, so this stays bounded by the input.
    let mut out = Vec::with_capacity(raw_size.min(input.len().saturating_mul(9)));
    let mut i = 0;
    'outer: while i < input.len() {
        let control = input[i];
        i += 1;
        for bit in 0..8 {
            if out.len() >= raw_size {
                break 'outer;
            }
            if control & (1 << bit) == 0 {
                let Some(&b) = input.get(i) else { break 'outer };
                i += 1;
                out.push(b);
                dict[wpos] = b;
                wpos = (wpos + 1) & 0xFFF;
            } else {
                let (Some(&hi), Some(&lo)) = (input.get(i), input.get(i + 1)) else {
                    break 'outer;
                };
                i += 2;
                let word = u16::from_be_bytes([hi, lo]);
                let offset = usize::from(word >> 4);
                let len = usize::from(word & 0xF) + 2;
                if offset == wpos {
                    break 'outer; // end marker
                }
                for k in 0..len {
                    let b = dict[(offset + k) & 0xFFF];
                    out.push(b);
                    dict[wpos] = b;
                    wpos = (wpos + 1) & 0xFFF;
                }
            }
        }
    }
    out.truncate(raw_size);
    out
}

/// Bounds-checked little-endian reader.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }

    /// Skips the padding that rounds a value of `len` bytes up to 4; tolerates a missing pad at the end.
    fn skip_padding(&mut self, len: usize) {
        let pad = (4 - len % 4) % 4;
        self.pos = (self.pos + pad).min(self.data.len());
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(level: u8, tag: u32, data: &[u8]) -> Vec<u8> {
        let mut v = vec![level];
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v.extend_from_slice(&checksum(data).to_le_bytes());
        v
    }

    fn header() -> Vec<u8> {
        let mut v = SIGNATURE.to_le_bytes().to_vec();
        v.extend_from_slice(&0x1234u16.to_le_bytes());
        v
    }

    #[test]
    fn prebuf_has_spec_length() {
        assert_eq!(RTF_PREBUF.len(), 207);
    }

    #[test]
    fn rejects_non_tnef() {
        assert_eq!(decode(b""), Err(TnefError::NotTnef));
        assert_eq!(decode(b"PK\x03\x04abcdef"), Err(TnefError::NotTnef));
        assert_eq!(decode(&SIGNATURE.to_le_bytes()), Err(TnefError::NotTnef));
    }

    #[test]
    fn builds_attachment_and_prefers_long_name() {
        let mut s = header();
        s.extend(attr(2, 0x0006_9002, &[1, 0, 0, 0]));
        s.extend(attr(2, 0x0001_8010, b"LONGFI~1.TXT\0"));
        s.extend(attr(2, 0x0006_800F, b"hello"));
        // attAttachment with PR_ATTACH_LONG_FILENAME (PT_STRING8).
        let mut props = 1u32.to_le_bytes().to_vec();
        props.extend_from_slice(&PT_STRING8.to_le_bytes());
        props.extend_from_slice(&PR_ATTACH_LONG_FILENAME.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        let name = b"long file name.txt\0";
        props.extend_from_slice(&(name.len() as u32).to_le_bytes());
        props.extend_from_slice(name);
        props.extend_from_slice(&[0; 1]); // pad 19 -> 20
        s.extend(attr(2, 0x0006_9005, &props));
        let t = decode(&s).unwrap();
        assert!(!t.damaged, "{:?}", t.warnings);
        assert_eq!(t.file_names(), vec!["long file name.txt"]);
        assert_eq!(t.attachments[0].data, b"hello");
    }

    #[test]
    fn huge_length_is_damage_not_allocation() {
        let mut s = header();
        s.push(2);
        s.extend_from_slice(&0x0006_800Fu32.to_le_bytes());
        s.extend_from_slice(&u32::MAX.to_le_bytes());
        s.extend_from_slice(b"short");
        let t = decode(&s).unwrap();
        assert!(t.damaged);
        assert!(t.attachments.is_empty());
    }

    #[test]
    fn huge_property_count_is_rejected() {
        let mut s = header();
        s.extend(attr(2, 0x0006_9002, &[1, 0, 0, 0]));
        s.extend(attr(2, 0x0006_9005, &u32::MAX.to_le_bytes()));
        let t = decode(&s).unwrap();
        assert!(t.damaged);
    }

    #[test]
    fn uncompressed_rtf() {
        let mut d = Vec::new();
        d.extend_from_slice(&(12u32 + 5).to_le_bytes());
        d.extend_from_slice(&5u32.to_le_bytes());
        d.extend_from_slice(&RTF_UNCOMPRESSED.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(b"{\\rtf}");
        assert_eq!(decompress_rtf(&d).unwrap(), b"{\\rtf");
    }

    #[test]
    fn compressed_rtf_spec_example() {
        // [MS-OXRTFCP] 3.1.1: "{\rtf1\ansi\ansicpg1252\pard hello world}\r\n"
        let d: [u8; 0x2d + 4] = [
            0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5,
            0xc7, 0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42,
            0x32, 0x0a, 0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0,
            0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f, 0xa0,
        ];
        let out = decompress_rtf(&d).unwrap();
        assert_eq!(out, b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n");
    }
}
