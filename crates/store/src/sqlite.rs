//! Embedded SQLite backend: one database file in a data directory, WAL, `synchronous=NORMAL`,
//! a single writer connection (so writers queue in the process instead of failing with
//! `SQLITE_BUSY`) and a pool of `query_only` reader connections. The store's behaviour is the
//! shared core's (`SqlStore`); this is its SQLite driver.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
    SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _, Sqlite};
use tracing::info;
use uuid::Uuid;

use crate::common::corrupt;
use crate::derive::derive;
use crate::error::{Result, StoreError};
use crate::query::sql::Dialect;
use crate::sql_store::{Arg, Column, Driver, On, Row, SqlStore, Stmt, Tx, migrator, rewrite};
use crate::types::{Backend, NewEvent};

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "dozor.db";
const INSERT_CHUNK: usize = 100;

/// SQLite settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Data directory (created if missing); the database is `DIR/dozor.db`.
    pub data_dir: PathBuf,
    /// Reader connections.
    pub readers: u32,
    /// How long a connection waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// The writer's page cache, MiB: batches of events and a large import's pages sit here
    /// until they commit (a bigger transaction spills to the WAL, it does not fail).
    pub cache_mib: u32,
    /// Each reader's page cache, MiB. Readers re-read hot pages from the operating system's
    /// file cache cheaply, so their own caches stay small: every connection's cache is heap
    /// the process keeps (7 connections × 32 MiB was up to 224 MiB of RSS). The credential
    /// readers keep 1 MiB.
    pub reader_cache_mib: u32,
    /// Reader connections kept for credential checks (tokens, sessions, users).
    pub auth_readers: u32,
    /// Event searches and histograms running longer are cancelled.
    pub search_timeout: Duration,
}

impl SqliteConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            data_dir: data_dir.into(),
            readers: 4,
            busy_timeout: Duration::from_secs(10),
            cache_mib: 16,
            reader_cache_mib: 8,
            auth_readers: 2,
            search_timeout: Duration::from_secs(30),
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }
}

/// `PRAGMA cache_size` for a cache of `mib` MiB (a negative size counts KiB).
fn cache_pragma(mib: u32) -> String {
    format!("-{}", u64::from(mib.max(1)) * 1024)
}

/// The SQLite store.
pub type SqliteStore = SqlStore<SqliteDriver>;

/// The SQLite side of [`SqliteStore`]: its connections and what SQLite does its own way.
#[derive(Debug, Clone)]
pub struct SqliteDriver {
    writer: SqlitePool,
    readers: SqlitePool,
    /// Credential checks' own readers.
    auth: SqlitePool,
    search_timeout: Duration,
}

