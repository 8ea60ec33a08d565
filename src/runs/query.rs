//! Stock `SqlRunStorage`'s queries over `runs` and `bulk_actions`, built as the same SQL shapes
//! SQLAlchemy emits for them, so the SQLite planner returns rows in the same order as stock.

use super::plan::RunIndexes;
use crate::store::sql::{Sql, Where};

/// Tag filter value: one value, or any of several.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagValue {
    One(String),
    Many(Vec<String>),
}

/// `dagster.RunsFilter`, with stock's truthiness already applied (an empty list is `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunsFilter {
    pub run_ids: Option<Vec<String>>,
    pub job_name: Option<String>,
    pub statuses: Option<Vec<String>>,
    pub tags: Option<Vec<(String, TagValue)>>,
    pub snapshot_id: Option<String>,
    pub updated_after: Option<String>,
    pub updated_before: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub exclude_subruns: bool,
}

/// `JobBucket` / `TagBucket`: at most `limit` newest runs for each job name or tag value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bucket {
    Job {
        names: Vec<String>,
        limit: Option<i64>,
    },
    Tag {
        key: String,
        values: Vec<String>,
        limit: Option<i64>,
    },
}

/// `dagster.BulkActionsFilter`, truthiness applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillFilter {
    pub statuses: Option<Vec<String>>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub backfill_ids: Option<Vec<String>>,
    pub job_name: Option<String>,
    pub selector_id: Option<String>,
    pub tags: Option<Vec<(String, TagValue)>>,
}

/// Columns of `runs` a caller may order by (stock resolves any attribute of the table).
pub const RUN_COLUMNS: &[&str] = &[
    "id",
    "run_id",
    "snapshot_id",
    "pipeline_name",
    "mode",
    "status",
    "run_body",
    "partition",
    "partition_set",
    "create_timestamp",
    "update_timestamp",
    "start_time",
    "end_time",
    "backfill_id",
];

/// Everything of a runs query but the selected columns.
#[derive(Debug, Clone, Default)]
pub struct RunsQuery<'a> {
    pub filter: Option<&'a RunsFilter>,
    pub cursor: Option<&'a str>,
    pub limit: Option<i64>,
    pub order_by: Option<&'a str>,
    pub ascending: bool,
    pub bucket: Option<&'a Bucket>,
    /// Whether the `run_backfill_id` data migration is done (decides how subruns are excluded).
    pub backfill_id_indexed: bool,
}

fn tag_match(sql: &mut Sql, alias: &str, key: &str, value: &TagValue) {
    sql.push(" AND ");
    tag_condition(sql, alias, key, value);
}

/// `alias.key = ? AND alias.value = ?` (or `IN (...)` for several values).
pub(super) fn tag_condition(sql: &mut Sql, alias: &str, key: &str, value: &TagValue) {
    sql.push(&format!("{alias}.\"key\" = ")).bind(key);
    match value {
        TagValue::One(v) => {
            sql.push(&format!(" AND {alias}.value = ")).bind(v.as_str());
        }
        TagValue::Many(vs) => {
            sql.push(" AND ")
                .append(&Sql::is_in(&format!("{alias}.value"), vs));
        }
    }
}

fn cmp_cond(column: &str, op: &str, value: &str) -> Sql {
    let mut sql = Sql::new(&format!("{column} {op} "));
    sql.bind(value);
    sql
}

