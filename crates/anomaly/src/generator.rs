//! Labelled telemetry generator: a fleet of Windows-like hosts with daily rhythms, users,
//! process trees, network destinations and listening ports, plus injected anomalies of every
//! kind the per-entity models look for. Deterministic given the seed; used by the tests and
//! `examples/evaluate.rs`. Events serialise to JSONL with Dozor's ECS field names.
//!
//! The benign stream is not spotless on purpose: users make typos (single failed logons),
//! some log on in the evening or at weekends, a few connect from a new VPN address, hosts run
//! tools from a fleet-wide long tail (updaters, viewers) and open dynamic RPC ports. The
//! benign stream does not depend on whether anomalies are injected (injections draw from
//! their own random streams), so a benign-only run is the same fleet without the attacks.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::finding::format_utc;
use crate::rng::SplitMix64;

/// Monday 2026-01-05 00:00:00 UTC: the default first day.
pub const DEFAULT_START: i64 = 1_767_571_200;
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// What an event records (Windows Security event ids in `event.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Logon,
    LogonFailed,
    ProcessStart,
    NetworkConnection,
    Listen,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Logon,
        EventKind::LogonFailed,
        EventKind::ProcessStart,
        EventKind::NetworkConnection,
        EventKind::Listen,
    ];

    /// `event.code`: 4624/4625 logon success/failure, 4688 process creation, 5156 connection
    /// permitted, 5154 listen permitted (Windows Filtering Platform).
    pub fn code(self) -> &'static str {
        match self {
            EventKind::Logon => "4624",
            EventKind::LogonFailed => "4625",
            EventKind::ProcessStart => "4688",
            EventKind::NetworkConnection => "5156",
            EventKind::Listen => "5154",
        }
    }

    pub fn action(self) -> &'static str {
        match self {
            EventKind::Logon => "logged-in",
            EventKind::LogonFailed => "logon-failed",
            EventKind::ProcessStart => "process-created",
            EventKind::NetworkConnection => "connection-allowed",
            EventKind::Listen => "listen-allowed",
        }
    }
}

/// The injected anomaly kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    RareProcess,
    RareParentChild,
    RareLogonSource,
    UnusualLogonHour,
    FailedLogonBurst,
    NewDestination,
    NewListeningPort,
    VolumeSpike,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::RareProcess,
        AnomalyKind::RareParentChild,
        AnomalyKind::RareLogonSource,
        AnomalyKind::UnusualLogonHour,
        AnomalyKind::FailedLogonBurst,
        AnomalyKind::NewDestination,
        AnomalyKind::NewListeningPort,
        AnomalyKind::VolumeSpike,
    ];

    /// snake_case name; also the finding kind of the model meant to catch it.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::RareProcess => "rare_process",
            AnomalyKind::RareParentChild => "rare_parent_child",
            AnomalyKind::RareLogonSource => "rare_logon_source",
            AnomalyKind::UnusualLogonHour => "unusual_logon_hour",
            AnomalyKind::FailedLogonBurst => "failed_logon_burst",
            AnomalyKind::NewDestination => "new_destination",
            AnomalyKind::NewListeningPort => "new_listening_port",
            AnomalyKind::VolumeSpike => "volume_spike",
        }
    }
}

/// Ground truth on an injected event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub kind: AnomalyKind,
    /// Index into [`Generator::injections`].
    pub injection: u32,
}

/// One event. `fields` uses the ECS names (`process.name`, `source.ip` ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds.
    pub timestamp: i64,
    pub host: String,
    pub user: Option<String>,
    pub kind: EventKind,
    pub fields: BTreeMap<String, String>,
    /// `Some` on injected events only.
    pub label: Option<Label>,
}

