//! Splitting a batch body into events: a JSON array (or one object), NDJSON, or a protobuf
//! `EventBatch` (dozor-wire), whose events are held to the same shape limits as JSON ones.

use std::cell::Cell;
use std::fmt;

use axum::http::{HeaderMap, header};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::problem::Problem;

/// How the events of a batch are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `application/json`: an array of event objects (or a single object).
    Json,
    /// `application/x-ndjson`: one event object per line; blank lines are ignored.
    Ndjson,
    /// `application/x-protobuf`: a `dozor.wire.v1.EventBatch` (crates/wire/proto/batch.proto).
    Protobuf,
}

impl BatchFormat {
    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            BatchFormat::Json => "json",
            BatchFormat::Ndjson => "ndjson",
            BatchFormat::Protobuf => "protobuf",
        }
    }
}

const SUPPORTED_TYPES: [&str; 3] = [
    "application/json",
    "application/x-ndjson",
    dozor_wire::CONTENT_TYPE,
];

/// The batch format from `Content-Type`: 415 when it is missing or something else.
pub fn batch_format(headers: &HeaderMap) -> Result<BatchFormat, Problem> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BatchFormat::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
        | "application/x-jsonlines" => Ok(BatchFormat::Ndjson),
        dozor_wire::CONTENT_TYPE | "application/protobuf" => Ok(BatchFormat::Protobuf),
        _ => Err(Problem::unsupported_media_type(if essence.is_empty() {
            "set Content-Type to application/json (an array of events), application/x-ndjson (one event per line) or application/x-protobuf (an EventBatch)".to_owned()
        } else {
            format!(
                "Content-Type {essence:?} is not accepted; use application/json (an array of events), application/x-ndjson (one event per line) or application/x-protobuf (an EventBatch)"
            )
        })
        .with("supported_types", SUPPORTED_TYPES)),
    }
}

/// How deep an event's objects may nest (the event object is level 1). ECS events nest a
/// few levels; deeper input is refused before it is built.
pub const MAX_EVENT_DEPTH: usize = 16;
/// Most JSON values (objects, arrays and scalars together) in one event.
pub const MAX_EVENT_VALUES: usize = 10_000;

/// One element of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Value(Value),
    /// An element that is not an event (not JSON, not an object, or shaped as no event can
    /// be): rejected alone, the rest of the batch goes on. `pointer` is a JSON pointer into
    /// the element.
    Malformed {
        pointer: String,
        message: String,
    },
}

impl Item {
    fn malformed(message: impl Into<String>) -> Item {
        Item::Malformed {
            pointer: String::new(),
            message: message.into(),
        }
    }
}

/// Why a whole batch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More than `limit` events.
    TooMany { limit: usize },
    /// The body is not JSON (JSON format only: NDJSON lines fail one by one).
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The top-level JSON value is neither an array nor an object.
    NotABatch,
    /// The body is not a protobuf `EventBatch`.
    Protobuf { message: String },
}

impl ParseError {
    pub fn into_problem(self) -> Problem {
        match self {
            ParseError::TooMany { limit } => Problem::too_large(
                "limits.max_batch_events",
                limit as u64,
                format!(
                    "the batch has more than {limit} events (limits.max_batch_events = {limit}); send smaller batches"
                ),
            ),
            ParseError::Syntax {
                line,
                column,
                message,
            } => Problem::bad_request(
                "malformed-json",
                format!("the body is not valid JSON: {message} at line {line}, column {column}"),
            )
            .with("line", line)
            .with("column", column),
            ParseError::NotABatch => Problem::bad_request(
                "not-a-batch",
                "the body must be a JSON array of event objects (or one event object)",
            ),
            ParseError::Protobuf { message } => Problem::bad_request("malformed-protobuf", message),
        }
    }
}

