//! Listening sockets and established connections with their owning process.
//!
//! Every poll takes a snapshot of the socket tables (Linux: `/proc/net/{tcp,tcp6,udp,udp6}`;
//! Windows: `netstat2`), diffs it with the previous one and reports new listeners and
//! connections (and, at level detailed, the ones that went away). The owner of a Linux socket
//! is found by scanning `/proc/<pid>/fd` only when there are unseen socket inodes. The first
//! snapshot after start is the baseline and is not reported.
//!
//! On Linux the kernel's TCP destroy events (netlink `sock_diag`, see [`sockdiag`]) come on
//! top of the polls when they are available: a connection closed before any poll saw it is
//! reported once, when it closes (`connection-closed` with `dozor.network.short_lived`), with
//! its byte counts and, when it came in to a listener, the listener's process. A connection
//! the polls did see is closed by the kernel event at once (with byte counts) instead of at
//! the next poll.

#[cfg(target_os = "linux")]
mod procnet;
#[cfg(target_os = "linux")]
mod sockdiag;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::config::NetworkSettings;
use crate::ecs::{self, Stopped};
use crate::{CollectorContext, CollectorState, RunResult};

/// [`crate::CollectorStatus::source`] with the kernel's socket events (and polling).
#[cfg(target_os = "linux")]
pub const SOURCE_KERNEL: &str = "netlink-sock-diag";
/// [`crate::CollectorStatus::source`] while polling `/proc/net` only.
#[cfg(target_os = "linux")]
pub const SOURCE_PROCFS: &str = "procfs-poll";

/// Connections the polls saw go away are remembered this long, so that the kernel's destroy
/// event that may follow (a socket lingering in CLOSE_WAIT) is not taken for a new, short one.
const RECENTLY_GONE_FOR: Duration = Duration::from_secs(600);
/// ... and at most this many of them.
const RECENTLY_GONE_MAX: usize = 65_536;
/// The listening sockets are dumped from the kernel at most this often, when a closed
/// connection's local port is not a known listener.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const LISTENER_REFRESH: Duration = Duration::from_millis(250);
/// Short connections waiting for that dump; beyond this many they are reported at once.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const MAX_DEFERRED: usize = 4096;

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
    /// The listening TCP sockets straight from the kernel (cheaper than a snapshot), where the
    /// platform can.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn listeners(&mut self) -> Option<Vec<Sock>> {
        None
    }
}

/// Both ends of a TCP connection (local, remote).
type Tuple = (SocketAddr, SocketAddr);

/// A TCP connection that ended, as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub struct Ended {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
}

struct Engine<'a> {
    s: &'a NetworkSettings,
    known: HashMap<Key, Known>,
    /// Kernel connection events are on: keep the indexes below.
    kernel: bool,
    /// Known TCP connections by their ends.
    by_tuple: HashMap<Tuple, Key>,
    /// Known listeners by transport and port.
    listen_index: HashMap<(Transport, u16), Vec<Key>>,
    /// TCP connections the polls saw go away, and when.
    recently_gone: HashMap<Tuple, Instant>,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    last_listener_refresh: Option<Instant>,
    /// Short connections whose local port was no known listener, waiting for the next dump.
    deferred: Vec<Ended>,
}

impl<'a> Engine<'a> {
    fn new(s: &'a NetworkSettings) -> Self {
        Engine {
            s,
            known: HashMap::new(),
            kernel: false,
            by_tuple: HashMap::new(),
            listen_index: HashMap::new(),
            recently_gone: HashMap::new(),
            last_listener_refresh: None,
            deferred: Vec::new(),
        }
    }

    /// One poll; returns the events to send. `report`: false for the baseline.
    fn step(&mut self, platform: &mut dyn Platform, report: bool) -> Vec<Map<String, Value>> {
        let socks = platform.snapshot();
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

        let gone: Vec<Key> = self
            .known
            .keys()
            .filter(|k| !current.contains(k))
            .cloned()
            .collect();
        let now = Instant::now();
        for key in gone {
            let Some(known) = self.remove(&key) else {
                continue;
            };
            if self.kernel
                && known.sock.kind == SockKind::Established
                && let Some(remote) = known.sock.remote
            {
                self.recently_gone.insert((known.sock.local, remote), now);
            }
            if report && known.reported && self.s.report_close {
                let user = known.sock.uid.map(|uid| (uid, platform.user_name(uid)));
                events.push(socket_event(&known, true, user));
            }
        }
        if self.kernel {
            self.recently_gone
                .retain(|_, at| now.duration_since(*at) < RECENTLY_GONE_FOR);
            if self.recently_gone.len() > RECENTLY_GONE_MAX {
                self.recently_gone.clear();
            }
        }
        events.extend(self.admit(platform, new, report));
        events
    }

