//! Rows read once for both drivers: a neutral accessor ([`Row`]) and the row → struct mappings.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Decode, Postgres, Sqlite, Type};
use uuid::Uuid;

use crate::common::{corrupt, stored_u32};
use crate::error::Result;
use crate::samples::{Sample, count};
use crate::types::*;

/// A value both drivers decode the same way (integers, text, booleans, bytes, UUIDs, and
/// `Option`s of them).
pub trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A result row; the driver reads what its schema stores differently.
pub trait Row {
    /// A plain column.
    fn get<T: Column>(&self, col: &str) -> Result<T>;
    /// A JSON column, `None` for NULL (SQLite: `TEXT`; PostgreSQL: `jsonb`).
    fn json(&self, col: &str) -> Result<Option<Value>>;
    /// A list of strings (SQLite: JSON `TEXT`; PostgreSQL: `text[]`).
    fn texts(&self, col: &str) -> Result<Vec<String>>;
    /// A list of UUIDs (SQLite: JSON `TEXT`; PostgreSQL: `uuid[]`).
    fn uuids(&self, col: &str) -> Result<Vec<Uuid>>;
}

/// A text column parsed (a status, level, role …).
pub(crate) fn parsed<T: FromStr>(r: &impl Row, col: &str, what: &str) -> Result<T>
where
    T::Err: Display,
{
    T::from_str(&r.get::<String>(col)?).map_err(|e| corrupt(what, e))
}

/// A JSON column that is never NULL.
fn json_doc(r: &impl Row, col: &str, what: &str) -> Result<Value> {
    r.json(col)?.ok_or_else(|| corrupt(what, "NULL"))
}

/// A JSON column that is never NULL, as `T`.
fn json_of<T: DeserializeOwned>(r: &impl Row, col: &str, what: &str) -> Result<T> {
    serde_json::from_value(json_doc(r, col, what)?).map_err(|e| corrupt(what, e))
}

pub(crate) const EVENT_COLS: &str = "id, ts, received_at, agent_id, doc";

pub(crate) fn event<R: Row>(r: &R) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get("id")?,
        ts: r.get("ts")?,
        received_at: r.get("received_at")?,
        agent_id: r.get("agent_id")?,
        doc: json_doc(r, "doc", "event doc")?,
    })
}

pub(crate) const ALERT_COLS: &str = "id, rule_id, rule_title, level, tags, agent_id, host, \
    first_seen, last_seen, count, event_ids, status, assignee, created_at, updated_at";

pub(crate) fn alert<R: Row>(r: &R) -> Result<Alert> {
    Ok(Alert {
        id: r.get("id")?,
        rule_id: r.get("rule_id")?,
        rule_title: r.get("rule_title")?,
        level: parsed(r, "level", "alert level")?,
        tags: r.texts("tags")?,
        agent_id: r.get("agent_id")?,
        host: r.get("host")?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        count: r.get("count")?,
        event_ids: r.uuids("event_ids")?,
        status: parsed(r, "status", "alert status")?,
        assignee: r.get("assignee")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

pub(crate) const HOST_COLS: &str = "h.name, h.agent_id, h.first_seen, h.last_seen, \
    h.last_received, h.events, \
    (SELECT count(*) FROM alerts a WHERE a.host_key = h.host_key \
     AND a.status IN ('new', 'acknowledged')) AS open_alerts, \
    (SELECT count(*) FROM alerts a WHERE a.host_key = h.host_key) AS alerts";

pub(crate) fn host<R: Row>(r: &R) -> Result<Host> {
    Ok(Host {
        name: r.get("name")?,
        agent_id: r.get("agent_id")?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        last_received: r.get("last_received")?,
        events: r.get("events")?,
        open_alerts: r.get("open_alerts")?,
        alerts: r.get("alerts")?,
    })
}

pub(crate) const COMMENT_COLS: &str = "id, alert_id, author, body, created_at";

pub(crate) fn comment<R: Row>(r: &R) -> Result<Comment> {
    Ok(Comment {
        id: r.get("id")?,
        alert_id: r.get("alert_id")?,
        author: r.get("author")?,
        body: r.get("body")?,
        created_at: r.get("created_at")?,
    })
}

pub(crate) const CHANGE_COLS: &str =
    "id, alert_id, actor, from_status, to_status, note, changed_at";

pub(crate) fn change<R: Row>(r: &R) -> Result<StatusChange> {
    Ok(StatusChange {
        id: r.get("id")?,
        alert_id: r.get("alert_id")?,
        actor: r.get("actor")?,
        from: parsed(r, "from_status", "history status")?,
        to: parsed(r, "to_status", "history status")?,
        note: r.get("note")?,
        changed_at: r.get("changed_at")?,
    })
}

pub(crate) const RULE_COLS: &str = "rule_id, enabled, hit_count, last_hit, updated_at";

pub(crate) fn rule<R: Row>(r: &R) -> Result<RuleState> {
    Ok(RuleState {
        rule_id: r.get("rule_id")?,
        enabled: r.get("enabled")?,
        hit_count: r.get("hit_count")?,
        last_hit: r.get("last_hit")?,
        updated_at: r.get("updated_at")?,
    })
}

pub(crate) const TOKEN_COLS: &str =
    "id, name, role, created_at, expires_at, last_used_at, revoked_at, user_id";

pub(crate) fn token_info<R: Row>(r: &R) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get("id")?,
        name: r.get("name")?,
        role: parsed(r, "role", "token role")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        last_used_at: r.get("last_used_at")?,
        revoked_at: r.get("revoked_at")?,
        owner: r.get("user_id")?,
    })
}

