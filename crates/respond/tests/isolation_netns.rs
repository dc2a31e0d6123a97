//! Host isolation for real, with Debian's `nft` inside network namespaces.
//!
//! Each test builds its own lab — three namespaces with unique names: `host` (isolated), `server`
//! (the Dozor server) and `other` (any other machine), linked host↔server and host↔other by
//! veth pairs created directly inside the namespaces, with IPv4 and IPv6 (`nodad`) addresses.
//! A small Python TCP listener (dual stack, port 8080) runs in each namespace. Nothing is
//! configured in the test runner's own namespace, so no packet leaves the lab, and a Drop guard
//! deletes the namespaces even when an assertion fails.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and `python3`; without them each test prints
//! why and passes without checking anything.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dozor_respond::nft::{NftBackend, TABLE};
use dozor_respond::{
    Allowances, IsolateCommand, IsolationPhase, IsolationPolicy, Isolator, ReachabilityProbe,
    RespondError, ResumeOutcome, SelfCheck,
};

const PORT: &str = "8080";
const SERVER_V4: &str = "10.77.1.2";
const SERVER_V6: &str = "fd77:1::2";
const OTHER_V4: &str = "10.77.2.2";
const OTHER_V6: &str = "fd77:2::2";

const LISTENER: &str = r#"
import socket, sys, threading
def echo(conn):
    try:
        while True:
            data = conn.recv(1024)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    conn.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
"#;

/// A long-lived connection: for each line on stdin, one echo round trip; prints whether it
/// came back. It exits when stdin closes.
const SESSION: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print("connected", flush=True)
for line in sys.stdin:
    try:
        c.sendall(b"ping")
        ok = c.recv(4) == b"ping"
    except OSError:
        ok = False
    print("alive" if ok else "dead", flush=True)
"#;

const CONNECT: &str = "import socket, sys\n\
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()";

/// Why the tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
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

