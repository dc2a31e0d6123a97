//! `/proc/net/{tcp,tcp6,udp,udp6}` and the socket inode → pid map (Linux).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Sock, SockKind, Transport};

const TCP_ESTABLISHED: u8 = 0x01;
const TCP_CLOSE: u8 = 0x07;
const TCP_LISTEN: u8 = 0x0A;

/// One line of a `/proc/net/{tcp,udp}[6]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// Parses `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6). The address is printed as
/// 32-bit words in host byte order.
pub fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = text.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip_hex, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses one data line (not the header):
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`
pub fn parse_line(line: &str) -> Option<RawSocket> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return None;
    }
    Some(RawSocket {
        local: parse_addr(f[1])?,
        remote: parse_addr(f[2])?,
        state: u8::from_str_radix(f[3], 16).ok()?,
        uid: f[7].parse().ok()?,
        inode: f[9].parse().ok()?,
    })
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4` of dual-stack sockets) as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Classifies a raw socket: TCP LISTEN and bound unconnected UDP are listeners, TCP
/// ESTABLISHED and connected UDP are connections; the rest (TIME_WAIT, SYN_SENT...) is skipped.
pub fn classify(transport: Transport, raw: &RawSocket) -> Option<Sock> {
    let kind = match (transport, raw.state) {
        (Transport::Tcp, TCP_LISTEN) => SockKind::Listen,
        (Transport::Tcp, TCP_ESTABLISHED) => SockKind::Established,
        (Transport::Udp, TCP_CLOSE) if raw.remote.port() == 0 => SockKind::Listen,
        (Transport::Udp, TCP_ESTABLISHED) => SockKind::Established,
        _ => return None,
    };
    Some(Sock {
        transport,
        kind,
        local: canonical(raw.local),
        remote: (kind == SockKind::Established).then(|| canonical(raw.remote)),
        ident: raw.inode,
        uid: Some(raw.uid),
        pid: None,
    })
}

/// Every listener and connection of the four tables.
pub fn snapshot() -> Vec<Sock> {
    let mut out = Vec::new();
    for (file, transport) in [
        ("/proc/net/tcp", Transport::Tcp),
        ("/proc/net/tcp6", Transport::Tcp),
        ("/proc/net/udp", Transport::Udp),
        ("/proc/net/udp6", Transport::Udp),
    ] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        out.extend(
            text.lines()
                .skip(1)
                .filter_map(parse_line)
                .filter(|raw| raw.inode != 0)
                .filter_map(|raw| classify(transport, &raw)),
        );
    }
    out
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Finds the process owning each inode by reading `/proc/<pid>/fd/*` links, stopping as soon
/// as every wanted inode is found. Only called when there are unseen sockets.
pub fn owners(wanted: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(pids) = crate::procfs::list_pids() else {
        return found;
    };
    // Newest processes first: a new socket most likely belongs to a recent process.
    for pid in pids.into_iter().rev() {
        let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in dir.flatten() {
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            if let Some(inode) = target.to_str().and_then(socket_inode)
                && wanted.contains(&inode)
            {
                found.entry(inode).or_insert(pid);
            }
        }
        if found.len() == wanted.len() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0
   1: 0F02000A:0016 0202000A:D3A4 01 00000000:00000000 02:0008F8E6 00000000  1000        0 34567 4 0000000000000000 20 4 31 10 -1
   2: 0100007F:A1B2 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn parses_ipv4_lines() {
        let rows: Vec<RawSocket> = TCP.lines().skip(1).filter_map(parse_line).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].local, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(rows[0].state, TCP_LISTEN);
        assert_eq!(rows[0].inode, 23456);
        assert_eq!(rows[1].local, "10.0.2.15:22".parse().expect("addr"));
        assert_eq!(rows[1].remote, "10.0.2.2:54180".parse().expect("addr"));
        assert_eq!(rows[1].uid, 1000);
        let l = classify(Transport::Tcp, &rows[0]).expect("listener");
        assert_eq!((l.kind, l.remote), (SockKind::Listen, None));
        let c = classify(Transport::Tcp, &rows[1]).expect("conn");
        assert_eq!(c.kind, SockKind::Established);
        assert!(
            classify(Transport::Tcp, &rows[2]).is_none(),
            "TIME_WAIT skipped"
        );
        assert!(parse_line(TCP.lines().next().unwrap_or_default()).is_none());
        assert!(parse_line("   0: zz:1 00:00 0A").is_none());
    }

    #[test]
    fn parses_ipv6_and_mapped() {
        // ::1 port 631 listening; ::ffff:127.0.0.1 connection; 2001:db8::1.
        let lines = "   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19123 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 45678 1 0000000000000000 20 4 30 10 -1
   2: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0";
        let rows: Vec<RawSocket> = lines.lines().filter_map(parse_line).collect();
        assert_eq!(rows[0].local, "[::1]:631".parse().expect("addr"));
        let c = classify(Transport::Tcp, &rows[1]).expect("conn");
        assert_eq!(c.local, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(c.remote, Some("127.0.0.1:50000".parse().expect("addr")));
        assert_eq!(rows[2].local, "[2001:db8::1]:80".parse().expect("addr"));
    }

    #[test]
    fn udp_states() {
        let bound = parse_line("  273: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 16555 2 0000000000000000 0").expect("row");
        assert_eq!(
            classify(Transport::Udp, &bound).map(|s| s.kind),
            Some(SockKind::Listen)
        );
        let connected = parse_line("  10: 0F02000A:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000   100        0 16556 2 0000000000000000 0").expect("row");
        let c = classify(Transport::Udp, &connected).expect("conn");
        assert_eq!(c.remote, Some("8.8.8.8:53".parse().expect("addr")));
    }

    #[test]
    fn socket_links_and_own_socket_owner() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let ours = snapshot()
            .into_iter()
            .find(|s| s.kind == SockKind::Listen && s.local.port() == port)
            .expect("own listener in /proc/net/tcp");
        let found = owners(&HashSet::from([ours.ident]));
        assert_eq!(found.get(&ours.ident), Some(&std::process::id()));
    }
}
