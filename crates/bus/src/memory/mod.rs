//! In-process bus: a bounded queue with visibility timeouts.
//!
//! * Capacity is counted over every message not yet acked (waiting,
//!   delivered, or waiting for redelivery), in messages and in payload bytes.
//!   A publish that would exceed either limit fails with [`BusError::Full`].
//! * A received message becomes invisible for `visibility_timeout`. If it is
//!   not acked by then it is handed out again (first, before new messages)
//!   with `redelivered = true`. `ack` removes it for good, even when it comes
//!   late, after the message was already handed out again.
//! * Nothing survives the process: this is the embedded default, where the
//!   agents' disk spools and the idempotent store give the end-to-end
//!   guarantee.
//!
//! Clones of a [`MemoryBus`] share one queue: each clone can be given to one
//! worker task as its consumer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{Bus, BusError, Delivery, DeliveryId, IdRepr, batch_events};

#[cfg(test)]
mod tests;

const BACKEND: &str = "memory";

/// Configuration of the in-memory bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Most messages held at once (not yet acked). `0` = no limit on the
    /// count (then `max_bytes` must be set).
    pub max_messages: usize,
    /// Most payload bytes held at once (not yet acked). `0` = no limit on
    /// bytes (then `max_messages` must be set).
    pub max_bytes: usize,
    /// Most events held at once (messages published with
    /// [`Bus::publish_events`] count as their events, others as one). `0` = no
    /// limit on events.
    pub max_events: u64,
    /// How long a delivered message stays invisible before it is handed out
    /// again when not acked.
    pub visibility_timeout: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_messages: 100_000,
            max_bytes: 256 * 1024 * 1024,
            max_events: 0,
            visibility_timeout: Duration::from_secs(60),
        }
    }
}

/// The in-memory backend. Cheap to clone; clones share the queue.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MemoryConfig,
    state: Mutex<State>,
    /// Woken on publish and when a message becomes visible again.
    arrived: Notify,
}

#[derive(Debug)]
struct Entry {
    payload: Bytes,
    /// Events it carries (1 for a plain `publish`).
    events: u64,
    /// How many times it was handed out.
    deliveries: u32,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    /// Never delivered, in publish order.
    ready: VecDeque<(u64, Entry)>,
    /// Delivered, not acked in time: handed out first, oldest first.
    retry: BTreeMap<u64, Entry>,
    /// Delivered and invisible until their deadline.
    in_flight: HashMap<u64, Entry>,
    /// (deadline, seq, deliveries) in delivery order; the timeout is fixed,
    /// so deadlines only grow. Entries of acked messages are skipped lazily.
    deadlines: VecDeque<(Instant, u64, u32)>,
    /// Messages not acked.
    count: usize,
    /// Payload bytes not acked.
    bytes: usize,
    /// Events not acked.
    events: u64,
}

impl State {
    /// Moves messages whose visibility timeout ran out to `retry`.
    fn expire(&mut self, now: Instant) -> usize {
        let mut moved = 0;
        while let Some(&(deadline, seq, deliveries)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let current = self
                .in_flight
                .get(&seq)
                .is_some_and(|e| e.deliveries == deliveries);
            if current && let Some(entry) = self.in_flight.remove(&seq) {
                self.retry.insert(seq, entry);
                moved += 1;
            }
        }
        moved
    }

    /// The next moment a message becomes visible again, if any is in flight.
    fn next_deadline(&mut self) -> Option<Instant> {
        // Drop stale heads (acked messages) so that no one sleeps for nothing.
        while let Some(&(deadline, seq, deliveries)) = self.deadlines.front() {
            if self
                .in_flight
                .get(&seq)
                .is_some_and(|e| e.deliveries == deliveries)
            {
                return Some(deadline);
            }
            self.deadlines.pop_front();
        }
        None
    }

