//! `block_ip` / `unblock_ip`: drop traffic to and from addresses.
//!
//! Linux: the nftables table `inet dozor_block` with the sets `v4` and `v6` (`flags interval,
//! timeout`: CIDRs and per-element expiry) and drop rules in `input`, `output` and `forward`
//! (priority `filter - 5`, policy accept). Every change is one `nft -f -` transaction that
//! first (re)declares the table, sets and chains idempotently (`add` of what exists is a no-op;
//! the chains are flushed and their rules added again, so they never pile up), then changes the
//! elements. An element is always added, deleted and — for `block_ip` — added again in the
//! same transaction: blocking an address twice replaces its timeout, unblocking one that is not
//! blocked succeeds.
//!
//! Windows: a `netsh advfirewall firewall` block rule pair (in, out) per address, named
//! `DozorBlock <address> in|out` (text generation here, tested on Linux; the runner is
//! `cfg(windows)`). Timeouts are not supported there yet.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::RespondError;
use crate::policy::Cidr;

/// The table this module owns.
pub const TABLE: &str = "dozor_block";

/// The Windows rule name prefix.
pub const RULE_PREFIX: &str = "DozorBlock";

/// At most this many addresses per command (as the API checks).
pub const MAX_ADDRESSES: usize = 1024;

/// Parses the addresses of a command (`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`) and refuses
/// any that covers a `protected` address (the agent's server: blocking it would cut the agent
/// off for good).
pub fn parse_addresses(
    addresses: &[String],
    protected: &[IpAddr],
) -> Result<Vec<Cidr>, RespondError> {
    if addresses.is_empty() || addresses.len() > MAX_ADDRESSES {
        return Err(RespondError::InvalidPolicy(format!(
            "1 to {MAX_ADDRESSES} addresses, not {}",
            addresses.len()
        )));
    }
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        let cidr: Cidr = a.trim().parse()?;
        if let Some(p) = protected.iter().find(|p| contains(&cidr, **p)) {
            return Err(RespondError::Refused(format!(
                "{a} covers {p}, the Dozor server: blocking it would cut this agent off"
            )));
        }
        out.push(cidr);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn contains(cidr: &Cidr, ip: IpAddr) -> bool {
    if cidr.is_ipv4() != ip.is_ipv4() {
        return false;
    }
    let bits = match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let (first, last) = cidr.range();
    (first..=last).contains(&bits)
}

/// Declares the table, sets, chains and rules (idempotently).
fn declarations(out: &mut String) {
    let t = TABLE;
    let _ = writeln!(out, "add table inet {t}");
    let _ = writeln!(
        out,
        "add set inet {t} v4 {{ type ipv4_addr; flags interval, timeout; }}"
    );
    let _ = writeln!(
        out,
        "add set inet {t} v6 {{ type ipv6_addr; flags interval, timeout; }}"
    );
    for hook in ["input", "output", "forward"] {
        let _ = writeln!(
            out,
            "add chain inet {t} {hook} {{ type filter hook {hook} priority filter - 5; policy accept; }}"
        );
        let _ = writeln!(out, "flush chain inet {t} {hook}");
    }
    let _ = writeln!(out, "add rule inet {t} input ip saddr @v4 drop");
    let _ = writeln!(out, "add rule inet {t} input ip6 saddr @v6 drop");
    let _ = writeln!(out, "add rule inet {t} output ip daddr @v4 drop");
    let _ = writeln!(out, "add rule inet {t} output ip6 daddr @v6 drop");
    for dir in ["saddr", "daddr"] {
        let _ = writeln!(out, "add rule inet {t} forward ip {dir} @v4 drop");
        let _ = writeln!(out, "add rule inet {t} forward ip6 {dir} @v6 drop");
    }
}

fn set_of(cidr: &Cidr) -> &'static str {
    if cidr.is_ipv4() { "v4" } else { "v6" }
}

