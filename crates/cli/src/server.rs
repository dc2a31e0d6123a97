//! `dozor server` and `dozor tokens`: wiring the server library, the store, the bus and the
//! pipeline workers together. Nothing here decides behaviour; it only connects parts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dozor_bus::{Bus, BusError};
use dozor_pipeline::{PipelineOptions, PipelineStats, Worker};
use dozor_server::{
    BoxFuture, Config, IngestBatch, IngestSink, Server, ServerArgs, Services, SinkError,
    SubmitOutcome,
};
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};
use dozor_store::{NewToken, Store, StoreConfig};

#[derive(Args)]
pub struct ServerCmd {
    #[command(flatten)]
    pub args: ServerArgs,
    /// Pipeline worker tasks in this process (roles `all` and `worker`).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Consumer name on a Redis/NATS bus; keep it stable per worker process so a restarted
    /// worker resumes its own pending messages.
    #[arg(long, env = "DOZOR_CONSUMER")]
    pub consumer: Option<String>,
    /// Name of the queue on a Redis/NATS bus (stream, group, subject and durable consumer are
    /// derived from it), so several installations can share one Redis or NATS.
    #[arg(long, env = "DOZOR_BUS_NAME", default_value = "dozor")]
    pub bus_name: String,
    /// Seconds after which a message taken by a worker that died is handed to another.
    #[arg(long, env = "DOZOR_BUS_REDELIVERY_SECS", default_value_t = 30)]
    pub bus_redelivery_secs: u64,
}

/// Queue budget per event of `limits.queue_capacity`.
const QUEUE_BYTES_PER_EVENT: usize = 2048;

/// Where the store lives, from the server configuration.
fn store_config(config: &Config) -> StoreConfig {
    let url = &config.database_url;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        // The server names the database file; the store takes its directory.
        let p = Path::new(path);
        let dir = if p.extension().is_some_and(|e| e == "db") {
            p.parent().unwrap_or(Path::new("."))
        } else {
            p
        };
        return StoreConfig::Sqlite(dozor_store::sqlite::SqliteConfig::new(dir));
    }
    StoreConfig::from_location(url)
}

fn bus_config(config: &Config, cmd: &ServerCmd, consumer: &str) -> dozor_bus::BusConfig {
    let redelivery = Duration::from_secs(cmd.bus_redelivery_secs.max(1));
    let name = &cmd.bus_name;
    match &config.bus {
        // `queue_capacity` counts events; a message is a batch of any size, so the in-memory
        // queue is bounded by bytes (at ~2 KiB per event) rather than by messages.
        dozor_server::config::BusConfig::Memory => {
            dozor_bus::BusConfig::Memory(dozor_bus::MemoryConfig {
                max_messages: 0,
                max_bytes: config.limits.queue_capacity.max(1) * QUEUE_BYTES_PER_EVENT,
                visibility_timeout: redelivery,
            })
        }
        dozor_server::config::BusConfig::Redis(url) => {
            let mut c = dozor_bus::RedisConfig::new(url.clone(), consumer.to_owned());
            c.stream = format!("{name}:ingest");
            c.group = format!("{name}-workers");
            c.max_len = config.limits.queue_capacity.max(1) as u64;
            c.claim_idle = redelivery;
            dozor_bus::BusConfig::Redis(c)
        }
        dozor_server::config::BusConfig::Nats(url) => {
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
            c.stream = format!("{upper}_INGEST");
            c.subject = format!("{}.ingest", name.replace(['.', '*', '>', ' '], "_"));
            c.durable = format!("{}-workers", name.replace(['.', '*', '>', ' '], "_"));
            c.max_msgs = config.limits.queue_capacity.max(1) as u64;
            c.max_bytes = (config.limits.queue_capacity.max(1) * QUEUE_BYTES_PER_EVENT) as u64;
            c.ack_wait = redelivery;
            dozor_bus::BusConfig::Nats(c)
        }
    }
}

/// Ingest → bus: one message per accepted batch (a JSON array of events).
struct BusSink {
    bus: Arc<dyn Bus>,
    depth: Arc<AtomicU64>,
}

