//! rsigma-harness: evaluate Sigma rules with rsigma (`rsigma-eval` 0.23) over
//! EVTX files and report throughput as one JSON line on stdout.
//!
//! Phases (see bench/README.md for the exact event representation):
//! 1. load: parse every `*.yml`/`*.yaml` under each `--rules DIR` with
//!    `rsigma_parser::parse_sigma_file`, compile them into one
//!    `rsigma_eval::Engine` with `Engine::add_rules` (one index rebuild);
//! 2. decode (timed separately): read each EVTX file with the `evtx` crate
//!    (`records_json_value`, one thread, the same call the rsigma CLI uses) and
//!    flatten every record into the flat Windows/Sysmon JSON object that Sigma
//!    rules and rsigma's own `sysmon` schema signature expect;
//! 3. eval (the number that matters): `Engine::evaluate(&JsonEvent::borrow(ev))`
//!    for every event of the file, on this thread, timed with
//!    `CLOCK_THREAD_CPUTIME_ID` around the loop.
//!
//! Files are processed one at a time (decode file, evaluate its events, drop
//! them), so the peak RSS is the engine plus one decoded file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use evtx::{EvtxParser, ParserSettings};
use rsigma_eval::{Engine, JsonEvent, LogSourceExtractor, Pipeline};
use rsigma_parser::{LogSource, SigmaRule};
use serde_json::{Map, Value, json};

const USAGE: &str = r#"usage: rsigma-harness --rules DIR [--rules DIR ...] [options] PATH [PATH ...]

PATH: EVTX files or directories (searched recursively for *.evtx).

options:
  --rules DIR            Sigma rule file or directory (recursive); repeatable
  --logsource-map FILE   Sigma logsource mapping (e.g. sigma/tests/thor.yml):
                         turned into an rsigma processing pipeline that adds
                         EventID conditions per logsource category
  --channel-conditions   with --logsource-map: also route by Channel (off by
                         default: rsigma's candidate index then keys whole rule
                         groups on Channel, ~16x slower here; see bench/README.md)
  --pipeline NAME|FILE   extra rsigma pipeline: a builtin name (sysmon,
                         ecs_windows, fibratus_windows) or a YAML file; repeatable
  --no-logsource-pruning do not tell the engine that events are product=windows
  --bloom                enable rsigma's bloom pre-filter (off by default)
  --cross-rule-ac        enable rsigma's cross-rule Aho-Corasick pre-filter
  --repeat N             evaluate every decoded file N times (default 1); eval
                         numbers cover all passes, matches only the first
  --show-failures N      print up to N rule load failures to stderr (default 10)
  --per-rule FILE        write per-rule match counts (JSON object) to FILE
  --raw                  feed the nested evtx JSON unchanged ({"Event":{"System":..,
                         "EventData":..}}), as `rsigma engine eval -e @x.evtx`
                         does; SigmaHQ field names then find (almost) nothing
  --dump-events FILE     write every flattened event (NDJSON) to FILE (untimed)
  --dump-pipeline        print the pipeline built from --logsource-map and exit
"#;

