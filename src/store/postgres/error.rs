//! PostgreSQL failures: what went wrong (`PgFailure`), what it means to the domains (`ErrorKind`,
//! from the SQLSTATE) and the class stock raises for it through SQLAlchemy + psycopg2.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{ErrorKind, StoreError};

/// The cause of a `StoreError::Postgres`.
#[derive(Debug, thiserror::Error)]
pub enum PgFailure {
    /// The server or the driver reported it.
    #[error("{}", describe(.0))]
    Driver(#[from] postgres::Error),
    /// No connection of the pool became free within the checkout timeout.
    #[error("no connection of the pool ({size}) became free within {waited_ms} ms")]
    PoolTimeout { size: usize, waited_ms: u64 },
    /// A URL the driver cannot use, or a TLS set-up that failed before any connection.
    #[error("{0}")]
    Config(String),
    /// A value that cannot be sent as the type the server inferred for its parameter, or a
    /// column that cannot be read as asked.
    #[error("{0}")]
    Value(String),
    /// No new connection could be made, after as many attempts as stock's
    /// `retry_pg_connection_fn` makes (stock then raises `DagsterPostgresException`).
    #[error("too many retries for DB connection ({attempts} attempts): {}", describe(.last))]
    Connect {
        attempts: u32,
        last: postgres::Error,
    },
}

/// psycopg2's text for a server error (`message`, then `DETAIL:`/`HINT:` lines), with the
/// SQLSTATE; the driver's own text otherwise.
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("\nDETAIL:  {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("\nHINT:  {hint}"));
            }
            text
        }
        None => {
            // tokio-postgres's Display is its kind ("error connecting to server"); the cause
            // (an io::Error, a TLS failure) says why.
            match std::error::Error::source(err) {
                Some(cause) if !err.to_string().contains(&cause.to_string()) => {
                    format!("{err}: {cause}")
                }
                _ => err.to_string(),
            }
        }
    }
}

/// The domain-level kind of a SQLSTATE (Contract B's table).
pub fn kind_of_sqlstate(code: &str) -> ErrorKind {
    match code {
        "40001" | "40P01" | "55P03" => ErrorKind::Busy,
        "23505" => ErrorKind::UniqueViolation,
        "25006" => ErrorKind::ReadOnly,
        "57P01" | "57P02" | "57P03" => ErrorKind::ConnectionLost,
        "42P01" | "42703" => ErrorKind::SchemaMismatch,
        c if c.starts_with("23") => ErrorKind::Constraint,
        c if c.starts_with("08") => ErrorKind::ConnectionLost,
        _ => ErrorKind::Other,
    }
}

/// The kind of a driver error: by SQLSTATE when the server sent one; a closed connection, a
/// failed connect or an I/O failure mid-statement is a lost connection.
pub fn kind_of(err: &postgres::Error) -> ErrorKind {
    if let Some(code) = err.code() {
        return kind_of_sqlstate(code.code());
    }
    if err.is_closed() || lost_connection(err) {
        ErrorKind::ConnectionLost
    } else {
        ErrorKind::Other
    }
}

fn lost_connection(err: &postgres::Error) -> bool {
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    // tokio-postgres's kinds without a cause that still mean the session is gone.
    let text = err.to_string();
    [
        "error connecting to server",
        "error communicating with the server",
        "connection closed",
        "unexpected message from server",
        "timeout waiting for server",
        "error performing TLS handshake",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
}

/// The DB-API class psycopg2 raises for a SQLSTATE (its `base_exception_from_sqlstate`), which
/// SQLAlchemy re-raises as `sqlalchemy.exc.<same name>`.
pub fn dbapi_class(sqlstate: Option<&str>, kind: ErrorKind) -> &'static str {
    let Some(code) = sqlstate else {
        // No SQLSTATE: the connection (psycopg2's "server closed the connection
        // unexpectedly", "could not connect") or the pool's timeout: OperationalError.
        return match kind {
            ErrorKind::Other => "DatabaseError",
            _ => "OperationalError",
        };
    };
    match code.get(..2).unwrap_or("") {
        "08" | "26" | "27" | "28" | "34" | "40" | "53" | "54" | "55" | "57" | "58" | "HV" => {
            "OperationalError"
        }
        "0A" => "NotSupportedError",
        "20" | "21" | "3D" | "3F" | "42" | "44" => "ProgrammingError",
        "22" => "DataError",
        "23" => "IntegrityError",
        "24" | "25" | "2B" | "2D" | "2F" | "38" | "39" | "3B" | "F0" | "P0" | "XX" => {
            "InternalError"
        }
        _ => "DatabaseError",
    }
}

