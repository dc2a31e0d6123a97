//! Local hash lists: known-bad and known-good SHA-256 / SHA-1 / MD5 hashes.
//!
//! List files hold one hash per line, optionally followed by a name:
//!
//! ```text
//! # comment
//! 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f  EICAR test file
//! 3395856ce81f2b7382dee72602f798b642f14140,EICAR (SHA-1)
//! 44d88612fea8a8f36de82e1278abb02f
//! ```
//!
//! The algorithm follows from the length (64 / 40 / 32 hex digits, any case). The name is
//! separated by whitespace (the `sha256sum` format; a leading `*` is dropped) or a comma. CRLF
//! line ends and a UTF-8 BOM are tolerated. Bad lines are reported with `file:line` and the good
//! ones are kept.
//!
//! Classification computes each needed digest once while streaming the input, with a size
//! limit: SHA-256 always (it identifies the file in every verdict), SHA-1 and MD5 only when a
//! list holds hashes of that kind (or when asked via [`HashLists::always_compute`]).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::Sha256;

use crate::to_hex;

/// Lines longer than this are reported as bad (a list is text, not a binary blob).
pub const MAX_LINE_BYTES: usize = 4096;
/// At most this many bad lines are reported per file; the rest are summarized in one entry.
pub const MAX_LINE_ERRORS: usize = 1000;

/// A hash algorithm of the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    /// 32 hex digits.
    Md5,
    /// 40 hex digits.
    Sha1,
    /// 64 hex digits.
    Sha256,
}

impl HashAlgo {
    /// `md5`, `sha1` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
        }
    }

    /// Digest length in bytes.
    pub fn len_bytes(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
        }
    }

    fn from_hex_len(len: usize) -> Option<HashAlgo> {
        match len {
            32 => Some(HashAlgo::Md5),
            40 => Some(HashAlgo::Sha1),
            64 => Some(HashAlgo::Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bad line of a hash list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The list file (or the label given to [`HashList::parse_str`]).
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// Errors of this module (bad list lines are [`LineError`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A list file could not be opened or read.
    #[error("cannot read hash list {}: {source}", .path.display())]
    List {
        /// The list file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The input to hash could not be opened or read.
    #[error("cannot read {}: {source}", crate::input_name(.path))]
    Input {
        /// The file, when hashing a file.
        path: Option<PathBuf>,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The input is larger than the limit; nothing is reported for a partial hash.
    #[error("{} is larger than the hashing limit of {max_bytes} bytes", crate::input_name(.path))]
    TooLarge {
        /// The file, when hashing a file.
        path: Option<PathBuf>,
        /// The limit.
        max_bytes: u64,
    },
}

/// A set of hashes with optional names (one list: known-bad or known-good).
#[derive(Debug, Clone, Default)]
pub struct HashList {
    md5: HashMap<[u8; 16], Option<Box<str>>>,
    sha1: HashMap<[u8; 20], Option<Box<str>>>,
    sha256: HashMap<[u8; 32], Option<Box<str>>>,
}

/// A parsed list line: algorithm, digest bytes, optional name.
type Parsed<'a> = (HashAlgo, Vec<u8>, Option<&'a str>);

/// Parses one line (without its `\n`). `Ok(None)` for blank and comment lines.
fn parse_line(line: &str) -> Result<Option<Parsed<'_>>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let split = line.find(|c: char| c == ',' || c.is_whitespace());
    let (hash, rest) = match split {
        Some(i) => (line.get(..i).unwrap_or(line), line.get(i..).unwrap_or("")),
        None => (line, ""),
    };
    let name = if let Some(after_comma) = rest.strip_prefix(',') {
        after_comma.trim()
    } else {
        // `sha256sum` prints `hash *file` for binary mode.
        let rest = rest.trim_start();
        rest.strip_prefix('*').unwrap_or(rest).trim()
    };
    let name = (!name.is_empty() && !name.starts_with('#')).then_some(name);
    if hash.is_empty() {
        return Err("missing hash before the name".to_owned());
    }
    let algo = HashAlgo::from_hex_len(hash.len()).ok_or_else(|| {
        format!(
            "expected an MD5, SHA-1 or SHA-256 hash (32, 40 or 64 hex digits), found {} characters {:?}",
            hash.chars().count(),
            truncate(hash, 80),
        )
    })?;
    let bytes = decode_hex(hash)?;
    Ok(Some((algo, bytes, name)))
}

fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    let bytes = hex.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for (i, pair) in bytes.chunks(2).enumerate() {
        let mut value = 0u8;
        for (j, &c) in pair.iter().enumerate() {
            let digit = hex_value(c).ok_or_else(|| {
                let column = i * 2 + j + 1;
                let shown = hex
                    .get(column - 1..)
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                format!("invalid hex digit {shown:?} at column {column}")
            })?;
            value = (value << 4) | digit;
        }
        out.push(value);
    }
    Ok(out)
}

/// Digest bytes as a fixed-size map key (`None` when the length is wrong).
fn key<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    <[u8; N]>::try_from(bytes).ok()
}

