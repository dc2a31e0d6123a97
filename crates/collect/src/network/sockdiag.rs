//! Kernel socket events through netlink `sock_diag` (Linux): the kernel multicasts an
//! `inet_diag_msg` with the socket's addresses and its `tcp_info` every time a TCP socket is
//! freed (groups `SKNLGRP_INET_TCP_DESTROY`, `SKNLGRP_INET6_TCP_DESTROY`), so a connection
//! that lives a few milliseconds, between two polls, is still seen when it closes. The kernel
//! lets any user join these groups; events are per network namespace. The same
//! protocol answers dumps of the listening sockets (`SOCK_DIAG_BY_FAMILY`), used to tell an
//! inbound short connection from an outbound one and to find its process.
//!
//! Layout (host byte order unless noted; `linux/inet_diag.h`, `linux/tcp.h`):
//!
//! ```text
//! nlmsghdr      { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }                 16 bytes
//! inet_diag_msg { u8 family, state, timer, retrans;
//!                 sockid { be16 sport, dport; be32 src[4], dst[4]; u32 if; u32 cookie[2]; }
//!                 u32 expires, rqueue, wqueue, uid, inode; }                          72 bytes
//! rtattr        { u16 len; u16 type; } + data, 4-aligned; INET_DIAG_INFO (2) = tcp_info
//! tcp_info      bytes_acked u64 @120, bytes_received u64 @128, bytes_sent u64 @200,
//!               bytes_retrans u64 @208
//! inet_diag_req_v2 { u8 family, protocol, ext, pad; u32 states; sockid }            56 bytes
//! ```
//!
//! A destroy message carries no uid, inode or process: the socket is already detached from
//! its file when it is freed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::{Sock, SockKind, Transport};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// `SOCK_DIAG_BY_FAMILY`: the type of requests, dump answers and destroy messages.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_MSG_LEN: usize = 72;
const INET_DIAG_REQ_V2_LEN: usize = 56;
const INET_DIAG_INFO: u16 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const TCP_LISTEN: u32 = 10;
/// Multicast group bits: `SKNLGRP_INET_TCP_DESTROY` (1) and `SKNLGRP_INET6_TCP_DESTROY` (3).
const TCP_DESTROY_GROUPS: u32 = (1 << 0) | (1 << 2);

/// How long `recv` blocks before the collector loop looks at its clock and shutdown signal.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(200);

/// A TCP socket the kernel freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub local: SocketAddr,
    /// Port 0 for listeners, unconnected sockets and failed connection attempts.
    pub remote: SocketAddr,
    /// The handshake completed (something was acknowledged or received).
    pub established: bool,
    /// Payload bytes sent, without retransmissions (Linux 4.19+).
    pub bytes_sent: Option<u64>,
    /// Payload bytes received (the peer's FIN, which takes one sequence number, removed).
    pub bytes_received: Option<u64>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// An address of a `sockid` (`src`/`dst`: 16 bytes, IPv4 in the first 4) with a port, IPv4-
/// mapped IPv6 shown as IPv4 like the `/proc` tables.
fn addr(family: u8, raw: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(raw.get(..4)?).ok()?)),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw.get(..16)?).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

/// The fields of an `inet_diag_msg` we use, and its attributes.
struct DiagMsg<'a> {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
    inode: u32,
    attrs: &'a [u8],
}

fn diag_msg(payload: &[u8]) -> Option<DiagMsg<'_>> {
    let family = *payload.first()?;
    let state = *payload.get(1)?;
    let sport = be16_at(payload, 4)?;
    let dport = be16_at(payload, 6)?;
    Some(DiagMsg {
        local: addr(family, payload.get(8..24)?, sport)?,
        remote: addr(family, payload.get(24..40)?, dport)?,
        state,
        uid: u32_at(payload, 64)?,
        inode: u32_at(payload, 68)?,
        attrs: payload.get(INET_DIAG_MSG_LEN..)?,
    })
}

/// The data of attribute `kind` in a run of `rtattr`s.
fn attr(mut b: &[u8], kind: u16) -> Option<&[u8]> {
    while b.len() >= 4 {
        let len = usize::from(u16_at(b, 0)?);
        let t = u16_at(b, 2)?;
        if len < 4 || len > b.len() {
            return None;
        }
        if t == kind {
            return b.get(4..len);
        }
        let aligned = (len + 3) & !3;
        if aligned >= b.len() {
            return None;
        }
        b = &b[aligned..];
    }
    None
}

