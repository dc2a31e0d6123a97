//! What an isolation lets through: the server's addresses and the allowances, as validated,
//! typed values. Host names are resolved here, before anything reaches a firewall, so the
//! ruleset generators only ever format `IpAddr`s, prefixes and port numbers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::RespondError;

/// Upper bound on the entries of each address list, so a command cannot make a ruleset of
/// unbounded size.
pub const MAX_ENTRIES: usize = 256;

/// An address with a prefix length: `192.0.2.0/24`, `2001:db8::/32`, or one host (`/32`,
/// `/128`, written without the prefix). Host bits below the prefix must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A network; fails when `prefix` is too long for the family or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, RespondError> {
        let input = format!("{addr}/{prefix}");
        let max = max_prefix(addr);
        if prefix > max {
            return Err(invalid(&input, format!("prefix longer than {max} bits")));
        }
        if prefix == 0 {
            return Err(invalid(&input, "a /0 allowance would allow every address"));
        }
        if addr.is_unspecified() {
            return Err(invalid(&input, "the unspecified address is not a host"));
        }
        let bits = to_bits(addr);
        let host_mask = if u32::from(prefix) == u32::from(max) {
            0
        } else {
            u128::MAX >> (128 - u32::from(max) + u32::from(prefix))
        };
        if bits & host_mask != 0 {
            return Err(invalid(&input, "host bits are set below the prefix"));
        }
        Ok(Self { addr, prefix })
    }

    /// One host.
    pub fn host(addr: IpAddr) -> Result<Self, RespondError> {
        Self::new(addr, max_prefix(addr))
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The first and last address of the network as integers of the family's width.
    pub(crate) fn range(&self) -> (u128, u128) {
        let max = u32::from(max_prefix(self.addr));
        let start = to_bits(self.addr);
        let span = if u32::from(self.prefix) == max {
            0
        } else {
            u128::MAX >> (128 - max + u32::from(self.prefix))
        };
        (start, start | span)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `bits` in the family of `v4`.
pub(crate) fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        // Callers only pass values within the IPv4 range; clamp rather than panic.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> RespondError {
    RespondError::InvalidAddress {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

impl FromStr for Cidr {
    type Err = RespondError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| invalid(s, "not an IPv4 or IPv6 address"))?;
        let prefix = match prefix_text {
            None => max_prefix(addr),
            Some(p) => p
                .parse()
                .map_err(|_| invalid(s, "the prefix length is not a number"))?,
        };
        // Report the input as written, not as normalized.
        Self::new(addr, prefix).map_err(|e| match e {
            RespondError::InvalidAddress { reason, .. } => invalid(s, reason),
            other => other,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl TryFrom<String> for Cidr {
    type Error = RespondError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> Self {
        c.to_string()
    }
}

/// What stays reachable besides the server and loopback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowances {
    /// DNS resolvers: UDP and TCP port 53 to these addresses (and their answers).
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// DHCP (v4: UDP 68 ↔ 67) and DHCPv6 (UDP 546 ↔ 547), so a lease can be renewed.
    #[serde(default)]
    pub dhcp: bool,
    /// Extra hosts or networks, reachable in both directions (e.g. a forensics workstation).
    #[serde(default)]
    pub hosts: Vec<Cidr>,
}

/// A validated isolation: the server's addresses (v4 and v6), optionally its ports, and the
/// allowances. Built by [`IsolationPolicy::new`] or [`resolve_policy`]; stored in the state
/// file and re-applied after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationPolicy {
    server: Vec<IpAddr>,
    #[serde(default)]
    server_ports: Vec<u16>,
    #[serde(default)]
    allow: Allowances,
}

impl IsolationPolicy {
    /// Validates and normalizes (sorted, duplicates removed): at least one server address, no
    /// unspecified / multicast / broadcast addresses, no port 0, at most [`MAX_ENTRIES`] per list.
    /// `server_ports` empty = every port of the server.
    pub fn new(
        server: Vec<IpAddr>,
        server_ports: Vec<u16>,
        allow: Allowances,
    ) -> Result<Self, RespondError> {
        let policy = Self {
            server: normalized(server),
            server_ports: normalized(server_ports),
            allow: Allowances {
                dns: normalized(allow.dns),
                dhcp: allow.dhcp,
                hosts: normalized(allow.hosts),
            },
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the invariants again (a state file read from disk goes through this too).
    pub fn validate(&self) -> Result<(), RespondError> {
        if self.server.is_empty() {
            return Err(RespondError::InvalidPolicy(
                "no server address: isolating would cut the agent off its server".into(),
            ));
        }
        for (what, len) in [
            ("server addresses", self.server.len()),
            ("server ports", self.server_ports.len()),
            ("DNS resolvers", self.allow.dns.len()),
            ("allowed hosts", self.allow.hosts.len()),
        ] {
            if len > MAX_ENTRIES {
                return Err(RespondError::InvalidPolicy(format!(
                    "{len} {what}; at most {MAX_ENTRIES}"
                )));
            }
        }
        for addr in self.server.iter().chain(&self.allow.dns) {
            check_unicast(*addr)?;
        }
        for cidr in &self.allow.hosts {
            // Re-validate: a deserialized policy went through `Cidr::from_str`, but keep one rule.
            Cidr::new(cidr.addr, cidr.prefix)?;
        }
        if self.server_ports.contains(&0) {
            return Err(RespondError::InvalidPolicy("server port 0".into()));
        }
        Ok(())
    }

    pub fn server(&self) -> &[IpAddr] {
        &self.server
    }

    pub fn server_ports(&self) -> &[u16] {
        &self.server_ports
    }

    pub fn allow(&self) -> &Allowances {
        &self.allow
    }
}

fn normalized<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items.dedup();
    items
}

fn check_unicast(addr: IpAddr) -> Result<(), RespondError> {
    let text = addr.to_string();
    if addr.is_unspecified() {
        return Err(invalid(&text, "the unspecified address is not a host"));
    }
    if addr.is_multicast() {
        return Err(invalid(&text, "a multicast address is not a host"));
    }
    if addr == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Err(invalid(&text, "the broadcast address is not a host"));
    }
    Ok(())
}

/// An isolation as configured or commanded, with host names not yet resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationSpec {
    /// The Dozor server: a host name or an address.
    pub server_host: String,
    /// Restrict the server allowance to these ports (empty = every port).
    #[serde(default)]
    pub server_ports: Vec<u16>,
    /// DNS resolvers (addresses only: a resolver named by a name would need DNS to be found).
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dhcp: bool,
    /// Extra hosts: addresses, CIDRs or host names (resolved to every address they have).
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// Resolves the spec's names (server and extra hosts, IPv4 and IPv6) and validates the result.
/// Resolution happens before isolating: once the table is in place, DNS may be unreachable.
pub async fn resolve_policy(spec: &IsolationSpec) -> Result<IsolationPolicy, RespondError> {
    let server = resolve_host(&spec.server_host).await?;
    let dns = spec
        .dns
        .iter()
        .map(|d| {
            d.trim()
                .parse::<IpAddr>()
                .map_err(|_| invalid(d, "a DNS resolver must be an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut hosts = Vec::new();
    for entry in &spec.hosts {
        let entry = entry.trim();
        if entry.parse::<IpAddr>().is_ok() || entry.contains('/') {
            hosts.push(entry.parse::<Cidr>()?);
        } else {
            for addr in resolve_host(entry).await? {
                hosts.push(Cidr::host(addr)?);
            }
        }
    }
    IsolationPolicy::new(
        server,
        spec.server_ports.clone(),
        Allowances {
            dns,
            dhcp: spec.dhcp,
            hosts,
        },
    )
}

/// Every address of `host` (an address literal is returned as is).
pub async fn resolve_host(host: &str) -> Result<Vec<IpAddr>, RespondError> {
    let host = host.trim();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(addr) = literal.parse::<IpAddr>() {
        return Ok(vec![addr]);
    }
    validate_host_name(host)?;
    let found = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| RespondError::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?;
    let addrs = normalized(found.map(|sa| sa.ip()).collect::<Vec<_>>());
    if addrs.is_empty() {
        return Err(RespondError::Resolve {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    Ok(addrs)
}

/// A DNS name: labels of letters, digits, `-` and `_`, at most 253 characters.
fn validate_host_name(host: &str) -> Result<(), RespondError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(host, "neither an address, a CIDR nor a host name"))
    }
}

/// The `nameserver` addresses of a resolv.conf text (zone-scoped `fe80::1%eth0` entries are
/// skipped: a firewall rule cannot carry the zone).
pub fn resolvers_from_resolv_conf(text: &str) -> Vec<IpAddr> {
    let addrs = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|w| w.parse::<IpAddr>().ok())
        .filter(|a| check_unicast(*a).is_ok())
        .collect();
    normalized(addrs)
}

/// The policy the generator tests share: a server at 192.0.2.10 and 2001:db8::10.
#[cfg(test)]
pub(crate) fn example_policy(ports: Vec<u16>, allow: Allowances) -> IsolationPolicy {
    IsolationPolicy::new(
        vec![
            "192.0.2.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ],
        ports,
        allow,
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_hosts_and_networks_and_prints_them_back() {
        for (input, shown) in [
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7/32", "192.0.2.7"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            let cidr: Cidr = input.parse().unwrap();
            assert_eq!(cidr.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn cidr_refuses_malformed_and_dangerous_input_with_the_reason() {
        for (input, reason) in [
            ("10.0.0.1/8", "host bits"),
            ("10.0.0.0/33", "prefix longer than 32"),
            ("0.0.0.0/0", "/0"),
            ("::/0", "/0"),
            ("0.0.0.0", "unspecified"),
            ("10.0.0.0/x", "not a number"),
            ("10.0.0.0/8; flush ruleset", "not a number"),
            ("evil\" accept", "not an IPv4"),
            ("", "not an IPv4"),
        ] {
            let err = input.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
            assert!(
                err.contains(&format!("{input:?}")),
                "{input}: the error names the input: {err}"
            );
        }
    }

    #[test]
    fn cidr_range_spans_the_network() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert_eq!(c.range(), (0x0a01_0000, 0x0a01_ffff));
        let h: Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!(h.range().0, h.range().1);
    }

    #[test]
    fn a_policy_needs_a_server_and_refuses_bad_addresses_and_ports() {
        let v4: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(
            IsolationPolicy::new(vec![], vec![], Allowances::default())
                .unwrap_err()
                .to_string()
                .contains("no server address")
        );
        for bad in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "ff02::1"] {
            let err =
                IsolationPolicy::new(vec![bad.parse().unwrap()], vec![], Allowances::default())
                    .unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(IsolationPolicy::new(vec![v4], vec![0], Allowances::default()).is_err());
        let too_many = (0..=MAX_ENTRIES as u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i)))
            .collect();
        assert!(
            IsolationPolicy::new(too_many, vec![], Allowances::default())
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn a_policy_is_sorted_and_deduplicated_and_round_trips_through_json() {
        let policy = IsolationPolicy::new(
            vec![
                "2001:db8::10".parse().unwrap(),
                "192.0.2.10".parse().unwrap(),
            ],
            vec![8443, 443, 8443],
            Allowances {
                dns: vec!["192.0.2.53".parse().unwrap(), "192.0.2.53".parse().unwrap()],
                dhcp: true,
                hosts: vec!["10.9.0.0/16".parse().unwrap()],
            },
        )
        .unwrap();
        assert_eq!(policy.server_ports(), &[443, 8443]);
        assert_eq!(policy.allow().dns.len(), 1);
        let json = serde_json::to_string(&policy).unwrap();
        assert!(json.contains("\"10.9.0.0/16\""), "{json}");
        let back: IsolationPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
        let tampered = json.replace("10.9.0.0/16", "10.9.0.1/16");
        assert!(serde_json::from_str::<IsolationPolicy>(&tampered).is_err());
    }

    #[tokio::test]
    async fn resolving_keeps_literals_resolves_names_and_refuses_junk() {
        let policy = resolve_policy(&IsolationSpec {
            server_host: "localhost".into(),
            server_ports: vec![8443],
            dns: vec!["192.0.2.53".into()],
            dhcp: false,
            hosts: vec![
                "10.9.0.0/16".into(),
                "[2001:db8::5]".into(),
                "localhost".into(),
            ],
        })
        .await
        .unwrap();
        assert!(policy.server().contains(&"127.0.0.1".parse().unwrap()));
        assert!(
            policy
                .allow()
                .hosts
                .contains(&"10.9.0.0/16".parse().unwrap())
        );
        assert!(
            policy
                .allow()
                .hosts
                .contains(&"2001:db8::5".parse().unwrap())
        );

        let bad_dns = IsolationSpec {
            server_host: "192.0.2.10".into(),
            dns: vec!["resolver.example".into()],
            ..IsolationSpec::default()
        };
        let err = resolve_policy(&bad_dns).await.unwrap_err().to_string();
        assert!(err.contains("resolver.example"), "{err}");
        let bad_host = IsolationSpec {
            server_host: "bad host;".into(),
            ..IsolationSpec::default()
        };
        let err = resolve_policy(&bad_host).await.unwrap_err().to_string();
        assert!(err.contains("bad host;"), "{err}");
    }

    #[test]
    fn resolv_conf_nameservers_are_read_and_zone_scoped_ones_skipped() {
        let text = "# comment\nnameserver 192.0.2.53\nsearch example\nnameserver 2001:db8::53\n\
                    nameserver fe80::1%eth0\nnameserver 192.0.2.53\noptions edns0\n";
        let got = resolvers_from_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap()
            ]
        );
    }
}
