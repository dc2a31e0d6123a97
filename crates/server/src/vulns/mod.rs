//! Vulnerability management (issue 15): OpenVAS/GMP reports and agents' software inventories
//! become `vuln_scan_result` records; a new or reopened critical/high result raises an alert.
//!
//! - [`VulnService::import_report`]: a report's bytes (an upload, a file, a gvmd task's
//!   report) → parsed whole by `dozor-gmp` (a malformed report is refused, nothing stored) →
//!   results linked to enrolled agents by address → one store transaction
//!   ([`dozor_store::Store::record_vuln_scan`]) → alerts.
//! - [`VulnService::report_inventory`]: an agent's inventory → stored → matched against the OSV
//!   advisories loaded from `vulns.advisories` (files copied by hand on air-gapped sites) → the
//!   same records with source `inventory`, the agent's address as host, so a host scanned by
//!   OpenVAS and inventoried by its agent is one host in both views.
//! - Acceptances past their expiry are opened again every minute.

pub mod jobs;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dozor_gmp::{ParsedReport, VulnResult};
use dozor_inventory::{AdvisoryIndex, Finding, Inventory};
use dozor_model::{
    Agent, AgentInventory, Level, NewVulnResult, NewVulnScan, StoredVuln, VulnScanReport,
};
use dozor_store::{Detection, NewEvent, Store, StoreError, now_ms};
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast, watch};
use uuid::Uuid;

/// Largest report accepted, bytes.
pub const MAX_REPORT_BYTES: usize = 256 * 1024 * 1024;

/// Settings of the vulnerability module (`[vulns]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnConfig {
    /// OSV advisories (a `.json` file, a directory of them, or a `.zip`), loaded at start and
    /// on reload; none: inventories are stored, not matched.
    pub advisories: Option<PathBuf>,
    /// New or reopened results at this level or worse raise an alert (`critical`, `high`,
    /// `medium`, `low`; `none` turns vulnerability alerts off).
    pub alert_level: String,
}

