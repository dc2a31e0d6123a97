//! Window semantics of every correlation type, written from the specification's wording.

mod common;

use common::{Ev, Harness, MIN, SEC, pairs};
use dozor_correlation::{
    CorrelationConfig, CorrelationEngine, CorrelationError, MissingTimestamp, parse_correlation,
    resolve, resolve_with_field_map,
};

fn login(ts: i64, user: &str) -> Ev {
    Ev::at(ts).s("User", user).s("ComputerName", "pc1")
}

const COUNT_GTE3_10S: &str = "title: t\ncorrelation:\n  type: event_count\n  rules: [failed]\n  group-by: [User]\n  timespan: 10s\n  condition: {gte: 3}\n";

// ----- event_count -------------------------------------------------------------------------

#[test]
fn event_count_fires_when_the_events_span_exactly_the_timespan() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    assert!(h.feed("failed", &login(0, "alice")).is_empty());
    assert!(h.feed("failed", &login(5 * SEC, "alice")).is_empty());
    let hits = h.feed("failed", &login(10 * SEC, "alice"));
    assert_eq!(
        hits.len(),
        1,
        "first and last event exactly `timespan` apart are within it"
    );
    let hit = &hits[0];
    assert_eq!(hit.correlation, 0);
    assert_eq!(hit.group, pairs(&[("User", "alice")]));
    assert_eq!((hit.first_millis, hit.last_millis), (0, 10 * SEC));
    assert_eq!(hit.value, 3.0);
    assert_eq!(hit.event_count, 3);
    assert_eq!(hit.event_refs, vec![0, 1, 2]);
}

#[test]
fn event_count_does_not_fire_one_millisecond_over_the_timespan() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    h.feed("failed", &login(0, "alice"));
    h.feed("failed", &login(5 * SEC, "alice"));
    assert!(h.feed("failed", &login(10 * SEC + 1, "alice")).is_empty());
    // ... but the window slides: a fourth event within 10s of the 2nd completes it.
    let hits = h.feed("failed", &login(11 * SEC, "alice"));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].first_millis, hits[0].last_millis),
        (5 * SEC, 11 * SEC)
    );
    assert_eq!(hits[0].event_refs, vec![1, 2, 3]);
    assert!(h.finish().is_empty());
}

#[test]
fn event_count_gt_needs_one_more() {
    let y = COUNT_GTE3_10S.replace("gte: 3", "gt: 3");
    let mut h = Harness::new(&[&y], &["failed"]);
    for k in 0..3 {
        assert!(h.feed("failed", &login(k * SEC, "alice")).is_empty());
    }
    assert_eq!(h.feed("failed", &login(3 * SEC, "alice")).len(), 1);
}

#[test]
fn event_count_resets_the_group_after_firing() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    let mut hits = Vec::new();
    for k in 0..7 {
        hits.extend(h.feed("failed", &login(k * SEC, "alice")));
    }
    assert_eq!(
        hits.len(),
        2,
        "7 events, threshold 3: two disjoint hits, the 7th waits"
    );
    assert_eq!(hits[0].event_refs, vec![0, 1, 2]);
    assert_eq!(hits[1].event_refs, vec![3, 4, 5]);
}

#[test]
fn event_count_groups_are_separate() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    let mut hits = Vec::new();
    for k in 0..3 {
        hits.extend(h.feed("failed", &login(k * SEC, "alice")));
        if k < 2 {
            hits.extend(h.feed("failed", &login(k * SEC, "bob")));
        }
    }
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].group[0].1, "alice");
}

#[test]
fn multiple_group_by_fields_are_linked_by_and() {
    let y = "title: t\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: [TargetUserName, TargetDomainName]\n  timespan: 1m\n  condition: {gte: 2}\n";
    let mut h = Harness::new(&[y], &["r"]);
    let e = |ts, u: &str, d: &str| Ev::at(ts).s("TargetUserName", u).s("TargetDomainName", d);
    assert!(h.feed("r", &e(0, "admin", "CORP")).is_empty());
    assert!(h.feed("r", &e(1, "admin", "LAB")).is_empty());
    assert!(
        h.feed("r", &e(2, "CORP", "admin")).is_empty(),
        "values are not concatenated ambiguously"
    );
    let hits = h.feed("r", &e(3, "admin", "CORP"));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].group,
        pairs(&[("TargetUserName", "admin"), ("TargetDomainName", "CORP")])
    );
}

#[test]
fn events_without_a_group_by_field_are_ignored() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    for k in 0..5 {
        assert!(h.feed("failed", &Ev::at(k).s("Other", "x")).is_empty());
    }
    assert_eq!(h.engine.stats().missing_field, 5);
    assert_eq!(h.engine.group_count(), 0);
}

#[test]
fn empty_group_by_is_one_global_group() {
    let y = "title: t\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: []\n  timespan: 1m\n  condition: {gte: 2}\n";
    let mut h = Harness::new(&[y], &["r"]);
    h.feed("r", &Ev::at(0).s("User", "a"));
    let hits = h.feed("r", &Ev::at(1).s("User", "b"));
    assert_eq!(hits.len(), 1);
    assert!(hits[0].group.is_empty());
}

