//! Saved event searches (issue 16): written once for both drivers, called by the
//! [`Store`](crate::Store) methods of the same names in `store.rs`.

use sha2::{Digest, Sha256};

use super::row::Row;
use super::{Driver, On, SqlStore, json, sql};
use crate::common::corrupt;
use crate::error::{Result, StoreError};
use crate::types::*;

pub(crate) const SAVED_SEARCH_COLS: &str = "id, name, query, params, owner, shared, \
    created_at, updated_at, last_run_at";

fn saved_search<R: Row>(r: &R) -> Result<SavedSearch> {
    let params = r.json("params")?.unwrap_or_default();
    Ok(SavedSearch {
        id: r.get("id")?,
        name: r.get("name")?,
        query: r.get("query")?,
        params: if params.is_null() {
            SavedSearchParams::default()
        } else {
            serde_json::from_value(params).map_err(|e| corrupt("saved search params", e))?
        },
        owner: r.get("owner")?,
        shared: r.get("shared")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        last_run_at: r.get("last_run_at")?,
    })
}

/// Lock key of one owner's saved searches (PostgreSQL: so two concurrent saves cannot both
/// pass the per-owner limit).
fn owner_key(owner: &str) -> i64 {
    let mut h = Sha256::new();
    h.update(b"dozor-saved-search\x1f");
    h.update(owner.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

fn params_json(p: &SavedSearchParams) -> serde_json::Value {
    serde_json::to_value(p).unwrap_or_default()
}

impl<D: Driver> SqlStore<D> {
    pub(super) async fn saved_search_insert(
        &self,
        s: &NewSavedSearch,
        owner: &str,
    ) -> Result<SavedSearch> {
        if let Some(problem) = saved_search_problem(s) {
            return Err(StoreError::InvalidArgument(problem));
        }
        let owner = owner.trim();
        if owner.is_empty() {
            return Err(StoreError::InvalidArgument(
                "a saved search needs an owner".into(),
            ));
        }
        let name = s.name.trim();
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        D::lock(&mut tx, &[owner_key(owner)]).await?;
        let st = sql!(
            "SELECT count(*) AS n FROM saved_searches WHERE owner = ?",
            owner
        );
        if self.count(On::Tx(&mut tx), st).await? >= MAX_SAVED_SEARCHES_PER_OWNER {
            return Err(StoreError::InvalidArgument(format!(
                "{owner} has {MAX_SAVED_SEARCHES_PER_OWNER} saved searches already (the most \
                 one may keep); delete some first"
            )));
        }
        let st = sql!(
            "INSERT INTO saved_searches (name, query, params, owner, shared, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner, name) DO NOTHING \
             RETURNING {SAVED_SEARCH_COLS}",
            name,
            s.query.trim(),
            json(params_json(&s.params)),
            owner,
            s.shared,
            now,
            now
        );
        let made = self.find(On::Tx(&mut tx), st, saved_search).await?;
        let made = made.ok_or_else(|| {
            StoreError::Conflict(format!("a saved search named {name:?} of {owner}"))
        })?;
        tx.commit().await?;
        Ok(made)
    }

    pub(super) async fn saved_search_get(&self, id: i64) -> Result<Option<SavedSearch>> {
        let st = sql!(
            "SELECT {SAVED_SEARCH_COLS} FROM saved_searches WHERE id = ?",
            id
        );
        self.find(On::Read, st, saved_search).await
    }

    pub(super) async fn saved_search_rows(
        &self,
        visible_to: Option<&str>,
    ) -> Result<Vec<SavedSearch>> {
        let st = match visible_to {
            Some(who) => sql!(
                "SELECT {SAVED_SEARCH_COLS} FROM saved_searches WHERE owner = ? OR shared \
                 ORDER BY lower(name), id",
                who
            ),
            None => sql!("SELECT {SAVED_SEARCH_COLS} FROM saved_searches ORDER BY lower(name), id"),
        };
        self.list(On::Read, st, saved_search).await
    }

    pub(super) async fn saved_search_update(
        &self,
        id: i64,
        change: &SavedSearchChange,
    ) -> Result<Option<SavedSearch>> {
        if let Some(problem) = saved_search_change_problem(change) {
            return Err(StoreError::InvalidArgument(problem));
        }
        let mut tx = self.0.begin().await?;
        let st = sql!(
            "SELECT {SAVED_SEARCH_COLS} FROM saved_searches WHERE id = ? FOR UPDATE",
            id
        );
        let Some(current) = self.find(On::Tx(&mut tx), st, saved_search).await? else {
            return Ok(None);
        };
        let name = change
            .name
            .as_deref()
            .map_or(current.name.as_str(), str::trim);
        if name != current.name {
            let st = sql!(
                "SELECT count(*) AS n FROM saved_searches WHERE owner = ? AND name = ? AND id <> ?",
                &current.owner,
                name,
                id
            );
            if self.count(On::Tx(&mut tx), st).await? > 0 {
                return Err(StoreError::Conflict(format!(
                    "a saved search named {name:?} of {}",
                    current.owner
                )));
            }
        }
        let query = change
            .query
            .as_deref()
            .map_or(current.query.as_str(), str::trim);
        let params = change.params.as_ref().unwrap_or(&current.params);
        let st = sql!(
            "UPDATE saved_searches SET name = ?, query = ?, params = ?, shared = ?, \
             updated_at = ? WHERE id = ? RETURNING {SAVED_SEARCH_COLS}",
            name,
            query,
            json(params_json(params)),
            change.shared.unwrap_or(current.shared),
            now_ms(),
            id
        );
        let changed = self.find(On::Tx(&mut tx), st, saved_search).await?;
        tx.commit().await?;
        Ok(changed)
    }

    pub(super) async fn saved_search_delete(&self, id: i64) -> Result<Option<SavedSearch>> {
        let st = sql!(
            "DELETE FROM saved_searches WHERE id = ? RETURNING {SAVED_SEARCH_COLS}",
            id
        );
        self.find(On::Write, st, saved_search).await
    }

    pub(super) async fn saved_search_ran(&self, id: i64, at: i64) -> Result<bool> {
        let st = sql!(
            "UPDATE saved_searches SET last_run_at = GREATEST(COALESCE(last_run_at, ?), ?) \
             WHERE id = ?",
            at,
            at,
            id
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }
}