fn closed_from(m: &DiagMsg<'_>) -> Closed {
    let info = attr(m.attrs, INET_DIAG_INFO);
    let acked = info.and_then(|i| u64_at(i, 120));
    let received = info.and_then(|i| u64_at(i, 128));
    let sent = info.and_then(|i| Some(u64_at(i, 200)?.saturating_sub(u64_at(i, 208)?)));
    let established = match (acked, received) {
        (Some(a), Some(r)) => a > 0 || r > 0,
        _ => m.remote.port() != 0,
    };
    Closed {
        local: m.local,
        remote: m.remote,
        established,
        bytes_sent: sent.filter(|_| established),
        bytes_received: received
            .filter(|_| established)
            .map(|r| r.saturating_sub(1)),
    }
}

/// One message of a datagram: its type, sequence number and payload.
fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(b, 0)? as usize;
        let kind = u16_at(b, 4)?;
        let seq = u32_at(b, 8)?;
        if len < NLMSG_HDRLEN || len > b.len() {
            return None;
        }
        let payload = &b[NLMSG_HDRLEN..len];
        let aligned = (len + 3) & !3;
        b = b.get(aligned..).unwrap_or(&[]);
        Some((kind, seq, payload))
    })
}

/// What a destroy-group datagram held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Destroyed {
    pub closed: Vec<Closed>,
    /// The kernel said messages were lost (`NLMSG_OVERRUN`).
    pub overrun: bool,
}

/// Decodes every message of one datagram from the destroy groups; malformed parts are skipped.
pub fn parse_destroyed(b: &[u8]) -> Destroyed {
    let mut out = Destroyed::default();
    for (kind, _, payload) in messages(b) {
        match kind {
            SOCK_DIAG_BY_FAMILY => {
                if let Some(m) = diag_msg(payload) {
                    out.closed.push(closed_from(&m));
                }
            }
            NLMSG_OVERRUN => out.overrun = true,
            _ => {}
        }
    }
    out
}

/// What a datagram of a dump answer held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DumpPart {
    pub socks: Vec<Sock>,
    pub done: bool,
    /// The errno of an `NLMSG_ERROR` (positive), 0 for none.
    pub error: i32,
}

/// Decodes a datagram of the answer to [`dump_request`] number `seq`: listening TCP
/// sockets. Messages of other requests (the rest of one that timed out) are skipped.
pub fn parse_dump(b: &[u8], seq: u32) -> DumpPart {
    let mut out = DumpPart::default();
    for (kind, msg_seq, payload) in messages(b) {
        if msg_seq != seq {
            continue;
        }
        match kind {
            SOCK_DIAG_BY_FAMILY => {
                if let Some(m) = diag_msg(payload)
                    && u32::from(m.state) == TCP_LISTEN
                    && m.inode != 0
                {
                    out.socks.push(Sock {
                        transport: Transport::Tcp,
                        kind: SockKind::Listen,
                        local: m.local,
                        remote: None,
                        ident: u64::from(m.inode),
                        uid: Some(m.uid),
                        pid: None,
                    });
                }
            }
            NLMSG_DONE => out.done = true,
            NLMSG_ERROR => {
                let errno = u32_at(payload, 0).map_or(0, |e| (e as i32).saturating_neg());
                if errno != 0 {
                    out.error = errno;
                }
                out.done = true;
            }
            _ => {}
        }
    }
    out
}

/// A `SOCK_DIAG_BY_FAMILY` dump request for the listening TCP sockets of one family.
pub fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    m.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    m.resize(total, 0); // sockid: any
    m
}

fn diag_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        Some(netlink::SOCK_DIAG),
    )?)
}

/// A socket subscribed to the TCP destroy groups.
#[derive(Debug)]
pub struct DestroyEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl DestroyEvents {
    /// Subscribes, then checks that events really flow: a probe listener on 127.0.0.1 is
    /// opened and closed and its destroy message must arrive within a second (a sandbox may
    /// accept the subscription and never deliver anything).
    pub fn open() -> io::Result<DestroyEvents> {
        let fd = diag_socket()?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, TCP_DESTROY_GROUPS))?;
        // Ride out bursts (a crawler closing thousands of connections); the forced size needs
        // CAP_NET_ADMIN, else the size is capped by net.core.rmem_max.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, 4 << 20).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 4 << 20);
        }
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(RECV_TIMEOUT),
        )?;
        let mut events = DestroyEvents {
            fd,
            buf: vec![0u8; 64 * 1024],
        };
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let probe_addr = probe.local_addr()?;
        drop(probe);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            match events.recv() {
                Ok(d) if d.closed.iter().any(|c| c.local == probe_addr) => return Ok(events),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "subscribed, but no destroy event came for a probe socket",
        ))
    }

    /// Receives one datagram (blocks up to [`RECV_TIMEOUT`]).
    pub fn recv(&mut self) -> io::Result<Destroyed> {
        let (n, _) = rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty())?;
        Ok(parse_destroyed(&self.buf[..n.min(self.buf.len())]))
    }
}