impl SqliteStore {
    /// Opens (creating the directory and database, applying migrations) a store.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::Io {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let path = config.db_path();
        make_private(config)?;
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", cache_pragma(config.cache_mib))
            .with_regexp();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(120))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().optimize_on_close(true, 400))
            .await?;
        migrator([
            include_str!("../migrations/sqlite/0001_init.sql"),
            include_str!("../migrations/sqlite/0002_agents.sql"),
            include_str!("../migrations/sqlite/0003_users.sql"),
            include_str!("../migrations/sqlite/0004_agent_commands.sql"),
            include_str!("../migrations/sqlite/0005_samples.sql"),
            include_str!("../migrations/sqlite/0006_enrollment_replace.sql"),
            include_str!("../migrations/sqlite/0007_playbooks.sql"),
            include_str!("../migrations/sqlite/0008_intel.sql"),
            include_str!("../migrations/sqlite/0009_vulns.sql"),
            include_str!("../migrations/sqlite/0010_hosts.sql"),
            include_str!("../migrations/sqlite/0011_exceptions.sql"),
            include_str!("../migrations/sqlite/0012_incidents.sql"),
            include_str!("../migrations/sqlite/0013_saved_searches.sql"),
            include_str!("../migrations/sqlite/0014_event_lookups.sql"),
            include_str!("../migrations/sqlite/0015_analyst_fields.sql"),
            include_str!("../migrations/sqlite/0016_keyword_index.sql"),
        ])
        .run(&writer)
        .await?;
        set_event_index_stats(&writer).await?;
        index_pending_words(&writer).await?;
        let reader = base
            .create_if_missing(false)
            .pragma("query_only", "ON")
            .pragma("cache_size", cache_pragma(config.reader_cache_mib));
        let readers = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .acquire_timeout(Duration::from_secs(60))
            // A search dropped half-way (its client went away) returns its connection with
            // the search's progress handler still on it: once that deadline had passed, every
            // later read on the connection was interrupted. Each connection comes back clean.
            .after_release(|conn, _| {
                Box::pin(async move {
                    conn.lock_handle().await?.remove_progress_handler();
                    Ok(true)
                })
            })
            .connect_with(reader.clone())
            .await?;
        let auth = SqlitePoolOptions::new()
            .max_connections(config.auth_readers.max(1))
            .acquire_timeout(Duration::from_secs(30))
            // Credential lookups touch a few index pages.
            .connect_with(reader.pragma("cache_size", cache_pragma(1)))
            .await?;
        info!(path = %path.display(), "sqlite store open");
        Ok(SqlStore(SqliteDriver {
            writer,
            readers,
            auth,
            search_timeout: config.search_timeout,
        }))
    }
}

/// The files SQLite keeps beside the database.
const DB_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes the data directory 0700 and the database files 0600, on every open (an existing
/// directory or file may have been created with a looser umask). The database file is
/// created here, 0600, because SQLite gives its `-wal` and `-shm` files the database's mode.
#[cfg(unix)]
fn make_private(config: &SqliteConfig) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| StoreError::Io { path, source }
    };
    let private = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
    };
    private(&config.data_dir, 0o700)?;
    let db = config.db_path();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&db)
        .map_err(io(&db))?;
    private(&db, 0o600)?;
    for suffix in DB_SIDE_FILES {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        let side = PathBuf::from(name);
        if side.exists() {
            private(&side, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_config: &SqliteConfig) -> Result<()> {
    Ok(())
}

/// How SQLite spells what the portable statements say: it has no row locks (its single
/// writer serializes every write anyway), and PostgreSQL's `GREATEST`/`LEAST` are its scalar
/// `max`/`min`.
const SPELLING: [(&str, &str); 5] = [
    (" FOR UPDATE SKIP LOCKED", ""),
    (" FOR UPDATE", ""),
    (" FOR SHARE", ""),
    ("GREATEST(", "max("),
    ("LEAST(", "min("),
];

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// The statement in SQLite's spelling, its arguments bound.
fn query(st: Stmt) -> Result<Query> {
    let sql = if st.native || !SPELLING.iter().any(|(from, _)| st.sql.contains(from)) {
        st.sql
    } else {
        rewrite(&st.sql, |code, out| {
            let mut code = code.to_owned();
            for (from, to) in SPELLING {
                code = code.replace(from, to);
            }
            out.push_str(&code);
        })
    };
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in st.args {
        q = match a {
            Arg::Int(v) => q.bind(v),
            Arg::Real(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::Uuid(v) => q.bind(v),
            Arg::Json(v) => q.bind(v.map(|v| json_text(&v)).transpose()?),
            Arg::Texts(v) => q.bind(json_text(&v)?),
            Arg::Uuids(v) => q.bind(json_text(&v)?),
        };
    }
    Ok(q)
}

/// JSON, lists included, is stored as text.
fn json_text(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::InvalidArgument(format!("JSON: {e}")))
}

impl Row for SqliteRow {
    fn get<T: Column>(&self, col: &str) -> Result<T> {
        Ok(self.try_get(col)?)
    }

    fn json(&self, col: &str) -> Result<Option<Value>> {
        let text: Option<String> = self.try_get(col)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(col, e)))
            .transpose()
    }

    fn texts(&self, col: &str) -> Result<Vec<String>> {
        serde_json::from_str(&self.try_get::<String, _>(col)?).map_err(|e| corrupt(col, e))
    }

    fn uuids(&self, col: &str) -> Result<Vec<Uuid>> {
        serde_json::from_str(&self.try_get::<String, _>(col)?).map_err(|e| corrupt(col, e))
    }
}

