//! Version ordering of the package formats the inventory reads.

mod dpkg;
mod rpm;

use std::cmp::Ordering;

pub use dpkg::{DpkgVersion, compare_dpkg};
pub use rpm::{RpmVersion, compare_rpm_evr, rpmvercmp};

/// Which ordering a package ecosystem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionScheme {
    /// Debian's `dpkg --compare-versions` (Debian, Ubuntu, Astra Linux).
    Dpkg,
    /// rpm's `epoch:version-release` with `rpmvercmp` (Red Hat family, RED OS, ALT, SUSE).
    Rpm,
}

impl VersionScheme {
    /// Compares two versions as written; never fails (malformed versions get a lenient answer).
    pub fn compare(self, left: &str, right: &str) -> Ordering {
        match self {
            VersionScheme::Dpkg => compare_dpkg(left, right),
            VersionScheme::Rpm => compare_rpm_evr(left, right),
        }
    }
}
