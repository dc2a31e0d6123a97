//! Compiles a query tree into a SQL boolean expression over the `events` table (alias `e`).
//!
//! Every value from the query is a bound parameter; the SQL text is built only from constants
//! and placeholders. Leaves under a `NOT` are wrapped in `COALESCE(.., false)` so a missing
//! field is "no match" and `NOT` of it is a match (SQL's three-valued logic would drop the row
//! otherwise); elsewhere NULL drops the row as false would, and leaves stay bare so indexes on
//! the event columns serve them.

use uuid::Uuid;

use super::{CmpOp, Expr, Matcher, Pattern};
use crate::words::{fts5_query, is_single_word, term_words, tsquery};

/// An hour in milliseconds (the keyword index's time buckets, `event_hours`).
const HOUR_MS: i64 = 3_600_000;

/// SQL flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?` placeholders, `json_extract`/`json_each`, `REGEXP` from the driver.
    Sqlite,
    /// PostgreSQL: `$n` placeholders, `jsonb` operators.
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Float.
    Real(f64),
    /// UUID (SQLite stores it as a 16-byte blob, PostgreSQL as `uuid`).
    Uuid(Uuid),
    /// Text array (PostgreSQL only: JSON paths).
    TextArray(Vec<String>),
}

/// SQL text plus its parameters, in placeholder order.
#[derive(Debug, Clone)]
pub struct SqlBuilder {
    /// The SQL so far.
    pub sql: String,
    /// Parameters so far.
    pub params: Vec<Param>,
    dialect: Dialect,
    /// The event-time range the query is limited to, which bounds keyword lookups.
    event_window: Option<(Option<i64>, Option<i64>)>,
}

/// A numeric-looking string (what `field:>N` accepts from string values).
const NUMERIC_RE: &str = r"^\s*[-+]?([0-9]{1,100}(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$";

/// Event fields kept in lower-cased, indexed columns of their own (see `derive.rs`).
fn column_of(path: &[String]) -> Option<&'static str> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["event", "kind"] => Some("kind"),
        ["event", "action"] => Some("action"),
        ["event", "code"] => Some("code"),
        ["event", "category"] => Some("category"),
        ["host", "name"] => Some("host_name"),
        ["process", "entity_id"] => Some("entity_id"),
        ["process", "parent", "entity_id"] => Some("parent_entity_id"),
        ["user", "name"] => Some("user_name"),
        ["process", "name"] => Some("process_name"),
        ["source", "ip"] => Some("source_ip"),
        ["destination", "ip"] => Some("destination_ip"),
        _ => None,
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn like_pattern(p: &Pattern, map: impl Fn(&str) -> String) -> String {
    if p.parts.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::new();
    if !p.anchored_start {
        out.push('%');
    }
    let parts: Vec<String> = p.parts.iter().map(|s| like_escape(&map(s))).collect();
    out.push_str(&parts.join("%"));
    if !p.anchored_end {
        out.push('%');
    }
    out
}

fn regex_pattern(p: &Pattern, map: impl Fn(&str) -> String) -> String {
    let mut out = String::from("(?is)");
    if p.anchored_start {
        out.push('^');
    }
    let parts: Vec<String> = p.parts.iter().map(|s| regex::escape(&map(s))).collect();
    out.push_str(&parts.join(".*"));
    if p.anchored_end {
        out.push('$');
    }
    out
}

/// The piece as it appears inside a JSON string literal (so `C:\Windows` finds `C:\\Windows`).
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

impl SqlBuilder {
    /// An empty builder.
    pub fn new(dialect: Dialect) -> Self {
        SqlBuilder {
            sql: String::new(),
            params: Vec::new(),
            dialect,
            event_window: None,
        }
    }

