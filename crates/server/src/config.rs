//! Server configuration: defaults, a TOML file, `DOZOR_*` environment variables and
//! command-line options, in that order of precedence (the last one wins).
//!
//! Every key is declared once in [`KEYS`] with its environment variable, default and
//! documentation; [`reference_toml`] renders that table as an annotated config file (the
//! README's reference is checked against it by a test). A value that does not parse or
//! validate is reported with its key and where it came from:
//!
//! ```text
//! limits.max_body_bytes (from environment variable DOZOR_MAX_BODY_BYTES): must be at least 1 KiB, got 12
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a server process does. `all` (the default) runs everything in one process with the
/// in-process queue; the others split the work between processes that share PostgreSQL and
/// Redis/NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessRole {
    /// Ingest, workers and the API in one process.
    #[default]
    All,
    /// Only the ingest endpoints: validate and queue events.
    Ingest,
    /// Only the pipeline workers (decode, enrich, detect, store); serves health and metrics.
    Worker,
    /// Only the operator API and UI.
    Api,
}

impl ProcessRole {
    /// Does this process accept events (`POST /api/v1/ingest*`)?
    pub fn runs_ingest(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Ingest)
    }
    /// Does this process run pipeline workers that consume the queue?
    pub fn runs_workers(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Worker)
    }
    /// Does this process serve the operator API?
    pub fn runs_api(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Api)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::All => "all",
            ProcessRole::Ingest => "ingest",
            ProcessRole::Worker => "worker",
            ProcessRole::Api => "api",
        }
    }
}

impl fmt::Display for ProcessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event queue between ingest and the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusConfig {
    /// In-process bounded queue (only for `role = "all"`).
    Memory,
    /// Redis Streams at this URL (`redis://` or `rediss://`).
    Redis(String),
    /// NATS JetStream at this URL (`nats://` or `tls://`).
    Nats(String),
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Serve HTTPS (the default). `false` serves plain HTTP and logs a warning at start.
    pub enabled: bool,
    /// Extra names and addresses for the built-in server certificate (`localhost`,
    /// `127.0.0.1` and `::1` are always included).
    pub hostnames: Vec<String>,
    /// Use this certificate chain (PEM) instead of one issued by the built-in CA.
    pub cert_file: Option<PathBuf>,
    /// The private key (PEM) of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Validity of a server certificate issued by the built-in CA, in days. It is reissued at
    /// start when fewer than 30 days are left or the hostnames changed.
    pub server_cert_days: u32,
}

/// Limits that protect the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted ingest body, in bytes, both as sent and after decompression.
    pub max_body_bytes: u64,
    /// Largest accepted EVTX / XML upload, in bytes, as sent and after decompression.
    pub max_evtx_bytes: u64,
    /// Most events in one ingest batch.
    pub max_batch_events: usize,
    /// Capacity of the in-process queue, in events; ingest answers 503 when it is full.
    pub queue_capacity: usize,
    /// Most bytes of queued documents on the in-process queue (its memory) and on NATS.
    pub queue_bytes: u64,
    /// Bytes of ingest bodies parsed at once; more wait their turn (a body larger than this
    /// is parsed alone).
    pub ingest_parse_bytes: u64,
    /// Time a client has to send a request's headers (HTTP/1), including a keep-alive
    /// connection's next request.
    pub header_timeout: Duration,
    /// Time a client has to send a request body, before [`Limits::body_min_rate`] applies.
    pub body_timeout: Duration,
    /// After [`Limits::body_timeout`], a body must keep arriving at this many bytes per second
    /// on average, or the request is cut off.
    pub body_min_rate: u64,
    /// Connections open at once; beyond it new connections are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_address: usize,
    /// Disk space EVTX / XML uploads being received and decoded may take in `<data_dir>/tmp`.
    pub evtx_scratch_bytes: u64,
}

/// How this process uses a Redis/NATS queue (names and redelivery; the in-process queue uses
/// only `redelivery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Name of the queue: stream, group, subject and durable consumer are derived from it, so
    /// several installations can share one Redis or NATS.
    pub name: String,
    /// This process's consumer name; unset: `<hostname>-worker`.
    pub consumer: Option<String>,
    /// A message taken by a worker that died is handed to another after this long.
    pub redelivery: Duration,
}

/// GeoIP databases (MaxMind DB format) for enrichment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoIpConfig {
    pub city_db: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
}

/// Agent enrollment and liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentsConfig {
    /// How often agents send a heartbeat (told to them in every heartbeat answer).
    pub heartbeat_interval: Duration,
    /// Silent this long: degraded.
    pub degraded_after: Duration,
    /// Silent this long: offline, and an alert is raised.
    pub offline_after: Duration,
    /// Validity of agent certificates, days.
    pub certificate_days: u32,
    /// A command delivered in a heartbeat answer without a result is delivered again after
    /// this long.
    pub command_redeliver_after: Duration,
    /// A command delivered this many times without a result expires.
    pub command_max_attempts: u32,
}

impl AgentsConfig {
    /// An agent's status now, by these thresholds.
    pub fn status_of(&self, agent: &dozor_store::Agent, now: i64) -> dozor_store::AgentStatus {
        agent.status_at(now, self.degraded_after, self.offline_after)
    }
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            heartbeat_interval: Duration::from_secs(30),
            degraded_after: Duration::from_secs(90),
            offline_after: Duration::from_secs(300),
            certificate_days: 365,
            command_redeliver_after: Duration::from_secs(600),
            command_max_attempts: 3,
        }
    }
}

/// File scanning on the server: YARA rules (managed through the API and served to agents),
/// clamd, hash lists, and samples uploaded by agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanConfig {
    /// The YARA rule files (`*.yar`, `*.yara`); created at start when missing.
    pub yara_rules_dir: PathBuf,
    /// clamd's address (`unix:/path` or `tcp:host:port`); `None`: no ClamAV.
    pub clamd: Option<String>,
    /// Known-bad hash list files (SHA-256 / SHA-1 / MD5, one a line).
    pub known_bad: Vec<PathBuf>,
    /// Known-good hash list files.
    pub known_good: Vec<PathBuf>,
    /// Accept sample uploads from agents (`POST /api/v1/samples`).
    pub samples: bool,
    /// Largest sample accepted, in bytes (also the scan limit).
    pub max_sample_bytes: u64,
    /// Where samples are kept (`<sha256>`, mode 0600); created at start when missing.
    pub samples_dir: PathBuf,
    /// Bytes the samples may take; an upload beyond it is answered 507.
    pub samples_quota: u64,
    /// Samples older than this are deleted (their records stay).
    pub samples_retention: Duration,
}

impl ScanConfig {
    /// The defaults for a data directory.
    pub fn defaults_for(data_dir: &Path) -> ScanConfig {
        ScanConfig {
            yara_rules_dir: data_dir.join("yara"),
            clamd: None,
            known_bad: Vec::new(),
            known_good: Vec::new(),
            samples: true,
            max_sample_bytes: 32 << 20,
            samples_dir: data_dir.join("samples"),
            samples_quota: 10 << 30,
            samples_retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// Response (issue 13): playbooks, approvals, direct agent commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseConfig {
    /// Playbook files (`*.yml`, `*.yaml`), loaded at start; created with the base playbooks
    /// when missing.
    pub playbooks_dir: PathBuf,
    /// An approval nobody decided this long expires (the step fails, `rescue` runs).
    pub approval_timeout: Duration,
    /// The person who asked may not approve their own request.
    pub other_approver: bool,
    /// Destructive commands sent directly (API, CLI, dashboard) wait for an approval too.
    pub direct_commands_need_approval: bool,
    /// The dashboard's address as operators reach it, for links in notifications (`dozor.url`
    /// in playbooks); empty: the address the server listens on.
    pub public_url: String,
    /// An agent command a playbook step waits for gives up after this long.
    pub command_timeout: Duration,
    /// Who is told about a new approval request: e-mail addresses, a Telegram chat, a
    /// webhook URL (each through the `[notify]` channel settings); none set: nobody (the
    /// inbox only).
    pub approvers_email: Vec<String>,
    pub approvers_telegram_chat: String,
    pub approvers_webhook: String,
}

impl ResponseConfig {
    /// The defaults for a data directory.
    pub fn defaults_for(data_dir: &Path) -> ResponseConfig {
        ResponseConfig {
            playbooks_dir: data_dir.join("playbooks"),
            approval_timeout: Duration::from_secs(3600),
            other_approver: false,
            direct_commands_need_approval: true,
            public_url: String::new(),
            command_timeout: Duration::from_secs(300),
            approvers_email: Vec::new(),
            approvers_telegram_chat: String::new(),
            approvers_webhook: String::new(),
        }
    }
}

/// Threat intelligence (issue 14): indicator matching, sources, warninglists, retro-hunts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelConfig {
    /// MISP warninglists (`lists/*/list.json` or `*/list.json` or `*.json` below it), loaded at
    /// start; none: no warninglists.
    pub warninglists_dir: Option<PathBuf>,
    /// Sources read from local files (feeds copied by hand) must lie below this directory, so
    /// a source's settings can't make the server read its own files.
    pub feeds_dir: PathBuf,
    /// Warninglisted indicators match and enrich events but raise no alert.
    pub suppress_warninglisted: bool,
    /// A sync looks for its new indicators in events of this many past days (0: no
    /// retro-hunt).
    pub retro_hunt_days: u32,
    /// At most this many stored events are read by one retro-hunt.
    pub retro_hunt_max_events: u64,
    /// Matches of MISP indicators are sent back to their MISP as sightings.
    pub sightings: bool,
    /// How often sightings that could not be sent (MISP unreachable or refusing) are tried
    /// again; they are given up a week after their match.
    pub sighting_retry: Duration,
    /// How often a process with pipeline workers checks the store for changed indicators.
    pub refresh: Duration,
}

impl IntelConfig {
    /// The defaults for a data directory.
    pub fn defaults_for(data_dir: &Path) -> IntelConfig {
        IntelConfig {
            warninglists_dir: None,
            feeds_dir: data_dir.join("intel-feeds"),
            suppress_warninglisted: true,
            retro_hunt_days: 30,
            retro_hunt_max_events: 5_000_000,
            sightings: true,
            sighting_retry: Duration::from_secs(600),
            refresh: Duration::from_secs(5),
        }
    }
}

/// Notification channels for playbooks (`notify.*` modules). Secrets come from here or the
/// environment and never reach run records or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NotifyConfig {
    /// SMTP relay `host:port`; empty: no e-mail.
    pub smtp_server: String,
    /// `starttls` (default), `tls` (implicit TLS) or `plain-insecure` (a local relay only).
    pub smtp_security: String,
    pub smtp_username: String,
    pub smtp_password: String,
    pub smtp_from: String,
    /// CA certificates (PEM) for the SMTP relay and HTTPS receivers, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Telegram Bot API base URL (an on-premises proxy, or https://api.telegram.org).
    pub telegram_api_url: String,
    pub telegram_token: String,
    /// HMAC-SHA256 key of webhook signatures (`X-Dozor-Signature`); empty: unsigned.
    pub webhook_secret: String,
    /// Proxy for outgoing HTTP(S) (`http://host:port`); empty: direct.
    pub proxy: String,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &str| if s.is_empty() { "" } else { "[redacted]" };
        f.debug_struct("NotifyConfig")
            .field("smtp_server", &self.smtp_server)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &secret(&self.smtp_password))
            .field("smtp_from", &self.smtp_from)
            .field("ca_file", &self.ca_file)
            .field("telegram_api_url", &self.telegram_api_url)
            .field("telegram_token", &secret(&self.telegram_token))
            .field("webhook_secret", &secret(&self.webhook_secret))
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// The whole server configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub role: ProcessRole,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub bus: BusConfig,
    pub queue: QueueConfig,
    /// Pipeline worker tasks in this process (roles `all` and `worker`).
    pub workers: usize,
    pub rules_dirs: Vec<PathBuf>,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub retention_days: u32,
    /// Event searches and histograms running longer are cancelled (503).
    pub search_timeout: Duration,
    /// SQLite: the writer connection's page cache, bytes.
    pub sqlite_writer_cache: u64,
    /// SQLite: each reader connection's page cache, bytes.
    pub sqlite_reader_cache: u64,
    pub alert_aggregation_window: Duration,
    pub geoip: GeoIpConfig,
    pub agents: AgentsConfig,
    pub scan: ScanConfig,
    pub response: ResponseConfig,
    pub intel: IntelConfig,
    /// Vulnerability management (`[vulns]`).
    pub vulns: crate::vulns::VulnConfig,
    /// Behavioural analytics (`[anomaly]`).
    pub anomaly: crate::anomaly::AnomalyConfig,
    pub notify: NotifyConfig,
    /// Where each key that is not at its default came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

