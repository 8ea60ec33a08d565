//! A bounded pool of sessions to one database, per process.
//!
//! At most `size` sessions exist at once (idle + checked out); a caller finding none free waits
//! up to `checkout_timeout`, then fails with `ErrorKind::Busy`. A session whose connection broke
//! is closed, never returned to the pool. After `fork()` the child forgets every session the
//! parent opened (`mem::forget`: never used, never closed — closing would end the parent's
//! session on the shared socket) and opens its own.

use std::collections::HashMap;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::{Client, NoTls, Statement};
use postgres_openssl::MakeTlsConnector;

use super::error::{connect_error, failure, store_error, PgFailure};
use super::url::{self, SslMode, Target};
use crate::errors::{ErrorKind, StoreError};

/// How a database's pool behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Sessions open at most at once in this process (default 8).
    pub size: usize,
    /// How long a caller waits for a free session before failing as busy (default 30 s, as
    /// SQLAlchemy's QueuePool); also the connect timeout when the URL names none.
    pub checkout_timeout: Duration,
    /// The server-side `statement_timeout` of every session (none by default).
    pub statement_timeout: Option<Duration>,
    /// New connections that failed for a reason that may pass (server unreachable, starting
    /// up, out of connection slots) are tried again this many times, waiting 0.2 s, then twice
    /// as long each time: stock's `retry_pg_connection_fn` (5 retries, about 6 s in all).
    pub connect_retries: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            size: 8,
            checkout_timeout: Duration::from_secs(30),
            statement_timeout: None,
            connect_retries: 5,
        }
    }
}

/// Whether a failed connection attempt may succeed if made again: nothing reached a server, or
/// the server said it is starting, shutting down or out of connection slots.
fn worth_retrying(err: &postgres::Error) -> bool {
    match err.code().map(|c| c.code()) {
        None => true,
        Some(code) => {
            matches!(code, "57P03" | "57P01" | "53300" | "53400") || code.starts_with("08")
        }
    }
}

/// Counters of this process's sessions to one database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Sessions opened since the pool was made (or since the fork that made this process).
    pub opened: u64,
    /// Sessions closed (broken, disposed).
    pub closed: u64,
    pub idle: usize,
    pub checked_out: usize,
}

/// Prepared statements kept per session, by text; beyond this the cache starts over.
const STATEMENT_CACHE: usize = 512;

/// One connection and what it has prepared.
pub struct Session {
    pub(super) client: Client,
    statements: HashMap<String, Statement>,
    pid: u32,
    generation: u64,
}

impl Session {
    /// Forget every prepared statement (after the server refused a cached plan whose result
    /// type changed under it: a migration altered a table).
    pub(super) fn forget_statements(&mut self) {
        self.statements.clear();
    }

