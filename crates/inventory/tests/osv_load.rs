//! Loading OSV advisories: a directory with broken files among good ones, a zip archive as OSV
//! publishes per ecosystem, a single file, and what the index and severity reading make of them.

use std::io::Write;
use std::path::Path;

use dozor_inventory::cvss::Severity;
use dozor_inventory::osv::{RangeEvent, load_path, load_zip};
use dozor_inventory::{AdvisoryIndex, InventoryError};

fn advisory(id: &str, package: &str) -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": [format!("CVE-2024-{}", &id[id.len() - 4..])],
        "summary": format!("{package} issue"),
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": package, "purl": format!("pkg:deb/debian/{package}")},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2-3"}]}],
            "versions": ["1.0-1", "1.1-1"]
        }]
    })
    .to_string()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

#[test]
fn broken_files_are_reported_and_the_rest_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "DSA-0001.json",
        &advisory("DSA-0001", "openssl"),
    );
    write(dir.path(), "DSA-0002.json", &advisory("DSA-0002", "curl"));
    write(
        dir.path(),
        "truncated.json",
        &advisory("DSA-0003", "zlib")[..40],
    );
    write(
        dir.path(),
        "no-id.json",
        r#"{"summary": "no id", "affected": []}"#,
    );
    write(
        dir.path(),
        "wrong-type.json",
        r#"{"id": "X-1", "affected": {"package": 1}}"#,
    );
    write(
        dir.path(),
        "no-introduced.json",
        r#"{"id": "X-2", "affected": [{"package": {"ecosystem": "Debian", "name": "a"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}]}]}"#,
    );
    write(
        dir.path(),
        "withdrawn.json",
        r#"{"id": "X-3", "withdrawn": "2024-02-01T00:00:00Z", "affected": []}"#,
    );
    write(dir.path(), "README.txt", "not an advisory and not read");
    std::fs::create_dir(dir.path().join("nested")).expect("nested dir");
    write(
        &dir.path().join("nested"),
        "DSA-0004.json",
        &advisory("DSA-0004", "bash"),
    );

    let report = load_path(dir.path()).expect("load directory");
    let mut ids: Vec<&str> = report.advisories.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["DSA-0001", "DSA-0002", "DSA-0004"]);
    assert_eq!(report.files_read, 8);
    assert_eq!(report.withdrawn, 1);
    let mut problems: Vec<(String, String)> = report
        .problems
        .iter()
        .map(|p| {
            let file = Path::new(&p.source)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            (file, p.reason.clone())
        })
        .collect();
    problems.sort();
    let files: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        files,
        [
            "no-id.json",
            "no-introduced.json",
            "truncated.json",
            "wrong-type.json"
        ]
    );
    assert!(problems[0].1.contains("missing field `id`"), "{problems:?}");
    assert!(
        problems[1].1.contains("without an introduced event"),
        "{problems:?}"
    );
    assert!(problems[2].1.contains("EOF"), "{problems:?}");
    for problem in &report.problems {
        assert!(
            problem
                .source
                .starts_with(&dir.path().display().to_string())
        );
    }

    let openssl = report
        .advisories
        .iter()
        .find(|a| a.id == "DSA-0001")
        .unwrap();
    assert_eq!(openssl.cves(), ["CVE-2024-0001"]);
    let affected = &openssl.affected[0];
    assert_eq!(affected.release(), Some("12"));
    assert_eq!(
        affected.ranges,
        [vec![
            RangeEvent::Introduced("0".into()),
            RangeEvent::Fixed("1.2-3".into())
        ]]
    );
    assert_eq!(affected.versions, ["1.0-1", "1.1-1"]);

    let index = AdvisoryIndex::new(report.advisories);
    assert_eq!(index.lookup("debian", "openssl").len(), 1);
    assert_eq!(index.lookup("debian", "bash").len(), 1);
    assert!(index.lookup("debian", "zlib").is_empty());
    assert!(index.lookup("ubuntu", "openssl").is_empty());
}

