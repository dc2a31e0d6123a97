//! Process start / end collector.
//!
//! Linux: the netlink process connector (exec and exit of every process, read from `/proc`
//! at once) with a periodic `/proc` rescan that repairs lost messages; or `/proc` polling.
//! Windows: polling through `sysinfo`. Both keep a table pid → [`ProcInfo`] and diff it.

#[cfg(target_os = "linux")]
pub mod connector;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::config::ProcessSettings;
use crate::ecs;
use crate::{CollectorContext, RunResult};

/// A user: id (uid or SID) and name when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: String,
    pub name: Option<String>,
}

/// What the collector knows of one process.
#[derive(Debug, Clone, Default)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Start time in platform units; with `pid` it identifies the process (pids are reused).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub start_key: u64,
    pub name: Option<String>,
    pub executable: Option<String>,
    pub command_line: Option<String>,
    /// Arguments (only kept until the start event is built).
    pub args: Vec<String>,
    pub working_directory: Option<String>,
    /// Effective user.
    pub user: Option<UserRef>,
    /// Real user, when it differs from the effective one (setuid programs).
    pub real_user: Option<UserRef>,
    /// RFC 3339 start time.
    pub start: Option<String>,
    pub hash: Option<String>,
    /// The executable was deleted or replaced since the process started.
    pub exe_deleted: bool,
    /// Not reported: kernel thread or excluded executable.
    pub silent: bool,
}

/// How a process ended, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub exit_code: i64,
    pub signal: Option<u32>,
}

impl ExitInfo {
    /// From a wait(2) status: normal exit → the code; killed → 128 + signal (shell style).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn from_wait_status(status: u32) -> ExitInfo {
        let signal = status & 0x7f;
        if signal == 0 {
            ExitInfo {
                exit_code: i64::from((status >> 8) & 0xff),
                signal: None,
            }
        } else {
            ExitInfo {
                exit_code: 128 + i64::from(signal),
                signal: Some(signal),
            }
        }
    }
}

/// Parent details for a start event.
#[derive(Debug, Clone, Default)]
pub struct ParentInfo {
    pub pid: u32,
    pub name: Option<String>,
    pub executable: Option<String>,
    pub command_line: Option<String>,
}

impl From<&ProcInfo> for ParentInfo {
    fn from(p: &ProcInfo) -> Self {
        ParentInfo {
            pid: p.pid,
            name: p.name.clone(),
            executable: p.executable.clone(),
            command_line: p.command_line.clone(),
        }
    }
}

fn user_json(u: &UserRef) -> Value {
    json!({ "id": u.id, "name": u.name })
}

/// The `process.start` document.
pub fn start_event(p: &ProcInfo, parent: Option<&ParentInfo>, action: &str) -> Map<String, Value> {
    let mut doc = ecs::base_event(
        ecs::now_rfc3339(),
        "process",
        &["process"],
        &["start"],
        action,
    );
    let parent = parent.map(|pp| {
        json!({
            "pid": pp.pid,
            "name": pp.name,
            "executable": pp.executable,
            "command_line": pp.command_line,
        })
    });
    let parent = parent.unwrap_or_else(|| json!({ "pid": p.ppid }));
    let args = (!p.args.is_empty()).then(|| json!(p.args));
    doc.insert(
        "process".into(),
        json!({
            "pid": p.pid,
            "name": p.name,
            "executable": p.executable,
            "command_line": p.command_line,
            "args": args,
            "args_count": (!p.args.is_empty()).then_some(p.args.len()),
            "working_directory": p.working_directory,
            "start": p.start,
            "hash": { "sha256": p.hash },
            "user": p.user.as_ref().map(user_json),
            "real_user": p.real_user.as_ref().map(user_json),
            "parent": parent,
        }),
    );
    add_user_and_related(&mut doc, p);
    if p.exe_deleted {
        ecs::put(&mut doc, "dozor.process.executable_deleted", true);
    }
    doc
}

/// The `process.end` document.
pub fn end_event(p: &ProcInfo, exit: Option<ExitInfo>) -> Map<String, Value> {
    let now = ecs::now_rfc3339();
    let mut doc = ecs::base_event(now.clone(), "process", &["process"], &["end"], "ended");
    doc.insert(
        "process".into(),
        json!({
            "pid": p.pid,
            "name": p.name,
            "executable": p.executable,
            "command_line": p.command_line,
            "working_directory": p.working_directory,
            "start": p.start,
            "end": now,
            "exit_code": exit.map(|e| e.exit_code),
            "hash": { "sha256": p.hash },
            "user": p.user.as_ref().map(user_json),
            "parent": { "pid": p.ppid },
        }),
    );
    if let Some(signal) = exit.and_then(|e| e.signal) {
        ecs::put(&mut doc, "dozor.process.signal", signal);
    }
    add_user_and_related(&mut doc, p);
    doc
}

