//! Inventory matching benchmark: 2,000 installed packages against 100,000 generated OSV
//! advisories (issue 15's bar: under 1 s per host for the match).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo run --release -p dozor-inventory --example match_bench [-- dir] [-- HOSTS]
//! ```
//! The advisories are written as an OSV `all.zip` (deflated, one JSON file per advisory), or
//! with `dir` as a directory of `.json` files, in a temporary directory, then loaded, indexed and
//! matched against HOSTS (default 10) hosts whose package versions differ. Realistic shape:
//! 20 "hot" installed packages (a kernel, a browser...) have 250 advisories each, 5,000 more
//! are spread over the other installed packages, and 90,000 name packages not installed; each
//! advisory lists one to three Debian releases, most with a CVSS v3 vector.

use std::io::Write;
use std::time::{Duration, Instant};

use dozor_inventory::osv::load_path;
use dozor_inventory::{
    AdvisoryIndex, Inventory, OsRelease, Package, PackageEcosystem, match_inventory,
};

const PACKAGES: usize = 2_000;
const ADVISORIES: usize = 100_000;
const HOT_PACKAGES: usize = 20;
const PER_HOT_PACKAGE: usize = 250;
const SPREAD_OVER_INSTALLED: usize = 5_000;
const NOT_INSTALLED_NAMES: usize = 30_000;

/// xorshift64*: deterministic, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn package_name(index: usize) -> String {
    format!("pkg{index:04}")
}

/// The source package of installed package `index`: every fourth package is a library built
/// from a differently named source, as Debian's `libfoo1` from `foo`.
fn source_name(index: usize) -> Option<String> {
    index
        .is_multiple_of(4)
        .then(|| format!("src{:04}", index / 4))
}

/// The installed version of package `index` on host `host`.
fn installed_version(index: usize, host: usize) -> String {
    format!(
        "{}.{}.{}-{}+deb12u{}",
        1 + index % 9,
        index % 31,
        (index + host) % 17,
        1 + index % 3,
        1 + host % 4
    )
}

fn host_inventory(host: usize) -> Inventory {
    let packages = (0..PACKAGES)
        .map(|index| {
            let mut package = Package::new(
                package_name(index),
                installed_version(index, host),
                PackageEcosystem::Dpkg,
            );
            package.arch = Some("amd64".into());
            package.source_name = source_name(index);
            package
        })
        .collect();
    Inventory::new(
        Some(OsRelease::parse("ID=debian\nVERSION_ID=12\n")),
        packages,
    )
}

const VECTORS: [&str; 4] = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
];

