//! The embedded SQLite backend: a database file, a per-process pool of its connections, and
//! transactions that are safe with many threads and many processes writing the same file.
//! Its modules: the schema of stock's files and their judging (`schema*`), the index layouts
//! and the pins fitted to them (`layout`), files this process may only read (`readonly`,
//! `inspect`), the event log's run shards (`shards`), and the guard against a second SQLite
//! library in the process (`library`). Domains reach it only through `store::{Db, Conn, Row}`.

use std::cell::Cell;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, OpenFlags, StatementStatus};

pub mod inspect;
pub mod layout;
pub mod library;
pub mod readonly;
pub mod schema;
mod schema_events;
mod schema_runs;
mod schema_schedules;
pub mod shards;

use self::layout::{IndexLayout, LayoutSlot};
use self::readonly::FileStamp;
use self::schema::{FileState, Found, Plan, Schema};
use crate::errors::StoreError;
use crate::row;
use crate::store::sql::{Sql, Value};

/// How long a writer waits for another process's write lock before giving up, unless
/// `DAGSTER_RS_BUSY_TIMEOUT_MS` says otherwise when the file is opened (stock waits 30 s on the
/// event log, 5 s on runs.db and schedules.db).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn busy_timeout() -> Duration {
    std::env::var("DAGSTER_RS_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(BUSY_TIMEOUT)
}
/// Idle connections kept per file; more threads than this open and close their own.
const MAX_IDLE: usize = 8;
const STATEMENT_CACHE: usize = 128;
/// Reads map the file: up to 2 GiB, the most Debian's SQLite maps (`SQLITE_MAX_MMAP_SIZE`);
/// a larger file's tail goes through the page cache below. Address space only: pages are
/// loaded as they are read, and shared with the OS cache.
const MMAP_SIZE: u64 = 0x7fff_0000;
/// Page cache per connection, in KiB when negative (SQLite's convention): 64 MiB, filled only
/// as far as reads need (the part of a large file past the map is read through it).
const CACHE_KIB: i64 = -64 * 1024;

/// Commit durability. `Full` is stock's: WAL with an fsync of the log at every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Durability {
    Full,
    /// WAL without the per-commit fsync: a power loss may drop the last commits, never corrupts.
    Normal,
    /// No fsync at all; for throwaway storage (benchmarks, tests).
    Off,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
            Durability::Off => "off",
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
            Durability::Off => "OFF",
        }
    }
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            "off" => Ok(Durability::Off),
            other => Err(format!(
                "durability must be 'full', 'normal' or 'off', got {other:?}"
            )),
        }
    }
}

struct Pool {
    /// The process the idle connections were opened in: a forked child must not reuse them.
    pid: u32,
    idle: Vec<Connection>,
    /// The file as the idle immutable connections saw it (read-only mounts).
    seen: Option<FileStamp>,
}

/// One database file, opened with its schema checked, shared by every thread of the process.
pub struct Db {
    path: String,
    durability: Durability,
    busy_timeout: Duration,
    schema: &'static Schema,
    /// `PRAGMA schema_version` when the file was last judged: another process changing the
    /// schema (a newer Dagster's migration) makes the next write judge it again.
    judged_schema: std::sync::atomic::AtomicI64,
    pool: Mutex<Pool>,
    /// The file's indexes, which the pinned statements are fitted to (`layout.rs`).
    layout: LayoutSlot,
    /// Set when this process cannot write the file: how its connections read it.
    read_only: Option<ReadOnlyFile>,
}

/// How the connections of a file this process cannot write read it. Nothing is written to it:
/// no schema, no stamp, no journal-mode change; every write fails as SQLite fails a write to a
/// read-only database ("attempt to write a readonly database").
#[derive(Debug)]
struct ReadOnlyFile {
    schema: &'static Schema,
    /// The file holds no Dagster table (or is absent or empty): statements read an in-memory
    /// database with the fresh schema, as the file would be once created.
    fresh: bool,
    /// The tables the native path needs that the file lacks, standing in empty in each
    /// connection's TEMP schema (a half-built file, a table stock adds on open).
    stand_ins: Vec<&'static str>,
    /// The file system is mounted read-only: a WAL-mode file without a `-wal` is read immutable,
    /// for as long as it stays unchanged.
    fs_read_only: bool,
    /// The file had a hot rollback journal no one here may roll back: its rolled-back bytes,
    /// which each connection reads from memory.
    rolled_back: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish()
    }
}

