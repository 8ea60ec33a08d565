//! `dagster_rs._native.RunStore`: the runs domain as seen from Python.
//!
//! Arguments are copied out of Python objects first, then every database call runs with the GIL
//! released, and results are converted back once it is held again.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::query::{BackfillFilter, Bucket, RunsFilter, RunsQuery, TagValue};
use super::{
    GroupRow, NewBackfill, NewRun, PartitionRun, RunBodyRow, RunRecord, Runs, StatusUpdate,
    TagChanges,
};
use crate::core::{self, Source};
use crate::dbapi::DbapiConnection;
use crate::errors::RunsError;
use crate::store::Durability;

#[derive(Clone)]
enum TagValueArg {
    One(String),
    Many(Vec<String>),
}

// Not derived: a derived enum reports every variant's failure as one `TypeError`, where a value
// stock's `sqlite3` cannot bind (a lone surrogate) raises that value's own error (`Arg`).
impl<'a, 'py> FromPyObject<'a, 'py> for TagValueArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PyString>() {
            Ok(text) => Ok(TagValueArg::One(text.to_str()?.to_owned())),
            Err(_) => Ok(TagValueArg::Many(obj.extract()?)),
        }
    }
}

type TagsArg = Option<Vec<(String, TagValueArg)>>;

fn tags(arg: TagsArg) -> Option<Vec<(String, TagValue)>> {
    arg.map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    TagValueArg::One(s) => TagValue::One(s),
                    TagValueArg::Many(vs) => TagValue::Many(vs),
                };
                (k, v)
            })
            .collect()
    })
}

#[derive(Clone, FromPyObject)]
#[pyo3(from_item_all)]
struct RunsFilterArg {
    run_ids: Option<Vec<String>>,
    job_name: Option<String>,
    statuses: Option<Vec<String>>,
    tags: TagsArg,
    snapshot_id: Option<String>,
    updated_after: Option<String>,
    updated_before: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    exclude_subruns: bool,
}

impl From<RunsFilterArg> for RunsFilter {
    fn from(a: RunsFilterArg) -> Self {
        RunsFilter {
            run_ids: a.run_ids,
            job_name: a.job_name,
            statuses: a.statuses,
            tags: tags(a.tags),
            snapshot_id: a.snapshot_id,
            updated_after: a.updated_after,
            updated_before: a.updated_before,
            created_after: a.created_after,
            created_before: a.created_before,
            exclude_subruns: a.exclude_subruns,
        }
    }
}

/// New tags of a run as `update_run_tags` takes them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct TagsUpdate {
    body: String,
    partition: Option<String>,
    partition_set: Option<String>,
    update_timestamp: String,
    tags: TagChanges,
}

#[derive(Clone, FromPyObject)]
#[pyo3(from_item_all)]
struct BucketArg {
    kind: String,
    key: Option<String>,
    values: Vec<String>,
    limit: Option<i64>,
}

impl TryFrom<BucketArg> for Bucket {
    type Error = RunsError;

    fn try_from(a: BucketArg) -> Result<Self, Self::Error> {
        match (a.kind.as_str(), a.key) {
            ("job", _) => Ok(Bucket::Job {
                names: a.values,
                limit: a.limit,
            }),
            ("tag", Some(key)) => Ok(Bucket::Tag {
                key,
                values: a.values,
                limit: a.limit,
            }),
            (kind, _) => Err(RunsError::InvalidArgument(format!(
                "bucket kind must be 'job', or 'tag' with a key; got {kind:?}"
            ))),
        }
    }
}

#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct BackfillFilterArg {
    statuses: Option<Vec<String>>,
    created_after: Option<String>,
    created_before: Option<String>,
    backfill_ids: Option<Vec<String>>,
    job_name: Option<String>,
    selector_id: Option<String>,
    tags: TagsArg,
}

impl From<BackfillFilterArg> for BackfillFilter {
    fn from(a: BackfillFilterArg) -> Self {
        BackfillFilter {
            statuses: a.statuses,
            created_after: a.created_after,
            created_before: a.created_before,
            backfill_ids: a.backfill_ids,
            job_name: a.job_name,
            selector_id: a.selector_id,
            tags: tags(a.tags),
        }
    }
}