    /// `text` prepared on this session (once: later calls reuse the server's statement).
    pub(super) fn prepare(&mut self, text: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(text) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(text)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(text.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Every statement of the session planned for its values. The cached prepared statements would
/// otherwise switch to a generic plan after five executions, planned for an average tag or
/// status: a count of a common tag and status then took three times as long (3.3 s against
/// 1.1 s at 1,000,000 runs). Stock sends its values inline, so it is always planned for them;
/// the planning this costs the small statements of the other domains is what stock pays too.
/// Set once per session (not per statement: a round trip each on the runs' hot path). Servers
/// before PostgreSQL 12 lack the setting (SQLSTATE 42704) and plan as before.
fn custom_plans(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    match client.batch_execute("SET plan_cache_mode = force_custom_plan") {
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_OBJECT) => Ok(()),
        other => other,
    }
}

struct State {
    pid: u32,
    generation: u64,
    idle: Vec<Session>,
    checked_out: usize,
}

pub struct Pool {
    target: Target,
    tls: Option<MakeTlsConnector>,
    opts: PoolOptions,
    state: Mutex<State>,
    freed: Condvar,
    opened: AtomicU64,
    closed: AtomicU64,
}

impl Pool {
    pub fn new(url: &str, opts: PoolOptions) -> Result<Pool, StoreError> {
        let location = url::without_password(url);
        let config_failure =
            |m: String| failure(&location, None, ErrorKind::Other, PgFailure::Config(m));
        let target = url::parse(url, opts.checkout_timeout, opts.statement_timeout)
            .map_err(config_failure)?;
        let tls = match target.tls.mode {
            SslMode::Disable => None,
            _ => Some(url::connector(&target.tls).map_err(config_failure)?),
        };
        Ok(Pool {
            target,
            tls,
            opts: PoolOptions {
                size: opts.size.max(1),
                ..opts
            },
            state: Mutex::new(State {
                pid: std::process::id(),
                generation: 0,
                idle: Vec::new(),
                checked_out: 0,
            }),
            freed: Condvar::new(),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        })
    }

    pub fn location(&self) -> &str {
        &self.target.location
    }

    pub fn options(&self) -> PoolOptions {
        self.opts
    }

    /// In a forked child, forget the parent's sessions (see the module doc).
    fn after_fork(&self, state: &mut State) {
        let pid = std::process::id();
        if state.pid != pid {
            mem::forget(mem::take(&mut state.idle));
            state.pid = pid;
            state.checked_out = 0;
            state.generation += 1;
            self.opened.store(0, Ordering::Relaxed);
            self.closed.store(0, Ordering::Relaxed);
        }
    }

    /// A session: an idle one, a new one while fewer than `size` exist, else the first one
    /// freed within the checkout timeout.
    pub fn checkout(&self) -> Result<Session, StoreError> {
        let deadline = Instant::now() + self.opts.checkout_timeout;
        let mut state = self.state.lock();
        self.after_fork(&mut state);
        loop {
            while let Some(session) = state.idle.pop() {
                if session.client.is_closed() {
                    drop(state);
                    self.close(session);
                    state = self.state.lock();
                    continue;
                }
                state.checked_out += 1;
                return Ok(session);
            }
            if state.checked_out + state.idle.len() < self.opts.size {
                state.checked_out += 1;
                let generation = state.generation;
                drop(state);
                return self.connect(generation).inspect_err(|_| {
                    let mut state = self.state.lock();
                    state.checked_out = state.checked_out.saturating_sub(1);
                    self.freed.notify_one();
                });
            }
            if self.freed.wait_until(&mut state, deadline).timed_out() {
                self.after_fork(&mut state);
                if state.idle.is_empty() && state.checked_out >= self.opts.size {
                    return Err(failure(
                        self.location(),
                        None,
                        ErrorKind::Busy,
                        PgFailure::PoolTimeout {
                            size: self.opts.size,
                            waited_ms: self.opts.checkout_timeout.as_millis() as u64,
                        },
                    ));
                }
            }
        }
    }

    /// A new session (counted) outside the pool's bound: the caller already holds its slot.
    pub(super) fn connect(&self, generation: u64) -> Result<Session, StoreError> {
        let mut attempts = 0;
        let client = loop {
            attempts += 1;
            let connected = match &self.tls {
                None => self.target.config.connect(NoTls),
                Some(tls) => self.target.config.connect(tls.clone()),
            };
            match connected {
                Ok(client) => break client,
                Err(e) if attempts <= self.opts.connect_retries && worth_retrying(&e) => {
                    std::thread::sleep(Duration::from_millis(200 << (attempts - 1).min(10)));
                }
                Err(e) => return Err(connect_error(self.location(), attempts, e)),
            }
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        let mut client = client;
        custom_plans(&mut client).map_err(|e| store_error(self.location(), None, e))?;
        Ok(Session {
            client,
            statements: HashMap::new(),
            pid: std::process::id(),
            generation,
        })
    }

    /// The generation sessions opened now belong to (a replacement for a broken session).
    pub(super) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Give `session` back: kept for reuse when `reusable` (no transaction open, connection
    /// alive, not disposed meanwhile), else closed.
    pub fn checkin(&self, session: Session, reusable: bool) {
        if session.pid != std::process::id() {
            // Opened before a fork by the thread that forked: the parent's, never ours to close.
            mem::forget(session);
            return;
        }
        let mut state = self.state.lock();
        state.checked_out = state.checked_out.saturating_sub(1);
        let keep =
            reusable && !session.client.is_closed() && session.generation == state.generation;
        let to_close = if keep {
            state.idle.push(session);
            None
        } else {
            Some(session)
        };
        drop(state);
        self.freed.notify_one();
        if let Some(session) = to_close {
            self.close(session);
        }
    }

    /// Close a broken session whose slot its replacement takes over.
    pub(super) fn discard(&self, session: Session) {
        if session.pid == std::process::id() {
            self.close(session);
        } else {
            mem::forget(session);
        }
    }

    fn close(&self, session: Session) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        drop(session);
    }

    /// Close every idle session now; sessions in use are closed when given back.
    pub fn dispose(&self) {
        let mut state = self.state.lock();
        self.after_fork(&mut state);
        state.generation += 1;
        let idle = mem::take(&mut state.idle);
        drop(state);
        for session in idle {
            self.close(session);
        }
        self.freed.notify_all();
    }

    pub fn stats(&self) -> PoolStats {
        let mut state = self.state.lock();
        self.after_fork(&mut state);
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            idle: state.idle.len(),
            checked_out: state.checked_out,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if state.pid != std::process::id() {
            mem::forget(mem::take(&mut state.idle));
        }
    }
}
