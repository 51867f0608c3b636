//! The list pages' query strings (tickets, contacts), read the same way by the pages
//! and the API, and turned into the desk's queries with a clear message for a bad value.
//! Every value is bounded here, before it reaches SQL: a search term of
//! [`MAX_TEXT_CHARS`] at most (SQLite refuses LIKE patterns over 50 KB with an
//! internal error), and a page number that keeps the offset arithmetic in range.

use postdesk_store::deadlines::DueFilter;
use postdesk_store::desk::{Cursor, PageAt, TicketQuery};

use crate::WebError;

/// The longest search term or filter value taken: longer than any name, address,
/// subject words or status worth looking for.
pub const MAX_TEXT_CHARS: usize = 200;
/// The highest page number: with at most 500 tickets a page, the offset stays far
/// from overflowing (page 9223372036854775807 is refused, not wrapped to page 1).
pub const MAX_PAGE: i64 = 1_000_000;

/// `value`, or a 400 saying which parameter is too long and what the limit is.
fn bounded<'v>(name: &str, value: Option<&'v str>) -> Result<Option<&'v str>, WebError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_CHARS => Err(WebError::BadRequest(format!(
            "`{name}` is {} characters long; it may have at most {MAX_TEXT_CHARS}",
            v.chars().count()
        ))),
        other => Ok(other),
    }
}

/// A page cursor from a link (`ID:KEY`), or a 400 naming the parameter.
fn cursor(name: &str, text: &str) -> Result<Cursor, WebError> {
    Cursor::parse(text).ok_or_else(|| {
        WebError::BadRequest(format!(
            "`{name}` must be a page cursor as a list's `next` or `previous` gives it (ID:KEY), not `{text}`"
        ))
    })
}

/// The ticket list's query string, as the page and the API take it.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct TicketListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpdesk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Agent name, or `-` for unassigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// Deadlines (issue 18): `overdue`, or `today` (due before the end of the day, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// `updated` (default), `created`, `number`, `priority`, `status`, `due`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Kept as text so that a bad value gets a clear message, not a bare 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Keyset pages (issue 19): the cursor of the ticket the page starts after, as the
    /// previous page's `next` gave it (`ID:KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The cursor of the ticket the page ends before (a previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<String>,
}

impl TicketListParams {
    /// Refuses values longer than [`MAX_TEXT_CHARS`].
    fn check_lengths(&self) -> Result<(), WebError> {
        for (name, value) in [
            ("q", &self.q),
            ("helpdesk", &self.helpdesk),
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("priority", &self.priority),
            ("requester", &self.requester),
            ("due", &self.due),
            ("sort", &self.sort),
            ("order", &self.order),
            ("page", &self.page),
            ("after", &self.after),
            ("before", &self.before),
            ("per_page", &self.per_page),
        ] {
            bounded(name, value.as_deref())?;
        }
        Ok(())
    }

    /// Empty fields (an untouched form input) mean "no filter".
    fn field(value: &Option<String>) -> Option<String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn query(&self, default_per_page: i64) -> Result<TicketQuery, WebError> {
        self.check_lengths()?;
        let number =
            |name: &str, value: &Option<String>, default: i64, max: i64| match Self::field(value) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        WebError::BadRequest(format!(
                            "`{name}` must be a whole number from 1 to {max}, not `{v}`"
                        ))
                    }),
            };
        let search = match Self::field(&self.q) {
            None => None,
            Some(q) => Some(
                postdesk_core::search::parse(&q)
                    .map_err(|e| WebError::BadRequest(format!("`q`: {e}")))?,
            )
            .filter(|s| !s.is_empty()),
        };
        let words = search
            .as_ref()
            .is_some_and(|s| !s.terms.is_empty() || !s.from.is_empty());
        let sort = match Self::field(&self.sort) {
            // A search with words lists the best matches first.
            None if words => postdesk_store::desk::TicketSort::Relevance,
            None => Default::default(),
            Some(s) => postdesk_store::desk::TicketSort::parse(&s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`sort` must be updated, created, number, priority, status, due or relevance, not `{s}`"
                ))
            })?,
        };
        let ascending = match Self::field(&self.order).as_deref() {
            // Deadlines read soonest first unless asked otherwise (issue 18).
            None => sort == postdesk_store::desk::TicketSort::Due,
            Some("desc") => false,
            Some("asc") => true,
            Some(o) => {
                return Err(WebError::BadRequest(format!(
                    "`order` must be asc or desc, not `{o}`"
                )));
            }
        };
        let now = postdesk_store::now();
        let due = match Self::field(&self.due).as_deref() {
            None => None,
            Some("overdue") => Some((DueFilter::Overdue, now)),
            Some("today") => Some((
                DueFilter::DueBy {
                    until: now - now.rem_euclid(86_400) + 86_400,
                },
                now,
            )),
            Some(d) => {
                return Err(WebError::BadRequest(format!(
                    "`due` must be overdue or today, not `{d}`"
                )));
            }
        };
        Ok(TicketQuery {
            visible: Vec::new(),
            due,
            helpdesk: Self::field(&self.helpdesk),
            status: Self::field(&self.status),
            assignee: Self::field(&self.assignee),
            priority: Self::field(&self.priority),
            requester: Self::field(&self.requester),
            search,
            sort,
            ascending,
            page: number("page", &self.page, 1, MAX_PAGE)?,
            at: match (Self::field(&self.after), Self::field(&self.before)) {
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(WebError::BadRequest(
                        "give `after` or `before`, not both".into(),
                    ));
                }
                (Some(c), None) => Some(PageAt::After(cursor("after", &c)?)),
                (None, Some(c)) => Some(PageAt::Before(cursor("before", &c)?)),
            },
            per_page: number("per_page", &self.per_page, default_per_page, i64::MAX)?.min(500),
        })
    }

    /// `/tickets?…` with these filters, changed by `change`.
    pub fn link(&self, change: impl FnOnce(&mut Self)) -> String {
        let mut params = self.clone();
        change(&mut params);
        for field in [
            &mut params.q,
            &mut params.helpdesk,
            &mut params.status,
            &mut params.assignee,
            &mut params.priority,
            &mut params.requester,
            &mut params.due,
            &mut params.sort,
            &mut params.order,
            &mut params.page,
            &mut params.after,
            &mut params.before,
            &mut params.per_page,
        ] {
            *field = Self::field(field);
        }
        match serde_urlencoded::to_string(&params) {
            Ok(q) if !q.is_empty() => format!("/tickets?{q}"),
            _ => "/tickets".into(),
        }
    }
}

/// The contact list's query string, as the page and the API take it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ContactSearch {
    /// Part of a name or an address.
    pub q: Option<String>,
}

impl ContactSearch {
    /// What to search for; an empty field (an untouched form input) means everything.
    /// A term longer than [`MAX_TEXT_CHARS`] is refused.
    pub fn text(&self) -> Result<Option<&str>, WebError> {
        bounded("q", self.q.as_deref().filter(|q| !q.trim().is_empty()))
    }
}
