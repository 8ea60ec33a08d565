//! Every statement of the config domain by name and its query plan on the file at hand
//! (`ConfigStore.query_plans`, which `tests/config/test_config_plans.py` reads on stock-created
//! and `ANALYZE`d files too), pinned below line by line.
//!
//! Lookups by key go through stock's unique indexes (`idx_kvs_keys_unique`, the heartbeats'
//! `UNIQUE (daemon_type)` autoindex, which the upsert's conflict target uses). The scans are of
//! tables of one row per daemon type (`daemon_heartbeats`: read whole, as stock reads it) and of
//! one row (`instance_info`).

use super::{statements as st, Config, Result};
use crate::store::Sql;

pub use crate::store::StatementPlan as QueryPlan;

/// Every statement the domain runs, by name, bound to sample values.
pub fn statements() -> Vec<(&'static str, Sql)> {
    let keys: Vec<String> = vec!["a".into(), "b".into()];
    let pairs: Vec<(String, String)> = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
    vec![
        (
            "upsert heartbeat",
            st::upsert_heartbeat("SCHEDULER", Some("d"), "2026-01-01 00:00:00.000000", "{}"),
        ),
        ("heartbeats", st::heartbeats()),
        ("delete heartbeats", st::delete_heartbeats()),
        ("cursor values", st::cursor_values(&keys)),
        ("upsert cursor values", st::upsert_cursor_values(&pairs)),
        ("run storage id", st::run_storage_id()),
        ("insert run storage id", st::insert_run_storage_id("id")),
    ]
}

impl Config {
    /// The plan SQLite picks for each of the domain's statements on this file.
    pub fn query_plans(&self) -> Result<Vec<QueryPlan>> {
        self.db().read(|c| c.plans(statements()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::errors::StoreError;
    use crate::runs::Runs;
    use crate::store::Durability;

    /// What SQLite does for each statement on stock's schema.
    const EXPECTED: &[(&str, &[&str])] = &[
        ("upsert heartbeat", &[]),
        ("heartbeats", &["SCAN daemon_heartbeats"]),
        ("delete heartbeats", &[]),
        (
            "cursor values",
            &["SEARCH kvs USING INDEX idx_kvs_keys_unique (key=?)"],
        ),
        ("upsert cursor values", &["SCAN 2 CONSTANT ROWS"]),
        ("run storage id", &["SCAN instance_info"]),
        ("insert run storage id", &[]),
    ];

    fn fresh() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let runs = Runs::open(&path.to_string_lossy(), Durability::Off).unwrap();
        (dir, Config::on(Arc::new(runs)))
    }

    fn assert_pinned(config: &Config) {
        let plans = config.query_plans().unwrap();
        assert_eq!(plans.len(), EXPECTED.len());
        for (got, (name, expected)) in plans.iter().zip(EXPECTED) {
            assert_eq!(got.statement, *name);
            assert_eq!(got.plan, expected.to_vec(), "{name}");
        }
    }

    #[test]
    fn plans_on_stock_schema() {
        let (_dir, config) = fresh();
        assert_pinned(&config);
    }

    #[test]
    fn plans_survive_misleading_statistics() {
        let (_dir, config) = fresh();
        // Statistics saying the key index is useless and the table tiny: a planner following
        // them would scan kvs for every key.
        config
            .db()
            .write(|c| {
                c.plant_statistics(&[
                    ("kvs", "idx_kvs_keys_unique", "1000000 1000000"),
                    ("kvs", "", "10"),
                    (
                        "daemon_heartbeats",
                        "sqlite_autoindex_daemon_heartbeats_1",
                        "1000000 1000000",
                    ),
                    ("daemon_heartbeats", "", "10"),
                ])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_pinned(&config);
    }
}
