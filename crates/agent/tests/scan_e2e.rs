//! Scanning end to end with real engines: a real clamd (Debian `clamav-daemon`) on a private
//! socket with a signature database this test writes, YARA rules put on the server through its
//! API and run by the agent, a known-bad hash list; the real `dozor server` and `dozor-agent`
//! on 127.0.0.1. Detections travel agent → server → alert; a detected file is uploaded and
//! scanned again by the server; an operator's scan-path command returns its verdicts; clamd
//! stopping turns the agent degraded without stopping the other engines.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use dozor_scan::testing::{TestClamd, eicar, find_clamd, hex};
use serde_json::Value;

const YARA_RULE: &str = r#"
rule e2e_marker : e2e {
    meta:
        severity = "critical"
        description = "the end-to-end test's marker"
    strings:
        $m = "DOZOR-E2E-YARA-MARKER"
    condition:
        $m
}
"#;

fn alert(url: &str, ca: &Path, token: &str, rule: &str) -> Option<Value> {
    let page = api(
        url,
        ca,
        token,
        &format!("/api/v1/alerts?rule={}", encode(rule)),
    );
    page["alerts"].as_array().and_then(|a| a.first().cloned())
}

fn put_rule(url: &str, ca: &Path, token: &str, name: &str, text: &str) -> (u16, String) {
    curl(
        url,
        ca,
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            text,
        ],
        &format!("/api/v1/yara/rules/{name}"),
    )
}

