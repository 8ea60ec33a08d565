//! The events domain: Dagster's event log over `history/runs/` (per-run shards + the index shard).
//!
//! Groundwork for issue #3, not reachable from Python yet: the event rows' write path (run shard,
//! and the index mirror of asset, asset-check and run-status events) and the run-scoped reads,
//! with stock `SqliteEventLogStorage`'s SQL (`docs/events-domain.md` §2.1–2.2, §3.1–3.5, §3.9).
//! Still to come before the domain can be switched on: the asset side effects of a write (asset
//! tags, `asset_keys`, asset-check executions), watching, the Python adapter and the bindings.

use std::path::PathBuf;
use std::sync::Arc;

use crate::errors::StoreError;
use crate::store::shards::check_run_id;
use crate::store::sql::Where;
use crate::store::{Conn, Db, Durability, Shards, Sql};

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

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    InvalidRunId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, EventsError>;

/// The event log of one storage root.
#[derive(Debug)]
pub struct Events {
    shards: Shards,
}

const INSERT_EVENT: &str = "INSERT INTO event_logs (run_id, event, dagster_event_type, \
                            timestamp, step_key, asset_key, partition) VALUES (";

fn insert_event(c: &Conn<'_>, row: &EventRow) -> std::result::Result<(), StoreError> {
    let mut q = Sql::new(INSERT_EVENT);
    q.bind(row.run_id.as_str())
        .push(", ")
        .bind(row.event.as_str())
        .push(", ")
        .bind(row.dagster_event_type.as_deref())
        .push(", ")
        .bind(row.timestamp.as_str())
        .push(", ")
        .bind(row.step_key.as_deref())
        .push(", ")
        .bind(row.asset_key.as_deref())
        .push(", ")
        .bind(row.partition.as_deref())
        .push(")");
    c.execute(&q)?;
    Ok(())
}

fn in_list(column: &str, values: &[String]) -> Sql {
    let mut sql = Sql::new(&format!("{column} IN "));
    sql.bind_list(values);
    sql
}

impl Events {
    /// The event log under `dir` (stock: `$DAGSTER_HOME/history/runs`). Opens nothing yet.
    pub fn new(dir: impl Into<PathBuf>, durability: Durability) -> Events {
        Events {
            shards: Shards::new(dir, durability),
        }
    }

    fn run_shard(&self, run_id: &str) -> Result<Arc<Db>> {
        check_run_id(run_id).map_err(EventsError::InvalidRunId)?;
        Ok(self.shards.run(run_id)?)
    }

    /// Store events in order: each run's rows in one transaction of its shard, then the
    /// mirrored rows in one transaction of the index. Returns each row's index id when mirrored.
    ///
    /// As in stock, the shard and index writes are separate transactions: a failure between
    /// them leaves shard rows without their mirror, never the reverse.
    pub fn store_events(&self, rows: &[EventRow]) -> Result<Vec<Option<i64>>> {
        for row in rows {
            check_run_id(&row.run_id).map_err(EventsError::InvalidRunId)?;
        }
        let mut start = 0;
        while start < rows.len() {
            let run_id = &rows[start].run_id;
            let end = rows[start..]
                .iter()
                .position(|r| &r.run_id != run_id)
                .map_or(rows.len(), |n| start + n);
            let shard = self.run_shard(run_id)?;
            shard.write(|c| {
                for row in &rows[start..end] {
                    insert_event(c, row)?;
                }
                Ok::<_, StoreError>(())
            })?;
            start = end;
        }
        let mut ids = vec![None; rows.len()];
        if rows.iter().any(|r| r.mirror) {
            self.shards.index()?.write(|c| {
                for (slot, row) in ids.iter_mut().zip(rows) {
                    if row.mirror {
                        insert_event(c, row)?;
                        *slot = Some(c.last_insert_rowid());
                    }
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(ids)
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
        check_run_id(run_id).map_err(EventsError::InvalidRunId)?;
        if !self.shards.run_exists(run_id) {
            return Ok(Vec::new());
        }
        let mut conds = Where::default();
        let mut by_run = Sql::new("event_logs.run_id = ");
        by_run.bind(run_id);
        conds.and(by_run);
        if !types.is_empty() {
            conds.and(in_list("event_logs.dagster_event_type", types));
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
        if limit.is_some() || offset.is_some() {
            // SQLite's LIMIT -1 is "no limit", which stock emits for an offset without a limit.
            q.push(" LIMIT ")
                .bind(limit.unwrap_or(-1))
                .push(" OFFSET ")
                .bind(offset.unwrap_or(0));
        }
        let shard = self.run_shard(run_id)?;
        Ok(shard.read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// Count and latest timestamp per event type of a run, for the given types.
    pub fn stats_for_run(&self, run_id: &str, types: &[String]) -> Result<Vec<StatsRow>> {
        check_run_id(run_id).map_err(EventsError::InvalidRunId)?;
        if !self.shards.run_exists(run_id) || types.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(
            "SELECT event_logs.dagster_event_type, count(*) AS n_events_of_type, \
             max(event_logs.timestamp) AS last_event_timestamp FROM event_logs \
             WHERE event_logs.run_id = ",
        );
        q.bind(run_id)
            .push(" AND ")
            .append(&in_list("event_logs.dagster_event_type", types))
            .push(" GROUP BY event_logs.dagster_event_type");
        let shard = self.run_shard(run_id)?;
        Ok(shard.read(|c| c.query(&q, |r| Ok((r.text(0)?, r.int(1)?, r.text(2)?))))?)
    }

    /// Bodies of a run's step events of the given types, oldest first (stock's step stats).
    pub fn step_events_for_run(
        &self,
        run_id: &str,
        types: &[String],
        step_keys: &[String],
    ) -> Result<Vec<String>> {
        check_run_id(run_id).map_err(EventsError::InvalidRunId)?;
        if !self.shards.run_exists(run_id) || types.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT event_logs.event FROM event_logs WHERE event_logs.run_id = ");
        q.bind(run_id)
            .push(" AND event_logs.step_key IS NOT NULL AND ")
            .append(&in_list("event_logs.dagster_event_type", types));
        if !step_keys.is_empty() {
            q.push(" AND ")
                .append(&in_list("event_logs.step_key", step_keys));
        }
        q.push(" ORDER BY event_logs.id ASC");
        let shard = self.run_shard(run_id)?;
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
                .append(&in_list("event_logs.dagster_event_type", types));
        }
        q.push(" ORDER BY event_logs.id ASC");
        if let Some(limit) = limit {
            q.push(" LIMIT ").bind(limit).push(" OFFSET 0");
        }
        Ok(self
            .shards
            .index()?
            .read(|c| c.query(&q, |r| Ok((r.int(0)?, r.text(1)?))))?)
    }

    /// The highest id of the index shard, None when it holds no event.
    pub fn max_record_id(&self) -> Result<Option<i64>> {
        Ok(self.shards.index()?.read(|c| {
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
        check_run_id(run_id).map_err(EventsError::InvalidRunId)?;
        let mut dbs = Vec::new();
        if self.shards.run_exists(run_id) {
            dbs.push(self.run_shard(run_id)?);
        }
        dbs.push(self.shards.index()?);
        for db in dbs {
            db.write(|c| delete_run_rows(c, run_id))?;
        }
        Ok(())
    }

    pub fn dispose(&self) {
        self.shards.dispose();
    }
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
