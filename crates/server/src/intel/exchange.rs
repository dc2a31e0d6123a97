//! Exchange with other tools (issue 14): documents imported whole (a MISP event, a STIX
//! bundle, a CSV or freetext list uploaded by an analyst), the stored indicators exported as
//! a STIX 2.1 bundle, and Dozor's own indicators (the manual ones and every one that matched)
//! with their sightings as a MISP feed another MISP can subscribe to.

use std::collections::{HashMap, HashSet};

use dozor_intel::{Ioc, IocKind, IocSource};
use dozor_intel_sources::SourceError;
use dozor_intel_sources::document::{self, Format};
use dozor_intel_sources::export::{ExportSighting, FeedEventSettings, MispFeedFiles, misp_feed};
use dozor_store::{
    IntelMatchQuery, IntelSyncStatus, IocQuery, MAX_IOC_PAGE, MAX_PAGE_LIMIT, Store, StoreError,
    StoredIoc, now_ms,
};

use super::{IntelError, IntelService, MANUAL_SOURCE};

/// Most indicators one export holds.
pub const MAX_EXPORT: usize = 100_000;
/// Most matches read for the sightings of the MISP feed (newest first).
const MAX_FEED_MATCHES: usize = 100_000;
/// Most sightings one indicator carries in the feed (its newest).
const MAX_SIGHTINGS_PER_IOC: usize = 100;
/// The `info` of the feed's event.
pub const FEED_EVENT_INFO: &str = "Dozor: own indicators and sightings";

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document is not what its format says (or, for `auto`, no format Dozor reads).
    #[error("{0}")]
    Document(#[from] SourceError),
    #[error(transparent)]
    Intel(#[from] IntelError),
}

/// An import's outcome: the format read and what the store did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub format: Format,
    pub status: IntelSyncStatus,
}

/// A stored indicator as `dozor-intel` shapes it (for the exporters); `None` for a kind this
/// build does not know.
pub fn ioc_of(stored: &StoredIoc) -> Option<Ioc> {
    Some(Ioc {
        kind: IocKind::from_name(&stored.kind)?,
        value: stored.value.clone(),
        original: stored.value.clone(),
        misp_type: stored.misp_type.clone(),
        to_ids: stored.to_ids,
        tags: stored.tags.clone(),
        confidence: stored.confidence,
        first_seen: stored.first_seen,
        last_seen: stored.last_seen,
        expires: stored.expires,
        sources: stored
            .sources
            .iter()
            .map(|s| IocSource {
                name: s.name.clone(),
                object_ids: s.object_ids.clone(),
            })
            .collect(),
    })
}

