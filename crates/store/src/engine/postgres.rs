//! The PostgreSQL engine: connections of the `postgres` crate (the synchronous client
//! of the tokio-postgres family, chosen by measurement: bench/pg-drivers), with the
//! statement cache that crate leaves to its user, the placeholder mapping, and a small
//! pool.
//!
//! A connection is used by one thread at a time, as SQLite's are; the handle borrows
//! it immutably, so the client sits in a `RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::{Client, NoTls, Statement};

use super::Param;
use super::postgres_tls::SslMode;
use crate::{Result, StoreError};

/// How long opening a connection may take (unless the URL says `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Statements kept prepared per connection; beyond, the cache starts again.
const CACHED_STATEMENTS: usize = 256;

/// Statements built per call (id lists written into the SQL) kept per connection, apart
/// from the others so that they never push those out.
const CACHED_BUILT_STATEMENTS: usize = 128;

/// Prepared statements by their SQL, at most `capacity` (then it starts again).
#[derive(Default)]
struct StatementCache {
    statements: RefCell<HashMap<String, Statement>>,
}

impl StatementCache {
    fn get(&self, sql: &str) -> Option<Statement> {
        self.statements.borrow().get(sql).cloned()
    }

    fn keep(&self, sql: &str, statement: &Statement, capacity: usize) {
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= capacity {
            statements.clear();
        }
        statements.insert(sql.to_string(), statement.clone());
    }
}

/// One connection to the server.
pub(crate) struct PgConn {
    /// `None` only while it is dropped.
    client: RefCell<Option<Client>>,
    /// Boxed: a connection is a variant of enums beside SQLite's, kept small.
    statements: Box<Statements>,
}

/// A connection's prepared statements: the hot ones and those built per call.
#[derive(Default)]
struct Statements {
    hot: StatementCache,
    built: StatementCache,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Closing a client blocks on its own runtime, which panics on a thread of
        // tokio's; there (the process ending, a simulator dropped in a command) it
        // closes on a thread of its own.
        if let Some(client) = self.client.get_mut().take() {
            off_runtime(move || drop(client));
        }
    }
}

impl PgConn {
    /// Connects, giving up after [`CONNECT_TIMEOUT`] unless the URL sets its own
    /// `connect_timeout`: an unreachable server is an error, never a hang. TLS as the
    /// URL's `sslmode` says (see `postgres_tls`).
    pub(crate) fn connect(url: &str) -> Result<Self> {
        let (mut config, tls) = super::postgres_tls::parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let client = match tls.mode {
            SslMode::Disable => off_runtime(|| config.connect(NoTls))?,
            _ => {
                let connector = super::postgres_tls::connector(&tls)?;
                off_runtime(|| config.connect(connector))?
            }
        };
        Ok(Self {
            client: RefCell::new(Some(client)),
            statements: Box::default(),
        })
    }

    /// Runs `work` on the client, off tokio's threads (see [`off_runtime`]).
    fn with_client<T: Send>(&self, work: impl FnOnce(&mut Client) -> T + Send) -> T {
        let mut client = self.client.borrow_mut();
        let client = client
            .as_mut()
            .expect("a connection has its client until dropped");
        off_runtime(|| work(client))
    }

    pub(super) fn prepare_cached(&self, sql: &str) -> Result<Statement> {
        let hot = &self.statements.hot;
        if let Some(statement) = hot.get(sql) {
            return Ok(statement);
        }
        let statement = self.prepare_once(sql)?;
        hot.keep(sql, &statement, CACHED_STATEMENTS);
        Ok(statement)
    }

    /// A statement whose SQL was built for the call (with an agent's helpdesks, a
    /// page's ticket ids). One without parameters is kept, apart from the others: the
    /// same texts come back (an agent's next page, the next agent of the same
    /// helpdesks), and PostgreSQL plans a kept statement without parameters once.
    /// Prepared anew each time, it cost a round trip more and was parsed and planned on
    /// every call, which took the small queries 10–20 times longer than running them
    /// (issue 19's load bench). One with parameters (a search's words) is not kept:
    /// kept, PostgreSQL would plan it once for any value after its fifth use.
    pub(super) fn prepare(&self, sql: &str) -> Result<Statement> {
        self.prepare_built(sql, |statement| statement.params().is_empty())
    }

