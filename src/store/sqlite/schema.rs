//! Which schema a database file must have, what a file on disk holds, and what the store does
//! with it: one verdict (`judge`) serves both `Db::open` and `inspect_database`.
//!
//! Dagster versions its schema with alembic. The store creates files at exactly the revision stock
//! dagster 1.13.27 stamps; a file without a revision is initialised as stock's `_initdb` /
//! `from_local` does (its missing tables created, then stamped); a file at the head or at an
//! older known revision is served as it is when it has every table and column the native path
//! needs (`needs`), never migrated; a revision this Dagster does not know is never touched.

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use super::schema_events::EVENTS_DDL;
pub use super::schema_runs::RUNS_DDL;
pub use super::schema_schedules::SCHEDULES_DDL;
use crate::errors::StoreError;

/// The revision stock dagster 1.13.27 stamps on the databases it creates.
pub const HEAD_REVISION: &str = "29b539ebc72a";

/// Every revision of dagster 1.13.27's alembic history other than the head.
pub const OLDER_REVISIONS: &[&str] = &[
    "567bc23fd1ac",
    "da7cd32b690d",
    "8f8dba68fd3b",
    "9fe9e746268c",
    "1ebdd7a9686f",
    "3b1e175a2be3",
    "c63a27054f08",
    "727ffe943a9f",
    "c39c047fa021",
    "5c18fd3c2957",
    "07f83cc13695",
    "c34498c29964",
    "c9159e740d7e",
    "224640159acf",
    "3e0770016702",
    "9483999bad92",
    "f3e43ff66603",
    "375e95bad550",
    "b32a4f3036d2",
    "b22f16781a7c",
    "140198fdfe65",
    "5ae53cd67d0c",
    "f5bac2c36fad",
    "a0234163e0e3",
    "942138e33bf9",
    "493871843165",
    "8ccbed5060b8",
    "4ea2b1f6f67b",
    "0da417ae1b81",
    "a914fb6ccdf9",
    "6d366a41b4be",
    "3e71cf573ba6",
    "521d4caca7ad",
    "ba4050312958",
    "3ca619834060",
    "b4e0c470acb3",
    "6e1f65d78b92",
    "3778078a3582",
    "72686963a802",
    "f0367d611631",
    "7cba9eeaaf1d",
    "3b529ad30626",
    "45fa602c43dc",
    "ddcc6d7244c6",
    "7f2b1a4ca7a5",
    "1a2d72f6b24e",
    "7b8304b4429d",
    "e784752027a6",
    "29a8e9d74220",
    "f4b6a4885876",
    "05844c702676",
    "f78059038d01",
    "42add02bf976",
    "f4eed4c26e2c",
    "17154c80d885",
    "9c5f00e80ef2",
    "b37316bf5584",
    "130b087bc274",
    "d538c9496c01",
    "8d66aa722f94",
    "54666da3db5c",
    "5b467f7af3f6",
    "16e3115a602a",
    "c892b3fe0a9f",
    "d32d1d6de793",
    "b601eb913efa",
    "721d858e1dda",
    "6860f830e40c",
    "5e139331e376",
    "a00dd8d936a1",
    "958a9495162d",
    "6df03f4b1efb",
    "16689497301f",
    "e62c379ac8f4",
    "d9092588866f",
    "701913684cb4",
    "d3a4c9e87af3",
    "5771160a95ad",
    "ec80dd91891a",
    "46b412388816",
    "284a732df317",
    "63d7a8ec641a",
    "1aca709bba64",
    "16e3655b4d9b",
    "6b7fb194ff9c",
    "7e2f3204cf8e",
    "f495c27d5019",
];

/// The revision stock stamps on a file it finds with its main table but no revision (created by
/// SQLAlchemy 2.0 before Dagster stamped such files; `LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION`).
pub const LAST_KNOWN_STAMPED_REVISION: &str = "5771160a95ad";