impl Config {
    /// Defaults, then `args.config` (or nothing), then the `DOZOR_*` variables among `env`,
    /// then the command-line options in `args`.
    pub fn load(
        args: &ServerArgs,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut layers = Layers::default();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            layers.file(&text, path)?;
        }
        layers.env(env)?;
        layers.cli(args);
        layers.finish()
    }

    /// A configuration from TOML text alone (no environment), e.g. for tests.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut layers = Layers::default();
        layers.file(text, Path::new("<inline>"))?;
        layers.finish()
    }

    /// The defaults.
    pub fn defaults() -> Config {
        Layers::default()
            .finish()
            .unwrap_or_else(|e| unreachable_default(&e))
    }

    /// Where `key` came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The directory of the built-in PKI: `<data_dir>/pki`.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// Scratch space for uploads: `<data_dir>/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}

#[cold]
fn unreachable_default(e: &ConfigError) -> Config {
    // The defaults are checked by a unit test; this only keeps `defaults()` panic-free.
    tracing::error!("built-in defaults do not validate: {e}");
    Config {
        role: ProcessRole::All,
        listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
        data_dir: PathBuf::from("dozor-data"),
        database_url: "sqlite://dozor-data/dozor.db".into(),
        bus: BusConfig::Memory,
        queue: QueueConfig {
            name: "dozor".into(),
            consumer: None,
            redelivery: Duration::from_secs(30),
        },
        workers: 1,
        rules_dirs: Vec::new(),
        tls: TlsConfig {
            enabled: true,
            hostnames: Vec::new(),
            cert_file: None,
            key_file: None,
            server_cert_days: 397,
        },
        limits: Limits {
            max_body_bytes: 16 << 20,
            max_evtx_bytes: 256 << 20,
            max_batch_events: 10_000,
            queue_capacity: 100_000,
            queue_bytes: 192 << 20,
            ingest_parse_bytes: 16 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            max_connections: 4096,
            max_connections_per_address: 256,
            evtx_scratch_bytes: 1 << 30,
        },
        retention_days: 30,
        search_timeout: Duration::from_secs(30),
        sqlite_writer_cache: 16 << 20,
        sqlite_reader_cache: 8 << 20,
        alert_aggregation_window: Duration::from_secs(300),
        geoip: GeoIpConfig::default(),
        agents: AgentsConfig::default(),
        scan: ScanConfig::defaults_for(Path::new("dozor-data")),
        response: ResponseConfig::defaults_for(Path::new("dozor-data")),
        intel: IntelConfig::defaults_for(Path::new("dozor-data")),
        vulns: crate::vulns::VulnConfig::default(),
        anomaly: crate::anomaly::AnomalyConfig::defaults_for(Path::new("dozor-data")),
        notify: NotifyConfig::default(),
        origins: BTreeMap::new(),
    }
}

/// Command-line options of `dozor server`; the binary flattens this into its own parser.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Configuration file (TOML). Environment variables and options override it.
    #[arg(long, short = 'c', env = "DOZOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What this process runs: all, ingest, worker or api.
    #[arg(long, value_enum, value_name = "ROLE")]
    pub role: Option<ProcessRole>,
    /// Address to listen on, e.g. 0.0.0.0:8443.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory (database, PKI, scratch files).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS. Anyone on the network can then read and forge
    /// traffic, tokens included: only for a loopback address or behind a TLS proxy.
    #[arg(long)]
    pub insecure_plain_http: bool,
    /// Pipeline worker tasks in this process (roles all and worker).
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// Consumer name on a Redis/NATS bus; keep it stable per worker process so a restarted
    /// worker resumes its own pending messages.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Name of the queue on a Redis/NATS bus.
    #[arg(long, value_name = "NAME")]
    pub bus_name: Option<String>,
    /// Seconds after which a message taken by a worker that died is handed to another.
    #[arg(long, value_name = "SECS")]
    pub bus_redelivery_secs: Option<u64>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    Cli(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Cli(flag) => write!(f, "command-line option {flag}"),
        }
    }
}

/// A configuration error. Every variant says which key and which source are at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{key} (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
}

impl ConfigError {
    /// The key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
    /// The source at fault, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::Invalid { origin, .. } => Some(origin),
            _ => None,
        }
    }
}

