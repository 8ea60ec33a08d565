//! A checked-out session as the domains use it (`Conn`), and a result row (`Row`).

use std::cell::{Cell, RefCell};

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};

use super::error::{failure, kind_of, store_error, PgFailure};
use super::pool::{Pool, Session};
use super::types::{Decoded, Param, Raw};
use crate::errors::{ErrorKind, StoreError};
use crate::store::Value;

/// A session inside `Db::read` (autocommit: each statement sees the newest committed data, as
/// stock's `AUTOCOMMIT` engine does) or `Db::write` (one transaction).
pub struct Conn<'a> {
    pub(super) session: &'a RefCell<Session>,
    pub(super) pool: &'a Pool,
    /// In a read: whether a statement may still be re-run once on a fresh session after the
    /// connection was lost. Never in a write: the transaction died with the connection.
    pub(super) may_reconnect: Option<&'a Cell<bool>>,
    /// Set when the connection was lost: the session is closed, not pooled.
    pub(super) broken: &'a Cell<bool>,
    /// Set when a statement failed: inside a write, PostgreSQL has aborted the transaction, so
    /// it cannot commit even if the closure carries on.
    pub(super) failed: &'a Cell<bool>,
}

impl Conn<'_> {
    pub fn location(&self) -> &str {
        self.pool.location()
    }

    fn run<T>(
        &self,
        text: &str,
        params: &[Value],
        mut op: impl FnMut(
            &mut postgres::Client,
            &postgres::Statement,
            &[&(dyn ToSql + Sync)],
        ) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        loop {
            let result = {
                let mut session = self.session.borrow_mut();
                session.prepare(text).and_then(|statement| {
                    let Session { client, .. } = &mut *session;
                    op(client, &statement, &refs)
                })
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(err) => err,
            };
            // A server error aborts the transaction; a value the driver refused to encode was
            // never sent.
            if err.code().is_some() {
                self.failed.set(true);
            }
            if err.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
                && err
                    .as_db_error()
                    .is_some_and(|e| e.message().contains("cached plan"))
            {
                // The table changed under a prepared statement: prepare afresh from now on,
                // and once more at once in a read (in a write the transaction is aborted).
                self.session.borrow_mut().forget_statements();
                if self.may_reconnect.is_some_and(|a| a.replace(false)) {
                    self.failed.set(false);
                    continue;
                }
            }
            if kind_of(&err) != ErrorKind::ConnectionLost {
                return Err(store_error(self.location(), Some(text), err));
            }
            self.broken.set(true);
            match self.may_reconnect {
                Some(allowed) if allowed.replace(false) => {
                    let fresh = self.pool.connect(self.pool.generation())?;
                    let old = std::mem::replace(&mut *self.session.borrow_mut(), fresh);
                    self.pool.discard(old);
                    self.broken.set(false);
                    self.failed.set(false);
                }
                _ => return Err(store_error(self.location(), Some(text), err)),
            }
        }
    }

    /// Runs `text` (already rendered with `$n` placeholders); the number of rows it changed.
    pub fn execute(&self, text: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.run(text, params, |client, statement, params| {
            client.execute(statement, params)
        })
    }

    /// Every row of `text`, each through `f`.
    pub fn query<T>(
        &self,
        text: &str,
        params: &[Value],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.run(text, params, |client, statement, params| {
            client.query(statement, params)
        })?;
        rows.iter()
            .map(|row| {
                f(&Row {
                    row,
                    location: self.location(),
                })
            })
            .collect()
    }

    /// The first row of `text`, if any, through `f`.
    pub fn query_opt<T>(
        &self,
        text: &str,
        params: &[Value],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let rows = self.run(text, params, |client, statement, params| {
            client.query(statement, params)
        })?;
        match rows.first() {
            Some(row) => f(&Row {
                row,
                location: self.location(),
            })
            .map(Some),
            None => Ok(None),
        }
    }

    /// `EXPLAIN (FORMAT JSON)` of `text` with its parameters: the plan as the server gives it.
    pub fn explain(&self, text: &str, params: &[Value]) -> Result<serde_json::Value, StoreError> {
        let explain = format!("EXPLAIN (FORMAT JSON) {text}");
        let plan = self
            .query_opt(&explain, params, |r| r.text(0))?
            .unwrap_or_default();
        serde_json::from_str(&plan).map_err(|e| {
            failure(
                self.location(),
                Some(&explain),
                ErrorKind::Other,
                PgFailure::Value(format!("EXPLAIN output is not JSON: {e}")),
            )
        })
    }

    /// Statements without parameters or results, sent as one simple query (DDL, `SET`).
    pub fn batch(&self, text: &str) -> Result<(), StoreError> {
        let result = self.session.borrow_mut().client.batch_execute(text);
        result.map_err(|err| {
            self.failed.set(true);
            if kind_of(&err) == ErrorKind::ConnectionLost {
                self.broken.set(true);
            }
            store_error(self.location(), Some(text), err)
        })
    }
}

/// One result row. Getters read by the column's declared type: int2/int4/int8 alike (databases
/// from before the bigint migration have int4 ids), booleans as 0/1 where an int is asked,
/// `timestamp` columns as SQLite's text (`text`) or epoch seconds (`real`).
pub struct Row<'a> {
    row: &'a postgres::Row,
    location: &'a str,
}