/// A database file's schema: its DDL in creation order, what stock does with a file of it that
/// has no revision, and what the native path needs of it.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    /// `inspect_database`'s name for it.
    pub kind: &'static str,
    pub ddl: &'static [&'static str],
    /// A table whose presence in a file without a revision makes stock stamp
    /// `LAST_KNOWN_STAMPED_REVISION` instead of the head (and skip the data-migration marks):
    /// `runs` in runs.db, `job_ticks` in schedules.db. The event log's `_connect` stamps the head.
    pub pre_stamp_table: Option<&'static str>,
    /// The same, only for a file that was absent when the opener looked (stock's index shard
    /// constructor: `_initdb(for_index_shard=True)` finds `event_logs` another process created
    /// meanwhile); its data-migration marks are written all the same (`reindex_*`).
    pub pre_stamp_table_if_new: Option<&'static str>,
    /// Whether stock marks the data migrations done when it initialises a file that was already
    /// on disk (runs.db, schedules.db: `from_local` does it whenever it stamps the head). The
    /// index shard gets them only from the constructor that created it (`reindex_*`).
    pub marks_existing_file: bool,
    /// Tables stock adds to an existing file of any revision when missing.
    pub backfilled_tables: &'static [&'static str],
    pub data_migrations: &'static [&'static str],
    /// The tables the native path reads or writes in this file; `None`: every table of the DDL.
    pub used_tables: Option<&'static [&'static str]>,
    /// Tables and `table.column`s the native path does without, behind the capability gates the
    /// domains mirror from stock (a table absent here is absent to them).
    pub optional: &'static [&'static str],
    derived: OnceLock<Derived>,
}

pub static RUNS_SCHEMA: Schema = Schema {
    name: "runs",
    kind: "runs",
    ddl: RUNS_DDL,
    pre_stamp_table: Some("runs"),
    pre_stamp_table_if_new: None,
    marks_existing_file: true,
    backfilled_tables: &["instance_info"],
    data_migrations: &[
        "run_partitions",
        "run_repo_label_tags",
        "bulk_action_types",
        "run_backfill_id",
        "backfill_job_name_and_tags",
        "backfill_end_timestamp",
        "run_start_end_overwritten",
    ],
    used_tables: None,
    optional: &[],
    derived: OnceLock::new(),
};

/// The event log's index shard (`history/runs/index.db`). Stock marks its asset-key data
/// migrations done when its constructor creates the file; per-run shards get none.
pub static EVENT_INDEX_SCHEMA: Schema = Schema {
    name: "event log index",
    kind: "event_index",
    ddl: EVENTS_DDL,
    pre_stamp_table: None,
    pre_stamp_table_if_new: Some("event_logs"),
    marks_existing_file: false,
    backfilled_tables: &[],
    data_migrations: &["asset_key_table", "asset_key_index_columns"],
    used_tables: None,
    // The storage domain's pools gate on the default-limit column (`has_default_pool_limit_col`).
    // Everything else of the index is written or read unconditionally: the events domain's
    // mirror and wipe touch asset_event_tags, asset_check_executions, dynamic_partitions, slots
    // and pending steps; the pools read `concurrency_limits` (stock falls back to the slots on a
    // file from before 042, the native pools do not: tests/test_old_home_verdicts.py, 1.5.14).
    optional: &["concurrency_limits.using_default_limit"],
    derived: OnceLock::new(),
};

/// One run's event log shard (`history/runs/<run_id>.db`): stock creates every event log table
/// in it, but only `event_logs` is used (stock's `delete_events` also deletes the run's asset
/// event tags there, failing alike on a shard without the table).
pub static EVENT_SHARD_SCHEMA: Schema = Schema {
    name: "event log shard",
    kind: "event_shard",
    ddl: EVENTS_DDL,
    pre_stamp_table: None,
    pre_stamp_table_if_new: None,
    marks_existing_file: false,
    backfilled_tables: &[],
    data_migrations: &[],
    used_tables: Some(&["event_logs"]),
    optional: &[],
    derived: OnceLock::new(),
};

/// The schedule storage (`schedules/schedules.db`). Stock runs its two data migrations (the
/// selector ids of instigators, then of ticks) right after creating the file, so a fresh file
/// has both marks, in that order.
pub static SCHEDULES_SCHEMA: Schema = Schema {
    name: "schedules",
    kind: "schedules",
    ddl: SCHEDULES_DDL,
    pre_stamp_table: Some("job_ticks"),
    pre_stamp_table_if_new: None,
    marks_existing_file: true,
    backfilled_tables: &[],
    data_migrations: &["schedule_jobs_selector_id", "schedule_ticks_selector_id"],
    used_tables: None,
    // The scheduling domain's `Layout` gates: states from `jobs` without `instigators`, no
    // evaluations without their table, no selector-id migration marks without `secondary_indexes`.
    optional: &[
        "instigators",
        "asset_daemon_asset_evaluations",
        "secondary_indexes",
    ],
    derived: OnceLock::new(),
};

