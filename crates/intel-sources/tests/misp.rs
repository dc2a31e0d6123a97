//! MISP REST client against a MISP-compatible test server.
//!
//! MISP itself (PHP, MySQL, Redis) can't run here, so the test server below answers the
//! endpoints Dozor uses the way MISP does — `attributes/restSearch` with `limit`/`page`,
//! `timestamp`, `to_ids` and `type` filters, `events/restSearch`, `sightings/add`, 403 with
//! MISP's JSON for a wrong key — over the recorded PyMISP data in
//! `../shared/fixtures/misp` plus one deliberately broken attribute.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use dozor_intel::IocKind;
use dozor_intel_sources::misp::{AttributeQuery, MispClient, Sighting, attribute_uuid};
use dozor_intel_sources::{HttpSettings, SourceError};
use serde_json::{Value, json};

const KEY: &str = "k3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk";
const BROKEN_UUID: &str = "5f000000-0000-4000-8000-00000000dead";

#[derive(Default)]
struct Misp {
    attributes: Vec<Value>,
    events: Vec<Value>,
    /// (page, limit) of every restSearch.
    pages: Mutex<Vec<(u64, u64)>>,
    /// (path, body) of every sightings/add.
    sightings: Mutex<Vec<(String, Value)>>,
}

/// The recorded events, and their attributes flattened the way `attributes/restSearch`
/// returns them (each with its `Event` and the event's tags).
fn recorded() -> Option<(Vec<Value>, Vec<Value>)> {
    let dir = common::shared("fixtures/misp")?;
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).expect("read fixture"))
            .expect("fixture JSON")
    };
    let random = read("misp_event.json");
    let feed = read("57c4445b-c548-4654-af0b-4be3950d210f.json")["Event"].clone();
    let mut attributes = Vec::new();
    for event in [&random, &feed] {
        for attr in event["Attribute"].as_array().expect("attributes") {
            let mut attr = attr.clone();
            attr["Event"] = json!({"uuid": event["uuid"], "info": event["info"]});
            attr["Tag"] = event["Tag"].clone();
            attributes.push(attr);
        }
    }
    // The deliberately broken one: an ip-dst that is no address.
    attributes.insert(
        3,
        json!({"uuid": BROKEN_UUID, "type": "ip-dst", "value": "999.1.2.3", "to_ids": true,
               "timestamp": "1465000000", "category": "Network activity",
               "Event": {"uuid": feed["uuid"]}}),
    );
    Some((vec![random, feed], attributes))
}

fn authorized(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(KEY) {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        Json(json!({
            "name": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
            "message": "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
            "url": "/attributes/restSearch"
        })),
    ))
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn keep(filter: &Value, attr: &Value) -> bool {
    if let Some(t) = filter.get("timestamp").and_then(num)
        && attr.get("timestamp").and_then(num).unwrap_or(0) < t
    {
        return false;
    }
    if let Some(want) = filter.get("to_ids").and_then(num)
        && attr["to_ids"].as_bool().map(i64::from) != Some(want)
    {
        return false;
    }
    if let Some(types) = filter.get("type").and_then(Value::as_array)
        && !types.iter().any(|t| t == &attr["type"])
    {
        return false;
    }
    true
}

fn page<'a>(filter: &Value, items: impl Iterator<Item = &'a Value>) -> (Vec<Value>, u64, u64) {
    let limit = filter["limit"].as_u64().unwrap_or(u64::MAX);
    let page = filter["page"].as_u64().unwrap_or(1);
    let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    (items.skip(skip).take(take).cloned().collect(), page, limit)
}

