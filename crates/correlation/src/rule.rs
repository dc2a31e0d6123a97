//! Correlation rule model and its parser (Sigma correlation rules specification v2.1).

use std::fmt;

use yaml_serde::{Mapping, Value};

use crate::error::CorrelationError;

/// The kind of aggregation a correlation performs (`correlation.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    /// Number of matching events per group.
    EventCount,
    /// Number of distinct values of `condition.field` per group.
    ValueCount,
    /// Number of distinct referenced rules that matched per group, in any order.
    Temporal,
    /// Like `Temporal`, in the order of `correlation.rules`.
    TemporalOrdered,
    /// Sum of the numeric `condition.field` per group (spec v2.1).
    ValueSum,
    /// Average of the numeric `condition.field` per group (spec v2.1).
    ValueAvg,
    /// Percentile of `condition.field` per group (spec v2.1); see the crate docs for the two
    /// readings this crate implements.
    ValuePercentile,
    /// Median of the numeric `condition.field` (pySigma extension: percentile 50).
    ValueMedian,
}

impl CorrelationType {
    /// The spelling used in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
            CorrelationType::ValuePercentile => "value_percentile",
            CorrelationType::ValueMedian => "value_median",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            "value_sum" => CorrelationType::ValueSum,
            "value_avg" => CorrelationType::ValueAvg,
            "value_percentile" => CorrelationType::ValuePercentile,
            "value_median" => CorrelationType::ValueMedian,
            _ => return None,
        })
    }

    /// Types whose `condition` must name a `field`.
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueCount
                | CorrelationType::ValueSum
                | CorrelationType::ValueAvg
                | CorrelationType::ValuePercentile
                | CorrelationType::ValueMedian
        )
    }

    /// Types that always aggregate a number read from the event (value_percentile does too
    /// when its condition has `percentile`).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueSum | CorrelationType::ValueAvg | CorrelationType::ValueMedian
        )
    }

    fn is_temporal(self) -> bool {
        matches!(
            self,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        )
    }
}

impl fmt::Display for CorrelationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison operator of `correlation.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CompareOp {
    /// The spelling used in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Gt => "gt",
            CompareOp::Gte => "gte",
            CompareOp::Lt => "lt",
            CompareOp::Lte => "lte",
            CompareOp::Eq => "eq",
            CompareOp::Neq => "neq",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "gt" => CompareOp::Gt,
            "gte" => CompareOp::Gte,
            "lt" => CompareOp::Lt,
            "lte" => CompareOp::Lte,
            "eq" => CompareOp::Eq,
            "neq" => CompareOp::Neq,
            _ => return None,
        })
    }

    /// `value <op> threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            CompareOp::Gt => value > threshold,
            CompareOp::Gte => value >= threshold,
            CompareOp::Lt => value < threshold,
            CompareOp::Lte => value <= threshold,
            CompareOp::Eq => value == threshold,
            CompareOp::Neq => value != threshold,
        }
    }
}

/// `correlation.condition`: one or more comparisons linked by AND, plus the aggregated field.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The comparisons, all of which must hold (`gt: 100` + `lte: 200` is a range).
    pub bounds: Vec<(CompareOp, f64)>,
    /// `field`: the field(s) aggregated by value_* types (several fields are linked by AND:
    /// value_count counts distinct combinations). Empty for other types.
    pub fields: Vec<String>,
    /// `percentile` (pySigma extension, 0..=100) for value_percentile; see the crate docs.
    pub percentile: Option<f64>,
}

impl Condition {
    /// True when every comparison holds for `value`.
    pub fn holds(&self, value: f64) -> bool {
        self.bounds.iter().all(|&(op, t)| op.holds(value, t))
    }

    /// True when the condition only bounds the value from below (`gt`/`gte`).
    pub fn lower_bounded_only(&self) -> bool {
        self.bounds
            .iter()
            .all(|(op, _)| matches!(op, CompareOp::Gt | CompareOp::Gte))
    }
}

/// `correlation.timespan`, kept with its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timespan {
    /// Length in milliseconds (always > 0).
    pub millis: i64,
    /// The text as written in the rule (`5m`).
    pub text: String,
}

