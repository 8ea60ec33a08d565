//! The event log's files: an index shard and one shard per run, in one directory, opened on
//! demand and kept open for reuse (stock's `SqliteEventLogStorage` layout).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::schema::{Schema, EVENT_INDEX_SCHEMA, EVENT_SHARD_SCHEMA};
use super::Durability;
use crate::errors::StoreError;
use crate::store::Db;

pub const INDEX_SHARD: &str = "index";
/// Run shards kept open at once; a process touching more (the webserver paging through history)
/// closes the least recently opened and reopens it when needed.
const MAX_OPEN_SHARDS: usize = 64;

/// The shards under one `history/runs/` directory.
#[derive(Debug)]
pub struct Shards {
    dir: PathBuf,
    durability: Durability,
    index: Mutex<Option<Arc<Db>>>,
    runs: Mutex<OpenShards>,
}

/// Open run shards, and the order they were opened in (oldest first) for eviction.
#[derive(Debug, Default)]
struct OpenShards {
    by_id: HashMap<String, Arc<Db>>,
    order: VecDeque<String>,
}

/// Why a run id cannot name a shard file. Stock joins the id into a path unchecked
/// (`<dir>/<run_id>.db`), so `../x` would write outside the storage root. The empty id is
/// valid: stock stores runless events in `<dir>/.db`. `index` would be the index shard itself.
pub fn check_run_id(run_id: &str) -> Result<(), String> {
    let bad = run_id == INDEX_SHARD
        || run_id
            .chars()
            .any(|c| c == '/' || c == '\\' || c == '\0' || c.is_control());
    if bad {
        Err(format!(
            "run id {run_id:?} cannot name an event log shard: it must not be {INDEX_SHARD:?} \
             and must be free of path separators and control characters"
        ))
    } else {
        Ok(())
    }
}