#[test]
fn lt_is_decided_when_the_window_closes() {
    // "fewer than 3 failed logins in 10s" (lateness 0 to make the closing time exact).
    let y = COUNT_GTE3_10S.replace("gte: 3", "lt: 3");
    let config = CorrelationConfig {
        max_lateness_millis: 0,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[&y], &["failed"], config);
    assert!(h.feed("failed", &login(0, "alice")).is_empty());
    assert!(
        h.feed("failed", &login(SEC, "alice")).is_empty(),
        "not decidable before the window closes"
    );
    for k in 1..4 {
        assert!(h.feed("failed", &login(k * SEC, "bob")).is_empty());
    }
    // With no lateness allowed, anything older than the newest event is late.
    assert!(h.feed("failed", &login(0, "carol")).is_empty());
    assert_eq!(h.engine.stats().dropped_late, 1);
    // alice's window is [0, 10s]; it closes once time is past 10s.
    assert!(
        h.flush(10 * SEC).is_empty(),
        "an event at exactly 10s could still join"
    );
    let hits = h.flush(10 * SEC + 1);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].group[0].1, "alice");
    assert_eq!(hits[0].value, 2.0);
    assert_eq!((hits[0].first_millis, hits[0].last_millis), (0, SEC));
    let rest = h.finish();
    assert!(
        rest.is_empty(),
        "bob had 3: no hit; alice was already reported: {rest:?}"
    );
}

#[test]
fn lt_windows_close_on_later_events_and_at_finish() {
    let y = COUNT_GTE3_10S.replace("gte: 3", "lte: 1");
    let config = CorrelationConfig {
        max_lateness_millis: 2 * SEC,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[&y], &["failed"], config);
    h.feed("failed", &login(0, "alice"));
    assert!(
        h.feed("failed", &login(11 * SEC, "bob")).is_empty(),
        "10s + lateness not yet passed"
    );
    let hits = h.feed("failed", &login(12 * SEC + 1, "carol"));
    assert_eq!(
        hits.len(),
        1,
        "time moved past alice's window end + lateness"
    );
    assert_eq!(hits[0].group[0].1, "alice");
    let mut rest = h.finish();
    rest.sort_by(|a, b| a.group[0].1.cmp(&b.group[0].1));
    let users: Vec<&str> = rest.iter().map(|h| h.group[0].1.as_str()).collect();
    assert_eq!(
        users,
        vec!["bob", "carol"],
        "the end of input closes every window"
    );
}

#[test]
fn eq_and_neq_and_ranges_are_decided_at_window_close() {
    let run = |cond: &str, n: i64| {
        let y = COUNT_GTE3_10S.replace("{gte: 3}", cond);
        let mut h = Harness::new(&[&y], &["failed"]);
        let mut hits = Vec::new();
        for k in 0..n {
            hits.extend(h.feed("failed", &login(k * SEC, "alice")));
        }
        assert!(hits.is_empty(), "{cond}: nothing before the window closes");
        h.finish().len()
    };
    assert_eq!(run("{eq: 3}", 3), 1);
    assert_eq!(
        run("{eq: 3}", 4),
        0,
        "4 events are not exactly 3, although the count passed 3"
    );
    assert_eq!(run("{eq: 3}", 2), 0);
    assert_eq!(run("{neq: 3}", 3), 0);
    assert_eq!(run("{neq: 3}", 2), 1);
    assert_eq!(run("{gt: 2, lte: 4}", 2), 0);
    assert_eq!(run("{gt: 2, lte: 4}", 3), 1);
    assert_eq!(run("{gt: 2, lte: 4}", 4), 1);
    assert_eq!(run("{gt: 2, lte: 4}", 5), 0);
}

#[test]
fn close_mode_windows_are_anchored_at_their_first_event() {
    // eq 2 within 10s: events at 0, 10s (window 1: [0,10s] = 2 events), 10.001s, 25s (window 2
    // starts at 10.001s: [10.001, 20.001] = 1 event; window 3 [25s, 35s] = 1 event).
    let y = COUNT_GTE3_10S.replace("{gte: 3}", "{eq: 2}");
    let mut h = Harness::new(&[&y], &["failed"]);
    for ts in [0, 10 * SEC, 10 * SEC + 1, 25 * SEC] {
        h.feed("failed", &login(ts, "alice"));
    }
    let hits = h.finish();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].first_millis, hits[0].last_millis), (0, 10 * SEC));
}

// ----- value_count -------------------------------------------------------------------------

const VALUE_COUNT: &str = "title: t\ncorrelation:\n  type: value_count\n  rules: [failed]\n  group-by: [ComputerName]\n  timespan: 1m\n  condition:\n    field: User\n    gte: 3\n";

