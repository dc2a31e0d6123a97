//! Vulnerability management (issue 15): scans and their `vuln_scan_result` records, statuses,
//! summaries, inventories and scan jobs. Every scenario runs against SQLite (always) and
//! PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use std::time::Instant;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    scans_insert_merge_and_fix,
    bad_results_write_nothing,
    a_report_is_recorded_once,
    late_old_report_does_not_fix_newer_findings,
    statuses_accept_expire_and_refuse_fixed,
    queries_filter_page_and_summarize,
    inventories_and_scan_jobs,
    record_speed,
);

mod scenarios {
    use super::*;

    pub const NOW: i64 = T0;

    pub fn result(host: &str, port: &str, oid: &str, severity: f64) -> NewVulnResult {
        let level = match severity {
            s if s >= 9.0 => "critical",
            s if s >= 7.0 => "high",
            s if s >= 4.0 => "medium",
            s if s > 0.0 => "low",
            s if s < 0.0 => "false_positive",
            _ => "log",
        };
        NewVulnResult {
            host: host.into(),
            port: port.into(),
            nvt_oid: oid.into(),
            name: format!("finding {oid}"),
            severity,
            cvss_base: Some(severity.max(0.0)),
            level: level.into(),
            ..NewVulnResult::default()
        }
    }

    pub fn scan(hosts: &[&str], at: i64) -> NewVulnScan {
        NewVulnScan {
            source: "openvas".into(),
            origin: "import".into(),
            report_id: None,
            name: Some("test".into()),
            started_at: Some(at - 1000),
            finished_at: Some(at),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            by: "tester".into(),
        }
    }

    async fn all(s: &S) -> Vec<StoredVuln> {
        s.list_vulns(&VulnQuery {
            limit: 1000,
            ..VulnQuery::default()
        })
        .await
        .unwrap()
    }

