//! A worker over the real in-memory bus and a real SQLite store: events are stored once,
//! detections become aggregated alerts, redelivery changes nothing, bad messages are dropped.

mod common;

use std::path::Path;

use bytes::Bytes;
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};
use serde_json::json;

use common::Rig;

const RULE: &str = "title: Whoami
id: 6b2e0a4c-0000-4000-8000-000000000001
level: medium
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
";

fn detector() -> Detector {
    let mut set = RuleSet::default();
    set.add_text(Path::new("whoami.yml"), RULE, &LoadOptions::default());
    Detector::build(set, &EngineOptions::default(), &DetectorOptions::default()).0
}

fn event(n: u32, image: &str) -> serde_json::Value {
    json!({
        "@timestamp": format!("2026-04-17T05:24:{:02}.000Z", n % 60),
        "event": {"id": format!("01900000-0000-7000-8000-{:012}", n), "kind": "event", "category": ["process"],
                  "ingested": "2026-04-17T05:25:00.000Z"},
        "agent": {"id": "agent-1"},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                   "event_data": {"Image": image, "CommandLine": "whoami /all"}},
    })
}

#[tokio::test]
async fn events_are_stored_once_and_detections_become_one_alert() {
    let mut rig = Rig::new(detector()).await;

    let batch = json!([
        event(1, "C:\\Windows\\System32\\whoami.exe"),
        event(2, "C:\\Windows\\notepad.exe"),
        event(3, "C:\\Windows\\System32\\whoami.exe")
    ]);
    rig.publish(&batch).await;
    rig.bus
        .publish(Bytes::from_static(b"{not json"))
        .await
        .expect("publish");
    rig.process(3).await;
    assert_eq!(rig.store.count_events(None, None).await.expect("count"), 3);
    let alerts = rig.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "two detections on one agent fold into one alert"
    );
    let alert = &alerts[0];
    assert_eq!(alert.count, 2);
    assert_eq!(alert.rule_title, "Whoami");
    assert!(alert.tags.contains(&"attack.t1033".to_owned()));
    let notice = rig.notices.try_recv().expect("a notice for the alert");
    assert_eq!(notice.change, dozor_store::AlertChange::Created);

    // The same batch again (a redelivery after a crash): nothing changes.
    rig.publish(&batch).await;
    rig.process(1).await;
    assert_eq!(rig.store.count_events(None, None).await.expect("count"), 3);
    assert_eq!(
        rig.alerts().await[0].count,
        2,
        "a redelivered batch does not count detections twice"
    );
    assert_eq!(
        rig.stats
            .bad_messages
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(rig.bus.depth().await.expect("depth"), 0, "everything acked");
}

/// A cycle's messages are stored in groups of at most `cycle_bytes` (a worker's memory is
/// bounded by it, not by how many large batches the queue hands over at once): every group is
/// committed and acked, and detections still fold into one alert across groups.
#[tokio::test]
async fn a_cycle_larger_than_cycle_bytes_is_stored_in_several_groups() {
    let options = dozor_pipeline::PipelineOptions {
        cycle_bytes: 1,
        ..Default::default()
    };
    let rig = Rig::with_options(detector(), options).await;
    for n in 0..4 {
        rig.publish(&json!([
            event(10 + 2 * n, "C:\\Windows\\System32\\whoami.exe"),
            event(11 + 2 * n, "C:\\Windows\\notepad.exe")
        ]))
        .await;
    }
    assert_eq!(
        rig.worker.process_once().await.expect("cycle"),
        8,
        "one cycle, four groups"
    );
    assert_eq!(rig.store.count_events(None, None).await.expect("count"), 8);
    let alerts = rig.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].count, 4);
    assert_eq!(
        rig.bus.depth().await.expect("depth"),
        0,
        "every group acked"
    );
}
