//! dagster-rs: the native core behind `dagster_rs.DagsterInstance`.
//!
//! Layers, bottom up: `store` (SQLite files in Dagster's own schema, connection pooling,
//! transactions), one module per instance domain (`runs`, `events`, `assets`, `storage`,
//! `config`, `scheduling`, `run_launcher`), `core` (the process's stores by location, which it
//! opens and hands to the domains), each domain's PyO3 class in its `bindings.rs`, and
//! `instance::DagsterInstance`, the native core of a storage root that hands those stores out.
//! Dependencies point down only: nothing below `instance` names it, and no domain names
//! `core` or any `bindings`.

mod args;
pub mod assets;
pub mod config;
pub mod core;
pub mod dbapi;
pub mod errors;
pub mod events;
pub mod instance;
mod one_sqlite;
pub mod run_launcher;
pub mod runs;
pub mod scheduling;
pub mod serdes;
mod serdes_de;
pub mod storage;
pub mod store;

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    one_sqlite::check(m.py());
    m.add_function(wrap_pyfunction!(one_sqlite::sqlite_library, m)?)?;
    m.add_function(wrap_pyfunction!(store::inspect::inspect_database, m)?)?;
    m.add_function(wrap_pyfunction!(store::inspect::read_database_file, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCHEMA_HEAD", store::schema::HEAD_REVISION)?;
    m.add_class::<instance::DagsterInstance>()?;
    m.add_class::<runs::bindings::RunStore>()?;
    m.add_class::<events::bindings::EventStore>()?;
    m.add_class::<assets::bindings::AssetStore>()?;
    m.add_class::<storage::bindings::StorageStore>()?;
    m.add_class::<config::bindings::ConfigStore>()?;
    m.add_class::<scheduling::bindings::ScheduleStore>()?;
    m.add_class::<run_launcher::bindings::RunLauncherStore>()?;
    m.add_class::<run_launcher::bindings::LaunchRunRow>()?;
    m.add_class::<dbapi::DbapiConnection>()?;
    m.add_class::<dbapi::Cursor>()?;
    m.add_class::<serdes::Serdes>()?;
    Ok(())
}
