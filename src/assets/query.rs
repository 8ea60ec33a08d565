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
    // Pinned: after ANALYZE of a small table SQLite scans it; a key lookup never should.
    let mut q = Sql::new("SELECT asset_keys.asset_key, asset_keys.asset_details FROM asset_keys");
    q.pin("sqlite_autoindex_asset_keys_1").push(" WHERE ");
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

/// One asset's events of some types, as the partition reads restrict them (stock's
/// `_latest_event_ids_by_partition_subquery` and `get_materialized_partitions`); from Python a
/// `PartitionEventsSpec` mapping.
#[derive(Debug, Clone, Default, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct PartitionEvents {
    pub asset_key: String,
    pub event_types: Vec<String>,
    /// `partition IN (...)` when given (an empty list matches nothing).
    pub partitions: Option<Vec<String>>,
    pub before_id: Option<i64>,
    pub after_id: Option<i64>,
    /// The asset's last wipe as stock binds it: only later events count.
    pub after_wipe: Option<String>,
}

impl PartitionEvents {
    fn wipe(&self) -> Vec<(String, Option<String>)> {
        vec![(self.asset_key.clone(), self.after_wipe.clone())]
    }
}

/// `(dagster_event_type, partition, max(id))` per type and partition: the latest event of each
/// partition (stock's `_latest_event_ids_by_partition_subquery`), conditions in its order.
pub fn latest_ids_by_partition(spec: &PartitionEvents) -> Sql {
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "event_logs.asset_key = ",
        spec.asset_key.as_str(),
    ));
    conds.and(Sql::new("event_logs.partition IS NOT NULL"));
    conds.and(Sql::is_in(
        "event_logs.dagster_event_type",
        &spec.event_types,
    ));
    if let Some(partitions) = &spec.partitions {
        conds.and(Sql::is_in("event_logs.partition", partitions));
    }
    if let Some(id) = spec.before_id {
        conds.and(Sql::compare("event_logs.id < ", id));
    }
    if let Some(id) = spec.after_id {
        conds.and(Sql::compare("event_logs.id > ", id));
    }
    after_wipes(&mut conds, &spec.wipe());
    let mut q = Sql::new(
        "SELECT event_logs.dagster_event_type AS dagster_event_type, event_logs.partition AS \
         partition, max(event_logs.id) AS id FROM event_logs",
    );
    conds.write_to(&mut q);
    q.push(" GROUP BY event_logs.dagster_event_type, event_logs.partition");
    q
}

/// The partitions with a materialization (stock's `get_materialized_partitions`: its cursors
/// apply only when truthy).
pub fn materialized_partitions(spec: &PartitionEvents) -> Sql {
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "event_logs.asset_key = ",
        spec.asset_key.as_str(),
    ));
    conds.and(Sql::new("event_logs.partition IS NOT NULL"));
    conds.and(Sql::new(
        "event_logs.dagster_event_type = 'ASSET_MATERIALIZATION'",
    ));
    after_wipes(&mut conds, &spec.wipe());
    if let Some(id) = spec.after_id.filter(|id| *id != 0) {
        conds.and(Sql::compare("event_logs.id > ", id));
    }
    if let Some(id) = spec.before_id.filter(|id| *id != 0) {
        conds.and(Sql::compare("event_logs.id < ", id));
    }
    let mut q = Sql::new("SELECT event_logs.partition, max(event_logs.id) FROM event_logs");
    conds.write_to(&mut q);
    q.push(" GROUP BY event_logs.partition");
    q
}

/// `(partition, key, value)` of the latest event's tags per partition, for `tag_keys`.
pub fn latest_tags_by_partition(spec: &PartitionEvents, tag_keys: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT latest_event_ids_by_partition_subquery.partition, asset_event_tags.\"key\", \
         asset_event_tags.value FROM (",
    );
    q.append(&latest_ids_by_partition(spec)).push(
        ") AS latest_event_ids_by_partition_subquery JOIN asset_event_tags ON \
         asset_event_tags.event_id = latest_event_ids_by_partition_subquery.id WHERE ",
    );
    q.append(&Sql::is_in("asset_event_tags.\"key\"", tag_keys));
    q
}

/// `(dagster_event_type, partition, run_id, id)` of the latest event per type and partition
/// (the latest events of `get_latest_asset_partition_materialization_attempts_without_...`).
pub fn latest_events_by_partition(spec: &PartitionEvents, event_type: &str) -> Sql {
    let mut q = Sql::new(
        "SELECT latest_events_subquery.dagster_event_type, latest_events_subquery.partition, \
         latest_events_subquery.run_id, latest_events_subquery.id FROM (SELECT \
         event_logs.dagster_event_type AS dagster_event_type, event_logs.partition AS partition, \
         event_logs.run_id AS run_id, event_logs.id AS id FROM (",
    );
    q.append(&latest_ids_by_partition(spec)).push(
        ") AS latest_event_ids_by_partition_subquery JOIN event_logs ON event_logs.id = \
         latest_event_ids_by_partition_subquery.id) AS latest_events_subquery WHERE \
         latest_events_subquery.dagster_event_type = ",
    );
    q.bind(event_type);
    q
}

