//! The backend choice: [`Db`], [`Conn`] and [`Row`] are enums over the backends, dispatched by
//! `match` (no trait objects: domain code is compiled once, and a match costs nothing next to a
//! statement). Domains hold these and build [`Sql`]; each arm renders the statement in its
//! backend's [`Dialect`] and runs it there.
//!
//! Two arms: SQLite (`store::sqlite`) and PostgreSQL (`store::postgres`). The PostgreSQL arm
//! renders each statement with `Dialect::Postgres` and calls the backend's method of the same
//! name; what PostgreSQL has no statement for (a file's lease, its mtime) is SQLite's alone.

use std::sync::Arc;

use parking_lot::RwLock;

use super::layout::{Index, IndexLayout};
use super::postgres;
use super::schema::Schema;
use super::sql::{Dialect, Sql, Value};
use super::sqlite::{self, Durability, Lease, QueryPlan, StatementPlan};
use crate::errors::StoreError;

/// A PostgreSQL database of one domain: the backend's pool handle, and the database's indexes
/// as last read from pg_catalog (the runs planner chooses its query shapes from them).
#[derive(Debug)]
pub struct PgDb {
    db: postgres::Db,
    layout: RwLock<Option<Arc<IndexLayout>>>,
}

impl PgDb {
    pub fn new(db: postgres::Db) -> PgDb {
        PgDb {
            db,
            layout: RwLock::new(None),
        }
    }

    pub fn backend(&self) -> &postgres::Db {
        &self.db
    }
}

