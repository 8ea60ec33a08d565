//! The assets domain: asset keys and records, asset event reads, partitions and the asset status
//! cache, wipes and asset-check reads, over the event log's index shard (`index.db`), which it
//! shares with the events domain (the rows it reads are the ones `events` writes).
//!
//! Each read is the statement stock's `SqlEventLogStorage` runs for it (`docs/assets-domain.md`
//! has them), in the same order of conditions, so SQLite returns the same rows in the same
//! order; Python builds Dagster's objects from the rows as stock does.

pub mod bindings;
pub mod checks;
pub mod query;

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::{FromPyObject, IntoPyObject};

use crate::errors::StoreError;
use crate::events::query::{OrderBy, RecordsFilter};
use crate::store::{Conn, Db, EventLog, Row, Shards};

pub use query::PartitionEvents;

type Result<T> = std::result::Result<T, StoreError>;

/// A row of `asset_keys` as stock's `_fetch_asset_rows` projects it (`key` only for key reads).
#[derive(Debug, Clone, Default, IntoPyObject)]
pub struct AssetRow {
    pub id: Option<i64>,
    pub asset_key: String,
    pub last_materialization: Option<String>,
    pub last_run_id: Option<String>,
    pub asset_details: Option<String>,
    pub cached_status_data: Option<String>,
}

/// Which rows of `asset_keys` a key read selects (stock's `_apply_asset_filter_to_query`); from
/// Python an `AssetFilterSpec` mapping.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct AssetFilter {
    /// `asset_key IN (...)`; an empty list matches nothing.
    pub keys: Option<Vec<String>>,
    /// `asset_key LIKE prefix || '%'` (stock's unescaped `startswith`).
    pub prefix: Option<String>,
    /// `asset_key > cursor`, the cursor taken as it is.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// The assets domain's view of one event log.
#[derive(Debug)]
pub struct Assets {
    log: EventLog,
}

impl Assets {
    pub fn on(log: impl Into<EventLog>) -> Assets {
        Assets { log: log.into() }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The run shards (the SQLite layout: its directory, its files).
    pub fn shards(&self) -> &Shards {
        self.log.shards().expect("a SQLite event log")
    }

    fn index(&self) -> Result<Arc<Db>> {
        self.log.index_db()
    }

    fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.index()?.read(f)
    }

    /// Whether a data migration of the index is done (stock's `has_secondary_index`).
    pub fn has_secondary_index(&self, name: &str) -> Result<bool> {
        self.read(|c| c.query_opt(&query::secondary_index(name), |_| Ok(())))
            .map(|row| row.is_some())
    }

    /// The columns of a table of the index (stock's `PRAGMA table_xinfo`); empty when absent.
    pub fn table_columns(&self, table: &str) -> Result<Vec<String>> {
        self.read(|c| c.table_columns(table))
    }

    /// Visible rows of `asset_keys` in key order (the indexed path of `_fetch_asset_rows`: wiped
    /// assets without a later materialization are left out by their timestamps).
    pub fn asset_rows(&self, filter: &AssetFilter, key_only: bool) -> Result<Vec<AssetRow>> {
        let statement = query::asset_rows(filter, key_only);
        self.read(|c| {
            c.query(&statement, |r| {
                if key_only {
                    return Ok(AssetRow {
                        asset_key: r.text(0)?,
                        ..Default::default()
                    });
                }
                Ok(AssetRow {
                    id: Some(r.int(0)?),
                    asset_key: r.text(1)?,
                    last_materialization: r.opt_text(2)?,
                    last_run_id: r.opt_text(3)?,
                    asset_details: r.opt_text(4)?,
                    cached_status_data: r.opt_text(5)?,
                })
            })
        })
    }

