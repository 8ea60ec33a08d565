//! Reading a database file this process cannot write (a home on a read-only mount, a snapshot
//! or replica served to a webserver, a file or directory without write permission).
//!
//! SQLite reads such files with `mode=ro`, except a WAL-mode file whose `-wal` is absent on a
//! read-only file system: SQLite cannot create the `-wal` and `-shm` it needs there, so every
//! read fails (`SQLITE_CANTOPEN`). Such a file has no WAL content, and `immutable=1` reads it
//! without locks or side files. A read-only mount may still show a file another host (or the
//! bind mount's writable side) writes, so an immutable view is trusted only while the file is
//! unchanged and no `-wal` has appeared (`FileStamp`).
//!
//! Nothing here opens a database file outside SQLite. POSIX advisory locks belong to the process
//! and the inode: closing any descriptor of the file drops every lock this process holds on it,
//! the locks of SQLite connections in other threads included (a write transaction's, or the
//! SHARED lock that keeps another process's last close from deleting the `-wal` this process
//! writes to). SQLite's unix VFS keeps one record per inode and defers such a close while any
//! of its connections holds a lock; code of its own would not. So the journal mode is not read
//! from the header (SQLite's refusal says what is needed), and the bytes of a file with a hot
//! journal are read through the VFS (`read_file`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};

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

/// A read-only connection to `path`, opened as `how` says, waiting up to `busy` for locks.
pub fn open(path: &Path, how: How, busy: Duration) -> rusqlite::Result<Connection> {
    let query = match how {
        How::ReadOnly => "mode=ro",
        How::Immutable => "mode=ro&immutable=1",
    };
    let conn = Connection::open_with_flags(
        uri(path, query),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // By pragma: rusqlite's `busy_timeout` needs `sqlite3_set_clientdata`, which Debian 12's
    // SQLite lacks.
    conn.execute_batch(&format!("PRAGMA busy_timeout = {}", busy.as_millis()))?;
    Ok(conn)
}

/// A connection reading `path` without writing or creating anything it cannot, and how it was
/// opened: `mode=ro`, or on a read-only file system (`fs_read_only`) `immutable=1` where SQLite
/// refuses `mode=ro` because a WAL-mode file has no `-wal` and none can be created there. The
/// first read is made here, so a refusal (a hot journal: `SQLITE_READONLY_ROLLBACK`) is the
/// error returned.
pub fn open_reading(
    path: &Path,
    fs_read_only: bool,
    busy: Duration,
) -> rusqlite::Result<(Connection, How)> {
    let conn = open(path, How::ReadOnly, busy)?;
    match conn.query_row("PRAGMA schema_version", [], |_| Ok(())) {
        Ok(()) => Ok((conn, How::ReadOnly)),
        // The database file itself opened (SQLite opens it eagerly): what could not be opened
        // is a side file, the `-wal` (and `-shm`) a WAL-mode file needs.
        Err(e) if fs_read_only && cannot_open(&e) && !side_file(path, "-wal").exists() => {
            drop(conn);
            Ok((open(path, How::Immutable, busy)?, How::Immutable))
        }
        Err(e) => Err(e),
    }
}

fn cannot_open(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(code, _) if code.extended_code == ffi::SQLITE_CANTOPEN)
}

/// The bytes of a database file, or of its rollback journal (`journal`), read through SQLite's
/// default VFS instead of opened directly. The unix VFS shares one record per inode with every
/// connection of this process and, while any of them holds a lock on the file, keeps the
/// descriptor open after `xClose` (it closes it with the last lock), so this process's locks
/// survive the read. (SQLite locks no journal; it is read the same way for uniformity.) At most
/// `limit` bytes are read when it is given (a header).
pub fn read_file(path: &Path, journal: bool, limit: Option<usize>) -> rusqlite::Result<Vec<u8>> {
    let fail = |code: std::ffi::c_int| {
        rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(format!("cannot read {}", path.display())),
        )
    };
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(fail(ffi::SQLITE_CANTOPEN));
    }
    // A database name as SQLite hands it to xOpen: followed by an empty list of URI parameters
    // (a terminator, then an empty key). It must outlive the file: the VFS keeps a pointer to it.
    let mut name = bytes.to_vec();
    name.extend_from_slice(&[0, 0, 0, 0]);
    let kind = if journal {
        ffi::SQLITE_OPEN_MAIN_JOURNAL
    } else {
        ffi::SQLITE_OPEN_MAIN_DB
    };
    // SAFETY: the default VFS and its methods are SQLite's public file-layer API. The file
    // object is zeroed, 8-byte aligned and `szOsFile` bytes long, as xOpen requires; it is
    // closed (xClose) whenever xOpen set its methods, before its storage and `name` are freed;
    // xRead writes at most `n` bytes into the slice it is given.
    unsafe {
        let vfs = ffi::sqlite3_vfs_find(std::ptr::null());
        if vfs.is_null() {
            return Err(fail(ffi::SQLITE_ERROR));
        }
        let Some(x_open) = (*vfs).xOpen else {
            return Err(fail(ffi::SQLITE_ERROR));
        };
        let size_of_file = usize::try_from((*vfs).szOsFile).unwrap_or(0);
        let mut storage = vec![0u64; size_of_file.div_ceil(8).max(1)];
        let file = storage.as_mut_ptr().cast::<ffi::sqlite3_file>();
        let mut out_flags = 0;
        let rc = x_open(
            vfs,
            name.as_ptr().cast(),
            file,
            ffi::SQLITE_OPEN_READONLY | kind,
            &mut out_flags,
        );
        let methods = (*file).pMethods;
        let read = if rc != ffi::SQLITE_OK {
            Err(fail(rc))
        } else {
            read_all(file, methods, limit).map_err(fail)
        };
        if let Some(x_close) = methods.as_ref().and_then(|m| m.xClose) {
            x_close(file);
        }
        drop(storage);
        drop(name);
        read
    }
}

