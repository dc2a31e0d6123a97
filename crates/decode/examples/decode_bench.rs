//! Measures decoding throughput: `cargo run --release -p dozor-decode --example decode_bench --
//! [--threads N] [--repeat N] PATH...` (files or folders, walked for .evtx/.xml/.json files).

use std::path::{Path, PathBuf};
use std::time::Instant;

use dozor_decode::{ReadOptions, read_path};

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            collect(&child, out);
        }
    } else if path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "evtx" | "xml" | "json" | "jsonl" | "ndjson"))
    {
        out.push(path.to_path_buf());
    }
}

fn main() {
    let mut threads = 1;
    let mut repeat = 3;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--repeat" => repeat = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            path => collect(Path::new(path), &mut files),
        }
    }
    if files.is_empty() {
        eprintln!("usage: decode_bench [--threads N] [--repeat N] PATH...");
        std::process::exit(2);
    }
    let opts = ReadOptions {
        evtx_threads: threads,
        ..ReadOptions::default()
    };
    let mut best = f64::INFINITY;
    let (mut events, mut fields, mut errors, mut unreadable) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..repeat.max(1) {
        (events, fields, errors, unreadable) = (0, 0, 0, 0);
        let start = Instant::now();
        for file in &files {
            match read_path(file, &opts) {
                Ok(stream) => {
                    for item in stream {
                        match item {
                            Ok(event) => {
                                events += 1;
                                fields += event.fields.len() as u64;
                            }
                            Err(_) => errors += 1,
                        }
                    }
                }
                Err(_) => unreadable += 1,
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "files={} unreadable={unreadable} events={events} fields={fields} errors={errors} \
         best of {repeat}: {best:.3}s = {:.0} events/s (evtx_threads={threads})",
        files.len(),
        events as f64 / best
    );
}