/// A run list query (`RunQuerySpec`): the filter, cursor, limit, order and bucketing.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RunQueryArg {
    filters: RunsFilterArg,
    cursor: Option<String>,
    limit: Option<i64>,
    order_by: Option<String>,
    ascending: bool,
    bucket: Option<BucketArg>,
}

impl RunQueryArg {
    /// The filter and bucket, converted (a bucket of an unknown kind is refused here).
    fn parts(&self) -> PyResult<(RunsFilter, Option<Bucket>)> {
        let bucket = self
            .bucket
            .as_ref()
            .map(|b| Bucket::try_from(b.clone()))
            .transpose()?;
        Ok((RunsFilter::from(self.filters.clone()), bucket))
    }

    fn with<'a>(&'a self, filter: &'a RunsFilter, bucket: Option<&'a Bucket>) -> RunsQuery<'a> {
        RunsQuery {
            filter: Some(filter),
            cursor: self.cursor.as_deref(),
            limit: self.limit,
            order_by: self.order_by.as_deref(),
            ascending: self.ascending,
            bucket,
            backfill_id_indexed: false,
        }
    }
}

/// Dagster's run storage (`runs.db`) in its own SQLite schema.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct RunStore {
    pub(crate) inner: Arc<Runs>,
}

impl RunStore {
    pub(crate) fn from_shared(inner: Arc<Runs>) -> Self {
        RunStore { inner }
    }
}

#[pymethods]
impl RunStore {
    /// The runs store of `runs.db` at `db_path`, the process's shared one.
    #[new]
    #[pyo3(signature = (db_path, durability = "full"))]
    fn new(py: Python<'_>, db_path: std::path::PathBuf, durability: &str) -> PyResult<Self> {
        let durability: Durability = durability
            .parse()
            .map_err(pyo3::exceptions::PyValueError::new_err)?;
        let source = Source::Sqlite(db_path);
        let runs = py.detach(|| core::runs(&source, durability))?;
        Ok(RunStore::from_shared(runs))
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.path().to_owned()
    }

    /// Insert one run (a `NewRunSpec` mapping).
    fn add_run(&self, py: Python<'_>, run: Arg<NewRun>) -> PyResult<()> {
        let run = run.0;
        Ok(py.detach(|| self.inner.add_run(&run))?)
    }

