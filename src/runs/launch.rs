//! What the run_launcher domain's steps read and write of a run (`run_launcher/steps.rs`): the
//! run's row by id and `handle_run_event`'s transition of it, as runs-domain methods so the
//! runs SQL stays in this domain, whatever the backend.
//!
//! Timestamps arrive as POSIX seconds and are bound as a [`Value`] built here (`timestamp`):
//! the text stock's SQLite dialect stores for a naive UTC `DateTime`, which is also the text a
//! PostgreSQL `timestamp` parameter takes. The dialect is the place to render it once the store
//! has a timestamp value of its own.

use super::{Result, Runs};
use crate::store::{Sql, StatementPlan, Value};

/// The run's row by id (the runs table's unique index on `run_id`): body and status.
pub(super) fn run_row(run_id: &str) -> Sql {
    let mut q = Sql::new("SELECT runs.run_body, runs.status FROM runs WHERE runs.run_id = ");
    q.bind(run_id);
    q
}

/// `handle_run_event`'s update of a run's row (no tag changes for these events).
fn run_transition(
    run_id: &str,
    body: &str,
    status: &str,
    update_timestamp: Value,
    end_time: Option<f64>,
) -> Sql {
    let mut q = Sql::new("UPDATE runs SET run_body = ");
    q.bind(body)
        .push(", status = ")
        .bind(status)
        .push(", update_timestamp = ")
        .bind(update_timestamp);
    if let Some(t) = end_time {
        q.push(", end_time = ").bind(t);
    }
    q.push(" WHERE runs.run_id = ").bind(run_id);
    q
}

impl Runs {
    /// A run's status transition as `handle_run_event` writes it for the launch events: the
    /// new body and status, `update_timestamp` at `updated_at` (POSIX seconds) and, on
    /// failure, `end_time`. No row changes when the run is gone (stock's update finds none).
    pub fn launch_transition(
        &self,
        run_id: &str,
        body: &str,
        status: &str,
        updated_at: f64,
        end_time: Option<f64>,
    ) -> Result<()> {
        let q = run_transition(run_id, body, status, timestamp(updated_at), end_time);
        self.db.write(|c| {
            c.execute(&q)?;
            Ok(())
        })
    }

    /// The plans of the two statements above, as the steps run them.
    pub fn launch_plans(&self) -> Result<Vec<StatementPlan>> {
        let statements = vec![
            ("run row", run_row("r")),
            (
                "run transition",
                run_transition("r", "b", "S", timestamp(0.0), None),
            ),
            (
                "run transition with end_time",
                run_transition("r", "b", "S", timestamp(0.0), Some(1.0)),
            ),
        ];
        Ok(self.db.read(|c| c.plans(statements))?)
    }
}

/// `datetime.fromtimestamp(t, timezone.utc)`'s seconds and microseconds: the fraction rounded
/// half to even, as CPython's `_PyTime_ObjectToTimeval(..., ROUND_HALF_EVEN)` does.
fn split_timestamp(t: f64) -> (i64, i64) {
    let int_part = t.trunc();
    let mut frac = (t - int_part) * 1e6;
    let rounded = frac.round();
    frac = if (frac - rounded).abs() == 0.5 {
        2.0 * (frac / 2.0).round()
    } else {
        rounded
    };
    let mut secs = int_part;
    if frac >= 1e6 {
        frac -= 1e6;
        secs += 1.0;
    } else if frac < 0.0 {
        frac += 1e6;
        secs -= 1.0;
    }
    (secs as i64, frac as i64)
}

/// A timestamp as stock binds a naive UTC `DateTime`: `YYYY-MM-DD HH:MM:SS.ffffff`
/// (`SqlEventLogStorage._event_insert_timestamp`, the run's `update_timestamp`).
pub fn sql_datetime(t: f64) -> String {
    let (secs, micros) = split_timestamp(t);
    let (year, month, day) = crate::store::civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// A timestamp column's value for POSIX seconds `t` (see the module's note).
pub fn timestamp(t: f64) -> Value {
    Value::Text(sql_datetime(t))
}

/// `datetime_from_timestamp(t).timestamp()`: the timestamp at microsecond precision, as
/// stock's `handle_run_event` stores a run's `end_time` (an integer count of microseconds
/// divided once, correctly rounded, as Python's `timedelta.total_seconds` does).
pub fn microsecond_timestamp(t: f64) -> f64 {
    let (secs, micros) = split_timestamp(t);
    (secs * 1_000_000 + micros) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    #[test]
    fn datetimes_round_microseconds_half_to_even() {
        assert_eq!(sql_datetime(0.0), "1970-01-01 00:00:00.000000");
        assert_eq!(sql_datetime(1733112345.5), "2024-12-02 04:05:45.500000");
        assert_eq!(sql_datetime(951782400.0), "2000-02-29 00:00:00.000000");
        // 0.9999995 s rounds up into the next second.
        assert_eq!(sql_datetime(59.9999996), "1970-01-01 00:01:00.000000");
        assert_eq!(microsecond_timestamp(1.0000004), 1.0);
        assert_eq!(
            timestamp(1.5),
            Value::Text("1970-01-01 00:00:01.500000".into())
        );
    }

    #[test]
    fn a_transition_writes_the_row_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::open(
            &dir.path().join("runs.db").to_string_lossy(),
            Durability::Off,
        )
        .unwrap();
        assert_eq!(runs.run_by_id("r").unwrap(), None);
        runs.db
            .write(|c| {
                c.execute(&Sql::new(
                    "INSERT INTO runs (run_id, run_body, status) VALUES ('r', 'b0', 'NOT_STARTED')",
                ))?;
                Ok::<_, crate::errors::StoreError>(())
            })
            .unwrap();
        runs.launch_transition("r", "b1", "FAILURE", 1.5, Some(1.5))
            .unwrap();
        assert_eq!(
            runs.run_by_id("r").unwrap(),
            Some((Some("b1".into()), "FAILURE".into()))
        );
        let (updated, end): (String, Option<f64>) = runs
            .db
            .read(|c| {
                c.query_opt(
                    &Sql::new("SELECT update_timestamp, end_time FROM runs WHERE run_id = 'r'"),
                    |r| Ok((r.text(0)?, r.opt_real(1)?)),
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(updated, "1970-01-01 00:00:01.500000");
        assert_eq!(end, Some(1.5));
        // A run deleted meanwhile: nothing to update, no error.
        runs.launch_transition("gone", "b", "FAILURE", 2.0, None)
            .unwrap();
        assert_eq!(runs.launch_plans().unwrap().len(), 3);
    }
}
