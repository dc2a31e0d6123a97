//! Test harnesses: one per backend, each making consumers on one queue with
//! unique names, and deleting everything it made at the end.

#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dozor_bus::{Bus, MemoryBus, MemoryConfig, NatsBus, NatsConfig, RedisBus, RedisConfig};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub const REDIS_ENV: &str = "DOZOR_TEST_REDIS_URL";
pub const NATS_ENV: &str = "DOZOR_TEST_NATS_URL";

/// What a scenario asks of the queue.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Capacity in messages.
    pub capacity: u64,
    /// Visibility timeout / claim idle / ack wait.
    pub timeout: Duration,
    /// Connect through a TCP proxy that the test can cut.
    pub proxied: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            capacity: 10_000,
            timeout: Duration::from_secs(1),
            proxied: false,
        }
    }
}

#[async_trait]
pub trait Harness: Send + Sync {
    /// A consumer on the shared queue, as a worker process named `name`
    /// would make it.
    async fn consumer(&self, name: &str) -> Arc<dyn Bus>;
    /// Deletes what the test made on the server.
    async fn cleanup(&self);
    fn params(&self) -> Params;
    /// Cuts every connection made through the proxy (proxied harnesses).
    async fn cut_connections(&self) {}
    /// Connections the proxy accepted so far (proxied harnesses).
    fn connections_made(&self) -> usize {
        0
    }
}

/// Unique suffix: process id, time, counter. Only `[0-9a-z_]`.
pub fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{:x}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a scenario and cleans up even when it panics.
pub async fn guarded(
    harness: Arc<dyn Harness>,
    scenario: impl FnOnce(Arc<dyn Harness>) -> BoxFuture<'static, ()>,
) {
    let result = AssertUnwindSafe(scenario(harness.clone()))
        .catch_unwind()
        .await;
    harness.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------- memory

pub struct MemoryHarness {
    bus: MemoryBus,
    params: Params,
}

impl MemoryHarness {
    pub async fn setup(params: Params) -> Option<Arc<dyn Harness>> {
        let bus = MemoryBus::new(MemoryConfig {
            max_messages: usize::try_from(params.capacity).expect("capacity fits"),
            max_bytes: 0,
            max_events: 0,
            visibility_timeout: params.timeout,
        })
        .expect("memory bus");
        Some(Arc::new(MemoryHarness { bus, params }))
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    async fn consumer(&self, _name: &str) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone())
    }
    async fn cleanup(&self) {}
    fn params(&self) -> Params {
        self.params
    }
}

// ---------------------------------------------------------------- proxy

/// A TCP proxy on 127.0.0.1 whose connections the test can cut.
pub struct Proxy {
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = conns.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().await.push(task);
            }
        });
        Proxy {
            port,
            accepted,
            accept,
            conns,
        }
    }

    pub async fn cut(&self) {
        for task in self.conns.lock().await.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(mut conns) = self.conns.try_lock() {
            for task in conns.drain(..) {
                task.abort();
            }
        }
    }
}

/// Where a harness for a server backend connects: the URL from the
/// environment, and the one the bus uses (through a proxy when the
/// scenario asks for one).
struct Connection {
    direct_url: String,
    bus_url: String,
    proxy: Option<Proxy>,
}

impl Connection {
    /// `None` (and a "skipped" line) when `env` is not set.
    async fn open(env: &str, params: Params) -> Option<Connection> {
        let Ok(direct_url) = std::env::var(env) else {
            println!("skipped: {env} not set");
            return None;
        };
        let (proxy, bus_url) = if params.proxied {
            let (target, _) = via_proxy(&direct_url, 0);
            let proxy = Proxy::start(target).await;
            let (_, proxied) = via_proxy(&direct_url, proxy.port);
            (Some(proxy), proxied)
        } else {
            (None, direct_url.clone())
        };
        Some(Connection {
            direct_url,
            bus_url,
            proxy,
        })
    }
}

