//! TAXII 2.1 client against an in-test TAXII 2.1 server (no TAXII server can run here). The
//! server answers discovery, the API root's collections and a collection's objects — the
//! objects of `../shared/intel/stix2-examples/examples/threat-reports/poisonivy.json`, one
//! second apart in `date_added` — with `added_after`, `limit` and `next` paging, the
//! `X-TAXII-Date-Added-Last` header, basic auth, and 406 without the TAXII media type.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dozor_intel_sources::taxii::{TAXII_MEDIA_TYPE, TaxiiAuth, TaxiiClient};
use dozor_intel_sources::{HttpSettings, SourceError};
use serde_json::{Value, json};

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
// "dozor:s3cret" in base64.
const BASIC: &str = "Basic ZG96b3I6czNjcmV0";

struct Taxii {
    /// (date_added, object)
    objects: Vec<(String, Value)>,
    /// Query strings of the objects requests.
    requests: Mutex<Vec<HashMap<String, String>>>,
    /// Page by `next` (true) or only by moving `added_after` (false).
    use_next: bool,
}

fn date_added(i: usize) -> String {
    format!("2024-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60)
}

/// The rejection of a request without the right credentials or media type.
fn check(headers: &HeaderMap) -> Option<Response> {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(BASIC)
    {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"title": "Unauthorized", "description": "bad credentials"})),
            )
                .into_response(),
        );
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !accept.contains("application/taxii+json") || !accept.contains("version=2.1") {
        return Some((StatusCode::NOT_ACCEPTABLE, "taxii+json;version=2.1 only").into_response());
    }
    None
}

fn taxii_json(v: Value) -> Response {
    ([(header::CONTENT_TYPE, TAXII_MEDIA_TYPE)], v.to_string()).into_response()
}

async fn discovery(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    taxii_json(json!({"title": "test TAXII", "default": "/api1/", "api_roots": ["/api1/"]}))
}

async fn collections(headers: HeaderMap) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    taxii_json(json!({"collections": [
        {"id": COLLECTION, "title": "Poison Ivy", "can_read": true, "can_write": false,
         "media_types": ["application/stix+json;version=2.1"]}
    ]}))
}

async fn objects_page(
    State(t): State<Arc<Taxii>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check(&headers) {
        return r;
    }
    if id != COLLECTION {
        return (StatusCode::NOT_FOUND, "no such collection").into_response();
    }
    t.requests.lock().expect("lock").push(q.clone());
    let after = q.get("added_after").cloned().unwrap_or_default();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(1000);
    let start: usize = q.get("next").and_then(|n| n.parse().ok()).unwrap_or(0);
    let matching: Vec<&(String, Value)> = t
        .objects
        .iter()
        .filter(|(added, _)| added.as_str() > after.as_str())
        .collect();
    let page: Vec<&(String, Value)> = matching.iter().skip(start).take(limit).copied().collect();
    let more = start + page.len() < matching.len();
    let mut body =
        json!({"more": more, "objects": page.iter().map(|(_, o)| o).collect::<Vec<_>>()});
    if more && t.use_next {
        body["next"] = (start + page.len()).to_string().into();
    }
    let mut response = taxii_json(body);
    if let Some((last, _)) = page.last() {
        response.headers_mut().insert(
            "X-TAXII-Date-Added-Last",
            last.parse().expect("header value"),
        );
    }
    response
}

async fn start(use_next: bool) -> Option<(Arc<Taxii>, String)> {
    let file = common::shared("intel/stix2-examples/examples/threat-reports/poisonivy.json")?;
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(file).expect("read")).expect("bundle JSON");
    let objects = bundle["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .enumerate()
        .map(|(i, o)| (date_added(i), o.clone()))
        .collect();
    let taxii = Arc::new(Taxii {
        objects,
        requests: Mutex::new(Vec::new()),
        use_next,
    });
    let app = Router::new()
        .route("/taxii2/", get(discovery))
        .route("/api1/collections/", get(collections))
        .route("/api1/collections/{id}/objects/", get(objects_page))
        .with_state(taxii.clone());
    let addr = common::serve(app).await;
    Some((taxii, format!("http://{addr}")))
}

