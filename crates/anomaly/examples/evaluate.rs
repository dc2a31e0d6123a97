//! Evaluation of Dozor's anomaly detection on the labelled generator, as deployed: every
//! event goes through `Activity::of` (from the generator's ECS JSON) into one `Detector`.
//!
//! `cargo run --release -p dozor-anomaly --example evaluate -- [--seed N] [--hosts N]
//! [--days N] [--train-days N] [--no-timing | --timing-only | --detector-timing]
//! [--mitre DIR | --no-mitre]`
//!
//! 1. Generates a fleet (default 200 hosts x 14 days) with injected anomalies from day
//!    `train-days` on. The detector learns days 0..train-days (observe only), trains its
//!    host-activity forest on the host-hours it kept (days 3.. after the warm-up), then
//!    scores-and-learns the rest online. Prints precision (findings on injected events or
//!    hours / all findings) per finding kind and recall (injections caught by the model meant
//!    for them; for the forest, injections whose host-hour it flagged) per kind.
//! 2. The forest's ROC AUC over the scored host-hours (positive: the hour holds an injected
//!    event).
//! 3. The same fleet without injections: false alerts per 100 hosts per day, all models.
//! 4. The EVTX files of the evtx-to-mitre-attack dataset mixed into the benign fleet's
//!    scoring days (`--mitre DIR`; default `$DOZOR_SHARED_DIR/datasets/evtx-to-mitre-attack`,
//!    `DOZOR_SHARED_DIR` defaulting to /work/shared): each EVTX Computer is mapped to one
//!    generated host, each file is shifted to a random start in the scoring days (relative
//!    times kept). Recall per tactic folder at (host, file) level, precision of findings.
//! 5. Timing: forest training and scoring on 1,000,000 rows x 6 features; the Detector
//!    learning ~1.1M generated events (500 hosts x 14 days) then scoring 14 more days.
//!
//! `EVALUATE_VERBOSE=1` prints every benign finding, every missed injection and every
//! dataset case.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cpu_time::ProcessTime;
use dozor_anomaly::generator::{AnomalyKind, Generator, GeneratorConfig};
use dozor_anomaly::{
    Activity, Detector, Finding, ForestParams, IsolationForest, SplitMix64, roc_auc,
};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// Finding kinds judged on a whole host-hour (their `time` is the hour's start).
const HOURLY_KINDS: [&str; 3] = [
    "volume_spike",
    "failed_logon_burst",
    "unusual_host_activity",
];
const FOREST_KIND: &str = "unusual_host_activity";
const FOREST_SEED: u64 = 7;

struct Options {
    seed: u64,
    hosts: usize,
    days: u32,
    train_days: u32,
    timing: bool,
    timing_only: bool,
    detector_timing_only: bool,
    mitre: Option<PathBuf>,
}

fn default_mitre_dir() -> PathBuf {
    let shared = std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared"));
    shared.join("datasets").join("evtx-to-mitre-attack")
}

