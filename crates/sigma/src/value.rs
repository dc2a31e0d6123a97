//! Sigma values and value modifiers, before compilation into matchers.
//!
//! A string value is parsed into [`Piece`]s (literal bytes, `*`, `?`) following the escaping
//! rules of the specification, then transformed by the modifier chain in the order written.

use std::collections::HashMap;

use base64::Engine as _;

/// One element of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Vec<u8>),
    /// `*`: any run of characters, possibly empty.
    AnyString,
    /// `?`: exactly one character.
    AnyChar,
}

/// A Sigma string as a sequence of pieces. Adjacent literals are always merged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SigmaString {
    pub pieces: Vec<Piece>,
}

impl SigmaString {
    /// Parses a rule value: `*` and `?` are wildcards, `\*`, `\?` and `\\` escape, and a
    /// backslash before any other character (or at the end) is a plain backslash.
    pub fn parse(text: &str) -> Self {
        let mut out = SigmaString::default();
        let mut chars = text.chars().peekable();
        let mut buf = [0u8; 4];
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        out.push_literal(next.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => out.push_literal(b"\\"),
                },
                '*' => out.pieces.push(Piece::AnyString),
                '?' => out.pieces.push(Piece::AnyChar),
                c => out.push_literal(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        out
    }

    /// A value taken literally (no wildcard interpretation), e.g. for numbers.
    pub fn literal(text: &str) -> Self {
        let mut out = SigmaString::default();
        out.push_literal(text.as_bytes());
        out
    }

    pub fn push_literal(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Piece::Literal(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.pieces.push(Piece::Literal(bytes.to_vec()));
        }
    }

    pub fn has_wildcards(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Literal(_)))
    }

    /// The bytes of a wildcard-free value.
    pub fn plain_bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => out.extend_from_slice(l),
                _ => return None,
            }
        }
        Some(out)
    }

    fn wrap(&mut self, before: bool, after: bool) {
        if before && self.pieces.first() != Some(&Piece::AnyString) {
            self.pieces.insert(0, Piece::AnyString);
        }
        if after && self.pieces.last() != Some(&Piece::AnyString) {
            self.pieces.push(Piece::AnyString);
        }
    }

    /// Rebuilds the value from pieces, merging literals.
    fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Self {
        let mut out = SigmaString::default();
        for p in pieces {
            match p {
                Piece::Literal(l) => out.push_literal(&l),
                other => out.pieces.push(other),
            }
        }
        out
    }
}

/// A value as written in the rule, after YAML typing.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

/// Modifiers of one field expression, as written after the `|`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Windash,
    Re,
    ReI,
    ReM,
    ReS,
    Cidr,
    Exists,
    Cased,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    FieldRef,
    Expand,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Modifier {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "contains" => Self::Contains,
            "startswith" => Self::StartsWith,
            "endswith" => Self::EndsWith,
            "all" => Self::All,
            "base64" => Self::Base64,
            "base64offset" => Self::Base64Offset,
            "utf16le" | "wide" => Self::Utf16Le,
            "utf16be" => Self::Utf16Be,
            "utf16" => Self::Utf16,
            "windash" => Self::Windash,
            "re" => Self::Re,
            "i" => Self::ReI,
            "m" => Self::ReM,
            "s" => Self::ReS,
            "cidr" => Self::Cidr,
            "exists" => Self::Exists,
            "cased" => Self::Cased,
            "neq" => Self::Neq,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "fieldref" => Self::FieldRef,
            "expand" => Self::Expand,
            "minute" => Self::Minute,
            "hour" => Self::Hour,
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            "year" => Self::Year,
            _ => return None,
        })
    }
}

