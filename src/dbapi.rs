//! A DB-API 2.0 connection over the core's own SQLite connections, for stock Python code.
//!
//! Methods of later domains (asset reads, concurrency, dynamic partitions) stay on stock
//! `SqliteEventLogStorage` code over `index.db` and the run shards. Through Python's `sqlite3` they
//! would open those files with a second SQLite library in the same process, whose POSIX locks and
//! WAL handling do not see the core's (ARCHITECTURE.md, "One SQLite per process"). SQLAlchemy is
//! given these connections instead (`create_engine(..., creator=...)`), so every access to the
//! event log in a process goes through one library and one connection pool.
//!
//! It behaves as `sqlite3` does with its default (legacy) transaction control, which is what
//! SQLAlchemy's pysqlite dialect expects: a transaction is begun implicitly before
//! INSERT/UPDATE/DELETE/REPLACE, and ended by `commit()` / `rollback()`. Errors are raised as
//! `sqlite3`'s own exception classes so SQLAlchemy wraps them exactly as it wraps pysqlite's.

use parking_lot::Mutex;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString, PyTuple};
use pyo3::types::{PyByteArray, PyBytes, PyDate, PyDateTime, PyFloat, PyInt, PyMemoryView};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;

use crate::errors::DbapiError;
use crate::store::Lease;

/// A Python value as an SQLite value, with `sqlite3`'s default adapters.
fn to_sql(index: usize, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = value.py();
    if value.is_none() {
        return Ok(Value::Null);
    }
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyInt>() {
        return match value.extract::<i64>() {
            Ok(i) => Ok(Value::Integer(i)),
            Err(_) => Err(PyOverflowError::new_err(
                "Python int too large to convert to SQLite INTEGER",
            )),
        };
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Value::Real(value.extract()?));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::Text(s.to_str()?.to_owned()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Value::Blob(b.as_bytes().to_vec()));
    }
    if value.is_instance_of::<PyByteArray>() || value.is_instance_of::<PyMemoryView>() {
        let bytes = py.import("builtins")?.getattr("bytes")?.call1((value,))?;
        return Ok(Value::Blob(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    // sqlite3's default adapters (deprecated there, still applied): ISO text.
    if value.is_instance_of::<PyDateTime>() {
        return Ok(Value::Text(
            value.call_method1("isoformat", (" ",))?.extract()?,
        ));
    }
    if value.is_instance_of::<PyDate>() {
        return Ok(Value::Text(value.call_method0("isoformat")?.extract()?));
    }
    let type_name = value.get_type().name()?.to_string();
    Err(DbapiError::UnsupportedType {
        index: index + 1,
        type_name,
    }
    .into())
}

fn to_py(py: Python<'_>, value: &Value) -> Py<PyAny> {
    match value {
        Value::Null => py.None(),
        Value::Integer(i) => i.into_pyobject(py).map(|v| v.into_any().unbind()).unwrap(),
        Value::Real(f) => f.into_pyobject(py).map(|v| v.into_any().unbind()).unwrap(),
        Value::Text(s) => PyString::new(py, s).into_any().unbind(),
        Value::Blob(b) => PyBytes::new(py, b).into_any().unbind(),
    }
}

fn params_of(params: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Value>> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    if params.is_none() {
        return Ok(Vec::new());
    }
    if params.is_instance_of::<pyo3::types::PyDict>() {
        // SQLAlchemy's pysqlite dialect binds positionally (qmark); named binding is not needed.
        return Err(DbapiError::NamedParameters.into());
    }
    params
        .try_iter()?
        .enumerate()
        .map(|(i, v)| to_sql(i, &v?))
        .collect()
}

/// The first keyword of a statement, past whitespace and comments, upper-cased.
fn leading_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Whether anything but whitespace and comments follows the first statement (sqlite3 refuses
/// to execute more than one statement per call).
fn has_second_statement(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += 1;
                }
            }
            b'[' => {
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => return rest_has_text(&sql[i + 1..]),
            _ => {}
        }
        i += 1;
    }
    false
}

/// Text other than whitespace, comments and semicolons.
fn rest_has_text(rest: &str) -> bool {
    let mut r = rest;
    loop {
        r = r.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(after) = r.strip_prefix("--") {
            r = after.split_once('\n').map_or("", |(_, x)| x);
        } else if let Some(after) = r.strip_prefix("/*") {
            r = after.split_once("*/").map_or("", |(_, x)| x);
        } else {
            return !r.is_empty();
        }
    }
}