/// A driver error as a `StoreError`.
/// A connection that could not be made after `attempts` attempts (see [`PgFailure::Connect`]).
pub fn connect_error(location: &str, attempts: u32, err: postgres::Error) -> StoreError {
    StoreError::Postgres {
        location: location.to_owned(),
        statement: None,
        sqlstate: err.code().map(|c| c.code().to_owned()),
        kind: kind_of(&err),
        source: PgFailure::Connect {
            attempts,
            last: err,
        },
    }
}

pub fn store_error(location: &str, statement: Option<&str>, err: postgres::Error) -> StoreError {
    let kind = kind_of(&err);
    StoreError::Postgres {
        location: location.to_owned(),
        statement: statement.map(str::to_owned),
        sqlstate: err.code().map(|c| c.code().to_owned()),
        kind,
        source: PgFailure::Driver(err),
    }
}

/// A failure of ours (pool, configuration, value conversion) as a `StoreError`.
pub fn failure(
    location: &str,
    statement: Option<&str>,
    kind: ErrorKind,
    source: PgFailure,
) -> StoreError {
    StoreError::Postgres {
        location: location.to_owned(),
        statement: statement.map(str::to_owned),
        sqlstate: None,
        kind,
        source,
    }
}

fn message_has(source: &PgFailure, text: &str) -> bool {
    match source {
        PgFailure::Driver(err) => {
            let mut cause: Option<&dyn std::error::Error> = Some(err);
            while let Some(e) = cause {
                if e.to_string().contains(text) {
                    return true;
                }
                cause = e.source();
            }
            false
        }
        _ => false,
    }
}

