//! File scanning on the server: the YARA rule directory (managed through
//! `/api/v1/yara/rules`, versioned, served to agents), the [`FileScanner`] that scans samples
//! uploaded by agents (hash lists → YARA → clamd), and the samples directory.
//!
//! ## The rule directory
//!
//! Only the top level of `scan.yara_rules_dir` is read: regular files (not symbolic links)
//! named `[A-Za-z0-9_.-]{1,100}` ending in `.yar` or `.yara`. Hidden files (`.name`) and other
//! names are ignored (`*.yar` files with names the API could not manage are reported). Each
//! file is compiled alone first: a file that does not compile is listed with yara-x's error
//! (file, line, column) and left out; the others are used. Every file is its own YARA
//! namespace `server/<name without extension>` — the same namespace agents give the rules
//! they fetch — so a rule `Evil` in `team.yar` raises alerts with the rule id
//! `dozor-scan/yara/server/team.Evil` wherever it matches.
//!
//! The **rules version** is the lower-case hex SHA-256 over the files that compiled, in name
//! order, each as `name`, a NUL byte, the file's bytes, a NUL byte (no files: the SHA-256 of
//! nothing). Agents compare it with the `yara_rules_version` of their heartbeat answer and
//! fetch `GET /api/v1/agents/yara-rules` when it differs.
//!
//! Changes through the API are written atomically (temporary file + rename) and the set is
//! recompiled and swapped in at once; files changed by other means (an administrator, another
//! server process sharing the directory) are picked up within [`RULES_POLL`].

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use dozor_scan::yara::YaraRules;
use dozor_scan::{
    ClamdAddress, ClamdClient, EngineFailure, FileReport, FileScanner, HashLists, ScanOptions,
};
use serde::Serialize;

use crate::config::ScanConfig;

/// Largest rule file accepted through the API.
pub const MAX_RULE_UPLOAD_BYTES: usize = 1 << 20;
/// Largest rule file read from the directory (files placed there by other means).
const MAX_RULE_FILE_BYTES: u64 = 16 << 20;
/// Longest rule file name.
const MAX_RULE_NAME: usize = 100;
/// How often the rule directory is checked for changes made without the API.
pub const RULES_POLL: Duration = Duration::from_secs(10);
/// Samples scanned at once; more wait their turn.
const SCAN_PERMITS: usize = 4;
/// Time limit of one YARA scan of a sample.
const YARA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the readiness check waits for clamd's `PONG`.
const CLAMD_PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The namespace prefix of the server's rules (agents use the same).
pub const NAMESPACE_PREFIX: &str = "server/";
/// Prefix of the temporary files of uploads and rule writes (hidden: never loaded).
const TMP_PREFIX: &str = ".tmp-";
/// Prefix of the temporary files of sample uploads.
pub(crate) const UPLOAD_PREFIX: &str = ".upload-";
/// Scratch files this old are left over from uploads that will never finish.
pub(crate) const SCRATCH_LEFTOVER_AGE: Duration = Duration::from_secs(24 * 3600);
/// How often samples and scratch space are swept.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Errors of setting scanning up at start.
#[derive(Debug, thiserror::Error)]
pub enum ScanSetupError {
    #[error("cannot create {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("hash list {}: {message}", path.display())]
    HashList { path: PathBuf, message: String },
}

/// Is `name` a rule file name the API manages: `[A-Za-z0-9_.-]{1,100}` ending in `.yar` or
/// `.yara` (any case), not hidden?
pub fn valid_rule_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= MAX_RULE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && (lower.ends_with(".yar") || lower.ends_with(".yara"))
        && stem(name).is_some_and(|s| !s.is_empty())
}

/// The name without its `.yar` / `.yara` extension.
fn stem(name: &str) -> Option<&str> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".yara") {
        Some(&name[..name.len() - 5])
    } else if lower.ends_with(".yar") {
        Some(&name[..name.len() - 4])
    } else {
        None
    }
}

/// Does the name end in `.yar` / `.yara` (so a bad name is worth reporting)?
fn looks_like_rule(name: &str) -> bool {
    stem(name).is_some()
}

/// The YARA namespace of a rule file.
pub fn namespace_of(name: &str) -> String {
    format!("{NAMESPACE_PREFIX}{}", stem(name).unwrap_or(name))
}

