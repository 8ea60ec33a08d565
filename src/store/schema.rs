//! Which schema a database file must have, and how a fresh file gets it.
//!
//! Dagster versions its schema with alembic. The store creates files at exactly the revision stock
//! dagster 1.13.27 stamps, opens files at that revision as they are, and refuses any other: an
//! older one needs stock's `dagster instance migrate`, an unknown one comes from a newer Dagster.

pub use super::schema_events::EVENTS_DDL;
pub use super::schema_runs::RUNS_DDL;
pub use super::schema_schedules::SCHEDULES_DDL;

/// The revision stock dagster 1.13.27 stamps on the databases it creates.
pub const HEAD_REVISION: &str = "29b539ebc72a";

/// Every revision of dagster 1.13.27's alembic history other than the head.
pub const OLDER_REVISIONS: &[&str] = &[
    "567bc23fd1ac",
    "da7cd32b690d",
    "8f8dba68fd3b",
    "9fe9e746268c",
    "1ebdd7a9686f",
    "3b1e175a2be3",
    "c63a27054f08",
    "727ffe943a9f",
    "c39c047fa021",
    "5c18fd3c2957",
    "07f83cc13695",
    "c34498c29964",
    "c9159e740d7e",
    "224640159acf",
    "3e0770016702",
    "9483999bad92",
    "f3e43ff66603",
    "375e95bad550",
    "b32a4f3036d2",
    "b22f16781a7c",
    "140198fdfe65",
    "5ae53cd67d0c",
    "f5bac2c36fad",
    "a0234163e0e3",
    "942138e33bf9",
    "493871843165",
    "8ccbed5060b8",
    "4ea2b1f6f67b",
    "0da417ae1b81",
    "a914fb6ccdf9",
    "6d366a41b4be",
    "3e71cf573ba6",
    "521d4caca7ad",
    "ba4050312958",
    "3ca619834060",
    "b4e0c470acb3",
    "6e1f65d78b92",
    "3778078a3582",
    "72686963a802",
    "f0367d611631",
    "7cba9eeaaf1d",
    "3b529ad30626",
    "45fa602c43dc",
    "ddcc6d7244c6",
    "7f2b1a4ca7a5",
    "1a2d72f6b24e",
    "7b8304b4429d",
    "e784752027a6",
    "29a8e9d74220",
    "f4b6a4885876",
    "05844c702676",
    "f78059038d01",
    "42add02bf976",
    "f4eed4c26e2c",
    "17154c80d885",
    "9c5f00e80ef2",
    "b37316bf5584",
    "130b087bc274",
    "d538c9496c01",
    "8d66aa722f94",
    "54666da3db5c",
    "5b467f7af3f6",
    "16e3115a602a",
    "c892b3fe0a9f",
    "d32d1d6de793",
    "b601eb913efa",
    "721d858e1dda",
    "6860f830e40c",
    "5e139331e376",
    "a00dd8d936a1",
    "958a9495162d",
    "6df03f4b1efb",
    "16689497301f",
    "e62c379ac8f4",
    "d9092588866f",
    "701913684cb4",
    "d3a4c9e87af3",
    "5771160a95ad",
    "ec80dd91891a",
    "46b412388816",
    "284a732df317",
    "63d7a8ec641a",
    "1aca709bba64",
    "16e3655b4d9b",
    "6b7fb194ff9c",
    "7e2f3204cf8e",
    "f495c27d5019",
];

/// A database file's schema: its DDL in creation order and the data migrations a fresh file
/// starts with already done (stock marks them in `secondary_indexes` right after creating it).
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub ddl: &'static [&'static str],
    /// A table whose presence means Dagster has used the file before.
    pub marker_table: &'static str,
    /// Tables stock adds to an existing file when missing, with their DDL.
    pub backfilled_tables: &'static [(&'static str, &'static str)],
    pub data_migrations: &'static [&'static str],
}

pub static RUNS_SCHEMA: Schema = Schema {
    name: "runs",
    ddl: RUNS_DDL,
    marker_table: "runs",
    backfilled_tables: &[(
        "instance_info",
        "CREATE TABLE instance_info (\n\tid INTEGER NOT NULL, \n\trun_storage_id TEXT, \n\tPRIMARY KEY (id)\n)",
    )],
    data_migrations: &[
        "run_partitions",
        "run_repo_label_tags",
        "bulk_action_types",
        "run_backfill_id",
        "backfill_job_name_and_tags",
        "backfill_end_timestamp",
        "run_start_end_overwritten",
    ],
};