#[test]
fn zip_archives_load_with_bad_entries_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("all.zip");
    let file = std::fs::File::create(&path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in [
        ("DSA-1000.json".to_owned(), advisory("DSA-1000", "openssl")),
        ("DSA-1001.json".to_owned(), advisory("DSA-1001", "curl")),
        ("broken.json".to_owned(), "{\"id\": ".to_owned()),
        ("notes.md".to_owned(), "ignored".to_owned()),
    ] {
        zip.start_file(name, options).expect("start entry");
        zip.write_all(text.as_bytes()).expect("write entry");
    }
    zip.finish().expect("finish zip");

    let report = load_zip(&path).expect("load zip");
    let ids: Vec<&str> = report.advisories.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["DSA-1000", "DSA-1001"]);
    assert_eq!(report.files_read, 3);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(
        report.problems[0].source,
        format!("{}!broken.json", path.display())
    );

    // The same archive inside a directory is found too; a file named .zip that is not one is a
    // problem of that file only.
    write(dir.path(), "fake.zip", "not a zip");
    let report = load_path(dir.path()).expect("load directory");
    assert_eq!(report.advisories.len(), 2);
    assert_eq!(report.problems.len(), 2);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.source.ends_with("fake.zip"))
    );

    // Asked for directly, a non-zip is an error.
    let error = load_zip(&dir.path().join("fake.zip")).unwrap_err();
    assert!(matches!(error, InventoryError::Zip { .. }), "{error}");
}

#[test]
fn single_file_array_and_severity_sources() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed.json");
    write(
        dir.path(),
        "feed.json",
        r#"[
          {"id": "GHSA-1", "aliases": ["CVE-2024-1111", "CVE-2024-1111"],
           "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
           "affected": [{"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl-libs"},
                         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"}]},
                                    {"type": "GIT", "repo": "https://example.invalid/x", "events": [{"introduced": "abc"}]}]}]},
          {"id": "CVE-2024-2222", "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}]},
          {"id": "USN-1", "severity": [{"type": "Ubuntu", "score": "high"}]},
          {"id": "V4-1", "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]},
          {"id": "DEBIAN-CVE-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"},
              "ecosystem_specific": {"urgency": "low"}, "ranges": []}]},
          {"id": "PLAIN-1", "database_specific": {"severity": "CRITICAL"}}
        ]"#,
    );
    let report = load_path(&path).expect("load file");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let by_id = |id: &str| report.advisories.iter().find(|a| a.id == id).expect(id);

    let ghsa = by_id("GHSA-1");
    assert_eq!(ghsa.severity.score, Some(6.1));
    assert_eq!(ghsa.severity.level, Some(Severity::Medium));
    assert_eq!(ghsa.cves(), ["CVE-2024-1111"]);
    assert_eq!(
        ghsa.affected[0].ranges.len(),
        1,
        "the GIT range is not kept"
    );

    assert_eq!(by_id("CVE-2024-2222").severity.score, Some(7.5));
    assert_eq!(by_id("CVE-2024-2222").cves(), ["CVE-2024-2222"]);
    assert_eq!(by_id("USN-1").severity.level, Some(Severity::High));
    let v4 = by_id("V4-1");
    assert_eq!(v4.severity.score, None);
    assert!(
        v4.severity
            .vector
            .as_deref()
            .unwrap()
            .starts_with("CVSS:4.0/")
    );
    assert_eq!(
        by_id("DEBIAN-CVE-1").affected[0].severity,
        Some(Severity::Low)
    );
    assert_eq!(by_id("PLAIN-1").severity.level, Some(Severity::Critical));

    assert!(matches!(
        load_path(&dir.path().join("missing.json")),
        Err(InventoryError::Read { .. })
    ));
}

#[test]
fn every_truncation_of_an_advisory_is_an_error_not_a_panic() {
    let text = advisory("DSA-0009", "openssl");
    for end in 0..text.len() {
        let result = dozor_inventory::osv::parse_advisories(&text.as_bytes()[..end]);
        assert!(result.is_err(), "a truncation at {end} was accepted");
    }
    assert!(dozor_inventory::osv::parse_advisories(text.as_bytes()).is_ok());
}
