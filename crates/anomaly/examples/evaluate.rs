//! Evaluation of the anomaly models on the labelled generator.
//!
//! `cargo run --release -p dozor-anomaly --example evaluate -- [--seed N] [--hosts N]
//! [--days N] [--train-days N] [--no-timing | --timing-only]`
//!
//! 1. Generates a fleet (default 200 hosts x 14 days) with injected anomalies from day
//!    `train-days` on; the per-entity models learn days 0..train-days (observe only), then
//!    score-and-learn the rest online. Prints precision (findings on injected events or
//!    buckets / all findings) per model and recall (injections caught by the model meant
//!    for them) per kind.
//! 2. Isolation forest over per-(host, hour) feature vectors: trained on days 3..train-days,
//!    ROC AUC on the test days (a bucket is positive when it holds an injected event).
//! 3. The same fleet without injections: false alerts per 100 hosts per day.
//! 4. Timing: forest training on 1,000,000 rows x 6 features; scoring rows per CPU-second.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use cpu_time::ProcessTime;
use dozor_anomaly::generator::{AnomalyKind, Event, EventKind, Generator, GeneratorConfig};
use dozor_anomaly::{
    CountBurstConfig, CountBurstModel, Finding, ForestParams, IsolationForest, RareValueConfig,
    RareValueModel, SplitMix64, UnusualHourConfig, UnusualHourModel, roc_auc,
};

struct Options {
    seed: u64,
    hosts: usize,
    days: u32,
    train_days: u32,
    timing: bool,
    timing_only: bool,
}

