//! The process's stores: one per location and durability, shared by every core and binding.
//!
//! The instance (`instance.rs`) and the bindings' own constructors (`RunStore(path)`,
//! `EventStore(directory)`) ask here for a domain's store by [`Source`]; the store is opened on
//! first demand and shared while a handle on it lives (`Registry`), so the instance's core and
//! the storage objects Dagster builds from `dagster.yaml` on their own hold the very same
//! connections, and the domains that live in the event log's `index.db` (events, assets,
//! storage) share one set of shards.
//!
//! This is the one place that turns a location into an open store: domain modules are handed
//! theirs and never open a path, and nothing here names the bindings or the instance, so the
//! module graph runs one way: `instance` → `core` and `*/bindings` → domains → `store`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
use pyo3::PyErr;

use crate::errors::{EventsError, RunsError, SchedulingError};
use crate::runs::Runs;
use crate::scheduling::Scheduling;
use crate::store::postgres::schema::Storage as PgStorage;
use crate::store::{Db, Durability, EventLog, Shards};

/// Where a store is, as a registry key: every spelling of one location is one key, and a
/// PostgreSQL key carries no password (keys end up in messages and reprs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A SQLite file (runs, schedules) or event-log directory, absolute and free of `.`/`..`.
    Sqlite(PathBuf),
    /// A PostgreSQL database: its URL with the scheme spelled `postgresql://` and without the
    /// password (in the user info or a `password` parameter).
    Postgres(String),
}

impl Location {
    /// The location of a SQLite file or directory at `path`.
    pub fn sqlite(path: &Path) -> Location {
        Location::Sqlite(absolute(path))
    }

    /// The location of the PostgreSQL database a URL names.
    pub fn postgres(url: &str) -> Result<Location, String> {
        Ok(Location::Postgres(without_password(url)?))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(url),
        }
    }
}

/// Where a domain's store is, as a core was told: what it opens the store with. A PostgreSQL
/// source keeps the URL's password for connecting; it never shows it (`Debug`, `location`).
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    Sqlite(PathBuf),
    Postgres {
        url: String,
        /// The connection pool's size the configuration asks for (None: the backend's default).
        pool_size: Option<usize>,
        location: Location,
    },
}

impl Source {
    /// A PostgreSQL database by URL (`postgresql://`, `postgres://`, `postgresql+<driver>://`).
    pub fn postgres(url: &str, pool_size: Option<usize>) -> Result<Source, String> {
        Ok(Source::Postgres {
            url: url.to_owned(),
            pool_size,
            location: Location::postgres(url)?,
        })
    }

    /// The registry key: normalized, without password.
    pub fn location(&self) -> Location {
        match self {
            Source::Sqlite(path) => Location::sqlite(path),
            Source::Postgres { location, .. } => location.clone(),
        }
    }

    /// The SQLite path, when the store is a SQLite file or directory.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Source::Sqlite(path) => Some(path),
            Source::Postgres { .. } => None,
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Source::Postgres {
                pool_size,
                location,
                ..
            } => f
                .debug_struct("Postgres")
                .field("location", location)
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

/// Why the core could not hand out a store: the domain's own failure to open it, or a store in
/// PostgreSQL while dagster-rs's PostgreSQL backend is not integrated into the domains yet
/// (raised as `dagster_rs.core.BackendNotIntegratedError`, a `DagsterRsStorageError` and a
/// `NotImplementedError`).
#[derive(Debug, thiserror::Error)]
pub enum OpenError<E> {
    #[error(transparent)]
    Domain(#[from] E),
    #[error(
        "the {domain} store is in PostgreSQL ({location}); dagster-rs's PostgreSQL backend is \
         not integrated yet, so the native core cannot serve it (stock dagster-postgres can)"
    )]
    NotIntegrated {
        domain: &'static str,
        location: Location,
    },
}

impl<E> From<OpenError<E>> for PyErr
where
    PyErr: From<E>,
{
    fn from(err: OpenError<E>) -> PyErr {
        match err {
            OpenError::Domain(err) => err.into(),
            OpenError::NotIntegrated { domain, location } => {
                let message =
                    OpenError::<std::convert::Infallible>::NotIntegrated { domain, location }
                        .to_string();
                pyo3::Python::attach(|py| {
                    crate::errors::dagster_error(
                        py,
                        "dagster_rs.core",
                        "BackendNotIntegratedError",
                        message,
                    )
                })
            }
        }
    }
}

/// Open stores of this process by location and durability, held weakly: a store closes when the
/// last handle on it goes.
pub struct Registry<T> {
    open: Mutex<HashMap<(Location, Durability), Weak<T>>>,
}

