//! HTML from mail made safe to show in a browser, and HTML → plain text.
//!
//! Policy (ammonia with a custom configuration):
//! - no scripts, styles sheets, event handlers, forms, frames, objects, SVG or MathML
//!   (`script`, `style`, `title`, `template`, `iframe`, `object`, `embed`, `svg`, `math`…
//!   are removed with their content; other unknown tags are unwrapped);
//! - links keep only `http:`, `https:` and `mailto:` targets, get
//!   `rel="noopener noreferrer nofollow"` and `target="_blank"`; relative links are dropped;
//! - no remote content: `<img>` keeps its `alt` text but loses an `http(s):` source;
//!   `cid:` sources are rewritten through the caller's `cid_to_url` and dropped when it
//!   has no answer; `data:`, `javascript:`, `vbscript:`… never survive;
//! - `style` attributes keep a few harmless text properties only, and are dropped
//!   whole when they contain `expression(`, `url(`, `javascript:` or CSS escapes.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use ammonia::{Builder, Url, UrlRelative};

/// The text people read, notifications quote and search indexes, made from an HTML
/// body (used when a mail has no text/plain part, or only a stub of one):
/// - no Markdown artefacts: no `**bold**`, `*em*`, `# ` headings, `[text][1]` link
///   lists or `────` rules; list items start with `• `, quotes with `> `;
/// - a link is written once, as `text (url)`, or as the URL alone when the text is the
///   URL; only `http`, `https`, `mailto` and `ftp` targets are written;
/// - tables come out cell by cell in reading order (row by row, left to right);
/// - `<style>`, `<script>`, `<head>`, `<title>` are dropped; `&nbsp;` is a space;
///   trailing spaces go and runs of blank lines become one.
pub fn html_to_text(html: &str) -> String {
    if too_deep(html) {
        return decode_basic_entities(&strip_tags(html));
    }
    let lines = html2text::config::with_decorator(ReadingDecorator)
        .raw_mode(true)
        .no_table_borders()
        .link_footnotes(false)
        .lines_from_read(html.as_bytes(), TEXT_WIDTH)
        .unwrap_or_default();
    let mut out = String::new();
    // The link being written: its target and the text written for it so far.
    let mut link: Option<(String, String)> = None;
    for line in &lines {
        let mut text = String::new();
        for piece in line.tagged_strings() {
            let target = piece.tag.iter().find_map(|m| match m {
                Mark::Link(url) => Some(url.as_str()),
                Mark::Plain => None,
            });
            if link.as_ref().map(|(u, _)| u.as_str()) != target {
                if let Some((url, shown)) = link.take() {
                    text.push_str(&link_suffix(&url, &shown));
                }
                link = target.map(|u| (u.to_string(), String::new()));
            }
            if let Some((_, shown)) = &mut link {
                shown.push_str(&piece.s);
                shown.push(' ');
            }
            text.push_str(&piece.s);
        }
        out.push_str(&text);
        out.push('\n');
    }
    if let Some((url, shown)) = link.take() {
        let at = out.trim_end().len();
        out.truncate(at);
        out.push_str(&link_suffix(&url, &shown));
    }
    tidy_text(&out)
}

/// Lines are this wide before html2text wraps them: wide enough that paragraphs and
/// links stay whole (the reader's screen wraps).
const TEXT_WIDTH: usize = 1000;

/// What to write after a link's text: ` (url)`, or the URL when the text is empty;
/// nothing when the text already is the URL or the target is not a web or mail address.
fn link_suffix(url: &str, shown: &str) -> String {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !["http://", "https://", "mailto:", "ftp://"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return String::new();
    }
    let bare = |s: &str| {
        let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
        let s = s.strip_prefix("mailto:").unwrap_or(&s).to_string();
        s.strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(&s)
            .trim_start_matches("www.")
            .to_string()
    };
    let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    let written = lower.strip_prefix("mailto:").map_or(url, |_| &url[7..]);
    if shown.is_empty() {
        written.to_string()
    } else if bare(&shown) == bare(url) {
        String::new()
    } else {
        format!(" ({written})")
    }
}

