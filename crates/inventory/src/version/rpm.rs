//! RPM version ordering: `rpmvercmp` (rpmio/rpmvercmp.c, with `~` and `^`) and the
//! `epoch:version-release` comparison of `rpmverCmp`.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_text;

/// An RPM `[epoch:]version[-release]` split into its parts, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpmVersion<'a> {
    /// Epoch digits without leading zeros; empty for none (rpm's `(none)`), which counts as 0.
    pub epoch: &'a str,
    pub version: &'a str,
    pub release: Option<&'a str>,
}

impl<'a> RpmVersion<'a> {
    /// Splits leniently, like rpm's `rpmverParse`: the epoch is the digits before the first `:`,
    /// the release what follows the last `-`.
    pub fn split(text: &'a str) -> Self {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => {
                (epoch.trim_start_matches('0'), rest)
            }
            _ => ("", text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        RpmVersion {
            epoch,
            version,
            release,
        }
    }
}

/// Compares two `[epoch:]version[-release]` strings. A missing epoch is 0; a release missing on
/// either side is not compared (rpm's rule: `1.0` matches any `1.0-N`).
pub fn compare_rpm_evr(left: &str, right: &str) -> Ordering {
    let left = RpmVersion::split(left);
    let right = RpmVersion::split(right);
    compare_numeric_text(left.epoch, right.epoch)
        .then_with(|| rpmvercmp(left.version, right.version))
        .then_with(|| match (left.release, right.release) {
            (Some(left), Some(right)) => rpmvercmp(left, right),
            _ => Ordering::Equal,
        })
}

fn is_separator(byte: Option<u8>) -> bool {
    byte.is_some_and(|b| !b.is_ascii_alphanumeric() && b != b'~' && b != b'^')
}

/// rpm's segment comparison of one version or release string.
pub fn rpmvercmp(left: &str, right: &str) -> Ordering {
    if left == right {
        return Ordering::Equal;
    }
    let a = left.as_bytes();
    let b = right.as_bytes();
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        while is_separator(a.get(i).copied()) {
            i += 1;
        }
        while is_separator(b.get(j).copied()) {
            j += 1;
        }
        let (one, two) = (a.get(i).copied(), b.get(j).copied());
        // `~` sorts before everything, the end of the string included.
        if one == Some(b'~') || two == Some(b'~') {
            if one != Some(b'~') {
                return Ordering::Greater;
            }
            if two != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` sorts after the end of the string but before anything else.
        if one == Some(b'^') || two == Some(b'^') {
            if one.is_none() {
                return Ordering::Less;
            }
            if two.is_none() {
                return Ordering::Greater;
            }
            if one != Some(b'^') {
                return Ordering::Greater;
            }
            if two != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (one, two) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let in_segment = |byte: &u8| {
            if numeric {
                byte.is_ascii_digit()
            } else {
                byte.is_ascii_alphabetic()
            }
        };
        let segment_a_len = a
            .get(i..)
            .map_or(0, |rest| rest.iter().take_while(|b| in_segment(b)).count());
        let segment_b_len = b
            .get(j..)
            .map_or(0, |rest| rest.iter().take_while(|b| in_segment(b)).count());
        let segment_a = a.get(i..i + segment_a_len).unwrap_or_default();
        let segment_b = b.get(j..j + segment_b_len).unwrap_or_default();
        if segment_b.is_empty() {
            // Different kinds of segment: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ordering = if numeric {
            let (x, y) = (trim_zeros(segment_a), trim_zeros(segment_b));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            segment_a.cmp(segment_b)
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
        i += segment_a_len;
        j += segment_b_len;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

fn trim_zeros(segment: &[u8]) -> &[u8] {
    let zeros = segment.iter().take_while(|&&b| b == b'0').count();
    segment.get(zeros..).unwrap_or_default()
}
