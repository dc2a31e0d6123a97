//! `dozor anomaly train | score | serve` as the real binary: the models learn ten days of a
//! host's routine from NDJSON, find a never-seen process and an off-hours logon, say nothing
//! about the routine, skip bad lines with their place, and answer over HTTP with a token.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DAY: i64 = 86_400;
/// Monday 2026-01-05 00:00 UTC.
const START: i64 = 1_767_571_200;

fn at(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn process(t: i64, host: &str, name: &str, parent: &str) -> Value {
    json!({"@timestamp": at(t), "host": {"name": host},
           "event": {"category": ["process"], "type": ["start"]},
           "process": {"executable": format!("C:\\Windows\\System32\\{name}"),
                       "parent": {"executable": format!("C:\\Windows\\{parent}")}}})
}

fn logon(t: i64, host: &str, user: &str) -> Value {
    json!({"@timestamp": at(t), "host": {"name": host},
           "event": {"category": ["authentication"], "outcome": "success", "code": "4624"},
           "user": {"name": user}, "source": {"ip": "10.0.0.5"}})
}

/// Ten working days: each hour 9-17 three routine processes; logons at 9 and 13 each day.
fn routine() -> Vec<Value> {
    let mut out = Vec::new();
    for day in 0..10 {
        let base = START + day * DAY;
        out.push(logon(base + 9 * 3600, "ws-1", "ivan"));
        out.push(logon(base + 13 * 3600, "ws-1", "ivan"));
        for hour in 9..18 {
            for (i, p) in ["svchost.exe", "chrome.exe", "outlook.exe"]
                .iter()
                .enumerate()
            {
                out.push(process(
                    base + hour * 3600 + i as i64 * 60,
                    "ws-1",
                    p,
                    "explorer.exe",
                ));
            }
        }
    }
    out
}

fn write_ndjson(path: &Path, events: &[Value], extra: &str) {
    let mut f = std::fs::File::create(path).unwrap();
    for e in events {
        writeln!(f, "{e}").unwrap();
    }
    f.write_all(extra.as_bytes()).unwrap();
}

fn dozor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args(args)
        .env_remove("DOZOR_ANOMALY_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run dozor")
}

#[test]
fn train_score_and_serve_the_anomaly_models() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.ndjson");
    write_ndjson(
        &train,
        &routine(),
        "not json\n{\"host\": {\"name\": \"x\"}}\n",
    );
    let model = dir.path().join("models.dam");
    let out = dozor(&[
        "anomaly",
        "train",
        "--events",
        train.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("train.ndjson:291: skipped: not JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("train.ndjson:292: skipped: no RFC 3339"),
        "{stderr}"
    );
    assert!(stderr.contains("trained on 290 events"), "{stderr}");
    assert!(std::fs::read(&model).unwrap().starts_with(b"DOZORAML"));

    // The routine of day 11: nothing to say (exit 0).
    let day = START + 10 * DAY;
    let same = dir.path().join("same.ndjson");
    write_ndjson(
        &same,
        &[
            process(day + 10 * 3600, "ws-1", "chrome.exe", "explorer.exe"),
            logon(day + 9 * 3600 + 60, "ws-1", "ivan"),
        ],
        "",
    );
    let out = dozor(&[
        "anomaly",
        "score",
        "--model",
        model.to_str().unwrap(),
        "--events",
        same.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A new process and a logon at 3 am: findings (exit 1), each explained.
    let odd = dir.path().join("odd.ndjson");
    write_ndjson(
        &odd,
        &[
            process(day + 11 * 3600, "ws-1", "mimikatz.exe", "cmd.exe"),
            logon(day + 3 * 3600, "ws-1", "ivan"),
        ],
        "",
    );
    let out = dozor(&[
        "anomaly",
        "score",
        "--model",
        model.to_str().unwrap(),
        "--events",
        odd.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = findings.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"rare_process"), "{findings:?}");
    assert!(kinds.contains(&"unusual_logon_hour"), "{findings:?}");
    let rare = findings
        .iter()
        .find(|f| f["kind"] == "rare_process")
        .unwrap();
    assert_eq!(rare["entity"], "ws-1");
    assert!(
        rare["message"].as_str().unwrap().contains("mimikatz.exe"),
        "{rare}"
    );

    // A corrupt model file is refused with what is wrong.
    let bad = dir.path().join("bad.dam");
    std::fs::write(&bad, b"hello").unwrap();
    let out = dozor(&[
        "anomaly",
        "score",
        "--model",
        bad.to_str().unwrap(),
        "--events",
        odd.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOZORAML"));

    // Served: the token is required; events in, findings with explanations out.
    let out = dozor(&[
        "anomaly",
        "serve",
        "--model",
        model.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
    let token = "test-token-0123456789abcdef";
    let mut child = Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args([
            "anomaly",
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("DOZOR_ANOMALY_TOKEN", token)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        let line = lines
            .next()
            .expect("the service says where it listens")
            .unwrap();
        if let Some(url) = line
            .split(" on ")
            .nth(1)
            .filter(|_| line.starts_with("serving"))
        {
            break url.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "{line}");
    };
    let agent = ureq::Agent::new_with_defaults();
    let refused = agent
        .get(format!("{base}/api/v1/anomaly/models"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(refused.status(), 401);
    let mut models = agent
        .get(format!("{base}/api/v1/anomaly/models"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let models: Value = serde_json::from_str(&models.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(models["events"], 290, "{models}");
    assert!(
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "rare_process" && m["entities"] == 1)
    );
    let body = json!({"events": [process(day + 12 * 3600, "ws-1", "psexec.exe", "cmd.exe"), {"host": {"name": "x"}}]});
    let mut answer = agent
        .post(format!("{base}/api/v1/anomaly/score"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let answer: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(answer["scored"], 1, "{answer}");
    assert_eq!(answer["skipped"][0]["index"], 1, "{answer}");
    assert_eq!(answer["findings"][0]["index"], 0, "{answer}");
    assert_eq!(
        answer["findings"][0]["finding"]["kind"], "rare_process",
        "{answer}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