impl Default for VulnConfig {
    fn default() -> Self {
        VulnConfig {
            advisories: None,
            alert_level: "high".into(),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    /// The report does not parse: nothing was stored.
    #[error("{0}")]
    Report(#[from] dozor_gmp::ReportError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The advisories could not be loaded.
    #[error("advisories: {0}")]
    Advisories(String),
    /// An inventory that cannot be used.
    #[error("inventory: {0}")]
    Inventory(String),
}

/// What loading the advisories found.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AdvisoryStatus {
    /// Where they were read from.
    pub path: Option<String>,
    /// Advisories loaded.
    pub advisories: u64,
    /// Files (or zip entries) that could not be read, as `file: reason` (the first 20).
    pub problems: Vec<String>,
    /// How many could not be read in all.
    pub problem_count: u64,
    /// When they were loaded, ms.
    pub loaded_at: Option<i64>,
    /// Inventories matched again after the load.
    pub inventories_matched: u64,
}

/// The vulnerability module of a server process with a store.
pub struct VulnService {
    store: Arc<dyn Store>,
    config: VulnConfig,
    alert_window: Duration,
    notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
    advisories: RwLock<Option<Arc<AdvisoryIndex>>>,
    advisory_status: RwLock<AdvisoryStatus>,
    /// One inventory match (or advisory reload) at a time.
    matching: Mutex<()>,
}

impl std::fmt::Debug for VulnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The minimal level that raises an alert, from `vulns.alert_level`.
fn alert_rank(level: &str) -> Option<u8> {
    level_rank(level).filter(|r| *r > 0)
}

fn level_rank(level: &str) -> Option<u8> {
    match level {
        "critical" => Some(4),
        "high" => Some(3),
        "medium" => Some(2),
        "low" => Some(1),
        _ => None,
    }
}

impl VulnService {
    pub fn new(
        store: Arc<dyn Store>,
        config: VulnConfig,
        alert_window: Duration,
        notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
    ) -> Arc<Self> {
        Arc::new(VulnService {
            store,
            config,
            alert_window,
            notices,
            advisories: RwLock::new(None),
            advisory_status: RwLock::new(AdvisoryStatus::default()),
            matching: Mutex::new(()),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &VulnConfig {
        &self.config
    }

    /// Parses a report whole (on a blocking thread) and records it. `name` is the file or
    /// task name, `origin` `import` or `gmp`, `by` who brought it. Returns the report without
    /// its results (they are stored) and what recording did.
    pub async fn import_report(
        &self,
        xml: impl AsRef<[u8]> + Send + 'static,
        name: Option<String>,
        origin: &str,
        by: &str,
    ) -> Result<(ParsedReport, VulnScanReport), VulnError> {
        // The bytes are dropped as soon as they are parsed.
        self.parse_and_record(
            move || dozor_gmp::parse_report_bytes(xml.as_ref()),
            name,
            origin,
            by,
        )
        .await
    }

    /// Like [`VulnService::import_report`], for a report that arrives through a reader (an
    /// upload streamed as it comes in): parsed on a blocking thread without the whole text
    /// ever being held.
    pub async fn import_reader(
        &self,
        xml: impl std::io::Read + Send + 'static,
        name: Option<String>,
        origin: &str,
        by: &str,
    ) -> Result<(ParsedReport, VulnScanReport), VulnError> {
        self.parse_and_record(
            move || dozor_gmp::parse_report_reader(xml),
            name,
            origin,
            by,
        )
        .await
    }

    /// Runs `parse` on a blocking thread, then records what it parsed.
    async fn parse_and_record(
        &self,
        parse: impl FnOnce() -> Result<ParsedReport, dozor_gmp::ReportError> + Send + 'static,
        name: Option<String>,
        origin: &str,
        by: &str,
    ) -> Result<(ParsedReport, VulnScanReport), VulnError> {
        let parsed = tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| VulnError::Inventory(format!("the parser stopped: {e}")))??;
        self.record_report(parsed, name, origin, by).await
    }

    /// Records a parsed report (see [`VulnService::import_report`]); its results are moved
    /// into the records, so a large report is not held twice.
    pub async fn record_report(
        &self,
        mut parsed: ParsedReport,
        name: Option<String>,
        origin: &str,
        by: &str,
    ) -> Result<(ParsedReport, VulnScanReport), VulnError> {
        let started = std::time::Instant::now();
        let agents = AgentsByAddress::load(self.store.as_ref()).await?;
        let (scan, results) = scan_of_report(&mut parsed, name, origin, by, &agents);
        let now = now_ms();
        let report = self.store.record_vuln_scan(&scan, &results, now).await?;
        let recorded = started.elapsed();
        drop(results);
        self.raise_alerts(&report).await;
        tracing::info!(
            scan = report.scan.id,
            results = report.scan.counts.results,
            raised = report.raised.len(),
            record_ms = recorded.as_millis() as u64,
            alerts_ms = (started.elapsed() - recorded).as_millis() as u64,
            "vulnerability scan recorded"
        );
        Ok((parsed, report))
    }

    /// Raises the alerts of a scan: its new or reopened results at the configured level or
    /// worse, grouped per host and level, each group one event (`event.category:
    /// vulnerability`, the results listed) and one detection of `dozor-vuln-<level>`, all in
    /// one store batch — a scan that finds 3,000 new problems on 250 hosts makes at most 500
    /// events, folded per agent into alerts like the pipeline's. Failures are logged: the
    /// results are stored either way.
    async fn raise_alerts(&self, report: &VulnScanReport) {
        let Some(min) = alert_rank(&self.config.alert_level) else {
            return;
        };
        if report.raised.is_empty() {
            return;
        }
        // Read in slices and kept as per-group summaries: the full records of thousands of
        // new results (their details documents) are never all in memory at once.
        let mut groups: BTreeMap<(String, String), AlertGroup> = Default::default();
        for ids in report.raised.chunks(RAISED_SLICE) {
            let vulns = match self.store.get_vulns(ids).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "vulnerability alerts: reading the results failed");
                    return;
                }
            };
            for v in vulns {
                if level_rank(&v.level).is_some_and(|r| r >= min) {
                    match groups.entry((v.host.clone(), v.level.clone())) {
                        Entry::Occupied(group) => group.into_mut().add(v),
                        Entry::Vacant(slot) => {
                            slot.insert(AlertGroup::new(v));
                        }
                    }
                }
            }
        }
        if groups.is_empty() {
            return;
        }
        let now = now_ms();
        let mut events = Vec::with_capacity(groups.len());
        let mut detections = Vec::with_capacity(groups.len());
        for ((host, level), group) in &groups {
            let first = &group.worst;
            let event = NewEvent {
                // The same group of the same scan is one event, however often retried.
                id: Uuid::new_v5(
                    &Uuid::NAMESPACE_OID,
                    format!("dozor-vuln:{}:{host}:{level}", report.scan.id).as_bytes(),
                ),
                ts: group.last_seen,
                received_at: now,
                agent_id: first.agent_id.clone(),
                doc: group_event(group),
            };
            detections.push(Detection {
                rule_id: format!("dozor-vuln-{level}"),
                rule_title: format!(
                    "{} vulnerability found",
                    match level.as_str() {
                        "critical" => "Critical",
                        "high" => "High-severity",
                        "medium" => "Medium-severity",
                        _ => "Low-severity",
                    }
                ),
                level: match level.as_str() {
                    "critical" => Level::Critical,
                    "high" => Level::High,
                    "medium" => Level::Medium,
                    _ => Level::Low,
                },
                tags: vec![
                    "vulnerability".into(),
                    format!("vuln.source.{}", first.source),
                ],
                agent_id: first.agent_id.clone(),
                host: dozor_store::event_host(&event.doc).map(str::to_owned),
                event_id: event.id,
                ts: event.ts,
            });
            events.push(event);
        }
        match self
            .store
            .store_batch(&events, &detections, self.alert_window)
            .await
        {
            Ok(batch) => {
                for outcome in batch.alerts {
                    let _ = self.notices.send(dozor_pipeline::AlertNotice {
                        change: outcome.change,
                        alert: outcome.alert,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "vulnerability alerts could not be raised"),
        }
    }

    /// Stores an agent's inventory and, when advisories are loaded, matches it and records
    /// the findings as a scan of source `inventory` for the agent's host. Returns whether it
    /// changed and how many findings it has.
    pub async fn report_inventory(
        &self,
        agent: &Agent,
        fingerprint: &str,
        inventory: Inventory,
    ) -> Result<(bool, u64), VulnError> {
        let computed = inventory.fingerprint();
        if !fingerprint.is_empty() && !fingerprint.eq_ignore_ascii_case(&computed) {
            return Err(VulnError::Inventory(format!(
                "fingerprint {fingerprint} is not the packages' ({computed})"
            )));
        }
        let previous = self.store.get_agent_inventory(&agent.id).await?;
        let changed = previous.as_ref().is_none_or(|p| p.fingerprint != computed);
        let stored = AgentInventory {
            agent_id: agent.id.clone(),
            fingerprint: computed,
            os: serde_json::to_value(&inventory.os).unwrap_or(Value::Null),
            packages: serde_json::to_value(&inventory.packages).unwrap_or(Value::Null),
            package_count: inventory.packages.len() as u64,
            reported_at: now_ms(),
        };
        self.store.put_agent_inventory(&stored).await?;
        let findings = self.match_inventory(agent, &inventory).await?;
        Ok((changed, findings))
    }

    /// Matches one inventory against the loaded advisories and records the findings (nothing
    /// when no advisories are loaded).
    async fn match_inventory(
        &self,
        agent: &Agent,
        inventory: &Inventory,
    ) -> Result<u64, VulnError> {
        let Some(index) = self.advisories.read().ok().and_then(|a| a.clone()) else {
            return Ok(0);
        };
        let _one = self.matching.lock().await;
        let findings = {
            let inventory = inventory.clone();
            tokio::task::spawn_blocking(move || {
                dozor_inventory::match_inventory(&inventory, &index)
            })
            .await
            .map_err(|e| VulnError::Inventory(format!("the matcher stopped: {e}")))?
        };
        let (scan, results) = scan_of_inventory(agent, &findings);
        let n = results.len() as u64;
        let report = self
            .store
            .record_vuln_scan(&scan, &results, now_ms())
            .await?;
        self.raise_alerts(&report).await;
        Ok(n)
    }

    /// Loads the advisories from `vulns.advisories` (on a blocking thread) and matches every
    /// stored inventory again.
    pub async fn reload_advisories(&self) -> Result<AdvisoryStatus, VulnError> {
        let Some(path) = self.config.advisories.clone() else {
            return Err(VulnError::Advisories(
                "vulns.advisories is not set: no advisory feed to load".into(),
            ));
        };
        let loaded = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || AdvisoryIndex::load(&path))
                .await
                .map_err(|e| VulnError::Advisories(format!("the loader stopped: {e}")))?
                .map_err(|e| VulnError::Advisories(e.to_string()))?
        };
        let (index, problems) = loaded;
        let mut status = AdvisoryStatus {
            path: Some(path.display().to_string()),
            advisories: index.len() as u64,
            problems: problems
                .iter()
                .take(20)
                .map(|p| format!("{}: {}", p.source, p.reason))
                .collect(),
            problem_count: problems.len() as u64,
            loaded_at: Some(now_ms()),
            inventories_matched: 0,
        };
        tracing::info!(
            path = %path.display(),
            advisories = status.advisories,
            problems = status.problem_count,
            "advisories loaded"
        );
        if let Ok(mut slot) = self.advisories.write() {
            *slot = Some(Arc::new(index));
        }
        status.inventories_matched = self.rematch_all().await?;
        if let Ok(mut s) = self.advisory_status.write() {
            *s = status.clone();
        }
        Ok(status)
    }

    /// The last advisory load.
    pub fn advisory_status(&self) -> AdvisoryStatus {
        self.advisory_status
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    async fn rematch_all(&self) -> Result<u64, VulnError> {
        let agents: HashMap<String, Agent> = self
            .store
            .list_agents()
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut n = 0;
        for (agent_id, _, _) in self.store.list_agent_inventories().await? {
            let Some(agent) = agents.get(&agent_id) else {
                continue;
            };
            if agent.revoked_at.is_some() {
                continue;
            }
            let Some(stored) = self.store.get_agent_inventory(&agent_id).await? else {
                continue;
            };
            let inventory = Inventory {
                os: serde_json::from_value(stored.os).unwrap_or_default(),
                packages: serde_json::from_value(stored.packages).unwrap_or_default(),
            };
            self.match_inventory(agent, &inventory).await?;
            n += 1;
        }
        Ok(n)
    }
}

/// Loads the advisories at start (when configured) and opens expired acceptances every
/// minute, until the server closes.
pub async fn run_background(service: Arc<VulnService>, mut closing: watch::Receiver<bool>) {
    if service.config.advisories.is_some()
        && let Err(e) = service.reload_advisories().await
    {
        tracing::warn!(error = %e, "vulnerability advisories were not loaded");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = closing.changed() => return,
        }
        if *closing.borrow() {
            return;
        }
        match service.store.expire_vuln_acceptances(now_ms()).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(
                    count = ids.len(),
                    "accepted vulnerabilities past their expiry are open again"
                );
                crate::audit::append_audit(
                    service.store.as_ref(),
                    "system",
                    "vuln.acceptance.expired",
                    "vulns".into(),
                    json!({ "ids": ids }),
                )
                .await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiring vulnerability acceptances failed"),
        }
    }
}

/// Enrolled agents by the addresses they report, to link a scanned host to its agent.
pub(crate) struct AgentsByAddress(HashMap<IpAddr, (String, String)>);

impl AgentsByAddress {
    pub(crate) async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut agents: Vec<Agent> = store
            .list_agents()
            .await?
            .into_iter()
            .filter(|a| a.revoked_at.is_none())
            .collect();
        // The most recently seen agent wins an address two agents report (a reused DHCP lease).
        agents.sort_by_key(|a| a.last_seen);
        let mut by_ip = HashMap::new();
        for a in agents {
            for ip in &a.facts.ips {
                if let Ok(ip) = ip.parse::<IpAddr>()
                    && !ip.is_loopback()
                    && !ip.is_unspecified()
                {
                    by_ip.insert(ip, (a.id.clone(), a.facts.hostname.clone()));
                }
            }
        }
        Ok(AgentsByAddress(by_ip))
    }

