//! Columns copied out of the event document at insert time.

use serde_json::Value;

/// `event.kind`, `event.category`, `event.action`, `event.code`, lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Derived {
    pub kind: Option<String>,
    pub categories: Vec<String>,
    pub action: Option<String>,
    pub code: Option<String>,
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
    let Some(event) = doc.get("event") else {
        return Derived::default();
    };
    let categories = match event.get("category") {
        Some(Value::Array(items)) => items.iter().filter_map(|v| scalar(Some(v))).collect(),
        other => scalar(other).into_iter().collect(),
    };
    Derived {
        kind: scalar(event.get("kind")),
        categories,
        action: scalar(event.get("action")),
        code: scalar(event.get("code")),
    }
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
        assert_eq!(
            derive(&json!({"event": {"category": "file"}})).categories,
            vec!["file"]
        );
    }
}
