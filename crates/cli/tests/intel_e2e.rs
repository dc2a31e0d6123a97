//! Threat intelligence end to end (issue 14), with the real `dozor server` binary on
//! 127.0.0.1 and the MISP warninglists from `../shared`: a MISP feed in a directory (as an
//! air-gapped site copies it) gives a domain, an IP, a public resolver and a broken attribute.
//! - an event sent **before** the sync is found by the sync's retro-hunt and alerted;
//! - an event sent **after** it is matched by the pipeline: enriched with `threat.*`, alerted
//!   with the rule `dozor-intel/<source>/<kind>`;
//! - the resolver (8.8.8.8, on the `public-dns-v4` warninglist) is flagged and matched but
//!   not alerted on;
//! - the broken attribute is skipped and reported while the rest imports.
//!
//! MISP itself can't run here: the feed is written by the test in MISP's feed format.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, fetch_ca, ingest, start_server};
use serde_json::{Value, json};

const EVENT_UUID: &str = "5f6b3c2a-1d4e-4b8f-9a7c-2e1d0c9b8a71";

fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    dir.join("intel/misp-warninglists/lists")
        .is_dir()
        .then_some(dir)
}

/// A MISP feed directory: one event with four attributes (one broken).
fn write_feed(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let attribute = |uuid: &str, ty: &str, value: &str| {
        json!({"uuid": uuid, "type": ty, "category": "Network activity", "value": value,
               "to_ids": true, "timestamp": "1764900000", "deleted": false})
    };
    let event = json!({"Event": {
        "uuid": EVENT_UUID, "info": "E2E campaign", "timestamp": "1764900000",
        "published": true, "Tag": [{"name": "tlp:green"}],
        "Attribute": [
            attribute("a1f0c3e2-0000-4000-8000-000000000001", "domain", "c2.evil-example.net"),
            attribute("a1f0c3e2-0000-4000-8000-000000000002", "ip-dst", "5.188.206.14"),
            attribute("a1f0c3e2-0000-4000-8000-000000000003", "ip-dst", "8.8.8.8"),
            attribute("a1f0c3e2-0000-4000-8000-000000000004", "ip-dst", "999.1.2.3"),
        ],
    }});
    std::fs::write(dir.join(format!("{EVENT_UUID}.json")), event.to_string()).unwrap();
    let manifest = json!({EVENT_UUID: {"info": "E2E campaign", "timestamp": 1764900000}});
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

struct Api<'a> {
    server: &'a Server,
    ca: PathBuf,
}

