//! Link the SQLite library that the target Python's `sqlite3` module itself loads.
//!
//! Two copies of SQLite holding one database file in one process can corrupt it (their POSIX
//! lock bookkeeping is separate, so a close by one drops the other's locks). Stock Dagster,
//! user code and this extension all open the same files, so the extension must call the very
//! library `_sqlite3` calls (ARCHITECTURE.md, "One SQLite per process"). This script asks the
//! target Python which shared library holds `_sqlite3`'s `sqlite3_libversion` and puts a
//! `libsqlite3.so` link to that file first on the linker's search path: the build then needs no
//! `libsqlite3-dev`, and the extension's `DT_NEEDED` names the same soname. Whether it holds in
//! the running process is verified again at import (`src/store/library.rs`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROBE: &str = r#"
import ctypes, _sqlite3
try:
    lib = ctypes.CDLL(getattr(_sqlite3, "__file__", None))
    addr = ctypes.cast(lib.sqlite3_libversion, ctypes.c_void_p).value
except (AttributeError, OSError):
    addr = None
path = ""
if addr:
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi and len(parts) >= 6:
                path = parts[5]
                break
print(path)
"#;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if env::var_os("CARGO_FEATURE_BUNDLED_SQLITE").is_some()
        || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
    {
        // Bundled: nothing to link. Elsewhere than Linux the system library is linked as is and
        // the check at import decides.
        return;
    }
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&python)
        .args(["-c", PROBE])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let is_shared_lib = PathBuf::from(&found)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("libsqlite3.so"));
    if !is_shared_lib {
        println!(
            "cargo:warning={python}'s sqlite3 module does not load a shared libsqlite3 \
             (found {found:?}); the extension links the system libsqlite3 and will refuse to \
             open storage in that Python (two SQLite libraries on one file corrupt it)"
        );
        return;
    }
    let dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("sqlite");
    std::fs::create_dir_all(&dir).expect("create the link directory");
    let link = dir.join("libsqlite3.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&found, &link).expect("link the Python's libsqlite3");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rerun-if-changed={found}");
}
