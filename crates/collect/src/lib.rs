//! Dozor endpoint telemetry collectors, run by the `dozor-agent` binary.
//!
//! - **process**: process start / end with command line, parent, user and executable SHA-256
//!   (Linux: the netlink process connector, or `/proc` polling; Windows: polling).
//! - **network**: new listening sockets and established connections with the owning process
//!   (polled; on Linux also the kernel's TCP close events, so short connections are seen).
//! - **fim**: file integrity monitoring (create / modify / delete / rename with hashes,
//!   short-lived files included).
//! - **auth**: sshd / sudo / su / session lines from `auth.log`, `secure` or the journal.
//! - [`ResourceSampler`] and [`host_facts`] feed the agent's heartbeats.
//!
//! Every collector runs on its own plain thread and sends ECS-aligned JSON documents (valid
//! against `crates/event/schemas/event.json` once the agent stamps `event.id` where the
//! collector did not and `agent.*`) into a bounded channel; a full channel blocks the collector
//! (back-pressure). See the crate's README for the event shapes and the collection levels.

#[cfg_attr(not(unix), allow(dead_code))]
mod auth;
mod config;
mod ecs;
mod fim;
mod hashing;
mod health;
mod host;
mod network;
mod process;
#[cfg(target_os = "linux")]
mod procfs;
mod resources;
mod shutdown;
mod state;
#[cfg(unix)]
mod users;

use std::path::PathBuf;
use std::thread::JoinHandle;

pub use config::{
    AuthConfig, CollectConfig, ConfigError, DEFAULT_HASH_MAX_BYTES, FimConfig, Level,
    NetworkConfig, NetworkMode, ProcessConfig, ProcessMode,
};
pub use ecs::{EVENT_ID_NAMESPACE, OS_TYPE, event_id_for};
pub use hashing::{sha256_file, sha256_reader};
pub use health::{CollectorState, CollectorStatus, Health};
pub use host::{HostFacts, host_facts};
pub use resources::{
    CpuTimes, DiskUsage, ProcessUsage, ResourceSampler, ResourceUsage, cpu_percent_between,
};
pub use shutdown::Shutdown;

/// Where collectors put events: a bounded channel; `send` blocks when full (back-pressure).
pub type EventSender = crossbeam_channel::Sender<serde_json::Value>;

/// Names of the collectors, as used in [`Health`].
pub const COLLECTORS: [&str; 4] = ["process", "network", "fim", "auth"];

/// What every collector thread gets.
#[derive(Debug, Clone)]
pub struct CollectorContext {
    /// The agent's event queue.
    pub sender: EventSender,
    /// Stops the collectors.
    pub shutdown: Shutdown,
    /// Directory for persisted offsets, cursors and baselines (created if missing).
    pub state_dir: PathBuf,
    /// Where collectors report how they are doing.
    pub health: Health,
}

/// Why the collectors could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("invalid collector configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the {name} collector thread: {source}")]
    Spawn {
        name: &'static str,
        source: std::io::Error,
    },
}

/// Starts every enabled collector on its own thread. Disabled collectors are marked
/// [`CollectorState::Disabled`] in [`Health`]; a collector that fails later is marked
/// [`CollectorState::Failed`] and its thread ends. The threads end after
/// [`Shutdown::trigger`] (or when the receiver of the channel is dropped).
pub fn start(
    config: &CollectConfig,
    ctx: CollectorContext,
) -> Result<Vec<JoinHandle<()>>, CollectError> {
    let settings = config.resolve()?;
    std::fs::create_dir_all(&ctx.state_dir).map_err(|source| CollectError::StateDir {
        path: ctx.state_dir.clone(),
        source,
    })?;
    let mut handles = Vec::new();

    if settings.process.enabled {
        let s = settings.process.clone();
        handles.push(spawn("process", &ctx, move |ctx| process::run(&s, ctx))?);
    } else {
        disabled(&ctx, "process");
    }
    if settings.network.enabled {
        let s = settings.network.clone();
        handles.push(spawn("network", &ctx, move |ctx| network::run(&s, ctx))?);
    } else {
        disabled(&ctx, "network");
    }
    if settings.fim.enabled {
        let s = settings.fim.clone();
        handles.push(spawn("fim", &ctx, move |ctx| fim::run(&s, ctx))?);
    } else {
        disabled(&ctx, "fim");
    }
    if settings.auth.enabled && auth::SUPPORTED {
        let s = settings.auth.clone();
        handles.push(spawn("auth", &ctx, move |ctx| auth::run(&s, ctx))?);
    } else if settings.auth.enabled {
        ctx.health.set(
            "auth",
            CollectorState::Disabled,
            Some("not available on this OS (authentication comes from the event log)".into()),
        );
    } else {
        disabled(&ctx, "auth");
    }
    Ok(handles)
}

fn disabled(ctx: &CollectorContext, name: &str) {
    ctx.health.set(
        name,
        CollectorState::Disabled,
        Some("disabled by configuration or level".into()),
    );
}

/// The result of a collector's run: `Err` is reported as Failed.
pub(crate) type RunResult = Result<(), String>;

fn spawn(
    name: &'static str,
    ctx: &CollectorContext,
    body: impl FnOnce(&CollectorContext) -> RunResult + Send + 'static,
) -> Result<JoinHandle<()>, CollectError> {
    let ctx = ctx.clone();
    ctx.health.set(name, CollectorState::Starting, None);
    std::thread::Builder::new()
        .name(format!("dozor-{name}"))
        .spawn(move || {
            tracing::debug!(collector = name, "started");
            match body(&ctx) {
                Ok(()) => {
                    let message = if ctx.shutdown.is_triggered() {
                        None
                    } else {
                        Some("event receiver closed".to_owned())
                    };
                    ctx.health.set(name, CollectorState::Stopped, message);
                }
                Err(message) => ctx.health.set(name, CollectorState::Failed, Some(message)),
            }
            tracing::debug!(collector = name, "stopped");
        })
        .map_err(|source| CollectError::Spawn { name, source })
}