impl Timespan {
    /// Parses `<positive integer><unit>` with unit `s`, `m`, `h`, `d` (the specification) or
    /// `w`, `M` (30.436875 days), `y` (365.2425 days) as pySigma also accepts.
    pub fn parse(text: &str) -> Result<Timespan, CorrelationError> {
        let bad = |reason: &str| CorrelationError::BadTimespan {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let Some(unit) = trimmed.chars().last() else {
            return Err(bad("empty; expected a number followed by a unit, e.g. 5m"));
        };
        let digits = &trimmed[..trimmed.len() - unit.len_utf8()];
        let unit_seconds: i64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            'M' => 2_629_746,
            'y' => 31_556_952,
            c if c.is_ascii_digit() => {
                return Err(bad("the unit is missing; expected s, m, h or d (e.g. 90m)"));
            }
            _ => return Err(bad("unknown unit; expected s, m, h or d (also w, M, y)")),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "expected a positive whole number before the unit, e.g. 10s",
            ));
        }
        let count: i64 = digits.parse().map_err(|_| bad("the number is too large"))?;
        if count == 0 {
            return Err(bad("must be greater than zero"));
        }
        let millis = count
            .checked_mul(unit_seconds)
            .and_then(|s| s.checked_mul(1_000))
            .ok_or_else(|| bad("the number is too large"))?;
        Ok(Timespan {
            millis,
            text: text.to_owned(),
        })
    }
}

/// One alias of `correlation.aliases`: per referenced rule, the field that holds the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAlias {
    /// The alias name, usable in `group-by` (and, in this crate, in `condition.field`).
    pub alias: String,
    /// `(rule reference as written in correlation.rules, field name in that rule's events)`.
    pub fields: Vec<(String, String)>,
}

/// A parsed Sigma correlation rule (one YAML document with a `correlation` key).
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationRule {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    /// Lower-cased; one of stable, test, experimental, deprecated, unsupported.
    pub status: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub taxonomy: Option<String>,
    /// Lower-cased; one of informational, low, medium, high, critical.
    pub level: Option<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    /// `generate` (default false): when false, the referenced rules are not output as
    /// stand-alone rules, only the correlation is. Read from the top level (JSON schema) or
    /// from inside `correlation` (where pySigma reads it).
    pub generate: bool,
    /// `correlation.type`.
    pub kind: CorrelationType,
    /// `correlation.rules`: ids or names of detection or correlation rules.
    pub rules: Vec<String>,
    /// `correlation.group-by` (may be empty: a single group).
    pub group_by: Vec<String>,
    pub timespan: Timespan,
    pub aliases: Vec<FieldAlias>,
    /// For temporal types without a condition: `gte: <number of rules>`.
    pub condition: Condition,
}

impl CorrelationRule {
    /// The ids/names this correlation references, as written in `correlation.rules`.
    pub fn referenced_rules(&self) -> &[String] {
        &self.rules
    }

    /// A human label for messages: name, else id, else title.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or(&self.title)
    }

    /// The alias definition named `name`, if any.
    pub fn alias(&self, name: &str) -> Option<&FieldAlias> {
        self.aliases.iter().find(|a| a.alias == name)
    }
}

/// True when a YAML document is a correlation rule (has a `correlation` key).
pub fn is_correlation(doc: &Value) -> bool {
    doc.as_mapping()
        .is_some_and(|m| m.contains_key("correlation"))
}

const CORRELATION_KEYS: &str = "type, rules, aliases, group-by, timespan, condition, generate";
const CONDITION_KEYS: &str = "gt, gte, lt, lte, eq, neq, field, percentile";
const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
const STATUSES: [&str; 5] = [
    "stable",
    "test",
    "experimental",
    "deprecated",
    "unsupported",
];