fn is_dml(keyword: &str) -> bool {
    matches!(keyword, "INSERT" | "UPDATE" | "DELETE" | "REPLACE")
}

/// What one statement produced, collected with the GIL released.
struct Outcome {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    rowcount: i64,
    lastrowid: Option<i64>,
}

fn run_statement(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    implicit_begin: bool,
) -> Result<Outcome, rusqlite::Error> {
    if has_second_statement(sql) {
        return Err(rusqlite::Error::MultipleStatement);
    }
    let keyword = leading_keyword(sql);
    let dml = is_dml(&keyword);
    if dml && implicit_begin && conn.is_autocommit() {
        // IMMEDIATE rather than sqlite3's deferred BEGIN: the statement about to run writes, and
        // taking the write lock now waits out other writers instead of failing on upgrade.
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    }
    let mut stmt = conn.prepare_cached(sql)?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            params.len(),
            expected,
        ));
    }
    for (i, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = Vec::new();
    {
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) => Value::Text(
                        std::str::from_utf8(t)
                            .map_err(|e| rusqlite::Error::Utf8Error(i, e))?
                            .to_owned(),
                    ),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            rows.push(values);
        }
    }
    let (rowcount, lastrowid) = if dml {
        let insert = keyword == "INSERT" || keyword == "REPLACE";
        (
            conn.changes() as i64,
            insert.then(|| conn.last_insert_rowid()),
        )
    } else {
        (-1, None)
    };
    Ok(Outcome {
        columns,
        rows,
        rowcount,
        lastrowid,
    })
}

struct ConnState {
    lease: Option<Lease>,
    /// `None` is autocommit, as `sqlite3.Connection.isolation_level`.
    isolation_level: Option<String>,
}

/// `sqlite3.Connection`'s surface, as SQLAlchemy's pysqlite dialect uses it.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct DbapiConnection {
    state: Mutex<ConnState>,
}

impl DbapiConnection {
    pub fn new(lease: Lease) -> Self {
        DbapiConnection {
            state: Mutex::new(ConnState {
                lease: Some(lease),
                isolation_level: Some(String::new()),
            }),
        }
    }

    /// The state is only ever locked with the GIL released: a statement holds the lock while
    /// SQLite may call back into Python (`create_function`), which takes the GIL.
    fn with_state<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut ConnState) -> R + Send) -> R {
        py.detach(|| f(&mut self.state.lock()))
    }

    fn run(&self, py: Python<'_>, sql: &str, params: Vec<Value>) -> PyResult<Outcome> {
        let result = py.detach(|| {
            let state = self.state.lock();
            let lease = state.lease.as_ref().ok_or(None)?;
            run_statement(
                lease.connection(),
                sql,
                &params,
                state.isolation_level.is_some(),
            )
            .map_err(Some)
        });
        result.map_err(|err| match err {
            None => DbapiError::Closed("database").into(),
            Some(e) => DbapiError::Sqlite(e).into(),
        })
    }

    fn end(&self, py: Python<'_>, statement: &'static str) -> PyResult<()> {
        let result = py.detach(|| {
            let state = self.state.lock();
            let lease = state.lease.as_ref().ok_or(None)?;
            let conn = lease.connection();
            if conn.is_autocommit() {
                return Ok(());
            }
            conn.prepare_cached(statement)
                .and_then(|mut s| s.execute([]))
                .map(|_| ())
                .map_err(Some)
        });
        result.map_err(|err| match err {
            None => DbapiError::Closed("database").into(),
            Some(e) => DbapiError::Sqlite(e).into(),
        })
    }
}

#[pymethods]
impl DbapiConnection {
    fn cursor(slf: &Bound<'_, Self>) -> PyResult<Cursor> {
        if slf.get().with_state(slf.py(), |s| s.lease.is_none()) {
            return Err(DbapiError::Closed("database").into());
        }
        Ok(Cursor::new(slf.clone().unbind()))
    }