fn options() -> Options {
    let mut options = Options {
        seed: 2,
        hosts: 200,
        days: 14,
        train_days: 10,
        timing: true,
        timing_only: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < args.len() {
        let value = args.get(index + 1).map(String::as_str).unwrap_or("");
        match args[index].as_str() {
            "--seed" => options.seed = value.parse().unwrap_or(options.seed),
            "--hosts" => options.hosts = value.parse().unwrap_or(options.hosts),
            "--days" => options.days = value.parse().unwrap_or(options.days),
            "--train-days" => options.train_days = value.parse().unwrap_or(options.train_days),
            "--no-timing" => {
                options.timing = false;
                index += 1;
                continue;
            }
            "--timing-only" => {
                options.timing_only = true;
                index += 1;
                continue;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        index += 2;
    }
    options
}

/// The per-entity models with their default settings, as a deployment would configure them.
struct Models {
    rare_process: RareValueModel,
    rare_pair: RareValueModel,
    rare_source: RareValueModel,
    new_destination: RareValueModel,
    new_port: RareValueModel,
    logon_hour: UnusualHourModel,
    failed_burst: CountBurstModel,
    volume: CountBurstModel,
}

impl Models {
    fn new() -> Self {
        let mut volume = CountBurstConfig::new("volume_spike", "host.name", "events");
        // Event volume is never sparse: demand a real jump over a busy hour.
        volume.min_count = 50;
        Self {
            rare_process: RareValueModel::new(RareValueConfig::new(
                "rare_process",
                "host.name",
                "process.name",
            )),
            rare_pair: RareValueModel::new(RareValueConfig::new(
                "rare_parent_child",
                "host.name",
                "process.parent.name->process.name",
            )),
            rare_source: RareValueModel::new(RareValueConfig::new(
                "rare_logon_source",
                "user.name",
                "source.ip",
            )),
            new_destination: RareValueModel::new(RareValueConfig::new(
                "new_destination",
                "host.name|process.name",
                "destination.ip:destination.port",
            )),
            new_port: RareValueModel::new(RareValueConfig::new(
                "new_listening_port",
                "host.name",
                "destination.port",
            )),
            logon_hour: UnusualHourModel::new(UnusualHourConfig::new(
                "unusual_logon_hour",
                "user.name",
                "logon",
            )),
            failed_burst: CountBurstModel::new(CountBurstConfig::new(
                "failed_logon_burst",
                "host.name",
                "failed logons",
            )),
            volume: CountBurstModel::new(volume),
        }
    }

    /// Observes (training) or scores-then-observes (test) one event.
    fn event(&mut self, event: &Event, score: bool) -> Vec<Finding> {
        let mut findings = Vec::new();
        let time = event.timestamp;
        let mut run = |model: &mut RareValueModel, entity: &str, value: &str| {
            if score {
                findings.extend(model.process(entity, value, time));
            } else {
                model.observe(entity, value, time);
            }
        };
        match event.kind {
            EventKind::ProcessStart => {
                let process = event.field("process.name").unwrap_or("");
                let parent = event.field("process.parent.name").unwrap_or("");
                run(&mut self.rare_process, &event.host, process);
                run(
                    &mut self.rare_pair,
                    &event.host,
                    &format!("{parent}->{process}"),
                );
            }
            EventKind::NetworkConnection => {
                let process = event.field("process.name").unwrap_or("");
                let destination = format!(
                    "{}:{}",
                    event.field("destination.ip").unwrap_or(""),
                    event.field("destination.port").unwrap_or("")
                );
                run(
                    &mut self.new_destination,
                    &format!("{}|{process}", event.host),
                    &destination,
                );
            }
            EventKind::Listen => {
                let port = event.field("destination.port").unwrap_or("");
                // Windows' dynamic port range (49152-65535) churns by design; deployments
                // leave it out of the new-listening-port detector.
                if port.parse::<u16>().is_ok_and(|p| p < 49_152) {
                    run(&mut self.new_port, &event.host, port);
                }
            }
            EventKind::Logon => {
                let user = event.user.as_deref().unwrap_or("");
                run(
                    &mut self.rare_source,
                    user,
                    event.field("source.ip").unwrap_or(""),
                );
                if score {
                    findings.extend(self.logon_hour.process(user, time));
                } else {
                    self.logon_hour.observe(user, time);
                }
            }
            EventKind::LogonFailed => {}
        }
        findings
    }
}

/// Per-(host, hour) bucket of one day.
#[derive(Default, Clone)]
struct Bucket {
    events: f64,
    process_starts: f64,
    connections: f64,
    logons: f64,
    failed: f64,
    processes: HashSet<String>,
    new_processes: f64,
    new_pairs: f64,
    new_destinations: f64,
    new_ports: f64,
    new_sources: f64,
    off_hours_logons: f64,
    /// Injection ids and kinds of labelled events in the bucket.
    labels: BTreeSet<(u32, AnomalyKind)>,
}

const FEATURES: [&str; 13] = [
    "events_log",
    "process_starts_log",
    "connections_log",
    "logons",
    "failed_logons_log",
    "distinct_processes",
    "new_processes",
    "new_parent_child",
    "new_destinations",
    "new_listening_ports",
    "new_logon_sources",
    "off_hours_logons",
    "volume_vs_usual_log",
];

/// What the fleet has shown so far, for the forest's novelty features (online, like the
/// per-entity models).
#[derive(Default)]
struct Knowledge {
    processes: HashSet<(String, String)>,
    pairs: HashSet<(String, String)>,
    destinations: HashMap<(String, String), HashMap<String, u32>>,
    destination_totals: HashMap<(String, String), u32>,
    ports: HashSet<(String, String)>,
    sources: HashSet<(String, String)>,
    logon_hours: HashMap<String, [u32; 24]>,
    /// Events per host per hour of day on earlier days.
    volumes: HashMap<String, Vec<Vec<f64>>>,
}

impl Knowledge {
    fn event(&mut self, event: &Event, bucket: &mut Bucket) {
        let host = event.host.clone();
        bucket.events += 1.0;
        if let Some(label) = event.label {
            bucket.labels.insert((label.injection, label.kind));
        }
        match event.kind {
            EventKind::ProcessStart => {
                bucket.process_starts += 1.0;
                let process = event.field("process.name").unwrap_or("").to_string();
                let parent = event.field("process.parent.name").unwrap_or("");
                bucket.processes.insert(process.clone());
                if self.processes.insert((host.clone(), process.clone())) {
                    bucket.new_processes += 1.0;
                }
                if self.pairs.insert((host, format!("{parent}->{process}"))) {
                    bucket.new_pairs += 1.0;
                }
            }
            EventKind::NetworkConnection => {
                bucket.connections += 1.0;
                let key = (host, event.field("process.name").unwrap_or("").to_string());
                let destination = format!(
                    "{}:{}",
                    event.field("destination.ip").unwrap_or(""),
                    event.field("destination.port").unwrap_or("")
                );
                let seen = self.destinations.entry(key.clone()).or_default();
                let total = self.destination_totals.entry(key).or_insert(0);
                // Only quiet processes (few distinct destinations) make novelty count.
                let quiet = *total >= 20 && (seen.len() as f64) <= 0.1 * f64::from(*total);
                if !seen.contains_key(&destination) && quiet {
                    bucket.new_destinations += 1.0;
                }
                *seen.entry(destination).or_insert(0) += 1;
                *total += 1;
            }
            EventKind::Listen => {
                let port = event.field("destination.port").unwrap_or("").to_string();
                if self.ports.insert((host, port)) {
                    bucket.new_ports += 1.0;
                }
            }
            EventKind::Logon => {
                bucket.logons += 1.0;
                let user = event.user.clone().unwrap_or_default();
                let source = event.field("source.ip").unwrap_or("").to_string();
                if self.sources.insert((user.clone(), source)) {
                    bucket.new_sources += 1.0;
                }
                let hours = self.logon_hours.entry(user).or_insert([0; 24]);
                let hour = (event.timestamp.rem_euclid(86_400) / 3600) as usize;
                let total: u32 = hours.iter().sum();
                let near = hours[hour] + hours[(hour + 1) % 24] + hours[(hour + 23) % 24];
                if total >= 20 && f64::from(near) < 0.02 * f64::from(total) {
                    bucket.off_hours_logons += 1.0;
                }
                hours[hour] += 1;
            }
            EventKind::LogonFailed => bucket.failed += 1.0,
        }
    }

    fn features(&self, host: &str, hour: usize, bucket: &Bucket) -> Vec<f64> {
        let usual = self
            .volumes
            .get(host)
            .map(|hours| median(&hours[hour]))
            .unwrap_or(bucket.events);
        vec![
            bucket.events.ln_1p(),
            bucket.process_starts.ln_1p(),
            bucket.connections.ln_1p(),
            bucket.logons,
            bucket.failed.ln_1p(),
            bucket.processes.len() as f64,
            bucket.new_processes,
            bucket.new_pairs,
            bucket.new_destinations,
            bucket.new_ports,
            bucket.new_sources,
            bucket.off_hours_logons,
            ((bucket.events + 1.0) / (usual + 1.0)).ln(),
        ]
    }

    fn end_of_day(&mut self, host: &str, volumes: &[f64; 24]) {
        let history = self
            .volumes
            .entry(host.to_string())
            .or_insert_with(|| vec![Vec::new(); 24]);
        for (hour, &volume) in volumes.iter().enumerate() {
            history[hour].push(volume);
        }
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[derive(Default)]
struct Tally {
    /// Per finding kind: (findings on injected events/buckets, all findings).
    precision: BTreeMap<String, (u64, u64)>,
    /// Per anomaly kind: injections caught by the model of that kind.
    detected: BTreeMap<AnomalyKind, BTreeSet<u32>>,
    examples: BTreeMap<String, String>,
}

impl Tally {
    fn record(&mut self, finding: &Finding, labels: &BTreeSet<(u32, AnomalyKind)>) {
        let entry = self.precision.entry(finding.kind.clone()).or_insert((0, 0));
        entry.1 += 1;
        if !labels.is_empty() {
            entry.0 += 1;
        }
        for &(injection, kind) in labels {
            if kind.name() == finding.kind {
                self.detected.entry(kind).or_default().insert(injection);
            }
        }
        if labels.is_empty() && std::env::var_os("EVALUATE_VERBOSE").is_some() {
            println!("  benign finding: {}", finding.message);
        }
        self.examples
            .entry(format!(
                "{}{}",
                finding.kind,
                if labels.is_empty() { " (benign)" } else { "" }
            ))
            .or_insert_with(|| finding.message.clone());
    }
}

struct RunResult {
    events: usize,
    tally: Tally,
    forest_auc: Option<f64>,
    forest_train_rows: usize,
    forest_test_rows: usize,
    forest_positives: usize,
    top_explanations: Vec<String>,
}

fn run(generator: &Generator, train_days: u32) -> RunResult {
    let config = generator.config();
    let hosts: Vec<String> = generator
        .host_names()
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut models = Models::new();
    let mut knowledge = Knowledge::default();
    let mut tally = Tally::default();
    let mut train_rows = Vec::new();
    let mut test_rows = Vec::new();
    let mut test_labels = Vec::new();
    let mut test_descriptions = Vec::new();
    let empty = BTreeSet::new();
    let mut event_count = 0;
    for day in 0..config.days {
        let events = generator.day(day);
        event_count += events.len();
        let scoring = day >= train_days;
        let day_start = config.start + i64::from(day) * 86_400;
        let mut buckets: HashMap<(String, usize), Bucket> = HashMap::new();
        for event in &events {
            let hour = ((event.timestamp - day_start).clamp(0, 86_399) / 3600) as usize;
            let bucket = buckets.entry((event.host.clone(), hour)).or_default();
            knowledge.event(event, bucket);
            for finding in models.event(event, scoring) {
                let labels: BTreeSet<(u32, AnomalyKind)> = event
                    .label
                    .map(|l| BTreeSet::from([(l.injection, l.kind)]))
                    .unwrap_or_default();
                tally.record(&finding, &labels);
            }
        }
        for host in &hosts {
            let mut volumes = [0.0; 24];
            for (hour, volume) in volumes.iter_mut().enumerate() {
                let bucket = buckets.get(&(host.clone(), hour));
                let time = day_start + hour as i64 * 3600;
                let (events, failed) =
                    bucket.map_or((0, 0), |b| (b.events as u64, b.failed as u64));
                *volume = events as f64;
                let labels = bucket.map_or(&empty, |b| &b.labels);
                if scoring {
                    for finding in models
                        .failed_burst
                        .process_bucket(host, time, failed)
                        .into_iter()
                        .chain(models.volume.process_bucket(host, time, events))
                    {
                        tally.record(&finding, labels);
                    }
                } else {
                    models.failed_burst.observe_bucket(host, time, failed);
                    models.volume.observe_bucket(host, time, events);
                }
                let default = Bucket::default();
                let features = knowledge.features(host, hour, bucket.unwrap_or(&default));
                if scoring {
                    test_labels.push(!labels.is_empty());
                    test_descriptions.push(format!("{host} day {day} {hour:02}:00"));
                    test_rows.push(features);
                } else if day >= 3 {
                    train_rows.push(features);
                }
            }
            knowledge.end_of_day(host, &volumes);
        }
    }

    let forest = IsolationForest::fit_named(&train_rows, &FEATURES, &ForestParams::default())
        .expect("forest training on generated features");
    let scores = forest.score_many(&test_rows).expect("feature width");
    let forest_auc = roc_auc(&scores, &test_labels);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let top_explanations = order
        .iter()
        .take(3)
        .map(|&i| {
            let explanation = forest.explain(&test_rows[i], 2).expect("feature width");
            let parts: Vec<String> = explanation
                .features
                .iter()
                .map(|f| f.text.clone())
                .collect();
            format!(
                "{} score {:.3} injected={}: {}",
                test_descriptions[i],
                explanation.score,
                test_labels[i],
                parts.join("; ")
            )
        })
        .collect();
    RunResult {
        events: event_count,
        tally,
        forest_auc,
        forest_train_rows: train_rows.len(),
        forest_test_rows: test_rows.len(),
        forest_positives: test_labels.iter().filter(|&&l| l).count(),
        top_explanations,
    }
}

fn timing() {
    const ROWS: usize = 1_000_000;
    const WIDTH: usize = 6;
    let mut rng = SplitMix64::new(42);
    let values: Vec<f64> = (0..ROWS * WIDTH)
        .map(|i| (i % WIDTH) as f64 * 10.0 + rng.normal())
        .collect();
    let wall = Instant::now();
    let cpu = ProcessTime::now();
    let forest = IsolationForest::fit_matrix(&values, WIDTH, &[], &ForestParams::default())
        .expect("training on generated rows");
    let train_cpu = cpu.elapsed().as_secs_f64();
    let train_wall = wall.elapsed().as_secs_f64();
    let cpu = ProcessTime::now();
    let scores = forest.score_matrix(&values).expect("width");
    let score_cpu = cpu.elapsed().as_secs_f64();
    let mean: f64 = scores.iter().sum::<f64>() / scores.len() as f64;
    println!(
        "training 1,000,000 rows x {WIDTH} features (100 trees, sample 256): {train_wall:.3} s wall, {train_cpu:.3} s CPU"
    );
    println!(
        "scoring 1,000,000 rows: {score_cpu:.3} s CPU = {:.0} rows per CPU-second (mean score {mean:.3})",
        ROWS as f64 / score_cpu
    );
    let cpu = ProcessTime::now();
    let mut shares = 0.0;
    for row in values.chunks_exact(WIDTH).take(100_000) {
        shares += forest.attribution(row).expect("width")[0];
    }
    let attribution_cpu = cpu.elapsed().as_secs_f64();
    println!(
        "attribution of 100,000 rows: {:.0} rows per CPU-second (checksum {shares:.1})",
        100_000.0 / attribution_cpu
    );
}

fn main() {
    let options = options();
    if options.timing_only {
        timing();
        return;
    }
    let config = GeneratorConfig {
        hosts: options.hosts,
        days: options.days,
        seed: options.seed,
        anomaly_from_day: options.train_days,
        ..GeneratorConfig::default()
    };
    let test_days = options.days.saturating_sub(options.train_days);
    println!(
        "seed {}: {} hosts x {} days, training days 0..{}, scoring {} days",
        options.seed, options.hosts, options.days, options.train_days, test_days
    );

    let wall = Instant::now();
    let generator = Generator::new(config.clone());
    let result = run(&generator, options.train_days);
    let injected = generator.injections();
    println!(
        "\n== Per-entity models (injected run: {} events, {} injections) ==",
        result.events,
        injected.len()
    );
    println!(
        "{:<22} {:>9} {:>9} {:>10} {:>8}",
        "kind", "findings", "on_injected", "precision", "recall"
    );
    for kind in AnomalyKind::ALL {
        let (hits, total) = result
            .tally
            .precision
            .get(kind.name())
            .copied()
            .unwrap_or((0, 0));
        let injections = injected.iter().filter(|i| i.kind == kind).count();
        let caught = result.tally.detected.get(&kind).map_or(0, BTreeSet::len);
        let precision = if total > 0 {
            hits as f64 / total as f64
        } else {
            f64::NAN
        };
        println!(
            "{:<22} {total:>9} {hits:>11} {precision:>10.3} {:>8.3}  ({caught}/{injections})",
            kind.name(),
            caught as f64 / injections.max(1) as f64
        );
    }
    if std::env::var_os("EVALUATE_VERBOSE").is_some() {
        for (id, injection) in injected.iter().enumerate() {
            let caught = result
                .tally
                .detected
                .get(&injection.kind)
                .is_some_and(|ids| ids.contains(&(id as u32)));
            if !caught {
                println!("  missed: {injection:?}");
            }
        }
    }
    println!(
        "\n== Isolation forest over (host, hour) buckets ==\ntrain rows {}, test rows {} ({} with injected events), ROC AUC {:.4}",
        result.forest_train_rows,
        result.forest_test_rows,
        result.forest_positives,
        result.forest_auc.unwrap_or(f64::NAN)
    );
    for line in &result.top_explanations {
        println!("  top: {line}");
    }

    let benign_config = GeneratorConfig {
        anomalies_per_kind: 0,
        ..config
    };
    let benign = run(&Generator::new(benign_config), options.train_days);
    let host_days = (options.hosts as f64) * f64::from(test_days);
    let total: u64 = benign.tally.precision.values().map(|&(_, all)| all).sum();
    println!(
        "\n== Benign-only run (same fleet, no injections: {} events) ==",
        benign.events
    );
    for (kind, &(_, all)) in &benign.tally.precision {
        println!(
            "{kind:<22} {all:>5} false alerts = {:.3} per 100 hosts per day",
            all as f64 * 100.0 / host_days
        );
    }
    println!(
        "all models: {total} false alerts over {host_days} host-days = {:.3} per 100 hosts per day",
        total as f64 * 100.0 / host_days
    );
    println!("\n== Example messages ==");
    for (kind, message) in result
        .tally
        .examples
        .iter()
        .chain(benign.tally.examples.iter())
    {
        println!("[{kind}] {message}");
    }
    println!(
        "\nevaluation wall time {:.1} s",
        wall.elapsed().as_secs_f64()
    );

    if options.timing {
        println!("\n== Timing ==");
        timing();
    }
}
