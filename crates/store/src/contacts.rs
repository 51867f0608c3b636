//! The `contacts`, `contact_addresses`, `organizations` and `contact_events` tables as
//! agents see them: lists and pages scoped to the agent's helpdesks, and the changes an
//! agent makes to a contact, each recorded with its old and new value.
//!
//! A contact belongs to the helpdesks where it requested a ticket; an organization to
//! the helpdesks where one of its tickets is. Outside that [`Scope`] a contact or an
//! organization does not exist for the caller: NotFound, as for tickets. A contact that
//! requested nothing yet is seen by admins only.
//!
//! Intake finds senders by address and creates contacts and organizations here too.

use crate::engine::{Db, OptionalExtension, params};
use crate::pending::{Sequence, Table};
use postdesk_core::id::{AgentId, ContactId, HelpdeskId, OrganizationId, TicketId};
use serde::Serialize;

use crate::sql::{id_list, like_pattern};
use crate::{Result, Store, StoreError, entries, now};

/// What a query may reach: everything (an admin), or what belongs to these helpdesks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    Helpdesks(Vec<HelpdeskId>),
}

impl Scope {
    /// A condition that holds when one of the scope's helpdesks has a ticket `st` with
    /// `link` (e.g. `st.requester_id = c.id`).
    fn has_ticket(&self, link: &str) -> String {
        match self {
            Scope::Everything => "TRUE".into(),
            Scope::Helpdesks(ids) => format!(
                "EXISTS (SELECT 1 FROM tickets st WHERE {link} AND st.helpdesk_id IN {})",
                id_list(ids)
            ),
        }
    }

    /// A condition that holds for the contact `c` when the scope reaches it.
    fn contact_condition(&self) -> String {
        self.has_ticket("st.requester_id = c.id")
    }

    /// A condition that holds for the organization `o` when the scope reaches it.
    fn organization_condition(&self) -> String {
        self.has_ticket("st.organization_id = o.id")
    }

    /// A condition on the ticket `t`.
    fn ticket_condition(&self) -> String {
        match self {
            Scope::Everything => "TRUE".into(),
            Scope::Helpdesks(ids) => format!("t.helpdesk_id IN {}", id_list(ids)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub name: String,
    pub organization_id: Option<OrganizationId>,
    pub organization: Option<String>,
    pub addresses: Vec<String>,
    /// Tickets the contact requested, within the scope it was read with.
    pub tickets: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    /// Contacts of the organization within the scope.
    pub contacts: i64,
    /// Tickets of the organization within the scope.
    pub tickets: i64,
}

/// One change made to a contact, as its page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ContactEvent {
    pub field: String,
    pub old_value: String,
    pub new_value: String,
    /// Agent name.
    pub agent: Option<String>,
    pub created_at: i64,
}

/// A change an agent makes to a contact.
#[derive(Debug, Clone)]
pub enum ContactChange {
    Rename(String),
    AddAddress(String),
    RemoveAddress(String),
}

impl ContactChange {
    fn field(&self) -> &'static str {
        match self {
            ContactChange::Rename(_) => "name",
            ContactChange::AddAddress(_) | ContactChange::RemoveAddress(_) => "addresses",
        }
    }
}

/// Who changes a contact, and which of its tickets are told.
#[derive(Debug, Clone)]
pub struct ContactEdit<'a> {
    pub contact_id: ContactId,
    pub agent_id: AgentId,
    pub change: ContactChange,
    /// The contact's open tickets: each gets the change as an internal event.
    pub open_tickets: &'a [TicketId],
}

/// `name@domain.tld`, lower-cased, or why not: [`postdesk_core::address::normalize`],
/// the one address check, with the store's error.
pub fn normalize_address(address: &str) -> Result<String> {
    postdesk_core::address::normalize(address).ok_or_else(|| {
        StoreError::Invalid(format!(
            "`{}` is not an email address (like name@example.com)",
            address
                .trim()
                .to_lowercase()
                .chars()
                .take(100)
                .collect::<String>()
        ))
    })
}

fn no_contact(id: ContactId) -> StoreError {
    StoreError::NotFound(format!(
        "there is no contact {id}, or it has no tickets in your helpdesks"
    ))
}

