//! Columns copied out of the event document at insert time.

use serde_json::Value;

/// `event.kind`, `event.category`, `event.action`, `event.code`, `host.name`,
/// `process.entity_id`, `process.parent.entity_id` and the fields analysts filter on most
/// (`user.name`, `process.name`, `source.ip`, `destination.ip`), lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Derived {
    pub kind: Option<String>,
    pub categories: Vec<String>,
    pub action: Option<String>,
    pub code: Option<String>,
    pub host_name: Option<String>,
    pub entity_id: Option<String>,
    pub parent_entity_id: Option<String>,
    pub user_name: Option<String>,
    pub process_name: Option<String>,
    pub source_ip: Option<String>,
    pub destination_ip: Option<String>,
}

const MAX_COLUMN_LEN: usize = 256;

fn scalar(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let s = s.to_lowercase();
    if s.is_empty() || s.len() > MAX_COLUMN_LEN {
        return None;
    }
    Some(s)
}

pub(crate) fn derive(doc: &Value) -> Derived {
    let at = |path: &[&str]| {
        let mut v = doc;
        for key in path {
            v = v.get(key)?;
        }
        Some(v)
    };
    let process = |path: &[&str]| scalar(at(&[&["process"], path].concat()));
    let mut d = Derived {
        host_name: scalar(at(&["host", "name"])),
        entity_id: process(&["entity_id"]),
        parent_entity_id: process(&["parent", "entity_id"]),
        user_name: scalar(at(&["user", "name"])),
        process_name: process(&["name"]),
        source_ip: scalar(at(&["source", "ip"])),
        destination_ip: scalar(at(&["destination", "ip"])),
        ..Derived::default()
    };
    let Some(event) = doc.get("event") else {
        return d;
    };
    d.categories = match event.get("category") {
        Some(Value::Array(items)) => items.iter().filter_map(|v| scalar(Some(v))).collect(),
        other => scalar(other).into_iter().collect(),
    };
    d.kind = scalar(event.get("kind"));
    d.action = scalar(event.get("action"));
    d.code = scalar(event.get("code"));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn derives_columns() {
        let d = derive(
            &json!({"event": {"kind": "Event", "category": ["Process", "x"], "code": 4688}}),
        );
        assert_eq!(d.kind.as_deref(), Some("event"));
        assert_eq!(d.categories, vec!["process", "x"]);
        assert_eq!(d.code.as_deref(), Some("4688"));
        assert_eq!(d.action, None);
        assert_eq!(derive(&json!([1, 2])), Derived::default());
        let d = derive(&json!({"host": {"name": "WS-01"},
                               "process": {"entity_id": "{AB-1}", "parent": {"entity_id": 7}}}));
        assert_eq!(d.host_name.as_deref(), Some("ws-01"));
        assert_eq!(d.entity_id.as_deref(), Some("{ab-1}"));
        assert_eq!(d.parent_entity_id.as_deref(), Some("7"));
        assert_eq!(d.kind, None);
        let d = derive(
            &json!({"user": {"name": "Администратор"}, "process": {"name": "CMD.EXE"},
                               "source": {"ip": "10.0.0.1"}, "destination": {"ip": "FE80::1"}}),
        );
        assert_eq!(d.user_name.as_deref(), Some("администратор"));
        assert_eq!(d.process_name.as_deref(), Some("cmd.exe"));
        assert_eq!(d.source_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(d.destination_ip.as_deref(), Some("fe80::1"));
        let d =
            derive(&json!({"user": {"name": ["a", "b"]}, "process": {"name": "x".repeat(257)}}));
        assert_eq!((d.user_name, d.process_name), (None, None));
        let d = derive(&json!({"host": {"name": ["a", "b"]}, "process": {"entity_id": ""}}));
        assert_eq!((d.host_name, d.entity_id), (None, None));
        assert_eq!(
            derive(&json!({"event": {"category": "file"}})).categories,
            vec!["file"]
        );
    }
}
