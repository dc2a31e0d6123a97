//! Malformed rules never panic: every SigmaHQ rule file, cut short and byte-mutated, loads
//! into reports (valid or invalid) and compiles without panicking.

use std::path::{Path, PathBuf};

use dozor_sigma::{Engine, EngineOptions, LoadOptions, RuleSet};

fn shared_rules() -> Option<PathBuf> {
    let p = match std::env::var("DOZOR_SHARED_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let rules = p.join("sigma/rules/windows/process_creation");
    if rules.is_dir() {
        Some(rules)
    } else {
        println!("skipped: ../shared not found");
        None
    }
}

/// A tiny deterministic generator (no dependency, reproducible failures).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_mutated_rules_never_panic() {
    let Some(dir) = shared_rules() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files.truncate(300);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut set = RuleSet::default();
    let options = LoadOptions::default();
    let mut variants = 0;
    for f in &files {
        let text = std::fs::read(f).expect("read rule");
        for _ in 0..4 {
            let mut bytes = text.clone();
            match rng.next() % 3 {
                0 => bytes.truncate((rng.next() as usize) % bytes.len().max(1)),
                1 => {
                    for _ in 0..4 {
                        let i = (rng.next() as usize) % bytes.len().max(1);
                        let alphabet = b"|*?\\:-' \n{}[]%";
                        bytes[i] = alphabet[(rng.next() as usize) % alphabet.len()];
                    }
                }
                _ => {
                    let i = (rng.next() as usize) % bytes.len().max(1);
                    let j = (rng.next() as usize) % bytes.len().max(1);
                    let (a, b) = (i.min(j), i.max(j));
                    bytes.drain(a..b);
                }
            }
            set.add_text(f, &String::from_utf8_lossy(&bytes), &options);
            variants += 1;
        }
    }
    let invalid = set.invalid.len();
    let (engine, report) = Engine::build(set.rules, &set.filters, &EngineOptions::default());
    let mut scratch = engine.new_scratch();
    let mut out = Vec::new();
    let event = serde_json::json!({"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1,
        "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c whoami -all", "ParentImage": "C:\\x\\y.exe"});
    engine.matches(&event, &mut scratch, &mut out);
    println!(
        "{variants} mutated documents: {invalid} invalid at parse, {} compiled or reported",
        report.len()
    );
    assert!(invalid > 0, "mutations must produce some invalid documents");
}
