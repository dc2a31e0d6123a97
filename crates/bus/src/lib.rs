//! The queue between the ingest and the pipeline workers.
//!
//! One trait, [`Bus`], and three backends behind it:
//!
//! * [`memory`] — in-process, bounded, the embedded default;
//! * [`redis_streams`] — a Redis stream with one consumer group;
//! * [`nats_jetstream`] — a JetStream work-queue stream with one durable pull consumer.
//!
//! Every backend gives the same contract:
//!
//! * **bounded**: [`Bus::publish`] fails fast with [`BusError::Full`] when the
//!   queue is at capacity — never an unbounded buffer;
//! * **at-least-once**: a delivered message stays owned by the bus until the
//!   caller [`Bus::ack`]s it (after the store committed). A message that is not
//!   acked within the visibility timeout (memory), claim idle time (Redis) or
//!   ack wait (NATS) is delivered again, to this or to another consumer, with
//!   [`Delivery::redelivered`] set. Duplicates are therefore possible; the
//!   pipeline removes them by `event.id`;
//! * an acked message is never delivered again.
//!
//! The server holds an `Arc<dyn Bus>` made by [`connect`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use bytes::Bytes;

mod error;
pub mod memory;
pub mod nats_jetstream;
pub mod redis_streams;

pub use error::{BoxError, BusError};
pub use memory::{MemoryBus, MemoryConfig};
pub use nats_jetstream::{NatsBus, NatsConfig};
pub use redis_streams::{RedisBus, RedisConfig};

/// Identifies one delivery so that it can be acked. Opaque and
/// backend-specific: only the bus that handed it out can ack it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryId(pub(crate) IdRepr);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdRepr {
    /// Sequence number inside the in-memory queue.
    Memory(u64),
    /// Redis stream entry id (`<ms>-<seq>`).
    Redis(String),
    /// JetStream ack subject (`$JS.ACK.<stream>.<consumer>....`).
    Nats(async_nats::Subject),
}

impl std::hash::Hash for IdRepr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            IdRepr::Memory(seq) => seq.hash(state),
            IdRepr::Redis(id) => id.hash(state),
            IdRepr::Nats(subject) => subject.as_str().hash(state),
        }
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IdRepr::Memory(seq) => write!(f, "memory:{seq}"),
            IdRepr::Redis(id) => write!(f, "redis:{id}"),
            IdRepr::Nats(subject) => write!(f, "nats:{subject}"),
        }
    }
}

/// One message handed to a consumer.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// What to pass to [`Bus::ack`] once the message has been processed.
    pub id: DeliveryId,
    /// The bytes given to [`Bus::publish`].
    pub payload: Bytes,
    /// True when this message was delivered before and not acked in time
    /// (a worker crashed or was too slow). The payload may already have been
    /// processed partly or fully: deduplicate by event id.
    pub redelivered: bool,
}

/// The queue between ingest and pipeline workers.
///
/// One value stands for one consumer (one worker process): call
/// [`Bus::receive`] from one task at a time; publishing and acking may be
/// done from many tasks at once.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Appends one message. Returns [`BusError::Full`] at once when the queue
    /// is at capacity (answer 503 + Retry-After), [`BusError::TooLarge`] when
    /// the message can never fit. `Ok` means the bus has stored it (for Redis
    /// and NATS: the server acknowledged it).
    async fn publish(&self, payload: Bytes) -> Result<(), BusError>;

    /// Appends one message that carries `events` events (a batch). Backends that bound
    /// their queue in events (memory: [`MemoryConfig::max_events`], Redis:
    /// [`RedisConfig::max_events`]) count it as that many; the others count it as one
    /// message, like [`Bus::publish`].
    async fn publish_events(&self, payload: Bytes, events: u32) -> Result<(), BusError> {
        let _ = events;
        self.publish(payload).await
    }

    /// Takes up to `max` messages for this consumer, waiting up to `wait` for
    /// the first one. Returns an empty vector when nothing arrived in time.
    /// Messages are handed out oldest first, redeliveries before new ones.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError>;

    /// Removes processed messages for good. Call it only after the results
    /// were committed. Acking an id that was already acked is a no-op.
    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), BusError>;

    /// Messages stored and not yet acked (waiting or being processed).
    async fn depth(&self) -> Result<u64, BusError>;

    /// The backend's name: `memory`, `redis` or `nats`.
    fn name(&self) -> &'static str;
}

/// Which backend to use and how.
#[derive(Clone, Debug)]
pub enum BusConfig {
    /// In-process queue (the embedded default).
    Memory(MemoryConfig),
    /// Redis Streams.
    Redis(RedisConfig),
    /// NATS JetStream.
    Nats(NatsConfig),
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig::Memory(MemoryConfig::default())
    }
}

/// Builds the configured backend (creating the Redis group or the JetStream
/// stream and consumer when they are missing).
pub async fn connect(config: &BusConfig) -> Result<Arc<dyn Bus>, BusError> {
    Ok(match config {
        BusConfig::Memory(c) => Arc::new(MemoryBus::new(c.clone())?),
        BusConfig::Redis(c) => Arc::new(RedisBus::connect(c.clone()).await?),
        BusConfig::Nats(c) => Arc::new(NatsBus::connect(c.clone()).await?),
    })
}

/// Removes `user:password@` from a URL so that it can be logged.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn check_name(what: &str, value: &str) -> Result<(), BusError> {
    if value.is_empty() {
        return Err(BusError::Config(format!("{what} must not be empty")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BusError::Config(format!(
            "{what} {value:?} must not contain whitespace"
        )));
    }
    Ok(())
}

/// The events a message counts for (at least one), or `TooLarge` when a batch of `events` could
/// never fit a queue of `max_events` (0: not counted).
pub(crate) fn batch_events(events: u32, max_events: u64) -> Result<u64, BusError> {
    let events = u64::from(events.max(1));
    if max_events != 0 && events > max_events {
        return Err(BusError::TooLarge {
            size: events as usize,
            max: max_events as usize,
        });
    }
    Ok(events)
}

/// A redelivery timeout must be at least a millisecond: the servers count in milliseconds, and
/// zero would redeliver every message at once.
pub(crate) fn check_timeout(what: &str, value: Duration) -> Result<(), BusError> {
    if value < Duration::from_millis(1) {
        return Err(BusError::Config(format!("{what} must be at least 1 ms")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact_url("not a url @ all"), "not a url @ all");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("stream", "dozor:ingest").is_ok());
        assert!(check_name("stream", "").is_err());
        assert!(check_name("stream", "a b").is_err());
    }
}
