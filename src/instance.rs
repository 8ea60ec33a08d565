//! `dagster_rs._native.DagsterInstance`: the native core of one storage root.
//!
//! It names where each domain's store is (stock's layout under the root, the paths a storage's
//! own configuration gives, or PostgreSQL databases) and hands out the domains' stores, each
//! opened on first use by the process's registries (`core.rs`), which share one store per
//! location for the whole process.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::assets::bindings::AssetStore;
use crate::config::bindings::ConfigStore;
use crate::core::{self, Source};
use crate::events::bindings::EventStore;
use crate::run_launcher::bindings::RunLauncherStore;
use crate::runs::bindings::RunStore;
use crate::scheduling::bindings::ScheduleStore;
use crate::storage::bindings::StorageStore;
use crate::store::Durability;

#[pyclass(frozen, module = "dagster_rs._native")]
pub struct DagsterInstance {
    runs_at: Source,
    event_log_at: Source,
    schedules_at: Source,
    durability: Durability,
    pool_size: Option<usize>,
    runs: PyOnceLock<Py<RunStore>>,
    events: PyOnceLock<Py<EventStore>>,
    assets: PyOnceLock<Py<AssetStore>>,
    storage: PyOnceLock<Py<StorageStore>>,
    config: PyOnceLock<Py<ConfigStore>>,
    schedules: PyOnceLock<Py<ScheduleStore>>,
    run_launcher: PyOnceLock<Py<RunLauncherStore>>,
}

/// Where one domain's store is: the path given for it, else the PostgreSQL database given for
/// it, else stock's layout under the root.
fn source_of(
    path: Option<PathBuf>,
    postgres: Option<&Source>,
    default: impl FnOnce() -> PathBuf,
) -> Source {
    match (path, postgres) {
        (Some(path), _) => Source::Sqlite(path),
        (None, Some(postgres)) => postgres.clone(),
        (None, None) => Source::Sqlite(default()),
    }
}

fn postgres_source(url: Option<&str>, pool_size: Option<usize>) -> PyResult<Option<Source>> {
    url.map(|url| Source::postgres(url, pool_size).map_err(PyValueError::new_err))
        .transpose()
}

/// The SQLite path of a source; None for a database elsewhere.
fn path_of(source: &Source) -> Option<PathBuf> {
    source.sqlite_path().map(|path| path.to_path_buf())
}

