//! The Sigma rules a server process runs: loaded from `rules_dirs`, listed and reloaded
//! through the API ([`RuleCatalog`]), compiled once per load and swapped into every worker's
//! detector on reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use dozor_sigma::{
    Detector, DetectorOptions, EngineOptions, LoadOptions, Outcome, RuleMeta, RuleSet,
};

use crate::sink::BoxFuture;
use crate::state::{ReloadReport, RuleCatalog, RuleInfo};

/// Loads and compiles the rules under `dirs` (none: an empty detector — the server then
/// stores events and raises only its own alerts, such as agents going offline). Returns the
/// detector and what became of every document, with the metadata (level, status, tags,
/// logsource) of every document that parsed as a rule.
pub fn load_detector(dirs: &[PathBuf]) -> (Detector, Vec<RuleInfo>) {
    let set = RuleSet::load_paths(dirs, &LoadOptions::default());
    // The detector consumes the parsed rules; their metadata is kept for the catalog.
    let metas: HashMap<(PathBuf, String, String), RuleMeta> = set
        .rules
        .iter()
        .map(|r| {
            (
                (r.meta.path.clone(), r.meta.id.clone(), r.meta.title.clone()),
                r.meta.clone(),
            )
        })
        .collect();
    let options = EngineOptions {
        prefilter_dfa: true,
        ..EngineOptions::default()
    };
    let (detector, reports) = Detector::build(set, &options, &DetectorOptions::default());
    let bad = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Invalid(_) | Outcome::Unsupported(_)))
        .count();
    tracing::info!(
        rules = detector.engine().rules().len(),
        problems = bad,
        "rules loaded from {dirs:?}"
    );
    if bad > 0 {
        tracing::warn!("{bad} rule documents could not be used (`dozor rules lint` lists them)");
    }
    let infos = reports
        .iter()
        .map(|report| {
            let key = (report.path.clone(), report.id.clone(), report.title.clone());
            match metas.get(&key) {
                Some(meta) => RuleInfo::from_meta(meta, report.kind, &report.outcome),
                None => RuleInfo::from_report(report),
            }
        })
        .collect();
    (detector, infos)
}

/// The message a server with no rule directories gives at start and on reload.
pub const NO_RULES_WARNING: &str = "no Sigma rules configured (rules_dirs / DOZOR_RULES_DIRS is empty): events are stored and searchable, but nothing is detected except the server's own alerts (agents going offline, scan findings)";

/// The rules loaded from directories; reloading swaps every worker's detector.
pub struct DirCatalog {
    dirs: Vec<PathBuf>,
    rules: RwLock<Vec<RuleInfo>>,
    detectors: Vec<Arc<Mutex<Detector>>>,
}

impl DirCatalog {
    /// A catalog over `dirs` whose rules (`rules`, from [`load_detector`]) were loaded into
    /// `detectors` (the workers' detectors; none in a process without workers).
    pub fn new(
        dirs: Vec<PathBuf>,
        rules: Vec<RuleInfo>,
        detectors: Vec<Arc<Mutex<Detector>>>,
    ) -> DirCatalog {
        DirCatalog {
            dirs,
            rules: RwLock::new(rules),
            detectors,
        }
    }

    /// Whether no rule directory is configured.
    pub fn is_unconfigured(&self) -> bool {
        self.dirs.is_empty()
    }
}