/// Parses one YAML document that has a `correlation:` key.
///
/// Strict inside `correlation` and `condition` (unknown attributes are errors, since a typo
/// such as `groupby` would silently change the rule), lenient at the top level (custom
/// metadata is ignored). Never panics.
pub fn parse_correlation(doc: &Value) -> Result<CorrelationRule, CorrelationError> {
    let top = doc
        .as_mapping()
        .ok_or_else(|| wrong_type("<document>", "a mapping", doc))?;
    let corr_value = top
        .get("correlation")
        .ok_or(CorrelationError::NotACorrelation)?;
    let corr = corr_value
        .as_mapping()
        .ok_or_else(|| wrong_type("correlation", "a mapping", corr_value))?;

    for key in corr.keys() {
        let known = key.as_str().is_some_and(|k| {
            matches!(
                k,
                "type" | "rules" | "aliases" | "group-by" | "timespan" | "condition" | "generate"
            )
        });
        if !known {
            return Err(CorrelationError::UnknownKey {
                section: "correlation",
                key: key_text(key),
                allowed: CORRELATION_KEYS,
            });
        }
    }

    let title = opt_scalar(top, "title", "title")?.ok_or(CorrelationError::Missing("title"))?;
    let id = opt_scalar(top, "id", "id")?;
    let name = opt_scalar(top, "name", "name")?;
    let status = opt_enum(top, "status", &STATUSES)?;
    let level = opt_enum(top, "level", &LEVELS)?;
    let description = opt_scalar(top, "description", "description")?;
    let author = opt_scalar(top, "author", "author")?;
    let date = opt_scalar(top, "date", "date")?;
    let modified = opt_scalar(top, "modified", "modified")?;
    let taxonomy = opt_scalar(top, "taxonomy", "taxonomy")?;
    let references = string_list(top, "references", "references")?;
    let tags = string_list(top, "tags", "tags")?;
    let falsepositives = string_list(top, "falsepositives", "falsepositives")?;

    let generate = match (top.get("generate"), corr.get("generate")) {
        (_, Some(v)) => bool_value(v, "correlation.generate")?,
        (Some(v), None) => bool_value(v, "generate")?,
        (None, None) => false,
    };

    let type_value = corr
        .get("type")
        .ok_or(CorrelationError::Missing("correlation.type"))?;
    let type_text = type_value
        .as_str()
        .ok_or_else(|| wrong_type("correlation.type", "a string", type_value))?;
    let kind_ = CorrelationType::parse(type_text)
        .ok_or_else(|| CorrelationError::UnknownType(type_text.to_owned()))?;

    // rules: a list of strings (a single string is accepted, as pySigma does).
    let rules_value = corr
        .get("rules")
        .ok_or(CorrelationError::Missing("correlation.rules"))?;
    let rules = strings_or_string(rules_value, "correlation.rules")?;
    if rules.is_empty() {
        return Err(CorrelationError::Invalid {
            attr: "correlation.rules".into(),
            reason: "must reference at least one rule".into(),
        });
    }
    for (i, r) in rules.iter().enumerate() {
        if r.trim().is_empty() {
            return Err(CorrelationError::Invalid {
                attr: "correlation.rules".into(),
                reason: "empty rule reference".into(),
            });
        }
        if rules[..i].contains(r) {
            return Err(CorrelationError::Invalid {
                attr: "correlation.rules".into(),
                reason: format!("rule `{r}` is listed twice"),
            });
        }
    }

    let group_by = match corr.get("group-by") {
        Some(v) => strings_or_string(v, "correlation.group-by")?,
        None => return Err(CorrelationError::Missing("correlation.group-by")),
    };
    for (i, g) in group_by.iter().enumerate() {
        if group_by[..i].contains(g) {
            return Err(CorrelationError::Invalid {
                attr: "correlation.group-by".into(),
                reason: format!("field `{g}` is listed twice"),
            });
        }
    }

    let ts_value = corr
        .get("timespan")
        .ok_or(CorrelationError::Missing("correlation.timespan"))?;
    let ts_text = match ts_value {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            return Err(CorrelationError::BadTimespan {
                value: n.to_string(),
                reason: "the unit is missing; expected s, m, h or d (e.g. 90m)".into(),
            });
        }
        other => {
            return Err(wrong_type(
                "correlation.timespan",
                "a string such as 5m",
                other,
            ));
        }
    };
    let timespan = Timespan::parse(&ts_text)?;

    let aliases = match corr.get("aliases") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_aliases(v, &rules)?,
    };

    let condition = match corr.get("condition") {
        None | Some(Value::Null) => {
            if kind_.is_temporal() {
                Condition {
                    bounds: vec![(CompareOp::Gte, rules.len() as f64)],
                    fields: Vec::new(),
                    percentile: None,
                }
            } else {
                return Err(CorrelationError::Missing("correlation.condition"));
            }
        }
        Some(Value::String(s)) => {
            return Err(CorrelationError::BadCondition(format!(
                "`{s}`: extended (boolean expression) conditions are not part of Sigma v2.1 and are not supported; \
                 use a mapping such as `gte: 10`"
            )));
        }
        Some(v) => parse_condition(v, kind_)?,
    };

    Ok(CorrelationRule {
        title,
        id,
        name,
        status,
        description,
        author,
        references,
        date,
        modified,
        taxonomy,
        level,
        tags,
        falsepositives,
        generate,
        kind: kind_,
        rules,
        group_by,
        timespan,
        aliases,
        condition,
    })
}

