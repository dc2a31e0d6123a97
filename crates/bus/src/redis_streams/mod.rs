//! Redis Streams backend.
//!
//! * **publish**: one Lua script checks `XLEN` against `max_len` and runs
//!   `XADD <stream> * p <payload>` only when there is room, atomically (no
//!   race between publishers, no silent `MAXLEN` trimming). Full → [`BusError::Full`].
//! * **receive**: the consumer group is created at start when missing
//!   (`XGROUP CREATE ... 0 MKSTREAM`, `BUSYGROUP` tolerated, re-created on
//!   `NOGROUP`). A consumer first re-reads its own pending entries once
//!   (`XREADGROUP ... 0`: a restarted worker with the same consumer name
//!   resumes at once), then takes over entries that other (dead) consumers
//!   left pending for longer than `claim_idle` (`XAUTOCLAIM`), then reads new
//!   entries (`XREADGROUP ... BLOCK <wait> ... >`).
//! * **ack**: `XACK` + `XDEL` in one `MULTI`, so an acked entry leaves the
//!   stream and the stream's length stays bounded by the unprocessed backlog.
//!   Nothing is acked unless the caller says so.
//! * **reconnect**: two [`ConnectionManager`]s (one for blocking reads, one
//!   for everything else) reconnect by themselves; a call that hits a broken
//!   connection returns [`BusError::Unavailable`] and the next one goes
//!   through the new connection.
//!
//! One consumer group per stream: entries are deleted once acked, so the
//! stream is a work queue, not a log for several groups.

use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{
    Bus, BusError, Delivery, DeliveryId, IdRepr, batch_events, check_name, check_timeout,
    redact_url,
};

const BACKEND: &str = "redis";
/// Field of the stream entry that holds the payload.
const FIELD: &str = "p";
/// Longest single `BLOCK`; longer waits are cut to this.
const MAX_BLOCK: Duration = Duration::from_secs(30);
/// Response timeout of the non-blocking commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// KEYS: stream, event counter. ARGV: max entries, payload, events, max events (0: none).
/// The entry keeps its event count (`n`) so that acking it can give the room back.
const PUBLISH_LUA: &str = r"
local max = tonumber(ARGV[1])
if redis.call('XLEN', KEYS[1]) >= max then
  return 0
end
local n = tonumber(ARGV[3])
local max_events = tonumber(ARGV[4])
if max_events > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') + n > max_events then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'p', ARGV[2], 'n', n)
redis.call('INCRBY', KEYS[2], n)
return 1
";

/// KEYS: stream, event counter. ARGV: group, then the entry ids. Acks and deletes the
/// entries and takes the events of those it deleted off the counter, atomically (an entry
/// acked twice is counted once).
const ACK_LUA: &str = r"
local events = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  redis.call('XACK', KEYS[1], ARGV[1], id)
  if redis.call('XDEL', KEYS[1], id) == 1 and #entry > 0 then
    local fields = entry[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == 'n' then events = events + tonumber(fields[j + 1]) end
    end
  end
end
if events > 0 then
  if redis.call('DECRBY', KEYS[2], events) < 0 then redis.call('SET', KEYS[2], 0) end
end
return events
";

/// Configuration of the Redis Streams backend.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://...`.
    pub url: String,
    /// Stream key.
    pub stream: String,
    /// Consumer group shared by all workers.
    pub group: String,
    /// This worker's consumer name. Keep it stable per worker process (for
    /// example the host name plus a worker index) so that a restarted worker
    /// resumes its own pending entries at once.
    pub consumer: String,
    /// Most entries in the stream (published and not yet acked). Publishing
    /// beyond it fails with [`BusError::Full`].
    pub max_len: u64,
    /// Most events in the stream (entries published with
    /// [`Bus::publish_events`] count as their events, kept in the key
    /// `<stream>:events`); `0` = no limit on events.
    pub max_events: u64,
    /// An entry delivered to a consumer and not acked for this long is taken
    /// over by the next consumer that asks (the first one is presumed dead).
    /// Must be longer than the processing of one batch.
    pub claim_idle: Duration,
}

