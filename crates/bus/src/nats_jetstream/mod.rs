//! NATS JetStream backend.
//!
//! * **stream**: a work-queue stream (`retention: workqueue`) on one subject,
//!   with `max_msgs` / `max_bytes` limits and `discard: new`, so a publish into
//!   a full stream is refused by the server ([`BusError::Full`]) instead of
//!   dropping old messages. In a work queue an acked message is removed, so
//!   the limits bound the unprocessed backlog. Created or updated at start.
//! * **publish**: waits for the server's `PubAck` (the message is stored).
//! * **receive**: one durable pull consumer shared by all workers, explicit
//!   acks, `ack_wait`: a message not acked within `ack_wait` is delivered
//!   again, to whichever worker fetches next (`redelivered` is set from the
//!   delivery count). A fetch returns what is there at once; when nothing is
//!   there it waits up to `wait` for the first message, then tops the batch
//!   up with whatever else is available.
//! * **ack**: `+ACK` to each message's reply subject, then a flush. Nothing is
//!   acked unless the caller says so. An ack lost with the connection means
//!   a redelivery after `ack_wait`, never a loss.
//! * **reconnect**: done by the client; calls made while it is disconnected
//!   fail with [`BusError::Unavailable`].

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, Batch};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::{Client, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Bus, BusError, Delivery, DeliveryId, IdRepr, check_name, check_timeout, redact_url};

const BACKEND: &str = "nats";
/// Waits shorter than this do not block on the server.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// Longest single pull wait; longer waits are cut to this.
const MAX_WAIT: Duration = Duration::from_secs(30);
const ACK_PAYLOAD: &[u8] = b"+ACK";

/// Configuration of the NATS JetStream backend.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://[user:password@]host:port` (several separated by commas).
    pub url: String,
    /// JetStream stream name.
    pub stream: String,
    /// The one subject the stream captures and the ingest publishes to.
    pub subject: String,
    /// Durable pull consumer shared by all workers.
    pub durable: String,
    /// Most messages stored (published, not yet acked). `0` = no count
    /// limit (then `max_bytes` must be set).
    pub max_msgs: u64,
    /// Most bytes stored. `0` = no byte limit (then `max_msgs` must be set).
    pub max_bytes: u64,
    /// A delivered message not acked within this time is delivered again.
    /// Must be longer than the processing of one batch.
    pub ack_wait: Duration,
}

impl NatsConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream: "DOZOR_INGEST".into(),
            subject: "dozor.ingest".into(),
            durable: "dozor-workers".into(),
            max_msgs: 1_000_000,
            max_bytes: 0,
            ack_wait: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<(), BusError> {
        check_name("nats stream", &self.stream)?;
        check_name("nats subject", &self.subject)?;
        check_name("nats durable", &self.durable)?;
        if self.stream.contains(['.', '*', '>']) || self.durable.contains(['.', '*', '>']) {
            return Err(BusError::Config(
                "nats stream and durable names must not contain '.', '*' or '>'".into(),
            ));
        }
        if self.subject.contains(['*', '>']) {
            return Err(BusError::Config(
                "nats subject must be a plain subject without wildcards".into(),
            ));
        }
        if self.max_msgs == 0 && self.max_bytes == 0 {
            return Err(BusError::Config(
                "nats stream needs max_msgs or max_bytes (the bus is never unbounded)".into(),
            ));
        }
        check_timeout("nats ack_wait", self.ack_wait)
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("subject", &self.subject)
            .field("durable", &self.durable)
            .field("max_msgs", &self.max_msgs)
            .field("max_bytes", &self.max_bytes)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

/// The NATS JetStream backend. One value is one connection; all values with
/// the same `durable` share the work.
pub struct NatsBus {
    config: NatsConfig,
    client: Client,
    jetstream: async_nats::jetstream::Context,
    stream: stream::Stream,
    consumer: PullConsumer,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn limit(value: u64) -> i64 {
    if value == 0 {
        -1
    } else {
        i64::try_from(value).unwrap_or(i64::MAX)
    }
}

impl NatsBus {
    /// Connects, creates or updates the stream, creates the durable consumer
    /// if missing.
    pub async fn connect(config: NatsConfig) -> Result<Self, BusError> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("dozor-bus:{}", config.durable))
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("nats bus disconnected, reconnecting");
                    }
                    async_nats::Event::Connected => tracing::info!("nats bus connected"),
                    other => tracing::debug!(event = %other, "nats bus event"),
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| BusError::unavailable(BACKEND, e))?;
        let jetstream = async_nats::jetstream::new(client.clone());

        let wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![config.subject.clone()],
            retention: RetentionPolicy::WorkQueue,
            discard: DiscardPolicy::New,
            max_messages: limit(config.max_msgs),
            max_bytes: limit(config.max_bytes),
            storage: StorageType::File,
            ..Default::default()
        };
        jetstream
            .create_or_update_stream(wanted)
            .await
            .map_err(|e| BusError::backend(BACKEND, e))?;
        let stream = jetstream
            .get_stream(&config.stream)
            .await
            .map_err(|e| BusError::backend(BACKEND, e))?;

        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &config.durable,
                pull::Config {
                    durable_name: Some(config.durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::backend(BACKEND, e))?;
        let existing_wait = consumer.cached_info().config.ack_wait;
        if existing_wait != config.ack_wait {
            tracing::warn!(
                durable = %config.durable,
                configured_ms = config.ack_wait.as_millis() as u64,
                in_force_ms = existing_wait.as_millis() as u64,
                "nats bus: the durable consumer exists with another ack_wait, keeping it"
            );
        }
        tracing::info!(
            url = %redact_url(&config.url),
            stream = %config.stream,
            subject = %config.subject,
            durable = %config.durable,
            max_msgs = config.max_msgs,
            max_bytes = config.max_bytes,
            "nats bus ready"
        );
        Ok(NatsBus {
            config,
            client,
            jetstream,
            stream,
            consumer,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// Drains one pull request into `out`. An error after some messages
    /// arrived keeps those (they are delivered and must be processed).
    async fn drain(&self, mut batch: Batch, out: &mut Vec<Delivery>) -> Result<(), BusError> {
        while let Some(item) = batch.next().await {
            match item {
                Ok(message) => {
                    let redelivered = message.info().map(|i| i.delivered > 1).unwrap_or(false);
                    let message = message.message;
                    match message.reply {
                        Some(reply) => out.push(Delivery {
                            id: DeliveryId(IdRepr::Nats(reply)),
                            payload: message.payload,
                            redelivered,
                        }),
                        None => tracing::warn!(
                            subject = %message.subject,
                            "nats bus: message without ack subject, skipped"
                        ),
                    }
                }
                Err(e) if out.is_empty() => return Err(BusError::unavailable(BACKEND, e)),
                Err(e) => {
                    tracing::warn!(error = %e, "nats bus: pull ended early");
                    break;
                }
            }
        }
        Ok(())
    }

    async fn fetch_now(&self, max: usize, out: &mut Vec<Delivery>) -> Result<(), BusError> {
        let batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| BusError::unavailable(BACKEND, e))?;
        self.drain(batch, out).await
    }

    async fn fetch_first(&self, wait: Duration, out: &mut Vec<Delivery>) -> Result<(), BusError> {
        let batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| BusError::unavailable(BACKEND, e))?;
        self.drain(batch, out).await
    }
}

