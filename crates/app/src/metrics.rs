//! The process's metrics for Prometheus (`/metrics`, text format), with
//! `prometheus-client`: one registry per [`App`](crate::App), no global recorder, and
//! label sets as typed structs, so a label cannot be misspelt in one place.
//!
//! Two kinds of series. Counted here, as they happen in this process: mails taken in
//! by its mailboxes ([`Metrics::count_mails`]), HTTP requests by route template
//! ([`Metrics::observe_request`]), the time reads and writes wait for a database
//! connection (the store reports it), the mailboxes' lag. Read from the database at
//! each scrape ([`Metrics::render`]), through the store's typed functions: the outbox,
//! the failed queue, each mailbox's last successful check; so they are true whichever
//! process (serve, cron's `scan`, the MTA's `deliver`) changed them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postdesk_pipeline::Processed;
use postdesk_store::Store;
use postdesk_store::operations::ConnectionUse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailLabels {
    helpdesk: String,
    mailbox: String,
    outcome: &'static str,
    classification: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailboxLabels {
    helpdesk: String,
    mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    /// The route's template (`/tickets/{id}`), never the path asked for.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    /// `read` or `write`.
    connection: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    /// `queued` (waiting, first try or retry), `retrying` (of those, tried before),
    /// `failed` (for good).
    status: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Requests: from a millisecond to ten seconds.
fn request_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Connection waits: from 100 µs (an idle connection) to the pool's 10 s limit.
fn wait_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
    ])
}

/// The series of one process; cheap to share (`Arc` inside the App).
pub struct Metrics {
    registry: Registry,
    mails: Family<MailLabels, Counter>,
    requests: Histograms<RouteLabels>,
    connection_waits: Histograms<ConnectionLabels>,
    mailbox_lag: Family<MailboxLabels, Gauge>,
    /// Per mailbox, when the oldest mail waiting arrived (Unix seconds; `None`: none
    /// waits): the lag is counted from it at each scrape, so it grows while mail is stuck.
    waiting_since: Mutex<HashMap<MailboxLabels, Option<i64>>>,
    mailbox_success_age: Family<MailboxLabels, Gauge>,
    outbox: Family<OutboxLabels, Gauge>,
    outbox_oldest_age: Gauge,
    failed_queue: Gauge,
    database_up: Gauge,
    /// One scrape at a time sets the database's gauges and encodes them.
    scrape: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("postdesk");
        let mails = Family::default();
        registry.register(
            "mails",
            "Mails taken in by this process's mailboxes, by outcome and classification",
            mails.clone(),
        );
        let requests: Histograms<RouteLabels> = Family::new_with_constructor(request_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route template and status",
            requests.clone(),
        );
        let connection_waits: Histograms<ConnectionLabels> =
            Family::new_with_constructor(wait_histogram);
        registry.register(
            "db_connection_wait_seconds",
            "Time reads and write transactions waited for a database connection (and the write lock)",
            connection_waits.clone(),
        );
        let mailbox_lag = Family::default();
        registry.register(
            "mailbox_lag_seconds",
            "Age of the oldest mail found waiting in the mailbox and not yet committed (0 when none waits; IMAP)",
            mailbox_lag.clone(),
        );
        let mailbox_success_age = Family::default();
        registry.register(
            "mailbox_last_success_age_seconds",
            "Seconds since the mailbox was last checked successfully",
            mailbox_success_age.clone(),
        );
        let outbox = Family::default();
        registry.register(
            "outbox_mails",
            "Outgoing mails waiting (queued, of which retrying) or failed for good",
            outbox.clone(),
        );
        let outbox_oldest_age = Gauge::default();
        registry.register(
            "outbox_oldest_queued_age_seconds",
            "Age of the oldest outgoing mail waiting to be sent (0 when none waits)",
            outbox_oldest_age.clone(),
        );
        let failed_queue = Gauge::default();
        registry.register(
            "failed_queue_mails",
            "Mails in the failed queue, kept with their reason until retried or dismissed",
            failed_queue.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "Whether the database answered this scrape's queries (1) or not (0)",
            database_up.clone(),
        );
        Self {
            registry,
            mails,
            requests,
            connection_waits,
            mailbox_lag,
            waiting_since: Mutex::default(),
            mailbox_success_age,
            outbox,
            outbox_oldest_age,
            failed_queue,
            database_up,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// Counts a committed batch of a mailbox's mails.
    pub fn count_mails(&self, helpdesk: &str, mailbox: &str, batch: &[Processed]) {
        for p in batch {
            self.mails
                .get_or_create(&MailLabels {
                    helpdesk: helpdesk.to_string(),
                    mailbox: mailbox.to_string(),
                    outcome: p.report.outcome.as_str(),
                    classification: p.classification.as_str(),
                })
                .inc();
        }
    }

    /// When the oldest mail waiting in a mailbox arrived (Unix seconds), or `None` once
    /// none waits: `postdesk_mailbox_lag_seconds` counts from it.
    pub fn set_mailbox_waiting_since(&self, helpdesk: &str, mailbox: &str, arrived: Option<i64>) {
        let labels = MailboxLabels {
            helpdesk: helpdesk.to_string(),
            mailbox: mailbox.to_string(),
        };
        self.waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(labels, arrived);
    }

    /// One HTTP request answered: `route` is the matched template (`/tickets/{id}`),
    /// or `unmatched` for a path no route takes.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .observe(took.as_secs_f64());
    }

    /// One read or write waited `took` for its connection.
    pub fn observe_connection_wait(&self, what: ConnectionUse, took: Duration) {
        self.connection_waits
            .get_or_create(&ConnectionLabels {
                connection: what.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// Every series in Prometheus's text format (OpenMetrics), the database's gauges
    /// read now. A database that does not answer sets `postdesk_database_up` to 0
    /// (its gauges keep the values last read); the process's own series are still there.
    pub async fn render(&self, store: &Store) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        let now = postdesk_store::now();
        for (labels, since) in self
            .waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let lag = since.map_or(0, |at| (now - at).max(0));
            self.mailbox_lag.get_or_create(labels).set(lag);
        }
        self.outbox.clear();
        self.mailbox_success_age.clear();
        match store.operations_gauges().await {
            Ok(gauges) => {
                self.database_up.set(1);
                for (status, value) in [
                    ("queued", gauges.outbox_queued),
                    ("retrying", gauges.outbox_retrying),
                    ("failed", gauges.outbox_failed),
                ] {
                    self.outbox
                        .get_or_create(&OutboxLabels { status })
                        .set(value);
                }
                self.outbox_oldest_age.set(
                    gauges
                        .outbox_oldest_queued_at
                        .map_or(0, |at| (now - at).max(0)),
                );
                self.failed_queue.set(gauges.failed_queue);
                for mailbox in gauges.mailboxes {
                    if let Some(at) = mailbox.last_success_at {
                        self.mailbox_success_age
                            .get_or_create(&MailboxLabels {
                                helpdesk: mailbox.helpdesk,
                                mailbox: mailbox.mailbox,
                            })
                            .set((now - at).max(0));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database did not answer");
                self.database_up.set(0);
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The store's connection waits, heard by `metrics`.
pub(crate) fn observe_store(store: &Store, metrics: &Arc<Metrics>) {
    let metrics = Arc::clone(metrics);
    store.observe_connection_waits(Arc::new(move |what, took| {
        metrics.observe_connection_wait(what, took)
    }));
}
