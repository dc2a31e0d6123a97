use std::fs;
use std::time::Instant;

use super::*;

const MARKER_RULE: &str = r#"
rule dozor_marker : test marker {
    meta:
        author = "dozor tests"
        severity = 7
        score = 0.5
        enabled = true
        raw = "\xff\x41"
    strings:
        $a = "DOZOR-TEST-MARKER" ascii wide nocase
    condition:
        $a
}
"#;

const HEX_RULE: &str = r#"
rule dozor_hex {
    strings:
        $h = { 4D 5A ?? 00 [2-4] 50 45 }
    condition:
        $h at 0
}

private rule dozor_private {
    condition:
        filesize > 0
}

rule dozor_uses_private {
    condition:
        dozor_private and uint16(0) == 0x5A4D
}
"#;

/// Line 5 refers to a pattern that does not exist.
const BAD_RULE: &str = "rule ok_before { condition: true }\n\
rule broken {\n\
    strings:\n\
        $a = \"x\"\n\
    condition: $a and $missing\n\
}\n";

fn limits() -> YaraLimits {
    YaraLimits::default()
}

/// `(namespace, rule)` of each match, sorted.
fn names(matches: &[YaraMatch]) -> Vec<(&str, &str)> {
    let mut v: Vec<_> = matches
        .iter()
        .map(|m| (m.namespace.as_str(), m.rule.as_str()))
        .collect();
    v.sort();
    v
}

fn rule_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("marker.yar"), MARKER_RULE).unwrap();
    fs::create_dir(dir.path().join("pe")).unwrap();
    fs::write(dir.path().join("pe").join("hex.yara"), HEX_RULE).unwrap();
    fs::write(dir.path().join("zz_bad.yar"), BAD_RULE).unwrap();
    // Not a rule file: ignored.
    fs::write(dir.path().join("notes.txt"), "rule x { condition: nonsense").unwrap();
    // Hidden: ignored.
    fs::write(dir.path().join(".swap.yar"), "garbage {").unwrap();
    dir
}

#[test]
fn rules_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<YaraRules>();
}