/// How a key's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Integer,
    /// Bytes: an integer or a string with a unit (`16MiB`, `512KiB`, `1GB`).
    Size,
    /// A duration: an integer number of seconds or a string (`90s`, `5m`, `2h`, `1d`).
    Duration,
    Path,
    /// A list: a TOML array, or in the environment a comma-separated string (paths are
    /// separated like `PATH`: `:` on Unix, `;` on Windows).
    TextList,
    PathList,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    /// Dotted TOML key (`limits.max_body_bytes` is `max_body_bytes` in `[limits]`).
    pub key: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    pub kind: Kind,
    /// The default as it would be written in the file (empty: unset).
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every configuration key.
pub const KEYS: &[KeyDef] = &[
    KeyDef {
        key: "role",
        env: "DOZOR_ROLE",
        kind: Kind::Text,
        default: "\"all\"",
        doc: "What this process runs: all (everything in one process), ingest, worker or api. Split roles need a shared bus (redis:// or nats://) and database.",
    },
    KeyDef {
        key: "listen",
        env: "DOZOR_LISTEN",
        kind: Kind::Text,
        default: "\"0.0.0.0:8443\"",
        doc: "Address and port of the HTTPS listener (IP:PORT; [::]:8443 for IPv6).",
    },
    KeyDef {
        key: "data_dir",
        env: "DOZOR_DATA_DIR",
        kind: Kind::Path,
        default: "\"dozor-data\"",
        doc: "Data directory: the SQLite database, the built-in PKI (pki/) and upload scratch files (tmp/). Made mode 0700 on every start (the database files 0600).",
    },
    KeyDef {
        key: "database_url",
        env: "DOZOR_DATABASE_URL",
        kind: Kind::Text,
        default: "",
        doc: "sqlite://PATH or postgres://USER@HOST/DB. Unset: sqlite://<data_dir>/dozor.db.",
    },
    KeyDef {
        key: "bus",
        env: "DOZOR_BUS",
        kind: Kind::Text,
        default: "\"memory\"",
        doc: "Event queue: memory (in-process, role all only), redis://HOST:PORT (Redis Streams) or nats://HOST:PORT (NATS JetStream).",
    },
    KeyDef {
        key: "rules_dirs",
        env: "DOZOR_RULES_DIRS",
        kind: Kind::PathList,
        default: "[]",
        doc: "Directories of Sigma rules (searched recursively for .yml/.yaml; each must exist). Empty: no rules are loaded — events are stored and searchable but nothing is detected, and the server says so at start.",
    },
    KeyDef {
        key: "workers",
        env: "DOZOR_WORKERS",
        kind: Kind::Integer,
        default: "1",
        doc: "Pipeline worker tasks in this process (roles all and worker). On Redis/NATS each is a consumer of its own named <queue.consumer>-N.",
    },
    KeyDef {
        key: "queue.name",
        env: "DOZOR_BUS_NAME",
        kind: Kind::Text,
        default: "\"dozor\"",
        doc: "Name of the queue on a Redis/NATS bus: stream, group, subject and durable consumer are derived from it, so several installations can share one Redis or NATS.",
    },
    KeyDef {
        key: "queue.consumer",
        env: "DOZOR_CONSUMER",
        kind: Kind::Text,
        default: "",
        doc: "This worker process's consumer name on a Redis/NATS bus; keep it stable so a restarted worker resumes its own pending messages. Unset: <hostname>-worker.",
    },
    KeyDef {
        key: "queue.redelivery",
        env: "DOZOR_BUS_REDELIVERY_SECS",
        kind: Kind::Duration,
        default: "\"30s\"",
        doc: "A message taken by a worker that died (not acked this long) is handed to another worker.",
    },
    KeyDef {
        key: "tls.enabled",
        env: "DOZOR_TLS",
        kind: Kind::Bool,
        default: "true",
        doc: "Serve HTTPS with a certificate from the built-in CA. false (DOZOR_TLS=off, or --insecure-plain-http) serves plain HTTP and logs a warning.",
    },
    KeyDef {
        key: "tls.hostnames",
        env: "DOZOR_TLS_HOSTNAMES",
        kind: Kind::TextList,
        default: "[]",
        doc: "Extra DNS names and IP addresses in the server certificate; localhost, 127.0.0.1 and ::1 are always in it.",
    },
    KeyDef {
        key: "tls.cert_file",
        env: "DOZOR_TLS_CERT_FILE",
        kind: Kind::Path,
        default: "",
        doc: "Serve this PEM certificate chain instead of one issued by the built-in CA (set tls.key_file too).",
    },
    KeyDef {
        key: "tls.key_file",
        env: "DOZOR_TLS_KEY_FILE",
        kind: Kind::Path,
        default: "",
        doc: "The PEM private key of tls.cert_file.",
    },
    KeyDef {
        key: "tls.server_cert_days",
        env: "DOZOR_TLS_SERVER_CERT_DAYS",
        kind: Kind::Integer,
        default: "397",
        doc: "Validity in days of server certificates issued by the built-in CA; reissued at start when fewer than 30 days are left or the hostnames changed.",
    },
    KeyDef {
        key: "limits.max_body_bytes",
        env: "DOZOR_MAX_BODY_BYTES",
        kind: Kind::Size,
        default: "\"16MiB\"",
        doc: "Largest ingest request body, as sent and after decompression (413 beyond it).",
    },
    KeyDef {
        key: "limits.max_evtx_bytes",
        env: "DOZOR_MAX_EVTX_BYTES",
        kind: Kind::Size,
        default: "\"256MiB\"",
        doc: "Largest EVTX / event XML upload, as sent and after decompression (413 beyond it). Uploads are spooled to <data_dir>/tmp, not held in memory.",
    },
    KeyDef {
        key: "limits.max_batch_events",
        env: "DOZOR_MAX_BATCH_EVENTS",
        kind: Kind::Integer,
        default: "10000",
        doc: "Most events in one ingest batch (413 beyond it).",
    },
    KeyDef {
        key: "limits.queue_capacity",
        env: "DOZOR_QUEUE_CAPACITY",
        kind: Kind::Integer,
        default: "100000",
        doc: "Events the queue holds before ingest answers 503 with Retry-After. At least limits.max_batch_events. The in-process queue and Redis count each batch's events exactly; NATS JetStream cannot count events, so there it bounds messages.",
    },
    KeyDef {
        key: "limits.queue_bytes",
        env: "DOZOR_QUEUE_BYTES",
        kind: Kind::Size,
        default: "\"192MiB\"",
        doc: "Bytes of event documents the queue holds before ingest answers 503 with Retry-After, whichever of this and limits.queue_capacity is reached first: the memory the in-process queue may take (documents as JSON, ~1.5 KiB per Windows event), and the NATS stream's size. At least 2 × limits.max_body_bytes, so a full batch always fits. Redis is bounded by limits.queue_capacity alone.",
    },
    KeyDef {
        key: "limits.ingest_parse_bytes",
        env: "DOZOR_INGEST_PARSE_BYTES",
        kind: Kind::Size,
        default: "\"16MiB\"",
        doc: "Bytes of ingest bodies parsed at once (parsed events take several times their size in memory); further requests wait their turn. A body larger than this is parsed alone.",
    },
    KeyDef {
        key: "limits.header_timeout",
        env: "DOZOR_HEADER_TIMEOUT",
        kind: Kind::Duration,
        default: "\"30s\"",
        doc: "Time a client has to send a request's headers (HTTP/1; also an idle keep-alive connection's next request); then the connection is closed.",
    },
    KeyDef {
        key: "limits.body_timeout",
        env: "DOZOR_BODY_TIMEOUT",
        kind: Kind::Duration,
        default: "\"30s\"",
        doc: "Time a client has to send a request body; a longer body must keep arriving at limits.body_min_rate on average, or the request is cut off (408 if it can still be answered).",
    },
    KeyDef {
        key: "limits.body_min_rate",
        env: "DOZOR_BODY_MIN_RATE",
        kind: Kind::Size,
        default: "\"1KiB\"",
        doc: "Bytes per second a request body must average after limits.body_timeout (a body of N bytes has limits.body_timeout + N / rate seconds).",
    },
    KeyDef {
        key: "limits.max_connections",
        env: "DOZOR_MAX_CONNECTIONS",
        kind: Kind::Integer,
        default: "4096",
        doc: "Connections open at once; a connection beyond it is closed as soon as it is accepted. Keep it below the process's open-file limit.",
    },
    KeyDef {
        key: "limits.max_connections_per_address",
        env: "DOZOR_MAX_CONNECTIONS_PER_ADDRESS",
        kind: Kind::Integer,
        default: "256",
        doc: "Connections open at once from one IP address (agents behind one NAT address share it); beyond it new connections from that address are closed at once.",
    },
    KeyDef {
        key: "limits.evtx_scratch_bytes",
        env: "DOZOR_EVTX_SCRATCH_BYTES",
        kind: Kind::Size,
        default: "\"1GiB\"",
        doc: "Disk space EVTX / XML uploads under way may take in <data_dir>/tmp (each reserves its Content-Length, or limits.max_evtx_bytes); beyond it uploads are answered 507 (quota-exceeded). At least limits.max_evtx_bytes.",
    },
    KeyDef {
        key: "storage.retention_days",
        env: "DOZOR_RETENTION_DAYS",
        kind: Kind::Integer,
        default: "30",
        doc: "Days events are kept before they are deleted (alerts are kept).",
    },
    KeyDef {
        key: "storage.search_timeout",
        env: "DOZOR_SEARCH_TIMEOUT",
        kind: Kind::Duration,
        default: "\"30s\"",
        doc: "Event searches and histograms running longer are cancelled and answered 503 (search-timeout). Token and session checks have connections of their own, so searches never hold up sign-ins.",
    },
    KeyDef {
        key: "storage.sqlite_writer_cache",
        env: "DOZOR_SQLITE_WRITER_CACHE",
        kind: Kind::Size,
        default: "\"16MiB\"",
        doc: "SQLite only: the page cache of the one writing connection (event batches, imports). Larger transactions spill to the WAL rather than fail; more cache is a little more speed for that much more memory.",
    },
    KeyDef {
        key: "storage.sqlite_reader_cache",
        env: "DOZOR_SQLITE_READER_CACHE",
        kind: Kind::Size,
        default: "\"8MiB\"",
        doc: "SQLite only: the page cache of each of the 4 reading connections (searches, pages). Pages they miss come from the operating system's file cache.",
    },
    KeyDef {
        key: "alerts.aggregation_window",
        env: "DOZOR_ALERT_AGGREGATION_WINDOW",
        kind: Kind::Duration,
        default: "\"5m\"",
        doc: "Matches of one rule on one host within this window are grouped into one alert (seconds, or 90s, 5m, 2h, 1d).",
    },
    KeyDef {
        key: "agents.heartbeat_interval",
        env: "DOZOR_AGENT_HEARTBEAT_INTERVAL",
        kind: Kind::Duration,
        default: "\"30s\"",
        doc: "How often agents send a heartbeat with their health and resource usage (agents learn it from the server).",
    },
    KeyDef {
        key: "agents.degraded_after",
        env: "DOZOR_AGENT_DEGRADED_AFTER",
        kind: Kind::Duration,
        default: "\"90s\"",
        doc: "An agent silent this long (or reporting a problem) is shown as degraded.",
    },
    KeyDef {
        key: "agents.offline_after",
        env: "DOZOR_AGENT_OFFLINE_AFTER",
        kind: Kind::Duration,
        default: "\"5m\"",
        doc: "An agent silent this long is offline and an alert (rule dozor-agent-offline) is raised once; it is back online at its next heartbeat.",
    },
    KeyDef {
        key: "agents.certificate_days",
        env: "DOZOR_AGENT_CERTIFICATE_DAYS",
        kind: Kind::Integer,
        default: "365",
        doc: "Validity in days of the client certificates issued to agents at enrollment (agents renew them with `dozor-agent enroll --renew`).",
    },
    KeyDef {
        key: "agents.command_redeliver_after",
        env: "DOZOR_AGENT_COMMAND_REDELIVER_AFTER",
        kind: Kind::Duration,
        default: "\"10m\"",
        doc: "A command (such as an on-demand scan) handed to an agent in a heartbeat answer that has no result this long later is handed out again.",
    },
    KeyDef {
        key: "agents.command_max_attempts",
        env: "DOZOR_AGENT_COMMAND_MAX_ATTEMPTS",
        kind: Kind::Integer,
        default: "3",
        doc: "A command handed to an agent this many times without a result expires.",
    },
    KeyDef {
        key: "geoip.city_db",
        env: "DOZOR_GEOIP_CITY_DB",
        kind: Kind::Path,
        default: "",
        doc: "GeoLite2/GeoIP2 City (or Country) .mmdb file for source/destination geo enrichment; unset: no geo enrichment.",
    },
    KeyDef {
        key: "geoip.asn_db",
        env: "DOZOR_GEOIP_ASN_DB",
        kind: Kind::Path,
        default: "",
        doc: "GeoLite2/GeoIP2 ASN .mmdb file for autonomous-system enrichment; unset: none.",
    },
    KeyDef {
        key: "scan.yara_rules_dir",
        env: "DOZOR_SCAN_YARA_RULES_DIR",
        kind: Kind::Path,
        default: "",
        doc: "YARA rule files (*.yar, *.yara) managed through /api/v1/yara/rules, used for uploaded samples and served to agents. Unset: <data_dir>/yara (created at start).",
    },
    KeyDef {
        key: "scan.clamd",
        env: "DOZOR_SCAN_CLAMD",
        kind: Kind::Text,
        default: "",
        doc: "clamd to scan samples with: unix:/run/clamav/clamd.ctl or tcp:HOST:PORT. Unset: no ClamAV. When clamd is down, scans answer without it and /readyz reports it degraded.",
    },
    KeyDef {
        key: "scan.known_bad",
        env: "DOZOR_SCAN_KNOWN_BAD",
        kind: Kind::PathList,
        default: "[]",
        doc: "Known-bad hash list files (SHA-256, SHA-1 or MD5 per line, optional name after it); a match is a critical finding. Each must exist.",
    },
    KeyDef {
        key: "scan.known_good",
        env: "DOZOR_SCAN_KNOWN_GOOD",
        kind: Kind::PathList,
        default: "[]",
        doc: "Known-good hash list files; a sample on it is not given to YARA or clamd. Each must exist.",
    },
    KeyDef {
        key: "scan.samples",
        env: "DOZOR_SCAN_SAMPLES",
        kind: Kind::Bool,
        default: "true",
        doc: "Accept file samples from agents (POST /api/v1/samples): stored by SHA-256, scanned, findings raise alerts.",
    },
    KeyDef {
        key: "scan.max_sample_bytes",
        env: "DOZOR_SCAN_MAX_SAMPLE_BYTES",
        kind: Kind::Size,
        default: "\"32MiB\"",
        doc: "Largest sample accepted, as sent and decompressed (413 beyond it).",
    },
    KeyDef {
        key: "scan.samples_dir",
        env: "DOZOR_SCAN_SAMPLES_DIR",
        kind: Kind::Path,
        default: "",
        doc: "Where samples are kept, named by SHA-256, mode 0600 (never served back). Unset: <data_dir>/samples (created at start with mode 0700).",
    },
    KeyDef {
        key: "scan.samples_quota",
        env: "DOZOR_SCAN_SAMPLES_QUOTA",
        kind: Kind::Size,
        default: "\"10GiB\"",
        doc: "Disk space the samples may take; an upload that could go beyond it is answered 507 (quota-exceeded) until old samples are deleted.",
    },
    KeyDef {
        key: "scan.samples_retention",
        env: "DOZOR_SCAN_SAMPLES_RETENTION",
        kind: Kind::Duration,
        default: "\"90d\"",
        doc: "Sample files older than this are deleted (checked at start and every 10 minutes); their records and findings stay.",
    },
    KeyDef {
        key: "intel.warninglists_dir",
        env: "DOZOR_INTEL_WARNINGLISTS_DIR",
        kind: Kind::Path,
        default: "",
        doc: "MISP warninglists (a checkout of MISP/misp-warninglists or a copy of its lists/ directory), loaded at start: an indicator on a list is flagged. Unset: no warninglists.",
    },
    KeyDef {
        key: "intel.feeds_dir",
        env: "DOZOR_INTEL_FEEDS_DIR",
        kind: Kind::Path,
        default: "",
        doc: "Intelligence sources read from local files (MISP feeds, STIX bundles, lists copied by hand on air-gapped sites) must lie below this directory. Unset: <data_dir>/intel-feeds.",
    },
    KeyDef {
        key: "intel.suppress_warninglisted",
        env: "DOZOR_INTEL_SUPPRESS_WARNINGLISTED",
        kind: Kind::Bool,
        default: "true",
        doc: "A warninglisted indicator (a public resolver, a CDN) still matches and enriches events but raises no alert.",
    },
    KeyDef {
        key: "intel.retro_hunt_days",
        env: "DOZOR_INTEL_RETRO_HUNT_DAYS",
        kind: Kind::Integer,
        default: "30",
        doc: "After a sync, new indicators are looked for in stored events of this many past days (event time); 0 turns retro-hunts off.",
    },
    KeyDef {
        key: "intel.retro_hunt_max_events",
        env: "DOZOR_INTEL_RETRO_HUNT_MAX_EVENTS",
        kind: Kind::Integer,
        default: "5000000",
        doc: "At most this many stored events are read by one retro-hunt (newest first).",
    },
    KeyDef {
        key: "intel.sightings",
        env: "DOZOR_INTEL_SIGHTINGS",
        kind: Kind::Bool,
        default: "true",
        doc: "Matches of indicators from a MISP server are sent back to it as sightings (sightings/add).",
    },
    KeyDef {
        key: "intel.sighting_retry",
        env: "DOZOR_INTEL_SIGHTING_RETRY",
        kind: Kind::Duration,
        default: "\"10m\"",
        doc: "How often sightings that could not be sent (MISP unreachable or refusing) are tried again; a sighting is given up 7 days after its match.",
    },
    KeyDef {
        key: "intel.refresh",
        env: "DOZOR_INTEL_REFRESH",
        kind: Kind::Duration,
        default: "\"5s\"",
        doc: "How often pipeline workers check the store for changed or expired indicators.",
    },
    KeyDef {
        key: "vulns.advisories",
        env: "DOZOR_VULNS_ADVISORIES",
        kind: Kind::Path,
        default: "",
        doc: "OSV advisories (a .json file, a directory of them, or an OSV all.zip copied by hand on air-gapped sites), loaded at start and on POST /api/v1/vulns/advisories/reload: agents' software inventories are matched against them. Unset: inventories are stored, not matched.",
    },
    KeyDef {
        key: "vulns.alert_level",
        env: "DOZOR_VULNS_ALERT_LEVEL",
        kind: Kind::Text,
        default: "\"high\"",
        doc: "A new or reopened vulnerability result at this level or worse raises an alert: critical, high, medium, low, or none.",
    },
    KeyDef {
        key: "anomaly.enabled",
        env: "DOZOR_ANOMALY_ENABLED",
        kind: Kind::Bool,
        default: "true",
        doc: "Behavioural analytics: per-entity models learn the stored events and score what arrives (anomaly events, and alerts at anomaly.alert_score).",
    },
    KeyDef {
        key: "anomaly.interval",
        env: "DOZOR_ANOMALY_INTERVAL",
        kind: Kind::Duration,
        default: "\"1m\"",
        doc: "How often the events stored since the last run are scored.",
    },
    KeyDef {
        key: "anomaly.lookback_days",
        env: "DOZOR_ANOMALY_LOOKBACK_DAYS",
        kind: Kind::Integer,
        default: "14",
        doc: "Days of stored events (event time) a training learns.",
    },
    KeyDef {
        key: "anomaly.retrain",
        env: "DOZOR_ANOMALY_RETRAIN",
        kind: Kind::Duration,
        default: "\"24h\"",
        doc: "How often the models are trained again from the look-back window, so behaviour that stopped ages out of the baseline (also on demand: POST /api/v1/anomaly/train).",
    },
    KeyDef {
        key: "anomaly.alert_score",
        env: "DOZOR_ANOMALY_ALERT_SCORE",
        kind: Kind::Text,
        default: "\"0.95\"",
        doc: "Findings scoring this (0 to 1) or more raise an alert; every finding is already past its model's threshold (0.95), so the default alerts on each. none: anomaly events only.",
    },
    KeyDef {
        key: "anomaly.cpu_percent",
        env: "DOZOR_ANOMALY_CPU_PERCENT",
        kind: Kind::Integer,
        default: "20",
        doc: "The share of one core (1-100) the scoring job uses to work off a backlog: it pauses between pages so ingest at full speed keeps its throughput; 100: no pauses.",
    },
    KeyDef {
        key: "anomaly.alert_level",
        env: "DOZOR_ANOMALY_ALERT_LEVEL",
        kind: Kind::Text,
        default: "\"medium\"",
        doc: "The level of anomaly alerts: informational, low, medium, high or critical.",
    },
    KeyDef {
        key: "response.playbooks_dir",
        env: "DOZOR_RESPONSE_PLAYBOOKS_DIR",
        kind: Kind::Path,
        default: "",
        doc: "Playbook files (*.yml, *.yaml) loaded at start (shown read-only in the API; edit the file). Unset: <data_dir>/playbooks, created with the base playbooks notify-operator and quarantine-host.",
    },
    KeyDef {
        key: "response.approval_timeout",
        env: "DOZOR_RESPONSE_APPROVAL_TIMEOUT",
        kind: Kind::Duration,
        default: "\"1h\"",
        doc: "An approval request nobody decided this long expires: the waiting step fails (its rescue runs), a direct command is not sent.",
    },
    KeyDef {
        key: "response.other_approver",
        env: "DOZOR_RESPONSE_OTHER_APPROVER",
        kind: Kind::Bool,
        default: "false",
        doc: "Four eyes: the person who asked for a destructive action may not approve it.",
    },
    KeyDef {
        key: "response.direct_commands_need_approval",
        env: "DOZOR_RESPONSE_DIRECT_COMMANDS_NEED_APPROVAL",
        kind: Kind::Bool,
        default: "true",
        doc: "Destructive agent commands sent directly (isolate, kill, quarantine, block, delete) wait for an approval like playbook steps do.",
    },
    KeyDef {
        key: "response.public_url",
        env: "DOZOR_RESPONSE_PUBLIC_URL",
        kind: Kind::Text,
        default: "",
        doc: "The dashboard's address as operators reach it (https://dozor.example.org), for links in notifications. Unset: the address the server listens on.",
    },
    KeyDef {
        key: "response.command_timeout",
        env: "DOZOR_RESPONSE_COMMAND_TIMEOUT",
        kind: Kind::Duration,
        default: "\"5m\"",
        doc: "A playbook step that sent an agent a command fails when no result came back this long.",
    },
    KeyDef {
        key: "response.approvers_email",
        env: "DOZOR_RESPONSE_APPROVERS_EMAIL",
        kind: Kind::TextList,
        default: "[]",
        doc: "E-mail addresses told about each new approval request (through notify.smtp_*), with a link to the approvals inbox.",
    },
    KeyDef {
        key: "response.approvers_telegram_chat",
        env: "DOZOR_RESPONSE_APPROVERS_TELEGRAM_CHAT",
        kind: Kind::Text,
        default: "",
        doc: "Telegram chat told about each new approval request (through notify.telegram_*).",
    },
    KeyDef {
        key: "response.approvers_webhook",
        env: "DOZOR_RESPONSE_APPROVERS_WEBHOOK",
        kind: Kind::Text,
        default: "",
        doc: "Webhook URL told about each new approval request (signed with notify.webhook_secret).",
    },
    KeyDef {
        key: "notify.smtp_server",
        env: "DOZOR_NOTIFY_SMTP_SERVER",
        kind: Kind::Text,
        default: "",
        doc: "SMTP relay HOST:PORT for notify.email. Unset: e-mail steps fail with a clear reason.",
    },
    KeyDef {
        key: "notify.smtp_security",
        env: "DOZOR_NOTIFY_SMTP_SECURITY",
        kind: Kind::Text,
        default: "\"starttls\"",
        doc: "starttls (required, default), tls (implicit TLS, port 465) or plain-insecure (no encryption: a relay on the same host only).",
    },
    KeyDef {
        key: "notify.smtp_username",
        env: "DOZOR_NOTIFY_SMTP_USERNAME",
        kind: Kind::Text,
        default: "",
        doc: "SMTP AUTH user; unset: no authentication.",
    },
    KeyDef {
        key: "notify.smtp_password",
        env: "DOZOR_NOTIFY_SMTP_PASSWORD",
        kind: Kind::Text,
        default: "",
        doc: "SMTP AUTH password (prefer the environment variable). Never written to runs or logs.",
    },
    KeyDef {
        key: "notify.smtp_from",
        env: "DOZOR_NOTIFY_SMTP_FROM",
        kind: Kind::Text,
        default: "",
        doc: "The From address of notification e-mails (e.g. dozor@example.org).",
    },
    KeyDef {
        key: "notify.ca_file",
        env: "DOZOR_NOTIFY_CA_FILE",
        kind: Kind::Path,
        default: "",
        doc: "CA certificates (PEM) trusted for the SMTP relay, webhooks and the Telegram API, besides the system's.",
    },
    KeyDef {
        key: "notify.telegram_api_url",
        env: "DOZOR_NOTIFY_TELEGRAM_API_URL",
        kind: Kind::Text,
        default: "\"https://api.telegram.org\"",
        doc: "Telegram Bot API base URL: an on-premises proxy where the Internet is out of reach.",
    },
    KeyDef {
        key: "notify.telegram_token",
        env: "DOZOR_NOTIFY_TELEGRAM_TOKEN",
        kind: Kind::Text,
        default: "",
        doc: "The bot token for notify.telegram (prefer the environment variable). Never written to runs or logs.",
    },
    KeyDef {
        key: "notify.webhook_secret",
        env: "DOZOR_NOTIFY_WEBHOOK_SECRET",
        kind: Kind::Text,
        default: "",
        doc: "Key of the HMAC-SHA256 signature (X-Dozor-Signature) on webhook notifications; unset: unsigned.",
    },
    KeyDef {
        key: "notify.proxy",
        env: "DOZOR_NOTIFY_PROXY",
        kind: Kind::Text,
        default: "",
        doc: "HTTP(S) proxy for webhooks and Telegram (http://HOST:PORT); unset: direct.",
    },
];

