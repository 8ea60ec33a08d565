//! `dagster_rs._native.EventStore`: the events domain's store as seen from Python.
//!
//! Not used by the facade yet (the domain cannot be switched on); the Python tests drive it
//! directly to check the write path and the reads against stock Dagster.

// Methods mirror the positional arguments the Python adapter passes.
#![allow(clippy::too_many_arguments)]

use std::sync::Arc;

use pyo3::prelude::*;

use super::{AssetEntry, Cursor, Effect, EventRow, Events, EventsError, StatsRow};
use crate::runs::bindings::parse_durability;

impl From<EventsError> for PyErr {
    fn from(err: EventsError) -> PyErr {
        match err {
            EventsError::Store(store) => store.into(),
            other => Python::with_gil(|py| {
                crate::errors::dagster_error(
                    py,
                    "dagster._core.errors",
                    "DagsterInvariantViolationError",
                    other.to_string(),
                )
            }),
        }
    }
}

/// An index-side effect, as the Python adapter describes it (every key present).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct EffectArg {
    kind: String,
    tags: Option<Vec<(String, String)>>,
    entry: Option<String>,
    asset_key: Option<String>,
    check_name: Option<String>,
    partitions: Option<Vec<Option<String>>>,
    passed: Option<bool>,
    partition: Option<String>,
    materialization_storage_id: Option<i64>,
}

fn missing(field: &str, kind: &str) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("effect {kind:?} needs {field:?}"))
}

impl TryFrom<EffectArg> for Effect {
    type Error = PyErr;

    fn try_from(a: EffectArg) -> PyResult<Effect> {
        let kind = a.kind.as_str();
        Ok(match kind {
            "none" => Effect::None,
            "asset" => Effect::Asset {
                tags: a.tags.unwrap_or_default(),
                entry: match a.entry.as_deref() {
                    Some("materialization") => AssetEntry::Materialization,
                    Some("planned") => AssetEntry::Planned,
                    Some("observation") => AssetEntry::Observation,
                    None | Some("nothing") => AssetEntry::Nothing,
                    Some(other) => {
                        return Err(pyo3::exceptions::PyValueError::new_err(format!(
                            "unknown asset entry {other:?}"
                        )))
                    }
                },
            },
            "check_planned" => Effect::CheckPlanned {
                asset_key: a.asset_key.ok_or_else(|| missing("asset_key", kind))?,
                check_name: a.check_name.ok_or_else(|| missing("check_name", kind))?,
                partitions: a.partitions.unwrap_or_default(),
            },
            "check_evaluation" => Effect::CheckEvaluation {
                asset_key: a.asset_key.ok_or_else(|| missing("asset_key", kind))?,
                check_name: a.check_name.ok_or_else(|| missing("check_name", kind))?,
                passed: a.passed.ok_or_else(|| missing("passed", kind))?,
                partition: a.partition,
                materialization_storage_id: a.materialization_storage_id,
            },
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown effect kind {other:?}"
                )))
            }
        })
    }
}

type EventRowArg = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    EffectArg,
);

fn cursor(kind: &str, value: i64) -> PyResult<Cursor> {
    match kind {
        "none" => Ok(Cursor::None),
        "storage_id" => Ok(Cursor::StorageId(value)),
        "offset" => Ok(Cursor::Offset(value)),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "cursor kind must be 'none', 'storage_id' or 'offset', got {other:?}"
        ))),
    }
}

/// Dagster's event log (`history/runs/`: index shard + one shard per run) in its own schema.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct EventStore {
    inner: Arc<Events>,
}

#[pymethods]
impl EventStore {
    #[new]
    #[pyo3(signature = (directory, durability = "full"))]
    fn new(directory: String, durability: &str) -> PyResult<Self> {
        Ok(EventStore {
            inner: Arc::new(Events::new(directory, parse_durability(durability)?)),
        })
    }

    /// Store events in order; returns each event's index id when it is mirrored there.
    fn store_events(&self, py: Python<'_>, rows: Vec<EventRowArg>) -> PyResult<Vec<Option<i64>>> {
        let rows = rows
            .into_iter()
            .map(
                |(
                    run_id,
                    event,
                    kind,
                    timestamp,
                    step_key,
                    asset_key,
                    partition,
                    mirror,
                    effect,
                )| {
                    Ok(EventRow {
                        run_id,
                        event,
                        dagster_event_type: kind,
                        timestamp,
                        step_key,
                        asset_key,
                        partition,
                        mirror,
                        effect: effect.try_into()?,
                    })
                },
            )
            .collect::<PyResult<Vec<_>>>()?;
        Ok(py.allow_threads(|| self.inner.store_events(&rows))?)
    }

    #[pyo3(signature = (run_id, cursor_kind, cursor_value, types, limit, ascending))]
    fn records_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        cursor_kind: &str,
        cursor_value: i64,
        types: Vec<String>,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        let cursor = cursor(cursor_kind, cursor_value)?;
        Ok(py.allow_threads(|| {
            self.inner
                .records_for_run(&run_id, cursor, &types, limit, ascending)
        })?)
    }

    fn stats_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        types: Vec<String>,
    ) -> PyResult<Vec<StatsRow>> {
        Ok(py.allow_threads(|| self.inner.stats_for_run(&run_id, &types))?)
    }

    fn step_events_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        types: Vec<String>,
        step_keys: Vec<String>,
    ) -> PyResult<Vec<String>> {
        Ok(py.allow_threads(|| self.inner.step_events_for_run(&run_id, &types, &step_keys))?)
    }

    #[pyo3(signature = (after_id, types, limit))]
    fn index_events_after(
        &self,
        py: Python<'_>,
        after_id: i64,
        types: Vec<String>,
        limit: Option<i64>,
    ) -> PyResult<Vec<(i64, String)>> {
        Ok(py.allow_threads(|| self.inner.index_events_after(after_id, &types, limit))?)
    }

    fn max_record_id(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        Ok(py.allow_threads(|| self.inner.max_record_id())?)
    }

    fn delete_events(&self, py: Python<'_>, run_id: String) -> PyResult<()> {
        Ok(py.allow_threads(|| self.inner.delete_events(&run_id))?)
    }

    fn dispose(&self, py: Python<'_>) {
        py.allow_threads(|| self.inner.dispose())
    }
}
