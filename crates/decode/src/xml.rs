//! Windows event XML, as `EvtRender` / `wevtutil qe /f:xml` / Get-WinEvent's `ToXml()` write it:
//! one `<Event>`, or a stream of them (bare or inside an `<Events>` or any other wrapper).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use dozor_event::FlatEvent;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{DecodeError, Location};
use crate::flatten::{Scalar, WinFlattener};

/// Parses one Windows event from its XML (`<Event xmlns=...><System>...</System>...</Event>`).
///
/// Leading declarations, comments and wrapper elements are skipped: the first `<Event>`
/// element is parsed, whatever follows it is ignored. Errors carry the byte offset.
pub fn parse_event_xml(xml: &str) -> Result<FlatEvent, DecodeError> {
    let mut reader = Reader::from_str(xml);
    let mut feeder = XmlFeeder::default();
    loop {
        let at = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Eof) => {
                let message = if feeder.in_event() {
                    "unexpected end of input inside <Event>"
                } else {
                    "no <Event> element found"
                };
                return Err(DecodeError::record(
                    None,
                    Location::Byte { offset: at },
                    message,
                ));
            }
            Ok(event) => match feeder.feed(&event) {
                Ok(Some(flat)) => return Ok(flat),
                Ok(None) => {}
                Err(message) => {
                    return Err(DecodeError::record(
                        None,
                        Location::Byte { offset: at },
                        message,
                    ));
                }
            },
            Err(e) => {
                return Err(DecodeError::record(
                    None,
                    Location::Byte {
                        offset: reader.error_position(),
                    },
                    format!("malformed XML: {e}"),
                ));
            }
        }
    }
}

/// Turns quick-xml events into [`WinFlattener`] calls, one `<Event>` at a time.
#[derive(Default)]
pub(crate) struct XmlFeeder {
    /// The event being read, between its `<Event>` and `</Event>`.
    flat: Option<WinFlattener>,
    /// Text of the current element so far.
    text: String,
    /// For each open element of the event: whether it has child elements.
    has_children: Vec<bool>,
    /// Open elements outside any `<Event>` (wrappers such as `<Events>`).
    outer_depth: usize,
}

impl XmlFeeder {
    pub(crate) fn in_event(&self) -> bool {
        self.flat.is_some()
    }

    /// Drops a half-read event (after an error).
    pub(crate) fn reset(&mut self) {
        self.flat = None;
        self.text.clear();
        self.has_children.clear();
    }

    /// Passes the text read so far to the flattener, unless it is layout whitespace around
    /// child elements.
    fn flush_text(&mut self, starting_child: bool) {
        if self.text.is_empty() {
            return;
        }
        let had_children = self.has_children.last().copied().unwrap_or(true);
        let blank = self.text.trim().is_empty();
        if let Some(f) = self.flat.as_mut()
            && !(blank && (starting_child || had_children))
        {
            f.text(Scalar::Str(&self.text));
        }
        self.text.clear();
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        let local = e.local_name();
        let name = std::str::from_utf8(local.as_ref())
            .map_err(|_| "element name is not UTF-8".to_owned())?;
        if self.flat.is_none() {
            if name == "Event" {
                let mut f = WinFlattener::new();
                f.start("Event");
                self.flat = Some(f);
                self.has_children.clear();
                self.has_children.push(false);
                self.text.clear();
            } else {
                self.outer_depth += 1;
            }
            return Ok(());
        }
        self.flush_text(true);
        if let Some(last) = self.has_children.last_mut() {
            *last = true;
        }
        self.has_children.push(false);
        let Some(f) = self.flat.as_mut() else {
            return Ok(());
        };
        f.start(name);
        for attr in e.attributes() {
            let attr = attr.map_err(|e| format!("malformed attribute in <{name}>: {e}"))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let key_local = attr.key.local_name();
            let key = std::str::from_utf8(key_local.as_ref())
                .map_err(|_| format!("attribute name in <{name}> is not UTF-8"))?;
            let value = attr
                .unescape_value()
                .map_err(|e| format!("bad attribute {key} in <{name}>: {e}"))?;
            f.attr(key, Scalar::Str(&value));
        }
        Ok(())
    }

    /// Closes an element; returns the event when it was `</Event>`.
    fn close(&mut self) -> Result<Option<FlatEvent>, String> {
        if self.flat.is_none() {
            self.outer_depth = self.outer_depth.saturating_sub(1);
            return Ok(None);
        }
        self.flush_text(false);
        self.has_children.pop();
        let Some(f) = self.flat.as_mut() else {
            return Ok(None);
        };
        f.end();
        if f.is_open() {
            return Ok(None);
        }
        self.flat
            .take()
            .map(WinFlattener::finish)
            .transpose()
            .map_err(|e| e.to_string())
    }

