//! The audit log as it is read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, ms.
    pub at: i64,
    /// Who (user name, token name, `system`).
    pub actor: String,
    /// What (`alert.status`, `token.create`, ...).
    pub action: String,
    /// On what (`alert:42`, ...).
    pub target: Option<String>,
    /// Details.
    pub details: Value,
}

/// Audit listing filter; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// `at >= from`.
    pub from: Option<i64>,
    /// `at < to`.
    pub to: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only records with `id < before_id` (pagination: pass the last id seen).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}
