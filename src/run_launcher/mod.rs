//! The run_launcher domain's storage reads: what `DagsterInstance.count_resume_run_attempts`
//! (and so `run_will_resume`) asks of the event log, as one native call on the run's shard.
//!
//! Stock reads every `ENGINE_EVENT` of the run back into Python objects (`all_logs`) and counts
//! those whose message is the run monitor's resume marker. Here the events domain reads the
//! bodies (one statement on the run's shard) and each is checked in Rust, nothing crossing into
//! Python but the count. A body this reading does not understand makes the call answer `None`,
//! and the caller takes stock's path, which deserializes (or raises) exactly as stock does.
//!
//! The state machine of `launch_run`, `resume_run` and a failed submit / launch / resume lives
//! in `steps.rs`: each step one call that reads the run, writes the events stock reports and the
//! run's status transition (`bodies.rs` builds their text), through the events and runs
//! domains' methods (`events/launch.rs`, `runs/launch.rs`). The run coordinator and run launcher
//! stay the configured Python objects, called between the steps by
//! `dagster_rs.run_launcher_domain`.

pub mod bindings;
pub mod bodies;
pub mod steps;

use std::sync::Arc;

use serde_json::Value as Json;

use crate::errors::EventsError;
use crate::events::Events;
use crate::runs::Runs;
use crate::store::{Shards, StatementPlan};

type Result<T> = std::result::Result<T, EventsError>;

/// The run_launcher domain's store: its reads over the event log, and its steps over the event
/// log and the runs store, both handed to it (by the core), each domain's SQL its own.
pub struct RunLaunch {
    shards: Arc<Shards>,
    events: Events,
    runs: Arc<Runs>,
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
    pub fn on(shards: Arc<Shards>, runs: Arc<Runs>) -> RunLaunch {
        RunLaunch {
            events: Events::on(shards.clone()),
            shards,
            runs,
        }
    }

    pub fn shards(&self) -> &Arc<Shards> {
        &self.shards
    }

    /// Close the idle connections of its shards and of the runs store.
    pub fn dispose(&self) {
        self.shards.dispose();
        self.runs.dispose();
    }

    /// Forget the indexes of its shards and of the runs store; each is read again when needed.
    pub fn reload_layouts(&self) {
        self.shards.reload_layouts();
        self.runs.reload_layout();
    }

    /// How many of the run's engine events carry `marker` as their message; `None` when a body
    /// is not one this reading understands (the caller then counts as stock does). A run without
    /// events has none (and no file is created).
    pub fn count_engine_messages(&self, run_id: &str, marker: &str) -> Result<Option<i64>> {
        let mut count = 0;
        for body in &self.events.engine_event_bodies(run_id)? {
            match message_of(body) {
                Some(message) => count += i64::from(message.as_deref() == Some(marker)),
                None => return Ok(None),
            }
        }
        Ok(Some(count))
    }

    /// The plan of the domain's event-log read for a run (none when the run has no events).
    pub fn query_plans(&self, run_id: &str) -> Result<Vec<StatementPlan>> {
        self.events.engine_event_plans(run_id)
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
