//! Dozor decoders: Windows event sources into [`FlatEvent`]s for the Sigma engine.
//!
//! Inputs:
//! - EVTX files (through the `evtx` crate), streamed chunk by chunk;
//! - Windows event XML (`EvtRender`, `wevtutil qe /f:xml`, Sysmon/Security...), one event
//!   ([`parse_event_xml`]) or a file of many;
//! - JSON: evtx_dump-style `{"Event": {...}}` ([`flatten_windows_json`]), Winlogbeat/ECS
//!   documents and any other object ([`flatten_json`] detects which), as one object, an array or
//!   NDJSON.
//!
//! Windows events are flattened by one set of rules whatever the input, so the same record
//! gives the same fields: `EventID`, `Channel`, `Provider_Name`, ..., then the `EventData` /
//! `UserData` fields by their own names (see the crate README for every rule).
//!
//! ```no_run
//! use dozor_decode::{read_path, ReadOptions};
//!
//! let events = read_path("Security.evtx".as_ref(), &ReadOptions::default())?;
//! for event in events {
//!     match event {
//!         Ok(event) => println!("{:?}", event.get("EventID")),
//!         Err(e) => eprintln!("skipped: {e}"),
//!     }
//! }
//! # Ok::<(), dozor_decode::DecodeError>(())
//! ```

mod error;
mod evtx_file;
mod flatten;
mod json;
mod json_file;
mod text;
mod time;
pub mod winlog;
mod xml;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use dozor_event::{FlatEvent, Value};
pub use error::{DecodeError, Location, Position};
pub use evtx_file::EVTX_MAGIC;
pub use flatten::{MAX_FIELDS_PER_EVENT, TooManyFields};
pub use json::{JsonShape, detect_json_shape, flatten_json, flatten_windows_json};
pub use time::parse_timestamp_millis;
pub use xml::parse_event_xml;

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Tell from the first bytes, then from the file extension.
    #[default]
    Auto,
    /// Windows XML event log (`.evtx`).
    Evtx,
    /// Windows event XML: one `<Event>` or many.
    Xml,
    /// JSON: one object, an array of objects or NDJSON; each object's shape is detected.
    Json,
}

/// How to read an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The input's format; [`InputFormat::Auto`] detects it (see [`detect_format`]).
    pub format: InputFormat,
    /// Threads that decode the chunks of one EVTX file: 1 (the default) decodes on the calling
    /// thread; more decode on a private pool while records still come in file order; 0 uses
    /// as many as there are CPUs. Other formats are always read on the calling thread.
    pub evtx_threads: usize,
    /// Skip EVTX chunks whose CRC32 checksums are wrong (reported as errors) instead of reading
    /// what can be read from them.
    pub validate_checksums: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: InputFormat::Auto,
            evtx_threads: 1,
            validate_checksums: false,
        }
    }
}

/// Detects the format of a file: EVTX by its `ElfFile\0` signature, XML by a first `<`, JSON
/// by a first `{` or `[` (after a byte-order mark and whitespace), and failing that by the file
/// extension (`.evtx`, `.xml`, `.json`/`.jsonl`/`.ndjson`).
pub fn detect_format(path: &Path) -> Result<InputFormat, DecodeError> {
    let mut file = File::open(path).map_err(|e| DecodeError::io(path, e))?;
    let mut head = [0u8; 512];
    let len = read_up_to(&mut file, &mut head).map_err(|e| DecodeError::io(path, e))?;
    let head = &head[..len];
    if head.starts_with(EVTX_MAGIC) {
        return Ok(InputFormat::Evtx);
    }
    match text::first_non_space(head) {
        Some('<') => return Ok(InputFormat::Xml),
        Some('{' | '[') => return Ok(InputFormat::Json),
        _ => {}
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("evtx") => Ok(InputFormat::Evtx),
        Some("xml") => Ok(InputFormat::Xml),
        Some("json" | "jsonl" | "ndjson") => Ok(InputFormat::Json),
        _ if head.is_empty() => Err(DecodeError::unreadable(path, "the file is empty")),
        _ => Err(DecodeError::unreadable(
            path,
            "unknown input format (not EVTX, XML or JSON)",
        )),
    }
}

/// Fills `buf` from `reader` as far as the input goes (unlike `read_exact`, a short input is
/// not an error); returns how many bytes were read.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Reads a file as a stream of flat events.
///
/// The file is read as it is iterated, never whole: EVTX a chunk at a time, XML an event at a
/// time, JSON a line or an array element at a time. An input that can't be read at all is an
/// `Err` here (not EVTX, unknown format, can't be opened); a record, chunk, line or event that
/// can't be decoded is an `Err` item of the stream, which goes on with the rest.
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<Events, DecodeError> {
    let format = match opts.format {
        InputFormat::Auto => detect_format(path)?,
        other => other,
    };
    tracing::debug!(path = %path.display(), ?format, "reading");
    let inner = match format {
        InputFormat::Evtx | InputFormat::Auto => {
            let threads = match opts.evtx_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            Inner::Evtx(Box::new(evtx_file::EvtxRecords::open(
                path,
                threads,
                opts.validate_checksums,
            )?))
        }
        InputFormat::Xml => Inner::Xml(Box::new(xml::XmlFileEvents::new(
            path,
            text::open_text(path)?,
        ))),
        InputFormat::Json => Inner::Json(Box::new(json_file::JsonFileEvents::new(
            path,
            text::open_text(path)?,
        )?)),
    };
    Ok(Events { format, inner })
}

/// The events of one input, in input order (see [`read_path`]).
pub struct Events {
    format: InputFormat,
    inner: Inner,
}

enum Inner {
    Evtx(Box<evtx_file::EvtxRecords>),
    Xml(Box<xml::XmlFileEvents>),
    Json(Box<json_file::JsonFileEvents>),
}

impl Events {
    /// The format the input is read as (never [`InputFormat::Auto`]).
    pub fn format(&self) -> InputFormat {
        self.format
    }
}

impl Iterator for Events {
    type Item = Result<FlatEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Evtx(it) => it.next(),
            Inner::Xml(it) => it.next(),
            Inner::Json(it) => it.next(),
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn events_can_move_to_another_thread() {
        assert_send::<Events>();
        assert_send::<DecodeError>();
    }
}
