//! The run_launcher domain's storage reads: what `DagsterInstance.count_resume_run_attempts`
//! (and so `run_will_resume`) asks of the event log, as one native call on the run's shard.
//!
//! Stock reads every `ENGINE_EVENT` of the run back into Python objects (`all_logs`) and counts
//! those whose message is the run monitor's resume marker. Here one statement on the run's shard
//! reads the bodies and each is checked in Rust, nothing crossing into Python but the count. A
//! body this reading does not understand makes the call answer `None`, and the caller takes
//! stock's path, which deserializes (or raises) exactly as stock does.
//!
//! The state machine of `launch_run`, `resume_run` and a failed submit / launch / resume lives
//! in `steps.rs`: each step one call that reads the run, writes the events stock reports and the
//! run's status transition (`bodies.rs` builds their text). The run coordinator and run launcher
//! stay the configured Python objects, called between the steps by
//! `dagster_rs.run_launcher_domain`.

pub mod bindings;
pub mod bodies;
pub mod steps;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value as Json;

use crate::errors::{EventsError, RunLauncherError};
use crate::events::{valid_run_id, Events};
use crate::runs::Runs;
use crate::store::{Durability, Shards, Sql, StatementPlan};

type Result<T> = std::result::Result<T, EventsError>;

/// The run_launcher domain's store: its reads over the event log's shards, and its steps over
/// those shards and `runs.db` (opened on the first step: a core whose runs domain is off never
/// opens the file through here).
pub struct RunLaunch {
    shards: Arc<Shards>,
    events: Events,
    runs_db: PathBuf,
    durability: Durability,
    runs: OnceLock<Arc<Runs>>,
}

/// A run's engine-event bodies, as stock's `all_logs(run_id, of_type=ENGINE_EVENT)` selects them.
fn engine_events(run_id: &str) -> Sql {
    let mut q = Sql::new("SELECT event_logs.event FROM event_logs WHERE event_logs.run_id = ");
    q.bind(run_id)
        .push(" AND event_logs.dagster_event_type = ")
        .bind("ENGINE_EVENT");
    q
}

/// `EventLogEntry.message` of a stored body: the Dagster event's message when there is an event
/// and its message is not null, else `user_message`. `None` when the body is not an
/// `EventLogEntry` this reading understands.
fn message_of(body: &str) -> Option<Option<String>> {
    let entry: Json = serde_json::from_str(body).ok()?;
    let entry = entry.as_object()?;
    if entry.get("__class__")?.as_str()? != "EventLogEntry" {
        return None;
    }
    let text = |v: &Json| -> Option<Option<String>> {
        match v {
            Json::Null => Some(None),
            Json::String(s) => Some(Some(s.clone())),
            _ => None,
        }
    };
    match entry.get("dagster_event") {
        None | Some(Json::Null) => {}
        Some(Json::Object(event)) => {
            if event.get("__class__")?.as_str()? != "DagsterEvent" {
                return None;
            }
            if let Some(message) = text(event.get("message").unwrap_or(&Json::Null))? {
                return Some(Some(message));
            }
        }
        Some(_) => return None,
    }
    text(entry.get("user_message")?)
}

impl RunLaunch {
    pub fn on(shards: Arc<Shards>, runs_db: PathBuf, durability: Durability) -> RunLaunch {
        RunLaunch {
            events: Events::on(shards.clone()),
            shards,
            runs_db,
            durability,
            runs: OnceLock::new(),
        }
    }

    /// The runs store of `runs.db`, the process's shared one.
    fn runs(&self) -> std::result::Result<&Arc<Runs>, RunLauncherError> {
        if let Some(runs) = self.runs.get() {
            return Ok(runs);
        }
        let runs = crate::instance::runs_store(&self.runs_db, self.durability)?;
        Ok(self.runs.get_or_init(|| runs))
    }

    pub fn shards(&self) -> &Arc<Shards> {
        &self.shards
    }

    /// Close the idle connections of its shards and, when a step opened it, of runs.db.
    pub fn dispose(&self) {
        self.shards.dispose();
        if let Some(runs) = self.runs.get() {
            runs.dispose();
        }
    }

    /// Forget the indexes of its shards and runs.db; each is read again when needed.
    pub fn reload_layouts(&self) {
        self.shards.reload_layouts();
        if let Some(runs) = self.runs.get() {
            runs.reload_layout();
        }
    }

    /// How many of the run's engine events carry `marker` as their message; `None` when a body
    /// is not one this reading understands (the caller then counts as stock does). A run without
    /// a shard has none (and no file is created).
    pub fn count_engine_messages(&self, run_id: &str, marker: &str) -> Result<Option<i64>> {
        valid_run_id(run_id)?;
        if !self.shards.run_exists(run_id) {
            return Ok(Some(0));
        }
        let shard = self.shards.run(run_id)?;
        let q = engine_events(run_id);
        let bodies: Vec<String> = shard.read(|c| c.query(&q, |r| r.text(0)))?;
        let mut count = 0;
        for body in &bodies {
            match message_of(body) {
                Some(message) => count += i64::from(message.as_deref() == Some(marker)),
                None => return Ok(None),
            }
        }
        Ok(Some(count))
    }

    /// The plan of the domain's statement on a run's shard (an existing one; none is created).
    pub fn query_plans(&self, run_id: &str) -> Result<Vec<StatementPlan>> {
        valid_run_id(run_id)?;
        if !self.shards.run_exists(run_id) {
            return Ok(Vec::new());
        }
        let shard = self.shards.run(run_id)?;
        Ok(shard.read(|c| c.plans(vec![("engine events", engine_events(run_id))]))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_prefers_the_events_own() {
        let body = r#"{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "message": "m"}, "user_message": "u"}"#;
        assert_eq!(message_of(body), Some(Some("m".into())));
        let body = r#"{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "message": null}, "user_message": "u"}"#;
        assert_eq!(message_of(body), Some(Some("u".into())));
        let body = r#"{"__class__": "EventLogEntry", "dagster_event": null, "user_message": "u"}"#;
        assert_eq!(message_of(body), Some(Some("u".into())));
    }

    #[test]
    fn unknown_bodies_are_left_to_stock() {
        assert_eq!(message_of("not json"), None);
        assert_eq!(message_of(r#"{"__class__": "Other"}"#), None);
        assert_eq!(
            message_of(r#"{"__class__": "EventLogEntry", "dagster_event": 3}"#),
            None
        );
        assert_eq!(
            message_of(r#"{"__class__": "EventLogEntry", "dagster_event": null}"#),
            None
        );
    }
}