/// Whitespace normalised: non-breaking spaces are spaces, trailing spaces go, lines that
/// are only a rule (`────`, `----`, `====`) go, runs of blank lines become one.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line: String = line
            .chars()
            .map(|c| {
                if c == '\u{A0}' || c == '\u{202F}' {
                    ' '
                } else {
                    c
                }
            })
            .filter(|&c| c != '\u{200B}' && c != '\u{FEFF}')
            .collect();
        let line = line.trim_end();
        let is_rule = line.chars().count() >= 3
            && line
                .chars()
                .all(|c| matches!(c, '─' | '━' | '═' | '-' | '=' | '_' | '*' | ' '));
        if is_rule {
            continue;
        }
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank_run = 0;
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// Whether a text/plain alternative is only a stub of its HTML alternative, so that the
/// HTML's text is what people read. The rule: the plain text is a stub when
/// 1. it is empty (or only whitespace), or
/// 2. it has less than a fifth of the letters and digits of the HTML's text, or
/// 3. it is at most three lines (not counting bare URLs) and says to view the mail in a
///    browser or an HTML-capable mail program.
///
/// Never a stub when the HTML has no text.
pub fn is_stub_alternative(plain: &str, html_text: &str) -> bool {
    let visible = letters_and_digits;
    let html_visible = visible(html_text);
    if html_visible == 0 {
        return false;
    }
    if plain.trim().is_empty() {
        return true;
    }
    if visible(plain) * 5 < html_visible {
        return true;
    }
    says_view_in_browser(plain)
}

/// Rule 3 of [`is_stub_alternative`]: at most three lines (not counting bare URLs) that
/// say to view the mail in a browser.
fn says_view_in_browser(plain: &str) -> bool {
    let at_most_three_lines = plain
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("http") && !l.starts_with('<'))
        .nth(3)
        .is_none();
    at_most_three_lines && STUB_PHRASE.is_match(plain)
}

/// The HTML alternative's text when the text/plain alternative is only a stub of it
/// (see [`is_stub_alternative`]); `None` when the plain text stands.
///
/// Rendering HTML to text is the dearest step of parsing, and almost every mail with
/// an HTML part has a full plain alternative, so the rendering is skipped when an upper
/// bound of the HTML's letters and digits already shows that rule 2 cannot apply and
/// rules 1 and 3 do not.
pub fn stub_alternative_text(plain: &str, html: &str) -> Option<String> {
    let rule_1_or_3 = plain.trim().is_empty() || says_view_in_browser(plain);
    if !rule_1_or_3 {
        let bound = html_visible_upper_bound(html);
        // ASCII letters and digits alone (a cheap lower count) usually settle it.
        let ascii = count_bytes(plain.as_bytes(), is_ascii_letter_or_digit);
        if bound <= ascii * 5 || bound <= letters_and_digits(plain) * 5 {
            return None;
        }
    }
    let html_text = html_to_text(html);
    is_stub_alternative(plain, &html_text).then_some(html_text)
}

/// At least as many letters and digits as [`html_to_text`] can write for `html`: all
/// of them, tags and attributes included (link targets and image titles are written;
/// the rest only makes the bound looser), except the raw text of `<style>`, `<script>`
/// and `<title>` elements, which is never written, plus a list number's worth per `<li`.
/// Entities count by their letters, which is more than they decode to, and every
/// non-ASCII character counts as a letter.
fn html_visible_upper_bound(html: &str) -> usize {
    const LIST_NUMBER_DIGITS: usize = 20;
    const UNWRITTEN: [&[u8]; 3] = [b"style", b"script", b"title"];
    // Every non-ASCII character (its first byte) counts: looser, and far cheaper than
    // deciding which.
    let visible =
        |s: &str| count_bytes(s.as_bytes(), |b| is_ascii_letter_or_digit(b) | (b >= 0xC0));
    let bytes = html.as_bytes();
    // Whether a tag named `name` (start tag, or end tag with `closing`) begins at `at`.
    let tag_at = |at: usize, closing: bool, name: &[u8]| {
        if closing && bytes.get(at + 1) != Some(&b'/') {
            return false;
        }
        let start = at + 1 + usize::from(closing);
        let ends = |c: &u8| c.is_ascii_whitespace() || matches!(c, b'>' | b'/');
        bytes
            .get(start..start + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && bytes.get(start + name.len()).is_none_or(ends)
    };
    let mut count = 0;
    let mut written_from = 0;
    let mut at = 0;
    while let Some(off) = memchr::memchr(b'<', &bytes[at..]) {
        let open = at + off;
        at = open + 1;
        if bytes
            .get(at..at + 2)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"li"))
        {
            count += LIST_NUMBER_DIGITS;
        }
        let Some(name) = UNWRITTEN.into_iter().find(|name| tag_at(open, false, name)) else {
            continue;
        };
        count += visible(&html[written_from..open]);
        // The raw text runs to the element's end tag (to the end when there is none).
        let end = memchr::memchr_iter(b'<', &bytes[at..])
            .map(|off| at + off)
            .find(|&lt| tag_at(lt, true, name));
        match end {
            Some(end) => (written_from, at) = (end, end + 1),
            None => return count,
        }
    }
    count + visible(&html[written_from..])
}

