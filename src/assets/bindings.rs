//! `dagster_rs._native.AssetStore`: the assets domain as seen from Python, used by
//! `dagster_rs.storage.assets_domain.AssetsDomain`.

use std::sync::Arc;

use pyo3::prelude::*;

use super::Assets;
use crate::store::Shards;

/// The assets domain's store over one event log directory.
#[pyclass(frozen, module = "dagster_rs._native")]
pub struct AssetStore {
    pub(crate) inner: Arc<Assets>,
}

impl AssetStore {
    pub(crate) fn from_shared(shards: Arc<Shards>) -> Self {
        AssetStore {
            inner: Arc::new(Assets::on(shards)),
        }
    }
}

#[pymethods]
impl AssetStore {
    /// The event log directory this store reads.
    #[getter]
    fn directory(&self) -> std::path::PathBuf {
        self.inner.shards().dir().to_path_buf()
    }
}