/// One file of the rule directory.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFile {
    pub name: String,
    /// Its YARA namespace (`server/<name without extension>`).
    pub namespace: String,
    pub source: Arc<str>,
    pub size: u64,
    /// Last modification, ms since the epoch.
    pub modified: i64,
    /// Rules in it (0 when it does not compile).
    pub rule_count: usize,
    /// Why it is not used (yara-x's error with line and column).
    pub error: Option<String>,
}

/// The rules in use, with the scanner built from them.
#[derive(Debug)]
pub struct RuleSet {
    pub version: String,
    /// Every rule file, by name (the ones with errors included).
    pub files: Vec<RuleFile>,
    /// Files in the directory that can't be used at all (bad names, unreadable, too large):
    /// `name: why`.
    pub problems: Vec<String>,
    /// Rules compiled into the scanner.
    pub rule_count: usize,
    scanner: Arc<FileScanner>,
    fingerprint: Vec<(String, u64, i64)>,
}

impl RuleSet {
    /// The files that compiled, by name.
    pub fn good_files(&self) -> impl Iterator<Item = &RuleFile> {
        self.files.iter().filter(|f| f.error.is_none())
    }

    pub fn file(&self, name: &str) -> Option<&RuleFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// The result of a rule change through the API.
#[derive(Debug, Clone)]
pub struct RuleChange {
    /// The file did not exist before (PUT).
    pub created: bool,
    /// Rules in the file (PUT).
    pub rule_count: usize,
    /// The rules version after the change.
    pub version: String,
    /// SHA-256 of the file's content (PUT), for the audit log.
    pub sha256: Option<String>,
}

/// Why a rule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleChangeError {
    /// The text does not compile: yara-x's error.
    #[error("{message}")]
    Invalid {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    /// Another file has the same name once the extension is dropped.
    #[error("{0}")]
    Conflict(String),
    /// No such file (DELETE).
    #[error("no YARA rule file {0}")]
    NotFound(String),
    #[error("{0}")]
    Io(String),
}

/// Scanning on the server: rules, scanner, samples directory. Shared by the handlers.
pub struct ScanService {
    config: ScanConfig,
    base: FileScanner,
    clamd_address: Option<String>,
    /// Why clamd can't be used at all (its address does not resolve).
    clamd_problem: Option<String>,
    current: RwLock<Arc<RuleSet>>,
    changes: tokio::sync::Mutex<()>,
    permits: tokio::sync::Semaphore,
    /// The disk space of the samples (scan.samples_quota).
    samples_quota: Arc<crate::disk_quota::DiskQuota>,
}

impl std::fmt::Debug for ScanService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanService")
            .field("rules_dir", &self.config.yara_rules_dir)
            .field("clamd", &self.clamd_address)
            .finish_non_exhaustive()
    }
}

