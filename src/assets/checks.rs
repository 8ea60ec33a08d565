//! Asset-check reads: executions of `asset_check_executions` in `index.db` (written by the
//! events domain), as stock's `SqlEventLogStorage` selects them (`docs/assets-domain.md` §6).
//!
//! Each statement is the one SQLAlchemy renders for stock, condition for condition, so SQLite
//! plans it alike and returns the same rows in the same order (two of them have no ORDER BY).
//! Python builds Dagster's records from the rows with stock's own code.

use pyo3::{FromPyObject, IntoPyObject};

use super::query::after_wipes;
use super::{Assets, QueryPlan, Result};
use crate::store::sql::Where;
use crate::store::{Sql, Value};

/// Stock's `PartitionKeyFilter`: `key` None selects the unpartitioned executions, a key that
/// partition's. From Python a `PartitionFilterSpec` mapping; an absent filter is None.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct PartitionFilter {
    pub key: Option<String>,
}

/// One page of a check's executions, newest first (`get_asset_check_execution_history`); from
/// Python a `CheckHistorySpec` mapping.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct CheckHistory {
    pub asset_key: String,
    pub check_name: String,
    pub partition_filter: Option<PartitionFilter>,
    /// `id < cursor` (stock ignores a falsy cursor: the caller passes None for it).
    pub cursor: Option<i64>,
    /// `execution_status IN (...)` (stock ignores an empty set: the caller passes None for it).
    pub statuses: Option<Vec<String>>,
    /// Always applied: 0 selects nothing, a negative limit everything.
    pub limit: i64,
}

/// The latest execution of checks (`get_latest_asset_check_execution_by_key`): stock filters
/// asset keys and check names as two independent IN lists (their cross product). From Python a
/// `LatestChecksSpec` mapping.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct LatestChecks {
    pub asset_keys: Vec<String>,
    pub check_names: Vec<String>,
    pub partition_filter: Option<PartitionFilter>,
}

/// A partition key as stock binds it: text, or (from untyped callers) a number or None, which
/// SQLite compares with the TEXT column as stock's bound value would be.
#[derive(Debug, Clone, FromPyObject)]
pub enum PartitionValue {
    Text(String),
    Int(i64),
    Real(f64),
}

impl From<&PartitionValue> for Value {
    fn from(v: &PartitionValue) -> Value {
        match v {
            PartitionValue::Text(t) => Value::Text(t.clone()),
            PartitionValue::Int(i) => Value::Int(*i),
            PartitionValue::Real(r) => Value::Real(*r),
        }
    }
}

/// The latest evaluated execution of one check per partition, with the latest materialization
/// of that partition (`_get_asset_check_partition_info_for_key`); from Python a
/// `CheckPartitionSpec` mapping.
#[derive(Debug, Clone, Default, FromPyObject)]
#[pyo3(from_item_all)]
pub struct CheckPartitions {
    pub asset_key: String,
    pub check_name: String,
    /// `partition IN (...)` on both sides; an empty list matches nothing.
    pub partition_keys: Option<Vec<Option<PartitionValue>>>,
    /// `evaluation_event_storage_id > ? OR <latest materialization id> > ?` (0 applies).
    pub after_storage_id: Option<i64>,
    /// The asset's wipe time as stock binds it (naive-UTC text), if it was wiped.
    pub wiped: Option<String>,
}

/// A row of `asset_check_executions` as stock's history and latest reads project it (the latest
/// read also fills `asset_key` and `check_name`); becomes a dict whose keys are stock's row keys.
#[derive(Debug, Clone, Default, IntoPyObject)]
pub struct CheckExecutionRow {
    pub id: i64,
    pub asset_key: Option<String>,
    pub check_name: Option<String>,
    pub run_id: Option<String>,
    pub execution_status: Option<String>,
    pub evaluation_event: Option<String>,
    pub create_timestamp: Option<String>,
    pub partition: Option<String>,
}

