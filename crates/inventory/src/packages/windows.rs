//! Installed programs of Windows, as "Programs and Features" lists them: the subkeys of
//! `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall` (64-bit programs on 64-bit
//! Windows) and of its `WOW6432Node` twin (32-bit programs).
//!
//! The parser takes values already read, so it is tested on any platform; the registry reading
//! itself ([`read_uninstall_registry`]) exists on Windows only and stays thin.

use std::collections::BTreeMap;

use super::{Package, PackageEcosystem, ParseProblem, ParsedPackages};

/// The uninstall key of native programs, under `HKEY_LOCAL_MACHINE`.
pub const UNINSTALL_KEY: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";
/// The uninstall key of 32-bit programs on 64-bit Windows, under `HKEY_LOCAL_MACHINE`.
pub const UNINSTALL_KEY_WOW64: &str =
    r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall";

/// Which of the two uninstall keys an entry was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryView {
    /// [`UNINSTALL_KEY`]: 64-bit programs on 64-bit Windows.
    Native,
    /// [`UNINSTALL_KEY_WOW64`]: 32-bit programs on 64-bit Windows.
    Wow6432Node,
}

/// One subkey of an uninstall key with its values as text (DWORDs in decimal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallEntry {
    pub view: RegistryView,
    /// The subkey's name (a product code GUID or a name), for problem reports.
    pub key_name: String,
    pub values: BTreeMap<String, String>,
}

/// Turns uninstall entries into packages the way "Programs and Features" does: an entry needs
/// a `DisplayName`; entries marked `SystemComponent = 1` are hidden parts of another product
/// and entries with a `ParentKeyName` are updates of one, so both are left out. An entry
/// without `DisplayVersion` is reported (its line is its index in `entries`, from 1) and kept
/// with an empty version, since knowing it is installed still matters.
pub fn parse_uninstall_entries(entries: &[UninstallEntry]) -> ParsedPackages {
    let mut parsed = ParsedPackages::default();
    for (index, entry) in entries.iter().enumerate() {
        let value = |name: &str| {
            entry
                .values
                .get(name)
                .map(|text| text.trim_matches(char::from(0)).trim())
                .filter(|text| !text.is_empty())
        };
        let Some(name) = value("DisplayName") else {
            continue;
        };
        if value("SystemComponent") == Some("1") || value("ParentKeyName").is_some() {
            continue;
        }
        let version = match value("DisplayVersion") {
            Some(version) => version.to_owned(),
            None => {
                parsed.problems.push(ParseProblem {
                    line: index + 1,
                    reason: format!(
                        "uninstall key {:?} ({name}): no DisplayVersion",
                        entry.key_name
                    ),
                });
                String::new()
            }
        };
        let mut package = Package::new(name, version, PackageEcosystem::Windows);
        package.arch = Some(
            match entry.view {
                RegistryView::Native => "x64",
                RegistryView::Wow6432Node => "x86",
            }
            .to_owned(),
        );
        package.vendor = value("Publisher").map(str::to_owned);
        parsed.packages.push(package);
    }
    parsed
}

/// Reads both uninstall keys of `HKEY_LOCAL_MACHINE`. A key that cannot be opened (no
/// WOW6432Node on 32-bit Windows) is skipped; a subkey that cannot be read is skipped with a
/// debug log, since one broken installer entry must not hide the others.
#[cfg(windows)]
pub fn read_uninstall_registry() -> Vec<UninstallEntry> {
    const VALUE_NAMES: [&str; 5] = [
        "DisplayName",
        "DisplayVersion",
        "Publisher",
        "SystemComponent",
        "ParentKeyName",
    ];
    let mut entries = Vec::new();
    for (path, view) in [
        (UNINSTALL_KEY, RegistryView::Native),
        (UNINSTALL_KEY_WOW64, RegistryView::Wow6432Node),
    ] {
        let Ok(uninstall) = windows_registry::LOCAL_MACHINE.open(path) else {
            tracing::debug!(path, "uninstall key not present");
            continue;
        };
        let Ok(names) = uninstall.keys() else {
            continue;
        };
        for key_name in names {
            let Ok(subkey) = uninstall.open(&key_name) else {
                tracing::debug!(path, key = %key_name, "uninstall subkey unreadable");
                continue;
            };
            let mut values = BTreeMap::new();
            for value_name in VALUE_NAMES {
                if let Ok(text) = subkey.get_string(value_name) {
                    values.insert(value_name.to_owned(), text);
                } else if let Ok(number) = subkey.get_u32(value_name) {
                    values.insert(value_name.to_owned(), number.to_string());
                }
            }
            entries.push(UninstallEntry {
                view,
                key_name,
                values,
            });
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(view: RegistryView, key: &str, values: &[(&str, &str)]) -> UninstallEntry {
        UninstallEntry {
            view,
            key_name: key.to_owned(),
            values: values
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn programs_and_features_rules() {
        let entries = [
            entry(
                RegistryView::Native,
                "7-Zip",
                &[
                    ("DisplayName", "7-Zip 23.01 (x64)"),
                    ("DisplayVersion", "23.01"),
                    ("Publisher", "Igor Pavlov"),
                ],
            ),
            entry(
                RegistryView::Wow6432Node,
                "{A1}",
                &[
                    ("DisplayName", "Notepad++ (32-bit x86)"),
                    ("DisplayVersion", "8.6.2\0"),
                    ("Publisher", "Notepad++ Team"),
                ],
            ),
            entry(RegistryView::Native, "NoName", &[("DisplayVersion", "1.0")]),
            entry(
                RegistryView::Native,
                "{HIDDEN}",
                &[("DisplayName", "Runtime part"), ("SystemComponent", "1")],
            ),
            entry(
                RegistryView::Native,
                "KB123",
                &[("DisplayName", "Update for X"), ("ParentKeyName", "X")],
            ),
            entry(
                RegistryView::Native,
                "{NOVER}",
                &[("DisplayName", "Legacy tool")],
            ),
        ];
        let parsed = parse_uninstall_entries(&entries);
        let got: Vec<(&str, &str, Option<&str>, Option<&str>)> = parsed
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.arch.as_deref(),
                    p.vendor.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "7-Zip 23.01 (x64)",
                    "23.01",
                    Some("x64"),
                    Some("Igor Pavlov")
                ),
                (
                    "Notepad++ (32-bit x86)",
                    "8.6.2",
                    Some("x86"),
                    Some("Notepad++ Team")
                ),
                ("Legacy tool", "", Some("x64"), None),
            ]
        );
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].line, 6);
        assert!(parsed.problems[0].reason.contains("{NOVER}"));
    }
}
