//! The auth collector against a temporary auth.log (and a stand-in journalctl).

#![cfg(target_os = "linux")]

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Harness, all_off, str_at};
use dozor_collect::{CollectConfig, CollectorState};
use serde_json::Value;

fn append(path: &Path, lines: &[&str]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

fn config(log: &Path) -> CollectConfig {
    let mut c = all_off();
    c.auth.enabled = Some(true);
    c.auth.paths = vec![log.to_path_buf()];
    c.auth.journald = false;
    c.auth.poll_interval_ms = 100;
    c
}

fn msg(v: &Value) -> &str {
    str_at(v, "/message").unwrap_or("")
}

fn has_msg(v: &Value, needle: &str) -> bool {
    msg(v).contains(needle)
}

const ACCEPTED: &str = "Nov 21 10:21:20 web1 sshd[1234]: Accepted publickey for alice from 192.0.2.10 port 52311 ssh2: ED25519 SHA256:AAAA";
const FAILED_INVALID: &str = "Nov 21 10:21:21 web1 sshd[1235]: Failed password for invalid user admin from 203.0.113.9 port 4444 ssh2";
const SUDO: &str = "2026-11-21T10:21:22.123456+00:00 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u";
const SU_SESSION: &str = "Nov 21 10:21:23 web1 su[777]: pam_unix(su:session): session opened for user root(uid=0) by alice(uid=1000)";
const NOISE: &str = "Nov 21 10:21:24 web1 kernel: [    1.000] something unrelated";
const CRON: &str = "Nov 21 10:21:25 web1 CRON[99]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)";

#[test]
fn tail_parse_rotate_and_restart() {
    let state = tempfile::tempdir().expect("state");
    let logs = tempfile::tempdir().expect("logs");
    let log = logs.path().join("auth.log");
    append(
        &log,
        &["Nov 21 09:00:00 web1 sshd[1]: Accepted password for old from 192.0.2.1 port 1 ssh2"],
    );
    let cfg = config(&log);
    let h = Harness::start(&cfg, state.path());
    let status = h.wait_ready("auth");
    assert_eq!(status.state, CollectorState::Running, "{status:?}");

    append(
        &log,
        &[ACCEPTED, NOISE, FAILED_INVALID, SUDO, CRON, SU_SESSION],
    );
    let a = h.wait_for("accepted", 20, |v| has_msg(v, "Accepted publickey"));
    assert_eq!(
        a["event"]["category"],
        serde_json::json!(["authentication", "session"])
    );
    assert_eq!(a["event"]["outcome"], "success");
    assert_eq!(a["event"]["action"], "ssh-login");
    assert_eq!(a["user"]["name"], "alice");
    assert_eq!(a["source"]["ip"], "192.0.2.10");
    assert_eq!(a["source"]["port"], 52311);
    assert_eq!(a["process"]["name"], "sshd");
    assert_eq!(a["process"]["pid"], 1234);
    assert_eq!(a["message"], ACCEPTED);
    assert_eq!(str_at(&a, "/log/file/path"), log.to_str());
    assert_eq!(a["dozor"]["ssh"]["method"], "publickey");
    let f = h.wait_for("failed", 20, |v| {
        has_msg(v, "Failed password for invalid user")
    });
    assert_eq!(f["event"]["outcome"], "failure");
    assert_eq!(f["event"]["reason"], "invalid user");
    assert_eq!(f["user"]["name"], "admin");
    assert_eq!(f["related"]["ip"], serde_json::json!(["203.0.113.9"]));
    let s = h.wait_for("sudo", 20, |v| has_msg(v, "COMMAND=/usr/bin/id"));
    assert_eq!(s["@timestamp"], "2026-11-21T10:21:22.123Z");
    assert_eq!(s["user"]["name"], "alice");
    assert_eq!(s["user"]["effective"]["name"], "root");
    assert_eq!(s["process"]["working_directory"], "/home/alice");
    assert_eq!(s["dozor"]["sudo"]["command"], "/usr/bin/id -u");
    assert_eq!(s["dozor"]["tty"], "pts/0");
    assert_eq!(s["log"]["syslog"]["hostname"], "web1");
    let su = h.wait_for("su session", 20, |v| has_msg(v, "pam_unix(su:session)"));
    assert_eq!(su["event"]["type"], serde_json::json!(["start"]));
    assert_eq!(su["user"]["name"], "alice");
    assert_eq!(su["user"]["effective"]["name"], "root");

    // Rotation: rename + new file; nothing lost.
    append(
        &log,
        &[
            "Nov 21 10:22:00 web1 sshd[2]: Failed password for root from 198.51.100.1 port 1001 ssh2",
        ],
    );
    fs::rename(&log, logs.path().join("auth.log.1")).expect("rotate");
    append(
        &log,
        &[
            "Nov 21 10:22:01 web1 sshd[3]: Failed password for root from 198.51.100.1 port 1002 ssh2",
        ],
    );
    h.wait_for("before rotation", 20, |v| has_msg(v, "port 1001"));
    h.wait_for("after rotation", 20, |v| has_msg(v, "port 1002"));
    // Truncation (copytruncate).
    fs::write(&log, b"").expect("truncate");
    std::thread::sleep(Duration::from_millis(300));
    append(
        &log,
        &[
            "Nov 21 10:22:02 web1 sshd[4]: Failed password for root from 198.51.100.1 port 1003 ssh2",
        ],
    );
    h.wait_for("after truncation", 20, |v| has_msg(v, "port 1003"));
    // A partial line is held until its newline arrives.
    {
        let mut f = OpenOptions::new().append(true).open(&log).expect("open");
        write!(
            f,
            "Nov 21 10:22:03 web1 sshd[5]: Failed password for root from 198.51.100.1 "
        )
        .expect("write");
    }
    h.drain_for(Duration::from_millis(400));
    {
        let mut f = OpenOptions::new().append(true).open(&log).expect("open");
        writeln!(f, "port 1004 ssh2").expect("write");
    }
    let p = h.wait_for("completed partial line", 20, |v| has_msg(v, "port 1004"));
    assert_eq!(p["source"]["port"], 1004);
    h.drain_for(Duration::from_millis(300));
    let first = h.stop();

    // Restart: nothing re-sent; new lines come.
    let h = Harness::start(&cfg, state.path());
    h.wait_ready("auth");
    append(
        &log,
        &["Nov 21 10:23:00 web1 sshd[6]: Invalid user guest from 198.51.100.2 port 2000"],
    );
    h.wait_for("after restart", 20, |v| has_msg(v, "Invalid user guest"));
    h.drain_for(Duration::from_millis(300));
    let second = h.stop();
    assert_eq!(second.len(), 1, "restart re-sent: {second:?}");

    // Rotated while the collector was down: the rest of the old file, then the new one.
    append(
        &log,
        &[
            "Nov 21 10:24:00 web1 sshd[7]: Failed password for root from 198.51.100.3 port 3001 ssh2",
        ],
    );
    fs::rename(&log, logs.path().join("auth.log.1")).expect("rotate");
    append(
        &log,
        &[
            "Nov 21 10:24:01 web1 sshd[8]: Failed password for root from 198.51.100.3 port 3002 ssh2",
        ],
    );
    let h = Harness::start(&cfg, state.path());
    h.wait_ready("auth");
    h.wait_for("old file rest", 20, |v| has_msg(v, "port 3001"));
    h.wait_for("new file", 20, |v| has_msg(v, "port 3002"));
    h.drain_for(Duration::from_millis(300));
    let third = h.stop();
    assert_eq!(third.len(), 2, "{third:?}");

    let all: Vec<&Value> = first.iter().chain(&second).chain(&third).collect();
    let mut messages: Vec<&str> = all.iter().map(|v| msg(v)).collect();
    let total = messages.len();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), total, "a line was sent twice");
    assert!(
        !messages.iter().any(|m| m.contains("for old from")),
        "first run starts at the end"
    );
    assert!(
        !messages.iter().any(|m| m.contains("kernel")),
        "unknown lines are ignored"
    );
    assert!(
        !messages.iter().any(|m| m.contains("CRON")),
        "cron is excluded by default"
    );
    // Ids are UUIDv5 of the line's place: stable, unique.
    let mut ids: Vec<&str> = all.iter().filter_map(|v| str_at(v, "/event/id")).collect();
    assert_eq!(ids.len(), total);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total);
}