impl Db {
    /// Open `path`: a file without a Dagster schema gets stock's, one left half-built (tables
    /// and no revision) is completed as stock completes it, one at the head or an older known
    /// revision is used as it is when it has what the native path needs (`schema::judge`);
    /// anything else is refused, untouched. A file this process cannot write is read only.
    pub fn open(
        path: &str,
        durability: Durability,
        schema: &'static Schema,
    ) -> Result<Db, StoreError> {
        refuse_second_sqlite(path)?;
        // Whether the file was there before this open: stock's index constructor marks only a
        // file it creates.
        let present = Path::new(path).exists();
        let mut writable = readonly::writable(Path::new(path));
        if writable {
            if let Some(dir) = Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    if let Err(source) = std::fs::create_dir_all(dir) {
                        if !matches!(
                            source.raw_os_error(),
                            Some(libc::EROFS | libc::EACCES | libc::EPERM)
                        ) {
                            return Err(StoreError::Io {
                                path: path.to_owned(),
                                source,
                            });
                        }
                        writable = false;
                    }
                }
            }
        }
        let mut db = Db {
            path: path.to_owned(),
            durability,
            busy_timeout: busy_timeout(),
            schema,
            judged_schema: std::sync::atomic::AtomicI64::new(-1),
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                idle: Vec::new(),
                seen: None,
            }),
            read_only: None,
            layout: LayoutSlot::new(schema),
        };
        if !writable {
            db.read_only = Some(db.judge_read_only(schema, present)?);
            return Ok(db);
        }
        let conn = db.connect()?;
        // Processes creating the same new file at once race while it is still in rollback-journal
        // mode, where SQLite answers some lock conflicts with SQLITE_BUSY at once instead of
        // waiting (it would deadlock otherwise). Creation is idempotent: retry until the busy
        // timeout, as stock's `_initdb` retries its own concurrent initialisation.
        let deadline = std::time::Instant::now() + db.busy_timeout;
        loop {
            match db.ensure_schema(&conn, schema, present) {
                Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        db.release(conn);
        Ok(db)
    }

    /// Whether this process reads the file only (it cannot write it).
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        refuse_second_sqlite(&self.path)?;
        if let Some(ro) = &self.read_only {
            return self.connect_read_only(ro);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.err(e))?;
        self.configure(&conn)?;
        Ok(conn)
    }

    fn configure(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Stock never enforces foreign keys on these files; enforcing them would refuse writes
        // stock accepts (tags of a run deleted meanwhile).
        // Reads map the database file instead of copying pages through read(2); the WAL is
        // still read and written the usual way, so this changes nothing of durability.
        // The busy timeout is set by pragma: rusqlite's `busy_timeout` goes through
        // `sqlite3_set_clientdata`, which the system SQLite of Debian 12 (3.40) does not have.
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; \
             PRAGMA mmap_size = {MMAP_SIZE}; PRAGMA cache_size = {CACHE_KIB};",
            self.busy_timeout.as_millis(),
            self.durability.pragma()
        ))
        .map_err(|e| self.err(e))
    }

    /// What a file this process cannot write holds, and how its connections will read it.
    fn judge_read_only(
        &self,
        schema: &'static Schema,
        present: bool,
    ) -> Result<ReadOnlyFile, StoreError> {
        let file = Path::new(&self.path);
        let fs_read_only = readonly::fs_read_only(file);
        let exists = std::fs::metadata(file).is_ok_and(|m| m.len() > 0);
        let mut rolled_back = None;
        let found = if exists {
            let read = readonly::open_reading(file, fs_read_only, self.busy_timeout)
                .and_then(|(conn, _)| Found::read(&conn, present, true));
            match read {
                Err(e) if inspect::is_hot_journal(&e) => {
                    // A hot journal nobody here may roll back: read the file as it will be
                    // once rolled back, from memory.
                    let image = inspect::rolled_back_image(file)?;
                    let found = if image.is_empty() {
                        Found {
                            present,
                            ..Found::default()
                        }
                    } else {
                        let conn = inspect::open_image(&self.path, &image)?;
                        Found::read(&conn, present, true).map_err(|e| self.err(e))?
                    };
                    rolled_back = Some(Arc::new(image));
                    found
                }
                other => other.map_err(|e| self.err(e))?,
            }
        } else {
            Found {
                present,
                ..Found::default()
            }
        };
        let verdict = schema::judge(&self.path, schema, &found, false);
        match verdict.plan {
            Plan::ReadOnly { stand_ins } => Ok(ReadOnlyFile {
                schema,
                fresh: matches!(verdict.state, FileState::Missing | FileState::Fresh),
                stand_ins,
                fs_read_only,
                rolled_back,
            }),
            Plan::Refuse(e) => Err(e),
            Plan::Initialize { .. } | Plan::Serve { .. } => {
                unreachable!("a read-only verdict reads or refuses")
            }
        }
    }

    fn connect_read_only(&self, ro: &ReadOnlyFile) -> Result<Connection, StoreError> {
        let err = |e| self.err(e);
        let conn = if ro.fresh {
            // The fresh file stock would create, stamped and marked, in memory.
            let conn = Connection::open_in_memory().map_err(err)?;
            for ddl in ro.schema.ddl {
                conn.execute_batch(ddl).map_err(err)?;
            }
            conn.execute(
                "INSERT INTO alembic_version (version_num) VALUES (?1)",
                [schema::HEAD_REVISION],
            )
            .map_err(err)?;
            let c = Conn::new(&conn, &self.path, &self.layout);
            for name in ro.schema.data_migrations {
                mark_migration_done(&c, name)?;
            }
            conn
        } else {
            let file = Path::new(&self.path);
            let conn = match &ro.rolled_back {
                Some(image) => inspect::open_image(&self.path, image)?,
                None => {
                    readonly::open_reading(file, ro.fs_read_only, self.busy_timeout)
                        .map_err(err)?
                        .0
                }
            };
            conn.execute_batch("PRAGMA temp_store = MEMORY")
                .map_err(err)?;
            for table in &ro.stand_ins {
                if let Some(ddl) = ro.schema.table(table) {
                    for statement in ddl.temp_statements() {
                        conn.execute_batch(&statement).map_err(err)?;
                    }
                }
            }
            conn
        };
        self.configure(&conn)?;
        // Last: from here on every write fails as one to a read-only file does, TEMP stand-ins
        // included.
        conn.execute_batch("PRAGMA query_only = ON").map_err(err)?;
        Ok(conn)
    }

    fn acquire(&self) -> Result<Connection, StoreError> {
        {
            let mut pool = self.pool.lock();
            let pid = std::process::id();
            if pool.pid != pid {
                // Inherited across fork: the parent still owns these handles. Closing them here
                // would release the parent's locks, so they are leaked on purpose.
                std::mem::forget(std::mem::take(&mut pool.idle));
                pool.pid = pid;
            }
            if self
                .read_only
                .as_ref()
                .is_some_and(|ro| ro.fs_read_only && !ro.fresh)
            {
                // An immutable view holds only while the file is as it was and has no WAL:
                // on any change, connections are reopened (with `mode=ro` if a WAL appeared).
                let now = FileStamp::of(Path::new(&self.path));
                if pool.seen != now {
                    pool.idle.clear();
                    pool.seen = now;
                }
            }
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
        }
        self.connect()
    }

    fn release(&self, conn: Connection) {
        let mut pool = self.pool.lock();
        if pool.pid == std::process::id() && pool.idle.len() < MAX_IDLE {
            pool.idle.push(conn);
        }
    }

    /// Close every idle connection; later calls open new ones.
    pub fn dispose(&self) {
        let mut pool = self.pool.lock();
        if pool.pid == std::process::id() {
            pool.idle.clear();
        }
        self.layout.forget();
    }

    /// Forget the file's indexes: the next statement that pins one reads them again (after a
    /// schema upgrade made through other connections, e.g. stock's alembic).
    pub fn reload_layout(&self) {
        self.layout.forget();
    }

    /// The file's indexes as the store now knows them (read when not yet known).
    pub fn index_layout(&self) -> Result<Arc<IndexLayout>, StoreError> {
        self.read(|c| c.layout())
    }

    /// Run `f` on a pooled connection, outside any explicit transaction (each statement sees the
    /// latest committed state).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.acquire()?;
        let out = f(&Conn::new(&conn, &self.path, &self.layout));
        self.release(conn);
        out
    }

    /// Run `f` in one write transaction, committed when it returns Ok and rolled back otherwise.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that reads first
    /// and upgrades later can fail with "database is locked" without waiting for the busy
    /// timeout when another process committed in between.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.acquire()?;
        let out = Self::in_transaction(&conn, &self.path, &self.layout, |c| {
            self.judge_again_if_changed(c)?;
            f(c)
        });
        self.release(conn);
        out
    }

    /// Refuse the write when another process changed the schema into one this Dagster does
    /// not know (or one the native path cannot serve) since the file was judged. One pragma per
    /// transaction; the file is read again only when the schema cookie moved.
    fn judge_again_if_changed(&self, c: &Conn<'_>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.read_only.is_some() {
            return Ok(());
        }
        let cookie: i64 = c
            .conn
            .prepare_cached("PRAGMA schema_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| c.err(e))?;
        if cookie == self.judged_schema.load(Ordering::Relaxed) {
            return Ok(());
        }
        let found = Found::read(c.conn, true, true).map_err(|e| c.err(e))?;
        match schema::judge(&self.path, self.schema, &found, true).plan {
            Plan::Refuse(e) => Err(e),
            _ => {
                self.judged_schema.store(cookie, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn in_transaction<T, E: From<StoreError>>(
        conn: &Connection,
        path: &str,
        layout: &LayoutSlot,
        f: impl FnOnce(&Conn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // Cached like any statement: parsing BEGIN/COMMIT on every call shows in small writes.
        let run = |text: &str| conn.prepare_cached(text).and_then(|mut s| s.execute([]));
        run("BEGIN IMMEDIATE").map_err(|e| StoreError::sqlite_in(path, "BEGIN IMMEDIATE", e))?;
        match f(&Conn::new(conn, path, layout)) {
            Ok(value) => match run("COMMIT") {
                Ok(_) => Ok(value),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(StoreError::sqlite_in(path, "COMMIT", e).into())
                }
            },
            Err(e) => {
                // A failed statement may already have ended the transaction; ignore that case.
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn judge(
        &self,
        conn: &Connection,
        schema: &'static Schema,
        present: bool,
    ) -> Result<schema::Verdict, StoreError> {
        let exists = std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
        let found = Found::read(conn, present, exists).map_err(|e| self.err(e))?;
        Ok(schema::judge(&self.path, schema, &found, true))
    }

    fn ensure_schema(
        &self,
        conn: &Connection,
        schema: &'static Schema,
        present: bool,
    ) -> Result<(), StoreError> {
        // Judged before anything is written: a file refused (an unknown revision) stays
        // untouched. Once initialised or backfilled, the file is judged again.
        for _ in 0..3 {
            // Read before the file is: a change made after it is judged at the next write.
            let cookie = conn
                .query_row("PRAGMA schema_version", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            match self.judge(conn, schema, present)?.plan {
                Plan::Refuse(e) => return Err(e),
                Plan::Serve { backfill } if backfill.is_empty() => {
                    self.judged_schema
                        .store(cookie, std::sync::atomic::Ordering::Relaxed);
                    return self.ensure_wal(conn);
                }
                Plan::ReadOnly { .. } => unreachable!("judged writable"),
                Plan::Serve { .. } | Plan::Initialize { .. } => {}
            }
            self.ensure_wal(conn)?;
            Self::in_transaction(conn, &self.path, &self.layout, |c| {
                // Another process (stock's or ours) may have done it while this one waited for
                // the lock: judged again under it.
                let exists = std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
                let found = Found::read(c.conn, present, exists).map_err(|e| c.err(e))?;
                match schema::judge(&self.path, schema, &found, true).plan {
                    Plan::Initialize { stamp, marks } => {
                        // Stock's `create_all`: each missing table with its indexes, in the
                        // schema's order; tables already there are left as they are.
                        for table in schema.tables() {
                            if !found.tables.contains_key(&table.name) {
                                for ddl in &table.statements {
                                    c.execute_text(ddl)?;
                                }
                            }
                        }
                        let mut q = Sql::new("INSERT INTO alembic_version (version_num) VALUES ");
                        q.values(row![stamp]);
                        c.execute(&q)?;
                        if marks {
                            for name in schema.data_migrations {
                                mark_migration_done(c, name)?;
                            }
                        }
                    }
                    Plan::Serve { backfill } => {
                        for table in backfill.iter().filter_map(|t| schema.table(t)) {
                            for ddl in &table.statements {
                                c.execute_text(ddl)?;
                            }
                        }
                    }
                    Plan::Refuse(e) => return Err(e),
                    Plan::ReadOnly { .. } => unreachable!("judged writable"),
                }
                Ok(())
            })?;
        }
        Err(StoreError::Corrupt {
            path: self.path.clone(),
            detail: "the schema changed under every attempt to open the file".to_owned(),
        })
    }

    fn ensure_wal(&self, conn: &Connection) -> Result<(), StoreError> {
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

/// A pooled connection lent out for as long as its holder keeps it: the DB-API bridge hands
/// stock Python code (SQLAlchemy) the very connections the core uses, so one SQLite library
/// holds the file in this process.
pub struct Lease {
    /// A `store::Db` of the SQLite arm (`store::Db::lease` makes leases of no other).
    db: Arc<crate::store::Db>,
    conn: Option<Connection>,
}

impl Lease {
    pub(crate) fn new(db: Arc<crate::store::Db>) -> Result<Lease, StoreError> {
        let conn = Self::file(&db).acquire()?;
        Ok(Lease {
            db,
            conn: Some(conn),
        })
    }

    fn file(db: &crate::store::Db) -> &Db {
        match db {
            crate::store::Db::Sqlite(db) => db,
            // `store::Db::lease` makes leases of SQLite databases only.
            crate::store::Db::Postgres(_) => unreachable!("a lease of a PostgreSQL database"),
        }
    }

    pub fn path(&self) -> &str {
        &Self::file(&self.db).path
    }

    pub fn connection(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A borrower that neither committed nor rolled back must not leave a transaction
            // open on a pooled connection (SQLite's own close would roll it back too).
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Self::file(&self.db).release(conn);
        }
    }
}

/// Refuse to touch `path` in a process where another SQLite library may hold it too.
fn refuse_second_sqlite(path: &str) -> Result<(), StoreError> {
    match library::refusal() {
        Some(detail) => Err(StoreError::SecondSqlite {
            path: path.to_owned(),
            detail: detail.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Record a data migration as done, with stock's local-time `datetime.now()` format.
pub fn mark_migration_done(c: &Conn<'_>, name: &str) -> Result<(), StoreError> {
    const NOW_LOCAL: &str = "strftime('%Y-%m-%d %H:%M:%S', 'now', 'localtime') || \
                             substr(strftime('%f', 'now'), 3) || '000'";
    let mut upsert = Sql::new("INSERT INTO secondary_indexes (name, migration_completed) VALUES (");
    upsert.bind(name).push(", ").push(NOW_LOCAL).push(
        ") ON CONFLICT (name) DO UPDATE SET migration_completed = excluded.migration_completed",
    );
    c.execute(&upsert).map(|_| ())
}

/// A connection lent to a domain for the length of one read or transaction.
/// One spelling of a plan line across SQLite versions, so pinned plans compare equal whichever
/// library runs them: the scan of a `VALUES` list reads "SCAN n CONSTANT ROWS" up to 3.44 and
/// "SCAN n-ROW VALUES CLAUSE" after (the bundled build's newer SQLite); the plan is the same.
fn same_spelling(line: String) -> String {
    if let Some(n) = line
        .strip_prefix("SCAN ")
        .and_then(|rest| rest.strip_suffix("-ROW VALUES CLAUSE"))
    {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return format!("SCAN {n} CONSTANT ROWS");
        }
    }
    line
}

/// A statement's plan by name: the detail column of each row of `EXPLAIN QUERY PLAN`, in order
/// (`QueryPlanSpec` in the stub).
#[derive(Debug, Clone, PartialEq, Eq, pyo3::IntoPyObject)]
pub struct StatementPlan {
    pub statement: &'static str,
    pub plan: Vec<String>,
}

/// A statement's name, its SQL and its `EXPLAIN QUERY PLAN` detail lines.
pub type QueryPlan = (String, String, Vec<String>);

pub struct Conn<'a> {
    conn: &'a Connection,
    path: &'a str,
    layout: &'a LayoutSlot,
    /// A statement of this connection failed on an index the file lacks.
    missing_index: Cell<bool>,
}

impl<'a> Conn<'a> {
    fn new(conn: &'a Connection, path: &'a str, layout: &'a LayoutSlot) -> Self {
        Conn {
            conn,
            path,
            layout,
            missing_index: Cell::new(false),
        }
    }
}

impl Conn<'_> {
    /// The database file's path.
    pub fn path(&self) -> &str {
        self.path
    }
}

impl Conn<'_> {
    fn err(&self, e: rusqlite::Error) -> StoreError {
        if layout::is_missing_index(&e) {
            self.missing_index.set(true);
        }
        StoreError::sqlite(self.path, e)
    }

    fn err_in(&self, sql: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        let sql = sql.to_owned();
        move |e| {
            if layout::is_missing_index(&e) {
                self.missing_index.set(true);
            }
            StoreError::sqlite_in(self.path, &sql, e)
        }
    }

    /// The file's indexes (`layout.rs`), read again when SQLite has seen the schema change.
    pub fn layout(&self) -> Result<Arc<IndexLayout>, StoreError> {
        self.layout.get(self.conn).map_err(|e| self.err(e))
    }

    /// Run one statement, its pins fitted to the file's indexes; once more, fitted to the
    /// indexes read again, when SQLite refused an index the file no longer has (an error of
    /// compilation, so nothing was read or written).
    fn fitted<R>(
        &self,
        sql: &Sql,
        mut run: impl FnMut(&mut CachedStatement<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut attempt = |strict: bool| {
            let text = if !strict && (sql.planned || self.layout.canonical_now()) {
                std::borrow::Cow::Borrowed(sql.text.as_str())
            } else {
                self.layout
                    .fit(self.conn, &sql.text, strict)
                    .map_err(|e| self.err(e))?
            };
            let mut stmt = self
                .conn
                .prepare_cached(&text)
                .map_err(self.err_in(&text))?;
            let out = run(&mut stmt)?;
            if stmt.reset_status(StatementStatus::RePrepare) > 0 {
                self.layout.mark_stale();
            }
            Ok(out)
        };
        self.missing_index.set(false);
        match attempt(false) {
            Err(_) if self.missing_index.replace(false) => {
                self.layout
                    .refresh(self.conn, true)
                    .map_err(|e| self.err(e))?;
                attempt(true)
            }
            other => other,
        }
    }

    pub fn execute(&self, sql: &Sql) -> Result<usize, StoreError> {
        self.fitted(sql, |stmt| {
            stmt.execute(rusqlite::params_from_iter(sql.params.iter()))
                .map_err(self.err_in(&sql.text))
        })
    }

    /// Which of `names` are tables of the file (`sqlite_master`).
    pub fn tables_present(&self, names: &[&str]) -> Result<Vec<String>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ");
        q.bind_list(names);
        self.query(&q, |r| r.text(0))
    }

    /// The columns of `table` in order, hidden ones included (stock's `PRAGMA table_xinfo`);
    /// empty when the table is absent.
    pub fn table_columns(&self, table: &str) -> Result<Vec<String>, StoreError> {
        // A pragma takes no bound parameters; the name is quoted as an identifier.
        let q = Sql::new(&format!(
            "PRAGMA main.table_xinfo(\"{}\")",
            table.replace('"', "\"\"")
        ));
        self.query(&q, |r| r.text(1))
    }

    fn execute_text(&self, text: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(text).map_err(self.err_in(text))
    }

    pub fn query<T>(
        &self,
        sql: &Sql,
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.fitted(sql, |stmt| {
            let mut rows = stmt
                .query(rusqlite::params_from_iter(sql.params.iter()))
                .map_err(self.err_in(&sql.text))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(self.err_in(&sql.text))? {
                out.push(f(&Row {
                    row,
                    path: self.path,
                })?);
            }
            Ok(out)
        })
    }

    /// The detail lines of `EXPLAIN QUERY PLAN` of a statement (its plan for these values).
    pub fn explain(&self, sql: &Sql) -> Result<Vec<String>, StoreError> {
        let mut eqp = Sql::new("EXPLAIN QUERY PLAN ");
        eqp.append(sql);
        let lines = self.query(&eqp, |r| r.text(3))?;
        Ok(lines.into_iter().map(same_spelling).collect())
    }

    pub fn query_opt<T>(
        &self,
        sql: &Sql,
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        self.fitted(sql, |stmt| {
            let mut rows = stmt
                .query(rusqlite::params_from_iter(sql.params.iter()))
                .map_err(self.err_in(&sql.text))?;
            match (rows.next().map_err(self.err_in(&sql.text))?, f.take()) {
                (Some(row), Some(f)) => Ok(Some(f(&Row {
                    row,
                    path: self.path,
                })?)),
                _ => Ok(None),
            }
        })
    }
}

/// One result row; typed getters report a column of the wrong type as a corrupt file.
pub struct Row<'a> {
    row: &'a rusqlite::Row<'a>,
    path: &'a str,
}

impl Row<'_> {
    fn value(&self, idx: usize) -> Result<ValueRef<'_>, StoreError> {
        self.row
            .get_ref(idx)
            .map_err(|e| StoreError::sqlite(self.path, e))
    }

    fn corrupt(&self, idx: usize, expected: &str, got: ValueRef<'_>) -> StoreError {
        let column = self.row.as_ref().column_name(idx).unwrap_or("?").to_owned();
        StoreError::Corrupt {
            path: self.path.to_owned(),
            detail: format!(
                "column {column} holds {:?} where {expected} was expected",
                got.data_type()
            ),
        }
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        match self.value(idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(StoreError::Corrupt {
                    path: self.path.to_owned(),
                    detail: format!("column {idx} is not valid UTF-8"),
                }),
            },
            ValueRef::Integer(v) => Ok(Some(v.to_string())),
            ValueRef::Real(v) => Ok(Some(v.to_string())),
            other => Err(self.corrupt(idx, "text", other)),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String, StoreError> {
        match self.opt_text(idx)? {
            Some(s) => Ok(s),
            None => Err(self.corrupt(idx, "text", ValueRef::Null)),
        }
    }

    pub fn int(&self, idx: usize) -> Result<i64, StoreError> {
        match self.value(idx)? {
            ValueRef::Integer(v) => Ok(v),
            other => Err(self.corrupt(idx, "an integer", other)),
        }
    }

    /// The column as SQLite holds it, whatever its type (values stock stores unchecked).
    pub fn any(&self, idx: usize) -> Result<Value, StoreError> {
        Ok(match self.value(idx)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Real(v) => Value::Real(v),
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => Value::Text(s.to_owned()),
                Err(_) => {
                    return Err(StoreError::Corrupt {
                        path: self.path.to_owned(),
                        detail: format!("column {idx} is not valid UTF-8"),
                    })
                }
            },
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        })
    }

    pub fn column_count(&self) -> usize {
        self.row.as_ref().column_count()
    }

    pub fn opt_int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        match self.value(idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(v) => Ok(Some(v)),
            other => Err(self.corrupt(idx, "an integer", other)),
        }
    }

    pub fn opt_real(&self, idx: usize) -> Result<Option<f64>, StoreError> {
        match self.value(idx)? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(v) => Ok(Some(v)),
            ValueRef::Integer(v) => Ok(Some(v as f64)),
            other => Err(self.corrupt(idx, "a float", other)),
        }
    }

    pub fn real(&self, idx: usize) -> Result<f64, StoreError> {
        match self.opt_real(idx)? {
            Some(v) => Ok(v),
            None => Err(self.corrupt(idx, "a float", ValueRef::Null)),
        }
    }

    /// A boolean as SQLAlchemy stores it on SQLite: an integer, 0 or not.
    pub fn opt_bool(&self, idx: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.opt_int(idx)?.map(|v| v != 0))
    }

    pub fn bool(&self, idx: usize) -> Result<bool, StoreError> {
        match self.opt_bool(idx)? {
            Some(v) => Ok(v),
            None => Err(self.corrupt(idx, "a boolean", ValueRef::Null)),
        }
    }

    pub fn bytes(&self, idx: usize) -> Result<Vec<u8>, StoreError> {
        match self.value(idx)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
            other => Err(self.corrupt(idx, "a blob", other)),
        }
    }
}

