//! The route stage: ordered mail rules decide what happens to a mail before
//! threading. Rules arrive with their own issue; until then every mail passes
//! through to threading unchanged.

use postdesk_mail::{Classification, ParsedMail};

/// What routing decided for one mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Name of another helpdesk to hand the mail to, if a rule said so.
    pub helpdesk: Option<String>,
}

/// The routing seam: returns the default route until rules exist.
pub fn route(_mail: &ParsedMail, _class: Classification) -> Route {
    Route::default()
}
