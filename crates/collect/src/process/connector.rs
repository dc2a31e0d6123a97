//! The Linux netlink process connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): the kernel
//! multicasts a message for every fork, exec and exit, so even processes that live a few
//! microseconds are seen. Needs `CAP_NET_ADMIN` and the initial PID namespace.
//!
//! The message layout (host byte order; `linux/netlink.h`, `linux/connector.h`,
//! `linux/cn_proc.h`):
//!
//! ```text
//! nlmsghdr  { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }             16 bytes
//! cn_msg    { u32 idx; u32 val; u32 seq; u32 ack; u16 len; u16 flags; }     20 bytes
//! proc_event{ u32 what; u32 cpu; u64 timestamp_ns; union event_data; }     16 + n bytes
//!   fork: u32 parent_pid, parent_tgid, child_pid, child_tgid
//!   exec: u32 process_pid, process_tgid
//!   exit: u32 process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid
//! ```

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

pub const NLMSG_HDRLEN: usize = 16;
pub const CN_MSG_LEN: usize = 20;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
pub const CN_IDX_PROC: u32 = 1;
pub const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;

const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One decoded process event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// The subscription acknowledgement (err 0 = success).
    Ack { err: u32 },
    /// `fork()`/`clone()`: a new process (`child_pid == child_tgid`) or a new thread.
    Fork {
        parent_pid: u32,
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    /// `execve()` succeeded.
    Exec { pid: u32, tgid: u32 },
    /// A task ended; `exit_code` is the wait(2) status (`code << 8 | signal`).
    Exit {
        pid: u32,
        tgid: u32,
        exit_code: u32,
        exit_signal: u32,
    },
    /// Any other event type (uid/gid/sid/ptrace/comm/coredump changes).
    Other { what: u32 },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a `proc_event` (the payload of a `cn_msg`).
pub fn parse_proc_event(b: &[u8]) -> Option<ProcEvent> {
    let what = u32_at(b, 0)?;
    let d = 16; // what, cpu, timestamp_ns
    Some(match what {
        PROC_EVENT_NONE => ProcEvent::Ack {
            err: u32_at(b, d).unwrap_or(0),
        },
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_pid: u32_at(b, d)?,
            parent_tgid: u32_at(b, d + 4)?,
            child_pid: u32_at(b, d + 8)?,
            child_tgid: u32_at(b, d + 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            pid: u32_at(b, d)?,
            tgid: u32_at(b, d + 4)?,
        },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: u32_at(b, d)?,
            tgid: u32_at(b, d + 4)?,
            exit_code: u32_at(b, d + 8)?,
            exit_signal: u32_at(b, d + 12)?,
        },
        other => ProcEvent::Other { what: other },
    })
}

/// What a received datagram held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub events: Vec<ProcEvent>,
    /// The kernel said messages were lost (`NLMSG_OVERRUN`).
    pub overrun: bool,
    /// Netlink error code carried by an `NLMSG_ERROR` message (0 is an ack).
    pub error: Option<i32>,
}

/// Decodes every netlink message of one datagram; malformed tails are ignored.
pub fn parse_datagram(mut b: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    while b.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(b, 0).map(|l| l as usize) else {
            break;
        };
        let kind = u16_at(b, 4).unwrap_or(0);
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let payload = &b[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                out.error = u32_at(payload, 0).map(|e| e as i32);
            }
            NLMSG_OVERRUN => out.overrun = true,
            _ => {
                // Connector messages come as NLMSG_DONE; accept any other type too.
                let _ = NLMSG_DONE;
                if let (Some(idx), Some(val), Some(data_len)) =
                    (u32_at(payload, 0), u32_at(payload, 4), u16_at(payload, 16))
                {
                    let data = payload
                        .get(CN_MSG_LEN..CN_MSG_LEN + usize::from(data_len))
                        .or_else(|| payload.get(CN_MSG_LEN..));
                    if idx == CN_IDX_PROC
                        && val == CN_VAL_PROC
                        && let Some(ev) = data.and_then(parse_proc_event)
                    {
                        out.events.push(ev);
                    }
                }
            }
        }
        let aligned = (len + 3) & !3;
        if aligned >= b.len() {
            break;
        }
        b = &b[aligned..];
    }
    out
}

/// The subscription request: `nlmsghdr` + `cn_msg` + `PROC_CN_MCAST_LISTEN` (or IGNORE).
pub fn subscribe_message(listen: bool) -> Vec<u8> {
    let op: u32 = if listen { PROC_CN_MCAST_LISTEN } else { 2 };
    let total = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes()); // nlmsg_type
    m.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid (0: the kernel knows our port)
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op.to_ne_bytes());
    m
}

