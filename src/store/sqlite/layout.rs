//! Which indexes a database file really has, and the pinned statements made to fit them.
//!
//! The domains pin their plans (`INDEXED BY <name>`), naming the indexes of the files stock
//! 1.13.27 creates: the *canonical* layout of each schema. Real files differ. Dagster's
//! migrations leave other layouts behind (047, `add_run_tags_run_id_idx`, replaces
//! `idx_run_tags (key, value)` with a unique `idx_run_tags_run_id (key, value, run_id)`; tables
//! created by a migration name their indexes as that migration did), and another process may
//! change the layout while a store is open (`dagster instance migrate`, its downgrade). SQLite
//! refuses a statement that pins an index the file does not have ("no such index"), so:
//!
//! - Each store learns its file's indexes (name, table, key columns, unique) the first time a
//!   statement needs them ([`LayoutSlot::get`]), and again whenever SQLite reports that the
//!   schema changed: a statement SQLite had to re-prepare (it does so, by itself, when the schema
//!   cookie moved under a prepared statement) marks the layout stale, and the next use compares
//!   `PRAGMA schema_version` and reloads when it moved. No extra statement on the fast path.
//! - Every statement's text passes [`IndexLayout::apply`] before it is prepared: a canonical
//!   index the file lacks is replaced by the file's index on the same table and columns, or the
//!   pin is dropped (the statement then runs unpinned, planned by SQLite as stock's is). On a
//!   file with the canonical layout the text is used as it is, without being read.
//! - A statement that still fails with "no such index" (a layout changed by another process
//!   since it was loaded) reloads the layout and runs once more, rewritten against the new one:
//!   the error arises when the statement is compiled, before it reads or writes a row, so
//!   running it again is safe inside a transaction too.
//!
//! The runs planner goes further and chooses its strategies from the file's indexes
//! (`runs::plan::RunIndexes`): 047's covering index makes the tag drivers and counts
//! index-only.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;

use super::schema::Schema;

/// One index of a file: its key columns in order (lower case, as SQLite compares names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// Whether any statement may pin it: not partial, every key column a plain column compared
    /// in BINARY collation (what `=` and `<` on Dagster's columns use).
    pub plain: bool,
}

impl Index {
    /// Whether this index starts with `columns` and may be pinned.
    pub fn leads_with(&self, table: &str, columns: &[&str]) -> bool {
        self.plain
            && self.table.eq_ignore_ascii_case(table)
            && self.columns.len() >= columns.len()
            && self
                .columns
                .iter()
                .zip(columns)
                .all(|(have, want)| have.eq_ignore_ascii_case(want))
    }

    /// Whether this index is on exactly `columns` (equal keys then follow in rowid order, and a
    /// trailing `id`, the rowid's alias, changes nothing of that).
    pub fn is_exactly(&self, table: &str, columns: &[&str]) -> bool {
        self.leads_with(table, columns)
            && (self.columns.len() == columns.len()
                || (self.columns.len() == columns.len() + 1 && self.columns[columns.len()] == "id"))
    }
}

/// What a pinned index name becomes on a file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pin<'a> {
    Keep,
    Rename(&'a str),
    Drop,
}

/// The indexes of one file at one schema version.
#[derive(Default)]
pub struct IndexLayout {
    indexes: Vec<Index>,
    schema_version: i64,
    /// Canonical indexes this file has under another name (`Some`) or not at all (`None`).
    renames: HashMap<String, Option<String>>,
    /// Every index name of the file, sorted (for the strict pass).
    names: Vec<String>,
    /// What a domain derives from the layout (its planner's indexes), once per layout.
    derived: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for IndexLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexLayout")
            .field("indexes", &self.indexes)
            .field("schema_version", &self.schema_version)
            .field("renames", &self.renames)
            .finish()
    }
}

const INDEXES: &str = "SELECT m.name, il.name, il.\"unique\", il.partial, ix.name, ix.coll \
     FROM sqlite_master AS m, pragma_index_list(m.name) AS il, \
     pragma_index_xinfo(il.name) AS ix \
     WHERE m.type = 'table' AND ix.\"key\" = 1 ORDER BY il.name, ix.seqno";

/// The text that introduces a pin in the statements (`FROM t INDEXED BY name`).
const PIN: &str = " INDEXED BY ";