/// Reads one line of at most `max` bytes into `buf` (without the `\n`). Returns `None` at EOF,
/// `Some(true)` when the line was longer than `max` (the rest of it is skipped).
fn read_capped_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (part, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (available.get(..i).unwrap_or_default(), i + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

impl HashList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one list file. I/O errors fail the load; bad lines are returned alongside the list
    /// (which holds every good line).
    pub fn load(path: &Path) -> Result<(HashList, Vec<LineError>), HashError> {
        let mut list = HashList::new();
        let errors = list.load_into(path)?;
        Ok((list, errors))
    }

    /// Adds the hashes of another list file to this list (several feeds into one list).
    pub fn load_into(&mut self, path: &Path) -> Result<Vec<LineError>, HashError> {
        let file = File::open(path).map_err(|source| HashError::List {
            path: path.to_owned(),
            source,
        })?;
        let errors = self
            .extend_from_reader(path, BufReader::new(file))
            .map_err(|source| HashError::List {
                path: path.to_owned(),
                source,
            })?;
        tracing::debug!(
            path = %path.display(),
            hashes = self.len(),
            bad_lines = errors.len(),
            "loaded hash list"
        );
        Ok(errors)
    }

    /// Parses list text (for tests and lists that do not come from a file); `label` names the
    /// source in [`LineError`]s.
    pub fn parse_str(label: &str, text: &str) -> (HashList, Vec<LineError>) {
        let mut list = HashList::new();
        // Reading from a slice cannot fail.
        let errors = list
            .extend_from_reader(Path::new(label), text.as_bytes())
            .unwrap_or_default();
        (list, errors)
    }

    /// Adds the lines of `reader`; `source` names it in [`LineError`]s.
    pub fn extend_from_reader<R: BufRead>(
        &mut self,
        source: &Path,
        mut reader: R,
    ) -> io::Result<Vec<LineError>> {
        let mut errors = Vec::new();
        let mut suppressed = 0usize;
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        while let Some(too_long) = read_capped_line(&mut reader, &mut buf, MAX_LINE_BYTES)? {
            line_no += 1;
            let result = if too_long {
                Err(format!("line longer than {MAX_LINE_BYTES} bytes"))
            } else {
                match std::str::from_utf8(&buf) {
                    Err(_) => Err("line is not valid UTF-8".to_owned()),
                    Ok(text) => {
                        let text = if line_no == 1 {
                            text.strip_prefix('\u{feff}').unwrap_or(text)
                        } else {
                            text
                        };
                        parse_line(text).map(|parsed| {
                            if let Some((algo, bytes, name)) = parsed {
                                self.insert_bytes(algo, &bytes, name);
                            }
                        })
                    }
                }
            };
            if let Err(message) = result {
                if errors.len() < MAX_LINE_ERRORS {
                    errors.push(LineError {
                        path: source.to_owned(),
                        line: line_no,
                        message,
                    });
                } else {
                    suppressed += 1;
                }
            }
        }
        if suppressed > 0 {
            errors.push(LineError {
                path: source.to_owned(),
                line: line_no,
                message: format!("{suppressed} more bad lines not reported"),
            });
        }
        Ok(errors)
    }

    fn insert_bytes(&mut self, algo: HashAlgo, bytes: &[u8], name: Option<&str>) -> bool {
        let name = name.map(Box::from);
        // The first occurrence keeps its name.
        match algo {
            HashAlgo::Md5 => key(bytes).map(|k| self.md5.entry(k).or_insert(name)),
            HashAlgo::Sha1 => key(bytes).map(|k| self.sha1.entry(k).or_insert(name)),
            HashAlgo::Sha256 => key(bytes).map(|k| self.sha256.entry(k).or_insert(name)),
        }
        .is_some()
    }

    /// Adds one hex hash (any case) with an optional name; the algorithm follows from its
    /// length. Errors say what is wrong with the hash.
    pub fn insert(&mut self, hex: &str, name: Option<&str>) -> Result<HashAlgo, String> {
        let hex = hex.trim();
        let algo = HashAlgo::from_hex_len(hex.len()).ok_or_else(|| {
            format!(
                "expected 32, 40 or 64 hex digits, found {}",
                hex.chars().count()
            )
        })?;
        let bytes = decode_hex(hex)?;
        self.insert_bytes(algo, &bytes, name);
        Ok(algo)
    }

    /// Whether the list holds this hex hash (any case).
    pub fn contains_hex(&self, hex: &str) -> bool {
        let hex = hex.trim();
        let Some(algo) = HashAlgo::from_hex_len(hex.len()) else {
            return false;
        };
        let Ok(bytes) = decode_hex(hex) else {
            return false;
        };
        match algo {
            HashAlgo::Md5 => key(&bytes).is_some_and(|k| self.md5.contains_key(&k)),
            HashAlgo::Sha1 => key(&bytes).is_some_and(|k| self.sha1.contains_key(&k)),
            HashAlgo::Sha256 => key(&bytes).is_some_and(|k| self.sha256.contains_key(&k)),
        }
    }

    /// Number of hashes (all algorithms).
    pub fn len(&self) -> usize {
        self.md5.len() + self.sha1.len() + self.sha256.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of hashes of one algorithm.
    pub fn count(&self, algo: HashAlgo) -> usize {
        match algo {
            HashAlgo::Md5 => self.md5.len(),
            HashAlgo::Sha1 => self.sha1.len(),
            HashAlgo::Sha256 => self.sha256.len(),
        }
    }

    /// The optional digests this list needs (SHA-256 is always computed).
    pub fn needs(&self) -> DigestSet {
        DigestSet {
            sha1: !self.sha1.is_empty(),
            md5: !self.md5.is_empty(),
        }
    }

    /// The first entry matching the digests (SHA-256, then SHA-1, then MD5).
    pub fn lookup(&self, digests: &Digests) -> Option<HashMatch> {
        let found = |algo: HashAlgo, bytes: &[u8], name: &Option<Box<str>>| HashMatch {
            algo,
            hash: to_hex(bytes),
            name: name.as_deref().map(str::to_owned),
        };
        if let Some(name) = self.sha256.get(&digests.sha256) {
            return Some(found(HashAlgo::Sha256, &digests.sha256, name));
        }
        if let Some(sha1) = &digests.sha1
            && let Some(name) = self.sha1.get(sha1)
        {
            return Some(found(HashAlgo::Sha1, sha1, name));
        }
        if let Some(md5) = &digests.md5
            && let Some(name) = self.md5.get(md5)
        {
            return Some(found(HashAlgo::Md5, md5, name));
        }
        None
    }
}

/// Which optional digests to compute (SHA-256 is always computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DigestSet {
    /// Compute SHA-1.
    pub sha1: bool,
    /// Compute MD5.
    pub md5: bool,
}

impl DigestSet {
    /// SHA-256, SHA-1 and MD5.
    pub const ALL: DigestSet = DigestSet {
        sha1: true,
        md5: true,
    };
    /// SHA-256 only.
    pub const SHA256_ONLY: DigestSet = DigestSet {
        sha1: false,
        md5: false,
    };

    /// Both sets combined.
    pub fn union(self, other: DigestSet) -> DigestSet {
        DigestSet {
            sha1: self.sha1 || other.sha1,
            md5: self.md5 || other.md5,
        }
    }
}

/// The digests of one input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digests {
    /// Bytes hashed.
    pub size: u64,
    /// SHA-256 (always).
    pub sha256: [u8; 32],
    /// SHA-1, when requested.
    pub sha1: Option<[u8; 20]>,
    /// MD5, when requested.
    pub md5: Option<[u8; 16]>,
}

