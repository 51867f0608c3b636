//! The rules simulator's view of the store: what importing a mail would do,
//! found with the same code as a real import, on a connection that cannot write.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use postdesk_core::rules::{self, Ruled};
use postdesk_core::settings::Helpdesk;
use postdesk_core::thread::{self, Decision, ThreadFacts};
use rusqlite::{OptionalExtension, params};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::ingest::{IncomingMail, gather_facts};
use crate::{MIGRATIONS, RegisteredHelpdesk, Result, Store, StoreError};

/// What importing one mail would do.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// What the store knows of the mail's references and sender.
    pub facts: ThreadFacts,
    /// Threading's decision without rules.
    pub threaded: Decision,
    /// The decision with the rules applied.
    pub ruled: Ruled,
    /// The ticket the mail would be added to.
    pub ticket: Option<TicketBrief>,
    /// The number a new ticket would get.
    pub next_number: i64,
    /// Set when the ledger already has this mail: importing it again changes nothing.
    pub already: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TicketBrief {
    pub number: i64,
    pub title: String,
    pub status: String,
}

impl Store {
    /// Opens an existing database read-only: no migration, no registration, nothing
    /// written (SQLite refuses writes on the connection). `None` when there is no
    /// database file yet.
    pub async fn open_read_only(url: &str, data_dir: &Path) -> Result<Option<Self>> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let file = options.get_filename();
        if file.as_os_str() != ":memory:" && !file.exists() {
            return Ok(None);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Some(Self {
            pool,
            data_dir: data_dir.to_path_buf(),
            file: None, // nothing is written
        }))
    }

    /// An empty database in memory, gone when dropped: the simulator's store when
    /// there is no database yet (no tickets, no contacts).
    pub async fn open_in_memory() -> Result<Self> {
        let url = "sqlite::memory:";
        let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            url: url.into(),
            source,
        })?;
        // One connection kept for the pool's life: each in-memory connection is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: url.into(),
                source,
            })?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool,
            data_dir: std::env::temp_dir(),
            file: None,
        })
    }

    /// The configured helpdesks as this database knows them, registering none: a
    /// helpdesk the database has not seen yet gets id 0, which owns no ticket.
    pub async fn lookup_helpdesks(
        &self,
        helpdesks: &[Helpdesk],
    ) -> Result<Vec<RegisteredHelpdesk>> {
        let mut found = Vec::with_capacity(helpdesks.len());
        for hd in helpdesks {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM helpdesks WHERE name = $1")
                .bind(&hd.settings.name)
                .fetch_optional(&self.pool)
                .await?;
            found.push(RegisteredHelpdesk {
                id: id.unwrap_or(0),
                config: hd.clone(),
                default_agent_id: 0,
                manager_id: None,
                assignee_id: None,
            });
        }
        Ok(found)
    }

    /// What importing `mail` would do, decided as `ingest` decides, inside a read
    /// transaction that is rolled back.
    pub async fn dry_run(
        &self,
        helpdesks: &[RegisteredHelpdesk],
        mail: &IncomingMail,
    ) -> Result<DryRun> {
        let hd = &helpdesks[mail.helpdesk];
        let mut conn = self.pool.acquire().await?;
        let mut handle = conn.lock_handle().await?;
        // SAFETY: sqlx's worker leaves the connection alone while `handle` is locked,
        // which it stays until `db` is dropped below; `from_handle` never closes it.
        let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr())? };
        let dry_run = dry_run(&db, hd, mail);
        drop(db);
        drop(handle);
        dry_run
    }
}

/// `Store::dry_run` on the database's own connection, in a read transaction rolled back.
fn dry_run(
    db: &rusqlite::Connection,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
) -> Result<DryRun> {
    let tx = db.unchecked_transaction()?;
    let agents: HashSet<String> = tx
        .prepare("SELECT email FROM agents WHERE email IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let already = tx
            .prepare(
                "SELECT i.outcome, t.number FROM intake i LEFT JOIN tickets t ON t.id = i.ticket_id
                 WHERE i.helpdesk_id = ?1 AND i.outcome != 'failed'
                   AND coalesce(i.message_id, i.sha256) = ?4
                   AND (i.sha256 = ?2 OR (i.message_id = ?3 AND i.outcome IN ('created', 'appended')))
                 ORDER BY i.id LIMIT 1",
            )?
            .query_row(params![hd.id, mail.sha256, mail.mail.message_id, mail.ledger_key()], |row| {
                let outcome: String = row.get(0)?;
                let number: Option<i64> = row.get(1)?;
                Ok(match number {
                    Some(n) => format!("already imported ({outcome}, ticket #{n})"),
                    None => format!("already imported ({outcome})"),
                })
            })
            .optional()?;
    let facts = gather_facts(&tx, hd, &agents, mail)?;
    let threaded = thread::decide(&hd.config, mail.classification, &facts);
    let ruled = rules::decide(
        &hd.config,
        mail.classification,
        &facts,
        threaded.clone(),
        &mail.route.matched,
    );
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
    let next_number: i64 = tx
        .prepare(
            "SELECT MAX(?2, COALESCE(MAX(number), 0) + 1) FROM tickets WHERE helpdesk_id = ?1",
        )?
        .query_row(
            params![hd.id, hd.config.settings.first_ticket_number],
            |r| r.get(0),
        )?;
    tx.rollback()?;
    Ok(DryRun {
        facts,
        threaded,
        ruled,
        ticket,
        next_number,
        already,
    })
}