macro_rules! lab_or_skip {
    () => {
        match missing_prerequisite() {
            Some(reason) => {
                eprintln!("SKIPPED: {reason}");
                return;
            }
            None => Lab::new(),
        }
    };
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three namespaces and their listeners; deleted on drop.
struct Lab {
    host: String,
    server: String,
    other: String,
    /// The server's end of the host↔server link.
    server_link: String,
    listeners: Vec<Child>,
}

impl Lab {
    fn new() -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!(
            "{:06x}",
            (std::process::id() ^ nanos ^ (SEQ.fetch_add(1, Ordering::SeqCst) << 20)) & 0xff_ffff
        );
        let mut lab = Lab {
            host: format!("dzr-{id}-host"),
            server: format!("dzr-{id}-server"),
            other: format!("dzr-{id}-other"),
            server_link: format!("d{id}sh"),
            listeners: Vec::new(),
        };
        // From here on, Drop cleans up whatever was created.
        for ns in [&lab.host, &lab.server, &lab.other] {
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        let links = [
            (
                format!("d{id}hs"),
                lab.server.clone(),
                lab.server_link.clone(),
                1,
            ),
            (format!("d{id}ho"), lab.other.clone(), format!("d{id}oh"), 2),
        ];
        for (host_end, peer_ns, peer_end, net) in &links {
            run(
                "ip",
                &[
                    "link", "add", host_end, "netns", &lab.host, "type", "veth", "peer", "name",
                    peer_end, "netns", peer_ns,
                ],
            );
            for (ns, dev, last) in [(&lab.host, host_end, 1), (peer_ns, peer_end, 2)] {
                let v4 = format!("10.77.{net}.{last}/24");
                let v6 = format!("fd77:{net}::{last}/64");
                run("ip", &["-n", ns, "addr", "add", &v4, "dev", dev]);
                run(
                    "ip",
                    &["-n", ns, "-6", "addr", "add", &v6, "dev", dev, "nodad"],
                );
                run("ip", &["-n", ns, "link", "set", dev, "up"]);
            }
        }
        for ns in [lab.server.clone(), lab.other.clone(), lab.host.clone()] {
            lab.start_listener(&ns);
        }
        // A fresh veth drops the very first packets (the first SYN is retransmitted after 1 s):
        // wait until every address answers once, with a patient timeout.
        for addr in [SERVER_V4, SERVER_V6, OTHER_V4, OTHER_V6] {
            let settled = (0..5).any(|_| lab.host_reaches_within(addr, "3"));
            assert!(settled, "the lab never reached {addr}");
        }
        lab
    }

    fn start_listener(&mut self, ns: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", LISTENER, PORT])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the listener");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("listener stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("listener output");
        self.listeners.push(child);
        assert_eq!(line.trim(), "ready", "listener in {ns}");
    }

    /// Whether the host namespace can open a TCP connection to `addr`:8080.
    fn host_reaches(&self, addr: &str) -> bool {
        self.host_reaches_within(addr, "1")
    }

    fn host_reaches_within(&self, addr: &str, seconds: &str) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", &self.host, "python3", "-c", CONNECT, addr, PORT, seconds,
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn assert_reach(&self, cases: &[(&str, bool)]) {
        for (addr, expected) in cases {
            assert_eq!(
                self.host_reaches(addr),
                *expected,
                "host → {addr}: expected {}",
                if *expected { "reachable" } else { "blocked" }
            );
        }
    }

    fn backend(&self) -> NftBackend {
        NftBackend::with_command(vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.host.clone(),
            "nft".into(),
        ])
    }

    /// A host firewall of the usual shape that accepts everything, before our table's
    /// priority. Its `ct` rules also turn connection tracking on in the namespace, as on any
    /// host with a stateful firewall (without them, a connection older than the isolation is
    /// not tracked and would die whatever our rules say).
    fn load_permissive_host_firewall(&self) {
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &self.host, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        std::io::Write::write_all(
            nft.stdin.as_mut().expect("nft stdin"),
            b"table inet hostfw {\n\
              chain input { type filter hook input priority -100; policy accept; \
                ct state established,related accept; accept; }\n\
              chain output { type filter hook output priority -100; policy accept; \
                ct state established,related accept; accept; }\n}\n",
        )
        .expect("write the ruleset");
        drop(nft.stdin.take());
        assert!(nft.wait().expect("nft").success(), "load the host firewall");
    }

    /// `nft list tables` in the host namespace.
    fn host_tables(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host, "nft", "list", "tables"])
            .output()
            .expect("nft list tables");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn probe(&self) -> NamespaceProbe {
        NamespaceProbe {
            host: self.host.clone(),
            targets: vec![SERVER_V4.into(), SERVER_V6.into()],
            cut_first: None,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.listeners {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.host, &self.server, &self.other] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The self-check from inside the host namespace: a TCP connection to the server (v4 or v6).
/// `cut_first` takes the server's link down on the first probe — the server becomes
/// unreachable right after the isolation was applied.
struct NamespaceProbe {
    host: String,
    targets: Vec<String>,
    cut_first: Option<(String, String)>,
}

impl ReachabilityProbe for NamespaceProbe {
    async fn reachable(&self) -> bool {
        if let Some((ns, link)) = &self.cut_first {
            let _ = tokio::process::Command::new("ip")
                .args(["-n", ns, "link", "set", link, "down"])
                .status()
                .await;
        }
        for target in &self.targets {
            let ok = tokio::process::Command::new("ip")
                .args([
                    "netns", "exec", &self.host, "python3", "-c", CONNECT, target, PORT, "1",
                ])
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ok {
                return true;
            }
        }
        false
    }
}

fn server_policy(hosts: Vec<&str>) -> IsolationPolicy {
    IsolationPolicy::new(
        vec![SERVER_V4.parse().unwrap(), SERVER_V6.parse().unwrap()],
        vec![8080],
        Allowances {
            dns: vec![],
            dhcp: true,
            hosts: hosts.into_iter().map(|h| h.parse().unwrap()).collect(),
        },
    )
    .unwrap()
}

fn isolate(id: &str, policy: IsolationPolicy, release_after: Option<Duration>) -> IsolateCommand {
    IsolateCommand {
        command_id: id.into(),
        policy,
        release_after,
    }
}

#[tokio::test]
async fn isolation_lets_only_the_server_through_survives_a_reboot_and_release_restores() {
    let lab = lab_or_skip!();
    let everything = [
        (SERVER_V4, true),
        (SERVER_V6, true),
        (OTHER_V4, true),
        (OTHER_V6, true),
        ("127.0.0.1", true),
        ("::1", true),
    ];
    lab.assert_reach(&everything);

    // A permissive host firewall that runs before ours and accepts everything: an accept in
    // one table does not stop our table's drop.
    lab.load_permissive_host_firewall();

    let state_dir = tempfile::tempdir().unwrap();
    let isolator = Isolator::new(lab.backend(), state_dir.path());
    let state = isolator
        .isolate(isolate("cmd-1", server_policy(vec![]), None), &lab.probe())
        .await
        .expect("isolate");
    assert_eq!(state.phase, IsolationPhase::Isolated);
    // Forget the neighbors learned before: IPv6 to the server must resolve through the table.
    run("ip", &["-n", &lab.host, "neigh", "flush", "all"]);
    let isolated = [
        (SERVER_V4, true),
        (SERVER_V6, true),
        (OTHER_V4, false),
        (OTHER_V6, false),
        ("127.0.0.1", true),
        ("::1", true),
    ];
    lab.assert_reach(&isolated);

    // Re-applying replaces the table atomically: one table, the new allowance in force.
    isolator
        .isolate(
            isolate("cmd-2", server_policy(vec![OTHER_V4]), None),
            &lab.probe(),
        )
        .await
        .expect("re-isolate");
    assert_eq!(
        lab.host_tables().matches(TABLE).count(),
        1,
        "{}",
        lab.host_tables()
    );
    lab.assert_reach(&[(OTHER_V4, true), (OTHER_V6, false), (SERVER_V6, true)]);

    // A reboot clears the kernel's ruleset; the next agent start re-applies from the state file.
    run(
        "ip",
        &[
            "netns", "exec", &lab.host, "nft", "delete", "table", "inet", TABLE,
        ],
    );
    lab.assert_reach(&[(OTHER_V6, true)]);
    let restarted = Isolator::new(lab.backend(), state_dir.path());
    match restarted.resume(&lab.probe()).await.expect("resume") {
        ResumeOutcome::Reapplied(s) => assert_eq!(s.command_id, "cmd-2"),
        other => panic!("expected re-applied, got {other:?}"),
    }
    lab.assert_reach(&[(OTHER_V4, true), (OTHER_V6, false), (SERVER_V4, true)]);

    let released = restarted.release().await.expect("release");
    assert_eq!(released.map(|s| s.command_id), Some("cmd-2".into()));
    assert!(!lab.host_tables().contains(TABLE), "{}", lab.host_tables());
    assert!(
        lab.host_tables().contains("hostfw"),
        "only our table is removed"
    );
    assert_eq!(restarted.state().unwrap(), None);
    lab.assert_reach(&everything);
    // Releasing again is harmless.
    assert_eq!(restarted.release().await.expect("release twice"), None);
}

#[tokio::test]
async fn a_server_unreachable_after_isolating_makes_the_isolation_roll_back_by_itself() {
    let lab = lab_or_skip!();
    let state_dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(3);
    let isolator = Isolator::new(lab.backend(), state_dir.path()).with_self_check(SelfCheck {
        timeout,
        ..SelfCheck::default()
    });
    let mut probe = lab.probe();
    probe.cut_first = Some((lab.server.clone(), lab.server_link.clone()));
    let started = Instant::now();
    let err = isolator
        .isolate(isolate("cmd-1", server_policy(vec![]), None), &probe)
        .await
        .expect_err("the self-check must fail");
    let took = started.elapsed();
    assert!(matches!(err, RespondError::RolledBack { .. }), "{err}");
    assert!(
        took < timeout + Duration::from_secs(2),
        "rolled back after {took:?}, timeout {timeout:?}"
    );
    assert!(!lab.host_tables().contains(TABLE), "{}", lab.host_tables());
    assert_eq!(isolator.state().unwrap(), None);
    lab.assert_reach(&[(OTHER_V4, true), (OTHER_V6, true), ("127.0.0.1", true)]);
}

#[tokio::test]
async fn a_timed_isolation_releases_itself() {
    let lab = lab_or_skip!();
    let state_dir = tempfile::tempdir().unwrap();
    let isolator = Isolator::new(lab.backend(), state_dir.path());
    let state = isolator
        .isolate(
            isolate("cmd-1", server_policy(vec![]), Some(Duration::from_secs(2))),
            &lab.probe(),
        )
        .await
        .expect("isolate");
    assert!(state.auto_release_at_unix_ms.is_some());
    lab.assert_reach(&[(OTHER_V4, false), (SERVER_V4, true)]);
    let released = isolator.release_when_due().await.expect("auto-release");
    assert_eq!(released.map(|s| s.command_id), Some("cmd-1".into()));
    assert!(!lab.host_tables().contains(TABLE));
    lab.assert_reach(&[(OTHER_V4, true), (OTHER_V6, true)]);
}

#[tokio::test]
async fn a_connection_opened_before_isolating_is_cut() {
    use std::io::{BufRead, BufReader, Write};
    let lab = lab_or_skip!();
    lab.load_permissive_host_firewall();
    // E.g. a command-and-control session that was open when the isolation came.
    let mut session = Command::new("ip")
        .args([
            "netns", "exec", &lab.host, "python3", "-c", SESSION, OTHER_V4, PORT,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = session.stdin.take().unwrap();
    let mut output = BufReader::new(session.stdout.take().unwrap());
    let mut connected = String::new();
    output.read_line(&mut connected).unwrap();
    assert_eq!(connected.trim(), "connected");
    let mut round_trip = || {
        input.write_all(b"\n").unwrap();
        input.flush().unwrap();
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        line.trim().to_owned()
    };
    assert_eq!(round_trip(), "alive");

    let state_dir = tempfile::tempdir().unwrap();
    let isolator = Isolator::new(lab.backend(), state_dir.path());
    isolator
        .isolate(isolate("cmd-1", server_policy(vec![]), None), &lab.probe())
        .await
        .expect("isolate");
    assert_eq!(
        round_trip(),
        "dead",
        "the old connection survived the isolation"
    );

    isolator.release().await.expect("release");
    let _ = session.kill();
    let _ = session.wait();
}

/// The agent's long poll: a request sent before the isolation whose answer (the next command,
/// e.g. the release order) comes after it. No stateful firewall in the namespace, so the
/// isolation's own `ct` rules are what starts connection tracking and the answer is the first
/// packet of that connection conntrack sees. Regression: it counted as `new`, was dropped, and
/// the release order was lost until the poll timed out.
#[tokio::test]
async fn a_server_answer_to_a_request_sent_before_isolating_arrives() {
    use std::io::{BufRead, BufReader};
    const SLOW_SERVER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4)
print("ready", flush=True)
conn, _ = s.accept()
conn.recv(16)
time.sleep(2)
conn.sendall(b"answer")
time.sleep(10)
"#;
    const ASK: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
c.sendall(b"ask")
print("sent", flush=True)
c.settimeout(8)
try:
    print(c.recv(16).decode() or "closed", flush=True)
except OSError as e:
    print("lost: %s" % e, flush=True)
"#;
    let lab = lab_or_skip!();
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server,
            "python3",
            "-c",
            SLOW_SERVER,
            "8081",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut client = Command::new("ip")
        .args([
            "netns", "exec", &lab.host, "python3", "-c", ASK, SERVER_V4, "8081",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "sent");

    let policy = IsolationPolicy::new(
        vec![SERVER_V4.parse().unwrap(), SERVER_V6.parse().unwrap()],
        vec![8080, 8081],
        Allowances::default(),
    )
    .unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let isolator = Isolator::new(lab.backend(), state_dir.path());
    isolator
        .isolate(isolate("cmd-1", policy, None), &lab.probe())
        .await
        .expect("isolate");
    line.clear();
    output.read_line(&mut line).unwrap();
    isolator.release().await.expect("release");
    let _ = server.kill();
    let _ = server.wait();
    let _ = client.wait();
    assert_eq!(
        line.trim(),
        "answer",
        "the server's answer to a request sent before the isolation was dropped"
    );
}