impl IngestSink for BusSink {
    fn submit(&self, batch: IngestBatch) -> BoxFuture<'_, Result<SubmitOutcome, SinkError>> {
        Box::pin(async move {
            let events: Vec<&serde_json::Value> = batch.events.iter().map(|e| &e.event).collect();
            let payload =
                serde_json::to_vec(&events).map_err(|e| SinkError::Unavailable(e.to_string()))?;
            match self.bus.publish(payload.into()).await {
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

fn rule_paths(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths = dirs.to_vec();
    if paths.is_empty() {
        // The project's own rules ship with the sources; SigmaHQ directories are configured.
        let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        if builtin.is_dir() {
            paths.push(builtin);
        }
    }
    paths
}

fn load_detector(dirs: &[PathBuf]) -> (Detector, Vec<dozor_sigma::RuleReport>) {
    let paths = rule_paths(dirs);
    let set = RuleSet::load_paths(&paths, &LoadOptions::default());
    let options = EngineOptions {
        prefilter_dfa: true,
        ..EngineOptions::default()
    };
    let (detector, reports) = Detector::build(set, &options, &DetectorOptions::default());
    let bad = reports
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                dozor_sigma::Outcome::Invalid(_) | dozor_sigma::Outcome::Unsupported(_)
            )
        })
        .count();
    tracing::info!(
        rules = detector.engine().rules().len(),
        problems = bad,
        "rules loaded from {paths:?}"
    );
    if bad > 0 {
        tracing::warn!("{bad} rule documents could not be used (`dozor rules lint` lists them)");
    }
    (detector, reports)
}

fn meta_index(detector: &Detector) -> std::collections::HashMap<PathBuf, dozor_sigma::RuleMeta> {
    let engine = detector.engine();
    engine
        .rules()
        .iter()
        .chain(detector.correlation_rules())
        .map(|m| (m.path.clone(), m.clone()))
        .collect()
}

/// The loaded rules as the API sees them; reloading swaps every worker's detector.
struct Catalog {
    dirs: Vec<PathBuf>,
    reports: std::sync::RwLock<Vec<dozor_sigma::RuleReport>>,
    /// Metadata of the compiled rules by report path (level, status, tags, logsource).
    metas: std::sync::RwLock<std::collections::HashMap<PathBuf, dozor_sigma::RuleMeta>>,
    detectors: Vec<Arc<std::sync::Mutex<Detector>>>,
}

impl dozor_server::RuleCatalog for Catalog {
    fn list(&self) -> Vec<dozor_server::RuleInfo> {
        let reports = self.reports.read().unwrap_or_else(|p| p.into_inner());
        reports
            .iter()
            .map(dozor_server::RuleInfo::from_report)
            .collect()
    }

    fn yaml(&self, id: &str) -> Option<String> {
        let reports = self.reports.read().unwrap_or_else(|p| p.into_inner());
        let report = reports
            .iter()
            .find(|r| r.id == id || (r.id.is_empty() && r.title == id))?;
        // Documents of multi-document files are named `file.yml#N`.
        let path = report.path.to_string_lossy();
        let file = path.split('#').next().unwrap_or(&path);
        std::fs::read_to_string(file).ok()
    }

    fn reload(&self) -> BoxFuture<'_, Result<dozor_server::ReloadReport, String>> {
        Box::pin(async move {
            let dirs = self.dirs.clone();
            let count = self.detectors.len().max(1);
            let built = tokio::task::spawn_blocking(move || {
                (0..count).map(|_| load_detector(&dirs)).collect::<Vec<_>>()
            })
            .await
            .map_err(|e| e.to_string())?;
            let mut reports = Vec::new();
            let mut metas = None;
            for (slot, (detector, r)) in self.detectors.iter().zip(built) {
                metas.get_or_insert_with(|| meta_index(&detector));
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = detector;
                reports = r;
            }
            if self.detectors.is_empty() {
                let (detector, r) = load_detector(&self.dirs);
                metas = Some(meta_index(&detector));
                reports = r;
            }
            if let Some(m) = metas {
                *self.metas.write().unwrap_or_else(|p| p.into_inner()) = m;
            }
            let summary = dozor_server::ReloadReport::from_reports(&reports);
            *self.reports.write().unwrap_or_else(|p| p.into_inner()) = reports;
            Ok(summary)
        })
    }

