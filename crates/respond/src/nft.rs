//! Linux isolation with nftables: one `nft -f -` transaction that (re)creates the dedicated
//! `inet dozor_isolation` table, and one that deletes it.
//!
//! Why a drop policy in our own table is enough, whatever else is loaded: every base chain on
//! a hook sees the packet, in priority order; `accept` only ends *that* chain, while `drop` is
//! final. So other tables' accepts cannot let through what this table drops, and this table's
//! accepts cannot let through what another table drops (a host firewall that blocks the server
//! would cut the agent off — the self-check then rolls the isolation back).
//!
//! The priority is `filter - 10` (-10): after connection tracking (-200), so `ct state` is
//! known, and before the usual `filter` (0) chains, so a dropped packet costs them nothing.

use crate::policy::{Cidr, IsolationPolicy};
use crate::{FirewallBackend, RespondError};
use std::fmt::Write as _;
use std::net::IpAddr;

/// The table this crate owns; nothing else in it.
pub const TABLE: &str = "dozor_isolation";

/// The chain priority (see the module docs).
const PRIORITY: &str = "filter - 10";

/// ICMPv6 neighbor discovery: without it IPv6 stops working on the link (the server or the
/// router could no longer be resolved). A hop limit of 255 proves the packet is link-local.
const ND_IN: &str = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-redirect } ip6 hoplimit 255 accept";
const ND_OUT: &str = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } ip6 hoplimit 255 accept";

/// The nft script that isolates the host under `policy`. Idempotent: the leading
/// `table …; delete table …` pair makes re-applying replace the table in the same transaction
/// (declaring a table that exists is a no-op, so the delete never fails).
///
/// Only typed values (addresses, prefixes, ports) are formatted into it.
pub fn isolation_ruleset(policy: &IsolationPolicy) -> String {
    let mut input = vec![
        "iifname \"lo\" accept".to_owned(),
        ND_IN.to_owned(),
        // ICMP errors (e.g. "fragmentation needed") about a flow conntrack knows; the only
        // flows that pass are the allowed ones, so this only keeps them working.
        "ct state related meta l4proto { icmp, ipv6-icmp } accept".to_owned(),
    ];
    let mut output = vec!["oifname \"lo\" accept".to_owned(), ND_OUT.to_owned()];

    // The server: new connections out (to its ports when given), replies in. No rule accepts
    // `established` in general: a connection opened before the isolation (a live C2 session)
    // must not survive it.
    //
    // With ports, the server's answers are accepted by their source port rather than by
    // `ct state`: a connection opened before the isolation (the agent's long poll, waiting for
    // its next command) may have no conntrack entry yet, because the isolation's own `ct` rules
    // are what starts tracking. Its first packet then counts as `new`, and the answer carrying
    // the release order would be dropped until the poll timed out.
    let ports = port_set(policy.server_ports());
    for addr in policy.server() {
        let family = family(*addr);
        match &ports {
            Some(ports) => {
                output.push(format!("{family} daddr {addr} tcp dport {ports} accept"));
                input.push(format!("{family} saddr {addr} tcp sport {ports} accept"));
            }
            None => {
                output.push(format!("{family} daddr {addr} accept"));
                input.push(format!(
                    "{family} saddr {addr} ct state established,related accept"
                ));
            }
        }
    }

    for addr in &policy.allow().dns {
        let family = family(*addr);
        output.push(format!(
            "{family} daddr {addr} meta l4proto {{ tcp, udp }} th dport 53 accept"
        ));
        input.push(format!(
            "{family} saddr {addr} meta l4proto {{ tcp, udp }} th sport 53 ct state established accept"
        ));
    }

    if policy.allow().dhcp {
        output.push("udp sport 68 udp dport 67 accept".to_owned());
        input.push("udp sport 67 udp dport 68 accept".to_owned());
        output.push("udp sport 546 udp dport 547 accept".to_owned());
        input.push("udp sport 547 udp dport 546 accept".to_owned());
    }

    for cidr in &policy.allow().hosts {
        let family = cidr_family(cidr);
        output.push(format!("{family} daddr {cidr} accept"));
        input.push(format!("{family} saddr {cidr} accept"));
    }

    let mut script = String::new();
    // `writeln!` into a String cannot fail.
    let _ = writeln!(script, "table inet {TABLE}");
    let _ = writeln!(script, "delete table inet {TABLE}");
    let _ = writeln!(script, "table inet {TABLE} {{");
    chain(&mut script, "input", &input);
    chain(&mut script, "forward", &[]);
    chain(&mut script, "output", &output);
    script.push_str("}\n");
    script
}

/// The nft script that removes the isolation; succeeds whether or not the table exists.
pub fn release_ruleset() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

fn chain(script: &mut String, hook: &str, rules: &[String]) {
    let _ = writeln!(script, "\tchain {hook} {{");
    let _ = writeln!(
        script,
        "\t\ttype filter hook {hook} priority {PRIORITY}; policy drop;"
    );
    for rule in rules {
        let _ = writeln!(script, "\t\t{rule}");
    }
    script.push_str("\t}\n");
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "ip" } else { "ip6" }
}

fn cidr_family(cidr: &Cidr) -> &'static str {
    family(cidr.addr())
}

