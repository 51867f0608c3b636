//! The route stage: the helpdesk's mail rules look at a mail before threading.
//! Runs where mails are prepared (in parallel, without the database); what the
//! rules decide travels with the mail to the store, which resolves it once
//! threading has said whether the mail belongs to a ticket (see [`crate::rules`]).

use postdesk_mail::{Classification, ParsedMail};

use crate::rules::Matched;
use crate::settings::Helpdesk;

/// What routing decided for one mail.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Name of another helpdesk to hand the mail to, if a rule said so.
    pub helpdesk: Option<String>,
    /// The rules that matched, in order, to be resolved by the store.
    pub matched: Matched,
    /// The helpdesk whose rules routed the mail here, once it was handed over.
    pub routed_from: Option<String>,
}

/// Runs `hd`'s rules on `mail`. Rules never run on a loop (mail from our own address).
///
/// The helpdesk to hand the mail to is decided here, before the store knows whether
/// an `update-ticket` rule applies; for that decision such a rule is taken to apply
/// when the mail carries a reference (a ticket number in the subject in this
/// helpdesk's format, or In-Reply-To/References). The target helpdesk's own rules
/// are not run: the rules of the helpdesk that received the mail decide.
pub fn route(hd: &Helpdesk, mail: &ParsedMail, class: Classification) -> Route {
    if class == Classification::Loop || hd.rules.is_empty() {
        return Route::default();
    }
    let matched = hd.rules.evaluate(mail, class);
    let routes = matched
        .rules()
        .iter()
        .any(|r| r.actions.set.helpdesk.is_some());
    let helpdesk = if routes {
        let probably_found = !mail.in_reply_to.is_empty()
            || !mail.references.is_empty()
            || hd.reference.is_referenced(&mail.subject);
        matched
            .resolve(probably_found)
            .fields
            .helpdesk
            .filter(|name| !name.eq_ignore_ascii_case(&hd.settings.name))
    } else {
        None
    };
    Route {
        helpdesk,
        matched,
        routed_from: None,
    }
}

/// Index of the helpdesk one of whose addresses the mail was sent to: envelope
/// headers first, then To and CC.
pub fn recipient_helpdesk<'a>(
    mail: &ParsedMail,
    helpdesks: impl Iterator<Item = &'a Helpdesk> + Clone,
) -> Option<usize> {
    let envelope = ["Delivered-To", "X-Original-To", "Envelope-To"]
        .iter()
        .filter_map(|h| mail.header(h))
        .map(|v| v.trim().trim_matches(['<', '>']).to_ascii_lowercase());
    let recipients = mail.to.iter().chain(&mail.cc).map(|a| a.email_key());
    envelope
        .chain(recipients)
        .find_map(|address| helpdesks.clone().position(|h| h.is_own_address(&address)))
}