static DUMP_PIPELINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Args {
    rules: Vec<PathBuf>,
    logsource_map: Option<PathBuf>,
    channel_conditions: bool,
    pipelines: Vec<String>,
    pruning: bool,
    bloom: bool,
    cross_rule_ac: bool,
    show_failures: usize,
    repeat: u32,
    per_rule: Option<PathBuf>,
    dump_events: Option<PathBuf>,
    dump_pipeline: bool,
    raw: bool,
    inputs: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        rules: Vec::new(),
        logsource_map: None,
        channel_conditions: false,
        pipelines: Vec::new(),
        pruning: true,
        bloom: false,
        cross_rule_ac: false,
        show_failures: 10,
        repeat: 1,
        per_rule: None,
        dump_events: None,
        dump_pipeline: false,
        raw: false,
        inputs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rules" | "-r" => a.rules.push(value("--rules")?.into()),
            "--logsource-map" => a.logsource_map = Some(value("--logsource-map")?.into()),
            "--channel-conditions" => a.channel_conditions = true,
            "--pipeline" | "-p" => a.pipelines.push(value("--pipeline")?),
            "--no-logsource-pruning" => a.pruning = false,
            "--bloom" => a.bloom = true,
            "--cross-rule-ac" => a.cross_rule_ac = true,
            "--show-failures" => {
                a.show_failures = value("--show-failures")?
                    .parse()
                    .map_err(|e| format!("--show-failures: {e}"))?
            }
            "--repeat" => {
                a.repeat = value("--repeat")?
                    .parse()
                    .map_err(|e| format!("--repeat: {e}"))?;
                if a.repeat == 0 {
                    return Err("--repeat must be at least 1".into());
                }
            }
            "--per-rule" => a.per_rule = Some(value("--per-rule")?.into()),
            "--dump-events" => a.dump_events = Some(value("--dump-events")?.into()),
            "--dump-pipeline" => a.dump_pipeline = true,
            "--raw" => a.raw = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => a.inputs.push(arg.into()),
        }
    }
    if a.rules.is_empty() {
        return Err("at least one --rules DIR is required".into());
    }
    if a.inputs.is_empty() && !a.dump_pipeline {
        return Err("at least one EVTX file or directory is required".into());
    }
    Ok(a)
}

// ---------------------------------------------------------------------------
// CPU time and memory
// ---------------------------------------------------------------------------

fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU time (user + system) consumed by the calling thread.
fn thread_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time (user + system) consumed by the whole process.
fn process_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Peak resident set size in MiB (VmHWM from /proc/self/status).
fn peak_rss_mb() -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

fn collect_files(root: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let has_ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
    };
    if root.is_file() {
        out.push(root.to_path_buf());
        return;
    }
    let Ok(rd) = fs::read_dir(root) else {
        eprintln!("warning: cannot read {}", root.display());
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_files(&p, exts, out);
        } else if has_ext(&p) {
            out.push(p);
        }
    }
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

struct LoadedRules {
    rules: Vec<SigmaRule>,
    filters: Vec<rsigma_parser::FilterRule>,
    correlations: usize,
    files: usize,
    /// (file, reason) for files that produced no usable document.
    parse_failures: Vec<(PathBuf, String)>,
    /// (file, message) for parser messages on files that did load.
    parse_warnings: Vec<(PathBuf, String)>,
}

fn load_rules(dirs: &[PathBuf]) -> LoadedRules {
    let mut files = Vec::new();
    for d in dirs {
        collect_files(d, &["yml", "yaml"], &mut files);
    }
    let mut out = LoadedRules {
        rules: Vec::new(),
        filters: Vec::new(),
        correlations: 0,
        files: files.len(),
        parse_failures: Vec::new(),
        parse_warnings: Vec::new(),
    };
    for f in files {
        match rsigma_parser::parse_sigma_file(&f) {
            Ok(c) => {
                if c.rules.is_empty() && c.filters.is_empty() && c.correlations.is_empty() {
                    let why = if c.errors.is_empty() {
                        "no Sigma document".to_string()
                    } else {
                        c.errors.join("; ")
                    };
                    out.parse_failures.push((f, why));
                    continue;
                }
                for w in &c.errors {
                    out.parse_warnings.push((f.clone(), w.clone()));
                }
                out.correlations += c.correlations.len();
                out.rules.extend(c.rules);
                out.filters.extend(c.filters);
            }
            Err(e) => out.parse_failures.push((f, e.to_string())),
        }
    }
    out
}

/// Scalar text of a YAML value (strings and numbers).
fn yaml_scalar(v: &yaml_serde::Value) -> Option<Value> {
    match v {
        yaml_serde::Value::String(s) => Some(Value::String(s.clone())),
        yaml_serde::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from)),
        yaml_serde::Value::Bool(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

fn yaml_str<'a>(m: &'a yaml_serde::Mapping, k: &str) -> Option<&'a str> {
    m.get(yaml_serde::Value::String(k.to_string()))
        .and_then(|v| v.as_str())
}

