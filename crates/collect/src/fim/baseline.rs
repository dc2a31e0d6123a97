//! The FIM baseline: path → what the file looked like when last seen (hash and metadata),
//! persisted in the state directory so a restart does not re-report unchanged files.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What is remembered of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status change time (Unix), nanoseconds since the epoch; 0 elsewhere.
    #[serde(default)]
    pub ctime_ns: i128,
    #[serde(default)]
    pub ino: u64,
    #[serde(default)]
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub dir: bool,
}

impl Entry {
    /// The metadata part (the hash is filled by the caller).
    pub fn from_meta(meta: &Metadata) -> Entry {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Entry {
                sha256: None,
                size: meta.len(),
                mtime_ns,
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                ino: meta.ino(),
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                dir: meta.is_dir(),
            }
        }
        #[cfg(not(unix))]
        {
            Entry {
                sha256: None,
                size: meta.len(),
                mtime_ns,
                ctime_ns: 0,
                ino: 0,
                mode: u32::from(meta.permissions().readonly()),
                uid: 0,
                gid: 0,
                dir: meta.is_dir(),
            }
        }
    }

    /// Same size, times and inode: the content is taken as unchanged (not re-hashed).
    pub fn same_stat(&self, other: &Entry) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.ino == other.ino
            && self.dir == other.dir
    }

    /// Owner or permission bits differ.
    pub fn attrs_differ(&self, other: &Entry) -> bool {
        self.mode != other.mode || self.uid != other.uid || self.gid != other.gid
    }
}

/// The persisted form.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub files: BTreeMap<String, Entry>,
}

impl Baseline {
    pub const FILE: &'static str = "fim-baseline.json";

    pub fn key(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    /// Moves every entry at or under `from` to the same place under `to` (a directory rename).
    pub fn rename_tree(&mut self, from: &str, to: &str) {
        let prefix = format!("{from}{}", std::path::MAIN_SEPARATOR);
        let moved: Vec<String> = self
            .files
            .range(from.to_owned()..)
            .take_while(|(k, _)| k.as_str() == from || k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for old in moved {
            if let Some(entry) = self.files.remove(&old) {
                let new = format!("{to}{}", &old[from.len()..]);
                self.files.insert(new, entry);
            }
        }
    }

    /// Removes every entry under the directory `dir` (not `dir` itself).
    pub fn remove_children(&mut self, dir: &str) {
        let prefix = format!("{dir}{}", std::path::MAIN_SEPARATOR);
        self.files.retain(|k, _| !k.starts_with(&prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn rename_tree_moves_children_only() {
        let mut b = Baseline::default();
        for k in ["/w/a", "/w/a/x", "/w/a/y/z", "/w/ab", "/w/b"] {
            b.files.insert(k.into(), Entry::default());
        }
        b.rename_tree("/w/a", "/w/c");
        let keys: Vec<&str> = b.files.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["/w/ab", "/w/b", "/w/c", "/w/c/x", "/w/c/y/z"]);
        b.remove_children("/w/c");
        let keys: Vec<&str> = b.files.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["/w/ab", "/w/b", "/w/c"]);
    }
}
