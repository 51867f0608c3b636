//! What happens to one incoming mail, decided once: the ledger's duplicate rule, then
//! threading, then the mail rules. Import executes the [`Plan`]; `postdesk rules test`
//! prints it and stops. A change to the order of these decisions is made here only.
//!
//! The store gathers the [`Facts`] (what the ledger holds of the mail, the tickets its
//! references point at, who the sender is); this module decides, without I/O.

use crate::id::{IntakeId, TicketId};
use crate::text_enum::text_enum;

use postdesk_mail::Classification;

use crate::rules::{self, Matched, Ruled};
use crate::settings::Helpdesk;
use crate::thread::{self, Decision, ThreadFacts};

text_enum! {
    /// A ledger row's outcome, as stored in `intake.outcome`.
    pub enum IntakeOutcome {
        Created = "created",
        Appended = "appended",
        Ignored = "ignored",
        Failed = "failed",
    }
}

impl IntakeOutcome {
    /// The mail became a ticket or a follow-up: its Message-ID now threads answers.
    pub fn made_entry(self) -> bool {
        matches!(self, Self::Created | Self::Appended)
    }
}

/// A ledger row found for a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorIntake {
    pub intake_id: IntakeId,
    pub outcome: IntakeOutcome,
    pub ticket_id: Option<TicketId>,
}

/// What the ledger already holds of this mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    /// A row with the same bytes in this helpdesk, successful rows before failed ones.
    pub same_bytes: Option<PriorIntake>,
    /// Another mail of this helpdesk with the same Message-ID that made a ticket or a
    /// follow-up.
    pub message_id_taken_by: Option<Taken>,
}

/// The mail that made a ticket or a follow-up with a Message-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub outcome: IntakeOutcome,
    pub ticket_id: TicketId,
}

/// What the decision needs of the mail itself.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub class: Classification,
    pub message_id: Option<&'a str>,
    /// The mail rules that matched (evaluated where the mail was parsed).
    pub matched: &'a Matched,
    /// Why preparing the mail failed (too large, attachment not writable…).
    pub failure: Option<&'a str>,
    /// The ledger row a `postdesk failed retry` processes again.
    pub retry_of: Option<IntakeId>,
}

/// The decision for one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The ledger row to update instead of adding one: the row retried, or the failed
    /// row of the same bytes.
    pub retry_of: Option<IntakeId>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The same bytes were processed already: nothing is written.
    AlreadyProcessed(PriorIntake),
    /// Kept raw in the failed queue with the reason preparing gave.
    Fail { reason: String },
    /// Another copy with this Message-ID made a ticket or a follow-up: the mail is
    /// recorded as an ignored duplicate of that ticket.
    DuplicateMessageId { taken_by: Taken, reason: String },
    /// Threading and the rules decided.
    Apply(Box<Applied>),
}

/// What threading and the rules decided for a mail the ledger lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What the store knows of the mail's references and sender.
    pub facts: ThreadFacts,
    /// Threading's decision without the rules (the simulator shows both).
    pub threaded: Decision,
    pub ruled: Ruled,
}

impl Plan {
    /// Why a new import of the mail would change nothing, when it would not.
    pub fn already_imported(&self) -> Option<(IntakeOutcome, Option<TicketId>)> {
        match &self.action {
            Action::AlreadyProcessed(prior) => Some((prior.outcome, prior.ticket_id)),
            Action::DuplicateMessageId { taken_by, .. } => {
                Some((taken_by.outcome, Some(taken_by.ticket_id)))
            }
            _ => None,
        }
    }
}

/// Decides what becomes of `mail`, in this order: the same bytes already processed →
/// nothing; preparing failed → the failed queue; its Message-ID already taken by a
/// ticket → an ignored duplicate; otherwise threading, as the mail rules change it.
/// A retry (`retry_of`) is processed whatever the ledger says of the same bytes.
///
/// `thread_facts` is asked only when threading is reached: the store looks them up
/// then (a duplicate costs no lookup), and its error is returned as it is.
pub fn decide<E>(
    hd: &Helpdesk,
    mail: Incoming<'_>,
    ledger: &LedgerFacts,
    thread_facts: impl FnOnce() -> Result<ThreadFacts, E>,
) -> Result<Plan, E> {
    if mail.retry_of.is_none()
        && let Some(prior) = ledger.same_bytes
        && prior.outcome != IntakeOutcome::Failed
    {
        return Ok(Plan {
            retry_of: None,
            action: Action::AlreadyProcessed(prior),
        });
    }
    let retry_of = row_to_update(&mail, ledger);
    let action = if let Some(reason) = mail.failure {
        Action::Fail {
            reason: reason.to_string(),
        }
    } else if let (Some(message_id), Some(taken_by)) = (mail.message_id, ledger.message_id_taken_by)
    {
        Action::DuplicateMessageId {
            taken_by,
            reason: format!("Message-ID <{message_id}> was already taken"),
        }
    } else {
        let facts = thread_facts()?;
        let threaded = thread::decide(&hd.threading, mail.class, &facts);
        let ruled = rules::decide(
            &hd.threading,
            mail.class,
            &facts,
            threaded.clone(),
            mail.matched,
        );
        Action::Apply(Box::new(Applied {
            facts,
            threaded,
            ruled,
        }))
    };
    Ok(Plan { retry_of, action })
}

