//! YARA rules through [yara-x](https://virustotal.github.io/yara-x/) (cargo feature `yara`).
//!
//! - [`YaraRules::compile_dir`] compiles every `*.yar` / `*.yara` file under a directory, each
//!   file in its own namespace (its path relative to the directory, without the extension, with
//!   `/` separators). A file that does not compile is reported ([`RuleFileError`], with yara-x's
//!   message including `file:line:column`) and skipped; the other files are kept.
//! - [`YaraRules::compile_sources`] does the same for in-memory `(name, source)` pairs and
//!   [`YaraRules::check_source`] validates one text (an upload through the API).
//! - [`YaraScanner`] scans files or buffers with one reused yara-x scanner (one per thread),
//!   [`YaraRules::scan_file`] / [`YaraRules::scan_bytes`] are one-off helpers.
//!
//! Limits ([`YaraLimits`]): files over `max_file_bytes` are refused before a byte is read, and
//! non-regular files (FIFOs, devices, sockets, directories) are refused without blocking. Files
//! are read into a reused buffer, never memory-mapped: a mapped file that another process
//! truncates would kill the process with `SIGBUS`. Each scan runs under yara-x's timeout, which
//! counts whole seconds on a shared one-second heartbeat: a limit of N seconds (sub-second
//! parts rounded up, at least 1 s) stops a scan after N to N+1 seconds.
//!
//! `include` statements are disabled: a rule text cannot pull in other files (an uploaded rule
//! could otherwise read any file the agent can and show parts of it in an error message).
//!
//! yara-x is fuzzed and does not panic on rule text or scanned data as far as is known; as a
//! last line of defence every call into it runs under `catch_unwind`, so a panic inside yara-x
//! becomes an error ([`YaraError::Scan`] or a [`RuleFileError`]) instead of taking the caller
//! down.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::{input_name, open_regular_file};

#[cfg(test)]
mod tests;

/// The engine name used in verdicts.
pub const ENGINE: &str = "yara";

/// Rule file extensions compiled by [`YaraRules::compile_dir`] (compared case-insensitively).
pub const RULE_EXTENSIONS: [&str; 2] = ["yar", "yara"];

/// A reused read buffer larger than this is shrunk back after a scan, so that one big file
/// does not pin its size in memory for the scanner's lifetime.
const KEEP_BUFFER_BYTES: usize = 8 << 20;

