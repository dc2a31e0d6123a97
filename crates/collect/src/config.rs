//! Collector configuration (the `[collect]` part of the agent's TOML file).
//!
//! Every key is optional. Keys whose default depends on the collection level are `Option`s:
//! leave them out to get the level's value, set them to override it. [`CollectConfig::resolve`]
//! turns the file's view into the effective settings the collectors run with.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// 64 MiB: files (executables, watched files) larger than this are not hashed by default.
pub const DEFAULT_HASH_MAX_BYTES: u64 = 64 << 20;

/// How much the agent collects.
///
/// | | minimal | standard | detailed |
/// |---|---|---|---|
/// | process start | yes | yes | yes |
/// | process end | – | yes | yes |
/// | executable SHA-256 | – | yes | yes |
/// | /proc poll interval (fallback) | 1 s | 1 s | 500 ms |
/// | network listeners / connections | – | every 5 s | every 2 s |
/// | socket close events | – | – | yes |
/// | FIM (create/modify/delete/rename, hashes) | yes | yes | yes |
/// | FIM initial scan reporting changes made while the agent was down | – | – | yes |
/// | auth log | yes | yes | yes |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Minimal,
    #[default]
    Standard,
    Detailed,
}

/// Collector settings. `#[serde(default)]`: an empty table gives the defaults below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// Collection level: `minimal`, `standard` or `detailed`. Default: `standard`.
    pub level: Level,
    /// Process start/stop collector.
    pub process: ProcessConfig,
    /// Listening ports and connections collector.
    pub network: NetworkConfig,
    /// File integrity monitoring.
    pub fim: FimConfig,
    /// Authentication log collector (Linux).
    pub auth: AuthConfig,
}

/// How process events are observed on Linux.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessMode {
    /// The netlink process connector when it works (root, initial PID namespace), else polling.
    #[default]
    Auto,
    /// The netlink process connector only (the collector fails without it).
    Netlink,
    /// Poll `/proc` (misses processes shorter than the poll interval).
    Poll,
}

/// `[collect.process]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessConfig {
    /// On or off. Default: on at every level.
    pub enabled: Option<bool>,
    /// `auto` (netlink connector, falling back to polling), `netlink` or `poll`. Default `auto`.
    /// Windows always polls.
    pub mode: ProcessMode,
    /// Poll interval in milliseconds when polling. Default: 1000 (minimal, standard), 500
    /// (detailed).
    pub poll_interval_ms: Option<u64>,
    /// Report process end events. Default: off at minimal, on otherwise.
    pub report_end: Option<bool>,
    /// SHA-256 of executables (`process.hash.sha256`), cached by file identity. Default: off at
    /// minimal, on otherwise.
    pub hash: Option<bool>,
    /// Executables larger than this many bytes are not hashed. Default: 67108864 (64 MiB).
    pub hash_max_bytes: u64,
    /// Executables whose path matches one of these globs (e.g. `/usr/lib/*/sd-*`, `**/cron`;
    /// `*` also matches `/`) are not reported. Default: none.
    pub exclude_executables: Vec<String>,
    /// Report the processes the agent itself starts (its `journalctl` follower). Default: false.
    pub include_agent_children: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            enabled: None,
            mode: ProcessMode::Auto,
            poll_interval_ms: None,
            report_end: None,
            hash: None,
            hash_max_bytes: DEFAULT_HASH_MAX_BYTES,
            exclude_executables: Vec::new(),
            include_agent_children: false,
        }
    }
}

/// How connections are observed on Linux.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Kernel socket events (netlink `sock_diag` TCP destroy multicast) on top of polling when
    /// they work (root / `CAP_NET_ADMIN`), else polling only.
    #[default]
    Auto,
    /// Kernel socket events on top of polling; the collector fails without them.
    Netlink,
    /// Poll the socket tables only (misses connections shorter than the poll interval).
    Poll,
}