/// An annotated config file with every key at its default (what `dozor server
/// --print-config` prints).
pub fn reference_toml() -> String {
    let mut out = String::from(
        "# Dozor server configuration. Every key is optional; shown here with its default.\n\
         # Each key can be overridden by the environment variable named above it.\n",
    );
    let mut section = "";
    for def in KEYS {
        let (table, name) = match def.key.split_once('.') {
            Some((table, name)) => (table, name),
            None => ("", def.key),
        };
        if table != section {
            out.push_str(&format!("\n[{table}]\n"));
            section = table;
        } else {
            out.push('\n');
        }
        for line in wrap(def.doc, 94) {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!("# env: {}\n", def.env));
        if def.default.is_empty() {
            out.push_str(&format!("# {name} = ...\n"));
        } else {
            out.push_str(&format!("{name} = {}\n", def.default));
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A raw value before it is parsed by its key's kind.
#[derive(Debug, Clone)]
enum Raw {
    Toml(toml::Value),
    Text(String),
}

#[derive(Default)]
struct Layers {
    values: BTreeMap<&'static str, (Raw, Origin)>,
}

fn key_def(key: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|d| d.key == key)
}

impl Layers {
    fn file(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
        let mut flat = Vec::new();
        flatten_table(&table, "", &mut flat);
        for (key, value) in flat {
            let Some(def) = key_def(&key) else {
                return Err(ConfigError::Invalid {
                    message: match suggest(&key) {
                        Some(near) => format!("unknown key (did you mean `{near}`?)"),
                        None => "unknown key".into(),
                    },
                    key,
                    origin: Origin::File(path.to_owned()),
                });
            };
            self.values
                .insert(def.key, (Raw::Toml(value), Origin::File(path.to_owned())));
        }
        Ok(())
    }

    fn env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (name, value) in env {
            if let Some(def) = KEYS.iter().find(|d| d.env == name) {
                self.values
                    .insert(def.key, (Raw::Text(value), Origin::Env(def.env)));
            }
        }
        Ok(())
    }

    fn cli(&mut self, args: &ServerArgs) {
        if let Some(role) = args.role {
            self.values.insert(
                "role",
                (Raw::Text(role.as_str().into()), Origin::Cli("--role")),
            );
        }
        if let Some(listen) = &args.listen {
            self.values.insert(
                "listen",
                (Raw::Text(listen.clone()), Origin::Cli("--listen")),
            );
        }
        if let Some(dir) = &args.data_dir {
            self.values.insert(
                "data_dir",
                (
                    Raw::Text(dir.to_string_lossy().into_owned()),
                    Origin::Cli("--data-dir"),
                ),
            );
        }
        if let Some(n) = args.workers {
            self.values.insert(
                "workers",
                (Raw::Text(n.to_string()), Origin::Cli("--workers")),
            );
        }
        if let Some(name) = &args.consumer {
            self.values.insert(
                "queue.consumer",
                (Raw::Text(name.clone()), Origin::Cli("--consumer")),
            );
        }
        if let Some(name) = &args.bus_name {
            self.values.insert(
                "queue.name",
                (Raw::Text(name.clone()), Origin::Cli("--bus-name")),
            );
        }
        if let Some(secs) = args.bus_redelivery_secs {
            self.values.insert(
                "queue.redelivery",
                (
                    Raw::Text(secs.to_string()),
                    Origin::Cli("--bus-redelivery-secs"),
                ),
            );
        }
        if args.insecure_plain_http {
            self.values.insert(
                "tls.enabled",
                (
                    Raw::Text("off".into()),
                    Origin::Cli("--insecure-plain-http"),
                ),
            );
        }
    }

    fn finish(self) -> Result<Config, ConfigError> {
        let p = Parsed {
            values: self.values,
        };
        let role = match p.text("role")?.as_str() {
            "all" => ProcessRole::All,
            "ingest" => ProcessRole::Ingest,
            "worker" => ProcessRole::Worker,
            "api" => ProcessRole::Api,
            other => {
                return Err(p.invalid(
                    "role",
                    format!("expected all, ingest, worker or api, got {other:?}"),
                ));
            }
        };
        let listen_text = p.text("listen")?;
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            p.invalid(
                "listen",
                format!("expected IP:PORT such as 0.0.0.0:8443 or [::]:8443, got {listen_text:?}"),
            )
        })?;
        let data_dir = p.path("data_dir")?.unwrap_or_default();
        if data_dir.as_os_str().is_empty() {
            return Err(p.invalid("data_dir", "must not be empty".into()));
        }
        let database_url = match p.opt_text("database_url")? {
            Some(url) => {
                let url = url.trim().to_owned();
                let ok = ["sqlite:", "postgres://", "postgresql://"]
                    .iter()
                    .any(|s| url.starts_with(s));
                if !ok {
                    return Err(p.invalid(
                        "database_url",
                        format!("expected sqlite://PATH or postgres://..., got {url:?}"),
                    ));
                }
                url
            }
            None => format!("sqlite://{}", data_dir.join("dozor.db").display()),
        };
        let bus_text = p.text("bus")?;
        let bus_text = bus_text.trim();
        let bus = if bus_text == "memory" {
            BusConfig::Memory
        } else if bus_text.starts_with("redis://") || bus_text.starts_with("rediss://") {
            BusConfig::Redis(bus_text.to_owned())
        } else if bus_text.starts_with("nats://") || bus_text.starts_with("tls://") {
            BusConfig::Nats(bus_text.to_owned())
        } else {
            return Err(p.invalid(
                "bus",
                format!("expected memory, redis://HOST:PORT or nats://HOST:PORT, got {bus_text:?}"),
            ));
        };
        if bus == BusConfig::Memory && role != ProcessRole::All {
            let key = if p.is_set("bus") { "bus" } else { "role" };
            return Err(p.invalid(
                key,
                format!(
                    "role {role} runs in a separate process, so the in-process queue (bus = \"memory\") can't connect it to the others: set bus to redis://... or nats://..."
                ),
            ));
        }
        let workers = p.int("workers", 1, 64)? as usize;
        let queue_name = p.text("queue.name")?.trim().to_owned();
        if queue_name.is_empty()
            || queue_name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(p.invalid(
                "queue.name",
                format!("must be a non-empty name without spaces, got {queue_name:?}"),
            ));
        }
        let consumer = p
            .opt_text("queue.consumer")?
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if let Some(c) = &consumer
            && c.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(p.invalid(
                "queue.consumer",
                format!("must not contain spaces, got {c:?}"),
            ));
        }
        let queue = QueueConfig {
            name: queue_name,
            consumer,
            redelivery: p.duration("queue.redelivery", 1, 24 * 3600)?,
        };
        let rules_dirs = p.path_list("rules_dirs")?;
        for dir in &rules_dirs {
            if !dir.is_dir() {
                return Err(p.invalid(
                    "rules_dirs",
                    format!("{} is not a directory", dir.display()),
                ));
            }
        }

        let enabled = p.bool("tls.enabled")?;
        let hostnames = p.text_list("tls.hostnames")?;
        for name in &hostnames {
            if !valid_hostname(name) {
                return Err(p.invalid(
                    "tls.hostnames",
                    format!("{name:?} is neither a DNS name nor an IP address"),
                ));
            }
        }
        let cert_file = p.path("tls.cert_file")?;
        let key_file = p.path("tls.key_file")?;
        match (&cert_file, &key_file) {
            (Some(_), None) => {
                return Err(p.invalid(
                    "tls.key_file",
                    "must be set when tls.cert_file is set".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(p.invalid(
                    "tls.cert_file",
                    "must be set when tls.key_file is set".into(),
                ));
            }
            _ => {}
        }
        for key in ["tls.cert_file", "tls.key_file"] {
            if let Some(path) = p.path(key)?
                && !path.is_file()
            {
                return Err(p.invalid(key, format!("{} is not a readable file", path.display())));
            }
        }
        let server_cert_days = p.int("tls.server_cert_days", 31, 3650)? as u32;

        let max_body_bytes = p.size("limits.max_body_bytes", 1 << 10, 1 << 30)?;
        let max_evtx_bytes = p.size("limits.max_evtx_bytes", 64 << 10, 16 << 30)?;
        let max_batch_events = p.int("limits.max_batch_events", 1, 1_000_000)? as usize;
        let queue_capacity = p.int("limits.queue_capacity", 1, 100_000_000)? as usize;
        if queue_capacity < max_batch_events {
            return Err(p.conflict(
                "limits.queue_capacity",
                "limits.max_batch_events",
                format!(
                    "limits.queue_capacity ({queue_capacity}) must be at least limits.max_batch_events ({max_batch_events}), or a full batch could never be queued"
                ),
            ));
        }
        let queue_bytes = p.size("limits.queue_bytes", 1 << 20, 1 << 40)?;
        if queue_bytes < 2 * max_body_bytes {
            return Err(p.conflict(
                "limits.queue_bytes",
                "limits.max_body_bytes",
                format!(
                    "limits.queue_bytes ({queue_bytes} bytes) must be at least twice limits.max_body_bytes ({max_body_bytes} bytes), or a full batch might never be queued"
                ),
            ));
        }
        let ingest_parse_bytes = p.size("limits.ingest_parse_bytes", 1 << 20, 16 << 30)?;
        let header_timeout = p.duration("limits.header_timeout", 1, 3600)?;
        let body_timeout = p.duration("limits.body_timeout", 1, 24 * 3600)?;
        let body_min_rate = p.size("limits.body_min_rate", 1, 1 << 30)?;
        let max_connections = p.int("limits.max_connections", 1, 1_000_000)? as usize;
        let max_connections_per_address =
            p.int("limits.max_connections_per_address", 1, 1_000_000)? as usize;
        let evtx_scratch_bytes = p.size("limits.evtx_scratch_bytes", 64 << 10, 1 << 50)?;
        if evtx_scratch_bytes < max_evtx_bytes {
            let key = if p.is_set("limits.evtx_scratch_bytes") {
                "limits.evtx_scratch_bytes"
            } else {
                "limits.max_evtx_bytes"
            };
            return Err(p.invalid(
                key,
                format!(
                    "limits.evtx_scratch_bytes ({evtx_scratch_bytes}) must be at least limits.max_evtx_bytes ({max_evtx_bytes}), or the largest upload could never be received"
                ),
            ));
        }
        let retention_days = p.int("storage.retention_days", 1, 36_500)? as u32;
        let search_timeout = p.duration("storage.search_timeout", 1, 3600)?;
        let sqlite_writer_cache = p.size("storage.sqlite_writer_cache", 1 << 20, 16 << 30)?;
        let sqlite_reader_cache = p.size("storage.sqlite_reader_cache", 1 << 20, 16 << 30)?;
        let alert_aggregation_window = p.duration("alerts.aggregation_window", 1, 7 * 24 * 3600)?;
        let agents = AgentsConfig {
            heartbeat_interval: p.duration("agents.heartbeat_interval", 1, 24 * 3600)?,
            degraded_after: p.duration("agents.degraded_after", 1, 30 * 24 * 3600)?,
            offline_after: p.duration("agents.offline_after", 1, 30 * 24 * 3600)?,
            certificate_days: p.int("agents.certificate_days", 1, 3650)? as u32,
            command_redeliver_after: p.duration(
                "agents.command_redeliver_after",
                1,
                7 * 24 * 3600,
            )?,
            command_max_attempts: p.int("agents.command_max_attempts", 1, 100)? as u32,
        };
        if agents.offline_after <= agents.degraded_after {
            return Err(p.invalid(
                "agents.offline_after",
                format!(
                    "agents.offline_after ({}s) must be longer than agents.degraded_after ({}s)",
                    agents.offline_after.as_secs(),
                    agents.degraded_after.as_secs()
                ),
            ));
        }
        let mut geoip = GeoIpConfig::default();
        for key in ["geoip.city_db", "geoip.asn_db"] {
            let path = p.path(key)?;
            if let Some(path) = &path
                && !path.is_file()
            {
                return Err(p.invalid(key, format!("{} is not a readable file", path.display())));
            }
            if key == "geoip.city_db" {
                geoip.city_db = path;
            } else {
                geoip.asn_db = path;
            }
        }
        let scan = parse_scan(&p, &data_dir)?;
        let response = parse_response(&p, &data_dir)?;
        let intel = parse_intel(&p, &data_dir)?;
        let vulns = parse_vulns(&p)?;
        let anomaly = parse_anomaly(&p, &data_dir)?;
        let notify = parse_notify(&p)?;
        let origins = p
            .values
            .iter()
            .map(|(k, (_, origin))| (*k, origin.clone()))
            .collect();
        Ok(Config {
            role,
            listen,
            data_dir,
            database_url,
            bus,
            queue,
            workers,
            rules_dirs,
            tls: TlsConfig {
                enabled,
                hostnames,
                cert_file,
                key_file,
                server_cert_days,
            },
            limits: Limits {
                max_body_bytes,
                max_evtx_bytes,
                max_batch_events,
                queue_capacity,
                queue_bytes,
                ingest_parse_bytes,
                header_timeout,
                body_timeout,
                body_min_rate,
                max_connections,
                max_connections_per_address,
                evtx_scratch_bytes,
            },
            retention_days,
            search_timeout,
            sqlite_writer_cache,
            sqlite_reader_cache,
            alert_aggregation_window,
            geoip,
            agents,
            scan,
            response,
            intel,
            vulns,
            anomaly,
            notify,
            origins,
        })
    }
}

