//! Helpers shared by the collectors to build ECS documents and hand them to the agent.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{CollectorContext, EventSender, Shutdown};

/// Namespace of the UUIDv5 event ids this crate derives from a natural key (a log line at a
/// file identity and offset, a journald cursor), so that a line read twice after a crash gets
/// the same `event.id` and the server drops the duplicate.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d6f_7a6f_72d0_4b1e_9a3c_0c0c_6c6c_6563);

/// `event.module` of every event of this crate.
pub const MODULE: &str = "dozor";

/// `host.os.type` of this build: `linux`, `windows` or the Rust OS name.
pub const OS_TYPE: &str = if cfg!(windows) {
    "windows"
} else {
    std::env::consts::OS
};

/// The UUIDv5 of a natural key, as a string.
pub fn event_id_for(key: &str) -> String {
    Uuid::new_v5(&EVENT_ID_NAMESPACE, key.as_bytes()).to_string()
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

/// A `SystemTime` as RFC 3339 (None before 1970 or out of range).
pub fn system_time_rfc3339(t: SystemTime) -> Option<String> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let secs = i64::try_from(d.as_secs()).ok()?;
    DateTime::<Utc>::from_timestamp(secs, d.subsec_nanos()).map(rfc3339)
}

/// The common skeleton of an event: `@timestamp`, `event.*` and `host.os.type`.
pub fn base_event(
    timestamp: String,
    dataset: &str,
    category: &[&str],
    kind_type: &[&str],
    action: &str,
) -> Map<String, Value> {
    let mut event = Map::new();
    event.insert("kind".into(), "event".into());
    event.insert("category".into(), strings(category));
    event.insert("type".into(), strings(kind_type));
    event.insert("action".into(), action.into());
    event.insert("module".into(), MODULE.into());
    event.insert("dataset".into(), dataset.into());
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), timestamp.into());
    doc.insert("event".into(), Value::Object(event));
    doc.insert(
        "host".into(),
        serde_json::json!({ "os": { "type": OS_TYPE } }),
    );
    doc
}

fn strings(values: &[&str]) -> Value {
    Value::Array(values.iter().map(|s| Value::from(*s)).collect())
}

/// Removes `null` members and empty objects, recursively, so optional data can be written with
/// `json!` and `Option`s (the schema rejects `null` where it wants a string).
pub fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| {
                prune(v);
                !(v.is_null() || v.as_object().is_some_and(Map::is_empty))
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Inserts `value` at a dotted path (`"process.parent.pid"`), creating objects on the way.
pub fn put(doc: &mut Map<String, Value>, path: &str, value: impl Into<Value>) {
    let mut parts = path.split('.').peekable();
    let mut current = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value.into());
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(map) => current = map,
            _ => return,
        }
    }
}

/// The receiver hung up, or shutdown was requested while the queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Sends one event, waiting while the queue is full (back-pressure) but giving up when the
/// shutdown signal is triggered or the receiver is gone.
pub fn send(sender: &EventSender, shutdown: &Shutdown, mut doc: Value) -> Result<(), Stopped> {
    prune(&mut doc);
    let mut pending = doc;
    loop {
        match sender.send_timeout(pending, Duration::from_millis(200)) {
            Ok(()) => return Ok(()),
            Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                if shutdown.is_triggered() {
                    return Err(Stopped);
                }
                pending = back;
            }
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return Err(Stopped),
        }
    }
}

impl CollectorContext {
    /// [`send`] with this context's sender and shutdown signal.
    pub(crate) fn emit(&self, doc: Map<String, Value>) -> Result<(), Stopped> {
        send(&self.sender, &self.shutdown, Value::Object(doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_prune() {
        let mut doc = base_event(
            "2026-01-01T00:00:00.000Z".into(),
            "x",
            &["process"],
            &["start"],
            "a",
        );
        put(&mut doc, "process.parent.pid", 5);
        put(&mut doc, "process.name", Value::Null);
        put(&mut doc, "file.hash.sha256", Value::Null);
        let mut v = Value::Object(doc);
        prune(&mut v);
        assert_eq!(v["process"], serde_json::json!({"parent": {"pid": 5}}));
        assert!(v.get("file").is_none());
        assert_eq!(v["host"]["os"]["type"], OS_TYPE);
    }

    #[test]
    fn v5_ids_are_stable() {
        assert_eq!(event_id_for("a"), event_id_for("a"));
        assert_ne!(event_id_for("a"), event_id_for("b"));
        assert_eq!(event_id_for("a").len(), 36);
    }
}
