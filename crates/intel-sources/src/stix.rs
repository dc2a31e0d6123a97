//! STIX 2.1 (and 2.0) bundles → indicators.
//!
//! - `indicator` objects with `pattern_type: stix` (or none, as in 2.0) whose pattern is one
//!   observation or an OR of observations, each an OR of `=` comparisons on a supported path:
//!   `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`, `url:value`,
//!   `file:hashes.MD5` / `'SHA-1'` / `'SHA-256'` / `'SHA-512'`, `file:name`,
//!   `email-addr:value`, `email-message:from_ref.value` / `sender_ref.value`,
//!   `windows-registry-key:key`, `network-traffic:dst_ref.value` / `src_ref.value`,
//!   and the HTTP request's `User-Agent` header. Every comparison becomes an indicator
//!   (an OR means any of them is enough). Context: `valid_from` → first seen, `valid_until`
//!   → expiry, `confidence`, `labels` and `indicator_types` → tags, TLP from
//!   `object_marking_refs` (the standard TLP marking ids and the bundle's own TLP marking
//!   definitions) → `tlp:<colour>` tags, the indicator id as object id.
//! - `observed-data`: the SCOs it holds (2.0 `objects`) or refers to (2.1 `object_refs`)
//!   of the kinds above, with `to_ids` false (an observation, not a detection rule) and
//!   `first_observed`/`last_observed` as first/last seen.
//!
//! Reported in [`SyncBatch::skipped`] with the reason, never dropped silently: other pattern
//! types, `AND`, `FOLLOWEDBY`, qualifiers (`WITHIN`, `REPEATS`, `START`/`STOP`), operators
//! other than `=` (`MATCHES`, `LIKE`, `IN`, `!=`, …), `NOT`, typed literals, unsupported object
//! paths, values that do not normalize, revoked indicators. When only some branches of an
//! OR are unsupported, the others import and the rest is reported under the same id.

use std::collections::HashMap;
use std::path::Path;

use dozor_intel::{Ioc, IocKind, IocSource};
use serde_json::Value;

use crate::http::HttpSettings;
use crate::time::iso_value_ms;
use crate::{SourceError, SyncBatch, push_tag};

/// The four TLP 1.0 marking definitions every STIX 2.x producer shares.
const TLP_MARKINGS: [(&str, &str); 4] = [
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "tlp:white",
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "tlp:green",
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "tlp:amber",
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        "tlp:red",
    ),
];

/// Reads a bundle file.
pub fn read_bundle(path: &Path, source: &str) -> Result<SyncBatch, SourceError> {
    let bytes = std::fs::read(path).map_err(|e| SourceError::io(path, e))?;
    parse_bundle(&path.display().to_string(), &bytes, source)
}

/// Fetches a bundle over HTTP(S).
pub async fn fetch_bundle(
    url: &str,
    settings: &HttpSettings,
    source: &str,
) -> Result<SyncBatch, SourceError> {
    let http = settings.http()?;
    let request = http.client.get(url).header(
        reqwest::header::ACCEPT,
        "application/stix+json, application/json",
    );
    let (_, bytes) = http.send(url, request).await?;
    parse_bundle(url, &bytes, source)
}

/// A bundle's bytes → indicators. A document holding one STIX object, or a JSON list of
/// objects, is taken as well. `origin` names it in errors.
pub fn parse_bundle(origin: &str, bytes: &[u8], source: &str) -> Result<SyncBatch, SourceError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        SourceError::malformed(
            origin,
            format!("line {}", e.line()),
            format!("not JSON: {e}"),
        )
    })?;
    let single;
    let objects = match &doc {
        Value::Array(list) => list.as_slice(),
        Value::Object(_) if doc.get("type").and_then(Value::as_str) == Some("bundle") => {
            match doc.get("objects") {
                None => &[][..],
                Some(Value::Array(a)) => a.as_slice(),
                Some(_) => {
                    return Err(SourceError::malformed(
                        origin,
                        "/objects",
                        "`objects` is not a list",
                    ));
                }
            }
        }
        // A document that is one STIX object.
        Value::Object(_)
            if doc.get("type").is_some_and(Value::is_string)
                && doc
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.contains("--")) =>
        {
            single = [doc.clone()];
            &single[..]
        }
        _ => {
            return Err(SourceError::malformed(
                origin,
                "/type",
                "neither a STIX bundle, a STIX object nor a list of them",
            ));
        }
    };
    let mut batch = SyncBatch::default();
    import_objects(objects, source, &mut batch);
    Ok(batch)
}

