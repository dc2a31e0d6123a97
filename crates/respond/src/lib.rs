//! The agent's response actions. First: host isolation — a firewall policy that cuts the host
//! off everything but the Dozor server and named allowances, checked after applying (rolled
//! back by itself when the server is unreachable), persisted across restarts and reboots, and
//! reported in heartbeats. Linux uses one nftables table ([`nft`]); Windows the Windows
//! Firewall through `netsh advfirewall` ([`netsh`]).
//!
//! See the crate README for the ruleset, the rollback rule and the state file.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub mod block;
mod command;
pub mod isolation;
pub mod netsh;
pub mod nft;
pub mod policy;
pub mod process;
pub mod quarantine;

pub use isolation::{
    IsolateCommand, IsolationPhase, IsolationState, Isolator, ReachabilityProbe, ResumeOutcome,
    SelfCheck, TcpProbe,
};
pub use policy::{
    Allowances, Cidr, IsolationPolicy, IsolationSpec, resolve_host, resolve_policy,
    resolvers_from_resolv_conf,
};

/// Applies and removes an isolation policy on one platform's firewall. Both operations must be
/// idempotent: applying twice leaves one isolation, removing when nothing is applied succeeds.
pub trait FirewallBackend: Send + Sync {
    fn apply(
        &self,
        policy: &IsolationPolicy,
    ) -> impl Future<Output = Result<(), RespondError>> + Send;
    fn remove(&self) -> impl Future<Output = Result<(), RespondError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: String },
    #[error("invalid isolation policy: {0}")]
    InvalidPolicy(String),
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("isolation state file {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    /// The server was not reachable after applying the isolation, which was removed again.
    #[error(
        "the server was unreachable for {waited:?} after isolating; the isolation was rolled back"
    )]
    RolledBack { waited: Duration },
    /// As [`RespondError::RolledBack`], but removing the isolation failed too: the host may still
    /// be isolated and unable to reach the server.
    #[error(
        "the server was unreachable for {waited:?} after isolating and the rollback failed: {rollback}"
    )]
    RollbackFailed { waited: Duration, rollback: String },
    /// The action was refused (a protected pid or file, a directory, a symlink, …): why.
    #[error("refused: {0}")]
    Refused(String),
    /// Not implemented on this platform.
    #[error("{0}")]
    Unsupported(String),
    #[error("no process with pid {pid}")]
    ProcessNotFound { pid: u32 },
    /// The pid names another process than the one meant: nothing was killed.
    #[error(
        "pid {pid} ({name}) started at {actual_ms} ms, not at {wanted_ms} ms: another process; not killed"
    )]
    ProcessMismatch {
        pid: u32,
        name: String,
        actual_ms: i64,
        wanted_ms: i64,
    },
    /// A file operation failed: on what, and why.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl RespondError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