/// A subscribed connector socket.
#[derive(Debug)]
pub struct Connector {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// How long `recv` blocks before the loop checks its shutdown signal.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(500);

impl Connector {
    /// Opens, binds and subscribes; then waits (briefly) for the kernel's acknowledgement so
    /// that "no permission" is detected here and not as silence later.
    pub fn open() -> io::Result<Connector> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            Some(netlink::CONNECTOR),
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC))?;
        // A larger buffer rides out bursts (a build starting thousands of processes).
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 1 << 20);
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(RECV_TIMEOUT),
        )?;
        rustix::net::send(&fd, &subscribe_message(true), SendFlags::empty())?;
        let mut c = Connector {
            fd,
            buf: vec![0u8; 16 * 1024],
        };
        // The ack (PROC_EVENT_NONE) normally comes at once; events may come before it.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            match c.recv() {
                Ok(parsed) => {
                    if let Some(e) = parsed.error.filter(|e| *e != 0) {
                        return Err(io::Error::from_raw_os_error(-e));
                    }
                    for ev in &parsed.events {
                        if let ProcEvent::Ack { err } = ev {
                            if *err != 0 {
                                return Err(io::Error::from_raw_os_error(*err as i32));
                            }
                            return Ok(c);
                        }
                    }
                    if !parsed.events.is_empty() {
                        // Events flow: the subscription works even if the ack was missed.
                        return Ok(c);
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer from the process connector",
        ))
    }

    /// Receives one datagram (blocks up to [`RECV_TIMEOUT`]).
    pub fn recv(&mut self) -> io::Result<Parsed> {
        let (n, _) = rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty())?;
        Ok(parse_datagram(&self.buf[..n.min(self.buf.len())]))
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = rustix::net::send(&self.fd, &subscribe_message(false), SendFlags::empty());
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

    /// A datagram as the kernel sends it: nlmsghdr + cn_msg + proc_event.
    fn datagram(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&123_456_789u64.to_ne_bytes()); // timestamp_ns
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&7u32.to_ne_bytes());
        cn.extend_from_slice(&0u32.to_ne_bytes());
        cn.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&0u16.to_ne_bytes());
        cn.extend_from_slice(&ev);
        let len = NLMSG_HDRLEN + cn.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&cn);
        m
    }

    #[test]
    fn parses_fork_exec_exit_ack() {
        let p = parse_datagram(&datagram(PROC_EVENT_FORK, &[100, 100, 200, 200]));
        assert_eq!(
            p.events,
            vec![ProcEvent::Fork {
                parent_pid: 100,
                parent_tgid: 100,
                child_pid: 200,
                child_tgid: 200
            }]
        );
        let p = parse_datagram(&datagram(PROC_EVENT_EXEC, &[200, 200]));
        assert_eq!(
            p.events,
            vec![ProcEvent::Exec {
                pid: 200,
                tgid: 200
            }]
        );
        // exit(3): status 3 << 8; parent fields of newer kernels follow.
        let p = parse_datagram(&datagram(
            PROC_EVENT_EXIT,
            &[200, 200, 3 << 8, 17, 100, 100],
        ));
        assert_eq!(
            p.events,
            vec![ProcEvent::Exit {
                pid: 200,
                tgid: 200,
                exit_code: 768,
                exit_signal: 17
            }]
        );
        let p = parse_datagram(&datagram(PROC_EVENT_NONE, &[0]));
        assert_eq!(p.events, vec![ProcEvent::Ack { err: 0 }]);
        let p = parse_datagram(&datagram(0x200, &[1, 1, 0, 0, 0, 0]));
        assert_eq!(p.events, vec![ProcEvent::Other { what: 0x200 }]);
    }

    #[test]
    fn two_messages_in_one_datagram_and_garbage() {
        let mut d = datagram(PROC_EVENT_EXEC, &[1, 1]);
        d.extend(datagram(PROC_EVENT_EXEC, &[2, 2]));
        assert_eq!(parse_datagram(&d).events.len(), 2);
        // Truncated: header says longer than the buffer.
        let mut t = datagram(PROC_EVENT_EXEC, &[1, 1]);
        t.truncate(30);
        assert!(parse_datagram(&t).events.is_empty());
        assert!(parse_datagram(&[]).events.is_empty());
        assert!(parse_datagram(&[0xff; 15]).events.is_empty());
        // A zero length must not loop forever.
        assert!(parse_datagram(&[0u8; 64]).events.is_empty());
        // Exec payload cut short.
        let mut short = datagram(PROC_EVENT_EXEC, &[]);
        let len = short.len() as u32;
        short[0..4].copy_from_slice(&len.to_ne_bytes());
        assert!(parse_datagram(&short).events.is_empty());
    }

    #[test]
    fn subscribe_message_layout() {
        let m = subscribe_message(true);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
