//! Stored events, their search and their histogram.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Most buckets one histogram may have.
pub const MAX_HISTOGRAM_BUCKETS: i64 = 10_000;

/// An event as stored (and as `GET /api/v1/events/{id}` answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredEvent {
    /// `event.id`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: Uuid,
    /// Event time (`@timestamp`), ms.
    pub ts: i64,
    /// When the server received it, ms.
    pub received_at: i64,
    /// The agent whose credential sent it; `None` for API-token ingest.
    pub agent_id: Option<String>,
    /// The normalized event document (ECS-style nested object).
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::event_doc_schema))]
    pub doc: Value,
}

/// An event search: filters, query language, keyset pagination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Inclusive lower bound of the event time, ms.
    pub from: Option<i64>,
    /// Exclusive upper bound of the event time, ms.
    pub to: Option<i64>,
    /// Only events of this agent (the credential's agent id).
    pub agent_id: Option<String>,
    /// A query in the Dozor query language (see the store's README); empty = everything.
    pub query: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size; 0 = [`crate::DEFAULT_PAGE_LIMIT`], capped at [`crate::MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// One page of events, newest first (ts desc, id desc); `GET /api/v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Opaque cursor of the next page, `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Events per time bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramQuery {
    /// Inclusive start, ms; the first bucket starts here.
    pub from: i64,
    /// Exclusive end, ms.
    pub to: i64,
    /// Bucket width, ms (> 0; at most [`MAX_HISTOGRAM_BUCKETS`] buckets).
    pub bucket_ms: i64,
    /// Only events of this agent.
    pub agent_id: Option<String>,
    /// Optional query-language filter.
    pub query: Option<String>,
    /// Bucket (and bound) by when the server received the events instead of their own time:
    /// the ingest rate, whatever age the events are.
    #[serde(default)]
    pub received: bool,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistogramBucket {
    /// Bucket start, ms.
    pub start: i64,
    /// Events in `[start, start + bucket_ms)`.
    pub count: u64,
}
