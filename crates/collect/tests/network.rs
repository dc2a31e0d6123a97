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