fn parse_aliases(v: &Value, rules: &[String]) -> Result<Vec<FieldAlias>, CorrelationError> {
    let map = v.as_mapping().ok_or_else(|| {
        wrong_type(
            "correlation.aliases",
            "a mapping of alias -> {rule name: field}",
            v,
        )
    })?;
    let mut out = Vec::with_capacity(map.len());
    for (alias_key, per_rule) in map {
        let alias = alias_key
            .as_str()
            .ok_or_else(|| wrong_type("correlation.aliases", "string alias names", alias_key))?;
        let attr = format!("correlation.aliases.{alias}");
        let per_rule = per_rule.as_mapping().ok_or_else(|| {
            wrong_type(
                attr.clone(),
                "a mapping of rule name -> field name",
                per_rule,
            )
        })?;
        let mut fields = Vec::with_capacity(per_rule.len());
        for (rule_key, field) in per_rule {
            let rule = rule_key
                .as_str()
                .ok_or_else(|| wrong_type(attr.clone(), "rule names as keys", rule_key))?;
            if !rules.iter().any(|r| r == rule) {
                return Err(CorrelationError::Invalid {
                    attr,
                    reason: format!("rule `{rule}` is not listed in correlation.rules"),
                });
            }
            let field = field
                .as_str()
                .ok_or_else(|| wrong_type(format!("{attr}.{rule}"), "a field name", field))?;
            fields.push((rule.to_owned(), field.to_owned()));
        }
        out.push(FieldAlias {
            alias: alias.to_owned(),
            fields,
        });
    }
    Ok(out)
}

fn parse_condition(v: &Value, kind_: CorrelationType) -> Result<Condition, CorrelationError> {
    let map = v
        .as_mapping()
        .ok_or_else(|| wrong_type("correlation.condition", "a mapping such as {gte: 10}", v))?;
    let mut bounds = Vec::new();
    let mut fields = Vec::new();
    let mut percentile = None;
    for (key, value) in map {
        let Some(k) = key.as_str() else {
            return Err(CorrelationError::UnknownKey {
                section: "correlation.condition",
                key: key_text(key),
                allowed: CONDITION_KEYS,
            });
        };
        if let Some(op) = CompareOp::parse(k) {
            let n = number(value).ok_or_else(|| {
                CorrelationError::BadCondition(format!(
                    "`{k}` must be a finite number, found {}",
                    show(value)
                ))
            })?;
            bounds.push((op, n));
        } else if k == "field" {
            fields = strings_or_string(value, "correlation.condition.field")?;
            if fields.is_empty() || fields.iter().any(|f| f.trim().is_empty()) {
                return Err(CorrelationError::BadCondition(
                    "`field` must name a field".into(),
                ));
            }
        } else if k == "percentile" {
            let p = number(value).ok_or_else(|| {
                CorrelationError::BadCondition(format!(
                    "`percentile` must be a number, found {}",
                    show(value)
                ))
            })?;
            if !(0.0..=100.0).contains(&p) {
                return Err(CorrelationError::BadCondition(format!(
                    "`percentile` must be within 0..=100, found {p}"
                )));
            }
            percentile = Some(p);
        } else {
            return Err(CorrelationError::UnknownKey {
                section: "correlation.condition",
                key: k.to_owned(),
                allowed: CONDITION_KEYS,
            });
        }
    }
    if bounds.is_empty() {
        return Err(CorrelationError::BadCondition(
            "no comparison; expected at least one of gt, gte, lt, lte, eq, neq".into(),
        ));
    }
    if kind_.needs_field() && fields.is_empty() {
        return Err(CorrelationError::BadCondition(format!(
            "a {kind_} correlation requires `field` in the condition"
        )));
    }
    if !kind_.needs_field() && !fields.is_empty() {
        return Err(CorrelationError::BadCondition(format!(
            "`field` is only meaningful for value_* correlations, not for {kind_}"
        )));
    }
    if (kind_.is_numeric() || (kind_ == CorrelationType::ValuePercentile && percentile.is_some()))
        && fields.len() != 1
    {
        return Err(CorrelationError::BadCondition(format!(
            "a {kind_} correlation aggregates exactly one numeric field"
        )));
    }
    if percentile.is_some() && kind_ != CorrelationType::ValuePercentile {
        return Err(CorrelationError::BadCondition(format!(
            "`percentile` is only meaningful for value_percentile, not for {kind_}"
        )));
    }
    Ok(Condition {
        bounds,
        fields,
        percentile,
    })
}

fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// `attr` is not of the `expected` kind: it is `found`.
fn wrong_type(attr: impl Into<String>, expected: &'static str, found: &Value) -> CorrelationError {
    CorrelationError::WrongType {
        attr: attr.into(),
        expected,
        found: kind(found),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => kind(other).to_owned(),
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind(other).to_owned(),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn opt_scalar(
    map: &Mapping,
    key: &str,
    attr: &'static str,
) -> Result<Option<String>, CorrelationError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_text(v)
            .map(Some)
            .ok_or_else(|| wrong_type(attr, "a string", v)),
    }
}

fn opt_enum(
    map: &Mapping,
    key: &'static str,
    allowed: &[&str],
) -> Result<Option<String>, CorrelationError> {
    let Some(text) = opt_scalar(map, key, key)? else {
        return Ok(None);
    };
    let lower = text.trim().to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(Some(lower))
    } else {
        Err(CorrelationError::Invalid {
            attr: key.into(),
            reason: format!("`{text}` is not one of {}", allowed.join(", ")),
        })
    }
}

/// A list of scalars, a single scalar, or absent.
fn string_list(
    map: &Mapping,
    key: &str,
    attr: &'static str,
) -> Result<Vec<String>, CorrelationError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => strings_or_string(v, attr),
    }
}

fn strings_or_string(v: &Value, attr: &str) -> Result<Vec<String>, CorrelationError> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                scalar_text(item).ok_or_else(|| wrong_type(attr, "a list of strings", item))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => scalar_text(other)
            .map(|s| vec![s])
            .ok_or_else(|| wrong_type(attr, "a string or a list of strings", other)),
    }
}

