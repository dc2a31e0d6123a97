//! `POST /api/v1/ingest`: a body split into events (a JSON array or object, NDJSON, or a
//! protobuf `EventBatch`, chosen by the first byte) and each event checked and validated as the
//! route does, for an agent sender and an operator sender.
#![no_main]

use dozor_fuzz::validator;
use dozor_server::auth::{Identity, Role};
use dozor_server::ingest::Prepared;
use dozor_server::ingest::parse::{BatchFormat, Item, parse_batch};
use libfuzzer_sys::fuzz_target;

/// The server's default `limits.max_batch_events`.
const MAX_BATCH_EVENTS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // Bit 2 picks protobuf; bit 0 JSON or NDJSON (the seeds' meaning from before protobuf).
    let format = if selector & 4 != 0 {
        BatchFormat::Protobuf
    } else if selector & 1 == 0 {
        BatchFormat::Json
    } else {
        BatchFormat::Ndjson
    };
    let sender = if selector & 2 == 0 {
        Identity::agent("fuzz-agent")
    } else {
        Identity::operator("fuzz-operator", Role::Admin)
    };
    let items = match parse_batch(body, format, MAX_BATCH_EVENTS) {
        Ok(items) => items,
        Err(e) => {
            let _ = e.into_problem();
            return;
        }
    };
    let mut prepared = Prepared::default();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Item::Value(value) => {
                let _ = dozor_event::detection_view(&value);
                prepared.push(
                    index,
                    value,
                    &sender,
                    validator(),
                    "2026-01-01T00:00:00.000Z",
                );
            }
            Item::Malformed { pointer, message } => prepared.push_refused(index, pointer, message),
        }
    }
});
