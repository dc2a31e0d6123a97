//! Agent software inventory (issue 15): this machine's real package database (dpkg, read by
//! `dozor-inventory` as the agent reads it) matched against an OSV advisory file the test
//! writes for one of its installed packages: the finding is a `vuln_scan_result` of source
//! `inventory` filed under the agent's address, a critical one raises an alert, an unaffected
//! advisory gives nothing, and a later inventory without the package marks it fixed.
//! Skips with a message on a machine without dpkg.

use std::sync::Arc;
use std::time::Duration;

use dozor_model::{Agent, AgentFacts, AlertQuery, VulnQuery, VulnStatus};
use dozor_server::vulns::{VulnConfig, VulnService};
use dozor_store::{StoreConfig, sqlite::SqliteConfig};
use serde_json::json;

fn agent() -> Agent {
    Agent {
        id: "agent-inv-1".into(),
        facts: AgentFacts {
            hostname: "db-01".into(),
            os_type: "linux".into(),
            os_name: Some("Debian GNU/Linux".into()),
            os_version: Some("12".into()),
            arch: Some("x86_64".into()),
            agent_version: "test".into(),
            ips: vec!["127.0.0.1".into(), "fe80::1".into(), "10.20.30.40".into()],
        },
        enrolled_at: 0,
        enrolled_by: "test".into(),
        cert_sha256: "00".repeat(32),
        cert_not_after: i64::MAX,
        reenrolled_at: None,
        last_seen: 0,
        last_heartbeat: None,
        health: vec![],
        offline_since: None,
        revoked_at: None,
        revoked_by: None,
    }
}

#[tokio::test]
async fn this_machines_packages_matched_against_an_osv_file() {
    if !std::path::Path::new("/var/lib/dpkg/status").exists() {
        println!("skipped: no dpkg database on this machine");
        return;
    }
    let (inventory, _problems) =
        dozor_inventory::collect_local_inventory().expect("read this machine's inventory");
    let os = inventory.os.clone().expect("os-release");
    let bash = inventory
        .packages
        .iter()
        .find(|p| p.name == "bash")
        .expect("bash is installed")
        .clone();
    let ecosystem = match os.id.as_str() {
        "debian" => format!("Debian:{}", os.version_id.clone().unwrap_or_default()),
        "ubuntu" => format!("Ubuntu:{}", os.version_id.clone().unwrap_or_default()),
        other => {
            println!("skipped: advisories for {other} are not written by this test");
            return;
        }
    };
    let source = bash
        .source_name
        .clone()
        .unwrap_or_else(|| bash.name.clone());
    let installed = bash
        .source_version
        .clone()
        .unwrap_or_else(|| bash.version.clone());

    let dir = tempfile::tempdir().expect("tempdir");
    let advisories = dir.path().join("advisories");
    std::fs::create_dir_all(&advisories).expect("mkdir");
    // Affected: fixed only in a version above the installed one.
    std::fs::write(
        advisories.join("DOZOR-TEST-1.json"),
        json!({
            "id": "DOZOR-TEST-1",
            "summary": "bash: test advisory",
            "aliases": ["CVE-2099-0001"],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{
                "package": {"ecosystem": ecosystem, "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"introduced": "0"}, {"fixed": format!("{installed}+dozor1")}
                ]}]
            }]
        })
        .to_string(),
    )
    .expect("write advisory");
    // Not affected: fixed long before the installed version.
    std::fs::write(
        advisories.join("DOZOR-TEST-2.json"),
        json!({
            "id": "DOZOR-TEST-2",
            "affected": [{
                "package": {"ecosystem": ecosystem, "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"introduced": "0"}, {"fixed": "0.1-1"}
                ]}]
            }]
        })
        .to_string(),
    )
    .expect("write advisory");

    let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
        dir.path().join("data"),
    )))
    .await
    .expect("store");
    let (notices, mut heard) = tokio::sync::broadcast::channel(64);
    let service = VulnService::new(
        store.clone(),
        VulnConfig {
            advisories: Some(advisories.clone()),
            alert_level: "high".into(),
        },
        Duration::from_secs(600),
        notices,
    );
    let status = service.reload_advisories().await.expect("load advisories");
    assert_eq!(status.advisories, 2);
    assert_eq!(status.problem_count, 0);

    let agent = agent();
    let fingerprint = inventory.fingerprint();
    let clock = std::time::Instant::now();
    let (changed, findings) = service
        .report_inventory(&agent, &fingerprint, inventory.clone())
        .await
        .expect("report inventory");
    println!(
        "{} packages matched in {:?}",
        inventory.packages.len(),
        clock.elapsed()
    );
    assert!(changed);
    assert_eq!(findings, 1, "only the affected advisory");
    let stored = store
        .get_agent_inventory(&agent.id)
        .await
        .unwrap()
        .expect("inventory stored");
    assert_eq!(stored.package_count, inventory.packages.len() as u64);
    assert_eq!(stored.fingerprint, fingerprint);

    let vulns = store
        .list_vulns(&VulnQuery {
            source: Some("inventory".into()),
            limit: 100,
            ..VulnQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(vulns.len(), 1);
    let v = &vulns[0];
    assert_eq!(v.nvt_oid, "DOZOR-TEST-1");
    assert_eq!(v.host, "10.20.30.40", "the agent's routable address");
    assert_eq!(v.agent_id.as_deref(), Some("agent-inv-1"));
    assert_eq!(v.hostname.as_deref(), Some("db-01"));
    assert_eq!(v.level, "critical");
    assert_eq!(v.cves, vec!["CVE-2099-0001"]);
    assert_eq!(v.details["installed_version"], json!(bash.version));
    assert!(v.solution.as_deref().unwrap_or("").contains("+dozor1"));
    let alert = heard.try_recv().expect("an alert was raised");
    assert_eq!(alert.alert.rule_id, "dozor-vuln-critical");
    assert_eq!(alert.alert.agent_id.as_deref(), Some("agent-inv-1"));
    let alerts = store
        .list_alerts(&AlertQuery {
            agent_id: Some("agent-inv-1".into()),
            limit: 100,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(alerts.alerts.len(), 1);

    // The same inventory again: unchanged, the finding seen again, no second alert.
    let (changed, findings) = service
        .report_inventory(&agent, &fingerprint, inventory.clone())
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(findings, 1);
    assert!(heard.try_recv().is_err(), "no second alert");

    // bash removed (upgraded away): the finding is fixed.
    let mut without = inventory.clone();
    without.packages.retain(|p| p.name != "bash");
    let (changed, findings) = service
        .report_inventory(&agent, &without.fingerprint(), without)
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(findings, 0);
    let v = store.get_vuln(v.id).await.unwrap().unwrap();
    assert_eq!(v.status, VulnStatus::Fixed);

    // A fingerprint that is not the packages' is refused.
    let e = service
        .report_inventory(&agent, &"ab".repeat(32), inventory)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("fingerprint"), "{e}");
    let _ = Arc::strong_count(&store);
}
