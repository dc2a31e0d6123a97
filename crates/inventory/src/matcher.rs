//! An inventory against an advisory index → findings.
//!
//! Each package is looked up by its own name and, for dpkg, by its source package's name
//! (Debian's advisories name source packages: `openssl`, not `libssl3`). Under the source name
//! the source version is compared when dpkg recorded one (`Source: name (version)`, as for a
//! binNMU `1.0-1+b1` of source `1.0-1`), since such advisories give source versions.
//!
//! A version is affected by a range as the OSV specification evaluates it: the greatest event
//! at or below the version decides (`introduced` → affected, `fixed` → not; `last_affected`
//! counts from just above its version); `introduced: "0"` is below every version.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::cvss::Severity;
use crate::ecosystem::{EcosystemTarget, family_key, split_ecosystem, targets_for_os};
use crate::osv::{AdvisoryIndex, AffectedPackage, RangeEvent};
use crate::packages::Inventory;
use crate::version::VersionScheme;

/// The `source` a `vuln_scan_result` made from a [`Finding`] carries.
pub const FINDING_SOURCE: &str = "inventory";

/// An installed package that an advisory affects: what a `vuln_scan_result` record needs
/// besides the host (port none, "NVT OID" the advisory id, source [`FINDING_SOURCE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub package: String,
    pub installed_version: String,
    pub arch: Option<String>,
    /// The name the advisory lists: the package's own or its source package's.
    pub matched_name: String,
    /// The advisory's ecosystem as written (`Debian:12`).
    pub ecosystem: String,
    pub advisory_id: String,
    pub aliases: Vec<String>,
    pub cves: Vec<String>,
    pub summary: Option<String>,
    pub severity: Option<Severity>,
    pub cvss_score: Option<f64>,
    pub cvss_vector: Option<String>,
    /// The first fixed version above the installed one, when the advisory names one.
    pub fixed_version: Option<String>,
}

impl Finding {
    /// The result's name: the advisory's summary, else its id.
    pub fn name(&self) -> &str {
        self.summary.as_deref().unwrap_or(&self.advisory_id)
    }

    /// The solution text: `upgrade <package> to <fixed>`, or that no fix is known yet.
    pub fn solution(&self) -> String {
        match &self.fixed_version {
            Some(fixed) => format!("upgrade {} to {fixed}", self.package),
            None => format!("no fixed version of {} is known yet", self.package),
        }
    }
}

/// Matches an inventory against the advisories of the ecosystems its OS maps to
/// ([`targets_for_os`]); an inventory without os-release matches nothing.
pub fn match_inventory(inventory: &Inventory, index: &AdvisoryIndex) -> Vec<Finding> {
    let targets = inventory
        .os
        .as_ref()
        .map(targets_for_os)
        .unwrap_or_default();
    match_inventory_with_targets(inventory, index, &targets)
}

/// Matches an inventory against the advisories of the given ecosystems (for a host whose
/// mapping the operator sets by hand). Findings are sorted by package, then advisory id; an
/// advisory is reported once per package even when several entries or targets match.
pub fn match_inventory_with_targets(
    inventory: &Inventory,
    index: &AdvisoryIndex,
    targets: &[EcosystemTarget],
) -> Vec<Finding> {
    let families: Vec<(String, &EcosystemTarget)> = targets
        .iter()
        .map(|target| (family_key(&target.name), target))
        .collect();
    let mut findings = Vec::new();
    let mut reported: HashSet<u32> = HashSet::new();
    for package in &inventory.packages {
        reported.clear();
        // Advisories naming the source give source versions: a binNMU (`1.0-1+b1` built from
        // `1.0-1`) is compared as its source version.
        let source_version = package
            .source_version
            .as_deref()
            .unwrap_or(&package.version);
        let (own, source) = match package.source_name.as_deref() {
            None => ((package.name.as_str(), package.version.as_str()), None),
            Some(source) if source == package.name => ((source, source_version), None),
            Some(source) => (
                (package.name.as_str(), package.version.as_str()),
                Some((source, source_version)),
            ),
        };
        for (family, target) in &families {
            for (name, version) in std::iter::once(own).chain(source) {
                for &reference in index.lookup(family, name) {
                    if reported.contains(&reference.advisory) {
                        continue;
                    }
                    let Some((advisory, affected)) = index.resolve(reference) else {
                        continue;
                    };
                    if !target.accepts_release(split_ecosystem(&affected.ecosystem).1) {
                        continue;
                    }
                    let Some(fixed_version) = affected_by(version, affected, target.scheme) else {
                        continue;
                    };
                    reported.insert(reference.advisory);
                    findings.push(Finding {
                        package: package.name.clone(),
                        installed_version: package.version.clone(),
                        arch: package.arch.clone(),
                        matched_name: name.to_owned(),
                        ecosystem: affected.ecosystem.clone(),
                        advisory_id: advisory.id.clone(),
                        aliases: advisory.aliases.clone(),
                        cves: advisory.cves(),
                        summary: advisory.summary.clone(),
                        severity: advisory.severity.level.or(affected.severity),
                        cvss_score: advisory.severity.score,
                        cvss_vector: advisory.severity.vector.clone(),
                        fixed_version,
                    });
                }
            }
        }
    }
    findings.sort_by(|a, b| {
        (
            a.package.as_str(),
            a.arch.as_deref(),
            a.advisory_id.as_str(),
        )
            .cmp(&(
                b.package.as_str(),
                b.arch.as_deref(),
                b.advisory_id.as_str(),
            ))
    });
    findings
}

