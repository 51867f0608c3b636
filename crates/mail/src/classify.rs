//! Labels a parsed mail: normal, auto-reply, bounce, list mail, own-address loop.
//!
//! Precedence: `Loop` > `Bounce` > `AutoReply` > `Bulk` > `Normal`.
//!
//! Decisions worth knowing:
//! - Feedback reports (`multipart/report; report-type=feedback-report`, ARF abuse
//!   complaints) are `Bounce`: they are machine reports about a mail we sent, not a
//!   customer request. Any other `multipart/report` except read receipts is `Bounce` too.
//! - Read receipts (`report-type=disposition-notification`, MDN) are `AutoReply`.
//! - `X-Auto-Response-Suppress` (`All`, `AutoReply`, `OOF`) alone does not make a mail
//!   an auto-reply: Outlook and Exchange put it on ordinary mail (meeting requests,
//!   mails to lists…). Alone it makes the mail `Bulk`: a ticket is still made, but no
//!   acknowledgement is sent to a sender who asked for none. Together with a weak
//!   signal (a null Return-Path `<>`, `Precedence: bulk|junk`, Exchange's
//!   `X-MS-Exchange-Generated-Message-Source` / `X-MS-Exchange-Inbox-Rules-Loop`) it is
//!   an `AutoReply`. `X-MS-Exchange-Inbox-Rules-Loop` alone (an inbox rule acted on the
//!   mail, which may be a customer's mail redirected to us) is `Bulk` for the same reason.
//! - A loop is also a mail whose `X-Loop` names one of our addresses, or whose
//!   Message-ID is one postdesk made (`pd.…@` one of our domains) coming back.
//! - [`classify_with_signal`] names the signal that decided, for `rules test` and the entry.
//! - Out-of-office subjects are only recognised at the start of the subject and
//!   followed by a colon, bracket or the end, so "Out of office printer broken"
//!   from a customer stays normal.

use std::sync::LazyLock;

use regex::Regex;

use crate::ParsedMail;

/// What kind of mail this is. Duplicates are found by the store, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    Normal,
    AutoReply,
    Bounce,
    /// Mailing-list or bulk mail (List-Id, Precedence: bulk/list/junk).
    Bulk,
    /// From one of our own support addresses.
    Loop,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::AutoReply => "auto-reply",
            Self::Bounce => "bounce",
            Self::Bulk => "bulk",
            Self::Loop => "loop",
        }
    }
}

/// A classification and the signal that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Classification,
    /// What decided, as people read it: `Auto-Submitted: auto-replied`,
    /// `X-Loop names support@example.com`, `List-Id`…; for `Normal`, `no automatic-mail signal`.
    pub signal: String,
}

/// `own_addresses` are lower-case support addresses of the helpdesk.
pub fn classify(mail: &ParsedMail, own_addresses: &[String]) -> Classification {
    classify_with_signal(mail, own_addresses).class
}

/// [`classify`], naming the signal that decided.
pub fn classify_with_signal(mail: &ParsedMail, own_addresses: &[String]) -> Verdict {
    let verdict = |class, signal: String| Verdict { class, signal };
    if let Some(s) = loop_signal(mail, own_addresses) {
        verdict(Classification::Loop, s)
    } else if let Some(s) = bounce_signal(mail) {
        verdict(Classification::Bounce, s)
    } else if let Some(s) = auto_reply_signal(mail) {
        verdict(Classification::AutoReply, s)
    } else if let Some(s) = bulk_signal(mail) {
        verdict(Classification::Bulk, s)
    } else {
        verdict(Classification::Normal, "no automatic-mail signal".into())
    }
}

/// A header value, shortened for a signal's description.
fn shown(v: &str) -> String {
    let v = v.trim();
    if v.chars().count() > 60 {
        format!("{}…", v.chars().take(60).collect::<String>())
    } else {
        v.to_string()
    }
}

