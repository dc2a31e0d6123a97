//! One behavioural suite, run against SQLite (always) and PostgreSQL (when
//! `DOZOR_TEST_POSTGRES_URL` is set).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

const WINDOW: Duration = Duration::from_secs(10 * 60);

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::common::sqlite().await;
                    crate::common::run(h, crate::scenarios::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = crate::common::postgres().await else {
                        eprintln!("skipped: {} not set", crate::common::PG_ENV);
                        return;
                    };
                    crate::common::run(h, crate::scenarios::$name).await;
                }
            )*
        }
    };
}

suite!(
    idempotent_inserts,
    batch_redelivery_does_not_double_count,
    concurrent_redelivery_counts_once,
    batch_is_atomic,
    alert_aggregation_window,
    alert_event_ids_are_bounded,
    alert_workflow_history_comments,
    alert_listing_filters_and_pages,
    rule_state,
    tokens,
    audit_log_is_append_only,
    query_language,
    query_errors_carry_position,
    injection_attempts_are_harmless,
    pagination_cursor_is_stable,
    retention_purge,
    histogram_and_stats,
    odd_documents,
    enrollment_tokens,
    enrollment_token_concurrent_redeem,
    agents_registry,
    agent_heartbeats_and_offline,
    agents_concurrent_offline_sweep,
    agent_commands_delivery,
    agent_commands_finish,
    agent_commands_concurrent_take,
    users_accounts,
    users_last_admin,
    users_concurrent_demotion,
    sessions,
    session_last_seen_throttled,
    token_owners,
);

mod scenarios {
    use super::*;

    type S = Arc<dyn Store>;

    async fn ids(s: &S, q: &str) -> HashSet<Uuid> {
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

    pub async fn idempotent_inserts(s: S, _raw: Raw) {
        let mut batch: Vec<NewEvent> = (0..50)
            .map(|i| {
                ev(
                    T0 + i,
                    Some("a1"),
                    json!({"event": {"kind": "event"}, "n": i}),
                )
            })
            .collect();
        batch[49].id = batch[3].id; // a duplicate inside the batch
        let r = s.insert_events(&batch).await.unwrap();
        assert_eq!(
            r,
            InsertReport {
                inserted: 49,
                duplicates: 1
            }
        );
        let r = s.insert_events(&batch).await.unwrap();
        assert_eq!(
            r,
            InsertReport {
                inserted: 0,
                duplicates: 50
            }
        );
        assert_eq!(s.count_events(None, None).await.unwrap(), 49);
        assert_eq!(s.insert_events(&[]).await.unwrap(), InsertReport::default());

        let got = s.get_event(batch[7].id).await.unwrap().unwrap();
        assert_eq!(got.doc, batch[7].doc);
        assert_eq!(
            (got.ts, got.received_at),
            (batch[7].ts, batch[7].received_at)
        );
        assert_eq!(got.agent_id.as_deref(), Some("a1"));
        // the first copy wins
        assert_eq!(s.get_event(batch[3].id).await.unwrap().unwrap().doc["n"], 3);
        assert!(s.get_event(Uuid::now_v7()).await.unwrap().is_none());
        assert_eq!(
            s.count_events(Some(T0 + 10), Some(T0 + 20)).await.unwrap(),
            10
        );
    }

    pub async fn batch_redelivery_does_not_double_count(s: S, _raw: Raw) {
        let e1 = ev(T0, Some("a1"), json!({"n": 1}));
        let e2 = ev(T0 + MIN, Some("a1"), json!({"n": 2}));
        let e3 = ev(T0 + 2 * MIN, Some("a2"), json!({"n": 3}));
        let events = vec![e1.clone(), e2.clone(), e3.clone()];
        let dets = vec![
            det("r1", Some("a1"), &e1),
            det("r1", Some("a1"), &e2),
            det("r2", Some("a2"), &e3),
            det("r1", Some("a1"), &e1), // the same pair twice in one batch counts once
            det("r3", Some("a9"), &ev(T0, None, json!({}))), // event not in the batch
        ];
        let r = s.store_batch(&events, &dets, WINDOW).await.unwrap();
        assert_eq!((r.inserted, r.duplicates), (3, 0));
        assert_eq!((r.detections_recorded, r.detections_skipped), (3, 2));
        assert_eq!((r.alerts_created, r.alerts_updated), (2, 0));
        assert_eq!(r.alerts.len(), 2);
        let r1 = r.alerts.iter().find(|o| o.alert.rule_id == "r1").unwrap();
        assert_eq!(r1.change, AlertChange::Created);
        assert_eq!(r1.alert.count, 2);
        assert_eq!(r1.alert.event_ids, vec![e1.id, e2.id]);
        assert_eq!((r1.alert.first_seen, r1.alert.last_seen), (T0, T0 + MIN));

        // The bus redelivers the same batch (e.g. the ack was lost): nothing changes.
        let again = s.store_batch(&events, &dets, WINDOW).await.unwrap();
        assert_eq!((again.inserted, again.duplicates), (0, 3));
        assert_eq!(
            (again.detections_recorded, again.detections_skipped),
            (0, 5)
        );
        assert!(again.alerts.is_empty());
        let page = s.list_alerts(&AlertQuery::default()).await.unwrap();
        assert_eq!(page.alerts.len(), 2);
        let a = page.alerts.iter().find(|a| a.rule_id == "r1").unwrap();
        assert_eq!(a.count, 2);
        assert_eq!(s.rule_state("r1").await.unwrap().unwrap().hit_count, 2);
        assert_eq!(s.rule_state("r2").await.unwrap().unwrap().hit_count, 1);
        assert!(s.rule_state("r3").await.unwrap().is_none());

        // A batch overlapping the old one: only the new event's detection counts.
        let e4 = ev(T0 + 3 * MIN, Some("a2"), json!({"n": 4}));
        let r = s
            .store_batch(
                &[e3.clone(), e4.clone()],
                &[det("r2", Some("a2"), &e3), det("r2", Some("a2"), &e4)],
                WINDOW,
            )
            .await
            .unwrap();
        assert_eq!((r.inserted, r.duplicates), (1, 1));
        assert_eq!((r.detections_recorded, r.detections_skipped), (1, 1));
        assert_eq!((r.alerts_created, r.alerts_updated), (0, 1));
        assert_eq!(r.alerts[0].change, AlertChange::Updated);
        assert_eq!(r.alerts[0].alert.count, 2);
        let st = s.rule_state("r2").await.unwrap().unwrap();
        assert_eq!((st.hit_count, st.last_hit), (2, Some(T0 + 3 * MIN)));
        assert_eq!(s.count_events(None, None).await.unwrap(), 4);
    }

    pub async fn concurrent_redelivery_counts_once(s: S, _raw: Raw) {
        // Two workers get the same batch at once (a redelivery racing the original).
        let events: Vec<NewEvent> = (0..200)
            .map(|i| ev(T0 + i * 1000, Some("a1"), json!({"i": i})))
            .collect();
        let dets: Vec<Detection> = events.iter().map(|e| det("r1", Some("a1"), e)).collect();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (s, events, dets) = (s.clone(), events.clone(), dets.clone());
            tasks.push(tokio::spawn(async move {
                s.store_batch(&events, &dets, WINDOW).await.unwrap()
            }));
        }
        let mut inserted = 0;
        let mut recorded = 0;
        for t in tasks {
            let r = t.await.unwrap();
            inserted += r.inserted;
            recorded += r.detections_recorded;
        }
        assert_eq!((inserted, recorded), (200, 200));
        let page = s.list_alerts(&AlertQuery::default()).await.unwrap();
        assert_eq!(page.alerts.len(), 1, "{:?}", page.alerts);
        assert_eq!(page.alerts[0].count, 200);
        assert_eq!(s.rule_state("r1").await.unwrap().unwrap().hit_count, 200);
    }

    pub async fn batch_is_atomic(s: S, _raw: Raw) {
        let e1 = ev(T0, Some("a1"), json!({"n": 1}));
        let e2 = ev(T0 + 1, Some("a1"), json!({"n": 2}));
        let good = det("r1", Some("a1"), &e1);
        let mut bad = det("r2", Some("a1"), &e2);
        bad.rule_id = " ".into();
        // the bad detection is processed after e1/e2 and r1 were written in the transaction
        let err = s
            .store_batch(&[e1.clone(), e2.clone()], &[good.clone(), bad], WINDOW)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
        assert_eq!(s.count_events(None, None).await.unwrap(), 0);
        assert!(
            s.list_alerts(&AlertQuery::default())
                .await
                .unwrap()
                .alerts
                .is_empty()
        );
        assert!(s.rule_state("r1").await.unwrap().is_none());
        // the corrected batch goes through in full
        let r = s.store_batch(&[e1, e2], &[good], WINDOW).await.unwrap();
        assert_eq!((r.inserted, r.alerts_created), (2, 1));
    }

    pub async fn alert_aggregation_window(s: S, _raw: Raw) {
        let rec = |d: Detection| {
            let s = s.clone();
            async move { s.record_detection(&d, WINDOW).await.unwrap() }
        };
        let a = rec(det_at("r", Some("h1"), T0)).await;
        assert_eq!(a.change, AlertChange::Created);
        assert_eq!((a.alert.count, a.alert.status), (1, AlertStatus::New));
        let id1 = a.alert.id;

        // 5 min later: folded
        let b = rec(det_at("r", Some("h1"), T0 + 5 * MIN)).await;
        assert_eq!(
            (b.change, b.alert.id, b.alert.count),
            (AlertChange::Updated, id1, 2)
        );
        assert_eq!((b.alert.first_seen, b.alert.last_seen), (T0, T0 + 5 * MIN));
        // out of order but within the window before first_seen: folded, first_seen moves back
        let c = rec(det_at("r", Some("h1"), T0 - 3 * MIN)).await;
        assert_eq!(
            (c.alert.id, c.alert.count, c.alert.first_seen),
            (id1, 3, T0 - 3 * MIN)
        );
        assert_eq!(c.alert.last_seen, T0 + 5 * MIN);
        // exactly on the edge (last_seen + window): folded
        let d = rec(det_at("r", Some("h1"), T0 + 15 * MIN)).await;
        assert_eq!(d.alert.id, id1);
        // beyond the window: a new alert
        let e = rec(det_at("r", Some("h1"), T0 + 26 * MIN)).await;
        assert_eq!(e.change, AlertChange::Created);
        let id2 = e.alert.id;
        assert_ne!(id2, id1);
        // a detection between both windows joins the latest alert
        let f = rec(det_at("r", Some("h1"), T0 + 20 * MIN)).await;
        assert_eq!(f.alert.id, id2);
        // other agent / other rule / no agent: separate alerts; no agent folds with no agent
        let g = rec(det_at("r", Some("h2"), T0 + 26 * MIN)).await;
        let h = rec(det_at("other", Some("h1"), T0 + 26 * MIN)).await;
        let i = rec(det_at("r", None, T0 + 26 * MIN)).await;
        let j = rec(det_at("r", None, T0 + 27 * MIN)).await;
        assert_eq!(g.change, AlertChange::Created);
        assert_eq!(h.change, AlertChange::Created);
        assert_eq!(i.change, AlertChange::Created);
        assert_eq!((j.change, j.alert.id), (AlertChange::Updated, i.alert.id));
        assert!(j.alert.agent_id.is_none());
        // acknowledged is still open
        s.set_alert_status(id2, AlertStatus::Acknowledged, "ann", None)
            .await
            .unwrap();
        let k = rec(det_at("r", Some("h1"), T0 + 30 * MIN)).await;
        assert_eq!((k.change, k.alert.id), (AlertChange::Updated, id2));
        assert_eq!(k.alert.status, AlertStatus::Acknowledged);
        // resolved is closed: repeats open a new alert
        s.set_alert_status(id2, AlertStatus::Resolved, "ann", Some("fixed"))
            .await
            .unwrap();
        let l = rec(det_at("r", Some("h1"), T0 + 31 * MIN)).await;
        assert_eq!(l.change, AlertChange::Created);
        assert_eq!(s.get_alert(id2).await.unwrap().unwrap().count, 3);
        // the rule state counts every detection
        let st = s.rule_state("r").await.unwrap().unwrap();
        assert_eq!((st.hit_count, st.last_hit), (11, Some(T0 + 31 * MIN)));
    }