fn port_set(ports: &[u16]) -> Option<String> {
    if ports.is_empty() {
        return None;
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    Some(format!("{{ {} }}", list.join(", ")))
}

/// Runs nft scripts: `nft -f -` with the script on stdin. The command is configurable so a
/// test can run it inside a network namespace (`ip netns exec NS nft`).
#[derive(Debug, Clone)]
pub struct NftBackend {
    command: Vec<String>,
}

impl Default for NftBackend {
    fn default() -> Self {
        Self {
            command: vec!["nft".into()],
        }
    }
}

impl NftBackend {
    /// `nft` from `PATH`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A custom command line that ends in nft, e.g. `["ip", "netns", "exec", "host", "nft"]`;
    /// `-f -` is appended. An empty command falls back to `nft`.
    pub fn with_command(command: Vec<String>) -> Self {
        if command.is_empty() {
            Self::default()
        } else {
            Self { command }
        }
    }

    /// Applies one nft script atomically (nft loads a file as one transaction).
    pub async fn run_script(&self, script: &str) -> Result<(), RespondError> {
        let mut command = self.command.clone();
        command.extend(["-f".to_owned(), "-".to_owned()]);
        crate::command::run(&command, Some(script.as_bytes())).await
    }
}

impl FirewallBackend for NftBackend {
    async fn apply(&self, policy: &IsolationPolicy) -> Result<(), RespondError> {
        self.run_script(&isolation_ruleset(policy)).await
    }

    async fn remove(&self) -> Result<(), RespondError> {
        self.run_script(&release_ruleset()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Allowances, example_policy as policy};

    #[test]
    fn the_minimal_ruleset_is_exactly_this() {
        let got = isolation_ruleset(&policy(vec![8443], Allowances::default()));
        let want = "\
table inet dozor_isolation
delete table inet dozor_isolation
table inet dozor_isolation {
\tchain input {
\t\ttype filter hook input priority filter - 10; policy drop;
\t\tiifname \"lo\" accept
\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-redirect } ip6 hoplimit 255 accept
\t\tct state related meta l4proto { icmp, ipv6-icmp } accept
\t\tip saddr 192.0.2.10 tcp sport { 8443 } accept
\t\tip6 saddr 2001:db8::10 tcp sport { 8443 } accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy drop;
\t}
\tchain output {
\t\ttype filter hook output priority filter - 10; policy drop;
\t\toifname \"lo\" accept
\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } ip6 hoplimit 255 accept
\t\tip daddr 192.0.2.10 tcp dport { 8443 } accept
\t\tip6 daddr 2001:db8::10 tcp dport { 8443 } accept
\t}
}
";
        assert_eq!(got, want);
    }

    #[test]
    fn every_allowance_becomes_its_rules() {
        let got = isolation_ruleset(&policy(
            vec![],
            Allowances {
                dns: vec![
                    "192.0.2.53".parse().unwrap(),
                    "2001:db8::53".parse().unwrap(),
                ],
                dhcp: true,
                hosts: vec![
                    "10.9.0.0/16".parse().unwrap(),
                    "2001:db8:9::/48".parse().unwrap(),
                ],
            },
        ));
        for line in [
            // No ports: the whole server.
            "ip daddr 192.0.2.10 accept",
            "ip6 daddr 2001:db8::10 accept",
            "ip daddr 192.0.2.53 meta l4proto { tcp, udp } th dport 53 accept",
            "ip6 saddr 2001:db8::53 meta l4proto { tcp, udp } th sport 53 ct state established accept",
            "udp sport 68 udp dport 67 accept",
            "udp sport 67 udp dport 68 accept",
            "udp sport 546 udp dport 547 accept",
            "udp sport 547 udp dport 546 accept",
            "ip daddr 10.9.0.0/16 accept",
            "ip saddr 10.9.0.0/16 accept",
            "ip6 daddr 2001:db8:9::/48 accept",
        ] {
            assert!(
                got.contains(&format!("\t\t{line}\n")),
                "missing {line}:\n{got}"
            );
        }
        // Never a blanket accept of established traffic: old connections must not survive.
        assert!(!got.contains("\t\tct state established"), "{got}");
        assert!(
            !got.contains("\t\tct state established,related accept"),
            "{got}"
        );
    }

    #[test]
    fn the_readme_shows_the_generated_ruleset() {
        let got = isolation_ruleset(&policy(
            vec![8443],
            Allowances {
                dns: vec!["192.0.2.53".parse().unwrap()],
                dhcp: true,
                hosts: vec!["10.9.0.0/16".parse().unwrap()],
            },
        ));
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&got),
            "README example differs; it should be:\n{got}"
        );
    }

    #[test]
    fn the_release_script_deletes_only_our_table_and_tolerates_its_absence() {
        assert_eq!(
            release_ruleset(),
            "table inet dozor_isolation\ndelete table inet dozor_isolation\n"
        );
    }

    #[tokio::test]
    async fn a_failing_nft_reports_the_command_and_its_stderr() {
        // `sh -c '…' nft -f -`: a stand-in that fails like nft does on a bad script.
        let backend = NftBackend::with_command(vec![
            "sh".into(),
            "-c".into(),
            "cat >/dev/null; echo 'Error: syntax error' >&2; exit 1".into(),
        ]);
        let err = backend.run_script("junk").await.unwrap_err().to_string();
        assert!(err.contains("syntax error"), "{err}");
        let missing = NftBackend::with_command(vec!["/nonexistent/nft".into()]);
        let err = missing.run_script("").await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/nft"), "{err}");
    }
}
