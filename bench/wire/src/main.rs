//! bench/wire: the agent's event batch as JSON+zstd against protobuf+zstd (dozor-wire,
//! crates/wire/proto/batch.proto), on the normalized events of an EVTX corpus: bytes per event
//! on the wire, the server's CPU per event to turn a compressed body into JSON documents (what
//! it validates and stores either way), and the agent's CPU per event to make the body.
//!
//! Every event is first converted to protobuf and back and compared with the original, so the
//! protobuf form is proven lossless on the corpus before anything is timed.

use dozor_server::ingest::parse::{BatchFormat, Item, parse_batch};
use dozor_wire::{event_from_proto, event_to_proto, pb};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prost::Message;
use serde_json::Value;

struct Options {
    corpus: PathBuf,
    batch: usize,
    level: i32,
    runs: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        corpus: PathBuf::new(),
        batch: 500,
        level: 3,
        runs: 7,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--batch" => o.batch = value()?.parse()?,
            "--level" => o.level = value()?.parse()?,
            "--runs" => o.runs = value()?.parse()?,
            "-h" | "--help" => {
                println!("dozor-bench-wire [--batch 500] [--level 3] [--runs 7] CORPUS_DIR");
                std::process::exit(0);
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}"),
            _ => o.corpus = PathBuf::from(arg),
        }
    }
    if o.corpus.as_os_str().is_empty() {
        bail!("give the corpus directory (EVTX files)");
    }
    if o.batch == 0 || o.runs == 0 {
        bail!("--batch and --runs must be at least 1");
    }
    Ok(o)
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
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

/// The normalized events of the corpus, in file and record order (what the agent would send).
fn corpus_events(dir: &Path) -> Result<Vec<Value>> {
    let mut files = Vec::new();
    evtx_files(dir, &mut files)?;
    let mut events = Vec::new();
    for file in &files {
        let records = dozor_decode::read_path(file, &dozor_decode::ReadOptions::default())
            .with_context(|| format!("opening {}", file.display()))?;
        for flat in records.flatten() {
            if let Ok(event) = dozor_decode::winlog::to_event(&flat) {
                events.push(event);
            }
        }
    }
    if events.is_empty() {
        bail!("no events in {}", dir.display());
    }
    Ok(events)
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_nanos() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// The median over `runs` of the thread CPU time of `work`, per event, in nanoseconds.
fn median_per_event(runs: usize, events: usize, mut work: impl FnMut() -> usize) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = thread_cpu_nanos();
            let n = std::hint::black_box(work());
            assert_eq!(n, events, "a run saw another number of events");
            (thread_cpu_nanos() - start) as f64 / events as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ndjson(events: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        serde_json::to_writer(&mut body, event).expect("a Value always serializes");
        body.push(b'\n');
    }
    body
}

/// The agent builds its documents either way; protobuf then takes them over (no copy).
fn protobuf(events: Vec<Value>) -> Vec<u8> {
    pb::EventBatch {
        events: events.into_iter().filter_map(event_to_proto).collect(),
    }
    .encode_to_vec()
}

/// The thread CPU time of `work` over fresh copies of the batches (copied outside the clock),
/// per event, median of `runs`.
fn median_owned(
    runs: usize,
    batches: &[&[Value]],
    events: usize,
    work: impl Fn(Vec<Value>) -> usize,
) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let copies: Vec<Vec<Value>> = batches.iter().map(|b| b.to_vec()).collect();
            let start = thread_cpu_nanos();
            let n: usize = copies.into_iter().map(&work).sum();
            let spent = thread_cpu_nanos() - start;
            assert_eq!(n, events, "a run saw another number of events");
            spent as f64 / events as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// What the server does with a body: decompress, then its own batch parser
/// (`ingest::parse::parse_batch`: NDJSON lines parsed with the per-event limits, or protobuf
/// decoded, converted and held to the same limits), every event a document.
fn server_read(body: &[u8], format: BatchFormat) -> Vec<Value> {
    let bytes = zstd::bulk::decompress(body, 64 << 20).expect("our own zstd");
    parse_batch(&bytes, format, 10_000)
        .expect("our own batch")
        .into_iter()
        .map(|item| match item {
            Item::Value(document) => document,
            Item::Malformed { pointer, message } => panic!("refused at {pointer}: {message}"),
        })
        .collect()
}

fn compress(body: &[u8], level: i32) -> Vec<u8> {
    zstd::bulk::compress(body, level).expect("zstd compresses")
}

