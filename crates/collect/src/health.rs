//! Per-collector health, shared between the collector threads and the agent's heartbeat.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// How a collector is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectorState {
    /// Starting up (taking its first snapshot / baseline); no events yet.
    Starting,
    /// Working as intended.
    Running,
    /// Working with a handicap (a fallback, a missing input); see the message.
    Degraded,
    /// Stopped on an error; see the message.
    Failed,
    /// Turned off by the configuration or the collection level, or not available on this OS.
    Disabled,
    /// Stopped because the agent is shutting down.
    Stopped,
}

/// The state of one collector and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectorStatus {
    pub state: CollectorState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the collector's data comes from right now, for collectors with more than one
    /// way: `netlink-connector` / `procfs-poll` (process), `netlink-sock-diag` /
    /// `procfs-poll` / `iphlpapi-poll` (network). Kept when only the state changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Shared map collector name → [`CollectorStatus`]. Clones share the map.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<String, CollectorStatus>>>,
}

impl Health {
    /// Sets the status of collector `name` (its `source` stays what it was).
    pub fn set(&self, name: &str, state: CollectorState, message: Option<String>) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let source = map.get(name).and_then(|s| s.source.clone());
        Self::put(&mut map, name, state, message, source);
    }

    /// Sets the status of collector `name` and the source its data comes from.
    pub fn set_with_source(
        &self,
        name: &str,
        state: CollectorState,
        source: &str,
        message: Option<String>,
    ) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Self::put(&mut map, name, state, message, Some(source.to_owned()));
    }

    fn put(
        map: &mut BTreeMap<String, CollectorStatus>,
        name: &str,
        state: CollectorState,
        message: Option<String>,
        source: Option<String>,
    ) {
        let status = CollectorStatus {
            state,
            message,
            source,
        };
        if map.get(name) != Some(&status) {
            match (&status.state, &status.message) {
                (CollectorState::Failed, Some(m)) => tracing::error!(collector = name, "{m}"),
                (CollectorState::Degraded, Some(m)) => tracing::warn!(collector = name, "{m}"),
                (state, m) => tracing::debug!(collector = name, ?state, message = ?m, "status"),
            }
            map.insert(name.to_owned(), status);
        }
    }

    /// The status of one collector.
    pub fn get(&self, name: &str) -> Option<CollectorStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// A copy of the whole map.
    pub fn snapshot(&self) -> BTreeMap<String, CollectorStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Human-readable lines for every collector that is degraded or failed, e.g.
    /// `process: netlink unavailable (EPERM), polling /proc every 1s`.
    pub fn problems(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, s)| matches!(s.state, CollectorState::Degraded | CollectorState::Failed))
            .map(|(name, s)| match &s.message {
                Some(m) => format!("{name}: {m}"),
                None => format!("{name}: {}", state_word(s.state)),
            })
            .collect()
    }
}

fn state_word(state: CollectorState) -> &'static str {
    match state {
        CollectorState::Starting => "starting",
        CollectorState::Running => "running",
        CollectorState::Degraded => "degraded",
        CollectorState::Failed => "failed",
        CollectorState::Disabled => "disabled",
        CollectorState::Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_lists_degraded_and_failed_only() {
        let h = Health::default();
        h.set("auth", CollectorState::Running, None);
        h.set(
            "process",
            CollectorState::Degraded,
            Some("netlink unavailable (EPERM), polling /proc every 1s".into()),
        );
        h.set("fim", CollectorState::Failed, None);
        h.set(
            "network",
            CollectorState::Disabled,
            Some("level minimal".into()),
        );
        assert_eq!(
            h.problems(),
            vec![
                "fim: failed".to_owned(),
                "process: netlink unavailable (EPERM), polling /proc every 1s".to_owned()
            ]
        );
        let snap = h.clone().snapshot();
        assert_eq!(snap.len(), 4);
        let json = serde_json::to_value(&snap).unwrap_or_default();
        assert_eq!(json["auth"]["state"], "running");
        assert!(json["auth"].get("message").is_none());
        assert!(json["auth"].get("source").is_none());
    }

    #[test]
    fn source_is_kept_across_state_changes() {
        let h = Health::default();
        h.set_with_source(
            "network",
            CollectorState::Running,
            "netlink-sock-diag",
            Some("kernel events".into()),
        );
        h.set("network", CollectorState::Stopped, None);
        let status = h.get("network").unwrap_or_else(|| panic!("status"));
        assert_eq!(status.state, CollectorState::Stopped);
        assert_eq!(status.source.as_deref(), Some("netlink-sock-diag"));
        let json = serde_json::to_value(h.snapshot()).unwrap_or_default();
        assert_eq!(json["network"]["source"], "netlink-sock-diag");
    }
}
