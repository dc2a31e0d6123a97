//! The pages: one module each, sharing the layout and the helpers below.

mod admin;
mod agents;
mod alert_detail;
mod alerts;
pub(crate) mod anomalies;
pub(crate) mod attack_matrix;
mod events;
mod exceptions;
pub(crate) mod hosts;
mod incidents;
mod intel;
mod layout;
mod login;
mod overview;
mod response;
mod rules;
mod searches;
pub(crate) mod vulns;

pub use admin::{audit, profile, users};
pub use agents::{agent_detail, agents};
pub use alert_detail::alert_detail;
pub use alerts::alerts;
pub use anomalies::anomalies;
pub use events::events;
pub use exceptions::exceptions;
pub use hosts::{host_detail, hosts};
pub use incidents::{incident_detail, incidents};
pub use intel::{intel, intel_matches, intel_sources, ioc_detail};
pub use login::{LoginError, error_page, login};
pub use overview::overview;
pub use response::{approvals, playbook_detail, playbook_run, playbook_runs, playbooks};
pub use rules::{rule_detail, rules};
pub use searches::searches;
pub use vulns::{vuln_cve, vuln_detail, vuln_host, vulns};

use std::collections::HashMap;

use askama::Template;
use dozor_model::{Alert, AlertStatus, Level, StoredEvent};
use serde_json::Value;

use crate::i18n::Tr;
use crate::url::segment;

/// Renders a template; a failure (only a formatter error could cause one) becomes a minimal
/// page instead of a panic.
pub(crate) fn render<T: Template>(t: &T) -> String {
    t.render().unwrap_or_else(|e| {
        format!(
            "<!DOCTYPE html><html><body><p>template error: {}</p></body></html>",
            crate::svg::esc(&e.to_string())
        )
    })
}

pub(crate) fn level_key(level: Level) -> &'static str {
    match level {
        Level::Informational => "level.informational",
        Level::Low => "level.low",
        Level::Medium => "level.medium",
        Level::High => "level.high",
        Level::Critical => "level.critical",
    }
}

pub(crate) fn status_key(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::New => "status.new",
        AlertStatus::Acknowledged => "status.acknowledged",
        AlertStatus::Resolved => "status.resolved",
        AlertStatus::FalsePositive => "status.false_positive",
    }
}

/// The button label of moving an alert to `to` from `from`.
pub(crate) fn action_key(from: AlertStatus, to: AlertStatus) -> &'static str {
    match to {
        AlertStatus::New if from == AlertStatus::Acknowledged => "action.unacknowledge",
        AlertStatus::New => "action.reopen",
        AlertStatus::Acknowledged => "action.acknowledge",
        AlertStatus::Resolved => "action.resolve",
        AlertStatus::FalsePositive => "action.false_positive",
    }
}

/// A level badge: CSS class and text.
#[derive(Debug, Clone)]
pub(crate) struct Badge {
    pub class: String,
    pub text: &'static str,
}

pub(crate) fn level_badge(tr: &Tr, level: Level) -> Badge {
    Badge {
        class: format!("lv lv-{}", level.as_str()),
        text: tr.t(level_key(level)),
    }
}

pub(crate) fn status_badge(tr: &Tr, status: AlertStatus) -> Badge {
    Badge {
        class: format!("st st-{}", status.as_str()),
        text: tr.t(status_key(status)),
    }
}

/// A point in time as pages show it: the formatted time, the relative time, ISO.
#[derive(Debug, Clone)]
pub(crate) struct When {
    pub text: String,
    pub ago: String,
    pub iso: String,
}

pub(crate) fn when(tr: &Tr, ms: i64) -> When {
    When {
        text: tr.dt(ms),
        ago: tr.ago(ms),
        iso: tr.iso(ms),
    }
}

/// The string at a dotted path of a document (numbers and booleans as text; arrays joined).
pub(crate) fn doc_str(doc: &Value, path: &str) -> Option<String> {
    let mut v = doc;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    value_text(v)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(value_text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    }
}

/// Shortens text to `max` characters with an ellipsis.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((i, _)) => format!("{}…", &text[..i]),
    }
}

