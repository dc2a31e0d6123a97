//! Threat intelligence (issue 14): indicators, sources, matches and sightings. Every scenario
//! runs against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set); the
//! upsert speed test runs 100,000 indicators through each.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    upserts_merge_the_sources,
    bad_indicators_write_nothing,
    queries_filter,
    keyset_pages_cover_everything_once,
    indicators_enable_disable_delete,
    warninglists_are_replaced,
    expired_indicators_are_counted_per_source,
    sources_keep_their_cursor,
    matches_are_recorded_once_and_counted,
    sightings_wait_until_sent,
    upsert_speed,
);

mod scenarios {
    use super::*;

    pub const NOW: i64 = T0;

    pub fn ioc(kind: &str, value: &str) -> NewIoc {
        NewIoc {
            kind: kind.into(),
            value: value.into(),
            misp_type: None,
            to_ids: false,
            tags: vec![],
            confidence: None,
            first_seen: None,
            last_seen: None,
            expires: None,
            object_ids: vec![],
            warninglists: vec![],
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    async fn found(s: &S, kind: &str, value: &str) -> StoredIoc {
        s.find_ioc(kind, value)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{kind} {value} not stored"))
    }

    pub async fn upserts_merge_the_sources(s: S, _raw: Raw) {
        let mut a = ioc("ip", "192.0.2.1");
        a.misp_type = Some("ip-dst".into());
        a.tags = strings(&["tlp:green", "b"]);
        a.confidence = Some(40);
        a.first_seen = Some(100);
        a.last_seen = Some(200);
        a.expires = Some(NOW + 1_000);
        a.object_ids = strings(&["misp-attribute:1"]);
        let r = s.upsert_iocs("misp", &[a.clone()], NOW).await.unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (1, 0, 0));
        assert_eq!(r.added_ids.len(), 1);
        let first = found(&s, "ip", "192.0.2.1").await;
        assert_eq!(first.id, r.added_ids[0]);
        assert_eq!(first.tags, ["b", "tlp:green"]);
        assert!(first.enabled);
        assert_eq!((first.created_at, first.updated_at), (NOW, NOW));
        assert_eq!(first.sightings, 0);
        assert_eq!(
            first.sources,
            [IocSourceRef {
                name: "misp".into(),
                object_ids: strings(&["misp-attribute:1"]),
                added_at: NOW,
                seen_at: NOW,
            }]
        );
        assert_eq!(s.get_ioc(first.id).await.unwrap().unwrap(), first);

        // A second source: its context is merged in.
        let mut b = ioc("ip", "192.0.2.1");
        b.misp_type = Some("ip-src".into());
        b.to_ids = true;
        b.tags = strings(&["a", "b"]);
        b.confidence = Some(80);
        b.first_seen = Some(50);
        b.last_seen = Some(150);
        b.expires = Some(NOW + 2_000);
        b.object_ids = strings(&["line 7"]);
        let r = s.upsert_iocs("list", &[b.clone()], NOW + 10).await.unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (0, 1, 0));
        assert!(r.added_ids.is_empty());
        let merged = found(&s, "ip", "192.0.2.1").await;
        assert_eq!(merged.id, first.id);
        assert_eq!(
            merged.misp_type.as_deref(),
            Some("ip-dst"),
            "the first source's"
        );
        assert!(merged.to_ids);
        assert_eq!(merged.tags, ["a", "b", "tlp:green"]);
        assert_eq!(merged.confidence, Some(80));
        assert_eq!((merged.first_seen, merged.last_seen), (Some(50), Some(200)));
        assert_eq!(merged.expires, Some(NOW + 2_000));
        assert_eq!((merged.created_at, merged.updated_at), (NOW, NOW + 10));
        let names: Vec<_> = merged.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["misp", "list"]);
        assert_eq!(merged.sources[1].object_ids, ["line 7"]);
        assert_eq!(merged.sources[1].added_at, NOW + 10);

