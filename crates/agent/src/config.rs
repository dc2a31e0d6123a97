//! The agent's configuration file (TOML). Every key is optional; `dozor-agent print-config`
//! prints them all with their defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Where the configuration file is looked for when `--config` is not given.
pub fn default_config_path() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\Dozor\agent.toml")
    } else {
        PathBuf::from("/etc/dozor-agent/agent.toml")
    }
}

/// Where the agent keeps its identity, spool and collector state by default.
pub fn default_state_dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(r"C:\ProgramData\Dozor\agent")
    } else {
        PathBuf::from("/var/lib/dozor-agent")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Identity (key 0600, certificate, pinned CA), spool and collector state live here.
    pub state_dir: PathBuf,
    /// Log filter (error, warn, info, debug; or tracing directives).
    pub log: String,
    pub transport: TransportConfig,
    pub spool: SpoolConfig,
    /// Collectors (see the dozor-collect README for every key).
    pub collect: dozor_collect::CollectConfig,
    /// Scanning of changed files, new processes' executables and scan-path commands.
    pub scan: crate::scanner::ScanConfig,
    /// Response commands (isolate, kill, quarantine, block, collect) and their delivery.
    pub response: crate::response::ResponseConfig,
    /// The software inventory reported to the server.
    pub inventory: crate::inventory::InventoryConfig,
    pub windows: WindowsConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state_dir: default_state_dir(),
            log: "info".to_owned(),
            transport: TransportConfig::default(),
            spool: SpoolConfig::default(),
            collect: dozor_collect::CollectConfig::default(),
            scan: crate::scanner::ScanConfig::default(),
            response: crate::response::ResponseConfig::default(),
            inventory: crate::inventory::InventoryConfig::default(),
            windows: WindowsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Most events in one batch.
    pub batch_max_events: usize,
    /// A batch is sent at the latest this long after its first event (milliseconds).
    pub batch_max_delay_ms: u64,
    /// zstd level (1 fast … 19 small); 0 sends uncompressed.
    pub zstd_level: i32,
    /// How batches are written on the wire (the server takes both; docs/benchmarks.md
    /// "bench/wire" has the trade-off).
    pub format: WireFormat,
    /// First retry delay after a failed send (milliseconds); doubles up to `max_backoff_secs`,
    /// with ±50 % jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_secs: u64,
    /// Connect / response timeouts (seconds).
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    /// Heartbeat interval until the server says otherwise (seconds).
    pub heartbeat_interval_secs: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            batch_max_events: 500,
            batch_max_delay_ms: 1000,
            zstd_level: 3,
            format: WireFormat::Json,
            initial_backoff_ms: 500,
            max_backoff_secs: 60,
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
            heartbeat_interval_secs: 30,
        }
    }
}

/// The body of an event batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// NDJSON, as spooled.
    Json,
    /// A protobuf `EventBatch` (crates/wire): smaller after zstd and cheaper for the server to
    /// read, dearer for the agent to write (each spooled line is parsed and converted).
    Protobuf,
}

