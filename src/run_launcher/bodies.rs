//! The text stock stores for the run_launcher domain's writes, built natively: the
//! `EventLogEntry` bodies of the events `launch_run` / `resume_run` / a failed submit or launch
//! report and the run body after its status transition (the timestamps' text forms are the
//! runs domain's: `runs/launch.rs`).
//!
//! Each body is byte for byte what stock's `serialize_value` writes for the objects stock builds
//! (`json.dumps(sort_keys=True)`, ASCII-only): those objects are fixed apart from a handful of
//! values (run id, job name, message, level, timestamp, an engine error), so their text is a
//! template with those values escaped into it. The engine error (`SerializableErrorInfo`, which
//! may nest causes and contexts) comes serialized from Python (`dagster_rs.serdes.serialize`).
//! `tests/run_launcher/test_native_bodies.py` compares every body with stock's over awkward
//! inputs.

use std::fmt::Write;

use serde_json::Value as Json;

use crate::serdes::escape_into as json_str;

/// Python's `float.__repr__` (which `json.dumps` uses) of a finite float: the shortest text
/// that reads back as the same float, positional between 1e-4 and 1e16, else scientific with a
/// signed exponent of at least two digits.
pub fn py_float(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let mut text = format!("{value}");
        if !text.contains('.') {
            text.push_str(".0");
        }
        return text;
    }
    // Rust's `{:e}` is shortest too: `1.5e-5` → Python's `1.5e-05`.
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').expect("{:e} has an exponent");
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// `logging.INFO` / `logging.ERROR`, the levels stock reports these events at.
pub const INFO: i64 = 20;
pub const ERROR: i64 = 40;

/// What an event's `DagsterEvent.event_specific_data` is.
pub enum Specific<'a> {
    /// `None` (the launch's `PIPELINE_STARTING`, `report_run_failed`'s `PIPELINE_FAILURE`).
    Nothing,
    /// `EngineEventData({})`, or `EngineEventData.engine_error(error)` with the error's
    /// serialized text.
    Engine { error: Option<&'a str> },
}

/// One event the domain reports, as `report_dagster_event` wraps it in an `EventLogEntry`.
pub struct Reported<'a> {
    pub run_id: &'a str,
    pub job_name: &'a str,
    pub event_type: &'a str,
    pub message: Option<&'a str>,
    pub specific: Specific<'a>,
    pub level: i64,
    pub timestamp: f64,
}

impl Reported<'_> {
    /// `serialize_value(EventLogEntry(user_message="", level=..., job_name=..., run_id=...,
    /// error_info=None, timestamp=..., step_key=None, dagster_event=DagsterEvent(...)))`.
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(640);
        out.push_str(
            "{\"__class__\": \"EventLogEntry\", \"dagster_event\": {\"__class__\": \
             \"DagsterEvent\", \"event_specific_data\": ",
        );
        match self.specific {
            Specific::Nothing => out.push_str("null"),
            Specific::Engine { error } => {
                out.push_str("{\"__class__\": \"EngineEventData\", \"error\": ");
                out.push_str(error.unwrap_or("null"));
                out.push_str(
                    ", \"marker_end\": null, \"marker_start\": null, \"metadata_entries\": []}",
                );
            }
        }
        out.push_str(", \"event_type_value\": ");
        json_str(self.event_type, &mut out);
        out.push_str(", \"logging_tags\": {}, \"message\": ");
        match self.message {
            Some(message) => json_str(message, &mut out),
            None => out.push_str("null"),
        }
        out.push_str(", \"pid\": null, \"pipeline_name\": ");
        json_str(self.job_name, &mut out);
        out.push_str(
            ", \"solid_handle\": null, \"step_handle\": null, \"step_key\": null, \
             \"step_kind_value\": null}, \"error_info\": null, \"level\": ",
        );
        write!(out, "{}", self.level).expect("writing to a String");
        out.push_str(", \"message\": \"\", \"pipeline_name\": ");
        json_str(self.job_name, &mut out);
        out.push_str(", \"run_id\": ");
        json_str(self.run_id, &mut out);
        out.push_str(", \"step_key\": null, \"timestamp\": ");
        out.push_str(&py_float(self.timestamp));
        out.push_str(", \"user_message\": \"\"}");
        out
    }
}

/// The top-level keys `serialize_value(DagsterRun)` writes, in its (sorted) order. A stored
/// body with exactly these is one this version wrote; anything else (an older Dagster's body)
/// is left to stock, which re-serializes it through its own classes.
pub const RUN_BODY_KEYS: [&str; 21] = [
    "__class__",
    "asset_check_selection",
    "asset_selection",
    "execution_plan_snapshot_id",
    "external_pipeline_origin",
    "has_repository_load_data",
    "mode",
    "parent_run_id",
    "partitions_subset",
    "pipeline_code_origin",
    "pipeline_name",
    "pipeline_snapshot_id",
    "root_run_id",
    "run_config",
    "run_id",
    "run_op_concurrency",
    "solid_selection",
    "solids_to_execute",
    "status",
    "step_keys_to_execute",
    "tags",
];

