//! The feed bar: a full sync of N attributes (100,000 by default) from a MISP feed
//! directory. Writes a synthetic feed (events of 10,000 attributes: ip-dst, domain, sha256,
//! url, filename in turn, each with a uuid, a timestamp and the event's TLP tag) into a
//! temporary directory, then times `MispFeed::sync` over it, three times.
//!
//! `cargo run --release -p dozor-intel-sources --example feed_bench [N]`

use std::time::Instant;

use dozor_intel_sources::feed::MispFeed;
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let per_event = 10_000u32;
    let dir = tempfile::tempdir()?;
    let mut manifest = serde_json::Map::new();
    let mut bytes = 0usize;
    let mut e = 0u32;
    let mut written = 0u32;
    while written < n {
        let count = per_event.min(n - written);
        let uuid = format!("5f000000-0000-4000-8000-{e:012x}");
        let attributes: Vec<Value> = (0..count)
            .map(|i| {
                let k = written + i;
                let (t, v) = match k % 5 {
                    0 => (
                        "ip-dst",
                        format!("10.{}.{}.{}", k >> 16, (k >> 8) & 255, k & 255),
                    ),
                    1 => ("domain", format!("host{k}.evil.example")),
                    2 => ("sha256", format!("{k:064x}")),
                    3 => ("url", format!("http://evil.example/p/{k}?q=1")),
                    _ => ("filename", format!("dropper{k}.exe")),
                };
                json!({"uuid": format!("6f000000-0000-4000-8000-{k:012x}"), "type": t,
                       "value": v, "to_ids": true, "timestamp": "1700000000",
                       "category": "Network activity", "comment": ""})
            })
            .collect();
        let event = json!({"Event": {"uuid": uuid, "info": format!("bulk {e}"),
            "timestamp": "1700000000", "Tag": [{"name": "tlp:green"}],
            "Attribute": attributes}})
        .to_string();
        bytes += event.len();
        std::fs::write(dir.path().join(format!("{uuid}.json")), event)?;
        manifest.insert(
            uuid,
            json!({"info": format!("bulk {e}"), "timestamp": 1_700_000_000}),
        );
        written += count;
        e += 1;
    }
    std::fs::write(
        dir.path().join("manifest.json"),
        Value::Object(manifest).to_string(),
    )?;
    println!(
        "feed: {n} attributes in {e} events, {:.1} MB of JSON",
        bytes as f64 / 1e6
    );
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let feed = MispFeed::dir(dir.path(), "bench");
    for run in 1..=3 {
        let started = Instant::now();
        let batch = rt.block_on(feed.sync(None))?;
        let took = started.elapsed();
        println!(
            "run {run}: {} IOCs, {} skipped in {:.3} s ({:.0} attributes/s)",
            batch.iocs.len(),
            batch.skipped.len(),
            took.as_secs_f64(),
            f64::from(n) / took.as_secs_f64()
        );
    }
    Ok(())
}
