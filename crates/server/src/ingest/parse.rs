//! Splitting a batch body into events: a JSON array (or one object) or NDJSON.

use std::cell::Cell;
use std::fmt;

use axum::http::{HeaderMap, header};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::problem::Problem;

/// How the events of a batch are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `application/json`: an array of event objects (or a single object).
    Json,
    /// `application/x-ndjson`: one event object per line; blank lines are ignored.
    Ndjson,
}

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
        _ => Err(Problem::unsupported_media_type(if essence.is_empty() {
            "set Content-Type to application/json (an array of events) or application/x-ndjson (one event per line)".to_owned()
        } else {
            format!(
                "Content-Type {essence:?} is not accepted; use application/json (an array of events) or application/x-ndjson (one event per line)"
            )
        })
        .with("supported_types", ["application/json", "application/x-ndjson"])),
    }
}

/// One element of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Value(Value),
    /// An NDJSON line that is not JSON: rejected alone, the rest of the batch goes on.
    Malformed(String),
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
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match format {
        BatchFormat::Json => parse_json(body, max_events),
        BatchFormat::Ndjson => parse_ndjson(body, max_events),
    }
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
        Ok(values) => Ok(values.into_iter().map(Item::Value).collect()),
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
        .map(
            |(number, line)| match serde_json::from_slice::<Value>(line) {
                Ok(value) => Item::Value(value),
                Err(e) => Item::Malformed(format!(
                    "line {number}, column {}: not valid JSON: {}",
                    e.column(),
                    json_error_message(&e)
                )),
            },
        )
        .collect())
}

struct BatchSeed<'a> {
    max: usize,
    too_many: &'a Cell<bool>,
    not_a_batch: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of event objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(value) = seq.next_element::<Value>()? {
            if out.len() == self.max {
                self.too_many.set(true);
                return Err(de::Error::custom("too many events"));
            }
            out.push(value);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(vec![value])
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_arrays_and_objects() {
        let items = parse_batch(br#"[{"a":1}, 2, {"b":[1]}]"#, BatchFormat::Json, 10).unwrap();
        assert_eq!(
            items,
            vec![
                Item::Value(json!({"a":1})),
                Item::Value(json!(2)),
                Item::Value(json!({"b":[1]}))
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
        let deep = format!("[{}{}]", "[".repeat(1000), "]".repeat(1000));
        assert!(matches!(
            parse_batch(deep.as_bytes(), BatchFormat::Json, 5).unwrap_err(),
            ParseError::Syntax { .. }
        ));
    }

    #[test]
    fn ndjson_lines_fail_alone() {
        let body = b"{\"a\":1}\r\n\n  \n{oops}\n{\"b\":2}";
        let items = parse_batch(body, BatchFormat::Ndjson, 10).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Item::Value(json!({"a":1})));
        match &items[1] {
            Item::Malformed(m) => assert!(m.starts_with("line 4, column 2: not valid JSON"), "{m}"),
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
}