/// How many letters and digits `s` has.
fn letters_and_digits(s: &str) -> usize {
    if s.is_ascii() {
        count_bytes(s.as_bytes(), is_ascii_letter_or_digit)
    } else {
        s.chars().filter(|c| c.is_alphanumeric()).count()
    }
}

/// How many of `bytes` are `wanted`, in blocks the compiler turns into vector code
/// (a plain `filter().count()` runs byte by byte, four times slower on mail bodies).
fn count_bytes(bytes: &[u8], wanted: impl Fn(u8) -> bool) -> usize {
    bytes
        .chunks(64)
        .map(|block| block.iter().map(|&b| u8::from(wanted(b))).sum::<u8>() as usize)
        .sum()
}

/// `u8::is_ascii_alphanumeric` without branches, so that [`count_bytes`] vectorises.
fn is_ascii_letter_or_digit(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10)
}

static STUB_PHRASE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?ix)
        view\s+(this|the)?\s*(e-?mail|message|newsletter|mail)?\s*(online|in\s+(your|a)\s+(web\s+)?browser)
      | (open|read|see)\s+(this|the)\s+(e-?mail|message)\s+(online|in\s+(your|a)\s+(web\s+)?browser)
      | (html|e-?mail)[\s-]+(capable|compatible|enabled)
      | your\s+(e-?mail\s+|mail\s+)?(client|program|reader|software|application)\s+(does\s+not|doesn't|cannot|can't)\s+(display|support|show)\s+html
      | this\s+(is\s+an\s+html\s+(e-?mail|message)|(e-?mail|message)\s+(is\s+in|requires)\s+html)
      | im\s+browser\s+(ansehen|anzeigen|öffnen)
      | (voir|afficher)\s+(ce|cet)\s+(e-?mail|message|courriel)\s+dans\s+(votre|un)\s+navigateur
    ",
    )
    .expect("valid regex")
});

/// html2text decorations for reading: no Markdown marks, links tagged with their target.
#[derive(Clone, Copy)]
struct ReadingDecorator;

/// What a piece of rendered text is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Mark {
    #[default]
    Plain,
    Link(String),
}

impl html2text::render::TextDecorator for ReadingDecorator {
    type Annotation = Mark;

    fn decorate_link_start(&mut self, url: &str) -> (String, Mark) {
        (String::new(), Mark::Link(url.to_string()))
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, Mark) {
        (String::new(), Mark::Plain)
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, Mark) {
        (String::new(), Mark::Plain)
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, Mark) {
        (String::new(), Mark::Plain)
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, Mark) {
        (String::new(), Mark::Plain)
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) -> Mark {
        Mark::Plain
    }
    fn decorate_preformat_cont(&self) -> Mark {
        Mark::Plain
    }
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, Mark) {
        (title.to_string(), Mark::Plain)
    }
    fn header_prefix(&self, _level: usize) -> String {
        String::new()
    }
    fn quote_prefix(&self) -> String {
        "> ".into()
    }
    fn unordered_item_prefix(&self) -> String {
        "• ".into()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        *self
    }
    fn decorate_superscript_start(&self) -> (String, Mark) {
        (String::new(), Mark::Plain)
    }
    fn decorate_superscript_end(&self) -> String {
        String::new()
    }
    fn finalise(&mut self, _urls: Vec<String>) -> Vec<html2text::render::TaggedLine<Mark>> {
        Vec::new()
    }
}

