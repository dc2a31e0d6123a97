//! Host facts for the agent's enrollment and heartbeats.

use std::net::IpAddr;

use serde::Serialize;

/// What the host is. Empty strings when a fact cannot be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// Host name (`uname -n` / the computer name).
    pub hostname: String,
    /// `linux` or `windows` (ECS `host.os.type`).
    pub os_type: String,
    /// OS name: `NAME` of `/etc/os-release` (e.g. "Debian GNU/Linux"), or e.g. "Windows".
    pub os_name: String,
    /// OS version: `VERSION_ID` of `/etc/os-release` (e.g. "12"), or the Windows version.
    pub os_version: String,
    /// `ID` of `/etc/os-release` (e.g. "debian"), or "windows".
    pub os_platform: String,
    /// `PRETTY_NAME` of `/etc/os-release`, or the long Windows name.
    pub os_full: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Kernel release (`uname -r`) or the Windows kernel version.
    pub kernel: String,
    /// Non-loopback IP addresses of the host.
    pub ips: Vec<IpAddr>,
}

/// Reads the host facts. Never fails: what cannot be read stays empty.
pub fn host_facts() -> HostFacts {
    let mut facts = HostFacts {
        os_type: crate::ecs::OS_TYPE.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        ips: host_ips(),
        ..HostFacts::default()
    };
    platform_facts(&mut facts);
    facts
}

fn host_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .filter(|i| !i.is_loopback())
            .map(|i| i.ip())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .collect(),
        Err(e) => {
            tracing::debug!("cannot list interfaces: {e}");
            Vec::new()
        }
    };
    ips.sort();
    ips.dedup();
    ips
}

#[cfg(target_os = "linux")]
fn platform_facts(facts: &mut HostFacts) {
    let uname = rustix::system::uname();
    facts.hostname = uname.nodename().to_string_lossy().into_owned();
    facts.kernel = uname.release().to_string_lossy().into_owned();
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let release = parse_os_release(&text);
    let get = |k: &str| {
        release
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    facts.os_name = get("NAME");
    facts.os_version = get("VERSION_ID");
    facts.os_platform = get("ID");
    facts.os_full = get("PRETTY_NAME");
    if facts.os_name.is_empty() {
        facts.os_name = "Linux".into();
    }
}

#[cfg(windows)]
fn platform_facts(facts: &mut HostFacts) {
    facts.hostname = sysinfo::System::host_name().unwrap_or_default();
    facts.kernel = sysinfo::System::kernel_version().unwrap_or_default();
    facts.os_name = sysinfo::System::name().unwrap_or_else(|_| "Windows".into());
    facts.os_version = sysinfo::System::os_version().unwrap_or_default();
    facts.os_full = sysinfo::System::long_os_version().unwrap_or_default();
    facts.os_platform = "windows".into();
}

#[cfg(not(any(target_os = "linux", windows)))]
fn platform_facts(facts: &mut HostFacts) {
    facts.os_name = std::env::consts::OS.into();
}

/// `KEY=value` lines of os-release(5); values may be quoted.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.replace("\\\"", "\"")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let r = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME='Debian GNU/Linux'\nVERSION_ID=\"12\"\nID=debian\n# x\n",
        );
        assert!(r.contains(&("ID".into(), "debian".into())));
        assert!(r.contains(&("NAME".into(), "Debian GNU/Linux".into())));
        assert!(r.contains(&(
            "PRETTY_NAME".into(),
            "Debian GNU/Linux 12 (bookworm)".into()
        )));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn facts_of_this_host() {
        let f = host_facts();
        assert_eq!(f.os_type, "linux");
        assert!(!f.hostname.is_empty());
        assert!(!f.kernel.is_empty());
        assert!(f.ips.iter().all(|ip| !ip.is_loopback()));
    }
}
