//! Threat intelligence (issue 14): indicators (IOCs), their sources' settings and sync status,
//! and the matches found in events. Written once for both drivers, called by the
//! [`Store`](crate::Store) methods of the same names in `store.rs`.
//!
//! An indicator is one row per `(kind, value)`, unique by `ioc_key` (SHA-256 of the pair: a
//! PostgreSQL B-tree entry could not hold a 4,096-byte value). [`SqlStore::iocs_upsert`] merges
//! a source's indicators in memory, under a lock of its own: per chunk it reads the rows
//! already there with one `SELECT … WHERE ioc_key IN (…)`, merges, and inserts the new ones
//! with one multi-row `INSERT` (their ids taken as a block from the `ioc_ids` counter, so
//! nothing is read back); at the end it writes the changed ones, in id order, with multi-row
//! `UPDATE … FROM (VALUES …)`. Rows given again with nothing new are not written at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::row::Row;
use super::{Arg, Driver, On, SqlStore, Stmt, Tx, json, sql};
use crate::common::{check_text, corrupt};
use crate::error::{Result, StoreError};
use crate::query::sql::{Param, SqlBuilder};
use crate::types::*;
use crate::{MAX_IOC_PAGE, MAX_IOC_VALUE};

/// `sources` is read as text and parsed straight into its type (no `Value` in between).
pub(crate) const IOC_COLS: &str = "id, kind, value, misp_type, to_ids, tags, confidence, \
    first_seen, last_seen, expires, enabled, warninglists, CAST(sources AS TEXT) AS sources, \
    sightings, last_sighting, created_at, updated_at";
/// What an upsert reads of a stored indicator: its key and the fields it merges.
const MERGE_COLS: &str = "id, ioc_key, misp_type, to_ids, tags, confidence, first_seen, \
    last_seen, expires, warninglists, CAST(sources AS TEXT) AS sources";
const SOURCE_COLS: &str =
    "name, spec, enabled, interval_secs, sync_cursor, last_sync, updated_at, updated_by";
const MATCH_COLS: &str = "id, ioc_id, kind, value, event_id, field, observed, agent_id, \
    event_ts, matched_at, retro, alerted, sighting";

/// The columns of a new indicator, in [`insert_stmt`] order.
const INSERT_COLS: &str = "id, ioc_key, kind, value, value_fold, misp_type, to_ids, tags, \
    confidence, first_seen, last_seen, expires, warninglists, sources, created_at, updated_at";
const INSERT_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The merged columns of a changed indicator, in [`update_stmt`] order (`v.column1` is the id).
const UPDATE_SET: &str = "misp_type = v.column2, to_ids = v.column3, tags = v.column4, \
    confidence = v.column5, first_seen = v.column6, last_seen = v.column7, \
    expires = v.column8, warninglists = v.column9, sources = v.column10, \
    updated_at = v.column11";
const UPDATE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Longest intelligence source name, bytes.
const MAX_SOURCE_NAME: usize = 128;
/// Object ids kept per source of an indicator (the first ones given).
const MAX_OBJECT_IDS: usize = 100;
/// Longest event id, field name and agent id of a match, bytes.
const MAX_MATCH_KEY: usize = 256;
/// Most event ids a match listing filters by.
const MAX_MATCH_EVENTS: usize = 10_000;
/// Indicators per statement of an upsert (16 arguments each on insert, 11 on update).
const UPSERT_CHUNK: usize = 500;
/// Matches per statement.
const MATCH_CHUNK: usize = 200;
/// Ids (or id/list pairs) per statement.
const ID_CHUNK: usize = 500;
/// The sighting states of a match.
const SIGHTINGS: [&str; 4] = ["none", "pending", "sent", "failed"];

/// Lock key serializing indicator upserts and warninglist updates (`"dozorioc"`): each reads
/// rows, merges them in memory and writes them back.
const IOC_LOCK_KEY: i64 = 0x646f_7a6f_7269_6f63;

/// The unique key of `(kind, value)`: SHA-256 of the kind's length, the kind and the value.
fn ioc_key(kind: &str, value: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update((kind.len() as u64).to_le_bytes());
    h.update(kind.as_bytes());
    h.update(value.as_bytes());
    h.finalize().to_vec()
}

/// The value as `contains` searches it: lower-cased by the store (Unicode, the same on both
/// backends), `None` when that is the value itself.
fn value_fold(value: &str) -> Option<String> {
    let folded = value.to_lowercase();
    (folded != value).then_some(folded)
}

