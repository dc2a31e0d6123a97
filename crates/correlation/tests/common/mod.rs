//! Helpers shared by the integration tests: a tiny event type and engine builders.
#![allow(dead_code)]

use dozor_correlation::{
    CorrelationConfig, CorrelationEngine, CorrelationHit, CorrelationRule, parse_correlation,
    resolve,
};
use dozor_event::{EventFields, FieldValue};

/// A field value of the test event.
#[derive(Debug, Clone)]
pub enum V {
    S(String),
    I(i64),
    F(f64),
}

/// A minimal event: a timestamp and named values.
#[derive(Debug, Clone, Default)]
pub struct Ev {
    pub ts: Option<i64>,
    pub fields: Vec<(String, V)>,
}

impl Ev {
    pub fn at(ts: i64) -> Ev {
        Ev {
            ts: Some(ts),
            fields: Vec::new(),
        }
    }

    pub fn s(mut self, name: &str, value: &str) -> Ev {
        self.fields.push((name.to_owned(), V::S(value.to_owned())));
        self
    }

    pub fn i(mut self, name: &str, value: i64) -> Ev {
        self.fields.push((name.to_owned(), V::I(value)));
        self
    }

    pub fn f(mut self, name: &str, value: f64) -> Ev {
        self.fields.push((name.to_owned(), V::F(value)));
        self
    }
}

impl EventFields for Ev {
    fn visit_fields<'a>(&'a self, visit: &mut dyn FnMut(&str, FieldValue<'a>)) {
        for (name, value) in &self.fields {
            let v = match value {
                V::S(s) => FieldValue::Str(s),
                V::I(i) => FieldValue::Int(*i),
                V::F(x) => FieldValue::Float(*x),
            };
            visit(name, v);
        }
    }

    fn timestamp_millis(&self) -> Option<i64> {
        self.ts
    }
}

pub fn parse(yaml: &str) -> CorrelationRule {
    let doc: yaml_serde::Value = yaml_serde::from_str(yaml).expect("valid YAML");
    parse_correlation(&doc).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// An engine over correlation rules given as YAML; base rules are named by `base`, whose
/// positions are their indices.
pub struct Harness {
    pub engine: CorrelationEngine,
    pub base: Vec<String>,
    next_ref: u64,
}

impl Harness {
    pub fn new(yamls: &[&str], base: &[&str]) -> Harness {
        Harness::with_config(yamls, base, CorrelationConfig::default())
    }

    pub fn with_config(yamls: &[&str], base: &[&str], config: CorrelationConfig) -> Harness {
        let rules: Vec<CorrelationRule> = yamls.iter().map(|y| parse(y)).collect();
        let base_names: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
        let lookup = |r: &str| base_names.iter().position(|b| b == r).map(|i| i as u32);
        let resolution = resolve(rules, &lookup);
        assert!(resolution.errors.is_empty(), "{:?}", resolution.errors);
        let engine = CorrelationEngine::new(resolution.correlations, config).expect("consistent");
        Harness {
            engine,
            base: base_names,
            next_ref: 0,
        }
    }

    pub fn index(&self, rule: &str) -> u32 {
        self.base
            .iter()
            .position(|b| b == rule)
            .unwrap_or_else(|| panic!("no base rule {rule}")) as u32
    }

    /// Feeds a match of base rule `rule`; the event reference is a running counter starting at 0.
    pub fn feed(&mut self, rule: &str, ev: &Ev) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        let idx = self.index(rule);
        let r = self.next_ref;
        self.next_ref += 1;
        self.engine.on_match(idx, ev, r, &mut out);
        out
    }

    pub fn finish(&mut self) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        self.engine.finish(&mut out);
        out
    }

    pub fn flush(&mut self, now: i64) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        self.engine.flush(now, &mut out);
        out
    }
}

pub const SEC: i64 = 1_000;
pub const MIN: i64 = 60 * SEC;

/// Owned `(name, value)` pairs, as hits report their group and aliases their fields.
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}