#[cfg(test)]
impl Conn<'_> {
    /// `ANALYZE`, then statistics planted in `sqlite_stat1` — `(table, index or "" for the
    /// table itself, stat)` — and reloaded: what a plan test uses to say the opposite of the
    /// truth, so a pinned plan must not follow them.
    pub fn plant_statistics(&self, rows: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        self.execute(&Sql::new("ANALYZE"))?;
        for (table, index, stat) in rows {
            let index = if index.is_empty() {
                Value::Null
            } else {
                Value::from(*index)
            };
            let mut q = Sql::new("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ");
            q.values([Value::from(*table), index, Value::from(*stat)]);
            self.execute(&q)?;
        }
        self.execute(&Sql::new("ANALYZE sqlite_master"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{HEAD_REVISION, RUNS_SCHEMA};

    fn temp_db(durability: Durability) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history").join("runs.db");
        let db = Db::open(path.to_str().unwrap(), durability, &RUNS_SCHEMA).unwrap();
        (dir, db)
    }

    #[test]
    fn fresh_file_gets_head_revision_wal_and_migration_marks() {
        let (_dir, db) = temp_db(Durability::Full);
        db.read(|c| {
            let rev = c.query_opt(&Sql::new("SELECT version_num FROM alembic_version"), |r| {
                r.text(0)
            })?;
            assert_eq!(rev.as_deref(), Some(HEAD_REVISION));
            let marks = c.query(
                &Sql::new("SELECT name FROM secondary_indexes ORDER BY id"),
                |r| r.text(0),
            )?;
            assert_eq!(marks, RUNS_SCHEMA.data_migrations);
            let mode = c.query_opt(&Sql::new("PRAGMA journal_mode"), |r| r.text(0))?;
            assert_eq!(mode.as_deref(), Some("wal"));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }

    #[test]
    fn reopening_keeps_data_and_does_not_restamp() {
        let (dir, db) = temp_db(Durability::Normal);
        db.write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('a', 'b')")))
            .unwrap();
        drop(db);
        let path = dir.path().join("history").join("runs.db");
        let db = Db::open(path.to_str().unwrap(), Durability::Full, &RUNS_SCHEMA).unwrap();
        let n = db
            .read(|c| {
                c.query_opt(&Sql::new("SELECT count(*) FROM alembic_version"), |r| {
                    r.int(0)
                })
            })
            .unwrap();
        assert_eq!(n, Some(1));
        let v = db
            .read(|c| c.query_opt(&Sql::new("SELECT value FROM kvs"), |r| r.text(0)))
            .unwrap();
        assert_eq!(v.as_deref(), Some("b"));
    }

    #[test]
    fn failed_transaction_rolls_back() {
        let (_dir, db) = temp_db(Durability::Off);
        let result: Result<(), StoreError> = db.write(|c| {
            c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('k', 'v')"))?;
            c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('k', 'w')"))?;
            Ok(())
        });
        let err = result.unwrap_err();
        assert!(err.is_unique_violation());
        let n = db
            .read(|c| c.query_opt(&Sql::new("SELECT count(*) FROM kvs"), |r| r.int(0)))
            .unwrap();
        assert_eq!(n, Some(0));
    }

    #[test]
    fn unknown_revision_file_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE runs (id INTEGER);
                 CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);
                 INSERT INTO alembic_version VALUES ('abcdefabcdef');",
            )
            .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Db::open(path.to_str().unwrap(), Durability::Full, &RUNS_SCHEMA).unwrap_err();
        assert!(matches!(err, StoreError::UnknownRevision { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_schema_changed_into_an_unknown_one_is_not_written() {
        let (dir, db) = temp_db(Durability::Off);
        db.write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('a', '1')")))
            .unwrap();
        // Another process: a newer Dagster's migration (DDL, then its stamp).
        let path = dir.path().join("history").join("runs.db");
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(
                "ALTER TABLE kvs ADD COLUMN newer TEXT; \
                 UPDATE alembic_version SET version_num = 'abcdefabcdef';",
            )
            .unwrap();
        let err = db
            .write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('b', '2')")))
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRevision { .. }), "{err}");
        let keys = db
            .read(|c| c.query(&Sql::new("SELECT key FROM kvs ORDER BY key"), |r| r.text(0)))
            .unwrap();
        assert_eq!(keys, ["a"]);
        // A migration this Dagster knows (stamped back to the head) is written to again.
        other
            .execute_batch(&format!(
                "UPDATE alembic_version SET version_num = '{HEAD_REVISION}'; \
                 CREATE TABLE scratch (x);"
            ))
            .unwrap();
        db.write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('b', '2')")))
            .unwrap();
    }

    #[test]
    fn failures_have_their_kinds() {
        use crate::errors::ErrorKind;
        let (_dir, db) = temp_db(Durability::Off);
        let kind = |text: &str| {
            db.write(|c| c.execute(&Sql::new(text)))
                .map(|_| ())
                .unwrap_err()
                .kind()
        };
        db.write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('k', 'v')")))
            .unwrap();
        assert_eq!(
            kind("INSERT INTO kvs (key, value) VALUES ('k', 'w')"),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            kind("INSERT INTO alembic_version (version_num) VALUES (NULL)"),
            ErrorKind::Constraint
        );
        assert_eq!(kind("SELECT 1 FROM nope"), ErrorKind::SchemaMismatch);
        assert_eq!(kind("SELECT nope FROM kvs"), ErrorKind::SchemaMismatch);
        assert_eq!(kind("SELEC 1"), ErrorKind::Other);
        let err = db
            .write(|c| c.execute(&Sql::new("INSERT INTO kvs (key, value) VALUES ('k', 'x')")))
            .unwrap_err();
        assert!(err.is_unique_violation() && err.is_constraint() && !err.is_busy());
    }

    #[test]
    fn durability_parses() {
        assert_eq!("FULL".parse::<Durability>().unwrap(), Durability::Full);
        assert!("fast".parse::<Durability>().is_err());
    }
}
