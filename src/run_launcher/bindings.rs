//! `dagster_rs._native.RunLauncherStore`: the run_launcher domain's reads as seen from Python
//! (`dagster_rs.run_launcher_domain`). Every call releases the GIL while it touches the database.

use std::sync::Arc;

use pyo3::prelude::*;

use super::RunLaunch;
use crate::store::{Shards, StatementPlan};

/// The run_launcher domain's store, on the event log's shared shards.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct RunLauncherStore {
    pub(crate) inner: Arc<RunLaunch>,
}

impl RunLauncherStore {
    pub(crate) fn from_shared(shards: Arc<Shards>) -> Self {
        RunLauncherStore {
            inner: Arc::new(RunLaunch::on(shards)),
        }
    }
}

#[pymethods]
impl RunLauncherStore {
    /// How many of the run's `ENGINE_EVENT`s have `message` as their message, or `None` when
    /// a stored body needs stock's deserialization to tell.
    fn count_engine_messages(
        &self,
        py: Python<'_>,
        run_id: &str,
        message: &str,
    ) -> PyResult<Option<i64>> {
        Ok(py.detach(|| self.inner.count_engine_messages(run_id, message))?)
    }

    /// The plan SQLite picks for the domain's statement on an existing run shard.
    fn query_plans(&self, py: Python<'_>, run_id: &str) -> PyResult<Vec<StatementPlan>> {
        Ok(py.detach(|| self.inner.query_plans(run_id))?)
    }
}
