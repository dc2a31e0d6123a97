//! One file through every configured engine: hash lists first (a known-good file stops there),
//! then YARA (feature `yara`), then clamd. Each engine's failure is kept in the report next to
//! the others' findings; nothing here panics or blocks on odd files (FIFOs, devices and files
//! over the size limit are refused before anything is read).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::{EngineFailure, FileReport, Finding, HASHLIST_ENGINE};
use crate::{ClamdClient, DigestSet, Digests, HashError, HashLists};

/// Limits and choices of a [`FileScanner`].
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Files larger than this are not scanned (reported as skipped).
    pub max_file_bytes: u64,
    /// Time limit of one YARA scan.
    pub yara_timeout: Duration,
    /// A file on the known-good list is not given to YARA or clamd.
    pub skip_known_good: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_bytes: 64 << 20,
            yara_timeout: Duration::from_secs(30),
            skip_known_good: true,
        }
    }
}

/// The configured engines. Cheap to share between threads (`&FileScanner` is `Sync`).
#[derive(Debug, Clone, Default)]
pub struct FileScanner {
    hashes: HashLists,
    #[cfg(feature = "yara")]
    yara: Option<crate::yara::YaraRules>,
    clamd: Option<ClamdClient>,
    options: ScanOptions,
}

impl FileScanner {
    pub fn new(options: ScanOptions) -> Self {
        FileScanner {
            options,
            ..FileScanner::default()
        }
    }

    pub fn with_hash_lists(mut self, lists: HashLists) -> Self {
        self.hashes = lists;
        self
    }

    #[cfg(feature = "yara")]
    pub fn with_yara(mut self, rules: crate::yara::YaraRules) -> Self {
        self.yara = Some(rules);
        self
    }

    pub fn with_clamd(mut self, client: ClamdClient) -> Self {
        self.clamd = Some(client);
        self
    }

    pub fn options(&self) -> &ScanOptions {
        &self.options
    }

    pub fn clamd(&self) -> Option<&ClamdClient> {
        self.clamd.as_ref()
    }

    /// The YARA rules in use.
    #[cfg(feature = "yara")]
    pub fn yara(&self) -> Option<&crate::yara::YaraRules> {
        self.yara.as_ref()
    }

    /// Whether a scan can find anything: a known-bad hash list with entries, YARA rules or
    /// clamd. Without one a scan only computes hashes, and a clean result means nothing.
    pub fn can_detect(&self) -> bool {
        #[cfg(feature = "yara")]
        if self.yara.is_some() {
            return true;
        }
        self.clamd.is_some() || !self.hashes.known_bad.is_empty()
    }

