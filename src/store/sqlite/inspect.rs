//! `inspect_database`: what a Dagster database file is and whether the native path serves it.
//!
//! The facade calls it once per file when it builds an instance, to decide per file whether a
//! domain runs on the native path or on stock's code. The verdict is `schema::judge`, the same
//! one `Db::open` acts on.
//!
//! It reads the file as the store would, and only through SQLite: this process may hold the file
//! through the store meanwhile, and a descriptor of it opened and closed outside SQLite would
//! drop those locks (see `readonly`). A file this process can write is read on a read-write
//! connection, as any reader's first open reads it: SQLite rolls back a hot journal first (what
//! stock's and dagster-rs's next open does anyway; it changes no committed data), and a last
//! connection's close checkpoints a leftover `-wal` into the file and removes it (likewise). A
//! file this process cannot write (a read-only mount, no permission) is read with `mode=ro`
//! (`immutable=1` where that is refused on a read-only file system), and a hot journal beside
//! it is applied to an in-memory copy: nothing is written.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rusqlite::{Connection, OpenFlags, MAIN_DB};

use super::readonly::{self, How};
use super::schema::{self, Found, Verdict};
use crate::errors::StoreError;

/// What `inspect_database` found (the `InspectedDatabase` TypedDict of the stub).
#[derive(Debug)]
pub struct Inspected {
    pub path: String,
    pub exists: bool,
    pub revision: Option<String>,
    pub verdict: Verdict,
    pub read_only: bool,
    /// A hot rollback journal was beside the file: the verdict is of the rolled-back file
    /// (rolled back by SQLite when this process can write the file, in memory otherwise).
    pub hot_journal: bool,
}

/// Inspect the file at `path` as a file of `schema`.
pub fn inspect(path: &str, schema: &'static schema::Schema) -> Result<Inspected, StoreError> {
    let file = Path::new(path);
    let read_only = !readonly::writable(file);
    let present = file.exists();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let busy = super::busy_timeout();
    let (found, hot_journal) = if size == 0 {
        let found = Found {
            present,
            ..Found::default()
        };
        (found, false)
    } else if read_only {
        read_unwritable(file, present, busy)?
    } else {
        read_writable(file, present, busy)?
    };
    let verdict = schema::judge(path, schema, &found, !read_only);
    Ok(Inspected {
        path: path.to_owned(),
        exists: found.exists,
        revision: found.revision,
        verdict,
        read_only,
        hot_journal,
    })
}

fn error(file: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::sqlite(&file.to_string_lossy(), e)
}

/// A file this process can write, read on a read-write connection (never created: it exists).
/// Only a file with a `-journal` beside it can have a hot one, and a `mode=ro` read tells
/// (SQLite refuses it with `SQLITE_READONLY_ROLLBACK`) without writing anything; the read-write
/// connection then rolls it back.
fn read_writable(file: &Path, present: bool, busy: Duration) -> Result<(Found, bool), StoreError> {
    let err = error(file);
    let mut hot = false;
    if readonly::side_file(file, "-journal").exists() {
        let conn = readonly::open(file, How::ReadOnly, busy).map_err(&err)?;
        match Found::read(&conn, present, true) {
            Err(e) if is_hot_journal(&e) => hot = true,
            other => return other.map(|f| (f, false)).map_err(&err),
        }
    }
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.execute_batch(&format!("PRAGMA busy_timeout = {}", busy.as_millis()))
        .map_err(&err)?;
    let mut found = Found::read(&conn, present, false).map_err(&err)?;
    // Judged after the read: a rolled-back journal may have emptied the file (the transaction
    // created its first page).
    found.exists |= std::fs::metadata(file).is_ok_and(|m| m.len() > 0);
    Ok((found, hot))
}

/// A file this process cannot write: `mode=ro`, or `immutable=1` on a read-only file system
/// where SQLite refuses that. An immutable read takes no lock: if the file changed under it (or
/// a WAL appeared), it is read again; the last try is `mode=ro` only.
fn read_unwritable(
    file: &Path,
    present: bool,
    busy: Duration,
) -> Result<(Found, bool), StoreError> {
    let err = error(file);
    let fs_read_only = readonly::fs_read_only(file);
    let tries = 3;
    for attempt in 1..=tries {
        let before = readonly::FileStamp::of(file);
        let opened = readonly::open_reading(file, fs_read_only && attempt < tries, busy);
        let read =
            opened.and_then(|(conn, how)| Found::read(&conn, present, true).map(|f| (f, how)));
        let (found, how) = match read {
            Err(e) if is_hot_journal(&e) => return rolled_back(file, present).map(|f| (f, true)),
            other => other.map_err(&err)?,
        };
        if how == How::ReadOnly || readonly::FileStamp::of(file) == before {
            return Ok((found, false));
        }
    }
    unreachable!("the last try reads with mode=ro")
}

