//! The Dozor event query language.
//!
//! ```text
//! process.name:powershell.exe AND NOT user.name:SYSTEM
//! (event.code:4688 OR event.code:1) "encoded command"
//! file.path:C:\Users\*\AppData\*   winlog.event_data.LogonType:>=10   host.name:*
//! ```
//!
//! * `field:value` — the value at the dotted path in the event document equals `value`
//!   (case-insensitive). If the field holds an array, any element may match.
//! * `*` in a value is a wildcard (prefix `abc*`, suffix `*abc`, contains `*abc*`, or in the
//!   middle); `field:*` means the field exists.
//! * `field:>N`, `field:>=N`, `field:<N`, `field:<=N` compare numbers (numeric strings too).
//! * `"a b"` — a quoted value (inside: `\"` is a quote; every other character is itself).
//! * A bare word or quoted string without a field is free text, looked up in the keyword index:
//!   it matches where a word of one of the document's values starts with it (`power` finds
//!   `PowerShell.exe`); a term of several words must also appear in the document as written.
//!   With a leading `*` (`*shell`) it is a case-insensitive substring of the whole document
//!   (field names included), read from every document in range.
//! * `AND`, `OR`, `NOT` (upper case), parentheses; adjacent terms are ANDed; `NOT` binds
//!   tighter than `AND`, which binds tighter than `OR`.
//!
//! Parsing never touches SQL: [`sql`] turns the tree into a SQL fragment with bound parameters.

pub mod sql;

use std::fmt;

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 8192;
/// Most field/free-text terms in one query.
pub const MAX_TERMS: usize = 64;
/// Deepest nesting of parentheses and `NOT`.
pub const MAX_DEPTH: usize = 32;
/// Longest field path.
pub const MAX_FIELD_CHARS: usize = 256;

/// A query that could not be parsed: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query error at column {column}: {message}")]
pub struct QueryError {
    /// 1-based character column in the query text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        column,
        message: message.into(),
    })
}

/// A value pattern: literal pieces between `*` wildcards. Matching is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal pieces, in order (no empty pieces, except the single piece of an exact `""`).
    pub parts: Vec<String>,
    /// The value must start with the first piece (no leading `*`).
    pub anchored_start: bool,
    /// The value must end with the last piece (no trailing `*`).
    pub anchored_end: bool,
}

impl Pattern {
    fn parse(raw: &str) -> Pattern {
        let parts: Vec<String> = raw
            .split('*')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if !raw.contains('*') {
            return Pattern {
                parts: vec![raw.to_owned()],
                anchored_start: true,
                anchored_end: true,
            };
        }
        Pattern {
            parts,
            anchored_start: !raw.starts_with('*'),
            anchored_end: !raw.ends_with('*'),
        }
    }

    /// No wildcard: the whole value must equal the single piece.
    pub fn is_exact(&self) -> bool {
        self.anchored_start && self.anchored_end && self.parts.len() == 1
    }

    /// Only wildcards: matches any value.
    pub fn is_any(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// What a field term requires of the field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// The (string form of the) value matches the pattern.
    Pattern(Pattern),
    /// The field exists and is not null (`field:*`).
    Exists,
    /// The value is a number (or numeric string) and compares so.
    Compare(CmpOp, f64),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// One must hold.
    Or(Vec<Expr>),
    /// Must not hold.
    Not(Box<Expr>),
    /// `field:value`.
    Field {
        /// Dotted path segments.
        path: Vec<String>,
        /// Requirement.
        matcher: Matcher,
    },
    /// Free text over the whole document.
    Text(Pattern),
}

/// Parses a query; `Ok(None)` for an empty (all-whitespace) query.
pub fn parse(input: &str) -> Result<Option<Expr>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return err(
            MAX_QUERY_CHARS + 1,
            format!("query is longer than {MAX_QUERY_CHARS} characters"),
        );
    }
    let tokens = lex(&chars)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        end_column: chars.len() + 1,
        terms: 0,
    };
    let expr = p.parse_or(0)?;
    if let Some(t) = p.peek() {
        let column = t.column;
        return match t.kind {
            Tok::RParen => err(column, "unexpected ')' without a matching '('"),
            _ => err(column, format!("unexpected {}", t.kind)),
        };
    }
    Ok(Some(expr))
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Text(String),
    Field(Vec<String>, Matcher),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::And => f.write_str("AND"),
            Tok::Or => f.write_str("OR"),
            Tok::Not => f.write_str("NOT"),
            Tok::Text(t) => write!(f, "{t:?}"),
            Tok::Field(p, _) => write!(f, "field term {:?}", p.join(".")),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    column: usize,
}

fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '-')
}

fn lex(chars: &[char]) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Token {
                kind: Tok::LParen,
                column,
            });
            i += 1;
        } else if c == ')' {
            out.push(Token {
                kind: Tok::RParen,
                column,
            });
            i += 1;
        } else if c == '"' {
            let (s, next) = quoted(chars, i)?;
            if s.is_empty() {
                return err(column, "empty quoted string");
            }
            out.push(Token {
                kind: Tok::Text(s),
                column,
            });
            i = next;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '"')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let kind = match word.as_str() {
                "AND" => Tok::And,
                "OR" => Tok::Or,
                "NOT" => Tok::Not,
                _ => match word.find(':') {
                    None => Tok::Text(word),
                    Some(colon) => {
                        let name = &word[..colon];
                        let path = field_path(name, column)?;
                        let rest = &word[colon + 1..];
                        let value_column = column + name.chars().count() + 1;
                        if rest.is_empty() {
                            if i < chars.len() && chars[i] == '"' {
                                let (s, next) = quoted(chars, i)?;
                                i = next;
                                Tok::Field(path, Matcher::Pattern(Pattern::parse(&s)))
                            } else {
                                return err(
                                    value_column,
                                    format!("expected a value after '{name}:'"),
                                );
                            }
                        } else {
                            Tok::Field(path, field_value(rest, value_column)?)
                        }
                    }
                },
            };
            out.push(Token { kind, column });
        }
    }
    Ok(out)
}

