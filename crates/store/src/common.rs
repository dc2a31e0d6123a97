//! Logic shared by both backends (no SQL dialect specifics beyond the builder).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use uuid::Uuid;

use crate::cursor;
use crate::error::{Result, StoreError};
use crate::query::sql::{Dialect, Param, SqlBuilder};
use crate::types::*;

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Detections grouped for a batch: (rule id, event id) pairs deduplicated, only events in
/// `inserted`, sorted by event time (then rule id). Returns them and the skipped count.
pub(crate) fn batch_detections<'a>(
    detections: &'a [Detection],
    inserted: &HashSet<Uuid>,
) -> (Vec<&'a Detection>, usize) {
    let mut seen = HashSet::new();
    let mut keep: Vec<&Detection> = detections
        .iter()
        .filter(|d| inserted.contains(&d.event_id) && seen.insert((d.rule_id.as_str(), d.event_id)))
        .collect();
    keep.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.rule_id.cmp(&b.rule_id)));
    let skipped = detections.len() - keep.len();
    (keep, skipped)
}

/// One host's share of a batch of newly inserted events.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HostSeen {
    pub key: String,
    pub name: String,
    pub agent_id: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_received: i64,
    pub events: i64,
}

/// The hosts the newly inserted events of a batch name, in first-seen order.
pub(crate) fn hosts_of(events: &[NewEvent], inserted: &HashSet<Uuid>) -> Vec<HostSeen> {
    let mut order: Vec<HostSeen> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for e in events.iter().filter(|e| inserted.contains(&e.id)) {
        let Some(name) = event_host(&e.doc) else {
            continue;
        };
        let key = host_key(name);
        match at.get(&key) {
            Some(&i) => {
                let h = &mut order[i];
                h.first_seen = h.first_seen.min(e.ts);
                h.last_seen = h.last_seen.max(e.ts);
                h.last_received = h.last_received.max(e.received_at);
                h.events += 1;
                if e.agent_id.is_some() {
                    h.agent_id.clone_from(&e.agent_id);
                }
            }
            None => {
                at.insert(key.clone(), order.len());
                order.push(HostSeen {
                    key,
                    name: name.to_owned(),
                    agent_id: e.agent_id.clone(),
                    first_seen: e.ts,
                    last_seen: e.ts,
                    last_received: e.received_at,
                    events: 1,
                });
            }
        }
    }
    order
}

/// Accumulates the alerts a batch touched (first-touch order, final state).
#[derive(Default)]
pub(crate) struct BatchAlerts {
    order: Vec<i64>,
    map: HashMap<i64, DetectionOutcome>,
    rules: BTreeMap<String, (i64, i64)>,
}

impl BatchAlerts {
    pub(crate) fn add(&mut self, o: DetectionOutcome, ts: i64) {
        let r = self.rules.entry(o.alert.rule_id.clone()).or_insert((0, ts));
        r.0 += 1;
        r.1 = r.1.max(ts);
        match self.map.get_mut(&o.alert.id) {
            Some(prev) => prev.alert = o.alert,
            None => {
                self.order.push(o.alert.id);
                self.map.insert(o.alert.id, o);
            }
        }
    }

    /// (rule id, hits, latest hit time).
    pub(crate) fn rule_hits(&self) -> impl Iterator<Item = (&str, i64, i64)> {
        self.rules.iter().map(|(k, (n, t))| (k.as_str(), *n, *t))
    }

    pub(crate) fn finish(mut self, report: &mut BatchReport) {
        for id in self.order {
            if let Some(o) = self.map.remove(&id) {
                match o.change {
                    AlertChange::Created => report.alerts_created += 1,
                    AlertChange::Updated => report.alerts_updated += 1,
                }
                report.alerts.push(o);
            }
        }
    }
}

/// Folds a batch's detections of one rule on one agent into the alert the first of them found
/// or opened, in memory, so each alert row is written once per batch (a batch with thousands
/// of detections would otherwise cost several statements each). The backend records a
/// detection the fold does not absorb, and writes the alerts the fold changed.
#[derive(Default)]
pub(crate) struct AlertFold {
    /// Per group ([`group_of`]): the group's current alert and whether the fold changed it.
    current: HashMap<AlertGroupKey, (Alert, bool)>,
}

