//! Hosts: every machine Dozor has heard of, from its agents' events and from uploaded logs'
//! `host.name`.

use serde::{Deserialize, Serialize};

/// A host as the store knows it: named by `host.name`, compared without letter case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Host {
    /// `host.name` as the first event spelled it.
    pub name: String,
    /// The agent whose events last named this host, if any (uploaded logs have none).
    pub agent_id: Option<String>,
    /// Earliest event time seen, ms.
    pub first_seen: i64,
    /// Latest event time seen, ms.
    pub last_seen: i64,
    /// When the server last stored an event of this host, ms (wall clock).
    pub last_received: i64,
    /// Events stored for this host (duplicates not counted).
    pub events: i64,
    /// Alerts of this host still open (new or acknowledged).
    pub open_alerts: i64,
    /// Alerts of this host in all.
    pub alerts: i64,
}

/// Host listing: most recently active first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostQuery {
    /// Only hosts whose name contains this (any letter case).
    pub search: Option<String>,
    /// At most this many (the store caps it).
    pub limit: u32,
}

/// The key a host name is compared by: trimmed, lower case.
pub fn host_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The host an event names: `host.name`, else `host.hostname`; `None` when blank.
pub fn event_host(doc: &serde_json::Value) -> Option<&str> {
    let host = doc.get("host")?;
    ["name", "hostname"]
        .into_iter()
        .filter_map(|k| host.get(k)?.as_str())
        .map(str::trim)
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_host_comes_from_host_name_then_hostname() {
        assert_eq!(
            event_host(&json!({"host": {"name": " WS-01 "}})),
            Some("WS-01")
        );
        assert_eq!(
            event_host(&json!({"host": {"name": "", "hostname": "db1"}})),
            Some("db1")
        );
        assert_eq!(event_host(&json!({"host": {"ip": ["10.0.0.1"]}})), None);
        assert_eq!(event_host(&json!({"host": "flat"})), None);
        assert_eq!(host_key(" WS-01.Corp "), "ws-01.corp");
    }
}