fn client() -> TaxiiClient {
    TaxiiClient::new(
        &HttpSettings::default(),
        TaxiiAuth::Basic {
            user: "dozor".into(),
            password: "s3cret".into(),
        },
        "taxii-test",
    )
    .expect("client")
}

#[tokio::test]
async fn discovery_collections_and_paged_objects() {
    let Some((taxii, base)) = start(true).await else {
        return;
    };
    let mut client = client();
    let discovery = client
        .discovery(&format!("{base}/taxii2"))
        .await
        .expect("discovery");
    assert_eq!(discovery.title, "test TAXII");
    let root = discovery.default.clone().expect("default root");
    assert_eq!(root, format!("{base}/api1/"));
    assert_eq!(discovery.api_roots, vec![root.clone()]);

    let collections = client.collections(&root).await.expect("collections");
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].id, COLLECTION);
    assert!(collections[0].can_read);

    client.page_size = Some(20);
    let batch = client
        .objects(&root, COLLECTION, None)
        .await
        .expect("objects");
    let total = taxii.objects.len();
    let pages = total.div_ceil(20);
    let requests = taxii.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), pages, "{requests:?}");
    assert!(requests.iter().all(|q| !q.contains_key("added_after")));
    assert_eq!(requests[1].get("next").map(String::as_str), Some("20"));

    // The same as reading the bundle: 25 indicators → 66 IOCs, 1 reported.
    assert_eq!(batch.iocs.len(), 66);
    assert_eq!(batch.skipped.len(), 1);
    assert!(batch.iocs.iter().all(|i| i.sources[0].name == "taxii-test"));
    assert_eq!(batch.cursor, Some(date_added(total - 1)));

    // Nothing added since: one request with added_after, nothing new, the cursor stays.
    let again = client
        .objects(&root, COLLECTION, batch.cursor.as_deref())
        .await
        .expect("incremental");
    assert!(again.iocs.is_empty());
    assert_eq!(again.cursor, batch.cursor);
    let last = taxii
        .requests
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("request");
    assert_eq!(last.get("added_after"), batch.cursor.as_ref());
}

#[tokio::test]
async fn paging_by_added_after_when_the_server_sends_no_next() {
    let Some((taxii, base)) = start(false).await else {
        return;
    };
    let mut client = client();
    client.page_size = Some(50);
    let root = format!("{base}/api1");
    let batch = client
        .objects(&root, COLLECTION, Some(&date_added(9)))
        .await
        .expect("objects");
    let requests = taxii.requests.lock().expect("lock").clone();
    let total = taxii.objects.len() - 10;
    assert_eq!(requests.len(), total.div_ceil(50));
    assert_eq!(
        requests[0].get("added_after").map(String::as_str),
        Some(date_added(9).as_str())
    );
    assert_eq!(
        requests[1].get("added_after").map(String::as_str),
        Some(date_added(59).as_str())
    );
    assert_eq!(batch.cursor, Some(date_added(taxii.objects.len() - 1)));
}

#[tokio::test]
async fn wrong_credentials_and_unknown_collections() {
    let Some((_taxii, base)) = start(true).await else {
        return;
    };
    let wrong = TaxiiClient::new(
        &HttpSettings::default(),
        TaxiiAuth::Bearer("nope".into()),
        "x",
    )
    .expect("client");
    match wrong.discovery(&format!("{base}/taxii2/")).await {
        Err(SourceError::Auth {
            status, message, ..
        }) => {
            assert_eq!(status, 401);
            assert_eq!(message, "bad credentials");
        }
        other => panic!("expected an auth error, got {other:?}"),
    }
    let err = client()
        .objects(
            &format!("{base}/api1/"),
            "00000000-0000-4000-8000-000000000000",
            None,
        )
        .await
        .expect_err("404");
    assert!(
        matches!(err, SourceError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert!(matches!(
        client()
            .objects(&format!("{base}/api1/"), "../x", None)
            .await,
        Err(SourceError::Config(_))
    ));
}