/// STIX objects (a bundle's, or a TAXII envelope's) → indicators in `batch`.
pub fn import_objects(objects: &[Value], source: &str, batch: &mut SyncBatch) {
    let mut markings: HashMap<&str, String> = TLP_MARKINGS
        .iter()
        .map(|(id, tlp)| (*id, (*tlp).to_owned()))
        .collect();
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for obj in objects {
        let Some(id) = obj.get("id").and_then(Value::as_str) else {
            continue;
        };
        by_id.insert(id, obj);
        if obj.get("type").and_then(Value::as_str) == Some("marking-definition")
            && let Some(tlp) = marking_tlp(obj)
        {
            markings.insert(id, tlp);
        }
    }
    for (i, obj) in objects.iter().enumerate() {
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("/objects/{i}"), str::to_owned);
        match obj.get("type").and_then(Value::as_str) {
            Some("indicator") => indicator(obj, &id, source, &markings, batch),
            Some("observed-data") => observed_data(obj, &id, source, &markings, &by_id, batch),
            _ => {}
        }
    }
}

/// `tlp:<colour>` of a marking definition (2.0/2.1 `definition_type: tlp`, or a TLP 2.0
/// extension marking named `TLP:…`).
fn marking_tlp(obj: &Value) -> Option<String> {
    if obj.get("definition_type").and_then(Value::as_str) == Some("tlp")
        && let Some(c) = obj.pointer("/definition/tlp").and_then(Value::as_str)
    {
        return Some(format!("tlp:{}", c.to_ascii_lowercase()));
    }
    let name = obj.get("name").and_then(Value::as_str)?;
    let colour = name
        .strip_prefix("TLP:")
        .or_else(|| name.strip_prefix("tlp:"))?;
    Some(format!("tlp:{}", colour.to_ascii_lowercase()))
}

/// Tags of an object: labels, indicator types and TLP markings.
fn tags_of(obj: &Value, markings: &HashMap<&str, String>) -> Vec<String> {
    let mut tags = Vec::new();
    for key in ["labels", "indicator_types"] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            for l in list.iter().filter_map(Value::as_str) {
                push_tag(&mut tags, l);
            }
        }
    }
    if let Some(refs) = obj.get("object_marking_refs").and_then(Value::as_array) {
        for r in refs.iter().filter_map(Value::as_str) {
            if let Some(tlp) = markings.get(r) {
                push_tag(&mut tags, tlp);
            }
        }
    }
    tags
}

fn confidence_of(obj: &Value) -> Option<u8> {
    obj.get("confidence")
        .and_then(Value::as_i64)
        .map(|c| u8::try_from(c.clamp(0, 100)).unwrap_or(100))
}

fn indicator(
    obj: &Value,
    id: &str,
    source: &str,
    markings: &HashMap<&str, String>,
    batch: &mut SyncBatch,
) {
    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        batch.skip(id, "revoked indicator");
        return;
    }
    let pattern_type = obj
        .get("pattern_type")
        .and_then(Value::as_str)
        .unwrap_or("stix");
    if pattern_type != "stix" {
        batch.skip(
            id,
            format!("pattern_type `{pattern_type}` is not supported"),
        );
        return;
    }
    let Some(pattern) = obj.get("pattern").and_then(Value::as_str) else {
        batch.skip(id, "indicator without a `pattern` string");
        return;
    };
    let comparisons = match parse_pattern(pattern) {
        Ok(c) => c,
        Err(reason) => {
            batch.skip(id, format!("pattern {pattern:?}: {reason}"));
            return;
        }
    };
    let tags = tags_of(obj, markings);
    let confidence = confidence_of(obj);
    let first_seen = iso_value_ms(obj.get("valid_from"));
    let expires = iso_value_ms(obj.get("valid_until"));
    let mut problems = Vec::new();
    let mut imported = 0usize;
    for comparison in comparisons {
        match comparison.and_then(|(kind, path, value)| {
            Ioc::new(kind, &value).map_err(|e| format!("{path} = '{value}': {e}"))
        }) {
            Ok(mut ioc) => {
                ioc.tags.clone_from(&tags);
                ioc.confidence = confidence;
                ioc.first_seen = first_seen;
                ioc.expires = expires;
                ioc.sources = vec![IocSource {
                    name: source.to_owned(),
                    object_ids: vec![id.to_owned()],
                }];
                batch.iocs.push(ioc);
                imported += 1;
            }
            Err(reason) => problems.push(reason),
        }
    }
    if !problems.is_empty() {
        let what = if imported == 0 {
            String::new()
        } else {
            format!(" ({imported} other comparison(s) of the OR imported)")
        };
        batch.skip(id, format!("{}{what}", problems.join("; ")));
    }
}