/// The file as SQLite will find it once its hot journal is rolled back, read from memory.
fn rolled_back(file: &Path, present: bool) -> Result<Found, StoreError> {
    let image = rolled_back_image(file)?;
    if image.is_empty() {
        // The transaction created the file's first page: rolled back, the file is empty.
        return Ok(Found {
            present,
            ..Found::default()
        });
    }
    let conn = open_image(&file.to_string_lossy(), &image)?;
    Found::read(&conn, present, true).map_err(error(file))
}

/// The bytes of `file` with its hot journal played back (nothing written to either). Both are
/// read through SQLite's VFS (`readonly::read_file`): a connection of this process may hold the
/// file meanwhile (a `mode=ro` reader on a read-only mount whose writable side another process
/// writes), and its locks must survive the read.
pub(crate) fn rolled_back_image(file: &Path) -> Result<Vec<u8>, StoreError> {
    let err = error(file);
    let mut image = readonly::read_file(file, false, None).map_err(&err)?;
    let journal =
        readonly::read_file(&readonly::side_file(file, "-journal"), true, None).map_err(&err)?;
    roll_back(&mut image, &journal);
    if image.len() >= 20 {
        // An in-memory database cannot be in WAL mode; the bytes only say which journal to use.
        image[18] = 1;
        image[19] = 1;
    }
    Ok(image)
}

/// A read-only in-memory database holding a copy of `image` (`path` names it in errors).
pub(crate) fn open_image(path: &str, image: &[u8]) -> Result<Connection, StoreError> {
    let err = |e| StoreError::sqlite(path, e);
    let mut conn = Connection::open_in_memory().map_err(err)?;
    conn.deserialize_read_exact(MAIN_DB, image, image.len(), true)
        .map_err(err)?;
    Ok(conn)
}

/// Whether SQLite refused a read-only read because a hot journal needs rolling back.
pub(crate) fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(code, _)
        if code.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
/// SQLite's lock byte: the page holding it is never journaled (`PAGER_SJ_PGNO`).
const PENDING_BYTE: u64 = 0x4000_0000;

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Play a rollback journal back onto the database image, as SQLite's `pager_playback` does for
/// a hot journal: each segment's header (magic, record count, checksum seed, the database's
/// size before the transaction, sector and page size), then its records (page number, the
/// page's original content, checksum) until one fails its checksum; the image is cut (or
/// extended) to its original size. A journal whose first header is not valid is not hot.
pub fn roll_back(image: &mut Vec<u8>, journal: &[u8]) {
    let Some(header) = journal.get(..28) else {
        return;
    };
    if header[..8] != JOURNAL_MAGIC {
        return;
    }
    let (Some(sector), Some(page)) = (be32(journal, 20), be32(journal, 24)) else {
        return;
    };
    let (sector, page) = (sector as usize, page as usize);
    let valid = |n: usize, min: usize, max: usize| n >= min && n <= max && n.is_power_of_two();
    if !valid(page, 512, 65536) || !valid(sector, 32, 65536) {
        return;
    }
    let record = page + 8;
    let lock_page = PENDING_BYTE / page as u64 + 1;
    let mut original_pages = None;
    let mut offset = 0usize;
    loop {
        // Headers sit on sector boundaries.
        offset = offset.div_ceil(sector) * sector;
        if offset + sector > journal.len() || journal[offset..offset + 8] != JOURNAL_MAGIC {
            break;
        }
        let (Some(mut records), Some(seed), Some(pages)) = (
            be32(journal, offset + 8),
            be32(journal, offset + 12),
            be32(journal, offset + 16),
        ) else {
            break;
        };
        let body = offset + sector;
        if records == u32::MAX {
            records = ((journal.len() - body) / record) as u32;
        }
        if original_pages.is_none() {
            original_pages = Some(pages as usize);
            image.resize(pages as usize * page, 0);
        }
        let db_pages = original_pages.unwrap_or(0) as u64;
        offset = body;
        for _ in 0..records {
            let Some(bytes) = journal.get(offset..offset + record) else {
                // A short journal ends the playback where it ends.
                return;
            };
            offset += record;
            let number = u64::from(be32(bytes, 0).unwrap_or(0));
            let data = &bytes[4..4 + page];
            let sum = be32(bytes, 4 + page).unwrap_or(0);
            if number == 0 || number == lock_page {
                return;
            }
            let mut check = seed;
            let mut i = page as isize - 200;
            while i > 0 {
                check = check.wrapping_add(u32::from(data[i as usize]));
                i -= 200;
            }
            if check != sum {
                return;
            }
            if number <= db_pages {
                let at = (number as usize - 1) * page;
                image[at..at + page].copy_from_slice(data);
            }
        }
        if records == 0 {
            // A segment with no records (not synced before the crash) ends the playback: no
            // page of the database was written after it.
            break;
        }
    }
}

