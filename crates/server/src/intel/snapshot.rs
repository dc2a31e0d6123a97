//! The indicator snapshot of a process's pipeline workers: built from the store's active
//! indicators, rebuilt when they change (a sync, an operator's change, an expiry).

use std::sync::Arc;

use dozor_intel::IocKind;
use dozor_pipeline::intel::{IntelHandle, IntelSnapshot, IocContext};
use dozor_store::{IocQuery, MAX_IOC_PAGE, Store, StoreError, StoredIoc, now_ms};
use tokio::sync::watch;

use crate::config::IntelConfig;

/// The pipeline's view of a stored indicator. `sighting_sources`: the MISP sources (by name)
/// sightings go back to; `None` for a kind the index no longer knows.
pub fn context(ioc: &StoredIoc, sighting_sources: &[String]) -> Option<IocContext> {
    Some(IocContext {
        id: ioc.id,
        kind: IocKind::from_name(&ioc.kind)?,
        value: ioc.value.clone(),
        sources: ioc.sources.iter().map(|s| s.name.clone()).collect(),
        tags: ioc.tags.clone(),
        confidence: ioc.confidence,
        to_ids: ioc.to_ids,
        warninglists: ioc.warninglists.clone(),
        sighting: ioc
            .sources
            .iter()
            .any(|s| sighting_sources.contains(&s.name)),
        first_seen: ioc.first_seen,
        last_seen: ioc.last_seen,
    })
}

/// The names of the sources sightings go back to (MISP servers), when sightings are on.
pub async fn sighting_sources(
    store: &dyn Store,
    config: &IntelConfig,
) -> Result<Vec<String>, StoreError> {
    if !config.sightings {
        return Ok(Vec::new());
    }
    Ok(store
        .list_intel_sources()
        .await?
        .into_iter()
        .filter(|s| super::is_misp_rest(&s.spec))
        .map(|s| s.name)
        .collect())
}

/// Reads every active indicator (pages by id) and indexes them. Returns the snapshot and how
/// many rows were read (indexed or refused).
pub async fn load_snapshot(
    store: &dyn Store,
    config: &IntelConfig,
) -> Result<(IntelSnapshot, u64), StoreError> {
    let now = now_ms();
    let sightings = sighting_sources(store, config).await?;
    let mut contexts = Vec::new();
    let mut after_id = None;
    let mut read = 0u64;
    loop {
        let page = store
            .list_iocs(&IocQuery {
                active_at: Some(now),
                after_id: Some(after_id.unwrap_or(0)),
                limit: MAX_IOC_PAGE,
                ..IocQuery::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after_id = Some(last.id);
        read += page.len() as u64;
        let full = page.len() as u32 >= MAX_IOC_PAGE;
        contexts.extend(page.iter().filter_map(|i| context(i, &sightings)));
        if !full {
            break;
        }
    }
    let (snapshot, refused) = IntelSnapshot::build(contexts, config.suppress_warninglisted);
    for (id, e) in refused.iter().take(20) {
        tracing::warn!(ioc_id = id, "indicator left out of the matcher: {e}");
    }
    Ok((snapshot, read))
}

/// Keeps `handle` current: builds the snapshot at start, then rebuilds it when `CHANGED`
/// is notified ([`super::CHANGED`], a change in this process) or, checked every `config.refresh`, when indicators
/// changed in the store (another process, an operator) or some expired. Until `stop`.
pub async fn refresher(
    store: Arc<dyn Store>,
    handle: IntelHandle,
    config: IntelConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut built_at: Option<i64> = None;
    let mut active = 0u64;
    loop {
        let due = match built_at {
            None => true,
            Some(at) => {
                let since = store
                    .count_iocs(&IocQuery {
                        updated_since: Some(at - 1000),
                        ..IocQuery::default()
                    })
                    .await;
                let now_active = store
                    .count_iocs(&IocQuery {
                        active_at: Some(now_ms()),
                        ..IocQuery::default()
                    })
                    .await;
                match (since, now_active) {
                    (Ok(since), Ok(now_active)) => since > 0 || now_active != active,
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!("checking indicators for changes: {e}");
                        false
                    }
                }
            }
        };
        if due {
            let started = now_ms();
            let clock = std::time::Instant::now();
            match load_snapshot(store.as_ref(), &config).await {
                Ok((snapshot, read)) => {
                    tracing::info!(
                        indicators = snapshot.len(),
                        took_ms = clock.elapsed().as_millis() as u64,
                        "indicator matcher rebuilt"
                    );
                    handle.replace(snapshot);
                    built_at = Some(started);
                    active = read;
                }
                Err(e) => tracing::warn!("loading indicators: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.refresh) => {}
            _ = super::CHANGED.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