/// What keeps alerts apart: rule, agent and host (lower case).
pub(crate) type AlertGroupKey = (String, Option<String>, Option<String>);

/// The group a detection's alert belongs to.
pub(crate) fn group_of(d: &Detection) -> AlertGroupKey {
    (
        d.rule_id.clone(),
        d.agent_id.clone(),
        d.host.as_deref().map(host_key),
    )
}

impl AlertFold {
    /// Absorbs `d` into its group's current alert when `d` falls within `window_ms` of it.
    pub(crate) fn fold(
        &mut self,
        d: &Detection,
        window_ms: i64,
        now: i64,
    ) -> Option<DetectionOutcome> {
        let (alert, dirty) = self.current.get_mut(&group_of(d))?;
        if d.ts < alert.first_seen.saturating_sub(window_ms)
            || d.ts > alert.last_seen.saturating_add(window_ms)
        {
            return None;
        }
        absorb(alert, d, now);
        *dirty = true;
        Some(DetectionOutcome {
            change: AlertChange::Updated,
            alert: alert.clone(),
        })
    }

    /// Before `d` (which the fold did not absorb) is recorded in the database: its group's
    /// current alert, if the fold changed it and it must be written first.
    pub(crate) fn take_changed(&mut self, d: &Detection) -> Option<Alert> {
        let (alert, dirty) = self.current.remove(&group_of(d))?;
        dirty.then_some(alert)
    }

    /// Makes `alert`, just recorded in the database for `d`, its group's current alert.
    pub(crate) fn recorded(&mut self, d: &Detection, alert: Alert) {
        self.current.insert(group_of(d), (alert, false));
    }

    /// The alerts the fold changed and that must still be written.
    pub(crate) fn into_changed(self) -> impl Iterator<Item = Alert> {
        self.current
            .into_values()
            .filter_map(|(a, dirty)| dirty.then_some(a))
    }
}

/// Folds detection `d` into `alert`: one more, its time and (among the first
/// [`MAX_ALERT_EVENT_IDS`]) its event.
pub(crate) fn absorb(alert: &mut Alert, d: &Detection, now: i64) {
    alert.count += 1;
    alert.first_seen = alert.first_seen.min(d.ts);
    alert.last_seen = alert.last_seen.max(d.ts);
    if alert.event_ids.len() < MAX_ALERT_EVENT_IDS {
        alert.event_ids.push(d.event_id);
    }
    alert.updated_at = now;
}

pub(crate) fn validate_detection(d: &Detection) -> Result<()> {
    if d.rule_id.trim().is_empty() {
        return Err(StoreError::InvalidArgument(
            "detection has an empty rule_id".into(),
        ));
    }
    Ok(())
}

pub(crate) fn histogram_buckets(hq: &HistogramQuery) -> Result<usize> {
    if hq.bucket_ms <= 0 {
        return Err(StoreError::InvalidArgument(
            "histogram bucket must be > 0 ms".into(),
        ));
    }
    if hq.to <= hq.from {
        return Err(StoreError::InvalidArgument(
            "histogram range is empty (to <= from)".into(),
        ));
    }
    let span = hq.to.saturating_sub(hq.from);
    let n = span / hq.bucket_ms + i64::from(span % hq.bucket_ms != 0);
    if n > MAX_HISTOGRAM_BUCKETS {
        return Err(StoreError::InvalidArgument(format!(
            "histogram would have {n} buckets (max {MAX_HISTOGRAM_BUCKETS})"
        )));
    }
    Ok(n as usize)
}

pub(crate) fn fill_histogram(hq: &HistogramQuery, counts: Vec<u64>) -> Vec<HistogramBucket> {
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| HistogramBucket {
            start: hq.from + i as i64 * hq.bucket_ms,
            count,
        })
        .collect()
}

