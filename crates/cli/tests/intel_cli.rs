//! `dozor intel …` as the real binary against a real `dozor server` on 127.0.0.1 (temporary
//! data directory): add indicators by hand, find them, import a STIX bundle (one indicator
//! reported as unsupported, the other stored), export a STIX bundle and a MISP feed
//! directory, then use that directory as a `misp_feed` source below the server's feeds
//! directory: `intel sources` lists it, `intel sync` syncs it and prints the report. And the
//! errors: the server's problem detail for an unknown source or kind.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::{Ctx, fetch_ca, field, start_server};

const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

#[test]
fn intel_commands_against_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let server = start_server(&data, &rules, &[]);
    let ca = fetch_ca(&server.url, dir.path());
    let ctx = Ctx {
        server: &server,
        ca,
        home: dir.path().to_owned(),
    };

    // add → search finds it.
    let out = ctx.ok(&[
        "intel",
        "add",
        "domain",
        "C2.Evil-Example.net",
        "--tag",
        "tlp:green",
        "--tag",
        "apt-x",
        "--expires",
        "30d",
        "--confidence",
        "80",
        "--comment",
        "from the IR ticket",
    ]);
    assert!(out.stdout.contains("c2.evil-example.net"), "{}", out.stdout);
    assert!(out.stdout.contains("manual"), "{}", out.stdout);
    ctx.ok(&["intel", "add", "sha256", SHA256, "--no-alert"]);
    let out = ctx.ok(&["intel", "search", "evil-example"]);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert!(
        rows[0].contains("domain") && rows[0].contains("apt-x, tlp:green"),
        "{}",
        rows[0]
    );
    let out = ctx.ok(&["intel", "search", "--kind", "sha256", "--active", "--json"]);
    let page: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(page["iocs"][0]["value"], SHA256);
    assert_eq!(page["iocs"][0]["to_ids"], false);
    let out = ctx.ok(&["intel", "search", "nothing-like-this"]);
    assert!(out.stderr.contains("no indicators match"), "{}", out.stderr);

    // import a STIX bundle: one indicator stored, one (MATCHES) reported.
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": [
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--00000000-0000-4000-8000-000000000002",
             "pattern_type": "stix", "pattern": "[ipv4-addr:value = '198.51.100.23']",
             "valid_from": "2026-01-01T00:00:00Z"},
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--00000000-0000-4000-8000-000000000003",
             "pattern_type": "stix", "pattern": "[file:name MATCHES '^evil']",
             "valid_from": "2026-01-01T00:00:00Z"}]})
        .to_string(),
    )
    .expect("write bundle");
    let out = ctx.ok(&[
        "intel",
        "import",
        bundle.to_str().unwrap(),
        "--source",
        "ticket-42",
    ]);
    assert_eq!(field(&out.stdout, "format"), Some("stix"), "{}", out.stdout);
    assert_eq!(field(&out.stdout, "source"), Some("ticket-42"));
    assert_eq!(field(&out.stdout, "added"), Some("1"));
    assert_eq!(field(&out.stdout, "skipped"), Some("1"));
    assert_eq!(field(&out.stdout, "status"), Some("partial"));
    assert!(
        out.stdout
            .contains("indicator--00000000-0000-4000-8000-000000000003: ")
            && out.stdout.contains("only `=` comparisons are supported"),
        "{}",
        out.stdout
    );
    // A shared STIX example, sniffed (`--format auto`), as JSON.
    if let Some(shared) = std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")))
        .map(|d| d.join("intel/stix2-examples/examples/indicator-for-c2-ip-address.json"))
        .filter(|p| p.is_file())
    {
        let out = ctx.ok(&["intel", "import", shared.to_str().unwrap(), "--json"]);
        let r: Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(
            (r["source"].as_str(), r["format"].as_str()),
            (Some("import"), Some("stix"))
        );
        assert_eq!(r["added"], 1);
    }
    let out = ctx.run(&[
        "intel",
        "import",
        bundle.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(out.code, 0, "a bundle read as CSV: every line reported");
    assert_eq!(field(&out.stdout, "added"), Some("0"), "{}", out.stdout);

    // export stix: a file with the indicators.
    let exported = dir.path().join("export.stix.json");
    let out = ctx.ok(&[
        "intel",
        "export",
        "--format",
        "stix",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(out.stderr.contains("wrote "), "{}", out.stderr);
    let doc = read_json(&exported);
    assert_eq!(doc["type"], "bundle");
    let patterns: Vec<&str> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["pattern"].as_str())
        .collect();
    assert!(
        patterns.contains(&"[domain-name:value = 'c2.evil-example.net']"),
        "{patterns:?}"
    );
    assert!(
        patterns.contains(&"[ipv4-addr:value = '198.51.100.23']"),
        "{patterns:?}"
    );
    let out = ctx.ok(&["intel", "export", "--format", "stix", "--kind", "sha256"]);
    let doc: Value = serde_json::from_str(&out.stdout).expect("bundle on stdout");
    assert_eq!(
        doc["objects"].as_array().unwrap().len(),
        2,
        "identity + the hash"
    );

    // export misp-feed: a directory MISP (or another Dozor) reads as a local feed — written
    // straight below the server's feeds directory.
    let feed = data.join("intel-feeds/peer");
    let out = ctx.ok(&[
        "intel",
        "export",
        "--format",
        "misp-feed",
        "--out",
        feed.to_str().unwrap(),
    ]);
    assert!(
        out.stderr.contains("1 event(s) with 2 attribute(s)"),
        "{}",
        out.stderr
    );
    let manifest = read_json(&feed.join("manifest.json"));
    let uuid = manifest.as_object().unwrap().keys().next().unwrap().clone();
    let event = read_json(&feed.join(format!("{uuid}.json")));
    let values: Vec<&str> = event["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["value"].as_str())
        .collect();
    assert_eq!(values.len(), 2, "the manual indicators: {values:?}");
    assert!(values.contains(&"c2.evil-example.net") && values.contains(&SHA256));
    let hashes = std::fs::read_to_string(feed.join("hashes.csv")).unwrap();
    assert_eq!(hashes.lines().count(), 2);
    assert!(!feed.join("manifest.json.tmp").exists());

    // sources / sync of that feed.
    let out = ctx.ok(&["intel", "sources"]);
    assert!(
        out.stderr.contains("no intelligence sources"),
        "{}",
        out.stderr
    );
    ctx.put(
        "/api/v1/intel/sources/peer",
        &json!({"spec": {"kind": "misp_feed", "location": "peer"}, "interval_secs": 0}),
    );
    let out = ctx.ok(&["intel", "sources"]);
    let row = out.stdout.lines().nth(1).expect("a row");
    for cell in ["peer", "misp_feed", "yes", "manual", "never"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let out = ctx.ok(&["intel", "sync", "peer"]);
    assert_eq!(field(&out.stdout, "status"), Some("ok"), "{}", out.stdout);
    assert_eq!(field(&out.stdout, "added"), Some("0"));
    assert_eq!(
        field(&out.stdout, "updated"),
        Some("2"),
        "the same indicators, a new source"
    );
    let out = ctx.ok(&["intel", "sources"]);
    let row = out.stdout.lines().nth(1).expect("a row");
    assert!(row.contains(" ok ") && !row.contains("never"), "{row}");
    let out = ctx.ok(&["intel", "search", "--source", "peer", "--format", "json"]);
    let page: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(page["iocs"].as_array().unwrap().len(), 2);

    // Errors: the server's problem, exit code 2.
    let out = ctx.run(&["intel", "sync", "no-such-source"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("intelligence source no-such-source"),
        "{}",
        out.stderr
    );
    let out = ctx.run(&["intel", "add", "colour", "red"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown kind \"colour\""),
        "{}",
        out.stderr
    );
    let out = ctx.run(&["intel", "add", "domain", "x.example", "--expires", "soon"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--expires"), "{}", out.stderr);
    let out = ctx.run(&["intel", "import", "/no/such/file"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/no/such/file"), "{}", out.stderr);
}
