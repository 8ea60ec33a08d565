//! The events domain: Dagster's event log over `history/runs/` (per-run shards + the index shard).
//!
//! The write path (run shard, the index mirror of asset, asset-check and run-status events, and
//! their side effects on `asset_keys`, `asset_event_tags` and `asset_check_executions`), the
//! run-scoped and filtered reads with stock `SqliteEventLogStorage`'s SQL (`docs/events-domain.md`
//! §2, §3), maintenance (`delete_events`, `wipe`) and live tailing (`watch`).

pub mod bindings;
mod launch;
pub mod query;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use crate::errors::{EventsError, StoreError};
use crate::row;
use crate::store::shards::check_run_id;
use crate::store::shards::INDEX_SHARD;
use crate::store::{Conn, Db, Durability, EventLog, Lease, Shards, Sql};
use query::{OrderBy, RecordsFilter};

/// One event as stored: the serialized `EventLogEntry` and the columns stock indexes it by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow {
    pub run_id: String,
    pub event: String,
    pub dagster_event_type: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS.ffffff`, as stock formats the entry's timestamp.
    pub timestamp: String,
    pub step_key: Option<String>,
    pub asset_key: Option<String>,
    pub partition: Option<String>,
    /// Whether stock mirrors the event into the index shard (asset, asset-check and run-status
    /// events); Python decides it from Dagster's event-type sets.
    pub mirror: bool,
    /// What else a mirrored event writes to the index, as Python derived it from the event.
    pub effect: Effect,
}

/// How an asset event updates its `asset_keys` row (stock's `_get_asset_entry_values`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssetEntry {
    /// No column changes (freshness state changes, failed materializations).
    #[default]
    Nothing,
    Materialization,
    Planned,
    Observation,
}

/// The index-side effects of a mirrored event.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Effect {
    #[default]
    None,
    /// An asset event of `row.asset_key`: its indexed tags and its `asset_keys` update.
    Asset {
        tags: Vec<(String, String)>,
        entry: AssetEntry,
    },
    /// `AssetCheckEvaluationPlanned`: one PLANNED execution per partition (`None`: unpartitioned).
    CheckPlanned {
        asset_key: String,
        check_name: String,
        partitions: Vec<Option<String>>,
    },
    /// `AssetCheckEvaluation`: completes the run's PLANNED execution, or records a runless one.
    CheckEvaluation {
        asset_key: String,
        check_name: String,
        passed: bool,
        partition: Option<String>,
        materialization_storage_id: Option<i64>,
    },
}

/// Where a run-scoped read starts: stock's `EventLogCursor` kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    None,
    /// After (ascending) or before (descending) this storage id of the run's shard.
    StorageId(i64),
    /// Skip this many rows of the ordered result.
    Offset(i64),
}

/// `(event type, count, latest timestamp)` per event type of a run, as stock's stats query.
pub type StatsRow = (String, i64, String);

type Result<T> = std::result::Result<T, EventsError>;

/// The event log of one storage root.
#[derive(Debug)]
pub struct Events {
    log: EventLog,
}

/// Insert one event; with `returning`, its storage id.
fn insert_event(
    c: &Conn<'_>,
    row: &EventRow,
    returning: bool,
) -> std::result::Result<Option<i64>, StoreError> {
    let mut q = Sql::new(
        "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key, \
         asset_key, partition) VALUES ",
    );
    q.values(row![
        row.run_id.as_str(),
        row.event.as_str(),
        row.dagster_event_type.as_deref(),
        row.timestamp.as_str(),
        row.step_key.as_deref(),
        row.asset_key.as_deref(),
        row.partition.as_deref(),
    ]);
    if !returning {
        c.execute(&q)?;
        return Ok(None);
    }
    q.returning_id();
    c.query_opt(&q, |r| r.int(0))
}

/// Whether `run_id` can name a run shard (the SQLite layout's rule; `EventLog::check_run_id`).
pub(crate) fn valid_run_id(run_id: &str) -> Result<()> {
    check_run_id(run_id).map_err(EventsError::InvalidRunId)
}

impl Events {
    /// The event log under `dir` (stock: `$DAGSTER_HOME/history/runs`), on shards of its own.
    /// Opens nothing yet.
    pub fn new(dir: impl Into<PathBuf>, durability: Durability) -> Events {
        Events::on(Arc::new(Shards::new(dir, durability)))
    }

    /// The event log other domains of the same storage share.
    pub fn on(log: impl Into<EventLog>) -> Events {
        Events { log: log.into() }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// A run's shard for reading: None when the run has none (reads create no file).
    fn existing_shard(&self, run_id: &str) -> Result<Option<Arc<Db>>> {
        self.check_run(run_id)?;
        if !self.log.run_exists(run_id)? {
            return Ok(None);
        }
        Ok(Some(self.log.run_db(run_id)?))
    }

    fn check_run(&self, run_id: &str) -> Result<()> {
        self.log
            .check_run_id(run_id)
            .map_err(EventsError::InvalidRunId)
    }

    /// Store events in order: each run's rows in one transaction of its shard, then the
    /// mirrored rows in one transaction of the index. Returns each row's index id when mirrored.
    ///
    /// As in stock, the shard and index writes are separate transactions: a failure between
    /// them leaves shard rows without their mirror, never the reverse. Where the event log is
    /// one database (`EventLog::mirrors_status_events` false), every row is written there
    /// once, in one transaction, and the rows to mirror get their effects in it.
    pub fn store_events(&self, rows: &[EventRow]) -> Result<Vec<Option<i64>>> {
        // Every id checked before anything is written.
        for row in rows {
            self.check_run(&row.run_id)?;
        }
        if !self.log.mirrors_status_events() {
            return self.index_events(rows, true);
        }
        let mut start = 0;
        while start < rows.len() {
            let run_id = &rows[start].run_id;
            let end = rows[start..]
                .iter()
                .position(|r| &r.run_id != run_id)
                .map_or(rows.len(), |n| start + n);
            let shard = self.log.run_db(run_id)?;
            shard.write(|c| {
                for row in &rows[start..end] {
                    insert_event(c, row, false)?;
                }
                Ok::<_, StoreError>(())
            })?;
            self.log.run_written(&shard);
            start = end;
        }
        if !rows.iter().any(|r| r.mirror) {
            return Ok(vec![None; rows.len()]);
        }
        self.index_events(rows, false)
    }

    /// Write to the index, in one transaction, the rows to mirror (`all`: every row, those to
    /// mirror with their effects); each mirrored row's id.
    fn index_events(&self, rows: &[EventRow], all: bool) -> Result<Vec<Option<i64>>> {
        let mut ids = vec![None; rows.len()];
        let mut deferred = None;
        self.log.index_db()?.write(|c| {
            for (slot, row) in ids.iter_mut().zip(rows) {
                if row.mirror || all {
                    let id =
                        insert_event(c, row, true)?.expect("an INSERT RETURNING gives its row");
                    if row.mirror {
                        *slot = Some(id);
                        if let Some(err) = apply_effect(c, row, id)? {
                            deferred.get_or_insert(err);
                        }
                    }
                }
            }
            Ok::<_, StoreError>(())
        })?;
        match deferred {
            Some(err) => Err(err),
            None => Ok(ids),
        }
    }

    /// `(storage id, event)` of a run's events, as stock's `get_records_for_run` selects them.
    /// An empty `types` list means every type. A run without a shard has no events (and, unlike
    /// stock, reading it creates no file).
    pub fn records_for_run(
        &self,
        run_id: &str,
        cursor: Cursor,
        types: &[String],
        limit: Option<i64>,
        ascending: bool,
    ) -> Result<Vec<(i64, String)>> {
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        let q = query::run_records(run_id, cursor, types, limit, ascending);
        Ok(shard.read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// Count and latest timestamp per event type of a run, for the given types.
    pub fn stats_for_run(&self, run_id: &str, types: &[String]) -> Result<Vec<StatsRow>> {
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(
            "SELECT event_logs.dagster_event_type, count(*) AS n_events_of_type, \
             max(event_logs.timestamp) AS last_event_timestamp FROM event_logs \
             WHERE event_logs.run_id = ",
        );
        q.bind(run_id)
            .push(" AND ")
            .append(&Sql::is_in("event_logs.dagster_event_type", types))
            .push(" GROUP BY event_logs.dagster_event_type");
        Ok(shard.read(|c| c.query(&q, |r| Ok((r.text(0)?, r.int(1)?, r.text(2)?))))?)
    }

    /// Bodies of a run's step events of the given types, oldest first (stock's step stats).
    pub fn step_events_for_run(
        &self,
        run_id: &str,
        types: &[String],
        step_keys: &[String],
    ) -> Result<Vec<String>> {
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT event_logs.event FROM event_logs WHERE event_logs.run_id = ");
        q.bind(run_id)
            .push(" AND event_logs.step_key IS NOT NULL AND ")
            .append(&Sql::is_in("event_logs.dagster_event_type", types));
        if !step_keys.is_empty() {
            q.push(" AND ")
                .append(&Sql::is_in("event_logs.step_key", step_keys));
        }
        q.push(" ORDER BY event_logs.id ASC");
        Ok(shard.read(|c| c.query(&q, |r| r.text(0)))?)
    }

    /// Mirrored events of every run after an index id, oldest first.
    pub fn index_events_after(
        &self,
        after_id: i64,
        types: &[String],
        limit: Option<i64>,
    ) -> Result<Vec<(i64, String)>> {
        let mut q = Sql::new(
            "SELECT event_logs.id, event_logs.event FROM event_logs WHERE event_logs.id > ",
        );
        q.bind(after_id);
        if !types.is_empty() {
            q.push(" AND ")
                .append(&Sql::is_in("event_logs.dagster_event_type", types));
        }
        q.push(" ORDER BY event_logs.id ASC");
        if let Some(limit) = limit {
            q.push(" LIMIT ").bind(limit).push(" OFFSET 0");
        }
        Ok(self
            .log
            .index_db()?
            .read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// The highest id of the index shard, None when it holds no event.
    pub fn max_record_id(&self) -> Result<Option<i64>> {
        Ok(self.log.index_db()?.read(|c| {
            c.query_opt(
                &Sql::new("SELECT max(event_logs.id) AS max_1 FROM event_logs"),
                |r| r.opt_int(0),
            )
            .map(Option::flatten)
        })?)
    }

    /// Delete a run's events from its shard and the index, with the asset tags of its
    /// materializations and observations (stock's `delete_events`; the shard file stays).
    pub fn delete_events(&self, run_id: &str) -> Result<()> {
        let mut dbs: Vec<Arc<Db>> = self.existing_shard(run_id)?.into_iter().collect();
        dbs.push(self.log.index_db()?);
        for db in dbs {
            db.write(|c| delete_run_rows(c, run_id))?;
        }
        Ok(())
    }

    /// Events matching `filter` in the index shard, ordered by id (stock's unsharded
    /// `_get_event_records`, used for run-status changes).
    pub fn index_records(
        &self,
        filter: &RecordsFilter,
        limit: Option<i64>,
        ascending: bool,
    ) -> Result<Vec<(i64, String)>> {
        let q = filter.select(true, OrderBy::Id, ascending, limit);
        Ok(self
            .log
            .index_db()?
            .read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// Events matching `filter` in one run's shard, ordered by timestamp (stock's
    /// `_get_run_sharded_event_records` reads each run's shard so; ids are per shard). A run
    /// without a shard, or whose id cannot name one, has none.
    pub fn shard_records(
        &self,
        run_id: &str,
        filter: &RecordsFilter,
        limit: Option<i64>,
        ascending: bool,
    ) -> Result<Vec<(i64, String)>> {
        if self.log.check_run_id(run_id).is_err() {
            return Ok(Vec::new());
        }
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        let q = filter.select(false, OrderBy::Timestamp, ascending, limit);
        Ok(shard.read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// Open the index shard, creating it if missing.
    pub fn ensure_index(&self) -> Result<()> {
        self.log.index_db()?;
        Ok(())
    }

    /// A connection of a shard (`"index"` or a run id) lent to stock Python code; the shard is
    /// created if missing, as stock's `run_connection` does.
    pub fn lease(&self, shard: &str) -> Result<Lease> {
        let db = if shard == INDEX_SHARD {
            self.log.index_db()?
        } else {
            self.check_run(shard)?;
            self.log.run_db(shard)?
        };
        Ok(db.lease()?)
    }

    /// The run ids that have a shard (stock's `get_all_run_ids`).
    pub fn run_ids_on_disk(&self) -> Result<Vec<String>> {
        Ok(self.log.run_ids()?)
    }

    /// Stock's `wipe`: unlink every run shard (not the index, not the runless `.db`), then clear
    /// the index's event, asset, tag, dynamic-partition, concurrency-slot, pending-step and
    /// check-execution rows. Concurrency limits and data-migration marks are kept.
    pub fn wipe(&self) -> Result<()> {
        self.log.wipe()?;
        self.log.index_db()?.write(|c| {
            for table in [
                "event_logs",
                "asset_keys",
                "asset_event_tags",
                "dynamic_partitions",
                "concurrency_slots",
                "pending_steps",
                "asset_check_executions",
            ] {
                c.execute(&Sql::new(&format!("DELETE FROM {table}")))?;
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }

    pub fn dispose(&self) {
        self.log.dispose();
    }

    /// Forget every open shard's indexes (see `Shards::reload_layouts`).
    pub fn reload_layouts(&self) {
        self.log.reload_layouts();
    }
}

/// Timestamp columns other tables keep of an event hold the event row's own string.
fn apply_effect(
    c: &Conn<'_>,
    row: &EventRow,
    event_id: i64,
) -> std::result::Result<Option<EventsError>, StoreError> {
    match &row.effect {
        Effect::None => Ok(None),
        Effect::Asset { tags, entry } => {
            let Some(asset_key) = row.asset_key.as_deref() else {
                return Ok(None);
            };
            if !tags.is_empty() {
                let mut q = Sql::new(
                    "INSERT INTO asset_event_tags (event_id, asset_key, \"key\", value, \
                     event_timestamp) VALUES ",
                );
                for (i, (key, value)) in tags.iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.values(row![
                        event_id,
                        asset_key,
                        key.as_str(),
                        value.as_str(),
                        row.timestamp.as_str(),
                    ]);
                }
                c.execute(&q)?;
            }
            upsert_asset_key(c, row, asset_key, *entry, event_id)?;
            Ok(None)
        }
        Effect::CheckPlanned {
            asset_key,
            check_name,
            partitions,
        } => {
            let mut q = Sql::new(
                "INSERT INTO asset_check_executions (asset_key, check_name, partition, run_id, \
                 execution_status, evaluation_event, evaluation_event_timestamp, \
                 evaluation_event_storage_id) VALUES ",
            );
            let unpartitioned = [None];
            let partitions: &[Option<String>] = if partitions.is_empty() {
                &unpartitioned
            } else {
                partitions
            };
            for (i, partition) in partitions.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.values(row![
                    asset_key.as_str(),
                    check_name.as_str(),
                    partition.as_deref(),
                    row.run_id.as_str(),
                    "PLANNED",
                    row.event.as_str(),
                    row.timestamp.as_str(),
                    event_id,
                ]);
            }
            c.execute(&q)?;
            Ok(None)
        }
        Effect::CheckEvaluation {
            asset_key,
            check_name,
            passed,
            partition,
            materialization_storage_id,
        } => {
            let status = if *passed { "SUCCEEDED" } else { "FAILED" };
            if !row.run_id.is_empty() {
                let mut q = Sql::new("UPDATE asset_check_executions SET partition = ");
                q.bind(partition.as_deref())
                    .push(", execution_status = ")
                    .bind(status)
                    .push(", evaluation_event = ")
                    .bind(row.event.as_str())
                    .push(", evaluation_event_timestamp = ")
                    .bind(row.timestamp.as_str())
                    .push(", evaluation_event_storage_id = ")
                    .bind(event_id)
                    .push(", materialization_event_storage_id = ")
                    .bind(*materialization_storage_id)
                    .push(" WHERE asset_check_executions.asset_key = ")
                    .bind(asset_key.as_str())
                    .push(" AND asset_check_executions.check_name = ")
                    .bind(check_name.as_str())
                    .push(" AND asset_check_executions.run_id = ")
                    .bind(row.run_id.as_str());
                match partition {
                    Some(p) => q
                        .push(" AND asset_check_executions.partition = ")
                        .bind(p.as_str()),
                    None => q.push(" AND asset_check_executions.partition IS NULL"),
                };
                match c.execute(&q)? {
                    0 => {}
                    1 => return Ok(None),
                    rows => {
                        return Ok(Some(EventsError::DuplicatePlannedCheck {
                            rows,
                            asset_key: asset_key.clone(),
                            check_name: check_name.clone(),
                            run_id: row.run_id.clone(),
                        }))
                    }
                }
            }
            let mut q = Sql::new(
                "INSERT INTO asset_check_executions (asset_key, check_name, partition, run_id, \
                 execution_status, evaluation_event, evaluation_event_timestamp, \
                 evaluation_event_storage_id, materialization_event_storage_id) VALUES ",
            );
            q.values(row![
                asset_key.as_str(),
                check_name.as_str(),
                partition.as_deref(),
                row.run_id.as_str(),
                status,
                row.event.as_str(),
                row.timestamp.as_str(),
                event_id,
                *materialization_storage_id
            ]);
            c.execute(&q)?;
            Ok(None)
        }
    }
}

/// Stock's insert-then-update of an asset's row; a failed insert uses no rowid (no
/// AUTOINCREMENT), so ON CONFLICT leaves the same rows.
fn upsert_asset_key(
    c: &Conn<'_>,
    row: &EventRow,
    asset_key: &str,
    entry: AssetEntry,
    event_id: i64,
) -> std::result::Result<(), StoreError> {
    let mut columns: Vec<(&str, crate::store::Value)> = Vec::new();
    if entry == AssetEntry::Materialization {
        // serialize_value(EventLogRecord(storage_id, event_log_entry)): sorted keys, so the
        // stored event JSON is spliced in verbatim.
        let record = format!(
            "{{\"__class__\": \"EventLogRecord\", \"event_log_entry\": {}, \"storage_id\": {}}}",
            row.event, event_id
        );
        columns.push(("last_materialization", record.into()));
    }
    if matches!(entry, AssetEntry::Materialization | AssetEntry::Planned) {
        columns.push(("last_run_id", row.run_id.as_str().into()));
    }
    if entry != AssetEntry::Nothing {
        columns.push((
            "last_materialization_timestamp",
            row.timestamp.as_str().into(),
        ));
    }
    if columns.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let mut q = Sql::new(&format!(
        "INSERT INTO asset_keys (asset_key, {}) VALUES (",
        names.join(", ")
    ));
    q.bind(asset_key);
    for (_, value) in &columns {
        q.push(", ").bind(value.clone());
    }
    let updates: Vec<String> = names
        .iter()
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    q.push(&format!(
        ") ON CONFLICT (asset_key) DO UPDATE SET {}",
        updates.join(", ")
    ));
    c.execute(&q)?;
    Ok(())
}

fn delete_run_rows(c: &Conn<'_>, run_id: &str) -> std::result::Result<(), StoreError> {
    let mut ids = Sql::new("SELECT event_logs.id FROM event_logs WHERE event_logs.run_id = ");
    ids.bind(run_id).push(
        " AND (event_logs.dagster_event_type = 'ASSET_MATERIALIZATION' OR \
         event_logs.dagster_event_type = 'ASSET_OBSERVATION')",
    );
    let asset_event_ids = c.query(&ids, |r| r.int(0))?;
    let mut delete = Sql::new("DELETE FROM event_logs WHERE event_logs.run_id = ");
    delete.bind(run_id);
    c.execute(&delete)?;
    if !asset_event_ids.is_empty() {
        let mut tags = Sql::new("DELETE FROM asset_event_tags WHERE asset_event_tags.event_id IN ");
        tags.bind_list(&asset_event_ids);
        c.execute(&tags)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> (tempfile::TempDir, Events) {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::new(dir.path().join("history").join("runs"), Durability::Off);
        (dir, events)
    }

    fn row(run_id: &str, kind: &str, n: u32, mirror: bool) -> EventRow {
        EventRow {
            run_id: run_id.into(),
            event: format!("{{\"n\": {n}}}"),
            dagster_event_type: Some(kind.into()),
            timestamp: format!("2026-01-01 00:00:{n:02}.000000"),
            step_key: (kind.starts_with("STEP")).then(|| format!("step_{}", n % 2)),
            mirror,
            ..Default::default()
        }
    }

    fn bodies(rows: &[(i64, String)]) -> Vec<&str> {
        rows.iter().map(|(_, e)| e.as_str()).collect()
    }

    #[test]
    fn rows_go_to_their_shard_and_mirrored_ones_to_the_index() {
        let (_d, ev) = events();
        let ids = ev
            .store_events(&[
                row("a", "PIPELINE_START", 1, true),
                row("a", "STEP_START", 2, false),
                row("b", "ASSET_MATERIALIZATION", 3, true),
            ])
            .unwrap();
        assert_eq!(ids, [Some(1), None, Some(2)]);
        let a = ev
            .records_for_run("a", Cursor::None, &[], None, true)
            .unwrap();
        assert_eq!(a.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
        let b = ev
            .records_for_run("b", Cursor::None, &[], None, true)
            .unwrap();
        assert_eq!(b, [(1, "{\"n\": 3}".to_string())]);
        assert_eq!(ev.max_record_id().unwrap(), Some(2));
        let index = ev.index_events_after(-1, &[], None).unwrap();
        assert_eq!(bodies(&index), ["{\"n\": 1}", "{\"n\": 3}"]);
    }

    #[test]
    fn cursors_types_limits_and_direction() {
        let (_d, ev) = events();
        let rows: Vec<EventRow> = (1..=6)
            .map(|n| {
                let kind = if n % 2 == 0 {
                    "STEP_SUCCESS"
                } else {
                    "ENGINE_EVENT"
                };
                row("r", kind, n, false)
            })
            .collect();
        ev.store_events(&rows).unwrap();
        let after_2 = ev
            .records_for_run("r", Cursor::StorageId(2), &[], Some(2), true)
            .unwrap();
        assert_eq!(bodies(&after_2), ["{\"n\": 3}", "{\"n\": 4}"]);
        let before_5 = ev
            .records_for_run("r", Cursor::StorageId(5), &[], None, false)
            .unwrap();
        assert_eq!(
            before_5.iter().map(|r| r.0).collect::<Vec<_>>(),
            [4, 3, 2, 1]
        );
        let offset = ev
            .records_for_run("r", Cursor::Offset(4), &[], None, true)
            .unwrap();
        assert_eq!(offset.iter().map(|r| r.0).collect::<Vec<_>>(), [5, 6]);
        let steps = ev
            .records_for_run("r", Cursor::None, &["STEP_SUCCESS".into()], None, true)
            .unwrap();
        assert_eq!(steps.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4, 6]);
    }

    #[test]
    fn stats_and_step_events() {
        let (_d, ev) = events();
        ev.store_events(&[
            row("r", "PIPELINE_START", 1, true),
            row("r", "STEP_SUCCESS", 2, false),
            row("r", "STEP_SUCCESS", 3, false),
            row("r", "STEP_FAILURE", 4, false),
        ])
        .unwrap();
        let mut stats = ev
            .stats_for_run("r", &["STEP_SUCCESS".into(), "PIPELINE_START".into()])
            .unwrap();
        stats.sort();
        assert_eq!(
            stats,
            [
                (
                    "PIPELINE_START".into(),
                    1,
                    "2026-01-01 00:00:01.000000".into()
                ),
                (
                    "STEP_SUCCESS".into(),
                    2,
                    "2026-01-01 00:00:03.000000".into()
                ),
            ]
        );
        let only_step_1 = ev
            .step_events_for_run(
                "r",
                &["STEP_SUCCESS".into(), "STEP_FAILURE".into()],
                &["step_1".into()],
            )
            .unwrap();
        assert_eq!(only_step_1, ["{\"n\": 3}"]);
    }

    #[test]
    fn delete_removes_a_runs_rows_everywhere_and_keeps_others() {
        let (_d, ev) = events();
        ev.store_events(&[
            row("a", "ASSET_MATERIALIZATION", 1, true),
            row("b", "ASSET_MATERIALIZATION", 2, true),
        ])
        .unwrap();
        ev.delete_events("a").unwrap();
        assert!(ev
            .records_for_run("a", Cursor::None, &[], None, true)
            .unwrap()
            .is_empty());
        let index = ev.index_events_after(-1, &[], None).unwrap();
        assert_eq!(bodies(&index), ["{\"n\": 2}"]);
    }

    fn index_rows(ev: &Events, sql: &str) -> Vec<Vec<Option<String>>> {
        ev.log
            .index_db()
            .unwrap()
            .read(|c| {
                c.query(&Sql::new(sql), |r| {
                    (0..r.column_count())
                        .map(|i| r.opt_text(i))
                        .collect::<std::result::Result<_, _>>()
                })
            })
            .unwrap()
    }

    fn asset_row(run_id: &str, kind: &str, n: u32, entry: AssetEntry) -> EventRow {
        EventRow {
            asset_key: Some("[\"a\"]".into()),
            effect: Effect::Asset {
                tags: if kind == "ASSET_MATERIALIZATION" {
                    vec![("dagster/data_version".into(), format!("v{n}"))]
                } else {
                    vec![]
                },
                entry,
            },
            ..row(run_id, kind, n, true)
        }
    }

    #[test]
    fn asset_events_index_tags_and_keep_the_asset_row_current() {
        let (_d, ev) = events();
        ev.store_events(&[
            asset_row(
                "r1",
                "ASSET_MATERIALIZATION_PLANNED",
                1,
                AssetEntry::Planned,
            ),
            asset_row(
                "r1",
                "ASSET_MATERIALIZATION",
                2,
                AssetEntry::Materialization,
            ),
            asset_row("r2", "ASSET_OBSERVATION", 3, AssetEntry::Observation),
        ])
        .unwrap();
        let keys = index_rows(
            &ev,
            "SELECT asset_key, last_materialization, last_run_id, \
             last_materialization_timestamp FROM asset_keys",
        );
        assert_eq!(
            keys,
            [[
                Some("[\"a\"]".into()),
                Some(
                    "{\"__class__\": \"EventLogRecord\", \"event_log_entry\": {\"n\": 2}, \
                     \"storage_id\": 2}"
                        .into()
                ),
                Some("r1".into()),
                Some("2026-01-01 00:00:03.000000".into()),
            ]]
        );
        let tags = index_rows(
            &ev,
            "SELECT event_id, \"key\", value, event_timestamp FROM asset_event_tags",
        );
        assert_eq!(
            tags,
            [[
                Some("2".into()),
                Some("dagster/data_version".into()),
                Some("v2".into()),
                Some("2026-01-01 00:00:02.000000".into()),
            ]]
        );
    }

    fn check_row(run_id: &str, kind: &str, n: u32, effect: Effect) -> EventRow {
        EventRow {
            effect,
            ..row(run_id, kind, n, true)
        }
    }

    fn planned(partitions: Vec<Option<String>>) -> Effect {
        Effect::CheckPlanned {
            asset_key: "[\"a\"]".into(),
            check_name: "c".into(),
            partitions,
        }
    }

    fn evaluation(passed: bool, partition: Option<&str>) -> Effect {
        Effect::CheckEvaluation {
            asset_key: "[\"a\"]".into(),
            check_name: "c".into(),
            passed,
            partition: partition.map(Into::into),
            materialization_storage_id: Some(7),
        }
    }

    #[test]
    fn check_executions_go_from_planned_to_their_outcome() {
        let (_d, ev) = events();
        ev.store_events(&[
            check_row("r", "ASSET_CHECK_EVALUATION_PLANNED", 1, planned(vec![])),
            check_row("r", "ASSET_CHECK_EVALUATION", 2, evaluation(false, None)),
            check_row("", "ASSET_CHECK_EVALUATION", 3, evaluation(true, Some("p"))),
        ])
        .unwrap();
        let rows = index_rows(
            &ev,
            "SELECT run_id, partition, execution_status, evaluation_event_storage_id, \
             materialization_event_storage_id FROM asset_check_executions ORDER BY id",
        );
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            rows,
            [
                [s("r"), None, s("FAILED"), s("2"), s("7")],
                [s(""), s("p"), s("SUCCEEDED"), s("3"), s("7")],
            ]
        );
    }

    #[test]
    fn duplicate_planned_checks_commit_then_fail_as_stock() {
        let (_d, ev) = events();
        ev.store_events(&[
            check_row("r", "ASSET_CHECK_EVALUATION_PLANNED", 1, planned(vec![])),
            check_row("r", "ASSET_CHECK_EVALUATION_PLANNED", 2, planned(vec![])),
        ])
        .unwrap();
        let err = ev
            .store_events(&[check_row(
                "r",
                "ASSET_CHECK_EVALUATION",
                3,
                evaluation(true, None),
            )])
            .unwrap_err();
        assert!(
            matches!(err, EventsError::DuplicatePlannedCheck { rows: 2, .. }),
            "{err}"
        );
        let statuses = index_rows(&ev, "SELECT execution_status FROM asset_check_executions");
        assert_eq!(statuses.len(), 2);
        assert!(statuses
            .iter()
            .all(|r| r[0].as_deref() == Some("SUCCEEDED")));
        assert_eq!(
            ev.records_for_run("r", Cursor::None, &[], None, true)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn unknown_runs_read_empty_without_creating_files_and_bad_ids_are_refused() {
        let (d, ev) = events();
        assert!(ev
            .records_for_run("nope", Cursor::None, &[], None, true)
            .unwrap()
            .is_empty());
        assert!(!d.path().join("history/runs/nope.db").exists());
        let err = ev
            .store_events(&[row("../escape", "ENGINE_EVENT", 1, false)])
            .unwrap_err();
        assert!(matches!(err, EventsError::InvalidRunId(_)));
        assert!(!d.path().join("history/escape.db").exists());
        assert_eq!(ev.max_record_id().unwrap(), None);
    }
}
