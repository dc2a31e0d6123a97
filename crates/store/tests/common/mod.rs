//! Test harness: a fresh store per test. SQLite lives in a temp dir; PostgreSQL (when
//! `DOZOR_TEST_POSTGRES_URL` is set) in a fresh schema that is dropped afterwards. The area
//! suites (`events.rs`, `search.rs`, `alerts.rs`, `access.rs`, `agents.rs`, `commands.rs`,
//! `users.rs`) declare their scenarios with [`suite!`], which runs each on both backends.

#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dozor_store::postgres::{PgConfig, PgStore};
use dozor_store::sqlite::{SqliteConfig, SqliteStore};
use dozor_store::{
    AgentFacts, Detection, EventQuery, Level, NewAgent, NewEvent, Store, event_host,
};
use serde_json::Value;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;

pub const PG_ENV: &str = "DOZOR_TEST_POSTGRES_URL";

/// Declares scenarios (`pub async fn name(s: S, raw: Raw)` in the file's `mod scenarios`) as
/// the tests `sqlite::name` and `postgres::name`; the latter print "skipped" and pass without
/// `DOZOR_TEST_POSTGRES_URL`.
///
/// `suite!(tuning = EXPR; names...)` opens the stores with a [`Tuning`] (e.g. a short search
/// timeout).
#[allow(unused_macros)]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        suite!(tuning = crate::common::Tuning::default(); $($name),*);
    };
    (tuning = $tuning:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::common::sqlite_tuned(&$tuning).await;
                    crate::common::run(h, crate::scenarios::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = crate::common::postgres_tuned(&$tuning).await else {
                        eprintln!("skipped: {} not set", crate::common::PG_ENV);
                        return;
                    };
                    crate::common::run(h, crate::scenarios::$name).await;
                }
            )*
        }
    };
}

/// The store a scenario gets.
pub type S = Arc<dyn Store>;

/// The aggregation window of the alert scenarios.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);

/// Raw database access for checks the trait cannot make (e.g. that SQL cannot alter the audit log).
#[derive(Clone, Debug)]
pub enum Raw {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

async fn sqlite_connection(path: &std::path::Path) -> Result<sqlx::SqliteConnection, String> {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn postgres_connection(url: &str, schema: &str) -> Result<sqlx::PgConnection, String> {
    let opts: sqlx::postgres::PgConnectOptions =
        url.parse().map_err(|e: sqlx::Error| e.to_string())?;
    opts.options([("search_path", schema)])
        .connect()
        .await
        .map_err(|e| e.to_string())
}

impl Raw {
    /// Executes one statement on a separate connection; `Err` carries the database message.
    pub async fn exec(&self, sql: &str) -> Result<u64, String> {
        let done = match self {
            Raw::Sqlite(path) => {
                let mut c = sqlite_connection(path).await?;
                let r = sqlx::query(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected());
                let _ = c.close().await;
                r
            }
            Raw::Postgres { url, schema } => {
                let mut c = postgres_connection(url, schema).await?;
                let r = sqlx::query(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected());
                let _ = c.close().await;
                r
            }
        };
        done.map_err(|e| e.to_string())
    }

    /// The one integer a query returns (e.g. a count), read on a separate connection.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let n = match self {
            Raw::Sqlite(path) => {
                let mut c = sqlite_connection(path).await.expect("connect");
                let n = sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut c)
                    .await;
                let _ = c.close().await;
                n
            }
            Raw::Postgres { url, schema } => {
                let mut c = postgres_connection(url, schema).await.expect("connect");
                let n = sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut c)
                    .await;
                let _ = c.close().await;
                n
            }
        };
        n.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A second store on the same database, as a restarted server opens it (what opening
    /// does — migrations, upgrade work — runs again).
    pub async fn open_again(&self) -> S {
        match self {
            Raw::Sqlite(path) => {
                let dir = path.parent().expect("data dir");
                Arc::new(
                    SqliteStore::open(&SqliteConfig::new(dir))
                        .await
                        .expect("reopen"),
                )
            }
            Raw::Postgres { url, schema } => {
                let mut config = PgConfig::new(url);
                config.schema = Some(schema.clone());
                Arc::new(PgStore::open(&config).await.expect("reopen"))
            }
        }
    }
}

pub struct Harness {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

/// Store settings a suite may change from the defaults.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Search timeout.
    pub search_timeout: Option<Duration>,
    /// Reader connections (SQLite readers; the PostgreSQL pool).
    pub readers: Option<u32>,
}

pub async fn sqlite() -> Harness {
    sqlite_tuned(&Tuning::default()).await
}