    #[pyo3(signature = (sql, parameters = None))]
    fn execute(
        slf: &Bound<'_, Self>,
        sql: &str,
        parameters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Cursor> {
        let cursor = Cursor::new(slf.clone().unbind());
        cursor.run(slf.py(), slf.get(), sql, params_of(parameters)?)?;
        Ok(cursor)
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, "COMMIT")
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, "ROLLBACK")
    }

    /// Give the connection back to the core's pool (an open transaction is rolled back).
    fn close(&self, py: Python<'_>) {
        self.with_state(py, |s| drop(s.lease.take()));
    }

    #[getter]
    fn in_transaction(&self, py: Python<'_>) -> bool {
        self.with_state(py, |s| {
            s.lease
                .as_ref()
                .is_some_and(|l| !l.connection().is_autocommit())
        })
    }

    #[getter]
    fn isolation_level(&self, py: Python<'_>) -> Option<String> {
        self.with_state(py, |s| s.isolation_level.clone())
    }

    #[setter]
    fn set_isolation_level(&self, py: Python<'_>, level: Option<String>) -> PyResult<()> {
        if level.is_none() {
            // sqlite3 commits an open transaction when switched to autocommit.
            self.commit(py)?;
        }
        self.with_state(py, |s| s.isolation_level = level);
        Ok(())
    }

    /// The database file this connection is on.
    #[getter]
    fn path(&self, py: Python<'_>) -> Option<String> {
        self.with_state(py, |s| s.lease.as_ref().map(|l| l.path().to_owned()))
    }

    /// Register a Python scalar function, as `sqlite3.Connection.create_function`.
    #[pyo3(signature = (name, narg, func, *, deterministic = false))]
    fn create_function(
        &self,
        py: Python<'_>,
        name: String,
        narg: i32,
        func: Py<PyAny>,
        deterministic: bool,
    ) -> PyResult<()> {
        let mut flags = FunctionFlags::SQLITE_UTF8;
        if deterministic {
            flags |= FunctionFlags::SQLITE_DETERMINISTIC;
        }
        let result = self.with_state(py, move |s| {
            let lease = s.lease.as_ref().ok_or(None)?;
            lease
                .connection()
                .create_scalar_function(name.as_str(), narg, flags, move |ctx| {
                    Python::attach(|py| {
                        let args = (0..ctx.len())
                            .map(|i| Ok(to_py(py, &ctx.get::<Value>(i)?)))
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        let user = |e: PyErr| rusqlite::Error::UserFunctionError(Box::new(e));
                        let args = PyTuple::new(py, args).map_err(user)?;
                        func.call1(py, args)
                            .and_then(|r| to_sql(0, r.bind(py)))
                            .map_err(user)
                    })
                })
                .map_err(Some)
        });
        result.map_err(|err| match err {
            None => DbapiError::Closed("database").into(),
            Some(e) => DbapiError::Sqlite(e).into(),
        })
    }
}

struct CursorState {
    description: Option<Vec<String>>,
    rows: std::vec::IntoIter<Vec<Value>>,
    rowcount: i64,
    lastrowid: Option<i64>,
    closed: bool,
}

/// `sqlite3.Cursor`'s surface. A statement's rows are read in full when it runs (with the GIL
/// released) and handed out by the fetch methods.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct Cursor {
    connection: Py<DbapiConnection>,
    state: Mutex<CursorState>,
}

impl Cursor {
    fn new(connection: Py<DbapiConnection>) -> Self {
        Cursor {
            connection,
            state: Mutex::new(CursorState {
                description: None,
                rows: Vec::new().into_iter(),
                rowcount: -1,
                lastrowid: None,
                closed: false,
            }),
        }
    }

    fn run(
        &self,
        py: Python<'_>,
        conn: &DbapiConnection,
        sql: &str,
        params: Vec<Value>,
    ) -> PyResult<()> {
        if self.state.lock().closed {
            return Err(DbapiError::Closed("cursor").into());
        }
        let outcome = conn.run(py, sql, params)?;
        let mut state = self.state.lock();
        state.description = (!outcome.columns.is_empty()).then_some(outcome.columns);
        state.rows = outcome.rows.into_iter();
        state.rowcount = outcome.rowcount;
        if outcome.lastrowid.is_some() {
            state.lastrowid = outcome.lastrowid;
        }
        Ok(())
    }

    fn take(&self, n: Option<usize>) -> Vec<Vec<Value>> {
        let mut state = self.state.lock();
        match n {
            Some(n) => state.rows.by_ref().take(n).collect(),
            None => state.rows.by_ref().collect(),
        }
    }
}

fn row_tuple<'py>(py: Python<'py>, row: &[Value]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, row.iter().map(|v| to_py(py, v)))
}