impl TransportConfig {
    pub fn batch_max_delay(&self) -> Duration {
        Duration::from_millis(self.batch_max_delay_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Most bytes kept on disk while the server is unreachable; beyond it the oldest events
    /// are dropped (counted and reported in heartbeats).
    pub max_bytes: u64,
    /// Size of one spool segment file.
    pub segment_bytes: u64,
    /// fsync after every write batch (`always`), or leave it to the OS (`never`, faster; a
    /// power loss may lose the last seconds).
    pub fsync: String,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            fsync: "always".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowsConfig {
    /// Subscribe to the Windows Event Log (Sysmon, Security, System, PowerShell).
    pub eventlog: bool,
    /// Extra `channel = "XPath query"` subscriptions besides the built-in ones.
    pub extra_queries: std::collections::BTreeMap<String, String>,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig {
            eventlog: true,
            extra_queries: Default::default(),
        }
    }
}

impl AgentConfig {
    /// Reads the file; a missing file is the defaults only when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<AgentConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(AgentConfig::default());
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let config: AgentConfig = toml::from_str(&text)
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let t = &self.transport;
        if t.batch_max_events == 0 || t.batch_max_events > 10_000 {
            bail!(
                "transport.batch_max_events must be 1..=10000 (the server's default batch limit)"
            );
        }
        if t.heartbeat_interval_secs == 0 {
            bail!("transport.heartbeat_interval_secs must be at least 1");
        }
        if !(0..=19).contains(&t.zstd_level) {
            bail!("transport.zstd_level must be 0..=19");
        }
        if self.spool.max_bytes < 2 * self.spool.segment_bytes || self.spool.segment_bytes < 4096 {
            bail!("spool.max_bytes must be at least twice spool.segment_bytes (>= 4096)");
        }
        if !matches!(self.spool.fsync.as_str(), "always" | "never") {
            bail!("spool.fsync must be \"always\" or \"never\"");
        }
        self.scan.validate()?;
        self.response.validate()?;
        self.inventory.validate()?;
        Ok(())
    }

    pub fn identity_dir(&self) -> PathBuf {
        self.state_dir.join("identity")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    pub fn collector_state_dir(&self) -> PathBuf {
        self.state_dir.join("collectors")
    }

    pub fn scan_state_dir(&self) -> PathBuf {
        self.state_dir.join("scan")
    }

    pub fn status_file(&self) -> PathBuf {
        self.state_dir.join("status.json")
    }
}

/// A reference configuration with every key at its default.
pub const REFERENCE: &str = r#"# dozor-agent configuration. Every key is optional; shown with its default.

# Identity (key 0600, certificate, pinned CA), spool and collector state.
# state_dir = "/var/lib/dozor-agent"        (Windows: C:\ProgramData\Dozor\agent)
log = "info"

[transport]
batch_max_events = 500        # most events per batch
batch_max_delay_ms = 1000     # a batch leaves at the latest this long after its first event
zstd_level = 3                # 0 = uncompressed
format = "json"               # or "protobuf": the same events as a protobuf EventBatch (crates/wire)
initial_backoff_ms = 500      # first retry delay; doubles (with jitter) up to max_backoff_secs
max_backoff_secs = 60
connect_timeout_secs = 10
request_timeout_secs = 60
heartbeat_interval_secs = 30  # until the server says otherwise

[spool]
max_bytes = 268435456         # 256 MiB on disk while the server is unreachable; oldest dropped beyond
segment_bytes = 8388608
fsync = "always"              # or "never"

[collect]
level = "standard"            # minimal | standard | detailed
# [collect.process] / [collect.network] / [collect.fim] / [collect.auth]: see crates/collect/README.md
# [collect.fim]
# paths = ["/etc", "/usr/bin"]

[scan]
enabled = true
on_file_change = true          # files the FIM collector reports created / modified / renamed
on_process_start = true        # the executable of every new process (verdicts cached by SHA-256)
# yara_rules_dir = "/etc/dozor-agent/yara"   # local rules (*.yar, *.yara), besides the server's
server_rules = true            # fetch and run the YARA rules managed on the server
# clamd = "unix:/run/clamav/clamd.ctl"       # or "tcp:127.0.0.1:3310"; unset = no ClamAV
known_bad = []                 # hash list files: one SHA-256 / SHA-1 / MD5 per line, optional name
known_good = []                # files on this list are not given to YARA / ClamAV
max_file_bytes = 33554432      # 32 MiB; larger files are not scanned
yara_timeout_secs = 10
cpu_budget_percent = 10        # average share of one core scanning may use
upload_hashes = true           # hashes of scanned files in scan events
upload_samples = "off"         # off | detected | unknown: send files to the server for its scan
max_sample_bytes = 16777216    # 16 MiB
cache_entries = 8192           # verdicts remembered by SHA-256
queue = 1024                   # files waiting; beyond it requests are dropped (counted)

[response]
enabled = true                 # run response commands; false refuses all but release_host
long_poll = true               # keep GET /api/v1/agents/commands/next open (else heartbeats only)
long_poll_wait_secs = 25
# quarantine_dir = "/var/lib/dozor-agent/quarantine"   # default <state_dir>/quarantine (0700)

[inventory]
enabled = true                 # report the installed packages (dpkg / rpm / Windows uninstall keys)
interval_secs = 3600           # how often they are read again (>= 60); sent only when changed

[windows]
eventlog = true               # Sysmon, Security (4624 4625 4688 4720 4732 1102), System 7045, PowerShell 4104
# [windows.extra_queries]
# "Microsoft-Windows-TaskScheduler/Operational" = "*[System[(EventID=106)]]"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_parses_to_defaults() {
        let parsed: AgentConfig = toml::from_str(REFERENCE).unwrap();
        parsed.validate().unwrap();
        let d = AgentConfig::default();
        assert_eq!(
            parsed.transport.batch_max_events,
            d.transport.batch_max_events
        );
        assert_eq!(parsed.spool.max_bytes, d.spool.max_bytes);
        assert_eq!(parsed.inventory.enabled, d.inventory.enabled);
        assert_eq!(parsed.inventory.interval_secs, d.inventory.interval_secs);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<AgentConfig>("[transport]\nbatch_size = 5\n").unwrap_err();
        assert!(e.to_string().contains("batch_size"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "[spool]\nfsync = \"sometimes\"\n").unwrap();
        let e = AgentConfig::load(&p, true).unwrap_err();
        assert!(format!("{e:#}").contains("spool.fsync"), "{e:#}");
        std::fs::write(&p, "[inventory]\ninterval_secs = 10\n").unwrap();
        let e = AgentConfig::load(&p, true).unwrap_err();
        assert!(
            format!("{e:#}").contains("inventory.interval_secs"),
            "{e:#}"
        );
        assert!(AgentConfig::load(&dir.path().join("none.toml"), true).is_err());
        assert!(AgentConfig::load(&dir.path().join("none.toml"), false).is_ok());
    }
}
