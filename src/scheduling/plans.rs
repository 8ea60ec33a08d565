//! Every statement of the domain by name, and its query plan: SQLite's `EXPLAIN QUERY PLAN` on
//! the file at hand (`ScheduleStore.query_plans`, which `tests/scheduling/test_plans.py` reads
//! on stock-created and ANALYZE'd files too).
//!
//! Pinned below on a fresh file and on one whose statistics say the opposite of the truth. The
//! tick reads are index walks in timestamp order that stop at their limit (no sort of an
//! instigator's ticks); every other lookup is a search of an index of stock's schema. The scans
//! left are what the schema allows: the unfiltered state lists read their (small) tables, the
//! migration reads every `jobs` row, and the purge of evaluations by creation time reads the
//! evaluations table (no index on `create_timestamp`).

use super::query::{self, StateTable, TickColumns, TickFilter, TickValues};
use super::{Result, Scheduling};
use crate::storage::plans::QueryPlan;
use crate::store::Sql;

/// Every statement the domain runs, by name, bound to sample values.
pub fn statements() -> Vec<(&'static str, Sql)> {
    let statuses = vec!["SUCCESS".to_owned(), "FAILURE".to_owned()];
    let limited = TickFilter {
        before: None,
        after: None,
        limit: Some(25),
        statuses: Vec::new(),
    };
    let bounded = TickFilter {
        before: Some("2026-01-02 00:00:00.000000".into()),
        after: Some("2026-01-01 00:00:00.000000".into()),
        limit: Some(25),
        statuses: statuses.clone(),
    };
    let tick = TickValues {
        origin_id: "o",
        selector_id: Some("s"),
        status: "STARTED",
        instigator_type: "SENSOR",
        timestamp: "2026-01-01 00:00:00.000000",
        body: "{}",
    };
    let backfill = query::InstigatorBackfill {
        selector_id: "s",
        repository_selector_id: "r",
        status: "RUNNING",
        instigator_type: "SENSOR",
        body: "{}",
        create_timestamp: None,
        update_timestamp: None,
    };
    vec![
        (
            "states",
            query::states(StateTable::Instigators, None, None, None, &[]),
        ),
        (
            "states filtered",
            query::states(
                StateTable::Instigators,
                Some("o"),
                Some("r"),
                Some("SENSOR"),
                &statuses,
            ),
        ),
        (
            "states by type",
            query::states(StateTable::Instigators, None, None, Some("SENSOR"), &[]),
        ),
        (
            "jobs states filtered",
            query::states(StateTable::Jobs, Some("o"), None, Some("SENSOR"), &statuses),
        ),
        ("state", query::state(StateTable::Instigators, "o", "s")),
        ("jobs state", query::state(StateTable::Jobs, "o", "s")),
        ("insert job", query::insert_job("o", "r", "RUNNING", "SENSOR", "{}")),
        (
            "upsert instigator",
            query::upsert_instigator("s", "r", "RUNNING", "SENSOR", "{}", "now"),
        ),
        (
            "update job",
            query::update_job("o", Some("s"), "RUNNING", "{}", "now"),
        ),
        ("delete job", query::delete_job("o")),
        ("jobs of selector", query::jobs_of_selector("s")),
        ("delete instigator", query::delete_instigator("s")),
        ("tick", query::tick(1)),
        ("ticks by ids", query::ticks_by_ids(&[1, 2, 3])),
        (
            "ticks",
            query::ticks(TickColumns::Body, "o", "s", &TickFilter::default()),
        ),
        (
            "ticks limit",
            query::ticks(TickColumns::Body, "o", "s", &limited),
        ),
        (
            "ticks bounded",
            query::ticks(TickColumns::Body, "o", "s", &bounded),
        ),
        (
            "tick summaries limit",
            query::ticks(TickColumns::Summary, "o", "s", &limited),
        ),
        (
            "ticks by origin limit",
            query::ticks_by_origin(TickColumns::Body, "o", &limited),
        ),
        ("batch ticks", query::batch_ticks("s", 25, &[])),
        ("batch ticks statuses", query::batch_ticks("s", 25, &statuses)),
        ("insert tick", query::insert_tick(&tick)),
        ("update tick", query::update_tick(1, &tick)),
        (
            "purge ticks",
            query::purge_ticks("o", Some("s"), "2026-01-01 00:00:00.000000", &[]),
        ),
        (
            "purge ticks statuses",
            query::purge_ticks("o", Some("s"), "2026-01-01 00:00:00.000000", &statuses),
        ),
        (
            "upsert evaluation",
            query::upsert_evaluation(1, "[\"a\"]", "{}", Some(1)),
        ),
        ("evaluations", query::evaluations("[\"a\"]", Some(10), None)),
        (
            "evaluations cursor",
            query::evaluations("[\"a\"]", Some(10), Some(5)),
        ),
        ("evaluations of", query::evaluations_of(1)),
        (
            "purge evaluations",
            query::purge_evaluations("2026-01-01 00:00:00.000000"),
        ),
        ("revision", query::revision()),
        ("index done", query::index_done("x")),
        ("jobs for migration", query::jobs_for_migration()),
        ("backfill instigator", query::backfill_instigator(&backfill)),
        ("set job selector", query::set_job_selector(1, "s")),
        ("set tick selector", query::set_tick_selector("o", "s")),
    ]
}

impl Scheduling {
    pub fn query_plans(&self) -> Result<Vec<QueryPlan>> {
        self.read(|c| {
            statements()
                .into_iter()
                .map(|(statement, sql)| {
                    Ok(QueryPlan {
                        statement,
                        plan: c.explain(&sql)?,
                    })
                })
                .collect()
        })
    }
}