fn create_dir(dir: &Path) -> Result<(), ScanSetupError> {
    let err = |source| ScanSetupError::Dir {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    Ok(())
}

fn modified_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the directory holds: rule files (name, content or why not, size, mtime), problems,
/// and the fingerprint (name, size, mtime) that tells when it changed.
struct DirListing {
    files: Vec<(String, Result<String, String>, u64, i64)>,
    problems: Vec<String>,
    fingerprint: Vec<(String, u64, i64)>,
}

fn list_dir(dir: &Path, read: bool) -> io::Result<DirListing> {
    let mut out = DirListing {
        files: Vec::new(),
        problems: Vec::new(),
        fingerprint: Vec::new(),
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !looks_like_rule(&name) {
            continue;
        }
        let meta = match entry.path().symlink_metadata() {
            Ok(m) => m,
            Err(e) => {
                out.problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        if !valid_rule_name(&name) {
            out.problems.push(format!(
                "{name}: not a rule file name the server manages ([A-Za-z0-9_.-], at most {MAX_RULE_NAME} characters, .yar or .yara)"
            ));
            continue;
        }
        if !meta.is_file() {
            out.problems.push(format!(
                "{name}: not a regular file (symbolic links are not followed)"
            ));
            continue;
        }
        let (size, modified) = (meta.len(), modified_ms(&meta));
        out.fingerprint.push((name.clone(), size, modified));
        if !read {
            continue;
        }
        let content = if size > MAX_RULE_FILE_BYTES {
            Err(format!("larger than {MAX_RULE_FILE_BYTES} bytes"))
        } else {
            read_rule(&entry.path())
        };
        out.files.push((name, content, size, modified));
    }
    out.files.sort_by(|a, b| a.0.cmp(&b.0));
    out.fingerprint.sort();
    out.problems.sort();
    Ok(out)
}

fn read_rule(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_RULE_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// The rules version of `(name, source)` pairs sorted by name.
pub fn rules_version<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, source) in files {
        ctx.update(name.as_bytes());
        ctx.update(&[0]);
        ctx.update(source.as_bytes());
        ctx.update(&[0]);
    }
    crate::digest::hex(ctx.finish().as_ref())
}

/// `--> name:LINE:COLUMN` of a yara-x error.
fn error_position(message: &str) -> (Option<u32>, Option<u32>) {
    for line in message.lines() {
        if let Some(at) = line.trim_start().strip_prefix("--> ") {
            let mut parts = at.rsplitn(3, ':');
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            return (line, column);
        }
    }
    (None, None)
}

/// Compiles what the directory holds into a rule set (blocking, CPU-bound).
fn build_rule_set(base: &FileScanner, listing: DirListing) -> RuleSet {
    let mut files = Vec::with_capacity(listing.files.len());
    let mut stems: Vec<(String, String)> = Vec::new();
    for (name, content, size, modified) in listing.files {
        let namespace = namespace_of(&name);
        let lower_stem = namespace.to_ascii_lowercase();
        let (source, mut error) = match content {
            Ok(source) => (source, None),
            Err(why) => (String::new(), Some(why)),
        };
        if let Some((_, other)) = stems.iter().find(|(s, _)| *s == lower_stem) {
            error = Some(format!(
                "{other} has the same name without its extension; rename one of them"
            ));
        } else {
            stems.push((lower_stem, name.clone()));
        }
        let mut rule_count = 0;
        if error.is_none() {
            match YaraRules::check_source(&name, &source) {
                Ok(n) => rule_count = n,
                Err(message) => error = Some(message),
            }
        }
        if let Some(e) = &error {
            tracing::warn!(file = name, "YARA rule file not used: {e}");
        }
        files.push(RuleFile {
            name,
            namespace,
            source: Arc::from(source),
            size,
            modified,
            rule_count,
            error,
        });
    }
    let sources: Vec<(String, String)> = files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| (f.namespace.clone(), f.source.to_string()))
        .collect();
    let load = YaraRules::compile_sources(&sources);
    // Not expected (each file compiled alone): a file that fails together with the others.
    for e in &load.errors {
        let namespace = e.path.to_string_lossy();
        if let Some(f) = files.iter_mut().find(|f| f.namespace == namespace) {
            tracing::warn!(file = f.name, "YARA rule file not used: {}", e.message);
            f.error = Some(e.message.clone());
            f.rule_count = 0;
        }
    }
    let version = rules_version(
        files
            .iter()
            .filter(|f| f.error.is_none())
            .map(|f| (f.name.as_str(), &*f.source)),
    );
    let rule_count = load.rules.rule_count();
    let scanner = if rule_count > 0 {
        base.clone().with_yara(load.rules)
    } else {
        base.clone()
    };
    for p in &listing.problems {
        tracing::warn!("YARA rule directory: {p}");
    }
    tracing::info!(
        files = files.iter().filter(|f| f.error.is_none()).count(),
        failed = files.iter().filter(|f| f.error.is_some()).count(),
        rules = rule_count,
        version,
        "server YARA rules loaded"
    );
    RuleSet {
        version,
        files,
        problems: listing.problems,
        rule_count,
        scanner: Arc::new(scanner),
        fingerprint: listing.fingerprint,
    }
}

impl ScanService {
    /// Creates the directories, loads the hash lists, compiles the rules (blocking: call it
    /// on a blocking thread). A rule file that does not compile is logged and left out; a
    /// clamd address that does not resolve is logged and reported with every scan.
    pub fn start(config: &ScanConfig) -> Result<ScanService, ScanSetupError> {
        create_dir(&config.yara_rules_dir)?;
        create_dir(&config.samples_dir)?;
        remove_leftovers(&config.samples_dir);
        remove_leftovers(&config.yara_rules_dir);
        let mut lists = HashLists::default();
        for (paths, list) in [
            (&config.known_bad, &mut lists.known_bad),
            (&config.known_good, &mut lists.known_good),
        ] {
            for path in paths {
                let bad_lines = list.load_into(path).map_err(|e| ScanSetupError::HashList {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                for l in bad_lines.iter().take(10) {
                    tracing::warn!("hash list line skipped: {l}");
                }
            }
        }
        let mut base = FileScanner::new(ScanOptions {
            max_file_bytes: config.max_sample_bytes,
            yara_timeout: YARA_TIMEOUT,
            skip_known_good: true,
        })
        .with_hash_lists(lists);
        let mut clamd_problem = None;
        if let Some(address) = &config.clamd {
            match address.parse::<ClamdAddress>() {
                Ok(a) => {
                    base = base.with_clamd(
                        ClamdClient::new(a)
                            .with_connect_timeout(Duration::from_secs(3))
                            .with_read_timeout(Duration::from_secs(60))
                            .with_write_timeout(Duration::from_secs(30)),
                    );
                }
                Err(e) => {
                    tracing::error!("scan.clamd: {e}; samples are scanned without ClamAV");
                    clamd_problem = Some(e.to_string());
                }
            }
        }
        let listing =
            list_dir(&config.yara_rules_dir, true).map_err(|source| ScanSetupError::Dir {
                path: config.yara_rules_dir.clone(),
                source,
            })?;
        let set = build_rule_set(&base, listing);
        Ok(ScanService {
            config: config.clone(),
            base,
            clamd_address: config.clamd.clone(),
            clamd_problem,
            current: RwLock::new(Arc::new(set)),
            changes: tokio::sync::Mutex::new(()),
            permits: tokio::sync::Semaphore::new(SCAN_PERMITS),
            samples_quota: crate::disk_quota::DiskQuota::new(
                "scan.samples_quota",
                "samples",
                &config.samples_dir,
                config.samples_quota,
            ),
        })
    }

    /// The disk space of the samples.
    pub(crate) fn samples_quota(&self) -> &Arc<crate::disk_quota::DiskQuota> {
        &self.samples_quota
    }

    /// Deletes samples past scan.samples_retention and upload leftovers older than a day.
    pub(crate) fn sweep_samples(&self) {
        let quota = &self.samples_quota;
        quota.sweep(self.config.samples_retention, |name| {
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
        });
        quota.sweep(SCRATCH_LEFTOVER_AGE, |name| name.starts_with(UPLOAD_PREFIX));
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// The rules in use.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The rules version (see the module documentation).
    pub fn version(&self) -> String {
        self.rules().version.clone()
    }

    /// Re-reads and recompiles the rule directory and swaps the new set in.
    async fn reload(&self) -> Result<Arc<RuleSet>, String> {
        let dir = self.config.yara_rules_dir.clone();
        let base = self.base.clone();
        let set = tokio::task::spawn_blocking(move || {
            list_dir(&dir, true)
                .map(|listing| build_rule_set(&base, listing))
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))
        })
        .await
        .map_err(|e| format!("rule compilation task failed: {e}"))??;
        let set = Arc::new(set);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = set.clone();
        Ok(set)
    }

    /// Reloads when the directory changed since the last load (another process or an
    /// administrator edited it). Returns whether it reloaded.
    pub async fn reload_if_changed(&self) -> bool {
        let _guard = self.changes.lock().await;
        let dir = self.config.yara_rules_dir.clone();
        let listing = tokio::task::spawn_blocking(move || list_dir(&dir, false)).await;
        let fingerprint = match listing {
            Ok(Ok(l)) => l.fingerprint,
            Ok(Err(e)) => {
                tracing::warn!("checking {}: {e}", self.config.yara_rules_dir.display());
                return false;
            }
            Err(_) => return false,
        };
        if fingerprint == self.rules().fingerprint {
            return false;
        }
        match self.reload().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("reloading the YARA rules: {e}");
                false
            }
        }
    }

    /// Checks and writes a rule file (atomically), then recompiles the set.
    pub async fn put_rule(
        &self,
        name: &str,
        source: String,
    ) -> Result<RuleChange, RuleChangeError> {
        let checked_name = name.to_owned();
        let checked = source.clone();
        let rule_count =
            tokio::task::spawn_blocking(move || YaraRules::check_source(&checked_name, &checked))
                .await
                .map_err(|e| RuleChangeError::Io(format!("rule check task failed: {e}")))?
                .map_err(|message| {
                    let (line, column) = error_position(&message);
                    RuleChangeError::Invalid {
                        message,
                        line,
                        column,
                    }
                })?;
        let _guard = self.changes.lock().await;
        let current = self.rules();
        let stem = namespace_of(name).to_ascii_lowercase();
        if let Some(other) = current
            .files
            .iter()
            .find(|f| f.name != name && f.namespace.to_ascii_lowercase() == stem)
        {
            return Err(RuleChangeError::Conflict(format!(
                "{} exists: two files may not differ only by their extension",
                other.name
            )));
        }
        let dir = self.config.yara_rules_dir.clone();
        let target = dir.join(name);
        let sha256 = crate::digest::hex(&crate::digest::sha256(source.as_bytes()));
        let created = tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &source))
            .await
            .map_err(|e| RuleChangeError::Io(format!("write task failed: {e}")))?
            .map_err(|e| RuleChangeError::Io(format!("cannot write {name}: {e}")))?;
        let set = self.reload().await.map_err(RuleChangeError::Io)?;
        Ok(RuleChange {
            created,
            rule_count,
            version: set.version.clone(),
            sha256: Some(sha256),
        })
    }

    /// Deletes a rule file, then recompiles the set.
    pub async fn delete_rule(&self, name: &str) -> Result<RuleChange, RuleChangeError> {
        let _guard = self.changes.lock().await;
        let path = self.config.yara_rules_dir.join(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RuleChangeError::NotFound(name.to_owned()));
            }
            Err(e) => return Err(RuleChangeError::Io(format!("cannot delete {name}: {e}"))),
        }
        let set = self.reload().await.map_err(RuleChangeError::Io)?;
        Ok(RuleChange {
            created: false,
            rule_count: 0,
            version: set.version.clone(),
            sha256: None,
        })
    }

    /// Writes (or, with `None`, deletes) a rule file the server generates itself (see
    /// [`crate::intel::hash_rules`]) when it differs from the file in use, then recompiles.
    /// Not bound by the upload limit. `Some(version)` when it changed the rules.
    pub async fn set_generated_rule(
        &self,
        name: &str,
        source: Option<String>,
    ) -> Result<Option<String>, RuleChangeError> {
        let _guard = self.changes.lock().await;
        let current = self.rules();
        let on_disk = self.config.yara_rules_dir.join(name);
        let in_use = current.file(name).map(|f| &*f.source);
        let same = match (&source, in_use) {
            (None, None) => !on_disk.exists(),
            (Some(new), Some(old)) => new == old,
            _ => false,
        };
        if same {
            return Ok(None);
        }
        let dir = self.config.yara_rules_dir.clone();
        let name_owned = name.to_owned();
        tokio::task::spawn_blocking(move || match source {
            Some(text) => write_atomically(&dir, &dir.join(&name_owned), &text).map(|_| ()),
            None => match std::fs::remove_file(dir.join(&name_owned)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        })
        .await
        .map_err(|e| RuleChangeError::Io(format!("write task failed: {e}")))?
        .map_err(|e| RuleChangeError::Io(format!("cannot write {name}: {e}")))?;
        let set = self.reload().await.map_err(RuleChangeError::Io)?;
        if let Some(e) = set.file(name).and_then(|f| f.error.as_deref()) {
            tracing::error!(
                file = name,
                "generated YARA rule file does not compile: {e}"
            );
        }
        Ok(Some(set.version.clone()))
    }

    /// Scans a stored file with the current scanner (waits for a permit; blocking work on a
    /// blocking thread).
    pub async fn scan_file(&self, path: PathBuf) -> Result<FileReport, String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| format!("scan permits: {e}"))?;
        let scanner = self.rules().scanner.clone();
        let mut report = tokio::task::spawn_blocking(move || scanner.scan_file(&path))
            .await
            .map_err(|e| format!("scan task failed: {e}"))?;
        if let Some(problem) = &self.clamd_problem {
            report.errors.push(EngineFailure {
                engine: dozor_scan::clamd::ENGINE,
                message: format!(
                    "clamd at {}: {problem}",
                    self.clamd_address.as_deref().unwrap_or("?")
                ),
                unavailable: true,
            });
        }
        Ok(report)
    }

    /// clamd's state for `/readyz`: `None` when none is configured, else `ok` or
    /// `degraded: why` (never a reason to be unready: scans go on without it).
    pub async fn clamd_readiness(&self) -> Option<String> {
        let address = self.clamd_address.clone()?;
        if let Some(problem) = &self.clamd_problem {
            return Some(format!("degraded: {problem}"));
        }
        let client = self.base.clamd()?.clone();
        let ping = tokio::task::spawn_blocking(move || {
            client
                .with_connect_timeout(CLAMD_PING_TIMEOUT)
                .with_read_timeout(CLAMD_PING_TIMEOUT)
                .ping()
        });
        Some(
            match tokio::time::timeout(CLAMD_PING_TIMEOUT + Duration::from_millis(500), ping).await
            {
                Ok(Ok(Ok(()))) => "ok".to_owned(),
                Ok(Ok(Err(e))) => format!("degraded: {e}"),
                Ok(Err(e)) => format!("degraded: clamd check failed: {e}"),
                Err(_) => format!("degraded: clamd at {address} did not answer PING in time"),
            },
        )
    }

    /// The engines a sample scan runs now.
    pub fn engines(&self) -> Vec<&'static str> {
        self.rules().scanner.engines()
    }
}

