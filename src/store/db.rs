//! The backend choice: [`Db`], [`Conn`] and [`Row`] are enums over the backends, dispatched by
//! `match` (no trait objects: domain code is compiled once, and a match costs nothing next to a
//! statement). Domains hold these and build [`Sql`]; each arm renders the statement in its
//! backend's [`Dialect`] and runs it there.
//!
//! Only SQLite is an arm today. The PostgreSQL arm (`store::postgres::{Db, Conn, Row}`) is
//! added beside it: one arm per `match` below, each rendering with `Dialect::Postgres` and
//! calling the backend's method of the same name.

use std::sync::Arc;

use super::layout::IndexLayout;
use super::schema::Schema;
use super::sql::{Dialect, Sql, Value};
use super::sqlite::{self, Durability, Lease, QueryPlan, StatementPlan};
use crate::errors::StoreError;

/// One database of one domain, shared by every thread of the process.
#[derive(Debug)]
pub enum Db {
    Sqlite(sqlite::Db),
}

impl Db {
    /// Open the SQLite file at `path` with `schema` (see [`sqlite::Db::open`]).
    pub fn open(
        path: &str,
        durability: Durability,
        schema: &'static Schema,
    ) -> Result<Db, StoreError> {
        Ok(Db::Sqlite(sqlite::Db::open(path, durability, schema)?))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Where the database is: a file's path, a server's URL without its password.
    pub fn location(&self) -> &str {
        match self {
            Db::Sqlite(db) => db.path(),
        }
    }

    /// The SQLite database, for what only a file has (its mtime, a leased connection).
    pub fn as_sqlite(&self) -> Option<&sqlite::Db> {
        match self {
            Db::Sqlite(db) => Some(db),
        }
    }

    /// Whether this process reads the database only.
    pub fn is_read_only(&self) -> bool {
        match self {
            Db::Sqlite(db) => db.is_read_only(),
        }
    }

    /// Run `f` on a pooled connection outside any explicit transaction (each statement sees the
    /// latest committed state).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(db) => db.read(|c| f(&Conn::Sqlite(c))),
        }
    }

    /// Run `f` in one write transaction, committed when it returns Ok and rolled back otherwise,
    /// serialized with every other writer of the database (SQLite: `BEGIN IMMEDIATE`, the
    /// file's write lock; PostgreSQL: a transaction that first takes the domain's advisory
    /// lock). The pools' invariants rest on this promise.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(db) => db.write(|c| f(&Conn::Sqlite(c))),
        }
    }

    /// Close every idle connection; later calls open new ones.
    pub fn dispose(&self) {
        match self {
            Db::Sqlite(db) => db.dispose(),
        }
    }

    /// Forget the database's indexes: the next statement that needs them reads them again.
    pub fn reload_layout(&self) {
        match self {
            Db::Sqlite(db) => db.reload_layout(),
        }
    }

    /// The database's indexes as the store now knows them (read when not yet known).
    pub fn index_layout(&self) -> Result<Arc<IndexLayout>, StoreError> {
        self.read(|c| c.layout())
    }

    /// Lend a pooled connection until the lease is dropped (the DB-API bridge: SQLite only).
    pub fn lease(self: &Arc<Self>) -> Result<Lease, StoreError> {
        match &**self {
            Db::Sqlite(_) => Lease::new(self.clone()),
        }
    }
}

/// A connection lent to a domain for the length of one read or transaction.
pub enum Conn<'a> {
    Sqlite(&'a sqlite::Conn<'a>),
}

impl Conn<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute(&self, sql: &Sql) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(c) => c.execute(sql),
        }
    }

    pub fn query<T>(
        &self,
        sql: &Sql,
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.query(sql, |r| f(&Row::Sqlite(r))),
        }
    }

    /// The first row of a statement's result, if any.
    pub fn query_opt<T>(
        &self,
        sql: &Sql,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.query_opt(sql, |r| f(&Row::Sqlite(r))),
        }
    }

    /// The plan of a statement for these values, one line per plan node.
    pub fn explain(&self, sql: &Sql) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.explain(sql),
        }
    }

    /// The plan of each named statement, in order.
    pub fn plans(
        &self,
        statements: Vec<(&'static str, Sql)>,
    ) -> Result<Vec<StatementPlan>, StoreError> {
        statements
            .into_iter()
            .map(|(statement, sql)| {
                Ok(StatementPlan {
                    statement,
                    plan: self.explain(&sql)?,
                })
            })
            .collect()
    }

    /// A statement named `what`, its text and its plan, as the domains' `query_plans` hand them
    /// to the plan tests.
    pub fn plan(&self, what: impl Into<String>, sql: &Sql) -> Result<QueryPlan, StoreError> {
        let text = self.dialect().render(sql).0.into_owned();
        Ok((what.into(), text, self.explain(sql)?))
    }

    /// The database's indexes (read again when the schema changed).
    pub fn layout(&self) -> Result<Arc<IndexLayout>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.layout(),
        }
    }

    /// Which of `names` are tables of the database.
    pub fn tables_present(&self, names: &[&str]) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.tables_present(names),
        }
    }

    /// The columns of `table` in order; empty when the table is absent.
    pub fn table_columns(&self, table: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.table_columns(table),
        }
    }

    /// Record a data migration as done in `secondary_indexes`, with stock's timestamp.
    pub fn mark_migration_done(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => sqlite::mark_migration_done(c, name),
        }
    }

    /// `ANALYZE`, then statistics planted and reloaded (see `sqlite::Conn::plant_statistics`).
    #[cfg(test)]
    pub fn plant_statistics(&self, rows: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => c.plant_statistics(rows),
        }
    }
}

/// One result row; typed getters report a column of the wrong type as a corrupt database.
pub enum Row<'a> {
    Sqlite(&'a sqlite::Row<'a>),
}

impl Row<'_> {
    pub fn int(&self, idx: usize) -> Result<i64, StoreError> {
        match self {
            Row::Sqlite(r) => r.int(idx),
        }
    }

    pub fn opt_int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_int(idx),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String, StoreError> {
        match self {
            Row::Sqlite(r) => r.text(idx),
        }
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_text(idx),
        }
    }

    pub fn real(&self, idx: usize) -> Result<f64, StoreError> {
        match self {
            Row::Sqlite(r) => r.real(idx),
        }
    }

    pub fn opt_real(&self, idx: usize) -> Result<Option<f64>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_real(idx),
        }
    }

    /// A boolean column (SQLite stores 0/1; PostgreSQL has `boolean`).
    pub fn bool(&self, idx: usize) -> Result<bool, StoreError> {
        match self {
            Row::Sqlite(r) => r.bool(idx),
        }
    }

    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_bool(idx),
        }
    }

    pub fn bytes(&self, idx: usize) -> Result<Vec<u8>, StoreError> {
        match self {
            Row::Sqlite(r) => r.bytes(idx),
        }
    }

    /// The column as the backend holds it, whatever its type (values stock stores unchecked).
    pub fn any(&self, idx: usize) -> Result<Value, StoreError> {
        match self {
            Row::Sqlite(r) => r.any(idx),
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.column_count(),
        }
    }
}