impl Event {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Flat ECS-like JSON object (`@timestamp`, `host.name`, `user.name`, `event.code`,
    /// `event.outcome`, ...). The label goes to `labels.anomaly` so datasets stay scoreable.
    pub fn to_ecs_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("@timestamp".into(), format_utc(self.timestamp).into());
        object.insert("host.name".into(), self.host.clone().into());
        if let Some(user) = &self.user {
            object.insert("user.name".into(), user.clone().into());
        }
        object.insert("event.code".into(), self.kind.code().into());
        object.insert("event.action".into(), self.kind.action().into());
        let outcome = if self.kind == EventKind::LogonFailed {
            "failure"
        } else {
            "success"
        };
        object.insert("event.outcome".into(), outcome.into());
        for (name, value) in &self.fields {
            // Ports are numbers in ECS.
            let json = if name.ends_with(".port") {
                value
                    .parse::<u64>()
                    .map_or_else(|_| value.clone().into(), serde_json::Value::from)
            } else {
                value.clone().into()
            };
            object.insert(name.clone(), json);
        }
        if let Some(label) = self.label {
            object.insert("labels.anomaly".into(), label.kind.name().into());
        }
        serde_json::Value::Object(object)
    }
}

/// Writes one JSON object per line.
pub fn write_jsonl<W: Write>(events: &[Event], mut writer: W) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut writer, &event.to_ecs_json())?;
        writer.write_all(b"\n")?;
    }
    Ok(())
}

/// Fleet size, period and injections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub hosts: usize,
    pub days: u32,
    /// Unix seconds of the first day's midnight (UTC); hour-of-week logic assumes a Monday.
    pub start: i64,
    pub seed: u64,
    /// Injections happen on days `anomaly_from_day..days`.
    pub anomaly_from_day: u32,
    /// Injections per anomaly kind (0: benign only).
    pub anomalies_per_kind: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            hosts: 200,
            days: 14,
            start: DEFAULT_START,
            seed: 1,
            anomaly_from_day: 10,
            anomalies_per_kind: 25,
        }
    }
}

/// An injected anomaly (ground truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    pub kind: AnomalyKind,
    pub host: String,
    pub user: Option<String>,
    pub day: u32,
    pub time: i64,
    /// The anomalous value: process, pair, source, port, destination, or a count.
    pub value: String,
}

#[derive(Debug, Clone, Copy)]
struct ProcessSpec {
    parent: &'static str,
    child: &'static str,
    /// Started by a logged-on user (office hours) rather than by the system (any time).
    interactive: bool,
    weight: f64,
    destinations: Destinations,
}

#[derive(Debug, Clone, Copy)]
enum Destinations {
    None,
    /// A fixed small set, contacted with the given probability per start.
    Fixed(&'static [&'static str], f64),
    /// The shared web pool (browsers): many addresses, popular ones more often.
    Web(f64),
}

use Destinations::{Fixed, None as NoDest, Web};

const fn spec(
    parent: &'static str,
    child: &'static str,
    interactive: bool,
    weight: f64,
    destinations: Destinations,
) -> ProcessSpec {
    ProcessSpec {
        parent,
        child,
        interactive,
        weight,
        destinations,
    }
}

/// On every workstation (the children are what rare-pair injections reuse).
const WORKSTATION_CORE: &[ProcessSpec] = &[
    spec(
        "services.exe",
        "svchost.exe",
        false,
        3.0,
        Fixed(&["10.0.0.10:135", "10.0.0.11:389"], 0.2),
    ),
    spec("svchost.exe", "taskhostw.exe", false, 2.0, NoDest),
    spec("svchost.exe", "wmiprvse.exe", false, 1.0, NoDest),
    spec("svchost.exe", "backgroundTaskHost.exe", false, 1.5, NoDest),
    spec("userinit.exe", "explorer.exe", true, 0.3, NoDest),
    spec("explorer.exe", "cmd.exe", true, 0.6, NoDest),
    spec("cmd.exe", "conhost.exe", true, 0.6, NoDest),
    spec("explorer.exe", "powershell.exe", true, 0.3, NoDest),
    spec(
        "explorer.exe",
        "outlook.exe",
        true,
        2.0,
        Fixed(&["10.0.0.20:443"], 0.8),
    ),
    spec("explorer.exe", "chrome.exe", true, 4.0, Web(0.9)),
    spec(
        "explorer.exe",
        "winword.exe",
        true,
        1.5,
        Fixed(&["10.0.0.30:445"], 0.3),
    ),
    spec(
        "explorer.exe",
        "excel.exe",
        true,
        1.5,
        Fixed(&["10.0.0.30:445"], 0.3),
    ),
];

