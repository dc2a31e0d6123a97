//! The composition root: everything `dozor server` runs, wired from one [`Config`].
//!
//! [`run`] opens the store (bootstrapping the first administrator), connects the bus, starts
//! the pipeline workers (roles `all` and `worker`), the retention and agent-liveness tasks,
//! and serves HTTPS until a shutdown signal; then it stops the workers after they drained
//! what they hold and closes the store. The `dozor` binary only parses arguments and calls it.

mod bus;
mod catalog;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dozor_pipeline::{PipelineOptions, PipelineStats, Worker};
use dozor_store::{NewToken, NewUser, Role as StoreRole, Store, StoreConfig};

pub use bus::{BusSink, bus_config};
pub use catalog::{DirCatalog, NO_RULES_WARNING, load_detector};

use crate::config::{BusConfig, Config};
use crate::server::{Server, ServerError, Services};
use crate::{ApiState, StoreTokens};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the store: {0}")]
    Store(#[from] dozor_store::StoreError),
    #[error("connecting the bus: {0}")]
    Bus(#[from] dozor_bus::BusError),
    #[error("opening GeoIP databases: {0}")]
    GeoIp(#[from] dozor_enrich::EnrichError),
    #[error("creating the first administrator: {0}")]
    Password(#[from] crate::password::PasswordError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Where the store lives, from the server configuration (`sqlite://DIR/dozor.db` names the
/// database file; the store takes its directory).
pub fn store_config(config: &Config) -> StoreConfig {
    let url = &config.database_url;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let p = Path::new(path);
        let dir = if p.extension().is_some_and(|e| e == "db") {
            p.parent().unwrap_or(Path::new("."))
        } else {
            p
        };
        let mut sqlite = dozor_store::sqlite::SqliteConfig::new(dir);
        sqlite.cache_mib = mib(config.sqlite_writer_cache);
        sqlite.reader_cache_mib = mib(config.sqlite_reader_cache);
        return StoreConfig::Sqlite(sqlite).with_search_timeout(config.search_timeout);
    }
    StoreConfig::from_location(url).with_search_timeout(config.search_timeout)
}

/// Bytes → whole MiB (at least 1), as SQLite's cache sizes are set.
fn mib(bytes: u64) -> u32 {
    u32::try_from((bytes >> 20).max(1)).unwrap_or(u32::MAX)
}

/// On first start: creates the first operator account (user `admin` with a generated
/// password) and an admin API token. Returns the lines to show the operator once (empty when
/// both already existed).
pub async fn bootstrap_admin(store: &Arc<dyn Store>) -> Result<Vec<String>, RunError> {
    let mut lines = Vec::new();
    if store.count_users().await? == 0 {
        let password = crate::password::generate();
        store
            .create_user(&NewUser {
                username: "admin".into(),
                password_hash: crate::password::hash(&password)?,
                role: StoreRole::Admin,
                language: None,
                created_by: "first-start".into(),
            })
            .await?;
        lines.extend([
            " First start: the web dashboard's first administrator was created:".to_owned(),
            String::new(),
            "     user:     admin".to_owned(),
            format!("     password: {password}"),
            String::new(),
            " Sign in at https://<this server>/login and change the password under Profile."
                .to_owned(),
            " More accounts: `dozor users create NAME --role analyst`.".to_owned(),
        ]);
    }
    if store.list_tokens().await?.is_empty() {
        let created = store
            .create_token(&NewToken {
                name: "initial-admin".into(),
                role: StoreRole::Admin,
                expires_at: None,
                owner: None,
            })
            .await?;
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend([
            " First start: an admin API token was created:".to_owned(),
            String::new(),
            format!("     {}", created.secret),
            String::new(),
            " Use it as `Authorization: Bearer <token>` or DOZOR_TOKEN for the CLI.".to_owned(),
            " Create more with `dozor tokens create`; revoke this one when you have.".to_owned(),
        ]);
    }
    Ok(lines)
}

/// The consumer name of this process on a Redis/NATS bus: `queue.consumer`, else
/// `<hostname>-worker`.
pub fn consumer_name(config: &Config) -> String {
    config.queue.consumer.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "dozor".into());
        format!("{host}-worker")
    })
}