/// Nesting beyond which HTML is not parsed: html5ever's tree building costs
/// O(depth) per tag, so 100 000 nested `<div>`s would take minutes.
pub const MAX_NESTING: usize = 2000;

/// Upper estimate of the element nesting: per tag name, start tags not yet
/// matched by an end tag of the same name (void and self-closed tags excluded).
/// Stray end tags cannot lower another name's count.
pub fn too_deep(html: &str) -> bool {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "!doctype", "!--",
    ];
    let bytes = html.as_bytes();
    let mut open: HashMap<Vec<u8>, usize> = HashMap::new();
    // The lower-cased name of the current tag, reused: no allocation per tag.
    let mut name = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut next_gt: Option<usize> = Some(0);
    while let Some(off) = bytes.get(i..).and_then(|b| memchr::memchr(b'<', b)) {
        let start = i + off + 1;
        let closing = bytes.get(start) == Some(&b'/');
        let name_start = start + usize::from(closing);
        let name_len = bytes
            .get(name_start..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'!' || **c == b'-')
            .count();
        i = name_start + name_len;
        if name_len == 0 || !(bytes[name_start].is_ascii_alphabetic() || bytes[name_start] == b'!')
        {
            continue;
        }
        name.clear();
        name.extend(bytes[name_start..i].iter().map(u8::to_ascii_lowercase));
        if name[0] == b'!' || VOID.iter().any(|v| v.as_bytes() == name.as_slice()) {
            continue;
        }
        if closing {
            if let Some(n) = open.get_mut(name.as_slice()).filter(|n| **n > 0) {
                *n -= 1;
                depth -= 1;
            }
            continue;
        }
        // The next '>' is remembered so that a flood of unterminated tags stays linear.
        if next_gt.is_some_and(|g| g < i) {
            next_gt = bytes
                .get(i..)
                .and_then(|b| memchr::memchr(b'>', b))
                .map(|p| i + p);
            if next_gt.is_none() {
                next_gt = Some(usize::MAX);
            }
        }
        let self_closed = next_gt.is_some_and(|g| g != usize::MAX && g > i && bytes[g - 1] == b'/');
        if !self_closed {
            match open.get_mut(name.as_slice()) {
                Some(n) => *n += 1,
                None => {
                    open.insert(name.clone(), 1);
                }
            }
            depth += 1;
            if depth > MAX_NESTING {
                return true;
            }
        }
    }
    false
}

/// Tags removed naively (for HTML too deep to parse); the text stays.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_basic_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Plain text as HTML text or attribute value: `&`, `<`, `>`, `"` and `'` become
/// entities, so the text can neither open a tag nor end a quoted attribute of either kind.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped_html(text, &mut out);
    out
}

/// [`escape_html`], appended to `out`.
pub fn push_escaped_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Tags removed together with everything inside them.
const DROP_WITH_CONTENT: &[&str] = &[
    "script", "style", "title", "template", "iframe", "frame", "frameset", "object", "embed",
    "applet", "svg", "math", "noembed", "noframes", "noscript", "xml", "head", "select",
    "textarea",
];

/// Style properties kept in `style` attributes.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "font-size",
    "font-family",
    "text-decoration",
    "text-align",
    "vertical-align",
    "white-space",
];

