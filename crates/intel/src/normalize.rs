//! Normalization and validation of indicator values: one canonical spelling per value, so the
//! store deduplicates and the matcher compares bytes.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{IntelError, IocKind};

/// A value in its canonical form. The kind may differ from the one asked for: an `ip` with a
/// prefix shorter than the address is a `cidr`, a `cidr` of one address is an `ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub kind: IocKind,
    pub value: String,
}

/// An IP network with its host bits cleared (a single address has the full prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Net {
    V4(u32, u8),
    V6(u128, u8),
}

impl Net {
    pub fn is_single_address(self) -> bool {
        matches!(self, Net::V4(_, 32) | Net::V6(_, 128))
    }

    fn to_text(self) -> String {
        match self {
            Net::V4(a, 32) => Ipv4Addr::from(a).to_string(),
            Net::V6(a, 128) => Ipv6Addr::from(a).to_string(),
            Net::V4(a, len) => format!("{}/{len}", Ipv4Addr::from(a)),
            Net::V6(a, len) => format!("{}/{len}", Ipv6Addr::from(a)),
        }
    }
}

/// `addr` with all but the first `len` bits cleared (`len` 0 clears everything).
pub(crate) fn mask_v4(addr: u32, len: u8) -> u32 {
    addr & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

pub(crate) fn mask_v6(addr: u128, len: u8) -> u128 {
    addr & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// An address as a [`Net`] of one address; IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// become IPv4, so a v4 indicator matches a dual-stack socket's view of the same peer.
pub fn address(ip: IpAddr) -> Net {
    match ip {
        IpAddr::V4(a) => Net::V4(u32::from(a), 32),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Net::V4(u32::from(v4), 32),
            None => Net::V6(u128::from(a), 128),
        },
    }
}

/// Parses `a.b.c.d`, an IPv6 address, or either with `/len`; host bits are cleared.
pub fn parse_net(raw: &str) -> Result<Net, String> {
    let s = raw.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
    let mapped = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
    let net = address(ip);
    let Some(len) = len else {
        return Ok(net);
    };
    let len: u8 = len
        .parse()
        .map_err(|_| format!("prefix length `{len}` is not a number"))?;
    Ok(match net {
        Net::V4(a, _) => {
            // A mapped prefix counts the 96 bits of `::ffff:`.
            let len = if mapped {
                len.checked_sub(96)
                    .ok_or_else(|| format!("prefix /{len} is shorter than ::ffff:0:0/96"))?
            } else {
                len
            };
            if len > 32 {
                return Err(format!("prefix /{len} is longer than 32 bits"));
            }
            Net::V4(mask_v4(a, len), len)
        }
        Net::V6(a, _) => {
            if len > 128 {
                return Err(format!("prefix /{len} is longer than 128 bits"));
            }
            Net::V6(mask_v6(a, len), len)
        }
    })
}

/// The canonical form of `raw` as a `kind`, or an error naming the value and the reason.
pub fn normalize(kind: IocKind, raw: &str) -> Result<Normalized, IntelError> {
    let invalid = |reason: String| IntelError::InvalidValue {
        kind: kind.as_str().to_owned(),
        value: raw.to_owned(),
        reason,
    };
    let s = raw.trim();
    if s.is_empty() {
        return Err(invalid("the value is empty".into()));
    }
    let (kind, value) = match kind {
        IocKind::Ip | IocKind::Cidr => {
            let net = parse_net(s).map_err(invalid)?;
            let kind = if net.is_single_address() {
                IocKind::Ip
            } else {
                IocKind::Cidr
            };
            (kind, net.to_text())
        }
        IocKind::Domain | IocKind::Hostname => {
            // `*.evil.com` in a feed means what a domain indicator means already.
            let s = if kind == IocKind::Domain {
                s.strip_prefix("*.").unwrap_or(s)
            } else {
                s
            };
            (kind, normalize_domain(s).map_err(invalid)?)
        }
        IocKind::Url => (kind, normalize_url(s).map_err(invalid)?.into_owned()),
        IocKind::Md5
        | IocKind::Sha1
        | IocKind::Sha256
        | IocKind::Sha512
        | IocKind::Imphash
        | IocKind::Ja3 => {
            let want = kind.hex_len().unwrap_or_default();
            if s.len() != want {
                return Err(invalid(format!(
                    "a {kind} has {want} hex digits, this has {}",
                    s.len()
                )));
            }
            if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
                return Err(invalid(format!("`{bad}` is not a hex digit")));
            }
            (kind, s.to_ascii_lowercase())
        }
        IocKind::Filename => {
            if s.chars().any(char::is_control) {
                return Err(invalid("a file name has no control characters".into()));
            }
            (kind, s.to_lowercase())
        }
        IocKind::Email => (kind, normalize_email(s).map_err(invalid)?),
        IocKind::RegistryKey => (kind, normalize_registry(s).map_err(invalid)?),
        IocKind::UserAgent => {
            if s.chars().any(char::is_control) {
                return Err(invalid("a user agent has no control characters".into()));
            }
            (kind, s.to_owned())
        }
    };
    Ok(Normalized { kind, value })
}