/// Runs a server process until `shutdown` completes (see the module documentation). Secrets
/// created at first start and the address it listens on are printed on standard error: they
/// are for the operator who started it.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| RunError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store = dozor_store::open(&store_config(&config)).await?;
    print_once(&bootstrap_admin(&store).await?);
    let consumer = consumer_name(&config);
    let bus = dozor_bus::connect(&bus_config(&config, &consumer)).await?;

    let (notices, _) = tokio::sync::broadcast::channel(1024);
    let stats = Arc::new(PipelineStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();

    if config.rules_dirs.is_empty() {
        tracing::warn!("{NO_RULES_WARNING}");
        eprintln!("warning: {NO_RULES_WARNING}");
    }
    let mut detectors = Vec::new();
    let mut first_reports = None;
    let intel = dozor_pipeline::intel::IntelHandle::default();
    if config.role.runs_workers() {
        let enricher = match (&config.geoip.city_db, &config.geoip.asn_db) {
            (None, None) => None,
            (city, asn) => Some(Arc::new(dozor_enrich::Enricher::open(
                dozor_enrich::EnrichConfig {
                    city_db: city.clone(),
                    asn_db: asn.clone(),
                    ..Default::default()
                },
            )?)),
        };
        // Indicators: one snapshot for this process's workers, kept current from the store.
        tasks.push(tokio::spawn(crate::intel::refresher(
            store.clone(),
            intel.clone(),
            config.intel.clone(),
            stop_rx.clone(),
        )));
        let options = PipelineOptions {
            alert_window: config.alert_aggregation_window,
            ..PipelineOptions::default()
        };
        // Compiled once: every worker runs the same rules through its own detector (its own
        // correlation state); a compilation per worker multiplied the largest part of RSS.
        let (compiled, reports) = load_detector(&config.rules_dirs);
        first_reports = Some(reports);
        for i in 0..config.workers.max(1) {
            let detector = compiled.another();
            // The in-process queue is shared by its workers; on Redis/NATS each worker is a
            // consumer of its own, with a distinct name.
            let worker_bus = if i == 0 || config.bus == BusConfig::Memory {
                bus.clone()
            } else {
                dozor_bus::connect(&bus_config(&config, &format!("{consumer}-{i}"))).await?
            };
            let worker = Worker::new(
                worker_bus,
                store.clone(),
                enricher.clone(),
                detector,
                options.clone(),
                notices.clone(),
                stats.clone(),
            )
            .with_intel(intel.clone());
            detectors.push(worker.detector());
            let rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move { worker.run(rx).await }));
        }
    }
    tasks.push(tokio::spawn(retention(
        store.clone(),
        config.retention_days,
        stop_rx.clone(),
    )));

    let sink = Arc::new(BusSink::new(bus.clone()));
    tasks.push(tokio::spawn(sink.poll_depth(stop_rx.clone())));
    let reports = match first_reports {
        Some(r) => r,
        None => load_detector(&config.rules_dirs).1,
    };
    let catalog = Arc::new(DirCatalog::new(
        config.rules_dirs.clone(),
        reports,
        detectors,
    ));
    let (agent_notices, _) = tokio::sync::broadcast::channel(1024);
    if config.role.runs_api() {
        tasks.push(tokio::spawn(crate::agents::watch_offline(
            store.clone(),
            config.agents.clone(),
            config.alert_aggregation_window,
            notices.clone(),
            agent_notices.clone(),
            stop_rx.clone(),
        )));
    }
    let api = Arc::new(ApiState {
        store: store.clone(),
        rules: catalog,
        notices,
        pipeline_stats: Some(stats),
        agent_notices,
    });
    let tokens = Arc::new(StoreTokens(store.clone()));
    let services = Services::new(sink, tokens).with_api(api);
    let server = Server::bind(config, services).await?;
    eprintln!("dozor server listening on {}", server.base_url());
    if server.is_tls()
        && let Some(sha) = crate::digest::pem_certificate_sha256(server.ca_certificate_pem())
    {
        eprintln!(
            "CA certificate SHA-256 (agents pin it: dozor-agent enroll --ca-sha256 ...): {sha}"
        );
    }
    let served = server.run(shutdown).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    store.close().await;
    Ok(served?)
}

/// Purges old events and closed alerts once an hour.
async fn retention(store: Arc<dyn Store>, days: u32, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let cutoff = chrono::Utc::now().timestamp_millis() - i64::from(days) * 86_400_000;
        match store.purge_before(cutoff).await {
            Ok(r) => tracing::info!("retention purge: {r:?}"),
            Err(e) => tracing::warn!("retention purge failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Secrets shown once, framed so they stand out in a log.
fn print_once(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let rule = "=".repeat(80);
    eprintln!();
    eprintln!("{rule}");
    eprintln!(" Shown only this once:");
    for line in lines {
        eprintln!("{line}");
    }
    eprintln!("{rule}");
    eprintln!();
}