/// The schema of an `inspect_database` kind.
pub fn by_kind(kind: &str) -> Option<&'static Schema> {
    [
        &RUNS_SCHEMA,
        &EVENT_INDEX_SCHEMA,
        &EVENT_SHARD_SCHEMA,
        &SCHEDULES_SCHEMA,
    ]
    .into_iter()
    .find(|s| s.kind == kind)
}

const STAMP_TABLE: &str = "alembic_version";

/// One table of a schema: its name, columns, and its DDL (the table, then its indexes).
#[derive(Debug)]
pub struct TableDdl {
    pub name: String,
    pub columns: Vec<String>,
    pub statements: Vec<&'static str>,
}

impl TableDdl {
    /// The same table and indexes in the connection's TEMP schema: a stand-in that writes
    /// nothing to the file (read-only files, see `Plan::ReadOnly`).
    pub fn temp_statements(&self) -> Vec<String> {
        self.statements
            .iter()
            .map(|s| {
                if let Some(rest) = s.strip_prefix("CREATE TABLE ") {
                    format!("CREATE TEMP TABLE {rest}")
                } else if let Some(rest) = s.strip_prefix("CREATE UNIQUE INDEX ") {
                    format!("CREATE UNIQUE INDEX temp.{rest}")
                } else if let Some(rest) = s.strip_prefix("CREATE INDEX ") {
                    format!("CREATE INDEX temp.{rest}")
                } else {
                    (*s).to_owned()
                }
            })
            .collect()
    }
}

#[derive(Debug)]
struct Derived {
    tables: Vec<TableDdl>,
}

fn name_after<'a>(statement: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = statement.strip_prefix(prefix)?;
    rest.split(|c: char| c.is_whitespace() || c == '(').next()
}

impl Schema {
    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            let mut tables: Vec<TableDdl> = Vec::new();
            for statement in self.ddl {
                if let Some(name) = name_after(statement, "CREATE TABLE ") {
                    tables.push(TableDdl {
                        name: name.to_owned(),
                        columns: Vec::new(),
                        statements: vec![*statement],
                    });
                } else {
                    let on = statement
                        .split(" ON ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .expect("an index statement names its table");
                    tables
                        .iter_mut()
                        .find(|t| t.name == on)
                        .expect("an index follows its table")
                        .statements
                        .push(statement);
                }
            }
            // The columns as SQLite reads them from the DDL (an in-memory file, nothing on disk).
            let conn = rusqlite::Connection::open_in_memory().expect("an in-memory database");
            for statement in self.ddl {
                conn.execute_batch(statement).expect("stock's DDL");
            }
            for table in &mut tables {
                let mut stmt = conn
                    .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                    .expect("pragma_table_info");
                table.columns = stmt
                    .query_map([&table.name], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect())
                    .expect("the columns of a table just created");
            }
            Derived { tables }
        })
    }

    /// Every table of the schema, in creation order.
    pub fn tables(&self) -> &[TableDdl] {
        &self.derived().tables
    }

    pub fn table(&self, name: &str) -> Option<&TableDdl> {
        self.tables().iter().find(|t| t.name == name)
    }

    fn used(&self, table: &str) -> bool {
        table != STAMP_TABLE
            && self.used_tables.is_none_or(|used| used.contains(&table))
            && !self.optional.contains(&table)
    }

    /// The tables and `table.column`s the native path needs in a file of this schema.
    pub fn needs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for table in self.tables().iter().filter(|t| self.used(&t.name)) {
            out.push(table.name.clone());
            for column in &table.columns {
                let qualified = format!("{}.{column}", table.name);
                if !self.optional.contains(&qualified.as_str()) {
                    out.push(qualified);
                }
            }
        }
        out
    }
}

/// What a database file holds, read without changing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The path exists (even empty): stock's index shard constructor only initialises a file
    /// that is not there.
    pub present: bool,
    /// Present and not empty.
    pub exists: bool,
    /// Each table and its columns.
    pub tables: BTreeMap<String, Vec<String>>,
    pub revision: Option<String>,
}

