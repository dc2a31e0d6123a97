//! [`Store`] for [`SqlStore`]: every method once, for both drivers.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tracing::{debug, info};
use uuid::Uuid;

use super::row::*;
use super::{
    Arg, DbRow, Driver, On, SqlStore, Stmt, Tx, USERS_LOCK_KEY, contains_pattern, json, slot_key,
    sql,
};
use crate::common::*;
use crate::error::{Result, StoreError};
use crate::query::sql::{Param, SqlBuilder};
use crate::samples::{
    NewSample, SAMPLE_COLS, Sample, SampleQuery, is_sha256_hex, list_query, sample_key,
    validate_new_sample,
};
use crate::types::*;
use crate::{Store, cursor, query, token};

/// `SET` list of the facts columns; bind with [`with_facts`].
const FACTS_SET: &str = "hostname = ?, hostname_key = ?, os_type = ?, os_name = ?, \
    os_version = ?, arch = ?, agent_version = ?, ips = ?";

/// The facts columns' arguments, in [`FACTS_SET`] order.
fn with_facts(st: Stmt, f: &AgentFacts) -> Stmt {
    st.arg(&f.hostname)
        .arg(hostname_key(&f.hostname))
        .arg(&f.os_type)
        .arg(&f.os_name)
        .arg(&f.os_version)
        .arg(&f.arch)
        .arg(&f.agent_version)
        .arg(json(Value::from(f.ips.clone())))
}

/// `e.ts` (event time) or `e.received_at` (when the server stored it).
fn event_filters(
    b: &mut SqlBuilder,
    (time_col, from, to): (&str, Option<i64>, Option<i64>),
    agent_id: Option<&str>,
    query_text: Option<&str>,
) -> Result<()> {
    b.push(" WHERE 1 = 1");
    if let Some(from) = from {
        b.push(" AND ")
            .push(time_col)
            .push(" >= ")
            .push_bind(Param::Int(from));
    }
    if let Some(to) = to {
        b.push(" AND ")
            .push(time_col)
            .push(" < ")
            .push_bind(Param::Int(to));
    }
    if let Some(agent) = agent_id {
        b.push(" AND e.agent_id = ")
            .push_bind(Param::Text(agent.to_owned()));
    }
    if let Some(expr) = query_text.map(query::parse).transpose()?.flatten() {
        if time_col == "e.ts" {
            b.limit_keywords_to(from, to);
        }
        b.push(" AND ");
        b.push_expr(&expr);
    }
    Ok(())
}

impl<D: Driver> SqlStore<D> {
    /// An enrollment token's row by the SHA-256 of its secret.
    async fn enrollment_token_row(&self, hash: &[u8]) -> Result<Option<EnrollmentTokenInfo>> {
        let st = sql!(
            "SELECT {ENROLL_COLS} FROM enrollment_tokens WHERE secret_hash = ?",
            hash
        );
        self.find(On::Read, st, enrollment).await
    }

    /// Runs a `DELETE … LIMIT ?` of [`Driver::PURGE_CHUNK`] rows again until it deletes less,
    /// each chunk its own short statement so writers are never blocked for long; how many.
    async fn delete_chunked(&self, st: impl Fn() -> Stmt + Send) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let n = self.exec(On::Write, st()).await?;
            deleted += n;
            if n < D::PURGE_CHUNK as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Takes the aggregation slots of these detections (PostgreSQL: advisory locks, in key
    /// order so two batches cannot deadlock).
    async fn lock_slots(tx: &mut Tx<D>, detections: &[&Detection]) -> Result<()> {
        let mut keys: Vec<i64> = detections.iter().map(|d| slot_key(&group_of(d))).collect();
        keys.sort_unstable();
        keys.dedup();
        D::lock(tx, &keys).await
    }

    /// Counts the newly inserted events per host into `hosts`: one upsert per host in the
    /// batch, so a batch of one host's events costs one statement.
    async fn note_hosts(
        &self,
        tx: &mut Tx<D>,
        events: &[NewEvent],
        inserted: &std::collections::HashSet<Uuid>,
    ) -> Result<()> {
        for seen in hosts_of(events, inserted) {
            let st = sql!(
                "INSERT INTO hosts (host_key, name, agent_id, first_seen, last_seen, \
                 last_received, events) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (host_key) DO UPDATE SET \
                 agent_id = COALESCE(excluded.agent_id, hosts.agent_id), \
                 first_seen = LEAST(hosts.first_seen, excluded.first_seen), \
                 last_seen = GREATEST(hosts.last_seen, excluded.last_seen), \
                 last_received = GREATEST(hosts.last_received, excluded.last_received), \
                 events = hosts.events + excluded.events",
                seen.key,
                seen.name,
                seen.agent_id,
                seen.first_seen,
                seen.last_seen,
                seen.last_received,
                seen.events
            );
            self.exec(On::Tx(tx), st).await?;
        }
        Ok(())
    }

    /// Takes the detections an exception covers out of `todo`, counting them on their
    /// exceptions; returns how many.
    async fn suppress(
        &self,
        tx: &mut Tx<D>,
        todo: &mut Vec<&Detection>,
        events: &[NewEvent],
        now: i64,
    ) -> Result<usize> {
        let mut rules: Vec<&str> = todo.iter().map(|d| d.rule_id.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        let exceptions = self.exceptions_for(tx, &rules, now).await?;
        if exceptions.is_empty() {
            return Ok(0);
        }
        let docs: std::collections::HashMap<Uuid, &serde_json::Value> =
            events.iter().map(|e| (e.id, &e.doc)).collect();
        let mut counts: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        let before = todo.len();
        todo.retain(|d| {
            let covering = exceptions.get(&d.rule_id).and_then(|list| {
                let doc = docs.get(&d.event_id)?;
                list.iter().find(|e| exception_matches(&e.conditions, doc))
            });
            match covering {
                Some(e) => {
                    *counts.entry(e.id).or_default() += 1;
                    false
                }
                None => true,
            }
        });
        self.exceptions_count(tx, &counts, now).await?;
        Ok(before - todo.len())
    }

    /// Writes an alert whose detections were folded in memory.
    async fn write_folded(&self, tx: &mut Tx<D>, alert: &Alert) -> Result<()> {
        let st = sql!(
            "UPDATE alerts SET count = ?, first_seen = ?, last_seen = ?, event_ids = ?, \
             updated_at = ? WHERE id = ?",
            alert.count,
            alert.first_seen,
            alert.last_seen,
            Arg::Uuids(alert.event_ids.clone()),
            alert.updated_at,
            alert.id
        );
        self.exec(On::Tx(tx), st).await?;
        Ok(())
    }

    /// Folds a detection into its open alert (locked until the transaction ends) or opens one.
    async fn record_tx(
        &self,
        tx: &mut Tx<D>,
        d: &Detection,
        window_ms: i64,
        now: i64,
    ) -> Result<DetectionOutcome> {
        validate_detection(d)?;
        let host = d.host.as_deref().map(str::trim).filter(|h| !h.is_empty());
        let host_key = host.map(host_key);
        let open = sql!(
            "SELECT {ALERT_COLS} FROM alerts WHERE rule_id = ? \
             AND agent_id IS NOT DISTINCT FROM ? AND host_key IS NOT DISTINCT FROM ? \
             AND status IN ('new', 'acknowledged') \
             AND last_seen >= ? AND first_seen <= ? \
             ORDER BY last_seen DESC, id DESC LIMIT 1 FOR UPDATE",
            &d.rule_id,
            &d.agent_id,
            &host_key,
            d.ts.saturating_sub(window_ms),
            d.ts.saturating_add(window_ms)
        );
        if let Some(mut alert) = self.find(On::Tx(&mut *tx), open, alert).await? {
            absorb(&mut alert, d, now);
            self.write_folded(tx, &alert).await?;
            return Ok(DetectionOutcome {
                change: AlertChange::Updated,
                alert,
            });
        }
        let st = sql!(
            "INSERT INTO alerts (rule_id, rule_title, level, tags, agent_id, host, host_key, \
             first_seen, last_seen, count, event_ids, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 'new', ?, ?) RETURNING {ALERT_COLS}",
            &d.rule_id,
            &d.rule_title,
            d.level.as_str(),
            Arg::Texts(d.tags.clone()),
            &d.agent_id,
            host,
            &host_key,
            d.ts,
            d.ts,
            Arg::Uuids(vec![d.event_id]),
            now,
            now
        );
        Ok(DetectionOutcome {
            change: AlertChange::Created,
            alert: self.one(On::Tx(tx), st, alert).await?,
        })
    }

    async fn bump_rule_tx(
        &self,
        tx: &mut Tx<D>,
        rule_id: &str,
        hits: i64,
        last_hit: i64,
        now: i64,
    ) -> Result<()> {
        let st = sql!(
            "INSERT INTO rule_state (rule_id, enabled, hit_count, last_hit, updated_at) \
             VALUES (?, TRUE, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET \
             hit_count = rule_state.hit_count + excluded.hit_count, \
             last_hit = GREATEST(COALESCE(rule_state.last_hit, excluded.last_hit), excluded.last_hit), \
             updated_at = excluded.updated_at",
            rule_id,
            hits,
            last_hit,
            now
        );
        self.exec(On::Tx(tx), st).await?;
        Ok(())
    }

    /// Changes a user's role and/or disabled state under the last-administrator guard. All
    /// such changes take one lock first (SQLite: the write transaction itself), so they run
    /// one after another and two concurrent demotions of the last two admins cannot both pass
    /// the count (row locks alone would not do: each would still count the other).
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
        let mut tx = self.0.begin().await?;
        D::lock(&mut tx, &[USERS_LOCK_KEY]).await?;
        let st = sql!("SELECT {USER_COLS} FROM users WHERE id = ? FOR UPDATE", id);
        let Some(current) = self.find(On::Tx(&mut tx), st, user).await? else {
            return Ok(None);
        };
        let new_role = role.unwrap_or(current.role);
        let new_disabled_at = match disabled {
            Some(true) => current.disabled_at.or(Some(now)),
            Some(false) => None,
            None => current.disabled_at,
        };
        if removes_admin(
            current.role,
            current.disabled_at.is_some(),
            new_role,
            new_disabled_at.is_some(),
        ) {
            let st = sql!(
                "SELECT count(*) AS n FROM users \
                 WHERE role = 'admin' AND disabled_at IS NULL AND id <> ?",
                id
            );
            if self.count(On::Tx(&mut tx), st).await? == 0 {
                return Err(last_admin_error(if new_disabled_at.is_some() {
                    "disable"
                } else {
                    "demote"
                }));
            }
        }
        let st = sql!(
            "UPDATE users SET role = ?, disabled_at = ?, updated_at = ? WHERE id = ? \
             RETURNING {USER_COLS}",
            new_role.as_str(),
            new_disabled_at,
            now,
            id
        );
        let changed = self.one(On::Tx(&mut tx), st, user).await?;
        if new_disabled_at.is_some() {
            let st = sql!("DELETE FROM sessions WHERE user_id = ?", id);
            self.exec(On::Tx(&mut tx), st).await?;
        }
        tx.commit().await?;
        Ok(Some(changed))
    }
}

#[async_trait]
impl<D: Driver> Store for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    // ------------------------------------------------------------ events