    /// Feeds one XML event; returns a flat event when one is complete.
    pub(crate) fn feed(&mut self, event: &Event<'_>) -> Result<Option<FlatEvent>, String> {
        match event {
            Event::Start(e) => {
                self.open(e)?;
                Ok(None)
            }
            Event::Empty(e) => {
                self.open(e)?;
                self.close()
            }
            Event::End(_) => self.close(),
            Event::Text(t) if self.flat.is_some() => {
                // Line ends are kept as written (no XML end-of-line normalization): evtx and
                // Windows write `\r\n` inside values, and the EVTX and JSON paths keep it too.
                let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                self.text.push_str(&text);
                Ok(None)
            }
            Event::CData(c) if self.flat.is_some() => {
                let text = c.decode().map_err(|e| format!("bad CDATA: {e}"))?;
                self.text.push_str(&text);
                Ok(None)
            }
            Event::GeneralRef(r) if self.flat.is_some() => {
                match r.resolve_char_ref() {
                    Ok(Some(ch)) => self.text.push(ch),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| format!("bad reference: {e}"))?;
                        match name.as_ref() {
                            "lt" => self.text.push('<'),
                            "gt" => self.text.push('>'),
                            "amp" => self.text.push('&'),
                            "apos" => self.text.push('\''),
                            "quot" => self.text.push('"'),
                            other => {
                                // Unknown entity: kept as written.
                                self.text.push('&');
                                self.text.push_str(other);
                                self.text.push(';');
                            }
                        }
                    }
                    Err(e) => return Err(format!("bad character reference: {e}")),
                }
                Ok(None)
            }
            Event::Eof if self.flat.is_some() => {
                Err("unexpected end of input inside <Event>".to_owned())
            }
            _ => Ok(None),
        }
    }
}

/// The most errors one XML file reports before giving up on it.
const MAX_ERRORS: u32 = 1000;

/// Streams the events of an XML file.
pub(crate) struct XmlFileEvents {
    path: PathBuf,
    reader: Reader<Box<dyn BufRead + Send>>,
    buf: Vec<u8>,
    feeder: XmlFeeder,
    events: u64,
    errors: u32,
    done: bool,
}

impl XmlFileEvents {
    pub(crate) fn new(path: &Path, input: Box<dyn BufRead + Send>) -> Self {
        let mut reader = Reader::from_reader(input);
        // Lenient: a damaged event is reported and skipped, the stream goes on (the feeder
        // counts elements itself).
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        XmlFileEvents {
            path: path.to_path_buf(),
            reader,
            buf: Vec::with_capacity(8192),
            feeder: XmlFeeder::default(),
            events: 0,
            errors: 0,
            done: false,
        }
    }

    fn error(&mut self, offset: u64, message: String) -> DecodeError {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.done = true;
        }
        DecodeError::record(Some(&self.path), Location::Byte { offset }, message)
    }
}