    /// The engines a scan runs, in order.
    pub fn engines(&self) -> Vec<&'static str> {
        let mut out = vec![HASHLIST_ENGINE];
        #[cfg(feature = "yara")]
        if self.yara.is_some() {
            out.push(crate::yara::ENGINE);
        }
        if self.clamd.is_some() {
            out.push(crate::clamd::ENGINE);
        }
        out
    }

    /// Scans one file with every engine.
    pub fn scan_file(&self, path: &Path) -> FileReport {
        let started = Instant::now();
        let mut report = FileReport {
            path: path.to_owned(),
            hashes: None,
            findings: Vec::new(),
            errors: Vec::new(),
            skipped: None,
            engines: Vec::new(),
            duration: Duration::ZERO,
        };
        // Every digest is computed for traceability, not only those the lists need.
        match Digests::of_file(path, self.options.max_file_bytes, DigestSet::ALL) {
            Ok(digests) => {
                let verdict = self.hashes.classify(&digests);
                report.engines.push(HASHLIST_ENGINE);
                if let Some(hit) = &verdict.known_bad {
                    report.findings.push(Finding::known_bad(hit));
                }
                let known_good = verdict.known_good && verdict.known_bad.is_none();
                report.hashes = Some(verdict);
                if known_good && self.options.skip_known_good {
                    report.skipped = Some("on the known-good list".to_owned());
                    report.duration = started.elapsed();
                    return report;
                }
            }
            Err(e) => {
                report.skipped = Some(match &e {
                    HashError::TooLarge { max_bytes, .. } => {
                        format!("larger than the scan limit of {max_bytes} bytes")
                    }
                    other => other.to_string(),
                });
                report.duration = started.elapsed();
                return report;
            }
        }
        self.run_yara(path, &mut report);
        if let Some(client) = &self.clamd {
            report.engines.push(crate::clamd::ENGINE);
            match client.scan_file(path, self.options.max_file_bytes) {
                Ok(verdict) => report.findings.extend(Finding::clamav(&verdict)),
                Err(e) => report.errors.push(EngineFailure {
                    engine: crate::clamd::ENGINE,
                    unavailable: e.is_unavailable(),
                    message: e.to_string(),
                }),
            }
        }
        report.duration = started.elapsed();
        report
    }

    #[cfg(feature = "yara")]
    fn run_yara(&self, path: &Path, report: &mut FileReport) {
        let Some(rules) = &self.yara else { return };
        report.engines.push(crate::yara::ENGINE);
        let limits = crate::yara::YaraLimits {
            max_file_bytes: self.options.max_file_bytes,
            timeout: self.options.yara_timeout,
        };
        match rules.scan_file(path, limits) {
            Ok(matches) => report.findings.extend(
                matches
                    .iter()
                    .map(|m| Finding::yara(&m.rule, &m.namespace, &m.tags, &m.meta)),
            ),
            Err(e) => report.errors.push(EngineFailure {
                engine: crate::yara::ENGINE,
                unavailable: false,
                message: e.to_string(),
            }),
        }
    }

    #[cfg(not(feature = "yara"))]
    fn run_yara(&self, _path: &Path, _report: &mut FileReport) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HashList;

    #[test]
    fn known_bad_known_good_too_large_and_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b"pretend malware").unwrap();
        let good = dir.path().join("good.bin");
        std::fs::write(&good, b"vendor tool").unwrap();
        let bad_sha =
            crate::Digests::of_bytes(b"pretend malware", DigestSet::SHA256_ONLY).sha256_hex();
        let good_sha =
            crate::Digests::of_bytes(b"vendor tool", DigestSet::SHA256_ONLY).sha256_hex();
        let (known_bad, errs) = HashList::parse_str("bad.txt", &format!("{bad_sha} dropper\n"));
        assert!(errs.is_empty());
        let (known_good, _) = HashList::parse_str("good.txt", &format!("{good_sha}\n"));
        let scanner = FileScanner::new(ScanOptions {
            max_file_bytes: 100,
            ..ScanOptions::default()
        })
        .with_hash_lists(HashLists::new(known_bad, known_good));

        let r = scanner.scan_file(&bad);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].name, "dropper");
        let h = r.hashes.as_ref().unwrap();
        assert!(
            h.sha1.is_some() && h.md5.is_some(),
            "all digests for traceability"
        );

        let r = scanner.scan_file(&good);
        assert!(r.findings.is_empty());
        assert_eq!(r.skipped.as_deref(), Some("on the known-good list"));

        let big = dir.path().join("big.bin");
        std::fs::write(&big, vec![0u8; 101]).unwrap();
        let r = scanner.scan_file(&big);
        assert!(r.skipped.unwrap().contains("100 bytes"));

        let r = scanner.scan_file(&dir.path().join("missing"));
        assert!(r.skipped.is_some() && r.hashes.is_none());
    }

    #[test]
    fn clamd_down_is_an_engine_failure_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"data").unwrap();
        let address: crate::ClamdAddress = format!("unix:{}", dir.path().join("no.sock").display())
            .parse()
            .unwrap();
        let scanner = FileScanner::default().with_clamd(ClamdClient::new(address));
        let r = scanner.scan_file(&f);
        assert!(r.findings.is_empty());
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].unavailable, "{:?}", r.errors);
        assert!(
            r.errors[0].message.contains("cannot connect"),
            "{}",
            r.errors[0].message
        );
    }
}