#[pymethods]
impl DagsterInstance {
    /// The core of `storage_root` (a `DAGSTER_HOME`): stock's layout under it, or the files a
    /// storage configuration names (`runs_db`, `event_log_dir`, `schedules_db`), or the
    /// PostgreSQL databases it names: `postgres_url` for the runs and config stores (and the
    /// event log and schedules when no path names them), `postgres_schedules_url` for the
    /// schedules (default: `postgres_url`), with connection pools of `pool_size`. A path given
    /// for a domain wins over a URL for it, except that `schedules_db` and
    /// `postgres_schedules_url` together are refused (two stores named for one domain).
    #[new]
    #[pyo3(signature = (storage_root, durability = "full", *, runs_db = None, event_log_dir = None, schedules_db = None, postgres_url = None, postgres_schedules_url = None, pool_size = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        storage_root: PathBuf,
        durability: &str,
        runs_db: Option<PathBuf>,
        event_log_dir: Option<PathBuf>,
        schedules_db: Option<PathBuf>,
        postgres_url: Option<&str>,
        postgres_schedules_url: Option<&str>,
        pool_size: Option<usize>,
    ) -> PyResult<Self> {
        let durability: Durability = durability.parse().map_err(PyValueError::new_err)?;
        if pool_size == Some(0) {
            return Err(PyValueError::new_err(
                "pool_size must be at least 1 (None: the backend's default)",
            ));
        }
        if schedules_db.is_some() && postgres_schedules_url.is_some() {
            return Err(PyValueError::new_err(
                "schedules_db and postgres_schedules_url both name the schedules store; give one",
            ));
        }
        let postgres = postgres_source(postgres_url, pool_size)?;
        let postgres_schedules =
            postgres_source(postgres_schedules_url, pool_size)?.or_else(|| postgres.clone());
        let history = storage_root.join("history");
        Ok(DagsterInstance {
            runs_at: source_of(runs_db, postgres.as_ref(), || history.join("runs.db")),
            event_log_at: source_of(event_log_dir, postgres.as_ref(), || history.join("runs")),
            schedules_at: source_of(schedules_db, postgres_schedules.as_ref(), || {
                storage_root.join("schedules").join("schedules.db")
            }),
            durability,
            pool_size,
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

    /// The runs store's SQLite file; None when it is in PostgreSQL.
    #[getter]
    fn runs_db(&self) -> Option<PathBuf> {
        path_of(&self.runs_at)
    }

    /// The event log's SQLite directory; None when it is in PostgreSQL.
    #[getter]
    fn event_log_dir(&self) -> Option<PathBuf> {
        path_of(&self.event_log_at)
    }

    /// The schedules store's SQLite file; None when it is in PostgreSQL.
    #[getter]
    fn schedules_db(&self) -> Option<PathBuf> {
        path_of(&self.schedules_at)
    }

    /// Where each store is, as the process's registry keys it (`core::Location`): a normalized
    /// path, or a PostgreSQL URL without its password.
    #[getter]
    fn locations(&self) -> Vec<(&'static str, String)> {
        vec![
            ("runs", self.runs_at.location().to_string()),
            ("event_log", self.event_log_at.location().to_string()),
            ("schedules", self.schedules_at.location().to_string()),
        ]
    }

    /// The connection pool size asked for the PostgreSQL stores (None: the backend's default).
    #[getter]
    fn pool_size(&self) -> Option<usize> {
        self.pool_size
    }

    /// The runs domain's store (`runs.db`), opened on first use.
    #[getter]
    fn runs(&self, py: Python<'_>) -> PyResult<Py<RunStore>> {
        let store = self.runs.get_or_try_init(py, || {
            let runs = py.detach(|| core::runs(&self.runs_at, self.durability))?;
            Py::new(py, RunStore::from_shared(runs))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The events domain's store (the event log directory); opens no file by itself.
    #[getter]
    fn events(&self, py: Python<'_>) -> PyResult<Py<EventStore>> {
        let store = self.events.get_or_try_init(py, || {
            let shards = core::event_log(&self.event_log_at, self.durability)?;
            Py::new(py, EventStore::from_shared(shards))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The assets domain's store, on the event log's shared shards.
    #[getter]
    fn assets(&self, py: Python<'_>) -> PyResult<Py<AssetStore>> {
        let store = self.assets.get_or_try_init(py, || {
            let shards = core::event_log(&self.event_log_at, self.durability)?;
            Py::new(py, AssetStore::from_shared(shards))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The storage domain's store (dynamic partitions, concurrency pools), on the same shards.
    #[getter]
    fn storage(&self, py: Python<'_>) -> PyResult<Py<StorageStore>> {
        let store = self.storage.get_or_try_init(py, || {
            let log = py.detach(|| core::event_log_of(&self.event_log_at, self.durability))?;
            Py::new(py, StorageStore::from_shared(log))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The config domain's store (daemon heartbeats, cursors, the run storage's id), on the
    /// runs domain's store of `runs.db`, opened on first use.
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<ConfigStore>> {
        let store = self.config.get_or_try_init(py, || {
            let runs = py.detach(|| core::runs(&self.runs_at, self.durability))?;
            Py::new(py, ConfigStore::from_shared(runs))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The scheduling domain's store (`schedules.db`), opened on first use.
    #[getter]
    fn schedules(&self, py: Python<'_>) -> PyResult<Py<ScheduleStore>> {
        let store = self.schedules.get_or_try_init(py, || {
            let inner = py.detach(|| core::schedules(&self.schedules_at, self.durability))?;
            Py::new(py, ScheduleStore::from_shared(inner))
        })?;
        Ok(store.clone_ref(py))
    }

    /// The run_launcher domain's store: its reads on the event log's shared shards, its steps
    /// on those and the runs store of `runs.db` (opened now: the domain is live only with the
    /// runs domain, whose storage has opened it already).
    #[getter]
    fn run_launcher(&self, py: Python<'_>) -> PyResult<Py<RunLauncherStore>> {
        let store = self.run_launcher.get_or_try_init(py, || {
            let shards = core::event_log(&self.event_log_at, self.durability)?;
            let runs = py.detach(|| core::runs(&self.runs_at, self.durability))?;
            Py::new(py, RunLauncherStore::from_shared(shards, runs))
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
            py.detach(|| inner.log().dispose());
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
            storage.get().inner.log().reload_layouts();
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
