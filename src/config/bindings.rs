//! `dagster_rs._native.ConfigStore`: the config domain (daemon heartbeats, the key-value store
//! of daemon cursors, the run storage's id) as seen from Python, used by
//! `dagster_rs.storage.config_domain.ConfigDomain`. Every call releases the GIL while it touches
//! the database.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;

use super::plans::QueryPlan;
use super::{Config, Heartbeat};
use crate::runs::Runs;

/// The config domain's store over one `runs.db`, on the runs domain's connections.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct ConfigStore {
    pub(crate) inner: Arc<Config>,
}

impl ConfigStore {
    pub(crate) fn from_shared(runs: Arc<Runs>) -> Self {
        ConfigStore {
            inner: Arc::new(Config::on(runs)),
        }
    }
}

#[pymethods]
impl ConfigStore {
    /// The `runs.db` this store reads and writes.
    #[getter]
    fn path(&self) -> String {
        self.inner.runs().path().to_owned()
    }

    /// The plan SQLite picks for each of the domain's statements (`QueryPlanSpec`s).
    fn query_plans(&self, py: Python<'_>) -> PyResult<Vec<QueryPlan>> {
        Ok(py.detach(|| self.inner.query_plans())?)
    }

    /// Store a daemon's heartbeat (a `HeartbeatSpec`), replacing its daemon type's.
    fn add_heartbeat(&self, py: Python<'_>, heartbeat: Arg<Heartbeat>) -> PyResult<()> {
        let heartbeat = heartbeat.0;
        Ok(py.detach(|| self.inner.add_heartbeat(&heartbeat))?)
    }

    /// Every heartbeat body, in table order.
    fn heartbeats(&self, py: Python<'_>) -> PyResult<Vec<Option<String>>> {
        Ok(py.detach(|| self.inner.heartbeats())?)
    }

    fn wipe_heartbeats(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.wipe_heartbeats())?)
    }

    /// The stored `(key, value)` pairs among `keys`, in the order of `keys` (sorted by the
    /// caller, as stock's index lookup returns them).
    fn cursor_values(
        &self,
        py: Python<'_>,
        keys: Vec<String>,
    ) -> PyResult<Vec<(String, Option<String>)>> {
        Ok(py.detach(|| self.inner.cursor_values(&keys))?)
    }

    /// Insert or overwrite every `(key, value)` pair, in one transaction.
    fn set_cursor_values(&self, py: Python<'_>, pairs: Vec<(String, String)>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.set_cursor_values(&pairs))?)
    }

    /// The run storage's id, `new_id` stored when there is none.
    fn run_storage_id(&self, py: Python<'_>, new_id: String) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.run_storage_id(&new_id))?)
    }
}
