//! The application layer: one [`App`] holding what every entry point shares (the store,
//! the registered helpdesks, the intake and delivery settings), and the services on it
//! that the adapters call instead of assembling stages themselves.
//!
//! ```text
//!  adapters      web (HTTP)        postdesk (CLI, wiring)       sources (files, IMAP)
//!                    │                      │                         │
//!                    └───────────────┐      │      ┌──────────────────┘
//!                                    ▼      ▼      ▼
//!  application                            app
//!                          intake · desk · mailboxes · outbox
//!                                 │                  │
//!                                 ▼                  ▼
//!  stages                     pipeline ──▶ notify (outbox, SMTP) ──▶ credentials
//!                                 │                  │                    │
//!                                 ▼                  ▼                    ▼
//!  persistence                                     store
//!                                                    │
//!                                                    ▼
//!  pure                                         core ──▶ mail
//! ```
//!
//! An arrow means "depends on". A crate may also use crates further down than the next
//! layer (the web shows the store's view types, the IMAP source fetches credentials).
//!
//! Dependencies only point down. An adapter reaches the layers below through an
//! [`App`], never through another adapter: the binary (`crates/postdesk`) is the one
//! crate that knows them all, and wires them together (it hands the web its IMAP code
//! as a [`mailboxes::MailboxControl`]).
//!
//! - [`intake`]: mail in, tickets out (the pipeline, run with this App's parts).
//! - [`desk`]: what an agent may see and do: tickets, replies, notes, contacts, the
//!   failed queue, each checked against the agent's helpdesks.
//! - [`mailboxes`]: the configured mailboxes, and [`mailboxes::MailboxControl`], the
//!   seam through which the binary lends the desk its IMAP code.
//! - [`leases`]: which instance reads which mailbox when several share a database.
//! - [`outbox`]: replies queued and outgoing mail sent (notify's sender).
//! - [`deadlines`]: the clock moved by agents' changes, deadlines set by hand, and the
//!   escalation runner of `serve`.
//! - [`interventions`]: work linked to a ticket, prefilled from a template, closing its
//!   ticket when the settings say so.
//! - [`metrics`]: the process's series for Prometheus, and the database's gauges read
//!   at each scrape.
//! - [`reports`]: the weekly reports, narrowed to the helpdesks the asker sees, and
//!   their CSV.
//! - [`portal`]: the customer portal: sign-in links, what a contact reads, tickets
//!   opened and answered by contacts.

// Deadlines: the clock moved by agents, set by hand, escalations (issue 18).
pub mod deadlines;
pub mod desk;
pub mod intake;
// Issue 15: one reader per mailbox across instances.
pub mod leases;
// Interventions linked to tickets (issue 18).
pub mod interventions;
pub mod mailboxes;
// Issue 19: the series of /metrics.
pub mod metrics;
pub mod outbox;
// Issue 17: the customer portal and agents' notifications in the app.
pub mod notifications;
pub mod portal;
// Change notifications wake API mailboxes (issue 20).
pub mod push;
// The weekly reports (issue 18).
pub mod reports;

use postdesk_core::id::HelpdeskId;
use std::sync::Arc;

use postdesk_core::outgoing::DeliverySettings;
use postdesk_pipeline::Options as IntakeOptions;
use postdesk_store::{RegisteredHelpdesk, Store};

/// What the entry points share, built once at start-up. Cheap to clone: the clones
/// share one copy.
#[derive(Clone)]
pub struct App(Arc<Parts>);

#[derive(Clone)]
struct Parts {
    store: Store,
    // An Arc of its own: the pipeline hands it to its preparing threads.
    helpdesks: Arc<[RegisteredHelpdesk]>,
    settings: Settings,
    /// This process among the instances sharing the database (leases' holder).
    instance: leases::InstanceId,
    metrics: Arc<metrics::Metrics>,
    /// The bells change notifications ring (`push`).
    wakeups: Arc<push::Wakeups>,
}

/// How the App takes mail in and sends mail out.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub intake: IntakeOptions,
    pub delivery: DeliverySettings,
    /// Mailbox leases: their length and renewal (`[instances]`).
    pub leases: leases::LeaseSettings,
}

#[derive(Debug, thiserror::Error)]
#[error("no helpdesk named `{0}` is configured")]
pub struct UnknownHelpdesk(pub String);

impl App {
    /// `helpdesks` as the store registered them, in the configuration's order.
    pub fn new(store: Store, helpdesks: Vec<RegisteredHelpdesk>, settings: Settings) -> Self {
        let metrics = Arc::new(metrics::Metrics::new());
        metrics::observe_store(&store, &metrics);
        Self(Arc::new(Parts {
            store,
            helpdesks: helpdesks.into(),
            settings,
            instance: leases::InstanceId::of_this_process(),
            metrics,
            wakeups: Arc::default(),
        }))
    }

    /// The same App taking every mail in for the helpdesk at `index` instead of
    /// choosing by recipient (`import --helpdesk`, `deliver --helpdesk`).
    pub fn delivering_to(self, index: usize) -> Self {
        let mut parts = Arc::unwrap_or_clone(self.0);
        parts.settings.intake.helpdesk = Some(index);
        Self(Arc::new(parts))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn helpdesks(&self) -> &[RegisteredHelpdesk] {
        &self.0.helpdesks
    }

    /// The helpdesk with this database id.
    pub fn helpdesk(&self, id: HelpdeskId) -> Option<&RegisteredHelpdesk> {
        self.helpdesks().iter().find(|h| h.id == id)
    }

    /// Position of the helpdesk with this name (any case), as the configuration lists them.
    pub fn helpdesk_index(&self, name: &str) -> Result<usize, UnknownHelpdesk> {
        self.helpdesks()
            .iter()
            .position(|h| h.config.settings.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownHelpdesk(name.to_string()))
    }

    /// This process's name as a lease holder.
    pub fn instance(&self) -> &leases::InstanceId {
        &self.0.instance
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// This process's metrics (`/metrics`).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// The mailboxes' bells, rung by change notifications.
    pub fn wakeups(&self) -> &push::Wakeups {
        &self.0.wakeups
    }
}