    /// Takes new sockets into `known` (listeners first, so connections to them are inbound)
    /// and returns the events of those reported.
    fn admit(
        &mut self,
        platform: &mut dyn Platform,
        mut new: Vec<Sock>,
        report: bool,
    ) -> Vec<Map<String, Value>> {
        new.sort_by_key(|s| s.kind != SockKind::Listen);
        // Owners of the new sockets, looked up only for those (and, with kernel events, for
        // every listener: an inbound short connection gets the listener's process).
        let resolve = |this: &Self, s: &Sock| {
            (report && this.wanted(s)) || (this.kernel && s.kind == SockKind::Listen)
        };
        let unresolved: HashSet<u64> = new
            .iter()
            .filter(|s| s.pid.is_none() && resolve(self, s))
            .map(|s| s.ident)
            .collect();
        let pids = platform.owners(&unresolved);
        let mut owners: HashMap<u32, Owner> = HashMap::new();
        let mut events = Vec::new();
        for sock in new {
            let wanted = self.wanted(&sock);
            let pid = sock.pid.or_else(|| pids.get(&sock.ident).copied());
            let owner = match (resolve(self, &sock), pid) {
                (true, Some(pid)) => Some(
                    owners
                        .entry(pid)
                        .or_insert_with(|| platform.owner(pid))
                        .clone(),
                ),
                _ => None,
            };
            let excluded = self.excluded(owner.as_ref());
            let inbound = sock.kind == SockKind::Established
                && sock.transport == Transport::Tcp
                && self.listener_for(sock.transport, sock.local).is_some();
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
            self.insert(known);
        }
        events
    }

    fn insert(&mut self, known: Known) {
        let key = Key::from(&known.sock);
        match (known.sock.kind, known.sock.remote) {
            (SockKind::Listen, _) => self
                .listen_index
                .entry((known.sock.transport, known.sock.local.port()))
                .or_default()
                .push(key.clone()),
            (SockKind::Established, Some(remote)) if known.sock.transport == Transport::Tcp => {
                self.by_tuple
                    .insert((known.sock.local, remote), key.clone());
            }
            _ => {}
        }
        self.known.insert(key, known);
    }

    fn remove(&mut self, key: &Key) -> Option<Known> {
        let known = self.known.remove(key)?;
        match (known.sock.kind, known.sock.remote) {
            (SockKind::Listen, _) => {
                let slot = (known.sock.transport, known.sock.local.port());
                if let Some(keys) = self.listen_index.get_mut(&slot) {
                    keys.retain(|k| k != key);
                    if keys.is_empty() {
                        self.listen_index.remove(&slot);
                    }
                }
            }
            (SockKind::Established, Some(remote)) => {
                let tuple = (known.sock.local, remote);
                if self.by_tuple.get(&tuple) == Some(key) {
                    self.by_tuple.remove(&tuple);
                }
            }
            _ => {}
        }
        Some(known)
    }

    /// The known listener a connection with this local address came in through.
    fn listener_for(&self, transport: Transport, local: SocketAddr) -> Option<&Known> {
        self.listen_index
            .get(&(transport, local.port()))?
            .iter()
            .filter_map(|k| self.known.get(k))
            .find(|l| l.sock.local.ip().is_unspecified() || l.sock.local.ip() == local.ip())
    }