/// Event-side field alias for one routed logsource alternative: on an event
/// whose `Channel` and condition fields match, copy `event_field` to the Sigma
/// field name (`Image` <- `NewProcessName` on Security 4688).
struct EventAlias {
    channels: Vec<String>,
    conditions: Vec<(String, Vec<String>)>,
    /// (sigma field, event field)
    fields: Vec<(String, String)>,
}

/// A value as the string it would be compared as ("4688" for 4688).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl EventAlias {
    fn apply(&self, ev: &mut Map<String, Value>) {
        let field_is = |k: &str, allowed: &[String]| {
            ev.get(k)
                .and_then(value_text)
                .is_some_and(|t| allowed.iter().any(|a| a == &t))
        };
        if !field_is("Channel", &self.channels)
            || !self.conditions.iter().all(|(k, vals)| field_is(k, vals))
        {
            return;
        }
        for (sigma, native) in &self.fields {
            if !ev.contains_key(sigma)
                && let Some(v) = ev.get(native).cloned()
            {
                ev.insert(sigma.clone(), v);
            }
        }
    }
}

/// Build an rsigma processing pipeline from a Sigma logsource mapping in the
/// THOR/sigmac config format (`logsources: {name: {product, service,
/// category, sources|conditions, rewrite, fieldmappings}}`), in the spirit of
/// rsigma's builtin `sysmon` pipeline (which adds EventID conditions only):
///
/// * `category: C` with `conditions` (EventID, EventType) -> one
///   `add_condition` per category: the union of its alternatives' values for
///   every condition field they all share (process_creation -> EventID
///   [1, 4688]). Per-field OR slightly over-approximates; it never loses an
///   event the map routes.
/// * with `channel_conditions`: also `Channel: [..]` for the category's
///   rewritten services, and for `product: windows, service: S` rules the
///   `Channel` values from `sources: [WinEventLog:X, ...]`. Off by default:
///   rsigma's candidate index prefers an exact-value witness, so a Channel
///   condition becomes the only index key of every rule that gets one and the
///   whole Security/Sysmon rule group is evaluated on every event of that
///   channel (numbers in bench/README.md).
/// * `fieldmappings` of a category with a single alternative become a
///   rule-side `field_name_mapping` (antivirus: Signature -> ThreatName);
///   those of one alternative among several (process_creation via Security
///   4688: Image -> NewProcessName) cannot be rule-side without splitting the
///   rule, so they become an [`EventAlias`] applied while decoding (untimed).
///
/// All conditions are `prepend`ed, so rsigma tests the cheap routing
/// condition before the rule's own detection.
fn pipeline_from_logsource_map(
    path: &Path,
    channel_conditions: bool,
) -> Result<(Pipeline, usize, Vec<EventAlias>), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: yaml_serde::Value =
        yaml_serde::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let logsources = doc
        .get("logsources")
        .and_then(|v| v.as_mapping())
        .ok_or("no `logsources` mapping")?;
    let key = |k: &str| yaml_serde::Value::String(k.to_string());

    // service -> channels
    let mut channels: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (category, product) -> alternatives (rewrite service, conditions, fieldmappings)
    type Alt<'a> = (
        Option<String>,
        Vec<(String, Vec<Value>)>,
        Option<&'a yaml_serde::Mapping>,
    );
    let mut categories: Vec<(String, Option<String>, Vec<Alt<'_>>)> = Vec::new();
    for (_, entry) in logsources {
        let Some(m) = entry.as_mapping() else {
            continue;
        };
        let product = yaml_str(m, "product").map(str::to_string);
        if let (Some(service), Some(sources)) = (
            yaml_str(m, "service"),
            m.get(key("sources")).and_then(|v| v.as_sequence()),
        ) {
            if product.as_deref() != Some("windows") {
                continue;
            }
            for s in sources.iter().filter_map(|s| s.as_str()) {
                if let Some(ch) = s.strip_prefix("WinEventLog:") {
                    channels
                        .entry(service.to_string())
                        .or_default()
                        .push(ch.to_string());
                }
            }
            continue;
        }
        let (Some(category), Some(conds)) = (
            yaml_str(m, "category"),
            m.get(key("conditions")).and_then(|v| v.as_mapping()),
        ) else {
            continue;
        };
        let rewrite = m.get(key("rewrite")).and_then(|v| v.as_mapping());
        let rewrite_product = rewrite.and_then(|r| yaml_str(r, "product"));
        if product.as_deref().or(rewrite_product) != Some("windows") {
            continue;
        }
        let service = rewrite
            .and_then(|r| yaml_str(r, "service"))
            .map(str::to_string);
        let conds: Vec<(String, Vec<Value>)> = conds
            .iter()
            .filter_map(|(k, v)| {
                let vals = match v.as_sequence() {
                    Some(seq) => seq.iter().filter_map(yaml_scalar).collect(),
                    None => yaml_scalar(v).into_iter().collect(),
                };
                Some((k.as_str()?.to_string(), vals))
            })
            .collect();
        let fieldmap = m.get(key("fieldmappings")).and_then(|v| v.as_mapping());
        let alt = (service, conds, fieldmap);
        match categories
            .iter_mut()
            .find(|(c, p, _)| c == category && *p == product)
        {
            Some((_, _, alts)) => alts.push(alt),
            None => categories.push((category.to_string(), product, vec![alt])),
        }
    }

    let string_map = |fm: &yaml_serde::Mapping| -> Vec<(String, String)> {
        fm.iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect()
    };
    let mut items: Vec<Value> = Vec::new();
    let mut aliases: Vec<EventAlias> = Vec::new();
    for (service, chans) in channels.iter().filter(|_| channel_conditions) {
        items.push(json!({
            "id": format!("channel_{service}"),
            "type": "add_condition",
            "prepend": true,
            "conditions": { "Channel": chans },
            "rule_conditions": [{ "type": "logsource", "product": "windows", "service": service }],
        }));
    }
    for (category, product, alts) in &categories {
        let mut conds: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        // fields every alternative constrains
        let shared: Vec<&String> = alts[0]
            .1
            .iter()
            .map(|(k, _)| k)
            .filter(|k| alts.iter().all(|a| a.1.iter().any(|(k2, _)| k2 == *k)))
            .collect();
        let mut all_channels: Vec<String> = Vec::new();
        for (service, c, fieldmap) in alts {
            for (k, vals) in c {
                if !shared.contains(&k) {
                    continue;
                }
                let slot = conds.entry(k.clone()).or_default();
                for v in vals {
                    if !slot.contains(v) {
                        slot.push(v.clone());
                    }
                }
            }
            let chans = service
                .as_ref()
                .and_then(|s| channels.get(s))
                .cloned()
                .unwrap_or_default();
            for ch in &chans {
                if !all_channels.contains(ch) {
                    all_channels.push(ch.clone());
                }
            }
            if alts.len() > 1
                && let Some(fm) = fieldmap
            {
                aliases.push(EventAlias {
                    channels: chans,
                    conditions: c
                        .iter()
                        .map(|(k, vals)| (k.clone(), vals.iter().filter_map(value_text).collect()))
                        .collect(),
                    fields: string_map(fm),
                });
            }
        }
        if channel_conditions && !all_channels.is_empty() {
            conds.insert(
                "Channel".into(),
                all_channels.into_iter().map(Value::String).collect(),
            );
        }
        let mut ls = json!({ "type": "logsource", "category": category });
        if let Some(p) = product {
            ls["product"] = json!(p);
        }
        items.push(json!({
            "id": format!("category_{category}"),
            "type": "add_condition",
            "prepend": true,
            "conditions": conds,
            "rule_conditions": [ls],
        }));
        if alts.len() == 1
            && let Some(fm) = alts[0].2
        {
            let mapping: Map<String, Value> = string_map(fm)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            items.push(json!({
                "id": format!("fields_{category}"),
                "type": "field_name_mapping",
                "mapping": mapping,
                "rule_conditions": [ls],
            }));
        }
    }
    let n = items.len();
    // JSON is valid YAML: hand the document to rsigma's own pipeline parser.
    let pipeline_doc = json!({
        "name": "windows-logsource-routing (from logsource map)",
        "priority": 10,
        "transformations": items,
    });
    if DUMP_PIPELINE.load(std::sync::atomic::Ordering::Relaxed) {
        println!(
            "{}",
            serde_json::to_string_pretty(&pipeline_doc).unwrap_or_default()
        );
        for a in &aliases {
            println!(
                "# event alias: Channel in {:?}, {:?} => copy {:?}",
                a.channels, a.conditions, a.fields
            );
        }
    }
    let pipeline = rsigma_eval::parse_pipeline(&pipeline_doc.to_string())
        .map_err(|e| format!("generated pipeline rejected by rsigma: {e}"))?;
    Ok((pipeline, n, aliases))
}