/// Chunk size for hashing readers.
const HASH_CHUNK: usize = 64 * 1024;

impl Digests {
    /// Hashes `reader` in one pass. Fails with [`HashError::TooLarge`] as soon as more than
    /// `max_bytes` have been read.
    pub fn compute<R: Read>(
        reader: R,
        max_bytes: u64,
        set: DigestSet,
    ) -> Result<Digests, HashError> {
        Self::compute_inner(reader, max_bytes, set, None)
    }

    /// Hashes an in-memory buffer (no limit).
    pub fn of_bytes(data: &[u8], set: DigestSet) -> Digests {
        let mut hasher = Hasher::new(set);
        hasher.update(data);
        hasher.finish(u64::try_from(data.len()).unwrap_or(u64::MAX))
    }

    /// Hashes a regular file (streaming). Refuses non-regular files (FIFOs, devices) and
    /// files larger than `max_bytes`.
    pub fn of_file(path: &Path, max_bytes: u64, set: DigestSet) -> Result<Digests, HashError> {
        let input_err = |source: io::Error| HashError::Input {
            path: Some(path.to_owned()),
            source,
        };
        let (file, size) = crate::open_regular_file(path).map_err(input_err)?;
        if size > max_bytes {
            return Err(HashError::TooLarge {
                path: Some(path.to_owned()),
                max_bytes,
            });
        }
        Self::compute_inner(file, max_bytes, set, Some(path))
    }