impl Driver for SqliteDriver {
    type Db = Sqlite;
    const BACKEND: Backend = Backend::Sqlite;
    const DIALECT: Dialect = Dialect::Sqlite;
    const PURGE_CHUNK: i64 = 5_000;
    /// The rowid: deleting by it is cheaper than by the blob id.
    const EVENT_KEY: &'static str = "seq";

    /// `BEGIN IMMEDIATE` takes the write lock up front, so a concurrent writer in another
    /// process (e.g. a CLI admin command) makes us wait (`busy_timeout`) instead of failing
    /// half-way with `SQLITE_BUSY`; the lock also serializes every write transaction.
    async fn begin(&self) -> Result<Tx<Self>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn fetch(&self, on: On<'_, Tx<Self>>, st: Stmt) -> Result<Vec<SqliteRow>> {
        let q = query(st)?;
        Ok(match on {
            On::Read => q.fetch_all(&self.readers).await?,
            On::Search => return self.search(q).await,
            On::Auth => q.fetch_all(&self.auth).await?,
            On::Write => q.fetch_all(&self.writer).await?,
            On::Tx(tx) => q.fetch_all(&mut **tx).await?,
        })
    }

    async fn execute(&self, on: On<'_, Tx<Self>>, st: Stmt) -> Result<u64> {
        let q = query(st)?;
        let done = match on {
            On::Read | On::Search => q.execute(&self.readers).await?,
            // The credential readers are query_only: bookkeeping writes take the writer.
            On::Auth => q.execute(&self.writer).await?,
            On::Write => q.execute(&self.writer).await?,
            On::Tx(tx) => q.execute(&mut **tx).await?,
        };
        Ok(done.rows_affected())
    }

    /// Nothing to take: the write transaction holds the database's write lock already.
    async fn lock(_tx: &mut Tx<Self>, _keys: &[i64]) -> Result<()> {
        Ok(())
    }

    async fn insert_events(tx: &mut Tx<Self>, events: &[NewEvent]) -> Result<HashSet<Uuid>> {
        insert_events(tx, events).await
    }