/// The indexes of a PostgreSQL database in the SQLite layout's terms (lower-case key columns;
/// partial and expression indexes are not "plain": no role is given to them).
fn pg_layout(c: &postgres::Conn<'_>) -> Result<IndexLayout, StoreError> {
    let found = postgres::schema::Layout::read(c)?;
    let indexes = found
        .indexes
        .into_iter()
        .map(|i| Index {
            plain: i.predicate.is_none()
                && i.columns
                    .iter()
                    .all(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
            columns: i.columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
            name: i.name,
            table: i.table,
            unique: i.unique,
        })
        .collect();
    Ok(IndexLayout::of_indexes(indexes))
}

/// PostgreSQL's `EXPLAIN (FORMAT JSON)` as one line per plan node, depth first, indented two
/// spaces per level: `Index Scan using runs_run_id_key on runs`.
fn plan_lines(plan: &serde_json::Value) -> Vec<String> {
    fn walk(node: &serde_json::Value, depth: usize, out: &mut Vec<String>) {
        let text = |key: &str| node.get(key).and_then(|v| v.as_str());
        let mut line = " ".repeat(depth * 2);
        line.push_str(text("Node Type").unwrap_or("?"));
        if let Some(index) = text("Index Name") {
            line.push_str(" using ");
            line.push_str(index);
        }
        if let Some(relation) = text("Relation Name") {
            line.push_str(" on ");
            line.push_str(relation);
        }
        out.push(line);
        if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
            for child in children {
                walk(child, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    let roots = plan.as_array().map(Vec::as_slice).unwrap_or_default();
    for root in roots {
        if let Some(node) = root.get("Plan") {
            walk(node, 0, &mut out);
        }
    }
    out
}

/// One database of one domain, shared by every thread of the process.
// A Db lives behind an Arc, one per database for the whole process: boxing the larger SQLite arm
// would save nothing and add an indirection to every statement.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Db {
    Sqlite(sqlite::Db),
    Postgres(PgDb),
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

    /// Open the PostgreSQL database at `url` for one of stock's storages: its tables created
    /// as dagster-postgres creates them when missing, then judged (a revision or schema the
    /// native path does not serve is refused, untouched); its writes serialized with every
    /// dagster-rs writer of `domain` on that database (an advisory lock).
    pub fn open_postgres(
        url: &str,
        pool_size: Option<usize>,
        domain: &str,
        storage: postgres::schema::Storage,
    ) -> Result<Db, StoreError> {
        let mut opts = postgres::PoolOptions::default();
        if let Some(size) = pool_size {
            opts.size = size;
        }
        let db = postgres::Db::open(url, opts, postgres::write_key(domain))?;
        postgres::schema::ensure(&db, storage)?;
        let found = db.read(postgres::schema::Layout::read)?;
        postgres::schema::check(&found, storage, db.location())?;
        Ok(Db::Postgres(PgDb::new(db)))
    }

    /// The error this database's server raises when it refuses a statement for `message`
    /// (SQLSTATE `sqlstate`), for what a domain refuses before sending the statement as the
    /// server would (a negative LIMIT: SQLite reads it as none, PostgreSQL refuses it).
    pub fn refusal(&self, sqlstate: &str, message: &str) -> StoreError {
        StoreError::Postgres {
            location: self.location().to_owned(),
            statement: None,
            sqlstate: Some(sqlstate.to_owned()),
            kind: postgres::error::kind_of_sqlstate(sqlstate),
            source: postgres::error::PgFailure::Value(message.to_owned()),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Where the database is: a file's path, a server's URL without its password.
    pub fn location(&self) -> &str {
        match self {
            Db::Sqlite(db) => db.path(),
            Db::Postgres(db) => db.db.location(),
        }
    }

    /// The SQLite database, for what only a file has (its mtime, a leased connection).
    pub fn as_sqlite(&self) -> Option<&sqlite::Db> {
        match self {
            Db::Sqlite(db) => Some(db),
            Db::Postgres(_) => None,
        }
    }

    /// Whether this process reads the database only.
    pub fn is_read_only(&self) -> bool {
        match self {
            Db::Sqlite(db) => db.is_read_only(),
            // A read-only role or standby refuses each write itself (25006, kind ReadOnly).
            Db::Postgres(_) => false,
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
            Db::Postgres(db) => db.db.read(|c| f(&Conn::Postgres(c, &db.layout))),
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
            Db::Postgres(db) => db.db.write(|c| f(&Conn::Postgres(c, &db.layout))),
        }
    }

    /// Close every idle connection; later calls open new ones.
    pub fn dispose(&self) {
        match self {
            Db::Sqlite(db) => db.dispose(),
            Db::Postgres(db) => {
                db.db.dispose();
                *db.layout.write() = None;
            }
        }
    }

    /// Forget the database's indexes: the next statement that needs them reads them again.
    pub fn reload_layout(&self) {
        match self {
            Db::Sqlite(db) => db.reload_layout(),
            Db::Postgres(db) => *db.layout.write() = None,
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
            Db::Postgres(db) => Err(StoreError::Io {
                path: db.db.location().to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a PostgreSQL database lends no connection to the DB-API bridge: stock's own \
                     engine serves stock's code there",
                ),
            }),
        }
    }
}

/// A connection lent to a domain for the length of one read or transaction.
pub enum Conn<'a> {
    Sqlite(&'a sqlite::Conn<'a>),
    Postgres(&'a postgres::Conn<'a>, &'a RwLock<Option<Arc<IndexLayout>>>),
}

impl Conn<'_> {
    /// Where the database is (as `Db::location`).
    pub fn location(&self) -> &str {
        match self {
            Conn::Sqlite(c) => c.path(),
            Conn::Postgres(c, _) => c.location(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(..) => Dialect::Postgres,
        }
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute(&self, sql: &Sql) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(c) => c.execute(sql),
            Conn::Postgres(c, _) => {
                let (text, params) = Dialect::Postgres.render(sql);
                Ok(c.execute(&text, params)? as usize)
            }
        }
    }

    pub fn query<T>(
        &self,
        sql: &Sql,
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.query(sql, |r| f(&Row::Sqlite(r))),
            Conn::Postgres(c, _) => {
                let (text, params) = Dialect::Postgres.render(sql);
                c.query(&text, params, |r| f(&Row::Postgres(r)))
            }
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
            Conn::Postgres(c, _) => {
                let (text, params) = Dialect::Postgres.render(sql);
                c.query_opt(&text, params, |r| f(&Row::Postgres(r)))
            }
        }
    }

    /// The plan of a statement for these values, one line per plan node.
    pub fn explain(&self, sql: &Sql) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.explain(sql),
            Conn::Postgres(c, _) => {
                let (text, params) = Dialect::Postgres.render(sql);
                Ok(plan_lines(&c.explain(&text, params)?))
            }
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
            Conn::Postgres(c, slot) => {
                if let Some(layout) = slot.read().as_ref() {
                    return Ok(layout.clone());
                }
                let layout = Arc::new(pg_layout(c)?);
                *slot.write() = Some(layout.clone());
                Ok(layout)
            }
        }
    }

    /// Which of `names` are tables of the database.
    pub fn tables_present(&self, names: &[&str]) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.tables_present(names),
            Conn::Postgres(c, _) => {
                let present = c.query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema()",
                    &[],
                    |r| r.text(0),
                )?;
                Ok(names
                    .iter()
                    .filter(|n| present.iter().any(|p| p == *n))
                    .map(|n| (*n).to_owned())
                    .collect())
            }
        }
    }

    /// The columns of `table` in order; empty when the table is absent.
    pub fn table_columns(&self, table: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Conn::Sqlite(c) => c.table_columns(table),
            Conn::Postgres(c, _) => c.query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[Value::from(table)],
                |r| r.text(0),
            ),
        }
    }

    /// Record a data migration as done in `secondary_indexes`, with stock's timestamp.
    pub fn mark_migration_done(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => sqlite::mark_migration_done(c, name),
            Conn::Postgres(c, _) => postgres::schema::mark_migration_done(c, name),
        }
    }

    /// `ANALYZE`, then statistics planted and reloaded (see `sqlite::Conn::plant_statistics`).
    #[cfg(test)]
    pub fn plant_statistics(&self, rows: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => c.plant_statistics(rows),
            Conn::Postgres(c, _) => {
                let _ = rows;
                c.batch("ANALYZE")
            }
        }
    }
}

