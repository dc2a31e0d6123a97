//! MISP's JSON shapes (attributes, events, objects) → indicators. Shared by the REST client
//! and the feeds.

use dozor_intel::{Ioc, IocSource};
use serde_json::Value;

use crate::time::{epoch_seconds, iso_value_ms};
use crate::{SyncBatch, push_tag};

/// Object-id prefix of a MISP event uuid in [`IocSource::object_ids`].
pub const EVENT_ID_PREFIX: &str = "misp-event:";
/// Object-id prefix of a MISP attribute uuid in [`IocSource::object_ids`].
pub const ATTRIBUTE_ID_PREFIX: &str = "misp-attribute:";

/// What an attribute inherits from its event.
#[derive(Debug, Default, Clone)]
pub(crate) struct EventContext {
    pub uuid: Option<String>,
    pub tags: Vec<String>,
}

impl EventContext {
    /// The context of an event object (`{"uuid", "Tag": [...], "EventTag": [...]}`).
    pub fn of(event: &Value) -> EventContext {
        let mut ctx = EventContext {
            uuid: event.get("uuid").and_then(Value::as_str).map(str::to_owned),
            tags: Vec::new(),
        };
        tag_names(event, &mut ctx.tags);
        ctx
    }
}

/// Tag names of an event or attribute: `Tag: [{name}]` and `EventTag: [{Tag: {name}}]`.
pub(crate) fn tag_names(obj: &Value, out: &mut Vec<String>) {
    if let Some(tags) = obj.get("Tag").and_then(Value::as_array) {
        for t in tags {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                push_tag(out, name);
            }
        }
    }
    if let Some(tags) = obj.get("EventTag").and_then(Value::as_array) {
        for t in tags {
            if let Some(name) = t.pointer("/Tag/name").and_then(Value::as_str) {
                push_tag(out, name);
            }
        }
    }
}

/// Confidence (0–100) from MISP's `misp:confidence-level` taxonomy tags, when present.
pub(crate) fn confidence_from_tags(tags: &[String]) -> Option<u8> {
    tags.iter().find_map(|t| {
        let level = t
            .strip_prefix("misp:confidence-level=")
            .or_else(|| t.strip_prefix("confidence-level:"))?
            .trim_matches('"');
        match level {
            "completely-confident" => Some(100),
            "usually-confident" => Some(75),
            "fairly-confident" => Some(50),
            "rarely-confident" => Some(25),
            "unconfident" => Some(0),
            _ => None,
        }
    })
}

/// A MISP boolean: `true`, `1`, `"1"`, `"true"`.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// One attribute → indicators in `batch` (or one entry in `batch.skipped`). `at` names it
/// when it has no uuid (a JSON pointer). Returns the attribute's timestamp (epoch seconds).
pub(crate) fn import_attribute(
    source: &str,
    attr: &Value,
    event: &EventContext,
    at: &str,
    batch: &mut SyncBatch,
) -> Option<i64> {
    let uuid = attr.get("uuid").and_then(Value::as_str);
    let object = uuid.map_or_else(|| at.to_owned(), str::to_owned);
    if !attr.is_object() {
        batch.skip(object, "an attribute must be a JSON object");
        return None;
    }
    let timestamp = attr.get("timestamp").and_then(epoch_seconds);
    if flag(attr.get("deleted")) {
        batch.ignore("deleted attribute");
        return timestamp;
    }
    let Some(misp_type) = attr.get("type").and_then(Value::as_str) else {
        batch.skip(object, "attribute without a `type` string");
        return timestamp;
    };
    let Some(value) = attr.get("value").and_then(Value::as_str) else {
        batch.skip(object, "attribute without a `value` string");
        return timestamp;
    };
    let mut iocs = match Ioc::from_misp(misp_type, value, flag(attr.get("to_ids"))) {
        Ok(iocs) => iocs,
        // A type Dozor does not match on (link, comment, text, vulnerability …) is part of
        // a normal event, not a fault of the feed.
        Err(dozor_intel::IntelError::UnsupportedMispType { misp_type }) => {
            batch.ignore(format!("MISP type `{misp_type}` is not matched on"));
            return timestamp;
        }
        Err(e) => {
            batch.skip(object, e.to_string());
            return timestamp;
        }
    };
    // The event's own context, when the attribute carries its event (restSearch).
    let inline_event = attr.get("Event").map(EventContext::of);
    let event = match &inline_event {
        Some(inline) if inline.uuid.is_some() || !inline.tags.is_empty() => {
            let mut merged = inline.clone();
            if merged.uuid.is_none() {
                merged.uuid.clone_from(&event.uuid);
            }
            for t in &event.tags {
                push_tag(&mut merged.tags, t);
            }
            merged
        }
        _ => event.clone(),
    };
    let mut tags = event.tags.clone();
    tag_names(attr, &mut tags);
    let confidence = confidence_from_tags(&tags);
    let first_seen = iso_value_ms(attr.get("first_seen"));
    let last_seen = iso_value_ms(attr.get("last_seen"));
    let mut object_ids = Vec::new();
    if let Some(e) = &event.uuid {
        object_ids.push(format!("{EVENT_ID_PREFIX}{e}"));
    }
    if let Some(a) = uuid {
        object_ids.push(format!("{ATTRIBUTE_ID_PREFIX}{a}"));
    }
    for ioc in &mut iocs {
        ioc.tags.clone_from(&tags);
        ioc.confidence = confidence;
        ioc.first_seen = first_seen;
        ioc.last_seen = last_seen;
        ioc.sources = vec![IocSource {
            name: source.to_owned(),
            object_ids: object_ids.clone(),
        }];
    }
    batch.iocs.extend(iocs);
    timestamp
}

/// A whole event (`{"Event": {...}}` or the inner object): its attributes and its objects'
/// attributes. `at` is the event's JSON pointer. Returns the newest attribute timestamp.
pub(crate) fn import_event(
    source: &str,
    event: &Value,
    at: &str,
    batch: &mut SyncBatch,
) -> Option<i64> {
    let (event, at) = match event.get("Event") {
        Some(inner) => (inner, format!("{at}/Event")),
        None => (event, at.to_owned()),
    };
    let ctx = EventContext::of(event);
    let mut newest = event.get("timestamp").and_then(epoch_seconds);
    let mut note = |t: Option<i64>| {
        if let Some(t) = t {
            newest = Some(newest.map_or(t, |n: i64| n.max(t)));
        }
    };
    if let Some(attrs) = event.get("Attribute").and_then(Value::as_array) {
        for (i, attr) in attrs.iter().enumerate() {
            note(import_attribute(
                source,
                attr,
                &ctx,
                &format!("{at}/Attribute/{i}"),
                batch,
            ));
        }
    }
    if let Some(objects) = event.get("Object").and_then(Value::as_array) {
        for (i, obj) in objects.iter().enumerate() {
            let object = obj
                .get("uuid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("{at}/Object/{i}"), str::to_owned);
            if flag(obj.get("deleted")) {
                batch.skip(object, "deleted object");
                continue;
            }
            let Some(attrs) = obj.get("Attribute").and_then(Value::as_array) else {
                batch.skip(object, "object without an `Attribute` list");
                continue;
            };
            for (j, attr) in attrs.iter().enumerate() {
                note(import_attribute(
                    source,
                    attr,
                    &ctx,
                    &format!("{at}/Object/{i}/Attribute/{j}"),
                    batch,
                ));
            }
        }
    }
    newest
}