/// Each workstation has a random part of these.
const WORKSTATION_OPTIONAL: &[ProcessSpec] = &[
    spec("explorer.exe", "msedge.exe", true, 2.0, Web(0.9)),
    spec(
        "explorer.exe",
        "teams.exe",
        true,
        2.0,
        Fixed(
            &["52.112.0.10:443", "52.112.0.11:443", "52.113.0.5:443"],
            0.8,
        ),
    ),
    spec(
        "svchost.exe",
        "OneDrive.exe",
        false,
        1.0,
        Fixed(&["13.107.42.12:443", "13.107.42.13:443"], 0.7),
    ),
    spec("explorer.exe", "notepad.exe", true, 0.8, NoDest),
    spec("explorer.exe", "acrord32.exe", true, 0.5, NoDest),
    spec(
        "explorer.exe",
        "slack.exe",
        true,
        1.0,
        Fixed(&["34.226.1.20:443", "34.226.1.21:443"], 0.8),
    ),
    spec(
        "explorer.exe",
        "code.exe",
        true,
        1.0,
        Fixed(&["20.60.1.5:443"], 0.4),
    ),
    spec(
        "services.exe",
        "zabbix_agentd.exe",
        false,
        0.5,
        Fixed(&["10.0.0.60:10051"], 0.9),
    ),
];

/// Every server.
const SERVER_CORE: &[ProcessSpec] = &[
    spec(
        "services.exe",
        "svchost.exe",
        false,
        3.0,
        Fixed(&["10.0.0.10:135", "10.0.0.11:389"], 0.3),
    ),
    spec("svchost.exe", "taskhostw.exe", false, 2.0, NoDest),
    spec("svchost.exe", "wmiprvse.exe", false, 1.5, NoDest),
    spec(
        "services.exe",
        "zabbix_agentd.exe",
        false,
        1.0,
        Fixed(&["10.0.0.60:10051"], 0.9),
    ),
    spec(
        "services.exe",
        "backupagent.exe",
        false,
        0.5,
        Fixed(&["10.0.0.50:10000"], 0.9),
    ),
    spec("explorer.exe", "cmd.exe", true, 0.5, NoDest),
    spec("cmd.exe", "conhost.exe", true, 0.5, NoDest),
    spec("explorer.exe", "powershell.exe", true, 0.5, NoDest),
    spec("explorer.exe", "mmc.exe", true, 0.4, NoDest),
];

/// Server roles: extra processes and listening ports.
const SERVER_ROLES: &[(&str, &[ProcessSpec], &[u16])] = &[
    (
        "web",
        &[spec(
            "services.exe",
            "w3wp.exe",
            false,
            3.0,
            Fixed(&["10.0.0.40:1433"], 0.8),
        )],
        &[80, 443],
    ),
    (
        "db",
        &[spec(
            "services.exe",
            "sqlservr.exe",
            false,
            2.0,
            Fixed(&["10.0.0.50:10000"], 0.2),
        )],
        &[1433],
    ),
    (
        "file",
        &[spec(
            "svchost.exe",
            "dfsrs.exe",
            false,
            1.0,
            Fixed(&["10.0.0.31:5722"], 0.6),
        )],
        &[139, 5722],
    ),
];

/// Fleet-wide long tail: hosts run one of these now and then (updaters, viewers, tools).
const LONG_TAIL: &[ProcessSpec] = &[
    spec(
        "svchost.exe",
        "MpCmdRun.exe",
        false,
        1.0,
        Fixed(&["40.126.9.10:443"], 0.8),
    ),
    spec(
        "svchost.exe",
        "wuauclt.exe",
        false,
        1.0,
        Fixed(&["13.107.4.50:443"], 0.8),
    ),
    spec("services.exe", "TrustedInstaller.exe", false, 1.0, NoDest),
    spec(
        "svchost.exe",
        "CompatTelRunner.exe",
        false,
        1.0,
        Fixed(&["20.42.65.90:443"], 0.5),
    ),
    spec(
        "svchost.exe",
        "GoogleUpdate.exe",
        false,
        1.0,
        Fixed(&["142.250.74.3:443"], 0.9),
    ),
    spec("svchost.exe", "dllhost.exe", false, 1.0, NoDest),
    spec("svchost.exe", "SearchProtocolHost.exe", false, 1.0, NoDest),
    spec("explorer.exe", "mstsc.exe", true, 1.0, NoDest),
    spec("explorer.exe", "7zFM.exe", true, 1.0, NoDest),
    spec("explorer.exe", "calc.exe", true, 1.0, NoDest),
    spec("explorer.exe", "mspaint.exe", true, 1.0, NoDest),
    spec("explorer.exe", "regedit.exe", true, 1.0, NoDest),
    spec("explorer.exe", "taskmgr.exe", true, 1.0, NoDest),
    spec("explorer.exe", "control.exe", true, 1.0, NoDest),
    spec("explorer.exe", "SnippingTool.exe", true, 1.0, NoDest),
    spec(
        "explorer.exe",
        "zoom.exe",
        true,
        1.0,
        Fixed(&["170.114.10.4:443"], 0.9),
    ),
    spec("explorer.exe", "vlc.exe", true, 1.0, NoDest),
    spec("explorer.exe", "putty.exe", true, 1.0, NoDest),
];