impl RuleCatalog for DirCatalog {
    fn list(&self) -> Vec<RuleInfo> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn yaml(&self, id: &str) -> Option<String> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        let rule = rules.iter().find(|r| r.id == id)?;
        // Documents of multi-document files are named `file.yml#N`.
        let file = rule.path.split('#').next().unwrap_or(&rule.path);
        std::fs::read_to_string(file).ok()
    }

    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, String>> {
        Box::pin(async move {
            if self.is_unconfigured() {
                tracing::warn!("{NO_RULES_WARNING}");
            }
            let dirs = self.dirs.clone();
            let (compiled, rules) = tokio::task::spawn_blocking(move || load_detector(&dirs))
                .await
                .map_err(|e| e.to_string())?;
            // One compilation for all workers; each slot gets its own detector over it. The
            // old rules are freed once the last worker lets go of its detector.
            for slot in &self.detectors {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = compiled.another();
            }
            let summary = ReloadReport::from_rules(&rules);
            *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
            Ok(summary)
        })
    }

    fn test(&self, rule_yaml: &str, events: Vec<serde_json::Value>) -> Result<Vec<usize>, String> {
        let mut set = RuleSet::default();
        set.add_text(
            Path::new("<rule under test>"),
            rule_yaml,
            &LoadOptions::default(),
        );
        if let Some(bad) = set.invalid.first() {
            return Err(format!("{:?}", bad.outcome));
        }
        let (detector, reports) =
            Detector::build(set, &EngineOptions::default(), &DetectorOptions::default());
        if let Some(r) = reports.iter().find(|r| r.outcome != Outcome::Active) {
            return Err(format!("{:?}", r.outcome));
        }
        let engine = detector.engine();
        let mut scratch = engine.new_scratch();
        let mut hits = Vec::new();
        let mut matched = Vec::new();
        for (i, doc) in events.iter().enumerate() {
            hits.clear();
            engine.matches(&dozor_event::detection_view(doc), &mut scratch, &mut hits);
            if !hits.is_empty() {
                matched.push(i);
            }
        }
        Ok(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_directories_is_an_empty_catalog_not_a_fallback() {
        let (detector, reports) = load_detector(&[]);
        assert!(reports.is_empty());
        assert_eq!(detector.engine().rules().len(), 0);
        let catalog = DirCatalog::new(Vec::new(), reports, Vec::new());
        assert!(catalog.is_unconfigured());
        assert!(catalog.list().is_empty());
    }

    #[test]
    fn rules_come_from_the_configured_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.yml"),
            "title: t\nid: 5e8d3c1a-0000-4000-8000-000000000001\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: /nc\n  condition: sel\nlevel: high\n",
        )
        .unwrap();
        let dirs = vec![dir.path().to_owned()];
        let (_, reports) = load_detector(&dirs);
        let catalog = DirCatalog::new(dirs, reports, Vec::new());
        assert!(!catalog.is_unconfigured());
        let list = catalog.list();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].id, "5e8d3c1a-0000-4000-8000-000000000001");
        assert!(
            catalog
                .yaml(&list[0].id)
                .unwrap()
                .contains("Image|endswith")
        );
    }

    /// Workers got a compilation each, at start and on every reload: with the SigmaHQ set
    /// that multiplied the server's largest piece of memory by the number of workers.
    #[tokio::test]
    async fn a_reload_compiles_once_and_every_worker_runs_the_new_rules() {
        let dir = tempfile::tempdir().unwrap();
        let rule = |id: u32| {
            format!(
                "title: r{id}\nid: 5e8d3c1a-0000-4000-8000-00000000010{id}\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: /nc{id}\n  condition: sel\nlevel: high\n"
            )
        };
        std::fs::write(dir.path().join("a.yml"), rule(1)).unwrap();
        let dirs = vec![dir.path().to_owned()];
        let (compiled, reports) = load_detector(&dirs);
        let workers: Vec<_> = (0..3)
            .map(|_| Arc::new(Mutex::new(compiled.another())))
            .collect();
        let catalog = DirCatalog::new(dirs, reports, workers.clone());

        std::fs::write(dir.path().join("b.yml"), rule(2)).unwrap();
        let report = catalog.reload().await.unwrap();
        assert_eq!(report.documents, 2, "{report:?}");
        let first = workers[0].lock().unwrap();
        assert!(
            !first.shares_rules_with(&compiled),
            "the old rules are gone"
        );
        assert_eq!(first.engine().rules().len(), 2);
        for other in &workers[1..] {
            assert!(other.lock().unwrap().shares_rules_with(&first));
        }
    }

    /// The rules page showed "—" and "Not set" for every rule, and no tag search worked,
    /// because the catalog was built from load reports alone.
    #[test]
    fn the_catalog_carries_each_rules_metadata_and_keeps_invalid_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yml"),
            "title: Dump LSASS\nid: 5e8d3c1a-0000-4000-8000-000000000002\nstatus: test\nauthor: someone\ntags:\n  - attack.credential-access\n  - attack.t1003.001\nlogsource:\n  product: windows\n  category: process_access\ndetection:\n  sel:\n    TargetImage|endswith: '\\lsass.exe'\n  condition: sel\nlevel: critical\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "title: [not a rule\n").unwrap();
        let dirs = vec![dir.path().to_owned()];
        let (_, rules) = load_detector(&dirs);
        let catalog = DirCatalog::new(dirs, rules, Vec::new());
        let list = catalog.list();
        assert_eq!(list.len(), 2, "{list:?}");
        let rule = list
            .iter()
            .find(|r| r.id == "5e8d3c1a-0000-4000-8000-000000000002")
            .unwrap();
        assert_eq!(rule.level.as_deref(), Some("critical"));
        assert_eq!(rule.status.as_deref(), Some("test"));
        assert_eq!(rule.author, "someone");
        assert_eq!(rule.tags, ["attack.credential-access", "attack.t1003.001"]);
        assert_eq!(rule.logsource.product.as_deref(), Some("windows"));
        assert_eq!(rule.logsource.category.as_deref(), Some("process_access"));
        let broken = list.iter().find(|r| r.outcome == "invalid").unwrap();
        assert!(broken.path.ends_with("b.yml"), "{broken:?}");
        assert_eq!(broken.level, None);
        let summary = ReloadReport::from_rules(&list);
        assert_eq!((summary.documents, summary.invalid), (2, 1));
        assert_eq!(summary.problems.len(), 1, "{summary:?}");
    }
}
