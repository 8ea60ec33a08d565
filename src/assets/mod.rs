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

use std::sync::Arc;

use pyo3::{FromPyObject, IntoPyObject};

use crate::errors::StoreError;
use crate::events::query::{OrderBy, RecordsFilter};
use crate::store::{Conn, Db, Shards};

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
    shards: Arc<Shards>,
}

impl Assets {
    pub fn on(shards: Arc<Shards>) -> Assets {
        Assets { shards }
    }

    pub fn shards(&self) -> &Shards {
        &self.shards
    }

    fn index(&self) -> Result<Arc<Db>> {
        self.shards.index()
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
        self.read(|c| c.query(&query::table_columns(table), |r| r.text(1)))
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
}
