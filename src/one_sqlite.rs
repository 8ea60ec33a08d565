//! The import-time half of "One SQLite per process": ask Python which SQLite its `sqlite3`
//! module runs, compare it with the core's (`store::library`), and report the result.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::store::library::{self, Library};

/// Run the check once for this process. `sqlite3` is imported first so that its library is the
/// one already loaded when anything else asks for `libsqlite3.so.0`.
pub fn check(py: Python<'_>) -> &'static Library {
    if let Some(done) = library::checked() {
        return done;
    }
    let module = py.import("sqlite3").and_then(|_| py.import("_sqlite3"));
    let (file, version) = match &module {
        Ok(m) => (
            m.getattr("__file__")
                .and_then(|f| f.extract::<String>())
                .ok(),
            m.getattr("sqlite_version")
                .and_then(|v| v.extract::<String>())
                .ok(),
        ),
        Err(_) => (None, None),
    };
    library::check(file.as_deref(), version, module.is_ok())
}

/// `dagster_rs._native.sqlite_library()`: the libraries found and whether the core may open
/// files in this process (`problem` is None).
#[pyfunction]
pub fn sqlite_library(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let lib = check(py);
    let out = PyDict::new(py);
    out.set_item("version", &lib.version)?;
    out.set_item("path", &lib.path)?;
    out.set_item("python_version", &lib.python_version)?;
    out.set_item("python_path", &lib.python_path)?;
    out.set_item("bundled", cfg!(feature = "bundled-sqlite"))?;
    out.set_item("problem", &lib.problem)?;
    Ok(out)
}
