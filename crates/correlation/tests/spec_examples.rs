//! Every correlation example of the Sigma v2.1 specification (the text and
//! `tests/schema/correlation/`) parses, and the complete example runs.
//!
//! Reads `../shared/sigma-specification` relative to the repository root; prints a notice and
//! passes when it is absent.

mod common;

use std::path::PathBuf;

use common::{Ev, Harness, MIN, SEC, pairs};
use dozor_correlation::{
    CompareOp, CorrelationConfig, CorrelationEngine, CorrelationError, CorrelationRule,
    CorrelationType, RuleRef, base_rules_without_standalone_output, parse_correlation, resolve,
};

fn spec_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sigma-specification");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} not found", dir.display());
        None
    }
}

/// YAML code blocks of the correlation specification, in order.
fn spec_blocks(dir: &std::path::Path) -> Vec<String> {
    let md =
        std::fs::read_to_string(dir.join("specification/sigma-correlation-rules-specification.md"))
            .expect("specification text");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        let t = line.trim();
        match &mut current {
            None if t == "```yaml" || t == "```yml" => current = Some(String::new()),
            Some(_) if t == "```" => blocks.extend(current.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn documents(text: &str) -> Vec<yaml_serde::Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .map(|d| yaml_serde::Value::deserialize(d).expect("valid YAML in the specification"))
        .collect()
}

#[test]
fn every_example_in_the_specification_text_parses() {
    let Some(dir) = spec_dir() else { return };
    let mut parsed: Vec<CorrelationRule> = Vec::new();
    let mut fragments_without_title = 0;
    let mut fragment_without_type = 0;
    for block in spec_blocks(&dir) {
        for doc in documents(&block) {
            if !dozor_correlation::is_correlation(&doc) {
                continue;
            }
            match parse_correlation(&doc) {
                Ok(rule) => parsed.push(rule),
                // The spec shows some correlations as fragments without the mandatory title
                // ("Temporal Proximity", "Ordered Temporal Proximity"): they must be refused for
                // exactly that reason, and parse once a title is added.
                Err(CorrelationError::Missing("title")) => {
                    fragments_without_title += 1;
                    let mut doc = doc.clone();
                    if let Some(m) = doc.as_mapping_mut() {
                        m.insert("title".into(), "added by the test".into());
                    }
                    parsed.push(parse_correlation(&doc).unwrap_or_else(|e| panic!("{e}\n{block}")));
                }
                // "Related rules" only illustrates `rules:`.
                Err(CorrelationError::Missing("correlation.type")) => {
                    assert!(block.contains("firewall_block"), "{block}");
                    fragment_without_type += 1;
                }
                Err(e) => panic!("{e}\n{block}"),
            }
        }
    }
    assert_eq!(fragments_without_title, 2);
    assert_eq!(fragment_without_type, 1);
    let kinds: Vec<CorrelationType> = parsed.iter().map(|r| r.kind).collect();
    use CorrelationType::*;
    assert_eq!(
        kinds,
        vec![
            EventCount,
            ValueCount,
            Temporal,
            TemporalOrdered,
            ValueSum,
            ValueAvg,
            ValuePercentile,
            Temporal,
            TemporalOrdered,
            EventCount
        ]
    );

    // Spot checks against the text.
    let event_count = &parsed[0];
    assert_eq!(
        event_count.id.as_deref(),
        Some("0e95725d-7320-415d-80f7-004da920fc11")
    );
    assert_eq!(event_count.group_by, vec!["ComputerName"]);
    assert_eq!(event_count.timespan.millis, 3_600_000);
    assert_eq!(event_count.condition.bounds, vec![(CompareOp::Gte, 100.0)]);
    let value_count = &parsed[1];
    assert_eq!(value_count.condition.fields, vec!["User"]);
    assert_eq!(value_count.timespan.millis, 86_400_000);
    assert_eq!(
        parsed[2].condition.bounds,
        vec![(CompareOp::Gte, 3.0)],
        "temporal default: all rules"
    );
    assert_eq!(
        parsed[4].condition.bounds,
        vec![(CompareOp::Gt, 1_000_000.0)]
    );
    assert_eq!(parsed[6].condition.fields, vec!["image"]);
    let aliases = &parsed[7];
    assert_eq!(aliases.aliases.len(), 2);
    assert_eq!(
        aliases.alias("internal_ip").unwrap().fields,
        pairs(&[
            ("internal_error", "destination.ip"),
            ("new_network_connection", "source.ip")
        ])
    );
    let outer = &parsed[8];
    assert_eq!(outer.level.as_deref(), Some("high"));
    assert_eq!(outer.status.as_deref(), Some("experimental"));
    assert_eq!(outer.date.as_deref(), Some("2023-06-16"));
    assert_eq!(
        outer.author.as_deref(),
        Some("Florian Roth (Nextron Systems)")
    );
    assert_eq!(outer.falsepositives, vec!["Unlikely"]);
    assert_eq!(outer.references, vec!["https://reference.com"]);
    assert_eq!(parsed[9].name.as_deref(), Some("multiple_failed_login"));
}

#[test]
fn every_schema_test_file_parses() {
    let Some(dir) = spec_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("tests/schema/correlation"))
        .expect("schema tests")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable");
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).expect("valid YAML");
        let rule = parse_correlation(&doc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert_eq!(
            rule.kind.as_str(),
            stem.trim_end_matches("_ecs"),
            "{}",
            f.display()
        );
        if stem.ends_with("_ecs") {
            assert_eq!(rule.taxonomy.as_deref(), Some("ecs"));
            assert_eq!(rule.group_by, vec!["dns.question.name"]);
        }
    }
}