    /// A TCP connection the kernel reported closed: closes a known one (an event at level
    /// detailed) or reports one no poll saw (always; it would leave no trace otherwise).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn ended(&mut self, platform: &mut dyn Platform, e: &Ended) -> Vec<Map<String, Value>> {
        let tuple = (e.local, e.remote);
        if let Some(key) = self.by_tuple.get(&tuple).cloned() {
            let mut events = Vec::new();
            if let Some(known) = self.remove(&key)
                && known.reported
                && self.s.report_close
            {
                let user = known.sock.uid.map(|uid| (uid, platform.user_name(uid)));
                let mut doc = socket_event(&known, true, user);
                add_bytes(&mut doc, known.inbound, e);
                events.push(doc);
            }
            return events;
        }
        if self.recently_gone.remove(&tuple).is_some() || !self.s.connections {
            return Vec::new();
        }
        if self.listener_for(Transport::Tcp, e.local).is_some() {
            return self.short_lived(platform, e).into_iter().collect();
        }
        // Its local port may belong to a listener that appeared since the last dump: judged
        // with the next one (at once when a dump is due).
        self.deferred.push(e.clone());
        self.flush_deferred(platform, false)
    }

    /// Reports the short connections waiting for fresh listeners, after a kernel dump of them,
    /// once one is due (every [`LISTENER_REFRESH`] at most); with `force` (or too many
    /// waiting) at once, dumping only when due.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn flush_deferred(
        &mut self,
        platform: &mut dyn Platform,
        force: bool,
    ) -> Vec<Map<String, Value>> {
        if self.deferred.is_empty() {
            return Vec::new();
        }
        let due = self
            .last_listener_refresh
            .is_none_or(|t| t.elapsed() >= LISTENER_REFRESH);
        if !due && !force && self.deferred.len() < MAX_DEFERRED {
            return Vec::new();
        }
        let mut events = Vec::new();
        if due {
            self.last_listener_refresh = Some(Instant::now());
            if let Some(listeners) = platform.listeners() {
                let new: Vec<Sock> = listeners
                    .into_iter()
                    .filter(|s| !self.known.contains_key(&Key::from(s)))
                    .collect();
                events.extend(self.admit(platform, new, true));
            }
        }
        for e in std::mem::take(&mut self.deferred) {
            events.extend(self.short_lived(platform, &e));
        }
        events
    }

    /// The event of a connection no poll saw: inbound (with the listener's process) when its
    /// local address is a known listener's, else outbound.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn short_lived(
        &mut self,
        platform: &mut dyn Platform,
        e: &Ended,
    ) -> Option<Map<String, Value>> {
        let (owner, uid, inbound) = match self.listener_for(Transport::Tcp, e.local) {
            Some(l) => (l.owner.clone(), l.sock.uid, true),
            None => (None, None, false),
        };
        let known = Known {
            sock: Sock {
                transport: Transport::Tcp,
                kind: SockKind::Established,
                local: e.local,
                remote: Some(e.remote),
                ident: 0,
                uid,
                pid: owner.as_ref().map(|o| o.pid),
            },
            owner,
            inbound,
            reported: true,
        };
        if !self.wanted(&known.sock) || self.excluded(known.owner.as_ref()) {
            return None;
        }
        let user = uid.map(|uid| (uid, platform.user_name(uid)));
        let mut doc = socket_event(&known, true, user);
        add_bytes(&mut doc, inbound, e);
        ecs::put(&mut doc, "dozor.network.short_lived", true);
        Some(doc)
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

    /// Whether the owner's executable is excluded.
    fn excluded(&self, owner: Option<&Owner>) -> bool {
        owner
            .and_then(|o| o.executable.as_deref())
            .is_some_and(|exe| self.s.exclude.is_match(exe))
    }
}

/// `source.bytes` / `destination.bytes` (what each side sent) and `network.bytes`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn add_bytes(doc: &mut Map<String, Value>, inbound: bool, e: &Ended) {
    let (from_source, from_destination) = if inbound {
        (e.bytes_received, e.bytes_sent)
    } else {
        (e.bytes_sent, e.bytes_received)
    };
    if let Some(b) = from_source {
        ecs::put(doc, "source.bytes", b);
    }
    if let Some(b) = from_destination {
        ecs::put(doc, "destination.bytes", b);
    }
    if let (Some(a), Some(b)) = (e.bytes_sent, e.bytes_received) {
        ecs::put(doc, "network.bytes", a.saturating_add(b));
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
    /// The socket for listener dumps, opened on first use.
    dump: Option<sockdiag::ListenerDump>,
    dump_failed: bool,
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
    fn listeners(&mut self) -> Option<Vec<Sock>> {
        if self.dump.is_none() && !self.dump_failed {
            match sockdiag::ListenerDump::open() {
                Ok(d) => self.dump = Some(d),
                Err(e) => {
                    tracing::debug!("no sock_diag listener dumps: {e}");
                    self.dump_failed = true;
                }
            }
        }
        match self.dump.as_mut()?.listeners() {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::debug!("sock_diag listener dump failed: {e}");
                // A fresh socket next time (the old one may hold the rest of this answer).
                self.dump = None;
                None
            }
        }
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
    {
        run_linux(s, ctx)
    }
    #[cfg(windows)]
    {
        let mut platform = Windows { system: None };
        let mut engine = Engine::new(s);
        engine.step(&mut platform, false);
        ctx.health.set_with_source(
            "network",
            CollectorState::Running,
            "iphlpapi-poll",
            Some(format!("polling every {} ms", s.poll_interval.as_millis())),
        );
        poll_loop(s, ctx, &mut engine, &mut platform);
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = s;
        ctx.health.set(
            "network",
            CollectorState::Disabled,
            Some("not available on this OS".into()),
        );
        Ok(())
    }
}

