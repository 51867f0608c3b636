//! Line recognisers for the quote scanner: attribution lines ("On … wrote:"),
//! forwarded-header fields ("From:", "Von:", "De :" …), "Original Message"
//! separators and signature starts.
//!
//! Everything here looks at one line, or at a few joined lines, of bounded
//! length, without regexes: the scanner calls these a constant number of
//! times per line, so stripping stays linear in the input size.

/// Lines longer than this are never headers or signatures (long lines are body text;
/// the cap also bounds the work done per line).
pub(super) const MAX_HEADER_LEN: usize = 400;

/// Characters that render as nothing: treated like spaces so that an HTML-derived
/// line holding only a left-to-right mark or a zero-width space counts as blank.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
}

pub(super) fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

pub(super) fn is_blank(line: &str) -> bool {
    line.chars().all(is_space)
}

/// A line quoted with `>` (any depth).
pub(super) fn is_quoted(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('>')
}

/// Decoration-only lines ("-----", "=====", "*****"): kept out of the reply's end,
/// where they are left over from a cut separator, and never counted as own text.
pub(super) fn is_filler(line: &str) -> bool {
    let t = trim(line);
    !t.is_empty()
        && t.chars()
            .all(|c| matches!(c, '-' | '=' | '*' | '~' | '#' | '_') || is_space(c))
}

/// A link reference that HTML-to-text conversion appends at the end of the text
/// ("[1]: mailto:abc@example.com"): not something the sender typed.
pub(super) fn is_link_reference(line: &str) -> bool {
    let t = trim(line);
    let Some(rest) = t.strip_prefix('[') else {
        return false;
    };
    let Some((number, target)) = rest.split_once("]:") else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !target.trim().is_empty()
        && !target.trim().contains(char::is_whitespace)
}

/// The RFC 3676 signature delimiter `-- ` (often mangled to `--`).
pub(super) fn is_sig_delimiter(line: &str) -> bool {
    trim(line) == "--"
}

/// A line of underscores: Outlook's separator above a forwarded header, or the
/// start of a mailing-list footer (mailman) — either way not part of the reply.
pub(super) fn is_underscore_rule(line: &str) -> bool {
    let t = trim(line);
    t.len() >= 2 && t.bytes().all(|b| b == b'_')
}

/// "-----Original Message-----" and its translations, "---------- Forwarded message
/// ---------", "Begin forwarded message:".
const SEPARATOR_PHRASES: &[&str] = &[
    "original message",
    "forwarded message",
    "begin forwarded message",
    "message d'origine",
    "message d’origine",
    "message transféré",
    "début du message réexpédié",
    "ursprüngliche nachricht",
    "originalnachricht",
    "original-nachricht",
    "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht",
    "oprindelig besked",
    "videresendt besked",
    "opprinnelig melding",
    "videresendt melding",
    "ursprungligt meddelande",
    "vidarebefordrat meddelande",
    "mensaje original",
    "mensaje reenviado",
    "messaggio originale",
    "messaggio inoltrato",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "przekazana wiadomość",
    "mensagem original",
    "mensagem encaminhada",
    "alkuperäinen viesti",
    "välitetty viesti",
    "исходное сообщение",
    "пересылаемое сообщение",
    "переадресованное сообщение",
];

pub(super) fn is_separator(line: &str) -> bool {
    let t = trim(line);
    // Only the decorated form ("-----Original Message-----", "Begin forwarded
    // message:"): a line that just says "original message" may be prose.
    if t.len() > 80 || !(t.contains("--") || t.ends_with(':')) {
        return false;
    }
    let core = t
        .trim_matches(|c: char| matches!(c, '-' | '_' | '=' | '*' | ':') || is_space(c))
        .to_lowercase();
    let core = core.split_whitespace().collect::<Vec<_>>().join(" ");
    SEPARATOR_PHRASES.contains(&core.as_str())
}

/// Field names of a forwarded/quoted header block, in the languages mail clients
/// write them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    From,
    Sent,
    Date,
    To,
    Cc,
    Subject,
}

