//! The `contacts`, `contact_addresses`, `organizations` and `contact_events` tables as
//! agents see them: lists and pages scoped to the agent's helpdesks, and the changes an
//! agent makes to a contact, each recorded with its old and new value.
//!
//! A contact belongs to the helpdesks where it requested a ticket; an organization to
//! the helpdesks where one of its tickets is. Outside that [`Scope`] a contact or an
//! organization does not exist for the caller: NotFound, as for tickets. A contact that
//! requested nothing yet is seen by admins only.

use serde::Serialize;
use sqlx::Row;

use crate::sql::{id_list, like_pattern};
use crate::{Result, Store, StoreError, now};

/// What a query may reach: everything (an admin), or what belongs to these helpdesks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    Helpdesks(Vec<i64>),
}

impl Scope {
    /// A condition that holds for the contact `c` when the scope reaches it.
    fn contact_condition(&self) -> String {
        match self {
            Scope::Everything => "TRUE".into(),
            Scope::Helpdesks(ids) => format!(
                "EXISTS (SELECT 1 FROM tickets st WHERE st.requester_id = c.id AND st.helpdesk_id IN {})",
                id_list(ids)
            ),
        }
    }

    /// A condition that holds for the organization `o` when the scope reaches it.
    fn organization_condition(&self) -> String {
        match self {
            Scope::Everything => "TRUE".into(),
            Scope::Helpdesks(ids) => format!(
                "EXISTS (SELECT 1 FROM tickets st WHERE st.organization_id = o.id AND st.helpdesk_id IN {})",
                id_list(ids)
            ),
        }
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
    pub id: i64,
    pub name: String,
    pub organization_id: Option<i64>,
    pub organization: Option<String>,
    pub addresses: Vec<String>,
    /// Tickets the contact requested, within the scope it was read with.
    pub tickets: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    pub id: i64,
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
    pub contact_id: i64,
    pub agent_id: i64,
    pub change: ContactChange,
    /// The contact's open tickets: each gets the change as an internal event.
    pub open_tickets: &'a [i64],
}

/// `name@domain.tld`, lower-cased, or why not. The one address check for what people type.
pub fn normalize_address(address: &str) -> Result<String> {
    let address = address.trim().to_lowercase();
    let valid = address.len() <= 254
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c));
    if valid {
        Ok(address)
    } else {
        Err(StoreError::Invalid(format!(
            "`{}` is not an email address (like name@example.com)",
            address.chars().take(100).collect::<String>()
        )))
    }
}

