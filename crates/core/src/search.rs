//! Full-text search, the pure part: the one tokenizer (for what is indexed and what
//! is asked alike), the query language agents type, the document a ticket is indexed
//! as, and the highlighted snippet shown with a result. The store (`search` there)
//! writes the document into SQLite's FTS5 or PostgreSQL's tsvector and turns a
//! [`SearchQuery`] into each engine's query; neither engine tokenizes user text itself.
//!
//! # Tokens
//! A token is a run of letters and digits (Unicode `is_alphanumeric`), lower-cased and
//! cut at [`MAX_TOKEN_CHARS`]; everything else separates tokens. So `alice@example.com`
//! is the three tokens `alice example com`, and a query word that splits into several
//! tokens is searched as a phrase of them.
//!
//! # CJK: bigrams, not trigrams
//! Chinese and Japanese are written without spaces, so a run of Han, Hiragana or
//! Katakana is indexed as overlapping **bigrams** (`打印机坏了` → `打印 印机 机坏 坏了`)
//! plus its last character alone (`了`), and a query run of two or more such characters is the
//! phrase of its bigrams. A lone character is a prefix query (`打*`), which the bigrams
//! and the trailing single character make complete. Bigrams were chosen over SQLite's
//! `trigram` tokenizer because most Chinese words have two characters, which trigrams
//! cannot find at all; because the index stays about a third of a trigram index's size; and
//! because the same Rust code feeds both engines, so SQLite and PostgreSQL find exactly
//! the same tickets (pg_trgm would have been a second, different tokenizer). Hangul is
//! written with spaces and is tokenized as words. Not done: Thai and other scripts
//! without spaces (one token per run), diacritic folding (`café` ≠ `cafe`).
//!
//! # Query language
//! Words (each must occur), `"a phrase"`, and the filters `from:` (a requester's or
//! sender's name or address), `status:`, `helpdesk:` and `has:attachment`; a filter's
//! value may be quoted (`from:"Ann Lee"`). Anything else with a colon (`re:`, a URL) is
//! words. No operator of either engine has a meaning here: every token reaches the
//! engines quoted, so `NEAR`, `*`, `-`, `^`, `|` or `&` are plain separators.
//! Bad input gets a [`SearchError`] saying what is wrong, never a panic.

use std::collections::{BTreeMap, HashMap};

use postdesk_mail::push_escaped_html;

/// The longest query taken, in characters (the web bounds it further).
pub const MAX_QUERY_CHARS: usize = 1_000;
/// The most words, phrases and `from:` values a query may have.
pub const MAX_TERMS: usize = 16;
/// Tokens are cut at this many characters (a base64 run is no word).
pub const MAX_TOKEN_CHARS: usize = 64;
/// The most tokens a ticket's document keeps; PostgreSQL keeps positions up to 16,383.
pub const MAX_DOCUMENT_TOKENS: usize = 16_000;
/// The most bytes of tokens a document keeps: a `tsvector` may not exceed 1 MB, and a
/// ticket's mails past this much text are not searched further.
pub const MAX_DOCUMENT_BYTES: usize = 400_000;

/// A part of a ticket's document; its weight ranks matches in it higher or lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// Title, mail subject, ticket number: the strongest.
    Title,
    /// The requester's name and addresses, and every sender's address.
    People,
    /// Attachment names.
    Files,
    /// The texts of mails, replies and notes.
    Body,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Title, Field::People, Field::Files, Field::Body];

    /// PostgreSQL's weight letter for the field.
    pub const fn weight(self) -> char {
        match self {
            Field::Title => 'A',
            Field::People => 'B',
            Field::Files => 'C',
            Field::Body => 'D',
        }
    }

    /// The FTS5 column.
    pub const fn column(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::People => "people",
            Field::Files => "files",
            Field::Body => "body",
        }
    }
}

/// A token and where it came from in the text (byte offsets), for snippets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}' // Han extension A
        | '\u{4E00}'..='\u{9FFF}' // Han
        | '\u{F900}'..='\u{FAFF}' // Han compatibility
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
        | '\u{20000}'..='\u{2FA1F}' // Han extensions B and later
    )
}

/// Whether the tokens are for the index (CJK runs end with their last character alone)
/// or for a query (a lone CJK character is a prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Index,
    Query,
}

