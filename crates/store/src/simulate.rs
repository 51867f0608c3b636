//! The rules simulator's view of the store: what importing a mail would do, decided by
//! the same [`intake::decide`] as a real import on facts gathered by the same code, on
//! a connection that cannot write.

use postdesk_core::id::{AgentId, HelpdeskId, TicketNumber};
use std::collections::HashSet;

use postdesk_core::intake::{self, Action, Applied, Plan};
use postdesk_core::rules::Ruled;
use postdesk_core::settings::Helpdesk;
use postdesk_core::thread::{Decision, ThreadFacts};
use rusqlite::{Connection, OpenFlags};

use crate::engine::postgres::PgConn;

use crate::engine::{Db, Dialect, OptionalExtension};

use crate::ingest::{IncomingMail, gather_facts};
use crate::ledger::LedgerIndex;
use crate::{MIGRATIONS, RegisteredHelpdesk, Result, StoreError, tickets};

/// What importing one mail would do.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The decision, with the ledger as it is.
    pub plan: Plan,
    /// What the store knows of the mail's references and sender.
    pub facts: ThreadFacts,
    /// Threading's decision without rules (had the ledger not known the mail).
    pub threaded: Decision,
    /// The decision with the rules applied (had the ledger not known the mail).
    pub ruled: Ruled,
    /// The ticket the mail would be added to.
    pub ticket: Option<TicketBrief>,
    /// The number a new ticket would get.
    pub next_number: TicketNumber,
    /// Set when the ledger already has this mail: importing it again changes nothing.
    pub already: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TicketBrief {
    pub number: TicketNumber,
    pub title: String,
    pub status: String,
}

/// A read-only connection to the database, or to an empty one in memory.
pub struct Simulator {
    conn: SimulatorConn,
}

enum SimulatorConn {
    Sqlite(Connection),
    /// Each dry run is a read-only transaction, rolled back.
    Postgres(PgConn),
}

impl Simulator {
    fn db(&self) -> Db<'_> {
        match &self.conn {
            SimulatorConn::Sqlite(conn) => Db::sqlite(conn),
            SimulatorConn::Postgres(conn) => Db::postgres(conn),
        }
    }
}

impl Simulator {
    /// Opens an existing database read-only: no migration, no registration, nothing
    /// written (SQLite refuses writes on the connection, PostgreSQL in a read-only
    /// transaction). `None` when there is no database file yet.
    pub fn open(url: &str) -> Result<Option<Self>> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let conn = PgConn::connect(url)?;
            if crate::db::applied_version(&Db::postgres(&conn))?.is_none() {
                return Ok(None);
            }
            return Ok(Some(Self {
                conn: SimulatorConn::Postgres(conn),
            }));
        }
        let Some(file) = crate::db::sqlite_path(url)?.filter(|file| file.exists()) else {
            return Ok(None);
        };
        let conn = crate::engine::connect_sqlite(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Some(Self {
            conn: SimulatorConn::Sqlite(conn),
        }))
    }

    /// An empty database in memory with the current schema: the simulator's store when
    /// there is no database yet (no tickets, no contacts).
    pub fn empty() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        crate::db::migrate(&Db::sqlite(&conn), MIGRATIONS)?;
        Ok(Self {
            conn: SimulatorConn::Sqlite(conn),
        })
    }

    /// The configured helpdesks as this database knows them, registering none: a
    /// helpdesk the database has not seen yet gets id 0, which owns no ticket.
    pub fn lookup_helpdesks(&self, helpdesks: &[Helpdesk]) -> Result<Vec<RegisteredHelpdesk>> {
        let db = self.db();
        let mut statement = db.prepare_cached("SELECT id FROM helpdesks WHERE name = ?1")?;
        helpdesks
            .iter()
            .map(|hd| {
                let id: Option<HelpdeskId> = statement
                    .query_row([&hd.settings.name], |r| r.get(0))
                    .optional()?;
                // A helpdesk the database has not registered yet has no tickets:
                // id 0 is no row's id, so every lookup finds nothing.
                Ok(RegisteredHelpdesk {
                    id: id.unwrap_or(HelpdeskId::new(0)),
                    config: hd.clone(),
                    default_agent_id: AgentId::new(0),
                    manager_id: None,
                    assignee_id: None,
                })
            })
            .collect()
    }

    /// What importing `mail` would do, inside a read transaction that is rolled back.
    pub fn dry_run(&self, helpdesks: &[RegisteredHelpdesk], mail: &IncomingMail) -> Result<DryRun> {
        let tx = self.db();
        tx.execute_batch(match tx.dialect() {
            Dialect::Sqlite => "BEGIN", // the connection itself is read-only
            Dialect::Postgres => "BEGIN READ ONLY",
        })?;
        let result = self.dry_run_in(&tx, helpdesks, mail);
        tx.execute_batch("ROLLBACK")?;
        result
    }

    fn dry_run_in(
        &self,
        tx: &Db,
        helpdesks: &[RegisteredHelpdesk],
        mail: &IncomingMail,
    ) -> Result<DryRun> {
        let hd = &helpdesks[mail.helpdesk];
        let agents: HashSet<String> = crate::access::agent_emails(tx)?;
        let ledger = LedgerIndex::read(tx, &[mail])?.facts(hd.id, mail);
        let input = mail.decision_input(None);
        let thread_facts = || gather_facts(tx, hd, &agents, mail);
        let plan = intake::decide(&hd.config, input, &ledger, thread_facts)?;
        let already = match plan.already_imported() {
            Some((outcome, ticket_id)) => {
                let number: Option<TicketNumber> = match ticket_id {
                    Some(id) => tx
                        .prepare("SELECT number FROM tickets WHERE id = ?1")?
                        .query_row([id], |r| r.get(0))
                        .optional()?,
                    None => None,
                };
                Some(match number {
                    Some(n) => format!("already imported ({}, ticket #{n})", outcome.as_str()),
                    None => format!("already imported ({})", outcome.as_str()),
                })
            }
            None => None,
        };
        // What it would become were it new to the ledger: the simulator shows that too.
        let applied = match &plan.action {
            Action::Apply(applied) => applied.as_ref().clone(),
            _ => {
                let fresh = intake::decide(&hd.config, input, &Default::default(), thread_facts)?;
                match fresh.action {
                    Action::Apply(applied) => *applied,
                    other => {
                        return Err(StoreError::Invalid(format!(
                            "the simulator cannot show what {other:?} would do"
                        )));
                    }
                }
            }
        };
        let Applied {
            facts,
            threaded,
            ruled,
        } = applied;
        let ticket = match &ruled.decision {
            Decision::FollowUp { ticket_id, .. } => tx
                .prepare("SELECT number, title, status FROM tickets WHERE id = ?1")?
                .query_row([ticket_id], |row| {
                    Ok(TicketBrief {
                        number: row.get(0)?,
                        title: row.get(1)?,
                        status: row.get(2)?,
                    })
                })
                .optional()?,
            _ => None,
        };
        let next_number = tickets::next_number(tx, hd)?;
        Ok(DryRun {
            plan,
            facts,
            threaded,
            ruled,
            ticket,
            next_number,
            already,
        })
    }
}
