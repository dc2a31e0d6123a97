//! A normalized event (JSON) to the protobuf form and back, without loss: a typed field takes a
//! member only when the member has exactly the field's type; everything else stays in `other`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use crate::pb;

type Object = Map<String, Value>;

/// Why one event of a protobuf batch can't be a document: `pointer` (RFC 6901) says where in
/// the document it would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {pointer:?})")]
pub struct Malformed {
    pub pointer: String,
    pub message: String,
}

fn malformed(path: &[&str], message: impl Into<String>) -> Malformed {
    let pointer = path
        .iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect();
    Malformed {
        pointer,
        message: message.into(),
    }
}

// --- JSON → protobuf -------------------------------------------------------------------------

fn take_str(map: &mut Object, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(_)) => match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn take_u64(map: &mut Object, key: &str) -> Option<u64> {
    let n = map.get(key)?.as_u64()?;
    map.remove(key);
    Some(n)
}

/// A non-empty array of strings (an empty one stays in `other`: a repeated field can't tell).
fn take_strs(map: &mut Object, key: &str) -> Vec<String> {
    let all_strings = matches!(map.get(key), Some(Value::Array(a))
        if !a.is_empty() && a.iter().all(Value::is_string));
    if !all_strings {
        return Vec::new();
    }
    match map.remove(key) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs `take` on the object at `key` (if it is one); the object is removed when `take` emptied
/// it, and `take`'s message is kept when it carries anything.
fn sub<T: Default + PartialEq>(
    map: &mut Object,
    key: &str,
    take: impl FnOnce(&mut Object) -> T,
) -> Option<T> {
    let Some(Value::Object(inner)) = map.get_mut(key) else {
        return None;
    };
    let was_empty = inner.is_empty();
    let message = take(inner);
    if inner.is_empty() && !was_empty {
        map.remove(key);
    }
    (message != T::default()).then_some(message)
}

fn take_timestamp(doc: &mut Object) -> Option<i64> {
    let Some(Value::String(text)) = doc.get("@timestamp") else {
        return None;
    };
    let time = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    if time.to_rfc3339_opts(SecondsFormat::AutoSi, true) != *text {
        return None;
    }
    let nanos = time.timestamp_nanos_opt()?;
    doc.remove("@timestamp");
    Some(nanos)
}

fn take_uuid(map: &mut Object, key: &str) -> Option<Vec<u8>> {
    let Some(Value::String(text)) = map.get(key) else {
        return None;
    };
    let id = uuid::Uuid::parse_str(text).ok()?;
    if id.hyphenated().to_string() != *text {
        return None;
    }
    map.remove(key);
    Some(id.as_bytes().to_vec())
}

/// The string members of `map`, moved out (no key copied); the others stay.
fn take_string_map(map: &mut Object) -> std::collections::BTreeMap<String, String> {
    let mut strings = std::collections::BTreeMap::new();
    for (key, value) in std::mem::take(map) {
        match value {
            Value::String(text) => {
                strings.insert(key, text);
            }
            other => {
                map.insert(key, other);
            }
        }
    }
    strings
}

fn take_parent(m: &mut Object) -> pb::Parent {
    pb::Parent {
        pid: take_u64(m, "pid"),
        executable: take_str(m, "executable"),
        name: take_str(m, "name"),
        command_line: take_str(m, "command_line"),
        entity_id: take_str(m, "entity_id"),
    }
}

fn take_endpoint(m: &mut Object) -> pb::Endpoint {
    pb::Endpoint {
        ip: take_str(m, "ip"),
        port: take_u64(m, "port"),
        domain: take_str(m, "domain"),
    }
}

/// The protobuf form of one event; `None` when the event is not a JSON object.
pub fn event_to_proto(event: Value) -> Option<pb::Event> {
    let Value::Object(mut doc) = event else {
        return None;
    };
    let timestamp_nanos = take_timestamp(&mut doc);
    let event = sub(&mut doc, "event", |m| pb::EventMeta {
        id: take_uuid(m, "id"),
        kind: take_str(m, "kind"),
        category: take_strs(m, "category"),
        r#type: take_strs(m, "type"),
        code: take_str(m, "code"),
        provider: take_str(m, "provider"),
        module: take_str(m, "module"),
        outcome: take_str(m, "outcome"),
        action: take_str(m, "action"),
        dataset: take_str(m, "dataset"),
    });
    let message = take_str(&mut doc, "message");
    let host = sub(&mut doc, "host", |m| pb::Host {
        name: take_str(m, "name"),
    });
    let winlog = sub(&mut doc, "winlog", |m| pb::Winlog {
        channel: take_str(m, "channel"),
        provider_name: take_str(m, "provider_name"),
        provider_guid: take_str(m, "provider_guid"),
        event_id: take_u64(m, "event_id"),
        record_id: take_u64(m, "record_id"),
        computer: take_str(m, "computer"),
        version: take_u64(m, "version"),
        level: take_u64(m, "level"),
        task: take_u64(m, "task"),
        opcode: take_u64(m, "opcode"),
        keywords: take_str(m, "keywords"),
        process_pid: sub(m, "process", |p| take_u64(p, "pid")).flatten(),
        thread_id: sub(m, "process", |p| {
            sub(p, "thread", |t| take_u64(t, "id")).flatten()
        })
        .flatten(),
        activity_id: take_str(m, "activity_id"),
        user_identifier: sub(m, "user", |u| take_str(u, "identifier")).flatten(),
        event_data: sub(m, "event_data", take_string_map).unwrap_or_default(),
    });
    let process = sub(&mut doc, "process", |m| pb::Process {
        pid: take_u64(m, "pid"),
        executable: take_str(m, "executable"),
        name: take_str(m, "name"),
        command_line: take_str(m, "command_line"),
        entity_id: take_str(m, "entity_id"),
        working_directory: take_str(m, "working_directory"),
        integrity_level: take_str(m, "integrity_level"),
        parent: sub(m, "parent", take_parent),
    });
    let file = sub(&mut doc, "file", |m| pb::File {
        path: take_str(m, "path"),
        name: take_str(m, "name"),
        directory: take_str(m, "directory"),
        extension: take_str(m, "extension"),
    });
    let user = sub(&mut doc, "user", |m| pb::User {
        name: take_str(m, "name"),
        domain: take_str(m, "domain"),
        id: take_str(m, "id"),
    });
    let source = sub(&mut doc, "source", take_endpoint);
    let destination = sub(&mut doc, "destination", take_endpoint);
    let network = sub(&mut doc, "network", |m| pb::Network {
        direction: take_str(m, "direction"),
        transport: take_str(m, "transport"),
        protocol: take_str(m, "protocol"),
    });
    let registry = sub(&mut doc, "registry", |m| pb::Registry {
        path: take_str(m, "path"),
        hive: take_str(m, "hive"),
        key: take_str(m, "key"),
        value: take_str(m, "value"),
    });
    let dns = sub(&mut doc, "dns", |m| pb::Dns {
        question_name: sub(m, "question", |q| take_str(q, "name")).flatten(),
    });
    let other = (!doc.is_empty()).then(|| object_to_proto(doc));
    Some(pb::Event {
        timestamp_nanos,
        event,
        message,
        host,
        winlog,
        process,
        file,
        user,
        source,
        destination,
        network,
        registry,
        dns,
        other,
    })
}

fn object_to_proto(map: Object) -> pb::Object {
    pb::Object {
        members: map
            .into_iter()
            .map(|(k, v)| (k, value_to_proto(v)))
            .collect(),
    }
}

fn value_to_proto(value: Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match value {
        Value::Null => Kind::Null(true),
        Value::Bool(b) => Kind::Bool(b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Kind::Uint(u),
            (None, Some(i)) => Kind::Int(i),
            _ => Kind::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Kind::String(s),
        Value::Array(items) => Kind::Array(pb::Array {
            items: items.into_iter().map(value_to_proto).collect(),
        }),
        Value::Object(map) => Kind::Object(object_to_proto(map)),
    };
    pb::Value { kind: Some(kind) }
}

// --- protobuf → JSON -------------------------------------------------------------------------

fn put_str(map: &mut Object, key: &str, value: Option<String>) {
    if let Some(s) = value {
        map.insert(key.to_owned(), Value::String(s));
    }
}

fn put_u64(map: &mut Object, key: &str, value: Option<u64>) {
    if let Some(n) = value {
        map.insert(key.to_owned(), Value::Number(n.into()));
    }
}

fn put_strs(map: &mut Object, key: &str, values: Vec<String>) {
    if !values.is_empty() {
        map.insert(
            key.to_owned(),
            Value::Array(values.into_iter().map(Value::String).collect()),
        );
    }
}

/// Fills the object at `key` (made if missing); an object made but left empty is removed.
fn put_sub(map: &mut Object, key: &str, fill: impl FnOnce(&mut Object)) {
    let existed = map.contains_key(key);
    let entry = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(inner) = entry {
        fill(inner);
        if inner.is_empty() && !existed {
            map.remove(key);
        }
    }
}

fn put_endpoint(m: &mut Object, e: pb::Endpoint) {
    put_str(m, "ip", e.ip);
    put_u64(m, "port", e.port);
    put_str(m, "domain", e.domain);
}

/// The JSON document of a protobuf event: the same document the agent converted, or why the
/// event can't be one (a value with no kind, a float that is not finite, an `event.id` that is
/// not 16 bytes).
pub fn event_from_proto(event: pb::Event) -> Result<Value, Malformed> {
    let mut path = Vec::new();
    let mut doc = match event.other {
        Some(other) => object_from_proto(other, &mut path)?,
        None => Map::new(),
    };
    if let Some(nanos) = event.timestamp_nanos {
        let time = DateTime::from_timestamp_nanos(nanos);
        doc.insert(
            "@timestamp".to_owned(),
            Value::String(time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        );
    }
    if let Some(e) = event.event {
        let id = match e.id {
            Some(bytes) => Some(
                uuid::Uuid::from_slice(&bytes)
                    .map_err(|_| {
                        malformed(
                            &["event", "id"],
                            format!("event.id has {} bytes; a UUID has 16", bytes.len()),
                        )
                    })?
                    .hyphenated()
                    .to_string(),
            ),
            None => None,
        };
        put_sub(&mut doc, "event", |m| {
            put_str(m, "id", id);
            put_str(m, "kind", e.kind);
            put_strs(m, "category", e.category);
            put_strs(m, "type", e.r#type);
            put_str(m, "code", e.code);
            put_str(m, "provider", e.provider);
            put_str(m, "module", e.module);
            put_str(m, "outcome", e.outcome);
            put_str(m, "action", e.action);
            put_str(m, "dataset", e.dataset);
        });
    }
    put_str(&mut doc, "message", event.message);
    if let Some(h) = event.host {
        put_sub(&mut doc, "host", |m| put_str(m, "name", h.name));
    }
    if let Some(w) = event.winlog {
        put_sub(&mut doc, "winlog", |m| {
            put_str(m, "channel", w.channel);
            put_str(m, "provider_name", w.provider_name);
            put_str(m, "provider_guid", w.provider_guid);
            put_u64(m, "event_id", w.event_id);
            put_u64(m, "record_id", w.record_id);
            put_str(m, "computer", w.computer);
            put_u64(m, "version", w.version);
            put_u64(m, "level", w.level);
            put_u64(m, "task", w.task);
            put_u64(m, "opcode", w.opcode);
            put_str(m, "keywords", w.keywords);
            if w.process_pid.is_some() || w.thread_id.is_some() {
                put_sub(m, "process", |p| {
                    put_u64(p, "pid", w.process_pid);
                    if w.thread_id.is_some() {
                        put_sub(p, "thread", |t| put_u64(t, "id", w.thread_id));
                    }
                });
            }
            put_str(m, "activity_id", w.activity_id);
            if w.user_identifier.is_some() {
                put_sub(m, "user", |u| put_str(u, "identifier", w.user_identifier));
            }
            if !w.event_data.is_empty() {
                put_sub(m, "event_data", |d| {
                    d.extend(w.event_data.into_iter().map(|(k, v)| (k, Value::String(v))))
                });
            }
        });
    }
    if let Some(p) = event.process {
        put_sub(&mut doc, "process", |m| {
            put_u64(m, "pid", p.pid);
            put_str(m, "executable", p.executable);
            put_str(m, "name", p.name);
            put_str(m, "command_line", p.command_line);
            put_str(m, "entity_id", p.entity_id);
            put_str(m, "working_directory", p.working_directory);
            put_str(m, "integrity_level", p.integrity_level);
            if let Some(parent) = p.parent {
                put_sub(m, "parent", |q| {
                    put_u64(q, "pid", parent.pid);
                    put_str(q, "executable", parent.executable);
                    put_str(q, "name", parent.name);
                    put_str(q, "command_line", parent.command_line);
                    put_str(q, "entity_id", parent.entity_id);
                });
            }
        });
    }
    if let Some(f) = event.file {
        put_sub(&mut doc, "file", |m| {
            put_str(m, "path", f.path);
            put_str(m, "name", f.name);
            put_str(m, "directory", f.directory);
            put_str(m, "extension", f.extension);
        });
    }
    if let Some(u) = event.user {
        put_sub(&mut doc, "user", |m| {
            put_str(m, "name", u.name);
            put_str(m, "domain", u.domain);
            put_str(m, "id", u.id);
        });
    }
    if let Some(s) = event.source {
        put_sub(&mut doc, "source", |m| put_endpoint(m, s));
    }
    if let Some(d) = event.destination {
        put_sub(&mut doc, "destination", |m| put_endpoint(m, d));
    }
    if let Some(n) = event.network {
        put_sub(&mut doc, "network", |m| {
            put_str(m, "direction", n.direction);
            put_str(m, "transport", n.transport);
            put_str(m, "protocol", n.protocol);
        });
    }
    if let Some(r) = event.registry {
        put_sub(&mut doc, "registry", |m| {
            put_str(m, "path", r.path);
            put_str(m, "hive", r.hive);
            put_str(m, "key", r.key);
            put_str(m, "value", r.value);
        });
    }
    if let Some(d) = event.dns
        && d.question_name.is_some()
    {
        put_sub(&mut doc, "dns", |m| {
            put_sub(m, "question", |q| put_str(q, "name", d.question_name))
        });
    }
    Ok(Value::Object(doc))
}

// `path` holds the members and indexes down to the value being converted, for the pointer of
// an error; prost's decoder already bounds the nesting (100 levels).
fn object_from_proto(object: pb::Object, path: &mut Vec<String>) -> Result<Object, Malformed> {
    let mut map = Map::new();
    for (key, value) in object.members {
        path.push(key);
        let value = value_from_proto(value, path)?;
        let key = path.pop().unwrap_or_default();
        map.insert(key, value);
    }
    Ok(map)
}

fn value_from_proto(value: pb::Value, path: &mut Vec<String>) -> Result<Value, Malformed> {
    use pb::value::Kind;
    let at = |path: &[String], message: &str| {
        malformed(
            &path.iter().map(String::as_str).collect::<Vec<_>>(),
            message,
        )
    };
    Ok(match value.kind {
        None => return Err(at(path, "a value with no kind")),
        Some(Kind::Null(_)) => Value::Null,
        Some(Kind::Bool(b)) => Value::Bool(b),
        Some(Kind::Int(i)) => Value::Number(i.into()),
        Some(Kind::Uint(u)) => Value::Number(u.into()),
        Some(Kind::Float(f)) => match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(at(
                    path,
                    "a number that is not finite (JSON has no NaN or infinity)",
                ));
            }
        },
        Some(Kind::String(s)) => Value::String(s),
        Some(Kind::Array(a)) => {
            let mut items = Vec::with_capacity(a.items.len());
            for (i, item) in a.items.into_iter().enumerate() {
                path.push(i.to_string());
                items.push(value_from_proto(item, path)?);
                path.pop();
            }
            Value::Array(items)
        }
        Some(Kind::Object(o)) => Value::Object(object_from_proto(o, path)?),
    })
}
