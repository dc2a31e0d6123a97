//! The agent registry: enrollment records, heartbeats, the offline sweep. Every scenario runs
//! against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    agents_registry,
    agent_heartbeats_and_offline,
    agents_concurrent_offline_sweep,
);

mod scenarios {
    use super::*;

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
}
