//! One document handed over whole (an upload, a file given to `dozor intel import`): a MISP
//! event or restSearch answer, a STIX bundle, a CSV list or freetext → indicators, with the
//! format told or sniffed from the bytes.
//!
//! - [`Format::Misp`]: an event (`{"Event": {…}}` as a feed's `<uuid>.json` or PyMISP's
//!   `to_json()` writes it, or the bare event object), a list of events, an
//!   `events/restSearch` answer (`{"response": [{"Event": …}]}`) or an
//!   `attributes/restSearch` answer (`{"response": {"Attribute": […]}}`, or a bare list of
//!   attributes). An event without attributes or objects (an `events/index` listing) is
//!   reported, not silently empty.
//! - [`Format::Stix`]: a STIX 2.x bundle, one object or a list of objects
//!   ([`crate::stix::parse_bundle`]).
//! - [`Format::Csv`]: the value in the first column, its kind guessed as freetext does; `#`
//!   lines are comments ([`crate::list::parse_csv`]).
//! - [`Format::Freetext`]: every token of every line that parses as an indicator, defanged
//!   forms included ([`crate::list::parse_freetext`]).
//!
//! [`sniff`] decides for `auto`: JSON whose shape is STIX (`"type": "bundle"`, or objects
//! with a `type` and an id `type--uuid`) is STIX, JSON with MISP's shape is MISP, other JSON
//! is refused; text whose first data line has a comma and starts with an indicator is CSV;
//! anything else is freetext.

use serde_json::Value;

use crate::list::{CsvSettings, ListSettings, ValueType, guess, parse_csv, parse_freetext};
use crate::misp_event::{EventContext, import_attribute, import_event};
use crate::{SourceError, SyncBatch, stix};

/// A document's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Misp,
    Stix,
    Csv,
    Freetext,
}

impl Format {
    /// `misp`, `stix`, `csv`, `freetext`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Misp => "misp",
            Format::Stix => "stix",
            Format::Csv => "csv",
            Format::Freetext => "freetext",
        }
    }

    /// The format named `name` (as [`Format::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "misp" => Some(Format::Misp),
            "stix" => Some(Format::Stix),
            "csv" => Some(Format::Csv),
            "freetext" => Some(Format::Freetext),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Is `doc` STIX: a bundle, an object with a `type` and an id `<type>--…`, or a list whose
/// first object is one?
fn is_stix(doc: &Value) -> bool {
    let object = |v: &Value| {
        v.get("type").and_then(Value::as_str).is_some_and(|t| {
            v.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with(&format!("{t}--")))
        })
    };
    match doc {
        Value::Object(_) => {
            doc.get("type").and_then(Value::as_str) == Some("bundle") || object(doc)
        }
        Value::Array(list) => list.first().is_some_and(object),
        _ => false,
    }
}

/// Is `v` an event (wrapped or bare)?
fn is_event(v: &Value) -> bool {
    v.get("Event").is_some_and(Value::is_object)
        || (v.is_object()
            && (v.get("info").is_some()
                || v.get("Object").is_some_and(Value::is_array)
                || (v.get("Attribute").is_some_and(Value::is_array) && v.get("uuid").is_some())))
}

/// Is `v` an attribute (a `type` and a `value`, no event of its own)?
fn is_attribute(v: &Value) -> bool {
    v.get("type").is_some_and(Value::is_string) && v.get("value").is_some()
}

/// Is `doc` MISP: an event, a list of events or attributes, a restSearch answer?
fn is_misp(doc: &Value) -> bool {
    match doc {
        Value::Object(map) => {
            map.contains_key("response")
                || is_event(doc)
                || map.get("Attribute").is_some_and(Value::is_array)
        }
        Value::Array(list) => list.first().is_some_and(|v| is_event(v) || is_attribute(v)),
        _ => false,
    }
}

/// The first line that is neither blank nor a `#` comment.
fn first_data_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The format of `bytes`, for `auto`. JSON that is neither STIX nor MISP is
/// [`SourceError::Malformed`] (a JSON document is never taken for freetext).
pub fn sniff(origin: &str, bytes: &[u8]) -> Result<Format, SourceError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &bytes[i..]);
    // A UTF-8 byte order mark.
    let start = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
    // `[` or `{` that is not JSON: text that starts with a bracket (`[.]`-defanged lists).
    if matches!(start.first(), Some(b'{' | b'['))
        && let Ok(doc) = serde_json::from_slice::<Value>(start)
    {
        if is_stix(&doc) {
            return Ok(Format::Stix);
        }
        if is_misp(&doc) {
            return Ok(Format::Misp);
        }
        return Err(SourceError::malformed(
            origin,
            "",
            "JSON that is neither a STIX bundle nor a MISP event, event list or restSearch answer",
        ));
    }
    let text = String::from_utf8_lossy(start);
    if let Some(line) = first_data_line(&text)
        && let Some((first, _)) = line.split_once(',')
        && guess(first.trim().trim_matches('"')).is_some()
    {
        return Ok(Format::Csv);
    }
    Ok(Format::Freetext)
}

/// A document's bytes → indicators of `source`. `origin` names it in errors and skips.
pub fn parse(
    format: Format,
    origin: &str,
    bytes: &[u8],
    source: &str,
) -> Result<SyncBatch, SourceError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match format {
        Format::Misp => parse_misp(origin, bytes, source),
        Format::Stix => stix::parse_bundle(origin, bytes, source),
        Format::Csv => {
            let mut settings = CsvSettings::new(source, 0, ValueType::Guess);
            settings.list.comment_prefix = Some("#".into());
            Ok(parse_csv(origin, bytes, &settings))
        }
        Format::Freetext => Ok(parse_freetext(
            &String::from_utf8_lossy(bytes),
            &ListSettings::new(source),
        )),
    }
}

