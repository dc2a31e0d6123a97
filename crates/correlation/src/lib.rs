//! Sigma v2.1 correlation rules (meta-rules): parsing, reference resolution and a streaming
//! engine fed with detection-rule matches.
//!
//! ```text
//! YAML doc --parse_correlation--> CorrelationRule --resolve(base lookup)--> ResolvedCorrelation
//!                                                                              |
//! base-rule match (rule index, event, event ref) --on_match--> CorrelationEngine --> CorrelationHit
//!                                                    flush(now) / finish() -----^
//! ```
//!
//! This crate knows nothing of detection rules: the caller evaluates them and reports each
//! match with the rule's index. See `README.md` for the semantics chosen where the
//! specification is silent (window boundaries, when conditions are evaluated, resets,
//! lateness, chaining, value_percentile).

mod engine;
mod error;
mod resolve;
mod rule;

pub use engine::{
    CorrelationConfig, CorrelationEngine, CorrelationHit, CorrelationStats, MissingTimestamp,
};
pub use error::CorrelationError;
pub use resolve::{
    Resolution, ResolvedCorrelation, RuleRef, base_rules_without_standalone_output, resolve,
    resolve_with_field_map,
};
pub use rule::{
    CompareOp, Condition, CorrelationRule, CorrelationType, FieldAlias, Timespan, is_correlation,
    parse_correlation,
};
