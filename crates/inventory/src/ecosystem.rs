//! Which OSV ecosystems apply to a host, and which version ordering each uses.
//!
//! OSV names an ecosystem `Name` or `Name:release` (`Debian:12`, `Ubuntu:22.04:LTS`,
//! `Red Hat:enterprise_linux:9::appstream`). A host gets a list of [`EcosystemTarget`]s from its
//! os-release ([`targets_for_os`]); an advisory's `affected[]` entry applies when its ecosystem
//! name equals a target's (ignoring case) and its release, if it has one, contains one of the
//! target's release tokens as a `:`-separated component.
//!
//! | os-release `ID` | OSV ecosystem | release tokens | ordering |
//! |---|---|---|---|
//! | `debian` | `Debian` | `VERSION_ID` (`12`) | dpkg |
//! | `ubuntu` | `Ubuntu` | `VERSION_ID` (`22.04`) | dpkg |
//! | `astra` | `Astra Linux` (no official OSV feed: a site's own) | `VERSION_ID`, its part before `_` (`1.7`) | dpkg |
//! | `astra` 1.6 / 1.7 / 1.8 | also `Debian` 9 / 10 / 12, the release Astra is built on | that Debian release | dpkg |
//! | `rhel`, `centos` | `Red Hat` | `VERSION_ID`, its major (`9`) | rpm |
//! | `almalinux` / `rocky` | `AlmaLinux` / `Rocky Linux` | `VERSION_ID`, major | rpm |
//! | `redos` | `RED OS` (no official OSV feed: a site's own) | `VERSION_ID`, major | rpm |
//! | `altlinux` | `ALT` (no official OSV feed: a site's own) | `VERSION_ID`, major | rpm |
//! | `opensuse*` / `sles` | `openSUSE` / `SUSE` | `VERSION_ID`, major | rpm |
//! | other, `ID_LIKE` debian | `Debian` | none (release-less advisories only) | dpkg |
//! | other, `ID_LIKE` rhel/fedora | `Red Hat` | none | rpm |
//! | Windows | none: OSV has no ecosystem for Windows programs | | |

use serde::{Deserialize, Serialize};

use crate::os_release::OsRelease;
use crate::version::VersionScheme;

/// One OSV ecosystem whose advisories apply to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcosystemTarget {
    /// The OSV ecosystem name without the release (`Debian`, `Red Hat`).
    pub name: String,
    /// Release components that select this host's release (`12`); empty: only advisories
    /// whose ecosystem has no release apply.
    pub releases: Vec<String>,
    pub scheme: VersionScheme,
}

impl EcosystemTarget {
    pub fn new(name: &str, releases: &[&str], scheme: VersionScheme) -> Self {
        EcosystemTarget {
            name: name.to_owned(),
            releases: releases.iter().map(|r| (*r).to_owned()).collect(),
            scheme,
        }
    }

    /// Whether an advisory's release part (after the first `:` of its ecosystem) applies.
    pub fn accepts_release(&self, release: Option<&str>) -> bool {
        match release {
            None | Some("") => true,
            Some(release) => release
                .split(':')
                .any(|component| self.releases.iter().any(|wanted| wanted == component)),
        }
    }
}

/// `Debian:12`, `Red Hat:9.4`, `Debian` (no release): the first release token after the name.
impl std::fmt::Display for EcosystemTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.releases.first() {
            Some(release) => write!(formatter, "{}:{release}", self.name),
            None => formatter.write_str(&self.name),
        }
    }
}

/// Splits an OSV ecosystem string into its name and release (`Debian:12` → `Debian`, `12`).
pub fn split_ecosystem(ecosystem: &str) -> (&str, Option<&str>) {
    match ecosystem.split_once(':') {
        Some((name, release)) => (name.trim(), Some(release.trim())),
        None => (ecosystem.trim(), None),
    }
}

/// The key advisories are indexed under: the ecosystem name in lower case.
pub(crate) fn family_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The Debian release an Astra Linux release is built on.
fn astra_debian_base(astra_release: &str) -> Option<&'static str> {
    match astra_release {
        "1.6" => Some("9"),
        "1.7" => Some("10"),
        "1.8" => Some("12"),
        _ => None,
    }
}