fn no_contact(id: i64) -> StoreError {
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
        let sql = format!(
            "SELECT c.id FROM contacts c
             WHERE {} AND ($1 IS NULL OR lower(c.name) LIKE $1 ESCAPE '\\'
                OR EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.address LIKE $1 ESCAPE '\\'))
             ORDER BY lower(c.name), c.id LIMIT $2",
            scope.contact_condition()
        );
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        let mut rows = Vec::new();
        for id in ids {
            rows.push(self.contact(scope, id).await?);
        }
        Ok(rows)
    }

    /// A contact within `scope`, else NotFound.
    pub async fn contact(&self, scope: &Scope, id: i64) -> Result<Contact> {
        let sql = format!(
            "SELECT c.id, c.name, c.organization_id, o.name,
                    (SELECT COUNT(*) FROM tickets t WHERE t.requester_id = c.id AND {})
             FROM contacts c LEFT JOIN organizations o ON o.id = c.organization_id
             WHERE c.id = $1 AND {}",
            scope.ticket_condition(),
            scope.contact_condition()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| no_contact(id))?;
        let addresses = sqlx::query_scalar(
            "SELECT address FROM contact_addresses WHERE contact_id = $1 ORDER BY address",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Contact {
            id: row.get(0),
            name: row.get(1),
            organization_id: row.get(2),
            organization: row.get(3),
            addresses,
            tickets: row.get(4),
        })
    }

    /// The helpdesks where the contact requested tickets: who may change it depends on them.
    pub async fn contact_helpdesks(&self, id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT helpdesk_id FROM tickets WHERE requester_id = $1 ORDER BY helpdesk_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The changes made to a contact, the newest first.
    pub async fn contact_events(&self, id: i64) -> Result<Vec<ContactEvent>> {
        let rows = sqlx::query(
            "SELECT e.field, e.old_value, e.new_value, a.name, e.created_at FROM contact_events e
             LEFT JOIN agents a ON a.id = e.agent_id WHERE e.contact_id = $1
             ORDER BY e.id DESC LIMIT 200",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ContactEvent {
                field: r.get(0),
                old_value: r.get(1),
                new_value: r.get(2),
                agent: r.get(3),
                created_at: r.get(4),
            })
            .collect())
    }

    /// Applies an agent's change to a contact and records it, with the old and the new
    /// value, on the contact and on each of `open_tickets`, in one transaction.
    /// Returns false when nothing changed. Permissions are the caller's.
    pub async fn edit_contact(&self, edit: &ContactEdit<'_>) -> Result<bool> {
        let id = edit.contact_id;
        let mut tx = self.begin_write().await?;
        let name: String = sqlx::query_scalar("SELECT name FROM contacts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| no_contact(id))?;
        let addresses: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM contact_addresses WHERE contact_id = $1 ORDER BY address",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let (old, new) = match &edit.change {
            ContactChange::Rename(new_name) => {
                let new_name = new_name.trim();
                if new_name.is_empty() {
                    return Err(StoreError::Invalid("a contact needs a name".into()));
                }
                if new_name.chars().count() > 200 || new_name.chars().any(char::is_control) {
                    return Err(StoreError::Invalid(
                        "a contact's name has at most 200 characters and no control characters"
                            .into(),
                    ));
                }
                if new_name == name {
                    return Ok(false);
                }
                sqlx::query("UPDATE contacts SET name = $1 WHERE id = $2")
                    .bind(new_name)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                (name, new_name.to_string())
            }
            ContactChange::AddAddress(address) => {
                let address = normalize_address(address)?;
                let owner: Option<i64> = sqlx::query_scalar(
                    "SELECT contact_id FROM contact_addresses WHERE address = $1",
                )
                .bind(&address)
                .fetch_optional(&mut *tx)
                .await?;
                match owner {
                    Some(owner) if owner == id => return Ok(false),
                    // Which contact is not said: it may be one the agent may not see.
                    Some(_) => {
                        return Err(StoreError::Invalid(format!(
                            "{address} already belongs to another contact"
                        )));
                    }
                    None => {}
                }
                sqlx::query("INSERT INTO contact_addresses (address, contact_id) VALUES ($1, $2)")
                    .bind(&address)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let mut after = addresses.clone();
                after.push(address);
                after.sort();
                (addresses.join(", "), after.join(", "))
            }
            ContactChange::RemoveAddress(address) => {
                let address = address.trim().to_lowercase();
                if !addresses.contains(&address) {
                    return Ok(false);
                }
                if addresses.len() <= 1 {
                    return Err(StoreError::Invalid(
                        "a contact keeps at least one address; add the new one first".into(),
                    ));
                }
                sqlx::query("DELETE FROM contact_addresses WHERE contact_id = $1 AND address = $2")
                    .bind(id)
                    .bind(&address)
                    .execute(&mut *tx)
                    .await?;
                let after: Vec<&str> = addresses
                    .iter()
                    .filter(|a| **a != address)
                    .map(String::as_str)
                    .collect();
                (addresses.join(", "), after.join(", "))
            }
        };
        let now = now();
        let field = edit.change.field();
        sqlx::query(
            "INSERT INTO contact_events (contact_id, agent_id, field, old_value, new_value, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(edit.agent_id)
        .bind(field)
        .bind(&old)
        .bind(&new)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let agent: String = sqlx::query_scalar("SELECT name FROM agents WHERE id = $1")
            .bind(edit.agent_id)
            .fetch_one(&mut *tx)
            .await?;
        let text = format!("The requester's {field} changed from {old} to {new} by {agent}.");
        for ticket_id in edit.open_tickets {
            crate::entries::insert_event(&mut tx, *ticket_id, Some(edit.agent_id), &text, now)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Organizations within `scope`.
    pub async fn organizations(&self, scope: &Scope) -> Result<Vec<Organization>> {
        self.organizations_where(scope, None).await
    }

    /// An organization within `scope` and its contacts within it, else NotFound.
    pub async fn organization(
        &self,
        scope: &Scope,
        id: i64,
    ) -> Result<(Organization, Vec<Contact>)> {
        let org = self
            .organizations_where(scope, Some(id))
            .await?
            .pop()
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "there is no organization {id}, or it has no tickets in your helpdesks"
                ))
            })?;
        let sql = format!(
            "SELECT c.id FROM contacts c WHERE c.organization_id = $1 AND {}
             ORDER BY lower(c.name) LIMIT 1000",
            scope.contact_condition()
        );
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let mut contacts = Vec::new();
        for c in ids {
            contacts.push(self.contact(scope, c).await?);
        }
        Ok((org, contacts))
    }

    async fn organizations_where(
        &self,
        scope: &Scope,
        id: Option<i64>,
    ) -> Result<Vec<Organization>> {
        let sql = format!(
            "SELECT o.id, o.name,
                    (SELECT COUNT(*) FROM contacts c WHERE c.organization_id = o.id AND {}),
                    (SELECT COUNT(*) FROM tickets t WHERE t.organization_id = o.id AND {})
             FROM organizations o WHERE ($1 IS NULL OR o.id = $1) AND {} ORDER BY lower(o.name)",
            scope.contact_condition(),
            scope.ticket_condition(),
            scope.organization_condition()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Organization {
                id: r.get(0),
                name: r.get(1),
                contacts: r.get(2),
                tickets: r.get(3),
            })
            .collect())
    }
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