fn runs_from_and_where(q: &RunsQuery<'_>) -> (Sql, Where) {
    let mut from = Sql::new(" FROM runs");
    let mut conds = Where::default();
    if let Some(f) = q.filter {
        if let Some(tags) = &f.tags {
            for (i, (key, value)) in tags.iter().enumerate() {
                let alias = format!("run_tags_filter{i}");
                from.push(&format!(
                    " JOIN run_tags AS {alias} ON runs.run_id = {alias}.run_id"
                ));
                tag_match(&mut from, &alias, key, value);
            }
        }
        if let Some(ids) = &f.run_ids {
            conds.and(Sql::is_in("runs.run_id", ids));
        }
        if let Some(job) = &f.job_name {
            conds.and(cmp_cond("runs.pipeline_name", "=", job));
        }
        if let Some(statuses) = &f.statuses {
            conds.and(Sql::is_in("runs.status", statuses));
        }
        if let Some(snap) = &f.snapshot_id {
            conds.and(cmp_cond("runs.snapshot_id", "=", snap));
        }
        if let Some(t) = &f.updated_after {
            conds.and(cmp_cond("runs.update_timestamp", ">", t));
        }
        if let Some(t) = &f.updated_before {
            conds.and(cmp_cond("runs.update_timestamp", "<", t));
        }
        if let Some(t) = &f.created_after {
            conds.and(cmp_cond("runs.create_timestamp", ">", t));
        }
        if let Some(t) = &f.created_before {
            conds.and(cmp_cond("runs.create_timestamp", "<", t));
        }
        if f.exclude_subruns {
            if q.backfill_id_indexed {
                conds.and(Sql::new("runs.backfill_id IS NULL"));
            } else {
                let mut sub = Sql::new(
                    "(runs.run_id NOT IN (SELECT run_tags.run_id FROM run_tags WHERE run_tags.\"key\" = ",
                );
                sub.bind(crate::runs::BACKFILL_ID_TAG).push("))");
                conds.and(sub);
            }
        }
    }
    if let Some(cursor) = q.cursor {
        let op = if q.ascending { ">" } else { "<" };
        let mut c = Sql::new(&format!(
            "runs.id {op} (SELECT runs.id FROM runs WHERE runs.run_id = "
        ));
        c.bind(cursor).push(")");
        conds.and(c);
    }
    (from, conds)
}

fn order_and_limit(sql: &mut Sql, q: &RunsQuery<'_>, table: &str) -> Result<(), String> {
    let column = q.order_by.unwrap_or("id");
    if !RUN_COLUMNS.contains(&column) {
        return Err(format!("runs has no column {column:?} to order by"));
    }
    let direction = if q.ascending { "ASC" } else { "DESC" };
    sql.push(&format!(" ORDER BY {table}.{column} {direction}"));
    if let Some(limit) = q.limit {
        sql.push(" LIMIT ").bind(limit);
    }
    Ok(())
}

/// `SELECT <columns> FROM runs ...` with filters, cursor, order and limit, optionally bucketed.
pub fn runs_select(columns: &[&str], q: &RunsQuery<'_>) -> Result<Sql, String> {
    let (from, conds) = runs_from_and_where(q);
    let cols: Vec<String> = columns.iter().map(|c| format!("runs.{c}")).collect();
    match q.bucket {
        None if q.limit.is_some() && q.order_by.unwrap_or("id") == "id" => {
            // Top-N by id: pick the ids first, then read the wide columns of those rows only.
            // A filter SQLite serves from an index (tags, status) otherwise makes it sort every
            // matching row, bodies included, before the LIMIT. Ids are unique, so the order and
            // the rows are exactly those of the one-statement query.
            let mut ids = Sql::new("SELECT runs.id");
            ids.append(&from);
            conds.write_to(&mut ids);
            order_and_limit(&mut ids, q, "runs")?;
            let mut sql = Sql::new(&format!(
                "SELECT {} FROM runs WHERE runs.id IN (",
                cols.join(", ")
            ));
            sql.append(&ids).push(")");
            order_and_limit(
                &mut sql,
                &RunsQuery {
                    limit: None,
                    ..q.clone()
                },
                "runs",
            )?;
            Ok(sql)
        }
        None => {
            let mut sql = Sql::new(&format!("SELECT {}", cols.join(", ")));
            sql.append(&from);
            conds.write_to(&mut sql);
            order_and_limit(&mut sql, q, "runs")?;
            Ok(sql)
        }
        Some(bucket) => bucketed_select(columns, q, from, conds, bucket),
    }
}