impl Shards {
    pub fn new(dir: impl Into<PathBuf>, durability: Durability) -> Shards {
        Shards {
            dir: dir.into(),
            durability,
            index: Mutex::new(None),
            runs: Mutex::new(OpenShards::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .join(format!("{name}.db"))
            .to_string_lossy()
            .into_owned()
    }

    fn open(&self, name: &str, schema: &'static Schema) -> Result<Arc<Db>, StoreError> {
        Ok(Arc::new(Db::open(
            &self.path(name),
            self.durability,
            schema,
        )?))
    }

    /// The index shard, created on first use.
    pub fn index(&self) -> Result<Arc<Db>, StoreError> {
        let mut slot = self.index.lock();
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let db = self.open(INDEX_SHARD, &EVENT_INDEX_SCHEMA)?;
        *slot = Some(db.clone());
        Ok(db)
    }

    /// A run's shard, created on first use. The caller has checked the id (`check_run_id`).
    pub fn run(&self, run_id: &str) -> Result<Arc<Db>, StoreError> {
        debug_assert!(check_run_id(run_id).is_ok());
        if let Some(db) = self.runs.lock().by_id.get(run_id) {
            return Ok(db.clone());
        }
        // Opened without the lock held: creating a shard waits on SQLite's own locks.
        let db = self.open(run_id, &EVENT_SHARD_SCHEMA)?;
        let mut open = self.runs.lock();
        if let Some(existing) = open.by_id.get(run_id) {
            return Ok(existing.clone());
        }
        if open.by_id.len() >= MAX_OPEN_SHARDS {
            if let Some(oldest) = open.order.pop_front() {
                open.by_id.remove(&oldest);
            }
        }
        open.by_id.insert(run_id.to_owned(), db.clone());
        open.order.push_back(run_id.to_owned());
        Ok(db)
    }

    /// Whether a run's shard file exists (reads of an unknown run create nothing).
    pub fn run_exists(&self, run_id: &str) -> bool {
        Path::new(&self.path(run_id)).exists()
    }

    /// Names of the run shards in the directory (`<run_id>.db`, not the index nor hidden files),
    /// as stock's `get_all_run_ids` globs them.
    pub fn run_ids_on_disk(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self
            .files()?
            .into_iter()
            .filter_map(|name| name.strip_suffix(".db").map(str::to_owned))
            .filter(|id| id != INDEX_SHARD)
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn files(&self) -> Result<Vec<String>, StoreError> {
        let io = |source| StoreError::Io {
            path: self.dir.to_string_lossy().into_owned(),
            source,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned();
            // Shell globbing, which stock relies on, skips dotfiles: the runless `.db` included.
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Close and unlink every run shard with its WAL and shared-memory files, keeping the index
    /// and the runless shard (stock's `wipe`). Connections are closed first: a pooled
    /// connection to an unlinked file would keep writing to a file no one can see.
    pub fn remove_run_shards(&self) -> Result<(), StoreError> {
        {
            let mut open = self.runs.lock();
            for db in open.by_id.values() {
                db.dispose();
            }
            *open = OpenShards::default();
        }
        for name in self.files()? {
            let is_shard_file = [".db", ".db-wal", ".db-shm"]
                .iter()
                .any(|suffix| name.ends_with(suffix));
            // Stock keeps any name ending in `index.db*`, not only the index itself.
            let is_index = [".db", ".db-wal", ".db-shm"]
                .iter()
                .any(|suffix| name.ends_with(&format!("{INDEX_SHARD}{suffix}")));
            if is_shard_file && !is_index {
                match std::fs::remove_file(self.dir.join(&name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StoreError::Io {
                            path: self.dir.join(&name).to_string_lossy().into_owned(),
                            source: e,
                        })
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Close every pooled connection of every open shard.
    pub fn dispose(&self) {
        if let Some(db) = self.index.lock().as_ref() {
            db.dispose();
        }
        for db in self.runs.lock().by_id.values() {
            db.dispose();
        }
    }

    /// Forget every open shard's indexes; each reads them again when a statement needs them.
    pub fn reload_layouts(&self) {
        if let Some(db) = self.index.lock().as_ref() {
            db.reload_layout();
        }
        for db in self.runs.lock().by_id.values() {
            db.reload_layout();
        }
    }
}

/// Set a run shard's modification time after a commit. Stock SQLite's watcher (watchdog on
/// `<run_id>.db`) only wakes when that file changes, and a commit in WAL mode writes only the
/// `-wal` file until a checkpoint; a metadata change is what lets a stock webserver follow a run
/// a dagster-rs process writes. Best effort: a failure changes nothing of what is stored.
///
/// By path, never through a file descriptor: closing any descriptor of the file would release
/// every POSIX lock this process holds on it, SQLite's included, and let another process's
/// closing connection checkpoint and delete the WAL under ours.
#[cfg(unix)]
pub(crate) fn touch(path: &str) {
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn utimes(path: *const std::ffi::c_char, times: *const std::ffi::c_void) -> i32;
    }
    if let Ok(c_path) = std::ffi::CString::new(std::ffi::OsStr::new(path).as_bytes()) {
        // SAFETY: a NUL-terminated path that outlives the call; a null `times` means "now".
        unsafe {
            utimes(c_path.as_ptr(), std::ptr::null());
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn touch(_path: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::EVENTS_DDL;
    use crate::store::Sql;

    #[test]
    fn path_like_run_ids_are_refused() {
        for bad in ["../x", "a/b", "a\\b", "/abs", "index", "a\0b", "a\nb"] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
        // "" is where stock keeps runless events (`.db`); dots alone stay inside the directory.
        for good in [
            "9f0c8a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f",
            "my_run.1",
            "ünï",
            "",
            ".",
            "..",
        ] {
            assert!(check_run_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn shards_are_created_with_stock_schema_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let shards = Shards::new(dir.path().join("history").join("runs"), Durability::Off);
        assert!(!shards.run_exists("r1"));
        let a = shards.run("r1").unwrap();
        let b = shards.run("r1").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(shards.run_exists("r1"));
        let objects = a
            .read(|c| {
                c.query(
                    &Sql::new("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"),
                    |r| r.text(0),
                )
            })
            .unwrap();
        assert_eq!(objects, EVENTS_DDL);
        let marks = shards
            .index()
            .unwrap()
            .read(|c| {
                c.query(
                    &Sql::new("SELECT name FROM secondary_indexes ORDER BY id"),
                    |r| r.text(0),
                )
            })
            .unwrap();
        assert_eq!(marks, EVENT_INDEX_SCHEMA.data_migrations);
    }

    #[test]
    fn open_shards_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let shards = Shards::new(dir.path(), Durability::Off);
        for i in 0..(MAX_OPEN_SHARDS + 5) {
            shards.run(&format!("r{i}")).unwrap();
        }
        let open = shards.runs.lock();
        assert_eq!(open.by_id.len(), MAX_OPEN_SHARDS);
        assert!(!open.by_id.contains_key("r0"));
    }
}
