//! `/var/lib/dpkg/status`: RFC 822-style stanzas separated by blank lines.

use std::path::Path;

use super::{Package, PackageEcosystem, ParseProblem, ParsedPackages};
use crate::InventoryError;

/// Where dpkg keeps its database of installed packages.
pub const DPKG_STATUS_PATH: &str = "/var/lib/dpkg/status";

/// Reads and parses a dpkg status file.
pub fn read_dpkg_status(path: &Path) -> Result<ParsedPackages, InventoryError> {
    let bytes = std::fs::read(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Descriptions are not always UTF-8 in old databases; the fields we use are ASCII.
    Ok(parse_dpkg_status(&String::from_utf8_lossy(&bytes)))
}

/// The fields of one stanza that the inventory uses.
#[derive(Default)]
struct Stanza<'a> {
    first_line: usize,
    package: Option<&'a str>,
    status: Option<&'a str>,
    version: Option<&'a str>,
    architecture: Option<&'a str>,
    source: Option<&'a str>,
    problem: Option<ParseProblem>,
    has_content: bool,
}

/// Parses the text of a dpkg status file: the packages whose Status is
/// `install ok installed` or `hold ok installed`, and a problem (with its line) for each stanza that could not be read.
pub fn parse_dpkg_status(text: &str) -> ParsedPackages {
    let mut parsed = ParsedPackages::default();
    let mut stanza = Stanza::default();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            finish_stanza(std::mem::take(&mut stanza), &mut parsed);
            continue;
        }
        if !stanza.has_content {
            stanza.has_content = true;
            stanza.first_line = line_number;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line (Description, Conffiles...) belongs to the previous field.
            if stanza.first_line == line_number {
                stanza.problem.get_or_insert(ParseProblem {
                    line: line_number,
                    reason: "continuation line with no field before it".into(),
                });
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            stanza.problem.get_or_insert(ParseProblem {
                line: line_number,
                reason: format!("not a `Field: value` line: {:?}", truncate(line)),
            });
            continue;
        };
        let value = value.trim();
        let slot = match name {
            "Package" => &mut stanza.package,
            "Status" => &mut stanza.status,
            "Version" => &mut stanza.version,
            "Architecture" => &mut stanza.architecture,
            "Source" => &mut stanza.source,
            _ => continue,
        };
        if slot.is_some() {
            stanza.problem.get_or_insert(ParseProblem {
                line: line_number,
                reason: format!("field {name} given twice"),
            });
        }
        *slot = Some(value);
    }
    finish_stanza(stanza, &mut parsed);
    parsed
}

fn truncate(line: &str) -> &str {
    match line.char_indices().nth(80) {
        Some((end, _)) => line.get(..end).unwrap_or(line),
        None => line,
    }
}

fn finish_stanza(stanza: Stanza<'_>, parsed: &mut ParsedPackages) {
    if !stanza.has_content {
        return;
    }
    if let Some(problem) = stanza.problem {
        tracing::debug!(line = problem.line, reason = %problem.reason, "dpkg status: stanza skipped");
        parsed.problems.push(problem);
        return;
    }
    let problem = |reason: String| ParseProblem {
        line: stanza.first_line,
        reason,
    };
    let Some(name) = stanza.package.filter(|name| !name.is_empty()) else {
        parsed
            .problems
            .push(problem("stanza without a Package field".into()));
        return;
    };
    let Some(status) = stanza.status else {
        parsed
            .problems
            .push(problem(format!("package {name}: no Status field")));
        return;
    };
    let status_words: Vec<&str> = status.split_whitespace().collect();
    if status_words.len() != 3 {
        parsed.problems.push(problem(format!(
            "package {name}: Status {status:?} is not `want flag status`"
        )));
        return;
    }
    // Held packages (`hold ok installed`) are installed too — and often exactly the ones left
    // unpatched on purpose, so they must be matched.
    if !matches!(status_words[..], ["install" | "hold", "ok", "installed"]) {
        return;
    }
    let Some(version) = stanza.version.filter(|version| !version.is_empty()) else {
        parsed
            .problems
            .push(problem(format!("package {name}: installed but no Version")));
        return;
    };
    let (source_name, source_version) = match stanza.source {
        Some(source) => match parse_source_field(source) {
            Some((source_name, source_version)) => (Some(source_name), source_version),
            None => {
                parsed.problems.push(problem(format!(
                    "package {name}: Source {source:?} is not `name [(version)]`"
                )));
                return;
            }
        },
        None => (None, None),
    };
    parsed.packages.push(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: stanza.architecture.map(str::to_owned),
        source_name: source_name.map(str::to_owned),
        source_version: source_version.map(str::to_owned),
        vendor: None,
        ecosystem: PackageEcosystem::Dpkg,
    });
}

