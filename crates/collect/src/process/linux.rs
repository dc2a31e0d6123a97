//! Linux process collection: the netlink connector, or `/proc` polling.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::time::{Duration, Instant};

use chrono::DateTime;

use super::connector::{self, Connector, ProcEvent};
use super::{
    ExitInfo, ParentInfo, ProcInfo, Table, UserRef, end_event, excluded, join_args, start_event,
};
use crate::config::{ProcessMode, ProcessSettings};
use crate::ecs::{self, Stopped};
use crate::hashing::HashCache;
use crate::procfs;
use crate::users::UserNames;
use crate::{CollectorContext, CollectorState, RunResult};

/// In netlink mode, `/proc` is rescanned this often to repair lost messages.
const RESCAN_EVERY: Duration = Duration::from_secs(30);
/// Bound of the fork map (child → parent of processes that did not exec yet).
const MAX_FORKS: usize = 16 * 1024;

struct Collector<'a> {
    s: &'a ProcessSettings,
    ctx: &'a CollectorContext,
    table: Table,
    users: UserNames,
    hashes: HashCache,
    boot_time: Option<u64>,
    ticks: u64,
}

pub fn run(s: &ProcessSettings, ctx: &CollectorContext) -> RunResult {
    let mut c = Collector {
        s,
        ctx,
        table: Table::default(),
        users: UserNames::default(),
        hashes: HashCache::new(s.hash_max_bytes),
        boot_time: procfs::boot_time(),
        ticks: procfs::clock_ticks(),
    };
    let interval = s.poll_interval;
    let poll_note = format!("polling /proc every {}", human(interval));
    // Subscribe first, then snapshot: a process started in between is in the socket buffer.
    let connector = match s.mode {
        ProcessMode::Poll => None,
        ProcessMode::Netlink | ProcessMode::Auto => match Connector::open() {
            Ok(conn) => Some(conn),
            Err(e) if s.mode == ProcessMode::Netlink => {
                return Err(format!(
                    "netlink process connector unavailable ({})",
                    errno_name(&e)
                ));
            }
            Err(e) => {
                c.snapshot();
                ctx.health.set_with_source(
                    "process",
                    CollectorState::Degraded,
                    SOURCE_POLL,
                    Some(format!(
                        "netlink unavailable ({}), {poll_note}",
                        errno_name(&e)
                    )),
                );
                return c.poll_loop(interval);
            }
        },
    };
    c.snapshot();
    match connector {
        Some(conn) => {
            ctx.health.set_with_source(
                "process",
                CollectorState::Running,
                SOURCE_NETLINK,
                Some("netlink process connector".into()),
            );
            c.netlink_loop(conn, &poll_note)
        }
        None => {
            ctx.health.set_with_source(
                "process",
                CollectorState::Running,
                SOURCE_POLL,
                Some(poll_note),
            );
            c.poll_loop(interval)
        }
    }
}

/// [`crate::CollectorStatus::source`] with the netlink process connector.
const SOURCE_NETLINK: &str = "netlink-connector";
/// [`crate::CollectorStatus::source`] while polling `/proc`.
const SOURCE_POLL: &str = "procfs-poll";

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(1) => "EPERM".into(),
        Some(13) => "EACCES".into(),
        Some(93) => "EPROTONOSUPPORT".into(),
        Some(111) => "ECONNREFUSED".into(),
        _ => e.to_string(),
    }
}

