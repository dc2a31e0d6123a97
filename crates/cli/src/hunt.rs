//! `dozor hunt`: Sigma rules over log files, in parallel, with a summary.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use crossbeam_channel::bounded;
use dozor_event::FlatEvent;
use dozor_sigma::{Level, RuleMeta, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::output::{Hit, HitRule, Writer};
use crate::rules::{input_files, load_rules};
use crate::{OutputFormat, RuleSource};

#[derive(Args)]
pub struct HuntArgs {
    /// Files or directories to hunt through (EVTX, event XML, JSON/NDJSON), recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    source: RuleSource,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write detections to this file instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Only rules of at least this level (informational, low, medium, high, critical).
    #[arg(long, value_parser = parse_level)]
    min_level: Option<Level>,
    /// Only rules with these statuses (default: all but deprecated and unsupported).
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<Status>,
    /// Worker threads (0 = one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
    /// Input format (default: by extension and content).
    #[arg(long, value_enum, default_value = "auto")]
    input_format: InputFormatArg,
    /// Do not print the summary on stderr.
    #[arg(long)]
    no_summary: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Exit with code 2 when any input or record could not be decoded.
    #[arg(long)]
    strict: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Copy, Clone, PartialEq, Eq, clap::ValueEnum)]
enum InputFormatArg {
    Auto,
    Evtx,
    Xml,
    Json,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

/// Inputs above this size pay for the faster (DFA) prefilter at start-up.
const LARGE_INPUT_BYTES: u64 = 64 << 20;

/// Messages per batch sent from a worker to the writer.
const MESSAGE_BATCH: usize = 256;

/// What a worker reports.
enum Msg {
    Hit(Box<Hit>),
    /// A base-rule match that feeds a correlation, to be replayed in time order.
    CorrelationInput {
        rule: u32,
        event: Box<FlatEvent>,
    },
    Error(String),
    FileDone {
        events: u64,
        errors: u64,
        fatal: bool,
        detect_seconds: f64,
    },
}

#[derive(Default, serde::Serialize)]
struct Summary {
    files: u64,
    files_unreadable: u64,
    events: u64,
    decode_errors: u64,
    rules_loaded: usize,
    rules_active: usize,
    detections: u64,
    correlation_detections: u64,
    elapsed_seconds: f64,
    events_per_second: f64,
    /// Loading and compiling rules (wall clock).
    load_seconds: f64,
    /// CPU time of the whole process from the end of rule loading to the last output written:
    /// decoding, detection, correlation and output (all threads).
    hunt_cpu_seconds: f64,
    /// Time spent in the detection engine alone (wall clock, summed over threads).
    detect_seconds: f64,
    /// Events per CPU-second of `hunt_cpu_seconds` (EVTX in, detections out).
    events_per_cpu_second: f64,
    by_level: BTreeMap<String, u64>,
    top_rules: Vec<(String, String, u64)>,
}

impl Summary {
    fn count(&mut self, hit: &Hit, by_rule: &mut BTreeMap<(String, String), u64>) {
        *self.by_level.entry(hit.rule.level.to_string()).or_default() += 1;
        *by_rule
            .entry((hit.rule.title.clone(), hit.rule.id.clone()))
            .or_default() += 1;
        self.detections += 1;
    }
}

pub fn run(args: HuntArgs) -> Result<u8> {
    let started = Instant::now();
    let statuses = if args.status.is_empty() {
        vec![Status::Stable, Status::Test, Status::Experimental]
    } else {
        args.status.clone()
    };
    let min_level = args.min_level.unwrap_or(Level::Informational);
    let keep = |m: &RuleMeta| m.level >= min_level && statuses.contains(&m.status);
    let files = input_files(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no .evtx, .json, .jsonl, .ndjson or .xml files under {:?}",
            args.paths
        );
    }
    let input_bytes: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let load_started = Instant::now();
    let mut loaded = load_rules(&args.source, &keep, input_bytes > LARGE_INPUT_BYTES)?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    let active = loaded.count(|o| *o == dozor_sigma::Outcome::Active);
    if loaded.detector.engine().rules().is_empty() {
        bail!(
            "no usable rules under {:?} after the --min-level/--status filters (run `dozor rules lint` to see every rule's status)",
            args.source.rules
        );
    }