/// One line that says what an event is about.
pub(crate) fn event_summary(doc: &Value) -> String {
    const PATHS: [&str; 12] = [
        "message",
        "process.command_line",
        "process.executable",
        "process.name",
        "file.path",
        "registry.path",
        "dns.question.name",
        "url.full",
        "winlog.event_data.CommandLine",
        "winlog.event_data.Image",
        "destination.ip",
        "user.name",
    ];
    let mut text = PATHS
        .iter()
        .find_map(|p| doc_str(doc, p))
        .unwrap_or_default();
    if let Some(user) = doc_str(doc, "user.name")
        && !text.contains(&user)
    {
        text = if text.is_empty() {
            user
        } else {
            format!("{text} · {user}")
        };
    }
    if let (Some(ip), Some(port)) = (
        doc_str(doc, "destination.ip"),
        doc_str(doc, "destination.port"),
    ) && !text.contains(&ip)
    {
        text = format!("{text} → {ip}:{port}");
    }
    clip(text.trim(), 240)
}

/// An event as the tables show it.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: String,
    pub when: When,
    pub agent: String,
    pub agent_href: Option<String>,
    pub kind: String,
    pub summary: String,
    pub json: String,
}

pub(crate) fn event_row(tr: &Tr, e: &StoredEvent, names: &HashMap<String, String>) -> EventRow {
    let category = doc_str(&e.doc, "event.category").unwrap_or_default();
    let action = doc_str(&e.doc, "event.action")
        .or_else(|| doc_str(&e.doc, "event.code"))
        .unwrap_or_default();
    let kind = match (category.is_empty(), action.is_empty()) {
        (false, false) => format!("{category} / {action}"),
        (false, true) => category,
        (true, false) => action,
        (true, true) => String::new(),
    };
    let host = doc_str(&e.doc, "host.name");
    let (agent, agent_href) = match &e.agent_id {
        Some(id) => (
            names
                .get(id)
                .cloned()
                .or(host)
                .unwrap_or_else(|| clip(id, 13)),
            Some(format!("/ui/agents/{}", segment(id))),
        ),
        None => (host.unwrap_or_default(), None),
    };
    EventRow {
        id: e.id.to_string(),
        when: when(tr, e.ts),
        agent,
        agent_href,
        kind,
        summary: event_summary(&e.doc),
        json: serde_json::to_string_pretty(&e.doc).unwrap_or_default(),
    }
}

/// An alert as the tables show it.
#[derive(Debug, Clone)]
pub(crate) struct AlertRow {
    pub id: i64,
    pub href: String,
    pub level: Badge,
    pub status: Badge,
    pub title: String,
    pub agent: String,
    pub agent_href: Option<String>,
    pub host: String,
    pub host_href: Option<String>,
    pub count: String,
    pub last_seen: When,
    pub detected: When,
    pub assignee: String,
}

pub(crate) fn alert_row(tr: &Tr, a: &Alert, names: &HashMap<String, String>) -> AlertRow {
    let (agent, agent_href) = match &a.agent_id {
        Some(id) => (
            names.get(id).cloned().unwrap_or_else(|| clip(id, 13)),
            Some(format!("/ui/agents/{}", segment(id))),
        ),
        None => (String::new(), None),
    };
    AlertRow {
        id: a.id,
        href: format!("/ui/alerts/{}", a.id),
        level: level_badge(tr, a.level),
        status: status_badge(tr, a.status),
        title: a.rule_title.clone(),
        agent,
        agent_href,
        host: a.host.clone().unwrap_or_default(),
        host_href: a.host.as_deref().map(hosts::host_href),
        count: tr.num(a.count),
        last_seen: when(tr, a.last_seen),
        detected: when(tr, a.created_at),
        assignee: a.assignee.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries() {
        let d =
            json!({"process": {"command_line": "powershell -enc AAA"}, "user": {"name": "bob"}});
        assert_eq!(event_summary(&d), "powershell -enc AAA · bob");
        let d =
            json!({"destination": {"ip": "10.0.0.1", "port": 445}, "process": {"name": "smb.exe"}});
        assert_eq!(event_summary(&d), "smb.exe → 10.0.0.1:445");
        assert_eq!(event_summary(&json!({})), "");
        assert_eq!(clip("абвгд", 3), "абв…");
        assert_eq!(
            doc_str(&json!({"a": {"b": [1, "x"]}}), "a.b").unwrap(),
            "1, x"
        );
    }
}
