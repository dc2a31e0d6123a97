//! The FIM collector against files this test writes in a watched temporary directory.

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Harness, all_off, sha256_hex, str_at};
use dozor_collect::CollectorState;
use serde_json::Value;

fn action(v: &Value) -> &str {
    str_at(v, "/event/action").unwrap_or("")
}

fn is(v: &Value, act: &str, path: &Path) -> bool {
    action(v) == act && str_at(v, "/file/path") == path.to_str()
}

fn config(watched: &Path) -> dozor_collect::CollectConfig {
    let mut c = all_off();
    c.fim.enabled = Some(true);
    c.fim.paths = vec![watched.to_path_buf()];
    c
}

#[test]
fn create_modify_rename_delete_and_restart() {
    let state = tempfile::tempdir().expect("state");
    let watched = tempfile::tempdir().expect("watched");
    let w = watched.path();
    let pre = w.join("pre-existing.conf");
    fs::write(&pre, b"old\n").expect("write");
    let cfg = config(w);
    let h = Harness::start(&cfg, state.path());
    let status = h.wait_ready("fim");
    assert_eq!(status.state, CollectorState::Running, "{status:?}");

    // Create: exactly one event with the right hash and metadata.
    let a = w.join("a.txt");
    fs::write(&a, b"hello\n").expect("write");
    let created = h.wait_for("created", 20, |v| is(v, "created", &a));
    assert_eq!(
        str_at(&created, "/file/hash/sha256"),
        Some(sha256_hex(b"hello\n").as_str())
    );
    assert_eq!(created["file"]["size"], 6);
    assert_eq!(created["file"]["name"], "a.txt");
    assert_eq!(created["file"]["extension"], "txt");
    assert_eq!(str_at(&created, "/file/directory"), w.to_str());
    assert_eq!(created["file"]["type"], "file");
    assert!(created["file"]["mode"].is_string() && created["file"]["mtime"].is_string());
    assert_eq!(created["event"]["type"], serde_json::json!(["creation"]));
    assert_eq!(created["event"]["category"], serde_json::json!(["file"]));

    // A burst of writes: one modification with the old and the new hash.
    {
        let mut f = fs::OpenOptions::new().append(true).open(&a).expect("open");
        for i in 0..20 {
            writeln!(f, "line {i}").expect("append");
            f.flush().expect("flush");
        }
    }
    let final_content = fs::read(&a).expect("read");
    let modified = h.wait_for("modified", 20, |v| is(v, "modified", &a));
    assert_eq!(
        str_at(&modified, "/file/hash/sha256"),
        Some(sha256_hex(&final_content).as_str())
    );
    assert_eq!(
        str_at(&modified, "/dozor/file/previous_hash/sha256"),
        Some(sha256_hex(b"hello\n").as_str())
    );
    assert_eq!(modified["event"]["type"], serde_json::json!(["change"]));

    // Attribute change.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).expect("chmod");
    let attrs = h.wait_for("attributes", 20, |v| is(v, "attributes_modified", &a));
    assert_eq!(attrs["file"]["mode"], "0600");

    // Rename.
    let b = w.join("b.txt");
    fs::rename(&a, &b).expect("rename");
    let renamed = h.wait_for("renamed", 20, |v| is(v, "renamed", &b));
    assert_eq!(str_at(&renamed, "/dozor/file/previous_path"), a.to_str());
    assert_eq!(
        str_at(&renamed, "/file/hash/sha256"),
        Some(sha256_hex(&final_content).as_str())
    );

    // An editor-style save: write a temporary file and rename it over the target.
    let tmp = w.join(".b.txt.tmp");
    fs::write(&tmp, b"saved by editor\n").expect("write tmp");
    fs::rename(&tmp, &b).expect("rename over");
    let saved = h.wait_for("modified by rename", 20, |v| is(v, "modified", &b));
    assert_eq!(
        str_at(&saved, "/dozor/file/previous_hash/sha256"),
        Some(sha256_hex(&final_content).as_str())
    );
    assert_eq!(
        str_at(&saved, "/file/hash/sha256"),
        Some(sha256_hex(b"saved by editor\n").as_str())
    );

    // Delete.
    fs::remove_file(&b).expect("remove");
    let deleted = h.wait_for("deleted", 20, |v| is(v, "deleted", &b));
    assert_eq!(deleted["event"]["type"], serde_json::json!(["deletion"]));
    assert_eq!(
        str_at(&deleted, "/file/hash/sha256"),
        Some(sha256_hex(b"saved by editor\n").as_str())
    );

    // A subdirectory and a file in it; a transient file is not reported.
    let sub = w.join("sub");
    fs::create_dir(&sub).expect("mkdir");
    let c = sub.join("c.sh");
    fs::write(&c, b"#!/bin/sh\n").expect("write");
    h.wait_for("created in subdir", 20, |v| is(v, "created", &c));
    let transient = w.join("transient");
    fs::write(&transient, b"x").expect("write");
    fs::remove_file(&transient).expect("remove");
    // Excluded by the default globs.
    fs::write(w.join("x.swp"), b"swap").expect("write");
    h.drain_for(Duration::from_millis(1000));

    let events = h.stop();
    let count = |act: &str, p: &Path| events.iter().filter(|v| is(v, act, p)).count();
    assert_eq!(count("created", &a), 1, "one created event");
    assert_eq!(count("modified", &a), 1, "one modified event for the burst");
    assert_eq!(count("renamed", &b), 1);
    assert_eq!(
        events
            .iter()
            .filter(
                |v| str_at(v, "/file/path").is_some_and(|p| p.ends_with("transient")
                    || p.ends_with(".swp")
                    || p.ends_with(".tmp"))
            )
            .count(),
        0
    );
    assert_eq!(
        events
            .iter()
            .filter(|v| str_at(v, "/file/path") == pre.to_str())
            .count(),
        0
    );
    assert!(state.path().join("fim-baseline.json").is_file());

    // Restart with the same state: nothing is re-reported.
    let h = Harness::start(&cfg, state.path());
    h.wait_ready("fim");
    h.drain_for(Duration::from_millis(700));
    assert_eq!(h.count(|_| true), 0, "restart re-reported unchanged files");
    // Changes while the agent is down.
    let events = h.stop();
    assert!(events.is_empty());
    fs::write(&pre, b"changed while down\n").expect("write");
    let d = w.join("d.txt");
    fs::write(&d, b"new while down\n").expect("write");
    fs::remove_file(&c).expect("remove");

    // At standard the baseline is updated silently.
    let state_copy = tempfile::tempdir().expect("copy");
    fs::copy(
        state.path().join("fim-baseline.json"),
        state_copy.path().join("fim-baseline.json"),
    )
    .expect("copy baseline");
    let h = Harness::start(&cfg, state_copy.path());
    h.wait_ready("fim");
    h.drain_for(Duration::from_millis(700));
    assert_eq!(
        h.count(|_| true),
        0,
        "standard level reports no initial scan"
    );
    h.stop();

    // At detailed the initial scan reports them.
    let mut detailed = cfg.clone();
    detailed.level = dozor_collect::Level::Detailed;
    let h = Harness::start(&detailed, state.path());
    let m = h.wait_for("modified while down", 20, |v| is(v, "modified", &pre));
    assert_eq!(
        str_at(&m, "/dozor/file/previous_hash/sha256"),
        Some(sha256_hex(b"old\n").as_str())
    );
    h.wait_for("created while down", 20, |v| is(v, "created", &d));
    h.wait_for("deleted while down", 20, |v| is(v, "deleted", &c));
    h.drain_for(Duration::from_millis(500));
    assert_eq!(h.count(|_| true), 3, "only the three changes");
    h.stop();
}

