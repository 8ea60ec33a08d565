//! Every error of the native core, one enum per layer or domain, and their mapping to the
//! exception classes stock Dagster (or Python's `sqlite3`, for the DB-API bridge) raises.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What kind of failure a backend reported, whichever backend it was: domains decide on the
/// kind ("already exists", "retry later"), never on a backend's own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A lock another connection holds was not released in time (SQLite BUSY/LOCKED;
    /// PostgreSQL serialization failure, deadlock, lock not available): worth retrying.
    Busy,
    /// A UNIQUE or PRIMARY KEY constraint refused the row ("already exists").
    UniqueViolation,
    /// Any other constraint (NOT NULL, CHECK, FOREIGN KEY).
    Constraint,
    /// The database cannot be written (a read-only file or server).
    ReadOnly,
    /// The connection to the database went away.
    ConnectionLost,
    /// A table or column the statement names does not exist.
    SchemaMismatch,
    Other,
}

/// Failures of the storage layer: opening files, schema checks, SQL execution.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A failure SQLite reported; raised as the class Python's `sqlite3` raises for its result
    /// code, wrapped as SQLAlchemy wraps it (what stock raises), and `DagsterRsStorageError`.
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        /// The statement that failed, when there was one.
        statement: Option<String>,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: alembic revision {found} is unknown to dagster 1.13.27 (written by a newer \
         Dagster?); dagster-rs refuses to write to a schema it does not know"
    )]
    UnknownRevision { path: String, found: String },
    #[error(
        "{path}: the schema at alembic revision {revision} lacks what dagster-rs's native path \
         needs ({}); stock Dagster's code serves it, or upgrade it with `dagster instance \
         migrate`", missing.join(", ")
    )]
    MissingSchema {
        path: String,
        revision: String,
        missing: Vec<String>,
    },
    #[error(
        "{path}: the file has Dagster tables but no alembic revision, and lacks what \
         dagster-rs's native path needs ({}){}; stock Dagster's code serves it",
        missing.join(", "),
        if *writable { ", which Dagster's initialisation of such a file does not add" } else { "" }
    )]
    Unstamped {
        path: String,
        missing: Vec<String>,
        writable: bool,
    },
    #[error("{path}: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("dagster-rs refuses to open {path}: {detail}")]
    SecondSqlite { path: String, detail: String },
    /// A failure of the PostgreSQL backend (the server, the connection, the pool); raised as the
    /// SQLAlchemy class stock's psycopg2 engine raises for its SQLSTATE.
    #[error("{location}: {source}")]
    Postgres {
        /// The database URL without its password.
        location: String,
        statement: Option<String>,
        /// The server's SQLSTATE, when the server reported the failure.
        sqlstate: Option<String>,
        kind: ErrorKind,
        #[source]
        source: crate::store::postgres::PgFailure,
    },
}

impl StoreError {
    pub fn sqlite(path: &str, source: rusqlite::Error) -> Self {
        StoreError::Sqlite {
            path: path.to_owned(),
            statement: None,
            source,
        }
    }

    /// A failure of `statement`.
    pub fn sqlite_in(path: &str, statement: &str, source: rusqlite::Error) -> Self {
        StoreError::Sqlite {
            path: path.to_owned(),
            statement: Some(statement.to_owned()),
            source,
        }
    }

    /// SQLite's result code, when SQLite reported the failure.
    pub fn sqlite_code(&self) -> Option<rusqlite::ffi::Error> {
        match self {
            StoreError::Sqlite {
                source:
                    rusqlite::Error::SqliteFailure(err, _)
                    | rusqlite::Error::SqlInputError { error: err, .. },
                ..
            } => Some(*err),
            _ => None,
        }
    }

