//! Detection-only throughput: decode a corpus into memory, then time `Engine::matches` alone.
//! `cargo run --release -p dozor-cli --example evalbench -- CORPUS RULES...`
use std::path::PathBuf;
use std::time::Instant;

use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};

fn main() {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().expect("corpus"));
    let rules: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let t = Instant::now();
    let set = RuleSet::load_paths(&rules, &LoadOptions::default());
    let (detector, _) =
        Detector::build(set, &EngineOptions::default(), &DetectorOptions::default());
    let load = t.elapsed();
    let t = cpu_time::ThreadTime::now();
    let mut events = Vec::new();
    for e in walkdir::WalkDir::new(&corpus).sort_by_file_name() {
        let e = e.expect("walk");
        if e.path().extension().is_some_and(|x| x == "evtx") {
            for ev in dozor_decode::read_path(e.path(), &dozor_decode::ReadOptions::default())
                .expect("open")
                .flatten()
            {
                events.push(ev);
            }
        }
    }
    let decode = t.elapsed();
    let engine = detector.engine();
    let mut scratch = engine.new_scratch();
    let mut out = Vec::new();
    let rounds = 20;
    let mut matches = 0;
    let t = cpu_time::ThreadTime::now();
    for _ in 0..rounds {
        for e in &events {
            out.clear();
            engine.matches(e, &mut scratch, &mut out);
            matches += out.len();
        }
    }
    let eval = t.elapsed();
    let n = events.len() * rounds;
    println!(
        "events={} load={load:.2?} decode={decode:.2?} ({:.0} ev/CPU-s) eval={:.0} ev/CPU-s matches/round={}",
        events.len(),
        events.len() as f64 / decode.as_secs_f64(),
        n as f64 / eval.as_secs_f64(),
        matches / rounds
    );
}
