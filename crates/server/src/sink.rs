//! Where validated events go: the [`IngestSink`] trait (implemented by the queue in
//! `crates/bus`) and [`MemorySink`], an in-memory implementation for tests and examples.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use uuid::Uuid;

use crate::auth::Identity;

pub use crate::boxed::BoxFuture;

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestEvent {
    /// `event.id`, the idempotency key.
    pub id: Uuid,
    /// The normalized event (a JSON object that passed the event schema), with `agent.id`,
    /// `event.agent_id_status` and `event.ingested` set by the server.
    pub event: serde_json::Value,
}

/// Validated events of one request, in request order.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    /// Who sent them (from the credential).
    pub sender: Identity,
    /// When the server received the request.
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub events: Vec<IngestEvent>,
}

/// What the sink did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// Events the sink already had (by `event.id`) and dropped; every other event of the
    /// batch was accepted.
    pub duplicates: Vec<Uuid>,
}

/// Why a sink refused a batch. Either way nothing of the batch was taken, and the sender
/// should send it again later (event ids make that safe even if a sink took part of it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The queue is full: ingest answers 503 with `Retry-After`.
    #[error("the event queue is full")]
    Full { retry_after: Duration },
    /// The queue can't be reached: ingest answers 503.
    #[error("the event queue is unavailable: {0}")]
    Unavailable(String),
}

/// Accepts validated events (a bounded queue in production).
///
/// `submit` should be all-or-nothing and must not block on a full queue: it answers
/// [`SinkError::Full`] instead, which becomes back-pressure on the agents. Duplicates it can
/// recognize at once (an id it has seen) are reported; those found later (by the store) are
/// dropped silently.
pub trait IngestSink: Send + Sync + 'static {
    fn submit(&self, batch: IngestBatch) -> BoxFuture<'_, Result<SubmitOutcome, SinkError>>;

    /// Events waiting in the queue (the `dozor_queue_depth` gauge), when known.
    fn queue_depth(&self) -> Option<u64> {
        None
    }

    /// Can the sink take events now? Used by `/readyz`.
    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A bounded in-memory queue that remembers every event id it saw (so it reports
/// duplicates). For tests and examples; the server's real queue is `crates/bus`.
#[derive(Debug)]
pub struct MemorySink {
    capacity: usize,
    forced_full: AtomicBool,
    retry_after: Duration,
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    queue: VecDeque<IngestEvent>,
    seen: HashSet<Uuid>,
}

impl MemorySink {
    /// A queue that holds `capacity` events.
    pub fn new(capacity: usize) -> MemorySink {
        MemorySink {
            capacity,
            forced_full: AtomicBool::new(false),
            retry_after: Duration::from_secs(5),
            inner: Mutex::new(MemoryInner::default()),
        }
    }

    /// Makes every `submit` answer [`SinkError::Full`] (or stop doing so).
    pub fn set_full(&self, full: bool) {
        self.forced_full.store(full, Ordering::SeqCst);
    }

    /// Takes every queued event out.
    pub fn drain(&self) -> Vec<IngestEvent> {
        let mut inner = self.lock();
        inner.queue.drain(..).collect()
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit_now(&self, batch: IngestBatch) -> Result<SubmitOutcome, SinkError> {
        let full = SinkError::Full {
            retry_after: self.retry_after,
        };
        if self.forced_full.load(Ordering::SeqCst) {
            return Err(full);
        }
        let mut inner = self.lock();
        let new: Vec<&IngestEvent> = batch
            .events
            .iter()
            .filter(|e| !inner.seen.contains(&e.id))
            .collect();
        if inner.queue.len() + new.len() > self.capacity {
            return Err(full);
        }
        let mut outcome = SubmitOutcome::default();
        for event in batch.events {
            if inner.seen.insert(event.id) {
                inner.queue.push_back(event);
            } else {
                outcome.duplicates.push(event.id);
            }
        }
        Ok(outcome)
    }
}

impl IngestSink for MemorySink {
    fn submit(&self, batch: IngestBatch) -> BoxFuture<'_, Result<SubmitOutcome, SinkError>> {
        let result = self.submit_now(batch);
        Box::pin(async move { result })
    }

    fn queue_depth(&self) -> Option<u64> {
        Some(self.len() as u64)
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        let full = self.forced_full.load(Ordering::SeqCst);
        Box::pin(async move {
            if full {
                Err("the queue is full".into())
            } else {
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: &[u128]) -> IngestBatch {
        IngestBatch {
            sender: Identity::agent("a"),
            received_at: chrono::Utc::now(),
            events: ids
                .iter()
                .map(|i| IngestEvent {
                    id: Uuid::from_u128(*i),
                    event: serde_json::json!({}),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn memory_sink_reports_duplicates_and_fullness() {
        let sink = MemorySink::new(3);
        let out = sink.submit(batch(&[1, 2])).await.unwrap();
        assert!(out.duplicates.is_empty());
        let out = sink.submit(batch(&[2, 3])).await.unwrap();
        assert_eq!(out.duplicates, vec![Uuid::from_u128(2)]);
        assert_eq!(sink.queue_depth(), Some(3));
        assert!(matches!(
            sink.submit(batch(&[4])).await,
            Err(SinkError::Full { .. })
        ));
        // Only duplicates fit even when full.
        assert!(sink.submit(batch(&[1])).await.is_ok());
        assert_eq!(sink.drain().len(), 3);
        sink.set_full(true);
        assert!(sink.submit(batch(&[9])).await.is_err());
        assert!(sink.ready().await.is_err());
    }
}
