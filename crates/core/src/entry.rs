//! What a ticket's thread is made of: its entries, each of one kind.

use crate::text_enum::text_enum;

text_enum! {
    /// An entry's kind, as stored in `entries.kind`.
    pub enum EntryKind {
        /// A mail that came in.
        Incoming = "incoming",
        /// A mail an agent sent (a reply).
        Outgoing = "outgoing",
        /// An agent's internal note; customers never see it.
        Note = "note",
        /// What postdesk or an agent changed (status, fields, addresses).
        Event = "event",
    }
}
