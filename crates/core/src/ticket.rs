//! The ticket field set: the fields of a ticket that mail rules and agents set, with
//! the helpdesk a mail is handed to. One shape for every place that carries these
//! fields: a rule's `set` action as written, what a rule sets, what the rules decided
//! for a mail, a ticket's fields as shown, and an agent's change ([`FieldChanges`]).

/// The keys the fields are written with (in the config file, in messages), in the
/// order they are listed: the helpdesk first, tags last.
pub const KEYS: [&str; 10] = [
    "helpdesk",
    "status",
    "priority",
    "type",
    "category",
    "subcategory",
    "environment",
    "assignee",
    "manager",
    "tags",
];

/// Ticket fields, each `None` when it is not given (so it is left as it is).
///
/// `Tags` is how the tags are held: a list (the default), or, for fields as a config
/// file writes them, `Option<Vec<String>>`, so that `tags = []` can be told from no
/// `tags` at all and reported. `Value` is how each other field is held: a text or none
/// (the default), or, for a change, whether and to what it changes ([`FieldChanges`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TicketFields<Tags = Vec<String>, Value = Option<String>> {
    /// Helpdesk the mail is handed to; not a field of the ticket itself.
    pub helpdesk: Option<String>,
    pub status: Value,
    pub priority: Value,
    pub ticket_type: Value,
    pub category: Value,
    pub subcategory: Value,
    pub environment: Value,
    /// Agent name or email.
    pub assignee: Value,
    /// Agent name or email.
    pub manager: Value,
    pub tags: Tags,
}

/// An agent's change to a ticket's fields: `None` leaves a field as it is, `Some(None)`
/// clears it (a status cannot be cleared), `Some(Some(v))` sets it; `tags: Some(list)`
/// replaces the tags. The helpdesk is not changed this way.
pub type FieldChanges = TicketFields<Option<Vec<String>>, Option<Option<String>>>;

impl<Tags> TicketFields<Tags> {
    /// Every field but the tags, with its key (see [`KEYS`]), in the order of [`KEYS`].
    pub fn texts(&self) -> [(&'static str, &Option<String>); 9] {
        [
            ("helpdesk", &self.helpdesk),
            ("status", &self.status),
            ("priority", &self.priority),
            ("type", &self.ticket_type),
            ("category", &self.category),
            ("subcategory", &self.subcategory),
            ("environment", &self.environment),
            ("assignee", &self.assignee),
            ("manager", &self.manager),
        ]
    }

    /// [`Self::texts`], to change.
    pub fn texts_mut(&mut self) -> [(&'static str, &mut Option<String>); 9] {
        [
            ("helpdesk", &mut self.helpdesk),
            ("status", &mut self.status),
            ("priority", &mut self.priority),
            ("type", &mut self.ticket_type),
            ("category", &mut self.category),
            ("subcategory", &mut self.subcategory),
            ("environment", &mut self.environment),
            ("assignee", &mut self.assignee),
            ("manager", &mut self.manager),
        ]
    }
}

impl TicketFields {
    /// `(key, value)` of each field given, in the order of [`KEYS`]; the tags as one
    /// text, `a, b`.
    pub fn listed(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .texts()
            .into_iter()
            .filter_map(|(key, value)| value.clone().map(|v| (key, v)))
            .collect();
        if !self.tags.is_empty() {
            out.push(("tags", self.tags.join(", ")));
        }
        out
    }

    /// Whether anything on a ticket changes (the helpdesk is not a ticket field).
    pub fn changes_ticket(&self) -> bool {
        self.listed().iter().any(|(key, _)| *key != "helpdesk")
    }

    /// Takes from `later` what is not given here yet; tags add up (once each, whatever
    /// their case).
    pub fn fill_from(&mut self, later: &TicketFields) {
        for ((_, mine), (_, theirs)) in self.texts_mut().into_iter().zip(later.texts()) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        for tag in &later.tags {
            if !self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                self.tags.push(tag.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KEYS, TicketFields};

    #[test]
    fn the_keys_are_listed_in_order() {
        let fields = TicketFields {
            helpdesk: Some("Billing".into()),
            ticket_type: Some("incident".into()),
            manager: Some("ann".into()),
            tags: vec!["vip".into(), "invoice".into()],
            ..TicketFields::default()
        };
        assert_eq!(
            fields.listed(),
            [
                ("helpdesk", "Billing".to_string()),
                ("type", "incident".into()),
                ("manager", "ann".into()),
                ("tags", "vip, invoice".into()),
            ]
        );
        let texts: Vec<&str> = fields.texts().iter().map(|(key, _)| *key).collect();
        assert_eq!(texts, KEYS[..9]);
        assert!(fields.changes_ticket());
        let handed_over = TicketFields {
            helpdesk: Some("Billing".into()),
            ..TicketFields::default()
        };
        assert!(!handed_over.changes_ticket());
    }

    #[test]
    fn earlier_values_stand_and_tags_add_up() {
        let mut fields = TicketFields {
            priority: Some("high".into()),
            tags: vec!["VIP".into()],
            ..TicketFields::default()
        };
        fields.fill_from(&TicketFields {
            priority: Some("low".into()),
            status: Some("open".into()),
            tags: vec!["vip".into(), "invoice".into()],
            ..TicketFields::default()
        });
        assert_eq!(fields.priority.as_deref(), Some("high"));
        assert_eq!(fields.status.as_deref(), Some("open"));
        assert_eq!(fields.tags, ["VIP", "invoice"]);
    }
}