fn bool_value(v: &Value, attr: &str) -> Result<bool, CorrelationError> {
    v.as_bool()
        .ok_or_else(|| wrong_type(attr, "true or false", v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<CorrelationRule, CorrelationError> {
        let doc: Value = yaml_serde::from_str(yaml).expect("test YAML is valid");
        parse_correlation(&doc)
    }

    #[test]
    fn timespans() {
        assert_eq!(Timespan::parse("10s").unwrap().millis, 10_000);
        assert_eq!(Timespan::parse("90m").unwrap().millis, 5_400_000);
        assert_eq!(Timespan::parse("1h").unwrap().millis, 3_600_000);
        assert_eq!(Timespan::parse("1d").unwrap().millis, 86_400_000);
        assert_eq!(Timespan::parse("1w").unwrap().millis, 604_800_000);
        assert_eq!(Timespan::parse("1M").unwrap().millis, 2_629_746_000);
        assert_eq!(Timespan::parse("1y").unwrap().millis, 31_556_952_000);
        for bad in [
            "",
            "m",
            "10",
            "0s",
            "-5m",
            "1.5h",
            "5 x",
            "5H",
            "5min",
            "99999999999999999999s",
            "9223372036854775807d",
            "5é",
        ] {
            let err = Timespan::parse(bad).unwrap_err();
            assert!(
                matches!(err, CorrelationError::BadTimespan { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let base = "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5m\n  condition: {gte: 3}\n";
        assert!(parse(base).is_ok());
        let cases: &[(&str, &str)] = &[
            (
                "title: t\ncorrelation:\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1}",
                "missing required attribute `correlation.type`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_counts\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1}",
                "unknown correlation type `event_counts`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1}",
                "`correlation.rules`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  condition: {gte: 1}",
                "`correlation.timespan`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5\n  condition: {gte: 1}",
                "invalid timespan `5`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m",
                "`correlation.condition`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 1}",
                "`correlation.group-by`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  groupby: [U]\n  timespan: 5m\n  condition: {gte: 1}",
                "unknown attribute `groupby` in `correlation`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {greater: 1}",
                "unknown attribute `greater` in `correlation.condition`",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: many}",
                "`gte` must be a finite number",
            ),
            (
                "title: t\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1}",
                "requires `field`",
            ),
            (
                "title: t\ncorrelation:\n  type: value_sum\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1, field: [a, b]}",
                "exactly one numeric field",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {gte: 1, field: x}",
                "only meaningful for value_*",
            ),
            (
                "title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [U]\n  timespan: 5m\n  condition: {field: x}",
                "no comparison",
            ),
            (
                "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  group-by: [U]\n  timespan: 5m\n  condition: a and b",
                "extended",
            ),
            (
                "title: t\ncorrelation:\n  type: temporal\n  rules: [a, a]\n  group-by: [U]\n  timespan: 5m",
                "listed twice",
            ),
            (
                "title: t\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n  timespan: 5m\n  aliases:\n    ip:\n      c: source.ip",
                "rule `c` is not listed",
            ),
            (
                "title: t\nlevel: severe\ncorrelation:\n  type: temporal\n  rules: [a]\n  group-by: [U]\n  timespan: 5m",
                "invalid `level`",
            ),
            (
                "title: t\ncorrelation: 5",
                "`correlation` must be a mapping",
            ),
            (
                "correlation:\n  type: temporal\n  rules: [a]\n  group-by: [U]\n  timespan: 5m",
                "`title`",
            ),
            (
                "title: t\ndetection: {sel: {a: 1}, condition: sel}",
                "no `correlation` mapping",
            ),
            ("- a\n- b", "must be a mapping"),
        ];
        for (yaml, want) in cases {
            let err = parse(yaml).expect_err(yaml).to_string();
            assert!(
                err.contains(want),
                "for\n{yaml}\nwanted `{want}` in `{err}`"
            );
        }
    }

    #[test]
    fn temporal_default_condition_is_all_rules() {
        let r = parse("title: t\ncorrelation:\n  type: temporal\n  rules: [a, b, c]\n  group-by: [U]\n  timespan: 5m").unwrap();
        assert_eq!(r.condition.bounds, vec![(CompareOp::Gte, 3.0)]);
        assert!(!r.generate);
    }

    #[test]
    fn range_condition_and_generate() {
        let r = parse(
            "title: t\ngenerate: true\ncorrelation:\n  type: event_count\n  rules: a\n  group-by: U\n  timespan: 1h\n  condition:\n    gt: 100\n    lte: 200\n",
        )
        .unwrap();
        assert_eq!(r.rules, vec!["a"]);
        assert_eq!(r.group_by, vec!["U"]);
        assert!(r.generate);
        assert!(r.condition.holds(101.0) && r.condition.holds(200.0));
        assert!(!r.condition.holds(100.0) && !r.condition.holds(201.0));
        assert!(!r.condition.lower_bounded_only());
    }

    #[test]
    fn arbitrary_yaml_never_panics() {
        let samples = [
            "",
            "~",
            "[]",
            "{}",
            "correlation:",
            "correlation: []",
            "correlation: {type: 1}",
            "title: [1]\ncorrelation: {}",
            "title: t\ncorrelation: {type: temporal, rules: {a: 1}}",
            "title: t\ncorrelation: {type: temporal, rules: [[a]], group-by: x, timespan: 1m}",
            "title: t\ncorrelation: {type: temporal, rules: [a], group-by: {x: 1}, timespan: 1m}",
            "title: t\ncorrelation: {type: temporal, rules: [a], group-by: [x], timespan: [1m]}",
            "title: t\ncorrelation: {type: value_percentile, rules: [a], group-by: [x], timespan: 1m, condition: {lte: 1, field: f, percentile: 300}}",
            "title: t\ncorrelation: {type: event_count, rules: [a], group-by: [x], timespan: 1m, condition: {gte: .nan}}",
            "title: t\ncorrelation: {type: event_count, rules: [a], group-by: [x], timespan: 1m, condition: {1: 2}}",
            "title: t\ncorrelation: {type: temporal, rules: [a], group-by: [x], timespan: 1m, aliases: [x]}",
            "title: t\ncorrelation: {type: temporal, rules: [a], group-by: [x], timespan: 1m, aliases: {x: [a]}}",
            "title: t\ncorrelation: {type: temporal, rules: [a], group-by: [x], timespan: 1m, aliases: {x: {a: [1]}}}",
            "title: t\ncorrelation: {type: !tag temporal, rules: [a], group-by: [x], timespan: 1m}",
            "title: t\ncorrelation: {? [1] : 2}",
        ];
        for s in samples {
            if let Ok(doc) = yaml_serde::from_str::<Value>(s) {
                let _ = parse_correlation(&doc);
            }
        }
    }
}