/// Message-ID of the original mail a bounce (or report) refers to, when the
/// bounce carried the original or its headers.
pub fn bounced_message_id(mail: &ParsedMail) -> Option<&str> {
    mail.structure
        .embedded_message_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

fn loop_signal(mail: &ParsedMail, own_addresses: &[String]) -> Option<String> {
    let is_own = |email: &str| {
        let key = crate::Address {
            name: None,
            email: email.to_string(),
        }
        .email_key();
        !key.is_empty()
            && own_addresses
                .iter()
                .any(|own| own.trim().eq_ignore_ascii_case(&key))
    };
    if let Some(from) = &mail.from
        && is_own(&from.email)
    {
        return Some(format!("From is our own address {}", from.email_key()));
    }
    for (name, value) in &mail.headers {
        if name.eq_ignore_ascii_case("X-Loop")
            && let Some(own) = value
                .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
                .find(|w| w.contains('@') && is_own(w))
        {
            return Some(format!(
                "X-Loop names our address {}",
                own.to_ascii_lowercase()
            ));
        }
    }
    // A Message-ID postdesk made (`pd.<time>.<random>@<our domain>`) coming back.
    if let Some(id) = &mail.message_id
        && let Some((local, domain)) = id.rsplit_once('@')
        && local.starts_with("pd.")
        && own_addresses.iter().any(|own| {
            own.rsplit_once('@')
                .is_some_and(|(_, d)| d.trim().eq_ignore_ascii_case(domain))
        })
    {
        return Some(format!("Message-ID {id} is one of ours"));
    }
    None
}

/// Delivery reports, non-delivery notices and feedback (abuse) reports.
pub fn is_bounce(mail: &ParsedMail) -> bool {
    bounce_signal(mail).is_some()
}

fn bounce_signal(mail: &ParsedMail) -> Option<String> {
    if let Some(report) = report_type(mail) {
        return (report != "disposition-notification")
            .then(|| format!("multipart/report; report-type={report}"));
    }
    if mail.header("X-Failed-Recipients").is_some() {
        return Some("X-Failed-Recipients".into());
    }
    if from_daemon(mail) {
        return Some("From is a mailer daemon or postmaster".into());
    }
    if mail.return_path.as_deref() == Some("")
        && dsn_subject(&mail.subject)
        && !AUTO_SUBJECT.is_match(&mail.subject)
    {
        return Some("null Return-Path and a delivery-failure subject".into());
    }
    // A DSN subject on a mail that carries the original (not a reply or forward).
    if dsn_subject(&mail.subject)
        && !REPLY_PREFIX.is_match(&mail.subject)
        && mail.structure.embedded_message_id.is_some()
    {
        return Some("delivery-failure subject and the original mail attached".into());
    }
    has_dsn_part(mail).then(|| "a delivery-status part".into())
}

/// Signals used by `parse` to decide whether scanning the body for the original's
/// Message-ID is worth it (cheap, generous).
pub(crate) fn looks_like_bounce(mail: &ParsedMail) -> bool {
    report_type(mail).is_some()
        || from_daemon(mail)
        || mail.return_path.as_deref() == Some("")
        || dsn_subject(&mail.subject)
        || mail.header("X-Failed-Recipients").is_some()
}

fn report_type(mail: &ParsedMail) -> Option<&str> {
    if mail.structure.content_type != "multipart/report" {
        return None;
    }
    Some(mail.structure.report_type.as_deref().unwrap_or(""))
}

fn has_dsn_part(mail: &ParsedMail) -> bool {
    mail.attachments.iter().any(|a| {
        matches!(
            a.mime_type.as_str(),
            "message/delivery-status"
                | "message/global-delivery-status"
                | "message/feedback-report"
        )
    })
}

/// From MAILER-DAEMON@ or postmaster@ (also written `mailer_daemon`, `post_master`…).
/// Without a usable From address (`From: MAILER-DAEMON <>`, `From: mailer-daemon`),
/// the From header text itself is looked at.
fn from_daemon(mail: &ParsedMail) -> bool {
    let is_daemon = |local: &str| {
        let squashed: String = local
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        matches!(
            squashed.as_str(),
            "mailerdaemon" | "postmaster" | "maildaemon"
        )
    };
    match &mail.from {
        Some(from) => is_daemon(from.email_key().split('@').next().unwrap_or("")),
        None => mail.header("From").is_some_and(|v| {
            v.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ',' | '(' | ')'))
                .any(|w| is_daemon(w.split('@').next().unwrap_or("")))
        }),
    }
}

static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(re|fw|fwd|aw|wg|tr|sv|vs|rv)\s*(\[\d+\])?\s*:").expect("valid regex")
});

static DSN_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
            undeliver | delivery\s+(status|failure|failed|notification|has\s+failed|report|error)
          | returned\s+mail | returned\s+to\s+sender | mail\s+delivery\s+(failed|failure|system|subsystem)
          | failure\s+notice | non[-\s]?delivery | nondeliverable | could\s+not\s+be\s+delivered
          | couldn't\s+be\s+delivered | message\s+not\s+delivered | unable\s+to\s+deliver | mail\s+system\s+error
          | warning:\s+could\s+not\s+send | error\s+sending\s+your\s+mail | unzustellbar | nicht\s+zustellbar
          | (é|e)chec\s+de\s+(la\s+)?remise | non\s+remis | email\s+feedback\s+report
          | エラー通知 | 配信できません | 配送エラー | 不達 | 送信できませんでした
        ",
    )
    .expect("valid regex")
});

fn dsn_subject(subject: &str) -> bool {
    DSN_SUBJECT.is_match(subject)
}