const FIELD_LABELS: &[(&str, Field)] = &[
    // From
    ("from", Field::From),
    ("von", Field::From),
    ("de", Field::From),
    ("van", Field::From),
    ("da", Field::From),
    ("od", Field::From),
    ("fra", Field::From),
    ("från", Field::From),
    ("lähettäjä", Field::From),
    ("feladó", Field::From),
    ("odesílatel", Field::From),
    ("kimden", Field::From),
    ("от", Field::From),
    ("发件人", Field::From),
    ("差出人", Field::From),
    // Sent (Outlook's own word: a strong signal on its own)
    ("sent", Field::Sent),
    ("gesendet", Field::Sent),
    ("envoyé", Field::Sent),
    ("envoyé le", Field::Sent),
    ("enviado", Field::Sent),
    ("enviada", Field::Sent),
    ("enviado el", Field::Sent),
    ("inviato", Field::Sent),
    ("verzonden", Field::Sent),
    ("wysłano", Field::Sent),
    ("wysłane", Field::Sent),
    ("sendt", Field::Sent),
    ("skickat", Field::Sent),
    ("lähetetty", Field::Sent),
    ("elküldve", Field::Sent),
    ("odesláno", Field::Sent),
    ("gönderildi", Field::Sent),
    ("отправлено", Field::Sent),
    ("发送时间", Field::Sent),
    ("送信日時", Field::Sent),
    // Date
    ("date", Field::Date),
    ("datum", Field::Date),
    ("fecha", Field::Date),
    ("data", Field::Date),
    ("dato", Field::Date),
    ("päivämäärä", Field::Date),
    ("dátum", Field::Date),
    ("tarih", Field::Date),
    ("дата", Field::Date),
    ("message du", Field::Date),
    // To
    ("to", Field::To),
    ("an", Field::To),
    ("à", Field::To),
    ("a", Field::To),
    ("para", Field::To),
    ("aan", Field::To),
    ("do", Field::To),
    ("till", Field::To),
    ("til", Field::To),
    ("vastaanottaja", Field::To),
    ("címzett", Field::To),
    ("komu", Field::To),
    ("kime", Field::To),
    ("кому", Field::To),
    ("收件人", Field::To),
    ("宛先", Field::To),
    // Cc
    ("cc", Field::Cc),
    ("kopie", Field::Cc),
    ("copie", Field::Cc),
    ("copie à", Field::Cc),
    ("copia", Field::Cc),
    ("kopia", Field::Cc),
    ("kopio", Field::Cc),
    ("dw", Field::Cc),
    ("másolat", Field::Cc),
    ("копия", Field::Cc),
    ("抄送", Field::Cc),
    // Subject
    ("subject", Field::Subject),
    ("betreff", Field::Subject),
    ("objet", Field::Subject),
    ("sujet", Field::Subject),
    ("asunto", Field::Subject),
    ("oggetto", Field::Subject),
    ("onderwerp", Field::Subject),
    ("temat", Field::Subject),
    ("emne", Field::Subject),
    ("ämne", Field::Subject),
    ("aihe", Field::Subject),
    ("tárgy", Field::Subject),
    ("předmět", Field::Subject),
    ("assunto", Field::Subject),
    ("konu", Field::Subject),
    ("тема", Field::Subject),
    ("主题", Field::Subject),
    ("件名", Field::Subject),
];