    /// How run queries choose their access: `mode` "auto" (default), "drive", "walk" or
    /// "scan" (the covering scan of `idx_run_range` wherever it serves), and the candidate
    /// count under which a driver is taken at once (None: the default, 2,000). For tests and
    /// diagnosis.
    #[pyo3(signature = (mode = "auto", small = None))]
    fn set_planner(&self, mode: &str, small: Option<i64>) -> PyResult<()> {
        let small = small.unwrap_or(super::plan::SMALL);
        let mode = match mode {
            "auto" => super::plan::Mode::Auto,
            "drive" => super::plan::Mode::Drive,
            "walk" => super::plan::Mode::Walk,
            "scan" => super::plan::Mode::Scan,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "planner mode must be 'auto', 'drive', 'walk' or 'scan', got {other:?}"
                )))
            }
        };
        self.inner.set_planner(super::plan::Planner { mode, small });
        Ok(())
    }

    /// `(what, SQL, EXPLAIN QUERY PLAN lines)` of every statement a run list or count with
    /// these filters may run, whatever the data.
    #[pyo3(signature = (filters, limit, ascending = false, cursor = false))]
    fn query_plans(
        &self,
        py: Python<'_>,
        filters: Arg<RunsFilterArg>,
        limit: Option<i64>,
        ascending: bool,
        cursor: bool,
    ) -> PyResult<Vec<super::QueryPlan>> {
        let filters = filters.0;
        let filter = RunsFilter::from(filters);
        Ok(py.detach(|| self.inner.query_plans(&filter, limit, ascending, cursor))?)
    }

    /// The same for the tag, run group and backfill statements, with sample arguments.
    fn other_query_plans(&self, py: Python<'_>) -> PyResult<Vec<super::QueryPlan>> {
        Ok(py.detach(|| self.inner.other_query_plans())?)
    }

    /// The strategy the latest run list of this store took: "run ids", "driver", "walk",
    /// "walk, then driver", "walk, then covering scan" (", and beyond its window"), "covering
    /// scan". For tests and diagnosis.
    fn last_strategy(&self) -> &'static str {
        self.inner.last_strategy()
    }

    /// The file's indexes by the role each plays in run queries (`RunIndexesSpec`; None where
    /// the file has no index for it), read from the file when not known.
    fn run_indexes(&self, py: Python<'_>) -> PyResult<super::plan::RunIndexes> {
        Ok(py.detach(|| self.inner.run_indexes())?)
    }

    /// Forget the file's indexes; the next query reads them again. For after a schema change
    /// made by other connections (stock's alembic `upgrade`); changes made by other processes
    /// are noticed without it.
    fn reload_layout(&self, py: Python<'_>) {
        py.detach(|| self.inner.reload_layout());
    }

    /// Insert many runs in one transaction (bulk loads): each a `NewRunSpec` mapping.
    fn add_runs(&self, py: Python<'_>, runs: Arg<Vec<NewRun>>) -> PyResult<()> {
        let runs = runs.0;
        Ok(py.detach(|| self.inner.add_runs(&runs))?)
    }

    /// The records of the runs a `RunQuerySpec` selects.
    fn run_records(&self, py: Python<'_>, query: Arg<RunQueryArg>) -> PyResult<Vec<RunRecord>> {
        let query = query.0;
        let (filter, bucket) = query.parts()?;
        Ok(py.detach(|| self.inner.run_records(query.with(&filter, bucket.as_ref())))?)
    }

    /// `(run_id, body, status)` of the runs a `RunQuerySpec` selects.
    fn run_bodies(&self, py: Python<'_>, query: Arg<RunQueryArg>) -> PyResult<Vec<RunBodyRow>> {
        let query = query.0;
        let (filter, bucket) = query.parts()?;
        Ok(py.detach(|| self.inner.run_bodies(query.with(&filter, bucket.as_ref())))?)
    }

    /// The ids of the runs a `RunQuerySpec` selects.
    fn run_ids(&self, py: Python<'_>, query: Arg<RunQueryArg>) -> PyResult<Vec<String>> {
        let query = query.0;
        let (filter, bucket) = query.parts()?;
        Ok(py.detach(|| self.inner.run_ids(query.with(&filter, bucket.as_ref())))?)
    }

    fn runs_count(&self, py: Python<'_>, filters: Arg<RunsFilterArg>) -> PyResult<i64> {
        let filters = filters.0;
        let filter = RunsFilter::from(filters);
        Ok(py.detach(|| {
            self.inner.runs_count(RunsQuery {
                filter: Some(&filter),
                ..Default::default()
            })
        })?)
    }

    fn run_by_id(
        &self,
        py: Python<'_>,
        run_id: String,
    ) -> PyResult<Option<(Option<String>, String)>> {
        Ok(py.detach(|| self.inner.run_by_id(&run_id))?)
    }

    fn has_run(&self, py: Python<'_>, run_id: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_run(&run_id))?)
    }

    /// A run's status change: its new body, status, times and tag writes (`StatusUpdateSpec`).
    fn update_run_status(
        &self,
        py: Python<'_>,
        run_id: String,
        update: Arg<StatusUpdate>,
    ) -> PyResult<()> {
        let update = update.0;
        Ok(py.detach(|| self.inner.update_run_status(&run_id, &update))?)
    }

    /// New tags of a run: its new body, partition columns and tag writes (`TagsUpdateSpec`).
    fn update_run_tags(
        &self,
        py: Python<'_>,
        run_id: String,
        update: Arg<TagsUpdate>,
    ) -> PyResult<()> {
        let update = update.0;
        Ok(py.detach(|| {
            self.inner.update_run_tags(
                &run_id,
                &update.body,
                update.partition.as_deref(),
                update.partition_set.as_deref(),
                &update.update_timestamp,
                &update.tags,
            )
        })?)
    }

    fn replace_run_body(
        &self,
        py: Python<'_>,
        run_id: String,
        body: String,
        tags: Vec<(String, String)>,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.inner.replace_run_body(&run_id, &body, &tags))?)
    }

    fn delete_run(&self, py: Python<'_>, run_id: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_run(&run_id))?)
    }

    fn run_group_rows(&self, py: Python<'_>, root_run_id: String) -> PyResult<Vec<GroupRow>> {
        Ok(py.detach(|| self.inner.run_group_rows(&root_run_id))?)
    }

    #[pyo3(signature = (keys, value_prefix, limit))]
    fn run_tags(
        &self,
        py: Python<'_>,
        keys: Vec<String>,
        value_prefix: Option<String>,
        limit: Option<i64>,
    ) -> PyResult<Vec<(String, String)>> {
        Ok(py.detach(|| self.inner.run_tags(&keys, value_prefix.as_deref(), limit))?)
    }

    fn run_tag_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(py.detach(|| self.inner.run_tag_keys())?)
    }

    fn partition_data(
        &self,
        py: Python<'_>,
        filters: Arg<RunsFilterArg>,
    ) -> PyResult<Vec<PartitionRun>> {
        let filters = filters.0;
        let filter = RunsFilter::from(filters);
        Ok(py.detach(|| self.inner.partition_data(&filter))?)
    }

    fn has_snapshot(&self, py: Python<'_>, snapshot_id: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_snapshot(&snapshot_id))?)
    }

    fn add_snapshot(
        &self,
        py: Python<'_>,
        snapshot_id: String,
        body: &[u8],
        snapshot_type: String,
    ) -> PyResult<()> {
        let body = body.to_vec();
        Ok(py.detach(|| self.inner.add_snapshot(&snapshot_id, body, &snapshot_type))?)
    }

    fn get_snapshot<'py>(
        &self,
        py: Python<'py>,
        snapshot_id: String,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let body = py.detach(|| self.inner.get_snapshot(&snapshot_id))?;
        Ok(body.map(|b| PyBytes::new(py, &b)))
    }

    fn add_backfill(&self, py: Python<'_>, backfill: Arg<NewBackfill>) -> PyResult<()> {
        let backfill = backfill.0;
        Ok(py.detach(|| self.inner.add_backfill(&backfill))?)
    }

    fn update_backfill(
        &self,
        py: Python<'_>,
        key: String,
        status: String,
        body: String,
    ) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.update_backfill(&key, &status, &body))?)
    }

    fn get_backfill(&self, py: Python<'_>, key: String) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.get_backfill(&key))?)
    }

    #[pyo3(signature = (filters, cursor, limit))]
    fn backfills(
        &self,
        py: Python<'_>,
        filters: Arg<Option<BackfillFilterArg>>,
        cursor: Option<String>,
        limit: Option<i64>,
    ) -> PyResult<Vec<String>> {
        let filters = filters.0;
        let filter = filters.map(BackfillFilter::from);
        Ok(py.detach(|| {
            self.inner
                .backfills(filter.as_ref(), cursor.as_deref(), limit)
        })?)
    }

    #[pyo3(signature = (filters))]
    fn backfills_count(
        &self,
        py: Python<'_>,
        filters: Arg<Option<BackfillFilterArg>>,
    ) -> PyResult<i64> {
        let filters = filters.0;
        let filter = filters.map(BackfillFilter::from);
        Ok(py.detach(|| self.inner.backfills_count(filter.as_ref()))?)
    }

    /// A DB-API connection to `runs.db` for stock Python code (the methods of domains that are
    /// switched off run stock's SQL on the core's connections).
    fn connect(&self, py: Python<'_>) -> PyResult<DbapiConnection> {
        let lease = py.detach(|| self.inner.lease())?;
        Ok(DbapiConnection::new(lease))
    }

    fn has_built_index(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.has_built_index(&name))?)
    }

    fn mark_index_built(&self, py: Python<'_>, name: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.mark_index_built(&name))?)
    }

    fn alembic_version(&self, py: Python<'_>) -> PyResult<(Option<String>, &'static str)> {
        Ok(py.detach(|| self.inner.alembic_version())?)
    }

    fn wipe(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.wipe())?)
    }

    fn dispose(&self, py: Python<'_>) {
        py.detach(|| self.inner.dispose())
    }
}