    fn find(&self, host: &str) -> Option<&(String, String)> {
        host.parse::<IpAddr>().ok().and_then(|ip| self.0.get(&ip))
    }
}

/// The address a host's inventory findings are filed under: its first routable address (the
/// one a network scan would name), else its host name.
pub(crate) fn agent_host(agent: &Agent) -> String {
    let ips: Vec<IpAddr> = agent
        .facts
        .ips
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .filter(|ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip))
        .collect();
    ips.iter()
        .find(|ip| ip.is_ipv4())
        .or(ips.first())
        .map(ToString::to_string)
        .unwrap_or_else(|| agent.facts.hostname.clone())
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A parsed report as a scan and its results.
pub(crate) fn scan_of_report(
    parsed: &mut ParsedReport,
    name: Option<String>,
    origin: &str,
    by: &str,
    agents: &AgentsByAddress,
) -> (NewVulnScan, Vec<NewVulnResult>) {
    let results: Vec<NewVulnResult> = std::mem::take(&mut parsed.results)
        .into_iter()
        .map(|r| result_of(r, agents))
        .collect();
    let mut hosts: Vec<String> = parsed.hosts.iter().map(|h| h.address.clone()).collect();
    hosts.extend(results.iter().map(|r| r.host.clone()));
    hosts.sort();
    hosts.dedup();
    hosts.retain(|h| !h.trim().is_empty());
    let scan = NewVulnScan {
        source: "openvas".into(),
        origin: origin.into(),
        report_id: non_empty(&parsed.report_id),
        name: name.or_else(|| non_empty(&parsed.task_name)),
        started_at: parsed.scan_start_ms,
        finished_at: parsed.scan_end_ms,
        hosts,
        by: by.into(),
    };
    (scan, results)
}