impl Store {
    /// Contacts within `scope` whose name or address contains `search`.
    pub async fn contacts(
        &self,
        scope: &Scope,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Contact>> {
        let pattern = search.map(|s| like_pattern(&s.to_lowercase()));
        let scope = scope.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT c.id FROM contacts c
                 WHERE {} AND (CAST(?1 AS TEXT) IS NULL OR lower(c.name) LIKE ?1 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.address LIKE ?1 ESCAPE '\\'))
                 ORDER BY lower(c.name), c.id LIMIT ?2",
                scope.contact_condition()
            );
            let ids: Vec<ContactId> = conn
                .prepare(&sql)?
                .query_map(params![pattern, limit.clamp(1, 1000)], |r| r.get(0))?
                .collect::<Result<_>>()?;
            ids.into_iter()
                .map(|id| contact(conn, &scope, id))
                .collect()
        })
        .await
    }

    /// A contact within `scope`, else NotFound.
    pub async fn contact(&self, scope: &Scope, id: ContactId) -> Result<Contact> {
        let scope = scope.clone();
        self.read(move |conn| contact(conn, &scope, id)).await
    }

    /// The helpdesks where the contact requested tickets: who may change it depends on them.
    pub async fn contact_helpdesks(&self, id: ContactId) -> Result<Vec<HelpdeskId>> {
        self.read(move |conn| {
            conn
                .prepare_cached(
                    "SELECT DISTINCT helpdesk_id FROM tickets WHERE requester_id = ?1 ORDER BY helpdesk_id",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_>>()
        })
        .await
    }

    /// The changes made to a contact, the newest first.
    pub async fn contact_events(&self, id: ContactId) -> Result<Vec<ContactEvent>> {
        self.read(move |conn| {
            conn
                .prepare_cached(
                    "SELECT e.field, e.old_value, e.new_value, a.name, e.created_at FROM contact_events e
                     LEFT JOIN agents a ON a.id = e.agent_id WHERE e.contact_id = ?1
                     ORDER BY e.id DESC LIMIT 200",
                )?
                .query_map([id], |r| {
                    Ok(ContactEvent {
                        field: r.get(0)?,
                        old_value: r.get(1)?,
                        new_value: r.get(2)?,
                        agent: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })?
                .collect::<Result<_>>()
        })
        .await
    }

    /// Applies an agent's change to a contact and records it, with the old and the new
    /// value, on the contact and on each of `open_tickets`, in one transaction.
    /// Returns false when nothing changed. Permissions are the caller's.
    pub async fn edit_contact(&self, edit: &ContactEdit<'_>) -> Result<bool> {
        let (id, agent_id, change) = (edit.contact_id, edit.agent_id, edit.change.clone());
        let open_tickets = edit.open_tickets.to_vec();
        self.write(move |tx| {
            let Some((old, new)) = change_contact(tx, id, &change)? else {
                return Ok(false);
            };
            // The name and addresses are in the documents of the tickets it requested.
            crate::search::refresh_requested_by(tx, id)?;
            let now = now();
            let field = change.field();
            tx.prepare_cached(
                "INSERT INTO contact_events (contact_id, agent_id, field, old_value, new_value, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![id, agent_id, field, old, new, now])?;
            let agent: String = tx
                .prepare_cached("SELECT name FROM agents WHERE id = ?1")?
                .query_row([agent_id], |r| r.get(0))?;
            let text = format!("The requester's {field} changed from {old} to {new} by {agent}.");
            for ticket_id in open_tickets {
                entries::insert_event(tx, ticket_id, Some(agent_id), &text, now)?;
            }
            Ok(true)
        })
        .await
    }

    /// Organizations within `scope`.
    pub async fn organizations(&self, scope: &Scope) -> Result<Vec<Organization>> {
        let scope = scope.clone();
        self.read(move |conn| organizations_where(conn, &scope, None))
            .await
    }

    /// An organization within `scope` and its contacts within it, else NotFound.
    pub async fn organization(
        &self,
        scope: &Scope,
        id: OrganizationId,
    ) -> Result<(Organization, Vec<Contact>)> {
        let scope = scope.clone();
        self.read(move |conn| {
            let org = organizations_where(conn, &scope, Some(id))?
                .pop()
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "there is no organization {id}, or it has no tickets in your helpdesks"
                    ))
                })?;
            let sql = format!(
                "SELECT c.id FROM contacts c WHERE c.organization_id = ?1 AND {}
                 ORDER BY lower(c.name) LIMIT 1000",
                scope.contact_condition()
            );
            let ids: Vec<ContactId> = conn
                .prepare(&sql)?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_>>()?;
            let contacts = ids
                .into_iter()
                .map(|c| contact(conn, &scope, c))
                .collect::<Result<_>>()?;
            Ok((org, contacts))
        })
        .await
    }
}

