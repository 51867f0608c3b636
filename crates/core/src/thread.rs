//! Decides whether a mail opens a ticket, follows up an existing one, or is set aside.
//!
//! The store looks up the facts (which tickets the subject and the Message-ID
//! references point at, who the sender is); this module decides, without I/O, by the
//! helpdesk's [`ThreadSettings`].

use crate::id::{ContactId, OrganizationId, TicketId, TicketNumber};

use postdesk_mail::Classification;
use serde::Deserialize;

/// What threading follows: the `[[helpdesk]]` keys of the same names. The keys are
/// written in that table (not a table of their own, so the file reads as before) and
/// gathered here when the helpdesk's settings are compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSettings {
    /// Status a customer's reply moves a ticket to.
    pub reply_status: String,
    /// Statuses that count as closed.
    pub closed_statuses: Vec<String>,
    pub reply_to_closed: ReplyToClosed,
    pub unknown_sender: UnknownSender,
    /// Who may add to a ticket by quoting its number in the subject.
    pub followup_senders: Vec<FollowupSender>,
}

impl Default for ThreadSettings {
    fn default() -> Self {
        Self {
            reply_status: default_reply_status(),
            closed_statuses: default_closed_statuses(),
            reply_to_closed: ReplyToClosed::default(),
            unknown_sender: UnknownSender::default(),
            followup_senders: default_followup_senders(),
        }
    }
}

impl ThreadSettings {
    pub fn is_closed(&self, status: &str) -> bool {
        self.closed_statuses
            .iter()
            .any(|s| s.eq_ignore_ascii_case(status))
    }
}

/// What a reply to a closed ticket does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyToClosed {
    #[default]
    Reopen,
    NewTicket,
    Reject,
}

/// What becomes of mail from a sender who is no contact yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownSender {
    #[default]
    CreateContact,
    DefaultContact,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FollowupSender {
    /// The ticket's requester.
    Requester,
    /// Anyone who was To/CC on a mail of the ticket.
    Cc,
    /// Any agent.
    Agents,
    /// Contacts of the requester's organization.
    Organization,
    /// Anyone at all (trusting the reference alone).
    Anyone,
}

// The defaults of the `[[helpdesk]]` keys above, also used by its serde defaults.
pub(crate) fn default_reply_status() -> String {
    "customer-replied".into()
}
pub(crate) fn default_closed_statuses() -> Vec<String> {
    vec!["closed".into(), "resolved".into()]
}
pub(crate) fn default_followup_senders() -> Vec<FollowupSender> {
    vec![
        FollowupSender::Requester,
        FollowupSender::Cc,
        FollowupSender::Agents,
        FollowupSender::Organization,
    ]
}

/// A ticket as threading needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: TicketId,
    pub number: TicketNumber,
    pub status: String,
    pub requester_contact_id: Option<ContactId>,
    pub organization_id: Option<OrganizationId>,
    /// Lower-cased addresses that were To/CC on the ticket's mails.
    pub participants: Vec<String>,
}