const WORKSTATION_PORTS: &[u16] = &[135, 445, 5040, 7680];
const SERVER_PORTS: &[u16] = &[135, 445, 3389, 5985];
/// Dynamic RPC ports a host may open now and then (benign novelty shared by the fleet).
const DYNAMIC_PORTS: std::ops::Range<u16> = 49664..49680;

const ATTACK_TOOLS: &[&str] = &[
    "rclone.exe",
    "mimikatz.exe",
    "adfind.exe",
    "psexesvc.exe",
    "procdump64.exe",
    "nc64.exe",
    "plink.exe",
    "svch0st.exe",
    "lazagne.exe",
    "sharphound.exe",
];
const ATTACK_PORTS: &[u16] = &[4444, 8080, 1337, 5900, 31337, 9001, 6667, 8443];
const ADMINS: usize = 6;

#[derive(Debug, Clone)]
struct User {
    name: String,
    sources: Vec<String>,
    /// Probability that a logon comes from the second source (VPN / second jump host).
    second_source: f64,
    start_hour: i64,
    end_hour: i64,
    /// Chance per workday of an evening logon (most users almost never, some habitually).
    evening: f64,
}

#[derive(Debug, Clone)]
struct Host {
    name: String,
    server: bool,
    processes: Vec<ProcessSpec>,
    ports: Vec<u16>,
    /// Workstation owner index into `users`, or the admins looking after a server.
    users: Vec<usize>,
    activity: f64,
}

/// A deterministic fleet. Build once, then ask for each day's events.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
    users: Vec<User>,
    hosts: Vec<Host>,
    injections: Vec<Injection>,
}

fn weighted<'a, T>(
    rng: &mut SplitMix64,
    items: &'a [T],
    weight: impl Fn(&T) -> f64,
) -> Option<&'a T> {
    let total: f64 = items.iter().map(&weight).sum();
    let mut pick = rng.next_f64() * total;
    for item in items {
        pick -= weight(item);
        if pick < 0.0 {
            return Some(item);
        }
    }
    items.last()
}