fn result_of(r: VulnResult, agents: &AgentsByAddress) -> NewVulnResult {
    let agent = agents.find(&r.host);
    let port = if r.port_raw.trim().is_empty() {
        "general".to_owned()
    } else {
        r.port_raw.trim().to_owned()
    };
    let mut details = serde_json::Map::new();
    let texts = [
        ("summary", &r.summary),
        ("insight", &r.insight),
        ("affected", &r.affected),
        ("impact", &r.impact),
        ("detection", &r.vuldetect),
        ("description", &r.description),
        ("qod_type", &r.qod_type),
        ("result_id", &r.result_id),
        ("cvss_vector_v4", &r.cvss_vector_v4),
        ("original_threat", &r.original_threat),
        ("epss_cve", &r.epss_cve),
        ("protocol", &r.protocol),
        ("asset_id", &r.asset_id),
    ];
    for (key, v) in texts {
        if let Some(v) = non_empty(v) {
            details.insert(key.into(), Value::String(v));
        }
    }
    if let Some(p) = r.port {
        details.insert("port_number".into(), json!(p));
    }
    if r.overridden {
        details.insert("overridden".into(), json!(true));
        details.insert("original_level".into(), json!(r.original_level.as_str()));
    }
    NewVulnResult {
        host: r.host.trim().to_owned(),
        hostname: non_empty(&r.hostname).or_else(|| agent.map(|a| a.1.clone())),
        agent_id: agent.map(|a| a.0.clone()),
        port,
        nvt_oid: r.nvt_oid.trim().to_owned(),
        name: r.name.trim().to_owned(),
        family: non_empty(&r.family),
        cvss_base: r.cvss_base,
        cvss_vector_v2: non_empty(&r.cvss_vector_v2),
        cvss_vector_v3: non_empty(&r.cvss_vector_v3),
        severity: r.severity,
        original_severity: r.overridden.then_some(r.original_severity),
        level: r.level.as_str().to_owned(),
        qod: r.qod,
        threat: non_empty(&r.threat),
        cves: r.cves.clone(),
        epss_score: r.epss_score,
        epss_percentile: r.epss_percentile,
        solution_type: non_empty(&r.solution_type),
        solution: non_empty(&r.solution),
        details: Value::Object(details),
    }
}