#[test]
fn dir_with_a_bad_file_keeps_the_good_ones() {
    let dir = rule_dir();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    assert_eq!(load.files_loaded, 2, "{:?}", load.errors);
    assert_eq!(load.errors.len(), 1);
    let err = &load.errors[0];
    assert_eq!(err.path, dir.path().join("zz_bad.yar"));
    // yara-x's text: what, and file:line:column.
    assert!(err.message.contains("$missing"), "{}", err.message);
    let loc = format!("{}:5:", dir.path().join("zz_bad.yar").display());
    assert!(err.message.contains(&loc), "no {loc} in {}", err.message);
    assert!(
        err.to_string()
            .starts_with(&dir.path().join("zz_bad.yar").display().to_string())
    );
    // `ok_before` of the bad file is not loaded: the whole file is skipped.
    assert_eq!(load.rules.rule_count(), 4);
    assert!(!load.rules.is_empty());
    assert_eq!(
        load.rules.files(),
        &[
            dir.path().join("marker.yar"),
            dir.path().join("pe/hex.yara")
        ]
    );

    let data = b"MZ\x90\x00\x01\x02PE\x00\x00 ... dozor-test-marker ...";
    let m = load.rules.scan_bytes(data, limits()).unwrap();
    assert_eq!(
        names(&m),
        vec![
            ("marker", "dozor_marker"),
            ("pe/hex", "dozor_hex"),
            ("pe/hex", "dozor_uses_private"),
        ]
    );
    assert!(
        load.rules
            .scan_bytes(b"nothing here", limits())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn tags_and_meta_come_through() {
    let load = YaraRules::compile_sources(&[("ns1".to_owned(), MARKER_RULE.to_owned())]);
    assert!(load.errors.is_empty());
    let m = load
        .rules
        .scan_bytes(
            "x D\0O\0Z\0O\0R\0-\0T\0E\0S\0T\0-\0M\0A\0R\0K\0E\0R\0 y".as_bytes(),
            limits(),
        )
        .unwrap();
    assert_eq!(m.len(), 1, "wide string matches");
    let m = &m[0];
    assert_eq!(m.rule, "dozor_marker");
    assert_eq!(m.namespace, "ns1");
    assert_eq!(m.tags, vec!["test", "marker"]);
    assert_eq!(
        m.meta,
        vec![
            ("author".to_owned(), serde_json::json!("dozor tests")),
            ("severity".to_owned(), serde_json::json!(7)),
            ("score".to_owned(), serde_json::json!(0.5)),
            ("enabled".to_owned(), serde_json::json!(true)),
            ("raw".to_owned(), serde_json::json!("\u{fffd}A")),
        ]
    );
    let json = serde_json::to_value(m).unwrap();
    assert_eq!(json["meta"][1], serde_json::json!(["severity", 7]));
}

#[test]
fn same_rule_names_in_two_namespaces() {
    let src = "rule same { strings: $a = \"abc\" condition: $a }";
    let load = YaraRules::compile_sources(&[
        ("one".to_owned(), src.to_owned()),
        ("two".to_owned(), src.to_owned()),
    ]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    assert_eq!(load.files_loaded, 2);
    let m = load.rules.scan_bytes(b"xxabcxx", limits()).unwrap();
    assert_eq!(names(&m), vec![("one", "same"), ("two", "same")]);
}

#[test]
fn compile_sources_reports_bad_ones_by_name() {
    let load = YaraRules::compile_sources(&[
        ("good".to_owned(), MARKER_RULE.to_owned()),
        ("uploads/bad".to_owned(), BAD_RULE.to_owned()),
        ("syntax".to_owned(), "rule { condition: true }".to_owned()),
    ]);
    assert_eq!(load.files_loaded, 1);
    assert_eq!(load.rules.rule_count(), 1);
    let paths: Vec<_> = load.errors.iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        paths,
        vec![PathBuf::from("uploads/bad"), PathBuf::from("syntax")]
    );
    assert!(
        load.errors[0].message.contains("uploads/bad:5:"),
        "{}",
        load.errors[0].message
    );
    assert!(
        load.errors[1].message.contains("syntax:1:"),
        "{}",
        load.errors[1].message
    );
}

#[test]
fn includes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.txt");
    fs::write(&other, "rule secret { condition: true }").unwrap();
    let src = format!(
        "include \"{}\"\nrule a {{ condition: true }}",
        other.display()
    );
    let err = YaraRules::check_source("inc", &src).unwrap_err();
    assert!(err.contains("include"), "{err}");
}

#[test]
fn scan_file_and_scan_bytes_agree() {
    let dir = rule_dir();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        b"MZ\x90\x00\x01\x02PE\x00".to_vec(),
        b"hello DOZOR-test-MARKER".to_vec(),
        Vec::new(),
        vec![0u8; 100_000],
    ];
    let mut scanner = load.rules.scanner(limits());
    for (i, data) in inputs.iter().enumerate() {
        let path = data_dir.path().join(format!("in{i}"));
        fs::write(&path, data).unwrap();
        let from_file = scanner.scan_file(&path).unwrap();
        let from_bytes = scanner.scan_bytes(data).unwrap();
        assert_eq!(from_file, from_bytes, "input {i}");
        assert_eq!(load.rules.scan_file(&path, limits()).unwrap(), from_file);
    }
    assert_eq!(scanner.limits(), limits());
}

