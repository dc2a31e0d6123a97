//! Incidents: grouping alerts, the case's fields with their history, tasks, notes,
//! observables, playbook runs of its alerts, and suggestions. Every scenario runs against
//! SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(incident_lifecycle, incident_suggestions_group_by_host);

/// Three alerts on WS-7 (two rules, one repeated later) and one on DB-1.
async fn four_alerts(s: &S) -> Vec<Alert> {
    let on = |ts: i64, host: &str| ev(ts, None, json!({"host": {"name": host}}));
    let events = [
        on(T0, "WS-7"),
        on(T0 + MIN, "WS-7"),
        on(T0 + 2 * MIN, "DB-1"),
        on(T0 + 3 * MIN, "WS-7"),
    ];
    let dets = [
        det("r1", None, &events[0]),
        det("r2", None, &events[1]),
        det("r1", None, &events[2]),
        det("r3", None, &events[3]),
    ];
    s.store_batch(&events, &dets, WINDOW).await.unwrap();
    let mut alerts = s.list_alerts(&AlertQuery::default()).await.unwrap().alerts;
    alerts.sort_by_key(|a| a.first_seen);
    assert_eq!(alerts.len(), 4);
    alerts
}

mod scenarios {
    use super::*;

    pub async fn incident_lifecycle(s: S, _raw: Raw) {
        let alerts = four_alerts(&s).await;
        let ws: Vec<i64> = alerts
            .iter()
            .filter(|a| a.host.as_deref() == Some("WS-7"))
            .map(|a| a.id)
            .collect();
        assert_eq!(ws.len(), 3);

        // Refused with the reason, nothing stored.
        let mut bad = NewIncident {
            title: "  ".into(),
            description: String::new(),
            severity: None,
            owner: None,
            alert_ids: vec![],
        };
        let e = s.create_incident(&bad, "ann").await.unwrap_err();
        assert!(e.to_string().contains("title is blank"), "{e}");
        bad.title = "x".into();
        bad.alert_ids = vec![ws[0], 999_999];
        let e = s.create_incident(&bad, "ann").await.unwrap_err();
        assert!(
            matches!(e, StoreError::NotFound(ref w) if w == "alert 999999"),
            "{e}"
        );
        assert!(
            s.list_incidents(&IncidentQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.incident_of_alert(ws[0]).await.unwrap(), None);

        // Opened from three alerts: severity from their highest level (high).
        let new = NewIncident {
            title: " Lateral movement from WS-7 ".into(),
            description: "PowerShell then a new service".into(),
            severity: None,
            owner: Some("ann".into()),
            alert_ids: ws.clone(),
        };
        let inc = s.create_incident(&new, "ann").await.unwrap();
        assert_eq!(inc.title, "Lateral movement from WS-7");
        assert_eq!(inc.severity, IncidentSeverity::High);
        assert_eq!(inc.status, IncidentStatus::Open);
        assert_eq!((inc.alert_count, inc.owner.as_deref()), (3, Some("ann")));
        assert_eq!(s.incident_of_alert(ws[1]).await.unwrap(), Some(inc.id));

        // An alert belongs to one incident only.
        let other = s
            .create_incident(
                &NewIncident {
                    title: "Other".into(),
                    description: String::new(),
                    severity: Some(IncidentSeverity::Low),
                    owner: None,
                    alert_ids: vec![],
                },
                "bob",
            )
            .await
            .unwrap();
        let e = s
            .add_incident_alerts(other.id, &[ws[0]], "bob")
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("in incident {}", inc.id)),
            "{e}"
        );
        // Adding one already there adds nothing; removing moves it free.
        assert!(
            s.add_incident_alerts(inc.id, &[ws[0]], "ann")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.remove_incident_alert(inc.id, ws[2], "ann").await.unwrap());
        assert!(!s.remove_incident_alert(inc.id, ws[2], "ann").await.unwrap());
        assert_eq!(
            s.add_incident_alerts(other.id, &[ws[2]], "bob")
                .await
                .unwrap(),
            vec![ws[2]]
        );

        // Patch: only real changes are written to the history.
        let patch = IncidentPatch {
            status: Some(IncidentStatus::InProgress),
            owner: Some("bob".into()),
            severity: Some(IncidentSeverity::High),
            ..Default::default()
        };
        let after = s.update_incident(inc.id, &patch, "ann").await.unwrap();
        assert_eq!(after.status, IncidentStatus::InProgress);
        assert_eq!(after.owner.as_deref(), Some("bob"));
        assert!(after.closed_at.is_none());
        let closed = s
            .update_incident(
                inc.id,
                &IncidentPatch {
                    status: Some(IncidentStatus::Closed),
                    ..Default::default()
                },
                "bob",
            )
            .await
            .unwrap();
        assert!(closed.closed_at.is_some());
        let e = s.update_incident(424_242, &patch, "ann").await.unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        let same = s
            .update_incident(inc.id, &IncidentPatch::default(), "ann")
            .await
            .unwrap();
        assert_eq!(same, closed, "an empty patch changes nothing");

