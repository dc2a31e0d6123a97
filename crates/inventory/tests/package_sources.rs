//! The rpm and Windows readers on realistic input, the inventory's fingerprint and diff, and an
//! rpm-family host matched end to end.

use std::collections::BTreeMap;

use dozor_inventory::packages::rpm::parse_rpm_query_output;
use dozor_inventory::packages::windows::{RegistryView, UninstallEntry, parse_uninstall_entries};
use dozor_inventory::{
    AdvisoryIndex, Inventory, OsRelease, Package, PackageEcosystem, match_inventory,
};

/// `rpm -qa --queryformat '%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n'` as RED OS
/// and ALT print it (shortened).
const RED_OS_OUTPUT: &str = "\
openssl-libs\t1\t3.0.7\t5.el7.3\tx86_64
bash\t(none)\t5.2.15\t1.el7.3\tx86_64
kernel-lt\t(none)\t6.1.52\t1.el7.3\tx86_64
gpg-pubkey\t(none)\tb7d4d3fa\t5a1bbe84\t(none)
tzdata\t(none)\t2024a\t1.el7.3\tnoarch
";

const ALT_OUTPUT: &str = "\
libssl3\t(none)\t3.1.7\talt1\tx86_64
glibc-core\t6\t2.32\talt5.p10.3\tx86_64
";

#[test]
fn rpm_outputs_of_red_os_and_alt() {
    let red_os = parse_rpm_query_output(RED_OS_OUTPUT);
    assert!(red_os.problems.is_empty());
    let versions: Vec<(&str, &str)> = red_os
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        versions,
        [
            ("openssl-libs", "1:3.0.7-5.el7.3"),
            ("bash", "5.2.15-1.el7.3"),
            ("kernel-lt", "6.1.52-1.el7.3"),
            ("gpg-pubkey", "b7d4d3fa-5a1bbe84"),
            ("tzdata", "2024a-1.el7.3"),
        ]
    );
    assert!(
        red_os
            .packages
            .iter()
            .all(|p| p.ecosystem == PackageEcosystem::Rpm)
    );
    assert_eq!(red_os.packages[4].arch.as_deref(), Some("noarch"));

    let alt = parse_rpm_query_output(ALT_OUTPUT);
    assert_eq!(alt.packages[1].version, "6:2.32-alt5.p10.3");

    // Short lines and bad epochs are reported with their line numbers; the rest stays.
    let mixed = parse_rpm_query_output("a\t(none)\t1\t1\tx86_64\nb\t1\t2\nc\tnope\t1\t1\tx86_64\n");
    assert_eq!(mixed.packages.len(), 1);
    let lines: Vec<usize> = mixed.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 3]);
}

