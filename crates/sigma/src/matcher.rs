//! Compiled value patterns and how they test one event value.

use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use memchr::memmem;

use crate::value::{DASH_CLASS_MARKER, NumOp, Piece, Position, SigmaString, TimePart, ValueSpec};

pub type FieldId = u32;

/// Calls the closure on each value of a field until it returns true (for `fieldref`).
pub type FieldValues<'a> = dyn Fn(FieldId, &mut dyn FnMut(&ValueView<'_>) -> bool) -> bool + 'a;

/// One event value as the matchers see it: the original and its lower-case text.
#[derive(Debug, Clone, Copy)]
pub struct ValueView<'a> {
    /// Original text (numbers and booleans rendered as text).
    pub text: &'a str,
    /// Lower-case text.
    pub lower: &'a str,
    pub kind: ValueKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

/// Lower-cases like Sigma's case-insensitive matching: ASCII fast path, Unicode otherwise.
pub fn lower_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        // Safe on ASCII: lower-casing keeps byte lengths and UTF-8 validity.
        out[start..].make_ascii_lowercase();
    } else {
        out.extend(s.chars().flat_map(char::to_lowercase));
    }
}

fn lower_bytes(b: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(b) {
        Ok(s) => {
            let mut out = String::with_capacity(s.len());
            lower_into(s, &mut out);
            out.into_bytes()
        }
        Err(_) => b.to_ascii_lowercase(),
    }
}

#[derive(Debug, Clone)]
pub enum GlobPiece {
    Lit(Vec<u8>),
    Star,
    One,
    Dash,
}

// Variants stay inline (no Box): matchers are built once and read on every event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum StrMatch {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(memmem::Finder<'static>),
    /// `*` alone: any value.
    Any,
    Glob(Box<[GlobPiece]>),
}

#[derive(Debug, Clone)]
pub enum Regex {
    Plain(regex::Regex),
    Fancy(Box<fancy_regex::Regex>),
}

impl Regex {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Regex::Plain(r) => r.is_match(s),
            // A regex that hits its backtracking limit does not match (reported nowhere per event).
            Regex::Fancy(r) => r.is_match(s).unwrap_or(false),
        }
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Pattern {
    Str {
        m: StrMatch,
        cased: bool,
    },
    Num {
        op: NumOp,
        value: f64,
        text: Box<str>,
    },
    Bool(bool),
    Null,
    Regex(Regex),
    Cidr(ipnet::IpNet),
    FieldRef {
        field: FieldId,
        position: Position,
        cased: bool,
    },
    Time {
        part: TimePart,
        op: NumOp,
        value: i64,
    },
}

/// Compiles one value spec. `keyword` wraps plain strings in `*` (keyword search is substring).
pub fn compile_pattern(
    spec: &ValueSpec,
    keyword: bool,
    field_id: &mut dyn FnMut(&str) -> FieldId,
) -> Result<Pattern, String> {
    Ok(match spec {
        ValueSpec::Str { value, cased } => {
            let mut value = value.clone();
            if keyword {
                if value.pieces.first() != Some(&Piece::AnyString) {
                    value.pieces.insert(0, Piece::AnyString);
                }
                if value.pieces.last() != Some(&Piece::AnyString) {
                    value.pieces.push(Piece::AnyString);
                }
            }
            Pattern::Str {
                m: compile_str(&value, *cased),
                cased: *cased,
            }
        }
        ValueSpec::Num { op, value, text } => Pattern::Num {
            op: *op,
            value: *value,
            text: text.as_str().into(),
        },
        ValueSpec::Bool(b) => Pattern::Bool(*b),
        ValueSpec::Null => Pattern::Null,
        ValueSpec::Regex {
            pattern,
            insensitive,
            multiline,
            dotall,
        } => {
            let mut flags = String::new();
            for (on, f) in [(*insensitive, 'i'), (*multiline, 'm'), (*dotall, 's')] {
                if on {
                    flags.push(f);
                }
            }
            let full = if flags.is_empty() {
                pattern.clone()
            } else {
                format!("(?{flags}){pattern}")
            };
            match regex::RegexBuilder::new(&full).size_limit(8 << 20).build() {
                Ok(r) => Pattern::Regex(Regex::Plain(r)),
                Err(plain_err) => match fancy_regex::RegexBuilder::new(&full)
                    .backtrack_limit(100_000)
                    .build()
                {
                    Ok(r) => Pattern::Regex(Regex::Fancy(Box::new(r))),
                    Err(_) => {
                        return Err(format!(
                            "invalid regular expression '{pattern}': {plain_err}"
                        ));
                    }
                },
            }
        }
        ValueSpec::Cidr(net) => Pattern::Cidr(*net),
        ValueSpec::FieldRef {
            field,
            position,
            cased,
        } => Pattern::FieldRef {
            field: field_id(field),
            position: *position,
            cased: *cased,
        },
        ValueSpec::Time { part, op, value } => Pattern::Time {
            part: *part,
            op: *op,
            value: *value,
        },
    })
}