    fn test(&self, rule_yaml: &str, events: Vec<serde_json::Value>) -> Result<Vec<usize>, String> {
        let mut set = RuleSet::default();
        set.add_text(
            Path::new("<rule under test>"),
            rule_yaml,
            &LoadOptions::default(),
        );
        if let Some(bad) = set.invalid.first() {
            return Err(format!("{:?}", bad.outcome));
        }
        let (detector, reports) =
            Detector::build(set, &EngineOptions::default(), &DetectorOptions::default());
        if let Some(r) = reports
            .iter()
            .find(|r| r.outcome != dozor_sigma::Outcome::Active)
        {
            return Err(format!("{:?}", r.outcome));
        }
        let engine = detector.engine();
        let mut scratch = engine.new_scratch();
        let mut hits = Vec::new();
        let mut matched = Vec::new();
        for (i, doc) in events.iter().enumerate() {
            hits.clear();
            engine.matches(&dozor_event::detection_view(doc), &mut scratch, &mut hits);
            if !hits.is_empty() {
                matched.push(i);
            }
        }
        Ok(matched)
    }
}

fn consumer_name(cmd: &ServerCmd) -> String {
    cmd.consumer.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "dozor".into());
        format!("{host}-worker")
    })
}

/// On first start: creates the first operator account (user `admin`, a generated password)
/// and an admin API token, and prints both once.
async fn bootstrap_admin(store: &Arc<dyn Store>) -> Result<()> {
    let mut lines = Vec::new();
    if store.count_users().await? == 0 {
        let password = dozor_server::password::generate();
        let hash = dozor_server::password::hash(&password)?;
        store
            .create_user(&dozor_store::NewUser {
                username: "admin".into(),
                password_hash: hash,
                role: dozor_store::Role::Admin,
                language: None,
                created_by: "first-start".into(),
            })
            .await?;
        lines.push(" First start: the web dashboard's first administrator was created:".to_owned());
        lines.push(String::new());
        lines.push("     user:     admin".to_owned());
        lines.push(format!("     password: {password}"));
        lines.push(String::new());
        lines.push(
            " Sign in at https://<this server>/login and change the password under Profile."
                .to_owned(),
        );
        lines.push(" More accounts: `dozor users create NAME --role analyst`.".to_owned());
    }
    if store.list_tokens().await?.is_empty() {
        let created = store
            .create_token(&NewToken {
                name: "initial-admin".into(),
                role: dozor_store::Role::Admin,
                expires_at: None,
                owner: None,
            })
            .await?;
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.push(" First start: an admin API token was created:".to_owned());
        lines.push(String::new());
        lines.push(format!("     {}", created.secret));
        lines.push(String::new());
        lines.push(
            " Use it as `Authorization: Bearer <token>` or DOZOR_TOKEN for the CLI.".to_owned(),
        );
        lines.push(
            " Create more with `dozor tokens create`; revoke this one when you have.".to_owned(),
        );
    }
    if !lines.is_empty() {
        eprintln!();
        eprintln!(
            "================================================================================"
        );
        eprintln!(" Shown only this once:");
        for line in lines {
            eprintln!("{line}");
        }
        eprintln!(
            "================================================================================"
        );
        eprintln!();
    }
    Ok(())
}

pub fn run(cmd: ServerCmd) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(cmd))
}