/// The `[intel]` section.
fn parse_intel(p: &Parsed, data_dir: &Path) -> Result<IntelConfig, ConfigError> {
    let warninglists_dir = p.path("intel.warninglists_dir")?;
    if let Some(dir) = &warninglists_dir
        && !dir.is_dir()
    {
        return Err(p.invalid(
            "intel.warninglists_dir",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let feeds_dir = p
        .path("intel.feeds_dir")?
        .unwrap_or_else(|| IntelConfig::defaults_for(data_dir).feeds_dir);
    Ok(IntelConfig {
        warninglists_dir,
        feeds_dir,
        suppress_warninglisted: p.bool("intel.suppress_warninglisted")?,
        retro_hunt_days: p.int("intel.retro_hunt_days", 0, 3650)? as u32,
        retro_hunt_max_events: p.int("intel.retro_hunt_max_events", 1, 1_000_000_000)?,
        sightings: p.bool("intel.sightings")?,
        sighting_retry: p.duration("intel.sighting_retry", 1, 86_400)?,
        refresh: p.duration("intel.refresh", 1, 3600)?,
    })
}

/// The `[vulns]` section.
fn parse_vulns(p: &Parsed) -> Result<crate::vulns::VulnConfig, ConfigError> {
    let advisories = p.path("vulns.advisories")?;
    if let Some(path) = &advisories
        && !path.exists()
    {
        return Err(p.invalid(
            "vulns.advisories",
            format!("{} does not exist", path.display()),
        ));
    }
    let alert_level = p.text("vulns.alert_level")?;
    if !["critical", "high", "medium", "low", "none"].contains(&alert_level.as_str()) {
        return Err(p.invalid(
            "vulns.alert_level",
            format!("{alert_level:?}: one of critical, high, medium, low, none"),
        ));
    }
    Ok(crate::vulns::VulnConfig {
        advisories,
        alert_level,
    })
}

/// The `[anomaly]` section.
fn parse_anomaly(
    p: &Parsed,
    data_dir: &Path,
) -> Result<crate::anomaly::AnomalyConfig, ConfigError> {
    let alert_score = match p.text("anomaly.alert_score")?.trim() {
        "none" => None,
        text => match text.parse::<f64>() {
            Ok(score) if (0.0..=1.0).contains(&score) => Some(score),
            _ => {
                return Err(p.invalid(
                    "anomaly.alert_score",
                    format!("{text:?}: a score from 0 to 1, or none"),
                ));
            }
        },
    };
    let level = p.text("anomaly.alert_level")?;
    let alert_level = match level.as_str() {
        "informational" => dozor_model::Level::Informational,
        "low" => dozor_model::Level::Low,
        "medium" => dozor_model::Level::Medium,
        "high" => dozor_model::Level::High,
        "critical" => dozor_model::Level::Critical,
        _ => {
            return Err(p.invalid(
                "anomaly.alert_level",
                format!("{level:?}: one of informational, low, medium, high, critical"),
            ));
        }
    };
    Ok(crate::anomaly::AnomalyConfig {
        enabled: p.bool("anomaly.enabled")?,
        interval: p.duration("anomaly.interval", 1, 86_400)?,
        lookback_days: p.int("anomaly.lookback_days", 1, 365)? as u32,
        retrain: p.duration("anomaly.retrain", 60, 30 * 86_400)?,
        alert_score,
        alert_level,
        cpu_percent: p.int("anomaly.cpu_percent", 1, 100)? as u32,
        state_dir: data_dir.join("anomaly"),
    })
}

/// The `[response]` section.
fn parse_response(p: &Parsed, data_dir: &Path) -> Result<ResponseConfig, ConfigError> {
    let defaults = ResponseConfig::defaults_for(data_dir);
    let playbooks_dir = p
        .path("response.playbooks_dir")?
        .unwrap_or(defaults.playbooks_dir);
    if playbooks_dir.exists() && !playbooks_dir.is_dir() {
        return Err(p.invalid(
            "response.playbooks_dir",
            format!("{} is not a directory", playbooks_dir.display()),
        ));
    }
    let public_url = p
        .opt_text("response.public_url")?
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if !(public_url.is_empty()
        || public_url.starts_with("https://")
        || public_url.starts_with("http://"))
    {
        return Err(p.invalid(
            "response.public_url",
            format!("expected https://HOST[:PORT], got {public_url:?}"),
        ));
    }
    Ok(ResponseConfig {
        playbooks_dir,
        approval_timeout: p.duration("response.approval_timeout", 10, 30 * 24 * 3600)?,
        other_approver: p.bool("response.other_approver")?,
        direct_commands_need_approval: p.bool("response.direct_commands_need_approval")?,
        public_url,
        command_timeout: p.duration("response.command_timeout", 5, 24 * 3600)?,
        approvers_email: p
            .text_list("response.approvers_email")?
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        approvers_telegram_chat: p
            .opt_text("response.approvers_telegram_chat")?
            .map(|c| c.trim().to_owned())
            .unwrap_or_default(),
        approvers_webhook: {
            let url = p
                .opt_text("response.approvers_webhook")?
                .map(|u| u.trim().to_owned())
                .unwrap_or_default();
            if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                return Err(p.invalid(
                    "response.approvers_webhook",
                    format!("expected an http(s):// URL, got {url:?}"),
                ));
            }
            url
        },
    })
}

/// The `[notify]` section.
fn parse_notify(p: &Parsed) -> Result<NotifyConfig, ConfigError> {
    let text = |key: &str| -> Result<String, ConfigError> {
        Ok(p.opt_text(key)?
            .map(|v| v.trim().to_owned())
            .unwrap_or_default())
    };
    let smtp_server = text("notify.smtp_server")?;
    if !smtp_server.is_empty()
        && !smtp_server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        })
    {
        return Err(p.invalid(
            "notify.smtp_server",
            format!("expected HOST:PORT, got {smtp_server:?}"),
        ));
    }
    let smtp_security = text("notify.smtp_security")?;
    if !matches!(
        smtp_security.as_str(),
        "starttls" | "tls" | "plain-insecure"
    ) {
        return Err(p.invalid(
            "notify.smtp_security",
            format!("expected starttls, tls or plain-insecure, got {smtp_security:?}"),
        ));
    }
    let ca_file = p.path("notify.ca_file")?;
    if let Some(path) = &ca_file
        && !path.is_file()
    {
        return Err(p.invalid(
            "notify.ca_file",
            format!("{} is not a readable file", path.display()),
        ));
    }
    let telegram_api_url = text("notify.telegram_api_url")?;
    let proxy = text("notify.proxy")?;
    for (key, url) in [
        ("notify.telegram_api_url", &telegram_api_url),
        ("notify.proxy", &proxy),
    ] {
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(p.invalid(key, format!("expected an http(s):// URL, got {url:?}")));
        }
    }
    Ok(NotifyConfig {
        smtp_server,
        smtp_security,
        smtp_username: text("notify.smtp_username")?,
        smtp_password: p.opt_text("notify.smtp_password")?.unwrap_or_default(),
        smtp_from: text("notify.smtp_from")?,
        ca_file,
        telegram_api_url: telegram_api_url.trim_end_matches('/').to_owned(),
        telegram_token: text("notify.telegram_token")?,
        webhook_secret: p.opt_text("notify.webhook_secret")?.unwrap_or_default(),
        proxy,
    })
}

