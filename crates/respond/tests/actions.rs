//! The other response actions for real: kill a process this test spawned, quarantine /
//! restore / delete files this test created, block addresses inside a network namespace this
//! test created (root, `ip`, `nft` and `python3` needed for that one; without them it prints
//! `SKIPPED: <reason>` and passes).

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dozor_model::response::KILL_START_TIME_TOLERANCE_MS;
use dozor_respond::RespondError;
use dozor_respond::block::{NftBlocker, TABLE, parse_addresses};
use dozor_respond::process::{kill_process, parse_proc_stat, start_time_ms};
use dozor_respond::quarantine::{Vault, hash_file};

/// The start time of `pid` as the agent's process events report it.
fn start_time_of(pid: u32) -> i64 {
    let stat =
        parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap()).unwrap();
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ticks = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let ticks: u64 = String::from_utf8_lossy(&ticks.stdout)
        .trim()
        .parse()
        .unwrap();
    start_time_ms(btime, stat.starttime, ticks)
}

fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

#[test]
fn kill_process_kills_only_the_process_with_the_right_start_time() {
    let mut child = sleeper();
    let pid = child.id();
    let started = start_time_of(pid);

    // Wrong start time (as if the pid had been reused): refused, still running.
    let err = kill_process(pid, started - 60_000, KILL_START_TIME_TOLERANCE_MS).unwrap_err();
    assert!(matches!(err, RespondError::ProcessMismatch { .. }), "{err}");
    assert!(err.to_string().contains("not killed"), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "it must still run");

    // Right start time, off by less than the tolerance: killed with SIGKILL.
    let outcome = kill_process(pid, started + 500, KILL_START_TIME_TOLERANCE_MS).unwrap();
    assert!(outcome.killed);
    assert_eq!(outcome.pid, pid);
    assert_eq!(outcome.name, "sleep");
    assert!(outcome.exe.as_deref().is_some_and(|e| e.ends_with("sleep")));
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));

    // Gone (reaped): not found.
    let err = kill_process(pid, started, KILL_START_TIME_TOLERANCE_MS).unwrap_err();
    assert!(matches!(err, RespondError::ProcessNotFound { .. }), "{err}");
}

#[test]
fn quarantine_restore_and_delete_keep_content_mode_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let vault = Vault::open(state.join("quarantine"))
        .unwrap()
        .protect([state.clone()]);
    let vault_mode = std::fs::metadata(vault.dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(vault_mode, 0o700);

    let target = dir.path().join("evil.sh");
    let content = b"#!/bin/sh\necho pwned\n";
    std::fs::write(&target, content).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o754)).unwrap();
    let (sha, size) = hash_file(&target).unwrap();

    let record = vault.quarantine(&target).unwrap();
    assert!(!target.exists(), "moved away");
    assert_eq!(record.sha256, sha);
    assert_eq!(record.size, size);
    assert_eq!(record.mode, Some(0o754));
    assert_eq!(record.original_path, target.to_str().unwrap());
    assert!(record.owner.as_deref().is_some_and(|o| o.contains(':')));
    let bin = vault.dir().join(format!("{}.bin", record.quarantine_id));
    let json = vault.dir().join(format!("{}.json", record.quarantine_id));
    for f in [&bin, &json] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    assert_eq!(std::fs::read(&bin).unwrap(), content);
    assert_eq!(vault.record(&record.quarantine_id).unwrap(), record);

    // Something new at the path: not overwritten unless asked.
    std::fs::write(&target, b"new").unwrap();
    let err = vault.restore(&record.quarantine_id, false).unwrap_err();
    assert!(err.to_string().contains("overwrite"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    vault.restore(&record.quarantine_id, true).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), content);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o754);
    assert!(!bin.exists() && !json.exists(), "the vault is emptied");
    assert!(vault.restore(&record.quarantine_id, false).is_err(), "once");

    // Delete: hash reported, file gone.
    let deleted = vault.delete(&target).unwrap();
    assert_eq!(
        (deleted.sha256.as_str(), deleted.size),
        (sha.as_str(), size)
    );
    assert!(!target.exists());
}

#[test]
fn quarantine_across_filesystems_copies_syncs_and_removes() {
    use std::os::unix::fs::MetadataExt;
    let Ok(vault_fs) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("SKIPPED: no /dev/shm");
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let dev = |p: &std::path::Path| std::fs::metadata(p).unwrap().dev();
    if dev(vault_fs.path()) == dev(files.path()) {
        eprintln!("SKIPPED: /dev/shm and the temporary directory are one filesystem");
        return;
    }
    let vault = Vault::open(vault_fs.path().join("quarantine")).unwrap();
    let target = files.path().join("payload");
    std::fs::write(&target, vec![7u8; 300_000]).unwrap();
    let record = vault.quarantine(&target).unwrap();
    assert!(!target.exists());
    assert_eq!(record.size, 300_000);
    let bin = vault.dir().join(format!("{}.bin", record.quarantine_id));
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_dir(vault.dir()).unwrap().count() == 2,
        "no temporary file left"
    );
    vault.restore(&record.quarantine_id, false).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), vec![7u8; 300_000]);
}

