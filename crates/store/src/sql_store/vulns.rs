//! Vulnerability management (issue 15): `vuln_scan_result` records, the scans that brought
//! them, agents' software inventories and gvmd scan jobs. Written once for both drivers,
//! called by the [`Store`](crate::Store) methods of the same names in `store.rs`.
//!
//! A result is one row per `(host, port, nvt_oid)`, unique by `vuln_key` (SHA-256 of the
//! three, length-prefixed). A scan is recorded in one transaction under a lock of its own:
//! the scan row, every result inserted or updated, and the open results of its hosts that it
//! did not find marked `fixed` — a report is stored whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::intel::contains_pattern;
use super::row::{Row, parsed};
use super::{Driver, On, SqlStore, Stmt, Tx, json, sql};
use crate::common::{check_text, corrupt};
use crate::error::{Result, StoreError};
use crate::query::sql::{Param, SqlBuilder};
use crate::types::*;

const VULN_COLS: &str = "id, source, host, hostname, agent_id, port, nvt_oid, name, family, \
    cvss_base, cvss_vector_v2, cvss_vector_v3, severity, original_severity, level, qod, threat, \
    cves, epss_score, epss_percentile, solution_type, solution, details, status, status_reason, \
    status_until, status_by, status_at, first_seen, last_seen, fixed_at, last_scan_id, times_seen";
const SCAN_COLS: &str = "id, source, origin, report_id, name, started_at, finished_at, hosts, \
    recorded_at, recorded_by, counts";
const INVENTORY_COLS: &str = "agent_id, fingerprint, os, packages, package_count, reported_at";
const JOB_COLS: &str = "name, spec, enabled, state, updated_at, updated_by";

/// Lock key serializing scan recordings (`"dozorvul"`): each reads rows, decides and writes.
const VULN_LOCK_KEY: i64 = 0x646f_7a6f_7276_756c;
/// Keys (or hosts) per statement.
const KEY_CHUNK: usize = 500;
/// Longest host, port, OID, hostname, agent id, bytes.
const MAX_KEY_TEXT: usize = 1024;
/// Longest name, solution, vector … , bytes.
const MAX_TEXT: usize = 64 * 1024;
/// Longest status reason, bytes.
const MAX_REASON: usize = 4096;
/// Largest inventory (its JSON), bytes.
pub const MAX_INVENTORY_BYTES: usize = 16 * 1024 * 1024;

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidArgument(msg)
}