#[pymethods]
impl Cursor {
    #[pyo3(signature = (sql, parameters = None))]
    fn execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &str,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        this.run(py, this.connection.get(), sql, params_of(parameters)?)?;
        Ok(slf.clone())
    }

    fn executemany<'py>(
        slf: &Bound<'py, Self>,
        sql: &str,
        seq_of_parameters: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        let mut total = 0;
        for params in seq_of_parameters.try_iter()? {
            this.run(py, this.connection.get(), sql, params_of(Some(&params?))?)?;
            total += this.state.lock().rowcount.max(0);
        }
        let mut state = this.state.lock();
        state.rowcount = total;
        state.description = None;
        Ok(slf.clone())
    }

    fn fetchone<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.take(Some(1))
            .first()
            .map(|row| row_tuple(py, row))
            .transpose()
    }

    #[pyo3(signature = (size = None))]
    fn fetchmany<'py>(
        &self,
        py: Python<'py>,
        size: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.take(Some(size.unwrap_or(1)))
            .iter()
            .map(|row| row_tuple(py, row))
            .collect()
    }

    fn fetchall<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        self.take(None)
            .iter()
            .map(|row| row_tuple(py, row))
            .collect()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.fetchone(py)
    }

    fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.rows = Vec::new().into_iter();
    }

    /// DB-API 7-tuples: only the name is known, as with `sqlite3`.
    #[getter]
    fn description<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let state = self.state.lock();
        let Some(columns) = state.description.as_ref() else {
            return Ok(None);
        };
        let items = columns
            .iter()
            .map(|name| {
                PyTuple::new(
                    py,
                    [
                        PyString::new(py, name).into_any(),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                        py.None().into_bound(py),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyTuple::new(py, items)?))
    }

    #[getter]
    fn rowcount(&self) -> i64 {
        self.state.lock().rowcount
    }

    #[getter]
    fn lastrowid(&self) -> Option<i64> {
        self.state.lock().lastrowid
    }

    #[getter]
    fn arraysize(&self) -> usize {
        1
    }

    #[getter]
    fn connection(&self, py: Python<'_>) -> Py<DbapiConnection> {
        self.connection.clone_ref(py)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_keyword_skips_comments_and_space() {
        assert_eq!(leading_keyword("  insert into x"), "INSERT");
        assert_eq!(leading_keyword("-- c\n/* d */ Update t"), "UPDATE");
        assert_eq!(leading_keyword("SELECT 1"), "SELECT");
        assert_eq!(leading_keyword("/* unterminated"), "");
    }

    #[test]
    fn one_statement_per_call() {
        assert!(!has_second_statement("SELECT ';' -- ; x\n ;  /* c */ ;"));
        assert!(!has_second_statement("SELECT [a;b], \"c;\" FROM t;"));
        assert!(has_second_statement("SELECT 1; SELECT 2"));
        assert!(has_second_statement("SELECT 1; x"));
    }

    #[test]
    fn statements_begin_a_transaction_only_for_dml() {
        let conn = Connection::open_in_memory().unwrap();
        run_statement(&conn, "CREATE TABLE t (x)", &[], true).unwrap();
        assert!(conn.is_autocommit());
        let out = run_statement(
            &conn,
            "INSERT INTO t VALUES (?)",
            &[Value::Integer(7)],
            true,
        )
        .unwrap();
        assert!(!conn.is_autocommit());
        assert_eq!((out.rowcount, out.lastrowid), (1, Some(1)));
        conn.execute_batch("COMMIT").unwrap();
        let out = run_statement(&conn, "SELECT x, 'a' AS y FROM t", &[], true).unwrap();
        assert_eq!(out.columns, vec!["x", "y"]);
        assert_eq!(
            out.rows,
            vec![vec![Value::Integer(7), Value::Text("a".into())]]
        );
        assert_eq!(out.rowcount, -1);
        assert!(conn.is_autocommit());
        let out = run_statement(&conn, "DELETE FROM t", &[], false).unwrap();
        assert!(conn.is_autocommit());
        assert_eq!(out.rowcount, 1);
    }

    #[test]
    fn wrong_parameter_count_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let err = run_statement(&conn, "SELECT ?", &[], true).err().unwrap();
        assert!(matches!(err, rusqlite::Error::InvalidParameterCount(0, 1)));
    }
}
