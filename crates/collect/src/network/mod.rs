//! Listening sockets and established connections with their owning process.
//!
//! Every poll takes a snapshot of the socket tables (Linux: `/proc/net/{tcp,tcp6,udp,udp6}`;
//! Windows: `netstat2`), diffs it with the previous one and reports new listeners and
//! connections (and, at level detailed, the ones that went away). The owner of a Linux socket
//! is found by scanning `/proc/<pid>/fd` only when there are unseen socket inodes. The first
//! snapshot after start is the baseline and is not reported.

#[cfg(target_os = "linux")]
mod procnet;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use serde_json::{Map, Value, json};

use crate::config::NetworkSettings;
use crate::ecs::{self, Stopped};
use crate::{CollectorContext, CollectorState, RunResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockKind {
    Listen,
    Established,
}

/// One socket of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sock {
    pub transport: Transport,
    pub kind: SockKind,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    /// What tells two sockets with the same addresses apart: the inode (Linux) or the pid.
    pub ident: u64,
    /// Owner uid (Linux).
    pub uid: Option<u32>,
    /// Owner pid when the platform gives it with the table (Windows).
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    transport: Transport,
    kind: SockKind,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    ident: u64,
}

impl From<&Sock> for Key {
    fn from(s: &Sock) -> Self {
        Key {
            transport: s.transport,
            kind: s.kind,
            local: s.local,
            remote: s.remote,
            ident: s.ident,
        }
    }
}

/// The process that owns a socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub executable: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
struct Known {
    sock: Sock,
    owner: Option<Owner>,
    inbound: bool,
    reported: bool,
}

/// Platform access: the socket table, owners of sockets, process details, user names.
trait Platform {
    fn snapshot(&mut self) -> Vec<Sock>;
    /// pid of each wanted socket ident (Linux inode) whose pid the snapshot did not give.
    fn owners(&mut self, idents: &HashSet<u64>) -> HashMap<u64, u32>;
    fn owner(&mut self, pid: u32) -> Owner;
    fn user_name(&mut self, uid: u32) -> Option<String>;
}

struct Engine<'a> {
    s: &'a NetworkSettings,
    known: HashMap<Key, Known>,
}

impl<'a> Engine<'a> {
    fn new(s: &'a NetworkSettings) -> Self {
        Engine {
            s,
            known: HashMap::new(),
        }
    }

    /// One poll; returns the events to send. `report`: false for the baseline.
    fn step(&mut self, platform: &mut dyn Platform, report: bool) -> Vec<Map<String, Value>> {
        let socks = platform.snapshot();
        let listeners: Vec<(Transport, SocketAddr)> = socks
            .iter()
            .filter(|s| s.kind == SockKind::Listen)
            .map(|s| (s.transport, s.local))
            .collect();
        let mut current: HashSet<Key> = HashSet::with_capacity(socks.len());
        let mut new: Vec<Sock> = Vec::new();
        for sock in socks {
            let key = Key::from(&sock);
            if !self.known.contains_key(&key) && !current.contains(&key) {
                new.push(sock);
            }
            current.insert(key);
        }
        let mut events = Vec::new();

        // Owners of the new sockets, looked up only for those.
        let unresolved: HashSet<u64> = new
            .iter()
            .filter(|s| s.pid.is_none() && self.wanted(s))
            .map(|s| s.ident)
            .collect();
        let pids = if report {
            platform.owners(&unresolved)
        } else {
            HashMap::new()
        };
        let mut owners: HashMap<u32, Owner> = HashMap::new();
        for sock in new {
            let wanted = self.wanted(&sock);
            let pid = sock.pid.or_else(|| pids.get(&sock.ident).copied());
            let owner = match (report && wanted, pid) {
                (true, Some(pid)) => Some(
                    owners
                        .entry(pid)
                        .or_insert_with(|| platform.owner(pid))
                        .clone(),
                ),
                _ => None,
            };
            let excluded = owner
                .as_ref()
                .and_then(|o| o.executable.as_deref())
                .is_some_and(|exe| self.s.exclude.is_match(exe));
            let inbound = sock.kind == SockKind::Established
                && sock.transport == Transport::Tcp
                && listeners.iter().any(|(t, addr)| {
                    *t == sock.transport
                        && addr.port() == sock.local.port()
                        && (addr.ip().is_unspecified() || addr.ip() == sock.local.ip())
                });
            let mut known = Known {
                sock,
                owner,
                inbound,
                reported: false,
            };
            if report && wanted && !excluded {
                let user = known.sock.uid.map(|uid| (uid, platform.user_name(uid)));
                events.push(socket_event(&known, false, user));
                known.reported = true;
            }
            self.known.insert(Key::from(&known.sock), known);
        }

        let gone: Vec<Key> = self
            .known
            .keys()
            .filter(|k| !current.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(known) = self.known.remove(&key)
                && report
                && known.reported
                && self.s.report_close
            {
                let user = known.sock.uid.map(|uid| (uid, platform.user_name(uid)));
                events.push(socket_event(&known, true, user));
            }
        }
        events
    }

