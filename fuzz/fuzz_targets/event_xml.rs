//! Windows event XML: one event given as text (`parse_event_xml`, what the agent renders) and
//! an XML upload of many events read as a file (`POST /api/v1/ingest/evtx` with
//! `Content-Type: application/xml`: any encoding the decoder sniffs, events normalized).
#![no_main]

use dozor_decode::{InputFormat, ReadOptions, parse_event_xml, read_path};
use dozor_fuzz::{ingest_decoded, scratch_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ingest_decoded(std::iter::once(parse_event_xml(text)));
    }
    let path = scratch_file("upload.xml", data);
    let options = ReadOptions {
        format: InputFormat::Xml,
        ..ReadOptions::default()
    };
    if let Ok(events) = read_path(&path, &options) {
        ingest_decoded(events);
    }
});