    /// Gives freed pages back to the file system, a slice at a time.
    async fn after_purge(&self) -> Result<()> {
        // Hours whose whole range of `seq` lies before the oldest event left hold no events.
        sqlx::query(
            "DELETE FROM event_hours WHERE last_seq < \
             COALESCE((SELECT min(seq) FROM events), 9223372036854775807)",
        )
        .execute(&self.writer)
        .await?;
        let free = || sqlx::query_scalar::<_, i64>("PRAGMA freelist_count").fetch_one(&self.writer);
        loop {
            let before = free().await?;
            if before == 0 {
                break;
            }
            sqlx::query("PRAGMA incremental_vacuum(4096)")
                .execute(&self.writer)
                .await?;
            if free().await? >= before {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    async fn close(&self) {
        self.auth.close().await;
        self.readers.close().await;
        self.writer.close().await;
    }
}

/// SQLite virtual machine steps between two looks at a search's deadline.
const PROGRESS_STEPS: i32 = 10_000;

impl SqliteDriver {
    /// Runs a search on a reader with a deadline: SQLite has no statement timeout, so a
    /// progress handler interrupts the statement once `search_timeout` has passed, or as soon
    /// as the search is dropped (the HTTP client went away): SQLite's thread would otherwise
    /// go on to the deadline for nobody, holding a reader.
    async fn search(&self, q: Query) -> Result<Vec<SqliteRow>> {
        let mut conn = self.readers.acquire().await?;
        let deadline = std::time::Instant::now() + self.search_timeout;
        let dropped = CancelOnDrop::default();
        let cancelled = dropped.0.clone();
        conn.lock_handle()
            .await?
            .set_progress_handler(PROGRESS_STEPS, move || {
                !cancelled.load(std::sync::atomic::Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
            });
        let result = q.fetch_all(&mut *conn).await;
        conn.lock_handle().await?.remove_progress_handler();
        result.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("9") => {
                StoreError::SearchTimeout(self.search_timeout)
            }
            _ => StoreError::from(e),
        })
    }
}

/// Rows per value of each events index's leading column, as a share of the table: `N / d`
/// for a `d` here, a number of rows for `Rows(r)`. The event indexes of schema v15.
enum PerValue {
    Share(i64),
    Rows(i64),
}

const EVENT_INDEX_STATS: [(&str, usize, PerValue); 13] = [
    ("sqlite_autoindex_events_1", 1, PerValue::Rows(1)),
    ("events_ts", 2, PerValue::Rows(2)),
    ("events_received", 1, PerValue::Rows(2)),
    ("events_agent_ts", 3, PerValue::Share(300)),
    ("events_host_ts", 3, PerValue::Share(300)),
    ("events_category_ts", 2, PerValue::Share(4)),
    ("events_code_ts", 2, PerValue::Share(20)),
    ("events_entity_ts", 3, PerValue::Rows(10)),
    ("events_parent_entity_ts", 3, PerValue::Rows(20)),
    ("events_user_name_ts", 3, PerValue::Share(300)),
    ("events_process_name_ts", 3, PerValue::Share(60)),
    ("events_source_ip_ts", 3, PerValue::Share(1000)),
    ("events_destination_ip_ts", 3, PerValue::Share(1000)),
];

/// SQLite's planner picks one index per table from `sqlite_stat1`. `PRAGMA optimize` (run
/// when the writer closes) samples only the first 400 entries of each index, which in a big
/// events table share one key: every index then looks alike ("401 rows per value"), and
/// `process.name:x AND host.name:y` could walk thousands of a process name's rows instead
/// of a host's hundreds (114 ms instead of 3 at 1M events). The events indexes get fixed
/// statistics instead, scaled to the table's size, with the selectivity typical fleets show
/// (an address or an entity id picks out fewer rows than a host or a user, which pick fewer
/// than a process name, an event code or a category). Written at every open; cheap.
async fn set_event_index_stats(writer: &SqlitePool) -> Result<()> {
    let mut conn = writer.acquire().await?;
    // `ANALYZE` of a tiny table creates `sqlite_stat1` when it does not exist yet.
    sqlx::query("ANALYZE rule_state")
        .execute(&mut *conn)
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT COALESCE(max(seq) - min(seq) + 1, 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let rows = rows.max(1);
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("DELETE FROM sqlite_stat1 WHERE tbl = 'events'")
        .execute(&mut *tx)
        .await?;
    for (index, columns, per_value) in EVENT_INDEX_STATS {
        let first = match per_value {
            PerValue::Share(d) => rows / d,
            PerValue::Rows(r) => r,
        }
        .clamp(1, rows);
        // The leading column's rows per value, then (ts, id) that narrow it to ~1.
        let mut stat = format!("{rows} {first}");
        for later in 1..columns {
            stat.push_str(if later + 1 == columns { " 1" } else { " 2" });
        }
        sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events', ?, ?)")
            .bind(index)
            .bind(stat)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Loads the statistics into this connection's planner; others read them when they open.
    sqlx::query("ANALYZE sqlite_schema")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Events per transaction when indexing the words of events stored before the keyword index.
const WORDS_BATCH: i64 = 2000;

/// Indexes the words of the events listed in `event_words_pending` (those stored before
/// schema v16, or copied in by a tool), a batch per transaction with the progress in the same
/// transaction, so a crash half-way resumes where it stopped.
async fn index_pending_words(writer: &SqlitePool) -> Result<()> {
    let mut conn = writer.acquire().await?;
    let started = std::time::Instant::now();
    let mut done = 0u64;
    loop {
        let Some((first, last)) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT first_seq, last_seq FROM event_words_pending ORDER BY first_seq LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?
        else {
            break;
        };
        if done == 0 {
            info!(
                first,
                last, "indexing the words of stored events (once, after an upgrade)"
            );
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, doc FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
        )
        .bind(first)
        .bind(last)
        .bind(WORDS_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut words = Vec::with_capacity(rows.len());
        for (seq, doc) in &rows {
            // A document that doesn't parse any more can't be searched by its words; it
            // stays stored and reachable by its fields.
            let Ok(doc) = serde_json::from_str::<Value>(doc) else {
                tracing::warn!(seq, "stored event is not JSON; its words are not indexed");
                continue;
            };
            words.push((*seq, crate::words::document_words(&doc)));
        }
        insert_words(&mut tx, &words).await?;
        let next = match rows.last() {
            Some((seq, _)) if (rows.len() as i64) == WORDS_BATCH => Some(seq + 1),
            _ => None,
        };
        match next {
            Some(next) if next <= last => {
                sqlx::query("UPDATE event_words_pending SET first_seq = ? WHERE first_seq = ?")
                    .bind(next)
                    .bind(first)
                    .execute(&mut *tx)
                    .await?
            }
            _ => {
                sqlx::query("DELETE FROM event_words_pending WHERE first_seq = ?")
                    .bind(first)
                    .execute(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        done += rows.len() as u64;
        if done % 200_000 < WORDS_BATCH as u64 {
            info!(events = done, "indexing the words of stored events");
        }
    }
    if done > 0 {
        info!(
            events = done,
            seconds = started.elapsed().as_secs_f64(),
            "indexed the words of stored events"
        );
    }
    Ok(())
}

/// Adds events' words to the keyword index (`seq`, words separated by spaces); events without
/// words are left out.
async fn insert_words(conn: &mut SqliteConnection, words: &[(i64, String)]) -> Result<()> {
    for chunk in words.chunks(INSERT_CHUNK * 4) {
        let chunk: Vec<&(i64, String)> = chunk.iter().filter(|(_, w)| !w.is_empty()).collect();
        if chunk.is_empty() {
            continue;
        }
        let mut sql = String::from("INSERT INTO event_words (rowid, words) VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (seq, w) in chunk {
            query = query.bind(*seq).bind(w.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Raises its flag when dropped: a search's progress handler watches it.
#[derive(Default)]
struct CancelOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn insert_events(conn: &mut SqliteConnection, events: &[NewEvent]) -> Result<HashSet<Uuid>> {
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
            "INSERT INTO events (id, ts, received_at, agent_id, kind, category, action, code, \
             host_name, entity_id, parent_entity_id, user_name, process_name, source_ip, \
             destination_ip, doc) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
                .bind(d.host_name)
                .bind(d.entity_id)
                .bind(d.parent_entity_id)
                .bind(d.user_name)
                .bind(d.process_name)
                .bind(d.source_ip)
                .bind(d.destination_ip)
                .bind(json_text(&e.doc)?);
        }
        query.execute(&mut *conn).await?;
        // The first occurrence of an id in the batch is the one stored.
        let mut fresh = Vec::new();
        for e in chunk {
            if !known.contains(&e.id) && known.insert(e.id) {
                inserted.insert(e.id);
                let words = crate::words::document_words(&e.doc);
                if !words.is_empty() {
                    fresh.push((e.id, words));
                }
            }
        }
        index_new_words(conn, &fresh).await?;
    }
    Ok(inserted)
}

/// Adds the words of events just stored, finding each one's `seq` by its id (a lookup per
/// row in the id index; a join let the planner scan `events` when its statistics still
/// described the empty table of the store's first open).
async fn index_new_words(conn: &mut SqliteConnection, words: &[(Uuid, String)]) -> Result<()> {
    if words.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("INSERT INTO event_words (rowid, words) VALUES ");
    for i in 0..words.len() {
        sql.push_str(if i == 0 { "" } else { ", " });
        sql.push_str("((SELECT seq FROM events WHERE id = ?), ?)");
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (id, w) in words {
        query = query.bind(*id).bind(w.as_str());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A statement whose run time is chosen by its bound limit, whatever the data.
    const COUNT_TO: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) AS n FROM c";

    async fn count_to(readers: &SqlitePool, n: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(COUNT_TO)
            .bind(n)
            .fetch_one(readers)
            .await?)
    }

    #[tokio::test]
    async fn every_events_index_has_fixed_planner_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteConfig::new(dir.path());
        let store = SqliteStore::open(&config).await.unwrap();
        let events: Vec<NewEvent> = (0..3000)
            .map(|i| NewEvent {
                id: Uuid::now_v7(),
                ts: 1_700_000_000_000 + i,
                received_at: 1_700_000_000_000 + i,
                agent_id: Some(format!("agent-{}", i % 30)),
                doc: serde_json::json!({"host": {"name": format!("ws-{}", i % 30)},
                                        "process": {"name": format!("p{}.exe", i % 3)}}),
            })
            .collect();
        crate::Store::insert_events(&store, &events).await.unwrap();
        crate::Store::close(&store).await;
        // Statistics are written when a store opens, scaled to the events it holds.
        let store = SqliteStore::open(&config).await.unwrap();
        let readers = &store.0.readers;
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' ORDER BY name",
        )
        .fetch_all(readers)
        .await
        .unwrap();
        let stats: Vec<(String, String)> =
            sqlx::query_as("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'events' ORDER BY idx")
                .fetch_all(readers)
                .await
                .unwrap();
        assert_eq!(
            stats.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
            indexes,
            "a new events index needs its line in EVENT_INDEX_STATS"
        );
        let stat = |name: &str| stats.iter().find(|(i, _)| i == name).unwrap().1.clone();
        assert_eq!(stat("events_host_ts"), "3000 10 2 1");
        assert_eq!(stat("events_process_name_ts"), "3000 50 2 1");
        // A host and a process name: the host's index, the fewer rows per value.
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE e.ts >= ? \
             AND ((e.process_name = ?) AND (e.host_name = ?)) ORDER BY e.ts DESC, e.id DESC LIMIT 101",
        )
        .bind(0_i64)
        .bind("p1.exe")
        .bind("ws-1")
        .fetch_all(readers)
        .await
        .unwrap();
        assert!(
            plan.iter().any(|(_, _, _, d)| d.contains("events_host_ts")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn a_search_dropped_half_way_stops_at_once_and_leaves_its_reader_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SqliteConfig::new(dir.path());
        config.readers = 1;
        config.search_timeout = Duration::from_millis(800);
        let store = SqliteStore::open(&config).await.unwrap();
        let driver = &store.0;

        // A search that would run to its deadline, dropped as a gone client's request is.
        let search = driver.search(sqlx::query(COUNT_TO).bind(i64::MAX));
        assert!(
            tokio::time::timeout(Duration::from_millis(150), search)
                .await
                .is_err()
        );
        // The one reader is free as soon as the dropped statement notices, not at the deadline.
        let started = Instant::now();
        assert_eq!(count_to(&driver.readers, 100_000).await.unwrap(), 100_000);
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");

        // Past the dropped search's deadline, long reads on that connection still run.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(count_to(&driver.readers, 100_000).await.unwrap(), 100_000);
        // And a search still has its own deadline.
        let search = driver.search(sqlx::query(COUNT_TO).bind(i64::MAX)).await;
        assert!(
            matches!(search, Err(StoreError::SearchTimeout(_))),
            "{search:?}"
        );
    }
}