    fn compute_inner<R: Read>(
        mut reader: R,
        max_bytes: u64,
        set: DigestSet,
        path: Option<&Path>,
    ) -> Result<Digests, HashError> {
        let mut hasher = Hasher::new(set);
        let mut buf = vec![0u8; HASH_CHUNK];
        let mut total: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n.min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(HashError::Input {
                        path: path.map(Path::to_owned),
                        source,
                    });
                }
            };
            total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
            if total > max_bytes {
                return Err(HashError::TooLarge {
                    path: path.map(Path::to_owned),
                    max_bytes,
                });
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        Ok(hasher.finish(total))
    }

    /// Lowercase hex SHA-256.
    pub fn sha256_hex(&self) -> String {
        to_hex(&self.sha256)
    }

    /// Lowercase hex SHA-1, when computed.
    pub fn sha1_hex(&self) -> Option<String> {
        self.sha1.as_ref().map(|d| to_hex(d))
    }

    /// Lowercase hex MD5, when computed.
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.as_ref().map(|d| to_hex(d))
    }
}

/// The running hashers of one pass.
struct Hasher {
    sha256: Sha256,
    sha1: Option<Sha1>,
    md5: Option<Md5>,
}

impl Hasher {
    fn new(set: DigestSet) -> Self {
        Hasher {
            sha256: <Sha256 as sha2::Digest>::new(),
            sha1: set.sha1.then(<Sha1 as sha1::Digest>::new),
            md5: set.md5.then(<Md5 as md5::Digest>::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.sha256, data);
        if let Some(h) = &mut self.sha1 {
            sha1::Digest::update(h, data);
        }
        if let Some(h) = &mut self.md5 {
            md5::Digest::update(h, data);
        }
    }

    fn finish(self, size: u64) -> Digests {
        Digests {
            size,
            sha256: sha2::Digest::finalize(self.sha256).into(),
            sha1: self.sha1.map(|h| sha1::Digest::finalize(h).into()),
            md5: self.md5.map(|h| md5::Digest::finalize(h).into()),
        }
    }
}

/// A list entry that matched.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HashMatch {
    /// Which digest matched.
    pub algo: HashAlgo,
    /// The matching hash, lowercase hex.
    pub hash: String,
    /// The name given in the list, if any.
    pub name: Option<String>,
}

