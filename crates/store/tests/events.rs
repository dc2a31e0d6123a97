//! Events: idempotent inserts, pipeline batches and redelivery, retention, histograms and stats,
//! odd documents. Every scenario runs against SQLite (always) and PostgreSQL (when
//! `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::collections::HashSet;

use common::*;
use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

suite!(
    idempotent_inserts,
    batch_redelivery_does_not_double_count,
    concurrent_redelivery_counts_once,
    batch_is_atomic,
    retention_purge,
    histogram_and_stats,
    odd_documents,
    scans_walk_forward_without_gaps_or_repeats,
);

mod scenarios {
    use super::*;

    /// The anomaly job's walk: pages of 7 over 40 events, ties on time broken by id, by event
    /// time and by arrival, bounded on both sides.
    pub async fn scans_walk_forward_without_gaps_or_repeats(s: S, _raw: Raw) {
        let batch: Vec<NewEvent> = (0..40)
            .map(|i| {
                let mut e = ev(T0 + (i / 4) * 1000, Some("a1"), json!({"n": i}));
                // Arrival order is the reverse of event time: an old log uploaded late.
                e.received_at = T0 + 100_000 - (i / 3) * 10;
                e
            })
            .collect();
        s.insert_events(&batch).await.unwrap();
        for order in [ScanOrder::Time, ScanOrder::Received] {
            let key = |e: &StoredEvent| match order {
                ScanOrder::Time => e.ts,
                ScanOrder::Received => e.received_at,
            };
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = s
                    .scan_events(&EventScan {
                        order,
                        after,
                        from: None,
                        before: None,
                        limit: 7,
                    })
                    .await
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some((key(last), last.id));
                seen.extend(page);
            }
            assert_eq!(seen.len(), 40, "{order:?}");
            let ids: HashSet<Uuid> = seen.iter().map(|e| e.id).collect();
            assert_eq!(ids.len(), 40, "{order:?}: an event came twice");
            assert!(
                seen.windows(2)
                    .all(|w| (key(&w[0]), w[0].id) < (key(&w[1]), w[1].id)),
                "{order:?}: not in order"
            );
        }
        // Bounds: [from, before) on the chosen clock.
        let window = s
            .scan_events(&EventScan {
                order: ScanOrder::Time,
                after: None,
                from: Some(T0 + 2000),
                before: Some(T0 + 4000),
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(window.len(), 8);
        assert!(window.iter().all(|e| e.ts >= T0 + 2000 && e.ts < T0 + 4000));
        // A page size of 0 still makes progress (one event), never an endless empty loop.
        let one = s
            .scan_events(&EventScan {
                order: ScanOrder::Received,
                after: None,
                from: None,
                before: None,
                limit: 0,
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
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
                received: false,
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
}