#[test]
fn value_count_counts_distinct_values() {
    let mut h = Harness::new(&[VALUE_COUNT], &["failed"]);
    let e = |ts, pc: &str, user: &str| Ev::at(ts).s("ComputerName", pc).s("User", user);
    assert!(h.feed("failed", &e(0, "pc1", "a")).is_empty());
    assert!(h.feed("failed", &e(SEC, "pc1", "a")).is_empty());
    assert!(h.feed("failed", &e(2 * SEC, "pc1", "b")).is_empty());
    assert!(
        h.feed("failed", &e(3 * SEC, "pc2", "c")).is_empty(),
        "another group"
    );
    assert!(h.feed("failed", &e(4 * SEC, "pc1", "b")).is_empty());
    let hits = h.feed("failed", &e(MIN, "pc1", "c"));
    assert_eq!(hits.len(), 1, "a, b, c within [0, 60s]");
    assert_eq!(hits[0].value, 3.0);
    assert_eq!(hits[0].event_count, 5);
    assert_eq!(hits[0].event_refs, vec![0, 1, 2, 4, 5]);
}

#[test]
fn value_count_window_slides_past_old_values() {
    let mut h = Harness::new(&[VALUE_COUNT], &["failed"]);
    let e = |ts, user: &str| Ev::at(ts).s("ComputerName", "pc1").s("User", user);
    h.feed("failed", &e(0, "a"));
    h.feed("failed", &e(SEC, "b"));
    assert!(
        h.feed("failed", &e(MIN + 1, "c")).is_empty(),
        "`a` is 1ms out of the window"
    );
    assert_eq!(h.feed("failed", &e(MIN + 2, "d")).len(), 1, "b, c, d");
}

#[test]
fn value_count_with_several_fields_counts_combinations() {
    let y = VALUE_COUNT
        .replace("field: User", "field: [User, SourceIp]")
        .replace("gte: 3", "gte: 2");
    let mut h = Harness::new(&[&y], &["failed"]);
    let e = |ts, user: &str, ip: &str| {
        Ev::at(ts)
            .s("ComputerName", "pc1")
            .s("User", user)
            .s("SourceIp", ip)
    };
    assert!(h.feed("failed", &e(0, "a", "1.1.1.1")).is_empty());
    assert!(h.feed("failed", &e(1, "a", "1.1.1.1")).is_empty());
    assert!(
        h.feed("failed", &Ev::at(2).s("ComputerName", "pc1").s("User", "b"))
            .is_empty(),
        "no SourceIp: ignored"
    );
    assert_eq!(h.feed("failed", &e(3, "a", "2.2.2.2")).len(), 1);
}

// ----- temporal ----------------------------------------------------------------------------

const TEMPORAL: &str = "title: t\ncorrelation:\n  type: temporal\n  rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]\n  group-by: [ComputerName, User]\n  timespan: 5m\n";
const RECON: [&str; 3] = ["recon_cmd_a", "recon_cmd_b", "recon_cmd_c"];

fn cmd(ts: i64, user: &str) -> Ev {
    Ev::at(ts).s("ComputerName", "pc1").s("User", user)
}

#[test]
fn temporal_fires_in_any_order_within_the_timespan() {
    let mut h = Harness::new(&[TEMPORAL], &RECON);
    assert!(h.feed("recon_cmd_c", &cmd(0, "u")).is_empty());
    assert!(h.feed("recon_cmd_a", &cmd(MIN, "u")).is_empty());
    assert!(
        h.feed("recon_cmd_a", &cmd(2 * MIN, "u")).is_empty(),
        "the same rule twice is not another rule"
    );
    let hits = h.feed("recon_cmd_b", &cmd(5 * MIN, "u"));
    assert_eq!(hits.len(), 1, "c at 0, b at exactly 5m");
    assert_eq!(hits[0].value, 3.0);
    assert_eq!(hits[0].event_refs, vec![0, 1, 2, 3]);
}

#[test]
fn temporal_does_not_fire_just_over_the_timespan_or_across_groups() {
    let mut h = Harness::new(&[TEMPORAL], &RECON);
    h.feed("recon_cmd_c", &cmd(0, "u"));
    h.feed("recon_cmd_a", &cmd(MIN, "u"));
    assert!(h.feed("recon_cmd_b", &cmd(5 * MIN + 1, "u")).is_empty());
    assert!(
        h.feed("recon_cmd_c", &cmd(5 * MIN + 2, "other")).is_empty(),
        "other user"
    );
    assert_eq!(
        h.feed("recon_cmd_c", &cmd(5 * MIN + 3, "u")).len(),
        1,
        "a (1m), b, c again"
    );
}

#[test]
fn temporal_with_explicit_condition_counts_distinct_rules() {
    let y = format!("{TEMPORAL}  condition: {{gte: 2}}\n");
    let mut h = Harness::new(&[&y], &RECON);
    assert!(h.feed("recon_cmd_b", &cmd(0, "u")).is_empty());
    assert_eq!(h.feed("recon_cmd_a", &cmd(1, "u")).len(), 1);
}

#[test]
fn one_event_matching_two_referenced_rules_counts_for_both() {
    let y = "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  group-by: [User]\n  timespan: 1m\n";
    let mut h = Harness::new(&[y], &["a", "b"]);
    let e = Ev::at(0).s("User", "u");
    let mut out = Vec::new();
    h.engine.on_match(0, &e, 7, &mut out);
    h.engine.on_match(1, &e, 7, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].event_refs, vec![7, 7]);
}

// ----- temporal_ordered --------------------------------------------------------------------

const ORDERED: &str = "title: t\ncorrelation:\n  type: temporal_ordered\n  rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]\n  group-by: [ComputerName, User]\n  timespan: 5m\n";