fn field_named(label: &str) -> Option<Field> {
    let label = label.replace('*', "").to_lowercase();
    let label = label
        .split(is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    FIELD_LABELS
        .iter()
        .find(|(name, _)| *name == label)
        .map(|&(_, f)| f)
}

/// Splits `Label: value` when the label (≤ 24 characters, HTML bold `**` allowed
/// around it, a space before the colon allowed as French writes it) names a header
/// field. Returns the field and its value.
pub(super) fn field_line(line: &str) -> Option<(Field, &str)> {
    if line.len() > MAX_HEADER_LEN {
        return None;
    }
    let s = line.trim_start_matches(|c: char| c == '*' || is_space(c));
    let (idx, colon) = s
        .char_indices()
        .take(25)
        .find(|&(_, c)| c == ':' || c == '：')?;
    let field = field_named(&s[..idx])?;
    let value = s[idx + colon.len_utf8()..].trim_matches(|c: char| c == '*' || is_space(c));
    Some((field, value))
}

/// `field_line`, but also accepting a "From:" that follows other text on the line:
/// HTML-to-text rendering glues the last words above an `<hr>` to the header below
/// it ("Bob **From: **bob@example.com"). Only used for the first line of a block
/// that has more fields below it.
pub(super) fn field_line_loose(line: &str) -> Option<(Field, &str)> {
    if let Some(found) = field_line(line) {
        return Some(found);
    }
    if line.len() > MAX_HEADER_LEN {
        return None;
    }
    let (head, value) = line.split_once(':')?;
    let last_word = head.replace('*', "");
    let last_word = last_word.split(is_space).rfind(|w| !w.is_empty())?;
    let value = value.trim_matches(|c: char| c == '*' || is_space(c));
    (field_named(last_word) == Some(Field::From) && value.contains('@'))
        .then_some((Field::From, value))
}

/// An address, `[mailto:…]`, `<…>` or a rendered link: what a From value of a real
/// header carries (and prose rarely does).
pub(super) fn looks_like_address(value: &str) -> bool {
    value.contains('@') || value.contains('<') || value.contains('[')
}

/// Words that begin an attribution line: "On", "Le", "Am", "El", "Il", "Em", "Op",
/// "Dnia", "Den", "在"; two-word ones ("W dniu", "In data") are in `LEAD_PAIRS`.
const LEAD_WORDS: &[&str] = &[
    "on", "le", "el", "il", "em", "am", "op", "dnia", "den", "在",
];
const LEAD_PAIRS: &[(&str, &str)] = &[("w", "dniu"), ("in", "data")];
/// Weekday abbreviations some clients start with ("pe 20. lokakuuta", "tir. 18. apr.",
/// "ср, 30 апр.", "Wednesday, 17 November"): a lead only when a day number follows,
/// since most of them are ordinary words too ("to", "man", "la").
const WEEKDAYS: &[&str] = &[
    "ma", "ti", "ke", "to", "pe", "la", "su", "man", "tir", "ons", "tor", "fre", "lør", "søn",
    "mån", "tis", "tors", "lör", "sön", "пн", "вт", "ср", "чт", "пт", "сб", "вс",
];
const EN_WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Whether a line could be the first line of an attribution.
pub(super) fn starts_like_attribution(line: &str) -> bool {
    let t = line.trim_start_matches(|c: char| c == '-' || is_space(c));
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let mut words = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    let (Some(word), second) = (words.next(), words.next().unwrap_or_default()) else {
        return false;
    };
    if word.len() > 12 {
        return false;
    }
    let word = word.to_lowercase();
    let day_follows = second.starts_with(|c: char| c.is_ascii_digit());
    LEAD_WORDS.contains(&word.as_str())
        || LEAD_PAIRS.contains(&(word.as_str(), second.to_lowercase().as_str()))
        || (day_follows && WEEKDAYS.contains(&word.as_str()))
        || (day_follows && word.len() >= 3 && EN_WEEKDAYS.iter().any(|d| word.starts_with(d)))
}

/// Verbs that end an attribution: "… wrote:", "… a écrit :", "… napisał(a):".
const END_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "écrit",
    "escribió",
    "scritto",
    "escreveu",
    "schrieb",
    "schreef",
    "geschreven",
    "skrev",
    "pisze",
    "napisał",
    "napisała",
    "kirjoitti",
    "írta",
    "yazdı",
    "napsal",
    "написал",
    "написала",
    "пишет",
];
/// Verbs followed by the sender's name: "Am … schrieb NAME <EMAIL>:".
const MID_VERBS: &[&str] = &["schrieb", "schreef", "skrev"];
/// Scripts without word spacing: matched as a plain suffix.
const CJK_END_VERBS: &[&str] = &["写道", "작성", "のメッセージ", "寫道"];

fn ends_with_word(s: &str, word: &str) -> bool {
    s.strip_suffix(word).is_some_and(|before| {
        !before
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    })
}

fn has_word(s: &str, word: &str) -> bool {
    s.split(|c: char| !c.is_alphanumeric()).any(|w| w == word)
}