/// `Some(fixed version if any)` when `version` is affected by the entry, `None` when not.
pub fn affected_by(
    version: &str,
    affected: &AffectedPackage,
    scheme: VersionScheme,
) -> Option<Option<String>> {
    let listed = affected
        .versions
        .iter()
        .any(|listed| listed == version || scheme.compare(listed, version) == Ordering::Equal);
    let mut in_range = None;
    for events in &affected.ranges {
        if range_affects(version, events, scheme) {
            in_range = Some(first_fix_above(version, events, scheme));
            break;
        }
    }
    match (in_range, listed) {
        (Some(fixed), _) => Some(fixed),
        (None, true) => Some(
            affected
                .ranges
                .iter()
                .find_map(|events| first_fix_above(version, events, scheme)),
        ),
        (None, false) => None,
    }
}

/// The rank that breaks ties between events at the same version: `last_affected` stands just
/// above its version, and a fix at a version wins over an introduction at it.
fn event_rank(event: &RangeEvent) -> u8 {
    match event {
        RangeEvent::Introduced(_) => 0,
        RangeEvent::Fixed(_) | RangeEvent::Limit(_) => 1,
        RangeEvent::LastAffected(_) => 2,
    }
}

fn range_affects(version: &str, events: &[RangeEvent], scheme: VersionScheme) -> bool {
    // The greatest event that has taken effect at `version` decides.
    let mut deciding: Option<&RangeEvent> = None;
    for event in events {
        let in_effect = match event {
            RangeEvent::Introduced(at) => {
                at == "0" || scheme.compare(version, at) != Ordering::Less
            }
            RangeEvent::Fixed(at) => scheme.compare(version, at) != Ordering::Less,
            RangeEvent::LastAffected(at) => scheme.compare(version, at) == Ordering::Greater,
            // `limit` bounds GIT ranges only; it does not end an ECOSYSTEM range.
            RangeEvent::Limit(_) => false,
        };
        if !in_effect {
            continue;
        }
        deciding = match deciding {
            None => Some(event),
            Some(current) => {
                if event_is_after(event, current, scheme) {
                    Some(event)
                } else {
                    Some(current)
                }
            }
        };
    }
    matches!(deciding, Some(RangeEvent::Introduced(_)))
}

fn event_version(event: &RangeEvent) -> &str {
    match event {
        RangeEvent::Introduced(v)
        | RangeEvent::Fixed(v)
        | RangeEvent::LastAffected(v)
        | RangeEvent::Limit(v) => v,
    }
}

fn event_is_after(event: &RangeEvent, current: &RangeEvent, scheme: VersionScheme) -> bool {
    let ordering = match (event, current) {
        (RangeEvent::Introduced(a), RangeEvent::Introduced(b)) if a == "0" && b == "0" => {
            Ordering::Equal
        }
        (RangeEvent::Introduced(a), _) if a == "0" => Ordering::Less,
        (_, RangeEvent::Introduced(b)) if b == "0" => Ordering::Greater,
        _ => scheme.compare(event_version(event), event_version(current)),
    };
    ordering == Ordering::Greater
        || (ordering == Ordering::Equal && event_rank(event) > event_rank(current))
}