#[test]
fn single_file_watch_survives_atomic_replace() {
    let state = tempfile::tempdir().expect("state");
    let watched = tempfile::tempdir().expect("watched");
    let target = watched.path().join("passwd");
    fs::write(&target, b"root:x:0:0\n").expect("write");
    let other = watched.path().join("other");
    let h = Harness::start(&config(&target), state.path());
    h.wait_ready("fim");
    for round in 0..2 {
        let tmp = watched.path().join(format!("passwd.{round}"));
        let content = format!("root:x:0:0\nuser{round}:x:1000:1000\n");
        fs::write(&tmp, &content).expect("write");
        fs::rename(&tmp, &target).expect("replace");
        let m = h.wait_for("replace", 20, |v| {
            is(v, "modified", &target)
                && str_at(v, "/file/hash/sha256") == Some(sha256_hex(content.as_bytes()).as_str())
        });
        assert!(m["dozor"]["file"]["previous_hash"]["sha256"].is_string());
    }
    fs::write(&other, b"not watched").expect("write");
    h.drain_for(Duration::from_millis(700));
    assert_eq!(h.count(|v| str_at(v, "/file/path") == other.to_str()), 0);
    h.stop();
}

#[test]
fn missing_paths_degrade_health() {
    let state = tempfile::tempdir().expect("state");
    let mut cfg = all_off();
    cfg.fim.enabled = Some(true);
    cfg.fim.paths = vec!["/nonexistent/dozor-test".into()];
    let h = Harness::start(&cfg, state.path());
    let status = h.wait_ready("fim");
    assert_eq!(status.state, CollectorState::Degraded);
    assert_eq!(
        h.health.problems(),
        vec!["fim: none of the 1 configured paths exists".to_owned()]
    );
    h.stop();
}
