//! The network collector against sockets this test opens.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::{Harness, all_off, str_at};
use dozor_collect::CollectorState;
use serde_json::Value;

fn action(v: &Value) -> &str {
    str_at(v, "/event/action").unwrap_or("")
}

#[test]
fn listeners_and_connections_with_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.network.enabled = Some(true);
    config.network.poll_interval_ms = Some(200);
    config.network.report_close = Some(true);
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("network");
    assert_eq!(status.state, CollectorState::Running, "{status:?}");
    let me = std::process::id();
    let own_exe = std::fs::read_link("/proc/self/exe").expect("exe");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let l = h.wait_for("listener", 20, |v| {
        action(v) == "listening" && v["source"]["port"] == port
    });
    assert_eq!(l["source"]["ip"], "127.0.0.1");
    assert_eq!(l["network"]["transport"], "tcp");
    assert_eq!(l["network"]["type"], "ipv4");
    assert_eq!(l["process"]["pid"], me);
    assert_eq!(str_at(&l, "/process/executable"), own_exe.to_str());
    assert_eq!(l["event"]["type"], serde_json::json!(["start"]));
    assert_eq!(l["event"]["category"], serde_json::json!(["network"]));

    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, peer) = listener.accept().expect("accept");
    client.write_all(b"x").expect("write");
    let mut b = [0u8; 1];
    server.read_exact(&mut b).expect("read");
    let out = h.wait_for("outbound connection", 20, |v| {
        action(v) == "connection-established"
            && v["destination"]["port"] == port
            && v["network"]["direction"] == "outbound"
    });
    assert_eq!(out["source"]["port"], peer.port());
    assert_eq!(out["process"]["pid"], me);
    assert_eq!(
        out["event"]["type"],
        serde_json::json!(["connection", "start"])
    );
    let inb = h.wait_for("inbound connection", 20, |v| {
        action(v) == "connection-established"
            && v["destination"]["port"] == port
            && v["network"]["direction"] == "inbound"
    });
    assert_eq!(inb["source"]["port"], peer.port());
    assert_eq!(inb["process"]["pid"], me);

    let udp = UdpSocket::bind("[::1]:0").expect("udp bind");
    let uport = udp.local_addr().expect("addr").port();
    let u = h.wait_for("udp listener", 20, |v| {
        action(v) == "listening" && v["source"]["port"] == uport
    });
    assert_eq!(u["network"]["transport"], "udp");
    assert_eq!(u["network"]["type"], "ipv6");
    assert_eq!(u["source"]["ip"], "::1");

    drop(client);
    drop(server);
    let closed = h.wait_for("connection closed", 20, |v| {
        action(v) == "connection-closed" && v["source"]["port"] == peer.port()
    });
    assert_eq!(
        closed["event"]["type"],
        serde_json::json!(["connection", "end"])
    );
    drop(listener);
    h.wait_for("listener closed", 20, |v| {
        action(v) == "listening-stopped" && v["source"]["port"] == port
    });
    // Each socket is reported once.
    h.drain_for(Duration::from_millis(500));
    assert_eq!(
        h.count(|v| action(v) == "listening" && v["source"]["port"] == port),
        1
    );
    h.stop();
}

#[test]
fn excluded_ports_baseline_and_no_close_events_at_standard() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Existing before the start: part of the baseline, not reported.
    let existing = TcpListener::bind("127.0.0.1:0").expect("bind");
    let existing_port = existing.local_addr().expect("addr").port();
    // A free port to exclude, bound again after the start.
    let excluded_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut config = all_off();
    config.network.enabled = Some(true);
    config.network.poll_interval_ms = Some(200);
    config.network.exclude_ports = vec![excluded_port];
    let h = Harness::start(&config, dir.path());
    h.wait_ready("network");
    let excluded = TcpListener::bind(("127.0.0.1", excluded_port)).expect("rebind excluded port");
    std::thread::sleep(Duration::from_millis(300));
    let marker = TcpListener::bind("127.0.0.1:0").expect("bind");
    let marker_port = marker.local_addr().expect("addr").port();
    h.wait_for("marker listener", 20, |v| {
        action(v) == "listening" && v["source"]["port"] == marker_port
    });
    drop(marker);
    h.drain_for(Duration::from_millis(800));
    assert_eq!(
        h.count(|v| action(v) == "listening-stopped"),
        0,
        "no close events at standard"
    );
    assert_eq!(
        h.count(|v| v["source"]["port"] == existing_port),
        0,
        "baseline reported"
    );
    assert_eq!(
        h.count(|v| v["source"]["port"] == excluded_port),
        0,
        "excluded port reported"
    );
    drop(existing);
    drop(excluded);
    h.stop();
}

