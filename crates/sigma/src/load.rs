//! Reading rule files: directories, multi-document YAML, Sigma 1.0 `action: global` collections.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use yaml_serde::Value as Yaml;

use crate::engine::{Outcome, RuleReport};
use crate::rule::{
    ParsedFilter, ParsedRule, RuleKind, parse_detection_rule, parse_filter, yaml_str,
};
use crate::value::Placeholders;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Values for `expand` placeholders, by name without `%`.
    pub placeholders: Placeholders,
}

impl LoadOptions {
    /// Reads placeholders from a YAML map of name → list of values.
    pub fn load_placeholders(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let map: std::collections::HashMap<String, Vec<String>> =
            yaml_serde::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (k, v) in map {
            self.placeholders.insert(k.trim_matches('%').to_owned(), v);
        }
        Ok(())
    }
}

/// A correlation document kept for the correlation engine.
#[derive(Debug, Clone)]
pub struct CorrelationDoc {
    pub path: PathBuf,
    pub doc: Yaml,
}

/// Everything read from rule files, valid or not.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<ParsedRule>,
    pub filters: Vec<ParsedFilter>,
    pub correlations: Vec<CorrelationDoc>,
    /// Documents that could not be read or parsed, with the reason.
    pub invalid: Vec<RuleReport>,
    pub files: usize,
}

fn is_rule_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    )
}

impl RuleSet {
    /// Loads every `.yml`/`.yaml` file under the given files and directories (recursively,
    /// in a stable order). Problems are recorded in `invalid`; loading never stops early.
    pub fn load_paths(paths: &[PathBuf], options: &LoadOptions) -> RuleSet {
        let mut set = RuleSet::default();
        for root in paths {
            if root.is_file() {
                set.load_file(root, options);
                continue;
            }
            if !root.exists() {
                set.invalid.push(invalid(
                    root,
                    None,
                    None,
                    RuleKind::Detection,
                    "no such file or directory".into(),
                ));
                continue;
            }
            let walker = walkdir::WalkDir::new(root)
                .follow_links(true)
                .sort_by_file_name();
            for entry in walker {
                match entry {
                    Ok(e) if e.file_type().is_file() && is_rule_file(e.path()) => {
                        set.load_file(e.path(), options)
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let path = err
                            .path()
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|| root.clone());
                        set.invalid.push(invalid(
                            &path,
                            None,
                            None,
                            RuleKind::Detection,
                            err.to_string(),
                        ));
                    }
                }
            }
        }
        set
    }

    pub fn load_file(&mut self, path: &Path, options: &LoadOptions) {
        self.files += 1;
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_text(path, &text, options),
            Err(e) => self.invalid.push(invalid(
                path,
                None,
                None,
                RuleKind::Detection,
                format!("cannot read: {e}"),
            )),
        }
    }

    /// Parses one file's text, which may hold several YAML documents.
    pub fn add_text(&mut self, path: &Path, text: &str, options: &LoadOptions) {
        let mut global: Option<Yaml> = None;
        for (n, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let where_ = if n == 0 {
                path.to_path_buf()
            } else {
                PathBuf::from(format!("{}#{}", path.display(), n + 1))
            };
            let doc = match Yaml::deserialize(document) {
                Ok(Yaml::Null) => continue,
                Ok(doc) => doc,
                Err(e) => {
                    self.invalid.push(invalid(
                        &where_,
                        None,
                        None,
                        RuleKind::Detection,
                        format!("YAML: {e}"),
                    ));
                    // The YAML stream cannot be resynchronised after a syntax error.
                    break;
                }
            };
            if !matches!(doc, Yaml::Mapping(_)) {
                self.invalid.push(invalid(
                    &where_,
                    None,
                    None,
                    RuleKind::Detection,
                    "a rule must be a YAML map".into(),
                ));
                continue;
            }
            match yaml_str(&doc, "action").as_deref() {
                Some("global") => {
                    let mut g = doc;
                    if let Yaml::Mapping(m) = &mut g {
                        m.remove("action");
                    }
                    global = Some(g);
                    continue;
                }
                Some("reset") => {
                    global = None;
                    continue;
                }
                Some("repeat") => {
                    // Repeats the previous document with changes; rare and deprecated.
                    self.invalid.push(invalid(
                        &where_,
                        yaml_str(&doc, "id"),
                        yaml_str(&doc, "title"),
                        RuleKind::Detection,
                        "unsupported: Sigma 1.0 'action: repeat' collections".into(),
                    ));
                    continue;
                }
                _ => {}
            }
            let doc = match &global {
                Some(g) => merge(g.clone(), doc),
                None => doc,
            };
            self.add_document(where_, doc, options);
        }
    }

    fn add_document(&mut self, path: PathBuf, doc: Yaml, options: &LoadOptions) {
        let id = yaml_str(&doc, "id");
        let title = yaml_str(&doc, "title");
        if doc.get("correlation").is_some() {
            self.correlations.push(CorrelationDoc { path, doc });
        } else if doc.get("filter").is_some() && doc.get("detection").is_none() {
            match parse_filter(&doc, path.clone(), &options.placeholders) {
                Ok(f) => self.filters.push(f),
                Err(e) => self
                    .invalid
                    .push(invalid(&path, id, title, RuleKind::Filter, e)),
            }
        } else {
            match parse_detection_rule(&doc, path.clone(), &options.placeholders) {
                Ok(r) => self.rules.push(r),
                Err(e) => self
                    .invalid
                    .push(invalid(&path, id, title, RuleKind::Detection, e)),
            }
        }
    }
}

fn invalid(
    path: &Path,
    id: Option<String>,
    title: Option<String>,
    kind: RuleKind,
    reason: String,
) -> RuleReport {
    RuleReport {
        path: path.to_path_buf(),
        id: id.unwrap_or_default(),
        title: title.unwrap_or_default(),
        kind,
        outcome: Outcome::Invalid(reason),
        notes: Vec::new(),
    }
}

/// Deep-merges `doc` over `base` (maps merge, everything else is replaced).
fn merge(base: Yaml, doc: Yaml) -> Yaml {
    match (base, doc) {
        (Yaml::Mapping(mut b), Yaml::Mapping(d)) => {
            for (k, v) in d {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Yaml::Mapping(b)
        }
        (_, d) => d,
    }
}