impl Api<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(&self.ca)
            .args(["-X", method, "-H"])
            .arg(format!("Authorization: Bearer {}", self.server.token));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let out = cmd
            .arg(format!("{}{path}", self.server.url))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (
            code.trim().parse().unwrap_or(0),
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }

    fn get(&self, path: &str) -> Value {
        let (code, body) = self.call("GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn event(n: u64, fields: Value) -> String {
    let mut doc = json!({
        "@timestamp": dozor_now(),
        "event": {"id": format!("01900000-0000-7000-8000-{n:012}"), "kind": "event",
                  "category": ["network"]},
        "host": {"name": "ws-17"},
    });
    if let (Some(d), Some(f)) = (doc.as_object_mut(), fields.as_object()) {
        d.extend(f.clone());
    }
    doc.to_string()
}

/// Now as RFC 3339 (the events are fresh: the retro-hunt looks back 30 days).
fn dozor_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.000Z"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn alerts_of(api: &Api, rule: &str) -> Vec<Value> {
    api.get("/api/v1/alerts?limit=100")["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["rule_id"] == rule)
        .collect()
}

#[test]
fn feed_sync_retro_hunt_live_match_and_warninglist() {
    let Some(shared) = shared_dir() else {
        println!("SKIP: ../shared with intel/misp-warninglists not found (set DOZOR_SHARED_DIR)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let feed = dir.path().join("feed");
    write_feed(&feed);
    let lists = shared.join("intel/misp-warninglists");
    let server = start_server(
        &data,
        &rules,
        &[
            ("DOZOR_INTEL_WARNINGLISTS_DIR", lists.to_str().unwrap()),
            ("DOZOR_INTEL_REFRESH", "1s"),
            ("DOZOR_INTEL_FEEDS_DIR", dir.path().to_str().unwrap()),
        ],
    );
    let ca = fetch_ca(&server.url, dir.path());
    let api = Api {
        server: &server,
        ca: ca.clone(),
    };

    // 1. Before the intelligence arrives: a lookup of the C2 domain.
    ingest(
        &server,
        &ca,
        &[event(
            1,
            json!({"dns": {"question": {"name": "www.c2.evil-example.net"}}}),
        )],
    );
    wait_for("the first event stored", || {
        let page = api.get("/api/v1/events?limit=10");
        (page["events"].as_array().is_some_and(|e| e.len() == 1)).then_some(())
    });
    assert!(alerts_of(&api, "dozor-intel/e2e-feed/domain").is_empty());

    // 2. The feed as a source, synced now. A file outside `intel.feeds_dir` is refused.
    let (code, body) = api.call(
        "PUT",
        "/api/v1/intel/sources/sneaky",
        Some(&json!({"spec": {"kind": "freetext", "location": "/etc/passwd"}})),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("intel.feeds_dir")),
        "{body}"
    );
    let (code, body) = api.call(
        "PUT",
        "/api/v1/intel/sources/e2e-feed",
        Some(
            &json!({"spec": {"kind": "misp_feed", "location": feed.to_str().unwrap()},
                     "interval_secs": 0}),
        ),
    );
    assert_eq!(code, 200, "{body}");
    let started = Instant::now();
    let (code, status) = api.call("POST", "/api/v1/intel/sources/e2e-feed/sync", None);
    assert_eq!(code, 200, "{status}");
    println!("sync took {:?}: {status}", started.elapsed());
    assert_eq!(status["status"], "partial", "{status}");
    assert_eq!(status["added"], 3, "{status}");
    assert_eq!(status["skipped"], 1, "{status}");
    assert!(
        status["skipped_examples"][0]
            .as_str()
            .is_some_and(|s| s.contains("a1f0c3e2-0000-4000-8000-000000000004")),
        "the broken attribute is reported by its uuid: {status}"
    );
    assert_eq!(status["warninglisted"], 1, "{status}");
    assert_eq!(status["retro_matches"], 1, "{status}");
    let sources = api.get("/api/v1/intel/sources");
    assert_eq!(sources["sources"][0]["last_sync"]["added"], 3, "{sources}");

    // The retro-hunt's alert, for the event sent before the sync.
    let retro = wait_for("the retro-hunt alert", || {
        alerts_of(&api, "dozor-intel/e2e-feed/domain").pop()
    });
    assert_eq!(retro["level"], "medium", "{retro}");

    // 3. After: the IP (alerted) and the public resolver (matched, flagged, not alerted).
    // The matcher follows the store within `intel.refresh` (1 s here).
    std::thread::sleep(Duration::from_secs(2));
    ingest(
        &server,
        &ca,
        &[
            event(
                2,
                json!({"destination": {"ip": "5.188.206.14", "port": 443}}),
            ),
            event(3, json!({"destination": {"ip": "8.8.8.8", "port": 53}})),
        ],
    );
    let live = wait_for("the live IP alert", || {
        alerts_of(&api, "dozor-intel/e2e-feed/ip").pop()
    });
    assert_eq!(live["count"], 1, "only the non-warninglisted IP: {live}");
    assert_eq!(
        live["event_ids"],
        json!(["01900000-0000-7000-8000-000000000002"]),
        "{live}"
    );
    let stored = api.get("/api/v1/events/01900000-0000-7000-8000-000000000002");
    let enrichment = &stored["doc"]["threat"]["enrichments"][0];
    assert_eq!(enrichment["indicator"]["ip"], "5.188.206.14", "{stored}");
    assert_eq!(enrichment["matched"]["field"], "destination.ip", "{stored}");
    assert_eq!(enrichment["feed"]["name"], "e2e-feed", "{stored}");
    assert_eq!(
        stored["doc"]["threat"]["indicator"]["marking"]["tlp"],
        "GREEN"
    );

    let matches = wait_for("three matches", || {
        let m = api.get("/api/v1/intel/matches");
        (m["matches"].as_array().is_some_and(|a| a.len() == 3)).then_some(m)
    });
    let by_value = |v: &str| {
        matches["matches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["value"] == v)
            .cloned()
            .unwrap_or_else(|| panic!("no match of {v}: {matches}"))
    };
    assert_eq!(by_value("c2.evil-example.net")["retro"], true);
    assert_eq!(by_value("5.188.206.14")["alerted"], true);
    let resolver = by_value("8.8.8.8");
    assert_eq!(resolver["alerted"], false, "{resolver}");
    let iocs = api.get("/api/v1/intel/iocs?kind=ip");
    let flagged = iocs["iocs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == "8.8.8.8")
        .cloned()
        .expect("8.8.8.8 stored");
    assert!(
        flagged["warninglists"].as_array().is_some_and(|w| w
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("DNS")))),
        "{flagged}"
    );
    assert_eq!(flagged["sightings"], 1, "{flagged}");
    assert_eq!(
        flagged["sources"][0]["object_ids"][0],
        format!("misp-event:{EVENT_UUID}")
    );
}

/// MISP's REST API as far as Dozor uses it (`attributes/restSearch` with paging and the
/// `Authorization` key, `sightings/add[/uuid]`), answering with the recorded PyMISP event in
/// `../shared/fixtures/misp` plus one broken attribute. MISP itself can't run here.
struct MispServer {
    url: String,
    /// (page, limit) of every search.
    pages: std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
    /// (path, body) of every sighting taken.
    sightings: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Sighting requests answered `503` (the first one is: MISP busy).
    busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

const MISP_KEY: &str = "e2e-misp-key-0123456789abcdef0123456789";
const BROKEN_UUID: &str = "b0b0b0b0-0000-4000-8000-00000000dead";

fn misp_server(shared: &Path) -> MispServer {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    let recorded: Value = serde_json::from_slice(
        &std::fs::read(shared.join("fixtures/misp/57c4445b-c548-4654-af0b-4be3950d210f.json"))
            .expect("recorded MISP event"),
    )
    .expect("JSON");
    let event = &recorded["Event"];
    let mut attributes: Vec<Value> = event["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a["Event"] = json!({"uuid": event["uuid"], "info": event["info"]});
            a["Tag"] = event["Tag"].clone();
            a
        })
        .collect();
    attributes.insert(
        2,
        json!({"uuid": BROKEN_UUID, "type": "ip-dst", "value": "999.1.2.3", "to_ids": true,
               "timestamp": "1465000000", "category": "Network activity",
               "Event": {"uuid": event["uuid"]}}),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let pages = Arc::new(Mutex::new(Vec::new()));
    let sightings = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, s, r, b) = (
        pages.clone(),
        sightings.clone(),
        refused.clone(),
        busy.clone(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (mut length, mut key) = (0usize, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or(("", ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => key = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, answer) = if key != MISP_KEY {
                r.fetch_add(1, Ordering::SeqCst);
                (
                    "403 Forbidden",
                    json!({"name": "Authentication failed.", "message": "Authentication failed."}),
                )
            } else if path == "/attributes/restSearch" {
                let page = body["page"].as_u64().unwrap_or(1).max(1);
                let limit = body["limit"].as_u64().unwrap_or(1000).max(1);
                p.lock().unwrap().push((page, limit));
                let items: Vec<Value> = attributes
                    .iter()
                    .skip(((page - 1) * limit) as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect();
                ("200 OK", json!({"response": {"Attribute": items}}))
            } else if path.starts_with("/sightings/add") && b.fetch_add(1, Ordering::SeqCst) == 0 {
                (
                    "503 Service Unavailable",
                    json!({"message": "The server is busy, try again later."}),
                )
            } else if path.starts_with("/sightings/add") {
                s.lock().unwrap().push((path, body));
                (
                    "200 OK",
                    json!({"message": "1 sighting successfully added."}),
                )
            } else {
                ("404 Not Found", json!({"message": "not found"}))
            };
            let text = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    MispServer {
        url,
        pages,
        sightings,
        refused,
        busy,
    }
}

/// A MISP server as a source: a wrong key is a clear sync error; with the right one the
/// attributes page in (the broken one reported), a file whose hash MISP knows is alerted, and
/// the sighting goes back to MISP for that very attribute — after MISP refused the first
/// sighting (busy), on the retry.
#[test]
fn misp_rest_sync_match_and_sighting_back() {
    use std::sync::atomic::Ordering;
    let Some(shared) = shared_dir().filter(|d| d.join("fixtures/misp").is_dir()) else {
        println!("SKIP: ../shared with fixtures/misp not found (set DOZOR_SHARED_DIR)");
        return;
    };
    let misp = misp_server(&shared);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let server = start_server(
        &data,
        &rules,
        &[
            ("DOZOR_INTEL_REFRESH", "1s"),
            ("DOZOR_INTEL_SIGHTING_RETRY", "3s"),
        ],
    );
    let ca = fetch_ca(&server.url, dir.path());
    let api = Api {
        server: &server,
        ca: ca.clone(),
    };
    let spec = |key: &str| {
        json!({"spec": {"kind": "misp_rest", "url": misp.url, "key": key, "page_size": 4},
               "interval_secs": 0})
    };

    // A wrong key: the sync fails with MISP's refusal, and the status says so.
    let (code, body) = api.call("PUT", "/api/v1/intel/sources/misp", Some(&spec("wrong")));
    assert_eq!(code, 200, "{body}");
    let (_, status) = api.call("POST", "/api/v1/intel/sources/misp/sync", None);
    assert_eq!(status["status"], "failed", "{status}");
    assert!(misp.refused.load(Ordering::SeqCst) >= 1);
    let listed = api.get("/api/v1/intel/sources");
    assert_eq!(listed["sources"][0]["last_sync"]["status"], "failed");
    assert!(
        listed.to_string().contains("403") || listed.to_string().contains("uthentication"),
        "the error names the refusal: {listed}"
    );
    assert!(
        !listed.to_string().contains("wrong"),
        "the key is never shown: {listed}"
    );

    // The right key: 10 attributes at 4 a page. The broken one is reported by its uuid; the
    // four that are no indicators (links, a comment, a text) are counted as ignored.
    let (code, body) = api.call("PUT", "/api/v1/intel/sources/misp", Some(&spec(MISP_KEY)));
    assert_eq!(code, 200, "{body}");
    let (code, status) = api.call("POST", "/api/v1/intel/sources/misp/sync", None);
    assert_eq!(code, 200, "{status}");
    assert_eq!(
        *misp.pages.lock().unwrap(),
        vec![(1, 4), (2, 4), (3, 4)],
        "pages until a short one"
    );
    assert_eq!(status["skipped"], 1, "{status}");
    assert_eq!(status["ignored"], 4, "{status}");
    assert_eq!(
        status["status"], "partial",
        "the broken attribute: {status}"
    );
    assert!(
        status
            .to_string()
            .contains(&format!("{BROKEN_UUID}: invalid ip")),
        "the broken attribute is named: {status}"
    );
    assert_eq!(
        status["added"], 5,
        "filename, md5, sha1, sha256, registry value: {status}"
    );

    // A file with the sample's SHA-256 appears on a host.
    std::thread::sleep(Duration::from_secs(2));
    let sha256 = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68";
    ingest(
        &server,
        &ca,
        &[event(
            7,
            json!({"event": {"id": "01900000-0000-7000-8000-000000000007", "kind": "event",
                              "category": ["file"]},
                   "file": {"path": "C:\\Users\\a\\3Z4wnG9603it23y.exe",
                            "hash": {"sha256": sha256}}}),
        )],
    );
    let alert = wait_for("the hash alert", || {
        alerts_of(&api, "dozor-intel/misp/sha256").pop()
    });
    assert_eq!(alert["count"], 1, "{alert}");

    // The sightings reach MISP, each for the attribute its indicator came from: the hash and
    // the file name (the path's last part) both matched. MISP refused the first one (busy):
    // it was marked failed and sent again on the retry (every 3 s here), none lost.
    let sightings = wait_for("both sightings at MISP", || {
        let got = misp.sightings.lock().unwrap().clone();
        (got.len() >= 2).then_some(got)
    });
    assert!(
        misp.busy.load(Ordering::SeqCst) >= 3,
        "one refused, two taken"
    );
    let mut paths: Vec<&str> = sightings.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/sightings/add/57c4448a-fb04-457d-87e7-4127950d210f",
            "/sightings/add/57c4448b-3fa4-4d65-9ccc-4afa950d210f"
        ],
        "{sightings:?}"
    );
    assert!(sightings.iter().all(|(_, b)| b["source"] == "dozor"));
    let (code, metrics) = api.call("GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("dozor_pipeline_intel_matches_total 2\n")),
        "the hash and the file name: {metrics}"
    );
    let ioc = api.get(&format!("/api/v1/intel/iocs?kind=sha256&q={sha256}"));
    assert_eq!(ioc["iocs"][0]["sightings"], 1, "{ioc}");
}
