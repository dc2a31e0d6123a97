//! Errors of the bus.

use std::error::Error as StdError;

/// A boxed error from a backend's client library.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What can go wrong on the bus.
///
/// `Full` and `Unavailable` are transient: the caller (the ingest) answers
/// `503` with `Retry-After` and the agent keeps the batch in its spool.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The queue is at capacity (messages or bytes). Back-pressure: retry later.
    #[error("bus is full")]
    Full,

    /// One message is larger than the queue could ever hold.
    #[error("message of {size} bytes exceeds the bus limit of {max} bytes")]
    TooLarge {
        /// Size of the rejected payload.
        size: usize,
        /// The limit it exceeded.
        max: usize,
    },

    /// The configuration cannot work (empty names, zero capacity, bad URL...).
    #[error("invalid bus configuration: {0}")]
    Config(String),

    /// The backend cannot be reached right now (connection lost, timeout).
    /// The client reconnects by itself; retry later.
    #[error("{backend} bus unavailable: {source}")]
    Unavailable {
        /// Which backend.
        backend: &'static str,
        /// The client library's error.
        #[source]
        source: BoxError,
    },

    /// The backend answered with an error that retrying will not fix by itself.
    #[error("{backend} bus error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The client library's error.
        #[source]
        source: BoxError,
    },

    /// A delivery id handed to `ack` was not made by this backend.
    #[error("delivery id {0} does not belong to the {1} bus")]
    ForeignId(String, &'static str),
}

impl BusError {
    /// True when the same call may succeed later without any change
    /// (`Full`, `Unavailable`).
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Full | BusError::Unavailable { .. })
    }

    pub(crate) fn unavailable(backend: &'static str, source: impl Into<BoxError>) -> Self {
        BusError::Unavailable {
            backend,
            source: source.into(),
        }
    }

    pub(crate) fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        BusError::Backend {
            backend,
            source: source.into(),
        }
    }
}
