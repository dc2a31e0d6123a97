//! Per-rule state kept beside the rule files.

use serde::{Deserialize, Serialize};

/// Per-rule state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// Rule id.
    pub rule_id: String,
    /// Whether the rule runs.
    pub enabled: bool,
    /// Detections recorded.
    pub hit_count: i64,
    /// Event time of the latest detection, ms.
    pub last_hit: Option<i64>,
    /// Last changed, ms.
    pub updated_at: i64,
}