/// `(partition, data version)` of each partition's latest materialization or observation that
/// carries one, between the storage ids (stock's `_get_partition_data_versions`).
pub fn partition_data_versions(
    asset_key: &str,
    partitions: &[String],
    before_id: Option<i64>,
    after_id: Option<i64>,
) -> Sql {
    let mut events = Where::default();
    events.and(Sql::new(
        "(event_logs.dagster_event_type = 'ASSET_MATERIALIZATION' OR \
         event_logs.dagster_event_type = 'ASSET_OBSERVATION')",
    ));
    events.and(Sql::compare("event_logs.asset_key = ", asset_key));
    events.and(Sql::is_in("event_logs.partition", partitions));
    let mut versions = Where::default();
    versions.and(Sql::new(
        "asset_event_tags.\"key\" = 'dagster/data_version'",
    ));
    versions.and(Sql::compare("asset_event_tags.asset_key = ", asset_key));
    if let Some(id) = before_id {
        events.and(Sql::compare("event_logs.id < ", id));
        versions.and(Sql::compare("asset_event_tags.event_id < ", id));
    }
    if let Some(id) = after_id {
        events.and(Sql::compare("event_logs.id > ", id));
        versions.and(Sql::compare("asset_event_tags.event_id > ", id));
    }
    let mut q = Sql::new(
        "SELECT data_version_by_partition_subquery.partition, \
         data_version_by_partition_subquery.value FROM (SELECT partition_subquery.partition AS \
         partition, data_version_subquery.value AS value, rank() OVER (PARTITION BY \
         partition_subquery.partition ORDER BY partition_subquery.id DESC) AS rank FROM (SELECT \
         event_logs.partition AS partition, event_logs.id AS id FROM event_logs",
    );
    events.write_to(&mut q);
    q.push(
        ") AS partition_subquery JOIN (SELECT asset_event_tags.event_id AS event_id, \
         asset_event_tags.value AS value FROM asset_event_tags",
    );
    versions.write_to(&mut q);
    q.push(
        ") AS data_version_subquery ON data_version_subquery.event_id = partition_subquery.id) \
         AS data_version_by_partition_subquery WHERE data_version_by_partition_subquery.rank = 1 \
         ORDER BY data_version_by_partition_subquery.rank ASC",
    );
    q
}

/// `UPDATE asset_keys SET cached_status_data = ?` of one key (NULL wipes it).
pub fn set_cached_status(asset_key: &str, value: Option<&str>) -> Sql {
    let mut q = Sql::new("UPDATE asset_keys SET cached_status_data = ");
    q.bind(value)
        .push(" WHERE asset_keys.asset_key = ")
        .bind(asset_key);
    q
}

/// A tag a `get_event_tags_for_asset` search requires: one value, or any of several.
#[derive(Debug, Clone, pyo3::FromPyObject)]
pub enum TagMatch {
    One(String),
    Any(Vec<String>),
}

/// `(key, value, event_id)` of an asset's event tags, of the events that carry every filter tag
/// (stock's self-joins, one per tag), after the wipe, of one event when given.
pub fn event_tags(
    asset_key: &str,
    filter_tags: &[(String, TagMatch)],
    after_wipe: Option<&str>,
    event_id: Option<i64>,
) -> Sql {
    // One asset's tags: pinned to its index, which statistics of a few hot assets would trade
    // for a scan of every asset's tags.
    let mut q = Sql::new(
        "SELECT asset_event_tags.\"key\", asset_event_tags.value, asset_event_tags.event_id \
         FROM asset_event_tags",
    );
    if filter_tags.is_empty() {
        q.pin("idx_asset_event_tags");
    }
    let mut conds = Where::default();
    if filter_tags.is_empty() {
        conds.and(Sql::compare("asset_event_tags.asset_key = ", asset_key));
    }
    for (i, (key, value)) in filter_tags.iter().enumerate() {
        let alias = format!("asset_event_tags_subquery_{}", i + 1);
        q.push(&format!(
            " JOIN (SELECT asset_event_tags.id AS id, asset_event_tags.event_id AS event_id, \
             asset_event_tags.asset_key AS asset_key, asset_event_tags.\"key\" AS \"key\", \
             asset_event_tags.value AS value, asset_event_tags.event_timestamp AS \
             event_timestamp FROM asset_event_tags) AS {alias} ON asset_event_tags.event_id = \
             {alias}.event_id AND {alias}.asset_key = "
        ))
        .bind(asset_key)
        .push(&format!(" AND {alias}.\"key\" = "))
        .bind(key.as_str());
        match value {
            TagMatch::One(v) => {
                q.push(&format!(" AND {alias}.value = ")).bind(v.as_str());
            }
            TagMatch::Any(vs) => {
                q.push(" AND ")
                    .append(&Sql::is_in(&format!("{alias}.value"), vs));
            }
        }
    }
    if let Some(wiped) = after_wipe {
        conds.and(Sql::compare("asset_event_tags.event_timestamp > ", wiped));
    }
    if let Some(id) = event_id {
        conds.and(Sql::compare("asset_event_tags.event_id = ", id));
    }
    conds.write_to(&mut q);
    q
}

