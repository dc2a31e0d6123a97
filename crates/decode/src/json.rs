//! JSON inputs: evtx_dump-style Windows events (as `serde_json::Value` and, on the EVTX hot path,
//! straight from the bytes the evtx crate renders), Winlogbeat/ECS documents and any other JSON
//! object.

use std::borrow::Cow;
use std::fmt;

use dozor_event::{FlatEvent, Value};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::error::DecodeError;
use crate::flatten::{Scalar, TooManyFields, WinFlattener};
use crate::time::parse_timestamp_millis;

/// The shape of one JSON object, detected from its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    /// evtx_dump style: `{"Event": {"System": {...}, "EventData": {...}}}` (or the same without
    /// the `Event` wrapper).
    Windows,
    /// Winlogbeat / ECS: `winlog.*` fields.
    Winlogbeat,
    /// Anything else: leaves by dotted path.
    Generic,
}

/// Detects the shape of a JSON object.
pub fn detect_json_shape(object: &Map<String, Json>) -> JsonShape {
    if windows_root(object).is_some() {
        return JsonShape::Windows;
    }
    if object.get("winlog").is_some_and(Json::is_object)
        || object.keys().any(|k| k.starts_with("winlog."))
    {
        return JsonShape::Winlogbeat;
    }
    JsonShape::Generic
}

/// The object that holds `System`/`EventData`/`UserData`, for an evtx_dump-style event.
fn windows_root(object: &Map<String, Json>) -> Option<&Map<String, Json>> {
    let is_event = |m: &Map<String, Json>| {
        m.get("System").is_some_and(Json::is_object)
            && (m.contains_key("EventData") || m.contains_key("UserData") || system_has_id(m))
    };
    if let Some(Json::Object(event)) = object.get("Event")
        && (event.get("System").is_some_and(Json::is_object)
            || event.contains_key("EventData")
            || event.contains_key("UserData"))
    {
        return Some(event);
    }
    is_event(object).then_some(object)
}

fn system_has_id(m: &Map<String, Json>) -> bool {
    matches!(m.get("System"), Some(Json::Object(s)) if s.contains_key("EventID") || s.contains_key("Provider"))
}

/// Flattens any JSON object, detecting its shape (see [`JsonShape`]).
pub fn flatten_json(value: &Json) -> Result<FlatEvent, DecodeError> {
    let Json::Object(object) = value else {
        return Err(DecodeError::invalid(format!(
            "expected a JSON object, found {}",
            json_kind(value)
        )));
    };
    Ok(match detect_json_shape(object) {
        JsonShape::Windows => flatten_windows_object(object)?,
        JsonShape::Winlogbeat => {
            flatten_winlogbeat(object).map_err(|e| DecodeError::invalid(e.to_string()))?
        }
        JsonShape::Generic => flatten_generic(object),
    })
}

pub(crate) fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Flattens an evtx_dump-style Windows event: `{"Event": {"System": {...}, "EventData": {...}}}`.
///
/// Also accepted: the same without the `Event` wrapper, attributes as `"#attributes"` objects,
/// as `"X_attributes"` siblings (evtx's `separate_json_attributes`) or as `"@Name"` keys
/// (xmltodict), and `Data` elements as `{"@Name": "X", "#text": "v"}` objects.
pub fn flatten_windows_json(value: &Json) -> Result<FlatEvent, DecodeError> {
    match value {
        Json::Object(object) => flatten_windows_object(object),
        other => Err(DecodeError::invalid(format!(
            "expected an evtx_dump-style Windows event object, found {}",
            json_kind(other)
        ))),
    }
}

fn flatten_windows_object(object: &Map<String, Json>) -> Result<FlatEvent, DecodeError> {
    let Some(event) = windows_root(object) else {
        return Err(DecodeError::invalid(
            "not an evtx_dump-style Windows event: expected an \"Event\" object with \"System\"",
        ));
    };
    let mut f = WinFlattener::new();
    f.start("Event");
    feed_object_body(&mut f, event);
    f.end();
    f.finish().map_err(|e| DecodeError::invalid(e.to_string()))
}