    /// The kind of failure, whichever backend reported it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Sqlite { source, .. } => sqlite_kind(source),
            StoreError::Io { .. } => ErrorKind::Other,
            StoreError::UnknownRevision { .. }
            | StoreError::MissingSchema { .. }
            | StoreError::Unstamped { .. } => ErrorKind::SchemaMismatch,
            StoreError::Corrupt { .. } | StoreError::SecondSqlite { .. } => ErrorKind::Other,
            StoreError::Postgres { kind, .. } => *kind,
        }
    }

    /// True when the backend gave up on a lock another connection holds ("database is locked").
    pub fn is_busy(&self) -> bool {
        self.kind() == ErrorKind::Busy
    }

    /// True for a UNIQUE / PRIMARY KEY violation: the cases stock maps to "already exists".
    pub fn is_unique_violation(&self) -> bool {
        self.kind() == ErrorKind::UniqueViolation
    }

    /// True for any constraint violation, a unique one included.
    pub fn is_constraint(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::UniqueViolation | ErrorKind::Constraint
        )
    }
}

/// The kind of a failure SQLite reported, from its (extended) result code.
fn sqlite_kind(source: &rusqlite::Error) -> ErrorKind {
    use rusqlite::{ffi, ErrorCode};
    let err = match source {
        rusqlite::Error::SqliteFailure(err, _)
        | rusqlite::Error::SqlInputError { error: err, .. } => err,
        _ => return ErrorKind::Other,
    };
    match err.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => ErrorKind::Busy,
        ErrorCode::ConstraintViolation => match err.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            _ => ErrorKind::Constraint,
        },
        ErrorCode::ReadOnly => ErrorKind::ReadOnly,
        // "no such table" / "no such column" are SQLITE_ERROR with only a message to tell them.
        ErrorCode::Unknown
            if matches!(source, rusqlite::Error::SqlInputError { msg, .. }
                | rusqlite::Error::SqliteFailure(_, Some(msg))
                if msg.starts_with("no such table") || msg.starts_with("no such column")) =>
        {
            ErrorKind::SchemaMismatch
        }
        _ => ErrorKind::Other,
    }
}

/// The `sqlite3` exception class CPython raises for a SQLite result code (`get_exception_class`
/// of its `_sqlite` module, which looks at the primary code); `None` for SQLITE_NOMEM, where it
/// raises `MemoryError`.
pub(crate) fn sqlite3_class(extended_code: std::ffi::c_int) -> Option<&'static str> {
    use rusqlite::ffi;
    Some(match extended_code & 0xff {
        ffi::SQLITE_INTERNAL | ffi::SQLITE_NOTFOUND => "InternalError",
        ffi::SQLITE_NOMEM => return None,
        ffi::SQLITE_ERROR
        | ffi::SQLITE_PERM
        | ffi::SQLITE_ABORT
        | ffi::SQLITE_BUSY
        | ffi::SQLITE_LOCKED
        | ffi::SQLITE_READONLY
        | ffi::SQLITE_INTERRUPT
        | ffi::SQLITE_IOERR
        | ffi::SQLITE_FULL
        | ffi::SQLITE_CANTOPEN
        | ffi::SQLITE_PROTOCOL
        | ffi::SQLITE_EMPTY
        | ffi::SQLITE_SCHEMA => "OperationalError",
        ffi::SQLITE_CORRUPT => "DatabaseError",
        ffi::SQLITE_TOOBIG => "DataError",
        ffi::SQLITE_CONSTRAINT | ffi::SQLITE_MISMATCH => "IntegrityError",
        ffi::SQLITE_MISUSE | ffi::SQLITE_RANGE => "InterfaceError",
        _ => "DatabaseError",
    })
}

/// Failures of the runs domain, each with the class stock `SqlRunStorage` raises for it.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("Run {0} already exists in run storage")]
    RunAlreadyExists(String),
    #[error("Snapshot {0} does not exist in run storage")]
    SnapshotDoesNotExist(String),
    #[error("Backfill {0} already exists in run storage")]
    BackfillAlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn dagster_error(py: Python<'_>, module: &str, class: &str, message: String) -> PyErr {
    let built = py
        .import(module)
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1((message.clone(),)));
    match built {
        Ok(exc) => PyErr::from_value(exc),
        // The class itself could not be imported: still raise, never swallow the failure.
        Err(import_err) => PyRuntimeError::new_err(format!("{message} ({import_err})")),
    }
}

fn integrity_error(py: Python<'_>, statement: &str, message: String) -> PyErr {
    // Stock lets SQLAlchemy's IntegrityError escape for duplicate keys it does not handle.
    sqlalchemy_error(py, "IntegrityError", statement, message)
}