/// A row of stock's partition-info statement.
#[derive(Debug, Clone, Default, IntoPyObject)]
pub struct CheckPartitionRow {
    pub id: i64,
    pub partition: Option<String>,
    pub execution_status: Option<String>,
    pub evaluation_event_storage_id: Option<i64>,
    pub materialization_event_storage_id: Option<i64>,
    pub run_id: Option<String>,
    pub latest_materialization_storage_id: Option<i64>,
}

const MATERIALIZATION: &str = "ASSET_MATERIALIZATION";

/// Stock's `_get_asset_check_partition_filter_clause` (no clause without a filter).
fn partition_clause(conds: &mut Where, filter: Option<&PartitionFilter>) {
    match filter {
        None => {}
        Some(PartitionFilter { key: None }) => {
            conds.and(Sql::new("asset_check_executions.partition IS NULL"));
        }
        Some(PartitionFilter { key: Some(key) }) => {
            conds.and(Sql::compare(
                "asset_check_executions.partition = ",
                key.as_str(),
            ));
        }
    }
}

/// `column IN (...)` of partition keys; as SQLAlchemy renders it, an empty list matches nothing.
fn partition_in(column: &str, keys: &[Option<PartitionValue>]) -> Sql {
    if keys.is_empty() {
        return Sql::new("1 != 1");
    }
    let mut sql = Sql::new(&format!("{column} IN "));
    sql.values(
        keys.iter()
            .map(|k| k.as_ref().map_or(Value::Null, Value::from)),
    );
    sql
}

/// `get_asset_check_execution_history`'s statement.
pub fn history(h: &CheckHistory) -> Sql {
    let mut q = Sql::new(
        "SELECT asset_check_executions.id, asset_check_executions.run_id, \
         asset_check_executions.execution_status, asset_check_executions.evaluation_event, \
         asset_check_executions.create_timestamp, asset_check_executions.partition \
         FROM asset_check_executions",
    );
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "asset_check_executions.asset_key = ",
        h.asset_key.as_str(),
    ));
    conds.and(Sql::compare(
        "asset_check_executions.check_name = ",
        h.check_name.as_str(),
    ));
    partition_clause(&mut conds, h.partition_filter.as_ref());
    if let Some(cursor) = h.cursor {
        conds.and(Sql::compare("asset_check_executions.id < ", cursor));
    }
    if let Some(statuses) = &h.statuses {
        conds.and(Sql::is_in(
            "asset_check_executions.execution_status",
            statuses,
        ));
    }
    conds.write_to(&mut q);
    q.push(" ORDER BY asset_check_executions.id DESC");
    q.limit_offset(Some(h.limit), Some(0));
    q
}

/// `get_latest_asset_check_execution_by_key`'s statement (no ORDER BY, as stock).
pub fn latest(l: &LatestChecks) -> Sql {
    let mut q = Sql::new(
        "SELECT asset_check_executions.id, asset_check_executions.asset_key, \
         asset_check_executions.check_name, asset_check_executions.run_id, \
         asset_check_executions.execution_status, asset_check_executions.evaluation_event, \
         asset_check_executions.create_timestamp, asset_check_executions.partition \
         FROM asset_check_executions JOIN (SELECT max(asset_check_executions.id) AS id \
         FROM asset_check_executions",
    );
    let mut conds = Where::default();
    conds.and(Sql::is_in(
        "asset_check_executions.asset_key",
        &l.asset_keys,
    ));
    conds.and(Sql::is_in(
        "asset_check_executions.check_name",
        &l.check_names,
    ));
    partition_clause(&mut conds, l.partition_filter.as_ref());
    conds.write_to(&mut q);
    q.push(
        " GROUP BY asset_check_executions.asset_key, asset_check_executions.check_name) \
         AS subquery ON asset_check_executions.id = subquery.id",
    );
    q
}

