//! Domain logic of postdesk, pure and I/O-free: helpdesk settings and policies,
//! ticket references in subjects, threading decisions, routing seam.

pub mod attachments;
pub mod reference;
pub mod route;
pub mod settings;
pub mod thread;

pub use reference::ReferenceFormat;
pub use settings::HelpdeskSettings;
