//! Parsed Sigma documents: detection rules and filters, with their metadata.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use yaml_serde::Value as Yaml;

use crate::condition::{CondExpr, parse_condition};
use crate::value::{FieldSpec, Placeholders, RawValue, build_field_spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" | "med" => Level::Medium,
            "high" => Level::High,
            "critical" | "crit" => Level::Critical,
            other => {
                return Err(format!(
                    "unknown level '{other}' (informational, low, medium, high, critical)"
                ));
            }
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Stable,
    Test,
    #[default]
    Experimental,
    Deprecated,
    Unsupported,
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "stable" => Status::Stable,
            "test" => Status::Test,
            "experimental" => Status::Experimental,
            "deprecated" => Status::Deprecated,
            "unsupported" => Status::Unsupported,
            other => {
                return Err(format!(
                    "unknown status '{other}' (stable, test, experimental, deprecated, unsupported)"
                ));
            }
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Stable => "stable",
            Status::Test => "test",
            Status::Experimental => "experimental",
            Status::Deprecated => "deprecated",
            Status::Unsupported => "unsupported",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Detection,
    Correlation,
    Filter,
}

/// `logsource` of a rule, lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct LogSource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl LogSource {
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "product" => self.product.as_deref(),
            "category" => self.category.as_deref(),
            "service" => self.service.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

/// Everything about a rule that is not its detection logic.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleMeta {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub level: Level,
    pub status: Status,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub falsepositives: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    pub logsource: LogSource,
    pub path: PathBuf,
}

/// One search identifier's content.
#[derive(Debug, Clone)]
pub enum Selection {
    /// A map: every field expression must match.
    AllOf(Vec<FieldSpec>),
    /// A list: any element must match.
    AnyOf(Vec<Selection>),
    /// Keyword search over every value of the event.
    Keywords(FieldSpec),
}

/// A detection rule as parsed, before field mapping and compilation.
#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub meta: RuleMeta,
    pub selections: Vec<(String, Selection)>,
    /// Several conditions are OR-ed.
    pub conditions: Vec<CondExpr>,
    pub warnings: Vec<String>,
}

/// A Sigma filter (meta-rule that suppresses matches of named rules).
#[derive(Debug, Clone)]
pub struct ParsedFilter {
    pub meta: RuleMeta,
    /// Rule ids or names the filter applies to.
    pub rules: Vec<String>,
    pub selections: Vec<(String, Selection)>,
    pub conditions: Vec<CondExpr>,
}

