//! `inspect_database`: what a Dagster database file is and whether the native path serves it,
//! read without changing anything on disk.
//!
//! The facade calls it once per file when it builds an instance, to decide per file whether a
//! domain runs on the native path or on stock's code. The verdict is `schema::judge`, the same
//! one `Db::open` acts on. Nothing is written, created or rolled back: a WAL-mode file without
//! a `-wal` is read immutable, any other with `mode=ro`; a file with a hot rollback journal is
//! judged as it will be once rolled back, from an in-memory copy with the journal applied
//! (SQLite refuses `mode=ro` there, and rolling it back is the next writer's job).

use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rusqlite::{Connection, MAIN_DB};

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
    /// A hot rollback journal was beside the file: the verdict is of the rolled-back file.
    pub hot_journal: bool,
}

/// Inspect the file at `path` as a file of `schema`.
pub fn inspect(path: &str, schema: &'static schema::Schema) -> Result<Inspected, StoreError> {
    let file = Path::new(path);
    let read_only = !readonly::writable(file);
    let present = file.exists();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut hot_journal = false;
    let found = if size == 0 {
        Found {
            present,
            ..Found::default()
        }
    } else {
        let (found, hot) = read(file, present)?;
        hot_journal = hot;
        found
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

/// What the file holds, and whether that came from rolling back a hot journal in memory.
fn read(file: &Path, present: bool) -> Result<(Found, bool), StoreError> {
    let err = |e| StoreError::sqlite(&file.to_string_lossy(), e);
    // An immutable read takes no lock: if the file changed under it (or a WAL appeared), read
    // again; after a few tries, with `mode=ro` and SQLite's locks.
    for _ in 0..3 {
        let how = readonly::how(file, true);
        let before = readonly::FileStamp::of(file);
        let conn = readonly::open(file, how).map_err(err)?;
        let found = match Found::read(&conn, present, true) {
            Err(e) if is_hot_journal(&e) => return rolled_back(file, present).map(|f| (f, true)),
            other => other,
        };
        drop(conn);
        if how == How::ReadOnly || readonly::FileStamp::of(file) == before {
            return found.map(|f| (f, false)).map_err(err);
        }
    }
    let conn = readonly::open(file, How::ReadOnly).map_err(err)?;
    match Found::read(&conn, present, true) {
        Err(e) if is_hot_journal(&e) => rolled_back(file, present).map(|f| (f, true)),
        other => other.map(|f| (f, false)).map_err(err),
    }
}

fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(code, _)
        if code.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// The file as SQLite will find it once its hot journal is rolled back, read from memory.
fn rolled_back(file: &Path, present: bool) -> Result<Found, StoreError> {
    let path = file.to_string_lossy();
    let io = |source| StoreError::Io {
        path: path.clone().into_owned(),
        source,
    };
    let mut image = std::fs::read(file).map_err(io)?;
    let journal = std::fs::read(readonly::side_file(file, "-journal")).map_err(io)?;
    roll_back(&mut image, &journal);
    if image.is_empty() {
        // The transaction created the file's first page: rolled back, the file is empty.
        return Ok(Found {
            present,
            ..Found::default()
        });
    }
    if image.len() >= 20 {
        // An in-memory database cannot be in WAL mode; the bytes only say which journal to use.
        image[18] = 1;
        image[19] = 1;
    }
    let err = |e| StoreError::sqlite(&path, e);
    let mut conn = Connection::open_in_memory().map_err(err)?;
    let len = image.len();
    conn.deserialize_read_exact(MAIN_DB, std::io::Cursor::new(image), len, true)
        .map_err(err)?;
    Found::read(&conn, present, true).map_err(err)
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
    fn a_hot_journal_is_judged_rolled_back_and_left_hot() {
        let dir = tempfile::tempdir().unwrap();
        let copy = hot_copy(dir.path());
        let journal = std::fs::read(dir.path().join("copy.db-journal")).unwrap();
        let db = std::fs::read(&copy).unwrap();
        let got = inspect(copy.to_str().unwrap(), &EVENT_SHARD_SCHEMA).unwrap();
        assert!(got.hot_journal);
        assert_eq!(got.verdict.state.as_str(), "unstamped");
        assert_eq!(
            got.verdict.missing,
            [
                "event_logs.event",
                "event_logs.dagster_event_type",
                "event_logs.timestamp",
                "event_logs.step_key",
                "event_logs.asset_key",
                "event_logs.partition"
            ]
        );
        // Untouched: SQLite still finds the journal hot, and rolls it back itself.
        assert_eq!(
            std::fs::read(dir.path().join("copy.db-journal")).unwrap(),
            journal
        );
        assert_eq!(std::fs::read(&copy).unwrap(), db);
        let mut image = db.clone();
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
}
