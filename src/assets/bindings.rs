//! `dagster_rs._native.AssetStore`: the assets domain as seen from Python, used by
//! `dagster_rs.storage.assets_domain.AssetsDomain`.

use std::sync::Arc;

use pyo3::prelude::*;

use super::{AssetFilter, AssetRow, Assets};
use crate::events::query::RecordsFilter;
use crate::store::Shards;

/// The assets domain's store over one event log directory.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct AssetStore {
    pub(crate) inner: Arc<Assets>,
}

impl AssetStore {
    pub(crate) fn from_shared(shards: Arc<Shards>) -> Self {
        AssetStore {
            inner: Arc::new(Assets::on(shards)),
        }
    }
}

#[pymethods]
impl AssetStore {
    /// The event log directory this store reads.
    #[getter]
    fn directory(&self) -> std::path::PathBuf {
        self.inner.shards().dir().to_path_buf()
    }

    fn has_secondary_index(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_secondary_index(&name))?)
    }

    fn table_columns(&self, py: Python<'_>, table: String) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.table_columns(&table))?)
    }

    /// Visible `asset_keys` rows (`AssetRowSpec`s) in key order.
    #[pyo3(signature = (filter, key_only = false))]
    fn asset_rows(
        &self,
        py: Python<'_>,
        filter: AssetFilter,
        key_only: bool,
    ) -> PyResult<Vec<AssetRow>> {
        Ok(py.detach(|| self.inner.asset_rows(&filter, key_only))?)
    }

    fn asset_details(
        &self,
        py: Python<'_>,
        keys: Vec<String>,
    ) -> PyResult<Vec<(String, Option<String>)>> {
        Ok(py.detach(|| self.inner.asset_details(&keys))?)
    }

    /// `(asset_key, storage id, event)` of each key's latest materialization after its wipe
    /// (the wipe as stock's naive-UTC text, or None).
    fn latest_materializations(
        &self,
        py: Python<'_>,
        keys: Vec<(String, Option<String>)>,
    ) -> PyResult<Vec<(String, i64, String)>> {
        Ok(py.detach(|| self.inner.latest_materializations(&keys))?)
    }

    /// `(storage id, event)` of the index's events a `RecordsFilterSpec` selects, by id.
    fn event_records(
        &self,
        py: Python<'_>,
        filter: RecordsFilter,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        Ok(py.detach(|| self.inner.event_records(&filter, limit, ascending))?)
    }

    /// A page of one check's executions (`CheckExecutionRowSpec`s), newest first.
    fn check_history(
        &self,
        py: Python<'_>,
        read: super::checks::CheckHistory,
    ) -> PyResult<Vec<super::checks::CheckExecutionRow>> {
        Ok(py.detach(|| self.inner.check_history(&read))?)
    }

    /// The latest execution of each (asset key, check name) of the lists' cross product.
    fn latest_check_executions(
        &self,
        py: Python<'_>,
        read: super::checks::LatestChecks,
    ) -> PyResult<Vec<super::checks::CheckExecutionRow>> {
        Ok(py.detach(|| self.inner.latest_check_executions(&read))?)
    }

    /// The latest evaluated execution of one check per partition (`CheckPartitionRowSpec`s).
    fn check_partition_rows(
        &self,
        py: Python<'_>,
        read: super::checks::CheckPartitions,
    ) -> PyResult<Vec<super::checks::CheckPartitionRow>> {
        Ok(py.detach(|| self.inner.check_partition_rows(&read))?)
    }

    /// `(what, SQL, EXPLAIN QUERY PLAN lines)` of the statements of the check reads given.
    #[pyo3(signature = (history = None, latest = None, partition_info = None))]
    fn check_query_plans(
        &self,
        py: Python<'_>,
        history: Option<super::checks::CheckHistory>,
        latest: Option<super::checks::LatestChecks>,
        partition_info: Option<super::checks::CheckPartitions>,
    ) -> PyResult<Vec<super::checks::QueryPlan>> {
        Ok(py.detach(|| {
            self.inner
                .check_query_plans(history.as_ref(), latest.as_ref(), partition_info.as_ref())
        })?)
    }
}
