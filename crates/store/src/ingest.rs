//! Applies one prepared mail inside a group transaction: ledger row, contact,
//! new ticket or follow-up, entry, attachments. Each mail runs in its own
//! savepoint, so its effects are all-or-nothing while many mails share one commit.

use std::collections::{HashMap, HashSet};

use postdesk_core::route::Route;
use postdesk_core::rules;
use postdesk_core::settings::UnknownSender;
use postdesk_core::thread::{self, Decision, SenderFacts, ThreadFacts, TicketFacts};
use postdesk_mail::{Address, Classification, ParsedMail, StrippedReply};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Row, Sqlite, SqliteConnection, Transaction};

use crate::{RegisteredHelpdesk, Result, Store, StoreError, now};

/// An attachment whose bytes are already on disk (or refused by policy).
#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub sha256: String,
    pub original_name: Option<String>,
    pub safe_name: String,
    pub mime_type: String,
    pub size: usize,
    pub content_id: Option<String>,
    pub inline: bool,
    /// Why the attachment policy refused it; its bytes are then only in the raw mail.
    pub refused: Option<String>,
}

/// A mail parsed, classified and ready to apply.
#[derive(Debug)]
pub struct IncomingMail {
    /// Index into the registered helpdesks.
    pub helpdesk: usize,
    /// `file`, `maildir`, `mbox`, `stdin`, `imap`…
    pub source: &'static str,
    /// Path, mailbox and UID… whatever finds the mail at its source.
    pub location: String,
    pub sha256: String,
    pub raw_size: usize,
    pub raw_compressed: Vec<u8>,
    /// Parsed mail; its attachment bytes are dropped once stored (see `attachments`).
    pub mail: ParsedMail,
    pub attachments: Vec<StoredAttachment>,
    pub classification: Classification,
    /// Ticket numbers referenced in the subject, in order.
    pub subject_numbers: Vec<i64>,
    /// The body split at the reply marker or quote header; `None` when the mail
    /// carries nothing that could thread it to a ticket (see [`IncomingMail::reply`]).
    pub reply: Option<StrippedReply>,
    /// What the mail rules found before threading (resolved in `apply`).
    pub route: Route,
    pub received_at: i64,
    /// Set when preparing failed (e.g. too large, attachment not writable): the mail is kept as failed.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Appended,
    Ignored,
    Failed,
    /// The same bytes were already processed; nothing was written.
    Duplicate,
}

impl IncomingMail {
    /// The body split at the reply marker or quote header. Preparing a mail skips
    /// the split (a fifth of its cost) when nothing could make it a follow-up;
    /// should threading still append it, the split is made here.
    pub fn reply(&self, marker: Option<&str>) -> std::borrow::Cow<'_, StrippedReply> {
        match &self.reply {
            Some(reply) => std::borrow::Cow::Borrowed(reply),
            None => std::borrow::Cow::Owned(postdesk_mail::strip_reply(&self.mail.text, marker)),
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Appended => "appended",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
            Self::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestReport {
    pub outcome: Outcome,
    pub intake_id: i64,
    pub ticket_id: Option<i64>,
    pub ticket_number: Option<i64>,
    pub reason: Option<String>,
    /// For a mail a rule ignored: the IMAP folder to move it to.
    pub move_to_folder: Option<String>,
}

/// The connection a run's batches are written on (see [`Store::writer`]).
///
/// Its page cache is 8 MiB instead of SQLite's 2: the ledger's and entries'
/// Message-ID and hash indexes stay cached while the bodies of a batch stream past
/// them, which saved a tenth of an import's time.
///
/// SQLite's automatic checkpoint is off on it: copying the write-ahead log into
/// the database would otherwise run on this connection after every commit, a
/// third of the writer's time, while the writer is the one stage of the pipeline
/// that cannot be spread over cores. [`Store::checkpoint`] does it from another
/// connection instead, and [`Writer::release`] turns the automatic one back on.
pub struct Writer {
    /// `None` only once released.
    conn: Option<PoolConnection<Sqlite>>,
}

impl Writer {
    /// Gives the connection SQLite's defaults back (as every other connection has
    /// them) and returns it to the pool.
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("PRAGMA wal_autocheckpoint = 1000; PRAGMA cache_size = -2000")
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for Writer {
    /// A writer dropped without [`Writer::release`] (an error, a cancelled run) is
    /// closed rather than returned to the pool with its checkpoint off.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl std::ops::Deref for Writer {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("a writer is used only before its release")
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a writer is used only before its release")
    }
}

/// Many mails, one commit.
pub struct Batch<'s> {
    store: &'s Store,
    tx: Transaction<'s, Sqlite>,
    /// Each mail in its own savepoint. Without, a database error while applying a
    /// mail fails the whole batch, which the caller then redoes carefully.
    careful: bool,
    /// Agents' addresses (lower-case), read once per batch.
    agents: HashSet<String>,
    ledger: LedgerIndex,
    known: Known,
}

impl Store {
    /// A group transaction for `mails` on `conn` (see [`Store::writer`]), holding
    /// the write lock from its start so what it reads stays true until it commits.
    /// `careful` puts each mail in its own savepoint (two more round trips per
    /// mail); use it to redo a batch that failed without.
    pub async fn begin_batch<'s>(
        &'s self,
        conn: &'s mut SqliteConnection,
        helpdesks: &[RegisteredHelpdesk],
        careful: bool,
        mails: &[&IncomingMail],
    ) -> Result<Batch<'s>> {
        let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
        let agents = sqlx::query_scalar("SELECT email FROM agents WHERE email IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let ledger = LedgerIndex::read(&mut tx, mails).await?;
        let known = Known::read(&mut tx, helpdesks, mails).await?;
        Ok(Batch {
            store: self,
            tx,
            careful,
            agents,
            ledger,
            known,
        })
    }