impl<T> Registry<T> {
    fn new() -> Self {
        Registry {
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The store at `location`, opened with `open` when no handle on it is alive.
    pub fn get_or_open<E>(
        &self,
        location: Location,
        durability: Durability,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let key = (location, durability);
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

static RUNS: LazyLock<Registry<Runs>> = LazyLock::new(Registry::new);
static EVENT_LOGS: LazyLock<Registry<Shards>> = LazyLock::new(Registry::new);
static SCHEDULES: LazyLock<Registry<Scheduling>> = LazyLock::new(Registry::new);
/// The event logs in PostgreSQL: one database (`EventLog::Single`) per URL.
static EVENT_LOG_DBS: LazyLock<Registry<Db>> = LazyLock::new(Registry::new);

/// The advisory-lock domain of every dagster-rs write to a PostgreSQL event log: one key for the
/// database, whichever domain writes (the pools' invariants rest on every claim and free of every
/// process and host taking the same lock).
pub const EVENT_LOG_WRITE_DOMAIN: &str = "event_log";

/// The runs store (`runs.db`), shared by every handle of the process; the config and
/// run_launcher domains live in it too.
pub fn runs(source: &Source, durability: Durability) -> Result<Arc<Runs>, OpenError<RunsError>> {
    match source {
        Source::Sqlite(path) => Ok(RUNS.get_or_open(source.location(), durability, || {
            Runs::open(&path.to_string_lossy(), durability)
        })?),
        Source::Postgres { url, pool_size, .. } => {
            Ok(RUNS.get_or_open(source.location(), durability, || {
                Db::open_postgres(url, *pool_size, "runs", PgStorage::Runs)
                    .map(Runs::on)
                    .map_err(RunsError::from)
            })?)
        }
    }
}

/// The schedule storage (`schedules.db`), shared likewise.
pub fn schedules(
    source: &Source,
    durability: Durability,
) -> Result<Arc<Scheduling>, OpenError<SchedulingError>> {
    match source {
        Source::Sqlite(path) => Ok(SCHEDULES.get_or_open(source.location(), durability, || {
            Scheduling::open(&path.to_string_lossy(), durability)
        })?),
        Source::Postgres { url, pool_size, .. } => {
            Ok(SCHEDULES.get_or_open(source.location(), durability, || {
                let db = Db::open_postgres(url, *pool_size, "schedules", PgStorage::Schedules)
                    .map_err(SchedulingError::from)?;
                Scheduling::on(db)
            })?)
        }
    }
}

/// The event log (index and run shards under a directory), shared likewise by the events,
/// assets, storage and run_launcher domains. Opens no file by itself. A PostgreSQL event log is
/// refused here: the domains that take the SQLite shards (events, assets, run_launcher) are not
/// served there yet; the storage domain asks [`event_log_of`].
pub fn event_log(
    source: &Source,
    durability: Durability,
) -> Result<Arc<Shards>, OpenError<EventsError>> {
    match source {
        Source::Sqlite(dir) => Ok(EVENT_LOGS.get_or_open(source.location(), durability, || {
            Ok::<_, EventsError>(Shards::new(dir, durability))
        })?),
        Source::Postgres { location, .. } => Err(OpenError::NotIntegrated {
            domain: "event log",
            location: location.clone(),
        }),
    }
}

/// The event log as the domains written against [`EventLog`] take it (the storage domain): the
/// SQLite shards ([`event_log`]), or on PostgreSQL the one database of stock's
/// `PostgresEventLogStorage` (`EventLog::Single`), its tables created as stock creates them
/// when `event_logs` is missing, judged otherwise, and its writes serialized under one advisory
/// lock for the database ([`EVENT_LOG_WRITE_DOMAIN`]).
pub fn event_log_of(
    source: &Source,
    durability: Durability,
) -> Result<EventLog, OpenError<EventsError>> {
    match source {
        Source::Sqlite(_) => Ok(EventLog::Shards(event_log(source, durability)?)),
        Source::Postgres { url, pool_size, .. } => {
            let db = EVENT_LOG_DBS.get_or_open(source.location(), durability, || {
                Db::open_postgres(url, *pool_size, EVENT_LOG_WRITE_DOMAIN, PgStorage::EventLog)
                    .map_err(EventsError::from)
            })?;
            Ok(EventLog::Single(db))
        }
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
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The schemes a PostgreSQL URL may have: libpq's two and SQLAlchemy's driver-qualified ones
/// (what `dagster-postgres` configurations carry).
fn postgres_scheme(scheme: &str) -> bool {
    let base = scheme.split_once('+').map_or(scheme, |(base, _)| base);
    base.eq_ignore_ascii_case("postgresql") || base.eq_ignore_ascii_case("postgres")
}

/// A PostgreSQL URL as a key: `postgresql://`, the user info without its password, host, port,
/// database and the parameters but `password` (libpq takes it from either place).
fn without_password(url: &str) -> Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "not a PostgreSQL URL (no scheme): {:?}",
            redact(url)
        ));
    };
    if !postgres_scheme(scheme) {
        return Err(format!(
            "not a PostgreSQL URL: scheme {scheme:?} (postgresql://, postgres:// or \
             postgresql+<driver>://)"
        ));
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The authority ends at the first `/` (a password with `/` must be percent-encoded, as
    // libpq and SQLAlchemy require); its user info at the last `@` in it.
    let (authority, path) = match before_query.find('/') {
        Some(at) => before_query.split_at(at),
        None => (before_query, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let mut key = format!("postgresql://{host}{path}");
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
                !pair.is_empty() && name != "password"
            })
            .collect();
        if !kept.is_empty() {
            key.push('?');
            key.push_str(&kept.join("&"));
        }
    }
    Ok(key)
}

/// A URL for an error message: everything but what may be a password.
fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_a_path_are_one_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history").join("runs.db");
        let spelled = dir
            .path()
            .join("history")
            .join(".")
            .join("..")
            .join("history")
            .join("runs.db");
        assert_eq!(Location::sqlite(&path), Location::sqlite(&spelled));
        let a = runs(&Source::Sqlite(path.clone()), Durability::Off).unwrap();
        let b = runs(&Source::Sqlite(spelled), Durability::Off).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = runs(&Source::Sqlite(path.clone()), Durability::Normal).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, b, other));
        let events = Source::Sqlite(dir.path().join("history").join("runs"));
        let shards = event_log(&events, Durability::Off).unwrap();
        assert!(Arc::ptr_eq(
            &shards,
            &event_log(&events, Durability::Off).unwrap()
        ));
        let schedules_db = Source::Sqlite(dir.path().join("schedules").join("schedules.db"));
        let s = schedules(&schedules_db, Durability::Off).unwrap();
        assert!(Arc::ptr_eq(
            &s,
            &schedules(&schedules_db, Durability::Off).unwrap()
        ));
    }

    #[test]
    fn a_relative_path_is_keyed_by_its_absolute_spelling() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            Location::sqlite(Path::new("./a/../runs.db")),
            Location::Sqlite(cwd.join("runs.db"))
        );
    }

    #[test]
    fn a_store_closes_with_its_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::Sqlite(dir.path().join("runs.db"));
        let weak = Arc::downgrade(&runs(&source, Durability::Off).unwrap());
        assert!(weak.upgrade().is_none());
        assert!(runs(&source, Durability::Off).is_ok());
    }

    #[test]
    fn a_postgres_key_drops_the_password() {
        let key = |url: &str| Location::postgres(url).unwrap();
        let plain = Location::Postgres("postgresql://dagster@db.example:5432/prod".into());
        assert_eq!(
            key("postgresql://dagster:s3cr%40t@db.example:5432/prod"),
            plain
        );
        assert_eq!(key("postgres://dagster:other@db.example:5432/prod"), plain);
        assert_eq!(
            key("postgresql+psycopg2://dagster:x@db.example:5432/prod"),
            plain
        );
        assert_eq!(key("postgresql://dagster@db.example:5432/prod"), plain);
        assert_eq!(
            key("postgresql://dagster@db.example:5432/prod?password=s3cr3t&sslmode=require"),
            Location::Postgres("postgresql://dagster@db.example:5432/prod?sslmode=require".into())
        );
        assert_eq!(
            key("postgresql:///dagster?host=/tmp/pg&password=pw"),
            Location::Postgres("postgresql:///dagster?host=/tmp/pg".into())
        );
        for url in [
            "postgresql://dagster:s3cr%40t@db.example:5432/prod",
            "postgresql://u@h/d?password=s3cr%40t",
        ] {
            let source = Source::postgres(url, Some(4)).unwrap();
            assert!(!source.location().to_string().contains("s3cr"));
            assert!(!format!("{source:?}").contains("s3cr"));
        }
        assert_ne!(
            key("postgresql://dagster@db.example:5432/prod"),
            key("postgresql://dagster@db.example:5432/staging")
        );
    }

    #[test]
    fn other_urls_are_refused() {
        for url in ["sqlite:///x.db", "db.example:5432/prod", "mysql://u:p@h/d"] {
            let err = Location::postgres(url).unwrap_err();
            assert!(!err.contains(":p@"), "{err}");
        }
    }

    #[test]
    fn the_storage_domains_event_log_is_the_shared_one() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::Sqlite(dir.path().join("runs"));
        let shards = event_log(&source, Durability::Off).unwrap();
        match event_log_of(&source, Durability::Off).unwrap() {
            EventLog::Shards(s) => assert!(Arc::ptr_eq(&s, &shards)),
            EventLog::Single(_) => panic!("a directory is the SQLite layout"),
        }
    }

    #[test]
    fn the_event_log_in_postgres_is_not_served_yet() {
        let source = Source::postgres("postgresql://u:pw@h/d", None).unwrap();
        let err = event_log(&source, Durability::Full).unwrap_err();
        assert!(matches!(
            err,
            OpenError::NotIntegrated {
                domain: "event log",
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("postgresql://u@h/d") && !text.contains("pw"),
            "{text}"
        );
    }
}
