//! The one implementation of [`Store`](crate::Store): [`SqlStore`] over a [`Driver`].
//!
//! Every store method is written once, in `store.rs`: its statements in PostgreSQL's spelling
//! with `?` placeholders ([`sql!`](stmt::sql)), its rows read through [`Row`]. A driver
//! ([`crate::sqlite::SqliteDriver`], [`crate::postgres::PgDriver`]) supplies only what really
//! differs:
//!
//! * connections and transactions (SQLite: one writer, `BEGIN IMMEDIATE`, a reader pool);
//! * the dialect: placeholders (`$n`), row locks and `GREATEST`/`LEAST` (SQLite drops the
//!   locks — its writer is serialized anyway — and spells them `max`/`min`);
//! * column types: JSON, UUIDs and lists ([`Arg`], [`Row`]), and NUL in PostgreSQL text;
//! * the bulk event insert of the ingest path, advisory locks, retention details, migrations.

use std::collections::HashSet;
use std::fmt::Debug;

use sha2::{Digest, Sha256};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Database, SqlSafeStr};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::query::sql::Dialect;
use crate::types::{Backend, NewEvent};

mod exceptions;
mod incidents;
mod intel;
mod playbooks;
mod row;
mod saved_searches;
mod stmt;
mod store;
mod vulns;

pub use playbooks::{MAX_PLAYBOOK_BYTES, MAX_PLAYBOOK_NAME, check_playbook_name};

pub(crate) use intel::contains_pattern;
pub use row::{Column, Row};
pub(crate) use stmt::sql;
pub use stmt::{Arg, Stmt, json, rewrite};

/// A store over a driver: [`crate::sqlite::SqliteStore`] or [`crate::postgres::PgStore`].
#[derive(Debug, Clone)]
pub struct SqlStore<D>(pub(crate) D);

/// A write transaction of a driver (rolled back when dropped uncommitted).
pub type Tx<D> = sqlx::Transaction<'static, <D as Driver>::Db>;
/// A result row of a driver.
pub type DbRow<D> = <<D as Driver>::Db as Database>::Row;

/// Where a statement runs.
pub enum On<'a, T> {
    /// A connection for reads (SQLite: the `query_only` reader pool).
    Read,
    /// A read that may be slow (event search, histogram): on the readers, cut off after the
    /// configured search timeout ([`crate::StoreError::SearchTimeout`]).
    Search,
    /// A credential check (token, session, user) and its bookkeeping write (last used): on
    /// a small pool of its own, so slow searches holding every reader can't stall sign-ins
    /// and API authentication (SQLite: writes go to the single writer, as all writes do).
    Auth,
    /// A connection for writes outside a transaction (SQLite: the single writer).
    Write,
    /// An open write transaction.
    Tx(&'a mut T),
}