/// `sqlalchemy.exc.<class>` wrapping `sqlite3.<class>(message)`: what stock's SQLAlchemy code
/// raises for a failure pysqlite reports (a constraint, a value it cannot bind).
pub(crate) fn sqlalchemy_error(
    py: Python<'_>,
    class: &str,
    statement: &str,
    message: String,
) -> PyErr {
    let built = (|| -> PyResult<Bound<'_, PyAny>> {
        let exc_mod = py.import("sqlalchemy.exc")?;
        let orig = py
            .import("sqlite3")?
            .getattr(class)?
            .call1((message.clone(),))?;
        let kwargs = PyDict::new(py);
        exc_mod
            .getattr(class)?
            .call((statement, py.None(), orig), Some(&kwargs))
    })();
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyValueError::new_err(message),
    }
}

impl From<StoreError> for PyErr {
    fn from(err: StoreError) -> PyErr {
        Python::attach(|py| store_error(py, err))
    }
}

/// A storage failure as the exception stock raises in the same situation, which is also a
/// `DagsterRsStorageError` (built by `dagster_rs.errors`, the one place that defines them).
fn store_error(py: Python<'_>, err: StoreError) -> PyErr {
    let message = err.to_string();
    let built = match &err {
        StoreError::Sqlite {
            path,
            statement,
            source:
                source @ (rusqlite::Error::SqliteFailure(..) | rusqlite::Error::SqlInputError { .. }),
        } => {
            // A statement SQLite refused to compile (`no such column` on a file an older Dagster
            // made) is reported as rusqlite's SqlInputError; sqlite3 raises it as any failure.
            let (code, detail) = match source {
                rusqlite::Error::SqliteFailure(code, detail) => (code, detail.clone()),
                rusqlite::Error::SqlInputError { error, msg, .. } => (error, Some(msg.clone())),
                _ => unreachable!(),
            };
            match sqlite3_class(code.extended_code) {
                Some(class) => {
                    // The text sqlite3 would carry: SQLite's own message for the failure.
                    let text = detail.unwrap_or_else(|| code.to_string());
                    call_errors(
                        py,
                        "sqlite_failure",
                        (class, path, statement.as_deref(), text, code.extended_code),
                    )
                }
                None => return pyo3::exceptions::PyMemoryError::new_err(message),
            }
        }
        StoreError::Sqlite {
            path,
            statement,
            source,
        } => call_errors(
            py,
            "stored_value_failure",
            (path, statement.as_deref(), source.to_string()),
        ),
        StoreError::Corrupt { path, detail } => call_errors(
            py,
            "stored_value_failure",
            (path, None::<&str>, detail.clone()),
        ),
        StoreError::Io { path, source } => call_errors(
            py,
            "os_failure",
            (path, source.raw_os_error(), source.to_string()),
        ),
        StoreError::UnknownRevision { .. } => {
            return dagster_error(py, "dagster_rs.errors", "UnknownRevisionError", message)
        }
        StoreError::MissingSchema { path, .. } | StoreError::Unstamped { path, .. } => {
            call_errors(py, "schema_not_served", (path, message.clone()))
        }
        StoreError::SecondSqlite { .. } => {
            return dagster_error(py, "dagster_rs.errors", "DagsterRsStorageError", message)
        }
        StoreError::Postgres {
            location,
            statement,
            sqlstate,
            kind,
            source,
        } => crate::store::postgres::error::to_python(
            py,
            location,
            statement.as_deref(),
            sqlstate.as_deref(),
            *kind,
            source,
        ),
    };
    match built {
        Ok(exc) => PyErr::from_value(exc),
        // The classes could not be built: still raise, never swallow the failure.
        Err(build_err) => PyRuntimeError::new_err(format!("{message} ({build_err})")),
    }
}

fn call_errors<'py>(
    py: Python<'py>,
    factory: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("dagster_rs.errors")?
        .getattr(factory)?
        .call1(args)
}

