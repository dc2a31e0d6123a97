//! Dozor's protobuf event batch: the agent → server form chosen by the agent's
//! `transport.format = "protobuf"`, beside the JSON batch.
//!
//! The server validates and stores JSON documents whatever the wire form, so the protobuf batch
//! is a lossless carrier of those documents: the fields analysts and rules use most are typed
//! (numbers as varints, `@timestamp` as nanoseconds, `event.id` as 16 bytes) and every other
//! member travels as a generic value tree ([`pb::Event::other`]). [`event_to_proto`] takes a
//! member into a typed field only when it has exactly that field's type, so
//! `event_from_proto(event_to_proto(doc)) == doc` for every JSON object.
//!
//! ```
//! let doc = serde_json::json!({"@timestamp": "2026-12-07T10:00:00.123Z", "process": {"pid": 42}});
//! let body = dozor_wire::encode_batch(vec![doc.clone()]).unwrap();
//! let events = dozor_wire::decode_batch(&body).unwrap();
//! assert_eq!(dozor_wire::event_from_proto(events.into_iter().next().unwrap()).unwrap(), doc);
//! ```

mod convert;

/// The types generated from `proto/batch.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/dozor.wire.v1.rs"));
}

use prost::Message;
use serde_json::Value;

pub use convert::{Malformed, event_from_proto, event_to_proto};

/// The `Content-Type` of a protobuf batch.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Why a batch can't be encoded or decoded as a whole.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is not an `EventBatch` message.
    #[error("the body is not a protobuf EventBatch: {0}")]
    Decode(#[from] prost::DecodeError),
    /// An event to encode is not a JSON object.
    #[error("event {index} is not a JSON object")]
    NotAnObject { index: usize },
}

/// The body of a protobuf batch of `events` (JSON objects), in order.
pub fn encode_batch(events: impl IntoIterator<Item = Value>) -> Result<Vec<u8>, WireError> {
    let events = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| event_to_proto(event).ok_or(WireError::NotAnObject { index }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::EventBatch { events }.encode_to_vec())
}

/// The events of a protobuf batch body, still in their protobuf form: convert each with
/// [`event_from_proto`], so one bad event is refused alone.
pub fn decode_batch(body: &[u8]) -> Result<Vec<pb::Event>, WireError> {
    Ok(pb::EventBatch::decode(body)?.events)
}