    /// Whether the settings want this socket reported (before the owner is known).
    fn wanted(&self, s: &Sock) -> bool {
        let kind_on = match s.kind {
            SockKind::Listen => self.s.listeners,
            SockKind::Established => self.s.connections,
        };
        let loopback = s.local.ip().is_loopback() && s.remote.is_none_or(|r| r.ip().is_loopback());
        let loopback_ok = self.s.include_loopback || !(loopback && s.remote.is_some());
        kind_on && loopback_ok && !self.s.exclude_ports.contains(&s.local.port())
    }
}

fn endpoint(a: SocketAddr) -> Value {
    json!({ "ip": a.ip().to_string(), "port": a.port() })
}

/// The event of a new (or, with `closed`, vanished) socket.
fn socket_event(
    k: &Known,
    closed: bool,
    user: Option<(u32, Option<String>)>,
) -> Map<String, Value> {
    let s = &k.sock;
    let (types, action): (&[&str], &str) = match (s.kind, closed) {
        (SockKind::Listen, false) => (&["start"], "listening"),
        (SockKind::Listen, true) => (&["end"], "listening-stopped"),
        (SockKind::Established, false) => (&["connection", "start"], "connection-established"),
        (SockKind::Established, true) => (&["connection", "end"], "connection-closed"),
    };
    let mut doc = ecs::base_event(ecs::now_rfc3339(), "network", &["network"], types, action);
    let net_type = if s.local.is_ipv4() { "ipv4" } else { "ipv6" };
    let mut network = json!({ "transport": s.transport.as_str(), "type": net_type });
    let mut ips = vec![s.local.ip().to_string()];
    match (s.kind, s.remote) {
        (SockKind::Established, Some(remote)) => {
            let (src, dst, dir) = if k.inbound {
                (remote, s.local, "inbound")
            } else {
                (s.local, remote, "outbound")
            };
            doc.insert("source".into(), endpoint(src));
            doc.insert("destination".into(), endpoint(dst));
            network["direction"] = dir.into();
            if remote.ip() != s.local.ip() {
                ips.push(remote.ip().to_string());
            }
        }
        _ => {
            // A listener: the local (bound) address, as netstat's "Local Address".
            doc.insert("source".into(), endpoint(s.local));
        }
    }
    doc.insert("network".into(), network);
    if let Some(o) = &k.owner {
        doc.insert(
            "process".into(),
            json!({ "pid": o.pid, "executable": o.executable, "name": o.name }),
        );
    }
    let mut related = json!({ "ip": ips });
    if let Some((uid, name)) = user {
        doc.insert(
            "user".into(),
            json!({ "id": uid.to_string(), "name": name }),
        );
        if let Some(name) = name {
            related["user"] = json!([name]);
        }
    }
    doc.insert("related".into(), related);
    doc
}