#[test]
fn temporal_ordered_requires_the_order_of_rules() {
    let mut h = Harness::new(&[ORDERED], &RECON);
    h.feed("recon_cmd_b", &cmd(0, "u"));
    h.feed("recon_cmd_a", &cmd(SEC, "u"));
    assert!(
        h.feed("recon_cmd_c", &cmd(2 * SEC, "u")).is_empty(),
        "b, a, c is not a, b, c"
    );
    let hits = h.feed("recon_cmd_b", &cmd(3 * SEC, "u"));
    assert!(hits.is_empty(), "a, b so far; c came before b");
    let hits = h.feed("recon_cmd_c", &cmd(5 * MIN + SEC, "u"));
    assert_eq!(hits.len(), 1, "a at 1s, b at 3s, c at exactly 5m after a");
    assert_eq!(hits[0].value, 3.0);
    assert_eq!(
        (hits[0].first_millis, hits[0].last_millis),
        (SEC, 5 * MIN + SEC)
    );
}

#[test]
fn temporal_ordered_boundaries() {
    let mut h = Harness::new(&[ORDERED], &RECON);
    h.feed("recon_cmd_a", &cmd(0, "u"));
    h.feed("recon_cmd_b", &cmd(MIN, "u"));
    assert!(
        h.feed("recon_cmd_c", &cmd(5 * MIN + 1, "u")).is_empty(),
        "1ms over"
    );
    // Same timestamp, in rule order: accepted (ties keep arrival order).
    h.feed("recon_cmd_a", &cmd(6 * MIN, "v"));
    h.feed("recon_cmd_b", &cmd(6 * MIN, "v"));
    assert_eq!(h.feed("recon_cmd_c", &cmd(6 * MIN, "v")).len(), 1);
}

// ----- value_sum / value_avg / value_percentile / value_median ------------------------------

#[test]
fn value_sum_fires_when_the_sum_crosses_the_threshold() {
    // Spec example "Possible Exfiltration to Website".
    let y = "title: Possible Exfiltration to Website\ncorrelation:\n    type: value_sum\n    rules:\n        - website_access\n    group-by:\n        - SourceIP\n        - User\n    timespan: 1h\n    condition:\n        field: bytes_sent\n        gt: 1000000\n";
    let mut h = Harness::new(&[y], &["website_access"]);
    let e = |ts, bytes: i64| {
        Ev::at(ts)
            .s("SourceIP", "10.1.1.1")
            .s("User", "u")
            .i("bytes_sent", bytes)
    };
    assert!(h.feed("website_access", &e(0, 600_000)).is_empty());
    assert!(
        h.feed(
            "website_access",
            &Ev::at(1)
                .s("SourceIP", "10.1.1.1")
                .s("User", "u")
                .s("bytes_sent", "n/a")
        )
        .is_empty()
    );
    assert_eq!(h.engine.stats().missing_field, 1, "not a number: ignored");
    assert!(
        h.feed("website_access", &e(60 * MIN, 400_000)).is_empty(),
        "exactly 1000000 is not > 1000000"
    );
    let hits = h.feed(
        "website_access",
        &Ev::at(60 * MIN)
            .s("SourceIP", "10.1.1.1")
            .s("User", "u")
            .s("bytes_sent", "1"),
    );
    assert_eq!(hits.len(), 1, "numbers in strings count");
    assert_eq!(hits[0].value, 1_000_001.0);
}

#[test]
fn value_sum_just_over_the_timespan() {
    let y = "title: t\ncorrelation:\n  type: value_sum\n  rules: [r]\n  group-by: [User]\n  timespan: 1h\n  condition: {field: bytes, gte: 10}\n";
    let mut h = Harness::new(&[y], &["r"]);
    h.feed("r", &Ev::at(0).s("User", "u").f("bytes", 5.5));
    assert!(
        h.feed("r", &Ev::at(60 * MIN + 1).s("User", "u").f("bytes", 4.5))
            .is_empty()
    );
    assert_eq!(
        h.feed("r", &Ev::at(60 * MIN + 2).s("User", "u").i("bytes", 6))
            .len(),
        1
    );
}

#[test]
fn value_avg_is_decided_over_the_whole_window() {
    // Spec example "Suspicious average network traffic": avg(BytesOut) > 500 per 24h.
    let y = "title: Suspicious average network traffic\ncorrelation:\n    type: value_avg\n    rules: \n        - rule_a_id\n    group-by:\n        - SourceIP\n        - User\n    timespan: 24h\n    condition:\n        field: BytesOut\n        gt: 500\n";
    let mut h = Harness::new(&[y], &["rule_a_id"]);
    let e = |ts, user: &str, b: i64| {
        Ev::at(ts)
            .s("SourceIP", "1.2.3.4")
            .s("User", user)
            .i("BytesOut", b)
    };
    assert!(
        h.feed("rule_a_id", &e(0, "high", 1000)).is_empty(),
        "one large event is not yet an average"
    );
    h.feed("rule_a_id", &e(MIN, "high", 100));
    h.feed("rule_a_id", &e(0, "low", 1000));
    h.feed("rule_a_id", &e(MIN, "low", 10));
    h.feed("rule_a_id", &e(2 * MIN, "low", 10));
    let hits = h.finish();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].group[1].1, "high");
    assert_eq!(hits[0].value, 550.0);
}