/// The nft script that blocks `addresses` (for `timeout`, or until unblocked).
pub fn block_script(addresses: &[Cidr], timeout: Option<Duration>) -> String {
    let mut out = String::new();
    declarations(&mut out);
    let t = TABLE;
    let timeout = timeout.map(|d| format!(" timeout {}s", d.as_secs().max(1)));
    for a in addresses {
        let set = set_of(a);
        // add + delete + add: replaces an existing element (and its timeout), never fails on
        // one that exists or does not.
        let _ = writeln!(out, "add element inet {t} {set} {{ {a} }}");
        let _ = writeln!(out, "delete element inet {t} {set} {{ {a} }}");
        let _ = writeln!(
            out,
            "add element inet {t} {set} {{ {a}{} }}",
            timeout.as_deref().unwrap_or("")
        );
    }
    out
}

/// The nft script that unblocks `addresses` (fine when they are not blocked).
pub fn unblock_script(addresses: &[Cidr]) -> String {
    let mut out = String::new();
    declarations(&mut out);
    let t = TABLE;
    for a in addresses {
        let set = set_of(a);
        let _ = writeln!(out, "add element inet {t} {set} {{ {a} }}");
        let _ = writeln!(out, "delete element inet {t} {set} {{ {a} }}");
    }
    out
}

/// Runs the block scripts with `nft -f -` (the command is configurable, as for isolation).
#[derive(Debug, Clone)]
pub struct NftBlocker {
    nft: crate::nft::NftBackend,
}

impl Default for NftBlocker {
    fn default() -> Self {
        Self::new()
    }
}

impl NftBlocker {
    pub fn new() -> Self {
        Self {
            nft: crate::nft::NftBackend::new(),
        }
    }

    /// See [`crate::nft::NftBackend::with_command`].
    pub fn with_command(command: Vec<String>) -> Self {
        Self {
            nft: crate::nft::NftBackend::with_command(command),
        }
    }

    pub async fn block(
        &self,
        addresses: &[Cidr],
        timeout: Option<Duration>,
    ) -> Result<(), RespondError> {
        self.nft
            .run_script(&block_script(addresses, timeout))
            .await?;
        tracing::info!(count = addresses.len(), ?timeout, "addresses blocked");
        Ok(())
    }

    pub async fn unblock(&self, addresses: &[Cidr]) -> Result<(), RespondError> {
        self.nft.run_script(&unblock_script(addresses)).await?;
        tracing::info!(count = addresses.len(), "addresses unblocked");
        Ok(())
    }
}

/// The Windows rule names of one blocked address.
pub fn netsh_rule_names(address: &Cidr) -> [String; 2] {
    [
        format!("{RULE_PREFIX} {address} in"),
        format!("{RULE_PREFIX} {address} out"),
    ]
}

/// `netsh` argument vectors that block `address` (a rule pair). Each add is preceded by a
/// delete of the same name (run with its failure ignored), so blocking twice keeps one pair.
pub fn netsh_block_commands(address: &Cidr) -> Vec<Vec<String>> {
    let [rule_in, rule_out] = netsh_rule_names(address);
    let mut out = Vec::new();
    for (name, dir) in [(rule_in, "in"), (rule_out, "out")] {
        out.push(vec![
            "advfirewall".into(),
            "firewall".into(),
            "add".into(),
            "rule".into(),
            format!("name={name}"),
            format!("dir={dir}"),
            "action=block".into(),
            "enable=yes".into(),
            "profile=any".into(),
            format!("remoteip={address}"),
        ]);
    }
    out
}

/// `netsh` argument vectors that remove `address`'s rule pair ("No rules match" is fine).
pub fn netsh_unblock_commands(address: &Cidr) -> Vec<Vec<String>> {
    netsh_rule_names(address)
        .into_iter()
        .map(|name| {
            vec![
                "advfirewall".into(),
                "firewall".into(),
                "delete".into(),
                "rule".into(),
                format!("name={name}"),
            ]
        })
        .collect()
}

#[cfg(windows)]
pub use windows_blocker::NetshBlocker;

#[cfg(windows)]
mod windows_blocker {
    use std::time::Duration;

