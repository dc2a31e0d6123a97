//! Binding and serving: HTTPS (tokio-rustls + hyper-util) by default, plain HTTP only when
//! TLS is switched off explicitly; graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::{self, AppState, EVTX_DECODERS, ReadinessCheck};
use crate::auth::TokenVerifier;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pki::{self, PkiError};
use crate::schema::EventValidator;
use crate::sink::IngestSink;
use crate::slow_clients::{BodyDeadline, ConnectionLimiter, DeadlineBody};
use crate::state::ApiState;

/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers must arrive within this time (HTTP/1).
/// Open connections get this long to finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the server needs from the rest of Dozor.
pub struct Services {
    /// Where validated events go (the queue).
    pub sink: Arc<dyn IngestSink>,
    /// Checks bearer tokens.
    pub tokens: Arc<dyn TokenVerifier>,
    /// Extra `/readyz` checks.
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// Metrics; register your own with [`Metrics::builder`] first.
    pub metrics: Metrics,
    /// The operator API's store, rules and alert notices; `None`: its routes answer 503.
    pub api: Option<Arc<ApiState>>,
}

impl Services {
    pub fn new(sink: Arc<dyn IngestSink>, tokens: Arc<dyn TokenVerifier>) -> Services {
        Services {
            sink,
            tokens,
            readiness: Vec::new(),
            metrics: Metrics::default(),
            api: None,
        }
    }

    /// Attaches the operator API.
    pub fn with_api(mut self, api: Arc<ApiState>) -> Services {
        self.api = Some(api);
        self
    }
}

pub use crate::state::ConnectionInfo;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("event schema: {0}")]
    Schema(String),
    #[error("startup task failed: {0}")]
    Task(String),
    #[error("file scanning: {0}")]
    Scan(#[from] crate::scan::ScanSetupError),
    #[error("response: {0}")]
    Response(#[from] crate::response::ResponseSetupError),
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    local_addr: SocketAddr,
    ca_pem: Arc<str>,
    accepting: Arc<AtomicBool>,
    closing: watch::Sender<bool>,
    config: Config,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn prepare_data_dir(config: &Config) -> Result<(), ServerError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| ServerError::DataDir { path, source }
    };
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    // On every start, not only when created: a directory made by hand (or by an older
    // version) with the umask's 0755 would let other local users read the database.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err(dir))?;
    }
    let tmp = config.tmp_dir();
    std::fs::create_dir_all(&tmp).map_err(err(&tmp))?;
    // Spool files left behind by a crash.
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("upload-") && name.ends_with(".spool") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