impl From<RunsError> for PyErr {
    fn from(err: RunsError) -> PyErr {
        Python::attach(|py| match err {
            RunsError::RunAlreadyExists(_) => dagster_error(
                py,
                "dagster._core.errors",
                "DagsterRunAlreadyExists",
                err.to_string(),
            ),
            RunsError::SnapshotDoesNotExist(_) => dagster_error(
                py,
                "dagster._core.errors",
                "DagsterSnapshotDoesNotExist",
                err.to_string(),
            ),
            RunsError::BackfillAlreadyExists(_) => integrity_error(
                py,
                "INSERT INTO bulk_actions",
                format!("UNIQUE constraint failed: bulk_actions.key ({err})"),
            ),
            RunsError::InvalidArgument(msg) => dagster_error(
                py,
                "dagster._core.errors",
                "DagsterInvariantViolationError",
                msg,
            ),
            RunsError::Store(store) => store.into(),
        })
    }
}

/// Failures of the events domain, each with the class stock `SqlEventLogStorage` raises for it.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    InvalidRunId(String),
    /// Stock commits the events and the update first, then raises this (asset checks).
    #[error(
        "Updated {rows} rows for asset check evaluation {asset_key}:{check_name} in run \
         {run_id}. This is likely due to duplicate AssetCheckPlanned events."
    )]
    DuplicatePlannedCheck {
        rows: usize,
        asset_key: String,
        check_name: String,
        run_id: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EventsError> for PyErr {
    fn from(err: EventsError) -> PyErr {
        match err {
            EventsError::Store(store) => store.into(),
            other => Python::attach(|py| {
                dagster_error(
                    py,
                    "dagster._core.errors",
                    "DagsterInvariantViolationError",
                    other.to_string(),
                )
            }),
        }
    }
}

/// Failures of the DB-API bridge (`dbapi.rs`), raised as the `sqlite3` exception class CPython
/// raises for the same failure, so SQLAlchemy wraps them as it wraps pysqlite's.
#[derive(Debug, thiserror::Error)]
pub enum DbapiError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("Cannot operate on a closed {0}.")]
    Closed(&'static str),
    #[error("Error binding parameter {index}: type '{type_name}' is not supported")]
    UnsupportedType { index: usize, type_name: String },
    #[error("named parameters are not supported by this connection; use qmark (?) binding")]
    NamedParameters,
}

impl DbapiError {
    /// The `sqlite3` class CPython raises, its message, and SQLite's extended result code when
    /// SQLite reported the failure (`None`: a class of its own, MemoryError for SQLITE_NOMEM).
    fn class_and_message(&self) -> (Option<&'static str>, String, Option<std::ffi::c_int>) {
        match self {
            DbapiError::Sqlite(rusqlite::Error::SqliteFailure(e, msg)) => {
                let message = msg.clone().unwrap_or_else(|| e.to_string());
                (
                    sqlite3_class(e.extended_code),
                    message,
                    Some(e.extended_code),
                )
            }
            DbapiError::Sqlite(rusqlite::Error::MultipleStatement) => (
                Some("ProgrammingError"),
                "You can only execute one statement at a time.".to_owned(),
                None,
            ),
            DbapiError::Sqlite(rusqlite::Error::InvalidParameterCount(supplied, expected)) => (
                Some("ProgrammingError"),
                format!(
                    "Incorrect number of bindings supplied. The current statement uses \
                     {expected}, and there are {supplied} supplied."
                ),
                None,
            ),
            DbapiError::Sqlite(
                err @ (rusqlite::Error::Utf8Error(..)
                | rusqlite::Error::FromSqlConversionFailure(..)),
            ) => (
                Some("OperationalError"),
                format!("Could not decode to UTF-8: {err}"),
                None,
            ),
            DbapiError::Sqlite(other) => (Some("OperationalError"), other.to_string(), None),
            other => (Some("ProgrammingError"), other.to_string(), None),
        }
    }
}

impl From<DbapiError> for PyErr {
    fn from(err: DbapiError) -> PyErr {
        let (class, message, code) = err.class_and_message();
        let Some(class) = class else {
            return pyo3::exceptions::PyMemoryError::new_err(message);
        };
        Python::attach(
            |py| match call_errors(py, "sqlite3_exception", (class, message, code)) {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            },
        )
    }
}

