//! Where the event log is, behind one interface (stock's `run_connection` / `index_connection`):
//! on SQLite, a shard file per run and an index shard that mirrors run-status and asset events
//! (`Shards`); on PostgreSQL, one database holding every event once (`Single`: stock's
//! `run_connection` and `index_connection` are the same there, so nothing is written twice).
//! The events, assets and storage domains ask it for a run's database or the index's, and never
//! name files.

use std::sync::Arc;

use super::shards::{self, Shards};
use super::{Db, Sql};
use crate::errors::StoreError;

#[derive(Debug, Clone)]
pub enum EventLog {
    /// `<dir>/<run_id>.db` per run and `<dir>/index.db` (stock's `SqliteEventLogStorage`).
    Shards(Arc<Shards>),
    /// One database with `event_logs` and the index tables (stock's `PostgresEventLogStorage`).
    Single(Arc<Db>),
}

impl From<Arc<Shards>> for EventLog {
    fn from(shards: Arc<Shards>) -> Self {
        EventLog::Shards(shards)
    }
}

impl EventLog {
    /// Why `run_id` cannot be stored under (a shard file's name must stay in its directory).
    pub fn check_run_id(&self, run_id: &str) -> Result<(), String> {
        match self {
            EventLog::Shards(_) => shards::check_run_id(run_id),
            // A run id is a column value there, never a name on disk.
            EventLog::Single(_) => Ok(()),
        }
    }

    /// The database a run's events are written to and read from, created on first use. The
    /// caller has checked the id ([`EventLog::check_run_id`]).
    pub fn run_db(&self, run_id: &str) -> Result<Arc<Db>, StoreError> {
        match self {
            EventLog::Shards(s) => s.run(run_id),
            EventLog::Single(db) => Ok(db.clone()),
        }
    }

    /// The database of the index: events across runs, assets, pools, partitions.
    pub fn index_db(&self) -> Result<Arc<Db>, StoreError> {
        match self {
            EventLog::Shards(s) => s.index(),
            EventLog::Single(db) => Ok(db.clone()),
        }
    }

    /// Whether run-status and asset events are written twice, to the run's database and again
    /// to the index (whose id is the one stock reports). False where both are one database.
    pub fn mirrors_status_events(&self) -> bool {
        match self {
            EventLog::Shards(_) => true,
            EventLog::Single(_) => false,
        }
    }

    /// Whether a run has stored events (reads of an unknown run create nothing).
    pub fn run_exists(&self, run_id: &str) -> Result<bool, StoreError> {
        match self {
            EventLog::Shards(s) => Ok(s.run_exists(run_id)),
            EventLog::Single(db) => {
                let mut q = Sql::new("SELECT 1 FROM event_logs WHERE run_id = ");
                q.bind(run_id).push(" LIMIT 1");
                db.read(|c| c.query_opt(&q, |_| Ok(())))
                    .map(|found| found.is_some())
            }
        }
    }

    /// The run ids that have events (stock's `get_all_run_ids`), in order.
    pub fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        match self {
            EventLog::Shards(s) => s.run_ids_on_disk(),
            // In the shards' order (sorted); the `run_id` index serves the DISTINCT.
            EventLog::Single(db) => db.read(|c| {
                c.query(
                    &Sql::new(
                        "SELECT DISTINCT run_id FROM event_logs WHERE run_id IS NOT NULL \
                         ORDER BY run_id",
                    ),
                    |r| r.text(0),
                )
            }),
        }
    }

    /// The runs' side of stock's `wipe`: every run's events gone (the shards unlinked); the
    /// index's rows are the domain's to clear.
    pub fn wipe(&self) -> Result<(), StoreError> {
        match self {
            EventLog::Shards(s) => s.remove_run_shards(),
            // The runs' events are the index's rows there, which the domain clears.
            EventLog::Single(_) => Ok(()),
        }
    }

    /// After a commit to a run's database: signal stock's watchers of the run (on SQLite, the
    /// shard file's modification time, which its file watcher follows).
    pub fn run_written(&self, db: &Db) {
        match self {
            EventLog::Shards(_) => shards::touch(db.location()),
            // Stock's PostgreSQL watchers poll (its NOTIFY goes out with the insert itself).
            EventLog::Single(_) => {}
        }
    }

    /// Close every pooled connection.
    pub fn dispose(&self) {
        match self {
            EventLog::Shards(s) => s.dispose(),
            EventLog::Single(db) => db.dispose(),
        }
    }

    /// Forget the indexes of every open database; each reads them again when needed.
    pub fn reload_layouts(&self) {
        match self {
            EventLog::Shards(s) => s.reload_layouts(),
            EventLog::Single(db) => db.reload_layout(),
        }
    }

    /// The run shards, for what only the SQLite layout has (its directory).
    pub fn shards(&self) -> Option<&Arc<Shards>> {
        match self {
            EventLog::Shards(s) => Some(s),
            EventLog::Single(_) => None,
        }
    }
}