/// The filters of an alert listing (not its cursor).
pub(crate) fn alert_filters(b: &mut SqlBuilder, aq: &AlertQuery) {
    if !aq.statuses.is_empty() {
        b.push(" AND status IN (");
        for (i, s) in aq.statuses.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push_bind(Param::Text(s.as_str().to_owned()));
        }
        b.push(")");
    }
    if let Some(min) = aq.min_level {
        b.push(" AND level IN (");
        for (i, l) in Level::ALL.iter().filter(|l| **l >= min).enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push_bind(Param::Text(l.as_str().to_owned()));
        }
        b.push(")");
    }
    let host = aq.host.as_deref().map(host_key);
    for (col, v) in [
        ("rule_id", &aq.rule_id),
        ("agent_id", &aq.agent_id),
        ("host_key", &host),
        ("assignee", &aq.assignee),
    ] {
        if let Some(v) = v {
            b.push(" AND ")
                .push(col)
                .push(" = ")
                .push_bind(Param::Text(v.clone()));
        }
    }
    if let Some(text) = aq
        .rule_text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        b.push(" AND (rule_id = ")
            .push_bind(Param::Text(text.to_owned()))
            .push(" OR lower(rule_title) LIKE ")
            .push_bind(Param::Text(crate::sql_store::contains_pattern(text)))
            .push(" ESCAPE '!')");
    }
    if let Some(tag) = aq.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // the tag itself or one under it (`attack.t1059` → `attack.t1059.001`), any case
        let tag = tag.to_lowercase();
        let mut under = String::with_capacity(tag.len() + 3);
        for c in tag.chars() {
            if matches!(c, '!' | '%' | '_') {
                under.push('!');
            }
            under.push(c);
        }
        under.push_str(".%");
        b.push(match b.dialect() {
            Dialect::Sqlite => {
                " AND EXISTS (SELECT 1 FROM json_each(alerts.tags) AS t WHERE lower(t.value) = "
            }
            Dialect::Postgres => {
                " AND EXISTS (SELECT 1 FROM unnest(alerts.tags) AS t(value) WHERE lower(t.value) = "
            }
        })
        .push_bind(Param::Text(tag))
        .push(" OR lower(t.value) LIKE ")
        .push_bind(Param::Text(under))
        .push(" ESCAPE '!')");
    }
    let col = alert_time_column(aq.time);
    if let Some(from) = aq.from {
        b.push(" AND ")
            .push(col)
            .push(" >= ")
            .push_bind(Param::Int(from));
    }
    if let Some(to) = aq.to {
        b.push(" AND ")
            .push(col)
            .push(" < ")
            .push_bind(Param::Int(to));
    }
}

/// The column an alert listing filters and sorts by.
pub(crate) fn alert_time_column(time: AlertTime) -> &'static str {
    match time {
        AlertTime::Event => "last_seen",
        AlertTime::Detected => "created_at",
    }
}

/// An alert's value of that column.
pub(crate) fn alert_time_of(alert: &Alert, time: AlertTime) -> i64 {
    match time {
        AlertTime::Event => alert.last_seen,
        AlertTime::Detected => alert.created_at,
    }
}

/// Where a listing continues: after the alert of the query's cursor.
pub(crate) fn alert_cursor(b: &mut SqlBuilder, aq: &AlertQuery) -> Result<()> {
    if let Some(c) = &aq.cursor {
        let (at, id) = cursor::decode_alert(c)?;
        b.push(" AND (")
            .push(alert_time_column(aq.time))
            .push(", id) < (")
            .push_bind(Param::Int(at))
            .push(", ")
            .push_bind(Param::Int(id))
            .push(")");
    }
    Ok(())
}

pub(crate) fn alert_page(alerts: &mut Vec<Alert>, limit: u32, time: AlertTime) -> AlertPage {
    let next_cursor = if alerts.len() > limit as usize {
        alerts.truncate(limit as usize);
        alerts
            .last()
            .map(|a| cursor::encode_alert(alert_time_of(a, time), a.id))
    } else {
        None
    };
    AlertPage {
        alerts: std::mem::take(alerts),
        next_cursor,
    }
}