async fn serve(cmd: ServerCmd) -> Result<u8> {
    let config = Config::load(&cmd.args, std::env::vars()).context("configuration")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = dozor_store::open(&store_config(&config))
        .await
        .context("opening the store")?;
    bootstrap_admin(&store).await?;
    let consumer = consumer_name(&cmd);
    let bus = dozor_bus::connect(&bus_config(&config, &cmd, &consumer))
        .await
        .context("connecting the bus")?;

    let (notices, _) = tokio::sync::broadcast::channel(1024);
    let stats = Arc::new(PipelineStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();

    let mut detectors = Vec::new();
    let mut first_reports = None;
    if config.role.runs_workers() {
        let enricher = match (&config.geoip.city_db, &config.geoip.asn_db) {
            (None, None) => None,
            (city, asn) => Some(Arc::new(
                dozor_enrich::Enricher::open(dozor_enrich::EnrichConfig {
                    city_db: city.clone(),
                    asn_db: asn.clone(),
                    ..Default::default()
                })
                .context("opening GeoIP databases")?,
            )),
        };
        let options = PipelineOptions {
            alert_window: config.alert_aggregation_window,
            ..PipelineOptions::default()
        };
        for i in 0..cmd.workers.max(1) {
            let (detector, reports) = load_detector(&config.rules_dirs);
            first_reports.get_or_insert(reports);
            // The in-process queue is shared by its workers; on Redis/NATS each worker is a
            // consumer of its own, with a distinct name.
            let shared = matches!(config.bus, dozor_server::config::BusConfig::Memory);
            let worker_bus = if i == 0 || shared {
                bus.clone()
            } else {
                dozor_bus::connect(&bus_config(&config, &cmd, &format!("{consumer}-{i}"))).await?
            };
            let worker = Worker::new(
                worker_bus,
                store.clone(),
                enricher.clone(),
                detector,
                options.clone(),
                notices.clone(),
                stats.clone(),
            );
            detectors.push(worker.detector());
            let rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move { worker.run(rx).await }));
        }
    }

    // Retention: purge old events and closed alerts once an hour.
    {
        let store = store.clone();
        let days = config.retention_days;
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let cutoff = chrono::Utc::now().timestamp_millis() - i64::from(days) * 86_400_000;
                match store.purge_before(cutoff).await {
                    Ok(r) => tracing::info!("retention purge: {r:?}"),
                    Err(e) => tracing::warn!("retention purge failed: {e}"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = rx.changed() => return,
                }
            }
        }));
    }

    let depth = Arc::new(AtomicU64::new(0));
    {
        let bus = bus.clone();
        let depth = depth.clone();
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if let Ok(d) = bus.depth().await {
                    depth.store(d, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = rx.changed() => return,
                }
            }
        }));
    }
    let sink = Arc::new(BusSink {
        bus: bus.clone(),
        depth,
    });
    let tokens = Arc::new(dozor_server::StoreTokens(store.clone()));
    let (reports, metas) = match (first_reports, detectors.first()) {
        (Some(r), Some(d)) => (r, meta_index(&d.lock().unwrap_or_else(|p| p.into_inner()))),
        _ => {
            let (detector, r) = load_detector(&config.rules_dirs);
            (r, meta_index(&detector))
        }
    };
    let catalog = Arc::new(Catalog {
        dirs: config.rules_dirs.clone(),
        reports: std::sync::RwLock::new(reports),
        metas: std::sync::RwLock::new(metas),
        detectors,
    });
    let (agent_notices, _) = tokio::sync::broadcast::channel(1024);
    if config.role.runs_api() {
        tasks.push(tokio::spawn(dozor_server::agents::watch_offline(
            store.clone(),
            config.agents.clone(),
            config.alert_aggregation_window,
            notices.clone(),
            agent_notices.clone(),
            stop_rx.clone(),
        )));
    }
    let api = Arc::new(dozor_server::ApiState {
        store: store.clone(),
        rules: catalog,
        notices,
        pipeline_stats: Some(stats),
        agent_notices,
    });
    let services = Services::new(sink, tokens).with_api(api);
    let server = Server::bind(config, services)
        .await
        .context("starting the HTTP server")?;
    eprintln!("dozor server listening on {}", server.base_url());
    if server.is_tls() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        if let Ok(der) = CertificateDer::from_pem_slice(server.ca_certificate_pem().as_bytes()) {
            eprintln!(
                "CA certificate SHA-256 (agents pin it: dozor-agent enroll --ca-sha256 ...): {}",
                sha256_hex(der.as_ref())
            );
        }
    }
    server
        .run(dozor_server::shutdown_signal())
        .await
        .context("serving")?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    store.close().await;
    Ok(0)
}

