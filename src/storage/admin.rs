//! Storage admin of the index (docs/assets-domain.md §9.2-§9.5): its alembic revision, the
//! marks of completed data migrations, and the statements of stock's two data migrations
//! (`reindex_events` rebuilds `asset_keys` from the events, `reindex_assets` its index columns).
//! Deciding what each asset row gets is Dagster's own Python over deserialized events; the
//! reads and the writes are these.

use pyo3::{FromPyObject, IntoPyObject};

use super::{Result, Storage};
use crate::store::Sql;

/// An `asset_keys` row as `migrate_asset_keys_index_columns` reads it.
#[derive(Debug, Clone, PartialEq, Eq, IntoPyObject)]
pub struct AssetIndexRow {
    pub asset_key: Option<String>,
    pub asset_details: Option<String>,
    pub last_materialization: Option<String>,
}

/// The index columns of one asset, as the migration writes them (timestamps as stock's naive
/// UTC text).
#[derive(Debug, Clone, FromPyObject)]
#[pyo3(from_item_all)]
pub struct AssetIndexColumns {
    pub asset_key: String,
    pub last_materialization: Option<String>,
    pub last_materialization_timestamp: Option<String>,
    pub wipe_timestamp: Option<String>,
}

pub fn revision() -> Sql {
    Sql::new("SELECT alembic_version.version_num FROM alembic_version")
}

/// Every asset key of the index's events, once each, in key order.
pub fn event_asset_keys() -> Sql {
    let mut q = Sql::new("SELECT event_logs.asset_key FROM event_logs");
    q.pin("idx_events_by_asset")
        .push(" WHERE event_logs.asset_key IS NOT NULL GROUP BY event_logs.asset_key");
    q
}

pub fn add_asset_key(key: &str) -> Sql {
    let mut q = Sql::new("INSERT INTO asset_keys (asset_key) VALUES (");
    q.bind(key).push(") ON CONFLICT (asset_key) DO NOTHING");
    q
}

pub fn asset_index_rows() -> Sql {
    Sql::new(
        "SELECT asset_keys.asset_key, asset_keys.asset_details, asset_keys.last_materialization \
         FROM asset_keys",
    )
}

/// The latest event of an asset by event time, of any type (stock's migration takes it as the
/// asset's last materialization when the row has none).
pub fn latest_asset_event(key: &str) -> Sql {
    let mut q = Sql::new("SELECT event_logs.event FROM event_logs");
    q.pin("idx_events_by_asset")
        .push(" WHERE event_logs.asset_key = ")
        .bind(key)
        .push(" ORDER BY event_logs.timestamp DESC LIMIT 1");
    q
}

pub fn set_index_columns(row: &AssetIndexColumns) -> Sql {
    let mut q = Sql::new("UPDATE asset_keys");
    q.pin("sqlite_autoindex_asset_keys_1")
        .push(" SET last_materialization = ")
        .bind(row.last_materialization.clone())
        .push(", last_materialization_timestamp = ")
        .bind(row.last_materialization_timestamp.clone())
        .push(", wipe_timestamp = ")
        .bind(row.wipe_timestamp.clone())
        .push(" WHERE asset_keys.asset_key = ")
        .bind(row.asset_key.as_str());
    q
}

impl Storage {
    /// The index's alembic revision, if stamped.
    pub fn revision(&self) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_opt(&revision(), |r| r.text(0))?))
    }

    /// Whether a data migration of the index is done (stock's `has_secondary_index`).
    pub fn index_done(&self, name: &str) -> Result<bool> {
        let q = crate::assets::query::secondary_index(name);
        self.read(|c| Ok(c.query_opt(&q, |_| Ok(()))?.is_some()))
    }

    /// Mark a data migration of the index done (stock's `enable_secondary_index`).
    pub fn mark_index_done(&self, name: &str) -> Result<()> {
        self.write(|c| Ok(c.mark_migration_done(name)?))
    }

    pub fn event_asset_keys(&self) -> Result<Vec<String>> {
        self.read(|c| Ok(c.query(&event_asset_keys(), |r| r.text(0))?))
    }

    /// Add the asset keys not in `asset_keys` yet, in one transaction; the number added.
    pub fn add_asset_keys(&self, keys: &[String]) -> Result<usize> {
        self.write(|c| {
            let mut added = 0;
            for key in keys {
                added += c.execute(&add_asset_key(key))?;
            }
            Ok(added)
        })
    }

    pub fn asset_index_rows(&self) -> Result<Vec<AssetIndexRow>> {
        self.read(|c| {
            Ok(c.query(&asset_index_rows(), |r| {
                Ok(AssetIndexRow {
                    asset_key: r.opt_text(0)?,
                    asset_details: r.opt_text(1)?,
                    last_materialization: r.opt_text(2)?,
                })
            })?)
        })
    }

    pub fn latest_asset_event(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_opt(&latest_asset_event(key), |r| r.text(0))?))
    }

    /// Write the index columns of the given assets, in one transaction.
    pub fn set_index_columns(&self, rows: &[AssetIndexColumns]) -> Result<()> {
        self.write(|c| {
            for row in rows {
                c.execute(&set_index_columns(row))?;
            }
            Ok(())
        })
    }
}