        // Given again with nothing new: unchanged, not written.
        let r = s.upsert_iocs("misp", &[a.clone()], NOW + 20).await.unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (0, 0, 1));
        assert_eq!(found(&s, "ip", "192.0.2.1").await, merged);
        // Lower confidence, a later first seen, an earlier expiry: nothing new either.
        let mut weaker = b.clone();
        weaker.confidence = Some(10);
        weaker.first_seen = Some(60);
        weaker.expires = Some(NOW + 1_500);
        weaker.to_ids = false;
        let r = s.upsert_iocs("list", &[weaker], NOW + 25).await.unwrap();
        assert_eq!(r.unchanged, 1);

        // A new object id of one source: that source's ids and `seen_at` only.
        let mut a2 = a.clone();
        a2.object_ids = strings(&["misp-attribute:2", "misp-attribute:1"]);
        let r = s.upsert_iocs("misp", &[a2], NOW + 30).await.unwrap();
        assert_eq!(r.updated, 1);
        let got = found(&s, "ip", "192.0.2.1").await;
        assert_eq!(
            got.sources[0].object_ids,
            ["misp-attribute:1", "misp-attribute:2"]
        );
        assert_eq!(
            (got.sources[0].added_at, got.sources[0].seen_at),
            (NOW, NOW + 30)
        );
        assert_eq!(got.sources[1].object_ids, ["line 7"]);
        assert_eq!(got.sources[1].seen_at, NOW + 10);

        // No expiry wins, also over a later one given afterwards.
        let mut forever = a.clone();
        forever.expires = None;
        assert_eq!(
            s.upsert_iocs("misp", &[forever], NOW + 40)
                .await
                .unwrap()
                .updated,
            1
        );
        assert_eq!(found(&s, "ip", "192.0.2.1").await.expires, None);
        let mut later = b.clone();
        later.expires = Some(NOW + 99_000);
        assert_eq!(
            s.upsert_iocs("list", &[later], NOW + 50)
                .await
                .unwrap()
                .unchanged,
            1
        );
        assert_eq!(found(&s, "ip", "192.0.2.1").await.expires, None);

        // Warninglists are replaced by each upsert's.
        let mut listed = a.clone();
        listed.warninglists = strings(&["rfc5737", "cdn"]);
        assert_eq!(
            s.upsert_iocs("misp", &[listed], NOW + 60)
                .await
                .unwrap()
                .updated,
            1
        );
        assert_eq!(
            found(&s, "ip", "192.0.2.1").await.warninglists,
            ["cdn", "rfc5737"]
        );
        assert_eq!(
            s.upsert_iocs("misp", &[a.clone()], NOW + 70)
                .await
                .unwrap()
                .updated,
            1
        );
        assert!(found(&s, "ip", "192.0.2.1").await.warninglists.is_empty());

        // A disabled indicator stays disabled.
        s.set_ioc_enabled(first.id, false, NOW + 80).await.unwrap();
        let mut more = a.clone();
        more.tags.push("new".into());
        assert_eq!(
            s.upsert_iocs("misp", &[more], NOW + 90)
                .await
                .unwrap()
                .updated,
            1
        );
        let got = found(&s, "ip", "192.0.2.1").await;
        assert!(!got.enabled);
        assert!(got.tags.contains(&"new".to_owned()));

        // Several at once; a pair given twice in one call is one row; the same value of
        // another kind is another indicator.
        let mut twice = ioc("domain", "evil.example");
        twice.tags = strings(&["x"]);
        let mut again = ioc("domain", "evil.example");
        again.tags = strings(&["y"]);
        let batch = [
            twice,
            ioc("hostname", "evil.example"),
            again,
            ioc("ip", "192.0.2.1"),
        ];
        let r = s.upsert_iocs("list", &batch, NOW + 100).await.unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (2, 0, 1));
        assert_eq!(r.added_ids.len(), 2);
        let d = found(&s, "domain", "evil.example").await;
        assert_eq!(d.id, r.added_ids[0]);
        assert_eq!(d.tags, ["x", "y"]);
        assert_eq!(
            found(&s, "hostname", "evil.example").await.id,
            r.added_ids[1]
        );
        assert!(s.find_ioc("url", "evil.example").await.unwrap().is_none());
        // Confidence over 100 is taken as 100.
        let mut sure = ioc("md5", "d41d8cd98f00b204e9800998ecf8427e");
        sure.confidence = Some(250);
        s.upsert_iocs("list", &[sure], NOW).await.unwrap();
        assert_eq!(
            found(&s, "md5", "d41d8cd98f00b204e9800998ecf8427e")
                .await
                .confidence,
            Some(100)
        );
    }

    pub async fn bad_indicators_write_nothing(s: S, _raw: Raw) {
        let long = "a".repeat(MAX_IOC_VALUE + 1);
        let cases: Vec<(NewIoc, &str)> = vec![
            (ioc("ip", ""), "ioc 2: value is empty"),
            (ioc("ip", "  "), "ioc 2: value is empty"),
            (ioc("", "192.0.2.9"), "ioc 2 (\"192.0.2.9\"): kind is empty"),
            (ioc("url", &long), "ioc 2 ("),
            (ioc(&long, "x"), "kind is longer than 4096 bytes"),
            (ioc("url", "a\0b"), "contains NUL"),
        ];
        for (bad, says) in cases {
            let batch = [ioc("ip", "192.0.2.1"), ioc("ip", "192.0.2.2"), bad];
            match s.upsert_iocs("feed", &batch, NOW).await {
                Err(StoreError::InvalidArgument(m)) => assert!(m.contains(says), "{m}"),
                other => panic!("{says}: {other:?}"),
            }
        }
        for source in ["", &"s".repeat(129)] {
            assert!(matches!(
                s.upsert_iocs(source, &[ioc("ip", "192.0.2.1")], NOW).await,
                Err(StoreError::InvalidArgument(_))
            ));
        }
        assert_eq!(s.count_iocs(&IocQuery::default()).await.unwrap(), 0);

        // The longest value is fine, also one that does not compress (PostgreSQL's B-tree
        // entries hold only about 2,700 bytes: the key is a hash).
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: String = (0..MAX_IOC_VALUE)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'!' + (seed % 90) as u8)
            })
            .collect();
        let r = s
            .upsert_iocs(
                "feed",
                &[ioc("url", &noise), ioc("url", &noise.to_uppercase())],
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(r.added, 2);
        assert_eq!(found(&s, "url", &noise).await.value, noise);
        assert_eq!(
            s.upsert_iocs("feed", &[], NOW).await.unwrap(),
            IocUpsertReport::default()
        );
    }

    pub async fn queries_filter(s: S, _raw: Raw) {
        let mut evil = ioc("domain", "Evil.Example");
        evil.tags = strings(&["tlp:red"]);
        evil.expires = Some(NOW + 100);
        let mut under = ioc("filename", "a_c%.exe");
        under.tags = strings(&["tlp:green", "malware"]);
        let cyr = ioc("filename", "ФАЙЛ.exe");
        let ip = ioc("ip", "198.51.100.7");
        s.upsert_iocs("one", &[evil.clone(), under.clone()], NOW)
            .await
            .unwrap();
        s.upsert_iocs("two", &[cyr, ip, evil], NOW + 10)
            .await
            .unwrap();
        s.upsert_iocs("three", &[ioc("ip", "abc.exe")], NOW + 20)
            .await
            .unwrap();
        let off = found(&s, "ip", "198.51.100.7").await;
        s.set_ioc_enabled(off.id, false, NOW + 30).await.unwrap();

        let values = |q: IocQuery| {
            let s = s.clone();
            async move {
                let mut v: Vec<String> = s
                    .list_iocs(&q)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|i| i.value)
                    .collect();
                let n = s.count_iocs(&q).await.unwrap();
                assert_eq!(n as usize, v.len(), "count of {q:?}");
                v.sort();
                v
            }
        };
        let all = values(IocQuery::default()).await;
        assert_eq!(all.len(), 5);
        // Newest change first.
        let newest: Vec<_> = s
            .list_iocs(&IocQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.value)
            .collect();
        assert_eq!(newest[0], "198.51.100.7");
        assert_eq!(newest[1], "abc.exe");
        let q = |f: fn(&mut IocQuery)| {
            let mut q = IocQuery::default();
            f(&mut q);
            q
        };
        assert_eq!(
            values(q(|q| q.kind = Some("filename".into()))).await,
            ["a_c%.exe", "ФАЙЛ.exe"]
        );
        assert_eq!(
            values(q(|q| q.contains = Some("EVIL.ex".into()))).await,
            ["Evil.Example"]
        );
        assert_eq!(
            values(q(|q| q.contains = Some("файл".into()))).await,
            ["ФАЙЛ.exe"]
        );
        // LIKE wildcards in the search are plain characters.
        assert_eq!(
            values(q(|q| q.contains = Some("a_c".into()))).await,
            ["a_c%.exe"]
        );
        assert_eq!(
            values(q(|q| q.contains = Some("%.".into()))).await,
            ["a_c%.exe"]
        );
        assert!(
            values(q(|q| q.contains = Some("!".into())))
                .await
                .is_empty()
        );
        assert_eq!(
            values(q(|q| q.value = Some("Evil.Example".into()))).await,
            ["Evil.Example"]
        );
        assert!(
            values(q(|q| q.value = Some("evil.example".into())))
                .await
                .is_empty()
        );
        assert_eq!(
            values(q(|q| q.source = Some("one".into()))).await,
            ["Evil.Example", "a_c%.exe"]
        );
        assert_eq!(
            values(q(|q| q.source = Some("two".into()))).await,
            ["198.51.100.7", "Evil.Example", "ФАЙЛ.exe"]
        );
        assert!(values(q(|q| q.source = Some("on".into()))).await.is_empty());
        assert_eq!(
            values(q(|q| q.tag = Some("malware".into()))).await,
            ["a_c%.exe"]
        );
        assert!(values(q(|q| q.tag = Some("tlp".into()))).await.is_empty());
        assert_eq!(
            values(q(|q| q.enabled = Some(false))).await,
            ["198.51.100.7"]
        );
        assert_eq!(values(q(|q| q.enabled = Some(true))).await.len(), 4);
        assert_eq!(
            values(q(|q| q.active_at = Some(NOW + 100))).await,
            ["a_c%.exe", "abc.exe", "ФАЙЛ.exe"]
        );
        assert_eq!(values(q(|q| q.active_at = Some(NOW + 99))).await.len(), 4);
        assert_eq!(
            values(q(|q| q.updated_since = Some(NOW + 20))).await,
            ["198.51.100.7", "abc.exe"]
        );
        // Filters combine.
        assert_eq!(
            values(q(|q| {
                q.source = Some("two".into());
                q.kind = Some("domain".into());
                q.tag = Some("tlp:red".into());
                q.contains = Some("evil".into());
            }))
            .await,
            ["Evil.Example"]
        );
        let page = s
            .list_iocs(&IocQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(
            s.count_iocs(&IocQuery {
                limit: 2,
                after_id: Some(i64::MAX),
                ..Default::default()
            })
            .await
            .unwrap(),
            5,
            "count ignores limit and after_id"
        );
    }

    pub async fn keyset_pages_cover_everything_once(s: S, _raw: Raw) {
        let batch: Vec<NewIoc> = (0..2_500)
            .map(|i| ioc("sha256", &format!("{i:064x}")))
            .collect();
        let r = s.upsert_iocs("bulk", &batch, NOW).await.unwrap();
        assert_eq!(r.added, 2_500);
        let mut sorted = r.added_ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 2_500);

        let mut after = 0;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = s
                .list_iocs(&IocQuery {
                    after_id: Some(after),
                    limit: 1_000,
                    ..Default::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            pages += 1;
            assert!(page.windows(2).all(|w| w[0].id < w[1].id));
            assert!(page[0].id > after);
            after = page.last().unwrap().id;
            seen.extend(page.into_iter().map(|i| i.id));
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, sorted);
        assert_eq!(
            s.count_iocs(&IocQuery {
                kind: Some("sha256".into()),
                ..Default::default()
            })
            .await
            .unwrap(),
            2_500
        );
        let default = s.list_iocs(&IocQuery::default()).await.unwrap();
        assert_eq!(default.len(), DEFAULT_PAGE_LIMIT as usize);
        let big = s
            .list_iocs(&IocQuery {
                limit: u32::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(big.len(), 2_500);
    }

    pub async fn indicators_enable_disable_delete(s: S, _raw: Raw) {
        let r = s
            .upsert_iocs(
                "feed",
                &[ioc("ip", "192.0.2.1"), ioc("ip", "192.0.2.2")],
                NOW,
            )
            .await
            .unwrap();
        let (one, two) = (r.added_ids[0], r.added_ids[1]);
        let off = s
            .set_ioc_enabled(one, false, NOW + 5)
            .await
            .unwrap()
            .unwrap();
        assert!(!off.enabled);
        assert_eq!(off.updated_at, NOW + 5);
        assert!(!off.is_active(NOW));
        let on = s
            .set_ioc_enabled(one, true, NOW + 6)
            .await
            .unwrap()
            .unwrap();
        assert!(on.enabled && on.is_active(NOW));
        assert!(
            s.set_ioc_enabled(999_999, true, NOW)
                .await
                .unwrap()
                .is_none()
        );

        assert!(s.delete_ioc(two).await.unwrap());
        assert!(!s.delete_ioc(two).await.unwrap());
        assert!(s.get_ioc(two).await.unwrap().is_none());
        assert!(s.find_ioc("ip", "192.0.2.2").await.unwrap().is_none());
        assert_eq!(s.count_iocs(&IocQuery::default()).await.unwrap(), 1);
        // Given again, it is a new indicator with a new id.
        let r = s
            .upsert_iocs("feed", &[ioc("ip", "192.0.2.2")], NOW + 10)
            .await
            .unwrap();
        assert_eq!(r.added, 1);
        assert!(r.added_ids[0] > two, "ids are not reused");
    }

    pub async fn warninglists_are_replaced(s: S, _raw: Raw) {
        let mut listed = ioc("ip", "192.0.2.1");
        listed.warninglists = strings(&["old"]);
        let r = s
            .upsert_iocs("feed", &[listed, ioc("ip", "192.0.2.2")], NOW)
            .await
            .unwrap();
        let (one, two) = (r.added_ids[0], r.added_ids[1]);
        s.set_ioc_warninglists(&[
            (one, vec![]),
            (two, strings(&["cdn", "akamai", "cdn"])),
            (424_242, strings(&["ghost"])),
        ])
        .await
        .unwrap();
        let a = s.get_ioc(one).await.unwrap().unwrap();
        let b = s.get_ioc(two).await.unwrap().unwrap();
        assert!(a.warninglists.is_empty());
        assert_eq!(b.warninglists, ["akamai", "cdn"]);
        assert!(
            a.updated_at > NOW && b.updated_at > NOW,
            "a change is an update"
        );
        // The same lists again change nothing.
        s.set_ioc_warninglists(&[(two, strings(&["akamai", "cdn"]))])
            .await
            .unwrap();
        assert_eq!(s.get_ioc(two).await.unwrap().unwrap(), b);
        s.set_ioc_warninglists(&[]).await.unwrap();
    }

    pub async fn expired_indicators_are_counted_per_source(s: S, _raw: Raw) {
        let at = |value: &str, expires: Option<i64>| {
            let mut i = ioc("domain", value);
            i.expires = expires;
            i
        };
        s.upsert_iocs(
            "a",
            &[
                at("d100.example", Some(100)),
                at("d200.example", Some(200)),
                at("d300.example", Some(300)),
                at("never.example", None),
                at("off.example", Some(200)),
            ],
            NOW,
        )
        .await
        .unwrap();
        s.upsert_iocs("b", &[at("b200.example", Some(200))], NOW)
            .await
            .unwrap();
        let off = found(&s, "domain", "off.example").await;
        s.set_ioc_enabled(off.id, false, NOW).await.unwrap();
        assert_eq!(s.count_expired_iocs("a", 100, 300).await.unwrap(), 2);
        assert_eq!(s.count_expired_iocs("a", 0, 100).await.unwrap(), 1);
        assert_eq!(s.count_expired_iocs("a", 99, 1_000).await.unwrap(), 3);
        assert_eq!(s.count_expired_iocs("b", 0, 1_000).await.unwrap(), 1);
        assert_eq!(s.count_expired_iocs("c", 0, 1_000).await.unwrap(), 0);
        assert_eq!(s.count_expired_iocs("a", 300, 1_000).await.unwrap(), 0);
    }

    fn feed(name: &str) -> IntelSource {
        IntelSource {
            name: name.into(),
            spec: json!({"kind": "misp", "url": "https://misp.example", "key": "secret"}),
            enabled: true,
            interval_secs: 3_600,
            cursor: None,
            last_sync: None,
            updated_at: NOW,
            updated_by: "alice".into(),
        }
    }

    pub async fn sources_keep_their_cursor(s: S, _raw: Raw) {
        let created = s.put_intel_source(&feed("misp-main")).await.unwrap();
        assert_eq!(created, feed("misp-main"));
        s.put_intel_source(&feed("abuse-ch")).await.unwrap();
        let names: Vec<_> = s
            .list_intel_sources()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["abuse-ch", "misp-main"]);

        let status = IntelSyncStatus {
            started_at: NOW,
            finished_at: NOW + 500,
            status: "partial".into(),
            added: 10,
            updated: 2,
            unchanged: 3,
            expired: 1,
            skipped: 4,
            skipped_examples: vec!["attr 1: invalid ip".into()],
            ignored: 3,
            ignored_reasons: [("MISP type `link` is not matched on".to_owned(), 3)].into(),
            warninglisted: 1,
            retro_matches: 2,
            error: None,
        };
        assert!(
            s.record_intel_sync("misp-main", &status, Some("1700000000"))
                .await
                .unwrap()
        );
        let got = s.get_intel_source("misp-main").await.unwrap().unwrap();
        assert_eq!(got.cursor.as_deref(), Some("1700000000"));
        assert_eq!(got.last_sync.as_ref(), Some(&status));

        // A failed sync records its status and leaves the cursor where it was.
        let failed = IntelSyncStatus {
            status: "failed".into(),
            error: Some("connection refused".into()),
            ..Default::default()
        };
        assert!(
            s.record_intel_sync("misp-main", &failed, None)
                .await
                .unwrap()
        );
        let got = s.get_intel_source("misp-main").await.unwrap().unwrap();
        assert_eq!(got.cursor.as_deref(), Some("1700000000"));
        assert_eq!(got.last_sync.as_ref(), Some(&failed));
        assert!(
            !s.record_intel_sync("nope", &failed, Some("x"))
                .await
                .unwrap()
        );

        // New settings keep the cursor and the last sync.
        let mut changed = feed("misp-main");
        changed.enabled = false;
        changed.interval_secs = 0;
        changed.spec = json!({"kind": "misp", "url": "https://other.example"});
        changed.updated_at = NOW + 1_000;
        changed.updated_by = "bob".into();
        let got = s.put_intel_source(&changed).await.unwrap();
        assert!(!got.enabled);
        assert_eq!(got.interval_secs, 0);
        assert_eq!(got.spec, changed.spec);
        assert_eq!(
            (got.updated_at, got.updated_by.as_str()),
            (NOW + 1_000, "bob")
        );
        assert_eq!(got.cursor.as_deref(), Some("1700000000"));
        assert_eq!(got.last_sync.as_ref(), Some(&failed));

        for bad in ["", &"n".repeat(129)] {
            assert!(matches!(
                s.put_intel_source(&feed(bad)).await,
                Err(StoreError::InvalidArgument(_))
            ));
        }
        assert!(s.delete_intel_source("abuse-ch").await.unwrap());
        assert!(!s.delete_intel_source("abuse-ch").await.unwrap());
        assert!(s.get_intel_source("abuse-ch").await.unwrap().is_none());
        assert_eq!(s.list_intel_sources().await.unwrap().len(), 1);
    }

    pub fn hit(ioc_id: i64, event: &str, field: &str, sighting: &str) -> NewIntelMatch {
        NewIntelMatch {
            ioc_id,
            event_id: event.into(),
            field: field.into(),
            observed: "192.0.2.1".into(),
            agent_id: Some("agent-1".into()),
            event_ts: NOW - 1_000,
            retro: false,
            alerted: true,
            sighting: sighting.into(),
        }
    }

    pub async fn matches_are_recorded_once_and_counted(s: S, _raw: Raw) {
        let r = s
            .upsert_iocs(
                "feed",
                &[ioc("ip", "192.0.2.1"), ioc("domain", "evil.example")],
                NOW,
            )
            .await
            .unwrap();
        let (ip, dom) = (r.added_ids[0], r.added_ids[1]);
        let batch = [
            hit(ip, "e1", "destination.ip", "none"),
            hit(ip, "e1", "destination.ip", "none"),
            hit(ip, "e2", "destination.ip", "none"),
            hit(ip, "e1", "source.ip", "none"),
            hit(dom, "e1", "dns.question.name", "none"),
            hit(999_999, "e1", "destination.ip", "none"),
        ];
        let new = s.record_intel_matches(&batch, NOW + 1).await.unwrap();
        assert_eq!(new, [true, false, true, true, true, false]);
        let again = s.record_intel_matches(&batch, NOW + 2).await.unwrap();
        assert!(again.iter().all(|n| !n));
        assert!(s.record_intel_matches(&[], NOW).await.unwrap().is_empty());

        let ip_row = s.get_ioc(ip).await.unwrap().unwrap();
        assert_eq!((ip_row.sightings, ip_row.last_sighting), (3, Some(NOW + 1)));
        let dom_row = s.get_ioc(dom).await.unwrap().unwrap();
        assert_eq!(dom_row.sightings, 1);
        assert_eq!(ip_row.updated_at, NOW, "a sighting is no change of context");
        // `sighted` picks the indicators matched at least once (or never).
        s.upsert_iocs("feed", &[ioc("domain", "never.example")], NOW)
            .await
            .unwrap();
        for (sighted, want) in [(true, 2), (false, 1)] {
            let n = s
                .count_iocs(&IocQuery {
                    sighted: Some(sighted),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(n, want, "sighted {sighted}");
        }

        let all = s
            .list_intel_matches(&IntelMatchQuery::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let first = all.last().unwrap();
        assert_eq!(
            (first.kind.as_str(), first.value.as_str()),
            ("ip", "192.0.2.1")
        );
        assert_eq!(first.event_id, "e1");
        assert_eq!(first.field, "destination.ip");
        assert_eq!(first.agent_id.as_deref(), Some("agent-1"));
        assert_eq!((first.event_ts, first.matched_at), (NOW - 1_000, NOW + 1));
        assert!(first.alerted && !first.retro);
        assert_eq!(first.sighting, "none");

        let by_ioc = s
            .list_intel_matches(&IntelMatchQuery {
                ioc_id: Some(ip),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_ioc.len(), 3);
        let by_event = s
            .list_intel_matches(&IntelMatchQuery {
                event_ids: strings(&["e2", "e9"]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_event.len(), 1);
        assert_eq!(by_event[0].event_id, "e2");
        let older = s
            .list_intel_matches(&IntelMatchQuery {
                before_id: Some(all[1].id),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].id, all[2].id);

        // A deleted indicator's matches still read.
        assert!(s.delete_ioc(dom).await.unwrap());
        let kept = s
            .list_intel_matches(&IntelMatchQuery {
                ioc_id: Some(dom),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].value, "evil.example");

        // Bad input is refused and records nothing.
        for bad in [
            hit(ip, "e3", "f", "maybe"),
            hit(ip, "", "f", "none"),
            hit(ip, "e3", "", "none"),
        ] {
            let batch = [hit(ip, "e3", "ok", "none"), bad];
            assert!(matches!(
                s.record_intel_matches(&batch, NOW).await,
                Err(StoreError::InvalidArgument(m)) if m.contains("match 1")
            ));
        }
        // A long observed value is cut, not refused.
        let mut long = hit(ip, "e4", "url.full", "none");
        long.observed = "й".repeat(MAX_IOC_VALUE);
        assert_eq!(s.record_intel_matches(&[long], NOW).await.unwrap(), [true]);
        let got = s
            .list_intel_matches(&IntelMatchQuery {
                event_ids: strings(&["e4"]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(got[0].observed.len() <= MAX_IOC_VALUE);
        assert_eq!(s.get_ioc(ip).await.unwrap().unwrap().sightings, 4);
    }

    pub async fn sightings_wait_until_sent(s: S, _raw: Raw) {
        let r = s
            .upsert_iocs("misp", &[ioc("ip", "192.0.2.1")], NOW)
            .await
            .unwrap();
        let ip = r.added_ids[0];
        let batch: Vec<NewIntelMatch> = (0..5)
            .map(|i| {
                let sighting = if i == 2 { "none" } else { "pending" };
                hit(ip, &format!("e{i}"), "destination.ip", sighting)
            })
            .collect();
        s.record_intel_matches(&batch, NOW).await.unwrap();
        let pending = s.pending_sightings(0).await.unwrap();
        let events: Vec<_> = pending.iter().map(|m| m.event_id.as_str()).collect();
        assert_eq!(events, ["e0", "e1", "e3", "e4"], "oldest first");
        assert_eq!(s.pending_sightings(2).await.unwrap().len(), 2);

        s.set_sighting_status(&[pending[0].id, pending[1].id], "sent")
            .await
            .unwrap();
        s.set_sighting_status(&[pending[2].id], "failed")
            .await
            .unwrap();
        let left = s.pending_sightings(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id, "e4");
        let all = s
            .list_intel_matches(&IntelMatchQuery::default())
            .await
            .unwrap();
        let status = |e: &str| {
            all.iter()
                .find(|m| m.event_id == e)
                .map(|m| m.sighting.clone())
                .unwrap()
        };
        assert_eq!(status("e0"), "sent");
        assert_eq!(status("e3"), "failed");
        assert_eq!(status("e2"), "none");

        // Failed ones go back to pending for a retry, only those matched since `since`.
        assert_eq!(s.requeue_failed_sightings(NOW + 1).await.unwrap(), 0);
        assert_eq!(s.requeue_failed_sightings(NOW).await.unwrap(), 1);
        let again: Vec<String> = s
            .pending_sightings(10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.event_id)
            .collect();
        assert_eq!(again, ["e3", "e4"]);
        s.set_sighting_status(&[pending[2].id], "failed")
            .await
            .unwrap();

        assert!(matches!(
            s.set_sighting_status(&[left[0].id], "done").await,
            Err(StoreError::InvalidArgument(_))
        ));
        s.set_sighting_status(&[], "sent").await.unwrap();
        s.set_sighting_status(&[left[0].id, 987_654], "none")
            .await
            .unwrap();
        assert!(s.pending_sightings(10).await.unwrap().is_empty());
    }

    /// 100,000 new indicators into an empty store, then the same again (nothing written).
    pub async fn upsert_speed(s: S, _raw: Raw) {
        const N: usize = 100_000;
        let batch: Vec<NewIoc> = (0..N)
            .map(|i| {
                let mut n = ioc(
                    "ip",
                    &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                );
                n.misp_type = Some("ip-dst".into());
                n.to_ids = true;
                n.tags = strings(&["tlp:amber", "botnet"]);
                n.confidence = Some(70);
                n.last_seen = Some(NOW - 1_000);
                n.expires = Some(NOW + 86_400_000);
                n.object_ids = vec![format!("misp-attribute:{i}")];
                n
            })
            .collect();
        let backend = s.backend();
        let t = Instant::now();
        let r = s.upsert_iocs("bulk", &batch, NOW).await.unwrap();
        let first = t.elapsed();
        assert_eq!((r.added, r.updated, r.unchanged), (N as u64, 0, 0));
        assert_eq!(r.added_ids.len(), N);
        let t = Instant::now();
        let r = s.upsert_iocs("bulk", &batch, NOW + 1).await.unwrap();
        let again = t.elapsed();
        assert_eq!((r.added, r.updated, r.unchanged), (0, 0, N as u64));
        let t = Instant::now();
        let r = s.upsert_iocs("other", &batch, NOW + 2).await.unwrap();
        let second_source = t.elapsed();
        assert_eq!((r.added, r.updated, r.unchanged), (0, N as u64, 0));
        println!(
            "{backend:?}: {N} new indicators in {first:?}, the same again (unchanged) in \
             {again:?}, from a second source (all updated) in {second_source:?}"
        );
        assert_eq!(
            s.count_iocs(&IocQuery {
                source: Some("other".into()),
                ..Default::default()
            })
            .await
            .unwrap(),
            N as u64
        );
        let hang_guard = Duration::from_secs(60);
        assert!(first < hang_guard && again < hang_guard && second_source < hang_guard);
    }
}
