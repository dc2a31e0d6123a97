//! The event model shared by every Dozor crate.
//!
//! Detection never depends on a concrete event type: it walks an event's leaf fields through
//! [`EventFields`]. Decoders produce [`FlatEvent`]s (Windows events keep their provider's own
//! field names: `EventID`, `Channel`, `Image`, ...), while ECS-style JSON documents can be
//! read directly as nested `serde_json::Value`s whose leaves are visited by dotted path.

#[cfg(feature = "validator")]
pub mod schema;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A field name: short names (nearly all) are stored inline, without an allocation.
pub type FieldName = compact_str::CompactString;

/// A borrowed leaf value, as the detection engine sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Null => Ok(()),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Str(s) => f.write_str(s),
        }
    }
}

/// Anything whose leaf fields can be walked by name.
///
/// A field that holds a list is visited once per element under the same name.
pub trait EventFields {
    /// Calls `visit` for every leaf field. Values borrow from the event, so the engine can keep
    /// them for the duration of one evaluation without copying.
    fn visit_fields<'a>(&'a self, visit: &mut dyn FnMut(&str, FieldValue<'a>));

    /// Event time in milliseconds since the Unix epoch, when known (used by correlations).
    fn timestamp_millis(&self) -> Option<i64> {
        None
    }
}

/// An owned leaf value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    fn visit<'a>(&'a self, name: &str, visit: &mut dyn FnMut(&str, FieldValue<'a>)) {
        match self {
            Value::Null => visit(name, FieldValue::Null),
            Value::Bool(b) => visit(name, FieldValue::Bool(*b)),
            Value::Int(i) => visit(name, FieldValue::Int(*i)),
            Value::Float(x) => visit(name, FieldValue::Float(*x)),
            Value::Str(s) => visit(name, FieldValue::Str(s)),
            Value::List(items) => {
                for item in items {
                    item.visit(name, visit);
                }
            }
        }
    }

    /// The value as text (lists joined by a space), for display and CSV output.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Str(s) => s.clone(),
            Value::List(items) => items
                .iter()
                .map(Value::to_text)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// An event as an ordered list of named leaf values: what the decoders produce.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlatEvent {
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp_millis: Option<i64>,
    /// Leaf fields in document order. Names may repeat; each occurrence is a value.
    pub fields: Vec<(FieldName, Value)>,
}

impl FlatEvent {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: impl Into<FieldName>, value: impl Into<Value>) {
        self.fields.push((name.into(), value.into()));
    }

    /// First value of a field, by exact name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The event as a flat JSON object (repeated names become arrays).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, value) in &self.fields {
            let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
            match map.get_mut(name.as_str()) {
                Some(serde_json::Value::Array(items)) => items.push(json),
                Some(existing) => {
                    let first = existing.take();
                    *existing = serde_json::Value::Array(vec![first, json]);
                }
                None => {
                    map.insert(name.to_string(), json);
                }
            }
        }
        serde_json::Value::Object(map)
    }
}

impl EventFields for FlatEvent {
    fn visit_fields<'a>(&'a self, visit: &mut dyn FnMut(&str, FieldValue<'a>)) {
        for (name, value) in &self.fields {
            value.visit(name, visit);
        }
    }

    fn timestamp_millis(&self) -> Option<i64> {
        self.timestamp_millis
    }
}

/// Nested JSON documents (ECS style) are visited by dotted path: `{"process":{"name":"x"}}`
/// yields `process.name`. Keys that already contain dots are kept as they are.
impl EventFields for serde_json::Value {
    fn visit_fields<'a>(&'a self, visit: &mut dyn FnMut(&str, FieldValue<'a>)) {
        let mut path = String::new();
        visit_json(self, &mut path, visit);
    }
}