#[test]
fn quarantine_refuses_directories_symlinks_and_the_agents_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let vault = Vault::open(state.join("quarantine"))
        .unwrap()
        .protect([state.clone()]);
    let real = dir.path().join("real");
    std::fs::write(&real, b"x").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let own = state.join("agent.json");
    std::fs::write(&own, b"{}").unwrap();

    for (path, why) in [
        (dir.path().to_path_buf(), "directory"),
        (link.clone(), "symbolic link"),
        (own.clone(), "agent's own"),
        (vault.dir().to_path_buf(), "directory"),
    ] {
        let err = vault.quarantine(&path).unwrap_err().to_string();
        assert!(err.contains(why), "{}: {err}", path.display());
        let err = vault.delete(&path).unwrap_err().to_string();
        assert!(err.contains(why), "{}: {err}", path.display());
    }
    assert!(link.exists() && real.exists() && own.exists());
    // A path through a symlinked directory into the state dir is still the agent's.
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&state, &alias).unwrap();
    let err = vault.quarantine(&alias.join("agent.json")).unwrap_err();
    assert!(err.to_string().contains("agent's own"), "{err}");
}

// ---- block_ip in a network namespace ----

const PORT: &str = "8080";
const LISTENER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;
const CONNECT: &str = "import socket, sys\n\
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()";

fn missing_prerequisite() -> Option<String> {
    if !rustix_is_root() {
        return Some("not root (network namespaces and nft need root)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("nft", "--version"), ("python3", "--version")] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces: `host` (where the blocks go) and `peer` with three addresses
/// (10.78.0.2, 10.78.0.3, fd78::2) and a listener. Deleted on drop.
struct Lab {
    host: String,
    peer: String,
    listener: Option<Child>,
}

impl Lab {
    fn new() -> Self {
        let id = format!("{:05x}", std::process::id() & 0xf_ffff);
        let mut lab = Lab {
            host: format!("dzb-{id}-host"),
            peer: format!("dzb-{id}-peer"),
            listener: None,
        };
        for ns in [&lab.host, &lab.peer] {
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        let (h, p) = (format!("b{id}h"), format!("b{id}p"));
        run(
            "ip",
            &[
                "link", "add", &h, "netns", &lab.host, "type", "veth", "peer", "name", &p, "netns",
                &lab.peer,
            ],
        );
        run(
            "ip",
            &["-n", &lab.host, "addr", "add", "10.78.0.1/24", "dev", &h],
        );
        run(
            "ip",
            &[
                "-n",
                &lab.host,
                "-6",
                "addr",
                "add",
                "fd78::1/64",
                "dev",
                &h,
                "nodad",
            ],
        );
        for a in ["10.78.0.2/24", "10.78.0.3/24"] {
            run("ip", &["-n", &lab.peer, "addr", "add", a, "dev", &p]);
        }
        run(
            "ip",
            &[
                "-n",
                &lab.peer,
                "-6",
                "addr",
                "add",
                "fd78::2/64",
                "dev",
                &p,
                "nodad",
            ],
        );
        run("ip", &["-n", &lab.host, "link", "set", &h, "up"]);
        run("ip", &["-n", &lab.peer, "link", "set", &p, "up"]);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.peer, "python3", "-c", LISTENER, PORT])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        lab.listener = Some(child);
        assert_eq!(line.trim(), "ready");
        for a in ["10.78.0.2", "10.78.0.3", "fd78::2"] {
            assert!(
                (0..5).any(|_| lab.reaches(a, "3")),
                "the lab never reached {a}"
            );
        }
        lab
    }

    fn reaches(&self, addr: &str, timeout: &str) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", &self.host, "python3", "-c", CONNECT, addr, PORT, timeout,
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn blocker(&self) -> NftBlocker {
        NftBlocker::with_command(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.host.clone(),
            "nft".into(),
        ])
    }

    fn table(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.host, "nft", "list", "table", "inet", TABLE,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.listener.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.host, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[tokio::test]
async fn block_ip_drops_the_blocked_addresses_only_and_unblock_restores_them() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let lab = Lab::new();
    let blocker = lab.blocker();
    let blocked = parse_addresses(&["10.78.0.3".into(), "fd78::2".into()], &[]).unwrap();

    blocker.block(&blocked, None).await.unwrap();
    // Twice: idempotent (one rule set, one element each).
    blocker.block(&blocked, None).await.unwrap();
    let table = lab.table();
    // input, output, forward ×2 — not doubled by the second block.
    assert_eq!(table.matches("@v4 drop").count(), 4, "{table}");
    assert!(
        !lab.reaches("10.78.0.3", "1"),
        "blocked v4 must be unreachable"
    );
    assert!(
        !lab.reaches("fd78::2", "1"),
        "blocked v6 must be unreachable"
    );
    assert!(lab.reaches("10.78.0.2", "3"), "others stay reachable");

    blocker.unblock(&blocked).await.unwrap();
    assert!(lab.reaches("10.78.0.3", "3"));
    assert!(lab.reaches("fd78::2", "3"));
    // Unblocking what is not blocked is fine.
    blocker.unblock(&blocked).await.unwrap();

    // A timed block ends by itself.
    let timed = parse_addresses(&["10.78.0.2".into()], &[]).unwrap();
    blocker
        .block(&timed, Some(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(!lab.reaches("10.78.0.2", "1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.reaches("10.78.0.2", "1") {
        assert!(Instant::now() < deadline, "the timed block never expired");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