#[test]
fn size_limit_is_applied_before_reading() {
    let load = YaraRules::compile_sources(&[("m".to_owned(), MARKER_RULE.to_owned())]);
    let small = YaraLimits {
        max_file_bytes: 10,
        ..YaraLimits::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    fs::write(&path, b"DOZOR-TEST-MARKER").unwrap();
    // Unreadable content would fail a read: the size check comes first. (Root ignores file
    // modes, so the check is the error kind: TooLarge, not Io.)
    match load.rules.scan_file(&path, small) {
        Err(YaraError::TooLarge {
            path: Some(p),
            size: 17,
            max_bytes: 10,
        }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    let err = load
        .rules
        .scan_bytes(b"DOZOR-TEST-MARKER", small)
        .unwrap_err();
    assert!(matches!(
        err,
        YaraError::TooLarge {
            path: None,
            size: 17,
            max_bytes: 10
        }
    ));
    assert!(
        err.to_string()
            .contains("over the YARA scan limit of 10 bytes"),
        "{err}"
    );
    // Exactly at the limit is scanned.
    let at = YaraLimits {
        max_file_bytes: 17,
        ..YaraLimits::default()
    };
    assert_eq!(load.rules.scan_file(&path, at).unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn size_limit_refuses_a_sparse_file_without_reading_it() {
    let load = YaraRules::compile_sources(&[("m".to_owned(), MARKER_RULE.to_owned())]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    let f = fs::File::create(&path).unwrap();
    f.set_len(1 << 40).unwrap(); // 1 TiB, no blocks: reading it would take forever
    let started = Instant::now();
    let err = load.rules.scan_file(&path, limits()).unwrap_err();
    assert!(
        matches!(err, YaraError::TooLarge { size, .. } if size == 1 << 40),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    let load = YaraRules::compile_sources(&[("m".to_owned(), MARKER_RULE.to_owned())]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let started = Instant::now();
    let err = load.rules.scan_file(&fifo, limits()).unwrap_err();
    assert!(
        matches!(&err, YaraError::NotRegular { path } if *path == fifo),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a regular file"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A directory too.
    let err = load.rules.scan_file(dir.path(), limits()).unwrap_err();
    assert!(matches!(err, YaraError::NotRegular { .. }), "{err:?}");
    // A FIFO named like a rule file does not block the rule load either.
    let rules = tempfile::tempdir().unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        rules.path().join("pipe.yar"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    fs::write(rules.path().join("m.yar"), MARKER_RULE).unwrap();
    let load = YaraRules::compile_dir(rules.path()).unwrap();
    assert_eq!(load.files_loaded, 1);
    assert!(load.errors.is_empty(), "not a regular file: not collected");
}

#[test]
fn missing_file_is_io_error() {
    let load = YaraRules::compile_sources(&[]);
    let err = load
        .rules
        .scan_file(Path::new("/nonexistent/dozor/file"), limits())
        .unwrap_err();
    match &err {
        YaraError::Io { path, source } => {
            assert_eq!(path, Path::new("/nonexistent/dozor/file"));
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("/nonexistent/dozor/file"));
}

#[test]
fn pathological_rule_times_out() {
    // A loop over every byte of 4 MB with a nested loop that never succeeds: ~10^9 iterations,
    // minutes of work without a limit.
    let src = r#"
        rule slow {
            condition:
                for any i in (0..filesize) : (
                    for any j in (0..250) : ( uint8(i) == j + 1000 )
                )
        }
    "#;
    let load = YaraRules::compile_sources(&[("slow".to_owned(), src.to_owned())]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let one_second = YaraLimits {
        max_file_bytes: 64 << 20,
        timeout: Duration::from_secs(1),
    };
    let data = vec![7u8; 4 << 20];
    let started = Instant::now();
    let mut scanner = load.rules.scanner(one_second);
    let err = scanner.scan_bytes(&data).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, YaraError::Timeout { path: None, after } if after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert!(took >= Duration::from_secs(1), "cut off early: {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    // The scanner is still usable afterwards.
    assert!(scanner.scan_bytes(b"small").unwrap().is_empty());
    // From a file, the error names it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    fs::write(&path, &data).unwrap();
    let err = scanner.scan_file(&path).unwrap_err();
    assert!(
        matches!(&err, YaraError::Timeout { path: Some(p), .. } if *p == path),
        "{err:?}"
    );
}

#[test]
fn empty_dir_gives_an_empty_set() {
    let dir = tempfile::tempdir().unwrap();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    assert!(load.rules.is_empty());
    assert_eq!(load.rules.rule_count(), 0);
    assert_eq!(load.files_loaded, 0);
    assert!(load.errors.is_empty());
    assert!(
        load.rules
            .scan_bytes(b"anything", limits())
            .unwrap()
            .is_empty()
    );
    assert!(
        YaraRules::empty()
            .scan_bytes(b"", limits())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn missing_dir_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    match YaraRules::compile_dir(&missing) {
        Err(YaraError::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    // A file instead of a directory.
    let file = dir.path().join("file.yar");
    fs::write(&file, MARKER_RULE).unwrap();
    assert!(matches!(
        YaraRules::compile_dir(&file),
        Err(YaraError::Io { .. })
    ));
}

#[cfg(unix)]
#[test]
fn symlinks_inside_are_followed_outside_are_not() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("out.yar"), MARKER_RULE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("available")).unwrap();
    fs::write(dir.path().join("available").join("hex.yar"), HEX_RULE).unwrap();
    fs::create_dir(dir.path().join("enabled")).unwrap();
    std::os::unix::fs::symlink("../available/hex.yar", dir.path().join("enabled/hex.yar")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("out.yar"), dir.path().join("out.yar")).unwrap();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    assert_eq!(
        load.rules.files(),
        &[
            dir.path().join("available/hex.yar"),
            dir.path().join("enabled/hex.yar")
        ]
    );
}

#[test]
fn same_stem_two_extensions_get_distinct_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yar"), MARKER_RULE).unwrap();
    fs::write(dir.path().join("a.YARA"), MARKER_RULE).unwrap();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let m = load
        .rules
        .scan_bytes(b"DOZOR-TEST-MARKER", limits())
        .unwrap();
    assert_eq!(
        names(&m),
        vec![("a", "dozor_marker"), ("a.yar", "dozor_marker")]
    );
}

#[test]
fn check_source_good_and_bad() {
    assert_eq!(YaraRules::check_source("upload", MARKER_RULE), Ok(1));
    assert_eq!(YaraRules::check_source("upload", HEX_RULE), Ok(3));
    assert_eq!(YaraRules::check_source("empty", ""), Ok(0));
    let err = YaraRules::check_source("upload.yar", BAD_RULE).unwrap_err();
    assert!(err.contains("upload.yar:5:"), "{err}");
    let err = YaraRules::check_source("u", "rule x { condition: pe.is_dll() }").unwrap_err();
    assert!(err.contains("pe"), "{err}");
    // Modules compiled in.
    for module in [
        "pe", "elf", "math", "hash", "string", "time", "dotnet", "macho", "lnk", "console",
    ] {
        let src = format!("import \"{module}\"\nrule r {{ condition: true }}");
        assert_eq!(
            YaraRules::check_source(module, &src),
            Ok(1),
            "module {module}"
        );
    }
    assert!(YaraRules::check_source("vt", "import \"vt\"\nrule r { condition: true }").is_err());
}

#[test]
fn garbage_rule_text_never_panics() {
    let inputs: Vec<String> = vec![
        "\u{0}\u{1}\u{2}".to_owned(),
        "rule".to_owned(),
        "rule a { strings: $a = { } condition: $a }".to_owned(),
        "rule a { strings: $a = /(/ condition: $a }".to_owned(),
        "rule a { condition: 1 / 0 }".to_owned(),
        "rule a { condition: for all i in (0..99999999999999999999) : (true) }".to_owned(),
        "rule a { strings: $a = \"\" condition: $a }".to_owned(),
        "{".repeat(10_000),
        format!(
            "rule a {{ condition: {}true{} }}",
            "(".repeat(300),
            ")".repeat(300)
        ),
    ];
    for src in &inputs {
        let _ = YaraRules::check_source("g", src);
    }
    let sources: Vec<(String, String)> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("g{i}"), s.clone()))
        .collect();
    let load = YaraRules::compile_sources(&sources);
    assert!(load.files_loaded + load.errors.len() >= inputs.len() - 1);
    // Invalid UTF-8 in a rule file.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bin.yar"),
        b"rule a { condition: true } \xff\xfe",
    )
    .unwrap();
    let load = YaraRules::compile_dir(dir.path()).unwrap();
    assert_eq!(load.errors.len(), 1);
    assert_eq!(load.files_loaded, 0);
}

#[test]
fn modules_run_on_arbitrary_data() {
    let src = r#"
        import "pe"
        import "elf"
        import "math"
        import "hash"
        import "dotnet"
        import "macho"
        import "lnk"
        rule m {
            condition:
                pe.is_pe or elf.type == elf.ET_EXEC or macho.magic == 0 or lnk.is_lnk or
                dotnet.is_dotnet or math.entropy(0, filesize) > 7.9 or
                hash.md5(0, filesize) == "00000000000000000000000000000000"
        }
    "#;
    let load = YaraRules::compile_sources(&[("mods".to_owned(), src.to_owned())]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let mut scanner = load.rules.scanner(limits());
    let mut data = b"MZ".to_vec();
    data.resize(0x40, 0);
    data[0x3c] = 0x40;
    data.extend_from_slice(b"PE\0\0\x4c\x01\xff\xff");
    for input in [
        &data[..],
        b"\x7fELF\x02\x01\x01",
        b"\xcf\xfa\xed\xfe\x07",
        b"",
        b"\x4c\0\0\0",
    ] {
        let _ = scanner.scan_bytes(input).unwrap();
    }
    // Real ELF from the system when there is one.
    if Path::new("/bin/sh").exists() {
        let m = scanner.scan_file(Path::new("/bin/sh")).unwrap();
        assert!(m.is_empty() || m[0].rule == "m");
    }
}

#[test]
fn short_scans_never_time_out_early() {
    // yara-x's timeout fires on a shared one-second tick; a limit must not cut off a scan that
    // merely straddles a tick. Many short scans over ~2.5 s straddle at least two ticks.
    let src = r#"
        rule loop_a_bit {
            condition:
                for any i in (0..filesize) : ( uint8(i) == 0xAB )
        }
    "#;
    let load = YaraRules::compile_sources(&[("l".to_owned(), src.to_owned())]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let one_second = YaraLimits {
        max_file_bytes: 64 << 20,
        timeout: Duration::from_secs(1),
    };
    let mut scanner = load.rules.scanner(one_second);
    let data = vec![0u8; 64 << 10];
    let started = Instant::now();
    let mut scans = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let r = scanner.scan_bytes(&data);
        assert!(
            r.is_ok(),
            "scan {scans} after {:?}: {r:?}",
            started.elapsed()
        );
        scans += 1;
    }
    assert!(scans > 10, "{scans}");
}
