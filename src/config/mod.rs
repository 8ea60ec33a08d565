//! The config domain: what the instance keeps about itself in `history/runs.db` besides runs —
//! the daemons' heartbeats (`daemon_heartbeats`), the daemons' cursors and other key-value state
//! (`kvs`, `get/set_cursor_values`, the instance's `daemon_cursor_storage`) and the run storage's
//! id (`instance_info`).
//!
//! It lives in the runs domain's file and on the same store (`Runs`: one pool of connections per
//! file and process), as the assets domain lives in the events domain's index. Bodies arrive
//! serialized by Dagster's serdes (Python owns `DaemonHeartbeat`); this module owns every read
//! and write of those three tables. Each write is one `BEGIN IMMEDIATE` transaction, so writers
//! in many threads and processes queue on the lock instead of failing, and a batch of cursor
//! values is stored whole or not at all.

pub mod bindings;
pub mod plans;
pub mod statements;

use std::sync::Arc;

use pyo3::FromPyObject;

use crate::errors::StoreError;
use crate::runs::Runs;
use crate::store::Db;

type Result<T> = std::result::Result<T, StoreError>;

/// A heartbeat as stored: its columns and the serialized `DaemonHeartbeat`.
#[derive(Debug, Clone, FromPyObject)]
#[pyo3(from_item_all)]
pub struct Heartbeat {
    pub daemon_type: String,
    pub daemon_id: Option<String>,
    /// Stock's DateTime text (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC).
    pub timestamp: String,
    pub body: String,
}

/// The config domain's view of one `runs.db`.
pub struct Config {
    runs: Arc<Runs>,
}

impl Config {
    pub fn on(runs: Arc<Runs>) -> Config {
        Config { runs }
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    fn db(&self) -> &Db {
        self.runs.db()
    }

    // -- daemon heartbeats ---------------------------------------------------------------------

    pub fn add_heartbeat(&self, beat: &Heartbeat) -> Result<()> {
        let q = statements::upsert_heartbeat(
            &beat.daemon_type,
            beat.daemon_id.as_deref(),
            &beat.timestamp,
            &beat.body,
        );
        self.db().write(|c| c.execute(&q).map(|_| ()))
    }

    /// Every stored heartbeat body, in table order; NULL bodies (never written by Dagster) are
    /// handed over as None for Python to reject as stock's deserializer does.
    pub fn heartbeats(&self) -> Result<Vec<Option<String>>> {
        self.db()
            .read(|c| c.query(&statements::heartbeats(), |r| r.opt_text(0)))
    }

    pub fn wipe_heartbeats(&self) -> Result<()> {
        self.db()
            .write(|c| c.execute(&statements::delete_heartbeats()).map(|_| ()))
    }

    // -- key-value store (daemon cursors) ------------------------------------------------------

    /// The stored `(key, value)` pairs among `keys`, in key order per chunk of `CHUNK` keys
    /// (the caller sorts the keys, so in key order overall). One read transaction: a concurrent
    /// write is seen entirely or not at all.
    pub fn cursor_values(&self, keys: &[String]) -> Result<Vec<(String, Option<String>)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.db().read(|c| {
            let mut out = Vec::new();
            for chunk in keys.chunks(statements::CHUNK) {
                out.extend(c.query(&statements::cursor_values(chunk), |r| {
                    Ok((r.text(0)?, r.opt_text(1)?))
                })?);
            }
            Ok(out)
        })
    }

    /// Insert or overwrite every pair, in one transaction.
    pub fn set_cursor_values(&self, pairs: &[(String, String)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.db().write(|c| {
            for chunk in pairs.chunks(statements::CHUNK) {
                c.execute(&statements::upsert_cursor_values(chunk))?;
            }
            Ok(())
        })
    }

    // -- instance info -------------------------------------------------------------------------

    /// The run storage's id: the stored one (as stock, the first row's, even NULL), else
    /// `new_id`, stored. Re-read under the write lock, so processes asking at once agree.
    pub fn run_storage_id(&self, new_id: &str) -> Result<Option<String>> {
        let read = |c: &crate::store::Conn<'_>| {
            c.query_opt(&statements::run_storage_id(), |r| r.opt_text(0))
        };
        if let Some(found) = self.db().read(read)? {
            return Ok(found);
        }
        self.db().write(|c| {
            if let Some(found) = read(c)? {
                return Ok(found);
            }
            c.execute(&statements::insert_run_storage_id(new_id))?;
            Ok(Some(new_id.to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let runs = Runs::open(&path.to_string_lossy(), Durability::Off).unwrap();
        (dir, Config::on(Arc::new(runs)))
    }

    fn beat(daemon_type: &str, id: &str, body: &str) -> Heartbeat {
        Heartbeat {
            daemon_type: daemon_type.into(),
            daemon_id: Some(id.into()),
            timestamp: "2026-01-01 00:00:00.000000".into(),
            body: body.into(),
        }
    }

    fn pairs(n: usize, value: &str) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("k{i:05}"), format!("{value}{i}")))
            .collect()
    }

    #[test]
    fn heartbeat_per_daemon_type_last_write_kept_in_place() {
        let (_d, cfg) = config();
        cfg.add_heartbeat(&beat("SCHEDULER", "a", "1")).unwrap();
        cfg.add_heartbeat(&beat("SENSOR", "a", "2")).unwrap();
        cfg.add_heartbeat(&beat("SCHEDULER", "b", "3")).unwrap();
        let got = cfg.heartbeats().unwrap();
        assert_eq!(got, [Some("3".to_owned()), Some("2".to_owned())]);
        cfg.wipe_heartbeats().unwrap();
        assert!(cfg.heartbeats().unwrap().is_empty());
    }

    #[test]
    fn cursor_values_upsert_across_chunks() {
        let (_d, cfg) = config();
        let n = statements::CHUNK * 2 + 7;
        cfg.set_cursor_values(&pairs(n, "a")).unwrap();
        // Half of them again, mixed with new keys past the end.
        let mut again = pairs(n + 10, "b");
        again.drain(..n / 2);
        cfg.set_cursor_values(&again).unwrap();
        let keys: Vec<String> = (0..n + 20).map(|i| format!("k{i:05}")).collect();
        let got = cfg.cursor_values(&keys).unwrap();
        assert_eq!(got.len(), n + 10);
        for (i, (key, value)) in got.iter().enumerate() {
            assert_eq!(key, &format!("k{i:05}"));
            let side = if i < n / 2 { "a" } else { "b" };
            assert_eq!(value.as_deref(), Some(format!("{side}{i}").as_str()));
        }
        assert!(cfg.cursor_values(&[]).unwrap().is_empty());
        cfg.set_cursor_values(&[]).unwrap();
    }

    #[test]
    fn run_storage_id_is_written_once() {
        let (_d, cfg) = config();
        assert_eq!(cfg.run_storage_id("id-1").unwrap().as_deref(), Some("id-1"));
        assert_eq!(cfg.run_storage_id("id-2").unwrap().as_deref(), Some("id-1"));
    }
}