/// `Foo_1`, `Foo_2`, ... are how evtx names repeated sibling elements `Foo`: such a key is the
/// element `Foo` when `Foo` is a sibling.
fn strip_repeat_suffix(key: &str, is_sibling: impl Fn(&str) -> bool) -> &str {
    if !key.as_bytes().last().is_some_and(u8::is_ascii_digit) {
        return key;
    }
    if let Some(pos) = key.rfind('_') {
        let digits = &key[pos + 1..];
        if pos > 0
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && is_sibling(&key[..pos])
        {
            return &key[..pos];
        }
    }
    key
}

/// Calls `f` with a JSON scalar as a [`Scalar`]; `None` for arrays and objects.
fn with_scalar<R>(value: &Json, f: impl FnOnce(Scalar<'_>) -> R) -> Option<R> {
    Some(match value {
        Json::Null => f(Scalar::Null),
        Json::Bool(b) => f(Scalar::Bool(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                f(Scalar::Int(i))
            } else if n.is_u64() {
                // Beyond i64: keep the exact digits.
                let text = n.to_string();
                f(Scalar::Str(&text))
            } else {
                f(Scalar::Float(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => f(Scalar::Str(s)),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

fn feed_attrs(f: &mut WinFlattener, attrs: &Json) {
    if let Json::Object(attrs) = attrs {
        for (name, value) in attrs {
            with_scalar(value, |s| f.attr(name, s));
        }
    }
}

fn feed_object_body(f: &mut WinFlattener, map: &Map<String, Json>) {
    let separate_attrs = map.keys().any(|k| k.ends_with("_attributes"));
    for (key, value) in map {
        match key.as_str() {
            "#attributes" => feed_attrs(f, value),
            "#text" => match value {
                Json::Array(items) => {
                    for item in items {
                        with_scalar(item, |s| f.text(s));
                    }
                }
                Json::Null => {}
                other => {
                    with_scalar(other, |s| f.text(s));
                }
            },
            k if k.len() > 1 && k.starts_with('@') => {
                with_scalar(value, |s| f.attr(&k[1..], s));
            }
            k => {
                let mut attrs = None;
                let mut key = k;
                if separate_attrs {
                    if let Some(base) = k.strip_suffix("_attributes")
                        && value.is_object()
                    {
                        if map.contains_key(base) {
                            continue; // written with `base`
                        }
                        // An element with attributes only.
                        attrs = Some(value);
                        key = base;
                    } else {
                        attrs = map.get(&format!("{k}_attributes"));
                    }
                }
                let name = strip_repeat_suffix(key, |base| map.contains_key(base));
                feed_element(f, name, value, attrs);
            }
        }
    }
}

fn feed_element(f: &mut WinFlattener, name: &str, value: &Json, attrs: Option<&Json>) {
    match value {
        Json::Array(items) => {
            for item in items {
                feed_element(f, name, item, attrs);
            }
        }
        Json::Object(_) if attrs.is_some_and(|a| std::ptr::eq(a, value)) => {
            // `X_attributes` alone: the element has attributes and no value.
            f.start(name);
            feed_attrs(f, value);
            f.end();
        }
        Json::Object(map) => {
            f.start(name);
            if let Some(attrs) = attrs {
                feed_attrs(f, attrs);
            }
            feed_object_body(f, map);
            f.end();
        }
        Json::Null => {
            f.start(name);
            if let Some(attrs) = attrs {
                feed_attrs(f, attrs);
            }
            f.end();
        }
        scalar => {
            f.start(name);
            if let Some(attrs) = attrs {
                feed_attrs(f, attrs);
            }
            with_scalar(scalar, |s| f.text(s));
            f.end();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// evtx JSON bytes -> FlatEvent, without building a `serde_json::Value` (the EVTX hot path).

/// Flattens one record as the evtx crate renders it to JSON (`{"Event": {...}}`).
pub(crate) fn flatten_evtx_json_bytes(bytes: &[u8], capacity: usize) -> Result<FlatEvent, String> {
    let mut f = WinFlattener::with_capacity(capacity);
    let mut keys = Vec::with_capacity(16);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = RootSeed {
        f: &mut f,
        keys: &mut keys,
    }
    .deserialize(&mut de)
    .map_err(|e| format!("invalid record JSON: {e}"))?;
    de.end().map_err(|e| format!("invalid record JSON: {e}"))?;
    if !found {
        return Err("record JSON has no \"Event\" object".to_owned());
    }
    f.finish().map_err(|e| e.to_string())
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct RootSeed<'a, 'de> {
    f: &'a mut WinFlattener,
    keys: &'a mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with an \"Event\" member")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "Event" && !found {
                found = true;
                map.next_value_seed(ElemSeed {
                    f: &mut *self.f,
                    name: "Event",
                    keys: &mut *self.keys,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// An element `name` whose value is next: a scalar, null, an object or an array of repeats.
struct ElemSeed<'a, 'n, 'de> {
    f: &'a mut WinFlattener,
    name: &'n str,
    keys: &'a mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for ElemSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ElemSeed<'_, '_, '_> {
    fn leaf(self, s: Scalar<'_>) {
        self.f.start(self.name);
        self.f.text(s);
        self.f.end();
    }
}

impl<'de> Visitor<'de> for ElemSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an element value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Scalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Scalar::Int(v));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.leaf(Scalar::Int(i)),
            Err(_) => self.leaf(Scalar::Str(&v.to_string())),
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(Scalar::Float(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(Scalar::Str(v));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.f.start(self.name);
        self.f.end();
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ElemSeed { f, name, keys } = self;
        while seq
            .next_element_seed(ElemSeed {
                f: &mut *f,
                name,
                keys: &mut *keys,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ElemSeed { f, name, keys } = self;
        f.start(name);
        let base = keys.len();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "#attributes" => map.next_value_seed(AttrsSeed { f: &mut *f })?,
                "#text" => map.next_value_seed(ScalarSeed {
                    f: &mut *f,
                    target: Target::Text { in_seq: false },
                })?,
                k if k.len() > 1 && k.starts_with('@') => map.next_value_seed(ScalarSeed {
                    f: &mut *f,
                    target: Target::Attr(&k[1..]),
                })?,
                k => {
                    let siblings = &keys[base..];
                    let child = strip_repeat_suffix(k, |b| siblings.iter().any(|s| s == b));
                    map.next_value_seed(ElemSeed {
                        f: &mut *f,
                        name: child,
                        keys: &mut *keys,
                    })?;
                    keys.push(key);
                }
            }
        }
        keys.truncate(base);
        f.end();
        Ok(())
    }
}

/// `"#attributes": {...}`.
struct AttrsSeed<'a> {
    f: &'a mut WinFlattener,
}

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attributes object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            map.next_value_seed(ScalarSeed {
                f: &mut *self.f,
                target: Target::Attr(&key),
            })?;
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Where a scalar value goes.
#[derive(Clone, Copy)]
enum Target<'n> {
    /// An attribute of the current element (`@name` or an `#attributes` entry); arrays and
    /// objects are ignored.
    Attr(&'n str),
    /// The current element's `#text`: a value, or the values of an array (`in_seq`), where a
    /// null keeps its place.
    Text { in_seq: bool },
}

/// One attribute or text value.
struct ScalarSeed<'a, 'n> {
    f: &'a mut WinFlattener,
    target: Target<'n>,
}

impl ScalarSeed<'_, '_> {
    fn put(self, value: Scalar<'_>) {
        match self.target {
            Target::Attr(name) => self.f.attr(name, value),
            Target::Text { .. } => self.f.text(value),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.target {
            Target::Attr(_) => "an attribute value",
            Target::Text { .. } => "a text value",
        })
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(Scalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.put(Scalar::Int(v));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.put(Scalar::Int(i)),
            Err(_) => self.put(Scalar::Str(&v.to_string())),
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.put(Scalar::Float(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.put(Scalar::Str(v));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if let Target::Text { in_seq: true } = self.target {
            self.put(Scalar::Null);
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.target {
            Target::Attr(_) => while seq.next_element::<IgnoredAny>()?.is_some() {},
            Target::Text { .. } => {
                while seq
                    .next_element_seed(ScalarSeed {
                        f: &mut *self.f,
                        target: Target::Text { in_seq: true },
                    })?
                    .is_some()
                {}
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Winlogbeat / ECS.

/// Looks a dotted path up, nested (`{"winlog": {"event_id": ..}}`) or as one dotted key
/// (`{"winlog.event_id": ..}`).
fn lookup<'a>(root: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    if let Some(v) = root.get(path) {
        return Some(v);
    }
    let mut current = root;
    let mut rest = path;
    loop {
        // Try the longest prefix that is a key, so keys with dots inside still match.
        let mut found = None;
        for (i, _) in rest.match_indices('.') {
            if let Some(v) = current.get(&rest[..i]) {
                found = Some((v, &rest[i + 1..]));
                break;
            }
        }
        let (v, tail) = found?;
        if let Some(hit) = v.as_object().and_then(|m| m.get(tail)) {
            return Some(hit);
        }
        current = v.as_object()?;
        rest = tail;
    }
}

/// Winlogbeat fields that map onto Windows System fields: (path, element, attribute).
const WINLOG_SYSTEM: &[(&str, &str, Option<&str>)] = &[
    ("winlog.provider_name", "Provider", Some("Name")),
    ("winlog.provider_guid", "Provider", Some("Guid")),
    ("winlog.event_id", "EventID", None),
    ("winlog.version", "Version", None),
    ("winlog.record_id", "EventRecordID", None),
    ("winlog.activity_id", "Correlation", Some("ActivityID")),
    (
        "winlog.related_activity_id",
        "Correlation",
        Some("RelatedActivityID"),
    ),
    ("winlog.process.pid", "Execution", Some("ProcessID")),
    ("winlog.process.thread.id", "Execution", Some("ThreadID")),
    ("winlog.channel", "Channel", None),
    ("winlog.computer_name", "Computer", None),
    ("winlog.user.identifier", "Security", Some("UserID")),
];

/// Flattens a Winlogbeat/ECS document: the Windows names first, then every leaf by dotted path.
pub(crate) fn flatten_winlogbeat(object: &Map<String, Json>) -> Result<FlatEvent, TooManyFields> {
    let mut f = WinFlattener::new();
    f.start("Event");
    f.start("System");
    let mut has_event_id = false;
    for &(path, element, attr) in WINLOG_SYSTEM {
        let Some(value) = lookup(object, path) else {
            continue;
        };
        has_event_id |= element == "EventID";
        f.start(element);
        match attr {
            Some(attr) => with_scalar(value, |s| f.attr(attr, s)),
            None => with_scalar(value, |s| f.text(s)),
        };
        f.end();
    }
    if !has_event_id && let Some(code) = lookup(object, "event.code") {
        f.start("EventID");
        with_scalar(code, |s| f.text(s));
        f.end();
    }
    f.end();
    if let Some(Json::Object(data)) = lookup(object, "winlog.event_data") {
        f.start("EventData");
        for (k, v) in data {
            feed_element(&mut f, k, v, None);
        }
        f.end();
    }
    if let Some(Json::Object(data)) = lookup(object, "winlog.user_data") {
        f.start("UserData");
        for (k, v) in data {
            if k != "xml_name" {
                feed_element(&mut f, k, v, None);
            }
        }
        f.end();
    }
    f.end();
    let mut out = f.finish()?;
    // Dotted winlog keys with event_data/user_data inside (`winlog.event_data.X`) are not nested
    // objects: take their leaves by name too.
    for (key, value) in object {
        for prefix in ["winlog.event_data.", "winlog.user_data."] {
            if let Some(name) = key.strip_prefix(prefix)
                && !name.is_empty()
                && name != "xml_name"
                && let Some(v) = json_leaf_value(value, true)
            {
                out.fields.push((name.into(), v));
            }
        }
    }
    let mut path = String::new();
    for (key, value) in object {
        path.clear();
        path.push_str(key);
        walk_generic(value, &mut path, &mut out);
    }
    out.timestamp_millis = object.get("@timestamp").and_then(json_timestamp_millis);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Generic JSON.

/// Flattens any JSON object by dotted path (`{"a": {"b": 1}}` gives `a.b`).
pub(crate) fn flatten_generic(object: &Map<String, Json>) -> FlatEvent {
    let mut out = FlatEvent::new();
    let mut path = String::new();
    for (key, value) in object {
        path.clear();
        path.push_str(key);
        walk_generic(value, &mut path, &mut out);
    }
    out.timestamp_millis = ["@timestamp", "timestamp", "TimeCreated"]
        .iter()
        .find_map(|k| object.get(*k).and_then(json_timestamp_millis));
    out
}

/// A JSON scalar, or an array of scalars, as a value; `null` is `Value::Null` unless
/// `windows_payload` (then `""`, as Windows payloads are everywhere else).
fn json_leaf_value(value: &Json, windows_payload: bool) -> Option<Value> {
    Some(match value {
        Json::Null if windows_payload => Value::Str(String::new()),
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None if n.is_u64() => Value::Str(n.to_string()),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Json::Array(_) | Json::Object(_) => return None,
                    scalar => out.push(json_leaf_value(scalar, windows_payload)?),
                }
            }
            Value::List(out)
        }
        Json::Object(_) => return None,
    })
}

fn walk_generic(value: &Json, path: &mut String, out: &mut FlatEvent) {
    match value {
        Json::Object(map) => {
            let base = path.len();
            for (key, item) in map {
                path.push('.');
                path.push_str(key);
                walk_generic(item, path, out);
                path.truncate(base);
            }
        }
        Json::Array(items) if items.is_empty() => {}
        Json::Array(items) => match json_leaf_value(value, false) {
            Some(list) => out.fields.push((path.as_str().into(), list)),
            None => {
                for item in items {
                    walk_generic(item, path, out);
                }
            }
        },
        scalar => {
            if let Some(v) = json_leaf_value(scalar, false) {
                out.fields.push((path.as_str().into(), v));
            }
        }
    }
}

/// A timestamp from a JSON value: RFC 3339 text, or a number of milliseconds (or of seconds when
/// it is below 10^11, i.e. before 1973 as milliseconds).
fn json_timestamp_millis(value: &Json) -> Option<i64> {
    match value {
        Json::String(s) => parse_timestamp_millis(s),
        Json::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() {
                return None;
            }
            let millis = if x.abs() < 1e11 { x * 1000.0 } else { x };
            (millis.abs() < 9.0e15).then_some(millis as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_and_value_paths_agree() {
        let doc = json!({"Event": {"#attributes": {"xmlns": "x"},
            "System": {"Provider": {"#attributes": {"Name": "P", "Guid": "{G}"}},
                "EventID": {"#attributes": {"Qualifiers": 32768}, "#text": 6009},
                "Level": 4, "TimeCreated": {"#attributes": {"SystemTime": "2017-07-12T17:16:28.2141616Z"}},
                "EventRecordID": 1, "Correlation": null, "Channel": "System", "Security": null},
            "EventData": {"Data": {"#text": ["10.00.", "15063", "", null]}, "Binary": "E107"},
            "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "u", "Kind": "k"},
                "SubjectUserName": "bob", "Item": "a", "Item_1": "b", "Empty": null}}}});
        let from_value = flatten_windows_json(&doc).unwrap();
        let bytes = serde_json::to_vec(&doc).unwrap();
        let from_bytes = flatten_evtx_json_bytes(&bytes, 0).unwrap();
        assert_eq!(from_value, from_bytes);
        let e = from_value;
        assert_eq!(e.get("EventID"), Some(&Value::Int(6009)));
        assert_eq!(e.get("EventID_Qualifiers"), Some(&Value::Int(32768)));
        assert_eq!(e.get("Channel"), Some(&Value::from("System")));
        assert_eq!(e.get("Correlation"), None);
        assert_eq!(
            e.get("Data"),
            Some(&Value::List(vec![
                "10.00.".into(),
                "15063".into(),
                "".into(),
                "".into()
            ]))
        );
        assert_eq!(e.get("Binary"), Some(&Value::from("E107")));
        assert_eq!(e.get("SubjectUserName"), Some(&Value::from("bob")));
        assert_eq!(
            e.get("Item"),
            Some(&Value::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(e.get("Empty"), Some(&Value::from("")));
        assert_eq!(e.get("LogFileCleared_Kind"), Some(&Value::from("k")));
        assert_eq!(e.get("LogFileCleared_xmlns"), None);
        assert!(e.timestamp_millis.is_some());
    }

    #[test]
    fn damaged_record_json_is_an_error_not_a_panic() {
        let doc = json!({"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 1}, "#text": 2},
            "TimeCreated": {"#attributes": {"SystemTime": "2017-07-12T17:16:28Z"}}},
            "EventData": {"Data": {"#text": ["a", null]}, "X_1": "b", "X": "c"}}});
        let bytes = serde_json::to_vec(&doc).unwrap();
        for cut in 0..bytes.len() {
            assert!(flatten_evtx_json_bytes(&bytes[..cut], 0).is_err());
        }
        for at in 0..bytes.len() {
            for b in [b'{', b'}', b'[', b']', b'"', b',', b'1', b'n'] {
                let mut damaged = bytes.clone();
                damaged[at] = b;
                let _ = flatten_evtx_json_bytes(&damaged, 0);
                if let Ok(value) = serde_json::from_slice::<Json>(&damaged) {
                    let _ = flatten_json(&value);
                }
            }
        }
        assert!(flatten_evtx_json_bytes(b"{\"NotEvent\": 1}", 0).is_err());
        assert!(flatten_evtx_json_bytes(b"[1]", 0).is_err());
    }

    #[test]
    fn xmltodict_and_separate_attributes() {
        let a = json!({"Event": {"System": {"Provider": {"@Name": "P"}, "EventID": "4624"},
            "EventData": {"Data": [{"@Name": "TargetUserName", "#text": "bob"}, {"@Name": "LogonType", "#text": "3"}]}}});
        let e = flatten_windows_json(&a).unwrap();
        assert_eq!(e.get("Provider_Name"), Some(&Value::from("P")));
        assert_eq!(e.get("EventID"), Some(&Value::Int(4624)));
        assert_eq!(e.get("TargetUserName"), Some(&Value::from("bob")));
        assert_eq!(e.get("LogonType"), Some(&Value::from("3")));

        let b = json!({"Event": {"System": {"Provider_attributes": {"Name": "P"}, "EventID": 7,
            "EventID_attributes": {"Qualifiers": 1}}}});
        let e = flatten_windows_json(&b).unwrap();
        assert_eq!(e.get("Provider_Name"), Some(&Value::from("P")));
        assert_eq!(e.get("EventID"), Some(&Value::Int(7)));
        assert_eq!(e.get("EventID_Qualifiers"), Some(&Value::Int(1)));
    }

    #[test]
    fn generic_and_winlogbeat() {
        let g =
            json!({"a": {"b": 1, "c": [1, 2]}, "d": null, "@timestamp": "2020-01-01T00:00:00Z"});
        let e = flatten_json(&g).unwrap();
        assert_eq!(e.get("a.b"), Some(&Value::Int(1)));
        assert_eq!(
            e.get("a.c"),
            Some(&Value::List(vec![Value::Int(1), Value::Int(2)]))
        );
        assert_eq!(e.get("d"), Some(&Value::Null));
        assert_eq!(e.timestamp_millis, Some(1_577_836_800_000));

        let w = json!({"@timestamp": "2020-01-01T00:00:00.5Z",
            "winlog": {"event_id": "4624", "channel": "Security", "provider_name": "P",
                "computer_name": "PC", "record_id": 42, "event_data": {"TargetUserName": "bob", "Empty": null},
                "user_data": {"xml_name": "X", "Sub": {"Leaf": "v"}}}});
        let e = flatten_json(&w).unwrap();
        assert_eq!(e.get("EventID"), Some(&Value::Int(4624)));
        assert_eq!(e.get("Channel"), Some(&Value::from("Security")));
        assert_eq!(e.get("Provider_Name"), Some(&Value::from("P")));
        assert_eq!(e.get("Computer"), Some(&Value::from("PC")));
        assert_eq!(e.get("EventRecordID"), Some(&Value::Int(42)));
        assert_eq!(e.get("TargetUserName"), Some(&Value::from("bob")));
        assert_eq!(e.get("Empty"), Some(&Value::from("")));
        assert_eq!(e.get("Leaf"), Some(&Value::from("v")));
        assert_eq!(e.get("xml_name"), None);
        assert_eq!(
            e.get("winlog.event_data.TargetUserName"),
            Some(&Value::from("bob"))
        );
        assert_eq!(e.get("winlog.event_id"), Some(&Value::from("4624")));
        assert_eq!(e.timestamp_millis, Some(1_577_836_800_500));

        let dotted = json!({"winlog.event_id": 1, "winlog.event_data.Image": "x.exe"});
        let e = flatten_json(&dotted).unwrap();
        assert_eq!(e.get("EventID"), Some(&Value::Int(1)));
        assert_eq!(e.get("Image"), Some(&Value::from("x.exe")));
    }
}
