//! The storage domain: dynamic partitions and concurrency pools, in the event log's index
//! shard (`index.db`), which it shares with the events and assets domains.

pub mod bindings;

use std::sync::Arc;

use crate::store::Shards;

/// The storage domain's view of one event log.
#[derive(Debug)]
pub struct Storage {
    shards: Arc<Shards>,
}

impl Storage {
    pub fn on(shards: Arc<Shards>) -> Storage {
        Storage { shards }
    }

    pub fn shards(&self) -> &Shards {
        &self.shards
    }
}