    let threads = if args.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        args.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    let read_options = dozor_decode::ReadOptions {
        format: match args.input_format {
            InputFormatArg::Auto => dozor_decode::InputFormat::Auto,
            InputFormatArg::Evtx => dozor_decode::InputFormat::Evtx,
            InputFormatArg::Xml => dozor_decode::InputFormat::Xml,
            InputFormatArg::Json => dozor_decode::InputFormat::Json,
        },
        // Files are already read in parallel; one thread per file keeps CPU accounting honest.
        evtx_threads: 1,
        ..Default::default()
    };

    let progress = if !args.quiet && std::io::stderr().is_terminal() {
        let bar =
            ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files ({eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut writer = Writer::new(args.format, args.output.as_deref())?;
    let mut summary = Summary {
        files: files.len() as u64,
        rules_loaded: loaded.detector.engine().rules().len(),
        rules_active: active,
        load_seconds,
        ..Default::default()
    };
    let mut hits_by_rule: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut correlation_inputs: Vec<(u32, Box<FlatEvent>)> = Vec::new();

    let hunt_started = cpu_time::ProcessTime::try_now().ok();
    let (tx, rx) = bounded::<Vec<Msg>>(64);
    let detector = &loaded.detector;
    let engine = detector.engine();
    std::thread::scope(|scope| -> Result<()> {
        let files = &files;
        let read_options = &read_options;
        scope.spawn(move || {
            pool.install(|| {
                files.par_iter().for_each_init(
                    || (engine.new_scratch(), Vec::new()),
                    |(scratch, matched), path| {
                        hunt_file(path, read_options, detector, scratch, matched, &tx);
                    },
                );
            });
            drop(tx);
        });
        for msg in rx.into_iter().flatten() {
            match msg {
                Msg::Hit(hit) => {
                    summary.count(&hit, &mut hits_by_rule);
                    writer.write(*hit)?;
                }
                Msg::CorrelationInput { rule, event } => correlation_inputs.push((rule, event)),
                Msg::Error(e) => {
                    progress.suspend(|| eprintln!("warning: {e}"));
                }
                Msg::FileDone {
                    events,
                    errors,
                    fatal,
                    detect_seconds,
                } => {
                    summary.detect_seconds += detect_seconds;
                    summary.events += events;
                    summary.decode_errors += errors;
                    if fatal {
                        summary.files_unreadable += 1;
                    }
                    progress.inc(1);
                    progress.set_message(format!(
                        "{} events, {} detections",
                        summary.events, summary.detections
                    ));
                }
            }
        }
        Ok(())
    })?;
    progress.finish_and_clear();

    // Correlations see base-rule matches in time order, across all files.
    if loaded.detector.has_correlations() {
        correlation_inputs.sort_by_key(|(_, e)| e.timestamp_millis.unwrap_or(i64::MIN));
        let mut out = Vec::new();
        let events: Vec<Box<FlatEvent>> =
            correlation_inputs.iter().map(|(_, e)| e.clone()).collect();
        for (i, (rule, event)) in correlation_inputs.iter().enumerate() {
            loaded
                .detector
                .correlate(*rule, event.as_ref(), i as u64, &mut out);
        }
        loaded.detector.finish(&mut out);
        for hit in out {
            let meta = &loaded.detector.correlation_rules()[hit.correlation];
            let first = hit.event_refs.first().and_then(|&r| events.get(r as usize));
            let hit = Hit::correlation(meta, &hit, first.map(|e| e.as_ref()));
            summary.count(&hit, &mut hits_by_rule);
            summary.correlation_detections += 1;
            writer.write(hit)?;
        }
    }
    writer.finish()?;
    summary.hunt_cpu_seconds = hunt_started
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);

    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.events_per_second = summary.events as f64 / summary.elapsed_seconds.max(1e-9);
    summary.events_per_cpu_second = summary.events as f64 / summary.hunt_cpu_seconds.max(1e-9);
    let mut top: Vec<_> = hits_by_rule.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    summary.top_rules = top
        .into_iter()
        .take(20)
        .map(|((title, id), n)| (title, id, n))
        .collect();
    if !args.no_summary {
        print_summary(&summary);
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.strict && (summary.decode_errors > 0 || summary.files_unreadable > 0) {
        return Ok(2);
    }
    Ok(if summary.detections > 0 { 1 } else { 0 })
}

fn hunt_file(
    path: &Path,
    options: &dozor_decode::ReadOptions,
    detector: &dozor_sigma::Detector,
    scratch: &mut dozor_sigma::Scratch,
    matched: &mut Vec<u32>,
    tx: &crossbeam_channel::Sender<Vec<Msg>>,
) {
    let engine = detector.engine();
    let mut detect_seconds = 0.0;
    let file: Arc<Path> = Arc::from(path);
    let (mut events, mut errors) = (0u64, 0u64);
    // Messages go out in batches: one wake-up of the writer per batch, not per detection.
    let mut batch: Vec<Msg> = Vec::new();
    let flush = |batch: &mut Vec<Msg>| {
        if !batch.is_empty() {
            let _ = tx.send(std::mem::take(batch));
        }
    };
    let reader = match dozor_decode::read_path(path, options) {
        Ok(r) => r,
        Err(e) => {
            batch.push(Msg::Error(e.to_string()));
            batch.push(Msg::FileDone {
                events: 0,
                errors: 1,
                fatal: true,
                detect_seconds,
            });
            flush(&mut batch);
            return;
        }
    };
    for item in reader {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                errors += 1;
                batch.push(Msg::Error(e.to_string()));
                continue;
            }
        };
        events += 1;
        if batch.len() >= MESSAGE_BATCH {
            flush(&mut batch);
        }
        matched.clear();
        let detect_started = Instant::now();
        engine.matches(&event, scratch, matched);
        detect_seconds += detect_started.elapsed().as_secs_f64();
        for &rule in matched.iter() {
            if detector.feeds_correlation(rule) {
                batch.push(Msg::CorrelationInput {
                    rule,
                    event: Box::new(event.clone()),
                });
            }
            if detector.reports_standalone(rule) {
                let meta = &engine.rules()[rule as usize];
                let hit = Hit::detection(HitRule::from_meta(meta), &event, file.clone());
                batch.push(Msg::Hit(Box::new(hit)));
            }
        }
    }
    batch.push(Msg::FileDone {
        events,
        errors,
        fatal: false,
        detect_seconds,
    });
    flush(&mut batch);
}

fn print_summary(s: &Summary) {
    eprintln!();
    eprintln!("Summary");
    eprintln!(
        "  files           {:>10}  ({} unreadable)",
        s.files, s.files_unreadable
    );
    eprintln!(
        "  events          {:>10}  ({} decode errors)",
        s.events, s.decode_errors
    );
    eprintln!(
        "  rules           {:>10}  loaded, {} active",
        s.rules_loaded, s.rules_active
    );
    eprintln!(
        "  detections      {:>10}  ({} from correlations)",
        s.detections, s.correlation_detections
    );
    for level in ["critical", "high", "medium", "low", "informational"] {
        if let Some(n) = s.by_level.get(level) {
            eprintln!("    {level:<13} {n:>10}");
        }
    }
    eprintln!(
        "  elapsed         {:>10.2}s ({:.0} events/s; rules loaded in {:.2}s)",
        s.elapsed_seconds, s.events_per_second, s.load_seconds
    );
    eprintln!(
        "  hunting CPU     {:>10.2}s ({:.0} events per CPU-second; detection {:.2}s)",
        s.hunt_cpu_seconds, s.events_per_cpu_second, s.detect_seconds
    );
    if !s.top_rules.is_empty() {
        eprintln!("  top rules:");
        for (title, _id, n) in s.top_rules.iter().take(10) {
            eprintln!("    {n:>8}  {title}");
        }
    }
}
