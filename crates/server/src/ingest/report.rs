//! What an ingest request answers: counts and per-event rejections.

use serde::{Deserialize, Serialize};

/// One reason an event of a batch was rejected. An event can have several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position of the event in the batch (0-based; NDJSON: among the non-blank lines; EVTX:
    /// among the records read).
    pub index: usize,
    /// JSON pointer (RFC 6901) into the event; empty for the event as a whole.
    pub pointer: String,
    pub message: String,
}

/// The answer to an ingest request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestReport {
    /// Events in the request.
    pub received: usize,
    /// Events queued.
    pub accepted: usize,
    /// Events already received before (same `event.id`, in this batch or earlier), dropped.
    pub duplicates: usize,
    /// Events rejected (not queued).
    pub rejected_events: usize,
    /// Why events were rejected: one entry per problem, several per event possible, at most
    /// 1000 entries (`MAX_REJECTIONS`; the rest are only counted in `rejected_events`).
    pub rejected: Vec<Rejection>,
}

/// The most rejection entries a report lists.
pub const MAX_REJECTIONS: usize = 1000;

impl IngestReport {
    /// Adds rejections, keeping at most [`MAX_REJECTIONS`].
    pub fn add_rejections(&mut self, rejected_events: usize, rejections: Vec<Rejection>) {
        self.rejected_events += rejected_events;
        let room = MAX_REJECTIONS.saturating_sub(self.rejected.len());
        self.rejected.extend(rejections.into_iter().take(room));
    }
}
