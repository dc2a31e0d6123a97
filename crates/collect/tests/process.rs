//! The process collector against real processes this test starts.

#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Harness, all_off, has_type, sha256_hex, str_at};
use dozor_collect::{CollectorState, ProcessMode};
use serde_json::Value;

fn unique() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("0.000{n:09}")
}

fn own_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace().nth(2).expect("euid").to_owned()
}

fn sleep_checks(h: &Harness, mode_netlink: bool) {
    let arg = unique();
    let sleep = std::fs::canonicalize("/bin/sleep").expect("canonical sleep");
    let expected_hash = sha256_hex(&std::fs::read(&sleep).expect("read sleep"));
    let mut child = Command::new("/bin/sleep")
        .args(["2.5", &arg])
        .spawn()
        .expect("spawn sleep");
    let pid = child.id();
    let cmdline = format!("/bin/sleep 2.5 {arg}");
    let start = h.wait_for("sleep start", 20, |v| {
        has_type(v, "start") && str_at(v, "/process/command_line") == Some(cmdline.as_str())
    });
    assert_eq!(start["event"]["category"], serde_json::json!(["process"]));
    assert_eq!(start["event"]["dataset"], "process");
    assert_eq!(start["host"]["os"]["type"], "linux");
    assert_eq!(start["process"]["pid"], pid);
    assert_eq!(start["process"]["parent"]["pid"], std::process::id());
    assert_eq!(
        str_at(&start, "/process/executable"),
        sleep.to_str(),
        "executable of {start}"
    );
    assert_eq!(start["process"]["name"], "sleep");
    assert_eq!(
        start["process"]["args"],
        serde_json::json!(["/bin/sleep", "2.5", arg])
    );
    assert_eq!(start["process"]["args_count"], 3);
    assert_eq!(
        str_at(&start, "/process/hash/sha256"),
        Some(expected_hash.as_str())
    );
    assert_eq!(str_at(&start, "/user/id"), Some(own_uid().as_str()));
    let own_exe = std::fs::read_link("/proc/self/exe").expect("own exe");
    assert_eq!(
        str_at(&start, "/process/parent/executable"),
        own_exe.to_str()
    );
    assert!(start["process"]["working_directory"].is_string());
    assert!(start["process"]["start"].is_string());
    let status = child.wait().expect("wait");
    assert!(status.success());
    let end = h.wait_for("sleep end", 20, |v| {
        has_type(v, "end") && v["process"]["pid"] == pid
    });
    assert_eq!(
        str_at(&end, "/process/command_line"),
        Some(cmdline.as_str())
    );
    assert_eq!(end["event"]["action"], "ended");
    if mode_netlink {
        assert_eq!(end["process"]["exit_code"], 0);
    }
}

#[test]
fn process_start_and_end_auto_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.process.enabled = Some(true);
    // The test process is the "agent" here: its children are the subject.
    config.process.include_agent_children = true;
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("process");
    eprintln!("process collector: {status:?}");
    let netlink = status.message.as_deref() == Some("netlink process connector");
    assert!(
        matches!(
            status.state,
            CollectorState::Running | CollectorState::Degraded
        ),
        "{status:?}"
    );
    if status.state == CollectorState::Degraded {
        let problems = h.health.problems();
        assert!(
            problems[0].starts_with("process: netlink unavailable ("),
            "{problems:?}"
        );
    }
    sleep_checks(&h, netlink);

    if netlink {
        // A short-lived process with an exit code, and its child.
        let arg = format!("sh-{}", unique());
        let mut child = Command::new("/bin/sh")
            .args(["-c", "/bin/sleep 0.2; exit 7", &arg])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let _ = child.wait();
        let start = h.wait_for("sh start", 20, |v| {
            has_type(v, "start") && v["process"]["pid"] == pid
        });
        assert_eq!(start["process"]["args"][3], arg.as_str());
        let end = h.wait_for("sh end", 20, |v| {
            has_type(v, "end") && v["process"]["pid"] == pid
        });
        assert_eq!(end["process"]["exit_code"], 7);
        let grandchild = h.wait_for("sleep 0.2 start", 20, |v| {
            has_type(v, "start") && v["process"]["parent"]["pid"] == pid
        });
        assert_eq!(grandchild["process"]["command_line"], "/bin/sleep 0.2");
        assert_eq!(
            grandchild["process"]["parent"]["executable"],
            std::fs::canonicalize("/bin/sh")
                .expect("sh")
                .to_str()
                .expect("utf8")
        );
    }
    let events = h.stop();
    assert!(!events.is_empty());
}

