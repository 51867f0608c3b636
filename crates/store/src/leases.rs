//! The `mailbox_leases` table: which instance of `postdesk serve` reads each mailbox
//! when several share one database, so that every mailbox is read by one at a time.
//!
//! A lease is a row per mailbox: its holder (an instance id, `host:pid:random`), when
//! it expires, and a fencing token. Taking a lease that is free (never held, released,
//! or expired) raises the token; the holder renews the expiry while it reads, and
//! gives the lease back when it stops (`released_ms`), so the next instance need not
//! wait for the expiry. Every time is in milliseconds of the *database's* clock (read
//! in the statement's transaction, [`database_clock`]): instances on machines whose
//! clocks disagree still agree on when a lease ran out.
//!
//! **Fencing.** A holder can be paused (a stalled VM, SIGSTOP, a long GC-like stall of
//! the machine) past its expiry while another instance takes the mailbox over, and then
//! wake up with a batch in hand. So the lease alone does not keep it from committing:
//! every intake batch of a leased mailbox first runs [`check_fence`] in the batch's
//! own transaction, right after the intake lock. It updates the lease row where holder
//! *and* token are still the ones the batch was read under; no row means the lease was
//! taken over, and the batch fails with [`StoreError::LeaseLost`] before it wrote
//! anything, so its mails are neither committed nor (since the sources move mail only
//! after the commit) acknowledged to the server. The update also locks the row until
//! the commit (PostgreSQL's row lock; SQLite's write lock covers everything), so a
//! takeover cannot slip in between the check and the commit: it waits, and the new
//! holder then finds the batch's mails in the ledger. A takeover raises the token even
//! when the old holder is the one taking it back, so a fence is never valid twice.
//!
//! What happens after a commit (moving mail on the server, remembering a UID or a
//! delta link) is not fenced: it repeats what the ledger already holds, so a stale
//! holder doing it late doubles nothing.
//!
//! **Sharing.** Each `serve` instance also keeps a row in `serve_instances`, renewed
//! as its leases are ([`Store::announce_instance`]). [`Store::lease_share`] tells an
//! instance how many are alive and how many leases it holds, so that it takes no more
//! than its fair share of the mailboxes and gives back what it holds beyond it when
//! another instance joins (`app::leases`).
//!
//! One query text serves both engines; only the clock differs, side by side in
//! [`database_clock`].

use std::time::Duration;

use crate::engine::{Db, Dialect, params};
use crate::{Result, Store, StoreError};

/// Which mailbox a lease is for: the helpdesk's name and the mailbox's display name,
/// as `mailbox_status` names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    pub helpdesk: String,
    pub mailbox: String,
}

/// The token a lease was taken with; it goes up by one on every takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FencingToken(pub i64);

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a holder shows to commit a batch of the mailbox: valid while nobody took the
/// lease over since it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    pub key: LeaseKey,
    pub holder: String,
    pub token: FencingToken,
}

/// A lease just taken or renewed: its fence and when it runs out by the database's
/// clock (milliseconds since 1970).
#[derive(Debug, Clone)]
pub struct HeldLease {
    pub fence: LeaseFence,
    pub expires_ms: i64,
}

/// A lease as `postdesk status` shows it.
#[derive(Debug, Clone)]
pub struct LeaseRow {
    pub key: LeaseKey,
    pub holder: String,
    pub token: FencingToken,
    pub acquired_ms: i64,
    pub renewed_ms: i64,
    pub expires_ms: i64,
    pub released_ms: Option<i64>,
}

impl LeaseRow {
    /// Held at `now_ms` (database clock): not released and not expired.
    pub fn is_held(&self, now_ms: i64) -> bool {
        self.released_ms.is_none() && self.expires_ms > now_ms
    }
}

