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