fn visit_json<'a>(
    value: &'a serde_json::Value,
    path: &mut String,
    visit: &mut dyn FnMut(&str, FieldValue<'a>),
) {
    match value {
        serde_json::Value::Null => visit(path, FieldValue::Null),
        serde_json::Value::Bool(b) => visit(path, FieldValue::Bool(*b)),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                visit(path, FieldValue::Int(i))
            } else if let Some(x) = n.as_f64() {
                visit(path, FieldValue::Float(x))
            }
        }
        serde_json::Value::String(s) => visit(path, FieldValue::Str(s)),
        serde_json::Value::Array(items) => {
            for item in items {
                visit_json(item, path, visit);
            }
        }
        serde_json::Value::Object(map) => {
            let base = path.len();
            for (key, item) in map {
                if base > 0 {
                    path.push('.');
                }
                path.push_str(key);
                visit_json(item, path, visit);
                path.truncate(base);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(e: &dyn EventFields) -> Vec<(String, String)> {
        let mut out = Vec::new();
        e.visit_fields(&mut |n, v| out.push((n.to_owned(), v.to_string())));
        out
    }

    #[test]
    fn nested_json_is_visited_by_dotted_path() {
        let doc = serde_json::json!({"process": {"name": "a.exe", "args": ["-x", "-y"]}, "n": 3});
        let got = collect(&doc);
        assert!(got.contains(&("process.name".into(), "a.exe".into())));
        assert!(got.contains(&("process.args".into(), "-y".into())));
        assert!(got.contains(&("n".into(), "3".into())));
    }

    #[test]
    fn flat_event_lists_repeat_the_name() {
        let mut e = FlatEvent::new();
        e.push("Data", Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(
            collect(&e),
            vec![("Data".into(), "a".into()), ("Data".into(), "b".into())]
        );
        assert_eq!(e.to_json(), serde_json::json!({"Data": ["a", "b"]}));
    }
}

/// A normalized (ECS-aligned) event as detection rules read it, without copying anything.
///
/// Every leaf is visited by its dotted path (`process.command_line`, for rules on agent events
/// through a field mapping), and Windows events also show their native names, as Sigma rules
/// for Windows expect them: `EventID`, `Channel`, `Provider_Name`, `Computer`,
/// `EventRecordID` from `winlog.*`, and every `winlog.event_data.X` / `winlog.user_data.X` as
/// `X`. The time comes from `@timestamp`.
#[derive(Debug, Clone, Copy)]
pub struct NormalizedEvent<'a>(pub &'a serde_json::Value);

const WINLOG_NATIVE: &[(&str, &str)] = &[
    ("event_id", "EventID"),
    ("channel", "Channel"),
    ("provider_name", "Provider_Name"),
    ("computer", "Computer"),
    ("computer_name", "Computer"),
    ("record_id", "EventRecordID"),
];

impl EventFields for NormalizedEvent<'_> {
    fn visit_fields<'b>(&'b self, visit: &mut dyn FnMut(&str, FieldValue<'b>)) {
        let doc: &'b serde_json::Value = self.0;
        doc.visit_fields(visit);
        let Some(winlog) = doc.get("winlog") else {
            return;
        };
        for (from, to) in WINLOG_NATIVE {
            if let Some(v) = winlog.get(*from) {
                v.visit_fields(&mut |_, value| visit(to, value));
            }
        }
        for section in ["event_data", "user_data"] {
            if let Some(serde_json::Value::Object(data)) = winlog.get(section) {
                for (name, v) in data {
                    v.visit_fields(&mut |_, value| visit(name, value));
                }
            }
        }
    }

    fn timestamp_millis(&self) -> Option<i64> {
        self.0
            .get("@timestamp")
            .and_then(|t| t.as_str())
            .and_then(parse_rfc3339_millis)
    }
}

/// [`NormalizedEvent`] copied into a [`FlatEvent`].
pub fn detection_view(doc: &serde_json::Value) -> FlatEvent {
    let view = NormalizedEvent(doc);
    let mut out = FlatEvent::new();
    view.visit_fields(&mut |name, value| {
        out.fields
            .push((FieldName::from(name), Value::from_field(value)));
    });
    out.timestamp_millis = view.timestamp_millis();
    out
}

impl Value {
    fn from_field(v: FieldValue<'_>) -> Value {
        match v {
            FieldValue::Null => Value::Null,
            FieldValue::Bool(b) => Value::Bool(b),
            FieldValue::Int(i) => Value::Int(i),
            FieldValue::Float(x) => Value::Float(x),
            FieldValue::Str(s) => Value::Str(s.to_owned()),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-04-17T05:24:53.092Z`, offsets allowed).
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = (h1 - b'0') as i64 * 10 + (h2 - b'0') as i64;
            let m = (m1 - b'0') as i64 * 10 + (m2 - b'0') as i64;
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis)
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn windows_names_come_back_from_winlog() {
        let doc = serde_json::json!({
            "@timestamp": "2026-04-17T05:24:53.092Z",
            "event": {"id": "0190d2e4-0000-7000-8000-000000000000"},
            "process": {"executable": "C:\\Windows\\System32\\whoami.exe"},
            "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                       "event_data": {"Image": "C:\\Windows\\System32\\whoami.exe", "ProcessId": 42}}
        });
        let v = detection_view(&doc);
        assert_eq!(v.get("EventID"), Some(&Value::Int(1)));
        assert_eq!(
            v.get("Channel"),
            Some(&Value::from("Microsoft-Windows-Sysmon/Operational"))
        );
        assert_eq!(
            v.get("Image"),
            Some(&Value::from("C:\\Windows\\System32\\whoami.exe"))
        );
        assert_eq!(v.get("ProcessId"), Some(&Value::Int(42)));
        assert_eq!(
            v.get("process.executable"),
            Some(&Value::from("C:\\Windows\\System32\\whoami.exe"))
        );
        assert_eq!(v.timestamp_millis, Some(1_776_403_493_092));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_millis("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500)
        );
        assert_eq!(parse_rfc3339_millis("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
    }
}
