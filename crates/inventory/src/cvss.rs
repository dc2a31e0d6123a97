//! CVSS base scores from vectors (v3.0/v3.1 and v2), the specifications' formulas.
//! CVSS v4 vectors are kept as written without a computed score: v4 scores come from a large
//! lookup table, which this crate does not carry.

/// The base score of a CVSS v3.x vector (`CVSS:3.1/AV:N/AC:L/...`); `None` when a base metric
/// is missing or has an unknown value.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.trim().split('/');
    let version = parts.next()?;
    if version != "CVSS:3.1" && version != "CVSS:3.0" {
        return None;
    }
    let (mut av, mut ac, mut pr, mut ui, mut scope_changed, mut c, mut i, mut a) =
        (None, None, None, None, None, None, None, None);
    for part in parts {
        let (metric, value) = part.split_once(':')?;
        match metric {
            "AV" => {
                av = Some(pick(
                    value,
                    &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)],
                )?)
            }
            "AC" => ac = Some(pick(value, &[("L", 0.77), ("H", 0.44)])?),
            "PR" => pr = Some(value),
            "UI" => ui = Some(pick(value, &[("N", 0.85), ("R", 0.62)])?),
            "S" => scope_changed = Some(pick(value, &[("U", 0.0), ("C", 1.0)])? > 0.5),
            "C" => c = Some(pick(value, &IMPACT3)?),
            "I" => i = Some(pick(value, &IMPACT3)?),
            "A" => a = Some(pick(value, &IMPACT3)?),
            // Temporal and environmental metrics do not change the base score.
            _ => {}
        }
    }
    let scope_changed = scope_changed?;
    let pr = if scope_changed {
        pick(pr?, &[("N", 0.85), ("L", 0.68), ("H", 0.5)])?
    } else {
        pick(pr?, &[("N", 0.85), ("L", 0.62), ("H", 0.27)])?
    };
    let iss = 1.0 - (1.0 - c?) * (1.0 - i?) * (1.0 - a?);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av? * ac? * pr * ui?;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(round_up_v31(raw))
}

const IMPACT3: [(&str, f64); 3] = [("H", 0.56), ("L", 0.22), ("N", 0.0)];

fn pick(value: &str, table: &[(&str, f64)]) -> Option<f64> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, weight)| *weight)
}

/// CVSS v3.1's Roundup: the smallest one-decimal number >= the input, computed on integers so
/// that floating-point noise (4.000000001) does not round up.
fn round_up_v31(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    }
}

/// The base score of a CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, optionally in
/// parentheses or prefixed `CVSS:2.0/`).
pub fn cvss2_base_score(vector: &str) -> Option<f64> {
    let vector = vector.trim().trim_start_matches('(').trim_end_matches(')');
    let vector = vector.strip_prefix("CVSS:2.0/").unwrap_or(vector);
    let (mut av, mut ac, mut au, mut c, mut i, mut a) = (None, None, None, None, None, None);
    for part in vector.split('/') {
        let (metric, value) = part.split_once(':')?;
        let impact = [("N", 0.0), ("P", 0.275), ("C", 0.660)];
        match metric {
            "AV" => av = Some(pick(value, &[("L", 0.395), ("A", 0.646), ("N", 1.0)])?),
            "AC" => ac = Some(pick(value, &[("H", 0.35), ("M", 0.61), ("L", 0.71)])?),
            "Au" => au = Some(pick(value, &[("M", 0.45), ("S", 0.56), ("N", 0.704)])?),
            "C" => c = Some(pick(value, &impact)?),
            "I" => i = Some(pick(value, &impact)?),
            "A" => a = Some(pick(value, &impact)?),
            _ => {}
        }
    }
    let impact = 10.41 * (1.0 - (1.0 - c?) * (1.0 - i?) * (1.0 - a?));
    let exploitability = 20.0 * av? * ac? * au?;
    let f_impact = if impact == 0.0 { 0.0 } else { 1.176 };
    let score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact;
    Some((score * 10.0).round() / 10.0)
}

/// The qualitative rating of a score (CVSS v3 table; used for v2 and other scores too).
pub fn severity_of_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::None
    }
}

/// A qualitative severity, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Reads the words feeds use (GitHub `MODERATE`, Red Hat `Important`, Debian urgencies,
    /// Ubuntu priorities); `None` for words with no rating (`unknown`, `not yet assigned`).
    pub fn from_word(word: &str) -> Option<Severity> {
        match word.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" | "important" => Some(Severity::High),
            "medium" | "moderate" => Some(Severity::Medium),
            "low" | "negligible" | "unimportant" => Some(Severity::Low),
            "none" => Some(Severity::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_known_scores() {
        // Scores as the FIRST calculator gives them.
        for (vector, expected) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2),
            ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O", 9.8),
        ] {
            assert_eq!(cvss3_base_score(vector), Some(expected), "{vector}");
        }
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L"), None);
        assert_eq!(
            cvss3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            None
        );
        assert_eq!(cvss3_base_score("CVSS:4.0/AV:N"), None);
    }

    #[test]
    fn cvss2_known_scores() {
        assert_eq!(cvss2_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), Some(7.5));
        assert_eq!(cvss2_base_score("AV:N/AC:L/Au:N/C:C/I:C/A:C"), Some(10.0));
        assert_eq!(cvss2_base_score("AV:N/AC:M/Au:N/C:N/I:P/A:N"), Some(4.3));
        assert_eq!(cvss2_base_score("(AV:L/AC:L/Au:N/C:C/I:C/A:C)"), Some(7.2));
        assert_eq!(cvss2_base_score("AV:N/AC:L/Au:N/C:N/I:N/A:N"), Some(0.0));
        assert_eq!(cvss2_base_score("AV:N/AC:L"), None);
    }

    #[test]
    fn words_and_scores() {
        assert_eq!(Severity::from_word("MODERATE"), Some(Severity::Medium));
        assert_eq!(Severity::from_word("Important"), Some(Severity::High));
        assert_eq!(Severity::from_word("unknown"), None);
        assert_eq!(severity_of_score(9.8), Severity::Critical);
        assert_eq!(severity_of_score(7.0), Severity::High);
        assert_eq!(severity_of_score(0.0), Severity::None);
    }
}
