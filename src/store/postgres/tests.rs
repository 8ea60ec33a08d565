//! Tests against a real server: a throwaway cluster from `dagster_rs.pg_cluster` (PYO3_PYTHON's
//! interpreter with python/ on its path), or DAGSTER_RS_TEST_PG_URL's server. Each test works
//! in a database of its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::schema::{self, Created, Layout, RunTagsLayout, Storage};
use super::*;
use crate::store::Value;

/// A cluster run by a Python child: prints its URL, then obeys `restart` lines on its stdin
/// (answering `ok`); stops when its stdin closes (with the test process at the latest).
struct Server {
    url: String,
    port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

const SERVER: &str = r#"
import json, os, sys
from dagster_rs.pg_cluster import PgCluster
extra = json.loads(os.environ.get("DAGSTER_RS_TEST_PG_CLUSTER", "{}"))
cluster = PgCluster(
    max_connections=int(os.environ.get("DAGSTER_RS_PG_MAX_CONNECTIONS", "100")), **extra
)
try:
    cluster.start()
    print(cluster.url(), cluster.port, flush=True)
    for line in sys.stdin:
        if line.strip() == "restart":
            cluster.restart("immediate")
        print("ok", flush=True)
finally:
    cluster.stop()
"#;

impl Server {
    fn start() -> Option<Server> {
        Server::start_with("{}")
    }