/// Where the server's data is (tokens are managed directly in its store).
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The server's configuration file.
    #[arg(long, short = 'c', env = "DOZOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl StoreArgs {
    fn server_args(&self) -> ServerArgs {
        ServerArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            ..ServerArgs::default()
        }
    }
}

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Create a token and print its secret once: an agent enrollment token (the default,
    /// `dze_…`, for `dozor-agent enroll`) or, with --role admin|analyst|viewer, an API token
    /// (`dzt_…`).
    Create {
        /// A name that says who or what uses it [default: enrollment, or the role].
        #[arg(long)]
        name: Option<String>,
        /// enroll (agent enrollment), admin, analyst or viewer.
        #[arg(long, default_value = "enroll")]
        role: String,
        /// Lifetime, e.g. 30m, 24h, 30d (default: no expiry; enrollment tokens should expire).
        #[arg(long)]
        expires: Option<String>,
        /// Enrollment tokens: how many agents may enroll with it (default: unlimited).
        #[arg(long)]
        uses: Option<u32>,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// List tokens (never their secrets): ID, NAME, ROLE, EXPIRES and, for enrollment tokens,
    /// USES (used/allowed).
    List {
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Revoke a token by id (an enrollment token with --enrollment).
    Revoke {
        id: i64,
        /// The id is an enrollment token's (role `enroll` in the list).
        #[arg(long)]
        enrollment: bool,
        #[command(flatten)]
        args: StoreArgs,
    },
}

fn parse_lifetime(s: &str) -> Result<i64> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("'{s}': expected a number and a unit (s, m, h, d)"))?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("'{s}': unit must be s, m, h or d"),
    };
    if n <= 0 {
        bail!("'{s}': the lifetime must be positive");
    }
    Ok(n * ms)
}

fn expiry_text(at: Option<i64>) -> String {
    at.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "never".to_owned())
}

