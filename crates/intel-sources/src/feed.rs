//! MISP feeds: `manifest.json` (event uuid → `{timestamp, info, Orgc, Tag, …}`), one
//! `<uuid>.json` per event (`{"Event": {…, "Attribute": […], "Object": [{"Attribute": […]}]}}`)
//! and the optional `hashes.csv` (`md5(value),event uuid` per attribute), from a directory
//! (air-gapped sites copy feeds by hand) or a URL.
//!
//! Incremental: only events whose manifest `timestamp` is newer than the cursor are read. The
//! cursor of a batch is the newest manifest timestamp read — held back below the oldest
//! event that could not be read, so that event is tried again next time.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::http::{Http, HttpSettings};
use crate::misp_event::import_event;
use crate::time::epoch_seconds;
use crate::{SourceError, SyncBatch};

#[derive(Debug, Clone)]
enum Location {
    Dir(PathBuf),
    Url { base: String, http: Http },
}

/// A MISP feed in a directory or at a URL.
#[derive(Debug, Clone)]
pub struct MispFeed {
    location: Location,
    source_name: String,
}

/// One event of a feed's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub uuid: String,
    pub timestamp: i64,
    pub info: String,
}

fn is_uuid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

impl MispFeed {
    /// A feed copied into `dir`.
    pub fn dir(dir: impl Into<PathBuf>, source_name: &str) -> MispFeed {
        MispFeed {
            location: Location::Dir(dir.into()),
            source_name: source_name.to_owned(),
        }
    }

    /// A feed served at `base` (the URL that `manifest.json` is under).
    pub fn url(
        base: &str,
        settings: &HttpSettings,
        source_name: &str,
    ) -> Result<MispFeed, SourceError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SourceError::Config(format!(
                "feed URL {base:?} must start with https:// or http://"
            )));
        }
        Ok(MispFeed {
            location: Location::Url {
                base,
                http: settings.http()?,
            },
            source_name: source_name.to_owned(),
        })
    }

    fn origin(&self, file: &str) -> String {
        match &self.location {
            Location::Dir(dir) => dir.join(file).display().to_string(),
            Location::Url { base, .. } => format!("{base}/{file}"),
        }
    }

    /// A feed file's bytes; `Ok(None)` when it does not exist (404).
    async fn read(&self, file: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match &self.location {
            Location::Dir(dir) => {
                let path = dir.join(file);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(SourceError::io(&path, e)),
                }
            }
            Location::Url { base, http } => {
                let url = format!("{base}/{file}");
                match http.send(&url, http.client.get(&url)).await {
                    Ok((_, bytes)) => Ok(Some(bytes)),
                    Err(SourceError::Http { status: 404, .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The manifest, oldest event first. Entries that are not a uuid with a timestamp are
    /// reported in `skipped`.
    pub async fn manifest(
        &self,
        skipped: &mut SyncBatch,
    ) -> Result<Vec<ManifestEntry>, SourceError> {
        let origin = self.origin("manifest.json");
        let bytes = self.read("manifest.json").await?.ok_or_else(|| {
            SourceError::malformed(&origin, "", "no manifest.json: not a MISP feed")
        })?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
            SourceError::malformed(&origin, format!("line {}", e.line()), e.to_string())
        })?;
        let map = doc
            .as_object()
            .ok_or_else(|| SourceError::malformed(&origin, "", "the manifest is not an object"))?;
        let mut entries = Vec::with_capacity(map.len());
        for (uuid, entry) in map {
            if !is_uuid(uuid) {
                skipped.skip(
                    format!("manifest.json: {uuid}"),
                    "the manifest key is not an event uuid",
                );
                continue;
            }
            let Some(timestamp) = entry.get("timestamp").and_then(epoch_seconds) else {
                skipped.skip(uuid, "manifest entry without a timestamp");
                continue;
            };
            entries.push(ManifestEntry {
                uuid: uuid.clone(),
                timestamp,
                info: entry
                    .get("info")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        entries.sort_by(|a, b| (a.timestamp, &a.uuid).cmp(&(b.timestamp, &b.uuid)));
        Ok(entries)
    }

    /// Reads the events newer than `cursor` (epoch seconds; `None` = all).
    pub async fn sync(&self, cursor: Option<&str>) -> Result<SyncBatch, SourceError> {
        let since = match cursor {
            Some(c) => Some(c.trim().parse::<i64>().map_err(|_| {
                SourceError::Config(format!("feed cursor {c:?} is not an epoch second"))
            })?),
            None => None,
        };
        let mut batch = SyncBatch::default();
        let entries = self.manifest(&mut batch).await?;
        let mut newest = since;
        let mut oldest_failed: Option<i64> = None;
        for entry in entries {
            if since.is_some_and(|s| entry.timestamp <= s) {
                continue;
            }
            let file = format!("{}.json", entry.uuid);
            let failed = match self.read(&file).await {
                Ok(Some(bytes)) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(event) if event.get("Event").is_some_and(Value::is_object) => {
                        import_event(&self.source_name, &event, "", &mut batch);
                        false
                    }
                    Ok(_) => {
                        batch.skip(&entry.uuid, format!("{file}: no `Event` object"));
                        true
                    }
                    Err(e) => {
                        batch.skip(
                            &entry.uuid,
                            format!("{file}: not JSON (line {}): {e}", e.line()),
                        );
                        true
                    }
                },
                Ok(None) => {
                    batch.skip(
                        &entry.uuid,
                        format!("{file}: listed in the manifest, missing"),
                    );
                    true
                }
                // Auth and transport failures stop the sync: the next one starts over.
                Err(
                    e @ (SourceError::Auth { .. }
                    | SourceError::Timeout { .. }
                    | SourceError::Tls { .. }
                    | SourceError::Transport { .. }),
                ) => return Err(e),
                Err(e) => {
                    batch.skip(&entry.uuid, e.to_string());
                    true
                }
            };
            if failed {
                oldest_failed =
                    Some(oldest_failed.map_or(entry.timestamp, |o| o.min(entry.timestamp)));
            }
            newest = Some(newest.map_or(entry.timestamp, |n| n.max(entry.timestamp)));
        }
        if let (Some(n), Some(f)) = (newest, oldest_failed) {
            newest = Some(n.min(f.saturating_sub(1)));
        }
        batch.cursor = newest.map(|t| t.to_string());
        Ok(batch)
    }

    /// `hashes.csv`: `(md5 of an attribute value, event uuid)` pairs; `None` when the feed has
    /// none. Bad lines are reported in `skipped`.
    pub async fn hashes(
        &self,
        skipped: &mut SyncBatch,
    ) -> Result<Option<Vec<(String, String)>>, SourceError> {
        let Some(bytes) = self.read("hashes.csv").await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once(',') {
                Some((hash, uuid))
                    if hash.len() == 32
                        && hash.chars().all(|c| c.is_ascii_hexdigit())
                        && is_uuid(uuid.trim()) =>
                {
                    out.push((hash.to_ascii_lowercase(), uuid.trim().to_owned()));
                }
                _ => skipped.skip(
                    format!("hashes.csv line {}", i + 1),
                    "expected `md5,event-uuid`",
                ),
            }
        }
        Ok(Some(out))
    }
}

/// The directory a feed at `path` lives in (for callers that take a manifest path).
pub fn feed_dir(path: &Path) -> &Path {
    if path.file_name().is_some_and(|n| n == "manifest.json") {
        path.parent().unwrap_or(path)
    } else {
        path
    }
}
