//! Stock's statements of the assets domain, built as SQLAlchemy renders them (condition order,
//! projection), so SQLite returns the same rows in the same order as stock.

use super::AssetFilter;
use crate::store::sql::Where;
use crate::store::Sql;

/// A row of `secondary_indexes` marking a completed data migration.
pub fn secondary_index(name: &str) -> Sql {
    let mut q = Sql::new("SELECT 1 FROM secondary_indexes WHERE secondary_indexes.name = ");
    q.bind(name)
        .push(" AND secondary_indexes.migration_completed IS NOT NULL LIMIT 1");
    q
}

/// `PRAGMA table_xinfo` of a table: `(cid, name, ...)`; no rows when the table is absent.
pub fn table_columns(table: &str) -> Sql {
    // A pragma takes no bound parameters; the name is quoted as an identifier.
    Sql::new(&format!(
        "PRAGMA main.table_xinfo(\"{}\")",
        table.replace('"', "\"\"")
    ))
}

fn key_filter(filter: &AssetFilter) -> Where {
    let mut conds = Where::default();
    if let Some(keys) = &filter.keys {
        conds.and(Sql::is_in("asset_keys.asset_key", keys));
    }
    if let Some(prefix) = &filter.prefix {
        // SQLAlchemy's startswith() without autoescape: LIKE, the prefix's own wildcards live.
        let mut c = Sql::new("(asset_keys.asset_key LIKE ");
        c.bind(prefix.as_str()).push(" || '%')");
        conds.and(c);
    }
    if let Some(cursor) = &filter.cursor {
        conds.and(Sql::compare("asset_keys.asset_key > ", cursor.as_str()));
    }
    conds
}

/// The visible rows of `asset_keys`: stock's indexed `_fetch_raw_asset_rows`, key only or with
/// the record columns.
pub fn asset_rows(filter: &AssetFilter, key_only: bool) -> Sql {
    let mut q = Sql::new(if key_only {
        "SELECT asset_keys.asset_key FROM asset_keys"
    } else {
        "SELECT asset_keys.id, asset_keys.asset_key, asset_keys.last_materialization, \
         asset_keys.last_run_id, asset_keys.asset_details, asset_keys.cached_status_data \
         FROM asset_keys"
    });
    let mut conds = key_filter(filter);
    conds.and(Sql::new(
        "(asset_keys.wipe_timestamp IS NULL OR asset_keys.last_materialization_timestamp > \
         asset_keys.wipe_timestamp)",
    ));
    conds.write_to(&mut q);
    q.push(" ORDER BY asset_keys.asset_key ASC");
    if let Some(limit) = filter.limit {
        q.push(" LIMIT ").bind(limit).push(" OFFSET 0");
    }
    q
}

/// `(asset_key, asset_details)` of the keys (stock's `_get_assets_details`, no visibility
/// filter).
pub fn asset_details(keys: &[String]) -> Sql {
    let mut q =
        Sql::new("SELECT asset_keys.asset_key, asset_keys.asset_details FROM asset_keys WHERE ");
    q.append(&Sql::is_in("asset_keys.asset_key", keys));
    q
}

/// `event_logs.asset_key = ? AND event_logs.timestamp > ? OR event_logs.asset_key != ?` for
/// each key wiped at the given time (stock's `_add_assets_wipe_filter_to_query`).
pub fn after_wipes(conds: &mut Where, keys: &[(String, Option<String>)]) {
    for (key, wiped) in keys {
        if let Some(wiped) = wiped {
            let mut c = Sql::new("(event_logs.asset_key = ");
            c.bind(key.as_str())
                .push(" AND event_logs.timestamp > ")
                .bind(wiped.as_str())
                .push(" OR event_logs.asset_key != ")
                .bind(key.as_str())
                .push(")");
            conds.and(c);
        }
    }
}

/// The latest materialization of each key (after its wipe): stock's backcompat read in
/// `_get_latest_materialization_records`.
pub fn latest_materializations(keys: &[(String, Option<String>)]) -> Sql {
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let mut conds = Where::default();
    conds.and(Sql::is_in("event_logs.asset_key", &names));
    conds.and(Sql::new(
        "event_logs.dagster_event_type = 'ASSET_MATERIALIZATION'",
    ));
    after_wipes(&mut conds, keys);
    let mut q = Sql::new(
        "SELECT event_logs.asset_key, event_logs.id, event_logs.event FROM (SELECT \
         event_logs.asset_key AS asset_key, max(event_logs.id) AS id FROM event_logs",
    );
    conds.write_to(&mut q);
    q.push(
        " GROUP BY event_logs.asset_key) AS latest_event_subquery JOIN event_logs ON \
         event_logs.asset_key = latest_event_subquery.asset_key AND event_logs.id = \
         latest_event_subquery.id",
    );
    q
}