pub fn tokens(cmd: TokensCmd) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let args = match &cmd {
            TokensCmd::Create { args, .. }
            | TokensCmd::List { args }
            | TokensCmd::Revoke { args, .. } => args,
        };
        let config =
            Config::load(&args.server_args(), std::env::vars()).context("configuration")?;
        let store = dozor_store::open(&store_config(&config))
            .await
            .context("opening the store")?;
        match cmd {
            TokensCmd::Create {
                name,
                role,
                expires,
                uses,
                ..
            } => {
                let expires_at = match expires {
                    Some(e) => Some(chrono::Utc::now().timestamp_millis() + parse_lifetime(&e)?),
                    None => None,
                };
                if role == "enroll" {
                    if uses == Some(0) {
                        bail!("--uses must be at least 1");
                    }
                    let created = store
                        .create_enrollment_token(&dozor_store::NewEnrollmentToken {
                            name: name.unwrap_or_else(|| "enrollment".to_owned()),
                            expires_at,
                            max_uses: uses,
                            created_by: format!("cli:{}", whoami()),
                        })
                        .await?;
                    println!("{}", created.secret);
                    eprintln!(
                        "enrollment token {} created (expires: {}, uses: {}); the secret above is not shown again.\n\
                         On each host: dozor-agent enroll --server https://THIS-SERVER:8443 --token <secret> --ca-sha256 {}",
                        created.info.id,
                        expiry_text(created.info.expires_at),
                        uses.map_or("unlimited".to_owned(), |u| u.to_string()),
                        ca_fingerprint(&config).unwrap_or_else(|| "<see dozor server's first start>".into())
                    );
                } else {
                    if uses.is_some() {
                        bail!("--uses applies to enrollment tokens (--role enroll) only");
                    }
                    let role: dozor_store::Role =
                        role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                    if role == dozor_store::Role::AgentIngest {
                        bail!(
                            "agent-ingest tokens are no longer accepted: agents enroll with an enrollment token (dozor tokens create --expires 24h --uses 10) and send events with their client certificate"
                        );
                    }
                    let created = store
                        .create_token(&NewToken {
                            name: name.unwrap_or_else(|| role.as_str().to_owned()),
                            role,
                            expires_at,
                            owner: None,
                        })
                        .await?;
                    println!("{}", created.secret);
                    eprintln!(
                        "token {} ({}) created; the secret above is not shown again",
                        created.info.id,
                        created.info.role.as_str()
                    );
                }
            }
            TokensCmd::List { .. } => {
                for t in store.list_tokens().await? {
                    println!(
                        "{}\t{}\t{}\t{}{}",
                        t.id,
                        t.name,
                        t.role.as_str(),
                        expiry_text(t.expires_at),
                        if t.revoked_at.is_some() { "\trevoked" } else { "" }
                    );
                }
                for t in store.list_enrollment_tokens().await? {
                    println!(
                        "{}\t{}\tenroll\t{}\t{}/{}{}",
                        t.id,
                        t.name,
                        expiry_text(t.expires_at),
                        t.uses,
                        t.max_uses.map_or("unlimited".to_owned(), |m| m.to_string()),
                        if t.revoked_at.is_some() { "\trevoked" } else { "" }
                    );
                }
            }
            TokensCmd::Revoke { id, enrollment, .. } => {
                let revoked = if enrollment {
                    store.revoke_enrollment_token(id).await?
                } else {
                    store.revoke_token(id).await?
                };
                if !revoked {
                    bail!(
                        "no {}token with id {id}",
                        if enrollment { "enrollment " } else { "" }
                    );
                }
                eprintln!("token {id} revoked");
            }
        }
        store.close().await;
        Ok(0)
    })
}

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Create an operator account; prints a generated password once (or reads one from
    /// standard input with --password-stdin).
    Create {
        /// User name (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// admin, analyst or viewer.
        #[arg(long, default_value = "analyst")]
        role: String,
        /// Read the password (at least 12 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Interface language: en or ru (default: the browser's).
        #[arg(long)]
        language: Option<String>,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// List operator accounts.
    List {
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Change a user's role.
    SetRole {
        name: String,
        role: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Disable an account (its sessions end and its API tokens stop working).
    Disable {
        name: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Enable a disabled account.
    Enable {
        name: String,
        #[command(flatten)]
        args: StoreArgs,
    },
    /// Set a new generated password (printed once; or --password-stdin); ends the user's
    /// sessions.
    ResetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        args: StoreArgs,
    },
}

fn operator_role(role: &str) -> Result<dozor_store::Role> {
    match role.parse::<dozor_store::Role>() {
        Ok(
            r @ (dozor_store::Role::Admin | dozor_store::Role::Analyst | dozor_store::Role::Viewer),
        ) => Ok(r),
        _ => bail!("unknown role {role:?}: admin, analyst or viewer"),
    }
}

/// The password to set: read from standard input, or generated (then printed).
fn new_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the password from standard input")?;
        let password = text.trim_end_matches(['\n', '\r']).to_owned();
        Ok((password, false))
    } else {
        Ok((dozor_server::password::generate(), true))
    }
}

pub fn users(cmd: UsersCmd) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let args = match &cmd {
            UsersCmd::Create { args, .. }
            | UsersCmd::List { args }
            | UsersCmd::SetRole { args, .. }
            | UsersCmd::Disable { args, .. }
            | UsersCmd::Enable { args, .. }
            | UsersCmd::ResetPassword { args, .. } => args,
        };
        let config =
            Config::load(&args.server_args(), std::env::vars()).context("configuration")?;
        let store = dozor_store::open(&store_config(&config))
            .await
            .context("opening the store")?;
        let actor = format!("cli:{}", whoami());
        let find = |name: String| {
            let store = store.clone();
            async move {
                match store.find_user(&name).await? {
                    Some((user, _)) => Ok(user),
                    None => Err(anyhow::anyhow!("no user named {name:?}")),
                }
            }
        };
        let audit = |action: &'static str, target: String, details: serde_json::Value| {
            let store = store.clone();
            let actor = actor.clone();
            async move {
                store
                    .append_audit(&dozor_store::NewAuditEntry {
                        actor,
                        action: action.to_owned(),
                        target: Some(target),
                        details,
                    })
                    .await
            }
        };
        match cmd {
            UsersCmd::Create {
                name,
                role,
                password_stdin,
                language,
                ..
            } => {
                let role = operator_role(&role)?;
                let (password, generated) = new_password(password_stdin)?;
                let hash = dozor_server::password::hash(&password)?;
                let user = store
                    .create_user(&dozor_store::NewUser {
                        username: name,
                        password_hash: hash,
                        role,
                        language,
                        created_by: actor.clone(),
                    })
                    .await?;
                audit(
                    "user.create",
                    format!("user:{}", user.username),
                    serde_json::json!({ "role": role.as_str() }),
                )
                .await?;
                if generated {
                    println!("{password}");
                }
                eprintln!(
                    "user {} ({}) created{}",
                    user.username,
                    role.as_str(),
                    if generated {
                        "; the password above is not shown again"
                    } else {
                        ""
                    }
                );
            }
            UsersCmd::List { .. } => {
                for u in store.list_users().await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.id,
                        u.username,
                        u.role.as_str(),
                        u.language.as_deref().unwrap_or("auto"),
                        if u.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "enabled"
                        }
                    );
                }
            }
            UsersCmd::SetRole { name, role, .. } => {
                let role = operator_role(&role)?;
                let user = find(name).await?;
                store.set_user_role(user.id, role).await?;
                audit(
                    "user.role",
                    format!("user:{}", user.username),
                    serde_json::json!({ "from": user.role.as_str(), "to": role.as_str() }),
                )
                .await?;
                eprintln!("{} is now {}", user.username, role.as_str());
            }
            UsersCmd::Disable { name, .. } => {
                let user = find(name).await?;
                store.set_user_disabled(user.id, true).await?;
                audit(
                    "user.disable",
                    format!("user:{}", user.username),
                    serde_json::json!({}),
                )
                .await?;
                eprintln!(
                    "{} is disabled: sessions ended, API tokens refused",
                    user.username
                );
            }
            UsersCmd::Enable { name, .. } => {
                let user = find(name).await?;
                store.set_user_disabled(user.id, false).await?;
                audit(
                    "user.enable",
                    format!("user:{}", user.username),
                    serde_json::json!({}),
                )
                .await?;
                eprintln!("{} is enabled", user.username);
            }
            UsersCmd::ResetPassword {
                name,
                password_stdin,
                ..
            } => {
                let user = find(name).await?;
                let (password, generated) = new_password(password_stdin)?;
                let hash = dozor_server::password::hash(&password)?;
                store.set_user_password(user.id, &hash).await?;
                audit(
                    "user.password",
                    format!("user:{}", user.username),
                    serde_json::json!({}),
                )
                .await?;
                if generated {
                    println!("{password}");
                }
                eprintln!(
                    "the password of {} was changed; their sessions ended",
                    user.username
                );
            }
        }
        store.close().await;
        Ok(0)
    })
}

fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// SHA-256 of the built-in CA certificate (DER), for agents to pin at enrollment.
fn ca_fingerprint(config: &Config) -> Option<String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(config.pki_dir().join("ca.crt.pem")).ok()?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    Some(sha256_hex(der.as_ref()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `dozor convert`: decoded records as normalized events on stdout (NDJSON).
pub fn convert(paths: &[PathBuf]) -> Result<u8> {
    use std::io::Write;
    let files = crate::rules::input_files(paths)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut written, mut errors) = (0u64, 0u64);
    for file in files {
        let events = match dozor_decode::read_path(&file, &dozor_decode::ReadOptions::default()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: {e}");
                errors += 1;
                continue;
            }
        };
        for item in events {
            match item
                .map_err(|e| e.to_string())
                .and_then(|flat| dozor_server::winlog::to_event(&flat))
            {
                Ok(event) => {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                Err(e) => {
                    eprintln!("warning: {}: {e}", file.display());
                    errors += 1;
                }
            }
        }
    }
    out.flush()?;
    eprintln!("{written} events written, {errors} errors");
    Ok(if errors > 0 { 1 } else { 0 })
}
