//! `dagster_rs._native.StorageStore`: the storage domain (dynamic partitions, concurrency
//! pools, storage admin) as seen from Python, used by
//! `dagster_rs.storage.storage_domain.StorageDomain`. Every call releases the GIL while it
//! touches the database.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyString};
use pyo3::IntoPyObjectExt;

use super::admin::{AssetIndexColumns, AssetIndexRow};
use super::partitions::PartitionRow;
use super::plans::QueryPlan;
use super::pools::{ClaimRow, Freed, LimitRow, PoolRows};
use super::{Storage, Tables};
use crate::errors::sqlalchemy_error;
use crate::store::{EventLog, Value};

/// A value bound as Python's `sqlite3` binds it: stock passes partition keys and definition
/// names to the driver unchecked, so whatever `sqlite3` accepts is stored as it would be
/// (None, int and bool, float, str, bytes), and anything else fails as it fails there.
pub struct Bindable(pub Value);

impl<'a, 'py> FromPyObject<'a, 'py> for Bindable {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let value = if obj.is_none() {
            Value::Null
        } else if let Ok(s) = obj.cast::<PyString>() {
            Value::Text(s.to_str()?.to_owned())
        } else if let Ok(b) = obj.cast::<PyBool>() {
            Value::Int(i64::from(b.is_true()))
        } else if obj.is_instance_of::<PyInt>() {
            Value::Int(obj.extract::<i64>().map_err(|_| {
                pyo3::exceptions::PyOverflowError::new_err(
                    "Python int too large to convert to SQLite INTEGER",
                )
            })?)
        } else if obj.is_instance_of::<PyFloat>() {
            Value::Real(obj.extract::<f64>()?)
        } else if let Ok(b) = obj.cast::<PyBytes>() {
            Value::Blob(b.as_bytes().to_vec())
        } else if let Ok(b) = obj.cast::<PyByteArray>() {
            Value::Blob(b.to_vec())
        } else {
            let type_name = obj.get_type().name()?.to_string();
            return Err(sqlalchemy_error(
                obj.py(),
                "ProgrammingError",
                "dynamic_partitions",
                format!("Error binding parameter: type '{type_name}' is not supported"),
            ));
        };
        Ok(Bindable(value))
    }
}

impl<'py> IntoPyObject<'py> for Value {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Value::Null => Ok(py.None().into_bound(py)),
            Value::Int(v) => v.into_bound_py_any(py),
            Value::Real(v) => v.into_bound_py_any(py),
            Value::Text(v) => v.into_bound_py_any(py),
            Value::Blob(v) => Ok(PyBytes::new(py, &v).into_any()),
        }
    }
}

fn values(keys: Vec<Bindable>) -> Vec<Value> {
    keys.into_iter().map(|k| k.0).collect()
}

/// The storage domain's store over one event log directory.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct StorageStore {
    pub(crate) inner: Arc<Storage>,
}

impl StorageStore {
    pub(crate) fn from_shared(log: impl Into<EventLog>) -> Self {
        StorageStore {
            inner: Arc::new(Storage::on(log)),
        }
    }
}

#[pymethods]
impl StorageStore {
    /// The event log directory this store reads and writes; None for an event log in
    /// PostgreSQL.
    #[getter]
    fn directory(&self) -> Option<std::path::PathBuf> {
        self.inner.log().shards().map(|s| s.dir().to_path_buf())
    }

    /// Where the event log is: its directory, or its PostgreSQL URL without the password.
    #[getter]
    fn location(&self) -> PyResult<String> {
        Ok(self.inner.location()?)
    }

    /// Which of the domain's tables the index has (`TablesSpec`).
    fn tables(&self, py: Python<'_>) -> PyResult<Tables> {
        Ok(py.detach(|| self.inner.tables())?)
    }

    /// The plan SQLite picks for each of the domain's statements on this index
    /// (`QueryPlanSpec`s, by statement name).
    fn query_plans(&self, py: Python<'_>) -> PyResult<Vec<QueryPlan>> {
        Ok(py.detach(|| self.inner.query_plans())?)
    }

    // -- dynamic partitions ---------------------------------------------------------------

    fn partitions(&self, py: Python<'_>, name: Bindable) -> PyResult<Vec<Value>> {
        Ok(py.detach(|| self.inner.partitions(&name.0))?)
    }

    /// Up to `limit` `PartitionRowSpec`s after (ascending) or before the cursor's storage id.
    fn partition_page(
        &self,
        py: Python<'_>,
        name: Bindable,
        cursor: Option<i64>,
        ascending: bool,
        limit: i64,
    ) -> PyResult<Vec<PartitionRow>> {
        Ok(py.detach(|| self.inner.partition_page(&name.0, cursor, ascending, limit))?)
    }

    fn has_partition(&self, py: Python<'_>, name: Bindable, key: Bindable) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_partition(&name.0, &key.0))?)
    }

    fn existing_partitions(
        &self,
        py: Python<'_>,
        name: Bindable,
        keys: Vec<Bindable>,
    ) -> PyResult<Vec<Value>> {
        let keys = values(keys);
        Ok(py.detach(|| self.inner.existing_partitions(&name.0, &keys))?)
    }

    /// Add the keys not stored yet (in one transaction); the number added.
    fn add_partitions(
        &self,
        py: Python<'_>,
        name: Bindable,
        keys: Vec<Bindable>,
    ) -> PyResult<usize> {
        let keys = values(keys);
        Ok(py.detach(|| self.inner.add_partitions(&name.0, &keys))?)
    }

    fn delete_partition(&self, py: Python<'_>, name: Bindable, key: Bindable) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_partition(&name.0, &key.0))?)
    }

    // -- concurrency pools ----------------------------------------------------------------

