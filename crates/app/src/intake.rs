//! Intake: raw mail in, tickets out. The pipeline does the work; the [`App`] gives it
//! the store, the helpdesks and the intake options, so that a source only hands over
//! mails (and a retry only ledger ids) and hears back what was committed.

use std::sync::Arc;

pub use postdesk_pipeline::{
    Limits, Options as IntakeOptions, Pipeline, PipelineError, Processed, Summary,
};

use crate::App;

impl App {
    /// The pipeline over this App's store and helpdesks; narrow it with
    /// [`Pipeline::with_helpdesk`] or [`Pipeline::with_batch_size`], then `run` or `retry`.
    pub fn intake(&self) -> Pipeline {
        Pipeline::new(
            self.store().clone(),
            Arc::clone(&self.0.helpdesks),
            self.settings().intake.clone(),
        )
    }
}
