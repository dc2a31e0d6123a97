//! Loading rules for the CLI, and `dozor rules lint`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use dozor_sigma::{
    Detector, DetectorOptions, EngineOptions, LoadOptions, LogsourceMapping, Outcome, RuleKind,
    RuleMeta, RuleReport, RuleSet,
};

use crate::RuleSource;

/// A compiled rule set and what happened to every rule document.
pub struct LoadedRules {
    pub detector: Detector,
    pub reports: Vec<RuleReport>,
}

impl LoadedRules {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.reports.iter().filter(|r| f(&r.outcome)).count()
    }
}

/// `long_run`: the rules will see many events, so spend more at start-up for speed per event.
pub fn load_rules(
    source: &RuleSource,
    keep: &dyn Fn(&RuleMeta) -> bool,
    long_run: bool,
) -> Result<LoadedRules> {
    let mut load_options = LoadOptions::default();
    if let Some(p) = &source.placeholders {
        load_options
            .load_placeholders(p)
            .map_err(anyhow::Error::msg)
            .context("reading placeholders")?;
    }
    let mut mapping = if source.no_default_mapping {
        LogsourceMapping::default()
    } else {
        LogsourceMapping::builtin()
    };
    for m in &source.mappings {
        mapping.extend(
            LogsourceMapping::from_file(m)
                .map_err(anyhow::Error::msg)
                .context("reading mapping")?,
        );
    }
    if source.rules.is_empty() {
        bail!("no rules given: name rule files or directories with --rules");
    }
    for p in &source.rules {
        if !p.exists() {
            bail!("rules path {} does not exist", p.display());
        }
    }
    let mut set = RuleSet::load_paths(&source.rules, &load_options);
    set.rules.retain(|r| keep(&r.meta));
    let engine_options = EngineOptions {
        mapping,
        evaluate_unrouted: source.evaluate_unrouted,
        prefilter_dfa: long_run,
    };
    let (detector, reports) = Detector::build(set, &engine_options, &DetectorOptions::default());
    Ok(LoadedRules { detector, reports })
}

#[derive(Args)]
pub struct LintArgs {
    /// Rule files or directories (the same as --rules).
    paths: Vec<PathBuf>,
    #[command(flatten)]
    source: RuleSource,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: LintFormat,
    /// List every rule, not only those that are not active or have notes.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Copy, Clone, PartialEq, Eq, clap::ValueEnum)]
enum LintFormat {
    Table,
    Json,
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Active => "active",
        Outcome::Unrouted(_) => "unrouted",
        Outcome::Unsupported(_) => "unsupported",
        Outcome::Invalid(_) => "invalid",
    }
}

pub fn lint(mut args: LintArgs) -> Result<u8> {
    args.source.rules.append(&mut args.paths);
    let loaded = load_rules(&args.source, &|_| true, false)?;
    let mut out = std::io::stdout().lock();
    let mut totals: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
    for r in &loaded.reports {
        let kind = match r.kind {
            RuleKind::Detection => "detection",
            RuleKind::Correlation => "correlation",
            RuleKind::Filter => "filter",
        };
        *totals.entry((kind, outcome_name(&r.outcome))).or_default() += 1;
    }
    match args.format {
        LintFormat::Json => {
            let doc = serde_json::json!({
                "rules": loaded.reports,
                "totals": totals.iter().map(|((k, o), n)| serde_json::json!({"kind": k, "status": o, "count": n})).collect::<Vec<_>>(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        LintFormat::Table => {
            for r in &loaded.reports {
                let show = args.verbose || r.outcome != Outcome::Active || !r.notes.is_empty();
                if !show {
                    continue;
                }
                let reason = match &r.outcome {
                    Outcome::Active => String::new(),
                    Outcome::Unrouted(s) | Outcome::Unsupported(s) | Outcome::Invalid(s) => {
                        format!(": {s}")
                    }
                };
                let id = if r.id.is_empty() { "-" } else { &r.id };
                writeln!(
                    out,
                    "{:<11} {} [{}] {}{}",
                    outcome_name(&r.outcome).to_uppercase(),
                    r.path.display(),
                    id,
                    r.title,
                    reason
                )?;
                for n in &r.notes {
                    writeln!(out, "            note: {n}")?;
                }
            }
            writeln!(out)?;
            writeln!(out, "{:<12} {:<12} {:>6}", "kind", "status", "rules")?;
            for ((k, o), n) in &totals {
                writeln!(out, "{k:<12} {o:<12} {n:>6}")?;
            }
            writeln!(
                out,
                "{:<12} {:<12} {:>6}",
                "total",
                "",
                loaded.reports.len()
            )?;
        }
    }
    let bad = loaded.count(|o| matches!(o, Outcome::Unsupported(_) | Outcome::Invalid(_)));
    Ok(if bad > 0 { 1 } else { 0 })
}

/// Files under the given paths that hunt can read, in a stable order.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(p.clone());
            continue;
        }
        if !p.exists() {
            bail!("input path {} does not exist", p.display());
        }
        for entry in walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.with_context(|| format!("walking {}", p.display()))?;
            if entry.file_type().is_file() {
                let ext = entry
                    .path()
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                if matches!(
                    ext.as_deref(),
                    Some("evtx" | "json" | "jsonl" | "ndjson" | "xml")
                ) {
                    files.push(entry.into_path());
                }
            }
        }
    }
    Ok(files)
}
