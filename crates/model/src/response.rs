//! The response commands (issue 13): what the server asks an agent to do to contain a host,
//! and the arguments of each kind. The server stores a command's `args` as the JSON of these
//! structs; the agent reads them back with serde (`deny_unknown_fields`: a newer server's
//! extra argument is refused by an older agent instead of ignored).
//!
//! Delivery: an online agent keeps `GET /api/v1/agents/commands/next?wait_secs=N` open (a
//! long poll answered as soon as a command is queued, or empty after `N` seconds); heartbeat
//! answers still carry pending commands for agents that don't poll. Delivery is at least
//! once: the agent runs each command id once and reports it with
//! `POST /api/v1/agents/commands/{id}/result`.
//!
//! The agent reports its isolation in every heartbeat as the member `isolation` (an
//! [`IsolationReport`], or `null` when not isolated).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::CommandDelivery;

/// Cut the host off everything but the Dozor server and the allowances.
pub const ISOLATE_HOST: &str = "isolate_host";
/// Remove the isolation.
pub const RELEASE_HOST: &str = "release_host";
/// Kill one process, named by pid and start time.
pub const KILL_PROCESS: &str = "kill_process";
/// Move a file into the agent's quarantine vault.
pub const QUARANTINE_FILE: &str = "quarantine_file";
/// Put a quarantined file back where it was.
pub const RESTORE_FILE: &str = "restore_file";
/// Delete a file (its hash is reported first).
pub const DELETE_FILE: &str = "delete_file";
/// Drop traffic to and from addresses (an nftables set on Linux, a firewall rule on Windows).
pub const BLOCK_IP: &str = "block_ip";
/// Stop dropping traffic to and from addresses.
pub const UNBLOCK_IP: &str = "unblock_ip";
/// Upload a file to the server as a sample.
pub const COLLECT_FILE: &str = "collect_file";

/// Every command kind an agent understands, `scan_path` first.
pub const COMMAND_KINDS: &[&str] = &[
    crate::api::SCAN_PATH,
    ISOLATE_HOST,
    RELEASE_HOST,
    KILL_PROCESS,
    QUARANTINE_FILE,
    RESTORE_FILE,
    DELETE_FILE,
    BLOCK_IP,
    UNBLOCK_IP,
    COLLECT_FILE,
];

/// The kinds that change the host in a way that can hurt production: they need a human's
/// approval unless configured otherwise.
pub const DESTRUCTIVE_COMMAND_KINDS: &[&str] = &[
    ISOLATE_HOST,
    KILL_PROCESS,
    QUARANTINE_FILE,
    DELETE_FILE,
    BLOCK_IP,
];

/// Largest file `collect_file` uploads unless its `max_bytes` says less, bytes.
pub const COLLECT_FILE_MAX_BYTES: u64 = 256 * 1024 * 1024;

fn yes() -> bool {
    true
}

/// `isolate_host`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IsolateHostArgs {
    /// Why (shown on the agent page and in the agent's log).
    #[serde(default)]
    pub reason: String,
    /// Keep the host's DNS resolvers (from its own configuration) reachable.
    #[serde(default = "yes")]
    pub allow_dns: bool,
    /// Keep DHCP working (the host keeps its address).
    #[serde(default = "yes")]
    pub allow_dhcp: bool,
    /// More hosts to keep reachable: addresses, CIDRs or names (resolved before isolating).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Release by itself after this many seconds (none: until released).
    #[serde(default)]
    pub release_after_secs: Option<u64>,
    /// Roll back when the server is not reachable within this many seconds of applying
    /// (default 30).
    #[serde(default)]
    pub check_timeout_secs: Option<u64>,
}

/// `release_host`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseHostArgs {
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `kill_process`: the process is killed only when its start time matches, so a pid the
/// system gave to another process meanwhile is never killed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KillProcessArgs {
    /// The process id.
    pub pid: u32,
    /// When the process started, ms since the Unix epoch, as the agent's process events
    /// report it; matched within [`KILL_START_TIME_TOLERANCE_MS`].
    pub start_time_ms: i64,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// How far a process's start time may be from `start_time_ms` and still match: Windows
/// reports whole seconds, Linux clock ticks.
pub const KILL_START_TIME_TOLERANCE_MS: i64 = 1000;

/// `quarantine_file` and `delete_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    /// An absolute path on the agent's host.
    pub path: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `restore_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RestoreFileArgs {
    /// The id `quarantine_file` reported.
    pub quarantine_id: String,
    /// Replace a file that now exists at the original path (default: refuse).
    #[serde(default)]
    pub overwrite: bool,
}

/// `block_ip` and `unblock_ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BlockIpArgs {
    /// IPv4/IPv6 addresses or CIDRs.
    pub addresses: Vec<String>,
    /// `block_ip` only: unblock by itself after this many seconds (none: until unblocked).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `collect_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CollectFileArgs {
    /// An absolute path on the agent's host.
    pub path: String,
    /// Refuse a larger file (default and largest: [`COLLECT_FILE_MAX_BYTES`]).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// The isolation an agent reports in its heartbeats (`isolation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IsolationReport {
    /// `applying` (the self-check has not succeeded yet) or `isolated`.
    pub phase: String,
    /// The isolating command's id.
    pub command_id: String,
    /// Applied, ms since the Unix epoch.
    pub since_unix_ms: u64,
    /// When it releases itself, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_release_at_unix_ms: Option<u64>,
}

impl IsolationReport {
    /// The isolation a heartbeat document reports (`isolation`), if it is readable.
    pub fn of_heartbeat(heartbeat: Option<&serde_json::Value>) -> Option<IsolationReport> {
        let report = heartbeat?.get("isolation")?;
        if report.is_null() {
            return None;
        }
        IsolationReport::deserialize(report).ok()
    }
}

