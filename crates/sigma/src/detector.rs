//! Detection rules plus correlation rules: what the server, the agent and `dozor hunt` run.
//!
//! [`Engine`] is immutable and shared by threads; correlation state is not, so a [`Detector`]
//! owns the correlation engine and is fed the base-rule matches in time order. The compiled
//! rules sit behind an [`Arc`]: [`Detector::another`] gives a worker thread its own detector
//! over the same compiled rules instead of a second compilation (with the SigmaHQ set, the
//! compiled rules are most of a server's memory).

use std::sync::Arc;

use dozor_correlation::{
    CorrelationConfig, CorrelationEngine, CorrelationHit, ResolvedCorrelation,
    base_rules_without_standalone_output, parse_correlation, resolve,
};
use dozor_event::EventFields;
use rustc_hash::FxHashMap;

use crate::engine::{Engine, EngineOptions, Outcome, RuleIndex, RuleReport};
use crate::load::RuleSet;
use crate::rule::{RuleKind, RuleMeta};

#[derive(Debug, Clone, Default)]
pub struct DetectorOptions {
    pub correlation: CorrelationConfig,
}

pub struct Detector {
    compiled: Arc<Compiled>,
    /// This detector's correlation state (windows, counts); never shared.
    correlations: Option<CorrelationEngine>,
}

/// What [`Detector::build`] compiles once and every [`Detector::another`] shares.
struct Compiled {
    engine: Engine,
    /// The resolved correlations and their settings, to start more correlation engines from.
    correlations: Vec<ResolvedCorrelation>,
    correlation_config: CorrelationConfig,
    /// Metadata of each correlation rule given to the correlation engine, by its index.
    correlation_meta: Vec<RuleMeta>,
    /// Per base rule: its matches feed a correlation.
    feeds: Vec<bool>,
    /// Per base rule: its matches are not reported by themselves (`generate: false`).
    silenced: Vec<bool>,
}

impl Compiled {
    fn correlation_engine(&self) -> Option<CorrelationEngine> {
        if self.correlations.is_empty() {
            return None;
        }
        match CorrelationEngine::new(self.correlations.clone(), self.correlation_config.clone()) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!("correlations disabled: {e}");
                None
            }
        }
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("engine", &self.compiled.engine)
            .field("correlations", &self.compiled.correlation_meta.len())
            .finish()
    }
}

fn correlation_meta(c: &dozor_correlation::CorrelationRule, path: &std::path::Path) -> RuleMeta {
    RuleMeta {
        id: c.id.clone().unwrap_or_default(),
        name: c.name.clone(),
        title: c.title.clone(),
        description: c.description.clone().unwrap_or_default(),
        level: c
            .level
            .as_deref()
            .and_then(|l| l.parse().ok())
            .unwrap_or_default(),
        status: c
            .status
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default(),
        tags: c.tags.clone(),
        author: c.author.clone().unwrap_or_default(),
        falsepositives: c.falsepositives.clone(),
        fields: Vec::new(),
        logsource: Default::default(),
        path: path.to_path_buf(),
    }
}