    /// A statement whose built SQL repeats from call to call (see
    /// `Db::prepare_repeated`): kept as [`PgConn::prepare`] keeps one without
    /// parameters, whatever its parameters. A ticket's page read its interventions with
    /// a statement parsed and planned anew each time, half of the page's time in
    /// PostgreSQL (0.6 of 1.3 ms); kept, it is planned for its first five uses, then
    /// once for all values. The values it binds never steer a plan: a search's words
    /// reach the planner as a scalar subquery (see `search::pg_matches`), and the
    /// rest are ids, names and statuses that an index serves whatever their value.
    pub(super) fn prepare_repeated(&self, sql: &str) -> Result<Statement> {
        self.prepare_built(sql, |_| true)
    }

    /// A built statement from the connection's kept ones, or prepared and then kept
    /// when `keep` says so.
    fn prepare_built(&self, sql: &str, keep: impl FnOnce(&Statement) -> bool) -> Result<Statement> {
        let built = &self.statements.built;
        if let Some(statement) = built.get(sql) {
            return Ok(statement);
        }
        let statement = self.prepare_once(sql)?;
        if keep(&statement) {
            built.keep(sql, &statement, CACHED_BUILT_STATEMENTS);
        }
        Ok(statement)
    }

    /// A statement prepared for one use, not kept.
    fn prepare_once(&self, sql: &str) -> Result<Statement> {
        self.with_client(|c| c.prepare(&numbered(sql)))
            .map_err(|e| StoreError::Statement {
                sql: sql.split_whitespace().collect::<Vec<_>>().join(" "),
                source: Box::new(StoreError::Postgres(e)),
            })
    }

    pub(super) fn execute(&self, statement: &Statement, values: &[&dyn Param]) -> Result<usize> {
        let params = bind(values);
        Ok(self.with_client(|c| c.execute(statement, &params))? as usize)
    }

    pub(super) fn query(
        &self,
        statement: &Statement,
        values: &[&dyn Param],
    ) -> Result<Vec<postgres::Row>> {
        let params = bind(values);
        Ok(self.with_client(|c| c.query(statement, &params))?)
    }

    /// COPY of rows into `target` (`table (column, …)`) in the binary format: `values`
    /// are the rows' values one after the other. The columns' types, which that format
    /// needs, are what the server gives the parameters of a one-row INSERT into the same
    /// columns (prepared once per connection, never run).
    pub(super) fn copy_in(&self, target: &str, values: &[&dyn Param]) -> Result<()> {
        let columns = target.matches(',').count() + 1;
        let insert = format!(
            "INSERT INTO {target} VALUES ({})",
            crate::sql::placeholders(columns)
        );
        let types = self.prepare_cached(&insert)?.params().to_vec();
        let copy = format!("COPY {target} FROM STDIN (FORMAT binary)");
        let result = self.with_client(|c| -> std::result::Result<u64, postgres::Error> {
            let mut writer = BinaryCopyInWriter::new(c.copy_in(&copy)?, &types);
            for row in values.chunks(types.len()) {
                writer.write(&bind(row))?;
            }
            writer.finish()
        });
        result.map(|_| ()).map_err(|e| StoreError::Statement {
            sql: copy.split_whitespace().collect::<Vec<_>>().join(" "),
            source: Box::new(StoreError::Postgres(e)),
        })
    }

    pub(super) fn batch_execute(&self, sql: &str) -> Result<()> {
        Ok(self.with_client(|c| c.batch_execute(sql))?)
    }

    /// Whether the connection can still be used (a server restart closes it).
    pub(crate) fn is_usable(&self) -> bool {
        self.client
            .borrow()
            .as_ref()
            .is_some_and(|c| !c.is_closed())
    }
}

/// Runs `work` here, or, on a thread of tokio's runtime, on a thread of its own: the
/// client blocks on a runtime of its own, which may not start inside another. The store
/// runs its work on blocking threads, where this costs nothing; only synchronous callers
/// on async code (the simulator of a command, a connection dropped there) pay a thread.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `url` with its password (`user:secret@`, `password=…`) replaced by `***`: for every
/// message that names a database.
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let query: Vec<String> = out[query_start + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.replace_range(query_start + 1.., &query.join("&"));
    }
    out
}

