//! Interventions: work on site or in the workshop, linked to a ticket. This module owns
//! the `[helpdesk.interventions]` settings, the text template a new intervention is
//! prefilled from (Logisav's placeholders: `{0}` the ticket number, `{1}` its creation
//! date, `{2}` its description, `{3}` its subject; `{{` and `}}` are literal braces),
//! and the one decision of what an intervention's change of status does to its ticket.

use serde::Deserialize;

use crate::config_issue::ConfigIssue;
use crate::text_enum::text_enum;

text_enum! {
    /// Where an intervention stands.
    pub enum InterventionStatus {
        Planned = "planned",
        InProgress = "in-progress",
        Done = "done",
        Cancelled = "cancelled",
    }
}

impl InterventionStatus {
    /// Still to be done (planned or under way).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Planned | Self::InProgress)
    }
}

/// `[helpdesk.interventions]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionSettings {
    /// The text a new intervention is prefilled from; `{0}`…`{3}` as above.
    #[serde(default = "default_text")]
    pub intervention_text: String,
    /// When the last open intervention of a ticket is done, the ticket is closed.
    #[serde(default)]
    pub close_when_interventions_done: bool,
    /// An intervention opened again (done → planned or in progress) reopens its
    /// closed ticket.
    #[serde(default)]
    pub reopen_with_intervention: bool,
}

impl Default for InterventionSettings {
    fn default() -> Self {
        Self {
            intervention_text: default_text(),
            close_when_interventions_done: false,
            reopen_with_intervention: false,
        }
    }
}

fn default_text() -> String {
    "Ticket {0} of {1}: {3}\n\n{2}".into()
}

/// One piece of a template: text, or the placeholder of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(usize),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

/// What a template fills in.
#[derive(Debug, Clone, Copy)]
pub struct TicketText<'a> {
    /// As written in subjects, e.g. `[HD#1042]`.
    pub number: &'a str,
    pub created: &'a str,
    pub description: &'a str,
    pub subject: &'a str,
}

impl Template {
    /// Checks `text`: `{0}` to `{3}`, `{{` and `}}`; anything else in braces is refused
    /// with what was found (the issue names no key: the caller knows it).
    pub fn parse(text: &str) -> Result<Self, ConfigIssue> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut inside = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inside.push(c);
                    }
                    let field = inside.trim().parse::<usize>().ok().filter(|n| *n <= 3);
                    match (closed, field) {
                        (true, Some(n)) => {
                            if !literal.is_empty() {
                                pieces.push(Piece::Text(std::mem::take(&mut literal)));
                            }
                            pieces.push(Piece::Field(n));
                        }
                        _ => {
                            let shown: String = inside.chars().take(20).collect();
                            return Err(ConfigIssue::unkeyed(format!(
                                "`{{{shown}{}` is not a placeholder; use {{0}} (ticket number), {{1}} (created), {{2}} (description), {{3}} (subject), and {{{{ }}}} for braces",
                                if closed { "}" } else { "" }
                            )));
                        }
                    }
                }
                '}' => {
                    return Err(ConfigIssue::unkeyed(
                        "a lone `}`; write `}}` for a brace".to_string(),
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self(pieces))
    }

    pub fn render(&self, ticket: &TicketText<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(0) => out.push_str(ticket.number),
                Piece::Field(1) => out.push_str(ticket.created),
                Piece::Field(2) => out.push_str(ticket.description),
                Piece::Field(_) => out.push_str(ticket.subject),
            }
        }
        out
    }
}

/// `[helpdesk.interventions]`, checked.
#[derive(Debug, Clone)]
pub struct Interventions {
    pub template: Template,
    pub close_when_interventions_done: bool,
    pub reopen_with_intervention: bool,
}

impl InterventionSettings {
    /// The issue's key is inside `[helpdesk.interventions]`.
    pub fn compile(&self) -> Result<Interventions, ConfigIssue> {
        let template =
            Template::parse(&self.intervention_text).map_err(|e| e.within("intervention_text"))?;
        Ok(Interventions {
            template,
            close_when_interventions_done: self.close_when_interventions_done,
            reopen_with_intervention: self.reopen_with_intervention,
        })
    }
}

