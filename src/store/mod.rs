//! The storage layer: one database file, its connections, transactions and schema checks.
//!
//! Domains talk to a [`Db`] through [`Conn`], [`Sql`] and [`Value`] only, never to rusqlite
//! directly: the SQL dialect and connection handling live behind this seam so a second backend
//! (PostgreSQL with dagster-postgres's schema) can be added beside [`sqlite`].

pub mod inspect;
pub mod layout;
pub mod library;
pub mod postgres;
pub mod readonly;
pub mod schema;
mod schema_events;
mod schema_runs;
mod schema_schedules;
pub mod shards;
pub mod sql;
pub mod sqlite;

pub use shards::Shards;
pub use sql::{Sql, Value};
pub use sqlite::{Conn, Db, Durability, Lease, QueryPlan, Row, StatementPlan};