/// The OSV ecosystems that apply to a host with this os-release (see the module's table).
pub fn targets_for_os(os: &OsRelease) -> Vec<EcosystemTarget> {
    use VersionScheme::{Dpkg, Rpm};
    let version = os.version_id.as_deref().unwrap_or("");
    let major = version.split(['.', '_']).next().unwrap_or("");
    let exact: Vec<&str> = [version].into_iter().filter(|v| !v.is_empty()).collect();
    let mut with_major = exact.clone();
    if !major.is_empty() && major != version {
        with_major.push(major);
    }
    let rpm_target = |name: &str| EcosystemTarget::new(name, &with_major, Rpm);
    match os.id.as_str() {
        "debian" => vec![EcosystemTarget::new("Debian", &exact, Dpkg)],
        "ubuntu" => vec![EcosystemTarget::new("Ubuntu", &exact, Dpkg)],
        "astra" => {
            // VERSION_ID is `1.7_x86-64`: the release is the part before `_`.
            let release = version.split('_').next().unwrap_or("");
            let mut releases = exact.clone();
            if !release.is_empty() && release != version {
                releases.push(release);
            }
            let mut targets = vec![EcosystemTarget::new("Astra Linux", &releases, Dpkg)];
            if let Some(base) = astra_debian_base(release) {
                targets.push(EcosystemTarget::new("Debian", &[base], Dpkg));
            }
            targets
        }
        "rhel" | "centos" => vec![rpm_target("Red Hat")],
        "almalinux" => vec![rpm_target("AlmaLinux")],
        "rocky" => vec![rpm_target("Rocky Linux")],
        "redos" => vec![rpm_target("RED OS")],
        "altlinux" => vec![rpm_target("ALT")],
        "sles" | "sled" => vec![rpm_target("SUSE")],
        id if id.starts_with("opensuse") => vec![rpm_target("openSUSE")],
        _ if os.is_like("debian") => vec![EcosystemTarget::new("Debian", &[], Dpkg)],
        _ if os.is_like("rhel") || os.is_like("fedora") => {
            vec![EcosystemTarget::new("Red Hat", &[], Rpm)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text)
    }

    #[test]
    fn debian_twelve() {
        let targets = targets_for_os(&os("ID=debian\nVERSION_ID=\"12\"\n"));
        assert_eq!(
            targets,
            [EcosystemTarget::new("Debian", &["12"], VersionScheme::Dpkg)]
        );
        let debian = &targets[0];
        assert!(debian.accepts_release(Some("12")));
        assert!(debian.accepts_release(None));
        assert!(!debian.accepts_release(Some("11")));
        assert_eq!(debian.to_string(), "Debian:12");
    }

    #[test]
    fn astra_maps_to_its_own_and_to_debian() {
        let targets = targets_for_os(&os(
            "PRETTY_NAME=\"Astra Linux\"\nNAME=\"Astra Linux\"\nID=astra\nID_LIKE=debian\n\
             VERSION_ID=1.7_x86-64\nVERSION_CODENAME=1.7_x86-64\n",
        ));
        assert_eq!(
            targets,
            [
                EcosystemTarget::new("Astra Linux", &["1.7_x86-64", "1.7"], VersionScheme::Dpkg),
                EcosystemTarget::new("Debian", &["10"], VersionScheme::Dpkg),
            ]
        );
    }

    #[test]
    fn rpm_families() {
        let red_hat = targets_for_os(&os("ID=\"rhel\"\nVERSION_ID=\"9.4\"\nID_LIKE=\"fedora\"\n"));
        assert_eq!(
            red_hat,
            [EcosystemTarget::new(
                "Red Hat",
                &["9.4", "9"],
                VersionScheme::Rpm
            )]
        );
        assert!(red_hat[0].accepts_release(Some("enterprise_linux:9::appstream")));
        assert!(!red_hat[0].accepts_release(Some("enterprise_linux:8::appstream")));
        let red_os = targets_for_os(&os(
            "ID=\"redos\"\nVERSION_ID=\"7.3\"\nID_LIKE=\"rhel fedora\"\n",
        ));
        assert_eq!(red_os[0].name, "RED OS");
        assert_eq!(red_os[0].scheme, VersionScheme::Rpm);
        let alt = targets_for_os(&os(
            "NAME=\"ALT Workstation\"\nID=altlinux\nVERSION_ID=10.1\n",
        ));
        assert_eq!(
            alt,
            [EcosystemTarget::new(
                "ALT",
                &["10.1", "10"],
                VersionScheme::Rpm
            )]
        );
        let ubuntu = targets_for_os(&os("ID=ubuntu\nVERSION_ID=\"22.04\"\nID_LIKE=debian\n"));
        assert!(ubuntu[0].accepts_release(Some("22.04:LTS")));
        assert!(!ubuntu[0].accepts_release(Some("20.04:LTS")));
    }

    #[test]
    fn unknown_derivatives_and_unknown_systems() {
        let mint = targets_for_os(&os("ID=mint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=21\n"));
        assert_eq!(
            mint,
            [EcosystemTarget::new("Debian", &[], VersionScheme::Dpkg)]
        );
        assert!(!mint[0].accepts_release(Some("12")));
        assert!(targets_for_os(&os("ID=arch\n")).is_empty());
    }

    #[test]
    fn splits_ecosystem_strings() {
        assert_eq!(split_ecosystem("Debian:12"), ("Debian", Some("12")));
        assert_eq!(split_ecosystem("Debian"), ("Debian", None));
        assert_eq!(
            split_ecosystem("Red Hat:enterprise_linux:9::appstream"),
            ("Red Hat", Some("enterprise_linux:9::appstream"))
        );
    }
}
