//! Version ordering tables: Debian policy's examples and dpkg's rules, rpm's own rpmvercmp
//! cases (`~`, `^`, separators, leading zeros) and epoch:version-release comparisons. Where
//! `dpkg` is installed the dpkg table is also checked against `dpkg --compare-versions`.

use std::cmp::Ordering::{self, Equal, Greater, Less};

use dozor_inventory::version::{compare_dpkg, compare_rpm_evr, rpmvercmp};

const DPKG_CASES: &[(&str, &str, Ordering)] = &[
    ("1.0", "1.0", Equal),
    ("1.0", "1.1", Less),
    ("1.1", "1.0", Greater),
    // Policy 5.6.12: `~~ < ~~a < ~ < (nothing) < a`.
    ("1.0~~", "1.0~~a", Less),
    ("1.0~~a", "1.0~", Less),
    ("1.0~", "1.0", Less),
    ("1.0", "1.0a", Less),
    ("1.0~rc1", "1.0", Less),
    ("1.2~beta", "1.2~rc", Less),
    // Epochs.
    ("1:1.0", "2.0", Greater),
    ("2:1.0", "1:9.9", Greater),
    ("0:1.0", "1.0", Equal),
    ("00:1.0", "1.0", Equal),
    ("10:1.0", "9:1.0", Greater),
    // Revisions: absent equals 0.
    ("1.0-1", "1.0-2", Less),
    ("1.0", "1.0-0", Equal),
    ("1:2.0", "1:2.0-0", Equal),
    ("1.0-1ubuntu1", "1.0-1", Greater),
    ("1.0-1", "1.0.1-1", Less),
    // Digit runs compare as numbers, leading zeros ignored.
    ("2.30-1", "2.3-1", Greater),
    ("1.001", "1.1", Equal),
    ("1.0.0", "1.0", Greater),
    ("20240101", "20231231", Greater),
    // Letters sort before other characters; `+` (43) before `.` (46).
    ("1.0a", "1.0+", Less),
    ("1.2.3+dfsg-1", "1.2.3-1", Greater),
    ("1.0+b1", "1.0", Greater),
    ("2.4.7-1+deb12u1", "2.4.7-1.1", Less),
    ("7.6p2-4", "7.6-0", Greater),
    ("0.9.8zf", "0.9.8zg", Less),
    // Security updates as Debian writes them.
    ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", Greater),
    ("3.0.11-1~deb12u2", "3.0.11-1", Less),
    ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+b1", Less),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
    // Hyphens in upstream: the revision is after the last one.
    ("1.0-rc1-1", "1.0-rc1-2", Less),
    ("1.0-rc1-1", "1.0-1", Greater),
];

const RPMVERCMP_CASES: &[(&str, &str, Ordering)] = &[
    ("1.0", "1.0", Equal),
    ("1.0", "2.0", Less),
    ("2.0", "1.0", Greater),
    ("2.0.1", "2.0.1", Equal),
    ("2.0", "2.0.1", Less),
    ("2.0.1a", "2.0.1a", Equal),
    ("2.0.1a", "2.0.1", Greater),
    ("5.5p1", "5.5p2", Less),
    ("5.5p1", "5.5p10", Less),
    ("5.5p10", "5.5p1", Greater),
    ("10xyz", "10.1xyz", Less),
    ("xyz10", "xyz10.1", Less),
    ("xyz.4", "xyz.4", Equal),
    ("xyz.4", "8", Less),
    ("8", "xyz.4", Greater),
    ("xyz.4", "2", Less),
    ("5.5p2", "5.6p1", Less),
    ("5.6p1", "6.5p1", Less),
    // A trailing letter segment is newer than nothing.
    ("6.0.rc1", "6.0", Greater),
    ("10b2", "10a1", Greater),
    ("10a2", "10b2", Less),
    ("1.0aa", "1.0a", Greater),
    // Numbers: leading zeros ignored, longer wins.
    ("10.0001", "10.1", Equal),
    ("10.0001", "10.0039", Less),
    ("4.999.9", "5.0", Less),
    ("20101121", "20101122", Less),
    // Separators are all alike.
    ("2_0", "2.0", Equal),
    ("a+", "a_", Equal),
    ("+a", "_a", Equal),
    ("_+", "+_", Equal),
    ("+", "_", Equal),
    // `~` sorts before everything, the end included.
    ("1.0~rc1", "1.0", Less),
    ("1.0", "1.0~rc1", Greater),
    ("1.0~rc1", "1.0~rc2", Less),
    ("1.0~rc1~git123", "1.0~rc1", Less),
    // `^` sorts after the end but before anything else.
    ("1.0^", "1.0", Greater),
    ("1.0^git1", "1.0", Greater),
    ("1.0", "1.0^git1", Less),
    ("1.0^git1", "1.0^git2", Less),
    ("1.0^git1", "1.01", Less),
    ("1.0^20160101", "1.0.1", Less),
    ("1.0^20160102", "1.0^20160101^git1", Greater),
    ("1.0~rc1^git1", "1.0~rc1", Greater),
    ("1.0^git1~pre", "1.0^git1", Less),
    ("1.0^git1", "1.0^git1~pre", Greater),
    ("1.0^git1~pre", "1.0^git1~pre", Equal),
];