/// The classification of one input against the lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HashVerdict {
    /// The known-bad entry that matched. Takes precedence over `known_good` when both match.
    pub known_bad: Option<HashMatch>,
    /// Whether a known-good entry matched.
    pub known_good: bool,
    /// Bytes hashed.
    pub size: u64,
    /// Lowercase hex SHA-256 (always).
    pub sha256: String,
    /// Lowercase hex SHA-1, when computed.
    pub sha1: Option<String>,
    /// Lowercase hex MD5, when computed.
    pub md5: Option<String>,
}

/// The known-bad and known-good lists.
#[derive(Debug, Clone, Default)]
pub struct HashLists {
    /// Hashes of known malware.
    pub known_bad: HashList,
    /// Hashes of known-good files (e.g. vendor binaries), to skip or downgrade.
    pub known_good: HashList,
    /// Digests to compute even when no list needs them (e.g. to report all three hashes).
    pub always_compute: DigestSet,
}

impl HashLists {
    /// Both lists, computing only the digests they need.
    pub fn new(known_bad: HashList, known_good: HashList) -> Self {
        HashLists {
            known_bad,
            known_good,
            always_compute: DigestSet::default(),
        }
    }

    /// The digests a classification computes.
    pub fn needs(&self) -> DigestSet {
        self.known_bad
            .needs()
            .union(self.known_good.needs())
            .union(self.always_compute)
    }

    /// Classifies precomputed digests.
    pub fn classify(&self, digests: &Digests) -> HashVerdict {
        HashVerdict {
            known_bad: self.known_bad.lookup(digests),
            known_good: self.known_good.lookup(digests).is_some(),
            size: digests.size,
            sha256: digests.sha256_hex(),
            sha1: digests.sha1_hex(),
            md5: digests.md5_hex(),
        }
    }

    /// Hashes and classifies a reader (at most `max_bytes`).
    pub fn classify_reader<R: Read>(
        &self,
        reader: R,
        max_bytes: u64,
    ) -> Result<HashVerdict, HashError> {
        let digests = Digests::compute(reader, max_bytes, self.needs())?;
        Ok(self.classify(&digests))
    }

    /// Hashes and classifies a regular file (streaming, at most `max_bytes`).
    pub fn classify_file(&self, path: &Path, max_bytes: u64) -> Result<HashVerdict, HashError> {
        let digests = Digests::of_file(path, max_bytes, self.needs())?;
        let verdict = self.classify(&digests);
        if let Some(bad) = &verdict.known_bad {
            tracing::debug!(
                path = %path.display(),
                algo = %bad.algo,
                hash = %bad.hash,
                name = bad.name.as_deref().unwrap_or(""),
                "known-bad hash"
            );
        }
        Ok(verdict)
    }