    pub async fn alert_event_ids_are_bounded(s: S, _raw: Raw) {
        let events: Vec<NewEvent> = (0..(MAX_ALERT_EVENT_IDS as i64 + 7))
            .map(|i| ev(T0 + i, Some("a"), json!({"i": i})))
            .collect();
        let dets: Vec<Detection> = events.iter().map(|e| det("r", Some("a"), e)).collect();
        let r = s.store_batch(&events, &dets, WINDOW).await.unwrap();
        assert_eq!(r.alerts.len(), 1);
        let a = &r.alerts[0].alert;
        assert_eq!(a.count, MAX_ALERT_EVENT_IDS as i64 + 7);
        assert_eq!(a.event_ids.len(), MAX_ALERT_EVENT_IDS);
        let first: Vec<Uuid> = events[..MAX_ALERT_EVENT_IDS].iter().map(|e| e.id).collect();
        assert_eq!(a.event_ids, first);
        assert_eq!(s.get_alert(a.id).await.unwrap().unwrap(), *a);
    }

    pub async fn alert_workflow_history_comments(s: S, _raw: Raw) {
        let a = s
            .record_detection(&det_at("r", Some("h"), T0), WINDOW)
            .await
            .unwrap()
            .alert;
        // invalid: new -> new
        let err = s
            .set_alert_status(a.id, AlertStatus::New, "ann", None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
        let a1 = s
            .set_alert_status(a.id, AlertStatus::Acknowledged, "ann", None)
            .await
            .unwrap();
        assert_eq!(a1.status, AlertStatus::Acknowledged);
        assert!(a1.updated_at >= a.updated_at);
        let a2 = s.assign_alert(a.id, Some("ann")).await.unwrap();
        assert_eq!(a2.assignee.as_deref(), Some("ann"));
        let a3 = s
            .set_alert_status(a.id, AlertStatus::FalsePositive, "bob", Some("admin tool"))
            .await
            .unwrap();
        assert_eq!(a3.status, AlertStatus::FalsePositive);
        // closed -> acknowledged is not allowed; reopening is
        assert!(
            s.set_alert_status(a.id, AlertStatus::Acknowledged, "bob", None)
                .await
                .is_err()
        );
        s.set_alert_status(a.id, AlertStatus::New, "cat", Some("reopened"))
            .await
            .unwrap();
        let h = s.status_history(a.id).await.unwrap();
        let steps: Vec<_> = h
            .iter()
            .map(|c| (c.actor.as_str(), c.from, c.to, c.note.as_deref()))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("ann", AlertStatus::New, AlertStatus::Acknowledged, None),
                (
                    "bob",
                    AlertStatus::Acknowledged,
                    AlertStatus::FalsePositive,
                    Some("admin tool")
                ),
                (
                    "cat",
                    AlertStatus::FalsePositive,
                    AlertStatus::New,
                    Some("reopened")
                ),
            ]
        );
        assert!(h.windows(2).all(|w| w[0].changed_at <= w[1].changed_at));

        let c1 = s
            .add_comment(a.id, "ann", "looks like psexec")
            .await
            .unwrap();
        let c2 = s
            .add_comment(a.id, "bob", "Проверил: это админ")
            .await
            .unwrap();
        let cs = s.comments(a.id).await.unwrap();
        assert_eq!(cs, vec![c1.clone(), c2]);
        assert_eq!((c1.author.as_str(), c1.alert_id), ("ann", a.id));
        assert!(matches!(
            s.add_comment(a.id, "ann", "   ").await,
            Err(StoreError::InvalidArgument(_))
        ));
        // unknown alerts
        assert!(matches!(
            s.add_comment(999_999, "ann", "x").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.set_alert_status(999_999, AlertStatus::Resolved, "ann", None)
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.assign_alert(999_999, None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(s.get_alert(999_999).await.unwrap().is_none());
        let cleared = s.assign_alert(a.id, None).await.unwrap();
        assert!(cleared.assignee.is_none());
    }

    pub async fn alert_listing_filters_and_pages(s: S, _raw: Raw) {
        let mut made = Vec::new();
        for i in 0..30i64 {
            let mut d = det_at(
                &format!("r{}", i % 3),
                Some(&format!("h{}", i % 2)),
                T0 + i * 60 * MIN,
            );
            d.level = Level::ALL[(i % 5) as usize];
            made.push(s.record_detection(&d, WINDOW).await.unwrap().alert);
        }
        s.set_alert_status(made[0].id, AlertStatus::Resolved, "x", None)
            .await
            .unwrap();
        s.assign_alert(made[1].id, Some("ann")).await.unwrap();
        let all = s
            .list_alerts(&AlertQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.alerts.len(), 30);
        assert!(all.next_cursor.is_none());
        assert!(
            all.alerts
                .windows(2)
                .all(|w| w[0].last_seen >= w[1].last_seen)
        );

        let q = |f: AlertQuery| {
            let s = s.clone();
            async move { s.list_alerts(&f).await.unwrap().alerts }
        };
        assert_eq!(
            q(AlertQuery {
                statuses: vec![AlertStatus::Resolved],
                ..Default::default()
            })
            .await
            .len(),
            1
        );
        assert_eq!(
            q(AlertQuery {
                statuses: vec![AlertStatus::New, AlertStatus::Acknowledged],
                ..Default::default()
            })
            .await
            .len(),
            29
        );
        let high = q(AlertQuery {
            min_level: Some(Level::High),
            ..Default::default()
        })
        .await;
        assert_eq!(high.len(), 12);
        assert!(high.iter().all(|a| a.level >= Level::High));
        assert_eq!(
            q(AlertQuery {
                rule_id: Some("r1".into()),
                agent_id: Some("h1".into()),
                ..Default::default()
            })
            .await
            .len(),
            5
        );
        assert_eq!(
            q(AlertQuery {
                assignee: Some("ann".into()),
                ..Default::default()
            })
            .await[0]
                .id,
            made[1].id
        );
        assert_eq!(
            q(AlertQuery {
                from: Some(T0 + 10 * 60 * MIN),
                to: Some(T0 + 20 * 60 * MIN),
                ..Default::default()
            })
            .await
            .len(),
            10
        );
        // pages of 7
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let p = s
                .list_alerts(&AlertQuery {
                    limit: 7,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            seen.extend(p.alerts.iter().map(|a| a.id));
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, all.alerts.iter().map(|a| a.id).collect::<Vec<_>>());
        assert!(matches!(
            s.list_alerts(&AlertQuery {
                cursor: Some("garbage".into()),
                ..Default::default()
            })
            .await,
            Err(StoreError::InvalidCursor)
        ));
    }

    pub async fn rule_state(s: S, _raw: Raw) {
        assert!(s.rule_state("r").await.unwrap().is_none());
        let st = s.set_rule_enabled("r", false).await.unwrap();
        assert_eq!((st.enabled, st.hit_count, st.last_hit), (false, 0, None));
        s.record_detection(&det_at("r", None, T0), WINDOW)
            .await
            .unwrap();
        s.record_detection(&det_at("r", None, T0 - 5), WINDOW)
            .await
            .unwrap();
        let st = s.rule_state("r").await.unwrap().unwrap();
        assert_eq!(
            (st.enabled, st.hit_count, st.last_hit),
            (false, 2, Some(T0))
        );
        let st = s.set_rule_enabled("r", true).await.unwrap();
        assert_eq!((st.enabled, st.hit_count), (true, 2));
        s.record_detection(&det_at("a-first", None, T0), WINDOW)
            .await
            .unwrap();
        let all = s.list_rule_states().await.unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.rule_id.as_str(), r.enabled))
                .collect::<Vec<_>>(),
            vec![("a-first", true), ("r", true)]
        );
    }

    pub async fn tokens(s: S, _raw: Raw) {
        let t = s
            .create_token(&NewToken {
                name: "ci".into(),
                role: Role::Analyst,
                expires_at: None,
                owner: None,
            })
            .await
            .unwrap();
        assert!(t.secret.starts_with(TOKEN_PREFIX));
        assert!(t.info.last_used_at.is_none());
        let v = s.verify_token(&t.secret).await.unwrap().unwrap();
        assert_eq!(
            (v.id, v.role, v.name.as_str()),
            (t.info.id, Role::Analyst, "ci")
        );
        assert!(v.last_used_at.is_some());
        // the secret is stored nowhere
        let listed = s.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !serde_json::to_string(&listed)
                .unwrap()
                .contains(&t.secret[4..])
        );
        assert_eq!(listed[0].last_used_at, v.last_used_at);

        // wrong, garbage, truncated, case-changed
        let mut wrong = t.secret.clone();
        wrong.pop();
        wrong.push(if t.secret.ends_with('A') { 'B' } else { 'A' });
        for bad in [
            wrong.as_str(),
            "",
            "dzt_",
            "Bearer x",
            &t.secret[..20],
            &t.secret.to_uppercase(),
        ] {
            assert!(s.verify_token(bad).await.unwrap().is_none(), "{bad}");
        }

