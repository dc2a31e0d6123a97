//! The dpkg database of the machine the tests run on, read for real and matched against OSV
//! advisories this test writes for two packages that are actually installed.

use std::path::Path;
use std::process::Command;

use dozor_inventory::packages::dpkg::{DPKG_STATUS_PATH, read_dpkg_status};
use dozor_inventory::version::compare_dpkg;
use dozor_inventory::{AdvisoryIndex, Inventory, OsRelease, Package, match_inventory};

fn installed_count_by_dpkg_query() -> Option<usize> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}\\n"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.starts_with("ii") || line.starts_with("hi"))
            .count(),
    )
}

fn read_this_machine() -> Option<Vec<Package>> {
    let path = Path::new(DPKG_STATUS_PATH);
    if !path.exists() {
        eprintln!("no {DPKG_STATUS_PATH} on this machine: skipped");
        return None;
    }
    let parsed = read_dpkg_status(path).expect("read the dpkg status file");
    assert!(
        parsed.problems.is_empty(),
        "problems in the real database: {:?}",
        parsed.problems
    );
    Some(parsed.packages)
}

#[test]
fn counts_agree_with_dpkg_query() {
    let Some(packages) = read_this_machine() else {
        return;
    };
    let Some(expected) = installed_count_by_dpkg_query() else {
        eprintln!("dpkg-query not runnable: count comparison skipped");
        return;
    };
    assert!(expected > 0);
    assert_eq!(
        packages.len(),
        expected,
        "packages read vs dpkg-query's `ii`/`hi` lines"
    );
    assert!(
        packages
            .iter()
            .all(|p| !p.version.is_empty() && p.arch.is_some())
    );
}

#[test]
fn local_inventory_reads_this_machine() {
    let Some(packages) = read_this_machine() else {
        return;
    };
    let (inventory, problems) = dozor_inventory::collect_local_inventory().expect("collect");
    assert!(problems.is_empty());
    if inventory.os.as_ref().is_some_and(|os| os.is_like("debian")) {
        assert_eq!(inventory.packages, packages);
        assert_eq!(inventory.fingerprint().len(), 64);
    }
}

/// The version an advisory naming `package`'s source is compared with.
fn source_version(package: &Package) -> &str {
    package
        .source_version
        .as_deref()
        .unwrap_or(&package.version)
}

