//! PostgreSQL backend: `jsonb` documents, bulk inserts through `UNNEST`, several worker
//! processes may share one database (alert aggregation takes a transaction-scoped advisory lock
//! per rule and agent, so concurrent batches never open two alerts for the same repeat).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Postgres, Row, SqlSafeStr};
use tracing::{debug, info};
use uuid::Uuid;

use crate::common::*;
use crate::derive::derive;
use crate::error::{Result, StoreError};
use crate::query::sql::{Dialect, Param, SqlBuilder};
use crate::samples::{NewSample, Sample, SampleQuery};
use crate::types::*;
use crate::{Store, cursor, query, token};

mod samples;

const INSERT_CHUNK: usize = 1000;
const PURGE_CHUNK: i64 = 10_000;
/// Advisory-lock key serializing the changes the last-administrator guard checks
/// (`"dozorusr"` as an integer).
const USERS_LOCK_KEY: i64 = 0x646f_7a6f_7275_7372;

/// PostgreSQL settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user@host:port/db?...`
    pub url: String,
    /// Keep all tables in this schema (created if missing; sets `search_path`). Lower-case
    /// letters, digits and `_`, starting with a letter or `_`.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// How long an operation waits for a free connection.
    pub acquire_timeout: Duration,
}

impl PgConfig {
    /// Defaults for a URL.
    pub fn new(url: &str) -> Self {
        PgConfig {
            url: url.to_owned(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/postgres/0001_init.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "agents".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/postgres/0002_agents.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "users".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/postgres/0003_users.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "agent_commands".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!(
                "../migrations/postgres/0004_agent_commands.sql"
            ))
            .into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "samples".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/postgres/0005_samples.sql")).into_sql_str(),
            false,
        ),
    ])
}

type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

fn q(sql: &'static str) -> Query {
    sqlx::query(sql)
}

fn dynamic(b: SqlBuilder) -> Query {
    let mut query = sqlx::query(AssertSqlSafe(b.sql));
    for p in b.params {
        query = match p {
            Param::Text(s) => query.bind(s),
            Param::Int(i) => query.bind(i),
            Param::Real(f) => query.bind(f),
            Param::Uuid(u) => query.bind(u),
            Param::TextArray(v) => query.bind(v),
        };
    }
    query
}

/// Whether a schema name is a plain lower-case identifier (it is spliced into DDL).
pub fn valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

/// PostgreSQL text cannot hold NUL: replace it (in strings and keys) with U+FFFD.
fn strip_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (k, mut val) in old {
                    strip_nul(&mut val);
                    map.insert(k.replace('\0', "\u{FFFD}"), val);
                }
            } else {
                map.values_mut().for_each(strip_nul);
            }
        }
        _ => {}
    }
}

fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn event_from_row(row: &PgRow) -> Result<StoredEvent> {
    let Json(doc): Json<Value> = row.try_get("doc")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        received_at: row.try_get("received_at")?,
        agent_id: row.try_get("agent_id")?,
        doc,
    })
}

const ALERT_COLS: &str = "id, rule_id, rule_title, level, tags, agent_id, first_seen, last_seen, \
    count, event_ids, status, assignee, created_at, updated_at";

