//! The arguments that the failed queue (`postdesk failed`) and the outbox
//! (`postdesk outbox`) share: `list [--limit N]`, `show ID [--raw]`,
//! `retry ID... | retry --all`. Each queue's command enum names its subcommands and
//! their help, and adds what only it has (the outbox's `list --status` and `send`).

use clap::Args;

/// `list [--limit N]`
#[derive(Args)]
pub struct ListArgs {
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

/// `show ID [--raw]`
#[derive(Args)]
pub struct ShowArgs {
    /// The row's id, as `list` shows it (typed where the command uses it).
    pub id: i64,
    #[arg(long)]
    pub raw: bool,
}

/// `retry ID...` or `retry --all`
#[derive(Args)]
pub struct RetryArgs {
    pub ids: Vec<i64>,
    /// Every failed mail.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
}
