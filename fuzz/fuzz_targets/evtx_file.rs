//! An EVTX upload: the bytes as a file, sniffed and decoded as `POST /api/v1/ingest/evtx`
//! does (detect the format, read record by record, normalize each event).
#![no_main]

use dozor_decode::{InputFormat, ReadOptions, detect_format, read_path};
use dozor_fuzz::{ingest_decoded, scratch_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("upload.evtx", data);
    let Ok(format) = detect_format(&path) else {
        return;
    };
    if format == InputFormat::Json {
        return; // the route refuses JSON
    }
    let options = ReadOptions {
        format,
        ..ReadOptions::default()
    };
    if let Ok(events) = read_path(&path, &options) {
        ingest_decoded(events);
    }
    // Checksum validation takes other paths through the chunk reader.
    let strict = ReadOptions {
        format: InputFormat::Evtx,
        validate_checksums: true,
        ..ReadOptions::default()
    };
    if let Ok(events) = read_path(&path, &strict) {
        ingest_decoded(events);
    }
});
