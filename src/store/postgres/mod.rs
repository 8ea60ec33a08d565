//! The PostgreSQL backend (Contract B of issue 16): a bounded, fork-safe pool of sessions per
//! database and process (`pool`), sessions and rows speaking `store::Value` (`conn`, `types`),
//! stock dagster-postgres's schema (`schema`, `ddl`) and its failures (`error`).
//!
//! No Python here: callers release the GIL around `read`/`write`.

pub mod conn;
pub mod ddl;
pub mod error;
pub mod pool;
pub mod schema;
pub mod types;
pub mod url;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::{Arc, OnceLock, Weak};

pub use conn::{Conn, Row};
pub use error::PgFailure;
pub use pool::{PoolOptions, PoolStats};

use crate::errors::{ErrorKind, StoreError};
use error::{failure, kind_of, store_error};
use pool::{Pool, Session};

/// One database of one process: its pool (shared by every `Db` opened on the same URL with the
/// same options) and the advisory-lock key its writes serialize on.
pub struct Db {
    pool: Arc<Pool>,
    write_key: i64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.location())
            .field("write_key", &self.write_key)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The advisory-lock key of a domain's writes ("dagster-rs:<domain>", FNV-1a): the same in every
/// process and host, distinct per domain; per database by PostgreSQL's own scoping.
pub fn write_key(domain: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "dagster-rs:".bytes().chain(domain.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

fn pools() -> &'static parking_lot::Mutex<HashMap<String, Weak<Pool>>> {
    static POOLS: OnceLock<parking_lot::Mutex<HashMap<String, Weak<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

/// A checked-out session for the span of one `read`/`write`: given back to the pool when
/// dropped (closed instead when its connection broke, a transaction may be open, or the closure
/// panicked).
struct Lease<'p> {
    pool: &'p Pool,
    session: ManuallyDrop<RefCell<Session>>,
    broken: Cell<bool>,
    failed: Cell<bool>,
    clean: Cell<bool>,
}

impl<'p> Lease<'p> {
    fn new(pool: &'p Pool) -> Result<Lease<'p>, StoreError> {
        Ok(Lease {
            pool,
            session: ManuallyDrop::new(RefCell::new(pool.checkout()?)),
            broken: Cell::new(false),
            failed: Cell::new(false),
            clean: Cell::new(false),
        })
    }

    fn conn<'a>(&'a self, may_reconnect: Option<&'a Cell<bool>>) -> Conn<'a> {
        Conn {
            session: &self.session,
            pool: self.pool,
            may_reconnect,
            broken: &self.broken,
            failed: &self.failed,
        }
    }

    /// Statements of ours (BEGIN, COMMIT, ROLLBACK) on the session.
    fn batch(&self, text: &str) -> Result<(), postgres::Error> {
        let result = self.session.borrow_mut().client.batch_execute(text);
        if let Err(err) = &result {
            if kind_of(err) == ErrorKind::ConnectionLost {
                self.broken.set(true);
            }
        }
        result
    }

    /// Swap a session whose connection was lost for a fresh one (same pool slot).
    fn reconnect(&self) -> Result<(), StoreError> {
        let fresh = self.pool.connect(self.pool.generation())?;
        let old = std::mem::replace(&mut *self.session.borrow_mut(), fresh);
        self.pool.discard(old);
        self.broken.set(false);
        Ok(())
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is never used again.
        let session = unsafe { ManuallyDrop::take(&mut self.session) }.into_inner();
        let reusable = self.clean.get() && !self.broken.get() && !std::thread::panicking();
        self.pool.checkin(session, reusable);
    }
}

impl Db {
    /// The database at `url` (any form dagster-postgres accepts), with this process's pool for
    /// it; connects once, so a wrong URL or an unreachable server fails here.
    pub fn open(url: &str, opts: PoolOptions, write_key: i64) -> Result<Db, StoreError> {
        let key = format!("{url}\u{0}{opts:?}");
        let pool = {
            let mut registry = pools().lock();
            registry.retain(|_, pool| pool.strong_count() > 0);
            match registry.get(&key).and_then(Weak::upgrade) {
                Some(pool) => pool,
                None => {
                    let pool = Arc::new(Pool::new(url, opts)?);
                    registry.insert(key, Arc::downgrade(&pool));
                    pool
                }
            }
        };
        let db = Db { pool, write_key };
        db.read(|_| Ok::<_, StoreError>(()))?;
        Ok(db)
    }

    /// `f` on a session in autocommit: every statement sees the newest committed data. A
    /// statement that finds the connection lost (a server restart, an idle session the server
    /// or a proxy dropped) is re-run once on a fresh connection.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let lease = Lease::new(&self.pool)?;
        let may_reconnect = Cell::new(true);
        let result = f(&lease.conn(Some(&may_reconnect)));
        lease.clean.set(true);
        result
    }

    /// `f` in one transaction serialized with every dagster-rs writer of this domain and
    /// database (`BEGIN; SELECT pg_advisory_xact_lock(write_key)`), committed when it returns
    /// `Ok`, rolled back on `Err`. Retried on a fresh connection only when the connection was
    /// found lost before `f` ran (nothing of it sent); a failed COMMIT is reported, never
    /// retried (its outcome is unknown to us, as to stock).
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let lease = Lease::new(&self.pool)?;
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SELECT pg_advisory_xact_lock({})",
            self.pool.options().checkout_timeout.as_millis(),
            self.write_key
        );
        if let Err(err) = lease.batch(&begin) {
            if !lease.broken.get() {
                let _ = lease.batch("ROLLBACK");
                if !lease.broken.get() {
                    lease.clean.set(true);
                }
                return Err(store_error(self.location(), Some(&begin), err).into());
            }
            lease.reconnect()?;
            lease
                .batch(&begin)
                .map_err(|err| store_error(self.location(), Some(&begin), err))?;
        }
        let result = f(&lease.conn(None));
        if lease.broken.get() {
            // The server ended the transaction with the connection: nothing of it committed.
            return match result {
                Err(err) => Err(err),
                Ok(_) => Err(failure(
                    self.location(),
                    None,
                    ErrorKind::ConnectionLost,
                    PgFailure::Value(
                        "the connection was lost during this write; nothing of it was committed"
                            .to_owned(),
                    ),
                )
                .into()),
            };
        }
        match result {
            Ok(value) if lease.failed.get() => {
                let _ = lease.batch("ROLLBACK");
                lease.clean.set(!lease.broken.get());
                drop(value);
                Err(failure(
                    self.location(),
                    None,
                    ErrorKind::Other,
                    PgFailure::Value(
                        "a statement of this write failed and PostgreSQL aborted its \
                         transaction; nothing of it was committed"
                            .to_owned(),
                    ),
                )
                .into())
            }
            Ok(value) => match lease.batch("COMMIT") {
                Ok(()) => {
                    lease.clean.set(true);
                    Ok(value)
                }
                // The outcome is unknown when the connection died; the session is closed.
                Err(err) => Err(store_error(self.location(), Some("COMMIT"), err).into()),
            },
            Err(err) => {
                if lease.batch("ROLLBACK").is_ok() {
                    lease.clean.set(true);
                }
                Err(err)
            }
        }
    }

    /// Close this process's idle sessions to the database (sessions in use close when given
    /// back); the pool opens new ones on demand.
    pub fn dispose(&self) {
        self.pool.dispose();
    }

    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The URL without its password.
    pub fn location(&self) -> &str {
        self.pool.location()
    }

    pub fn write_key(&self) -> i64 {
        self.write_key
    }

    pub fn options(&self) -> PoolOptions {
        self.pool.options()
    }
}