impl<'a> Row<'a> {
    fn column_type(&self, idx: usize) -> Result<&Type, StoreError> {
        self.row
            .columns()
            .get(idx)
            .map(|c| c.type_())
            .ok_or_else(|| self.bad(idx, "a column", "nothing (no such column)"))
    }

    fn bad(&self, idx: usize, expected: &str, got: &str) -> StoreError {
        let column = self
            .row
            .columns()
            .get(idx)
            .map_or("?", |c| c.name())
            .to_owned();
        // What the SQLite side reports for a stored value its reader cannot take.
        StoreError::Corrupt {
            path: self.location.to_owned(),
            detail: format!("column {column} holds {got} where {expected} was expected"),
        }
    }

    fn decoded(&self, idx: usize) -> Result<Option<Decoded<'a>>, StoreError> {
        let ty = self.column_type(idx)?.clone();
        let raw: Option<Raw<'a>> = self
            .row
            .try_get(idx)
            .map_err(|e| store_error(self.location, None, e))?;
        match raw {
            None => Ok(None),
            Some(Raw(bytes)) => Decoded::new(&ty, bytes)
                .map(Some)
                .map_err(|why| self.bad(idx, "a readable value", &why)),
        }
    }

    pub fn opt_int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        Ok(match self.decoded(idx)? {
            None => None,
            Some(Decoded::Int(v)) => Some(v),
            Some(Decoded::Bool(v)) => Some(i64::from(v)),
            Some(Decoded::Numeric(text)) => Some(
                text.parse()
                    .map_err(|_| self.bad(idx, "an integer", &format!("numeric {text}")))?,
            ),
            Some(other) => return Err(self.bad(idx, "an integer", &format!("{other:?}"))),
        })
    }

    pub fn int(&self, idx: usize) -> Result<i64, StoreError> {
        self.opt_int(idx)?
            .ok_or_else(|| self.bad(idx, "an integer", "NULL"))
    }

    /// A float; a `timestamp` as epoch seconds (naive UTC).
    pub fn opt_real(&self, idx: usize) -> Result<Option<f64>, StoreError> {
        Ok(match self.decoded(idx)? {
            None => None,
            Some(Decoded::Real(v)) => Some(v),
            Some(Decoded::Int(v)) => Some(v as f64),
            Some(Decoded::Timestamp(us)) => Some(us as f64 / 1e6),
            Some(Decoded::Numeric(text)) => Some(
                text.parse()
                    .map_err(|_| self.bad(idx, "a float", &format!("numeric {text}")))?,
            ),
            Some(other) => return Err(self.bad(idx, "a float", &format!("{other:?}"))),
        })
    }

    pub fn real(&self, idx: usize) -> Result<f64, StoreError> {
        self.opt_real(idx)?
            .ok_or_else(|| self.bad(idx, "a float", "NULL"))
    }

    /// Text; a `timestamp` as SQLite's `YYYY-MM-DD HH:MM:SS.ffffff`; numbers as SQLite shows them.
    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        Ok(match self.decoded(idx)? {
            None => None,
            Some(Decoded::Bytes(_)) => return Err(self.bad(idx, "text", "bytea")),
            Some(Decoded::Bool(v)) => Some(i64::from(v).to_string()),
            Some(other) => match other.into_value() {
                Value::Text(s) => Some(s),
                Value::Int(v) => Some(v.to_string()),
                Value::Real(v) => Some(v.to_string()),
                Value::Null | Value::Blob(_) => None,
            },
        })
    }

    pub fn text(&self, idx: usize) -> Result<String, StoreError> {
        self.opt_text(idx)?
            .ok_or_else(|| self.bad(idx, "text", "NULL"))
    }

    pub fn bytes(&self, idx: usize) -> Result<Vec<u8>, StoreError> {
        match self.decoded(idx)? {
            Some(Decoded::Bytes(b)) => Ok(b.to_vec()),
            Some(Decoded::Text(s)) => Ok(s.as_bytes().to_vec()),
            None => Err(self.bad(idx, "a blob", "NULL")),
            Some(other) => Err(self.bad(idx, "a blob", &format!("{other:?}"))),
        }
    }

    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, StoreError> {
        Ok(match self.decoded(idx)? {
            None => None,
            Some(Decoded::Bool(v)) => Some(v),
            Some(Decoded::Int(v)) => Some(v != 0),
            Some(other) => return Err(self.bad(idx, "a boolean", &format!("{other:?}"))),
        })
    }

    pub fn bool(&self, idx: usize) -> Result<bool, StoreError> {
        self.opt_bool(idx)?
            .ok_or_else(|| self.bad(idx, "a boolean", "NULL"))
    }

    /// The column as a `Value`, whatever its type (booleans as 0/1, timestamps as text).
    pub fn any(&self, idx: usize) -> Result<Value, StoreError> {
        Ok(self.decoded(idx)?.map_or(Value::Null, Decoded::into_value))
    }

    pub fn column_count(&self) -> usize {
        self.row.len()
    }
}