fn bucketed_select(
    columns: &[&str],
    q: &RunsQuery<'_>,
    mut from: Sql,
    mut conds: Where,
    bucket: &Bucket,
) -> Result<Sql, String> {
    // Rank each run within its bucket (newest first), keep the top `limit` of every bucket,
    // then order and limit the union as an unbucketed query would.
    let (partition, limit) = match bucket {
        Bucket::Job { names, limit } => {
            conds.and(Sql::is_in("runs.pipeline_name", names));
            ("runs.pipeline_name", *limit)
        }
        Bucket::Tag { key, values, limit } => {
            from.push(" JOIN run_tags AS bucket_tags ON runs.run_id = bucket_tags.run_id");
            tag_match(
                &mut from,
                "bucket_tags",
                key,
                &TagValue::Many(values.clone()),
            );
            ("bucket_tags.value", *limit)
        }
    };
    let mut inner = Sql::new(&format!(
        "SELECT runs.*, row_number() OVER (PARTITION BY {partition} ORDER BY runs.id DESC) AS bucket_rank"
    ));
    inner.append(&from);
    conds.write_to(&mut inner);

    let cols: Vec<String> = columns.iter().map(|c| format!("bucketed.{c}")).collect();
    let mut sql = Sql::new(&format!("SELECT {} FROM (", cols.join(", ")));
    sql.append(&inner).push(") AS bucketed");
    if let Some(limit) = limit {
        sql.push(" WHERE bucketed.bucket_rank <= ").bind(limit);
    }
    order_and_limit(&mut sql, q, "bucketed")?;
    Ok(sql)
}

/// `SELECT count(*) FROM (<runs query>)`, as stock counts.
pub fn runs_count(q: &RunsQuery<'_>) -> Result<Sql, String> {
    let inner = runs_select(&["id"], q)?;
    let mut sql = Sql::new("SELECT count(*) AS count FROM (");
    sql.append(&inner).push(") AS anon_1");
    Ok(sql)
}

/// `bulk_actions` rows matching a backfill filter; `count` selects `count(*)` instead of bodies.
pub fn backfills_select(
    filter: Option<&BackfillFilter>,
    cursor: Option<&str>,
    limit: Option<i64>,
    count: bool,
) -> Sql {
    // The index of the most selective indexed condition; bulk_actions has none on job_name or
    // selector-less tags, and a deployment holds thousands of backfills, not millions.
    let index = filter.and_then(|f| {
        if f.backfill_ids.is_some() {
            Some("idx_bulk_actions")
        } else if f.selector_id.is_some() {
            Some("idx_bulk_actions_selector_id")
        } else if f.statuses.is_some() {
            Some("idx_bulk_actions_status")
        } else {
            None
        }
    });
    let mut from = Sql::new(" FROM bulk_actions");
    from.indexed_by(index);
    let mut conds = Where::default();
    if let Some(f) = filter {
        if let Some(tags) = &f.tags {
            for (i, (key, value)) in tags.iter().enumerate() {
                let alias = format!("backfill_tags_filter{i}");
                from.cross_join()
                    .push(&format!("backfill_tags AS {alias}"))
                    .pin("idx_backfill_tags_backfill_id")
                    .push(&format!(" ON bulk_actions.\"key\" = {alias}.backfill_id"));
                tag_match(&mut from, &alias, key, value);
            }
        }
        if let Some(job) = &f.job_name {
            conds.and(cmp_cond("bulk_actions.job_name", "=", job));
        }
        if let Some(statuses) = &f.statuses {
            conds.and(Sql::is_in("bulk_actions.status", statuses));
        }
        if let Some(t) = &f.created_after {
            conds.and(cmp_cond("bulk_actions.timestamp", ">", t));
        }
        if let Some(t) = &f.created_before {
            conds.and(cmp_cond("bulk_actions.timestamp", "<", t));
        }
        if let Some(ids) = &f.backfill_ids {
            conds.and(Sql::is_in("bulk_actions.\"key\"", ids));
        }
        if let Some(sel) = &f.selector_id {
            conds.and(cmp_cond("bulk_actions.selector_id", "=", sel));
        }
    }
    if count {
        let mut sql = Sql::new("SELECT count(*) AS count FROM (SELECT bulk_actions.body");
        sql.append(&from);
        conds.write_to(&mut sql);
        sql.push(") AS anon_1");
        return sql;
    }
    if let Some(cursor) = cursor {
        let mut c = Sql::new(
            "bulk_actions.id < (SELECT bulk_actions.id FROM bulk_actions WHERE bulk_actions.\"key\" = ",
        );
        c.bind(cursor).push(")");
        conds.and(c);
    }
    let mut sql = Sql::new("SELECT bulk_actions.body, bulk_actions.timestamp");
    sql.append(&from);
    conds.write_to(&mut sql);
    sql.push(" ORDER BY bulk_actions.id DESC");
    if let Some(limit) = limit {
        sql.push(" LIMIT ").bind(limit);
    }
    sql
}