/// The complete example at the end of the specification ("Failed Logins Followed by
/// Successful Login"), parsed from the text, resolved and run.
#[test]
fn complete_example_of_the_specification_runs() {
    let Some(dir) = spec_dir() else { return };
    let block = spec_blocks(&dir)
        .into_iter()
        .find(|b| b.contains("Correlation - Multiple Failed Logins Followed by Successful Login"))
        .expect("the complete example");
    let docs = documents(&block);
    assert_eq!(docs.len(), 4);
    let correlations: Vec<CorrelationRule> = docs
        .iter()
        .filter(|d| dozor_correlation::is_correlation(d))
        .map(|d| parse_correlation(d).expect("parses"))
        .collect();
    assert_eq!(correlations.len(), 2);
    // Base rules: the two detection documents, by name (index = position).
    let base: Vec<String> = docs
        .iter()
        .filter(|d| !dozor_correlation::is_correlation(d))
        .map(|d| {
            d.get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(base, vec!["failed_login", "successful_login"]);
    let lookup = |r: &str| base.iter().position(|b| b == r).map(|i| i as u32);
    let resolution = resolve(correlations, &lookup);
    assert!(resolution.errors.is_empty(), "{:?}", resolution.errors);
    let rules = resolution.correlations;
    assert_eq!(
        rules[0].inputs,
        vec![RuleRef::Correlation(1), RuleRef::Base(1)]
    );
    assert_eq!(rules[1].inputs, vec![RuleRef::Base(0)]);
    assert!(
        rules[0].output && !rules[1].output,
        "the inner correlation only feeds the outer one"
    );
    assert_eq!(base_rules_without_standalone_output(&rules), vec![0, 1]);

    let mut engine =
        CorrelationEngine::new(rules, CorrelationConfig::default()).expect("consistent");
    let mut out = Vec::new();
    // 10 failed logins of alice within 10 minutes, then a success: one alert.
    for k in 0..10 {
        let e = Ev::at(k * 30 * SEC).s("User", "alice").i("EventID", 4625);
        engine.on_match(0, &e, k as u64, &mut out);
        // bob fails only 9 times
        if k < 9 {
            let e = Ev::at(k * 30 * SEC).s("User", "bob").i("EventID", 4625);
            engine.on_match(0, &e, 100 + k as u64, &mut out);
        }
    }
    assert!(
        out.is_empty(),
        "the inner correlation is not reported on its own: {out:?}"
    );
    for (user, r) in [("alice", 50), ("bob", 150)] {
        let e = Ev::at(6 * MIN).s("User", user).i("EventID", 4624);
        engine.on_match(1, &e, r, &mut out);
    }
    assert_eq!(out.len(), 1, "{out:?}");
    let hit = &out[0];
    assert_eq!(hit.correlation, 0);
    assert_eq!(hit.group, pairs(&[("User", "alice")]));
    assert_eq!(hit.value, 2.0);
    assert_eq!(
        hit.first_millis,
        9 * 30 * SEC,
        "the inner hit is placed at its last event"
    );
    assert_eq!(hit.last_millis, 6 * MIN);
    let mut expected: Vec<u64> = (0..10).collect();
    expected.push(50);
    assert_eq!(hit.event_refs, expected);
    let mut rest = Vec::new();
    engine.finish(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn harness_runs_spec_alias_example() {
    // Field Name Aliases example of the specification (title/id were "—").
    let yaml = "title: —\nid: —\ncorrelation:\n    type: temporal\n    rules:\n        - internal_error\n        - new_network_connection\n    group-by:\n        - internal_ip\n        - remote_ip\n    timespan: 10s\n    aliases:\n        internal_ip:\n            internal_error: destination.ip\n            new_network_connection: source.ip\n        remote_ip:\n            internal_error: source.ip\n            new_network_connection: destination.ip\n";
    let mut h = Harness::new(&[yaml], &["internal_error", "new_network_connection"]);
    let err = Ev::at(0)
        .s("destination.ip", "10.0.0.5")
        .s("source.ip", "203.0.113.9")
        .i("http.response.status_code", 500);
    assert!(h.feed("internal_error", &err).is_empty());
    // A connection in the other direction between other hosts: no match.
    let other = Ev::at(SEC)
        .s("source.ip", "10.0.0.6")
        .s("destination.ip", "203.0.113.9");
    assert!(h.feed("new_network_connection", &other).is_empty());
    // The internal host connects out to the same remote: match.
    let conn = Ev::at(5 * SEC)
        .s("source.ip", "10.0.0.5")
        .s("destination.ip", "203.0.113.9");
    let hits = h.feed("new_network_connection", &conn);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].group,
        pairs(&[("internal_ip", "10.0.0.5"), ("remote_ip", "203.0.113.9")])
    );
    assert_eq!(hits[0].event_refs, vec![0, 2]);
}