fn map_publish_error(
    e: async_nats::jetstream::context::PublishError,
    size: usize,
    max_payload: usize,
) -> BusError {
    match e.kind() {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
            BusError::unavailable(BACKEND, e)
        }
        PublishErrorKind::MaxPayloadExceeded => BusError::TooLarge {
            size,
            max: max_payload,
        },
        // The client's own cap on unacknowledged publishes.
        PublishErrorKind::MaxAckPending => BusError::Full,
        _ => {
            let full = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
                .is_some_and(is_full);
            if full {
                BusError::Full
            } else {
                BusError::backend(BACKEND, e)
            }
        }
    }
}

/// The stream refused a message because of its limits (discard new) or the
/// server is out of storage.
fn is_full(error: &async_nats::jetstream::Error) -> bool {
    use async_nats::jetstream::ErrorCode;
    let code = error.error_code();
    if code == ErrorCode::STORAGE_RESOURCES_EXCEEDED || code == ErrorCode::MEMORY_RESOURCES_EXCEEDED
    {
        return true;
    }
    // "maximum messages exceeded", "maximum bytes exceeded" (store failed).
    let text = error.to_string();
    code == ErrorCode::STREAM_STORE_FAILED && text.contains("maximum") && text.contains("exceeded")
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, payload: Bytes) -> Result<(), BusError> {
        let size = payload.len();
        if self.config.max_bytes != 0 && size as u64 > self.config.max_bytes {
            return Err(BusError::TooLarge {
                size,
                max: usize::try_from(self.config.max_bytes).unwrap_or(usize::MAX),
            });
        }
        let max_payload = self.client.server_info().max_payload;
        let ack = self
            .jetstream
            .publish(self.config.subject.clone(), payload)
            .await
            .map_err(|e| map_publish_error(e, size, max_payload))?;
        match ack.await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = map_publish_error(e, size, max_payload);
                if matches!(err, BusError::Full) {
                    tracing::debug!(stream = %self.config.stream, "nats bus full, publish refused");
                }
                Err(err)
            }
        }
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(max);
        self.fetch_now(max, &mut out).await?;
        if out.is_empty() && wait >= MIN_WAIT {
            self.fetch_first(wait.min(MAX_WAIT), &mut out).await?;
            if !out.is_empty() && max > 1 {
                // Top up; errors here do not lose what we already hold.
                if let Err(e) = self.fetch_now(max - 1, &mut out).await {
                    tracing::debug!(error = %e, "nats bus: top-up fetch failed");
                }
            }
        }
        Ok(out)
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), BusError> {
        let mut subjects: Vec<&Subject> = Vec::with_capacity(ids.len());
        for id in ids {
            match &id.0 {
                IdRepr::Nats(subject) => subjects.push(subject),
                _ => return Err(BusError::ForeignId(id.to_string(), BACKEND)),
            }
        }
        if subjects.is_empty() {
            return Ok(());
        }
        for subject in subjects {
            self.client
                .publish(subject.clone(), Bytes::from_static(ACK_PAYLOAD))
                .await
                .map_err(|e| BusError::unavailable(BACKEND, e))?;
        }
        self.client
            .flush()
            .await
            .map_err(|e| BusError::unavailable(BACKEND, e))
    }

    async fn depth(&self) -> Result<u64, BusError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| BusError::unavailable(BACKEND, e))?;
        Ok(info.state.messages)
    }

    fn name(&self) -> &'static str {
        BACKEND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated_and_redacted() {
        let mut config = NatsConfig::new("nats://u:secret@localhost:4222");
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("secret"));
        config.subject = "dozor.>".into();
        assert!(config.validate().is_err());
        config.subject = "dozor.ingest".into();
        config.stream = "a.b".into();
        assert!(config.validate().is_err());
        config.stream = "S".into();
        config.max_msgs = 0;
        assert!(config.validate().is_err());
        config.max_bytes = 1024;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn limits() {
        assert_eq!(limit(0), -1);
        assert_eq!(limit(5), 5);
        assert_eq!(limit(u64::MAX), i64::MAX);
    }
}