    /// The connection for all the batches of a run. The same one each time: every
    /// connection prepares and caches each shape of a mail's statements (several
    /// MB on four rotating pool connections), and keeps its page cache only while
    /// no other connection writes.
    pub async fn writer(&self) -> Result<Writer> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -8192")
            .execute(&mut *conn)
            .await?;
        Ok(Writer { conn: Some(conn) })
    }

    /// Copies what the write-ahead log holds into the database, without waiting for
    /// or blocking readers and the writer (SQLite's PASSIVE checkpoint); run it on
    /// the side while a [`Writer`] imports.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// `$from, $from+1, …` for `n` values; only numbered placeholders are formatted into SQL.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What threading asks the database about a batch's mails, read for all of them
/// at once when the batch begins (it holds the write lock, so nobody else changes
/// it) and kept current as the batch writes: a few queries per batch instead of
/// several per mail. What it does not know is asked of the database as before.
#[derive(Default)]
struct Known {
    /// Lower-case address → contact (id, organization); `None`: no such contact.
    contacts: HashMap<String, Option<(i64, Option<i64>)>>,
    /// (helpdesk, number) → ticket id; `None`: no such ticket.
    numbers: HashMap<(i64, i64), Option<i64>>,
    /// (helpdesk, Message-ID) → the ticket it threads to; `None`: none. Our own
    /// outgoing mails queued in this batch are not added: nobody can answer them yet.
    message_ids: HashMap<(i64, String), Option<i64>>,
    tickets: HashMap<i64, TicketFacts>,
}