    /// Tells the builder the query is limited to events with `from <= ts < to`: keyword
    /// lookups then read only that part of the index (SQLite). The caller still adds the
    /// time condition itself.
    pub fn limit_keywords_to(&mut self, from: Option<i64>, to: Option<i64>) {
        if from.is_some() || to.is_some() {
            self.event_window = Some((from, to));
        }
    }

    /// The SQL flavour it writes.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Appends SQL text (constants only).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Adds a parameter and returns its placeholder (not appended).
    pub fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => match self.params.last() {
                Some(Param::TextArray(_)) => format!("${}::text[]", self.params.len()),
                _ => format!("${}", self.params.len()),
            },
        }
    }

    /// Adds a parameter and appends its placeholder.
    pub fn push_bind(&mut self, p: Param) -> &mut Self {
        let ph = self.bind(p);
        self.sql.push_str(&ph);
        self
    }

    /// Appends the boolean SQL of a query (a `WHERE` condition: a row whose condition is
    /// NULL is left out, as one whose condition is false).
    pub fn push_expr(&mut self, e: &Expr) {
        let s = self.expr(e, false);
        self.sql.push_str(&s);
    }

    fn expr(&mut self, e: &Expr, negated: bool) -> String {
        match e {
            Expr::And(items) | Expr::Or(items) => {
                let op = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = items.iter().map(|i| self.expr(i, negated)).collect();
                format!("({})", parts.join(op))
            }
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner, true)),
            Expr::Text(p) => {
                let leaf = self.text(p);
                self.leaf(leaf, negated)
            }
            Expr::Field { path, matcher } => {
                let leaf = self.field(path, matcher);
                self.leaf(leaf, negated)
            }
        }
    }

    /// A leaf as SQL. Under a `NOT`, a missing field (NULL) must be "no match", so `NOT` of
    /// it matches: `COALESCE(.., false)`. Elsewhere NULL already leaves the row out (`AND`
    /// and `OR` of NULL and false are not true), and the bare comparison lets the database
    /// use an index on the column (`host_name = ?`).
    fn leaf(&self, sql: String, negated: bool) -> String {
        match (negated, self.dialect) {
            (false, _) => format!("({sql})"),
            (true, Dialect::Sqlite) => format!("COALESCE(({sql}), 0)"),
            (true, Dialect::Postgres) => format!("COALESCE(({sql}), false)"),
        }
    }

    /// `x` matches the pattern, case-insensitively; `x` is raw (SQLite) or `lower(..)` (PG).
    fn matches(&mut self, x: &str, p: &Pattern) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                if p.parts.iter().all(|s| s.is_ascii()) {
                    let ph = self.bind(Param::Text(like_pattern(p, str::to_owned)));
                    format!("{x} LIKE {ph} ESCAPE '\\'")
                } else {
                    let ph = self.bind(Param::Text(regex_pattern(p, str::to_owned)));
                    format!("{x} REGEXP {ph}")
                }
            }
            Dialect::Postgres => {
                if p.is_exact() {
                    let ph = self.bind(Param::Text(lower(&p.parts[0])));
                    format!("{x} = {ph}")
                } else {
                    let ph = self.bind(Param::Text(like_pattern(p, lower)));
                    format!("{x} LIKE {ph} ESCAPE E'\\\\'")
                }
            }
        }
    }

    /// Free text. A term that starts with a letter or digit is looked up by its words in the
    /// keyword index (it matches where a word of the document starts with it); when the term
    /// is more than one word, the document must also contain it as written. A term that
    /// starts with `*` is a plain substring search of every document in range (slow).
    fn text(&mut self, p: &Pattern) -> String {
        let words = match p.parts.first() {
            Some(first) if p.anchored_start => term_words(first),
            _ => Vec::new(),
        };
        if words.is_empty() {
            return self.substring(p);
        }
        let lookup = match self.dialect {
            Dialect::Sqlite => {
                let q = self.bind(Param::Text(fts5_query(&words)));
                let bounds = self.seq_bounds();
                format!(
                    "e.seq IN (SELECT rowid FROM event_words WHERE event_words MATCH {q}{bounds})"
                )
            }
            Dialect::Postgres => {
                let q = self.bind(Param::Text(tsquery(&words)));
                format!("e.words @@ {q}::tsquery")
            }
        };
        if p.parts.len() == 1 && is_single_word(&p.parts[0]) {
            return lookup;
        }
        let whole = self.substring(p);
        format!("{lookup} AND {whole}")
    }

    /// `AND rowid` bounds for a keyword lookup: the `seq` range holding the window's hours.
    fn seq_bounds(&mut self) -> String {
        let Some((from, to)) = self.event_window else {
            return String::new();
        };
        let mut hours = || {
            let mut cond = Vec::new();
            if let Some(from) = from {
                let ph = self.bind(Param::Int(from.div_euclid(HOUR_MS)));
                cond.push(format!("hour >= {ph}"));
            }
            if let Some(to) = to {
                let ph = self.bind(Param::Int(to.saturating_sub(1).div_euclid(HOUR_MS)));
                cond.push(format!("hour <= {ph}"));
            }
            cond.join(" AND ")
        };
        let low = hours();
        let high = hours();
        format!(
            " AND rowid >= (SELECT min(first_seq) FROM event_hours WHERE {low}) \
             AND rowid <= (SELECT max(last_seq) FROM event_hours WHERE {high})"
        )
    }

    /// The document contains the pattern's pieces in order, anywhere (a scan).
    fn substring(&mut self, p: &Pattern) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let escaped = |s: &str| json_escaped(s);
                if p.parts.iter().all(|s| s.is_ascii()) {
                    let ph = self.bind(Param::Text(like_pattern(&unanchored(p), escaped)));
                    format!("e.doc LIKE {ph} ESCAPE '\\'")
                } else {
                    let ph = self.bind(Param::Text(regex_pattern(&unanchored(p), escaped)));
                    format!("e.doc REGEXP {ph}")
                }
            }
            Dialect::Postgres => {
                let ph = self.bind(Param::Text(like_pattern(&unanchored(p), |s| {
                    json_escaped(&lower(s))
                })));
                format!("lower(e.doc::text) LIKE {ph} ESCAPE E'\\\\'")
            }
        }
    }

    fn field(&mut self, path: &[String], m: &Matcher) -> String {
        if let Some(col) = column_of(path) {
            match m {
                Matcher::Exists => return format!("e.{col} IS NOT NULL"),
                Matcher::Pattern(p) if col != "category" || p.is_exact() => {
                    return self.column(col, p);
                }
                _ => {}
            }
        }
        match m {
            Matcher::Exists => self.exists(path),
            Matcher::Pattern(p) => self.doc_pattern(path, p),
            Matcher::Compare(op, n) => self.compare(path, *op, *n),
        }
    }

    /// Columns hold lower-cased values.
    fn column(&mut self, col: &str, p: &Pattern) -> String {
        if col == "category" {
            return match self.dialect {
                Dialect::Sqlite => {
                    let ph = self.bind(Param::Text(format!(",{},", lower(&p.parts[0]))));
                    format!("instr(',' || e.category || ',', {ph}) > 0")
                }
                Dialect::Postgres => {
                    let ph = self.bind(Param::Text(lower(&p.parts[0])));
                    format!("e.category @> ARRAY[{ph}]::text[]")
                }
            };
        }
        if p.is_exact() {
            let ph = self.bind(Param::Text(lower(&p.parts[0])));
            format!("e.{col} = {ph}")
        } else {
            let ph = self.bind(Param::Text(like_pattern(p, lower)));
            match self.dialect {
                Dialect::Sqlite => format!("e.{col} LIKE {ph} ESCAPE '\\'"),
                Dialect::Postgres => format!("e.{col} LIKE {ph} ESCAPE E'\\\\'"),
            }
        }
    }

    fn sqlite_path(&mut self, path: &[String]) -> String {
        let mut p = String::from("$");
        for seg in path {
            p.push_str(".\"");
            p.push_str(seg);
            p.push('"');
        }
        self.bind(Param::Text(p))
    }

    fn exists(&mut self, path: &[String]) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let p = self.sqlite_path(path);
                format!("COALESCE(json_type(e.doc, {p}), 'null') <> 'null'")
            }
            Dialect::Postgres => {
                let p = self.bind(Param::TextArray(path.to_vec()));
                format!("COALESCE(jsonb_typeof(e.doc #> {p}), 'null') <> 'null'")
            }
        }
    }

    fn doc_pattern(&mut self, path: &[String], pat: &Pattern) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                // Parsing JSON is the cost of a field match; a plain substring test on the
                // document text rules out most rows first. It never changes the answer: a
                // value that matches contains the pattern's literal (ASCII, case-insensitive
                // like LIKE itself), and so does the document's JSON text of that value.
                // Bound first: SQLite's `?` placeholders are positional.
                let prefilter = pat
                    .parts
                    .iter()
                    .filter(|s| s.is_ascii() && s.len() >= 3)
                    .max_by_key(|s| s.len())
                    .map(|literal| {
                        let ph = self.bind(Param::Text(format!(
                            "%{}%",
                            like_escape(&json_escaped(literal))
                        )));
                        format!("e.doc LIKE {ph} ESCAPE '\\' AND ")
                    })
                    .unwrap_or_default();
                let p1 = self.sqlite_path(path);
                let p2 = self.sqlite_path(path);
                let in_array = self.matches(
                    "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE j.value END",
                    pat,
                );
                let m_true = self.matches("'true'", pat);
                let m_false = self.matches("'false'", pat);
                let p3 = self.sqlite_path(path);
                let m_scalar = self.matches(&format!("json_extract(e.doc, {p3})"), pat);
                format!(
                    "({prefilter}CASE json_type(e.doc, {p1}) \
                     WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(e.doc, {p2}) AS j \
                       WHERE j.type NOT IN ('object', 'array', 'null') AND {in_array}) \
                     WHEN 'object' THEN 0 WHEN 'true' THEN {m_true} WHEN 'false' THEN {m_false} \
                     ELSE {m_scalar} END)"
                )
            }
            Dialect::Postgres => {
                let p = self.bind(Param::TextArray(path.to_vec()));
                let in_array = self.matches("lower(j.v #>> '{}')", pat);
                let m_scalar = self.matches(&format!("lower(e.doc #>> {p})"), pat);
                format!(
                    "CASE jsonb_typeof(e.doc #> {p}) \
                     WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(e.doc #> {p}) AS j(v) \
                       WHERE jsonb_typeof(j.v) IN ('string', 'number', 'boolean') AND {in_array}) \
                     WHEN 'object' THEN false WHEN 'null' THEN false \
                     ELSE {m_scalar} END"
                )
            }
        }
    }

    fn compare(&mut self, path: &[String], op: CmpOp, n: f64) -> String {
        let op = op.sql();
        match self.dialect {
            Dialect::Sqlite => {
                let p = self.sqlite_path(path);
                let n1 = self.bind(Param::Real(n));
                let n2 = self.bind(Param::Real(n));
                format!(
                    "EXISTS (SELECT 1 FROM json_each(e.doc, {p}) AS j WHERE \
                     CASE WHEN j.type IN ('integer', 'real') THEN j.value {op} {n1} \
                     WHEN j.type = 'text' AND j.value REGEXP '{NUMERIC_RE}' \
                       THEN CAST(trim(j.value) AS REAL) {op} {n2} \
                     ELSE 0 END)"
                )
            }
            Dialect::Postgres => {
                let p = self.bind(Param::TextArray(path.to_vec()));
                let n = self.bind(Param::Real(n));
                format!(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(e.doc #> {p}) \
                       WHEN 'array' THEN e.doc #> {p} ELSE jsonb_build_array(e.doc #> {p}) END) AS j(v) \
                     WHERE CASE jsonb_typeof(j.v) \
                       WHEN 'number' THEN (j.v)::numeric {op} {n}::float8::numeric \
                       WHEN 'string' THEN CASE WHEN (j.v #>> '{{}}') ~ '{NUMERIC_RE}' \
                         THEN trim(j.v #>> '{{}}')::numeric {op} {n}::float8::numeric ELSE false END \
                       ELSE false END)"
                )
            }
        }
    }
}

/// Free text is a substring search: drop the anchors.
fn unanchored(p: &Pattern) -> Pattern {
    Pattern {
        parts: p.parts.clone(),
        anchored_start: false,
        anchored_end: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;

    fn compile(d: Dialect, q: &str) -> SqlBuilder {
        let e = parse(q).unwrap().unwrap();
        let mut b = SqlBuilder::new(d);
        b.push_expr(&e);
        b
    }

    #[test]
    fn values_never_reach_the_sql_text() {
        let evil = r#"a:"'; DROP TABLE events;--" OR "x' OR 1=1 --" b.c:*'-- NOT d:>5"#;
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let b = compile(d, evil);
            assert!(!b.sql.contains("DROP"), "{}", b.sql);
            assert!(!b.sql.contains("1=1"), "{}", b.sql);
            assert!(!b.params.is_empty());
        }
    }

    #[test]
    fn placeholders_match_params() {
        let q = "process.name:power* AND NOT (user.name:SYSTEM OR event.code:4688) x:>3 free";
        let s = compile(Dialect::Sqlite, q);
        // count `?` outside string literals (the numeric regex literal has some)
        let outside: String = s.sql.split('\'').step_by(2).collect();
        assert_eq!(outside.matches('?').count(), s.params.len());
        let p = compile(Dialect::Postgres, q);
        let max = (1..=p.params.len())
            .filter(|i| p.sql.contains(&format!("${i}")))
            .count();
        assert_eq!(max, p.params.len());
    }

    #[test]
    fn indexed_columns_stay_bare_outside_not() {
        let q = r#"host.name:"WS-01" AND process.entity_id:"{A}" AND process.parent.entity_id:"{P}"
            AND user.name:u AND process.name:p AND source.ip:s AND destination.ip:d"#;
        let s = compile(Dialect::Sqlite, q);
        for col in [
            "host_name",
            "entity_id",
            "parent_entity_id",
            "user_name",
            "process_name",
            "source_ip",
            "destination_ip",
        ] {
            assert!(s.sql.contains(&format!("(e.{col} = ?)")), "{}", s.sql);
        }
        assert!(!s.sql.contains("COALESCE"), "{}", s.sql);
        assert_eq!(s.params[0], Param::Text("ws-01".into()));
        let p = compile(Dialect::Postgres, "NOT host.name:x");
        assert!(
            p.sql.contains("COALESCE((e.host_name = $1), false)"),
            "{}",
            p.sql
        );
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse("*a%b_*");
        assert_eq!(like_pattern(&p, str::to_owned), r"%a\%b\_%");
        assert_eq!(
            regex_pattern(&Pattern::parse("Пр*вет"), str::to_owned),
            "(?is)^Пр.*вет$"
        );
        assert_eq!(json_escaped(r#"C:\x "y""#), r#"C:\\x \"y\""#);
        assert_eq!(like_pattern(&Pattern::parse("abc"), str::to_owned), "abc");
        assert_eq!(like_pattern(&Pattern::parse("abc*"), str::to_owned), "abc%");
        assert_eq!(like_pattern(&Pattern::parse("*%*"), str::to_owned), r"%\%%");
        assert_eq!(like_pattern(&Pattern::parse("**"), str::to_owned), "%");
    }
}