/// The runs of the text, as byte ranges: words, and runs of CJK characters (`true`).
fn runs(text: &str, mut each: impl FnMut(bool, usize, usize)) {
    let mut start: Option<usize> = None;
    let mut run_cjk = false;
    for (i, c) in text.char_indices() {
        let cjk = is_cjk(c);
        let word = cjk || c.is_alphanumeric();
        if let Some(s) = start
            && (!word || cjk != run_cjk)
        {
            each(run_cjk, s, i);
            start = None;
        }
        if word && start.is_none() {
            start = Some(i);
            run_cjk = cjk;
        }
    }
    if let Some(s) = start {
        each(run_cjk, s, text.len());
    }
}

/// A word as a token, into `out`: lower-cased and cut at [`MAX_TOKEN_CHARS`]. Most
/// words are ASCII, which takes no allocation at all.
fn word_token(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.push_str(&word[..word.len().min(MAX_TOKEN_CHARS)]);
        out.make_ascii_lowercase();
    } else {
        out.extend(word.to_lowercase().chars().take(MAX_TOKEN_CHARS));
    }
}

/// Calls `each` with every token of `text`, its byte range and whether it is a prefix
/// (a lone CJK character of a query). The token is borrowed for the call: indexing a
/// long mail allocates nothing per token.
fn tokenize(text: &str, mode: Mode, mut each: impl FnMut(&str, Span, bool)) {
    let mut token = String::new();
    let mut run: Vec<(usize, char)> = Vec::new();
    runs(text, |cjk, start, end| {
        if !cjk {
            word_token(&text[start..end], &mut token);
            each(&token, (start, end), false);
            return;
        }
        run.clear();
        run.extend(text[start..end].char_indices().map(|(i, c)| (start + i, c)));
        let end_of = |i: usize| run[i].0 + run[i].1.len_utf8();
        let alone = |i: usize, prefix: bool, each: &mut dyn FnMut(&str, Span, bool)| {
            let mut buf = [0u8; 4];
            each(
                run[i].1.encode_utf8(&mut buf),
                (run[i].0, end_of(i)),
                prefix,
            );
        };
        if run.len() == 1 {
            alone(0, mode == Mode::Query, &mut each);
            return;
        }
        for i in 0..run.len() - 1 {
            token.clear();
            token.push(run[i].1);
            token.push(run[i + 1].1);
            each(&token, (run[i].0, end_of(i + 1)), false);
        }
        if mode == Mode::Index {
            alone(run.len() - 1, false, &mut each);
        }
    });
}

/// The tokens of a text as it is indexed.
pub fn index_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    tokenize(text, Mode::Index, |t, (start, end), _| {
        tokens.push(Token {
            text: t.to_owned(),
            start,
            end,
        })
    });
    tokens
}

/// One thing a ticket must contain: its tokens next to each other and in order (one
/// token for a plain word). With `prefix`, the last token matches any token it begins
/// (a lone CJK character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub tokens: Vec<String>,
    pub prefix: bool,
}

impl Term {
    /// The term of a word or a quoted phrase; `None` when it has no token (`-`, `*`).
    fn of(text: &str) -> Option<Term> {
        let mut tokens = Vec::new();
        let mut prefix = false;
        tokenize(text, Mode::Query, |t, _, p| {
            tokens.push(t.to_owned());
            prefix = p;
        });
        // Only a lone trailing character is a prefix: inside a phrase it is a token.
        if tokens.len() > 1 {
            prefix = false;
        }
        (!tokens.is_empty()).then_some(Term { tokens, prefix })
    }
}

/// `has:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Has {
    Attachment,
}

/// A parsed search: every term must match, and every filter hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words and phrases, anywhere in the ticket.
    pub terms: Vec<Term>,
    /// `from:` values: in the requester's name or addresses or a sender's address.
    pub from: Vec<Term>,
    pub status: Option<String>,
    pub helpdesk: Option<String>,
    pub has: Vec<Has>,
}

impl SearchQuery {
    /// Whether the full-text index is needed (else only filters).
    pub fn needs_index(&self) -> bool {
        !self.terms.is_empty() || !self.from.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        !self.needs_index()
            && self.status.is_none()
            && self.helpdesk.is_none()
            && self.has.is_empty()
    }

    pub fn has_attachment(&self) -> bool {
        self.has.contains(&Has::Attachment)
    }
}

