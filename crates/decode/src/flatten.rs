//! The one Windows event flattener that every input shares.
//!
//! Front-ends (evtx JSON bytes, evtx_dump-style `serde_json::Value`s, Windows event XML) walk
//! their own structure and describe it as an XML-like element stream: [`WinFlattener::start`]
//! an element, [`WinFlattener::attr`] its attributes, [`WinFlattener::text`] its text value(s),
//! [`WinFlattener::end`] it. The flattener applies the naming rules (see the crate README), so
//! the same record gives the same [`FlatEvent`] whatever it was read from.

use std::collections::HashMap;

use compact_str::{CompactString, format_compact};
use dozor_event::{FlatEvent, Value};

use crate::time::parse_timestamp_millis;

/// A leaf value as a front-end sees it, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar<'_> {
    fn to_value(self) -> Value {
        match self {
            Scalar::Null => Value::Str(String::new()),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(x) => Value::Float(x),
            Scalar::Str(s) => Value::Str(s.to_owned()),
        }
    }
}

/// Value as text (for System fields, which are text unless they are numbers).
fn value_text(v: Value) -> Value {
    match v {
        Value::Str(_) | Value::List(_) => v,
        Value::Null => Value::Str(String::new()),
        other => Value::Str(other.to_text()),
    }
}

/// Which top-level part of `<Event>` an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    System,
    /// `EventData` or `UserData`: their `Data` children are named by their `Name` attribute.
    DataContainer,
    /// `RenderingInfo`: leaves are prefixed `RenderingInfo_` (they would collide with System).
    RenderingInfo,
    /// Any other payload element (`ProcessingErrorData`, `DebugData`, ...).
    Other,
}

#[derive(Debug)]
struct Frame {
    /// The element's name, `names[name_start..name_end]`.
    name_start: usize,
    name_end: usize,
    /// A `Data` element's `Name` attribute, `names[data_name.0..data_name.1]`.
    data_name: Option<(usize, usize)>,
    /// A `Data` child of `EventData`/`UserData`.
    is_data: bool,
    has_children: bool,
    value: Acc,
}

#[derive(Debug, Default)]
enum Acc {
    #[default]
    None,
    One(Value),
    Many(Vec<Value>),
}

impl Acc {
    fn push(&mut self, v: Value) {
        *self = match std::mem::take(self) {
            Acc::None => Acc::One(v),
            Acc::One(first) => Acc::Many(vec![first, v]),
            Acc::Many(mut items) => {
                items.push(v);
                Acc::Many(items)
            }
        };
    }

    fn take(&mut self) -> Option<Value> {
        match std::mem::take(self) {
            Acc::None => None,
            Acc::One(v) => Some(v),
            Acc::Many(items) => Some(Value::List(items)),
        }
    }

