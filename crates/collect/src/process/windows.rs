//! Windows process collection: `sysinfo` polling through the shared table diff.

use std::collections::HashSet;
use std::path::Path;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

use super::{ProcInfo, Table, UserRef, end_event, excluded, start_event};
use crate::config::ProcessSettings;
use crate::ecs::{self, Stopped};
use crate::hashing::HashCache;
use crate::{CollectorContext, CollectorState, RunResult};

pub fn run(s: &ProcessSettings, ctx: &CollectorContext) -> RunResult {
    let mut system = System::new().map_err(|e| format!("sysinfo: {e}"))?;
    let mut users = Users::new_with_refreshed_list().ok();
    let mut hashes = HashCache::new(s.hash_max_bytes);
    let mut table = Table::default();
    let refresh = ProcessRefreshKind::nothing()
        .with_exe(UpdateKind::OnlyIfNotSet)
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .with_cwd(UpdateKind::OnlyIfNotSet)
        .with_user(UpdateKind::OnlyIfNotSet);
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, refresh);
    for p in system.processes().values() {
        let mut info = info(p, users.as_ref());
        info.silent = excluded(s, &info);
        table.insert(info);
    }
    ctx.health.set_with_source(
        "process",
        CollectorState::Running,
        "sysinfo-poll",
        Some(format!("polling every {} ms", s.poll_interval.as_millis())),
    );
    while !ctx.shutdown.wait_timeout(s.poll_interval) {
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, refresh);
        let step = (|| -> Result<(), Stopped> {
            let mut live = HashSet::new();
            let mut new: Vec<&sysinfo::Process> = Vec::new();
            for (pid, p) in system.processes() {
                let pid = pid.as_u32();
                live.insert(pid);
                match table.procs.get(&pid) {
                    Some(known) if known.start_key == p.start_time() => {}
                    _ => new.push(p),
                }
            }
            new.sort_by_key(|p| p.pid().as_u32());
            let gone: Vec<u32> = table
                .procs
                .iter()
                .filter(|(pid, known)| {
                    !live.contains(pid)
                        || system
                            .process(Pid::from_u32(**pid))
                            .is_some_and(|p| p.start_time() != known.start_key)
                })
                .map(|(pid, _)| *pid)
                .collect();
            for pid in gone {
                if let Some(p) = table.procs.remove(&pid)
                    && s.report_end
                    && !p.silent
                {
                    ctx.emit(end_event(&p, None))?;
                }
            }
            if !new.is_empty() && users.is_none() {
                users = Users::new_with_refreshed_list().ok();
            }
            for p in new {
                let mut info = info(p, users.as_ref());
                info.silent = excluded(s, &info);
                if s.hash
                    && !info.silent
                    && let Some(exe) = info.executable.clone()
                {
                    info.hash = hashes.hash_path(Path::new(&exe)).ok().flatten();
                }
                if !info.silent {
                    let parent = table.parent(info.ppid);
                    ctx.emit(start_event(&info, parent.as_ref(), "started"))?;
                }
                table.insert(info);
            }
            Ok(())
        })();
        if step.is_err() {
            break;
        }
    }
    Ok(())
}

fn info(p: &sysinfo::Process, users: Option<&Users>) -> ProcInfo {
    let args: Vec<String> = p
        .cmd()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let user = p.user_id().map(|uid| UserRef {
        id: uid.to_string(),
        name: users
            .and_then(|u| u.get_user_by_id(uid))
            .map(|u| u.name().to_owned()),
    });
    let start = chrono::DateTime::from_timestamp(i64::try_from(p.start_time()).unwrap_or(0), 0)
        .map(ecs::rfc3339);
    ProcInfo {
        pid: p.pid().as_u32(),
        ppid: p.parent().map(|pp| pp.as_u32()).unwrap_or(0),
        start_key: p.start_time(),
        name: Some(p.name().to_string_lossy().into_owned()),
        executable: p.exe().map(|e| e.to_string_lossy().into_owned()),
        command_line: super::join_args(&args),
        args,
        working_directory: p.cwd().map(|c| c.to_string_lossy().into_owned()),
        user,
        real_user: None,
        start,
        hash: None,
        exe_deleted: false,
        silent: false,
    }
}