pub(crate) fn yaml_str(doc: &Yaml, key: &str) -> Option<String> {
    match doc.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn yaml_str_list(doc: &Yaml, key: &str) -> Vec<String> {
    match doc.get(key) {
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|i| match i {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

pub(crate) fn parse_meta(doc: &Yaml, path: PathBuf) -> Result<RuleMeta, String> {
    let title = yaml_str(doc, "title").ok_or("missing 'title'")?;
    let logsource = match doc.get("logsource") {
        Some(Yaml::Mapping(_)) => {
            let ls = doc.get("logsource");
            let field = |k: &str| {
                ls.and_then(|l| yaml_str(l, k))
                    .map(|v| v.trim().to_lowercase())
            };
            LogSource {
                product: field("product"),
                category: field("category"),
                service: field("service"),
            }
        }
        Some(_) => return Err("'logsource' must be a map".into()),
        None => LogSource::default(),
    };
    let level = match yaml_str(doc, "level") {
        Some(l) => l.parse()?,
        None => Level::default(),
    };
    let status = match yaml_str(doc, "status") {
        Some(s) => s.parse()?,
        None => Status::default(),
    };
    let author = yaml_str(doc, "author").unwrap_or_default();
    Ok(RuleMeta {
        id: yaml_str(doc, "id").unwrap_or_default(),
        name: yaml_str(doc, "name"),
        title,
        description: yaml_str(doc, "description")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        level,
        status,
        tags: yaml_str_list(doc, "tags"),
        author,
        falsepositives: yaml_str_list(doc, "falsepositives"),
        fields: yaml_str_list(doc, "fields"),
        logsource,
        path,
    })
}

pub(crate) fn parse_detection_rule(
    doc: &Yaml,
    path: PathBuf,
    placeholders: &Placeholders,
) -> Result<ParsedRule, String> {
    let meta = parse_meta(doc, path)?;
    if doc.get("logsource").is_none() {
        return Err("missing 'logsource'".into());
    }
    let detection = doc.get("detection").ok_or("missing 'detection'")?;
    let mut warnings = Vec::new();
    let (selections, conditions) =
        parse_detection_block(detection, "detection", placeholders, &mut warnings)?;
    Ok(ParsedRule {
        meta,
        selections,
        conditions,
        warnings,
    })
}

pub(crate) fn parse_filter(
    doc: &Yaml,
    path: PathBuf,
    placeholders: &Placeholders,
) -> Result<ParsedFilter, String> {
    let meta = parse_meta(doc, path)?;
    let filter = doc.get("filter").ok_or("missing 'filter'")?;
    let rules = yaml_str_list(filter, "rules");
    if rules.is_empty() {
        return Err("filter: 'rules' must name at least one rule".into());
    }
    let mut warnings = Vec::new();
    let (selections, conditions) =
        parse_detection_block(filter, "filter", placeholders, &mut warnings)?;
    Ok(ParsedFilter {
        meta,
        rules,
        selections,
        conditions,
    })
}

type DetectionBlock = (Vec<(String, Selection)>, Vec<CondExpr>);

fn parse_detection_block(
    block: &Yaml,
    what: &str,
    placeholders: &Placeholders,
    warnings: &mut Vec<String>,
) -> Result<DetectionBlock, String> {
    let Yaml::Mapping(map) = block else {
        return Err(format!("'{what}' must be a map"));
    };
    let mut selections = Vec::new();
    let mut conditions = Vec::new();
    for (key, value) in map {
        let Some(name) = key.as_str() else {
            return Err(format!("{what}: search identifier names must be strings"));
        };
        match name {
            "condition" => match value {
                Yaml::String(c) => conditions.push(parse_condition(c).map_err(|e| e.to_string())?),
                Yaml::Sequence(items) => {
                    for item in items {
                        let c = item
                            .as_str()
                            .ok_or("condition list items must be strings")?;
                        conditions.push(parse_condition(c).map_err(|e| e.to_string())?);
                    }
                }
                _ => return Err("'condition' must be a string or a list of strings".into()),
            },
            // Sigma 1.0 leftovers that carry no detection logic.
            "timeframe" => {
                return Err(
                    "'timeframe' in detection is Sigma 1.0 aggregation; use a correlation rule"
                        .into(),
                );
            }
            "rules" if what == "filter" => {}
            _ => {
                let selection = parse_selection(value, placeholders, warnings)
                    .map_err(|e| format!("{what}.{name}: {e}"))?;
                selections.push((name.to_owned(), selection));
            }
        }
    }
    if conditions.is_empty() {
        return Err(format!("{what}: missing 'condition'"));
    }
    Ok((selections, conditions))
}

fn raw_value(v: &Yaml) -> Result<RawValue, String> {
    Ok(match v {
        Yaml::Null => RawValue::Null,
        Yaml::Bool(b) => RawValue::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                RawValue::Int(i)
            } else if let Some(f) = n.as_f64() {
                RawValue::Float(f)
            } else {
                RawValue::Str(n.to_string())
            }
        }
        Yaml::String(s) => RawValue::Str(s.clone()),
        Yaml::Tagged(t) => raw_value(&t.value)?,
        Yaml::Sequence(_) => return Err("nested lists are not valid values".into()),
        Yaml::Mapping(_) => return Err("a map is not a valid value here".into()),
    })
}

fn raw_values(v: &Yaml) -> Result<Vec<RawValue>, String> {
    match v {
        Yaml::Sequence(items) => items.iter().map(raw_value).collect(),
        other => Ok(vec![raw_value(other)?]),
    }
}

fn parse_field_expr(
    key: &str,
    value: &Yaml,
    placeholders: &Placeholders,
    warnings: &mut Vec<String>,
) -> Result<FieldSpec, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let modifiers: Vec<&str> = parts.collect();
    // Field names are used without spaces (specification, "Field Usage").
    let field_name = field.replace(' ', "");
    let raw = raw_values(value)?;
    if raw.is_empty() {
        return Err(format!("'{key}': an empty list of values matches nothing"));
    }
    if raw.len() > 1 && raw.contains(&RawValue::Null) {
        return Err(format!("'{key}': null cannot be part of a list of values"));
    }
    let field = if field_name.is_empty() {
        None
    } else {
        Some(field_name.as_str())
    };
    let spec = build_field_spec(field, &modifiers, &raw, placeholders)
        .map_err(|e| format!("'{key}': {e}"))?;
    warnings.extend(spec.warnings.iter().map(|w| format!("'{key}': {w}")));
    Ok(spec)
}

pub(crate) fn parse_selection(
    value: &Yaml,
    placeholders: &Placeholders,
    warnings: &mut Vec<String>,
) -> Result<Selection, String> {
    match value {
        Yaml::Mapping(map) => {
            let mut specs = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = k.as_str().ok_or("field names must be strings")?;
                specs.push(parse_field_expr(key, v, placeholders, warnings)?);
            }
            if specs.is_empty() {
                return Err("empty map".into());
            }
            // A map whose only key is '|modifiers' is a keyword search (e.g. '|all').
            if specs.len() == 1 && specs[0].field.is_none() {
                return Ok(Selection::Keywords(specs.remove(0)));
            }
            if specs.iter().any(|s| s.field.is_none()) {
                return Err(
                    "a keyword expression ('|modifier') cannot be combined with fields in one map"
                        .into(),
                );
            }
            Ok(Selection::AllOf(specs))
        }
        Yaml::Sequence(items) => {
            if items.is_empty() {
                return Err("empty list".into());
            }
            let all_scalars = items
                .iter()
                .all(|i| !matches!(i, Yaml::Mapping(_) | Yaml::Sequence(_)));
            if all_scalars {
                let raw = raw_values(value)?;
                let spec =
                    build_field_spec(None, &[], &raw, placeholders).map_err(|e| e.to_string())?;
                return Ok(Selection::Keywords(spec));
            }
            let mut alternatives = Vec::with_capacity(items.len());
            for item in items {
                alternatives.push(parse_selection(item, placeholders, warnings)?);
            }
            Ok(Selection::AnyOf(alternatives))
        }
        Yaml::Null => Err("a search identifier has no value".into()),
        scalar => {
            let raw = vec![raw_value(scalar)?];
            let spec =
                build_field_spec(None, &[], &raw, placeholders).map_err(|e| e.to_string())?;
            Ok(Selection::Keywords(spec))
        }
    }
}
