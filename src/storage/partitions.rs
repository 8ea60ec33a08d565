//! Dynamic partitions (`dynamic_partitions`, docs/assets-domain.md §9.1): stock's statements,
//! with keys and definition names bound as Python's `sqlite3` binds them (stock checks neither,
//! so an int key is stored as the text `'5'` by the column's affinity, and bytes as a blob).
//!
//! Every statement is pinned to `idx_dynamic_partitions (partitions_def_name, partition)`
//! (`INDEXED BY`: statistics a user's `ANALYZE` leaves must not turn it into a table scan). The
//! index holds the rowid too, so lookups are covering, and an id-ordered list sorts one
//! definition's rows: stock's schema has no index in id order per definition.

use std::collections::HashSet;

use pyo3::IntoPyObject;

use super::{Result, Storage};
use crate::errors::StorageError;
use crate::store::{Dialect, Sql, Value};

/// Keys per `IN` list: stock's `DYNAMIC_PARTITION_MEMBERSHIP_CHUNK_SIZE`. It also keeps every
/// statement under the bound-parameter limits of SQLite builds and PostgreSQL (65,535).
const IN_CHUNK: usize = 1000;
/// Rows per INSERT statement: enough to spend the time in SQLite rather than in stepping
/// statements, few enough that the handful of statement shapes stay in the statement cache.
const INSERT_ROWS: usize = 64;
const INSERT: &str = "INSERT INTO dynamic_partitions (partitions_def_name, partition) VALUES";
const INSERT_SELECT: &str =
    "INSERT INTO dynamic_partitions (partitions_def_name, partition) SELECT ";

/// One row of a page: its id is the page cursor's storage id.
#[derive(Debug, Clone, PartialEq, IntoPyObject)]
pub struct PartitionRow {
    pub id: i64,
    pub partition: Value,
}

/// `<head> FROM dynamic_partitions WHERE dynamic_partitions.partitions_def_name = `, pinned
/// to the definition's index.
fn where_name(head: &str) -> Sql {
    let mut q = Sql::new(head);
    q.push(" FROM dynamic_partitions")
        .pin("idx_dynamic_partitions")
        .push(" WHERE dynamic_partitions.partitions_def_name = ");
    q
}

/// The keys of a definition in insertion (id) order (stock's `get_dynamic_partitions`).
pub fn keys_of(name: &Value) -> Sql {
    let mut q = where_name("SELECT dynamic_partitions.partition");
    q.bind(name.clone()).push(" ORDER BY dynamic_partitions.id");
    q
}

/// A page of a definition's keys after (ascending) or before (descending) a storage id.
pub fn page(name: &Value, cursor: Option<i64>, ascending: bool, limit: i64) -> Sql {
    let mut q = where_name("SELECT dynamic_partitions.id, dynamic_partitions.partition");
    q.bind(name.clone());
    if let Some(id) = cursor {
        q.push(if ascending {
            " AND dynamic_partitions.id > "
        } else {
            " AND dynamic_partitions.id < "
        })
        .bind(id);
    }
    // `id + 0`: no index orders one definition's rows by id, and PostgreSQL would otherwise
    // walk the primary key in id order, filtering by definition, to fill a small page: the
    // whole table for a definition with few keys. Ordered by the expression, it reads the
    // definition's rows from `idx_dynamic_partitions` and keeps the page in a top-N sort (as
    // SQLite's pinned plan does).
    q.push(if ascending {
        " ORDER BY dynamic_partitions.id + 0 ASC"
    } else {
        " ORDER BY dynamic_partitions.id + 0 DESC"
    });
    q.limit_offset(Some(limit), Some(0));
    q
}

/// Whether a definition has a key.
pub fn key_exists(name: &Value, key: &Value) -> Sql {
    let mut q = where_name("SELECT 1");
    q.bind(name.clone())
        .push(" AND dynamic_partitions.partition = ")
        .bind(key.clone())
        .push(" LIMIT 1");
    q
}

