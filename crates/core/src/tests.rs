//! Tests across modules, kept above them so that no module's tests reach back up:
//! the mail rules as a compiled helpdesk holds them, with threading and the route stage.

mod rules;
