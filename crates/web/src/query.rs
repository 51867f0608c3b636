//! The list pages' query strings (tickets, contacts), read the same way by the pages
//! and the API, and turned into the desk's queries with a clear message for a bad value.

use postdesk_store::desk::TicketQuery;

use crate::WebError;

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
    /// `updated` (default), `created`, `number`, `priority`, `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Kept as text so that a bad value gets a clear message, not a bare 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<String>,
}

impl TicketListParams {
    /// Empty fields (an untouched form input) mean "no filter".
    fn field(value: &Option<String>) -> Option<String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn query(&self, default_per_page: i64) -> Result<TicketQuery, WebError> {
        let number = |name: &str, value: &Option<String>, default: i64| match Self::field(value) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                WebError::BadRequest(format!("`{name}` must be a whole number from 1, not `{v}`"))
            }),
        };
        let sort = match Self::field(&self.sort) {
            None => Default::default(),
            Some(s) => postdesk_store::desk::TicketSort::parse(&s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`sort` must be updated, created, number, priority or status, not `{s}`"
                ))
            })?,
        };
        let ascending = match Self::field(&self.order).as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => {
                return Err(WebError::BadRequest(format!(
                    "`order` must be asc or desc, not `{o}`"
                )));
            }
        };
        Ok(TicketQuery {
            visible: Vec::new(),
            helpdesk: Self::field(&self.helpdesk),
            status: Self::field(&self.status),
            assignee: Self::field(&self.assignee),
            priority: Self::field(&self.priority),
            requester: Self::field(&self.requester),
            search: Self::field(&self.q),
            sort,
            ascending,
            page: number("page", &self.page, 1)?,
            per_page: number("per_page", &self.per_page, default_per_page)?.min(500),
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
            &mut params.sort,
            &mut params.order,
            &mut params.page,
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
    pub fn text(&self) -> Option<&str> {
        self.q.as_deref().filter(|q| !q.trim().is_empty())
    }
}