/// Text as both backends store it (PostgreSQL cannot hold NUL), so merged sets compare the
/// same before and after a round trip.
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Sorted, without repeats.
fn sorted_set<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(|s| clean(s)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The first characters of a value, for an error message.
fn preview(v: &str) -> String {
    let mut p: String = v.chars().take(64).collect();
    if p.len() < v.len() {
        p.push('…');
    }
    p
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidArgument(msg)
}

fn check_source_name(name: &str) -> Result<()> {
    check_text("intel source name", name, true, MAX_SOURCE_NAME)
}

/// Checks one indicator of an upsert; the error names its index and value.
fn check_new_ioc(i: usize, n: &NewIoc) -> Result<()> {
    let at = if n.value.trim().is_empty() {
        format!("ioc {i}")
    } else {
        format!("ioc {i} ({:?})", preview(&n.value))
    };
    for (what, v) in [("kind", &n.kind), ("value", &n.value)] {
        if v.trim().is_empty() {
            return Err(invalid(format!("{at}: {what} is empty")));
        }
        if v.len() > MAX_IOC_VALUE {
            return Err(invalid(format!(
                "{at}: {what} is longer than {MAX_IOC_VALUE} bytes"
            )));
        }
        if v.contains('\0') {
            return Err(invalid(format!("{at}: {what} contains NUL")));
        }
    }
    Ok(())
}

/// `what` names the value in the error (`sighting status`, `match 3: sighting`).
fn check_sighting(what: &str, status: &str) -> Result<()> {
    if SIGHTINGS.contains(&status) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} {:?}: none, pending, sent or failed",
            preview(status)
        )))
    }
}