impl Found {
    /// Tables and revision of the file a connection has open.
    pub fn read(
        conn: &rusqlite::Connection,
        present: bool,
        exists: bool,
    ) -> rusqlite::Result<Found> {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT m.name, p.name FROM main.sqlite_master AS m, pragma_table_info(m.name, 'main') \
             AS p WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            tables.entry(row.get(0)?).or_default().push(row.get(1)?);
        }
        let revision = if tables.contains_key(STAMP_TABLE) {
            conn.query_row("SELECT version_num FROM main.alembic_version", [], |r| {
                r.get::<_, String>(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?
        } else {
            None
        };
        Ok(Found {
            present,
            exists: exists || !tables.is_empty(),
            tables,
            revision,
        })
    }

    fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|columns| columns.iter().any(|c| c == column))
    }
}

/// What a file is, as `inspect_database` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Absent or empty.
    Missing,
    /// No Dagster table.
    Fresh,
    /// At the head revision.
    Current,
    /// At an older revision this Dagster knows.
    Outdated,
    /// At a revision this Dagster does not know.
    Unknown,
    /// Dagster tables and no revision (a creation cut short, or SQLAlchemy 2.0's era).
    Unstamped,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Missing => "missing",
            FileState::Fresh => "fresh",
            FileState::Current => "current",
            FileState::Outdated => "outdated",
            FileState::Unknown => "unknown",
            FileState::Unstamped => "unstamped",
        }
    }
}

/// What the store does with a file.
#[derive(Debug)]
pub enum Plan {
    /// Stock's initialisation: every missing table with its indexes, then the stamp, then the
    /// data-migration marks when stock writes them. Tables already there are left as they are
    /// (SQLAlchemy's `create_all` adds no index to an existing table).
    Initialize {
        stamp: &'static str,
        marks: bool,
    },
    /// Used as it is, after adding the tables stock adds to any file (`backfill`).
    Serve {
        backfill: Vec<&'static str>,
    },
    /// Read-only: every statement reads the file, with an empty TEMP stand-in for each table
    /// the native path needs that the file lacks (all of them when it has none).
    ReadOnly {
        stand_ins: Vec<&'static str>,
    },
    Refuse(StoreError),
}

/// The verdict on a file: its state, what the native path needs that it lacks, and the plan.
#[derive(Debug)]
pub struct Verdict {
    pub state: FileState,
    pub missing: Vec<String>,
    pub plan: Plan,
}

impl Verdict {
    /// The native path serves the file (creating, completing or reading it as the plan says).
    pub fn native(&self) -> bool {
        !matches!(self.plan, Plan::Refuse(_))
    }
}