/// One result row; typed getters report a column of the wrong type as a corrupt database.
pub enum Row<'a> {
    Sqlite(&'a sqlite::Row<'a>),
    Postgres(&'a postgres::Row<'a>),
}

impl Row<'_> {
    pub fn int(&self, idx: usize) -> Result<i64, StoreError> {
        match self {
            Row::Sqlite(r) => r.int(idx),
            Row::Postgres(r) => r.int(idx),
        }
    }

    pub fn opt_int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_int(idx),
            Row::Postgres(r) => r.opt_int(idx),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String, StoreError> {
        match self {
            Row::Sqlite(r) => r.text(idx),
            Row::Postgres(r) => r.text(idx),
        }
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_text(idx),
            Row::Postgres(r) => r.opt_text(idx),
        }
    }

    pub fn real(&self, idx: usize) -> Result<f64, StoreError> {
        match self {
            Row::Sqlite(r) => r.real(idx),
            Row::Postgres(r) => r.real(idx),
        }
    }

    pub fn opt_real(&self, idx: usize) -> Result<Option<f64>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_real(idx),
            Row::Postgres(r) => r.opt_real(idx),
        }
    }

    /// A boolean column (SQLite stores 0/1; PostgreSQL has `boolean`).
    pub fn bool(&self, idx: usize) -> Result<bool, StoreError> {
        match self {
            Row::Sqlite(r) => r.bool(idx),
            Row::Postgres(r) => r.bool(idx),
        }
    }

    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, StoreError> {
        match self {
            Row::Sqlite(r) => r.opt_bool(idx),
            Row::Postgres(r) => r.opt_bool(idx),
        }
    }

    pub fn bytes(&self, idx: usize) -> Result<Vec<u8>, StoreError> {
        match self {
            Row::Sqlite(r) => r.bytes(idx),
            Row::Postgres(r) => r.bytes(idx),
        }
    }

    /// The column as the backend holds it, whatever its type (values stock stores unchecked).
    pub fn any(&self, idx: usize) -> Result<Value, StoreError> {
        match self {
            Row::Sqlite(r) => r.any(idx),
            Row::Postgres(r) => r.any(idx),
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.column_count(),
            Row::Postgres(r) => r.column_count(),
        }
    }
}