#[cfg(target_os = "linux")]
struct Linux {
    users: crate::users::UserNames,
}

#[cfg(target_os = "linux")]
impl Platform for Linux {
    fn snapshot(&mut self) -> Vec<Sock> {
        procnet::snapshot()
    }
    fn owners(&mut self, idents: &HashSet<u64>) -> HashMap<u64, u32> {
        procnet::owners(idents)
    }
    fn owner(&mut self, pid: u32) -> Owner {
        let executable = crate::procfs::read_link(pid, "exe").map(|(p, _)| p);
        let name = executable
            .as_deref()
            .and_then(crate::procfs::file_name)
            .or_else(|| crate::procfs::read_stat(pid).map(|s| s.comm));
        Owner {
            pid,
            executable,
            name,
        }
    }
    fn user_name(&mut self, uid: u32) -> Option<String> {
        self.users.name(uid)
    }
}

#[cfg(windows)]
struct Windows {
    system: Option<sysinfo::System>,
}

#[cfg(windows)]
impl Platform for Windows {
    fn snapshot(&mut self) -> Vec<Sock> {
        use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;
        let Ok(list) = netstat2::get_sockets_info(af, proto) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for info in list {
            let pid = info.associated_pids.first().copied();
            let sock = match info.protocol_socket_info {
                ProtocolSocketInfo::Tcp(t) => {
                    let kind = match t.state {
                        TcpState::Listen => SockKind::Listen,
                        TcpState::Established => SockKind::Established,
                        _ => continue,
                    };
                    Sock {
                        transport: Transport::Tcp,
                        kind,
                        local: SocketAddr::new(t.local_addr.to_canonical(), t.local_port),
                        remote: (kind == SockKind::Established)
                            .then(|| SocketAddr::new(t.remote_addr.to_canonical(), t.remote_port)),
                        ident: u64::from(pid.unwrap_or(0)),
                        uid: None,
                        pid,
                    }
                }
                ProtocolSocketInfo::Udp(u) => Sock {
                    transport: Transport::Udp,
                    kind: SockKind::Listen,
                    local: SocketAddr::new(u.local_addr.to_canonical(), u.local_port),
                    remote: None,
                    ident: u64::from(pid.unwrap_or(0)),
                    uid: None,
                    pid,
                },
            };
            out.push(sock);
        }
        out
    }
    fn owners(&mut self, _idents: &HashSet<u64>) -> HashMap<u64, u32> {
        HashMap::new()
    }
    fn owner(&mut self, pid: u32) -> Owner {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, UpdateKind};
        let mut owner = Owner {
            pid,
            ..Owner::default()
        };
        if self.system.is_none() {
            self.system = sysinfo::System::new().ok();
        }
        if let Some(system) = self.system.as_mut() {
            let spid = Pid::from_u32(pid);
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[spid]),
                true,
                ProcessRefreshKind::nothing().with_exe(UpdateKind::OnlyIfNotSet),
            );
            if let Some(p) = system.process(spid) {
                owner.executable = p.exe().map(|e| e.to_string_lossy().into_owned());
                owner.name = Some(p.name().to_string_lossy().into_owned());
            }
        }
        owner
    }
    fn user_name(&mut self, _uid: u32) -> Option<String> {
        None
    }
}