/// Reads a quoted string starting at `chars[start] == '"'`; returns it and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&'"') => {
                s.push('"');
                i += 2;
            }
            '"' => return Ok((s, i + 1)),
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    err(start + 1, "unterminated quoted string")
}

fn field_path(name: &str, column: usize) -> Result<Vec<String>, QueryError> {
    if name.is_empty() {
        return err(column, "expected a field name before ':'");
    }
    if name.chars().count() > MAX_FIELD_CHARS {
        return err(
            column,
            format!("field name is longer than {MAX_FIELD_CHARS} characters"),
        );
    }
    if let Some((k, bad)) = name.chars().enumerate().find(|(_, c)| !is_field_char(*c)) {
        return err(
            column + k,
            format!(
                "invalid character {bad:?} in field name (allowed: letters, digits, '_', '.', '@', '-'); quote free text that contains ':'"
            ),
        );
    }
    let path: Vec<String> = name.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return err(column, format!("empty segment in field name {name:?}"));
    }
    Ok(path)
}

fn field_value(raw: &str, column: usize) -> Result<Matcher, QueryError> {
    let (op, rest) = if let Some(r) = raw.strip_prefix(">=") {
        (Some(CmpOp::Ge), r)
    } else if let Some(r) = raw.strip_prefix("<=") {
        (Some(CmpOp::Le), r)
    } else if let Some(r) = raw.strip_prefix('>') {
        (Some(CmpOp::Gt), r)
    } else if let Some(r) = raw.strip_prefix('<') {
        (Some(CmpOp::Lt), r)
    } else {
        (None, raw)
    };
    match op {
        None => {
            let p = Pattern::parse(raw);
            Ok(if p.is_any() {
                Matcher::Exists
            } else {
                Matcher::Pattern(p)
            })
        }
        Some(op) => {
            let op_len = raw.chars().count() - rest.chars().count();
            match rest.parse::<f64>() {
                Ok(n) if n.is_finite() && !rest.is_empty() => Ok(Matcher::Compare(op, n)),
                _ => err(
                    column + op_len,
                    format!("expected a number after '{}', found {rest:?}", op.sql()),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------- parser

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_column: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn parse_or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_and(depth)?];
        while matches!(self.peek(), Some(Token { kind: Tok::Or, .. })) {
            self.next();
            items.push(self.parse_and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_not(depth)?];
        loop {
            match self.peek().map(|t| &t.kind) {
                Some(Tok::And) => {
                    self.next();
                    items.push(self.parse_not(depth)?);
                }
                Some(Tok::LParen | Tok::Not | Tok::Text(_) | Tok::Field(..)) => {
                    items.push(self.parse_not(depth)?);
                }
                _ => break,
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_not(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if let Some(Token {
            kind: Tok::Not,
            column,
        }) = self.peek().cloned()
        {
            if depth >= MAX_DEPTH {
                return err(
                    column,
                    format!("query nests deeper than {MAX_DEPTH} levels"),
                );
            }
            self.next();
            let inner = self.parse_not(depth + 1)?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary(depth)
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let prev = self.pos.checked_sub(1).and_then(|p| self.tokens.get(p));
        let after = prev
            .map(|t| format!(" after {}", t.kind))
            .unwrap_or_default();
        let Some(t) = self.next() else {
            return err(
                self.end_column,
                format!("unexpected end of query: expected a term{after}"),
            );
        };
        match t.kind {
            Tok::LParen => {
                if depth >= MAX_DEPTH {
                    return err(
                        t.column,
                        format!("query nests deeper than {MAX_DEPTH} levels"),
                    );
                }
                if matches!(
                    self.peek(),
                    Some(Token {
                        kind: Tok::RParen,
                        ..
                    })
                ) {
                    return err(t.column, "empty parentheses");
                }
                let inner = self.parse_or(depth + 1)?;
                match self.next() {
                    Some(Token {
                        kind: Tok::RParen, ..
                    }) => Ok(inner),
                    _ => err(t.column, "'(' is never closed"),
                }
            }
            Tok::Text(s) => {
                self.count_term(t.column)?;
                let p = Pattern::parse(&s);
                if p.is_any() {
                    return err(
                        t.column,
                        "a free-text term needs at least one character besides '*'",
                    );
                }
                Ok(Expr::Text(p))
            }
            Tok::Field(path, matcher) => {
                self.count_term(t.column)?;
                Ok(Expr::Field { path, matcher })
            }
            Tok::RParen => err(t.column, format!("unexpected ')': expected a term{after}")),
            other => err(
                t.column,
                format!("unexpected {other}: expected a term{after}"),
            ),
        }
    }

    fn count_term(&mut self, column: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return err(column, format!("more than {MAX_TERMS} terms"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
