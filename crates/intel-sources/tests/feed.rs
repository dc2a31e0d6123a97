//! MISP feeds from a directory and from a URL. MISP itself can't run here; the feed is laid
//! out the way MISP's feed export writes it (`manifest.json`, `<uuid>.json`) in a temporary
//! directory at test time from the recorded PyMISP events in `../shared/fixtures/misp`, plus
//! a broken event file and a manifest entry whose file is missing; the URL variant serves
//! that directory from an in-test HTTP server.

mod common;

use std::path::Path;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use dozor_intel::IocKind;
use dozor_intel_sources::feed::MispFeed;
use dozor_intel_sources::{HttpSettings, SyncBatch};
use serde_json::{Value, json};

const FEED_EVENT: &str = "57c4445b-c548-4654-af0b-4be3950d210f";
const RANDOM_EVENT: &str = "5758ebf5-c898-48e6-9fe9-5665c0a83866";
const BROKEN_EVENT: &str = "5f000000-0000-4000-8000-0000000000b0";
const MISSING_EVENT: &str = "5f000000-0000-4000-8000-0000000000b1";

/// Writes the feed into `dir`; `None` when ../shared is absent.
fn lay_out_feed(dir: &Path) -> Option<()> {
    let fixtures = common::shared("fixtures/misp")?;
    let feed_event =
        std::fs::read(fixtures.join(format!("{FEED_EVENT}.json"))).expect("feed event");
    std::fs::write(dir.join(format!("{FEED_EVENT}.json")), &feed_event).expect("write");
    // misp_event.json is an event without the `Event` wrapper; a feed file has it.
    let random: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("misp_event.json")).expect("misp_event.json"),
    )
    .expect("JSON");
    std::fs::write(
        dir.join(format!("{RANDOM_EVENT}.json")),
        json!({"Event": random}).to_string(),
    )
    .expect("write");
    std::fs::write(dir.join(format!("{BROKEN_EVENT}.json")), "{\"Event\": {").expect("write");
    let manifest = json!({
        FEED_EVENT: {"info": "Ransomware - Xorist", "timestamp": "1472541011"},
        RANDOM_EVENT: {"info": "A Random Event", "timestamp": "1465681801"},
        BROKEN_EVENT: {"info": "broken", "timestamp": "1472600000"},
        MISSING_EVENT: {"info": "missing", "timestamp": "1472600001"},
        "../../etc/passwd": {"info": "hostile", "timestamp": "1"},
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write");
    std::fs::write(
        dir.join("hashes.csv"),
        format!("0749bae92ca336a02c83d126e04ec628,{FEED_EVENT}\nnot a line\n"),
    )
    .expect("write");
    Some(())
}

fn check_full_sync(batch: &SyncBatch) {
    // The feed event: filename, md5, sha1, sha256, regkey|value (4 unsupported types
    // reported); the random event: the url (its `text` reported).
    let mut kinds: Vec<IocKind> = batch.iocs.iter().map(|i| i.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            IocKind::Url,
            IocKind::Md5,
            IocKind::Sha1,
            IocKind::Sha256,
            IocKind::Filename,
            IocKind::RegistryKey
        ]
    );
    let reported = |object: &str| batch.skipped.iter().find(|s| s.object == object);
    assert!(
        reported(BROKEN_EVENT)
            .expect("broken event reported")
            .reason
            .contains("not JSON")
    );
    assert!(
        reported(MISSING_EVENT)
            .expect("missing event reported")
            .reason
            .contains("missing")
    );
    assert!(reported("manifest.json: ../../etc/passwd").is_some());
    // Broken + missing + hostile key; the 5 attributes of types Dozor does not match on are
    // ignored, not reported as faults.
    assert_eq!(batch.skipped.len(), 3, "{:#?}", batch.skipped);
    assert_eq!(batch.ignored_total(), 5, "{:#?}", batch.ignored);
    let sha256 = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Sha256)
        .expect("sha256");
    assert!(sha256.tags.iter().any(|t| t == "tlp:white"));
    assert_eq!(
        sha256.sources[0].object_ids,
        vec![
            format!("misp-event:{FEED_EVENT}"),
            "misp-attribute:57c4448b-3fa4-4d65-9ccc-4afa950d210f".to_owned()
        ]
    );
    assert_eq!(sha256.sources[0].name, "circl-feed");
    // Held back below the broken event (1472600000) so it is read again next time.
    assert_eq!(batch.cursor.as_deref(), Some("1472599999"));
}