/// The sender as the store knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderFacts {
    /// Lower-cased address; `None` when the mail has no usable From.
    pub email: Option<String>,
    pub contact_id: Option<ContactId>,
    pub organization_id: Option<OrganizationId>,
    pub is_agent: bool,
    /// Why the sender is taken to be forged (the trusted MTA's DMARC verdict, see
    /// `trust_authentication_results`); such a mail is never a follow-up.
    pub forged: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFacts {
    /// First ticket number referenced in the subject, known or not.
    pub subject_number: Option<TicketNumber>,
    /// The ticket of this helpdesk with that number, if it exists.
    pub by_subject: Option<TicketFacts>,
    /// The ticket whose entry carries a Message-ID from In-Reply-To/References
    /// (for bounces: the embedded original's Message-ID).
    pub by_message_id: Option<TicketFacts>,
    pub sender: SenderFacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Open a ticket. `note` is recorded as a system event on it (e.g. why a
    /// reference in the subject was not followed).
    NewTicket { note: Option<String> },
    /// Add the mail to `ticket_id`; `set_status` when the status changes.
    FollowUp {
        ticket_id: TicketId,
        set_status: Option<String>,
        note: Option<String>,
    },
    /// Keep the mail in the ledger only.
    Ignore { reason: String },
    /// The failed queue, with the reason.
    Reject { reason: String },
}

pub fn decide(threading: &ThreadSettings, class: Classification, facts: &ThreadFacts) -> Decision {
    let sender = facts.sender.email.as_deref().unwrap_or("(no sender)");
    if class == Classification::Loop {
        return Decision::Ignore {
            reason: format!("mail from our own address {sender}"),
        };
    }
    // Machines never pass the sender policy, but what they answer is found by reference.
    if matches!(class, Classification::Bounce | Classification::AutoReply) {
        let ticket = facts.by_message_id.as_ref().or(facts.by_subject.as_ref());
        return match ticket {
            Some(t) => Decision::FollowUp {
                ticket_id: t.id,
                set_status: None,
                note: None,
            },
            None => Decision::Ignore {
                reason: format!("{} that belongs to no ticket", class.as_str()),
            },
        };
    }

    let permitted_subject_ticket = facts
        .by_subject
        .as_ref()
        .filter(|t| may_follow_up(threading, &facts.sender, t));
    let mut note = None;
    if let (Some(t), None) = (&facts.by_subject, permitted_subject_ticket) {
        note = Some(format!(
            "The subject references ticket #{} but {sender} is not a participant of it, so a new ticket was opened.",
            t.number
        ));
    }
    // Message-IDs are not guessable, so a reply by In-Reply-To/References needs no sender check.
    let ticket = permitted_subject_ticket.or(facts.by_message_id.as_ref());
    // A forged From must not write into someone else's ticket, however it found it.
    if let (Some(t), Some(why)) = (ticket, &facts.sender.forged) {
        return new_ticket(
            threading,
            facts,
            Some(format!(
                "This mail answers ticket #{} but was not added to it: {why}, so a new ticket was opened.",
                t.number
            )),
        );
    }
    match ticket {
        Some(t) if threading.is_closed(&t.status) => match threading.reply_to_closed {
            ReplyToClosed::Reopen => Decision::FollowUp {
                ticket_id: t.id,
                set_status: Some(threading.reply_status.clone()),
                note: Some(format!("Reopened by a reply from {sender}.")),
            },
            ReplyToClosed::NewTicket => new_ticket(
                threading,
                facts,
                Some(format!(
                    "Reply to closed ticket #{}; a new ticket was opened.",
                    t.number
                )),
            ),
            ReplyToClosed::Reject => Decision::Reject {
                reason: format!(
                    "reply to closed ticket #{} (reply_to_closed = reject)",
                    t.number
                ),
            },
        },
        Some(t) => {
            let set_status =
                (t.status != threading.reply_status).then(|| threading.reply_status.clone());
            Decision::FollowUp {
                ticket_id: t.id,
                set_status,
                note: None,
            }
        }
        None => new_ticket(threading, facts, note),
    }
}

/// A new ticket, unless the unknown-sender policy refuses the sender. Mail rules
/// that force a new ticket go through here too.
pub fn open_ticket(
    threading: &ThreadSettings,
    facts: &ThreadFacts,
    note: Option<String>,
) -> Decision {
    new_ticket(threading, facts, note)
}

fn new_ticket(threading: &ThreadSettings, facts: &ThreadFacts, note: Option<String>) -> Decision {
    let known = facts.sender.contact_id.is_some();
    if !known && threading.unknown_sender == UnknownSender::Reject {
        let sender = facts.sender.email.as_deref().unwrap_or("(no sender)");
        return Decision::Reject {
            reason: format!("unknown sender {sender} (unknown_sender = reject)"),
        };
    }
    Decision::NewTicket { note }
}

/// The existing ticket the mail belongs to, found as `decide` finds it: by the
/// embedded original or the subject for machines, else by a subject reference the
/// sender may use, else by In-Reply-To/References. What then happens (follow-up, or
/// the `reply_to_closed` policy for a closed ticket) is `decide`'s.
pub fn ticket_for<'f>(
    threading: &ThreadSettings,
    class: Classification,
    facts: &'f ThreadFacts,
) -> Option<&'f TicketFacts> {
    match class {
        Classification::Loop => None,
        Classification::Bounce | Classification::AutoReply => {
            facts.by_message_id.as_ref().or(facts.by_subject.as_ref())
        }
        Classification::Normal | Classification::Bulk if facts.sender.forged.is_some() => None,
        Classification::Normal | Classification::Bulk => facts
            .by_subject
            .as_ref()
            .filter(|t| may_follow_up(threading, &facts.sender, t))
            .or(facts.by_message_id.as_ref()),
    }
}

