//! The report parser against the OpenVAS fixtures in `../shared/fixtures/openvas` (read in
//! place; DefectDojo's test reports, BSD-3-Clause) and against small reports built here.
//!
//! How the expected counts were obtained: each fixture's `<results>` were read by hand and
//! cross-checked with an independent script (Python's ElementTree over
//! `.//results/result/severity`, mapped with the same CVSS v3 ranges). In `many_vuln.xml` the
//! report's `<ports>` summary lists the same 44 effective severities: 10.0 ×5, 9.3, 9.0 ×2
//! (critical 8); 8.1 ×2, 7.5 ×8, 7.4 (high 11); 6.8 down to 4.0 (medium 25). Every result
//! there carries `<original_severity>5</original_severity>`, so before overrides all 44 are
//! medium. `one_vuln.xml`: one result, 10.0 after an override of 5. `report_detail_v2.xml`
//! (GMP 22.6): one result, 9.8, not overridden. `no_vuln.xml`: none.

use std::path::PathBuf;

use dozor_gmp::{
    LevelCounts, ParsedReport, ReportError, SeverityLevel, parse_report_bytes, parse_report_file,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openvas")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_fixture(name: &str) -> ParsedReport {
    parse_report_file(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const FIXTURES: [&str; 4] = [
    "many_vuln.xml",
    "no_vuln.xml",
    "one_vuln.xml",
    "report_detail_v2.xml",
];

#[test]
fn every_fixture_imports_with_exact_counts_per_level() {
    let expected = [
        (
            "many_vuln.xml",
            44,
            LevelCounts {
                critical: 8,
                high: 11,
                medium: 25,
                ..LevelCounts::default()
            },
        ),
        ("no_vuln.xml", 0, LevelCounts::default()),
        (
            "one_vuln.xml",
            1,
            LevelCounts {
                critical: 1,
                ..LevelCounts::default()
            },
        ),
        (
            "report_detail_v2.xml",
            1,
            LevelCounts {
                critical: 1,
                ..LevelCounts::default()
            },
        ),
    ];
    for (name, total, counts) in expected {
        let report = parse_fixture(name);
        assert_eq!(report.results.len(), total, "{name}");
        assert_eq!(report.level_counts(), counts, "{name}");
    }
}

#[test]
fn many_vuln_overrides_non_ip_host_and_general_port() {
    let report = parse_fixture("many_vuln.xml");
    assert_eq!(
        report.report_id.as_deref(),
        Some("39f62b85-f870-4ccc-a052-3dc57e315016")
    );
    assert_eq!(report.gmp_version.as_deref(), Some("9.0"));
    assert_eq!(report.task_name.as_deref(), Some("metasploitable2-scan"));
    assert_eq!(report.scan_start.as_deref(), Some("2023-09-26T10:50:34Z"));
    assert_eq!(report.scan_start_ms, Some(1_695_725_434_000));
    assert_eq!(report.scan_end.as_deref(), Some("2023-09-26T13:04:00Z"));
    // The filter gvmd wrote the report with: it hid results under QoD 70.
    assert!(
        report
            .filter
            .as_deref()
            .is_some_and(|f| f.contains("min_qod=70"))
    );

    // Overrides: effective 4.0..10.0, original 5 everywhere.
    let mut original = LevelCounts::default();
    for r in &report.results {
        original.add(r.original_level);
        assert_eq!(r.original_severity, 5.0);
        assert_eq!(r.overridden, r.severity != 5.0);
    }
    assert_eq!(
        original,
        LevelCounts {
            medium: 44,
            ..LevelCounts::default()
        }
    );
    // Four results are at 5.0 after overrides too, so not overridden.
    assert_eq!(report.results.iter().filter(|r| r.overridden).count(), 40);

    // "192.168.1.1001" is no IP address: kept as written, on results and in the host list.
    assert!(report.results.iter().all(|r| r.host == "192.168.1.1001"));
    assert!(report.results.iter().all(|r| r.host_ip().is_none()));
    assert_eq!(report.hosts.len(), 1);
    assert_eq!(report.hosts[0].address, "192.168.1.1001");
    assert_eq!(report.results[0].hostname.as_deref(), Some("b6b9f466d63"));

    // general/tcp: no port number, protocol and raw text kept.
    let general: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.port_raw == "general/tcp")
        .collect();
    assert_eq!(general.len(), 1);
    assert_eq!(general[0].port, None);
    assert_eq!(general[0].protocol.as_deref(), Some("tcp"));
    assert_eq!(general[0].nvt_oid, "1.3.6.1.4.1.25623.1.0.103674");
    assert_eq!(general[0].level, SeverityLevel::Critical);
    assert_eq!(
        report.results.iter().filter(|r| r.port == Some(80)).count(),
        15
    );

    let first = &report.results[0];
    assert_eq!(first.nvt_oid, "1.3.6.1.4.1.25623.1.0.100111");
    // The result's own <name> is anonymised in this fixture; the NVT name is the title.
    assert_eq!(first.name, "The rexec service is running");
    assert_eq!(first.family.as_deref(), Some("Useless services"));
    assert_eq!(first.cvss_base, Some(10.0));
    assert_eq!(first.cves, ["CVE-1999-0618"]);
    assert_eq!(first.qod, Some(80));
    assert_eq!(first.qod_type.as_deref(), Some("remote_banner"));
    assert_eq!(first.solution_type.as_deref(), Some("Mitigation"));
    assert!(
        first
            .solution
            .as_deref()
            .is_some_and(|s| s.starts_with("Disable the rexec service"))
    );
    assert_eq!(
        first.description.as_deref(),
        Some("The rexec service was detected on the target system.")
    );
    assert_eq!(
        report.results.iter().map(|r| r.cves.len()).sum::<usize>(),
        55
    );
    // No two results share (host, port, OID).
    let keys: std::collections::HashSet<_> = report.results.iter().map(|r| r.dedup_key()).collect();
    assert_eq!(keys.len(), 44);
    // Two results have an empty <threat/>.
    assert_eq!(
        report.results.iter().filter(|r| r.threat.is_none()).count(),
        2
    );
}

#[test]
fn one_vuln_general_tcp_override_and_cves() {
    let report = parse_fixture("one_vuln.xml");
    let r = &report.results[0];
    assert_eq!(r.host, "10.0.101.2");
    assert!(r.host_ip().is_some());
    assert_eq!(r.hostname, None, "an empty <hostname> is no hostname");
    assert_eq!((r.port, r.protocol.as_deref()), (None, Some("tcp")));
    assert_eq!(r.port_raw, "general/tcp");
    assert_eq!((r.severity, r.original_severity), (10.0, 5.0));
    assert!(r.overridden);
    assert_eq!(
        (r.level, r.original_level),
        (SeverityLevel::Critical, SeverityLevel::Medium)
    );
    assert_eq!(r.cves.len(), 12);
    assert_eq!(r.cves[0], "CVE-2023-4573");
    assert_eq!(r.qod, Some(97));
    assert_eq!(r.solution_type.as_deref(), Some("VendorFix"));
    assert_eq!(r.threat.as_deref(), Some("High"));
    assert!(
        r.description
            .as_deref()
            .is_some_and(|d| d.contains("Fixed version:     117"))
    );
    assert_eq!(report.hosts[0].end.as_deref(), Some("2023-09-28T16:12:15Z"));
}

#[test]
fn report_detail_v2_gmp22_severities_epss_solution() {
    let report = parse_fixture("report_detail_v2.xml");
    assert_eq!(report.gmp_version.as_deref(), Some("22.6"));
    assert_eq!(report.scan_start_ms, Some(1_755_867_698_000));
    let r = &report.results[0];
    assert_eq!(r.nvt_oid, "1.3.6.1.4.1.25623.1.0.836484");
    assert_eq!(r.family.as_deref(), Some("Windows : Microsoft Bulletins"));
    assert_eq!(r.hostname.as_deref(), Some("server99"));
    assert_eq!(
        r.asset_id.as_deref(),
        Some("96329f0e-5bb4-4164-958f-a78f76f634da")
    );
    assert_eq!((r.port, r.protocol.as_deref()), (Some(42), Some("tcp")));
    assert_eq!(
        r.cvss_vector_v3.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    );
    assert_eq!(r.cvss_vector_v2, None);
    assert_eq!((r.severity, r.original_severity), (9.8, 9.8));
    assert!(!r.overridden);
    // The highest EPSS among the NVT's CVEs, not the EPSS of its most severe CVE.
    assert_eq!(r.epss_score, Some(0.09023));
    assert_eq!(r.epss_percentile, Some(0.92284));
    assert_eq!(r.epss_cve.as_deref(), Some("CVE-2025-49716"));
    assert_eq!(r.solution_type.as_deref(), Some("VendorFix"));
    assert_eq!(
        r.solution.as_deref(),
        Some("The vendor has released updates. Please see\n  the references for more information.")
    );
    assert_eq!(
        r.cves.len(),
        93,
        "cert-bund, dfn-cert and url refs are no CVEs"
    );
    assert_eq!(r.qod, Some(80));
    assert_eq!(r.qod_type, None);
}

#[test]
fn no_vuln_has_metadata_and_no_results() {
    let report = parse_fixture("no_vuln.xml");
    assert!(report.results.is_empty());
    assert!(report.hosts.is_empty());
    assert_eq!(report.task_name.as_deref(), Some("HP-scan"));
    assert_eq!(report.scan_run_status.as_deref(), Some("Done"));
}

/// The fixture without its XML declaration, as gvmd embeds it in a response.
fn body(name: &str) -> String {
    let text = String::from_utf8(fixture(name)).expect("UTF-8 fixture");
    match text.find("?>") {
        Some(end) if text.trim_start().starts_with("<?xml") => text[end + 2..].to_owned(),
        _ => text,
    }
}

#[test]
fn get_reports_response_wrapper_is_accepted_and_a_refusal_is_an_error() {
    for name in FIXTURES {
        let wrapped = format!(
            "<get_reports_response status=\"200\" status_text=\"OK\">{}\
             <filters id=\"\"><term>x</term></filters><report_count>1</report_count>\
             </get_reports_response>",
            body(name)
        );
        let direct = parse_fixture(name);
        let via_response = parse_report_bytes(wrapped.as_bytes()).unwrap();
        assert_eq!(via_response.results, direct.results, "{name}");
        assert_eq!(via_response.report_id, direct.report_id, "{name}");
    }
    let refused = parse_report_bytes(
        br#"<get_reports_response status="404" status_text="Failed to find report"/>"#,
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("Failed to find report"),
        "{refused}"
    );
}

#[test]
fn every_truncation_of_every_fixture_is_refused_naming_where() {
    for name in FIXTURES {
        let xml = fixture(name);
        let last_close = xml
            .windows(b"</report>".len())
            .rposition(|w| w == b"</report>")
            .expect("closing tag");
        let mut cuts: Vec<usize> = (1..8).map(|k| xml.len() * k / 8).collect();
        // Inside the final end tag, and right before it.
        cuts.extend([last_close + 3, last_close]);
        for cut in cuts {
            let err = parse_report_bytes(&xml[..cut]).expect_err("a truncated report parses");
            let ReportError::Malformed {
                path,
                offset,
                line,
                reason,
            } = &err
            else {
                panic!("{name} cut at {cut}: {err}");
            };
            assert!(path.starts_with("report"), "{name} cut at {cut}: {err}");
            assert!(*offset <= cut as u64, "{name} cut at {cut}: {err}");
            assert!(*line >= 1);
            assert!(!reason.is_empty());
            let shown = err.to_string();
            assert!(
                shown.contains(path.as_str()) && shown.contains("byte") && shown.contains("line"),
                "{shown}"
            );
        }
    }
}

#[test]
fn truncation_inside_a_result_names_that_result() {
    let xml = fixture("many_vuln.xml");
    // Cut inside the third result's <nvt> element.
    let third = xml
        .windows(b"<result id=".len())
        .enumerate()
        .filter(|(_, w)| *w == b"<result id=")
        .nth(2)
        .map(|(i, _)| i)
        .unwrap();
    let nvt = third
        + xml[third..]
            .windows(b"<family>".len())
            .position(|w| w == b"<family>")
            .unwrap();
    let err = parse_report_bytes(&xml[..nvt + 3]).unwrap_err();
    let ReportError::Malformed { path, line, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        path.starts_with("report/report/results/result[3]/nvt"),
        "{err}"
    );
    let expected_line = 1 + xml[..nvt].iter().filter(|b| **b == b'\n').count() as u64;
    assert_eq!(*line, expected_line, "{err}");
}

/// A report built here: one result per case.
fn report_with(results: &str) -> String {
    format!(
        r#"<report id="r1"><report id="r1"><gmp><version>22.4</version></gmp>
<results start="1" max="-1">{results}</results><scan_end>2026-01-01T00:00:00Z</scan_end></report></report>"#
    )
}

fn result(severity: &str, nvt_extra: &str, extra: &str) -> String {
    format!(
        r#"<result id="x"><name>n</name><host>db.example.lan<asset asset_id=""/><hostname>db</hostname></host>
<port>5432/tcp</port><nvt oid="1.3.6.1.4.1.25623.1.0.1"><name>Test &amp; check</name><family>F</family>
<cvss_base>5.0</cvss_base>{nvt_extra}</nvt><threat>Medium</threat><severity>{severity}</severity>
<qod><value>30</value><type>package</type></qod>{extra}</result>"#
    )
}

#[test]
fn built_reports_cover_levels_vectors_and_old_shapes() {
    let xml = report_with(&[
        result("0.0", "", ""),
        result("2.6", "", ""),
        result("-1", "", "<original_severity>6.5</original_severity>"),
        result(
            "5.0",
            "<severities score=\"5.0\"><severity type=\"cvss_base_v2\"><score>5.0</score>\
             <value>AV:N/AC:L/Au:N/C:P/I:N/A:N</value></severity></severities>\
             <tags>cvss_base_vector=CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N|solution_type=WillNotFix</tags>\
             <cve>CVE-2020-1, CVE-2020-2</cve>",
            "",
        ),
        result("7.0", "<tags>cvss_base_vector=AV:N/AC:L/Au:N/C:C/I:C/A:C</tags><cve>NOCVE</cve>", ""),
    ]
    .concat());
    let report = parse_report_bytes(xml.as_bytes()).unwrap();
    let levels: Vec<_> = report.results.iter().map(|r| r.level).collect();
    assert_eq!(
        levels,
        [
            SeverityLevel::Log,
            SeverityLevel::Low,
            SeverityLevel::FalsePositive,
            SeverityLevel::Medium,
            SeverityLevel::High
        ]
    );
    let r = &report.results;
    assert_eq!(r[0].name, "Test & check");
    assert_eq!(r[0].host, "db.example.lan");
    assert_eq!(r[0].asset_id, None);
    assert_eq!(r[0].qod, Some(30));
    assert_eq!(r[2].original_level, SeverityLevel::Medium);
    assert!(r[2].overridden);
    assert_eq!(
        r[3].cvss_vector_v2.as_deref(),
        Some("AV:N/AC:L/Au:N/C:P/I:N/A:N")
    );
    assert_eq!(
        r[3].cvss_vector_v3.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N")
    );
    assert_eq!(r[3].solution_type.as_deref(), Some("WillNotFix"));
    assert_eq!(r[3].cves, ["CVE-2020-1", "CVE-2020-2"]);
    assert_eq!(
        r[4].cvss_vector_v2.as_deref(),
        Some("AV:N/AC:L/Au:N/C:C/I:C/A:C")
    );
    assert!(r[4].cves.is_empty());
    // Without a host section the host list comes from the results.
    assert_eq!(report.hosts.len(), 1);
    assert_eq!(report.hosts[0].hostname.as_deref(), Some("db"));
    // Serde round trip (the store and the API exchange these as JSON).
    let json = serde_json::to_string(&report).unwrap();
    let back: ParsedReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

fn malformed(xml: &str) -> (String, String) {
    match parse_report_bytes(xml.as_bytes()) {
        Err(ReportError::Malformed { path, reason, .. }) => (path, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn malformed_results_are_refused_all_or_nothing() {
    let good = result("5.0", "", "");

    // A non-numeric severity in the second result: no results at all, the path names it.
    let xml = report_with(&[good.clone(), result("high", "", "")].concat());
    let (path, reason) = malformed(&xml);
    assert_eq!(path, "report/report/results/result[2]/severity");
    assert!(reason.contains("\"high\" is not a number"), "{reason}");

    // A result without an NVT OID.
    let no_oid = good.replace(r#" oid="1.3.6.1.4.1.25623.1.0.1""#, "");
    let (path, reason) = malformed(&report_with(&no_oid));
    assert_eq!(path, "report/report/results/result[1]/nvt");
    assert!(reason.contains("oid"), "{reason}");

    // Severity out of range, QoD not a number.
    let (path, _) = malformed(&report_with(&result("11", "", "")));
    assert_eq!(path, "report/report/results/result[1]/severity");
    let bad_qod = good.replace("<value>30</value>", "<value>most</value>");
    let (path, _) = malformed(&report_with(&bad_qod));
    assert_eq!(path, "report/report/results/result[1]/qod/value");

    // Mismatched end tag, unknown entity, wrong root, no <results> (fetched without details),
    // two reports in one document.
    let (path, _) = malformed(&report_with(&good.replace("</family>", "</famly>")));
    assert!(
        path.starts_with("report/report/results/result[1]/nvt"),
        "{path}"
    );
    let (_, reason) = malformed(&report_with(&good.replace("&amp;", "&bogus;")));
    assert!(reason.contains("bogus"), "{reason}");
    let (path, _) = malformed("<get_tasks_response status=\"200\"/>");
    assert_eq!(path, "get_tasks_response");
    let (_, reason) = malformed("<report id=\"a\"><report id=\"a\"></report></report>");
    assert!(reason.contains("details"), "{reason}");
    let (_, reason) = malformed(&format!(
        "<get_reports_response status=\"200\">{0}{0}</get_reports_response>",
        report_with(&good)
    ));
    assert!(reason.contains("more than one report"), "{reason}");
    let (path, _) = malformed("");
    assert_eq!(path, "(document)");
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic byte corruption of each fixture (a fixed LCG, no randomness): every
    // outcome must be a report or an error, never a panic.
    const NOISE: &[u8] = b"<>/&;\"'=x0\n\xff";
    let mut seed: u64 = 0x5eed_1234;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    for name in FIXTURES {
        let original = fixture(name);
        for _ in 0..300 {
            let mut xml = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = next() % xml.len();
                xml[at] = NOISE[next() % NOISE.len()];
            }
            let _ = parse_report_bytes(&xml);
        }
    }
}