#[test]
fn red_os_host_matches_its_own_feed_with_rpm_ordering() {
    let inventory = Inventory::new(
        Some(OsRelease::parse(
            "NAME=\"RED OS\"\nID=\"redos\"\nVERSION_ID=\"7.3\"\n",
        )),
        parse_rpm_query_output(RED_OS_OUTPUT).packages,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let feed = serde_json::json!([
        {"id": "ROS-1", "aliases": ["CVE-2024-0727"], "summary": "openssl: PKCS12 NULL dereference",
         "affected": [{"package": {"ecosystem": "RED OS:7.3", "name": "openssl-libs"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-6.el7.3"}]}]}]},
        // Fixed in an epoch-less version: epoch 1 installed is newer.
        {"id": "ROS-2", "affected": [{"package": {"ecosystem": "RED OS", "name": "openssl-libs"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.9-1.el7.3"}]}]}]},
        // Another RED OS release.
        {"id": "ROS-3", "affected": [{"package": {"ecosystem": "RED OS:8", "name": "bash"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        // `2024a` is older than `2024b`.
        {"id": "ROS-4", "affected": [{"package": {"ecosystem": "RED OS:7", "name": "tzdata"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2024b-1.el7.3"}]}]}]}
    ]);
    let path = dir.path().join("redos.json");
    std::fs::write(&path, feed.to_string()).expect("write feed");
    let (index, problems) = AdvisoryIndex::load(&path).expect("load");
    assert!(problems.is_empty());
    let findings = match_inventory(&inventory, &index);
    let got: Vec<(&str, &str, Option<&str>)> = findings
        .iter()
        .map(|f| {
            (
                f.package.as_str(),
                f.advisory_id.as_str(),
                f.fixed_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("openssl-libs", "ROS-1", Some("1:3.0.7-6.el7.3")),
            ("tzdata", "ROS-4", Some("2024b-1.el7.3")),
        ]
    );
    assert_eq!(
        findings[0].solution(),
        "upgrade openssl-libs to 1:3.0.7-6.el7.3"
    );
}

fn entry(view: RegistryView, key: &str, values: &[(&str, &str)]) -> UninstallEntry {
    UninstallEntry {
        view,
        key_name: key.to_owned(),
        values: values
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn windows_uninstall_entries_of_both_views() {
    let entries = vec![
        entry(
            RegistryView::Native,
            "{AC76BA86-7AD7-1033-7B44-AC0F074E4100}",
            &[
                ("DisplayName", "Adobe Acrobat (64-bit)"),
                ("DisplayVersion", "24.001.20604"),
                ("Publisher", "Adobe"),
                ("InstallLocation", "C:\\Program Files\\Adobe"),
            ],
        ),
        entry(
            RegistryView::Wow6432Node,
            "Mozilla Firefox 115.6.0 ESR (x86 ru)",
            &[
                ("DisplayName", "Mozilla Firefox ESR (x86 ru)"),
                ("DisplayVersion", "115.6.0"),
                ("Publisher", "Mozilla"),
            ],
        ),
        entry(
            RegistryView::Native,
            "{VCREDIST-PART}",
            &[
                (
                    "DisplayName",
                    "Microsoft Visual C++ 2022 X64 Minimum Runtime",
                ),
                ("DisplayVersion", "14.38.33130"),
                ("SystemComponent", "1"),
            ],
        ),
        entry(RegistryView::Native, "AddressBook", &[]),
    ];
    let parsed = parse_uninstall_entries(&entries);
    assert!(parsed.problems.is_empty());
    let got: Vec<(&str, &str, &str)> = parsed
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.arch.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Adobe Acrobat (64-bit)", "24.001.20604", "x64"),
            ("Mozilla Firefox ESR (x86 ru)", "115.6.0", "x86"),
        ]
    );
    assert!(
        parsed
            .packages
            .iter()
            .all(|p| p.ecosystem == PackageEcosystem::Windows)
    );
    // Windows programs have no OSV ecosystem: nothing to match, nothing wrongly matched.
    let inventory = Inventory::new(None, parsed.packages);
    assert!(match_inventory(&inventory, &AdvisoryIndex::default()).is_empty());
}

fn dpkg(name: &str, version: &str) -> Package {
    let mut package = Package::new(name, version, PackageEcosystem::Dpkg);
    package.arch = Some("amd64".into());
    package
}

#[test]
fn fingerprint_is_order_independent_and_diff_names_changes() {
    let before = Inventory::new(
        None,
        vec![
            dpkg("bash", "5.2.15-2+b2"),
            dpkg("curl", "7.88.1-10+deb12u5"),
            dpkg("vim", "2:9.0.1378-2"),
        ],
    );
    let mut shuffled = before.clone();
    shuffled.packages.reverse();
    assert_eq!(before.fingerprint(), shuffled.fingerprint());
    assert_eq!(before.fingerprint().len(), 64);

    let after = Inventory::new(
        None,
        vec![
            dpkg("bash", "5.2.15-2+b2"),
            dpkg("curl", "7.88.1-10+deb12u8"),
            dpkg("zsh", "5.9-4+b2"),
        ],
    );
    assert_ne!(before.fingerprint(), after.fingerprint());
    // Field boundaries count: moving text between fields changes the fingerprint.
    let split_one = Inventory::new(None, vec![Package::new("ab", "c", PackageEcosystem::Dpkg)]);
    let split_two = Inventory::new(None, vec![Package::new("a", "bc", PackageEcosystem::Dpkg)]);
    assert_ne!(split_one.fingerprint(), split_two.fingerprint());

    let diff = before.diff(&after);
    assert_eq!(diff.added, [dpkg("zsh", "5.9-4+b2")]);
    assert_eq!(diff.removed, [dpkg("vim", "2:9.0.1378-2")]);
    assert_eq!(
        diff.changed,
        [(
            dpkg("curl", "7.88.1-10+deb12u5"),
            dpkg("curl", "7.88.1-10+deb12u8")
        )]
    );
    assert!(before.diff(&shuffled).is_empty());
}

#[cfg(unix)]
#[test]
fn rpm_runner_reads_output_times_out_and_reports_failures() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use dozor_inventory::InventoryError;
    use dozor_inventory::packages::rpm::query_rpm_program;

    let dir = tempfile::tempdir().expect("temp dir");
    let script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    // A stand-in rpm that checks it was asked the documented query.
    let fake = script(
        "rpm",
        r#"[ "$1" = "-qa" ] && [ "$2" = "--queryformat" ] || exit 3
printf 'bash\t(none)\t5.2.15\t1.el7\tx86_64\nzlib\t(none)\t1.2.13\t2.el7\tx86_64\n'"#,
    );
    let parsed = query_rpm_program(&fake, Duration::from_secs(30))
        .expect("run")
        .expect("rpm present");
    assert_eq!(parsed.packages.len(), 2);
    assert_eq!(parsed.packages[1].version, "1.2.13-2.el7");

    let slow = script("slow-rpm", "exec sleep 30");
    let started = std::time::Instant::now();
    let error = query_rpm_program(&slow, Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(error, InventoryError::CommandTimedOut { .. }),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let failing = script("bad-rpm", "echo 'error: rpmdb open failed' >&2; exit 1");
    let error = query_rpm_program(&failing, Duration::from_secs(30)).unwrap_err();
    assert!(error.to_string().contains("rpmdb open failed"), "{error}");

    let missing = dir.path().join("no-such-rpm");
    assert!(
        query_rpm_program(&missing, Duration::from_secs(1))
            .expect("missing rpm")
            .is_none()
    );
}