    fn is_blank(&self) -> bool {
        match self {
            Acc::None => true,
            Acc::One(Value::Str(s)) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// System fields that are numbers. In XML they are text; they become `Value::Int` when the text
/// is a decimal integer, whatever the input, so all inputs agree.
fn is_numeric_system(field: &str) -> bool {
    matches!(
        field,
        "EventID"
            | "EventID_Qualifiers"
            | "Version"
            | "Level"
            | "Task"
            | "Opcode"
            | "EventRecordID"
            | "Execution_ProcessID"
            | "Execution_ThreadID"
            | "Execution_ProcessorID"
            | "Execution_SessionID"
            | "Execution_KernelTime"
            | "Execution_UserTime"
            | "Execution_ProcessorTime"
    )
}

/// The field name of a System element's attribute.
fn system_attr_name(elem: &str, attr: &str) -> CompactString {
    let known = match (elem, attr) {
        ("TimeCreated", "SystemTime") => "TimeCreated",
        ("Provider", "EventSourceName") => "EventSourceName",
        ("Provider", "Name") => "Provider_Name",
        ("Provider", "Guid") => "Provider_Guid",
        ("Execution", "ProcessID") => "Execution_ProcessID",
        ("Execution", "ThreadID") => "Execution_ThreadID",
        ("Security", "UserID") => "Security_UserID",
        ("Correlation", "ActivityID") => "Correlation_ActivityID",
        ("Correlation", "RelatedActivityID") => "Correlation_RelatedActivityID",
        ("EventID", "Qualifiers") => "EventID_Qualifiers",
        _ => {
            let mut name = CompactString::with_capacity(elem.len() + 1 + attr.len());
            name.push_str(elem);
            name.push('_');
            name.push_str(attr);
            return name;
        }
    };
    CompactString::const_new(known)
}

/// The most fields (leaf values, System and payload) one event may have. Real events have tens;
/// the cap keeps a hostile record's cost bounded, and the event is refused, not truncated.
pub const MAX_FIELDS_PER_EVENT: usize = 4096;

/// Why an event could not be flattened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} has more than {MAX_FIELDS_PER_EVENT} fields (the limit per event); it was skipped",
    match .record_id { Some(id) => format!("event record {id}"), None => "the event".to_owned() })]
pub struct TooManyFields {
    /// The event's `EventRecordID`, when its System part gave one.
    pub record_id: Option<i64>,
}

/// Below this many names a linear scan is cheaper than a hash map; above it, a scan per field
/// would make flattening quadratic in the number of fields.
const SCAN_LIMIT: usize = 32;

/// Positions of field names in `fields[base..]`, for finding a name again in constant time.
/// Built only once a section has more than [`SCAN_LIMIT`] fields.
#[derive(Debug, Default)]
struct NameIndex {
    map: Option<HashMap<CompactString, usize>>,
}

impl NameIndex {
    /// Where `name` first is in `fields[base..]` (an absolute index).
    fn position(
        &mut self,
        fields: &[(CompactString, Value)],
        base: usize,
        name: &str,
    ) -> Option<usize> {
        let section = fields.get(base..).unwrap_or_default();
        if self.map.is_none() && section.len() > SCAN_LIMIT {
            let mut map = HashMap::with_capacity(section.len() * 2);
            for (i, (n, _)) in section.iter().enumerate() {
                map.entry(n.clone()).or_insert(base + i);
            }
            self.map = Some(map);
        }
        match &self.map {
            Some(map) => map.get(name).copied(),
            None => {
                count_comparisons(section.len());
                section
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|i| base + i)
            }
        }
    }

    /// `name` was pushed at `position`.
    fn pushed(&mut self, name: &CompactString, position: usize) {
        if let Some(map) = &mut self.map {
            map.entry(name.clone()).or_insert(position);
        }
    }