/// A clock time such as `14:30`, `18.30` or `9:05`.
fn has_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(4).any(|w| {
        w[0].is_ascii_digit()
            && matches!(w[1], b':' | b'.')
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

/// An attribution line (possibly several lines joined with spaces): "On DATE, NAME
/// <EMAIL> wrote:" in any of the supported languages, or the verb-less "DATE, NAME
/// <EMAIL>:" form of Yandex/Mail.ru/Russian Gmail. It must carry a date or an
/// address, so that prose such as "On your host you can run:" is not one.
pub(super) fn is_attribution(joined: &str) -> bool {
    if joined.len() > MAX_HEADER_LEN {
        return false;
    }
    // Zoho writes "---- On … wrote ----".
    let h = joined.trim_matches(|c: char| c == '-' || is_space(c));
    let has_at = h.contains('@');
    if !(has_at || h.chars().any(|c| c.is_ascii_digit())) {
        return false;
    }
    let lower = h.to_lowercase();
    let (body, colon) = match lower.strip_suffix(':').or_else(|| lower.strip_suffix('：')) {
        Some(body) => (body.trim_end_matches(is_space), true),
        None => (lower.as_str(), false),
    };
    // "napisał(a):", "написал(а):" (Latin and Cyrillic a).
    let body = body
        .strip_suffix("(a)")
        .or_else(|| body.strip_suffix("(а)"))
        .unwrap_or(body);
    let lead = starts_like_attribution(h);
    if !colon {
        // Some clients drop the colon: "On Wed, 14 Nov 2018 … <john@doe.com> wrote".
        return lead && lower.starts_with("on") && ends_with_word(body, "wrote");
    }
    if CJK_END_VERBS.iter().any(|v| body.ends_with(v)) {
        return true;
    }
    if END_VERBS.iter().any(|v| ends_with_word(body, v)) {
        return lead || has_at || h.contains('<') || has_time(h);
    }
    if MID_VERBS.iter().any(|v| has_word(body, v)) {
        return lead || has_at;
    }
    // "30.09.2017, 18.30, "John" <john@example.com>:" / "ср, 30 апр. 2025 г. в 15:19, John <j@x>:"
    body.ends_with('>') && has_at && has_time(h)
}

/// A "Label:" line introducing a `>` block that carries an address or a time
/// ("26.06.2014, 14:41, "Alexander L" <abc@example.com>:"). Only used right above a
/// quoted block, where the odd attribution formats of smaller clients show up.
pub(super) fn is_loose_attribution(line: &str) -> bool {
    let t = trim(line);
    t.len() <= MAX_HEADER_LEN
        && (t.ends_with(':') || t.ends_with('：'))
        && (t.contains('@') || has_time(t))
}

/// Footers added by mobile and desktop clients: "Sent from my iPhone", "Get Outlook
/// for iOS", "Von meinem iPhone gesendet", "Envoyé de mon iPad" …
const MOBILE_PREFIXES: &[&str] = &[
    "Sent from ",
    "Sent with ",
    "Sent via ",
    "Get Outlook for ",
    "Envoyé de ",
    "Envoyé depuis ",
    "Envoyé à partir de ",
    "Télécharger Outlook pour ",
    "Gesendet von ",
    "Gesendet mit ",
    "Von meinem ",
    "Enviado desde ",
    "Enviado do ",
    "Enviado de ",
    "Inviato da ",
    "Verzonden vanaf ",
    "Verzonden met ",
    "Verstuurd vanaf ",
    "Verstuurd met ",
    "Sendt fra ",
    "Skickat från ",
    "Wysłane z ",
    "Wysłano z ",
    "Lähetetty ",
    "Отправлено с ",
];
/// "Sent from a magnificent torch of pixels" is a sentence, not a device footer.
const NOT_A_DEVICE: &[&str] = &[
    "a", "an", "the", "our", "this", "that", "here", "there", "home", "work",
];

pub(super) fn is_mobile_signature(line: &str) -> bool {
    let t = trim(line);
    if t.len() > 200 {
        return false;
    }
    let Some(rest) = MOBILE_PREFIXES.iter().find_map(|p| t.strip_prefix(p)) else {
        return false;
    };
    if rest.contains("http") {
        // "Sent from TypeApp<http://…>", "Get Outlook for iOS<https://aka.ms/…>"
        return rest.split_whitespace().count() <= 8;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let first = words.first().map(|w| w.to_lowercase()).unwrap_or_default();
    (1..=5).contains(&words.len()) && !rest.contains(',') && !NOT_A_DEVICE.contains(&first.as_str())
}

/// Closing lines after which only the sender's name and title follow.
const SIGN_OFFS: &[&str] = &[
    "regards",
    "best regards",
    "kind regards",
    "kindest regards",
    "warm regards",
    "warmest regards",
    "with regards",
    "many regards",
    "cheers",
    "best wishes",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "freundliche grüße",
    "viele grüße",
    "beste grüße",
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "saludos",
    "saludos cordiales",
    "un saludo",
    "cordiali saluti",
    "distinti saluti",
    "pozdrawiam",
    "z poważaniem",
    "atenciosamente",
    "med vennlig hilsen",
    "med venlig hilsen",
    "venlig hilsen",
    "med vänliga hälsningar",
    "vänliga hälsningar",
    "ystävällisin terveisin",
    "с уважением",
];

pub(super) fn is_sign_off(line: &str) -> bool {
    let t = trim(line);
    if t.len() > 40 {
        return false;
    }
    let t = t
        .trim_end_matches(|c: char| matches!(c, ',' | '!' | '.' | '！') || is_space(c))
        .to_lowercase();
    SIGN_OFFS.contains(&t.as_str())
}
