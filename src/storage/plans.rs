//! Every statement of the domain by name, and its query plan: SQLite's `EXPLAIN QUERY PLAN`
//! on the index shard at hand (`StorageStore.query_plans`, which `tests/assets/
//! test_storage_plans.py` reads on stock-created files too).
//!
//! The plans are pinned below, on a fresh file and on one whose `ANALYZE` statistics say the
//! opposite of the truth (the statements pin their indexes, so a planner following the
//! statistics must not leave them). Every lookup goes through an index of stock's schema. The
//! scans left are what the schema allows: `concurrency_slots` has no index at all (one row per
//! configured slot, bounded by the pools' limits); the reads of every limit and of every asset
//! row read those whole (small) tables; the emptiness probes stop at the first row; the run ids
//! of the queues come from the covering index, not the table. The sorts are of one definition's
//! partitions (no index orders them by id), of one pool's waiting steps and of one asset's
//! events.

use super::admin::{self, AssetIndexColumns};
use super::partitions;
use super::pool_sql::{self as sql, Assign};
use super::{Result, Storage};
use crate::store::{Dialect, Sql, Value};

pub use crate::store::StatementPlan as QueryPlan;

/// Every statement the domain runs, by name, bound to sample values.
pub fn statements() -> Vec<(&'static str, Sql)> {
    let name = Value::Text("fruits".into());
    let key = Value::Text("apple".into());
    let keys = vec![key.clone(), Value::Text("pear".into())];
    let pools = vec!["a".to_owned(), "b".to_owned()];
    let texts = Sql::text_table(&["apple", "pear"]).expect("no NUL");
    vec![
        ("partitions", partitions::keys_of(&name)),
        ("partition page", partitions::page(&name, None, true, 11)),
        (
            "partition page after",
            partitions::page(&name, Some(3), true, 11),
        ),
        (
            "partition page before",
            partitions::page(&name, Some(3), false, 11),
        ),
        ("has partition", partitions::key_exists(&name, &key)),
        ("definition has a key", partitions::any_key(&name)),
        ("stored among", partitions::stored_among(&name, &keys)),
        (
            "insert partitions",
            partitions::insert_rows(&name, &keys.iter().collect::<Vec<_>>()),
        ),
        ("insert texts", partitions::insert_texts(&name, &texts)),
        (
            "insert new texts",
            partitions::insert_new_texts(&name, &texts),
        ),
        ("delete partition", partitions::delete_key(&name, &key)),
        ("reconcile due", sql::limits_missing()),
        ("reconcile", sql::limits_from_slots()),
        ("upsert limit", sql::upsert_limit("a", 3)),
        ("default limit", sql::default_limit("a", 3)),
        ("delete limit", sql::delete_limit("a")),
        ("live slots", sql::live_slots("a")),
        ("retire slots", sql::retire_slots("a", 2)),
        ("purge retired slots", sql::purge_retired_free_slots()),
        ("add slot", sql::add_slot("a")),
        ("assign next", sql::assign_next("a", 2)),
        ("pending step", sql::pending_step("a", "r", "s")),
        ("unassigned slots", sql::has_unassigned_slots("a")),
        (
            "enqueue (claim)",
            sql::enqueue("a", "r", "s", Some(1), Assign::IfSlotFree),
        ),
        (
            "enqueue (given)",
            sql::enqueue("a", "r", "s", None, Assign::Given(true)),
        ),
        ("held slots", sql::held_slots("a", "r", "s")),
        ("take free slot", sql::take_free_slot("a", "r", "s")),
        ("drop retired (run)", sql::drop_retired_slots("r", None)),
        (
            "drop retired (step)",
            sql::drop_retired_slots("r", Some("s")),
        ),
        ("release (run)", sql::release_slots("r", None)),
        ("release (step)", sql::release_slots("r", Some("s"))),
        ("remove pending (run)", sql::remove_pending("r", None)),
        ("remove pending (step)", sql::remove_pending("r", Some("s"))),
        ("run in pools", sql::run_in_pools("r")),
        ("limit keys", sql::limit_keys()),
        ("pool limits", sql::pool_limits()),
        ("slots of", sql::slots_of(&pools)),
        ("limits of", sql::limits_of(&pools)),
        ("pending of", sql::pending_of(&pools)),
        ("pending run ids", sql::pending_run_ids()),
        ("has rows", sql::has_rows("pending_steps")),
        ("revision", admin::revision()),
        (
            "index done",
            crate::assets::query::secondary_index("asset_key_table"),
        ),
        ("event asset keys", admin::event_asset_keys()),
        ("add asset key", admin::add_asset_key("[\"a\"]")),
        ("asset index rows", admin::asset_index_rows()),
        ("latest asset event", admin::latest_asset_event("[\"a\"]")),
        (
            "set index columns",
            admin::set_index_columns(&AssetIndexColumns {
                asset_key: "[\"a\"]".into(),
                last_materialization: None,
                last_materialization_timestamp: None,
                wipe_timestamp: None,
            }),
        ),
    ]
}

