//! A string that must never be printed: SMTP passwords, bot tokens, HMAC secrets.

use std::fmt;

/// A secret value. `Debug` prints `[redacted]`; there is no `Display`, so it cannot end up in a
/// formatted message by accident. Read it with [`Secret::expose`] at the one place that needs it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the request or login that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an empty HMAC key or token is a configuration mistake).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&String> for Secret {
    fn from(value: &String) -> Self {
        Self(value.clone())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Replaces every occurrence of each non-empty secret in `text` with `[redacted]`.
///
/// Used on every message that comes from a library or a remote server before it goes into an
/// error or a log line: a reqwest error carries the URL (the Telegram token is in its path), and
/// a proxy's error page may echo the request line.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if !s.is_empty() && out.contains(s.expose()) {
            out = out.replace(s.expose(), "[redacted]");
        }
    }
    out
}

/// At most `max` characters of `text` (cut on a character boundary), control characters shown
/// as spaces, with `…` when cut: how a response body appears in an error.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            password: Secret,
        }
        let h = Holder {
            password: s.clone(),
        };
        assert!(!format!("{h:?}").contains("hunter2"));
        assert!(!format!("{h:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scrub_replaces_every_occurrence_and_ignores_empty_secrets() {
        let a = Secret::new("123:ABC");
        let empty = Secret::new("");
        assert_eq!(
            scrub("x 123:ABC y 123:ABC", &[&a, &empty]),
            "x [redacted] y [redacted]"
        );
        assert_eq!(scrub("nothing", &[&empty]), "nothing");
    }

    #[test]
    fn cut_is_char_safe_and_flattens_control_characters() {
        assert_eq!(cut("héllo\nwörld", 100), "héllo wörld");
        assert_eq!(cut("ééééé", 3), "ééé…");
        assert_eq!(cut("", 3), "");
    }
}