/// What one database does its own way; the rest of the store is [`SqlStore`].
pub trait Driver: Clone + Debug + Send + Sync + 'static {
    /// The sqlx database; its rows are read through [`Row`].
    type Db: Database<Row: Row>;
    /// Which backend this is.
    const BACKEND: Backend;
    /// The dialect [`SqlBuilder`](crate::query::sql::SqlBuilder)s are built in.
    const DIALECT: Dialect;
    /// Rows per retention `DELETE` (each its own short transaction).
    const PURGE_CHUNK: i64;
    /// The events' row key for chunked deletes.
    const EVENT_KEY: &'static str;

    /// Starts a write transaction.
    fn begin(&self) -> impl Future<Output = Result<Tx<Self>>> + Send;
    /// Runs a statement; its rows.
    fn fetch(
        &self,
        on: On<'_, Tx<Self>>,
        stmt: Stmt,
    ) -> impl Future<Output = Result<Vec<DbRow<Self>>>> + Send;
    /// Runs a statement; how many rows it changed.
    fn execute(&self, on: On<'_, Tx<Self>>, stmt: Stmt)
    -> impl Future<Output = Result<u64>> + Send;
    /// Holds these keys until the transaction ends: transactions taking the same key run one
    /// after another.
    fn lock(tx: &mut Tx<Self>, keys: &[i64]) -> impl Future<Output = Result<()>> + Send;
    /// Inserts events idempotently by id; the ids this call inserted (the ingest hot path).
    fn insert_events(
        tx: &mut Tx<Self>,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<HashSet<Uuid>>> + Send;
    /// After retention deleted something.
    fn after_purge(&self) -> impl Future<Output = Result<()>> + Send;
    /// Closes the connections.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A row → value mapping (see `row.rs`).
type Map<R, T> = fn(&R) -> Result<T>;

impl<D: Driver> SqlStore<D> {
    async fn all(&self, on: On<'_, Tx<D>>, st: Stmt) -> Result<Vec<DbRow<D>>> {
        self.0.fetch(on, st).await
    }

    async fn first(&self, on: On<'_, Tx<D>>, st: Stmt) -> Result<Option<DbRow<D>>> {
        Ok(self.0.fetch(on, st).await?.into_iter().next())
    }

    async fn exec(&self, on: On<'_, Tx<D>>, st: Stmt) -> Result<u64> {
        self.0.execute(on, st).await
    }

    /// Every row, mapped.
    async fn list<T>(&self, on: On<'_, Tx<D>>, st: Stmt, f: Map<DbRow<D>, T>) -> Result<Vec<T>> {
        self.all(on, st).await?.iter().map(f).collect()
    }

    /// The first row, mapped.
    async fn find<T>(&self, on: On<'_, Tx<D>>, st: Stmt, f: Map<DbRow<D>, T>) -> Result<Option<T>> {
        self.first(on, st).await?.as_ref().map(f).transpose()
    }

    /// The row a statement must return, mapped.
    async fn one<T>(&self, on: On<'_, Tx<D>>, st: Stmt, f: Map<DbRow<D>, T>) -> Result<T> {
        let found = self.find(on, st, f).await?;
        found.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// The `n` of a `SELECT count(*) AS n …`.
    async fn count(&self, on: On<'_, Tx<D>>, st: Stmt) -> Result<u64> {
        let n: i64 = self.one(on, st, |r| r.get("n")).await?;
        Ok(n.max(0) as u64)
    }
}

/// How many migrations each backend has.
pub(crate) const MIGRATIONS: usize = 16;

/// The embedded migrations of a driver (the files of `migrations/<backend>/`, in order).
pub(crate) fn migrator(files: [&'static str; MIGRATIONS]) -> Migrator {
    // As many names as files: a zip of unequal lengths would drop a migration silently.
    let names: [&str; MIGRATIONS] = [
        "init",
        "agents",
        "users",
        "agent_commands",
        "samples",
        "enrollment_replace",
        "playbooks",
        "intel",
        "vulns",
        "hosts",
        "exceptions",
        "incidents",
        "saved_searches",
        "event_lookups",
        "analyst_fields",
        "keyword_index",
    ];
    Migrator::with_migrations(
        (1..)
            .zip(names.into_iter().zip(files))
            .map(|(version, (name, sql))| {
                let sql = AssertSqlSafe(sql).into_sql_str();
                Migration::new(version, name.into(), MigrationType::Simple, sql, false)
            })
            .collect(),
    )
}

/// Lock key serializing the changes the last-administrator guard checks (`"dozorusr"`).
pub(crate) const USERS_LOCK_KEY: i64 = 0x646f_7a6f_7275_7372;

/// Lock key of one (rule, agent, host) aggregation slot, so concurrent batches never open two alerts
/// for the same repeat.
pub(crate) fn slot_key(group: &crate::common::AlertGroupKey) -> i64 {
    let (rule_id, agent_id, host_key) = group;
    let mut h = Sha256::new();
    h.update(b"dozor-alert\x1f");
    h.update(rule_id.as_bytes());
    for part in [agent_id, host_key] {
        match part {
            Some(a) => {
                h.update(b"\x1f");
                h.update(a.as_bytes());
            }
            None => h.update(b"\x1e"),
        }
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_differ() {
        let key = |agent: Option<&str>, host: Option<&str>| {
            slot_key(&("r".into(), agent.map(Into::into), host.map(Into::into)))
        };
        assert_ne!(key(Some("a"), None), key(None, None));
        assert_ne!(key(Some("a"), None), key(None, Some("a")));
        assert_ne!(key(None, Some("h1")), key(None, Some("h2")));
        assert_eq!(key(Some("a"), Some("h")), key(Some("a"), Some("h")));
    }
}
