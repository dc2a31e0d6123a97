//! Randomized checks: the engine agrees with a brute-force reference on in-order input, and
//! keeps its invariants (no panic, disjoint refs, hits within the timespan) on shuffled input
//! with tight memory limits.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{Ev, Harness};
use dozor_correlation::CorrelationConfig;

/// Small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct In {
    ts: i64,
    user: u64,
    value: u64,
    rule: usize,
    r: u64,
}

/// Reference for eager rules on in-order input: after each event, the events of its group in
/// `[t - span, t]` not yet consumed form the window; when the aggregate satisfies `>= n`, the
/// window fires and everything of the group up to `t` is consumed.
fn reference(
    inputs: &[In],
    span: i64,
    n: usize,
    agg: &dyn Fn(&[&In]) -> usize,
) -> Vec<(u64, Vec<u64>)> {
    let mut consumed: HashSet<u64> = HashSet::new();
    let mut hits = Vec::new();
    for (k, e) in inputs.iter().enumerate() {
        let window: Vec<&In> = inputs[..=k]
            .iter()
            .filter(|x| {
                x.user == e.user && !consumed.contains(&x.r) && x.ts >= e.ts - span && x.ts <= e.ts
            })
            .collect();
        if agg(&window) >= n {
            let refs: Vec<u64> = window.iter().map(|x| x.r).collect();
            for x in &inputs[..=k] {
                if x.user == e.user && x.ts <= e.ts {
                    consumed.insert(x.r);
                }
            }
            hits.push((e.user, refs));
        }
    }
    hits
}

fn gen_in_order(rng: &mut Lcg, len: usize, rules: usize) -> Vec<In> {
    let mut ts = 0;
    (0..len)
        .map(|r| {
            ts += rng.below(4) as i64 * 700; // several events may share a timestamp
            In {
                ts,
                user: rng.below(4),
                value: rng.below(5),
                rule: rng.below(rules as u64) as usize,
                r: r as u64,
            }
        })
        .collect()
}

fn run(h: &mut Harness, inputs: &[In], names: &[&str]) -> Vec<(u64, Vec<u64>)> {
    let mut out = Vec::new();
    for e in inputs {
        let ev = Ev::at(e.ts)
            .s("User", &format!("u{}", e.user))
            .s("V", &format!("v{}", e.value));
        let idx = h.index(names[e.rule]);
        h.engine.on_match(idx, &ev, e.r, &mut out);
    }
    out.iter()
        .map(|hit| {
            (
                hit.group[0]
                    .1
                    .trim_start_matches('u')
                    .parse()
                    .expect("user"),
                hit.event_refs.clone(),
            )
        })
        .collect()
}

#[test]
fn eager_rules_agree_with_a_brute_force_reference() {
    let count = "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5s\n  condition: {gte: 4}\n";
    let distinct = "title: t\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5s\n  condition: {field: V, gte: 3}\n";
    let temporal = "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b, c]\n  group-by: [User]\n  timespan: 5s\n";
    let ordered = "title: t\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b, c]\n  group-by: [User]\n  timespan: 5s\n";
    let mut rng = Lcg(42);
    for round in 0..200 {
        let len = 5 + rng.below(60) as usize;
        // event_count and value_count over one rule
        let inputs = gen_in_order(&mut rng, len, 1);
        let mut h = Harness::new(&[count], &["a"]);
        let want = reference(&inputs, 5_000, 4, &|w| w.len());
        assert_eq!(
            run(&mut h, &inputs, &["a"]),
            want,
            "event_count round {round}: {inputs:?}"
        );
        let mut h = Harness::new(&[distinct], &["a"]);
        let want = reference(&inputs, 5_000, 3, &|w| {
            w.iter().map(|x| x.value).collect::<HashSet<_>>().len()
        });
        assert_eq!(
            run(&mut h, &inputs, &["a"]),
            want,
            "value_count round {round}: {inputs:?}"
        );
        // temporal and temporal_ordered over three rules
        let inputs = gen_in_order(&mut rng, len, 3);
        let mut h = Harness::new(&[temporal], &["a", "b", "c"]);
        let want = reference(&inputs, 5_000, 3, &|w| {
            w.iter().map(|x| x.rule).collect::<HashSet<_>>().len()
        });
        assert_eq!(
            run(&mut h, &inputs, &["a", "b", "c"]),
            want,
            "temporal round {round}: {inputs:?}"
        );
        let mut h = Harness::new(&[ordered], &["a", "b", "c"]);
        let prefix = |w: &[&In]| {
            let mut need = 0;
            for x in w {
                if need < 3 && x.rule == need {
                    need += 1;
                }
            }
            need
        };
        let want = reference(&inputs, 5_000, 3, &prefix);
        assert_eq!(
            run(&mut h, &inputs, &["a", "b", "c"]),
            want,
            "temporal_ordered round {round}: {inputs:?}"
        );
    }
}