/// `GET /api/v1/agents/commands/next`: the commands ready for the calling agent (empty when
/// none arrived while it waited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandBatch {
    /// Oldest first.
    pub commands: Vec<CommandDelivery>,
}

/// The result of `quarantine_file`: what the agent's vault keeps about the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineRecord {
    /// The name `restore_file` takes.
    pub quarantine_id: String,
    /// Where the file was.
    pub original_path: String,
    /// Its content's SHA-256, hex.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
    /// Unix: uid and gid; Windows: the owner's SID when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Unix permission bits (e.g. 0o644 as 420).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Quarantined, ms since the Unix epoch.
    pub quarantined_at_unix_ms: u64,
}

/// Parses and checks a command's `args` against its kind: the error says which argument and
/// why, for the API's 422 and the agent's `failed` result alike.
pub fn check_command_args(kind: &str, args: &serde_json::Value) -> Result<(), String> {
    fn parse<T: serde::de::DeserializeOwned>(args: &serde_json::Value) -> Result<T, String> {
        T::deserialize(args).map_err(|e| e.to_string())
    }
    fn absolute(path: &str) -> Result<(), String> {
        let b = path.as_bytes();
        let ok = path.starts_with('/')
            || (b.len() >= 3
                && b[0].is_ascii_alphabetic()
                && b[1] == b':'
                && matches!(b[2], b'\\' | b'/'));
        if !ok || path.contains('\0') || path.chars().count() > 4096 {
            return Err(format!(
                "path {path:?} must be absolute (/… or C:\\…), without NUL, at most 4096 characters"
            ));
        }
        Ok(())
    }
    match kind {
        crate::api::SCAN_PATH => absolute(&parse::<crate::api::ScanPathArgs>(args)?.path),
        ISOLATE_HOST => {
            let a: IsolateHostArgs = parse(args)?;
            if a.allow_hosts.len() > 64 {
                return Err("allow_hosts: at most 64 entries".into());
            }
            if a.allow_hosts
                .iter()
                .any(|h| h.trim().is_empty() || h.len() > 253)
            {
                return Err("allow_hosts: entries must be non-empty, at most 253 bytes".into());
            }
            Ok(())
        }
        RELEASE_HOST => parse::<ReleaseHostArgs>(args).map(drop),
        KILL_PROCESS => {
            let a: KillProcessArgs = parse(args)?;
            if a.pid == 0 || a.start_time_ms <= 0 {
                return Err("pid and start_time_ms must be positive".into());
            }
            Ok(())
        }
        QUARANTINE_FILE | DELETE_FILE => absolute(&parse::<FileArgs>(args)?.path),
        RESTORE_FILE => {
            let a: RestoreFileArgs = parse(args)?;
            if a.quarantine_id.is_empty()
                || a.quarantine_id.len() > 128
                || !a
                    .quarantine_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err("quarantine_id: 1–128 letters, digits, '-' or '_'".into());
            }
            Ok(())
        }
        BLOCK_IP | UNBLOCK_IP => {
            let a: BlockIpArgs = parse(args)?;
            if a.addresses.is_empty() || a.addresses.len() > 1024 {
                return Err("addresses: 1–1024 addresses or CIDRs".into());
            }
            for address in &a.addresses {
                let (ip, prefix) = match address.split_once('/') {
                    Some((ip, p)) => (ip, Some(p)),
                    None => (address.as_str(), None),
                };
                let ip: std::net::IpAddr = ip
                    .trim()
                    .parse()
                    .map_err(|_| format!("addresses: {address:?} is not an IP address or CIDR"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if let Some(p) = prefix
                    && !p.parse::<u8>().is_ok_and(|p| p <= max)
                {
                    return Err(format!("addresses: {address:?} has a bad prefix length"));
                }
            }
            Ok(())
        }
        COLLECT_FILE => {
            let a: CollectFileArgs = parse(args)?;
            if a.max_bytes == Some(0) {
                return Err("max_bytes must be positive".into());
            }
            absolute(&a.path)
        }
        other => Err(format!(
            "unknown command kind {other:?}; known: {}",
            COMMAND_KINDS.join(", ")
        )),
    }
}

/// A fresh quarantine id.
pub fn new_quarantine_id() -> String {
    Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_checks_its_arguments() {
        assert!(check_command_args(ISOLATE_HOST, &json!({})).is_ok());
        assert!(check_command_args(ISOLATE_HOST, &json!({"bogus": 1})).is_err());
        assert!(check_command_args(KILL_PROCESS, &json!({"pid": 4})).is_err());
        assert!(check_command_args(KILL_PROCESS, &json!({"pid": 4, "start_time_ms": 1})).is_ok());
        assert!(check_command_args(QUARANTINE_FILE, &json!({"path": "rel/x"})).is_err());
        assert!(check_command_args(QUARANTINE_FILE, &json!({"path": "C:\\x"})).is_ok());
        assert!(check_command_args(RESTORE_FILE, &json!({"quarantine_id": "../x"})).is_err());
        assert!(check_command_args(BLOCK_IP, &json!({"addresses": ["10.0.0.0/33"]})).is_err());
        assert!(check_command_args(BLOCK_IP, &json!({"addresses": ["10.0.0.0/8", "::1"]})).is_ok());
        assert!(check_command_args(COLLECT_FILE, &json!({"path": "/etc/passwd"})).is_ok());
        let unknown = check_command_args("format_disk", &json!({})).unwrap_err();
        assert!(unknown.contains("isolate_host"), "{unknown}");
    }
}
