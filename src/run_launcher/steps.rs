//! The steps of `launch_run`, `resume_run` and the failure path of `submit_run` / `launch_run` /
//! `resume_run`, each one call: read the run by id, check its status, write the events stock's
//! `report_dagster_event` / `report_engine_event` / `report_run_failed` store (run shard, plus the
//! index mirror of run-status events) and the run's transition as stock's `handle_run_event`
//! writes it (status, body, update_timestamp, end_time on failure).
//!
//! A step answers `None`, having written nothing, when the stored run body is not one it can
//! transition byte for byte as stock would (`bodies::RunBody::parse`); the caller then takes
//! stock's path, which reads (and raises) as stock does.

use super::bodies::{self, Reported, RunBody, Specific};
use super::RunLaunch;
use crate::errors::RunLauncherError;
use crate::events::{valid_run_id, Effect, EventRow};
use crate::runs::launch;
use crate::store::StatementPlan;

type Result<T> = std::result::Result<T, RunLauncherError>;

/// `report_run_failed`'s default message.
pub const RUN_FAILED_MESSAGE: &str =
    "This run has been marked as failed from outside the execution context.";

/// `IN_PROGRESS_RUN_STATUSES`: the statuses `resume_run` accepts.
const IN_PROGRESS: [&str; 4] = ["STARTING", "STARTED", "CANCELING", "SUSPENDED"];

/// A run's row after a step: what `RunStorage._row_to_run` builds the `DagsterRun` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub body: String,
    pub status: String,
}

/// An event as the events domain stores it; run-status events are mirrored to the index.
fn event_row(reported: &Reported<'_>, mirror: bool) -> EventRow {
    EventRow {
        run_id: reported.run_id.to_owned(),
        event: reported.body(),
        dagster_event_type: Some(reported.event_type.to_owned()),
        timestamp: launch::sql_datetime(reported.timestamp),
        step_key: None,
        asset_key: None,
        partition: None,
        mirror,
        effect: Effect::None,
    }
}

impl RunLaunch {
    fn read_run(&self, run_id: &str) -> Result<Option<(Option<String>, String)>> {
        Ok(self.runs.run_by_id(run_id)?)
    }

    fn transition(
        &self,
        run_id: &str,
        body: &str,
        status: &str,
        timestamp: f64,
        end_time: Option<f64>,
    ) -> Result<()> {
        Ok(self
            .runs
            .launch_transition(run_id, body, status, timestamp, end_time)?)
    }

    /// `launch_run` up to the launcher's call: the run (absent: stock's error), its
    /// `PIPELINE_STARTING` event and its transition to STARTING; the row the launcher's
    /// `DagsterRun` is built from.
    pub fn launch(&self, run_id: &str, timestamp: f64) -> Result<Option<RunRow>> {
        let Some((body, _)) = self.read_run(run_id)? else {
            return Err(RunLauncherError::RunNotFound {
                run_id: run_id.to_owned(),
                method: "launch_run",
            });
        };
        let Some(run) = body.as_deref().and_then(RunBody::parse) else {
            return Ok(None);
        };
        valid_run_id(run_id)?;
        let starting = Reported {
            run_id,
            job_name: &run.job_name,
            event_type: "PIPELINE_STARTING",
            message: None,
            specific: Specific::Nothing,
            level: bodies::INFO,
            timestamp,
        };
        self.events.store_events(&[event_row(&starting, true)])?;
        let body = run.with_status("STARTING");
        self.transition(run_id, &body, "STARTING", timestamp, None)?;
        Ok(Some(RunRow {
            body,
            status: "STARTING".to_owned(),
        }))
    }

    /// `resume_run` up to the launcher's call: the run (absent, or not in progress: stock's
    /// errors) and the run monitor's resume marker event (`marker`); the run's row.
    pub fn resume(&self, run_id: &str, timestamp: f64, marker: &str) -> Result<Option<RunRow>> {
        let Some((body, status)) = self.read_run(run_id)? else {
            return Err(RunLauncherError::RunNotFound {
                run_id: run_id.to_owned(),
                method: "resume_run",
            });
        };
        let Some(body) = body else {
            return Ok(None);
        };
        let Some(run) = RunBody::parse(&body) else {
            return Ok(None);
        };
        if !IN_PROGRESS.contains(&status.as_str()) {
            return Err(RunLauncherError::NotResumable(run_id.to_owned()));
        }
        valid_run_id(run_id)?;
        let resuming = Reported {
            run_id,
            job_name: &run.job_name,
            event_type: "ENGINE_EVENT",
            message: Some(marker),
            specific: Specific::Engine { error: None },
            level: bodies::INFO,
            timestamp,
        };
        self.events.store_events(&[event_row(&resuming, false)])?;
        Ok(Some(RunRow { body, status }))
    }

    /// A coordinator or launcher raised: the engine event with the error (`error`: the
    /// serialized `SerializableErrorInfo`, `message` its message), `PIPELINE_FAILURE` with
    /// stock's default message, and the run's transition to FAILURE. `false` (nothing written)
    /// when the stored run is one stock must transition.
    pub fn fail(
        &self,
        run_id: &str,
        job_name: &str,
        timestamp: f64,
        message: &str,
        error: &str,
    ) -> Result<bool> {
        let stored = self.read_run(run_id)?;
        // A run deleted meanwhile: stock still reports both events; its transition finds no run.
        let run = match &stored {
            None => None,
            Some((Some(body), _)) => match RunBody::parse(body) {
                Some(run) => Some(run),
                None => return Ok(false),
            },
            Some((None, _)) => return Ok(false),
        };
        valid_run_id(run_id)?;
        let engine = Reported {
            run_id,
            job_name,
            event_type: "ENGINE_EVENT",
            message: Some(message),
            specific: Specific::Engine { error: Some(error) },
            level: bodies::ERROR,
            timestamp,
        };
        let failure = Reported {
            run_id,
            job_name,
            event_type: "PIPELINE_FAILURE",
            message: Some(RUN_FAILED_MESSAGE),
            specific: Specific::Nothing,
            level: bodies::ERROR,
            timestamp,
        };
        self.events
            .store_events(&[event_row(&engine, false), event_row(&failure, true)])?;
        if let Some(run) = run {
            let body = run.with_status("FAILURE");
            let end_time = launch::microsecond_timestamp(timestamp);
            self.transition(run_id, &body, "FAILURE", timestamp, Some(end_time))?;
        }
        Ok(true)
    }

    /// The plans of the steps' runs statements (the event writes are the events domain's).
    pub fn run_plans(&self) -> Result<Vec<StatementPlan>> {
        Ok(self.runs.launch_plans()?)
    }
}
