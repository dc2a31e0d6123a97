//! Links: query strings (percent-encoded) and query-language terms.

use std::fmt::Write;

/// Percent-encodes a query-string component (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-encodes a path segment (an id in `/alerts/{id}`, `/rules/{id}`).
pub fn segment(text: &str) -> String {
    encode(text)
}

/// A query string built pair by pair; empty values are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// An empty query.
    pub fn new() -> Query {
        Query::default()
    }

    /// Adds `key=value` unless the value is empty.
    pub fn push(&mut self, key: &str, value: impl AsRef<str>) -> &mut Query {
        let value = value.as_ref();
        if !value.is_empty() {
            self.pairs.push((key.to_owned(), value.to_owned()));
        }
        self
    }

    /// Adds `key=value` for `Some`.
    pub fn push_opt(&mut self, key: &str, value: Option<impl AsRef<str>>) -> &mut Query {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }

    /// A copy without `key`, with `key=value` added.
    pub fn with(&self, key: &str, value: impl AsRef<str>) -> Query {
        let mut q = self.without(key);
        q.push(key, value);
        q
    }

    /// A copy without `key`.
    pub fn without(&self, key: &str) -> Query {
        Query {
            pairs: self
                .pairs
                .iter()
                .filter(|(k, _)| k != key)
                .cloned()
                .collect(),
        }
    }

    /// `path?k=v&...`, or `path` alone when empty.
    pub fn url(&self, path: &str) -> String {
        if self.pairs.is_empty() {
            return path.to_owned();
        }
        let mut out = String::with_capacity(path.len() + 16 * self.pairs.len());
        out.push_str(path);
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(&encode(k));
            out.push('=');
            out.push_str(&encode(v));
        }
        out
    }
}

