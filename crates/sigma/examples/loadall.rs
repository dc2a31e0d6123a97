use dozor_sigma::{Engine, EngineOptions, LoadOptions, Outcome, RuleSet};
use std::path::PathBuf;

fn main() {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let t = std::time::Instant::now();
    let set = RuleSet::load_paths(&paths, &LoadOptions::default());
    let t1 = t.elapsed();
    for r in &set.invalid {
        println!("INVALID {} {}: {:?}", r.path.display(), r.title, r.outcome);
    }
    let nf = set.filters.len();
    let nc = set.correlations.len();
    let (engine, report) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
    let mut counts = std::collections::BTreeMap::new();
    for (meta, outcome, _notes) in &report {
        let k = match outcome {
            Outcome::Active => "active",
            Outcome::Unrouted(_) => "unrouted",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::Invalid(_) => "invalid",
        };
        *counts.entry(k).or_insert(0) += 1;
        if let Outcome::Unsupported(r) = outcome {
            println!("UNSUPPORTED {} {}: {r}", meta.path.display(), meta.title);
        }
    }
    println!(
        "files={} filters={nf} correlations={nc} {:?} load={t1:?} total={:?}",
        set.files,
        counts,
        t.elapsed()
    );
    println!("{engine:?}");
}