/// The runs of a run group: the runs tagged with `root_run_id` as their root, found through
/// the file's `run_tags (key, value, ...)` index (the one SQLite picks for stock's statement,
/// so the rows come in stock's order), each joined to its row by `run_id` (NULL when gone).
pub fn run_group_select(root_run_id: &str, ix: &RunIndexes) -> Sql {
    let mut q = Sql::new(
        "SELECT root_to_run.run_id, runs.run_body, runs.status FROM (SELECT run_tags.value AS \
         root_run_id, run_tags.run_id AS run_id FROM run_tags",
    );
    q.indexed_by(ix.tag.as_deref())
        .push(" WHERE run_tags.\"key\" = ")
        .bind(crate::runs::ROOT_RUN_ID_TAG)
        .push(" AND run_tags.value = ")
        .bind(root_run_id)
        .push(") AS root_to_run LEFT OUTER JOIN runs")
        .indexed_by(ix.run_id.as_deref())
        .push(" ON root_to_run.run_id = runs.run_id");
    q.planned()
}

/// The distinct tag keys in order, each found by one seek in `run_tags (key, value, ...)` (a
/// skip-scan): as many steps as there are keys, whatever the number of runs. Stock's
/// `SELECT DISTINCT key` reads every tag row; so does this on a file without such an index.
pub fn tag_keys_select(ix: &RunIndexes) -> Sql {
    let sql = match &ix.tag {
        Some(index) => {
            let mut q = Sql::new(
                "WITH RECURSIVE k(key) AS (SELECT (SELECT min(run_tags.\"key\") FROM run_tags",
            );
            q.pin(index)
                .push(") UNION ALL SELECT (SELECT min(run_tags.\"key\") FROM run_tags")
                .pin(index)
                .push(
                    " WHERE run_tags.\"key\" > k.key) FROM k WHERE k.key IS NOT NULL) SELECT \
                     k.key FROM k WHERE k.key IS NOT NULL",
                );
            q
        }
        None => Sql::new(
            "SELECT DISTINCT run_tags.\"key\" FROM run_tags WHERE run_tags.\"key\" IS NOT NULL \
             ORDER BY run_tags.\"key\"",
        ),
    };
    sql.planned()
}

/// How a tag value prefix is matched: stock's `value LIKE prefix || '%'` (ASCII letters match
/// either case, `%` and `_` are wildcards).
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixMatch {
    /// Case variants of the prefix's head (sorted): the values that can match are those that
    /// begin with one of them, a contiguous range of the index each.
    pub heads: Vec<String>,
    /// The whole prefix, for the LIKE check of each value found; None when a head is the prefix
    /// itself, so beginning with it is the match.
    pub like: Option<String>,
}