#[test]
fn journal_follow_with_cursor() {
    let state = tempfile::tempdir().expect("state");
    let dir = tempfile::tempdir().expect("dir");
    let args_file = dir.path().join("args");
    let lines_file = dir.path().join("lines");
    let script = dir.path().join("journalctl");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo systemd 252; exit 0; fi\necho \"$@\" >> {args}\ncat {lines}\nexec sleep 30\n",
            args = args_file.display(),
            lines = lines_file.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(
        &lines_file,
        concat!(
            r#"{"__CURSOR":"s=1;i=1","__REALTIME_TIMESTAMP":"1763720480000000","SYSLOG_IDENTIFIER":"sshd","_PID":"10","MESSAGE":"Accepted password for bob from 192.0.2.7 port 40000 ssh2"}"#,
            "\n",
            r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1763720481000000","SYSLOG_IDENTIFIER":"systemd","MESSAGE":"Started something."}"#,
            "\n"
        ),
    )
    .expect("lines");
    let mut cfg = all_off();
    cfg.auth.enabled = Some(true);
    cfg.auth.paths = vec![dir.path().join("no-such-auth.log")];
    cfg.auth.journalctl = script.clone();
    let h = Harness::start(&cfg, state.path());
    let status = h.wait_ready("auth");
    assert_eq!(
        status.message.as_deref(),
        Some("following the journal (journalctl)")
    );
    let e = h.wait_for("journal event", 20, |v| {
        has_msg(v, "Accepted password for bob")
    });
    assert_eq!(e["user"]["name"], "bob");
    assert_eq!(e["@timestamp"], "2025-11-21T10:21:20.000Z");
    h.drain_for(Duration::from_millis(700));
    let events = h.stop();
    assert_eq!(events.len(), 1);
    let saved = fs::read_to_string(state.path().join("auth-state.json")).expect("state");
    assert!(saved.contains("s=1;i=2"), "{saved}");

    let h = Harness::start(&cfg, state.path());
    h.wait_ready("auth");
    // The stand-in prints the same lines again; the server would drop them by event.id.
    let again = h.wait_for("journal event again", 20, |v| {
        has_msg(v, "Accepted password for bob")
    });
    assert_eq!(again["event"]["id"], e["event"]["id"]);
    h.stop();
    let args = fs::read_to_string(&args_file).expect("args");
    let runs: Vec<&str> = args.lines().collect();
    assert_eq!(runs.len(), 2, "{args}");
    assert!(
        runs[0].contains("-n 0") && runs[0].contains("SYSLOG_FACILITY=4"),
        "{}",
        runs[0]
    );
    assert!(runs[1].contains("--after-cursor=s=1;i=2"), "{}", runs[1]);
}

#[test]
fn no_log_and_no_journal_is_degraded() {
    let state = tempfile::tempdir().expect("state");
    let mut cfg = all_off();
    cfg.auth.enabled = Some(true);
    cfg.auth.paths = vec!["/nonexistent/auth.log".into()];
    cfg.auth.journalctl = "/nonexistent/journalctl".into();
    let h = Harness::start(&cfg, state.path());
    let status = h.wait_ready("auth");
    assert_eq!(status.state, CollectorState::Degraded);
    assert!(h.health.problems()[0].starts_with(
        "auth: no auth log found (/nonexistent/auth.log) and journalctl not available"
    ));
    h.stop();
}