/// `[collect.network]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// On or off. Default: off at minimal, on otherwise.
    pub enabled: Option<bool>,
    /// `auto` (kernel TCP close events plus polling, falling back to polling only), `netlink`
    /// or `poll`. Default `auto`. Windows always polls.
    pub mode: NetworkMode,
    /// Poll interval in milliseconds. Default: 5000 (standard), 2000 (detailed).
    pub poll_interval_ms: Option<u64>,
    /// Report new listening sockets (TCP listen, bound unconnected UDP). Default: true.
    pub listeners: bool,
    /// Report new established connections (TCP established, connected UDP). Default: true.
    pub connections: bool,
    /// Report sockets that went away (event.type end). Default: on at detailed only.
    pub report_close: Option<bool>,
    /// Report connections whose both ends are loopback addresses. Default: true.
    pub include_loopback: bool,
    /// Sockets owned by executables matching these globs are not reported. Default: none.
    pub exclude_executables: Vec<String>,
    /// Sockets whose local port is one of these are not reported. Default: none.
    pub exclude_ports: Vec<u16>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: None,
            mode: NetworkMode::Auto,
            poll_interval_ms: None,
            listeners: true,
            connections: true,
            report_close: None,
            include_loopback: true,
            exclude_executables: Vec::new(),
            exclude_ports: Vec::new(),
        }
    }
}

/// `[collect.fim]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FimConfig {
    /// On or off. Default: on at every level.
    pub enabled: Option<bool>,
    /// Files and directories to watch. Paths that do not exist are skipped (and reported in
    /// health when none exists). Default on Linux: `/etc`, `/usr/bin`, `/usr/sbin`,
    /// `/usr/local/bin`, `/usr/local/sbin`, `/root/.ssh`; on Windows:
    /// `C:\Windows\System32\drivers\etc`, `C:\ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp`.
    pub paths: Vec<PathBuf>,
    /// Watch directories recursively. Default: true.
    pub recursive: bool,
    /// Paths matching one of these globs are ignored. Default: editor temporaries
    /// (`**/*.swp`, `**/*.swx`, `**/*~`, `**/.#*`, `**/4913`).
    pub exclude: Vec<String>,
    /// SHA-256 of changed files. Default: true.
    pub hash: bool,
    /// Files larger than this many bytes are not hashed. Default: 67108864 (64 MiB).
    pub hash_max_bytes: u64,
    /// A path must be quiet this many milliseconds before its change is reported, so that one
    /// write produces one event. Default: 300.
    pub debounce_ms: u64,
    /// At start, compare the watched files with the persisted baseline and report what changed
    /// while the agent was not running. Default: on at detailed only (the baseline is always
    /// brought up to date silently otherwise).
    pub initial_scan: Option<bool>,
}

impl Default for FimConfig {
    fn default() -> Self {
        FimConfig {
            enabled: None,
            paths: default_fim_paths(),
            recursive: true,
            exclude: ["**/*.swp", "**/*.swx", "**/*~", "**/.#*", "**/4913"]
                .into_iter()
                .map(String::from)
                .collect(),
            hash: true,
            hash_max_bytes: DEFAULT_HASH_MAX_BYTES,
            debounce_ms: 300,
            initial_scan: None,
        }
    }
}

fn default_fim_paths() -> Vec<PathBuf> {
    let list: &[&str] = if cfg!(windows) {
        &[
            r"C:\Windows\System32\drivers\etc",
            r"C:\ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp",
        ]
    } else {
        &[
            "/etc",
            "/usr/bin",
            "/usr/sbin",
            "/usr/local/bin",
            "/usr/local/sbin",
            "/root/.ssh",
        ]
    };
    list.iter().map(PathBuf::from).collect()
}