const RPM_EVR_CASES: &[(&str, &str, Ordering)] = &[
    ("1:1.0-1", "2.0-1", Greater),
    ("0:1.0-1", "1.0-1", Equal),
    ("1.0-1", "1:1.0-1", Less),
    // A release absent on one side is not compared.
    ("1.0", "1.0-5", Equal),
    ("1.0-1.el9", "1.0-1.el9_1", Less),
    ("2.0-1", "1.9-10", Greater),
    ("3.0.7-27.el9", "3.0.7-25.el9", Greater),
    ("1:3.0.7-27.el9", "1:3.0.7-27.el9", Equal),
    ("5.14.0-362.24.1.el9_3", "5.14.0-362.8.1.el9_3", Greater),
    // ALT's releases.
    ("1.1.1w-alt1", "1.1.1w-alt2", Less),
    ("2.35-alt1.p10", "2.35-alt1", Greater),
];

#[test]
fn dpkg_ordering_table() {
    for &(left, right, expected) in DPKG_CASES {
        assert_eq!(compare_dpkg(left, right), expected, "{left} vs {right}");
        assert_eq!(
            compare_dpkg(right, left),
            expected.reverse(),
            "{right} vs {left}"
        );
    }
}

#[test]
fn dpkg_ordering_agrees_with_dpkg_itself() {
    let dpkg_present = std::process::Command::new("dpkg")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !dpkg_present {
        eprintln!("dpkg not installed: the cross-check against dpkg --compare-versions is skipped");
        return;
    }
    for &(left, right, expected) in DPKG_CASES {
        let operator = match expected {
            Less => "lt",
            Equal => "eq",
            Greater => "gt",
        };
        let status = std::process::Command::new("dpkg")
            .args(["--compare-versions", left, operator, right])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run dpkg");
        assert!(
            status.success(),
            "dpkg disagrees: {left} {operator} {right}"
        );
    }
}

#[test]
fn rpmvercmp_table() {
    for &(left, right, expected) in RPMVERCMP_CASES {
        assert_eq!(rpmvercmp(left, right), expected, "{left} vs {right}");
        assert_eq!(
            rpmvercmp(right, left),
            expected.reverse(),
            "{right} vs {left}"
        );
    }
}

#[test]
fn rpm_evr_table() {
    for &(left, right, expected) in RPM_EVR_CASES {
        assert_eq!(compare_rpm_evr(left, right), expected, "{left} vs {right}");
        assert_eq!(
            compare_rpm_evr(right, left),
            expected.reverse(),
            "{right} vs {left}"
        );
    }
}

#[test]
fn malformed_versions_never_panic() {
    for text in [
        "", ":", "-", "::", "a:b:c", "1:", ":1", "~", "^", "\u{0}", "é-ü", "1:-",
    ] {
        for other in ["", "1.0", "~", "1:1.0-1"] {
            let _ = compare_dpkg(text, other);
            let _ = compare_rpm_evr(text, other);
            let _ = rpmvercmp(text, other);
        }
    }
}
