//! Damaged and foreign inputs: errors say where, good records are still returned, nothing
//! panics.

mod common;

use std::path::Path;

use dozor_decode::{DecodeError, FlatEvent, InputFormat, Location, ReadOptions, read_path};

fn read_all(path: &Path, threads: usize) -> (Vec<FlatEvent>, Vec<DecodeError>) {
    let opts = ReadOptions {
        format: InputFormat::Evtx,
        evtx_threads: threads,
        ..ReadOptions::default()
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in read_path(path, &opts).unwrap_or_else(|e| panic!("{e}")) {
        match item {
            Ok(e) => good.push(e),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

#[test]
fn empty_file_is_one_clear_error() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let path = shared.join("datasets/evtx-samples/Application.evtx");
    for format in [InputFormat::Auto, InputFormat::Evtx] {
        let err = read_path(
            &path,
            &ReadOptions {
                format,
                ..ReadOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.is_fatal());
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(err.to_string().contains("not an EVTX file"), "{err}");
    }
}

#[test]
fn record_with_zero_data_size() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (good, bad) = read_all(
        &shared.join("datasets/evtx-samples/sample-with-zero-data-size-event.evtx"),
        1,
    );
    assert_eq!(good.len(), 449);
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0].location(),
        Location::ChunkOffset {
            chunk: Some(0),
            offset: 0x820
        }
    );
    assert!(!bad[0].is_fatal());
    let text = bad[0].to_string();
    assert!(
        text.contains("sample-with-zero-data-size-event.evtx: chunk 0, offset 0x820"),
        "{text}"
    );
    assert!(text.contains("data size"), "{text}");
}

#[test]
fn bad_chunk_magic() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (good, bad) = read_all(
        &shared.join("datasets/evtx-samples/sample_with_a_bad_chunk_magic.evtx"),
        1,
    );
    assert_eq!(good.len(), 301);
    let locations: Vec<_> = bad.iter().map(DecodeError::location).collect();
    assert!(
        locations.contains(&Location::Chunk { chunk: 6 }),
        "{locations:?}"
    );
    assert!(
        locations.contains(&Location::Chunk { chunk: 10 }),
        "{locations:?}"
    );
    assert!(
        bad.iter().all(|e| e.to_string().contains("magic")),
        "{bad:?}"
    );
}

#[test]
fn dirty_and_odd_files_still_give_their_records() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("datasets/evtx-samples");
    // (file, records, errors)
    for (file, records, errors) in [
        ("security.evtx", 2261, 0),
        ("security_bad_string_cache.evtx", 2261, 0),
        ("sample-with-irregular-bool-values.evtx", 3028, 0),
        ("system.evtx", 1881, 0),
        ("new-user-security.evtx", 4, 0),
        ("Security_short_selected.evtx", 7, 0),
        // Chunks past the header's count hold garbage: reported, the rest is read.
        ("sysmon.evtx", 358, 8),
    ] {
        let (good, bad) = read_all(&dir.join(file), 1);
        assert_eq!(
            (good.len(), bad.len()),
            (records, errors),
            "{file}: {bad:?}"
        );
        assert!(good.iter().all(|e| e.get("EventID").is_some()), "{file}");
        for e in &bad {
            assert!(matches!(e.location(), Location::Chunk { .. }), "{e}");
        }
    }
}

#[test]
fn threads_give_the_same_stream() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for file in [
        "sample_with_a_bad_chunk_magic.evtx",
        "security.evtx",
        "sysmon.evtx",
    ] {
        let path = shared.join("datasets/evtx-samples").join(file);
        let (good1, bad1) = read_all(&path, 1);
        let (good4, bad4) = read_all(&path, 4);
        assert_eq!(good1, good4, "{file}");
        let text = |v: &[DecodeError]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert_eq!(text(&bad1), text(&bad4), "{file}");
    }
}

#[test]
fn not_evtx_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fake.evtx");
    std::fs::write(&path, b"MZ\x90\x00 this is a PE file, not a log").expect("write");
    let err = read_path(&path, &ReadOptions::default()).unwrap_err();
    assert!(err.is_fatal());
    assert!(
        err.to_string().contains("fake.evtx: not an EVTX file"),
        "{err}"
    );
    let err = read_path(
        &path,
        &ReadOptions {
            format: InputFormat::Evtx,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("ElfFile"), "{err}");
    let missing = dir.path().join("missing.evtx");
    let err = read_path(&missing, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, DecodeError::Io { .. }), "{err}");
}

/// A small deterministic generator (xorshift), so failures can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_corrupted_files_do_not_panic() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let original = std::fs::read(shared.join("datasets/evtx-samples/security.evtx")).expect("read");
    // The header and the first three chunks keep the test fast.
    let original = &original[..4096 + 3 * 65536];
    let (clean, _) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clean.evtx");
        std::fs::write(&path, original).expect("write");
        read_all(&path, 1)
    };
    assert!(clean.len() > 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("damaged.evtx");

    for cut in [
        8,
        100,
        4095,
        4096,
        4096 + 600,
        4096 + 65535,
        4096 + 65536 + 30_000,
    ] {
        std::fs::write(&path, &original[..cut]).expect("write");
        if let Ok(events) = read_path(&path, &ReadOptions::default()) {
            let n = events.count();
            assert!(n <= clean.len() + 1, "cut at {cut}: {n} items");
        }
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut total_errors = 0;
    for round in 0..120 {
        let mut bytes = original.to_vec();
        let flips = 1 + rng.next() % 64;
        for _ in 0..flips {
            // Mostly inside the chunks, sometimes in headers.
            let at = (rng.next() as usize) % bytes.len();
            bytes[at] = rng.next() as u8;
        }
        std::fs::write(&path, &bytes).expect("write");
        let threads = if round % 4 == 0 { 2 } else { 1 };
        let opts = ReadOptions {
            format: InputFormat::Evtx,
            evtx_threads: threads,
            ..ReadOptions::default()
        };
        match read_path(&path, &opts) {
            Ok(events) => {
                for item in events {
                    if let Err(e) = item {
                        total_errors += 1;
                        assert!(e.path().is_some(), "{e}");
                    }
                }
            }
            Err(e) => assert!(e.is_fatal()),
        }
    }
    println!("{total_errors} errors reported over the corrupted copies");
}
