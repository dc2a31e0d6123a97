//! Every SigmaHQ regression case: the records of each `.evtx` flatten exactly like the
//! evtx_dump-style `.json` beside it.
//!
//! The `.json` files were rendered by another tool than the `evtx` crate, and differ from it in
//! three ways that have nothing to do with flattening; these are the only differences allowed:
//! - GUIDs: evtx writes `{54849625-5478-4994-a5ba-3e3b0328c30d}`, the `.json` files
//!   `54849625-5478-4994-A5BA-3E3B0328C30D` (compared without braces, case-insensitively);
//! - `TimeCreated`: evtx keeps the 7 fractional digits of the FILETIME, the `.json` files 6
//!   (compared to the microsecond; `timestamp_millis` must be equal);
//! - trailing whitespace: the `.json` files drop it (`"cmd.exe "` vs `"cmd.exe"`); the decoder
//!   keeps values as they are, so these compare after `trim_end`.
//!
//! Types must match exactly: both renderings write numbers as JSON numbers, so `Int` vs `Str`
//! would be a real difference.
//!
//! One case disagrees in its data, listed in `KNOWN_DATA_DIFFERENCES`: the `.json` beside it was
//! edited (the EVTX's own bytes say `Explorer.EXE`, the `.json` `Explorer.exe`). The decoder
//! keeps the record's text as it is.

mod common;

use dozor_decode::{InputFormat, ReadOptions, Value, read_path};

fn is_guid(s: &str) -> bool {
    let s = s.trim_start_matches('{').trim_end_matches('}');
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn guid_key(s: &str) -> String {
    s.trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_uppercase()
}

/// `2026-07-17T14:18:34.0722135Z` -> `2026-07-17T14:18:34.072213`.
fn to_micros(s: &str) -> &str {
    match s.find('.') {
        Some(dot) => &s[..(dot + 7).min(s.len())],
        None => s,
    }
}

/// (file stem, field, value in the EVTX, value in the `.json`).
const KNOWN_DATA_DIFFERENCES: &[(&str, &str, &str, &str)] = &[(
    "ad691d92-15f2-4181-9aa4-723c74f9ddc3",
    "ParentCommandLine",
    "C:\\Windows\\Explorer.EXE",
    "C:\\Windows\\Explorer.exe",
)];

fn same_rendering(stem: &str, name: &str, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if let (Value::Str(x), Value::Str(y)) = (a, b)
        && KNOWN_DATA_DIFFERENCES.contains(&(stem, name, x.as_str(), y.as_str()))
    {
        return true;
    }
    let (Value::Str(x), Value::Str(y)) = (a, b) else {
        return false;
    };
    if x.trim_end() == y.trim_end() {
        return true;
    }
    if is_guid(x) && is_guid(y) && guid_key(x) == guid_key(y) {
        return true;
    }
    name == "TimeCreated" && to_micros(x) == to_micros(y)
}

#[test]
fn evtx_records_flatten_like_the_json_beside_them() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("sigma/regression_data");
    let evtx_files = common::files_with_extension(&dir, "evtx");
    assert!(
        evtx_files.len() >= 200,
        "expected the 202 regression cases, found {}",
        evtx_files.len()
    );
    let evtx_opts = ReadOptions {
        format: InputFormat::Evtx,
        ..ReadOptions::default()
    };
    let json_opts = ReadOptions {
        format: InputFormat::Json,
        ..ReadOptions::default()
    };
    let mut failures = Vec::new();
    let mut events = 0;
    for evtx in &evtx_files {
        let json = evtx.with_extension("json");
        let from_evtx: Vec<_> = read_path(evtx, &evtx_opts)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let from_json: Vec<_> = read_path(&json, &json_opts)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        if from_evtx.len() != from_json.len() {
            failures.push(format!(
                "{}: {} records in the EVTX, {} in the JSON",
                evtx.display(),
                from_evtx.len(),
                from_json.len()
            ));
            continue;
        }
        for (a, b) in from_evtx.iter().zip(&from_json) {
            events += 1;
            assert!(a.get("EventID").is_some(), "{}: no EventID", evtx.display());
            let stem = evtx
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            for d in common::diff_events(a, b, |n, x, y| same_rendering(stem, n, x, y)) {
                failures.push(format!("{}: {d}", evtx.display()));
            }
        }
    }
    println!(
        "{} regression cases, {events} records compared",
        evtx_files.len()
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