fn main() -> Result<()> {
    let o = options()?;
    let started = Instant::now();
    let events = corpus_events(&o.corpus)?;
    let n = events.len();
    eprintln!(
        "{n} events from {} in {:.1} s",
        o.corpus.display(),
        started.elapsed().as_secs_f64()
    );

    // Lossless first: every event through protobuf and back equals the original.
    let mut typed_members = 0usize;
    for (i, event) in events.iter().enumerate() {
        let proto = event_to_proto(event.clone()).context("an event is not an object")?;
        let other = proto.other.as_ref().map_or(0, |o| o.members.len());
        typed_members += usize::from(other == 0);
        let back = event_from_proto(pb::Event::decode(&proto.encode_to_vec()[..])?)?;
        if back != *event {
            bail!(
                "event {i} changed through protobuf:\n{}\n{}",
                serde_json::to_string(event)?,
                serde_json::to_string(&back)?
            );
        }
    }
    eprintln!("all {n} events convert to protobuf and back unchanged");

    let batches: Vec<&[Value]> = events.chunks(o.batch).collect();
    let json_raw: Vec<Vec<u8>> = batches.iter().map(|b| ndjson(b)).collect();
    let proto_raw: Vec<Vec<u8>> = batches.iter().map(|b| protobuf(b.to_vec())).collect();
    let per_event = |bodies: &[Vec<u8>]| bodies.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let zstd_per_event = |bodies: &[Vec<u8>], level: i32| {
        bodies.iter().map(|b| compress(b, level).len()).sum::<usize>() as f64 / n as f64
    };

    println!(
        "corpus: {} ({n} events, batches of {}, {} batches)",
        o.corpus.display(),
        o.batch,
        batches.len()
    );
    println!(
        "events with no member outside the typed fields: {typed_members} of {n}\n"
    );
    println!("| bytes per event | JSON (NDJSON) | protobuf | protobuf ÷ JSON |");
    println!("|---|---:|---:|---:|");
    let (j, p) = (per_event(&json_raw), per_event(&proto_raw));
    println!("| uncompressed | {j:.1} | {p:.1} | {:.3} |", p / j);
    for level in [1, 3, 9, 19] {
        let (j, p) = (zstd_per_event(&json_raw, level), zstd_per_event(&proto_raw, level));
        let mark = if level == o.level { " (agent default)" } else { "" };
        println!("| zstd {level}{mark} | {j:.1} | {p:.1} | {:.3} |", p / j);
    }

    let json_bodies: Vec<Vec<u8>> = json_raw.iter().map(|b| compress(b, o.level)).collect();
    let proto_bodies: Vec<Vec<u8>> = proto_raw.iter().map(|b| compress(b, o.level)).collect();
    // The server's side, both bodies giving the same documents.
    for (j, p) in json_bodies.iter().zip(&proto_bodies) {
        if server_read(j, BatchFormat::Ndjson) != server_read(p, BatchFormat::Protobuf) {
            bail!("the server's two decodings disagree");
        }
    }
    let server_j = median_per_event(o.runs, n, || json_bodies.iter().map(|b| server_read(b, BatchFormat::Ndjson).len()).sum());
    let server_p = median_per_event(o.runs, n, || proto_bodies.iter().map(|b| server_read(b, BatchFormat::Protobuf).len()).sum());
    let validator = dozor_event::schema::EventValidator::new().map_err(anyhow::Error::msg)?;
    let validate = median_per_event(o.runs, n, || {
        events
            .iter()
            .map(|e| std::hint::black_box(validator.validate(e)).len().min(1))
            .count()
    });
    // The agent's side: documents to a compressed body.
    let agent_j = median_owned(o.runs, &batches, n, |b| {
        std::hint::black_box(compress(&ndjson(&b), o.level));
        b.len()
    });
    let agent_p = median_owned(o.runs, &batches, n, |b| {
        let len = b.len();
        std::hint::black_box(compress(&protobuf(b), o.level));
        len
    });
    // What the agent does at send time: its spool holds NDJSON lines.
    let spool_j = median_per_event(o.runs, n, || {
        json_raw
            .iter()
            .zip(&batches)
            .map(|(body, b)| {
                std::hint::black_box(compress(body, o.level));
                b.len()
            })
            .sum()
    });
    let spool_p = median_per_event(o.runs, n, || {
        json_raw
            .iter()
            .zip(&batches)
            .map(|(body, b)| {
                let documents: Vec<Value> = body
                    .split(|c| *c == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| serde_json::from_slice(line).expect("our own JSON"))
                    .collect();
                let proto = dozor_wire::encode_batch(documents).expect("objects");
                std::hint::black_box(compress(&proto, o.level));
                b.len()
            })
            .sum()
    });
    println!(
        "\n| CPU per event (median of {} runs, thread CPU time) | JSON+zstd {} | protobuf+zstd {} | protobuf ÷ JSON |",
        o.runs, o.level, o.level
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| server: body → documents (decompress, then ingest::parse::parse_batch: parse / decode, convert, check limits) | {:.2} µs | {:.2} µs | {:.3} |",
        server_j / 1e3,
        server_p / 1e3,
        server_p / server_j
    );
    println!(
        "| server, for scale: validating the documents against the event schema (the same for both) | {:.2} µs | {:.2} µs | |",
        validate / 1e3,
        validate / 1e3
    );
    println!(
        "| agent: documents → body (serialize / convert + encode, compress) | {:.2} µs | {:.2} µs | {:.3} |",
        agent_j / 1e3,
        agent_p / 1e3,
        agent_p / agent_j
    );
    println!(
        "| agent as built: spooled NDJSON → body (compress / parse, convert, encode, compress) | {:.2} µs | {:.2} µs | {:.3} |",
        spool_j / 1e3,
        spool_p / 1e3,
        spool_p / spool_j
    );
    Ok(())
}