fn compile_str(value: &SigmaString, cased: bool) -> StrMatch {
    let mut pieces: Vec<GlobPiece> = Vec::new();
    for p in &value.pieces {
        match p {
            Piece::AnyString => {
                if !matches!(pieces.last(), Some(GlobPiece::Star)) {
                    pieces.push(GlobPiece::Star);
                }
            }
            Piece::AnyChar => pieces.push(GlobPiece::One),
            Piece::Literal(l) => {
                let l = if cased { l.clone() } else { lower_bytes(l) };
                for (i, part) in l.split(|&b| b == DASH_CLASS_MARKER).enumerate() {
                    if i > 0 {
                        pieces.push(GlobPiece::Dash);
                    }
                    if !part.is_empty() {
                        pieces.push(GlobPiece::Lit(part.to_vec()));
                    }
                }
            }
        }
    }
    match pieces.as_slice() {
        [] => StrMatch::Exact(Box::new([])),
        [GlobPiece::Lit(l)] => StrMatch::Exact(l.clone().into()),
        [GlobPiece::Star] => StrMatch::Any,
        [GlobPiece::Lit(l), GlobPiece::Star] => StrMatch::Prefix(l.clone().into()),
        [GlobPiece::Star, GlobPiece::Lit(l)] => StrMatch::Suffix(l.clone().into()),
        [GlobPiece::Star, GlobPiece::Lit(l), GlobPiece::Star] => {
            StrMatch::Contains(memmem::Finder::new(l.as_slice()).into_owned())
        }
        _ => StrMatch::Glob(pieces.into()),
    }
}

impl StrMatch {
    #[inline]
    pub fn matches(&self, s: &[u8]) -> bool {
        match self {
            StrMatch::Exact(p) => s == &p[..],
            StrMatch::Prefix(p) => s.starts_with(p),
            StrMatch::Suffix(p) => s.ends_with(p),
            StrMatch::Contains(f) => f.find(s).is_some(),
            StrMatch::Any => true,
            StrMatch::Glob(pieces) => glob_match(pieces, s),
        }
    }

    /// A substring every matching value must contain (lower-case unless cased), for the
    /// prefilter.
    pub fn required_literal(&self) -> Option<&[u8]> {
        match self {
            StrMatch::Exact(p) | StrMatch::Prefix(p) | StrMatch::Suffix(p) => Some(p),
            StrMatch::Contains(f) => Some(f.needle()),
            StrMatch::Any => None,
            StrMatch::Glob(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    GlobPiece::Lit(l) => Some(l.as_slice()),
                    _ => None,
                })
                .max_by_key(|l| l.len()),
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

fn dash_at(s: &[u8]) -> Option<usize> {
    match s {
        [b'-' | b'/', ..] => Some(1),
        // en dash, em dash, horizontal bar: E2 80 93/94/95
        [0xE2, 0x80, 0x93..=0x95, ..] => Some(3),
        _ => None,
    }
}

/// Wildcard matching with single-star backtracking (linear in practice, O(n·m) worst case).
fn glob_match(pieces: &[GlobPiece], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < pieces.len() {
            let step = match &pieces[pi] {
                GlobPiece::Star => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                GlobPiece::Lit(l) => s[si..].starts_with(l).then_some(l.len()),
                GlobPiece::One => (si < s.len()).then(|| utf8_len(s[si])),
                GlobPiece::Dash => dash_at(&s[si..]),
            };
            if let Some(n) = step {
                si += n;
                pi += 1;
                continue;
            }
        } else if si >= s.len() {
            return true;
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                let next = ss + utf8_len(s[ss]);
                star = Some((sp, next));
                pi = sp + 1;
                si = next;
            }
            _ => return false,
        }
    }
}