pub async fn sqlite_tuned(tuning: &Tuning) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = SqliteConfig::new(dir.path().join("data"));
    if let Some(timeout) = tuning.search_timeout {
        config.search_timeout = timeout;
    }
    if let Some(readers) = tuning.readers {
        config.readers = readers;
    }
    let store = SqliteStore::open(&config).await.expect("open sqlite store");
    Harness {
        store: Arc::new(store),
        raw: Raw::Sqlite(config.db_path()),
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Option<Harness> {
    postgres_tuned(&Tuning::default()).await
}

pub async fn postgres_tuned(tuning: &Tuning) -> Option<Harness> {
    let url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
    let schema = format!("dozor_test_{}", Uuid::new_v4().simple());
    let mut config = PgConfig::new(&url);
    config.schema = Some(schema.clone());
    config.max_connections = tuning.readers.unwrap_or(4);
    if let Some(timeout) = tuning.search_timeout {
        config.search_timeout = timeout;
    }
    let store = PgStore::open(&config).await.expect("open postgres store");
    Some(Harness {
        store: Arc::new(store),
        raw: Raw::Postgres { url, schema },
        _dir: None,
    })
}

/// Runs a test body, then closes the store and drops the Postgres schema — also when the body
/// panics (the panic is re-raised afterwards).
pub async fn run<F, Fut>(h: Harness, body: F)
where
    F: FnOnce(Arc<dyn Store>, Raw) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(body(h.store.clone(), h.raw.clone())).await;
    h.store.close().await;
    if let Raw::Postgres { url, schema } = &h.raw {
        let opts: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
        let mut c = opts.connect().await.expect("connect for cleanup");
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut c)
        .await
        .expect("drop test schema");
        let _ = c.close().await;
    }
    drop(h);
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

// ------------------------------------------------------------ builders

pub const T0: i64 = 1_700_000_000_000;
pub const MIN: i64 = 60_000;

pub fn ev(ts: i64, agent: Option<&str>, doc: Value) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        ts,
        received_at: ts + 5,
        agent_id: agent.map(str::to_owned),
        doc,
    }
}

pub fn det(rule: &str, agent: Option<&str>, event: &NewEvent) -> Detection {
    Detection {
        rule_id: rule.to_owned(),
        rule_title: format!("Rule {rule}"),
        level: Level::High,
        tags: vec!["attack.execution".into(), "attack.t1059.001".into()],
        agent_id: agent.map(str::to_owned),
        host: event_host(&event.doc).map(str::to_owned),
        event_id: event.id,
        ts: event.ts,
    }
}

pub fn det_at(rule: &str, agent: Option<&str>, ts: i64) -> Detection {
    Detection {
        rule_id: rule.to_owned(),
        rule_title: format!("Rule {rule}"),
        level: Level::Medium,
        tags: vec![],
        agent_id: agent.map(str::to_owned),
        host: None,
        event_id: Uuid::now_v7(),
        ts,
    }
}

/// The ids of the events a query finds (at most 1,000).
pub async fn ids(s: &S, q: &str) -> HashSet<Uuid> {
    let page = s
        .search_events(&EventQuery {
            query: Some(q.to_owned()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    page.events.iter().map(|e| e.id).collect()
}

pub fn facts(hostname: &str, os_type: &str) -> AgentFacts {
    AgentFacts {
        hostname: hostname.into(),
        os_type: os_type.into(),
        os_name: Some("Ubuntu".into()),
        os_version: Some("22.04".into()),
        arch: Some("x86_64".into()),
        agent_version: "0.1.0".into(),
        ips: vec!["10.0.0.5".into(), "fe80::1%eth0".into()],
    }
}

pub fn cert(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub fn new_agent(id: &str, hostname: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        facts: facts(hostname, "linux"),
        cert_sha256: cert(1),
        cert_not_after: T0 + 365 * 24 * 60 * MIN,
        enrolled_by: "token:1".into(),
    }
}

// ------------------------------------------------------------ limits

/// An open transaction on a connection of its own that keeps `events` locked (PostgreSQL)
/// until dropped; `None` on SQLite, where readers never wait for locks.
pub async fn lock_events(raw: &Raw) -> Option<sqlx::PgConnection> {
    use sqlx::Executor;
    let Raw::Postgres { url, schema } = raw else {
        return None;
    };
    let mut conn = postgres_connection(url, schema).await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    conn.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    Some(conn)
}

/// A search that scans every event (a leading wildcard).
pub fn slow_query() -> EventQuery {
    EventQuery {
        query: Some("process.command_line:*zzz*".into()),
        ..EventQuery::default()
    }
}
