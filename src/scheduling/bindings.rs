//! `dagster_rs._native.ScheduleStore`: the scheduling domain as seen from Python, used by
//! `dagster_rs.storage.schedule_storage.RustScheduleStorage`. Values cross as named fields
//! (dicts); every call releases the GIL while it touches the database.

use std::sync::Arc;

use crate::args::Arg;
use pyo3::prelude::*;

use super::query::TickFilter;
use super::{
    BatchTick, EvaluationInput, InstigatorBackfillRow, JobMigrationRow, Layout, Scheduling,
    StateRow, StoredEvaluation, StoredTick, TickRow, TickSelector, TickSummary,
};
use crate::store::StatementPlan as QueryPlan;

#[pyclass(frozen, module = "dagster_rs._native")]
pub struct ScheduleStore {
    pub(crate) inner: Arc<Scheduling>,
}

impl ScheduleStore {
    pub(crate) fn from_shared(inner: Arc<Scheduling>) -> Self {
        ScheduleStore { inner }
    }
}

fn filter(
    before: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
    statuses: Option<Vec<String>>,
) -> TickFilter {
    TickFilter {
        before,
        after,
        limit,
        statuses: statuses.unwrap_or_default(),
    }
}

#[pymethods]
impl ScheduleStore {
    /// The `schedules.db` this store reads and writes.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().to_owned()
    }

    /// Which of stock's optional tables the file has (`ScheduleLayoutSpec`).
    fn layout(&self) -> Layout {
        self.inner.layout()
    }

    /// The plan SQLite picks for each of the domain's statements on this file.
    fn query_plans(&self, py: Python<'_>) -> PyResult<Vec<QueryPlan>> {
        Ok(py.detach(|| self.inner.query_plans())?)
    }

    // -- instigator state ---------------------------------------------------------------

    /// Serialized states, filtered as stock filters them (None / empty: no filter).
    #[pyo3(signature = (repository_origin_id = None, repository_selector_id = None, instigator_type = None, statuses = None))]
    fn instigator_states(
        &self,
        py: Python<'_>,
        repository_origin_id: Option<String>,
        repository_selector_id: Option<String>,
        instigator_type: Option<String>,
        statuses: Option<Vec<String>>,
    ) -> PyResult<Vec<String>> {
        let statuses = statuses.unwrap_or_default();
        Ok(py.detach(|| {
            self.inner.instigator_states(
                repository_origin_id.as_deref(),
                repository_selector_id.as_deref(),
                instigator_type.as_deref(),
                &statuses,
            )
        })?)
    }

    fn instigator_state(
        &self,
        py: Python<'_>,
        origin_id: String,
        selector_id: String,
    ) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.instigator_state(&origin_id, &selector_id))?)
    }

    /// Add a state (`StateRowSpec`); `now` is stock's update time text.
    fn add_instigator_state(
        &self,
        py: Python<'_>,
        state: Arg<StateRow>,
        now: String,
    ) -> PyResult<()> {
        let state = state.0;
        Ok(py.detach(|| self.inner.add_instigator_state(&state, &now))?)
    }

    fn update_instigator_state(
        &self,
        py: Python<'_>,
        state: Arg<StateRow>,
        now: String,
    ) -> PyResult<()> {
        let state = state.0;
        Ok(py.detach(|| self.inner.update_instigator_state(&state, &now))?)
    }

    fn delete_instigator_state(
        &self,
        py: Python<'_>,
        origin_id: String,
        selector_id: String,
    ) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_instigator_state(&origin_id, &selector_id))?)
    }

    // -- ticks --------------------------------------------------------------------------

    fn tick(&self, py: Python<'_>, tick_id: i64) -> PyResult<StoredTick> {
        Ok(py.detach(|| self.inner.tick(tick_id))?)
    }

    fn ticks_by_ids(&self, py: Python<'_>, tick_ids: Vec<i64>) -> PyResult<Vec<StoredTick>> {
        Ok(py.detach(|| self.inner.ticks_by_ids(&tick_ids))?)
    }

    /// One instigator's ticks, newest first (`StoredTickSpec`s).
    #[pyo3(signature = (origin_id, selector_id, *, before = None, after = None, limit = None, statuses = None))]
    #[allow(clippy::too_many_arguments)]
    fn ticks(
        &self,
        py: Python<'_>,
        origin_id: String,
        selector_id: String,
        before: Option<String>,
        after: Option<String>,
        limit: Option<i64>,
        statuses: Option<Vec<String>>,
    ) -> PyResult<Vec<StoredTick>> {
        let f = filter(before, after, limit, statuses);
        Ok(py.detach(|| self.inner.ticks(&origin_id, &selector_id, &f))?)
    }

    #[pyo3(signature = (origin_id, selector_id, *, before = None, after = None, limit = None, statuses = None))]
    #[allow(clippy::too_many_arguments)]
    fn tick_summaries(
        &self,
        py: Python<'_>,
        origin_id: String,
        selector_id: String,
        before: Option<String>,
        after: Option<String>,
        limit: Option<i64>,
        statuses: Option<Vec<String>>,
    ) -> PyResult<Vec<TickSummary>> {
        let f = filter(before, after, limit, statuses);
        Ok(py.detach(|| self.inner.tick_summaries(&origin_id, &selector_id, &f))?)
    }

    /// The newest `limit` ticks of each selector, ties in time included (`BatchTickSpec`s).
    #[pyo3(signature = (selector_ids, limit = None, statuses = None))]
    fn batch_ticks(
        &self,
        py: Python<'_>,
        selector_ids: Vec<String>,
        limit: Option<i64>,
        statuses: Option<Vec<String>>,
    ) -> PyResult<Vec<BatchTick>> {
        let statuses = statuses.unwrap_or_default();
        Ok(py.detach(|| self.inner.batch_ticks(&selector_ids, limit, &statuses))?)
    }

    /// Store a tick (`TickRowSpec`); returns its id.
    fn create_tick(&self, py: Python<'_>, tick: Arg<TickRow>) -> PyResult<i64> {
        let tick = tick.0;
        Ok(py.detach(|| self.inner.create_tick(&tick))?)
    }

    fn update_tick(&self, py: Python<'_>, tick_id: i64, tick: Arg<TickRow>) -> PyResult<()> {
        let tick = tick.0;
        Ok(py.detach(|| self.inner.update_tick(tick_id, &tick))?)
    }

    /// Delete an instigator's ticks older than `before`; returns how many.
    #[pyo3(signature = (origin_id, selector_id, before, statuses = None))]
    fn purge_ticks(
        &self,
        py: Python<'_>,
        origin_id: String,
        selector_id: String,
        before: String,
        statuses: Option<Vec<String>>,
    ) -> PyResult<usize> {
        let statuses = statuses.unwrap_or_default();
        Ok(py.detach(|| {
            self.inner
                .purge_ticks(&origin_id, &selector_id, &before, &statuses)
        })?)
    }

    // -- evaluations --------------------------------------------------------------------

    fn add_evaluations(
        &self,
        py: Python<'_>,
        evaluation_id: i64,
        evaluations: Arg<Vec<EvaluationInput>>,
    ) -> PyResult<()> {
        let evaluations = evaluations.0;
        Ok(py.detach(|| self.inner.add_evaluations(evaluation_id, &evaluations))?)
    }

    #[pyo3(signature = (asset_key, limit, cursor = None))]
    fn evaluations(
        &self,
        py: Python<'_>,
        asset_key: String,
        limit: Option<i64>,
        cursor: Option<i64>,
    ) -> PyResult<Vec<StoredEvaluation>> {
        Ok(py.detach(|| self.inner.evaluations(&asset_key, limit, cursor))?)
    }

    fn evaluations_of(
        &self,
        py: Python<'_>,
        evaluation_id: i64,
    ) -> PyResult<Vec<StoredEvaluation>> {
        Ok(py.detach(|| self.inner.evaluations_of(evaluation_id))?)
    }

    fn purge_evaluations(&self, py: Python<'_>, before: String) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.purge_evaluations(&before))?)
    }

    // -- admin --------------------------------------------------------------------------

    fn wipe(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.wipe())?)
    }

    fn revision(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(py.detach(|| self.inner.revision())?)
    }

    fn index_done(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        Ok(py.detach(|| self.inner.index_done(&name))?)
    }

    fn mark_index_done(&self, py: Python<'_>, name: String) -> PyResult<()> {
        Ok(py.detach(|| self.inner.mark_index_done(&name))?)
    }

    fn jobs_for_migration(&self, py: Python<'_>) -> PyResult<Vec<JobMigrationRow>> {
        Ok(py.detach(|| self.inner.jobs_for_migration())?)
    }

    fn backfill_instigators(
        &self,
        py: Python<'_>,
        rows: Arg<Vec<InstigatorBackfillRow>>,
    ) -> PyResult<()> {
        let rows = rows.0;
        Ok(py.detach(|| self.inner.backfill_instigators(&rows))?)
    }

    fn set_tick_selectors(
        &self,
        py: Python<'_>,
        selectors: Arg<Vec<TickSelector>>,
    ) -> PyResult<()> {
        let selectors = selectors.0;
        Ok(py.detach(|| self.inner.set_tick_selectors(&selectors))?)
    }

    /// Close the idle connections (they reopen on use).
    fn dispose(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(|| inner.dispose());
    }

    /// Forget the file's indexes; the next statement that pins one reads them again (after
    /// stock's alembic `upgrade` of the file).
    fn reload_layout(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(|| inner.reload_layout());
    }
}