    fn reconcile_limits(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.reconcile_limits())?)
    }

    /// Set a pool's limit and slots, assigning the slots added to waiting steps.
    fn set_slots(&self, py: Python<'_>, key: String, num: i64) -> PyResult<()> {
        Ok(py.detach(|| self.inner.set_slots(&key, num))?)
    }

    fn delete_limit(&self, py: Python<'_>, key: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_limit(&key))?)
    }

    /// The pool takes the instance's default limit (`None`: the pool is removed).
    fn initialize_to_default(
        &self,
        py: Python<'_>,
        key: String,
        default: Option<i64>,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.inner.initialize_to_default(&key, default))?)
    }

    fn upsert_limit(&self, py: Python<'_>, key: String, num: i64) -> PyResult<()> {
        Ok(py.detach(|| self.inner.upsert_limit(&key, num))?)
    }

    /// Make the pool's live slots `num`; the number added.
    fn allocate_slots(&self, py: Python<'_>, key: String, num: i64) -> PyResult<i64> {
        Ok(py.detach(|| self.inner.allocate_slots(&key, num))?)
    }

    fn concurrency_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.concurrency_keys())?)
    }

    /// `LimitRowSpec`s in the limits table's order.
    fn pool_limits(&self, py: Python<'_>) -> PyResult<Vec<LimitRow>> {
        Ok(py.detach(|| self.inner.pool_limits())?)
    }

    /// The slots, limits and pending steps of the given pools (`PoolRowsSpec`).
    fn pool_rows(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<PoolRows> {
        Ok(py.detach(|| self.inner.pool_rows(&keys))?)
    }

    /// Claim a slot for a step, queueing it first (`ClaimRowSpec`); one transaction.
    #[pyo3(signature = (key, run_id, step_key, priority = None))]
    fn claim(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
        priority: Option<i64>,
    ) -> PyResult<ClaimRow> {
        Ok(py.detach(|| self.inner.claim(&key, &run_id, &step_key, priority))?)
    }

    fn check_claim(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
    ) -> PyResult<ClaimRow> {
        Ok(py.detach(|| self.inner.check_claim(&key, &run_id, &step_key))?)
    }

    /// Free a run's slots (or a step's) and pass them on to waiting steps (`FreedSpec`).
    #[pyo3(signature = (run_id, step_key = None))]
    fn free(&self, py: Python<'_>, run_id: String, step_key: Option<String>) -> PyResult<Freed> {
        Ok(py.detach(|| self.inner.free(&run_id, step_key.as_deref()))?)
    }

    #[pyo3(signature = (run_id, step_key = None))]
    fn release_slots(
        &self,
        py: Python<'_>,
        run_id: String,
        step_key: Option<String>,
    ) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.release_slots(&run_id, step_key.as_deref()))?)
    }

    #[pyo3(signature = (run_id, step_key = None))]
    fn remove_pending(
        &self,
        py: Python<'_>,
        run_id: String,
        step_key: Option<String>,
    ) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.remove_pending(&run_id, step_key.as_deref()))?)
    }

    /// Assign one waiting step per occurrence of its pool; the number assigned.
    fn assign_pending(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.assign_pending(&keys))?)
    }

    #[pyo3(signature = (key, run_id, step_key, priority = None, assign = false))]
    fn add_pending(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
        priority: Option<i64>,
        assign: bool,
    ) -> PyResult<()> {
        Ok(py.detach(|| {
            self.inner
                .add_pending(&key, &run_id, &step_key, priority, assign)
        })?)
    }

    fn take_slot(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.take_slot(&key, &run_id, &step_key))?)
    }

    fn has_pending(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_pending(&key, &run_id, &step_key))?)
    }

    /// Whether the step's pending row is assigned, None without one.
    fn pending_assigned(
        &self,
        py: Python<'_>,
        key: String,
        run_id: String,
        step_key: String,
    ) -> PyResult<Option<bool>> {
        Ok(py.detach(|| self.inner.pending_assigned(&key, &run_id, &step_key))?)
    }

    fn has_unassigned_slots(&self, py: Python<'_>, key: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_unassigned_slots(&key))?)
    }

    fn pool_run_ids(&self, py: Python<'_>) -> PyResult<Vec<Option<String>>> {
        Ok(py.detach(|| self.inner.pool_run_ids())?)
    }

    /// Whether the run holds a slot or has a step queued.
    fn run_in_pools(&self, py: Python<'_>, run_id: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.run_in_pools(&run_id))?)
    }

    fn has_rows(&self, py: Python<'_>, table: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_rows(&table))?)
    }

    // -- storage admin --------------------------------------------------------------------

    /// The index's alembic revision, None when unstamped.
    fn revision(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.revision())?)
    }

    fn index_done(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.index_done(&name))?)
    }

    fn mark_index_done(&self, py: Python<'_>, name: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.mark_index_done(&name))?)
    }

    fn event_asset_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.event_asset_keys())?)
    }

    fn add_asset_keys(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.add_asset_keys(&keys))?)
    }

    /// `AssetIndexRowSpec`s of every `asset_keys` row, in row order.
    fn asset_index_rows(&self, py: Python<'_>) -> PyResult<Vec<AssetIndexRow>> {
        Ok(py.detach(|| self.inner.asset_index_rows())?)
    }

    fn latest_asset_event(&self, py: Python<'_>, key: String) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.latest_asset_event(&key))?)
    }

    /// Write `AssetIndexColumnsSpec`s, in one transaction.
    fn set_index_columns(&self, py: Python<'_>, rows: Arg<Vec<AssetIndexColumns>>) -> PyResult<()> {
        let rows = rows.0;
        Ok(py.detach(|| self.inner.set_index_columns(&rows))?)
    }
}
