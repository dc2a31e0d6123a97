//! The Dozor server library: what `dozor server` runs.
//!
//! - [`config`]: the configuration (TOML file, `DOZOR_*` variables, `--role` and other
//!   options), every key documented in [`config::KEYS`];
//! - [`pki`]: the built-in CA and the server certificate, persisted in the data directory;
//! - [`Server`]: HTTPS (rustls with ring) serving the API with axum;
//! - [`ingest`]: `POST /api/v1/ingest` (JSON / NDJSON, gzip / zstd, per-event JSON Schema
//!   validation, agent identity from the credential, back-pressure) and
//!   `POST /api/v1/ingest/evtx` (EVTX / event XML through `dozor-decode`, see [`winlog`]);
//! - [`schema`]: the normalized event JSON Schema and its validator;
//! - [`api`]: the operator REST API under `/api/v1/` (events search and histogram, alerts and
//!   their workflow, the live alert stream (SSE), rules, stats) over the store, the rule
//!   catalog and the pipeline's alert notices, given as an [`ApiState`];
//! - [`scan`]: file scanning — the YARA rule directory (managed through `/api/v1/yara/rules`,
//!   served to agents) and samples uploaded by agents, scanned with hash lists, YARA and clamd;
//! - health (`/healthz`, `/readyz`), [`metrics`] (`/metrics`), [`openapi`]
//!   (`/api/v1/openapi.json`), errors as [`Problem`] (`application/problem+json`).
//!
//! The queue and the credential store plug in through two traits: [`IngestSink`] and
//! [`TokenVerifier`] ([`MemorySink`] and [`StaticTokens`] are in-memory implementations).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use dozor_server::{Config, MemorySink, Server, ServerArgs, Services, StaticTokens};
//!
//! let config = Config::load(&ServerArgs::default(), std::env::vars())?;
//! let sink = Arc::new(MemorySink::new(config.limits.queue_capacity));
//! let server = Server::bind(config, Services::new(sink, Arc::new(StaticTokens::new()))).await?;
//! println!("listening on {}", server.base_url());
//! server.run(dozor_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

pub mod anomaly;
pub mod api;
mod app;
mod audit;
pub mod auth;
mod blocking_body;
mod boxed;
pub mod compose;
pub mod config;
pub mod digest;
pub mod disk_quota;
pub mod ingest;
pub mod intel;
mod login_throttle;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pki;
pub mod problem;
mod problem_responses;
pub mod process_tree;
pub mod response;
pub mod scan;
pub mod schema;
mod server;
pub mod sink;
pub mod slow_clients;
mod state;
mod tls;
mod ui;
mod unread_body;
pub mod vulns;
pub use dozor_decode::winlog;

pub mod agents;
pub mod password;
pub mod session;
pub use api::{ApiState, ReloadReport, RuleCatalog, RuleInfo};
pub use app::{EVTX_DECODERS, Health, ROUTES, Readiness, ReadinessCheck, Route};
pub use auth::{
    Identity, Role as AccessRole, StaticTokens, StoreTokens, TokenVerifier, VerifierError,
};
pub use compose::{RunError, run};
pub use config::{AgentsConfig, Config, ConfigError, ProcessRole, ServerArgs};
pub use ingest::{IngestReport, Rejection};
pub use metrics::{Metrics, MetricsBuilder};
pub use problem::{Problem, ProblemDocument};
pub use server::{ConnectionInfo, Server, ServerError, Services, shutdown_signal};
pub use sink::{
    BoxFuture, IngestBatch, IngestEvent, IngestSink, MemorySink, SinkError, SubmitOutcome,
};
