//! SigmaHQ regression data: every case's rule fires on its own file at least `match_count`
//! times, with the full rule set loaded (rules, emerging threats, threat hunting).
//!
//! Reads ../shared in place. Skips with a message when ../shared is absent and
//! DOZOR_SHARED_DIR is unset; fails when DOZOR_SHARED_DIR is set but missing (CI sets it).

use std::path::{Path, PathBuf};

mod common;
use common::shared_dir;
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};

struct Case {
    rule_id: String,
    path: PathBuf,
    match_count: usize,
}

fn cases(shared: &Path) -> Vec<Case> {
    let root = shared.join("sigma");
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root.join("regression_data")).sort_by_file_name() {
        let entry = entry.expect("walk regression_data");
        if entry.file_name() != "info.yml" {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("read info.yml");
        let info: yaml_serde::Value = yaml_serde::from_str(&text).expect("parse info.yml");
        let rule_id = info["rule_metadata"][0]["id"]
            .as_str()
            .expect("rule id")
            .to_owned();
        let Some(tests) = info
            .get("regression_tests_info")
            .and_then(|t| t.as_sequence())
        else {
            continue;
        };
        for t in tests {
            if t["type"].as_str() != Some("evtx") {
                continue;
            }
            let rel = t["path"].as_str().expect("path");
            let match_count = t["match_count"].as_u64().unwrap_or(1) as usize;
            out.push(Case {
                rule_id: rule_id.clone(),
                path: root.join(rel),
                match_count,
            });
        }
    }
    out
}

fn full_detector(shared: &Path) -> Detector {
    let dirs: Vec<PathBuf> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|d| shared.join("sigma").join(d))
        .collect();
    let set = RuleSet::load_paths(&dirs, &LoadOptions::default());
    assert!(set.invalid.is_empty(), "invalid rules: {:#?}", set.invalid);
    Detector::build(set, &EngineOptions::default(), &DetectorOptions::default()).0
}

fn run_cases(input_of: impl Fn(&Case) -> PathBuf, label: &str) {
    let Some(shared) = shared_dir() else { return };
    let detector = full_detector(&shared);
    let engine = detector.engine();
    let cases = cases(&shared);
    assert_eq!(cases.len(), 202, "expected 202 regression cases");
    let mut scratch = engine.new_scratch();
    let mut failures = Vec::new();
    for case in &cases {
        let input = input_of(case);
        let target = engine.rules().iter().position(|r| r.id == case.rule_id);
        let Some(target) = target else {
            failures.push(format!(
                "{}: rule {} not loaded",
                input.display(),
                case.rule_id
            ));
            continue;
        };
        let mut count = 0;
        let mut hits = Vec::new();
        let reader = match dozor_decode::read_path(&input, &dozor_decode::ReadOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: {e}", input.display()));
                continue;
            }
        };
        for event in reader {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    failures.push(format!("{}: {e}", input.display()));
                    continue;
                }
            };
            hits.clear();
            engine.matches(&event, &mut scratch, &mut hits);
            if hits.contains(&(target as u32)) {
                count += 1;
            }
        }
        if count < case.match_count {
            failures.push(format!(
                "{}: rule {} ({}) matched {count} times, expected at least {}",
                input.display(),
                case.rule_id,
                engine.rules()[target].title,
                case.match_count
            ));
        }
    }
    let passed = cases.len() - failures.len();
    println!("{label}: {passed}/{} regression cases pass", cases.len());
    assert!(
        failures.is_empty(),
        "{label}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn sigmahq_regression_evtx_202_of_202() {
    run_cases(|c| c.path.clone(), "EVTX");
}

#[test]
fn sigmahq_regression_json_202_of_202() {
    run_cases(|c| c.path.with_extension("json"), "JSON");
}