#[test]
fn scanning_end_to_end() {
    let Some(clamd_bin) = find_clamd() else {
        eprintln!(
            "SKIPPED scanning_end_to_end: no clamd binary (install the Debian package \
             clamav-daemon, or set DOZOR_TEST_CLAMD)"
        );
        return;
    };
    let eicar_bytes = eicar();
    let eicar_md5 = dozor_scan::Digests::of_bytes(&eicar_bytes, dozor_scan::DigestSet::ALL)
        .md5
        .expect("md5");
    let mut clamd = TestClamd::start(
        &clamd_bin,
        &[(
            "dozor-e2e.hdb",
            format!(
                "{}:{}:Dozor.E2E.Eicar\n",
                hex(&eicar_md5),
                eicar_bytes.len()
            ),
        )],
        "10M",
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let auth_log = dir.path().join("auth.log");
    std::fs::write(&auth_log, "").unwrap();

    // A copy of /bin/sleep made unique by a trailer (ELF ignores it) and put on the agent's
    // known-bad list: its start must be caught by the process-executable scan.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let evil = bin.join("evil-sleeper");
    let mut evil_bytes = std::fs::read("/bin/sleep").expect("/bin/sleep");
    evil_bytes.extend_from_slice(format!("dozor-e2e-{}", std::process::id()).as_bytes());
    std::fs::write(&evil, &evil_bytes).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let evil_sha = sha256_hex(&evil_bytes);
    let known_bad = dir.path().join("known-bad.txt");
    std::fs::write(&known_bad, format!("# e2e\n{evil_sha} e2e evil sleeper\n")).unwrap();

    let port = free_port();
    let clamd_address = clamd.address_text();
    let env = [
        ("DOZOR_AGENT_HEARTBEAT_INTERVAL", "1s"),
        ("DOZOR_AGENT_DEGRADED_AFTER", "30s"),
        ("DOZOR_AGENT_OFFLINE_AFTER", "120s"),
        ("DOZOR_SCAN_CLAMD", clamd_address.as_str()),
    ];
    let server = start_server(&data, port, &env);
    let admin = server.token.clone().expect("admin token");
    let url = server.url.clone();
    let ca = data.join("pki").join("ca.crt.pem");

    // A rule that does not compile is refused with the line; a good one is taken.
    let (code, body) = put_rule(
        &url,
        &ca,
        &admin,
        "e2e.yar",
        "rule broken {\n condition: nope }\n",
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("line") || body.contains(":2"), "{body}");
    let (code, body) = put_rule(&url, &ca, &admin, "e2e.yar", YARA_RULE);
    assert_eq!(code, 200, "{body}");

    let config = write_config_with(
        dir.path(),
        &watched,
        &auth_log,
        &format!(
            "\n[scan]\nclamd = \"{clamd_address}\"\nknown_bad = [\"{}\"]\nupload_samples = \"detected\"\ncpu_budget_percent = 50\n",
            known_bad.display()
        ),
    );
    let agent_id = enroll_with_new_token(&config, &data, &url, &ca);
    let agent = start_agent(&config, &dir.path().join("agent.log"));
    let agent_log = || std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();

    // The agent runs the server's rules once a heartbeat announced them.
    wait_for(
        "the agent to load the server's YARA rules",
        Duration::from_secs(60),
        || {
            let a = api(&url, &ca, &admin, &format!("/api/v1/agents/{agent_id}"));
            let text = a.to_string();
            (text.contains("\"server_version\"") && !text.contains("\"server_version\":null"))
                .then_some(())
        },
    );

    // 1. ClamAV: EICAR written into a watched directory.
    let eicar_path = watched.join("eicar.com");
    std::fs::write(&eicar_path, &eicar_bytes).unwrap();
    let clam_alert = wait_for("the ClamAV alert", Duration::from_secs(60), || {
        alert(
            &url,
            &ca,
            &admin,
            "dozor-scan/clamav/Dozor.E2E.Eicar.UNOFFICIAL",
        )
    });
    assert_eq!(clam_alert["agent_id"], agent_id, "{clam_alert}");
    assert_eq!(clam_alert["level"], "high", "{clam_alert}");
    let eicar_sha = sha256_hex(&eicar_bytes);
    let ev = wait_for("the ClamAV event", Duration::from_secs(30), || {
        docs(&url, &ca, &admin, &agent_id, "threat.engine:clamav")
            .into_iter()
            .find(|e| e["event"]["provider"] == "dozor-agent")
    });
    assert_eq!(
        ev["file"]["path"],
        eicar_path.to_string_lossy().as_ref(),
        "{ev}"
    );
    assert_eq!(ev["file"]["hash"]["sha256"], eicar_sha, "{ev}");
    assert_eq!(
        ev["threat"]["signature"], "Dozor.E2E.Eicar.UNOFFICIAL",
        "{ev}"
    );
    assert_eq!(ev["threat"]["verdict"], "malicious", "{ev}");
    assert!(
        ev["threat"]["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("ClamAV "),
        "{ev}"
    );
    assert_eq!(ev["agent"]["id"], agent_id, "{ev}");
    assert!(ev["host"]["name"].is_string(), "{ev}");

    // 2. The detected file was uploaded and the server scanned it with its own clamd.
    wait_for("the uploaded sample", Duration::from_secs(60), || {
        let (status, body) = curl(
            &url,
            &ca,
            &["-H", &format!("Authorization: Bearer {admin}")],
            &format!("/api/v1/samples/{eicar_sha}"),
        );
        (status == 200).then_some(body)
    });
    let server_ev = wait_for(
        "the server's verdict on the sample",
        Duration::from_secs(60),
        || {
            docs(&url, &ca, &admin, &agent_id, "threat.engine:clamav")
                .into_iter()
                .find(|e| e["event"]["provider"] == "dozor-server")
        },
    );
    assert_eq!(
        server_ev["dozor"]["scan"]["trigger"], "sample",
        "{server_ev}"
    );
    assert_eq!(
        server_ev["file"]["hash"]["sha256"], eicar_sha,
        "{server_ev}"
    );

    // 3. YARA (the server's managed rule, run on the agent).
    let marked = watched.join("report.txt");
    std::fs::write(&marked, "quarterly numbers ... DOZOR-E2E-YARA-MARKER ...\n").unwrap();
    let yara_alert = wait_for("the YARA alert", Duration::from_secs(60), || {
        alert(&url, &ca, &admin, "dozor-scan/yara/server/e2e.e2e_marker")
    });
    assert_eq!(yara_alert["level"], "critical", "{yara_alert}");
    assert_eq!(yara_alert["agent_id"], agent_id);

    // 4. A known-bad executable started: caught by the process scan.
    let mut child = Command::new(&evil)
        .arg("2")
        .spawn()
        .expect("start the evil sleeper");
    let hash_alert = wait_for("the known-bad hash alert", Duration::from_secs(60), || {
        alert(&url, &ca, &admin, "dozor-scan/hashlist/e2e evil sleeper")
    });
    let _ = child.wait();
    assert_eq!(hash_alert["level"], "critical", "{hash_alert}");
    let ev = wait_for("the hash list event", Duration::from_secs(30), || {
        docs(&url, &ca, &admin, &agent_id, "threat.engine:hashlist")
            .into_iter()
            .next()
    });
    assert_eq!(ev["dozor"]["scan"]["trigger"], "process", "{ev}");
    assert_eq!(ev["process"]["pid"], child.id(), "{ev}");
    assert_eq!(ev["file"]["hash"]["sha256"], evil_sha, "{ev}");

    // 5. An operator's scan-path command over a directory the collectors do not watch.
    let cold = dir.path().join("cold");
    std::fs::create_dir_all(cold.join("deeper")).unwrap();
    std::fs::write(cold.join("deeper").join("old-eicar.bin"), &eicar_bytes).unwrap();
    std::fs::write(cold.join("notes.txt"), "DOZOR-E2E-YARA-MARKER").unwrap();
    std::fs::write(cold.join("clean.txt"), "nothing").unwrap();
    let (code, out, err) = dozor_remote(
        &[
            "agents",
            "scan",
            &agent_id,
            cold.to_str().unwrap(),
            "--wait",
            "120",
        ],
        &url,
        &admin,
        &ca,
    );
    // Exit code 1: the scan finished with detections.
    assert_eq!(code, 1, "agents scan: {out}\n{err}");
    assert!(out.contains("old-eicar.bin"), "{out}");
    assert!(out.contains("notes.txt"), "{out}");
    let commands = api(
        &url,
        &ca,
        &admin,
        &format!("/api/v1/agents/{agent_id}/commands"),
    );
    let listed = commands["commands"][0].clone();
    assert_eq!(listed["status"], "done", "{commands}");
    assert_eq!(listed["summary"]["files_scanned"], 3, "{listed}");
    let done = api(
        &url,
        &ca,
        &admin,
        &format!("/api/v1/commands/{}", listed["id"].as_str().unwrap()),
    );
    assert_eq!(done["result"]["detections_total"], 2, "{done}");
    let names: Vec<&str> = done["result"]["detections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(names.contains(&"Dozor.E2E.Eicar.UNOFFICIAL"), "{done}");
    assert!(names.contains(&"server/e2e.e2e_marker"), "{done}");

    // 6. clamd stops: the next scan still runs YARA and the hash lists, and the agent is
    // degraded with a reason naming clamd.
    clamd.stop();
    std::fs::write(watched.join("after.txt"), "DOZOR-E2E-YARA-MARKER again").unwrap();
    let agent_doc = wait_for("the degraded status", Duration::from_secs(60), || {
        let a = api(&url, &ca, &admin, &format!("/api/v1/agents/{agent_id}"));
        (a["status"] == "degraded").then_some(a)
    });
    assert!(agent_doc.to_string().contains("clamd"), "{agent_doc}");
    wait_for(
        "the YARA verdict without clamd",
        Duration::from_secs(60),
        || {
            docs(&url, &ca, &admin, &agent_id, "threat.engine:yara")
                .into_iter()
                .find(|e| {
                    e["file"]["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("after.txt"))
                })
        },
    );

    agent.stop();
    server.stop();
    assert!(
        !agent_log().contains("panicked"),
        "the agent panicked:\n{}",
        agent_log()
    );
}

/// The stored documents of an agent's events matching `q`.
fn docs(url: &str, ca: &Path, token: &str, agent: &str, q: &str) -> Vec<Value> {
    events(url, ca, token, agent, q)
        .into_iter()
        .map(|row| row["doc"].clone())
        .collect()
}

/// `dozor <args>` against the running server.
fn dozor_remote(args: &[&str], url: &str, token: &str, ca: &Path) -> (i32, String, String) {
    let out = Command::new(dozor_bin())
        .args(args)
        .env("DOZOR_SERVER", url)
        .env("DOZOR_TOKEN", token)
        .env("DOZOR_CA", ca)
        .output()
        .expect("run dozor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