/// Why a query was refused; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("the search is {0} characters long; it may have at most {MAX_QUERY_CHARS}")]
    TooLong(usize),
    #[error("the search has more than {MAX_TERMS} words, phrases and from: values")]
    TooManyTerms,
    #[error("a quote (\") opened at character {0} of the search is not closed")]
    UnclosedQuote(usize),
    #[error("`{0}:` needs a value, e.g. `{0}:{1}`")]
    EmptyFilter(&'static str, &'static str),
    #[error("`{0}:` is given twice, with different values")]
    Repeated(&'static str),
    #[error("`has:{0}` is not known; `has:attachment` is")]
    UnknownHas(String),
    #[error("`{0}:` has a value without any letter or digit")]
    NothingToFind(&'static str),
}

/// Parses what an agent typed into the search box.
pub fn parse(input: &str) -> Result<SearchQuery, SearchError> {
    let length = input.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(SearchError::TooLong(length));
    }
    // Control characters (NUL included) separate like spaces.
    let chars: Vec<char> = input
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut query = SearchQuery::default();
    let mut at = 0;
    while at < chars.len() {
        if chars[at].is_whitespace() {
            at += 1;
            continue;
        }
        if chars[at] == '"' {
            let (text, next) = quoted(&chars, at)?;
            at = next;
            push(&mut query.terms, Term::of(&text))?;
            continue;
        }
        let start = at;
        while at < chars.len() && !chars[at].is_whitespace() && chars[at] != '"' {
            if chars[at] == ':' {
                break;
            }
            at += 1;
        }
        let head: String = chars[start..at].iter().collect();
        let filter = if at < chars.len() && chars[at] == ':' {
            match head.to_lowercase().as_str() {
                "from" => Some("from"),
                "status" => Some("status"),
                "helpdesk" => Some("helpdesk"),
                "has" => Some("has"),
                _ => None,
            }
        } else {
            None
        };
        let Some(filter) = filter else {
            // A word: up to the next space (a colon or quote inside is part of it).
            while at < chars.len() && !chars[at].is_whitespace() && chars[at] != '"' {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            push(&mut query.terms, Term::of(&word))?;
            continue;
        };
        at += 1; // the colon
        let value = if at < chars.len() && chars[at] == '"' {
            let (text, next) = quoted(&chars, at)?;
            at = next;
            text
        } else {
            let from = at;
            while at < chars.len() && !chars[at].is_whitespace() && chars[at] != '"' {
                at += 1;
            }
            chars[from..at].iter().collect()
        };
        let value = value.trim().to_string();
        match filter {
            "from" => {
                if value.is_empty() {
                    return Err(SearchError::EmptyFilter("from", "ann@example.com"));
                }
                let term = Term::of(&value).ok_or(SearchError::NothingToFind("from"))?;
                push(&mut query.from, Some(term))?;
            }
            "status" => set_once(&mut query.status, value, "status", "open")?,
            "helpdesk" => set_once(&mut query.helpdesk, value, "helpdesk", "Support")?,
            _ => {
                let has = match value.to_lowercase().as_str() {
                    "" => return Err(SearchError::EmptyFilter("has", "attachment")),
                    "attachment" | "attachments" => Has::Attachment,
                    _ => return Err(SearchError::UnknownHas(value)),
                };
                if !query.has.contains(&has) {
                    query.has.push(has);
                }
            }
        }
    }
    if query.terms.len() + query.from.len() > MAX_TERMS {
        return Err(SearchError::TooManyTerms);
    }
    Ok(query)
}

/// The text between the quote at `open` and the next one, and where to go on.
fn quoted(chars: &[char], open: usize) -> Result<(String, usize), SearchError> {
    let close = chars[open + 1..]
        .iter()
        .position(|c| *c == '"')
        .ok_or(SearchError::UnclosedQuote(open + 1))?;
    let text = chars[open + 1..open + 1 + close].iter().collect();
    Ok((text, open + close + 2))
}

fn push(terms: &mut Vec<Term>, term: Option<Term>) -> Result<(), SearchError> {
    if let Some(term) = term {
        if terms.len() >= MAX_TERMS {
            return Err(SearchError::TooManyTerms);
        }
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    Ok(())
}

fn set_once(
    slot: &mut Option<String>,
    value: String,
    name: &'static str,
    example: &'static str,
) -> Result<(), SearchError> {
    if value.is_empty() {
        return Err(SearchError::EmptyFilter(name, example));
    }
    match slot {
        Some(old) if *old != value => Err(SearchError::Repeated(name)),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// A text tokenized ahead for the index: intake tokenizes each mail's text on its
/// prepare threads, so that the one writer thread only copies the tokens into the
/// ticket's document ([`Document::add_indexed`]) when its batch commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexText {
    /// The tokens joined by spaces.
    tokens: String,
    count: usize,
    /// The tokens' bytes, spaces not counted.
    bytes: usize,
}

impl IndexText {
    pub fn of(text: &str) -> IndexText {
        let mut indexed = IndexText::default();
        tokenize(text, Mode::Index, |t, _, _| {
            if !indexed.tokens.is_empty() {
                indexed.tokens.push(' ');
            }
            indexed.tokens.push_str(t);
            indexed.count += 1;
            indexed.bytes += t.len();
        });
        indexed
    }
}

/// A ticket as it is indexed: tokens per field, in order, each field's tokens joined
/// by spaces (tokens are letters and digits only, so a space never occurs in one).
#[derive(Debug, Clone, Default)]
pub struct Document {
    fields: BTreeMap<Field, String>,
    count: usize,
    bytes: usize,
}

impl Document {
    /// Adds a text to a field (after what the field has), up to [`MAX_DOCUMENT_TOKENS`]
    /// and [`MAX_DOCUMENT_BYTES`] over the whole document.
    pub fn add(&mut self, field: Field, text: &str) {
        if self.is_full() {
            return;
        }
        let column = self.fields.entry(field).or_default();
        tokenize(text, Mode::Index, |t, _, _| {
            push_bounded(column, &mut self.count, &mut self.bytes, t)
        });
    }

    /// Adds a text tokenized ahead: the same as [`Document::add`] with that text.
    pub fn add_indexed(&mut self, field: Field, text: &IndexText) {
        if self.is_full() {
            return;
        }
        let column = self.fields.entry(field).or_default();
        let fits = self.count + text.count <= MAX_DOCUMENT_TOKENS
            && self.bytes + text.bytes <= MAX_DOCUMENT_BYTES;
        if !fits {
            for t in text.tokens.split(' ').filter(|t| !t.is_empty()) {
                push_bounded(column, &mut self.count, &mut self.bytes, t);
            }
            return;
        }
        if text.count > 0 {
            if !column.is_empty() {
                column.push(' ');
            }
            column.push_str(&text.tokens);
            self.count += text.count;
            self.bytes += text.bytes;
        }
    }

    /// Whether the document holds all it may.
    pub fn is_full(&self) -> bool {
        self.count >= MAX_DOCUMENT_TOKENS || self.bytes >= MAX_DOCUMENT_BYTES
    }

    /// A field's tokens joined by spaces: what an FTS5 column holds (its tokenizer then
    /// splits at the spaces only).
    pub fn column_text(&self, field: Field) -> &str {
        self.fields.get(&field).map_or("", String::as_str)
    }

    /// The document's lexemes in PostgreSQL's order (bytewise), each with its positions
    /// and each position's field weight, as `tsvector` keeps them: at most
    /// [`MAX_LEXEME_POSITIONS`] per lexeme, positions counted across the fields (apart by
    /// a gap, so that a phrase never runs from one into the next) and capped at
    /// [`MAX_POSITION`].
    ///
    /// Found by hashing, then sorted once: with a search tree kept in order as the tokens
    /// came, [`Document::tsvector_binary`] took a tenth of the importer's CPU samples on
    /// PostgreSQL (perf), all of it on the one writer thread.
    fn lexemes(&self) -> Vec<(&str, Vec<(u16, Field)>)> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut lexemes: Vec<(&str, Vec<(u16, Field)>)> = Vec::new();
        let mut position = 0usize;
        for field in Field::ALL {
            let tokens = self.column_text(field).split(' ').filter(|t| !t.is_empty());
            for token in tokens {
                position += 1;
                let i = *index.entry(token).or_insert_with(|| {
                    lexemes.push((token, Vec::new()));
                    lexemes.len() - 1
                });
                let positions = &mut lexemes[i].1;
                if positions.len() < MAX_LEXEME_POSITIONS {
                    positions.push((position.min(MAX_POSITION) as u16, field));
                }
            }
            position += 1;
        }
        lexemes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        lexemes
    }

    /// The document as a PostgreSQL `tsvector` literal: each token quoted, with its
    /// positions and each position's field weight. The tests' readable form of
    /// [`Document::tsvector_binary`], which is what is sent.
    #[cfg(test)]
    fn tsvector_literal(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (lexeme, positions) in self.lexemes() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push('\'');
            push_escaped_lexeme(&mut out, lexeme);
            out.push_str("':");
            for (i, (p, field)) in positions.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{p}{}", field.weight());
            }
        }
        out
    }

    /// The document in PostgreSQL's binary form of a `tsvector` (what its `tsvector_recv`
    /// reads): the same value as the document's text literal, which the server would
    /// otherwise parse character by character (a sixth of its CPU in the import bench).
    /// The number of lexemes (i32), then each lexeme as a NUL-ended string, its number
    /// of positions (u16) and each position (u16: the weight in the two high bits, A = 3
    /// … D = 0), all big-endian. Positions strictly increase; only the cap can repeat
    /// one, and PostgreSQL then keeps the higher weight, as its text form does.
    pub fn tsvector_binary(&self) -> Vec<u8> {
        let lexemes = self.lexemes();
        let mut out = Vec::with_capacity(4 + lexemes.len() * 16);
        out.extend_from_slice(&(lexemes.len() as i32).to_be_bytes());
        for (lexeme, positions) in lexemes {
            out.extend_from_slice(lexeme.as_bytes());
            out.push(0);
            let mut words: Vec<u16> = Vec::with_capacity(positions.len());
            for (p, field) in positions {
                let weight = match field.weight() {
                    'A' => 3u16,
                    'B' => 2,
                    'C' => 1,
                    _ => 0,
                };
                match words.last_mut() {
                    Some(last) if *last & 0x3fff == p => *last = (*last).max(weight << 14 | p),
                    _ => words.push(weight << 14 | p),
                }
            }
            out.extend_from_slice(&(words.len() as u16).to_be_bytes());
            for w in words {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        out
    }
}

/// PostgreSQL keeps at most 256 positions of a lexeme…
const MAX_LEXEME_POSITIONS: usize = 256;
/// …and positions up to 16,383 (larger ones count as that).
const MAX_POSITION: usize = 16_383;

/// Appends `token` to a document's `column` unless the document would then hold more
/// than [`MAX_DOCUMENT_TOKENS`] tokens or [`MAX_DOCUMENT_BYTES`] bytes of them.
fn push_bounded(column: &mut String, count: &mut usize, bytes: &mut usize, token: &str) {
    if *count < MAX_DOCUMENT_TOKENS && *bytes + token.len() <= MAX_DOCUMENT_BYTES {
        *bytes += token.len();
        if !column.is_empty() {
            column.push(' ');
        }
        column.push_str(token);
        *count += 1;
    }
}

/// A lexeme inside single quotes of a tsvector or tsquery literal. Tokens are letters
/// and digits only, but quotes and backslashes are escaped all the same.
pub fn push_escaped_lexeme(out: &mut String, lexeme: &str) {
    for c in lexeme.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A result's snippet as HTML: the text escaped, the matched tokens in `<mark>`. Only
/// [`snippet`] makes one, so a value of this type is safe to put in a page as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SnippetHtml(String);

impl SnippetHtml {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A byte range of a text.
type Span = (usize, usize);

/// How many characters a snippet shows around its first match.
const SNIPPET_BEFORE: usize = 60;
const SNIPPET_LENGTH: usize = 220;

/// The best of `texts` for `terms`: the one with the most matched tokens, cut around its
/// first match, matches marked. `None` when no text contains any token of the terms.
pub fn snippet<'t>(
    texts: impl IntoIterator<Item = &'t str>,
    terms: &[Term],
) -> Option<SnippetHtml> {
    let wanted: Vec<(&str, bool)> = terms
        .iter()
        .flat_map(|t| {
            let last = t.tokens.len() - 1;
            t.tokens
                .iter()
                .enumerate()
                .map(move |(i, tok)| (tok.as_str(), t.prefix && i == last))
        })
        .collect();
    let matches = |token: &str| {
        wanted.iter().any(|(w, prefix)| {
            if *prefix {
                token.starts_with(w)
            } else {
                token == *w
            }
        })
    };
    // The text with the most hits, and the hits' byte ranges.
    let mut best: Option<(&str, Vec<Span>)> = None;
    for text in texts {
        let mut hits: Vec<Span> = Vec::new();
        tokenize(text, Mode::Index, |t, span, _| {
            if matches(t) {
                hits.push(span);
            }
        });
        if !hits.is_empty() && best.as_ref().is_none_or(|(_, b)| hits.len() > b.len()) {
            best = Some((text, hits));
        }
    }
    let (text, hits) = best?;
    // Overlapping hits (bigrams) merge into one mark.
    let mut merged: Vec<Span> = Vec::new();
    for (s, e) in hits {
        match merged.last_mut() {
            Some((_, last_end)) if s <= *last_end => *last_end = (*last_end).max(e),
            _ => merged.push((s, e)),
        }
    }
    let first = merged[0].0;
    let start = text[..first]
        .char_indices()
        .rev()
        .nth(SNIPPET_BEFORE - 1)
        .map_or(0, |(i, _)| i);
    let end = text[start..]
        .char_indices()
        .nth(SNIPPET_LENGTH)
        .map_or(text.len(), |(i, _)| start + i);
    let mut html = String::new();
    if start > 0 {
        html.push('…');
    }
    let mut at = start;
    for (s, e) in merged {
        if s >= end {
            break;
        }
        let (s, e) = (s.max(at), e.min(end));
        if s < at || e <= s {
            continue;
        }
        push_escaped_html(&squash(&text[at..s]), &mut html);
        html.push_str("<mark>");
        push_escaped_html(&text[s..e], &mut html);
        html.push_str("</mark>");
        at = e;
    }
    push_escaped_html(&squash(&text[at..end]), &mut html);
    if end < text.len() {
        html.push('…');
    }
    Some(SnippetHtml(html))
}

/// Line breaks and runs of spaces as one space: a snippet is one line.
fn squash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(tokens: &[Token]) -> Vec<&str> {
        tokens.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn latin_cyrillic_and_addresses_are_words() {
        assert_eq!(
            words(&index_tokens(
                "Printer BROKEN: alice@example.com, Принтер сломан!"
            )),
            [
                "printer",
                "broken",
                "alice",
                "example",
                "com",
                "принтер",
                "сломан"
            ]
        );
    }

    #[test]
    fn cjk_runs_are_bigrams_with_their_last_character() {
        assert_eq!(
            words(&index_tokens("打印机坏了 ok")),
            ["打印", "印机", "机坏", "坏了", "了", "ok"]
        );
        let q = parse("打印机 打").unwrap();
        assert_eq!(q.terms[0].tokens, ["打印", "印机"]);
        assert!(!q.terms[0].prefix);
        assert_eq!(q.terms[1].tokens, ["打"]);
        assert!(q.terms[1].prefix);
    }

    #[test]
    fn queries_have_words_phrases_and_filters() {
        let q = parse(
            r#"printer "paper jam" from:"Ann Lee" status:open helpdesk:Support has:attachment"#,
        )
        .unwrap();
        assert_eq!(q.terms.len(), 2);
        assert_eq!(q.terms[1].tokens, ["paper", "jam"]);
        assert_eq!(q.from[0].tokens, ["ann", "lee"]);
        assert_eq!(q.status.as_deref(), Some("open"));
        assert_eq!(q.helpdesk.as_deref(), Some("Support"));
        assert!(q.has_attachment());
        let q = parse("re: http://x.example/a from:bob@example.com").unwrap();
        assert_eq!(q.terms[0].tokens, ["re"]);
        assert_eq!(q.terms[1].tokens, ["http", "x", "example", "a"]);
        assert_eq!(q.from[0].tokens, ["bob", "example", "com"]);
    }

    #[test]
    fn hostile_queries_get_errors_or_plain_tokens() {
        assert_eq!(parse("\"open"), Err(SearchError::UnclosedQuote(1)));
        assert_eq!(
            parse("from:"),
            Err(SearchError::EmptyFilter("from", "ann@example.com"))
        );
        assert_eq!(
            parse("has:cake"),
            Err(SearchError::UnknownHas("cake".into()))
        );
        assert_eq!(
            parse("status:a status:b"),
            Err(SearchError::Repeated("status"))
        );
        assert!(matches!(
            parse(&"x".repeat(2000)),
            Err(SearchError::TooLong(2000))
        ));
        let many: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        assert_eq!(parse(&many.join(" ")), Err(SearchError::TooManyTerms));
        // FTS5 and tsquery operators are separators; NUL is a space.
        let q = parse("a* OR b NEAR(c) -d ^e |f &g! \0h 'i'").unwrap();
        let all: Vec<&str> = q
            .terms
            .iter()
            .flat_map(|t| &t.tokens)
            .map(String::as_str)
            .collect();
        assert_eq!(
            all,
            ["a", "or", "b", "near", "c", "d", "e", "f", "g", "h", "i"]
        );
        assert!(parse("- * \"\"").unwrap().is_empty());
    }

    #[test]
    fn the_tsvector_literal_has_weights_and_positions() {
        let mut d = Document::default();
        d.add(Field::Title, "Printer");
        d.add(Field::Body, "the printer");
        assert_eq!(d.tsvector_literal(), "'printer':1A,6D 'the':5D");
        let mut binary = vec![0, 0, 0, 2];
        binary.extend_from_slice(b"printer\0");
        binary.extend_from_slice(&[0, 2, 0xc0, 1, 0, 6]);
        binary.extend_from_slice(b"the\0");
        binary.extend_from_slice(&[0, 1, 0, 5]);
        assert_eq!(d.tsvector_binary(), binary);
        assert_eq!(d.column_text(Field::Body), "the printer");
    }

    #[test]
    fn documents_are_bounded() {
        let mut d = Document::default();
        let long: String = (0..40_000).map(|i| format!("w{i} ")).collect();
        d.add(Field::Body, &long);
        d.add(Field::Files, "late.txt");
        assert!(d.is_full());
        assert_eq!(
            d.column_text(Field::Body).split(' ').count(),
            MAX_DOCUMENT_TOKENS
        );
        assert_eq!(d.column_text(Field::Files), "");
        let mut d = Document::default();
        let wide = format!("{} ", "界".repeat(MAX_TOKEN_CHARS)).repeat(10_000);
        d.add(Field::Body, &"ü".repeat(MAX_TOKEN_CHARS * 2));
        d.add(Field::Body, &wide);
        assert!(d.tsvector_literal().len() < 1_000_000);
    }

    #[test]
    fn a_text_tokenized_ahead_makes_the_same_document() {
        let texts = [
            "Der Drucker druckt nicht. 打印机坏了 ok",
            "",
            "-- ** --",
            &"wort ".repeat(MAX_DOCUMENT_TOKENS / 2 + 7),
            &"ü".repeat(MAX_TOKEN_CHARS * 3),
            &"mehr ".repeat(MAX_DOCUMENT_TOKENS / 2),
        ];
        let (mut direct, mut ahead) = (Document::default(), Document::default());
        for (i, text) in texts.iter().enumerate() {
            let field = Field::ALL[i % Field::ALL.len()];
            direct.add(field, text);
            ahead.add_indexed(field, &IndexText::of(text));
            for f in Field::ALL {
                assert_eq!(
                    ahead.column_text(f),
                    direct.column_text(f),
                    "after text {i}"
                );
            }
        }
        assert!(ahead.is_full());
        assert_eq!(ahead.tsvector_literal(), direct.tsvector_literal());
    }

    #[test]
    fn snippets_mark_matches_and_keep_html_inert() {
        let q = parse("printer").unwrap();
        let s = snippet(
            [
                "nothing here",
                "<script>alert(1)</script> the Printer & <b>jam</b>",
            ],
            &q.terms,
        )
        .unwrap();
        assert_eq!(
            s.as_str(),
            "&lt;script&gt;alert(1)&lt;/script&gt; the <mark>Printer</mark> &amp; &lt;b&gt;jam&lt;/b&gt;"
        );
        let q = parse("打印机").unwrap();
        let s = snippet(["我的打印机坏了"], &q.terms).unwrap();
        assert_eq!(s.as_str(), "我的<mark>打印机</mark>坏了");
        assert!(snippet(["nothing"], &q.terms).is_none());
        let long = format!("{} needle {}", "a ".repeat(200), "b ".repeat(200));
        let s = snippet([long.as_str()], &parse("needle").unwrap().terms).unwrap();
        assert!(s.as_str().starts_with('…') && s.as_str().ends_with('…'));
        assert!(s.as_str().contains("<mark>needle</mark>"));
    }
}
