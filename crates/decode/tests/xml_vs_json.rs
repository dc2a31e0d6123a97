//! The same EVTX record, rendered by the `evtx` crate as XML and read with `parse_event_xml`,
//! flattens like the JSON path that `read_path` takes.
//!
//! XML has no types: where the JSON rendering gives a number or a boolean (`"ProcessId": 4460`),
//! the XML gives text (`<Data Name="ProcessId">4460</Data>`). Payload values are kept as their
//! input gives them, so the two are compared as text (`Int(4460)` is `Str("4460")`, see
//! `common::same_text`). System numbers (`EventID`, `Level`, ...) are `Int` in both.
//!
//! One renderer difference is allowed: XML can't hold control characters, so evtx's XML
//! renderer writes `_` where its JSON renderer writes `\u0003` (see `common::same_text`).

mod common;

use std::collections::{HashMap, VecDeque};

use dozor_decode::{InputFormat, ReadOptions, Value, parse_event_xml, read_path};

#[test]
fn xml_rendering_flattens_like_json_rendering() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("datasets/evtx-samples");
    let opts = ReadOptions {
        format: InputFormat::Evtx,
        ..ReadOptions::default()
    };
    let mut compared = 0;
    let mut failures = Vec::new();
    for file in common::files_with_extension(&dir, "evtx") {
        let Ok(parser) = evtx::EvtxParser::from_path(&file) else {
            continue;
        };
        let mut parser = parser.with_configuration(evtx::ParserSettings::new().indent(false));
        let mut xml_by_id: HashMap<u64, VecDeque<String>> = HashMap::new();
        for record in parser.records().flatten() {
            xml_by_id
                .entry(record.event_record_id)
                .or_default()
                .push_back(record.data);
        }
        let Ok(events) = read_path(&file, &opts) else {
            continue;
        };
        for event in events.flatten() {
            // Damaged records can lack it (sample_with_a_bad_chunk_magic.evtx has one): they
            // can't be paired with their XML.
            let Some(Value::Int(id)) = event.get("EventRecordID") else {
                continue;
            };
            let Some(xml) = u64::try_from(*id)
                .ok()
                .and_then(|id| xml_by_id.get_mut(&id)?.pop_front())
            else {
                continue;
            };
            let from_xml = match parse_event_xml(&xml) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(format!("{}: record {id}: {e}", file.display()));
                    continue;
                }
            };
            compared += 1;
            for d in common::diff_events(&event, &from_xml, |_, a, b| common::same_text(a, b)) {
                failures.push(format!("{}: record {id}: {d}", file.display()));
            }
        }
    }
    println!("{compared} records compared");
    if !failures.is_empty() {
        let shown: Vec<_> = failures.iter().take(40).collect();
        panic!(
            "{} differences, first ones:\n{}",
            failures.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(compared > 5000, "only {compared} records compared");
}

#[test]
fn system_numbers_are_ints_in_both() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let file = shared.join("datasets/evtx-samples/system.evtx");
    let mut parser = evtx::EvtxParser::from_path(&file).expect("system.evtx");
    let xml = parser.records().flatten().next().expect("a record").data;
    let from_xml = parse_event_xml(&xml).expect("xml");
    let opts = ReadOptions {
        format: InputFormat::Evtx,
        ..ReadOptions::default()
    };
    let from_json = read_path(&file, &opts)
        .expect("evtx")
        .flatten()
        .next()
        .expect("a record");
    for name in [
        "EventID",
        "EventID_Qualifiers",
        "Level",
        "Task",
        "EventRecordID",
    ] {
        assert!(
            matches!(from_xml.get(name), Some(Value::Int(_))),
            "{name} in {from_xml:?}"
        );
        assert_eq!(from_xml.get(name), from_json.get(name), "{name}");
    }
    // EventID 6009 carries Qualifiers; its unnamed Data elements are a list.
    assert_eq!(from_json.get("EventID"), Some(&Value::Int(6009)));
    assert!(matches!(from_json.get("Data"), Some(Value::List(items)) if items.len() == 5));
}
