//! `dozor vulns …` as the real binary against a real `dozor server` on 127.0.0.1 (temporary
//! data directory, SQLite), with the OpenVAS reports of ../shared/fixtures/openvas read in
//! place: every fixture imports with exact counts per level; the same report again changes
//! nothing; a later scan of the same host without one finding marks it `fixed`; a truncated
//! report is refused naming where it broke, and nothing is stored; critical/high results raise
//! alerts; export as CSV and JSON; accept a risk (audited). gvmd itself is not packaged here:
//! these are reports it wrote, imported as files.

use std::process::Command;

use serde_json::Value;

mod common;
use common::{Ctx, fetch_ca, shared_dir, start_server};

/// The server's summary and JSON answers, beside the common CLI context.
trait VulnsCtx {
    fn json(&self, args: &[&str]) -> Value;
    fn total(&self) -> u64;
}

impl VulnsCtx for Ctx<'_> {
    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("dozor {args:?}: not JSON ({e}): {}", out.stdout))
    }

    fn total(&self) -> u64 {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&self.ca)
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.server.token))
            .arg(format!("{}/api/v1/vulns/summary", self.server.url))
            .output()
            .expect("curl");
        let v: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
        v["total"].as_u64().expect("total")
    }
}

/// The value of `key` in `key  value` output (the test fails without it).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    common::field(text, key).unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
}

#[test]
fn vulns_import_fix_refuse_alert_export_accept() {
    let Some(shared) = shared_dir() else { return };
    let fixtures = shared.join("fixtures/openvas");
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
    let path = |name: &str| fixtures.join(name).display().to_string();

    // Every fixture, exact counts per level.
    let expected = [
        ("no_vuln.xml", 0, 0, 0, 0),
        ("one_vuln.xml", 1, 1, 0, 0),
        ("report_detail_v2.xml", 1, 1, 0, 0),
        ("many_vuln.xml", 44, 8, 11, 25),
    ];
    for (name, results, critical, high, medium) in expected {
        let out = ctx.ok(&["vulns", "import", &path(name)]);
        let s = &out.stdout;
        assert_eq!(field(s, "results"), results.to_string(), "{name}:\n{s}");
        assert_eq!(field(s, "critical"), critical.to_string(), "{name}");
        assert_eq!(field(s, "high"), high.to_string(), "{name}");
        assert_eq!(field(s, "medium"), medium.to_string(), "{name}");
        assert_eq!(field(s, "new"), results.to_string(), "{name}");
        if name == "many_vuln.xml" {
            // gvmd's default filter hid results: the import says how to fetch them all.
            assert!(out.stderr.contains("min_qod=70"), "{}", out.stderr);
        }
    }
    let stored = ctx.total();
    assert_eq!(stored, 46);

    // The host that is not an IP address is kept as written.
    let page = ctx.json(&[
        "vulns",
        "list",
        "--host",
        "192.168.1.1001",
        "--format",
        "json",
    ]);
    assert_eq!(page["vulns"].as_array().unwrap().len(), 44);

    // The same report again: nothing changes.
    let out = ctx.ok(&["vulns", "import", &path("many_vuln.xml")]);
    assert!(out.stdout.contains("imported before"), "{}", out.stdout);
    assert_eq!(ctx.total(), stored);

    // A later scan of the same host (new report id, later times) without one result.
    let xml = std::fs::read_to_string(fixtures.join("many_vuln.xml")).expect("read fixture");
    let later = xml
        .replace(
            "39f62b85-f870-4ccc-a052-3dc57e315016",
            "39f62b85-0000-4ccc-a052-3dc57e315017",
        )
        .replace("2023-09-26T", "2023-10-26T");
    let first = later.find("<result ").expect("a result");
    let end = later[first..].find("</result>").expect("its end") + first + "</result>".len();
    let later = format!("{}{}", &later[..first], &later[end..]);
    let later_file = dir.path().join("later.xml");
    std::fs::write(&later_file, later).expect("write");
    let out = ctx.ok(&["vulns", "import", later_file.to_str().unwrap()]);
    assert_eq!(field(&out.stdout, "results"), "43", "{}", out.stdout);
    assert_eq!(field(&out.stdout, "fixed"), "1", "{}", out.stdout);
    assert_eq!(field(&out.stdout, "new"), "0", "{}", out.stdout);
    let fixed = ctx.json(&["vulns", "list", "--status", "fixed", "--format", "json"]);
    assert_eq!(fixed["vulns"].as_array().unwrap().len(), 1);

    // A truncated report is refused, naming where it broke; nothing is stored.
    let bytes = std::fs::read(fixtures.join("many_vuln.xml")).expect("read");
    let cut = dir.path().join("truncated.xml");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).expect("write");
    let out = ctx.run(&["vulns", "import", cut.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("nothing was stored"), "{}", out.stderr);
    assert!(
        out.stderr.contains("report/"),
        "names the element: {}",
        out.stderr
    );
    assert_eq!(ctx.total(), stored);

    // Critical and high results raised alerts, one per rule (no agent: folded together).
    let alerts = ctx.json(&["alerts", "list", "--format", "json"]);
    let rules: Vec<&str> = alerts["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["rule_id"].as_str())
        .collect();
    assert!(rules.contains(&"dozor-vuln-critical"), "{rules:?}");
    assert!(rules.contains(&"dozor-vuln-high"), "{rules:?}");
    assert!(!rules.contains(&"dozor-vuln-medium"), "{rules:?}");

    // Export: CSV with a header and one line per result; JSON the same records.
    let csv = ctx.ok(&["vulns", "export", "--format", "csv"]).stdout;
    // Records end with CRLF (RFC 4180); quoted fields may hold bare line feeds.
    let mut records = csv.split("\r\n").filter(|r| !r.is_empty());
    assert!(
        records.next().unwrap().starts_with("id,source,host,"),
        "{csv}"
    );
    assert_eq!(records.count() as u64, stored);
    let json_file = dir.path().join("export.json");
    ctx.ok(&[
        "vulns",
        "export",
        "--format",
        "json",
        "--level",
        "critical",
        "--out",
        json_file.to_str().unwrap(),
    ]);
    let exported: Value =
        serde_json::from_slice(&std::fs::read(&json_file).expect("read export")).expect("JSON");
    assert_eq!(exported.as_array().unwrap().len(), 10);

    // Accept one risk with an expiry; it shows, and the decision is in the audit log.
    let critical = ctx.json(&["vulns", "list", "--level", "critical", "--format", "json"]);
    let id = critical["vulns"][0]["id"].as_i64().expect("id").to_string();
    let out = ctx.ok(&[
        "vulns",
        "accept",
        &id,
        "--reason",
        "legacy host, isolated",
        "--until",
        "30d",
    ]);
    assert_eq!(field(&out.stdout, "status"), "accepted", "{}", out.stdout);
    let shown = ctx.json(&["vulns", "show", &id, "--format", "json"]);
    assert_eq!(shown["status"], "accepted");
    assert_eq!(shown["status_reason"], "legacy host, isolated");
    assert!(shown["status_until"].as_i64().is_some());
    let out = ctx.run(&["vulns", "accept", &id, "--reason", " ", "--until", "30d"]);
    assert_eq!(out.code, 2, "an empty reason is refused: {}", out.stdout);
    let out = ctx.ok(&["vulns", "reopen", &id]);
    assert_eq!(field(&out.stdout, "status"), "open", "{}", out.stdout);
}
