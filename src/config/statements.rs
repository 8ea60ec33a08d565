//! Every statement of the config domain, built in one place: the store runs them, the runs
//! domain's `wipe` runs `delete_heartbeats` in its own transaction, and `plans.rs` explains them.
//!
//! The texts are stock `SqlRunStorage`'s (what SQLAlchemy renders for it) where stock has one
//! statement; the writes stock does as "insert, and on IntegrityError update" are one upsert
//! (`ON CONFLICT`, which PostgreSQL speaks too). Lookups by key name stock's unique index
//! (`INDEXED BY`), so `ANALYZE` statistics cannot turn them into a scan of `kvs`.

use crate::row;
use crate::store::Sql;

/// Keys per `IN` list and pairs per multi-row upsert: far below SQLite's bound-parameter limit
/// (stock binds every key in one statement and fails past it), and each chunk is one cached
/// statement for a full chunk.
pub const CHUNK: usize = 500;

/// A daemon's heartbeat row: one per daemon type, the last write kept (stock: INSERT, then
/// UPDATE by daemon type on IntegrityError).
pub fn upsert_heartbeat(
    daemon_type: &str,
    daemon_id: Option<&str>,
    timestamp: &str,
    body: &str,
) -> Sql {
    let mut q =
        Sql::new("INSERT INTO daemon_heartbeats (daemon_type, daemon_id, timestamp, body) VALUES ");
    q.values(row![daemon_type, daemon_id, timestamp, body])
        .push(
            " ON CONFLICT (daemon_type) DO UPDATE SET timestamp = excluded.timestamp, \
         daemon_id = excluded.daemon_id, body = excluded.body",
        );
    q
}

/// Every heartbeat body in table order (stock builds its mapping from this order). One row per
/// daemon type: the table is as small as the number of daemon kinds.
pub fn heartbeats() -> Sql {
    Sql::new("SELECT daemon_heartbeats.body FROM daemon_heartbeats")
}

pub fn delete_heartbeats() -> Sql {
    Sql::new("DELETE FROM daemon_heartbeats")
}

/// The stored values of `keys` (at most `CHUNK`), in key order as stock's `IN` lookup gives.
pub fn cursor_values(keys: &[String]) -> Sql {
    let mut q = Sql::new("SELECT kvs.\"key\", kvs.value FROM kvs");
    q.pin("idx_kvs_keys_unique")
        .push(" WHERE kvs.\"key\" IN ")
        .bind_list(keys);
    q
}

/// Insert or overwrite each pair (at most `CHUNK`), rows in the given order.
pub fn upsert_cursor_values(pairs: &[(String, String)]) -> Sql {
    let mut q = Sql::new("INSERT INTO kvs (\"key\", value) VALUES ");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.values(row![key.as_str(), value.as_str()]);
    }
    q.push(" ON CONFLICT (\"key\") DO UPDATE SET value = excluded.value");
    q
}

/// The run storage's id (one row, written once).
pub fn run_storage_id() -> Sql {
    Sql::new("SELECT instance_info.run_storage_id FROM instance_info")
}

pub fn insert_run_storage_id(id: &str) -> Sql {
    let mut q = Sql::new("INSERT INTO instance_info (run_storage_id) VALUES ");
    q.values(row![id]);
    q
}