/// Stock's `_latest_event_ids_by_partition_subquery` for the checked asset's materializations,
/// without cursors: the latest event id of each non-NULL partition, after the asset's wipe.
fn latest_materialization_ids(p: &CheckPartitions) -> Sql {
    let mut q = Sql::new(
        "(SELECT event_logs.dagster_event_type AS dagster_event_type, event_logs.partition AS \
         partition, max(event_logs.id) AS id FROM event_logs",
    );
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "event_logs.asset_key = ",
        p.asset_key.as_str(),
    ));
    conds.and(Sql::new("event_logs.partition IS NOT NULL"));
    conds.and(Sql::is_in(
        "event_logs.dagster_event_type",
        &[MATERIALIZATION.to_owned()],
    ));
    if let Some(keys) = &p.partition_keys {
        conds.and(partition_in("event_logs.partition", keys));
    }
    after_wipes(&mut conds, &[(p.asset_key.clone(), p.wiped.clone())]);
    conds.write_to(&mut q);
    q.push(
        " GROUP BY event_logs.dagster_event_type, event_logs.partition) AS \
         latest_event_ids_by_partition_subquery",
    );
    q
}

/// `_get_asset_check_partition_info_for_key`'s statement (no ORDER BY, as stock).
pub fn partition_info(p: &CheckPartitions) -> Sql {
    let mut q = Sql::new(
        "SELECT asset_check_executions.id, asset_check_executions.partition, \
         asset_check_executions.execution_status, \
         asset_check_executions.evaluation_event_storage_id, \
         asset_check_executions.materialization_event_storage_id, asset_check_executions.run_id, \
         latest_event_ids_by_partition_subquery.id AS latest_materialization_storage_id \
         FROM asset_check_executions JOIN (SELECT max(asset_check_executions.id) AS id, \
         asset_check_executions.partition AS partition FROM asset_check_executions",
    );
    let mut conds = Where::default();
    conds.and(Sql::compare(
        "asset_check_executions.asset_key = ",
        p.asset_key.as_str(),
    ));
    conds.and(Sql::compare(
        "asset_check_executions.check_name = ",
        p.check_name.as_str(),
    ));
    // Historical PLANNED rows may lack the column.
    conds.and(Sql::new(
        "asset_check_executions.evaluation_event_storage_id IS NOT NULL",
    ));
    if let Some(keys) = &p.partition_keys {
        conds.and(partition_in("asset_check_executions.partition", keys));
    }
    conds.write_to(&mut q);
    q.push(
        " GROUP BY asset_check_executions.partition) AS latest_check_ids_subquery \
         ON asset_check_executions.id = latest_check_ids_subquery.id LEFT OUTER JOIN ",
    );
    q.append(&latest_materialization_ids(p));
    q.push(
        " ON asset_check_executions.partition = latest_event_ids_by_partition_subquery.partition",
    );
    if let Some(after) = p.after_storage_id {
        q.push(" WHERE asset_check_executions.evaluation_event_storage_id > ")
            .bind(after)
            .push(" OR latest_event_ids_by_partition_subquery.id > ")
            .bind(after);
    }
    q
}

fn execution_row(r: &crate::store::Row<'_>, keyed: bool) -> Result<CheckExecutionRow> {
    let (asset_key, check_name, at) = if keyed {
        (r.opt_text(1)?, r.opt_text(2)?, 3)
    } else {
        (None, None, 1)
    };
    Ok(CheckExecutionRow {
        id: r.int(0)?,
        asset_key,
        check_name,
        run_id: r.opt_text(at)?,
        execution_status: r.opt_text(at + 1)?,
        evaluation_event: r.opt_text(at + 2)?,
        create_timestamp: r.opt_text(at + 3)?,
        partition: r.opt_text(at + 4)?,
    })
}

impl Assets {
    /// A page of one check's executions, newest first.
    pub fn check_history(&self, h: &CheckHistory) -> Result<Vec<CheckExecutionRow>> {
        let statement = history(h);
        self.read(|c| c.query(&statement, |r| execution_row(r, false)))
    }