/// Lowercased, without a trailing dot; letters, digits, `-`, `_` and non-ASCII (IDNA labels
/// are kept as written) in labels of 1–63 bytes, at most 253 bytes in all; not an address.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let s = raw.strip_suffix('.').unwrap_or(raw);
    check_domain(s)?;
    Ok(s.to_lowercase())
}

fn check_domain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the name is empty".into());
    }
    if s.len() > 253 {
        return Err(format!("the name is {} bytes long, at most 253", s.len()));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Err("this is an IP address, not a name".into());
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label (`..` or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` is {} bytes long, at most 63",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{bad}` is not allowed in a host name"));
        }
    }
    Ok(())
}

/// The parts of a URL, as slices of it: the scheme (when written), the host (without userinfo,
/// port or brackets) and where the host lies in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: Option<&'a str>,
    pub host: &'a str,
    host_start: usize,
}

/// Splits `scheme://user@host:port/path`; the scheme is optional (feeds often leave it out).
pub fn url_parts(s: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest_start) = match s.find("://") {
        Some(i)
            if i > 0
                && s.as_bytes()[0].is_ascii_alphabetic()
                && s[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            (Some(&s[..i]), i + 3)
        }
        _ => (None, 0),
    };
    let rest = &s[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_offset = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_offset..];
    let (host, in_host) = if let Some(v6) = host_port.strip_prefix('[') {
        (&v6[..v6.find(']')?], 1)
    } else {
        let host = match host_port.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host_port,
        };
        (host, 0)
    };
    if host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme,
        host,
        host_start: rest_start + host_offset + in_host,
    })
}

/// Scheme and host lowercased (and the host's trailing dot dropped); the path, query and
/// fragment kept as written. Borrows when the URL is canonical already.
pub fn normalize_url(s: &str) -> Result<Cow<'_, str>, String> {
    if let Some(bad) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{bad:?} is not allowed in a URL"));
    }
    let parts = url_parts(s).ok_or("the URL has no host")?;
    let host_trimmed = parts.host.strip_suffix('.').unwrap_or(parts.host);
    if host_trimmed.parse::<IpAddr>().is_err() {
        check_domain(host_trimmed).map_err(|e| format!("host `{}`: {e}", parts.host))?;
    }
    let canonical = parts.scheme.is_none_or(|sc| !has_upper(sc))
        && !has_upper(parts.host)
        && host_trimmed.len() == parts.host.len();
    if canonical {
        return Ok(Cow::Borrowed(s));
    }
    let host_end = parts.host_start + parts.host.len();
    let mut out = String::with_capacity(s.len());
    // Before the host: the scheme lowercased, userinfo as written.
    let before_host = &s[..parts.host_start];
    match parts.scheme {
        Some(sc) => {
            out.push_str(&sc.to_ascii_lowercase());
            out.push_str(&before_host[sc.len()..]);
        }
        None => out.push_str(before_host),
    }
    out.push_str(&host_trimmed.to_lowercase());
    out.push_str(&s[host_end..]);
    Ok(Cow::Owned(out))
}