/// The follow-up sender policy: may this sender add to `ticket` by quoting its number?
pub fn may_follow_up(
    threading: &ThreadSettings,
    sender: &SenderFacts,
    ticket: &TicketFacts,
) -> bool {
    threading.followup_senders.iter().any(|rule| match rule {
        FollowupSender::Anyone => true,
        FollowupSender::Requester => {
            sender.contact_id.is_some() && sender.contact_id == ticket.requester_contact_id
        }
        FollowupSender::Cc => sender
            .email
            .as_ref()
            .is_some_and(|e| ticket.participants.contains(e)),
        FollowupSender::Agents => sender.is_agent,
        FollowupSender::Organization => {
            sender.organization_id.is_some() && sender.organization_id == ticket.organization_id
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults, but for what `change` sets.
    fn settings_with(change: impl FnOnce(&mut ThreadSettings)) -> ThreadSettings {
        let mut threading = ThreadSettings::default();
        change(&mut threading);
        threading
    }

    fn defaults() -> ThreadSettings {
        ThreadSettings::default()
    }

    #[test]
    fn ticket_for_is_the_ticket_decide_uses() {
        let threading = settings_with(|t| t.reply_to_closed = ReplyToClosed::Reject);
        let stranger = sender("x@evil.test", Some(9), None);
        let requester = sender("req@example.org", Some(1), Some(5));
        for (class, facts, expected) in [
            (
                Classification::Normal,
                by_subject("open", requester.clone()),
                Some(10),
            ),
            (
                Classification::Normal,
                by_subject("closed", requester.clone()),
                Some(10),
            ),
            (
                Classification::Normal,
                by_subject("open", stranger.clone()),
                None,
            ),
            (
                Classification::AutoReply,
                by_subject("open", stranger),
                Some(10),
            ),
            (Classification::Loop, by_subject("open", requester), None),
        ] {
            assert_eq!(
                ticket_for(&threading, class, &facts).map(|t| t.id.get()),
                expected,
                "{class:?} {facts:?}"
            );
            // Where decide follows up, it is onto that ticket; a closed one is rejected here.
            match decide(&threading, class, &facts) {
                Decision::FollowUp { ticket_id, .. } => assert_eq!(Some(ticket_id.get()), expected),
                Decision::Reject { .. } => assert!(expected.is_some()),
                _ => {}
            }
        }
    }

    fn ticket(status: &str) -> TicketFacts {
        TicketFacts {
            id: TicketId::new(10),
            number: TicketNumber::new(1234),
            status: status.into(),
            requester_contact_id: Some(ContactId::new(1)),
            organization_id: Some(OrganizationId::new(5)),
            participants: vec!["cc@example.org".into()],
        }
    }

    fn sender(email: &str, contact: Option<i64>, org: Option<i64>) -> SenderFacts {
        SenderFacts {
            email: Some(email.into()),
            contact_id: contact.map(ContactId::new),
            organization_id: org.map(OrganizationId::new),
            is_agent: false,
            forged: None,
        }
    }

    fn by_subject(status: &str, sender: SenderFacts) -> ThreadFacts {
        ThreadFacts {
            subject_number: Some(TicketNumber::new(1234)),
            by_subject: Some(ticket(status)),
            by_message_id: None,
            sender,
        }
    }

    #[test]
    fn requester_cc_agent_and_colleague_may_follow_up() {
        let threading = defaults();
        let followup = Decision::FollowUp {
            ticket_id: TicketId::new(10),
            set_status: Some("customer-replied".into()),
            note: None,
        };
        for s in [
            sender("req@example.org", Some(1), Some(5)),
            sender("cc@example.org", Some(2), None),
            SenderFacts {
                is_agent: true,
                ..sender("agent@example.com", None, None)
            },
            sender("colleague@example.org", Some(3), Some(5)),
        ] {
            assert_eq!(
                decide(&threading, Classification::Normal, &by_subject("open", s)),
                followup
            );
        }
    }

    #[test]
    fn a_forged_requester_opens_a_new_ticket_by_subject_or_by_message_id() {
        let threading = defaults();
        let forged = SenderFacts {
            forged: Some("mx.example.com reports dmarc=fail for the From domain".into()),
            ..sender("req@example.org", Some(1), Some(5))
        };
        let by_message_id = ThreadFacts {
            by_message_id: Some(ticket("open")),
            sender: forged.clone(),
            ..Default::default()
        };
        for facts in [by_subject("open", forged.clone()), by_message_id] {
            let d = decide(&threading, Classification::Normal, &facts);
            let Decision::NewTicket { note: Some(note) } = &d else {
                panic!("{d:?}")
            };
            assert!(
                note.contains("#1234") && note.contains("dmarc=fail"),
                "{note}"
            );
            assert_eq!(ticket_for(&threading, Classification::Normal, &facts), None);
        }
        // The same requester, not forged, follows up.
        let genuine = by_subject(
            "open",
            SenderFacts {
                forged: None,
                ..forged
            },
        );
        assert!(matches!(
            decide(&threading, Classification::Normal, &genuine),
            Decision::FollowUp { .. }
        ));
    }

    #[test]
    fn a_stranger_guessing_a_number_opens_a_new_ticket() {
        let threading = defaults();
        let d = decide(
            &threading,
            Classification::Normal,
            &by_subject("open", sender("x@evil.test", Some(9), Some(6))),
        );
        let Decision::NewTicket { note: Some(note) } = d else {
            panic!("{d:?}")
        };
        assert!(
            note.contains("#1234") && note.contains("x@evil.test"),
            "{note}"
        );
    }

    #[test]
    fn anyone_policy_trusts_the_reference() {
        let threading = settings_with(|t| t.followup_senders = vec![FollowupSender::Anyone]);
        let d = decide(
            &threading,
            Classification::Normal,
            &by_subject("open", sender("x@evil.test", None, None)),
        );
        assert!(
            matches!(d, Decision::FollowUp { ticket_id, .. } if ticket_id == TicketId::new(10))
        );
    }

    #[test]
    fn message_id_reply_needs_no_sender_check() {
        let threading = defaults();
        let facts = ThreadFacts {
            by_message_id: Some(ticket("open")),
            sender: sender("someone@else.test", None, None),
            ..Default::default()
        };
        assert!(matches!(
            decide(&threading, Classification::Normal, &facts),
            Decision::FollowUp { ticket_id, .. } if ticket_id == TicketId::new(10)
        ));
    }

    #[test]
    fn reply_to_closed_ticket_follows_the_policy() {
        let req = sender("req@example.org", Some(1), Some(5));
        let d = decide(
            &defaults(),
            Classification::Normal,
            &by_subject("closed", req.clone()),
        );
        assert!(
            matches!(d, Decision::FollowUp { set_status: Some(ref s), .. } if s == "customer-replied"),
            "{d:?}"
        );
        let d = decide(
            &settings_with(|t| t.reply_to_closed = ReplyToClosed::NewTicket),
            Classification::Normal,
            &by_subject("closed", req.clone()),
        );
        assert!(matches!(d, Decision::NewTicket { note: Some(_) }), "{d:?}");
        let d = decide(
            &settings_with(|t| t.reply_to_closed = ReplyToClosed::Reject),
            Classification::Normal,
            &by_subject("closed", req),
        );
        assert!(matches!(d, Decision::Reject { .. }), "{d:?}");
    }

    #[test]
    fn out_of_office_never_reopens() {
        let d = decide(
            &defaults(),
            Classification::AutoReply,
            &by_subject("closed", sender("req@example.org", Some(1), Some(5))),
        );
        assert_eq!(
            d,
            Decision::FollowUp {
                ticket_id: TicketId::new(10),
                set_status: None,
                note: None
            }
        );
        let d = decide(
            &defaults(),
            Classification::AutoReply,
            &ThreadFacts::default(),
        );
        assert!(matches!(d, Decision::Ignore { .. }));
    }

    #[test]
    fn bounces_attach_to_the_bounced_ticket_or_are_ignored() {
        let facts = ThreadFacts {
            by_message_id: Some(ticket("open")),
            sender: sender("mailer-daemon@mx.test", None, None),
            ..Default::default()
        };
        assert_eq!(
            decide(&defaults(), Classification::Bounce, &facts),
            Decision::FollowUp {
                ticket_id: TicketId::new(10),
                set_status: None,
                note: None
            }
        );
        assert!(matches!(
            decide(&defaults(), Classification::Bounce, &ThreadFacts::default()),
            Decision::Ignore { .. }
        ));
    }

    #[test]
    fn own_address_is_a_loop() {
        let facts = ThreadFacts {
            sender: sender("support@example.com", None, None),
            ..Default::default()
        };
        assert!(matches!(
            decide(&defaults(), Classification::Loop, &facts),
            Decision::Ignore { .. }
        ));
    }

    #[test]
    fn unknown_sender_policies() {
        let unknown = ThreadFacts {
            sender: sender("new@example.org", None, None),
            ..Default::default()
        };
        assert!(matches!(
            decide(&defaults(), Classification::Normal, &unknown),
            Decision::NewTicket { note: None }
        ));
        assert!(matches!(
            decide(
                &settings_with(|t| t.unknown_sender = UnknownSender::DefaultContact),
                Classification::Normal,
                &unknown
            ),
            Decision::NewTicket { .. }
        ));
        assert!(matches!(
            decide(
                &settings_with(|t| t.unknown_sender = UnknownSender::Reject),
                Classification::Normal,
                &unknown
            ),
            Decision::Reject { .. }
        ));
        let known = ThreadFacts {
            sender: sender("old@example.org", Some(4), None),
            ..Default::default()
        };
        assert!(matches!(
            decide(
                &settings_with(|t| t.unknown_sender = UnknownSender::Reject),
                Classification::Normal,
                &known
            ),
            Decision::NewTicket { .. }
        ));
    }
}