/// A TCP connection to 127.0.0.1 opened and closed within a few milliseconds, with polls a
/// minute apart: only the kernel's socket events can see it. Where they are not available the
/// collector must say that it polls.
#[test]
fn short_connection_is_reported_by_the_kernel_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.network.enabled = Some(true);
    config.network.poll_interval_ms = Some(60_000);
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("network");
    if status.source.as_deref() != Some("netlink-sock-diag") {
        eprintln!(
            "kernel socket events are not active here ({:?}: {}); checking the fallback",
            status.state,
            status.message.as_deref().unwrap_or("")
        );
        assert_eq!(status.source.as_deref(), Some("procfs-poll"), "{status:?}");
        assert_eq!(status.state, CollectorState::Degraded, "{status:?}");
        assert!(
            status
                .message
                .as_deref()
                .is_some_and(|m| m.contains("polling /proc/net every 60000 ms")),
            "{status:?}"
        );
        h.stop();
        return;
    }
    assert_eq!(status.state, CollectorState::Running, "{status:?}");
    let me = std::process::id();
    let own_exe = std::fs::read_link("/proc/self/exe").expect("exe");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let started = std::time::Instant::now();
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, peer) = listener.accept().expect("accept");
    client.write_all(b"ping").expect("write");
    let mut b = [0u8; 4];
    server.read_exact(&mut b).expect("read");
    server.write_all(b"pong!").expect("write");
    let mut b = [0u8; 5];
    client.read_exact(&mut b).expect("read");
    drop(client);
    drop(server);
    eprintln!("connection lived {:?}", started.elapsed());

    let out = h.wait_for("outbound short connection", 10, |v| {
        action(v) == "connection-closed"
            && v["source"]["port"] == peer.port()
            && v["network"]["direction"] == "outbound"
    });
    assert_eq!(
        out["event"]["type"],
        serde_json::json!(["connection", "end"])
    );
    assert_eq!(out["event"]["category"], serde_json::json!(["network"]));
    assert_eq!(out["dozor"]["network"]["short_lived"], true);
    assert_eq!(out["source"]["ip"], "127.0.0.1");
    assert_eq!(out["destination"]["ip"], "127.0.0.1");
    assert_eq!(out["destination"]["port"], port);
    assert_eq!(out["network"]["transport"], "tcp");
    assert_eq!(out["network"]["type"], "ipv4");
    assert_eq!(out["source"]["bytes"], 4, "client to server");
    assert_eq!(out["destination"]["bytes"], 5, "server to client");
    assert_eq!(out["network"]["bytes"], 9);

    let inb = h.wait_for("inbound short connection", 10, |v| {
        action(v) == "connection-closed"
            && v["source"]["port"] == peer.port()
            && v["network"]["direction"] == "inbound"
    });
    assert_eq!(inb["destination"]["port"], port);
    assert_eq!(inb["dozor"]["network"]["short_lived"], true);
    assert_eq!(inb["source"]["bytes"], 4);
    assert_eq!(inb["destination"]["bytes"], 5);
    // The listener's process, found through the kernel's listener dump (no poll ran).
    assert_eq!(inb["process"]["pid"], me);
    assert_eq!(str_at(&inb, "/process/executable"), own_exe.to_str());
    let l = h.wait_for("listener from the kernel dump", 10, |v| {
        action(v) == "listening" && v["source"]["port"] == port
    });
    assert_eq!(l["process"]["pid"], me);

    h.drain_for(Duration::from_millis(300));
    assert_eq!(
        h.count(|v| action(v) == "connection-closed" && v["source"]["port"] == peer.port()),
        2,
        "one event per side"
    );
    drop(listener);
    h.stop();
}

/// A connection the polls saw is closed exactly once per side, whichever of the poll and the
/// kernel event notices first.
#[test]
fn polled_connection_is_closed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.network.enabled = Some(true);
    config.network.poll_interval_ms = Some(100);
    config.network.report_close = Some(true);
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("network");
    eprintln!("network source: {:?}", status.source);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (server, peer) = listener.accept().expect("accept");
    for direction in ["outbound", "inbound"] {
        h.wait_for(direction, 20, |v| {
            action(v) == "connection-established"
                && v["source"]["port"] == peer.port()
                && v["network"]["direction"] == direction
        });
    }
    drop(client);
    drop(server);
    for direction in ["outbound", "inbound"] {
        h.wait_for(direction, 20, |v| {
            action(v) == "connection-closed"
                && v["source"]["port"] == peer.port()
                && v["network"]["direction"] == direction
        });
    }
    h.drain_for(Duration::from_millis(500));
    let closed = |v: &Value| action(v) == "connection-closed" && v["source"]["port"] == peer.port();
    assert_eq!(h.count(closed), 2, "one close per side");
    assert_eq!(
        h.count(|v| closed(v) && v.pointer("/dozor/network/short_lived").is_some()),
        0
    );
    drop(listener);
    h.stop();
}

#[test]
fn poll_mode_reports_itself_as_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = all_off();
    config.network.enabled = Some(true);
    config.network.mode = dozor_collect::NetworkMode::Poll;
    config.network.poll_interval_ms = Some(250);
    let h = Harness::start(&config, dir.path());
    let status = h.wait_ready("network");
    assert_eq!(status.state, CollectorState::Running, "{status:?}");
    assert_eq!(status.source.as_deref(), Some("procfs-poll"));
    assert_eq!(
        status.message.as_deref(),
        Some("polling /proc/net every 250 ms")
    );
    assert!(h.health.problems().is_empty());
    h.stop();
}
