//! The rpm database, through `rpm -qa` with a tab-separated query format.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Package, PackageEcosystem, ParseProblem, ParsedPackages};
use crate::InventoryError;

/// The `--queryformat` that [`parse_rpm_query_output`] reads: one package a line,
/// name, epoch (`(none)` when unset), version, release and architecture separated by tabs.
pub const RPM_QUERY_FORMAT: &str = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n";

/// How long `rpm -qa` may run before it is killed (a locked or huge database).
pub const RPM_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `rpm -qa --queryformat RPM_QUERY_FORMAT` and parses its output.
/// `Ok(None)` when there is no `rpm` program on this host.
pub fn query_rpm(timeout: Duration) -> Result<Option<ParsedPackages>, InventoryError> {
    query_rpm_program(Path::new("rpm"), timeout)
}

/// [`query_rpm`] with the rpm program named (a full path, or a stand-in in tests).
pub fn query_rpm_program(
    program: &Path,
    timeout: Duration,
) -> Result<Option<ParsedPackages>, InventoryError> {
    let mut child = match Command::new(program)
        .args(["-qa", "--queryformat", RPM_QUERY_FORMAT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(InventoryError::Command {
                program: "rpm",
                source,
            });
        }
    };
    // Both pipes are drained on threads so a large output never blocks rpm while we wait.
    let stdout_reader = child.stdout.take().map(|mut stdout| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).map(|_| bytes)
        })
    });
    let stderr_reader = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.take(64 * 1024).read_to_end(&mut bytes);
            bytes
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(InventoryError::CommandTimedOut {
                    program: "rpm",
                    timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                return Err(InventoryError::Command {
                    program: "rpm",
                    source,
                });
            }
        }
    };
    let stdout = match stdout_reader.map(|reader| reader.join()) {
        Some(Ok(Ok(bytes))) => bytes,
        Some(Ok(Err(source))) => {
            return Err(InventoryError::Command {
                program: "rpm",
                source,
            });
        }
        _ => Vec::new(),
    };
    let stderr = stderr_reader
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if !status.success() {
        return Err(InventoryError::CommandFailed {
            program: "rpm",
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        });
    }
    Ok(Some(parse_rpm_query_output(&String::from_utf8_lossy(
        &stdout,
    ))))
}

/// Parses the output of `rpm -qa --queryformat RPM_QUERY_FORMAT`. The version is written
/// `epoch:version-release` (no epoch when rpm says `(none)`), as rpm's own tools write it.
pub fn parse_rpm_query_output(text: &str) -> ParsedPackages {
    let mut parsed = ParsedPackages::default();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [name, epoch, version, release, arch] = fields.as_slice() else {
            parsed.problems.push(ParseProblem {
                line: line_number,
                reason: format!("expected 5 tab-separated fields, found {}", fields.len()),
            });
            continue;
        };
        if name.is_empty() || version.is_empty() {
            parsed.problems.push(ParseProblem {
                line: line_number,
                reason: "empty name or version".into(),
            });
            continue;
        }
        let epoch = match *epoch {
            "(none)" | "" => None,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits),
            other => {
                parsed.problems.push(ParseProblem {
                    line: line_number,
                    reason: format!("package {name}: epoch {other:?} is not a number"),
                });
                continue;
            }
        };
        let mut full_version = String::with_capacity(version.len() + release.len() + 8);
        if let Some(epoch) = epoch {
            full_version.push_str(epoch);
            full_version.push(':');
        }
        full_version.push_str(version);
        if !release.is_empty() && *release != "(none)" {
            full_version.push('-');
            full_version.push_str(release);
        }
        let mut package = Package::new(*name, full_version, PackageEcosystem::Rpm);
        package.arch = match *arch {
            "(none)" | "" => None,
            arch => Some(arch.to_owned()),
        };
        parsed.packages.push(package);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_epochs_and_reports_bad_lines() {
        let output = "bash\t(none)\t5.1.8\t9.el9\tx86_64\n\
                      openssl-libs\t1\t3.0.7\t27.el9\tx86_64\n\
                      gpg-pubkey\t(none)\tfd431d51\t4ae0493b\t(none)\n\
                      broken line without tabs\n\
                      kernel\tX\t5.14.0\t1\tx86_64\n\
                      \n";
        let parsed = parse_rpm_query_output(output);
        let got: Vec<(&str, &str, Option<&str>)> = parsed
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("bash", "5.1.8-9.el9", Some("x86_64")),
                ("openssl-libs", "1:3.0.7-27.el9", Some("x86_64")),
                ("gpg-pubkey", "fd431d51-4ae0493b", None),
            ]
        );
        assert_eq!(parsed.problems.len(), 2);
        assert_eq!(parsed.problems[0].line, 4);
        assert_eq!(parsed.problems[1].line, 5);
    }

    #[test]
    fn query_format_is_the_documented_one() {
        assert_eq!(
            RPM_QUERY_FORMAT,
            r"%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n"
        );
    }
}