/// The `[scan]` section.
fn parse_scan(p: &Parsed, data_dir: &Path) -> Result<ScanConfig, ConfigError> {
    let defaults = ScanConfig::defaults_for(data_dir);
    let mut dirs = Vec::new();
    for (key, default) in [
        ("scan.yara_rules_dir", defaults.yara_rules_dir),
        ("scan.samples_dir", defaults.samples_dir),
    ] {
        let dir = p.path(key)?.unwrap_or(default);
        if dir.exists() && !dir.is_dir() {
            return Err(p.invalid(key, format!("{} is not a directory", dir.display())));
        }
        dirs.push(dir);
    }
    let samples_dir = dirs.pop().unwrap_or_default();
    let yara_rules_dir = dirs.pop().unwrap_or_default();
    let clamd = p
        .opt_text("scan.clamd")?
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    if let Some(address) = &clamd
        && let Err(why) = check_clamd_address(address)
    {
        return Err(p.invalid("scan.clamd", why));
    }
    let mut lists = Vec::new();
    for key in ["scan.known_bad", "scan.known_good"] {
        let paths = p.path_list(key)?;
        for path in &paths {
            if !path.is_file() {
                return Err(p.invalid(key, format!("{} is not a readable file", path.display())));
            }
        }
        lists.push(paths);
    }
    let known_good = lists.pop().unwrap_or_default();
    let known_bad = lists.pop().unwrap_or_default();
    Ok(ScanConfig {
        yara_rules_dir,
        clamd,
        known_bad,
        known_good,
        samples: p.bool("scan.samples")?,
        max_sample_bytes: p.size("scan.max_sample_bytes", 1 << 10, 4 << 30)?,
        samples_dir,
        samples_quota: p.size("scan.samples_quota", 1 << 20, 1 << 50)?,
        samples_retention: p.duration("scan.samples_retention", 3600, 100 * 365 * 24 * 3600)?,
    })
}

