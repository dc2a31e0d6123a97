//! Scans files with a directory of YARA rules, like the `yara` CLI, through `dozor_scan::yara`.
//!
//! ```text
//! cargo run --release -p dozor-scan --features yara --example yara_scan -- \
//!     [--threads N] [--scan-list FILE] [--max-bytes N] [--timeout SECS] [--compile-only] \
//!     RULES_DIR [FILE|DIR]...
//! ```
//!
//! Directories are walked recursively (symbolic links are not followed); `--scan-list` reads
//! one path per line. Every matching rule is printed to stdout as `rule path` (the `yara`
//! CLI's format), errors and a summary (`files`, `bytes`, `seconds`, `MB/s`) go to stderr.
//! One `YaraScanner` per thread; the threads take files from a shared queue.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dozor_scan::yara::{YaraLimits, YaraRules};

struct Args {
    threads: usize,
    scan_list: Option<PathBuf>,
    limits: YaraLimits,
    compile_only: bool,
    rules: PathBuf,
    targets: Vec<PathBuf>,
}

const USAGE: &str = "usage: yara_scan [--threads N] [--scan-list FILE] [--max-bytes N] \
                     [--timeout SECS] [--compile-only] RULES_DIR [FILE|DIR]...";

fn parse_args() -> Result<Args, String> {
    let mut threads = 1usize;
    let mut scan_list = None;
    let mut limits = YaraLimits::default();
    let mut compile_only = false;
    let mut positional = Vec::new();
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match text.as_str() {
            "--threads" | "-p" => {
                threads = value("--threads")?
                    .to_string_lossy()
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?;
            }
            "--scan-list" => scan_list = Some(PathBuf::from(value("--scan-list")?)),
            "--max-bytes" => {
                limits.max_file_bytes = value("--max-bytes")?
                    .to_string_lossy()
                    .parse()
                    .map_err(|e| format!("--max-bytes: {e}"))?;
            }
            "--timeout" => {
                let secs: u64 = value("--timeout")?
                    .to_string_lossy()
                    .parse()
                    .map_err(|e| format!("--timeout: {e}"))?;
                limits.timeout = Duration::from_secs(secs);
            }
            "--compile-only" => compile_only = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option {s}\n{USAGE}"));
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    if positional.is_empty() {
        return Err(USAGE.to_owned());
    }
    let rules = positional.remove(0);
    Ok(Args {
        threads: threads.max(1),
        scan_list,
        limits,
        compile_only,
        rules,
        targets: positional,
    })
}

/// Regular files under `path` (or `path` itself), sorted per directory; symlinks are skipped.
fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        eprintln!("error: cannot stat {}", path.display());
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            eprintln!("error: cannot list {}", path.display());
            return;
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            walk(&child, out);
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    let started = Instant::now();
    let load = match YaraRules::compile_dir(&args.rules) {
        Ok(load) => load,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for e in &load.errors {
        eprintln!("error: {}\n{}", e.path.display(), e.message);
    }
    eprintln!(
        "compiled {} rules from {} files in {:.3} s ({} files skipped)",
        load.rules.rule_count(),
        load.files_loaded,
        started.elapsed().as_secs_f64(),
        load.errors.len()
    );
    if args.compile_only {
        return ExitCode::SUCCESS;
    }

    let mut files = Vec::new();
    if let Some(list) = &args.scan_list {
        match std::fs::File::open(list) {
            Ok(f) => {
                for line in io::BufReader::new(f).lines() {
                    match line {
                        Ok(l) if !l.trim().is_empty() => files.push(PathBuf::from(l.trim_end())),
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("error: reading {}: {e}", list.display());
                            return ExitCode::from(2);
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", list.display());
                return ExitCode::from(2);
            }
        }
    }
    for target in &args.targets {
        walk(target, &mut files);
    }

    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let scanned = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let stdout = Mutex::new(io::BufWriter::new(io::stdout()));
    let scan_started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| {
                let mut scanner = load.rules.scanner(args.limits);
                let mut lines = String::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    match scanner.scan_file(path) {
                        Ok(matches) => {
                            scanned.fetch_add(1, Ordering::Relaxed);
                            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                            bytes.fetch_add(size, Ordering::Relaxed);
                            if matches.is_empty() {
                                continue;
                            }
                            lines.clear();
                            for m in &matches {
                                lines.push_str(&m.rule);
                                lines.push(' ');
                                lines.push_str(&path.display().to_string());
                                lines.push('\n');
                            }
                            if let Ok(mut out) = stdout.lock() {
                                let _ = out.write_all(lines.as_bytes());
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("error: {e}");
                        }
                    }
                }
            });
        }
    });
    if let Ok(mut out) = stdout.lock() {
        let _ = out.flush();
    }
    let secs = scan_started.elapsed().as_secs_f64();
    let bytes = bytes.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let mb_s = if secs > 0.0 {
        bytes as f64 / 1e6 / secs
    } else {
        0.0
    };
    eprintln!(
        "files {} bytes {} seconds {:.3} MB/s {:.1} errors {} threads {}",
        scanned.load(Ordering::Relaxed),
        bytes,
        secs,
        mb_s,
        failed.load(Ordering::Relaxed),
        args.threads
    );
    ExitCode::SUCCESS
}
