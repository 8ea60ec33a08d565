//! PostgreSQL connections (issue 16 groundwork, behind the `postgres` cargo feature).
//!
//! Only what the next step builds on: a connection from a dagster-postgres URL, with the session
//! settings every dagster-rs connection will carry. The pool, the dialect and the domains come
//! with the backend seam (docs/notes-pg-seam.md §4).

use postgres::{Client, Config, NoTls};

/// Why a PostgreSQL connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] postgres::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] postgres::Error),
}

/// `url` as users write it for dagster-postgres: `postgresql://`, `postgres://`, and
/// SQLAlchemy's driver-qualified `postgresql+psycopg2://` / `postgresql+psycopg://`, which name
/// the same server (libpq parameters such as `host=<socket dir>` in the query string).
pub fn config(url: &str) -> Result<Config, ConnectError> {
    let libpq = match url.split_once("://") {
        Some((scheme, rest)) if scheme.starts_with("postgresql+") => format!("postgresql://{rest}"),
        _ => url.to_owned(),
    };
    let mut config: Config = libpq.parse().map_err(ConnectError::Url)?;
    config.application_name("dagster-rs");
    // Stock stores naive timestamps and requires the session in UTC.
    config.options("-c TimeZone=UTC");
    Ok(config)
}

/// One connection (no TLS yet: unix sockets and `sslmode=disable`/`prefer` servers only).
pub fn connect(url: &str) -> Result<Client, ConnectError> {
    config(url)?.connect(NoTls).map_err(ConnectError::Connect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    /// A throwaway server from `python -m dagster_rs.pg_cluster` (PYO3_PYTHON's, with python/ on
    /// its path), alive while the returned child's stdin is open; `None` (test skipped) when it
    /// cannot be started here. DAGSTER_RS_TEST_PG_URL names an existing server instead.
    fn server() -> Option<(String, Option<Child>)> {
        if let Ok(url) = std::env::var("DAGSTER_RS_TEST_PG_URL") {
            return Some((url, None));
        }
        let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .args(["-m", "dagster_rs.pg_cluster"])
            .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        if !line.starts_with("postgresql://") {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some((line.trim().to_owned(), Some(child)))
    }

    #[test]
    fn driver_qualified_urls_name_the_same_server() {
        let plain = config("postgresql://u@/db?host=/tmp/s&port=5433").unwrap();
        let qualified = config("postgresql+psycopg2://u@/db?host=/tmp/s&port=5433").unwrap();
        assert_eq!(plain.get_hosts(), qualified.get_hosts());
        assert_eq!(plain.get_ports(), [5433]);
        assert_eq!(qualified.get_dbname(), Some("db"));
        assert!(config("mysql://x").is_err());
    }

    #[test]
    fn connects_over_the_unix_socket_in_utc() {
        let Some((url, child)) = server() else {
            // CI sets it: a machine without the server binaries fails there, never passes unseen.
            assert!(
                std::env::var("DAGSTER_RS_REQUIRE_PG").as_deref() != Ok("1"),
                "DAGSTER_RS_REQUIRE_PG=1 but python -m dagster_rs.pg_cluster started no server"
            );
            eprintln!("skipped: no PostgreSQL server (python -m dagster_rs.pg_cluster failed)");
            return;
        };
        // A panic drops `child` and with it its stdin: the server stops then too.
        let result = {
            let mut client = connect(&url).expect("connect");
            let row = client
                .query_one(
                    "SELECT current_setting('TimeZone'), current_setting('application_name'), \
                     inet_server_addr() IS NULL, $1::int8 + 1",
                    &[&41i64],
                )
                .expect("query");
            let zone: String = row.get(0);
            let app: String = row.get(1);
            let unix_socket: bool = row.get(2);
            let answer: i64 = row.get(3);
            (zone, app, unix_socket, answer)
        };
        if let Some(mut child) = child {
            drop(child.stdin.take()); // the cluster stops when its stdin closes
            let _ = child.wait();
        }
        assert_eq!(result, ("UTC".into(), "dagster-rs".into(), true, 42));
    }
}