/// Numeric comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// The date part extracted by a time modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// What one value of a field expression tests, before compilation.
#[derive(Debug, Clone)]
pub enum ValueSpec {
    /// A (possibly wildcarded) string, case-insensitive unless `cased`.
    Str {
        value: SigmaString,
        cased: bool,
    },
    /// A number from the rule: equal to a numeric field or to its decimal text.
    Num {
        op: NumOp,
        value: f64,
        text: String,
    },
    Bool(bool),
    /// `null`: the field is absent or null.
    Null,
    Regex {
        pattern: String,
        insensitive: bool,
        multiline: bool,
        dotall: bool,
    },
    Cidr(ipnet::IpNet),
    /// Compare with the value of another field (`fieldref`).
    FieldRef {
        field: String,
        position: Position,
        cased: bool,
    },
    /// A date part compared as a number.
    Time {
        part: TimePart,
        op: NumOp,
        value: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

/// A field expression after modifiers, before field mapping and compilation.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// `None` for keyword search over all values.
    pub field: Option<String>,
    pub values: Vec<ValueSpec>,
    /// `all` modifier: every value must match.
    pub all: bool,
    /// `neq` modifier: the field differs from every value.
    pub negate: bool,
    /// `exists` modifier.
    pub exists: Option<bool>,
    /// Non-fatal remarks (e.g. an empty placeholder), shown by `rules lint`.
    pub warnings: Vec<String>,
}

/// Errors in a field expression, phrased for rule authors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("unknown modifier '{0}'")]
    UnknownModifier(String),
    #[error("modifier '{modifier}' cannot be applied to {what}")]
    BadCombination {
        modifier: &'static str,
        what: String,
    },
    #[error("invalid value for '{modifier}': {message}")]
    BadValue {
        modifier: &'static str,
        message: String,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Placeholder values for the `expand` modifier, by name without the `%`s.
pub type Placeholders = HashMap<String, Vec<String>>;

const WINDASH_CHARS: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
/// Beyond this many windash permutations of one value, dashes become a character class.
const MAX_WINDASH_VARIANTS: usize = 256;

/// Applies a modifier chain to the raw values of one field expression.
pub fn build_field_spec(
    field: Option<&str>,
    modifiers: &[&str],
    raw: &[RawValue],
    placeholders: &Placeholders,
) -> Result<FieldSpec, ValueError> {
    let mut mods = Vec::with_capacity(modifiers.len());
    for m in modifiers {
        mods.push(Modifier::parse(m).ok_or_else(|| ValueError::UnknownModifier((*m).to_owned()))?);
    }
    let has = |m: Modifier| mods.contains(&m);
    let mut spec = FieldSpec {
        field: field.map(str::to_owned),
        values: Vec::new(),
        all: has(Modifier::All),
        negate: has(Modifier::Neq),
        exists: None,
        warnings: Vec::new(),
    };
    let cased = has(Modifier::Cased);

    if has(Modifier::Exists) {
        let [RawValue::Bool(b)] = raw else {
            return Err(ValueError::BadValue {
                modifier: "exists",
                message: "expects a single true or false".into(),
            });
        };
        if mods.len() > 1 {
            return Err(ValueError::BadCombination {
                modifier: "exists",
                what: "other modifiers".into(),
            });
        }
        spec.exists = Some(*b);
        return Ok(spec);
    }

    if has(Modifier::Re) {
        for m in &mods {
            if !matches!(
                m,
                Modifier::Re
                    | Modifier::ReI
                    | Modifier::ReM
                    | Modifier::ReS
                    | Modifier::All
                    | Modifier::Neq
                    | Modifier::Cased
            ) {
                return Err(ValueError::BadCombination {
                    modifier: "re",
                    what: format!("{m:?}").to_lowercase(),
                });
            }
        }
        for v in raw {
            let pattern = match v {
                RawValue::Str(s) => s.clone(),
                RawValue::Int(i) => i.to_string(),
                RawValue::Float(f) => f.to_string(),
                _ => {
                    return Err(ValueError::BadValue {
                        modifier: "re",
                        message: "expects a string".into(),
                    });
                }
            };
            spec.values.push(ValueSpec::Regex {
                pattern,
                insensitive: has(Modifier::ReI),
                multiline: has(Modifier::ReM),
                dotall: has(Modifier::ReS),
            });
        }
        return Ok(spec);
    } else if has(Modifier::ReI) || has(Modifier::ReM) || has(Modifier::ReS) {
        return Err(ValueError::BadCombination {
            modifier: "i/m/s",
            what: "a value without 're'".into(),
        });
    }

    if has(Modifier::Cidr) {
        for v in raw {
            let RawValue::Str(s) = v else {
                return Err(ValueError::BadValue {
                    modifier: "cidr",
                    message: "expects a network as text".into(),
                });
            };
            let net = parse_cidr(s).ok_or_else(|| ValueError::BadValue {
                modifier: "cidr",
                message: format!("'{s}' is not a CIDR network"),
            })?;
            spec.values.push(ValueSpec::Cidr(net));
        }
        return Ok(spec);
    }

    let time_part = mods.iter().find_map(|m| match m {
        Modifier::Minute => Some(TimePart::Minute),
        Modifier::Hour => Some(TimePart::Hour),
        Modifier::Day => Some(TimePart::Day),
        Modifier::Week => Some(TimePart::Week),
        Modifier::Month => Some(TimePart::Month),
        Modifier::Year => Some(TimePart::Year),
        _ => None,
    });
    let num_op = mods.iter().find_map(|m| match m {
        Modifier::Lt => Some(NumOp::Lt),
        Modifier::Lte => Some(NumOp::Lte),
        Modifier::Gt => Some(NumOp::Gt),
        Modifier::Gte => Some(NumOp::Gte),
        _ => None,
    });
    if let Some(part) = time_part {
        for v in raw {
            let value = raw_number(v, "time")?;
            if value.fract() != 0.0 {
                return Err(ValueError::BadValue {
                    modifier: "time",
                    message: format!("{value} is not a whole number"),
                });
            }
            spec.values.push(ValueSpec::Time {
                part,
                op: num_op.unwrap_or(NumOp::Eq),
                value: value as i64,
            });
        }
        return Ok(spec);
    }
    if let Some(op) = num_op {
        for v in raw {
            let value = raw_number(v, "lt/lte/gt/gte")?;
            spec.values.push(ValueSpec::Num {
                op,
                value,
                text: format_number(value),
            });
        }
        return Ok(spec);
    }

    if has(Modifier::FieldRef) {
        let position = if has(Modifier::Contains) {
            Position::Contains
        } else if has(Modifier::StartsWith) {
            Position::StartsWith
        } else if has(Modifier::EndsWith) {
            Position::EndsWith
        } else {
            Position::Exact
        };
        for v in raw {
            let RawValue::Str(s) = v else {
                return Err(ValueError::BadValue {
                    modifier: "fieldref",
                    message: "expects a field name".into(),
                });
            };
            spec.values.push(ValueSpec::FieldRef {
                field: s.replace(' ', ""),
                position,
                cased,
            });
        }
        return Ok(spec);
    }

    // String transformation chain. Each raw value may expand into several variants.
    for v in raw {
        let start = match v {
            RawValue::Null => {
                if !mods.iter().all(|m| matches!(m, Modifier::Neq)) {
                    return Err(ValueError::BadCombination {
                        modifier: "string",
                        what: "null".into(),
                    });
                }
                spec.values.push(ValueSpec::Null);
                continue;
            }
            RawValue::Bool(b)
                if mods
                    .iter()
                    .all(|m| matches!(m, Modifier::Neq | Modifier::All)) =>
            {
                spec.values.push(ValueSpec::Bool(*b));
                continue;
            }
            RawValue::Int(_) | RawValue::Float(_)
                if mods
                    .iter()
                    .all(|m| matches!(m, Modifier::Neq | Modifier::All)) =>
            {
                let value = match v {
                    RawValue::Int(i) => *i as f64,
                    RawValue::Float(f) => *f,
                    _ => 0.0,
                };
                let text = match v {
                    RawValue::Int(i) => i.to_string(),
                    _ => format_number(value),
                };
                spec.values.push(ValueSpec::Num {
                    op: NumOp::Eq,
                    value,
                    text,
                });
                continue;
            }
            RawValue::Str(s) => s.clone(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Float(f) => format_number(*f),
            RawValue::Bool(b) => b.to_string(),
        };
        let mut variants = if has(Modifier::Expand) {
            expand_placeholders(&start, placeholders, &mut spec.warnings)
        } else {
            vec![SigmaString::parse(&start)]
        };
        for m in &mods {
            variants = apply_modifier(*m, variants)?;
        }
        for value in variants {
            spec.values.push(ValueSpec::Str { value, cased });
        }
    }
    Ok(spec)
}

/// A rule value read as a number (numeric modifiers accept numbers written as text too).
fn raw_number(v: &RawValue, modifier: &'static str) -> Result<f64, ValueError> {
    match v {
        RawValue::Int(i) => Ok(*i as f64),
        RawValue::Float(f) => Ok(*f),
        RawValue::Str(s) => s.trim().parse().map_err(|_| ValueError::BadValue {
            modifier,
            message: format!("'{s}' is not a number"),
        }),
        _ => Err(ValueError::BadValue {
            modifier,
            message: "expects a number".into(),
        }),
    }
}

fn apply_modifier(m: Modifier, variants: Vec<SigmaString>) -> Result<Vec<SigmaString>, ValueError> {
    let encode =
        |name: &'static str, variants: Vec<SigmaString>, f: &dyn Fn(&[u8]) -> Vec<Vec<u8>>| {
            let mut out = Vec::new();
            for v in variants {
                let bytes = v.plain_bytes().ok_or_else(|| ValueError::BadCombination {
                    modifier: name,
                    what: "a value with wildcards".into(),
                })?;
                for encoded in f(&bytes) {
                    out.push(SigmaString::from_pieces([Piece::Literal(encoded)]));
                }
            }
            Ok(out)
        };
    Ok(match m {
        Modifier::Contains => map_all(variants, |v| v.wrap(true, true)),
        Modifier::StartsWith => map_all(variants, |v| v.wrap(false, true)),
        Modifier::EndsWith => map_all(variants, |v| v.wrap(true, false)),
        Modifier::Base64 => encode("base64", variants, &|b| {
            vec![
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .into_bytes(),
            ]
        })?,
        Modifier::Base64Offset => encode("base64offset", variants, &base64_offsets)?,
        Modifier::Utf16Le => encode("utf16le", variants, &|b| vec![utf16(b, false, false)])?,
        Modifier::Utf16Be => encode("utf16be", variants, &|b| vec![utf16(b, true, false)])?,
        Modifier::Utf16 => encode("utf16", variants, &|b| vec![utf16(b, false, true)])?,
        Modifier::Windash => variants.into_iter().flat_map(windash).collect(),
        // Modifiers that do not transform string values.
        Modifier::All | Modifier::Cased | Modifier::Neq | Modifier::Expand => variants,
        other => {
            return Err(ValueError::BadCombination {
                modifier: "string value",
                what: format!("modifier {other:?}").to_lowercase(),
            });
        }
    })
}

fn map_all(mut variants: Vec<SigmaString>, f: impl Fn(&mut SigmaString)) -> Vec<SigmaString> {
    variants.iter_mut().for_each(f);
    variants
}

/// The three base64 encodings of a value at offsets 0, 1 and 2, with the characters that
/// depend on neighbouring bytes cut off, exactly as pySigma and the specification describe.
fn base64_offsets(value: &[u8]) -> Vec<Vec<u8>> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    let mut out = Vec::with_capacity(3);
    for shift in 0..3 {
        let mut padded = vec![b' '; shift];
        padded.extend_from_slice(value);
        // The padding stays on: the end cut below removes it with the unstable character.
        let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
        let end_cut = END[(value.len() + shift) % 3];
        let start = START[shift];
        let stop = encoded.len().saturating_sub(end_cut);
        if start < stop {
            out.push(encoded.as_bytes()[start..stop].to_vec());
        }
    }
    out
}

fn utf16(bytes: &[u8], big_endian: bool, bom: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::with_capacity(bytes.len() * 2 + 2);
    if bom {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in text.encode_utf16() {
        let b = if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        };
        out.extend_from_slice(&b);
    }
    out
}

/// All permutations of the dash characters at each dash position.
fn windash(value: SigmaString) -> Vec<SigmaString> {
    let positions: usize = value
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(l) => String::from_utf8_lossy(l)
                .chars()
                .filter(|c| WINDASH_CHARS.contains(c))
                .count(),
            _ => 0,
        })
        .sum();
    if positions == 0 {
        return vec![value];
    }
    let total = WINDASH_CHARS
        .len()
        .checked_pow(positions as u32)
        .unwrap_or(usize::MAX);
    if total > MAX_WINDASH_VARIANTS {
        // Too many permutations: every dash becomes "one of the dashes", still exact.
        return vec![windash_classes(value)];
    }
    let mut variants = vec![SigmaString::default()];
    for piece in value.pieces {
        match piece {
            Piece::Literal(l) => {
                let text = String::from_utf8_lossy(&l).into_owned();
                for c in text.chars() {
                    if WINDASH_CHARS.contains(&c) {
                        let mut next = Vec::with_capacity(variants.len() * WINDASH_CHARS.len());
                        for v in &variants {
                            for d in WINDASH_CHARS {
                                let mut n = v.clone();
                                n.push_literal(d.encode_utf8(&mut [0; 4]).as_bytes());
                                next.push(n);
                            }
                        }
                        variants = next;
                    } else {
                        for v in &mut variants {
                            v.push_literal(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                    }
                }
            }
            other => variants
                .iter_mut()
                .for_each(|v| v.pieces.push(other.clone())),
        }
    }
    variants
}

/// Marker bytes for "one of the dash characters": the matcher compiles the value into a
/// regular expression when it contains this (never valid UTF-8, so it cannot clash).
pub const DASH_CLASS_MARKER: u8 = 0xFF;

fn windash_classes(value: SigmaString) -> SigmaString {
    let mut out = SigmaString::default();
    for piece in value.pieces {
        match piece {
            Piece::Literal(l) => {
                for c in String::from_utf8_lossy(&l).chars() {
                    if WINDASH_CHARS.contains(&c) {
                        out.push_literal(&[DASH_CLASS_MARKER]);
                    } else {
                        out.push_literal(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                }
            }
            other => out.pieces.push(other),
        }
    }
    out
}

/// Expands `%name%` placeholders (a `\%` is a plain percent sign).
fn expand_placeholders(
    text: &str,
    placeholders: &Placeholders,
    warnings: &mut Vec<String>,
) -> Vec<SigmaString> {
    // Split into plain parts and placeholder names.
    enum Part {
        Plain(String),
        Placeholder(String),
    }
    let mut parts = Vec::new();
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'%') {
            chars.next();
            plain.push_str("\\%");
            continue;
        }
        if c == '%' {
            let rest: String = chars.clone().collect();
            if let Some(end) = rest.find('%') {
                let name = &rest[..end];
                if !name.is_empty() && !name.contains(char::is_whitespace) {
                    parts.push(Part::Plain(std::mem::take(&mut plain)));
                    parts.push(Part::Placeholder(name.to_owned()));
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        plain.push(c);
    }
    parts.push(Part::Plain(plain));

    let mut results = vec![String::new()];
    for part in parts {
        match part {
            Part::Plain(p) => results
                .iter_mut()
                .for_each(|r| r.push_str(&p.replace("\\%", "%"))),
            Part::Placeholder(name) => match placeholders.get(&name) {
                Some(values) if !values.is_empty() => {
                    results = results
                        .iter()
                        .flat_map(|r| values.iter().map(move |v| format!("{r}{v}")))
                        .collect();
                }
                _ => {
                    warnings.push(format!(
                        "placeholder %{name}% has no configured values, so this value matches nothing"
                    ));
                    return Vec::new();
                }
            },
        }
    }
    results.iter().map(|r| SigmaString::parse(r)).collect()
}

fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
}

pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Piece {
        Piece::Literal(s.as_bytes().to_vec())
    }

    #[test]
    fn escaping_follows_the_specification() {
        // Plain backslash, single or double.
        assert_eq!(
            SigmaString::parse(r"C:\Windows").pieces,
            vec![lit(r"C:\Windows")]
        );
        assert_eq!(
            SigmaString::parse(r"C:\\Windows").pieces,
            vec![lit(r"C:\Windows")]
        );
        // Escaped wildcards are plain characters.
        assert_eq!(SigmaString::parse(r"a\*b\?").pieces, vec![lit("a*b?")]);
        // An escaped backslash before a wildcard: backslash, then wildcard.
        assert_eq!(
            SigmaString::parse(r"a\\*").pieces,
            vec![lit(r"a\"), Piece::AnyString]
        );
        // Three backslashes: plain backslash and plain star.
        assert_eq!(SigmaString::parse(r"a\\\*").pieces, vec![lit(r"a\*")]);
        // Three or four backslashes are a double backslash.
        assert_eq!(SigmaString::parse(r"a\\\\b").pieces, vec![lit(r"a\\b")]);
        assert_eq!(SigmaString::parse(r"a\\\").pieces, vec![lit(r"a\\")]);
        assert_eq!(
            SigmaString::parse("a?b*").pieces,
            vec![lit("a"), Piece::AnyChar, lit("b"), Piece::AnyString]
        );
    }

    #[test]
    fn base64offset_matches_the_specification_example() {
        // From the Sigma documentation: "/bin/bash" at the three offsets.
        let got: Vec<String> = base64_offsets(b"/bin/bash")
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap_or_default())
            .collect();
        assert_eq!(got, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
    }

    #[test]
    fn utf16_variants() {
        assert_eq!(utf16(b"cmd", false, false), vec![0x63, 0, 0x6d, 0, 0x64, 0]);
        assert_eq!(utf16(b"cmd", true, false), vec![0, 0x63, 0, 0x6d, 0, 0x64]);
        assert_eq!(
            utf16(b"cmd", false, true),
            vec![0xFF, 0xFE, 0x63, 0, 0x6d, 0, 0x64, 0]
        );
    }

    #[test]
    fn windash_permutes_every_position() {
        let v = windash(SigmaString::parse(" -a -b"));
        assert_eq!(v.len(), 25);
        assert!(v.contains(&SigmaString::parse(" /a \u{2014}b")));
        let many = windash(SigmaString::parse("-a-b-c-d-e-f"));
        assert_eq!(
            many.len(),
            1,
            "6 dashes exceed the permutation budget and become classes"
        );
    }

    #[test]
    fn expand_uses_placeholders_and_escapes() {
        let mut p = Placeholders::new();
        p.insert("Admins".into(), vec!["adm1".into(), "adm2".into()]);
        let mut w = Vec::new();
        let got = expand_placeholders(r"\%plain%Admins%", &p, &mut w);
        assert_eq!(
            got,
            vec![
                SigmaString::parse("%plainadm1"),
                SigmaString::parse("%plainadm2")
            ]
        );
        assert!(expand_placeholders("%Unknown%", &p, &mut w).is_empty());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn modifier_errors_are_explicit() {
        let p = Placeholders::new();
        let err =
            build_field_spec(Some("f"), &["nope"], &[RawValue::Str("x".into())], &p).unwrap_err();
        assert_eq!(err, ValueError::UnknownModifier("nope".into()));
        assert!(
            build_field_spec(
                Some("f"),
                &["cidr"],
                &[RawValue::Str("10.0.0.300/8".into())],
                &p
            )
            .is_err()
        );
        assert!(
            build_field_spec(Some("f"), &["base64"], &[RawValue::Str("a*".into())], &p).is_err()
        );
    }
}