/// Sanitizes an HTML body for display. `cid_to_url` maps a Content-ID (without
/// `cid:` and angle brackets) to the URL of the matching inline attachment.
pub fn sanitize_html(html: &str, cid_to_url: &dyn Fn(&str) -> Option<String>) -> String {
    if too_deep(html) {
        // Not worth parsing (see `MAX_NESTING`): show the text only.
        return format!(
            "<pre>{}</pre>",
            escape_html(&decode_basic_entities(&strip_tags(html)))
        );
    }
    // ammonia's callbacks must be 'static, so the cid: references are resolved up
    // front and handed to the thread's builder through `CIDS`.
    let cids: HashMap<String, String> = find_cid_references(html)
        .into_iter()
        .filter_map(|cid| cid_to_url(&cid).map(|url| (cid, url)))
        .collect();
    let relative: HashSet<String> = cids.values().filter(|u| is_relative(u)).cloned().collect();
    CIDS.set(Cids {
        urls: cids,
        relative,
    });
    let clean = BUILDER.with(|builder| builder.clean(html).to_string());
    CIDS.take();
    clean
}

/// The `cid:` targets of the HTML being cleaned on this thread.
#[derive(Default)]
struct Cids {
    /// Normalised Content-ID → URL.
    urls: HashMap<String, String>,
    /// Those URLs that are relative (allowed through `url_relative`).
    relative: HashSet<String>,
}

thread_local! {
    static CIDS: RefCell<Cids> = RefCell::default();
    /// Built once per thread: building the policy costs as much as a small mail's cleaning.
    static BUILDER: Builder<'static> = builder();
}