/// What `get_asset_event_summary_records` selects; from Python a `SummaryFilterSpec` mapping.
#[derive(Debug, Clone, Default, pyo3::FromPyObject)]
#[pyo3(from_item_all)]
pub struct SummaryFilter {
    pub event_type: String,
    /// None: any asset (`asset_key IS NOT NULL`).
    pub asset_key: Option<String>,
    pub after_wipe: Option<String>,
    pub run_id: Option<String>,
    /// `id IN (...)` when given (an empty list matches nothing).
    pub storage_ids: Option<Vec<i64>>,
    pub after_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
    pub ascending: bool,
}

/// `(id, run_id, asset_key, partition, timestamp)` of asset events (stock's
/// `get_asset_event_summary_records`, on the index).
pub fn summary_records(f: &SummaryFilter) -> Sql {
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "event_logs.dagster_event_type = ",
        f.event_type.as_str(),
    ));
    match &f.asset_key {
        Some(key) => {
            conds.and(Sql::compare("event_logs.asset_key = ", key.as_str()));
            if let Some(wiped) = &f.after_wipe {
                conds.and(Sql::compare("event_logs.timestamp > ", wiped.as_str()));
            }
        }
        None => conds.and(Sql::new("event_logs.asset_key IS NOT NULL")),
    }
    if let Some(run_id) = &f.run_id {
        conds.and(Sql::compare("event_logs.run_id = ", run_id.as_str()));
    }
    if let Some(ids) = &f.storage_ids {
        if ids.is_empty() {
            conds.and(Sql::new("1 != 1"));
        } else {
            let mut c = Sql::new("event_logs.id IN ");
            c.bind_list(ids);
            conds.and(c);
        }
    }
    if let Some(id) = f.after_id {
        conds.and(Sql::compare("event_logs.id > ", id));
    }
    if let Some(id) = f.before_id {
        conds.and(Sql::compare("event_logs.id < ", id));
    }
    let mut q = Sql::new(
        "SELECT event_logs.id, event_logs.run_id, event_logs.asset_key, event_logs.partition, \
         event_logs.timestamp FROM event_logs",
    );
    conds.write_to(&mut q);
    q.push(if f.ascending {
        " ORDER BY event_logs.id ASC"
    } else {
        " ORDER BY event_logs.id DESC"
    });
    if let Some(limit) = f.limit {
        q.push(" LIMIT ").bind(limit).push(" OFFSET 0");
    }
    q
}

/// `DISTINCT (asset_key, partition)` of a run's asset events (a run shard), of some types.
pub fn asset_partitions_for_run(run_id: &str, types: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT DISTINCT event_logs.asset_key, event_logs.partition FROM event_logs WHERE \
         event_logs.run_id = ",
    );
    q.bind(run_id).push(" AND event_logs.asset_key IS NOT NULL");
    if !types.is_empty() {
        q.push(" AND ")
            .append(&Sql::is_in("event_logs.dagster_event_type", types));
    }
    q
}

/// The event of each key's latest freshness state change (stock's
/// `get_freshness_state_records`).
pub fn freshness_states(keys: &[String]) -> Sql {
    let mut q = Sql::new(
        "SELECT event_logs.event FROM (SELECT event_logs.asset_key AS asset_key, \
         max(event_logs.id) AS id FROM event_logs WHERE ",
    );
    q.append(&Sql::is_in("event_logs.asset_key", keys)).push(
        " AND event_logs.dagster_event_type = 'FRESHNESS_STATE_CHANGE' GROUP BY \
         event_logs.asset_key) AS subquery JOIN event_logs ON event_logs.asset_key = \
         subquery.asset_key AND event_logs.id = subquery.id",
    );
    q
}

