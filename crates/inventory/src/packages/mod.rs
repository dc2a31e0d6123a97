//! Installed packages: the model, the readers of each package database and the inventory's
//! fingerprint and diff.

pub mod dpkg;
pub mod rpm;
pub mod windows;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::os_release::OsRelease;

/// Which package database a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageEcosystem {
    /// `/var/lib/dpkg/status` (Debian, Ubuntu, Astra Linux).
    Dpkg,
    /// The rpm database (Red Hat family, RED OS, ALT).
    Rpm,
    /// The uninstall keys of the Windows registry.
    Windows,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    /// The version as the package database writes it (rpm: `[epoch:]version-release`).
    pub version: String,
    pub arch: Option<String>,
    /// The source package (dpkg `Source:`); Debian's advisories name source packages.
    pub source_name: Option<String>,
    /// The source version when dpkg gives one (`Source: name (version)`, binNMUs).
    pub source_version: Option<String>,
    /// Windows `Publisher`.
    pub vendor: Option<String>,
    pub ecosystem: PackageEcosystem,
}

impl Package {
    /// A package with only its name, version and database (the other fields empty).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        ecosystem: PackageEcosystem,
    ) -> Self {
        Package {
            name: name.into(),
            version: version.into(),
            arch: None,
            source_name: None,
            source_version: None,
            vendor: None,
            ecosystem,
        }
    }
}

/// Something wrong in a package database's text: where (1-based line, or entry index for the
/// registry) and why. The entry is skipped; the others are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseProblem {
    pub line: usize,
    pub reason: String,
}

/// The packages read from one database and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedPackages {
    pub packages: Vec<Package>,
    pub problems: Vec<ParseProblem>,
}

/// Everything installed on one host, and the host's OS when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
}

/// What changed between two inventories of the same host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryDiff {
    pub added: Vec<Package>,
    pub removed: Vec<Package>,
    /// (before, after) for a package whose name and architecture stayed but whose version or
    /// source changed.
    pub changed: Vec<(Package, Package)>,
}

impl InventoryDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl Inventory {
    pub fn new(os: Option<OsRelease>, packages: Vec<Package>) -> Self {
        Inventory { os, packages }
    }

    /// A SHA-256 (hex) of the sorted package list, independent of the order the database
    /// listed them in, so an agent can tell "changed since the last report" without sending it.
    pub fn fingerprint(&self) -> String {
        let mut sorted: Vec<&Package> = self.packages.iter().collect();
        sorted.sort();
        let mut hasher = Sha256::new();
        for package in sorted {
            let ecosystem = match package.ecosystem {
                PackageEcosystem::Dpkg => "dpkg",
                PackageEcosystem::Rpm => "rpm",
                PackageEcosystem::Windows => "windows",
            };
            // Length-prefixed fields: no two different lists hash the same bytes.
            for field in [
                Some(package.name.as_str()),
                Some(package.version.as_str()),
                package.arch.as_deref(),
                package.source_name.as_deref(),
                package.source_version.as_deref(),
                package.vendor.as_deref(),
                Some(ecosystem),
            ] {
                match field {
                    Some(text) => {
                        hasher.update((text.len() as u64 + 1).to_le_bytes());
                        hasher.update(text.as_bytes());
                    }
                    None => hasher.update(0u64.to_le_bytes()),
                }
            }
        }
        let digest = hasher.finalize();
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }

    /// Packages added, removed and changed from `self` (before) to `after`, keyed by
    /// (ecosystem, name, architecture). Sorted by that key.
    pub fn diff(&self, after: &Inventory) -> InventoryDiff {
        type Key<'a> = (PackageEcosystem, &'a str, Option<&'a str>);
        fn group(packages: &[Package]) -> BTreeMap<Key<'_>, Vec<&Package>> {
            let mut groups: BTreeMap<Key<'_>, Vec<&Package>> = BTreeMap::new();
            for package in packages {
                groups
                    .entry((package.ecosystem, &package.name, package.arch.as_deref()))
                    .or_default()
                    .push(package);
            }
            for list in groups.values_mut() {
                list.sort();
            }
            groups
        }
        let before = group(&self.packages);
        let after = group(&after.packages);
        let mut diff = InventoryDiff::default();
        for (key, old) in &before {
            match after.get(key) {
                None => diff.removed.extend(old.iter().map(|p| (*p).clone())),
                Some(new) if old == new => {}
                Some(new) if old.len() == 1 && new.len() == 1 => {
                    if let (Some(old), Some(new)) = (old.first(), new.first()) {
                        diff.changed.push(((*old).clone(), (*new).clone()));
                    }
                }
                // Several installs under one name (Windows x86 and x64 of one product, say):
                // report exactly which entries went and came.
                Some(new) => {
                    diff.removed.extend(
                        old.iter()
                            .filter(|p| !new.contains(p))
                            .map(|p| (*p).clone()),
                    );
                    diff.added.extend(
                        new.iter()
                            .filter(|p| !old.contains(p))
                            .map(|p| (*p).clone()),
                    );
                }
            }
        }
        for (key, new) in &after {
            if !before.contains_key(key) {
                diff.added.extend(new.iter().map(|p| (*p).clone()));
            }
        }
        diff
    }
}