/// The message of a serde_json error without its " at line L column C" suffix.
pub fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Splits a batch body into items, refusing more than `max_events` as soon as it is known.
pub fn parse_batch(
    body: &[u8],
    format: BatchFormat,
    max_events: usize,
) -> Result<Vec<Item>, ParseError> {
    match format {
        BatchFormat::Json => parse_json(strip_bom(body), max_events),
        BatchFormat::Ndjson => parse_ndjson(strip_bom(body), max_events),
        BatchFormat::Protobuf => parse_protobuf(body, max_events),
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// A protobuf batch: decoded whole (the body limit bounds it), then each event converted to
/// its document and held to the limits [`EventSeed`] applies to JSON, refused alone.
fn parse_protobuf(body: &[u8], max_events: usize) -> Result<Vec<Item>, ParseError> {
    let events = dozor_wire::decode_batch(body).map_err(|e| ParseError::Protobuf {
        message: e.to_string(),
    })?;
    if events.len() > max_events {
        return Err(ParseError::TooMany { limit: max_events });
    }
    Ok(events
        .into_iter()
        .map(|event| match dozor_wire::event_from_proto(event) {
            Ok(document) => match shape_refusal(&document) {
                None => Item::Value(document),
                Some(refusal) => Item::Malformed {
                    pointer: refusal.pointer(),
                    message: refusal.message,
                },
            },
            Err(bad) => Item::Malformed {
                pointer: bad.pointer,
                message: bad.message,
            },
        })
        .collect())
}

/// Where a built document breaks the limits of [`EventSeed`], if it does (for events that
/// were not parsed from JSON).
fn shape_refusal(document: &Value) -> Option<Refusal> {
    fn walk(
        value: &Value,
        objects_above: usize,
        in_array: bool,
        values: &mut usize,
    ) -> Result<(), Refusal> {
        let refuse = |message: String| Refusal {
            reversed_path: Vec::new(),
            message,
        };
        // The segment is only made on the way back up from a refusal (no copy per member).
        let at = |mut refusal: Refusal, segment: String| {
            refusal.reversed_path.push(segment);
            refusal
        };
        match value {
            Value::Object(members) => {
                if objects_above >= MAX_EVENT_DEPTH {
                    return Err(refuse(too_deep()));
                }
                for (key, member) in members {
                    count_value(values).map_err(|m| at(refuse(m), key.clone()))?;
                    walk(member, objects_above + 1, false, values)
                        .map_err(|r| at(r, key.clone()))?;
                }
            }
            Value::Array(items) => {
                if in_array {
                    return Err(refuse(array_in_array()));
                }
                for (index, item) in items.iter().enumerate() {
                    count_value(values).map_err(|m| at(refuse(m), index.to_string()))?;
                    walk(item, objects_above, true, values)
                        .map_err(|r| at(r, index.to_string()))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(document, 0, false, &mut 0).err()
}

fn count_value(values: &mut usize) -> Result<(), String> {
    *values += 1;
    if *values > MAX_EVENT_VALUES {
        Err(too_many_values())
    } else {
        Ok(())
    }
}

fn too_many_values() -> String {
    format!("the event has more than {MAX_EVENT_VALUES} values (the limit per event)")
}

fn too_deep() -> String {
    format!("objects nest deeper than {MAX_EVENT_DEPTH} levels (the limit per event)")
}

fn array_in_array() -> String {
    "an array inside an array: event fields hold scalars, objects or arrays of them".to_owned()
}

fn parse_json(body: &[u8], max_events: usize) -> Result<Vec<Item>, ParseError> {
    let too_many = Cell::new(false);
    let not_a_batch = Cell::new(false);
    let seed = BatchSeed {
        max: max_events,
        too_many: &too_many,
        not_a_batch: &not_a_batch,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match result {
        Ok(items) => Ok(items),
        Err(_) if too_many.get() => Err(ParseError::TooMany { limit: max_events }),
        Err(_) if not_a_batch.get() => Err(ParseError::NotABatch),
        Err(e) => Err(ParseError::Syntax {
            line: e.line(),
            column: e.column(),
            message: json_error_message(&e),
        }),
    }
}

fn parse_ndjson(body: &[u8], max_events: usize) -> Result<Vec<Item>, ParseError> {
    let lines: Vec<(usize, &[u8])> = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
        .collect();
    if lines.len() > max_events {
        return Err(ParseError::TooMany { limit: max_events });
    }
    Ok(lines
        .into_iter()
        .map(|(number, line)| {
            let mut de = serde_json::Deserializer::from_slice(line);
            match EventSeed
                .deserialize(&mut de)
                .and_then(|item| de.end().map(|()| item))
            {
                Ok(item) => item,
                Err(e) => Item::malformed(format!(
                    "line {number}, column {}: not valid JSON: {}",
                    e.column(),
                    json_error_message(&e)
                )),
            }
        })
        .collect())
}

struct BatchSeed<'a> {
    max: usize,
    too_many: &'a Cell<bool>,
    not_a_batch: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = Vec<Item>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_> {
    type Value = Vec<Item>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of event objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(EventSeed)? {
            if out.len() == self.max {
                self.too_many.set(true);
                return Err(de::Error::custom("too many events"));
            }
            out.push(item);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(vec![EventSeed.visit_map(map)?])
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.not_a_batch.set(true);
        Err(E::custom("not a batch"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.visit_bool(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.visit_bool(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.visit_bool(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.visit_bool(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_bool(false)
    }
}

/// Reads one element of a batch as an event, refusing (without building it) what no event
/// can be: a non-object, objects nested deeper than [`MAX_EVENT_DEPTH`], an array inside an
/// array, more than [`MAX_EVENT_VALUES`] values. What is refused is skipped with
/// [`IgnoredAny`], which allocates nothing, so hostile shapes cost no memory.
struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Item;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn not_an_object(found: &str) -> Item {
    Item::malformed(format!("an event must be a JSON object, not {found}"))
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
        let mut shape = Shape::default();
        let object = BoundedValue {
            shape: &mut shape,
            depth: 0,
            in_array: false,
        }
        .visit_map(map)?;
        Ok(match shape.refused {
            None => Item::Value(object),
            Some(refusal) => Item::Malformed {
                pointer: refusal.pointer(),
                message: refusal.message,
            },
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object("an array"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Item, E> {
        Ok(not_an_object("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Item, E> {
        Ok(not_an_object("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Item, E> {
        Ok(not_an_object("null"))
    }
}

/// Why an event was refused, and where: the path is collected on the way back up, innermost
/// segment first.
struct Refusal {
    reversed_path: Vec<String>,
    message: String,
}

impl Refusal {
    fn pointer(&self) -> String {
        self.reversed_path
            .iter()
            .rev()
            .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// What one event has used so far.
#[derive(Default)]
struct Shape {
    values: usize,
    refused: Option<Refusal>,
}

impl Shape {
    fn refuse(&mut self, message: String) {
        if self.refused.is_none() {
            self.refused = Some(Refusal {
                reversed_path: Vec::new(),
                message,
            });
        }
    }
}

/// A value inside an event, within the limits of [`EventSeed`]; once the event is refused,
/// the rest of it is skipped and `Null` stands in.
struct BoundedValue<'a> {
    shape: &'a mut Shape,
    /// Objects above this value.
    depth: usize,
    /// The value is an array element.
    in_array: bool,
}

impl BoundedValue<'_> {
    /// Reads a child value; when it is what refused the event, notes its path segment.
    fn child<'de, A, F>(&mut self, in_array: bool, segment: F, read: A) -> Result<Value, A::Error>
    where
        A: ChildRead<'de>,
        F: FnOnce() -> String,
    {
        let was_refused = self.shape.refused.is_some();
        let value = read.read(BoundedValue {
            shape: self.shape,
            depth: self.depth,
            in_array,
        })?;
        if !was_refused && let Some(refusal) = &mut self.shape.refused {
            refusal.reversed_path.push(segment());
        }
        Ok(value)
    }
}

/// Reads the next element or map value with a [`BoundedValue`] seed.
trait ChildRead<'de> {
    type Error;
    fn read(self, seed: BoundedValue<'_>) -> Result<Value, Self::Error>;
}

struct NextElement<'s, A>(&'s mut A, &'s mut bool);

impl<'de, A: SeqAccess<'de>> ChildRead<'de> for NextElement<'_, A> {
    type Error = A::Error;
    fn read(self, seed: BoundedValue<'_>) -> Result<Value, A::Error> {
        match self.0.next_element_seed(seed)? {
            Some(value) => Ok(value),
            None => {
                *self.1 = true;
                Ok(Value::Null)
            }
        }
    }
}

struct NextValue<'s, A>(&'s mut A);

impl<'de, A: MapAccess<'de>> ChildRead<'de> for NextValue<'_, A> {
    type Error = A::Error;
    fn read(self, seed: BoundedValue<'_>) -> Result<Value, A::Error> {
        self.0.next_value_seed(seed)
    }
}

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.shape.refused.is_some() {
            deserializer.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Value::Null);
        }
        self.shape.values += 1;
        if self.shape.values > MAX_EVENT_VALUES {
            self.shape.refuse(too_many_values());
            deserializer.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Value::Null);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_EVENT_DEPTH {
            self.shape.refuse(too_deep());
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        }
        self.depth += 1;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = self.child(false, || key.clone(), NextValue(&mut map))?;
            if self.shape.refused.is_none() {
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.in_array {
            self.shape.refuse(array_in_array());
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::Null);
        }
        let mut items = Vec::new();
        loop {
            let mut done = false;
            let index = items.len();
            let value = self.child(true, || index.to_string(), NextElement(&mut seq, &mut done))?;
            if done {
                break;
            }
            if self.shape.refused.is_none() {
                items.push(value);
            }
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_arrays_and_objects() {
        let items = parse_batch(
            br#"[{"a":1}, 2, {"b":[1, {"c": null}], "d": 1.5, "e": "x"}]"#,
            BatchFormat::Json,
            10,
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                Item::Value(json!({"a":1})),
                Item::malformed("an event must be a JSON object, not a number"),
                Item::Value(json!({"b":[1, {"c": null}], "d": 1.5, "e": "x"}))
            ]
        );
        let items = parse_batch(b"\xEF\xBB\xBF {\"a\":1} ", BatchFormat::Json, 10).unwrap();
        assert_eq!(items, vec![Item::Value(json!({"a":1}))]);
        assert_eq!(
            parse_batch(b"[]", BatchFormat::Json, 10).unwrap(),
            Vec::<Item>::new()
        );
    }

    #[test]
    fn json_errors_say_where() {
        let e = parse_batch(b"[{\"a\":1},\n {\"b\" 2}]", BatchFormat::Json, 10).unwrap_err();
        match e {
            ParseError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 7)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_batch(b"[{}] x", BatchFormat::Json, 10).unwrap_err(),
            ParseError::Syntax { line: 1, .. }
        ));
        assert_eq!(
            parse_batch(b"\"x\"", BatchFormat::Json, 10).unwrap_err(),
            ParseError::NotABatch
        );
        assert_eq!(
            parse_batch(b"[{},{},{}]", BatchFormat::Json, 2).unwrap_err(),
            ParseError::TooMany { limit: 2 }
        );
        // The limit stops the parse early: no need to read a gigantic array.
        let mut huge = b"[".to_vec();
        huge.extend(b"{},".repeat(1_000_000));
        huge.extend(b"{}]");
        assert_eq!(
            parse_batch(&huge, BatchFormat::Json, 5).unwrap_err(),
            ParseError::TooMany { limit: 5 }
        );
        // Deep nesting is skipped without recursion and refused as one element.
        let deep = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_batch(deep.as_bytes(), BatchFormat::Json, 5).unwrap(),
            vec![Item::malformed(
                "an event must be a JSON object, not an array"
            )]
        );
    }

    #[test]
    fn ndjson_lines_fail_alone() {
        let body = b"{\"a\":1}\r\n\n  \n{oops}\n{\"b\":2}";
        let items = parse_batch(body, BatchFormat::Ndjson, 10).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Item::Value(json!({"a":1})));
        match &items[1] {
            Item::Malformed { message, .. } => assert!(
                message.starts_with("line 4, column 2: not valid JSON"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(items[2], Item::Value(json!({"b":2})));
        assert_eq!(
            parse_batch(b"{}\n{}\n{}\n", BatchFormat::Ndjson, 2).unwrap_err(),
            ParseError::TooMany { limit: 2 }
        );
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(batch_format(&h).unwrap_err().status, 415);
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(batch_format(&h).unwrap(), BatchFormat::Json);
        h.insert(
            header::CONTENT_TYPE,
            "application/x-ndjson".parse().unwrap(),
        );
        assert_eq!(batch_format(&h).unwrap(), BatchFormat::Ndjson);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(batch_format(&h).unwrap_err().status, 415);
    }

    fn refusal(item: &Item) -> (&str, &str) {
        match item {
            Item::Malformed { pointer, message } => (pointer, message),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn shapes_no_event_has_are_refused_alone() {
        let deep = format!("{}1{}", r#"{"a":"#.repeat(20), "}".repeat(20));
        let body =
            format!(r#"[{{"ok":1}}, {{"x":{{"y":[1,[2]]}}}}, [[],[]], {deep}, {{"after":true}}]"#);
        let items = parse_batch(body.as_bytes(), BatchFormat::Json, 10).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], Item::Value(json!({"ok":1})));
        let (pointer, message) = refusal(&items[1]);
        assert_eq!(pointer, "/x/y/1");
        assert!(message.contains("an array inside an array"), "{message}");
        assert_eq!(
            refusal(&items[2]),
            ("", "an event must be a JSON object, not an array")
        );
        let (pointer, message) = refusal(&items[3]);
        assert_eq!(pointer, format!("{}", "/a".repeat(16)));
        assert!(message.contains("deeper than 16"), "{message}");
        assert_eq!(items[4], Item::Value(json!({"after":true})));

        let wide = format!(
            r#"{{"many":[{}0], "k/~":[[]]}}"#,
            "0,".repeat(MAX_EVENT_VALUES)
        );
        let items = parse_batch(wide.as_bytes(), BatchFormat::Ndjson, 1).unwrap();
        let (pointer, message) = refusal(&items[0]);
        assert_eq!(pointer, format!("/many/{}", MAX_EVENT_VALUES - 1));
        assert!(message.contains("more than 10000 values"), "{message}");
        let odd = parse_batch(br#"{"k/~":[[]]}"#, BatchFormat::Ndjson, 1).unwrap();
        assert_eq!(refusal(&odd[0]).0, "/k~1~0/0");
    }

    #[test]
    fn nested_arrays_are_skipped_not_built() {
        // 3 MiB of `[[],[],...]`: built as values it took ~40 bytes per input byte; now it is
        // skipped (serde's IgnoredAny allocates nothing) and the element refused alone.
        // bench/hostile measures the server's peak memory under such bodies.
        let mut body = b"[[".to_vec();
        body.extend(b"[],".repeat(1 << 20));
        body.extend(b"[]]]");
        let items = parse_batch(&body, BatchFormat::Json, 10).unwrap();
        assert_eq!(
            refusal(&items[0]),
            ("", "an event must be a JSON object, not an array")
        );
        let mut body = b"[{\"a\":[".to_vec();
        body.extend(b"[],".repeat(1 << 20));
        body.extend(b"[]]}]");
        let items = parse_batch(&body, BatchFormat::Json, 10).unwrap();
        assert_eq!(refusal(&items[0]).0, "/a/0");
    }

    /// A protobuf batch gives the same items as the same documents in NDJSON: the same
    /// documents, and the same refusals (pointer and message) for the shapes no event can have.
    #[test]
    fn protobuf_events_meet_the_json_limits() {
        let mut deep = json!({"leaf": 1});
        for level in 0..MAX_EVENT_DEPTH {
            deep = json!({ format!("l{level}"): deep });
        }
        let many: Vec<Value> = (0..MAX_EVENT_VALUES).map(|i| json!(i)).collect();
        let documents = vec![
            json!({"@timestamp": "2026-12-07T10:00:00Z", "process": {"pid": 4}, "x": [1, {"y": null}]}),
            deep,
            json!({"a": {"b": [1, [2]]}}),
            json!({"few": [1, 2], "many": many}),
            json!({}),
        ];
        let mut ndjson = Vec::new();
        for d in &documents {
            serde_json::to_writer(&mut ndjson, d).unwrap();
            ndjson.push(b'\n');
        }
        let from_json = parse_batch(&ndjson, BatchFormat::Ndjson, 10).unwrap();
        let body = dozor_wire::encode_batch(documents.clone()).unwrap();
        let from_protobuf = parse_batch(&body, BatchFormat::Protobuf, 10).unwrap();
        assert_eq!(from_protobuf, from_json);
        assert_eq!(from_protobuf[0], Item::Value(documents[0].clone()));
        assert!(matches!(from_protobuf[1], Item::Malformed { .. }));
        assert!(matches!(from_protobuf[2], Item::Malformed { .. }));
        assert!(matches!(from_protobuf[3], Item::Malformed { .. }));

        assert_eq!(
            parse_batch(&body, BatchFormat::Protobuf, 4).unwrap_err(),
            ParseError::TooMany { limit: 4 }
        );
        let ParseError::Protobuf { message } =
            parse_batch(b"[{\"a\": 1}]", BatchFormat::Protobuf, 10).unwrap_err()
        else {
            panic!("JSON is not protobuf");
        };
        assert!(message.contains("not a protobuf EventBatch"), "{message}");
    }

    #[test]
    fn protobuf_is_chosen_by_content_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        assert_eq!(batch_format(&headers).unwrap(), BatchFormat::Protobuf);
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let refused = batch_format(&headers).unwrap_err();
        assert_eq!(refused.status, 415);
    }
}
