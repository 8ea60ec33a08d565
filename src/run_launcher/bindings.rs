//! `dagster_rs._native.RunLauncherStore`: the run_launcher domain as seen from Python
//! (`dagster_rs.run_launcher_domain`): its read and its steps. Every call releases the GIL while
//! it touches the database.

use std::sync::Arc;

use pyo3::prelude::*;

use super::bodies::{self, Reported, Specific};
use super::steps::{self, RunRow};
use super::RunLaunch;
use crate::runs::{launch, Runs};
use crate::store::{Shards, StatementPlan};

/// The run_launcher domain's store, on the event log's shared shards and the runs store the
/// core hands it.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct RunLauncherStore {
    pub(crate) inner: Arc<RunLaunch>,
}

impl RunLauncherStore {
    pub(crate) fn from_shared(shards: Arc<Shards>, runs: Arc<Runs>) -> Self {
        RunLauncherStore {
            inner: Arc::new(RunLaunch::on(shards, runs)),
        }
    }
}

/// A run's row after a step, built into a `DagsterRun` by the run storage's own reader.
#[pyclass(frozen, get_all, module = "dagster_rs._native")]
pub struct LaunchRunRow {
    pub body: String,
    pub status: String,
}

impl From<RunRow> for LaunchRunRow {
    fn from(row: RunRow) -> Self {
        LaunchRunRow {
            body: row.body,
            status: row.status,
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

    /// `launch_run`'s step before the launcher: `PIPELINE_STARTING` and the transition to
    /// STARTING; `None` (nothing written) when the stored run is one stock must handle.
    fn launch(
        &self,
        py: Python<'_>,
        run_id: &str,
        timestamp: f64,
    ) -> PyResult<Option<LaunchRunRow>> {
        Ok(py
            .detach(|| self.inner.launch(run_id, timestamp))?
            .map(LaunchRunRow::from))
    }

    /// `resume_run`'s step before the launcher: the status check and the resume marker event.
    fn resume(
        &self,
        py: Python<'_>,
        run_id: &str,
        timestamp: f64,
        marker: &str,
    ) -> PyResult<Option<LaunchRunRow>> {
        Ok(py
            .detach(|| self.inner.resume(run_id, timestamp, marker))?
            .map(LaunchRunRow::from))
    }

    /// The failure path: engine error event, `PIPELINE_FAILURE`, transition to FAILURE.
    /// `False` (nothing written) when the stored run is one stock must transition.
    fn fail(
        &self,
        py: Python<'_>,
        run_id: &str,
        job_name: &str,
        timestamp: f64,
        message: &str,
        error: &str,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.fail(run_id, job_name, timestamp, message, error))?)
    }

    /// The body a step stores for an event (for the tests comparing it with stock's): `kind`
    /// is `starting`, `resume`, `engine_error` or `failure`.
    #[staticmethod]
    #[pyo3(signature = (kind, run_id, job_name, timestamp, message = None, error = None))]
    fn event_body(
        kind: &str,
        run_id: &str,
        job_name: &str,
        timestamp: f64,
        message: Option<&str>,
        error: Option<&str>,
    ) -> PyResult<String> {
        let (event_type, message, specific, level) = match kind {
            "starting" => ("PIPELINE_STARTING", None, Specific::Nothing, bodies::INFO),
            "resume" => (
                "ENGINE_EVENT",
                message,
                Specific::Engine { error: None },
                bodies::INFO,
            ),
            "engine_error" => (
                "ENGINE_EVENT",
                message,
                Specific::Engine { error },
                bodies::ERROR,
            ),
            "failure" => (
                "PIPELINE_FAILURE",
                Some(steps::RUN_FAILED_MESSAGE),
                Specific::Nothing,
                bodies::ERROR,
            ),
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown event kind {other:?}"
                )))
            }
        };
        Ok(Reported {
            run_id,
            job_name,
            event_type,
            message,
            specific,
            level,
            timestamp,
        }
        .body())
    }

    /// A stored run body with its status replaced as a step does, or `None` when the body is
    /// one the steps leave to stock.
    #[staticmethod]
    fn run_body_with_status(body: &str, status: &str) -> Option<String> {
        bodies::RunBody::parse(body).map(|run| run.with_status(status))
    }

    /// A timestamp's text as the steps store it (event rows, `update_timestamp`) and the
    /// `end_time` they store for it.
    #[staticmethod]
    fn timestamp_columns(timestamp: f64) -> (String, f64) {
        (
            launch::sql_datetime(timestamp),
            launch::microsecond_timestamp(timestamp),
        )
    }

    /// The plan SQLite picks for the domain's statement on an existing run shard.
    fn query_plans(&self, py: Python<'_>, run_id: &str) -> PyResult<Vec<StatementPlan>> {
        Ok(py.detach(|| self.inner.query_plans(run_id))?)
    }

    /// The plans of the steps' statements on runs.db.
    fn run_plans(&self, py: Python<'_>) -> PyResult<Vec<StatementPlan>> {
        Ok(py.detach(|| self.inner.run_plans())?)
    }
}
