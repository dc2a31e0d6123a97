//! Embedded SQLite backend: one database file in a data directory, WAL, `synchronous=NORMAL`,
//! a single writer connection (so writers queue in the process instead of failing with
//! `SQLITE_BUSY`) and a pool of `query_only` reader connections.

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteArguments, SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
    SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, Sqlite};
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

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "dozor.db";
const INSERT_CHUNK: usize = 100;
const PURGE_CHUNK: i64 = 5_000;

/// SQLite settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Data directory (created if missing); the database is `DIR/dozor.db`.
    pub data_dir: PathBuf,
    /// Reader connections.
    pub readers: u32,
    /// How long a connection waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Page cache per connection, MiB.
    pub cache_mib: u32,
}

impl SqliteConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            data_dir: data_dir.into(),
            readers: 4,
            busy_timeout: Duration::from_secs(10),
            cache_mib: 32,
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/sqlite/0001_init.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "agents".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/sqlite/0002_agents.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "users".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/sqlite/0003_users.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            "agent_commands".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/sqlite/0004_agent_commands.sql"))
                .into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            "samples".into(),
            MigrationType::Simple,
            AssertSqlSafe(include_str!("../migrations/sqlite/0005_samples.sql")).into_sql_str(),
            false,
        ),
    ])
}

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

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
            Param::TextArray(v) => query.bind(serde_json::to_string(&v).unwrap_or_default()),
        };
    }
    query
}

fn json_text(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::InvalidArgument(format!("JSON: {e}")))
}

fn event_from_row(row: &SqliteRow) -> Result<StoredEvent> {
    let doc: String = row.try_get("doc")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        received_at: row.try_get("received_at")?,
        agent_id: row.try_get("agent_id")?,
        doc: serde_json::from_str(&doc).map_err(|e| corrupt("event doc", e))?,
    })
}

const ALERT_COLS: &str = "id, rule_id, rule_title, level, tags, agent_id, first_seen, last_seen, \
    count, event_ids, status, assignee, created_at, updated_at";

