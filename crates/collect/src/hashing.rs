//! SHA-256 of files, with a cache keyed by file identity.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Hashes at most this many cache entries before the cache is cleared (bounded memory).
const CACHE_CAPACITY: usize = 4096;

/// Lowercase hex SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex SHA-256 of a file, or `None` when it is not a regular file or is larger than
/// `max_bytes`.
pub fn sha256_file(path: &Path, max_bytes: u64) -> io::Result<Option<String>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > max_bytes {
        return Ok(None);
    }
    sha256_reader(file.take(max_bytes.saturating_add(1))).map(Some)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What identifies the content of a file without reading it: device, inode, size and mtime
/// (on Windows, where std has no stable file index, the path stands in for device and inode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
    #[cfg(not(unix))]
    path: std::path::PathBuf,
}

impl FileIdentity {
    /// The identity of a file from its metadata (`path` is used off Unix only).
    #[cfg_attr(unix, allow(unused_variables))]
    pub fn new(meta: &Metadata, path: &Path) -> Self {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        FileIdentity {
            dev,
            ino,
            size: meta.len(),
            mtime: meta.modified().ok(),
            #[cfg(not(unix))]
            path: path.to_path_buf(),
        }
    }
}

/// Executable hashes cached by [`FileIdentity`]: a program started a thousand times is read
/// once. Files above the size limit are remembered as "not hashed".
#[derive(Debug)]
pub struct HashCache {
    max_bytes: u64,
    entries: HashMap<FileIdentity, Option<String>>,
    hits: u64,
    misses: u64,
}

impl HashCache {
    pub fn new(max_bytes: u64) -> Self {
        HashCache {
            max_bytes,
            entries: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// The hash of an already opened file (e.g. `/proc/<pid>/exe`, which stays readable even
    /// when the path was replaced or deleted). `path` names it for the identity off Unix.
    pub fn hash_open_file(&mut self, file: File, path: &Path) -> io::Result<Option<String>> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        let identity = FileIdentity::new(&meta, path);
        if let Some(hit) = self.entries.get(&identity) {
            self.hits += 1;
            return Ok(hit.clone());
        }
        self.misses += 1;
        let hash = if meta.len() > self.max_bytes {
            None
        } else {
            Some(sha256_reader(file.take(self.max_bytes.saturating_add(1)))?)
        };
        if self.entries.len() >= CACHE_CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(identity, hash.clone());
        Ok(hash)
    }

    /// The hash of the file at `path`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub fn hash_path(&mut self, path: &Path) -> io::Result<Option<String>> {
        let file = File::open(path)?;
        self.hash_open_file(file, path)
    }

    /// (hits, misses) since creation.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_and_cache() {
        assert_eq!(
            sha256_reader(&b"abc"[..]).unwrap_or_default(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap_or_else(|e| panic!("{e}"));
        let mut cache = HashCache::new(10);
        let h1 = cache.hash_path(&p).unwrap_or_else(|e| panic!("{e}"));
        let h2 = cache.hash_path(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h1, h2);
        assert_eq!(cache.stats(), (1, 1));
        std::fs::write(&p, b"abcdefghijklmnop").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.hash_path(&p).unwrap_or_else(|e| panic!("{e}")), None);
        assert_eq!(sha256_file(&p, 10).unwrap_or_else(|e| panic!("{e}")), None);
        assert!(
            sha256_file(&p, 100)
                .unwrap_or_else(|e| panic!("{e}"))
                .is_some()
        );
    }
}