/// The event log's index shard (`history/runs/index.db`). Stock marks its asset-key data
/// migrations done when it creates the file; per-run shards get none.
pub static EVENT_INDEX_SCHEMA: Schema = Schema {
    name: "event log index",
    ddl: EVENTS_DDL,
    marker_table: "event_logs",
    backfilled_tables: &[],
    data_migrations: &["asset_key_table", "asset_key_index_columns"],
};

/// One run's event log shard (`history/runs/<run_id>.db`).
pub static EVENT_SHARD_SCHEMA: Schema = Schema {
    name: "event log shard",
    ddl: EVENTS_DDL,
    marker_table: "event_logs",
    backfilled_tables: &[],
    data_migrations: &[],
};

/// The schedule storage (`schedules/schedules.db`). Stock runs its two data migrations (the
/// selector ids of instigators, then of ticks) right after creating the file, so a fresh file
/// has both marks, in that order.
pub static SCHEDULES_SCHEMA: Schema = Schema {
    name: "schedules",
    ddl: SCHEDULES_DDL,
    marker_table: "job_ticks",
    backfilled_tables: &[],
    data_migrations: &["schedule_jobs_selector_id", "schedule_ticks_selector_id"],
};

/// What a database file holds, as far as the schema check is concerned.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// No Dagster table: the store creates the schema.
    Fresh,
    /// At the head revision; `missing` lists backfilled tables to add.
    Current { missing: Vec<&'static str> },
}

/// Classify a file from its table names and alembic revision; errors for files never to touch.
pub fn classify(
    path: &str,
    schema: &Schema,
    tables: &[String],
    revision: Option<String>,
) -> Result<State, crate::errors::StoreError> {
    use crate::errors::StoreError;
    let has = |name: &str| tables.iter().any(|t| t == name);
    match revision {
        Some(rev) if rev == HEAD_REVISION => Ok(State::Current {
            missing: schema
                .backfilled_tables
                .iter()
                .filter(|(t, _)| !has(t))
                .map(|(t, _)| *t)
                .collect(),
        }),
        Some(rev) if OLDER_REVISIONS.contains(&rev.as_str()) => Err(StoreError::OutdatedRevision {
            path: path.to_owned(),
            found: rev,
            head: HEAD_REVISION,
        }),
        Some(rev) => Err(StoreError::UnknownRevision {
            path: path.to_owned(),
            found: rev,
        }),
        None if has(schema.marker_table) => Err(StoreError::Unstamped {
            path: path.to_owned(),
        }),
        None => Ok(State::Fresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::StoreError;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_file_is_fresh() {
        assert_eq!(
            classify("x", &RUNS_SCHEMA, &[], None).unwrap(),
            State::Fresh
        );
    }

    #[test]
    fn head_revision_is_current_and_reports_missing_tables() {
        let state = classify(
            "x",
            &RUNS_SCHEMA,
            &names(&["runs", "alembic_version"]),
            Some(HEAD_REVISION.into()),
        )
        .unwrap();
        assert_eq!(
            state,
            State::Current {
                missing: vec!["instance_info"]
            }
        );
    }

    #[test]
    fn unknown_revision_is_refused() {
        let err = classify(
            "x",
            &RUNS_SCHEMA,
            &names(&["runs"]),
            Some("ffffffffffff".into()),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRevision { .. }));
        assert!(err.to_string().contains("ffffffffffff"));
    }

    #[test]
    fn older_revision_asks_for_migration() {
        let err = classify(
            "x",
            &RUNS_SCHEMA,
            &names(&["runs"]),
            Some("5771160a95ad".into()),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::OutdatedRevision { .. }));
        assert!(err.to_string().contains("dagster instance migrate"));
    }

    #[test]
    fn tables_without_revision_are_refused() {
        let err = classify("x", &RUNS_SCHEMA, &names(&["runs"]), None).unwrap_err();
        assert!(matches!(err, StoreError::Unstamped { .. }));
    }

    #[test]
    fn ddl_ends_with_alembic_table_and_has_every_runs_index() {
        assert!(RUNS_DDL
            .last()
            .unwrap()
            .starts_with("CREATE TABLE alembic_version"));
        for index in [
            "idx_run_tags",
            "idx_run_tags_run_idx",
            "idx_run_partitions",
            "idx_runs_by_job",
            "idx_run_status",
            "idx_run_range",
            "idx_runs_by_backfill_id",
        ] {
            assert!(
                RUNS_DDL
                    .iter()
                    .any(|s| s.contains(&format!("INDEX {index} "))),
                "{index}"
            );
        }
    }
}