    fn take(&mut self, max: usize, now: Instant, timeout: Duration) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(max.min(self.count));
        let deadline = now + timeout;
        while out.len() < max {
            let (seq, mut entry) = if let Some(first) = self.retry.pop_first() {
                first
            } else if let Some(next) = self.ready.pop_front() {
                next
            } else {
                break;
            };
            entry.deliveries = entry.deliveries.saturating_add(1);
            out.push(Delivery {
                id: DeliveryId(IdRepr::Memory(seq)),
                payload: entry.payload.clone(),
                redelivered: entry.deliveries > 1,
            });
            self.deadlines.push_back((deadline, seq, entry.deliveries));
            self.in_flight.insert(seq, entry);
        }
        out
    }

    fn remove(&mut self, seq: u64) -> bool {
        let entry = match self.in_flight.remove(&seq) {
            Some(entry) => entry,
            None => match self.retry.remove(&seq) {
                Some(entry) => entry,
                // Already acked, or never delivered (an id is only made on delivery).
                None => return false,
            },
        };
        self.count -= 1;
        self.bytes -= entry.payload.len();
        self.events -= entry.events;
        true
    }
}

impl MemoryBus {
    /// Creates an empty queue.
    pub fn new(config: MemoryConfig) -> Result<Self, BusError> {
        if config.max_messages == 0 && config.max_bytes == 0 && config.max_events == 0 {
            return Err(BusError::Config(
                "memory bus needs max_messages, max_bytes or max_events (it is never unbounded)"
                    .into(),
            ));
        }
        if config.visibility_timeout.is_zero() {
            return Err(BusError::Config(
                "memory bus visibility_timeout must be positive".into(),
            ));
        }
        tracing::info!(
            max_messages = config.max_messages,
            max_bytes = config.max_bytes,
            visibility_timeout_ms = config.visibility_timeout.as_millis() as u64,
            "memory bus ready"
        );
        Ok(MemoryBus {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
                arrived: Notify::new(),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if one ever did, the state
        // is still consistent enough to keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, payload: Bytes) -> Result<(), BusError> {
        self.publish_events(payload, 1).await
    }

    async fn publish_events(&self, payload: Bytes, events: u32) -> Result<(), BusError> {
        let config = &self.inner.config;
        let events = batch_events(events, config.max_events)?;
        let size = payload.len();
        if config.max_bytes != 0 && size > config.max_bytes {
            return Err(BusError::TooLarge {
                size,
                max: config.max_bytes,
            });
        }
        {
            let mut state = self.state();
            let full_count = config.max_messages != 0 && state.count >= config.max_messages;
            let full_bytes = config.max_bytes != 0 && state.bytes + size > config.max_bytes;
            let full_events = config.max_events != 0 && state.events + events > config.max_events;
            if full_count || full_bytes || full_events {
                tracing::debug!(
                    count = state.count,
                    bytes = state.bytes,
                    "memory bus full, publish refused"
                );
                return Err(BusError::Full);
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.count += 1;
            state.bytes += size;
            state.events += events;
            state.ready.push_back((
                seq,
                Entry {
                    payload,
                    events,
                    deliveries: 0,
                },
            ));
        }
        self.inner.arrived.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let timeout = self.inner.config.visibility_timeout;
        let until = Instant::now() + wait;
        loop {
            // Register interest before looking, so that a publish between
            // the look and the sleep is not missed.
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();

            let next_deadline = {
                let now = Instant::now();
                let mut state = self.state();
                let expired = state.expire(now);
                if expired > 0 {
                    tracing::debug!(expired, "memory bus: unacked messages visible again");
                }
                let out = state.take(max, now, timeout);
                if !out.is_empty() {
                    return Ok(out);
                }
                state.next_deadline()
            };
            let now = Instant::now();
            if now >= until {
                return Ok(Vec::new());
            }
            let wake = next_deadline.map_or(until, |d| d.min(until));
            tokio::select! {
                () = &mut arrived => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), BusError> {
        if let Some(foreign) = ids.iter().find(|id| !matches!(id.0, IdRepr::Memory(_))) {
            return Err(BusError::ForeignId(foreign.to_string(), BACKEND));
        }
        let mut state = self.state();
        let mut removed = 0usize;
        for id in ids {
            if let IdRepr::Memory(seq) = id.0
                && state.remove(seq)
            {
                removed += 1;
            }
        }
        tracing::trace!(acked = ids.len(), removed, "memory bus ack");
        Ok(())
    }

    async fn depth(&self) -> Result<u64, BusError> {
        Ok(self.state().count as u64)
    }

    fn name(&self) -> &'static str {
        BACKEND
    }
}
