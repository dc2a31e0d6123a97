//! Debian version ordering, the algorithm of dpkg's `verrevcmp` (lib/dpkg/version.c).
//!
//! A version is `[epoch:]upstream[-revision]`. Epochs compare as numbers; upstream and revision
//! compare by alternating non-digit and digit runs, where `~` sorts before anything (even the end
//! of the string), letters sort before other characters and a digit run compares numerically.

use std::cmp::Ordering;

/// A Debian version split into its three parts, borrowed from the text as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersion<'a> {
    /// The epoch digits without leading zeros (empty means epoch 0).
    pub epoch: &'a str,
    pub upstream: &'a str,
    /// Empty when the version has no `-revision` (dpkg treats that like `0`).
    pub revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Splits a version leniently: an epoch that is not all digits is left in the upstream part
    /// (dpkg would refuse it; a comparison must still give an answer, never panic).
    pub fn split(text: &'a str) -> Self {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest))
                if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (epoch.trim_start_matches('0'), rest)
            }
            _ => ("", text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        DpkgVersion {
            epoch,
            upstream,
            revision,
        }
    }
}

/// Compares two Debian versions as `dpkg --compare-versions` does.
pub fn compare_dpkg(left: &str, right: &str) -> Ordering {
    let left = DpkgVersion::split(left);
    let right = DpkgVersion::split(right);
    compare_numeric_text(left.epoch, right.epoch)
        .then_with(|| verrevcmp(left.upstream, right.upstream))
        .then_with(|| verrevcmp(left.revision, right.revision))
}

/// Compares two runs of ASCII digits without leading zeros, of any length.
pub(crate) fn compare_numeric_text(left: &str, right: &str) -> Ordering {
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

/// The weight of one character in a non-digit run; 0 stands for a digit or the end.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b) if b.is_ascii_digit() => 0,
        Some(b) if b.is_ascii_alphabetic() => i32::from(b),
        Some(b'~') => -1,
        Some(b) => i32::from(b) + 256,
    }
}

fn is_digit(byte: Option<u8>) -> bool {
    byte.is_some_and(|b| b.is_ascii_digit())
}

fn verrevcmp(left: &str, right: &str) -> Ordering {
    let a = left.as_bytes();
    let b = right.as_bytes();
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        // Non-digit run, character by character.
        while (i < a.len() && !is_digit(a.get(i).copied()))
            || (j < b.len() && !is_digit(b.get(j).copied()))
        {
            let left_order = order(a.get(i).copied());
            let right_order = order(b.get(j).copied());
            if left_order != right_order {
                return left_order.cmp(&right_order);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        // Digit run: the first differing digit decides unless one run is longer.
        let mut first_difference = Ordering::Equal;
        while is_digit(a.get(i).copied()) && is_digit(b.get(j).copied()) {
            if first_difference == Ordering::Equal {
                first_difference = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if is_digit(a.get(i).copied()) {
            return Ordering::Greater;
        }
        if is_digit(b.get(j).copied()) {
            return Ordering::Less;
        }
        if first_difference != Ordering::Equal {
            return first_difference;
        }
    }
    Ordering::Equal
}