pub(crate) fn audit_filters(b: &mut SqlBuilder, aq: &AuditQuery) {
    if let Some(from) = aq.from {
        b.push(" AND at >= ").push_bind(Param::Int(from));
    }
    if let Some(to) = aq.to {
        b.push(" AND at < ").push_bind(Param::Int(to));
    }
    if let Some(a) = &aq.actor {
        b.push(" AND actor = ").push_bind(Param::Text(a.clone()));
    }
    if let Some(a) = &aq.action {
        b.push(" AND action = ").push_bind(Param::Text(a.clone()));
    }
    if let Some(id) = aq.before_id {
        b.push(" AND id < ").push_bind(Param::Int(id));
    }
    b.push(" ORDER BY id DESC LIMIT ")
        .push_bind(Param::Int(i64::from(clamp_limit(aq.limit))));
}

pub(crate) fn check_transition(id: i64, from: AlertStatus, to: AlertStatus) -> Result<()> {
    if from.can_change_to(to) {
        Ok(())
    } else {
        Err(StoreError::InvalidTransition {
            id,
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

pub(crate) fn validate_comment(body: &str) -> Result<()> {
    if body.trim().is_empty() {
        return Err(StoreError::InvalidArgument("comment is empty".into()));
    }
    if body.len() > 64 * 1024 {
        return Err(StoreError::InvalidArgument(
            "comment is longer than 64 KiB".into(),
        ));
    }
    Ok(())
}

pub(crate) fn validate_token_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(StoreError::InvalidArgument(
            "token name must be 1..200 bytes".into(),
        ));
    }
    Ok(())
}

pub(crate) fn token_usable(info: &TokenInfo, now: i64) -> bool {
    info.revoked_at.is_none() && info.expires_at.is_none_or(|e| e > now)
}

pub(crate) fn fill_stats(
    stats: &mut StoreStats,
    by_status: Vec<(String, i64)>,
    by_level: Vec<(String, i64)>,
) -> Result<()> {
    for (s, n) in by_status {
        let s = AlertStatus::from_str(&s).map_err(|e| corrupt("alert status", e))?;
        stats.alerts_by_status.insert(s, n.max(0) as u64);
    }
    let mut levels = BTreeMap::new();
    for (l, n) in by_level {
        let l = Level::from_str(&l).map_err(|e| corrupt("alert level", e))?;
        levels.insert(l, n.max(0) as u64);
    }
    stats.open_alerts_by_level.extend(levels);
    Ok(())
}

pub(crate) fn validate_new_enrollment_token(t: &NewEnrollmentToken) -> Result<()> {
    validate_token_name(&t.name)?;
    if t.max_uses == Some(0) {
        return Err(StoreError::InvalidArgument(
            "enrollment token max_uses must be at least 1 (or unlimited)".into(),
        ));
    }
    if let Some(host) = &t.may_replace
        && (host.trim().is_empty() || host.len() > 255 || host.chars().any(char::is_control))
    {
        return Err(StoreError::InvalidArgument(
            "enrollment token may_replace must be `*` or a hostname of 1..255 bytes".into(),
        ));
    }
    Ok(())
}

/// The form `may_replace` is stored in: `*` as is, a hostname trimmed and lower-cased like
/// the agents' `hostname_key`.
pub(crate) fn stored_may_replace(t: &NewEnrollmentToken) -> Option<String> {
    t.may_replace.as_deref().map(|h| match h.trim() {
        crate::types::REPLACE_ANY_HOSTNAME => crate::types::REPLACE_ANY_HOSTNAME.to_owned(),
        host => hostname_key(host),
    })
}

/// Why a token could not be redeemed now, read from its row (`None`: it can be).
pub(crate) fn enrollment_refusal_of(
    info: &EnrollmentTokenInfo,
    now: i64,
) -> Option<EnrollmentRefusal> {
    if info.revoked_at.is_some() {
        Some(EnrollmentRefusal::Revoked)
    } else if info.expires_at.is_some_and(|e| e <= now) {
        Some(EnrollmentRefusal::Expired)
    } else if info.max_uses.is_some_and(|m| info.uses >= m) {
        Some(EnrollmentRefusal::UsedUp)
    } else {
        None
    }
}

/// `u32` counters are stored as 64-bit integers.
pub(crate) fn stored_u32(what: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

pub(crate) fn check_text(what: &str, v: &str, required: bool, max: usize) -> Result<()> {
    if required && v.trim().is_empty() {
        return Err(StoreError::InvalidArgument(format!("{what} is empty")));
    }
    if v.len() > max {
        return Err(StoreError::InvalidArgument(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn validate_agent_id(id: &str) -> Result<()> {
    check_text("agent id", id, true, 128)
}

pub(crate) fn validate_facts(f: &AgentFacts) -> Result<()> {
    check_text("hostname", &f.hostname, true, 255)?;
    check_text("os_type", &f.os_type, true, 64)?;
    check_text("agent_version", &f.agent_version, true, 64)?;
    for (what, v) in [
        ("os_name", &f.os_name),
        ("os_version", &f.os_version),
        ("arch", &f.arch),
    ] {
        if let Some(v) = v {
            check_text(what, v, false, 255)?;
        }
    }
    if f.ips.len() > 1024 {
        return Err(StoreError::InvalidArgument(
            "more than 1024 IP addresses".into(),
        ));
    }
    for ip in &f.ips {
        check_text("IP address", ip, false, 64)?;
    }
    Ok(())
}

pub(crate) fn validate_health(health: &[String]) -> Result<()> {
    if health.len() > 256 {
        return Err(StoreError::InvalidArgument(
            "more than 256 health problems".into(),
        ));
    }
    for h in health {
        check_text("health problem", h, false, 1024)?;
    }
    Ok(())
}

/// The certificate fingerprint as stored: 64 hex digits, lower-case.
pub(crate) fn cert_fingerprint(hex: &str) -> Result<String> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::InvalidArgument(
            "cert_sha256 must be 64 hex digits".into(),
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

/// The case-insensitive lookup key of a hostname (Unicode lower case, the same on both
/// backends; SQLite's own `lower()` only folds ASCII).
pub(crate) fn hostname_key(hostname: &str) -> String {
    hostname.to_lowercase()
}

/// Agents in listing order: hostname case-insensitively, then hostname, then id.
pub(crate) fn sort_agents(agents: &mut [Agent]) {
    agents.sort_by(|a, b| {
        hostname_key(&a.facts.hostname)
            .cmp(&hostname_key(&b.facts.hostname))
            .then_with(|| a.facts.hostname.cmp(&b.facts.hostname))
            .then_with(|| a.id.cmp(&b.id))
    });
}

// ---------------------------------------------------------------- agent commands

/// Checks a new command; its `args` as JSON text.
pub(crate) fn validate_new_command(c: &NewAgentCommand) -> Result<String> {
    validate_agent_id(&c.agent_id)?;
    check_text("command kind", &c.kind, true, 64)?;
    check_text("requested_by", &c.requested_by, true, 256)?;
    if !c.args.is_object() {
        return Err(StoreError::InvalidArgument(
            "command args must be a JSON object".into(),
        ));
    }
    let args = serde_json::to_string(&c.args)
        .map_err(|e| StoreError::InvalidArgument(format!("command args: {e}")))?;
    if args.len() > MAX_COMMAND_ARGS_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "command args are longer than {MAX_COMMAND_ARGS_BYTES} bytes"
        )));
    }
    Ok(args)
}

/// Checks a reported result; the result as JSON text.
pub(crate) fn validate_finish(
    status: CommandStatus,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
) -> Result<Option<String>> {
    if !matches!(status, CommandStatus::Done | CommandStatus::Failed) {
        return Err(StoreError::InvalidArgument(format!(
            "a command is finished as done or failed, not {status}"
        )));
    }
    if let Some(e) = error {
        check_text("command error", e, false, MAX_COMMAND_ERROR_BYTES)?;
    }
    let Some(result) = result.filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let text = serde_json::to_string(result)
        .map_err(|e| StoreError::InvalidArgument(format!("command result: {e}")))?;
    if text.len() > MAX_COMMAND_RESULT_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "command result is longer than {MAX_COMMAND_RESULT_BYTES} bytes"
        )));
    }
    Ok(Some(text))
}

