//! Resolving rule references (`correlation.rules`) into engine inputs.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::CorrelationError;
use crate::rule::{CorrelationRule, CorrelationType};

/// What one entry of `correlation.rules` resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleRef {
    /// A detection rule, by the caller's base-rule index (the `base_rule` of
    /// [`crate::CorrelationEngine::on_match`]).
    Base(u32),
    /// Another correlation rule, by its index in the resolved vector (chaining).
    Correlation(usize),
}

/// Where one field value of one input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    /// Field name in the event (after aliases and the caller's field mapping).
    pub(crate) event_field: String,
    /// For inputs that are correlations: the label in the upstream hit's `group` to read first
    /// (the alias' per-rule field, or the group-by name itself). The triggering event, when
    /// there is one, is the fallback.
    pub(crate) upstream_label: Option<String>,
}

/// A correlation rule whose references are resolved, ready for [`crate::CorrelationEngine`].
#[derive(Debug, Clone)]
pub struct ResolvedCorrelation {
    /// The rule with all its metadata (title, level, ...).
    pub rule: CorrelationRule,
    /// Index of this rule in the vector given to [`resolve`].
    pub source: usize,
    /// One per entry of `rule.rules`, in the same order (the order temporal_ordered checks).
    pub inputs: Vec<RuleRef>,
    /// False when another correlation references this one with `generate: false`: its hits
    /// only feed that correlation and are not reported on their own (unless
    /// [`crate::CorrelationConfig::emit_intermediate`] is set).
    pub output: bool,
    /// `[input][group-by index]`
    pub(crate) group_fields: Vec<Vec<FieldSpec>>,
    /// `[input][condition field index]` (empty inner vectors for types without a field).
    pub(crate) value_fields: Vec<Vec<FieldSpec>>,
}

impl ResolvedCorrelation {
    /// Field names read from events of input `input` for the group key, in group-by order
    /// (after aliases and field mapping). Useful to explain a rule.
    pub fn group_event_fields(&self, input: usize) -> Vec<&str> {
        self.group_fields
            .get(input)
            .map(|v| v.iter().map(|f| f.event_field.as_str()).collect())
            .unwrap_or_default()
    }

    /// Field names read from events of input `input` for the aggregated value.
    pub fn value_event_fields(&self, input: usize) -> Vec<&str> {
        self.value_fields
            .get(input)
            .map(|v| v.iter().map(|f| f.event_field.as_str()).collect())
            .unwrap_or_default()
    }
}

/// The outcome of [`resolve`]: the usable correlations and, per rejected rule, why.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub correlations: Vec<ResolvedCorrelation>,
    /// `(index in the input vector, error)`. A correlation that references a rejected
    /// correlation is rejected too ([`CorrelationError::BrokenDependency`]).
    pub errors: Vec<(usize, CorrelationError)>,
}

/// Resolves the references of a set of correlation rules.
///
/// A reference is first looked up among the `id`s and `name`s of `rules` themselves
/// (chaining), then through `base`, which maps a detection rule id or name to the caller's
/// base-rule index. A reference found in both places is an error, as is one found nowhere.
pub fn resolve(rules: Vec<CorrelationRule>, base: &dyn Fn(&str) -> Option<u32>) -> Resolution {
    resolve_inner(rules, base, None)
}

/// Like [`resolve`], with a field-name mapping applied to every field the correlations read
/// from events (group-by fields, alias targets, condition fields): e.g. `User` → `user.name`
/// for events in an ECS-style taxonomy. Names in hits (`CorrelationHit::group`) stay as written
/// in the rule.
pub fn resolve_with_field_map(
    rules: Vec<CorrelationRule>,
    base: &dyn Fn(&str) -> Option<u32>,
    field_map: &dyn Fn(&str) -> String,
) -> Resolution {
    resolve_inner(rules, base, Some(field_map))
}

impl CorrelationRule {
    /// Resolves one correlation that references only detection rules (no chaining). For a set
    /// with chained correlations use [`resolve`].
    pub fn resolve(
        self,
        base: &dyn Fn(&str) -> Option<u32>,
        field_map: Option<&dyn Fn(&str) -> String>,
    ) -> Result<ResolvedCorrelation, CorrelationError> {
        let mut r = resolve_inner(vec![self], base, field_map);
        match r.errors.pop() {
            Some((_, e)) => Err(e),
            None => r
                .correlations
                .pop()
                .ok_or_else(|| CorrelationError::Engine("nothing resolved".into())),
        }
    }
}

/// Base-rule indices whose matches should not be reported as stand-alone alerts: those
/// referenced by a correlation with `generate: false` (the default). The specification:
/// "`generate` defines if the rules referred from the correlation rule should be converted as
/// stand-alone rules or if only the correlation query should be generated (default)". As in
/// pySigma, one referencing correlation without `generate: true` is enough to silence a rule.
pub fn base_rules_without_standalone_output(rules: &[ResolvedCorrelation]) -> Vec<u32> {
    let mut set = FxHashSet::default();
    for r in rules.iter().filter(|r| !r.rule.generate) {
        for input in &r.inputs {
            if let RuleRef::Base(i) = input {
                set.insert(*i);
            }
        }
    }
    let mut v: Vec<u32> = set.into_iter().collect();
    v.sort_unstable();
    v
}

enum Target {
    Base(u32),
    Corr(usize),
}

