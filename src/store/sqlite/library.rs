//! Which SQLite library this process runs, and whether Python's `sqlite3` module runs the same one.
//!
//! SQLite keeps the POSIX locks of a file in per-library bookkeeping: a second copy of the
//! library in the process does not see the first one's locks, and closing its own descriptor on
//! the file drops them, after which it may checkpoint and delete the WAL under the other. Stock
//! Dagster (through `sqlite3`), user code and this core open the same files in one process, so
//! the core must run the library `_sqlite3` runs. `build.rs` links that library; at import the
//! module checks it holds — the same `sqlite3_libversion`, by address — and where it does not,
//! every file open is refused with the reason instead.

use std::ffi::{c_void, CStr, CString};
use std::sync::OnceLock;

/// Oldest SQLite the core's SQL needs (`RETURNING`, `ON CONFLICT ... DO UPDATE`, window functions).
pub const MIN_VERSION: i32 = 3_035_000;

/// What the import-time check found, for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// `sqlite3_libversion()` of the library the core calls.
    pub version: String,
    /// The file that holds it (the extension itself when SQLite is bundled).
    pub path: Option<String>,
    /// `sqlite3.sqlite_version` and the file holding `_sqlite3`'s `sqlite3_libversion`.
    pub python_version: Option<String>,
    pub python_path: Option<String>,
    /// Why the core must not open files in this process; `None` when it may.
    pub problem: Option<String>,
}

static CHECKED: OnceLock<Library> = OnceLock::new();

/// The check's result, once the Python module has run it; `None` outside Python (Rust tests).
pub fn checked() -> Option<&'static Library> {
    CHECKED.get()
}

/// The reason the core must not open database files in this process, if any.
pub fn refusal() -> Option<&'static str> {
    CHECKED.get().and_then(|lib| lib.problem.as_deref())
}

/// Run the check against the `_sqlite3` extension at `module_file` (`None`: built into Python),
/// which reports `python_version`, and keep its result for the process.
pub fn check(
    module_file: Option<&str>,
    python_version: Option<String>,
    python_has_sqlite: bool,
) -> &'static Library {
    CHECKED.get_or_init(|| compare(module_file, python_version, python_has_sqlite))
}

fn ours() -> *const c_void {
    rusqlite::ffi::sqlite3_libversion as *const c_void
}

fn our_version() -> String {
    // SAFETY: sqlite3_libversion returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(rusqlite::ffi::sqlite3_libversion()) }
        .to_string_lossy()
        .into_owned()
}

/// The file mapped at `addr`, as the dynamic loader knows it.
fn file_of(addr: *const c_void) -> Option<String> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    let found = unsafe { libc::dladdr(addr, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname points into the loader's own NUL-terminated strings.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(
        std::fs::canonicalize(name.to_string_lossy().as_ref()).map_or_else(
            |_| name.to_string_lossy().into_owned(),
            |p| p.to_string_lossy().into_owned(),
        ),
    )
}

/// `sqlite3_libversion` as `_sqlite3` resolves it: looked up from that module's own handle, so
/// the search covers the module and the libraries it was linked against, in the loader's order.
fn pythons(module_file: Option<&str>) -> Option<*const c_void> {
    let file = module_file.map(CString::new).transpose().ok()?;
    let name = file.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
    // SAFETY: RTLD_NOLOAD only returns a handle to an object already loaded (or the program's
    // own with a NULL name), and the handle is closed again below.
    unsafe {
        let handle = libc::dlopen(name, libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return None;
        }
        let sym = libc::dlsym(handle, c"sqlite3_libversion".as_ptr());
        libc::dlclose(handle);
        (!sym.is_null()).then_some(sym as *const c_void)
    }
}

fn compare(
    module_file: Option<&str>,
    python_version: Option<String>,
    python_has_sqlite: bool,
) -> Library {
    let version = our_version();
    let path = file_of(ours());
    let theirs = python_has_sqlite.then(|| pythons(module_file)).flatten();
    let python_path = theirs.and_then(file_of);
    // SAFETY: a plain getter of a compile-time constant of the library.
    let number = unsafe { rusqlite::ffi::sqlite3_libversion_number() };
    let describe = |v: &str, p: &Option<String>| {
        format!(
            "SQLite {v} in {}",
            p.as_deref().unwrap_or("an unknown file")
        )
    };
    let problem = if !python_has_sqlite {
        // No sqlite3 module: no second library can be in the process through Python.
        None
    } else if theirs != Some(ours()) {
        Some(format!(
            "two SQLite libraries would hold the same files in this process: dagster-rs runs {}, \
             Python's sqlite3 module runs {}. SQLite documents that two copies of the library on \
             one database file in one process can corrupt it, and stock Dagster or user code in \
             this process may open the files dagster-rs writes. Build dagster-rs against this \
             Python (`pip install .` links the libsqlite3 its sqlite3 module loads) or use a \
             Python whose sqlite3 module loads a shared libsqlite3; DAGSTER_RS_DOMAINS=none \
             keeps stock Dagster's storage",
            describe(&version, &path),
            if theirs.is_some() {
                describe(python_version.as_deref().unwrap_or("?"), &python_path)
            } else {
                format!(
                    "SQLite {} linked into the module itself",
                    python_version.as_deref().unwrap_or("?")
                )
            }
        ))
    } else if number < MIN_VERSION {
        Some(format!(
            "{} is older than SQLite 3.35.0, the oldest dagster-rs supports",
            describe(&version, &path)
        ))
    } else {
        None
    };
    Library {
        version,
        path,
        python_version,
        python_path,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_the_core_calls_is_found_by_address() {
        // The test program itself stands in for Python: its global symbol scope holds the
        // system libsqlite3 when that is what the core links, and no SQLite when it is bundled.
        let lib = compare(None, Some("3".into()), true);
        assert!(lib.version.starts_with("3."), "{}", lib.version);
        assert!(lib.path.is_some());
        if cfg!(feature = "bundled-sqlite") {
            assert!(lib.problem.is_some());
        } else {
            assert_eq!(lib.problem, None);
            assert_eq!(lib.python_path, lib.path);
        }
    }

    #[test]
    fn a_python_without_sqlite3_leaves_nothing_to_share() {
        assert_eq!(compare(None, None, false).problem, None);
    }

    #[test]
    fn a_python_whose_sqlite_cannot_be_found_is_refused() {
        // A module file that is not loaded: the check cannot prove one library, so it refuses.
        let lib = compare(Some("/nonexistent/_sqlite3.so"), Some("3.0.0".into()), true);
        let problem = lib.problem.expect("refused");
        assert!(problem.contains("two SQLite libraries"), "{problem}");
        assert!(
            problem.contains("linked into the module itself"),
            "{problem}"
        );
    }
}