fn stored_count(what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

fn stored_confidence(c: Option<i64>) -> Result<Option<u8>> {
    c.map(|c| u8::try_from(c).map_err(|_| corrupt("ioc confidence", c)))
        .transpose()
}

/// The `sources` column, read as text (see [`IOC_COLS`]).
fn stored_sources<R: Row>(r: &R) -> Result<Vec<IocSourceRef>> {
    serde_json::from_str(&r.get::<String>("sources")?).map_err(|e| corrupt("ioc sources", e))
}

/// A stored indicator as an upsert reads it ([`MERGE_COLS`]): its key, and only the fields
/// the merge changes filled in (the rest is left empty and never written back).
fn merge_state<R: Row>(r: &R) -> Result<(Vec<u8>, StoredIoc)> {
    let ioc = StoredIoc {
        id: r.get("id")?,
        kind: String::new(),
        value: String::new(),
        misp_type: r.get("misp_type")?,
        to_ids: r.get("to_ids")?,
        tags: r.texts("tags")?,
        confidence: stored_confidence(r.get("confidence")?)?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        expires: r.get("expires")?,
        enabled: true,
        warninglists: r.texts("warninglists")?,
        sources: stored_sources(r)?,
        sightings: 0,
        last_sighting: None,
        created_at: 0,
        updated_at: 0,
    };
    Ok((r.get("ioc_key")?, ioc))
}

fn ioc<R: Row>(r: &R) -> Result<StoredIoc> {
    let confidence: Option<i64> = r.get("confidence")?;
    Ok(StoredIoc {
        id: r.get("id")?,
        kind: r.get("kind")?,
        value: r.get("value")?,
        misp_type: r.get("misp_type")?,
        to_ids: r.get("to_ids")?,
        tags: r.texts("tags")?,
        confidence: stored_confidence(confidence)?,
        first_seen: r.get("first_seen")?,
        last_seen: r.get("last_seen")?,
        expires: r.get("expires")?,
        enabled: r.get("enabled")?,
        warninglists: r.texts("warninglists")?,
        sources: stored_sources(r)?,
        sightings: stored_count("ioc sightings", r.get("sightings")?)?,
        last_sighting: r.get("last_sighting")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn source<R: Row>(r: &R) -> Result<IntelSource> {
    let last_sync = r
        .json("last_sync")?
        .map(|v| serde_json::from_value(v).map_err(|e| corrupt("intel source last_sync", e)))
        .transpose()?;
    Ok(IntelSource {
        name: r.get("name")?,
        spec: r
            .json("spec")?
            .unwrap_or_else(|| Value::Object(Default::default())),
        enabled: r.get("enabled")?,
        interval_secs: stored_count("intel source interval", r.get("interval_secs")?)?,
        cursor: r.get("sync_cursor")?,
        last_sync,
        updated_at: r.get("updated_at")?,
        updated_by: r.get("updated_by")?,
    })
}

fn intel_match<R: Row>(r: &R) -> Result<IntelMatch> {
    Ok(IntelMatch {
        id: r.get("id")?,
        ioc_id: r.get("ioc_id")?,
        kind: r.get("kind")?,
        value: r.get("value")?,
        event_id: r.get("event_id")?,
        field: r.get("field")?,
        observed: r.get("observed")?,
        agent_id: r.get("agent_id")?,
        event_ts: r.get("event_ts")?,
        matched_at: r.get("matched_at")?,
        retro: r.get("retro")?,
        alerted: r.get("alerted")?,
        sighting: r.get("sighting")?,
    })
}

/// A new indicator as `source` gives it.
fn fresh_ioc(source: &str, n: &NewIoc, now: i64) -> StoredIoc {
    StoredIoc {
        id: 0,
        kind: n.kind.clone(),
        value: n.value.clone(),
        misp_type: n.misp_type.as_deref().map(clean),
        to_ids: n.to_ids,
        tags: sorted_set(&n.tags),
        confidence: n.confidence.map(|c| c.min(100)),
        first_seen: n.first_seen,
        last_seen: n.last_seen,
        expires: n.expires,
        enabled: true,
        warninglists: sorted_set(&n.warninglists),
        sources: vec![IocSourceRef {
            name: source.to_owned(),
            object_ids: add_object_ids(Vec::new(), &n.object_ids),
            added_at: now,
            seen_at: now,
        }],
        sightings: 0,
        last_sighting: None,
        created_at: now,
        updated_at: now,
    }
}

/// `ids` with the new ones appended (no repeats, at most [`MAX_OBJECT_IDS`]).
fn add_object_ids(mut ids: Vec<String>, new: &[String]) -> Vec<String> {
    for id in new {
        if ids.len() >= MAX_OBJECT_IDS {
            break;
        }
        let id = clean(id);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Merges what `source` gives now into a stored indicator (the rules of
/// [`Store::upsert_iocs`](crate::Store::upsert_iocs)); whether anything changed. Only a change
/// moves the source's `seen_at` and the indicator's `updated_at` to `now`.
fn merge_ioc(cur: &mut StoredIoc, source: &str, n: &NewIoc, now: i64) -> bool {
    let before = cur.clone();
    if cur.misp_type.is_none() {
        cur.misp_type = n.misp_type.as_deref().map(clean);
    }
    cur.to_ids |= n.to_ids;
    if n.tags
        .iter()
        .any(|t| cur.tags.binary_search(&clean(t)).is_err())
    {
        cur.tags = sorted_set(cur.tags.iter().chain(&n.tags));
    }
    cur.confidence = cur.confidence.max(n.confidence.map(|c| c.min(100)));
    cur.first_seen = min_some(cur.first_seen, n.first_seen);
    cur.last_seen = cur.last_seen.max(n.last_seen);
    cur.expires = match (cur.expires, n.expires) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    cur.warninglists = sorted_set(&n.warninglists);
    let at = match cur.sources.iter().position(|s| s.name == source) {
        Some(i) => {
            let ids = std::mem::take(&mut cur.sources[i].object_ids);
            cur.sources[i].object_ids = add_object_ids(ids, &n.object_ids);
            i
        }
        None => {
            cur.sources.push(IocSourceRef {
                name: source.to_owned(),
                object_ids: add_object_ids(Vec::new(), &n.object_ids),
                added_at: now,
                seen_at: now,
            });
            cur.sources.len() - 1
        }
    };
    let changed = *cur != before;
    if changed {
        cur.sources[at].seen_at = now;
        cur.updated_at = now;
    }
    changed
}

fn sources_json(r: &StoredIoc) -> Result<Arg> {
    serde_json::to_value(&r.sources)
        .map(json)
        .map_err(|e| invalid(format!("ioc sources: {e}")))
}

/// `INSERT INTO iocs (…) VALUES (…), (…)` of new indicators (ids given) and their keys.
fn insert_stmt(rows: &[(Vec<u8>, StoredIoc)]) -> Result<Stmt> {
    let mut text = format!("INSERT INTO iocs ({INSERT_COLS}) VALUES ");
    for i in 0..rows.len() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(INSERT_ROW);
    }
    let mut st = Stmt::new(text);
    st.args.reserve(rows.len() * 16);
    for (key, r) in rows {
        st.args.extend([
            Arg::Int(Some(r.id)),
            Arg::Bytes(key.clone()),
            Arg::Text(Some(r.kind.clone())),
            Arg::Text(Some(r.value.clone())),
            Arg::Text(value_fold(&r.value)),
        ]);
        st.args.extend(merged_args(r)?);
        st.args
            .extend([Arg::Int(Some(r.created_at)), Arg::Int(Some(r.updated_at))]);
    }
    Ok(st)
}

/// The merged fields, in the column order `INSERT` and `UPDATE` share (`misp_type` …
/// `sources`).
fn merged_args(r: &StoredIoc) -> Result<[Arg; 9]> {
    Ok([
        Arg::Text(r.misp_type.clone()),
        Arg::Bool(r.to_ids),
        Arg::Texts(r.tags.clone()),
        Arg::Int(r.confidence.map(i64::from)),
        Arg::Int(r.first_seen),
        Arg::Int(r.last_seen),
        Arg::Int(r.expires),
        Arg::Texts(r.warninglists.clone()),
        sources_json(r)?,
    ])
}

/// One `UPDATE … FROM (VALUES …)` writing the merged fields of changed indicators by id
/// (an indicator deleted meanwhile stays deleted).
fn update_stmt(rows: &[StoredIoc]) -> Result<Stmt> {
    let mut text = String::from("UPDATE iocs SET ");
    text.push_str(UPDATE_SET);
    text.push_str(" FROM (VALUES ");
    for i in 0..rows.len() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(UPDATE_ROW);
    }
    text.push_str(") AS v WHERE iocs.id = v.column1");
    let mut st = Stmt::new(text);
    st.args.reserve(rows.len() * 11);
    for r in rows {
        st.args.extend([Arg::Int(Some(r.id))]);
        st.args.extend(merged_args(r)?);
        st.args.extend([Arg::Int(Some(r.updated_at))]);
    }
    Ok(st)
}

/// `n` placeholders: `?, ?, …`.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        s.push_str(if i == 0 { "?" } else { ", ?" });
    }
    s
}

/// `s` as the pattern of a case-insensitive substring search (`LIKE … ESCAPE '!'`).
pub(crate) fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The page size of an indicator listing.
fn ioc_limit(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE_LIMIT
    } else {
        limit.min(MAX_IOC_PAGE)
    }
}

impl<D: Driver> SqlStore<D> {
    /// ` AND` the indicator was given by `source`.
    fn source_filter(b: &mut SqlBuilder, source: &str) {
        let ph = b.bind(Param::Text(source.to_owned()));
        match D::BACKEND {
            Backend::Sqlite => b.push(
                " AND EXISTS (SELECT 1 FROM json_each(iocs.sources) AS s \
                 WHERE json_extract(s.value, '$.name') = ",
            ),
            Backend::Postgres => {
                b.push(" AND iocs.sources @> jsonb_build_array(jsonb_build_object('name', ")
            }
        };
        b.push(&ph);
        b.push(match D::BACKEND {
            Backend::Sqlite => ")",
            Backend::Postgres => "::text))",
        });
    }

    /// The `WHERE` of an indicator query (its `after_id` and `limit` aside).
    fn ioc_filters(b: &mut SqlBuilder, q: &IocQuery) {
        b.push(" WHERE 1 = 1");
        if let Some(kind) = &q.kind {
            b.push(" AND kind = ").push_bind(Param::Text(kind.clone()));
        }
        if let Some(value) = &q.value {
            b.push(" AND value = ")
                .push_bind(Param::Text(value.clone()));
        }
        if let Some(part) = &q.contains {
            b.push(" AND COALESCE(value_fold, value) LIKE ")
                .push_bind(Param::Text(contains_pattern(part)))
                .push(" ESCAPE '!'");
        }
        if let Some(name) = &q.source {
            Self::source_filter(b, name);
        }
        if let Some(tag) = &q.tag {
            let ph = b.bind(Param::Text(tag.clone()));
            match D::BACKEND {
                Backend::Sqlite => b
                    .push(" AND EXISTS (SELECT 1 FROM json_each(iocs.tags) AS t WHERE t.value = ")
                    .push(&ph)
                    .push(")"),
                Backend::Postgres => b.push(" AND ").push(&ph).push(" = ANY (iocs.tags)"),
            };
        }
        if let Some(enabled) = q.enabled {
            b.push(if enabled {
                " AND enabled = TRUE"
            } else {
                " AND enabled = FALSE"
            });
        }
        if let Some(at) = q.active_at {
            b.push(" AND enabled = TRUE AND (expires IS NULL OR expires > ")
                .push_bind(Param::Int(at))
                .push(")");
        }
        if let Some(since) = q.updated_since {
            b.push(" AND updated_at >= ").push_bind(Param::Int(since));
        }
        if let Some(sighted) = q.sighted {
            b.push(if sighted {
                " AND sightings > 0"
            } else {
                " AND sightings = 0"
            });
        }
    }

    pub(super) async fn iocs_upsert(
        &self,
        source: &str,
        iocs: &[NewIoc],
        now: i64,
    ) -> Result<IocUpsertReport> {
        check_source_name(source)?;
        for (i, n) in iocs.iter().enumerate() {
            check_new_ioc(i, n)?;
        }
        // Distinct pairs in the order first given, each with its key and every input that
        // names it.
        let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(iocs.len());
        let mut given: Vec<(Vec<u8>, Vec<&NewIoc>)> = Vec::with_capacity(iocs.len());
        for n in iocs {
            match at.get(&(n.kind.as_str(), n.value.as_str())) {
                Some(&i) => given[i].1.push(n),
                None => {
                    at.insert((&n.kind, &n.value), given.len());
                    given.push((ioc_key(&n.kind, &n.value), vec![n]));
                }
            }
        }
        drop(at);
        let mut report = IocUpsertReport::default();
        let mut changed: Vec<StoredIoc> = Vec::new();
        let mut tx = self.0.begin().await?;
        D::lock(&mut tx, &[IOC_LOCK_KEY]).await?;
        for chunk in given.chunks(UPSERT_CHUNK) {
            let mut st = Stmt::new(format!(
                "SELECT {MERGE_COLS} FROM iocs WHERE ioc_key IN ({})",
                placeholders(chunk.len())
            ));
            st.args
                .extend(chunk.iter().map(|(key, _)| Arg::Bytes(key.clone())));
            let mut stored: HashMap<Vec<u8>, StoredIoc> = self
                .list(On::Tx(&mut tx), st, merge_state)
                .await?
                .into_iter()
                .collect();
            let mut added: Vec<(Vec<u8>, StoredIoc)> = Vec::new();
            for (key, list) in chunk {
                let Some((first, rest)) = list.split_first() else {
                    continue;
                };
                match stored.remove(key) {
                    Some(mut cur) => {
                        let mut dirty = false;
                        for n in list {
                            dirty |= merge_ioc(&mut cur, source, n, now);
                        }
                        if dirty {
                            changed.push(cur);
                        } else {
                            report.unchanged += 1;
                        }
                    }
                    None => {
                        let mut row = fresh_ioc(source, first, now);
                        for n in rest {
                            merge_ioc(&mut row, source, n, now);
                        }
                        added.push((key.clone(), row));
                    }
                }
            }
            if added.is_empty() {
                continue;
            }
            // Ids from the store's counter, in the order given: no rows to read back.
            let n = added.len() as i64;
            let st = sql!("UPDATE ioc_ids SET issued = issued + ? RETURNING issued", n);
            let last: i64 = self.one(On::Tx(&mut tx), st, |r| r.get("issued")).await?;
            for (i, (_, row)) in added.iter_mut().enumerate() {
                row.id = last - n + 1 + i as i64;
                report.added_ids.push(row.id);
            }
            self.exec(On::Tx(&mut tx), insert_stmt(&added)?).await?;
            report.added += added.len() as u64;
        }
        // In id order, as the sightings of matches take them: concurrent transactions
        // updating the same indicators then never wait for each other in a circle.
        changed.sort_unstable_by_key(|r| r.id);
        for chunk in changed.chunks(UPSERT_CHUNK) {
            self.exec(On::Tx(&mut tx), update_stmt(chunk)?).await?;
        }
        report.updated = changed.len() as u64;
        tx.commit().await?;
        Ok(report)
    }

    pub(super) async fn ioc_row(&self, id: i64) -> Result<Option<StoredIoc>> {
        let st = sql!("SELECT {IOC_COLS} FROM iocs WHERE id = ?", id);
        self.find(On::Read, st, ioc).await
    }

    pub(super) async fn ioc_by_value(&self, kind: &str, value: &str) -> Result<Option<StoredIoc>> {
        let st = sql!(
            "SELECT {IOC_COLS} FROM iocs WHERE ioc_key = ?",
            ioc_key(kind, value)
        );
        let found = self.find(On::Read, st, ioc).await?;
        Ok(found.filter(|r| r.kind == kind && r.value == value))
    }

    pub(super) async fn ioc_rows(&self, q: &IocQuery) -> Result<Vec<StoredIoc>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ").push(IOC_COLS).push(" FROM iocs");
        Self::ioc_filters(&mut b, q);
        let limit = Param::Int(i64::from(ioc_limit(q.limit)));
        match q.after_id {
            Some(after) => b
                .push(" AND id > ")
                .push_bind(Param::Int(after))
                .push(" ORDER BY id LIMIT ")
                .push_bind(limit),
            None => b
                .push(" ORDER BY updated_at DESC, id DESC LIMIT ")
                .push_bind(limit),
        };
        self.list(On::Read, Stmt::built(b), ioc).await
    }

    pub(super) async fn ioc_count(&self, q: &IocQuery) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM iocs");
        Self::ioc_filters(&mut b, q);
        self.count(On::Read, Stmt::built(b)).await
    }

    pub(super) async fn ioc_enabled(
        &self,
        id: i64,
        enabled: bool,
        now: i64,
    ) -> Result<Option<StoredIoc>> {
        let st = sql!(
            "UPDATE iocs SET enabled = ?, updated_at = ? WHERE id = ? RETURNING {IOC_COLS}",
            enabled,
            now,
            id
        );
        self.find(On::Write, st, ioc).await
    }

    pub(super) async fn ioc_delete(&self, id: i64) -> Result<bool> {
        let st = sql!("DELETE FROM iocs WHERE id = ?", id);
        Ok(self.exec(On::Write, st).await? > 0)
    }

    /// Replaces the warninglists of indicators (the last given for an id wins); an indicator
    /// whose lists change gets `updated_at` = now, so incremental loads see the change.
    pub(super) async fn ioc_warninglists(&self, hits: &[(i64, Vec<String>)]) -> Result<()> {
        let by_id: BTreeMap<i64, Vec<String>> = hits
            .iter()
            .map(|(id, lists)| (*id, sorted_set(lists)))
            .collect();
        if by_id.is_empty() {
            return Ok(());
        }
        let by_id: Vec<(i64, Vec<String>)> = by_id.into_iter().collect();
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        D::lock(&mut tx, &[IOC_LOCK_KEY]).await?;
        for chunk in by_id.chunks(ID_CHUNK) {
            self.warninglists_chunk(&mut tx, chunk, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn warninglists_chunk(
        &self,
        tx: &mut Tx<D>,
        chunk: &[(i64, Vec<String>)],
        now: i64,
    ) -> Result<()> {
        let mut text =
            String::from("UPDATE iocs SET warninglists = v.column2, updated_at = ? FROM (VALUES ");
        for i in 0..chunk.len() {
            text.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
        }
        text.push_str(") AS v WHERE iocs.id = v.column1 AND iocs.warninglists <> v.column2");
        let mut st = Stmt::new(text).arg(now);
        for (id, lists) in chunk {
            st = st.arg(*id).arg(Arg::Texts(lists.clone()));
        }
        self.exec(On::Tx(tx), st).await?;
        Ok(())
    }

    pub(super) async fn iocs_expired(&self, source: &str, after: i64, until: i64) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM iocs WHERE enabled = TRUE AND expires > ")
            .push_bind(Param::Int(after))
            .push(" AND expires <= ")
            .push_bind(Param::Int(until));
        Self::source_filter(&mut b, source);
        self.count(On::Read, Stmt::built(b)).await
    }

    pub(super) async fn intel_source_put(&self, s: &IntelSource) -> Result<IntelSource> {
        check_source_name(&s.name)?;
        check_text("updated_by", &s.updated_by, true, 256)?;
        let last_sync = s
            .last_sync
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| invalid(format!("intel source last_sync: {e}")))?;
        let st = sql!(
            "INSERT INTO intel_sources ({SOURCE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, \
             enabled = excluded.enabled, interval_secs = excluded.interval_secs, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING {SOURCE_COLS}",
            &s.name,
            json(s.spec.clone()),
            s.enabled,
            i64::try_from(s.interval_secs).unwrap_or(i64::MAX),
            &s.cursor,
            Arg::Json(last_sync),
            s.updated_at,
            &s.updated_by
        );
        self.one(On::Write, st, source).await
    }

    pub(super) async fn intel_source_row(&self, name: &str) -> Result<Option<IntelSource>> {
        let st = sql!(
            "SELECT {SOURCE_COLS} FROM intel_sources WHERE name = ?",
            name
        );
        self.find(On::Read, st, source).await
    }

    pub(super) async fn intel_source_rows(&self) -> Result<Vec<IntelSource>> {
        let st = sql!("SELECT {SOURCE_COLS} FROM intel_sources ORDER BY name");
        self.list(On::Read, st, source).await
    }

    pub(super) async fn intel_source_delete(&self, name: &str) -> Result<bool> {
        let st = sql!("DELETE FROM intel_sources WHERE name = ?", name);
        Ok(self.exec(On::Write, st).await? > 0)
    }

    pub(super) async fn intel_sync(
        &self,
        name: &str,
        status: &IntelSyncStatus,
        cursor: Option<&str>,
    ) -> Result<bool> {
        let status =
            serde_json::to_value(status).map_err(|e| invalid(format!("intel sync status: {e}")))?;
        let st = sql!(
            "UPDATE intel_sources SET last_sync = ?, sync_cursor = COALESCE(?, sync_cursor) \
             WHERE name = ?",
            json(status),
            cursor,
            name
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    pub(super) async fn matches_record(
        &self,
        matches: &[NewIntelMatch],
        now: i64,
    ) -> Result<Vec<bool>> {
        for (i, m) in matches.iter().enumerate() {
            check_text(
                &format!("match {i}: event id"),
                &m.event_id,
                true,
                MAX_MATCH_KEY,
            )?;
            check_text(&format!("match {i}: field"), &m.field, true, MAX_MATCH_KEY)?;
            if let Some(agent) = &m.agent_id {
                check_text(&format!("match {i}: agent id"), agent, false, MAX_MATCH_KEY)?;
            }
            check_sighting(&format!("match {i}: sighting"), &m.sighting)?;
        }
        // The first of repeats within the call is the one recorded.
        let mut seen = HashSet::new();
        let firsts: Vec<usize> = (0..matches.len())
            .filter(|&i| {
                let m = &matches[i];
                seen.insert((m.ioc_id, clean(&m.event_id), clean(&m.field)))
            })
            .collect();
        let mut new_keys: HashSet<(i64, String, String)> = HashSet::new();
        let mut tx = self.0.begin().await?;
        for chunk in firsts.chunks(MATCH_CHUNK) {
            let mut text = String::from(
                "INSERT INTO intel_matches (ioc_id, kind, value, event_id, field, observed, \
                 agent_id, event_ts, matched_at, retro, alerted, sighting) \
                 SELECT i.id, i.kind, i.value, v.column2, v.column3, v.column4, v.column5, \
                 v.column6, ?, v.column7, v.column8, v.column9 FROM (VALUES ",
            );
            for k in 0..chunk.len() {
                if k > 0 {
                    text.push_str(", ");
                }
                text.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            }
            text.push_str(
                ") AS v JOIN iocs AS i ON i.id = v.column1 WHERE TRUE ORDER BY v.column10 \
                 ON CONFLICT (ioc_id, event_id, field) DO NOTHING \
                 RETURNING ioc_id, event_id, field",
            );
            let mut st = Stmt::new(text).arg(now);
            // Ids follow the order given.
            for (k, &i) in chunk.iter().enumerate() {
                let m = &matches[i];
                st = st
                    .arg(m.ioc_id)
                    .arg(clean(&m.event_id))
                    .arg(clean(&m.field))
                    .arg(clean(&cut(&m.observed, MAX_IOC_VALUE)))
                    .arg(m.agent_id.as_deref().map(clean))
                    .arg(m.event_ts)
                    .arg(m.retro)
                    .arg(m.alerted)
                    .arg(m.sighting.as_str())
                    .arg(k as i64);
            }
            let added = self
                .list(On::Tx(&mut tx), st, |r| {
                    Ok((r.get("ioc_id")?, r.get("event_id")?, r.get("field")?))
                })
                .await?;
            new_keys.extend(added);
        }
        let mut sightings: BTreeMap<i64, i64> = BTreeMap::new();
        let mut out = vec![false; matches.len()];
        for &i in &firsts {
            let m = &matches[i];
            if new_keys.contains(&(m.ioc_id, clean(&m.event_id), clean(&m.field))) {
                out[i] = true;
                *sightings.entry(m.ioc_id).or_default() += 1;
            }
        }
        // In id order (see `iocs_upsert`).
        for (id, n) in sightings {
            let st = sql!(
                "UPDATE iocs SET sightings = sightings + ?, last_sighting = ? WHERE id = ?",
                n,
                now,
                id
            );
            self.exec(On::Tx(&mut tx), st).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(super) async fn match_rows(&self, q: &IntelMatchQuery) -> Result<Vec<IntelMatch>> {
        if q.event_ids.len() > MAX_MATCH_EVENTS {
            return Err(invalid(format!(
                "more than {MAX_MATCH_EVENTS} event ids in a match listing"
            )));
        }
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(MATCH_COLS)
            .push(" FROM intel_matches WHERE 1 = 1");
        if let Some(id) = q.ioc_id {
            b.push(" AND ioc_id = ").push_bind(Param::Int(id));
        }
        if !q.event_ids.is_empty() {
            b.push(" AND event_id IN (");
            for (i, e) in q.event_ids.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.push_bind(Param::Text(e.clone()));
            }
            b.push(")");
        }
        if let Some(before) = q.before_id {
            b.push(" AND id < ").push_bind(Param::Int(before));
        }
        b.push(" ORDER BY id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(clamp_limit(q.limit))));
        self.list(On::Read, Stmt::built(b), intel_match).await
    }

    pub(super) async fn sightings_pending(&self, limit: u32) -> Result<Vec<IntelMatch>> {
        let st = sql!(
            "SELECT {MATCH_COLS} FROM intel_matches WHERE sighting = 'pending' \
             ORDER BY id LIMIT ?",
            i64::from(clamp_limit(limit))
        );
        self.list(On::Read, st, intel_match).await
    }

    pub(super) async fn sightings_requeue(&self, since: i64) -> Result<u64> {
        let st = sql!(
            "UPDATE intel_matches SET sighting = 'pending' \
             WHERE sighting = 'failed' AND matched_at >= ?",
            since
        );
        self.exec(On::Write, st).await
    }

    pub(super) async fn sightings_set(&self, ids: &[i64], status: &str) -> Result<()> {
        check_sighting("sighting status", status)?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.0.begin().await?;
        for chunk in ids.chunks(ID_CHUNK) {
            let mut st = Stmt::new(format!(
                "UPDATE intel_matches SET sighting = ? WHERE id IN ({})",
                placeholders(chunk.len())
            ))
            .arg(status);
            st.args.extend(chunk.iter().map(|&id| Arg::Int(Some(id))));
            self.exec(On::Tx(&mut tx), st).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(tags: &[&str], ids: &[&str]) -> NewIoc {
        NewIoc {
            kind: "ip".into(),
            value: "192.0.2.1".into(),
            misp_type: Some("ip-dst".into()),
            to_ids: false,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            confidence: Some(40),
            first_seen: Some(100),
            last_seen: Some(200),
            expires: Some(1_000),
            object_ids: ids.iter().map(|t| t.to_string()).collect(),
            warninglists: vec![],
        }
    }

    #[test]
    fn keys_separate_kind_and_value() {
        assert_ne!(ioc_key("ab", "c"), ioc_key("a", "bc"));
        assert_eq!(ioc_key("ip", "x"), ioc_key("ip", "x"));
    }

    #[test]
    fn merging_the_same_again_changes_nothing() {
        let n = given(&["b", "a"], &["e1"]);
        let mut row = fresh_ioc("feed", &n, 10);
        assert_eq!(row.tags, ["a", "b"]);
        assert!(!merge_ioc(&mut row, "feed", &n, 20));
        assert_eq!(row.updated_at, 10);
        let mut more = given(&["c"], &["e2"]);
        more.expires = None;
        assert!(merge_ioc(&mut row, "feed", &more, 30));
        assert_eq!(row.tags, ["a", "b", "c"]);
        assert_eq!(row.expires, None);
        assert_eq!(row.sources[0].object_ids, ["e1", "e2"]);
        assert_eq!((row.sources[0].added_at, row.sources[0].seen_at), (10, 30));
    }

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern("A_b%!"), "%a!_b!%!!%");
        assert_eq!(cut("жжж", 3), "ж");
        assert_eq!(value_fold("abc"), None);
        assert_eq!(value_fold("ABC").as_deref(), Some("abc"));
    }
}