fn alert_from_row(row: &PgRow) -> Result<Alert> {
    let level: String = row.try_get("level")?;
    let status: String = row.try_get("status")?;
    Ok(Alert {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        rule_title: row.try_get("rule_title")?,
        level: Level::from_str(&level).map_err(|e| corrupt("alert level", e))?,
        tags: row.try_get("tags")?,
        agent_id: row.try_get("agent_id")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        count: row.try_get("count")?,
        event_ids: row.try_get("event_ids")?,
        status: AlertStatus::from_str(&status).map_err(|e| corrupt("alert status", e))?,
        assignee: row.try_get("assignee")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn rule_from_row(row: &PgRow) -> Result<RuleState> {
    Ok(RuleState {
        rule_id: row.try_get("rule_id")?,
        enabled: row.try_get("enabled")?,
        hit_count: row.try_get("hit_count")?,
        last_hit: row.try_get("last_hit")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const TOKEN_COLS: &str =
    "id, name, role, created_at, expires_at, last_used_at, revoked_at, user_id";

fn token_from_row(row: &PgRow) -> Result<TokenInfo> {
    let role: String = row.try_get("role")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::from_str(&role).map_err(|e| corrupt("token role", e))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        owner: row.try_get("user_id")?,
    })
}

fn user_from_row(row: &PgRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::from_str(&role).map_err(|e| corrupt("user role", e))?,
        language: row.try_get("language")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

/// A session from columns named `{prefix}id`, `{prefix}user_id`, ...
fn session_from_row(row: &PgRow, prefix: &str) -> Result<Session> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(Session {
        id: row.try_get(col("id").as_str())?,
        user_id: row.try_get(col("user_id").as_str())?,
        csrf_token: row.try_get(col("csrf_token").as_str())?,
        created_at: row.try_get(col("created_at").as_str())?,
        expires_at: row.try_get(col("expires_at").as_str())?,
        last_seen_at: row.try_get(col("last_seen_at").as_str())?,
        ip: row.try_get(col("ip").as_str())?,
        user_agent: row.try_get(col("user_agent").as_str())?,
    })
}

const ENROLL_COLS: &str =
    "id, name, created_at, created_by, expires_at, max_uses, uses, last_used_at, revoked_at";

fn enrollment_from_row(row: &PgRow) -> Result<EnrollmentTokenInfo> {
    let max_uses: Option<i64> = row.try_get("max_uses")?;
    Ok(EnrollmentTokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get("expires_at")?,
        max_uses: max_uses
            .map(|m| stored_u32("enrollment token max_uses", m))
            .transpose()?,
        uses: stored_u32("enrollment token uses", row.try_get("uses")?)?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const AGENT_COLS: &str = "id, hostname, os_type, os_name, os_version, arch, agent_version, ips, \
    enrolled_at, enrolled_by, cert_sha256, cert_not_after, reenrolled_at, last_seen, \
    last_heartbeat, health, offline_since, revoked_at, revoked_by";

/// [`AGENT_COLS`] qualified with a table alias.
fn agent_cols_of(alias: &str) -> String {
    AGENT_COLS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SET` list of the facts columns with placeholders `$first..$first+7`; bind with
/// [`bind_facts`].
fn facts_set(first: usize) -> String {
    [
        "hostname",
        "hostname_key",
        "os_type",
        "os_name",
        "os_version",
        "arch",
        "agent_version",
        "ips",
    ]
    .iter()
    .enumerate()
    .map(|(i, c)| format!("{c} = ${}", first + i))
    .collect::<Vec<_>>()
    .join(", ")
}

fn bind_facts(query: Query, f: &AgentFacts) -> Query {
    let hostname = no_nul(&f.hostname);
    let key = hostname_key(&hostname);
    query
        .bind(hostname)
        .bind(key)
        .bind(no_nul(&f.os_type))
        .bind(f.os_name.as_deref().map(no_nul))
        .bind(f.os_version.as_deref().map(no_nul))
        .bind(f.arch.as_deref().map(no_nul))
        .bind(no_nul(&f.agent_version))
        .bind(Json(f.ips.iter().map(|s| no_nul(s)).collect::<Vec<_>>()))
}

fn string_list(what: &str, row: &PgRow, col: &str) -> Result<Vec<String>> {
    let Json(v): Json<Value> = row.try_get(col)?;
    serde_json::from_value(v).map_err(|e| corrupt(what, e))
}

fn agent_from_row(row: &PgRow) -> Result<Agent> {
    let heartbeat: Option<Json<Value>> = row.try_get("last_heartbeat")?;
    Ok(Agent {
        id: row.try_get("id")?,
        facts: AgentFacts {
            hostname: row.try_get("hostname")?,
            os_type: row.try_get("os_type")?,
            os_name: row.try_get("os_name")?,
            os_version: row.try_get("os_version")?,
            arch: row.try_get("arch")?,
            agent_version: row.try_get("agent_version")?,
            ips: string_list("agent ips", row, "ips")?,
        },
        enrolled_at: row.try_get("enrolled_at")?,
        enrolled_by: row.try_get("enrolled_by")?,
        cert_sha256: row.try_get("cert_sha256")?,
        cert_not_after: row.try_get("cert_not_after")?,
        reenrolled_at: row.try_get("reenrolled_at")?,
        last_seen: row.try_get("last_seen")?,
        last_heartbeat: heartbeat.map(|Json(v)| v),
        health: string_list("agent health", row, "health")?,
        offline_since: row.try_get("offline_since")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

const COMMAND_COLS: &str = "id, agent_id, kind, args, status, requested_by, created_at, \
    delivered_at, attempts, finished_at, result, error";

fn command_from_row(row: &PgRow) -> Result<AgentCommand> {
    let id: String = row.try_get("id")?;
    let Json(args): Json<Value> = row.try_get("args")?;
    let status: String = row.try_get("status")?;
    let result: Option<Json<Value>> = row.try_get("result")?;
    Ok(AgentCommand {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("command id", e))?,
        agent_id: row.try_get("agent_id")?,
        kind: row.try_get("kind")?,
        args,
        status: CommandStatus::from_str(&status).map_err(|e| corrupt("command status", e))?,
        requested_by: row.try_get("requested_by")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        attempts: stored_u32("command attempts", row.try_get("attempts")?)?,
        finished_at: row.try_get("finished_at")?,
        result: result.map(|Json(v)| v),
        error: row.try_get("error")?,
    })
}

fn audit_from_row(row: &PgRow) -> Result<AuditEntry> {
    let Json(details): Json<Value> = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details,
    })
}

fn comment_from_row(row: &PgRow) -> Result<Comment> {
    Ok(Comment {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        author: row.try_get("author")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}

fn change_from_row(row: &PgRow) -> Result<StatusChange> {
    let from: String = row.try_get("from_status")?;
    let to: String = row.try_get("to_status")?;
    Ok(StatusChange {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        actor: row.try_get("actor")?,
        from: AlertStatus::from_str(&from).map_err(|e| corrupt("history status", e))?,
        to: AlertStatus::from_str(&to).map_err(|e| corrupt("history status", e))?,
        note: row.try_get("note")?,
        changed_at: row.try_get("changed_at")?,
    })
}

/// Advisory-lock key of one (rule, agent) aggregation slot.
fn aggregation_lock_key(rule_id: &str, agent_id: Option<&str>) -> i64 {
    let mut h = Sha256::new();
    h.update(b"dozor-alert\x1f");
    h.update(rule_id.as_bytes());
    match agent_id {
        Some(a) => {
            h.update(b"\x1f");
            h.update(a.as_bytes());
        }
        None => h.update(b"\x1e"),
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

impl PgStore {
    /// Connects, creates the schema if configured, applies migrations.
    pub async fn open(config: &PgConfig) -> Result<Self> {
        let mut options = PgConnectOptions::from_str(&config.url)?;
        if let Some(schema) = &config.schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::InvalidArgument(format!(
                    "schema name {schema:?} must be a lower-case identifier"
                )));
            }
            let mut conn = options.connect().await?;
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        migrator().run(&pool).await?;
        info!(schema = ?config.schema, "postgres store open");
        Ok(PgStore { pool })
    }

    /// The connection pool (for callers that need raw access, e.g. tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Changes a user's role and/or disabled state under the last-administrator guard. Every
    /// such change takes one transaction-scoped advisory lock first, so they run one after
    /// another; each statement after it (READ COMMITTED) sees the previous change committed,
    /// and two concurrent demotions of the last two admins cannot both pass the count.
    async fn change_user_guarded(
        &self,
        id: i64,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<Option<User>> {
        if let Some(r) = role {
            validate_user_role(r)?;
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        q("SELECT pg_advisory_xact_lock($1)")
            .bind(USERS_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        let Some(row) = q("SELECT role, disabled_at FROM users WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get("role")?;
        let current = Role::from_str(&stored).map_err(|e| corrupt("user role", e))?;
        let disabled_at: Option<i64> = row.try_get("disabled_at")?;
        let new_role = role.unwrap_or(current);
        let new_disabled_at = match disabled {
            Some(true) => disabled_at.or(Some(now)),
            Some(false) => None,
            None => disabled_at,
        };
        if removes_admin(
            current,
            disabled_at.is_some(),
            new_role,
            new_disabled_at.is_some(),
        ) {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Err(last_admin_error(if new_disabled_at.is_some() {
                    "disable"
                } else {
                    "demote"
                }));
            }
        }
        let sql = format!(
            "UPDATE users SET role = $1, disabled_at = $2, updated_at = $3 WHERE id = $4 \
             RETURNING {USER_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(new_role.as_str())
            .bind(new_disabled_at)
            .bind(now)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if new_disabled_at.is_some() {
            q("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        user_from_row(&row).map(Some)
    }

    async fn insert_events_tx(
        conn: &mut PgConnection,
        events: &[NewEvent],
    ) -> Result<HashSet<Uuid>> {
        // Insert in id order so concurrent batches with overlapping ids cannot deadlock.
        let mut sorted: Vec<&NewEvent> = events.iter().collect();
        sorted.sort_by_key(|e| e.id);
        let mut inserted = HashSet::with_capacity(events.len());
        for chunk in sorted.chunks(INSERT_CHUNK) {
            let n = chunk.len();
            let mut ids = Vec::with_capacity(n);
            let mut ts = Vec::with_capacity(n);
            let mut received = Vec::with_capacity(n);
            let mut agents: Vec<Option<String>> = Vec::with_capacity(n);
            let mut kinds: Vec<Option<String>> = Vec::with_capacity(n);
            let mut categories: Vec<Option<String>> = Vec::with_capacity(n);
            let mut actions: Vec<Option<String>> = Vec::with_capacity(n);
            let mut codes: Vec<Option<String>> = Vec::with_capacity(n);
            let mut docs: Vec<String> = Vec::with_capacity(n);
            for e in chunk {
                let mut text = serde_json::to_string(&e.doc)
                    .map_err(|err| StoreError::InvalidArgument(format!("JSON: {err}")))?;
                let d = if text.contains("\\u0000") {
                    let mut doc = e.doc.clone();
                    strip_nul(&mut doc);
                    text = serde_json::to_string(&doc)
                        .map_err(|err| StoreError::InvalidArgument(format!("JSON: {err}")))?;
                    derive(&doc)
                } else {
                    derive(&e.doc)
                };
                ids.push(e.id);
                ts.push(e.ts);
                received.push(e.received_at);
                agents.push(e.agent_id.as_deref().map(no_nul));
                kinds.push(d.kind);
                categories.push(
                    (!d.categories.is_empty())
                        .then(|| serde_json::to_string(&d.categories).unwrap_or_default()),
                );
                actions.push(d.action);
                codes.push(d.code);
                docs.push(text);
            }
            let rows = q("INSERT INTO events (id, ts, received_at, agent_id, kind, category, action, code, doc) \
                 SELECT u.id, u.ts, u.received_at, u.agent_id, u.kind, \
                   CASE WHEN u.category IS NULL THEN NULL \
                     ELSE ARRAY(SELECT jsonb_array_elements_text(u.category::jsonb)) END, \
                   u.action, u.code, u.doc::jsonb \
                 FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], \
                   $7::text[], $8::text[], $9::text[]) \
                   AS u(id, ts, received_at, agent_id, kind, category, action, code, doc) \
                 ON CONFLICT (id) DO NOTHING RETURNING id")
            .bind(ids)
            .bind(ts)
            .bind(received)
            .bind(agents)
            .bind(kinds)
            .bind(categories)
            .bind(actions)
            .bind(codes)
            .bind(docs)
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                inserted.insert(row.try_get::<Uuid, _>(0)?);
            }
        }
        Ok(inserted)
    }

    /// Takes the aggregation locks of these detections, in key order (no deadlocks).
    async fn lock_slots_tx(conn: &mut PgConnection, detections: &[&Detection]) -> Result<()> {
        let mut keys: Vec<i64> = detections
            .iter()
            .map(|d| aggregation_lock_key(&d.rule_id, d.agent_id.as_deref()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            q("SELECT pg_advisory_xact_lock($1)")
                .bind(k)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Writes an alert whose detections were folded in memory by `store_batch`.
    async fn write_folded_tx(conn: &mut PgConnection, alert: &Alert) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET count = $1, first_seen = $2, last_seen = $3, event_ids = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(alert.count)
        .bind(alert.first_seen)
        .bind(alert.last_seen)
        .bind(&alert.event_ids)
        .bind(alert.updated_at)
        .bind(alert.id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn record_tx(
        conn: &mut PgConnection,
        d: &Detection,
        window_ms: i64,
        now: i64,
    ) -> Result<DetectionOutcome> {
        validate_detection(d)?;
        let rule_id = no_nul(&d.rule_id);
        let agent_id = d.agent_id.as_deref().map(no_nul);
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alerts WHERE rule_id = $1 AND agent_id IS NOT DISTINCT FROM $2 \
             AND status IN ('new', 'acknowledged') AND last_seen >= $3 AND first_seen <= $4 \
             ORDER BY last_seen DESC, id DESC LIMIT 1 FOR UPDATE",
        )
        .bind(&rule_id)
        .bind(&agent_id)
        .bind(d.ts.saturating_sub(window_ms))
        .bind(d.ts.saturating_add(window_ms))
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = open {
            let sql = format!(
                "UPDATE alerts SET count = count + 1, first_seen = LEAST(first_seen, $1), \
                 last_seen = GREATEST(last_seen, $1), \
                 event_ids = CASE WHEN cardinality(event_ids) < $2 \
                   THEN array_append(event_ids, $3) ELSE event_ids END, \
                 updated_at = $4 WHERE id = $5 RETURNING {ALERT_COLS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(d.ts)
                .bind(MAX_ALERT_EVENT_IDS as i64)
                .bind(d.event_id)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
            return Ok(DetectionOutcome {
                change: AlertChange::Updated,
                alert: alert_from_row(&row)?,
            });
        }
        let tags: Vec<String> = d.tags.iter().map(|t| no_nul(t)).collect();
        let sql = format!(
            "INSERT INTO alerts (rule_id, rule_title, level, tags, agent_id, first_seen, last_seen, \
             count, event_ids, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1, ARRAY[$7]::uuid[], 'new', $8, $8) RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&rule_id)
            .bind(no_nul(&d.rule_title))
            .bind(d.level.as_str())
            .bind(tags)
            .bind(&agent_id)
            .bind(d.ts)
            .bind(d.event_id)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
        Ok(DetectionOutcome {
            change: AlertChange::Created,
            alert: alert_from_row(&row)?,
        })
    }

    async fn bump_rule_tx(
        conn: &mut PgConnection,
        rule_id: &str,
        hits: i64,
        last_hit: i64,
        now: i64,
    ) -> Result<()> {
        q(
            "INSERT INTO rule_state (rule_id, enabled, hit_count, last_hit, updated_at) \
           VALUES ($1, TRUE, $2, $3, $4) ON CONFLICT (rule_id) DO UPDATE SET \
           hit_count = rule_state.hit_count + excluded.hit_count, \
           last_hit = GREATEST(rule_state.last_hit, excluded.last_hit), \
           updated_at = excluded.updated_at",
        )
        .bind(no_nul(rule_id))
        .bind(hits)
        .bind(last_hit)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    fn event_filters(
        b: &mut SqlBuilder,
        from: Option<i64>,
        to: Option<i64>,
        agent_id: Option<&str>,
        query_text: Option<&str>,
    ) -> Result<()> {
        b.push(" WHERE TRUE");
        if let Some(from) = from {
            b.push(" AND e.ts >= ").push_bind(Param::Int(from));
        }
        if let Some(to) = to {
            b.push(" AND e.ts < ").push_bind(Param::Int(to));
        }
        if let Some(agent) = agent_id {
            b.push(" AND e.agent_id = ")
                .push_bind(Param::Text(no_nul(agent)));
        }
        if let Some(expr) = query_text.map(query::parse).transpose()?.flatten() {
            b.push(" AND ");
            b.push_expr(&expr);
        }
        Ok(())
    }
}

/// Text parameters must not contain NUL on PostgreSQL.
fn clean_params(b: &mut SqlBuilder) {
    for p in &mut b.params {
        match p {
            Param::Text(s) if s.contains('\0') => *s = no_nul(s),
            Param::TextArray(v) => v.iter_mut().for_each(|s| *s = no_nul(s)),
            _ => {}
        }
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn insert_events(&self, events: &[NewEvent]) -> Result<InsertReport> {
        if events.is_empty() {
            return Ok(InsertReport::default());
        }
        let mut tx = self.pool.begin().await?;
        let inserted = Self::insert_events_tx(&mut tx, events).await?;
        tx.commit().await?;
        Ok(InsertReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
        })
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>> {
        let row = q("SELECT id, ts, received_at, agent_id, doc FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn search_events(&self, query: &EventQuery) -> Result<EventPage> {
        let limit = clamp_limit(query.limit);
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT e.id, e.ts, e.received_at, e.agent_id, e.doc FROM events e");
        Self::event_filters(
            &mut b,
            query.from,
            query.to,
            query.agent_id.as_deref(),
            query.query.as_deref(),
        )?;
        if let Some(c) = &query.cursor {
            let (ts, id) = cursor::decode_event(c)?;
            b.push(" AND (e.ts, e.id) < (")
                .push_bind(Param::Int(ts))
                .push(", ")
                .push_bind(Param::Uuid(id))
                .push(")");
        }
        b.push(" ORDER BY e.ts DESC, e.id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit) + 1));
        clean_params(&mut b);
        let rows = dynamic(b).fetch_all(&self.pool).await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| cursor::encode_event(e.ts, e.id))
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    async fn event_histogram(&self, hq: &HistogramQuery) -> Result<Vec<HistogramBucket>> {
        let n = histogram_buckets(hq)?;
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT (e.ts - ")
            .push_bind(Param::Int(hq.from))
            .push(") / ")
            .push_bind(Param::Int(hq.bucket_ms))
            .push(" AS b, count(*) AS n FROM events e");
        Self::event_filters(
            &mut b,
            Some(hq.from),
            Some(hq.to),
            hq.agent_id.as_deref(),
            hq.query.as_deref(),
        )?;
        b.push(" GROUP BY b");
        clean_params(&mut b);
        let rows = dynamic(b).fetch_all(&self.pool).await?;
        let mut counts = vec![0u64; n];
        for row in rows {
            let i: i64 = row.try_get("b")?;
            let c: i64 = row.try_get("n")?;
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
                *slot = c.max(0) as u64;
            }
        }
        Ok(fill_histogram(hq, counts))
    }

    async fn count_events(&self, from: Option<i64>, to: Option<i64>) -> Result<u64> {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT count(*) FROM events e");
        Self::event_filters(&mut b, from, to, None, None)?;
        let n: i64 = dynamic(b).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn store_batch(
        &self,
        events: &[NewEvent],
        detections: &[Detection],
        window: Duration,
    ) -> Result<BatchReport> {
        let window_ms = duration_ms(window);
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = Self::insert_events_tx(&mut tx, events).await?;
        let (todo, skipped) = batch_detections(detections, &inserted);
        let mut report = BatchReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
            detections_recorded: todo.len(),
            detections_skipped: skipped,
            ..BatchReport::default()
        };
        Self::lock_slots_tx(&mut tx, &todo).await?;
        let mut alerts = BatchAlerts::default();
        let mut fold = AlertFold::default();
        for d in todo {
            validate_detection(d)?;
            if let Some(o) = fold.fold(d, window_ms, now) {
                alerts.add(o, d.ts);
                continue;
            }
            if let Some(changed) = fold.take_changed(d) {
                Self::write_folded_tx(&mut tx, &changed).await?;
            }
            let o = Self::record_tx(&mut tx, d, window_ms, now).await?;
            fold.recorded(d, o.alert.clone());
            alerts.add(o, d.ts);
        }
        for changed in fold.into_changed() {
            Self::write_folded_tx(&mut tx, &changed).await?;
        }
        for (rule, hits, last) in alerts.rule_hits() {
            Self::bump_rule_tx(&mut tx, rule, hits, last, now).await?;
        }
        tx.commit().await?;
        alerts.finish(&mut report);
        debug!(
            inserted = report.inserted,
            duplicates = report.duplicates,
            alerts_created = report.alerts_created,
            alerts_updated = report.alerts_updated,
            "batch stored"
        );
        Ok(report)
    }

    async fn record_detection(
        &self,
        detection: &Detection,
        window: Duration,
    ) -> Result<DetectionOutcome> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        Self::lock_slots_tx(&mut tx, &[detection]).await?;
        let o = Self::record_tx(&mut tx, detection, duration_ms(window), now).await?;
        Self::bump_rule_tx(&mut tx, &detection.rule_id, 1, detection.ts, now).await?;
        tx.commit().await?;
        Ok(o)
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    async fn list_alerts(&self, aq: &AlertQuery) -> Result<AlertPage> {
        let limit = clamp_limit(aq.limit);
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT ")
            .push(ALERT_COLS)
            .push(" FROM alerts WHERE TRUE");
        alert_filters(&mut b, aq)?;
        b.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit) + 1));
        clean_params(&mut b);
        let rows = dynamic(b).fetch_all(&self.pool).await?;
        let mut alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(alert_page(&mut alerts, limit))
    }

    async fn set_alert_status(
        &self,
        id: i64,
        to: AlertStatus,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Alert> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM alerts WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let from = current
            .ok_or_else(|| StoreError::NotFound(format!("alert {id}")))
            .and_then(|s| AlertStatus::from_str(&s).map_err(|e| corrupt("alert status", e)))?;
        check_transition(id, from, to)?;
        let sql = format!(
            "UPDATE alerts SET status = $1, updated_at = $2 WHERE id = $3 RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        q("INSERT INTO alert_status_history (alert_id, actor, from_status, to_status, note, changed_at) \
           VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(no_nul(actor))
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(note.map(no_nul))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        alert_from_row(&row)
    }

    async fn assign_alert(&self, id: i64, assignee: Option<&str>) -> Result<Alert> {
        let sql = format!(
            "UPDATE alerts SET assignee = $1, updated_at = $2 WHERE id = $3 RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(assignee.map(no_nul))
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => alert_from_row(&r),
            None => Err(StoreError::NotFound(format!("alert {id}"))),
        }
    }

    async fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<Comment> {
        validate_comment(body)?;
        let row = q(
            "INSERT INTO alert_comments (alert_id, author, body, created_at) \
                     SELECT id, $2, $3, $4 FROM alerts WHERE id = $1 \
                     RETURNING id, alert_id, author, body, created_at",
        )
        .bind(alert_id)
        .bind(no_nul(author))
        .bind(no_nul(body))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => comment_from_row(&r),
            None => Err(StoreError::NotFound(format!("alert {alert_id}"))),
        }
    }

    async fn comments(&self, alert_id: i64) -> Result<Vec<Comment>> {
        q("SELECT id, alert_id, author, body, created_at FROM alert_comments WHERE alert_id = $1 ORDER BY id")
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(comment_from_row)
            .collect()
    }

    async fn status_history(&self, alert_id: i64) -> Result<Vec<StatusChange>> {
        q(
            "SELECT id, alert_id, actor, from_status, to_status, note, changed_at \
           FROM alert_status_history WHERE alert_id = $1 ORDER BY id",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(change_from_row)
        .collect()
    }

    async fn set_rule_enabled(&self, rule_id: &str, enabled: bool) -> Result<RuleState> {
        let row = q("INSERT INTO rule_state (rule_id, enabled, hit_count, updated_at) VALUES ($1, $2, 0, $3) \
                     ON CONFLICT (rule_id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at \
                     RETURNING rule_id, enabled, hit_count, last_hit, updated_at")
        .bind(no_nul(rule_id))
        .bind(enabled)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        rule_from_row(&row)
    }

    async fn rule_state(&self, rule_id: &str) -> Result<Option<RuleState>> {
        let row = q("SELECT rule_id, enabled, hit_count, last_hit, updated_at FROM rule_state WHERE rule_id = $1")
            .bind(no_nul(rule_id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    async fn list_rule_states(&self) -> Result<Vec<RuleState>> {
        q("SELECT rule_id, enabled, hit_count, last_hit, updated_at FROM rule_state ORDER BY rule_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rule_from_row)
            .collect()
    }

    async fn create_token(&self, t: &NewToken) -> Result<CreatedToken> {
        validate_token_name(&t.name)?;
        let (secret, hash) = token::generate(token::TOKEN_PREFIX)?;
        // The owner must exist (checked in the insert itself).
        let sql = format!(
            "INSERT INTO api_tokens (name, role, secret_hash, created_at, expires_at, user_id) \
             SELECT $1, $2, $3, $4, $5, $6 \
             WHERE $6 IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $6) RETURNING {TOKEN_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(no_nul(&t.name))
            .bind(t.role.as_str())
            .bind(hash)
            .bind(now_ms())
            .bind(t.expires_at)
            .bind(t.owner)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(CreatedToken {
                info: token_from_row(&row)?,
                secret,
            }),
            None => Err(StoreError::NotFound(format!(
                "user {}",
                t.owner.unwrap_or_default()
            ))),
        }
    }

    async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>> {
        let Some(hash) = token::hash_presented(token::TOKEN_PREFIX, secret) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {}, u.role AS owner_role, u.disabled_at AS owner_disabled_at \
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1",
            qualified(TOKEN_COLS, "t", "")
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        let info = token_from_row(&row)?;
        if !token_usable(&info, now) {
            return Ok(None);
        }
        let owner_role: Option<String> = row.try_get("owner_role")?;
        let owner_disabled: Option<i64> = row.try_get("owner_disabled_at")?;
        let Some(mut info) =
            effective_token(info, owner_role.as_deref(), owner_disabled.is_some())?
        else {
            return Ok(None);
        };
        if info
            .last_used_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_MS)
        {
            q("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(info.id)
                .execute(&self.pool)
                .await?;
            info.last_used_at = Some(now);
        }
        Ok(Some(info))
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        let r = q("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn list_user_tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE user_id = $1 ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_user_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let r = q(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let (name, key) = validate_new_user(u)?;
        let sql = format!(
            "INSERT INTO users (username, username_key, password_hash, role, language, created_at, \
             created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6) \
             ON CONFLICT (username_key) DO NOTHING RETURNING {USER_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&name)
            .bind(key)
            .bind(&u.password_hash)
            .bind(u.role.as_str())
            .bind(&u.language)
            .bind(now_ms())
            .bind(no_nul(&u.created_by))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => user_from_row(&r),
            None => Err(StoreError::Conflict(format!("user {name}"))),
        }
    }

    async fn get_user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user(&self, username: &str) -> Result<Option<(User, String)>> {
        let Ok((_, key)) = username_and_key(username) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLS}, password_hash FROM users WHERE username_key = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        // username_key is COLLATE "C": byte order, the same as SQLite's.
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username_key, id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_user_role(&self, id: i64, role: Role) -> Result<Option<User>> {
        self.change_user_guarded(id, Some(role), None).await
    }

    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<Option<User>> {
        validate_password_hash(password_hash)?;
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLS}"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(password_hash)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        q("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        user_from_row(&row).map(Some)
    }

    async fn set_user_language(&self, id: i64, language: Option<&str>) -> Result<Option<User>> {
        validate_language(language)?;
        let sql = format!(
            "UPDATE users SET language = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(language)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<Option<User>> {
        self.change_user_guarded(id, None, Some(disabled)).await
    }

    async fn record_login(&self, id: i64, at: i64) -> Result<()> {
        q("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_session(&self, s: &NewSession) -> Result<Session> {
        let (ip, user_agent) = validate_new_session(s)?;
        let now = now_ms();
        // FOR SHARE waits for a concurrent disable (which holds the row FOR UPDATE) and then
        // re-checks `disabled_at`, so a session is never added after the disable deleted them.
        let sql = format!(
            "WITH u AS (SELECT id FROM users WHERE id = $1 AND disabled_at IS NULL FOR SHARE) \
             INSERT INTO sessions (user_id, secret_hash, csrf_token, created_at, expires_at, \
             last_seen_at, ip, user_agent) SELECT u.id, $2, $3, $4, $5, $4, $6, $7 FROM u \
             ON CONFLICT (secret_hash) DO NOTHING RETURNING {SESSION_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(s.user_id)
            .bind(&s.secret_hash)
            .bind(&s.csrf_token)
            .bind(now)
            .bind(s.expires_at)
            .bind(ip.as_deref().map(no_nul))
            .bind(user_agent.as_deref().map(no_nul))
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return session_from_row(&row, "");
        }
        // Nothing inserted: say why.
        let user: Option<Option<i64>> =
            sqlx::query_scalar("SELECT disabled_at FROM users WHERE id = $1")
                .bind(s.user_id)
                .fetch_optional(&self.pool)
                .await?;
        Err(match user {
            None => StoreError::NotFound(format!("user {}", s.user_id)),
            Some(Some(_)) => StoreError::InvalidArgument(format!("user {} is disabled", s.user_id)),
            Some(None) => StoreError::Conflict("session".into()),
        })
    }

    async fn find_session(&self, secret_hash: &[u8]) -> Result<Option<(Session, User)>> {
        if !session_hash_shaped(secret_hash) {
            return Ok(None);
        }
        let now = now_ms();
        let sql = format!(
            "SELECT {}, {} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
            qualified(SESSION_COLS, "s", "s_"),
            qualified(USER_COLS, "u", "")
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(secret_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut session = session_from_row(&row, "s_")?;
        let user = user_from_row(&row)?;
        if now.saturating_sub(session.last_seen_at) >= TOUCH_MS {
            q("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                .bind(now)
                .bind(session.id)
                .execute(&self.pool)
                .await?;
            session.last_seen_at = now;
        }
        Ok(Some((session, user)))
    }

    async fn delete_session(&self, secret_hash: &[u8]) -> Result<bool> {
        if !session_hash_shaped(secret_hash) {
            return Ok(false);
        }
        let r = q("DELETE FROM sessions WHERE secret_hash = $1")
            .bind(secret_hash.to_vec())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64> {
        let r = q("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let r = q("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn create_enrollment_token(
        &self,
        t: &NewEnrollmentToken,
    ) -> Result<CreatedEnrollmentToken> {
        validate_new_enrollment_token(t)?;
        let (secret, hash) = token::generate(token::ENROLLMENT_TOKEN_PREFIX)?;
        let sql = format!(
            "INSERT INTO enrollment_tokens (name, secret_hash, created_at, created_by, expires_at, max_uses) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENROLL_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(no_nul(&t.name))
            .bind(hash)
            .bind(now_ms())
            .bind(no_nul(&t.created_by))
            .bind(t.expires_at)
            .bind(t.max_uses.map(i64::from))
            .fetch_one(&self.pool)
            .await?;
        Ok(CreatedEnrollmentToken {
            info: enrollment_from_row(&row)?,
            secret,
        })
    }

    async fn redeem_enrollment_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<EnrollmentTokenInfo, EnrollmentRefusal>> {
        let Some(hash) = token::hash_presented(token::ENROLLMENT_TOKEN_PREFIX, secret) else {
            return Ok(Err(EnrollmentRefusal::Unknown));
        };
        let now = now_ms();
        // A concurrent redeem of the same token waits for our row lock and then re-checks the
        // WHERE clause against the updated row (READ COMMITTED), so `uses` never passes
        // `max_uses`.
        let sql = format!(
            "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = $1 \
             WHERE secret_hash = $2 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1) \
             AND (max_uses IS NULL OR uses < max_uses) RETURNING {ENROLL_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(Ok(enrollment_from_row(&row)?));
        }
        let row = q("SELECT revoked_at, expires_at FROM enrollment_tokens WHERE secret_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(Err(match row {
            None => EnrollmentRefusal::Unknown,
            Some(r) => enrollment_refusal(r.try_get("revoked_at")?, r.try_get("expires_at")?, now),
        }))
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenInfo>> {
        let sql = format!("SELECT {ENROLL_COLS} FROM enrollment_tokens ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(enrollment_from_row)
            .collect()
    }

    async fn revoke_enrollment_token(&self, id: i64) -> Result<bool> {
        let r =
            q("UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_agent(&self, a: &NewAgent) -> Result<Agent> {
        validate_agent_id(&a.id)?;
        validate_facts(&a.facts)?;
        let cert = cert_fingerprint(&a.cert_sha256)?;
        let sql = format!(
            "INSERT INTO agents (hostname, hostname_key, os_type, os_name, os_version, arch, \
             agent_version, ips, id, enrolled_at, enrolled_by, cert_sha256, cert_not_after, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $10) \
             ON CONFLICT (id) DO NOTHING RETURNING {AGENT_COLS}"
        );
        let row = bind_facts(sqlx::query(AssertSqlSafe(sql)), &a.facts)
            .bind(no_nul(&a.id))
            .bind(now_ms())
            .bind(no_nul(&a.enrolled_by))
            .bind(cert)
            .bind(a.cert_not_after)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => agent_from_row(&r),
            None => Err(StoreError::Conflict(format!("agent {}", a.id))),
        }
    }

    async fn reenroll_agent(
        &self,
        id: &str,
        facts: &AgentFacts,
        cert_sha256: &str,
        cert_not_after: i64,
    ) -> Result<Option<Agent>> {
        validate_facts(facts)?;
        let cert = cert_fingerprint(cert_sha256)?;
        let sql = format!(
            "UPDATE agents SET {}, cert_sha256 = $9, cert_not_after = $10, reenrolled_at = $11 \
             WHERE id = $12 AND revoked_at IS NULL RETURNING {AGENT_COLS}",
            facts_set(1)
        );
        let row = bind_facts(sqlx::query(AssertSqlSafe(sql)), facts)
            .bind(cert)
            .bind(cert_not_after)
            .bind(now_ms())
            .bind(no_nul(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn get_agent(&self, id: &str) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLS} FROM agents WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(no_nul(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        // The three columns are COLLATE "C": byte order, the same as SQLite's.
        let sql = format!("SELECT {AGENT_COLS} FROM agents ORDER BY hostname_key, hostname, id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(agent_from_row)
            .collect()
    }

    async fn agents_with_hostname(&self, hostname: &str) -> Result<Vec<Agent>> {
        let sql = format!(
            "SELECT {AGENT_COLS} FROM agents WHERE hostname_key = $1 AND revoked_at IS NULL \
             ORDER BY enrolled_at, id"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(hostname_key(&no_nul(hostname)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(agent_from_row)
            .collect()
    }

    async fn record_heartbeat(&self, id: &str, hb: &AgentHeartbeat) -> Result<Option<Agent>> {
        validate_facts(&hb.facts)?;
        validate_health(&hb.health)?;
        let doc = (!hb.doc.is_null()).then(|| {
            let mut doc = hb.doc.clone();
            strip_nul(&mut doc);
            Json(doc)
        });
        let health: Vec<String> = hb.health.iter().map(|h| no_nul(h)).collect();
        // One statement: the subquery locks the row and yields it as it was before the
        // update, which RETURNING hands back.
        let sql = format!(
            "UPDATE agents a SET {}, health = $9, last_heartbeat = $10, \
             last_seen = GREATEST(a.last_seen, $11), offline_since = NULL \
             FROM (SELECT {AGENT_COLS} FROM agents WHERE id = $12 AND revoked_at IS NULL FOR UPDATE) prev \
             WHERE a.id = prev.id RETURNING {}",
            facts_set(1),
            agent_cols_of("prev")
        );
        let row = bind_facts(sqlx::query(AssertSqlSafe(sql)), &hb.facts)
            .bind(Json(health))
            .bind(doc)
            .bind(hb.at)
            .bind(no_nul(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn touch_agent(&self, id: &str, at: i64) -> Result<()> {
        q(
            "UPDATE agents SET last_seen = GREATEST(last_seen, $1), offline_since = NULL \
           WHERE id = $2 AND revoked_at IS NULL AND (last_seen < $1 OR offline_since IS NOT NULL)",
        )
        .bind(at)
        .bind(no_nul(id))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: &str, actor: &str) -> Result<bool> {
        let r = q(
            "UPDATE agents SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(no_nul(actor))
        .bind(no_nul(id))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn mark_agents_offline(&self, silent_before: i64) -> Result<Vec<Agent>> {
        // The candidates are locked in id order (no deadlocks between sweeps); rows another
        // transaction holds are skipped (a concurrent sweep marks them; a heartbeat makes them
        // live). FOR UPDATE re-checks the conditions on the newest row version, so an agent is
        // marked, and returned, by exactly one caller.
        let sql = format!(
            "WITH silent AS (SELECT id FROM agents \
               WHERE revoked_at IS NULL AND offline_since IS NULL AND last_seen < $2 \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             UPDATE agents a SET offline_since = $1 FROM silent \
             WHERE a.id = silent.id AND a.offline_since IS NULL RETURNING {}",
            agent_cols_of("a")
        );
        let mut agents = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(silent_before)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(agent_from_row)
            .collect::<Result<Vec<_>>>()?;
        sort_agents(&mut agents);
        Ok(agents)
    }

    async fn create_command(&self, c: &NewAgentCommand) -> Result<AgentCommand> {
        validate_new_command(c)?;
        let mut args = c.args.clone();
        strip_nul(&mut args);
        // The agent must exist and be unrevoked in the same statement; FOR SHARE holds off a
        // concurrent revocation until the command is in.
        let sql = format!(
            "INSERT INTO agent_commands (id, agent_id, kind, args, status, requested_by, created_at) \
             SELECT $1, id, $2, $3, 'pending', $4, $5 FROM agents \
             WHERE id = $6 AND revoked_at IS NULL FOR SHARE \
             RETURNING {COMMAND_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(Uuid::now_v7().to_string())
            .bind(no_nul(&c.kind))
            .bind(Json(args))
            .bind(no_nul(&c.requested_by))
            .bind(now_ms())
            .bind(no_nul(&c.agent_id))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => command_from_row(&r),
            None => Err(StoreError::NotFound(format!(
                "unrevoked agent {}",
                c.agent_id
            ))),
        }
    }

    async fn list_agent_commands(&self, agent_id: &str, limit: u32) -> Result<Vec<AgentCommand>> {
        let sql = format!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE agent_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(no_nul(agent_id))
            .bind(i64::from(clamp_limit(limit)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(command_from_row)
            .collect()
    }

    async fn get_command(&self, id: Uuid) -> Result<Option<AgentCommand>> {
        let sql = format!("SELECT {COMMAND_COLS} FROM agent_commands WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn count_open_commands(&self, agent_id: &str) -> Result<u64> {
        let n: i64 = q("SELECT count(*) FROM agent_commands \
                        WHERE agent_id = $1 AND status IN ('pending', 'delivered')")
        .bind(no_nul(agent_id))
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn take_for_delivery(
        &self,
        agent_id: &str,
        now: i64,
        redeliver_after: Duration,
        max_attempts: u32,
    ) -> Result<Vec<AgentCommand>> {
        let due = redeliver_cutoff(now, redeliver_after);
        let max_attempts = i64::from(max_attempts.max(1));
        let agent_id = no_nul(agent_id);
        // Rows another transaction holds are skipped (a concurrent take hands them out);
        // FOR UPDATE re-checks the conditions on the newest row version, and the UPDATEs
        // repeat them, so a command is handed out (or expired) by exactly one caller.
        let mut tx = self.pool.begin().await?;
        q("WITH gone AS (SELECT id FROM agent_commands \
             WHERE agent_id = $2 AND status = 'delivered' AND delivered_at <= $3 AND attempts >= $4 \
             ORDER BY id FOR UPDATE SKIP LOCKED) \
           UPDATE agent_commands c SET status = 'expired', finished_at = $1 FROM gone \
           WHERE c.id = gone.id AND c.status = 'delivered'")
        .bind(now)
        .bind(agent_id.clone())
        .bind(due)
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "WITH due AS (SELECT id FROM agent_commands \
               WHERE agent_id = $2 AND (status = 'pending' \
                 OR (status = 'delivered' AND delivered_at <= $3 AND attempts < $4)) \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             UPDATE agent_commands c SET status = 'delivered', delivered_at = $1, \
               attempts = c.attempts + 1 FROM due \
             WHERE c.id = due.id AND c.status IN ('pending', 'delivered') RETURNING {}",
            qualified(COMMAND_COLS, "c", "")
        );
        let mut commands = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(agent_id)
            .bind(due)
            .bind(max_attempts)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(command_from_row)
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        sort_commands(&mut commands);
        Ok(commands)
    }

    async fn finish_command(
        &self,
        id: Uuid,
        agent_id: &str,
        status: CommandStatus,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<CommandFinish> {
        validate_finish(status, result, error)?;
        let result = result.filter(|r| !r.is_null()).map(|r| {
            let mut r = r.clone();
            strip_nul(&mut r);
            Json(r)
        });
        // One statement: a concurrent second finish waits for the row, then sees it done.
        let sql = format!(
            "UPDATE agent_commands SET status = $1, result = $2, error = $3, finished_at = $4 \
             WHERE id = $5 AND agent_id = $6 AND status NOT IN ('done', 'failed') \
             RETURNING {COMMAND_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(result)
            .bind(error.map(no_nul))
            .bind(now_ms())
            .bind(id.to_string())
            .bind(no_nul(agent_id))
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(CommandFinish::Recorded(command_from_row(&row)?));
        }
        let sql =
            format!("SELECT {COMMAND_COLS} FROM agent_commands WHERE id = $1 AND agent_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(no_nul(agent_id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => CommandFinish::AlreadyFinished(command_from_row(&r)?),
            None => CommandFinish::Unknown,
        })
    }

    async fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let mut details = if e.details.is_null() {
            Value::Object(Default::default())
        } else {
            e.details.clone()
        };
        strip_nul(&mut details);
        let row = q("INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id, at, actor, action, target, details")
        .bind(now_ms())
        .bind(no_nul(&e.actor))
        .bind(no_nul(&e.action))
        .bind(e.target.as_deref().map(no_nul))
        .bind(Json(details))
        .fetch_one(&self.pool)
        .await?;
        audit_from_row(&row)
    }

    async fn list_audit(&self, aq: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT id, at, actor, action, target, details FROM audit_log WHERE TRUE");
        audit_filters(&mut b, aq);
        clean_params(&mut b);
        dynamic(b)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(audit_from_row)
            .collect()
    }

    async fn record_sample(&self, sample: &NewSample) -> Result<(Sample, bool)> {
        self.record_sample_impl(sample).await
    }

    async fn set_sample_verdict(&self, sha256: &str, verdict: &Value, at: i64) -> Result<bool> {
        self.set_sample_verdict_impl(sha256, verdict, at).await
    }

    async fn get_sample(&self, sha256: &str) -> Result<Option<Sample>> {
        self.get_sample_impl(sha256).await
    }

    async fn list_samples(&self, query: &SampleQuery) -> Result<Vec<Sample>> {
        self.list_samples_impl(query).await
    }

    async fn purge_before(&self, cutoff: i64) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        loop {
            let n =
                q("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < $1 LIMIT $2)")
                    .bind(cutoff)
                    .bind(PURGE_CHUNK)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            report.events += n;
            if n < PURGE_CHUNK as u64 {
                break;
            }
        }
        loop {
            let n = q("DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                       WHERE status IN ('resolved', 'false_positive') AND last_seen < $1 LIMIT $2)")
            .bind(cutoff)
            .bind(PURGE_CHUNK)
            .execute(&self.pool)
            .await?
            .rows_affected();
            report.alerts += n;
            if n < PURGE_CHUNK as u64 {
                break;
            }
        }
        if report.events + report.alerts > 0 {
            info!(
                events = report.events,
                alerts = report.alerts,
                cutoff,
                "purged"
            );
        }
        Ok(report)
    }

    async fn stats(&self) -> Result<StoreStats> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        let mut stats = StoreStats::empty(total.max(0) as u64);
        let by_status = q("SELECT status, count(*) FROM alerts GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let by_level = q(
            "SELECT level, count(*) FROM alerts WHERE status IN ('new', 'acknowledged') GROUP BY level",
        )
        .fetch_all(&self.pool)
        .await?;
        fill_stats(
            &mut stats,
            rows_to_counts(&by_status)?,
            rows_to_counts(&by_level)?,
        )?;
        Ok(stats)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

fn rows_to_counts(rows: &[PgRow]) -> Result<Vec<(String, i64)>> {
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("dozor_test_1a"));
        assert!(!valid_schema_name("Dozor"));
        assert!(!valid_schema_name("a\"; DROP"));
        assert!(!valid_schema_name(""));
        assert!(!valid_schema_name("1abc"));
    }

    #[test]
    fn nul_is_replaced() {
        let mut v = json!({"a\u{0}": ["x\u{0}y", {"k": "\u{0}"}]});
        strip_nul(&mut v);
        assert_eq!(v, json!({"a\u{FFFD}": ["x\u{FFFD}y", {"k": "\u{FFFD}"}]}));
    }

    #[test]
    fn lock_keys_differ() {
        assert_ne!(
            aggregation_lock_key("r", Some("a")),
            aggregation_lock_key("r", None)
        );
        assert_eq!(
            aggregation_lock_key("r", Some("a")),
            aggregation_lock_key("r", Some("a"))
        );
    }
}
