//! Every JSON document survives protobuf and back unchanged; a bad protobuf event is refused
//! alone with a pointer; a body that is not a batch is refused as a whole.

use std::path::{Path, PathBuf};

use dozor_wire::{Malformed, WireError, decode_batch, encode_batch, event_from_proto, pb};
use prost::Message;
use serde_json::{Value, json};

fn round_trip(docs: Vec<Value>) -> Vec<Value> {
    let body = encode_batch(docs).expect("objects encode");
    decode_batch(&body)
        .expect("our own body decodes")
        .into_iter()
        .map(|e| event_from_proto(e).expect("our own events convert"))
        .collect()
}

#[test]
fn typed_fields_and_everything_else_come_back_unchanged() {
    let docs = vec![
        // Canonical forms: typed.
        json!({
            "@timestamp": "2026-12-07T10:00:00.123456789Z",
            "event": {"id": "0b6a9a4e-8f6c-4d6a-9a8e-1c2d3e4f5a6b", "category": ["process"],
                      "type": ["start"], "code": "1", "kind": "event"},
            "process": {"pid": 4242, "command_line": "cmd.exe /c whoami",
                        "parent": {"pid": 1, "name": "init"}},
            "winlog": {"event_id": 1, "process": {"pid": 7, "thread": {"id": 9}},
                       "user": {"identifier": "S-1-5-18"},
                       "event_data": {"Image": "C:\\x.exe", "Hashes": ["a", "b"], "Count": 3}},
            "source": {"ip": "10.0.0.1", "port": 445},
            "dns": {"question": {"name": "example.org"}},
        }),
        // The same paths with other types or forms: all kept as they were, in `other`.
        json!({
            "@timestamp": "2026-12-07T10:00:00+03:00",
            "event": {"id": "0B6A9A4E-8F6C-4D6A-9A8E-1C2D3E4F5A6B", "category": [],
                      "type": ["start", 1], "code": 1},
            "process": {"pid": "4242", "parent": {}},
            "winlog": {"event_id": -1, "process": {"pid": 1.5}},
            "source": {"port": 70000},
            "host": {},
            "message": null,
        }),
        // Values of every JSON kind, nested.
        json!({
            "labels": {"a": true, "b": false, "n": null, "neg": -5, "big": u64::MAX,
                       "float": 0.1, "exp": 1e300, "empty_obj": {}, "empty_arr": [],
                       "deep": {"x": [[1, [2, {"y": "z"}]]]}, "key/with~chars": "ok"},
            "message": "текст по-русски",
        }),
        json!({}),
    ];
    assert_eq!(round_trip(docs.clone()), docs);
}

#[test]
fn a_non_object_is_refused_with_its_index() {
    let err = encode_batch(vec![json!({}), json!([1])]).unwrap_err();
    assert!(matches!(err, WireError::NotAnObject { index: 1 }), "{err}");
}

fn object(members: Vec<(&str, pb::Value)>) -> pb::Object {
    pb::Object {
        members: members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

fn kind(kind: pb::value::Kind) -> pb::Value {
    pb::Value { kind: Some(kind) }
}

#[test]
fn a_bad_event_says_what_and_where() {
    use pb::value::Kind;
    let nan = pb::Event {
        other: Some(object(vec![(
            "a/b",
            kind(Kind::Array(pb::Array {
                items: vec![kind(Kind::Uint(1)), kind(Kind::Float(f64::NAN))],
            })),
        )])),
        ..Default::default()
    };
    let err = event_from_proto(nan).unwrap_err();
    assert_eq!(err.pointer, "/a~1b/1");
    assert!(err.message.contains("not finite"), "{err}");

    let no_kind = pb::Event {
        other: Some(object(vec![(
            "x",
            kind(Kind::Object(object(vec![("y", pb::Value { kind: None })]))),
        )])),
        ..Default::default()
    };
    assert_eq!(
        event_from_proto(no_kind).unwrap_err(),
        Malformed {
            pointer: "/x/y".into(),
            message: "a value with no kind".into()
        }
    );

    let short_id = pb::Event {
        event: Some(pb::EventMeta {
            id: Some(vec![1, 2, 3]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = event_from_proto(short_id).unwrap_err();
    assert_eq!(err.pointer, "/event/id");
    assert!(err.message.contains("3 bytes"), "{err}");
}

#[test]
fn a_body_that_is_not_a_batch_is_refused_whole() {
    assert!(matches!(
        decode_batch(b"{\"not\": \"protobuf\"}"),
        Err(WireError::Decode(_))
    ));
    // Nesting far past any event: prost stops at its recursion limit, no stack overflow.
    let mut value = pb::Value {
        kind: Some(pb::value::Kind::Null(true)),
    };
    for _ in 0..300 {
        value = pb::Value {
            kind: Some(pb::value::Kind::Array(pb::Array { items: vec![value] })),
        };
    }
    let body = pb::EventBatch {
        events: vec![pb::Event {
            other: Some(object(vec![("deep", value)])),
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let err = decode_batch(&body).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

/// ../shared (or DOZOR_SHARED_DIR), `None` with a message when absent and the variable unset.
fn shared_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DOZOR_SHARED_DIR") {
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
        println!("skipped: ../shared not found and DOZOR_SHARED_DIR unset");
        None
    }
}

/// Every normalized event of the EVTX samples comes back unchanged, and most need nothing
/// outside the typed fields but their event data.
#[test]
fn real_windows_events_come_back_unchanged() {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("datasets/evtx-samples");
    let mut files: Vec<PathBuf> = walk(&dir);
    files.sort();
    let mut docs = Vec::new();
    for file in files.iter().take(60) {
        let Ok(events) = dozor_decode::read_path(file, &Default::default()) else {
            continue;
        };
        docs.extend(
            events
                .flatten()
                .filter_map(|flat| dozor_decode::winlog::to_event(&flat).ok())
                .take(200),
        );
    }
    assert!(docs.len() > 1000, "only {} events", docs.len());
    let back = round_trip(docs.clone());
    assert_eq!(back.len(), docs.len());
    for (i, (a, b)) in docs.iter().zip(&back).enumerate() {
        assert_eq!(a, b, "event {i} changed");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("the samples directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "evtx") {
            out.push(path);
        }
    }
    out
}
