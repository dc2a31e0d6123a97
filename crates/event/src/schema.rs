//! The normalized event JSON Schema (draft 2020-12) and its validator.
//!
//! The schema lives in `crates/event/schemas/event.json` and is compiled in (feature
//! `validator`); the server serves it at `/api/v1/schema/event.json`. Formats are asserted (`date-time`, `uuid`, and the
//! custom `ip`: anything Rust's `IpAddr` parses). Nothing is ever fetched: the schema has no
//! external references and the validator is built without network or file resolvers.

use std::net::IpAddr;

use serde_json::Value;

/// The schema document, as served.
pub const EVENT_SCHEMA_JSON: &str = include_str!("../schemas/event.json");

/// At most this many errors are reported per event.
pub const MAX_ERRORS_PER_EVENT: usize = 10;

/// Longest error message; longer ones are cut.
const MAX_MESSAGE_CHARS: usize = 300;

/// One reason an event is invalid: where (a JSON pointer into the event) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

/// A compiled validator for the event schema.
pub struct EventValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for EventValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventValidator").finish_non_exhaustive()
    }
}

impl EventValidator {
    /// Compiles the built-in schema.
    pub fn new() -> Result<Self, String> {
        let schema: Value = serde_json::from_str(EVENT_SCHEMA_JSON)
            .map_err(|e| format!("event.json is not JSON: {e}"))?;
        Self::from_schema(&schema)
    }

    /// Compiles another schema with the same options (formats asserted, `ip` format known).
    pub fn from_schema(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_format("ip", |s: &str| s.parse::<IpAddr>().is_ok())
            .build(schema)
            .map_err(|e| format!("invalid event schema: {e}"))?;
        Ok(EventValidator { validator })
    }