fn observed_data(
    obj: &Value,
    id: &str,
    source: &str,
    markings: &HashMap<&str, String>,
    by_id: &HashMap<&str, &Value>,
    batch: &mut SyncBatch,
) {
    let mut scos: Vec<&Value> = Vec::new();
    if let Some(map) = obj.get("objects").and_then(Value::as_object) {
        scos.extend(map.values());
    }
    if let Some(refs) = obj.get("object_refs").and_then(Value::as_array) {
        scos.extend(
            refs.iter()
                .filter_map(Value::as_str)
                .filter_map(|r| by_id.get(r).copied()),
        );
    }
    let tags = tags_of(obj, markings);
    let first_seen = iso_value_ms(obj.get("first_observed"));
    let last_seen = iso_value_ms(obj.get("last_observed"));
    let mut problems = Vec::new();
    for sco in scos {
        for (kind, value) in sco_values(sco) {
            match Ioc::new(kind, &value) {
                Ok(mut ioc) => {
                    ioc.to_ids = false;
                    ioc.tags.clone_from(&tags);
                    ioc.confidence = confidence_of(obj);
                    ioc.first_seen = first_seen;
                    ioc.last_seen = last_seen;
                    ioc.sources = vec![IocSource {
                        name: source.to_owned(),
                        object_ids: vec![id.to_owned()],
                    }];
                    batch.iocs.push(ioc);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    if !problems.is_empty() {
        batch.skip(id, problems.join("; "));
    }
}

/// The indicator values of one SCO (none for kinds Dozor does not match on).
fn sco_values(sco: &Value) -> Vec<(IocKind, String)> {
    let s = |key: &str| sco.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    match sco.get("type").and_then(Value::as_str) {
        Some("ipv4-addr" | "ipv6-addr") => out.extend(s("value").map(|v| (IocKind::Ip, v))),
        Some("domain-name") => out.extend(s("value").map(|v| (IocKind::Domain, v))),
        Some("url") => out.extend(s("value").map(|v| (IocKind::Url, v))),
        Some("email-addr") => out.extend(s("value").map(|v| (IocKind::Email, v))),
        Some("windows-registry-key") => out.extend(s("key").map(|v| (IocKind::RegistryKey, v))),
        Some("file") => {
            out.extend(s("name").map(|v| (IocKind::Filename, v)));
            if let Some(hashes) = sco.get("hashes").and_then(Value::as_object) {
                for (algo, v) in hashes {
                    if let (Some(kind), Some(v)) = (hash_kind(algo), v.as_str()) {
                        out.push((kind, v.to_owned()));
                    }
                }
            }
        }
        _ => {}
    }
    out
}

fn hash_kind(algo: &str) -> Option<IocKind> {
    match algo.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => Some(IocKind::Md5),
        "SHA1" => Some(IocKind::Sha1),
        "SHA256" => Some(IocKind::Sha256),
        "SHA512" => Some(IocKind::Sha512),
        _ => None,
    }
}

/// The kind of an object path (quotes around path parts removed).
fn path_kind(path: &str) -> Option<IocKind> {
    let path = path.replace('\'', "");
    let (object, property) = path.split_once(':')?;
    match (object, property) {
        ("ipv4-addr" | "ipv6-addr", "value") => Some(IocKind::Ip),
        ("domain-name", "value") => Some(IocKind::Domain),
        ("url", "value") => Some(IocKind::Url),
        ("email-addr", "value") | ("email-message", "from_ref.value" | "sender_ref.value") => {
            Some(IocKind::Email)
        }
        ("windows-registry-key", "key") => Some(IocKind::RegistryKey),
        ("network-traffic", "dst_ref.value" | "src_ref.value") => Some(IocKind::Ip),
        ("network-traffic", p)
            if p.eq_ignore_ascii_case("extensions.http-request-ext.request_header.User-Agent") =>
        {
            Some(IocKind::UserAgent)
        }
        ("file", "name") => Some(IocKind::Filename),
        ("file", p) => p.strip_prefix("hashes.").and_then(hash_kind),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    Str(String),
    /// An object path, keyword, operator or number.
    Word(String),
}

fn tokenize(p: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: &mut usize| -> Result<String, String> {
        // chars[*i] is the opening quote.
        let mut s = String::new();
        *i += 1;
        while *i < chars.len() {
            match chars[*i] {
                '\\' if *i + 1 < chars.len() => {
                    s.push(chars[*i + 1]);
                    *i += 2;
                }
                '\'' => {
                    *i += 1;
                    return Ok(s);
                }
                c => {
                    s.push(c);
                    *i += 1;
                }
            }
        }
        Err("unterminated string".into())
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '[' => {
                out.push(Tok::Open);
                i += 1;
            }
            ']' => {
                out.push(Tok::Close);
                i += 1;
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '\'' => out.push(Tok::Str(quoted(&mut i)?)),
            ',' => {
                out.push(Tok::Word(",".into()));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                i += 1;
                if i < chars.len() && chars[i] == '=' {
                    op.push('=');
                    i += 1;
                }
                out.push(Tok::Word(op));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => {
                let mut w = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '*') {
                        w.push(c);
                        i += 1;
                    } else if c == '\'' && w.ends_with('.') {
                        // A quoted path part: hashes.'SHA-256'.
                        let part = quoted(&mut i)?;
                        w.push('\'');
                        w.push_str(&part);
                        w.push('\'');
                    } else if c == '[' && w.contains(':') {
                        // A list index in a path: body_multipart[*].
                        while i < chars.len() && chars[i] != ']' {
                            w.push(chars[i]);
                            i += 1;
                        }
                        if i < chars.len() {
                            w.push(']');
                            i += 1;
                        }
                    } else {
                        break;
                    }
                }
                if matches!(w.as_str(), "t" | "h" | "b") && chars.get(i) == Some(&'\'') {
                    return Err(format!("typed literal {w}'…' is not supported"));
                }
                out.push(Tok::Word(w));
            }
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(out)
}

/// One comparison of a pattern: the kind, the object path and the value; or why it is not
/// supported.
pub type Comparison = Result<(IocKind, String, String), String>;

/// A STIX pattern → its comparisons, when the pattern is an OR of `=` comparisons (across one
/// or several observations). `Err` for a pattern that is not supported as a whole (AND,
/// qualifiers, syntax); an `Err` item for a comparison that is not (path, operator).
pub fn parse_pattern(pattern: &str) -> Result<Vec<Comparison>, String> {
    let tokens = tokenize(pattern)?;
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut expect_operand = true;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced `)`".to_owned())?;
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("OR") && !expect_operand => {
                expect_operand = true;
            }
            Tok::Word(w) if !expect_operand => {
                let w = w.to_ascii_uppercase();
                return Err(match w.as_str() {
                    "AND" => "AND of observations is not supported".to_owned(),
                    "FOLLOWEDBY" => "FOLLOWEDBY is not supported".to_owned(),
                    "WITHIN" | "REPEATS" | "START" | "STOP" => {
                        format!("the qualifier {w} is not supported")
                    }
                    _ => format!("unexpected `{w}`"),
                });
            }
            Tok::Open if expect_operand => {
                let close = tokens[i..]
                    .iter()
                    .position(|t| *t == Tok::Close)
                    .map(|p| p + i)
                    .ok_or_else(|| "unterminated observation `[`".to_owned())?;
                out.extend(observation(&tokens[i + 1..close])?);
                i = close;
                expect_operand = false;
            }
            other => return Err(format!("unexpected {other:?}")),
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unbalanced `(`".into());
    }
    if expect_operand {
        return Err("empty pattern or dangling OR".into());
    }
    Ok(out)
}

/// The comparisons inside one `[...]`.
fn observation(tokens: &[Tok]) -> Result<Vec<Comparison>, String> {
    let tokens: Vec<&Tok> = tokens
        .iter()
        .filter(|t| !matches!(t, Tok::LParen | Tok::RParen))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(Tok::Word(path)) = tokens.get(i) else {
            return Err("expected an object path".into());
        };
        if path.eq_ignore_ascii_case("NOT") {
            return Err("NOT is not supported".into());
        }
        let Some(Tok::Word(op)) = tokens.get(i + 1) else {
            return Err(format!("expected an operator after {path}"));
        };
        let mut next = i + 3;
        let value = match tokens.get(i + 2) {
            Some(Tok::Str(s)) => Some(s.clone()),
            // A non-string literal (a number, true/false) or an IN (...) list.
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") => {
                return Err("NOT is not supported".into());
            }
            Some(Tok::Word(_)) => None,
            _ => return Err(format!("expected a value after {path} {op}")),
        };
        if op.eq_ignore_ascii_case("IN") {
            // Skip the list, already filtered of its parentheses.
            while matches!(tokens.get(next), Some(Tok::Str(_)))
                || matches!(tokens.get(next), Some(Tok::Word(w)) if w == ",")
            {
                next += 1;
            }
        }
        out.push(match (op.as_str(), value, path_kind(path)) {
            ("=", Some(v), Some(kind)) => Ok((kind, path.clone(), v)),
            ("=", Some(_), None) => Err(format!("object path {path} is not supported")),
            ("=", None, _) => Err(format!("{path}: only string values are supported")),
            (op, _, _) => Err(format!("{path} {op}: only `=` comparisons are supported")),
        });
        match tokens.get(next) {
            None => return Ok(out),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("OR") => i = next + 1,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("AND") => {
                return Err("AND of comparisons is not supported".into());
            }
            Some(other) => return Err(format!("unexpected {other:?} after a comparison")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<(IocKind, String)> {
        parse_pattern(p)
            .expect("pattern")
            .into_iter()
            .map(|c| {
                let (k, _, v) = c.expect("comparison");
                (k, v)
            })
            .collect()
    }

    #[test]
    fn simple_comparisons_and_ors() {
        assert_eq!(
            ok("[ipv4-addr:value = '1.2.3.4']"),
            vec![(IocKind::Ip, "1.2.3.4".into())]
        );
        assert_eq!(
            ok("[file:hashes.'SHA-256' = 'AB'] OR [file:hashes.MD5 = 'cd']"),
            vec![(IocKind::Sha256, "AB".into()), (IocKind::Md5, "cd".into())]
        );
        assert_eq!(
            ok("[domain-name:value = 'a.b' OR url:value = 'http://x/\\'y']"),
            vec![
                (IocKind::Domain, "a.b".into()),
                (IocKind::Url, "http://x/'y".into())
            ]
        );
        assert_eq!(
            ok("([email-addr:value = 'a@b.c'])"),
            vec![(IocKind::Email, "a@b.c".into())]
        );
    }

    #[test]
    fn unsupported_patterns_say_why() {
        for (p, why) in [
            ("[a:b = 'x'] AND [c:d = 'y']", "AND"),
            ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", "WITHIN"),
            ("[x:a = '1' AND x:b = '2']", "AND"),
            ("[file:name MATCHES '^a']", ""),
            ("[file:size > 5]", ""),
            ("[ipv4-addr:value = '1.2.3.4'", "unterminated"),
        ] {
            match parse_pattern(p) {
                Err(reason) => assert!(reason.contains(why), "{p}: {reason}"),
                Ok(items) => assert!(
                    items.iter().all(|i| i.is_err()),
                    "{p} should not import: {items:?}"
                ),
            }
        }
        let mixed = parse_pattern("[file:name = 'a.exe' OR x509-certificate:issuer = 'CN=x']")
            .expect("pattern");
        assert!(mixed[0].is_ok());
        assert!(
            mixed[1]
                .as_ref()
                .expect_err("x509")
                .contains("not supported")
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// Random text from a pattern-ish alphabet never panics the tokenizer, the parser or the
    /// bundle reader.
    #[test]
    fn random_input_never_panics() {
        let alphabet: Vec<char> = "[]()' =!<>,.:*\\-_|/@abcdefghiORANDipv4-addr:value file:hashes.'SHA-256' MATCHES WITHIN hxxp:// ё€\n"
            .chars()
            .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 60) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_pattern(&s);
            let bundle = serde_json::json!({"type": "bundle", "objects": [
                {"type": "indicator", "id": "indicator--1", "pattern": s, "confidence": -5,
                 "valid_from": s, "object_marking_refs": [s]}]});
            let _ = parse_bundle("fuzz", bundle.to_string().as_bytes(), "f");
            let _ = parse_bundle("fuzz", s.as_bytes(), "f");
            let _ = crate::list::parse_freetext(&s, &crate::list::ListSettings::new("f"));
            let csv = crate::list::CsvSettings::new("f", 1, crate::list::ValueType::Guess);
            let _ = crate::list::parse_csv("fuzz", s.as_bytes(), &csv);
            let mut batch = SyncBatch::default();
            let attr = serde_json::json!({"type": s, "value": s, "timestamp": s,
                "first_seen": s, "Tag": [{"name": s}], "Event": {"uuid": s}});
            crate::misp_event::import_attribute(
                "f",
                &attr,
                &crate::misp_event::EventContext::default(),
                "",
                &mut batch,
            );
        }
    }
}