    /// Hashes and classifies an in-memory buffer.
    pub fn classify_bytes(&self, data: &[u8]) -> HashVerdict {
        self.classify(&Digests::of_bytes(data, self.needs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const EMPTY_SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const ABC_MD5: &str = "900150983cd24fb0d6963f7d28e17f72";

    #[test]
    fn digests_match_known_vectors() {
        let d = Digests::of_bytes(b"abc", DigestSet::ALL);
        assert_eq!(d.size, 3);
        assert_eq!(d.sha256_hex(), ABC_SHA256);
        assert_eq!(d.sha1_hex().as_deref(), Some(ABC_SHA1));
        assert_eq!(d.md5_hex().as_deref(), Some(ABC_MD5));
        let d = Digests::compute(&b""[..], 0, DigestSet::ALL).unwrap();
        assert_eq!(d.sha256_hex(), EMPTY_SHA256);
        assert_eq!(d.sha1_hex().as_deref(), Some(EMPTY_SHA1));
        assert_eq!(d.md5_hex().as_deref(), Some(EMPTY_MD5));
        let d = Digests::of_bytes(b"abc", DigestSet::SHA256_ONLY);
        assert_eq!(d.sha1, None);
        assert_eq!(d.md5, None);
    }

    #[test]
    fn streaming_equals_one_shot_and_limit_applies() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let streamed = Digests::compute(&data[..], data.len() as u64, DigestSet::ALL).unwrap();
        assert_eq!(streamed, Digests::of_bytes(&data, DigestSet::ALL));
        let err = Digests::compute(&data[..], data.len() as u64 - 1, DigestSet::ALL).unwrap_err();
        assert!(matches!(err, HashError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("hashing limit"));
    }

    #[test]
    fn parses_all_line_forms() {
        let text = format!(
            "\u{feff}# known bad\r\n\
             {ABC_SHA256}  abc file\r\n\
             {ABC_SHA1},abc sha1\n\
             \n\
             {}\n\
             {EMPTY_SHA256} *empty.bin\n\
             \t{EMPTY_SHA1}\t# just a comment\n\
             {EMPTY_MD5}, \n",
            ABC_MD5.to_uppercase()
        );
        let (list, errors) = HashList::parse_str("bad.txt", &text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(list.len(), 6);
        assert_eq!(list.count(HashAlgo::Sha256), 2);
        assert_eq!(list.count(HashAlgo::Sha1), 2);
        assert_eq!(list.count(HashAlgo::Md5), 2);
        assert!(list.contains_hex(ABC_MD5));
        assert!(list.contains_hex(&ABC_SHA256.to_uppercase()));

        let m = list
            .lookup(&Digests::of_bytes(b"abc", DigestSet::ALL))
            .unwrap();
        assert_eq!(m.algo, HashAlgo::Sha256);
        assert_eq!(m.hash, ABC_SHA256);
        assert_eq!(m.name.as_deref(), Some("abc file"));

        let m = list
            .lookup(&Digests::of_bytes(b"", DigestSet::ALL))
            .unwrap();
        assert_eq!(m.name.as_deref(), Some("empty.bin"));
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers_and_good_ones_kept() {
        let text = format!(
            "# header\n\
             {ABC_SHA256} good one\n\
             abc123 too short\n\
             {}\n\
             ,name without hash\n\
             {ABC_SHA1}\r\n\
             {}zz\n\
             {ABC_MD5}",
            ABC_SHA256.replace('b', "g"),
            &ABC_SHA1[..38],
        );
        let (list, errors) = HashList::parse_str("lists/bad.txt", &text);
        assert_eq!(list.len(), 3, "{list:?}");
        assert!(list.contains_hex(ABC_SHA256));
        assert!(list.contains_hex(ABC_SHA1));
        assert!(list.contains_hex(ABC_MD5), "last line without newline");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 7], "{errors:#?}");
        assert_eq!(
            errors[0].to_string(),
            "lists/bad.txt:3: expected an MD5, SHA-1 or SHA-256 hash (32, 40 or 64 hex digits), found 6 characters \"abc123\""
        );
        assert!(
            errors[1]
                .message
                .contains("invalid hex digit 'g' at column 1"),
            "{}",
            errors[1]
        );
        assert_eq!(errors[2].message, "missing hash before the name");
        assert!(
            errors[3].message.contains("'z' at column 39"),
            "{}",
            errors[3]
        );
    }

    #[test]
    fn binary_and_overlong_lines_are_bad_lines() {
        let mut data = Vec::new();
        data.extend_from_slice(b"\xff\xfe garbage\n");
        data.extend_from_slice(&vec![b'a'; MAX_LINE_BYTES + 10]);
        data.extend_from_slice(b"\n");
        data.extend_from_slice(ABC_MD5.as_bytes());
        data.extend_from_slice(b"\n");
        let mut list = HashList::new();
        let errors = list.extend_from_reader(Path::new("x"), &data[..]).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0].line, errors[1].line), (1, 2));
        assert!(errors[0].message.contains("UTF-8"));
        assert!(errors[1].message.contains("longer than"));
    }