/// The ledger row that processing `mail` updates instead of adding one: the row
/// retried, else a failed row of the same bytes.
pub fn row_to_update(mail: &Incoming<'_>, ledger: &LedgerFacts) -> Option<IntakeId> {
    mail.retry_of.or(ledger
        .same_bytes
        .filter(|prior| prior.outcome == IntakeOutcome::Failed)
        .map(|prior| prior.intake_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::helpdesk;

    fn incoming(matched: &Matched) -> Incoming<'_> {
        Incoming {
            class: Classification::Normal,
            message_id: Some("a@example.org"),
            matched,
            failure: None,
            retry_of: None,
        }
    }

    fn prior(outcome: IntakeOutcome) -> PriorIntake {
        PriorIntake {
            intake_id: IntakeId::new(7),
            outcome,
            ticket_id: Some(TicketId::new(3)),
        }
    }

    fn plan(hd: &Helpdesk, mail: Incoming<'_>, ledger: &LedgerFacts) -> Plan {
        decide(hd, mail, ledger, || Ok::<_, ()>(ThreadFacts::default())).unwrap()
    }

    fn taken() -> Taken {
        Taken {
            outcome: IntakeOutcome::Created,
            ticket_id: TicketId::new(3),
        }
    }

    #[test]
    fn the_same_bytes_processed_change_nothing() {
        let hd = helpdesk("");
        let matched = Matched::default();
        let ledger = LedgerFacts {
            same_bytes: Some(prior(IntakeOutcome::Ignored)),
            message_id_taken_by: Some(taken()),
        };
        let plan = plan(&hd, incoming(&matched), &ledger);
        assert_eq!(
            plan.action,
            Action::AlreadyProcessed(prior(IntakeOutcome::Ignored))
        );
        assert_eq!(
            plan.already_imported(),
            Some((IntakeOutcome::Ignored, Some(TicketId::new(3))))
        );
    }

    #[test]
    fn a_failed_row_of_the_same_bytes_is_processed_again_in_place() {
        let hd = helpdesk("");
        let matched = Matched::default();
        let ledger = LedgerFacts {
            same_bytes: Some(prior(IntakeOutcome::Failed)),
            message_id_taken_by: None,
        };
        let plan = plan(&hd, incoming(&matched), &ledger);
        assert_eq!(plan.retry_of, Some(IntakeId::new(7)));
        let Action::Apply(applied) = &plan.action else {
            panic!("{plan:?}");
        };
        assert!(matches!(applied.ruled.decision, Decision::NewTicket { .. }));
        assert_eq!(plan.already_imported(), None);
    }

    #[test]
    fn a_retry_is_processed_whatever_the_ledger_says() {
        let hd = helpdesk("");
        let matched = Matched::default();
        let ledger = LedgerFacts {
            same_bytes: Some(prior(IntakeOutcome::Created)),
            message_id_taken_by: None,
        };
        let mail = Incoming {
            retry_of: Some(IntakeId::new(42)),
            ..incoming(&matched)
        };
        let plan = plan(&hd, mail, &ledger);
        assert_eq!(plan.retry_of, Some(IntakeId::new(42)));
        assert!(matches!(plan.action, Action::Apply(_)));
    }

    #[test]
    fn a_failure_to_prepare_goes_before_the_message_id_rule() {
        let hd = helpdesk("");
        let matched = Matched::default();
        let ledger = LedgerFacts {
            same_bytes: None,
            message_id_taken_by: Some(taken()),
        };
        let failing = Incoming {
            failure: Some("too large"),
            ..incoming(&matched)
        };
        assert_eq!(
            plan(&hd, failing, &ledger).action,
            Action::Fail {
                reason: "too large".into()
            }
        );
        let plan = plan(&hd, incoming(&matched), &ledger);
        assert_eq!(
            plan.action,
            Action::DuplicateMessageId {
                taken_by: taken(),
                reason: "Message-ID <a@example.org> was already taken".into()
            }
        );
        assert_eq!(
            plan.already_imported(),
            Some((IntakeOutcome::Created, Some(TicketId::new(3))))
        );
    }

    #[test]
    fn threading_facts_are_looked_up_only_when_threading_is_reached() {
        let hd = helpdesk("");
        let matched = Matched::default();
        let ledger = LedgerFacts {
            same_bytes: Some(prior(IntakeOutcome::Created)),
            message_id_taken_by: None,
        };
        let unreachable = || -> Result<ThreadFacts, ()> { panic!("looked up for a duplicate") };
        let plan = decide(&hd, incoming(&matched), &ledger, unreachable).unwrap();
        assert!(matches!(plan.action, Action::AlreadyProcessed(_)));
        // …and their error is the decision's.
        let failing = || -> Result<ThreadFacts, &str> { Err("database gone") };
        assert_eq!(
            decide(&hd, incoming(&matched), &LedgerFacts::default(), failing),
            Err("database gone")
        );
    }

    #[test]
    fn outcomes_round_trip_their_stored_text() {
        for o in [
            IntakeOutcome::Created,
            IntakeOutcome::Appended,
            IntakeOutcome::Ignored,
            IntakeOutcome::Failed,
        ] {
            assert_eq!(IntakeOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(IntakeOutcome::parse("duplicate"), None);
    }
}
