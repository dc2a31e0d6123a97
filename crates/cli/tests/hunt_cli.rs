//! The real `dozor` binary: hunt outputs, correlations, bad input, exit codes, lint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dozor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args(args)
        .output()
        .expect("run dozor")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

const WHOAMI_RULE: &str = "title: Whoami Test
id: 5a1b2c3d-0000-4000-8000-000000000001
status: test
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
";

const CORRELATION: &str = "title: Many Whoami
id: 5a1b2c3d-0000-4000-8000-000000000002
status: test
level: critical
correlation:
    type: event_count
    rules:
        - 5a1b2c3d-0000-4000-8000-000000000001
    group-by:
        - Computer
    timespan: 5m
    condition:
        gte: 3
";

fn sysmon_event(i: u32, computer: &str, image: &str) -> String {
    serde_json::json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": computer,
            "EventRecordID": i,
            "TimeCreated": {"#attributes": {"SystemTime": format!("2026-04-17T05:2{i}:00.000000Z")}},
        },
        "EventData": {"Image": image, "CommandLine": "x"},
    }})
    .to_string()
}

#[test]
fn hunt_jsonl_csv_and_correlations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write(&rules, "whoami.yml", WHOAMI_RULE);
    write(&rules, "many_whoami.yml", CORRELATION);
    let mut lines: Vec<String> = (0..3)
        .map(|i| sysmon_event(i, "pc1", "C:\\Windows\\System32\\whoami.exe"))
        .collect();
    lines.push(sysmon_event(5, "pc2", "C:\\Windows\\System32\\whoami.exe"));
    lines.push(sysmon_event(6, "pc1", "C:\\Windows\\notepad.exe"));
    let input = write(dir.path(), "events.ndjson", &(lines.join("\n") + "\n"));
    let out = dir.path().join("out.jsonl");
    let summary = dir.path().join("summary.json");
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "jsonl",
        "--output",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "detections → exit 1; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let hits: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("read output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    // generate: false (default) → the base rule's matches are not reported on their own.
    assert!(hits.iter().all(|h| h["kind"] == "correlation"), "{hits:#?}");
    assert_eq!(
        hits.len(),
        1,
        "one group (pc1) reaches 3 matches: {hits:#?}"
    );
    assert_eq!(hits[0]["rule"]["title"], "Many Whoami");
    assert_eq!(hits[0]["correlation"]["group"][0][1], "pc1");
    assert_eq!(hits[0]["correlation"]["events"], 3);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    assert_eq!(s["events"], 5);
    assert_eq!(s["correlation_detections"], 1);

    // Without the correlation the base rule reports each match, as CSV.
    std::fs::remove_file(rules.join("many_whoami.yml")).expect("rm");
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "csv",
        "--no-summary",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let csv = String::from_utf8(o.stdout).expect("utf8");
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("timestamp,level,rule,rule_id"), "{csv}");
    assert_eq!(rows.len(), 5, "header + 4 whoami events: {csv}");
    assert!(
        rows[1].contains("Whoami Test") && rows[1].contains("high"),
        "{csv}"
    );

    // Level filter: no rule is critical, which is a usage error that says so.
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--min-level",
        "critical",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--min-level"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Nothing detected → exit 0.
    let quiet = write(
        dir.path(),
        "quiet.ndjson",
        &sysmon_event(1, "pc1", "C:\\Windows\\notepad.exe"),
    );
    let o = dozor(&[
        "hunt",
        quiet.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn bad_records_are_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = write(dir.path(), "whoami.yml", WHOAMI_RULE);
    let text = format!(
        "{}\n{{not json\n{}\n",
        sysmon_event(1, "pc1", "C:\\Windows\\System32\\whoami.exe"),
        sysmon_event(2, "pc1", "C:\\Windows\\System32\\whoami.exe")
    );
    let input = write(dir.path(), "events.ndjson", &text);
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "-f",
        "jsonl",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("events.ndjson") && stderr.contains("line 2"),
        "error says where: {stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "both good records detected"
    );
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--strict",
        "-q",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--strict turns decode errors into exit 2"
    );
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(dir.path(), "e.json", "{}");
    let o = dozor(&[
        "hunt",
        input.to_str().unwrap(),
        "--rules",
        "/nonexistent/rules",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/rules"));
    let rules = write(dir.path(), "r.yml", WHOAMI_RULE);
    let o = dozor(&[
        "hunt",
        "/nonexistent/logs",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/logs"));
}

#[test]
fn lint_reports_every_problem_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.yml", WHOAMI_RULE);
    write(
        dir.path(),
        "bad_modifier.yml",
        "title: Bad\nid: b1\nlogsource: {product: windows}\ndetection:\n    sel:\n        A|frobnicate: x\n    condition: sel\n",
    );
    write(
        dir.path(),
        "bad_condition.yml",
        "title: Bad2\nid: b2\nlogsource: {product: windows}\ndetection:\n    sel:\n        A: x\n    condition: sel and missing\n",
    );
    write(
        dir.path(),
        "cloud.yml",
        "title: Cloud\nid: c1\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n    sel:\n        eventName: x\n    condition: sel\n",
    );
    let o = dozor(&["rules", "lint", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "invalid rules → exit 1");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("INVALID") && out.contains("unknown modifier 'frobnicate'"),
        "{out}"
    );
    assert!(out.contains("unknown search identifier 'missing'"), "{out}");
    assert!(
        out.contains("UNROUTED") && out.contains("product=aws"),
        "{out}"
    );
    let o = dozor(&[
        "rules",
        "lint",
        "--rules",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["rules"].as_array().map(Vec::len), Some(4));
}