/// The identity of a result: SHA-256 of the length-prefixed host, port and OID.
fn vuln_key(host: &str, port: &str, oid: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [host, port, oid] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

fn in_range(what: &str, at: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<()> {
    match v {
        Some(x) if !(x.is_finite() && (lo..=hi).contains(&x)) => Err(invalid(format!(
            "{at}: {what} {x} is not between {lo} and {hi}"
        ))),
        _ => Ok(()),
    }
}

/// Checks one result; the error names its index, host and OID.
fn check_result(i: usize, r: &NewVulnResult) -> Result<()> {
    let at = format!("result {i} (host {:?}, oid {:?})", r.host, r.nvt_oid);
    let texts = [
        ("host", r.host.as_str(), true, MAX_KEY_TEXT),
        ("port", r.port.as_str(), true, MAX_KEY_TEXT),
        ("nvt_oid", r.nvt_oid.as_str(), true, MAX_KEY_TEXT),
        ("name", r.name.as_str(), true, MAX_TEXT),
    ];
    for (what, v, required, max) in texts {
        check_text(what, v, required, max).map_err(|e| invalid(format!("{at}: {e}")))?;
    }
    let optional = [
        ("hostname", &r.hostname, MAX_KEY_TEXT),
        ("agent_id", &r.agent_id, MAX_KEY_TEXT),
        ("family", &r.family, MAX_TEXT),
        ("cvss_vector_v2", &r.cvss_vector_v2, MAX_KEY_TEXT),
        ("cvss_vector_v3", &r.cvss_vector_v3, MAX_KEY_TEXT),
        ("threat", &r.threat, MAX_KEY_TEXT),
        ("solution_type", &r.solution_type, MAX_KEY_TEXT),
        ("solution", &r.solution, MAX_TEXT),
    ];
    for (what, v, max) in optional {
        if let Some(v) = v {
            check_text(what, v, false, max).map_err(|e| invalid(format!("{at}: {e}")))?;
        }
    }
    if !VULN_LEVELS.contains(&r.level.as_str()) {
        return Err(invalid(format!(
            "{at}: level {:?} is none of {}",
            r.level,
            VULN_LEVELS.join(", ")
        )));
    }
    in_range("severity", &at, Some(r.severity), -1.0, 10.0)?;
    in_range("original_severity", &at, r.original_severity, -1.0, 10.0)?;
    in_range("cvss_base", &at, r.cvss_base, 0.0, 10.0)?;
    in_range("epss_score", &at, r.epss_score, 0.0, 1.0)?;
    in_range("epss_percentile", &at, r.epss_percentile, 0.0, 1.0)?;
    if let Some(q) = r.qod
        && q > 100
    {
        return Err(invalid(format!("{at}: qod {q} is over 100")));
    }
    if r.cves.iter().any(|c| c.trim().is_empty() || c.len() > 64) {
        return Err(invalid(format!(
            "{at}: a CVE id is empty or longer than 64 bytes"
        )));
    }
    Ok(())
}

fn check_scan(s: &NewVulnScan) -> Result<()> {
    if !VULN_SOURCES.contains(&s.source.as_str()) {
        return Err(invalid(format!(
            "scan source {:?} is none of {}",
            s.source,
            VULN_SOURCES.join(", ")
        )));
    }
    check_text("scan origin", &s.origin, true, 32)?;
    check_text("scan recorded by", &s.by, true, 256)?;
    for (what, v) in [("report id", &s.report_id), ("scan name", &s.name)] {
        if let Some(v) = v {
            check_text(what, v, false, MAX_KEY_TEXT)?;
        }
    }
    if let Some(h) = s.hosts.iter().find(|h| h.len() > MAX_KEY_TEXT) {
        return Err(invalid(format!(
            "scan host {:?}…: longer than {MAX_KEY_TEXT} bytes",
            h.chars().take(32).collect::<String>()
        )));
    }
    Ok(())
}

fn vuln<R: Row>(r: &R) -> Result<StoredVuln> {
    let qod: Option<i64> = r.get("qod")?;
    let cves: Value = r.json("cves")?.unwrap_or(Value::Array(Vec::new()));
    let cves = serde_json::from_value(cves).map_err(|e| corrupt("vuln cves", e))?;
    let times_seen: i64 = r.get("times_seen")?;
    Ok(StoredVuln {
        id: r.get("id")?,
        source: r.get("source")?,
        host: r.get("host")?,
        hostname: r.get("hostname")?,
        agent_id: r.get("agent_id")?,
        port: r.get("port")?,
        nvt_oid: r.get("nvt_oid")?,
        name: r.get("name")?,
        family: r.get("family")?,
        cvss_base: r.get("cvss_base")?,
        cvss_vector_v2: r.get("cvss_vector_v2")?,
        cvss_vector_v3: r.get("cvss_vector_v3")?,
        severity: r.get("severity")?,
        original_severity: r.get("original_severity")?,
        level: r.get("level")?,
        qod: qod.map(|q| q.clamp(0, 100) as u8),
        threat: r.get("threat")?,
        cves,
        epss_score: r.get("epss_score")?,
        epss_percentile: r.get("epss_percentile")?,
        solution_type: r.get("solution_type")?,
        solution: r.get("solution")?,
        details: r.json("details")?.unwrap_or(Value::Null),
        status: parsed(r, "status", "vulnerability status")?,
        status_reason: r.get("status_reason")?,
        status_until: r.get("status_until")?,
        status_by: r.get("status_by")?,
        status_at: r.get("status_at")?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        fixed_at: r.get("fixed_at")?,
        last_scan_id: r.get("last_scan_id")?,
        times_seen: times_seen.max(0) as u64,
    })
}

fn scan<R: Row>(r: &R) -> Result<VulnScan> {
    let hosts: i64 = r.get("hosts")?;
    let counts = r.json("counts")?.unwrap_or(Value::Null);
    Ok(VulnScan {
        id: r.get("id")?,
        source: r.get("source")?,
        origin: r.get("origin")?,
        report_id: r.get("report_id")?,
        name: r.get("name")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        hosts: hosts.max(0) as u64,
        recorded_at: r.get("recorded_at")?,
        recorded_by: r.get("recorded_by")?,
        counts: serde_json::from_value(counts).unwrap_or_default(),
    })
}

fn inventory<R: Row>(r: &R) -> Result<AgentInventory> {
    let n: i64 = r.get("package_count")?;
    Ok(AgentInventory {
        agent_id: r.get("agent_id")?,
        fingerprint: r.get("fingerprint")?,
        os: r.json("os")?.unwrap_or(Value::Null),
        packages: r.json("packages")?.unwrap_or(Value::Array(Vec::new())),
        package_count: n.max(0) as u64,
        reported_at: r.get("reported_at")?,
    })
}

fn job<R: Row>(r: &R) -> Result<VulnScanJob> {
    Ok(VulnScanJob {
        name: r.get("name")?,
        spec: r.json("spec")?.unwrap_or(Value::Null),
        enabled: r.get("enabled")?,
        state: r.json("state")?.unwrap_or(Value::Null),
        updated_at: r.get("updated_at")?,
        updated_by: r.get("updated_by")?,
    })
}

/// What a recording knows of a stored result.
struct Known {
    id: i64,
    status: VulnStatus,
    status_until: Option<i64>,
    cves: Vec<String>,
    last_seen: i64,
}

/// Clean, sorted, unique CVE ids.
fn cve_set(cves: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = cves.iter().map(|c| c.trim().to_uppercase()).collect();
    set.into_iter().collect()
}

impl<D: Driver> SqlStore<D> {
    pub(super) async fn vuln_record(
        &self,
        s: &NewVulnScan,
        results: &[NewVulnResult],
        now: i64,
    ) -> Result<VulnScanReport> {
        check_scan(s)?;
        for (i, r) in results.iter().enumerate() {
            check_result(i, r)?;
        }
        // Repeats within one report (the same finding twice) are one result: the worst wins.
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut merged: HashMap<Vec<u8>, &NewVulnResult> = HashMap::new();
        for r in results {
            let key = vuln_key(&r.host, &r.port, &r.nvt_oid);
            match merged.get_mut(&key) {
                Some(kept) => {
                    if r.severity > kept.severity {
                        *kept = r;
                    }
                }
                None => {
                    order.push(key.clone());
                    merged.insert(key, r);
                }
            }
        }
        let seen_at = s.finished_at.or(s.started_at).unwrap_or(now);
        let mut hosts: BTreeSet<&str> = s.hosts.iter().map(String::as_str).collect();
        hosts.extend(merged.values().map(|r| r.host.as_str()));
        let mut counts = VulnScanCounts {
            results: order.len() as u64,
            ..VulnScanCounts::default()
        };
        for r in merged.values() {
            *counts.by_level.entry(r.level.clone()).or_default() += 1;
        }

        let mut tx = self.0.begin().await?;
        D::lock(&mut tx, &[VULN_LOCK_KEY]).await?;
        // The same report again (a retried import, a job that pulled it twice): stored once.
        if let Some(report_id) = s.report_id.as_deref().filter(|r| !r.is_empty()) {
            let st = sql!(
                "SELECT {SCAN_COLS} FROM vuln_scans WHERE source = ? AND report_id = ? \
                 ORDER BY id LIMIT 1",
                &s.source,
                report_id
            );
            if let Some(existing) = self.find(On::Tx(&mut tx), st, scan).await? {
                return Ok(VulnScanReport {
                    scan: existing,
                    raised: Vec::new(),
                });
            }
        }
        let st = sql!(
            "INSERT INTO vuln_scans (source, origin, report_id, name, started_at, finished_at, \
             hosts, recorded_at, recorded_by, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
            &s.source,
            &s.origin,
            &s.report_id,
            &s.name,
            s.started_at,
            s.finished_at,
            hosts.len() as i64,
            now,
            &s.by,
            json(Value::Object(Default::default()))
        );
        let scan_id: i64 = self.one(On::Tx(&mut tx), st, |r| r.get("id")).await?;

        let mut raised = Vec::new();
        for keys in order.chunks(KEY_CHUNK) {
            let known = self.vuln_known(&mut tx, keys).await?;
            for key in keys {
                let r = merged[key];
                let cves = cve_set(&r.cves);
                match known.get(key) {
                    Some(k) => {
                        let (status, reopened) = match k.status {
                            VulnStatus::Fixed => (VulnStatus::Open, true),
                            VulnStatus::Accepted if k.status_until.is_some_and(|u| u <= now) => {
                                (VulnStatus::Open, false)
                            }
                            other => (other, false),
                        };
                        if reopened {
                            counts.reopened += 1;
                            raised.push(k.id);
                        } else {
                            counts.seen_again += 1;
                        }
                        self.vuln_update(&mut tx, k, r, &cves, status, scan_id, seen_at, now)
                            .await?;
                    }
                    None => {
                        let id = self
                            .vuln_insert(&mut tx, key, &s.source, r, &cves, scan_id, seen_at, now)
                            .await?;
                        counts.new += 1;
                        raised.push(id);
                    }
                }
            }
        }

        let hosts: Vec<&str> = hosts.into_iter().collect();
        for chunk in hosts.chunks(KEY_CHUNK) {
            let mut b = SqlBuilder::new(D::DIALECT);
            b.push("UPDATE vuln_results SET status = 'fixed', fixed_at = ")
                .push_bind(Param::Int(seen_at))
                .push(", status_at = ")
                .push_bind(Param::Int(now))
                .push(", status_by = 'scan' WHERE source = ")
                .push_bind(Param::Text(s.source.clone()))
                .push(" AND status IN ('open', 'accepted') AND last_scan_id <> ")
                .push_bind(Param::Int(scan_id))
                // An older report imported late does not undo what a newer one found.
                .push(" AND last_seen <= ")
                .push_bind(Param::Int(seen_at))
                .push(" AND host IN (");
            for (i, h) in chunk.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.push_bind(Param::Text((*h).to_owned()));
            }
            b.push(")");
            counts.fixed += self.exec(On::Tx(&mut tx), Stmt::built(b)).await?;
        }
        let counts_json = serde_json::to_value(&counts).map_err(|e| corrupt("scan counts", e))?;
        let st = sql!(
            "UPDATE vuln_scans SET counts = ? WHERE id = ? RETURNING {SCAN_COLS}",
            json(counts_json),
            scan_id
        );
        let stored = self.one(On::Tx(&mut tx), st, scan).await?;
        tx.commit().await?;
        Ok(VulnScanReport {
            scan: stored,
            raised,
        })
    }

    async fn vuln_known(
        &self,
        tx: &mut Tx<D>,
        keys: &[Vec<u8>],
    ) -> Result<HashMap<Vec<u8>, Known>> {
        let mut st = Stmt::new(format!(
            "SELECT id, vuln_key, status, status_until, cves, last_seen FROM vuln_results \
             WHERE vuln_key IN ({})",
            vec!["?"; keys.len()].join(", ")
        ));
        for k in keys {
            st = st.arg(k.clone());
        }
        let rows = self.all(On::Tx(tx), st).await?;
        let mut known = HashMap::with_capacity(rows.len());
        for r in &rows {
            let key: Vec<u8> = r.get("vuln_key")?;
            let cves: Value = r.json("cves")?.unwrap_or(Value::Array(Vec::new()));
            known.insert(
                key,
                Known {
                    id: r.get("id")?,
                    status: parsed(r, "status", "vulnerability status")?,
                    status_until: r.get("status_until")?,
                    cves: serde_json::from_value(cves).map_err(|e| corrupt("vuln cves", e))?,
                    last_seen: r.get("last_seen")?,
                },
            );
        }
        Ok(known)
    }

    #[allow(clippy::too_many_arguments)]
    async fn vuln_insert(
        &self,
        tx: &mut Tx<D>,
        key: &[u8],
        source: &str,
        r: &NewVulnResult,
        cves: &[String],
        scan_id: i64,
        seen_at: i64,
        now: i64,
    ) -> Result<i64> {
        let st = sql!(
            "INSERT INTO vuln_results (vuln_key, source, host, hostname, agent_id, port, \
             nvt_oid, name, family, cvss_base, cvss_vector_v2, cvss_vector_v3, severity, \
             original_severity, level, qod, threat, cves, epss_score, epss_percentile, \
             solution_type, solution, details, status, status_by, status_at, first_seen, \
             last_seen, last_scan_id, times_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
             ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', 'scan', ?, ?, ?, ?, 1) RETURNING id",
            key,
            source,
            &r.host,
            &r.hostname,
            &r.agent_id,
            &r.port,
            &r.nvt_oid,
            &r.name,
            &r.family,
            r.cvss_base,
            &r.cvss_vector_v2,
            &r.cvss_vector_v3,
            r.severity,
            r.original_severity,
            &r.level,
            r.qod.map(i64::from),
            &r.threat,
            json(Value::from(cves.to_vec())),
            r.epss_score,
            r.epss_percentile,
            &r.solution_type,
            &r.solution,
            json(details(r)),
            now,
            seen_at,
            seen_at,
            scan_id
        );
        let id: i64 = self.one(On::Tx(tx), st, |row| row.get("id")).await?;
        self.vuln_cves_insert(tx, id, cves).await?;
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    async fn vuln_update(
        &self,
        tx: &mut Tx<D>,
        k: &Known,
        r: &NewVulnResult,
        cves: &[String],
        status: VulnStatus,
        scan_id: i64,
        seen_at: i64,
        now: i64,
    ) -> Result<()> {
        let changed_status = status != k.status;
        let st = sql!(
            "UPDATE vuln_results SET hostname = COALESCE(?, hostname), \
             agent_id = COALESCE(?, agent_id), name = ?, family = ?, cvss_base = ?, \
             cvss_vector_v2 = ?, cvss_vector_v3 = ?, severity = ?, original_severity = ?, \
             level = ?, qod = ?, threat = ?, cves = ?, epss_score = ?, epss_percentile = ?, \
             solution_type = ?, solution = ?, details = ?, status = ?, \
             status_by = CASE WHEN ? THEN 'scan' ELSE status_by END, \
             status_at = CASE WHEN ? THEN ? ELSE status_at END, \
             status_until = CASE WHEN ? THEN NULL ELSE status_until END, \
             fixed_at = NULL, first_seen = LEAST(first_seen, ?), last_seen = ?, \
             last_scan_id = ?, times_seen = times_seen + 1 WHERE id = ?",
            &r.hostname,
            &r.agent_id,
            &r.name,
            &r.family,
            r.cvss_base,
            &r.cvss_vector_v2,
            &r.cvss_vector_v3,
            r.severity,
            r.original_severity,
            &r.level,
            r.qod.map(i64::from),
            &r.threat,
            json(Value::from(cves.to_vec())),
            r.epss_score,
            r.epss_percentile,
            &r.solution_type,
            &r.solution,
            json(details(r)),
            status.as_str(),
            changed_status,
            changed_status,
            now,
            changed_status,
            seen_at,
            seen_at.max(k.last_seen),
            scan_id,
            k.id
        );
        self.exec(On::Tx(tx), st).await?;
        if k.cves != cves {
            let st = sql!("DELETE FROM vuln_cves WHERE vuln_id = ?", k.id);
            self.exec(On::Tx(tx), st).await?;
            self.vuln_cves_insert(tx, k.id, cves).await?;
        }
        Ok(())
    }

    async fn vuln_cves_insert(&self, tx: &mut Tx<D>, id: i64, cves: &[String]) -> Result<()> {
        if cves.is_empty() {
            return Ok(());
        }
        let mut st = Stmt::new(format!(
            "INSERT INTO vuln_cves (cve, vuln_id) VALUES {} ON CONFLICT DO NOTHING",
            vec!["(?, ?)"; cves.len()].join(", ")
        ));
        for c in cves {
            st = st.arg(c.as_str()).arg(id);
        }
        self.exec(On::Tx(tx), st).await?;
        Ok(())
    }

    fn vuln_filters(b: &mut SqlBuilder, q: &VulnQuery) {
        b.push(" WHERE 1 = 1");
        let exact = [
            ("host", &q.host),
            ("agent_id", &q.agent_id),
            ("nvt_oid", &q.nvt_oid),
            ("source", &q.source),
        ];
        for (col, v) in exact {
            if let Some(v) = v {
                b.push(" AND ")
                    .push(col)
                    .push(" = ")
                    .push_bind(Param::Text(v.clone()));
            }
        }
        if let Some(cve) = &q.cve {
            b.push(" AND id IN (SELECT vuln_id FROM vuln_cves WHERE cve = ")
                .push_bind(Param::Text(cve.trim().to_uppercase()))
                .push(")");
        }
        for (col, values) in [
            ("level", q.levels.clone()),
            (
                "status",
                q.statuses.iter().map(|s| s.as_str().to_owned()).collect(),
            ),
        ] {
            if values.is_empty() {
                continue;
            }
            b.push(" AND ").push(col).push(" IN (");
            for (i, v) in values.into_iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.push_bind(Param::Text(v));
            }
            b.push(")");
        }
        if let Some(min) = q.min_severity {
            b.push(" AND severity >= ").push_bind(Param::Real(min));
        }
        if let Some(part) = &q.contains {
            b.push(
                " AND lower(name || ' ' || host || ' ' || COALESCE(hostname, '') || ' ' || \
                 nvt_oid || ' ' || CAST(cves AS TEXT)) LIKE ",
            )
            .push_bind(Param::Text(contains_pattern(part)))
            .push(" ESCAPE '!'");
        }
    }

    pub(super) async fn vuln_rows(&self, q: &VulnQuery) -> Result<Vec<StoredVuln>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ").push(VULN_COLS).push(" FROM vuln_results");
        Self::vuln_filters(&mut b, q);
        if let Some((sev, id)) = q.after {
            b.push(" AND (severity < ")
                .push_bind(Param::Real(sev))
                .push(" OR (severity = ")
                .push_bind(Param::Real(sev))
                .push(" AND id < ")
                .push_bind(Param::Int(id))
                .push("))");
        }
        let limit = q.limit.clamp(1, MAX_VULN_PAGE);
        b.push(" ORDER BY severity DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit)));
        self.list(On::Read, Stmt::built(b), vuln).await
    }

    pub(super) async fn vuln_rows_by_id(&self, ids: &[i64]) -> Result<Vec<StoredVuln>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(KEY_CHUNK) {
            let mut st = Stmt::new(format!(
                "SELECT {VULN_COLS} FROM vuln_results WHERE id IN ({}) ORDER BY id",
                vec!["?"; chunk.len()].join(", ")
            ));
            for id in chunk {
                st = st.arg(*id);
            }
            out.extend(self.list(On::Read, st, vuln).await?);
        }
        Ok(out)
    }

    pub(super) async fn vuln_count(&self, q: &VulnQuery) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM vuln_results");
        Self::vuln_filters(&mut b, q);
        self.count(On::Read, Stmt::built(b)).await
    }

    pub(super) async fn vuln_row(&self, id: i64) -> Result<Option<StoredVuln>> {
        let st = sql!("SELECT {VULN_COLS} FROM vuln_results WHERE id = ?", id);
        self.find(On::Read, st, vuln).await
    }

    pub(super) async fn vuln_summary_of(&self, q: &VulnQuery, top: u32) -> Result<VulnSummary> {
        let top = i64::from(top.clamp(1, 1000));
        let mut summary = VulnSummary::default();
        for (col, into) in [("level", 0), ("status", 1)] {
            let mut b = SqlBuilder::new(D::DIALECT);
            b.push("SELECT ")
                .push(col)
                .push(" AS k, count(*) AS n FROM vuln_results");
            Self::vuln_filters(&mut b, q);
            b.push(" GROUP BY ").push(col);
            let rows = self.all(On::Read, Stmt::built(b)).await?;
            for r in &rows {
                let k: String = r.get("k")?;
                let n: i64 = r.get("n")?;
                let map = if into == 0 {
                    &mut summary.by_level
                } else {
                    &mut summary.by_status
                };
                map.insert(k, n.max(0) as u64);
            }
        }
        summary.total = summary.by_level.values().sum();

        let mut b = SqlBuilder::new(D::DIALECT);
        b.push(
            "SELECT host, max(hostname) AS hostname, max(agent_id) AS agent_id, count(*) AS n, \
             max(severity) AS worst, max(last_seen) AS last_seen, \
             sum(CASE WHEN level = 'critical' THEN 1 ELSE 0 END) AS critical, \
             sum(CASE WHEN level = 'high' THEN 1 ELSE 0 END) AS high, \
             sum(CASE WHEN level = 'medium' THEN 1 ELSE 0 END) AS medium, \
             sum(CASE WHEN level = 'low' THEN 1 ELSE 0 END) AS low, \
             sum(CASE WHEN level = 'log' THEN 1 ELSE 0 END) AS log \
             FROM vuln_results",
        );
        Self::vuln_filters(&mut b, q);
        b.push(" GROUP BY host ORDER BY worst DESC, n DESC, host LIMIT ")
            .push_bind(Param::Int(top));
        for r in &self.all(On::Read, Stmt::built(b)).await? {
            let mut by_level = BTreeMap::new();
            for level in ["critical", "high", "medium", "low", "log"] {
                let n: i64 = r.get(level)?;
                if n > 0 {
                    by_level.insert(level.to_owned(), n as u64);
                }
            }
            let n: i64 = r.get("n")?;
            summary.hosts.push(VulnHostSummary {
                host: r.get("host")?,
                hostname: r.get("hostname")?,
                agent_id: r.get("agent_id")?,
                by_level,
                total: n.max(0) as u64,
                max_severity: r.get("worst")?,
                last_seen: r.get("last_seen")?,
            });
        }

        let mut b = SqlBuilder::new(D::DIALECT);
        b.push(
            "SELECT c.cve AS cve, count(DISTINCT v.host) AS hosts, count(*) AS n, \
             max(v.severity) AS worst, max(v.epss_score) AS epss \
             FROM vuln_cves c JOIN (SELECT id, host, severity, epss_score FROM vuln_results",
        );
        Self::vuln_filters(&mut b, q);
        b.push(
            ") v ON v.id = c.vuln_id GROUP BY c.cve ORDER BY worst DESC, hosts DESC, c.cve LIMIT ",
        )
        .push_bind(Param::Int(top));
        for r in &self.all(On::Read, Stmt::built(b)).await? {
            let hosts: i64 = r.get("hosts")?;
            let n: i64 = r.get("n")?;
            summary.cves.push(VulnCveSummary {
                cve: r.get("cve")?,
                hosts: hosts.max(0) as u64,
                results: n.max(0) as u64,
                max_severity: r.get("worst")?,
                max_epss: r.get("epss")?,
            });
        }
        Ok(summary)
    }

    pub(super) async fn vuln_scan_rows(
        &self,
        source: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VulnScan>> {
        let limit = i64::from(limit.clamp(1, MAX_VULN_PAGE));
        let st = match source {
            Some(s) => sql!(
                "SELECT {SCAN_COLS} FROM vuln_scans WHERE source = ? ORDER BY id DESC LIMIT ?",
                s,
                limit
            ),
            None => sql!(
                "SELECT {SCAN_COLS} FROM vuln_scans ORDER BY id DESC LIMIT ?",
                limit
            ),
        };
        self.list(On::Read, st, scan).await
    }

    pub(super) async fn vuln_set_status(
        &self,
        id: i64,
        req: &VulnStatusRequest,
        by: &str,
        now: i64,
    ) -> Result<Option<StoredVuln>> {
        check_text("changed by", by, true, 256)?;
        let reason = req
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if let Some(r) = reason {
            check_text("reason", r, true, MAX_REASON)?;
        }
        let (reason, until) = match req.status {
            VulnStatus::Accepted | VulnStatus::FalsePositive => {
                let Some(reason) = reason else {
                    return Err(invalid(format!(
                        "status {}: a reason is required",
                        req.status
                    )));
                };
                if let Some(u) = req.until
                    && u <= now
                {
                    return Err(invalid(
                        "until: the acceptance would already have ended".into(),
                    ));
                }
                let until = (req.status == VulnStatus::Accepted)
                    .then_some(req.until)
                    .flatten();
                (Some(reason), until)
            }
            VulnStatus::Open => (reason, None),
            VulnStatus::Fixed => {
                return Err(invalid(
                    "status fixed: a later scan of the host decides that, not an operator".into(),
                ));
            }
        };
        let st = sql!(
            "UPDATE vuln_results SET status = ?, status_reason = ?, status_until = ?, \
             status_by = ?, status_at = ? WHERE id = ? RETURNING {VULN_COLS}",
            req.status.as_str(),
            reason,
            until,
            by,
            now,
            id
        );
        self.find(On::Write, st, vuln).await
    }

    pub(super) async fn vuln_expire_acceptances(&self, now: i64) -> Result<Vec<i64>> {
        let st = sql!(
            "UPDATE vuln_results SET status = 'open', status_by = 'expiry', status_at = ? \
             WHERE status = 'accepted' AND status_until IS NOT NULL AND status_until <= ? \
             RETURNING id",
            now,
            now
        );
        self.list(On::Write, st, |r| r.get("id")).await
    }

    pub(super) async fn inventory_put(&self, inv: &AgentInventory) -> Result<()> {
        check_text("agent id", &inv.agent_id, true, MAX_KEY_TEXT)?;
        check_text("inventory fingerprint", &inv.fingerprint, true, 128)?;
        let size = inv.packages.to_string().len();
        if size > MAX_INVENTORY_BYTES {
            return Err(invalid(format!(
                "inventory of {}: {size} bytes, over {MAX_INVENTORY_BYTES}",
                inv.agent_id
            )));
        }
        let st = sql!(
            "INSERT INTO agent_inventories ({INVENTORY_COLS}) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (agent_id) DO UPDATE SET fingerprint = excluded.fingerprint, \
             os = excluded.os, packages = excluded.packages, \
             package_count = excluded.package_count, reported_at = excluded.reported_at",
            &inv.agent_id,
            &inv.fingerprint,
            json(inv.os.clone()),
            json(inv.packages.clone()),
            inv.package_count as i64,
            inv.reported_at
        );
        self.exec(On::Write, st).await?;
        Ok(())
    }

    pub(super) async fn inventory_row(&self, agent_id: &str) -> Result<Option<AgentInventory>> {
        let st = sql!(
            "SELECT {INVENTORY_COLS} FROM agent_inventories WHERE agent_id = ?",
            agent_id
        );
        self.find(On::Read, st, inventory).await
    }

    pub(super) async fn inventory_agents(&self) -> Result<Vec<(String, String, i64)>> {
        let st = sql!(
            "SELECT agent_id, fingerprint, reported_at FROM agent_inventories ORDER BY agent_id"
        );
        self.list(On::Read, st, |r| {
            Ok((
                r.get("agent_id")?,
                r.get("fingerprint")?,
                r.get("reported_at")?,
            ))
        })
        .await
    }

    pub(super) async fn scan_job_put(&self, j: &VulnScanJob) -> Result<VulnScanJob> {
        super::check_playbook_name(&j.name).map_err(|_| {
            invalid(format!(
                "scan job name {:?}: 1–128 letters, digits, '-', '_' or '.'",
                j.name
            ))
        })?;
        check_text("updated_by", &j.updated_by, true, 256)?;
        let st = sql!(
            "INSERT INTO vuln_scan_jobs ({JOB_COLS}) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, enabled = excluded.enabled, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING {JOB_COLS}",
            &j.name,
            json(j.spec.clone()),
            j.enabled,
            json(j.state.clone()),
            j.updated_at,
            &j.updated_by
        );
        self.one(On::Write, st, job).await
    }

    pub(super) async fn scan_job_row(&self, name: &str) -> Result<Option<VulnScanJob>> {
        let st = sql!("SELECT {JOB_COLS} FROM vuln_scan_jobs WHERE name = ?", name);
        self.find(On::Read, st, job).await
    }

    pub(super) async fn scan_job_rows(&self) -> Result<Vec<VulnScanJob>> {
        let st = sql!("SELECT {JOB_COLS} FROM vuln_scan_jobs ORDER BY name");
        self.list(On::Read, st, job).await
    }

    pub(super) async fn scan_job_delete(&self, name: &str) -> Result<bool> {
        let st = sql!("DELETE FROM vuln_scan_jobs WHERE name = ?", name);
        Ok(self.exec(On::Write, st).await? > 0)
    }

    pub(super) async fn scan_job_state(&self, name: &str, state: &Value) -> Result<bool> {
        let st = sql!(
            "UPDATE vuln_scan_jobs SET state = ? WHERE name = ?",
            json(state.clone()),
            name
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }
}

/// The details as stored: an object (anything else is kept under `value`).
fn details(r: &NewVulnResult) -> Value {
    match &r.details {
        Value::Object(_) => r.details.clone(),
        Value::Null => Value::Object(Default::default()),
        other => serde_json::json!({ "value": other }),
    }
}
