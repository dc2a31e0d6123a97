//! Logsource routing and field mappings, loaded from a YAML mapping file.
//!
//! ```yaml
//! sources:
//!   - name: sysmon_process_creation
//!     logsource: { product: windows, category: process_creation }
//!     conditions: { Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1 }
//!   - name: security_process_creation
//!     logsource: { product: windows, category: process_creation }
//!     conditions: { Channel: Security, EventID: 4688 }
//!     fieldmappings: { Image: NewProcessName, ParentImage: ParentProcessName }
//! ```
//!
//! A rule is routed to the entries whose `logsource` keys all equal the rule's and that name
//! the most keys; each such entry is a *variant*: the rule runs on events that meet the entry's
//! `conditions` (Sigma field expressions), with the entry's field names substituted. A rule
//! whose logsource matches no entry is *unrouted*.

use std::path::Path;

use yaml_serde::Value as Yaml;

use crate::rule::{LogSource, Selection};
use crate::value::Placeholders;

/// The default mapping shipped with Dozor: Windows channels and event ids (Sysmon, Security,
/// System, PowerShell, Defender, ...) and Dozor agent events (ECS field names).
pub const DEFAULT_MAPPING: &str = include_str!("../mappings/default.yml");

#[derive(Debug, Clone)]
pub struct SourceEntry {
    pub name: String,
    /// Keys this entry matches on (only the ones it names).
    pub logsource: LogSource,
    /// Sigma field expressions an event must meet (AND).
    pub conditions: Option<Selection>,
    /// Plain `Channel` values of the conditions, lower-cased, for fast dispatch.
    pub channels: Vec<String>,
    /// Rule field name → event field names (several are OR-ed).
    pub fieldmappings: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Default)]
pub struct LogsourceMapping {
    pub sources: Vec<SourceEntry>,
    /// Applied to every rule after the entry's own mappings.
    pub fieldmappings: Vec<(String, Vec<String>)>,
}

/// How a rule's logsource is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Indices into `LogsourceMapping::sources`; `partial` when the chosen entries do not
    /// cover every key of the rule's logsource.
    Routed {
        entries: Vec<usize>,
        partial: bool,
    },
    Unrouted,
}

impl LogsourceMapping {
    pub fn builtin() -> Self {
        // The embedded file is tested; failing here would be a build defect.
        Self::parse(DEFAULT_MAPPING, Path::new("<builtin mapping>")).unwrap_or_default()
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Adds another mapping's entries (used for user mapping files on top of the default).
    pub fn extend(&mut self, other: LogsourceMapping) {
        self.sources.extend(other.sources);
        self.fieldmappings.extend(other.fieldmappings);
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Self, String> {
        let doc: Yaml =
            yaml_serde::from_str(text).map_err(|e| format!("{}: {e}", origin.display()))?;
        let mut mapping = LogsourceMapping::default();
        if let Some(fm) = doc.get("fieldmappings") {
            mapping.fieldmappings = parse_fieldmappings(fm)
                .map_err(|e| format!("{}: fieldmappings: {e}", origin.display()))?;
        }
        let Some(Yaml::Sequence(sources)) = doc.get("sources") else {
            return Err(format!("{}: expected a 'sources' list", origin.display()));
        };
        for (i, entry) in sources.iter().enumerate() {
            let at = |e: String| format!("{}: sources[{i}]: {e}", origin.display());
            let ls = entry
                .get("logsource")
                .ok_or_else(|| at("missing 'logsource'".into()))?;
            let key = |k: &str| crate::rule::yaml_str(ls, k).map(|v| v.trim().to_lowercase());
            let logsource = LogSource {
                product: key("product"),
                category: key("category"),
                service: key("service"),
            };
            if logsource == LogSource::default() {
                return Err(at(
                    "'logsource' names no product, category or service".into()
                ));
            }
            let mut channels = Vec::new();
            let conditions = match entry.get("conditions") {
                Some(c @ Yaml::Mapping(map)) => {
                    for (k, v) in map {
                        if k.as_str() == Some("Channel") {
                            match v {
                                Yaml::String(s) => channels.push(s.to_lowercase()),
                                Yaml::Sequence(items) => channels.extend(
                                    items
                                        .iter()
                                        .filter_map(|i| i.as_str())
                                        .map(str::to_lowercase),
                                ),
                                _ => {}
                            }
                        }
                    }
                    let mut warnings = Vec::new();
                    let sel = crate::rule::parse_selection(c, &Placeholders::new(), &mut warnings)
                        .map_err(|e| at(format!("conditions: {e}")))?;
                    Some(sel)
                }
                Some(_) => return Err(at("'conditions' must be a map".into())),
                None => None,
            };
            let fieldmappings = match entry.get("fieldmappings") {
                Some(fm) => {
                    parse_fieldmappings(fm).map_err(|e| at(format!("fieldmappings: {e}")))?
                }
                None => Vec::new(),
            };
            let name = crate::rule::yaml_str(entry, "name").unwrap_or_else(|| format!("source{i}"));
            mapping.sources.push(SourceEntry {
                name,
                logsource,
                conditions,
                channels,
                fieldmappings,
            });
        }
        Ok(mapping)
    }

    /// Chooses the entries a rule with this logsource runs under.
    pub fn route(&self, ls: &LogSource) -> Routing {
        let rule_keys = [&ls.product, &ls.category, &ls.service]
            .iter()
            .filter(|k| k.is_some())
            .count();
        let mut best = 0;
        let mut entries = Vec::new();
        for (i, entry) in self.sources.iter().enumerate() {
            let mut keys = 0;
            let mut ok = true;
            for k in ["product", "category", "service"] {
                if let Some(want) = entry.logsource.get(k) {
                    keys += 1;
                    if ls.get(k) != Some(want) {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            if keys > best {
                best = keys;
                entries.clear();
            }
            if keys == best {
                entries.push(i);
            }
        }
        if entries.is_empty() {
            Routing::Unrouted
        } else {
            Routing::Routed {
                entries,
                partial: best < rule_keys,
            }
        }
    }
}

fn parse_fieldmappings(v: &Yaml) -> Result<Vec<(String, Vec<String>)>, String> {
    let Yaml::Mapping(map) = v else {
        return Err("must be a map".into());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let from = k.as_str().ok_or("keys must be strings")?.to_owned();
        let to = match v {
            Yaml::String(s) => vec![s.clone()],
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or("targets must be strings")
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(format!("'{from}': target must be a string or a list")),
        };
        out.push((from, to));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource {
            product: p.map(Into::into),
            category: c.map(Into::into),
            service: s.map(Into::into),
        }
    }

    #[test]
    fn builtin_mapping_parses_and_routes_process_creation_to_sysmon_and_security() {
        let m = LogsourceMapping::parse(DEFAULT_MAPPING, Path::new("default.yml")).unwrap();
        let Routing::Routed { entries, partial } =
            m.route(&ls(Some("windows"), Some("process_creation"), None))
        else {
            panic!("process_creation must be routed")
        };
        assert!(!partial);
        let names: Vec<_> = entries
            .iter()
            .map(|&i| m.sources[i].name.as_str())
            .collect();
        assert!(names.iter().any(|n| n.contains("sysmon")), "{names:?}");
        assert!(names.iter().any(|n| n.contains("security")), "{names:?}");
        assert_eq!(
            m.route(&ls(Some("aws"), None, Some("cloudtrail"))),
            Routing::Unrouted
        );
        let Routing::Routed { partial, .. } =
            m.route(&ls(Some("windows"), Some("no_such_category"), None))
        else {
            panic!("product-level fallback expected")
        };
        assert!(partial);
    }
}