/// The `asset_keys` update of a wipe (stock's `_get_asset_key_values_on_wipe`): the columns it
/// sets are those the table has (`wipe_timestamp`, `cached_status_data` came with migrations).
pub fn wipe_asset_row(
    asset_key: &str,
    details: &str,
    wipe_timestamp: &str,
    columns: &[String],
) -> Sql {
    let has = |name: &str| columns.iter().any(|c| c == name);
    let mut q = Sql::new(
        "UPDATE asset_keys SET last_materialization=NULL, last_run_id=NULL, asset_details=",
    );
    q.bind(details);
    if has("wipe_timestamp") {
        q.push(", wipe_timestamp=").bind(wipe_timestamp);
    }
    if has("cached_status_data") {
        q.push(", cached_status_data=NULL");
    }
    q.push(" WHERE asset_keys.asset_key = ").bind(asset_key);
    q
}

/// `DELETE FROM <table> WHERE <table>.asset_key = ?`.
pub fn delete_where_asset(table: &str, asset_key: &str) -> Sql {
    let mut q = Sql::new(&format!("DELETE FROM {table} WHERE {table}.asset_key = "));
    q.bind(asset_key);
    q
}

/// Every statement of the domain on sample arguments, for `EXPLAIN QUERY PLAN` checks.
pub fn samples() -> Vec<(String, Sql)> {
    let keys = vec!["[\"a\"]".to_owned(), "[\"b\"]".to_owned()];
    let wiped = vec![
        ("[\"a\"]".to_owned(), Some("2026-01-01 00:00:00".to_owned())),
        ("[\"b\"]".to_owned(), None),
    ];
    let filter =
        |keys: Option<Vec<String>>, prefix: Option<&str>, cursor: Option<&str>| AssetFilter {
            keys,
            prefix: prefix.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
            limit: Some(10),
        };
    let spec = |types: &[&str], partitions: Option<Vec<String>>| PartitionEvents {
        asset_key: "[\"a\"]".to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        partitions,
        before_id: Some(1000),
        after_id: Some(10),
        after_wipe: Some("2026-01-01 00:00:00".to_owned()),
    };
    let materializations = ["ASSET_MATERIALIZATION"];
    let both = ["ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED"];
    let parts = Some(vec!["p1".to_owned(), "p2".to_owned()]);
    let summary = |asset_key: Option<&str>| SummaryFilter {
        event_type: "ASSET_MATERIALIZATION".to_owned(),
        asset_key: asset_key.map(str::to_owned),
        after_wipe: asset_key.map(|_| "2026-01-01 00:00:00".to_owned()),
        after_id: Some(10),
        limit: Some(100),
        ..Default::default()
    };
    let tag = |v: &str| {
        (
            "dagster/partition/x".to_owned(),
            TagMatch::One(v.to_owned()),
        )
    };
    let out = vec![
        ("asset rows", asset_rows(&filter(None, None, None), false)),
        (
            "asset rows by key",
            asset_rows(&filter(Some(keys.clone()), None, None), false),
        ),
        (
            "asset keys by prefix",
            asset_rows(&filter(None, Some("[\"a"), Some("[\"a\"]")), true),
        ),
        ("asset details", asset_details(&keys)),
        ("latest materializations", latest_materializations(&wiped)),
        (
            "latest ids by partition",
            latest_ids_by_partition(&spec(&materializations, None)),
        ),
        (
            "latest ids of partitions",
            latest_ids_by_partition(&spec(&materializations, parts.clone())),
        ),
        (
            "materialized partitions",
            materialized_partitions(&spec(&materializations, None)),
        ),
        (
            "latest tags by partition",
            latest_tags_by_partition(
                &spec(&materializations, None),
                &["dagster/data_version".to_owned()],
            ),
        ),
        (
            "latest events by partition",
            latest_events_by_partition(&spec(&both, None), "ASSET_MATERIALIZATION_PLANNED"),
        ),
        (
            "partition data versions",
            partition_data_versions("[\"a\"]", &["p1".to_owned()], Some(100), None),
        ),
        (
            "set cached status",
            set_cached_status("[\"a\"]", Some("{}")),
        ),
        (
            "event tags",
            event_tags("[\"a\"]", &[], Some("2026-01-01 00:00:00"), None),
        ),
        (
            "event tags filtered",
            event_tags("[\"a\"]", &[tag("x1"), tag("y1")], None, Some(5)),
        ),
        (
            "summary records of an asset",
            summary_records(&summary(Some("[\"a\"]"))),
        ),
        ("summary records", summary_records(&summary(None))),
        ("freshness states", freshness_states(&keys)),
        (
            "wipe asset row",
            wipe_asset_row(
                "[\"a\"]",
                "{}",
                "2026-01-01 00:00:00",
                &["wipe_timestamp".to_owned()],
            ),
        ),
        (
            "wipe check executions",
            delete_where_asset("asset_check_executions", "[\"a\"]"),
        ),
        (
            "wipe index events",
            delete_where_asset("event_logs", "[\"a\"]"),
        ),
    ];
    out.into_iter()
        .map(|(what, q)| (what.to_owned(), q))
        .collect()
}