    /// The reasons `event` is invalid (at most [`MAX_ERRORS_PER_EVENT`]); empty when valid.
    pub fn validate(&self, event: &Value) -> Vec<FieldError> {
        if self.validator.is_valid(event) {
            return Vec::new();
        }
        self.validator
            .iter_errors(event)
            .take(MAX_ERRORS_PER_EVENT)
            .map(|error| {
                let instance = error.instance();
                let short_scalar = !instance.is_object()
                    && !instance.is_array()
                    && instance.to_string().len() <= 80;
                let message = if short_scalar {
                    error.to_string()
                } else {
                    error.masked().to_string()
                };
                FieldError {
                    pointer: error.instance_path().to_string(),
                    message: truncate(message, MAX_MESSAGE_CHARS),
                }
            })
            .collect()
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid_event() -> Value {
        json!({
            "@timestamp": "2026-05-01T12:00:00.123Z",
            "event": {"id": "01890a5d-ac96-774b-bcce-b302099a8057", "kind": "event",
                      "category": ["process"], "type": ["start"]},
            "agent": {"id": "agent-1", "version": "0.1.0"},
            "host": {"name": "ws1", "ip": ["10.0.0.1", "fe80::1"], "os": {"family": "windows"}},
            "process": {"pid": 42, "executable": "C:\\Windows\\System32\\cmd.exe",
                        "command_line": "cmd /c whoami", "hash": {"sha256": "a".repeat(64)},
                        "parent": {"pid": 1, "executable": "C:\\Windows\\explorer.exe",
                                   "hash": {"sha256": "b".repeat(64)}}},
            "user": {"name": "alice", "domain": "CORP", "target": {"name": "bob"}},
            "source": {"ip": "10.0.0.1", "port": 5000},
            "destination": {"ip": "8.8.8.8", "port": 53, "geo": {"country_iso_code": "US"}},
            "network": {"transport": "udp", "direction": "egress"},
            "dns": {"question": {"name": "example.com"}, "resolved_ip": ["93.184.216.34"]},
            "file": {"path": "/tmp/x", "size": 10},
            "registry": {"path": "HKLM\\Software\\X", "data": {"strings": ["1"]}},
            "threat": {"technique": {"id": ["T1059"]}},
            "labels": {"site": "msk"},
            "winlog": {"channel": "Security", "event_id": 4688, "record_id": 7, "computer": "ws1",
                       "provider_name": "Microsoft-Windows-Security-Auditing",
                       "event_data": {"NewProcessName": "C:\\x.exe", "Anything": [1, 2]},
                       "user_data": {"Whatever": {"nested": true}}},
            "dozor": {"collection_level": "standard"}
        })
    }

    #[test]
    fn schema_compiles_and_accepts_a_full_event() {
        let v = EventValidator::new().unwrap();
        assert_eq!(v.validate(&valid_event()), vec![]);
        let minimal = json!({"@timestamp": "2026-05-01T12:00:00Z",
            "event": {"id": "01890a5d-ac96-774b-bcce-b302099a8057", "kind": ["event"], "category": "host"}});
        assert_eq!(v.validate(&minimal), vec![]);
    }

    fn errors_of(edit: impl FnOnce(&mut Value)) -> Vec<FieldError> {
        let mut e = valid_event();
        edit(&mut e);
        EventValidator::new().unwrap().validate(&e)
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn violations_point_at_the_field() {
        let e = errors_of(|e| e["event"]["id"] = json!("not-a-uuid"));
        assert_eq!(pointers(&e), vec!["/event/id"]);
        assert!(e[0].message.contains("uuid"), "{e:?}");

        let e = errors_of(|e| e["@timestamp"] = json!("yesterday"));
        assert_eq!(pointers(&e), vec!["/@timestamp"]);

        let e = errors_of(|e| {
            e["event"].as_object_mut().unwrap().remove("category");
        });
        assert_eq!(pointers(&e), vec!["/event"]);
        assert!(e[0].message.contains("category"), "{e:?}");

        let e = errors_of(|e| e["event"]["category"] = json!(["process", "bogus"]));
        assert_eq!(pointers(&e), vec!["/event/category/1"]);

        let e = errors_of(|e| e["event"]["kind"] = json!("bogus"));
        assert_eq!(pointers(&e), vec!["/event/kind"]);

        let e = errors_of(|e| e["source"]["ip"] = json!("999.1.1.1"));
        assert_eq!(pointers(&e), vec!["/source/ip"]);

        let e = errors_of(|e| e["destination"]["port"] = json!(70000));
        assert_eq!(pointers(&e), vec!["/destination/port"]);

        let e = errors_of(|e| e["process"]["parent"]["hash"]["sha256"] = json!("xyz"));
        assert_eq!(pointers(&e), vec!["/process/parent/hash/sha256"]);

        let e = errors_of(|e| e["process"]["parent"]["bogus"] = json!(1));
        assert_eq!(pointers(&e), vec!["/process/parent"]);

        let e = errors_of(|e| e["process"]["bogus"] = json!(1));
        assert_eq!(pointers(&e), vec!["/process"]);

        let e = errors_of(|e| e["bogus"] = json!(1));
        assert_eq!(pointers(&e), vec![""]);
        assert!(e[0].message.contains("bogus"), "{e:?}");

        let e = errors_of(|e| e["winlog"]["event_id"] = json!("4688"));
        assert_eq!(pointers(&e), vec!["/winlog/event_id"]);

        let e = errors_of(|e| e["labels"]["n"] = json!(1));
        assert_eq!(pointers(&e), vec!["/labels/n"]);
    }

    #[test]
    fn long_values_are_not_echoed() {
        let e = errors_of(|e| e["process"]["pid"] = json!("x".repeat(10_000)));
        assert_eq!(pointers(&e), vec!["/process/pid"]);
        assert!(e[0].message.len() < 400, "{}", e[0].message);
        let e = errors_of(|e| e["process"]["command_line"] = json!({"a": "x".repeat(10_000)}));
        assert!(e[0].message.len() < 400, "{}", e[0].message);
    }

    #[test]
    fn error_count_is_capped() {
        let e = errors_of(|e| {
            for i in 0..50 {
                e[format!("bogus{i}")] = json!(1);
                e["process"][format!("bogus{i}")] = json!(1);
            }
            e["event"]["id"] = json!(1);
            e["@timestamp"] = json!(1);
            e["source"]["port"] = json!(-1);
        });
        assert!(e.len() <= MAX_ERRORS_PER_EVENT && e.len() >= 3, "{e:?}");
    }
}