fn add_user_and_related(doc: &mut Map<String, Value>, p: &ProcInfo) {
    if let Some(u) = &p.user {
        doc.insert("user".into(), user_json(u));
    }
    let mut related = Map::new();
    let users: Vec<&String> = [&p.user, &p.real_user]
        .into_iter()
        .flatten()
        .filter_map(|u| u.name.as_ref())
        .collect::<Vec<_>>();
    let mut users: Vec<&String> = users;
    users.dedup();
    if !users.is_empty() {
        related.insert("user".into(), json!(users));
    }
    if let Some(h) = &p.hash {
        related.insert("hash".into(), json!([h]));
    }
    if !related.is_empty() {
        doc.insert("related".into(), Value::Object(related));
    }
}

/// Joins arguments the way `ps` shows them.
pub fn join_args(args: &[String]) -> Option<String> {
    (!args.is_empty()).then(|| args.join(" "))
}

/// The process table with the diff logic shared by the platforms' polling loops.
#[derive(Debug, Default)]
pub struct Table {
    pub procs: HashMap<u32, ProcInfo>,
}

impl Table {
    /// Parent details for `ppid` from the table.
    pub fn parent(&self, ppid: u32) -> Option<ParentInfo> {
        self.procs.get(&ppid).map(ParentInfo::from)
    }

    /// Inserts a reported process; its arguments are dropped (the start event has them).
    pub fn insert(&mut self, mut p: ProcInfo) {
        p.args = Vec::new();
        self.procs.insert(p.pid, p);
    }
}

/// Whether `p` is left out under the settings: an excluded executable, the agent itself or
/// (unless configured otherwise) a process the agent started.
pub fn excluded(s: &ProcessSettings, p: &ProcInfo) -> bool {
    let own = std::process::id();
    p.pid == own
        || (!s.include_agent_children && p.ppid == own)
        || p.executable
            .as_deref()
            .is_some_and(|exe| s.exclude.is_match(exe))
}

/// Runs the collector until shutdown.
pub fn run(s: &ProcessSettings, ctx: &CollectorContext) -> RunResult {
    #[cfg(target_os = "linux")]
    {
        linux::run(s, ctx)
    }
    #[cfg(windows)]
    {
        windows::run(s, ctx)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = s;
        ctx.health.set(
            "process",
            crate::CollectorState::Disabled,
            Some("not available on this OS".into()),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decoding() {
        assert_eq!(
            ExitInfo::from_wait_status(0),
            ExitInfo {
                exit_code: 0,
                signal: None
            }
        );
        assert_eq!(ExitInfo::from_wait_status(3 << 8).exit_code, 3);
        let killed = ExitInfo::from_wait_status(9);
        assert_eq!((killed.exit_code, killed.signal), (137, Some(9)));
    }

    #[test]
    fn start_event_shape() {
        let p = ProcInfo {
            pid: 10,
            ppid: 1,
            name: Some("sleep".into()),
            executable: Some("/usr/bin/sleep".into()),
            command_line: Some("sleep 1".into()),
            args: vec!["sleep".into(), "1".into()],
            user: Some(UserRef {
                id: "0".into(),
                name: Some("root".into()),
            }),
            hash: Some("ab".repeat(32)),
            ..ProcInfo::default()
        };
        let mut v = Value::Object(start_event(&p, None, "started"));
        ecs::prune(&mut v);
        assert_eq!(v["event"]["type"], json!(["start"]));
        assert_eq!(v["process"]["args_count"], 2);
        assert_eq!(v["process"]["parent"], json!({"pid": 1}));
        assert_eq!(v["user"]["name"], "root");
        assert_eq!(v["related"]["hash"][0], "ab".repeat(32));
        assert!(v["process"].get("working_directory").is_none());
        let mut e = Value::Object(end_event(&p, Some(ExitInfo::from_wait_status(15))));
        ecs::prune(&mut e);
        assert_eq!(e["process"]["exit_code"], 143);
        assert_eq!(e["dozor"]["process"]["signal"], 15);
    }
}