#[test]
fn matches_advisories_written_for_installed_packages() {
    let Some(packages) = read_this_machine() else {
        return;
    };
    // P1: a package that is its own source and no other package's source, so an advisory
    // naming it names exactly one installed package.
    let own = packages
        .iter()
        .find(|p| {
            p.source_name.is_none()
                && !packages
                    .iter()
                    .any(|other| other.source_name.as_deref() == Some(&p.name))
        })
        .expect("a package without a Source field");
    // P2: a binary package built from a differently named source (Debian's advisories name
    // sources), preferring one whose source version differs from the binary's.
    let built = packages
        .iter()
        .find(|p| {
            p.source_name.as_ref().is_some_and(|s| *s != p.name) && p.source_version.is_some()
        })
        .or_else(|| {
            packages
                .iter()
                .find(|p| p.source_name.as_ref().is_some_and(|s| *s != p.name))
        })
        .expect("a package with a Source field");
    let source = built.source_name.clone().expect("source name");
    let built_source_version = source_version(built).to_owned();

    let fixed_after = format!("{}+dozor1", own.version);
    assert_eq!(
        compare_dpkg(&fixed_after, &own.version),
        std::cmp::Ordering::Greater
    );

    let advisories = tempfile::tempdir().expect("temp dir");
    let write = |file: &str, json: serde_json::Value| {
        std::fs::write(
            advisories.path().join(file),
            serde_json::to_vec_pretty(&json).unwrap(),
        )
        .expect("write advisory");
    };
    // Affects P1's installed version, fixed just above it.
    write(
        "DOZOR-TEST-1.json",
        serde_json::json!({
            "id": "DOZOR-TEST-1",
            "aliases": ["CVE-2099-0001"],
            "summary": "test advisory for an installed package",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": own.name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed_after}]}]
            }]
        }),
    );
    // Affects P2 through its source package, up to and including the installed source version.
    write(
        "DOZOR-TEST-2.json",
        serde_json::json!({
            "id": "DOZOR-TEST-2",
            "aliases": ["CVE-2099-0002"],
            "summary": "test advisory naming a source package",
            "database_specific": {"severity": "MODERATE"},
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"introduced": "0"}, {"last_affected": built_source_version}
                ]}]
            }]
        }),
    );
    // Fixed long before what is installed: no finding.
    write(
        "DOZOR-TEST-3.json",
        serde_json::json!({
            "id": "DOZOR-TEST-3",
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": own.name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.0~dozor"}]}]
            }]
        }),
    );
    // Another Debian release: no finding on Debian 12.
    write(
        "DOZOR-TEST-4.json",
        serde_json::json!({
            "id": "DOZOR-TEST-4",
            "affected": [{
                "package": {"ecosystem": "Debian:11", "name": own.name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
            }]
        }),
    );
    // A package that is not installed.
    write(
        "DOZOR-TEST-5.json",
        serde_json::json!({
            "id": "DOZOR-TEST-5",
            "affected": [{
                "package": {"ecosystem": "Debian:12", "name": "dozor-not-installed-package"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]
            }]
        }),
    );

    let (index, problems) = AdvisoryIndex::load(advisories.path()).expect("load advisories");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(index.len(), 5);

    // The packages are this machine's; the OS is fixed to Debian 12 so that the test means the
    // same on any Debian-based machine it runs on.
    let inventory = Inventory::new(
        Some(OsRelease::parse("ID=debian\nVERSION_ID=\"12\"\n")),
        packages.clone(),
    );
    let findings = match_inventory(&inventory, &index);

    // Every installed binary of P2's source at or below its source version is affected.
    let mut expected: Vec<(String, String)> = packages
        .iter()
        .filter(|p| p.source_name.as_deref() == Some(source.as_str()) || p.name == source)
        .filter(|p| compare_dpkg(source_version(p), &built_source_version).is_le())
        .map(|p| (p.name.clone(), "DOZOR-TEST-2".to_owned()))
        .collect();
    expected.push((own.name.clone(), "DOZOR-TEST-1".to_owned()));
    expected.sort();
    expected.dedup();
    let mut got: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.package.clone(), f.advisory_id.clone()))
        .collect();
    got.sort();
    got.dedup();
    eprintln!(
        "{} packages; advisories written for {} {} and source {source} {built_source_version}; findings {got:?}",
        packages.len(),
        own.name,
        own.version
    );
    assert_eq!(got, expected);
    assert_eq!(
        findings.len(),
        expected.len(),
        "one finding per (package, advisory)"
    );

    let first = findings
        .iter()
        .find(|f| f.advisory_id == "DOZOR-TEST-1")
        .expect("finding 1");
    assert_eq!(first.installed_version, own.version);
    assert_eq!(first.fixed_version.as_deref(), Some(fixed_after.as_str()));
    assert_eq!(first.cves, ["CVE-2099-0001"]);
    assert_eq!(first.cvss_score, Some(9.8));
    assert_eq!(
        first.solution(),
        format!("upgrade {} to {fixed_after}", own.name)
    );
    assert_eq!(first.name(), "test advisory for an installed package");

    let second = findings
        .iter()
        .find(|f| f.package == built.name && f.advisory_id == "DOZOR-TEST-2")
        .expect("finding 2");
    assert_eq!(second.matched_name, source);
    assert_eq!(second.fixed_version, None);
    assert_eq!(
        second.severity,
        Some(dozor_inventory::cvss::Severity::Medium)
    );

    // The same inventory on another Debian release finds nothing of these Debian 12 advisories.
    let on_debian_11 = Inventory::new(
        Some(OsRelease::parse("ID=debian\nVERSION_ID=11\n")),
        packages,
    );
    let findings = match_inventory(&on_debian_11, &index);
    assert_eq!(
        findings
            .iter()
            .map(|f| f.advisory_id.as_str())
            .collect::<Vec<_>>(),
        ["DOZOR-TEST-4"]
    );
}
