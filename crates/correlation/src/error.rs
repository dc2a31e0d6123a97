//! Errors of parsing, resolving and wiring correlation rules.

/// Everything that can be wrong with a correlation rule or with the rule set given to the engine.
///
/// Messages name the offending attribute with its path in the rule (`correlation.timespan`, ...)
/// so that a rule author can fix the rule from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrelationError {
    /// The YAML document has no `correlation` key (it is a detection or filter rule).
    #[error("not a correlation rule: the document has no `correlation` mapping")]
    NotACorrelation,

    /// A mandatory attribute is absent.
    #[error("missing required attribute `{0}`")]
    Missing(&'static str),

    /// An attribute has the wrong YAML type.
    #[error("attribute `{attr}` must be {expected}, found {found}")]
    WrongType {
        attr: String,
        expected: &'static str,
        found: &'static str,
    },

    /// `correlation.type` is not one of the known types.
    #[error(
        "unknown correlation type `{0}` (expected one of: event_count, value_count, temporal, \
         temporal_ordered, value_sum, value_avg, value_percentile, value_median)"
    )]
    UnknownType(String),

    /// `correlation.timespan` cannot be read.
    #[error("invalid timespan `{value}`: {reason}")]
    BadTimespan { value: String, reason: String },

    /// `correlation.condition` is malformed or does not fit the correlation type.
    #[error("invalid condition: {0}")]
    BadCondition(String),

    /// An attribute that the specification does not define, where unknown attributes would
    /// silently change the meaning of the rule (inside `correlation` and `condition`).
    #[error("unknown attribute `{key}` in `{section}` (allowed: {allowed})")]
    UnknownKey {
        section: &'static str,
        key: String,
        allowed: &'static str,
    },

    /// An attribute has the right type but a value that is not allowed.
    #[error("invalid `{attr}`: {reason}")]
    Invalid { attr: String, reason: String },

    /// A reference in `correlation.rules` names no known rule.
    #[error("correlation `{rule}` references unknown rule `{reference}`")]
    UnknownReference { rule: String, reference: String },

    /// A reference names both a correlation rule and a detection rule.
    #[error(
        "correlation `{rule}`: reference `{reference}` names both a correlation rule and a \
         detection rule; names and ids must be unique"
    )]
    AmbiguousReference { rule: String, reference: String },

    /// Two correlation rules share an id or a name.
    #[error("two correlation rules are both identified as `{0}`; ids and names must be unique")]
    DuplicateIdentifier(String),

    /// Correlation rules reference each other in a cycle.
    #[error(
        "correlation `{rule}` is part of a reference cycle (a correlation cannot depend on itself)"
    )]
    Cycle { rule: String },

    /// A correlation could not be resolved because a correlation it references is invalid.
    #[error("correlation `{rule}` references correlation `{reference}`, which is invalid")]
    BrokenDependency { rule: String, reference: String },

    /// The rule vector handed to [`crate::CorrelationEngine::new`] is inconsistent (indices out
    /// of range, a cycle): it was not produced by [`crate::resolve`] or was edited afterwards.
    #[error("inconsistent correlation set: {0}")]
    Engine(String),
}