    fn by_oid<'a>(v: &'a [StoredVuln], oid: &str) -> &'a StoredVuln {
        v.iter()
            .find(|r| r.nvt_oid == oid)
            .unwrap_or_else(|| panic!("{oid} not stored"))
    }

    pub async fn scans_insert_merge_and_fix(s: S, _raw: Raw) {
        let mut a = result("10.0.0.1", "443/tcp", "1.3.6.1", 9.8);
        a.cves = vec!["cve-2024-0001".into(), "CVE-2024-0002".into()];
        let mut dup = result("10.0.0.1", "443/tcp", "1.3.6.1", 5.0);
        dup.cves = vec!["CVE-2024-9999".into()];
        let b = result("10.0.0.1", "general/tcp", "1.3.6.2", 5.0);
        let c = result("srv-not-an-ip", "22/tcp", "1.3.6.3", 7.5);
        let r = s
            .record_vuln_scan(&scan(&["10.0.0.1", "10.0.0.9"], NOW), &[a, dup, b, c], NOW)
            .await
            .unwrap();
        assert_eq!(r.scan.counts.results, 3, "the repeat is merged");
        assert_eq!(r.scan.counts.new, 3);
        assert_eq!(r.scan.hosts, 3);
        assert_eq!(r.raised.len(), 3);
        let raised = s.get_vulns(&r.raised).await.unwrap();
        assert_eq!(raised.len(), 3);
        assert!(s.get_vulns(&[999_999]).await.unwrap().is_empty());
        assert_eq!(r.scan.counts.by_level["critical"], 1);
        assert_eq!(r.scan.counts.by_level["high"], 1);
        assert_eq!(r.scan.counts.by_level["medium"], 1);
        let v = all(&s).await;
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].nvt_oid, "1.3.6.1", "most severe first");
        assert_eq!(v[0].severity, 9.8, "the worst of the repeats is kept");
        assert_eq!(v[0].cves, vec!["CVE-2024-0001", "CVE-2024-0002"]);
        assert_eq!(v[0].status, VulnStatus::Open);
        assert_eq!(v[0].first_seen, NOW);
        assert_eq!(by_oid(&v, "1.3.6.3").host, "srv-not-an-ip");

        // The next scan of 10.0.0.1 no longer finds 1.3.6.2: fixed; srv-not-an-ip was not
        // scanned: its result stays open.
        let later = NOW + 86_400_000;
        let r = s
            .record_vuln_scan(
                &scan(&["10.0.0.1"], later),
                &[result("10.0.0.1", "443/tcp", "1.3.6.1", 9.8)],
                later,
            )
            .await
            .unwrap();
        assert_eq!(
            (
                r.scan.counts.new,
                r.scan.counts.seen_again,
                r.scan.counts.fixed
            ),
            (0, 1, 1)
        );
        assert!(r.raised.is_empty());
        let v = all(&s).await;
        let fixed = by_oid(&v, "1.3.6.2");
        assert_eq!(fixed.status, VulnStatus::Fixed);
        assert_eq!(fixed.fixed_at, Some(later));
        assert_eq!(by_oid(&v, "1.3.6.3").status, VulnStatus::Open);
        let kept = by_oid(&v, "1.3.6.1");
        assert_eq!(
            (kept.times_seen, kept.last_seen, kept.first_seen),
            (2, later, NOW)
        );
        assert!(kept.cves.is_empty(), "the CVEs are the latest scan's");
        let by_cve = s
            .list_vulns(&VulnQuery {
                cve: Some("CVE-2024-0001".into()),
                limit: 10,
                ..VulnQuery::default()
            })
            .await
            .unwrap();
        assert!(by_cve.is_empty(), "the CVE index follows the update");

        // Found again: reopened and raised.
        let again = later + 86_400_000;
        let r = s
            .record_vuln_scan(
                &scan(&["10.0.0.1"], again),
                &[result("10.0.0.1", "general/tcp", "1.3.6.2", 5.0)],
                again,
            )
            .await
            .unwrap();
        assert_eq!((r.scan.counts.reopened, r.scan.counts.fixed), (1, 1));
        assert_eq!(r.raised, vec![fixed.id]);
        let v = all(&s).await;
        assert_eq!(by_oid(&v, "1.3.6.2").status, VulnStatus::Open);
        assert_eq!(by_oid(&v, "1.3.6.2").fixed_at, None);
        assert_eq!(by_oid(&v, "1.3.6.1").status, VulnStatus::Fixed);

        let scans = s.list_vuln_scans(None, 10).await.unwrap();
        assert_eq!(scans.len(), 3);
        assert!(scans[0].id > scans[1].id, "newest first");
        assert_eq!(scans[2].counts.new, 3);
    }

    pub async fn bad_results_write_nothing(s: S, _raw: Raw) {
        let good = result("10.0.0.1", "80/tcp", "1.1", 5.0);
        let cases: Vec<(NewVulnResult, &str)> = vec![
            (result("", "80/tcp", "1.2", 5.0), "host is empty"),
            (result("10.0.0.1", "80/tcp", "", 5.0), "nvt_oid is empty"),
            (result("10.0.0.1", "80/tcp", "1.2", 11.0), "severity 11"),
            (
                NewVulnResult {
                    level: "severe".into(),
                    ..result("10.0.0.1", "80/tcp", "1.2", 5.0)
                },
                "level \"severe\"",
            ),
            (
                NewVulnResult {
                    epss_score: Some(1.5),
                    ..result("10.0.0.1", "80/tcp", "1.2", 5.0)
                },
                "epss_score 1.5",
            ),
            (
                NewVulnResult {
                    qod: Some(101),
                    ..result("10.0.0.1", "80/tcp", "1.2", 5.0)
                },
                "qod 101",
            ),
        ];
        for (bad, says) in cases {
            let e = s
                .record_vuln_scan(&scan(&[], NOW), &[good.clone(), bad], NOW)
                .await
                .unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("result 1"), "{msg}");
            assert!(msg.contains(says), "{msg} should say {says}");
        }
        let mut bad_scan = scan(&[], NOW);
        bad_scan.source = "nessus".into();
        let e = s
            .record_vuln_scan(&bad_scan, std::slice::from_ref(&good), NOW)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nessus"), "{e}");
        assert!(all(&s).await.is_empty(), "nothing was written");
        assert!(s.list_vuln_scans(None, 10).await.unwrap().is_empty());
    }

    pub async fn a_report_is_recorded_once(s: S, _raw: Raw) {
        let mut sc = scan(&["10.0.0.1"], NOW);
        sc.report_id = Some("rep-1".into());
        let results = [result("10.0.0.1", "80/tcp", "1.1", 7.0)];
        let first = s.record_vuln_scan(&sc, &results, NOW).await.unwrap();
        let second = s.record_vuln_scan(&sc, &results, NOW + 5).await.unwrap();
        assert_eq!(first.scan.id, second.scan.id);
        assert!(second.raised.is_empty());
        assert_eq!(s.list_vuln_scans(None, 10).await.unwrap().len(), 1);
        assert_eq!(all(&s).await[0].times_seen, 1);
    }

    pub async fn late_old_report_does_not_fix_newer_findings(s: S, _raw: Raw) {
        let newer = NOW + 86_400_000;
        s.record_vuln_scan(
            &scan(&["10.0.0.1"], newer),
            &[result("10.0.0.1", "80/tcp", "1.1", 7.0)],
            newer,
        )
        .await
        .unwrap();
        // An older report of the same host, imported afterwards, without that finding.
        let r = s
            .record_vuln_scan(
                &scan(&["10.0.0.1"], NOW),
                &[result("10.0.0.1", "81/tcp", "1.2", 4.0)],
                newer + 10,
            )
            .await
            .unwrap();
        assert_eq!(r.scan.counts.fixed, 0);
        let v = all(&s).await;
        assert_eq!(by_oid(&v, "1.1").status, VulnStatus::Open);
    }

    pub async fn statuses_accept_expire_and_refuse_fixed(s: S, _raw: Raw) {
        s.record_vuln_scan(
            &scan(&["10.0.0.1"], NOW),
            &[
                result("10.0.0.1", "80/tcp", "1.1", 7.0),
                result("10.0.0.1", "81/tcp", "1.2", 7.0),
            ],
            NOW,
        )
        .await
        .unwrap();
        let v = all(&s).await;
        let (a, b) = (by_oid(&v, "1.1").id, by_oid(&v, "1.2").id);
        let req = |status, reason: Option<&str>, until| VulnStatusRequest {
            status,
            reason: reason.map(str::to_owned),
            until,
        };
        let e = s
            .set_vuln_status(a, &req(VulnStatus::Accepted, None, None), "ann", NOW)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("reason"), "{e}");
        let e = s
            .set_vuln_status(a, &req(VulnStatus::Fixed, None, None), "ann", NOW)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("fixed"), "{e}");
        let e = s
            .set_vuln_status(
                a,
                &req(VulnStatus::Accepted, Some("legacy"), Some(NOW - 1)),
                "ann",
                NOW,
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("until"), "{e}");
        let until = NOW + 60_000;
        let accepted = s
            .set_vuln_status(
                a,
                &req(
                    VulnStatus::Accepted,
                    Some("legacy box, isolated"),
                    Some(until),
                ),
                "ann",
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(accepted.status, VulnStatus::Accepted);
        assert_eq!(
            accepted.status_reason.as_deref(),
            Some("legacy box, isolated")
        );
        assert_eq!(accepted.status_until, Some(until));
        assert_eq!(accepted.status_by.as_deref(), Some("ann"));
        s.set_vuln_status(
            b,
            &req(VulnStatus::FalsePositive, Some("banner lies"), None),
            "ann",
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            s.set_vuln_status(999_999, &req(VulnStatus::Open, None, None), "ann", NOW)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.expire_vuln_acceptances(until - 1)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.expire_vuln_acceptances(until).await.unwrap(), vec![a]);
        let v = s.get_vuln(a).await.unwrap().unwrap();
        assert_eq!(
            (v.status, v.status_by.as_deref()),
            (VulnStatus::Open, Some("expiry"))
        );
        // A later scan without either: the open one is fixed, the false positive stays.
        let later = NOW + 86_400_000;
        s.record_vuln_scan(&scan(&["10.0.0.1"], later), &[], later)
            .await
            .unwrap();
        assert_eq!(
            s.get_vuln(a).await.unwrap().unwrap().status,
            VulnStatus::Fixed
        );
        assert_eq!(
            s.get_vuln(b).await.unwrap().unwrap().status,
            VulnStatus::FalsePositive
        );
    }

    pub async fn queries_filter_page_and_summarize(s: S, _raw: Raw) {
        let mut results = Vec::new();
        for h in 0..5 {
            for p in 0..10 {
                let mut r = result(
                    &format!("10.0.1.{h}"),
                    &format!("{}/tcp", 1000 + p),
                    &format!("1.3.6.{p}"),
                    f64::from(p),
                );
                r.cves = vec![format!("CVE-2024-{p:04}")];
                r.epss_score = Some(f64::from(p) / 10.0);
                r.agent_id = (h == 0).then(|| "agent-0".to_owned());
                results.push(r);
            }
        }
        s.record_vuln_scan(&scan(&[], NOW), &results, NOW)
            .await
            .unwrap();
        // Keyset paging covers everything once, in order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .list_vulns(&VulnQuery {
                    after,
                    limit: 7,
                    ..VulnQuery::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.severity, last.id));
            seen.extend(page.iter().map(|v| (v.severity, v.id)));
        }
        assert_eq!(seen.len(), 50);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        assert_eq!(seen, sorted);

        let q = |f: fn(&mut VulnQuery)| {
            let mut q = VulnQuery {
                limit: 1000,
                ..VulnQuery::default()
            };
            f(&mut q);
            q
        };
        let count = |q: VulnQuery| {
            let s = s.clone();
            async move { s.count_vulns(&q).await.unwrap() }
        };
        assert_eq!(count(q(|q| q.host = Some("10.0.1.3".into()))).await, 10);
        assert_eq!(count(q(|q| q.agent_id = Some("agent-0".into()))).await, 10);
        assert_eq!(count(q(|q| q.cve = Some("cve-2024-0009".into()))).await, 5);
        assert_eq!(
            count(q(|q| q.levels = vec!["critical".into(), "high".into()])).await,
            15
        );
        assert_eq!(count(q(|q| q.min_severity = Some(8.0))).await, 10);
        assert_eq!(
            count(q(|q| q.contains = Some("FINDING 1.3.6.4".into()))).await,
            5
        );
        assert_eq!(
            count(q(|q| q.contains = Some("cve-2024-0007".into()))).await,
            5
        );
        assert_eq!(count(q(|q| q.statuses = vec![VulnStatus::Fixed])).await, 0);
        assert_eq!(count(q(|q| q.source = Some("inventory".into()))).await, 0);

        let sum = s.vuln_summary(&VulnQuery::default(), 3).await.unwrap();
        assert_eq!(sum.total, 50);
        assert_eq!(sum.by_level["critical"], 5);
        assert_eq!(sum.by_level["log"], 5);
        assert_eq!(sum.by_status["open"], 50);
        assert_eq!(sum.hosts.len(), 3);
        assert_eq!(sum.hosts[0].max_severity, 9.0);
        assert_eq!(sum.hosts[0].total, 10);
        assert_eq!(sum.hosts[0].by_level["critical"], 1);
        assert_eq!(sum.cves.len(), 3);
        assert_eq!(sum.cves[0].cve, "CVE-2024-0009");
        assert_eq!((sum.cves[0].hosts, sum.cves[0].results), (5, 5));
        assert_eq!(sum.cves[0].max_epss, Some(0.9));
        let one_host = s
            .vuln_summary(
                &VulnQuery {
                    agent_id: Some("agent-0".into()),
                    ..VulnQuery::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(one_host.hosts.len(), 1);
        assert_eq!(one_host.hosts[0].agent_id.as_deref(), Some("agent-0"));
        assert_eq!(one_host.cves.len(), 10);
    }

    pub async fn inventories_and_scan_jobs(s: S, _raw: Raw) {
        let inv = AgentInventory {
            agent_id: "agent-1".into(),
            fingerprint: "ab".repeat(32),
            os: json!({"id": "debian", "version_id": "12"}),
            packages: json!([{"name": "openssl", "version": "3.0.11-1~deb12u2", "ecosystem": "dpkg"}]),
            package_count: 1,
            reported_at: NOW,
        };
        s.put_agent_inventory(&inv).await.unwrap();
        assert_eq!(
            s.get_agent_inventory("agent-1").await.unwrap(),
            Some(inv.clone())
        );
        let newer = AgentInventory {
            fingerprint: "cd".repeat(32),
            packages: json!([]),
            package_count: 0,
            reported_at: NOW + 1,
            ..inv
        };
        s.put_agent_inventory(&newer).await.unwrap();
        assert_eq!(
            s.get_agent_inventory("agent-1").await.unwrap(),
            Some(newer.clone())
        );
        assert_eq!(
            s.list_agent_inventories().await.unwrap(),
            vec![("agent-1".to_owned(), newer.fingerprint.clone(), NOW + 1)]
        );
        assert!(s.get_agent_inventory("nobody").await.unwrap().is_none());

        let job = VulnScanJob {
            name: "weekly-dmz".into(),
            spec: json!({"cidrs": ["10.0.0.0/24"], "config": "Full and fast"}),
            enabled: true,
            state: json!({}),
            updated_at: NOW,
            updated_by: "ann".into(),
        };
        s.put_vuln_scan_job(&job).await.unwrap();
        assert!(
            s.set_vuln_scan_job_state("weekly-dmz", &json!({"task_id": "t-1"}))
                .await
                .unwrap()
        );
        let changed = s
            .put_vuln_scan_job(&VulnScanJob {
                enabled: false,
                state: json!({"ignored": true}),
                ..job.clone()
            })
            .await
            .unwrap();
        assert!(!changed.enabled);
        assert_eq!(
            changed.state,
            json!({"task_id": "t-1"}),
            "the state is kept"
        );
        assert_eq!(s.list_vuln_scan_jobs().await.unwrap().len(), 1);
        assert!(
            s.put_vuln_scan_job(&VulnScanJob {
                name: "../x".into(),
                ..job.clone()
            })
            .await
            .is_err()
        );
        assert!(s.delete_vuln_scan_job("weekly-dmz").await.unwrap());
        assert!(!s.delete_vuln_scan_job("weekly-dmz").await.unwrap());
        assert!(
            !s.set_vuln_scan_job_state("weekly-dmz", &json!({}))
                .await
                .unwrap()
        );
    }

    /// Not a timing assertion (benchmarks do that): 10,000 results recorded twice in one
    /// go each, the counts exact; the time is printed.
    pub async fn record_speed(s: S, _raw: Raw) {
        let results: Vec<NewVulnResult> = (0..10_000)
            .map(|i| {
                let mut r = result(
                    &format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256 / 10),
                    &format!("{}/tcp", i % 1000),
                    &format!("1.3.6.1.4.1.25623.1.0.{i}"),
                    f64::from(i % 101) / 10.0,
                );
                r.cves = vec![format!("CVE-2024-{:05}", i % 3000)];
                r
            })
            .collect();
        let clock = Instant::now();
        let r = s
            .record_vuln_scan(&scan(&[], NOW), &results, NOW)
            .await
            .unwrap();
        let first = clock.elapsed();
        assert_eq!(r.scan.counts.new, 10_000);
        let clock = Instant::now();
        let later = NOW + 1000;
        let hosts: std::collections::BTreeSet<&str> =
            results.iter().map(|r| r.host.as_str()).collect();
        let hosts: Vec<&str> = hosts.into_iter().collect();
        let r = s
            .record_vuln_scan(&scan(&hosts, later), &results[..9_000], later)
            .await
            .unwrap();
        let second = clock.elapsed();
        assert_eq!(
            (r.scan.counts.seen_again, r.scan.counts.fixed),
            (9_000, 1_000)
        );
        eprintln!("10,000 results: first {first:?}, again {second:?}");
    }
}