        let expired = s
            .create_token(&NewToken {
                name: "old".into(),
                role: Role::Admin,
                expires_at: Some(now_ms() - 1000),
                owner: None,
            })
            .await
            .unwrap();
        assert!(s.verify_token(&expired.secret).await.unwrap().is_none());
        let future = s
            .create_token(&NewToken {
                name: "agent".into(),
                role: Role::AgentIngest,
                expires_at: Some(now_ms() + 3_600_000),
                owner: None,
            })
            .await
            .unwrap();
        assert_eq!(
            s.verify_token(&future.secret).await.unwrap().unwrap().role,
            Role::AgentIngest
        );
        assert!(s.revoke_token(future.info.id).await.unwrap());
        assert!(!s.revoke_token(future.info.id).await.unwrap());
        assert!(!s.revoke_token(424242).await.unwrap());
        assert!(s.verify_token(&future.secret).await.unwrap().is_none());
        let listed = s.list_tokens().await.unwrap();
        assert!(listed[2].revoked_at.is_some());
        assert!(s.verify_token(&t.secret).await.unwrap().is_some());
        assert!(matches!(
            s.create_token(&NewToken {
                name: " ".into(),
                role: Role::Viewer,
                expires_at: None,
                owner: None,
            })
            .await,
            Err(StoreError::InvalidArgument(_))
        ));
    }

    pub async fn audit_log_is_append_only(s: S, raw: Raw) {
        for (actor, action) in [
            ("ann", "login"),
            ("ann", "alert.status"),
            ("bob", "token.create"),
        ] {
            s.append_audit(&NewAuditEntry {
                actor: actor.into(),
                action: action.into(),
                target: Some("alert:1".into()),
                details: json!({"from": "new", "to": "acknowledged", "ip": "10.0.0.1"}),
            })
            .await
            .unwrap();
        }
        let null = s
            .append_audit(&NewAuditEntry {
                actor: "system".into(),
                action: "purge".into(),
                target: None,
                details: serde_json::Value::Null,
            })
            .await
            .unwrap();
        assert_eq!(null.details, json!({}));
        let all = s.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            vec!["purge", "token.create", "alert.status", "login"]
        );
        assert_eq!(all[1].details["ip"], "10.0.0.1");
        let ann = s
            .list_audit(&AuditQuery {
                actor: Some("ann".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ann.len(), 2);
        let older = s
            .list_audit(&AuditQuery {
                before_id: Some(all[1].id),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].action, "alert.status");
        // SQL cannot rewrite history either
        let upd = raw.exec("UPDATE audit_log SET actor = 'mallory'").await;
        assert!(upd.unwrap_err().contains("append-only"));
        let del = raw.exec("DELETE FROM audit_log").await;
        assert!(del.unwrap_err().contains("append-only"));
        assert_eq!(s.list_audit(&AuditQuery::default()).await.unwrap().len(), 4);
    }

    /// A small corpus for the query language.
    fn corpus() -> Vec<NewEvent> {
        vec![
            // 0: powershell with an encoded command, by a user
            ev(
                T0,
                Some("h1"),
                json!({
                    "@timestamp": "2023-11-14T22:13:20Z",
                    "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "process-created", "code": "4688"},
                    "process": {"name": "PowerShell.EXE", "pid": 4242, "executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                "command_line": "powershell.exe -EncodedCommand SQBFAFgA", "parent": {"name": "cmd.exe"}},
                    "user": {"name": "alice"},
                    "winlog": {"channel": "Security", "event_id": 4688, "event_data": {"LogonType": "10", "SubjectUserName": "alice"}},
                    "tags": ["attack.t1059.001", "windows"]
                }),
            ),
            // 1: powershell run by SYSTEM
            ev(
                T0 + 1,
                Some("h2"),
                json!({
                    "event": {"kind": "event", "category": "process", "action": "process-created", "code": 4688},
                    "process": {"name": "powershell.exe", "pid": 77},
                    "user": {"name": "SYSTEM"},
                    "winlog": {"event_id": 4688, "event_data": {"LogonType": "5"}}
                }),
            ),
            // 2: network connection, no user, Cyrillic host
            ev(
                T0 + 2,
                Some("h1"),
                json!({
                    "event": {"kind": "event", "category": ["network", "process"], "action": "connection-attempted", "code": "3"},
                    "process": {"name": "svchost.exe", "pid": 900},
                    "destination": {"ip": "10.1.2.3", "port": 445},
                    "host": {"name": "Бухгалтерия-ПК"},
                    "network": {"transport": "tcp", "tls": false},
                    "message": "100%_done"
                }),
            ),
            // 3: logon by a Cyrillic user
            ev(
                T0 + 3,
                None,
                json!({
                    "event": {"kind": "event", "category": ["authentication"], "action": "logged-in", "outcome": "success"},
                    "user": {"name": "Администратор"},
                    "message": "100xydone",
                    "winlog": {"event_id": 4624, "event_data": {"LogonType": " 3 "}}
                }),
            ),
            // 4: file event with quotes and backslashes
            ev(
                T0 + 4,
                Some("h3"),
                json!({
                    "event": {"kind": "alert", "category": ["file"], "action": "file-created"},
                    "file": {"path": "C:\\Users\\bob\\AppData\\Local\\Temp\\x \"quoted\".ps1"},
                    "process": {"name": "explorer.exe"},
                    "network": {"tls": true}
                }),
            ),
        ]
    }

    pub async fn query_language(s: S, _raw: Raw) {
        let c = corpus();
        s.insert_events(&c).await.unwrap();
        let id = |i: usize| c[i].id;
        let set = |xs: &[usize]| xs.iter().map(|i| id(*i)).collect::<HashSet<_>>();
        let cases: Vec<(&str, Vec<usize>)> = vec![
            ("", vec![0, 1, 2, 3, 4]),
            ("process.name:powershell.exe", vec![0, 1]),
            ("process.name:POWERSHELL.exe", vec![0, 1]),
            (
                "process.name:powershell.exe AND NOT user.name:SYSTEM",
                vec![0],
            ),
            ("NOT user.name:SYSTEM", vec![0, 2, 3, 4]),
            ("process.name:power*", vec![0, 1]),
            ("process.name:*.EXE", vec![0, 1, 2, 4]),
            ("process.name:*host*", vec![2]),
            ("process.name:s*t.exe", vec![2]),
            ("process.name:svchost OR user.name:alice", vec![0]),
            (
                "(process.name:svchost.exe OR user.name:alice) AND event.code:4688",
                vec![0],
            ),
            (
                "process.name:svchost.exe OR (user.name:alice AND event.code:3)",
                vec![2],
            ),
            ("encodedcommand", vec![0]),
            ("sqbfafga", vec![0]),
            ("powershell NOT alice", vec![1]),
            (r#""C:\Windows\System32""#, vec![0]),
            (r"file.path:C:\Users\*\AppData\*", vec![4]),
            (r#"file.path:"*\"quoted\"*""#, vec![4]),
            (r#""x \"quoted\"""#, vec![4]),
            ("user.name:администратор", vec![3]),
            ("user.name:*МИН*", vec![3]),
            ("АДМИНИСТРАТОР", vec![3]),
            ("host.name:бухгалтерия*", vec![2]),
            ("event.category:network", vec![2]),
            ("event.category:PROCESS", vec![0, 1, 2]),
            ("event.category:auth*", vec![3]),
            ("event.type:start", vec![0]),
            ("tags:attack.t1059*", vec![0]),
            ("event.code:4688", vec![0, 1]),
            ("event.action:process-*", vec![0, 1]),
            ("event.kind:alert", vec![4]),
            ("event.outcome:*", vec![3]),
            ("process.parent.name:*", vec![0]),
            ("winlog.event_id:>4000", vec![0, 1, 3]),
            ("winlog.event_id:>=4688", vec![0, 1]),
            ("winlog.event_id:<4688", vec![3]),
            ("process.pid:<=900", vec![1, 2]),
            ("winlog.event_data.LogonType:>=10", vec![0]),
            ("winlog.event_data.LogonType:<5", vec![3]),
            ("destination.port:445", vec![2]),
            ("destination.ip:10.1.*", vec![2]),
            ("network.tls:true", vec![4]),
            ("network.tls:false", vec![2]),
            ("process:*", vec![0, 1, 2, 4]),
            ("process:svchost.exe", vec![]),
            ("no.such.field:x", vec![]),
            ("NOT no.such.field:x", vec![0, 1, 2, 3, 4]),
            ("message:100%_done", vec![2]),
            ("message:100*done", vec![2, 3]),
            ("100%_", vec![2]),
        ];
        for (q, want) in cases {
            assert_eq!(ids(&s, q).await, set(&want), "query {q:?}");
        }
        // combined with the agent filter and a time range
        let page = s
            .search_events(&EventQuery {
                agent_id: Some("h1".into()),
                from: Some(T0 + 1),
                to: Some(T0 + 10),
                query: Some("process.name:*".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![id(2)]
        );
    }

    pub async fn query_errors_carry_position(s: S, _raw: Raw) {
        for (q, col) in [
            ("process.name:x AND", 19),
            ("(a:1 OR b:2", 1),
            ("a:>x", 4),
            ("x \"open", 3),
            ("bad'name:1", 4),
        ] {
            match s
                .search_events(&EventQuery {
                    query: Some(q.into()),
                    ..Default::default()
                })
                .await
            {
                Err(StoreError::Query(e)) => {
                    assert_eq!(e.column, col, "{q}: {e}");
                    assert!(e.to_string().contains(&format!("column {col}")), "{e}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        let err = s
            .event_histogram(&HistogramQuery {
                from: 0,
                to: 10,
                bucket_ms: 1,
                query: Some(")".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Query(_)));
    }

    pub async fn injection_attempts_are_harmless(s: S, _raw: Raw) {
        let c = corpus();
        s.insert_events(&c).await.unwrap();
        let attempts = [
            "a:'; DROP TABLE events;--",
            "\"'); DROP TABLE events; --\"",
            "process.name:\"x' OR '1'='1\"",
            "process.name:*' OR 1=1 --",
            "user.name:\"\\\"; DELETE FROM events; --\"",
            "x:>1) OR (1=1",
            "') OR 1=1; --",
            "process.name:%",
            "message:\\",
            "a:$1",
            "a:?",
            "$$; DROP TABLE events; $$",
            "'||(SELECT count(*) FROM events)||'",
        ];
        for q in attempts {
            let r = s
                .search_events(&EventQuery {
                    query: Some(q.into()),
                    ..Default::default()
                })
                .await;
            match r {
                Ok(page) => assert!(page.events.is_empty(), "{q}: {:?}", page.events),
                Err(StoreError::Query(_)) => {}
                Err(e) => panic!("{q}: {e}"),
            }
        }
        // field names cannot carry SQL
        assert!(matches!(
            s.search_events(&EventQuery {
                query: Some("a');DROP TABLE events;--:x".into()),
                ..Default::default()
            })
            .await,
            Err(StoreError::Query(_))
        ));
        // other string inputs are bound too
        let page = s
            .search_events(&EventQuery {
                agent_id: Some("h1' OR '1'='1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.events.is_empty());
        // `%` and `_` are literals, not LIKE wildcards
        assert_eq!(ids(&s, "%").await, HashSet::from([c[2].id]));
        assert_eq!(ids(&s, "message:100_done").await, HashSet::new());
        audit_probe(&s).await;
        assert_eq!(s.count_events(None, None).await.unwrap(), 5);
        assert_eq!(ids(&s, "process.name:powershell.exe").await.len(), 2);
    }

    async fn audit_probe(s: &S) {
        let e = s
            .append_audit(&NewAuditEntry {
                actor: "x'); DROP TABLE audit_log; --".into(),
                action: "probe".into(),
                target: Some("'".into()),
                details: json!({"q": "'; DROP TABLE events; --"}),
            })
            .await
            .unwrap();
        assert_eq!(e.actor, "x'); DROP TABLE audit_log; --");
        let rs = s
            .list_audit(&AuditQuery {
                actor: Some("x'); DROP TABLE audit_log; --".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rs.len(), 1);
    }

    pub async fn pagination_cursor_is_stable(s: S, _raw: Raw) {
        // 250 events, many sharing a timestamp (ties are broken by id)
        let events: Vec<NewEvent> = (0..250)
            .map(|i| {
                ev(
                    T0 + (i / 7) * 1000,
                    Some(if i % 2 == 0 { "a" } else { "b" }),
                    json!({"i": i}),
                )
            })
            .collect();
        for chunk in events.chunks(60) {
            s.insert_events(chunk).await.unwrap();
        }
        let mut expected: Vec<(i64, Uuid)> = events.iter().map(|e| (e.ts, e.id)).collect();
        expected.sort();
        expected.reverse();

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = s
                .search_events(&EventQuery {
                    limit: 40,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            pages += 1;
            seen.extend(p.events.iter().map(|e| (e.ts, e.id)));
            if pages == 2 {
                // events arriving meanwhile that sort before the cursor must not duplicate or
                // shift what the next pages return
                s.insert_events(&[
                    ev(T0 + 10_000_000, Some("a"), json!({"late": 1})),
                    ev(T0 + 36 * 1000, Some("a"), json!({"late": 2})),
                ])
                .await
                .unwrap();
            }
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 7);
        assert_eq!(seen, expected);

        // filtered paging, and the same cursor twice gives the same page
        let first = s
            .search_events(&EventQuery {
                agent_id: Some("b".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let q2 = EventQuery {
            agent_id: Some("b".into()),
            limit: 10,
            cursor: first.next_cursor.clone(),
            ..Default::default()
        };
        let a = s.search_events(&q2).await.unwrap();
        let b = s.search_events(&q2).await.unwrap();
        assert_eq!(a, b);
        assert!(a.events.iter().all(|e| e.agent_id.as_deref() == Some("b")));
        assert!(first.events.last().unwrap().ts >= a.events[0].ts);

        for bad in ["", "not-a-cursor", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(matches!(
                s.search_events(&EventQuery {
                    cursor: Some(bad.into()),
                    ..Default::default()
                })
                .await,
                Err(StoreError::InvalidCursor)
            ));
        }
        // limits are clamped
        let p = s
            .search_events(&EventQuery {
                limit: 0,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p.events.len(), DEFAULT_PAGE_LIMIT as usize);
        let p = s
            .search_events(&EventQuery {
                limit: 1_000_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p.events.len(), 252);
    }

    pub async fn retention_purge(s: S, _raw: Raw) {
        let cutoff = T0 + 1000 * MIN;
        let old: Vec<NewEvent> = (0..12_345)
            .map(|i| ev(T0 + i, Some("a"), json!({"old": i})))
            .collect();
        let new: Vec<NewEvent> = (0..10)
            .map(|i| ev(cutoff + i, Some("a"), json!({"new": i})))
            .collect();
        for chunk in old.chunks(2000) {
            s.insert_events(chunk).await.unwrap();
        }
        s.insert_events(&new).await.unwrap();
        // alerts: old closed (purged), old open (kept), new closed (kept)
        let old_closed = s
            .record_detection(&det_at("r1", Some("a"), T0), WINDOW)
            .await
            .unwrap()
            .alert;
        let old_open = s
            .record_detection(&det_at("r2", Some("a"), T0), WINDOW)
            .await
            .unwrap()
            .alert;
        let new_closed = s
            .record_detection(&det_at("r3", Some("a"), cutoff + 5), WINDOW)
            .await
            .unwrap()
            .alert;
        let old_fp = s
            .record_detection(&det_at("r4", Some("a"), T0), WINDOW)
            .await
            .unwrap()
            .alert;
        s.set_alert_status(old_closed.id, AlertStatus::Resolved, "x", None)
            .await
            .unwrap();
        s.set_alert_status(old_fp.id, AlertStatus::FalsePositive, "x", None)
            .await
            .unwrap();
        s.set_alert_status(new_closed.id, AlertStatus::Resolved, "x", None)
            .await
            .unwrap();
        s.add_comment(old_closed.id, "x", "bye").await.unwrap();

        let r = s.purge_before(cutoff).await.unwrap();
        assert_eq!(
            r,
            PurgeReport {
                events: 12_345,
                alerts: 2
            }
        );
        assert_eq!(s.count_events(None, None).await.unwrap(), 10);
        assert!(s.get_event(old[0].id).await.unwrap().is_none());
        assert!(s.get_event(new[0].id).await.unwrap().is_some());
        assert!(s.get_alert(old_closed.id).await.unwrap().is_none());
        assert!(s.get_alert(old_fp.id).await.unwrap().is_none());
        assert!(s.get_alert(old_open.id).await.unwrap().is_some());
        assert!(s.get_alert(new_closed.id).await.unwrap().is_some());
        assert!(s.comments(old_closed.id).await.unwrap().is_empty());
        assert!(s.status_history(old_closed.id).await.unwrap().is_empty());
        // idempotent
        assert_eq!(
            s.purge_before(cutoff).await.unwrap(),
            PurgeReport::default()
        );
        // the store still works after freeing pages
        s.insert_events(&[ev(cutoff + 100, None, json!({}))])
            .await
            .unwrap();
        assert_eq!(s.count_events(None, None).await.unwrap(), 11);
    }

    pub async fn histogram_and_stats(s: S, _raw: Raw) {
        let mut events = Vec::new();
        for (bucket, n) in [(0i64, 3), (2, 5), (3, 1)] {
            for i in 0..n {
                events.push(ev(
                    T0 + bucket * MIN + i,
                    Some("a"),
                    json!({"event": {"category": if i == 0 { "file" } else { "process" }}}),
                ));
            }
        }
        events.push(ev(T0 - 1, Some("a"), json!({}))); // outside the range
        s.insert_events(&events).await.unwrap();
        let h = s
            .event_histogram(&HistogramQuery {
                from: T0,
                to: T0 + 4 * MIN + 1,
                bucket_ms: MIN,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            h.iter()
                .map(|b| (b.start - T0, b.count))
                .collect::<Vec<_>>(),
            vec![(0, 3), (MIN, 0), (2 * MIN, 5), (3 * MIN, 1), (4 * MIN, 0)]
        );
        let h = s
            .event_histogram(&HistogramQuery {
                from: T0,
                to: T0 + 4 * MIN,
                bucket_ms: 2 * MIN,
                agent_id: Some("a".into()),
                query: Some("event.category:process".into()),
            })
            .await
            .unwrap();
        assert_eq!(h.iter().map(|b| b.count).collect::<Vec<_>>(), vec![2, 4]);
        for bad in [
            HistogramQuery {
                from: 0,
                to: 10,
                bucket_ms: 0,
                ..Default::default()
            },
            HistogramQuery {
                from: 10,
                to: 10,
                bucket_ms: 1,
                ..Default::default()
            },
            HistogramQuery {
                from: 0,
                to: 1_000_000_000,
                bucket_ms: 1,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                s.event_histogram(&bad).await,
                Err(StoreError::InvalidArgument(_))
            ));
        }

        let mut d = det_at("r1", None, T0);
        d.level = Level::Critical;
        s.record_detection(&d, WINDOW).await.unwrap();
        let a2 = s
            .record_detection(&det_at("r2", None, T0), WINDOW)
            .await
            .unwrap()
            .alert;
        s.record_detection(&det_at("r3", None, T0), WINDOW)
            .await
            .unwrap();
        s.set_alert_status(a2.id, AlertStatus::Resolved, "x", None)
            .await
            .unwrap();
        let st = s.stats().await.unwrap();
        assert_eq!(st.events_total, 10);
        assert_eq!(st.alerts_by_status[&AlertStatus::New], 2);
        assert_eq!(st.alerts_by_status[&AlertStatus::Resolved], 1);
        assert_eq!(st.alerts_by_status[&AlertStatus::Acknowledged], 0);
        assert_eq!(st.open_alerts_by_level[&Level::Critical], 1);
        assert_eq!(st.open_alerts_by_level[&Level::Medium], 1);
        assert_eq!(st.open_alerts_by_level[&Level::Low], 0);
    }

    pub async fn odd_documents(s: S, _raw: Raw) {
        let nul = ev(
            T0,
            None,
            json!({"process": {"name": "a\u{0}b"}, "k\u{0}": 1}),
        );
        let array = ev(T0 + 1, None, json!([1, 2, {"x": "y"}]));
        let scalar = ev(T0 + 2, None, json!("just a string"));
        let big = ev(
            T0 + 3,
            None,
            json!({"n": 1e300, "neg": -12345678901234567i64, "deep": {"a": {"b": {"c": {"d": [[["deep-value"]]]}}}}}),
        );
        let empty_cat = ev(
            T0 + 4,
            None,
            json!({"event": {"category": [], "code": null, "kind": {"nested": 1}}}),
        );
        let r = s
            .insert_events(&[
                nul.clone(),
                array.clone(),
                scalar.clone(),
                big.clone(),
                empty_cat.clone(),
            ])
            .await
            .unwrap();
        assert_eq!(r.inserted, 5);
        assert_eq!(s.get_event(array.id).await.unwrap().unwrap().doc, array.doc);
        assert_eq!(
            s.get_event(scalar.id).await.unwrap().unwrap().doc,
            scalar.doc
        );
        let got = s.get_event(nul.id).await.unwrap().unwrap();
        let name = got.doc["process"]["name"].as_str().unwrap().to_owned();
        assert!(name == "a\u{0}b" || name == "a\u{FFFD}b", "{name:?}");
        assert_eq!(ids(&s, "n:>1e299").await, HashSet::from([big.id]));
        assert_eq!(ids(&s, "neg:<0").await, HashSet::from([big.id]));
        assert_eq!(ids(&s, "deep-value").await, HashSet::from([big.id]));
        assert_eq!(ids(&s, "just").await, HashSet::from([scalar.id]));
        assert!(ids(&s, "event.category:*").await.is_empty());
        // a query with a NUL in it is fine too
        let _ = ids(&s, "process.name:\"a\u{0}b\"").await;
    }

    // ------------------------------------------------------------ enrollment tokens

    fn enroll_token(
        name: &str,
        max_uses: Option<u32>,
        expires_at: Option<i64>,
    ) -> NewEnrollmentToken {
        NewEnrollmentToken {
            name: name.into(),
            expires_at,
            max_uses,
            created_by: "ann".into(),
        }
    }

    pub async fn enrollment_tokens(s: S, _raw: Raw) {
        let t = s
            .create_enrollment_token(&enroll_token("linux fleet", Some(2), None))
            .await
            .unwrap();
        assert!(t.secret.starts_with(ENROLLMENT_TOKEN_PREFIX));
        assert_eq!(t.secret.len(), ENROLLMENT_TOKEN_PREFIX.len() + 43);
        assert_eq!(
            (t.info.name.as_str(), t.info.created_by.as_str()),
            ("linux fleet", "ann")
        );
        assert_eq!((t.info.max_uses, t.info.uses), (Some(2), 0));
        assert!(t.info.last_used_at.is_none() && t.info.revoked_at.is_none());

        // used up after two enrollments
        let first = s.redeem_enrollment_token(&t.secret).await.unwrap().unwrap();
        assert_eq!((first.id, first.uses), (t.info.id, 1));
        assert!(first.last_used_at.is_some());
        // surrounding white space is tolerated, like for API tokens
        let second = s
            .redeem_enrollment_token(&format!(" {}\n", t.secret))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.uses, 2);
        assert_eq!(
            s.redeem_enrollment_token(&t.secret).await.unwrap(),
            Err(EnrollmentRefusal::UsedUp)
        );
        // a refused redeem changes nothing
        let listed = s.list_enrollment_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uses, 2);
        assert_eq!(listed[0].last_used_at, second.last_used_at);

        // expired
        let expired = s
            .create_enrollment_token(&enroll_token("old", None, Some(now_ms() - 1000)))
            .await
            .unwrap();
        assert_eq!(
            s.redeem_enrollment_token(&expired.secret).await.unwrap(),
            Err(EnrollmentRefusal::Expired)
        );

        // revoked (revocation wins over expiry and exhaustion)
        let revoked = s
            .create_enrollment_token(&enroll_token("gone", Some(5), Some(now_ms() + 3_600_000)))
            .await
            .unwrap();
        assert!(
            s.redeem_enrollment_token(&revoked.secret)
                .await
                .unwrap()
                .is_ok()
        );
        assert!(s.revoke_enrollment_token(revoked.info.id).await.unwrap());
        assert!(!s.revoke_enrollment_token(revoked.info.id).await.unwrap());
        assert!(!s.revoke_enrollment_token(424242).await.unwrap());
        assert_eq!(
            s.redeem_enrollment_token(&revoked.secret).await.unwrap(),
            Err(EnrollmentRefusal::Revoked)
        );
        assert!(s.revoke_enrollment_token(t.info.id).await.unwrap());
        assert_eq!(
            s.redeem_enrollment_token(&t.secret).await.unwrap(),
            Err(EnrollmentRefusal::Revoked)
        );

        // unlimited
        let open = s
            .create_enrollment_token(&enroll_token("unlimited", None, None))
            .await
            .unwrap();
        for i in 1..=25 {
            let info = s
                .redeem_enrollment_token(&open.secret)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((info.uses, info.max_uses), (i, None));
        }

        // garbage, truncated, altered, the wrong kind of token
        let api = s
            .create_token(&NewToken {
                name: "api".into(),
                role: Role::Admin,
                expires_at: None,
                owner: None,
            })
            .await
            .unwrap();
        let mut altered = open.secret.clone();
        altered.pop();
        altered.push(if open.secret.ends_with('A') { 'B' } else { 'A' });
        let as_api = open
            .secret
            .replacen(ENROLLMENT_TOKEN_PREFIX, TOKEN_PREFIX, 1);
        for bad in [
            "",
            "dze_",
            "Bearer x",
            &open.secret[..20],
            &open.secret.to_uppercase(),
            altered.as_str(),
            api.secret.as_str(),
            as_api.as_str(),
            "dze_'; DROP TABLE agents; --aaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(
                s.redeem_enrollment_token(bad).await.unwrap(),
                Err(EnrollmentRefusal::Unknown),
                "{bad}"
            );
        }
        // and an enrollment token is no API token
        assert!(s.verify_token(&open.secret).await.unwrap().is_none());
        assert!(s.verify_token(&api.secret).await.unwrap().is_some());

        // the secrets are stored nowhere
        let listed = s.list_enrollment_tokens().await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            vec!["linux fleet", "old", "gone", "unlimited"]
        );
        let text = serde_json::to_string(&listed).unwrap();
        for secret in [&t.secret, &expired.secret, &revoked.secret, &open.secret] {
            assert!(!text.contains(&secret[4..]));
        }
        assert_eq!(listed[2].uses, 1);
        assert!(listed[2].revoked_at.is_some());
        assert_eq!(listed[3].uses, 25);

        // validation
        for bad in [
            enroll_token(" ", None, None),
            enroll_token(&"x".repeat(201), None, None),
            enroll_token("zero", Some(0), None),
        ] {
            assert!(
                matches!(
                    s.create_enrollment_token(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(s.list_enrollment_tokens().await.unwrap().len(), 4);
        // a large limit round-trips
        let big = s
            .create_enrollment_token(&enroll_token("big", Some(u32::MAX), None))
            .await
            .unwrap();
        assert_eq!(big.info.max_uses, Some(u32::MAX));
        assert_eq!(
            s.redeem_enrollment_token(&big.secret)
                .await
                .unwrap()
                .unwrap()
                .max_uses,
            Some(u32::MAX)
        );
    }

    pub async fn enrollment_token_concurrent_redeem(s: S, _raw: Raw) {
        let t = s
            .create_enrollment_token(&enroll_token("five", Some(5), None))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (s, secret) = (s.clone(), t.secret.clone());
            tasks.push(tokio::spawn(async move {
                s.redeem_enrollment_token(&secret).await.unwrap()
            }));
        }
        let mut uses = Vec::new();
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(info) => uses.push(info.uses),
                Err(r) => {
                    assert_eq!(r, EnrollmentRefusal::UsedUp);
                    refused += 1;
                }
            }
        }
        uses.sort_unstable();
        assert_eq!(uses, vec![1, 2, 3, 4, 5]);
        assert_eq!(refused, 15);
        assert_eq!(s.list_enrollment_tokens().await.unwrap()[0].uses, 5);
    }

    // ------------------------------------------------------------ agents

    fn facts(hostname: &str, os_type: &str) -> AgentFacts {
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

    fn cert(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn new_agent(id: &str, hostname: &str) -> NewAgent {
        NewAgent {
            id: id.into(),
            facts: facts(hostname, "linux"),
            cert_sha256: cert(1),
            cert_not_after: T0 + 365 * 24 * 60 * MIN,
            enrolled_by: "token:1".into(),
        }
    }

    fn heartbeat(hostname: &str, health: &[&str], at: i64) -> AgentHeartbeat {
        AgentHeartbeat {
            facts: AgentFacts {
                agent_version: "0.2.0".into(),
                ips: vec!["10.0.0.6".into()],
                ..facts(hostname, "linux")
            },
            health: health.iter().map(|h| (*h).to_owned()).collect(),
            doc: json!({"resources": {"cpu": 3.5, "rss_mb": 41}, "spool": {"bytes": 0}, "at": at}),
            at,
        }
    }

    fn agent_ids(agents: &[Agent]) -> Vec<&str> {
        agents.iter().map(|a| a.id.as_str()).collect()
    }

    /// Ids sorted (for agents enrolled within the same millisecond, whose order is by id).
    fn sorted_ids(agents: &[Agent]) -> Vec<&str> {
        let mut ids = agent_ids(agents);
        ids.sort_unstable();
        ids
    }

    pub async fn agents_registry(s: S, _raw: Raw) {
        let before = now_ms();
        let a = s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        assert_eq!(a.id, "a-1");
        assert_eq!(a.facts, facts("web-01", "linux"));
        assert!(a.enrolled_at >= before);
        assert_eq!(a.last_seen, a.enrolled_at);
        assert_eq!(a.enrolled_by, "token:1");
        assert_eq!(a.cert_sha256, cert(1));
        assert_eq!(a.cert_not_after, T0 + 365 * 24 * 60 * MIN);
        assert!(a.reenrolled_at.is_none() && a.offline_since.is_none());
        assert!(a.revoked_at.is_none() && a.revoked_by.is_none());
        assert!(a.last_heartbeat.is_none() && a.health.is_empty());
        assert_eq!(s.get_agent("a-1").await.unwrap().unwrap(), a);
        assert!(s.get_agent("nope").await.unwrap().is_none());

        // the fingerprint is stored lower-case
        let mut upper = new_agent("a-2", "DB-01");
        upper.cert_sha256 = "AB".repeat(32);
        upper.facts.os_type = "windows".into();
        upper.facts.os_name = None;
        upper.facts.ips = vec![];
        let b = s.insert_agent(&upper).await.unwrap();
        assert_eq!(b.cert_sha256, "ab".repeat(32));
        assert_eq!((b.facts.os_name.as_deref(), b.facts.ips.len()), (None, 0));
        s.insert_agent(&new_agent("a-3", "web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-0", "Web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-4", "app-01")).await.unwrap();
        s.insert_agent(&new_agent("a-5", "СЕРВЕР-1")).await.unwrap();

        // a taken id is refused and changes nothing
        let mut dup = new_agent("a-1", "other");
        dup.cert_sha256 = cert(9);
        assert!(matches!(
            s.insert_agent(&dup).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.get_agent("a-1").await.unwrap().unwrap(), a);

        // invalid input
        let mut bad_cert = new_agent("x-1", "h");
        bad_cert.cert_sha256 = "zz".repeat(32);
        let mut short_cert = new_agent("x-2", "h");
        short_cert.cert_sha256 = "ab".into();
        let mut no_host = new_agent("x-3", " ");
        no_host.facts.hostname = " ".into();
        let mut long_host = new_agent("x-4", "h");
        long_host.facts.hostname = "h".repeat(256);
        let mut no_os = new_agent("x-5", "h");
        no_os.facts.os_type = String::new();
        for bad in [
            new_agent("", "h"),
            new_agent(&"i".repeat(129), "h"),
            bad_cert,
            short_cert,
            no_host,
            long_host,
            no_os,
        ] {
            assert!(
                matches!(
                    s.insert_agent(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }

        // listing: hostname case-insensitively, then hostname, then id
        let all = s.list_agents().await.unwrap();
        assert_eq!(
            agent_ids(&all),
            vec!["a-4", "a-2", "a-0", "a-1", "a-3", "a-5"]
        );

        // hostname lookups are case-insensitive (Unicode too) and skip revoked agents
        let same = s.agents_with_hostname("WEB-01").await.unwrap();
        assert_eq!(sorted_ids(&same), vec!["a-0", "a-1", "a-3"]);
        assert!(
            same.windows(2)
                .all(|w| w[0].enrolled_at <= w[1].enrolled_at)
        );
        assert_eq!(
            agent_ids(&s.agents_with_hostname("сервер-1").await.unwrap()),
            vec!["a-5"]
        );
        assert_eq!(
            agent_ids(&s.agents_with_hostname("db-01").await.unwrap()),
            vec!["a-2"]
        );
        assert!(s.agents_with_hostname("web").await.unwrap().is_empty());
        assert!(s.agents_with_hostname("web-0%").await.unwrap().is_empty());

        // re-enrollment replaces the certificate and facts, keeps the id
        let mut new_facts = facts("web-01.corp", "linux");
        new_facts.agent_version = "0.3.0".into();
        let r = s
            .reenroll_agent("a-1", &new_facts, &cert(2), T0 + 1000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.id, "a-1");
        assert_eq!(
            (r.cert_sha256.as_str(), r.cert_not_after),
            (cert(2).as_str(), T0 + 1000)
        );
        assert_eq!(r.facts, new_facts);
        assert!(r.reenrolled_at.is_some_and(|t| t >= a.enrolled_at));
        assert_eq!(
            (r.enrolled_at, r.enrolled_by.as_str()),
            (a.enrolled_at, "token:1")
        );
        assert_eq!(r.last_seen, a.last_seen);
        assert_eq!(s.get_agent("a-1").await.unwrap().unwrap(), r);
        assert_eq!(
            sorted_ids(&s.agents_with_hostname("web-01").await.unwrap()),
            vec!["a-0", "a-3"]
        );
        assert_eq!(
            agent_ids(&s.agents_with_hostname("WEB-01.CORP").await.unwrap()),
            vec!["a-1"]
        );
        assert!(
            s.reenroll_agent("nope", &new_facts, &cert(2), T0)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            s.reenroll_agent("a-1", &new_facts, "not hex", T0).await,
            Err(StoreError::InvalidArgument(_))
        ));

        // revocation
        assert!(s.revoke_agent("a-3", "ann").await.unwrap());
        assert!(!s.revoke_agent("a-3", "bob").await.unwrap());
        assert!(!s.revoke_agent("nope", "ann").await.unwrap());
        let revoked = s.get_agent("a-3").await.unwrap().unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(revoked.revoked_by.as_deref(), Some("ann"));
        assert_eq!(
            agent_ids(&s.agents_with_hostname("web-01").await.unwrap()),
            vec!["a-0"]
        );
        // revoked agents stay listed, cannot re-enroll, and their id stays taken
        assert_eq!(s.list_agents().await.unwrap().len(), 6);
        assert!(
            s.reenroll_agent("a-3", &new_facts, &cert(3), T0)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.get_agent("a-3").await.unwrap().unwrap(), revoked);
        assert!(matches!(
            s.insert_agent(&new_agent("a-3", "web-01")).await,
            Err(StoreError::Conflict(_))
        ));
    }

    pub async fn agent_heartbeats_and_offline(s: S, _raw: Raw) {
        let a = s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        let b = s.insert_agent(&new_agent("a-2", "db-01")).await.unwrap();
        let now = now_ms();
        assert!(a.last_seen <= now && b.last_seen <= now);

        // Nobody is silent before their enrollment.
        assert!(
            s.mark_agents_offline(a.last_seen.min(b.last_seen))
                .await
                .unwrap()
                .is_empty()
        );

        // Both have been silent: each is returned once.
        let off = s.mark_agents_offline(now + 1).await.unwrap();
        assert_eq!(agent_ids(&off), vec!["a-2", "a-1"]);
        assert!(
            off.iter()
                .all(|a| a.offline_since.is_some_and(|t| t >= now))
        );
        assert!(s.mark_agents_offline(now + 1).await.unwrap().is_empty());
        let since = s.get_agent("a-1").await.unwrap().unwrap().offline_since;
        assert!(since.is_some());

        // A heartbeat returns the state before it (offline) and brings the agent back.
        let hb = heartbeat("WEB-01", &["collector journald: stalled"], now + 10);
        let prev = s.record_heartbeat("a-1", &hb).await.unwrap().unwrap();
        assert_eq!(prev.offline_since, since);
        assert_eq!(prev.facts, a.facts);
        assert_eq!(prev.last_seen, a.last_seen);
        assert!(prev.last_heartbeat.is_none());
        let cur = s.get_agent("a-1").await.unwrap().unwrap();
        assert_eq!(cur.facts, hb.facts);
        assert_eq!(cur.health, hb.health);
        assert_eq!(cur.last_heartbeat.as_ref(), Some(&hb.doc));
        assert_eq!(cur.last_seen, now + 10);
        assert!(cur.offline_since.is_none());
        assert_eq!(
            agent_ids(&s.agents_with_hostname("web-01").await.unwrap()),
            vec!["a-1"]
        );

        // A second heartbeat: healthy now; an older `at` never moves last_seen back.
        let hb2 = heartbeat("web-01", &[], now + 5);
        let prev = s.record_heartbeat("a-1", &hb2).await.unwrap().unwrap();
        assert!(prev.offline_since.is_none());
        assert_eq!(prev.health, hb.health);
        assert_eq!(prev.last_heartbeat.as_ref(), Some(&hb.doc));
        let cur = s.get_agent("a-1").await.unwrap().unwrap();
        assert!(cur.health.is_empty());
        assert_eq!(cur.last_seen, now + 10);
        assert_eq!(cur.last_heartbeat.as_ref(), Some(&hb2.doc));

        // Unknown and revoked agents get None and nothing changes.
        assert!(s.record_heartbeat("nope", &hb).await.unwrap().is_none());
        assert!(s.revoke_agent("a-2", "ann").await.unwrap());
        let revoked = s.get_agent("a-2").await.unwrap().unwrap();
        assert!(s.record_heartbeat("a-2", &hb).await.unwrap().is_none());
        s.touch_agent("a-2", now + 1000).await.unwrap();
        assert_eq!(s.get_agent("a-2").await.unwrap().unwrap(), revoked);
        s.touch_agent("nope", now).await.unwrap();

        // Invalid heartbeats are refused.
        let mut bad = heartbeat("", &[], now);
        assert!(matches!(
            s.record_heartbeat("a-1", &bad).await,
            Err(StoreError::InvalidArgument(_))
        ));
        bad = heartbeat("h", &[], now);
        bad.health = vec!["x".repeat(2000)];
        assert!(matches!(
            s.record_heartbeat("a-1", &bad).await,
            Err(StoreError::InvalidArgument(_))
        ));

        // Revoked agents are never marked offline; a-1 is marked again once silent again.
        assert!(s.mark_agents_offline(now + 10).await.unwrap().is_empty());
        let off = s.mark_agents_offline(now + 11).await.unwrap();
        assert_eq!(agent_ids(&off), vec!["a-1"]);
        assert!(s.mark_agents_offline(now + 11).await.unwrap().is_empty());

        // touch_agent: events arrived → back online, last_seen only moves forward.
        s.touch_agent("a-1", now + 20).await.unwrap();
        let cur = s.get_agent("a-1").await.unwrap().unwrap();
        assert_eq!((cur.last_seen, cur.offline_since), (now + 20, None));
        s.touch_agent("a-1", now + 15).await.unwrap();
        assert_eq!(
            s.get_agent("a-1").await.unwrap().unwrap().last_seen,
            now + 20
        );
        assert!(s.mark_agents_offline(now + 20).await.unwrap().is_empty());
        assert_eq!(
            agent_ids(&s.mark_agents_offline(now + 21).await.unwrap()),
            vec!["a-1"]
        );
        // touching with an old time still clears offline_since (events did arrive)
        s.touch_agent("a-1", now).await.unwrap();
        let cur = s.get_agent("a-1").await.unwrap().unwrap();
        assert_eq!((cur.last_seen, cur.offline_since), (now + 20, None));

        // A null heartbeat document clears the stored one.
        let mut hb3 = heartbeat("web-01", &[], now + 30);
        hb3.doc = serde_json::Value::Null;
        s.record_heartbeat("a-1", &hb3).await.unwrap().unwrap();
        assert!(
            s.get_agent("a-1")
                .await
                .unwrap()
                .unwrap()
                .last_heartbeat
                .is_none()
        );
    }

    pub async fn agents_concurrent_offline_sweep(s: S, _raw: Raw) {
        for i in 0..30 {
            s.insert_agent(&new_agent(&format!("a-{i:02}"), &format!("host-{i:02}")))
                .await
                .unwrap();
        }
        let cutoff = now_ms() + 1;
        for round in 0..2 {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    s.mark_agents_offline(cutoff + round).await.unwrap()
                }));
            }
            let mut seen = Vec::new();
            for task in tasks {
                seen.extend(task.await.unwrap().into_iter().map(|a| a.id));
            }
            seen.sort();
            let expected: Vec<String> = (0..30).map(|i| format!("a-{i:02}")).collect();
            assert_eq!(seen, expected, "round {round}");
            assert!(
                s.mark_agents_offline(cutoff + round)
                    .await
                    .unwrap()
                    .is_empty()
            );
            // all come back (heartbeats racing nothing), ready for the next round
            for i in 0..30 {
                let prev = s
                    .record_heartbeat(&format!("a-{i:02}"), &heartbeat("h", &[], cutoff))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(prev.offline_since.is_some());
            }
        }
    }

    // ------------------------------------------------------------ agent commands

    fn scan(agent_id: &str, path: &str) -> NewAgentCommand {
        NewAgentCommand {
            agent_id: agent_id.into(),
            kind: "scan_path".into(),
            args: json!({"path": path, "recursive": true}),
            requested_by: "bob-analyst".into(),
        }
    }

    const REDELIVER: Duration = Duration::from_secs(10 * 60);

    fn command_ids(commands: &[AgentCommand]) -> Vec<Uuid> {
        commands.iter().map(|c| c.id).collect()
    }

    pub async fn agent_commands_delivery(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-2", "web-02")).await.unwrap();

        // only for an enrolled, unrevoked agent, with valid input
        assert!(matches!(
            s.create_command(&scan("nope", "/tmp")).await,
            Err(StoreError::NotFound(_))
        ));
        for bad in [
            NewAgentCommand {
                kind: " ".into(),
                ..scan("a-1", "/tmp")
            },
            NewAgentCommand {
                args: json!(["/tmp"]),
                ..scan("a-1", "/tmp")
            },
            NewAgentCommand {
                requested_by: String::new(),
                ..scan("a-1", "/tmp")
            },
            scan("a-1", &"x".repeat(MAX_COMMAND_ARGS_BYTES)),
        ] {
            assert!(
                matches!(
                    s.create_command(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }

        let before = now_ms();
        let c1 = s.create_command(&scan("a-1", "/srv/www")).await.unwrap();
        let c2 = s.create_command(&scan("a-1", "C:\\Users")).await.unwrap();
        let other = s.create_command(&scan("a-2", "/home")).await.unwrap();
        assert_eq!(c1.status, CommandStatus::Pending);
        assert_eq!(
            (c1.agent_id.as_str(), c1.kind.as_str()),
            ("a-1", "scan_path")
        );
        assert_eq!(c1.args, json!({"path": "/srv/www", "recursive": true}));
        assert_eq!(c1.requested_by, "bob-analyst");
        assert!(c1.created_at >= before);
        assert_eq!(c1.id.get_version_num(), 7);
        assert!(c1.delivered_at.is_none() && c1.finished_at.is_none());
        assert!(c1.result.is_none() && c1.error.is_none() && c1.attempts == 0);
        assert_eq!(c2.args["path"], "C:\\Users");
        assert_eq!(s.get_command(c1.id).await.unwrap().unwrap(), c1);
        assert!(s.get_command(Uuid::now_v7()).await.unwrap().is_none());
        // newest first, per agent, bounded
        assert_eq!(
            command_ids(&s.list_agent_commands("a-1", 0).await.unwrap()),
            [c2.id, c1.id]
        );
        assert_eq!(
            command_ids(&s.list_agent_commands("a-1", 1).await.unwrap()),
            [c2.id]
        );
        assert!(s.list_agent_commands("nope", 10).await.unwrap().is_empty());

        assert_eq!(s.count_open_commands("a-1").await.unwrap(), 2);
        assert_eq!(s.count_open_commands("nope").await.unwrap(), 0);
        // the first take hands out both pending commands, oldest first
        let t0 = now_ms();
        let taken = s.take_for_delivery("a-1", t0, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&taken), [c1.id, c2.id]);
        for c in &taken {
            assert_eq!(c.status, CommandStatus::Delivered);
            assert_eq!((c.attempts, c.delivered_at), (1, Some(t0)));
        }
        assert_eq!(s.get_command(c1.id).await.unwrap().unwrap(), taken[0]);
        // nothing again before the redelivery delay; another agent's stay its own
        assert!(
            s.take_for_delivery("a-1", t0 + 1000, REDELIVER, 3)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            command_ids(&s.take_for_delivery("a-2", t0, REDELIVER, 3).await.unwrap()),
            [other.id]
        );
        // a new command comes with the next heartbeat alone
        let c3 = s.create_command(&scan("a-1", "/opt")).await.unwrap();
        assert_eq!(
            command_ids(
                &s.take_for_delivery("a-1", t0 + 2000, REDELIVER, 3)
                    .await
                    .unwrap()
            ),
            [c3.id]
        );
        // after the delay, the unfinished ones again (attempt 2)
        let t1 = t0 + 10 * MIN;
        let again = s.take_for_delivery("a-1", t1, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&again), [c1.id, c2.id]);
        assert!(
            again
                .iter()
                .all(|c| c.attempts == 2 && c.delivered_at == Some(t1))
        );
        // a finished one is not redelivered
        assert!(matches!(
            s.finish_command(
                c1.id,
                "a-1",
                CommandStatus::Done,
                Some(&json!({"files_scanned": 1})),
                None
            )
            .await
            .unwrap(),
            CommandFinish::Recorded(_)
        ));
        let t2 = t1 + 10 * MIN;
        let third = s.take_for_delivery("a-1", t2, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&third), [c2.id, c3.id]);
        assert_eq!(third[0].attempts, 3);
        assert_eq!(third[1].attempts, 2);
        // delivered the most times without a result: expired, not handed out
        // c1 is done; c2 and c3 still wait
        assert_eq!(s.count_open_commands("a-1").await.unwrap(), 2);
        let t3 = t2 + 10 * MIN;
        let last = s.take_for_delivery("a-1", t3, REDELIVER, 3).await.unwrap();
        assert_eq!(command_ids(&last), [c3.id]);
        let gone = s.get_command(c2.id).await.unwrap().unwrap();
        assert_eq!(gone.status, CommandStatus::Expired);
        assert_eq!((gone.attempts, gone.finished_at), (3, Some(t3)));
        assert!(gone.result.is_none());
        assert!(
            s.take_for_delivery("a-1", t3 + 60 * MIN, REDELIVER, 3)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.get_command(c3.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );
        // the finished one kept its result
        let done = s.get_command(c1.id).await.unwrap().unwrap();
        assert_eq!(done.status, CommandStatus::Done);
        assert_eq!(done.attempts, 2);

        // max_attempts 0 counts as 1; redeliver_after 0 redelivers at once
        let c4 = s.create_command(&scan("a-1", "/var")).await.unwrap();
        let t4 = now_ms();
        let once = s
            .take_for_delivery("a-1", t4, Duration::ZERO, 0)
            .await
            .unwrap();
        assert_eq!(command_ids(&once), [c4.id]);
        assert!(
            s.take_for_delivery("a-1", t4, Duration::ZERO, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.get_command(c4.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );

        // a revoked agent gets no new commands; its old ones stay readable
        assert!(s.revoke_agent("a-1", "alice").await.unwrap());
        assert!(matches!(
            s.create_command(&scan("a-1", "/tmp")).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.list_agent_commands("a-1", 100).await.unwrap().len(), 4);
    }

    pub async fn agent_commands_finish(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        s.insert_agent(&new_agent("a-2", "web-02")).await.unwrap();
        let c = s.create_command(&scan("a-1", "/srv")).await.unwrap();
        s.take_for_delivery("a-1", now_ms(), REDELIVER, 3)
            .await
            .unwrap();
        let result = json!({
            "files_scanned": 120, "files_skipped": 2, "bytes": 4096, "duration_ms": 15,
            "detections": [{"path": "/srv/x.php", "engine": "yara", "name": "webshell",
                            "severity": "high", "verdict": "malicious"}],
            "errors": ["/srv/locked: permission denied"],
            "note": "nul \u{0} inside",
        });

        // not another agent's, not an unknown id, not a status that is no result
        assert_eq!(
            s.finish_command(c.id, "a-2", CommandStatus::Done, Some(&result), None)
                .await
                .unwrap(),
            CommandFinish::Unknown
        );
        assert_eq!(
            s.finish_command(Uuid::now_v7(), "a-1", CommandStatus::Done, None, None)
                .await
                .unwrap(),
            CommandFinish::Unknown
        );
        for status in [
            CommandStatus::Pending,
            CommandStatus::Delivered,
            CommandStatus::Expired,
        ] {
            assert!(matches!(
                s.finish_command(c.id, "a-1", status, None, None).await,
                Err(StoreError::InvalidArgument(_))
            ));
        }
        let huge = json!({"blob": "x".repeat(MAX_COMMAND_RESULT_BYTES)});
        assert!(matches!(
            s.finish_command(c.id, "a-1", CommandStatus::Done, Some(&huge), None)
                .await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(
            s.get_command(c.id).await.unwrap().unwrap().status,
            CommandStatus::Delivered
        );

        // the owner, once
        let before = now_ms();
        let CommandFinish::Recorded(done) = s
            .finish_command(c.id, "a-1", CommandStatus::Done, Some(&result), None)
            .await
            .unwrap()
        else {
            panic!("not recorded");
        };
        assert_eq!(done.status, CommandStatus::Done);
        assert!(done.finished_at.is_some_and(|t| t >= before));
        let stored = done.result.clone().unwrap();
        assert_eq!(stored["files_scanned"], 120);
        assert_eq!(stored["detections"][0]["name"], "webshell");
        assert!(stored["note"].as_str().unwrap().starts_with("nul "));
        assert_eq!(s.get_command(c.id).await.unwrap().unwrap(), done);
        // a second result changes nothing and says so, with the first one
        let second = s
            .finish_command(c.id, "a-1", CommandStatus::Failed, None, Some("second try"))
            .await
            .unwrap();
        assert_eq!(second, CommandFinish::AlreadyFinished(done.clone()));
        assert_eq!(s.get_command(c.id).await.unwrap().unwrap(), done);

        // failed with an error and no result
        let f = s.create_command(&scan("a-1", "/nope")).await.unwrap();
        s.take_for_delivery("a-1", now_ms(), REDELIVER, 3)
            .await
            .unwrap();
        let CommandFinish::Recorded(failed) = s
            .finish_command(
                f.id,
                "a-1",
                CommandStatus::Failed,
                Some(&serde_json::Value::Null),
                Some("/nope: no such file or directory"),
            )
            .await
            .unwrap()
        else {
            panic!("not recorded");
        };
        assert_eq!(failed.status, CommandStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("/nope: no such file or directory")
        );
        assert!(failed.result.is_none());

        // an expired command still takes a late result, once
        let e = s.create_command(&scan("a-1", "/late")).await.unwrap();
        let t = now_ms();
        s.take_for_delivery("a-1", t, REDELIVER, 1).await.unwrap();
        s.take_for_delivery("a-1", t + 10 * MIN, REDELIVER, 1)
            .await
            .unwrap();
        assert_eq!(
            s.get_command(e.id).await.unwrap().unwrap().status,
            CommandStatus::Expired
        );
        let late = s
            .finish_command(
                e.id,
                "a-1",
                CommandStatus::Done,
                Some(&json!({"files_scanned": 3})),
                None,
            )
            .await
            .unwrap();
        assert!(matches!(late, CommandFinish::Recorded(ref c) if c.status == CommandStatus::Done));
        assert!(matches!(
            s.finish_command(e.id, "a-1", CommandStatus::Done, None, None)
                .await
                .unwrap(),
            CommandFinish::AlreadyFinished(_)
        ));
    }

    pub async fn agent_commands_concurrent_take(s: S, _raw: Raw) {
        s.insert_agent(&new_agent("a-1", "web-01")).await.unwrap();
        let mut created = Vec::new();
        for i in 0..20 {
            created.push(
                s.create_command(&scan("a-1", &format!("/d/{i}")))
                    .await
                    .unwrap()
                    .id,
            );
        }
        created.sort();
        let now = now_ms();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.take_for_delivery("a-1", now, REDELIVER, 3).await.unwrap()
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.extend(command_ids(&task.await.unwrap()));
        }
        seen.sort();
        assert_eq!(seen, created, "every command handed out exactly once");
        let listed = s.list_agent_commands("a-1", 100).await.unwrap();
        assert!(listed.iter().all(|c| c.attempts == 1));
    }

    // ------------------------------------------------------------ users and sessions

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

    fn new_user(name: &str, role: Role) -> NewUser {
        NewUser {
            username: name.into(),
            password_hash: PHC.into(),
            role,
            language: None,
            created_by: "bootstrap".into(),
        }
    }

    /// A fresh 32-byte "SHA-256" of a cookie secret.
    fn session_hash() -> Vec<u8> {
        let mut h = Uuid::new_v4().as_bytes().to_vec();
        h.extend_from_slice(Uuid::new_v4().as_bytes());
        h
    }

    fn new_session(user_id: i64, hash: &[u8], expires_at: i64) -> NewSession {
        NewSession {
            user_id,
            secret_hash: hash.to_vec(),
            csrf_token: "csrf-0123456789abcdef".into(),
            expires_at,
            ip: Some("10.0.0.7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        }
    }

    fn usernames(users: &[User]) -> Vec<&str> {
        users.iter().map(|u| u.username.as_str()).collect()
    }

    fn is_last_admin_error<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(StoreError::InvalidArgument(m)) if m.contains("the last administrator"))
    }

    pub async fn users_accounts(s: S, _raw: Raw) {
        assert_eq!(s.count_users().await.unwrap(), 0);
        assert!(s.list_users().await.unwrap().is_empty());
        let before = now_ms();
        let ann = s
            .create_user(&new_user("  Ann  ", Role::Admin))
            .await
            .unwrap();
        assert_eq!(ann.username, "Ann");
        assert_eq!((ann.role, ann.language.as_deref()), (Role::Admin, None));
        assert!(ann.created_at >= before && ann.updated_at == ann.created_at);
        assert_eq!(ann.created_by, "bootstrap");
        assert!(ann.last_login_at.is_none() && ann.disabled_at.is_none());
        assert_eq!(s.get_user(ann.id).await.unwrap().unwrap(), ann);
        assert!(s.get_user(ann.id + 1000).await.unwrap().is_none());
        // the hash is never part of a user
        assert!(!serde_json::to_string(&ann).unwrap().contains("argon2"));

        let mut op = new_user("Оператор", Role::Analyst);
        op.language = Some("ru".into());
        let op = s.create_user(&op).await.unwrap();
        assert_eq!(op.language.as_deref(), Some("ru"));
        s.create_user(&new_user("bob.smith@corp", Role::Viewer))
            .await
            .unwrap();
        s.create_user(&new_user("zed", Role::Viewer)).await.unwrap();
        assert_eq!(s.count_users().await.unwrap(), 4);

        // case-insensitive lookups, Unicode too; the hash comes only with find_user
        for name in ["ann", "ANN", " Ann "] {
            let (u, hash) = s.find_user(name).await.unwrap().unwrap();
            assert_eq!((u, hash.as_str()), (ann.clone(), PHC), "{name}");
        }
        for name in ["оператор", "ОПЕРАТОР", "ОпЕрАтОр"] {
            assert_eq!(s.find_user(name).await.unwrap().unwrap().0.id, op.id);
        }
        for name in [
            "an",
            "ann%",
            "ann_",
            "",
            "bob smith",
            "a'--",
            &"x".repeat(500),
        ] {
            assert!(s.find_user(name).await.unwrap().is_none(), "{name}");
        }

        // duplicates (case-insensitively) are refused and change nothing
        for dup in ["ann", "ANN", "оПЕРАТОР", " Zed"] {
            assert!(
                matches!(
                    s.create_user(&new_user(dup, Role::Viewer)).await,
                    Err(StoreError::Conflict(_))
                ),
                "{dup}"
            );
        }
        assert_eq!(s.count_users().await.unwrap(), 4);

        // invalid input
        let mut bad_hash = new_user("carl", Role::Viewer);
        bad_hash.password_hash = "plaintext password".into();
        let mut bad_lang = new_user("carl", Role::Viewer);
        bad_lang.language = Some("de".into());
        for bad in [
            new_user("", Role::Viewer),
            new_user("   ", Role::Viewer),
            new_user("a b", Role::Viewer),
            new_user("a/b", Role::Viewer),
            new_user("ann'; DROP TABLE users; --", Role::Viewer),
            new_user("nul\0", Role::Viewer),
            new_user(&"я".repeat(65), Role::Viewer),
            new_user("agent", Role::AgentIngest),
            bad_hash,
            bad_lang,
        ] {
            assert!(
                matches!(
                    s.create_user(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        // 64 Cyrillic letters are fine
        s.create_user(&new_user(&"я".repeat(64), Role::Viewer))
            .await
            .unwrap();
        assert_eq!(s.count_users().await.unwrap(), 5);

        // listing by name case-insensitively (byte order of the lower-cased names)
        assert_eq!(
            usernames(&s.list_users().await.unwrap()),
            vec![
                "Ann",
                "bob.smith@corp",
                "zed",
                "Оператор",
                "яяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяя"
            ]
        );

        // language
        let u = s
            .set_user_language(ann.id, Some("en"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.language.as_deref(), Some("en"));
        assert!(u.updated_at >= ann.updated_at);
        let u = s.set_user_language(op.id, None).await.unwrap().unwrap();
        assert!(u.language.is_none());
        assert!(matches!(
            s.set_user_language(op.id, Some("fr")).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(
            s.set_user_language(9999, Some("ru"))
                .await
                .unwrap()
                .is_none()
        );

        // password
        let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
        s.set_user_password(op.id, new_hash).await.unwrap().unwrap();
        assert_eq!(s.find_user("оператор").await.unwrap().unwrap().1, new_hash);
        assert!(matches!(
            s.set_user_password(op.id, "secret").await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(s.set_user_password(9999, new_hash).await.unwrap().is_none());

        // roles: agent-ingest is not an operator role
        let u = s.set_user_role(op.id, Role::Admin).await.unwrap().unwrap();
        assert_eq!(u.role, Role::Admin);
        assert!(matches!(
            s.set_user_role(op.id, Role::AgentIngest).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(s.set_user_role(9999, Role::Viewer).await.unwrap().is_none());
        assert!(s.set_user_disabled(9999, true).await.unwrap().is_none());

        // logins
        s.record_login(ann.id, T0).await.unwrap();
        s.record_login(9999, T0).await.unwrap();
        let u = s.get_user(ann.id).await.unwrap().unwrap();
        assert_eq!(u.last_login_at, Some(T0));

        // disabling keeps the account (and its name taken); enabling clears disabled_at
        let d = s.set_user_disabled(op.id, true).await.unwrap().unwrap();
        let since = d.disabled_at.unwrap();
        let again = s.set_user_disabled(op.id, true).await.unwrap().unwrap();
        assert_eq!(again.disabled_at, Some(since));
        assert!(
            s.find_user("оператор")
                .await
                .unwrap()
                .unwrap()
                .0
                .disabled_at
                .is_some()
        );
        assert!(matches!(
            s.create_user(&new_user("оператор", Role::Viewer)).await,
            Err(StoreError::Conflict(_))
        ));
        let e = s.set_user_disabled(op.id, false).await.unwrap().unwrap();
        assert!(e.disabled_at.is_none());
        assert_eq!(s.count_users().await.unwrap(), 5);
    }

    pub async fn users_last_admin(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s
            .create_user(&new_user("bob", Role::Analyst))
            .await
            .unwrap();

        // the only admin can be neither demoted nor disabled
        for role in [Role::Analyst, Role::Viewer] {
            assert!(is_last_admin_error(s.set_user_role(ann.id, role).await));
        }
        assert!(is_last_admin_error(s.set_user_disabled(ann.id, true).await));
        let cur = s.get_user(ann.id).await.unwrap().unwrap();
        assert_eq!((cur.role, cur.disabled_at), (Role::Admin, None));
        // "changing" to admin is fine; others change freely
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        s.set_user_role(bob.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();

        // a disabled admin does not count
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        s.set_user_role(bob.id, Role::Admin).await.unwrap().unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(is_last_admin_error(
            s.set_user_role(ann.id, Role::Viewer).await
        ));
        // a disabled admin may be demoted (it takes no enabled admin away)
        let b = s
            .set_user_role(bob.id, Role::Analyst)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.role, Role::Analyst);
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();

        // with two enabled admins, one can go
        s.set_user_role(bob.id, Role::Admin).await.unwrap().unwrap();
        let a = s
            .set_user_role(ann.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.role, Role::Viewer);
        assert!(is_last_admin_error(
            s.set_user_role(bob.id, Role::Viewer).await
        ));
        assert!(is_last_admin_error(s.set_user_disabled(bob.id, true).await));
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        let b = s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(b.disabled_at.is_some());
        assert!(is_last_admin_error(s.set_user_disabled(ann.id, true).await));
        let admins: Vec<User> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
            .collect();
        assert_eq!(usernames(&admins), vec!["ann"]);
    }

    pub async fn users_concurrent_demotion(s: S, _raw: Raw) {
        let first = s
            .create_user(&new_user("admin-0", Role::Admin))
            .await
            .unwrap();
        let mut survivor = first.id;
        for round in 1..=8 {
            let other = s
                .create_user(&new_user(&format!("admin-{round}"), Role::Admin))
                .await
                .unwrap();
            // two admins; two tasks each take one away at once (demote, or disable on odd
            // rounds)
            let mut tasks = Vec::new();
            for (i, id) in [survivor, other.id].into_iter().enumerate() {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let r = if round % 2 == 1 && i == 1 {
                        s.set_user_disabled(id, true).await
                    } else {
                        s.set_user_role(id, Role::Analyst).await
                    };
                    (id, r)
                }));
            }
            let mut ok = Vec::new();
            let mut refused = 0;
            for task in tasks {
                let (id, r) = task.await.unwrap();
                match r {
                    Ok(Some(_)) => ok.push(id),
                    r => {
                        assert!(is_last_admin_error(r), "round {round}");
                        refused += 1;
                    }
                }
            }
            assert_eq!((ok.len(), refused), (1, 1), "round {round}");
            let admins: Vec<i64> = s
                .list_users()
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
                .map(|u| u.id)
                .collect();
            assert_eq!(admins.len(), 1, "round {round}");
            assert_ne!(admins[0], ok[0]);
            survivor = admins[0];
        }
    }

    pub async fn sessions(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s
            .create_user(&new_user("Боб", Role::Analyst))
            .await
            .unwrap();
        let now = now_ms();
        let hour = 60 * MIN;

        let h1 = session_hash();
        let s1 = s
            .create_session(&new_session(bob.id, &h1, now + hour))
            .await
            .unwrap();
        assert_eq!(s1.user_id, bob.id);
        assert_eq!(s1.csrf_token, "csrf-0123456789abcdef");
        assert!(s1.created_at >= now && s1.last_seen_at == s1.created_at);
        assert_eq!(s1.expires_at, now + hour);
        assert_eq!(s1.ip.as_deref(), Some("10.0.0.7"));
        assert!(s1.user_agent.as_deref().unwrap().contains("Firefox"));
        let (found, user) = s.find_session(&h1).await.unwrap().unwrap();
        assert_eq!(found, s1);
        assert_eq!(user, bob);

        // unknown, malformed, empty hashes
        assert!(s.find_session(&session_hash()).await.unwrap().is_none());
        assert!(s.find_session(&h1[..31]).await.unwrap().is_none());
        assert!(s.find_session(&[]).await.unwrap().is_none());
        assert!(!s.delete_session(&[1, 2, 3]).await.unwrap());

        // an expired session is not found
        let h_old = session_hash();
        s.create_session(&new_session(bob.id, &h_old, now - 1))
            .await
            .unwrap();
        assert!(s.find_session(&h_old).await.unwrap().is_none());

        // invalid input, unknown user, hash taken
        let mut short = new_session(bob.id, &h1[..16], now + hour);
        short.secret_hash.truncate(16);
        let mut no_csrf = new_session(bob.id, &session_hash(), now + hour);
        no_csrf.csrf_token = String::new();
        let mut bad_csrf = new_session(bob.id, &session_hash(), now + hour);
        bad_csrf.csrf_token = "a b".into();
        for bad in [short, no_csrf, bad_csrf] {
            assert!(
                matches!(
                    s.create_session(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            s.create_session(&new_session(9999, &session_hash(), now + hour))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.create_session(&new_session(ann.id, &h1, now + hour))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.find_session(&h1).await.unwrap().unwrap().1.id, bob.id);

        // long client texts are cut, not refused (multi-byte characters stay whole)
        let h_long = session_hash();
        let mut long = new_session(ann.id, &h_long, now + hour);
        long.user_agent = Some("ж".repeat(1000));
        long.ip = Some("1".repeat(1000));
        let l = s.create_session(&long).await.unwrap();
        assert_eq!(l.user_agent.as_deref(), Some("ж".repeat(256).as_str()));
        assert_eq!(l.ip.map(|ip| ip.len()), Some(128));

        // a disabled user's sessions are gone and none can be made; enabling does not revive
        let h2 = session_hash();
        s.create_session(&new_session(bob.id, &h2, now + hour))
            .await
            .unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(s.find_session(&h1).await.unwrap().is_none());
        assert!(s.find_session(&h2).await.unwrap().is_none());
        assert!(matches!(
            s.create_session(&new_session(bob.id, &session_hash(), now + hour))
                .await,
            Err(StoreError::InvalidArgument(_))
        ));
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        assert!(s.find_session(&h1).await.unwrap().is_none());
        // disabling ended the expired session too
        assert_eq!(s.delete_user_sessions(bob.id).await.unwrap(), 0);

        // logout
        let h3 = session_hash();
        s.create_session(&new_session(bob.id, &h3, now + hour))
            .await
            .unwrap();
        assert!(s.delete_session(&h3).await.unwrap());
        assert!(!s.delete_session(&h3).await.unwrap());
        assert!(s.find_session(&h3).await.unwrap().is_none());

        // delete_user_sessions ends only that user's sessions
        let hs: Vec<Vec<u8>> = (0..3).map(|_| session_hash()).collect();
        for h in &hs {
            s.create_session(&new_session(bob.id, h, now + hour))
                .await
                .unwrap();
        }
        assert_eq!(s.delete_user_sessions(bob.id).await.unwrap(), 3);
        assert!(s.find_session(&hs[0]).await.unwrap().is_none());
        assert!(s.find_session(&h_long).await.unwrap().is_some());
        assert_eq!(s.delete_user_sessions(9999).await.unwrap(), 0);

        // a password change ends the user's sessions (only that user's)
        let h4 = session_hash();
        s.create_session(&new_session(bob.id, &h4, now + hour))
            .await
            .unwrap();
        s.set_user_password(bob.id, PHC).await.unwrap().unwrap();
        assert!(s.find_session(&h4).await.unwrap().is_none());
        assert!(s.find_session(&h_long).await.unwrap().is_some());

        // purge: only expired ones
        let h5 = session_hash();
        s.create_session(&new_session(ann.id, &h5, now + 2 * hour))
            .await
            .unwrap();
        let h6 = session_hash();
        s.create_session(&new_session(ann.id, &h6, now + 10))
            .await
            .unwrap();
        assert_eq!(s.purge_expired_sessions(now + hour).await.unwrap(), 2);
        assert_eq!(s.purge_expired_sessions(now + hour).await.unwrap(), 0);
        assert!(s.find_session(&h5).await.unwrap().is_some());
        assert!(!s.delete_session(&h6).await.unwrap());
        assert!(!s.delete_session(&h_long).await.unwrap());
        assert_eq!(s.purge_expired_sessions(now + 3 * hour).await.unwrap(), 1);
        assert!(s.find_session(&h5).await.unwrap().is_none());
    }

    pub async fn session_last_seen_throttled(s: S, raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let h = session_hash();
        let created = s
            .create_session(&new_session(ann.id, &h, now_ms() + 60 * MIN))
            .await
            .unwrap();
        // within a minute of the last write nothing is written
        for _ in 0..3 {
            let (found, _) = s.find_session(&h).await.unwrap().unwrap();
            assert_eq!(found.last_seen_at, created.last_seen_at);
        }
        // older than a minute: updated to now, and stored
        raw.exec(&format!(
            "UPDATE sessions SET last_seen_at = last_seen_at - {} WHERE id = {}",
            2 * MIN,
            created.id
        ))
        .await
        .unwrap();
        let before = now_ms();
        let (found, _) = s.find_session(&h).await.unwrap().unwrap();
        assert!(found.last_seen_at >= before);
        let (again, _) = s.find_session(&h).await.unwrap().unwrap();
        assert_eq!(again.last_seen_at, found.last_seen_at);
        // 59 seconds old: still not written
        raw.exec(&format!(
            "UPDATE sessions SET last_seen_at = {} WHERE id = {}",
            now_ms() - MIN + 1000,
            created.id
        ))
        .await
        .unwrap();
        let (stale, _) = s.find_session(&h).await.unwrap().unwrap();
        assert!(stale.last_seen_at < now_ms() - MIN / 2);
        assert_eq!(
            s.find_session(&h).await.unwrap().unwrap().0.last_seen_at,
            stale.last_seen_at
        );
    }

    pub async fn token_owners(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s.create_user(&new_user("bob", Role::Admin)).await.unwrap();
        let token = |name: &str, role: Role, owner: Option<i64>| NewToken {
            name: name.into(),
            role,
            expires_at: None,
            owner,
        };
        let a1 = s
            .create_token(&token("ann admin", Role::Admin, Some(ann.id)))
            .await
            .unwrap();
        assert_eq!(a1.info.owner, Some(ann.id));
        let a2 = s
            .create_token(&token("ann viewer", Role::Viewer, Some(ann.id)))
            .await
            .unwrap();
        let b1 = s
            .create_token(&token("bob analyst", Role::Analyst, Some(bob.id)))
            .await
            .unwrap();
        let service = s
            .create_token(&token("ci", Role::Admin, None))
            .await
            .unwrap();
        assert_eq!(service.info.owner, None);
        assert!(matches!(
            s.create_token(&token("ghost", Role::Viewer, Some(9999)))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.list_tokens().await.unwrap().len(), 4);

        let role_of = |secret: String| {
            let s = s.clone();
            async move { s.verify_token(&secret).await.unwrap().map(|t| t.role) }
        };
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Admin));
        assert_eq!(role_of(a2.secret.clone()).await, Some(Role::Viewer));
        let v = s.verify_token(&b1.secret).await.unwrap().unwrap();
        assert_eq!((v.owner, v.role), (Some(bob.id), Role::Analyst));

        // the owner's role caps the token's: demoted ann's admin token acts as analyst, her
        // viewer token stays viewer; the stored role is unchanged
        s.set_user_role(ann.id, Role::Analyst)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Analyst));
        assert_eq!(role_of(a2.secret.clone()).await, Some(Role::Viewer));
        s.set_user_role(ann.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Viewer));
        let listed = s.list_user_tokens(ann.id).await.unwrap();
        assert_eq!(listed[0].role, Role::Admin);
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Admin));

        // a disabled owner's tokens do not verify; enabled again, they do
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(s.verify_token(&b1.secret).await.unwrap().is_none());
        assert_eq!(role_of(service.secret.clone()).await, Some(Role::Admin));
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        assert_eq!(role_of(b1.secret.clone()).await, Some(Role::Analyst));

        // per-user listing
        let ids = |ts: Vec<TokenInfo>| ts.into_iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.list_user_tokens(ann.id).await.unwrap()),
            vec![a1.info.id, a2.info.id]
        );
        assert_eq!(
            ids(s.list_user_tokens(bob.id).await.unwrap()),
            vec![b1.info.id]
        );
        assert!(s.list_user_tokens(9999).await.unwrap().is_empty());

        // per-user revocation: another user's (or a service) token cannot be revoked
        assert!(!s.revoke_user_token(bob.id, a1.info.id).await.unwrap());
        assert!(!s.revoke_user_token(bob.id, service.info.id).await.unwrap());
        assert!(s.verify_token(&a1.secret).await.unwrap().is_some());
        assert!(s.revoke_user_token(ann.id, a1.info.id).await.unwrap());
        assert!(!s.revoke_user_token(ann.id, a1.info.id).await.unwrap());
        assert!(s.verify_token(&a1.secret).await.unwrap().is_none());
        let listed = s.list_user_tokens(ann.id).await.unwrap();
        assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());
        assert!(s.verify_token(&a2.secret).await.unwrap().is_some());
        // the global revoke still works on owned tokens
        assert!(s.revoke_token(b1.info.id).await.unwrap());
        assert!(s.verify_token(&b1.secret).await.unwrap().is_none());
        let all = s.list_tokens().await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.owner).collect::<Vec<_>>(),
            vec![Some(ann.id), Some(ann.id), Some(bob.id), None]
        );
    }
}