#[test]
fn value_percentile_share_reading_of_the_spec_example() {
    // Spec example: "A computer spawned a processes name in the last 24h than 1% of all the
    // processes" with `field: image, lte: 1`: values making up at most 1% of the group's events.
    let y = "title: rare process\ncorrelation:\n    type: value_percentile\n    rules: \n        - process_creation\n    group-by:\n        - ComputerName\n    timespan: 24h\n    condition:\n        field: image\n        lte: 1\n";
    let mut h = Harness::new(&[y], &["process_creation"]);
    for k in 0..150 {
        h.feed(
            "process_creation",
            &Ev::at(k * SEC)
                .s("ComputerName", "pc1")
                .s("image", "svchost.exe"),
        );
    }
    h.feed(
        "process_creation",
        &Ev::at(200 * SEC)
            .s("ComputerName", "pc1")
            .s("image", "mimikatz.exe"),
    );
    for k in 0..10 {
        h.feed(
            "process_creation",
            &Ev::at(k * SEC)
                .s("ComputerName", "pc2")
                .s("image", "svchost.exe"),
        );
    }
    h.feed(
        "process_creation",
        &Ev::at(0).s("ComputerName", "pc2").s("image", "cmd.exe"),
    );
    let hits = h.finish();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        hits[0].group,
        pairs(&[("ComputerName", "pc1"), ("image", "mimikatz.exe")])
    );
    assert!((hits[0].value - 100.0 / 151.0).abs() < 1e-9);
    assert_eq!(hits[0].event_refs, vec![150]);
}

#[test]
fn value_percentile_with_percentile_rank_and_value_median() {
    let p95 = "title: t\ncorrelation:\n  type: value_percentile\n  rules: [r]\n  group-by: [User]\n  timespan: 1h\n  condition: {field: ms, percentile: 95, gt: 900}\n";
    let median = "title: m\ncorrelation:\n  type: value_median\n  rules: [r]\n  group-by: [User]\n  timespan: 1h\n  condition: {field: ms, gte: 50}\n";
    let mut h = Harness::new(&[p95, median], &["r"]);
    // 1..=100 for `a`: p95 = 95.05, median = 50.5; `b` has one outlier: p95 high, median low.
    for k in 1..=100 {
        h.feed("r", &Ev::at(k).s("User", "a").i("ms", k));
    }
    for k in 1..=20 {
        h.feed(
            "r",
            &Ev::at(k)
                .s("User", "b")
                .i("ms", if k == 20 { 100_000 } else { 10 }),
        );
    }
    let mut hits = h.finish();
    hits.sort_by(|x, y| (x.correlation, &x.group).cmp(&(y.correlation, &y.group)));
    let got: Vec<(usize, &str, f64)> = hits
        .iter()
        .map(|h| (h.correlation, h.group[0].1.as_str(), h.value))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (0, "b"));
    assert!(got[0].2 > 900.0);
    assert_eq!(got[1], (1, "a", 50.5));
}

// ----- time: lateness, missing timestamps, expiry, bounds -----------------------------------

#[test]
fn out_of_order_events_within_lateness_are_placed_correctly() {
    let config = CorrelationConfig {
        max_lateness_millis: 5 * SEC,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[COUNT_GTE3_10S], &["failed"], config);
    h.feed("failed", &login(10 * SEC, "alice"));
    h.feed("failed", &login(12 * SEC, "alice"));
    let hits = h.feed("failed", &login(8 * SEC, "alice"));
    assert_eq!(hits.len(), 1, "8s arrives late but within 5s of 12s");
    assert_eq!(
        (hits[0].first_millis, hits[0].last_millis),
        (8 * SEC, 12 * SEC)
    );
    assert_eq!(hits[0].event_refs, vec![2, 0, 1], "refs in time order");

    // Older than newest - lateness: dropped and counted.
    assert!(h.feed("failed", &login(6 * SEC, "bob")).is_empty());
    assert_eq!(h.engine.stats().dropped_late, 1);
}

#[test]
fn a_late_event_can_complete_a_window_that_ends_before_the_newest_event() {
    let config = CorrelationConfig {
        max_lateness_millis: MIN,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[COUNT_GTE3_10S], &["failed"], config);
    h.feed("failed", &login(0, "alice"));
    h.feed("failed", &login(5 * SEC, "alice"));
    h.feed("failed", &login(30 * SEC, "alice"));
    let hits = h.feed("failed", &login(3 * SEC, "alice"));
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].first_millis, hits[0].last_millis), (0, 5 * SEC));
    // The event at 30s was not consumed by that hit.
    h.feed("failed", &login(31 * SEC, "alice"));
    assert_eq!(h.feed("failed", &login(32 * SEC, "alice")).len(), 1);
}

#[test]
fn temporal_ordered_uses_event_time_not_arrival_order() {
    let config = CorrelationConfig {
        max_lateness_millis: 10 * SEC,
        ..CorrelationConfig::default()
    };
    let y = "title: t\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b]\n  group-by: [User]\n  timespan: 1m\n";
    let mut h = Harness::with_config(&[y], &["a", "b"], config);
    assert!(h.feed("b", &Ev::at(10 * SEC).s("User", "u")).is_empty());
    assert_eq!(
        h.feed("a", &Ev::at(8 * SEC).s("User", "u")).len(),
        1,
        "a happened before b"
    );
}