/// The byte range of each top-level value of a JSON object's text, by key, in text order.
/// `None` when the text is not one JSON object.
fn top_level_values(text: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\n' | b'\r' | b'\t') {
            *i += 1;
        }
    };
    // The end (exclusive) of the string literal starting at `start` (its opening quote).
    let string_end = |start: usize| -> Option<usize> {
        let mut j = start + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    };
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        skip_ws(&mut i);
        if bytes.get(i) == Some(&b'}') && out.is_empty() {
            break;
        }
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(i)?;
        let key: String = serde_json::from_str(&text[i..key_end]).ok()?;
        i = key_end;
        skip_ws(&mut i);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let start = i;
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i = string_end(i)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let mut end = i;
        while end > start && matches!(bytes[end - 1], b' ' | b'\n' | b'\r' | b'\t') {
            end -= 1;
        }
        if end == start {
            return None;
        }
        out.push((key, start..end));
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return None,
        }
    }
    Some(out)
}

/// A stored run body this domain can transition: its job name and where its status sits.
pub struct RunBody<'a> {
    text: &'a str,
    status: std::ops::Range<usize>,
    pub job_name: String,
}

impl<'a> RunBody<'a> {
    /// The body when it is one this version of `serialize_value(DagsterRun)` wrote (its
    /// top-level keys exactly `RUN_BODY_KEYS`, in order, valid JSON, a status enum as stock
    /// writes it); `None` otherwise.
    pub fn parse(text: &'a str) -> Option<RunBody<'a>> {
        let values = top_level_values(text)?;
        if values.len() != RUN_BODY_KEYS.len()
            || values.iter().zip(RUN_BODY_KEYS).any(|((k, _), e)| k != e)
        {
            return None;
        }
        let value = |key: &str| -> Option<&str> {
            values
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, range)| &text[range.clone()])
        };
        if value("__class__")? != "\"PipelineRun\"" {
            return None;
        }
        let status = values.iter().find(|(k, _)| k == "status")?.1.clone();
        let status_text = &text[status.clone()];
        let name = status_text
            .strip_prefix("{\"__enum__\": \"PipelineRunStatus.")?
            .strip_suffix("\"}")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return None;
        }
        // The whole text must be JSON (the scan above only delimits values).
        let parsed: Json = serde_json::from_str(text).ok()?;
        let job_name = parsed.get("pipeline_name")?.as_str()?.to_owned();
        Some(RunBody {
            text,
            status,
            job_name,
        })
    }

    /// `serialize_value(run.with_status(status))`: the same text with the status replaced.
    pub fn with_status(&self, status: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        out.push_str(&self.text[..self.status.start]);
        out.push_str("{\"__enum__\": \"PipelineRunStatus.");
        out.push_str(status);
        out.push_str("\"}");
        out.push_str(&self.text[self.status.end..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_python_writes_them() {
        assert_eq!(py_float(1733112345.5), "1733112345.5");
        assert_eq!(py_float(1733112345.0), "1733112345.0");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.2345e22), "1.2345e+22");
        assert_eq!(py_float(0.0), "0.0");
    }

    #[test]
    fn run_bodies_keep_every_byte_but_the_status() {
        let body = r#"{"__class__": "PipelineRun", "asset_check_selection": null, "asset_selection": null, "execution_plan_snapshot_id": null, "external_pipeline_origin": null, "has_repository_load_data": false, "mode": null, "parent_run_id": null, "partitions_subset": null, "pipeline_code_origin": null, "pipeline_name": "j\"{", "pipeline_snapshot_id": null, "root_run_id": null, "run_config": {"status": 1}, "run_id": "r", "run_op_concurrency": null, "solid_selection": null, "solids_to_execute": null, "status": {"__enum__": "PipelineRunStatus.NOT_STARTED"}, "step_keys_to_execute": null, "tags": {"a": "}"}}"#;
        let parsed = RunBody::parse(body).unwrap();
        assert_eq!(parsed.job_name, "j\"{");
        assert_eq!(
            parsed.with_status("STARTING"),
            body.replace("NOT_STARTED", "STARTING")
        );
        assert!(RunBody::parse(&body.replace("\"mode\": null, ", "")).is_none());
        assert!(RunBody::parse(&body.replace("PipelineRunStatus", "Other")).is_none());
        assert!(RunBody::parse("{").is_none());
        assert!(RunBody::parse("[]").is_none());
    }
}