fn options() -> Options {
    let mut options = Options {
        seed: 2,
        hosts: 200,
        days: 14,
        train_days: 10,
        timing: true,
        timing_only: false,
        detector_timing_only: false,
        mitre: Some(default_mitre_dir()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < args.len() {
        let value = args.get(index + 1).map(String::as_str).unwrap_or("");
        let flag = |set: &mut bool| {
            *set = true;
            1
        };
        let step = match args[index].as_str() {
            "--seed" => {
                options.seed = value.parse().unwrap_or(options.seed);
                2
            }
            "--hosts" => {
                options.hosts = value.parse().unwrap_or(options.hosts);
                2
            }
            "--days" => {
                options.days = value.parse().unwrap_or(options.days);
                2
            }
            "--train-days" => {
                options.train_days = value.parse().unwrap_or(options.train_days);
                2
            }
            "--mitre" => {
                options.mitre = Some(PathBuf::from(value));
                2
            }
            "--no-mitre" => {
                options.mitre = None;
                1
            }
            "--no-timing" => {
                options.timing = false;
                1
            }
            "--timing-only" => flag(&mut options.timing_only),
            "--detector-timing" => flag(&mut options.detector_timing_only),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        };
        index += step;
    }
    options
}

/// What an event or hour really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Truth {
    /// An injected anomaly of the generator (its index and kind).
    Injected(u32, AnomalyKind),
    /// An event of an EVTX dataset case (index into the cases).
    Attack(u32),
}

/// One event for the detector, with its ground truth.
#[derive(Clone)]
struct Labelled {
    time: i64,
    activity: Activity,
    truth: Option<Truth>,
}

/// A generated day as the detector sees it: ECS JSON through `Activity::of`.
fn generated_day(generator: &Generator, day: u32) -> Vec<Labelled> {
    generator
        .day(day)
        .iter()
        .filter_map(|event| {
            Some(Labelled {
                time: event.timestamp,
                activity: Activity::of(&event.to_ecs_json())?,
                truth: event
                    .label
                    .map(|label| Truth::Injected(label.injection, label.kind)),
            })
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    /// Per finding kind: (findings on labelled events or hours, all findings).
    precision: BTreeMap<String, (u64, u64)>,
    /// Per anomaly kind: injections caught by the model meant for the kind.
    detected: BTreeMap<AnomalyKind, BTreeSet<u32>>,
    /// Truths with a finding of any kind; of the forest.
    any: BTreeSet<Truth>,
    forest: BTreeSet<Truth>,
    /// Per dataset case: the finding kinds it drew, and its events with a finding of their own.
    case_kinds: BTreeMap<u32, BTreeSet<String>>,
    attack_events_flagged: u64,
    examples: BTreeMap<String, String>,
}

impl Tally {
    fn record(&mut self, finding: &Finding, truths: &BTreeSet<Truth>) {
        let entry = self.precision.entry(finding.kind.clone()).or_insert((0, 0));
        entry.1 += 1;
        if !truths.is_empty() {
            entry.0 += 1;
        }
        for &truth in truths {
            self.any.insert(truth);
            if finding.kind == FOREST_KIND {
                self.forest.insert(truth);
            }
            match truth {
                Truth::Injected(injection, kind) if kind.name() == finding.kind => {
                    self.detected.entry(kind).or_default().insert(injection);
                }
                Truth::Injected(..) => {}
                Truth::Attack(case) => {
                    self.case_kinds
                        .entry(case)
                        .or_default()
                        .insert(finding.kind.clone());
                }
            }
        }
        if truths.is_empty() && std::env::var_os("EVALUATE_VERBOSE").is_some() {
            println!("  benign finding: {}", finding.message);
        }
        self.examples
            .entry(format!(
                "{}{}",
                finding.kind,
                if truths.is_empty() { " (benign)" } else { "" }
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
    /// Scores of the scored host-hours with their truth (for threshold tables).
    forest_scores: Vec<(f64, bool)>,
    top_explanations: Vec<String>,
}

/// Learns days 0..train_days, trains the forest, scores the rest online; `extra` (sorted by
/// time) is mixed into the days it falls in.
fn run(generator: &Generator, train_days: u32, extra: &[Labelled]) -> RunResult {
    let config = generator.config();
    let mut detector = Detector::new();
    let mut tally = Tally::default();
    let mut hour_truths: HashMap<(String, i64), BTreeSet<Truth>> = HashMap::new();
    let none = BTreeSet::new();
    let mut extra = extra.iter().peekable();
    let mut event_count = 0;
    let scoring_start = config.start + i64::from(train_days) * DAY;
    for day in 0..config.days {
        let scoring = day >= train_days;
        if day == train_days {
            for finding in detector.flush(false) {
                tally.record(&finding, &none);
            }
            let trained = detector
                .train_forest(FOREST_SEED)
                .expect("forest training on host-hour rows");
            assert!(trained, "too few host-hour rows to train the forest");
        }
        let day_end = config.start + i64::from(day + 1) * DAY;
        let mut events = generated_day(generator, day);
        while let Some(event) = extra.next_if(|e| e.time < day_end) {
            events.push(event.clone());
        }
        events.sort_by_key(|e| e.time);
        event_count += events.len();
        for event in &events {
            let host = event.activity.host();
            let hour = event.time.div_euclid(HOUR) * HOUR;
            if let Some(truth) = event.truth {
                hour_truths
                    .entry((host.to_string(), hour))
                    .or_default()
                    .insert(truth);
            }
            let findings = detector.event(&event.activity, event.time, scoring);
            if matches!(event.truth, Some(Truth::Attack(_)))
                && findings
                    .iter()
                    .any(|f| !HOURLY_KINDS.contains(&f.kind.as_str()))
            {
                tally.attack_events_flagged += 1;
            }
            for finding in findings {
                record(&mut tally, &finding, event, &hour_truths);
            }
        }
    }
    let last = Labelled {
        time: i64::MAX,
        activity: Activity::Other {
            host: String::new(),
        },
        truth: None,
    };
    for finding in detector.flush(true) {
        record(&mut tally, &finding, &last, &hour_truths);
    }

    // The forest as trained at the end of the training days, on the hours it scored.
    let forest = detector.forest().expect("trained above");
    let mut test = Vec::new();
    let mut descriptions = Vec::new();
    let mut labels = Vec::new();
    let mut train_rows = 0;
    for row in detector.host_hour_rows() {
        if row.start < scoring_start {
            train_rows += 1;
            continue;
        }
        let injected = hour_truths
            .get(&(row.host.clone(), row.start))
            .is_some_and(|t| t.iter().any(|t| matches!(t, Truth::Injected(..))));
        labels.push(injected);
        descriptions.push(format!(
            "{} day {} {:02}:00",
            row.host,
            (row.start - config.start).div_euclid(DAY),
            row.start.rem_euclid(DAY) / HOUR
        ));
        test.push(row.features.to_vec());
    }
    let scores = forest.score_many(&test).expect("feature width");
    let forest_auc = roc_auc(&scores, &labels);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let top_explanations = order
        .iter()
        .take(3)
        .map(|&i| {
            let explanation = forest.explain(&test[i], 2).expect("feature width");
            let parts: Vec<String> = explanation
                .features
                .iter()
                .map(|f| f.text.clone())
                .collect();
            format!(
                "{} score {:.3} injected={}: {}",
                descriptions[i],
                explanation.score,
                labels[i],
                parts.join("; ")
            )
        })
        .collect();
    RunResult {
        events: event_count,
        tally,
        forest_auc,
        forest_train_rows: train_rows,
        forest_test_rows: test.len(),
        forest_positives: labels.iter().filter(|&&l| l).count(),
        forest_scores: scores.into_iter().zip(labels).collect(),
        top_explanations,
    }
}

/// Per-event findings are judged by their event, hourly ones by everything in their hour.
fn record(
    tally: &mut Tally,
    finding: &Finding,
    event: &Labelled,
    hour_truths: &HashMap<(String, i64), BTreeSet<Truth>>,
) {
    let truths = if HOURLY_KINDS.contains(&finding.kind.as_str()) {
        hour_truths
            .get(&(finding.entity.clone(), finding.time))
            .cloned()
            .unwrap_or_default()
    } else {
        event.truth.into_iter().collect()
    };
    tally.record(finding, &truths);
}

fn precision_recall_table(result: &RunResult, generator: &Generator) {
    let injected = generator.injections();
    println!(
        "{:<22} {:>9} {:>11} {:>10} {:>8}",
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
        println!(
            "{:<22} {total:>9} {hits:>11} {:>10.3} {:>8.3}  ({caught}/{injections})",
            kind.name(),
            ratio(hits, total),
            caught as f64 / injections.max(1) as f64
        );
    }
    let (hits, total) = result
        .tally
        .precision
        .get(FOREST_KIND)
        .copied()
        .unwrap_or((0, 0));
    let flagged = result.tally.forest.len();
    println!(
        "{FOREST_KIND:<22} {total:>9} {hits:>11} {:>10.3} {:>8.3}  ({flagged}/{} injections of any kind in a flagged host-hour)",
        ratio(hits, total),
        flagged as f64 / injected.len().max(1) as f64,
        injected.len()
    );
    let any = result.tally.any.len();
    println!(
        "any finding: {any}/{} injections ({:.3})",
        injected.len(),
        any as f64 / injected.len().max(1) as f64
    );
}

fn ratio(hits: u64, total: u64) -> f64 {
    if total > 0 {
        hits as f64 / total as f64
    } else {
        f64::NAN
    }
}

/// How many scored host-hours of each truth reach a few thresholds.
fn threshold_table(label: &str, scores: &[(f64, bool)]) {
    let mut line = format!("  {label}: scored host-hours at or above");
    for threshold in [0.65, 0.70, 0.72, 0.74, 0.75, 0.76, 0.78, 0.80] {
        let positives = scores.iter().filter(|(s, p)| *p && *s >= threshold).count();
        let negatives = scores
            .iter()
            .filter(|(s, p)| !*p && *s >= threshold)
            .count();
        line.push_str(&format!(" {threshold}: {positives}+/{negatives}-;"));
    }
    println!("{line}");
}

// ---------------------------------------------------------------------------------------------
// EVTX-to-MITRE dataset mixed into the benign fleet
// ---------------------------------------------------------------------------------------------

/// One (EVTX file, host) of the dataset.
struct Case {
    tactic: String,
    technique: String,
    file: String,
    computer: String,
    host: String,
    events: usize,
    /// Events the per-entity models look at (not `Other`).
    behavioural: usize,
}

struct Mitre {
    cases: Vec<Case>,
    events: Vec<Labelled>,
    files: usize,
    records: usize,
    /// Records unreadable or without a usable time or event id; past the scoring days
    /// after the shift (files spanning weeks or months).
    unusable: usize,
    late: usize,
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            evtx_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// `2021-04-22T08:51:04.8515187Z` as unix seconds (UTC only; fractions dropped).
fn parse_system_time(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY + hour * HOUR + minute * 60 + second)
}

/// A JSON scalar (or an element's `#text`) as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(map) => map.get("#text").and_then(scalar),
        _ => None,
    }
}

/// A normalized (nested ECS) document of one EVTX record for `host`, as `Activity::of`
/// reads it; `None` without an event id.
fn evtx_doc(record: &Value, host: &str) -> Option<Value> {
    let system = record.pointer("/Event/System")?;
    let code: u64 = scalar(system.get("EventID")?)?.parse().ok()?;
    let channel = system.get("Channel").and_then(scalar).unwrap_or_default();
    let data = record
        .pointer("/Event/EventData")
        .filter(|d| d.is_object())
        .or_else(|| record.pointer("/Event/UserData"))
        .cloned()
        .unwrap_or(Value::Null);
    let get = |names: &[&str]| names.iter().find_map(|n| data.get(*n).and_then(scalar));
    let sysmon = channel.contains("Sysmon");
    let (category, kind): (&[&str], &[&str]) = match (sysmon, code) {
        (true, 1) | (false, 4688) => (&["process"], &["start"]),
        (true, 3) => (&["network"], &["connection"]),
        (false, 4624 | 4625) => (&["authentication"], &["start"]),
        _ => (&[], &[]),
    };
    let mut doc = json!({
        "host": {"name": host},
        "event": {"code": code.to_string(), "category": category, "type": kind},
        "winlog": {"channel": channel},
    });
    if code == 4625 {
        doc["event"]["outcome"] = json!("failure");
    }
    if let Some(user) = get(&["TargetUserName", "SubjectUserName", "User"]) {
        doc["user"] = json!({"name": user});
    }
    let mut process = serde_json::Map::new();
    if let Some(executable) = get(&["NewProcessName", "Image"]) {
        process.insert("executable".into(), json!(executable));
    }
    if let Some(parent) = get(&["ParentProcessName", "ParentImage"]) {
        process.insert("parent".into(), json!({"executable": parent}));
    }
    if !process.is_empty() {
        doc["process"] = Value::Object(process);
    }
    if let Some(ip) = get(&["IpAddress", "SourceIp"]) {
        doc["source"] = json!({"ip": ip});
    }
    if sysmon
        && code == 3
        && let (Some(ip), Some(port)) = (get(&["DestinationIp"]), get(&["DestinationPort"]))
    {
        doc["destination"] = json!({"ip": ip, "port": port.parse::<u64>().unwrap_or(0)});
    }
    Some(doc)
}

/// Workstation-like EVTX computer names (the rest go to servers).
fn is_workstation(computer: &str) -> bool {
    [
        "win10", "desktop", "-pc", "client", "fx-", "n900", "win-", "win.",
    ]
    .iter()
    .any(|p| computer.contains(p))
        || computer == "win"
}

/// Reads the dataset and places it on the fleet: every EVTX Computer on its own generated
/// host (workstation-like names on workstations, the rest on servers), every file at a
/// random start within [from, to) with its relative times kept, on host-hours no other file
/// uses where possible.
fn load_mitre(dir: &Path, hosts: &[&str], from: i64, to: i64, seed: u64) -> Option<Mitre> {
    let mut files = Vec::new();
    if let Err(e) = evtx_files(dir, &mut files) {
        println!("(no EVTX dataset at {}: {e})", dir.display());
        return None;
    }
    let mut rng = SplitMix64::new(seed ^ 0x00AA_77AC);
    let mut workstations: Vec<&str> = hosts
        .iter()
        .copied()
        .filter(|h| h.starts_with("ws-"))
        .collect();
    let mut servers: Vec<&str> = hosts
        .iter()
        .copied()
        .filter(|h| !h.starts_with("ws-"))
        .collect();
    for pool in [&mut workstations, &mut servers] {
        for i in (1..pool.len()).rev() {
            pool.swap(i, rng.below(i + 1));
        }
    }
    let mut mapping: BTreeMap<String, String> = BTreeMap::new();
    let mut occupied: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut mitre = Mitre {
        cases: Vec::new(),
        events: Vec::new(),
        files: files.len(),
        records: 0,
        unusable: 0,
        late: 0,
    };
    for path in &files {
        let relative = path.strip_prefix(dir).unwrap_or(path);
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let tactic = parts.first().cloned().unwrap_or_default();
        let technique = if parts.len() > 2 {
            parts[1].clone()
        } else {
            String::new()
        };
        let file = parts.last().cloned().unwrap_or_default();
        let mut parser = match evtx::EvtxParser::from_path(path) {
            Ok(parser) => parser,
            Err(e) => {
                println!("  skipped {}: {e}", relative.display());
                continue;
            }
        };
        // (time, computer, record) of the file.
        let mut records: Vec<(i64, String, Value)> = Vec::new();
        for record in parser.records_json_value() {
            mitre.records += 1;
            let Ok(record) = record else {
                mitre.unusable += 1;
                continue;
            };
            let system_time = record
                .data
                .pointer("/Event/System/TimeCreated/#attributes/SystemTime")
                .and_then(Value::as_str)
                .and_then(parse_system_time);
            let header_time = record.timestamp.as_second();
            // Some records carry a zero FILETIME (1601) in the header.
            let time = system_time
                .filter(|t| *t > 946_684_800)
                .or((header_time > 946_684_800).then_some(header_time));
            let computer = record
                .data
                .pointer("/Event/System/Computer")
                .and_then(scalar)
                .unwrap_or_default()
                .to_ascii_lowercase();
            match time {
                Some(time) => records.push((time, computer, record.data)),
                None => mitre.unusable += 1,
            }
        }
        let Some(first) = records.iter().map(|r| r.0).min() else {
            continue;
        };
        let span = records.iter().map(|r| r.0).max().unwrap_or(first) - first;
        let mut host_of = |computer: &str| -> String {
            let next_host = mapping.len();
            mapping
                .entry(computer.to_string())
                .or_insert_with(|| {
                    let pool = if is_workstation(computer) {
                        &workstations
                    } else {
                        &servers
                    };
                    pool[next_host % pool.len()].to_string()
                })
                .clone()
        };
        let hosts: Vec<String> = records.iter().map(|r| host_of(&r.1)).collect();
        // A random start whose host-hours no earlier file uses (so that hourly findings
        // belong to one case), else the last one tried.
        let room = (to - from - span).max(1);
        let hours_of = |shift: i64| -> BTreeSet<(String, i64)> {
            records
                .iter()
                .zip(&hosts)
                .map(|(r, h)| (h.clone(), (r.0 + shift).div_euclid(HOUR)))
                .collect()
        };
        let mut shift = 0;
        for _ in 0..200 {
            shift = from + rng.below(room as usize) as i64 - first;
            if hours_of(shift).is_disjoint(&occupied) {
                break;
            }
        }
        occupied.extend(hours_of(shift));
        let mut case_of: BTreeMap<String, u32> = BTreeMap::new();
        for ((time, computer, record), host) in records.into_iter().zip(hosts) {
            let time = time + shift;
            if time >= to {
                mitre.late += 1;
                continue;
            }
            let Some(activity) = evtx_doc(&record, &host).as_ref().and_then(Activity::of) else {
                mitre.unusable += 1;
                continue;
            };
            let case = *case_of.entry(computer.clone()).or_insert_with(|| {
                mitre.cases.push(Case {
                    tactic: tactic.clone(),
                    technique: technique.clone(),
                    file: file.clone(),
                    computer: computer.clone(),
                    host: host.clone(),
                    events: 0,
                    behavioural: 0,
                });
                (mitre.cases.len() - 1) as u32
            });
            let entry = &mut mitre.cases[case as usize];
            entry.events += 1;
            if !matches!(activity, Activity::Other { .. }) {
                entry.behavioural += 1;
            }
            mitre.events.push(Labelled {
                time,
                activity,
                truth: Some(Truth::Attack(case)),
            });
        }
    }
    mitre.events.sort_by_key(|e| e.time);
    println!(
        "{} EVTX files, {} records, {} placed as {} (host, file) cases on {} hosts; {} unusable (unreadable, no time or event id), {} past the scoring days (files spanning weeks)",
        mitre.files,
        mitre.records,
        mitre.events.len(),
        mitre.cases.len(),
        mapping.len(),
        mitre.unusable,
        mitre.late
    );
    Some(mitre)
}

fn mitre_report(mitre: &Mitre, result: &RunResult, host_days: f64) {
    let tally = &result.tally;
    // Per tactic folder: cases, caught, with behavioural events, caught among those.
    let mut tactics: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for (index, case) in mitre.cases.iter().enumerate() {
        let caught = tally.case_kinds.contains_key(&(index as u32));
        let row = tactics.entry(&case.tactic).or_default();
        row[0] += 1;
        row[1] += usize::from(caught);
        row[2] += usize::from(case.behavioural > 0);
        row[3] += usize::from(caught && case.behavioural > 0);
        row[4] += case.events;
    }
    println!(
        "{:<40} {:>6} {:>6} {:>7} {:>13} {:>7}",
        "tactic folder", "cases", "caught", "recall", "behavioural", "events"
    );
    let mut totals = [0usize; 5];
    for (tactic, row) in &tactics {
        println!(
            "{tactic:<40} {:>6} {:>6} {:>7.3} {:>7} ({:>3}) {:>7}",
            row[0],
            row[1],
            row[1] as f64 / row[0].max(1) as f64,
            row[2],
            row[3],
            row[4]
        );
        for (total, value) in totals.iter_mut().zip(row) {
            *total += value;
        }
    }
    println!(
        "{:<40} {:>6} {:>6} {:>7.3} {:>7} ({:>3}) {:>7}",
        "all",
        totals[0],
        totals[1],
        totals[1] as f64 / totals[0].max(1) as f64,
        totals[2],
        totals[3],
        totals[4]
    );
    println!(
        "(behavioural: cases with a process start, logon, failed logon, connection or listen event; in brackets those caught)"
    );
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for kinds in tally.case_kinds.values() {
        for kind in kinds {
            *by_kind.entry(kind).or_default() += 1;
        }
    }
    println!("cases caught per finding kind: {by_kind:?}");
    let attack_events = mitre.events.len();
    println!(
        "attack events with a per-event finding of their own: {} of {attack_events}",
        tally.attack_events_flagged
    );
    let (mut hits, mut total) = (0, 0);
    println!("findings in the mixed scoring days (on dataset events or hours / all):");
    for (kind, &(h, t)) in &tally.precision {
        println!(
            "  {kind:<22} {h:>5} / {t:>5} = {:.3}   (others: {:.3} per 100 hosts per day)",
            ratio(h, t),
            (t - h) as f64 * 100.0 / host_days
        );
        hits += h;
        total += t;
    }
    println!(
        "  {:<22} {hits:>5} / {total:>5} = {:.3}",
        "all",
        ratio(hits, total)
    );
    if std::env::var_os("EVALUATE_VERBOSE").is_some() {
        for (index, case) in mitre.cases.iter().enumerate() {
            println!(
                "  case {index}: {} / {} / {} on {} ({}): {} events, {} behavioural, findings {:?}",
                case.tactic,
                case.technique,
                case.file,
                case.host,
                case.computer,
                case.events,
                case.behavioural,
                tally.case_kinds.get(&(index as u32))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

fn forest_timing() {
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
        "forest training 1,000,000 rows x {WIDTH} features (100 trees, sample 256): {train_wall:.3} s wall, {train_cpu:.3} s CPU"
    );
    println!(
        "forest scoring 1,000,000 rows: {score_cpu:.3} s CPU = {:.0} rows per CPU-second (mean score {mean:.3})",
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

/// Peak resident memory of this process (Linux `VmHWM`), for the record.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[derive(Default)]
struct Clock {
    wall: f64,
    cpu: f64,
}

impl Clock {
    fn time<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let wall = Instant::now();
        let cpu = ProcessTime::now();
        let out = work();
        self.cpu += cpu.elapsed().as_secs_f64();
        self.wall += wall.elapsed().as_secs_f64();
        out
    }
}

/// The Detector on ~1.1M generated events (500 hosts x 14 days, learn only, then the forest),
/// then scoring the next 14 days. Generation is not timed; parsing (`Activity::of` on the
/// ECS JSON) is timed apart from the models.
fn detector_timing(seed: u64) {
    const HOSTS: usize = 500;
    const TRAIN_DAYS: u32 = 14;
    const DAYS: u32 = 28;
    let generator = Generator::new(GeneratorConfig {
        hosts: HOSTS,
        days: DAYS,
        seed,
        anomaly_from_day: TRAIN_DAYS,
        ..GeneratorConfig::default()
    });
    let mut detector = Detector::new();
    let (mut parse_learn, mut learn, mut parse_score, mut score) = (
        Clock::default(),
        Clock::default(),
        Clock::default(),
        Clock::default(),
    );
    let (mut flush, mut train) = (Clock::default(), Clock::default());
    let (mut learned, mut scored, mut findings) = (0usize, 0usize, 0usize);
    for day in 0..DAYS {
        let scoring = day >= TRAIN_DAYS;
        if day == TRAIN_DAYS {
            flush.time(|| detector.flush(false));
            let trained = train.time(|| detector.train_forest(FOREST_SEED));
            assert_eq!(trained, Ok(true));
        }
        let docs: Vec<(i64, Value)> = generator
            .day(day)
            .iter()
            .map(|e| (e.timestamp, e.to_ecs_json()))
            .collect();
        let parse = if scoring {
            &mut parse_score
        } else {
            &mut parse_learn
        };
        let activities: Vec<(i64, Activity)> = parse.time(|| {
            docs.iter()
                .filter_map(|(t, doc)| Some((*t, Activity::of(doc)?)))
                .collect()
        });
        drop(docs);
        if scoring {
            scored += activities.len();
            findings += score.time(|| {
                activities
                    .iter()
                    .map(|(t, a)| detector.event(a, *t, true).len())
                    .sum::<usize>()
            });
        } else {
            learned += activities.len();
            learn.time(|| {
                for (t, a) in &activities {
                    detector.event(a, *t, false);
                }
            });
        }
    }
    findings += score.time(|| detector.flush(true).len());
    let training_wall = learn.wall + flush.wall + train.wall;
    let training_cpu = learn.cpu + flush.cpu + train.cpu;
    println!(
        "Detector, {HOSTS} hosts: learning {learned} events (days 0-{}) {:.2} s wall, {:.2} s CPU = {:.0} events per CPU-second; flush {:.3} s; train_forest on {} host-hours {:.3} s wall, {:.3} s CPU",
        TRAIN_DAYS - 1,
        learn.wall,
        learn.cpu,
        learned as f64 / learn.cpu,
        flush.wall,
        detector
            .summary()
            .iter()
            .find(|m| m.model == "isolation_forest")
            .map_or(0, |m| m.entities),
        train.wall,
        train.cpu
    );
    println!(
        "  training total (learn + flush + train_forest): {training_wall:.2} s wall, {training_cpu:.2} s CPU"
    );
    println!(
        "  scoring {scored} events (days {TRAIN_DAYS}-{}): {:.2} s wall, {:.2} s CPU = {:.0} events per CPU-second ({findings} findings)",
        DAYS - 1,
        score.wall,
        score.cpu,
        scored as f64 / score.cpu
    );
    println!(
        "  Activity::of on the ECS JSON (not part of the above): {:.0} events per CPU-second",
        (learned + scored) as f64 / (parse_learn.cpu + parse_score.cpu)
    );
    let bytes = detector.to_model_file().to_bytes().map_or(0, |b| b.len());
    println!(
        "  model file {:.1} MiB; peak RSS {:.0} MiB",
        bytes as f64 / (1024.0 * 1024.0),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

fn main() {
    let options = options();
    if options.detector_timing_only {
        detector_timing(options.seed);
        return;
    }
    if options.timing_only {
        forest_timing();
        detector_timing(options.seed);
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
    let result = run(&generator, options.train_days, &[]);
    let injected = generator.injections();
    println!(
        "\n== Detector (injected run: {} events, {} injections) ==",
        result.events,
        injected.len()
    );
    precision_recall_table(&result, &generator);
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
        "\n== Host-activity isolation forest (Detector::train_forest, seed {FOREST_SEED}) ==\ntrained on {} host-hours, scored {} ({} with injected events), ROC AUC {:.4}",
        result.forest_train_rows,
        result.forest_test_rows,
        result.forest_positives,
        result.forest_auc.unwrap_or(f64::NAN)
    );
    for line in &result.top_explanations {
        println!("  top: {line}");
    }
    threshold_table("injected run", &result.forest_scores);

    let benign_config = GeneratorConfig {
        anomalies_per_kind: 0,
        ..config.clone()
    };
    let benign_generator = Generator::new(benign_config);
    let benign = run(&benign_generator, options.train_days, &[]);
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
    threshold_table("benign run", &benign.forest_scores);
    println!("\n== Example messages ==");
    for (kind, message) in result
        .tally
        .examples
        .iter()
        .chain(benign.tally.examples.iter())
    {
        println!("[{kind}] {message}");
    }

    if let Some(dir) = &options.mitre {
        println!(
            "\n== EVTX-to-MITRE dataset mixed into the benign fleet's scoring days ({}) ==",
            dir.display()
        );
        let from = config.start + i64::from(options.train_days) * DAY;
        let to = config.start + i64::from(options.days) * DAY;
        let hosts = benign_generator.host_names();
        if let Some(mitre) = load_mitre(dir, &hosts, from, to, options.seed) {
            let mixed = run(&benign_generator, options.train_days, &mitre.events);
            mitre_report(&mitre, &mixed, host_days);
        }
    }
    println!(
        "\nevaluation wall time {:.1} s",
        wall.elapsed().as_secs_f64()
    );

    if options.timing {
        println!("\n== Timing ==");
        forest_timing();
        detector_timing(options.seed);
    }
}