#[tokio::test]
async fn a_feed_directory_syncs_and_reports_what_it_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    if lay_out_feed(dir.path()).is_none() {
        return;
    }
    let feed = MispFeed::dir(dir.path(), "circl-feed");
    let batch = feed.sync(None).await.expect("sync");
    check_full_sync(&batch);

    // Incremental: fix the broken event, add a new one; from the cursor only those come.
    std::fs::remove_file(dir.path().join(format!("{BROKEN_EVENT}.json"))).expect("rm");
    let new_event = "5f000000-0000-4000-8000-0000000000c0";
    std::fs::write(
        dir.path().join(format!("{new_event}.json")),
        json!({"Event": {"uuid": new_event, "timestamp": "1500000000",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [{"uuid": "5f000000-0000-4000-8000-0000000000c1", "type": "domain",
                           "value": "Evil.Example.", "to_ids": true, "timestamp": "1500000000"}],
            "Object": [{"uuid": "5f000000-0000-4000-8000-0000000000c2", "name": "domain-ip",
                        "Attribute": [{"uuid": "5f000000-0000-4000-8000-0000000000c3",
                                       "type": "ip-dst", "value": "203.0.113.9",
                                       "to_ids": true, "timestamp": "1500000000"}]}]}})
        .to_string(),
    )
    .expect("write");
    let manifest = json!({
        FEED_EVENT: {"info": "Ransomware - Xorist", "timestamp": "1472541011"},
        RANDOM_EVENT: {"info": "A Random Event", "timestamp": "1465681801"},
        new_event: {"info": "new", "timestamp": "1500000000"},
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("write");
    let next = feed
        .sync(batch.cursor.as_deref())
        .await
        .expect("incremental");
    let got: Vec<(IocKind, &str)> = next
        .iocs
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (IocKind::Domain, "evil.example"),
            (IocKind::Ip, "203.0.113.9")
        ]
    );
    assert!(next.iocs.iter().all(|i| i.tags == vec!["tlp:green"]));
    assert!(next.skipped.is_empty(), "{:#?}", next.skipped);
    assert_eq!(next.cursor.as_deref(), Some("1500000000"));

    // Nothing new: nothing read, the cursor stays.
    let idle = feed.sync(next.cursor.as_deref()).await.expect("idle");
    assert!(idle.iocs.is_empty());
    assert_eq!(idle.cursor.as_deref(), Some("1500000000"));
}

#[tokio::test]
async fn a_feed_url_syncs_like_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    if lay_out_feed(dir.path()).is_none() {
        return;
    }
    let root = dir.path().to_owned();
    let app = Router::new().route(
        "/feeds/circl/{file}",
        get(move |UrlPath(file): UrlPath<String>| {
            let root = root.clone();
            async move {
                if file.contains('/') || file.starts_with('.') {
                    return Err(StatusCode::NOT_FOUND);
                }
                std::fs::read(root.join(file)).map_err(|_| StatusCode::NOT_FOUND)
            }
        }),
    );
    let addr = common::serve(app).await;
    let feed = MispFeed::url(
        &format!("http://{addr}/feeds/circl/"),
        &HttpSettings::default(),
        "circl-feed",
    )
    .expect("feed");
    let batch = feed.sync(None).await.expect("sync");
    check_full_sync(&batch);

    let mut skipped = SyncBatch::default();
    let hashes = feed
        .hashes(&mut skipped)
        .await
        .expect("hashes")
        .expect("hashes.csv");
    assert_eq!(
        hashes,
        vec![(
            "0749bae92ca336a02c83d126e04ec628".to_owned(),
            FEED_EVENT.to_owned()
        )]
    );
    assert_eq!(skipped.skipped.len(), 1);
    assert_eq!(skipped.skipped[0].object, "hashes.csv line 2");

    // No feed at all there.
    let none = MispFeed::url(
        &format!("http://{addr}/feeds/none"),
        &HttpSettings::default(),
        "x",
    )
    .expect("feed");
    let err = none.sync(None).await.expect_err("no manifest");
    assert!(err.to_string().contains("no manifest.json"), "{err}");
}

/// The bar: a full sync of 100,000 attributes from a feed directory in under 60 s
/// (here in a debug build; a release build is several times faster). Generated data: 10
/// events of 10,000 attributes (ip-dst, domain, sha256, url in turn).
#[tokio::test]
async fn a_hundred_thousand_attributes_sync_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut manifest = serde_json::Map::new();
    for e in 0..10u32 {
        let uuid = format!("5f000000-0000-4000-8000-{e:012x}");
        let attributes: Vec<Value> = (0..10_000u32)
            .map(|i| {
                let n = e * 10_000 + i;
                let (t, v) = match n % 4 {
                    0 => (
                        "ip-dst",
                        format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
                    ),
                    1 => ("domain", format!("host{n}.evil.example")),
                    2 => ("sha256", format!("{n:064x}")),
                    _ => ("url", format!("http://evil.example/p/{n}")),
                };
                json!({"uuid": format!("6f000000-0000-4000-8000-{n:012x}"), "type": t,
                       "value": v, "to_ids": true, "timestamp": "1700000000",
                       "category": "Network activity"})
            })
            .collect();
        let event = json!({"Event": {"uuid": uuid, "info": format!("bulk {e}"),
            "timestamp": "1700000000", "Tag": [{"name": "tlp:green"}],
            "Attribute": attributes}});
        std::fs::write(dir.path().join(format!("{uuid}.json")), event.to_string()).expect("write");
        manifest.insert(
            uuid,
            json!({"info": format!("bulk {e}"), "timestamp": 1_700_000_000}),
        );
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        Value::Object(manifest).to_string(),
    )
    .expect("write");

    let started = std::time::Instant::now();
    let batch = MispFeed::dir(dir.path(), "bulk")
        .sync(None)
        .await
        .expect("sync");
    let took = started.elapsed();
    println!("100,000 attributes from a feed directory in {took:?}");
    assert_eq!(batch.iocs.len(), 100_000);
    assert!(batch.skipped.is_empty());
    assert!(took.as_secs() < 60, "took {took:?}");
}
