//! The Sigma condition grammar.
//!
//! Precedence, least to most binding: `or`, `and`, `not`, `x of`, parentheses. Keywords are
//! case-insensitive. `N of` accepts any positive number (`1 of` is the common form).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quantifier {
    All,
    AtLeast(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondExpr {
    And(Vec<CondExpr>),
    Or(Vec<CondExpr>),
    Not(Box<CondExpr>),
    Ident(String),
    /// `1 of sel*` / `all of them` (pattern `None` means `them`).
    Of {
        quantifier: Quantifier,
        pattern: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition '{condition}': {message} (at character {position})")]
pub struct ConditionError {
    pub condition: String,
    pub message: String,
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Word(String),
    Pipe,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::LParen => f.write_str("'('"),
            Token::RParen => f.write_str("')'"),
            Token::Pipe => f.write_str("'|'"),
            Token::Word(w) => write!(f, "'{w}'"),
        }
    }
}

pub fn parse_condition(text: &str) -> Result<CondExpr, ConditionError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
    };
    let expr = parser.parse_or()?;
    if let Some((token, at)) = parser.tokens.get(parser.pos) {
        let message = if *token == Token::Pipe {
            "aggregation expressions after '|' (Sigma 1.0 'count() by') are not part of Sigma 2; use a correlation rule".to_owned()
        } else {
            format!("unexpected {token}")
        };
        return Err(parser.error_at(message, *at));
    }
    Ok(expr)
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ConditionError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                tokens.push((Token::LParen, i));
                chars.next();
            }
            ')' => {
                tokens.push((Token::RParen, i));
                chars.next();
            }
            '|' => {
                tokens.push((Token::Pipe, i));
                chars.next();
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '|' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((Token::Word(word), i));
            }
        }
    }
    if tokens.is_empty() {
        return Err(ConditionError {
            condition: text.to_owned(),
            message: "empty condition".into(),
            position: 0,
        });
    }
    Ok(tokens)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    pos: usize,
}

impl Parser<'_> {
    fn error_at(&self, message: String, position: usize) -> ConditionError {
        ConditionError {
            condition: self.text.to_owned(),
            message,
            position,
        }
    }

    fn error(&self, message: impl Into<String>) -> ConditionError {
        let at = self
            .tokens
            .get(self.pos)
            .map(|(_, p)| *p)
            .unwrap_or(self.text.len());
        self.error_at(message.into(), at)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case(keyword))
    }

    fn parse_or(&mut self) -> Result<CondExpr, ConditionError> {
        self.parse_joined("or", Self::parse_and, CondExpr::Or)
    }

    fn parse_and(&mut self) -> Result<CondExpr, ConditionError> {
        self.parse_joined("and", Self::parse_not, CondExpr::And)
    }

    /// `operand (keyword operand)*`: a lone operand as it is, several joined by `join`.
    fn parse_joined(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<CondExpr, ConditionError>,
        join: fn(Vec<CondExpr>) -> CondExpr,
    ) -> Result<CondExpr, ConditionError> {
        let mut items = vec![operand(self)?];
        while self.peek_keyword(keyword) {
            self.pos += 1;
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            join(items)
        })
    }

    fn parse_not(&mut self) -> Result<CondExpr, ConditionError> {
        if self.peek_keyword("not") {
            self.pos += 1;
            return Ok(CondExpr::Not(Box::new(self.parse_not()?)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<CondExpr, ConditionError> {
        let Some((token, _)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error(
                "expected a search identifier, 'not', 'x of' or '(' but the condition ended",
            ));
        };
        match token {
            Token::LParen => {
                self.pos += 1;
                let inner = self.parse_or()?;
                match self.tokens.get(self.pos) {
                    Some((Token::RParen, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(self.error("missing ')'")),
                }
            }
            Token::RParen | Token::Pipe => Err(self.error(format!("unexpected {token}"))),
            Token::Word(word) => {
                let lower = word.to_ascii_lowercase();
                if matches!(lower.as_str(), "and" | "or" | "of") {
                    return Err(self.error(format!("unexpected keyword '{word}'")));
                }
                let next_is_of = matches!(self.tokens.get(self.pos + 1), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("of"));
                if next_is_of {
                    let quantifier = if lower == "all" {
                        Quantifier::All
                    } else if let Ok(n) = lower.parse::<usize>() {
                        if n == 0 {
                            return Err(self.error("'0 of' is meaningless; use 1 or more"));
                        }
                        Quantifier::AtLeast(n)
                    } else {
                        return Err(self.error(format!("'{word} of': expected '1 of' or 'all of'")));
                    };
                    self.pos += 2;
                    let Some((Token::Word(target), _)) = self.tokens.get(self.pos).cloned() else {
                        return Err(
                            self.error("expected 'them' or a search identifier pattern after 'of'")
                        );
                    };
                    self.pos += 1;
                    let pattern = if target.eq_ignore_ascii_case("them") {
                        None
                    } else {
                        Some(target)
                    };
                    return Ok(CondExpr::Of {
                        quantifier,
                        pattern,
                    });
                }
                self.pos += 1;
                Ok(CondExpr::Ident(word))
            }
        }
    }
}

/// Matches a search identifier against an `x of` pattern (`*` matches any run of characters).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CondExpr {
        CondExpr::Ident(s.into())
    }

    #[test]
    fn precedence_or_and_not() {
        let e = parse_condition("a or b and not c").unwrap();
        assert_eq!(
            e,
            CondExpr::Or(vec![
                id("a"),
                CondExpr::And(vec![id("b"), CondExpr::Not(Box::new(id("c")))])
            ])
        );
    }

    #[test]
    fn parentheses_and_quantifiers() {
        let e = parse_condition("(a or b) and 1 of sel* and not all of filter_*").unwrap();
        assert_eq!(
            e,
            CondExpr::And(vec![
                CondExpr::Or(vec![id("a"), id("b")]),
                CondExpr::Of {
                    quantifier: Quantifier::AtLeast(1),
                    pattern: Some("sel*".into())
                },
                CondExpr::Not(Box::new(CondExpr::Of {
                    quantifier: Quantifier::All,
                    pattern: Some("filter_*".into())
                })),
            ])
        );
        assert_eq!(
            parse_condition("all of them").unwrap(),
            CondExpr::Of {
                quantifier: Quantifier::All,
                pattern: None
            }
        );
        assert_eq!(
            parse_condition("NOT a AND b").unwrap(),
            CondExpr::And(vec![CondExpr::Not(Box::new(id("a"))), id("b")])
        );
    }

    #[test]
    fn errors_say_where() {
        let err = parse_condition("a and (b or c").unwrap_err();
        assert!(err.message.contains("missing ')'"), "{err}");
        let err = parse_condition("selection | count() by host > 5").unwrap_err();
        assert!(err.message.contains("correlation"), "{err}");
        assert_eq!(err.position, 10);
        assert!(parse_condition("a and").is_err());
        assert!(parse_condition("").is_err());
        assert!(parse_condition("a b").is_err());
    }

    #[test]
    fn identifier_patterns() {
        assert!(pattern_matches("sel*", "selection"));
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("a*c*e", "abcde"));
        assert!(!pattern_matches("sel*", "filter"));
        assert!(pattern_matches("selection", "selection"));
        assert!(!pattern_matches("a*c", "abcd"));
    }
}