impl Collector<'_> {
    /// Fills the table with the running processes, without events.
    fn snapshot(&mut self) {
        let pids = procfs::list_pids().unwrap_or_default();
        for pid in pids {
            if let Some(mut p) = self.read_process(pid, false) {
                p.silent = p.silent || excluded(self.s, &p);
                self.table.insert(p);
            }
        }
        tracing::debug!(processes = self.table.procs.len(), "process table filled");
    }

    /// Reads `/proc/<pid>`; `None` when the process is gone. `hash`: also hash the executable.
    fn read_process(&mut self, pid: u32, hash: bool) -> Option<ProcInfo> {
        let stat = procfs::read_stat(pid)?;
        // Open the executable first: it stays readable if the process exits meanwhile.
        let exe_file = if hash {
            File::open(procfs::proc_path(pid, "exe")).ok()
        } else {
            None
        };
        let args = procfs::read_cmdline(pid).unwrap_or_default();
        let exe = procfs::read_link(pid, "exe");
        let cwd = procfs::read_link(pid, "cwd").map(|(p, _)| p);
        let uids = std::fs::read_to_string(procfs::proc_path(pid, "status"))
            .ok()
            .and_then(|t| procfs::parse_status_uids(&t));
        let kernel_thread = exe.is_none() && args.is_empty() && (stat.ppid == 2 || pid == 2);
        let (executable, exe_deleted) = match exe {
            Some((path, deleted)) => (Some(path), deleted),
            None => (None, false),
        };
        let name = executable
            .as_deref()
            .and_then(procfs::file_name)
            .or_else(|| Some(stat.comm.clone()));
        let (user, real_user) = match uids {
            Some((real, effective)) => {
                let user = self.user(effective);
                let real_user = (real != effective).then(|| self.user(real));
                (Some(user), real_user)
            }
            None => (None, None),
        };
        let start = self.boot_time.and_then(|bt| {
            let ms = bt * 1000 + stat.starttime * 1000 / self.ticks;
            DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).map(ecs::rfc3339)
        });
        let mut p = ProcInfo {
            pid,
            ppid: stat.ppid,
            start_key: stat.starttime,
            name,
            command_line: join_args(&args),
            args,
            executable,
            working_directory: cwd,
            user,
            real_user,
            start,
            hash: None,
            exe_deleted,
            silent: kernel_thread,
        };
        if let Some(file) = exe_file {
            let path = std::path::PathBuf::from(p.executable.clone().unwrap_or_default());
            match self.hashes.hash_open_file(file, &path) {
                Ok(h) => p.hash = h,
                Err(e) => tracing::debug!(pid, "cannot hash executable: {e}"),
            }
        }
        Some(p)
    }

    fn user(&mut self, uid: u32) -> UserRef {
        UserRef {
            id: uid.to_string(),
            name: self.users.name(uid),
        }
    }

    /// Parent details from the table, else from `/proc/<ppid>`.
    fn parent_of(&self, ppid: u32) -> Option<ParentInfo> {
        if ppid == 0 {
            return None;
        }
        if let Some(p) = self.table.parent(ppid) {
            return Some(p);
        }
        let stat = procfs::read_stat(ppid)?;
        let args = procfs::read_cmdline(ppid).unwrap_or_default();
        let executable = procfs::read_link(ppid, "exe").map(|(p, _)| p);
        Some(ParentInfo {
            pid: ppid,
            name: executable
                .as_deref()
                .and_then(procfs::file_name)
                .or(Some(stat.comm)),
            executable,
            command_line: join_args(&args),
        })
    }

    /// A new process was seen: report it and put it in the table.
    fn started(&mut self, p: ProcInfo, action: &str) -> Result<(), Stopped> {
        let mut p = p;
        p.silent = p.silent || excluded(self.s, &p);
        if !p.silent {
            let parent = self.parent_of(p.ppid);
            let doc = start_event(&p, parent.as_ref(), action);
            self.ctx.emit(doc)?;
        }
        self.table.insert(p);
        Ok(())
    }

    /// A process of the table ended.
    fn ended(&mut self, pid: u32, exit: Option<ExitInfo>) -> Result<(), Stopped> {
        if let Some(p) = self.table.procs.remove(&pid)
            && self.s.report_end
            && !p.silent
        {
            self.ctx.emit(end_event(&p, exit))?;
        }
        Ok(())
    }

    /// One polling round: new pids are read and reported, vanished ones end.
    fn rescan(&mut self) -> Result<(), Stopped> {
        let Ok(pids) = procfs::list_pids() else {
            return Ok(());
        };
        let live: HashSet<u32> = pids.iter().copied().collect();
        let gone: Vec<u32> = self
            .table
            .procs
            .keys()
            .filter(|pid| !live.contains(pid))
            .copied()
            .collect();
        // Ascending pids: parents are usually read before their children.
        for pid in pids {
            if self.table.procs.contains_key(&pid) {
                continue;
            }
            if let Some(p) = self.read_process(pid, self.s.hash) {
                self.started(p, "started")?;
            }
        }
        for pid in gone {
            self.ended(pid, None)?;
        }
        Ok(())
    }

    fn poll_loop(&mut self, interval: Duration) -> RunResult {
        while !self.ctx.shutdown.wait_timeout(interval) {
            if self.rescan().is_err() {
                break;
            }
        }
        self.log_stats();
        Ok(())
    }

    fn log_stats(&self) {
        let (hits, misses) = self.hashes.stats();
        tracing::debug!(
            processes = self.table.procs.len(),
            hash_hits = hits,
            hash_misses = misses,
            "process collector stopped"
        );
    }

    fn netlink_loop(&mut self, mut conn: Connector, poll_note: &str) -> RunResult {
        let mut forks: HashMap<u32, u32> = HashMap::new();
        let mut last_rescan = Instant::now();
        let mut lost = 0u64;
        while !self.ctx.shutdown.is_triggered() {
            let parsed = match conn.recv() {
                Ok(p) => p,
                Err(e) if connector::is_timeout(&e) => Default::default(),
                Err(e) if connector::is_overflow(&e) => {
                    lost += 1;
                    tracing::warn!(lost, "process connector buffer overflow, rescanning /proc");
                    if self.rescan().is_err() {
                        break;
                    }
                    last_rescan = Instant::now();
                    continue;
                }
                Err(e) => {
                    self.ctx.health.set_with_source(
                        "process",
                        CollectorState::Degraded,
                        SOURCE_POLL,
                        Some(format!("netlink failed ({}), {poll_note}", errno_name(&e))),
                    );
                    drop(conn);
                    return self.poll_loop(self.s.poll_interval);
                }
            };
            if parsed.overrun {
                let _ = self.rescan();
            }
            for ev in parsed.events {
                let step = match ev {
                    ProcEvent::Fork {
                        parent_tgid,
                        child_pid,
                        child_tgid,
                        ..
                    } if child_pid == child_tgid => {
                        if forks.len() >= MAX_FORKS {
                            forks.clear();
                        }
                        forks.insert(child_tgid, parent_tgid);
                        Ok(())
                    }
                    ProcEvent::Exec { tgid, .. } => {
                        let ppid = forks.remove(&tgid);
                        self.exec(tgid, ppid)
                    }
                    ProcEvent::Exit {
                        pid,
                        tgid,
                        exit_code,
                        ..
                    } if pid == tgid => {
                        forks.remove(&tgid);
                        self.ended(tgid, Some(ExitInfo::from_wait_status(exit_code)))
                    }
                    _ => Ok(()),
                };
                if step.is_err() {
                    return Ok(());
                }
            }
            if last_rescan.elapsed() >= RESCAN_EVERY {
                last_rescan = Instant::now();
                if self.rescan().is_err() {
                    break;
                }
            }
        }
        self.log_stats();
        Ok(())
    }

    /// An exec: read the process at once (short-lived ones may already be gone).
    fn exec(&mut self, pid: u32, forked_from: Option<u32>) -> Result<(), Stopped> {
        let p = match self.read_process(pid, self.s.hash) {
            Some(p) => p,
            None => {
                // Gone before we could read it: report what is known.
                let Some(ppid) = forked_from else {
                    return Ok(());
                };
                ProcInfo {
                    pid,
                    ppid,
                    ..ProcInfo::default()
                }
            }
        };
        self.started(p, "started")
    }
}