fn num_cmp(op: NumOp, a: f64, b: f64) -> bool {
    match op {
        NumOp::Eq => a == b,
        NumOp::Lt => a < b,
        NumOp::Lte => a <= b,
        NumOp::Gt => a > b,
        NumOp::Gte => a >= b,
    }
}

/// A numeric reading of a value: numbers as they are, text when it parses as a number.
pub fn as_number(v: &ValueView<'_>) -> Option<f64> {
    match v.kind {
        ValueKind::Int(i) => Some(i as f64),
        ValueKind::Float(f) => Some(f),
        ValueKind::Str => {
            let t = v.text.trim();
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16).ok().map(|i| i as f64)
            } else {
                t.parse::<f64>().ok()
            }
        }
        _ => None,
    }
}

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.naive_utc());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

impl Pattern {
    /// Tests one value. `lookup` gives the values of another field (for `fieldref`).
    #[inline]
    pub fn matches(&self, v: &ValueView<'_>, fieldref: &FieldValues<'_>) -> bool {
        match self {
            Pattern::Str { m, cased } => {
                if v.kind == ValueKind::Null {
                    return false;
                }
                let s = if *cased { v.text } else { v.lower };
                m.matches(s.as_bytes())
            }
            Pattern::Num { op, value, text } => match v.kind {
                ValueKind::Int(i) => num_cmp(*op, i as f64, *value),
                ValueKind::Float(f) => num_cmp(*op, f, *value),
                ValueKind::Str => {
                    if *op == NumOp::Eq {
                        v.text == &**text || v.text.trim().parse::<f64>().is_ok_and(|f| f == *value)
                    } else {
                        as_number(v).is_some_and(|f| num_cmp(*op, f, *value))
                    }
                }
                _ => false,
            },
            Pattern::Bool(b) => match v.kind {
                ValueKind::Bool(x) => x == *b,
                ValueKind::Str => v.lower == if *b { "true" } else { "false" },
                _ => false,
            },
            Pattern::Null => v.kind == ValueKind::Null,
            Pattern::Regex(r) => v.kind != ValueKind::Null && r.is_match(v.text),
            Pattern::Cidr(net) => v
                .text
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            Pattern::FieldRef {
                field,
                position,
                cased,
            } => {
                let mine = if *cased { v.text } else { v.lower };
                fieldref(*field, &mut |other: &ValueView<'_>| {
                    let theirs = if *cased { other.text } else { other.lower };
                    match position {
                        Position::Exact => mine == theirs,
                        Position::Contains => mine.contains(theirs),
                        Position::StartsWith => mine.starts_with(theirs),
                        Position::EndsWith => mine.ends_with(theirs),
                    }
                })
            }
            Pattern::Time { part, op, value } => {
                let Some(dt) = parse_datetime(v.text) else {
                    return false;
                };
                let got = match part {
                    TimePart::Minute => dt.minute() as i64,
                    TimePart::Hour => dt.hour() as i64,
                    TimePart::Day => dt.day() as i64,
                    TimePart::Week => dt.iso_week().week() as i64,
                    TimePart::Month => dt.month() as i64,
                    TimePart::Year => dt.year() as i64,
                };
                num_cmp(*op, got as f64, *value as f64)
            }
        }
    }

    /// A substring (lower-case) every value matched by this pattern contains, if any.
    pub fn required_literal(&self) -> Option<Vec<u8>> {
        match self {
            Pattern::Str { m, cased } => m
                .required_literal()
                .map(|l| if *cased { lower_bytes(l) } else { l.to_vec() }),
            Pattern::Num {
                op: NumOp::Eq,
                text,
                ..
            } if text.bytes().all(|b| b.is_ascii_digit()) => {
                // Integer equality: numeric fields are rendered in decimal, text fields must
                // spell the digits (possibly with leading zeros or spaces).
                Some(text.as_bytes().to_vec())
            }
            _ => None,
        }
    }
}

/// Several case-insensitive "contains" patterns of one OR-list, searched in one pass.
#[derive(Debug, Clone)]
pub struct ContainsAny {
    pub automaton: AhoCorasick,
    pub needles: Vec<Vec<u8>>,
}