#[test]
fn missing_timestamps_use_the_newest_time_or_are_dropped() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    h.feed("failed", &login(100 * SEC, "alice"));
    h.feed("failed", &Ev::default().s("User", "alice"));
    assert_eq!(h.feed("failed", &Ev::default().s("User", "alice")).len(), 1);
    assert_eq!(h.engine.stats().missing_timestamp, 2);

    let config = CorrelationConfig {
        missing_timestamp: MissingTimestamp::Drop,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[COUNT_GTE3_10S], &["failed"], config);
    for _ in 0..5 {
        assert!(
            h.feed("failed", &Ev::default().s("User", "alice"))
                .is_empty()
        );
    }
    assert_eq!(h.engine.group_count(), 0);
}

#[test]
fn max_groups_evicts_the_least_recently_seen_group() {
    let config = CorrelationConfig {
        max_groups_per_rule: 2,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[COUNT_GTE3_10S], &["failed"], config);
    h.feed("failed", &login(0, "a"));
    h.feed("failed", &login(1, "a"));
    h.feed("failed", &login(2, "b"));
    h.feed("failed", &login(3, "a")); // a becomes most recent... and fires (3 events)
    h.feed("failed", &login(4, "b"));
    h.feed("failed", &login(5, "a"));
    // groups: a (most recent), b. A third group evicts b.
    h.feed("failed", &login(6, "c"));
    assert_eq!(h.engine.stats().evicted_groups, 1);
    assert_eq!(h.engine.group_count(), 2);
    assert!(
        h.feed("failed", &login(7, "b")).is_empty(),
        "b's two earlier events were forgotten"
    );
    assert_eq!(
        h.engine.stats().evicted_groups,
        2,
        "b came back and evicted a"
    );
}

#[test]
fn state_expires_after_timespan_plus_lateness() {
    let config = CorrelationConfig {
        max_lateness_millis: SEC,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[COUNT_GTE3_10S], &["failed"], config);
    for u in ["a", "b", "c"] {
        h.feed("failed", &login(0, u));
    }
    assert_eq!(h.engine.group_count(), 3);
    h.feed("failed", &login(11 * SEC, "d"));
    assert_eq!(h.engine.group_count(), 4, "0 + 10s + 1s is not yet past");
    h.feed("failed", &login(11 * SEC + 1, "d"));
    assert_eq!(
        h.engine.group_count(),
        1,
        "stale groups are swept from the LRU end"
    );
    assert_eq!(h.engine.stats().expired_groups, 3);
    assert!(h.flush(30 * SEC).is_empty());
    assert_eq!(h.engine.group_count(), 0);
}

#[test]
fn max_events_per_group_bounds_memory() {
    let y = COUNT_GTE3_10S.replace("gte: 3", "gte: 1000");
    let config = CorrelationConfig {
        max_events_per_group: 10,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(&[&y], &["failed"], config);
    for k in 0..50 {
        h.feed("failed", &login(k, "a"));
    }
    assert_eq!(h.engine.stats().truncated_events, 40);
}

#[test]
fn hits_keep_at_most_max_event_refs() {
    let y = COUNT_GTE3_10S.replace("gte: 3", "gte: 150");
    let mut h = Harness::new(&[&y], &["failed"]);
    let mut hits = Vec::new();
    for k in 0..150 {
        hits.extend(h.feed("failed", &login(k, "a")));
    }
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].event_count, 150);
    assert_eq!(hits[0].event_refs, (0..100).collect::<Vec<u64>>());
}

#[test]
fn extreme_timestamps_do_not_panic() {
    let ys = [
        COUNT_GTE3_10S.to_owned(),
        COUNT_GTE3_10S.replace("gte: 3", "lt: 3"),
        TEMPORAL.to_owned(),
        ORDERED.to_owned(),
    ];
    let refs: Vec<&str> = ys.iter().map(String::as_str).collect();
    let config = CorrelationConfig {
        max_lateness_millis: i64::MAX,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(
        &refs,
        &["failed", "recon_cmd_a", "recon_cmd_b", "recon_cmd_c"],
        config,
    );
    for ts in [i64::MAX, i64::MIN, 0, i64::MAX - 1, i64::MIN + 1, -5, 5] {
        for r in ["failed", "recon_cmd_a", "recon_cmd_b", "recon_cmd_c"] {
            h.feed(r, &cmd(ts, "u").s("User", "u"));
        }
    }
    h.flush(i64::MAX);
    h.flush(i64::MIN);
    h.finish();
}

// ----- chaining, generate, field mapping, resolution ---------------------------------------

const INNER: &str = "title: Multiple failed logons\nname: multiple_failed_login\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [User]\n  timespan: 10m\n  condition: {gte: 3}\n";
const OUTER: &str = "title: outer\ncorrelation:\n  type: temporal_ordered\n  rules: [multiple_failed_login, successful_login]\n  group-by: [User]\n  timespan: 10m\n";

#[test]
fn chained_correlation_consumes_hits_of_another() {
    let mut h = Harness::new(&[OUTER, INNER], &["failed_login", "successful_login"]);
    // Success before the failures: wrong order.
    h.feed("successful_login", &login(0, "bob"));
    for k in 1..=3 {
        assert!(h.feed("failed_login", &login(k * SEC, "bob")).is_empty());
    }
    // Failures then success.
    for k in 0..3 {
        h.feed("failed_login", &login(k * SEC, "alice"));
    }
    let hits = h.feed("successful_login", &login(MIN, "alice"));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].correlation, 0);
    assert_eq!(hits[0].group, pairs(&[("User", "alice")]));
    assert_eq!(
        h.engine.stats().hits,
        3,
        "bob's inner, alice's inner, alice's outer"
    );
}