impl Detector {
    /// Compiles detection rules, filters and correlations. Every document gets a report.
    pub fn build(
        set: RuleSet,
        options: &EngineOptions,
        detector_options: &DetectorOptions,
    ) -> (Detector, Vec<RuleReport>) {
        let RuleSet {
            rules,
            filters,
            correlations,
            invalid,
            ..
        } = set;
        let (engine, outcomes) = Engine::build(rules, &filters, options);
        let mut reports: Vec<RuleReport> = invalid;
        for (meta, outcome, notes) in outcomes {
            reports.push(RuleReport {
                path: meta.path.clone(),
                id: meta.id.clone(),
                title: meta.title.clone(),
                kind: RuleKind::Detection,
                outcome,
                notes,
            });
        }
        for f in &filters {
            reports.push(RuleReport {
                path: f.meta.path.clone(),
                id: f.meta.id.clone(),
                title: f.meta.title.clone(),
                kind: RuleKind::Filter,
                outcome: Outcome::Active,
                notes: vec![format!("applies to {}", f.rules.join(", "))],
            });
        }

        // Base-rule lookup by id and by name.
        let mut by_ref: FxHashMap<&str, RuleIndex> = FxHashMap::default();
        for (i, m) in engine.rules().iter().enumerate() {
            if !m.id.is_empty() {
                by_ref.insert(m.id.as_str(), i as RuleIndex);
            }
            if let Some(n) = &m.name {
                by_ref.insert(n.as_str(), i as RuleIndex);
            }
        }
        let mut parsed = Vec::new();
        let mut parsed_paths = Vec::new();
        for c in &correlations {
            match parse_correlation(&c.doc) {
                Ok(rule) => {
                    parsed_paths.push(c.path.clone());
                    parsed.push(rule);
                }
                Err(e) => reports.push(RuleReport {
                    path: c.path.clone(),
                    id: crate::rule::yaml_str(&c.doc, "id").unwrap_or_default(),
                    title: crate::rule::yaml_str(&c.doc, "title").unwrap_or_default(),
                    kind: RuleKind::Correlation,
                    outcome: Outcome::Invalid(e.to_string()),
                    notes: Vec::new(),
                }),
            }
        }
        let metas: Vec<RuleMeta> = parsed
            .iter()
            .zip(&parsed_paths)
            .map(|(c, p)| correlation_meta(c, p))
            .collect();
        let resolution = resolve(parsed, &|r| by_ref.get(r).copied());
        let mut errors: FxHashMap<usize, String> = FxHashMap::default();
        for (i, e) in &resolution.errors {
            errors.insert(*i, e.to_string());
        }
        for (i, meta) in metas.iter().enumerate() {
            let outcome = match errors.get(&i) {
                Some(e) => Outcome::Unsupported(e.clone()),
                None => Outcome::Active,
            };
            reports.push(RuleReport {
                path: meta.path.clone(),
                id: meta.id.clone(),
                title: meta.title.clone(),
                kind: RuleKind::Correlation,
                outcome,
                notes: Vec::new(),
            });
        }
        let n = engine.rules().len();
        let mut feeds = vec![false; n];
        let mut silenced = vec![false; n];
        for r in base_rules_without_standalone_output(&resolution.correlations) {
            if let Some(s) = silenced.get_mut(r as usize) {
                *s = true;
            }
        }
        let correlation_meta: Vec<RuleMeta> = resolution
            .correlations
            .iter()
            .map(|c| metas[c.source].clone())
            .collect();
        for c in &resolution.correlations {
            for input in &c.inputs {
                if let dozor_correlation::RuleRef::Base(b) = input
                    && let Some(f) = feeds.get_mut(*b as usize)
                {
                    *f = true;
                }
            }
        }
        let compiled = Arc::new(Compiled {
            engine,
            correlations: resolution.correlations,
            correlation_config: detector_options.correlation.clone(),
            correlation_meta,
            feeds,
            silenced,
        });
        (
            Detector {
                correlations: compiled.correlation_engine(),
                compiled,
            },
            reports,
        )
    }

    /// A detector over the same compiled rules (shared, not copied or compiled again) with
    /// correlation state of its own: one per worker thread.
    pub fn another(&self) -> Detector {
        Detector {
            correlations: self.compiled.correlation_engine(),
            compiled: self.compiled.clone(),
        }
    }

    /// Whether both detectors run the very same compiled rules (one came from the other
    /// through [`Detector::another`]).
    pub fn shares_rules_with(&self, other: &Detector) -> bool {
        Arc::ptr_eq(&self.compiled, &other.compiled)
    }

    pub fn engine(&self) -> &Engine {
        &self.compiled.engine
    }

    /// Metadata of correlation rules, indexed by [`CorrelationHit::correlation`].
    pub fn correlation_rules(&self) -> &[RuleMeta] {
        &self.compiled.correlation_meta
    }

    pub fn has_correlations(&self) -> bool {
        self.correlations.is_some()
    }

    /// Whether matches of this base rule must be fed to [`Detector::correlate`].
    pub fn feeds_correlation(&self, rule: RuleIndex) -> bool {
        self.compiled
            .feeds
            .get(rule as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Whether matches of this base rule are reported by themselves.
    pub fn reports_standalone(&self, rule: RuleIndex) -> bool {
        !self
            .compiled
            .silenced
            .get(rule as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Feeds one base-rule match (in time order, within the configured lateness).
    pub fn correlate(
        &mut self,
        rule: RuleIndex,
        event: &dyn EventFields,
        event_ref: u64,
        out: &mut Vec<CorrelationHit>,
    ) {
        if let Some(c) = &mut self.correlations
            && c.wants(rule)
        {
            c.on_match(rule, event, event_ref, out);
        }
    }

    /// Decides windows still open at the end of input (e.g. `lt` conditions).
    pub fn finish(&mut self, out: &mut Vec<CorrelationHit>) {
        if let Some(c) = &mut self.correlations {
            c.finish(out);
        }
    }
}