    #[test]
    fn error_flood_is_capped() {
        let text = "nothex\n".repeat(MAX_LINE_ERRORS + 5);
        let (list, errors) = HashList::parse_str("flood", &text);
        assert!(list.is_empty());
        assert_eq!(errors.len(), MAX_LINE_ERRORS + 1);
        assert_eq!(
            errors.last().unwrap().message,
            "5 more bad lines not reported"
        );
    }

    #[test]
    fn classify_bad_good_and_unknown() {
        let (bad, _) = HashList::parse_str("bad", &format!("{ABC_MD5} abc-md5\n"));
        let (good, _) = HashList::parse_str("good", &format!("{EMPTY_SHA256}\n"));
        let lists = HashLists::new(bad, good);
        assert_eq!(
            lists.needs(),
            DigestSet {
                sha1: false,
                md5: true
            }
        );

        let v = lists.classify_bytes(b"abc");
        assert_eq!(
            v.known_bad,
            Some(HashMatch {
                algo: HashAlgo::Md5,
                hash: ABC_MD5.into(),
                name: Some("abc-md5".into())
            })
        );
        assert!(!v.known_good);
        assert_eq!(v.sha256, ABC_SHA256);
        assert_eq!(v.sha1, None, "SHA-1 not needed, not computed");
        assert_eq!(v.md5.as_deref(), Some(ABC_MD5));

        let v = lists.classify_reader(&b""[..], 10).unwrap();
        assert!(v.known_good);
        assert_eq!(v.known_bad, None);

        let v = lists.classify_bytes(b"other");
        assert!(!v.known_good);
        assert_eq!(v.known_bad, None);

        let mut lists = lists;
        lists.always_compute = DigestSet::ALL;
        assert_eq!(lists.classify_bytes(b"abc").sha1.as_deref(), Some(ABC_SHA1));
    }

    #[test]
    fn classify_files_and_load_lists() {
        let dir = tempfile::tempdir().unwrap();
        let sample = dir.path().join("sample.bin");
        std::fs::write(&sample, b"abc").unwrap();
        let list_path = dir.path().join("bad.sha256");
        std::fs::write(&list_path, format!("{ABC_SHA256}  sample\nnope\n")).unwrap();

        let (bad, errors) = HashList::load(&list_path).unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, list_path);
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0]
                .to_string()
                .starts_with(&format!("{}:2: ", list_path.display()))
        );

        let lists = HashLists::new(bad, HashList::new());
        let v = lists.classify_file(&sample, 1024).unwrap();
        assert_eq!(v.known_bad.unwrap().name.as_deref(), Some("sample"));
        assert_eq!(v.size, 3);

        let err = lists.classify_file(&sample, 2).unwrap_err();
        assert!(matches!(err, HashError::TooLarge { .. }));
        assert!(err.to_string().contains("sample.bin"), "{err}");
        let err = lists.classify_file(dir.path(), 1024).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = HashList::load(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, HashError::List { .. }));
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn insert_validates() {
        let mut list = HashList::new();
        assert_eq!(list.insert(ABC_SHA1, Some("x")), Ok(HashAlgo::Sha1));
        assert!(list.insert("abcd", None).is_err());
        assert!(list.insert(&"g".repeat(32), None).is_err());
        assert!(!list.contains_hex("zz"));
        assert_eq!(list.len(), 1);
    }
}