/// The statements the domain runs on a database of `dialect`: on PostgreSQL the partitions are
/// added by stock dagster-postgres's upsert instead of SQLite's membership-tested inserts.
pub fn statements_for(dialect: Dialect) -> Vec<(&'static str, Sql)> {
    let mut all = statements();
    if dialect == Dialect::Postgres {
        let name = Value::Text("fruits".into());
        let keys = [Value::Text("apple".into()), Value::Text("pear".into())];
        let texts = Sql::text_table(&["apple", "pear"]).expect("no NUL");
        all.retain(|(what, _)| {
            !matches!(
                *what,
                "definition has a key" | "insert partitions" | "insert texts" | "insert new texts"
            )
        });
        all.push(("upsert texts", partitions::upsert_texts(&name, &texts)));
        all.push((
            "upsert partitions",
            partitions::upsert_rows(&name, &keys.iter().collect::<Vec<_>>()),
        ));
    }
    all
}

impl Storage {
    /// The plan the database picks for each of the domain's statements on this index (SQLite's
    /// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`).
    pub fn query_plans(&self) -> Result<Vec<QueryPlan>> {
        self.read(|c| Ok(c.plans(statements_for(c.dialect()))?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::errors::StorageError;
    use crate::store::{Durability, Shards};

    /// What SQLite does for each statement on stock's schema.
    const EXPECTED: &[(&str, &[&str])] = &[
        (
            "partitions",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "partition page",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "partition page after",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "partition page before",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "has partition",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=? AND partition=?)",
            ],
        ),
        (
            "definition has a key",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=?)",
            ],
        ),
        (
            "stored among",
            &[
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=? AND partition=?)",
            ],
        ),
        (
            "insert partitions",
            &[
                "SCAN 2 CONSTANT ROWS",
            ],
        ),
        ("insert texts", &["SCAN new_keys VIRTUAL TABLE INDEX 1:"]),
        (
            "insert new texts",
            &[
                "SCAN new_keys VIRTUAL TABLE INDEX 1:",
                "CORRELATED SCALAR SUBQUERY 1",
                "SEARCH dynamic_partitions USING COVERING INDEX idx_dynamic_partitions (partitions_def_name=? AND partition=?)",
            ],
        ),
        (
            "delete partition",
            &[
                "SEARCH dynamic_partitions USING INDEX idx_dynamic_partitions (partitions_def_name=? AND partition=?)",
            ],
        ),
        (
            "reconcile due",
            &[
                "SCAN CONSTANT ROW",
                "SCALAR SUBQUERY 1",
                "SCAN concurrency_slots",
                "SCALAR SUBQUERY 2",
                "SCAN concurrency_limits",
            ],
        ),
        (
            "reconcile",
            &[
                "SCAN concurrency_slots",
                "USE TEMP B-TREE FOR GROUP BY",
            ],
        ),
        (
            "upsert limit",
            &[
            ],
        ),
        (
            "default limit",
            &[
            ],
        ),
        (
            "delete limit",
            &[
                "SEARCH concurrency_limits USING INDEX sqlite_autoindex_concurrency_limits_1 (concurrency_key=?)",
            ],
        ),
        (
            "live slots",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "retire slots",
            &[
                "SEARCH concurrency_slots USING INTEGER PRIMARY KEY (rowid=?)",
                "LIST SUBQUERY 1",
                "SCAN concurrency_slots",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "purge retired slots",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "add slot",
            &[
            ],
        ),
        (
            "assign next",
            &[
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=?)",
                "LIST SUBQUERY 1",
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "pending step",
            &[
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=? AND run_id=? AND step_key=?)",
            ],
        ),
        (
            "unassigned slots",
            &[
                "SCAN CONSTANT ROW",
                "SCALAR SUBQUERY 1",
                "SCAN concurrency_slots",
                "SCALAR SUBQUERY 2",
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=?)",
            ],
        ),
        (
            "enqueue (claim)",
            &[
                "SCALAR SUBQUERY 1",
                "SCAN concurrency_slots",
                "SCALAR SUBQUERY 2",
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=?)",
            ],
        ),
        (
            "enqueue (given)",
            &[
            ],
        ),
        (
            "held slots",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "take free slot",
            &[
                "SEARCH concurrency_slots USING INTEGER PRIMARY KEY (rowid=?)",
                "SCALAR SUBQUERY 1",
                "SCAN concurrency_slots",
            ],
        ),
        (
            "drop retired (run)",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "drop retired (step)",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "release (run)",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "release (step)",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "remove pending (run)",
            &[
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key=? AND run_id=?)",
                "LIST SUBQUERY 4",
                "CO-ROUTINE pool_keys",
                "SETUP",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps",
                "RECURSIVE STEP",
                "SCAN pool_keys",
                "CORRELATED SCALAR SUBQUERY 2",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key>?)",
                "SCAN pool_keys",
            ],
        ),
        (
            "remove pending (step)",
            &[
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key=? AND run_id=? AND step_key=?)",
                "LIST SUBQUERY 4",
                "CO-ROUTINE pool_keys",
                "SETUP",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps",
                "RECURSIVE STEP",
                "SCAN pool_keys",
                "CORRELATED SCALAR SUBQUERY 2",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key>?)",
                "SCAN pool_keys",
            ],
        ),
        (
            "run in pools",
            &[
                "SCAN CONSTANT ROW",
                "SCALAR SUBQUERY 5",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key=? AND run_id=?)",
                "LIST SUBQUERY 4",
                "CO-ROUTINE pool_keys",
                "SETUP",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps",
                "RECURSIVE STEP",
                "SCAN pool_keys",
                "CORRELATED SCALAR SUBQUERY 2",
                "SEARCH pending_steps USING COVERING INDEX idx_pending_steps (concurrency_key>?)",
                "SCAN pool_keys",
                "SCALAR SUBQUERY 6",
                "SCAN concurrency_slots",
            ],
        ),
        (
            "limit keys",
            &[
                "SCAN concurrency_limits",
            ],
        ),
        (
            "pool limits",
            &[
                "SCAN concurrency_limits",
            ],
        ),
        (
            "slots of",
            &[
                "SCAN concurrency_slots",
            ],
        ),
        (
            "limits of",
            &[
                "SEARCH concurrency_limits USING INDEX sqlite_autoindex_concurrency_limits_1 (concurrency_key=?)",
            ],
        ),
        (
            "pending of",
            &[
                "SEARCH pending_steps USING INDEX idx_pending_steps (concurrency_key=?)",
            ],
        ),
        (
            "pending run ids",
            &[
                "SCAN pending_steps USING COVERING INDEX idx_pending_steps",
                "USE TEMP B-TREE FOR DISTINCT",
            ],
        ),
        (
            "has rows",
            &[
                "SCAN pending_steps USING COVERING INDEX idx_pending_steps",
            ],
        ),
        (
            "revision",
            &[
                "SCAN alembic_version",
            ],
        ),
        (
            "index done",
            &["SEARCH secondary_indexes USING INDEX sqlite_autoindex_secondary_indexes_1 (name=?)"],
        ),
        (
            "event asset keys",
            &[
                "SEARCH event_logs USING COVERING INDEX idx_events_by_asset (asset_key>?)",
            ],
        ),
        (
            "add asset key",
            &[
            ],
        ),
        (
            "asset index rows",
            &[
                "SCAN asset_keys",
            ],
        ),
        (
            "latest asset event",
            &[
                "SEARCH event_logs USING INDEX idx_events_by_asset (asset_key=?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ],
        ),
        (
            "set index columns",
            &[
                "SEARCH asset_keys USING INDEX sqlite_autoindex_asset_keys_1 (asset_key=?)",
            ],
        ),
    ];

    fn fresh() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let shards = Arc::new(Shards::new(dir.path(), Durability::Off));
        (dir, Storage::on(shards))
    }

    fn assert_pinned(storage: &Storage, probe_plan: &[&str]) {
        let plans = storage.query_plans().unwrap();
        assert_eq!(plans.len(), EXPECTED.len());
        for (got, (name, expected)) in plans.iter().zip(EXPECTED) {
            assert_eq!(got.statement, *name);
            // The emptiness probe stops at the first row whichever way it reads.
            let expected = if *name == "has rows" {
                probe_plan
            } else {
                expected
            };
            assert_eq!(got.plan, expected.to_vec(), "{name}");
        }
    }

    // Pinned for the SQLite the product runs on (the system library Python loads); the
    // bundled build, which only exists to be refused, has a newer planner that words
    // and picks some covering scans differently.
    #[test]
    #[cfg_attr(
        feature = "bundled-sqlite",
        ignore = "plans pinned for the system SQLite"
    )]
    fn plans_on_stock_schema() {
        let (_dir, st) = fresh();
        assert_pinned(
            &st,
            &["SCAN pending_steps USING COVERING INDEX idx_pending_steps"],
        );
    }

    // Pinned for the SQLite the product runs on (the system library Python loads); the
    // bundled build, which only exists to be refused, has a newer planner that words
    // and picks some covering scans differently.
    #[test]
    #[cfg_attr(
        feature = "bundled-sqlite",
        ignore = "plans pinned for the system SQLite"
    )]
    fn plans_survive_misleading_statistics() {
        let (_dir, st) = fresh();
        // Statistics saying every index is useless and the tables tiny: a planner that follows
        // them scans the tables instead.
        st.write(|c| {
            c.plant_statistics(&[
                (
                    "pending_steps",
                    "idx_pending_steps",
                    "1000000 1000000 1000000 1",
                ),
                ("pending_steps", "", "10"),
                (
                    "dynamic_partitions",
                    "idx_dynamic_partitions",
                    "1000000 1000000 1",
                ),
                ("dynamic_partitions", "", "10"),
                (
                    "concurrency_limits",
                    "sqlite_autoindex_concurrency_limits_1",
                    "1000000 1000000",
                ),
                ("concurrency_limits", "", "10"),
                (
                    "event_logs",
                    "idx_events_by_asset",
                    "1000000 1000000 1000000 1",
                ),
                ("event_logs", "", "10"),
                (
                    "asset_keys",
                    "sqlite_autoindex_asset_keys_1",
                    "1000000 1000000",
                ),
                ("asset_keys", "", "10"),
            ])?;
            Ok::<_, StorageError>(())
        })
        .unwrap();
        assert_pinned(&st, &["SCAN pending_steps"]);
    }
}
