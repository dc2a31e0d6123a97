//! Software inventory and advisory matching for Dozor.
//!
//! - [`packages`]: what is installed — dpkg's status file, `rpm -qa`, the Windows uninstall
//!   keys — as [`Inventory`], with a [`fingerprint`](Inventory::fingerprint) and a
//!   [`diff`](Inventory::diff) so an agent reports at start and on change only.
//! - [`os_release`] and [`ecosystem`]: which OSV ecosystems apply to a host.
//! - [`version`]: dpkg and rpm version ordering.
//! - [`osv`]: OSV advisories from a file, a directory or a zip, indexed by package.
//! - [`matcher`]: an inventory against the index → [`Finding`]s.
//!
//! No async runtime, no network: the agent and the server both use it.

pub mod cvss;
pub mod ecosystem;
pub mod matcher;
pub mod os_release;
pub mod osv;
pub mod packages;
pub mod version;

use std::path::PathBuf;
use std::time::Duration;

pub use ecosystem::{EcosystemTarget, targets_for_os};
pub use matcher::{FINDING_SOURCE, Finding, match_inventory, match_inventory_with_targets};
pub use os_release::OsRelease;
pub use osv::{AdvisoryIndex, LoadProblem, LoadReport};
pub use packages::{
    Inventory, InventoryDiff, Package, PackageEcosystem, ParseProblem, ParsedPackages,
};
pub use version::VersionScheme;

/// Errors of the inventory readers and the advisory loader. Problems inside a file (a bad
/// stanza, a broken advisory) are not errors: they are reported next to the good results.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}")]
    Command {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {timeout:?}")]
    CommandTimedOut {
        program: &'static str,
        timeout: Duration,
    },
    #[error("{program} failed ({status}): {stderr}")]
    CommandFailed {
        program: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{path} is not a zip archive: {reason}")]
    Zip { path: PathBuf, reason: String },
}

/// The local host's inventory: os-release, then the package database its family uses — dpkg's
/// status file for Debian-like systems, `rpm -qa` for rpm-based ones, whichever exists when
/// the family is unknown; on Windows the uninstall keys. Problems met while parsing are
/// returned beside it (and logged).
pub fn collect_local_inventory() -> Result<(Inventory, Vec<ParseProblem>), InventoryError> {
    #[cfg(windows)]
    {
        let parsed = packages::windows::parse_uninstall_entries(
            &packages::windows::read_uninstall_registry(),
        );
        Ok((Inventory::new(None, parsed.packages), parsed.problems))
    }
    #[cfg(not(windows))]
    {
        let os = OsRelease::read_local();
        let rpm_based = os.as_ref().is_some_and(|os| {
            targets_for_os(os)
                .first()
                .is_some_and(|target| target.scheme == VersionScheme::Rpm)
        });
        let dpkg_status = std::path::Path::new(packages::dpkg::DPKG_STATUS_PATH);
        let parsed = if !rpm_based && dpkg_status.exists() {
            packages::dpkg::read_dpkg_status(dpkg_status)?
        } else if let Some(parsed) = packages::rpm::query_rpm(packages::rpm::RPM_QUERY_TIMEOUT)? {
            parsed
        } else if dpkg_status.exists() {
            packages::dpkg::read_dpkg_status(dpkg_status)?
        } else {
            tracing::warn!("no dpkg status file and no rpm: empty inventory");
            ParsedPackages::default()
        };
        for problem in &parsed.problems {
            tracing::warn!(line = problem.line, reason = %problem.reason, "package entry skipped");
        }
        Ok((Inventory::new(os, parsed.packages), parsed.problems))
    }
}
