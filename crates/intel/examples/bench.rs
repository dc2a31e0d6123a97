//! The matcher index at scale: builds an index of synthetic IOCs of mixed kinds and reports
//! build time, resident memory and lookup rates.
//!
//! `cargo run --release -p dozor-intel --example bench [COUNT]` (COUNT defaults to 1,000,000).

use std::hint::black_box;
use std::time::Instant;

use dozor_intel::{IocIndex, IocKind};

/// VmRSS of this process in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A memory figure of /proc/self/status in KiB (Linux), 0 elsewhere.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// SplitMix64: a deterministic value stream, so IOC `i` can be regenerated for queries.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hex(seed: u64, digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    let mut i = 0;
    while out.len() < digits {
        out.push_str(&format!("{:016x}", mix(seed ^ i)));
        i += 1;
    }
    out.truncate(digits);
    out
}

/// The `i`-th synthetic IOC (`salt` 0) or a value of the same kind that is not one (`salt` 1).
/// Mix: 35% IPv4, 5% IPv6, 5% CIDR, 20% domains, 5% host names, 10% URLs, 8% MD5, 5% SHA-1,
/// 5% SHA-256, 2% file names.
fn ioc(i: u64, salt: u64) -> (IocKind, String) {
    let r = mix(i.wrapping_mul(2).wrapping_add(salt) ^ 0x5eed);
    let name = format!("h{:x}.example{}", r & 0xff_ffff_ffff, (r >> 40) % 1000);
    match i % 100 {
        0..35 => (IocKind::Ip, std::net::Ipv4Addr::from(r as u32).to_string()),
        35..40 => (
            IocKind::Ip,
            std::net::Ipv6Addr::from(u128::from(r) | (0x2001_0db8u128 << 96)).to_string(),
        ),
        40..45 => {
            let len = 16 + (r >> 33) % 15;
            (
                IocKind::Cidr,
                format!("{}/{len}", std::net::Ipv4Addr::from(r as u32)),
            )
        }
        45..65 => (IocKind::Domain, name),
        65..70 => (IocKind::Hostname, format!("www.{name}")),
        70..80 => (IocKind::Url, format!("http://{name}/p/{:x}.php", r >> 20)),
        80..88 => (IocKind::Md5, hex(r, 32)),
        88..93 => (IocKind::Sha1, hex(r, 40)),
        93..98 => (IocKind::Sha256, hex(r, 64)),
        _ => (IocKind::Filename, format!("{:x}.exe", r)),
    }
}

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rss_before = rss_kib();
    let start = Instant::now();
    let mut builder = IocIndex::builder();
    for i in 0..count {
        let (kind, value) = ioc(i, 0);
        if let Err(e) = builder.add(i as u32, kind, &value) {
            eprintln!("ioc {i}: {e}");
        }
    }
    let index = builder.build();
    let build = start.elapsed();
    let rss_after = rss_kib();
    let peak = status_kib("VmHWM:");
    println!("IOCs: {count} ({} distinct keys)", index.len());
    println!("build: {:.2} s", build.as_secs_f64());
    println!(
        "RSS: {:.1} MiB before, {:.1} MiB after ({:.1} MiB for the index), peak {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    // Queries prepared up front so the timing covers lookups only. Observed values arrive in
    // their event's spelling; domains and IPs are checked as an event field would be.
    let queries: Vec<(IocKind, String)> = (0..200_000u64)
        .map(|q| {
            let i = mix(q) % count;
            let (kind, value) = ioc(i, q % 2);
            let kind = match kind {
                IocKind::Cidr => IocKind::Ip,
                IocKind::Hostname => IocKind::Domain,
                k => k,
            };
            let value = match kind {
                IocKind::Ip => value.split('/').next().unwrap_or_default().to_owned(),
                IocKind::Domain => format!("a.b.{value}"),
                _ => value,
            };
            (kind, value)
        })
        .collect();
    let mut hits = 0u64;
    let rounds = 5;
    let start = Instant::now();
    for _ in 0..rounds {
        for (kind, value) in &queries {
            index.lookup(*kind, value, &mut |_, ids| hits += ids.len() as u64);
        }
    }
    let elapsed = start.elapsed();
    let lookups = (queries.len() * rounds) as f64;
    println!(
        "lookups: {:.0}/s ({:.0} ns each, mixed kinds, half hits; {} ids found)",
        lookups / elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / lookups,
        hits / rounds as u64
    );
    for kind in [IocKind::Ip, IocKind::Domain, IocKind::Url, IocKind::Sha256] {
        let sample: Vec<&(IocKind, String)> = queries.iter().filter(|(k, _)| *k == kind).collect();
        let start = Instant::now();
        for _ in 0..rounds {
            for (kind, value) in &sample {
                index.lookup(*kind, value, &mut |_, ids| {
                    black_box(ids);
                });
            }
        }
        let n = (sample.len() * rounds) as f64;
        println!(
            "  {kind}: {:.0} ns per lookup",
            start.elapsed().as_nanos() as f64 / n
        );
    }

    // A whole ECS event (a network connection with DNS, URL and file hashes; 40 leaves).
    let event = serde_json::json!({
        "@timestamp": "2026-04-17T05:24:53Z",
        "event": {"kind": "event", "category": ["network"], "type": ["connection"], "id": "x"},
        "agent": {"id": "a1", "name": "host-1", "type": "dozor-agent", "version": "0.1.0"},
        "host": {"name": "host-1", "ip": ["10.0.0.5"], "os": {"family": "linux"}},
        "source": {"ip": "10.0.0.5", "port": 51515},
        "destination": {"ip": queries[0].1.clone(), "port": 443, "domain": "cdn.example.org"},
        "dns": {"question": {"name": "beacon.h1.example7"}},
        "url": {"full": "https://cdn.example.org/a/b.js", "domain": "cdn.example.org"},
        "process": {"pid": 42, "name": "curl", "executable": "/usr/bin/curl",
                    "command_line": "curl https://cdn.example.org/a/b.js",
                    "hash": {"sha256": hex(7, 64)}},
        "file": {"name": "b.js", "path": "/tmp/b.js", "hash": {"md5": hex(8, 32), "sha1": hex(9, 40)}},
        "user": {"name": "alice"},
        "user_agent": {"original": "curl/8.5.0"},
        "network": {"transport": "tcp", "protocol": "https"},
        "message": "connection"
    });
    let events = 200_000;
    let start = Instant::now();
    let mut matched = 0;
    for _ in 0..events {
        matched += black_box(index.match_event(black_box(&event))).len();
    }
    let elapsed = start.elapsed();
    println!(
        "match_event: {:.0} events/s ({:.2} µs each, {} matches per event)",
        events as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / events as f64,
        matched / events
    );
}