/// `dagster_rs._native.inspect_database(path, kind)`: see `InspectedDatabase` in the stub.
#[pyfunction]
pub fn inspect_database<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    kind: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let Some(schema) = schema::by_kind(kind) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "kind must be 'runs', 'event_index', 'event_shard' or 'schedules', got {kind:?}"
        )));
    };
    let path = path.to_string_lossy().into_owned();
    let found = py.detach(|| inspect(&path, schema))?;
    let out = PyDict::new(py);
    out.set_item("path", &found.path)?;
    out.set_item("exists", found.exists)?;
    out.set_item("revision", &found.revision)?;
    out.set_item("state", found.verdict.state.as_str())?;
    out.set_item("native", found.verdict.native())?;
    out.set_item("missing", &found.verdict.missing)?;
    out.set_item("read_only", found.read_only)?;
    out.set_item("hot_journal", found.hot_journal)?;
    Ok(out)
}

/// `dagster_rs._native.read_database_file(path, journal=False, limit=None)`: the bytes of a
/// database file (or of its rollback journal), read through SQLite's VFS so that this process's
/// locks on the file survive (`readonly::read_file`). Python code reading or copying a database
/// file uses it instead of `open()`.
#[pyfunction]
#[pyo3(signature = (path, journal = false, limit = None))]
pub fn read_database_file<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    journal: bool,
    limit: Option<usize>,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    // SQLite locks the `-shm` through a descriptor of its own, outside the per-inode record
    // the VFS shares: a descriptor of it opened and closed here would drop those locks.
    if path.as_os_str().as_bytes().ends_with(b"-shm") {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{}: a -shm is never read outside SQLite (it is rebuilt from the -wal)",
            path.display()
        )));
    }
    let bytes = py
        .detach(|| readonly::read_file(&path, journal, limit))
        .map_err(error(&path))?;
    Ok(pyo3::types::PyBytes::new(py, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{EVENT_SHARD_SCHEMA, HEAD_REVISION, RUNS_SCHEMA};

    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn missing_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let got = inspect(path.to_str().unwrap(), &RUNS_SCHEMA).unwrap();
        assert!(!got.exists && !got.read_only && got.verdict.native());
        assert_eq!(got.verdict.state.as_str(), "missing");
        std::fs::write(&path, b"").unwrap();
        let got = inspect(path.to_str().unwrap(), &RUNS_SCHEMA).unwrap();
        assert_eq!(got.verdict.state.as_str(), "missing");
        assert!(!dir.path().join("runs.db-wal").exists());
    }

    #[test]
    fn a_wal_file_is_inspected_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL").unwrap();
            for s in RUNS_SCHEMA.ddl {
                c.execute_batch(s).unwrap();
            }
            c.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD_REVISION])
                .unwrap();
        }
        let before = listing(dir.path());
        let got = inspect(path.to_str().unwrap(), &RUNS_SCHEMA).unwrap();
        assert_eq!(got.verdict.state.as_str(), "current");
        assert_eq!(got.revision.as_deref(), Some(HEAD_REVISION));
        assert!(got.verdict.native() && got.verdict.missing.is_empty());
        assert_eq!(listing(dir.path()), before);
    }

    /// A file with a hot journal: a transaction's pages spilled to the file, then the writer
    /// gone (the two files copied while the transaction was open).
    fn hot_copy(dir: &Path) -> std::path::PathBuf {
        let live = dir.join("live.db");
        let c = Connection::open(&live).unwrap();
        c.execute_batch("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, run_id TEXT)")
            .unwrap();
        c.execute_batch("PRAGMA cache_size = 1; BEGIN; CREATE TABLE big (y);")
            .unwrap();
        for _ in 0..500 {
            c.execute("INSERT INTO big VALUES (?1)", [&"x".repeat(700)])
                .unwrap();
        }
        let copy = dir.join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        std::fs::copy(dir.join("live.db-journal"), dir.join("copy.db-journal")).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        copy
    }

    #[test]
    fn a_hot_journal_over_an_empty_file_rolls_back_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let c = Connection::open(&live).unwrap();
        c.execute_batch("PRAGMA cache_size = 1; BEGIN; CREATE TABLE big (y);")
            .unwrap();
        for _ in 0..500 {
            c.execute("INSERT INTO big VALUES (?1)", [&"x".repeat(700)])
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        std::fs::copy(
            dir.path().join("live.db-journal"),
            dir.path().join("copy.db-journal"),
        )
        .unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        let got = inspect(copy.to_str().unwrap(), &EVENT_SHARD_SCHEMA).unwrap();
        assert!(got.hot_journal && !got.exists);
        assert_eq!(got.verdict.state.as_str(), "missing");
    }

    #[test]
    fn a_hot_journal_is_rolled_back_by_sqlite_where_this_process_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let copy = hot_copy(dir.path());
        let journal = std::fs::read(dir.path().join("copy.db-journal")).unwrap();
        let mut image = std::fs::read(&copy).unwrap();
        roll_back(&mut image, &journal);
        let got = inspect(copy.to_str().unwrap(), &EVENT_SHARD_SCHEMA).unwrap();
        assert!(got.hot_journal && !got.read_only);
        assert_eq!(got.verdict.state.as_str(), "unstamped");
        assert_eq!(got.verdict.missing, MISSING_EVENT_LOGS_COLUMNS);
        // As any reader's first open: SQLite rolled the journal back.
        assert!(!dir.path().join("copy.db-journal").exists());
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            image,
            "the journal playback gives SQLite's bytes"
        );
        let again = inspect(copy.to_str().unwrap(), &EVENT_SHARD_SCHEMA).unwrap();
        assert!(!again.hot_journal);
        assert_eq!(again.verdict.missing, got.verdict.missing);
    }

    const MISSING_EVENT_LOGS_COLUMNS: [&str; 6] = [
        "event_logs.event",
        "event_logs.dagster_event_type",
        "event_logs.timestamp",
        "event_logs.step_key",
        "event_logs.asset_key",
        "event_logs.partition",
    ];

    #[test]
    fn a_hot_journal_beside_a_file_this_process_cannot_write_is_played_back_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let copy = hot_copy(dir.path());
        let before = listing(dir.path());
        let busy = Duration::from_secs(5);
        let (found, hot) = read_unwritable(&copy, true, busy).unwrap();
        assert!(hot);
        let verdict = schema::judge("x", &EVENT_SHARD_SCHEMA, &found, false);
        assert_eq!(verdict.state.as_str(), "unstamped");
        assert_eq!(verdict.missing, MISSING_EVENT_LOGS_COLUMNS);
        assert_eq!(
            listing(dir.path()),
            before,
            "nothing written, the journal still hot"
        );
        let journal = std::fs::read(dir.path().join("copy.db-journal")).unwrap();
        let mut image = std::fs::read(&copy).unwrap();
        roll_back(&mut image, &journal);
        let c = Connection::open(&copy).unwrap();
        let tables: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["event_logs"]);
        drop(c);
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            image,
            "SQLite's rollback gives the same bytes"
        );
    }

    /// This process holds the file (a write transaction, or in WAL mode the SHARED lock every
    /// open connection keeps) while it inspects it: another process still sees the locks.
    #[test]
    fn inspecting_keeps_the_locks_this_process_holds() {
        use crate::store::readonly::{locked_elsewhere, RESERVED_BYTE, SHARED_FIRST};
        let busy = Duration::from_secs(5);
        for wal in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("runs.db");
            let c = Connection::open(&path).unwrap();
            if wal {
                c.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            }
            c.execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
                .unwrap();
            // In WAL mode the write lock is in the -shm; the database file keeps SHARED.
            let byte = if wal { SHARED_FIRST } else { RESERVED_BYTE };
            assert!(locked_elsewhere(&path, byte));
            let got = inspect(path.to_str().unwrap(), &RUNS_SCHEMA).unwrap();
            assert_eq!(got.verdict.state.as_str(), "fresh");
            assert!(locked_elsewhere(&path, byte), "wal: {wal}");
            read_unwritable(&path, true, busy).unwrap();
            assert!(locked_elsewhere(&path, byte), "wal: {wal}");
            c.execute_batch("COMMIT").unwrap();
            if wal {
                // A hot journal's bytes are read through the VFS too.
                c.execute_batch(
                    "PRAGMA journal_mode = DELETE; BEGIN IMMEDIATE; INSERT INTO t VALUES (2);",
                )
                .unwrap();
                assert!(locked_elsewhere(&path, RESERVED_BYTE));
                rolled_back_image(&path).unwrap();
                assert!(locked_elsewhere(&path, RESERVED_BYTE));
                c.execute_batch("COMMIT").unwrap();
            }
        }
    }
}