pub(crate) fn user<R: Row>(r: &R) -> Result<User> {
    Ok(User {
        id: r.get("id")?,
        username: r.get("username")?,
        role: parsed(r, "role", "user role")?,
        language: r.get("language")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
        updated_at: r.get("updated_at")?,
        last_login_at: r.get("last_login_at")?,
        disabled_at: r.get("disabled_at")?,
    })
}

/// A session from columns named `{prefix}id`, `{prefix}user_id`, ...
pub(crate) fn session<R: Row>(r: &R, prefix: &str) -> Result<Session> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(Session {
        id: r.get(&col("id"))?,
        user_id: r.get(&col("user_id"))?,
        csrf_token: r.get(&col("csrf_token"))?,
        created_at: r.get(&col("created_at"))?,
        expires_at: r.get(&col("expires_at"))?,
        last_seen_at: r.get(&col("last_seen_at"))?,
        ip: r.get(&col("ip"))?,
        user_agent: r.get(&col("user_agent"))?,
    })
}

pub(crate) const ENROLL_COLS: &str = "id, name, created_at, created_by, expires_at, max_uses, uses, last_used_at, revoked_at, \
     may_replace";

pub(crate) fn enrollment<R: Row>(r: &R) -> Result<EnrollmentTokenInfo> {
    let max_uses: Option<i64> = r.get("max_uses")?;
    Ok(EnrollmentTokenInfo {
        id: r.get("id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        created_by: r.get("created_by")?,
        expires_at: r.get("expires_at")?,
        max_uses: max_uses
            .map(|m| stored_u32("enrollment token max_uses", m))
            .transpose()?,
        uses: stored_u32("enrollment token uses", r.get("uses")?)?,
        last_used_at: r.get("last_used_at")?,
        revoked_at: r.get("revoked_at")?,
        may_replace: r.get("may_replace")?,
    })
}

pub(crate) const AGENT_COLS: &str = "id, hostname, os_type, os_name, os_version, arch, \
    agent_version, ips, enrolled_at, enrolled_by, cert_sha256, cert_not_after, reenrolled_at, \
    last_seen, last_heartbeat, health, offline_since, revoked_at, revoked_by";

pub(crate) fn agent<R: Row>(r: &R) -> Result<Agent> {
    Ok(Agent {
        id: r.get("id")?,
        facts: AgentFacts {
            hostname: r.get("hostname")?,
            os_type: r.get("os_type")?,
            os_name: r.get("os_name")?,
            os_version: r.get("os_version")?,
            arch: r.get("arch")?,
            agent_version: r.get("agent_version")?,
            ips: json_of(r, "ips", "agent ips")?,
        },
        enrolled_at: r.get("enrolled_at")?,
        enrolled_by: r.get("enrolled_by")?,
        cert_sha256: r.get("cert_sha256")?,
        cert_not_after: r.get("cert_not_after")?,
        reenrolled_at: r.get("reenrolled_at")?,
        last_seen: r.get("last_seen")?,
        last_heartbeat: r.json("last_heartbeat")?,
        health: json_of(r, "health", "agent health")?,
        offline_since: r.get("offline_since")?,
        revoked_at: r.get("revoked_at")?,
        revoked_by: r.get("revoked_by")?,
    })
}

pub(crate) const COMMAND_COLS: &str = "id, agent_id, kind, args, status, requested_by, \
    created_at, delivered_at, attempts, finished_at, result, error";

pub(crate) fn command<R: Row>(r: &R) -> Result<AgentCommand> {
    Ok(AgentCommand {
        id: parsed(r, "id", "command id")?,
        agent_id: r.get("agent_id")?,
        kind: r.get("kind")?,
        args: json_doc(r, "args", "command args")?,
        status: parsed(r, "status", "command status")?,
        requested_by: r.get("requested_by")?,
        created_at: r.get("created_at")?,
        delivered_at: r.get("delivered_at")?,
        attempts: stored_u32("command attempts", r.get("attempts")?)?,
        finished_at: r.get("finished_at")?,
        result: r.json("result")?,
        error: r.get("error")?,
    })
}

pub(crate) const AUDIT_COLS: &str = "id, at, actor, action, target, details";

pub(crate) fn audit<R: Row>(r: &R) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get("id")?,
        at: r.get("at")?,
        actor: r.get("actor")?,
        action: r.get("action")?,
        target: r.get("target")?,
        details: json_doc(r, "details", "audit details")?,
    })
}

pub(crate) fn sample<R: Row>(r: &R) -> Result<Sample> {
    Ok(Sample {
        sha256: r.get("sha256")?,
        size: count("sample size", r.get("size")?)?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        uploads: count("sample uploads", r.get("uploads")?)?,
        first_agent_id: r.get("first_agent_id")?,
        last_agent_id: r.get("last_agent_id")?,
        last_path: r.get("last_path")?,
        last_verdict: r.json("last_verdict")?,
        verdict_at: r.get("verdict_at")?,
    })
}

/// `(text, count)` pairs of a `SELECT k, count(*) AS n … GROUP BY k`.
pub(crate) fn key_count<R: Row>(r: &R) -> Result<(String, i64)> {
    Ok((r.get("k")?, r.get("n")?))
}
