//! Errors returned by the store.

use crate::query::QueryError;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (driver, pool, connection or SQL) failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The event search query could not be parsed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A pagination cursor was not produced by this store (or was altered).
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// An argument is outside what the store accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An object with this key already exists (e.g. an agent id).
    #[error("{0} already exists")]
    Conflict(String),
    /// The alert workflow does not allow this status change.
    #[error("alert {id}: status cannot change from {from} to {to}")]
    InvalidTransition {
        /// Alert id.
        id: i64,
        /// Current status.
        from: String,
        /// Requested status.
        to: String,
    },
    /// A row holds a value this version of the store cannot read.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// Creating the data directory failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A search ran longer than the store's search timeout and was cancelled.
    #[error("the search took longer than {}s and was cancelled; narrow it (time range, agent, query)", .0.as_secs_f64())]
    SearchTimeout(std::time::Duration),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A name that is no level, status or role, given where an argument was expected (a row
/// holding one is reported as [`StoreError::Corrupt`] instead, where it is read).
impl From<dozor_model::ParseError> for StoreError {
    fn from(e: dozor_model::ParseError) -> Self {
        StoreError::InvalidArgument(e.to_string())
    }
}