/// Case variants of at most this many letters are enumerated (64 ranges); past them, values are
/// checked with LIKE inside the ranges of the first letters' variants.
const MAX_VARIANT_LETTERS: usize = 6;

impl PrefixMatch {
    pub fn new(prefix: &str) -> PrefixMatch {
        // The head stops before the first wildcard; everything after it is LIKE's to check.
        let head: String = prefix
            .chars()
            .take_while(|c| *c != '%' && *c != '_')
            .collect();
        let mut heads = vec![String::new()];
        let mut letters = 0;
        let mut cut = head.len();
        for (i, ch) in head.char_indices() {
            if ch.is_ascii_alphabetic() {
                if letters == MAX_VARIANT_LETTERS {
                    cut = i;
                    break;
                }
                letters += 1;
                let (lo, up) = (ch.to_ascii_lowercase(), ch.to_ascii_uppercase());
                heads = heads
                    .into_iter()
                    .flat_map(|h| [format!("{h}{up}"), format!("{h}{lo}")])
                    .collect();
            } else {
                for h in &mut heads {
                    h.push(ch);
                }
            }
        }
        heads.sort();
        let exact = cut == prefix.len();
        PrefixMatch {
            heads,
            like: (!exact).then(|| prefix.to_owned()),
        }
    }
}