/// The lowest `fixed` above `version` in a range.
fn first_fix_above(version: &str, events: &[RangeEvent], scheme: VersionScheme) -> Option<String> {
    events
        .iter()
        .filter_map(|event| match event {
            RangeEvent::Fixed(at) if scheme.compare(at, version) == Ordering::Greater => Some(at),
            _ => None,
        })
        .min_by(|a, b| scheme.compare(a, b))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(list: &[(&str, &str)]) -> Vec<RangeEvent> {
        list.iter()
            .map(|(kind, at)| match *kind {
                "introduced" => RangeEvent::Introduced((*at).into()),
                "fixed" => RangeEvent::Fixed((*at).into()),
                "last_affected" => RangeEvent::LastAffected((*at).into()),
                _ => RangeEvent::Limit((*at).into()),
            })
            .collect()
    }

    fn entry(ranges: Vec<Vec<RangeEvent>>, versions: &[&str]) -> AffectedPackage {
        AffectedPackage {
            ecosystem: "Debian:12".into(),
            name: "openssl".into(),
            ranges,
            versions: versions.iter().map(|v| (*v).into()).collect(),
            severity: None,
        }
    }

    #[test]
    fn ranges_as_the_osv_specification_evaluates_them() {
        let dpkg = VersionScheme::Dpkg;
        let simple = entry(
            vec![events(&[
                ("introduced", "0"),
                ("fixed", "3.0.11-1~deb12u2"),
            ])],
            &[],
        );
        assert_eq!(
            affected_by("3.0.9-1", &simple, dpkg),
            Some(Some("3.0.11-1~deb12u2".into()))
        );
        assert_eq!(affected_by("3.0.11-1~deb12u2", &simple, dpkg), None);
        assert_eq!(affected_by("3.0.11-1", &simple, dpkg), None);
        // `~` sorts before the release it prefixes.
        assert!(affected_by("3.0.11-1~deb12u1", &simple, dpkg).is_some());

        let two_windows = entry(
            vec![events(&[
                ("introduced", "1.0"),
                ("fixed", "1.5"),
                ("introduced", "2.0"),
                ("fixed", "2.3"),
            ])],
            &[],
        );
        assert!(affected_by("0.9", &two_windows, dpkg).is_none());
        assert_eq!(
            affected_by("1.2", &two_windows, dpkg),
            Some(Some("1.5".into()))
        );
        assert!(affected_by("1.7", &two_windows, dpkg).is_none());
        assert_eq!(
            affected_by("2.1", &two_windows, dpkg),
            Some(Some("2.3".into()))
        );
        assert!(affected_by("2.3", &two_windows, dpkg).is_none());

        let last = entry(
            vec![events(&[("introduced", "0"), ("last_affected", "1.4")])],
            &[],
        );
        assert_eq!(affected_by("1.4", &last, dpkg), Some(None));
        assert!(affected_by("1.4.1", &last, dpkg).is_none());

        let unfixed = entry(vec![events(&[("introduced", "0")])], &[]);
        assert_eq!(affected_by("99", &unfixed, dpkg), Some(None));

        let listed = entry(Vec::new(), &["1:2.0-1"]);
        assert!(affected_by("1:2.0-1", &listed, dpkg).is_some());
        assert!(affected_by("2.0-1", &listed, dpkg).is_none());
    }

    #[test]
    fn rpm_ranges() {
        let rpm = VersionScheme::Rpm;
        let entry = entry(
            vec![events(&[("introduced", "0"), ("fixed", "1:3.0.7-27.el9")])],
            &[],
        );
        assert!(affected_by("1:3.0.7-25.el9", &entry, rpm).is_some());
        assert!(affected_by("1:3.0.7-27.el9", &entry, rpm).is_none());
        // No epoch is epoch 0, below epoch 1.
        assert!(affected_by("3.0.9-1.el9", &entry, rpm).is_some());
    }

    #[test]
    fn solution_text() {
        let mut finding = Finding {
            package: "libssl3".into(),
            installed_version: "3.0.9-1".into(),
            arch: None,
            matched_name: "openssl".into(),
            ecosystem: "Debian:12".into(),
            advisory_id: "DSA-1".into(),
            aliases: Vec::new(),
            cves: Vec::new(),
            summary: None,
            severity: None,
            cvss_score: None,
            cvss_vector: None,
            fixed_version: Some("3.0.11-1".into()),
        };
        assert_eq!(finding.solution(), "upgrade libssl3 to 3.0.11-1");
        assert_eq!(finding.name(), "DSA-1");
        finding.fixed_version = None;
        assert!(finding.solution().contains("no fixed version"));
    }
}