/// Writes `content` to `target` through a hidden temporary file in `dir` and a rename, so a
/// reader never sees half a file. Returns whether `target` is new.
fn write_atomically(dir: &Path, target: &Path, content: &str) -> io::Result<bool> {
    let existed = target.exists();
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(content.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(!existed)
}

/// Temporary files a crash left behind.
fn remove_leftovers(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if (name.starts_with(TMP_PREFIX) || name.starts_with(UPLOAD_PREFIX))
                && name.ends_with(".tmp")
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Sweeps the samples at start and every [`SWEEP_EVERY`] until `closing` turns true or the
/// service is gone. (EVTX scratch files live only as long as their request; leftovers of a
/// crash are deleted at start.)
pub(crate) async fn sweep_samples(
    service: std::sync::Weak<ScanService>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let Some(service) = service.upgrade() else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || service.sweep_samples()).await;
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = closing.changed() => return,
        }
        if *closing.borrow() {
            return;
        }
    }
}

/// Checks the rule directory every [`RULES_POLL`] until `closing` turns true or the service
/// is gone.
pub(crate) async fn watch_rules(
    service: std::sync::Weak<ScanService>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RULES_POLL) => {}
            _ = closing.changed() => return,
        }
        if *closing.borrow() {
            return;
        }
        let Some(service) = service.upgrade() else {
            return;
        };
        if service.reload_if_changed().await {
            tracing::info!("YARA rule directory changed: rules reloaded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a.yar", "Team_Rules-1.YARA", "x.y.yar"] {
            assert!(valid_rule_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".yar",
            ".hidden.yar",
            "a.txt",
            "a/b.yar",
            "..\\x.yar",
            "a b.yar",
            "ä.yar",
            &format!("{}.yar", "a".repeat(97)),
        ] {
            assert!(!valid_rule_name(bad), "{bad}");
        }
        assert_eq!(namespace_of("team.yar"), "server/team");
        assert_eq!(namespace_of("Team.YARA"), "server/Team");
    }

    #[test]
    fn version_and_error_position() {
        let empty = rules_version(std::iter::empty());
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let a = rules_version([("a.yar", "x"), ("b.yar", "y")].into_iter());
        let b = rules_version([("a.yar", "xb"), (".yar", "y")].into_iter());
        assert_ne!(a, b, "name and content boundaries count");
        let msg = "error[E009]: unknown identifier `foo`\n --> team.yar:4:17\n  |";
        assert_eq!(error_position(msg), (Some(4), Some(17)));
        assert_eq!(error_position("no position"), (None, None));
    }

    #[test]
    fn rule_set_keeps_good_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.yar"),
            "rule Good { strings: $a = \"dozor-good\" condition: $a }",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bad.yar"),
            "rule Bad {\n  condition: foo\n}",
        )
        .unwrap();
        std::fs::write(dir.path().join("good.yara"), "rule Dup { condition: true }").unwrap();
        std::fs::write(
            dir.path().join("bad name.yar"),
            "rule X { condition: true }",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a rule").unwrap();
        let set = build_rule_set(&FileScanner::default(), list_dir(dir.path(), true).unwrap());
        let names: Vec<(&str, bool)> = set
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.error.is_none()))
            .collect();
        assert_eq!(
            names,
            [("bad.yar", false), ("good.yar", true), ("good.yara", false)]
        );
        assert!(
            set.files[0]
                .error
                .as_deref()
                .unwrap()
                .contains("bad.yar:2:"),
            "{:?}",
            set.files[0].error
        );
        assert!(
            set.files[2]
                .error
                .as_deref()
                .unwrap()
                .contains("good.yar has the same name")
        );
        assert_eq!(set.rule_count, 1);
        assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
        assert_eq!(
            set.version,
            rules_version([("good.yar", &*set.files[1].source)].into_iter())
        );
        let sample = dir.path().join("sample.bin");
        std::fs::write(&sample, b"xx dozor-good xx").unwrap();
        let report = set.scanner.scan_file(&sample);
        assert_eq!(report.findings.len(), 1, "{report:?}");
        assert_eq!(
            report.findings[0].rule_id(),
            "dozor-scan/yara/server/good.Good"
        );
    }
}