/// What an intervention's change does to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketMove {
    Stays,
    /// To the helpdesk's closed status.
    Close,
    /// Out of its closed status.
    Reopen,
}

impl Interventions {
    /// An intervention went from `old` to `new`; `others_open` of the ticket's other
    /// interventions are still open, and the ticket is closed or not.
    pub fn ticket_move(
        &self,
        old: InterventionStatus,
        new: InterventionStatus,
        others_open: usize,
        ticket_closed: bool,
    ) -> TicketMove {
        if old == new {
            return TicketMove::Stays;
        }
        if new == InterventionStatus::Done
            && others_open == 0
            && !ticket_closed
            && self.close_when_interventions_done
        {
            return TicketMove::Close;
        }
        if old == InterventionStatus::Done
            && new.is_open()
            && ticket_closed
            && self.reopen_with_intervention
        {
            return TicketMove::Reopen;
        }
        TicketMove::Stays
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(text: &str, close: bool, reopen: bool) -> Interventions {
        InterventionSettings {
            intervention_text: text.into(),
            close_when_interventions_done: close,
            reopen_with_intervention: reopen,
        }
        .compile()
        .unwrap()
    }

    const TICKET: TicketText<'static> = TicketText {
        number: "[HD#1042]",
        created: "2026-11-22 14:05 UTC",
        description: "The printer in room 4 is on fire.",
        subject: "Printer on fire",
    };

    #[test]
    fn the_four_placeholders_and_literal_braces() {
        let t = compiled("Job {0} ({1}) {{site}}: {3} / {2} / {0}", false, false);
        assert_eq!(
            t.template.render(&TICKET),
            "Job [HD#1042] (2026-11-22 14:05 UTC) {site}: Printer on fire / The printer in room 4 is on fire. / [HD#1042]"
        );
        assert_eq!(
            compiled("no fields", false, false).template.render(&TICKET),
            "no fields"
        );
        // The default names them all.
        let default = InterventionSettings::default();
        let text = default.compile().unwrap().template.render(&TICKET);
        for part in [
            TICKET.number,
            TICKET.created,
            TICKET.description,
            TICKET.subject,
        ] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn an_unknown_placeholder_is_a_config_error_naming_the_key() {
        for bad in ["{4}", "{name}", "{0", "a } b", "{}"] {
            let e = InterventionSettings {
                intervention_text: bad.into(),
                ..Default::default()
            }
            .compile()
            .unwrap_err();
            assert_eq!(e.key.as_deref(), Some("intervention_text"), "{bad}");
        }
        let e = Template::parse("see {4}").unwrap_err();
        assert!(e.message.starts_with("`{4}` is not a placeholder"), "{e}");
    }

    #[test]
    fn the_last_done_intervention_closes_the_ticket_when_set() {
        use InterventionStatus::*;
        let on = compiled("x", true, true);
        let off = compiled("x", false, false);
        assert_eq!(
            on.ticket_move(InProgress, Done, 0, false),
            TicketMove::Close
        );
        assert_eq!(
            on.ticket_move(InProgress, Done, 1, false),
            TicketMove::Stays
        );
        assert_eq!(
            off.ticket_move(InProgress, Done, 0, false),
            TicketMove::Stays
        );
        assert_eq!(on.ticket_move(Done, Done, 0, false), TicketMove::Stays);
        assert_eq!(
            on.ticket_move(Planned, Cancelled, 0, false),
            TicketMove::Stays
        );
        assert_eq!(on.ticket_move(Done, Planned, 0, true), TicketMove::Reopen);
        assert_eq!(off.ticket_move(Done, Planned, 0, true), TicketMove::Stays);
        assert_eq!(on.ticket_move(Done, Planned, 0, false), TicketMove::Stays);
    }
}