fn has_upper(s: &str) -> bool {
    s.chars().any(char::is_uppercase)
}

/// The URL without its `scheme://`, for matching indicators written without one.
pub fn strip_scheme(url: &str) -> &str {
    match url_parts(url) {
        Some(UrlParts {
            scheme: Some(sc), ..
        }) => &url[sc.len() + 3..],
        _ => url,
    }
}

fn normalize_email(s: &str) -> Result<String, String> {
    let (local, domain) = s.rsplit_once('@').ok_or("an e-mail address needs an `@`")?;
    if local.is_empty() {
        return Err("the part before `@` is empty".into());
    }
    if local.contains('@') {
        return Err("an e-mail address has one `@`".into());
    }
    if let Some(bad) = local
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(format!("{bad:?} is not allowed in an e-mail address"));
    }
    let domain = normalize_domain(domain).map_err(|e| format!("domain `{domain}`: {e}"))?;
    Ok(format!("{}@{domain}", local.to_lowercase()))
}

/// Registry hives by their long names; Sysmon and ECS write the short ones.
const HIVES: &[(&str, &str)] = &[
    ("hkey_local_machine", "hklm"),
    ("hkey_current_user", "hkcu"),
    ("hkey_users", "hku"),
    ("hkey_classes_root", "hkcr"),
    ("hkey_current_config", "hkcc"),
];

/// Lowercased (the registry ignores case), long hive names shortened, `\REGISTRY\MACHINE` and
/// `\REGISTRY\USER` as `hklm` and `hku`, repeated and trailing backslashes dropped.
pub fn normalize_registry(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_control) {
        return Err("a registry key has no control characters".into());
    }
    let lower = s.to_lowercase();
    let mut parts = lower.split('\\').filter(|p| !p.is_empty()).peekable();
    let mut out = String::with_capacity(lower.len());
    if lower.starts_with("\\registry\\") {
        parts.next();
        match parts.next() {
            Some("machine") => out.push_str("hklm"),
            Some("user") => out.push_str("hku"),
            Some(other) => {
                out.push_str("\\registry\\");
                out.push_str(other);
            }
            None => return Err("`\\REGISTRY` names no hive".into()),
        }
    } else if let Some(first) = parts.next() {
        let hive = HIVES
            .iter()
            .find(|(long, _)| *long == first)
            .map_or(first, |(_, short)| short);
        out.push_str(hive);
    } else {
        return Err("the key is empty".into());
    }
    for p in parts {
        out.push('\\');
        out.push_str(p);
    }
    Ok(out)
}

/// Calls `f` with `s` lowercased, without allocating when `s` is lowercase already or short.
pub(crate) fn with_lowercase<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    if !s.bytes().any(|b| b.is_ascii_uppercase()) && s.is_ascii() {
        return f(s);
    }
    if s.is_ascii() && s.len() <= 256 {
        let mut buf = [0u8; 256];
        let lower = &mut buf[..s.len()];
        lower.copy_from_slice(s.as_bytes());
        lower.make_ascii_lowercase();
        // ASCII stays valid UTF-8 when lowercased.
        return f(std::str::from_utf8(lower).unwrap_or_default());
    }
    f(&s.to_lowercase())
}

