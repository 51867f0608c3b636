//! `postdesk deliver`: one mail on stdin from an MTA pipe.
//!
//! Exit 0 once the mail is durably stored (as a ticket, a follow-up, ignored or in
//! the failed queue); exit 75 (EX_TEMPFAIL) otherwise, so the MTA keeps it and retries.

use std::path::Path;
use std::process::ExitCode;

const EX_TEMPFAIL: u8 = 75;

pub async fn run(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<ExitCode> {
    match deliver(config_path, helpdesk).await {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("postdesk: mail not stored, the MTA should retry: {e:#}");
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}

async fn deliver(config_path: &Path, helpdesk: Option<&str>) -> anyhow::Result<String> {
    let (config, app) = super::open(config_path, helpdesk).await?;
    // Read more than the limit so an oversized mail is still kept, raw, in the failed queue.
    let limit = config.max_mail_bytes.saturating_mul(2);
    let mail = postdesk_sources::stdin::read_one(std::io::stdin().lock(), limit)?;
    let mut outcome = None;
    app.intake()
        .run(std::iter::once(mail), |batch| {
            outcome = batch.first().map(|p| p.report.clone())
        })
        .await?;
    app.store().close().await;
    let report = outcome.ok_or_else(|| anyhow::anyhow!("the pipeline reported nothing"))?;
    let ticket = report
        .ticket_number
        .map(|n| format!(" ticket #{n}"))
        .unwrap_or_default();
    let reason = report.reason.map(|r| format!(": {r}")).unwrap_or_default();
    Ok(format!("{}{ticket}{reason}", report.outcome.as_str()))
}
