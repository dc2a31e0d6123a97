//! The one error of this crate: a name that is none of an enum's names.

/// A text that is not one of the names of a level, a status or a role (see each type's
/// `as_str`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct ParseError {
    /// What was read: `level`, `alert status`, `role`, `agent status`, `command status`.
    pub what: &'static str,
    /// The text as given.
    pub value: String,
}

/// `Display` as the stored name and `FromStr` back from it, for an enum with `ALL` and
/// `as_str` (the names are the serde names too, so text, JSON and SQL agree).
macro_rules! named {
    ($t:ty, $what:literal) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::ParseError;

            fn from_str(s: &str) -> Result<Self, $crate::ParseError> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::ParseError {
                        what: $what,
                        value: s.to_owned(),
                    })
            }
        }
    };
}
pub(crate) use named;