fn advisory_json(
    number: usize,
    package: &str,
    installed_index: Option<usize>,
    random: &mut Random,
) -> String {
    let releases = ["Debian:11", "Debian:12", "Debian:13"];
    let release_count = 1 + random.below(3);
    let first_release = random.below(releases.len());
    let affected: Vec<serde_json::Value> = (0..release_count)
        .map(|offset| {
            let ecosystem = releases[(first_release + offset) % releases.len()];
            // Around the installed version: fixed above it (affected) or below (not).
            let fixed = match installed_index {
                Some(index) if random.below(2) == 0 => {
                    format!("{}.{}.99-9+deb12u9", 1 + index % 9, index % 31)
                }
                Some(index) => format!("{}.{}.0-0", 1 + index % 9, (index % 31).saturating_sub(1)),
                None => format!("{}.{}-{}", random.below(9), random.below(40), random.below(5)),
            };
            let events = if random.below(5) == 0 {
                serde_json::json!([
                    {"introduced": "0"}, {"fixed": "0.5-1"},
                    {"introduced": "0.9-1"}, {"fixed": fixed}
                ])
            } else {
                serde_json::json!([{"introduced": "0"}, {"fixed": fixed}])
            };
            serde_json::json!({
                "package": {"ecosystem": ecosystem, "name": package, "purl": format!("pkg:deb/debian/{package}")},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"urgency": "not yet assigned"}
            })
        })
        .collect();
    let mut advisory = serde_json::json!({
        "schema_version": "1.6.0",
        "id": format!("DEBIAN-CVE-2099-{number:06}"),
        "modified": "2026-01-01T00:00:00Z",
        "published": "2025-06-01T00:00:00Z",
        "aliases": [format!("CVE-2099-{number:06}")],
        "summary": format!("{package}: memory corruption in the parser (generated advisory {number})"),
        "details": "A crafted input can make the parser write past the end of a heap buffer, \
                    which may crash the process or let an attacker run code with its rights.",
        "affected": affected,
        "references": [{"type": "ADVISORY", "url": format!("https://security-tracker.example.invalid/CVE-2099-{number:06}")}]
    });
    if random.below(10) < 7 {
        advisory["severity"] =
            serde_json::json!([{"type": "CVSS_V3", "score": VECTORS[random.below(VECTORS.len())]}]);
    }
    advisory.to_string()
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let as_directory = args.iter().any(|arg| arg == "dir");
    let hosts: usize = args
        .iter()
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10)
        .max(1);

    let workspace = tempfile::tempdir()?;
    let started = Instant::now();
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    // Written as generated, never all held at once, so that the peak RSS below is the
    // loader's, index's and matcher's.
    let source_path = if as_directory {
        workspace.path().join("advisories")
    } else {
        workspace.path().join("all.zip")
    };
    let mut zip = if as_directory {
        std::fs::create_dir(&source_path)?;
        None
    } else {
        Some(zip::ZipWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&source_path)?,
        )))
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut total_bytes = 0usize;
    for number in 0..ADVISORIES {
        let (name, installed_index) = if number < HOT_PACKAGES * PER_HOT_PACKAGE {
            let index = (number % HOT_PACKAGES) * (PACKAGES / HOT_PACKAGES);
            (
                source_name(index).unwrap_or_else(|| package_name(index)),
                Some(index),
            )
        } else if number < HOT_PACKAGES * PER_HOT_PACKAGE + SPREAD_OVER_INSTALLED {
            let index = random.below(PACKAGES);
            // Debian's advisories name sources: a library is named by its source.
            (
                source_name(index).unwrap_or_else(|| package_name(index)),
                Some(index),
            )
        } else {
            (
                format!("other{:05}", random.below(NOT_INSTALLED_NAMES)),
                None,
            )
        };
        let document = advisory_json(number, &name, installed_index, &mut random);
        total_bytes += document.len();
        let file_name = format!("DEBIAN-CVE-2099-{number:06}.json");
        match zip.as_mut() {
            Some(zip) => {
                zip.start_file(file_name, options)?;
                zip.write_all(document.as_bytes())?;
            }
            None => std::fs::write(source_path.join(file_name), document)?,
        }
    }
    if let Some(zip) = zip {
        zip.finish()?.flush()?;
    }
    let on_disk = if as_directory {
        total_bytes as u64
    } else {
        std::fs::metadata(&source_path)?.len()
    };
    println!(
        "generated {ADVISORIES} advisories ({:.1} MiB of JSON, {:.1} MiB on disk as {}) in {:.2?}",
        total_bytes as f64 / 1_048_576.0,
        on_disk as f64 / 1_048_576.0,
        if as_directory {
            "a directory"
        } else {
            "all.zip"
        },
        started.elapsed()
    );

    let started = Instant::now();
    let report = load_path(&source_path)?;
    let load_time = started.elapsed();
    assert!(report.problems.is_empty(), "{:?}", report.problems.first());
    println!(
        "load:        {load_time:>10.2?}  ({} advisories from {} files)",
        report.advisories.len(),
        report.files_read
    );

    let started = Instant::now();
    let index = AdvisoryIndex::new(report.advisories);
    let index_time = started.elapsed();
    println!(
        "index build: {index_time:>10.2?}  ({} ecosystems)",
        index.families().count()
    );

    let inventories: Vec<Inventory> = (0..hosts).map(host_inventory).collect();
    let mut match_times: Vec<Duration> = Vec::with_capacity(hosts);
    let mut findings_per_host = Vec::with_capacity(hosts);
    for inventory in &inventories {
        let started = Instant::now();
        let findings = match_inventory(inventory, &index);
        match_times.push(started.elapsed());
        findings_per_host.push(findings.len());
    }
    match_times.sort();
    let total: Duration = match_times.iter().sum();
    println!(
        "match:       {:>10.2?} per host on average (min {:.2?}, max {:.2?}) over {hosts} hosts of {PACKAGES} packages; findings per host {}..{}",
        total / hosts as u32,
        match_times.first().copied().unwrap_or_default(),
        match_times.last().copied().unwrap_or_default(),
        findings_per_host.iter().min().copied().unwrap_or(0),
        findings_per_host.iter().max().copied().unwrap_or(0),
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS (VmHWM): {mib:.0} MiB"),
        None => println!("peak RSS: /proc/self/status not readable"),
    }
    let worst = match_times.last().copied().unwrap_or_default();
    if worst >= Duration::from_secs(1) {
        println!("BAR MISSED: a host took {worst:.2?} (bar: < 1 s)");
    }
    Ok(())
}