/// Whether a definition has any key: a new definition needs no membership test of its keys.
pub fn any_key(name: &Value) -> Sql {
    let mut q = where_name("SELECT 1");
    q.bind(name.clone()).push(" LIMIT 1");
    q
}

/// The stored keys among `keys` (a non-empty chunk).
pub fn stored_among(name: &Value, keys: &[Value]) -> Sql {
    let mut q = where_name("SELECT dynamic_partitions.partition");
    q.bind(name.clone())
        .push(" AND dynamic_partitions.partition IN ")
        .values(keys.iter().cloned());
    q
}

/// One row per key, in the given order (ids follow it, as stock's executemany gives them).
pub fn insert_rows(name: &Value, keys: &[&Value]) -> Sql {
    let mut q = Sql::new(INSERT);
    for (i, key) in keys.iter().enumerate() {
        q.push(if i == 0 { " " } else { ", " })
            .values([name.clone(), (*key).clone()]);
    }
    q
}

/// The keys of `keys` (a text table, `Sql::text_table`), in its order, for a definition that
/// has none yet: one statement for any number of keys.
pub fn insert_texts(name: &Value, keys: &Sql) -> Sql {
    let mut q = Sql::new(INSERT_SELECT);
    q.bind(name.clone())
        .push(", new_keys.value FROM ")
        .append(keys)
        .push(" AS new_keys");
    q
}

/// The keys of `keys` not stored for the definition, in their order. The SELECT reads the
/// table the rows go to, so SQLite runs it to the end before the first insert: a key given
/// twice that was not stored is inserted twice and fails on the unique index, as in stock.
pub fn insert_new_texts(name: &Value, keys: &Sql) -> Sql {
    let mut q = insert_texts(name, keys);
    q.push(" WHERE NOT EXISTS (")
        .append(&where_name("SELECT 1"))
        .bind(name.clone())
        .push(" AND dynamic_partitions.partition = new_keys.value)");
    q
}

/// Stock dagster-postgres's add: every key inserted in the given order, those stored (or given
/// twice) skipped by the unique index (`ON CONFLICT DO NOTHING`), no error.
pub fn upsert_texts(name: &Value, keys: &Sql) -> Sql {
    let mut q = insert_texts(name, keys);
    q.push(" ON CONFLICT DO NOTHING");
    q
}

/// [`insert_rows`] skipping stored keys (stock dagster-postgres's statement).
pub fn upsert_rows(name: &Value, keys: &[&Value]) -> Sql {
    let mut q = insert_rows(name, keys);
    q.push(" ON CONFLICT DO NOTHING");
    q
}

pub fn delete_key(name: &Value, key: &Value) -> Sql {
    let mut q = where_name("DELETE");
    q.bind(name.clone())
        .push(" AND dynamic_partitions.partition = ")
        .bind(key.clone());
    q
}

/// A key as Python compares it with the values stock read back: the column's TEXT affinity
/// stores every number as text, so only a str (or bytes) key can equal a stored one; an int key
/// whose text is stored is "new" to stock, and its insert fails on the unique index.
fn comparable(value: &Value) -> Option<(bool, &[u8])> {
    match value {
        Value::Text(s) => Some((false, s.as_bytes())),
        Value::Blob(b) => Some((true, b.as_slice())),
        _ => None,
    }
}

