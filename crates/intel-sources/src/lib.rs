//! Dozor's threat-intelligence sources: the I/O side of `dozor-intel`.
//!
//! Every source fetches or reads intelligence and turns it into [`dozor_intel::Ioc`] values
//! with their context (tags with TLP, confidence, first/last seen, expiry, the source's object
//! ids). Every source answers with one [`SyncBatch`]: the indicators, what was skipped and
//! why (never a silent drop), and the cursor for the next incremental sync.
//!
//! - [`misp::MispClient`]: MISP REST `attributes/restSearch` and `events/restSearch` with
//!   paging, `sightings/add`.
//! - [`feed`]: MISP feeds (`manifest.json`, `<uuid>.json`, `hashes.csv`) from a directory or
//!   a URL.
//! - [`stix`]: STIX 2.1 bundles (indicators with simple comparison patterns, observed-data).
//! - [`taxii::TaxiiClient`]: TAXII 2.1 discovery, collections and objects with `added_after`.
//! - [`list`]: CSV and freetext lists.
//! - [`export`]: a MISP feed writer and a STIX 2.1 bundle writer.
//! - [`document`]: one document handed over whole (an upload): MISP, STIX, CSV or freetext,
//!   told or sniffed.
//!
//! HTTP settings (custom CA, certificate pinning, proxy, timeouts) are in [`http`]; every
//! source as serde configuration with one `sync(cursor)` in [`source`].

pub mod document;
pub mod export;
pub mod feed;
pub mod http;
pub mod list;
pub mod misp;
mod misp_event;
pub mod source;
pub mod stix;
pub mod taxii;
mod time;

pub use dozor_intel::{Ioc, IocKind, IocSource};
pub use http::HttpSettings;
pub use source::{HttpConfig, Secret, SourceConfig, SourceSpec};

/// What one sync of a source produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncBatch {
    /// The indicators, with context (a MISP attribute of a composite type can give several).
    pub iocs: Vec<Ioc>,
    /// Objects that were read but not imported, each with the reason.
    pub skipped: Vec<Skipped>,
    /// Objects read and deliberately not imported because they are not indicators Dozor
    /// matches on (a MISP `link`, `comment` or `text` attribute, a deleted attribute), counted
    /// by reason. Not errors: they don't make a sync `partial`.
    pub ignored: std::collections::BTreeMap<String, u64>,
    /// The position for the next incremental sync (source-specific: a MISP timestamp, a
    /// TAXII `X-TAXII-Date-Added-Last`, …); `None` when the source has none.
    pub cursor: Option<String>,
}

impl SyncBatch {
    pub(crate) fn skip(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        let skipped = Skipped {
            object: object.into(),
            reason: reason.into(),
        };
        tracing::debug!(object = %skipped.object, reason = %skipped.reason, "intel object skipped");
        self.skipped.push(skipped);
    }

    pub(crate) fn ignore(&mut self, reason: impl Into<String>) {
        *self.ignored.entry(reason.into()).or_default() += 1;
    }

    /// How many objects were ignored, whatever the reason.
    pub fn ignored_total(&self) -> u64 {
        self.ignored.values().sum()
    }

    /// Appends another batch's indicators, skips and ignores; its cursor wins when it has one.
    pub fn extend(&mut self, other: SyncBatch) {
        self.iocs.extend(other.iocs);
        self.skipped.extend(other.skipped);
        for (reason, n) in other.ignored {
            *self.ignored.entry(reason).or_default() += n;
        }
        if other.cursor.is_some() {
            self.cursor = other.cursor;
        }
    }
}

/// An object a source read and did not import: a MISP attribute uuid, a STIX id, `line 17`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub object: String,
    pub reason: String,
}

/// What can make a whole sync fail (a bad object only lands in [`SyncBatch::skipped`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The server refused the credentials (401/403); `message` is what it said.
    #[error("{url}: authentication failed (HTTP {status}): {message}")]
    Auth {
        url: String,
        status: u16,
        message: String,
    },
    /// Any other non-success status, with the start of the body.
    #[error("{url}: HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    /// The TLS handshake failed (unknown CA, pin mismatch, bad name, …).
    #[error("{url}: TLS: {reason}")]
    Tls { url: String, reason: String },
    /// A response body larger than `HttpSettings::max_body_bytes`.
    #[error("{url}: the response is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: timed out")]
    Timeout { url: String },
    /// Connection refused, DNS, proxy and other transport errors.
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    /// A document that is not what the source format says. `at` is a JSON pointer
    /// (`/response/3/Attribute`) or a line (`line 17`).
    #[error("{origin}: malformed document at {at}: {reason}")]
    Malformed {
        origin: String,
        at: String,
        reason: String,
    },
    /// Bad settings (an unreadable CA file, a pin that is not 64 hex digits, a bad URL, …).
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn malformed(
        origin: impl Into<String>,
        at: impl Into<String>,
        reason: impl Into<String>,
    ) -> SourceError {
        SourceError::Malformed {
            origin: origin.into(),
            at: at.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> SourceError {
        SourceError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The first `max` characters of `s` (on a char boundary), with `…` when cut.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Adds `tag` to `tags` unless it is there.
pub(crate) fn push_tag(tags: &mut Vec<String>, tag: &str) {
    if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_owned());
    }
}