async fn attributes(
    State(misp): State<Arc<Misp>>,
    headers: HeaderMap,
    Json(filter): Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    authorized(&headers)?;
    let (items, page_no, limit) =
        page(&filter, misp.attributes.iter().filter(|a| keep(&filter, a)));
    // includeDecayScore: the md5 has decayed under both models, the sha256 scores 80.
    let items = if filter.get("includeDecayScore") == Some(&json!(1)) {
        items
            .into_iter()
            .map(|mut a| {
                let score = match a["type"].as_str() {
                    Some("md5") => json!([{"score": 12.5, "decayed": true},
                                          {"score": 3.0, "decayed": true}]),
                    Some("sha256") => json!([{"score": 80.0, "decayed": false},
                                             {"score": 20.0, "decayed": true}]),
                    _ => json!([]),
                };
                a["decay_score"] = score;
                a
            })
            .collect()
    } else {
        items
    };
    misp.pages.lock().expect("lock").push((page_no, limit));
    Ok(Json(json!({"response": {"Attribute": items}})))
}

async fn events(
    State(misp): State<Arc<Misp>>,
    headers: HeaderMap,
    Json(filter): Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    authorized(&headers)?;
    let (items, _, _) = page(&filter, misp.events.iter().filter(|e| keep(&filter, e)));
    let wrapped: Vec<Value> = items.into_iter().map(|e| json!({"Event": e})).collect();
    Ok(Json(json!({"response": wrapped})))
}

async fn sighting(
    State(misp): State<Arc<Misp>>,
    headers: HeaderMap,
    uuid: Option<Path<String>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    authorized(&headers)?;
    let path = match uuid {
        Some(Path(u)) => format!("/sightings/add/{u}"),
        None => "/sightings/add".to_owned(),
    };
    misp.sightings.lock().expect("lock").push((path, body));
    Ok(Json(json!({"message": "1 sighting successfully added."})))
}

async fn start() -> Option<(Arc<Misp>, String)> {
    let (events_list, attrs) = recorded()?;
    let misp = Arc::new(Misp {
        attributes: attrs,
        events: events_list,
        ..Misp::default()
    });
    let app = Router::new()
        .route("/attributes/restSearch", post(attributes))
        .route("/events/restSearch", post(events))
        .route("/sightings/add", post(sighting))
        .route("/sightings/add/{uuid}", post(sighting))
        .with_state(misp.clone());
    let addr = common::serve(app).await;
    Some((misp, format!("http://{addr}")))
}

#[tokio::test]
async fn rest_search_pages_imports_and_reports_the_broken_attribute() {
    let Some((misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, KEY, &HttpSettings::default()).expect("client");
    let query = AttributeQuery {
        page_size: 5,
        ..AttributeQuery::default()
    };
    let batch = client.attributes(&query).await.expect("sync");

    // 12 attributes at 5 a page: pages 1, 2 and the short page 3, then it stops.
    assert_eq!(
        *misp.pages.lock().expect("lock"),
        vec![(1, 5), (2, 5), (3, 5)]
    );

    // Imported: the url of the random event; filename, md5, sha1, sha256 and the regkey|value
    // of the feed event.
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
        ],
        "{:#?}",
        batch.iocs
    );
    // Reported by its attribute uuid: the broken ip-dst. The types Dozor does not match on
    // (text ×2, link ×2, comment) are no fault of the feed: counted as ignored, by type.
    assert_eq!(batch.skipped.len(), 1, "{:#?}", batch.skipped);
    let broken = &batch.skipped[0];
    assert_eq!(broken.object, BROKEN_UUID);
    assert!(broken.reason.contains("999.1.2.3"), "{}", broken.reason);
    assert_eq!(batch.ignored_total(), 5, "{:#?}", batch.ignored);
    assert_eq!(batch.ignored["MISP type `text` is not matched on"], 2);
    assert_eq!(batch.ignored["MISP type `link` is not matched on"], 2);
    assert_eq!(batch.ignored["MISP type `comment` is not matched on"], 1);

    // Context: event + attribute uuids, event tags (with TLP), to_ids.
    let md5 = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Md5)
        .expect("md5");
    assert_eq!(md5.value, "0749bae92ca336a02c83d126e04ec628");
    assert!(md5.to_ids);
    assert!(md5.tags.iter().any(|t| t == "tlp:white"), "{:?}", md5.tags);
    assert_eq!(
        md5.sources[0].object_ids,
        vec![
            "misp-event:57c4445b-c548-4654-af0b-4be3950d210f",
            "misp-attribute:57c4448b-454c-4d17-90d1-4d2f950d210f"
        ]
    );
    assert_eq!(
        attribute_uuid(md5),
        Some("57c4448b-454c-4d17-90d1-4d2f950d210f")
    );
    let url = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Url)
        .expect("url");
    assert!(!url.to_ids);
    assert_eq!(url.value, "http://fake.website.com/malware/is/here");

    // The cursor is the newest attribute timestamp (the regkey|value's).
    assert_eq!(batch.cursor.as_deref(), Some("1472547599"));

    // The next sync from that cursor gets only what changed since.
    let next = AttributeQuery {
        page_size: 5,
        ..AttributeQuery::default()
    }
    .since_cursor(batch.cursor.as_deref())
    .expect("cursor");
    let again = client.attributes(&next).await.expect("incremental sync");
    assert_eq!(again.iocs.len(), 1);
    assert_eq!(again.iocs[0].kind, IocKind::RegistryKey);
    assert_eq!(again.cursor.as_deref(), Some("1472547599"));
}