#[cfg(any(target_os = "linux", windows))]
fn poll_loop(
    s: &NetworkSettings,
    ctx: &CollectorContext,
    engine: &mut Engine<'_>,
    platform: &mut dyn Platform,
) {
    while !ctx.shutdown.wait_timeout(s.poll_interval) {
        let events = engine.step(platform, true);
        if send_all(ctx, events).is_err() {
            break;
        }
    }
}

#[cfg(target_os = "linux")]
fn run_linux(s: &NetworkSettings, ctx: &CollectorContext) -> RunResult {
    use crate::config::NetworkMode;

    let mut platform = Linux {
        users: crate::users::UserNames::default(),
        dump: None,
        dump_failed: false,
    };
    let mut engine = Engine::new(s);
    let poll_note = format!("polling /proc/net every {} ms", s.poll_interval.as_millis());
    // Subscribe before the baseline: a connection closing in between is then either in the
    // baseline or in the socket buffer.
    let kernel = match s.mode {
        NetworkMode::Poll => None,
        NetworkMode::Auto | NetworkMode::Netlink => match sockdiag::DestroyEvents::open() {
            Ok(events) => Some(events),
            Err(e) if s.mode == NetworkMode::Netlink => {
                return Err(format!(
                    "kernel socket events (netlink sock_diag) unavailable: {e}"
                ));
            }
            Err(e) => {
                engine.step(&mut platform, false);
                ctx.health.set_with_source(
                    "network",
                    CollectorState::Degraded,
                    SOURCE_PROCFS,
                    Some(format!(
                        "kernel socket events (netlink sock_diag) unavailable ({e}), {poll_note}: \
                         connections shorter than that are missed"
                    )),
                );
                poll_loop(s, ctx, &mut engine, &mut platform);
                return Ok(());
            }
        },
    };
    let Some(mut kernel) = kernel else {
        engine.step(&mut platform, false);
        ctx.health.set_with_source(
            "network",
            CollectorState::Running,
            SOURCE_PROCFS,
            Some(poll_note),
        );
        poll_loop(s, ctx, &mut engine, &mut platform);
        return Ok(());
    };
    engine.kernel = true;
    engine.step(&mut platform, false);
    let kernel_note = format!("kernel TCP close events (netlink sock_diag) and {poll_note}");
    ctx.health.set_with_source(
        "network",
        CollectorState::Running,
        SOURCE_KERNEL,
        Some(kernel_note.clone()),
    );
    let mut next_poll = Instant::now() + s.poll_interval;
    let mut lost = 0u64;
    let mut lost_reported = 0u64;
    while !ctx.shutdown.is_triggered() {
        let mut events = Vec::new();
        match kernel.recv() {
            Ok(d) => {
                if d.overrun {
                    lost += 1;
                    tracing::warn!(lost, "kernel socket events lost (overrun)");
                }
                for c in d.closed {
                    // Listeners, unconnected sockets, failed connection attempts.
                    if !c.established || c.remote.port() == 0 {
                        continue;
                    }
                    let ended = Ended {
                        local: c.local,
                        remote: c.remote,
                        bytes_sent: c.bytes_sent,
                        bytes_received: c.bytes_received,
                    };
                    events.extend(engine.ended(&mut platform, &ended));
                }
            }
            Err(e) if sockdiag::is_timeout(&e) => {}
            Err(e) if sockdiag::is_overflow(&e) => {
                lost += 1;
                tracing::warn!(lost, "kernel socket event buffer overflow, events lost");
            }
            Err(e) => {
                ctx.health.set_with_source(
                    "network",
                    CollectorState::Degraded,
                    SOURCE_PROCFS,
                    Some(format!(
                        "kernel socket events failed ({e}), {poll_note}: connections shorter \
                         than that are missed"
                    )),
                );
                drop(kernel);
                if send_all(ctx, engine.flush_deferred(&mut platform, true)).is_err() {
                    return Ok(());
                }
                engine.kernel = false;
                engine.recently_gone.clear();
                poll_loop(s, ctx, &mut engine, &mut platform);
                return Ok(());
            }
        }
        events.extend(engine.flush_deferred(&mut platform, false));
        if lost != lost_reported {
            lost_reported = lost;
            ctx.health.set_with_source(
                "network",
                CollectorState::Running,
                SOURCE_KERNEL,
                Some(format!(
                    "{kernel_note}; {lost} kernel event buffer overflows"
                )),
            );
        }
        if Instant::now() >= next_poll {
            events.extend(engine.step(&mut platform, true));
            next_poll = Instant::now() + s.poll_interval;
        }
        if send_all(ctx, events).is_err() {
            return Ok(());
        }
    }
    // Short connections still waiting for a listener dump.
    let _ = send_all(ctx, engine.flush_deferred(&mut platform, true));
    Ok(())
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
        /// What the kernel listener dump returns (None: not available).
        kernel_listeners: Option<Vec<Sock>>,
        dumps: usize,
    }

    fn platform(socks: Vec<Sock>) -> Fake {
        Fake {
            socks,
            kernel_listeners: None,
            dumps: 0,
        }
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
        fn listeners(&mut self) -> Option<Vec<Sock>> {
            self.dumps += 1;
            self.kernel_listeners.clone()
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
        let mut fake = platform(vec![sock(SockKind::Listen, "0.0.0.0:22", None, 1)]);
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
        let mut fake = platform(vec![]);
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

    fn ended(local: &str, remote: &str) -> Ended {
        Ended {
            local: local.parse().expect("addr"),
            remote: remote.parse().expect("addr"),
            bytes_sent: Some(120),
            bytes_received: Some(4000),
        }
    }

    #[test]
    fn kernel_close_of_an_unseen_connection_is_reported_short_lived() {
        let settings = CollectConfig::default().resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![sock(SockKind::Listen, "0.0.0.0:22", None, 1)]);
        engine.step(&mut fake, false);

        // Inbound to a listener of the baseline: the listener's process and user.
        let events = engine.ended(&mut fake, &ended("10.0.0.1:22", "10.0.0.9:5555"));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["event"]["action"], "connection-closed");
        assert_eq!(e["event"]["type"], json!(["connection", "end"]));
        assert_eq!(e["dozor"]["network"]["short_lived"], true);
        assert_eq!(e["network"]["direction"], "inbound");
        assert_eq!(e["source"]["ip"], "10.0.0.9");
        assert_eq!(e["source"]["bytes"], 4000, "the peer sent what we received");
        assert_eq!(e["destination"]["port"], 22);
        assert_eq!(e["destination"]["bytes"], 120);
        assert_eq!(e["network"]["bytes"], 4120);
        assert_eq!(e["process"]["pid"], 4242);
        assert_eq!(e["user"]["name"], "root");
        assert_eq!(fake.dumps, 0, "a known listener needs no dump");

        // Outbound: no process is known; the listeners are dumped once to be sure.
        let events = engine.ended(&mut fake, &ended("10.0.0.1:40000", "1.1.1.1:443"));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["network"]["direction"], "outbound");
        assert_eq!(e["source"]["port"], 40000);
        assert_eq!(e["source"]["bytes"], 120);
        assert_eq!(e["destination"]["bytes"], 4000);
        assert!(e.get("process").is_none());
        assert_eq!(fake.dumps, 1);
        // The next one within the dump interval waits for the next dump.
        assert!(
            engine
                .ended(&mut fake, &ended("10.0.0.1:40002", "1.1.1.1:443"))
                .is_empty()
        );
        assert!(engine.flush_deferred(&mut fake, false).is_empty());
        assert_eq!(fake.dumps, 1, "dumps are rate-limited");
        engine.last_listener_refresh = Instant::now().checked_sub(LISTENER_REFRESH);
        let events = engine.flush_deferred(&mut fake, false);
        assert_eq!(fake.dumps, 2);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["source"]["port"], 40002);
    }

    /// A listener that appeared just after a dump: its connection waits for the next dump
    /// instead of being taken for an outbound one.
    #[test]
    fn short_connection_to_a_listener_newer_than_the_last_dump() {
        let settings = CollectConfig::default().resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![]);
        engine.step(&mut fake, false);
        fake.kernel_listeners = Some(vec![]);
        assert_eq!(
            engine
                .ended(&mut fake, &ended("10.0.0.1:40000", "1.1.1.1:443"))
                .len(),
            1
        );
        fake.kernel_listeners = Some(vec![sock(SockKind::Listen, "127.0.0.1:8080", None, 7)]);
        assert!(
            engine
                .ended(&mut fake, &ended("127.0.0.1:8080", "127.0.0.1:50000"))
                .is_empty()
        );
        // Shutting down: reported at once, without a dump (none is due).
        let events = engine.flush_deferred(&mut fake, true);
        assert_eq!(fake.dumps, 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["network"]["direction"], "outbound");
        // With the dump due: inbound, with the listener's process.
        assert!(
            engine
                .ended(&mut fake, &ended("127.0.0.1:8080", "127.0.0.1:50002"))
                .is_empty()
        );
        engine.last_listener_refresh = Instant::now().checked_sub(LISTENER_REFRESH);
        let events = engine.flush_deferred(&mut fake, false);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["event"]["action"], "listening");
        assert_eq!(events[1]["network"]["direction"], "inbound");
        assert_eq!(events[1]["process"]["pid"], 4242);
    }

    #[test]
    fn kernel_listener_dump_makes_a_new_listener_known() {
        let settings = CollectConfig::default().resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![]);
        engine.step(&mut fake, false);
        let listener = sock(SockKind::Listen, "127.0.0.1:8080", None, 7);
        fake.kernel_listeners = Some(vec![listener.clone()]);
        let events = engine.ended(&mut fake, &ended("127.0.0.1:8080", "127.0.0.1:50000"));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["event"]["action"], "listening");
        assert_eq!(events[1]["network"]["direction"], "inbound");
        assert_eq!(events[1]["process"]["name"], "nginx");
        // The poll that then sees the listener does not report it again.
        fake.socks = vec![listener];
        assert!(engine.step(&mut fake, true).is_empty());
    }

    #[test]
    fn kernel_close_of_a_polled_connection_is_not_reported_twice() {
        let mut config = CollectConfig::default();
        config.network.report_close = Some(true);
        let settings = config.resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![]);
        engine.step(&mut fake, false);
        fake.socks = vec![
            sock(
                SockKind::Established,
                "10.0.0.1:40000",
                Some("1.1.1.1:443"),
                3,
            ),
            sock(
                SockKind::Established,
                "10.0.0.1:40001",
                Some("1.1.1.1:443"),
                4,
            ),
        ];
        assert_eq!(engine.step(&mut fake, true).len(), 2);
        // Closed by the kernel event first: reported with bytes, and not again by the poll.
        let events = engine.ended(&mut fake, &ended("10.0.0.1:40000", "1.1.1.1:443"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["source"]["bytes"], 120);
        assert!(events[0].get("dozor").is_none(), "not short-lived");
        fake.socks.retain(|s| s.ident != 3);
        assert!(engine.step(&mut fake, true).is_empty());
        // Gone from the poll first (e.g. CLOSE_WAIT), then the kernel event: one event.
        fake.socks.clear();
        assert_eq!(engine.step(&mut fake, true).len(), 1);
        assert!(
            engine
                .ended(&mut fake, &ended("10.0.0.1:40001", "1.1.1.1:443"))
                .is_empty()
        );
    }

    #[test]
    fn kernel_events_follow_the_filters_and_level() {
        // Standard: a polled connection's close is not reported, a short one is.
        let settings = CollectConfig::default().resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![]);
        engine.step(&mut fake, false);
        fake.socks = vec![sock(
            SockKind::Established,
            "10.0.0.1:40000",
            Some("1.1.1.1:443"),
            3,
        )];
        assert_eq!(engine.step(&mut fake, true).len(), 1);
        assert!(
            engine
                .ended(&mut fake, &ended("10.0.0.1:40000", "1.1.1.1:443"))
                .is_empty()
        );

        let mut config = CollectConfig::default();
        config.network.include_loopback = false;
        config.network.exclude_executables = vec!["**/nginx".into()];
        let settings = config.resolve().expect("settings");
        let mut engine = Engine::new(&settings.network);
        engine.kernel = true;
        let mut fake = platform(vec![sock(SockKind::Listen, "0.0.0.0:80", None, 1)]);
        engine.step(&mut fake, false);
        assert!(
            engine
                .ended(&mut fake, &ended("127.0.0.1:5000", "127.0.0.1:6000"))
                .is_empty(),
            "loopback excluded"
        );
        assert!(
            engine
                .ended(&mut fake, &ended("10.0.0.1:80", "10.0.0.9:5000"))
                .is_empty(),
            "the listener's executable is excluded"
        );
    }
}
