//! The assets domain: asset keys and records, asset event reads, partitions and the asset status
//! cache, wipes and asset-check reads, over the event log's index shard (`index.db`), which it
//! shares with the events domain (the rows it reads are the ones `events` writes).

pub mod bindings;

use std::sync::Arc;

use crate::store::Shards;

/// The assets domain's view of one event log.
#[derive(Debug)]
pub struct Assets {
    shards: Arc<Shards>,
}

impl Assets {
    pub fn on(shards: Arc<Shards>) -> Assets {
        Assets { shards }
    }

    pub fn shards(&self) -> &Shards {
        &self.shards
    }
}
