//! File samples (metadata and last verdict), on SQLite and (when `DOZOR_TEST_POSTGRES_URL`
//! is set) PostgreSQL.

mod common;

use std::sync::Arc;

use dozor_store::*;
use serde_json::json;

async fn samples_scenario(s: Arc<dyn Store>, _raw: common::Raw) {
    let a = "ab".repeat(32);
    let b = "cd".repeat(32);
    let upload = |sha: &str, agent: &str, path: &str, at: i64| NewSample {
        sha256: sha.to_owned(),
        size: 68,
        agent_id: Some(agent.to_owned()),
        path: path.to_owned(),
        at,
    };

    // First upload: new, counted once, first and last agent the same.
    let (sample, new) = s
        .record_sample(&upload(&a.to_ascii_uppercase(), "agent-1", "/tmp/x", 1_000))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(sample.sha256, a, "stored lower-case");
    assert_eq!(
        (sample.uploads, sample.first_seen, sample.last_seen),
        (1, 1_000, 1_000)
    );
    assert_eq!(sample.first_agent_id.as_deref(), Some("agent-1"));
    assert_eq!(sample.last_verdict, None);

    // Again from another agent, another path: not new, counted, first agent kept.
    let (sample, new) = s
        .record_sample(&upload(&a, "agent-2", "C:\\Users\\x\\evil.exe", 2_000))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(sample.uploads, 2);
    assert_eq!(sample.first_seen, 1_000);
    assert_eq!(sample.last_seen, 2_000);
    assert_eq!(sample.first_agent_id.as_deref(), Some("agent-1"));
    assert_eq!(sample.last_agent_id.as_deref(), Some("agent-2"));
    assert_eq!(sample.last_path, "C:\\Users\\x\\evil.exe");

    // An older upload arriving late does not move last_seen back.
    let (sample, _) = s
        .record_sample(&upload(&a, "agent-3", "/x", 1_500))
        .await
        .unwrap();
    assert_eq!((sample.uploads, sample.last_seen), (3, 2_000));

    // The verdict.
    let verdict =
        json!({"engines": ["hashlist", "yara"], "findings": [{"engine": "yara", "name": "Evil"}]});
    assert!(s.set_sample_verdict(&a, &verdict, 2_100).await.unwrap());
    assert!(!s.set_sample_verdict(&b, &verdict, 2_100).await.unwrap());
    let got = s.get_sample(&a).await.unwrap().unwrap();
    assert_eq!(got.last_verdict, Some(verdict));
    assert_eq!(got.verdict_at, Some(2_100));
    assert!(s.get_sample(&b).await.unwrap().is_none());
    assert!(s.get_sample("not-a-hash").await.unwrap().is_none());

    // Listing: newest first, keyset pages.
    s.record_sample(&upload(&b, "agent-1", "/y", 3_000))
        .await
        .unwrap();
    let c = "0f".repeat(32);
    s.record_sample(&upload(&c, "agent-1", "/z", 3_000))
        .await
        .unwrap();
    let all = s.list_samples(&SampleQuery::default()).await.unwrap();
    let order: Vec<&str> = all.iter().map(|x| x.sha256.as_str()).collect();
    assert_eq!(order, [b.as_str(), c.as_str(), a.as_str()]);
    let page = s
        .list_samples(&SampleQuery {
            limit: 1,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    let next = s
        .list_samples(&SampleQuery {
            limit: 5,
            after: Some(SampleCursor {
                last_seen: page[0].last_seen,
                sha256: page[0].sha256.clone(),
            }),
        })
        .await
        .unwrap();
    let order: Vec<&str> = next.iter().map(|x| x.sha256.as_str()).collect();
    assert_eq!(order, [c.as_str(), a.as_str()]);

    // Invalid input.
    for bad in [
        upload("xyz", "a", "/p", 1),
        upload(&a, "a", "nul\0path", 1),
        upload(&a, "a", &"p".repeat(MAX_SAMPLE_PATH + 1), 1),
    ] {
        assert!(
            matches!(
                s.record_sample(&bad).await,
                Err(StoreError::InvalidArgument(_))
            ),
            "{bad:?}"
        );
    }
    // NUL in the verdict is fine on both backends.
    assert!(
        s.set_sample_verdict(&c, &json!({"detail": "a\u{0}b"}), 4_000)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn samples_sqlite() {
    let h = common::sqlite().await;
    common::run(h, samples_scenario).await;
}

#[tokio::test]
async fn samples_postgres() {
    let Some(h) = common::postgres().await else {
        eprintln!("skipped: {} not set", common::PG_ENV);
        return;
    };
    common::run(h, samples_scenario).await;
}
