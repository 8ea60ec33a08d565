//! Reading a database file this process cannot write (a home on a read-only mount, a snapshot
//! or replica served to a webserver, a file or directory without write permission), and reading
//! any file without changing it (`inspect_database`).
//!
//! SQLite reads such files with `mode=ro`, except a WAL-mode file whose `-wal` and `-shm` are
//! absent: a read-only connection would create them (on a writable file system, and leave them
//! behind), and cannot when the file system is read-only, so every read fails. Such a file has
//! no WAL content, and `immutable=1` reads it without locks or side files. A read-only mount may
//! still show a file another host (or the bind mount's writable side) writes, so an immutable
//! view is trusted only while the file is unchanged and no `-wal` has appeared (`FileStamp`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// How a read-only connection opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `mode=ro`: locks and the WAL as usual, nothing written to the database.
    ReadOnly,
    /// `immutable=1`: no locks, no journal or WAL, no side file created.
    Immutable,
}

/// `path` with a suffix (`-wal`, `-shm`, `-journal`).
pub fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn nearest_existing(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.exists())
}

fn access(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Whether this process can write `path` (and create its journal, WAL and shared-memory files
/// beside it): the file, when it exists, and its directory (or the nearest existing ancestor it
/// would be created under). A read-only mount answers no, whoever asks.
pub fn writable(path: &Path) -> bool {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir_ok = match dir {
        Some(dir) => nearest_existing(dir).is_some_and(|d| access(d, libc::W_OK)),
        None => access(Path::new("."), libc::W_OK),
    };
    dir_ok && (!path.exists() || access(path, libc::W_OK))
}

/// Whether the file system holding `path` (or its nearest existing ancestor) is mounted
/// read-only (`statvfs` `ST_RDONLY`).
pub fn fs_read_only(path: &Path) -> bool {
    let Some(existing) = nearest_existing(path) else {
        return false;
    };
    let Ok(c) = CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid path and a buffer statvfs(3) fills on success.
    if unsafe { libc::statvfs(c.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statvfs returned 0, so the buffer is initialised.
    let stats = unsafe { stats.assume_init() };
    stats.f_flag & libc::ST_RDONLY != 0
}

/// Whether the file's header says WAL mode (file format bytes 18 and 19 are 2).
pub fn wal_mode(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map(|()| header[18] == 2 && header[19] == 2)
        .unwrap_or(false)
}

/// How to read `path` without writing or creating anything: immutable for a WAL-mode file
/// without a `-wal` when `immutable_allowed`, else `mode=ro`. The store allows it on a read-only
/// file system only; `inspect_database` reads once and checks the file did not change meanwhile.
pub fn how(path: &Path, immutable_allowed: bool) -> How {
    let wal = side_file(path, "-wal");
    if immutable_allowed && wal_mode(path) && !wal.exists() {
        How::Immutable
    } else {
        How::ReadOnly
    }
}

/// `path` as a `file:` URI with its query: every byte outside the unreserved set and `/`
/// percent-encoded (a path may hold `?`, `#`, `%` or spaces).
fn uri(path: &Path, query: &str) -> String {
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

/// A read-only connection to `path`, opened as `how` says.
pub fn open(path: &Path, how: How) -> rusqlite::Result<Connection> {
    let query = match how {
        How::ReadOnly => "mode=ro",
        How::Immutable => "mode=ro&immutable=1",
    };
    Connection::open_with_flags(
        uri(path, query),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// What an immutable view of a file relies on: the file as it was (device, inode, size,
/// modification time) and no `-wal` beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    wal: bool,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            wal: side_file(path, "-wal").exists(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_what_sqlite_would_read_as_syntax() {
        assert_eq!(
            uri(Path::new("/a b/c?d#e%f.db"), "mode=ro"),
            "file:/a%20b/c%3Fd%23e%25f.db?mode=ro"
        );
    }

    #[test]
    fn a_clean_wal_file_is_read_immutably_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x y.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        }
        assert!(wal_mode(&path));
        assert_eq!(how(&path, true), How::Immutable);
        assert_eq!(how(&path, false), How::ReadOnly);
        let before: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let c = open(&path, How::Immutable).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let err = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly));
        drop(c);
        let after: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after);
        let stamp = FileStamp::of(&path).unwrap();
        std::fs::write(side_file(&path, "-wal"), b"").unwrap();
        assert_ne!(
            FileStamp::of(&path).unwrap(),
            stamp,
            "a -wal appearing ends the trust"
        );
    }

    #[test]
    fn writability_follows_permissions_of_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("new.db");
        assert!(writable(&path), "created under a writable ancestor");
        assert!(!fs_read_only(&path));
    }
}
