//! Sigma rules as `POST /api/v1/rules/test` takes them: YAML text loaded, compiled (with
//! filters and correlations) and run over a few events. An input starting with `!` is a bare
//! condition for the condition parser instead.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use dozor_sigma::condition::parse_condition;
use dozor_sigma::{Detector, DetectorOptions, EngineOptions, LoadOptions, RuleSet};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Events the compiled rules are run on (a Windows process start and a Linux login).
fn events() -> &'static [Value] {
    static EVENTS: OnceLock<Vec<Value>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        vec![
            json!({
                "@timestamp": "2026-01-01T00:00:00.000Z",
                "event": {"kind": "event", "category": ["process"], "type": ["start"], "code": "4688"},
                "host": {"name": "ws1", "os": {"type": "windows"}},
                "process": {"name": "powershell.exe", "command_line": "powershell -enc AAAA", "pid": 42},
                "user": {"name": "alice"},
                "winlog": {"channel": "Security", "event_id": 4688,
                           "event_data": {"NewProcessName": "C:\\Windows\\powershell.exe", "LogonType": "10"}}
            }),
            json!({
                "@timestamp": "2026-01-01T00:00:01.000Z",
                "event": {"kind": "event", "category": ["authentication"], "type": ["start"], "outcome": "failure"},
                "host": {"name": "srv", "os": {"type": "linux"}},
                "source": {"ip": "10.0.0.1", "port": 22},
                "user": {"name": "root"}
            }),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(condition) = text.strip_prefix('!') {
        if let Ok(expr) = parse_condition(condition) {
            let _ = format!("{expr:?}");
        }
        return;
    }
    let mut set = RuleSet::default();
    set.add_text(Path::new("<fuzz>"), text, &LoadOptions::default());
    let (detector, reports) =
        Detector::build(set, &EngineOptions::default(), &DetectorOptions::default());
    let _ = format!("{reports:?}");
    let engine = detector.engine();
    let mut scratch = engine.new_scratch();
    let mut hits = Vec::new();
    for event in events() {
        hits.clear();
        engine.matches(&dozor_event::detection_view(event), &mut scratch, &mut hits);
    }
});
