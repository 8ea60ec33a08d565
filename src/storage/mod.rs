//! The storage domain: dynamic partitions, concurrency pools and the storage admin of the event
//! log's index (SQLite: the index shard `index.db`, which it shares with the events and assets
//! domains; PostgreSQL: the one database of stock's `PostgresEventLogStorage`).
//!
//! The statements are stock `SqlEventLogStorage`'s (docs/assets-domain.md §9, §10), so SQLite
//! returns the same rows in the same order. What differs is the transactions: stock runs each
//! method as a chain of autocommit reads and separate write connections, so another process can
//! commit between its read and its write (§1.3, §10.12). Here every method that writes is one
//! `BEGIN IMMEDIATE` transaction, its reads included: a claim, a free and the assignment of the
//! queue are atomic across processes.

pub mod admin;
pub mod bindings;
pub mod partitions;
pub mod plans;
mod pool_sql;
pub mod pools;

use std::sync::Arc;

use pyo3::IntoPyObject;

use crate::errors::StorageError;
use crate::store::{Conn, Db, EventLog};

type Result<T> = std::result::Result<T, StorageError>;

/// Which of the domain's tables the index has (stock's capability gates, docs §1.4). A file at
/// the head revision, the only one the store opens, has all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoPyObject)]
pub struct Tables {
    pub dynamic_partitions: bool,
    pub concurrency_slots: bool,
    pub concurrency_limits: bool,
    pub pending_steps: bool,
    /// `concurrency_limits.using_default_limit` (revision 7e2f3204cf8e).
    pub pool_default_column: bool,
}

/// The storage domain's view of one event log.
#[derive(Debug)]
pub struct Storage {
    log: EventLog,
}

impl Storage {
    pub fn on(log: impl Into<EventLog>) -> Storage {
        Storage { log: log.into() }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Where the index is: the SQLite file's path, or the PostgreSQL URL without password.
    pub fn location(&self) -> Result<String> {
        Ok(self.index()?.location().to_owned())
    }

    fn index(&self) -> Result<Arc<Db>> {
        Ok(self.log.index_db()?)
    }

    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.index()?.read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.index()?.write(f)
    }

    /// The domain's tables present in the index.
    pub fn tables(&self) -> Result<Tables> {
        self.read(|c| {
            let names = c.tables_present(&[
                "dynamic_partitions",
                "concurrency_slots",
                "concurrency_limits",
                "pending_steps",
            ])?;
            let has = |table: &str| names.iter().any(|n| n == table);
            let limit_columns = c.table_columns("concurrency_limits")?;
            Ok(Tables {
                dynamic_partitions: has("dynamic_partitions"),
                concurrency_slots: has("concurrency_slots"),
                concurrency_limits: has("concurrency_limits"),
                pending_steps: has("pending_steps"),
                pool_default_column: limit_columns.iter().any(|n| n == "using_default_limit"),
            })
        })
    }

    /// Whether `table` exists: asked only after a statement on it failed, so the common path
    /// pays nothing for stock's per-call check.
    fn table_missing(&self, table: &str) -> bool {
        matches!(
            self.read(|c| Ok(c.tables_present(&[table])?)),
            Ok(names) if names.is_empty()
        )
    }
}