    use super::{netsh_block_commands, netsh_unblock_commands};
    use crate::RespondError;
    use crate::policy::Cidr;

    /// Blocks with Windows Firewall rules through `netsh`.
    #[derive(Debug, Clone, Default)]
    pub struct NetshBlocker;

    impl NetshBlocker {
        pub fn new() -> Self {
            Self
        }

        async fn netsh(args: &[String]) -> Result<(), RespondError> {
            let mut command = vec!["netsh".to_owned()];
            command.extend(args.iter().cloned());
            crate::command::run(&command, None).await
        }

        pub async fn block(
            &self,
            addresses: &[Cidr],
            timeout: Option<Duration>,
        ) -> Result<(), RespondError> {
            if timeout.is_some() {
                return Err(RespondError::Unsupported(
                    "block_ip with timeout_secs is not supported on Windows yet".into(),
                ));
            }
            for a in addresses {
                for delete in netsh_unblock_commands(a) {
                    let _ = Self::netsh(&delete).await;
                }
                for add in netsh_block_commands(a) {
                    Self::netsh(&add).await?;
                }
            }
            Ok(())
        }

        pub async fn unblock(&self, addresses: &[Cidr]) -> Result<(), RespondError> {
            for a in addresses {
                for delete in netsh_unblock_commands(a) {
                    // "No rules match": not blocked, which is what was asked.
                    let _ = Self::netsh(&delete).await;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        parse_addresses(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &[]).unwrap()
    }

    #[test]
    fn addresses_are_parsed_and_the_server_is_protected() {
        let server: IpAddr = "192.0.2.10".parse().unwrap();
        let err = parse_addresses(&["192.0.2.0/24".into()], &[server]).unwrap_err();
        assert!(err.to_string().contains("Dozor server"), "{err}");
        assert!(parse_addresses(&["198.51.100.7".into()], &[server]).is_ok());
        assert!(
            parse_addresses(&["10.0.0.1/8".into()], &[]).is_err(),
            "host bits"
        );
        assert!(parse_addresses(&[], &[]).is_err());
        assert_eq!(cidrs(&["::1", "10.0.0.0/8", "10.0.0.0/8"]).len(), 2);
    }

    #[test]
    fn block_script_declares_idempotently_and_replaces_elements() {
        let s = block_script(
            &cidrs(&["198.51.100.7", "2001:db8::/32"]),
            Some(Duration::from_secs(90)),
        );
        assert!(s.starts_with("add table inet dozor_block\n"), "{s}");
        assert!(
            s.contains("add set inet dozor_block v4 { type ipv4_addr; flags interval, timeout; }")
        );
        assert!(s.contains("flush chain inet dozor_block forward"));
        assert!(s.contains("add rule inet dozor_block output ip daddr @v4 drop"));
        assert!(s.contains("delete element inet dozor_block v4 { 198.51.100.7 }\nadd element inet dozor_block v4 { 198.51.100.7 timeout 90s }"));
        assert!(s.contains("add element inet dozor_block v6 { 2001:db8::/32 timeout 90s }"));
        let u = unblock_script(&cidrs(&["198.51.100.7"]));
        assert!(u.ends_with("add element inet dozor_block v4 { 198.51.100.7 }\ndelete element inet dozor_block v4 { 198.51.100.7 }\n"), "{u}");
    }

    #[test]
    fn netsh_rule_pairs() {
        let a = cidrs(&["198.51.100.0/24"]);
        let add = netsh_block_commands(&a[0]);
        assert_eq!(add.len(), 2);
        assert_eq!(add[0][4], "name=DozorBlock 198.51.100.0/24 in");
        assert_eq!(add[1][5], "dir=out");
        assert_eq!(add[1][9], "remoteip=198.51.100.0/24");
        let del = netsh_unblock_commands(&a[0]);
        assert_eq!(
            del[1],
            [
                "advfirewall",
                "firewall",
                "delete",
                "rule",
                "name=DozorBlock 198.51.100.0/24 out"
            ]
        );
    }
}