/// Every indicator matching `query` (its `after_id` and `limit` are set here), in id order,
/// at most `max`; and whether more were left out.
pub async fn collect_iocs(
    store: &dyn Store,
    query: &IocQuery,
    max: usize,
) -> Result<(Vec<StoredIoc>, bool), StoreError> {
    let mut out = Vec::new();
    let mut after_id = 0;
    loop {
        let want = (max - out.len()).min(MAX_IOC_PAGE as usize);
        // One more than wanted tells whether the cap cut the listing short.
        let page = store
            .list_iocs(&IocQuery {
                after_id: Some(after_id),
                limit: (want + 1).min(MAX_IOC_PAGE as usize) as u32,
                ..query.clone()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok((out, false));
        };
        after_id = last.id;
        let full = page.len() >= MAX_IOC_PAGE as usize;
        let read = page.len();
        out.extend(page.into_iter().take(want));
        if out.len() >= max {
            if read > want {
                return Ok((out, true));
            }
            // Exactly `max` so far: one more row says whether there are more.
            let more = store
                .list_iocs(&IocQuery {
                    after_id: Some(after_id),
                    limit: 1,
                    ..query.clone()
                })
                .await?;
            return Ok((out, !more.is_empty()));
        }
        if !full {
            return Ok((out, false));
        }
    }
}

impl IntelService {
    /// Reads one document (`format` `None`: sniffed) and stores its indicators under
    /// `source` as a sync does: warninglists, merge per (kind, value), retro-hunt. What it
    /// could not read is reported in the status (`skipped`, `skipped_examples`), the rest is
    /// stored. `origin` names the document in errors.
    pub async fn import(
        &self,
        source: &str,
        format: Option<Format>,
        origin: &str,
        bytes: Vec<u8>,
    ) -> Result<Imported, ImportError> {
        let started_at = now_ms();
        let (origin_owned, source_owned) = (origin.to_owned(), source.to_owned());
        // Parsing 64 MiB of JSON is CPU work: off the async threads.
        let parsed = tokio::task::spawn_blocking(move || {
            let format = match format {
                Some(f) => f,
                None => document::sniff(&origin_owned, &bytes)?,
            };
            document::parse(format, &origin_owned, &bytes, &source_owned).map(|b| (format, b))
        })
        .await
        .map_err(|e| {
            ImportError::Document(SourceError::Config(format!("the parser task failed: {e}")))
        })?;
        let (format, batch) = parsed?;
        tracing::info!(
            source,
            format = format.as_str(),
            indicators = batch.iocs.len(),
            skipped = batch.skipped.len(),
            "intel document read"
        );
        let status = self.store_batch(source, batch, started_at, None).await?;
        Ok(Imported { format, status })
    }

    /// Dozor's own indicators: the manual ones and every one that matched an event, enabled,
    /// in id order, at most [`MAX_EXPORT`].
    pub async fn own_iocs(&self) -> Result<Vec<StoredIoc>, StoreError> {
        let store = self.store.as_ref();
        let (manual, _) = collect_iocs(
            store,
            &IocQuery {
                source: Some(MANUAL_SOURCE.into()),
                enabled: Some(true),
                ..IocQuery::default()
            },
            MAX_EXPORT,
        )
        .await?;
        let (sighted, _) = collect_iocs(
            store,
            &IocQuery {
                sighted: Some(true),
                enabled: Some(true),
                ..IocQuery::default()
            },
            MAX_EXPORT,
        )
        .await?;
        let mut seen = HashSet::new();
        let mut all: Vec<StoredIoc> = manual
            .into_iter()
            .chain(sighted)
            .filter(|i| seen.insert(i.id))
            .collect();
        all.sort_by_key(|i| i.id);
        all.truncate(MAX_EXPORT);
        Ok(all)
    }

    /// The sightings of `iocs` from the recorded matches (newest first, at most
    /// [`MAX_SIGHTINGS_PER_IOC`] each), seen by "dozor".
    async fn sightings_of(&self, iocs: &[StoredIoc]) -> Result<Vec<ExportSighting>, StoreError> {
        let wanted: HashMap<i64, IocKind> = iocs
            .iter()
            .filter(|i| i.sightings > 0)
            .filter_map(|i| Some((i.id, IocKind::from_name(&i.kind)?)))
            .collect();
        let mut out = Vec::new();
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut per_ioc: HashMap<i64, usize> = HashMap::new();
        let mut before_id = None;
        let mut read = 0usize;
        while read < MAX_FEED_MATCHES {
            let page = self
                .store
                .list_intel_matches(&IntelMatchQuery {
                    before_id,
                    limit: MAX_PAGE_LIMIT,
                    ..IntelMatchQuery::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before_id = Some(last.id);
            read += page.len();
            let full = page.len() >= MAX_PAGE_LIMIT as usize;
            for m in page {
                let Some(kind) = wanted.get(&m.ioc_id) else {
                    continue;
                };
                let n = per_ioc.entry(m.ioc_id).or_default();
                if *n >= MAX_SIGHTINGS_PER_IOC {
                    continue;
                }
                *n += 1;
                out.push(ExportSighting {
                    kind: *kind,
                    value: m.value,
                    timestamp: m.event_ts.div_euclid(1000),
                    source: "dozor".into(),
                });
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// The MISP feed of [`IntelService::own_iocs`] with their sightings: one event whose uuid
    /// is derived from `installation` (a value this server keeps, such as its CA
    /// certificate), so a MISP that fetches it again sees the same event updated.
    pub async fn own_feed(&self, installation: &str) -> Result<MispFeedFiles, StoreError> {
        let stored = self.own_iocs().await?;
        let sightings = self.sightings_of(&stored).await?;
        let iocs: Vec<Ioc> = stored
            .iter()
            .filter_map(|s| {
                let mut ioc = ioc_of(s)?;
                // A stable attribute timestamp (MISP fetches an event again when its
                // timestamp moves): first stored, for indicators that say nothing else.
                if ioc.first_seen.is_none() && ioc.last_seen.is_none() {
                    ioc.first_seen = Some(s.created_at);
                }
                Some(ioc)
            })
            .collect();
        let mut settings = FeedEventSettings::new(FEED_EVENT_INFO);
        settings.uuid = Some(feed_event_uuid(installation));
        Ok(misp_feed(&iocs, &sightings, &settings))
    }
}

/// The feed event's uuid: UUID v5 of `installation` in Dozor's feed namespace.
pub fn feed_event_uuid(installation: &str) -> String {
    const FEED_NAMESPACE: uuid::Uuid =
        uuid::Uuid::from_u128(0x0b6f_54d2_9a3e_4f0c_8d61_5e2a_7c19_d4e3);
    uuid::Uuid::new_v5(&FEED_NAMESPACE, installation.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_uuid_is_stable_per_installation() {
        assert_eq!(feed_event_uuid("a"), feed_event_uuid("a"));
        assert_ne!(feed_event_uuid("a"), feed_event_uuid("b"));
        assert!(uuid::Uuid::parse_str(&feed_event_uuid("a")).is_ok());
    }
}