fn builder() -> Builder<'static> {
    let mut builder = Builder::default();
    builder
        .rm_tags(DROP_WITH_CONTENT)
        .add_clean_content_tags(DROP_WITH_CONTENT)
        // Table layout is common in mail; keep the harmless presentational attributes.
        .add_tag_attributes(
            "table",
            &["border", "cellpadding", "cellspacing", "width", "bgcolor"],
        )
        .add_tag_attributes("td", &["bgcolor", "width", "height", "valign"])
        .add_tag_attributes("th", &["bgcolor", "width", "height", "valign"])
        .add_tag_attributes("font", &["color", "face", "size"])
        .add_tags(&["font"])
        .add_generic_attributes(&["style"])
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        // `cid` must pass the scheme check so that the attribute filter can rewrite it.
        .add_url_schemes(&["cid"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .url_relative(UrlRelative::Custom(Box::new(relative_filter)))
        .attribute_filter(|element, attribute, value| {
            CIDS.with_borrow(|cids| filter_attribute(&cids.urls, element, attribute, value))
        });
    builder
}

fn filter_attribute<'u>(
    cid_map: &HashMap<String, String>,
    element: &str,
    attribute: &str,
    value: &'u str,
) -> Option<Cow<'u, str>> {
    match attribute {
        "href" => {
            let scheme = Url::parse(value.trim())
                .ok()
                .map(|u| u.scheme().to_string());
            match scheme.as_deref() {
                Some("http" | "https" | "mailto") if matches!(element, "a" | "area") => {
                    Some(Cow::Borrowed(value))
                }
                _ => None,
            }
        }
        "src" => {
            if element != "img" {
                return None;
            }
            let cid = strip_cid_scheme(value)?;
            cid_map
                .get(&normalize_cid(cid))
                .map(|url| Cow::Owned(url.clone()))
        }
        // Other URL-valued attributes have no use in a mail view.
        "cite" | "longdesc" | "action" | "background" | "poster" | "srcset" | "usemap"
        | "formaction" => None,
        "style" => {
            let lower = value.to_ascii_lowercase();
            let hostile = [
                "expression",
                "url(",
                "javascript:",
                "vbscript:",
                "\\",
                "/*",
                "@import",
                "behavior",
                "-moz-binding",
            ];
            if hostile.iter().any(|h| lower.contains(h)) {
                None
            } else {
                Some(Cow::Borrowed(value))
            }
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Relative URLs survive only when they are one of our rewritten `cid:` targets.
fn relative_filter(url: &str) -> Option<Cow<'_, str>> {
    CIDS.with_borrow(|cids| cids.relative.contains(url))
        .then_some(Cow::Borrowed(url))
}

fn is_relative(url: &str) -> bool {
    matches!(
        Url::parse(url),
        Err(ammonia::url::ParseError::RelativeUrlWithoutBase)
    )
}

/// `cid:` prefix removed (case-insensitive), else `None`.
fn strip_cid_scheme(value: &str) -> Option<&str> {
    let v = value.trim();
    let head = v.get(..4)?;
    head.eq_ignore_ascii_case("cid:").then(|| &v[4..])
}

/// Content-ID as used for lookups: percent-decoded (RFC 2392), without brackets, trimmed.
pub fn normalize_cid(cid: &str) -> String {
    let decoded = percent_decode(cid.trim());
    decoded
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// All `cid:` references in the document (normalised), found textually.
fn find_cid_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("cid:") {
        let start = from + pos + 4;
        let end = html[start..]
            .find(|c: char| c == '"' || c == '\'' || c == '>' || c == '<' || c.is_whitespace())
            .map_or(html.len(), |e| start + e);
        let cid = normalize_cid(&html_unescape_minimal(&html[start..end]));
        if !cid.is_empty() && !found.contains(&cid) {
            found.push(cid);
        }
        from = end.max(start);
        if found.len() > 1000 {
            break;
        }
    }
    found
}

/// The attribute values ammonia hands the filter are entity-decoded; decode the common ones here too.
fn html_unescape_minimal(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#64;", "@")
        .replace("&commat;", "@")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_opens_no_tag_and_ends_no_attribute() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
        );
        assert_eq!(
            escape_html("&amp; stays visible"),
            "&amp;amp; stays visible"
        );
        assert_eq!(escape_html("naïve — 日本"), "naïve — 日本");
    }

    #[test]
    fn branchless_letter_or_digit_is_ascii_alphanumeric() {
        for b in 0..=255u8 {
            assert_eq!(
                is_ascii_letter_or_digit(b),
                b.is_ascii_alphanumeric(),
                "{b}"
            );
        }
        assert_eq!(letters_and_digits(&"ab1 ".repeat(100)), 300);
        assert_eq!(letters_and_digits("Grüße, 日本 — 42"), 9);
    }

    #[test]
    fn visible_bound_is_never_below_the_written_text() {
        let visible = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).count();
        for html in [
            "<p>Hello <b>world</b></p>",
            "<ol><li>one</li><li>two</li><li>three</li></ol>",
            r#"<a href="https://example.com/a/very/long/path">x</a>"#,
            r#"<img src="x.png" alt="Company logo" title="Our logo">"#,
            "<style>p { color: red }</style><header>Kept</header><p>a &eacute; &#1234; b</p>",
            "1 < 2 and <3 hearts",
            "<title>Dropped</title><script>var x = 1;</script><p>Body</p>",
            "<style>never closed p { }",
            "<table><tr><td>cell</td><td>cell</td></tr></table>",
        ] {
            let written = visible(&html_to_text(html));
            let bound = html_visible_upper_bound(html);
            assert!(
                bound >= written,
                "{html}: bound {bound} < written {written}"
            );
        }
    }

    #[test]
    fn a_full_plain_alternative_skips_rendering_and_a_stub_does_not() {
        let plain = "Dear team,\nthe printer on floor 3 is broken again.\nRegards, Ann";
        let html = "<p>Dear team,</p><p>the printer on floor 3 is broken again.</p>";
        assert_eq!(stub_alternative_text(plain, html), None);
        let html_text = stub_alternative_text("View this email in your browser", html)
            .expect("the plain text is a stub");
        assert!(html_text.contains("printer on floor 3"), "{html_text}");
        assert!(stub_alternative_text("", html).is_some());
    }

    fn clean(html: &str) -> String {
        sanitize_html(html, &|cid| {
            (cid == "logo@x").then(|| "/attachments/abc".to_string())
        })
    }

    #[test]
    fn cid_rewritten_and_unknown_dropped() {
        let out = clean(r#"<img src="cid:logo@x" alt="Logo"><img src="cid:other@x" alt="Other">"#);
        assert!(out.contains(r#"src="/attachments/abc""#), "{out}");
        assert!(out.contains(r#"alt="Other""#), "{out}");
        assert_eq!(out.matches("src=").count(), 1, "{out}");
    }

    #[test]
    fn relative_links_dropped() {
        let out = clean(r#"<a href="/admin/delete">x</a><a href="/attachments/abc">y</a>"#);
        assert!(!out.contains("/admin"), "{out}");
    }
}
