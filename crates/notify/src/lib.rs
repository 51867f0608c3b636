//! The notify stage: acknowledgements, agent notifications and failure alerts,
//! written to the transactional outbox in the same commit as the ticket change
//! that causes them, then delivered over SMTP.
//!
//! Outgoing mail arrives with its own issue; until then this stage queues nothing.

use postdesk_store::{IncomingMail, IngestReport, RegisteredHelpdesk};
use sqlx::SqliteConnection;

/// Called by the pipeline for every applied mail, inside the mail's group transaction.
pub async fn on_ingested(
    _conn: &mut SqliteConnection,
    _helpdesk: &RegisteredHelpdesk,
    _mail: &IncomingMail,
    _report: &IngestReport,
) -> Result<(), sqlx::Error> {
    Ok(())
}