impl ContainsAny {
    pub fn new(needles: &[Vec<u8>]) -> Option<Self> {
        // A contiguous NFA builds an order of magnitude faster than a DFA and is about as
        // fast on short field values; there are hundreds of these in a rule set.
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(needles)
            .ok()
            .map(|automaton| ContainsAny {
                automaton,
                needles: needles.to_vec(),
            })
    }

    #[inline]
    pub fn matches(&self, lower: &str) -> bool {
        self.automaton.is_match(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> (String, ValueKind) {
        let mut l = String::new();
        lower_into(s, &mut l);
        (l, ValueKind::Str)
    }

    fn str_pat(v: &str, cased: bool) -> Pattern {
        let spec = ValueSpec::Str {
            value: SigmaString::parse(v),
            cased,
        };
        compile_pattern(&spec, false, &mut |_| 0).unwrap()
    }

    fn m(p: &Pattern, s: &str) -> bool {
        let (lower, kind) = view(s);
        p.matches(
            &ValueView {
                text: s,
                lower: &lower,
                kind,
            },
            &|_, _| false,
        )
    }

    #[test]
    fn strings_are_case_insensitive_unless_cased() {
        assert!(m(
            &str_pat(r"C:\Windows\\*.exe", false),
            r"c:\windows\system32\CMD.EXE"
        ));
        assert!(
            m(&str_pat(r"C:\Windows\*.exe", false), r"c:\windows*.EXE"),
            "an escaped star is a plain star"
        );
        assert!(!m(
            &str_pat(r"C:\Windows\\*.exe", true),
            r"c:\windows\cmd.exe"
        ));
        assert!(
            m(&str_pat("Привет*", false), "ПРИВЕТ мир"),
            "Cyrillic folds case too"
        );
        assert!(
            m(&str_pat("a?c", false), "aЖc"),
            "? is one character, not one byte"
        );
        assert!(!m(&str_pat("a?c", false), "ac"));
        assert!(m(&str_pat("*a*b*c*", false), "xxaxxbxxcxx"));
        assert!(!m(&str_pat("*a*b*c", false), "xxaxxbxxcxx"));
        assert!(m(&str_pat("", false), ""));
        assert!(!m(&str_pat("", false), "x"));
    }

    #[test]
    fn dash_class_matches_every_dash() {
        let mut v = SigmaString::parse("*x");
        v.push_literal(&[DASH_CLASS_MARKER]);
        v.push_literal(b"y");
        v.pieces.push(Piece::AnyString);
        let p = compile_pattern(
            &ValueSpec::Str {
                value: v,
                cased: false,
            },
            false,
            &mut |_| 0,
        )
        .unwrap();
        for s in ["ax-y", "ax/y", "ax\u{2013}y", "ax\u{2014}yz", "ax\u{2015}y"] {
            assert!(m(&p, s), "{s}");
        }
        assert!(!m(&p, "ax+y"));
    }

    #[test]
    fn numbers_compare_with_numbers_and_text() {
        let p = Pattern::Num {
            op: NumOp::Eq,
            value: 4688.0,
            text: "4688".into(),
        };
        let v = ValueView {
            text: "4688",
            lower: "4688",
            kind: ValueKind::Int(4688),
        };
        assert!(p.matches(&v, &|_, _| false));
        assert!(m(&p, "4688"));
        assert!(!m(&p, "46880"));
        let gt = Pattern::Num {
            op: NumOp::Gt,
            value: 10.0,
            text: "10".into(),
        };
        assert!(m(&gt, "0x20"));
        assert!(!m(&gt, "abc"));
    }

    #[test]
    fn time_parts() {
        let hour = Pattern::Time {
            part: TimePart::Hour,
            op: NumOp::Eq,
            value: 5,
        };
        assert!(m(&hour, "2026-04-17 05:24:53.079"));
        assert!(m(&hour, "2026-04-17T05:24:53.092051Z"));
        let week = Pattern::Time {
            part: TimePart::Week,
            op: NumOp::Gte,
            value: 16,
        };
        assert!(m(&week, "2026-04-17"));
    }

    #[test]
    fn cidr_matches_v4_and_v6() {
        let p = Pattern::Cidr("10.0.0.0/8".parse().unwrap());
        assert!(m(&p, "10.1.2.3"));
        assert!(!m(&p, "11.1.2.3"));
        let p6 = Pattern::Cidr("fe80::/10".parse().unwrap());
        assert!(m(&p6, "fe80::1"));
    }
}