#[tokio::test]
async fn filters_are_sent_as_misp_reads_them() {
    let Some((_misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, KEY, &HttpSettings::default()).expect("client");
    let query = AttributeQuery {
        to_ids: Some(true),
        types: vec!["md5".into(), "sha256".into()],
        ..AttributeQuery::default()
    };
    let body = query.body(1);
    assert_eq!(body["to_ids"], 1);
    assert_eq!(body["type"], json!(["md5", "sha256"]));
    assert_eq!(body["returnFormat"], "json");
    let batch = client.attributes(&query).await.expect("sync");
    let mut values: Vec<&str> = batch.iocs.iter().map(|i| i.value.as_str()).collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            "0749bae92ca336a02c83d126e04ec628",
            "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"
        ]
    );
    assert!(batch.skipped.is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_auth_error() {
    let Some((_misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, "wrong", &HttpSettings::default()).expect("client");
    let err = client
        .attributes(&AttributeQuery::default())
        .await
        .expect_err("403");
    match &err {
        SourceError::Auth {
            status, message, ..
        } => {
            assert_eq!(*status, 403);
            assert!(message.starts_with("Authentication failed"), "{message}");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(err.to_string().contains("authentication failed (HTTP 403)"));
}

#[tokio::test]
async fn events_bring_their_attributes_and_tags() {
    let Some((_misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, KEY, &HttpSettings::default()).expect("client");
    let batch = client
        .events(&AttributeQuery::default())
        .await
        .expect("events");
    assert_eq!(batch.iocs.len(), 6, "{:#?}", batch.iocs);
    assert!(batch.skipped.is_empty(), "{:#?}", batch.skipped);
    assert_eq!(batch.ignored_total(), 5, "{:#?}", batch.ignored);
    let url = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Url)
        .expect("url");
    assert!(url.tags.iter().any(|t| t == "for_intelmq_processing"));
    assert_eq!(batch.cursor.as_deref(), Some("1472547599"));
}

#[tokio::test]
async fn sightings_reach_the_server() {
    let Some((misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, KEY, &HttpSettings::default()).expect("client");
    client
        .add_sighting(&Sighting::of_value(
            "0749bae92ca336a02c83d126e04ec628",
            1_700_000_000,
        ))
        .await
        .expect("sighting by value");
    client
        .add_sighting(&Sighting::of_attribute(
            "57c4448b-454c-4d17-90d1-4d2f950d210f",
            1_700_000_001,
        ))
        .await
        .expect("sighting by attribute");
    let got = misp.sightings.lock().expect("lock").clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "/sightings/add");
    assert_eq!(
        got[0].1["values"],
        json!(["0749bae92ca336a02c83d126e04ec628"])
    );
    assert_eq!(got[0].1["source"], "dozor");
    assert_eq!(got[0].1["timestamp"], 1_700_000_000);
    assert_eq!(got[0].1["type"], "0");
    assert_eq!(
        got[1].0,
        "/sightings/add/57c4448b-454c-4d17-90d1-4d2f950d210f"
    );
    assert!(
        client
            .add_sighting(&Sighting::of_attribute("../../users", 1))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_transport_error() {
    // Bind and drop a listener: nothing answers on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = MispClient::new(
        &format!("http://127.0.0.1:{port}"),
        KEY,
        &HttpSettings::default(),
    )
    .expect("client");
    let err = client
        .attributes(&AttributeQuery::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, SourceError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn requests_go_through_the_proxy() {
    let Some((misp, base)) = start().await else {
        return;
    };
    // The test server doubles as a plain HTTP proxy: reqwest sends it the absolute URI of a
    // host that does not resolve, and it answers for the path.
    let settings = HttpSettings {
        proxy: Some(base),
        ..HttpSettings::default()
    };
    let client = MispClient::new("http://misp.invalid", KEY, &settings).expect("client");
    let batch = client
        .attributes(&AttributeQuery::default())
        .await
        .expect("through the proxy");
    assert_eq!(batch.iocs.len(), 6);
    assert_eq!(misp.pages.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let app = Router::new().route(
        "/attributes/restSearch",
        post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Json(json!({"response": {"Attribute": []}}))
        }),
    );
    let addr = common::serve(app).await;
    let settings = HttpSettings {
        timeout: std::time::Duration::from_millis(200),
        ..HttpSettings::default()
    };
    let client = MispClient::new(&format!("http://{addr}"), KEY, &settings).expect("client");
    let err = client
        .attributes(&AttributeQuery::default())
        .await
        .expect_err("timeout");
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn empty_and_malformed_answers() {
    let app = Router::new()
        .route(
            "/empty/attributes/restSearch",
            post(|| async { Json(json!({"response": []})) }),
        )
        .route(
            "/odd/attributes/restSearch",
            post(|| async { Json(json!({"response": {"Event": []}})) }),
        )
        .route(
            "/html/attributes/restSearch",
            post(|| async { "<html>login</html>" }),
        );
    let addr = common::serve(app).await;
    let sync = |path: &'static str| async move {
        MispClient::new(
            &format!("http://{addr}/{path}"),
            KEY,
            &HttpSettings::default(),
        )
        .expect("client")
        .attributes(&AttributeQuery::default())
        .await
    };
    let empty = sync("empty").await.expect("empty is fine");
    assert!(empty.iocs.is_empty() && empty.skipped.is_empty() && empty.cursor.is_none());
    match sync("odd").await {
        Err(SourceError::Malformed { at, .. }) => assert_eq!(at, "/response/Attribute"),
        other => panic!("expected a malformed document, got {other:?}"),
    }
    match sync("html").await {
        Err(SourceError::Malformed { reason, .. }) => assert!(reason.contains("not JSON")),
        other => panic!("expected a malformed document, got {other:?}"),
    }
}

#[tokio::test]
async fn decayed_attributes_are_reported_and_paging_stays_whole() {
    let Some((misp, base)) = start().await else {
        return;
    };
    let client = MispClient::new(&base, KEY, &HttpSettings::default()).expect("client");
    let query = AttributeQuery {
        page_size: 5,
        skip_decayed: true,
        ..AttributeQuery::default()
    };
    assert_eq!(query.body(1)["includeDecayScore"], 1);
    let batch = client.attributes(&query).await.expect("sync");
    // Every page was read (MISP's excludeDecayed would have shortened them).
    assert_eq!(misp.pages.lock().expect("lock").len(), 3);
    assert!(batch.iocs.iter().all(|i| i.kind != IocKind::Md5));
    let md5 = batch
        .skipped
        .iter()
        .find(|s| s.object == "57c4448b-454c-4d17-90d1-4d2f950d210f")
        .expect("the decayed md5 is reported");
    assert!(
        md5.reason.starts_with("decayed (score 12.5"),
        "{}",
        md5.reason
    );
    let sha256 = batch
        .iocs
        .iter()
        .find(|i| i.kind == IocKind::Sha256)
        .expect("sha256");
    assert_eq!(sha256.confidence, Some(80));
    assert_eq!(batch.iocs.len(), 5);
    assert_eq!(batch.cursor.as_deref(), Some("1472547599"));
}