impl RedisConfig {
    /// Defaults for everything but the URL and this worker's consumer name.
    pub fn new(url: impl Into<String>, consumer: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            stream: "dozor:ingest".into(),
            group: "dozor-workers".into(),
            consumer: consumer.into(),
            max_len: 1_000_000,
            max_events: 0,
            claim_idle: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<(), BusError> {
        check_name("redis stream", &self.stream)?;
        check_name("redis group", &self.group)?;
        check_name("redis consumer", &self.consumer)?;
        if self.max_len == 0 {
            return Err(BusError::Config(
                "redis max_len must be positive (the bus is never unbounded)".into(),
            ));
        }
        check_timeout("redis claim_idle", self.claim_idle)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("max_len", &self.max_len)
            .field("max_events", &self.max_events)
            .field("claim_idle", &self.claim_idle)
            .finish()
    }
}

/// The Redis Streams backend. One value is one consumer of the group.
pub struct RedisBus {
    config: RedisConfig,
    /// Publish, ack, depth, group management.
    commands: ConnectionManager,
    /// Blocking reads only, so that they never hold up a publish.
    reads: ConnectionManager,
    publish_script: Script,
    ack_script: Script,
    /// Key of the events counter (`<stream>:events`).
    events_key: String,
    reader: Mutex<ReaderState>,
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct ReaderState {
    /// Where to continue re-reading this consumer's own pending entries;
    /// `None` once they have all been handed out again.
    backlog: Option<String>,
    /// `XAUTOCLAIM` cursor.
    claim_cursor: String,
    /// Do not scan for stuck entries before this.
    next_claim: Instant,
}

/// One entry as read from the stream.
enum Entry {
    /// Ours, with its payload.
    Payload(String, Bytes),
    /// Still pending but deleted from the stream (nothing to deliver).
    Deleted(String),
    /// Not written by this crate (no `p` field).
    Foreign(String),
}

impl RedisBus {
    /// Connects, creates the consumer group if missing.
    pub async fn connect(config: RedisConfig) -> Result<Self, BusError> {
        config.validate()?;
        let client = ::redis::Client::open(config.url.as_str())
            .map_err(|e| BusError::Config(format!("redis url {}: {e}", redact_url(&config.url))))?;
        let base = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let commands = client
            .get_connection_manager_with_config(
                base.clone().set_response_timeout(Some(COMMAND_TIMEOUT)),
            )
            .await
            .map_err(map_err)?;
        let reads = client
            .get_connection_manager_with_config(
                base.set_response_timeout(Some(MAX_BLOCK + COMMAND_TIMEOUT)),
            )
            .await
            .map_err(map_err)?;
        let bus = RedisBus {
            commands,
            reads,
            publish_script: Script::new(PUBLISH_LUA),
            ack_script: Script::new(ACK_LUA),
            events_key: format!("{}:events", config.stream),
            reader: Mutex::new(ReaderState {
                backlog: Some("0".into()),
                claim_cursor: "0-0".into(),
                next_claim: Instant::now(),
            }),
            config,
        };
        bus.ensure_group().await?;
        tracing::info!(
            url = %redact_url(&bus.config.url),
            stream = %bus.config.stream,
            group = %bus.config.group,
            consumer = %bus.config.consumer,
            max_len = bus.config.max_len,
            "redis bus ready"
        );
        Ok(bus)
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    async fn ensure_group(&self) -> Result<(), BusError> {
        let mut conn = self.commands.clone();
        let created: Result<(), RedisError> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => {
                tracing::info!(
                    stream = %self.config.stream,
                    group = %self.config.group,
                    "redis consumer group created"
                );
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Interval between scans for stuck entries when the last scan found none.
    fn claim_interval(&self) -> Duration {
        (self.config.claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    async fn receive_inner(
        &self,
        state: &mut ReaderState,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, RedisError> {
        let mut conn = self.reads.clone();
        let cfg = &self.config;

        // 1. Our own pending entries, once after start.
        if let Some(cursor) = state.backlog.clone() {
            let reply: Value = ::redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&cfg.group)
                .arg(&cfg.consumer)
                .arg("COUNT")
                .arg(max)
                .arg("STREAMS")
                .arg(&cfg.stream)
                .arg(&cursor)
                .query_async(&mut conn)
                .await?;
            let entries = parse_read_reply(reply)?;
            state.backlog = if entries.len() < max {
                None
            } else {
                entries.last().map(|e| e.id().to_owned())
            };
            let out = self.deliveries(entries, true).await?;
            if !out.is_empty() {
                tracing::info!(
                    count = out.len(),
                    consumer = %cfg.consumer,
                    "redis bus: resuming this consumer's pending entries"
                );
                return Ok(out);
            }
        }

        // 2. Entries left pending too long by other (dead) consumers.
        let now = Instant::now();
        if now >= state.next_claim {
            let reply: Value = ::redis::cmd("XAUTOCLAIM")
                .arg(&cfg.stream)
                .arg(&cfg.group)
                .arg(&cfg.consumer)
                .arg(duration_ms(cfg.claim_idle).max(1))
                .arg(&state.claim_cursor)
                .arg("COUNT")
                .arg(max)
                .query_async(&mut conn)
                .await?;
            let (next, entries) = parse_autoclaim_reply(reply)?;
            let scanned_all = next == "0-0";
            state.claim_cursor = next;
            if scanned_all && entries.is_empty() {
                state.next_claim = now + self.claim_interval();
            }
            let out = self.deliveries(entries, true).await?;
            if !out.is_empty() {
                tracing::warn!(
                    count = out.len(),
                    consumer = %cfg.consumer,
                    claim_idle_ms = duration_ms(cfg.claim_idle),
                    "redis bus: took over entries not acked in time"
                );
                return Ok(out);
            }
        }

        // 3. New entries, blocking up to `wait`.
        let mut read = ::redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(&cfg.group)
            .arg(&cfg.consumer)
            .arg("COUNT")
            .arg(max);
        let block_ms = duration_ms(wait.min(MAX_BLOCK));
        if block_ms > 0 {
            read.arg("BLOCK").arg(block_ms);
        }
        read.arg("STREAMS").arg(&cfg.stream).arg(">");
        let reply: Value = read.query_async(&mut conn).await?;
        let entries = parse_read_reply(reply)?;
        self.deliveries(entries, false).await
    }

    /// Turns entries into deliveries; acks the ones that cannot be delivered.
    async fn deliveries(
        &self,
        entries: Vec<Entry>,
        redelivered: bool,
    ) -> Result<Vec<Delivery>, RedisError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut drop_ids = Vec::new();
        for entry in entries {
            match entry {
                Entry::Payload(id, payload) => out.push(Delivery {
                    id: DeliveryId(IdRepr::Redis(id)),
                    payload,
                    redelivered,
                }),
                Entry::Deleted(id) => {
                    tracing::warn!(%id, "redis bus: pending entry was deleted from the stream, dropping it");
                    drop_ids.push(id);
                }
                Entry::Foreign(id) => {
                    tracing::warn!(%id, field = FIELD, "redis bus: entry without payload field, dropping it");
                    drop_ids.push(id);
                }
            }
        }
        if !drop_ids.is_empty() {
            self.ack_ids(&drop_ids).await?;
        }
        Ok(out)
    }

    async fn ack_ids(&self, ids: &[String]) -> Result<(), RedisError> {
        let mut conn = self.commands.clone();
        let mut invocation = self.ack_script.key(&self.config.stream);
        invocation.key(&self.events_key).arg(&self.config.group);
        for id in ids {
            invocation.arg(id);
        }
        invocation.invoke_async::<i64>(&mut conn).await.map(|_| ())
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, payload: Bytes) -> Result<(), BusError> {
        self.publish_events(payload, 1).await
    }

    async fn publish_events(&self, payload: Bytes, events: u32) -> Result<(), BusError> {
        let events = batch_events(events, self.config.max_events)?;
        let mut conn = self.commands.clone();
        let added: i64 = self
            .publish_script
            .key(&self.config.stream)
            .key(&self.events_key)
            .arg(self.config.max_len)
            .arg(payload.as_ref())
            .arg(events)
            .arg(self.config.max_events)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        if added == 1 {
            Ok(())
        } else {
            tracing::debug!(stream = %self.config.stream, max_len = self.config.max_len, "redis bus full, publish refused");
            Err(BusError::Full)
        }
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut state = self.reader.lock().await;
        match self.receive_inner(&mut state, max, wait).await {
            Ok(out) => Ok(out),
            Err(e) if e.code() == Some("NOGROUP") => {
                // The stream or the group vanished (Redis restarted without
                // persistence, or someone deleted the key): create them again.
                tracing::warn!(
                    stream = %self.config.stream,
                    group = %self.config.group,
                    "redis bus: consumer group missing, creating it again"
                );
                state.claim_cursor = "0-0".into();
                self.ensure_group().await?;
                Ok(Vec::new())
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis bus receive failed");
                Err(map_err(e))
            }
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), BusError> {
        let mut raw = Vec::with_capacity(ids.len());
        for id in ids {
            match &id.0 {
                IdRepr::Redis(entry) => raw.push(entry.clone()),
                _ => return Err(BusError::ForeignId(id.to_string(), BACKEND)),
            }
        }
        if raw.is_empty() {
            return Ok(());
        }
        self.ack_ids(&raw).await.map_err(map_err)
    }

    async fn depth(&self) -> Result<u64, BusError> {
        let mut conn = self.commands.clone();
        ::redis::cmd("XLEN")
            .arg(&self.config.stream)
            .query_async(&mut conn)
            .await
            .map_err(map_err)
    }

    fn name(&self) -> &'static str {
        BACKEND
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn map_err(e: RedisError) -> BusError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::TryAgain
                    | ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
        );
    if transient {
        BusError::unavailable(BACKEND, e)
    } else {
        BusError::backend(BACKEND, e)
    }
}

fn unexpected(what: &str, value: &Value) -> RedisError {
    RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        format!("{what}: {value:?}"),
    ))
}

impl Entry {
    fn id(&self) -> &str {
        match self {
            Entry::Payload(id, _) | Entry::Deleted(id) | Entry::Foreign(id) => id,
        }
    }
}

fn value_to_string(value: Value) -> Result<String, RedisError> {
    match value {
        Value::BulkString(b) => String::from_utf8(b)
            .map_err(|e| unexpected("stream id is not UTF-8", &Value::BulkString(e.into_bytes()))),
        Value::SimpleString(s) => Ok(s),
        other => Err(unexpected("stream id", &other)),
    }
}

/// `[id, [field, value, ...] | nil]`; `Nil` alone (Redis 6.2 XAUTOCLAIM
/// for deleted entries) gives `None`.
fn parse_entry(value: Value) -> Result<Option<Entry>, RedisError> {
    let items = match value {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
        other => return Err(unexpected("stream entry", &other)),
    };
    let mut items = items.into_iter();
    let id = value_to_string(
        items
            .next()
            .ok_or_else(|| unexpected("stream entry without id", &Value::Nil))?,
    )?;
    let fields = match items.next() {
        None | Some(Value::Nil) => return Ok(Some(Entry::Deleted(id))),
        Some(Value::Array(fields)) => fields,
        Some(Value::Map(pairs)) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Some(other) => return Err(unexpected("stream entry fields", &other)),
    };
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let is_payload = matches!(&name, Value::BulkString(b) if b == FIELD.as_bytes())
            || matches!(&name, Value::SimpleString(s) if s == FIELD);
        if is_payload {
            return Ok(Some(match value {
                Value::BulkString(b) => Entry::Payload(id, Bytes::from(b)),
                Value::SimpleString(s) => Entry::Payload(id, Bytes::from(s)),
                _ => Entry::Foreign(id),
            }));
        }
    }
    Ok(Some(Entry::Foreign(id)))
}

fn parse_entries(value: Value) -> Result<Vec<Entry>, RedisError> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(entry) = parse_entry(item)? {
                    out.push(entry);
                }
            }
            Ok(out)
        }
        other => Err(unexpected("stream entries", &other)),
    }
}