/// Decodes `N` bytes from `2N` hex digits of either case.
pub(crate) fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(kind: IocKind, raw: &str) -> (IocKind, String) {
        let n = normalize(kind, raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        (n.kind, n.value)
    }

    fn reason(kind: IocKind, raw: &str) -> String {
        match normalize(kind, raw) {
            Err(IntelError::InvalidValue { value, reason, .. }) => {
                assert_eq!(value, raw, "the error names the value");
                reason
            }
            other => panic!("{raw}: expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn ipv4_is_canonical_and_a_prefix_makes_a_cidr_with_host_bits_masked() {
        assert_eq!(
            norm(IocKind::Ip, " 10.1.2.3 "),
            (IocKind::Ip, "10.1.2.3".into())
        );
        assert_eq!(
            norm(IocKind::Ip, "10.1.2.3/8"),
            (IocKind::Cidr, "10.0.0.0/8".into())
        );
        assert_eq!(
            norm(IocKind::Cidr, "10.1.2.3/32"),
            (IocKind::Ip, "10.1.2.3".into())
        );
        assert_eq!(
            norm(IocKind::Cidr, "1.2.3.4/0"),
            (IocKind::Cidr, "0.0.0.0/0".into())
        );
    }

    #[test]
    fn ipv6_is_compressed_lowercase_and_mapped_v4_becomes_v4() {
        assert_eq!(
            norm(IocKind::Ip, "2001:0DB8:0000:0000:0000:0000:0000:0001"),
            (IocKind::Ip, "2001:db8::1".into())
        );
        assert_eq!(
            norm(IocKind::Ip, "2001:db8::ffff/32"),
            (IocKind::Cidr, "2001:db8::/32".into())
        );
        assert_eq!(
            norm(IocKind::Ip, "::ffff:1.2.3.4"),
            (IocKind::Ip, "1.2.3.4".into())
        );
        assert_eq!(
            norm(IocKind::Ip, "::ffff:1.2.3.4/120"),
            (IocKind::Cidr, "1.2.3.0/24".into())
        );
        assert_eq!(norm(IocKind::Cidr, "::/0"), (IocKind::Cidr, "::/0".into()));
    }

    #[test]
    fn bad_addresses_say_why() {
        assert!(reason(IocKind::Ip, "1.2.3").contains("not an IPv4 or IPv6 address"));
        assert!(reason(IocKind::Ip, "01.2.3.4").contains("not an IPv4"));
        assert!(reason(IocKind::Ip, "1.2.3.4/33").contains("longer than 32"));
        assert!(reason(IocKind::Ip, "::1/129").contains("longer than 128"));
        assert!(reason(IocKind::Ip, "1.2.3.4/x").contains("not a number"));
        assert!(reason(IocKind::Ip, "  ").contains("empty"));
    }

    #[test]
    fn domains_are_lowercased_without_trailing_dot_and_checked() {
        assert_eq!(
            norm(IocKind::Domain, "Evil.COM."),
            (IocKind::Domain, "evil.com".into())
        );
        assert_eq!(
            norm(IocKind::Domain, "*.evil.com"),
            (IocKind::Domain, "evil.com".into())
        );
        assert_eq!(
            norm(IocKind::Hostname, "Пример.РФ"),
            (IocKind::Hostname, "пример.рф".into())
        );
        assert_eq!(
            norm(IocKind::Hostname, "xn--e1afmkfd.xn--p1ai"),
            (IocKind::Hostname, "xn--e1afmkfd.xn--p1ai".into())
        );
        assert!(reason(IocKind::Domain, "evil..com").contains("empty label"));
        assert!(reason(IocKind::Domain, "ev il.com").contains("not allowed"));
        assert!(reason(IocKind::Domain, "evil.com/x").contains("`/` is not allowed"));
        assert!(reason(IocKind::Domain, "1.2.3.4").contains("IP address"));
        assert!(reason(IocKind::Domain, &format!("{}.com", "a".repeat(64))).contains("63"));
        assert!(reason(IocKind::Hostname, &"a.".repeat(130)).contains("253"));
    }

    #[test]
    fn hashes_are_lowercase_hex_of_their_length() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(norm(IocKind::Md5, md5).1, md5.to_ascii_lowercase());
        assert_eq!(norm(IocKind::Sha1, &"A".repeat(40)).1, "a".repeat(40));
        assert_eq!(norm(IocKind::Sha256, &"0".repeat(64)).1, "0".repeat(64));
        assert_eq!(norm(IocKind::Sha512, &"f".repeat(128)).1, "f".repeat(128));
        assert!(reason(IocKind::Sha256, &"0".repeat(63)).contains("64 hex digits, this has 63"));
        assert!(reason(IocKind::Md5, &"g".repeat(32)).contains("`g` is not a hex digit"));
        assert!(reason(IocKind::Ja3, "abc").contains("32 hex digits"));
    }

    #[test]
    fn urls_lowercase_scheme_and_host_only() {
        assert_eq!(
            norm(IocKind::Url, "HTTP://User@Evil.COM.:8080/Path?Q=A"),
            (IocKind::Url, "http://User@evil.com:8080/Path?Q=A".into())
        );
        assert_eq!(
            norm(IocKind::Url, "Evil.com/a/B"),
            (IocKind::Url, "evil.com/a/B".into())
        );
        assert_eq!(
            norm(IocKind::Url, "https://[2001:DB8::1]:443/x").1,
            "https://[2001:db8::1]:443/x"
        );
        assert!(matches!(
            normalize_url("http://evil.com/x"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(reason(IocKind::Url, "http://evil .com/").contains("not allowed in a URL"));
        assert!(reason(IocKind::Url, "http:///path").contains("no host"));
        assert!(reason(IocKind::Url, "http://ev!l.com/").contains("host `ev!l.com`"));
        assert_eq!(strip_scheme("https://evil.com/x"), "evil.com/x");
        assert_eq!(strip_scheme("evil.com/x"), "evil.com/x");
    }

    #[test]
    fn emails_are_lowercased_and_need_one_at_and_a_domain() {
        assert_eq!(
            norm(IocKind::Email, "Bad.Guy@Evil.COM"),
            (IocKind::Email, "bad.guy@evil.com".into())
        );
        assert!(reason(IocKind::Email, "evil.com").contains("needs an `@`"));
        assert!(reason(IocKind::Email, "@evil.com").contains("before `@` is empty"));
        assert!(reason(IocKind::Email, "a@b@evil.com").contains("one `@`"));
        assert!(reason(IocKind::Email, "a@evil..com").contains("domain `evil..com`"));
    }

    #[test]
    fn registry_keys_use_short_hives_and_ignore_case() {
        assert_eq!(
            norm(
                IocKind::RegistryKey,
                "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\"
            )
            .1,
            "hklm\\software\\microsoft\\windows\\currentversion\\run"
        );
        assert_eq!(
            norm(IocKind::RegistryKey, "\\REGISTRY\\USER\\S-1-5-21\\Evil").1,
            "hku\\s-1-5-21\\evil"
        );
        assert_eq!(
            norm(IocKind::RegistryKey, "HKCU\\\\Software\\\\X").1,
            "hkcu\\software\\x"
        );
        assert!(reason(IocKind::RegistryKey, "\\\\").contains("empty"));
    }

    #[test]
    fn filenames_fold_case_and_user_agents_keep_it() {
        assert_eq!(norm(IocKind::Filename, " Evil.EXE ").1, "evil.exe");
        assert_eq!(norm(IocKind::UserAgent, "Mozilla/5.0 X").1, "Mozilla/5.0 X");
        assert!(reason(IocKind::Filename, "a\u{0}b").contains("control"));
    }

    #[test]
    fn lowercase_helper_and_hex_decoder() {
        assert_eq!(with_lowercase("AbC", str::to_owned), "abc");
        assert_eq!(with_lowercase("ÄB", str::to_owned), "äb");
        assert_eq!(decode_hex::<2>("aBcD"), Some([0xab, 0xcd]));
        assert_eq!(decode_hex::<2>("abc"), None);
        assert_eq!(decode_hex::<1>("zz"), None);
    }
}
