//! PostgreSQL backend: `jsonb` documents, bulk inserts through `UNNEST`, several worker
//! processes may share one database (alert aggregation takes a transaction-scoped advisory lock
//! per rule and agent, so concurrent batches never open two alerts for the same repeat). The
//! store's behaviour is the shared core's (`SqlStore`); this is its PostgreSQL driver.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Postgres, Row as _};
use tracing::info;
use uuid::Uuid;

use crate::derive::derive;
use crate::error::{Result, StoreError};
use crate::query::sql::Dialect;
use crate::sql_store::{Arg, Column, Driver, On, Row, SqlStore, Stmt, Tx, migrator, rewrite};
use crate::types::{Backend, NewEvent};

const INSERT_CHUNK: usize = 1000;

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
    /// Connections kept for credential checks (tokens, sessions, users), besides the pool.
    pub auth_connections: u32,
    /// Event searches and histograms running longer are cancelled (`statement_timeout`).
    pub search_timeout: Duration,
}

impl PgConfig {
    /// Defaults for a URL.
    pub fn new(url: &str) -> Self {
        PgConfig {
            url: url.to_owned(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            auth_connections: 2,
            search_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL store.
pub type PgStore = SqlStore<PgDriver>;

/// The PostgreSQL side of [`PgStore`]: its connection pool and what PostgreSQL does its own
/// way.
#[derive(Debug, Clone)]
pub struct PgDriver {
    pool: PgPool,
    /// Credential checks' own connections.
    auth: PgPool,
    search_timeout: Duration,
}

/// Whether a schema name is a plain lower-case identifier (it is spliced into DDL).
pub fn valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
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
            .connect_with(options.clone())
            .await?;
        let auth = PgPoolOptions::new()
            .max_connections(config.auth_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(options);
        migrator([
            include_str!("../migrations/postgres/0001_init.sql"),
            include_str!("../migrations/postgres/0002_agents.sql"),
            include_str!("../migrations/postgres/0003_users.sql"),
            include_str!("../migrations/postgres/0004_agent_commands.sql"),
            include_str!("../migrations/postgres/0005_samples.sql"),
            include_str!("../migrations/postgres/0006_enrollment_replace.sql"),
            include_str!("../migrations/postgres/0007_playbooks.sql"),
            include_str!("../migrations/postgres/0008_intel.sql"),
            include_str!("../migrations/postgres/0009_vulns.sql"),
            include_str!("../migrations/postgres/0010_hosts.sql"),
            include_str!("../migrations/postgres/0011_exceptions.sql"),
            include_str!("../migrations/postgres/0012_incidents.sql"),
            include_str!("../migrations/postgres/0013_saved_searches.sql"),
            include_str!("../migrations/postgres/0014_event_lookups.sql"),
            include_str!("../migrations/postgres/0015_analyst_fields.sql"),
            include_str!("../migrations/postgres/0016_keyword_index.sql"),
        ])
        .run(&pool)
        .await?;
        index_pending_words(&pool).await?;
        info!(schema = ?config.schema, "postgres store open");
        Ok(SqlStore(PgDriver {
            pool,
            auth,
            search_timeout: config.search_timeout,
        }))
    }

    /// The connection pool (for callers that need raw access, e.g. tests).
    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }
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

/// Text as PostgreSQL can store it (see [`strip_nul`]).
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

/// The statement with `$1, $2, …` for its `?` placeholders, its arguments bound.
fn query(st: Stmt) -> Query {
    let sql = if st.native {
        st.sql
    } else {
        let mut n = 0;
        rewrite(&st.sql, |code, out| {
            for (i, part) in code.split('?').enumerate() {
                if i > 0 {
                    n += 1;
                    let _ = write!(out, "${n}");
                }
                out.push_str(part);
            }
        })
    };
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in st.args {
        q = match a {
            Arg::Int(v) => q.bind(v),
            Arg::Real(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Text(v) => q.bind(v.map(no_nul)),
            Arg::Bytes(v) => q.bind(v),
            Arg::Uuid(v) => q.bind(v),
            Arg::Json(v) => q.bind(v.map(|mut v| {
                strip_nul(&mut v);
                Json(v)
            })),
            Arg::Texts(v) => q.bind(v.into_iter().map(no_nul).collect::<Vec<_>>()),
            Arg::Uuids(v) => q.bind(v),
        };
    }
    q
}

impl Row for PgRow {
    fn get<T: Column>(&self, col: &str) -> Result<T> {
        Ok(self.try_get(col)?)
    }

    fn json(&self, col: &str) -> Result<Option<Value>> {
        let v: Option<Json<Value>> = self.try_get(col)?;
        Ok(v.map(|Json(v)| v))
    }

    fn texts(&self, col: &str) -> Result<Vec<String>> {
        Ok(self.try_get(col)?)
    }

    fn uuids(&self, col: &str) -> Result<Vec<Uuid>> {
        Ok(self.try_get(col)?)
    }
}

impl Driver for PgDriver {
    type Db = Postgres;
    const BACKEND: Backend = Backend::Postgres;
    const DIALECT: Dialect = Dialect::Postgres;
    const PURGE_CHUNK: i64 = 10_000;
    const EVENT_KEY: &'static str = "id";

    async fn begin(&self) -> Result<Tx<Self>> {
        Ok(self.pool.begin().await?)
    }

    async fn fetch(&self, on: On<'_, Tx<Self>>, st: Stmt) -> Result<Vec<PgRow>> {
        let q = query(st);
        Ok(match on {
            On::Read | On::Write => q.fetch_all(&self.pool).await?,
            On::Search => return self.search(q).await,
            On::Auth => q.fetch_all(&self.auth).await?,
            On::Tx(tx) => q.fetch_all(&mut **tx).await?,
        })
    }

    async fn execute(&self, on: On<'_, Tx<Self>>, st: Stmt) -> Result<u64> {
        let q = query(st);
        let done = match on {
            On::Read | On::Write | On::Search => q.execute(&self.pool).await?,
            On::Auth => q.execute(&self.auth).await?,
            On::Tx(tx) => q.execute(&mut **tx).await?,
        };
        Ok(done.rows_affected())
    }

    /// Transaction-scoped advisory locks, in the order given.
    async fn lock(tx: &mut Tx<Self>, keys: &[i64]) -> Result<()> {
        for k in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(k)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn insert_events(tx: &mut Tx<Self>, events: &[NewEvent]) -> Result<HashSet<Uuid>> {
        insert_events(tx, events).await
    }

    async fn after_purge(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {
        self.auth.close().await;
        self.pool.close().await;
    }
}

/// PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

impl PgDriver {
    /// Runs a search in a transaction whose `statement_timeout` is the search timeout (`SET
    /// LOCAL` ends with the transaction, so the pooled connection is unchanged). When the
    /// caller goes away mid-search (the HTTP client disconnected and its handler was
    /// dropped), the server is told to cancel it instead of finishing a query nobody reads.
    async fn search(&self, q: Query) -> Result<Vec<PgRow>> {
        let mut tx = self.pool.begin().await?;
        let millis = self.search_timeout.as_millis().clamp(1, i32::MAX as u128);
        let tag = format!("dozor search {}", Uuid::new_v4().simple());
        let pid: i32 = sqlx::query_scalar(
            "SELECT pg_backend_pid() FROM (SELECT set_config('statement_timeout', $1, true), \
             set_config('application_name', $2, true)) AS settings",
        )
        .bind(millis.to_string())
        .bind(&tag)
        .fetch_one(&mut *tx)
        .await?;
        let mut running = CancelOnDrop {
            pool: self.auth.clone(),
            pid,
            tag: Some(tag),
        };
        let rows = q.fetch_all(&mut *tx).await;
        running.tag = None;
        let rows = rows.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                StoreError::SearchTimeout(self.search_timeout)
            }
            _ => StoreError::from(e),
        })?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// A search in progress on backend `pid`: dropped before it finished, it asks the server to
/// cancel the statement — only while that backend still runs this search (its transaction's
/// `application_name` is the unique tag), so a connection already back in the pool and
/// running someone else's query is never hit.
struct CancelOnDrop {
    pool: PgPool,
    pid: i32,
    tag: Option<String>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let (Some(tag), Ok(runtime)) = (self.tag.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (pool, pid) = (self.pool.clone(), self.pid);
        runtime.spawn(async move {
            let cancelled = sqlx::query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
                 WHERE pid = $1 AND application_name = $2 AND state = 'active'",
            )
            .bind(pid)
            .bind(&tag)
            .execute(&pool)
            .await;
            if let Err(err) = cancelled {
                tracing::warn!(%err, pid, "could not cancel an abandoned search");
            }
        });
    }
}

/// Events per transaction when indexing the words of events stored before the keyword index.
const WORDS_BATCH: i64 = 2000;

/// Indexes the words of events stored before schema v16 (or copied in by a tool), walking
/// them in id order a batch per transaction; the marker row goes when none is left, so a
/// crash half-way resumes (rows already done are skipped by `words IS NULL`).
async fn index_pending_words(pool: &PgPool) -> Result<()> {
    let pending: Option<bool> = sqlx::query_scalar("SELECT pending FROM event_words_pending")
        .fetch_optional(pool)
        .await?;
    if pending.is_none() {
        return Ok(());
    }
    info!("indexing the words of stored events (once, after an upgrade)");
    let started = std::time::Instant::now();
    let mut after = Uuid::nil();
    let mut done = 0u64;
    loop {
        let rows: Vec<(Uuid, sqlx::types::Json<Value>)> = sqlx::query_as(
            "SELECT id, doc FROM events WHERE id > $1 AND words IS NULL ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(WORDS_BATCH)
        .fetch_all(pool)
        .await?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = *last;
        let (ids, words): (Vec<Uuid>, Vec<String>) = rows
            .iter()
            .map(|(id, doc)| (*id, crate::words::document_words(&doc.0)))
            .unzip();
        sqlx::query(
            "UPDATE events SET words = array_to_tsvector(string_to_array(u.words, ' ')) \
             FROM UNNEST($1::uuid[], $2::text[]) AS u(id, words) WHERE events.id = u.id",
        )
        .bind(ids)
        .bind(words)
        .execute(pool)
        .await?;
        done += rows.len() as u64;
        if done % 200_000 < WORDS_BATCH as u64 {
            info!(events = done, "indexing the words of stored events");
        }
    }
    sqlx::query("DELETE FROM event_words_pending")
        .execute(pool)
        .await?;
    info!(
        events = done,
        seconds = started.elapsed().as_secs_f64(),
        "indexed the words of stored events"
    );
    Ok(())
}

async fn insert_events(conn: &mut PgConnection, events: &[NewEvent]) -> Result<HashSet<Uuid>> {
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
        let mut hosts: Vec<Option<String>> = Vec::with_capacity(n);
        let mut entities: Vec<Option<String>> = Vec::with_capacity(n);
        let mut parents: Vec<Option<String>> = Vec::with_capacity(n);
        let mut users: Vec<Option<String>> = Vec::with_capacity(n);
        let mut process_names: Vec<Option<String>> = Vec::with_capacity(n);
        let mut source_ips: Vec<Option<String>> = Vec::with_capacity(n);
        let mut destination_ips: Vec<Option<String>> = Vec::with_capacity(n);
        let mut docs: Vec<String> = Vec::with_capacity(n);
        let mut words: Vec<String> = Vec::with_capacity(n);
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
            agents.push(e.agent_id.clone().map(no_nul));
            kinds.push(d.kind);
            categories.push(
                (!d.categories.is_empty())
                    .then(|| serde_json::to_string(&d.categories).unwrap_or_default()),
            );
            actions.push(d.action);
            codes.push(d.code);
            hosts.push(d.host_name);
            entities.push(d.entity_id);
            parents.push(d.parent_entity_id);
            users.push(d.user_name);
            process_names.push(d.process_name);
            source_ips.push(d.source_ip);
            destination_ips.push(d.destination_ip);
            docs.push(text);
            words.push(crate::words::document_words(&e.doc));
        }
        let rows = sqlx::query(
            "INSERT INTO events (id, ts, received_at, agent_id, kind, category, action, code, \
               host_name, entity_id, parent_entity_id, user_name, process_name, source_ip, \
               destination_ip, doc, words) \
             SELECT u.id, u.ts, u.received_at, u.agent_id, u.kind, \
               CASE WHEN u.category IS NULL THEN NULL \
                 ELSE ARRAY(SELECT jsonb_array_elements_text(u.category::jsonb)) END, \
               u.action, u.code, u.host_name, u.entity_id, u.parent_entity_id, u.user_name, \
               u.process_name, u.source_ip, u.destination_ip, u.doc::jsonb, \
               array_to_tsvector(string_to_array(u.words, ' ')) \
             FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
               $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]) \
               AS u(id, ts, received_at, agent_id, kind, category, action, code, host_name, \
                 entity_id, parent_entity_id, user_name, process_name, source_ip, destination_ip, \
                 doc, words) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(ids)
        .bind(ts)
        .bind(received)
        .bind(agents)
        .bind(kinds)
        .bind(categories)
        .bind(actions)
        .bind(codes)
        .bind(hosts)
        .bind(entities)
        .bind(parents)
        .bind(users)
        .bind(process_names)
        .bind(source_ips)
        .bind(destination_ips)
        .bind(docs)
        .bind(words)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            inserted.insert(row.try_get::<Uuid, _>(0)?);
        }
    }
    Ok(inserted)
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
        assert_eq!(no_nul("a\0".into()), "a\u{FFFD}");
    }
}