/// `redeliver_after` before `now`, ms (a delivery at or before it is due again).
pub(crate) fn redeliver_cutoff(now: i64, redeliver_after: std::time::Duration) -> i64 {
    now.saturating_sub(duration_ms(redeliver_after))
}

/// Commands in delivery order: oldest first.
pub(crate) fn sort_commands(commands: &mut [AgentCommand]) {
    commands.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
}

// ---------------------------------------------------------------- users and sessions

/// How often `last_used_at` of a token and `last_seen_at` of a session are written at most.
pub(crate) const TOUCH_MS: i64 = 60_000;
/// Longest stored password hash (PHC string), bytes.
const MAX_PASSWORD_HASH: usize = 1024;
/// Longest CSRF token, bytes.
const MAX_CSRF_TOKEN: usize = 256;
/// Longest stored session client address, bytes.
const MAX_SESSION_IP: usize = 128;
/// Longest stored session user agent, bytes.
const MAX_SESSION_USER_AGENT: usize = 512;
/// Length of a session secret hash (SHA-256).
const SESSION_HASH_LEN: usize = 32;

/// The columns of a [`User`] (never the password hash).
pub(crate) const USER_COLS: &str = "id, username, role, language, created_at, created_by, \
    updated_at, last_login_at, disabled_at";
