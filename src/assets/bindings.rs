//! `dagster_rs._native.AssetStore`: the assets domain as seen from Python, used by
//! `dagster_rs.storage.assets_domain.AssetsDomain`.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;

use super::query::{SummaryFilter, TagMatch};
use super::{AssetFilter, AssetRow, Assets, PartitionEvents, QueryPlan, SummaryRow};
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
        filter: Arg<AssetFilter>,
        key_only: bool,
    ) -> PyResult<Vec<AssetRow>> {
        let filter = filter.0;
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
        filter: Arg<RecordsFilter>,
        limit: Option<i64>,
        ascending: bool,
    ) -> PyResult<Vec<(i64, String)>> {
        let filter = filter.0;
        Ok(py.detach(|| self.inner.event_records(&filter, limit, ascending))?)
    }

    /// `(partition, storage id)` of each partition's latest event of the spec's one type.
    fn latest_ids_by_partition(
        &self,
        py: Python<'_>,
        spec: Arg<PartitionEvents>,
    ) -> PyResult<Vec<(String, i64)>> {
        let spec = spec.0;
        Ok(py.detach(|| self.inner.latest_ids_by_partition(&spec))?)
    }

    fn materialized_partitions(
        &self,
        py: Python<'_>,
        spec: Arg<PartitionEvents>,
    ) -> PyResult<Vec<String>> {
        let spec = spec.0;
        Ok(py.detach(|| self.inner.materialized_partitions(&spec))?)
    }

    /// `(partition, key, value)` of the given tags of each partition's latest event.
    fn latest_tags_by_partition(
        &self,
        py: Python<'_>,
        spec: Arg<PartitionEvents>,
        tag_keys: Vec<String>,
    ) -> PyResult<Vec<(String, String, String)>> {
        let spec = spec.0;
        Ok(py.detach(|| self.inner.latest_tags_by_partition(&spec, &tag_keys))?)
    }

    /// `(partition, run_id, storage id)` of planned partitions not materialized since.
    fn attempts_without_materializations(
        &self,
        py: Python<'_>,
        spec: Arg<PartitionEvents>,
    ) -> PyResult<Vec<(String, String, i64)>> {
        let spec = spec.0;
        Ok(py.detach(|| self.inner.attempts_without_materializations(&spec))?)
    }

    #[pyo3(signature = (asset_key, partitions, before_id = None, after_id = None))]
    fn partition_data_versions(
        &self,
        py: Python<'_>,
        asset_key: String,
        partitions: Vec<String>,
        before_id: Option<i64>,
        after_id: Option<i64>,
    ) -> PyResult<Vec<(String, Option<String>)>> {
        Ok(py.detach(|| {
            self.inner
                .partition_data_versions(&asset_key, &partitions, before_id, after_id)
        })?)
    }

    fn set_cached_status(
        &self,
        py: Python<'_>,
        asset_key: String,
        value: Option<String>,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.inner.set_cached_status(&asset_key, value.as_deref()))?)
    }

    /// `(key, value, event id)` of the asset's event tags.
    #[pyo3(signature = (asset_key, filter_tags, after_wipe = None, event_id = None))]
    fn event_tags(
        &self,
        py: Python<'_>,
        asset_key: String,
        filter_tags: Vec<(String, TagMatch)>,
        after_wipe: Option<String>,
        event_id: Option<i64>,
    ) -> PyResult<Vec<(String, String, i64)>> {
        Ok(py.detach(|| {
            self.inner
                .event_tags(&asset_key, &filter_tags, after_wipe.as_deref(), event_id)
        })?)
    }

    /// `(storage id, run_id, asset_key, partition, timestamp)` of the asset events selected.
    fn summary_records(
        &self,
        py: Python<'_>,
        filter: Arg<SummaryFilter>,
    ) -> PyResult<Vec<SummaryRow>> {
        let filter = filter.0;
        Ok(py.detach(|| self.inner.summary_records(&filter))?)
    }

    fn asset_partitions_for_run(
        &self,
        py: Python<'_>,
        run_id: String,
        event_types: Vec<String>,
    ) -> PyResult<Vec<(String, Option<String>)>> {
        Ok(py.detach(|| self.inner.asset_partitions_for_run(&run_id, &event_types))?)
    }

    fn freshness_states(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.freshness_states(&keys))?)
    }

    /// Wipe an asset: its row marked with `details` (serialized `AssetDetails`) and
    /// `wipe_timestamp` (naive-UTC text), its check executions and index events deleted.
    fn wipe_asset(
        &self,
        py: Python<'_>,
        asset_key: String,
        details: String,
        wipe_timestamp: String,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.inner.wipe_asset(&asset_key, &details, &wipe_timestamp))?)
    }

    /// `(what, SQL, EXPLAIN QUERY PLAN lines)` of each statement of the domain on sample
    /// arguments, planned on this file.
    fn query_plans(&self, py: Python<'_>) -> PyResult<Vec<QueryPlan>> {
        Ok(py.detach(|| self.inner.query_plans())?)
    }

    /// A page of one check's executions (`CheckExecutionRowSpec`s), newest first.
    fn check_history(
        &self,
        py: Python<'_>,
        read: Arg<super::checks::CheckHistory>,
    ) -> PyResult<Vec<super::checks::CheckExecutionRow>> {
        let read = read.0;
        Ok(py.detach(|| self.inner.check_history(&read))?)
    }

    /// The latest execution of each (asset key, check name) of the lists' cross product.
    fn latest_check_executions(
        &self,
        py: Python<'_>,
        read: Arg<super::checks::LatestChecks>,
    ) -> PyResult<Vec<super::checks::CheckExecutionRow>> {
        let read = read.0;
        Ok(py.detach(|| self.inner.latest_check_executions(&read))?)
    }

    /// The latest evaluated execution of one check per partition (`CheckPartitionRowSpec`s).
    fn check_partition_rows(
        &self,
        py: Python<'_>,
        read: Arg<super::checks::CheckPartitions>,
    ) -> PyResult<Vec<super::checks::CheckPartitionRow>> {
        let read = read.0;
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
    ) -> PyResult<Vec<QueryPlan>> {
        Ok(py.detach(|| {
            self.inner
                .check_query_plans(history.as_ref(), latest.as_ref(), partition_info.as_ref())
        })?)
    }
}