    /// `cluster`: PgCluster keyword arguments as JSON (`tcp`, `settings`).
    fn start_with(cluster: &str) -> Option<Server> {
        let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .args(["-c", SERVER])
            .env("DAGSTER_RS_TEST_PG_CLUSTER", cluster)
            .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        if !line.starts_with("postgresql://") {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        let (url, port) = line.trim().split_once(' ')?;
        Some(Server {
            url: url.to_owned(),
            port: port.parse().ok()?,
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    fn restart(&mut self) {
        writeln!(self.stdin.as_mut().unwrap(), "restart").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin stops the cluster; wait so no server outlives the test.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The URL of the process-wide server's `postgres` database; `None`: skip (no server here).
fn shared_url() -> Option<String> {
    static SHARED: OnceLock<Option<Mutex<Server>>> = OnceLock::new();
    if let Ok(url) = std::env::var("DAGSTER_RS_TEST_PG_URL") {
        return Some(url);
    }
    let server = SHARED.get_or_init(|| Server::start().map(Mutex::new));
    server.as_ref().map(|s| s.lock().unwrap().url.clone())
}

fn skip() -> bool {
    assert!(
        std::env::var("DAGSTER_RS_REQUIRE_PG").as_deref() != Ok("1"),
        "DAGSTER_RS_REQUIRE_PG=1 but no PostgreSQL server could be started"
    );
    eprintln!("skipped: no PostgreSQL server (dagster_rs.pg_cluster failed)");
    true
}

/// `url` with its database replaced by `db`.
fn url_of(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let slash = rest.find('/').unwrap();
    let query = rest[slash..].find('?').map_or("", |q| &rest[slash + q..]);
    format!("{scheme}://{}/{db}{query}", &rest[..slash])
}

fn admin(url: &str) -> postgres::Client {
    let target = url::parse(url, Duration::from_secs(10), None).unwrap();
    target.config.connect(postgres::NoTls).unwrap()
}

/// A fresh database on `server_url`'s server; its URL.
fn fresh_db(server_url: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "rs_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    admin(server_url)
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    url_of(server_url, &name)
}

fn opts(size: usize) -> PoolOptions {
    PoolOptions {
        size,
        checkout_timeout: Duration::from_secs(10),
        statement_timeout: None,
        connect_retries: 0,
    }
}

fn kind(err: &StoreError) -> Option<ErrorKind> {
    match err {
        StoreError::Postgres { kind, .. } => Some(*kind),
        _ => None,
    }
}

macro_rules! server_or_skip {
    () => {
        match shared_url() {
            Some(url) => url,
            None => {
                skip();
                return;
            }
        }
    };
}

#[test]
fn sessions_are_utc_named_custom_planned_and_on_the_unix_socket() {
    let server = server_or_skip!();
    let db = Db::open(&fresh_db(&server), opts(2), 1).unwrap();
    let (zone, app, plans, unix) = db
        .read(|c| {
            c.query_opt(
                "SELECT current_setting('TimeZone'), current_setting('application_name'), \
                 current_setting('plan_cache_mode'), inet_server_addr() IS NULL",
                &[],
                |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.bool(3)?)),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        (zone.as_str(), app.as_str(), plans.as_str(), unix),
        ("UTC", "dagster-rs", "force_custom_plan", true)
    );
    assert!(!db.location().contains("password"));
}

#[test]
fn values_round_trip_by_the_servers_types() {
    let server = server_or_skip!();
    let db = Db::open(&fresh_db(&server), opts(2), 1).unwrap();
    db.write(|c| {
        c.batch(
            "CREATE TABLE t (id serial PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, \
             f8 float8, n numeric, b bool, tx text, vc varchar(20), js json, jb jsonb, \
             by bytea, ts timestamp, tz timestamptz)",
        )
    })
    .unwrap();
    let insert = "INSERT INTO t (i2, i4, i8, f4, f8, n, b, tx, vc, js, jb, by, ts, tz) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id";
    let rows: Vec<Vec<Value>> = vec![
        vec![
            Value::Int(-7),
            Value::Int(2_000_000_000),
            Value::Int(9_000_000_000_000),
            Value::Real(1.5),
            Value::Real(2.25),
            Value::Int(123_456_789_012),
            Value::Int(1),
            Value::Text("héllo".into()),
            Value::Text("v".into()),
            Value::Text(r#"{"a": [1, 2]}"#.into()),
            Value::Text(r#"{"b": true}"#.into()),
            Value::Blob(vec![0, 1, 2, 255]),
            Value::Text("2024-02-29 23:59:59.123456".into()),
            Value::Real(1_700_000_000.5),
        ],
        vec![
            Value::Text("12".into()),
            Value::Real(4.0),
            Value::Text("-5".into()),
            Value::Int(3),
            Value::Int(-8),
            Value::Text("-0.125".into()),
            Value::Text("false".into()),
            Value::Int(42),
            Value::Real(0.5),
            Value::Int(7),
            Value::Null,
            Value::Text("bytes".into()),
            Value::Real(0.25),
            Value::Text("1970-01-01 00:00:00".into()),
        ],
        vec![Value::Null; 14],
    ];
    let ids: Vec<i64> = db
        .write(|c| {
            rows.iter()
                .map(|row| c.query_opt(insert, row, |r| r.int(0)).map(Option::unwrap))
                .collect::<Result<_, StoreError>>()
        })
        .unwrap();
    assert_eq!(ids, [1, 2, 3]); // serial: an int4 id read as an int

    type Got = (
        Vec<Value>,
        Option<String>,
        Option<f64>,
        Option<bool>,
        Option<i64>,
    );
    let got: Vec<Got> = db
        .read(|c| {
            c.query(
                "SELECT i2, i4, i8, f4, f8, n, b, tx, vc, js, jb, by, ts, tz FROM t ORDER BY id",
                &[],
                |r| {
                    let values = (0..r.column_count())
                        .map(|i| r.any(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((
                        values,
                        r.opt_text(12)?,
                        r.opt_real(13)?,
                        r.opt_bool(6)?,
                        r.opt_int(1)?,
                    ))
                },
            )
        })
        .unwrap();
    assert_eq!(
        got[0].0,
        vec![
            Value::Int(-7),
            Value::Int(2_000_000_000),
            Value::Int(9_000_000_000_000),
            Value::Real(1.5),
            Value::Real(2.25),
            Value::Int(123_456_789_012),
            Value::Int(1),
            Value::Text("héllo".into()),
            Value::Text("v".into()),
            Value::Text(r#"{"a": [1, 2]}"#.into()),
            Value::Text(r#"{"b": true}"#.into()),
            Value::Blob(vec![0, 1, 2, 255]),
            Value::Text("2024-02-29 23:59:59.123456".into()),
            Value::Text("2023-11-14 22:13:20.500000".into()),
        ]
    );
    assert_eq!(got[0].1.as_deref(), Some("2024-02-29 23:59:59.123456"));
    assert_eq!(got[0].2, Some(1_700_000_000.5));
    assert_eq!(got[0].3, Some(true));
    assert_eq!(got[0].4, Some(2_000_000_000));
    assert_eq!(
        got[1].0,
        vec![
            Value::Int(12),
            Value::Int(4),
            Value::Int(-5),
            Value::Real(3.0),
            Value::Real(-8.0),
            Value::Real(-0.125),
            Value::Int(0),
            Value::Text("42".into()),
            Value::Text("0.5".into()),
            Value::Text("7".into()),
            Value::Null,
            Value::Blob(b"bytes".to_vec()),
            Value::Text("1970-01-01 00:00:00.250000".into()),
            Value::Text("1970-01-01 00:00:00.000000".into()),
        ]
    );
    assert_eq!(got[1].2, Some(0.0));
    assert_eq!(got[2].0, vec![Value::Null; 14]);
    assert_eq!((got[2].1.clone(), got[2].2, got[2].3), (None, None, None));

    // Values the column's type cannot hold are refused before anything is sent.
    for (column, value) in [
        ("i2", Value::Int(40_000)),
        ("i4", Value::Int(1 << 40)),
        ("i8", Value::Text("x".into())),
        ("ts", Value::Text("yesterday".into())),
        ("by", Value::Real(1.0)),
    ] {
        let err = db
            .write(|c| c.execute(&format!("INSERT INTO t ({column}) VALUES ($1)"), &[value]))
            .unwrap_err();
        assert_eq!(kind(&err), Some(ErrorKind::Other), "{column}: {err}");
    }
    // Timestamps compare in the session's UTC: CURRENT_TIMESTAMP is now, naive.
    let skew = db
        .read(|c| {
            c.query_opt(
                "SELECT extract(epoch FROM LOCALTIMESTAMP - $1::timestamp)",
                &[Value::Text(super::types::format_sql_datetime(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_micros() as i64,
                ))],
                |r| r.real(0),
            )
        })
        .unwrap()
        .unwrap();
    assert!(skew.abs() < 5.0, "{skew}");
    // Aggregates come back as numeric (sum) or int8 (count); both read as ints.
    let (sum, count) = db
        .read(|c| {
            c.query_opt("SELECT sum(i8), count(*) FROM t", &[], |r| {
                Ok((r.int(0)?, r.int(1)?))
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!((sum, count), (9_000_000_000_000 - 5, 3));
    // EXPLAIN (FORMAT JSON) as JSON.
    let plan = db
        .read(|c| c.explain("SELECT * FROM t WHERE id = $1", &[Value::Int(1)]))
        .unwrap();
    assert_eq!(plan[0]["Plan"]["Index Name"], "t_pkey", "{plan}");
}

#[test]
fn a_table_altered_under_a_prepared_statement_is_prepared_again() {
    let server = server_or_skip!();
    let db = Db::open(&fresh_db(&server), opts(1), 1).unwrap();
    db.write(|c| c.batch("CREATE TABLE a (x int); INSERT INTO a VALUES (1)"))
        .unwrap();
    let read = |db: &Db| db.read(|c| c.query_opt("SELECT * FROM a", &[], |r| r.any(0)));
    assert_eq!(read(&db).unwrap(), Some(Value::Int(1)));
    // Another session (stock's `dagster instance migrate`, say) changes the column's type.
    admin(&db.pool.location().replace("***", ""))
        .batch_execute("ALTER TABLE a ALTER COLUMN x TYPE text")
        .unwrap_or_else(|_| panic!("alter"));
    assert_eq!(read(&db).unwrap(), Some(Value::Text("1".into())));
}

#[test]
fn writes_commit_roll_back_and_serialize() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let db = Arc::new(Db::open(&url, opts(4), write_key("test")).unwrap());
    db.write(|c| c.batch("CREATE TABLE n (id int PRIMARY KEY, v int)"))
        .unwrap();
    db.write(|c| c.execute("INSERT INTO n VALUES (1, 0)", &[]))
        .unwrap();
    // Err rolls back.
    let err: Result<(), StoreError> = db.write(|c| {
        c.execute("UPDATE n SET v = 100", &[])?;
        Err(failure(
            "x",
            None,
            ErrorKind::Other,
            PgFailure::Value("no".into()),
        ))
    });
    assert!(err.is_err());
    // A failed statement the closure swallowed: PostgreSQL aborted the transaction, so the
    // write fails instead of reporting a commit that did not happen.
    let swallowed = db.write(|c| {
        c.execute("UPDATE n SET v = 200", &[])?;
        let dup = c.execute("INSERT INTO n VALUES (1, 1)", &[]).unwrap_err();
        assert_eq!(kind(&dup), Some(ErrorKind::UniqueViolation));
        Ok::<_, StoreError>(())
    });
    assert!(swallowed.is_err());
    // Read-modify-write from 4 threads (4 sessions): the advisory lock serializes them.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    db.write(|c| {
                        let v = c.query_opt("SELECT v FROM n WHERE id = 1", &[], |r| r.int(0))?;
                        c.execute(
                            "UPDATE n SET v = $1 WHERE id = 1",
                            &[Value::Int(v.unwrap() + 1)],
                        )
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = db
        .read(|c| c.query_opt("SELECT v FROM n", &[], |r| r.int(0)))
        .unwrap();
    assert_eq!(v, Some(100));
    let stats = db.stats();
    assert!(stats.opened <= 4 && stats.checked_out == 0, "{stats:?}");
}

#[test]
fn the_pool_is_bounded_and_times_out_as_busy() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let dbname = url::parse(&url, Duration::from_secs(5), None)
        .unwrap()
        .config
        .get_dbname()
        .unwrap()
        .to_owned();
    let db = Arc::new(Db::open(&url, opts(3), 1).unwrap());
    let mut observer = admin(&url);
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(13));
    let workers: Vec<_> = (0..12)
        .map(|_| {
            let (db, start) = (db.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..5 {
                    db.read(|c| c.execute("SELECT pg_sleep(0.02)", &[]))
                        .unwrap();
                }
            })
        })
        .collect();
    start.wait();
    let until = Instant::now() + Duration::from_secs(20);
    while workers.iter().any(|w| !w.is_finished()) && Instant::now() < until {
        let n: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dagster-rs' \
                 AND datname = $1 AND pid <> pg_backend_pid()",
                &[&dbname],
            )
            .unwrap()
            .get(0);
        peak.fetch_max(n as usize, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
    }
    for w in workers {
        w.join().unwrap();
    }
    let stats = db.stats();
    assert_eq!(peak.load(Ordering::Relaxed), 3, "{stats:?}");
    assert_eq!(stats.opened, 3, "{stats:?}");
    assert_eq!((stats.idle, stats.checked_out), (3, 0));

    // One session, held: the next caller waits out its checkout timeout and is told "busy".
    let one = Arc::new(
        Db::open(
            &url,
            PoolOptions {
                size: 1,
                checkout_timeout: Duration::from_millis(200),
                statement_timeout: None,
                connect_retries: 0,
            },
            1,
        )
        .unwrap(),
    );
    let holder = {
        let one = one.clone();
        std::thread::spawn(move || one.read(|c| c.execute("SELECT pg_sleep(1)", &[])))
    };
    std::thread::sleep(Duration::from_millis(300));
    let waited = Instant::now();
    let err = one.read(|c| c.execute("SELECT 1", &[])).unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::Busy), "{err}");
    assert!(waited.elapsed() >= Duration::from_millis(190));
    holder.join().unwrap().unwrap();
    one.read(|c| c.execute("SELECT 1", &[])).unwrap();

    // dispose closes the idle sessions; the pool opens new ones on demand.
    db.dispose();
    let stats = db.stats();
    assert_eq!((stats.idle, stats.closed), (0, 3));
    db.read(|c| c.execute("SELECT 1", &[])).unwrap();
    assert_eq!(db.stats().opened, 4);
}

#[test]
fn server_errors_have_kinds() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let db = Arc::new(Db::open(&url, opts(2), write_key("kinds")).unwrap());
    db.write(|c| {
        c.batch(
            "CREATE TABLE p (id int PRIMARY KEY); \
             CREATE TABLE ch (p int REFERENCES p (id), v int NOT NULL)",
        )
    })
    .unwrap();
    db.write(|c| c.execute("INSERT INTO p VALUES (1)", &[]))
        .unwrap();
    let cases: Vec<(&str, ErrorKind, &str)> = vec![
        (
            "INSERT INTO p VALUES (1)",
            ErrorKind::UniqueViolation,
            "23505",
        ),
        (
            "INSERT INTO ch VALUES (2, 1)",
            ErrorKind::Constraint,
            "23503",
        ),
        (
            "INSERT INTO ch VALUES (1, NULL)",
            ErrorKind::Constraint,
            "23502",
        ),
        ("SELECT * FROM missing", ErrorKind::SchemaMismatch, "42P01"),
        ("SELECT nope FROM p", ErrorKind::SchemaMismatch, "42703"),
        ("SELEC 1", ErrorKind::Other, "42601"),
        (
            "SET TRANSACTION READ ONLY; INSERT INTO p VALUES (5)",
            ErrorKind::ReadOnly,
            "25006",
        ),
    ];
    for (text, expected, code) in cases {
        let err = db
            .write(|c| {
                if let Some((first, second)) = text.split_once("; ") {
                    c.batch(first)?;
                    return c.execute(second, &[]);
                }
                c.execute(text, &[])
            })
            .unwrap_err();
        match &err {
            StoreError::Postgres {
                kind,
                sqlstate,
                statement,
                ..
            } => {
                assert_eq!(
                    (*kind, sqlstate.as_deref()),
                    (expected, Some(code)),
                    "{err}"
                );
                assert!(statement.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    // A writer waiting for the advisory lock past the lock timeout is busy (55P03).
    let quick = Db::open(
        &url,
        PoolOptions {
            size: 1,
            checkout_timeout: Duration::from_millis(150),
            statement_timeout: None,
            connect_retries: 0,
        },
        write_key("kinds"),
    )
    .unwrap();
    let holding = Arc::new(Barrier::new(2));
    let holder = {
        let (db, holding) = (db.clone(), holding.clone());
        std::thread::spawn(move || {
            db.write(|c| {
                holding.wait();
                c.execute("SELECT pg_sleep(0.6)", &[])
            })
        })
    };
    holding.wait();
    let err = quick.write(|c| c.execute("SELECT 1", &[])).unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::Busy), "{err}");
    holder.join().unwrap().unwrap();
    // A server that is not there: the connection is lost.
    let gone = Db::open(&url_of(&url, "no_such_db"), opts(1), 1)
        .err()
        .unwrap();
    assert!(
        matches!(&gone, StoreError::Postgres { sqlstate: Some(c), .. } if c == "3D000"),
        "{gone}"
    );
    let nothing = Db::open(
        "postgresql://postgres@/x?host=/nonexistent&port=1",
        opts(1),
        1,
    )
    .err()
    .unwrap();
    assert_eq!(kind(&nothing), Some(ErrorKind::ConnectionLost), "{nothing}");
}

#[test]
fn a_server_restart_loses_nothing_committed() {
    let Some(mut server) = Server::start() else {
        skip();
        return;
    };
    let url = fresh_db(&server.url);
    let db = Db::open(&url, opts(2), write_key("restart")).unwrap();
    db.write(|c| c.batch("CREATE TABLE r (i int PRIMARY KEY)"))
        .unwrap();
    let count = |db: &Db| {
        db.read(|c| {
            c.query_opt("SELECT count(*), count(DISTINCT i) FROM r", &[], |r| {
                Ok((r.int(0)?, r.int(1)?))
            })
        })
        .map(Option::unwrap)
    };
    for i in 0..100 {
        if i == 40 || i == 70 {
            server.restart();
            // A read on the pooled (now stale) session recovers on a fresh one.
            assert_eq!(count(&db).unwrap(), (i, i));
        }
        if i == 55 {
            server.restart();
        }
        // A write whose stale session fails at BEGIN is retried on a fresh one (i == 55).
        db.write(|c| c.execute("INSERT INTO r VALUES ($1)", &[Value::Int(i)]))
            .unwrap();
    }
    assert_eq!(count(&db).unwrap(), (100, 100));
    // The connection lost inside a write: reported as such, nothing of it committed, and the
    // pool carries on.
    let err = db
        .write(|c| {
            c.execute("INSERT INTO r VALUES (1000)", &[])?;
            server.restart();
            c.execute("INSERT INTO r VALUES (1001)", &[])
        })
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::ConnectionLost), "{err}");
    assert_eq!(count(&db).unwrap(), (100, 100));
    let stats = db.stats();
    assert!(stats.closed >= 3 && stats.checked_out == 0, "{stats:?}");
}

#[test]
fn a_forked_child_opens_its_own_sessions() {
    let server = server_or_skip!();
    let db = Db::open(&fresh_db(&server), opts(2), 1).unwrap();
    let backend = |db: &Db| {
        db.read(|c| c.query_opt("SELECT pg_backend_pid()", &[], |r| r.int(0)))
            .unwrap()
            .unwrap()
    };
    let parent_backend = backend(&db);
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only uses this test's pool (no other test shares it) and then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let child_backend = backend(&db);
            let stats = db.stats();
            format!("{child_backend} {} {}", stats.opened, stats.closed)
        }))
        .unwrap_or_else(|_| "panic".to_owned());
        unsafe {
            libc::write(fds[1], answer.as_ptr().cast(), answer.len());
            libc::_exit(0);
        }
    }
    unsafe { libc::close(fds[1]) };
    let mut status = 0;
    let until = Instant::now() + Duration::from_secs(30);
    while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0 {
        if Instant::now() > until {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut buf = [0u8; 128];
    let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
    unsafe { libc::close(fds[0]) };
    let answer = String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned();
    let parts: Vec<i64> = answer.split(' ').filter_map(|p| p.parse().ok()).collect();
    assert_eq!(parts.len(), 3, "{answer}");
    // The child had its own backend, opened one session, closed none of the parent's.
    assert_ne!(parts[0], parent_backend);
    assert_eq!((parts[1], parts[2]), (1, 0));
    // The parent's session is intact (same backend) after the child exited.
    assert_eq!(backend(&db), parent_backend);
    assert_eq!(db.stats().closed, 0);
}

/// Lines of a schema-only pg_dump, as scripts/pg_stock_schema.py keeps them.
fn ddl_lines(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| {
            !l.is_empty()
                && ![
                    "--",
                    "SET ",
                    "SELECT pg_catalog.set_config",
                    "\\restrict",
                    "\\unrestrict",
                ]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

fn marks(db: &Db) -> Vec<String> {
    db.read(|c| {
        c.query(
            "SELECT name FROM secondary_indexes WHERE migration_completed IS NOT NULL ORDER BY name",
            &[],
            |r| r.text(0),
        )
    })
    .unwrap()
}

#[test]
fn the_schema_created_is_stocks() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let db = Db::open(&url, opts(2), 1).unwrap();
    for storage in Storage::ALL {
        assert_eq!(schema::ensure(&db, storage).unwrap(), Created::Created);
        assert_eq!(schema::ensure(&db, storage).unwrap(), Created::Present);
    }
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/pg-stock-schema.sql"
    ))
    .unwrap();
    let target = url::parse(&url, Duration::from_secs(5), None).unwrap();
    let host = match &target.config.get_hosts()[0] {
        postgres::config::Host::Unix(p) => p.display().to_string(),
        postgres::config::Host::Tcp(h) => h.clone(),
    };
    let dump = Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", "--no-privileges"])
        .args(["-h", &host, "-p", &target.config.get_ports()[0].to_string()])
        .args(["-U", target.config.get_user().unwrap()])
        .arg(target.config.get_dbname().unwrap())
        .output()
        .expect("pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let ours = ddl_lines(&String::from_utf8(dump.stdout).unwrap());
    let stock = ddl_lines(&reference);
    assert_eq!(ours, stock);
    // The stamp and the data-migration marks of the reference's header.
    let layout = db.read(Layout::read).unwrap();
    assert_eq!(
        layout.revision.as_deref(),
        Some(crate::store::schema::HEAD_REVISION)
    );
    let header_marks: Vec<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("--   "))
        .map(str::to_owned)
        .collect();
    assert_eq!(marks(&db), header_marks);
    assert_eq!(layout.run_tags_layout(), RunTagsLayout::Fresh);
    assert_eq!(layout.id_type("runs"), Some("bigint"));
    for storage in Storage::ALL {
        schema::check(&layout, storage, db.location()).unwrap();
    }
}

#[test]
fn the_event_log_is_one_database() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let db = Arc::new(
        crate::store::Db::open_postgres(&url, Some(2), "events", Storage::EventLog).unwrap(),
    );
    let log = crate::store::EventLog::Single(db.clone());
    // No file names: any run id is a value; runs and index are the one database, written once.
    assert!(log.check_run_id("../not/a/path").is_ok());
    assert!(!log.mirrors_status_events());
    assert!(Arc::ptr_eq(&log.run_db("r1").unwrap(), &db));
    assert!(Arc::ptr_eq(&log.index_db().unwrap(), &db));
    assert!(!log.run_exists("r1").unwrap());
    assert_eq!(log.run_ids().unwrap(), Vec::<String>::new());
    for run_id in ["r2", "r1", "r2"] {
        let mut insert =
            crate::store::Sql::new("INSERT INTO event_logs (run_id, event, timestamp) VALUES (");
        insert
            .bind(run_id)
            .push(", '{}', ")
            .bind("2026-12-08 00:00:00.000000")
            .push(")");
        db.write(|c| c.execute(&insert)).unwrap();
    }
    assert!(log.run_exists("r1").unwrap());
    assert!(!log.run_exists("r3").unwrap());
    assert_eq!(log.run_ids().unwrap(), ["r1", "r2"]);
    assert!(log.shards().is_none());
    log.wipe().unwrap();
    // The rows are the domain's to clear (they are the index's there).
    assert_eq!(log.run_ids().unwrap(), ["r1", "r2"]);
}

/// The storage domain over `EventLog::Single` (the core's PostgreSQL event log): stock
/// dagster-postgres's partition upsert, and claims from many threads, each on a session of its
/// own, never holding more slots than the limit.
#[test]
fn the_storage_domain_on_one_database() {
    use crate::core::{event_log_of, Source};
    use crate::storage::Storage;
    use crate::store::Durability;

    let server = server_or_skip!();
    let url = fresh_db(&server);
    let source = Source::postgres(&url, Some(4)).unwrap();
    let log = event_log_of(&source, Durability::Full).unwrap();
    assert!(log.shards().is_none());
    // One database per URL in the process: a second open shares it.
    let again = event_log_of(&source, Durability::Full).unwrap();
    assert!(Arc::ptr_eq(
        &log.index_db().unwrap(),
        &again.index_db().unwrap()
    ));
    let storage = Arc::new(Storage::on(log));
    let name = Value::Text("letters".into());
    let text = |s: &str| Value::Text(s.into());
    // A key stored, or given twice, is skipped, as dagster-postgres's ON CONFLICT DO NOTHING.
    assert_eq!(
        storage
            .add_partitions(&name, &[text("a"), text("b"), text("a")])
            .unwrap(),
        2
    );
    assert_eq!(
        storage
            .add_partitions(&name, &[text("b"), text("c")])
            .unwrap(),
        1
    );
    assert_eq!(
        storage.partitions(&name).unwrap(),
        [text("a"), text("b"), text("c")]
    );
    let page = storage.partition_page(&name, None, false, 2).unwrap();
    assert_eq!(
        page.iter().map(|r| r.partition.clone()).collect::<Vec<_>>(),
        [text("c"), text("b")]
    );
    assert!(storage.has_partition(&name, &text("c")).unwrap());
    storage.delete_partition(&name, &text("c")).unwrap();
    assert!(!storage.has_partition(&name, &text("c")).unwrap());

    const LIMIT: usize = 2;
    storage.set_slots("pool", LIMIT as i64).unwrap();
    let holders = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (storage, holders, most, barrier) = (
                storage.clone(),
                holders.clone(),
                most.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let run_id = format!("run{t}");
                for step in 0..3 {
                    let step = format!("s{step}");
                    while !storage.claim("pool", &run_id, &step, None).unwrap().claimed {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    holders.fetch_sub(1, Ordering::SeqCst);
                    storage.free(&run_id, Some(&step)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= LIMIT);
    let rows = storage.pool_rows(&["pool".to_owned()]).unwrap();
    assert_eq!(rows.slots.len(), LIMIT);
    assert!(rows.slots.iter().all(|s| s.run_id.is_none()));
    assert!(rows.pending_steps.is_empty());
}

#[test]
fn concurrent_creators_all_succeed_once() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let start = Arc::new(Barrier::new(6));
    let creators: Vec<_> = (0..6)
        .map(|n| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                // Different options: separate pools, as separate processes would have.
                let db = Db::open(&url, opts(1 + n), 1).unwrap();
                start.wait();
                Storage::ALL.map(|s| schema::ensure(&db, s).unwrap())
            })
        })
        .collect();
    let results: Vec<[Created; 3]> = creators.into_iter().map(|c| c.join().unwrap()).collect();
    for i in 0..3 {
        let created = results.iter().filter(|r| r[i] == Created::Created).count();
        assert_eq!(created, 1, "{:?}: {results:?}", Storage::ALL[i]);
    }
    let db = Db::open(&url, opts(1), 1).unwrap();
    assert_eq!(marks(&db).len(), 11);
    let layout = db.read(Layout::read).unwrap();
    assert_eq!(layout.tables.len(), 22);
}

#[test]
fn older_revisions_and_layouts_are_judged() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let db = Db::open(&url, opts(1), 1).unwrap();
    for storage in Storage::ALL {
        schema::ensure(&db, storage).unwrap();
    }
    let layout = |db: &Db| db.read(Layout::read).unwrap();
    // An older revision that lacks nothing is served; one that lacks a column is refused with
    // the SQLite side's message (naming `dagster instance migrate`).
    db.write(|c| {
        c.execute(
            "UPDATE alembic_version SET version_num = 'f495c27d5019'",
            &[],
        )
    })
    .unwrap();
    schema::check(&layout(&db), Storage::Runs, db.location()).unwrap();
    db.write(|c| {
        c.batch("DROP INDEX idx_runs_by_backfill_id; ALTER TABLE runs DROP COLUMN backfill_id")
    })
    .unwrap();
    let err = schema::check(&layout(&db), Storage::Runs, db.location()).unwrap_err();
    match &err {
        StoreError::MissingSchema {
            missing, revision, ..
        } => {
            assert_eq!(
                (missing.as_slice(), revision.as_str()),
                (&["runs.backfill_id".to_owned()][..], "f495c27d5019")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("dagster instance migrate"),
        "{err}"
    );
    schema::check(&layout(&db), Storage::Schedules, db.location()).unwrap();
    // A revision this Dagster does not know: a newer Dagster's.
    db.write(|c| {
        c.execute(
            "UPDATE alembic_version SET version_num = 'ffffffffffff'",
            &[],
        )
    })
    .unwrap();
    assert!(matches!(
        schema::check(&layout(&db), Storage::Schedules, db.location()),
        Err(StoreError::UnknownRevision { .. })
    ));
    // Migration 047's run_tags layout, and int4 ids from before the bigint migration.
    db.write(|c| {
        c.batch(
            "CREATE UNIQUE INDEX idx_run_tags_run_id ON run_tags (key, value, run_id); \
             DROP INDEX idx_run_tags; ALTER TABLE run_tags ALTER COLUMN id TYPE integer",
        )
    })
    .unwrap();
    let l = layout(&db);
    assert_eq!(l.run_tags_layout(), RunTagsLayout::Migrated047);
    assert_eq!(l.id_type("run_tags"), Some("integer"));
    assert_eq!(l.id_type("runs"), Some("bigint"));
    db.write(|c| c.batch("DROP INDEX idx_run_tags_run_idx"))
        .unwrap();
    assert_eq!(
        layout(&db).run_tags_layout(),
        RunTagsLayout::Other(vec!["idx_run_tags_run_id".into(), "run_tags_pkey".into()])
    );
    // An int4 id column takes and gives back ints as an int8 one does.
    let id = db
        .write(|c| {
            c.execute("INSERT INTO runs (run_id) VALUES ('r')", &[])?;
            c.query_opt(
                "INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3) RETURNING id",
                &[Value::from("r"), Value::from("k"), Value::from("v")],
                |r| r.int(0),
            )
        })
        .unwrap();
    let again = db
        .read(|c| {
            c.query_opt(
                "SELECT id FROM run_tags WHERE id = $1",
                &[Value::Int(id.unwrap())],
                |r| r.int(0),
            )
        })
        .unwrap();
    assert_eq!(again, id);
}

/// The pool's own figures (ARCHITECTURE.md, "The PostgreSQL backend"); not a test of speed: run
/// with `--ignored --nocapture`.
#[test]
#[ignore]
fn figures() {
    let server = server_or_skip!();
    let url = fresh_db(&server);
    let target = url::parse(&url, Duration::from_secs(5), None).unwrap();
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        drop(target.config.connect(postgres::NoTls).unwrap());
    }
    let connect = t.elapsed() / n;
    let db = Db::open(&url, opts(1), 1).unwrap();
    let n = 5000;
    let t = Instant::now();
    for i in 0..n {
        db.read(|c| c.query_opt("SELECT $1::int8", &[Value::Int(i.into())], |r| r.int(0)))
            .unwrap();
    }
    let read = t.elapsed() / n;
    db.write(|c| c.batch("CREATE TABLE f (i int8)")).unwrap();
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        db.write(|c| c.execute("INSERT INTO f VALUES ($1)", &[Value::Int(i.into())]))
            .unwrap();
    }
    let write = t.elapsed() / n;
    eprintln!(
        "connect (unix socket, startup + auth): {connect:?}; pooled read of one statement: \
         {read:?}; write (BEGIN+lock, INSERT, COMMIT): {write:?}"
    );
}

/// A CA and a server certificate for `localhost` it signed, as PEM files in `dir`.
fn certificates(dir: &std::path::Path) -> (String, String, String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    let make = |cn: &str, issuer: Option<(&X509, &PKey<openssl::pkey::Private>)>, ca: bool| {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(
            &BigNum::from_u32(if ca { 1 } else { 2 })
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        if ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build().unwrap())
                .unwrap();
        } else {
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        b.sign(issuer.map_or(&key, |(_, k)| k), MessageDigest::sha256())
            .unwrap();
        (b.build(), key)
    };
    let (ca, ca_key) = make("dagster-rs test CA", None, true);
    let (other_ca, _) = make("another CA", None, true);
    let (cert, key) = make("localhost", Some((&ca, &ca_key)), false);
    let write = |name: &str, pem: Vec<u8>, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let key_path = write("server.key", key.private_key_to_pem_pkcs8().unwrap(), 0o600);
    if unsafe { libc::geteuid() } == 0 {
        // The server runs as `postgres` and must own its key.
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        assert!(!pw.is_null());
        let c_path = std::ffi::CString::new(key_path.clone()).unwrap();
        unsafe { libc::chown(c_path.as_ptr(), (*pw).pw_uid, (*pw).pw_gid) };
    }
    (
        write("ca.pem", ca.to_pem().unwrap(), 0o644),
        write("other-ca.pem", other_ca.to_pem().unwrap(), 0o644),
        write("server.pem", cert.to_pem().unwrap(), 0o644),
        key_path,
    )
}

#[test]
fn tls_follows_sslmode() {
    let dir = tempfile::Builder::new()
        .prefix("dagrs-tls")
        .tempdir()
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (ca, other_ca, cert, key) = certificates(dir.path());
    let cluster = serde_json::json!({
        "tcp": true,
        "settings": {"ssl": "on", "ssl_cert_file": cert, "ssl_key_file": key},
    });
    let Some(server) = Server::start_with(&cluster.to_string()) else {
        skip();
        return;
    };
    let port = server.port;
    let encrypted = |url: &str| -> Result<bool, StoreError> {
        let db = Db::open(url, opts(1), 1)?;
        db.read(|c| {
            c.query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
                |r| r.bool(0),
            )
        })
        .map(|v| v.unwrap())
    };
    let tcp =
        |host: &str, query: &str| format!("postgresql://postgres@{host}:{port}/postgres?{query}");
    // libpq's default (prefer) and require encrypt without verifying the server.
    assert!(encrypted(&tcp("127.0.0.1", "")).unwrap());
    assert!(encrypted(&tcp("127.0.0.1", "sslmode=require")).unwrap());
    assert!(!encrypted(&tcp("127.0.0.1", "sslmode=disable")).unwrap());
    // verify-ca checks the chain, verify-full the host name too.
    assert!(encrypted(&tcp(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}")
    ))
    .unwrap());
    assert!(encrypted(&tcp(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}")
    ))
    .unwrap());
    let wrong_host = encrypted(&tcp(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert_eq!(
        kind(&wrong_host.unwrap_err()),
        Some(ErrorKind::ConnectionLost)
    );
    let wrong_ca = encrypted(&tcp(
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={other_ca}"),
    ));
    let err = wrong_ca.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::ConnectionLost), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // A unix socket never negotiates TLS, whatever sslmode says (as libpq).
    assert!(!encrypted(&format!("{}&sslmode=require", server.url)).unwrap());
}
