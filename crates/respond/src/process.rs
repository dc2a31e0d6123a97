//! `kill_process`: kill one process named by its pid **and** its start time, so a pid the
//! system handed to another process meanwhile is never killed.
//!
//! Linux: the start time comes from `/proc/<pid>/stat` (field 22, clock ticks after boot) and
//! `btime` of `/proc/stat`, with the formula of the agent's process collector
//! (`ms = btime * 1000 + starttime * 1000 / ticks`), so the `start_time_ms` of a process event
//! matches. The process is pinned with a pidfd before its start time is read and the signal
//! goes through that pidfd (kernels ≥ 5.3; older ones fall back to `kill(2)` right after the
//! check). Windows: not supported yet (the crate has no FFI; see the README).

use serde::Serialize;

use crate::RespondError;

/// What `kill_process` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillOutcome {
    pub pid: u32,
    /// The process's short name (`comm` on Linux).
    pub name: String,
    /// Its executable, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Its start time as read (ms since the Unix epoch).
    pub start_time_ms: i64,
    /// SIGKILL was delivered.
    pub killed: bool,
}

/// The fields of `/proc/<pid>/stat` the kill needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    /// Field 22: clock ticks after boot.
    pub starttime: u64,
}

/// Parses `/proc/<pid>/stat`: `comm` is between the first `(` and the **last** `)` (it may
/// contain spaces and parentheses); `starttime` is the 20th field after it.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest = text.get(close + 1..)?;
    // After ')': state (field 3) … starttime (field 22) = index 19.
    let starttime = rest.split_whitespace().nth(19)?.parse().ok()?;
    Some(ProcStat { comm, starttime })
}

/// Start time in ms since the Unix epoch from `btime` (s) and `starttime` (ticks).
pub fn start_time_ms(btime: u64, starttime: u64, ticks: u64) -> i64 {
    let ms = btime
        .saturating_mul(1000)
        .saturating_add(starttime.saturating_mul(1000) / ticks.max(1));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Does `actual` match `wanted` within `tolerance_ms`?
pub fn start_time_matches(actual: i64, wanted: i64, tolerance_ms: i64) -> bool {
    actual.abs_diff(wanted) <= tolerance_ms.unsigned_abs()
}

/// Refuses the pids that must never be killed: 0, 1 and the agent itself.
pub fn check_killable(pid: u32) -> Result<(), RespondError> {
    if pid == 0 || pid == 1 {
        return Err(RespondError::Refused(format!(
            "pid {pid} is the system's; never killed"
        )));
    }
    if pid == std::process::id() {
        return Err(RespondError::Refused(format!(
            "pid {pid} is the agent itself; never killed"
        )));
    }
    Ok(())
}

/// Kills `pid` with SIGKILL when it started within `tolerance_ms` of `start_time_ms`;
/// otherwise [`RespondError::ProcessMismatch`] and nothing is killed.
pub fn kill_process(
    pid: u32,
    start_time_ms: i64,
    tolerance_ms: i64,
) -> Result<KillOutcome, RespondError> {
    check_killable(pid)?;
    imp::kill(pid, start_time_ms, tolerance_ms)
}

#[cfg(target_os = "linux")]
mod imp {
    use rustix::process::{Pid, PidfdFlags, Signal};

    use super::*;

    fn not_found(pid: u32) -> RespondError {
        RespondError::ProcessNotFound { pid }
    }

    pub(super) fn kill(
        pid: u32,
        wanted_ms: i64,
        tolerance_ms: i64,
    ) -> Result<KillOutcome, RespondError> {
        let raw = i32::try_from(pid).map_err(|_| not_found(pid))?;
        let id = Pid::from_raw(raw).ok_or_else(|| not_found(pid))?;
        // Pin the process first: from here on the pidfd names this process even if it exits
        // and the pid is reused.
        let pidfd = match rustix::process::pidfd_open(id, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::SRCH) => return Err(not_found(pid)),
            Err(e) => {
                tracing::debug!(pid, error = %e, "pidfd_open unavailable; using kill(2)");
                None
            }
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| parse_proc_stat(&t))
            .ok_or_else(|| not_found(pid))?;
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .ok_or_else(|| RespondError::Refused("cannot read btime from /proc/stat".into()))?;
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let actual = start_time_ms(btime, stat.starttime, ticks);
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        if !start_time_matches(actual, wanted_ms, tolerance_ms) {
            return Err(RespondError::ProcessMismatch {
                pid,
                name: stat.comm,
                actual_ms: actual,
                wanted_ms,
            });
        }
        let sent = match &pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, Signal::KILL),
            None => rustix::process::kill_process(id, Signal::KILL),
        };
        match sent {
            Ok(()) => {}
            Err(rustix::io::Errno::SRCH) => return Err(not_found(pid)),
            Err(e) => {
                return Err(RespondError::Refused(format!(
                    "sending SIGKILL to pid {pid}: {e}"
                )));
            }
        }
        tracing::info!(pid, name = %stat.comm, exe = ?exe, "process killed");
        Ok(KillOutcome {
            pid,
            name: stat.comm,
            exe,
            start_time_ms: actual,
            killed: true,
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn kill(
        _pid: u32,
        _wanted_ms: i64,
        _tolerance_ms: i64,
    ) -> Result<KillOutcome, RespondError> {
        Err(RespondError::Unsupported(
            "kill_process is not supported on this platform yet".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_comm() {
        let text = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615";
        let s = parse_proc_stat(text).unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.starttime, 987_654);
        assert_eq!(parse_proc_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_proc_stat(""), None);
    }

    #[test]
    fn start_time_formula_and_tolerance() {
        assert_eq!(start_time_ms(1_700_000_000, 250, 100), 1_700_000_002_500);
        assert!(start_time_matches(10_000, 10_900, 1000));
        assert!(start_time_matches(10_000, 9_000, 1000));
        assert!(!start_time_matches(10_000, 11_001, 1000));
    }

    #[test]
    fn the_system_and_the_agent_are_never_killed() {
        assert!(kill_process(1, 1, 1000).is_err());
        assert!(kill_process(0, 1, 1000).is_err());
        let me = kill_process(std::process::id(), 1, i64::MAX).unwrap_err();
        assert!(me.to_string().contains("agent itself"), "{me}");
    }
}