/// An agent's inventory findings as a scan of source `inventory` covering its host.
pub(crate) fn scan_of_inventory(
    agent: &Agent,
    findings: &[Finding],
) -> (NewVulnScan, Vec<NewVulnResult>) {
    let host = agent_host(agent);
    let results = findings
        .iter()
        .map(|f| finding_result(&host, agent, f))
        .collect();
    let scan = NewVulnScan {
        source: "inventory".into(),
        origin: "agent".into(),
        report_id: None,
        name: Some(format!("inventory of {}", agent.facts.hostname)),
        started_at: None,
        finished_at: None,
        hosts: vec![host],
        by: format!("agent:{}", agent.id),
    };
    (scan, results)
}

fn finding_result(host: &str, agent: &Agent, f: &Finding) -> NewVulnResult {
    use dozor_inventory::cvss::Severity;
    // A feed's word when there is no score: the middle of its CVSS range.
    let word_score = |s: Severity| match s {
        Severity::Critical => 9.5,
        Severity::High => 8.0,
        Severity::Medium => 5.5,
        Severity::Low => 2.0,
        Severity::None => 0.0,
    };
    let (severity, rated) = match (f.cvss_score, f.severity) {
        (Some(score), _) => (score, true),
        (None, Some(word)) => (word_score(word), true),
        // Unrated by the feed: an affected package is still worth a look.
        (None, None) => (5.0, false),
    };
    let level = dozor_gmp::SeverityLevel::from_score(severity)
        .as_str()
        .to_owned();
    let (v2, v3) = match &f.cvss_vector {
        Some(v) if v.starts_with("CVSS:3") => (None, Some(v.clone())),
        Some(v) if v.starts_with("CVSS:4") => (None, None),
        Some(v) => (Some(v.clone()), None),
        None => (None, None),
    };
    let mut details = json!({
        "package": f.package,
        "installed_version": f.installed_version,
        "matched_name": f.matched_name,
        "aliases": f.aliases,
    });
    if let Some(fixed) = &f.fixed_version {
        details["fixed_version"] = json!(fixed);
    }
    if let Some(arch) = &f.arch {
        details["arch"] = json!(arch);
    }
    if let Some(summary) = &f.summary {
        details["summary"] = json!(summary);
    }
    if let Some(v) = &f.cvss_vector
        && v.starts_with("CVSS:4")
    {
        details["cvss_vector_v4"] = json!(v);
    }
    if !rated {
        details["severity_unrated"] = json!(true);
    }
    NewVulnResult {
        host: host.to_owned(),
        hostname: Some(agent.facts.hostname.clone()),
        agent_id: Some(agent.id.clone()),
        port: format!(
            "package/{}/{}{}",
            f.ecosystem,
            f.package,
            f.arch
                .as_deref()
                .map(|a| format!(":{a}"))
                .unwrap_or_default()
        ),
        nvt_oid: f.advisory_id.clone(),
        name: f.name().to_owned(),
        family: Some(f.ecosystem.clone()),
        cvss_base: f.cvss_score,
        cvss_vector_v2: v2,
        cvss_vector_v3: v3,
        severity,
        original_severity: None,
        level,
        qod: None,
        threat: None,
        cves: f.cves.clone(),
        epss_score: None,
        epss_percentile: None,
        solution_type: Some(if f.fixed_version.is_some() {
            "VendorFix".into()
        } else {
            "NoneAvailable".into()
        }),
        solution: Some(f.solution()),
        details,
    }
}

