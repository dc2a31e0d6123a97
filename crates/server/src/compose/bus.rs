//! The queue between ingest and the workers: its configuration from the server's, and the
//! [`IngestSink`] that publishes accepted batches on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dozor_bus::{Bus, BusError};

use crate::config::{BusConfig, Config};
use crate::sink::{BoxFuture, IngestBatch, IngestSink, SinkError, SubmitOutcome};

/// The bus configuration of a server process: `consumer` names this worker on Redis/NATS.
///
/// `limits.queue_capacity` counts events: the in-process queue and Redis count the events of
/// each batch exactly; JetStream cannot, so on NATS it bounds messages (each at least one
/// event). `limits.queue_bytes` bounds the documents' bytes on the in-process queue (its
/// memory) and on NATS (its disk); Redis has no byte bound.
pub fn bus_config(config: &Config, consumer: &str) -> dozor_bus::BusConfig {
    let redelivery = config.queue.redelivery.max(Duration::from_secs(1));
    let name = &config.queue.name;
    let capacity = config.limits.queue_capacity.max(1);
    match &config.bus {
        BusConfig::Memory => dozor_bus::BusConfig::Memory(dozor_bus::MemoryConfig {
            max_messages: 0,
            max_bytes: usize::try_from(config.limits.queue_bytes).unwrap_or(usize::MAX),
            max_events: capacity as u64,
            visibility_timeout: redelivery,
        }),
        BusConfig::Redis(url) => {
            let mut c = dozor_bus::RedisConfig::new(url.clone(), consumer.to_owned());
            c.stream = format!("{name}:ingest");
            c.group = format!("{name}-workers");
            c.max_len = capacity as u64;
            c.max_events = capacity as u64;
            c.claim_idle = redelivery;
            dozor_bus::BusConfig::Redis(c)
        }
        BusConfig::Nats(url) => {
            let mut c = dozor_bus::NatsConfig::new(url.clone());
            let upper: String = name
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() {
                        ch.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let plain = name.replace(['.', '*', '>', ' '], "_");
            c.stream = format!("{upper}_INGEST");
            c.subject = format!("{plain}.ingest");
            c.durable = format!("{plain}-workers");
            c.max_msgs = capacity as u64;
            c.max_bytes = config.limits.queue_bytes;
            c.ack_wait = redelivery;
            dozor_bus::BusConfig::Nats(c)
        }
    }
}

/// Ingest → bus: one message per accepted batch (a JSON array of events).
pub struct BusSink {
    bus: Arc<dyn Bus>,
    /// Messages waiting, as last polled (the bus answers `depth` over the network).
    depth: Arc<AtomicU64>,
}

impl BusSink {
    /// A sink over `bus`; `depth` is kept current by [`BusSink::poll_depth`].
    pub fn new(bus: Arc<dyn Bus>) -> BusSink {
        BusSink {
            bus,
            depth: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Polls the bus's depth once a second until `stop` changes.
    pub fn poll_depth(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let bus = self.bus.clone();
        let depth = self.depth.clone();
        async move {
            loop {
                if let Ok(d) = bus.depth().await {
                    depth.store(d, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

impl IngestSink for BusSink {
    fn submit(&self, batch: IngestBatch) -> BoxFuture<'_, Result<SubmitOutcome, SinkError>> {
        Box::pin(async move {
            let events: Vec<&serde_json::Value> = batch.events.iter().map(|e| &e.event).collect();
            let payload =
                serde_json::to_vec(&events).map_err(|e| SinkError::Unavailable(e.to_string()))?;
            let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
            match self.bus.publish_events(payload.into(), count).await {
                Ok(()) => {
                    self.depth.fetch_add(1, Ordering::Relaxed);
                    // Duplicates are found by the store, after the queue.
                    Ok(SubmitOutcome::default())
                }
                Err(BusError::Full) => Err(SinkError::Full {
                    retry_after: Duration::from_secs(2),
                }),
                Err(e) => Err(SinkError::Unavailable(e.to_string())),
            }
        })
    }

    fn queue_depth(&self) -> Option<u64> {
        Some(self.depth.load(Ordering::Relaxed))
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.bus
                .depth()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_capacity_counts_events_and_queue_bytes_bounds_memory_and_nats() {
        let mut config = Config::from_toml(
            "[limits]\nqueue_capacity = 50000\nqueue_bytes = \"64MiB\"\n[queue]\nname = \"site\"",
        )
        .unwrap();
        let dozor_bus::BusConfig::Memory(m) = bus_config(&config, "w") else {
            panic!("memory expected");
        };
        assert_eq!(m.max_events, 50_000);
        assert_eq!(m.max_bytes, 64 << 20);
        assert_eq!(m.max_messages, 0);

        config.bus = BusConfig::Redis("redis://127.0.0.1:6379".into());
        let dozor_bus::BusConfig::Redis(r) = bus_config(&config, "w-1") else {
            panic!("redis expected");
        };
        assert_eq!((r.max_events, r.max_len), (50_000, 50_000));
        assert_eq!(
            (r.stream.as_str(), r.group.as_str()),
            ("site:ingest", "site-workers")
        );
        assert_eq!(r.consumer, "w-1");

        config.bus = BusConfig::Nats("nats://127.0.0.1:4222".into());
        let dozor_bus::BusConfig::Nats(n) = bus_config(&config, "w") else {
            panic!("nats expected");
        };
        assert_eq!(n.max_msgs, 50_000);
        assert_eq!(n.max_bytes, 64 << 20);
        assert_eq!(n.stream, "SITE_INGEST");
    }
}
