//! Process trees from process events: who started the process of an alert, what it started,
//! and what its parent started besides it.
//!
//! Processes are linked by `process.entity_id` / `process.parent.entity_id` where the source
//! gives them (the agent, Sysmon's ProcessGuid / ParentProcessGuid), else by
//! `process.pid` / `process.parent.pid` on one host (Security 4688). Building the tree from
//! events is the caller's job (it searches the store); this module reads the events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One process as an event shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessNode {
    /// `process.entity_id` (agent's id, Sysmon's ProcessGuid), if the source has one.
    pub entity_id: Option<String>,
    /// `process.pid`.
    pub pid: Option<u64>,
    /// `process.parent.entity_id`.
    pub parent_entity_id: Option<String>,
    /// `process.parent.pid`.
    pub parent_pid: Option<u64>,
    /// `process.name` (or the file name of `process.executable`).
    pub name: String,
    /// `process.executable`.
    pub executable: Option<String>,
    /// `process.command_line`.
    pub command_line: Option<String>,
    /// `user.name`.
    pub user: Option<String>,
    /// The event's time, ms.
    pub ts: i64,
    /// The event's id.
    pub event_id: String,
}

/// A process with its ancestors (root first), the other children of its parent and its own
/// children, each list in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessTree {
    /// Parent, grandparent, … as far as the events go, the root first.
    pub ancestors: Vec<ProcessNode>,
    /// The process itself.
    pub focus: ProcessNode,
    /// Other processes its parent started.
    pub siblings: Vec<ProcessNode>,
    /// Processes it started.
    pub children: Vec<ProcessNode>,
}

impl ProcessTree {
    /// How many levels deep it goes (ancestors, the process, one level of children).
    pub fn depth(&self) -> usize {
        self.ancestors.len() + 1 + usize::from(!self.children.is_empty())
    }
}

fn text(doc: &Value, path: &[&str]) -> Option<String> {
    let mut v = doc;
    for p in path {
        v = v.get(p)?;
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(doc: &Value, path: &[&str]) -> Option<u64> {
    let mut v = doc;
    for p in path {
        v = v.get(p)?;
    }
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The process an event is about, if it names one (an entity id or a pid).
pub fn process_node(doc: &Value, ts: i64, event_id: &str) -> Option<ProcessNode> {
    let entity_id = text(doc, &["process", "entity_id"]);
    let pid = number(doc, &["process", "pid"]);
    if entity_id.is_none() && pid.is_none() {
        return None;
    }
    let executable = text(doc, &["process", "executable"]);
    let name = text(doc, &["process", "name"])
        .or_else(|| {
            executable
                .as_deref()
                .and_then(|e| e.rsplit(['\\', '/']).next())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Some(ProcessNode {
        entity_id,
        pid,
        parent_entity_id: text(doc, &["process", "parent", "entity_id"]),
        parent_pid: number(doc, &["process", "parent", "pid"]),
        name,
        executable,
        command_line: text(doc, &["process", "command_line"]),
        user: text(doc, &["user", "name"]),
        ts,
        event_id: event_id.to_owned(),
    })
}

/// Is this event a process start (the event that tells a process's command line and parent)?
pub fn is_process_start(doc: &Value) -> bool {
    let category = doc.pointer("/event/category");
    let process = match category {
        Some(Value::String(s)) => s == "process",
        Some(Value::Array(a)) => a.iter().any(|c| c == "process"),
        _ => false,
    };
    let types = doc.pointer("/event/type");
    let start = match types {
        Some(Value::String(s)) => s == "start",
        Some(Value::Array(a)) => a.iter().any(|t| t == "start"),
        _ => false,
    };
    (process && start)
        || doc.pointer("/event/action").and_then(Value::as_str) == Some("start")
        || matches!(
            (
                doc.pointer("/winlog/channel").and_then(Value::as_str),
                text(doc, &["event", "code"]).as_deref()
            ),
            (Some("Microsoft-Windows-Sysmon/Operational"), Some("1"))
                | (Some("Security"), Some("4688"))
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_from_sysmon_agent_and_security_events() {
        let sysmon = json!({
            "event": {"code": "1", "category": ["process"], "type": ["start"]},
            "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational"},
            "process": {"entity_id": "{A}", "pid": 42, "executable": "C:\\\\Windows\\\\cmd.exe",
                        "command_line": "cmd /c whoami", "parent": {"entity_id": "{P}", "pid": 7}},
            "user": {"name": "CORP\\\\ivan"}
        });
        let n = process_node(&sysmon, 5, "e1").unwrap();
        assert_eq!(n.name, "cmd.exe");
        assert_eq!(n.parent_entity_id.as_deref(), Some("{P}"));
        assert_eq!((n.pid, n.parent_pid), (Some(42), Some(7)));
        assert!(is_process_start(&sysmon));
        let security = json!({"event": {"code": 4688}, "winlog": {"channel": "Security"},
                              "process": {"pid": "100", "name": "x.exe", "parent": {"pid": 9}}});
        let n = process_node(&security, 1, "e2").unwrap();
        assert_eq!(
            (n.pid, n.parent_pid, n.entity_id),
            (Some(100), Some(9), None)
        );
        assert!(is_process_start(&security));
        assert!(process_node(&json!({"user": {"name": "x"}}), 0, "e3").is_none());
        assert!(!is_process_start(
            &json!({"event": {"category": "network"}})
        ));
    }
}
