//! What the per-entity models report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The stretch of history a finding was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// First and last observation time of the entity (unix seconds).
    pub first_seen: i64,
    pub last_seen: i64,
    /// Observations (values, logons, counted events) behind the baseline.
    pub observations: u64,
    /// Distinct UTC days with observations.
    pub distinct_days: u32,
}

/// One anomaly. `message` is English for logs and the CLI; `kind` plus `details` carry the
/// same facts machine-readably so a UI can word (and translate) it itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Model-configured kind, e.g. `rare_process`, `unusual_logon_hour`, `failed_logon_burst`.
    pub kind: String,
    /// Entity field and value, e.g. `host.name` / `web-01`.
    pub entity_field: String,
    pub entity: String,
    /// Time of the scored observation (unix seconds; bucket start for counts).
    pub time: i64,
    /// 0..1, higher is more anomalous; compare against the model's threshold.
    pub score: f64,
    pub observed: String,
    pub expected: String,
    pub baseline: Baseline,
    /// Field names that contributed (e.g. `process.name`).
    pub features: Vec<String>,
    pub message: String,
    pub details: BTreeMap<String, String>,
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub(crate) fn format_utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let second_of_day = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Year, month, day of a day count since 1970-01-01, by 400-year eras (146,097 days each).
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    // Shift to 0000-03-01 so the leap day is the last day of the (March-based) year.
    let shifted = days_since_epoch + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_767_571_200 + 3_723), "2026-01-05T01:02:03Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }
}
