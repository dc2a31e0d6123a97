//! Parsing IP text from events and deciding which addresses are worth a database lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses the IP text found in an event field.
///
/// Accepts plain IPv4/IPv6 text with surrounding whitespace, IPv6 in brackets (`[2001:db8::1]`)
/// and with a zone (`fe80::1%eth0`, the zone is dropped). IPv4-mapped IPv6 addresses
/// (`::ffff:203.0.113.5`, common in Windows logs) become the IPv4 address.
/// Returns `None` for anything else (including `ip:port`).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let mut t = text.trim();
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        t = inner;
    }
    if let Some((addr, _zone)) = t.split_once('%') {
        t = addr;
    }
    t.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// Whether a field value means "no address" rather than a malformed one: empty text and the
/// `-` Windows writes when a logon has no network address.
pub(crate) fn is_placeholder(text: &str) -> bool {
    matches!(text.trim(), "" | "-")
}

/// The addresses that are never looked up: not globally routable, so no GeoIP database
/// has meaningful data for them.
///
/// IPv4: `0.0.0.0/8` (this network), `10/8`, `100.64/10` (shared/CGNAT), `127/8`,
/// `169.254/16`, `172.16/12`, `192.0.0/24` (IETF protocol assignments), `192.0.2/24`,
/// `198.51.100/24`, `203.0.113/24` (documentation), `192.168/16`, `198.18/15`
/// (benchmarking), `224/4` (multicast), `240/4` (reserved, with the broadcast address).
///
/// IPv6: `::` and `::1`, `::/96` (IPv4-compatible, deprecated), `64:ff9b:1::/48` (local NAT64),
/// `100::/64` (discard), `2001:db8::/32` and `3fff::/20` (documentation), `fc00::/7` (unique
/// local), `fe80::/10` (link-local), `fec0::/10` (site-local, deprecated), `ff00::/8`
/// (multicast). IPv4-mapped addresses are judged by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let v = u128::from(ip);
    !(v >> 32 == 0 // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] & 0xfff0) == 0x3ff0
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xff00) == 0xff00)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_ip(" 8.8.8.8 "), Some("8.8.8.8".parse().unwrap()));
        assert_eq!(parse_ip("[2a00::1]"), Some("2a00::1".parse().unwrap()));
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_ip("::ffff:81.2.69.142"),
            Some("81.2.69.142".parse().unwrap())
        );
        for bad in [
            "",
            "-",
            "1.2.3",
            "1.2.3.4:80",
            "256.1.1.1",
            "x",
            "1.2.3.4/24",
            "::g",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn classifies_v4() {
        for ip in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.251",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "203.0.114.1",
            "223.255.255.255",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn classifies_v6() {
        for ip in [
            "::",
            "::1",
            "::10.0.0.1",
            "64:ff9b:1::5",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "2a00:1450:4001::1",
            "2001:4860::8888",
            "2606:4700::1111",
            "64:ff9b::8.8.8.8",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }
}