/// The columns of a [`Session`] (never the secret hash).
pub(crate) const SESSION_COLS: &str =
    "id, user_id, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent";

/// A column list qualified with a table alias and renamed with a prefix:
/// `id, name` → `t.id AS p_id, t.name AS p_name`.
pub(crate) fn qualified(cols: &str, alias: &str, prefix: &str) -> String {
    cols.split(',')
        .map(|c| {
            let c = c.trim();
            format!("{alias}.{c} AS {prefix}{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A user name as stored (trimmed) and its case-insensitive key, or why it is refused.
pub(crate) fn username_and_key(username: &str) -> Result<(String, String)> {
    let name = username.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(StoreError::InvalidArgument(format!(
            "user name must be 1..{MAX_USERNAME_CHARS} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(StoreError::InvalidArgument(
            "user name may contain only letters, digits, '.', '_', '-' and '@'".into(),
        ));
    }
    Ok((name.to_owned(), username_key(name)))
}

/// The case-insensitive lookup key of a (trimmed) user name: Unicode lower case, the same on
/// both backends.
pub(crate) fn username_key(name: &str) -> String {
    name.to_lowercase()
}

pub(crate) fn validate_password_hash(hash: &str) -> Result<()> {
    if !hash.starts_with('$')
        || hash.len() > MAX_PASSWORD_HASH
        || !hash.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(StoreError::InvalidArgument(format!(
            "password hash must be a PHC string ('$…', printable ASCII, at most \
             {MAX_PASSWORD_HASH} bytes)"
        )));
    }
    Ok(())
}

pub(crate) fn validate_language(language: Option<&str>) -> Result<()> {
    match language {
        None => Ok(()),
        Some(l) if USER_LANGUAGES.contains(&l) => Ok(()),
        Some(l) => Err(StoreError::InvalidArgument(format!(
            "unknown language {l:?} (expected one of {USER_LANGUAGES:?} or none)"
        ))),
    }
}

pub(crate) fn validate_user_role(role: Role) -> Result<()> {
    if role.is_operator_role() {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "a user cannot have the role {role} (admin, analyst or viewer)"
        )))
    }
}

/// A validated new user: (trimmed name, key).
pub(crate) fn validate_new_user(u: &NewUser) -> Result<(String, String)> {
    let names = username_and_key(&u.username)?;
    validate_password_hash(&u.password_hash)?;
    validate_user_role(u.role)?;
    validate_language(u.language.as_deref())?;
    check_text("created_by", &u.created_by, false, 255)?;
    Ok(names)
}

/// What the last-administrator guard refuses.
pub(crate) fn last_admin_error(action: &str) -> StoreError {
    StoreError::InvalidArgument(format!(
        "cannot {action} the last administrator (there must always be an enabled admin)"
    ))
}