fn contact(conn: &Db, scope: &Scope, id: ContactId) -> Result<Contact> {
    let sql = format!(
        "SELECT c.id, c.name, c.organization_id, o.name,
                (SELECT COUNT(*) FROM tickets t WHERE t.requester_id = c.id AND {})
         FROM contacts c LEFT JOIN organizations o ON o.id = c.organization_id
         WHERE c.id = ?1 AND {}",
        scope.ticket_condition(),
        scope.contact_condition()
    );
    let addresses = addresses_of(conn, id)?;
    conn.prepare_cached(&sql)?
        .query_row([id], |r| {
            Ok(Contact {
                id: r.get(0)?,
                name: r.get(1)?,
                organization_id: r.get(2)?,
                organization: r.get(3)?,
                addresses,
                tickets: r.get(4)?,
            })
        })
        .optional()?
        .ok_or_else(|| no_contact(id))
}

fn addresses_of(conn: &Db, id: ContactId) -> Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT address FROM contact_addresses WHERE contact_id = ?1 ORDER BY address",
    )?
    .query_map([id], |r| r.get(0))?
    .collect::<Result<_>>()
}

/// Makes the change; the old and new value, or `None` when it changes nothing.
fn change_contact(
    conn: &Db,
    id: ContactId,
    change: &ContactChange,
) -> Result<Option<(String, String)>> {
    let name: String = conn
        .prepare_cached("SELECT name FROM contacts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| no_contact(id))?;
    let addresses = addresses_of(conn, id)?;
    match change {
        ContactChange::Rename(new_name) => {
            let new_name = new_name.trim();
            if new_name.is_empty() {
                return Err(StoreError::Invalid("a contact needs a name".into()));
            }
            if new_name.chars().count() > 200 || new_name.chars().any(char::is_control) {
                return Err(StoreError::Invalid(
                    "a contact's name has at most 200 characters and no control characters".into(),
                ));
            }
            if new_name == name {
                return Ok(None);
            }
            conn.prepare_cached("UPDATE contacts SET name = ?1 WHERE id = ?2")?
                .execute(params![new_name, id])?;
            Ok(Some((name, new_name.to_string())))
        }
        ContactChange::AddAddress(address) => {
            let address = normalize_address(address)?;
            let owner: Option<ContactId> = conn
                .prepare_cached("SELECT contact_id FROM contact_addresses WHERE address = ?1")?
                .query_row([&address], |r| r.get(0))
                .optional()?;
            match owner {
                Some(owner) if owner == id => return Ok(None),
                // Which contact is not said: it may be one the agent may not see.
                Some(_) => {
                    return Err(StoreError::Invalid(format!(
                        "{address} already belongs to another contact"
                    )));
                }
                None => {}
            }
            conn.prepare_cached(
                "INSERT INTO contact_addresses (address, contact_id) VALUES (?1, ?2)",
            )?
            .execute(params![address, id])?;
            let mut after = addresses.clone();
            after.push(address);
            after.sort();
            Ok(Some((addresses.join(", "), after.join(", "))))
        }
        ContactChange::RemoveAddress(address) => {
            let address = address.trim().to_lowercase();
            if !addresses.contains(&address) {
                return Ok(None);
            }
            if addresses.len() <= 1 {
                return Err(StoreError::Invalid(
                    "a contact keeps at least one address; add the new one first".into(),
                ));
            }
            conn.prepare_cached(
                "DELETE FROM contact_addresses WHERE contact_id = ?1 AND address = ?2",
            )?
            .execute(params![id, address])?;
            let after: Vec<&str> = addresses
                .iter()
                .filter(|a| **a != address)
                .map(String::as_str)
                .collect();
            Ok(Some((addresses.join(", "), after.join(", "))))
        }
    }
}

fn organizations_where(
    conn: &Db,
    scope: &Scope,
    id: Option<OrganizationId>,
) -> Result<Vec<Organization>> {
    let sql = format!(
        "SELECT o.id, o.name,
                (SELECT COUNT(*) FROM contacts c WHERE c.organization_id = o.id AND {}),
                (SELECT COUNT(*) FROM tickets t WHERE t.organization_id = o.id AND {})
         FROM organizations o WHERE (CAST(?1 AS BIGINT) IS NULL OR o.id = ?1) AND {} ORDER BY lower(o.name)",
        scope.contact_condition(),
        scope.ticket_condition(),
        scope.organization_condition()
    );
    conn.prepare(&sql)?
        .query_map([id], |r| {
            Ok(Organization {
                id: r.get(0)?,
                name: r.get(1)?,
                contacts: r.get(2)?,
                tickets: r.get(3)?,
            })
        })?
        .collect::<Result<_>>()
}

// What intake asks and writes, on the writer's connection.

/// (contact id, organization id) of the contact with this (lower-case) address.
pub(crate) fn by_address(
    conn: &Db,
    email: &str,
) -> Result<Option<(ContactId, Option<OrganizationId>)>> {
    conn.prepare_cached(
        "SELECT c.id, c.organization_id FROM contact_addresses a
             JOIN contacts c ON c.id = a.contact_id WHERE a.address = ?1",
    )?
    .query_row([email], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// The organization named `name`, if there is one.
pub(crate) fn organization_named(conn: &Db, name: &str) -> Result<Option<OrganizationId>> {
    conn.prepare_cached("SELECT id FROM organizations WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// The organization of contact `id`.
pub(crate) fn organization_of(conn: &Db, id: ContactId) -> Result<Option<OrganizationId>> {
    conn.prepare_cached("SELECT organization_id FROM contacts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

/// The organization named `name`, created when missing.
pub(crate) fn ensure_organization(conn: &Db, name: &str) -> Result<OrganizationId> {
    conn.prepare_cached(
        "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    )?
    .execute(params![name, now()])?;
    conn.prepare_cached("SELECT id FROM organizations WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

/// A new contact with one address.
pub(crate) fn create(
    conn: &Db,
    name: &str,
    email: &str,
    organization_id: Option<OrganizationId>,
) -> Result<ContactId> {
    if let Some(pending) = conn.pending() {
        // PostgreSQL, in intake's batch: written behind (see `pending`).
        let id = pending.take_id(conn, Sequence::Contacts)?;
        pending.push(
            Table::Contacts,
            vec![
                Box::new(id),
                Box::new(name.to_string()),
                Box::new(organization_id),
                Box::new(now()),
            ],
        );
        pending.push(
            Table::ContactAddresses,
            vec![Box::new(email.to_string()), Box::new(ContactId::new(id))],
        );
        return Ok(ContactId::new(id));
    }
    let inserted_id: i64 = conn.prepare_cached(
        "INSERT INTO contacts (name, organization_id, created_at) VALUES (?1, ?2, ?3) RETURNING id",
    )?
    .query_row(params![name, organization_id, now()], |r| r.get(0))?;
    let id = ContactId::new(inserted_id);
    conn.prepare_cached("INSERT INTO contact_addresses (address, contact_id) VALUES (?1, ?2)")?
        .execute(params![email, id])?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_lower_cased() {
        assert_eq!(
            normalize_address(" Alice@Example.ORG ").unwrap(),
            "alice@example.org"
        );
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@localhost",
            "alice@.org",
            "alice@example.",
            "a b@example.org",
            "alice@example.org, bob@example.org",
            "<alice@example.org>",
            "a@b@example.org",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad:?} passed");
        }
        assert!(normalize_address(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