static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^[\s\[\(]*(
            automatic\s+reply | auto[-\s]?reply | auto[-\s]?response | autoresponse | auto[-\s]?respond(er)?
          | out\s+of\s+(the\s+)?office(\s+auto[-\s]?reply|\s+reply)?
          | abwesenheitsnotiz | abwesenheit | automatische\s+antwort | automatische\s+r(ü|ue)ckantwort
          | r(é|e)ponse\s+automatique | absence | respuesta\s+autom(á|a)tica | risposta\s+automatica
          | resposta\s+autom(á|a)tica | automatisch\s+antwoord | afwezig | automatiskt\s+svar
          | automaattinen\s+vastaus | automatisk\s+svar | odpowied(ź|z)\s+automatyczna
          | automatick(á|a)\s+odpov(ě|e)(ď|d) | avtomaticheskiy\s+otvet | автоматический\s+ответ
          | 自動応答 | 自动回复 | 自動回覆
          | auto | vacation(\s+reply)? | on\s+vacation
        )\s*(:|\]|\)|$)",
    )
    .expect("valid regex")
});

/// Out-of-office and other automatic answers (RFC 3834 and the usual vendor headers).
pub fn is_auto_reply(mail: &ParsedMail) -> bool {
    auto_reply_signal(mail).is_some()
}

fn auto_reply_signal(mail: &ParsedMail) -> Option<String> {
    if report_type(mail) == Some("disposition-notification") {
        return Some("read receipt (report-type=disposition-notification)".into());
    }
    if let Some(v) = mail.header("Auto-Submitted") {
        let token = v.split(';').next().unwrap_or("").trim();
        if !token.is_empty() && !token.eq_ignore_ascii_case("no") {
            return Some(format!("Auto-Submitted: {}", shown(token)));
        }
    }
    let vendor = [
        "X-Autoreply",
        "X-Autorespond",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
        "X-Autogenerated",
    ];
    if let Some(h) = vendor.iter().find(|h| mail.header(h).is_some()) {
        return Some((*h).to_string());
    }
    if mail
        .header("X-FC-MachineGenerated")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Some("X-FC-MachineGenerated: true".into());
    }
    if precedence_is(mail, &["auto_reply", "auto-reply"]) {
        return Some("Precedence: auto_reply".into());
    }
    if let Some(v) = suppress_value(mail) {
        // Not enough alone (see module docs): needs one more weak signal.
        let weak = if mail.return_path.as_deref() == Some("") {
            Some("a null Return-Path")
        } else if precedence_is(mail, &["bulk", "junk"]) {
            Some("Precedence: bulk")
        } else if mail
            .header("X-MS-Exchange-Generated-Message-Source")
            .is_some()
        {
            Some("X-MS-Exchange-Generated-Message-Source")
        } else if mail.header("X-MS-Exchange-Inbox-Rules-Loop").is_some() {
            Some("X-MS-Exchange-Inbox-Rules-Loop")
        } else {
            None
        };
        if let Some(weak) = weak {
            return Some(format!(
                "X-Auto-Response-Suppress: {} with {weak}",
                shown(v)
            ));
        }
    }
    AUTO_SUBJECT
        .is_match(&mail.subject)
        .then(|| format!("automatic-reply subject {:?}", shown(&mail.subject)))
}

/// `X-Auto-Response-Suppress` when it asks to suppress auto-replies (`All`, `AutoReply`, `OOF`).
fn suppress_value(mail: &ParsedMail) -> Option<&str> {
    mail.header("X-Auto-Response-Suppress").filter(|v| {
        v.split([',', ' ', ';'])
            .any(|t| ["all", "autoreply", "oof"].contains(&t.trim().to_ascii_lowercase().as_str()))
    })
}

fn precedence_is(mail: &ParsedMail, values: &[&str]) -> bool {
    mail.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Precedence"))
        .any(|(_, v)| {
            let v = v.trim();
            values.iter().any(|x| v.eq_ignore_ascii_case(x))
        })
}

/// Mailing-list and bulk mail (and mail that asks for no automatic answer).
pub fn is_bulk(mail: &ParsedMail) -> bool {
    bulk_signal(mail).is_some()
}

fn bulk_signal(mail: &ParsedMail) -> Option<String> {
    for p in ["bulk", "junk", "list"] {
        if precedence_is(mail, &[p]) {
            return Some(format!("Precedence: {p}"));
        }
    }
    if let Some(h) = ["List-Id", "List-Unsubscribe"]
        .into_iter()
        .find(|h| mail.header(h).is_some())
    {
        return Some(h.to_string());
    }
    if let Some(v) = suppress_value(mail) {
        return Some(format!("X-Auto-Response-Suppress: {}", shown(v)));
    }
    mail.header("X-MS-Exchange-Inbox-Rules-Loop")
        .map(|_| "X-MS-Exchange-Inbox-Rules-Loop".into())
}
