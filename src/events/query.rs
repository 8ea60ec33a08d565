//! `EventRecordsFilter` as SQL, for the reads that filter events across runs: run-status
//! changes on the index shard (`fetch_run_status_changes`) and non-asset `get_event_records`
//! over the run shards (stock's `_apply_filter_to_query`, `sql_event_log.py:916-984`).

use pyo3::FromPyObject;

use super::Cursor;
use crate::store::sql::Where;
use crate::store::Sql;

/// `(id, event)` of a run's events, as stock's `get_records_for_run` selects them (an empty
/// `types` list means every type).
pub fn run_records(
    run_id: &str,
    cursor: Cursor,
    types: &[String],
    limit: Option<i64>,
    ascending: bool,
) -> Sql {
    let mut conds = Where::default();
    conds.and(Sql::compare("event_logs.run_id = ", run_id));
    if !types.is_empty() {
        conds.and(Sql::is_in("event_logs.dagster_event_type", types));
    }
    if let Cursor::StorageId(id) = cursor {
        let mut c = Sql::new(if ascending {
            "event_logs.id > "
        } else {
            "event_logs.id < "
        });
        c.bind(id);
        conds.and(c);
    }
    let mut q = Sql::new("SELECT event_logs.id, event_logs.event FROM event_logs");
    conds.write_to(&mut q);
    q.push(if ascending {
        " ORDER BY event_logs.id ASC"
    } else {
        " ORDER BY event_logs.id DESC"
    });
    let offset = match cursor {
        Cursor::Offset(n) => Some(n.max(0)),
        _ => None,
    };
    q.limit_offset(limit, offset);
    q
}

/// The statement shapes of the event reads, for sample arguments (the rendering tests).
#[cfg(test)]
pub fn samples() -> Vec<(String, Sql)> {
    let types = ["RUN_START".to_owned(), "RUN_SUCCESS".to_owned()];
    let mut out = Vec::new();
    for cursor in [Cursor::None, Cursor::StorageId(4), Cursor::Offset(3)] {
        for limit in [None, Some(5)] {
            for ascending in [true, false] {
                out.push((
                    format!("run records {cursor:?} {limit:?} {ascending}"),
                    run_records("r", cursor, &types, limit, ascending),
                ));
            }
        }
    }
    let full = RecordsFilter {
        event_type: "ASSET_MATERIALIZATION".into(),
        asset_key: Some("[\"a\"]".into()),
        partitions: Some(vec!["p1".into(), "p2".into()]),
        after_wipe: Some("2026-01-01 00:00:00".into()),
        before_id: Some(9),
        after_id: Some(1),
        before_timestamp: Some("2026-02-01 00:00:00".into()),
        after_timestamp: Some("2026-01-02 00:00:00".into()),
        storage_ids: Some(vec![3, 4]),
    };
    for (filter, cursors) in [
        (RecordsFilter::default(), true),
        (full.clone(), true),
        (full, false),
    ] {
        for order in [OrderBy::Id, OrderBy::Timestamp] {
            out.push((
                format!("records {order:?}"),
                filter.select(cursors, order, true, Some(10)),
            ));
        }
    }
    out
}

/// The columns of an `EventRecordsFilter` a query restricts, as stock binds them. Timestamps are
/// stock's naive-UTC `YYYY-MM-DD HH:MM:SS.ffffff` strings, compared as text as stock does.
/// From Python: a `RecordsFilterSpec` mapping (every key present).
#[derive(Debug, Clone, Default, PartialEq, FromPyObject)]
#[pyo3(from_item_all)]
pub struct RecordsFilter {
    pub event_type: String,
    pub asset_key: Option<String>,
    pub partitions: Option<Vec<String>>,
    /// The asset's last wipe: only later events count (stock's `asset_details`).
    pub after_wipe: Option<String>,
    pub before_id: Option<i64>,
    pub after_id: Option<i64>,
    pub before_timestamp: Option<String>,
    pub after_timestamp: Option<String>,
    pub storage_ids: Option<Vec<i64>>,
}

/// Which column orders the result: the index orders by id, run shards by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderBy {
    Id,
    Timestamp,
}

impl RecordsFilter {
    /// `SELECT id, event ... WHERE <filter> ORDER BY ... LIMIT ...`, condition for condition in
    /// stock's order. `with_cursors` is false on run shards, where ids are per shard.
    pub fn select(
        &self,
        with_cursors: bool,
        order: OrderBy,
        ascending: bool,
        limit: Option<i64>,
    ) -> Sql {
        let mut conds = Where::default();
        conds.and(Sql::compare(
            "event_logs.dagster_event_type = ",
            self.event_type.as_str(),
        ));
        if let Some(key) = &self.asset_key {
            conds.and(Sql::compare("event_logs.asset_key = ", key.as_str()));
        }
        if let Some(partitions) = self.partitions.as_ref().filter(|p| !p.is_empty()) {
            conds.and(Sql::is_in("event_logs.partition", partitions));
        }
        if let Some(ts) = &self.after_wipe {
            conds.and(Sql::compare("event_logs.timestamp > ", ts.as_str()));
        }
        if with_cursors {
            if let Some(id) = self.before_id {
                conds.and(Sql::compare("event_logs.id < ", id));
            }
            if let Some(id) = self.after_id {
                conds.and(Sql::compare("event_logs.id > ", id));
            }
        }
        if let Some(ts) = &self.before_timestamp {
            conds.and(Sql::compare("event_logs.timestamp < ", ts.as_str()));
        }
        if let Some(ts) = &self.after_timestamp {
            conds.and(Sql::compare("event_logs.timestamp > ", ts.as_str()));
        }
        if let Some(ids) = self.storage_ids.as_ref().filter(|ids| !ids.is_empty()) {
            let mut c = Sql::new("event_logs.id IN ");
            c.bind_list(ids);
            conds.and(c);
        }
        let mut q = Sql::new("SELECT event_logs.id, event_logs.event FROM event_logs");
        conds.write_to(&mut q);
        q.push(match (order, ascending) {
            (OrderBy::Id, true) => " ORDER BY event_logs.id ASC",
            (OrderBy::Id, false) => " ORDER BY event_logs.id DESC",
            (OrderBy::Timestamp, true) => " ORDER BY event_logs.timestamp ASC",
            (OrderBy::Timestamp, false) => " ORDER BY event_logs.timestamp DESC",
        });
        if let Some(limit) = limit.filter(|l| *l > 0) {
            q.push(" LIMIT ").bind(limit).push(" OFFSET 0");
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_stocks_order() {
        let f = RecordsFilter {
            event_type: "RUN_SUCCESS".into(),
            after_id: Some(3),
            before_id: Some(9),
            storage_ids: Some(vec![4, 5]),
            ..Default::default()
        };
        let q = f.select(true, OrderBy::Id, false, Some(2));
        assert_eq!(
            q.text,
            "SELECT event_logs.id, event_logs.event FROM event_logs WHERE \
             event_logs.dagster_event_type = ? AND event_logs.id < ? AND event_logs.id > ? AND \
             event_logs.id IN (?, ?) ORDER BY event_logs.id DESC LIMIT ? OFFSET 0"
        );
        let sharded = f.select(false, OrderBy::Timestamp, true, None);
        assert!(!sharded.text.contains("event_logs.id <"));
        assert!(sharded.text.ends_with("ORDER BY event_logs.timestamp ASC"));
    }
}