/// Judge a file of `schema` at `path` from what it holds, for a process that can (`writable`)
/// or cannot write it.
pub fn judge(path: &str, schema: &'static Schema, found: &Found, writable: bool) -> Verdict {
    let missing: Vec<String> = schema
        .needs()
        .into_iter()
        .filter(|need| match need.split_once('.') {
            None => !found.has(need),
            // A missing table is listed once, not with each of its columns.
            Some((table, column)) => found.has(table) && !found.has_column(table, column),
        })
        .collect();
    let missing_tables: Vec<&'static str> = schema
        .tables()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| missing.iter().any(|m| m == t))
        .collect();
    let missing_columns = missing.iter().any(|m| m.contains('.'));
    let dagster_tables = schema
        .tables()
        .iter()
        .any(|t| t.name != STAMP_TABLE && found.has(&t.name));
    let head_plan = |pre_stamped: bool| {
        let stamp = if pre_stamped {
            LAST_KNOWN_STAMPED_REVISION
        } else {
            HEAD_REVISION
        };
        // runs.db and schedules.db are marked whenever stamped the head; the index shard when
        // its constructor created it, whatever the stamp.
        let marks = if schema.marks_existing_file {
            !pre_stamped
        } else {
            !found.present
        };
        Plan::Initialize { stamp, marks }
    };
    let all_tables = || {
        schema
            .tables()
            .iter()
            .map(|t| t.name.as_str())
            .filter(|t| *t != STAMP_TABLE)
            .collect::<Vec<_>>()
    };
    let (state, plan) = match &found.revision {
        _ if !found.exists => (
            FileState::Missing,
            if writable {
                head_plan(false)
            } else {
                Plan::ReadOnly {
                    stand_ins: all_tables(),
                }
            },
        ),
        Some(rev) if rev != HEAD_REVISION && !OLDER_REVISIONS.contains(&rev.as_str()) => (
            FileState::Unknown,
            Plan::Refuse(StoreError::UnknownRevision {
                path: path.to_owned(),
                found: rev.clone(),
            }),
        ),
        Some(rev) => {
            let state = if rev == HEAD_REVISION {
                FileState::Current
            } else {
                FileState::Outdated
            };
            let backfill: Vec<&'static str> = missing_tables
                .iter()
                .copied()
                .filter(|t| schema.backfilled_tables.contains(t))
                .collect();
            let plan = if missing_columns || (writable && missing_tables.len() > backfill.len()) {
                Plan::Refuse(StoreError::MissingSchema {
                    path: path.to_owned(),
                    revision: rev.clone(),
                    missing: missing.clone(),
                })
            } else if writable {
                Plan::Serve { backfill }
            } else {
                Plan::ReadOnly {
                    stand_ins: missing_tables,
                }
            };
            (state, plan)
        }
        None if !dagster_tables => (
            FileState::Fresh,
            if writable {
                head_plan(false)
            } else {
                Plan::ReadOnly {
                    stand_ins: all_tables(),
                }
            },
        ),
        None => {
            let pre_stamped = schema.pre_stamp_table.is_some_and(|t| found.has(t))
                || (!found.present && schema.pre_stamp_table_if_new.is_some_and(|t| found.has(t)));
            // Stock's initialisation adds missing tables, never a column to a table already
            // there: a file lacking a needed column stays unservable once initialised, so it is
            // left to stock (which initialises it on its own open) untouched.
            let plan = if missing_columns {
                Plan::Refuse(StoreError::Unstamped {
                    path: path.to_owned(),
                    missing: missing.clone(),
                    writable,
                })
            } else if writable {
                head_plan(pre_stamped)
            } else {
                Plan::ReadOnly {
                    stand_ins: missing_tables,
                }
            };
            (FileState::Unstamped, plan)
        }
    };
    Verdict {
        state,
        missing,
        plan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(tables: &[(&str, &[&str])], revision: Option<&str>) -> Found {
        Found {
            present: true,
            exists: true,
            tables: tables
                .iter()
                .map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect()))
                .collect(),
            revision: revision.map(str::to_owned),
        }
    }

    /// The named tables of `schema` with all their columns, and no revision.
    fn some(schema: &'static Schema, names: &[&str]) -> Found {
        let mut f = found(&[], None);
        for name in names {
            f.tables.insert(
                name.to_string(),
                schema.table(name).unwrap().columns.clone(),
            );
        }
        f
    }

    /// Every table of `schema` with all its columns, as a file stock created at the head has.
    fn complete(schema: &'static Schema, revision: Option<&str>) -> Found {
        let mut f = found(&[], revision);
        for t in schema.tables() {
            if t.name != STAMP_TABLE || revision.is_some() {
                f.tables.insert(t.name.clone(), t.columns.clone());
            }
        }
        f
    }

    #[test]
    fn absent_and_empty_files_are_created_with_stocks_marks() {
        let absent = Found::default();
        let v = judge("x", &RUNS_SCHEMA, &absent, true);
        assert_eq!(v.state, FileState::Missing);
        assert!(matches!(
            v.plan,
            Plan::Initialize {
                stamp: HEAD_REVISION,
                marks: true
            }
        ));
        // The index shard's constructor marks only a file it created; a zero-byte index.db
        // was already there, and `_connect` stamps it without marks.
        let v = judge("x", &EVENT_INDEX_SCHEMA, &absent, true);
        assert!(matches!(v.plan, Plan::Initialize { marks: true, .. }));
        let empty = Found {
            present: true,
            ..Found::default()
        };
        let v = judge("x", &EVENT_INDEX_SCHEMA, &empty, true);
        assert!(matches!(v.plan, Plan::Initialize { marks: false, .. }));
        let v = judge("x", &RUNS_SCHEMA, &empty, false);
        assert!(matches!(v.plan, Plan::ReadOnly { .. }));
        assert!(v.native());
    }

    #[test]
    fn head_file_is_served_and_backfilled() {
        let mut f = complete(&RUNS_SCHEMA, Some(HEAD_REVISION));
        f.tables.remove("instance_info");
        let v = judge("x", &RUNS_SCHEMA, &f, true);
        assert_eq!(v.state, FileState::Current);
        assert_eq!(v.missing, ["instance_info"]);
        assert!(matches!(&v.plan, Plan::Serve { backfill } if backfill == &["instance_info"]));
        // Read-only, it stands in empty.
        let v = judge("x", &RUNS_SCHEMA, &f, false);
        assert!(matches!(&v.plan, Plan::ReadOnly { stand_ins } if stand_ins == &["instance_info"]));
    }

    #[test]
    fn unknown_revision_is_refused() {
        let v = judge(
            "x",
            &RUNS_SCHEMA,
            &complete(&RUNS_SCHEMA, Some("ffffffffffff")),
            true,
        );
        assert_eq!(v.state, FileState::Unknown);
        assert!(
            matches!(&v.plan, Plan::Refuse(StoreError::UnknownRevision { found, .. }) if found == "ffffffffffff")
        );
        assert!(!v.native());
    }

    #[test]
    fn older_revision_is_served_when_it_has_what_the_native_path_needs() {
        let f = complete(&RUNS_SCHEMA, Some(LAST_KNOWN_STAMPED_REVISION));
        let v = judge("x", &RUNS_SCHEMA, &f, true);
        assert_eq!(v.state, FileState::Outdated);
        assert!(v.missing.is_empty());
        assert!(matches!(&v.plan, Plan::Serve { backfill } if backfill.is_empty()));
        // Without a column the runs domain reads (044's backfill_id), it is stock's.
        let mut old = f;
        old.tables
            .get_mut("runs")
            .unwrap()
            .retain(|c| c != "backfill_id");
        old.tables.remove("backfill_tags");
        let v = judge("x", &RUNS_SCHEMA, &old, true);
        assert_eq!(v.missing, ["backfill_tags", "runs.backfill_id"]);
        assert!(matches!(
            &v.plan,
            Plan::Refuse(StoreError::MissingSchema { .. })
        ));
        let Plan::Refuse(e) = &v.plan else {
            unreachable!()
        };
        assert!(e.to_string().contains("dagster instance migrate"));
    }

    #[test]
    fn optional_tables_and_columns_are_not_needed() {
        let mut f = complete(&EVENT_INDEX_SCHEMA, Some("6b7fb194ff9c"));
        f.tables
            .get_mut("concurrency_limits")
            .unwrap()
            .retain(|c| c != "using_default_limit");
        assert!(judge("x", &EVENT_INDEX_SCHEMA, &f, true).native());
        f.tables.remove("asset_check_executions");
        let v = judge("x", &EVENT_INDEX_SCHEMA, &f, true);
        assert_eq!(v.missing, ["asset_check_executions"]);
        assert!(!v.native());
        let mut s = complete(&SCHEDULES_SCHEMA, Some("c892b3fe0a9f"));
        for t in [
            "instigators",
            "asset_daemon_asset_evaluations",
            "secondary_indexes",
        ] {
            s.tables.remove(t);
        }
        assert!(judge("x", &SCHEDULES_SCHEMA, &s, true).native());
    }

    #[test]
    fn a_run_shard_needs_event_logs_only() {
        let cols: Vec<&str> = EVENT_SHARD_SCHEMA
            .table("event_logs")
            .unwrap()
            .columns
            .iter()
            .map(String::as_str)
            .collect();
        let f = found(&[("event_logs", &cols)], Some("c39c047fa021"));
        let v = judge("x", &EVENT_SHARD_SCHEMA, &f, true);
        assert!(v.native(), "{v:?}");
        let old = found(
            &[("event_logs", &cols[..cols.len() - 1])],
            Some("c39c047fa021"),
        );
        let v = judge("x", &EVENT_SHARD_SCHEMA, &old, true);
        assert_eq!(v.missing, ["event_logs.partition"]);
        assert!(!v.native());
    }

    #[test]
    fn unstamped_files_are_initialised_as_stock_does() {
        // Runs: with `runs`, stock stamps the last known revision and writes no marks.
        let f = some(&RUNS_SCHEMA, &["secondary_indexes", "runs"]);
        let v = judge("x", &RUNS_SCHEMA, &f, true);
        assert_eq!(v.state, FileState::Unstamped);
        assert!(matches!(
            v.plan,
            Plan::Initialize {
                stamp: LAST_KNOWN_STAMPED_REVISION,
                marks: false
            }
        ));
        // Without it: the head and the marks, whatever else is there.
        let f = some(&RUNS_SCHEMA, &["secondary_indexes"]);
        let v = judge("x", &RUNS_SCHEMA, &f, true);
        assert!(matches!(
            v.plan,
            Plan::Initialize {
                stamp: HEAD_REVISION,
                marks: true
            }
        ));
        // Shards and the index: the head, no marks (the index's file was already there).
        let f = some(&EVENT_INDEX_SCHEMA, &["event_logs"]);
        for schema in [&EVENT_SHARD_SCHEMA, &EVENT_INDEX_SCHEMA] {
            let v = judge("x", schema, &f, true);
            assert!(
                matches!(
                    v.plan,
                    Plan::Initialize {
                        stamp: HEAD_REVISION,
                        marks: false
                    }
                ),
                "{}",
                schema.name
            );
        }
        // The index shard's constructor racing another process's creation: the file was absent
        // when looked at, and has `event_logs` by the time it is judged.
        let mut raced = some(&EVENT_INDEX_SCHEMA, &["event_logs"]);
        raced.present = false;
        let v = judge("x", &EVENT_INDEX_SCHEMA, &raced, true);
        assert!(matches!(
            v.plan,
            Plan::Initialize {
                stamp: LAST_KNOWN_STAMPED_REVISION,
                marks: true
            }
        ));
        // A run shard has no data migrations to mark.
        let v = judge("x", &EVENT_SHARD_SCHEMA, &raced, true);
        assert!(matches!(
            v.plan,
            Plan::Initialize {
                stamp: HEAD_REVISION,
                ..
            }
        ));
        // Read-only: what it has is read, what it lacks stands in empty.
        let v = judge("x", &RUNS_SCHEMA, &complete(&RUNS_SCHEMA, None), false);
        assert!(matches!(&v.plan, Plan::ReadOnly { stand_ins } if stand_ins.is_empty()));
        // A table lacking a needed column stays so once initialised (create_all adds tables
        // only): left to stock, untouched, writable or not (SQLAlchemy 2.0-era homes).
        let mut old = complete(&RUNS_SCHEMA, None);
        old.tables
            .get_mut("runs")
            .unwrap()
            .retain(|c| c != "backfill_id");
        old.tables.remove("backfill_tags");
        for writable in [true, false] {
            let v = judge("x", &RUNS_SCHEMA, &old, writable);
            assert_eq!(v.state, FileState::Unstamped);
            assert_eq!(v.missing, ["backfill_tags", "runs.backfill_id"]);
            assert!(matches!(v.plan, Plan::Refuse(StoreError::Unstamped { .. })));
        }
    }

    #[test]
    fn needs_and_tables_come_from_stocks_ddl() {
        let runs = RUNS_SCHEMA.table("runs").unwrap();
        assert!(runs.columns.iter().any(|c| c == "backfill_id"));
        assert!(runs
            .statements
            .iter()
            .any(|s| s.contains("INDEX idx_run_status ")));
        assert!(EVENT_SHARD_SCHEMA
            .needs()
            .iter()
            .all(|n| n.starts_with("event_logs")));
        assert!(!EVENT_INDEX_SCHEMA
            .needs()
            .iter()
            .any(|n| n == "concurrency_limits.using_default_limit"));
        assert!(!RUNS_SCHEMA
            .needs()
            .iter()
            .any(|n| n.starts_with("alembic_version")));
        let temp = RUNS_SCHEMA.table("run_tags").unwrap().temp_statements();
        assert!(temp[0].starts_with("CREATE TEMP TABLE run_tags ("));
        assert!(temp[1..]
            .iter()
            .all(|s| s.starts_with("CREATE INDEX temp.")));
    }

    #[test]
    fn ddl_ends_with_alembic_table_and_has_every_runs_index() {
        assert!(RUNS_DDL
            .last()
            .unwrap()
            .starts_with("CREATE TABLE alembic_version"));
        for index in [
            "idx_run_tags",
            "idx_run_tags_run_idx",
            "idx_run_partitions",
            "idx_runs_by_job",
            "idx_run_status",
            "idx_run_range",
            "idx_runs_by_backfill_id",
        ] {
            assert!(
                RUNS_DDL
                    .iter()
                    .any(|s| s.contains(&format!("INDEX {index} "))),
                "{index}"
            );
        }
    }
}