impl Known {
    async fn read(
        conn: &mut SqliteConnection,
        helpdesks: &[RegisteredHelpdesk],
        mails: &[&IncomingMail],
    ) -> Result<Self> {
        let mut known = Self::default();
        let mut addresses: HashSet<String> = helpdesks
            .iter()
            .map(|hd| hd.config.settings.default_contact.to_ascii_lowercase())
            .collect();
        let mut numbers: HashSet<(i64, i64)> = HashSet::new();
        let mut message_ids: HashSet<(i64, &str)> = HashSet::new();
        for mail in mails.iter().filter(|m| m.failure.is_none()) {
            let Some(hd) = helpdesks.get(mail.helpdesk) else {
                continue;
            };
            let m = &mail.mail;
            if let Some(email) = m.from.as_ref().map(Address::email_key) {
                addresses.insert(email);
            }
            numbers.extend(mail.subject_numbers.iter().map(|n| (hd.id, *n)));
            if mail.classification == Classification::Bounce
                && let Some(subject) = &m.structure.embedded_subject
            {
                numbers.extend(
                    hd.config
                        .reference
                        .find_all(subject)
                        .iter()
                        .map(|n| (hd.id, *n)),
                );
            }
            message_ids.extend(candidates(mail).into_iter().map(|id| (hd.id, id)));
        }

        if !addresses.is_empty() {
            let sql = format!(
                "SELECT a.address, c.id, c.organization_id FROM contact_addresses a
                 JOIN contacts c ON c.id = a.contact_id WHERE a.address IN ({})",
                placeholders(1, addresses.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in &addresses {
                query = query.bind(a);
            }
            for row in query.fetch_all(&mut *conn).await? {
                known
                    .contacts
                    .insert(row.get(0), Some((row.get(1), row.get(2))));
            }
            for a in addresses {
                known.contacts.entry(a).or_insert(None);
            }
        }

        let mut ticket_ids: HashSet<i64> = HashSet::new();
        // Per helpdesk, so that UNIQUE (helpdesk_id, number) finds them.
        let mut by_helpdesk: HashMap<i64, Vec<i64>> = HashMap::new();
        for (hd, n) in &numbers {
            by_helpdesk.entry(*hd).or_default().push(*n);
        }
        for (hd, wanted) in by_helpdesk {
            let sql = format!(
                "SELECT number, id FROM tickets WHERE helpdesk_id = $1 AND number IN ({})",
                placeholders(2, wanted.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hd);
            for n in &wanted {
                query = query.bind(n);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let id: i64 = row.get(1);
                known.numbers.insert((hd, row.get(0)), Some(id));
                ticket_ids.insert(id);
            }
        }
        for key in numbers {
            known.numbers.entry(key).or_insert(None);
        }

        if !message_ids.is_empty() {
            let distinct: HashSet<&str> = message_ids.iter().map(|(_, id)| *id).collect();
            // As `ticket_by_message_id`: the newest entry first, else our own outgoing mail.
            let sql = format!(
                "SELECT t.helpdesk_id, e.message_id, e.ticket_id FROM entries e
                 JOIN tickets t ON t.id = e.ticket_id WHERE e.message_id IN ({}) ORDER BY e.id",
                placeholders(1, distinct.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &distinct {
                query = query.bind(*id);
            }
            let mut by_entry: HashMap<(i64, String), i64> = HashMap::new();
            for row in query.fetch_all(&mut *conn).await? {
                by_entry.insert((row.get(0), row.get(1)), row.get(2));
            }
            let sql = format!(
                "SELECT helpdesk_id, message_id, ticket_id FROM outbox
                 WHERE message_id IN ({}) AND ticket_id IS NOT NULL",
                placeholders(1, distinct.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &distinct {
                query = query.bind(*id);
            }
            let mut by_outbox: HashMap<(i64, String), i64> = HashMap::new();
            for row in query.fetch_all(&mut *conn).await? {
                by_outbox.insert((row.get(0), row.get(1)), row.get(2));
            }
            for (hd, id) in message_ids {
                let key = (hd, id.to_string());
                let ticket = by_entry.get(&key).or(by_outbox.get(&key)).copied();
                ticket_ids.extend(ticket);
                known.message_ids.insert(key, ticket);
            }
        }

        if !ticket_ids.is_empty() {
            let sql = format!(
                "SELECT id, number, status, requester_id, organization_id FROM tickets WHERE id IN ({})",
                placeholders(1, ticket_ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ticket_ids {
                query = query.bind(id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let facts = TicketFacts {
                    id: row.get(0),
                    number: row.get(1),
                    status: row.get(2),
                    requester_contact_id: row.get(3),
                    organization_id: row.get(4),
                    participants: Vec::new(),
                };
                known.tickets.insert(facts.id, facts);
            }
            let sql = format!(
                "SELECT ticket_id, address FROM ticket_participants WHERE ticket_id IN ({})
                 ORDER BY ticket_id, address",
                placeholders(1, ticket_ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ticket_ids {
                query = query.bind(id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let ticket_id: i64 = row.get(0);
                if let Some(t) = known.tickets.get_mut(&ticket_id) {
                    t.participants.push(row.get(1));
                }
            }
        }
        Ok(known)
    }
}

/// What the ledger knows of a batch's mails: read with one query when the batch
/// begins, kept current as the batch writes.
#[derive(Default)]
struct LedgerIndex {
    /// (helpdesk, SHA-256) → (intake id, outcome, ticket), successful rows preferred.
    by_sha256: HashMap<(i64, String), (i64, String, Option<i64>)>,
    /// (helpdesk, Message-ID) → ticket of the mail that made a ticket or follow-up.
    taken: HashMap<(i64, String), Option<i64>>,
}

impl LedgerIndex {
    async fn read(conn: &mut SqliteConnection, mails: &[&IncomingMail]) -> Result<Self> {
        let mut index = Self::default();
        if mails.is_empty() {
            return Ok(index);
        }
        let ids: Vec<&str> = mails
            .iter()
            .filter_map(|m| m.mail.message_id.as_deref())
            .collect();
        let mut sql = format!(
            "SELECT helpdesk_id, id, outcome, ticket_id, sha256, message_id FROM intake WHERE sha256 IN ({})",
            placeholders(1, mails.len())
        );
        if !ids.is_empty() {
            // Any outcome: the rows are sorted out below. With the outcome in the
            // condition SQLite answered it through the outcome index, reading every
            // successful row of the ledger per batch (imports slowed as it grew).
            sql.push_str(&format!(
                " OR message_id IN ({})",
                placeholders(mails.len() + 1, ids.len())
            ));
        }
        sql.push_str(" ORDER BY outcome = 'failed', id");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for m in mails {
            query = query.bind(&m.sha256);
        }
        for id in &ids {
            query = query.bind(*id);
        }
        let wanted: HashSet<&str> = mails.iter().map(|m| m.sha256.as_str()).collect();
        for row in query.fetch_all(&mut *conn).await? {
            let helpdesk_id: Option<i64> = row.get(0);
            let Some(helpdesk_id) = helpdesk_id else {
                continue;
            };
            let sha256: String = row.get(4);
            let outcome: String = row.get(2);
            let ticket_id: Option<i64> = row.get(3);
            if let Some(message_id) = row.get::<Option<String>, _>(5)
                && matches!(outcome.as_str(), "created" | "appended")
            {
                index
                    .taken
                    .entry((helpdesk_id, message_id))
                    .or_insert(ticket_id);
            }
            if wanted.contains(sha256.as_str()) {
                index.by_sha256.entry((helpdesk_id, sha256)).or_insert((
                    row.get(1),
                    outcome,
                    ticket_id,
                ));
            }
        }
        Ok(index)
    }

    fn prior(&self, helpdesk_id: i64, mail: &IncomingMail) -> Prior {
        Prior {
            same_bytes: self
                .by_sha256
                .get(&(helpdesk_id, mail.sha256.clone()))
                .cloned(),
            message_id_taken_by: mail.mail.message_id.as_ref().and_then(|id| {
                self.taken
                    .get(&(helpdesk_id, id.clone()))
                    .copied()
                    .flatten()
            }),
        }
    }

    /// Records what the batch just wrote, for later mails of the same batch.
    fn record(&mut self, helpdesk_id: i64, mail: &IncomingMail, report: &IngestReport) {
        if report.outcome == Outcome::Duplicate {
            return;
        }
        self.by_sha256.insert(
            (helpdesk_id, mail.sha256.clone()),
            (
                report.intake_id,
                report.outcome.as_str().to_string(),
                report.ticket_id,
            ),
        );
        if matches!(report.outcome, Outcome::Created | Outcome::Appended)
            && let Some(id) = &mail.mail.message_id
        {
            self.taken
                .entry((helpdesk_id, id.clone()))
                .or_insert(report.ticket_id);
        }
    }
}

impl Batch<'_> {
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Applies one mail of the batch. In a careful batch a database error inside
    /// the mail's savepoint rolls back only this mail, which is then recorded as
    /// failed; any error returned means the whole batch must be abandoned.
    pub async fn ingest(
        &mut self,
        helpdesks: &[RegisteredHelpdesk],
        mail: &IncomingMail,
        retry_of: Option<i64>,
    ) -> Result<IngestReport> {
        let hd = &helpdesks[mail.helpdesk];
        let report = self.ingest_one(hd, mail, retry_of).await?;
        self.ledger.record(hd.id, mail, &report);
        Ok(report)
    }

    async fn ingest_one(
        &mut self,
        hd: &RegisteredHelpdesk,
        mail: &IncomingMail,
        retry_of: Option<i64>,
    ) -> Result<IngestReport> {
        let prior = self.ledger.prior(hd.id, mail);
        let retry_of = match (retry_of, prior.same_bytes) {
            (Some(id), _) => Some(id),
            (None, Some((id, outcome, ticket_id))) if outcome != "failed" => {
                return Ok(IngestReport {
                    outcome: Outcome::Duplicate,
                    intake_id: id,
                    ticket_id,
                    ticket_number: None,
                    reason: Some("the same mail was already processed".into()),
                    move_to_folder: None,
                });
            }
            (None, Some((id, _, _))) => Some(id),
            (None, None) => None,
        };
        if let Some(reason) = &mail.failure {
            return record_failure(&mut self.tx, hd, mail, retry_of, reason).await;
        }
        let taken = prior.message_id_taken_by;
        let known = &mut self.known;
        if !self.careful {
            return apply(&mut self.tx, hd, &self.agents, known, mail, retry_of, taken).await;
        }
        let mut savepoint = sqlx::Connection::begin(&mut *self.tx).await?;
        match apply(
            &mut savepoint,
            hd,
            &self.agents,
            known,
            mail,
            retry_of,
            taken,
        )
        .await
        {
            Ok(report) => {
                savepoint.commit().await?;
                Ok(report)
            }
            Err(e) => {
                savepoint.rollback().await?;
                // It may have learnt rows that the rollback took back: ask the database again.
                self.known = Known::default();
                tracing::warn!(location = %mail.location, error = %e, "mail could not be applied");
                record_failure(&mut self.tx, hd, mail, retry_of, &e.to_string()).await
            }
        }
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    /// The transaction, for stages that add their own rows to the same commit (notify).
    pub fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// What the ledger already knows of this mail.
#[derive(Default)]
struct Prior {
    /// A row with the same bytes: (id, outcome, ticket), successful rows first.
    same_bytes: Option<(i64, String, Option<i64>)>,
    /// The ticket of another mail with the same Message-ID that made a ticket or follow-up.
    message_id_taken_by: Option<i64>,
}

/// Statements sent to the database as one query: one round trip to SQLite's
/// thread instead of one per statement, which is most of what a mail costs.
/// Values are bound as numbered placeholders shared by all the statements; only
/// placeholders and the SQL given here are formatted into it.
///
/// A statement refers to the row an earlier one inserted as `(SELECT MAX(id) FROM …)`:
/// the batch holds the write lock, so the row just inserted is the newest.
/// (A PostgreSQL backend would chain the inserts with `WITH … RETURNING` instead.)
#[derive(Default)]
struct Script {
    sql: String,
    args: SqliteArguments,
}

impl Script {
    /// Binds `value` and returns its placeholder.
    fn bind<'t, T: Encode<'t, Sqlite> + sqlx::Type<Sqlite>>(&mut self, value: T) -> Result<String> {
        self.args.add(value).map_err(sqlx::Error::Encode)?;
        Ok(format!("${}", self.args.len()))
    }

    fn push(&mut self, statement: &str) {
        self.sql.push_str(statement);
        self.sql.push_str(";\n");
    }

    /// Runs every statement; the rows their RETURNING clauses gave, in order.
    async fn run(self, conn: &mut SqliteConnection) -> Result<Vec<SqliteRow>> {
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args)
            .fetch_all(&mut *conn)
            .await?)
    }
}

/// Row `i` of a script's RETURNING rows; a missing one is a database error.
fn returned(rows: &[SqliteRow], i: usize) -> Result<&SqliteRow> {
    rows.get(i).ok_or_else(|| sqlx::Error::RowNotFound.into())
}

async fn record_failure(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    retry_of: Option<i64>,
    reason: &str,
) -> Result<IngestReport> {
    let intake_id = write_intake(
        conn,
        hd,
        mail,
        retry_of,
        Outcome::Failed,
        mail.classification.as_str(),
        None,
        Some(reason),
    )
    .await?;
    Ok(IngestReport {
        outcome: Outcome::Failed,
        intake_id,
        ticket_id: None,
        ticket_number: None,
        reason: Some(reason.to_string()),
        move_to_folder: None,
    })
}

#[allow(clippy::too_many_arguments)]
async fn write_intake(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    retry_of: Option<i64>,
    outcome: Outcome,
    classification: &str,
    ticket_id: Option<i64>,
    reason: Option<&str>,
) -> Result<i64> {
    let mut script = Script::default();
    let ticket = script.bind(ticket_id)?;
    push_intake(
        &mut script,
        hd,
        mail,
        retry_of,
        outcome,
        classification,
        &ticket,
        reason,
    )?;
    let rows = script.run(conn).await?;
    Ok(returned(&rows, 0)?.get(0))
}

/// The ledger row (a new one, or `retry_of` updated), returning its id.
/// `ticket` is the SQL for the ticket id (a placeholder or a subquery).
#[allow(clippy::too_many_arguments)]
fn push_intake(
    script: &mut Script,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    retry_of: Option<i64>,
    outcome: Outcome,
    classification: &str,
    ticket: &str,
    reason: Option<&str>,
) -> Result<()> {
    let m = &mail.mail;
    let outcome = script.bind(outcome.as_str())?;
    let classification = script.bind(classification)?;
    let reason = script.bind(reason)?;
    let now = script.bind(now())?;
    let source = script.bind(mail.source)?;
    let location = script.bind(&mail.location)?;
    if let Some(id) = retry_of {
        let id = script.bind(id)?;
        script.push(&format!(
            "UPDATE intake SET outcome = {outcome}, classification = {classification},
             ticket_id = {ticket}, reason = {reason}, processed_at = {now}, source = {source},
             location = {location} WHERE id = {id} RETURNING id"
        ));
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO intake (helpdesk_id, source, location, message_id, sha256, sender, subject,
             outcome, classification, ticket_id, reason, received_at, processed_at, raw_size, raw)
         VALUES ({}, {source}, {location}, {}, {}, {}, {}, {outcome}, {classification}, {ticket},
             {reason}, {}, {now}, {}, {}) RETURNING id",
        script.bind(hd.id)?,
        script.bind(&m.message_id)?,
        script.bind(&mail.sha256)?,
        script.bind(m.from.as_ref().map(|a| a.email_key()))?,
        script.bind(&m.subject)?,
        script.bind(mail.received_at)?,
        script.bind(mail.raw_size as i64)?,
        script.bind(&mail.raw_compressed)?,
    );
    script.push(&sql);
    Ok(())
}

async fn apply(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    known: &mut Known,
    mail: &IncomingMail,
    retry_of: Option<i64>,
    message_id_taken_by: Option<i64>,
) -> Result<IngestReport> {
    let m = &mail.mail;
    if let (Some(message_id), Some(ticket_id)) = (&m.message_id, message_id_taken_by) {
        let reason = format!("Message-ID <{message_id}> was already taken");
        let intake_id = write_intake(
            conn,
            hd,
            mail,
            retry_of,
            Outcome::Ignored,
            "duplicate",
            Some(ticket_id),
            Some(&reason),
        )
        .await?;
        return Ok(report(
            Outcome::Ignored,
            intake_id,
            Some(ticket_id),
            None,
            Some(reason),
        ));
    }

    let facts = gather(conn, hd, agents, known, mail).await?;
    let threaded = thread::decide(&hd.config, mail.classification, &facts);
    let ruled = rules::decide(
        &hd.config,
        mail.classification,
        &facts,
        threaded,
        &mail.route.matched,
    );
    if !ruled.rules.applied.is_empty() || !ruled.rules.passed_over.is_empty() {
        tracing::debug!(
            location = %mail.location,
            applied = ?ruled.rules.applied,
            passed_over = ?ruled.rules.passed_over,
            "mail rules"
        );
    }
    let class = mail.classification.as_str();
    // The rules may change what threading knows of the ticket: ask the database next time.
    let rules_change_ticket = ruled.rules.fields.changes_ticket();
    match ruled.decision {
        Decision::Ignore { reason } => {
            let intake_id = write_intake(
                conn,
                hd,
                mail,
                retry_of,
                Outcome::Ignored,
                class,
                None,
                Some(&reason),
            )
            .await?;
            let mut report = report(Outcome::Ignored, intake_id, None, None, Some(reason));
            report.move_to_folder = ruled.rules.ignore_folder().map(str::to_string);
            Ok(report)
        }
        Decision::Reject { reason } => {
            let intake_id = write_intake(
                conn,
                hd,
                mail,
                retry_of,
                Outcome::Failed,
                class,
                None,
                Some(&reason),
            )
            .await?;
            Ok(report(Outcome::Failed, intake_id, None, None, Some(reason)))
        }
        Decision::NewTicket { note } => {
            let requester =
                requester_for_new_ticket(conn, hd, known, m.from.as_ref(), &facts.sender).await?;
            // Contact (when new), ticket, ledger row, entry, attachments and participants:
            // one round trip.
            let mut script = Script::default();
            let contact = match &requester.contact {
                Requester::Known(id) => script.bind(id)?,
                Requester::New { name, email } => {
                    let (name, org, now) = (
                        script.bind(name)?,
                        script.bind(requester.organization_id)?,
                        script.bind(now())?,
                    );
                    let email = script.bind(email)?;
                    script.push(&format!(
                        "INSERT INTO contacts (name, organization_id, created_at)
                         VALUES ({name}, {org}, {now}) RETURNING id"
                    ));
                    script.push(&format!(
                        "INSERT INTO contact_addresses (address, contact_id)
                         VALUES ({email}, (SELECT MAX(id) FROM contacts))"
                    ));
                    "(SELECT MAX(id) FROM contacts)".to_string()
                }
            };
            push_ticket(&mut script, hd, mail, &contact, requester.organization_id)?;
            let ticket = "(SELECT MAX(id) FROM tickets)";
            push_intake(
                &mut script,
                hd,
                mail,
                retry_of,
                Outcome::Created,
                class,
                ticket,
                None,
            )?;
            let intake = match retry_of {
                Some(id) => script.bind(id)?,
                None => "(SELECT MAX(id) FROM intake)".to_string(),
            };
            // A new ticket's description is the whole text: nothing in it is history we know.
            push_entry(&mut script, hd, ticket, mail, &contact, &intake, &m.text)?;
            let participants = participant_addresses(hd, m);
            push_participants(&mut script, ticket, &participants)?;
            let rows = script.run(conn).await?;
            let mut rows = rows.iter();
            let mut next = || {
                rows.next()
                    .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            };
            let contact_id: i64 = match &requester.contact {
                Requester::Known(id) => *id,
                Requester::New { email, .. } => {
                    let id = next()?.get(0);
                    known
                        .contacts
                        .insert(email.clone(), Some((id, requester.organization_id)));
                    id
                }
            };
            let row = next()?;
            let (ticket_id, number): (i64, i64) = (row.get(0), row.get(1));
            let intake_id: i64 = next()?.get(0);
            known.numbers.insert((hd.id, number), Some(ticket_id));
            if let Some(id) = &m.message_id {
                known
                    .message_ids
                    .insert((hd.id, id.clone()), Some(ticket_id));
            }
            if !rules_change_ticket {
                let mut participants = participants;
                participants.sort();
                known.tickets.insert(
                    ticket_id,
                    TicketFacts {
                        id: ticket_id,
                        number,
                        status: hd.config.settings.new_ticket_status.clone(),
                        requester_contact_id: Some(contact_id),
                        organization_id: requester.organization_id,
                        participants,
                    },
                );
            }
            if let Some(note) = note {
                add_event(conn, hd, ticket_id, &note).await?;
            }
            crate::rules::apply_to_ticket(conn, hd, ticket_id, mail, &ruled.rules).await?;
            Ok(report(
                Outcome::Created,
                intake_id,
                Some(ticket_id),
                Some(number),
                None,
            ))
        }
        Decision::FollowUp {
            ticket_id,
            set_status,
            note,
        } => {
            let informant = match facts.sender.contact_id {
                Some(id) => id,
                None => default_contact(conn, hd, known).await?,
            };
            // Ledger row, entry, attachments, the ticket's status and last change, and
            // participants: one round trip.
            let mut script = Script::default();
            let ticket = script.bind(ticket_id)?;
            push_intake(
                &mut script,
                hd,
                mail,
                retry_of,
                Outcome::Appended,
                class,
                &ticket,
                None,
            )?;
            let intake = match retry_of {
                Some(id) => script.bind(id)?,
                None => "(SELECT MAX(id) FROM intake)".to_string(),
            };
            let author = script.bind(informant)?;
            push_entry(
                &mut script,
                hd,
                &ticket,
                mail,
                &author,
                &intake,
                &mail.reply(hd.config.settings.reply_marker.as_deref()).reply,
            )?;
            // Status (when it changes), last modified, and the number to report.
            let sql = format!(
                "UPDATE tickets SET status = COALESCE({}, status), modified_at = {},
                 modified_by = {} WHERE id = {ticket} RETURNING number",
                script.bind(&set_status)?,
                script.bind(now())?,
                script.bind(hd.default_agent_id)?,
            );
            script.push(&sql);
            let participants = if mail.classification == Classification::Normal {
                participant_addresses(hd, m)
            } else {
                Vec::new()
            };
            push_participants(&mut script, &ticket, &participants)?;
            let rows = script.run(conn).await?;
            let intake_id: i64 = returned(&rows, 0)?.get(0);
            let number: i64 = returned(&rows, 1)?.get(0);
            if let Some(id) = &m.message_id {
                known
                    .message_ids
                    .insert((hd.id, id.clone()), Some(ticket_id));
            }
            if rules_change_ticket {
                known.tickets.remove(&ticket_id);
            } else if let Some(t) = known.tickets.get_mut(&ticket_id) {
                if let Some(status) = set_status {
                    t.status = status;
                }
                t.participants.extend(participants);
                t.participants.sort();
                t.participants.dedup();
            }
            if let Some(note) = note {
                add_event(conn, hd, ticket_id, &note).await?;
            }
            crate::rules::apply_to_ticket(conn, hd, ticket_id, mail, &ruled.rules).await?;
            Ok(report(
                Outcome::Appended,
                intake_id,
                Some(ticket_id),
                Some(number),
                None,
            ))
        }
    }
}

fn report(
    outcome: Outcome,
    intake_id: i64,
    ticket_id: Option<i64>,
    ticket_number: Option<i64>,
    reason: Option<String>,
) -> IngestReport {
    IngestReport {
        outcome,
        intake_id,
        ticket_id,
        ticket_number,
        reason,
        move_to_folder: None,
    }
}

/// Message-IDs that may thread the mail, most specific first: In-Reply-To, then
/// References from the newest (for bounces the embedded original first); at most 20.
fn candidates(mail: &IncomingMail) -> Vec<&str> {
    let m = &mail.mail;
    let mut candidates: Vec<&str> = m.in_reply_to.iter().map(String::as_str).collect();
    candidates.extend(m.references.iter().rev().map(String::as_str));
    if mail.classification == Classification::Bounce
        && let Some(id) = &m.structure.embedded_message_id
    {
        candidates.insert(0, id);
    }
    candidates.truncate(20);
    candidates
}

/// What threading needs to know about `mail`, asked of the database.
pub(crate) async fn gather_facts(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    mail: &IncomingMail,
) -> Result<ThreadFacts> {
    gather(conn, hd, agents, &mut Known::default(), mail).await
}

async fn gather(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    known: &mut Known,
    mail: &IncomingMail,
) -> Result<ThreadFacts> {
    let m = &mail.mail;
    let subject_number = mail.subject_numbers.first().copied();
    let mut by_subject = None;
    for number in &mail.subject_numbers {
        if let Some(t) = ticket_by_number(conn, known, hd.id, *number).await? {
            by_subject = Some(t);
            break;
        }
    }
    let mut by_message_id = None;
    for id in candidates(mail) {
        if let Some(ticket_id) = ticket_by_message_id(conn, known, hd.id, id).await? {
            by_message_id = ticket_facts(conn, known, ticket_id).await?;
            break;
        }
    }
    if by_subject.is_none()
        && mail.classification == Classification::Bounce
        && let Some(subject) = &m.structure.embedded_subject
        && let Some(number) = hd.config.reference.find_all(subject).first()
    {
        by_subject = ticket_by_number(conn, known, hd.id, *number).await?;
    }
    let sender = sender_facts(conn, hd, agents, known, m.from.as_ref()).await?;
    Ok(ThreadFacts {
        subject_number,
        by_subject,
        by_message_id,
        sender,
    })
}

async fn ticket_by_number(
    conn: &mut SqliteConnection,
    known: &mut Known,
    helpdesk_id: i64,
    number: i64,
) -> Result<Option<TicketFacts>> {
    let id = match known.numbers.get(&(helpdesk_id, number)) {
        Some(id) => *id,
        None => {
            sqlx::query_scalar("SELECT id FROM tickets WHERE helpdesk_id = $1 AND number = $2")
                .bind(helpdesk_id)
                .bind(number)
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    match id {
        Some(id) => ticket_facts(conn, known, id).await,
        None => Ok(None),
    }
}

async fn ticket_by_message_id(
    conn: &mut SqliteConnection,
    known: &Known,
    helpdesk_id: i64,
    message_id: &str,
) -> Result<Option<i64>> {
    if let Some(ticket_id) = known
        .message_ids
        .get(&(helpdesk_id, message_id.to_string()))
    {
        return Ok(*ticket_id);
    }
    let by_entry = sqlx::query_scalar(
        "SELECT e.ticket_id FROM entries e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.message_id = $1 AND t.helpdesk_id = $2 ORDER BY e.id DESC LIMIT 1",
    )
    .bind(message_id)
    .bind(helpdesk_id)
    .fetch_optional(&mut *conn)
    .await?;
    if by_entry.is_some() {
        return Ok(by_entry);
    }
    // Our own mails about a ticket (acknowledgements, notifications) thread answers too.
    Ok(sqlx::query_scalar(
        "SELECT ticket_id FROM outbox WHERE message_id = $1 AND helpdesk_id = $2 AND ticket_id IS NOT NULL",
    )
    .bind(message_id)
    .bind(helpdesk_id)
    .fetch_optional(&mut *conn)
    .await?)
}

async fn ticket_facts(
    conn: &mut SqliteConnection,
    known: &mut Known,
    ticket_id: i64,
) -> Result<Option<TicketFacts>> {
    if let Some(t) = known.tickets.get(&ticket_id) {
        return Ok(Some(t.clone()));
    }
    let Some(row) = sqlx::query(
        "SELECT id, number, status, requester_id, organization_id FROM tickets WHERE id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let participants =
        sqlx::query_scalar("SELECT address FROM ticket_participants WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_all(&mut *conn)
            .await?;
    let facts = TicketFacts {
        id: row.get(0),
        number: row.get(1),
        status: row.get(2),
        requester_contact_id: row.get(3),
        organization_id: row.get(4),
        participants,
    };
    known.tickets.insert(ticket_id, facts.clone());
    Ok(Some(facts))
}

/// (contact id, organization id) of the contact with this address, if any.
async fn contact_by_address(
    conn: &mut SqliteConnection,
    known: &mut Known,
    email: &str,
) -> Result<Option<(i64, Option<i64>)>> {
    if let Some(contact) = known.contacts.get(email) {
        return Ok(*contact);
    }
    let contact = sqlx::query(
        "SELECT c.id, c.organization_id FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id
         WHERE a.address = $1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| (r.get(0), r.get(1)));
    known.contacts.insert(email.to_string(), contact);
    Ok(contact)
}

async fn sender_facts(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    agents: &HashSet<String>,
    known: &mut Known,
    from: Option<&Address>,
) -> Result<SenderFacts> {
    let Some(email) = from.map(Address::email_key).filter(|e| e.contains('@')) else {
        return Ok(SenderFacts::default());
    };
    let contact = contact_by_address(conn, known, &email).await?;
    let is_agent = agents.contains(&email);
    let contact_id = contact.map(|c| c.0);
    let mut organization_id = contact.and_then(|c| c.1);
    // An address not yet known still belongs to the organization its domain is mapped to.
    if contact_id.is_none()
        && let Some(name) = hd.config.organization_for(&email)
    {
        organization_id = sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(SenderFacts {
        email: Some(email),
        contact_id,
        organization_id,
        is_agent,
    })
}

/// The requester of a new ticket.
struct NewRequester {
    contact: Requester,
    organization_id: Option<i64>,
}

enum Requester {
    Known(i64),
    /// A contact to create with the ticket.
    New {
        name: String,
        email: String,
    },
}

async fn requester_for_new_ticket(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    known: &mut Known,
    from: Option<&Address>,
    sender: &SenderFacts,
) -> Result<NewRequester> {
    if let Some(id) = sender.contact_id {
        return Ok(NewRequester {
            contact: Requester::Known(id),
            organization_id: sender.organization_id,
        });
    }
    let create = hd.config.settings.unknown_sender == UnknownSender::CreateContact;
    match (from, &sender.email) {
        (Some(address), Some(email)) if create => {
            let organization_id = match hd.config.organization_for(email) {
                Some(name) => Some(ensure_organization(conn, name).await?),
                None => None,
            };
            let name = address
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
            Ok(NewRequester {
                contact: Requester::New {
                    name,
                    email: email.clone(),
                },
                organization_id,
            })
        }
        _ => {
            let id = default_contact(conn, hd, known).await?;
            let email = hd.config.settings.default_contact.to_ascii_lowercase();
            let organization_id = match known.contacts.get(&email) {
                Some(Some((_, org))) => *org,
                _ => {
                    sqlx::query_scalar("SELECT organization_id FROM contacts WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *conn)
                        .await?
                }
            };
            Ok(NewRequester {
                contact: Requester::Known(id),
                organization_id,
            })
        }
    }
}

async fn ensure_organization(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    sqlx::query("INSERT INTO organizations (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?,
    )
}

async fn create_contact(
    conn: &mut SqliteConnection,
    name: &str,
    email: &str,
    organization_id: Option<i64>,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (name, organization_id, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(organization_id)
    .bind(now())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO contact_addresses (address, contact_id) VALUES ($1, $2)")
        .bind(email)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// The helpdesk's default contact, created on first use.
async fn default_contact(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    known: &mut Known,
) -> Result<i64> {
    let email = hd.config.settings.default_contact.to_ascii_lowercase();
    match contact_by_address(conn, known, &email).await? {
        Some((id, _)) => Ok(id),
        None => {
            let id = create_contact(conn, "Unknown sender", &email, None).await?;
            known.contacts.insert(email, Some((id, None)));
            Ok(id)
        }
    }
}

/// The new ticket, returning its id and number. `requester` is the SQL for the contact id.
fn push_ticket(
    script: &mut Script,
    hd: &RegisteredHelpdesk,
    mail: &IncomingMail,
    requester: &str,
    organization_id: Option<i64>,
) -> Result<()> {
    let s = &hd.config.settings;
    let m = &mail.mail;
    let helpdesk = script.bind(hd.id)?;
    let now = script.bind(now())?;
    let agent = script.bind(hd.default_agent_id)?;
    // The next number is derived in the INSERT itself: the batch holds the write
    // lock, and UNIQUE (helpdesk_id, number) guards it anyway.
    let sql = format!(
        "INSERT INTO tickets (helpdesk_id, number, title, mail_subject, requester_id, organization_id,
             channel, status, priority, ticket_type, environment, manager_id, assignee_id,
             reported_at, created_at, created_by, modified_at, modified_by)
         VALUES ({helpdesk}, MAX({}, (SELECT COALESCE(MAX(number), 0) + 1 FROM tickets WHERE helpdesk_id = {helpdesk})),
             {}, {}, {requester}, {}, 'email', {}, {}, {}, {}, {}, {}, {}, {now}, {agent}, {now}, {agent})
         RETURNING id, number",
        script.bind(s.first_ticket_number)?,
        script.bind(ticket_title(&m.subject))?,
        script.bind(&m.subject)?,
        script.bind(organization_id)?,
        script.bind(&s.new_ticket_status)?,
        script.bind(&s.defaults.priority)?,
        script.bind(&s.defaults.ticket_type)?,
        script.bind(&s.defaults.environment)?,
        script.bind(hd.manager_id)?,
        script.bind(hd.assignee_id)?,
        script.bind(m.date.unwrap_or(mail.received_at))?,
    );
    script.push(&sql);
    Ok(())
}

/// Title from the subject: at most 200 characters, never empty.
pub fn ticket_title(subject: &str) -> String {
    let subject = subject.trim();
    if subject.is_empty() {
        return "(no subject)".into();
    }
    subject.chars().take(200).collect()
}

fn join_addresses(list: &[Address]) -> String {
    list.iter()
        .map(|a| a.email.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mail's entry and its attachments. `ticket`, `author` and `intake` are SQL
/// for their ids (placeholders or subqueries).
fn push_entry(
    script: &mut Script,
    hd: &RegisteredHelpdesk,
    ticket: &str,
    mail: &IncomingMail,
    author: &str,
    intake: &str,
    body_text: &str,
) -> Result<()> {
    let m = &mail.mail;
    let visible = matches!(
        mail.classification,
        Classification::Normal | Classification::Bulk
    );
    let warnings = (!m.warnings.is_empty()).then(|| m.warnings.join("\n"));
    let sql = format!(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, author_contact_id, from_addr, to_addrs, cc_addrs,
             subject, body_text, body_full, body_html, message_id, in_reply_to, refs, classification,
             warnings, visible_to_customer, intake_id, created_at)
         VALUES ({ticket}, 'incoming', {}, {author}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {intake}, {})",
        script.bind(hd.default_agent_id)?,
        script.bind(m.from.as_ref().map(|a| a.email.as_str()))?,
        script.bind(join_addresses(&m.to))?,
        script.bind(join_addresses(&m.cc))?,
        script.bind(&m.subject)?,
        script.bind(body_text)?,
        // Kept only when it differs from what is shown (a follow-up cut at its quote).
        script.bind((body_text != m.text).then_some(&m.text))?,
        script.bind(&m.html)?,
        script.bind(&m.message_id)?,
        script.bind(m.in_reply_to.join(" "))?,
        script.bind(m.references.join(" "))?,
        script.bind(mail.classification.as_str())?,
        script.bind(warnings)?,
        script.bind(visible)?,
        script.bind(m.date.unwrap_or(mail.received_at))?,
    );
    script.push(&sql);
    if mail.attachments.is_empty() {
        return Ok(());
    }
    // Right after the entry, so the newest entry is this one.
    let mut values = Vec::with_capacity(mail.attachments.len());
    for a in &mail.attachments {
        values.push(format!(
            "((SELECT MAX(id) FROM entries), {}, {}, {}, {}, {}, {}, {}, {})",
            script.bind(a.refused.is_none().then_some(&a.sha256))?,
            script.bind(&a.original_name)?,
            script.bind(&a.safe_name)?,
            script.bind(&a.mime_type)?,
            script.bind(a.size as i64)?,
            script.bind(&a.content_id)?,
            script.bind(a.inline)?,
            script.bind(&a.refused)?,
        ));
    }
    script.push(&format!(
        "INSERT INTO attachments (entry_id, sha256, original_name, safe_name, mime_type, size,
             content_id, inline, refused)
         VALUES {}",
        values.join(", ")
    ));
    Ok(())
}

pub(crate) async fn add_event(
    conn: &mut SqliteConnection,
    hd: &RegisteredHelpdesk,
    ticket_id: i64,
    text: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO entries (ticket_id, kind, author_agent_id, body_text, visible_to_customer, created_at)
         VALUES ($1, 'event', $2, $3, FALSE, $4)",
    )
    .bind(ticket_id)
    .bind(hd.default_agent_id)
    .bind(text)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sender, To and CC become participants, except our own addresses.
fn participant_addresses(hd: &RegisteredHelpdesk, m: &ParsedMail) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for address in m.from.iter().chain(&m.to).chain(&m.cc) {
        let key = address.email_key();
        if key.contains('@') && !hd.config.is_own_address(&key) && !addresses.contains(&key) {
            addresses.push(key);
        }
    }
    addresses
}

/// `ticket` is the SQL for the ticket id (a placeholder or a subquery).
fn push_participants(script: &mut Script, ticket: &str, addresses: &[String]) -> Result<()> {
    if addresses.is_empty() {
        return Ok(());
    }
    let mut values = Vec::with_capacity(addresses.len());
    for address in addresses {
        values.push(format!("({ticket}, {})", script.bind(address)?));
    }
    script.push(&format!(
        "INSERT INTO ticket_participants (ticket_id, address) VALUES {} ON CONFLICT DO NOTHING",
        values.join(", ")
    ));
    Ok(())
}
