//! Detectors made with `Detector::another` share the compiled rules but never their
//! correlation state: the server gives one to each worker.

use std::path::Path;

use dozor_event::FlatEvent;
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};

const RULES: &str = "\
title: failed logon
name: failed
id: 00000000-0000-4000-8000-000000000001
logsource: {product: test}
detection:
    sel: {EventID: 4625}
    condition: sel
---
title: brute force
id: 00000000-0000-4000-8000-000000000002
correlation:
    type: event_count
    rules: [failed]
    group-by: [User]
    timespan: 60s
    condition: {gte: 2}
";

fn detector() -> Detector {
    let mut set = RuleSet::default();
    set.add_text(Path::new("rules.yml"), RULES, &LoadOptions::default());
    assert!(set.invalid.is_empty(), "{:?}", set.invalid);
    let options = EngineOptions {
        evaluate_unrouted: true,
        ..EngineOptions::default()
    };
    Detector::build(set, &options, &DetectorOptions::default()).0
}

fn failed_logon(at: i64) -> FlatEvent {
    let mut e = FlatEvent::new();
    e.timestamp_millis = Some(at);
    e.push("EventID", 4625);
    e.push("User", "alice");
    e
}

/// Feeds the event through the detector as the pipeline does; returns correlation hits.
fn feed(detector: &mut Detector, event: &FlatEvent) -> usize {
    let mut scratch = detector.engine().new_scratch();
    let mut matched = Vec::new();
    detector.engine().matches(event, &mut scratch, &mut matched);
    assert_eq!(matched.len(), 1, "the base rule matches");
    let mut hits = Vec::new();
    for rule in matched {
        if detector.feeds_correlation(rule) {
            detector.correlate(rule, event, 0, &mut hits);
        }
    }
    hits.len()
}

#[test]
fn another_detector_shares_the_rules_and_keeps_its_own_correlation_state() {
    let mut first = detector();
    let mut second = first.another();
    assert!(second.shares_rules_with(&first));
    assert!(
        !detector().shares_rules_with(&first),
        "a new build is new rules"
    );
    assert_eq!(second.engine().rules().len(), 1);
    assert_eq!(second.correlation_rules().len(), 1);

    // One failed logon each: neither detector has seen two.
    assert_eq!(feed(&mut first, &failed_logon(1_000)), 0);
    assert_eq!(feed(&mut second, &failed_logon(2_000)), 0);
    // The second one in the first detector fires there only.
    assert_eq!(feed(&mut first, &failed_logon(3_000)), 1);
    let mut third = first.another();
    assert_eq!(
        feed(&mut third, &failed_logon(4_000)),
        0,
        "a new detector starts empty"
    );
    assert_eq!(feed(&mut second, &failed_logon(5_000)), 1);
}
