//! Operations: the changes operators and agents make (alert workflow, rules, users, tokens,
//! agents), each written once — input limits, the store call, the audit entry — and called by
//! both the JSON API and the dashboard's form actions. They return domain errors
//! ([`OpError`]); HTTP is mapped in one place ([`From<OpError> for Problem`]) and the
//! dashboard maps the same errors to its pages and flash messages (`ui::common`).
//!
//! Below every handler module: nothing here imports `api`, `ui` or `ingest`.

pub mod agents;
pub mod alerts;
pub mod anomaly;
pub mod exceptions;
pub mod incidents;
pub mod rules;
pub mod saved_searches;
pub mod tokens;
pub mod users;

use axum::http::StatusCode;
use dozor_store::{Store, StoreError};

use crate::problem::Problem;

/// Why an operation did not happen (or, for [`OpError::AuditFailed`], happened without its
/// audit entry).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The thing to change does not exist (`what`: "alert 5", "user 7", ...).
    #[error("no {0}")]
    NotFound(String),
    /// A required field is empty (which one).
    #[error("{0} is empty")]
    Missing(&'static str),
    /// The input is not acceptable: which field, and why.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The change is refused in the current state (a name taken, the last administrator).
    /// `slug` names the case for machines.
    #[error("{message}")]
    Refused { slug: &'static str, message: String },
    /// The caller may not do this (beyond what its role already excludes).
    #[error("{0}")]
    Forbidden(String),
    /// The change is made, but the audit log could not record it.
    #[error("the change was made but could not be written to the audit log")]
    AuditFailed,
    /// The store refused or failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        match e {
            StoreError::NotFound(what) => OpError::NotFound(what),
            other => OpError::Store(other),
        }
    }
}

impl OpError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> OpError {
        OpError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The HTTP answer to a failed operation — the only place operations meet HTTP.
impl From<OpError> for Problem {
    fn from(e: OpError) -> Problem {
        match e {
            OpError::NotFound(what) => not_found(&what),
            OpError::Missing(field) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            )
            .detail(format!("{field} is empty"))
            .with("field", field),
            OpError::Invalid { field, message } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            )
            .detail(message)
            .with("field", field),
            OpError::Refused { slug, message } => {
                Problem::new(StatusCode::CONFLICT, slug, "Refused").detail(message)
            }
            OpError::Forbidden(why) => Problem::forbidden(why),
            OpError::AuditFailed => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "audit-failed",
                "Audit log unavailable",
            )
            .detail("the change was made but could not be written to the audit log")
            .with("applied", true),
            OpError::Store(e) => store_problem(e),
        }
    }
}

/// 404 `not-found`: "no {what}".
pub fn not_found(what: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("no {what}"))
}

/// A store error as a problem: query syntax → 400 with the column, bad cursor → 400, not
/// found → 404, workflow → 409, a search cut off by its timeout → 503; the database's own errors are logged and answered 500
/// without details.
pub fn store_problem(e: StoreError) -> Problem {
    match e {
        StoreError::Query(q) => {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "Invalid query")
                .detail(q.to_string())
                .with("column", q.column)
                .with("reason", &q.message)
        }
        StoreError::InvalidCursor => {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-cursor", "Invalid cursor").detail(
                "the cursor was not produced by this server for this listing (or was altered)",
            )
        }
        StoreError::InvalidArgument(why) => Problem::bad_request("invalid-argument", why),
        e @ StoreError::SearchTimeout(_) => Problem::unavailable(
            "search-timeout",
            e.to_string(),
            std::time::Duration::from_secs(5),
        ),
        StoreError::NotFound(what) => not_found(&what),
        StoreError::InvalidTransition { id, from, to } => {
            let allowed: Vec<&str> = from
                .parse::<dozor_store::AlertStatus>()
                .map(|f| {
                    dozor_store::AlertStatus::ALL
                        .into_iter()
                        .filter(|t| f.can_change_to(*t))
                        .map(|t| t.as_str())
                        .collect()
                })
                .unwrap_or_default();
            Problem::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Invalid status change",
            )
            .detail(format!("alert {id} can't go from {from} to {to}"))
            .with("from", &from)
            .with("to", &to)
            .with("allowed", allowed)
        }
        other => {
            tracing::error!("store: {other}");
            Problem::internal("the store failed; see the server log")
        }
    }
}

/// Records a change that was made: [`OpError::AuditFailed`] when the log can't take it.
pub async fn audited(
    store: &dyn Store,
    actor: &str,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), OpError> {
    if crate::audit::append_audit(store, actor, action, target, details).await {
        Ok(())
    } else {
        Err(OpError::AuditFailed)
    }
}

/// `text` trimmed, `None` when empty.
pub fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}