fn bind<'a>(values: &'a [&'a dyn Param]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| *v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// `sql` with SQLite's placeholders in PostgreSQL's form: `?3` → `$3`, and each plain
/// `?` (generated lists) numbered in order. Text in single quotes is left alone.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Connections to one database, kept for the next use. A caller waits at most
/// [`Pool::WAIT`] for one when all `size` are in use, then gets an error saying so:
/// a request answered late is better than a process that hangs.
pub(crate) struct Pool {
    url: String,
    size: usize,
    /// How long a caller waits for a connection when all are in use.
    wait: Duration,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<PgConn>,
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("Pool").field("size", &self.size).finish()
    }
}

impl Pool {
    const WAIT: Duration = Duration::from_secs(10);

    pub(crate) fn new(url: &str, size: usize) -> Self {
        Self::waiting(url, size, Self::WAIT)
    }

    /// A pool whose callers wait at most `wait` for a connection.
    pub(crate) fn waiting(url: &str, size: usize, wait: Duration) -> Self {
        Self {
            url: url.to_string(),
            size,
            wait,
            state: Mutex::default(),
            returned: Condvar::new(),
        }
    }

    /// A connection, opened when none is idle and fewer than `size` are open.
    pub(crate) fn take(&self) -> Result<PgConn> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.is_usable() {
                    return Ok(conn);
                }
                state.open -= 1;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return PgConn::connect(&self.url).inspect_err(|_| {
                    if let Ok(mut state) = self.state.lock() {
                        state.open -= 1;
                    }
                });
            }
            let (next, timeout) = self
                .returned
                .wait_timeout(state, self.wait)
                .map_err(|_| poisoned())?;
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.size {
                return Err(StoreError::Busy(format!(
                    "all {} database connections stayed in use for {:.1} s",
                    self.size,
                    self.wait.as_secs_f64()
                )));
            }
        }
    }

    /// Returns a connection for the next use (a broken one is closed instead).
    pub(crate) fn give_back(&self, conn: PgConn) {
        if let Ok(mut state) = self.state.lock() {
            if conn.is_usable() {
                state.idle.push(conn);
            } else {
                state.open -= 1;
            }
        }
        self.returned.notify_one();
    }

    /// Lets the idle connections go.
    pub(crate) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            let idle = state.idle.len();
            state.idle.clear();
            state.open -= idle;
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Invalid("the database connection pool is unusable after a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_pool_answers_busy_after_its_wait_and_recovers() {
        let server = postdesk_testkit::postgres::PostgresServer::shared().unwrap();
        let pool = Pool::waiting(&server.url(), 1, Duration::from_millis(300));
        let held = pool.take().unwrap();
        let started = std::time::Instant::now();
        let refused = pool.take().err().expect("no second connection");
        assert!(matches!(refused, StoreError::Busy(_)), "{refused}");
        assert!(refused.is_unavailable());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(5));
        pool.give_back(held);
        assert!(
            pool.take().is_ok(),
            "a connection given back is taken again"
        );
    }

    #[test]
    fn an_unreachable_server_is_an_error_that_says_so() {
        let port = postdesk_testkit::free_port();
        let error = PgConn::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"))
            .err()
            .expect("nothing listens there");
        assert!(error.is_unavailable(), "{error}");
    }

    #[test]
    fn passwords_never_show_in_a_url_named_in_a_message() {
        assert_eq!(
            redacted_url("postgres://postdesk:s3cr@t@db:5432/p?sslmode=require"),
            "postgres://postdesk:***@db:5432/p?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://db/p?user=u&password=hush&sslmode=verify-full"),
            "postgres://db/p?user=u&password=***&sslmode=verify-full"
        );
        assert_eq!(redacted_url("postgres://u@db/p"), "postgres://u@db/p");
        assert_eq!(redacted_url("sqlite://data/p.db"), "sqlite://data/p.db");
    }

    #[test]
    fn placeholders_are_numbered_the_postgres_way() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 OR d = $1"
        );
        assert_eq!(
            numbered("SELECT 1 WHERE x IN (?, ?, ?)"),
            "SELECT 1 WHERE x IN ($1, $2, $3)"
        );
        assert_eq!(
            numbered("SELECT '?' , 'it''s ?' WHERE y = ?1"),
            "SELECT '?' , 'it''s ?' WHERE y = $1"
        );
    }
}
