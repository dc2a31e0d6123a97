//! Disk space a directory may use (samples, upload scratch space), so that a client — a
//! compromised agent, say — can't fill the disk: room is reserved before a body is received
//! (507 when there is none), and a periodic sweep deletes files older than their retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;

use crate::config::human_size;
use crate::problem::Problem;

/// The bytes a directory holds (or has promised to uploads under way), against a limit.
#[derive(Debug)]
pub struct DiskQuota {
    /// The configuration key of the limit, for messages.
    key: &'static str,
    /// What the directory holds, for messages ("samples").
    what: &'static str,
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
}

/// Room taken in a [`DiskQuota`]; given back when dropped, unless kept.
#[derive(Debug)]
pub struct Reservation {
    quota: Arc<DiskQuota>,
    bytes: u64,
}

impl DiskQuota {
    /// A quota for `dir`, counting the regular files it holds now.
    pub fn new(key: &'static str, what: &'static str, dir: &Path, limit: u64) -> Arc<DiskQuota> {
        let quota = Arc::new(DiskQuota {
            key,
            what,
            dir: dir.to_owned(),
            limit,
            used: AtomicU64::new(0),
        });
        quota.used.store(directory_bytes(dir), Ordering::SeqCst);
        quota
    }

    /// Bytes used (files and reservations).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Takes room for `bytes`, or answers 507 saying how full the directory is.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, Problem> {
        let taken = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            });
        match taken {
            Ok(_) => Ok(Reservation {
                quota: self.clone(),
                bytes,
            }),
            Err(used) => Err(Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "quota-exceeded",
                "Insufficient storage",
            )
            .detail(format!(
                "{} use {} of {} ({} = {} bytes); this upload may need {} more. Send it again later; old files are deleted as they pass their retention",
                self.what,
                human_size(used),
                human_size(self.limit),
                self.key,
                self.limit,
                human_size(bytes)
            ))
            .with("limit_name", self.key)
            .with("limit", self.limit)
            .with("used", used)
            .retry_after(Duration::from_secs(600))),
        }
    }

    /// Deletes the files of the directory named as `deletable` says and last modified before
    /// `max_age` ago, then counts what the directory holds again (plus `reserved`, the
    /// reservations under way). Returns the files deleted.
    pub fn sweep(&self, max_age: Duration, deletable: impl Fn(&str) -> bool) -> usize {
        let cutoff = SystemTime::now()
            .checked_sub(max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        let mut freed = 0u64;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || !deletable(&name.to_string_lossy()) {
                    continue;
                }
                if meta.modified().is_ok_and(|m| m < cutoff)
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                    freed += meta.len();
                }
            }
        }
        if freed > 0 {
            let _ = self
                .used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                    Some(used.saturating_sub(freed))
                });
            tracing::info!(
                dir = %self.dir.display(),
                files = removed,
                bytes = freed,
                "deleted {} past their retention",
                self.what
            );
        }
        removed
    }
}

impl Reservation {
    /// The upload was kept as a file of `size` bytes: that much stays counted.
    pub fn keep(mut self, size: u64) {
        let extra = self.bytes.saturating_sub(size);
        let missing = size.saturating_sub(self.bytes);
        self.bytes = 0;
        let _ = self
            .quota
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(extra).saturating_add(missing))
            });
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let bytes = self.bytes;
        let _ = self
            .quota
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// The bytes of the regular files directly in `dir`.
fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// How much room an upload needs: its declared length when smaller than the limit.
pub fn upload_size(headers: &axum::http::HeaderMap, limit: u64) -> u64 {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(limit, |len| len.min(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_keeps_releases_and_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), vec![0u8; 100]).unwrap();
        let quota = DiskQuota::new("scan.samples_quota", "samples", dir.path(), 1000);
        assert_eq!(quota.used(), 100);
        let a = quota.reserve(800).unwrap();
        let refused = quota.reserve(200).unwrap_err();
        assert_eq!(refused.status, 507);
        assert_eq!(refused.slug(), "quota-exceeded");
        a.keep(300);
        assert_eq!(quota.used(), 400);
        drop(quota.reserve(600).unwrap());
        assert_eq!(quota.used(), 400);
        // Nothing is old enough yet; then everything is.
        assert_eq!(quota.sweep(Duration::from_secs(3600), |_| true), 0);
        assert_eq!(quota.sweep(Duration::ZERO, |n| n == "old"), 1);
        assert_eq!(quota.used(), 300);
        assert!(!dir.path().join("old").exists());
    }
}