/// Most results an alert event lists one by one.
const MAX_EVENT_RESULTS: usize = 100;

/// Raised results read per slice of this many ids.
const RAISED_SLICE: usize = 256;

/// The new results of one host and level, as its alert event lists them: the worst, how many,
/// and the first [`MAX_EVENT_RESULTS`] in brief.
struct AlertGroup {
    worst: StoredVuln,
    count: usize,
    last_seen: i64,
    listed: Vec<Value>,
}

impl AlertGroup {
    fn brief(r: &StoredVuln) -> Value {
        json!({"id": r.id, "name": r.name, "port": r.port, "oid": r.nvt_oid,
            "severity": r.severity, "cves": r.cves, "solution": r.solution})
    }

    fn new(v: StoredVuln) -> Self {
        AlertGroup {
            count: 1,
            last_seen: v.last_seen,
            listed: vec![Self::brief(&v)],
            worst: v,
        }
    }

    fn add(&mut self, v: StoredVuln) {
        self.count += 1;
        self.last_seen = self.last_seen.max(v.last_seen);
        if self.listed.len() < MAX_EVENT_RESULTS {
            self.listed.push(Self::brief(&v));
        }
        if v.severity.total_cmp(&self.worst.severity).is_gt() {
            self.worst = v;
        }
    }
}

