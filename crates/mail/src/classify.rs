//! Labels a parsed mail: normal, auto-reply, bounce, list mail, own-address loop.
//!
//! Precedence: `Loop` > `Bounce` > `AutoReply` > `Bulk` > `Normal`.
//!
//! Decisions worth knowing:
//! - Feedback reports (`multipart/report; report-type=feedback-report`, ARF abuse
//!   complaints) are `Bounce`: they are machine reports about a mail we sent, not a
//!   customer request. Any other `multipart/report` except read receipts is `Bounce` too.
//! - Read receipts (`report-type=disposition-notification`, MDN) are `AutoReply`.
//! - `X-Auto-Response-Suppress` alone does not make a mail automatic: Outlook and
//!   Exchange put it on ordinary mail (meeting requests, mails to lists…). It counts
//!   only together with a weak signal that is not enough on its own either: a null
//!   Return-Path (`<>`), `Precedence: bulk|junk`, or Exchange's
//!   `X-MS-Exchange-Generated-Message-Source` / `X-MS-Exchange-Inbox-Rules-Loop`.
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

/// `own_addresses` are lower-case support addresses of the helpdesk.
pub fn classify(mail: &ParsedMail, own_addresses: &[String]) -> Classification {
    if is_loop(mail, own_addresses) {
        Classification::Loop
    } else if is_bounce(mail) {
        Classification::Bounce
    } else if is_auto_reply(mail) {
        Classification::AutoReply
    } else if is_bulk(mail) {
        Classification::Bulk
    } else {
        Classification::Normal
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

fn is_loop(mail: &ParsedMail, own_addresses: &[String]) -> bool {
    let Some(from) = &mail.from else { return false };
    let key = from.email_key();
    !key.is_empty()
        && own_addresses
            .iter()
            .any(|own| own.trim().eq_ignore_ascii_case(&key))
}

/// Delivery reports, non-delivery notices and feedback (abuse) reports.
pub fn is_bounce(mail: &ParsedMail) -> bool {
    if let Some(report) = report_type(mail) {
        return report != "disposition-notification";
    }
    if mail.header("X-Failed-Recipients").is_some() {
        return true;
    }
    if from_daemon(mail) {
        return true;
    }
    if mail.return_path.as_deref() == Some("")
        && dsn_subject(&mail.subject)
        && !AUTO_SUBJECT.is_match(&mail.subject)
    {
        return true;
    }
    // A DSN subject on a mail that carries the original (not a reply or forward).
    if dsn_subject(&mail.subject)
        && !REPLY_PREFIX.is_match(&mail.subject)
        && mail.structure.embedded_message_id.is_some()
    {
        return true;
    }
    has_dsn_part(mail)
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
    if report_type(mail) == Some("disposition-notification") {
        return true;
    }
    if let Some(v) = mail.header("Auto-Submitted") {
        let token = v.split(';').next().unwrap_or("").trim();
        if !token.is_empty() && !token.eq_ignore_ascii_case("no") {
            return true;
        }
    }
    let vendor = [
        "X-Autoreply",
        "X-Autorespond",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
        "X-Autogenerated",
    ];
    if vendor.iter().any(|h| mail.header(h).is_some()) {
        return true;
    }
    if mail
        .header("X-FC-MachineGenerated")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    if let Some(p) = mail.header("Precedence") {
        let p = p.trim().to_ascii_lowercase();
        if p == "auto_reply" || p == "auto-reply" {
            return true;
        }
    }
    if mail.header("X-Auto-Response-Suppress").is_some() {
        // Not enough alone (see module docs): needs one more weak signal.
        let weak = mail.return_path.as_deref() == Some("")
            || precedence_is(mail, &["bulk", "junk"])
            || mail
                .header("X-MS-Exchange-Generated-Message-Source")
                .is_some()
            || mail.header("X-MS-Exchange-Inbox-Rules-Loop").is_some();
        if weak {
            return true;
        }
    }
    AUTO_SUBJECT.is_match(&mail.subject)
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

/// Mailing-list and bulk mail.
pub fn is_bulk(mail: &ParsedMail) -> bool {
    precedence_is(mail, &["bulk", "junk", "list"])
        || mail.header("List-Id").is_some()
        || mail.header("List-Unsubscribe").is_some()
}