/// `unix:/path` or `tcp:host:port` (the host is resolved when the server starts, not here).
fn check_clamd_address(address: &str) -> Result<(), String> {
    let expected = "expected unix:/path/to/clamd.ctl or tcp:HOST:PORT";
    if let Some(path) = address.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!(
                "{address:?}: the socket path is empty ({expected})"
            ));
        }
        return Ok(());
    }
    if let Some(hostport) = address.strip_prefix("tcp:") {
        let Some((host, port)) = hostport.rsplit_once(':') else {
            return Err(format!("{address:?}: missing :PORT ({expected})"));
        };
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .is_empty()
        {
            return Err(format!("{address:?}: the host is empty ({expected})"));
        }
        return match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("{address:?}: invalid port {port:?} ({expected})")),
        };
    }
    Err(format!("{address:?}: {expected}"))
}

fn flatten_table(table: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) if !KEYS.iter().any(|d| d.key == key) => {
                flatten_table(inner, &key, out)
            }
            other => out.push((key, other.clone())),
        }
    }
}

/// The known key nearest to an unknown one (same last segment, or one edit away).
fn suggest(unknown: &str) -> Option<&'static str> {
    let last = unknown.rsplit('.').next().unwrap_or(unknown);
    KEYS.iter()
        .map(|d| d.key)
        .find(|k| k.rsplit('.').next() == Some(last))
        .or_else(|| {
            KEYS.iter()
                .map(|d| d.key)
                .find(|k| edit_distance(k, unknown) <= 2)
        })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn valid_hostname(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Values being parsed; each accessor falls back to the key's default.
struct Parsed {
    values: BTreeMap<&'static str, (Raw, Origin)>,
}

impl Parsed {
    fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    fn origin(&self, key: &str) -> Origin {
        self.values
            .get(key)
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin::Default)
    }

    /// Two keys that disagree: the error names `bound` when it was set, else `other` (the
    /// value someone chose is the one to look at).
    fn conflict(&self, bound: &str, other: &str, message: String) -> ConfigError {
        let key = if self.is_set(bound) { bound } else { other };
        self.invalid(key, message)
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            origin: self.origin(key),
            message,
        }
    }

    /// The raw value, or the key's default parsed as TOML; `None` when unset without default.
    fn raw(&self, key: &str) -> Result<Option<Raw>, ConfigError> {
        if let Some((raw, _)) = self.values.get(key) {
            return Ok(Some(raw.clone()));
        }
        let def = key_def(key).ok_or_else(|| self.invalid(key, "not a known key".into()))?;
        if def.default.is_empty() {
            return Ok(None);
        }
        let table: toml::Table = format!("v = {}", def.default)
            .parse()
            .map_err(|_| self.invalid(key, "the built-in default does not parse".into()))?;
        Ok(table.get("v").cloned().map(Raw::Toml))
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Text(s)) => Ok(Some(s)),
            Some(Raw::Toml(toml::Value::String(s))) => Ok(Some(s)),
            Some(Raw::Toml(other)) => {
                Err(self.invalid(key, format!("expected a string, got {}", other.type_str())))
            }
        }
    }

    fn text(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self.opt_text(key)?.unwrap_or_default())
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self
            .opt_text(key)?
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from))
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        match self.raw(key)? {
            Some(Raw::Toml(toml::Value::Boolean(b))) => Ok(b),
            Some(Raw::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok(true),
                "off" | "false" | "no" | "0" => Ok(false),
                _ => Err(self.invalid(key, format!("expected on or off, got {s:?}"))),
            },
            Some(Raw::Toml(other)) => Err(self.invalid(
                key,
                format!("expected true or false, got {}", other.type_str()),
            )),
            None => Ok(false),
        }
    }

    fn int(&self, key: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value =
            match self.raw(key)? {
                Some(Raw::Toml(toml::Value::Integer(i))) => u64::try_from(i)
                    .map_err(|_| self.invalid(key, format!("must not be negative, got {i}")))?,
                Some(Raw::Text(s)) => s.trim().replace('_', "").parse::<u64>().map_err(|_| {
                    self.invalid(key, format!("expected a whole number, got {s:?}"))
                })?,
                Some(Raw::Toml(other)) => {
                    return Err(self.invalid(
                        key,
                        format!("expected a whole number, got {}", other.type_str()),
                    ));
                }
                None => 0,
            };
        if value < min || value > max {
            return Err(self.invalid(key, format!("must be between {min} and {max}, got {value}")));
        }
        Ok(value)
    }

    fn size(&self, key: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value = match self.raw(key)? {
            Some(Raw::Toml(toml::Value::Integer(i))) => u64::try_from(i)
                .map_err(|_| self.invalid(key, format!("must not be negative, got {i}")))?,
            Some(Raw::Toml(toml::Value::String(s))) | Some(Raw::Text(s)) => parse_size(&s)
                .ok_or_else(|| {
                    self.invalid(
                        key,
                        format!("expected a size such as 16MiB, 512KiB or 1048576, got {s:?}"),
                    )
                })?,
            Some(Raw::Toml(other)) => {
                return Err(self.invalid(key, format!("expected a size, got {}", other.type_str())));
            }
            None => 0,
        };
        if value < min || value > max {
            return Err(self.invalid(
                key,
                format!(
                    "must be between {} and {}, got {}",
                    human_size(min),
                    human_size(max),
                    human_size(value)
                ),
            ));
        }
        Ok(value)
    }

    fn duration(&self, key: &str, min_secs: u64, max_secs: u64) -> Result<Duration, ConfigError> {
        let secs = match self.raw(key)? {
            Some(Raw::Toml(toml::Value::Integer(i))) => u64::try_from(i)
                .map_err(|_| self.invalid(key, format!("must not be negative, got {i}")))?,
            Some(Raw::Toml(toml::Value::String(s))) | Some(Raw::Text(s)) => parse_duration_secs(&s)
                .ok_or_else(|| {
                    self.invalid(
                        key,
                        format!("expected a duration such as 300, 90s, 5m, 2h or 1d, got {s:?}"),
                    )
                })?,
            Some(Raw::Toml(other)) => {
                return Err(self.invalid(
                    key,
                    format!("expected a duration, got {}", other.type_str()),
                ));
            }
            None => 0,
        };
        if secs < min_secs || secs > max_secs {
            return Err(self.invalid(
                key,
                format!("must be between {min_secs}s and {max_secs}s, got {secs}s"),
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    fn list(&self, key: &str, paths: bool) -> Result<Vec<String>, ConfigError> {
        match self.raw(key)? {
            None => Ok(Vec::new()),
            Some(Raw::Text(s)) if paths => Ok(std::env::split_paths(&s)
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| !p.is_empty())
                .collect()),
            Some(Raw::Text(s)) => Ok(s
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()),
            Some(Raw::Toml(toml::Value::Array(items))) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(self.invalid(
                        key,
                        format!("item {i}: expected a string, got {}", other.type_str()),
                    )),
                })
                .collect(),
            Some(Raw::Toml(other)) => Err(self.invalid(
                key,
                format!("expected an array of strings, got {}", other.type_str()),
            )),
        }
    }

    fn text_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        self.list(key, false)
    }

    fn path_list(&self, key: &str) -> Result<Vec<PathBuf>, ConfigError> {
        Ok(self
            .list(key, true)?
            .into_iter()
            .map(PathBuf::from)
            .collect())
    }
}