/// The database's clock in milliseconds since 1970: the one dialect difference of
/// this module.
pub(crate) fn database_clock(db: &Db) -> Result<i64> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
        Dialect::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    };
    db.prepare_cached(sql)?.query_row((), |r| r.get(0))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Takes the lease of `key` for `holder` for `length` if it is free (never held,
/// released, or expired), or still held by `dead_holder` (an instance known to be
/// gone: on this machine, its process no longer runs); `None` while another instance
/// (or this one, in another task) holds it.
pub(crate) fn acquire(
    db: &Db,
    key: &LeaseKey,
    holder: &str,
    length: Duration,
    dead_holder: Option<&str>,
) -> Result<Option<HeldLease>> {
    let now = database_clock(db)?;
    let expires = now.saturating_add(millis(length));
    let token: Option<i64> = db
        .prepare_cached(
            "INSERT INTO mailbox_leases
                 (helpdesk, mailbox, holder, token, acquired_ms, renewed_ms, expires_ms)
             VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5)
             ON CONFLICT (helpdesk, mailbox) DO UPDATE SET holder = excluded.holder,
                 token = mailbox_leases.token + 1, acquired_ms = excluded.acquired_ms,
                 renewed_ms = excluded.renewed_ms, expires_ms = excluded.expires_ms,
                 released_ms = NULL
             WHERE mailbox_leases.expires_ms <= ?4 OR mailbox_leases.holder = ?6
             RETURNING token",
        )?
        .query_map(
            // No holder is named "": without a dead holder only expiry frees a lease.
            params![
                key.helpdesk,
                key.mailbox,
                holder,
                now,
                expires,
                dead_holder.unwrap_or("")
            ],
            |r| r.get(0),
        )?
        .next()
        .transpose()?;
    Ok(token.map(|token| HeldLease {
        fence: LeaseFence {
            key: key.clone(),
            holder: holder.to_string(),
            token: FencingToken(token),
        },
        expires_ms: expires,
    }))
}

/// Moves the expiry of a lease still held under `fence` to `length` from now; `None`
/// when it was taken over or released. A lease that expired without anyone taking it
/// over is still the holder's (its token still fences), and is renewed.
pub(crate) fn renew(db: &Db, fence: &LeaseFence, length: Duration) -> Result<Option<HeldLease>> {
    let now = database_clock(db)?;
    let expires = now.saturating_add(millis(length));
    let renewed = db
        .prepare_cached(
            "UPDATE mailbox_leases SET renewed_ms = ?5, expires_ms = ?6
             WHERE helpdesk = ?1 AND mailbox = ?2 AND holder = ?3 AND token = ?4
                 AND released_ms IS NULL",
        )?
        .execute(params![
            fence.key.helpdesk,
            fence.key.mailbox,
            fence.holder,
            fence.token.0,
            now,
            expires
        ])?;
    Ok((renewed == 1).then(|| HeldLease {
        fence: fence.clone(),
        expires_ms: expires,
    }))
}

/// Gives a lease back (expired now), if it is still held under `fence`.
pub(crate) fn release(db: &Db, fence: &LeaseFence) -> Result<bool> {
    let now = database_clock(db)?;
    let released = db
        .prepare_cached(
            "UPDATE mailbox_leases SET released_ms = ?5, expires_ms = ?5
             WHERE helpdesk = ?1 AND mailbox = ?2 AND holder = ?3 AND token = ?4
                 AND released_ms IS NULL",
        )?
        .execute(params![
            fence.key.helpdesk,
            fence.key.mailbox,
            fence.holder,
            fence.token.0,
            now
        ])?;
    Ok(released == 1)
}

/// In the transaction of a batch from the leased mailbox: fails with
/// [`StoreError::LeaseLost`] unless the lease is still held under `fence`, and locks
/// its row until the commit so that no takeover comes in between (see the module
/// documentation). Expiry alone does not fail it: until someone takes the lease over,
/// the token is still the only one.
pub fn check_fence(db: &Db, fence: &LeaseFence) -> Result<()> {
    let held = db
        .prepare_cached(
            "UPDATE mailbox_leases SET token = token
             WHERE helpdesk = ?1 AND mailbox = ?2 AND holder = ?3 AND token = ?4
                 AND released_ms IS NULL",
        )?
        .execute(params![
            fence.key.helpdesk,
            fence.key.mailbox,
            fence.holder,
            fence.token.0
        ])?;
    if held == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            mailbox: fence.key.mailbox.clone(),
            token: fence.token.0,
        })
    }
}