/// Whether changing a user from (`role`, `disabled`) to (`new_role`, `new_disabled`) takes an
/// enabled administrator away.
pub(crate) fn removes_admin(
    role: Role,
    disabled: bool,
    new_role: Role,
    new_disabled: bool,
) -> bool {
    role == Role::Admin && !disabled && (new_role != Role::Admin || new_disabled)
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate_text(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A validated new session: its `ip` and `user_agent` cut to size.
pub(crate) fn validate_new_session(s: &NewSession) -> Result<(Option<String>, Option<String>)> {
    if s.secret_hash.len() != SESSION_HASH_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "session secret hash must be {SESSION_HASH_LEN} bytes (SHA-256)"
        )));
    }
    if s.csrf_token.is_empty()
        || s.csrf_token.len() > MAX_CSRF_TOKEN
        || !s.csrf_token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(StoreError::InvalidArgument(format!(
            "CSRF token must be 1..{MAX_CSRF_TOKEN} bytes of printable ASCII"
        )));
    }
    Ok((
        s.ip.as_deref().map(|v| truncate_text(v, MAX_SESSION_IP)),
        s.user_agent
            .as_deref()
            .map(|v| truncate_text(v, MAX_SESSION_USER_AGENT)),
    ))
}

/// Whether a presented session hash can be one (otherwise no lookup is needed).
pub(crate) fn session_hash_shaped(hash: &[u8]) -> bool {
    hash.len() == SESSION_HASH_LEN
}

/// A verified token as its bearer may use it: `None` if its owner is disabled or gone,
/// otherwise its role capped by the owner's current role.
pub(crate) fn effective_token(
    mut info: TokenInfo,
    owner_role: Option<&str>,
    owner_disabled: bool,
) -> Result<Option<TokenInfo>> {
    if info.owner.is_none() {
        return Ok(Some(info));
    }
    let Some(role) = owner_role else {
        return Ok(None);
    };
    if owner_disabled {
        return Ok(None);
    }
    let role = Role::from_str(role).map_err(|e| corrupt("user role", e))?;
    info.role = info.role.capped_by(role);
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in [
            "ann",
            "  Ann.Smith@corp  ",
            "оператор",
            "Иван_1",
            "a-b",
            "x",
        ] {
            assert!(username_and_key(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            username_and_key(" ОПЕРАТОР ").unwrap(),
            ("ОПЕРАТОР".to_owned(), "оператор".to_owned())
        );
        let long = "я".repeat(MAX_USERNAME_CHARS);
        assert!(username_and_key(&long).is_ok());
        for bad in [
            "",
            "   ",
            "a b",
            "a/b",
            "ann\0",
            "a'--",
            "<script>",
            "a\u{200b}b",
            &"я".repeat(MAX_USERNAME_CHARS + 1),
        ] {
            assert!(
                matches!(username_and_key(bad), Err(StoreError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn password_hashes_and_languages() {
        assert!(validate_password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_ok());
        for bad in [
            "",
            "hunter2",
            "$ with space",
            "$\0",
            &format!("${}", "a".repeat(1024)),
        ] {
            assert!(validate_password_hash(bad).is_err(), "{bad:?}");
        }
        assert!(validate_language(None).is_ok());
        assert!(validate_language(Some("ru")).is_ok());
        assert!(validate_language(Some("de")).is_err());
        assert!(validate_language(Some("EN")).is_err());
        assert!(validate_user_role(Role::AgentIngest).is_err());
    }

    #[test]
    fn text_is_cut_at_char_boundaries() {
        assert_eq!(truncate_text("жж", 3), "ж");
        assert_eq!(truncate_text("abc", 10), "abc");
        assert_eq!(truncate_text("ж", 1), "");
    }

    #[test]
    fn roles_are_capped() {
        assert_eq!(Role::Admin.capped_by(Role::Analyst), Role::Analyst);
        assert_eq!(Role::Viewer.capped_by(Role::Admin), Role::Viewer);
        assert_eq!(Role::AgentIngest.capped_by(Role::Viewer), Role::AgentIngest);
        assert!(removes_admin(Role::Admin, false, Role::Viewer, false));
        assert!(removes_admin(Role::Admin, false, Role::Admin, true));
        assert!(!removes_admin(Role::Admin, true, Role::Viewer, true));
        assert!(!removes_admin(Role::Analyst, false, Role::Viewer, true));
    }
}