/// A socket for dumps of the listening TCP sockets.
#[derive(Debug)]
pub struct ListenerDump {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl ListenerDump {
    pub fn open() -> io::Result<ListenerDump> {
        let fd = diag_socket()?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(1)),
        )?;
        Ok(ListenerDump {
            fd,
            buf: vec![0u8; 64 * 1024],
            seq: 0,
        })
    }

    /// Every listening TCP socket (IPv4 and IPv6) with its uid and inode.
    pub fn listeners(&mut self) -> io::Result<Vec<Sock>> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            self.seq = self.seq.wrapping_add(1);
            rustix::net::send(
                &self.fd,
                &dump_request(family, self.seq),
                SendFlags::empty(),
            )?;
            loop {
                let (n, _) = rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty())?;
                let part = parse_dump(&self.buf[..n.min(self.buf.len())], self.seq);
                out.extend(part.socks);
                if part.error != 0 {
                    return Err(io::Error::from_raw_os_error(part.error));
                }
                if part.done || n == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A receive timeout (`EAGAIN`), or an interrupted call.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The socket buffer overflowed: events were lost (`ENOBUFS`).
pub fn is_overflow(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `inet_diag_msg` message as the kernel sends it, with a `tcp_info` attribute.
    fn message(
        family: u8,
        state: u8,
        local: (&[u8], u16),
        remote: (&[u8], u16),
        uid_inode: (u32, u32),
        info: Option<(u64, u64, u64, u64)>,
    ) -> Vec<u8> {
        let mut p = vec![family, state, 0, 0];
        p.extend_from_slice(&local.1.to_be_bytes());
        p.extend_from_slice(&remote.1.to_be_bytes());
        let mut src = [0u8; 16];
        src[..local.0.len()].copy_from_slice(local.0);
        let mut dst = [0u8; 16];
        dst[..remote.0.len()].copy_from_slice(remote.0);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0u8; 12]); // if, cookie
        p.extend_from_slice(&[0u8; 12]); // expires, rqueue, wqueue
        p.extend_from_slice(&uid_inode.0.to_ne_bytes());
        p.extend_from_slice(&uid_inode.1.to_ne_bytes());
        assert_eq!(p.len(), INET_DIAG_MSG_LEN);
        // INET_DIAG_PROTOCOL first (1 byte, padded), then INET_DIAG_INFO.
        p.extend_from_slice(&5u16.to_ne_bytes());
        p.extend_from_slice(&10u16.to_ne_bytes());
        p.extend_from_slice(&[IPPROTO_TCP, 0, 0, 0]);
        if let Some((acked, received, sent, retrans)) = info {
            let mut ti = vec![0u8; 232];
            ti[0] = 7;
            ti[120..128].copy_from_slice(&acked.to_ne_bytes());
            ti[128..136].copy_from_slice(&received.to_ne_bytes());
            ti[200..208].copy_from_slice(&sent.to_ne_bytes());
            ti[208..216].copy_from_slice(&retrans.to_ne_bytes());
            p.extend_from_slice(&((4 + ti.len()) as u16).to_ne_bytes());
            p.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
            p.extend_from_slice(&ti);
        }
        let len = NLMSG_HDRLEN + p.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&p);
        m
    }

    #[test]
    fn parses_destroy_messages() {
        let lo = [127, 0, 0, 1];
        // A client that sent 5 bytes and received 3 (+ FIN), then a failed connect.
        let mut d = message(
            AF_INET,
            7,
            (&lo, 50432),
            (&lo, 8080),
            (0, 0),
            Some((7, 4, 5, 0)),
        );
        d.extend(message(
            AF_INET,
            7,
            (&lo, 50434),
            (&[0; 4], 0),
            (0, 0),
            Some((0, 0, 0, 0)),
        ));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        d.extend(message(
            AF_INET6,
            7,
            (&v6, 443),
            (&v6, 40000),
            (0, 0),
            Some((1, 1, 0, 0)),
        ));
        let p = parse_destroyed(&d);
        assert!(!p.overrun);
        assert_eq!(p.closed.len(), 3);
        assert_eq!(
            p.closed[0],
            Closed {
                local: "127.0.0.1:50432".parse().expect("addr"),
                remote: "127.0.0.1:8080".parse().expect("addr"),
                established: true,
                bytes_sent: Some(5),
                bytes_received: Some(3),
            }
        );
        assert!(!p.closed[1].established);
        assert_eq!(p.closed[1].bytes_sent, None);
        assert_eq!(p.closed[2].local, "[::1]:443".parse().expect("addr"));
        assert!(p.closed[2].established);
        assert_eq!(p.closed[2].bytes_received, Some(0));
    }

    #[test]
    fn mapped_addresses_short_info_and_garbage() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 0, 0, 5]);
        let d = message(AF_INET6, 7, (&mapped, 22), (&mapped, 5555), (0, 0), None);
        let p = parse_destroyed(&d);
        assert_eq!(p.closed[0].local, "10.0.0.5:22".parse().expect("addr"));
        assert!(p.closed[0].established, "no tcp_info: judged by the port");
        assert_eq!(p.closed[0].bytes_sent, None);
        // Truncated, empty, zero lengths: nothing, no panic, no endless loop.
        let mut t = d.clone();
        t.truncate(60);
        assert!(parse_destroyed(&t).closed.is_empty());
        assert!(parse_destroyed(&[]).closed.is_empty());
        assert!(parse_destroyed(&[0u8; 64]).closed.is_empty());
        let mut bad_attr = d.clone();
        bad_attr.truncate(NLMSG_HDRLEN + INET_DIAG_MSG_LEN);
        bad_attr.extend_from_slice(&[0xff, 0xff, 2, 0]);
        let len = bad_attr.len() as u32;
        bad_attr[0..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(parse_destroyed(&bad_attr).closed.len(), 1);
        // Overrun.
        let mut o = vec![0u8; 16];
        o[0..4].copy_from_slice(&16u32.to_ne_bytes());
        o[4..6].copy_from_slice(&NLMSG_OVERRUN.to_ne_bytes());
        assert!(parse_destroyed(&o).overrun);
    }

    #[test]
    fn dump_request_and_answer() {
        let r = dump_request(AF_INET6, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_at(&r, 0), Some(72));
        assert_eq!(u16_at(&r, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(u16_at(&r, 6), Some(0x301));
        assert_eq!(u32_at(&r, 8), Some(9));
        assert_eq!(&r[16..18], &[AF_INET6, IPPROTO_TCP]);
        assert_eq!(u32_at(&r, 20), Some(1 << 10));

        let mut d = message(AF_INET, 10, (&[0; 4], 22), (&[0; 4], 0), (0, 777), None);
        d.extend(message(
            AF_INET,
            10,
            (&[127, 0, 0, 1], 631),
            (&[0; 4], 0),
            (1000, 778),
            None,
        ));
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        d.extend(done);
        assert!(
            parse_dump(&d, 1).socks.is_empty(),
            "another request's answer"
        );
        let p = parse_dump(&d, 0);
        assert!(p.done);
        assert_eq!(p.error, 0);
        assert_eq!(p.socks.len(), 2);
        assert_eq!(p.socks[0].local, "0.0.0.0:22".parse().expect("addr"));
        assert_eq!((p.socks[1].uid, p.socks[1].ident), (Some(1000), 778));
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        let p = parse_dump(&err, 0);
        assert!(p.done);
        assert_eq!(p.error, 1);
    }

    /// The real kernel: a listener of ours in the dump, and a connection of ours in the
    /// destroy events (skipped with a reason where the kernel refuses the subscription).
    #[test]
    fn kernel_listeners_and_destroy_events() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        match ListenerDump::open().and_then(|mut d| d.listeners()) {
            Ok(list) => assert!(
                list.iter().any(|s| s.local.port() == port && s.ident != 0),
                "own listener not in the sock_diag dump"
            ),
            Err(e) => eprintln!("skipped the listener dump: {e}"),
        }
        let mut events = match DestroyEvents::open() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("skipped: kernel TCP destroy events unavailable here: {e}");
                return;
            }
        };
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, peer) = listener.accept().expect("accept");
        client.write_all(b"hello").expect("write");
        let mut b = [0u8; 5];
        server.read_exact(&mut b).expect("read");
        drop(client);
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = None;
        while Instant::now() < deadline && seen.is_none() {
            match events.recv() {
                Ok(d) => seen = d.closed.into_iter().find(|c| c.local == peer),
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        let c = seen.expect("destroy event of the client socket");
        assert_eq!(c.remote.port(), port);
        assert!(c.established);
        assert_eq!(c.bytes_sent, Some(5));
    }
}