/// The event a vulnerability alert points at: the new results of one host at one level
/// (ECS `vulnerability.*` of the worst, `dozor.vulns` listing them).
fn group_event(group: &AlertGroup) -> Value {
    let v = &group.worst;
    let mut host = json!({ "name": v.hostname.clone().unwrap_or_else(|| v.host.clone()) });
    if v.host.parse::<IpAddr>().is_ok() {
        host["ip"] = json!([v.host]);
    }
    let id = v.cves.first().cloned().unwrap_or_else(|| v.nvt_oid.clone());
    let listed = group.listed.clone();
    let message = if group.count == 1 {
        format!(
            "{} vulnerability on {} ({}): {}",
            v.level, v.host, v.port, v.name
        )
    } else {
        format!(
            "{} new {} vulnerabilities on {}; worst: {} ({})",
            group.count, v.level, v.host, v.name, v.port
        )
    };
    let mut doc = json!({
        "@timestamp": chrono::DateTime::from_timestamp_millis(v.last_seen)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "event": {
            "kind": "alert",
            "category": ["vulnerability"],
            "type": ["info"],
            "action": "vulnerability-found",
            "module": "dozor-vulns",
            "dataset": format!("vulns.{}", v.source),
            "severity": (v.severity.max(0.0) * 10.0).round() as i64,
        },
        "host": host,
        "message": message,
        "vulnerability": {
            "id": id,
            "description": v.name,
            "severity": v.level,
            "category": v.family.iter().collect::<Vec<_>>(),
            "enumeration": if v.cves.is_empty() { "OID" } else { "CVE" },
            "scanner": { "vendor": if v.source == "openvas" { "Greenbone" } else { "Dozor inventory" } },
        },
        "dozor": { "vulns": {
            "count": group.count,
            "results": listed,
        }},
    });
    if let Some(score) = v.cvss_base {
        doc["vulnerability"]["score"] = json!({ "base": score });
    }
    if let Some(agent) = &v.agent_id {
        doc["agent"] = json!({ "id": agent });
    }
    doc
}