    /// The latest execution of each (asset key, check name) of the cross product asked for.
    pub fn latest_check_executions(&self, l: &LatestChecks) -> Result<Vec<CheckExecutionRow>> {
        let statement = latest(l);
        self.read(|c| c.query(&statement, |r| execution_row(r, true)))
    }

    /// The latest evaluated execution of one check per partition, with that partition's latest
    /// materialization id.
    pub fn check_partition_rows(&self, p: &CheckPartitions) -> Result<Vec<CheckPartitionRow>> {
        let statement = partition_info(p);
        self.read(|c| {
            c.query(&statement, |r| {
                Ok(CheckPartitionRow {
                    id: r.int(0)?,
                    partition: r.opt_text(1)?,
                    execution_status: r.opt_text(2)?,
                    evaluation_event_storage_id: r.opt_int(3)?,
                    materialization_event_storage_id: r.opt_int(4)?,
                    run_id: r.opt_text(5)?,
                    latest_materialization_storage_id: r.opt_int(6)?,
                })
            })
        })
    }

    /// `EXPLAIN QUERY PLAN` of the statements of the reads given.
    pub fn check_query_plans(
        &self,
        history_read: Option<&CheckHistory>,
        latest_read: Option<&LatestChecks>,
        partitions_read: Option<&CheckPartitions>,
    ) -> Result<Vec<QueryPlan>> {
        let mut statements = Vec::new();
        if let Some(h) = history_read {
            statements.push(("history", history(h)));
        }
        if let Some(l) = latest_read {
            statements.push(("latest", latest(l)));
        }
        if let Some(p) = partitions_read {
            statements.push(("partition info", partition_info(p)));
        }
        self.read(|c| {
            statements
                .iter()
                .map(|(what, statement)| c.plan(*what, statement))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_check() -> CheckHistory {
        CheckHistory {
            asset_key: "[\"a\"]".into(),
            check_name: "c".into(),
            limit: 5,
            ..Default::default()
        }
    }

    #[test]
    fn history_renders_stock_clauses_in_order() {
        let mut h = one_check();
        assert_eq!(
            history(&h).text,
            "SELECT asset_check_executions.id, asset_check_executions.run_id, \
             asset_check_executions.execution_status, asset_check_executions.evaluation_event, \
             asset_check_executions.create_timestamp, asset_check_executions.partition FROM \
             asset_check_executions WHERE asset_check_executions.asset_key = ? AND \
             asset_check_executions.check_name = ? ORDER BY asset_check_executions.id DESC \
             LIMIT ? OFFSET ?"
        );
        h.partition_filter = Some(PartitionFilter { key: None });
        h.cursor = Some(3);
        h.statuses = Some(vec!["SUCCEEDED".into()]);
        let q = history(&h);
        assert!(q.text.contains(
            "check_name = ? AND asset_check_executions.partition IS NULL AND \
             asset_check_executions.id < ? AND asset_check_executions.execution_status IN (?) \
             ORDER BY"
        ));
        assert_eq!(q.params.len(), 6);
    }

    #[test]
    fn partition_info_binds_the_after_id_twice_and_the_wipe() {
        let p = CheckPartitions {
            asset_key: "[\"a\"]".into(),
            check_name: "c".into(),
            partition_keys: Some(vec![Some(PartitionValue::Text("x".into()))]),
            after_storage_id: Some(0),
            wiped: Some("2020-01-01 00:00:00.000000".into()),
        };
        let q = partition_info(&p);
        assert!(q.text.ends_with(
            "WHERE asset_check_executions.evaluation_event_storage_id > ? OR \
             latest_event_ids_by_partition_subquery.id > ?"
        ));
        assert!(q
            .text
            .contains("AND event_logs.partition IN (?) AND (event_logs.asset_key = ?"));
        // key, name, partition; key, type, partition, wipe (3); after twice
        assert_eq!(q.params.len(), 3 + 6 + 2);
    }
}