fn resolve_inner(
    rules: Vec<CorrelationRule>,
    base: &dyn Fn(&str) -> Option<u32>,
    field_map: Option<&dyn Fn(&str) -> String>,
) -> Resolution {
    let n = rules.len();
    let mut errors: Vec<Option<CorrelationError>> = vec![None; n];

    // Identifiers of the correlation rules themselves.
    let mut ident: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, r) in rules.iter().enumerate() {
        let mut own: Vec<&str> = Vec::with_capacity(2);
        own.extend(r.id.as_deref());
        own.extend(r.name.as_deref().filter(|n| Some(*n) != r.id.as_deref()));
        for key in own {
            if ident.contains_key(key) {
                errors[i] = Some(CorrelationError::DuplicateIdentifier(key.to_owned()));
            } else {
                ident.insert(key, i);
            }
        }
    }

    // References.
    let mut targets: Vec<Vec<Target>> = Vec::with_capacity(n);
    for (i, r) in rules.iter().enumerate() {
        let mut t = Vec::with_capacity(r.rules.len());
        for reference in &r.rules {
            let corr = ident.get(reference.as_str()).copied();
            let found = match (corr, base(reference)) {
                (Some(_), Some(_)) => Err(CorrelationError::AmbiguousReference {
                    rule: r.label().to_owned(),
                    reference: reference.clone(),
                }),
                (Some(j), None) if j == i => Err(CorrelationError::Cycle {
                    rule: r.label().to_owned(),
                }),
                (Some(j), None) => Ok(Target::Corr(j)),
                (None, Some(b)) => Ok(Target::Base(b)),
                (None, None) => Err(CorrelationError::UnknownReference {
                    rule: r.label().to_owned(),
                    reference: reference.clone(),
                }),
            };
            match found {
                Ok(x) => t.push(x),
                Err(e) => {
                    if errors[i].is_none() {
                        errors[i] = Some(e);
                    }
                }
            }
        }
        targets.push(t);
    }

    // Cycles among correlations (iterative DFS; colors: 0 new, 1 on the stack, 2 done).
    let succ: Vec<Vec<usize>> = targets
        .iter()
        .map(|t| {
            t.iter()
                .filter_map(|x| match x {
                    Target::Corr(j) => Some(*j),
                    Target::Base(_) => None,
                })
                .collect()
        })
        .collect();
    let mut color = vec![0u8; n];
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        color[start] = 1;
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&(node, k)) = stack.last() {
            if let Some(&j) = succ[node].get(k) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match color[j] {
                    0 => {
                        color[j] = 1;
                        stack.push((j, 0));
                    }
                    1 => {
                        // every node on the stack from j upwards is in the cycle
                        let from = stack.iter().position(|(x, _)| *x == j).unwrap_or(0);
                        for &(x, _) in &stack[from..] {
                            if errors[x].is_none() {
                                errors[x] = Some(CorrelationError::Cycle {
                                    rule: rules[x].label().to_owned(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }

    // Propagate: a correlation that references a broken correlation is broken too.
    loop {
        let mut changed = false;
        for i in 0..n {
            if errors[i].is_some() {
                continue;
            }
            let broken = targets[i].iter().find_map(|t| match t {
                Target::Corr(j) if errors[*j].is_some() => Some(*j),
                _ => None,
            });
            if let Some(j) = broken {
                errors[i] = Some(CorrelationError::BrokenDependency {
                    rule: rules[i].label().to_owned(),
                    reference: rules[j].label().to_owned(),
                });
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Renumber the surviving correlations.
    let mut new_index = vec![usize::MAX; n];
    let mut next = 0;
    for i in 0..n {
        if errors[i].is_none() {
            new_index[i] = next;
            next += 1;
        }
    }

    // `output`: not referenced by a surviving correlation with generate: false.
    let mut silenced = vec![false; n];
    for i in (0..n).filter(|&i| errors[i].is_none() && !rules[i].generate) {
        for t in &targets[i] {
            if let Target::Corr(j) = t {
                silenced[*j] = true;
            }
        }
    }

    let mut out = Resolution::default();
    for (i, (rule, targets)) in rules.into_iter().zip(targets).enumerate() {
        if let Some(e) = errors[i].take() {
            out.errors.push((i, e));
            continue;
        }
        let inputs: Vec<RuleRef> = targets
            .iter()
            .map(|t| match t {
                Target::Base(b) => RuleRef::Base(*b),
                Target::Corr(j) => RuleRef::Correlation(new_index[*j]),
            })
            .collect();
        let mut group_fields = Vec::with_capacity(inputs.len());
        let mut value_fields = Vec::with_capacity(inputs.len());
        for (slot, input) in inputs.iter().enumerate() {
            let reference = &rule.rules[slot];
            let chained = matches!(input, RuleRef::Correlation(_));
            let spec = |name: &str| {
                let per_rule = rule
                    .alias(name)
                    .and_then(|a| a.fields.iter().find(|(r, _)| r == reference))
                    .map(|(_, f)| f.as_str())
                    .unwrap_or(name);
                FieldSpec {
                    event_field: field_map.map_or_else(|| per_rule.to_owned(), |m| m(per_rule)),
                    upstream_label: chained.then(|| per_rule.to_owned()),
                }
            };
            group_fields.push(rule.group_by.iter().map(|g| spec(g)).collect());
            value_fields.push(
                if rule.kind == CorrelationType::Temporal
                    || rule.kind == CorrelationType::TemporalOrdered
                {
                    Vec::new()
                } else {
                    rule.condition.fields.iter().map(|f| spec(f)).collect()
                },
            );
        }
        out.correlations.push(ResolvedCorrelation {
            rule,
            source: i,
            inputs,
            output: !silenced[i],
            group_fields,
            value_fields,
        });
    }
    out
}
