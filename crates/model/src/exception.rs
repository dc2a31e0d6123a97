//! Alert exceptions: a rule's matches on events with given field values are counted, not
//! alerted (a known admin script, a scanner host), until the exception expires or is removed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Conditions per exception at most.
pub const MAX_EXCEPTION_CONDITIONS: usize = 10;
/// Longest field name of a condition, bytes.
pub const MAX_EXCEPTION_FIELD: usize = 128;
/// Longest value of a condition, characters.
pub const MAX_EXCEPTION_VALUE: usize = 4096;
/// Longest reason, characters.
pub const MAX_EXCEPTION_REASON: usize = 2000;

/// `field` equals `value` (any letter case; a list field matches when one element does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExceptionCondition {
    /// Dotted field path of the normalized event (`host.name`, `process.command_line`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[A-Za-z0-9._@-]{1,128}$",
            min_length = 1,
            max_length = 128
        )
    )]
    pub field: String,
    /// The value it must have (not blank).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 4096)
    )]
    pub value: String,
}

/// An exception to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewException {
    /// The rule whose matches it suppresses.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S", min_length = 1))]
    pub rule_id: String,
    /// All must hold (1 to [`MAX_EXCEPTION_CONDITIONS`]).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 10))]
    pub conditions: Vec<ExceptionCondition>,
    /// Why (required: the next analyst reads it).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 2000)
    )]
    pub reason: String,
    /// Until when, ms; `None`: until removed. A time already past makes an exception that
    /// suppresses nothing (listed as expired).
    #[serde(default, deserialize_with = "integral_ms")]
    pub expires_at: Option<i64>,
}

/// A time in ms written as any JSON integer, `516` or `516.0` alike (JSON Schema counts both
/// as integers; serde's `i64` takes only the first).
fn integral_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(D::Error::custom(format!(
            "expires_at must be a whole number of milliseconds, got {n}"
        ))),
    }
}

/// A stored exception with what it has suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertException {
    /// Id.
    pub id: i64,
    /// The rule whose matches it suppresses.
    pub rule_id: String,
    /// All must hold.
    pub conditions: Vec<ExceptionCondition>,
    /// Why.
    pub reason: String,
    /// Who made it.
    pub created_by: String,
    /// When, ms.
    pub created_at: i64,
    /// Until when, ms; `None`: until removed.
    pub expires_at: Option<i64>,
    /// Matches suppressed so far.
    pub suppressed: i64,
    /// The latest suppressed match, ms (wall clock).
    pub last_suppressed_at: Option<i64>,
}

impl AlertException {
    /// In force at `now`?
    pub fn active_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

fn field<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = doc;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

fn equals(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s.trim().to_lowercase() == want.trim().to_lowercase(),
        Value::Number(n) => n.to_string() == want.trim(),
        Value::Bool(b) => b.to_string() == want.trim().to_lowercase(),
        Value::Array(items) => items.iter().any(|i| equals(i, want)),
        _ => false,
    }
}

/// Does the event hold every condition?
pub fn exception_matches(conditions: &[ExceptionCondition], doc: &Value) -> bool {
    !conditions.is_empty()
        && conditions
            .iter()
            .all(|c| field(doc, &c.field).is_some_and(|v| equals(v, &c.value)))
}

/// What is wrong with an exception to create, said for a person; `None` when it is fine.
pub fn exception_problem(e: &NewException) -> Option<String> {
    if e.rule_id.trim().is_empty() {
        return Some("rule_id is empty".into());
    }
    if e.conditions.is_empty() {
        return Some(
            "an exception needs at least one condition (field and value): \
             suppressing a whole rule is switching it off"
                .into(),
        );
    }
    if e.conditions.len() > MAX_EXCEPTION_CONDITIONS {
        return Some(format!(
            "at most {MAX_EXCEPTION_CONDITIONS} conditions, got {}",
            e.conditions.len()
        ));
    }
    for (i, c) in e.conditions.iter().enumerate() {
        let f = c.field.trim();
        if f.is_empty()
            || f.len() > MAX_EXCEPTION_FIELD
            || !f
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '@'))
        {
            return Some(format!(
                "condition {}: field {:?} must be a dotted field name of 1 to {MAX_EXCEPTION_FIELD} letters, digits, `.`, `_`, `-`",
                i + 1,
                c.field
            ));
        }
        if c.value.trim().is_empty() || c.value.chars().count() > MAX_EXCEPTION_VALUE {
            return Some(format!(
                "condition {} ({f}): the value must be 1 to {MAX_EXCEPTION_VALUE} characters, not blank",
                i + 1
            ));
        }
    }
    if e.reason.trim().is_empty() || e.reason.chars().count() > MAX_EXCEPTION_REASON {
        return Some(format!(
            "reason: say why, in 1 to {MAX_EXCEPTION_REASON} characters"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(field: &str, value: &str) -> ExceptionCondition {
        ExceptionCondition {
            field: field.into(),
            value: value.into(),
        }
    }

    #[test]
    fn every_condition_must_hold_in_any_letter_case() {
        let doc = json!({"host": {"name": "WS-01"}, "user": {"name": "svc_backup"},
                         "event": {"code": "4688", "category": ["process", "start"]},
                         "process": {"pid": 42}});
        assert!(exception_matches(&[cond("host.name", "ws-01")], &doc));
        assert!(exception_matches(
            &[cond("host.name", "ws-01"), cond("user.name", "SVC_BACKUP")],
            &doc
        ));
        assert!(!exception_matches(
            &[cond("host.name", "ws-01"), cond("user.name", "ivan")],
            &doc
        ));
        assert!(exception_matches(&[cond("event.category", "start")], &doc));
        assert!(exception_matches(&[cond("process.pid", "42")], &doc));
        assert!(!exception_matches(&[cond("process.name", "x")], &doc));
        assert!(
            !exception_matches(&[], &doc),
            "no condition is not everything"
        );
    }

    #[test]
    fn expiry_takes_any_json_integer() {
        let parse = |text: &str| serde_json::from_str::<NewException>(text);
        let body =
            |t: &str| format!(r#"{{"rule_id":"r","conditions":[],"reason":"x","expires_at":{t}}}"#);
        assert_eq!(parse(&body("516")).unwrap().expires_at, Some(516));
        assert_eq!(parse(&body("516.0")).unwrap().expires_at, Some(516));
        assert_eq!(parse(&body("null")).unwrap().expires_at, None);
        assert!(parse(&body("516.5")).is_err());
        assert!(parse(&body("1e300")).is_err());
        let none = r#"{"rule_id":"r","conditions":[],"reason":"x"}"#;
        assert_eq!(parse(none).unwrap().expires_at, None);
    }

    #[test]
    fn problems_are_said_plainly() {
        let ok = NewException {
            rule_id: "r".into(),
            conditions: vec![cond("host.name", "ws-01")],
            reason: "the backup job".into(),
            expires_at: Some(2_000),
        };
        assert_eq!(exception_problem(&ok), None);
        let mut e = ok.clone();
        e.conditions.clear();
        assert!(
            exception_problem(&e)
                .unwrap()
                .contains("at least one condition")
        );
        let mut e = ok.clone();
        e.conditions[0].field = "host name; DROP".into();
        assert!(exception_problem(&e).unwrap().contains("condition 1"));
        let mut e = ok.clone();
        e.reason = " ".into();
        assert!(exception_problem(&e).unwrap().contains("reason"));
        // Already expired: inert, not refused (the list shows it as expired).
        assert_eq!(exception_problem(&ok), None);
    }
}
