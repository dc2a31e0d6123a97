//! Alerts: aggregation, the workflow with history and comments, listing filters and pages, rule
//! state. Every scenario runs against SQLite (always) and PostgreSQL (when
//! `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

suite!(
    alert_aggregation_window,
    alert_event_ids_are_bounded,
    alert_workflow_history_comments,
    alert_listing_filters_and_pages,
    alert_counts,
    rule_state,
    hosts_and_alert_hosts,
    alert_tag_filter,
    exceptions_count_instead_of_alerting,
);

mod scenarios {
    use super::*;

    pub async fn exceptions_count_instead_of_alerting(s: S, _raw: Raw) {
        let backup = |ts: i64, user: &str| {
            ev(
                ts,
                None,
                json!({"host": {"name": "DB-01"}, "user": {"name": user}}),
            )
        };
        let add = NewException {
            rule_id: "r1".into(),
            conditions: vec![
                ExceptionCondition {
                    field: "host.name".into(),
                    value: "db-01".into(),
                },
                ExceptionCondition {
                    field: "user.name".into(),
                    value: " svc_backup ".into(),
                },
            ],
            reason: "nightly backup job".into(),
            expires_at: None,
        };
        let e = s.add_exception(&add, "ann").await.unwrap();
        assert_eq!((e.suppressed, e.created_by.as_str()), (0, "ann"));
        assert_eq!(e.conditions[1].value, "svc_backup", "trimmed");

        // The backup user's matches are counted, another user's alert; another rule too.
        let events = vec![
            backup(T0, "svc_backup"),
            backup(T0 + MIN, "SVC_BACKUP"),
            backup(T0 + 2 * MIN, "ivan"),
        ];
        let mut dets: Vec<Detection> = events.iter().map(|e| det("r1", None, e)).collect();
        dets.push(det("r2", None, &events[0]));
        let report = s.store_batch(&events, &dets, WINDOW).await.unwrap();
        assert_eq!(report.detections_suppressed, 2, "{report:?}");
        assert_eq!(report.detections_recorded, 2);
        assert_eq!(report.alerts_created, 2);
        let r1 = s
            .list_alerts(&AlertQuery {
                rule_id: Some("r1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r1.alerts.len(), 1);
        assert_eq!(r1.alerts[0].event_ids, vec![events[2].id]);
        let listed = s.list_exceptions().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].suppressed, 2);
        assert!(listed[0].last_suppressed_at.is_some());

        // Removed: the next match alerts again.
        let gone = s.delete_exception(e.id).await.unwrap().expect("was there");
        assert_eq!(gone.suppressed, 2);
        assert!(s.delete_exception(e.id).await.unwrap().is_none());
        let again = vec![backup(T0 + 3 * MIN, "svc_backup")];
        let report = s
            .store_batch(&again, &[det("r1", None, &again[0])], WINDOW)
            .await
            .unwrap();
        assert_eq!(report.detections_suppressed, 0);

        // An expired exception suppresses nothing; a bad one is refused with the reason.
        let mut expired = add.clone();
        expired.expires_at = Some(now_ms() + 50);
        s.add_exception(&expired, "ann").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        let later = vec![backup(T0 + 4 * MIN, "svc_backup")];
        let report = s
            .store_batch(&later, &[det("r1", None, &later[0])], WINDOW)
            .await
            .unwrap();
        assert_eq!(report.detections_suppressed, 0);
        let mut bad = add.clone();
        bad.conditions.clear();
        match s.add_exception(&bad, "ann").await {
            Err(StoreError::InvalidArgument(m)) => assert!(m.contains("condition"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    pub async fn hosts_and_alert_hosts(s: S, _raw: Raw) {
        // Uploaded logs (no agent) from two hosts, one spelled two ways, and an agent's events.
        let named = |ts: i64, agent: Option<&str>, host: &str| {
            ev(
                ts,
                agent,
                json!({"host": {"name": host}, "event": {"code": "1"}}),
            )
        };
        let e1 = named(T0, None, "WS-01");
        let e2 = named(T0 + MIN, None, "ws-01");
        let e3 = named(T0 + 2 * MIN, None, "DB-02");
        let e4 = named(T0 + 3 * MIN, Some("agent-9"), "Laptop-Ann");
        let nameless = ev(T0 + 4 * MIN, None, json!({"event": {"code": "1"}}));
        let events = vec![
            e1.clone(),
            e2.clone(),
            e3.clone(),
            e4.clone(),
            nameless.clone(),
        ];
        let dets: Vec<Detection> = [&e1, &e2, &e3, &e4, &nameless]
            .into_iter()
            .map(|e| det("r1", e.agent_id.as_deref(), e))
            .collect();
        let report = s.store_batch(&events, &dets, WINDOW).await.unwrap();
        // One rule, no agent: still one alert per host (and one for the nameless event).
        assert_eq!(report.alerts_created, 4, "{report:?}");
        let page = s.list_alerts(&AlertQuery::default()).await.unwrap();
        let mut hosts: Vec<(Option<String>, i64)> = page
            .alerts
            .iter()
            .map(|a| (a.host.clone(), a.count))
            .collect();
        hosts.sort();
        assert_eq!(
            hosts,
            vec![
                (None, 1),
                (Some("DB-02".into()), 1),
                (Some("Laptop-Ann".into()), 1),
                (Some("WS-01".into()), 2),
            ]
        );
        // The host filter ignores letter case.
        let ws = s
            .list_alerts(&AlertQuery {
                host: Some("Ws-01".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ws.alerts.len(), 1);
        assert_eq!(ws.alerts[0].event_ids, vec![e1.id, e2.id]);

        // The same batch again stores nothing and counts nothing twice.
        s.store_batch(&events, &dets, WINDOW).await.unwrap();
        let hosts = s.list_hosts(&HostQuery::default()).await.unwrap();
        let mut seen: Vec<(String, Option<String>, i64, i64)> = hosts
            .iter()
            .map(|h| (h.name.clone(), h.agent_id.clone(), h.events, h.open_alerts))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("DB-02".into(), None, 1, 1),
                ("Laptop-Ann".into(), Some("agent-9".into()), 1, 1),
                ("WS-01".into(), None, 2, 1),
            ]
        );
        let ws = s.get_host("WS-01").await.unwrap().expect("host");
        assert_eq!((ws.first_seen, ws.last_seen), (T0, T0 + MIN));
        assert_eq!(ws.alerts, 1);
        assert!(s.get_host("nobody").await.unwrap().is_none());
        let found = s
            .list_hosts(&HostQuery {
                search: Some("LAPTOP".into()),
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "Laptop-Ann");

        // Events stored without detections name their hosts too.
        s.insert_events(&[named(T0 - MIN, None, "ws-01")])
            .await
            .unwrap();
        let ws = s.get_host("ws-01").await.unwrap().expect("host");
        assert_eq!((ws.events, ws.first_seen), (3, T0 - MIN));

        // Detection time: listing and filtering by when Dozor raised the alert. Every alert
        // here was raised now, years after its events.
        let recent = s
            .list_alerts(&AlertQuery {
                time: AlertTime::Detected,
                from: Some(now_ms() - 3_600_000),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(recent.alerts.len(), 4);
        let by_event = s
            .count_alerts(&AlertQuery {
                from: Some(now_ms() - 3_600_000),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_event, 0);
        // The rule filter takes what a person types: an id, or words of the title.
        for text in ["r1", "rule r1", "RULE R"] {
            let n = s
                .count_alerts(&AlertQuery {
                    rule_text: Some(text.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(n, 4, "{text}");
        }
        let none = s
            .count_alerts(&AlertQuery {
                rule_text: Some("r1%".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(none, 0, "LIKE wildcards are literal");
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

    /// 30 alerts an hour apart of rules r0..r2 on agents h0/h1, levels cycling through all
    /// five; the first resolved, the second assigned to ann.
    async fn thirty_alerts(s: &S) -> Vec<Alert> {
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
        made
    }

    pub async fn alert_listing_filters_and_pages(s: S, _raw: Raw) {
        let made = thirty_alerts(&s).await;
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

    pub async fn alert_counts(s: S, _raw: Raw) {
        assert_eq!(s.count_alerts(&AlertQuery::default()).await.unwrap(), 0);
        let made = thirty_alerts(&s).await;
        s.assign_alert(made[2].id, Some("ann")).await.unwrap();

        // Every filter counts what the listing (all its pages) holds.
        let filters = [
            AlertQuery::default(),
            AlertQuery {
                statuses: vec![AlertStatus::Resolved],
                ..Default::default()
            },
            AlertQuery {
                statuses: vec![AlertStatus::New, AlertStatus::Acknowledged],
                ..Default::default()
            },
            AlertQuery {
                min_level: Some(Level::High),
                ..Default::default()
            },
            AlertQuery {
                rule_id: Some("r1".into()),
                agent_id: Some("h1".into()),
                ..Default::default()
            },
            AlertQuery {
                assignee: Some("ann".into()),
                ..Default::default()
            },
            AlertQuery {
                from: Some(T0 + 10 * 60 * MIN),
                to: Some(T0 + 20 * 60 * MIN),
                ..Default::default()
            },
            AlertQuery {
                rule_id: Some("nope".into()),
                ..Default::default()
            },
        ];
        let expected = [30, 1, 29, 12, 5, 2, 10, 0];
        for (f, want) in filters.iter().zip(expected) {
            let listed = s
                .list_alerts(&AlertQuery {
                    limit: 1000,
                    ..f.clone()
                })
                .await
                .unwrap();
            assert_eq!(listed.alerts.len() as u64, want, "{f:?}");
            assert_eq!(s.count_alerts(f).await.unwrap(), want, "{f:?}");
        }

        // The total, not the page: limit and cursor are ignored (even a malformed cursor).
        let mut paged = AlertQuery {
            limit: 7,
            ..Default::default()
        };
        let page = s.list_alerts(&paged).await.unwrap();
        assert_eq!(page.alerts.len(), 7);
        paged.cursor = page.next_cursor;
        assert!(paged.cursor.is_some());
        assert_eq!(s.count_alerts(&paged).await.unwrap(), 30);
        paged.cursor = Some("garbage".into());
        assert_eq!(s.count_alerts(&paged).await.unwrap(), 30);
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

    pub async fn alert_tag_filter(s: S, _raw: Raw) {
        let tagged = |rule: &str, tags: &[&str], ts: i64| Detection {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..det_at(rule, None, ts)
        };
        for d in [
            tagged("ps", &["attack.execution", "attack.t1059.001"], T0),
            tagged("shell", &["attack.T1059"], T0 + MIN),
            tagged("lsass", &["attack.t1003.001"], T0 + 2 * MIN),
            tagged("odd", &["a_b%c!d"], T0 + 3 * MIN),
            tagged("none", &[], T0 + 4 * MIN),
        ] {
            s.record_detection(&d, WINDOW).await.unwrap();
        }
        let rules = |tag: &str| {
            let s = s.clone();
            let tag = tag.to_owned();
            async move {
                let q = AlertQuery {
                    tag: Some(tag),
                    ..Default::default()
                };
                let mut ids: Vec<String> = s
                    .list_alerts(&q)
                    .await
                    .unwrap()
                    .alerts
                    .into_iter()
                    .map(|a| a.rule_id)
                    .collect();
                ids.sort();
                let n = s.count_alerts(&q).await.unwrap();
                assert_eq!(n, ids.len() as u64, "count of {q:?}");
                ids
            }
        };
        // the tag itself or one under it, any letter case
        assert_eq!(rules("attack.t1059").await, ["ps", "shell"]);
        assert_eq!(rules("ATTACK.T1059").await, ["ps", "shell"]);
        assert_eq!(rules("attack.t1059.001").await, ["ps"]);
        assert_eq!(rules("attack.execution").await, ["ps"]);
        assert_eq!(rules("attack.t1003").await, ["lsass"]);
        // not a text prefix, and LIKE's wildcards are plain characters
        assert!(rules("attack.t105").await.is_empty());
        assert!(rules("attack").await.len() == 3);
        assert_eq!(rules("a_b%c!d").await, ["odd"]);
        assert!(rules("a_b%c").await.is_empty());
        assert!(rules("axb%c!d").await.is_empty());
        // empty: no filter; with the other filters
        assert_eq!(rules(" ").await.len(), 5);
        let q = AlertQuery {
            tag: Some("attack.t1059".into()),
            from: Some(T0 + MIN),
            ..Default::default()
        };
        let page = s.list_alerts(&q).await.unwrap();
        assert_eq!(page.alerts.len(), 1);
        assert_eq!(page.alerts[0].rule_id, "shell");
    }
}