/// A value as the query language reads it: bare when it is a plain word, quoted otherwise
/// (`"C:\Program Files\x.exe"`, `"a \"b\""`). A `*` stays a wildcard either way.
pub fn query_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            !c.is_whitespace() && !matches!(c, '"' | '(' | ')' | ':' | '\\' | '<' | '>' | '=')
        })
        && !matches!(value, "AND" | "OR" | "NOT");
    if plain {
        value.to_owned()
    } else {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        for c in value.chars() {
            if c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

/// `query AND field:value` (just `field:value` for an empty query; the old query in
/// parentheses when it has an `OR`).
pub fn add_term(query: &str, field: &str, value: &str) -> String {
    let term = format!("{field}:{}", query_value(value));
    let q = query.trim();
    if q.is_empty() {
        term
    } else if q.contains(" OR ") {
        format!("({q}) AND {term}")
    } else {
        format!("{q} AND {term}")
    }
}

/// The query that finds one process in the events: `{prefix}.entity_id` where the source
/// gives one (agent, Sysmon ProcessGuid), else `{prefix}.pid` on `host` (pids are only
/// unique per host). `prefix`: `process` or `process.parent`.
pub fn process_query(
    prefix: &str,
    entity_id: Option<&str>,
    pid: Option<&str>,
    host: Option<&str>,
) -> Option<String> {
    if let Some(id) = entity_id {
        return Some(add_term("", &format!("{prefix}.entity_id"), id));
    }
    let q = add_term("", &format!("{prefix}.pid"), pid?);
    Some(match host {
        Some(h) => add_term(&q, "host.name", h),
        None => q,
    })
}

/// `query AND NOT field:value`: leaves the value out.
pub fn exclude_term(query: &str, field: &str, value: &str) -> String {
    let term = format!("NOT {field}:{}", query_value(value));
    let q = query.trim();
    if q.is_empty() {
        term
    } else if q.contains(" OR ") {
        format!("({q}) AND {term}")
    } else {
        format!("{q} AND {term}")
    }
}

/// The `AND`-joined parts of a query without `OR` (or the whole query as one part).
fn and_parts(query: &str) -> Vec<&str> {
    let q = query.trim();
    if q.is_empty() {
        return Vec::new();
    }
    if q.contains(" OR ") {
        return vec![q];
    }
    q.split(" AND ").map(str::trim).collect()
}

/// Does the query already require (`Some(true)`) or exclude (`Some(false)`) `field:value` as
/// one of its `AND`-joined parts?
pub fn term_state(query: &str, field: &str, value: &str) -> Option<bool> {
    let term = format!("{field}:{}", query_value(value));
    let not = format!("NOT {term}");
    and_parts(query).into_iter().find_map(|p| {
        if p == term {
            Some(true)
        } else if p == not {
            Some(false)
        } else {
            None
        }
    })
}

/// The query without the `AND`-joined part `field:value` (or `NOT field:value`).
pub fn remove_term(query: &str, field: &str, value: &str) -> String {
    let term = format!("{field}:{}", query_value(value));
    let not = format!("NOT {term}");
    and_parts(query)
        .into_iter()
        .filter(|p| *p != term && *p != not)
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Is this a local path (`/...` but not `//...`)? Only such `return_to` targets are used.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidebar_terms_are_added_once_excluded_and_removed() {
        let q = add_term("", "user.name", "ivan");
        assert_eq!(term_state(&q, "user.name", "ivan"), Some(true));
        assert_eq!(term_state(&q, "user.name", "petr"), None);
        let q = exclude_term(&q, "host.name", "WS 1");
        assert_eq!(q, "user.name:ivan AND NOT host.name:\"WS 1\"");
        assert_eq!(term_state(&q, "host.name", "WS 1"), Some(false));
        assert_eq!(
            remove_term(&q, "user.name", "ivan"),
            "NOT host.name:\"WS 1\""
        );
        assert_eq!(remove_term(&q, "host.name", "WS 1"), "user.name:ivan");
        // Inside an OR the parts are not ours to take apart.
        assert_eq!(term_state("a:1 OR b:2", "a", "1"), None);
        assert_eq!(
            exclude_term("a:1 OR b:2", "c", "3"),
            "(a:1 OR b:2) AND NOT c:3"
        );
    }

    #[test]
    fn a_process_is_found_by_entity_id_else_by_pid_on_its_host() {
        assert_eq!(
            process_query("process", Some("{G}"), Some("7"), Some("h")).unwrap(),
            "process.entity_id:{G}"
        );
        assert_eq!(
            process_query("process.parent", None, Some("7"), Some("WS 1")).unwrap(),
            "process.parent.pid:7 AND host.name:\"WS 1\""
        );
        assert_eq!(
            process_query("process", None, Some("7"), None).unwrap(),
            "process.pid:7"
        );
        assert_eq!(process_query("process", None, None, Some("h")), None);
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        let mut q = Query::new();
        q.push("q", "process.name:cmd.exe")
            .push("empty", "")
            .push("status", "new");
        assert_eq!(
            q.url("/ui/events"),
            "/ui/events?q=process.name%3Acmd.exe&status=new"
        );
        assert_eq!(
            q.with("status", "x").url("/a"),
            "/a?q=process.name%3Acmd.exe&status=x"
        );
        assert_eq!(Query::new().url("/a"), "/a");
    }

    #[test]
    fn query_terms() {
        assert_eq!(query_value("cmd.exe"), "cmd.exe");
        assert_eq!(query_value("C:\\Windows\\x.exe"), "\"C:\\Windows\\x.exe\"");
        assert_eq!(query_value("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(query_value("OR"), "\"OR\"");
        assert_eq!(query_value(""), "\"\"");
        assert_eq!(add_term("", "user.name", "root"), "user.name:root");
        assert_eq!(add_term("x", "user.name", "root"), "x AND user.name:root");
        assert_eq!(
            add_term("a OR b", "host.name", "pc 1"),
            "(a OR b) AND host.name:\"pc 1\""
        );
    }

    #[test]
    fn local_paths() {
        assert!(is_local_path("/ui/alerts?x=1"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/\\evil"));
    }
}