/// The exception stock raises for the failure: `sqlalchemy.exc.<class>` (dagster-rs's
/// `Storage<Class>` subclass where `dagster_rs.errors` has one, so it is also a
/// `DagsterRsStorageError`) whose `orig` carries psycopg2's `pgcode`/`pgerror`.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    location: &str,
    statement: Option<&str>,
    sqlstate: Option<&str>,
    kind: ErrorKind,
    source: &PgFailure,
) -> PyResult<Bound<'py, PyAny>> {
    if let PgFailure::Connect { .. } = source {
        // Stock's connection retries end in `DagsterPostgresException`; ours is one too where
        // dagster-postgres is installed, and an OperationalError either way.
        return py
            .import("dagster_rs.errors")?
            .getattr("connect_failure")?
            .call1((location, source.to_string()));
    }
    if message_has(source, super::types::NUL_IN_TEXT) {
        return py
            .import("dagster_rs.errors")?
            .getattr("text_value_failure")?
            .call1((location, super::types::NUL_IN_TEXT));
    }
    let class = match source {
        // A value the driver could not send as the parameter's type: psycopg2 sends it as a
        // literal and the server refuses it as invalid input (class 22).
        PgFailure::Driver(err)
            if sqlstate.is_none() && err.to_string().starts_with("error serializing") =>
        {
            "DataError"
        }
        _ => dbapi_class(sqlstate, kind),
    };
    let message = source.to_string();
    let sa_exc = py.import("sqlalchemy.exc")?;
    let ours = py
        .import("dagster_rs.errors")?
        .getattr("_SQLALCHEMY_CLASSES")?
        .call_method1("get", (class,))?;
    let cls = if ours.is_none() {
        sa_exc.getattr(class)?
    } else {
        ours
    };
    let orig = py
        .import("builtins")?
        .getattr("Exception")?
        .call1((message.clone(),))?;
    orig.setattr("pgcode", sqlstate)?;
    orig.setattr("pgerror", &message)?;
    // SQLAlchemy marks the connection invalidated when the DB-API error was a disconnect.
    let kwargs = PyDict::new(py);
    kwargs.set_item("connection_invalidated", kind == ErrorKind::ConnectionLost)?;
    let exc = cls.call((statement.unwrap_or(""), py.None(), &orig), Some(&kwargs))?;
    exc.setattr("path", location)?;
    exc.setattr("__cause__", &orig)?;
    Ok(exc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_classify_as_contract_b_says() {
        for (code, kind) in [
            ("40001", ErrorKind::Busy),
            ("40P01", ErrorKind::Busy),
            ("55P03", ErrorKind::Busy),
            ("23505", ErrorKind::UniqueViolation),
            ("23503", ErrorKind::Constraint),
            ("23502", ErrorKind::Constraint),
            ("25006", ErrorKind::ReadOnly),
            ("08006", ErrorKind::ConnectionLost),
            ("08001", ErrorKind::ConnectionLost),
            ("57P01", ErrorKind::ConnectionLost),
            ("57P03", ErrorKind::ConnectionLost),
            ("42P01", ErrorKind::SchemaMismatch),
            ("42703", ErrorKind::SchemaMismatch),
            ("42601", ErrorKind::Other),
            ("22P02", ErrorKind::Other),
            ("57014", ErrorKind::Other),
        ] {
            assert_eq!(kind_of_sqlstate(code), kind, "{code}");
        }
    }

    #[test]
    fn sqlstates_map_to_psycopg2s_classes() {
        for (code, class) in [
            ("23505", "IntegrityError"),
            ("23503", "IntegrityError"),
            ("42P01", "ProgrammingError"),
            ("42P07", "ProgrammingError"),
            ("22P02", "DataError"),
            ("22003", "DataError"),
            ("40001", "OperationalError"),
            ("57P01", "OperationalError"),
            ("53300", "OperationalError"),
            ("57014", "OperationalError"),
            ("25006", "InternalError"),
            ("XX000", "InternalError"),
            ("0A000", "NotSupportedError"),
        ] {
            assert_eq!(dbapi_class(Some(code), ErrorKind::Other), class, "{code}");
        }
        assert_eq!(
            dbapi_class(None, ErrorKind::ConnectionLost),
            "OperationalError"
        );
        assert_eq!(dbapi_class(None, ErrorKind::Busy), "OperationalError");
    }

    /// The Python side: the SQLAlchemy class stock's psycopg2 engine raises, also a
    /// `DagsterRsStorageError` where dagster_rs.errors has the subclass, `orig.pgcode` set.
    /// Runs an embedded interpreter with PYO3_PYTHON's site-packages and python/ on its path.
    #[test]
    fn python_classes_are_stocks() {
        let Ok(python) = std::env::var("PYO3_PYTHON") else {
            eprintln!("skipped: PYO3_PYTHON not set");
            return;
        };
        let site = std::process::Command::new(python)
            .args(["-c", "import site; print(site.getsitepackages()[0])"])
            .output()
            .unwrap();
        let site = String::from_utf8(site.stdout).unwrap().trim().to_owned();
        Python::initialize();
        Python::attach(|py| {
            let path = py.import("sys").unwrap().getattr("path").unwrap();
            path.call_method1("insert", (0, site)).unwrap();
            path.call_method1(
                "insert",
                (0, concat!(env!("CARGO_MANIFEST_DIR"), "/python")),
            )
            .unwrap();
            let isinstance = |obj: &Bound<'_, PyAny>, module: &str, class: &str| {
                let cls = py.import(module).unwrap().getattr(class).unwrap();
                obj.is_instance(&cls).unwrap()
            };
            let cases = [
                (
                    Some("23505"),
                    ErrorKind::UniqueViolation,
                    "IntegrityError",
                    true,
                ),
                (Some("22P02"), ErrorKind::Other, "DataError", true),
                (
                    Some("57P01"),
                    ErrorKind::ConnectionLost,
                    "OperationalError",
                    true,
                ),
                (Some("XX000"), ErrorKind::Other, "InternalError", true),
                (None, ErrorKind::ConnectionLost, "OperationalError", true),
                (
                    Some("42P01"),
                    ErrorKind::SchemaMismatch,
                    "ProgrammingError",
                    true,
                ),
                (Some("0A000"), ErrorKind::Other, "NotSupportedError", true),
            ];
            for (sqlstate, kind, class, ours) in cases {
                let err: PyErr = StoreError::Postgres {
                    location: "postgresql://u:***@h/d".into(),
                    statement: Some("INSERT INTO runs VALUES ($1)".into()),
                    sqlstate: sqlstate.map(str::to_owned),
                    kind,
                    source: PgFailure::Value("it failed".into()),
                }
                .into();
                let value = err.value(py);
                assert!(
                    isinstance(value, "sqlalchemy.exc", class),
                    "{sqlstate:?}: {value}"
                );
                assert_eq!(
                    isinstance(value, "dagster_rs.errors", "DagsterRsStorageError"),
                    ours,
                    "{sqlstate:?}"
                );
                let orig = value.getattr("orig").unwrap();
                let pgcode: Option<String> = orig.getattr("pgcode").unwrap().extract().unwrap();
                assert_eq!(pgcode.as_deref(), sqlstate);
                let invalidated: bool = value
                    .getattr("connection_invalidated")
                    .unwrap()
                    .extract()
                    .unwrap();
                assert_eq!(invalidated, kind == ErrorKind::ConnectionLost);
                let text = value.str().unwrap().to_string();
                assert!(
                    text.contains("it failed") && text.contains("INSERT INTO runs"),
                    "{text}"
                );
            }
        });
    }
}