/// `16MiB`, `512 KiB`, `1GB`, `4096`, `10k` → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Bytes as the largest binary unit that divides them (`16 MiB`, `1500 bytes`).
pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// `300`, `90s`, `5m`, `2h`, `1d` → seconds.
pub fn parse_duration_secs(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let c = Layers::default().finish().unwrap();
        assert_eq!(c.role, ProcessRole::All);
        assert_eq!(c.listen, "0.0.0.0:8443".parse().unwrap());
        assert!(c.tls.enabled);
        assert_eq!(c.limits.max_body_bytes, 16 << 20);
        assert_eq!(c.limits.max_batch_events, 10_000);
        assert_eq!(c.alert_aggregation_window, Duration::from_secs(300));
        assert_eq!(c.database_url, "sqlite://dozor-data/dozor.db");
        assert_eq!(c.bus, BusConfig::Memory);
        assert_eq!(Config::defaults(), c);
    }

    #[test]
    fn file_then_env_then_cli() {
        let mut l = Layers::default();
        l.file(
            "listen = \"127.0.0.1:1\"\n[limits]\nmax_body_bytes = \"1MiB\"\nmax_batch_events = 5\n[tls]\nhostnames = [\"dozor.example\"]\n",
            Path::new("/etc/dozor.toml"),
        )
        .unwrap();
        l.env(env(&[
            ("DOZOR_LISTEN", "127.0.0.1:2"),
            ("DOZOR_TLS", "off"),
            ("DOZOR_BUS", "memory"),
            ("DOZOR_ALERT_AGGREGATION_WINDOW", "2h"),
            ("UNRELATED", "x"),
        ]))
        .unwrap();
        l.cli(&ServerArgs {
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        });
        let c = l.finish().unwrap();
        assert_eq!(c.listen.port(), 3);
        assert_eq!(c.origin("listen"), Origin::Cli("--listen"));
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert_eq!(
            c.origin("limits.max_body_bytes"),
            Origin::File("/etc/dozor.toml".into())
        );
        assert!(!c.tls.enabled);
        assert_eq!(c.origin("tls.enabled"), Origin::Env("DOZOR_TLS"));
        assert_eq!(c.tls.hostnames, vec!["dozor.example".to_string()]);
        assert_eq!(c.alert_aggregation_window, Duration::from_secs(7200));
        assert_eq!(c.origin("role"), Origin::Default);
    }

    #[test]
    fn errors_name_the_key_and_the_source() {
        let mut l = Layers::default();
        l.env(env(&[("DOZOR_MAX_BODY_BYTES", "12")])).unwrap();
        let e = l.finish().unwrap_err();
        assert_eq!(e.key(), Some("limits.max_body_bytes"));
        assert_eq!(e.origin(), Some(&Origin::Env("DOZOR_MAX_BODY_BYTES")));
        let text = e.to_string();
        assert!(
            text.starts_with(
                "limits.max_body_bytes (from environment variable DOZOR_MAX_BODY_BYTES): must be between 1 KiB"
            ),
            "{text}"
        );

        let e = Config::from_toml("[limits]\nmax_batch_events = \"many\"\n").unwrap_err();
        assert_eq!(e.key(), Some("limits.max_batch_events"));
        assert!(matches!(e.origin(), Some(Origin::File(_))));
        assert!(e.to_string().contains("expected a whole number"), "{e}");

        let e = Config::from_toml("[limits]\nmax_body_bites = 5\n").unwrap_err();
        assert_eq!(e.key(), Some("limits.max_body_bites"));
        assert!(
            e.to_string()
                .contains("did you mean `limits.max_body_bytes`"),
            "{e}"
        );

        let e = Config::from_toml("listen = \"localhost\"").unwrap_err();
        assert_eq!(e.key(), Some("listen"));

        let e = Config::from_toml("listen = ").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");

        let mut l = Layers::default();
        l.env(env(&[("DOZOR_TLS", "maybe")])).unwrap();
        let e = l.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "tls.enabled (from environment variable DOZOR_TLS): expected on or off, got \"maybe\""
        );
    }

    #[test]
    fn cross_key_rules() {
        let e = Config::from_toml("role = \"worker\"").unwrap_err();
        assert_eq!(e.key(), Some("role"));
        assert!(e.to_string().contains("in-process queue"), "{e}");
        let c = Config::from_toml("role = \"worker\"\nbus = \"nats://127.0.0.1:4222\"").unwrap();
        assert_eq!(c.bus, BusConfig::Nats("nats://127.0.0.1:4222".into()));
        assert!(c.role.runs_workers() && !c.role.runs_ingest());

        let e = Config::from_toml("[limits]\nqueue_capacity = 10").unwrap_err();
        assert_eq!(e.key(), Some("limits.queue_capacity"));

        // A queue smaller than two full bodies could refuse a batch forever.
        let e = Config::from_toml("[limits]\nqueue_bytes = \"20MiB\"").unwrap_err();
        assert_eq!(e.key(), Some("limits.queue_bytes"));
        assert!(e.to_string().contains("twice limits.max_body_bytes"), "{e}");
        let e = Config::from_toml("[limits]\nmax_body_bytes = \"128MiB\"").unwrap_err();
        assert_eq!(e.key(), Some("limits.max_body_bytes"), "{e}");
        let c = Config::from_toml("[limits]\nqueue_bytes = \"1GiB\"").unwrap();
        assert_eq!(c.limits.queue_bytes, 1 << 30);

        let e = Config::from_toml("[tls]\ncert_file = \"/nonexistent.pem\"").unwrap_err();
        assert_eq!(e.key(), Some("tls.key_file"));

        let e = Config::from_toml("[geoip]\ncity_db = \"/nonexistent.mmdb\"").unwrap_err();
        assert_eq!(e.key(), Some("geoip.city_db"));
        assert!(e.to_string().contains("not a readable file"));

        let e = Config::from_toml("[tls]\nhostnames = [\"bad name\"]").unwrap_err();
        assert_eq!(e.key(), Some("tls.hostnames"));

        let e = Config::from_toml("database_url = \"mysql://x\"").unwrap_err();
        assert_eq!(e.key(), Some("database_url"));
    }

    #[test]
    fn reference_config_parses_to_the_defaults() {
        let text = reference_toml();
        let c = Config::from_toml(&text).unwrap();
        let mut d = Config::defaults();
        d.origins = c.origins.clone();
        assert_eq!(c, d);
        for def in KEYS {
            assert!(text.contains(def.env), "{}", def.env);
            assert!(def.env.starts_with("DOZOR_"));
        }
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../README.md");
        for def in KEYS {
            assert!(
                readme.contains(&format!("| `{}` | `{}`", def.key, def.env)),
                "README.md lacks a row for {} / {}",
                def.key,
                def.env
            );
        }
    }

    #[test]
    fn workers_and_queue_from_every_layer() {
        let c = Config::defaults();
        assert_eq!(c.workers, 1);
        assert_eq!(c.queue.name, "dozor");
        assert_eq!(c.queue.consumer, None);
        assert_eq!(c.queue.redelivery, Duration::from_secs(30));

        let c = Config::from_toml("workers = 3\n[queue]\nname = \"site2\"\nredelivery = \"2m\"")
            .unwrap();
        assert_eq!((c.workers, c.queue.name.as_str()), (3, "site2"));
        assert_eq!(c.queue.redelivery, Duration::from_secs(120));

        let mut l = Layers::default();
        l.env(env(&[
            ("DOZOR_WORKERS", "2"),
            ("DOZOR_CONSUMER", "w-7"),
            ("DOZOR_BUS_REDELIVERY_SECS", "5"),
        ]))
        .unwrap();
        l.cli(&ServerArgs {
            workers: Some(4),
            bus_name: Some("cli-name".into()),
            ..ServerArgs::default()
        });
        let c = l.finish().unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.origin("workers"), Origin::Cli("--workers"));
        assert_eq!(c.queue.consumer.as_deref(), Some("w-7"));
        assert_eq!(c.queue.name, "cli-name");
        assert_eq!(c.queue.redelivery, Duration::from_secs(5));

        let e = Config::from_toml("workers = 0").unwrap_err();
        assert_eq!(e.key(), Some("workers"));
        let e = Config::from_toml("[queue]\nname = \"a b\"").unwrap_err();
        assert_eq!(e.key(), Some("queue.name"));
    }

    #[test]
    fn scan_section() {
        let c = Config::from_toml("data_dir = \"/srv/dozor\"").unwrap();
        assert_eq!(c.scan.yara_rules_dir, PathBuf::from("/srv/dozor/yara"));
        assert_eq!(c.scan.samples_dir, PathBuf::from("/srv/dozor/samples"));
        assert!(c.scan.samples);
        assert_eq!(c.scan.max_sample_bytes, 32 << 20);
        assert_eq!(c.scan.clamd, None);

        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("bad.txt");
        std::fs::write(&list, "").unwrap();
        let mut l = Layers::default();
        l.env(env(&[
            ("DOZOR_SCAN_CLAMD", "unix:/run/clamav/clamd.ctl"),
            ("DOZOR_SCAN_SAMPLES", "off"),
            ("DOZOR_SCAN_MAX_SAMPLE_BYTES", "1MiB"),
            ("DOZOR_SCAN_KNOWN_BAD", &list.display().to_string()),
        ]))
        .unwrap();
        let c = l.finish().unwrap();
        assert_eq!(c.scan.clamd.as_deref(), Some("unix:/run/clamav/clamd.ctl"));
        assert!(!c.scan.samples);
        assert_eq!(c.scan.max_sample_bytes, 1 << 20);
        assert_eq!(c.scan.known_bad, vec![list.clone()]);

        for bad in [
            "clamd.sock",
            "unix:",
            "tcp:localhost",
            "tcp::3310",
            "tcp:h:99999",
        ] {
            let e = Config::from_toml(&format!("[scan]\nclamd = \"{bad}\"")).unwrap_err();
            assert_eq!(e.key(), Some("scan.clamd"), "{bad}");
            assert!(e.to_string().contains("unix:/path"), "{e}");
        }
        assert!(Config::from_toml("[scan]\nclamd = \"tcp:clamav.internal:3310\"").is_ok());
        let e = Config::from_toml("[scan]\nknown_good = [\"/nonexistent.txt\"]").unwrap_err();
        assert_eq!(e.key(), Some("scan.known_good"));
        let e = Config::from_toml(&format!("[scan]\nsamples_dir = \"{}\"", list.display()))
            .unwrap_err();
        assert_eq!(e.key(), Some("scan.samples_dir"));
        let e = Config::from_toml("[scan]\nmax_sample_bytes = 10").unwrap_err();
        assert_eq!(e.key(), Some("scan.max_sample_bytes"));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1_000"), Some(1000));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(1500), "1500 bytes");
        assert_eq!(parse_duration_secs("5m"), Some(300));
        assert_eq!(parse_duration_secs("1d"), Some(86_400));
        assert_eq!(parse_duration_secs("10"), Some(10));
        assert_eq!(parse_duration_secs("1y"), None);
    }
}