/// `scheme://[userinfo@]host:port[/rest]` → (`host:port`, same URL through
/// 127.0.0.1:`port`).
fn via_proxy(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("url with scheme");
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), rest),
    };
    let (hostport, path) = match hostpart.find('/') {
        Some(i) => (&hostpart[..i], &hostpart[i..]),
        None => (hostpart, ""),
    };
    (
        hostport.to_owned(),
        format!("{scheme}://{userinfo}127.0.0.1:{port}{path}"),
    )
}

// ---------------------------------------------------------------- servers

/// What differs between the server backends: how a consumer connects and what cleanup deletes.
enum ServerConfig {
    Redis(RedisConfig),
    Nats(NatsConfig),
}

/// A harness for a backend on a server (Redis, NATS).
pub struct ServerHarness {
    config: ServerConfig,
    connection: Connection,
    params: Params,
}

#[async_trait]
impl Harness for ServerHarness {
    async fn consumer(&self, name: &str) -> Arc<dyn Bus> {
        match &self.config {
            ServerConfig::Redis(config) => {
                let mut config = config.clone();
                config.consumer = name.to_owned();
                Arc::new(RedisBus::connect(config).await.expect("redis bus"))
            }
            // JetStream consumers share one durable: the name plays no part.
            ServerConfig::Nats(config) => {
                Arc::new(NatsBus::connect(config.clone()).await.expect("nats bus"))
            }
        }
    }

    async fn cleanup(&self) {
        let direct_url = self.connection.direct_url.as_str();
        match &self.config {
            ServerConfig::Redis(config) => {
                let client = redis::Client::open(direct_url).expect("redis url");
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("redis connection for cleanup");
                let _: i64 = redis::cmd("DEL")
                    .arg(&config.stream)
                    .arg(format!("{}:events", config.stream))
                    .query_async(&mut conn)
                    .await
                    .expect("DEL stream");
            }
            ServerConfig::Nats(config) => {
                let client = async_nats::connect(direct_url)
                    .await
                    .expect("nats connection for cleanup");
                let jetstream = async_nats::jetstream::new(client);
                // The stream may not exist if the scenario failed before connecting.
                let _ = jetstream.delete_stream(&config.stream).await;
            }
        }
    }

    fn params(&self) -> Params {
        self.params
    }

    async fn cut_connections(&self) {
        if let Some(proxy) = &self.connection.proxy {
            proxy.cut().await;
        }
    }

    fn connections_made(&self) -> usize {
        self.connection
            .proxy
            .as_ref()
            .map_or(0, |p| p.accepted.load(Ordering::Relaxed))
    }
}

impl ServerHarness {
    /// A harness on the server named by `env` (`None` when it is not set); `config` makes the
    /// backend's settings from the URL the bus connects to and a unique suffix for its names.
    async fn setup(
        env: &str,
        params: Params,
        config: impl FnOnce(String, String) -> ServerConfig,
    ) -> Option<Arc<dyn Harness>> {
        let connection = Connection::open(env, params).await?;
        let config = config(connection.bus_url.clone(), unique());
        Some(Arc::new(ServerHarness {
            config,
            connection,
            params,
        }))
    }
}

pub struct RedisHarness;

impl RedisHarness {
    pub async fn setup(params: Params) -> Option<Arc<dyn Harness>> {
        ServerHarness::setup(REDIS_ENV, params, |url, id| {
            ServerConfig::Redis(RedisConfig {
                url,
                stream: format!("dozor:test:{id}"),
                group: format!("g_{id}"),
                consumer: String::new(),
                max_len: params.capacity,
                max_events: 0,
                claim_idle: params.timeout,
            })
        })
        .await
    }
}

pub struct NatsHarness;

impl NatsHarness {
    pub async fn setup(params: Params) -> Option<Arc<dyn Harness>> {
        ServerHarness::setup(NATS_ENV, params, |url, id| {
            ServerConfig::Nats(NatsConfig {
                url,
                stream: format!("DOZOR_TEST_{id}"),
                subject: format!("dozor.test.{id}"),
                durable: format!("workers_{id}"),
                max_msgs: params.capacity,
                max_bytes: 0,
                ack_wait: params.timeout,
            })
        })
        .await
    }
}