    async fn insert_events(&self, events: &[NewEvent]) -> Result<InsertReport> {
        if events.is_empty() {
            return Ok(InsertReport::default());
        }
        let mut tx = self.0.begin().await?;
        let inserted = D::insert_events(&mut tx, events).await?;
        self.note_hosts(&mut tx, events, &inserted).await?;
        tx.commit().await?;
        Ok(InsertReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
        })
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>> {
        let st = sql!("SELECT {EVENT_COLS} FROM events WHERE id = ?", id);
        self.find(On::Read, st, event).await
    }

    async fn search_events(&self, query: &EventQuery) -> Result<EventPage> {
        let limit = clamp_limit(query.limit);
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT e.id, e.ts, e.received_at, e.agent_id, e.doc FROM events e");
        event_filters(
            &mut b,
            ("e.ts", query.from, query.to),
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
        let mut events = self.list(On::Search, Stmt::built(b), event).await?;
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
        let col = if hq.received { "e.received_at" } else { "e.ts" };
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT (")
            .push(col)
            .push(" - ")
            .push_bind(Param::Int(hq.from))
            .push(") / ")
            .push_bind(Param::Int(hq.bucket_ms))
            .push(" AS b, count(*) AS n FROM events e");
        event_filters(
            &mut b,
            (col, Some(hq.from), Some(hq.to)),
            hq.agent_id.as_deref(),
            hq.query.as_deref(),
        )?;
        b.push(" GROUP BY b");
        let mut counts = vec![0u64; n];
        for row in self.all(On::Search, Stmt::built(b)).await? {
            let (i, c): (i64, i64) = (row.get("b")?, row.get("n")?);
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
                *slot = c.max(0) as u64;
            }
        }
        Ok(fill_histogram(hq, counts))
    }

    async fn count_events(&self, from: Option<i64>, to: Option<i64>) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM events e");
        event_filters(&mut b, ("e.ts", from, to), None, None)?;
        self.count(On::Read, Stmt::built(b)).await
    }