/// The distinct values of one tag key in order, one index seek each, restricted to those that
/// begin with `head` (and match `like`), at most `limit`. On a file without a `run_tags (key,
/// value, ...)` index, stock's `DISTINCT` over the key's rows.
pub fn tag_values_select(
    key: &str,
    head: &str,
    like: Option<&str>,
    limit: Option<i64>,
    ix: &RunIndexes,
) -> Sql {
    let in_head = |sql: &mut Sql, column: &str| {
        sql.push(&format!(" AND substr({column}, 1, length("))
            .bind(head)
            .push(")) = ")
            .bind(head);
    };
    let Some(index) = &ix.tag else {
        let mut sql = Sql::new(
            "SELECT DISTINCT run_tags.value FROM run_tags WHERE run_tags.value IS NOT NULL AND \
             run_tags.\"key\" = ",
        );
        sql.bind(key);
        in_head(&mut sql, "run_tags.value");
        if let Some(like) = like {
            sql.push(" AND run_tags.value LIKE ")
                .bind(like)
                .push(" || '%'");
        }
        sql.push(" ORDER BY run_tags.value");
        if let Some(limit) = limit {
            sql.push(" LIMIT ").bind(limit);
        }
        return sql.planned();
    };
    let min_after = |sql: &mut Sql, bound: &str| {
        sql.push("SELECT min(run_tags.value) FROM run_tags")
            .pin(index)
            .push(" WHERE run_tags.\"key\" = ")
            .bind(key)
            .push(bound);
    };
    let mut sql = Sql::new("WITH RECURSIVE v(value) AS (SELECT (");
    min_after(&mut sql, " AND run_tags.value >= ");
    sql.bind(head).push(") UNION ALL SELECT (");
    min_after(&mut sql, " AND run_tags.value > v.value");
    sql.push(") FROM v WHERE v.value IS NOT NULL");
    in_head(&mut sql, "v.value");
    sql.push(") SELECT v.value FROM v WHERE v.value IS NOT NULL");
    in_head(&mut sql, "v.value");
    if let Some(like) = like {
        sql.push(" AND v.value LIKE ").bind(like).push(" || '%'");
    }
    if let Some(limit) = limit {
        sql.push(" LIMIT ").bind(limit);
    }
    sql.planned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::Value;

    fn filter() -> RunsFilter {
        RunsFilter::default()
    }

    #[test]
    fn plain_query_orders_by_id_desc() {
        let f = filter();
        let q = RunsQuery {
            filter: Some(&f),
            ..Default::default()
        };
        let sql = runs_select(&["run_body", "status"], &q).unwrap();
        assert_eq!(
            sql.text,
            "SELECT runs.run_body, runs.status FROM runs ORDER BY runs.id DESC"
        );
    }

    #[test]
    fn tags_join_and_filters_bind_in_order() {
        let f = RunsFilter {
            tags: Some(vec![
                ("a".into(), TagValue::One("1".into())),
                ("b".into(), TagValue::Many(vec!["x".into(), "y".into()])),
            ]),
            job_name: Some("job".into()),
            ..Default::default()
        };
        let q = RunsQuery {
            filter: Some(&f),
            cursor: Some("r1"),
            limit: Some(10),
            ascending: true,
            ..Default::default()
        };
        let sql = runs_select(&["run_id"], &q).unwrap();
        assert!(sql.text.contains("JOIN run_tags AS run_tags_filter1 ON"));
        assert!(sql.text.contains("run_tags_filter1.value IN (?, ?)"));
        assert!(sql.text.contains("runs.id > (SELECT runs.id FROM runs"));
        assert!(sql.text.starts_with(
            "SELECT runs.run_id FROM runs WHERE runs.id IN (SELECT runs.id FROM runs JOIN"
        ));
        assert!(sql
            .text
            .ends_with("ORDER BY runs.id ASC LIMIT ?) ORDER BY runs.id ASC"));
        let expected: Vec<Value> = ["a", "1", "b", "x", "y", "job", "r1"]
            .iter()
            .map(|s| Value::from(*s))
            .chain([Value::Int(10)])
            .collect();
        assert_eq!(sql.params, expected);
    }

    #[test]
    fn empty_in_list_matches_nothing() {
        let f = RunsFilter {
            tags: Some(vec![("a".into(), TagValue::Many(vec![]))]),
            ..Default::default()
        };
        let q = RunsQuery {
            filter: Some(&f),
            ..Default::default()
        };
        let sql = runs_select(&["run_id"], &q).unwrap();
        assert!(sql.text.contains("AND 1 != 1"));
    }

    #[test]
    fn unknown_order_column_is_rejected() {
        let q = RunsQuery {
            order_by: Some("id; DROP TABLE runs"),
            ..Default::default()
        };
        assert!(runs_select(&["run_id"], &q).is_err());
    }

    #[test]
    fn bucket_ranks_per_job() {
        let b = Bucket::Job {
            names: vec!["a".into(), "b".into()],
            limit: Some(2),
        };
        let q = RunsQuery {
            bucket: Some(&b),
            limit: Some(3),
            ..Default::default()
        };
        let sql = runs_select(&["run_id"], &q).unwrap();
        assert!(sql.text.contains("PARTITION BY runs.pipeline_name"));
        assert!(sql.text.contains("bucketed.bucket_rank <= ?"));
        assert!(sql.text.ends_with("ORDER BY bucketed.id DESC LIMIT ?"));
    }

    #[test]
    fn prefix_heads_are_the_case_variants_in_index_order() {
        let m = PrefixMatch::new("s2");
        assert_eq!(m.heads, ["S2", "s2"]);
        assert_eq!(m.like, None);
        let m = PrefixMatch::new("ab_c");
        assert_eq!(m.heads, ["AB", "Ab", "aB", "ab"]);
        assert_eq!(m.like.as_deref(), Some("ab_c"));
        let m = PrefixMatch::new("abcdefgh");
        assert_eq!(m.heads.len(), 64);
        assert_eq!(m.heads[0], "ABCDEF");
        assert_eq!(m.like.as_deref(), Some("abcdefgh"));
        assert_eq!(PrefixMatch::new("%x").heads, [""]);
        assert_eq!(PrefixMatch::new("é1").heads, ["é1"]);
    }

    #[test]
    fn backfill_count_ignores_cursor_and_limit() {
        let sql = backfills_select(None, Some("b1"), Some(5), true);
        assert!(!sql.text.contains("LIMIT"));
        assert!(sql.params.is_empty());
    }
}