impl Server {
    /// Prepares the data directory and the PKI, and binds the listener.
    pub async fn bind(config: Config, services: Services) -> Result<Server, ServerError> {
        let setup_config = config.clone();
        let (pki, validator, scan) = tokio::task::spawn_blocking(move || {
            let config = setup_config;
            prepare_data_dir(&config)?;
            let own = match (&config.tls.cert_file, &config.tls.key_file) {
                (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                _ => None,
            };
            let pki = pki::load_or_create(
                &config.pki_dir(),
                config.tls.enabled,
                &config.tls.hostnames,
                config.tls.server_cert_days,
                own,
            )?;
            let validator = EventValidator::new().map_err(ServerError::Schema)?;
            // Samples and YARA rules are for the processes agents and operators talk to.
            let scan = if config.role != crate::config::ProcessRole::Worker {
                Some(Arc::new(crate::scan::ScanService::start(&config.scan)?))
            } else {
                None
            };
            Ok::<_, ServerError>((pki, validator, scan))
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))??;

        let has_tls = pki.server.is_some();
        let tls = match pki.server {
            Some(server) => Some(TlsAcceptor::from(crate::tls::server_config(
                server, &pki.ca,
            )?)),
            None => {
                tracing::warn!(
                    "!!! TLS IS OFF: serving plain HTTP on {}. Tokens and events cross the network in clear text and can be read or forged. Use this only on a loopback address or behind a TLS-terminating proxy. !!!",
                    config.listen
                );
                None
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let ca = Arc::new(pki.ca);
        let ca_pem: Arc<str> = Arc::from(ca.cert_pem());
        // Agents authenticate with client certificates, so enrollment needs TLS (and a store).
        let agents = match (&services.api, has_tls) {
            (Some(api), true) => Some(Arc::new(crate::agents::AgentRegistry::new(
                api.store.clone(),
                api.agent_notices.clone(),
                crate::agents::AlertSink {
                    notices: api.notices.clone(),
                    window: config.alert_aggregation_window,
                },
                ca.clone(),
                config.agents.clone(),
            ))),
            _ => None,
        };
        let accepting = Arc::new(AtomicBool::new(false));
        let (closing, closing_rx) = watch::channel(false);
        if let Some(scan) = &scan {
            tokio::spawn(crate::scan::watch_rules(
                Arc::downgrade(scan),
                closing_rx.clone(),
            ));
            tokio::spawn(crate::scan::sweep_samples(
                Arc::downgrade(scan),
                closing_rx.clone(),
            ));
        }
        // Playbooks and approvals: wherever the API's store is.
        let response = match &services.api {
            Some(api) => {
                let scheme = if has_tls { "https" } else { "http" };
                let service = crate::response::ResponseService::start(
                    api.store.clone(),
                    config.response.clone(),
                    config.notify.clone(),
                    format!("{scheme}://{local_addr}"),
                )
                .await?;
                if config.role == crate::config::ProcessRole::All {
                    service.interrupt_leftovers().await;
                }
                tokio::spawn(crate::response::run_triggers(
                    service.clone(),
                    api.notices.subscribe(),
                    closing_rx.clone(),
                ));
                Some(service)
            }
            None => None,
        };
        // Threat intelligence: sources, syncs, retro-hunts, sightings (wherever the API's store
        // is; the pipeline's matcher is kept current by each worker process).
        let intel = services.api.as_ref().map(|api| {
            let service = crate::intel::IntelService::new(
                api.store.clone(),
                config.intel.clone(),
                config.alert_aggregation_window,
                api.notices.clone(),
            );
            tokio::spawn(crate::intel::run_background(
                service.clone(),
                closing_rx.clone(),
            ));
            // The agents' known-bad hash rule, kept in the YARA rule directory.
            if let Some(scan) = &scan {
                tokio::spawn(crate::intel::hash_rules::keep_current(
                    api.store.clone(),
                    Arc::downgrade(scan),
                    config.intel.refresh,
                    closing_rx.clone(),
                ));
            }
            service
        });
        // Vulnerability management: report imports, inventories, scan jobs.
        let vulns = services.api.as_ref().map(|api| {
            let service = crate::vulns::VulnService::new(
                api.store.clone(),
                config.vulns.clone(),
                config.alert_aggregation_window,
                api.notices.clone(),
            );
            tokio::spawn(crate::vulns::run_background(
                service.clone(),
                closing_rx.clone(),
            ));
            tokio::spawn(crate::vulns::jobs::run_jobs(
                service.clone(),
                closing_rx.clone(),
            ));
            service
        });
        // Behavioural analytics: trained on and scoring the API's store.
        let anomaly = services.api.as_ref().map(|api| {
            let service = crate::anomaly::AnomalyService::new(
                api.store.clone(),
                config.anomaly.clone(),
                config.alert_aggregation_window,
                api.notices.clone(),
            );
            tokio::spawn(crate::anomaly::run_background(
                service.clone(),
                closing_rx.clone(),
            ));
            service
        });
        let state = Arc::new(AppState {
            limits: config.limits,
            role: config.role,
            sink: services.sink,
            tokens: services.tokens,
            validator: Arc::new(validator),
            metrics: services.metrics,
            ca_pem: ca_pem.clone(),
            tmp_dir: config.tmp_dir(),
            evtx_permits: Arc::new(Semaphore::new(EVTX_DECODERS)),
            evtx_scratch: crate::disk_quota::DiskQuota::new(
                "limits.evtx_scratch_bytes",
                "EVTX uploads under way",
                &config.tmp_dir(),
                config.limits.evtx_scratch_bytes,
            ),
            parse_permits: Arc::new(Semaphore::new(crate::ingest::parse_capacity(
                config.limits.ingest_parse_bytes,
            ))),
            readiness: services.readiness,
            accepting: accepting.clone(),
            openapi: Arc::from(crate::openapi::document().to_string()),
            api: services.api,
            agents,
            tls: has_tls,
            login_throttle: Default::default(),
            closing: closing_rx,
            scan,
            response,
            intel,
            vulns,
            anomaly,
        });
        Ok(Server {
            listener,
            tls,
            router: app::router(state),
            local_addr,
            ca_pem,
            accepting,
            closing,
            config,
        })
    }

    /// The address bound (with the real port when the configuration said `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Is the server speaking HTTPS?
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.is_tls() { "https" } else { "http" },
            self.local_addr
        )
    }

    /// The built-in CA's certificate (PEM), for clients to pin.
    pub fn ca_certificate_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves until `shutdown` completes, then stops accepting and gives open connections
    /// a grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let Server {
            listener,
            tls,
            router,
            local_addr,
            accepting,
            closing,
            config,
            ..
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_timeout);
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        tracing::info!(
            addr = %local_addr,
            role = %config.role,
            tls = tls.is_some(),
            "dozor server listening"
        );
        let connections = ConnectionLimiter::new(&config.limits);
        let body_deadline = BodyDeadline::from_limits(&config.limits);
        accepting.store(true, Ordering::SeqCst);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Out of file descriptors and the like: wait instead of spinning.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    // Over the caps the connection is closed at once: answering would cost
                    // what the caps are there to bound.
                    let slot = match connections.admit(peer.ip()) {
                        Ok(slot) => slot,
                        Err(refused) => {
                            tracing::debug!(%peer, ?refused, "connection refused: too many open");
                            drop(stream);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let tls = tls.clone();
                    let router = router.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let _slot = slot;
                        let mut info = ConnectionInfo { peer, client_certificates: Vec::new() };
                        match tls {
                            Some(acceptor) => {
                                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => stream,
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                        return;
                                    }
                                };
                                if let Some(certs) = stream.get_ref().1.peer_certificates() {
                                    info.client_certificates = certs.to_vec();
                                }
                                serve_connection(&builder, watcher, stream, router, info, body_deadline).await;
                            }
                            None => serve_connection(&builder, watcher, stream, router, info, body_deadline).await,
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        accepting.store(false, Ordering::SeqCst);
        // Live streams (SSE) end now, so their connections can close gracefully.
        closing.send_replace(true);
        drop(listener);
        tracing::info!("shutting down: waiting for open connections");
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open after {}s; closing",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        Ok(())
    }
}

async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    router: Router,
    info: ConnectionInfo,
    body_deadline: BodyDeadline,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = info.peer;
    let service = TowerToHyperService::new(router.map_request(
        move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(info.clone());
            request.map(|body| DeadlineBody::new(body, body_deadline))
        },
    ));
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Completes on Ctrl-C or (Unix) SIGTERM: pass it to [`Server::run`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