    fn forget(&mut self, name: &str) {
        if let Some(map) = &mut self.map {
            map.remove(name);
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Name comparisons made by linear scans, so a test can tell linear from quadratic work.
    static COMPARISONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn count_comparisons(n: usize) {
    COMPARISONS.with(|c| c.set(c.get() + n));
}

#[cfg(not(test))]
fn count_comparisons(_: usize) {}

/// Flattens one Windows event described as an element stream.
#[derive(Debug, Default)]
pub(crate) struct WinFlattener {
    out: FlatEvent,
    frames: Vec<Frame>,
    names: String,
    section: Option<Section>,
    /// Index in `out.fields` where the current payload section's fields start.
    payload_start: usize,
    /// A one-word Bloom filter of the names pushed since `payload_start`.
    payload_mask: u64,
    /// Attributes of payload elements, added at the end unless their name is taken.
    pending_attrs: Vec<(CompactString, Value)>,
    /// `out.fields[..system_len]` came from `<System>` (which precedes the payload).
    system_len: usize,
    /// Names of the current payload section, once it is large.
    payload_index: NameIndex,
    /// Names of the System fields, once they are many.
    system_index: NameIndex,
    /// Leaf values taken so far; past [`MAX_FIELDS_PER_EVENT`] the event is refused.
    leaves: usize,
}

fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let first = b.first().copied().unwrap_or(0) as u64;
    let last = b.last().copied().unwrap_or(0) as u64;
    let mid = b.get(b.len() / 2).copied().unwrap_or(0) as u64;
    let h = (b.len() as u64)
        .wrapping_mul(31)
        .wrapping_add(first.wrapping_mul(7))
        .wrapping_add(last.wrapping_mul(13))
        .wrapping_add(mid);
    1u64 << (h & 63)
}

fn merge_into(slot: &mut Value, v: Value) {
    match slot {
        Value::List(items) => match v {
            Value::List(more) => items.extend(more),
            v => items.push(v),
        },
        _ => {
            let first = std::mem::replace(slot, Value::Null);
            let mut items = vec![first];
            match v {
                Value::List(more) => items.extend(more),
                v => items.push(v),
            }
            *slot = Value::List(items);
        }
    }
}

impl WinFlattener {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A flattener whose event has room for `fields` fields.
    pub(crate) fn with_capacity(fields: usize) -> Self {
        let mut f = Self::default();
        f.out.fields.reserve(fields);
        f.frames.reserve(8);
        f.names.reserve(128);
        f
    }

    /// Opens an element.
    pub(crate) fn start(&mut self, name: &str) {
        let depth = self.frames.len();
        let mut is_data = false;
        let mut mixed = None;
        if let Some(parent) = self.frames.last_mut() {
            parent.has_children = true;
            if parent.value.is_blank() {
                parent.value = Acc::None;
            } else if depth >= 3 {
                // Mixed content: the parent's text so far is a value of its own.
                mixed = parent.value.take().map(|v| {
                    (
                        CompactString::from(&self.names[parent.name_start..parent.name_end]),
                        v,
                    )
                });
            } else {
                parent.value = Acc::None;
            }
        }
        if let Some((field, value)) = mixed {
            self.push_leaf(field, value);
        }
        if depth == 1 {
            self.section = Some(match name {
                "System" => Section::System,
                "EventData" | "UserData" => Section::DataContainer,
                "RenderingInfo" => Section::RenderingInfo,
                _ => Section::Other,
            });
            self.payload_start = self.out.fields.len();
            self.payload_mask = 0;
            self.payload_index = NameIndex::default();
        } else if depth == 2 && self.section == Some(Section::DataContainer) && name == "Data" {
            is_data = true;
        }
        let name_start = self.names.len();
        self.names.push_str(name);
        self.frames.push(Frame {
            name_start,
            name_end: self.names.len(),
            data_name: None,
            is_data,
            has_children: false,
            value: Acc::None,
        });
    }

    /// An attribute of the element opened last.
    pub(crate) fn attr(&mut self, name: &str, value: Scalar<'_>) {
        let depth = self.frames.len();
        if depth <= 1 || name == "xmlns" || name.starts_with("xmlns:") {
            // `<Event>`'s own attributes are namespace declarations.
            return;
        }
        if let Scalar::Str(s) = value
            && s.is_empty()
        {
            return;
        }
        if matches!(value, Scalar::Null) {
            return;
        }
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        let (s, e) = (frame.name_start, frame.name_end);
        if frame.is_data && name == "Name" {
            if let Scalar::Str(text) = value {
                let start = self.names.len();
                self.names.push_str(text);
                frame.data_name = Some((start, self.names.len()));
            }
            return;
        }
        let elem = &self.names[s..e];
        match self.section {
            Some(Section::System) => {
                let field = system_attr_name(elem, name);
                self.push_system(field, value.to_value());
            }
            Some(Section::RenderingInfo) => {
                let field = format_compact!("RenderingInfo_{elem}_{name}");
                self.push_pending(field, value.to_value());
            }
            _ => {
                let field = format_compact!("{elem}_{name}");
                self.push_pending(field, value.to_value());
            }
        }
    }

    /// A text value of the element opened last (several calls make a list).
    pub(crate) fn text(&mut self, value: Scalar<'_>) {
        if let Some(frame) = self.frames.last_mut() {
            frame.value.push(value.to_value());
        }
    }

    /// Closes the element opened last.
    pub(crate) fn end(&mut self) {
        let Some(mut frame) = self.frames.pop() else {
            return;
        };
        let depth = self.frames.len();
        if depth >= 2 {
            let value = if frame.has_children {
                // Mixed content left after the last child; whitespace around children is layout.
                if frame.value.is_blank() {
                    None
                } else {
                    frame.value.take()
                }
            } else {
                match frame.value.take() {
                    Some(v) => Some(v),
                    // An empty leaf: "" in payloads; left out in System.
                    None if self.section == Some(Section::System) => None,
                    None => Some(Value::Str(String::new())),
                }
            };
            if let Some(value) = value {
                let name = match frame.data_name {
                    Some((s, e)) if e > s => &self.names[s..e],
                    _ => &self.names[frame.name_start..frame.name_end],
                };
                let field = match self.section {
                    Some(Section::RenderingInfo) => format_compact!("RenderingInfo_{name}"),
                    _ => CompactString::from(name),
                };
                self.push_leaf(field, value);
            }
        }
        self.names.truncate(frame.name_start);
    }

    /// Counts a leaf; false once the event has too many (the value is then dropped and
    /// [`WinFlattener::finish`] refuses the event).
    fn take_leaf(&mut self) -> bool {
        self.leaves += 1;
        self.leaves <= MAX_FIELDS_PER_EVENT
    }

    fn push_pending(&mut self, field: CompactString, value: Value) {
        if self.take_leaf() {
            self.pending_attrs.push((field, value));
        }
    }

    fn push_leaf(&mut self, field: CompactString, value: Value) {
        if self.section == Some(Section::System) {
            self.push_system(field, value);
        } else {
            self.push_payload(field, value);
        }
    }

    fn push_system(&mut self, field: CompactString, value: Value) {
        if !self.take_leaf() {
            return;
        }
        let value = if is_numeric_system(&field) {
            match value {
                Value::Str(s) => match s.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Str(s),
                },
                Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Value::Int(x as i64),
                other => other,
            }
        } else {
            value_text(value)
        };
        if let Value::Str(s) = &value {
            if s.is_empty() {
                return;
            }
            if field == "TimeCreated" && self.out.timestamp_millis.is_none() {
                self.out.timestamp_millis = parse_timestamp_millis(s);
            }
        }
        self.system_index.pushed(&field, self.out.fields.len());
        self.out.fields.push((field, value));
        self.system_len = self.out.fields.len();
    }

    fn push_payload(&mut self, field: CompactString, value: Value) {
        if !self.take_leaf() {
            return;
        }
        let bit = name_bit(&field);
        if self.payload_mask & bit != 0
            && let Some(at) =
                self.payload_index
                    .position(&self.out.fields, self.payload_start, &field)
        {
            merge_into(&mut self.out.fields[at].1, value);
            return;
        }
        self.payload_mask |= bit;
        // A payload field shadows a System field of the same name (EID 104's UserData
        // `Channel` is the log that was cleared, which is what rules mean by `Channel`); the
        // System value stays available as `System_<name>` (and routing reads it there).
        let system = &self.out.fields[..self.system_len];
        if let Some(at) = self.system_index.position(system, 0, &field) {
            self.system_index.forget(&field);
            let name = &mut self.out.fields[at].0;
            *name = format_compact!("System_{name}");
        }
        self.payload_index.pushed(&field, self.out.fields.len());
        self.out.fields.push((field, value));
    }

    /// Whether an element is open (the root has been started and not closed).
    pub(crate) fn is_open(&self) -> bool {
        !self.frames.is_empty()
    }

    /// The flat event; closes what is still open. An event with more than
    /// [`MAX_FIELDS_PER_EVENT`] fields is refused.
    pub(crate) fn finish(mut self) -> Result<FlatEvent, TooManyFields> {
        while !self.frames.is_empty() {
            self.end();
        }
        if self.leaves > MAX_FIELDS_PER_EVENT {
            let record_id = match self.out.get("EventRecordID") {
                Some(Value::Int(id)) => Some(*id),
                _ => None,
            };
            return Err(TooManyFields { record_id });
        }
        let pending = std::mem::take(&mut self.pending_attrs);
        let attrs_start = self.out.fields.len();
        let mut taken = NameIndex::default();
        let mut added = NameIndex::default();
        for (name, value) in pending {
            if taken
                .position(&self.out.fields[..attrs_start], 0, &name)
                .is_some()
            {
                continue;
            }
            if let Some(at) = added.position(&self.out.fields, attrs_start, &name) {
                merge_into(&mut self.out.fields[at].1, value);
            } else {
                added.pushed(&name, self.out.fields.len());
                self.out.fields.push((name, value));
            }
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Scalar<'_> {
        Scalar::Str(v)
    }

    #[test]
    fn system_eventdata_and_typing() {
        let mut f = WinFlattener::new();
        f.start("Event");
        f.attr(
            "xmlns",
            s("http://schemas.microsoft.com/win/2004/08/events/event"),
        );
        f.start("System");
        f.start("Provider");
        f.attr("Name", s("Microsoft-Windows-Sysmon"));
        f.attr("Guid", s("{5770385f}"));
        f.end();
        f.start("EventID");
        f.attr("Qualifiers", s("16384"));
        f.text(s("1"));
        f.end();
        f.start("TimeCreated");
        f.attr("SystemTime", s("2017-12-26T13:10:29.1368792Z"));
        f.end();
        f.start("Correlation");
        f.end();
        f.end();
        f.start("EventData");
        f.start("Data");
        f.attr("Name", s("Image"));
        f.text(s("C:\\x.exe "));
        f.end();
        f.start("Data");
        f.attr("Name", s("Empty"));
        f.end();
        f.start("Data");
        f.text(s("a"));
        f.end();
        f.start("Data");
        f.text(s("b"));
        f.end();
        f.end();
        f.end();
        let e = f.finish().unwrap();
        assert_eq!(
            e.get("Provider_Name"),
            Some(&Value::from("Microsoft-Windows-Sysmon"))
        );
        assert_eq!(e.get("EventID"), Some(&Value::Int(1)));
        assert_eq!(e.get("EventID_Qualifiers"), Some(&Value::Int(16384)));
        assert_eq!(e.get("Correlation"), None);
        assert_eq!(e.get("Image"), Some(&Value::from("C:\\x.exe ")));
        assert_eq!(e.get("Empty"), Some(&Value::from("")));
        assert_eq!(
            e.get("Data"),
            Some(&Value::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(e.timestamp_millis, Some(1_514_293_829_136));
    }

    /// A flattener for an `<Event>` whose `EventData` has `n` distinct `Data` fields and
    /// `attrs` attributes on payload elements.
    fn wide_event(n: usize, attrs: usize) -> WinFlattener {
        let mut f = WinFlattener::new();
        f.start("Event");
        f.start("System");
        f.start("EventRecordID");
        f.text(s("7"));
        f.end();
        f.end();
        f.start("EventData");
        for i in 0..n {
            f.start("Data");
            f.attr("Name", s(&format!("Field{i}")));
            if i < attrs {
                f.attr(&format!("A{i}"), s("x"));
            }
            f.text(s("v"));
            f.end();
        }
        f.end();
        f.end();
        f
    }

    #[test]
    fn flattening_is_linear_in_the_number_of_fields() {
        // 4,000 distinct names: a scan per field would compare ~8 million names.
        COMPARISONS.with(|c| c.set(0));
        let e = wide_event(4000, 60).finish().unwrap();
        assert_eq!(e.fields.len(), 1 + 4000 + 60);
        assert_eq!(e.get("Field3999"), Some(&Value::from("v")));
        assert_eq!(e.get("Data_A59"), Some(&Value::from("x")));
        let comparisons = COMPARISONS.with(|c| c.get());
        assert!(
            comparisons < 10 * 4000,
            "{comparisons} name comparisons for 4,000 fields"
        );
    }

    #[test]
    fn repeated_names_still_merge_in_large_events() {
        let mut f = WinFlattener::new();
        f.start("Event");
        f.start("EventData");
        for i in 0..200 {
            f.start("Data");
            f.attr("Name", s(&format!("F{}", i % 100)));
            f.text(s(&i.to_string()));
            f.end();
        }
        f.end();
        f.end();
        let e = f.finish().unwrap();
        assert_eq!(e.fields.len(), 100);
        assert_eq!(
            e.get("F99"),
            Some(&Value::List(vec!["99".into(), "199".into()]))
        );
    }

    #[test]
    fn too_many_fields_refuse_the_event() {
        assert!(wide_event(MAX_FIELDS_PER_EVENT - 1, 0).finish().is_ok());
        assert_eq!(
            wide_event(MAX_FIELDS_PER_EVENT, 0).finish().unwrap_err(),
            TooManyFields { record_id: Some(7) }
        );
        assert_eq!(
            wide_event(80_000, 0).finish().unwrap_err().to_string(),
            "event record 7 has more than 4096 fields (the limit per event); it was skipped"
        );
    }
}
