//! Sources as configuration: the serde shape and `SourceSpec::sync` over files, a feed
//! directory and URLs (an in-test HTTP server).

mod common;

use axum::Router;
use axum::routing::get;
use dozor_intel::{Ioc, IocKind};
use dozor_intel_sources::export::{FeedEventSettings, misp_feed, write_misp_feed};
use dozor_intel_sources::{SourceConfig, SourceError, SourceSpec};
use serde_json::json;

fn spec(v: serde_json::Value) -> SourceSpec {
    serde_json::from_value(v).expect("spec")
}

#[tokio::test]
async fn feed_csv_freetext_and_stix_from_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A feed directory written by the exporter.
    let iocs = vec![
        Ioc::new(IocKind::Domain, "evil.example").expect("domain"),
        Ioc::new(IocKind::Ip, "203.0.113.50").expect("ip"),
    ];
    let feed_dir = dir.path().join("feed");
    write_misp_feed(
        &feed_dir,
        &misp_feed(&iocs, &[], &FeedEventSettings::new("conf test")),
    )
    .expect("feed");
    let feed = spec(json!({
        "name": "local-feed", "kind": "misp_feed",
        "location": feed_dir.join("manifest.json"),
        "add_tags": ["tlp:green"], "confidence": 60, "expire_after_days": 30
    }));
    let batch = feed.sync(None).await.expect("feed sync");
    assert_eq!(batch.iocs.len(), 2);
    assert!(batch.iocs.iter().all(|i| i.tags == vec!["tlp:green"]
        && i.confidence == Some(60)
        && i.expires.is_some()
        && i.sources[0].name == "local-feed"));
    let cursor = batch.cursor.clone();
    assert!(cursor.is_some());
    assert!(
        feed.sync(cursor.as_deref())
            .await
            .expect("again")
            .iocs
            .is_empty()
    );

    // CSV from a file, columns counted from 1.
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "value|type\n198.51.100.9|ip-dst\nbad|ip-dst\n").expect("csv");
    let batch = spec(json!({
        "name": "csv", "kind": "csv", "location": csv, "value_column": 1,
        "type_column": 2, "delimiter": "|", "header_rows": 1
    }))
    .sync(None)
    .await
    .expect("csv sync");
    assert_eq!(batch.iocs.len(), 1);
    assert_eq!(batch.skipped.len(), 1);
    assert_eq!(batch.skipped[0].object, "line 3");

    // Freetext and a STIX bundle over HTTP.
    let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000009",
         "pattern_type": "stix", "pattern": "[domain-name:value = 'c2.evil.example']",
         "valid_from": "2024-01-01T00:00:00Z"}]});
    let app = Router::new()
        .route(
            "/free.txt",
            get(|| async { "seen: hxxp://a[.]evil.example/x and 192.0.2.1\n" }),
        )
        .route(
            "/bundle.json",
            get(move || async move { bundle.to_string() }),
        );
    let addr = common::serve(app).await;
    let batch = spec(json!({"name": "free", "kind": "freetext",
                            "location": format!("http://{addr}/free.txt")}))
    .sync(None)
    .await
    .expect("freetext");
    assert_eq!(batch.iocs.len(), 2);
    let batch = spec(json!({"name": "stix", "kind": "stix_bundle",
                            "location": format!("http://{addr}/bundle.json")}))
    .sync(None)
    .await
    .expect("stix");
    assert_eq!(batch.iocs[0].value, "c2.evil.example");
}

#[test]
fn configuration_is_checked() {
    let misp: SourceSpec = spec(json!({
        "name": "misp", "kind": "misp_rest", "url": "https://misp.example", "key": "s3cr3t-misp-key",
        "tags": ["tlp:white"], "to_ids": true, "first_sync_last": "30d",
        "http": {"ca_file": "/etc/dozor/misp-ca.pem", "timeout_secs": 30}
    }));
    match &misp.config {
        SourceConfig::MispRest { tags, to_ids, .. } => {
            assert_eq!(tags, &vec!["tlp:white".to_owned()]);
            assert_eq!(*to_ids, Some(true));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(misp.http.timeout_secs, Some(30));
    // The key round-trips through serde and never shows in Debug output.
    let debug = format!("{misp:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert_eq!(
        serde_json::to_value(&misp).expect("serialize")["key"],
        "s3cr3t-misp-key"
    );
    assert!(
        serde_json::from_value::<SourceSpec>(
            json!({"name": "x", "kind": "gopher", "location": "/"})
        )
        .is_err()
    );
    // A misspelt key is refused, not ignored.
    assert!(
        serde_json::from_value::<SourceSpec>(
            json!({"name": "x", "kind": "misp_feed", "location": "/", "confidnce": 5})
        )
        .is_err()
    );
    assert!(
        serde_json::from_value::<SourceSpec>(
            json!({"name": "x", "kind": "misp_feed", "location": "/", "http": {"proxi": "x"}})
        )
        .is_err()
    );
}

#[tokio::test]
async fn bad_csv_settings_are_config_errors() {
    for bad in [
        json!({"name": "x", "kind": "csv", "location": "/nonexistent", "value_column": 0}),
        json!({"name": "x", "kind": "csv", "location": "/nonexistent", "value_column": 1,
               "ioc_kind": "ip", "misp_type": "ip-dst"}),
        json!({"name": "x", "kind": "csv", "location": "/nonexistent", "value_column": 1,
               "ioc_kind": "planet"}),
    ] {
        let err = spec(bad.clone())
            .sync(None)
            .await
            .expect_err("config error");
        assert!(matches!(err, SourceError::Config(_)), "{bad}: {err:?}");
    }
    let err = spec(json!({"name": "x", "kind": "freetext", "location": "/nonexistent/list"}))
        .sync(None)
        .await
        .expect_err("no file");
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
}
