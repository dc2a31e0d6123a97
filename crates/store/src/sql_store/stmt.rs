//! Statements written once: SQL text with `?` placeholders and neutral arguments, which each
//! driver rewrites into its dialect and binds in its own types.

use serde_json::Value;
use uuid::Uuid;

use crate::query::sql::{Param, SqlBuilder};

/// A statement: `sql!("SELECT {ALERT_COLS} FROM alerts WHERE id = ?", id)`. The text takes
/// `format!` syntax (constants such as column lists are spliced in, never values); every value
/// is an argument, bound in placeholder order.
macro_rules! sql {
    ($text:literal $(, $arg:expr)* $(,)?) => {
        $crate::sql_store::Stmt::new(format!($text))$(.arg($arg))*
    };
}
pub(crate) use sql;

/// SQL text and its arguments.
#[derive(Debug)]
pub struct Stmt {
    /// The text: PostgreSQL's spelling with `?` placeholders, or (when `native`) the driver's
    /// own dialect as [`SqlBuilder`] wrote it.
    pub sql: String,
    /// The arguments, in placeholder order.
    pub args: Vec<Arg>,
    /// Built for the driver's dialect already: bound as it is.
    pub native: bool,
}

impl Stmt {
    /// A statement in the portable spelling (see [`Stmt::sql`]).
    pub fn new(sql: String) -> Self {
        Stmt {
            sql,
            args: Vec::new(),
            native: false,
        }
    }

    /// A statement built by a [`SqlBuilder`] for the driver's dialect.
    pub fn built(b: SqlBuilder) -> Self {
        Stmt {
            sql: b.sql,
            args: b.params.into_iter().map(Arg::from).collect(),
            native: true,
        }
    }

    /// Adds the next argument.
    pub fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }
}

/// An argument, in the store's terms; each driver binds it in its column types.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer (or NULL).
    Int(Option<i64>),
    /// A float (or NULL).
    Real(Option<f64>),
    /// A boolean (SQLite: 0/1).
    Bool(bool),
    /// Text (or NULL). PostgreSQL cannot store NUL in text: it becomes U+FFFD there.
    Text(Option<String>),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A UUID (SQLite: a 16-byte blob; PostgreSQL: `uuid`).
    Uuid(Uuid),
    /// A JSON document (or NULL) (SQLite: `TEXT`; PostgreSQL: `jsonb`).
    Json(Option<Value>),
    /// A list of strings (SQLite: a JSON array in `TEXT`; PostgreSQL: `text[]`).
    Texts(Vec<String>),
    /// A list of UUIDs (SQLite: a JSON array of strings in `TEXT`; PostgreSQL: `uuid[]`).
    Uuids(Vec<Uuid>),
}

/// A JSON argument.
pub fn json(v: Value) -> Arg {
    Arg::Json(Some(v))
}

impl From<Param> for Arg {
    fn from(p: Param) -> Self {
        match p {
            Param::Text(s) => Arg::Text(Some(s)),
            Param::Int(i) => Arg::Int(Some(i)),
            Param::Real(f) => Arg::Real(Some(f)),
            Param::Uuid(u) => Arg::Uuid(u),
            Param::TextArray(v) => Arg::Texts(v),
        }
    }
}

macro_rules! args_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

args_from! {
    i64 => |v| Arg::Int(Some(v)),
    Option<i64> => |v| Arg::Int(v),
    bool => |v| Arg::Bool(v),
    f64 => |v| Arg::Real(Some(v)),
    Option<f64> => |v| Arg::Real(v),
    &str => |v| Arg::Text(Some(v.to_owned())),
    String => |v| Arg::Text(Some(v)),
    &String => |v| Arg::Text(Some(v.clone())),
    Option<&str> => |v| Arg::Text(v.map(str::to_owned)),
    Option<String> => |v| Arg::Text(v),
    &Option<String> => |v| Arg::Text(v.clone()),
    Uuid => |v| Arg::Uuid(v),
    Vec<u8> => |v| Arg::Bytes(v),
    &[u8] => |v| Arg::Bytes(v.to_vec()),
}

/// `sql` with `code` applied to every stretch outside quoted literals and identifiers (which
/// are copied as they are).
pub fn rewrite(sql: &str, mut code: impl FnMut(&str, &mut String)) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(start) = rest.find(['\'', '"']) {
        code(&rest[..start], &mut out);
        let quote = rest[start..].chars().next().unwrap_or('\'');
        // A doubled quote inside ends one literal and opens the next: copied all the same.
        let len = rest[start + 1..]
            .find(quote)
            .map_or(rest.len() - start, |i| i + 2);
        out.push_str(&rest[start..start + len]);
        rest = &rest[start + len..];
    }
    code(rest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_skips_literals() {
        let numbered = |sql: &str| {
            let mut n = 0;
            rewrite(sql, |code, out| {
                for (i, part) in code.split('?').enumerate() {
                    if i > 0 {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    }
                    out.push_str(part);
                }
            })
        };
        assert_eq!(
            numbered("a = ? AND b = '?''?' AND \"c?\" = ? OR d = ?"),
            "a = $1 AND b = '?''?' AND \"c?\" = $2 OR d = $3"
        );
        assert_eq!(numbered("x = 'open?"), "x = 'open?");
        assert_eq!(numbered("?"), "$1");
    }
}