impl Storage {
    /// `result`, or stock's "requires the dynamic partitions table" when the table is missing.
    fn partitions_op<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(StorageError::Store(_) | StorageError::Integrity { .. })
                if self.table_missing("dynamic_partitions") =>
            {
                Err(StorageError::NoPartitionsTable)
            }
            other => other,
        }
    }

    pub fn partitions(&self, name: &Value) -> Result<Vec<Value>> {
        let q = keys_of(name);
        self.partitions_op(self.read(|c| Ok(c.query(&q, |r| r.any(0))?)))
    }

    /// Up to `limit` rows from the cursor (stock asks for one past its page size).
    pub fn partition_page(
        &self,
        name: &Value,
        cursor: Option<i64>,
        ascending: bool,
        limit: i64,
    ) -> Result<Vec<PartitionRow>> {
        let q = page(name, cursor, ascending, limit);
        self.partitions_op(self.read(|c| {
            Ok(c.query(&q, |r| {
                Ok(PartitionRow {
                    id: r.int(0)?,
                    partition: r.any(1)?,
                })
            })?)
        }))
    }

    pub fn has_partition(&self, name: &Value, key: &Value) -> Result<bool> {
        let q = key_exists(name, key);
        self.partitions_op(self.read(|c| Ok(c.query_opt(&q, |_| Ok(()))?.is_some())))
    }

    /// The stored keys among `keys`, as stored (one read, `IN` lists of 1,000).
    pub fn existing_partitions(&self, name: &Value, keys: &[Value]) -> Result<Vec<Value>> {
        self.partitions_op(self.read(|c| {
            let mut out = Vec::new();
            for chunk in keys.chunks(IN_CHUNK) {
                out.extend(c.query(&stored_among(name, chunk), |r| r.any(0))?);
            }
            Ok(out)
        }))
    }

    /// Add the keys not stored yet, in order, in one transaction; the number added.
    ///
    /// Stock's semantics: a key given twice that is not stored yet fails the whole call with
    /// IntegrityError (stock inserts every occurrence). Unlike stock, the membership test runs
    /// inside the write transaction, so two processes adding one new key no longer race into
    /// that error (docs §9.1.4): the second finds it stored.
    pub fn add_partitions(&self, name: &Value, keys: &[Value]) -> Result<usize> {
        // Keys are text but where a caller passed something else; text keys go to SQLite as
        // one bound array, whatever their number.
        let texts: Option<Vec<&str>> = keys
            .iter()
            .map(|key| match key {
                Value::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let table = texts.as_deref().and_then(Sql::text_table);
        self.partitions_op(self.write(|c| {
            if keys.is_empty() {
                return Ok(0);
            }
            if c.dialect() == Dialect::Postgres {
                // Stock dagster-postgres's semantics: one upsert, nothing raised for a key
                // stored or given twice. Serialized with every dagster-rs writer, and the
                // unique index settles a race with stock's writers as it does for them.
                if let Some(table) = &table {
                    return Ok(c.execute(&upsert_texts(name, table))?);
                }
                let all: Vec<&Value> = keys.iter().collect();
                let mut added = 0;
                for rows in all.chunks(INSERT_ROWS) {
                    added += c.execute(&upsert_rows(name, rows))?;
                }
                return Ok(added);
            }
            let fresh = c.query_opt(&any_key(name), |_| Ok(()))?.is_none();
            if let Some(table) = &table {
                let q = if fresh {
                    insert_texts(name, table)
                } else {
                    insert_new_texts(name, table)
                };
                return c
                    .execute(&q)
                    .map_err(|e| StorageError::constraint(e, INSERT));
            }
            let mut stored: Vec<Value> = Vec::new();
            if !fresh {
                for chunk in keys.chunks(IN_CHUNK) {
                    stored.extend(c.query(&stored_among(name, chunk), |r| r.any(0))?);
                }
            }
            let stored: HashSet<(bool, &[u8])> = stored.iter().filter_map(comparable).collect();
            let new: Vec<&Value> = keys
                .iter()
                .filter(|key| comparable(key).is_none_or(|k| !stored.contains(&k)))
                .collect();
            for rows in new.chunks(INSERT_ROWS) {
                c.execute(&insert_rows(name, rows))
                    .map_err(|e| StorageError::constraint(e, INSERT))?;
            }
            Ok(new.len())
        }))
    }

    /// Delete one key; a missing key is no error.
    pub fn delete_partition(&self, name: &Value, key: &Value) -> Result<()> {
        let q = delete_key(name, key);
        self.partitions_op(self.write(|c| Ok(c.execute(&q).map(|_| ())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;
    use std::sync::Arc;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let shards = Arc::new(crate::store::Shards::new(dir.path(), Durability::Off));
        (dir, Storage::on(shards))
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn adds_in_order_skipping_stored_keys() {
        let (_dir, st) = storage();
        let name = text("fruits");
        assert_eq!(
            st.add_partitions(&name, &[text("a"), text("b")]).unwrap(),
            2
        );
        assert_eq!(
            st.add_partitions(&name, &[text("b"), text("c"), text("b")])
                .unwrap(),
            1
        );
        assert_eq!(
            st.partitions(&name).unwrap(),
            vec![text("a"), text("b"), text("c")]
        );
        let page = st.partition_page(&name, Some(1), true, 5).unwrap();
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![2, 3],
            "ids are rowids in insertion order"
        );
    }

    #[test]
    fn a_new_key_twice_stores_nothing() {
        let (_dir, st) = storage();
        let name = text("fruits");
        let err = st
            .add_partitions(&name, &[text("x"), text("y"), text("x")])
            .unwrap_err();
        assert!(matches!(err, StorageError::Integrity { .. }), "{err}");
        assert!(st.partitions(&name).unwrap().is_empty());
    }

    #[test]
    fn a_new_key_twice_fails_for_a_definition_with_keys_too() {
        let (_dir, st) = storage();
        let name = text("fruits");
        st.add_partitions(&name, &[text("a")]).unwrap();
        // a stored key given twice is skipped twice; a new one given twice fails the call
        assert_eq!(
            st.add_partitions(&name, &[text("a"), text("a"), text("b")])
                .unwrap(),
            1
        );
        let err = st
            .add_partitions(&name, &[text("c"), text("a"), text("c")])
            .unwrap_err();
        assert!(matches!(err, StorageError::Integrity { .. }), "{err}");
        assert_eq!(st.partitions(&name).unwrap(), vec![text("a"), text("b")]);
    }

    #[test]
    fn keys_of_every_kind_keep_their_order() {
        let (_dir, st) = storage();
        let name = text("mixed");
        let keys = vec![
            text("z"),
            Value::Int(7),
            text("nul\0inside"),
            Value::Blob(b"raw".to_vec()),
            text("a"),
        ];
        assert_eq!(st.add_partitions(&name, &keys).unwrap(), 5);
        assert_eq!(
            st.partitions(&name).unwrap(),
            vec![
                text("z"),
                text("7"),
                text("nul\0inside"),
                Value::Blob(b"raw".to_vec()),
                text("a")
            ]
        );
        let more: Vec<Value> = (0..3000).rev().map(|i| text(&format!("k{i}"))).collect();
        st.add_partitions(&name, &more[..10]).unwrap();
        st.add_partitions(&name, &more).unwrap();
        assert_eq!(st.partitions(&name).unwrap()[5..], more[..]);
    }

    #[test]
    fn an_int_key_is_stored_as_text_and_is_new_to_its_text() {
        let (_dir, st) = storage();
        let name = text("numbers");
        st.add_partitions(&name, &[Value::Int(5)]).unwrap();
        assert_eq!(st.partitions(&name).unwrap(), vec![text("5")]);
        assert!(st.has_partition(&name, &Value::Int(5)).unwrap());
        // as stock: `5 not in {'5'}`, so the insert runs and meets the unique index
        assert!(st.add_partitions(&name, &[Value::Int(5)]).is_err());
        assert_eq!(st.add_partitions(&name, &[text("5")]).unwrap(), 0);
    }

    #[test]
    fn large_adds_cross_chunks() {
        let (_dir, st) = storage();
        let name = text("many");
        let keys: Vec<Value> = (0..2500).map(|i| text(&format!("k{i:05}"))).collect();
        assert_eq!(st.add_partitions(&name, &keys[..1200]).unwrap(), 1200);
        assert_eq!(st.add_partitions(&name, &keys).unwrap(), 1300);
        assert_eq!(st.partitions(&name).unwrap(), keys);
        assert_eq!(st.existing_partitions(&name, &keys).unwrap().len(), 2500);
        st.delete_partition(&name, &keys[0]).unwrap();
        assert!(!st.has_partition(&name, &keys[0]).unwrap());
    }
}
