//! `dagster_rs._native.DagsterInstance`: the native core of one storage root.
//!
//! Holds one store per live domain, opened on first use, in stock Dagster's layout under the
//! root (`history/runs.db` today; the event log and schedules follow with their domains).

use std::path::Path;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::runs::bindings::{parse_durability, RunStore};
use crate::store::Durability;

#[pyclass(frozen, module = "dagster_rs._native")]
pub struct DagsterInstance {
    storage_root: String,
    durability: Durability,
    runs: PyOnceLock<Py<RunStore>>,
}

#[pymethods]
impl DagsterInstance {
    #[new]
    #[pyo3(signature = (storage_root, durability = "full"))]
    fn new(storage_root: String, durability: &str) -> PyResult<Self> {
        Ok(DagsterInstance {
            storage_root,
            durability: parse_durability(durability)?,
            runs: PyOnceLock::new(),
        })
    }

    #[getter]
    fn storage_root(&self) -> &str {
        &self.storage_root
    }

    #[getter]
    fn durability(&self) -> &'static str {
        self.durability.as_str()
    }

    /// The runs store of `<storage_root>/history/runs.db`.
    #[getter]
    fn runs(&self, py: Python<'_>) -> PyResult<Py<RunStore>> {
        let store = self.runs.get_or_try_init(py, || {
            let path = Path::new(&self.storage_root)
                .join("history")
                .join("runs.db");
            let path = path.to_string_lossy().into_owned();
            Py::new(py, RunStore::open(py, path, self.durability)?)
        })?;
        Ok(store.clone_ref(py))
    }

    fn dispose(&self, py: Python<'_>) {
        if let Some(runs) = self.runs.get(py) {
            let inner = runs.get().inner.clone();
            py.detach(|| inner.dispose());
        }
    }
}