#[test]
fn intermediate_hits_are_reported_with_emit_intermediate_or_generate() {
    let config = CorrelationConfig {
        emit_intermediate: true,
        ..CorrelationConfig::default()
    };
    let mut h = Harness::with_config(
        &[OUTER, INNER],
        &["failed_login", "successful_login"],
        config,
    );
    let mut hits = Vec::new();
    for k in 0..3 {
        hits.extend(h.feed("failed_login", &login(k * SEC, "alice")));
    }
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].correlation, 1);

    let outer_generate = OUTER.replace("title: outer\n", "title: outer\ngenerate: true\n");
    let h = Harness::new(
        &[&outer_generate, INNER],
        &["failed_login", "successful_login"],
    );
    assert!(
        h.engine.rules()[1].output,
        "generate: true keeps the referenced correlation's output"
    );
}

#[test]
fn chained_event_count_over_hits_decided_at_close() {
    // "the inner correlation fired at most once in an hour" — an lte condition over chained hits.
    let outer = "title: outer\ncorrelation:\n  type: event_count\n  rules: [multiple_failed_login]\n  group-by: [User]\n  timespan: 1h\n  condition: {eq: 2}\n";
    let mut h = Harness::new(&[outer, INNER], &["failed_login"]);
    for k in 0..6 {
        h.feed("failed_login", &login(k * SEC, "alice"));
    }
    for k in 0..3 {
        h.feed("failed_login", &login(k * SEC, "bob"));
    }
    let hits = h.finish();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].group[0].1, "alice");
    assert_eq!(
        hits[0].event_refs,
        vec![0, 1, 2, 3, 4, 5],
        "the refs of both inner hits"
    );
}

#[test]
fn field_mapping_applies_to_event_fields_not_to_hit_labels() {
    let rules = vec![common::parse(COUNT_GTE3_10S)];
    let map = |f: &str| {
        if f == "User" {
            "user.name".to_owned()
        } else {
            f.to_owned()
        }
    };
    let lookup = |r: &str| (r == "failed").then_some(0);
    let res = resolve_with_field_map(rules, &lookup, &map);
    assert_eq!(res.correlations[0].group_event_fields(0), vec!["user.name"]);
    let mut engine =
        CorrelationEngine::new(res.correlations, CorrelationConfig::default()).unwrap();
    let mut out = Vec::new();
    for k in 0..3 {
        engine.on_match(0, &Ev::at(k).s("user.name", "alice"), k as u64, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].group, pairs(&[("User", "alice")]));
}

#[test]
fn resolution_errors_are_reported_per_rule() {
    let p = |y: &str| parse_correlation(&yaml_serde::from_str(y).unwrap()).unwrap();
    let a = p(
        "title: a\nname: a\ncorrelation: {type: temporal, rules: [b, base1], group-by: [U], timespan: 1m}",
    );
    let b = p(
        "title: b\nname: b\ncorrelation: {type: temporal, rules: [a], group-by: [U], timespan: 1m}",
    );
    let c = p(
        "title: c\nname: c\ncorrelation: {type: temporal, rules: [nowhere], group-by: [U], timespan: 1m}",
    );
    let d = p(
        "title: d\nname: d\ncorrelation: {type: temporal, rules: [c], group-by: [U], timespan: 1m}",
    );
    let e = p(
        "title: e\nname: base1\ncorrelation: {type: temporal, rules: [base2], group-by: [U], timespan: 1m}",
    );
    let f = p(
        "title: f\nname: f\ncorrelation: {type: temporal, rules: [base2], group-by: [U], timespan: 1m}",
    );
    let g = p(
        "title: g\nname: f\ncorrelation: {type: temporal, rules: [base2], group-by: [U], timespan: 1m}",
    );
    let lookup = |r: &str| match r {
        "base1" => Some(0),
        "base2" => Some(1),
        _ => None,
    };
    let res = resolve(vec![a, b, c, d, e, f, g], &lookup);
    let errs: Vec<(usize, String)> = res
        .errors
        .iter()
        .map(|(i, e)| (*i, e.to_string()))
        .collect();
    assert!(
        matches!(res.errors[0].1, CorrelationError::AmbiguousReference { .. }),
        "{errs:?}"
    );
    assert_eq!(
        res.errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 6],
        "{errs:?}"
    );
    assert!(
        errs[1].1.contains("cycle") || errs[1].1.contains("invalid"),
        "{errs:?}"
    );
    assert!(errs[2].1.contains("unknown rule `nowhere`"), "{errs:?}");
    assert!(
        errs[3]
            .1
            .contains("references correlation `c`, which is invalid"),
        "{errs:?}"
    );
    assert!(errs[4].1.contains("both identified as `f`"), "{errs:?}");
    assert_eq!(res.correlations.len(), 2);
    assert_eq!(res.correlations[0].source, 4);

    let cyc1 = p(
        "title: x\nname: x\ncorrelation: {type: temporal, rules: [y], group-by: [U], timespan: 1m}",
    );
    let cyc2 = p(
        "title: y\nname: y\ncorrelation: {type: temporal, rules: [x], group-by: [U], timespan: 1m}",
    );
    let selfref = p(
        "title: z\nname: z\ncorrelation: {type: temporal, rules: [z], group-by: [U], timespan: 1m}",
    );
    let res = resolve(vec![cyc1, cyc2, selfref], &|_| None);
    assert_eq!(res.errors.len(), 3);
    assert!(
        res.errors
            .iter()
            .all(|(_, e)| matches!(e, CorrelationError::Cycle { .. })),
        "{:?}",
        res.errors
    );

    let single = p(
        "title: s\ncorrelation: {type: event_count, rules: [nope], group-by: [U], timespan: 1m, condition: {gte: 1}}",
    );
    assert!(matches!(
        single.resolve(&|_| None, None),
        Err(CorrelationError::UnknownReference { .. })
    ));
}