impl Store {
    /// Takes the lease of `key` if it is free, or held by `dead_holder` (see [`acquire`]).
    pub async fn acquire_lease(
        &self,
        key: &LeaseKey,
        holder: &str,
        length: Duration,
        dead_holder: Option<&str>,
    ) -> Result<Option<HeldLease>> {
        let (key, holder) = (key.clone(), holder.to_string());
        let dead_holder = dead_holder.map(str::to_string);
        self.write(move |tx| acquire(tx, &key, &holder, length, dead_holder.as_deref()))
            .await
    }

    /// Renews a held lease; `None` once it was taken over (see [`renew`]).
    pub async fn renew_lease(
        &self,
        fence: &LeaseFence,
        length: Duration,
    ) -> Result<Option<HeldLease>> {
        let fence = fence.clone();
        self.write(move |tx| renew(tx, &fence, length)).await
    }

    /// Gives a held lease back; false when it was no longer held under `fence`.
    pub async fn release_lease(&self, fence: &LeaseFence) -> Result<bool> {
        let fence = fence.clone();
        self.write(move |tx| release(tx, &fence)).await
    }

    /// Says that instance `holder` is alive (its row, renewed).
    pub async fn announce_instance(&self, holder: &str) -> Result<()> {
        let holder = holder.to_string();
        self.write(move |tx| {
            let now = database_clock(tx)?;
            tx.prepare_cached(
                "INSERT INTO serve_instances (holder, seen_ms) VALUES (?1, ?2)
                 ON CONFLICT (holder) DO UPDATE SET seen_ms = excluded.seen_ms",
            )?
            .execute(params![holder, now])?;
            Ok(())
        })
        .await
    }

    /// Instance `holder` stops: its row goes (and rows of instances dead for a day).
    pub async fn forget_instance(&self, holder: &str) -> Result<()> {
        let holder = holder.to_string();
        self.write(move |tx| {
            let now = database_clock(tx)?;
            tx.prepare_cached("DELETE FROM serve_instances WHERE holder = ?1 OR seen_ms < ?2")?
                .execute(params![holder, now - 86_400_000])?;
            Ok(())
        })
        .await
    }

    /// How many instances announced themselves within `length` (at least 1, counting
    /// `holder`), and how many leases `holder` holds now.
    pub async fn lease_share(&self, holder: &str, length: Duration) -> Result<(usize, usize)> {
        let holder = holder.to_string();
        self.read(move |db| {
            let now = database_clock(db)?;
            let (alive, held): (i64, i64) = db
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM serve_instances
                                 WHERE seen_ms > ?2 AND holder <> ?1),
                            (SELECT count(*) FROM mailbox_leases
                                 WHERE holder = ?1 AND released_ms IS NULL AND expires_ms > ?3)",
                )?
                .query_row(
                    params![holder, now.saturating_sub(millis(length)), now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
            Ok((alive as usize + 1, held as usize))
        })
        .await
    }

    /// Every lease on record and the database's clock now (milliseconds), by which
    /// to tell held ones from expired ones.
    pub async fn leases(&self) -> Result<(i64, Vec<LeaseRow>)> {
        self.read(|db| {
            let now = database_clock(db)?;
            let rows = db
                .prepare_cached(
                    "SELECT helpdesk, mailbox, holder, token, acquired_ms, renewed_ms,
                         expires_ms, released_ms
                     FROM mailbox_leases ORDER BY helpdesk, mailbox",
                )?
                .query_map((), |r| {
                    Ok(LeaseRow {
                        key: LeaseKey {
                            helpdesk: r.get(0)?,
                            mailbox: r.get(1)?,
                        },
                        holder: r.get(2)?,
                        token: FencingToken(r.get(3)?),
                        acquired_ms: r.get(4)?,
                        renewed_ms: r.get(5)?,
                        expires_ms: r.get(6)?,
                        released_ms: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>>>()?;
            Ok((now, rows))
        })
        .await
    }
}
