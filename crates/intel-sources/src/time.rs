//! Time stamps of the source formats, as milliseconds since the Unix epoch.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// A MISP epoch-seconds timestamp: a number or a string of digits.
pub(crate) fn epoch_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An RFC 3339 / ISO 8601 time (`2021-08-24T10:53:13Z`, `…+00:00`, `2021-08-24 10:53:13`,
/// `2021-08-24`) in milliseconds.
pub(crate) fn iso_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// A JSON value holding an ISO time string, in milliseconds.
pub(crate) fn iso_value_ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str).and_then(iso_ms)
}

/// Milliseconds as STIX's RFC 3339 form (`2016-04-06T20:03:00.000Z`).
pub(crate) fn ms_to_rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_sources_use() {
        assert_eq!(iso_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(iso_ms("1970-01-01T00:00:01.500+00:00"), Some(1500));
        assert_eq!(iso_ms("1970-01-01 00:00:02"), Some(2000));
        assert_eq!(iso_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(iso_ms("yesterday"), None);
        assert_eq!(epoch_seconds(&Value::from("12")), Some(12));
        assert_eq!(ms_to_rfc3339(1500), "1970-01-01T00:00:01.500Z");
    }
}