#[test]
fn shuffled_input_keeps_invariants_under_tight_limits() {
    let rules = [
        "title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5s\n  condition: {gte: 3}\n",
        "title: l\ncorrelation:\n  type: event_count\n  rules: [a, b]\n  group-by: [User]\n  timespan: 5s\n  condition: {lt: 3}\n",
        "title: v\ncorrelation:\n  type: value_count\n  rules: [b]\n  group-by: [User]\n  timespan: 5s\n  condition: {field: V, gte: 2}\n",
        "title: o\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b, c]\n  group-by: [User]\n  timespan: 5s\n",
        "title: s\ncorrelation:\n  type: value_percentile\n  rules: [a]\n  group-by: [User]\n  timespan: 5s\n  condition: {field: V, lte: 30}\n",
        "title: ch\ncorrelation:\n  type: event_count\n  rules: [c]\n  group-by: [User]\n  timespan: 20s\n  condition: {gte: 2}\n",
    ];
    let mut rng = Lcg(7);
    for round in 0..100 {
        let config = CorrelationConfig {
            max_groups_per_rule: 1 + rng.below(4) as usize,
            max_events_per_group: 1 + rng.below(6) as usize,
            max_lateness_millis: rng.below(4_000) as i64,
            emit_intermediate: true,
            ..CorrelationConfig::default()
        };
        let mut h = Harness::with_config(&rules, &["a", "b"], config);
        let mut inputs = gen_in_order(&mut rng, 80, 2);
        // local shuffles: swap neighbours
        for k in 1..inputs.len() {
            if rng.below(3) == 0 {
                inputs.swap(k - 1, k);
            }
        }
        let mut out = Vec::new();
        for (k, e) in inputs.iter().enumerate() {
            let ev = Ev::at(e.ts)
                .s("User", &format!("u{}", e.user))
                .s("V", &format!("v{}", e.value));
            h.engine.on_match(e.rule as u32, &ev, e.r, &mut out);
            if k % 17 == 0 {
                h.engine.flush(e.ts - 10_000, &mut out);
            }
        }
        h.engine.finish(&mut out);
        let mut seen: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); rules.len()];
        for hit in &out {
            let span = h.engine.rules()[hit.correlation].rule.timespan.millis;
            assert!(
                hit.last_millis - hit.first_millis <= span,
                "round {round}: {hit:?}"
            );
            assert!(hit.event_count >= 1);
            // Windows are consumed: no event in two hits of the same correlation. Checked for the
            // rules fed by base rules only: a chained input carries the refs of its upstream
            // hit, which may also be direct inputs (rule 3), and the share-mode rule (4)
            // reports several values of one window.
            if hit.correlation < 3 {
                for r in &hit.event_refs {
                    assert!(
                        seen[hit.correlation].insert(*r),
                        "round {round}: ref {r} twice in {hit:?}"
                    );
                }
            }
        }
        assert_eq!(h.engine.group_count(), 0);
    }
}
