//! The storage layer, in three parts:
//!
//! - the seam domains code against: [`Db`], [`Conn`], [`Row`] (enums over the backends,
//!   `db.rs`), [`Sql`] with its dialect pieces and [`Dialect`] (`sql.rs`), [`EventLog`] (where
//!   the event log's runs and index are, `eventlog.rs`), and the error kinds of
//!   `crate::errors::ErrorKind`;
//! - the SQLite backend ([`sqlite`]): files, their per-process connection pools, transactions,
//!   schema checks and creation, index layouts and the pins fitted to them, read-only files,
//!   the event log's run shards, the one-SQLite-library-per-process guard;
//! - the PostgreSQL backend (`postgres`), added beside it.
//!
//! Domains never name rusqlite nor write a dialect's text: what differs by backend is a piece
//! of [`Sql`] or a method here.

mod civil;
mod db;
mod eventlog;
pub mod postgres;
pub mod sql;
pub use civil::civil_from_days;
pub mod sqlite;

// The SQLite backend's modules, where the rest of the crate has always found them.
pub use sqlite::{inspect, layout, library, readonly, schema, shards};

pub use db::{Conn, Db, Row};
pub use eventlog::EventLog;
pub use shards::Shards;
pub use sql::{Dialect, Sql, Value};
pub use sqlite::{Durability, Lease, QueryPlan, StatementPlan};