// ---------------------------------------------------------------------------
// EVTX -> flat Windows event
// ---------------------------------------------------------------------------

/// Unwrap `{"#attributes": {...}, "#text": x}` to `x`.
fn text_of(v: Value) -> Value {
    match v {
        Value::Object(mut m) if m.contains_key("#text") => m.remove("#text").unwrap_or(Value::Null),
        other => other,
    }
}

/// Copy the named values of an `EventData` / `UserData` child to the top level.
fn flatten_data(data: Value, out: &mut Map<String, Value>) {
    match data {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "#attributes" || k == "xmlns" {
                    continue;
                }
                let v = text_of(v);
                if !v.is_null() {
                    out.insert(k, v);
                }
            }
        }
        Value::Null => {}
        other => {
            out.insert("Data".into(), other);
        }
    }
}

/// Flatten one `evtx` JSON record (`{"Event": {"System": {...}, "EventData":
/// {...}}}`) into the flat shape Sigma's Windows rules are written against:
/// System fields at the top level (`EventID`, `Channel`, `Computer`,
/// `Provider_Name`, ...), then every `EventData` (or `UserData/<child>`)
/// field by its own name.
fn flatten_record(record: Value, aliases: &[EventAlias]) -> Value {
    let Value::Object(mut root) = record else {
        return record;
    };
    let Some(Value::Object(mut event)) = root.remove("Event") else {
        return Value::Object(root);
    };
    let mut out = Map::new();
    if let Some(Value::Object(system)) = event.remove("System") {
        for (k, v) in system {
            match (k.as_str(), v) {
                (_, Value::Null) => {}
                ("TimeCreated", Value::Object(mut m)) => {
                    if let Some(t) = m
                        .remove("#attributes")
                        .and_then(|mut a| a.get_mut("SystemTime").map(Value::take))
                    {
                        out.insert("TimeCreated".into(), t);
                    }
                }
                (_, Value::Object(mut m)) if m.contains_key("#text") => {
                    out.insert(k, m.remove("#text").unwrap_or(Value::Null));
                }
                (_, Value::Object(mut m)) => {
                    // Provider -> Provider_Name / Provider_Guid, Execution ->
                    // Execution_ProcessID, Security -> Security_UserID, ...
                    if let Some(Value::Object(attrs)) = m.remove("#attributes") {
                        for (ak, av) in attrs {
                            if !av.is_null() {
                                out.insert(format!("{k}_{ak}"), av);
                            }
                        }
                    }
                }
                (_, v) => {
                    out.insert(k, v);
                }
            }
        }
    }
    if let Some(data) = event.remove("EventData") {
        flatten_data(data, &mut out);
    }
    if let Some(Value::Object(user)) = event.remove("UserData") {
        for (k, child) in user {
            if k != "#attributes" {
                flatten_data(child, &mut out);
            }
        }
    }
    for alias in aliases {
        alias.apply(&mut out);
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    if args.dump_pipeline {
        DUMP_PIPELINE.store(true, std::sync::atomic::Ordering::Relaxed);
        let Some(map) = &args.logsource_map else {
            eprintln!("error: --dump-pipeline needs --logsource-map");
            return ExitCode::from(2);
        };
        return match pipeline_from_logsource_map(map, args.channel_conditions) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: --logsource-map: {e}");
                ExitCode::from(2)
            }
        };
    }

    // -- load rules -------------------------------------------------------
    let load_wall = Instant::now();
    let load_cpu = thread_cpu_seconds();
    let loaded = load_rules(&args.rules);

    let mut engine = Engine::new();
    let mut routing_items = 0;
    let mut aliases = Vec::new();
    if let Some(map) = &args.logsource_map {
        match pipeline_from_logsource_map(map, args.channel_conditions) {
            Ok((p, n, a)) => {
                routing_items = n;
                aliases = a;
                engine.add_pipeline(p);
            }
            Err(e) => {
                eprintln!("error: --logsource-map: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for p in &args.pipelines {
        let parsed = match rsigma_eval::resolve_builtin_pipeline(p) {
            Some(r) => r,
            None => rsigma_eval::parse_pipeline_file(Path::new(p)),
        };
        match parsed {
            Ok(p) => engine.add_pipeline(p),
            Err(e) => {
                eprintln!("error: --pipeline {p}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    engine.set_bloom_prefilter(args.bloom);
    engine.set_cross_rule_ac(args.cross_rule_ac);
    if args.pruning {
        // What `rsigma engine eval --logsource-routing -e @file.evtx` does:
        // EVTX implies product=windows, so linux/macos/cloud rules are pruned
        // (conflict-based, fail-open).
        engine.set_logsource_extractor(Some(LogSourceExtractor::new().with_defaults(LogSource {
            product: Some("windows".into()),
            ..LogSource::default()
        })));
    }
    let compile_errors = engine.add_rules(loaded.rules.iter());
    let mut filter_errors = Vec::new();
    for f in &loaded.filters {
        if let Err(e) = engine.apply_filter(f) {
            filter_errors.push(e.to_string());
        }
    }
    let load_seconds = load_wall.elapsed().as_secs_f64();
    let load_cpu_seconds = thread_cpu_seconds() - load_cpu;

    let rules_loaded = engine.rule_count();
    let rules_failed = loaded.parse_failures.len() + compile_errors.len();
    let mut failures: Vec<String> = loaded
        .parse_failures
        .iter()
        .map(|(f, e)| format!("parse {}: {e}", f.display()))
        .collect();
    failures.extend(compile_errors.iter().map(|(i, e)| {
        let r = &loaded.rules[*i];
        format!(
            "compile {} ({}): {e}",
            r.title,
            r.id.as_deref().unwrap_or("no id")
        )
    }));
    failures.extend(filter_errors.iter().map(|e| format!("filter: {e}")));
    for (f, w) in loaded.parse_warnings.iter().take(args.show_failures) {
        eprintln!("rule parse warning: {}: {w}", f.display());
    }
    for f in failures.iter().take(args.show_failures) {
        eprintln!("rule load failure: {f}");
    }
    if failures.len() > args.show_failures {
        eprintln!(
            "... {} more rule load failures (--show-failures N)",
            failures.len() - args.show_failures
        );
    }

    // -- decode + evaluate, one file at a time ------------------------------
    let mut evtx_files = Vec::new();
    for p in &args.inputs {
        collect_files(p, &["evtx"], &mut evtx_files);
    }
    let mut events: u64 = 0;
    let mut decode_errors: u64 = 0;
    let mut matches: u64 = 0;
    let mut events_matched: u64 = 0;
    let mut decode_wall = 0.0;
    let mut decode_cpu = 0.0;
    let mut eval_wall = 0.0;
    let mut eval_cpu = 0.0;
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    let count_per_rule = args.per_rule.is_some();
    let mut batch: Vec<Value> = Vec::new();
    let mut dump = match &args.dump_events {
        Some(p) => match fs::File::create(p) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };

    for file in &evtx_files {
        // decode (timed separately, not part of the eval numbers)
        let w = Instant::now();
        let c = thread_cpu_seconds();
        batch.clear();
        match EvtxParser::from_path(file) {
            Ok(parser) => {
                let mut parser =
                    parser.with_configuration(ParserSettings::default().num_threads(1));
                for rec in parser.records_json_value() {
                    match rec {
                        Ok(r) if args.raw => batch.push(r.data),
                        Ok(r) => batch.push(flatten_record(r.data, &aliases)),
                        Err(_) => decode_errors += 1,
                    }
                }
            }
            Err(e) => {
                eprintln!("warning: {}: {e}", file.display());
                decode_errors += 1;
            }
        }
        decode_cpu += thread_cpu_seconds() - c;
        decode_wall += w.elapsed().as_secs_f64();
        if let Some(out) = dump.as_mut() {
            use std::io::Write;
            for ev in &batch {
                let _ = writeln!(out, "{ev}");
            }
        }

        // evaluate (the measured loop)
        let w = Instant::now();
        let c = thread_cpu_seconds();
        for pass in 0..args.repeat {
            for ev in &batch {
                let results = engine.evaluate(&JsonEvent::borrow(ev));
                if pass == 0 && !results.is_empty() {
                    events_matched += 1;
                    matches += results.len() as u64;
                    if count_per_rule {
                        for r in &results {
                            let key = r
                                .header
                                .rule_id
                                .clone()
                                .unwrap_or_else(|| r.header.rule_title.clone());
                            *per_rule.entry(key).or_default() += 1;
                        }
                    }
                }
            }
        }
        eval_cpu += thread_cpu_seconds() - c;
        eval_wall += w.elapsed().as_secs_f64();
        events += batch.len() as u64;
    }
    drop(batch);

    if let Some(path) = &args.per_rule
        && let Err(e) = fs::write(
            path,
            serde_json::to_string_pretty(&per_rule).unwrap_or_default(),
        )
    {
        eprintln!("warning: {}: {e}", path.display());
    }

    let per_cpu = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let report = json!({
        "events": events,
        "rules_loaded": rules_loaded,
        "rules_failed": rules_failed,
        "matches": matches,
        "decode_seconds": round(decode_wall),
        "eval_cpu_seconds": round(eval_cpu),
        "eval_events_per_cpu_second": round(per_cpu(events * u64::from(args.repeat), eval_cpu)),
        "peak_rss_mb": round(peak_rss_mb()),
        // extras
        "files": evtx_files.len(),
        "decode_errors": decode_errors,
        "events_matched": events_matched,
        "rule_files": loaded.files,
        "rule_parse_warnings": loaded.parse_warnings.len(),
        "correlation_rules_skipped": loaded.correlations,
        "filters": loaded.filters.len(),
        "routing_pipeline_items": routing_items,
        "event_shape": if args.raw { "nested-evtx-json" } else { "flat" },
        "channel_conditions": args.channel_conditions,
        "extra_pipelines": args.pipelines,
        "event_aliases": aliases.len(),
        "repeat": args.repeat,
        "logsource_pruning": args.pruning,
        "bloom_prefilter": args.bloom,
        "cross_rule_ac": args.cross_rule_ac,
        "load_seconds": round(load_seconds),
        "load_cpu_seconds": round(load_cpu_seconds),
        "decode_cpu_seconds": round(decode_cpu),
        "eval_wall_seconds": round(eval_wall),
        "process_cpu_seconds": round(process_cpu_seconds()),
        "rsigma_eval_version": "0.23",
    });
    println!("{report}");
    ExitCode::SUCCESS
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