/// Runs the collector until shutdown.
pub fn run(s: &NetworkSettings, ctx: &CollectorContext) -> RunResult {
    #[cfg(target_os = "linux")]
    let mut platform = Linux {
        users: crate::users::UserNames::default(),
    };
    #[cfg(windows)]
    let mut platform = Windows { system: None };
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = s;
        ctx.health.set(
            "network",
            CollectorState::Disabled,
            Some("not available on this OS".into()),
        );
        return Ok(());
    }
    #[cfg(any(target_os = "linux", windows))]
    {
        let mut engine = Engine::new(s);
        engine.step(&mut platform, false);
        ctx.health.set(
            "network",
            CollectorState::Running,
            Some(format!("polling every {} ms", s.poll_interval.as_millis())),
        );
        while !ctx.shutdown.wait_timeout(s.poll_interval) {
            let events = engine.step(&mut platform, true);
            if send_all(ctx, events).is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn send_all(ctx: &CollectorContext, events: Vec<Map<String, Value>>) -> Result<(), Stopped> {
    for e in events {
        ctx.emit(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;

    struct Fake {
        socks: Vec<Sock>,
    }

    impl Platform for Fake {
        fn snapshot(&mut self) -> Vec<Sock> {
            self.socks.clone()
        }
        fn owners(&mut self, idents: &HashSet<u64>) -> HashMap<u64, u32> {
            idents.iter().map(|i| (*i, 4242)).collect()
        }
        fn owner(&mut self, pid: u32) -> Owner {
            Owner {
                pid,
                executable: Some("/usr/sbin/nginx".into()),
                name: Some("nginx".into()),
            }
        }
        fn user_name(&mut self, uid: u32) -> Option<String> {
            (uid == 0).then(|| "root".to_owned())
        }
    }

    fn sock(kind: SockKind, local: &str, remote: Option<&str>, ident: u64) -> Sock {
        Sock {
            transport: Transport::Tcp,
            kind,
            local: local.parse().expect("addr"),
            remote: remote.map(|r| r.parse().expect("addr")),
            ident,
            uid: Some(0),
            pid: None,
        }
    }

    #[test]
    fn diff_reports_new_and_closed_with_direction() {
        let mut config = CollectConfig::default();
        config.network.report_close = Some(true);
        let settings = config.resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        let mut fake = Fake {
            socks: vec![sock(SockKind::Listen, "0.0.0.0:22", None, 1)],
        };
        assert!(
            engine.step(&mut fake, false).is_empty(),
            "baseline is silent"
        );
        fake.socks
            .push(sock(SockKind::Listen, "0.0.0.0:80", None, 2));
        fake.socks.push(sock(
            SockKind::Established,
            "10.0.0.1:80",
            Some("10.0.0.9:5555"),
            3,
        ));
        fake.socks.push(sock(
            SockKind::Established,
            "10.0.0.1:40000",
            Some("1.1.1.1:443"),
            4,
        ));
        let events = engine.step(&mut fake, true);
        assert_eq!(events.len(), 3);
        let listen = &events[0];
        assert_eq!(listen["event"]["action"], "listening");
        assert_eq!(listen["source"]["port"], 80);
        assert_eq!(listen["process"]["name"], "nginx");
        assert_eq!(listen["user"]["name"], "root");
        let inbound = &events[1];
        assert_eq!(inbound["network"]["direction"], "inbound");
        assert_eq!(inbound["source"]["ip"], "10.0.0.9");
        assert_eq!(inbound["destination"]["port"], 80);
        let outbound = &events[2];
        assert_eq!(outbound["network"]["direction"], "outbound");
        assert_eq!(outbound["destination"]["ip"], "1.1.1.1");
        assert_eq!(outbound["event"]["type"], json!(["connection", "start"]));
        assert!(engine.step(&mut fake, true).is_empty(), "nothing new");
        fake.socks.retain(|s| s.ident != 4);
        let events = engine.step(&mut fake, true);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["event"]["action"], "connection-closed");
    }

    #[test]
    fn filters() {
        let mut config = CollectConfig::default();
        config.network.include_loopback = false;
        config.network.exclude_ports = vec![53];
        config.network.exclude_executables = vec!["**/nginx".into()];
        let settings = config.resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        let mut fake = Fake { socks: vec![] };
        engine.step(&mut fake, false);
        fake.socks = vec![
            sock(
                SockKind::Established,
                "127.0.0.1:5000",
                Some("127.0.0.1:6000"),
                1,
            ),
            sock(SockKind::Listen, "0.0.0.0:53", None, 2),
            sock(SockKind::Listen, "0.0.0.0:8080", None, 3),
        ];
        assert!(engine.step(&mut fake, true).is_empty());
    }
}
