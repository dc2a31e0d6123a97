//! Dozor's behavioural anomaly detection engine.
//!
//! - [`IsolationForest`]: unsupervised outlier scores over numeric feature rows, with
//!   per-feature attribution and plain-words explanations.
//! - Per-entity models in the style of Elastic ML jobs: [`RareValueModel`] (first-seen and
//!   rare values per entity), [`UnusualHourModel`] (hour-of-week profile per entity) and
//!   [`CountBurstModel`] (counts per time bucket against a robust baseline). Each returns a
//!   [`Finding`] with an English explanation plus machine-readable kind and key/values.
//! - [`ModelFile`]: versioned save/load of any set of models.
//! - [`Detector`]: all of them fed from normalized events, plus an isolation forest over
//!   per-(host, hour) feature rows ([`host_hours`]).
//! - [`generator`]: a deterministic, labelled telemetry generator for tests and evaluation.
//!
//! Pure computation: no clock, files or sockets. Time is always passed in (unix seconds), so
//! every result is reproducible. See the README for inputs, outputs and measured quality.

mod detector;
mod entity;
mod finding;
mod forest;
pub mod generator;
pub mod host_hours;
mod model_file;
mod rng;
mod stats;

pub use detector::{Activity, Detector, ModelSummary};
pub use entity::{
    CountBurstConfig, CountBurstModel, RareValueConfig, RareValueModel, UnusualHourConfig,
    UnusualHourModel, hour_of_week,
};
pub use finding::{Baseline, Finding};
pub use forest::{Explanation, FeatureExplanation, FeatureSummary, ForestParams, IsolationForest};
pub use host_hours::{
    HOST_HOUR_FEATURES, HOST_HOUR_WIDTH, HostActivityConfig, HostActivityState, HostHour,
    HostHourRow, OpenHostHour, host_hour_feature_names,
};
pub use model_file::{
    FORMAT_VERSION, MAGIC, Model, ModelFile, NamedModel, OpenCount, TrainingSpan,
};
pub use rng::SplitMix64;
pub use stats::roc_auc;

/// What can go wrong when training, scoring or loading models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnomalyError {
    /// Training needs at least one row.
    #[error("no training rows: the model needs at least one row")]
    EmptyInput,
    /// Rows have no columns at all.
    #[error("rows have no features: the model needs at least one column")]
    NoFeatures,
    /// A row whose length differs from the first row's.
    #[error("row {row} has {found} values but the first row has {expected}")]
    RaggedRow {
        row: usize,
        found: usize,
        expected: usize,
    },
    /// NaN or an infinity in the training data; `what` says which.
    #[error("row {row}, column {column} (`{name}`) is {what}: features must be finite numbers")]
    NonFinite {
        row: usize,
        column: usize,
        name: String,
        what: &'static str,
    },
    /// A row to score or explain whose length is not the model's.
    #[error("the model has {expected} features but the row has {found}")]
    DimensionMismatch { expected: usize, found: usize },
    /// A parameter outside its range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// The bytes do not start with the model file magic.
    #[error("not a Dozor anomaly model file (the magic header `DOZORAML` is missing)")]
    BadMagic,
    /// A model file written by a newer (or unknown) format version.
    #[error(
        "model file format version {found} is not supported (this build reads versions 1 to {supported}); upgrade Dozor or retrain the models"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    /// The payload of a model file does not decode or is inconsistent.
    #[error("corrupt model file: {0}")]
    Corrupt(String),
    /// Reading or writing the model file failed.
    #[error("model file I/O: {0}")]
    Io(String),
}
