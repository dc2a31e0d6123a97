//! File scan verdicts through a worker (real in-memory bus, real SQLite store): a finding
//! event raises an alert with the finding's rule id and level; clean and other events raise
//! none.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dozor_scan::{EventContext, FileReport, Finding};
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};
use dozor_store::Level;
use serde_json::{Value, json};

use common::Rig;

fn no_rules() -> Detector {
    let mut set = RuleSet::default();
    set.add_text(
        Path::new("none.yml"),
        "title: Nothing\nid: 6b2e0a4c-0000-4000-8000-0000000000ff\nlevel: low\n\
         logsource: {product: windows, category: process_creation}\n\
         detection:\n    sel:\n        Image|endswith: '\\\\never-matches.exe'\n    condition: sel\n",
        &LoadOptions::default(),
    );
    Detector::build(set, &EngineOptions::default(), &DetectorOptions::default()).0
}

fn report(findings: Vec<Finding>) -> FileReport {
    FileReport {
        path: PathBuf::from("/tmp/drop/evil.bin"),
        hashes: None,
        findings,
        errors: Vec::new(),
        skipped: None,
        engines: vec!["hashlist", "yara", "clamav"],
        duration: Duration::from_millis(2),
    }
}

/// The events of `report` as an agent would send them (ids, agent, ingest time stamped).
fn events_of(report: &FileReport, first: u32) -> Vec<Value> {
    let ctx = EventContext {
        provider: "dozor-agent",
        trigger: "file",
        include_hashes: true,
        command_id: None,
        process: None,
    };
    dozor_scan::finding_events(report, &ctx)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["event"]["id"] = json!(format!("01900000-0000-7000-8000-{:012}", first + i as u32));
            e["event"]["ingested"] = json!("2026-04-17T05:25:00.000Z");
            e["agent"] = json!({"id": "agent-1"});
            e
        })
        .collect()
}

#[tokio::test]
async fn scan_findings_raise_alerts_with_their_level() {
    let rig = Rig::new(no_rules()).await;

    let meta = vec![("severity".to_owned(), json!("critical"))];
    let yara = Finding::yara("Evil_Dropper", "server/team", &["apt".to_owned()], &meta);
    let clamav = Finding::clamav(&dozor_scan::Verdict {
        engine: "clamav".into(),
        signature: Some("PUA.Win.Tool.Foo".into()),
        infected: true,
        engine_version: "1.4.6".into(),
        db_version: None,
    })
    .expect("a finding");
    let mut batch = events_of(&report(vec![yara, clamav]), 1);
    // A scan event that is not a finding (no verdict), and an ordinary event.
    let mut clean = batch[0].clone();
    clean["event"]["id"] = json!("01900000-0000-7000-8000-000000000010");
    clean["threat"]["verdict"] = json!("clean");
    batch.push(clean);
    batch.push(json!({
        "@timestamp": "2026-04-17T05:24:00.000Z",
        "event": {"id": "01900000-0000-7000-8000-000000000011", "kind": "event",
                  "module": "sysmon", "ingested": "2026-04-17T05:25:00.000Z"},
        "agent": {"id": "agent-1"},
        "threat": {"engine": "yara", "verdict": "malicious", "rule": {"name": "X"}},
    }));
    rig.publish(&batch).await;
    rig.process(4).await;
    assert_eq!(rig.store.count_events(None, None).await.expect("count"), 4);
    let mut alerts = rig.alerts().await;
    alerts.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    let got: Vec<(&str, Level)> = alerts
        .iter()
        .map(|a| (a.rule_id.as_str(), a.level))
        .collect();
    assert_eq!(
        got,
        [
            ("dozor-scan/clamav/PUA.Win.Tool.Foo", Level::Medium),
            ("dozor-scan/yara/server/team.Evil_Dropper", Level::Critical),
        ],
        "only the two findings raise alerts"
    );
    let yara = &alerts[1];
    assert_eq!(
        yara.rule_title,
        "YARA rule server/team.Evil_Dropper matched"
    );
    assert_eq!(yara.agent_id.as_deref(), Some("agent-1"));
    assert!(yara.tags.contains(&"apt".to_owned()), "{:?}", yara.tags);
    assert!(yara.tags.contains(&"dozor.verdict.malicious".to_owned()));

    // The same finding again folds into the open alert.
    let again = events_of(
        &report(vec![Finding::yara(
            "Evil_Dropper",
            "server/team",
            &[],
            &meta,
        )]),
        20,
    );
    rig.publish(&again).await;
    rig.process(1).await;
    let alerts = rig.alerts().await;
    assert_eq!(alerts.len(), 2);
    let yara = alerts
        .iter()
        .find(|a| a.rule_id.starts_with("dozor-scan/yara/"))
        .expect("yara alert");
    assert_eq!(yara.count, 2);
}
