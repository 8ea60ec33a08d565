//! The run_launcher domain's storage reads: what `DagsterInstance.count_resume_run_attempts`
//! (and so `run_will_resume`) asks of the event log, as one native call on the run's shard.
//!
//! Stock reads every `ENGINE_EVENT` of the run back into Python objects (`all_logs`) and counts
//! those whose message is the run monitor's resume marker. Here one statement on the run's shard
//! reads the bodies and each is checked in Rust, nothing crossing into Python but the count. A
//! body this reading does not understand makes the call answer `None`, and the caller takes
//! stock's path, which deserializes (or raises) exactly as stock does.
//!
//! The orchestration of `submit_run`, `launch_run` and `resume_run` stays stock's Python (see
//! ARCHITECTURE.md, run_launcher): their writes are the events domain's.

pub mod bindings;

use std::sync::Arc;

use serde_json::Value as Json;

use crate::errors::EventsError;
use crate::events::valid_run_id;
use crate::store::{Shards, Sql, StatementPlan};

type Result<T> = std::result::Result<T, EventsError>;

/// The run_launcher domain's reads over the event log's shards.
pub struct RunLaunch {
    shards: Arc<Shards>,
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
    pub fn on(shards: Arc<Shards>) -> RunLaunch {
        RunLaunch { shards }
    }

    pub fn shards(&self) -> &Arc<Shards> {
        &self.shards
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