#[test]
fn process_polling_mode_and_exclusions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.process.enabled = Some(true);
    // The test process is the "agent" here: its children are the subject.
    config.process.include_agent_children = true;
    config.process.mode = ProcessMode::Poll;
    config.process.poll_interval_ms = Some(200);
    config.process.exclude_executables = vec!["**/cat".into()];
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("process");
    assert_eq!(status.state, CollectorState::Running);
    assert_eq!(status.message.as_deref(), Some("polling /proc every 200ms"));
    assert!(h.health.problems().is_empty());

    // Excluded: cat (reading from a pipe that stays open for a while).
    let mut hidden = Command::new("/bin/sh")
        .args(["-c", "exec /bin/cat", "cat-excluded"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cat");
    sleep_checks(&h, false);
    drop(hidden.stdin.take());
    let _ = hidden.wait();
    h.drain_for(Duration::from_millis(600));
    let cats = h.count(|v| str_at(v, "/process/executable").is_some_and(|e| e.ends_with("/cat")));
    assert_eq!(cats, 0, "excluded executable reported");
    let _: Vec<Value> = h.stop();
}

#[test]
fn minimal_level_has_no_hash_and_no_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.level = dozor_collect::Level::Minimal;
    config.process.enabled = Some(true);
    // The test process is the "agent" here: its children are the subject.
    config.process.include_agent_children = true;
    config.process.mode = ProcessMode::Poll;
    config.process.poll_interval_ms = Some(100);
    let h = Harness::start(&config, dir.path());
    h.wait_ready("process");
    let arg = unique();
    let mut child = Command::new("/bin/sleep")
        .args(["0.6", &arg])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let start = h.wait_for("start", 20, |v| {
        has_type(v, "start") && v["process"]["pid"] == pid
    });
    assert!(start.pointer("/process/hash").is_none(), "{start}");
    let _ = child.wait();
    h.drain_for(Duration::from_millis(800));
    assert_eq!(
        h.count(|v| has_type(v, "end") && v["process"]["pid"] == pid),
        0
    );
    h.stop();
}

#[test]
fn agent_children_are_not_reported_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.process.enabled = Some(true);
    let h = Harness::start(&config, dir.path());
    h.wait_ready("process");
    // sh is our child (hidden); the sleep it starts is its child (reported).
    let arg = unique();
    let mut sh = Command::new("/bin/sh")
        .args(["-c", &format!("/bin/sleep 1.2 {arg}; true"), "agent-child"])
        .spawn()
        .expect("spawn");
    let sh_pid = sh.id();
    let grandchild = h.wait_for("grandchild", 20, |v| {
        has_type(v, "start")
            && str_at(v, "/process/command_line") == Some(format!("/bin/sleep 1.2 {arg}").as_str())
    });
    assert_eq!(grandchild["process"]["parent"]["pid"], sh_pid);
    let _ = sh.wait();
    h.wait_for("grandchild end", 20, |v| {
        has_type(v, "end") && v["process"]["pid"] == grandchild["process"]["pid"]
    });
    h.drain_for(Duration::from_millis(300));
    assert_eq!(
        h.count(|v| v["process"]["pid"] == sh_pid),
        0,
        "the agent's child was reported"
    );
    h.stop();
}
