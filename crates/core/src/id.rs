//! Typed row ids: one type per table, so that a ticket's id cannot be passed where a
//! contact's is expected, nor a ticket's number where its id is.
//!
//! Each is a plain `i64` inside (what both engines store), printed and parsed as that
//! number, and serialized as it (the API's JSON and the web's paths are unchanged).
//! With the `rusqlite` and `postgres` features the store binds and reads them
//! directly; the domain itself never looks inside.

use std::fmt;
use std::str::FromStr;

macro_rules! row_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The number the database holds.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        #[cfg(feature = "postgres")]
        impl postgres_types::ToSql for $name {
            fn to_sql(
                &self,
                ty: &postgres_types::Type,
                out: &mut postgres_types::private::BytesMut,
            ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <i64 as postgres_types::ToSql>::accepts(ty)
            }

            postgres_types::to_sql_checked!();
        }

        #[cfg(feature = "postgres")]
        impl<'a> postgres_types::FromSql<'a> for $name {
            fn from_sql(
                ty: &postgres_types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                i64::from_sql(ty, raw).map(Self)
            }

            fn accepts(ty: &postgres_types::Type) -> bool {
                <i64 as postgres_types::FromSql>::accepts(ty)
            }
        }

        #[cfg(feature = "rusqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map(Self)
            }
        }
    )*};
}

row_id! {
    /// A helpdesk of the `helpdesks` table (registered from the configuration).
    HelpdeskId;
    /// A ticket's row. Not its number: see [`TicketNumber`].
    TicketId;
    /// The number a ticket is known by in subjects and on pages, counted per helpdesk.
    TicketNumber;
    /// A mail of the intake ledger.
    IntakeId;
    /// An entry of a ticket's thread: a mail in or out, a note or an event.
    EntryId;
    /// An attachment row (its content is a blob, found by hash).
    AttachmentId;
    /// A contact: a customer, with one or more addresses.
    ContactId;
    /// An organization of contacts.
    OrganizationId;
    /// An agent account.
    AgentId;
    /// A mail of the outbox.
    OutboxId;
    /// An intervention linked to a ticket (issue 18).
    InterventionId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_parse_and_serialize_as_their_number() {
        let id: TicketId = "42".parse().unwrap();
        assert_eq!(id, TicketId::new(42));
        assert_eq!(id.to_string(), "42");
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<TicketId>("42").unwrap(), id);
        assert!("x".parse::<TicketId>().is_err());
    }
}
