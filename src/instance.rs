//! `dagster_rs._native.DagsterInstance`: the native core of one storage root.
//!
//! It names each domain's files (stock's layout under the root, or the paths a storage's own
//! configuration gives) and hands out the domains' stores, each opened on first use. The stores
//! underneath are shared per file for the whole process (`Registry`): the instance's core and the
//! storage objects Dagster builds from `dagster.yaml` on their own hold the very same
//! connections, and the domains that live in the event log's `index.db` (events, assets,
//! storage) share one set of shards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::assets::bindings::AssetStore;
use crate::config::bindings::ConfigStore;
use crate::errors::{RunsError, SchedulingError};
use crate::events::bindings::EventStore;
use crate::run_launcher::bindings::RunLauncherStore;
use crate::runs::bindings::{parse_durability, RunStore};
use crate::runs::Runs;
use crate::scheduling::bindings::ScheduleStore;
use crate::scheduling::Scheduling;
use crate::storage::bindings::StorageStore;
use crate::store::{Durability, Shards};

/// Open stores of this process by location and durability, held weakly: a store closes when the
/// last handle on it goes.
pub struct Registry<T> {
    open: Mutex<HashMap<(PathBuf, Durability), Weak<T>>>,
}

impl<T> Registry<T> {
    fn new() -> Self {
        Registry {
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The store at `path`, opened with `open` when no handle on it is alive.
    pub fn get_or_open<E>(
        &self,
        path: &Path,
        durability: Durability,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let key = (absolute(path), durability);
        let mut stores = self.open.lock();
        if let Some(store) = stores.get(&key).and_then(Weak::upgrade) {
            return Ok(store);
        }
        stores.retain(|_, store| store.strong_count() > 0);
        let store = Arc::new(open()?);
        stores.insert(key, Arc::downgrade(&store));
        Ok(store)
    }
}

/// `path` made absolute and free of `.`/`..` without touching the file system (the file may
/// not exist yet), so every spelling of one location is one key.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

static RUNS: LazyLock<Registry<Runs>> = LazyLock::new(Registry::new);
static EVENT_LOGS: LazyLock<Registry<Shards>> = LazyLock::new(Registry::new);
static SCHEDULES: LazyLock<Registry<Scheduling>> = LazyLock::new(Registry::new);

/// The schedule storage of `schedules.db` at `path`, shared likewise.
pub fn schedules_store(
    path: &Path,
    durability: Durability,
) -> Result<Arc<Scheduling>, SchedulingError> {
    SCHEDULES.get_or_open(path, durability, || {
        Scheduling::open(&path.to_string_lossy(), durability)
    })
}

/// The runs store of `runs.db` at `path`, shared by every handle of the process.
pub fn runs_store(path: &Path, durability: Durability) -> Result<Arc<Runs>, RunsError> {
    RUNS.get_or_open(path, durability, || {
        Runs::open(&path.to_string_lossy(), durability)
    })
}

/// The shards of the event log under `dir` (index and run shards), shared likewise.
pub fn event_log(dir: &Path, durability: Durability) -> Arc<Shards> {
    let opened: Result<_, std::convert::Infallible> =
        EVENT_LOGS.get_or_open(dir, durability, || Ok(Shards::new(dir, durability)));
    match opened {
        Ok(shards) => shards,
    }
}

#[pyclass(frozen, module = "dagster_rs._native")]
pub struct DagsterInstance {
    runs_db: PathBuf,
    event_log_dir: PathBuf,
    schedules_db: PathBuf,
    durability: Durability,
    runs: PyOnceLock<Py<RunStore>>,
    events: PyOnceLock<Py<EventStore>>,
    assets: PyOnceLock<Py<AssetStore>>,
    storage: PyOnceLock<Py<StorageStore>>,
    config: PyOnceLock<Py<ConfigStore>>,
    schedules: PyOnceLock<Py<ScheduleStore>>,
    run_launcher: PyOnceLock<Py<RunLauncherStore>>,
}

#[pymethods]
impl DagsterInstance {
    /// The core of `storage_root` (a `DAGSTER_HOME`): stock's layout under it, or the files a
    /// storage configuration names (`runs_db`, `event_log_dir`, `schedules_db`).
    #[new]
    #[pyo3(signature = (storage_root, durability = "full", *, runs_db = None, event_log_dir = None, schedules_db = None))]
    fn new(
        storage_root: PathBuf,
        durability: &str,
        runs_db: Option<PathBuf>,
        event_log_dir: Option<PathBuf>,
        schedules_db: Option<PathBuf>,
    ) -> PyResult<Self> {
        let history = storage_root.join("history");
        Ok(DagsterInstance {
            runs_db: runs_db.unwrap_or_else(|| history.join("runs.db")),
            event_log_dir: event_log_dir.unwrap_or_else(|| history.join("runs")),
            schedules_db: schedules_db
                .unwrap_or_else(|| storage_root.join("schedules").join("schedules.db")),
            durability: parse_durability(durability)?,
            runs: PyOnceLock::new(),
            events: PyOnceLock::new(),
            assets: PyOnceLock::new(),
            storage: PyOnceLock::new(),
            config: PyOnceLock::new(),
            schedules: PyOnceLock::new(),
            run_launcher: PyOnceLock::new(),
        })
    }

    #[getter]
    fn durability(&self) -> &'static str {
        self.durability.as_str()
    }

    #[getter]
    fn runs_db(&self) -> PathBuf {
        self.runs_db.clone()
    }

    #[getter]
    fn event_log_dir(&self) -> PathBuf {
        self.event_log_dir.clone()
    }

    /// The runs domain's store (`runs.db`), opened on first use.
    #[getter]
    fn runs(&self, py: Python<'_>) -> PyResult<Py<RunStore>> {
        let store = self.runs.get_or_try_init(py, || {
            let runs = py.detach(|| runs_store(&self.runs_db, self.durability))?;
            Py::new(py, RunStore::from_shared(runs))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The events domain's store (the event log directory); opens no file by itself.
    #[getter]
    fn events(&self, py: Python<'_>) -> PyResult<Py<EventStore>> {
        let store = self.events.get_or_try_init(py, || {
            let shards = event_log(&self.event_log_dir, self.durability);
            Py::new(py, EventStore::from_shared(shards))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The assets domain's store, on the event log's shared shards.
    #[getter]
    fn assets(&self, py: Python<'_>) -> PyResult<Py<AssetStore>> {
        let store = self.assets.get_or_try_init(py, || {
            let shards = event_log(&self.event_log_dir, self.durability);
            Py::new(py, AssetStore::from_shared(shards))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The storage domain's store (dynamic partitions, concurrency pools), on the same shards.
    #[getter]
    fn storage(&self, py: Python<'_>) -> PyResult<Py<StorageStore>> {
        let store = self.storage.get_or_try_init(py, || {
            let shards = event_log(&self.event_log_dir, self.durability);
            Py::new(py, StorageStore::from_shared(shards))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The config domain's store (daemon heartbeats, cursors, the run storage's id), on the
    /// runs domain's store of `runs.db`, opened on first use.
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<ConfigStore>> {
        let store = self.config.get_or_try_init(py, || {
            let runs = py.detach(|| runs_store(&self.runs_db, self.durability))?;
            Py::new(py, ConfigStore::from_shared(runs))
        })?;
        Ok(store.clone_ref(py))
    }

    #[getter]
    fn schedules_db(&self) -> PathBuf {
        self.schedules_db.clone()
    }

    /// The scheduling domain's store (`schedules.db`), opened on first use.
    #[getter]
    fn schedules(&self, py: Python<'_>) -> PyResult<Py<ScheduleStore>> {
        let store = self.schedules.get_or_try_init(py, || {
            let inner = py.detach(|| schedules_store(&self.schedules_db, self.durability))?;
            Py::new(py, ScheduleStore::from_shared(inner))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The run_launcher domain's store, on the event log's shared shards and runs.db (opened
    /// on its first step).
    #[getter]
    fn run_launcher(&self, py: Python<'_>) -> PyResult<Py<RunLauncherStore>> {
        let store = self.run_launcher.get_or_try_init(py, || {
            let shards = event_log(&self.event_log_dir, self.durability);
            Py::new(
                py,
                RunLauncherStore::from_shared(shards, self.runs_db.clone(), self.durability),
            )
        })?;
        Ok(store.clone_ref(py))
    }

    /// Close every idle connection of the stores this core handed out (they reopen on use).
    fn dispose(&self, py: Python<'_>) {
        if let Some(runs) = self.runs.get(py) {
            let inner = runs.get().inner.clone();
            py.detach(|| inner.dispose());
        }
        if let Some(config) = self.config.get(py) {
            // Shares the runs store of the same file, which may not have been handed out.
            let inner = config.get().inner.clone();
            py.detach(|| inner.runs().dispose());
        }
        if let Some(events) = self.events.get(py) {
            events.get().dispose(py);
        }
        // The assets and storage stores sit on the same shards, which a core that never handed
        // out its events store has not disposed yet.
        if let Some(storage) = self.storage.get(py) {
            let inner = storage.get().inner.clone();
            py.detach(|| inner.shards().dispose());
        }
        if let Some(launcher) = self.run_launcher.get(py) {
            let inner = launcher.get().inner.clone();
            py.detach(|| inner.dispose());
        }
        if let Some(schedules) = self.schedules.get(py) {
            let inner = schedules.get().inner.clone();
            py.detach(|| inner.dispose());
        }
    }

    /// Forget every file's indexes (`store/layout.rs`): each store reads them again on its
    /// next statement that pins one. For after a schema upgrade made by other connections
    /// (stock's alembic); connections stay open.
    fn reload_layouts(&self, py: Python<'_>) {
        if let Some(runs) = self.runs.get(py) {
            runs.get().inner.reload_layout();
        }
        if let Some(config) = self.config.get(py) {
            config.get().inner.runs().reload_layout();
        }
        if let Some(storage) = self.storage.get(py) {
            storage.get().inner.shards().reload_layouts();
        }
        if let Some(events) = self.events.get(py) {
            events.get().reload_layouts();
        }
        if let Some(launcher) = self.run_launcher.get(py) {
            launcher.get().inner.reload_layouts();
        }
        if let Some(schedules) = self.schedules.get(py) {
            schedules.get().inner.reload_layout();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_store_per_location_while_a_handle_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history").join("runs.db");
        let spelled = dir.path().join("history").join(".").join("runs.db");
        let a = runs_store(&path, Durability::Off).unwrap();
        let b = runs_store(&spelled, Durability::Off).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = runs_store(&path, Durability::Normal).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, b));
        let shards = event_log(dir.path(), Durability::Off);
        assert!(Arc::ptr_eq(
            &shards,
            &event_log(dir.path(), Durability::Off)
        ));
    }
}
