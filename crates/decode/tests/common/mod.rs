//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dozor_decode::{FlatEvent, Value};

/// The reference data folder: `$DOZOR_SHARED_DIR`, else `<repo>/../shared`. `None` (after printing
/// "skipped: ../shared not found") when it is absent and the variable is unset; a panic when the
/// variable names a folder that does not exist.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOZOR_SHARED_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "DOZOR_SHARED_DIR={} does not exist",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: ../shared not found");
        None
    }
}

/// Every file under `dir` whose extension is `ext`, sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether two values say the same thing once typed JSON numbers/booleans and XML text are put
/// side by side: `Int(4460)` is `Str("4460")`, `Bool(true)` is `Str("true")`, a float is the
/// text it parses from. Lists compare item by item.
pub fn same_text(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_text(a, b))
        }
        (Value::Float(x), Value::Str(s)) | (Value::Str(s), Value::Float(x)) => s
            .parse::<f64>()
            .is_ok_and(|y| y == *x || (y.is_nan() && x.is_nan())),
        (Value::Str(x), Value::Str(y)) => x == y || same_but_control_chars(x, y),
        (Value::Str(s), other) | (other, Value::Str(s)) => match other {
            Value::Int(i) => *s == i.to_string(),
            Value::Bool(v) => *s == v.to_string(),
            _ => false,
        },
        _ => a == b,
    }
}

/// Field-by-field differences between two events, each compared with `eq`.
pub fn diff_events(
    a: &FlatEvent,
    b: &FlatEvent,
    eq: impl Fn(&str, &Value, &Value) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let names = |e: &FlatEvent| e.fields.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        out.push(format!(
            "field names differ:\n  {:?}\n  {:?}",
            names(a),
            names(b)
        ));
    }
    for ((na, va), (_, vb)) in a.fields.iter().zip(&b.fields) {
        if !eq(na, va, vb) {
            out.push(format!("{na}: {va:?} != {vb:?}"));
        }
    }
    if a.timestamp_millis != b.timestamp_millis {
        out.push(format!(
            "timestamp {:?} != {:?}",
            a.timestamp_millis, b.timestamp_millis
        ));
    }
    out
}

/// XML can't hold control characters: evtx's XML renderer writes `_` for each one the JSON
/// renderer escapes (`\u0003`).
fn same_but_control_chars(x: &str, y: &str) -> bool {
    let xml_safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c < ' ' && !matches!(c, '\t' | '\n' | '\r') {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    x.chars().count() == y.chars().count() && xml_safe(x) == xml_safe(y)
}