/// Every byte of an open VFS file, or its first `limit` bytes.
///
/// # Safety
/// `file` is open and `methods` are its methods.
unsafe fn read_all(
    file: *mut ffi::sqlite3_file,
    methods: *const ffi::sqlite3_io_methods,
    limit: Option<usize>,
) -> Result<Vec<u8>, std::ffi::c_int> {
    let methods = methods.as_ref().ok_or(ffi::SQLITE_ERROR)?;
    let (Some(x_size), Some(x_read)) = (methods.xFileSize, methods.xRead) else {
        return Err(ffi::SQLITE_ERROR);
    };
    let mut size: ffi::sqlite3_int64 = 0;
    let rc = x_size(file, &mut size);
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    let size = usize::try_from(size).map_err(|_| ffi::SQLITE_IOERR)?;
    let mut out = vec![0u8; limit.map_or(size, |l| l.min(size))];
    let mut at = 0usize;
    while at < out.len() {
        let n = (out.len() - at).min(1 << 20);
        // A short read (the file shrank meanwhile) is an error: the image would be wrong.
        let rc = x_read(
            file,
            out[at..].as_mut_ptr().cast(),
            n as std::ffi::c_int,
            at as ffi::sqlite3_int64,
        );
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        at += n;
    }
    Ok(out)
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

/// Whether another process finds byte `offset` of `path` locked (`F_GETLK` for a write lock,
/// asked from a forked child: a process never conflicts with its own locks).
#[cfg(test)]
pub(crate) fn locked_elsewhere(path: &Path, offset: i64) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: the child calls only async-signal-safe functions (open, fcntl, _exit) on memory
    // prepared before the fork; the parent waits for it.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            let mut lock: libc::flock = std::mem::zeroed();
            lock.l_type = libc::F_WRLCK as libc::c_short;
            lock.l_whence = libc::SEEK_SET as libc::c_short;
            lock.l_start = offset;
            lock.l_len = 1;
            let code = if fd < 0 || libc::fcntl(fd, libc::F_GETLK, &mut lock) != 0 {
                2
            } else if lock.l_type == libc::F_UNLCK as libc::c_short {
                0
            } else {
                1
            };
            libc::_exit(code);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        match libc::WEXITSTATUS(status) {
            0 => false,
            1 => true,
            other => panic!("the lock probe failed ({other})"),
        }
    }
}

/// SQLite's lock bytes (os_unix.c): a writer's RESERVED lock, a reader's first SHARED byte.
#[cfg(test)]
pub(crate) const RESERVED_BYTE: i64 = 0x4000_0001;
#[cfg(test)]
pub(crate) const SHARED_FIRST: i64 = 0x4000_0002;

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

    const BUSY: Duration = Duration::from_secs(5);

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
        let listing = || -> Vec<_> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect()
        };
        let before = listing();
        let c = open(&path, How::Immutable, BUSY).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let err = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly));
        drop(c);
        assert_eq!(before, listing());
        let stamp = FileStamp::of(&path).unwrap();
        std::fs::write(side_file(&path, "-wal"), b"").unwrap();
        assert_ne!(
            FileStamp::of(&path).unwrap(),
            stamp,
            "a -wal appearing ends the trust"
        );
        // Where SQLite can create the side files, `mode=ro` reads it: no immutable fallback.
        let (c, how) = open_reading(&path, true, BUSY).unwrap();
        assert_eq!(how, How::ReadOnly);
        drop(c);
    }

    #[test]
    fn reading_through_the_vfs_keeps_this_process_s_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        assert!(locked_elsewhere(&path, RESERVED_BYTE));
        let through_sqlite = read_file(&path, false, None).unwrap();
        assert!(
            locked_elsewhere(&path, RESERVED_BYTE),
            "reading through the VFS keeps the write lock"
        );
        let journal = read_file(&side_file(&path, "-journal"), true, None).unwrap();
        assert_eq!(
            journal,
            std::fs::read(side_file(&path, "-journal")).unwrap()
        );
        assert!(locked_elsewhere(&path, RESERVED_BYTE));
        assert_eq!(
            read_file(&path, false, Some(16)).unwrap(),
            b"SQLite format 3\0"
        );
        assert!(locked_elsewhere(&path, RESERVED_BYTE));
        // What the VFS avoids: a descriptor of the file opened and closed here drops the lock.
        assert_eq!(through_sqlite, std::fs::read(&path).unwrap());
        assert!(!locked_elsewhere(&path, RESERVED_BYTE));
        c.execute_batch("COMMIT").unwrap();
        assert!(read_file(&dir.path().join("absent.db"), false, None).is_err());
    }

    #[test]
    fn writability_follows_permissions_of_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("new.db");
        assert!(writable(&path), "created under a writable ancestor");
        assert!(!fs_read_only(&path));
    }
}
