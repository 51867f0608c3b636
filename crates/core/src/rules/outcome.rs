//! From the rules that matched to what happens: resolved once threading has said
//! whether the mail belongs to an existing ticket.

use std::sync::Arc;

use postdesk_mail::Classification;

use super::{Disposition, Rule};
use crate::thread::{self, Decision, ThreadFacts, ThreadSettings};
use crate::ticket::TicketFields;

/// The rules that matched one mail, in order (see [`super::RuleSet::evaluate`]).
#[derive(Debug, Clone, Default)]
pub struct Matched {
    rules: Vec<Arc<Rule>>,
}

/// What the rules decided for one mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDecision {
    /// Create, update, ignore or reject; `None` leaves it to threading.
    pub disposition: Option<Disposition>,
    /// The rule whose disposition stands.
    pub decided_by: Option<String>,
    /// Fields to set on the ticket (and the helpdesk to hand the mail to).
    pub fields: TicketFields,
    /// Rules that applied, in order.
    pub applied: Vec<String>,
    /// Matching `update-ticket` rules passed over because threading found no ticket.
    pub passed_over: Vec<String>,
}

/// The final decision for a mail: threading's, as the rules changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruled {
    pub decision: Decision,
    pub rules: RuleDecision,
}

impl Matched {
    pub(super) fn new(rules: Vec<Arc<Rule>>) -> Self {
        Self { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Whether the outcome depends on threading finding a ticket (an `update-ticket` rule matched).
    pub fn depends_on_ticket(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.actions.disposition == Some(Disposition::UpdateTicket))
    }

    /// Walks the matched rules in order: an `update-ticket` rule without a ticket is
    /// passed over; the first disposition and the first value of each field stand;
    /// tags add up; a rule with `stop` ends the walk.
    pub fn resolve(&self, ticket_found: bool) -> RuleDecision {
        let mut decision = RuleDecision::default();
        for rule in &self.rules {
            if rule.actions.disposition == Some(Disposition::UpdateTicket) && !ticket_found {
                decision.passed_over.push(rule.name.clone());
                continue;
            }
            decision.applied.push(rule.name.clone());
            if decision.disposition.is_none()
                && let Some(d) = &rule.actions.disposition
            {
                decision.disposition = Some(d.clone());
                decision.decided_by = Some(rule.name.clone());
            }
            decision.fields.fill_from(&rule.actions.set);
            if rule.stop {
                break;
            }
        }
        decision
    }
}

impl RuleDecision {
    /// The IMAP folder an ignored mail is moved to.
    pub fn ignore_folder(&self) -> Option<&str> {
        match &self.disposition {
            Some(Disposition::Ignore { folder, .. }) => folder.as_deref(),
            _ => None,
        }
    }

    /// Internal note for the ticket when rules set its fields, so agents see why.
    pub fn note(&self) -> Option<String> {
        if !self.fields.changes_ticket() {
            return None;
        }
        let fields: Vec<String> = self
            .fields
            .listed()
            .into_iter()
            .filter(|(k, _)| *k != "helpdesk")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let names: Vec<String> = self.applied.iter().map(|n| format!("{n:?}")).collect();
        let rules = if names.len() == 1 { "rule" } else { "rules" };
        Some(format!(
            "Set by mail {rules} {}: {}.",
            names.join(", "),
            fields.join(", ")
        ))
    }
}

/// Combines threading's decision with the rules that matched. Loops are never
/// touched: mail from our own address must not make tickets, whatever a rule says.
pub fn decide(
    threading: &ThreadSettings,
    class: Classification,
    facts: &ThreadFacts,
    threaded: Decision,
    matched: &Matched,
) -> Ruled {
    if class == Classification::Loop || matched.is_empty() {
        return Ruled {
            decision: threaded,
            rules: RuleDecision::default(),
        };
    }
    // The mail belongs to a ticket when threading finds one, whether it then follows up
    // or applies the closed-ticket policy (`reply_to_closed`).
    let ticket = thread::ticket_for(threading, class, facts);
    let rules = matched.resolve(ticket.is_some());
    let by = rules.decided_by.as_deref().unwrap_or_default();
    let decision = match &rules.disposition {
        None | Some(Disposition::UpdateTicket) => threaded,
        Some(Disposition::CreateTicket) => {
            let note = match (&threaded, ticket) {
                (Decision::NewTicket { note }, _) => note.clone(),
                (_, Some(t)) => Some(format!(
                    "Rule {by:?} opened a new ticket although the mail belongs to ticket #{}.",
                    t.number
                )),
                _ => None,
            };
            thread::open_ticket(threading, facts, note)
        }
        Some(Disposition::Ignore { reason, .. }) => Decision::Ignore {
            reason: format!("rule {by:?}: {}", reason.as_deref().unwrap_or("ignored")),
        },
        Some(Disposition::Reject { reason }) => Decision::Reject {
            reason: format!("rule {by:?}: {}", reason.as_deref().unwrap_or("rejected")),
        },
    };
    Ruled { decision, rules }
}