impl Iterator for XmlFileEvents {
    type Item = Result<FlatEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let at = self.reader.buffer_position();
            match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Eof) => {
                    self.done = true;
                    if self.feeder.in_event() {
                        self.feeder.reset();
                        return Some(Err(
                            self.error(at, "unexpected end of input inside <Event>".to_owned())
                        ));
                    }
                    if self.events == 0 && self.errors == 0 {
                        return Some(Err(DecodeError::unreadable(
                            &self.path,
                            "no Windows <Event> element found in the XML",
                        )));
                    }
                    return None;
                }
                Ok(event) => match self.feeder.feed(&event) {
                    Ok(Some(flat)) => {
                        self.events += 1;
                        return Some(Ok(flat));
                    }
                    Ok(None) => {}
                    Err(message) => {
                        self.feeder.reset();
                        return Some(Err(self.error(at, message)));
                    }
                },
                Err(quick_xml::Error::Io(e)) => {
                    self.done = true;
                    let source = std::io::Error::new(e.kind(), e.to_string());
                    return Some(Err(DecodeError::io(&self.path, source)));
                }
                Err(e) => {
                    let offset = self.reader.error_position();
                    self.feeder.reset();
                    if self.reader.buffer_position() <= at {
                        // No progress: nothing more can be read.
                        self.done = true;
                    }
                    return Some(Err(self.error(offset, format!("malformed XML: {e}"))));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dozor_event::Value;

    const SYSMON: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>
  <System>
    <Provider Name='Microsoft-Windows-Sysmon' Guid='{5770385f-c22a-43e0-bf4c-06f5698ffbd9}'/>
    <EventID>1</EventID>
    <TimeCreated SystemTime='2017-12-26T13:10:29.1368792Z'/>
    <EventRecordID>1742</EventRecordID>
    <Correlation/>
    <Execution ProcessID='2284' ThreadID='5252'/>
    <Channel>Microsoft-Windows-Sysmon/Operational</Channel>
    <Security UserID='S-1-5-18'/>
  </System>
  <EventData>
    <Data Name='CommandLine'>ping  -n 6 &quot;127.0.0.1&quot; &amp;&#x41; </Data>
    <Data Name='Empty'/>
    <Data Name='Blank'> </Data>
  </EventData>
</Event>"#;

    #[test]
    fn sysmon_event() {
        let e = parse_event_xml(SYSMON).unwrap();
        assert_eq!(e.get("EventID"), Some(&Value::Int(1)));
        assert_eq!(e.get("EventRecordID"), Some(&Value::Int(1742)));
        assert_eq!(e.get("Execution_ProcessID"), Some(&Value::Int(2284)));
        assert_eq!(e.get("Security_UserID"), Some(&Value::from("S-1-5-18")));
        assert_eq!(
            e.get("Provider_Name"),
            Some(&Value::from("Microsoft-Windows-Sysmon"))
        );
        assert_eq!(
            e.get("TimeCreated"),
            Some(&Value::from("2017-12-26T13:10:29.1368792Z"))
        );
        assert_eq!(
            e.get("CommandLine"),
            Some(&Value::from("ping  -n 6 \"127.0.0.1\" &A "))
        );
        assert_eq!(e.get("Empty"), Some(&Value::from("")));
        assert_eq!(e.get("Blank"), Some(&Value::from(" ")));
        assert_eq!(e.get("Correlation"), None);
        assert_eq!(e.timestamp_millis, Some(1_514_293_829_136));
    }

    #[test]
    fn any_prefix_or_damage_is_an_error_not_a_panic() {
        for cut in 0..SYSMON.len() {
            if SYSMON.is_char_boundary(cut) {
                let _ = parse_event_xml(&SYSMON[..cut]);
            }
        }
        let bytes = SYSMON.as_bytes();
        for at in 0..bytes.len() {
            for b in [b'<', b'>', b'&', b'"', b'/', b'\'', b'x'] {
                let mut damaged = bytes.to_vec();
                damaged[at] = b;
                if let Ok(text) = std::str::from_utf8(&damaged) {
                    let _ = parse_event_xml(text);
                }
            }
        }
    }

    #[test]
    fn errors_have_offsets() {
        let err = parse_event_xml("<Event><System><EventID>1</EventID></Sys></Event>").unwrap_err();
        assert!(matches!(err.location(), Location::Byte { .. }), "{err}");
        let err = parse_event_xml("<Other/>").unwrap_err();
        assert!(err.to_string().contains("no <Event>"), "{err}");
        let err = parse_event_xml("<Event><System>").unwrap_err();
        assert!(err.to_string().contains("end of input"), "{err}");
    }

    /// `<Event>` with record id `id` and `fields` `Data` fields.
    pub(crate) fn wide_event_xml(id: u64, fields: usize) -> String {
        let mut xml = format!(
            "<Event><System><EventID>1</EventID><EventRecordID>{id}</EventRecordID></System><EventData>"
        );
        for i in 0..fields {
            xml.push_str(&format!("<Data Name='F{i}'>v</Data>"));
        }
        xml.push_str("</EventData></Event>\n");
        xml
    }

    #[test]
    fn an_event_with_too_many_fields_is_skipped_alone() {
        let first = wide_event_xml(1, 3);
        let wide = wide_event_xml(2, crate::MAX_FIELDS_PER_EVENT + 10);
        let text = format!("<Events>{first}{wide}{}</Events>", wide_event_xml(3, 3));
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.into_bytes()));
        let items: Vec<_> = XmlFileEvents::new(Path::new("wide.xml"), input).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].as_ref().unwrap().get("EventRecordID"),
            Some(&Value::Int(1))
        );
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("event record 2 has more than 4096 fields") && err.contains("byte "),
            "{err}"
        );
        assert_eq!(
            items[2].as_ref().unwrap().get("EventRecordID"),
            Some(&Value::Int(3))
        );
    }
}