        // Tasks, notes, observables.
        let t = s
            .add_incident_task(inc.id, "Isolate WS-7", "ann")
            .await
            .unwrap();
        assert!(!t.done);
        let t = s
            .set_incident_task(inc.id, t.id, true, "bob")
            .await
            .unwrap();
        assert_eq!((t.done, t.done_by.as_deref()), (true, Some("bob")));
        assert!(
            s.set_incident_task(other.id, t.id, true, "bob")
                .await
                .is_err()
        );
        s.add_incident_task(inc.id, "Reset the password of ivan", "ann")
            .await
            .unwrap();
        s.add_incident_note(inc.id, "Seen beaconing to 203.0.113.9", "bob")
            .await
            .unwrap();
        assert!(s.add_incident_note(inc.id, " ", "bob").await.is_err());
        let ip = NewObservable {
            kind: ObservableKind::Ip,
            value: "203.0.113.9".into(),
            note: "C2".into(),
        };
        let o = s.add_incident_observable(inc.id, &ip, "bob").await.unwrap();
        let e = s
            .add_incident_observable(inc.id, &ip, "bob")
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        let hash = NewObservable {
            kind: ObservableKind::Hash,
            value: "44D88612FEA8A8F36DE82E1278ABB02F".into(),
            note: String::new(),
        };
        let h = s
            .add_incident_observable(inc.id, &hash, "bob")
            .await
            .unwrap();
        assert_eq!(h.value, "44d88612fea8a8f36de82e1278abb02f");
        let e = s
            .add_incident_observable(
                inc.id,
                &NewObservable {
                    kind: ObservableKind::Ip,
                    value: "10.0.0.300".into(),
                    note: String::new(),
                },
                "bob",
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a valid ip"), "{e}");
        assert!(
            s.remove_incident_observable(inc.id, h.id, "bob")
                .await
                .unwrap()
                .is_some()
        );

        // A playbook run on one of its alerts shows on the incident.
        s.create_playbook_run(&NewPlaybookRun {
            id: uuid::Uuid::now_v7().to_string(),
            playbook: "isolate".into(),
            trigger: "alert".into(),
            alert_id: Some(ws[0]),
            agent_id: None,
            requested_by: "trigger".into(),
            dry_run: true,
            vars: json!({}),
        })
        .await
        .unwrap();

        let d = s.get_incident(inc.id).await.unwrap().expect("there");
        assert_eq!(
            d.alerts.iter().map(|a| a.id).collect::<Vec<_>>(),
            ws[..2].to_vec()
        );
        assert_eq!((d.incident.tasks_total, d.incident.tasks_done), (2, 1));
        assert_eq!(d.notes.len(), 1);
        assert_eq!(d.observables, vec![o]);
        assert_eq!(d.playbook_runs.len(), 1);
        let actions: Vec<&str> = d.history.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "created",
                "alerts_added",
                "alert_removed",
                "status",
                "owner",
                "status",
                "task_added",
                "task_done",
                "task_added",
                "observable_added",
                "observable_added",
                "observable_removed",
            ],
            "severity was high already, so no severity change"
        );
        assert_eq!(d.history[3].detail, "open → in_progress");
        // The merged timeline: alerts by event time first (2023), then the case's work (now).
        let tl = d.timeline();
        assert_eq!(tl[0].kind, "alert");
        assert!(tl.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(tl.iter().any(|e| e.kind == "note"));
        assert!(tl.iter().any(|e| e.kind == "playbook"));

        // Listing: filters by status and owner, most recently changed first.
        let closed_only = s
            .list_incidents(&IncidentQuery {
                statuses: vec![IncidentStatus::Closed],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            closed_only.iter().map(|i| i.id).collect::<Vec<_>>(),
            [inc.id]
        );
        let open = s
            .list_incidents(&IncidentQuery {
                statuses: vec![IncidentStatus::Open, IncidentStatus::InProgress],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(open.iter().map(|i| i.id).collect::<Vec<_>>(), [other.id]);
        let bobs = s
            .list_incidents(&IncidentQuery {
                owner: Some("bob".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(bobs.len(), 1);
        assert_eq!(
            s.list_incidents(&IncidentQuery::default())
                .await
                .unwrap()
                .len(),
            2
        );
    }

    pub async fn incident_suggestions_group_by_host(s: S, _raw: Raw) {
        let alerts = four_alerts(&s).await;
        let since = now_ms() - 60 * MIN;
        let sug = s.suggest_incidents(since).await.unwrap();
        assert_eq!(sug.len(), 1, "DB-1 has one alert only: {sug:?}");
        assert_eq!(sug[0].host, "WS-7");
        assert_eq!(sug[0].alert_count, 3);
        assert_eq!(sug[0].level, Level::High);
        assert_eq!(sug[0].first_seen, T0);
        let ids = sug[0].alert_ids.clone();
        // Once grouped, they are no longer suggested; nor are alerts not changed since.
        s.create_incident(
            &NewIncident {
                title: "WS-7".into(),
                description: String::new(),
                severity: None,
                owner: None,
                alert_ids: ids[..2].to_vec(),
            },
            "ann",
        )
        .await
        .unwrap();
        assert!(s.suggest_incidents(since).await.unwrap().is_empty());
        assert!(
            s.suggest_incidents(now_ms() + MIN)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(alerts.iter().all(|a| a.status == AlertStatus::New));
    }
}
