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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::events::{Effect, EventRow};
    use crate::store::{Durability, Shards};

    fn row(run_id: &str, kind: &str, event: &str) -> EventRow {
        EventRow {
            run_id: run_id.to_owned(),
            event: event.to_owned(),
            dagster_event_type: Some(kind.to_owned()),
            timestamp: "2026-01-01 00:00:00.000000".to_owned(),
            step_key: None,
            asset_key: None,
            partition: None,
            mirror: false,
            effect: Effect::None,
        }
    }

    #[test]
    fn engine_event_bodies_are_the_runs_own() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::on(Arc::new(Shards::new(dir.path(), Durability::Off)));
        assert_eq!(
            events.engine_event_bodies("r").unwrap(),
            Vec::<String>::new()
        );
        assert!(events.engine_event_plans("r").unwrap().is_empty());
        // Reading a run without events created nothing.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        events
            .store_events(&[
                row("r", "ENGINE_EVENT", "a"),
                row("r", "STEP_START", "b"),
                row("r", "ENGINE_EVENT", "c"),
                row("other", "ENGINE_EVENT", "d"),
            ])
            .unwrap();
        assert_eq!(events.engine_event_bodies("r").unwrap(), ["a", "c"]);
        assert_eq!(events.engine_event_plans("r").unwrap().len(), 1);
        assert!(events.engine_event_bodies("../x").is_err());
    }
}