/// XREADGROUP over one stream: `nil` (timeout), `[[key, entries]]` (RESP2)
/// or `{key: entries}` (RESP3).
fn parse_read_reply(value: Value) -> Result<Vec<Entry>, RedisError> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for stream in streams {
                match stream {
                    Value::Array(pair) if pair.len() == 2 => {
                        if let Some(entries) = pair.into_iter().nth(1) {
                            out.extend(parse_entries(entries)?);
                        }
                    }
                    other => return Err(unexpected("XREADGROUP stream", &other)),
                }
            }
            Ok(out)
        }
        Value::Map(streams) => {
            let mut out = Vec::new();
            for (_key, entries) in streams {
                out.extend(parse_entries(entries)?);
            }
            Ok(out)
        }
        other => Err(unexpected("XREADGROUP reply", &other)),
    }
}

/// XAUTOCLAIM: `[next-cursor, entries]` (6.2) or
/// `[next-cursor, entries, deleted-ids]` (7.0+; deleted ids are already
/// removed from the pending list by Redis).
fn parse_autoclaim_reply(value: Value) -> Result<(String, Vec<Entry>), RedisError> {
    let items = match value {
        Value::Array(items) if items.len() == 2 || items.len() == 3 => items,
        other => return Err(unexpected("XAUTOCLAIM reply", &other)),
    };
    let mut items = items.into_iter();
    let next = value_to_string(items.next().unwrap_or(Value::Nil))?;
    let entries = parse_entries(items.next().unwrap_or(Value::Nil))?;
    if let Some(Value::Array(deleted)) = items.next()
        && !deleted.is_empty()
    {
        tracing::warn!(
            count = deleted.len(),
            "redis bus: pending entries were deleted from the stream"
        );
    }
    Ok((next, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_read_replies() {
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("p"), bulk("hello")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
                Value::Array(vec![bulk("3-0"), Value::Array(vec![bulk("x"), bulk("y")])]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 3);
        assert!(
            matches!(&entries[0], Entry::Payload(id, p) if id == "1-0" && p.as_ref() == b"hello")
        );
        assert!(matches!(&entries[1], Entry::Deleted(id) if id == "2-0"));
        assert!(matches!(&entries[2], Entry::Foreign(id) if id == "3-0"));

        let resp3 = Value::Map(vec![(
            bulk("s"),
            Value::Array(vec![Value::Array(vec![
                bulk("4-0"),
                Value::Array(vec![bulk("p"), bulk("x")]),
            ])]),
        )]);
        assert_eq!(parse_read_reply(resp3).unwrap().len(), 1);
    }

    #[test]
    fn parses_autoclaim_replies() {
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("p"), bulk("a")])]),
                Value::Nil,
            ]),
            Value::Array(vec![bulk("2-0")]),
        ]);
        let (next, entries) = parse_autoclaim_reply(reply).unwrap();
        assert_eq!(next, "0-0");
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_read_reply(Value::Int(3)).is_err());
        assert!(parse_read_reply(Value::Array(vec![Value::Int(1)])).is_err());
        assert!(parse_autoclaim_reply(Value::Array(vec![])).is_err());
        assert!(parse_entry(Value::Array(vec![])).is_err());
        assert!(parse_entry(Value::Array(vec![Value::Int(1)])).is_err());
    }

    #[test]
    fn config_is_validated_and_redacted() {
        let mut config = RedisConfig::new("redis://u:secret@localhost", "w1");
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("secret"));
        config.max_len = 0;
        assert!(config.validate().is_err());
        config.max_len = 1;
        config.consumer = String::new();
        assert!(config.validate().is_err());
    }
}