/// A MISP JSON document → indicators (see the module documentation for the shapes).
pub fn parse_misp(origin: &str, bytes: &[u8], source: &str) -> Result<SyncBatch, SourceError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        SourceError::malformed(
            origin,
            format!("line {}", e.line()),
            format!("not JSON: {e}"),
        )
    })?;
    let mut batch = SyncBatch::default();
    let (doc, at) = match doc.get("response") {
        Some(inner) => (inner, "/response"),
        None => (&doc, ""),
    };
    match doc {
        Value::Array(list) => {
            for (i, item) in list.iter().enumerate() {
                let at = format!("{at}/{i}");
                if is_event(item) {
                    event(source, item, &at, &mut batch);
                } else if is_attribute(item) {
                    import_attribute(source, item, &EventContext::default(), &at, &mut batch);
                } else {
                    batch.skip(at, "neither a MISP event nor an attribute");
                }
            }
        }
        Value::Object(_) if is_event(doc) => event(source, doc, at, &mut batch),
        Value::Object(map) if map.get("Attribute").is_some_and(Value::is_array) => {
            let context = EventContext::default();
            for (i, attr) in map["Attribute"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                import_attribute(
                    source,
                    attr,
                    &context,
                    &format!("{at}/Attribute/{i}"),
                    &mut batch,
                );
            }
        }
        _ => {
            return Err(SourceError::malformed(
                origin,
                at,
                "not a MISP event, event list or restSearch answer",
            ));
        }
    }
    Ok(batch)
}

/// One event; one without attributes or objects is reported.
fn event(source: &str, event: &Value, at: &str, batch: &mut SyncBatch) {
    let inner = event.get("Event").unwrap_or(event);
    let has = |key: &str| {
        inner
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
    };
    if !has("Attribute") && !has("Object") {
        let object = inner
            .get("uuid")
            .and_then(Value::as_str)
            .map_or_else(|| at.to_owned(), str::to_owned);
        batch.skip(
            object,
            "event without attributes or objects (an events/index listing?)",
        );
        return;
    }
    import_event(source, event, at, batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        let cases: [(&str, Option<Format>); 9] = [
            (
                r#"{"type": "bundle", "id": "bundle--1", "objects": []}"#,
                Some(Format::Stix),
            ),
            (
                r#"[{"type": "indicator", "id": "indicator--1"}]"#,
                Some(Format::Stix),
            ),
            (
                r#"{"Event": {"uuid": "u", "Attribute": []}}"#,
                Some(Format::Misp),
            ),
            (r#"{"response": {"Attribute": []}}"#, Some(Format::Misp)),
            (
                r#"[{"type": "ip-dst", "value": "192.0.2.1"}]"#,
                Some(Format::Misp),
            ),
            (r#"{"hello": 1}"#, None),
            ("# list\n198.51.100.7,scanner\n", Some(Format::Csv)),
            (
                "hxxp://evil[.]example/x seen today\n",
                Some(Format::Freetext),
            ),
            ("[.]evil.example\nvalue,kind\n", Some(Format::Freetext)),
        ];
        for (text, want) in cases {
            assert_eq!(sniff("t", text.as_bytes()).ok(), want, "{text}");
        }
    }

    #[test]
    fn misp_shapes() {
        let attr = r#"{"uuid": "a1", "type": "domain", "value": "evil.example", "to_ids": true}"#;
        for doc in [
            format!(r#"{{"Event": {{"uuid": "e1", "Attribute": [{attr}]}}}}"#),
            format!(r#"{{"uuid": "e1", "info": "x", "Attribute": [{attr}]}}"#),
            format!(r#"{{"response": [{{"Event": {{"uuid": "e1", "Attribute": [{attr}]}}}}]}}"#),
            format!(r#"{{"response": {{"Attribute": [{attr}]}}}}"#),
            format!("[{attr}]"),
        ] {
            let batch = parse(Format::Misp, "t", doc.as_bytes(), "s").expect(&doc);
            assert_eq!(batch.iocs.len(), 1, "{doc}");
            assert_eq!(batch.iocs[0].value, "evil.example");
            assert!(batch.skipped.is_empty(), "{doc}: {:?}", batch.skipped);
        }
        let index = r#"[{"uuid": "e2", "info": "no attributes here"}]"#;
        let batch = parse(Format::Misp, "t", index.as_bytes(), "s").unwrap();
        assert!(batch.iocs.is_empty());
        assert_eq!(batch.skipped[0].object, "e2");
        assert!(parse(Format::Misp, "t", b"{\"x\": 1}", "s").is_err());
        assert!(parse(Format::Misp, "t", b"not json", "s").is_err());
    }

    #[test]
    fn csv_and_freetext() {
        let csv =
            b"\xef\xbb\xbf# header comment\n198.51.100.7,scanner\nvalue,kind\nevil.example,c2\n";
        let batch = parse(Format::Csv, "t", csv, "s").unwrap();
        assert_eq!(batch.iocs.len(), 2);
        assert_eq!(batch.skipped.len(), 1);
        assert_eq!(batch.skipped[0].object, "line 3");
        let batch = parse(
            Format::Freetext,
            "t",
            b"see hxxp://evil[.]example/x\nnothing\n",
            "s",
        )
        .unwrap();
        assert_eq!(batch.iocs.len(), 1);
        assert_eq!(batch.skipped.len(), 1);
    }
}
