//! `dagster_rs._native.EventStore`: the events domain's store as seen from Python, used by
//! `dagster_rs.storage.event_log_storage.RustEventLogStorage`.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;

use super::query::RecordsFilter;
use super::watch::{Handler, Watcher};
use super::{AssetEntry, Cursor, Effect, EventRow, Events, StatsRow};
use crate::core::{self, Source};
use crate::dbapi::DbapiConnection;
use crate::store::Durability;

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

/// An event's row as the Python adapter builds it (`EventRowSpec`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct EventRowArg {
    run_id: String,
    event: String,
    dagster_event_type: Option<String>,
    timestamp: String,
    step_key: Option<String>,
    asset_key: Option<String>,
    partition: Option<String>,
    mirror: bool,
    effect: EffectArg,
}

impl TryFrom<EventRowArg> for EventRow {
    type Error = PyErr;

    fn try_from(a: EventRowArg) -> PyResult<EventRow> {
        Ok(EventRow {
            run_id: a.run_id,
            event: a.event,
            dagster_event_type: a.dagster_event_type,
            timestamp: a.timestamp,
            step_key: a.step_key,
            asset_key: a.asset_key,
            partition: a.partition,
            mirror: a.mirror,
            effect: a.effect.try_into()?,
        })
    }
}

/// A run-scoped cursor: None, or `("storage_id", id)` / `("offset", n)`.
fn cursor(arg: Option<(String, i64)>) -> PyResult<Cursor> {
    match arg {
        None => Ok(Cursor::None),
        Some((kind, value)) => match kind.as_str() {
            "storage_id" => Ok(Cursor::StorageId(value)),
            "offset" => Ok(Cursor::Offset(value)),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "cursor kind must be 'storage_id' or 'offset', got {other:?}"
            ))),
        },
    }
}

/// A watch's Python handler, called with the GIL with a list of `(storage id, event)`.
struct PyHandler(Py<PyAny>);

impl Handler for PyHandler {
    fn deliver(&self, rows: Vec<(i64, String)>) {
        Python::attach(|py| {
            if let Err(err) = self.0.call1(py, (rows,)) {
                // The handler is Python's; it reports its callback's errors itself. Anything
                // escaping it must not end the watcher thread.
                err.write_unraisable(py, Some(self.0.bind(py)));
            }
        })
    }
}

/// Dagster's event log (`history/runs/`: index shard + one shard per run) in its own schema.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct EventStore {
    inner: Arc<Events>,
    watcher: Watcher<PyHandler>,
}

#[pymethods]
impl EventStore {
    /// The event log under `directory`, on the shards the process shares for it.
    #[new]
    #[pyo3(signature = (directory, durability = "full"))]
    fn new(directory: std::path::PathBuf, durability: &str) -> PyResult<Self> {
        let durability: Durability = durability
            .parse()
            .map_err(pyo3::exceptions::PyValueError::new_err)?;
        let shards = core::event_log(&Source::Sqlite(directory), durability)?;
        Ok(EventStore::from_shared(shards))
    }

    /// Store events in order; returns each event's index id when it is mirrored there.
    fn store_events(
        &self,
        py: Python<'_>,
        rows: Arg<Vec<EventRowArg>>,
    ) -> PyResult<Vec<Option<i64>>> {
        let rows = rows.0;
        let rows = rows
            .into_iter()
            .map(EventRow::try_from)
            .collect::<PyResult<Vec<_>>>()?;
        Ok(py.detach(|| self.inner.store_events(&rows))?)
    }

    #[pyo3(signature = (run_id, cursor, types, limit, ascending))]
    fn records_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        cursor: Option<(String, i64)>,
        types: Vec<String>,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        let cursor = self::cursor(cursor)?;
        Ok(py.detach(|| {
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
        Ok(py.detach(|| self.inner.stats_for_run(&run_id, &types))?)
    }

    fn step_events_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        types: Vec<String>,
        step_keys: Vec<String>,
    ) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.step_events_for_run(&run_id, &types, &step_keys))?)
    }

    #[pyo3(signature = (after_id, types, limit))]
    fn index_events_after(
        &self,
        py: Python<'_>,
        after_id: i64,
        types: Vec<String>,
        limit: Option<i64>,
    ) -> PyResult<Vec<(i64, String)>> {
        Ok(py.detach(|| self.inner.index_events_after(after_id, &types, limit))?)
    }

    fn max_record_id(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        Ok(py.detach(|| self.inner.max_record_id())?)
    }

    fn delete_events(&self, py: Python<'_>, run_id: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_events(&run_id))?)
    }

    /// Create the index shard if missing (stock creates it when the storage is built).
    fn ensure_index(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.ensure_index())?)
    }

    #[pyo3(signature = (filter, limit, ascending))]
    fn index_records(
        &self,
        py: Python<'_>,
        filter: Arg<RecordsFilter>,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        let filter = filter.0;
        Ok(py.detach(|| self.inner.index_records(&filter, limit, ascending))?)
    }

    #[pyo3(signature = (run_id, filter, limit, ascending))]
    fn shard_records(
        &self,
        py: Python<'_>,
        run_id: String,
        filter: Arg<RecordsFilter>,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        let filter = filter.0;
        Ok(py.detach(|| self.inner.shard_records(&run_id, &filter, limit, ascending))?)
    }

    /// A DB-API connection to a shard ("index" or a run id) for stock Python code.
    fn connect(&self, py: Python<'_>, shard: String) -> PyResult<DbapiConnection> {
        let lease = py.detach(|| self.inner.lease(&shard))?;
        Ok(DbapiConnection::new(lease))
    }

    fn run_ids_on_disk(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.run_ids_on_disk())?)
    }

    fn wipe(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.wipe())?)
    }

    /// Deliver `run_id`'s events after storage id `cursor` (-1: all) to `handler`, a callable
    /// taking a list of `(storage id, event)`; returns a token for `end_watch`.
    fn watch(
        &self,
        py: Python<'_>,
        run_id: String,
        cursor: i64,
        handler: Py<PyAny>,
    ) -> PyResult<u64> {
        super::valid_run_id(&run_id)?;
        Ok(py.detach(|| self.watcher.watch(run_id, cursor, PyHandler(handler))))
    }

    fn end_watch(&self, py: Python<'_>, token: u64) -> bool {
        py.detach(|| self.watcher.end_watch(token))
    }

    fn watch_count(&self) -> usize {
        self.watcher.len()
    }

    /// Forget the indexes of its shards (see `Shards::reload_layouts`).
    pub(crate) fn reload_layouts(&self) {
        self.inner.reload_layouts();
    }

    /// Stop this store's watches and close the idle connections of its shards.
    pub(crate) fn dispose(&self, py: Python<'_>) {
        py.detach(|| {
            self.watcher.stop();
            self.inner.dispose()
        })
    }
}

impl EventStore {
    pub(crate) fn from_shared(shards: Arc<crate::store::Shards>) -> Self {
        let inner = Arc::new(Events::on(shards));
        EventStore {
            watcher: Watcher::new(inner.clone()),
            inner,
        }
    }
}