/// `Source: name` or `Source: name (version)`.
fn parse_source_field(source: &str) -> Option<(&str, Option<&str>)> {
    let source = source.trim();
    match source.split_once('(') {
        None if !source.is_empty() && !source.contains(char::is_whitespace) => Some((source, None)),
        None => None,
        Some((name, rest)) => {
            let name = name.trim();
            let version = rest.strip_suffix(')')?.trim();
            if name.is_empty() || name.contains(char::is_whitespace) || version.is_empty() {
                return None;
            }
            Some((name, Some(version)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation.
 .
 It provides the libssl and libcrypto shared libraries.

Package: removed-one
Status: deinstall ok config-files
Version: 1.0-1

Package: broken
Status: install ok installed
this line has no colon
Version: 1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1+b1

Package: noversion
Status: install ok installed

Package: openssh-server
Status: hold ok installed
Version: 1:9.2p1-2
";

    #[test]
    fn keeps_installed_packages_and_reports_broken_stanzas() {
        let parsed = parse_dpkg_status(SAMPLE);
        let names: Vec<&str> = parsed.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["libssl3", "zlib1g", "openssh-server"],
            "held ones too"
        );
        let libssl = &parsed.packages[0];
        assert_eq!(libssl.version, "3.0.11-1~deb12u2");
        assert_eq!(libssl.arch.as_deref(), Some("amd64"));
        assert_eq!(libssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(libssl.source_version, None);
        let zlib = &parsed.packages[1];
        assert_eq!(zlib.source_name.as_deref(), Some("zlib"));
        assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
        assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
        assert_eq!(parsed.problems[0].line, 19);
        assert!(parsed.problems[0].reason.contains("no colon"));
        assert_eq!(parsed.problems[1].line, 28);
        assert!(parsed.problems[1].reason.contains("no Version"));
    }

    #[test]
    fn every_truncation_parses_without_panic_and_keeps_complete_stanzas() {
        for (end, _) in SAMPLE.char_indices() {
            let parsed = parse_dpkg_status(&SAMPLE[..end]);
            // Once libssl3's stanza has ended (a blank line), a cut further on cannot lose it;
            // a cut inside it may leave a half line that makes the stanza malformed.
            if end > SAMPLE.find("\n\n").unwrap() {
                assert_eq!(
                    parsed.packages.first().map(|p| p.name.as_str()),
                    Some("libssl3")
                );
            }
        }
    }

    #[test]
    fn source_field_forms() {
        assert_eq!(parse_source_field("openssl"), Some(("openssl", None)));
        assert_eq!(
            parse_source_field("gcc-12 (12.2.0-14)"),
            Some(("gcc-12", Some("12.2.0-14")))
        );
        assert_eq!(parse_source_field("gcc-12 (12.2.0-14"), None);
        assert_eq!(parse_source_field("two words"), None);
        assert_eq!(parse_source_field(""), None);
    }

    #[test]
    fn crlf_and_trailing_text_without_blank_line() {
        let parsed =
            parse_dpkg_status("Package: a\r\nStatus: install ok installed\r\nVersion: 1.0\r\n");
        assert_eq!(parsed.packages.len(), 1);
        assert_eq!(parsed.packages[0].version, "1.0");
        assert!(parsed.problems.is_empty());
    }
}
