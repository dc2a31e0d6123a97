//! Retro-hunts: new indicators looked for in events stored before they arrived.

use std::collections::HashSet;

use dozor_pipeline::intel::{EventRef, IntelSnapshot};
use dozor_store::{EventQuery, IocQuery, MAX_IOC_PAGE, MAX_PAGE_LIMIT, now_ms};

use super::snapshot::{context, sighting_sources};
use super::{IntelError, IntelService};

impl IntelService {
    /// Looks for the indicators `ids` in the events of the last `intel.retro_hunt_days` (event
    /// time, newest first, at most `intel.retro_hunt_max_events`): records each match once
    /// (marked retro) and raises the alerts the pipeline would have. Returns the new matches.
    pub async fn retro_hunt(&self, ids: &[i64]) -> Result<u64, IntelError> {
        let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(0);
        };
        let wanted: HashSet<i64> = ids.iter().copied().collect();
        let store = self.store.as_ref();
        let sightings = sighting_sources(store, &self.config).await?;
        let now = now_ms();
        let mut contexts = Vec::new();
        let mut after_id = first - 1;
        while after_id < last {
            let page = store
                .list_iocs(&IocQuery {
                    active_at: Some(now),
                    after_id: Some(after_id),
                    limit: MAX_IOC_PAGE,
                    ..IocQuery::default()
                })
                .await?;
            let Some(tail) = page.last() else { break };
            after_id = tail.id;
            contexts.extend(
                page.iter()
                    .filter(|i| wanted.contains(&i.id))
                    .filter_map(|i| context(i, &sightings)),
            );
        }
        let (snapshot, _) = IntelSnapshot::build(contexts, self.config.suppress_warninglisted);
        if snapshot.is_empty() {
            return Ok(0);
        }
        let clock = std::time::Instant::now();
        let from = now - i64::from(self.config.retro_hunt_days) * 86_400_000;
        let mut cursor = None;
        let mut read = 0u64;
        let mut found = 0u64;
        loop {
            let page = store
                .search_events(&EventQuery {
                    from: Some(from),
                    cursor: cursor.take(),
                    limit: MAX_PAGE_LIMIT,
                    ..EventQuery::default()
                })
                .await?;
            read += page.events.len() as u64;
            for event in page.events {
                let mut doc = event.doc;
                let outcome = snapshot.apply(
                    &mut doc,
                    EventRef {
                        id: event.id,
                        ts: event.ts,
                        agent_id: event.agent_id.as_deref(),
                        retro: true,
                    },
                );
                if outcome.matches.is_empty() {
                    continue;
                }
                let new = store
                    .record_intel_matches(&outcome.matches, now_ms())
                    .await?;
                if !new.iter().any(|n| *n) {
                    // Found before (a repeated hunt): its alert was raised then.
                    continue;
                }
                found += new.iter().filter(|n| **n).count() as u64;
                for detection in &outcome.detections {
                    let o = store.record_detection(detection, self.alert_window).await?;
                    let _ = self.notices.send(dozor_pipeline::AlertNotice {
                        change: o.change,
                        alert: o.alert,
                    });
                }
            }
            match page.next_cursor {
                Some(c) if read < self.config.retro_hunt_max_events => cursor = Some(c),
                _ => break,
            }
        }
        tracing::info!(
            indicators = snapshot.len(),
            events = read,
            matches = found,
            took_ms = clock.elapsed().as_millis() as u64,
            "retro-hunt done"
        );
        Ok(found)
    }
}