/// Failures of the storage domain (dynamic partitions, concurrency pools, storage admin), each
/// with the class stock `SqlEventLogStorage` raises for it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Stock's `_check_partitions_table`: a file without `dynamic_partitions` (never at the head
    /// revision the store opens, unless the table was dropped by hand).
    #[error(
        "Using dynamic partitions definitions requires the dynamic partitions table, which \
         currently does not exist. Add this table by running `dagster instance migrate`."
    )]
    NoPartitionsTable,
    /// A constraint stock does not handle, so SQLAlchemy's IntegrityError escapes: a partition
    /// key twice in one add, a NULL key, and the reconcile of stock's pools with no live slot
    /// (docs/assets-domain.md §10.3), kept because callers see it.
    #[error("{message}")]
    Integrity {
        statement: &'static str,
        message: String,
    },
    /// A slot count stock refuses (`set_concurrency_slots`).
    #[error("{0}")]
    InvalidSlotCount(String),
    /// An argument no stock call can pass (a table the store does not serve).
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StorageError {
    /// `err` as the IntegrityError stock lets escape when it is a constraint violation of
    /// `statement`, else as it is.
    pub fn constraint(err: StoreError, statement: &'static str) -> StorageError {
        // PostgreSQL's error is already the one psycopg2 + SQLAlchemy raise for stock there.
        if !err.is_constraint() || matches!(err, StoreError::Postgres { .. }) {
            return StorageError::Store(err);
        }
        let message = match &err {
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, message),
                ..
            } => message.clone().unwrap_or_else(|| e.to_string()),
            other => other.to_string(),
        };
        StorageError::Integrity { statement, message }
    }
}

impl From<StorageError> for PyErr {
    fn from(err: StorageError) -> PyErr {
        Python::attach(|py| match err {
            StorageError::NoPartitionsTable | StorageError::InvalidSlotCount(_) => dagster_error(
                py,
                "dagster._core.errors",
                "DagsterInvalidInvocationError",
                err.to_string(),
            ),
            StorageError::Integrity { statement, message } => {
                integrity_error(py, statement, message)
            }
            StorageError::InvalidArgument(message) => PyValueError::new_err(message),
            StorageError::Store(store) => store.into(),
        })
    }
}

/// Failures of the scheduling domain, each with the class stock `SqlScheduleStorage` raises.
#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error("InstigatorState {0} is already present in storage")]
    StateExists(String),
    #[error("InstigatorState {0} is not present in storage")]
    StateMissing(String),
    #[error("InstigatorTick {0} is not present in storage")]
    TickMissing(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SchedulingError> for PyErr {
    fn from(err: SchedulingError) -> PyErr {
        match err {
            SchedulingError::Store(store) => store.into(),
            other => Python::attach(|py| {
                dagster_error(
                    py,
                    "dagster._core.errors",
                    "DagsterInvariantViolationError",
                    other.to_string(),
                )
            }),
        }
    }
}

/// Failures of the run_launcher domain's steps, each with the class stock's
/// `RunLauncherMethods` raises for it.
#[derive(Debug, thiserror::Error)]
pub enum RunLauncherError {
    #[error("Could not load run {run_id} that was passed to {method}")]
    RunNotFound {
        run_id: String,
        method: &'static str,
    },
    #[error("Run {0} is not in a state that can be resumed")]
    NotResumable(String),
    #[error(transparent)]
    Runs(#[from] RunsError),
    #[error(transparent)]
    Events(#[from] EventsError),
}

impl From<StoreError> for RunLauncherError {
    fn from(err: StoreError) -> Self {
        RunLauncherError::Runs(RunsError::Store(err))
    }
}

impl From<RunLauncherError> for PyErr {
    fn from(err: RunLauncherError) -> PyErr {
        match err {
            RunLauncherError::Runs(runs) => runs.into(),
            RunLauncherError::Events(events) => events.into(),
            other => Python::attach(|py| {
                dagster_error(
                    py,
                    "dagster._core.errors",
                    "DagsterInvariantViolationError",
                    other.to_string(),
                )
            }),
        }
    }
}