/// Web pool address; popular sites are drawn far more often (u^3 skews to low indices).
fn web_destination(rng: &mut SplitMix64) -> String {
    let index = (rng.next_f64().powi(3) * 400.0) as usize;
    format!("151.101.{}.{}:443", index / 100, index % 100 + 1)
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = SplitMix64::derive(config.seed, 0xF1EE7);
        let mut users = Vec::new();
        let mut hosts = Vec::new();
        for admin in 0..ADMINS {
            users.push(User {
                name: format!("adm-{:02}", admin + 1),
                sources: vec![
                    format!("10.0.5.{}", 2 * admin + 10),
                    format!("10.0.5.{}", 2 * admin + 11),
                ],
                second_source: 0.3,
                start_hour: 8 + (admin as i64 % 2),
                end_hour: 17 + (admin as i64 % 2),
                evening: 0.05,
            });
        }
        for index in 0..config.hosts {
            let server = rng.chance(0.2);
            if server {
                let (role, extra, role_ports) = SERVER_ROLES[rng.below(SERVER_ROLES.len())];
                let mut processes = SERVER_CORE.to_vec();
                processes.extend_from_slice(extra);
                let mut ports = SERVER_PORTS.to_vec();
                ports.extend_from_slice(role_ports);
                let first_admin = rng.below(ADMINS);
                hosts.push(Host {
                    name: format!("srv-{role}-{index:03}"),
                    server,
                    processes,
                    ports,
                    users: vec![first_admin, (first_admin + 1) % ADMINS],
                    activity: 0.6 + 0.8 * rng.next_f64(),
                });
            } else {
                let mut processes = WORKSTATION_CORE.to_vec();
                processes.extend(
                    WORKSTATION_OPTIONAL
                        .iter()
                        .filter(|_| rng.chance(0.6))
                        .copied(),
                );
                let mut ports = WORKSTATION_PORTS.to_vec();
                if rng.chance(0.3) {
                    ports.push(3389);
                }
                let start_hour = 7 + rng.below(4) as i64;
                let habitual_evening = rng.chance(0.2);
                users.push(User {
                    name: format!("user-{index:03}"),
                    sources: vec![
                        format!("10.1.{}.{}", index / 250, index % 250 + 1),
                        format!("10.200.{}.{}", index / 250, index % 250 + 1),
                    ],
                    second_source: 0.05 + 0.3 * rng.next_f64(),
                    start_hour,
                    end_hour: start_hour + 8 + rng.below(3) as i64,
                    evening: if habitual_evening { 0.25 } else { 0.004 },
                });
                hosts.push(Host {
                    name: format!("ws-{index:03}"),
                    server,
                    processes,
                    ports,
                    users: vec![users.len() - 1],
                    activity: 0.6 + 0.8 * rng.next_f64(),
                });
            }
        }
        let mut generator = Self {
            config,
            users,
            hosts,
            injections: Vec::new(),
        };
        generator.plan_injections();
        generator
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    pub fn host_names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    fn day_start(&self, day: u32) -> i64 {
        self.config.start + i64::from(day) * DAY
    }

    fn is_weekend(&self, day: u32) -> bool {
        // Weekday of the start date (0 = Monday) plus the day offset.
        let start_weekday = (self.config.start.div_euclid(DAY) + 3).rem_euclid(7);
        (start_weekday + i64::from(day)).rem_euclid(7) >= 5
    }

    fn plan_injections(&mut self) {
        let config = &self.config;
        if config.anomalies_per_kind == 0
            || config.anomaly_from_day >= config.days
            || self.hosts.is_empty()
        {
            return;
        }
        let mut rng = SplitMix64::derive(config.seed, 0x1A7EC7);
        let span = config.days - config.anomaly_from_day;
        let mut injections = Vec::new();
        for kind in AnomalyKind::ALL {
            // One injection per host and per user and kind where the fleet allows it: a second
            // one would be judged against a baseline that already learned the first.
            let mut used_hosts = std::collections::BTreeSet::new();
            let mut used_users = std::collections::BTreeSet::new();
            for _ in 0..config.anomalies_per_kind {
                let mut host_index = rng.below(self.hosts.len());
                for _ in 0..50 {
                    let host = &self.hosts[host_index];
                    let users_free = host.users.iter().any(|u| !used_users.contains(u));
                    if !used_hosts.contains(&host_index) && users_free {
                        break;
                    }
                    host_index = rng.below(self.hosts.len());
                }
                used_hosts.insert(host_index);
                let host = &self.hosts[host_index];
                let mut day = config.anomaly_from_day + rng.below(span as usize) as u32;
                // Logon-based injections go to weekdays so the user's routine applies.
                if matches!(
                    kind,
                    AnomalyKind::UnusualLogonHour | AnomalyKind::RareLogonSource
                ) {
                    for _ in 0..7 {
                        if !self.is_weekend(day) {
                            break;
                        }
                        day = config.anomaly_from_day + rng.below(span as usize) as u32;
                    }
                }
                let free: Vec<usize> = host
                    .users
                    .iter()
                    .copied()
                    .filter(|u| !used_users.contains(u))
                    .collect();
                let user_index = match free.get(rng.below(free.len())) {
                    Some(&user) => user,
                    None => host.users[rng.below(host.users.len())],
                };
                used_users.insert(user_index);
                let user = &self.users[user_index];
                let work_hour = user.start_hour
                    + 1
                    + rng.below((user.end_hour - user.start_hour - 2).max(1) as usize) as i64;
                let mut time = self.day_start(day) + work_hour * HOUR + rng.below(3000) as i64;
                let value = match kind {
                    AnomalyKind::RareProcess => {
                        ATTACK_TOOLS[rng.below(ATTACK_TOOLS.len())].to_string()
                    }
                    AnomalyKind::RareParentChild => {
                        let (parents, children): (&[&str], &[&str]) = if host.server {
                            (
                                &[
                                    "w3wp.exe",
                                    "sqlservr.exe",
                                    "zabbix_agentd.exe",
                                    "backupagent.exe",
                                ],
                                &["cmd.exe", "powershell.exe"],
                            )
                        } else {
                            (
                                &["winword.exe", "excel.exe", "outlook.exe"],
                                &["cmd.exe", "powershell.exe"],
                            )
                        };
                        let known: Vec<&str> = parents
                            .iter()
                            .copied()
                            .filter(|p| host.processes.iter().any(|s| s.child == *p))
                            .collect();
                        let parent = known
                            .get(rng.below(known.len()))
                            .copied()
                            .unwrap_or("explorer.exe");
                        let child = children[rng.below(children.len())];
                        format!("{parent}->{child}")
                    }
                    AnomalyKind::RareLogonSource => {
                        format!("203.0.113.{}", 1 + rng.below(250))
                    }
                    AnomalyKind::UnusualLogonHour => {
                        time = self.day_start(day)
                            + (1 + rng.below(4) as i64) * HOUR
                            + rng.below(3600) as i64;
                        user.sources[0].clone()
                    }
                    AnomalyKind::FailedLogonBurst => (30 + rng.below(170)).to_string(),
                    AnomalyKind::NewDestination => {
                        format!(
                            "198.51.100.{}:{}",
                            1 + rng.below(250),
                            [443, 8443, 4444, 80][rng.below(4)]
                        )
                    }
                    AnomalyKind::NewListeningPort => {
                        ATTACK_PORTS[rng.below(ATTACK_PORTS.len())].to_string()
                    }
                    AnomalyKind::VolumeSpike => (8 + rng.below(8)).to_string(),
                };
                injections.push(Injection {
                    kind,
                    host: host.name.clone(),
                    user: Some(user.name.clone()),
                    day,
                    time,
                    value,
                });
            }
        }
        self.injections = injections;
    }

    /// All events of `day` (0-based), sorted by time.
    pub fn day(&self, day: u32) -> Vec<Event> {
        let mut events = Vec::new();
        for (index, host) in self.hosts.iter().enumerate() {
            let mut rng =
                SplitMix64::derive(self.config.seed, (u64::from(day) << 24) | index as u64);
            self.benign_host_day(host, day, &mut rng, &mut events);
        }
        for (id, injection) in self.injections.iter().enumerate() {
            if injection.day == day {
                let mut rng = SplitMix64::derive(self.config.seed ^ 0x5EED, id as u64);
                self.inject(id as u32, injection, &mut rng, &mut events);
            }
        }
        events.sort_by_key(|e| e.timestamp);
        events
    }

    /// Every day's events, in order.
    pub fn events(&self) -> Vec<Event> {
        (0..self.config.days)
            .flat_map(|day| self.day(day))
            .collect()
    }

    fn benign_host_day(&self, host: &Host, day: u32, rng: &mut SplitMix64, out: &mut Vec<Event>) {
        let start = self.day_start(day);
        let weekend = self.is_weekend(day);

        // Services start listening at boot (between 06:00 and 07:00).
        let boot = start + 6 * HOUR + rng.below(3600) as i64;
        for &port in &host.ports {
            out.push(listen(
                host,
                boot + rng.below(60) as i64,
                port,
                "svchost.exe",
                None,
            ));
        }
        if rng.chance(0.01) {
            let port = DYNAMIC_PORTS.start + rng.below(DYNAMIC_PORTS.len()) as u16;
            out.push(listen(
                host,
                start + rng.below(DAY as usize) as i64,
                port,
                "svchost.exe",
                None,
            ));
        }

        // Logons; the office hours of the host's people decide when interactive work happens.
        let mut office: Vec<(i64, i64)> = Vec::new();
        for &user_index in &host.users {
            let user = &self.users[user_index];
            let present = if host.server {
                rng.chance(if weekend { 0.03 } else { 0.35 })
            } else {
                !weekend
            };
            if present {
                let first = start + user.start_hour * HOUR + rng.below(2700) as i64;
                let end = start + user.end_hour * HOUR;
                office.push((first, end));
                let extra = rng.poisson(if host.server { 0.8 } else { 1.5 });
                self.logon(host, user, first, rng, out);
                for _ in 0..extra {
                    let time = first + rng.below((end - first).max(1) as usize) as i64;
                    self.logon(host, user, time, rng, out);
                }
                if rng.chance(user.evening) {
                    let time = end
                        + HOUR
                        + rng.below(((22 - user.end_hour).max(1) * HOUR) as usize) as i64;
                    self.logon(host, user, time, rng, out);
                }
            } else if weekend && !host.server && rng.chance(0.06) {
                let session = start + 10 * HOUR + rng.below(6 * HOUR as usize) as i64;
                office.push((session, session + HOUR));
                self.logon(host, user, session, rng, out);
            }
        }

        // Process starts per hour: background all day, interactive work while someone is in.
        for hour in 0..24 {
            let hour_start = start + hour * HOUR;
            let in_office = office
                .iter()
                .any(|&(from, to)| hour_start + HOUR > from && hour_start < to);
            let background = if host.server { 4.0 } else { 1.0 } * host.activity;
            let interactive = if in_office { 12.0 * host.activity } else { 0.0 };
            let starts = rng.poisson(background + interactive);
            for _ in 0..starts {
                let time = hour_start + rng.below(HOUR as usize) as i64;
                let candidates: Vec<ProcessSpec> = host
                    .processes
                    .iter()
                    .filter(|s| in_office || !s.interactive)
                    .copied()
                    .collect();
                if let Some(spec) = weighted(rng, &candidates, |s| s.weight) {
                    self.process(host, *spec, time, rng, None, out);
                }
            }
        }

        // The fleet's long tail: now and then a host runs an updater or a tool.
        if rng.chance(0.3) {
            let spec = LONG_TAIL[rng.below(LONG_TAIL.len())];
            let time = start + (9 + rng.below(8) as i64) * HOUR + rng.below(3600) as i64;
            self.process(host, spec, time, rng, None, out);
        }
    }

    fn logon(
        &self,
        host: &Host,
        user: &User,
        time: i64,
        rng: &mut SplitMix64,
        out: &mut Vec<Event>,
    ) {
        let source = if rng.chance(0.003) {
            // A new VPN lease now and then: benign novelty for the source model.
            format!("10.201.{}.{}", rng.below(250), 1 + rng.below(250))
        } else if rng.chance(user.second_source) {
            user.sources[1].clone()
        } else {
            user.sources[0].clone()
        };
        if rng.chance(0.08) {
            out.push(logon_event(
                host,
                &user.name,
                time - 10 - rng.below(50) as i64,
                &source,
                false,
                None,
            ));
        }
        out.push(logon_event(host, &user.name, time, &source, true, None));
    }

    fn process(
        &self,
        host: &Host,
        spec: ProcessSpec,
        time: i64,
        rng: &mut SplitMix64,
        label: Option<Label>,
        out: &mut Vec<Event>,
    ) {
        out.push(process_event(host, time, spec.parent, spec.child, label));
        let destination = match spec.destinations {
            NoDest => None,
            Fixed(list, probability) => rng
                .chance(probability)
                .then(|| list[rng.below(list.len())].to_string()),
            Web(probability) => rng.chance(probability).then(|| web_destination(rng)),
        };
        if let Some(destination) = destination {
            out.push(connection_event(
                host,
                time + 1 + rng.below(30) as i64,
                spec.child,
                &destination,
                label,
            ));
        }
    }

    fn inject(&self, id: u32, injection: &Injection, rng: &mut SplitMix64, out: &mut Vec<Event>) {
        let Some(host) = self.hosts.iter().find(|h| h.name == injection.host) else {
            return;
        };
        let label = Some(Label {
            kind: injection.kind,
            injection: id,
        });
        let time = injection.time;
        let user = injection.user.as_deref().unwrap_or("unknown");
        match injection.kind {
            AnomalyKind::RareProcess => {
                out.push(process_event(
                    host,
                    time,
                    "cmd.exe",
                    &injection.value,
                    label,
                ));
                for k in 0..3 {
                    let destination = format!("185.220.101.{}:443", 10 + k);
                    out.push(connection_event(
                        host,
                        time + 5 + k,
                        &injection.value,
                        &destination,
                        label,
                    ));
                }
            }
            AnomalyKind::RareParentChild => {
                let (parent, child) = injection
                    .value
                    .split_once("->")
                    .unwrap_or(("explorer.exe", "cmd.exe"));
                out.push(process_event(host, time, parent, child, label));
            }
            AnomalyKind::RareLogonSource => {
                out.push(logon_event(host, user, time, &injection.value, true, label));
            }
            AnomalyKind::UnusualLogonHour => {
                out.push(logon_event(host, user, time, &injection.value, true, label));
            }
            AnomalyKind::FailedLogonBurst => {
                let count: u64 = injection.value.parse().unwrap_or(50);
                let attacker = format!("45.155.205.{}", 1 + rng.below(250));
                let targets = ["administrator", "admin", user, "backup", "test"];
                for k in 0..count {
                    let target = targets[rng.below(targets.len())];
                    let at = time + (k as i64 * 1500) / count as i64;
                    out.push(logon_event(host, target, at, &attacker, false, label));
                }
            }
            AnomalyKind::NewDestination => {
                // A known, quiet process (not a browser) suddenly talks somewhere new.
                let quiet: Vec<&ProcessSpec> = host
                    .processes
                    .iter()
                    .filter(|s| matches!(s.destinations, Fixed(_, p) if p >= 0.5))
                    .collect();
                let process = quiet
                    .get(rng.below(quiet.len()))
                    .map_or("svchost.exe", |s| s.child);
                for k in 0..2 {
                    out.push(connection_event(
                        host,
                        time + 20 * k,
                        process,
                        &injection.value,
                        label,
                    ));
                }
            }
            AnomalyKind::NewListeningPort => {
                let port: u16 = injection.value.parse().unwrap_or(4444);
                out.push(listen(host, time, port, "svchost.exe", label));
            }
            AnomalyKind::VolumeSpike => {
                // A script or worm fanning out: many starts of known processes in one hour.
                let factor: f64 = injection.value.parse().unwrap_or(10.0);
                let hour_start = time - time.rem_euclid(HOUR);
                // `factor` times a normal office hour of this host.
                let count = (factor * 13.0 * host.activity.max(0.5)) as usize;
                for _ in 0..count {
                    let at = hour_start + rng.below(HOUR as usize) as i64;
                    if let Some(spec) = weighted(rng, &host.processes, |s| s.weight) {
                        self.process(host, *spec, at, rng, label, out);
                    }
                }
            }
        }
    }
}