    /// `(asset_key, asset_details)` of the given keys that have a row (no visibility filter).
    pub fn asset_details(&self, keys: &[String]) -> Result<Vec<(String, Option<String>)>> {
        let statement = query::asset_details(keys);
        self.read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.opt_text(1)?))))
    }

    /// The latest materialization event of each key, after the key's wipe when it has one:
    /// `(asset_key, storage id, event)` (stock's backcompat read of `event_logs`).
    pub fn latest_materializations(
        &self,
        keys: &[(String, Option<String>)],
    ) -> Result<Vec<(String, i64, String)>> {
        let statement = query::latest_materializations(keys);
        self.read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.int(1)?, r.text(2)?))))
    }

    /// `(storage id, event)` of the index's events an `EventRecordsFilter` selects, by id.
    pub fn event_records(
        &self,
        filter: &RecordsFilter,
        limit: Option<i64>,
        ascending: bool,
    ) -> Result<Vec<(i64, String)>> {
        let statement = filter.select(true, OrderBy::Id, ascending, limit);
        self.read(|c| c.query(&statement, |r| Ok((r.int(0)?, r.text(1)?))))
    }

    fn write<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        self.index()?.write(f)
    }

    /// `(partition, storage id)` of the latest event of each partition (one event type).
    pub fn latest_ids_by_partition(&self, spec: &PartitionEvents) -> Result<Vec<(String, i64)>> {
        let statement = query::latest_ids_by_partition(spec);
        self.read(|c| c.query(&statement, |r| Ok((r.text(1)?, r.int(2)?))))
    }

    /// The partitions with a materialization after the wipe, between the cursors.
    pub fn materialized_partitions(&self, spec: &PartitionEvents) -> Result<Vec<String>> {
        let statement = query::materialized_partitions(spec);
        self.read(|c| c.query(&statement, |r| r.text(0)))
    }

    /// `(partition, key, value)` of the tags `tag_keys` of each partition's latest event.
    pub fn latest_tags_by_partition(
        &self,
        spec: &PartitionEvents,
        tag_keys: &[String],
    ) -> Result<Vec<(String, String, String)>> {
        let statement = query::latest_tags_by_partition(spec, tag_keys);
        self.read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?))))
    }

    /// `(partition, run_id, storage id)` of the partitions whose latest planned event has no
    /// later materialization, in stock's order (both latest-event reads on one connection).
    pub fn attempts_without_materializations(
        &self,
        spec: &PartitionEvents,
    ) -> Result<Vec<(String, String, i64)>> {
        let planned_q = query::latest_events_by_partition(spec, PLANNED);
        let done_q = query::latest_events_by_partition(spec, MATERIALIZATION);
        let row = |r: &Row<'_>| Ok((r.text(1)?, r.text(2)?, r.int(3)?));
        let (planned, done) =
            self.read(|c| Ok((c.query(&planned_q, row)?, c.query(&done_q, row)?)))?;
        // Both reads group by partition: one row per partition on each side.
        let done: HashMap<String, i64> = done.into_iter().map(|(p, _, id)| (p, id)).collect();
        Ok(planned
            .into_iter()
            .filter(|(partition, _, id)| done.get(partition).is_none_or(|mat| id >= mat))
            .collect())
    }

    /// `(partition, data version)` of each partition's latest event carrying one.
    pub fn partition_data_versions(
        &self,
        asset_key: &str,
        partitions: &[String],
        before_id: Option<i64>,
        after_id: Option<i64>,
    ) -> Result<Vec<(String, Option<String>)>> {
        let statement = query::partition_data_versions(asset_key, partitions, before_id, after_id);
        self.read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.opt_text(1)?))))
    }

    /// Store (or clear, with None) an asset's cached partition status.
    pub fn set_cached_status(&self, asset_key: &str, value: Option<&str>) -> Result<()> {
        let statement = query::set_cached_status(asset_key, value);
        self.write(|c| c.execute(&statement).map(|_| ()))
    }

    /// `(key, value, event id)` of an asset's event tags (see `query::event_tags`).
    pub fn event_tags(
        &self,
        asset_key: &str,
        filter_tags: &[(String, query::TagMatch)],
        after_wipe: Option<&str>,
        event_id: Option<i64>,
    ) -> Result<Vec<(String, String, i64)>> {
        let statement = query::event_tags(asset_key, filter_tags, after_wipe, event_id);
        self.read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.text(1)?, r.int(2)?))))
    }

    /// `(id, run_id, asset_key, partition, timestamp)` of asset events.
    pub fn summary_records(&self, filter: &query::SummaryFilter) -> Result<Vec<SummaryRow>> {
        let statement = query::summary_records(filter);
        self.read(|c| {
            c.query(&statement, |r| {
                Ok((
                    r.int(0)?,
                    r.text(1)?,
                    r.text(2)?,
                    r.opt_text(3)?,
                    r.text(4)?,
                ))
            })
        })
    }

    /// `(asset_key, partition)` of a run's asset events of the given types (any when empty),
    /// from its shard; nothing, and no file created, for a run without one.
    pub fn asset_partitions_for_run(
        &self,
        run_id: &str,
        types: &[String],
    ) -> Result<Vec<(String, Option<String>)>> {
        if self.log.check_run_id(run_id).is_err() || !self.log.run_exists(run_id)? {
            return Ok(Vec::new());
        }
        let statement = query::asset_partitions_for_run(run_id, types);
        self.log
            .run_db(run_id)?
            .read(|c| c.query(&statement, |r| Ok((r.text(0)?, r.opt_text(1)?))))
    }

    /// The serialized event of each key's latest freshness state change.
    pub fn freshness_states(&self, keys: &[String]) -> Result<Vec<String>> {
        let statement = query::freshness_states(keys);
        self.read(|c| c.query(&statement, |r| r.text(0)))
    }

    /// Wipe an asset as stock's SQLite storage does, in one transaction: its `asset_keys` row
    /// marked (the wipe time in `asset_details` and `wipe_timestamp`, record and status cache
    /// cleared), its check executions and its index events deleted.
    pub fn wipe_asset(&self, asset_key: &str, details: &str, wipe_timestamp: &str) -> Result<()> {
        let checks = query::delete_where_asset("asset_check_executions", asset_key);
        let events = query::delete_where_asset("event_logs", asset_key);
        self.write(|c| {
            let columns = c.table_columns("asset_keys")?;
            c.execute(&query::wipe_asset_row(
                asset_key,
                details,
                wipe_timestamp,
                &columns,
            ))?;
            // Files from before asset checks (stock's `has_table` gate) have no such table.
            if !c.tables_present(&["asset_check_executions"])?.is_empty() {
                c.execute(&checks)?;
            }
            c.execute(&events)?;
            Ok(())
        })
    }

    /// `EXPLAIN QUERY PLAN` of each statement of the domain, for sample arguments:
    /// `(what, SQL, plan lines)`.
    pub fn query_plans(&self) -> Result<Vec<QueryPlan>> {
        let statements = query::samples();
        self.read(|c| {
            statements
                .into_iter()
                .map(|(what, statement)| c.plan(what, &statement))
                .collect()
        })
    }
}

const PLANNED: &str = "ASSET_MATERIALIZATION_PLANNED";
const MATERIALIZATION: &str = "ASSET_MATERIALIZATION";

/// `(storage id, run_id, asset_key, partition, timestamp text)`.
pub type SummaryRow = (i64, String, String, Option<String>, String);

pub use crate::store::QueryPlan;
