//! Dozor's threat-intelligence core: indicator (IOC) kinds and MISP type mapping,
//! normalization, the matcher index, the observables of an event, and MISP warninglists.
//!
//! Pure computation: no files, network or database. Callers read feeds and warninglist files
//! and hand their text over; see the README.

mod extract;
mod index;
mod ioc;
mod kind;
mod normalize;
mod warninglist;

pub use extract::{Observable, observables};
pub use index::{IocId, IocIndex, IocIndexBuilder, Match};
pub use ioc::{Ioc, IocSource};
pub use kind::{IocKind, KindSet, misp_parts, split_misp_value, supported_misp_types};
pub use normalize::{
    Net, Normalized, UrlParts, normalize, normalize_domain, normalize_registry, normalize_url,
    parse_net, strip_scheme, url_parts,
};
pub use warninglist::{Warninglist, WarninglistType, Warninglists};

/// What can go wrong with intelligence input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntelError {
    /// A MISP attribute type Dozor does not match on (reported, never silently dropped).
    #[error("unsupported MISP attribute type `{misp_type}`")]
    UnsupportedMispType { misp_type: String },
    /// A value that is not a valid indicator of its kind.
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidValue {
        kind: String,
        value: String,
        reason: String,
    },
    /// A warninglist that could not be loaded; `origin` is what the caller called it (its file).
    #[error("warninglist {origin}: {reason}")]
    Warninglist { origin: String, reason: String },
    /// More indicators than the index addresses.
    #[error("IOC id {0} is too large (the index takes ids below 2^31)")]
    IdTooLarge(u32),
}
