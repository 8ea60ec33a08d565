//! The storage layer: one database file, its connections, transactions and schema checks.
//!
//! Domains talk to a [`Db`] through [`Conn`], [`Sql`] and [`Value`] only, never to rusqlite
//! directly: the SQL dialect and connection handling live behind this seam so a second backend
//! (PostgreSQL with dagster-postgres's schema) can be added beside [`sqlite`].

mod db;
mod eventlog;
pub mod inspect;
pub mod layout;
pub mod library;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod readonly;
pub mod schema;
mod schema_events;
mod schema_runs;
mod schema_schedules;
pub mod shards;
pub mod sql;
pub mod sqlite;

pub use db::{Conn, Db, Row};
pub use eventlog::EventLog;
pub use shards::Shards;
pub use sql::{Dialect, Sql, Value};
pub use sqlite::{Durability, Lease, QueryPlan, StatementPlan};