fn base_event(
    host: &Host,
    time: i64,
    kind: EventKind,
    user: Option<&str>,
    label: Option<Label>,
) -> Event {
    Event {
        timestamp: time,
        host: host.name.clone(),
        user: user.map(str::to_string),
        kind,
        fields: BTreeMap::new(),
        label,
    }
}

fn logon_event(
    host: &Host,
    user: &str,
    time: i64,
    source: &str,
    success: bool,
    label: Option<Label>,
) -> Event {
    let kind = if success {
        EventKind::Logon
    } else {
        EventKind::LogonFailed
    };
    let mut event = base_event(host, time, kind, Some(user), label);
    event.fields.insert("source.ip".into(), source.into());
    event
}

fn process_event(host: &Host, time: i64, parent: &str, child: &str, label: Option<Label>) -> Event {
    let mut event = base_event(host, time, EventKind::ProcessStart, None, label);
    event.fields.insert("process.name".into(), child.into());
    event
        .fields
        .insert("process.parent.name".into(), parent.into());
    event
}

fn connection_event(
    host: &Host,
    time: i64,
    process: &str,
    destination: &str,
    label: Option<Label>,
) -> Event {
    let mut event = base_event(host, time, EventKind::NetworkConnection, None, label);
    let (ip, port) = destination.rsplit_once(':').unwrap_or((destination, "443"));
    event.fields.insert("process.name".into(), process.into());
    event.fields.insert("destination.ip".into(), ip.into());
    event.fields.insert("destination.port".into(), port.into());
    event
}

fn listen(host: &Host, time: i64, port: u16, process: &str, label: Option<Label>) -> Event {
    let mut event = base_event(host, time, EventKind::Listen, None, label);
    event.fields.insert("process.name".into(), process.into());
    // The local port a socket listens on is where connections are destined.
    event
        .fields
        .insert("destination.port".into(), port.to_string());
    event
}