/// `[collect.auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// On or off. Default: on at every level (Linux; on Windows authentication comes from the
    /// Security event log, not from this collector).
    pub enabled: Option<bool>,
    /// Log files to tail; the ones that exist are read. Default: `/var/log/auth.log`,
    /// `/var/log/secure`.
    pub paths: Vec<PathBuf>,
    /// When none of `paths` exists, follow the systemd journal (facilities auth and authpriv)
    /// through `journalctl`. Default: true.
    pub journald: bool,
    /// The `journalctl` program. Default: `journalctl` (searched in `PATH`).
    pub journalctl: PathBuf,
    /// How often the files are checked for new lines, in milliseconds. Default: 500.
    pub poll_interval_ms: u64,
    /// On the very first start (no saved offset), read existing files from the beginning
    /// instead of from their end. Default: false.
    pub start_at_beginning: bool,
    /// Lines of these programs or PAM services (case-insensitive) are ignored. Default:
    /// `cron`, `systemd-user` (a session every minute / every login).
    pub exclude_services: Vec<String>,
    /// Events whose user is one of these are ignored. Default: none.
    pub exclude_users: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: None,
            paths: vec![
                PathBuf::from("/var/log/auth.log"),
                PathBuf::from("/var/log/secure"),
            ],
            journald: true,
            journalctl: PathBuf::from("journalctl"),
            poll_interval_ms: 500,
            start_at_beginning: false,
            exclude_services: vec!["cron".into(), "systemd-user".into()],
            exclude_users: Vec::new(),
        }
    }
}

/// Effective process settings.
#[derive(Debug, Clone)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct ProcessSettings {
    pub enabled: bool,
    pub mode: ProcessMode,
    pub poll_interval: Duration,
    pub report_end: bool,
    pub hash: bool,
    pub hash_max_bytes: u64,
    pub exclude: globset::GlobSet,
    pub include_agent_children: bool,
}

/// Effective network settings.
#[derive(Debug, Clone)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct NetworkSettings {
    pub enabled: bool,
    pub mode: NetworkMode,
    pub poll_interval: Duration,
    pub listeners: bool,
    pub connections: bool,
    pub report_close: bool,
    pub include_loopback: bool,
    pub exclude: globset::GlobSet,
    pub exclude_ports: Vec<u16>,
}

/// Effective FIM settings.
#[derive(Debug, Clone)]
pub(crate) struct FimSettings {
    pub enabled: bool,
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    pub exclude: globset::GlobSet,
    pub hash: bool,
    pub hash_max_bytes: u64,
    pub debounce: Duration,
    pub initial_scan: bool,
}

/// Effective auth settings.
#[derive(Debug, Clone)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) struct AuthSettings {
    pub enabled: bool,
    pub paths: Vec<PathBuf>,
    pub journald: bool,
    pub journalctl: PathBuf,
    pub poll_interval: Duration,
    pub start_at_beginning: bool,
    pub exclude_services: Vec<String>,
    pub exclude_users: Vec<String>,
}

/// Everything resolved against the level.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub process: ProcessSettings,
    pub network: NetworkSettings,
    pub fim: FimSettings,
    pub auth: AuthSettings,
}

/// A bad configuration value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: invalid glob {pattern:?}: {source}")]
    Glob {
        key: &'static str,
        pattern: String,
        source: globset::Error,
    },
    #[error("{key}: must be greater than 0")]
    Zero { key: &'static str },
}

fn globs(key: &'static str, patterns: &[String]) -> Result<globset::GlobSet, ConfigError> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .case_insensitive(cfg!(windows))
            .build()
            .map_err(|source| ConfigError::Glob {
                key,
                pattern: pattern.clone(),
                source,
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|source| ConfigError::Glob {
        key,
        pattern: patterns.join(", "),
        source,
    })
}

fn millis(key: &'static str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { key });
    }
    Ok(Duration::from_millis(value))
}

impl CollectConfig {
    /// Checks the configuration (globs compile, intervals are not zero) without starting
    /// anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }

    pub(crate) fn resolve(&self) -> Result<Settings, ConfigError> {
        let level = self.level;
        let not_minimal = level != Level::Minimal;
        let detailed = level == Level::Detailed;
        let p = &self.process;
        let process = ProcessSettings {
            enabled: p.enabled.unwrap_or(true),
            mode: p.mode,
            poll_interval: millis(
                "process.poll_interval_ms",
                p.poll_interval_ms
                    .unwrap_or(if detailed { 500 } else { 1000 }),
            )?,
            report_end: p.report_end.unwrap_or(not_minimal),
            hash: p.hash.unwrap_or(not_minimal),
            hash_max_bytes: p.hash_max_bytes,
            exclude: globs("process.exclude_executables", &p.exclude_executables)?,
            include_agent_children: p.include_agent_children,
        };
        let n = &self.network;
        let network = NetworkSettings {
            enabled: n.enabled.unwrap_or(not_minimal),
            mode: n.mode,
            poll_interval: millis(
                "network.poll_interval_ms",
                n.poll_interval_ms
                    .unwrap_or(if detailed { 2000 } else { 5000 }),
            )?,
            listeners: n.listeners,
            connections: n.connections,
            report_close: n.report_close.unwrap_or(detailed),
            include_loopback: n.include_loopback,
            exclude: globs("network.exclude_executables", &n.exclude_executables)?,
            exclude_ports: n.exclude_ports.clone(),
        };
        let f = &self.fim;
        let fim = FimSettings {
            enabled: f.enabled.unwrap_or(true),
            paths: f.paths.clone(),
            recursive: f.recursive,
            exclude: globs("fim.exclude", &f.exclude)?,
            hash: f.hash,
            hash_max_bytes: f.hash_max_bytes,
            debounce: Duration::from_millis(f.debounce_ms),
            initial_scan: f.initial_scan.unwrap_or(detailed),
        };
        let a = &self.auth;
        let auth = AuthSettings {
            enabled: a.enabled.unwrap_or(true),
            paths: a.paths.clone(),
            journald: a.journald,
            journalctl: a.journalctl.clone(),
            poll_interval: millis("auth.poll_interval_ms", a.poll_interval_ms)?,
            start_at_beginning: a.start_at_beginning,
            exclude_services: a
                .exclude_services
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            exclude_users: a.exclude_users.clone(),
        };
        Ok(Settings {
            process,
            network,
            fim,
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_defaults() {
        let c: CollectConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, CollectConfig::default());
        let s = c.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.process.enabled && s.process.hash && s.process.report_end);
        assert_eq!(s.process.poll_interval, Duration::from_secs(1));
        assert!(s.network.enabled && !s.network.report_close);
        assert_eq!(s.network.mode, NetworkMode::Auto);
        assert_eq!(s.network.poll_interval, Duration::from_secs(5));
        assert!(s.fim.enabled && !s.fim.initial_scan);
        assert_eq!(s.fim.debounce, Duration::from_millis(300));
    }

    #[test]
    fn levels_change_defaults_and_explicit_values_win() {
        let c: CollectConfig = toml::from_str(
            r#"
            level = "minimal"
            [process]
            hash = true
            [network]
            poll_interval_ms = 750
            mode = "poll"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = c.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.process.hash, "explicit value wins over the level");
        assert!(!s.process.report_end);
        assert!(!s.network.enabled);
        assert_eq!(s.network.poll_interval, Duration::from_millis(750));
        assert_eq!(s.network.mode, NetworkMode::Poll);

        let c: CollectConfig =
            toml::from_str("level = \"detailed\"").unwrap_or_else(|e| panic!("{e}"));
        let s = c.resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.process.poll_interval, Duration::from_millis(500));
        assert_eq!(s.network.poll_interval, Duration::from_secs(2));
        assert!(s.network.report_close && s.fim.initial_scan);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(toml::from_str::<CollectConfig>("levle = \"minimal\"").is_err());
        assert!(toml::from_str::<CollectConfig>("[process]\nhsah = true").is_err());
        assert!(toml::from_str::<CollectConfig>("level = \"Verbose\"").is_err());
        let c: CollectConfig =
            toml::from_str("[fim]\nexclude = [\"a[\"]").unwrap_or_else(|e| panic!("{e}"));
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("fim.exclude: invalid glob"), "{err}");
        let c: CollectConfig =
            toml::from_str("[process]\npoll_interval_ms = 0").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.validate().is_err());
    }
}
