//! What the run_launcher domain reads of the event log (`count_resume_run_attempts`): the
//! stored bodies of a run's engine events, as an events-domain method so the event-log SQL and
//! where a run's events are (its shard) stay in this domain.

use super::{Events, Result};
use crate::store::{Sql, StatementPlan};

/// A run's engine-event bodies, as stock's `all_logs(run_id, of_type=ENGINE_EVENT)` selects them.
fn engine_events(run_id: &str) -> Sql {
    let mut q = Sql::new("SELECT event_logs.event FROM event_logs WHERE event_logs.run_id = ");
    q.bind(run_id)
        .push(" AND event_logs.dagster_event_type = ")
        .bind("ENGINE_EVENT");
    q
}

impl Events {
    /// The stored bodies of a run's `ENGINE_EVENT`s. A run without events has none (and no
    /// file is created).
    pub fn engine_event_bodies(&self, run_id: &str) -> Result<Vec<String>> {
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        let q = engine_events(run_id);
        Ok(shard.read(|c| c.query(&q, |r| r.text(0)))?)
    }

    /// The plan of that read where the run's events are (none for a run without events).
    pub fn engine_event_plans(&self, run_id: &str) -> Result<Vec<StatementPlan>> {
        let Some(shard) = self.existing_shard(run_id)? else {
            return Ok(Vec::new());
        };
        Ok(shard.read(|c| c.plans(vec![("engine events", engine_events(run_id))]))?)
    }
}