fn alert_from_row(row: &SqliteRow) -> Result<Alert> {
    let tags: String = row.try_get("tags")?;
    let ids: String = row.try_get("event_ids")?;
    let level: String = row.try_get("level")?;
    let status: String = row.try_get("status")?;
    Ok(Alert {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        rule_title: row.try_get("rule_title")?,
        level: Level::from_str(&level).map_err(|e| corrupt("alert level", e))?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("alert tags", e))?,
        agent_id: row.try_get("agent_id")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        count: row.try_get("count")?,
        event_ids: serde_json::from_str(&ids).map_err(|e| corrupt("alert event ids", e))?,
        status: AlertStatus::from_str(&status).map_err(|e| corrupt("alert status", e))?,
        assignee: row.try_get("assignee")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn rule_from_row(row: &SqliteRow) -> Result<RuleState> {
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

fn token_from_row(row: &SqliteRow) -> Result<TokenInfo> {
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

fn user_from_row(row: &SqliteRow) -> Result<User> {
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
fn session_from_row(row: &SqliteRow, prefix: &str) -> Result<Session> {
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

fn enrollment_from_row(row: &SqliteRow) -> Result<EnrollmentTokenInfo> {
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

/// `SET` list of the facts columns; bind with [`bind_facts`].
const FACTS_SET: &str = "hostname = ?, hostname_key = ?, os_type = ?, os_name = ?, \
    os_version = ?, arch = ?, agent_version = ?, ips = ?";

fn bind_facts(query: Query, f: &AgentFacts) -> Query {
    query
        .bind(f.hostname.clone())
        .bind(hostname_key(&f.hostname))
        .bind(f.os_type.clone())
        .bind(f.os_name.clone())
        .bind(f.os_version.clone())
        .bind(f.arch.clone())
        .bind(f.agent_version.clone())
        .bind(serde_json::to_string(&f.ips).unwrap_or_else(|_| "[]".into()))
}

fn agent_from_row(row: &SqliteRow) -> Result<Agent> {
    let ips: String = row.try_get("ips")?;
    let health: String = row.try_get("health")?;
    let heartbeat: Option<String> = row.try_get("last_heartbeat")?;
    Ok(Agent {
        id: row.try_get("id")?,
        facts: AgentFacts {
            hostname: row.try_get("hostname")?,
            os_type: row.try_get("os_type")?,
            os_name: row.try_get("os_name")?,
            os_version: row.try_get("os_version")?,
            arch: row.try_get("arch")?,
            agent_version: row.try_get("agent_version")?,
            ips: serde_json::from_str(&ips).map_err(|e| corrupt("agent ips", e))?,
        },
        enrolled_at: row.try_get("enrolled_at")?,
        enrolled_by: row.try_get("enrolled_by")?,
        cert_sha256: row.try_get("cert_sha256")?,
        cert_not_after: row.try_get("cert_not_after")?,
        reenrolled_at: row.try_get("reenrolled_at")?,
        last_seen: row.try_get("last_seen")?,
        last_heartbeat: heartbeat
            .map(|h| serde_json::from_str(&h))
            .transpose()
            .map_err(|e| corrupt("agent heartbeat", e))?,
        health: serde_json::from_str(&health).map_err(|e| corrupt("agent health", e))?,
        offline_since: row.try_get("offline_since")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

const COMMAND_COLS: &str = "id, agent_id, kind, args, status, requested_by, created_at, \
    delivered_at, attempts, finished_at, result, error";

fn command_from_row(row: &SqliteRow) -> Result<AgentCommand> {
    let id: String = row.try_get("id")?;
    let args: String = row.try_get("args")?;
    let status: String = row.try_get("status")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(AgentCommand {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("command id", e))?,
        agent_id: row.try_get("agent_id")?,
        kind: row.try_get("kind")?,
        args: serde_json::from_str(&args).map_err(|e| corrupt("command args", e))?,
        status: CommandStatus::from_str(&status).map_err(|e| corrupt("command status", e))?,
        requested_by: row.try_get("requested_by")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        attempts: stored_u32("command attempts", row.try_get("attempts")?)?,
        finished_at: row.try_get("finished_at")?,
        result: result
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| corrupt("command result", e))?,
        error: row.try_get("error")?,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEntry> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: serde_json::from_str(&details).map_err(|e| corrupt("audit details", e))?,
    })
}

fn comment_from_row(row: &SqliteRow) -> Result<Comment> {
    Ok(Comment {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        author: row.try_get("author")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
    })
}

fn change_from_row(row: &SqliteRow) -> Result<StatusChange> {
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

impl SqliteStore {
    /// Opens (creating the directory and database, applying migrations) a store.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::Io {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let path = config.db_path();
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma(
                "cache_size",
                format!("-{}", u64::from(config.cache_mib) * 1024),
            )
            .with_regexp();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(120))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().optimize_on_close(true, 400))
            .await?;
        migrator().run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.create_if_missing(false).pragma("query_only", "ON"))
            .await?;
        info!(path = %path.display(), "sqlite store open");
        Ok(SqliteStore { writer, readers })
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so a concurrent
    /// writer in another process (e.g. a CLI admin command) makes us wait (`busy_timeout`)
    /// instead of failing half-way with `SQLITE_BUSY`.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Changes a user's role and/or disabled state under the last-administrator guard. The
    /// `BEGIN IMMEDIATE` transaction holds the database's write lock from the first read, so
    /// the admin count cannot change before the update commits.
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
        let mut tx = self.write_tx().await?;
        let Some(row) = q("SELECT role, disabled_at FROM users WHERE id = ?")
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
                "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> ?",
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
            "UPDATE users SET role = ?, disabled_at = ?, updated_at = ? WHERE id = ? \
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
            q("DELETE FROM sessions WHERE user_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        user_from_row(&row).map(Some)
    }

    async fn insert_events_tx(
        conn: &mut SqliteConnection,
        events: &[NewEvent],
    ) -> Result<HashSet<Uuid>> {
        // Which ids are new is worked out from the few that already exist rather than with
        // `RETURNING id`: sqlx hands every returned row from SQLite's thread to ours one at a
        // time, which cost more than the insert itself. The write lock taken by `BEGIN
        // IMMEDIATE` keeps this exact: nobody else can insert between the two statements.
        let mut inserted = HashSet::with_capacity(events.len());
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut probe = String::from("SELECT id FROM events WHERE id IN (");
            for i in 0..chunk.len() {
                probe.push_str(if i == 0 { "?" } else { ",?" });
            }
            probe.push(')');
            let mut query = sqlx::query(AssertSqlSafe(probe));
            for e in chunk {
                query = query.bind(e.id);
            }
            let mut known: HashSet<Uuid> = HashSet::new();
            for row in query.fetch_all(&mut *conn).await? {
                known.insert(row.try_get::<Uuid, _>(0)?);
            }
            let mut sql = String::from(
                "INSERT INTO events (id, ts, received_at, agent_id, kind, category, action, code, doc) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?)");
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                let d = derive(&e.doc);
                let categories: Vec<&str> = d
                    .categories
                    .iter()
                    .map(String::as_str)
                    .filter(|c| !c.contains(','))
                    .collect();
                let category = (!categories.is_empty()).then(|| categories.join(","));
                query = query
                    .bind(e.id)
                    .bind(e.ts)
                    .bind(e.received_at)
                    .bind(e.agent_id.clone())
                    .bind(d.kind)
                    .bind(category)
                    .bind(d.action)
                    .bind(d.code)
                    .bind(json_text(&e.doc)?);
            }
            query.execute(&mut *conn).await?;
            // The first occurrence of an id in the batch is the one stored.
            for e in chunk {
                if !known.contains(&e.id) && known.insert(e.id) {
                    inserted.insert(e.id);
                }
            }
        }
        Ok(inserted)
    }

    /// Writes an alert whose detections were folded in memory by `store_batch`.
    async fn write_folded_tx(conn: &mut SqliteConnection, alert: &Alert) -> Result<()> {
        let ids: Vec<String> = alert.event_ids.iter().map(Uuid::to_string).collect();
        sqlx::query(
            "UPDATE alerts SET count = ?, first_seen = ?, last_seen = ?, event_ids = ?, updated_at = ? WHERE id = ?",
        )
        .bind(alert.count)
        .bind(alert.first_seen)
        .bind(alert.last_seen)
        .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
        .bind(alert.updated_at)
        .bind(alert.id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn record_tx(
        conn: &mut SqliteConnection,
        d: &Detection,
        window_ms: i64,
        now: i64,
    ) -> Result<DetectionOutcome> {
        validate_detection(d)?;
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alerts WHERE rule_id = ? AND agent_id IS ? \
             AND status IN ('new', 'acknowledged') AND last_seen >= ? AND first_seen <= ? \
             ORDER BY last_seen DESC, id DESC LIMIT 1",
        )
        .bind(&d.rule_id)
        .bind(&d.agent_id)
        .bind(d.ts.saturating_sub(window_ms))
        .bind(d.ts.saturating_add(window_ms))
        .fetch_optional(&mut *conn)
        .await?;
        let event_id = d.event_id.to_string();
        if let Some(id) = open {
            let sql = format!(
                "UPDATE alerts SET count = count + 1, first_seen = min(first_seen, ?), \
                 last_seen = max(last_seen, ?), \
                 event_ids = CASE WHEN json_array_length(event_ids) < ? \
                   THEN json_insert(event_ids, '$[#]', ?) ELSE event_ids END, \
                 updated_at = ? WHERE id = ? RETURNING {ALERT_COLS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(d.ts)
                .bind(d.ts)
                .bind(MAX_ALERT_EVENT_IDS as i64)
                .bind(event_id)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
            return Ok(DetectionOutcome {
                change: AlertChange::Updated,
                alert: alert_from_row(&row)?,
            });
        }
        let sql = format!(
            "INSERT INTO alerts (rule_id, rule_title, level, tags, agent_id, first_seen, last_seen, \
             count, event_ids, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, json_array(?), 'new', ?, ?) RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&d.rule_id)
            .bind(&d.rule_title)
            .bind(d.level.as_str())
            .bind(serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into()))
            .bind(&d.agent_id)
            .bind(d.ts)
            .bind(d.ts)
            .bind(event_id)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
        Ok(DetectionOutcome {
            change: AlertChange::Created,
            alert: alert_from_row(&row)?,
        })
    }

    async fn bump_rule_tx(
        conn: &mut SqliteConnection,
        rule_id: &str,
        hits: i64,
        last_hit: i64,
        now: i64,
    ) -> Result<()> {
        q(
            "INSERT INTO rule_state (rule_id, enabled, hit_count, last_hit, updated_at) \
           VALUES (?, 1, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET \
           hit_count = hit_count + excluded.hit_count, \
           last_hit = max(coalesce(last_hit, excluded.last_hit), excluded.last_hit), \
           updated_at = excluded.updated_at",
        )
        .bind(rule_id.to_owned())
        .bind(hits)
        .bind(last_hit)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn alert_by_id(&self, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    fn event_filters(
        b: &mut SqlBuilder,
        from: Option<i64>,
        to: Option<i64>,
        agent_id: Option<&str>,
        query_text: Option<&str>,
    ) -> Result<()> {
        b.push(" WHERE 1 = 1");
        if let Some(from) = from {
            b.push(" AND e.ts >= ").push_bind(Param::Int(from));
        }
        if let Some(to) = to {
            b.push(" AND e.ts < ").push_bind(Param::Int(to));
        }
        if let Some(agent) = agent_id {
            b.push(" AND e.agent_id = ")
                .push_bind(Param::Text(agent.to_owned()));
        }
        if let Some(expr) = query_text.map(query::parse).transpose()?.flatten() {
            b.push(" AND ");
            b.push_expr(&expr);
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn insert_events(&self, events: &[NewEvent]) -> Result<InsertReport> {
        if events.is_empty() {
            return Ok(InsertReport::default());
        }
        let mut tx = self.write_tx().await?;
        let inserted = Self::insert_events_tx(&mut tx, events).await?;
        tx.commit().await?;
        Ok(InsertReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
        })
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>> {
        let row = q("SELECT id, ts, received_at, agent_id, doc FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn search_events(&self, query: &EventQuery) -> Result<EventPage> {
        let limit = clamp_limit(query.limit);
        let mut b = SqlBuilder::new(Dialect::Sqlite);
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
        let rows = dynamic(b).fetch_all(&self.readers).await?;
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
        let mut b = SqlBuilder::new(Dialect::Sqlite);
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
        let rows = dynamic(b).fetch_all(&self.readers).await?;
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
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        b.push("SELECT count(*) FROM events e");
        Self::event_filters(&mut b, from, to, None, None)?;
        let n: i64 = dynamic(b).fetch_one(&self.readers).await?.try_get(0)?;
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
        let mut tx = self.write_tx().await?;
        let inserted = Self::insert_events_tx(&mut tx, events).await?;
        let (todo, skipped) = batch_detections(detections, &inserted);
        let mut report = BatchReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
            detections_recorded: todo.len(),
            detections_skipped: skipped,
            ..BatchReport::default()
        };
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
        let mut tx = self.write_tx().await?;
        let o = Self::record_tx(&mut tx, detection, duration_ms(window), now).await?;
        Self::bump_rule_tx(&mut tx, &detection.rule_id, 1, detection.ts, now).await?;
        tx.commit().await?;
        Ok(o)
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>> {
        self.alert_by_id(id).await
    }

    async fn list_alerts(&self, aq: &AlertQuery) -> Result<AlertPage> {
        let limit = clamp_limit(aq.limit);
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        b.push("SELECT ")
            .push(ALERT_COLS)
            .push(" FROM alerts WHERE 1 = 1");
        alert_filters(&mut b, aq)?;
        b.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit) + 1));
        let rows = dynamic(b).fetch_all(&self.readers).await?;
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
        let mut tx = self.write_tx().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT status FROM alerts WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let from = current
            .ok_or_else(|| StoreError::NotFound(format!("alert {id}")))
            .and_then(|s| AlertStatus::from_str(&s).map_err(|e| corrupt("alert status", e)))?;
        check_transition(id, from, to)?;
        let sql = format!(
            "UPDATE alerts SET status = ?, updated_at = ? WHERE id = ? AND status = ? RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(now)
            .bind(id)
            .bind(from.as_str())
            .fetch_one(&mut *tx)
            .await?;
        q("INSERT INTO alert_status_history (alert_id, actor, from_status, to_status, note, changed_at) \
           VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(actor.to_owned())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(note.map(str::to_owned))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        alert_from_row(&row)
    }

    async fn assign_alert(&self, id: i64, assignee: Option<&str>) -> Result<Alert> {
        let sql = format!(
            "UPDATE alerts SET assignee = ?, updated_at = ? WHERE id = ? RETURNING {ALERT_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(assignee.map(str::to_owned))
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&self.writer)
            .await?;
        match row {
            Some(r) => alert_from_row(&r),
            None => Err(StoreError::NotFound(format!("alert {id}"))),
        }
    }

    async fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<Comment> {
        validate_comment(body)?;
        let mut tx = self.write_tx().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM alerts WHERE id = ?")
            .bind(alert_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("alert {alert_id}")));
        }
        let row = q(
            "INSERT INTO alert_comments (alert_id, author, body, created_at) VALUES (?, ?, ?, ?) \
                     RETURNING id, alert_id, author, body, created_at",
        )
        .bind(alert_id)
        .bind(author.to_owned())
        .bind(body.to_owned())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        comment_from_row(&row)
    }

    async fn comments(&self, alert_id: i64) -> Result<Vec<Comment>> {
        q("SELECT id, alert_id, author, body, created_at FROM alert_comments WHERE alert_id = ? ORDER BY id")
            .bind(alert_id)
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(comment_from_row)
            .collect()
    }

    async fn status_history(&self, alert_id: i64) -> Result<Vec<StatusChange>> {
        q(
            "SELECT id, alert_id, actor, from_status, to_status, note, changed_at \
           FROM alert_status_history WHERE alert_id = ? ORDER BY id",
        )
        .bind(alert_id)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(change_from_row)
        .collect()
    }

    async fn set_rule_enabled(&self, rule_id: &str, enabled: bool) -> Result<RuleState> {
        let row = q("INSERT INTO rule_state (rule_id, enabled, hit_count, updated_at) VALUES (?, ?, 0, ?) \
                     ON CONFLICT (rule_id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at \
                     RETURNING rule_id, enabled, hit_count, last_hit, updated_at")
        .bind(rule_id.to_owned())
        .bind(enabled)
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await?;
        rule_from_row(&row)
    }

    async fn rule_state(&self, rule_id: &str) -> Result<Option<RuleState>> {
        let row = q("SELECT rule_id, enabled, hit_count, last_hit, updated_at FROM rule_state WHERE rule_id = ?")
            .bind(rule_id.to_owned())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    async fn list_rule_states(&self) -> Result<Vec<RuleState>> {
        q("SELECT rule_id, enabled, hit_count, last_hit, updated_at FROM rule_state ORDER BY rule_id")
            .fetch_all(&self.readers)
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
             SELECT ?, ?, ?, ?, ?, ? \
             WHERE ? IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ?) RETURNING {TOKEN_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(t.name.clone())
            .bind(t.role.as_str())
            .bind(hash)
            .bind(now_ms())
            .bind(t.expires_at)
            .bind(t.owner)
            .bind(t.owner)
            .bind(t.owner)
            .fetch_optional(&self.writer)
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
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?",
            qualified(TOKEN_COLS, "t", "")
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(&self.readers)
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
            q("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(info.id)
                .execute(&self.writer)
                .await?;
            info.last_used_at = Some(now);
        }
        Ok(Some(info))
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        let r = q("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn list_user_tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE user_id = ? ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_user_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let r = q(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.readers)
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let (name, key) = validate_new_user(u)?;
        let now = now_ms();
        let sql = format!(
            "INSERT INTO users (username, username_key, password_hash, role, language, created_at, \
             created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (username_key) DO NOTHING RETURNING {USER_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(name.clone())
            .bind(key)
            .bind(u.password_hash.clone())
            .bind(u.role.as_str())
            .bind(u.language.clone())
            .bind(now)
            .bind(u.created_by.clone())
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        match row {
            Some(r) => user_from_row(&r),
            None => Err(StoreError::Conflict(format!("user {name}"))),
        }
    }

    async fn get_user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user(&self, username: &str) -> Result<Option<(User, String)>> {
        let Ok((_, key)) = username_and_key(username) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLS}, password_hash FROM users WHERE username_key = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username_key, id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.readers)
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
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? RETURNING {USER_COLS}"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(password_hash.to_owned())
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        q("DELETE FROM sessions WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        user_from_row(&row).map(Some)
    }

    async fn set_user_language(&self, id: i64, language: Option<&str>) -> Result<Option<User>> {
        validate_language(language)?;
        let sql = format!(
            "UPDATE users SET language = ?, updated_at = ? WHERE id = ? RETURNING {USER_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(language.map(str::to_owned))
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&self.writer)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<Option<User>> {
        self.change_user_guarded(id, None, Some(disabled)).await
    }

    async fn record_login(&self, id: i64, at: i64) -> Result<()> {
        q("UPDATE users SET last_login_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn create_session(&self, s: &NewSession) -> Result<Session> {
        let (ip, user_agent) = validate_new_session(s)?;
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let user: Option<Option<i64>> =
            sqlx::query_scalar("SELECT disabled_at FROM users WHERE id = ?")
                .bind(s.user_id)
                .fetch_optional(&mut *tx)
                .await?;
        match user {
            None => return Err(StoreError::NotFound(format!("user {}", s.user_id))),
            Some(Some(_)) => {
                return Err(StoreError::InvalidArgument(format!(
                    "user {} is disabled",
                    s.user_id
                )));
            }
            Some(None) => {}
        }
        let sql = format!(
            "INSERT INTO sessions (user_id, secret_hash, csrf_token, created_at, expires_at, \
             last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (secret_hash) DO NOTHING RETURNING {SESSION_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(s.user_id)
            .bind(s.secret_hash.clone())
            .bind(s.csrf_token.clone())
            .bind(now)
            .bind(s.expires_at)
            .bind(now)
            .bind(ip)
            .bind(user_agent)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict("session".into()));
        };
        tx.commit().await?;
        session_from_row(&row, "")
    }

    async fn find_session(&self, secret_hash: &[u8]) -> Result<Option<(Session, User)>> {
        if !session_hash_shaped(secret_hash) {
            return Ok(None);
        }
        let now = now_ms();
        let sql = format!(
            "SELECT {}, {} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
            qualified(SESSION_COLS, "s", "s_"),
            qualified(USER_COLS, "u", "")
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(secret_hash.to_vec())
            .bind(now)
            .fetch_optional(&self.readers)
            .await?
        else {
            return Ok(None);
        };
        let mut session = session_from_row(&row, "s_")?;
        let user = user_from_row(&row)?;
        if now.saturating_sub(session.last_seen_at) >= TOUCH_MS {
            q("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?")
                .bind(now)
                .bind(session.id)
                .bind(now)
                .execute(&self.writer)
                .await?;
            session.last_seen_at = now;
        }
        Ok(Some((session, user)))
    }

    async fn delete_session(&self, secret_hash: &[u8]) -> Result<bool> {
        if !session_hash_shaped(secret_hash) {
            return Ok(false);
        }
        let r = q("DELETE FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash.to_vec())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64> {
        let r = q("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let r = q("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.writer)
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
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {ENROLL_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(t.name.clone())
            .bind(hash)
            .bind(now_ms())
            .bind(t.created_by.clone())
            .bind(t.expires_at)
            .bind(t.max_uses.map(i64::from))
            .fetch_one(&self.writer)
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
        // One statement on the single writer: the check and the increment cannot interleave
        // with another redeem.
        let sql = format!(
            "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = ? \
             WHERE secret_hash = ? AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?) \
             AND (max_uses IS NULL OR uses < max_uses) RETURNING {ENROLL_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(hash.clone())
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        if let Some(row) = row {
            return Ok(Ok(enrollment_from_row(&row)?));
        }
        let row = q("SELECT revoked_at, expires_at FROM enrollment_tokens WHERE secret_hash = ?")
            .bind(hash)
            .fetch_optional(&self.readers)
            .await?;
        Ok(Err(match row {
            None => EnrollmentRefusal::Unknown,
            Some(r) => enrollment_refusal(r.try_get("revoked_at")?, r.try_get("expires_at")?, now),
        }))
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenInfo>> {
        let sql = format!("SELECT {ENROLL_COLS} FROM enrollment_tokens ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(enrollment_from_row)
            .collect()
    }

    async fn revoke_enrollment_token(&self, id: i64) -> Result<bool> {
        let r =
            q("UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_agent(&self, a: &NewAgent) -> Result<Agent> {
        validate_agent_id(&a.id)?;
        validate_facts(&a.facts)?;
        let cert = cert_fingerprint(&a.cert_sha256)?;
        let now = now_ms();
        let sql = format!(
            "INSERT INTO agents (hostname, hostname_key, os_type, os_name, os_version, arch, \
             agent_version, ips, id, enrolled_at, enrolled_by, cert_sha256, cert_not_after, last_seen) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING RETURNING {AGENT_COLS}"
        );
        let row = bind_facts(sqlx::query(AssertSqlSafe(sql)), &a.facts)
            .bind(a.id.clone())
            .bind(now)
            .bind(a.enrolled_by.clone())
            .bind(cert)
            .bind(a.cert_not_after)
            .bind(now)
            .fetch_optional(&self.writer)
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
            "UPDATE agents SET {FACTS_SET}, cert_sha256 = ?, cert_not_after = ?, reenrolled_at = ? \
             WHERE id = ? AND revoked_at IS NULL RETURNING {AGENT_COLS}"
        );
        let row = bind_facts(sqlx::query(AssertSqlSafe(sql)), facts)
            .bind(cert)
            .bind(cert_not_after)
            .bind(now_ms())
            .bind(id.to_owned())
            .fetch_optional(&self.writer)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn get_agent(&self, id: &str) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        let sql = format!("SELECT {AGENT_COLS} FROM agents ORDER BY hostname_key, hostname, id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(agent_from_row)
            .collect()
    }

    async fn agents_with_hostname(&self, hostname: &str) -> Result<Vec<Agent>> {
        let sql = format!(
            "SELECT {AGENT_COLS} FROM agents WHERE hostname_key = ? AND revoked_at IS NULL \
             ORDER BY enrolled_at, id"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(hostname_key(hostname))
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(agent_from_row)
            .collect()
    }

    async fn record_heartbeat(&self, id: &str, hb: &AgentHeartbeat) -> Result<Option<Agent>> {
        validate_facts(&hb.facts)?;
        validate_health(&hb.health)?;
        let doc = (!hb.doc.is_null())
            .then(|| json_text(&hb.doc))
            .transpose()?;
        let health = serde_json::to_string(&hb.health).unwrap_or_else(|_| "[]".into());
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {AGENT_COLS} FROM agents WHERE id = ? AND revoked_at IS NULL");
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let before = agent_from_row(&row)?;
        let sql = format!(
            "UPDATE agents SET {FACTS_SET}, health = ?, last_heartbeat = ?, \
             last_seen = max(last_seen, ?), offline_since = NULL WHERE id = ?"
        );
        bind_facts(sqlx::query(AssertSqlSafe(sql)), &hb.facts)
            .bind(health)
            .bind(doc)
            .bind(hb.at)
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    async fn touch_agent(&self, id: &str, at: i64) -> Result<()> {
        q(
            "UPDATE agents SET last_seen = max(last_seen, ?), offline_since = NULL \
           WHERE id = ? AND revoked_at IS NULL AND (last_seen < ? OR offline_since IS NOT NULL)",
        )
        .bind(at)
        .bind(id.to_owned())
        .bind(at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: &str, actor: &str) -> Result<bool> {
        let r = q(
            "UPDATE agents SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(actor.to_owned())
        .bind(id.to_owned())
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn mark_agents_offline(&self, silent_before: i64) -> Result<Vec<Agent>> {
        // One statement on the single writer (and SQLite's file lock across processes): an
        // agent is marked, and returned, by exactly one caller.
        let sql = format!(
            "UPDATE agents SET offline_since = ? \
             WHERE revoked_at IS NULL AND offline_since IS NULL AND last_seen < ? \
             RETURNING {AGENT_COLS}"
        );
        let mut agents = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(silent_before)
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(agent_from_row)
            .collect::<Result<Vec<_>>>()?;
        sort_agents(&mut agents);
        Ok(agents)
    }

    async fn create_command(&self, c: &NewAgentCommand) -> Result<AgentCommand> {
        let args = validate_new_command(c)?;
        // The agent must exist and be unrevoked in the same statement (a revocation racing
        // this leaves no command behind).
        let sql = format!(
            "INSERT INTO agent_commands (id, agent_id, kind, args, status, requested_by, created_at) \
             SELECT ?, id, ?, ?, 'pending', ?, ? FROM agents WHERE id = ? AND revoked_at IS NULL \
             RETURNING {COMMAND_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(Uuid::now_v7().to_string())
            .bind(c.kind.clone())
            .bind(args)
            .bind(c.requested_by.clone())
            .bind(now_ms())
            .bind(c.agent_id.clone())
            .fetch_optional(&self.writer)
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
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE agent_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(agent_id.to_owned())
            .bind(i64::from(clamp_limit(limit)))
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(command_from_row)
            .collect()
    }

    async fn get_command(&self, id: Uuid) -> Result<Option<AgentCommand>> {
        let sql = format!("SELECT {COMMAND_COLS} FROM agent_commands WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    async fn count_open_commands(&self, agent_id: &str) -> Result<u64> {
        let n: i64 = q("SELECT count(*) FROM agent_commands \
                        WHERE agent_id = ? AND status IN ('pending', 'delivered')")
        .bind(agent_id.to_owned())
        .fetch_one(&self.readers)
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
        // One write transaction on the single writer (and SQLite's file lock across
        // processes): a command is handed out by exactly one caller.
        let mut tx = self.write_tx().await?;
        q(
            "UPDATE agent_commands SET status = 'expired', finished_at = ? \
           WHERE agent_id = ? AND status = 'delivered' AND delivered_at <= ? AND attempts >= ?",
        )
        .bind(now)
        .bind(agent_id.to_owned())
        .bind(due)
        .bind(max_attempts)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE agent_commands SET status = 'delivered', delivered_at = ?, attempts = attempts + 1 \
             WHERE agent_id = ? AND (status = 'pending' \
               OR (status = 'delivered' AND delivered_at <= ? AND attempts < ?)) \
             RETURNING {COMMAND_COLS}"
        );
        let mut commands = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(agent_id.to_owned())
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
        let result = validate_finish(status, result, error)?;
        let sql = format!(
            "UPDATE agent_commands SET status = ?, result = ?, error = ?, finished_at = ? \
             WHERE id = ? AND agent_id = ? AND status NOT IN ('done', 'failed') \
             RETURNING {COMMAND_COLS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(result)
            .bind(error.map(str::to_owned))
            .bind(now_ms())
            .bind(id.to_string())
            .bind(agent_id.to_owned())
            .fetch_optional(&self.writer)
            .await?;
        if let Some(row) = row {
            return Ok(CommandFinish::Recorded(command_from_row(&row)?));
        }
        // Read on the writer: what the statement above saw, not a reader's older snapshot.
        let sql =
            format!("SELECT {COMMAND_COLS} FROM agent_commands WHERE id = ? AND agent_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(agent_id.to_owned())
            .fetch_optional(&self.writer)
            .await?;
        Ok(match row {
            Some(r) => CommandFinish::AlreadyFinished(command_from_row(&r)?),
            None => CommandFinish::Unknown,
        })
    }

    async fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let details = if e.details.is_null() {
            "{}".to_owned()
        } else {
            json_text(&e.details)?
        };
        let row = q(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?) \
                     RETURNING id, at, actor, action, target, details",
        )
        .bind(now_ms())
        .bind(e.actor.clone())
        .bind(e.action.clone())
        .bind(e.target.clone())
        .bind(details)
        .fetch_one(&self.writer)
        .await?;
        audit_from_row(&row)
    }

    async fn list_audit(&self, aq: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        b.push("SELECT id, at, actor, action, target, details FROM audit_log WHERE 1 = 1");
        audit_filters(&mut b, aq);
        dynamic(b)
            .fetch_all(&self.readers)
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
                q("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received_at < ? LIMIT ?)")
                    .bind(cutoff)
                    .bind(PURGE_CHUNK)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
            report.events += n;
            if n < PURGE_CHUNK as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let n = q("DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                       WHERE status IN ('resolved', 'false_positive') AND last_seen < ? LIMIT ?)")
            .bind(cutoff)
            .bind(PURGE_CHUNK)
            .execute(&self.writer)
            .await?
            .rows_affected();
            report.alerts += n;
            if n < PURGE_CHUNK as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        if report.events + report.alerts > 0 {
            // Give freed pages back to the file system, a slice at a time.
            loop {
                let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                    .fetch_one(&self.writer)
                    .await?;
                if free == 0 {
                    break;
                }
                q("PRAGMA incremental_vacuum(4096)")
                    .execute(&self.writer)
                    .await?;
                let after: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                    .fetch_one(&self.writer)
                    .await?;
                if after >= free {
                    break;
                }
                tokio::task::yield_now().await;
            }
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
            .fetch_one(&self.readers)
            .await?;
        let mut stats = StoreStats::empty(total.max(0) as u64);
        let by_status = q("SELECT status, count(*) FROM alerts GROUP BY status")
            .fetch_all(&self.readers)
            .await?;
        let by_level =
            q("SELECT level, count(*) FROM alerts WHERE status IN ('new', 'acknowledged') GROUP BY level")
                .fetch_all(&self.readers)
                .await?;
        fill_stats(
            &mut stats,
            rows_to_counts(&by_status)?,
            rows_to_counts(&by_level)?,
        )?;
        Ok(stats)
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

fn rows_to_counts(rows: &[SqliteRow]) -> Result<Vec<(String, i64)>> {
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect()
}