#[test]
fn engine_rejects_an_edited_rule_set() {
    let res = resolve(
        vec![common::parse(OUTER), common::parse(INNER)],
        &|r| match r {
            "failed_login" => Some(0),
            "successful_login" => Some(1),
            _ => None,
        },
    );
    let mut rules = res.correlations;
    rules.truncate(1); // the outer one references index 1, now gone
    assert!(matches!(
        CorrelationEngine::new(rules, CorrelationConfig::default()),
        Err(CorrelationError::Engine(_))
    ));
}

#[test]
fn matches_of_unreferenced_rules_are_ignored_cheaply() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed", "other"]);
    assert!(!h.engine.wants(1) && h.engine.wants(0) && !h.engine.wants(99));
    let mut out = Vec::new();
    h.engine.on_match(99, &login(0, "a"), 0, &mut out);
    h.feed("other", &login(0, "a"));
    assert_eq!(h.engine.stats().inputs, 0);
}

#[test]
fn a_reported_hit_precedes_the_hits_it_causes() {
    let outer = OUTER
        .replace("temporal_ordered", "temporal")
        .replace("title: outer\n", "title: outer\ngenerate: true\n");
    let mut h = Harness::new(&[&outer, INNER], &["failed_login", "successful_login"]);
    h.feed("successful_login", &login(0, "alice"));
    h.feed("failed_login", &login(SEC, "alice"));
    h.feed("failed_login", &login(2 * SEC, "alice"));
    let hits = h.feed("failed_login", &login(3 * SEC, "alice"));
    let order: Vec<usize> = hits.iter().map(|h| h.correlation).collect();
    assert_eq!(order, vec![1, 0], "inner, then the outer it completed");
    assert_eq!(hits[1].event_refs, vec![0, 1, 2, 3]);
}

#[test]
fn finish_resets_time_so_the_engine_can_take_another_input() {
    let mut h = Harness::new(&[COUNT_GTE3_10S], &["failed"]);
    h.feed("failed", &login(100 * MIN, "a"));
    h.finish();
    assert_eq!(h.engine.watermark(), None);
    for k in 0..3 {
        h.feed("failed", &login(k, "a"));
    }
    assert_eq!(h.engine.stats().dropped_late, 0);
    assert_eq!(h.engine.stats().hits, 1);
}

/// Throughput of the hot path; run with
/// `cargo test --release -p dozor-correlation --test engine -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let ys = [
        COUNT_GTE3_10S.replace("gte: 3", "gte: 50"),
        VALUE_COUNT.replace("gte: 3", "gte: 40"),
        TEMPORAL.replace("recon_cmd_a", "failed"),
    ];
    let refs: Vec<&str> = ys.iter().map(String::as_str).collect();
    let mut h = Harness::new(&refs, &["failed", "recon_cmd_b", "recon_cmd_c"]);
    let users: Vec<String> = (0..5_000).map(|i| format!("user{i}")).collect();
    let events: Vec<Ev> = (0..200_000i64)
        .map(|i| {
            Ev::at(i * 3)
                .s("User", &users[(i as usize * 7919) % users.len()])
                .s("ComputerName", &format!("pc{}", i % 50))
                .s("Image", "C:\\Windows\\System32\\cmd.exe")
                .s("CommandLine", "cmd.exe /c whoami")
                .i("EventID", 4625)
        })
        .collect();
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        h.engine.on_match(0, e, i as u64, &mut out);
    }
    let el = start.elapsed();
    println!(
        "{} matches in {:?}: {:.0} matches/s, {} hits, {} groups",
        events.len(),
        el,
        events.len() as f64 / el.as_secs_f64(),
        out.len(),
        h.engine.group_count()
    );
}