    async fn event_span(
        &self,
        agent_id: Option<&str>,
        query_text: Option<&str>,
        to: Option<i64>,
    ) -> Result<Option<(i64, i64)>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT min(e.ts) AS lo, max(e.ts) AS hi FROM events e");
        event_filters(&mut b, ("e.ts", None, to), agent_id, query_text)?;
        let row = self.one(On::Search, Stmt::built(b), |r| {
            Ok((r.get::<Option<i64>>("lo")?, r.get::<Option<i64>>("hi")?))
        });
        Ok(match row.await? {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        })
    }

    async fn scan_events(&self, scan: &EventScan) -> Result<Vec<StoredEvent>> {
        let col = match scan.order {
            ScanOrder::Time => "e.ts",
            ScanOrder::Received => "e.received_at",
        };
        let limit = scan.limit.clamp(1, MAX_SCAN_PAGE);
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT e.id, e.ts, e.received_at, e.agent_id, e.doc FROM events e");
        event_filters(&mut b, (col, scan.from, scan.before), None, None)?;
        if let Some((at, id)) = scan.after {
            // The leading `>=` keeps the walk on the time index; the OR breaks ties by id.
            b.push(" AND ")
                .push(col)
                .push(" >= ")
                .push_bind(Param::Int(at))
                .push(" AND (")
                .push(col)
                .push(" > ")
                .push_bind(Param::Int(at))
                .push(" OR e.id > ")
                .push_bind(Param::Uuid(id))
                .push(")");
        }
        b.push(" ORDER BY ")
            .push(col)
            .push(", e.id LIMIT ")
            .push_bind(Param::Int(i64::from(limit)));
        self.list(On::Search, Stmt::built(b), event).await
    }

    async fn count_received(&self, since: i64) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM events e");
        event_filters(&mut b, ("e.received_at", Some(since), None), None, None)?;
        self.count(On::Read, Stmt::built(b)).await
    }

    async fn create_saved_search(&self, s: &NewSavedSearch, owner: &str) -> Result<SavedSearch> {
        self.saved_search_insert(s, owner).await
    }

    async fn get_saved_search(&self, id: i64) -> Result<Option<SavedSearch>> {
        self.saved_search_get(id).await
    }

    async fn list_saved_searches(&self, visible_to: Option<&str>) -> Result<Vec<SavedSearch>> {
        self.saved_search_rows(visible_to).await
    }

    async fn update_saved_search(
        &self,
        id: i64,
        change: &SavedSearchChange,
    ) -> Result<Option<SavedSearch>> {
        self.saved_search_update(id, change).await
    }

    async fn delete_saved_search(&self, id: i64) -> Result<Option<SavedSearch>> {
        self.saved_search_delete(id).await
    }

    async fn mark_saved_search_run(&self, id: i64, at: i64) -> Result<bool> {
        self.saved_search_ran(id, at).await
    }

    // ------------------------------------------------------------ pipeline

    async fn store_batch(
        &self,
        events: &[NewEvent],
        detections: &[Detection],
        window: Duration,
    ) -> Result<BatchReport> {
        let window_ms = duration_ms(window);
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        let inserted = D::insert_events(&mut tx, events).await?;
        self.note_hosts(&mut tx, events, &inserted).await?;
        let (mut todo, skipped) = batch_detections(detections, &inserted);
        let suppressed = self.suppress(&mut tx, &mut todo, events, now).await?;
        let mut report = BatchReport {
            inserted: inserted.len(),
            duplicates: events.len() - inserted.len(),
            detections_recorded: todo.len(),
            detections_skipped: skipped,
            detections_suppressed: suppressed,
            ..BatchReport::default()
        };
        Self::lock_slots(&mut tx, &todo).await?;
        let mut alerts = BatchAlerts::default();
        let mut fold = AlertFold::default();
        for d in todo {
            validate_detection(d)?;
            if let Some(o) = fold.fold(d, window_ms, now) {
                alerts.add(o, d.ts);
                continue;
            }
            if let Some(changed) = fold.take_changed(d) {
                self.write_folded(&mut tx, &changed).await?;
            }
            let o = self.record_tx(&mut tx, d, window_ms, now).await?;
            fold.recorded(d, o.alert.clone());
            alerts.add(o, d.ts);
        }
        for changed in fold.into_changed() {
            self.write_folded(&mut tx, &changed).await?;
        }
        for (rule, hits, last) in alerts.rule_hits() {
            self.bump_rule_tx(&mut tx, rule, hits, last, now).await?;
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

    // ------------------------------------------------------------ alerts

    async fn record_detection(
        &self,
        detection: &Detection,
        window: Duration,
    ) -> Result<DetectionOutcome> {
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        Self::lock_slots(&mut tx, &[detection]).await?;
        let o = self
            .record_tx(&mut tx, detection, duration_ms(window), now)
            .await?;
        self.bump_rule_tx(&mut tx, &detection.rule_id, 1, detection.ts, now)
            .await?;
        tx.commit().await?;
        Ok(o)
    }

    async fn get_alert(&self, id: i64) -> Result<Option<Alert>> {
        let st = sql!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?", id);
        self.find(On::Read, st, alert).await
    }

    async fn list_alerts(&self, aq: &AlertQuery) -> Result<AlertPage> {
        let limit = clamp_limit(aq.limit);
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(ALERT_COLS)
            .push(" FROM alerts WHERE 1 = 1");
        alert_filters(&mut b, aq);
        alert_cursor(&mut b, aq)?;
        let col = alert_time_column(aq.time);
        b.push(" ORDER BY ")
            .push(col)
            .push(" DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit) + 1));
        let mut alerts = self.list(On::Read, Stmt::built(b), alert).await?;
        Ok(alert_page(&mut alerts, limit, aq.time))
    }

    async fn add_exception(&self, e: &NewException, created_by: &str) -> Result<AlertException> {
        self.exception_insert(e, created_by).await
    }

    async fn list_exceptions(&self) -> Result<Vec<AlertException>> {
        self.exception_rows().await
    }

    async fn delete_exception(&self, id: i64) -> Result<Option<AlertException>> {
        self.exception_delete(id).await
    }

    async fn create_incident(&self, n: &NewIncident, actor: &str) -> Result<Incident> {
        self.incident_create(n, actor).await
    }

    async fn list_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>> {
        self.incident_list(q).await
    }

    async fn get_incident(&self, id: i64) -> Result<Option<IncidentDetail>> {
        self.incident_detail(id).await
    }

    async fn update_incident(&self, id: i64, p: &IncidentPatch, actor: &str) -> Result<Incident> {
        self.incident_update(id, p, actor).await
    }

    async fn add_incident_alerts(&self, id: i64, alerts: &[i64], actor: &str) -> Result<Vec<i64>> {
        self.incident_add_alerts(id, alerts, actor).await
    }

    async fn remove_incident_alert(&self, id: i64, alert_id: i64, actor: &str) -> Result<bool> {
        self.incident_remove_alert(id, alert_id, actor).await
    }

    async fn add_incident_task(&self, id: i64, title: &str, actor: &str) -> Result<IncidentTask> {
        self.incident_add_task(id, title, actor).await
    }

    async fn set_incident_task(
        &self,
        id: i64,
        task_id: i64,
        done: bool,
        actor: &str,
    ) -> Result<IncidentTask> {
        self.incident_set_task(id, task_id, done, actor).await
    }

    async fn add_incident_note(&self, id: i64, body: &str, actor: &str) -> Result<IncidentNote> {
        self.incident_add_note(id, body, actor).await
    }

    async fn add_incident_observable(
        &self,
        id: i64,
        o: &NewObservable,
        actor: &str,
    ) -> Result<Observable> {
        self.incident_add_observable(id, o, actor).await
    }

    async fn remove_incident_observable(
        &self,
        id: i64,
        observable_id: i64,
        actor: &str,
    ) -> Result<Option<Observable>> {
        self.incident_remove_observable(id, observable_id, actor)
            .await
    }

    async fn incident_of_alert(&self, alert_id: i64) -> Result<Option<i64>> {
        self.incident_of(alert_id).await
    }

    async fn suggest_incidents(&self, since: i64) -> Result<Vec<IncidentSuggestion>> {
        self.incident_suggestions(since).await
    }

    async fn list_hosts(&self, hq: &HostQuery) -> Result<Vec<Host>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(HOST_COLS)
            .push(" FROM hosts h WHERE 1 = 1");
        if let Some(search) = hq.search.as_deref().map(host_key).filter(|s| !s.is_empty()) {
            b.push(" AND h.host_key LIKE ")
                .push_bind(Param::Text(contains_pattern(&search)))
                .push(" ESCAPE '!'");
        }
        b.push(" ORDER BY h.last_received DESC, h.host_key LIMIT ")
            .push_bind(Param::Int(i64::from(clamp_limit(hq.limit))));
        self.list(On::Read, Stmt::built(b), host).await
    }

    async fn get_host(&self, name: &str) -> Result<Option<Host>> {
        let st = sql!(
            "SELECT {HOST_COLS} FROM hosts h WHERE h.host_key = ?",
            host_key(name)
        );
        self.find(On::Read, st, host).await
    }

    async fn count_alerts(&self, aq: &AlertQuery) -> Result<u64> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT count(*) AS n FROM alerts WHERE 1 = 1");
        alert_filters(&mut b, aq);
        self.count(On::Read, Stmt::built(b)).await
    }

    async fn set_alert_status(
        &self,
        id: i64,
        to: AlertStatus,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Alert> {
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        let st = sql!("SELECT status FROM alerts WHERE id = ? FOR UPDATE", id);
        let status = |r: &DbRow<D>| parsed::<AlertStatus>(r, "status", "alert status");
        let Some(from) = self.find(On::Tx(&mut tx), st, status).await? else {
            return Err(StoreError::NotFound(format!("alert {id}")));
        };
        check_transition(id, from, to)?;
        let st = sql!(
            "UPDATE alerts SET status = ?, updated_at = ? WHERE id = ? AND status = ? \
             RETURNING {ALERT_COLS}",
            to.as_str(),
            now,
            id,
            from.as_str()
        );
        let changed = self.one(On::Tx(&mut tx), st, alert).await?;
        let st = sql!(
            "INSERT INTO alert_status_history (alert_id, actor, from_status, to_status, note, \
             changed_at) VALUES (?, ?, ?, ?, ?, ?)",
            id,
            actor,
            from.as_str(),
            to.as_str(),
            note,
            now
        );
        self.exec(On::Tx(&mut tx), st).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn assign_alert(&self, id: i64, assignee: Option<&str>) -> Result<Alert> {
        let st = sql!(
            "UPDATE alerts SET assignee = ?, updated_at = ? WHERE id = ? RETURNING {ALERT_COLS}",
            assignee,
            now_ms(),
            id
        );
        let found = self.find(On::Write, st, alert).await?;
        found.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))
    }

    async fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<Comment> {
        validate_comment(body)?;
        // The alert must exist: checked in the insert itself.
        let st = sql!(
            "INSERT INTO alert_comments (alert_id, author, body, created_at) \
             SELECT id, ?, ?, ? FROM alerts WHERE id = ? RETURNING {COMMENT_COLS}",
            author,
            body,
            now_ms(),
            alert_id
        );
        let found = self.find(On::Write, st, comment).await?;
        found.ok_or_else(|| StoreError::NotFound(format!("alert {alert_id}")))
    }

    async fn comments(&self, alert_id: i64) -> Result<Vec<Comment>> {
        let st = sql!(
            "SELECT {COMMENT_COLS} FROM alert_comments WHERE alert_id = ? ORDER BY id",
            alert_id
        );
        self.list(On::Read, st, comment).await
    }

    async fn status_history(&self, alert_id: i64) -> Result<Vec<StatusChange>> {
        let st = sql!(
            "SELECT {CHANGE_COLS} FROM alert_status_history WHERE alert_id = ? ORDER BY id",
            alert_id
        );
        self.list(On::Read, st, change).await
    }

    // ------------------------------------------------------------ rules

    async fn set_rule_enabled(&self, rule_id: &str, enabled: bool) -> Result<RuleState> {
        let st = sql!(
            "INSERT INTO rule_state (rule_id, enabled, hit_count, updated_at) VALUES (?, ?, 0, ?) \
             ON CONFLICT (rule_id) DO UPDATE SET enabled = excluded.enabled, \
             updated_at = excluded.updated_at RETURNING {RULE_COLS}",
            rule_id,
            enabled,
            now_ms()
        );
        self.one(On::Write, st, rule).await
    }

    async fn rule_state(&self, rule_id: &str) -> Result<Option<RuleState>> {
        let st = sql!(
            "SELECT {RULE_COLS} FROM rule_state WHERE rule_id = ?",
            rule_id
        );
        self.find(On::Read, st, rule).await
    }

    async fn list_rule_states(&self) -> Result<Vec<RuleState>> {
        let st = sql!("SELECT {RULE_COLS} FROM rule_state ORDER BY rule_id");
        self.list(On::Read, st, rule).await
    }

    // ------------------------------------------------------------ tokens

    async fn create_token(&self, t: &NewToken) -> Result<CreatedToken> {
        validate_token_name(&t.name)?;
        let (secret, hash) = token::generate(token::TOKEN_PREFIX)?;
        // The owner must exist (checked in the insert itself).
        let st = sql!(
            "INSERT INTO api_tokens (name, role, secret_hash, created_at, expires_at, user_id) \
             SELECT ?, ?, ?, ?, ?, ? \
             WHERE ? IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ?) RETURNING {TOKEN_COLS}",
            &t.name,
            t.role.as_str(),
            hash,
            now_ms(),
            t.expires_at,
            t.owner,
            t.owner,
            t.owner
        );
        match self.find(On::Write, st, token_info).await? {
            Some(info) => Ok(CreatedToken { info, secret }),
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
        let cols = qualified(TOKEN_COLS, "t", "");
        let st = sql!(
            "SELECT {cols}, u.role AS owner_role, u.disabled_at AS owner_disabled_at \
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?",
            hash
        );
        let Some(row) = self.first(On::Auth, st).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let info = token_info(&row)?;
        if !token_usable(&info, now) {
            return Ok(None);
        }
        let owner_role: Option<String> = row.get("owner_role")?;
        let owner_disabled: Option<i64> = row.get("owner_disabled_at")?;
        let Some(mut info) =
            effective_token(info, owner_role.as_deref(), owner_disabled.is_some())?
        else {
            return Ok(None);
        };
        if info
            .last_used_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_MS)
        {
            let st = sql!(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                now,
                info.id
            );
            self.exec(On::Auth, st).await?;
            info.last_used_at = Some(now);
        }
        Ok(Some(info))
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        let st = sql!(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            now_ms(),
            id
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let st = sql!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id");
        self.list(On::Read, st, token_info).await
    }

    async fn list_user_tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>> {
        let st = sql!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE user_id = ? ORDER BY id",
            user_id
        );
        self.list(On::Read, st, token_info).await
    }

    async fn revoke_user_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let st = sql!(
            "UPDATE api_tokens SET revoked_at = ? \
             WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
            now_ms(),
            token_id,
            user_id
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    // ------------------------------------------------------------ users

    async fn count_users(&self) -> Result<u64> {
        self.count(On::Read, sql!("SELECT count(*) AS n FROM users"))
            .await
    }

    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let (name, key) = validate_new_user(u)?;
        let now = now_ms();
        let st = sql!(
            "INSERT INTO users (username, username_key, password_hash, role, language, \
             created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (username_key) DO NOTHING RETURNING {USER_COLS}",
            &name,
            key,
            &u.password_hash,
            u.role.as_str(),
            &u.language,
            now,
            &u.created_by,
            now
        );
        let created = self.find(On::Write, st, user).await?;
        created.ok_or_else(|| StoreError::Conflict(format!("user {name}")))
    }

    async fn get_user(&self, id: i64) -> Result<Option<User>> {
        let st = sql!("SELECT {USER_COLS} FROM users WHERE id = ?", id);
        self.find(On::Auth, st, user).await
    }

    async fn find_user(&self, username: &str) -> Result<Option<(User, String)>> {
        let Ok((_, key)) = username_and_key(username) else {
            return Ok(None);
        };
        let st = sql!(
            "SELECT {USER_COLS}, password_hash FROM users WHERE username_key = ?",
            key
        );
        self.find(On::Auth, st, |r| Ok((user(r)?, r.get("password_hash")?)))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        // PostgreSQL's username_key is COLLATE "C": byte order, the same as SQLite's.
        let st = sql!("SELECT {USER_COLS} FROM users ORDER BY username_key, id");
        self.list(On::Read, st, user).await
    }

    async fn set_user_role(&self, id: i64, role: Role) -> Result<Option<User>> {
        self.change_user_guarded(id, Some(role), None).await
    }

    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<Option<User>> {
        validate_password_hash(password_hash)?;
        let mut tx = self.0.begin().await?;
        let st = sql!(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? RETURNING {USER_COLS}",
            password_hash,
            now_ms(),
            id
        );
        let Some(changed) = self.find(On::Tx(&mut tx), st, user).await? else {
            return Ok(None);
        };
        let st = sql!("DELETE FROM sessions WHERE user_id = ?", id);
        self.exec(On::Tx(&mut tx), st).await?;
        tx.commit().await?;
        Ok(Some(changed))
    }

    async fn set_user_language(&self, id: i64, language: Option<&str>) -> Result<Option<User>> {
        validate_language(language)?;
        let st = sql!(
            "UPDATE users SET language = ?, updated_at = ? WHERE id = ? RETURNING {USER_COLS}",
            language,
            now_ms(),
            id
        );
        self.find(On::Write, st, user).await
    }

    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<Option<User>> {
        self.change_user_guarded(id, None, Some(disabled)).await
    }

    async fn record_login(&self, id: i64, at: i64) -> Result<()> {
        let st = sql!("UPDATE users SET last_login_at = ? WHERE id = ?", at, id);
        self.exec(On::Write, st).await?;
        Ok(())
    }

    // ------------------------------------------------------------ web sessions

    async fn create_session(&self, s: &NewSession) -> Result<Session> {
        let (ip, user_agent) = validate_new_session(s)?;
        let now = now_ms();
        // One statement. On PostgreSQL, FOR SHARE waits for a concurrent disable (which holds
        // the row FOR UPDATE) and then re-checks `disabled_at`, so a session is never added
        // after the disable deleted them. (`WHERE TRUE`: SQLite's upsert after a SELECT.)
        let st = sql!(
            "WITH u AS (SELECT id FROM users WHERE id = ? AND disabled_at IS NULL FOR SHARE) \
             INSERT INTO sessions (user_id, secret_hash, csrf_token, created_at, expires_at, \
             last_seen_at, ip, user_agent) SELECT u.id, ?, ?, ?, ?, ?, ?, ? FROM u WHERE TRUE \
             ON CONFLICT (secret_hash) DO NOTHING RETURNING {SESSION_COLS}",
            s.user_id,
            s.secret_hash.as_slice(),
            &s.csrf_token,
            now,
            s.expires_at,
            now,
            ip,
            user_agent
        );
        if let Some(created) = self.find(On::Write, st, |r| session(r, "")).await? {
            return Ok(created);
        }
        // Nothing inserted: say why.
        let st = sql!("SELECT disabled_at FROM users WHERE id = ?", s.user_id);
        let disabled = self.find(On::Write, st, |r| r.get::<Option<i64>>("disabled_at"));
        Err(match disabled.await? {
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
        let (s_cols, u_cols) = (
            qualified(SESSION_COLS, "s", "s_"),
            qualified(USER_COLS, "u", ""),
        );
        let st = sql!(
            "SELECT {s_cols}, {u_cols} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
            secret_hash,
            now
        );
        let found = self.find(On::Auth, st, |r| Ok((session(r, "s_")?, user(r)?)));
        let Some((mut session, user)) = found.await? else {
            return Ok(None);
        };
        if now.saturating_sub(session.last_seen_at) >= TOUCH_MS {
            let st = sql!(
                "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?",
                now,
                session.id,
                now
            );
            self.exec(On::Auth, st).await?;
            session.last_seen_at = now;
        }
        Ok(Some((session, user)))
    }

    async fn delete_session(&self, secret_hash: &[u8]) -> Result<bool> {
        if !session_hash_shaped(secret_hash) {
            return Ok(false);
        }
        let st = sql!("DELETE FROM sessions WHERE secret_hash = ?", secret_hash);
        Ok(self.exec(On::Write, st).await? > 0)
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<u64> {
        let st = sql!("DELETE FROM sessions WHERE user_id = ?", user_id);
        self.exec(On::Write, st).await
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let st = sql!("DELETE FROM sessions WHERE expires_at <= ?", now);
        self.exec(On::Write, st).await
    }

    // ------------------------------------------------------------ enrollment tokens

    async fn create_enrollment_token(
        &self,
        t: &NewEnrollmentToken,
    ) -> Result<CreatedEnrollmentToken> {
        validate_new_enrollment_token(t)?;
        let (secret, hash) = token::generate(token::ENROLLMENT_TOKEN_PREFIX)?;
        let st = sql!(
            "INSERT INTO enrollment_tokens (name, secret_hash, created_at, created_by, \
             expires_at, max_uses, may_replace) VALUES (?, ?, ?, ?, ?, ?, ?) \
             RETURNING {ENROLL_COLS}",
            &t.name,
            hash,
            now_ms(),
            &t.created_by,
            t.expires_at,
            t.max_uses.map(i64::from),
            stored_may_replace(t)
        );
        let info = self.one(On::Write, st, enrollment).await?;
        Ok(CreatedEnrollmentToken { info, secret })
    }

    async fn redeem_enrollment_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<EnrollmentTokenInfo, EnrollmentRefusal>> {
        let Some(hash) = token::hash_presented(token::ENROLLMENT_TOKEN_PREFIX, secret) else {
            return Ok(Err(EnrollmentRefusal::Unknown));
        };
        let now = now_ms();
        // One statement: SQLite runs it on the single writer; on PostgreSQL a concurrent
        // redeem of the same token waits for our row lock and then re-checks the WHERE clause
        // against the updated row (READ COMMITTED). So `uses` never passes `max_uses`.
        let st = sql!(
            "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = ? \
             WHERE secret_hash = ? AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?) \
             AND (max_uses IS NULL OR uses < max_uses) RETURNING {ENROLL_COLS}",
            now,
            hash.as_slice(),
            now
        );
        if let Some(info) = self.find(On::Write, st, enrollment).await? {
            return Ok(Ok(info));
        }
        // Not updated: say why (uses only grow, so one that looks usable now was used up by
        // a concurrent redeem).
        Ok(Err(match self.enrollment_token_row(&hash).await? {
            None => EnrollmentRefusal::Unknown,
            Some(info) => enrollment_refusal_of(&info, now).unwrap_or(EnrollmentRefusal::UsedUp),
        }))
    }

    async fn check_enrollment_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<EnrollmentTokenInfo, EnrollmentRefusal>> {
        let Some(hash) = token::hash_presented(token::ENROLLMENT_TOKEN_PREFIX, secret) else {
            return Ok(Err(EnrollmentRefusal::Unknown));
        };
        Ok(match self.enrollment_token_row(&hash).await? {
            None => Err(EnrollmentRefusal::Unknown),
            Some(info) => match enrollment_refusal_of(&info, now_ms()) {
                Some(refusal) => Err(refusal),
                None => Ok(info),
            },
        })
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenInfo>> {
        let st = sql!("SELECT {ENROLL_COLS} FROM enrollment_tokens ORDER BY id");
        self.list(On::Read, st, enrollment).await
    }

    async fn revoke_enrollment_token(&self, id: i64) -> Result<bool> {
        let st = sql!(
            "UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            now_ms(),
            id
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    // ------------------------------------------------------------ agents

    async fn insert_agent(&self, a: &NewAgent) -> Result<Agent> {
        validate_agent_id(&a.id)?;
        validate_facts(&a.facts)?;
        let cert = cert_fingerprint(&a.cert_sha256)?;
        let now = now_ms();
        let st = sql!(
            "INSERT INTO agents (hostname, hostname_key, os_type, os_name, os_version, arch, \
             agent_version, ips, id, enrolled_at, enrolled_by, cert_sha256, cert_not_after, \
             last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING RETURNING {AGENT_COLS}"
        );
        let st = with_facts(st, &a.facts)
            .arg(&a.id)
            .arg(now)
            .arg(&a.enrolled_by)
            .arg(cert)
            .arg(a.cert_not_after)
            .arg(now);
        let created = self.find(On::Write, st, agent).await?;
        created.ok_or_else(|| StoreError::Conflict(format!("agent {}", a.id)))
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
        let st = sql!(
            "UPDATE agents SET {FACTS_SET}, cert_sha256 = ?, cert_not_after = ?, \
             reenrolled_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING {AGENT_COLS}"
        );
        let st = with_facts(st, facts)
            .arg(cert)
            .arg(cert_not_after)
            .arg(now_ms())
            .arg(id);
        self.find(On::Write, st, agent).await
    }

    async fn get_agent(&self, id: &str) -> Result<Option<Agent>> {
        let st = sql!("SELECT {AGENT_COLS} FROM agents WHERE id = ?", id);
        self.find(On::Read, st, agent).await
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        // PostgreSQL's three columns are COLLATE "C": byte order, the same as SQLite's.
        let st = sql!("SELECT {AGENT_COLS} FROM agents ORDER BY hostname_key, hostname, id");
        self.list(On::Read, st, agent).await
    }

    async fn agents_with_hostname(&self, hostname: &str) -> Result<Vec<Agent>> {
        let st = sql!(
            "SELECT {AGENT_COLS} FROM agents WHERE hostname_key = ? AND revoked_at IS NULL \
             ORDER BY enrolled_at, id",
            hostname_key(hostname)
        );
        self.list(On::Read, st, agent).await
    }

    async fn record_heartbeat(&self, id: &str, hb: &AgentHeartbeat) -> Result<Option<Agent>> {
        validate_facts(&hb.facts)?;
        validate_health(&hb.health)?;
        let doc = (!hb.doc.is_null()).then(|| hb.doc.clone());
        // The row as it was before the update, locked until the commit.
        let mut tx = self.0.begin().await?;
        let st = sql!(
            "SELECT {AGENT_COLS} FROM agents WHERE id = ? AND revoked_at IS NULL FOR UPDATE",
            id
        );
        let Some(before) = self.find(On::Tx(&mut tx), st, agent).await? else {
            return Ok(None);
        };
        let st = sql!(
            "UPDATE agents SET {FACTS_SET}, health = ?, last_heartbeat = ?, \
             last_seen = GREATEST(last_seen, ?), offline_since = NULL WHERE id = ?"
        );
        let st = with_facts(st, &hb.facts)
            .arg(json(Value::from(hb.health.clone())))
            .arg(Arg::Json(doc))
            .arg(hb.at)
            .arg(id);
        self.exec(On::Tx(&mut tx), st).await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    async fn touch_agent(&self, id: &str, at: i64) -> Result<()> {
        let st = sql!(
            "UPDATE agents SET last_seen = GREATEST(last_seen, ?), offline_since = NULL \
             WHERE id = ? AND revoked_at IS NULL AND (last_seen < ? OR offline_since IS NOT NULL)",
            at,
            id,
            at
        );
        self.exec(On::Write, st).await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: &str, actor: &str) -> Result<bool> {
        let st = sql!(
            "UPDATE agents SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
            now_ms(),
            actor,
            id
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    async fn mark_agents_offline(&self, silent_before: i64) -> Result<Vec<Agent>> {
        // One statement. PostgreSQL locks the candidates in id order (no deadlocks between
        // sweeps) and skips rows another transaction holds (a concurrent sweep marks them; a
        // heartbeat makes them live); FOR UPDATE re-checks the conditions on the newest row
        // version. SQLite runs it on the single writer. So an agent is marked, and returned,
        // by exactly one caller.
        let st = sql!(
            "UPDATE agents SET offline_since = ? WHERE id IN (SELECT id FROM agents \
               WHERE revoked_at IS NULL AND offline_since IS NULL AND last_seen < ? \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             AND offline_since IS NULL RETURNING {AGENT_COLS}",
            now_ms(),
            silent_before
        );
        let mut agents = self.list(On::Write, st, agent).await?;
        sort_agents(&mut agents);
        Ok(agents)
    }

    // ------------------------------------------------------------ agent commands

    async fn create_command(&self, c: &NewAgentCommand) -> Result<AgentCommand> {
        validate_new_command(c)?;
        // The agent must exist and be unrevoked in the same statement; on PostgreSQL FOR
        // SHARE holds off a concurrent revocation until the command is in.
        let st = sql!(
            "INSERT INTO agent_commands (id, agent_id, kind, args, status, requested_by, \
             created_at) SELECT ?, id, ?, ?, 'pending', ?, ? FROM agents \
             WHERE id = ? AND revoked_at IS NULL FOR SHARE RETURNING {COMMAND_COLS}",
            Uuid::now_v7().to_string(),
            &c.kind,
            json(c.args.clone()),
            &c.requested_by,
            now_ms(),
            &c.agent_id
        );
        let created = self.find(On::Write, st, command).await?;
        created.ok_or_else(|| StoreError::NotFound(format!("unrevoked agent {}", c.agent_id)))
    }

    async fn list_agent_commands(&self, agent_id: &str, limit: u32) -> Result<Vec<AgentCommand>> {
        let st = sql!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE agent_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?",
            agent_id,
            i64::from(clamp_limit(limit))
        );
        self.list(On::Read, st, command).await
    }

    async fn get_command(&self, id: Uuid) -> Result<Option<AgentCommand>> {
        let st = sql!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE id = ?",
            id.to_string()
        );
        self.find(On::Read, st, command).await
    }

    async fn count_open_commands(&self, agent_id: &str) -> Result<u64> {
        let st = sql!(
            "SELECT count(*) AS n FROM agent_commands \
             WHERE agent_id = ? AND status IN ('pending', 'delivered')",
            agent_id
        );
        self.count(On::Read, st).await
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
        // SQLite: one write transaction on the single writer. PostgreSQL: rows another
        // transaction holds are skipped (a concurrent take hands them out); FOR UPDATE
        // re-checks the conditions on the newest row version, and the UPDATEs repeat them. So
        // a command is handed out (or expired) by exactly one caller.
        let mut tx = self.0.begin().await?;
        let st = sql!(
            "UPDATE agent_commands SET status = 'expired', finished_at = ? \
             WHERE id IN (SELECT id FROM agent_commands WHERE agent_id = ? \
               AND status = 'delivered' AND delivered_at <= ? AND attempts >= ? \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             AND status = 'delivered'",
            now,
            agent_id,
            due,
            max_attempts
        );
        self.exec(On::Tx(&mut tx), st).await?;
        let st = sql!(
            "UPDATE agent_commands SET status = 'delivered', delivered_at = ?, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM agent_commands WHERE agent_id = ? AND (status = 'pending' \
               OR (status = 'delivered' AND delivered_at <= ? AND attempts < ?)) \
               ORDER BY id FOR UPDATE SKIP LOCKED) \
             AND status IN ('pending', 'delivered') RETURNING {COMMAND_COLS}",
            now,
            agent_id,
            due,
            max_attempts
        );
        let mut commands = self.list(On::Tx(&mut tx), st, command).await?;
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
        let result = result.filter(|r| !r.is_null()).cloned();
        // One statement: a concurrent second finish waits for the row, then sees it done.
        let st = sql!(
            "UPDATE agent_commands SET status = ?, result = ?, error = ?, finished_at = ? \
             WHERE id = ? AND agent_id = ? AND status NOT IN ('done', 'failed') \
             RETURNING {COMMAND_COLS}",
            status.as_str(),
            Arg::Json(result),
            error,
            now_ms(),
            id.to_string(),
            agent_id
        );
        if let Some(c) = self.find(On::Write, st, command).await? {
            return Ok(CommandFinish::Recorded(c));
        }
        // Read on the writer: what the statement above saw, not a reader's older snapshot.
        let st = sql!(
            "SELECT {COMMAND_COLS} FROM agent_commands WHERE id = ? AND agent_id = ?",
            id.to_string(),
            agent_id
        );
        let found = self.find(On::Write, st, command).await?;
        Ok(found.map_or(CommandFinish::Unknown, CommandFinish::AlreadyFinished))
    }

    // ------------------------------------------------------------ playbooks

    async fn put_playbook(&self, p: &StoredPlaybook) -> Result<StoredPlaybook> {
        self.put_playbook_row(p).await
    }

    async fn get_playbook(&self, name: &str) -> Result<Option<StoredPlaybook>> {
        self.playbook_row(name).await
    }

    async fn list_playbooks(&self) -> Result<Vec<StoredPlaybook>> {
        self.playbook_rows().await
    }

    async fn set_playbook_enabled(
        &self,
        name: &str,
        enabled: bool,
        by: &str,
    ) -> Result<Option<StoredPlaybook>> {
        self.playbook_enabled(name, enabled, by).await
    }

    async fn delete_playbook(&self, name: &str) -> Result<bool> {
        self.playbook_delete(name).await
    }

    async fn create_playbook_run(&self, r: &NewPlaybookRun) -> Result<PlaybookRun> {
        self.run_insert(r).await
    }

    async fn add_playbook_step(
        &self,
        run_id: &str,
        seq: u32,
        status: &str,
        record: &Value,
    ) -> Result<()> {
        self.step_insert(run_id, seq, status, record).await
    }

    async fn finish_playbook_run(
        &self,
        run_id: &str,
        status: PlaybookRunStatus,
        error: Option<&str>,
    ) -> Result<Option<PlaybookRun>> {
        self.run_finish(run_id, status, error).await
    }

    async fn interrupt_playbook_runs(&self, why: &str) -> Result<u64> {
        self.runs_interrupt(why).await
    }

    async fn get_playbook_run(&self, id: &str) -> Result<Option<PlaybookRun>> {
        self.run_row(id).await
    }

    async fn list_playbook_runs(&self, q: &PlaybookRunQuery) -> Result<Vec<PlaybookRun>> {
        self.run_rows(q).await
    }

    async fn playbook_steps(&self, run_id: &str) -> Result<Vec<PlaybookStep>> {
        self.step_rows(run_id).await
    }

    async fn create_approval(&self, a: &NewApproval) -> Result<Approval> {
        self.approval_insert(a).await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<Approval>> {
        self.approval_row(id).await
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        self.approval_rows(status, limit).await
    }

    async fn run_approvals(&self, run_id: &str) -> Result<Vec<Approval>> {
        self.run_approval_rows(run_id).await
    }

    async fn decide_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<ApprovalDecisionOutcome> {
        self.approval_decide(id, status, by, comment).await
    }

    async fn expire_approvals(&self, now: i64) -> Result<Vec<Approval>> {
        self.approvals_expire(now).await
    }

    async fn claim_approvals_to_notify(&self, now: i64) -> Result<Vec<Approval>> {
        self.approvals_to_notify(now).await
    }

    async fn set_approval_command(&self, id: &str, command_id: Uuid) -> Result<()> {
        self.approval_command(id, command_id).await
    }

    // ------------------------------------------------------------ threat intel

    async fn upsert_iocs(
        &self,
        source: &str,
        iocs: &[NewIoc],
        now: i64,
    ) -> Result<IocUpsertReport> {
        self.iocs_upsert(source, iocs, now).await
    }

    async fn get_ioc(&self, id: i64) -> Result<Option<StoredIoc>> {
        self.ioc_row(id).await
    }

    async fn find_ioc(&self, kind: &str, value: &str) -> Result<Option<StoredIoc>> {
        self.ioc_by_value(kind, value).await
    }

    async fn list_iocs(&self, q: &IocQuery) -> Result<Vec<StoredIoc>> {
        self.ioc_rows(q).await
    }

    async fn count_iocs(&self, q: &IocQuery) -> Result<u64> {
        self.ioc_count(q).await
    }

    async fn set_ioc_enabled(&self, id: i64, enabled: bool, now: i64) -> Result<Option<StoredIoc>> {
        self.ioc_enabled(id, enabled, now).await
    }

    async fn delete_ioc(&self, id: i64) -> Result<bool> {
        self.ioc_delete(id).await
    }

    async fn set_ioc_warninglists(&self, hits: &[(i64, Vec<String>)]) -> Result<()> {
        self.ioc_warninglists(hits).await
    }

    async fn count_expired_iocs(&self, source: &str, after: i64, until: i64) -> Result<u64> {
        self.iocs_expired(source, after, until).await
    }

    async fn put_intel_source(&self, s: &IntelSource) -> Result<IntelSource> {
        self.intel_source_put(s).await
    }

    async fn get_intel_source(&self, name: &str) -> Result<Option<IntelSource>> {
        self.intel_source_row(name).await
    }

    async fn list_intel_sources(&self) -> Result<Vec<IntelSource>> {
        self.intel_source_rows().await
    }

    async fn delete_intel_source(&self, name: &str) -> Result<bool> {
        self.intel_source_delete(name).await
    }

    async fn record_intel_sync(
        &self,
        name: &str,
        status: &IntelSyncStatus,
        cursor: Option<&str>,
    ) -> Result<bool> {
        self.intel_sync(name, status, cursor).await
    }

    async fn record_intel_matches(&self, matches: &[NewIntelMatch], now: i64) -> Result<Vec<bool>> {
        self.matches_record(matches, now).await
    }

    async fn list_intel_matches(&self, q: &IntelMatchQuery) -> Result<Vec<IntelMatch>> {
        self.match_rows(q).await
    }

    async fn pending_sightings(&self, limit: u32) -> Result<Vec<IntelMatch>> {
        self.sightings_pending(limit).await
    }

    async fn set_sighting_status(&self, ids: &[i64], status: &str) -> Result<()> {
        self.sightings_set(ids, status).await
    }

    async fn requeue_failed_sightings(&self, since: i64) -> Result<u64> {
        self.sightings_requeue(since).await
    }

    async fn record_vuln_scan(
        &self,
        scan: &NewVulnScan,
        results: &[NewVulnResult],
        now: i64,
    ) -> Result<VulnScanReport> {
        self.vuln_record(scan, results, now).await
    }

    async fn get_vuln(&self, id: i64) -> Result<Option<StoredVuln>> {
        self.vuln_row(id).await
    }

    async fn get_vulns(&self, ids: &[i64]) -> Result<Vec<StoredVuln>> {
        self.vuln_rows_by_id(ids).await
    }

    async fn list_vulns(&self, q: &VulnQuery) -> Result<Vec<StoredVuln>> {
        self.vuln_rows(q).await
    }

    async fn count_vulns(&self, q: &VulnQuery) -> Result<u64> {
        self.vuln_count(q).await
    }

    async fn vuln_summary(&self, q: &VulnQuery, top: u32) -> Result<VulnSummary> {
        self.vuln_summary_of(q, top).await
    }

    async fn list_vuln_scans(&self, source: Option<&str>, limit: u32) -> Result<Vec<VulnScan>> {
        self.vuln_scan_rows(source, limit).await
    }

    async fn set_vuln_status(
        &self,
        id: i64,
        request: &VulnStatusRequest,
        by: &str,
        now: i64,
    ) -> Result<Option<StoredVuln>> {
        self.vuln_set_status(id, request, by, now).await
    }

    async fn expire_vuln_acceptances(&self, now: i64) -> Result<Vec<i64>> {
        self.vuln_expire_acceptances(now).await
    }

    async fn put_agent_inventory(&self, inventory: &AgentInventory) -> Result<()> {
        self.inventory_put(inventory).await
    }

    async fn get_agent_inventory(&self, agent_id: &str) -> Result<Option<AgentInventory>> {
        self.inventory_row(agent_id).await
    }

    async fn list_agent_inventories(&self) -> Result<Vec<(String, String, i64)>> {
        self.inventory_agents().await
    }

    async fn put_vuln_scan_job(&self, job: &VulnScanJob) -> Result<VulnScanJob> {
        self.scan_job_put(job).await
    }

    async fn get_vuln_scan_job(&self, name: &str) -> Result<Option<VulnScanJob>> {
        self.scan_job_row(name).await
    }

    async fn list_vuln_scan_jobs(&self) -> Result<Vec<VulnScanJob>> {
        self.scan_job_rows().await
    }

    async fn delete_vuln_scan_job(&self, name: &str) -> Result<bool> {
        self.scan_job_delete(name).await
    }

    async fn set_vuln_scan_job_state(&self, name: &str, state: &serde_json::Value) -> Result<bool> {
        self.scan_job_state(name, state).await
    }

    // ------------------------------------------------------------ audit

    async fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let details = if e.details.is_null() {
            Value::Object(Default::default())
        } else {
            e.details.clone()
        };
        let st = sql!(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?) \
             RETURNING {AUDIT_COLS}",
            now_ms(),
            &e.actor,
            &e.action,
            &e.target,
            json(details)
        );
        self.one(On::Write, st, audit).await
    }

    async fn list_audit(&self, aq: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(AUDIT_COLS)
            .push(" FROM audit_log WHERE 1 = 1");
        audit_filters(&mut b, aq);
        self.list(On::Read, Stmt::built(b), audit).await
    }

    // ------------------------------------------------------------ samples

    async fn record_sample(&self, s: &NewSample) -> Result<(Sample, bool)> {
        let (key, size) = validate_new_sample(s)?;
        let st = sql!(
            "INSERT INTO samples (sha256, size, first_seen, last_seen, uploads, first_agent_id, \
             last_agent_id, last_path) VALUES (?, ?, ?, ?, 1, ?, ?, ?) \
             ON CONFLICT (sha256) DO UPDATE SET \
             last_seen = GREATEST(samples.last_seen, excluded.last_seen), \
             uploads = samples.uploads + 1, last_agent_id = excluded.last_agent_id, \
             last_path = excluded.last_path RETURNING {SAMPLE_COLS}",
            key,
            size,
            s.at,
            s.at,
            &s.agent_id,
            &s.agent_id,
            &s.path
        );
        let stored = self.one(On::Write, st, sample).await?;
        let first = stored.uploads == 1;
        Ok((stored, first))
    }

    async fn set_sample_verdict(&self, sha256: &str, verdict: &Value, at: i64) -> Result<bool> {
        let key = sample_key(sha256)?;
        let st = sql!(
            "UPDATE samples SET last_verdict = ?, verdict_at = ? WHERE sha256 = ?",
            json(verdict.clone()),
            at,
            key
        );
        Ok(self.exec(On::Write, st).await? > 0)
    }

    async fn get_sample(&self, sha256: &str) -> Result<Option<Sample>> {
        if !is_sha256_hex(sha256) {
            return Ok(None);
        }
        let st = sql!(
            "SELECT {SAMPLE_COLS} FROM samples WHERE sha256 = ?",
            sha256.to_ascii_lowercase()
        );
        self.find(On::Read, st, sample).await
    }

    async fn list_samples(&self, q: &SampleQuery) -> Result<Vec<Sample>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        list_query(&mut b, q);
        self.list(On::Read, Stmt::built(b), sample).await
    }

    // ------------------------------------------------------------ retention, stats

    async fn purge_before(&self, cutoff: i64) -> Result<PurgeReport> {
        let (key, chunk) = (D::EVENT_KEY, D::PURGE_CHUNK);
        let events = || {
            sql!(
                "DELETE FROM events WHERE {key} IN \
                 (SELECT {key} FROM events WHERE received_at < ? LIMIT ?)",
                cutoff,
                chunk
            )
        };
        let alerts = || {
            sql!(
                "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                 WHERE status IN ('resolved', 'false_positive') AND last_seen < ? LIMIT ?)",
                cutoff,
                chunk
            )
        };
        let report = PurgeReport {
            events: self.delete_chunked(events).await?,
            alerts: self.delete_chunked(alerts).await?,
        };
        if report.events + report.alerts > 0 {
            self.0.after_purge().await?;
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
        let total = self
            .count(On::Read, sql!("SELECT count(*) AS n FROM events"))
            .await?;
        let mut stats = StoreStats::empty(total);
        let st = sql!("SELECT status AS k, count(*) AS n FROM alerts GROUP BY status");
        let by_status = self.list(On::Read, st, key_count).await?;
        let st = sql!(
            "SELECT level AS k, count(*) AS n FROM alerts \
             WHERE status IN ('new', 'acknowledged') GROUP BY level"
        );
        let by_level = self.list(On::Read, st, key_count).await?;
        fill_stats(&mut stats, by_status, by_level)?;
        Ok(stats)
    }

    async fn close(&self) {
        self.0.close().await;
    }
}