impl IndexLayout {
    /// Read the file's indexes, and how each canonical pin maps onto them.
    pub fn load(conn: &Connection, canonical: Option<&IndexLayout>) -> rusqlite::Result<Self> {
        let schema_version = schema_version(conn)?;
        let mut indexes: Vec<Index> = Vec::new();
        let mut stmt = conn.prepare_cached(INDEXES)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let table: String = row.get(0)?;
            let name: String = row.get(1)?;
            let unique: bool = row.get(2)?;
            let partial: bool = row.get(3)?;
            let column: Option<String> = row.get(4)?;
            let collation: Option<String> = row.get(5)?;
            let plain_column = column.is_some()
                && collation
                    .as_deref()
                    .is_none_or(|c| c.eq_ignore_ascii_case("BINARY"));
            match indexes.last_mut() {
                Some(last) if last.name == name => {
                    last.plain &= plain_column;
                    last.columns
                        .push(column.unwrap_or_default().to_ascii_lowercase());
                }
                _ => indexes.push(Index {
                    name,
                    table: table.to_ascii_lowercase(),
                    columns: vec![column.unwrap_or_default().to_ascii_lowercase()],
                    unique,
                    plain: plain_column && !partial,
                }),
            }
        }
        let mut layout = IndexLayout {
            indexes,
            schema_version,
            ..IndexLayout::default()
        };
        if let Some(canonical) = canonical {
            layout.renames = canonical
                .indexes
                .iter()
                .filter(|c| !layout.has_same(c))
                .map(|c| {
                    (
                        c.name.clone(),
                        layout.same_columns(c).map(|i| i.name.clone()),
                    )
                })
                .collect();
        }
        layout.names = layout.indexes.iter().map(|i| i.name.clone()).collect();
        layout.names.sort_unstable();
        Ok(layout)
    }

    /// A layout of indexes read elsewhere (a PostgreSQL database's pg_catalog): no pins to
    /// fit there, so no renames; the roles the domains derive are all it is for.
    pub fn of_indexes(indexes: Vec<Index>) -> Self {
        let mut names: Vec<String> = indexes.iter().map(|i| i.name.clone()).collect();
        names.sort_unstable();
        IndexLayout {
            indexes,
            names,
            ..IndexLayout::default()
        }
    }

    /// Stock 1.13.27's layout of a schema: its DDL run in memory.
    fn of_ddl(ddl: &[&str]) -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        for statement in ddl {
            conn.execute_batch(statement)?;
        }
        IndexLayout::load(&conn, None)
    }

    /// `build(self)`, computed once per layout (a domain's view of its file's indexes).
    pub fn derived<T: Any + Send + Sync>(&self, build: impl Fn(&IndexLayout) -> T) -> Arc<T> {
        let stored = self
            .derived
            .get_or_init(|| Arc::new(build(self)) as Arc<dyn Any + Send + Sync>);
        stored
            .clone()
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(build(self)))
    }

    pub fn indexes(&self) -> &[Index] {
        &self.indexes
    }

    pub fn schema_version(&self) -> i64 {
        self.schema_version
    }

    pub fn get(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Whether the file answers every canonical pin as the canonical layout does.
    pub fn is_canonical(&self) -> bool {
        self.renames.is_empty()
    }

    /// The canonical indexes this file lacks (under their canonical definition), by name.
    pub fn missing(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.renames.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The pinnable indexes of `table` that start with `columns`, fewest columns first.
    pub fn leading<'s>(&'s self, table: &str, columns: &[&str]) -> Vec<&'s Index> {
        let mut found: Vec<&Index> = self
            .indexes
            .iter()
            .filter(|i| i.leads_with(table, columns))
            .collect();
        found.sort_by_key(|i| (i.columns.len(), i.name.as_str()));
        found
    }

    /// A pinnable index of `table` on exactly `columns` (see [`Index::is_exactly`]).
    pub fn exactly(&self, table: &str, columns: &[&str]) -> Option<&Index> {
        self.leading(table, columns)
            .into_iter()
            .find(|i| i.is_exactly(table, columns))
    }

    fn has_same(&self, canonical: &Index) -> bool {
        self.get(&canonical.name).is_some_and(|i| {
            i.plain && i.table == canonical.table && i.columns == canonical.columns
        })
    }

    fn same_columns(&self, canonical: &Index) -> Option<&Index> {
        self.indexes
            .iter()
            .filter(|i| i.plain && i.table == canonical.table && i.columns == canonical.columns)
            .min_by_key(|i| (i.unique != canonical.unique, i.name.as_str()))
    }

    fn pin(&self, name: &str) -> Pin<'_> {
        match self.renames.get(name) {
            Some(Some(other)) => Pin::Rename(other),
            Some(None) => Pin::Drop,
            None if self
                .names
                .binary_search_by(|n| n.as_str().cmp(name))
                .is_ok() =>
            {
                Pin::Keep
            }
            // Not an index of this file (a statement planned against an older layout).
            None => Pin::Drop,
        }
    }

    /// Whether a pin of `name` needs rewriting: a canonical index this file has under another
    /// name or not at all, or (`strict`) any index this file lacks.
    fn rewrites(&self, name: &str, strict: bool) -> bool {
        if strict {
            self.pin(name) != Pin::Keep
        } else {
            // A handful of entries at most: a scan beats hashing the name.
            self.renames.keys().any(|k| k == name)
        }
    }

    /// `text` with each pin made to fit this file: kept, renamed to the file's index on the
    /// same columns, or dropped. Unless `strict`, only the canonical indexes this file lacks
    /// are looked for (a statement planned from this layout pins nothing else it lacks), and
    /// on a canonical file the text is not even read; `strict` checks every pinned name.
    pub fn apply<'t>(&self, text: &'t str, strict: bool) -> Cow<'t, str> {
        if (!strict && self.renames.is_empty())
            || !text
                .match_indices(PIN)
                .any(|(at, _)| self.rewrites(pinned_name(text, at), strict))
        {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut rest = text;
        let mut changed = false;
        while let Some(at) = rest.find(PIN) {
            let start = at + PIN.len();
            let name = pinned_name(rest, at);
            let len = name.len();
            match self.pin(name) {
                Pin::Keep => out.push_str(&rest[..start + len]),
                Pin::Rename(other) => {
                    out.push_str(&rest[..start]);
                    out.push_str(other);
                    changed = true;
                }
                Pin::Drop => {
                    out.push_str(&rest[..at]);
                    changed = true;
                }
            }
            rest = &rest[start + len..];
        }
        if !changed {
            return Cow::Borrowed(text);
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

/// The index name of the pin at `at` (the start of `PIN`) in `text`.
fn pinned_name(text: &str, at: usize) -> &str {
    let start = at + PIN.len();
    let len = text[start..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    &text[start..start + len]
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA schema_version")?
        .query_row([], |r| r.get(0))
}

/// Stock 1.13.27's layout of `schema`, built once per process.
fn canonical(schema: &Schema) -> Option<&'static IndexLayout> {
    static BUILT: OnceLock<Mutex<Vec<(usize, &'static IndexLayout)>>> = OnceLock::new();
    let key = schema.ddl.as_ptr() as usize;
    let mut built = BUILT.get_or_init(Mutex::default).lock();
    if let Some((_, layout)) = built.iter().find(|(k, _)| *k == key) {
        return Some(layout);
    }
    // Stock's own DDL always builds; should it not, no pin is mapped and the file's own
    // indexes still decide (`Pin::Drop` for any name the file lacks).
    let layout: &'static IndexLayout = Box::leak(Box::new(IndexLayout::of_ddl(schema.ddl).ok()?));
    built.push((key, layout));
    Some(layout)
}

/// Whether an error is SQLite's refusal of a statement that pins an index the file lacks.
pub fn is_missing_index(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.starts_with("no such index:"),
        _ => false,
    }
}

/// A file's layout as its store knows it: loaded when first needed, reloaded when SQLite says
/// the schema changed, forgotten on `dispose` and `reload`.
#[derive(Debug)]
pub struct LayoutSlot {
    canonical: Option<&'static IndexLayout>,
    current: RwLock<Option<Arc<IndexLayout>>>,
    stale: AtomicBool,
    /// `current` is known and canonical: the one check on the fast path.
    is_canonical: AtomicBool,
}

impl LayoutSlot {
    pub fn new(schema: &Schema) -> Self {
        LayoutSlot {
            canonical: canonical(schema),
            current: RwLock::new(None),
            stale: AtomicBool::new(false),
            is_canonical: AtomicBool::new(false),
        }
    }

    /// The layout, known to be canonical and current: statements need no rewriting.
    pub fn canonical_now(&self) -> bool {
        self.is_canonical.load(Ordering::Acquire) && !self.stale.load(Ordering::Acquire)
    }

    /// The file's layout, read through `conn` when not known or possibly stale.
    pub fn get(&self, conn: &Connection) -> rusqlite::Result<Arc<IndexLayout>> {
        if !self.stale.load(Ordering::Acquire) {
            if let Some(layout) = self.current.read().as_ref() {
                return Ok(layout.clone());
            }
        }
        self.refresh(conn, false)
    }

    /// Read the layout again (`force`), or when the schema version moved since it was read.
    pub fn refresh(&self, conn: &Connection, force: bool) -> rusqlite::Result<Arc<IndexLayout>> {
        let known = self.current.read().clone();
        self.stale.store(false, Ordering::Release);
        if let (Some(layout), false) = (&known, force) {
            if schema_version(conn)? == layout.schema_version {
                return Ok(layout.clone());
            }
        }
        let layout = Arc::new(IndexLayout::load(conn, self.canonical)?);
        let mut current = self.current.write();
        self.is_canonical
            .store(layout.is_canonical(), Ordering::Release);
        *current = Some(layout.clone());
        Ok(layout)
    }

    /// `text` fitted to the file's layout (`IndexLayout::apply`), the layout read through
    /// `conn` when not known or possibly stale.
    pub fn fit<'t>(
        &self,
        conn: &Connection,
        text: &'t str,
        strict: bool,
    ) -> rusqlite::Result<Cow<'t, str>> {
        if !self.stale.load(Ordering::Acquire) {
            match self.current.read().as_ref() {
                Some(layout) => return Ok(layout.apply(text, strict)),
                // Files whose statements pin nothing (run shards) never read their layout.
                None if !text.contains(PIN) => return Ok(Cow::Borrowed(text)),
                None => {}
            }
        }
        Ok(self.refresh(conn, false)?.apply(text, strict))
    }

    /// SQLite re-prepared a statement: the schema changed since it was compiled.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Forget the layout; the next statement that needs it reads it again.
    pub fn forget(&self) {
        let mut current = self.current.write();
        self.is_canonical.store(false, Ordering::Release);
        *current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{EVENT_INDEX_SCHEMA, RUNS_SCHEMA, SCHEDULES_SCHEMA};

    fn runs_file() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for ddl in RUNS_SCHEMA.ddl {
            conn.execute_batch(ddl).unwrap();
        }
        conn
    }

    const MIGRATION_047: &str = "CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (\"key\", \
         value, run_id); DROP INDEX idx_run_tags;";

    #[test]
    fn stock_files_are_canonical_and_keep_their_text() {
        for schema in [&RUNS_SCHEMA, &EVENT_INDEX_SCHEMA, &SCHEDULES_SCHEMA] {
            let layout = canonical(schema).unwrap();
            assert!(!layout.indexes().is_empty(), "{}", schema.name);
        }
        let layout = IndexLayout::load(&runs_file(), canonical(&RUNS_SCHEMA)).unwrap();
        assert!(layout.is_canonical());
        let text = "SELECT 1 FROM run_tags INDEXED BY idx_run_tags WHERE x";
        assert!(matches!(layout.apply(text, false), Cow::Borrowed(_)));
        assert!(matches!(layout.apply(text, true), Cow::Borrowed(_)));
        let tags = layout.get("idx_run_tags").unwrap();
        assert_eq!(tags.columns, ["key", "value"]);
        assert!(!tags.unique);
        let runs = layout.get("sqlite_autoindex_runs_1").unwrap();
        assert_eq!((runs.table.as_str(), runs.unique), ("runs", true));
        assert_eq!(runs.columns, ["run_id"]);
        assert!(layout
            .exactly("runs", &["pipeline_name"])
            .is_some_and(|i| i.name == "idx_runs_by_job"));
        assert!(layout
            .exactly("runs", &["status"])
            .is_some_and(|i| i.name == "idx_run_status"));
    }

    #[test]
    fn after_047_the_old_tag_index_is_unpinned_and_the_new_one_known() {
        let conn = runs_file();
        conn.execute_batch(MIGRATION_047).unwrap();
        let layout = IndexLayout::load(&conn, canonical(&RUNS_SCHEMA)).unwrap();
        assert_eq!(layout.missing(), ["idx_run_tags"]);
        let covering = layout.leading("run_tags", &["key", "value"]);
        assert_eq!(covering.len(), 1);
        assert_eq!(covering[0].columns, ["key", "value", "run_id"]);
        assert!(covering[0].unique);
        let text =
            "SELECT 1 FROM run_tags AS t INDEXED BY idx_run_tags CROSS JOIN runs INDEXED BY \
                    sqlite_autoindex_runs_1 ON runs.run_id = t.run_id";
        let applied = layout.apply(text, false);
        assert_eq!(
            applied,
            "SELECT 1 FROM run_tags AS t CROSS JOIN runs INDEXED BY sqlite_autoindex_runs_1 ON \
             runs.run_id = t.run_id"
        );
        conn.execute(&applied, []).unwrap();
    }

    #[test]
    fn a_canonical_index_under_another_name_is_renamed() {
        let conn = runs_file();
        conn.execute_batch(
            "DROP INDEX idx_bulk_actions; CREATE UNIQUE INDEX idx_bulk_actions_key ON \
             bulk_actions (\"key\");",
        )
        .unwrap();
        let layout = IndexLayout::load(&conn, canonical(&RUNS_SCHEMA)).unwrap();
        let text = "SELECT body FROM bulk_actions INDEXED BY idx_bulk_actions WHERE \"key\" = 'b'";
        assert_eq!(
            layout.apply(text, false),
            "SELECT body FROM bulk_actions INDEXED BY idx_bulk_actions_key WHERE \"key\" = 'b'"
        );
    }

    #[test]
    fn pins_of_indexes_the_file_lacks_are_dropped_when_strict() {
        let layout = IndexLayout::load(&runs_file(), canonical(&RUNS_SCHEMA)).unwrap();
        let text = "SELECT 1 FROM run_tags INDEXED BY idx_run_tags_run_id WHERE 1";
        assert!(matches!(layout.apply(text, false), Cow::Borrowed(_)));
        assert_eq!(layout.apply(text, true), "SELECT 1 FROM run_tags WHERE 1");
    }

    #[test]
    fn partial_and_collated_indexes_are_never_pinned() {
        let conn = runs_file();
        conn.execute_batch(
            "CREATE INDEX p ON runs (status) WHERE status = 'QUEUED'; \
             CREATE INDEX c ON runs (pipeline_name COLLATE NOCASE); \
             CREATE INDEX e ON runs (lower(pipeline_name));",
        )
        .unwrap();
        let layout = IndexLayout::load(&conn, canonical(&RUNS_SCHEMA)).unwrap();
        for name in ["p", "c", "e"] {
            assert!(!layout.get(name).unwrap().plain, "{name}");
        }
        assert!(layout
            .leading("runs", &["status"])
            .iter()
            .all(|i| i.name != "p"));
    }

    /// A store on a file whose layout another connection changes under it, with statements
    /// cached against the old one.
    mod live {
        use super::*;
        use crate::store::{Db, Durability, Sql};

        fn pinned_count(db: &Db) -> i64 {
            let q = Sql::new(
                "SELECT count(*) FROM run_tags AS t INDEXED BY idx_run_tags CROSS JOIN runs \
                 INDEXED BY sqlite_autoindex_runs_1 ON runs.run_id = t.run_id WHERE \
                 t.\"key\" = 'k' AND t.value = 'v'",
            );
            db.read(|c| c.query_opt(&q, |r| r.int(0))).unwrap().unwrap()
        }

        fn covering_count(db: &Db) -> i64 {
            let q = Sql::new(
                "SELECT count(*) FROM run_tags AS t INDEXED BY idx_run_tags_run_id WHERE \
                 t.\"key\" = 'k' AND t.value = 'v'",
            );
            db.write(|c| c.query_opt(&q, |r| r.int(0)))
                .unwrap()
                .unwrap()
        }

        #[test]
        fn statements_survive_047_and_its_downgrade_by_another_connection() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("runs.db");
            let db = Db::open(path.to_str().unwrap(), Durability::Off, &RUNS_SCHEMA).unwrap();
            db.write(|c| {
                c.execute(&Sql::new("INSERT INTO runs (run_id) VALUES ('a'), ('b')"))?;
                c.execute(&Sql::new(
                    "INSERT INTO run_tags (run_id, \"key\", value) VALUES ('a', 'k', 'v'), \
                     ('b', 'k', 'v'), ('gone', 'k', 'v')",
                ))
            })
            .unwrap();
            assert_eq!(pinned_count(&db), 2);
            assert!(db.index_layout().unwrap().is_canonical());
            let other = Connection::open(&path).unwrap();
            other.execute_batch(MIGRATION_047).unwrap();
            // Cached against idx_run_tags: SQLite refuses it, the store reloads and runs it
            // unpinned; the write transaction's statement likewise.
            assert_eq!(pinned_count(&db), 2);
            assert_eq!(covering_count(&db), 3);
            let layout = db.index_layout().unwrap();
            assert_eq!(layout.missing(), ["idx_run_tags"]);
            assert!(layout.get("idx_run_tags_run_id").is_some());
            other
                .execute_batch(
                    "CREATE INDEX idx_run_tags ON run_tags (\"key\", value); \
                     DROP INDEX idx_run_tags_run_id;",
                )
                .unwrap();
            assert_eq!(covering_count(&db), 3);
            assert_eq!(pinned_count(&db), 2);
            assert!(db.index_layout().unwrap().is_canonical());
        }

        #[test]
        fn an_index_added_by_another_connection_is_noticed_without_a_failure() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("runs.db");
            let db = Db::open(path.to_str().unwrap(), Durability::Off, &RUNS_SCHEMA).unwrap();
            assert_eq!(pinned_count(&db), 0);
            let before = db.index_layout().unwrap();
            assert!(before.get("extra").is_none());
            Connection::open(&path)
                .unwrap()
                .execute_batch("CREATE INDEX extra ON runs (mode)")
                .unwrap();
            // The cached statement is re-prepared by SQLite: the store marks its layout stale
            // and reads it again on the next use.
            assert_eq!(pinned_count(&db), 0);
            let after = db.index_layout().unwrap();
            assert!(after.get("extra").is_some());
            assert!(after.schema_version() > before.schema_version());
            // Forgotten layouts are read again too.
            db.reload_layout();
            assert!(db.index_layout().unwrap().get("extra").is_some());
        }
    }

    /// Every index layout a file has in the homes of Dagster's history (the old-home fixtures'
    /// layout report), on stock's tables: every statement of every domain, fitted to it, pins
    /// only indexes it has and compiles.
    mod every_layout {
        use super::*;
        use crate::runs::plan::{self, IdQuery, RunIndexes};
        use crate::runs::query::{self as runs_query, BackfillFilter, RunsFilter, TagValue};
        use crate::store::schema::EVENT_SHARD_SCHEMA;
        use crate::store::Sql;

        /// `(what, schema, DDL that turns stock's fresh file into it)`.
        pub(super) const LAYOUTS: &[(&str, &Schema, &str)] = &[
            ("runs.db fresh", &RUNS_SCHEMA, ""),
            ("runs.db migrated (047)", &RUNS_SCHEMA, MIGRATION_047),
            (
                "runs.db before 1.8 (no idx_run_tags_run_idx)",
                &RUNS_SCHEMA,
                "DROP INDEX idx_run_tags_run_idx;",
            ),
            (
                "runs.db before 1.1.18 (no job nor backfill index either)",
                &RUNS_SCHEMA,
                "DROP INDEX idx_run_tags_run_idx; DROP INDEX idx_runs_by_job; \
                 DROP INDEX idx_runs_by_backfill_id;",
            ),
            (
                "runs.db of 0.13/0.14 (bulk_actions: key and status only)",
                &RUNS_SCHEMA,
                "DROP INDEX idx_bulk_actions_action_type; DROP INDEX idx_bulk_actions_selector_id;",
            ),
            ("index.db fresh", &EVENT_INDEX_SCHEMA, ""),
            (
                "index.db before 1.0.15 (032's indexes not yet rebuilt)",
                &EVENT_INDEX_SCHEMA,
                "DROP INDEX idx_events_by_asset; DROP INDEX idx_events_by_asset_partition; \
                 DROP INDEX idx_events_by_run_id; \
                 CREATE INDEX idx_asset_key ON event_logs (asset_key); \
                 CREATE INDEX idx_asset_partition ON event_logs (asset_key, partition); \
                 CREATE INDEX idx_run_id ON event_logs (run_id);",
            ),
            ("schedules.db fresh", &SCHEDULES_SCHEMA, ""),
            (
                "schedules.db of 0.13 (no idx_tick_selector_timestamp)",
                &SCHEDULES_SCHEMA,
                "DROP INDEX idx_tick_selector_timestamp;",
            ),
        ];

        fn runs_statements(ix: &RunIndexes) -> Vec<(String, Sql)> {
            let one = |k: &str, v: &str| (k.to_owned(), TagValue::One(v.to_owned()));
            let filters = [
                RunsFilter::default(),
                RunsFilter {
                    tags: Some(vec![one("a", "1"), one("b", "2")]),
                    statuses: Some(vec!["SUCCESS".into()]),
                    job_name: Some("j".into()),
                    ..Default::default()
                },
                RunsFilter {
                    tags: Some(vec![(
                        "a".into(),
                        TagValue::Many(vec!["1".into(), "2".into()]),
                    )]),
                    ..Default::default()
                },
                RunsFilter {
                    statuses: Some(vec!["QUEUED".into()]),
                    updated_after: Some("t".into()),
                    ..Default::default()
                },
                RunsFilter {
                    created_before: Some("t".into()),
                    exclude_subruns: true,
                    ..Default::default()
                },
                RunsFilter {
                    snapshot_id: Some("s".into()),
                    run_ids: Some(vec!["r".into()]),
                    ..Default::default()
                },
                RunsFilter {
                    exclude_subruns: true,
                    ..Default::default()
                },
            ];
            let mut out = Vec::new();
            for filter in &filters {
                for backfill_id_indexed in [true, false] {
                    for ascending in [false, true] {
                        let q = IdQuery {
                            filter,
                            cursor_id: Some(7),
                            ascending,
                            backfill_id_indexed,
                            ix,
                        };
                        out.extend(plan::every_statement(&q, Some(25)));
                        out.push(("count".into(), plan::count_without_driver(&q)));
                    }
                }
            }
            out.push(("run group".into(), runs_query::run_group_select("r", ix)));
            out.push(("tag keys".into(), runs_query::tag_keys_select(ix)));
            out.push((
                "tag values".into(),
                runs_query::tag_values_select("k", "s", Some("s_"), Some(3), ix),
            ));
            let backfills = [
                BackfillFilter {
                    backfill_ids: Some(vec!["b".into()]),
                    ..Default::default()
                },
                BackfillFilter {
                    selector_id: Some("s".into()),
                    ..Default::default()
                },
                BackfillFilter {
                    statuses: Some(vec!["REQUESTED".into()]),
                    tags: Some(vec![one("a", "1")]),
                    ..Default::default()
                },
            ];
            for f in &backfills {
                out.push((
                    "backfills".into(),
                    runs_query::backfills_select(Some(f), Some("c"), Some(5), false),
                ));
                out.push((
                    "count backfills".into(),
                    runs_query::backfills_select(Some(f), None, None, true),
                ));
            }
            out
        }

        fn named(statements: Vec<(&'static str, Sql)>) -> Vec<(String, Sql)> {
            statements
                .into_iter()
                .map(|(what, sql)| (what.to_owned(), sql))
                .collect()
        }

        /// Every statement the domains build for a file of `schema` with `layout`.
        pub(super) fn statements_of(
            schema: &Schema,
            layout: &IndexLayout,
            dialect: crate::store::Dialect,
        ) -> Vec<(String, Sql)> {
            if std::ptr::eq(schema, &RUNS_SCHEMA) {
                let mut all = runs_statements(&RunIndexes::of(layout));
                all.extend(named(crate::config::plans::statements()));
                all
            } else if std::ptr::eq(schema, &EVENT_INDEX_SCHEMA) {
                let mut all = named(crate::storage::plans::statements());
                all.extend(crate::assets::query::samples());
                all.extend(crate::events::query::samples());
                all
            } else {
                named(crate::scheduling::plans::statements(dialect))
            }
        }

        pub(super) fn layout_of(schema: &Schema, ddl: &str) -> (Connection, IndexLayout) {
            let conn = Connection::open_in_memory().unwrap();
            for statement in schema.ddl {
                conn.execute_batch(statement).unwrap();
            }
            conn.execute_batch(ddl).unwrap();
            let layout = IndexLayout::load(&conn, canonical(schema)).unwrap();
            (conn, layout)
        }

        #[test]
        fn every_statement_fits_every_layout_of_dagsters_history() {
            assert!(std::ptr::eq(EVENT_SHARD_SCHEMA.ddl, EVENT_INDEX_SCHEMA.ddl));
            for (what, schema, ddl) in LAYOUTS {
                let (conn, layout) = layout_of(schema, ddl);
                assert_eq!(layout.is_canonical(), ddl.is_empty(), "{what}");
                let statements = statements_of(schema, &layout, crate::store::Dialect::Sqlite);
                assert!(statements.len() > 20, "{what}");
                for (name, sql) in statements {
                    let text = if sql.planned {
                        Cow::Borrowed(sql.text.as_str())
                    } else {
                        layout.apply(&sql.text, false)
                    };
                    for (at, _) in text.match_indices(PIN) {
                        let pinned = pinned_name(&text, at);
                        assert!(layout.get(pinned).is_some(), "{what}: {name}: {text}");
                    }
                    if let Err(e) = conn.prepare(&text) {
                        panic!("{what}: {name}: {e}: {text}");
                    }
                }
            }
        }
    }

    /// The same statements, rendered for PostgreSQL: nothing of SQLite's dialect is left, and
    /// the placeholders are `$1..$n` in order, one per parameter.
    mod postgres_rendering {
        use super::every_layout::{layout_of, statements_of, LAYOUTS};
        use crate::store::Dialect;

        const SQLITE_ONLY: [&str; 7] = [
            "INDEXED BY",
            "NOT INDEXED",
            "CROSS JOIN",
            "json_each",
            "LIMIT -1",
            "sqlite_",
            "last_insert_rowid",
        ];

        /// The numbers of the `$n` placeholders of `text`, in order.
        fn placeholders(text: &str) -> Vec<usize> {
            let bytes = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'$' {
                    let digits = bytes[i + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    out.push(text[i + 1..i + 1 + digits].parse().unwrap());
                    i += digits;
                }
                i += 1;
            }
            out
        }

        #[test]
        fn every_statement_renders_for_postgres() {
            let mut rendered = 0;
            for (what, schema, ddl) in LAYOUTS {
                let (_conn, layout) = layout_of(schema, ddl);
                for (name, sql) in statements_of(schema, &layout, Dialect::Postgres) {
                    let (text, params) = Dialect::Postgres.render(&sql);
                    assert!(!text.contains('?'), "{what}: {name}: {text}");
                    for sqlite in SQLITE_ONLY {
                        assert!(!text.contains(sqlite), "{what}: {name}: {sqlite}: {text}");
                    }
                    let expected: Vec<usize> = (1..=params.len()).collect();
                    assert_eq!(placeholders(&text), expected, "{what}: {name}: {text}");
                    // SQLite's rendering is the statement as built, placeholder for
                    // placeholder.
                    let (sqlite, _) = Dialect::Sqlite.render(&sql);
                    assert_eq!(sqlite.matches('?').count(), params.len(), "{what}: {name}");
                    rendered += 1;
                }
            }
            assert!(rendered > 500, "{rendered}");
        }
    }

    #[test]
    fn the_missing_index_error_is_recognised() {
        let conn = runs_file();
        let e = conn
            .prepare("SELECT 1 FROM runs INDEXED BY nope")
            .err()
            .unwrap();
        assert!(is_missing_index(&e));
        let e = conn.prepare("SELECT nope FROM runs").err().unwrap();
        assert!(!is_missing_index(&e));
    }
}
