//! Runs the collectors and prints their events as JSON lines: a way to watch them alone.
//!
//! ```sh
//! cargo run -p dozor-collect --example collect -- [config.toml] [state_dir] [seconds]
//! ```
//!
//! The TOML file holds the `[collect]` table's keys (`level = "detailed"`, `[fim]`, ...).
//! Health is printed to stderr every 10 s, and a resource sample at the start and the end.

use std::time::{Duration, Instant};

use dozor_collect::{CollectConfig, CollectorContext, Health, ResourceSampler, Shutdown};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config: CollectConfig = match args.next().filter(|a| !a.is_empty()) {
        Some(path) => toml::from_str(&std::fs::read_to_string(path)?)?,
        None => CollectConfig::default(),
    };
    let state_dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("dozor-collect-example"));
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);

    let mut sampler = ResourceSampler::new();
    eprintln!(
        "host: {}",
        serde_json::to_string(&dozor_collect::host_facts())?
    );
    eprintln!("resources: {}", serde_json::to_string(&sampler.sample(3))?);

    let (tx, rx) = crossbeam_channel::bounded(4096);
    let shutdown = Shutdown::new();
    let health = Health::default();
    let handles = dozor_collect::start(
        &config,
        CollectorContext {
            sender: tx,
            shutdown: shutdown.clone(),
            state_dir,
            health: health.clone(),
        },
    )?;
    let started = Instant::now();
    let mut last_health = Instant::now();
    let mut events = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        if let Ok(event) = rx.recv_timeout(Duration::from_millis(500)) {
            events += 1;
            println!("{event}");
        }
        if last_health.elapsed() >= Duration::from_secs(10) {
            last_health = Instant::now();
            eprintln!("health: {}", serde_json::to_string(&health.snapshot())?);
        }
    }
    shutdown.trigger();
    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    for h in handles {
        let _ = h.join();
    }
    eprintln!("events: {events}");
    eprintln!("health: {}", serde_json::to_string(&health.snapshot())?);
    eprintln!("resources: {}", serde_json::to_string(&sampler.sample(3))?);
    Ok(())
}