/// Errors of loading rules and scanning.
#[derive(Debug, thiserror::Error)]
pub enum YaraError {
    /// The rules directory or a scanned file cannot be opened or read (`NotFound` for a missing
    /// rules directory).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The input is larger than [`YaraLimits::max_file_bytes`]; nothing was scanned.
    #[error(
        "{} is {size} bytes, over the YARA scan limit of {max_bytes} bytes: not scanned",
        input_name(path)
    )]
    TooLarge {
        /// The file, or `None` for an in-memory buffer.
        path: Option<PathBuf>,
        /// The input's size in bytes (for a file that grew while being read: the bytes read
        /// when the limit was passed).
        size: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The scan did not finish within [`YaraLimits::timeout`].
    #[error("YARA scan of {} timed out after {after:?}", input_name(path))]
    Timeout {
        /// The file, or `None` for an in-memory buffer.
        path: Option<PathBuf>,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The path is not a regular file (FIFO, device, socket, directory): not opened for reading
    /// so the scan cannot block on it.
    #[error("{} is not a regular file (FIFO, device, socket or directory): not scanned", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// yara-x failed during the scan (a module error, or an internal failure caught here).
    #[error("YARA scan of {} failed: {message}", input_name(path))]
    Scan {
        /// The file, or `None` for an in-memory buffer.
        path: Option<PathBuf>,
        /// yara-x's error text.
        message: String,
    },
    /// Building the final rule set from the files that compiled one by one failed (an internal
    /// yara-x failure; not expected).
    #[error("building the YARA rule set from {} failed: {message}", path.display())]
    Build {
        /// The rules directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A rule file (or in-memory source) that was skipped because it does not compile or cannot be
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFileError {
    /// The file (for [`YaraRules::compile_sources`]: the source's name).
    pub path: PathBuf,
    /// yara-x's error text, which names the file, line and column and shows the offending line,
    /// e.g. `error[E009]: unknown identifier `foo`\n --> rules/a.yar:4:17\n ...`; or the I/O
    /// error.
    pub message: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Per-scan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YaraLimits {
    /// Larger inputs are refused ([`YaraError::TooLarge`]) before they are read.
    pub max_file_bytes: u64,
    /// Scan time limit ([`YaraError::Timeout`]): whole seconds (rounded up, at least 1 s); a
    /// scan over a limit of N s is stopped N to N+1 s after it started.
    pub timeout: Duration,
}

impl YaraLimits {
    /// Default size limit: 64 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
    /// Default time limit: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for YaraLimits {
    fn default() -> Self {
        YaraLimits {
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// A compiled rule set: cheap to clone, `Send + Sync`; share it between scanning threads and
/// give each thread its own [`YaraScanner`].
#[derive(Clone)]
pub struct YaraRules {
    inner: Arc<yara_x::Rules>,
    rule_count: usize,
    files: Arc<[PathBuf]>,
}

impl fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YaraRules")
            .field("rule_count", &self.rule_count)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The result of compiling a directory or a list of sources.
#[derive(Debug)]
pub struct YaraLoad {
    /// The rules of every file that compiled.
    pub rules: YaraRules,
    /// The files that were skipped, with why (sorted by path).
    pub errors: Vec<RuleFileError>,
    /// How many files compiled and are in `rules`.
    pub files_loaded: usize,
}

/// One matching rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YaraMatch {
    /// The rule's identifier.
    pub rule: String,
    /// The rule's namespace: the rule file's path relative to the rules directory without the
    /// extension (or the source's name).
    pub namespace: String,
    /// The rule's tags, in source order.
    pub tags: Vec<String>,
    /// The rule's `meta:` entries in source order: strings, integers, floats and booleans as
    /// such; byte strings (with escapes that are not UTF-8) as lossy UTF-8 text.
    pub meta: Vec<(String, serde_json::Value)>,
}

/// One source to compile: its namespace, the name used in errors, the text.
struct Unit {
    namespace: String,
    path: PathBuf,
    source: Vec<u8>,
}

impl YaraRules {
    /// Compiles every `*.yar` / `*.yara` file under `dir`, recursively, in path order, each file
    /// in its own namespace (its path relative to `dir` without the extension, `/`-separated).
    ///
    /// Each file is compiled alone first; a file that fails (or cannot be read) is reported in
    /// [`YaraLoad::errors`] and left out, and the final rule set is built from the others.
    /// Hidden entries (names starting with `.`) are skipped, and so are symbolic links except
    /// links to regular files that stay inside `dir`. `include` is not allowed in rule files.
    ///
    /// # Errors
    ///
    /// [`YaraError::Io`] when `dir` itself is missing (`NotFound`), not a directory or
    /// unreadable; [`YaraError::Build`] if yara-x fails to build the final rule set.
    pub fn compile_dir(dir: &Path) -> Result<YaraLoad, YaraError> {
        let io_err = |source| YaraError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let meta = fs::metadata(dir).map_err(io_err)?;
        if !meta.is_dir() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let root = fs::canonicalize(dir).map_err(io_err)?;
        // The top directory must be listable: an unreadable one is an error, not an empty set.
        fs::read_dir(dir).map_err(io_err)?;

        let mut errors = Vec::new();
        let mut found = Vec::new();
        collect_rule_files(dir, &root, Path::new(""), &mut found, &mut errors);
        found.sort();

        let mut units = Vec::with_capacity(found.len());
        let mut namespaces = std::collections::HashSet::new();
        for rel in found {
            let path = dir.join(&rel);
            let source = match read_rule_file(&path) {
                Ok(source) => source,
                Err(e) => {
                    errors.push(RuleFileError {
                        path,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            let mut namespace = slash_path(&rel.with_extension(""));
            if !namespaces.insert(namespace.clone()) {
                // `a.yar` and `a.yara`: the second keeps its extension.
                namespace = slash_path(&rel);
                namespaces.insert(namespace.clone());
            }
            units.push(Unit {
                namespace,
                path,
                source,
            });
        }
        let (rules, files_loaded) =
            compile_units(units, &mut errors).map_err(|message| YaraError::Build {
                path: dir.to_path_buf(),
                message,
            })?;
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        for e in &errors {
            tracing::warn!(file = %e.path.display(), error = %e.message, "YARA rule file skipped");
        }
        tracing::info!(
            dir = %dir.display(),
            files = files_loaded,
            rules = rules.rule_count,
            skipped = errors.len(),
            "YARA rules compiled"
        );
        Ok(YaraLoad {
            rules,
            errors,
            files_loaded,
        })
    }

    /// Compiles in-memory `(name, source)` pairs, each in its own namespace named `name`; the
    /// name also stands for the file in errors. A source that fails is reported and left out.
    pub fn compile_sources(sources: &[(String, String)]) -> YaraLoad {
        let units = sources
            .iter()
            .map(|(name, source)| Unit {
                namespace: name.clone(),
                path: PathBuf::from(name),
                source: source.as_bytes().to_vec(),
            })
            .collect();
        let mut errors = Vec::new();
        match compile_units(units, &mut errors) {
            Ok((rules, files_loaded)) => YaraLoad {
                rules,
                errors,
                files_loaded,
            },
            Err(message) => {
                // yara-x failed building the good sources together (not expected): report
                // every source and return the empty set.
                let mut errors: Vec<RuleFileError> = sources
                    .iter()
                    .map(|(name, _)| RuleFileError {
                        path: PathBuf::from(name),
                        message: message.clone(),
                    })
                    .collect();
                errors.dedup_by(|a, b| a.path == b.path);
                YaraLoad {
                    rules: YaraRules::empty(),
                    errors,
                    files_loaded: 0,
                }
            }
        }
    }

    /// Checks one source text: `Ok(number of rules)` or `Err(yara-x's error text)` naming
    /// `name`, the line and the column. For validating an upload before it is stored.
    ///
    /// # Errors
    ///
    /// The compile error text.
    pub fn check_source(name: &str, source: &str) -> Result<usize, String> {
        guarded(|| {
            let mut compiler = new_compiler();
            compiler.new_namespace(name);
            compiler
                .add_source(yara_x::SourceCode::from(source).with_origin(name))
                .map_err(|e| e.to_string())?;
            Ok(compiler.build().iter().len())
        })
        .and_then(|r| r)
    }

    /// An empty rule set (matches nothing).
    pub fn empty() -> YaraRules {
        let rules = new_compiler().build();
        YaraRules {
            inner: Arc::new(rules),
            rule_count: 0,
            files: Arc::from(Vec::new()),
        }
    }

    /// Number of rules (private and global ones included).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rule_count == 0
    }

    /// The files (or source names) whose rules are in the set, in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// A scanner for many scans on one thread (reuses the yara-x scanner and a read buffer).
    pub fn scanner(&self, limits: YaraLimits) -> YaraScanner<'_> {
        YaraScanner::new(self, limits)
    }

    /// Scans one file with a scanner made for this call; see [`YaraScanner::scan_file`].
    ///
    /// # Errors
    ///
    /// As [`YaraScanner::scan_file`].
    pub fn scan_file(&self, path: &Path, limits: YaraLimits) -> Result<Vec<YaraMatch>, YaraError> {
        self.scanner(limits).scan_file(path)
    }

    /// Scans a buffer with a scanner made for this call; see [`YaraScanner::scan_bytes`].
    ///
    /// # Errors
    ///
    /// As [`YaraScanner::scan_bytes`].
    pub fn scan_bytes(&self, data: &[u8], limits: YaraLimits) -> Result<Vec<YaraMatch>, YaraError> {
        self.scanner(limits).scan_bytes(data)
    }
}

/// Scans with one rule set on one thread, reusing yara-x's scanner (its compiled-code instance)
/// and the read buffer between scans.
pub struct YaraScanner<'r> {
    rules: &'r YaraRules,
    scanner: yara_x::Scanner<'r>,
    limits: YaraLimits,
    buf: Vec<u8>,
}

impl fmt::Debug for YaraScanner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YaraScanner")
            .field("rules", &self.rules)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<'r> YaraScanner<'r> {
    fn new(rules: &'r YaraRules, limits: YaraLimits) -> Self {
        YaraScanner {
            rules,
            scanner: new_scanner(&rules.inner, limits),
            limits,
            buf: Vec::new(),
        }
    }

    /// The limits this scanner applies.
    pub fn limits(&self) -> YaraLimits {
        self.limits
    }

    /// Scans one file. Non-regular files are refused without blocking, files over the size
    /// limit before a byte is read; the file is read into the scanner's buffer (never mapped).
    ///
    /// # Errors
    ///
    /// [`YaraError::NotRegular`], [`YaraError::TooLarge`], [`YaraError::Io`] (cannot open or
    /// read), [`YaraError::Timeout`], [`YaraError::Scan`].
    pub fn scan_file(&mut self, path: &Path) -> Result<Vec<YaraMatch>, YaraError> {
        let max = self.limits.max_file_bytes;
        let (file, size) = open_regular_file(path).map_err(|e| open_error(path, e))?;
        if size > max {
            return Err(YaraError::TooLarge {
                path: Some(path.to_path_buf()),
                size,
                max_bytes: max,
            });
        }
        self.buf.clear();
        // The file may grow after the size check: read at most one byte over the limit.
        self.buf
            .reserve(usize::try_from(size).unwrap_or(0).saturating_add(1));
        file.take(max.saturating_add(1))
            .read_to_end(&mut self.buf)
            .map_err(|source| YaraError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let read = u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
        let result = if read > max {
            Err(YaraError::TooLarge {
                path: Some(path.to_path_buf()),
                size: read,
                max_bytes: max,
            })
        } else {
            self.run(Some(path))
        };
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf.shrink_to(KEEP_BUFFER_BYTES);
        }
        result
    }

    /// Scans a buffer (the size limit applies too).
    ///
    /// # Errors
    ///
    /// [`YaraError::TooLarge`], [`YaraError::Timeout`], [`YaraError::Scan`].
    pub fn scan_bytes(&mut self, data: &[u8]) -> Result<Vec<YaraMatch>, YaraError> {
        let max = self.limits.max_file_bytes;
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if size > max {
            return Err(YaraError::TooLarge {
                path: None,
                size,
                max_bytes: max,
            });
        }
        scan_with(&mut self.scanner, data).map_err(|e| self.scan_error(None, e))
    }

    /// Scans `self.buf`.
    fn run(&mut self, path: Option<&Path>) -> Result<Vec<YaraMatch>, YaraError> {
        scan_with(&mut self.scanner, &self.buf).map_err(|e| self.scan_error(path, e))
    }

    fn scan_error(&mut self, path: Option<&Path>, e: Failure) -> YaraError {
        let path = path.map(Path::to_path_buf);
        match e {
            Failure::Scan(yara_x::ScanError::Timeout) => YaraError::Timeout {
                path,
                after: self.limits.timeout,
            },
            Failure::Scan(e) => YaraError::Scan {
                path,
                message: e.to_string(),
            },
            Failure::Panic(message) => {
                // The scanner's state is unknown after a panic: start over with a fresh one.
                self.scanner = new_scanner(&self.rules.inner, self.limits);
                tracing::error!(input = %input_name(&path), %message, "yara-x panicked during a scan");
                YaraError::Scan {
                    path,
                    message: format!("yara-x internal error: {message}"),
                }
            }
        }
    }
}

/// Why a guarded scan failed.
enum Failure {
    Scan(yara_x::ScanError),
    Panic(String),
}

fn scan_with(scanner: &mut yara_x::Scanner<'_>, data: &[u8]) -> Result<Vec<YaraMatch>, Failure> {
    guarded(|| {
        scanner
            .scan(data)
            .map(|results| results.matching_rules().map(|r| to_match(&r)).collect())
    })
    .map_err(Failure::Panic)?
    .map_err(Failure::Scan)
}

fn new_scanner(rules: &yara_x::Rules, limits: YaraLimits) -> yara_x::Scanner<'_> {
    let mut scanner = yara_x::Scanner::new(rules);
    scanner
        .set_timeout(yara_x_timeout(limits.timeout))
        // Only the matching rules are reported, not every match of every pattern: patterns
        // that are only tested for presence stop being searched after their first match.
        .fast_scan(true);
    scanner
}

/// yara-x counts a timeout in ticks of a process-wide one-second heartbeat: a limit of N
/// seconds fires at the N-th tick after the scan starts, i.e. after N-1 to N seconds (a 1 s
/// limit cuts off a 10 ms scan that straddles a tick). One tick more makes it N to N+1 seconds,
/// never less than asked. Sub-second parts round up; at least 1 s.
fn yara_x_timeout(limit: Duration) -> Duration {
    let secs = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1).saturating_add(1))
}

fn to_match(rule: &yara_x::Rule<'_, '_>) -> YaraMatch {
    YaraMatch {
        rule: rule.identifier().to_owned(),
        namespace: rule.namespace().to_owned(),
        tags: rule.tags().map(|t| t.identifier().to_owned()).collect(),
        meta: rule
            .metadata()
            .map(|(key, value)| (key.to_owned(), meta_json(&value)))
            .collect(),
    }
}

fn meta_json(value: &yara_x::MetaValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        yara_x::MetaValue::Integer(i) => Value::from(*i),
        yara_x::MetaValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        yara_x::MetaValue::Bool(b) => Value::Bool(*b),
        yara_x::MetaValue::String(s) => Value::String((*s).to_owned()),
        yara_x::MetaValue::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A compiler with this crate's settings.
fn new_compiler() -> yara_x::Compiler<'static> {
    let mut compiler = yara_x::Compiler::new();
    compiler.enable_includes(false);
    compiler
}

/// Compiles each unit alone, records the failures in `errors`, then builds one rule set from
/// the units that compiled. `Err` only if yara-x fails on that last step.
fn compile_units(
    units: Vec<Unit>,
    errors: &mut Vec<RuleFileError>,
) -> Result<(YaraRules, usize), String> {
    let mut good = Vec::with_capacity(units.len());
    for unit in units {
        match check_unit(&unit) {
            Ok(()) => good.push(unit),
            Err(message) => errors.push(RuleFileError {
                path: unit.path,
                message,
            }),
        }
    }
    let built = guarded(|| {
        let mut compiler = new_compiler();
        let mut failed = Vec::new();
        for (i, unit) in good.iter().enumerate() {
            compiler.new_namespace(&unit.namespace);
            if let Err(e) = compiler.add_source(source_code(unit)) {
                failed.push((i, e.to_string()));
            }
        }
        (compiler.build(), failed)
    })?;
    let (rules, failed) = built;
    // A unit that compiled alone but not with the others (not expected: each has its own
    // namespace). Any rules of it that yara-x kept stay in the set.
    for (i, message) in failed.into_iter().rev() {
        let unit = good.remove(i);
        errors.push(RuleFileError {
            path: unit.path,
            message,
        });
    }
    let rule_count = rules.iter().len();
    let files: Vec<PathBuf> = good.into_iter().map(|u| u.path).collect();
    let files_loaded = files.len();
    Ok((
        YaraRules {
            inner: Arc::new(rules),
            rule_count,
            files: Arc::from(files),
        },
        files_loaded,
    ))
}

/// Compiles one unit alone (without building the native code).
fn check_unit(unit: &Unit) -> Result<(), String> {
    guarded(|| {
        let mut compiler = new_compiler();
        compiler.new_namespace(&unit.namespace);
        compiler
            .add_source(source_code(unit))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .and_then(|r| r)
}

fn source_code(unit: &Unit) -> yara_x::SourceCode<'_> {
    yara_x::SourceCode::from(unit.source.as_slice()).with_origin(unit.path.display().to_string())
}

/// Runs `f`, turning a panic into `Err(its message)`.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// Maps an error of [`open_regular_file`] to [`YaraError::NotRegular`] or [`YaraError::Io`].
fn open_error(path: &Path, e: io::Error) -> YaraError {
    if e.kind() == io::ErrorKind::InvalidInput && fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return YaraError::NotRegular {
            path: path.to_path_buf(),
        };
    }
    YaraError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Reads a rule file (regular files only, so a FIFO named `x.yar` cannot block the load).
fn read_rule_file(path: &Path) -> io::Result<Vec<u8>> {
    let (mut file, size) = open_regular_file(path)?;
    let mut source = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut source)?;
    Ok(source)
}

fn has_rule_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| RULE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `a/b/c` whatever the platform's separator.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Collects the rule files under `root_dir.join(rel)` (paths relative to the top directory).
/// Unreadable subdirectories are reported in `errors`.
fn collect_rule_files(
    top: &Path,
    canonical_top: &Path,
    rel: &Path,
    found: &mut Vec<PathBuf>,
    errors: &mut Vec<RuleFileError>,
) {
    let dir = top.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(RuleFileError {
                path: dir,
                message: format!("cannot list directory: {e}"),
            });
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(RuleFileError {
                    path: dir.clone(),
                    message: format!("cannot list directory: {e}"),
                });
                continue;
            }
        };
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let rel_path = rel.join(&name);
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_rule_files(top, canonical_top, &rel_path, found, errors);
        } else if !has_rule_extension(&rel_path) {
            continue;
        } else if file_type.is_file() {
            found.push(rel_path);
        } else if file_type.is_symlink() {
            // A link to a regular file inside the rules directory is followed; anything else is
            // skipped.
            let inside = fs::canonicalize(entry.path())
                .ok()
                .filter(|target| target.starts_with(canonical_top))
                .and_then(|target| fs::metadata(target).ok())
                .is_some_and(|m| m.is_file());
            if inside {
                found.push(rel_path);
            } else {
                tracing::debug!(path = %entry.path().display(), "YARA rule symlink skipped: it leads out of the rules directory or not to a file");
            }
        }
    }
}
