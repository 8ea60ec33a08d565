//! `dagster_rs._native.StorageStore`: the storage domain (dynamic partitions, concurrency
//! pools) as seen from Python, used by `dagster_rs.storage.storage_domain.StorageDomain`.

use std::sync::Arc;

use pyo3::prelude::*;

use super::Storage;
use crate::store::Shards;

/// The storage domain's store over one event log directory.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct StorageStore {
    pub(crate) inner: Arc<Storage>,
}

impl StorageStore {
    pub(crate) fn from_shared(shards: Arc<Shards>) -> Self {
        StorageStore {
            inner: Arc::new(Storage::on(shards)),
        }
    }
}

#[pymethods]
impl StorageStore {
    /// The event log directory this store reads and writes.
    #[getter]
    fn directory(&self) -> std::path::PathBuf {
        self.inner.shards().dir().to_path_buf()
    }
}
